/*
 * test_kube_client.c — the parts of kube_client and kube_watch that need
 * no server: Status decoding, the rate limiter and the token refresh on
 * injected time, verb and code slots, escaping and request paths, and the
 * watch state machine's decisions and backoff.
 */
#include <criterion/criterion.h>

#include "kube_client.h"
#include "kube_ratelimit.h"
#include "kube_token.h"
#include "kube_watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EPS 1e-9

/* ---- Status ----------------------------------------------------------- */

static struct kube_response resp(long status, const char *body)
{
    struct kube_response r = {.status = status, .body = (char *)body,
                              .len = strlen(body)};
    return r;
}

Test(kube_status, decodes_metav1_status)
{
    struct kube_response r = resp(409,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"configmaps \\\"one\\\" already exists\",\"reason\":\"AlreadyExists\","
        "\"details\":{\"name\":\"one\",\"kind\":\"configmaps\"},\"code\":409}");
    kube_status_decode(&r);
    cr_assert_str_eq(r.reason, "AlreadyExists");
    cr_assert_str_eq(r.message, "configmaps \"one\" already exists");
}

Test(kube_status, clear_below_400)
{
    struct kube_response r = resp(200, "{\"reason\":\"x\",\"message\":\"y\"}");
    strcpy(r.reason, "stale");
    strcpy(r.message, "stale");
    kube_status_decode(&r);
    cr_assert_str_eq(r.reason, "");
    cr_assert_str_eq(r.message, "");
}

Test(kube_status, plain_text_body)
{
    struct kube_response r = resp(404, "404 page not found\n");
    kube_status_decode(&r);
    cr_assert_str_eq(r.reason, "NotFound");
    cr_assert_str_eq(r.message, "404 page not found");
}

Test(kube_status, empty_body_and_unknown_code)
{
    struct kube_response r = resp(503, "");
    kube_status_decode(&r);
    cr_assert_str_eq(r.reason, "ServiceUnavailable");
    cr_assert_str_eq(r.message, "HTTP 503");
    r = resp(418, "");
    kube_status_decode(&r);
    cr_assert_str_eq(r.reason, "Unknown");
}

/* Wrong types and broken JSON never crash and never leave garbage. */
Test(kube_status, defensive_on_odd_bodies)
{
    static const char *const bodies[] = {
        "{\"reason\":42,\"message\":[\"x\"]}",
        "{\"reason\":null}",
        "[1,2,3]",
        "{\"message\":\"cut",
        "\"just a string\"",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct kube_response r = resp(500, bodies[i]);
        kube_status_decode(&r);
        cr_assert_str_eq(r.reason, "InternalError", "body %zu", i);
        cr_assert_str_neq(r.message, "", "body %zu", i);
        cr_assert_lt(strlen(r.message), sizeof r.message);
    }
}

Test(kube_status, long_message_is_bounded_and_one_line)
{
    size_t n = 4000;
    char *body = malloc(2 * n + 64);
    char *p = body + sprintf(body, "{\"reason\":\"Invalid\",\"message\":\"");
    for (size_t i = 0; i < n; i++) {
        if (i % 50 == 49) {     /* a JSON "\n" now and then */
            *p++ = '\\';
            *p++ = 'n';
        } else {
            *p++ = 'm';
        }
    }
    strcpy(p, "\"}");
    struct kube_response r = resp(422, body);
    kube_status_decode(&r);
    cr_assert_str_eq(r.reason, "Invalid");
    cr_assert_eq(strlen(r.message), sizeof r.message - 1);
    cr_assert_null(strchr(r.message, '\n'), "control characters are blanked");
    free(body);
}

/* ---- verb and code slots ---------------------------------------------- */

Test(kube_stats, verb_and_code_names)
{
    cr_assert_eq(kube_verb_index("GET"), KUBE_VERB_GET);
    cr_assert_eq(kube_verb_index("PATCH"), KUBE_VERB_PATCH);
    cr_assert_eq(kube_verb_index("DELETE"), KUBE_VERB_DELETE);
    cr_assert_eq(kube_verb_index("WATCH"), -1, "WATCH is kube_stream's, not a method");
    cr_assert_eq(kube_verb_index("get"), -1);
    cr_assert_eq(kube_verb_index(NULL), -1);
    for (int v = 0; v < KUBE_VERBS; v++)
        cr_assert(v == KUBE_VERB_WATCH || kube_verb_index(kube_verb_name(v)) == v);
    cr_assert_str_eq(kube_verb_name(KUBE_VERB_WATCH), "WATCH");
    cr_assert_str_eq(kube_verb_name(99), "unknown");

    cr_assert_eq(kube_code_class(200), KUBE_CODE_2XX);
    cr_assert_eq(kube_code_class(201), KUBE_CODE_2XX);
    cr_assert_eq(kube_code_class(304), KUBE_CODE_3XX);
    cr_assert_eq(kube_code_class(410), KUBE_CODE_4XX);
    cr_assert_eq(kube_code_class(503), KUBE_CODE_5XX);
    cr_assert_eq(kube_code_class(0), KUBE_CODE_ERROR);
    cr_assert_eq(kube_code_class(101), KUBE_CODE_OTHER);
    cr_assert_eq(kube_code_class(999), KUBE_CODE_OTHER);
    cr_assert_str_eq(kube_code_name(KUBE_CODE_4XX), "4xx");
    cr_assert_str_eq(kube_code_name(KUBE_CODE_ERROR), "error");
}

/* ---- escaping and paths ------------------------------------------------- */

Test(kube_paths, escape)
{
    char *e = kube_escape("app in (a,b),tier!=x/y+z=~");
    cr_assert_str_eq(e, "app%20in%20%28a%2Cb%29%2Ctier%21%3Dx%2Fy%2Bz%3D~");
    free(e);
    e = kube_escape("");
    cr_assert_str_eq(e, "");
    free(e);
}

Test(kube_paths, list_path)
{
    char *p = kube_watch_list_path("/api/v1/configmaps", NULL, 0, NULL);
    cr_assert_str_eq(p, "/api/v1/configmaps?limit=500");
    free(p);
    p = kube_watch_list_path("/apis/apps/v1/deployments", "a=b", 100, "eyJ2Ijo+/=");
    cr_assert_str_eq(p, "/apis/apps/v1/deployments?limit=100&labelSelector=a%3Db"
                        "&continue=eyJ2Ijo%2B%2F%3D");
    free(p);
    p = kube_watch_list_path("/x", "", 1, "");
    cr_assert_str_eq(p, "/x?limit=1");
    free(p);
}

Test(kube_paths, watch_path)
{
    char *p = kube_watch_watch_path("/api/v1/configmaps", "io-test in (w)", "1505", 290);
    cr_assert_str_eq(p, "/api/v1/configmaps?watch=1&allowWatchBookmarks=true"
                        "&resourceVersion=1505&timeoutSeconds=290"
                        "&labelSelector=io-test%20in%20%28w%29");
    free(p);
}

/* ---- rate limiter on injected time -------------------------------------- */

/* criterion's float macros evaluate their arguments twice: reserve once. */
static void reserve_is(struct kube_ratelimit *rl, double now, double want)
{
    double got = kube_ratelimit_reserve_at(rl, now);
    cr_assert_float_eq(got, want, EPS, "at %.3f: wait %.6f, want %.6f", now, got, want);
}

Test(kube_ratelimit, burst_then_steady_rate)
{
    struct kube_ratelimit rl;
    cr_assert_eq(kube_ratelimit_init(&rl, 10, 3), 0);
    for (int i = 0; i < 3; i++)
        reserve_is(&rl, 100.0, 0);
    /* Out of tokens: each next caller waits one more 1/qps. */
    reserve_is(&rl, 100.0, 0.1);
    reserve_is(&rl, 100.0, 0.2);
    /* 0.3 s later the debt (2) is paid and one token is back. */
    reserve_is(&rl, 100.3, 0);
    reserve_is(&rl, 100.3, 0.1);
    kube_ratelimit_destroy(&rl);
}

Test(kube_ratelimit, refill_is_capped_at_burst)
{
    struct kube_ratelimit rl;
    kube_ratelimit_init(&rl, 5, 2);
    kube_ratelimit_reserve_at(&rl, 0);
    /* An hour idle refills two tokens, not 18000. */
    reserve_is(&rl, 3600, 0);
    reserve_is(&rl, 3600, 0);
    reserve_is(&rl, 3600, 0.2);
    kube_ratelimit_destroy(&rl);
}

Test(kube_ratelimit, clock_step_back_refills_nothing)
{
    struct kube_ratelimit rl;
    kube_ratelimit_init(&rl, 1, 1);
    reserve_is(&rl, 50, 0);
    reserve_is(&rl, 10, 1.0);
    reserve_is(&rl, 52, 0);
    kube_ratelimit_destroy(&rl);
}

Test(kube_ratelimit, zero_qps_is_unlimited_and_zero_burst_is_one)
{
    struct kube_ratelimit rl;
    kube_ratelimit_init(&rl, 0, 0);
    for (int i = 0; i < 1000; i++)
        reserve_is(&rl, 1, 0);
    kube_ratelimit_destroy(&rl);
    kube_ratelimit_init(&rl, 4, 0);
    reserve_is(&rl, 1, 0);
    reserve_is(&rl, 1, 0.25);
    kube_ratelimit_destroy(&rl);
}

/* ---- watch decisions --------------------------------------------------- */

static struct kube_watch_decision decide(enum kube_watch_step step, bool failed,
                                         long status, long code, bool bad,
                                         bool progressed)
{
    struct kube_watch_outcome o = {.step = step, .failed = failed,
                                   .http_status = status, .event_code = code,
                                   .bad_stream = bad, .progressed = progressed};
    return kube_watch_decide(&o);
}

#define LIST KUBE_WATCH_STEP_LIST
#define WATCH KUBE_WATCH_STEP_WATCH

static void expect(struct kube_watch_decision d, enum kube_watch_step next,
                   bool backoff, bool reset, const char *what)
{
    cr_assert_eq(d.next, next, "%s: next", what);
    cr_assert_eq(d.backoff, backoff, "%s: backoff", what);
    cr_assert_eq(d.reset_backoff, reset, "%s: reset", what);
}

Test(kube_watch_sm, list_outcomes)
{
    expect(decide(LIST, false, 200, 0, false, false), WATCH, false, false, "list ok");
    expect(decide(LIST, false, 410, 0, false, false), LIST, false, false,
           "continue token expired: list again at once");
    expect(decide(LIST, false, 500, 0, false, false), LIST, true, false, "list 500");
    expect(decide(LIST, false, 403, 0, false, false), LIST, true, false, "list 403");
    expect(decide(LIST, true, 0, 0, false, false), LIST, true, false, "list transport");
    expect(decide(LIST, true, 200, 0, false, false), LIST, true, false, "page not a list");
}

Test(kube_watch_sm, watch_outcomes)
{
    expect(decide(WATCH, false, 200, 0, false, true), WATCH, false, true,
           "server timeout after events: rewatch at once");
    expect(decide(WATCH, false, 200, 0, false, false), WATCH, true, false,
           "instant empty EOF: pause so it never spins");
    expect(decide(WATCH, false, 410, 0, false, false), LIST, true, true,
           "HTTP 410 (e.g. after an outage): a short pause, the outage backoff reset");
    expect(decide(WATCH, false, 200, 410, false, true), LIST, false, true,
           "ERROR 410 after a healthy watch: relist at once");
    expect(decide(WATCH, false, 200, 500, false, true), WATCH, true, true,
           "ERROR 500: back off, rewatch");
    expect(decide(WATCH, false, 500, 0, false, false), WATCH, true, false, "HTTP 500");
    expect(decide(WATCH, false, 401, 0, false, false), WATCH, true, false, "HTTP 401");
    expect(decide(WATCH, true, 0, 0, false, false), WATCH, true, false,
           "transport / idle timeout");
    expect(decide(WATCH, true, 200, 0, false, true), WATCH, true, true,
           "reset after a long healthy watch, then back off");
    expect(decide(WATCH, false, 200, 0, true, true), LIST, true, true,
           "bad or oversized line: an event may be lost");
}

/* ---- backoff and timeout jitter ------------------------------------------ */

Test(kube_watch_sm, backoff_caps_double_to_max)
{
    static const uint32_t caps[] = {800, 1600, 3200, 6400, 12800, 25600, 30000, 30000};
    for (unsigned a = 0; a < sizeof caps / sizeof caps[0]; a++) {
        cr_assert_eq(kube_watch_backoff_ms(a, caps[a]), caps[a], "attempt %u", a);
        cr_assert_eq(kube_watch_backoff_ms(a, caps[a] + 1), 0, "attempt %u wraps", a);
        cr_assert_eq(kube_watch_backoff_ms(a, 0), 0);
    }
    cr_assert_eq(kube_watch_backoff_ms(1000, 30000), 30000, "huge attempt is capped");
    cr_assert_eq(kube_watch_backoff_ms(UINT32_MAX, 30001), 0);
}

/* Full jitter over a sequence from a fixed generator stays in range and
 * actually spreads. */
Test(kube_watch_sm, backoff_sequence_with_injected_randomness)
{
    uint64_t x = 42;
    for (unsigned a = 0; a < 12; a++) {
        uint32_t cap = 800u << (a < 6 ? a : 6);
        if (cap > 30000)
            cap = 30000;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 1000; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t ms = kube_watch_backoff_ms(a, x >> 11);
            cr_assert_leq(ms, cap);
            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        cr_assert_lt(lo, cap / 10, "attempt %u: low end reached", a);
        cr_assert_gt(hi, cap - cap / 10, "attempt %u: high end reached", a);
    }
}

Test(kube_watch_sm, timeout_jitter)
{
    cr_assert_eq(kube_watch_timeout_s(0, 0), KUBE_WATCH_TIMEOUT_S - KUBE_WATCH_JITTER_S);
    cr_assert_eq(kube_watch_timeout_s(0, 2 * KUBE_WATCH_JITTER_S),
                 KUBE_WATCH_TIMEOUT_S + KUBE_WATCH_JITTER_S);
    cr_assert_eq(kube_watch_timeout_s(0, 2 * KUBE_WATCH_JITTER_S + 1),
                 KUBE_WATCH_TIMEOUT_S - KUBE_WATCH_JITTER_S);
    /* Short timeouts get a proportional jitter, never below zero. */
    cr_assert_eq(kube_watch_timeout_s(8, 0), 6);
    cr_assert_eq(kube_watch_timeout_s(8, 4), 10);
    cr_assert_eq(kube_watch_timeout_s(1, 12345), 1);
}

/* ---- bearer token -------------------------------------------------------- */

#define ERRLEN 512

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* The header line's token part. */
static void expect_token(struct kube_token *t, double now, bool force,
                         const char *want)
{
    bool oom;
    char *h = kube_token_header_at(t, now, force, &oom);
    cr_assert(!oom);
    if (!want) {
        cr_assert_null(h, "no token expected at %.0f", now);
        return;
    }
    cr_assert_not_null(h);
    cr_assert_str_eq(h + strlen("Authorization: Bearer "), want, "at %.0f", now);
    kube_token_free_header(h);
}

static char tok_dir[] = "/tmp/io-kube-token-test.XXXXXX";

static void tok_setup(void)
{
    cr_assert_not_null(mkdtemp(tok_dir));
}

static void tok_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tok_dir, name);
}

Test(kube_token, file_read_trims_and_validates, .init = tok_setup)
{
    char p[256], out[KUBE_TOKEN_MAX], err[ERRLEN];
    tok_path(p, sizeof p, "t");
    write_file(p, "abc.DEF-123_x\n\n");
    cr_assert_eq(kube_token_read_file(p, out, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(out, "abc.DEF-123_x");
    static const char *const bad[] = {"", "\n", "two words", "a\nb", "tab\there"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(p, bad[i]);
        cr_assert_eq(kube_token_read_file(p, out, err, sizeof err), -1, "case %zu", i);
        cr_assert_not_null(strstr(err, p), "%s", err);
        cr_assert_null(strstr(err, "two"), "the token is never in a message");
    }
    tok_path(p, sizeof p, "missing");
    cr_assert_eq(kube_token_read_file(p, out, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "No such file"), "%s", err);
    unlink(p);
}

/* The token is re-read every minute: a FIFO (or device) at its path must
 * fail that read at once, not block the caller.  The timeout turns a
 * regression into a failure instead of a hang. */
Test(kube_token, fifo_refused_without_blocking, .init = tok_setup, .timeout = 20)
{
    char p[256], out[KUBE_TOKEN_MAX], err[ERRLEN];
    tok_path(p, sizeof p, "fifo");
    cr_assert_eq(mkfifo(p, 0600), 0, "%s", strerror(errno));
    cr_assert_eq(kube_token_read_file(p, out, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
    cr_assert_eq(kube_token_read_file("/dev/zero", out, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
    unlink(p);
}

/* One byte more than fits is refused even when trimming would make it
 * fit: the file is not silently cut. */
Test(kube_token, oversized_file_refused, .init = tok_setup)
{
    char p[256], err[ERRLEN];
    static char out[KUBE_TOKEN_MAX];
    tok_path(p, sizeof p, "big");
    size_t n = KUBE_TOKEN_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n - 1] = '\n';
    big[n] = '\0';
    write_file(p, big);
    cr_assert_eq(kube_token_read_file(p, out, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "larger than"), "%s", err);
    big[n - 2] = '\n';   /* KUBE_TOKEN_MAX bytes: a token of MAX-1 fits */
    big[n - 1] = '\0';
    write_file(p, big);
    cr_assert_eq(kube_token_read_file(p, out, err, sizeof err), 0, "%s", err);
    cr_assert_eq(strlen(out), KUBE_TOKEN_MAX - 1);
    free(big);
    unlink(p);
}

Test(kube_token, refresh_schedule_on_injected_time, .init = tok_setup)
{
    char p[256], err[ERRLEN];
    tok_path(p, sizeof p, "sa");
    write_file(p, "first\n");
    struct kube_token t;
    cr_assert_eq(kube_token_init(&t, "", p, 1000, err, sizeof err), 0, "%s", err);
    expect_token(&t, 1000, false, "first");
    write_file(p, "second\n");
    expect_token(&t, 1000 + KUBE_TOKEN_REFRESH_S - 1, false, "first");
    expect_token(&t, 1000 + KUBE_TOKEN_REFRESH_S, false, "second");
    write_file(p, "third\n");
    expect_token(&t, 1000 + KUBE_TOKEN_REFRESH_S + 1, true, "third");  /* after a 401 */
    unlink(p);
    /* Gone (a rotation half done): the last token stays. */
    expect_token(&t, 5000, false, "third");
    expect_token(&t, 5001, true, "third");
    write_file(p, "fourth");
    kube_token_refresh_at(&t, 5002);
    expect_token(&t, 5002, false, "fourth");
    kube_token_destroy(&t);
    unlink(p);
}

Test(kube_token, static_token_and_fallbacks, .init = tok_setup)
{
    char p[256], err[ERRLEN];
    struct kube_token t;
    cr_assert_eq(kube_token_init(&t, "", "", 0, err, sizeof err), 0);
    expect_token(&t, 0, true, NULL);     /* client certificates: no header */
    kube_token_destroy(&t);

    cr_assert_eq(kube_token_init(&t, "static", "", 0, err, sizeof err), 0);
    expect_token(&t, 9999, true, "static");
    kube_token_destroy(&t);

    /* File not there yet: the static token serves until it is. */
    tok_path(p, sizeof p, "later");
    cr_assert_eq(kube_token_init(&t, "static", p, 0, err, sizeof err), 0);
    expect_token(&t, 1, false, "static");
    write_file(p, "from-file");
    expect_token(&t, KUBE_TOKEN_REFRESH_S, false, "from-file");
    kube_token_destroy(&t);
    unlink(p);

    /* No file and no static token: an error naming the file. */
    cr_assert_eq(kube_token_init(&t, "", p, 0, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, p), "%s", err);

    /* A static token that would split the header is refused. */
    cr_assert_eq(kube_token_init(&t, "abc\r\nX-Evil: 1", "", 0, err, sizeof err), -1);
    cr_assert_null(strstr(err, "Evil"), "%s", err);
}
