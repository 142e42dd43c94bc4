/*
 * test_kube_live.c — kube_client and kube_watch against a real
 * kube-apiserver (tests/cluster).  tests/kube/run.sh starts the control
 * plane and passes it in:
 *
 *   IO_KUBE_SERVER  https://127.0.0.1:PORT
 *   IO_KUBE_CA      CA certificate file
 *   IO_KUBE_CERT    admin client certificate (O=system:masters)
 *   IO_KUBE_KEY     its key
 *
 * Without IO_KUBE_SERVER every test is skipped.  Each test works in a
 * fresh namespace (nothing is ever garbage collected here).
 */
#include <criterion/criterion.h>

#include "kube_client.h"
#include "kube_watch.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ERR_MAX 1024
#define PATH_LEN 512
#define BODY_LEN 1024
#define NS_LEN 64
#define WAIT_SYNC_S 60
#define WAIT_EVENT_S 10
#define STOP_BOUND_S 2.5

/* ---- helpers ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void need_cluster(void)
{
    if (!getenv("IO_KUBE_SERVER"))
        cr_skip_test("IO_KUBE_SERVER not set: run tests/kube/run.sh");
}

static void fill_config(struct kube_config *cfg, bool with_cert)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->server, sizeof cfg->server, "%s", getenv("IO_KUBE_SERVER"));
    snprintf(cfg->ca_file, sizeof cfg->ca_file, "%s", getenv("IO_KUBE_CA"));
    if (with_cert) {
        snprintf(cfg->cert_file, sizeof cfg->cert_file, "%s", getenv("IO_KUBE_CERT"));
        snprintf(cfg->key_file, sizeof cfg->key_file, "%s", getenv("IO_KUBE_KEY"));
    }
}

static struct kube_client *new_client(double qps, unsigned burst)
{
    need_cluster();
    struct kube_config cfg;
    fill_config(&cfg, true);
    struct kube_client_opts o;
    kube_client_opts_init(&o);
    o.qps = qps;
    o.burst = burst;
    struct kube_client *c;
    char err[ERR_MAX];
    cr_assert_eq(kube_client_new(&cfg, &o, &c, err, sizeof err), 0, "%s", err);
    return c;
}

/* A request that must get an HTTP answer; returns the status. */
static long req(struct kube_conn *k, const char *method, const char *path,
                const char *ct, const char *body, struct kube_response *r)
{
    char err[ERR_MAX];
    int rc = kube_request(k, method, path, ct, body, body ? strlen(body) : 0, r,
                          err, sizeof err);
    cr_assert_eq(rc, 0, "%s %s: %s", method, path, err);
    return r->status;
}

static long req_status(struct kube_conn *k, const char *method, const char *path,
                       const char *ct, const char *body)
{
    struct kube_response r;
    long st = req(k, method, path, ct, body, &r);
    kube_response_free(&r);
    return st;
}

static void fresh_namespace(struct kube_conn *k, char *ns, size_t nslen)
{
    snprintf(ns, nslen, "io-kube-%ld-%ld", (long)getpid(), (long)(now_s() * 1000) % 100000);
    char body[BODY_LEN];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
    cr_assert_eq(req_status(k, "POST", "/api/v1/namespaces", "application/json", body), 201);
}

static void create_cm(struct kube_conn *k, const char *ns, const char *name,
                      const char *label, long want)
{
    char path[PATH_LEN], body[BODY_LEN];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps", ns);
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
             "\"labels\":{\"io-test\":\"%s\"}},\"data\":{\"k\":\"v\"}}", name, label);
    cr_assert_eq(req_status(k, "POST", path, "application/json", body), want,
                 "create configmap %s", name);
}

/* ---- client ------------------------------------------------------------- */

#define REUSE_REQUESTS 50

Test(live, version_and_connection_reuse)
{
    struct kube_client *c = new_client(1000, 1000);
    struct kube_conn *k = kube_conn_new(c);
    struct kube_response r;
    cr_assert_eq(req(k, "GET", "/version", NULL, NULL, &r), 200);
    cJSON *v = cJSON_ParseWithLength(r.body, r.len);
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(v, "gitVersion")), "%s", r.body);
    cr_log_info("server %s", cJSON_GetObjectItem(v, "gitVersion")->valuestring);
    cJSON_Delete(v);
    kube_response_free(&r);
    double t0 = now_s();
    for (int i = 0; i < REUSE_REQUESTS; i++)
        cr_assert_eq(req_status(k, "GET", "/version", NULL, NULL), 200);
    double per = (now_s() - t0) / REUSE_REQUESTS * 1e3;
    cr_assert_eq(kube_conn_connects(k), 1, "connections: %ld", kube_conn_connects(k));
    cr_assert(kube_conn_http_version(k) == 20 || kube_conn_http_version(k) == 11);
    fprintf(stderr, "[live] %d GET /version on %ld connection(s), HTTP/%.1f, %.2f ms each\n",
            REUSE_REQUESTS + 1, kube_conn_connects(k), kube_conn_http_version(k) / 10.0, per);
    struct kube_client_stats s;
    kube_client_stats(c, &s);
    cr_assert_eq(s.requests[KUBE_VERB_GET][KUBE_CODE_2XX], REUSE_REQUESTS + 1);
    kube_conn_free(k);
    kube_client_free(c);
}

Test(live, configmap_create_get_conflict_notfound)
{
    struct kube_client *c = new_client(1000, 1000);
    struct kube_conn *k = kube_conn_new(c);
    char ns[NS_LEN], path[PATH_LEN];
    fresh_namespace(k, ns, sizeof ns);
    create_cm(k, ns, "one", "x", 201);

    struct kube_response r;
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/one", ns);
    cr_assert_eq(req(k, "GET", path, NULL, NULL, &r), 200);
    cr_assert_not_null(strstr(r.body, "\"k\":\"v\""));
    cr_assert_eq(r.reason[0], '\0');
    kube_response_free(&r);

    /* 409 from a second create. */
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps", ns);
    cr_assert_eq(req(k, "POST", path, "application/json",
                     "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"one\"}}",
                     &r), 409);
    cr_assert_str_eq(r.reason, "AlreadyExists");
    cr_assert_not_null(strstr(r.message, "\"one\" already exists"), "%s", r.message);
    kube_response_free(&r);

    /* 409 Conflict from a stale resourceVersion. */
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/one", ns);
    cr_assert_eq(req(k, "PUT", path, "application/json",
                     "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"one\","
                     "\"resourceVersion\":\"1\"},\"data\":{\"k\":\"w\"}}", &r), 409);
    cr_assert_str_eq(r.reason, "Conflict");
    kube_response_free(&r);

    /* 404 for a missing object, 404 for a path that is not an API. */
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/missing", ns);
    cr_assert_eq(req(k, "GET", path, NULL, NULL, &r), 404);
    cr_assert_str_eq(r.reason, "NotFound");
    cr_assert_not_null(strstr(r.message, "\"missing\" not found"), "%s", r.message);
    kube_response_free(&r);
    cr_assert_eq(req(k, "GET", "/no/such/thing", NULL, NULL, &r), 404);
    cr_assert_str_eq(r.reason, "NotFound");
    cr_assert_str_neq(r.message, "");
    kube_response_free(&r);

    /* 422 Invalid, with the field in the message. */
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps", ns);
    cr_assert_eq(req(k, "POST", path, "application/json",
                     "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"Bad_Name\"}}",
                     &r), 422);
    cr_assert_str_eq(r.reason, "Invalid");
    cr_assert_not_null(strstr(r.message, "metadata.name"), "%s", r.message);
    kube_response_free(&r);

    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/one", ns);
    cr_assert_eq(req_status(k, "DELETE", path, NULL, NULL), 200);
    cr_assert_eq(req_status(k, "GET", path, NULL, NULL), 404);

    struct kube_client_stats s;
    kube_client_stats(c, &s);
    cr_assert_eq(s.requests[KUBE_VERB_POST][KUBE_CODE_2XX], 2);
    cr_assert_eq(s.requests[KUBE_VERB_POST][KUBE_CODE_4XX], 2);
    cr_assert_eq(s.requests[KUBE_VERB_PUT][KUBE_CODE_4XX], 1);
    cr_assert_eq(s.requests[KUBE_VERB_DELETE][KUBE_CODE_2XX], 1);
    kube_conn_free(k);
    kube_client_free(c);
}

Test(live, server_side_apply)
{
    struct kube_client *c = new_client(1000, 1000);
    struct kube_conn *k = kube_conn_new(c);
    char ns[NS_LEN], path[PATH_LEN], body[BODY_LEN];
    fresh_namespace(k, ns, sizeof ns);
    snprintf(path, sizeof path,
             "/api/v1/namespaces/%s/configmaps/applied?fieldManager=x&force=true", ns);
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\","
             "\"namespace\":\"%s\"},\"data\":{\"a\":\"1\"}}", ns);
    struct kube_response r;
    cr_assert_eq(req(k, "PATCH", path, "application/apply-patch+yaml", body, &r), 201,
                 "%s: %s", r.reason, r.message);
    kube_response_free(&r);
    /* Same intent again: no change, 200. */
    cr_assert_eq(req(k, "PATCH", path, "application/apply-patch+yaml", body, &r), 200);
    cJSON *o = cJSON_ParseWithLength(r.body, r.len);
    const cJSON *mf = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "managedFields");
    cr_assert(cJSON_IsArray(mf));
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(mf, 0), "manager")->valuestring, "x");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "a")->valuestring, "1");
    cJSON_Delete(o);
    kube_response_free(&r);
    kube_conn_free(k);
    kube_client_free(c);
}

/* One client, four threads, a conn each: the share handle under load. */
#define THREADS 4
#define PER_THREAD 50

struct thread_arg {
    struct kube_client *c;
    int ok;
    long connects;
};

static void *hammer(void *p)
{
    struct thread_arg *a = p;
    struct kube_conn *k = kube_conn_new(a->c);
    char err[ERR_MAX];
    for (int i = 0; i < PER_THREAD; i++) {
        struct kube_response r;
        if (kube_request(k, "GET", "/api/v1/namespaces/default", NULL, NULL, 0, &r,
                         err, sizeof err) == 0 && r.status == 200)
            a->ok++;
        kube_response_free(&r);
    }
    a->connects = kube_conn_connects(k);
    kube_conn_free(k);
    return NULL;
}

Test(live, threads_share_one_client)
{
    struct kube_client *c = new_client(1000, 1000);
    pthread_t t[THREADS];
    struct thread_arg a[THREADS];
    double t0 = now_s();
    for (int i = 0; i < THREADS; i++) {
        a[i] = (struct thread_arg){.c = c};
        pthread_create(&t[i], NULL, hammer, &a[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].ok, PER_THREAD);
        cr_assert_eq(a[i].connects, 1);
    }
    fprintf(stderr, "[live] %d threads x %d GETs: %.0f ms\n", THREADS, PER_THREAD,
            (now_s() - t0) * 1e3);
    kube_client_free(c);
}

#define LIMITED_QPS 20
#define LIMITED_REQUESTS 11

Test(live, rate_limit_paces_requests)
{
    struct kube_client *c = new_client(LIMITED_QPS, 1);
    struct kube_conn *k = kube_conn_new(c);
    double t0 = now_s();
    for (int i = 0; i < LIMITED_REQUESTS; i++)
        cr_assert_eq(req_status(k, "GET", "/version", NULL, NULL), 200);
    double took = now_s() - t0;
    /* burst 1: the first goes at once, then one every 50 ms. */
    cr_assert_geq(took, (LIMITED_REQUESTS - 1) / (double)LIMITED_QPS * 0.95, "%.3f s", took);
    kube_conn_free(k);
    kube_client_free(c);
}

/* A service-account token in a file that is wrong at start and right by
 * the first request: the 401 makes the client re-read it and retry. */
Test(live, token_file_reread_on_401)
{
    struct kube_client *admin = new_client(1000, 1000);
    struct kube_conn *k = kube_conn_new(admin);
    char ns[NS_LEN], path[PATH_LEN];
    fresh_namespace(k, ns, sizeof ns);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/serviceaccounts", ns);
    cr_assert_eq(req_status(k, "POST", path, "application/json",
                            "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\","
                            "\"metadata\":{\"name\":\"op\"}}"), 201);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/serviceaccounts/op/token", ns);
    struct kube_response r;
    cr_assert_eq(req(k, "POST", path, "application/json",
                     "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
                     "\"spec\":{\"expirationSeconds\":600}}", &r), 201, "%s", r.message);
    cJSON *tr = cJSON_ParseWithLength(r.body, r.len);
    const cJSON *tok = cJSON_GetObjectItem(cJSON_GetObjectItem(tr, "status"), "token");
    cr_assert(cJSON_IsString(tok));
    kube_response_free(&r);

    char tokfile[] = "/tmp/io-kube-token.XXXXXX";
    int fd = mkstemp(tokfile);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "not-a-valid-token\n", 18), 18);
    close(fd);

    struct kube_config cfg;
    fill_config(&cfg, false);
    snprintf(cfg.token_file, sizeof cfg.token_file, "%s", tokfile);
    struct kube_client *c;
    char err[ERR_MAX];
    cr_assert_eq(kube_client_new(&cfg, NULL, &c, err, sizeof err), 0, "%s", err);
    FILE *f = fopen(tokfile, "w");
    fprintf(f, "%s\n", tok->valuestring);
    fclose(f);
    cJSON_Delete(tr);

    struct kube_conn *sk = kube_conn_new(c);
    cr_assert_eq(req_status(sk, "GET", "/version", NULL, NULL), 200);
    struct kube_client_stats s;
    kube_client_stats(c, &s);
    cr_assert_eq(s.requests[KUBE_VERB_GET][KUBE_CODE_4XX], 1, "the first try got 401");
    cr_assert_eq(s.requests[KUBE_VERB_GET][KUBE_CODE_2XX], 1);
    /* Authenticated as the service account, which RBAC allows nothing. */
    cr_assert_eq(req(sk, "GET", "/api/v1/namespaces", NULL, NULL, &r), 403);
    cr_assert_str_eq(r.reason, "Forbidden");
    cr_assert_not_null(strstr(r.message, "system:serviceaccount:"), "%s", r.message);
    kube_response_free(&r);
    unlink(tokfile);
    kube_conn_free(sk);
    kube_client_free(c);
    kube_conn_free(k);
    kube_client_free(admin);
}

/* ---- streams -------------------------------------------------------------- */

struct stream_count {
    size_t bytes;
};

static int count_bytes(void *arg, const char *data, size_t len)
{
    (void)data;
    ((struct stream_count *)arg)->bytes += len;
    return 0;
}

struct stream_arg {
    struct kube_conn *k;
    const char *path;
    unsigned idle_s;
    volatile bool stop;
    int rc;
    long status;
    char err[ERR_MAX];
    double ended;
    struct stream_count n;
};

static void *stream_thread(void *p)
{
    struct stream_arg *a = p;
    a->rc = kube_stream(a->k, a->path, a->idle_s, count_bytes, &a->n, &a->stop,
                        &a->status, a->err, sizeof a->err);
    a->ended = now_s();
    return NULL;
}

Test(live, stream_stops_promptly)
{
    struct kube_client *c = new_client(1000, 1000);
    struct kube_conn *k = kube_conn_new(c);
    char ns[NS_LEN], path[PATH_LEN];
    fresh_namespace(k, ns, sizeof ns);
    snprintf(path, sizeof path,
             "/api/v1/namespaces/%s/configmaps?watch=1&timeoutSeconds=120", ns);
    struct kube_conn *sk = kube_conn_new(c);
    struct stream_arg a = {.k = sk, .path = path, .idle_s = 120};
    pthread_t t;
    pthread_create(&t, NULL, stream_thread, &a);
    usleep(700 * 1000);
    create_cm(k, ns, "during", "x", 201);
    usleep(300 * 1000);
    double t0 = now_s();
    __atomic_store_n(&a.stop, true, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    double took = a.ended - t0;
    fprintf(stderr, "[live] kube_stream returned %.3f s after stop\n", took);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cr_assert_eq(a.status, 200);
    cr_assert_gt(a.n.bytes, 0, "the ADDED event arrived");
    cr_assert_lt(took, STOP_BOUND_S);
    struct kube_client_stats s;
    kube_client_stats(c, &s);
    cr_assert_eq(s.requests[KUBE_VERB_WATCH][KUBE_CODE_2XX], 1);
    kube_conn_free(sk);
    kube_conn_free(k);
    kube_client_free(c);
}

#define IDLE_S 2

/* No bookmarks asked for and nothing changes: silence, then -1. */
Test(live, stream_idle_timeout)
{
    struct kube_client *c = new_client(1000, 1000);
    struct kube_conn *k = kube_conn_new(c);
    char ns[NS_LEN], path[PATH_LEN];
    fresh_namespace(k, ns, sizeof ns);
    snprintf(path, sizeof path,
             "/api/v1/namespaces/%s/configmaps?watch=1&timeoutSeconds=60", ns);
    struct stream_arg a = {.k = k, .path = path, .idle_s = IDLE_S};
    double t0 = now_s();
    stream_thread(&a);
    double took = a.ended - t0;
    fprintf(stderr, "[live] idle stream gave up after %.2f s: %s\n", took, a.err);
    cr_assert_eq(a.rc, -1);
    cr_assert_not_null(strstr(a.err, "no data for 2 s"), "%s", a.err);
    cr_assert_geq(took, IDLE_S);
    cr_assert_lt(took, IDLE_S + 2.0);
    /* A connection presumed dead is not reused: over HTTP/2 the next
     * request would otherwise go down the same (maybe half-open) one. */
    long before = kube_conn_connects(k);
    cr_assert_eq(req_status(k, "GET", "/version", NULL, NULL), 200);
    cr_assert_eq(kube_conn_connects(k), before + 1,
                 "the request after an idle timeout reused the silent connection");
    kube_conn_free(k);
    kube_client_free(c);
}

/* ---- kube_watch ----------------------------------------------------------- */

#define NAME_LEN 64

struct cache {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int begins, ends;
    size_t listed;           /* objects since the last begin */
    size_t added, modified, deleted;
    char last_name[NAME_LEN];
    bool bad_item;
};

static void c_begin(void *arg)
{
    struct cache *c = arg;
    pthread_mutex_lock(&c->mu);
    c->begins++;
    c->listed = 0;
    pthread_mutex_unlock(&c->mu);
}

static void c_event(void *arg, enum kube_event type, const cJSON *obj)
{
    struct cache *c = arg;
    const cJSON *name = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "name");
    pthread_mutex_lock(&c->mu);
    if (!cJSON_IsString(name))
        c->bad_item = true;
    else
        snprintf(c->last_name, sizeof c->last_name, "%s", name->valuestring);
    if (c->ends < c->begins)         /* a list is running */
        c->listed++;
    else if (type == KUBE_EVENT_ADDED)
        c->added++;
    else if (type == KUBE_EVENT_MODIFIED)
        c->modified++;
    else
        c->deleted++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void c_end(void *arg)
{
    struct cache *c = arg;
    pthread_mutex_lock(&c->mu);
    c->ends++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Wait until *counter reaches want; false on timeout. */
static bool wait_count(struct cache *c, const size_t *counter, size_t want, int secs)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += secs;
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (*counter < want && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &until);
    bool ok = *counter >= want;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

#define WATCH_OBJECTS 1200
#define UNLABELLED 5

Test(live, watch_lists_pages_then_streams_events, .timeout = 240)
{
    struct kube_client *c = new_client(5000, 5000);
    struct kube_conn *k = kube_conn_new(c);
    char ns[NS_LEN], path[PATH_LEN], name[NAME_LEN];
    fresh_namespace(k, ns, sizeof ns);
    double t0 = now_s();
    for (int i = 0; i < WATCH_OBJECTS; i++) {
        snprintf(name, sizeof name, "cm-%04d", i);
        create_cm(k, ns, name, "watch", 201);
    }
    for (int i = 0; i < UNLABELLED; i++) {
        snprintf(name, sizeof name, "other-%d", i);
        create_cm(k, ns, name, "other", 201);
    }
    fprintf(stderr, "[live] created %d configmaps in %.2f s on %ld connection(s)\n",
            WATCH_OBJECTS + UNLABELLED, now_s() - t0, kube_conn_connects(k));

    struct cache cache = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct kube_watch_handlers h = {.arg = &cache, .on_list_begin = c_begin,
                                    .on_event = c_event, .on_list_end = c_end};
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps", ns);
    struct kube_watch_opts o = {.name = "configmaps", .path = path,
                                .label_selector = "io-test in (watch)",
                                .page_size = KUBE_WATCH_PAGE, .timeout_s = 60};
    struct kube_watch *w;
    char err[ERR_MAX];
    t0 = now_s();
    cr_assert_eq(kube_watch_start(c, &o, &h, &w, err, sizeof err), 0, "%s", err);
    /* synced is set after on_list_end returns (the cache owner sweeps
     * there first), so poll the flag itself. */
    while (!kube_watch_synced(w) && now_s() - t0 < WAIT_SYNC_S)
        usleep(1000);
    double list_s = now_s() - t0;
    cr_assert(kube_watch_synced(w), "not synced after %d s", WAIT_SYNC_S);
    cr_assert_eq(cache.begins, 1);
    cr_assert_eq(cache.listed, WATCH_OBJECTS, "listed %zu", cache.listed);
    cr_assert(!cache.bad_item);
    fprintf(stderr, "[live] listed %d objects (pages of %d) and synced in %.0f ms\n",
            WATCH_OBJECTS, KUBE_WATCH_PAGE, list_s * 1e3);

    create_cm(k, ns, "late", "watch", 201);
    cr_assert(wait_count(&cache, &cache.added, 1, WAIT_EVENT_S), "no ADDED event");
    cr_assert_str_eq(cache.last_name, "late");
    char body[BODY_LEN];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/late", ns);
    snprintf(body, sizeof body, "{\"data\":{\"k\":\"changed\"}}");
    cr_assert_eq(req_status(k, "PATCH", path, "application/merge-patch+json", body), 200);
    cr_assert(wait_count(&cache, &cache.modified, 1, WAIT_EVENT_S), "no MODIFIED event");
    cr_assert_eq(req_status(k, "DELETE", path, NULL, NULL), 200);
    cr_assert(wait_count(&cache, &cache.deleted, 1, WAIT_EVENT_S), "no DELETED event");
    /* An unlabelled object is filtered by the server. */
    create_cm(k, ns, "filtered", "other", 201);
    usleep(300 * 1000);
    cr_assert_eq(cache.added, 1);

    struct kube_watch_stats st;
    kube_watch_stats(w, &st);
    cr_assert(st.synced);
    cr_assert_eq(st.events, 3);
    cr_assert_eq(st.relists, 0);
    t0 = now_s();
    kube_watch_stop(w);
    double stop_s = now_s() - t0;
    fprintf(stderr, "[live] kube_watch_stop took %.3f s\n", stop_s);
    cr_assert_lt(stop_s, STOP_BOUND_S);
    kube_conn_free(k);
    kube_client_free(c);
}
