/*
 * rc_leader.h — leader election on a coordination.k8s.io/v1 Lease, the
 * way client-go's leaderelection package does it.
 *
 * Every replica runs one election thread with its own kube_client (so the
 * workers' rate limiter never delays a renewal, and each request is bounded
 * well inside the renew deadline) and its own kube_conn.  The thread reads
 * the Lease, and:
 *   - creates it when there is none;
 *   - takes it over (PUT with the resourceVersion it read) when it is free:
 *     released (holderIdentity "") or expired;
 *   - renews it every retry period while it holds it;
 *   - steps down at once when it cannot renew within the renew deadline,
 *     or sees that someone else holds it (or the Lease was deleted).
 *
 * "Expired" is judged by local observation only (client-go's observedTime
 * rule): a Lease held by someone else is expired when its record has not
 * CHANGED for leaseDurationSeconds of our CLOCK_MONOTONIC since we first
 * saw it that way.  acquireTime/renewTime are written for humans and never
 * compared with our wall clock, so clock skew between replicas cannot make
 * two leaders.  Safety argument: a leader's last successful write W was
 * sent at s ≤ W; it stops leading at s + renew_deadline; a candidate sees
 * W at o ≥ W and may take over at o + lease ≥ s + lease > s +
 * renew_deadline.  The gap (lease − renew_deadline, 5 s by default) covers
 * clock-rate drift and writes already in flight at the step-down.
 *
 * The fence: rc_leader_leading() is true only while now (monotonic) is
 * before the send time of the last successful acquire/renew plus the renew
 * deadline.  It becomes false on time even when the election thread is
 * stuck in a request, and it is false before fn(arg, false) is called.
 */
#ifndef RC_LEADER_H
#define RC_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "kube_config.h"

/* client-go / controller-runtime defaults. */
#define RC_LEADER_LEASE_MS_DEFAULT          15000u
#define RC_LEADER_RENEW_DEADLINE_MS_DEFAULT 10000u
#define RC_LEADER_RETRY_MS_DEFAULT          2000u
/* Our identity, NUL included.  hostname (≤ 64) + '_' + 16 hex fits. */
#define RC_LEADER_ID_MAX 256
/* A holderIdentity read from the Lease (someone else's), NUL included. */
#define RC_LEASE_HOLDER_MAX 1024

struct rc_leader_opts {
    const char *name;             /* Lease name (required, DNS subdomain)  */
    const char *namespace_;       /* its namespace (required, DNS label)   */
    const char *identity;         /* NULL or "" = "<hostname>_<16 hex>"    */
    unsigned lease_ms;            /* whole seconds, > renew_deadline_ms    */
    unsigned renew_deadline_ms;   /* > 1.2 × retry_ms (client-go's rule)   */
    unsigned retry_ms;            /* renew / candidate poll period         */
    bool release_on_stop;         /* free the Lease on stop (default true) */
};

/* Called from the election thread on each transition: leading true when
 * this replica became leader, false when it stopped (lost, or stopping).
 * It must return quickly (hand the news to another thread): renewals wait
 * for it.  It must not call rc_leader_stop. */
typedef void (*rc_leader_fn)(void *arg, bool leading);

struct rc_leader;

struct rc_leader_stats {
    bool leading;                 /* rc_leader_leading() at the time       */
    uint64_t transitions;         /* our became-leader + lost-leadership   */
    char holder[RC_LEASE_HOLDER_MAX]; /* last observed holder, "" = none   */
    char identity[RC_LEADER_ID_MAX];  /* ours                              */
};

/* Defaults: the three client-go durations, release_on_stop true. */
void rc_leader_opts_init(struct rc_leader_opts *o);

/*
 * Validate o, build our own kube_client from cfg (copied), and start the
 * election thread.  fn may be NULL.  Returns 0, or -1 with err.
 */
int rc_leader_start(const struct kube_config *cfg, const struct rc_leader_opts *o,
                    rc_leader_fn fn, void *arg, struct rc_leader **out,
                    char *err, size_t errlen);

/* The fence: check it right before every write.  Atomic, lock-free, one
 * monotonic clock read. */
bool rc_leader_leading(const struct rc_leader *l);

/*
 * Stop the election.  If leading: the fence drops, fn(arg, false) is called,
 * and with release_on_stop the Lease is released (holderIdentity "",
 * leaseDurationSeconds 1, as client-go does) so a candidate takes over at
 * its next poll.  Stop writing (drain the workers) before calling this, or
 * in fn.  Joins the thread (at most one request timeout) and frees.  NULL
 * is a no-op.
 */
void rc_leader_stop(struct rc_leader *l);

/* For /metrics and logs. */
void rc_leader_stats(struct rc_leader *l, struct rc_leader_stats *out);

/* ---- The pure part (rc_leader_sm.c): no I/O, no clock reads.  Times are
 * CLOCK_MONOTONIC milliseconds passed in, so tests inject them. -------- */

#define RC_LEASE_TIME_MAX 64      /* a MicroTime string                    */
#define RC_LEASE_RV_MAX   64      /* a resourceVersion                     */

/* The Lease spec fields election uses, plus the resourceVersion read. */
struct rc_lease_record {
    char holder[RC_LEASE_HOLDER_MAX];   /* "" = released / nobody          */
    long long duration_s;               /* leaseDurationSeconds; <= 0 = unset */
    char acquire_time[RC_LEASE_TIME_MAX];
    char renew_time[RC_LEASE_TIME_MAX];
    long long transitions;              /* leaseTransitions                */
    char rv[RC_LEASE_RV_MAX];           /* metadata.resourceVersion        */
};

enum rc_lease_op {
    RC_LEASE_WAIT,                /* nothing until wake_ms                  */
    RC_LEASE_GET,                 /* read the Lease, then rc_leader_sm_observed */
    RC_LEASE_CREATE,              /* POST a new Lease held by us            */
    RC_LEASE_ACQUIRE,             /* PUT: take over a free Lease            */
    RC_LEASE_RENEW,               /* PUT: renew ours                        */
    RC_LEASE_RELEASE,             /* PUT: give ours up                      */
};

/* What a request came back with. */
enum rc_lease_result {
    RC_LEASE_OK,                  /* 2xx                                    */
    RC_LEASE_NOT_FOUND,           /* 404                                    */
    RC_LEASE_CONFLICT,            /* 409: stale resourceVersion / AlreadyExists */
    RC_LEASE_FAILED,              /* transport failure or any other status  */
};

enum rc_leader_event { RC_LEADER_NONE, RC_LEADER_ELECTED, RC_LEADER_LOST };

/* The state machine's answer to each input. */
struct rc_leader_step {
    enum rc_lease_op op;          /* what to do now                         */
    enum rc_leader_event event;   /* a transition this input caused         */
    const char *reason;           /* for RC_LEADER_LOST: why (static)       */
    uint64_t wake_ms;             /* for RC_LEASE_WAIT: poll again then     */
};

struct rc_leader_sm {
    char identity[RC_LEADER_ID_MAX];
    uint64_t lease_ms, renew_deadline_ms, retry_ms;
    bool have_record;             /* rec is the Lease as last read/written  */
    struct rc_lease_record rec;
    uint64_t observed_ms;         /* when rec last changed, by our clock    */
    bool leading;
    uint64_t renewed_ms;          /* send time of the last good acquire/renew */
    uint64_t next_ms;             /* next poll is due                       */
    unsigned conflicts;           /* write conflicts in a row               */
    uint64_t transitions;         /* ELECTED + LOST events                  */
};

/* Start as a candidate that reads the Lease at once. */
void rc_leader_sm_init(struct rc_leader_sm *sm, const char *identity,
                       unsigned lease_ms, unsigned renew_deadline_ms,
                       unsigned retry_ms, uint64_t now_ms);

/* Time passed: step down if the renew deadline passed; say whether a
 * request is due (GET, or RENEW on the fast path with the cached
 * resourceVersion) or when to poll again. */
struct rc_leader_step rc_leader_sm_poll(struct rc_leader_sm *sm, uint64_t now_ms);

/* A GET came back (rec only for RC_LEASE_OK): returns CREATE, ACQUIRE,
 * RENEW, or WAIT. */
struct rc_leader_step rc_leader_sm_observed(struct rc_leader_sm *sm, uint64_t now_ms,
                                            enum rc_lease_result res,
                                            const struct rc_lease_record *rec);

/* The record to send for op (CREATE, ACQUIRE, RENEW, RELEASE); now_micro
 * is the wall-clock MicroTime, for humans only. */
void rc_leader_sm_record(const struct rc_leader_sm *sm, enum rc_lease_op op,
                         const char *now_micro, struct rc_lease_record *out);

/* A write of op, sent at sent_ms, came back at now_ms.  written is the
 * Lease as the server returned it (RC_LEASE_OK only; an empty rv makes the
 * next renewal read first). */
struct rc_leader_step rc_leader_sm_wrote(struct rc_leader_sm *sm, enum rc_lease_op op,
                                         uint64_t sent_ms, uint64_t now_ms,
                                         enum rc_lease_result res,
                                         const struct rc_lease_record *written);

/* Stopping: step down (event LOST "stopping" if leading) and return
 * RC_LEASE_RELEASE if we were leading, else WAIT. */
struct rc_leader_step rc_leader_sm_stop(struct rc_leader_sm *sm, uint64_t now_ms);

/* Monotonic ms until which we lead (the fence), 0 when not leading. */
uint64_t rc_leader_sm_valid_until(const struct rc_leader_sm *sm);

/* The observed Lease is free for us to take at now_ms: released, or
 * unchanged for its duration by our observation. */
bool rc_leader_sm_expired(const struct rc_leader_sm *sm, uint64_t now_ms);

const char *rc_lease_op_name(enum rc_lease_op op);

/* ---- Lease JSON (pure) ------------------------------------------------ */

/* Fill out from a Lease object.  Absent spec fields read as ""/0.  Returns
 * 0, or -1 with err (no resourceVersion, a field too long or mistyped). */
int rc_lease_parse(const cJSON *lease, struct rc_lease_record *out,
                   char *err, size_t errlen);

/*
 * The body to send: base (the Lease last read or written; NULL for a
 * create) with its spec's election fields replaced by r, its
 * metadata.resourceVersion set to r->rv and managedFields dropped; other
 * metadata and spec fields are kept.  Returns malloc'd JSON or NULL.
 */
char *rc_lease_body(const cJSON *base, const char *name, const char *namespace_,
                    const struct rc_lease_record *r);

/* A metav1.MicroTime: RFC 3339, UTC, 6 decimals ("2026-01-02T03:04:05.000006Z"). */
void rc_lease_micro_time(struct timespec wall, char out[RC_LEASE_TIME_MAX]);

#endif
