/*
 * rc_pods.c — the pod decoder and the pod cache.  See rc_pods.h.
 */
#include "rc_pods.h"
#include "rc_pool.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "namespace/name": 63 + 1 + 253, rounded up (as RC_KEY_BUF). */
#define POD_KEY_BUF 320
/* A pod's name in a message: generated names are ~60 bytes; a longer one
 * is cut so the reason after it survives the message's bound. */
#define POD_NAME_SHOWN "120"
/* A container's name (a DNS label). */
#define CONTAINER_NAME_SHOWN "63"

/* --- decoding ------------------------------------------------------------ */

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *obj_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsObject(v) ? v : NULL;
}

static const cJSON *array_at(const cJSON *obj, const char *key)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsArray(v) ? v : NULL;
}

/* The first condition of this type, or NULL. */
static const cJSON *condition(const cJSON *status, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, array_at(status, "conditions")) {
        const char *t = str_at(c, "type");
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

static bool is_true(const cJSON *cond)
{
    const char *s = cond ? str_at(cond, "status") : NULL;
    return s && strcmp(s, "True") == 0;
}

/* Waiting reasons that mean the container will not start without help. */
static const struct {
    const char *reason;
    enum rc_pod_problem problem;
} waiting_problems[] = {
    { "CreateContainerConfigError", RC_POD_CREATE_CONFIG_ERROR },
    { "InvalidImageName", RC_POD_INVALID_IMAGE },
    { "ImagePullBackOff", RC_POD_IMAGE_PULL_BACKOFF },
    { "ErrImagePull", RC_POD_ERR_IMAGE_PULL },
    { "CreateContainerError", RC_POD_CREATE_ERROR },
    { "RunContainerError", RC_POD_RUN_ERROR },
    { "CrashLoopBackOff", RC_POD_CRASH_LOOP },
};

static enum rc_pod_problem waiting_problem(const char *reason)
{
    for (size_t i = 0; reason && i < sizeof(waiting_problems) / sizeof(waiting_problems[0]);
         i++)
        if (strcmp(reason, waiting_problems[i].reason) == 0)
            return waiting_problems[i].problem;
    return RC_POD_OK;
}

static bool worse(enum rc_pod_problem a, enum rc_pod_problem b)
{
    return a != RC_POD_OK && (b == RC_POD_OK || a < b);
}

/* "pod P container C: <waiting message>; last terminated: R, exit code N" */
static void container_message(const char *pod, const cJSON *cs, const cJSON *waiting,
                              const char *reason, char *out, size_t cap)
{
    const char *name = str_at(cs, "name");
    const char *wmsg = str_at(waiting, "message");
    int n = snprintf(out, cap, "pod %." POD_NAME_SHOWN "s container %." CONTAINER_NAME_SHOWN "s: %s", pod,
                     name ? name : "?", wmsg && *wmsg ? wmsg : reason);
    const cJSON *last = obj_at(cs, "lastState");
    const cJSON *term = last ? obj_at(last, "terminated") : NULL;
    if (term == NULL || n < 0 || (size_t)n >= cap)
        return;
    const char *treason = str_at(term, "reason");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(term, "exitCode");
    long long exit_code = cJSON_IsNumber(code) ? (long long)code->valuedouble : 0;
    snprintf(out + n, cap - (size_t)n, "; last terminated: %s, exit code %lld",
             treason && *treason ? treason : "Unknown", exit_code);
}

/* The worst container problem of one status list (containerStatuses or
 * initContainerStatuses) that is worse than *best. */
static void container_problems(const char *pod, const cJSON *list,
                               enum rc_pod_problem *best, char *msg, size_t cap)
{
    const cJSON *cs;
    cJSON_ArrayForEach(cs, list) {
        const cJSON *state = obj_at(cs, "state");
        const cJSON *waiting = state ? obj_at(state, "waiting") : NULL;
        const char *reason = waiting ? str_at(waiting, "reason") : NULL;
        enum rc_pod_problem p = waiting_problem(reason);
        if (!worse(p, *best))
            continue;
        *best = p;
        container_message(pod, cs, waiting, reason, msg, cap);
    }
}

/* The pod's problem, with its message in msg. */
static enum rc_pod_problem pod_problem(const char *pod, const cJSON *status, char *msg,
                                       size_t cap)
{
    enum rc_pod_problem best = RC_POD_OK;
    msg[0] = '\0';
    if (status == NULL)
        return RC_POD_OK;
    const char *phase = str_at(status, "phase");
    if (phase && strcmp(phase, "Failed") == 0) {
        const char *m = str_at(status, "message"), *r = str_at(status, "reason");
        snprintf(msg, cap, "pod %." POD_NAME_SHOWN "s failed: %s", pod,
                 m && *m ? m : r && *r ? r : "no reason given");
        best = RC_POD_FAILED;
    }
    container_problems(pod, array_at(status, "initContainerStatuses"), &best, msg, cap);
    container_problems(pod, array_at(status, "containerStatuses"), &best, msg, cap);
    if (best != RC_POD_OK)
        return best;
    const cJSON *sched = condition(status, "PodScheduled");
    const char *sstatus = sched ? str_at(sched, "status") : NULL;
    const char *sreason = sched ? str_at(sched, "reason") : NULL;
    if (sstatus && strcmp(sstatus, "False") == 0 && sreason &&
        strcmp(sreason, "Unschedulable") == 0) {
        /* The scheduler's own words: "0/10 nodes are available: 4
         * Insufficient nvidia.com/gpu, ..." */
        const char *m = str_at(sched, "message");
        snprintf(msg, cap, "%s", m && *m ? m : "the pod cannot be scheduled");
        return RC_POD_UNSCHEDULABLE;
    }
    return RC_POD_OK;
}

struct rc_pod *rc_pod_decode(const cJSON *obj)
{
    const cJSON *meta = obj_at(obj, "metadata");
    const char *ns = meta ? str_at(meta, "namespace") : NULL;
    const char *name = meta ? str_at(meta, "name") : NULL;
    const cJSON *labels = meta ? obj_at(meta, "labels") : NULL;
    const char *instance = labels ? str_at(labels, RC_POD_INSTANCE_LABEL) : NULL;
    if (!ns || !name || !instance || !*ns || !*name || !*instance)
        return NULL;

    char key[POD_KEY_BUF], owner[POD_KEY_BUF], msg[RC_POD_MESSAGE_MAX];
    snprintf(key, sizeof(key), "%.63s/%.253s", ns, name);
    snprintf(owner, sizeof(owner), "%.63s/%.253s", ns, instance);
    const cJSON *status = obj_at(obj, "status");
    enum rc_pod_problem problem = pod_problem(key + strlen(ns) + 1, status, msg,
                                              sizeof(msg));

    size_t klen = strlen(key), olen = strlen(owner);
    size_t mlen = problem != RC_POD_OK ? strlen(msg) + 1 : 0;
    struct rc_pod *p = rc_pool_alloc(sizeof(*p) + klen + 1 + olen + 1 + mlen);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof(*p));
    char *w = p->blob;
    memcpy(w, key, klen + 1);
    p->key = w;
    w += klen + 1;
    memcpy(w, owner, olen + 1);
    p->owner_key = w;
    w += olen + 1;
    if (mlen) {
        memcpy(w, msg, mlen);
        p->message = w;
    }
    p->problem = (uint8_t)problem;
    p->ready = is_true(status ? condition(status, "Ready") : NULL);
    p->terminating = cJSON_GetObjectItemCaseSensitive(meta, "deletionTimestamp") != NULL;
    return p;
}

/* --- the cache ------------------------------------------------------------ */

struct rc_pod_group {
    const char *key;
    struct rc_pod *head;
    char blob[];
};
_Static_assert(offsetof(struct rc_pod_group, key) == 0, "rc_map keys come first");
_Static_assert(offsetof(struct rc_pod, key) == 0, "rc_map keys come first");

int rc_pods_init(struct rc_pods *p, rc_pods_enqueue_fn enqueue, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->enqueue = enqueue;
    p->enqueue_arg = arg;
    return pthread_rwlock_init(&p->lock, NULL) == 0 ? 0 : -1;
}

static void free_value(void *arg, void *v)
{
    (void)arg;
    rc_pool_free(v);
}

static void clear_locked(struct rc_pods *p)
{
    rc_map_each(&p->pods, free_value, NULL);
    rc_map_each(&p->groups, free_value, NULL);
    rc_map_free(&p->pods);
    rc_map_free(&p->groups);
}

void rc_pods_clear(struct rc_pods *p)
{
    pthread_rwlock_wrlock(&p->lock);
    clear_locked(p);
    pthread_rwlock_unlock(&p->lock);
}

void rc_pods_free(struct rc_pods *p)
{
    clear_locked(p);
    pthread_rwlock_destroy(&p->lock);
}

/* Link pod into its owner's group.  -1 when out of memory (not linked). */
static int group_link(struct rc_pods *p, struct rc_pod *pod)
{
    struct rc_pod_group *g = rc_map_get(&p->groups, pod->owner_key);
    if (g == NULL) {
        size_t len = strlen(pod->owner_key) + 1;
        g = rc_pool_alloc(sizeof(*g) + len);
        if (g == NULL)
            return -1;
        memcpy(g->blob, pod->owner_key, len);
        g->key = g->blob;
        g->head = NULL;
        void *old;
        if (rc_map_put(&p->groups, g, &old) != 0) {
            rc_pool_free(g);
            return -1;
        }
    }
    pod->next = g->head;
    g->head = pod;
    return 0;
}

static void group_unlink(struct rc_pods *p, struct rc_pod *pod)
{
    struct rc_pod_group *g = rc_map_get(&p->groups, pod->owner_key);
    if (g == NULL)
        return;
    for (struct rc_pod **at = &g->head; *at; at = &(*at)->next) {
        if (*at == pod) {
            *at = pod->next;
            break;
        }
    }
    if (g->head == NULL)
        rc_pool_free(rc_map_del(&p->groups, g->key));
}

/* Would status see a difference between a and b (either may be NULL)? */
static bool differs(const struct rc_pod *a, const struct rc_pod *b)
{
    if (a == NULL || b == NULL)
        return a != b;
    return a->ready != b->ready || a->problem != b->problem ||
           a->terminating != b->terminating || strcmp(a->owner_key, b->owner_key) != 0 ||
           strcmp(a->message ? a->message : "", b->message ? b->message : "") != 0;
}

static void on_list_begin(void *arg)
{
    struct rc_pods *p = arg;
    pthread_rwlock_wrlock(&p->lock);
    p->gen++;
    pthread_rwlock_unlock(&p->lock);
}

static void on_event(void *arg, enum kube_event type, const cJSON *obj)
{
    struct rc_pods *p = arg;
    struct rc_pod *fresh = rc_pod_decode(obj);
    if (fresh == NULL)
        return;   /* not one of ours, or out of memory: nothing to place */
    char wake_new[POD_KEY_BUF] = "", wake_old[POD_KEY_BUF] = "";
    pthread_rwlock_wrlock(&p->lock);
    struct rc_pod *old = rc_map_get(&p->pods, fresh->key);
    bool changed = differs(old, type == KUBE_EVENT_DELETED ? NULL : fresh);
    if (old) {
        group_unlink(p, old);
        rc_map_del(&p->pods, old->key);
        snprintf(wake_old, sizeof(wake_old), "%s", old->owner_key);
    }
    if (type == KUBE_EVENT_DELETED) {
        if (old == NULL)
            snprintf(wake_old, sizeof(wake_old), "%s", fresh->owner_key);
    } else {
        void *ignored;
        fresh->list_gen = p->gen;
        if (rc_map_put(&p->pods, fresh, &ignored) != 0) {
            /* Out of memory: drop the event; the next relist brings it. */
        } else if (group_link(p, fresh) != 0) {
            rc_map_del(&p->pods, fresh->key);
        } else {
            snprintf(wake_new, sizeof(wake_new), "%s", fresh->owner_key);
            fresh = NULL;   /* owned by the cache now */
        }
    }
    pthread_rwlock_unlock(&p->lock);
    rc_pool_free(old);
    rc_pool_free(fresh);
    if (!changed || p->enqueue == NULL)
        return;
    if (wake_new[0])
        p->enqueue(p->enqueue_arg, wake_new);
    if (wake_old[0] && strcmp(wake_old, wake_new) != 0)
        p->enqueue(p->enqueue_arg, wake_old);
}

struct sweep {
    struct rc_pods *pods;
    char (*keys)[POD_KEY_BUF];
    size_t cap, woken;
};

static int still_listed(void *arg, void *v)
{
    struct sweep *s = arg;
    return ((struct rc_pod *)v)->list_gen == s->pods->gen;
}

static void drop_pod(void *arg, void *v)
{
    struct sweep *s = arg;
    struct rc_pod *pod = v;
    if (s->woken < s->cap)
        snprintf(s->keys[s->woken++], POD_KEY_BUF, "%s", pod->owner_key);
    group_unlink(s->pods, pod);
    rc_pool_free(pod);
}

/* Relist done: pods the list did not mention were deleted while we were
 * not watching; wake their InferenceServices. */
static void on_list_end(void *arg)
{
    struct rc_pods *p = arg;
    struct sweep s = { .pods = p };
    pthread_rwlock_wrlock(&p->lock);
    s.cap = p->pods.count;
    s.keys = s.cap ? calloc(s.cap, POD_KEY_BUF) : NULL;
    if (s.keys == NULL)
        s.cap = 0;
    rc_map_filter(&p->pods, still_listed, drop_pod, &s);
    pthread_rwlock_unlock(&p->lock);
    for (size_t i = 0; i < s.woken && p->enqueue; i++)
        p->enqueue(p->enqueue_arg, s.keys[i]);
    free(s.keys);
}

struct kube_watch_handlers rc_pods_handlers(struct rc_pods *p)
{
    struct kube_watch_handlers h = {
        .arg = p,
        .on_list_begin = on_list_begin,
        .on_event = on_event,
        .on_list_end = on_list_end,
    };
    return h;
}

/* Is a worse than b for the summary: problem first, then pod name. */
static bool reported_before(const struct rc_pod *a, const struct rc_pod *b)
{
    if (b == NULL)
        return true;
    if (a->problem != b->problem)
        return a->problem < b->problem;
    return strcmp(a->key, b->key) < 0;
}

void rc_pods_summary(struct rc_pods *p, const char *owner_key,
                     struct rc_pod_summary *out)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&p->lock);
    const struct rc_pod_group *g = rc_map_get(&p->groups, owner_key);
    const struct rc_pod *worst = NULL;
    for (const struct rc_pod *pod = g ? g->head : NULL; pod; pod = pod->next) {
        if (pod->terminating)
            continue;
        out->pods++;
        out->ready += pod->ready;
        if (pod->problem == RC_POD_OK)
            continue;
        out->problems++;
        if (reported_before(pod, worst))
            worst = pod;
    }
    if (worst) {
        out->problem = (enum rc_pod_problem)worst->problem;
        snprintf(out->message, sizeof(out->message), "%s",
                 worst->message ? worst->message : "");
    }
    pthread_rwlock_unlock(&p->lock);
}

size_t rc_pods_count(struct rc_pods *p)
{
    pthread_rwlock_rdlock(&p->lock);
    size_t n = p->pods.count;
    pthread_rwlock_unlock(&p->lock);
    return n;
}
