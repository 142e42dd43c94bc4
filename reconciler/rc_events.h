/*
 * rc_events.h — Kubernetes Events (events.k8s.io/v1) about an
 * InferenceService.
 *
 * Deduplicated: the same reason and message for the same object is
 * reported once per RC_EVENT_DEDUP_S, so a reconcile loop that keeps
 * failing the same way does not flood etcd.
 *
 * Sent by a thread of their own from a bounded queue, as client-go's event
 * broadcaster does: a reconcile formats and queues its Event and goes on;
 * it never waits for the POST (for a new InferenceService that was one API
 * round trip in four on the path to its status).  When Events arrive
 * faster than the API server takes them the queue fills and further ones
 * are dropped and counted; a reconcile is never held up by a courtesy.
 * The sender checks the write fence (leader election) just before each
 * POST, as the workers do before theirs.
 *
 * Rate-limited as the kubelet limits its own (eventRecordQPS and
 * eventBurst): a token bucket, RC_EVENT_QPS_DEFAULT per second with a
 * burst of RC_EVENT_BURST_DEFAULT, and an Event with no token is dropped
 * and counted as throttled.  Everyday edits never meet the limit; a mass
 * create (a GitOps sync of thousands of InferenceServices) would otherwise
 * spend one API write in four on "Created" notes nobody reads, while the
 * same API server is still creating the Services the users are waiting
 * for.  Deduplication comes first, so a throttled Event was a new one.
 */
#ifndef RC_EVENTS_H
#define RC_EVENTS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kube_client.h"
#include "kube_ratelimit.h"

#define RC_EVENT_DEDUP_S 600
/* Fingerprints remembered; older ones are overwritten (a bounded table). */
#define RC_EVENT_SLOTS 4096
/* Events waiting for the sender; more are dropped (each ~0.7 kB queued). */
#define RC_EVENT_QUEUE 512
/* At stop, queued Events are still sent for this long, then dropped. */
#define RC_EVENT_DRAIN_MS 2000
/* Events per second, and the burst, the bucket allows (--event-qps,
 * --event-burst); a qps of 0 turns the limit off. */
#define RC_EVENT_QPS_DEFAULT 10
#define RC_EVENT_BURST_DEFAULT 100

struct rc_event_msg {
    char *path;               /* POST target: the Event's namespace       */
    char *body;               /* the Event, JSON                          */
};

struct rc_events {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* RC_EVENT_SLOTS fingerprints (64 KiB), allocated with the first
     * Event: a replica that never reports one (a standby, an idle
     * cluster) does not hold them. */
    struct rc_event_slot { uint64_t fp; int64_t at; } *slots;
    struct rc_event_msg queue[RC_EVENT_QUEUE];
    size_t head, count;       /* ring: oldest at head                     */
    bool stopping, started;
    pthread_t sender;
    struct kube_client *client;       /* the sender's kube_conn comes from it */
    bool (*may_write)(void *arg);     /* NULL: always allowed               */
    void *may_write_arg;
    char instance[128];       /* reportingInstance: hostname              */
    struct kube_ratelimit rate;       /* --event-qps/--event-burst; qps 0 = none */
    _Atomic uint64_t sent, suppressed, failed, dropped, fenced, throttled;
};

struct rc_event_target {
    const char *ns, *name, *uid;
};

/* Prepares e (rate RC_EVENT_QPS_DEFAULT, burst RC_EVENT_BURST_DEFAULT);
 * no thread runs and rc_event only counts until start. */
void rc_events_init(struct rc_events *e);

/* Sets the rate limit before start: qps Events per second (0 = no limit),
 * burst of them at once (at least 1), the bucket full. */
void rc_events_set_rate(struct rc_events *e, unsigned qps, unsigned burst);

/* Starts the sender.  client must outlive rc_events_stop.  Returns -1
 * with err when the thread cannot be created. */
int rc_events_start(struct rc_events *e, struct kube_client *client,
                    bool (*may_write)(void *arg), void *may_write_arg,
                    char *err, size_t errlen);

/* Stops the sender: what is queued gets RC_EVENT_DRAIN_MS, the rest is
 * dropped.  No Event is sent after it returns. */
void rc_events_stop(struct rc_events *e);

void rc_events_destroy(struct rc_events *e);

/*
 * Queue an event unless the same one was reported recently.  warning
 * selects type Warning (else Normal).  Never blocks on the network;
 * failures and drops are counted, never fatal: an event is a courtesy to
 * the user, not part of reconciling.
 */
void rc_event(struct rc_events *e, const struct rc_event_target *t, bool warning,
              const char *reason, const char *action, const char *message,
              int64_t now);

#endif
