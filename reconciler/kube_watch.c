/*
 * kube_watch.c — list then watch on one thread.  See kube_watch.h.
 *
 * The loop is: run a step (LIST = every page; WATCH = one connection),
 * describe how it ended in a kube_watch_outcome, and let the pure
 * kube_watch_decide say what comes next and whether to back off first.
 * All I/O and all handler calls happen on the watch thread; other threads
 * only read the atomic stats and set the stop flag.
 */
#include "kube_watch.h"

#include "clock.h"
#include "kube_lines.h"
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define WATCH_NAME_MAX 64
#define WATCH_RV_MAX KUBE_WATCH_RV_MAX
#define WATCH_ERR_MAX 1024
/* Backoff attempts past this all get the cap; keeps the shift defined. */
#define WATCH_ATTEMPT_MAX 16

struct kube_watch {
    struct kube_client *client;
    struct kube_conn *conn;
    char name[WATCH_NAME_MAX];
    char *path;
    char *selector;            /* raw, or NULL */
    unsigned page_size;
    unsigned timeout_s;
    struct kube_watch_handlers h;
    struct kube_lines lines;
    char rv[WATCH_RV_MAX];
    uint64_t rng;
    bool listed_once;          /* a list has completed: later ones are relists */
    bool watched_once;         /* a watch has started: later ones are restarts */
    pthread_t thread;
    pthread_mutex_t mu;        /* with cv: interruptible backoff sleeps  */
    pthread_cond_t cv;
    volatile bool stop;        /* set under mu, atomically: kube_stream
                                  polls it without mu                   */
    atomic_bool synced;
    _Atomic uint64_t relists, restarts, events;
};

/* ---- pure parts --------------------------------------------------------- */

struct kube_watch_decision kube_watch_decide(const struct kube_watch_outcome *o)
{
    struct kube_watch_decision d = {.next = o->step, .backoff = true,
                                    .reset_backoff = false};
    if (o->step == KUBE_WATCH_STEP_LIST) {
        if (!o->failed && o->http_status == 200) {
            d.next = KUBE_WATCH_STEP_WATCH;
            d.backoff = false;
        } else if (!o->failed && o->http_status == 410) {
            /* An expired continue token: a slow list, not a sick server.
             * Start over from the first page (which has no token). */
            d.backoff = false;
        }
        return d;
    }
    d.reset_backoff = o->progressed;
    if (o->http_status == 410 || o->event_code == 410) {
        /* The server answered: our resourceVersion is too old, the server
         * is fine.  Forget the backoff an outage built up (else the relist
         * waits up to 30 s after the server is back), but still pause a
         * moment (< 0.8 s) when the watch saw nothing, so a server that
         * keeps answering 410 cannot make us relist in a tight loop. */
        d.next = KUBE_WATCH_STEP_LIST;
        d.backoff = !o->progressed;
        d.reset_backoff = true;
    } else if (o->bad_stream) {
        /* An event may be lost: only a relist is sure to bring it back.
         * Always after a pause, as the same bytes may come again. */
        d.next = KUBE_WATCH_STEP_LIST;
    } else if (!o->failed && o->http_status == 200 && o->event_code == 0) {
        /* The server's timeout or a clean EOF: carry on from the last RV;
         * pause only if it closed at once with nothing, to never spin. */
        d.backoff = !o->progressed;
    }
    return d;
}

uint32_t kube_watch_backoff_ms(unsigned attempt, uint64_t rnd)
{
    uint64_t cap = KUBE_WATCH_BACKOFF_MIN_MS;
    for (unsigned i = 0; i < attempt && cap < KUBE_WATCH_BACKOFF_MAX_MS; i++)
        cap *= 2;
    if (cap > KUBE_WATCH_BACKOFF_MAX_MS)
        cap = KUBE_WATCH_BACKOFF_MAX_MS;
    return (uint32_t)(rnd % (cap + 1));
}

unsigned kube_watch_timeout_s(unsigned base_s, uint64_t rnd)
{
    unsigned base = base_s ? base_s : KUBE_WATCH_TIMEOUT_S;
    unsigned j = base / 4 < KUBE_WATCH_JITTER_S ? base / 4 : KUBE_WATCH_JITTER_S;
    return base - j + (unsigned)(rnd % (2u * j + 1));
}

/* path + the query built from pairs of raw key/value (value NULL or ""
 * skipped; values escaped). */
static char *with_query(const char *path, const char *const *kv, size_t n)
{
    char *esc[8] = {0};
    size_t total = strlen(path) + 1;
    char *out = NULL;
    if (n > 2 * (sizeof esc / sizeof esc[0]))
        return NULL;
    for (size_t i = 0; i < n; i += 2) {
        if (!kv[i + 1] || !kv[i + 1][0])
            continue;
        if (!(esc[i / 2] = kube_escape(kv[i + 1])))
            goto done;
        total += strlen(kv[i]) + strlen(esc[i / 2]) + 2;
    }
    if (!(out = malloc(total)))
        goto done;
    char *o = out + sprintf(out, "%s", path);
    char sep = '?';
    for (size_t i = 0; i < n; i += 2) {
        if (esc[i / 2]) {
            o += sprintf(o, "%c%s=%s", sep, kv[i], esc[i / 2]);
            sep = '&';
        }
    }
done:
    for (size_t i = 0; i < n / 2; i++)
        free(esc[i]);
    return out;
}

char *kube_watch_list_path(const char *path, const char *selector,
                           unsigned limit, const char *cont)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%u", limit ? limit : KUBE_WATCH_PAGE);
    const char *kv[] = {"limit", lim, "labelSelector", selector,
                        "continue", cont};
    return with_query(path, kv, sizeof kv / sizeof kv[0]);
}

char *kube_watch_watch_path(const char *path, const char *selector,
                            const char *rv, unsigned timeout_s)
{
    char to[16];
    snprintf(to, sizeof to, "%u", timeout_s);
    const char *kv[] = {"watch", "1", "allowWatchBookmarks", "true",
                        "resourceVersion", rv, "timeoutSeconds", to,
                        "labelSelector", selector};
    return with_query(path, kv, sizeof kv / sizeof kv[0]);
}

/* ---- helpers -------------------------------------------------------------- */

/* xorshift64*: jitter only needs to differ between processes. */
static uint64_t next_rand(struct kube_watch *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545F4914F6CDD1DULL;
}

static void seed_rand(struct kube_watch *w)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)w;
    }
    w->rng = s ? s : 0x9E3779B97F4A7C15ULL;
}

static bool stopping(struct kube_watch *w)
{
    pthread_mutex_lock(&w->mu);
    bool s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* Sleep ms unless stopped first. */
static void pause_ms(struct kube_watch *w, uint32_t ms)
{
    struct timespec until = mono_deadline_after_ms(ms);
    pthread_mutex_lock(&w->mu);
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&w->mu);
}

/* Copy obj.metadata.resourceVersion into rv when present.  -1 when it
 * is there but unusable. */
static int take_rv(char *rv_out, size_t rv_cap, const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
    if (!cJSON_IsString(rv) || !rv->valuestring || !rv->valuestring[0])
        return 0;
    size_t n = strlen(rv->valuestring);
    if (n >= rv_cap)
        return -1;
    memcpy(rv_out, rv->valuestring, n + 1);
    return 0;
}

/* ---- LIST ----------------------------------------------------------------- */

struct page_result {
    char cont[KUBE_WATCH_CONTINUE_MAX];
    size_t items;
};

/* The page's tree lives only for this call: a list is never held whole. */
int kube_watch_decode_page(const cJSON *page, const struct kube_watch_handlers *h,
                           char *rv_out, size_t rv_cap, char *cont_out,
                           size_t cont_cap, size_t *items_out, char *err,
                           size_t errlen)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(page, "items");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(page, "metadata");
    const cJSON *cont = cJSON_GetObjectItemCaseSensitive(md, "continue");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
    if (!cJSON_IsObject(page) || !(cJSON_IsArray(items) || cJSON_IsNull(items) || !items)) {
        snprintf(err, errlen, "list page is not a list object");
        return -1;
    }
    if (!cJSON_IsString(rv) || !rv->valuestring[0] ||
        strlen(rv->valuestring) >= rv_cap) {
        snprintf(err, errlen, "list page has no usable metadata.resourceVersion");
        return -1;
    }
    if (cJSON_IsString(cont) && strlen(cont->valuestring) >= cont_cap) {
        snprintf(err, errlen, "list continue token longer than %zu bytes",
                 cont_cap - 1);
        return -1;
    }
    snprintf(rv_out, rv_cap, "%s", rv->valuestring);
    snprintf(cont_out, cont_cap, "%s", cJSON_IsString(cont) ? cont->valuestring : "");
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        if (!cJSON_IsObject(it))
            continue;
        h->on_event(h->arg, KUBE_EVENT_ADDED, it);
        (*items_out)++;
    }
    return 0;
}

static int deliver_page(struct kube_watch *w, const cJSON *page,
                        struct page_result *pr, char *err, size_t errlen)
{
    return kube_watch_decode_page(page, &w->h, w->rv, sizeof w->rv, pr->cont,
                                  sizeof pr->cont, &pr->items, err, errlen);
}

/* Fetch and deliver one page.  Fills o on failure; 0 when delivered. */
static int list_page(struct kube_watch *w, struct page_result *pr,
                     struct kube_watch_outcome *o)
{
    char err[WATCH_ERR_MAX];
    struct kube_response r;
    char *path = kube_watch_list_path(w->path, w->selector, w->page_size,
                                      pr->cont);
    if (!path || kube_request(w->conn, "GET", path, NULL, NULL, 0, &r, err,
                              sizeof err) != 0) {
        log_warn("watch list failed", LF_STR("watch", w->name),
                 LF_STR("error", path ? err : "out of memory"));
        free(path);
        o->failed = true;
        return -1;
    }
    free(path);
    o->http_status = r.status;
    if (r.status != 200) {
        log_warn("watch list refused", LF_STR("watch", w->name),
                 LF_INT("status", r.status), LF_STR("reason", r.reason),
                 LF_STR("message", r.message));
        kube_response_free(&r);
        return -1;
    }
    cJSON *page = cJSON_ParseWithLength(r.body, r.len);
    kube_response_free(&r);  /* the tree is all we need from here */
    bool parsed = page != NULL;
    int rc = deliver_page(w, page, pr, err, sizeof err);
    cJSON_Delete(page);
    if (rc != 0) {
        log_warn("watch list page rejected", LF_STR("watch", w->name),
                 LF_STR("error", parsed ? err : "not JSON"));
        o->failed = true;
    }
    return rc;
}

static void run_list(struct kube_watch *w, struct kube_watch_outcome *o)
{
    *o = (struct kube_watch_outcome){.step = KUBE_WATCH_STEP_LIST};
    if (w->listed_once)
        atomic_fetch_add(&w->relists, 1);
    double t0 = mono_now_s();
    struct page_result pr = {.cont = ""};
    size_t pages = 0, items = 0;
    w->h.on_list_begin(w->h.arg);
    do {
        pr.items = 0;
        if (list_page(w, &pr, o) != 0 || stopping(w))
            return;
        pages++;
        items += pr.items;
    } while (pr.cont[0]);
    w->h.on_list_end(w->h.arg);
    w->listed_once = true;
    bool first = !atomic_exchange(&w->synced, true);
    log_info(first ? "watch synced" : "watch relisted", LF_STR("watch", w->name),
             LF_INT("objects", items), LF_INT("pages", pages),
             LF_DBL("seconds", mono_now_s() - t0), LF_STR("resourceVersion", w->rv));
}

/* ---- WATCH ---------------------------------------------------------------- */

struct stream_ctx {
    struct kube_watch *w;
    struct kube_watch_outcome *o;
    uint64_t seen;     /* events and bookmarks */
};

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static enum kube_event event_type(const char *t, bool *ok)
{
    *ok = true;
    if (strcmp(t, "ADDED") == 0)
        return KUBE_EVENT_ADDED;
    if (strcmp(t, "MODIFIED") == 0)
        return KUBE_EVENT_MODIFIED;
    if (strcmp(t, "DELETED") == 0)
        return KUBE_EVENT_DELETED;
    *ok = false;
    return KUBE_EVENT_ADDED;
}

/* An ERROR event carries a Status: note its code and end the stream. */
static int on_error_event(const char *name, const cJSON *obj,
                          struct kube_watch_decoded *d)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(obj, "message");
    d->event_code = cJSON_IsNumber(code) && code->valuedouble >= 1 && code->valuedouble < 1000
                        ? (long)code->valuedouble : 500;
    log_info("watch got an ERROR event", LF_STR("watch", name),
             LF_INT("code", d->event_code),
             LF_STR("message", cJSON_IsString(msg) ? msg->valuestring : ""));
    return 1;
}

/* One decoded event.  Non-zero ends the stream. */
static int on_event_json(const char *name, const cJSON *ev,
                         const struct kube_watch_handlers *h, char *rv,
                         size_t rv_cap, struct kube_watch_decoded *d)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (!cJSON_IsString(type) || !cJSON_IsObject(obj))
        return -1;
    if (strcmp(type->valuestring, "ERROR") == 0)
        return on_error_event(name, obj, d);
    if (take_rv(rv, rv_cap, obj) != 0)
        return -1;
    d->seen++;
    bool ok;
    enum kube_event t = event_type(type->valuestring, &ok);
    if (ok) {
        h->on_event(h->arg, t, obj);
        d->events++;
    } else if (strcmp(type->valuestring, "BOOKMARK") != 0) {
        log_debug("watch ignored an unknown event type", LF_STR("watch", name),
                  LF_STR("type", type->valuestring));
    }
    return 0;
}

int kube_watch_decode_line(const char *name, const char *line, size_t len,
                           const struct kube_watch_handlers *h, char *rv,
                           size_t rv_cap, struct kube_watch_decoded *d)
{
    if (blank(line, len))
        return 0;
    cJSON *ev = cJSON_ParseWithLength(line, len);
    int rc = ev ? on_event_json(name, ev, h, rv, rv_cap, d) : -1;
    cJSON_Delete(ev);
    if (rc < 0)
        log_warn("watch got a line that is not a watch event; relisting",
                 LF_STR("watch", name), LF_INT("bytes", len));
    return rc;
}

static int on_line(void *arg, char *line, size_t len)
{
    struct stream_ctx *x = arg;
    struct kube_watch *w = x->w;
    struct kube_watch_decoded d = {0};
    int rc = kube_watch_decode_line(w->name, line, len, &w->h, w->rv,
                                    sizeof w->rv, &d);
    x->seen += d.seen;
    if (d.events)
        atomic_fetch_add(&w->events, d.events);
    if (rc == 1)
        x->o->event_code = d.event_code;
    if (rc < 0)
        x->o->bad_stream = true;
    return rc;
}

static int on_data(void *arg, const char *data, size_t len)
{
    struct stream_ctx *x = arg;
    int rc = kube_lines_feed(&x->w->lines, data, len, on_line, x);
    if (rc == -1 && !x->o->bad_stream) {
        log_warn("watch event longer than the line limit; relisting",
                 LF_STR("watch", x->w->name), LF_INT("max", KUBE_WATCH_LINE_MAX));
        x->o->bad_stream = true;
    }
    return rc;
}

static void run_watch(struct kube_watch *w, struct kube_watch_outcome *o)
{
    *o = (struct kube_watch_outcome){.step = KUBE_WATCH_STEP_WATCH};
    if (w->watched_once)
        atomic_fetch_add(&w->restarts, 1);
    w->watched_once = true;
    unsigned timeout = kube_watch_timeout_s(w->timeout_s, next_rand(w));
    char *path = kube_watch_watch_path(w->path, w->selector, w->rv, timeout);
    if (!path) {
        o->failed = true;
        return;
    }
    struct stream_ctx x = {.w = w, .o = o};
    char err[WATCH_ERR_MAX] = "";
    double t0 = mono_now_s();
    kube_lines_reset(&w->lines);
    int rc = kube_stream(w->conn, path, timeout + KUBE_WATCH_IDLE_GRACE_S, on_data,
                         &x, &w->stop, &o->http_status, err, sizeof err);
    free(path);
    double ran = mono_now_s() - t0;
    o->failed = rc != 0;
    o->progressed = x.seen > 0 || ran >= KUBE_WATCH_HEALTHY_S;
    if (rc != 0 || (o->http_status != 200 && !stopping(w)))
        log_warn("watch connection failed", LF_STR("watch", w->name),
                 LF_INT("status", o->http_status), LF_STR("error", err),
                 LF_DBL("seconds", ran));
    else
        log_debug("watch connection ended", LF_STR("watch", w->name),
                  LF_INT("events", x.seen), LF_DBL("seconds", ran));
}

/* ---- thread and API ---------------------------------------------------------- */

static void *run(void *arg)
{
    struct kube_watch *w = arg;
    enum kube_watch_step step = KUBE_WATCH_STEP_LIST;
    unsigned attempt = 0;
    while (!stopping(w)) {
        struct kube_watch_outcome o;
        if (step == KUBE_WATCH_STEP_LIST)
            run_list(w, &o);
        else
            run_watch(w, &o);
        if (stopping(w))
            break;
        struct kube_watch_decision d = kube_watch_decide(&o);
        if (d.reset_backoff)
            attempt = 0;
        if (d.backoff) {
            uint32_t ms = kube_watch_backoff_ms(attempt, next_rand(w));
            if (attempt < WATCH_ATTEMPT_MAX)
                attempt++;
            log_debug("watch backing off", LF_STR("watch", w->name),
                      LF_INT("ms", ms));
            pause_ms(w, ms);
        }
        step = d.next;
    }
    return NULL;
}

static void watch_free(struct kube_watch *w)
{
    kube_conn_free(w->conn);
    kube_lines_free(&w->lines);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->path);
    free(w->selector);
    free(w);
}

static int check_opts(const struct kube_watch_opts *opts,
                      const struct kube_watch_handlers *h, char *err, size_t errlen)
{
    if (!opts->path || opts->path[0] != '/' || strchr(opts->path, '?')) {
        snprintf(err, errlen, "watch %s: path must be a collection path starting "
                 "with '/' and without a query (pass label_selector instead)",
                 opts->name ? opts->name : "?");
        return -1;
    }
    if (!h->on_list_begin || !h->on_event || !h->on_list_end) {
        snprintf(err, errlen, "watch %s: all three handlers are required",
                 opts->name ? opts->name : opts->path);
        return -1;
    }
    return 0;
}

static int init_sync(struct kube_watch *w)
{
    if (cond_init_monotonic(&w->cv) != 0)
        return -1;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        pthread_cond_destroy(&w->cv);
        return -1;
    }
    return 0;
}

int kube_watch_start(struct kube_client *client, const struct kube_watch_opts *opts,
                     const struct kube_watch_handlers *h, struct kube_watch **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    if (check_opts(opts, h, err, errlen) != 0)
        return -1;
    struct kube_watch *w = calloc(1, sizeof *w);
    if (!w || init_sync(w) != 0) {
        free(w);
        snprintf(err, errlen, "watch %s: out of memory", opts->path);
        return -1;
    }
    w->client = client;
    snprintf(w->name, sizeof w->name, "%s", opts->name ? opts->name : opts->path);
    w->path = strdup(opts->path);
    w->selector = opts->label_selector && opts->label_selector[0]
                      ? strdup(opts->label_selector) : NULL;
    w->page_size = opts->page_size ? opts->page_size : KUBE_WATCH_PAGE;
    w->timeout_s = opts->timeout_s ? opts->timeout_s : KUBE_WATCH_TIMEOUT_S;
    w->h = *h;
    kube_lines_init(&w->lines, KUBE_WATCH_LINE_MAX);
    seed_rand(w);
    w->conn = kube_conn_new(client);
    bool oom = !w->path || (opts->label_selector && opts->label_selector[0] &&
                            !w->selector) || !w->conn;
    if (oom || pthread_create(&w->thread, NULL, run, w) != 0) {
        snprintf(err, errlen, "watch %s: %s", w->name,
                 oom ? "out of memory" : "cannot start its thread");
        watch_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

/* The thread notices within about a second: a backoff sleep wakes at
 * once, a transfer sees the flag in its progress callback. */
void kube_watch_stop(struct kube_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    __atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);  /* kube_stream reads it unlocked */
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    watch_free(w);
}

bool kube_watch_synced(const struct kube_watch *w)
{
    return atomic_load(&w->synced);
}

void kube_watch_stats(const struct kube_watch *w, struct kube_watch_stats *out)
{
    out->relists = atomic_load(&w->relists);
    out->restarts = atomic_load(&w->restarts);
    out->events = atomic_load(&w->events);
    out->synced = atomic_load(&w->synced);
}
