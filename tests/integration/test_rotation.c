/*
 * test_rotation.c — certificate rotation without restart: new handshakes
 * get the new pair, connections already open finish, and a half-written
 * or mismatched pair is refused while the old one keeps serving.
 *
 * Which certificate a handshake got is proven by trust, not by parsing:
 * set A and set B have different CAs, so a client that trusts only CA B
 * can complete a handshake only if the server presented the B leaf.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certs.h"
#include "harness.h"

static struct harness h;
static char dir_b[64];

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_start(&h);
    snprintf(dir_b, sizeof(dir_b), "/tmp/io-itest-b-XXXXXX");
    cr_assert_not_null(mkdtemp(dir_b));
    const char *dns[] = { "localhost" };
    const char *ips[] = { "127.0.0.1" };
    struct certs_request req = { .out_dir = dir_b, .dns = dns, .dns_count = 1,
                                 .ips = ips, .ip_count = 1, .days = 30 };
    enum certs_outcome outcome;
    char err[256];
    cr_assert_eq(certs_generate(&req, &outcome, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
    harness_stop(&h);
    char path[128];
    const char *names[] = { "ca.crt", "tls.crt", "tls.key" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir_b, names[i]);
        unlink(path);
    }
    rmdir(dir_b);
    curl_global_cleanup();
}

TestSuite(rotation, .init = setup, .fini = teardown, .timeout = 60);

static void copy_file(const char *from, const char *to)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    FILE *in = fopen(from, "rb");
    cr_assert_not_null(in, "%s", from);
    FILE *out = fopen(tmp, "wb");
    cr_assert_not_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    chmod(tmp, 0600);
    cr_assert_eq(rename(tmp, to), 0);
}

static void write_file(const char *path, const char *data, size_t len)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *out = fopen(tmp, "wb");
    fwrite(data, 1, len, out);
    fclose(out);
    cr_assert_eq(rename(tmp, path), 0);
}

/* A fresh connection trusting only ca; true if the handshake verified. */
static bool handshake_trusting(const char *ca)
{
    char url[128];
    harness_url(&h, "/healthz", url, sizeof(url));
    CURL *c = harness_curl(&h, ca);
    struct reply r;
    CURLcode rc = harness_do(c, url, NULL, NULL, 0, &r);
    bool ok = rc == CURLE_OK && r.status == 200;
    reply_free(&r);
    curl_easy_cleanup(c);
    return ok;
}

static void path_in(const char *dir, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

Test(rotation, new_handshakes_get_the_new_pair_old_connections_finish)
{
    char ca_a[300], ca_b[300], crt_b[300], key_b[300], crt[300], key[300];
    path_in(h.dir, "ca.crt", ca_a, sizeof(ca_a));
    path_in(dir_b, "ca.crt", ca_b, sizeof(ca_b));
    path_in(dir_b, "tls.crt", crt_b, sizeof(crt_b));
    path_in(dir_b, "tls.key", key_b, sizeof(key_b));
    path_in(h.dir, "tls.crt", crt, sizeof(crt));
    path_in(h.dir, "tls.key", key, sizeof(key));

    cr_assert(handshake_trusting(ca_a));
    cr_assert_not(handshake_trusting(ca_b));

    /* A keep-alive connection opened before the rotation. */
    char url[128];
    harness_url(&h, "/healthz", url, sizeof(url));
    CURL *old = harness_curl(&h, ca_a);
    struct reply r;
    cr_assert_eq(harness_do(old, url, NULL, NULL, 0, &r), CURLE_OK);
    cr_expect_eq(r.connects, 1);
    reply_free(&r);

    unsigned long gen = certs_store_generation(h.store);
    copy_file(key_b, key);
    copy_file(crt_b, crt);
    char err[256];
    cr_assert_eq(certs_store_reload_now(h.store, err, sizeof(err)), 0, "%s", err);
    cr_expect_gt(certs_store_generation(h.store), gen);

    cr_expect(handshake_trusting(ca_b), "new handshake must present the B leaf");
    cr_expect_not(handshake_trusting(ca_a), "A leaf must no longer be served");

    cr_assert_eq(harness_do(old, url, NULL, NULL, 0, &r), CURLE_OK);
    cr_expect_eq(r.status, 200, "the old connection keeps working");
    cr_expect_eq(r.connects, 0, "...on the same TLS session");
    reply_free(&r);
    curl_easy_cleanup(old);
}

Test(rotation, watcher_picks_up_changes_without_a_nudge)
{
    char ca_b[300], crt_b[300], key_b[300], crt[300], key[300];
    path_in(dir_b, "ca.crt", ca_b, sizeof(ca_b));
    path_in(dir_b, "tls.crt", crt_b, sizeof(crt_b));
    path_in(dir_b, "tls.key", key_b, sizeof(key_b));
    path_in(h.dir, "tls.crt", crt, sizeof(crt));
    path_in(h.dir, "tls.key", key, sizeof(key));

    unsigned long gen = certs_store_generation(h.store);
    copy_file(key_b, key);
    copy_file(crt_b, crt);
    /* inotify wakes the watcher (the periodic re-read is 60 s here). */
    for (int i = 0; i < 100 && certs_store_generation(h.store) == gen; i++) {
        struct timespec ts = { 0, 50 * 1000000 };
        nanosleep(&ts, NULL);
    }
    cr_expect_gt(certs_store_generation(h.store), gen);
    cr_expect(handshake_trusting(ca_b));
}

Test(rotation, half_written_or_mismatched_pairs_are_refused)
{
    char ca_a[300], crt[300], key[300], key_b[300];
    path_in(h.dir, "ca.crt", ca_a, sizeof(ca_a));
    path_in(h.dir, "tls.crt", crt, sizeof(crt));
    path_in(h.dir, "tls.key", key, sizeof(key));
    path_in(dir_b, "tls.key", key_b, sizeof(key_b));

    /* Half a certificate, as a writer caught mid-way would leave it. */
    FILE *f = fopen(crt, "rb");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char *saved = malloc(n);
    memcpy(saved, buf, n);
    unsigned long gen = certs_store_generation(h.store);
    write_file(crt, buf, n / 2);
    char err[256];
    cr_expect_eq(certs_store_reload_now(h.store, err, sizeof(err)), -1);
    cr_expect_eq(certs_store_generation(h.store), gen);
    cr_expect(handshake_trusting(ca_a), "the old pair keeps serving");

    /* A whole certificate with somebody else's key. */
    write_file(crt, saved, n);
    copy_file(key_b, key);
    cr_expect_eq(certs_store_reload_now(h.store, err, sizeof(err)), -1);
    cr_expect_eq(certs_store_generation(h.store), gen);
    cr_expect(handshake_trusting(ca_a), "the old pair keeps serving");
    free(saved);
}
