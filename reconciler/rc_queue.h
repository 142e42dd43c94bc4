/*
 * rc_queue.h — the reconciler's work queue, with client-go's semantics.
 *
 *   - Keys are "namespace/name" strings, copied in.
 *   - Dedup: adding a key that is already waiting is a no-op.
 *   - Exclusivity: a key being processed is never handed to a second
 *     worker; if it is added meanwhile it is marked dirty and queued again
 *     when the worker calls rc_queue_done.
 *   - Two ready lanes: urgent (what a user just changed) is emptied
 *     before normal (resyncs, follow-ups, owned-object events).
 *   - Delayed adds live in a min-heap by due time; when a key is both
 *     scheduled and added again, the earlier time wins (kube-rs).
 *   - Per-key exponential backoff on error: base * 2^failures, capped;
 *     rc_queue_forget resets it after a success.
 *   - Bounded: at most max_keys distinct keys are tracked (waiting, delayed,
 *     processing, or holding backoff state until rc_queue_forget — so the
 *     caller forgets a key on success and when its object is gone).  An
 *     add past the bound is refused and counted; the caller's periodic
 *     resync brings the key back, so nothing is lost for good and memory
 *     cannot grow without limit.
 */
#ifndef RC_QUEUE_H
#define RC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RC_QUEUE_KEY_MAX 320   /* "namespace/name": 63 + 1 + 253, rounded */

struct rc_queue_opts {
    size_t max_keys;            /* bound on distinct keys tracked           */
    uint64_t backoff_base_ms;   /* first retry delay (default 1000)         */
    uint64_t backoff_cap_ms;    /* largest retry delay (default 60000)      */
};

struct rc_queue_stats {
    uint64_t adds;              /* workqueue_adds_total                     */
    uint64_t retries;           /* workqueue_retries_total (rate-limited)   */
    uint64_t dropped;           /* refused at the bound                     */
    size_t depth;               /* workqueue_depth: ready, not processing   */
    size_t urgent;              /* of which in the urgent lane              */
    size_t delayed;             /* waiting for their time                   */
    size_t processing;
    /* workqueue_queue_duration_seconds: time from ready to picked up. */
    uint64_t wait_ns_sum;
    uint64_t wait_count;
};

struct rc_queue;

/* Returns 0, or -1 on bad options / allocation failure. */
int rc_queue_new(const struct rc_queue_opts *opts, struct rc_queue **out);

/* Frees everything; call after every worker has returned from get. */
void rc_queue_free(struct rc_queue *q);

/* Make key ready now.  Returns 0, or -1 if refused (bound, bad key, shut
 * down). */
int rc_queue_add(struct rc_queue *q, const char *key);

/* Make key ready after delay_ms (0 = now). */
int rc_queue_add_after(struct rc_queue *q, const char *key, uint64_t delay_ms);

/* Make key ready after its backoff delay, and lengthen the next one. */
int rc_queue_add_rate_limited(struct rc_queue *q, const char *key);

/*
 * Make key ready now in the urgent lane, which getters empty before the
 * normal one: for what a user just asked for (a new or edited spec), so it
 * does not wait behind resyncs and follow-ups.  A key waiting in the normal
 * lane moves up; one being processed is queued urgent at done.
 */
int rc_queue_add_urgent(struct rc_queue *q, const char *key);

/* Make key ready now (normal lane) and OR carry into the bits the next
 * take hands back: how one pass leaves a note for the next. */
int rc_queue_add_carry(struct rc_queue *q, const char *key, unsigned carry);

/* Reset key's backoff (after a successful reconcile). */
void rc_queue_forget(struct rc_queue *q, const char *key);

/* Failures recorded for key since its last forget. */
unsigned rc_queue_failures(struct rc_queue *q, const char *key);

/* What take hands back besides the key. */
struct rc_queue_item {
    bool urgent;                /* came from the urgent lane               */
    unsigned carry;             /* bits added with rc_queue_add_carry      */
};

/*
 * Block until a key is ready (urgent lane first), mark it processing and
 * copy it into key[RC_QUEUE_KEY_MAX], and, if item is not NULL, say how it
 * was queued (the carried bits are cleared).  Returns 0, or -1 once the
 * queue is shut down (immediately, even if keys are waiting: shutdown
 * means stop taking work).
 */
int rc_queue_take(struct rc_queue *q, char key[RC_QUEUE_KEY_MAX],
                  struct rc_queue_item *item);

/* rc_queue_take of the urgent lane only, waiting at most wait_ms: for
 * helpers that exist only while a burst lasts.  Returns 0 with a key, 1
 * when none came in time, -1 once shut down. */
int rc_queue_take_urgent(struct rc_queue *q, char key[RC_QUEUE_KEY_MAX],
                         struct rc_queue_item *item, uint64_t wait_ms);

/* rc_queue_take without the item. */
int rc_queue_get(struct rc_queue *q, char key[RC_QUEUE_KEY_MAX]);

/* The worker finished key; if it was added meanwhile, it is ready again. */
void rc_queue_done(struct rc_queue *q, const char *key);

/* Wake every getter; further gets and adds fail. */
void rc_queue_shutdown(struct rc_queue *q);

void rc_queue_stats(struct rc_queue *q, struct rc_queue_stats *out);

/* Distinct keys tracked: waiting, delayed, processing, or only holding
 * backoff state (failures > 0, until rc_queue_forget).  These are what
 * max_keys bounds; a key with none of these is freed at once. */
size_t rc_queue_tracked(struct rc_queue *q);

#endif
