/*
 * test_hostile.c — the shipped binary under hostile clients.  Each test
 * starts `inference-operator serve --webhook-only` as a child, runs a
 * legitimate client in a thread (a review on a fresh connection, again
 * and again) while the attack runs, and checks that every one of its
 * reviews succeeded, that the attack's connections were dropped when they
 * should be, that the server's RSS came back within a bound, and that the
 * server is alive and exits cleanly afterwards.
 *
 * test_server.c covers the single-request cases (413, 415, one chunked
 * body past the cap, plain HTTP, 200 keep-alive clients) in-process; here
 * it is many connections at once, against the real process.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"
#include "hostile_util.h"
#include "http_deadline.h"

/* Short deadlines so attacks end fast; far longer under valgrind, where a
 * legitimate handshake alone can take seconds. */
#define HEADER_TIMEOUT_S 2
#define REQUEST_TIMEOUT_S 3
#define HEADER_TIMEOUT_VG_S 20
#define REQUEST_TIMEOUT_VG_S 30
/* How late past its deadline a connection may close: the reaper's tick
 * plus scheduling on two busy shared cores. */
#define CLOSE_SLACK_S 8
/* A server that got through the attack is back within this much of its
 * RSS before it (measured: up to ~1.3 MiB, from a 4.4 MiB start): the
 * deadline reaper hands freed memory back after a burst (malloc_trim),
 * what remains is allocator and TLS cache noise.  A leak of one 32 KiB
 * connection pool per attack connection (300 x 32 KiB = 9.4 MiB) or of
 * one 7 MiB body buffer fails it. */
#define RSS_GROWTH_MAX_KIB (4 * 1024)
/* The same attack a second time may grow the RSS by at most this much
 * over the first: glibc keeps what it once needed, but a leak of one
 * 32 KiB connection pool per attack connection would add 9 MiB a round
 * (measured: +0.2 to +1.1 MiB). */
#define RSS_ROUND_GROWTH_MAX_KIB 2048
/* How long the RSS may take to come back after a burst: the server has
 * to notice every close and the reaper to trim at its next tick; on a
 * busy machine that is not always within a second. */
#define RSS_SETTLE_S 15
#define ROUNDS 2
/* The legitimate client must have got this many reviews through. */
#define LEGIT_MIN_OK 3

#define SLOWLORIS_CONNS 300
#define SLOWLORIS_CONNS_VG 12
#define CONCURRENT_CONNS 1000
#define CONCURRENT_CONNS_VG 40
#define TICK_MS 250

static bool vg(void)
{
    return hostile_under_valgrind();
}

/* RSS says something about the server's own memory only in a plain
 * build: AddressSanitizer keeps freed memory in quarantine and valgrind
 * runs the process on its own allocator.  There, the leak checkers judge
 * memory instead: LeakSanitizer or memcheck at the server's exit, which
 * must be clean (hchild_stop's exit status 0, make valgrind's logs). */
static bool rss_meaningful(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return false;
#else
    return !vg();
#endif
}

static int header_timeout(void)
{
    return vg() ? HEADER_TIMEOUT_VG_S : HEADER_TIMEOUT_S;
}

static int request_timeout(void)
{
    return vg() ? REQUEST_TIMEOUT_VG_S : REQUEST_TIMEOUT_S;
}

static void setup(void)
{
    /* Writing to a connection the server dropped must be an error here,
     * not a signal. */
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    gnutls_global_init();
    /* Enough descriptors for a thousand attack connections. */
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void teardown(void)
{
    gnutls_global_deinit();
    curl_global_cleanup();
}

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 300);

static struct hchild server;
static struct legit legit;
static long rss_before;

/* The server's RSS once it is at most `want` KiB, or the lowest seen in
 * RSS_SETTLE_S. */
static long settled_rss(long want)
{
    long low = hchild_rss_kib(&server);
    if (!rss_meaningful())
        return low;
    double until = hostile_now_s() + RSS_SETTLE_S;
    while (low > want && hostile_now_s() < until) {
        hostile_sleep_ms(SRV_DEADLINE_TICK_MS);
        long now = hchild_rss_kib(&server);
        if (now > 0 && now < low)
            low = now;
    }
    return low;
}


/* Start the server with the short deadlines and extra flags, the
 * legitimate client, and wait until it got a first review through. */
static void begin_with(int header_timeout_s, const char *const extra[])
{
    char ht[16], rt[16];
    snprintf(ht, sizeof(ht), "%d", header_timeout_s);
    snprintf(rt, sizeof(rt), "%d", request_timeout());
    const char *flags[24] = { "--header-timeout", ht, "--request-timeout", rt };
    size_t n = 4;
    for (size_t i = 0; extra && extra[i] && n < 23; i++)
        flags[n++] = extra[i];
    flags[n] = NULL;
    hchild_start(&server, flags);
    legit_start(&legit, &server);
    double until = hostile_now_s() + 60;
    while (atomic_load(&legit.ok) < 1 && atomic_load(&legit.bad) == 0 &&
           hostile_now_s() < until)
        hostile_sleep_ms(20);
    cr_assert_geq(atomic_load(&legit.ok), 1, "no first review: %s",
                  legit.first_error);
    rss_before = hchild_rss_kib(&server);
    cr_assert_gt(rss_before, 0);
}

static void begin(const char *const extra[])
{
    begin_with(header_timeout(), extra);
}

/* Stop the legitimate client (after it got a few more reviews through
 * once the attack is over) and check everything the attack must not
 * have broken. */
static void end(void)
{
    int base = atomic_load(&legit.ok);
    double until = hostile_now_s() + 60;
    while (atomic_load(&legit.ok) < base + 1 && hostile_now_s() < until)
        hostile_sleep_ms(20);
    legit_stop(&legit);
    long rss_after = settled_rss(rss_before + RSS_GROWTH_MAX_KIB);
    cr_log_info("legit reviews: %d ok, %d failed; server RSS %ld -> %ld KiB",
                legit.ok, legit.bad, rss_before, rss_after);
    cr_expect_eq(legit.bad, 0, "a legitimate review failed during the attack "
                 "(%d of %d): %s", legit.bad, legit.ok + legit.bad,
                 legit.first_error);
    cr_expect_geq(legit.ok, LEGIT_MIN_OK);
    cr_expect(hchild_alive(&server), "the server died (log %s)", server.log);
    if (rss_meaningful())
        cr_expect_leq(rss_after - rss_before, RSS_GROWTH_MAX_KIB,
                      "server RSS %ld -> %ld KiB", rss_before, rss_after);
    char *log = hchild_log(&server);
    cr_expect_eq(hchild_stop(&server), 0, "the server did not exit cleanly:\n%s",
                 log);
    free(log);
}

/* The server's inference_operator_http_connections_expired_total. */
static long expired_total(void)
{
    struct harness none;
    memset(&none, 0, sizeof(none));
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/metrics", server.port);
    CURL *c = harness_curl(&none, server.ca);
    struct reply r;
    long v = -1;
    if (harness_do(c, url, NULL, NULL, 0, &r) == CURLE_OK) {
        const char *p = strstr(r.body, "\ninference_operator_http_connections_expired_total ");
        if (p)
            v = strtol(p + strlen("\ninference_operator_http_connections_expired_total "),
                       NULL, 10);
    }
    reply_free(&r);
    curl_easy_cleanup(c);
    return v;
}

/* ---- slowloris ---------------------------------------------------------- */

enum slow_mode { SLOW_TLS_HEADERS, SLOW_RAW_BYTES, SLOW_SILENT };

struct victim {
    struct htls t;
    enum slow_mode mode;
    size_t pos;
    double opened, closed;
};

/* Connections opened per tick: every open connection gets a byte each
 * tick, so none is ever silent for long (libmicrohttpd's silence timeout
 * must not be what drops them; the deadline must). */
#define OPEN_PER_TICK 40

static bool send_next(struct victim *v, const char *bytes, size_t len)
{
    const char *b = bytes + (v->pos++ % len);
    if (v->mode == SLOW_TLS_HEADERS)
        return gnutls_record_send(v->t.s, b, 1) == 1;
    return send(v->t.fd, b, 1, MSG_NOSIGNAL) == 1;
}

/* Open n connections OPEN_PER_TICK at a time; each tick one more byte of
 * `bytes` on every open one (SLOW_SILENT: nothing), until all are closed
 * or limit_s after the last one opened.  Returns how many are left open. */
static int trickle(struct victim *v, int n, const char *bytes, size_t len,
                   double limit_s)
{
    int opened = 0, open = 0;
    double until = 0;
    while (opened < n || (open > 0 && hostile_now_s() < until)) {
        for (int k = 0; k < OPEN_PER_TICK && opened < n; k++, opened++) {
            struct victim *x = &v[opened];
            x->opened = hostile_now_s();
            if (x->mode == SLOW_TLS_HEADERS) {
                int rc = htls_connect(&x->t, server.port, server.ca, "NORMAL");
                cr_assert_eq(rc, 0, "handshake %d: %s", opened, gnutls_strerror(rc));
            } else {
                x->t.fd = hostile_tcp(server.port);
                cr_assert_geq(x->t.fd, 0, "connect %d: %s", opened, strerror(errno));
            }
            open++;
            until = hostile_now_s() + limit_s;
        }
        for (int i = 0; i < opened; i++) {
            if (v[i].closed > 0)
                continue;
            bool gone = hostile_closed_within(v[i].t.fd, 0);
            if (!gone && v[i].mode != SLOW_SILENT)
                gone = !send_next(&v[i], bytes, len);
            if (gone) {
                v[i].closed = hostile_now_s();
                open--;
            }
        }
        hostile_sleep_ms(TICK_MS);
    }
    return open;
}

static void expect_dropped_by(const struct victim *v, int n, int deadline_s,
                              const char *what)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        cr_expect_gt(v[i].closed, 0, "%s: connection %d still open", what, i);
        if (v[i].closed - v[i].opened > worst)
            worst = v[i].closed - v[i].opened;
    }
    cr_log_info("%s: %d connections, longest lived %.1f s (deadline %d s)",
                what, n, worst, deadline_s);
    cr_expect_leq(worst, deadline_s + CLOSE_SLACK_S, "%s: a connection lived "
                  "%.1f s, deadline %d s", what, worst, deadline_s);
}

static void close_all(struct victim *v, int n)
{
    for (int i = 0; i < n; i++)
        htls_close(&v[i].t);
}

/* After each round: the RSS must not keep growing round after round. */
static void check_round(int round, long *rss_prev)
{
    long rss = round > 0 ? settled_rss(*rss_prev + RSS_ROUND_GROWTH_MAX_KIB)
                         : settled_rss(rss_before + RSS_GROWTH_MAX_KIB);
    cr_log_info("round %d: server RSS %ld KiB", round + 1, rss);
    if (round > 0 && rss_meaningful())
        cr_expect_leq(rss - *rss_prev, RSS_ROUND_GROWTH_MAX_KIB,
                      "round %d grew the RSS %ld -> %ld KiB", round + 1,
                      *rss_prev, rss);
    *rss_prev = rss;
}

static const char slow_request[] =
    "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";

static struct victim victims[SLOWLORIS_CONNS];

Test(hostile, slowloris_headers_byte_by_byte_are_dropped_at_the_deadline)
{
    int n = vg() ? SLOWLORIS_CONNS_VG : SLOWLORIS_CONNS;
    begin(NULL);
    long rss = 0;
    for (int round = 0; round < ROUNDS; round++) {
        memset(victims, 0, sizeof(victims));
        for (int i = 0; i < n; i++)
            victims[i].mode = SLOW_TLS_HEADERS;
        int open = trickle(victims, n, slow_request, sizeof(slow_request) - 1,
                           header_timeout() + 2 * CLOSE_SLACK_S);
        cr_expect_eq(open, 0);
        expect_dropped_by(victims, n, header_timeout(), "slowloris");
        close_all(victims, n);
        check_round(round, &rss);
    }
    /* Dropped by the deadline, not by libmicrohttpd's silence timeout. */
    long expired = expired_total();
    cr_expect_geq(expired, ROUNDS * n, "connections expired: %ld", expired);
    end();
}

/* A ClientHello announcing 512 bytes, trickled: GnuTLS waits for the whole
 * record, each byte resets libmicrohttpd's silence timer. */
static const char slow_hello[] =
    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

Test(hostile, tls_handshakes_that_never_finish_are_dropped)
{
    int n = vg() ? SLOWLORIS_CONNS_VG : SLOWLORIS_CONNS;
    begin(NULL);
    long rss = 0;
    for (int round = 0; round < ROUNDS; round++) {
        /* Half trickle a handshake, half say nothing at all. */
        memset(victims, 0, sizeof(victims));
        for (int i = 0; i < n; i++)
            victims[i].mode = i % 2 ? SLOW_SILENT : SLOW_RAW_BYTES;
        int open = trickle(victims, n, slow_hello, sizeof(slow_hello) - 1,
                           header_timeout() + 2 * CLOSE_SLACK_S);
        cr_expect_eq(open, 0);
        expect_dropped_by(victims, n, header_timeout(), "unfinished TLS");
        close_all(victims, n);
        check_round(round, &rss);
    }
    end();
}

/* ---- not TLS at all ----------------------------------------------------- */

Test(hostile, plain_http_and_garbage_are_dropped_at_once)
{
    int n = vg() ? SLOWLORIS_CONNS_VG : SLOWLORIS_CONNS / 3;
    struct victim *v = victims;
    memset(victims, 0, sizeof(victims));
    begin(NULL);
    static const char http[] = "POST /validate HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 2\r\n\r\n{}";
    char garbage[4096];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)(rand_r(&seed) & 0xff);
    for (int i = 0; i < n; i++) {
        v[i].opened = hostile_now_s();
        v[i].t.fd = hostile_tcp(server.port);
        cr_assert_geq(v[i].t.fd, 0);
        /* Garbage that starts like a handshake record, and garbage that
         * does not; plain HTTP. */
        if (i % 3 == 0)
            garbage[0] = 0x16;
        else
            garbage[0] = 'G';
        const char *p = i % 3 == 2 ? http : garbage;
        size_t len = i % 3 == 2 ? sizeof(http) - 1 : sizeof(garbage);
        ssize_t sent = send(v[i].t.fd, p, len, MSG_NOSIGNAL);
        (void)sent;   /* the server may close before all of it is sent */
    }
    for (int i = 0; i < n; i++) {
        /* Never answered as HTTP: nothing readable but a TLS alert. */
        char buf[64];
        ssize_t got = recv(v[i].t.fd, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);
        if (got > 0) {
            buf[got] = '\0';
            cr_expect(strncmp(buf, "HTTP/", 5) != 0, "plain HTTP answered");
        }
        if (hostile_closed_within(v[i].t.fd, (header_timeout() + CLOSE_SLACK_S) * 1000))
            v[i].closed = hostile_now_s();
    }
    expect_dropped_by(v, n, header_timeout(), "plain HTTP and garbage");
    close_all(v, n);
    end();
}

/* ---- TLS versions ------------------------------------------------------- */

static int handshake_with(const char *prio)
{
    struct htls t;
    int rc = htls_connect(&t, server.port, server.ca, prio);
    if (rc == 0)
        htls_close(&t);
    return rc;
}

Test(hostile, tls_1_0_and_1_1_handshakes_are_refused)
{
    begin(NULL);
    static const char *const old[] = { "NORMAL:-VERS-ALL:+VERS-TLS1.0",
                                       "NORMAL:-VERS-ALL:+VERS-TLS1.1" };
    for (size_t i = 0; i < 2; i++) {
        int rc = handshake_with(old[i]);
        cr_expect_neq(rc, 0, "%s: handshake succeeded", old[i]);
        /* Refused by the server (an alert, or the version it cannot
         * speak), not failed in the client before anything was sent. */
        cr_expect(rc == GNUTLS_E_FATAL_ALERT_RECEIVED ||
                  rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
                  rc == GNUTLS_E_PREMATURE_TERMINATION,
                  "%s: %s", old[i], gnutls_strerror(rc));
    }
    cr_expect_eq(handshake_with("NORMAL:-VERS-ALL:+VERS-TLS1.2"), 0);
    cr_expect_eq(handshake_with("NORMAL:-VERS-ALL:+VERS-TLS1.3"), 0);
    end();
}

/* The control: the same client does speak TLS 1.0 to a server told to
 * allow it, so the refusal above is the default priorities' doing. */
Test(hostile, tls_1_0_client_works_when_the_server_allows_it)
{
    const char *flags[] = { "--tls-priorities",
                            "NORMAL:-VERS-ALL:+VERS-TLS1.0:+VERS-TLS1.2:+SHA1",
                            NULL };
    begin(flags);
    int rc = handshake_with("NORMAL:-VERS-ALL:+VERS-TLS1.0:+SHA1");
    cr_expect_eq(rc, 0, "%s", gnutls_strerror(rc));
    end();
}

/* ---- one request per connection, read back ------------------------------ */

/* Read until the status line is in; its code, or 0 if the server closed
 * (or sent nothing) first. */
static int read_status(struct htls *t)
{
    char buf[256];
    size_t len = 0;
    gnutls_record_set_timeout(t->s, (unsigned)(header_timeout() + CLOSE_SLACK_S) * 1000);
    while (len < sizeof(buf) - 1) {
        ssize_t n = gnutls_record_recv(t->s, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n"))
            break;
    }
    buf[len] = '\0';
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
        return 0;
    return code;
}

/* Send all of req (the server may stop reading and close first). */
static void send_all(struct htls *t, const char *req, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = gnutls_record_send(t->s, req + off, len - off);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* One request on a fresh TLS connection: the answer's status, or 0 when
 * the connection was closed without one. */
static int exchange(const char *req, size_t len)
{
    struct htls t;
    int rc = htls_connect(&t, server.port, server.ca, "NORMAL");
    cr_assert_eq(rc, 0, "%s", gnutls_strerror(rc));
    send_all(&t, req, len);
    int code = read_status(&t);
    htls_close(&t);
    return code;
}

#define OVERSIZED_TRIES 20
#define OVERSIZED_TRIES_VG 3

/* libmicrohttpd's per-connection pool (SRV_CONNECTION_MEMORY) bounds the
 * request line and headers: past it the answer is 431 (or the connection
 * is closed), never a body read into memory without bound. */
Test(hostile, oversized_headers_are_refused)
{
    begin(NULL);
    size_t big = 2 * SRV_CONNECTION_MEMORY;
    size_t cap = big + 4096;
    char *one_huge = malloc(cap), *many_small = malloc(4 * cap), *long_url = malloc(cap);
    cr_assert(one_huge && many_small && long_url);
    int o = snprintf(one_huge, cap, "POST /validate HTTP/1.1\r\nHost: x\r\n"
                                    "Content-Type: application/json\r\nX-Big: ");
    memset(one_huge + o, 'a', big);
    o += (int)big;
    o += snprintf(one_huge + o, cap - (size_t)o, "\r\nContent-Length: 2\r\n\r\n{}");
    size_t one_len = (size_t)o;

    o = snprintf(many_small, 4 * cap, "POST /validate HTTP/1.1\r\nHost: x\r\n");
    for (size_t i = 0; (size_t)o < 2 * big; i++)
        o += snprintf(many_small + o, 4 * cap - (size_t)o, "X-H%zu: v\r\n", i);
    o += snprintf(many_small + o, 4 * cap - (size_t)o,
                  "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    size_t many_len = (size_t)o;

    o = snprintf(long_url, cap, "GET /healthz?");
    memset(long_url + o, 'q', big);
    o += (int)big;
    o += snprintf(long_url + o, cap - (size_t)o, " HTTP/1.1\r\nHost: x\r\n\r\n");
    size_t url_len = (size_t)o;

    int tries = vg() ? OVERSIZED_TRIES_VG : OVERSIZED_TRIES;
    for (int i = 0; i < tries; i++) {
        int a = exchange(one_huge, one_len), b = exchange(many_small, many_len);
        int c = exchange(long_url, url_len);
        cr_expect(a == 431 || a == 413 || a == 0, "one huge header: %d", a);
        cr_expect(b == 431 || b == 413 || b == 0, "many headers: %d", b);
        cr_expect(c == 414 || c == 431 || c == 0, "long URL: %d", c);
    }
    free(one_huge);
    free(many_small);
    free(long_url);
    end();
}

#define LIARS 50
#define LIARS_VG 4

/* A body shorter than its Content-Length, then silence: libmicrohttpd
 * waits for the rest with the idle timeout (120 s) as its only limit; the
 * request deadline drops it. */
Test(hostile, bodies_shorter_than_their_content_length_are_dropped)
{
    int n = vg() ? LIARS_VG : LIARS;
    begin(NULL);
    static const char head[] = "POST /validate HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 100000\r\n\r\n{\"apiVersion\":";
    struct victim *v = victims;
    memset(victims, 0, sizeof(victims));
    for (int i = 0; i < n; i++) {
        v[i].opened = hostile_now_s();
        int rc = htls_connect(&v[i].t, server.port, server.ca, "NORMAL");
        cr_assert_eq(rc, 0, "%s", gnutls_strerror(rc));
        send_all(&v[i].t, head, sizeof(head) - 1);
    }
    for (int i = 0; i < n; i++) {
        double left = v[i].opened + request_timeout() + 2 * CLOSE_SLACK_S -
                      hostile_now_s();
        if (hostile_closed_within(v[i].t.fd, left > 0 ? (int)(left * 1000) : 0))
            v[i].closed = hostile_now_s();
    }
    expect_dropped_by(v, n, request_timeout(), "short bodies");
    close_all(v, n);
    end();
}

/* A body longer than its Content-Length: the extra bytes are the next
 * "request", which is garbage; and lengths that are no numbers. */
Test(hostile, bodies_longer_than_their_content_length_and_bad_lengths)
{
    begin(NULL);
    char req[2048];
    int o = snprintf(req, sizeof(req), "POST /validate HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Type: application/json\r\n"
                                       "Content-Length: 10\r\n\r\n");
    memset(req + o, '{', 1000);
    int code = exchange(req, (size_t)o + 1000);
    cr_expect_eq(code, 400, "first 10 bytes are not a review: %d", code);

    static const char *const lengths[] = { "-1", "99999999999999999999", "12abc",
                                           "0x10", " ", "7340033" };
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        o = snprintf(req, sizeof(req), "POST /validate HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Type: application/json\r\n"
                                       "Content-Length: %s\r\n\r\n{}", lengths[i]);
        code = exchange(req, (size_t)o);
        cr_expect(code == 400 || code == 413 || code == 0,
                  "Content-Length \"%s\": %d", lengths[i], code);
    }
    end();
}

/* ---- bodies past the cap, several at once -------------------------------- */

#define CHUNKED_UPLOADS 4
#define CHUNKED_UPLOADS_VG 1
/* Chunk size of the attacker's stream. */
#define CHUNK_BYTES (64u * 1024)

struct upload {
    pthread_t thread;
    size_t sent;
    int status;
};

static void *chunked_main(void *arg)
{
    struct upload *u = arg;
    struct htls t;
    if (htls_connect(&t, server.port, server.ca, "NORMAL") != 0)
        return NULL;
    static const char head[] = "POST /validate HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    send_all(&t, head, sizeof(head) - 1);
    static char chunk[CHUNK_BYTES + 32];
    int o = snprintf(chunk, sizeof(chunk), "%x\r\n", CHUNK_BYTES);
    memset(chunk + o, ' ', CHUNK_BYTES);
    memcpy(chunk + o + CHUNK_BYTES, "\r\n", 2);
    size_t chunk_len = (size_t)o + CHUNK_BYTES + 2;
    /* Twice the cap: the server must stop reading long before. */
    while (u->sent < 2 * (size_t)SRV_BODY_MAX) {
        ssize_t n = 0;
        size_t off = 0;
        while (off < chunk_len &&
               (n = gnutls_record_send(t.s, chunk + off, chunk_len - off)) > 0)
            off += (size_t)n;
        if (n <= 0)
            break;
        u->sent += CHUNK_BYTES;
    }
    u->status = read_status(&t);
    htls_close(&t);
    return NULL;
}

Test(hostile, chunked_bodies_past_the_cap_at_once)
{
    int n = vg() ? CHUNKED_UPLOADS_VG : CHUNKED_UPLOADS;
    begin(NULL);
    struct upload up[CHUNKED_UPLOADS];
    memset(up, 0, sizeof(up));
    for (int i = 0; i < n; i++)
        cr_assert_eq(pthread_create(&up[i].thread, NULL, chunked_main, &up[i]), 0);
    for (int i = 0; i < n; i++) {
        pthread_join(up[i].thread, NULL);
        cr_expect_lt(up[i].sent, 2 * (size_t)SRV_BODY_MAX,
                     "upload %d: the server read the whole stream", i);
        cr_expect_gt(up[i].sent, 0);
        cr_expect_neq(up[i].status, 200);
    }
    end();
}

/* ---- many connections ---------------------------------------------------- */

/* Long enough that none of the thousand is dropped while the others open. */
#define MANY_HEADER_TIMEOUT_S 120

static const char review_request_fmt[] =
    "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Content-Length: %zu\r\n\r\n%s";

/* Sockets only: the server also opens files now and then (its periodic
 * /proc/self/statm read, certificate reloads), and one of those caught
 * open in a count of all descriptors made it look a connection short. */
static int open_sockets(pid_t pid)
{
    char dir[64], path[320], target[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len > 0 && (size_t)len >= strlen("socket:") &&
            strncmp(target, "socket:", strlen("socket:")) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* The legitimate client reviews on fresh connections all along, so the
 * server holds 0, 1 or 2 of its sockets at any moment: the fewest over a
 * short spell is the baseline, the most is what an attack holds on top. */
#define SOCKET_SAMPLES 20
#define SOCKET_SAMPLE_MS 10
static int sample_sockets(pid_t pid, bool most)
{
    int best = open_sockets(pid);
    for (int i = 1; i < SOCKET_SAMPLES; i++) {
        hostile_sleep_ms(SOCKET_SAMPLE_MS);
        int n = open_sockets(pid);
        if (most ? n > best : n < best)
            best = n;
    }
    return best;
}

/* A thousand keep-alive connections, each with one review answered, all
 * open at once (the default --max-connections is 1024); a legitimate
 * client still gets through, and the server gives it all back after. */
Test(hostile, a_thousand_concurrent_connections)
{
    int n = vg() ? CONCURRENT_CONNS_VG : CONCURRENT_CONNS;
    begin_with(vg() ? 10 * MANY_HEADER_TIMEOUT_S : MANY_HEADER_TIMEOUT_S, NULL);
    int fds_before = sample_sockets(server.pid, false);
    char *review = review_for("CREATE", "{\"metadata\":{\"name\":\"m\"},\"spec\":"
                                        "{\"model\":\"org/m\",\"gpuType\":\"h100\"}}");
    char req[4096];
    int len = snprintf(req, sizeof(req), review_request_fmt, strlen(review), review);
    cr_assert_lt(len, (int)sizeof(req));
    free(review);
    static struct htls conns[CONCURRENT_CONNS];
    int answered = 0;
    for (int i = 0; i < n; i++) {
        int rc = htls_connect(&conns[i], server.port, server.ca, "NORMAL");
        cr_assert_eq(rc, 0, "connection %d: %s", i, gnutls_strerror(rc));
        send_all(&conns[i], req, (size_t)len);
        answered += read_status(&conns[i]) == 200;
    }
    cr_expect_eq(answered, n);
    int fds = sample_sockets(server.pid, true) - fds_before;
    cr_log_info("%d connections open at once; server holds %d more sockets",
                n, fds);
    cr_expect_geq(fds, n, "the server holds %d connections, not %d", fds, n);
    for (int i = 0; i < n; i++)
        htls_close(&conns[i]);
    /* Closed by the clients: the server notices and lets go. */
    double until = hostile_now_s() + 60;
    while (open_sockets(server.pid) - fds_before > n / 10 && hostile_now_s() < until)
        hostile_sleep_ms(100);
    cr_expect_leq(open_sockets(server.pid) - fds_before, n / 10);
    end();
}

#define LIMIT 32
#define LIMIT_VG 6
#define PAST_LIMIT 100
#define PAST_LIMIT_VG 10

/* Past --max-connections libmicrohttpd stops accepting: new connections
 * wait in the kernel's listen backlog (nothing is refused) and are taken
 * as slots free.  With every slot held by a silent client, the deadline
 * is what frees them, so a legitimate client waits at most a few header
 * timeouts, and gets through. */
Test(hostile, past_the_connection_limit_the_queue_still_moves)
{
    int limit = vg() ? LIMIT_VG : LIMIT, n = vg() ? PAST_LIMIT_VG : PAST_LIMIT;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *flags[] = { "--max-connections", lim, NULL };
    begin(flags);
    struct victim *v = victims;
    memset(victims, 0, sizeof(victims));
    for (int i = 0; i < n; i++) {
        v[i].opened = hostile_now_s();
        v[i].t.fd = hostile_tcp(server.port);
        cr_assert_geq(v[i].t.fd, 0, "connect %d: %s", i, strerror(errno));
    }
    /* Each wave of `limit` waits one header timeout. */
    int waves = (n + limit - 1) / limit + 1;
    for (int i = 0; i < n; i++) {
        double left = v[i].opened + waves * (header_timeout() + CLOSE_SLACK_S) -
                      hostile_now_s();
        if (hostile_closed_within(v[i].t.fd, left > 0 ? (int)(left * 1000) : 0))
            v[i].closed = hostile_now_s();
    }
    expect_dropped_by(v, n, waves * header_timeout(), "past the limit");
    close_all(v, n);
    end();
}
