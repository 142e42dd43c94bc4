/*
 * rc_controller.h — the reconciler half of the process.
 *
 *   API server ─watch─▶ rc_cache ─keys─▶ rc_queue ─▶ workers ─▶ apply/status
 *
 * Four watches (InferenceServices, and the Deployments, Services and pods
 * labelled app.kubernetes.io/managed-by=inference-operator) feed the lean
 * caches (rc_cache, rc_pods); every change enqueues the InferenceService
 * it concerns; N worker
 * threads, each with its own API connection, take keys and reconcile them
 * (rc_reconcile.c).  Success requeues after requeue_after_ms (the resync),
 * failure backs off per key.  Workers take keys only after every cache
 * has synced, so nothing is decided on a partial view.
 *
 * With leader election, workers take keys only while this replica holds
 * the Lease, and every write re-checks the fence (rc_leader_leading) just
 * before it is sent: a replica that could not renew in time stops writing
 * at its renew deadline, before the Lease can expire for anyone else.
 *
 * Standbys keep their watches and caches warm by default (a failover
 * starts from a full cache).  With warm_standby false a standby holds no
 * watch and no cache: the watch thread (not the election thread, whose
 * callback must not block) starts the watches when this replica wins the
 * Lease and stops them, freeing the caches, when it steps down.  Less
 * memory and API-server load per standby, a relist on every failover.
 */
#ifndef RC_CONTROLLER_H
#define RC_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "isvc_fields.h"
#include "kube_client.h"
#include "rc_desired.h"
#include "rc_leader.h"

#define RC_WORKERS_DEFAULT 4
#define RC_WORKERS_MAX 64
/* Extra workers for the urgent lane, started only during a burst of new
 * or edited InferenceServices (see rc_controller.c), each with its own
 * HTTP/1.1 connection while the burst lasts.  On by default since the
 * memory they leave behind was taken away (issue 7): records that outlive
 * a burst come from rc_pool, not from between the connections' blocks,
 * and threads keep no private caches (server/alloc.c).  Measured at 1 000
 * creates: p99 create->Deployment 1.0 s -> 0.16 s, convergence unchanged,
 * heap after the burst +0.2 MB. */
#define RC_BURST_WORKERS_DEFAULT 8
#define RC_BURST_WORKERS_MAX 64
#define RC_REQUEUE_AFTER_MS_DEFAULT 30000
#define RC_BACKOFF_BASE_MS_DEFAULT 1000
#define RC_BACKOFF_CAP_MS_DEFAULT 60000
/* Distinct keys the queue may track; far above any cluster's count. */
#define RC_QUEUE_MAX_KEYS 1000000

struct rc_controller_opts {
    const struct kube_config *kube;         /* copied by the client        */
    struct kube_client_opts client;
    const struct isvc_rules *rules;         /* borrowed, outlives us       */
    struct rc_settings settings;
    unsigned workers;
    unsigned burst_workers;                 /* 0 = none                    */
    uint64_t requeue_after_ms;
    uint64_t backoff_base_ms, backoff_cap_ms;
    const char *watch_namespace;            /* NULL or "" = all            */
    unsigned watch_timeout_s;               /* 0 = KUBE_WATCH_TIMEOUT_S    */
    unsigned event_qps, event_burst;        /* rc_events.h; qps 0 = no limit */
    /* Leader election: every replica serves the webhook; only the
     * leader's workers write.  Standbys watch (caches warm for a fast
     * failover) unless warm_standby is false. */
    bool leader_elect;
    bool warm_standby;                      /* default true; see above     */
    struct rc_leader_opts leader;
};

struct rc_controller;

void rc_controller_opts_init(struct rc_controller_opts *o);

/* Start watches and workers.  Returns 0, or -1 with err. */
int rc_controller_start(const struct rc_controller_opts *o,
                        struct rc_controller **out, char *err, size_t errlen);

/* True once every cache has completed its first list (false while a cold
 * standby holds no watch). */
bool rc_controller_synced(void *controller);

/* The readiness check for /readyz: synced, except with cold standbys
 * (leader election, warm_standby false), where it always passes:
 * readiness is about serving the webhook, and no replica may leave the
 * webhook's endpoints because it stands by without caches, or because it
 * just won the Lease and is listing. */
bool rc_controller_ready(void *controller);

/* True when this replica may write (always, without leader election). */
bool rc_controller_leading(void *controller);

/*
 * Stop taking keys, let in-flight reconciles finish (each API call is
 * bounded by its timeout), stop the watches, free everything.
 */
void rc_controller_stop(struct rc_controller *c);

#endif
