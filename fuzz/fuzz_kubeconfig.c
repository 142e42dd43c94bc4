/*
 * fuzz_kubeconfig.c — one input = one kubeconfig file's bytes, parsed by
 * kcfg_parse (the in-memory core of kube_config_from_file, see
 * kube_config_internal.h) as if it were <scratch>/kubeconfig, then always
 * kube_config_free.  One input in eight (those whose size is a multiple
 * of 8) is written to <scratch>/kubeconfig and goes through
 * kube_config_from_file instead: file read and free-on-failure included.
 *
 * The scratch directory ($FUZZ_SCRATCH, else a fresh dir under /dev/shm
 * or /tmp) holds what relative paths in the seeds name (ca.crt, token,
 * client.crt, client.key) and a tmp/ dir that $TMPDIR points at, so the
 * private dirs and files made for inline *-data land there.  After every
 * input tmp/ must be empty again: a temp file left behind would pile up
 * for every restart of the operator (and here, for every input).
 *
 * On success the result must hold what kube_client relies on: an https://
 * server with a host and no trailing '/', a header-safe token, a client
 * certificate only with its key, no CA together with
 * insecure-skip-tls-verify, a valid namespace, and files that exist.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "kube_config.h"
#include "kube_config_internal.h"

static char scratch[PATH_MAX];
static char tmp_dir[PATH_MAX];
static char config_path[PATH_MAX];
static struct kube_config cfg;   /* ~40 KB: not on the stack */
static bool own_scratch;

static const char *const fixtures[][2] = {
    {"ca.crt", "-----BEGIN CERTIFICATE-----\nZnV6eg==\n-----END CERTIFICATE-----\n"},
    {"client.crt", "-----BEGIN CERTIFICATE-----\nZnV6eg==\n-----END CERTIFICATE-----\n"},
    {"client.key", "-----BEGIN PRIVATE KEY-----\nZnV6eg==\n-----END PRIVATE KEY-----\n"},
    {"token", "fuzz-token-file-contents\n"},
};

static void put_bytes(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    FUZZ_CHECK(write(fd, data, n) == (ssize_t)n, "cannot write %s", path);
    close(fd);
}

static void put_file(const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    put_bytes(path, text, strlen(text));
}

static void cleanup(void)
{
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", scratch, fixtures[i][0]);
        unlink(path);
    }
    rmdir(tmp_dir);
    if (own_scratch)
        rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *given = getenv("FUZZ_SCRATCH");
    if (given && given[0] == '/') {
        snprintf(scratch, sizeof scratch, "%s/kubeconfig.%ld", given,
                 (long)getpid());
        FUZZ_CHECK(mkdir(scratch, 0700) == 0 || errno == EEXIST,
                   "cannot create %s: %s", scratch, strerror(errno));
        own_scratch = true;
    } else {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)
                               ? "/dev/shm" : "/tmp";
        snprintf(scratch, sizeof scratch, "%s/fuzz-kubeconfig-XXXXXX", base);
        FUZZ_CHECK(mkdtemp(scratch) != NULL, "mkdtemp: %s", strerror(errno));
        own_scratch = true;
    }
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        put_file(fixtures[i][0], fixtures[i][1]);
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", scratch);
    FUZZ_CHECK(mkdir(tmp_dir, 0700) == 0 || errno == EEXIST, "mkdir %s",
               tmp_dir);
    setenv("TMPDIR", tmp_dir, 1);
    snprintf(config_path, sizeof config_path, "%s/kubeconfig", scratch);
    atexit(cleanup);
    return 0;
}

static void check_tmp_empty(void)
{
    DIR *d = opendir(tmp_dir);
    FUZZ_CHECK(d != NULL, "opendir %s: %s", tmp_dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        FUZZ_CHECK(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0,
                   "kube_config_free left %s/%s behind", tmp_dir, e->d_name);
    closedir(d);
}

static void check_file(const char *path, const char *what)
{
    if (path[0] == '\0')
        return;
    struct stat st;
    FUZZ_CHECK(path[0] == '/' && stat(path, &st) == 0 && S_ISREG(st.st_mode),
               "%s \"%s\" is not an existing file", what, path);
}

static void check_config(const struct kube_config *c)
{
    static const char https[] = "https://";
    size_t n = strnlen(c->server, sizeof c->server);
    FUZZ_CHECK(n < sizeof c->server, "server not terminated");
    FUZZ_CHECK(strncmp(c->server, https, sizeof https - 1) == 0 &&
                   n > sizeof https - 1 && c->server[sizeof https - 1] != '/',
               "server \"%s\"", c->server);
    FUZZ_CHECK(n == sizeof https || c->server[n - 1] != '/',
               "server \"%s\" ends in '/'", c->server);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)c->server[i] > ' ' && c->server[i] != 0x7f,
                   "server has a control character");
    size_t t = strnlen(c->token, sizeof c->token);
    FUZZ_CHECK(t < sizeof c->token, "token not terminated");
    for (size_t i = 0; i < t; i++)
        FUZZ_CHECK((unsigned char)c->token[i] > ' ' &&
                       (unsigned char)c->token[i] < 0x7f,
                   "token byte 0x%02x at %zu", (unsigned char)c->token[i], i);
    FUZZ_CHECK((c->cert_file[0] == '\0') == (c->key_file[0] == '\0'),
               "client certificate without key or key without certificate");
    FUZZ_CHECK(!c->insecure_skip_verify || c->ca_file[0] == '\0',
               "a CA together with insecure-skip-tls-verify");
    FUZZ_CHECK(c->namespace_[0] == '\0' || kcfg_namespace_valid(c->namespace_),
               "namespace \"%s\"", c->namespace_);
    check_file(c->ca_file, "certificate-authority");
    check_file(c->cert_file, "client-certificate");
    check_file(c->key_file, "client-key");
    check_file(c->token_file, "tokenFile");
    if (c->tmp_dir[0]) {
        size_t k = strlen(tmp_dir);
        FUZZ_CHECK(strncmp(c->tmp_dir, tmp_dir, k) == 0 && c->tmp_dir[k] == '/',
                   "private dir %s outside $TMPDIR %s", c->tmp_dir, tmp_dir);
    }
    FUZZ_CHECK(strncmp(c->source, "kubeconfig ", 11) == 0, "source \"%s\"",
               c->source);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* kcfg_read_file hands the parser a NUL-terminated copy. */
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    memcpy(buf, data, size);
    buf[size] = '\0';

    char err[KCFG_MSG_MAX];
    err[0] = '\0';
    memset(&cfg, 0, sizeof cfg);
    int rc;
    if (size % 8 == 0) {
        /* One input in eight takes the whole public path, file read and
         * free-on-failure included (deterministic: by size). */
        put_bytes(config_path, data, size);
        rc = kube_config_from_file(config_path, NULL, &cfg, err, sizeof err);
        FUZZ_CHECK(unlink(config_path) == 0, "unlink %s", config_path);
        if (rc != 0)
            FUZZ_CHECK(cfg.tmp_dir[0] == '\0' && cfg.server[0] == '\0',
                       "kube_config_from_file failed without clearing the result");
    } else {
        rc = kcfg_parse(config_path, buf, size, NULL, &cfg, err, sizeof err);
    }
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    FUZZ_CHECK(strnlen(err, sizeof err) < sizeof err, "err not terminated");
    if (rc == 0)
        check_config(&cfg);
    else
        FUZZ_CHECK(err[0] != '\0', "failed without a message");
    kube_config_free(&cfg);
    check_tmp_empty();
    free(buf);
    return 0;
}
