/*
 * test_certs.c — certs_generate, the pair checks and the rotating store,
 * down to real handshakes through certs_store_retrieve (GnuTLS directly
 * and through libmicrohttpd + libcurl).
 */
#include <criterion/criterion.h>

#include "certs.h"
#include "store.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ERR_MAX 1024
#define PATH_MAX_T 512
#define WATCH_WAIT_MS 5000
#define POLL_STEP_MS 20
#define SETTLE_MS 400   /* > debounce: the watcher has had its look */

static const char *const dns_a[] = {"webhook.ns.svc", "localhost"};
static const char *const ip_a[] = {"127.0.0.1", "::1"};

static char root[PATH_MAX_T];

/* ---- helpers ---------------------------------------------------------- */

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
            char child[PATH_MAX_T * 2];
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

static void setup_root(void)
{
    snprintf(root, sizeof root, "/tmp/test_certs.XXXXXX");
    cr_assert_not_null(mkdtemp(root));
}

static void teardown_root(void)
{
    rm_tree(root);
}

static void path_of(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX_T, "%s/%s", dir, name);
    cr_assert(n > 0 && n < PATH_MAX_T, "path too long");
}

static void sub(char *out, const char *name)
{
    path_of(out, root, name);
}

static gnutls_datum_t slurp(const char *dir, const char *name)
{
    char p[PATH_MAX_T];
    gnutls_datum_t d = {NULL, 0};
    path_of(p, dir, name);
    cr_assert_eq(gnutls_load_file(p, &d), 0, "cannot read %s", p);
    return d;
}

static void put(const char *dir, const char *name, const void *data,
                size_t len)
{
    char p[PATH_MAX_T], tmp[PATH_MAX_T];
    path_of(p, dir, name);
    int n = snprintf(tmp, sizeof tmp, "%s.new", p);
    cr_assert(n > 0 && (size_t)n < sizeof tmp);
    FILE *f = fopen(tmp, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, p), 0, "rename %s: %s", tmp, strerror(errno));
}

/* Replaces dst/name with src/name the way a careful writer would. */
static void copy_over(const char *src, const char *dst, const char *name)
{
    gnutls_datum_t d = slurp(src, name);
    put(dst, name, d.data, d.size);
    gnutls_free(d.data);
}

static bool same_file(const char *a, const char *b, const char *name)
{
    gnutls_datum_t x = slurp(a, name), y = slurp(b, name);
    bool same = x.size == y.size && memcmp(x.data, y.data, x.size) == 0;
    gnutls_free(x.data);
    gnutls_free(y.data);
    return same;
}

static struct certs_request req_for(const char *dir)
{
    struct certs_request r = {.out_dir = dir, .dns = dns_a, .dns_count = 2,
                              .ips = ip_a, .ip_count = 2, .days = 30};
    return r;
}

static void gen(const char *dir, bool force, enum certs_outcome want)
{
    struct certs_request r = req_for(dir);
    enum certs_outcome o;
    char err[ERR_MAX] = "";
    r.force = force;
    cr_assert_eq(certs_generate(&r, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(o, want);
}

static gnutls_x509_crt_t load_crt(const char *dir, const char *name)
{
    gnutls_datum_t d = slurp(dir, name);
    gnutls_x509_crt_t c;
    cr_assert_eq(gnutls_x509_crt_init(&c), 0);
    cr_assert_eq(gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_PEM), 0);
    gnutls_free(d.data);
    return c;
}

/* DER of dir/tls.crt, for comparing with what the store serves. */
static gnutls_datum_t leaf_der(const char *dir)
{
    gnutls_x509_crt_t c = load_crt(dir, CERTS_CERT_FILE);
    gnutls_datum_t d;
    cr_assert_eq(gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_DER, &d), 0);
    gnutls_x509_crt_deinit(c);
    return d;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- certs_generate ---------------------------------------------------- */

TestSuite(certs_generate, .init = setup_root, .fini = teardown_root);

Test(certs_generate, chain_verifies_with_sans_and_private_key_mode)
{
    char dir[PATH_MAX_T], p[PATH_MAX_T];
    sub(dir, "nested/out");   /* parents are created too */
    gen(dir, false, CERTS_CREATED);

    gnutls_x509_crt_t ca = load_crt(dir, CERTS_CA_FILE);
    gnutls_x509_crt_t leaf = load_crt(dir, CERTS_CERT_FILE);
    unsigned status = 99;
    cr_assert_eq(gnutls_x509_crt_verify(leaf, &ca, 1, 0, &status), 0);
    cr_assert_eq(status, 0, "verify status %u", status);
    cr_assert(gnutls_x509_crt_check_hostname(leaf, "webhook.ns.svc"));
    cr_assert(gnutls_x509_crt_check_hostname(leaf, "localhost"));
    cr_assert_not(gnutls_x509_crt_check_hostname(leaf, "other.ns.svc"));
    const unsigned char v4[4] = {127, 0, 0, 1};
    const unsigned char v6[16] = {[15] = 1};
    cr_assert(gnutls_x509_crt_check_ip(leaf, v4, sizeof v4, 0));
    cr_assert(gnutls_x509_crt_check_ip(leaf, v6, sizeof v6, 0));

    unsigned crit = 0, is_ca = 0;
    cr_assert_eq(gnutls_x509_crt_get_basic_constraints(ca, &crit, &is_ca, NULL),
                 1);
    cr_assert(crit && is_ca, "CA basicConstraints must be critical CA:true");
    cr_assert_eq(gnutls_x509_crt_get_basic_constraints(leaf, NULL, &is_ca,
                                                       NULL), 0);
    cr_assert_eq(gnutls_x509_crt_get_ca_status(leaf, NULL), 0);
    char cn[128];
    size_t cn_len = sizeof cn;
    cr_assert_eq(gnutls_x509_crt_get_dn_by_oid(leaf, GNUTLS_OID_X520_COMMON_NAME,
                                               0, 0, cn, &cn_len), 0);
    cr_assert_str_eq(cn, "webhook.ns.svc");
    time_t nb = gnutls_x509_crt_get_activation_time(leaf);
    cr_assert(nb <= time(NULL) - CERTS_SKEW_SECONDS + 5);
    gnutls_x509_crt_deinit(leaf);
    gnutls_x509_crt_deinit(ca);

    struct stat st;
    path_of(p, dir, CERTS_KEY_FILE);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "tls.key mode %o",
                 (unsigned)(st.st_mode & 07777));
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700);
}

Test(certs_generate, key_loads_as_gnutls_and_mhd_would)
{
    char dir[PATH_MAX_T];
    sub(dir, "out");
    gen(dir, false, CERTS_CREATED);
    gnutls_datum_t crt = slurp(dir, CERTS_CERT_FILE);
    gnutls_datum_t key = slurp(dir, CERTS_KEY_FILE);
    cr_assert(strstr((const char *)key.data, "BEGIN PRIVATE KEY") != NULL);
    gnutls_certificate_credentials_t cred;
    cr_assert_eq(gnutls_certificate_allocate_credentials(&cred), 0);
    /* MHD_OPTION_HTTPS_MEM_CERT/KEY end up here. */
    cr_assert_eq(gnutls_certificate_set_x509_key_mem2(
                     cred, &crt, &key, GNUTLS_X509_FMT_PEM, NULL, 0), 0);
    gnutls_certificate_free_credentials(cred);
    gnutls_free(crt.data);
    gnutls_free(key.data);
}

Test(certs_generate, second_run_keeps_files_untouched)
{
    char dir[PATH_MAX_T], copy[PATH_MAX_T], p[PATH_MAX_T];
    const char *files[] = {CERTS_CA_FILE, CERTS_CERT_FILE, CERTS_KEY_FILE};
    struct stat before[3], after[3];
    sub(dir, "out");
    sub(copy, "copy");
    gen(dir, false, CERTS_CREATED);
    cr_assert_eq(mkdir(copy, 0700), 0);
    for (int i = 0; i < 3; i++) {
        copy_over(dir, copy, files[i]);
        path_of(p, dir, files[i]);
        cr_assert_eq(stat(p, &before[i]), 0);
    }
    sleep_ms(20);   /* a rewrite would show in mtime */
    gen(dir, false, CERTS_KEPT);
    /* Asking for fewer names than the set covers keeps it too. */
    struct certs_request r = req_for(dir);
    enum certs_outcome o;
    char err[ERR_MAX] = "";
    r.ip_count = 0;
    cr_assert_eq(certs_generate(&r, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(o, CERTS_KEPT);
    for (int i = 0; i < 3; i++) {
        path_of(p, dir, files[i]);
        cr_assert_eq(stat(p, &after[i]), 0);
        cr_assert_eq(after[i].st_ino, before[i].st_ino, "%s replaced", files[i]);
        cr_assert_eq(after[i].st_mtim.tv_sec, before[i].st_mtim.tv_sec);
        cr_assert_eq(after[i].st_mtim.tv_nsec, before[i].st_mtim.tv_nsec);
        cr_assert(same_file(dir, copy, files[i]), "%s changed", files[i]);
    }
}

Test(certs_generate, uncovered_name_asks_for_force)
{
    char dir[PATH_MAX_T], copy[PATH_MAX_T];
    sub(dir, "out");
    sub(copy, "copy");
    gen(dir, false, CERTS_CREATED);
    cr_assert_eq(mkdir(copy, 0700), 0);
    copy_over(dir, copy, CERTS_CERT_FILE);

    const char *const more[] = {"webhook.ns.svc", "new.ns.svc"};
    struct certs_request r = req_for(dir);
    enum certs_outcome o;
    char err[ERR_MAX] = "";
    r.dns = more;
    cr_assert_eq(certs_generate(&r, &o, err, sizeof err), -1);
    cr_assert(strstr(err, "--force") != NULL, "err: %s", err);
    cr_assert(strstr(err, "new.ns.svc") != NULL, "err: %s", err);
    cr_assert(same_file(dir, copy, CERTS_CERT_FILE));

    const char *const extra_ip[] = {"10.0.0.1"};
    r = req_for(dir);
    r.ips = extra_ip;
    r.ip_count = 1;
    cr_assert_eq(certs_generate(&r, &o, err, sizeof err), -1);
    cr_assert(strstr(err, "10.0.0.1") != NULL, "err: %s", err);

    r.force = true;
    cr_assert_eq(certs_generate(&r, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(o, CERTS_CREATED);
}

Test(certs_generate, force_regenerates)
{
    char dir[PATH_MAX_T], copy[PATH_MAX_T];
    sub(dir, "out");
    sub(copy, "copy");
    gen(dir, false, CERTS_CREATED);
    cr_assert_eq(mkdir(copy, 0700), 0);
    copy_over(dir, copy, CERTS_CA_FILE);
    copy_over(dir, copy, CERTS_CERT_FILE);
    copy_over(dir, copy, CERTS_KEY_FILE);
    gen(dir, true, CERTS_CREATED);
    cr_assert_not(same_file(dir, copy, CERTS_CA_FILE));
    cr_assert_not(same_file(dir, copy, CERTS_CERT_FILE));
    cr_assert_not(same_file(dir, copy, CERTS_KEY_FILE));
    gen(dir, false, CERTS_KEPT);
}

Test(certs_generate, broken_or_partial_set_is_replaced)
{
    char dir[PATH_MAX_T], p[PATH_MAX_T];
    sub(dir, "out");
    gen(dir, false, CERTS_CREATED);
    gnutls_datum_t crt = slurp(dir, CERTS_CERT_FILE);
    put(dir, CERTS_CERT_FILE, crt.data, crt.size / 2);   /* corrupt */
    gnutls_free(crt.data);
    gen(dir, false, CERTS_CREATED);
    gen(dir, false, CERTS_KEPT);

    path_of(p, dir, CERTS_CA_FILE);
    cr_assert_eq(unlink(p), 0);
    gen(dir, false, CERTS_CREATED);
    gen(dir, false, CERTS_KEPT);

    /* A key from another set: parses, but is not this cert's. */
    char other[PATH_MAX_T];
    sub(other, "other");
    gen(other, false, CERTS_CREATED);
    copy_over(other, dir, CERTS_KEY_FILE);
    gen(dir, false, CERTS_CREATED);
    gen(dir, false, CERTS_KEPT);
}

static void expect_bad(struct certs_request r, const char *needle)
{
    enum certs_outcome o;
    char err[ERR_MAX] = "";
    cr_assert_eq(certs_generate(&r, &o, err, sizeof err), -1,
                 "accepted, wanted '%s'", needle);
    cr_assert(strstr(err, needle) != NULL, "err '%s' lacks '%s'", err, needle);
}

Test(certs_generate, bad_inputs_are_refused_clearly)
{
    char dir[PATH_MAX_T];
    sub(dir, "out");
    struct certs_request r = req_for(dir);

    r.dns_count = r.ip_count = 0;
    expect_bad(r, "at least one DNS name or IP");

    const char *const bad_ip[] = {"1.2.3"};
    r = req_for(dir);
    r.ips = bad_ip;
    r.ip_count = 1;
    expect_bad(r, "'1.2.3' is not an IPv4 or IPv6 address");

    const char *const bad_dns[][1] = {{"a..b"}, {"*.ns.svc"}, {"-a.b"},
                                      {"a_b.c"}, {""}, {"10.0.0.1"}};
    const char *const needles[] = {"empty label", "no wildcards", "'-'",
                                   "character '_'", "1..253", "IP address"};
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++) {
        r = req_for(dir);
        r.dns = bad_dns[i];
        r.dns_count = 1;
        expect_bad(r, needles[i]);
    }

    r = req_for(dir);
    r.days = 0;
    expect_bad(r, "validity must be 1..36500 days, not 0");
    r.days = CERTS_DAYS_MAX + 1;
    expect_bad(r, "validity must be");

    r = req_for(NULL);
    expect_bad(r, "output directory");

    char file[PATH_MAX_T];
    sub(file, "a-file");
    put(root, "a-file", "x", 1);
    r = req_for(file);
    expect_bad(r, "not a directory");

    struct stat st;
    cr_assert_eq(stat(dir, &st), -1, "nothing written for a bad request");
}

/* ---- certs_pair -------------------------------------------------------- */

TestSuite(certs_pair, .init = setup_root, .fini = teardown_root);

/* A self-signed cert whose validity ended yesterday: certs_generate
 * cannot make one, so build it here. */
static void write_expired(const char *dir)
{
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    gnutls_privkey_t signer;
    gnutls_datum_t c, k;
    const unsigned char serial[] = {1};
    time_t now = time(NULL);
    cr_assert_eq(gnutls_x509_privkey_init(&key), 0);
    cr_assert_eq(gnutls_x509_privkey_generate(
                     key, GNUTLS_PK_ECDSA,
                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
    cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
    cr_assert_eq(gnutls_x509_crt_set_version(crt, 3), 0);
    cr_assert_eq(gnutls_x509_crt_set_serial(crt, serial, 1), 0);
    cr_assert_eq(gnutls_x509_crt_set_activation_time(crt, now - 3 * 86400), 0);
    cr_assert_eq(gnutls_x509_crt_set_expiration_time(crt, now - 86400), 0);
    cr_assert_eq(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME,
                                               0, "old", 3), 0);
    cr_assert_eq(gnutls_x509_crt_set_key(crt, key), 0);
    cr_assert_eq(gnutls_privkey_init(&signer), 0);
    cr_assert_eq(gnutls_privkey_import_x509(signer, key, 0), 0);
    cr_assert_eq(gnutls_x509_crt_privkey_sign(crt, crt, signer,
                                              GNUTLS_DIG_SHA256, 0), 0);
    cr_assert_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c), 0);
    cr_assert_eq(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k), 0);
    put(dir, CERTS_CERT_FILE, c.data, c.size);
    put(dir, CERTS_KEY_FILE, k.data, k.size);
    gnutls_free(c.data);
    gnutls_free(k.data);
    gnutls_privkey_deinit(signer);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
}

static int load_pair(const char *dir, char *err)
{
    char c[PATH_MAX_T], k[PATH_MAX_T];
    struct certs_pair *p = NULL;
    path_of(c, dir, CERTS_CERT_FILE);
    path_of(k, dir, CERTS_KEY_FILE);
    int rc = certs_pair_load_files(c, k, &p, err, ERR_MAX);
    certs_pair_free(p);
    return rc;
}

Test(certs_pair, expired_certificate_is_refused)
{
    char err[ERR_MAX] = "";
    write_expired(root);
    cr_assert_eq(load_pair(root, err), -1);
    cr_assert(strstr(err, "expired at") != NULL, "err: %s", err);
}

Test(certs_pair, chain_with_ca_and_sec1_key_loads)
{
    char dir[PATH_MAX_T], err[ERR_MAX] = "";
    sub(dir, "out");
    gen(dir, false, CERTS_CREATED);
    gnutls_datum_t leaf = slurp(dir, CERTS_CERT_FILE);
    gnutls_datum_t ca = slurp(dir, CERTS_CA_FILE);
    size_t n = leaf.size + ca.size;
    char *chain = malloc(n);
    memcpy(chain, leaf.data, leaf.size);
    memcpy(chain + leaf.size, ca.data, ca.size);
    put(dir, CERTS_CERT_FILE, chain, n);
    free(chain);
    gnutls_free(leaf.data);
    gnutls_free(ca.data);

    /* Same key as "EC PRIVATE KEY" (SEC1), as openssl ecparam writes it. */
    gnutls_datum_t pk8 = slurp(dir, CERTS_KEY_FILE), sec1;
    gnutls_x509_privkey_t xk;
    cr_assert_eq(gnutls_x509_privkey_init(&xk), 0);
    cr_assert_eq(gnutls_x509_privkey_import2(xk, &pk8, GNUTLS_X509_FMT_PEM,
                                             NULL, 0), 0);
    cr_assert_eq(gnutls_x509_privkey_export2(xk, GNUTLS_X509_FMT_PEM, &sec1), 0);
    cr_assert(strstr((const char *)sec1.data, "BEGIN EC PRIVATE KEY") != NULL);
    put(dir, CERTS_KEY_FILE, sec1.data, sec1.size);
    gnutls_free(sec1.data);
    gnutls_free(pk8.data);
    gnutls_x509_privkey_deinit(xk);

    char c[PATH_MAX_T], k[PATH_MAX_T];
    struct certs_pair *p = NULL;
    path_of(c, dir, CERTS_CERT_FILE);
    path_of(k, dir, CERTS_KEY_FILE);
    cr_assert_eq(certs_pair_load_files(c, k, &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(certs_pair_chain_len(p), 2);
    cr_assert(strstr(certs_pair_summary(p), "CN=webhook.ns.svc") != NULL,
              "%s", certs_pair_summary(p));
    certs_pair_free(p);
}

Test(certs_pair, missing_or_oversized_files_are_refused)
{
    char err[ERR_MAX] = "";
    cr_assert_eq(load_pair(root, err), -1);
    cr_assert(strstr(err, "cannot open") != NULL, "err: %s", err);

    char dir[PATH_MAX_T];
    sub(dir, "out");
    gen(dir, false, CERTS_CREATED);
    size_t big = CERTS_PEM_MAX + 1;
    char *junk = calloc(1, big);
    put(dir, CERTS_CERT_FILE, junk, big);
    free(junk);
    cr_assert_eq(load_pair(dir, err), -1);
    cr_assert(strstr(err, "larger than") != NULL, "err: %s", err);
}

/* A FIFO in place of tls.key: the open used to wait for a writer forever
 * (the cert reload thread, or start-up, hung); it is refused at once.  The
 * timeout turns a regression into a failure instead of a hang. */
Test(certs_pair, fifo_key_is_refused_without_blocking, .timeout = 20)
{
    char err[ERR_MAX] = "", dir[PATH_MAX_T], key[PATH_MAX_T];
    sub(dir, "out");
    gen(dir, false, CERTS_CREATED);
    path_of(key, dir, CERTS_KEY_FILE);
    cr_assert_eq(unlink(key), 0);
    cr_assert_eq(mkfifo(key, 0600), 0, "%s", strerror(errno));
    cr_assert_eq(load_pair(dir, err), -1);
    cr_assert(strstr(err, "not a regular file") != NULL, "err: %s", err);
}

/* ---- certs_store -------------------------------------------------------- */

static atomic_int n_ok, n_bad;
static pthread_mutex_t detail_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_detail[ERR_MAX];

static void on_reload(void *arg, bool ok, const char *detail)
{
    (void)arg;
    atomic_fetch_add(ok ? &n_ok : &n_bad, 1);
    pthread_mutex_lock(&detail_lock);
    snprintf(last_detail, sizeof last_detail, "%s", detail);
    pthread_mutex_unlock(&detail_lock);
}

/* dir_a is what the store watches; dir_a0 keeps set A's files as they
 * were, after a test has written B's over dir_a. */
static char dir_a[PATH_MAX_T], dir_a0[PATH_MAX_T], dir_b[PATH_MAX_T];

static void setup_store(void)
{
    setup_root();
    sub(dir_a, "a");
    sub(dir_a0, "a0");
    sub(dir_b, "b");
    gen(dir_a, false, CERTS_CREATED);
    gen(dir_b, false, CERTS_CREATED);
    cr_assert_eq(mkdir(dir_a0, 0700), 0);
    copy_over(dir_a, dir_a0, CERTS_CERT_FILE);
    copy_over(dir_a, dir_a0, CERTS_KEY_FILE);
    copy_over(dir_a, dir_a0, CERTS_CA_FILE);
    atomic_store(&n_ok, 0);
    atomic_store(&n_bad, 0);
}

TestSuite(certs_store, .init = setup_store, .fini = teardown_root);

static struct certs_store *open_store(const char *dir, unsigned interval_ms)
{
    struct certs_store *s = NULL;
    char err[ERR_MAX] = "";
    cr_assert_eq(certs_store_open(dir, interval_ms, on_reload, NULL, &s, err,
                                  sizeof err), 0, "%s", err);
    return s;
}

static void assert_serving(struct certs_store *s, const char *dir)
{
    unsigned char *der = NULL;
    size_t len = 0;
    char err[ERR_MAX] = "";
    gnutls_datum_t want = leaf_der(dir);
    cr_assert_eq(certs_store_current_der(s, &der, &len, err, sizeof err), 0);
    cr_assert(len == want.size && memcmp(der, want.data, len) == 0,
              "store does not serve %s/tls.crt", dir);
    free(der);

    /* What a handshake would get, freed as GnuTLS would free it. */
    gnutls_pcert_st *pc = NULL;
    unsigned n = 0;
    gnutls_privkey_t key = NULL;
    cr_assert_eq(certs_store_handshake_copy(s, &pc, &n, &key), 0);
    cr_assert_eq(n, 1);
    cr_assert(pc[0].cert.size == want.size &&
              memcmp(pc[0].cert.data, want.data, want.size) == 0);
    for (unsigned i = 0; i < n; i++)
        gnutls_pcert_deinit(&pc[i]);
    gnutls_free(pc);
    gnutls_privkey_deinit(key);
    gnutls_free(want.data);
}

Test(certs_store, unchanged_files_are_a_no_op)
{
    struct certs_store *s = open_store(dir_a, 60000);
    char err[ERR_MAX] = "";
    cr_assert_eq(certs_store_reload_now(s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(certs_store_reload_now(s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(certs_store_generation(s), 0);
    cr_assert_eq(atomic_load(&n_ok) + atomic_load(&n_bad), 0);
    assert_serving(s, dir_a0);
    certs_store_close(s);
}

Test(certs_store, new_valid_pair_is_swapped_in)
{
    struct certs_store *s = open_store(dir_a, 60000);
    char err[ERR_MAX] = "";
    copy_over(dir_b, dir_a, CERTS_KEY_FILE);
    copy_over(dir_b, dir_a, CERTS_CERT_FILE);
    cr_assert_eq(certs_store_reload_now(s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(certs_store_generation(s), 1);
    assert_serving(s, dir_b);
    sleep_ms(SETTLE_MS);
    cr_assert_eq(certs_store_generation(s), 1, "the watcher swapped again");
    cr_assert_eq(atomic_load(&n_ok), 1);
    pthread_mutex_lock(&detail_lock);
    cr_assert(strstr(last_detail, "now serving CN=webhook.ns.svc") != NULL,
              "%s", last_detail);
    pthread_mutex_unlock(&detail_lock);
    certs_store_close(s);
}

Test(certs_store, mismatched_pair_is_refused_and_reported_once)
{
    struct certs_store *s = open_store(dir_a, 60000);
    char err[ERR_MAX] = "";
    copy_over(dir_b, dir_a, CERTS_CERT_FILE);   /* B's cert, A's key */
    cr_assert_eq(certs_store_reload_now(s, err, sizeof err), -1);
    cr_assert(strstr(err, "does not belong") != NULL, "err: %s", err);
    cr_assert_eq(certs_store_reload_now(s, err, sizeof err), -1);
    sleep_ms(SETTLE_MS);
    cr_assert_eq(certs_store_generation(s), 0);
    assert_serving(s, dir_a0);
    cr_assert_eq(atomic_load(&n_bad), 1);
    cr_assert_eq(atomic_load(&n_ok), 0);
    pthread_mutex_lock(&detail_lock);
    cr_assert(strstr(last_detail, "does not belong") != NULL, "%s",
              last_detail);
    pthread_mutex_unlock(&detail_lock);

    /* The matching key arrives: now it swaps. */
    copy_over(dir_b, dir_a, CERTS_KEY_FILE);
    cr_assert_eq(certs_store_reload_now(s, err, sizeof err), 0, "%s", err);
    assert_serving(s, dir_b);
    cr_assert_eq(certs_store_generation(s), 1);
    certs_store_close(s);
}

Test(certs_store, truncated_pem_is_refused)
{
    struct certs_store *s = open_store(dir_a, 60000);
    char err[ERR_MAX] = "";
    gnutls_datum_t crt = slurp(dir_b, CERTS_CERT_FILE);
    put(dir_a, CERTS_CERT_FILE, crt.data, crt.size * 2 / 3);
    gnutls_free(crt.data);
    cr_assert_eq(certs_store_reload_now(s, err, sizeof err), -1);
    cr_assert(strstr(err, "tls.crt") != NULL, "err: %s", err);
    assert_serving(s, dir_a0);
    cr_assert_eq(certs_store_generation(s), 0);
    certs_store_close(s);
}

Test(certs_store, open_refuses_invalid_dir)
{
    struct certs_store *s = NULL;
    char err[ERR_MAX] = "", empty[PATH_MAX_T];
    sub(empty, "empty");
    cr_assert_eq(mkdir(empty, 0700), 0);
    cr_assert_eq(certs_store_open(empty, 0, NULL, NULL, &s, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "tls.crt") != NULL, "err: %s", err);
    copy_over(dir_b, dir_a, CERTS_CERT_FILE);
    cr_assert_eq(certs_store_open(dir_a, 0, NULL, NULL, &s, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "does not belong") != NULL, "err: %s", err);
    cr_assert_eq(certs_store_open(dir_b, 5, NULL, NULL, &s, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "interval") != NULL, "err: %s", err);
}

static void wait_generation(struct certs_store *s, unsigned long want)
{
    for (int t = 0; t < WATCH_WAIT_MS && certs_store_generation(s) < want;
         t += POLL_STEP_MS)
        sleep_ms(POLL_STEP_MS);
    cr_assert_eq(certs_store_generation(s), want,
                 "watcher did not pick up the change within %d ms",
                 WATCH_WAIT_MS);
}

static void link_at(const char *target, const char *dir, const char *name)
{
    char p[PATH_MAX_T];
    path_of(p, dir, name);
    cr_assert_eq(symlink(target, p), 0, "symlink %s: %s", p, strerror(errno));
}

static void fill_version(const char *secret, const char *version,
                         const char *from)
{
    char v[PATH_MAX_T];
    path_of(v, secret, version);
    cr_assert_eq(mkdir(v, 0755), 0);
    copy_over(from, v, CERTS_CERT_FILE);
    copy_over(from, v, CERTS_KEY_FILE);
}

/* The kubelet's AtomicWriter: files are symlinks through `..data`, which
 * is swapped by renaming a new symlink over it. */
Test(certs_store, watcher_follows_secret_volume_update)
{
    char secret[PATH_MAX_T], tmp[PATH_MAX_T], data[PATH_MAX_T];
    sub(secret, "secret");
    cr_assert_eq(mkdir(secret, 0755), 0);
    fill_version(secret, "..v1", dir_a);
    link_at("..v1", secret, "..data");
    link_at("..data/tls.crt", secret, CERTS_CERT_FILE);
    link_at("..data/tls.key", secret, CERTS_KEY_FILE);

    struct certs_store *s = open_store(secret, 60000);
    assert_serving(s, dir_a0);

    fill_version(secret, "..v2", dir_b);
    link_at("..v2", secret, "..data_tmp");
    path_of(tmp, secret, "..data_tmp");
    path_of(data, secret, "..data");
    cr_assert_eq(rename(tmp, data), 0);

    wait_generation(s, 1);
    assert_serving(s, dir_b);
    cr_assert_eq(atomic_load(&n_ok), 1);
    cr_assert_eq(atomic_load(&n_bad), 0);
    certs_store_close(s);
}

Test(certs_store, watcher_follows_plain_rewrite)
{
    struct certs_store *s = open_store(dir_a, 60000);
    copy_over(dir_b, dir_a, CERTS_KEY_FILE);
    copy_over(dir_b, dir_a, CERTS_CERT_FILE);
    wait_generation(s, 1);
    assert_serving(s, dir_b);
    certs_store_close(s);
}

/* Writing through a hard link in another directory changes the files
 * without any event on the watched directory: only the tick sees it. */
Test(certs_store, periodic_reread_catches_what_inotify_missed)
{
    char other[PATH_MAX_T], a[PATH_MAX_T], o[PATH_MAX_T];
    const char *files[] = {CERTS_KEY_FILE, CERTS_CERT_FILE};
    sub(other, "other");
    cr_assert_eq(mkdir(other, 0700), 0);
    for (int i = 0; i < 2; i++) {
        path_of(a, dir_a, files[i]);
        path_of(o, other, files[i]);
        cr_assert_eq(link(a, o), 0);
    }
    struct certs_store *s = open_store(dir_a, 300);
    for (int i = 0; i < 2; i++) {
        gnutls_datum_t d = slurp(dir_b, files[i]);
        path_of(o, other, files[i]);
        FILE *f = fopen(o, "r+b");   /* in place: same inode */
        cr_assert_not_null(f);
        cr_assert_eq(ftruncate(fileno(f), 0), 0);
        cr_assert_eq(fwrite(d.data, 1, d.size, f), d.size);
        cr_assert_eq(fclose(f), 0);
        gnutls_free(d.data);
    }
    wait_generation(s, 1);
    assert_serving(s, dir_b);
    certs_store_close(s);
}

/* ---- handshakes through certs_store_retrieve ---------------------------- */

struct server_arg {
    int fd;
    int rc;
};

static void *serve_one(void *p)
{
    struct server_arg *a = p;
    gnutls_certificate_credentials_t cred;
    gnutls_session_t sess;
    gnutls_certificate_allocate_credentials(&cred);
    gnutls_certificate_set_retrieve_function3(cred, certs_store_retrieve);
    gnutls_init(&sess, GNUTLS_SERVER);
    gnutls_set_default_priority(sess);
    gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_transport_set_int(sess, a->fd);
    do
        a->rc = gnutls_handshake(sess);
    while (a->rc < 0 && !gnutls_error_is_fatal(a->rc));
    if (a->rc == 0)
        gnutls_bye(sess, GNUTLS_SHUT_WR);
    gnutls_deinit(sess);
    gnutls_certificate_free_credentials(cred);
    close(a->fd);   /* a failed server must not leave the client waiting */
    return NULL;
}

/* Handshakes as a client trusting ca_dir/ca.crt; returns the handshake
 * result and leaves the server's leaf DER in *peer. */
static int handshake(const char *ca_dir, gnutls_datum_t *peer)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct server_arg a = {.fd = sv[0]};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, serve_one, &a), 0);

    char ca[PATH_MAX_T];
    gnutls_certificate_credentials_t cred;
    gnutls_session_t sess;
    path_of(ca, ca_dir, CERTS_CA_FILE);
    gnutls_certificate_allocate_credentials(&cred);
    cr_assert_eq(gnutls_certificate_set_x509_trust_file(cred, ca,
                                                        GNUTLS_X509_FMT_PEM),
                 1);
    gnutls_init(&sess, GNUTLS_CLIENT);
    gnutls_set_default_priority(sess);
    gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_session_set_verify_cert(sess, "webhook.ns.svc", 0);
    gnutls_transport_set_int(sess, sv[1]);
    int rc;
    do
        rc = gnutls_handshake(sess);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    peer->data = NULL;
    peer->size = 0;
    if (rc == 0) {
        unsigned n = 0;
        const gnutls_datum_t *list = gnutls_certificate_get_peers(sess, &n);
        cr_assert(n >= 1);
        peer->data = gnutls_malloc(list[0].size);
        memcpy(peer->data, list[0].data, list[0].size);
        peer->size = list[0].size;
    }
    gnutls_deinit(sess);
    close(sv[1]);
    pthread_join(t, NULL);
    gnutls_certificate_free_credentials(cred);
    return rc;
}

static void assert_handshake_serves(const char *dir)
{
    gnutls_datum_t peer, want = leaf_der(dir);
    int rc = handshake(dir, &peer);
    cr_assert_eq(rc, 0, "handshake: %s", gnutls_strerror(rc));
    cr_assert(peer.size == want.size &&
              memcmp(peer.data, want.data, want.size) == 0);
    gnutls_free(peer.data);
    gnutls_free(want.data);
}

Test(certs_store, handshakes_use_the_current_pair)
{
    signal(SIGPIPE, SIG_IGN);   /* a refused peer hangs up mid-write */
    struct certs_store *s = open_store(dir_a, 60000);
    char err[ERR_MAX] = "";
    gnutls_datum_t peer;

    cr_assert_lt(handshake(dir_a, &peer), 0, "served with nothing installed");
    certs_store_install(s);
    assert_handshake_serves(dir_a);
    assert_handshake_serves(dir_a);

    copy_over(dir_b, dir_a, CERTS_KEY_FILE);
    copy_over(dir_b, dir_a, CERTS_CERT_FILE);
    cr_assert_eq(certs_store_reload_now(s, err, sizeof err), 0, "%s", err);
    /* dir_a now holds B's cert and key, but still A's ca.crt. */
    cr_assert_lt(handshake(dir_a, &peer), 0, "old CA accepted the new cert");
    assert_handshake_serves(dir_b);

    certs_store_install(NULL);
    certs_store_close(s);
}

/* Handshake copies racing swaps: every copy must be a whole A or a whole
 * B, and (under ASan/valgrind) no swap may free what a copy is using. */
#define RACE_SWAPS 30
#define RACE_THREADS 2

struct race {
    struct certs_store *s;
    atomic_bool stop;
    gnutls_datum_t a, b;
    atomic_int copies, torn;
};

static void *race_copier(void *p)
{
    struct race *r = p;
    while (!atomic_load(&r->stop)) {
        gnutls_pcert_st *pc = NULL;
        unsigned n = 0;
        gnutls_privkey_t key = NULL;
        if (certs_store_handshake_copy(r->s, &pc, &n, &key) != 0) {
            atomic_fetch_add(&r->torn, 1);
            continue;
        }
        const gnutls_datum_t *c = &pc[0].cert;
        bool is_a = c->size == r->a.size && !memcmp(c->data, r->a.data, c->size);
        bool is_b = c->size == r->b.size && !memcmp(c->data, r->b.data, c->size);
        if (!is_a && !is_b)
            atomic_fetch_add(&r->torn, 1);
        atomic_fetch_add(&r->copies, 1);
        for (unsigned i = 0; i < n; i++)
            gnutls_pcert_deinit(&pc[i]);
        gnutls_free(pc);
        gnutls_privkey_deinit(key);
        /* Let the swapping thread run: valgrind runs one at a time. */
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    return NULL;
}

Test(certs_store, handshake_copies_survive_concurrent_swaps, .timeout = 60)
{
    struct race r = {.s = open_store(dir_a, 60000), .a = leaf_der(dir_a0),
                     .b = leaf_der(dir_b)};
    pthread_t t[RACE_THREADS];
    char err[ERR_MAX] = "";
    for (int i = 0; i < RACE_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, race_copier, &r), 0);
    for (int i = 0; i < RACE_SWAPS; i++) {
        const char *from = i % 2 ? dir_a0 : dir_b;
        /* Both files in one directory swap, so no half state is seen. */
        char next[PATH_MAX_T], cur[PATH_MAX_T], old[PATH_MAX_T];
        cr_assert_lt(snprintf(next, sizeof next, "%s.next", dir_a), PATH_MAX_T);
        cr_assert_lt(snprintf(old, sizeof old, "%s.old", dir_a), PATH_MAX_T);
        cr_assert_lt(snprintf(cur, sizeof cur, "%s", dir_a), PATH_MAX_T);
        cr_assert_eq(mkdir(next, 0700), 0);
        copy_over(from, next, CERTS_CERT_FILE);
        copy_over(from, next, CERTS_KEY_FILE);
        cr_assert_eq(rename(cur, old), 0);
        cr_assert_eq(rename(next, cur), 0);
        rm_tree(old);
        cr_assert_eq(certs_store_reload_now(r.s, err, sizeof err), 0, "%s", err);
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&r.torn), 0);
    cr_assert_gt(atomic_load(&r.copies), 0);
    cr_assert_geq(certs_store_generation(r.s), RACE_SWAPS);
    certs_store_close(r.s);
    gnutls_free(r.a.data);
    gnutls_free(r.b.data);
}

/* ---- through libmicrohttpd and libcurl ---------------------------------- */

static enum MHD_Result answer(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    static const char body[] = "ok";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

#define FETCH_TIMEOUT_MS 30000

static CURLcode fetch(unsigned port, const char *ca_dir)
{
    char url[128], resolve[128], ca[PATH_MAX_T];
    snprintf(url, sizeof url, "https://webhook.ns.svc:%u/", port);
    snprintf(resolve, sizeof resolve, "webhook.ns.svc:%u:127.0.0.1", port);
    path_of(ca, ca_dir, CERTS_CA_FILE);
    struct curl_slist *res = curl_slist_append(NULL, resolve);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RESOLVE, res);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    /* A handshake takes milliseconds; under valgrind on a busy machine
     * the first one took more than 5 s. */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)FETCH_TIMEOUT_MS);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK && code != 200)
        rc = CURLE_HTTP_RETURNED_ERROR;
    curl_easy_cleanup(h);
    curl_slist_free_all(res);
    return rc;
}

Test(certs_store, mhd_serves_rotated_certificate)
{
    cr_assert_eq(MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK2),
                 MHD_YES);
    struct certs_store *s = open_store(dir_a, 60000);
    certs_store_install(s);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL, answer,
        NULL, MHD_OPTION_HTTPS_CERT_CALLBACK2, certs_store_retrieve,
        MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_END);
    cr_assert_not_null(d);
    unsigned port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    curl_global_init(CURL_GLOBAL_DEFAULT);

    cr_assert_eq(fetch(port, dir_a), CURLE_OK);
    char keep_ca[PATH_MAX_T];
    sub(keep_ca, "a-ca");
    cr_assert_eq(mkdir(keep_ca, 0700), 0);
    copy_over(dir_a, keep_ca, CERTS_CA_FILE);

    copy_over(dir_b, dir_a, CERTS_KEY_FILE);
    copy_over(dir_b, dir_a, CERTS_CERT_FILE);
    wait_generation(s, 1);
    cr_assert_eq(fetch(port, dir_b), CURLE_OK);
    cr_assert_neq(fetch(port, keep_ca), CURLE_OK, "old CA still trusted");

    curl_global_cleanup();
    MHD_stop_daemon(d);
    certs_store_install(NULL);
    certs_store_close(s);
}
