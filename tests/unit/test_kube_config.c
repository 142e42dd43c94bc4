/*
 * test_kube_config.c — kubeconfig parsing (paths, inline data, tokens,
 * contexts, unsupported auth, broken and hostile files), the in-cluster
 * config, and which source kube_config_load picks.
 *
 * Every test gets its own temp root (also $TMPDIR, so the private files
 * for inline data land there and leftovers are visible) and its own
 * environment, restored afterwards.
 */
#include <criterion/criterion.h>

#include "base64.h"
#include "kube_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERR_MAX 1024
#define TEXT_MAX 16384
#define ROOT_MAX 256   /* keeps root + a relative name inside PATH_MAX */

static const char *const ca_pem =
    "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n";
static const char *const cert_pem =
    "-----BEGIN CERTIFICATE-----\nMIIBfakeCert\n-----END CERTIFICATE-----\n";
static const char *const key_pem =
    "-----BEGIN PRIVATE KEY-----\nMIIEfakeKey\n-----END PRIVATE KEY-----\n";

static const char *const env_names[] = {
    "KUBECONFIG", "HOME", "TMPDIR", "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
};
#define ENV_N (sizeof env_names / sizeof env_names[0])
static char *env_saved[ENV_N];

static char root[ROOT_MAX];
static char tmp[ROOT_MAX + 8];   /* $TMPDIR for the code under test */
static char cwd_saved[PATH_MAX];
static char err[ERR_MAX];

/* ---- helpers ------------------------------------------------------------ */

static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[PATH_MAX * 2];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            rm_tree(child);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void setup(void)
{
    for (size_t i = 0; i < ENV_N; i++) {
        const char *v = getenv(env_names[i]);
        env_saved[i] = v ? strdup(v) : NULL;
        unsetenv(env_names[i]);
    }
    cr_assert_not_null(getcwd(cwd_saved, sizeof cwd_saved));
    snprintf(root, sizeof root, "/tmp/kcfg-test-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    snprintf(tmp, sizeof tmp, "%s/tmp", root);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    setenv("TMPDIR", tmp, 1);
    err[0] = '\0';
}

static void teardown(void)
{
    if (chdir(cwd_saved) != 0)
        cr_log_warn("chdir back: %s", strerror(errno));
    rm_tree(root);
    for (size_t i = 0; i < ENV_N; i++) {
        if (env_saved[i])
            setenv(env_names[i], env_saved[i], 1);
        else
            unsetenv(env_names[i]);
        free(env_saved[i]);
        env_saved[i] = NULL;
    }
}

TestSuite(kube_config, .init = setup, .fini = teardown);

/* root/rel into out (PATH_MAX). */
static char *at(char *out, const char *rel)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", root, rel);
    cr_assert(n > 0 && n < PATH_MAX, "path %s/%s too long", root, rel);
    return out;
}

static void mkdir_in(const char *rel)
{
    char p[PATH_MAX];
    cr_assert_eq(mkdir(at(p, rel), 0700), 0, "mkdir %s", p);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Writes root/rel and returns its path in out (PATH_MAX). */
static char *put(char *out, const char *rel, const char *text)
{
    at(out, rel);
    write_bytes(out, text, strlen(text));
    return out;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
    char *buf = calloc(1, TEXT_MAX);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, TEXT_MAX - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *b64(const char *s)
{
    char *out = b64_encode((const unsigned char *)s, strlen(s));
    cr_assert_not_null(out);
    return out;
}

static size_t dir_entries(const char *path)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d, "opendir %s", path);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* A kubeconfig with one context "dev" -> cluster "c1", user "u1";
 * cluster and user bodies are given (indented 4 spaces). */
static char *one_context(char *out, const char *cluster_body,
                         const char *user_body)
{
    char text[TEXT_MAX];
    int n = snprintf(text, sizeof text,
             "apiVersion: v1\n"
             "kind: Config\n"
             "current-context: dev\n"
             "contexts:\n"
             "- name: dev\n"
             "  context:\n"
             "    cluster: c1\n"
             "    user: u1\n"
             "clusters:\n"
             "- name: c1\n"
             "  cluster:\n"
             "%s"
             "users:\n"
             "- name: u1\n"
             "  user:\n"
             "%s",
             cluster_body, user_body);
    cr_assert(n > 0 && (size_t)n < sizeof text);
    return put(out, "config", text);
}

#define SERVER_LINE "    server: https://api.example.com:6443\n"

/* Loads path, expecting failure with a message containing want. */
static void expect_fail(const char *path, const char *context,
                        const char *want)
{
    struct kube_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);   /* must be reset on failure */
    int rc = kube_config_from_file(path, context, &cfg, err, sizeof err);
    cr_assert_eq(rc, -1, "expected failure for %s", path);
    cr_assert_not_null(strstr(err, want), "error \"%s\" lacks \"%s\"", err,
                       want);
    cr_assert_eq(cfg.tmp_dir[0], '\0');
    cr_assert_eq(cfg.token[0], '\0');
    kube_config_free(&cfg);
    cr_assert_eq(dir_entries(tmp), 0, "temp files left behind");
}

static void expect_ok(const char *path, const char *context,
                      struct kube_config *cfg)
{
    int rc = kube_config_from_file(path, context, cfg, err, sizeof err);
    cr_assert_eq(rc, 0, "load %s: %s", path, err);
}

/* ---- files ---------------------------------------------------------------- */

Test(kube_config, absolute_paths)
{
    char ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], cfgp[PATH_MAX];
    char cl[TEXT_MAX], us[TEXT_MAX];
    put(ca, "ca.crt", ca_pem);
    put(crt, "client.crt", cert_pem);
    put(key, "client.key", key_pem);
    snprintf(cl, sizeof cl, SERVER_LINE "    certificate-authority: %s\n", ca);
    snprintf(us, sizeof us,
             "    client-certificate: %s\n    client-key: %s\n", crt, key);
    one_context(cfgp, cl, us);

    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_eq(cfg.server, "https://api.example.com:6443");
    cr_assert_str_eq(cfg.ca_file, ca);
    cr_assert_str_eq(cfg.cert_file, crt);
    cr_assert_str_eq(cfg.key_file, key);
    cr_assert_str_empty(cfg.token);
    cr_assert_str_empty(cfg.token_file);
    cr_assert_str_empty(cfg.tmp_dir);
    cr_assert_str_empty(cfg.namespace_);
    cr_assert_not(cfg.insecure_skip_verify);
    cr_assert_eq(strncmp(cfg.source, "kubeconfig ", 11), 0);
    cr_assert_not_null(strstr(cfg.source, cfgp));
    kube_config_free(&cfg);
    /* the user's own files are never removed */
    cr_assert_eq(access(ca, F_OK), 0);
    cr_assert_eq(access(key, F_OK), 0);
}

Test(kube_config, relative_paths_resolve_against_kubeconfig_dir)
{
    char p[PATH_MAX], want[PATH_MAX];
    mkdir_in("kube");
    mkdir_in("kube/pki");
    put(p, "kube/pki/ca.crt", ca_pem);
    put(p, "kube/pki/c.crt", cert_pem);
    put(p, "kube/pki/c.key", key_pem);
    put(p, "kube/tok", "abc\n");
    put(p, "kube/config",
        "current-context: dev\n"
        "contexts: [{name: dev, context: {cluster: c1, user: u1}}]\n"
        "clusters:\n"
        "- name: c1\n"
        "  cluster: {server: 'https://k:6443', certificate-authority: "
        "pki/ca.crt}\n"
        "users:\n"
        "- name: u1\n"
        "  user:\n"
        "    client-certificate: pki/c.crt\n"
        "    client-key: ./pki/c.key\n"
        "    tokenFile: tok\n");

    /* loaded by a relative path, from another working directory */
    cr_assert_eq(chdir(root), 0);
    struct kube_config cfg;
    expect_ok("kube/config", NULL, &cfg);
    cr_assert_str_eq(cfg.ca_file, at(want, "kube/pki/ca.crt"));
    cr_assert_str_eq(cfg.cert_file, at(want, "kube/pki/c.crt"));
    cr_assert_str_eq(cfg.key_file, at(want, "kube/./pki/c.key"));
    cr_assert_str_eq(cfg.token_file, at(want, "kube/tok"));
    cr_assert_eq(cfg.ca_file[0], '/');
    kube_config_free(&cfg);

    /* a missing relative file is named by its resolved path */
    cr_assert_eq(unlink(at(p, "kube/pki/ca.crt")), 0);
    expect_fail("kube/config", NULL, "certificate-authority");
    expect_fail("kube/config", NULL, at(want, "kube/pki/ca.crt"));
}

Test(kube_config, inline_data_goes_to_private_files)
{
    char *ca = b64(ca_pem), *crt = b64(cert_pem), *key = b64(key_pem);
    char cl[TEXT_MAX], us[TEXT_MAX], cfgp[PATH_MAX];
    snprintf(cl, sizeof cl, SERVER_LINE "    certificate-authority-data: %s\n",
             ca);
    snprintf(us, sizeof us,
             "    client-certificate-data: %s\n    client-key-data: %s\n", crt,
             key);
    one_context(cfgp, cl, us);

    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_not_empty(cfg.tmp_dir);
    cr_assert_eq(strncmp(cfg.tmp_dir, tmp, strlen(tmp)), 0,
                 "%s not under $TMPDIR", cfg.tmp_dir);
    struct stat st;
    cr_assert_eq(stat(cfg.tmp_dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0700);

    const char *files[] = {cfg.ca_file, cfg.cert_file, cfg.key_file};
    const char *want[] = {ca_pem, cert_pem, key_pem};
    char dir_slash[PATH_MAX + 1];
    snprintf(dir_slash, sizeof dir_slash, "%s/", cfg.tmp_dir);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(strncmp(files[i], dir_slash, strlen(dir_slash)), 0);
        cr_assert_eq(lstat(files[i], &st), 0);
        cr_assert(S_ISREG(st.st_mode));
        cr_assert_eq(st.st_mode & 07777, 0600, "%s mode %o", files[i],
                     st.st_mode & 07777);
        char *got = slurp(files[i]);
        cr_assert_str_eq(got, want[i]);
        free(got);
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", cfg.tmp_dir);
    kube_config_free(&cfg);
    cr_assert_eq(access(dir, F_OK), -1, "%s still exists", dir);
    cr_assert_eq(dir_entries(tmp), 0);
    cr_assert_str_empty(cfg.tmp_dir);
    cr_assert_str_empty(cfg.cert_file);
    free(ca);
    free(crt);
    free(key);
}

Test(kube_config, inline_base64_may_be_folded)
{
    /* base64 split over lines, as a folded YAML scalar or a PEM body */
    char *ca = b64(ca_pem);
    char folded[TEXT_MAX / 2], cl[TEXT_MAX], cfgp[PATH_MAX];
    size_t n = strlen(ca), o = 0;
    for (size_t i = 0; i < n; i++) {
        folded[o++] = ca[i];
        if (i % 20 == 19) {
            memcpy(folded + o, "\n      ", 7);
            o += 7;
        }
    }
    folded[o] = '\0';
    snprintf(cl, sizeof cl,
             SERVER_LINE "    certificate-authority-data: |\n      %s\n",
             folded);
    one_context(cfgp, cl, "    token: t\n");
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    char *got = slurp(cfg.ca_file);
    cr_assert_str_eq(got, ca_pem);
    free(got);
    kube_config_free(&cfg);
    free(ca);
}

Test(kube_config, ca_data_wins_over_ca_file)
{
    char *ca = b64(ca_pem);
    char cl[TEXT_MAX], cfgp[PATH_MAX];
    snprintf(cl, sizeof cl,
             SERVER_LINE "    certificate-authority: /nonexistent/ca.crt\n"
                         "    certificate-authority-data: %s\n", ca);
    one_context(cfgp, cl, "    token: t\n");
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_not_null(strstr(cfg.ca_file, cfg.tmp_dir));
    kube_config_free(&cfg);
    free(ca);
}

Test(kube_config, client_cert_file_and_data_both_refused)
{
    char *crt = b64(cert_pem);
    char us[TEXT_MAX], p[PATH_MAX], cfgp[PATH_MAX];
    put(p, "c.crt", cert_pem);
    snprintf(us, sizeof us,
             "    client-certificate: %s\n    client-certificate-data: %s\n"
             "    client-key: %s\n", p, crt, p);
    one_context(cfgp, SERVER_LINE, us);
    expect_fail(cfgp, NULL, "both client-certificate and "
                            "client-certificate-data are set");
    free(crt);
}

Test(kube_config, cert_without_key_refused)
{
    char us[TEXT_MAX], p[PATH_MAX], cfgp[PATH_MAX];
    put(p, "c.crt", cert_pem);
    snprintf(us, sizeof us, "    client-certificate: %s\n", p);
    one_context(cfgp, SERVER_LINE, us);
    expect_fail(cfgp, NULL, "client-certificate is set but client-key is "
                            "not");
    char *key = b64(key_pem);
    snprintf(us, sizeof us, "    client-key-data: %s\n", key);
    one_context(cfgp, SERVER_LINE, us);
    expect_fail(cfgp, NULL, "client-key is set but client-certificate is "
                            "not");
    free(key);
}

/* ---- tokens ---------------------------------------------------------------- */

Test(kube_config, static_token)
{
    char cfgp[PATH_MAX];
    one_context(cfgp, SERVER_LINE, "    token: eyJhbGciOi.payload.sig\n");
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_eq(cfg.token, "eyJhbGciOi.payload.sig");
    cr_assert_str_empty(cfg.token_file);
    cr_assert_str_empty(cfg.cert_file);
    cr_assert_null(strstr(cfg.source, "eyJ"), "source leaks the token");
    kube_config_free(&cfg);
    cr_assert_str_empty(cfg.token);
}

Test(kube_config, token_file)
{
    char cfgp[PATH_MAX], tok[PATH_MAX], us[TEXT_MAX];
    put(tok, "token", "abc\n");
    snprintf(us, sizeof us, "    tokenFile: %s\n", tok);
    one_context(cfgp, SERVER_LINE, us);
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_eq(cfg.token_file, tok);
    cr_assert_str_empty(cfg.token);
    kube_config_free(&cfg);

    cr_assert_eq(unlink(tok), 0);
    expect_fail(cfgp, NULL, "tokenFile");
}

Test(kube_config, token_wins_over_token_file)
{
    char cfgp[PATH_MAX], tok[PATH_MAX], us[TEXT_MAX];
    put(tok, "token", "fromfile\n");
    snprintf(us, sizeof us, "    token: inline\n    tokenFile: %s\n", tok);
    one_context(cfgp, SERVER_LINE, us);
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_eq(cfg.token, "inline");
    cr_assert_str_empty(cfg.token_file);
    kube_config_free(&cfg);
}

Test(kube_config, token_with_control_characters_refused)
{
    char cfgp[PATH_MAX];
    one_context(cfgp, SERVER_LINE, "    token: \"abc\\r\\nX-Evil: 1\"\n");
    expect_fail(cfgp, NULL, "token contains a space, a control character");
    one_context(cfgp, SERVER_LINE, "    token: \"abc\\0def\"\n");
    expect_fail(cfgp, NULL, "token contains a NUL byte");
}

Test(kube_config, anonymous_user_allowed)
{
    char cfgp[PATH_MAX];
    put(cfgp, "config",
        "current-context: dev\n"
        "contexts: [{name: dev, context: {cluster: c1}}]\n"
        "clusters: [{name: c1, cluster: {server: 'https://k'}}]\n");
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_eq(cfg.server, "https://k");
    cr_assert_str_empty(cfg.token);
    cr_assert_str_empty(cfg.cert_file);
    kube_config_free(&cfg);
}

/* ---- contexts ---------------------------------------------------------------- */

static char *two_contexts(char *out, const char *current)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof text,
             "%s"
             "contexts:\n"
             "- name: dev\n"
             "  context: {cluster: c-dev, user: u-dev, namespace: team-a}\n"
             "- name: prod\n"
             "  context: {cluster: c-prod, user: u-prod}\n"
             "clusters:\n"
             "- {name: c-dev, cluster: {server: 'https://dev:6443'}}\n"
             "- {name: c-prod, cluster: {server: 'https://prod:6443/'}}\n"
             "users:\n"
             "- {name: u-dev, user: {token: dev-token}}\n"
             "- {name: u-prod, user: {token: prod-token}}\n",
             current);
    return put(out, "config", text);
}

Test(kube_config, current_context_and_its_namespace)
{
    char cfgp[PATH_MAX];
    two_contexts(cfgp, "current-context: dev\n");
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_eq(cfg.server, "https://dev:6443");
    cr_assert_str_eq(cfg.token, "dev-token");
    cr_assert_str_eq(cfg.namespace_, "team-a");
    cr_assert_not_null(strstr(cfg.source, "dev"));
    kube_config_free(&cfg);
}

Test(kube_config, explicit_context_overrides_current)
{
    char cfgp[PATH_MAX];
    two_contexts(cfgp, "current-context: dev\n");
    struct kube_config cfg;
    expect_ok(cfgp, "prod", &cfg);
    cr_assert_str_eq(cfg.server, "https://prod:6443");   /* '/' stripped */
    cr_assert_str_eq(cfg.token, "prod-token");
    cr_assert_str_empty(cfg.namespace_);
    cr_assert_not_null(strstr(cfg.source, "prod"));
    kube_config_free(&cfg);
    expect_fail(cfgp, "", "context name is empty");
}

Test(kube_config, missing_current_context)
{
    char cfgp[PATH_MAX];
    two_contexts(cfgp, "");
    expect_fail(cfgp, NULL, "current-context is not set");
    two_contexts(cfgp, "current-context: \"\"\n");
    expect_fail(cfgp, NULL, "current-context is not set");
    /* an explicit context needs no current-context */
    struct kube_config cfg;
    expect_ok(cfgp, "dev", &cfg);
    kube_config_free(&cfg);
}

Test(kube_config, context_not_found_lists_the_known_ones)
{
    char cfgp[PATH_MAX];
    two_contexts(cfgp, "current-context: staging\n");
    expect_fail(cfgp, NULL, "context \"staging\" not found (contexts: dev, "
                            "prod)");
    expect_fail(cfgp, "nope", "context \"nope\" not found");
}

Test(kube_config, cluster_and_user_not_found)
{
    char cfgp[PATH_MAX];
    put(cfgp, "config",
        "current-context: a\n"
        "contexts: [{name: a, context: {cluster: gone, user: u}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://x'}}]\n"
        "users: [{name: u, user: {}}]\n");
    expect_fail(cfgp, NULL, "cluster \"gone\" not found (clusters: c)");
    put(cfgp, "config",
        "current-context: a\n"
        "contexts: [{name: a, context: {cluster: c, user: gone}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://x'}}]\n");
    expect_fail(cfgp, NULL, "user \"gone\" not found (users: none)");
    put(cfgp, "config",
        "current-context: a\n"
        "contexts: [{name: a, context: {user: u}}]\n");
    expect_fail(cfgp, NULL, "context \"a\" names no cluster");
}

Test(kube_config, invalid_context_namespace)
{
    char cfgp[PATH_MAX];
    put(cfgp, "config",
        "current-context: a\n"
        "contexts: [{name: a, context: {cluster: c, namespace: Not_Valid}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://x'}}]\n");
    expect_fail(cfgp, NULL, "namespace \"Not_Valid\" is not a valid "
                            "namespace name");
}

Test(kube_config, duplicates_refused)
{
    char cfgp[PATH_MAX];
    put(cfgp, "config",
        "current-context: a\n"
        "contexts:\n"
        "- {name: a, context: {cluster: c}}\n"
        "- {name: a, context: {cluster: d}}\n"
        "clusters: [{name: c, cluster: {server: 'https://x'}}]\n");
    expect_fail(cfgp, NULL, "context \"a\" is defined twice");
    put(cfgp, "config",
        "current-context: a\n"
        "contexts: [{name: a, context: {cluster: c}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://x', "
        "server: 'https://y'}}]\n");
    expect_fail(cfgp, NULL, "key \"server\" appears twice");
}

Test(kube_config, nulls_are_absent)
{
    char cfgp[PATH_MAX];
    put(cfgp, "config",
        "current-context: a\n"
        "contexts: [{name: a, context: {cluster: c, user: u, namespace: ~}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://x', "
        "certificate-authority: null, insecure-skip-tls-verify: }}]\n"
        "users: [{name: u, user: {exec: null, token: ~, tokenFile: \"\"}}]\n");
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_empty(cfg.namespace_);
    cr_assert_str_empty(cfg.ca_file);
    cr_assert_str_empty(cfg.token);
    cr_assert_str_empty(cfg.token_file);
    kube_config_free(&cfg);
}

/* ---- server and TLS ----------------------------------------------------------- */

Test(kube_config, server_must_be_https)
{
    char cfgp[PATH_MAX];
    one_context(cfgp, "    server: http://127.0.0.1:8080\n", "");
    expect_fail(cfgp, NULL, "is plain http");
    one_context(cfgp, "    server: api.example.com:6443\n", "");
    expect_fail(cfgp, NULL, "is not an https:// URL");
    one_context(cfgp, "    server: https://\n", "");
    expect_fail(cfgp, NULL, "has no host");
    one_context(cfgp, "    server: \"https://a b\"\n", "");
    expect_fail(cfgp, NULL, "contains a space");
    one_context(cfgp, "    certificate-authority: /x\n", "");
    expect_fail(cfgp, NULL, "cluster \"c1\" has no server");
}

Test(kube_config, server_normalised)
{
    char cfgp[PATH_MAX];
    one_context(cfgp, "    server: HTTPS://Api.Example.com:6443/k8s//\n", "");
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_str_eq(cfg.server, "https://Api.Example.com:6443/k8s");
    kube_config_free(&cfg);
}

Test(kube_config, insecure_skip_tls_verify)
{
    char cfgp[PATH_MAX], ca[PATH_MAX], cl[TEXT_MAX];
    one_context(cfgp, SERVER_LINE "    insecure-skip-tls-verify: true\n",
                "    token: t\n");
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert(cfg.insecure_skip_verify);
    kube_config_free(&cfg);

    put(ca, "ca.crt", ca_pem);
    snprintf(cl, sizeof cl,
             SERVER_LINE "    insecure-skip-tls-verify: yes\n"
                         "    certificate-authority: %s\n", ca);
    one_context(cfgp, cl, "");
    expect_fail(cfgp, NULL, "insecure-skip-tls-verify cannot be combined");
    one_context(cfgp, SERVER_LINE "    insecure-skip-tls-verify: maybe\n", "");
    expect_fail(cfgp, NULL, "insecure-skip-tls-verify must be true or false");
}

Test(kube_config, unsupported_cluster_options_refused)
{
    char cfgp[PATH_MAX];
    one_context(cfgp, SERVER_LINE "    proxy-url: http://proxy:3128\n", "");
    expect_fail(cfgp, NULL, "proxy-url is not supported");
    one_context(cfgp, SERVER_LINE "    tls-server-name: kubernetes\n", "");
    expect_fail(cfgp, NULL, "tls-server-name is not supported");
}

/* ---- unsupported auth ---------------------------------------------------------- */

Test(kube_config, exec_plugin_refused_by_name)
{
    char cfgp[PATH_MAX];
    put(cfgp, "config",
        "current-context: gke\n"
        "contexts: [{name: gke, context: {cluster: c, user: gke}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://x'}}]\n"
        "users:\n"
        "- name: gke\n"
        "  user:\n"
        "    exec:\n"
        "      apiVersion: client.authentication.k8s.io/v1beta1\n"
        "      command: gke-gcloud-auth-plugin\n"
        "      provideClusterInfo: true\n");
    char want[PATH_MAX + 256];
    snprintf(want, sizeof want,
             "kubeconfig %s: user \"gke\": exec credential plugins are not "
             "supported (command \"gke-gcloud-auth-plugin\"); use a client "
             "certificate or a token", cfgp);
    expect_fail(cfgp, NULL, want);
    cr_assert_str_eq(err, want);
}

Test(kube_config, auth_provider_refused_by_name)
{
    char cfgp[PATH_MAX];
    one_context(cfgp, SERVER_LINE,
                "    auth-provider:\n      name: oidc\n"
                "      config: {idp-issuer-url: 'https://issuer'}\n");
    expect_fail(cfgp, NULL, "user \"u1\": auth-provider \"oidc\" is not "
                            "supported; use a client certificate or a token");
    one_context(cfgp, SERVER_LINE, "    auth-provider: weird\n");
    expect_fail(cfgp, NULL, "auth-provider is not supported");
    one_context(cfgp, SERVER_LINE, "    exec: {command: [not, a, string]}\n");
    expect_fail(cfgp, NULL, "exec credential plugins are not supported; use");
}

Test(kube_config, basic_auth_and_impersonation_refused)
{
    char cfgp[PATH_MAX];
    one_context(cfgp, SERVER_LINE, "    username: admin\n    password: pw\n");
    expect_fail(cfgp, NULL, "basic authentication (username/password) is "
                            "not supported");
    cr_assert_null(strstr(err, "pw\""), "message leaks the password");
    one_context(cfgp, SERVER_LINE, "    token: t\n    as: someone\n");
    expect_fail(cfgp, NULL, "impersonation (as) is not supported");
}

/* ---- broken and hostile files ----------------------------------------------------- */

Test(kube_config, missing_file)
{
    char p[PATH_MAX];
    expect_fail(at(p, "nope"), NULL, "No such file or directory");
    cr_assert_not_null(strstr(err, p));
    expect_fail(root, NULL, "not a regular file");
    expect_fail("", NULL, "path is empty");
}

/* A FIFO where a file should be: open(2) for reading waits for a writer
 * that never comes, so the operator hung at start before the regular-file
 * check.  Each path is refused at once; the timeout turns a regression
 * into a failure instead of a hang. */
#define FIFO_TEST_TIMEOUT_S 20

Test(kube_config, fifo_in_place_of_any_file_is_refused_without_blocking,
     .timeout = FIFO_TEST_TIMEOUT_S)
{
    char fifo[PATH_MAX], cfgp[PATH_MAX], body[TEXT_MAX];
    cr_assert_eq(mkfifo(at(fifo, "fifo"), 0600), 0, "%s", strerror(errno));
    expect_fail(fifo, NULL, "not a regular file");

    snprintf(body, sizeof body, SERVER_LINE "    certificate-authority: %s\n", fifo);
    one_context(cfgp, body, "    token: t\n");
    expect_fail(cfgp, NULL, "not a regular file");

    snprintf(body, sizeof body, "    tokenFile: %s\n", fifo);
    one_context(cfgp, SERVER_LINE, body);
    expect_fail(cfgp, NULL, "not a regular file");

    char crt[PATH_MAX];
    put(crt, "client.crt", cert_pem);
    snprintf(body, sizeof body, "    client-certificate: %s\n    client-key: %s\n",
             crt, fifo);
    one_context(cfgp, SERVER_LINE, body);
    expect_fail(cfgp, NULL, "not a regular file");
}

Test(kube_config, broken_yaml)
{
    char cfgp[PATH_MAX];
    put(cfgp, "config", "current-context: a\ncontexts: [\n  - : : {\n");
    expect_fail(cfgp, NULL, "not valid YAML at line");
    put(cfgp, "config", "a: b\n  c: d\n");
    expect_fail(cfgp, NULL, "not valid YAML at line 2");
    put(cfgp, "config", "current-context: \"\xff\xfe\"\n");
    expect_fail(cfgp, NULL, "not valid YAML");
    put(cfgp, "config", "");
    expect_fail(cfgp, NULL, "is empty");
    put(cfgp, "config", "# only a comment\n");
    expect_fail(cfgp, NULL, "is empty");
    put(cfgp, "config", "*unknown_alias\n");
    expect_fail(cfgp, NULL, "not valid YAML");
}

Test(kube_config, wrong_types)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"- a\n- b\n", "top level is a list, not a mapping"},
        {"just a string\n", "top level is a string"},
        {"current-context: [a]\n", "current-context must be a string, not "
                                   "a list"},
        {"current-context: a\ncontexts: oops\n", "contexts must be a list, "
                                                 "not a string"},
        {"current-context: a\ncontexts: [oops]\n", "contexts[0] must be a "
                                                   "mapping, not a string"},
        {"current-context: a\ncontexts: [{name: {x: 1}}]\n",
         "contexts[0]: name must be a string, not a mapping"},
        {"current-context: a\ncontexts: [{name: a, context: [c]}]\n",
         "context \"a\": context must be a mapping, not a list"},
        {"current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
         "clusters: {c: 1}\n", "clusters must be a list, not a mapping"},
        {"current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
         "clusters: [{name: c, cluster: {server: {url: x}}}]\n",
         "cluster \"c\": server must be a string, not a mapping"},
        {"current-context: a\n"
         "contexts: [{name: a, context: {cluster: c, user: u}}]\n"
         "clusters: [{name: c, cluster: {server: 'https://x'}}]\n"
         "users: [{name: u, user: [token]}]\n",
         "user \"u\": user must be a mapping, not a list"},
        {"current-context: a\n"
         "contexts: [{name: a, context: {cluster: c, user: u}}]\n"
         "clusters: [{name: c, cluster: {server: 'https://x'}}]\n"
         "users: [{name: u, user: {token: [a]}}]\n",
         "user \"u\": token must be a string, not a list"},
    };
    char cfgp[PATH_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put(cfgp, "config", cases[i].text);
        expect_fail(cfgp, NULL, cases[i].want);
    }
}

Test(kube_config, huge_file_refused)
{
    char cfgp[PATH_MAX];
    put(cfgp, "config", "current-context: a\n");
    cr_assert_eq(truncate(cfgp, KUBE_CONFIG_FILE_MAX + 1), 0);
    expect_fail(cfgp, NULL, "larger than");
    /* exactly the cap is read (and then found wanting) */
    cr_assert_eq(truncate(cfgp, KUBE_CONFIG_FILE_MAX), 0);
    struct kube_config cfg;
    cr_assert_eq(kube_config_from_file(cfgp, NULL, &cfg, err, sizeof err), -1);
    cr_assert_null(strstr(err, "larger than"), "%s", err);
    kube_config_free(&cfg);
}

Test(kube_config, deep_nesting_refused)
{
    char cfgp[PATH_MAX];
    size_t depth = 100000;
    char *text = malloc(2 * depth + 1);
    cr_assert_not_null(text);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[2 * depth] = '\0';
    put(cfgp, "config", text);
    free(text);
    expect_fail(cfgp, NULL, "nested more than");
}

Test(kube_config, too_many_nodes_refused)
{
    char cfgp[PATH_MAX];
    size_t n = 300000;
    char *text = malloc(2 * n + 8);
    cr_assert_not_null(text);
    size_t o = 0;
    text[o++] = '[';
    for (size_t i = 0; i < n; i++) {
        text[o++] = 'a';
        text[o++] = ',';
    }
    text[o - 1] = ']';
    text[o] = '\0';
    put(cfgp, "config", text);
    free(text);
    expect_fail(cfgp, NULL, "YAML nodes");
}

Test(kube_config, aliases_do_not_multiply)
{
    /* a "billion laughs" file stays small: aliases are shared nodes */
    char cfgp[PATH_MAX];
    put(cfgp, "config",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "current-context: x\n"
        "contexts: [*e, *e, *e]\n");
    expect_fail(cfgp, NULL, "contexts[0] must be a mapping, not a list");
}

Test(kube_config, bad_base64)
{
    char cfgp[PATH_MAX], cl[TEXT_MAX];
    one_context(cfgp, SERVER_LINE "    certificate-authority-data: abc$\n", "");
    expect_fail(cfgp, NULL, "certificate-authority-data is not valid base64: "
                            "unexpected '$' at offset 3");
    one_context(cfgp, SERVER_LINE "    certificate-authority-data: abcde\n", "");
    expect_fail(cfgp, NULL, "ends in the middle of a 4-character group");
    one_context(cfgp, SERVER_LINE "    certificate-authority-data: ab=c\n", "");
    expect_fail(cfgp, NULL, "not valid base64");
    /* base64 of something that is not PEM (e.g. encoded twice) */
    char *once = b64(ca_pem), *twice = b64(once);
    snprintf(cl, sizeof cl, SERVER_LINE "    certificate-authority-data: %s\n",
             twice);
    one_context(cfgp, cl, "");
    expect_fail(cfgp, NULL, "does not decode to PEM");
    free(once);
    free(twice);
    /* a good CA but a bad key: the CA file already written is removed */
    char *ca = b64(ca_pem), *crt = b64(cert_pem), us[TEXT_MAX];
    snprintf(cl, sizeof cl, SERVER_LINE "    certificate-authority-data: %s\n",
             ca);
    snprintf(us, sizeof us, "    client-certificate-data: %s\n"
                            "    client-key-data: \"%%%%\"\n", crt);
    one_context(cfgp, cl, us);
    expect_fail(cfgp, NULL, "user \"u1\": client-key-data is not valid base64");
    free(ca);
    free(crt);
}

Test(kube_config, unusable_tmpdir_falls_back_to_tmp)
{
    /* $TMPDIR that is not a directory: /tmp is used instead */
    char *ca = b64(ca_pem);
    char cl[TEXT_MAX], cfgp[PATH_MAX];
    snprintf(cl, sizeof cl, SERVER_LINE "    certificate-authority-data: %s\n",
             ca);
    one_context(cfgp, cl, "");
    setenv("TMPDIR", "relative/dir", 1);
    struct kube_config cfg;
    expect_ok(cfgp, NULL, &cfg);
    cr_assert_eq(strncmp(cfg.tmp_dir, "/tmp/", 5), 0, "%s", cfg.tmp_dir);
    kube_config_free(&cfg);
    free(ca);
}

/* Every prefix of a valid file, and every byte replaced by garbage: either
 * it loads or it fails with a message; it never crashes or leaks files. */
Test(kube_config, truncated_and_corrupted_never_crash)
{
    char *ca = b64(ca_pem), *key = b64(key_pem), *crt = b64(cert_pem);
    char text[TEXT_MAX], cfgp[PATH_MAX];
    int len = snprintf(text, sizeof text,
                       "current-context: dev\n"
                       "contexts:\n- name: dev\n  context: {cluster: c, "
                       "user: u, namespace: ns}\n"
                       "clusters:\n- name: c\n  cluster:\n"
                       "    server: https://k:6443\n"
                       "    certificate-authority-data: %s\n"
                       "users:\n- name: u\n  user:\n"
                       "    client-certificate-data: %s\n"
                       "    client-key-data: %s\n"
                       "    token: tok\n",
                       ca, crt, key);
    cr_assert(len > 0 && (size_t)len < sizeof text);
    at(cfgp, "config");
    static const char garbage[] = {'\0', ':', '[', '{', '&', '*', '\xff', '\n'};
    size_t ok = 0, failed = 0;
    for (int cut = 0; cut <= len; cut++) {
        for (size_t g = 0; g <= sizeof garbage; g++) {
            char copy[TEXT_MAX];
            memcpy(copy, text, (size_t)len);
            size_t n = (size_t)cut;
            if (g < sizeof garbage && cut < len) {
                copy[cut] = garbage[g];
                n = (size_t)len;
            } else if (g < sizeof garbage) {
                continue;
            }
            write_bytes(cfgp, copy, n);
            struct kube_config cfg;
            err[0] = '\0';
            if (kube_config_from_file(cfgp, NULL, &cfg, err, sizeof err) == 0) {
                ok++;
            } else {
                cr_assert_str_not_empty(err);
                failed++;
            }
            kube_config_free(&cfg);
            cr_assert_eq(dir_entries(tmp), 0);
        }
    }
    cr_assert(ok > 0 && failed > 0);
    free(ca);
    free(key);
    free(crt);
}

/* ---- in-cluster ---------------------------------------------------------------- */

static void make_sa(const char *dir, const char *token, const char *ns)
{
    char p[PATH_MAX], f[PATH_MAX];
    mkdir_in(dir);
    snprintf(f, sizeof f, "%s/ca.crt", dir);
    put(p, f, ca_pem);
    if (token) {
        snprintf(f, sizeof f, "%s/token", dir);
        put(p, f, token);
    }
    if (ns) {
        snprintf(f, sizeof f, "%s/namespace", dir);
        put(p, f, ns);
    }
}

Test(kube_config, in_cluster)
{
    char sa[PATH_MAX], want[PATH_MAX];
    make_sa("sa", "eyJtoken\n", " team-b\n");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    struct kube_config cfg;
    int rc = kube_config_in_cluster(at(sa, "sa"), &cfg, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(cfg.server, "https://10.96.0.1:443");
    cr_assert_str_eq(cfg.ca_file, at(want, "sa/ca.crt"));
    cr_assert_str_eq(cfg.token_file, at(want, "sa/token"));
    cr_assert_str_empty(cfg.token);   /* re-read by the client, not here */
    cr_assert_str_eq(cfg.namespace_, "team-b");
    cr_assert_str_eq(cfg.source, "in-cluster");
    cr_assert_str_empty(cfg.tmp_dir);
    kube_config_free(&cfg);
}

Test(kube_config, in_cluster_ipv6_and_no_namespace)
{
    char sa[PATH_MAX];
    make_sa("sa", "tok", NULL);
    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    struct kube_config cfg;
    int rc = kube_config_in_cluster(at(sa, "sa"), &cfg, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(cfg.server, "https://[fd00:10:96::1]:6443");
    cr_assert_str_empty(cfg.namespace_);
    kube_config_free(&cfg);
}

static void in_cluster_fails(const char *sa_rel, const char *want)
{
    char sa[PATH_MAX];
    struct kube_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    int rc = kube_config_in_cluster(at(sa, sa_rel), &cfg, err, sizeof err);
    cr_assert_eq(rc, -1);
    cr_assert_not_null(strstr(err, want), "error \"%s\" lacks \"%s\"", err,
                       want);
    cr_assert_str_empty(cfg.server);
    kube_config_free(&cfg);
}

Test(kube_config, in_cluster_failures)
{
    make_sa("ok", "tok", "default");
    make_sa("notoken", NULL, NULL);
    make_sa("emptytoken", " \n", NULL);
    make_sa("badns", "tok", "Bad Namespace");
    mkdir_in("empty");

    in_cluster_fails("ok", "KUBERNETES_SERVICE_HOST is not set");
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    in_cluster_fails("ok", "KUBERNETES_SERVICE_PORT is not");
    setenv("KUBERNETES_SERVICE_PORT", "99999", 1);
    in_cluster_fails("ok", "is not a port number");
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    setenv("KUBERNETES_SERVICE_HOST", "evil/host@x", 1);
    in_cluster_fails("ok", "is not a host name or IP address");
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);

    in_cluster_fails("empty", "service-account CA");
    in_cluster_fails("notoken", "service-account token");
    in_cluster_fails("emptytoken", "is empty");
    in_cluster_fails("badns", "not a namespace name");
    in_cluster_fails("missing", "No such file or directory");
}

/* ---- which source ----------------------------------------------------------------- */

static char *named_config(char *out, const char *rel, const char *server)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof text,
             "current-context: a\n"
             "contexts: [{name: a, context: {cluster: c}}]\n"
             "clusters: [{name: c, cluster: {server: '%s'}}]\n",
             server);
    return put(out, rel, text);
}

Test(kube_config, load_precedence)
{
    char flag[PATH_MAX], env[PATH_MAX], home_cfg[PATH_MAX], home[PATH_MAX];
    char list[3 * PATH_MAX];
    named_config(flag, "flag.yaml", "https://flag");
    named_config(env, "env.yaml", "https://env");
    mkdir_in("home");
    mkdir_in("home/.kube");
    named_config(home_cfg, "home/.kube/config", "https://home");
    setenv("HOME", at(home, "home"), 1);
    snprintf(list, sizeof list, "::%s:%s", env, flag);
    setenv("KUBECONFIG", list, 1);
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    struct kube_config cfg;

    cr_assert_eq(kube_config_load(flag, &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.server, "https://flag");
    kube_config_free(&cfg);

    /* $KUBECONFIG's first (non-empty) entry beats in-cluster and home */
    cr_assert_eq(kube_config_load(NULL, &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.server, "https://env");
    kube_config_free(&cfg);

    /* in-cluster beats ~/.kube/config; the default SA dir is absent here */
    unsetenv("KUBECONFIG");
    cr_assert_eq(kube_config_load(NULL, &cfg, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "in-cluster"), "%s", err);
    cr_assert_not_null(strstr(err, "chosen because KUBERNETES_SERVICE_HOST"),
                       "%s", err);

    unsetenv("KUBERNETES_SERVICE_HOST");
    cr_assert_eq(kube_config_load(NULL, &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.server, "https://home");
    cr_assert_not_null(strstr(cfg.source, home_cfg));
    kube_config_free(&cfg);
}

Test(kube_config, load_kubeconfig_env_errors_say_so)
{
    char p[PATH_MAX];
    setenv("KUBECONFIG", at(p, "missing.yaml"), 1);
    struct kube_config cfg;
    cr_assert_eq(kube_config_load(NULL, &cfg, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, p), "%s", err);
    cr_assert_not_null(strstr(err, "(from $KUBECONFIG)"), "%s", err);
    kube_config_free(&cfg);
    /* only separators: as if unset */
    setenv("KUBECONFIG", ":::", 1);
    setenv("HOME", root, 1);
    cr_assert_eq(kube_config_load(NULL, &cfg, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "no Kubernetes config found"), "%s", err);
}

Test(kube_config, load_nothing_found_lists_what_was_tried)
{
    char home[PATH_MAX];
    setenv("HOME", at(home, "nohome"), 1);
    struct kube_config cfg;
    cr_assert_eq(kube_config_load(NULL, &cfg, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "--kubeconfig (not given)"), "%s", err);
    cr_assert_not_null(strstr(err, "$KUBECONFIG (not set)"), "%s", err);
    cr_assert_not_null(strstr(err, "KUBERNETES_SERVICE_HOST not set"), "%s",
                       err);
    cr_assert_not_null(strstr(err, "nohome/.kube/config (does not exist)"),
                       "%s", err);
    unsetenv("HOME");
    cr_assert_eq(kube_config_load(NULL, &cfg, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "$HOME is not set"), "%s", err);
}

Test(kube_config, free_is_safe_on_zeroed_and_twice)
{
    struct kube_config cfg;
    memset(&cfg, 0, sizeof cfg);
    kube_config_free(&cfg);
    kube_config_free(&cfg);
    kube_config_free(NULL);
    char *ca = b64(ca_pem);
    char cl[TEXT_MAX], cfgp[PATH_MAX];
    snprintf(cl, sizeof cl, SERVER_LINE "    certificate-authority-data: %s\n",
             ca);
    one_context(cfgp, cl, "    token: secret\n");
    expect_ok(cfgp, NULL, &cfg);
    kube_config_free(&cfg);
    kube_config_free(&cfg);
    cr_assert_eq(dir_entries(tmp), 0);
    free(ca);
}

Test(kube_config, tiny_error_buffers)
{
    char cfgp[PATH_MAX], small[8];
    struct kube_config cfg;
    put(cfgp, "config", "nonsense: [");
    cr_assert_eq(kube_config_from_file(cfgp, NULL, &cfg, small, sizeof small),
                 -1);
    cr_assert_eq(strlen(small), sizeof small - 1);
    cr_assert_eq(kube_config_from_file(cfgp, NULL, &cfg, NULL, 0), -1);
}
