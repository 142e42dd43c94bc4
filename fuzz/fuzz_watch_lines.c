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
 * The decoding is kube_watch.h's kube_watch_decode_line and
 * kube_watch_decode_page, the very functions the watch thread calls on
 * each line and each list page.
 *
 * Checks beyond the sanitizers:
 *   - kube_lines gives back exactly the body's '\n'-separated lines,
 *     whatever the chunking (compared with a plain split of the body);
 *   - every line handed to the decoder fits the limit and is terminated;
 *   - after a stream ends (a bad line, an ERROR event, a line too long)
 *     the caller can reset and go on, as the watch does on reconnect;
 *   - the cache ends up consistent: a relist that sees nothing empties it.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "kube_lines.h"
#include "kube_watch.h"
#include "log.h"
#include "rc_cache.h"
#include "rc_desired.h"

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

/* What the watch thread keeps across the lines of one stream. */
struct stream {
    struct kube_watch_handlers h;
    char rv[KUBE_WATCH_RV_MAX];
    struct kube_watch_decoded d;
};

static int checked_line(void *arg, char *line, size_t len)
{
    struct stream *st = arg;
    FUZZ_CHECK(len <= limit_seen && line[len] == '\0',
               "line of %zu bytes past the limit %zu", len, limit_seen);
    return kube_watch_decode_line("fuzz", line, len, &st->h, st->rv,
                                  sizeof st->rv, &st->d);
}

static struct kube_watch_handlers handlers_for(struct rc_cache *cache, int kind)
{
    return kind == 0 ? rc_cache_isvc_handlers(cache)
         : kind == 1 ? rc_cache_deploy_handlers(cache)
                     : rc_cache_service_handlers(cache);
}

static void run_stream(const char *body, size_t len, struct chunker c,
                       size_t max, int kind)
{
    struct rc_cache cache;
    FUZZ_CHECK(rc_cache_init(&cache, count_enqueue, NULL) == 0, "cache init");
    struct stream st = {.h = handlers_for(&cache, kind)};
    struct kube_lines lines;
    kube_lines_init(&lines, max);
    limit_seen = max;

    st.h.on_list_begin(st.h.arg);
    c.p = (const uint8_t *)body;
    c.left = len;
    while (c.left) {
        size_t n = next_chunk(&c);
        int rc = kube_lines_feed(&lines, (const char *)c.p, n, checked_line, &st);
        if (rc != 0) {
            /* The stream ends here (a bad line, an ERROR event, a line too
             * long); the watch decides, reconnects, and the next
             * connection starts on a line boundary. */
            FUZZ_CHECK(rc == -1 || rc == 1, "decode returned %d", rc);
            FUZZ_CHECK(rc != 1 || (st.d.event_code >= 1 && st.d.event_code < 1000),
                       "ERROR event code %ld", st.d.event_code);
            struct kube_watch_outcome o = {.step = KUBE_WATCH_STEP_WATCH,
                                           .event_code = rc == 1 ? st.d.event_code : 0,
                                           .bad_stream = rc == -1};
            struct kube_watch_decision d = kube_watch_decide(&o);
            FUZZ_CHECK(d.next == KUBE_WATCH_STEP_LIST ||
                           d.next == KUBE_WATCH_STEP_WATCH, "decision");
            FUZZ_CHECK(rc != -1 || d.next == KUBE_WATCH_STEP_LIST,
                       "a bad stream must relist");
            kube_lines_reset(&lines);
            st.d = (struct kube_watch_decoded){0};
            const uint8_t *nl = memchr(c.p + n, '\n', c.left - n);
            size_t skip = nl ? (size_t)(nl - c.p) + 1 : c.left;
            c.p += skip;
            c.left -= skip;
            continue;
        }
        c.p += n;
        c.left -= n;
    }
    FUZZ_CHECK(strlen(st.rv) < sizeof st.rv, "rv");
    FUZZ_CHECK(st.d.events <= st.d.seen, "events %llu > seen %llu",
               (unsigned long long)st.d.events, (unsigned long long)st.d.seen);
    st.h.on_list_end(st.h.arg);

    /* A relist that finds nothing leaves nothing. */
    st.h.on_list_begin(st.h.arg);
    st.h.on_list_end(st.h.arg);
    size_t ni, nd, ns;
    rc_cache_counts(&cache, &ni, &nd, &ns);
    FUZZ_CHECK(ni == 0 && nd == 0 && ns == 0, "relist of nothing left %zu/%zu/%zu",
               ni, nd, ns);
    kube_lines_free(&lines);
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

/* ---- pass 3: a line that is a list page goes through the page decoder --- */

struct pages {
    struct kube_watch_handlers h;
    char rv[KUBE_WATCH_RV_MAX];
};

static int page_line(void *arg, char *line, size_t len)
{
    struct pages *pg = arg;
    if (!contains(line, len, "\"items\""))
        return 0;
    cJSON *page = cJSON_ParseWithLength(line, len);
    char cont[KUBE_WATCH_CONTINUE_MAX], err[256];
    size_t items = 0;
    if (kube_watch_decode_page(page, &pg->h, pg->rv, sizeof pg->rv, cont,
                               sizeof cont, &items, err, sizeof err) == 0) {
        FUZZ_CHECK(pg->rv[0] && strlen(pg->rv) < sizeof pg->rv, "list rv");
        FUZZ_CHECK(strlen(cont) < sizeof cont, "continue");
    } else {
        FUZZ_CHECK(err[0] != '\0', "a refused page says why");
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
    struct pages pg = {.h = handlers_for(&cache, kind)};
    struct kube_lines lines;
    kube_lines_init(&lines, len + 1);
    pg.h.on_list_begin(pg.h.arg);
    FUZZ_CHECK(kube_lines_feed(&lines, body, len, page_line, &pg) == 0, "pages");
    pg.h.on_list_end(pg.h.arg);
    kube_lines_free(&lines);
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
