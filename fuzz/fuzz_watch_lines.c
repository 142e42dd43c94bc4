/*
 * fuzz_watch_lines.c — one input = one watch response body, cut into
 * chunks the way a network would, through the watch's own stream path:
 * kube_lines splits it, each line is decoded as a watch event exactly as
 * the watch thread does (kube_watch.c's on_data → on_line →
 * on_event_json: cJSON, type, object, resourceVersion, ERROR Status), and
 * events go to the real cache handlers (rc_cache: decoders, map, owner
 * wake-ups).
 *
 * Input layout (so chunking is part of what the fuzzer explores):
 *   byte 0   low 4 bits: largest chunk is 2^n bytes; high 4 bits seed the
 *            chunk sizes with byte 1
 *   byte 2   line limit: 0 = KUBE_WATCH_LINE_MAX, else byte * 64 bytes
 *            (so "event longer than the limit" is reachable)
 *   byte 3   which cache the events feed: % 3 = InferenceServices,
 *            Deployments, Services
 *   rest     the body: one JSON watch event per line
 *
 * The decoder functions are static in kube_watch.c, so this file includes
 * kube_watch.c itself (its network calls are stubbed below and never
 * reached); see fuzz/README.md for the small function that, once exposed
 * in kube_watch.h, would make the include unnecessary.
 *
 * Checks beyond the sanitizers:
 *   - kube_lines gives back exactly the body's '\n'-separated lines,
 *     whatever the chunking (compared with a plain split of the body);
 *   - every line handed to the decoder fits the limit and is terminated;
 *   - after a stream ends (a bad line, an ERROR event, a line too long)
 *     the caller can reset and go on, as the watch does on reconnect;
 *   - the cache ends up consistent: a relist that sees nothing empties it.
 */
#include "../reconciler/kube_watch.c"

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz_common.h"
#include "rc_cache.h"
#include "rc_desired.h"

/* ---- kube_client stubs: the fuzzer never gets as far as the network ----- */

struct kube_conn *kube_conn_new(struct kube_client *c)
{
    (void)c;
    abort();
}

void kube_conn_free(struct kube_conn *conn)
{
    (void)conn;
    abort();
}

int kube_request(struct kube_conn *conn, const char *method, const char *path,
                 const char *content_type, const char *body, size_t len,
                 struct kube_response *resp, char *err, size_t errlen)
{
    (void)conn, (void)method, (void)path, (void)content_type, (void)body;
    (void)len, (void)resp, (void)err, (void)errlen;
    abort();
}

void kube_response_free(struct kube_response *r)
{
    (void)r;
    abort();
}

int kube_stream(struct kube_conn *conn, const char *path, unsigned idle_timeout_s,
                kube_stream_fn fn, void *arg, const volatile bool *stop,
                long *status, char *err, size_t errlen)
{
    (void)conn, (void)path, (void)idle_timeout_s, (void)fn, (void)arg;
    (void)stop, (void)status, (void)err, (void)errlen;
    abort();
}

char *kube_escape(const char *s)
{
    (void)s;
    abort();
}

/* ---- setup ------------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct rc_settings s;
    rc_settings_init(&s);
    if (rc_shapes_init(&s) != 0)
        abort();
    /* Every log line is built (field escaping of hostile strings is part
     * of what runs) and thrown away. */
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        abort();
    log_set_fd(fd);
    log_set_level(LOG_DEBUG);
    return 0;
}

struct chunker {
    const uint8_t *p;
    size_t left;
    uint32_t rng;
    unsigned max_shift;
};

static size_t next_chunk(struct chunker *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    size_t n = 1 + (c->rng & ((1u << c->max_shift) - 1));
    return n < c->left ? n : c->left;
}

/* ---- pass 1: the splitter against a plain split ---------------------------- */

struct split_check {
    const char *body;
    size_t len;
    size_t at;         /* where the next expected line starts */
    size_t lines;
};

static int expect_line(void *arg, char *line, size_t len)
{
    struct split_check *s = arg;
    const char *nl = memchr(s->body + s->at, '\n', s->len - s->at);
    FUZZ_CHECK(nl != NULL, "line %zu delivered without its '\\n'", s->lines);
    size_t want = (size_t)(nl - (s->body + s->at));
    FUZZ_CHECK(len == want && memcmp(line, s->body + s->at, len) == 0,
               "line %zu: got %zu bytes, the body has %zu", s->lines, len, want);
    FUZZ_CHECK(line[len] == '\0', "line %zu not NUL-terminated", s->lines);
    s->at += want + 1;
    s->lines++;
    return 0;
}

static void check_split(const char *body, size_t len, struct chunker c)
{
    struct kube_lines l;
    kube_lines_init(&l, len + 1);   /* never too long: pure splitting */
    struct split_check s = {.body = body, .len = len};
    c.p = (const uint8_t *)body;
    c.left = len;
    while (c.left) {
        size_t n = next_chunk(&c);
        FUZZ_CHECK(kube_lines_feed(&l, (const char *)c.p, n, expect_line, &s) == 0,
                   "feed failed with no line over the limit");
        c.p += n;
        c.left -= n;
    }
    FUZZ_CHECK(memchr(body + s.at, '\n', len - s.at) == NULL,
               "a complete line was never delivered");
    FUZZ_CHECK(l.len == len - s.at, "partial line of %zu bytes held as %zu",
               len - s.at, l.len);
    kube_lines_free(&l);
}

/* ---- pass 2: the watch's own stream path into a cache ----------------------- */

static size_t enqueued;

static void count_enqueue(void *arg, const char *key)
{
    (void)arg;
    FUZZ_CHECK(key && key[0] && strlen(key) < RC_KEY_BUF, "enqueued key");
    enqueued++;
}

static size_t limit_seen;

static int checked_line(void *arg, char *line, size_t len)
{
    FUZZ_CHECK(len <= limit_seen && line[len] == '\0',
               "line of %zu bytes past the limit %zu", len, limit_seen);
    return on_line(arg, line, len);
}

static void run_stream(const char *body, size_t len, struct chunker c,
                       size_t max, int kind)
{
    struct rc_cache cache;
    FUZZ_CHECK(rc_cache_init(&cache, count_enqueue, NULL) == 0, "cache init");
    struct kube_watch w;
    memset(&w, 0, sizeof w);
    snprintf(w.name, sizeof w.name, "fuzz");
    w.h = kind == 0 ? rc_cache_isvc_handlers(&cache)
        : kind == 1 ? rc_cache_deploy_handlers(&cache)
                    : rc_cache_service_handlers(&cache);
    kube_lines_init(&w.lines, max);
    limit_seen = max;

    struct kube_watch_outcome o = {.step = KUBE_WATCH_STEP_WATCH};
    struct stream_ctx x = {.w = &w, .o = &o};
    w.h.on_list_begin(w.h.arg);
    c.p = (const uint8_t *)body;
    c.left = len;
    while (c.left) {
        size_t n = next_chunk(&c);
        /* on_data, with the line check in between. */
        int rc = kube_lines_feed(&w.lines, (const char *)c.p, n, checked_line, &x);
        if (rc == -1 && !o.bad_stream)
            o.bad_stream = true;
        if (rc != 0) {
            /* The stream ends here; the watch reconnects and the next
             * connection starts on a line boundary. */
            FUZZ_CHECK(rc == -1 || rc == 1, "on_line returned %d", rc);
            FUZZ_CHECK(rc != 1 || o.event_code > 0, "ERROR event without code");
            FUZZ_CHECK(rc != -1 || o.bad_stream, "stream ended, not flagged");
            struct kube_watch_decision d = kube_watch_decide(&o);
            FUZZ_CHECK(d.next == KUBE_WATCH_STEP_LIST ||
                           d.next == KUBE_WATCH_STEP_WATCH, "decision");
            kube_lines_reset(&w.lines);
            o = (struct kube_watch_outcome){.step = KUBE_WATCH_STEP_WATCH};
            const uint8_t *nl = memchr(c.p + n, '\n', c.left - n);
            size_t skip = nl ? (size_t)(nl - c.p) + 1 : c.left;
            c.p += skip;
            c.left -= skip;
            continue;
        }
        c.p += n;
        c.left -= n;
    }
    FUZZ_CHECK(strlen(w.rv) < sizeof w.rv, "rv");
    w.h.on_list_end(w.h.arg);

    /* A relist that finds nothing leaves nothing. */
    w.h.on_list_begin(w.h.arg);
    w.h.on_list_end(w.h.arg);
    size_t ni, nd, ns;
    rc_cache_counts(&cache, &ni, &nd, &ns);
    FUZZ_CHECK(ni == 0 && nd == 0 && ns == 0, "relist of nothing left %zu/%zu/%zu",
               ni, nd, ns);
    kube_lines_free(&w.lines);
    rc_cache_free(&cache);
}

static bool contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
            return true;
    return false;
}

/* ---- pass 3: a line that is a list page goes through deliver_page ---------- */

static int page_line(void *arg, char *line, size_t len)
{
    struct kube_watch *w = arg;
    if (!contains(line, len, "\"items\""))
        return 0;
    cJSON *page = cJSON_ParseWithLength(line, len);
    struct page_result pr = {.cont = ""};
    char err[WATCH_ERR_MAX];
    if (deliver_page(w, page, &pr, err, sizeof err) == 0) {
        FUZZ_CHECK(w->rv[0] && strlen(w->rv) < sizeof w->rv, "list rv");
        FUZZ_CHECK(strlen(pr.cont) < sizeof pr.cont, "continue");
    }
    cJSON_Delete(page);
    return 0;
}

static void run_pages(const char *body, size_t len, int kind)
{
    if (!contains(body, len, "\"items\""))
        return;
    struct rc_cache cache;
    FUZZ_CHECK(rc_cache_init(&cache, count_enqueue, NULL) == 0, "cache init");
    struct kube_watch w;
    memset(&w, 0, sizeof w);
    snprintf(w.name, sizeof w.name, "fuzz-list");
    w.h = kind == 0 ? rc_cache_isvc_handlers(&cache)
        : kind == 1 ? rc_cache_deploy_handlers(&cache)
                    : rc_cache_service_handlers(&cache);
    kube_lines_init(&w.lines, len + 1);
    w.h.on_list_begin(w.h.arg);
    FUZZ_CHECK(kube_lines_feed(&w.lines, body, len, page_line, &w) == 0, "pages");
    w.h.on_list_end(w.h.arg);
    kube_lines_free(&w.lines);
    rc_cache_free(&cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct chunker c = {
        .rng = ((uint32_t)(data[0] >> 4) << 8 | data[1]) * 2654435761u | 1,
        .max_shift = data[0] & 15,
    };
    size_t max = data[2] ? (size_t)data[2] * 64 : KUBE_WATCH_LINE_MAX;
    int kind = data[3] % 3;
    const char *body = (const char *)data + 4;
    size_t len = size - 4;

    enqueued = 0;
    check_split(body, len, c);
    run_stream(body, len, c, max, kind);
    run_pages(body, len, kind);
    return 0;
}
