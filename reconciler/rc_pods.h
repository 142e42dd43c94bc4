/*
 * rc_pods.h — what the pods of our Deployments say about themselves,
 * for status: a Deployment only counts ready replicas, a pod says WHY it
 * is not ready (unschedulable: insufficient nvidia.com/gpu; crash-looping
 * with exit code 1; image not pullable).
 *
 * A fourth watch, on pods labelled app.kubernetes.io/managed-by=
 * inference-operator,app.kubernetes.io/name=inference-server (the labels
 * rc_desired puts on the pod template), feeds this cache.  Each pod is one
 * malloc'd block: its key, its InferenceService's key (from the
 * app.kubernetes.io/instance label), ready, terminating, a problem code,
 * and a message only when there is a problem (cut to RC_POD_MESSAGE_MAX).
 * Cost per pod (x86-64, glibc): 48-byte head + key + owner key ≈ 110 bytes
 * in a 128-byte malloc chunk, + 16 bytes of map slot; + up to 256 bytes
 * of message while it has a problem; + ~60 bytes per InferenceService
 * with pods for its group.  No pod, no cost: an idle watch holds two empty
 * maps.
 *
 * Pods are grouped by InferenceService (a second map, owner key -> list),
 * so a reconcile reads its own few pods, not every pod in the cluster.
 *
 * A pod event enqueues its InferenceService only when something status
 * uses changed (ready, problem, message, terminating, or the pod came or
 * went): kubelet's other status updates cost no reconcile.
 */
#ifndef RC_PODS_H
#define RC_PODS_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kube_watch.h"
#include "rc_map.h"
#include "rc_status.h"

/* The label that names the owning InferenceService on our pods. */
#define RC_POD_INSTANCE_LABEL "app.kubernetes.io/instance"
/* The selector of the pod watch (with the managed-by label). */
#define RC_POD_NAME_SELECTOR "app.kubernetes.io/name=inference-server"

struct rc_pod {
    const char *key;           /* "namespace/name"                         */
    const char *owner_key;     /* "namespace/<instance label>"             */
    const char *message;       /* NULL unless problem != RC_POD_OK         */
    struct rc_pod *next;       /* in its owner's group                     */
    uint32_t list_gen;
    uint8_t problem;           /* enum rc_pod_problem                      */
    bool ready;                /* condition Ready=True                     */
    bool terminating;          /* deletionTimestamp set: not counted       */
    char blob[];
};

/* One block (free with rc_pool_free()), or NULL when obj is not a pod we can
 * place: no namespace, name or instance label.  Pure; unit-tested. */
struct rc_pod *rc_pod_decode(const cJSON *obj);

typedef void (*rc_pods_enqueue_fn)(void *arg, const char *key);

struct rc_pods {
    pthread_rwlock_t lock;
    struct rc_map pods;        /* pod key -> struct rc_pod                 */
    struct rc_map groups;      /* owner key -> struct rc_pod_group         */
    uint32_t gen;
    rc_pods_enqueue_fn enqueue;
    void *enqueue_arg;
};

int rc_pods_init(struct rc_pods *p, rc_pods_enqueue_fn enqueue, void *arg);
/* Free every pod (the cache stays usable, empty). */
void rc_pods_clear(struct rc_pods *p);
void rc_pods_free(struct rc_pods *p);

struct kube_watch_handlers rc_pods_handlers(struct rc_pods *p);

/* The summary of owner_key's live pods (all zero when it has none). */
void rc_pods_summary(struct rc_pods *p, const char *owner_key,
                     struct rc_pod_summary *out);

size_t rc_pods_count(struct rc_pods *p);

#endif
