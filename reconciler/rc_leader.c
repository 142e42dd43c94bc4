/*
 * rc_leader.c — the election thread: drives rc_leader_sm with real time
 * and real requests on its own kube_client/kube_conn, keeps the fence.
 * See rc_leader.h.
 */
#include "rc_leader.h"

#include "clock.h"
#include "kname.h"
#include "kube_client.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define NAME_MAX_LEN KNAME_SUBDOMAIN_MAX
#define NS_MAX_LEN KNAME_LABEL_MAX
#define PATH_LEN 512
#define ERR_LEN 1024
#define HOST_LEN 65
/* Our own client: a few requests per retry period at most. */
#define LEADER_QPS 5.0
#define LEADER_BURST 10u

struct rc_leader {
    /* set before the thread starts, read-only afterwards */
    char name[NAME_MAX_LEN + 1], ns[NS_MAX_LEN + 1];
    char identity[RC_LEADER_ID_MAX];
    char lease_path[PATH_LEN], create_path[PATH_LEN];
    bool release_on_stop;
    unsigned retry_ms;
    rc_leader_fn fn;
    void *arg;
    struct kube_client *client;
    struct kube_conn *conn;        /* the election thread's only          */

    /* the fence and counters, read by any thread */
    _Atomic uint64_t valid_until_ms;
    _Atomic uint64_t transitions;

    pthread_mutex_t mu;            /* guards stop and holder              */
    pthread_cond_t cv;             /* signalled by rc_leader_stop         */
    bool stop;
    char holder[RC_LEASE_HOLDER_MAX];

    /* the election thread's own */
    pthread_t thread;
    struct rc_leader_sm sm;
    cJSON *obj;                    /* the Lease as last read or written   */
    unsigned failures;             /* requests failed in a row            */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void rc_leader_opts_init(struct rc_leader_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lease_ms = RC_LEADER_LEASE_MS_DEFAULT;
    o->renew_deadline_ms = RC_LEADER_RENEW_DEADLINE_MS_DEFAULT;
    o->retry_ms = RC_LEADER_RETRY_MS_DEFAULT;
    o->release_on_stop = true;
}

/* "<hostname>_<16 hex random>", as client-go users usually build it. */
static int default_identity(char *out, size_t cap, char *err, size_t errlen)
{
    char host[HOST_LEN];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    unsigned char rnd[8];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            set_err(err, errlen, "leader election: getrandom failed: %s", strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    int w = snprintf(out, cap, "%s_", host);
    for (size_t i = 0; i < sizeof rnd && w > 0 && (size_t)w + 2 < cap; i++)
        w += snprintf(out + w, cap - (size_t)w, "%02x", rnd[i]);
    return 0;
}

static int check_opts(const struct rc_leader_opts *o, char *err, size_t errlen)
{
    if (!kname_valid(o->name, NAME_MAX_LEN, true)) {
        set_err(err, errlen, "leader election: lease name \"%s\" is not a DNS subdomain",
                o->name ? o->name : "");
        return -1;
    }
    if (!kname_valid(o->namespace_, NS_MAX_LEN, false)) {
        set_err(err, errlen, "leader election: lease namespace \"%s\" is not a DNS label",
                o->namespace_ ? o->namespace_ : "");
        return -1;
    }
    if (o->identity && strlen(o->identity) >= RC_LEADER_ID_MAX) {
        set_err(err, errlen, "leader election: identity is longer than 255 bytes");
        return -1;
    }
    if (o->retry_ms == 0 || o->lease_ms < 1000 || o->lease_ms % 1000 != 0) {
        set_err(err, errlen, "leader election: retry period must be > 0 and the lease "
                "duration whole seconds ≥ 1 s");
        return -1;
    }
    if (o->lease_ms <= o->renew_deadline_ms) {
        set_err(err, errlen, "leader election: lease duration must be greater than "
                "the renew deadline");
        return -1;
    }
    /* client-go: renewDeadline > JitterFactor (1.2) × retryPeriod */
    if ((uint64_t)o->renew_deadline_ms * 10u <= (uint64_t)o->retry_ms * 12u) {
        set_err(err, errlen, "leader election: renew deadline must be greater than "
                "1.2 × the retry period");
        return -1;
    }
    return 0;
}

/* ---- the fence and stats ------------------------------------------------- */

bool rc_leader_leading(const struct rc_leader *l)
{
    uint64_t until = atomic_load_explicit(&l->valid_until_ms, memory_order_acquire);
    return until != 0 && mono_now_ms() < until;
}

void rc_leader_stats(struct rc_leader *l, struct rc_leader_stats *out)
{
    memset(out, 0, sizeof *out);
    out->leading = rc_leader_leading(l);
    out->transitions = atomic_load(&l->transitions);
    snprintf(out->identity, sizeof out->identity, "%s", l->identity);
    pthread_mutex_lock(&l->mu);
    snprintf(out->holder, sizeof out->holder, "%s", l->holder);
    pthread_mutex_unlock(&l->mu);
}

/* ---- the election thread ------------------------------------------------- */

static bool stopping(struct rc_leader *l)
{
    pthread_mutex_lock(&l->mu);
    bool s = l->stop;
    pthread_mutex_unlock(&l->mu);
    return s;
}

/* Sleep until the monotonic time wake_ms or a stop. */
static void sleep_until(struct rc_leader *l, uint64_t wake_ms)
{
    struct timespec ts = timespec_from_ms(wake_ms);
    pthread_mutex_lock(&l->mu);
    while (!l->stop && mono_now_ms() < wake_ms)
        if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&l->mu);
}

/* After every state machine input: move the fence first, then tell. */
static void apply(struct rc_leader *l, const struct rc_leader_step *st)
{
    atomic_store_explicit(&l->valid_until_ms, rc_leader_sm_valid_until(&l->sm),
                          memory_order_release);
    atomic_store(&l->transitions, l->sm.transitions);
    if (st->event == RC_LEADER_ELECTED) {
        log_info("became leader", LF_STR("lease", l->name), LF_STR("namespace", l->ns),
                 LF_STR("identity", l->identity),
                 LF_INT("leaseTransitions", l->sm.rec.transitions));
        if (l->fn)
            l->fn(l->arg, true);
    } else if (st->event == RC_LEADER_LOST) {
        log_warn("lost leadership", LF_STR("lease", l->name), LF_STR("namespace", l->ns),
                 LF_STR("identity", l->identity), LF_STR("reason", st->reason));
        if (l->fn)
            l->fn(l->arg, false);
    }
}

/* Log "leader changed" when the holder we see differs from the last one
 * (and keep it for rc_leader_stats). */
static void note_holder(struct rc_leader *l)
{
    if (!l->sm.have_record)
        return;
    const char *h = l->sm.rec.holder;
    pthread_mutex_lock(&l->mu);
    bool changed = strcmp(l->holder, h) != 0;
    if (changed)
        snprintf(l->holder, sizeof l->holder, "%s", h);
    pthread_mutex_unlock(&l->mu);
    if (!changed)
        return;
    if (h[0])
        log_info("leader changed", LF_STR("lease", l->name), LF_STR("namespace", l->ns),
                 LF_STR("leader", h), LF_BOOL("us", strcmp(h, l->identity) == 0));
    else
        log_info("no leader: the lease is free", LF_STR("lease", l->name),
                 LF_STR("namespace", l->ns));
}

/* Log a failed request: the first of a streak at warn, the rest at debug. */
static void failed(struct rc_leader *l, const char *op, long status, const char *why)
{
    if (l->failures++ == 0)
        log_warn("lease request failed", LF_STR("lease", l->name), LF_STR("namespace", l->ns),
                 LF_STR("op", op), LF_INT("status", status), LF_STR("error", why),
                 LF_BOOL("leading", l->sm.leading));
    else
        log_debug("lease request failed", LF_STR("op", op), LF_INT("status", status),
                  LF_STR("error", why), LF_INT("inARow", l->failures));
}

static void succeeded(struct rc_leader *l)
{
    if (l->failures)
        log_info("lease requests work again", LF_STR("lease", l->name),
                 LF_INT("failed", l->failures));
    l->failures = 0;
}

static enum rc_lease_result classify(long status)
{
    if (status >= 200 && status < 300)
        return RC_LEASE_OK;
    if (status == 404)
        return RC_LEASE_NOT_FOUND;
    if (status == 409)
        return RC_LEASE_CONFLICT;
    return RC_LEASE_FAILED;
}

/* Parse a response body into a record, keeping the object as the base of
 * the next write.  Returns 0 or -1. */
static int take_object(struct rc_leader *l, const char *body, struct rc_lease_record *rec,
                       char *err, size_t errlen)
{
    cJSON *o = cJSON_Parse(body);
    if (!o || rc_lease_parse(o, rec, err, errlen) != 0) {
        if (!o)
            set_err(err, errlen, "lease: response is not JSON");
        cJSON_Delete(o);
        return -1;
    }
    cJSON_Delete(l->obj);
    l->obj = o;
    return 0;
}

/* One request; *status 0 on a transport failure. */
static int request(struct rc_leader *l, const char *method, const char *path,
                   const char *body, struct kube_response *r, long *status,
                   char *err, size_t errlen)
{
    int rc = kube_request(l->conn, method, path, body ? "application/json" : NULL, body,
                          body ? strlen(body) : 0, r, err, errlen);
    *status = rc == 0 ? r->status : 0;
    if (rc == 0 && r->status >= 400)
        snprintf(err, errlen, "%ld %s: %s", r->status, r->reason, r->message);
    return rc;
}

/* Write the record the state machine wants for op; feed the outcome back. */
static struct rc_leader_step write_lease(struct rc_leader *l, enum rc_lease_op op)
{
    char now_micro[RC_LEASE_TIME_MAX], err[ERR_LEN] = "";
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    rc_lease_micro_time(wall, now_micro);

    struct rc_lease_record want, got;
    rc_leader_sm_record(&l->sm, op, now_micro, &want);
    char *body = rc_lease_body(op == RC_LEASE_CREATE ? NULL : l->obj, l->name, l->ns, &want);
    uint64_t sent = mono_now_ms();
    enum rc_lease_result res = RC_LEASE_FAILED;
    long status = 0;
    struct kube_response r = { 0 };
    bool have = false;

    if (!body) {
        snprintf(err, sizeof err, "out of memory");
    } else if (request(l, op == RC_LEASE_CREATE ? "POST" : "PUT",
                       op == RC_LEASE_CREATE ? l->create_path : l->lease_path, body, &r,
                       &status, err, sizeof err) == 0) {
        res = classify(r.status);
        if (res == RC_LEASE_OK) {
            if (take_object(l, r.body, &got, err, sizeof err) == 0) {
                have = true;
            } else {
                /* Written, but we cannot reuse the answer: what we sent is
                 * the record; the next renewal reads first (no rv). */
                log_warn("lease write answer unreadable", LF_STR("error", err));
                got = want;
                got.rv[0] = '\0';
                have = true;
            }
        }
        kube_response_free(&r);
    }
    free(body);
    uint64_t now = mono_now_ms();
    if (res == RC_LEASE_OK || res == RC_LEASE_CONFLICT)
        succeeded(l);
    if (res == RC_LEASE_FAILED || res == RC_LEASE_NOT_FOUND)
        failed(l, rc_lease_op_name(op), status, err);
    else if (res == RC_LEASE_CONFLICT)
        log_debug("lease write conflict", LF_STR("op", rc_lease_op_name(op)),
                  LF_STR("error", err));

    struct rc_leader_step st = rc_leader_sm_wrote(&l->sm, op, sent, now, res, have ? &got : NULL);
    apply(l, &st);
    note_holder(l);
    return st;
}

/* Read the Lease; returns the state machine's next step. */
static struct rc_leader_step read_lease(struct rc_leader *l)
{
    char err[ERR_LEN] = "";
    struct kube_response r = { 0 };
    struct rc_lease_record rec;
    enum rc_lease_result res = RC_LEASE_FAILED;
    long status = 0;

    if (request(l, "GET", l->lease_path, NULL, &r, &status, err, sizeof err) == 0) {
        res = classify(r.status);
        if (res == RC_LEASE_CONFLICT)
            res = RC_LEASE_FAILED;
        if (res == RC_LEASE_OK && take_object(l, r.body, &rec, err, sizeof err) != 0)
            res = RC_LEASE_FAILED;
        kube_response_free(&r);
    }
    uint64_t now = mono_now_ms();
    if (res == RC_LEASE_FAILED)
        failed(l, "get", status, err);
    else
        succeeded(l);
    struct rc_leader_step st = rc_leader_sm_observed(&l->sm, now, res,
                                                     res == RC_LEASE_OK ? &rec : NULL);
    apply(l, &st);
    note_holder(l);
    return st;
}

/* On stop: give the Lease up so a candidate need not wait for expiry.  A
 * stale resourceVersion gets one re-read, and we release only if the
 * Lease is still ours. */
static void release(struct rc_leader *l)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!l->sm.have_record || !l->sm.rec.rv[0] || attempt > 0) {
            char err[ERR_LEN] = "";
            struct kube_response r = { 0 };
            struct rc_lease_record rec;
            long status = 0;
            if (request(l, "GET", l->lease_path, NULL, &r, &status, err, sizeof err) != 0 ||
                r.status != 200 || take_object(l, r.body, &rec, err, sizeof err) != 0) {
                kube_response_free(&r);
                log_warn("lease not released", LF_STR("lease", l->name),
                         LF_STR("error", err));
                return;
            }
            kube_response_free(&r);
            if (strcmp(rec.holder, l->identity) != 0)
                return;                    /* not ours any more */
            l->sm.rec = rec;
            l->sm.have_record = true;
        }
        char now_micro[RC_LEASE_TIME_MAX], err[ERR_LEN] = "";
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        rc_lease_micro_time(wall, now_micro);
        struct rc_lease_record want;
        rc_leader_sm_record(&l->sm, RC_LEASE_RELEASE, now_micro, &want);
        char *body = rc_lease_body(l->obj, l->name, l->ns, &want);
        struct kube_response r = { 0 };
        long status = 0;
        if (body)
            request(l, "PUT", l->lease_path, body, &r, &status, err, sizeof err);
        else
            snprintf(err, sizeof err, "out of memory");
        kube_response_free(&r);
        free(body);
        if (status >= 200 && status < 300) {
            log_info("lease released", LF_STR("lease", l->name), LF_STR("namespace", l->ns),
                     LF_STR("identity", l->identity));
            return;
        }
        if (status != 409) {
            log_warn("lease not released", LF_STR("lease", l->name),
                     LF_STR("error", err));
            return;
        }
    }
}

static void *run(void *arg)
{
    struct rc_leader *l = arg;
    while (!stopping(l)) {
        struct rc_leader_step st = rc_leader_sm_poll(&l->sm, mono_now_ms());
        apply(l, &st);
        if (st.op == RC_LEASE_WAIT) {
            sleep_until(l, st.wake_ms);
            continue;
        }
        if (st.op == RC_LEASE_GET)
            st = read_lease(l);
        if (stopping(l))
            break;
        if (st.op == RC_LEASE_CREATE || st.op == RC_LEASE_ACQUIRE || st.op == RC_LEASE_RENEW)
            write_lease(l, st.op);
    }
    struct rc_leader_step st = rc_leader_sm_stop(&l->sm, mono_now_ms());
    apply(l, &st);
    if (st.op == RC_LEASE_RELEASE && l->release_on_stop)
        release(l);
    return NULL;
}

/* ---- start / stop --------------------------------------------------------- */

static void destroy(struct rc_leader *l)
{
    kube_conn_free(l->conn);
    kube_client_free(l->client);
    cJSON_Delete(l->obj);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int rc_leader_start(const struct kube_config *cfg, const struct rc_leader_opts *o,
                    rc_leader_fn fn, void *arg, struct rc_leader **out,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (check_opts(o, err, errlen) != 0)
        return -1;
    struct rc_leader *l = calloc(1, sizeof *l);
    if (!l) {
        set_err(err, errlen, "leader election: out of memory");
        return -1;
    }
    snprintf(l->name, sizeof l->name, "%s", o->name);
    snprintf(l->ns, sizeof l->ns, "%s", o->namespace_);
    if (o->identity && o->identity[0])
        snprintf(l->identity, sizeof l->identity, "%s", o->identity);
    else if (default_identity(l->identity, sizeof l->identity, err, errlen) != 0) {
        free(l);
        return -1;
    }
    snprintf(l->create_path, sizeof l->create_path,
             "/apis/coordination.k8s.io/v1/namespaces/%s/leases", l->ns);
    snprintf(l->lease_path, sizeof l->lease_path,
             "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", l->ns, l->name);
    l->release_on_stop = o->release_on_stop;
    l->retry_ms = o->retry_ms;
    l->fn = fn;
    l->arg = arg;
    atomic_init(&l->valid_until_ms, 0);
    atomic_init(&l->transitions, 0);

    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        set_err(err, errlen, "leader election: mutex init failed");
        return -1;
    }
    if (cond_init_monotonic(&l->cv) != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        set_err(err, errlen, "leader election: condition variable init failed");
        return -1;
    }

    /* Our own client: its rate limiter is not the workers', and a request
     * cannot outlast half the renew deadline. */
    struct kube_client_opts co;
    kube_client_opts_init(&co);
    co.qps = LEADER_QPS;
    co.burst = LEADER_BURST;
    co.timeout_ms = o->renew_deadline_ms / 2 > o->retry_ms ? o->renew_deadline_ms / 2 : o->retry_ms;
    if (co.connect_timeout_ms > co.timeout_ms)
        co.connect_timeout_ms = co.timeout_ms;
    char cerr[ERR_LEN];
    if (kube_client_new(cfg, &co, &l->client, cerr, sizeof cerr) != 0) {
        set_err(err, errlen, "leader election: %s", cerr);
        destroy(l);
        return -1;
    }
    l->conn = kube_conn_new(l->client);
    if (!l->conn) {
        set_err(err, errlen, "leader election: out of memory");
        destroy(l);
        return -1;
    }
    rc_leader_sm_init(&l->sm, l->identity, o->lease_ms, o->renew_deadline_ms, o->retry_ms,
                      mono_now_ms());
    int rc = pthread_create(&l->thread, NULL, run, l);
    if (rc != 0) {
        set_err(err, errlen, "leader election: cannot start thread: %s", strerror(rc));
        destroy(l);
        return -1;
    }
    log_info("leader election started", LF_STR("lease", l->name), LF_STR("namespace", l->ns),
             LF_STR("identity", l->identity), LF_INT("leaseMs", o->lease_ms),
             LF_INT("renewDeadlineMs", o->renew_deadline_ms), LF_INT("retryMs", o->retry_ms));
    *out = l;
    return 0;
}

void rc_leader_stop(struct rc_leader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    destroy(l);
}
