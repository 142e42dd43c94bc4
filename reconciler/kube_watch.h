/*
 * kube_watch.h — keep a local view of one resource type in step with the
 * API server: paginated list, then watch from its resourceVersion.
 *
 * A state machine on its own thread (kube-rs's watcher, in C):
 *
 *   LIST  ── pages of KUBE_WATCH_PAGE (limit/continue) ──▶  WATCH
 *   WATCH ── 410 Gone / ERROR 410 / continue expired ──────▶ LIST
 *   WATCH ── server timeout, EOF ──▶ WATCH again from the last RV
 *   WATCH ── transport error, other status ──▶ backoff 0.8 s → 30 s
 *            (with jitter), then WATCH again from the last RV
 *   any   ── no byte for timeout + KUBE_WATCH_IDLE_GRACE_S ──▶ reconnect
 *
 * Watches ask for bookmarks, and a server-side timeout of
 * KUBE_WATCH_TIMEOUT_S ± jitter so a fleet of operators does not reconnect
 * in lockstep.  Stream bytes go through kube_lines, so each event is
 * parsed exactly once, whatever the chunk boundaries.
 *
 * A relist never holds two copies of the cache: handlers get
 * on_list_begin, then every object of every page as it is decoded, then
 * on_list_end, and the owner of the cache sweeps what was not seen.
 */
#ifndef KUBE_WATCH_H
#define KUBE_WATCH_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube_client.h"

#define KUBE_WATCH_PAGE 500
#define KUBE_WATCH_TIMEOUT_S 290          /* ~5 min, as kube-rs           */
#define KUBE_WATCH_JITTER_S 30            /* ± on the timeout             */
#define KUBE_WATCH_IDLE_GRACE_S 5
#define KUBE_WATCH_BACKOFF_MIN_MS 800
#define KUBE_WATCH_BACKOFF_MAX_MS 30000
/* Longest event line: etcd caps objects at 1.5 MiB; events carry one. */
#define KUBE_WATCH_LINE_MAX (8u * 1024 * 1024)

enum kube_event {
    KUBE_EVENT_ADDED,      /* also every object of a list */
    KUBE_EVENT_MODIFIED,
    KUBE_EVENT_DELETED,
};

struct kube_watch_handlers {
    void *arg;
    /* A (re)list starts. */
    void (*on_list_begin)(void *arg);
    /* One object: from a list page (ADDED) or a watch event.  obj is
     * borrowed for the duration of the call. */
    void (*on_event)(void *arg, enum kube_event type, const cJSON *obj);
    /* The list is complete: everything not seen since on_list_begin is
     * gone.  The first call marks the watch synced. */
    void (*on_list_end)(void *arg);
};

struct kube_watch_opts {
    const char *name;             /* for logs and metrics: "inferenceservices" */
    const char *path;             /* collection path, e.g.
                                     "/apis/apps/v1/deployments"            */
    const char *label_selector;   /* or NULL                                */
    unsigned page_size;           /* 0 = KUBE_WATCH_PAGE                    */
    unsigned timeout_s;           /* 0 = KUBE_WATCH_TIMEOUT_S               */
};

struct kube_watch_stats {
    uint64_t relists;             /* full lists after the first            */
    uint64_t restarts;            /* watch reconnections                    */
    uint64_t events;
    bool synced;
};

struct kube_watch;

/* Start the watch thread (it owns its own kube_conn).  Returns 0, or -1. */
int kube_watch_start(struct kube_client *client, const struct kube_watch_opts *opts,
                     const struct kube_watch_handlers *h, struct kube_watch **out,
                     char *err, size_t errlen);

/* Stop and join (bounded by the transfer's own abort); frees w. */
void kube_watch_stop(struct kube_watch *w);

bool kube_watch_synced(const struct kube_watch *w);
void kube_watch_stats(const struct kube_watch *w, struct kube_watch_stats *out);

/* ---- Added by the kube_watch.c implementation: the watcher's decisions
 * as pure functions, so tests drive them without a server. -------------- */

/* A watch that ran this long without failing counts as healthy even with
 * no events: the backoff starts over. */
#define KUBE_WATCH_HEALTHY_S 30

enum kube_watch_step { KUBE_WATCH_STEP_LIST, KUBE_WATCH_STEP_WATCH };

/* How one list (all its pages) or one watch connection ended. */
struct kube_watch_outcome {
    enum kube_watch_step step;   /* what ran                                */
    bool failed;                 /* transport error, idle timeout, or a
                                    list page that is not a list           */
    long http_status;            /* 0 when no answer arrived               */
    long event_code;             /* Status.code of an ERROR event, else 0  */
    bool bad_stream;             /* a line too long or not a watch event:
                                    an event may be lost                   */
    bool progressed;             /* events or bookmarks arrived, or the
                                    watch ran KUBE_WATCH_HEALTHY_S         */
};

struct kube_watch_decision {
    enum kube_watch_step next;
    bool backoff;                /* sleep kube_watch_backoff_ms first      */
    bool reset_backoff;          /* the attempt count starts over (first)  */
};

struct kube_watch_decision kube_watch_decide(const struct kube_watch_outcome *o);

/* Full jitter: uniform in [0, min(MAX, MIN * 2^attempt)] from rnd. */
uint32_t kube_watch_backoff_ms(unsigned attempt, uint64_t rnd);

/* The server-side timeout to ask for: base (0 = KUBE_WATCH_TIMEOUT_S)
 * ± min(KUBE_WATCH_JITTER_S, base / 4), from rnd. */
unsigned kube_watch_timeout_s(unsigned base_s, uint64_t rnd);

/* ---- Decoding, pure but for the handlers and logs: what the watch
 * thread does with each line of a watch stream and each list page, for
 * tests and fuzz/fuzz_watch_lines.c. ------------------------------------- */

/* resourceVersions are opaque but short (an etcd revision); longer is
 * not an RV we should send back. */
#define KUBE_WATCH_RV_MAX 128
#define KUBE_WATCH_CONTINUE_MAX 4096

struct kube_watch_decoded {
    uint64_t seen;       /* events, bookmarks and unknown types             */
    uint64_t events;     /* handed to on_event                             */
    long event_code;     /* an ERROR event's Status.code (500 if absurd)   */
};

/* One line of a watch stream (logs under `name`).  Blank: 0.
 * ADDED/MODIFIED/DELETED: h->on_event, d->events and d->seen += 1, rv
 * (rv_cap bytes) takes the object's resourceVersion, 0.  BOOKMARK or an
 * unknown type: rv updated, d->seen += 1, 0.  ERROR: d->event_code, 1.
 * Not JSON, no type or object, or a resourceVersion that does not fit:
 * -1 (the stream can no longer be trusted: relist). */
int kube_watch_decode_line(const char *name, const char *line, size_t len,
                           const struct kube_watch_handlers *h, char *rv,
                           size_t rv_cap, struct kube_watch_decoded *d);

/* One list page: every object item to h->on_event as ADDED (*items
 * counts them), its resourceVersion into rv and its continue token
 * (or "") into cont.  -1 with err when it is no list, has no usable
 * resourceVersion, or a token longer than cont_cap - 1. */
int kube_watch_decode_page(const cJSON *page, const struct kube_watch_handlers *h,
                           char *rv, size_t rv_cap, char *cont, size_t cont_cap,
                           size_t *items, char *err, size_t errlen);

/* Request paths (malloc'd; NULL on allocation failure).  selector and the
 * continue token are raw and escaped here; either may be NULL or "". */
char *kube_watch_list_path(const char *path, const char *selector,
                           unsigned limit, const char *cont);
char *kube_watch_watch_path(const char *path, const char *selector,
                            const char *rv, unsigned timeout_s);

#endif
