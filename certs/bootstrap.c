/*
 * bootstrap.c — the self-signed bootstrap's passes against the API server
 * and its renewal thread.  See bootstrap.h.
 */
#include "bootstrap.h"

#include "base64.h"
#include "clock.h"
#include "kube_client.h"
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PATH_LEN 640
#define ERR_LEN 1024
#define TIME_TEXT_MAX 32
#define FIRST_BACKOFF_MIN_MS 500u
#define FIRST_BACKOFF_MAX_MS 30000u
#define FIRST_POLL_MS 200u
#define RENEW_BACKOFF_MIN_MS 1000u
#define JITTER_PERCENT 10u

#define SECRET_PATH "/api/v1/namespaces/%s/secrets/%s"
#define SECRETS_PATH "/api/v1/namespaces/%s/secrets"
#define WEBHOOKS_PATH "/apis/admissionregistration.k8s.io/v1/%s/%s"
#define CT_JSON "application/json"
#define CT_JSON_PATCH "application/json-patch+json"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void time_text(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "@%lld", (long long)t);
}

/* Frees a response that may have carried key material. */
static void resp_wipe_free(struct kube_response *r)
{
    if (r->body)
        explicit_bzero(r->body, r->len);
    kube_response_free(r);
}

/* kube_request with a size bound; 0 when an answer arrived. */
static int call(struct kube_conn *conn, const char *method, const char *path,
                const char *ct, const char *body, struct kube_response *r,
                char *err, size_t errlen)
{
    char cerr[ERR_LEN];
    memset(r, 0, sizeof *r);
    if (kube_request(conn, method, path, ct, body, body ? strlen(body) : 0, r,
                     cerr, sizeof cerr) != 0) {
        set_err(err, errlen, "%s", cerr);   /* names the method and URL */
        return -1;
    }
    if (r->len > CERTS_BOOTSTRAP_OBJ_MAX) {
        set_err(err, errlen, "%s %s: response of %zu bytes is larger than %u",
                method, path, r->len, CERTS_BOOTSTRAP_OBJ_MAX);
        resp_wipe_free(r);
        return -1;
    }
    return 0;
}

static void status_err(const char *method, const char *path,
                       const struct kube_response *r, char *err, size_t errlen)
{
    set_err(err, errlen, "%s %s: HTTP %ld %s: %s", method, path, r->status,
            r->reason[0] ? r->reason : "", r->message);
}

/* ---- the Secret -------------------------------------------------------- */

struct pass {
    struct kube_conn *conn;
    const struct certs_bootstrap_opts *o;       /* resolved */
    const struct certs_bootstrap_names *names;
    time_t now;
    struct certs_bootstrap_result *res;
};

/* Mints for action and sends the Secret (POST when existing is NULL, else
 * PUT of existing with new data).  Returns 0 and *out on success, 1 when
 * the race was lost (409: read again), -1 with err. */
static int write_secret(struct pass *p, enum certs_bootstrap_action action,
                        const struct certs_bootstrap_material *old,
                        const char *existing, size_t existing_len,
                        struct certs_bootstrap_material *out, char *err,
                        size_t errlen)
{
    char path[PATH_LEN];
    const char *method = existing ? "PUT" : "POST";
    if (existing)
        snprintf(path, sizeof path, SECRET_PATH, p->o->namespace_,
                 p->o->secret_name);
    else
        snprintf(path, sizeof path, SECRETS_PATH, p->o->namespace_);
    if (certs_bootstrap_issue(action, old, p->names, p->now,
                              p->o->validity_days, out, err, errlen) != 0)
        return -1;
    char *body = certs_bootstrap_secret_json(out, p->o->namespace_,
                                             p->o->secret_name, existing,
                                             existing_len, err, errlen);
    if (body == NULL) {
        certs_bootstrap_material_free(out);
        return -1;
    }
    struct kube_response r;
    int rc = call(p->conn, method, path, CT_JSON, body, &r, err, errlen);
    explicit_bzero(body, strlen(body));
    free(body);
    if (rc != 0) {
        certs_bootstrap_material_free(out);
        return -1;
    }
    long want = existing ? 200 : 201;
    if (r.status == want) {
        rc = 0;
    } else if (r.status == 409) {
        rc = 1;
    } else {
        status_err(method, path, &r, err, errlen);
        rc = -1;
    }
    resp_wipe_free(&r);
    if (rc != 0)
        certs_bootstrap_material_free(out);
    return rc;
}

static void log_written(const struct pass *p, enum certs_bootstrap_action a,
                        const char *why)
{
    char ns_name[PATH_LEN], due[CERTS_BOOTSTRAP_WHY_MAX];
    snprintf(ns_name, sizeof ns_name, "%s/%s", p->o->namespace_,
             p->o->secret_name);
    snprintf(due, sizeof due, "tls.crt expires within %u days",
             p->o->renew_before_days);
    log_info("webhook certificate secret written",
             LF_STR("secret", ns_name),
             LF_STR("action", certs_bootstrap_action_name(a)),
             LF_STR("reason", why[0] ? why : due),
             LF_INT("validityDays", p->o->validity_days));
}

/* Steps 1 and 2: *m ends up holding the pair the Secret now holds. */
static int sync_secret(struct pass *p, struct certs_bootstrap_material *m,
                       char *err, size_t errlen)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, SECRET_PATH, p->o->namespace_,
             p->o->secret_name);
    for (int attempt = 0; attempt < CERTS_BOOTSTRAP_CONFLICT_TRIES; attempt++) {
        struct kube_response r;
        if (call(p->conn, "GET", path, NULL, NULL, &r, err, errlen) != 0)
            return -1;
        if (r.status == 404) {
            resp_wipe_free(&r);
            p->res->action = CERTS_BOOTSTRAP_CREATE;
            int rc = write_secret(p, CERTS_BOOTSTRAP_CREATE, NULL, NULL, 0, m,
                                  err, errlen);
            if (rc == 0) {
                p->res->secret_written = true;
                log_written(p, CERTS_BOOTSTRAP_CREATE, "no secret yet");
                return 0;
            }
            if (rc < 0)
                return -1;
            /* AlreadyExists: another replica won; use theirs. */
            p->res->conflicts++;
            continue;
        }
        if (r.status != 200) {
            status_err("GET", path, &r, err, errlen);
            resp_wipe_free(&r);
            return -1;
        }
        struct certs_bootstrap_material have;
        struct certs_bootstrap_state st;
        char rv[CERTS_BOOTSTRAP_RV_MAX], why[CERTS_BOOTSTRAP_WHY_MAX];
        if (certs_bootstrap_secret_parse(r.body, r.len, &have, rv, why,
                                         sizeof why, err, errlen) != 0) {
            resp_wipe_free(&r);
            return -1;
        }
        certs_bootstrap_examine(&have, p->names, p->now, &st);
        enum certs_bootstrap_action a = certs_bootstrap_decide(
            &st, p->now, p->o->validity_days, p->o->renew_before_days);
        p->res->action = a;
        if (a == CERTS_BOOTSTRAP_KEEP) {
            resp_wipe_free(&r);
            *m = have;
            return 0;
        }
        int rc = write_secret(p, a, &have, r.body, r.len, m, err, errlen);
        resp_wipe_free(&r);
        certs_bootstrap_material_free(&have);
        if (rc == 0) {
            p->res->secret_written = true;
            log_written(p, a, st.why);
            return 0;
        }
        if (rc < 0)
            return -1;
        p->res->conflicts++;   /* someone else renewed: look again */
    }
    set_err(err, errlen, "Secret %s/%s: lost %d races in a row to other "
            "writers", p->o->namespace_, p->o->secret_name,
            CERTS_BOOTSTRAP_CONFLICT_TRIES);
    return -1;
}

/* ---- the caBundle ------------------------------------------------------ */

static int inject(struct pass *p, const char *resource, const char *kind,
                  const char *name, const char *ca_b64, char *err,
                  size_t errlen)
{
    char path[PATH_LEN];
    snprintf(path, sizeof path, WEBHOOKS_PATH, resource, name);
    for (int attempt = 0; attempt < CERTS_BOOTSTRAP_CONFLICT_TRIES; attempt++) {
        struct kube_response r;
        if (call(p->conn, "GET", path, NULL, NULL, &r, err, errlen) != 0)
            return -1;
        if (r.status == 404) {
            set_err(err, errlen, "%s %s does not exist (install the chart's "
                    "webhook configurations, or clear the name)", kind, name);
            kube_response_free(&r);
            return -1;
        }
        if (r.status != 200) {
            status_err("GET", path, &r, err, errlen);
            kube_response_free(&r);
            return -1;
        }
        char *patch = NULL;
        unsigned n = 0;
        int rc = certs_bootstrap_cabundle_patch(r.body, r.len, ca_b64, &patch,
                                                &n, err, errlen);
        kube_response_free(&r);
        if (rc != 0)
            return -1;
        if (patch == NULL)
            return 0;
        rc = call(p->conn, "PATCH", path, CT_JSON_PATCH, patch, &r, err,
                  errlen);
        free(patch);
        if (rc != 0)
            return -1;
        long st = r.status;
        if (st == 200) {
            kube_response_free(&r);
            p->res->webhooks_patched += n;
            log_info("webhook caBundle injected", LF_STR("kind", kind),
                     LF_STR("name", name), LF_INT("webhooks", n));
            return 0;
        }
        /* 422: the resourceVersion test failed (the object changed since
         * the GET); 409: a conflict.  Both: read again. */
        if (st != 422 && st != 409) {
            status_err("PATCH", path, &r, err, errlen);
            kube_response_free(&r);
            return -1;
        }
        status_err("PATCH", path, &r, err, errlen);
        kube_response_free(&r);
        p->res->conflicts++;
    }
    size_t n = strlen(err);
    if (n + 1 < errlen)
        snprintf(err + n, errlen - n, " (after %d attempts)",
                 CERTS_BOOTSTRAP_CONFLICT_TRIES);
    return -1;
}

/* True when dir already holds a ca.crt other than b: writing b's leaf
 * there would switch this replica to a CA the API server may not trust
 * yet. */
static bool ca_switch(const char *dir, const struct certs_bootstrap_blob *b)
{
    return certs_bootstrap_file_match(dir, CERTS_CA_FILE, b) == CERTS_FILE_DIFFERS;
}

/* ---- one pass ---------------------------------------------------------- */

int certs_bootstrap_run(struct kube_conn *conn,
                        const struct certs_bootstrap_opts *opts,
                        struct certs_bootstrap_result *res, char *err,
                        size_t errlen)
{
    struct certs_bootstrap_opts o;
    struct certs_bootstrap_names names;
    struct certs_bootstrap_result scratch;
    struct certs_bootstrap_material m = {0};
    char ierr[ERR_LEN] = "";
    if (res == NULL)
        res = &scratch;
    memset(res, 0, sizeof *res);
    if (conn == NULL) {
        set_err(err, errlen, "no API connection");
        return -1;
    }
    if (certs_bootstrap_opts_resolve(opts, &o, err, errlen) != 0 ||
        certs_bootstrap_names_make(o.service_name, o.namespace_,
                                   o.cluster_domain, &names, err,
                                   errlen) != 0)
        return -1;
    struct pass p = {conn, &o, &names, time(NULL), res};
    if (sync_secret(&p, &m, err, errlen) != 0)
        return -1;

    int rc = -1;
    struct certs_bootstrap_state st;
    certs_bootstrap_examine(&m, &names, p.now, &st);
    if (!st.leaf_ok) {
        /* Only when another writer stored a pair we cannot serve and won
         * every race: the next pass renews it. */
        set_err(err, errlen, "Secret %s/%s holds no usable pair: %s",
                o.namespace_, o.secret_name, st.why);
        goto done;
    }
    res->leaf_not_after = st.leaf_not_after;

    char *ca_b64 = b64_encode(m.item[CERTS_BOOTSTRAP_CA_CRT].data,
                              m.item[CERTS_BOOTSTRAP_CA_CRT].len);
    if (ca_b64 == NULL) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    int irc = 0;
    if (o.validating_config)
        irc = inject(&p, "validatingwebhookconfigurations",
                     "ValidatingWebhookConfiguration", o.validating_config,
                     ca_b64, ierr, sizeof ierr);
    if (irc == 0 && o.mutating_config)
        irc = inject(&p, "mutatingwebhookconfigurations",
                     "MutatingWebhookConfiguration", o.mutating_config,
                     ca_b64, ierr, sizeof ierr);
    free(ca_b64);

    if (irc != 0 && ca_switch(o.cert_dir, &m.item[CERTS_BOOTSTRAP_CA_CRT])) {
        log_warn("webhook certificate: keeping the old pair until the new "
                 "CA is in the caBundle", LF_STR("dir", o.cert_dir),
                 LF_STR("reason", ierr));
    } else if (certs_bootstrap_write_files(o.cert_dir, &m, &res->files_written,
                                           err, errlen) != 0) {
        goto done;
    } else if (res->files_written) {
        char when[TIME_TEXT_MAX];
        time_text(st.leaf_not_after, when, sizeof when);
        log_info("webhook certificate files updated", LF_STR("dir", o.cert_dir),
                 LF_STR("notAfter", when));
    }
    if (irc != 0) {
        set_err(err, errlen, "%s", ierr);
        goto done;
    }
    rc = 0;
done:
    certs_bootstrap_material_free(&m);
    return rc;
}

int certs_bootstrap_once(struct kube_conn *conn,
                         const struct certs_bootstrap_opts *o, char *err,
                         size_t errlen)
{
    return certs_bootstrap_run(conn, o, NULL, err, errlen);
}

/* ---- timing helpers ---------------------------------------------------- */

static uint64_t seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
    }
    return s ? s : 0x9E3779B97F4A7C15ULL;
}

/* xorshift64*: jitter only needs to differ between replicas. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [cap/2, cap]. */
static uint64_t half_jitter(uint64_t cap, uint64_t *rng)
{
    return cap / 2 + next_rand(rng) % (cap / 2 + 1);
}

static uint64_t backoff_ms(unsigned failures, uint64_t min, uint64_t max,
                           uint64_t *rng)
{
    unsigned shift = failures > 0 ? failures - 1 : 0;
    uint64_t cap = shift >= 20 ? max : min << shift;
    if (cap > max)
        cap = max;
    return half_jitter(cap, rng);
}

int certs_bootstrap_first_pass(struct kube_conn *conn,
                               const struct certs_bootstrap_opts *o,
                               unsigned timeout_s,
                               bool (*should_stop)(void *arg), void *arg,
                               char *err, size_t errlen)
{
    struct certs_bootstrap_opts resolved;
    if (certs_bootstrap_opts_resolve(o, &resolved, err, errlen) != 0)
        return -1;   /* a configuration error does not get better */
    uint64_t rng = seed();
    uint64_t deadline = timeout_s ? mono_now_ms() + (uint64_t)timeout_s * 1000u : 0;
    for (unsigned failures = 0;; ) {
        struct certs_bootstrap_result res;
        if (certs_bootstrap_run(conn, o, &res, err, errlen) == 0) {
            if (failures)
                log_info("webhook certificate bootstrap succeeded",
                         LF_INT("attempts", failures + 1));
            return 0;
        }
        failures++;
        uint64_t wait = backoff_ms(failures, FIRST_BACKOFF_MIN_MS,
                                   FIRST_BACKOFF_MAX_MS, &rng);
        log_warn("webhook certificate bootstrap failed; retrying",
                 LF_STR("reason", err), LF_INT("attempt", failures),
                 LF_INT("retryMs", wait));
        uint64_t until = mono_now_ms() + wait;
        for (;;) {
            uint64_t now = mono_now_ms();
            if (deadline && now >= deadline)
                return -1;
            if (should_stop && should_stop(arg))
                return -1;
            if (now >= until)
                break;
            uint64_t step = until - now;
            if (step > FIRST_POLL_MS)
                step = FIRST_POLL_MS;
            if (deadline && deadline - now < step)
                step = deadline - now;
            sleep_ms(step);
        }
    }
}

/* ---- the renewal thread ------------------------------------------------ */

enum { S_NS, S_SECRET, S_SERVICE, S_VWC, S_MWC, S_DIR, S_DOMAIN, S_COUNT };

struct certs_bootstrap {
    struct kube_conn *conn;            /* the thread's only */
    struct certs_bootstrap_opts o;     /* resolved; strings in strs */
    char *strs[S_COUNT];
    uint64_t rng;

    pthread_mutex_t mu;                /* guards stop and stats */
    pthread_cond_t cv;
    bool stop;
    struct certs_bootstrap_stats stats;
    pthread_t thread;
};

/* Sleeps ms unless stopped first; true when stopping. */
static bool wait_or_stop(struct certs_bootstrap *b, uint64_t ms)
{
    struct timespec until = mono_deadline_after_ms(ms);
    pthread_mutex_lock(&b->mu);
    while (!b->stop && pthread_cond_timedwait(&b->cv, &b->mu, &until) == 0)
        ;
    bool stop = b->stop;
    pthread_mutex_unlock(&b->mu);
    return stop;
}

static void *renew_main(void *arg)
{
    struct certs_bootstrap *b = arg;
    uint64_t interval = (uint64_t)b->o.interval_s * 1000u;
    unsigned failures = 0;
    for (;;) {
        uint64_t wait;
        if (failures == 0) {
            uint64_t spread = interval * JITTER_PERCENT / 100u;
            wait = interval - spread + next_rand(&b->rng) % (2 * spread + 1);
        } else {
            wait = backoff_ms(failures, RENEW_BACKOFF_MIN_MS, interval,
                              &b->rng);
        }
        if (wait_or_stop(b, wait))
            break;
        struct certs_bootstrap_result res;
        char err[ERR_LEN];
        int rc = certs_bootstrap_run(b->conn, &b->o, &res, err, sizeof err);
        pthread_mutex_lock(&b->mu);
        if (rc == 0) {
            b->stats.passes_ok++;
            b->stats.leaf_not_after = res.leaf_not_after;
        } else {
            b->stats.passes_failed++;
        }
        b->stats.secret_writes += res.secret_written;
        b->stats.file_writes += res.files_written;
        b->stats.webhooks_patched += res.webhooks_patched;
        pthread_mutex_unlock(&b->mu);
        if (rc == 0) {
            failures = 0;
            log_debug("webhook certificate checked",
                      LF_STR("action", certs_bootstrap_action_name(res.action)));
        } else {
            failures++;
            log_warn("webhook certificate check failed", LF_STR("reason", err),
                     LF_INT("failures", failures));
        }
    }
    return NULL;
}

static void free_bootstrap(struct certs_bootstrap *b)
{
    kube_conn_free(b->conn);
    for (int i = 0; i < S_COUNT; i++)
        free(b->strs[i]);
    free(b);
}

int certs_bootstrap_start(struct kube_client *c,
                          const struct certs_bootstrap_opts *o,
                          struct certs_bootstrap **out, char *err,
                          size_t errlen)
{
    struct certs_bootstrap_opts r;
    *out = NULL;
    if (c == NULL) {
        set_err(err, errlen, "no API client");
        return -1;
    }
    if (certs_bootstrap_opts_resolve(o, &r, err, errlen) != 0)
        return -1;
    struct certs_bootstrap *b = calloc(1, sizeof *b);
    if (b == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    const char *src[S_COUNT] = {r.namespace_, r.secret_name, r.service_name,
                                r.validating_config, r.mutating_config,
                                r.cert_dir, r.cluster_domain};
    for (int i = 0; i < S_COUNT; i++) {
        if (src[i] && (b->strs[i] = strdup(src[i])) == NULL) {
            set_err(err, errlen, "out of memory");
            free_bootstrap(b);
            return -1;
        }
    }
    b->o = r;
    b->o.namespace_ = b->strs[S_NS];
    b->o.secret_name = b->strs[S_SECRET];
    b->o.service_name = b->strs[S_SERVICE];
    b->o.validating_config = b->strs[S_VWC];
    b->o.mutating_config = b->strs[S_MWC];
    b->o.cert_dir = b->strs[S_DIR];
    b->o.cluster_domain = b->strs[S_DOMAIN];
    b->rng = seed();
    if ((b->conn = kube_conn_new(c)) == NULL) {
        set_err(err, errlen, "out of memory");
        free_bootstrap(b);
        return -1;
    }
    int rc = cond_init_monotonic(&b->cv);
    if (rc != 0) {
        set_err(err, errlen, "cannot make a condition variable: %s",
                strerror(rc));
        free_bootstrap(b);
        return -1;
    }
    pthread_mutex_init(&b->mu, NULL);
    if ((rc = pthread_create(&b->thread, NULL, renew_main, b)) != 0) {
        set_err(err, errlen, "cannot start the certificate thread: %s",
                strerror(rc));
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        free_bootstrap(b);
        return -1;
    }
    *out = b;
    return 0;
}

void certs_bootstrap_stop(struct certs_bootstrap *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free_bootstrap(b);
}

void certs_bootstrap_stats(struct certs_bootstrap *b,
                           struct certs_bootstrap_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    pthread_mutex_unlock(&b->mu);
}
