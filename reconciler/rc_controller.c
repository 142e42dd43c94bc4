/*
 * rc_controller.c — watches, queue and workers wired together.  See
 * rc_controller.h.
 */
#include "rc_controller.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "rc_cache.h"
#include "rc_events.h"
#include "rc_pods.h"
#include "rc_queue.h"
#include "rc_reconcile.h"

#define MANAGED_SELECTOR ISVC_MANAGED_BY_KEY "=" ISVC_MANAGED_BY_VALUE
/* A lost status race is retried once the watch has caught up. */
#define RC_CONFLICT_RETRY_MS 200
#define RC_SYNC_POLL_MS 50
/* Every key is enqueued again this often, whatever happened to it: the
 * safety net for a key the queue refused at its bound (controller-runtime's
 * SyncPeriod, much shorter than its 10 h default because it costs us no
 * writes: an unchanged object reconciles with zero API calls). */
#define RC_FULL_RESYNC_S 600
/* List pages of 100, not KUBE_WATCH_PAGE (500): the watches parse
 * their pages at once, and a page of 500 Deployments is ~5 MB of JSON
 * nodes.  Measured on a restart with 5 000 InferenceServices: peak RSS
 * 27.7 -> 11.8 MB, RSS after sync 11.7 -> 10.7 MB, sync no slower. */
#define RC_LIST_PAGE 100
/* A cold standby that won the Lease but could not start its watches
 * tries again this often. */
#define RC_WATCH_RETRY_MS 1000
#define POD_SELECTOR MANAGED_SELECTOR "," RC_POD_NAME_SELECTOR

/* A burst worker that finds the urgent lane empty this long gives its
 * connection back and exits. */
#define RC_BURST_IDLE_MS 2000
/* A burst worker's stack: its own mapping, unmapped once the thread is
 * joined.  glibc would keep an exited thread's stack cached with ~20 KB
 * of it resident (measured: 240 KB for 12 workers after a burst). */
#define RC_BURST_STACK_BYTES (1024 * 1024)
#define RC_BURST_GUARD_BYTES 4096

enum { W_ISVC, W_DEPLOY, W_SERVICE, W_POD, W_COUNT };

enum burst_state { BURST_FREE, BURST_RUNNING, BURST_EXITED };

/* Burst workers: extra threads for the urgent lane only, started while
 * it has more keys than idle takers, gone (connection freed) once it has
 * been empty for RC_BURST_IDLE_MS.  A burst of creates gets its
 * Deployments with the concurrency it needs; the steady state keeps only
 * the regular workers' memory. */
struct burst {
    pthread_mutex_t lock;
    pthread_t threads[RC_BURST_WORKERS_MAX];
    void *stacks[RC_BURST_WORKERS_MAX];         /* mapping, guard page first */
    enum burst_state state[RC_BURST_WORKERS_MAX];
    unsigned live, idle;
    _Atomic uint64_t started;
    bool closed;                      /* stopping: start no more */
};

struct rc_controller {
    struct rc_controller_opts opts;
    struct kube_client *client;
    struct rc_cache cache;
    struct rc_pods pods;
    bool pods_init;
    struct rc_throttle throttle;
    struct rc_queue *queue;
    struct rc_events events;
    struct rc_ctx ctx;
    /* watch_lock guards watches[]: a cold standby's watch thread starts
     * and stops them while workers and /metrics look at them. */
    pthread_mutex_t watch_lock;
    struct kube_watch *watches[W_COUNT];
    bool cold;                        /* leader_elect && !warm_standby */
    pthread_t watcher;
    bool watcher_started;
    _Atomic uint64_t watch_starts, watch_stops;
    pthread_t workers[RC_WORKERS_MAX];
    unsigned started_workers;
    pthread_t resync;
    bool resync_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    pthread_cond_t watch_cond;        /* leadership changed (cold standby) */
    _Atomic bool stopping;
    _Atomic uint64_t results[RC_RESULT_COUNT];
    struct rc_leader *leader;
    _Atomic bool leading_now;         /* last value the elector reported */
    struct metrics_hist duration;
    _Atomic unsigned active;
    char paths[W_COUNT][256];
    struct burst burst;
};

static const char *const result_names[RC_RESULT_COUNT] = {
    "success", "gone", "error", "requeue", "fenced", "follow_up" };
/* A fenced key waits this long before a (new) leader looks at it again. */
#define RC_FENCED_RETRY_MS 1000

void rc_controller_opts_init(struct rc_controller_opts *o)
{
    memset(o, 0, sizeof(*o));
    kube_client_opts_init(&o->client);
    rc_settings_init(&o->settings);
    o->workers = RC_WORKERS_DEFAULT;
    o->burst_workers = RC_BURST_WORKERS_DEFAULT;
    o->requeue_after_ms = RC_REQUEUE_AFTER_MS_DEFAULT;
    o->backoff_base_ms = RC_BACKOFF_BASE_MS_DEFAULT;
    o->backoff_cap_ms = RC_BACKOFF_CAP_MS_DEFAULT;
    o->warm_standby = true;
    o->event_qps = RC_EVENT_QPS_DEFAULT;
    o->event_burst = RC_EVENT_BURST_DEFAULT;
}

bool rc_controller_synced(void *arg)
{
    struct rc_controller *c = arg;
    bool synced = true;
    pthread_mutex_lock(&c->watch_lock);
    for (int i = 0; i < W_COUNT && synced; i++)
        synced = c->watches[i] != NULL && kube_watch_synced(c->watches[i]);
    pthread_mutex_unlock(&c->watch_lock);
    return synced;
}

bool rc_controller_ready(void *arg)
{
    struct rc_controller *c = arg;
    return c->cold || rc_controller_synced(c);
}

bool rc_controller_leading(void *arg)
{
    struct rc_controller *c = arg;
    return c->leader == NULL || rc_leader_leading(c->leader);
}

static void enqueue(void *arg, const char *key)
{
    struct rc_controller *c = arg;
    if (rc_queue_add(c->queue, key) != 0 && !atomic_load(&c->stopping))
        log_warn("work queue refused a key; the next resync brings it back",
                 LF_STR("key", key));
}

static void burst_start(struct rc_controller *c);

static void enqueue_urgent(void *arg, const char *key)
{
    struct rc_controller *c = arg;
    if (rc_queue_add_urgent(c->queue, key) != 0) {
        if (!atomic_load(&c->stopping))
            log_warn("work queue refused a key; the next resync brings it back",
                     LF_STR("key", key));
        return;
    }
    burst_start(c);
}

static void finish(struct rc_controller *c, const char *key, enum rc_result r,
                   unsigned carry)
{
    switch (r) {
    case RC_FOLLOW_UP:
        rc_queue_forget(c->queue, key);
        rc_queue_add_carry(c->queue, key, carry);
        break;
    case RC_RESULT_COUNT:
        break;
    case RC_DONE:
        rc_queue_forget(c->queue, key);
        rc_queue_add_after(c->queue, key, c->opts.requeue_after_ms);
        break;
    case RC_GONE:
        rc_queue_forget(c->queue, key);
        break;
    case RC_RETRY:
        rc_queue_add_rate_limited(c->queue, key);
        break;
    case RC_CONFLICT:
        rc_queue_add_after(c->queue, key, RC_CONFLICT_RETRY_MS);
        break;
    case RC_FENCED:
        rc_queue_add_after(c->queue, key, RC_FENCED_RETRY_MS);
        break;
    }
}

/* Reconcile one taken key and hand it back to the queue.  *conn is made
 * with the first key: a standby or an idle replica holds no curl handle
 * per worker. */
static void process(struct rc_controller *c, struct kube_conn **conn, const char *key,
                    const struct rc_queue_item *item)
{
    char err[1024];
    if (*conn == NULL && (*conn = kube_conn_new(c->client)) == NULL) {
        /* Out of memory: the key is tried again later. */
        log_error("worker could not create its API connection", LF_STR("key", key));
        rc_queue_add_rate_limited(c->queue, key);
        rc_queue_done(c->queue, key);
        return;
    }
    atomic_fetch_add(&c->active, 1);
    uint64_t t0 = mono_now_ns();
    struct rc_pass pass = { .urgent = item->urgent, .carry = item->carry };
    enum rc_result r = rc_reconcile(&c->ctx, *conn, key, &pass, err, sizeof(err));
    metrics_hist_observe_ns(&c->duration, mono_now_ns() - t0);
    atomic_fetch_add(&c->results[r], 1);
    if (r == RC_RETRY)
        log_warn("reconcile failed", LF_STR("key", key), LF_STR("error", err),
                 LF_INT("failures", rc_queue_failures(c->queue, key) + 1));
    else if (r == RC_CONFLICT)
        log_debug("reconcile lost a race", LF_STR("key", key), LF_STR("error", err));
    finish(c, key, r, pass.carry);
    rc_queue_done(c->queue, key);
    atomic_fetch_sub(&c->active, 1);
}

static void *worker_main(void *arg)
{
    struct rc_controller *c = arg;
    struct kube_conn *conn = NULL;
    /* No decision on a partial view: wait for every cache's first list. */
    while (!atomic_load(&c->stopping) && !rc_controller_synced(c))
        sleep_ms(RC_SYNC_POLL_MS);

    char key[RC_QUEUE_KEY_MAX];
    for (;;) {
        /* A standby takes no keys; a cold one that just won the Lease
         * waits for its fresh caches. */
        while (!atomic_load(&c->stopping) &&
               (!rc_controller_leading(c) || (c->cold && !rc_controller_synced(c))))
            sleep_ms(RC_SYNC_POLL_MS);
        struct rc_queue_item item;
        if (rc_queue_take(c->queue, key, &item) != 0)
            break;
        process(c, &conn, key, &item);
    }
    kube_conn_free(conn);
    return NULL;
}

struct burst_arg {
    struct rc_controller *c;
    unsigned slot;
};

/* Join an exited burst worker and unmap its stack. */
static void burst_reap(pthread_t t, void *stack)
{
    pthread_join(t, NULL);
    if (stack != NULL)
        munmap(stack, RC_BURST_GUARD_BYTES + RC_BURST_STACK_BYTES);
}

static void *burst_main(void *arg)
{
    struct burst_arg a = *(struct burst_arg *)arg;
    free(arg);
    struct rc_controller *c = a.c;
    struct burst *b = &c->burst;
    struct kube_conn *conn = NULL;
    char key[RC_QUEUE_KEY_MAX];
    /* Counted idle by burst_start already.  Like the workers, no decision
     * on a partial view (checked here: the watch thread that starts us
     * must not take the watch lock). */
    bool counted = true;
    while (rc_controller_synced(c) && rc_controller_leading(c)) {
        struct rc_queue_item item;
        pthread_mutex_lock(&b->lock);
        if (!counted)
            b->idle++;
        counted = false;
        pthread_mutex_unlock(&b->lock);
        int rc = rc_queue_take_urgent(c->queue, key, &item, RC_BURST_IDLE_MS);
        pthread_mutex_lock(&b->lock);
        b->idle--;
        pthread_mutex_unlock(&b->lock);
        if (rc != 0)
            break;
        process(c, &conn, key, &item);
    }
    kube_conn_free(conn);
    /* Reap the burst workers that exited before this one (never one
     * exiting after it, so no two join each other): at most one exited
     * thread is left unjoined between bursts. */
    pthread_t done[RC_BURST_WORKERS_MAX];
    void *done_stacks[RC_BURST_WORKERS_MAX];
    unsigned ndone = 0;
    pthread_mutex_lock(&b->lock);
    if (counted)
        b->idle--;
    for (unsigned i = 0; i < RC_BURST_WORKERS_MAX; i++) {
        if (i == a.slot || b->state[i] != BURST_EXITED)
            continue;
        done[ndone] = b->threads[i];
        done_stacks[ndone++] = b->stacks[i];
        b->stacks[i] = NULL;
        b->state[i] = BURST_FREE;
    }
    b->state[a.slot] = BURST_EXITED;
    bool last = --b->live == 0;
    pthread_mutex_unlock(&b->lock);
    for (unsigned i = 0; i < ndone; i++)
        burst_reap(done[i], done_stacks[i]);
    /* The burst's connections were the last large blocks in use: give
     * the pages back now rather than at the next trim. */
    if (last)
        malloc_trim(0);
    return NULL;
}

/* From the watch thread, after an urgent add: one more burst worker if
 * none is idle and the limit allows.  An exited one's slot is joined and
 * reused, so at most burst_workers threads ever exist at once. */
static void burst_start(struct rc_controller *c)
{
    struct burst *b = &c->burst;
    if (c->opts.burst_workers == 0 || atomic_load(&c->stopping) ||
        !rc_controller_leading(c))
        return;
    pthread_mutex_lock(&b->lock);
    if (b->closed || b->idle > 0 || b->live >= c->opts.burst_workers) {
        pthread_mutex_unlock(&b->lock);
        return;
    }
    unsigned slot = 0;
    while (slot < c->opts.burst_workers && b->state[slot] == BURST_RUNNING)
        slot++;
    if (b->state[slot] == BURST_EXITED) {
        burst_reap(b->threads[slot], b->stacks[slot]);
        b->stacks[slot] = NULL;
        b->state[slot] = BURST_FREE;
    }
    /* Any failure below: the regular workers take the key. */
    void *stack = mmap(NULL, RC_BURST_GUARD_BYTES + RC_BURST_STACK_BYTES,
                       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                       -1, 0);
    struct burst_arg *a = stack == MAP_FAILED ? NULL : malloc(sizeof(*a));
    pthread_attr_t attr;
    bool attr_ok = a != NULL && pthread_attr_init(&attr) == 0;
    if (attr_ok && mprotect(stack, RC_BURST_GUARD_BYTES, PROT_NONE) == 0 &&
        pthread_attr_setstack(&attr, (char *)stack + RC_BURST_GUARD_BYTES,
                              RC_BURST_STACK_BYTES) == 0) {
        *a = (struct burst_arg){ c, slot };
        if (pthread_create(&b->threads[slot], &attr, burst_main, a) == 0) {
            b->stacks[slot] = stack;
            b->state[slot] = BURST_RUNNING;
            b->live++;
            b->idle++;   /* counts as a taker until it reaches the queue */
            atomic_fetch_add(&b->started, 1);
            stack = MAP_FAILED;
            a = NULL;
        }
    }
    if (attr_ok)
        pthread_attr_destroy(&attr);
    free(a);
    if (stack != MAP_FAILED)
        munmap(stack, RC_BURST_GUARD_BYTES + RC_BURST_STACK_BYTES);
    pthread_mutex_unlock(&b->lock);
}

/* Stopping: no new burst worker; join every one (the queue is shut down,
 * so they are on their way out). */
static void burst_stop(struct rc_controller *c)
{
    struct burst *b = &c->burst;
    pthread_mutex_lock(&b->lock);
    b->closed = true;
    pthread_mutex_unlock(&b->lock);
    for (unsigned i = 0; i < RC_BURST_WORKERS_MAX; i++) {
        pthread_mutex_lock(&b->lock);
        bool joinable = b->state[i] != BURST_FREE;
        pthread_t t = b->threads[i];
        void *stack = b->stacks[i];
        b->stacks[i] = NULL;
        b->state[i] = BURST_FREE;
        pthread_mutex_unlock(&b->lock);
        if (joinable)
            burst_reap(t, stack);
    }
}

/* From the election thread: must not block.  A new leader requeues every
 * key so nothing that changed while it stood by is left unreconciled. */
static void on_leader_change(void *arg, bool leading)
{
    struct rc_controller *c = arg;
    atomic_store(&c->leading_now, leading);
    if (c->cold) {
        /* The watch thread starts or stops the watches; a first list
         * enqueues every key by itself. */
        pthread_mutex_lock(&c->stop_lock);
        pthread_cond_broadcast(&c->watch_cond);
        pthread_mutex_unlock(&c->stop_lock);
        return;
    }
    if (leading && rc_controller_synced(c))
        rc_cache_each_isvc(&c->cache, enqueue, c);
}

static void *resync_main(void *arg)
{
    struct rc_controller *c = arg;
    pthread_mutex_lock(&c->stop_lock);
    while (!atomic_load(&c->stopping)) {
        struct timespec until = mono_deadline_after_ms(RC_FULL_RESYNC_S * 1000u);
        pthread_cond_timedwait(&c->stop_cond, &c->stop_lock, &until);
        if (atomic_load(&c->stopping))
            break;
        pthread_mutex_unlock(&c->stop_lock);
        if (rc_controller_synced(c))
            rc_cache_each_isvc(&c->cache, enqueue, c);
        pthread_mutex_lock(&c->stop_lock);
    }
    pthread_mutex_unlock(&c->stop_lock);
    return NULL;
}

static void collect(struct metrics_buf *b, void *arg)
{
    struct rc_controller *c = arg;
    const char *ctl = "controller=\"inferenceservice\"";
    metrics_printf(b, "# HELP controller_runtime_reconcile_total Reconciles by result.\n"
                      "# TYPE controller_runtime_reconcile_total counter\n");
    for (int i = 0; i < RC_RESULT_COUNT; i++)
        metrics_printf(b, "controller_runtime_reconcile_total{%s,result=\"%s\"} %llu\n",
                       ctl, result_names[i], (unsigned long long)atomic_load(&c->results[i]));
    metrics_printf(b, "# HELP controller_runtime_reconcile_time_seconds Time per "
                      "reconcile.\n# TYPE controller_runtime_reconcile_time_seconds "
                      "histogram\n");
    metrics_hist_write(b, "controller_runtime_reconcile_time_seconds", ctl, &c->duration);
    metrics_printf(b, "# TYPE controller_runtime_active_workers gauge\n"
                      "controller_runtime_active_workers{%s} %u\n", ctl,
                   atomic_load(&c->active));
    pthread_mutex_lock(&c->burst.lock);
    unsigned burst_live = c->burst.live;
    pthread_mutex_unlock(&c->burst.lock);
    metrics_printf(b, "# HELP inference_operator_burst_workers burst workers alive now "
                      "(--burst-workers)\n# TYPE inference_operator_burst_workers gauge\n"
                      "inference_operator_burst_workers{%s} %u\n"
                      "# TYPE inference_operator_burst_workers_started_total counter\n"
                      "inference_operator_burst_workers_started_total{%s} %llu\n", ctl,
                   burst_live, ctl,
                   (unsigned long long)atomic_load(&c->burst.started));

    struct rc_queue_stats q;
    rc_queue_stats(c->queue, &q);
    const char *qn = "name=\"inferenceservice\"";
    metrics_printf(b, "# TYPE workqueue_depth gauge\nworkqueue_depth{%s} %zu\n", qn, q.depth);
    metrics_printf(b, "# HELP inference_operator_workqueue_urgent_depth keys waiting in the "
                      "urgent lane (new or edited specs), part of workqueue_depth\n"
                      "# TYPE inference_operator_workqueue_urgent_depth gauge\n"
                      "inference_operator_workqueue_urgent_depth{%s} %zu\n", qn, q.urgent);
    metrics_printf(b, "# TYPE workqueue_adds_total counter\nworkqueue_adds_total{%s} %llu\n",
                   qn, (unsigned long long)q.adds);
    metrics_printf(b, "# TYPE workqueue_retries_total counter\n"
                      "workqueue_retries_total{%s} %llu\n", qn,
                   (unsigned long long)q.retries);
    metrics_printf(b, "# TYPE inference_operator_workqueue_dropped_total counter\n"
                      "inference_operator_workqueue_dropped_total{%s} %llu\n", qn,
                   (unsigned long long)q.dropped);
    metrics_printf(b, "# TYPE inference_operator_workqueue_delayed gauge\n"
                      "inference_operator_workqueue_delayed{%s} %zu\n", qn, q.delayed);
    metrics_printf(b, "# TYPE workqueue_queue_duration_seconds summary\n"
                      "workqueue_queue_duration_seconds_sum{%s} %.9f\n"
                      "workqueue_queue_duration_seconds_count{%s} %llu\n",
                   qn, (double)q.wait_ns_sum / 1e9, qn, (unsigned long long)q.wait_count);

    static const char *const wnames[W_COUNT] = { "inferenceservices", "deployments",
                                                 "services", "pods" };
    metrics_printf(b, "# TYPE inference_operator_watch_restarts_total counter\n"
                      "# TYPE inference_operator_watch_relists_total counter\n"
                      "# TYPE inference_operator_watch_events_total counter\n");
    pthread_mutex_lock(&c->watch_lock);
    unsigned running = 0;
    for (int i = 0; i < W_COUNT; i++) {
        struct kube_watch_stats ws;
        if (c->watches[i] == NULL)
            continue;
        kube_watch_stats(c->watches[i], &ws);
        metrics_printf(b, "inference_operator_watch_restarts_total{resource=\"%s\"} %llu\n"
                          "inference_operator_watch_relists_total{resource=\"%s\"} %llu\n"
                          "inference_operator_watch_events_total{resource=\"%s\"} %llu\n",
                       wnames[i], (unsigned long long)ws.restarts, wnames[i],
                       (unsigned long long)ws.relists, wnames[i],
                       (unsigned long long)ws.events);
        running++;
    }
    pthread_mutex_unlock(&c->watch_lock);
    metrics_printf(b, "# HELP inference_operator_watches_running Watches this replica "
                      "runs (0 on a cold standby).\n"
                      "# TYPE inference_operator_watches_running gauge\n"
                      "inference_operator_watches_running %u\n"
                      "# TYPE inference_operator_watch_starts_total counter\n"
                      "inference_operator_watch_starts_total %llu\n"
                      "# TYPE inference_operator_watch_stops_total counter\n"
                      "inference_operator_watch_stops_total %llu\n", running,
                   (unsigned long long)atomic_load(&c->watch_starts),
                   (unsigned long long)atomic_load(&c->watch_stops));
    size_t ni, nd, ns;
    rc_cache_counts(&c->cache, &ni, &nd, &ns);
    metrics_printf(b, "# TYPE inference_operator_cache_objects gauge\n"
                      "inference_operator_cache_objects{kind=\"InferenceService\"} %zu\n"
                      "inference_operator_cache_objects{kind=\"Deployment\"} %zu\n"
                      "inference_operator_cache_objects{kind=\"Service\"} %zu\n"
                      "inference_operator_cache_objects{kind=\"Pod\"} %zu\n", ni, nd, ns,
                   rc_pods_count(&c->pods));
    static const char *const apply_results[3] = { "created", "updated", "failed" };
    metrics_printf(b, "# TYPE inference_operator_applies_total counter\n");
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < 3; r++)
            metrics_printf(b, "inference_operator_applies_total{kind=\"%s\",result=\"%s\"} "
                              "%llu\n", k ? "Service" : "Deployment", apply_results[r],
                           (unsigned long long)atomic_load(&c->ctx.applies[k][r]));
    metrics_printf(b, "# TYPE inference_operator_status_writes_total counter\n"
                      "inference_operator_status_writes_total %llu\n"
                      "# TYPE inference_operator_status_conflicts_total counter\n"
                      "inference_operator_status_conflicts_total %llu\n",
                   (unsigned long long)atomic_load(&c->ctx.status_writes),
                   (unsigned long long)atomic_load(&c->ctx.status_conflicts));
    metrics_printf(b, "# HELP inference_operator_status_writes_deferred_total Status "
                      "writes that changed only messages, held back (at most one per "
                      "object per %d s).\n"
                      "# TYPE inference_operator_status_writes_deferred_total counter\n"
                      "inference_operator_status_writes_deferred_total %llu\n",
                   RC_MESSAGE_WRITE_MIN_S,
                   (unsigned long long)atomic_load(&c->ctx.status_deferred));
    if (c->leader) {
        struct rc_leader_stats ls;
        rc_leader_stats(c->leader, &ls);
        metrics_printf(b, "# HELP leader_election_master_status 1 when this replica "
                          "holds the Lease.\n# TYPE leader_election_master_status gauge\n"
                          "leader_election_master_status{name=\"%s\"} %d\n"
                          "# TYPE inference_operator_leader_transitions_total counter\n"
                          "inference_operator_leader_transitions_total %llu\n",
                       c->opts.leader.name, rc_controller_leading(c) ? 1 : 0,
                       (unsigned long long)ls.transitions);
    }
    metrics_printf(b, "# TYPE inference_operator_fenced_writes_total counter\n"
                      "inference_operator_fenced_writes_total %llu\n",
                   (unsigned long long)atomic_load(&c->ctx.fenced));
    struct kube_client_stats ks;
    kube_client_stats(c->client, &ks);
    metrics_printf(b, "# TYPE rest_client_requests_total counter\n");
    for (int v = 0; v < 6; v++)
        for (int k = 0; k < 6; k++)
            if (ks.requests[v][k])
                metrics_printf(b, "rest_client_requests_total{method=\"%s\",code=\"%s\"} "
                                  "%llu\n", kube_verb_name(v), kube_code_name(k),
                               (unsigned long long)ks.requests[v][k]);
    metrics_printf(b, "# TYPE inference_operator_events_total counter\n"
                      "inference_operator_events_total{result=\"sent\"} %llu\n"
                      "inference_operator_events_total{result=\"suppressed\"} %llu\n"
                      "inference_operator_events_total{result=\"failed\"} %llu\n"
                      "inference_operator_events_total{result=\"dropped\"} %llu\n"
                      "inference_operator_events_total{result=\"fenced\"} %llu\n"
                      "inference_operator_events_total{result=\"throttled\"} %llu\n",
                   (unsigned long long)atomic_load(&c->events.sent),
                   (unsigned long long)atomic_load(&c->events.suppressed),
                   (unsigned long long)atomic_load(&c->events.failed),
                   (unsigned long long)atomic_load(&c->events.dropped),
                   (unsigned long long)atomic_load(&c->events.fenced),
                   (unsigned long long)atomic_load(&c->events.throttled));
}

/* Start every watch (under watch_lock).  On failure the ones started
 * are stopped again. */
static int start_watches(struct rc_controller *c, char *err, size_t errlen)
{
    const char *ns = c->opts.watch_namespace;
    bool scoped = ns && *ns;
    char prefix[128] = "";
    if (scoped)
        snprintf(prefix, sizeof(prefix), "/namespaces/%s", ns);
    snprintf(c->paths[W_ISVC], sizeof(c->paths[0]), "/apis/%s%s/%s", ISVC_API_VERSION,
             prefix, ISVC_PLURAL);
    snprintf(c->paths[W_DEPLOY], sizeof(c->paths[0]), "/apis/apps/v1%s/deployments",
             prefix);
    snprintf(c->paths[W_SERVICE], sizeof(c->paths[0]), "/api/v1%s/services", prefix);
    snprintf(c->paths[W_POD], sizeof(c->paths[0]), "/api/v1%s/pods", prefix);
    struct kube_watch_handlers h[W_COUNT] = {
        rc_cache_isvc_handlers(&c->cache),
        rc_cache_deploy_handlers(&c->cache),
        rc_cache_service_handlers(&c->cache),
        rc_pods_handlers(&c->pods),
    };
    static const char *const names[W_COUNT] = { "inferenceservices", "deployments",
                                                "services", "pods" };
    static const char *const selectors[W_COUNT] = { NULL, MANAGED_SELECTOR,
                                                    MANAGED_SELECTOR, POD_SELECTOR };
    for (int i = 0; i < W_COUNT; i++) {
        struct kube_watch_opts wo = {
            .name = names[i],
            .path = c->paths[i],
            .label_selector = selectors[i],
            .page_size = RC_LIST_PAGE,
            .timeout_s = c->opts.watch_timeout_s,
        };
        if (kube_watch_start(c->client, &wo, &h[i], &c->watches[i], err, errlen) != 0) {
            for (int j = 0; j < i; j++) {
                kube_watch_stop(c->watches[j]);
                c->watches[j] = NULL;
            }
            c->watches[i] = NULL;
            return -1;
        }
    }
    atomic_fetch_add(&c->watch_starts, 1);
    return 0;
}

/* Stop every watch (under watch_lock). */
static void stop_watches(struct rc_controller *c)
{
    bool any = false;
    for (int i = 0; i < W_COUNT; i++) {
        if (c->watches[i]) {
            kube_watch_stop(c->watches[i]);
            c->watches[i] = NULL;
            any = true;
        }
    }
    if (any)
        atomic_fetch_add(&c->watch_stops, 1);
}

/*
 * A cold standby's watches follow leadership.  This thread, not the
 * election thread, starts and stops them: a list can take seconds and the
 * elector's callback must not delay a renewal.  After a step-down the
 * caches are emptied: the memory goes back, and a later win starts from
 * a fresh list rather than a stale view.
 */
static void *watcher_main(void *arg)
{
    struct rc_controller *c = arg;
    char err[512];
    pthread_mutex_lock(&c->stop_lock);
    while (!atomic_load(&c->stopping)) {
        bool want = atomic_load(&c->leading_now);
        pthread_mutex_unlock(&c->stop_lock);
        pthread_mutex_lock(&c->watch_lock);
        bool running = c->watches[0] != NULL;
        bool retry = false;
        if (want && !running) {
            if (start_watches(c, err, sizeof(err)) == 0) {
                log_info("leading: watches started (cold standby)");
            } else {
                log_error("leading but cannot start the watches; retrying",
                          LF_STR("reason", err));
                retry = true;
            }
        } else if (!want && running) {
            stop_watches(c);
            rc_cache_clear(&c->cache);
            rc_pods_clear(&c->pods);
            log_info("standing by: watches stopped, caches freed (cold standby)");
        }
        pthread_mutex_unlock(&c->watch_lock);
        pthread_mutex_lock(&c->stop_lock);
        if (atomic_load(&c->stopping))
            break;
        if (retry) {
            struct timespec until = mono_deadline_after_ms(RC_WATCH_RETRY_MS);
            pthread_cond_timedwait(&c->watch_cond, &c->stop_lock, &until);
        } else if (atomic_load(&c->leading_now) == want) {
            pthread_cond_wait(&c->watch_cond, &c->stop_lock);
        }
    }
    pthread_mutex_unlock(&c->stop_lock);
    return NULL;
}

/* The resync and watch threads wait with a timeout on these condition
 * variables: on CLOCK_MONOTONIC, so a wall-clock step can neither hold a
 * resync back for as long as the clock jumped nor fire it early.  A
 * default mutex cannot fail to initialise on Linux. */
static int sync_init(struct rc_controller *c)
{
    int rc = cond_init_monotonic(&c->stop_cond);
    if (rc != 0)
        return rc;
    if ((rc = cond_init_monotonic(&c->watch_cond)) != 0) {
        pthread_cond_destroy(&c->stop_cond);
        return rc;
    }
    pthread_mutex_init(&c->stop_lock, NULL);
    pthread_mutex_init(&c->watch_lock, NULL);
    pthread_mutex_init(&c->burst.lock, NULL);
    return 0;
}

static void sync_destroy(struct rc_controller *c)
{
    pthread_cond_destroy(&c->watch_cond);
    pthread_cond_destroy(&c->stop_cond);
    pthread_mutex_destroy(&c->watch_lock);
    pthread_mutex_destroy(&c->stop_lock);
    pthread_mutex_destroy(&c->burst.lock);
}

/* What rc_controller_start makes before its first goto fail, released by
 * its failure path and by rc_controller_stop alike. */
static void free_core(struct rc_controller *c)
{
    kube_client_free(c->client);
    rc_shapes_free();
    sync_destroy(c);
    free(c);
}

int rc_controller_start(const struct rc_controller_opts *o,
                        struct rc_controller **out, char *err, size_t errlen)
{
    struct rc_controller *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->opts = *o;
    int rc = sync_init(c);
    if (rc != 0) {
        snprintf(err, errlen, "cannot make the controller's condition variables: %s",
                 strerror(rc));
        free(c);
        return -1;
    }
    c->cold = o->leader_elect && !o->warm_standby;
    if (c->opts.workers == 0 || c->opts.workers > RC_WORKERS_MAX)
        c->opts.workers = RC_WORKERS_DEFAULT;
    if (c->opts.burst_workers > RC_BURST_WORKERS_MAX)
        c->opts.burst_workers = RC_BURST_WORKERS_MAX;
    if (rc_shapes_init(&c->opts.settings) != 0) {
        snprintf(err, errlen, "cannot build the Deployment shape: check --gpu-products");
        sync_destroy(c);
        free(c);
        return -1;
    }
    struct rc_queue_opts qo = { .max_keys = RC_QUEUE_MAX_KEYS,
                                .backoff_base_ms = o->backoff_base_ms,
                                .backoff_cap_ms = o->backoff_cap_ms };
    if (kube_client_new(o->kube, &o->client, &c->client, err, errlen) != 0)
        goto fail;
    if (rc_queue_new(&qo, &c->queue) != 0) {
        snprintf(err, errlen, "cannot create the work queue");
        goto fail;
    }
    if (rc_cache_init(&c->cache, enqueue, c) != 0) {
        snprintf(err, errlen, "cannot create the caches");
        goto fail;
    }
    c->cache.enqueue_urgent = enqueue_urgent;
    if (rc_pods_init(&c->pods, enqueue, c) != 0) {
        rc_cache_free(&c->cache);
        snprintf(err, errlen, "cannot create the pod cache");
        goto fail;
    }
    if (rc_throttle_init(&c->throttle) != 0) {
        rc_pods_free(&c->pods);
        rc_cache_free(&c->cache);
        snprintf(err, errlen, "cannot create the status write throttle");
        goto fail;
    }
    c->pods_init = true;
    rc_events_init(&c->events);
    rc_events_set_rate(&c->events, o->event_qps, o->event_burst);
    c->ctx = (struct rc_ctx){ .rules = o->rules, .settings = &c->opts.settings,
                              .cache = &c->cache, .events = &c->events,
                              .pods = &c->pods, .throttle = &c->throttle };
    if (o->leader_elect) {
        c->ctx.may_write = rc_controller_leading;
        c->ctx.may_write_arg = c;
        if (rc_leader_start(o->kube, &o->leader, on_leader_change, c, &c->leader, err,
                            errlen) != 0)
            goto fail_watches;
    }
    if (rc_events_start(&c->events, c->client, c->ctx.may_write, c->ctx.may_write_arg,
                        err, errlen) != 0)
        goto fail_watches;
    if (c->cold) {
        if (pthread_create(&c->watcher, NULL, watcher_main, c) != 0) {
            snprintf(err, errlen, "cannot start the watch thread");
            goto fail_watches;
        }
        c->watcher_started = true;
    } else {
        pthread_mutex_lock(&c->watch_lock);
        rc = start_watches(c, err, errlen);
        pthread_mutex_unlock(&c->watch_lock);
        if (rc != 0)
            goto fail_watches;
    }
    for (unsigned i = 0; i < c->opts.workers; i++) {
        if (pthread_create(&c->workers[i], NULL, worker_main, c) != 0) {
            snprintf(err, errlen, "cannot start worker %u", i);
            goto fail_workers;
        }
        c->started_workers++;
    }
    if (pthread_create(&c->resync, NULL, resync_main, c) == 0)
        c->resync_started = true;
    if (metrics_register(collect, c) != 0)
        log_warn("metrics registry full; reconciler metrics not exported");
    *out = c;
    return 0;

fail_workers:
fail_watches:
    rc_controller_stop(c);
    return -1;
fail:
    rc_queue_free(c->queue);
    free_core(c);
    return -1;
}

void rc_controller_stop(struct rc_controller *c)
{
    if (c == NULL)
        return;
    metrics_unregister(collect, c);
    pthread_mutex_lock(&c->stop_lock);
    atomic_store(&c->stopping, true);
    pthread_cond_broadcast(&c->stop_cond);
    pthread_cond_broadcast(&c->watch_cond);
    pthread_mutex_unlock(&c->stop_lock);
    if (c->resync_started)
        pthread_join(c->resync, NULL);
    if (c->watcher_started)
        pthread_join(c->watcher, NULL);
    rc_queue_shutdown(c->queue);
    for (unsigned i = 0; i < c->started_workers; i++)
        pthread_join(c->workers[i], NULL);
    burst_stop(c);
    /* Workers are drained, queued Events sent or dropped: nothing can be
     * written after the release. */
    rc_events_stop(&c->events);
    rc_leader_stop(c->leader);
    pthread_mutex_lock(&c->watch_lock);
    stop_watches(c);
    pthread_mutex_unlock(&c->watch_lock);
    rc_queue_free(c->queue);
    rc_cache_free(&c->cache);
    if (c->pods_init) {
        rc_pods_free(&c->pods);
        rc_throttle_free(&c->throttle);
    }
    rc_events_destroy(&c->events);
    free_core(c);
}
