/*
 * rc_events.h — Kubernetes Events (events.k8s.io/v1) about an
 * InferenceService, deduplicated: the same reason and message for the
 * same object is reported once per RC_EVENT_DEDUP_S, so a reconcile loop
 * that keeps failing the same way does not flood etcd.
 */
#ifndef RC_EVENTS_H
#define RC_EVENTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kube_client.h"

#define RC_EVENT_DEDUP_S 600
/* Fingerprints remembered; older ones are overwritten (a bounded table). */
#define RC_EVENT_SLOTS 4096

struct rc_events {
    pthread_mutex_t lock;
    struct { uint64_t fp; int64_t at; } slots[RC_EVENT_SLOTS];
    char instance[128];      /* reportingInstance: hostname */
    uint64_t sent, suppressed, failed;
};

struct rc_event_target {
    const char *ns, *name, *uid;
};

void rc_events_init(struct rc_events *e);
void rc_events_destroy(struct rc_events *e);

/*
 * Report an event unless the same one was reported recently.  warning
 * selects type Warning (else Normal).  Failures are counted, never fatal:
 * an event is a courtesy to the user, not part of reconciling.
 */
void rc_event(struct rc_events *e, struct kube_conn *conn,
              const struct rc_event_target *t, bool warning,
              const char *reason, const char *action, const char *message,
              int64_t now);

#endif
