/*
 * kube_config.c — choosing where the config comes from (flag, $KUBECONFIG,
 * in-cluster, ~/.kube/config), the in-cluster config, and cleanup.  The
 * kubeconfig format itself is in kube_config_file.c.
 */
#include "kube_config.h"
#include "kube_config_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENV_KUBECONFIG "KUBECONFIG"
#define ENV_HOST "KUBERNETES_SERVICE_HOST"
#define ENV_PORT "KUBERNETES_SERVICE_PORT"
#define HOME_CONFIG "/.kube/config"
#define PORT_MAX 65535
#define PORT_DIGITS_MAX 5
/* The namespace file holds one name; anything bigger is not one. */
#define NS_FILE_MAX 1024

/* ---- kubeconfig file ---------------------------------------------------- */

int kube_config_from_file(const char *path, const char *context,
                          struct kube_config *out, char *err, size_t errlen)
{
    if (out == NULL)
        return kcfg_fail(err, errlen, "kubeconfig: no place for the result");
    memset(out, 0, sizeof *out);
    if (path == NULL || path[0] == '\0')
        return kcfg_fail(err, errlen, "kubeconfig: the path is empty");
    if (context && context[0] == '\0')
        return kcfg_fail(err, errlen, "kubeconfig %s: the context name is "
                         "empty", path);
    char *buf;
    size_t len;
    char msg[KCFG_MSG_MAX];
    if (kcfg_read_file(path, KUBE_CONFIG_FILE_MAX, &buf, &len, msg,
                       sizeof msg) != 0)
        return kcfg_fail(err, errlen, "kubeconfig %s", msg);
    int rc = kcfg_parse(path, buf, len, context, out, err, errlen);
    explicit_bzero(buf, len);   /* it holds tokens and keys */
    free(buf);
    if (rc != 0)
        kube_config_free(out);
    return rc;
}

/* ---- in-cluster ---------------------------------------------------------- */

static bool host_valid(const char *h)
{
    for (const char *p = h; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                  c == ':' || c == '%';
        if (!ok)
            return false;
    }
    return h[0] != '\0';
}

static bool port_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > PORT_DIGITS_MAX || strspn(p, "0123456789") != n)
        return false;
    long v = strtol(p, NULL, 10);
    return v > 0 && v <= PORT_MAX;
}

static int in_cluster_server(struct kube_config *out, char *err,
                             size_t errlen)
{
    const char *host = getenv(ENV_HOST), *port = getenv(ENV_PORT);
    if (host == NULL || host[0] == '\0')
        return kcfg_fail(err, errlen, "in-cluster: " ENV_HOST " is not set "
                         "(not running in a pod?)");
    if (port == NULL || port[0] == '\0')
        return kcfg_fail(err, errlen, "in-cluster: " ENV_HOST " is set but "
                         ENV_PORT " is not");
    if (!host_valid(host))
        return kcfg_fail(err, errlen, "in-cluster: " ENV_HOST "=\"%s\" is "
                         "not a host name or IP address", host);
    if (!port_valid(port))
        return kcfg_fail(err, errlen, "in-cluster: " ENV_PORT "=\"%s\" is "
                         "not a port number (1-%d)", port, PORT_MAX);
    bool v6 = strchr(host, ':') != NULL;   /* an IPv6 literal needs [] */
    int n = snprintf(out->server, sizeof out->server, "https://%s%s%s:%s",
                     v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (n < 0 || (size_t)n >= sizeof out->server)
        return kcfg_fail(err, errlen, "in-cluster: " ENV_HOST " is longer "
                         "than a server URL may be (%d bytes)",
                         KUBE_SERVER_MAX - 1);
    return 0;
}

static int sa_path(char *dst, size_t cap, const char *dir, const char *name,
                   char *err, size_t errlen)
{
    int n = snprintf(dst, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return kcfg_fail(err, errlen, "in-cluster: service-account path "
                         "%s/%s is too long", dir, name);
    return 0;
}

/* Trims ASCII whitespace at both ends; returns the start within s. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
                     s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* The token is re-read by the client as it rotates; here it only has to
 * be there now, so a missing mount fails at start. */
static int check_token_file(const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    char msg[KCFG_MSG_MAX];
    if (kcfg_read_file(path, KUBE_TOKEN_MAX - 1, &buf, &len, msg,
                       sizeof msg) != 0)
        return kcfg_fail(err, errlen, "in-cluster: service-account token %s",
                         msg);
    bool empty = trim(buf)[0] == '\0';
    explicit_bzero(buf, len);
    free(buf);
    if (empty)
        return kcfg_fail(err, errlen, "in-cluster: service-account token %s "
                         "is empty", path);
    return 0;
}

/* Optional: a missing namespace file leaves namespace_ "". */
static int read_namespace(const char *dir, struct kube_config *out, char *err,
                          size_t errlen)
{
    char path[PATH_MAX], msg[KCFG_MSG_MAX];
    struct stat st;
    if (sa_path(path, sizeof path, dir, "namespace", err, errlen) != 0)
        return -1;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return 0;
    char *buf;
    size_t len;
    if (kcfg_read_file(path, NS_FILE_MAX, &buf, &len, msg, sizeof msg) != 0)
        return kcfg_fail(err, errlen, "in-cluster: namespace %s", msg);
    const char *ns = trim(buf);
    int rc = 0;
    if (ns[0] != '\0' && !kcfg_namespace_valid(ns))
        rc = kcfg_fail(err, errlen, "in-cluster: %s holds \"%.*s\", not a "
                       "namespace name", path, KUBE_NAMESPACE_MAX, ns);
    else
        snprintf(out->namespace_, sizeof out->namespace_, "%s", ns);
    free(buf);
    return rc;
}

static int in_cluster_files(const char *dir, struct kube_config *out,
                            char *err, size_t errlen)
{
    char msg[KCFG_MSG_MAX];
    if (sa_path(out->ca_file, sizeof out->ca_file, dir, "ca.crt", err,
                errlen) != 0 ||
        sa_path(out->token_file, sizeof out->token_file, dir, "token", err,
                errlen) != 0)
        return -1;
    if (kcfg_check_file(out->ca_file, msg, sizeof msg) != 0)
        return kcfg_fail(err, errlen, "in-cluster: service-account CA %s "
                         "(no service-account token mounted?)", msg);
    if (check_token_file(out->token_file, err, errlen) != 0)
        return -1;
    return read_namespace(dir, out, err, errlen);
}

int kube_config_in_cluster(const char *sa_dir, struct kube_config *out,
                           char *err, size_t errlen)
{
    if (out == NULL)
        return kcfg_fail(err, errlen, "in-cluster: no place for the result");
    memset(out, 0, sizeof *out);
    if (sa_dir == NULL)
        sa_dir = KUBE_SA_DIR_DEFAULT;
    if (in_cluster_server(out, err, errlen) != 0 ||
        in_cluster_files(sa_dir, out, err, errlen) != 0) {
        kube_config_free(out);
        return -1;
    }
    snprintf(out->source, sizeof out->source, "in-cluster");
    return 0;
}

/* ---- which source ----------------------------------------------------- */

/* Appends note to a message already in err, space permitting. */
static void err_append(char *err, size_t errlen, const char *note)
{
    if (err == NULL || errlen == 0)
        return;
    size_t used = strnlen(err, errlen - 1);
    snprintf(err + used, errlen - used, "%s", note);
}

/* The first non-empty entry of $KUBECONFIG.  Returns 1, 0 if there is
 * none, or -1 with err. */
static int kubeconfig_env(char *dst, size_t cap, char *err, size_t errlen)
{
    const char *p = getenv(ENV_KUBECONFIG);
    if (p == NULL)
        return 0;
    p += strspn(p, ":");
    size_t n = strcspn(p, ":");
    if (n == 0)
        return 0;
    if (n >= cap)
        return kcfg_fail(err, errlen, "$" ENV_KUBECONFIG "'s first path is "
                         "longer than %zu bytes", cap - 1);
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 1;
}

static int load_home(struct kube_config *out, char *err, size_t errlen)
{
    const char *home = getenv("HOME");
    char path[PATH_MAX];
    static const char tried[] = "no Kubernetes config found: tried "
        "--kubeconfig (not given), $" ENV_KUBECONFIG " (not set), "
        "in-cluster (" ENV_HOST " not set) and ";
    if (home == NULL || home[0] != '/')
        return kcfg_fail(err, errlen, "%s~" HOME_CONFIG " ($HOME is not "
                         "set)", tried);
    int n = snprintf(path, sizeof path, "%s" HOME_CONFIG, home);
    if (n < 0 || (size_t)n >= sizeof path)
        return kcfg_fail(err, errlen, "%s~" HOME_CONFIG " ($HOME is too "
                         "long)", tried);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return kcfg_fail(err, errlen, "%s%s (does not exist)", tried, path);
    return kube_config_from_file(path, NULL, out, err, errlen);
}

int kube_config_load(const char *path, struct kube_config *out, char *err,
                     size_t errlen)
{
    if (out == NULL)
        return kcfg_fail(err, errlen, "kubeconfig: no place for the result");
    memset(out, 0, sizeof *out);
    if (path)
        return kube_config_from_file(path, NULL, out, err, errlen);
    char env_path[PATH_MAX];
    int found = kubeconfig_env(env_path, sizeof env_path, err, errlen);
    if (found < 0)
        return -1;
    if (found) {
        int rc = kube_config_from_file(env_path, NULL, out, err, errlen);
        if (rc != 0)
            err_append(err, errlen, " (from $" ENV_KUBECONFIG ")");
        return rc;
    }
    const char *host = getenv(ENV_HOST);
    if (host && host[0]) {
        int rc = kube_config_in_cluster(NULL, out, err, errlen);
        if (rc != 0)
            err_append(err, errlen, "; in-cluster config was chosen "
                       "because " ENV_HOST " is set and neither --kubeconfig "
                       "nor $" ENV_KUBECONFIG " is");
        return rc;
    }
    return load_home(out, err, errlen);
}

/* ---- cleanup ------------------------------------------------------------ */

void kube_config_free(struct kube_config *cfg)
{
    static const char *const names[] = {KCFG_CA_NAME, KCFG_CERT_NAME,
                                        KCFG_KEY_NAME};
    if (cfg == NULL)
        return;
    if (cfg->tmp_dir[0] != '\0') {
        char path[PATH_MAX + sizeof KCFG_CERT_NAME + 1];
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", cfg->tmp_dir, names[i]);
            unlink(path);   /* ENOENT: that one was never written */
        }
        rmdir(cfg->tmp_dir);
    }
    /* Zeroing everything also makes a second free a no-op. */
    explicit_bzero(cfg, sizeof *cfg);
}
