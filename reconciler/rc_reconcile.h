/*
 * rc_reconcile.h — one InferenceService, level-triggered and idempotent:
 * read the caches, compute what should exist, write only what differs.
 *
 *   1. Gone or being deleted: nothing to do (the garbage collector removes
 *      what it owns through the ownerReferences).
 *   2. Spec breaks the admission rules (stored while the webhook was off):
 *      Degraded/InvalidSpec with the webhook's own messages, no Deployment.
 *   3. Deployment and Service: server-side apply (fieldManager
 *      inference-operator, force) only when the managed-field hash of what
 *      exists differs from the desired one.  An orphan with our name is
 *      adopted (as controller-runtime does); one controlled by another
 *      object is reported (NameConflict), never taken over.
 *   4. Status through /status, only when its hash differs.
 *
 * An urgent pass (the spec is news: a new object or a new generation)
 * stops after step 3's Deployment apply if it wrote one, and asks for a
 * follow-up pass at normal priority for the Service and status.  Under a
 * burst of creates this puts every Deployment, what the user is waiting
 * for, ahead of the Services and statuses, instead of finishing each
 * object whole in arrival order.  What an apply returns is taught to the
 * cache (rc_cache_learn), so the follow-up does not apply it again.
 */
#ifndef RC_RECONCILE_H
#define RC_RECONCILE_H

#include <stdatomic.h>
#include <stdint.h>

#include "isvc_fields.h"
#include "kube_client.h"
#include "rc_cache.h"
#include "rc_desired.h"
#include "rc_events.h"
#include "rc_pods.h"
#include "rc_throttle.h"

enum rc_result {
    RC_DONE,        /* converged (or nothing to do): requeue after resync */
    RC_GONE,        /* the object no longer exists: forget the key        */
    RC_RETRY,       /* failed: back off                                   */
    RC_CONFLICT,    /* lost a race (409): retry soon, without backoff     */
    RC_FENCED,      /* not the leader any more: nothing written, retry later */
    RC_FOLLOW_UP,   /* urgent pass wrote the Deployment: queue the rest now */
    RC_RESULT_COUNT
};

/* What an urgent pass wrote, carried to its follow-up (which names it in
 * the one Event it sends). */
#define RC_CARRY_DEP_CREATED 1u
#define RC_CARRY_DEP_UPDATED 2u

/* How a pass was asked for, and what it hands on. */
struct rc_pass {
    bool urgent;      /* in: Deployment first (see the top of this file)  */
    unsigned carry;   /* in: from the urgent pass; out with RC_FOLLOW_UP  */
};

enum rc_apply_kind { RC_APPLY_DEPLOYMENT, RC_APPLY_SERVICE };
enum rc_apply_result { RC_APPLY_CREATED, RC_APPLY_UPDATED, RC_APPLY_FAILED };

struct rc_ctx {
    const struct isvc_rules *rules;
    const struct rc_settings *settings;
    struct rc_cache *cache;
    struct rc_events *events;
    struct rc_pods *pods;             /* NULL: status without pod problems */
    struct rc_throttle *throttle;     /* NULL: message changes not bounded */
    _Atomic uint64_t applies[2][3];
    _Atomic uint64_t status_writes, status_conflicts;
    _Atomic uint64_t status_deferred;   /* message-only, held back */
    /* The write fence (leader election); NULL = always allowed. */
    bool (*may_write)(void *arg);
    void *may_write_arg;
    _Atomic uint64_t fenced;
};

enum rc_result rc_reconcile(struct rc_ctx *ctx, struct kube_conn *conn,
                            const char *key, struct rc_pass *pass, char *err,
                            size_t errlen);

#endif
