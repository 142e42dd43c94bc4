/*
 * test_kube_watch.c — kube_watch's state machine end to end against a
 * scripted fake API server (plain HTTP on loopback, one connection at a
 * time, "Connection: close"), for what a real server will not do on
 * demand: 410 on a watch, ERROR events, expired continue tokens, broken
 * and oversized lines, 500s, silence.  Also kube_request's headers, its
 * response cap and its timeout (suite kube_client_fake).
 */
#include <criterion/criterion.h>

#include "kube_client.h"
#include "kube_watch.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX 64
#define TARGET_MAX 512
#define HEAD_MAX 8192
#define ERR_MAX 1024
#define WAIT_S 15
#define STOP_BOUND_S 2.5

/* ---- fake API server ------------------------------------------------------ */

struct fake;
/* Answer request number n (0-based) for target on fd. */
typedef void (*respond_fn)(struct fake *f, int fd, int n, const char *target);

struct fake {
    int lfd;
    unsigned short port;
    pthread_t thread;
    atomic_bool stop;
    respond_fn respond;
    pthread_mutex_t mu;
    char targets[REQ_MAX][TARGET_MAX];
    double at[REQ_MAX];            /* when each request arrived */
    char last_head[HEAD_MAX];      /* request line and headers, last request */
    atomic_int nreq;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;  /* the client went away: the test decides what that means */
        p += k;
        n -= (size_t)k;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* A complete response with a body. */
static void reply(int fd, int status, const char *body)
{
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, strlen(body));
    send_str(fd, head);
    send_str(fd, body);
}

/* Start a close-delimited stream; the caller sends lines and returns. */
static void stream_head(int fd)
{
    send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Connection: close\r\n\r\n");
}

/* Hold the connection open, sending nothing, until the client closes it
 * or the fake stops. */
static void hang(struct fake *f, int fd)
{
    char b[256];
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0 && recv(fd, b, sizeof b, 0) <= 0)
            return;
    }
}

static void status_reply(int fd, int code, const char *reason)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
             "\"message\":\"scripted %d\",\"reason\":\"%s\",\"code\":%d}", code, reason, code);
    reply(fd, code, body);
}

static void serve_one(struct fake *f, int fd)
{
    char head[HEAD_MAX];
    size_t n = 0;
    while (n + 1 < sizeof head) {
        ssize_t k = recv(fd, head + n, sizeof head - 1 - n, 0);
        if (k <= 0)
            return;
        n += (size_t)k;
        head[n] = '\0';
        if (strstr(head, "\r\n\r\n"))
            break;
    }
    char method[16], target[TARGET_MAX];
    if (sscanf(head, "%15s %511s", method, target) != 2)
        return;
    int i = atomic_load(&f->nreq);
    if (i < REQ_MAX) {
        pthread_mutex_lock(&f->mu);
        snprintf(f->targets[i], TARGET_MAX, "%s", target);
        f->at[i] = now_s();
        memcpy(f->last_head, head, n + 1);
        pthread_mutex_unlock(&f->mu);
    }
    atomic_fetch_add(&f->nreq, 1);
    f->respond(f, fd, i, target);
}

static void *fake_run(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(f, fd);
        close(fd);
    }
    return NULL;
}

static void fake_start(struct fake *f, respond_fn respond)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->respond = respond;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(f->lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(f->lfd, 8), 0);
    cr_assert_eq(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
    f->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    close(f->lfd);
    pthread_mutex_destroy(&f->mu);
}

static void target_of(struct fake *f, int i, char *out)
{
    pthread_mutex_lock(&f->mu);
    snprintf(out, TARGET_MAX, "%s", f->targets[i]);
    pthread_mutex_unlock(&f->mu);
}

static bool wait_requests(struct fake *f, int n)
{
    double until = now_s() + WAIT_S;
    while (atomic_load(&f->nreq) < n && now_s() < until)
        usleep(5000);
    return atomic_load(&f->nreq) >= n;
}

/* ---- watch under test --------------------------------------------------- */

struct seen {
    pthread_mutex_t mu;
    int begins, ends;
    int listed, added, modified, deleted;
    char last[64];
};

static void s_begin(void *arg)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->mu);
    s->begins++;
    s->listed = 0;
    pthread_mutex_unlock(&s->mu);
}

static void s_event(void *arg, enum kube_event t, const cJSON *obj)
{
    struct seen *s = arg;
    const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "name");
    pthread_mutex_lock(&s->mu);
    snprintf(s->last, sizeof s->last, "%s", cJSON_IsString(n) ? n->valuestring : "?");
    if (s->ends < s->begins)
        s->listed++;
    else if (t == KUBE_EVENT_ADDED)
        s->added++;
    else if (t == KUBE_EVENT_MODIFIED)
        s->modified++;
    else
        s->deleted++;
    pthread_mutex_unlock(&s->mu);
}

static void s_end(void *arg)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->mu);
    s->ends++;
    pthread_mutex_unlock(&s->mu);
}

struct rig {
    struct fake f;
    struct seen s;
    struct kube_client *c;
    struct kube_watch *w;
};

static void rig_start(struct rig *r, respond_fn respond, unsigned page_size)
{
    log_set_level(LOG_ERROR);
    fake_start(&r->f, respond);
    memset(&r->s, 0, sizeof r->s);
    pthread_mutex_init(&r->s.mu, NULL);
    struct kube_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.server, sizeof cfg.server, "http://127.0.0.1:%u", r->f.port);
    char err[ERR_MAX];
    cr_assert_eq(kube_client_new(&cfg, NULL, &r->c, err, sizeof err), 0, "%s", err);
    struct kube_watch_handlers h = {.arg = &r->s, .on_list_begin = s_begin,
                                    .on_event = s_event, .on_list_end = s_end};
    struct kube_watch_opts o = {.name = "fake", .path = "/api/v1/configmaps",
                                .label_selector = "a=b", .page_size = page_size,
                                .timeout_s = 60};
    cr_assert_eq(kube_watch_start(r->c, &o, &h, &r->w, err, sizeof err), 0, "%s", err);
}

/* Stop the watch (bounded) and the fake. */
static void rig_stop(struct rig *r)
{
    double t0 = now_s();
    kube_watch_stop(r->w);
    double took = now_s() - t0;
    cr_assert_lt(took, STOP_BOUND_S, "kube_watch_stop took %.2f s", took);
    kube_client_free(r->c);
    fake_stop(&r->f);
}

static int seen_get(struct seen *s, const int *field)
{
    pthread_mutex_lock(&s->mu);
    int v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static const char page_last[] =
    "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"10\"},"
    "\"items\":[{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"9\"}},"
    "{\"metadata\":{\"name\":\"c\",\"resourceVersion\":\"10\"}}]}";
static const char page_first[] =
    "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"10\","
    "\"continue\":\"tok+/=\"},\"items\":[{\"metadata\":{\"name\":\"a\"}}, 7, null]}";

/* Lists (two pages) answered the same way whenever asked. */
static bool answer_list(int fd, const char *target)
{
    if (strstr(target, "watch=1"))
        return false;
    reply(fd, 200, strstr(target, "continue=") ? page_last : page_first);
    return true;
}

static void assert_target(struct fake *f, int i, const char *want)
{
    char t[TARGET_MAX];
    target_of(f, i, t);
    cr_assert_str_eq(t, want, "request %d", i);
}

#define LIST1 "/api/v1/configmaps?limit=500&labelSelector=a%3Db"
#define LIST2 LIST1 "&continue=tok%2B%2F%3D"

static void assert_watch_from(struct fake *f, int i, const char *rv)
{
    char t[TARGET_MAX], want[TARGET_MAX];
    target_of(f, i, t);
    snprintf(want, sizeof want, "/api/v1/configmaps?watch=1&allowWatchBookmarks=true"
             "&resourceVersion=%s&timeoutSeconds=", rv);
    cr_assert(strncmp(t, want, strlen(want)) == 0, "request %d: %s, want %s...", i, t, want);
    cr_assert_not_null(strstr(t, "&labelSelector=a%3Db"), "request %d: %s", i, t);
    /* 60 s ± 15 */
    int to = atoi(t + strlen(want));
    cr_assert(to >= 45 && to <= 75, "timeoutSeconds %d", to);
}

/* ---- scenarios ------------------------------------------------------------ */

/* list (2 pages) → watch: ADDED, MODIFIED, BOOKMARK, EOF → watch from the
 * bookmark's RV: HTTP 410 → list again → watch (hangs). */
static void script_410(struct fake *f, int fd, int n, const char *target)
{
    if (answer_list(fd, target))
        return;
    if (n == 2) {
        stream_head(fd);
        send_str(fd, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"d\","
                     "\"resourceVersion\":\"11\"}}}\n{\"type\":\"MODI");
        usleep(20000);  /* an event split across two reads */
        send_str(fd, "FIED\",\"object\":{\"metadata\":{\"name\":\"d\",\"resourceVersion\":\"12\"}}}\n"
                     "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"15\"}}}\n");
    } else if (n == 3) {
        status_reply(fd, 410, "Expired");
    } else {
        stream_head(fd);
        hang(f, fd);
    }
}

Test(kube_watch, lists_pages_watches_and_relists_on_http_410)
{
    struct rig r;
    rig_start(&r, script_410, 0);
    cr_assert(wait_requests(&r.f, 7), "requests: %d", atomic_load(&r.f.nreq));
    assert_target(&r.f, 0, LIST1);
    assert_target(&r.f, 1, LIST2);
    assert_watch_from(&r.f, 2, "10");
    assert_watch_from(&r.f, 3, "15");
    assert_target(&r.f, 4, LIST1);
    assert_target(&r.f, 5, LIST2);
    assert_watch_from(&r.f, 6, "10");
    cr_assert_eq(seen_get(&r.s, &r.s.begins), 2);
    cr_assert_eq(seen_get(&r.s, &r.s.ends), 2);
    cr_assert_eq(seen_get(&r.s, &r.s.listed), 3, "non-object items are skipped");
    cr_assert_eq(seen_get(&r.s, &r.s.added), 1);
    cr_assert_eq(seen_get(&r.s, &r.s.modified), 1);
    struct kube_watch_stats st;
    kube_watch_stats(r.w, &st);
    cr_assert(st.synced);
    cr_assert_eq(st.relists, 1);
    cr_assert_eq(st.events, 2, "bookmarks are not events");
    cr_assert_eq(st.restarts, 2);
    rig_stop(&r);
}

/* watch → ERROR 410 event → relist; ERROR 500 → rewatch from the RV. */
static void script_error_events(struct fake *f, int fd, int n, const char *target)
{
    if (answer_list(fd, target))
        return;
    stream_head(fd);
    if (n == 2)
        send_str(fd, "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\","
                     "\"resourceVersion\":\"20\"}}}\n"
                     "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,"
                     "\"message\":\"etcd hiccup\"}}\n"
                     "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"never\"}}}\n");
    else if (n == 3)
        send_str(fd, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                     "\"reason\":\"Expired\",\"message\":\"too old resource version: 20 (30)\"}}\n");
    else
        hang(f, fd);
}

Test(kube_watch, error_events)
{
    struct rig r;
    rig_start(&r, script_error_events, 0);
    cr_assert(wait_requests(&r.f, 7), "requests: %d", atomic_load(&r.f.nreq));
    assert_watch_from(&r.f, 2, "10");
    assert_watch_from(&r.f, 3, "20");   /* ERROR 500: same place, after backoff */
    assert_target(&r.f, 4, LIST1);      /* ERROR 410: relist */
    assert_watch_from(&r.f, 6, "10");
    cr_assert_eq(seen_get(&r.s, &r.s.deleted), 1);
    cr_assert_eq(seen_get(&r.s, &r.s.added), 0, "nothing after an ERROR is used");
    rig_stop(&r);
}

/* An expired continue token restarts the list from its first page, with
 * no backoff and without on_list_end in between. */
static void script_expired_continue(struct fake *f, int fd, int n, const char *target)
{
    if (n == 1) {
        status_reply(fd, 410, "Expired");
        return;
    }
    if (answer_list(fd, target))
        return;
    stream_head(fd);
    hang(f, fd);
}

Test(kube_watch, expired_continue_restarts_the_list)
{
    struct rig r;
    rig_start(&r, script_expired_continue, 0);
    cr_assert(wait_requests(&r.f, 5));
    assert_target(&r.f, 0, LIST1);
    assert_target(&r.f, 1, LIST2);
    assert_target(&r.f, 2, LIST1);
    assert_target(&r.f, 3, LIST2);
    assert_watch_from(&r.f, 4, "10");
    pthread_mutex_lock(&r.f.mu);
    double gap = r.f.at[2] - r.f.at[1];
    pthread_mutex_unlock(&r.f.mu);
    cr_assert_lt(gap, 0.5, "no backoff for an expired continue (%.3f s)", gap);
    cr_assert_eq(seen_get(&r.s, &r.s.begins), 2);
    cr_assert_eq(seen_get(&r.s, &r.s.ends), 1);
    cr_assert_eq(seen_get(&r.s, &r.s.listed), 3);
    struct kube_watch_stats st;
    kube_watch_stats(r.w, &st);
    cr_assert_eq(st.relists, 0, "the first list is not a relist until it completes");
    rig_stop(&r);
}

/* Failures back off and retry the same step.  Lists: a 500, a page with
 * no resourceVersion, a page that is not an object. */
static void script_list_failures(struct fake *f, int fd, int n, const char *target)
{
    switch (n) {
    case 0: status_reply(fd, 500, "InternalError"); return;
    case 1: reply(fd, 200, "{\"items\":[]}"); return;
    case 2: reply(fd, 200, "[]"); return;
    default: break;
    }
    if (answer_list(fd, target))
        return;
    stream_head(fd);
    hang(f, fd);
}

Test(kube_watch, list_failures_back_off_and_list_again)
{
    struct rig r;
    rig_start(&r, script_list_failures, 0);
    cr_assert(wait_requests(&r.f, 6), "requests: %d", atomic_load(&r.f.nreq));
    for (int i = 0; i < 4; i++)
        assert_target(&r.f, i, LIST1);
    assert_target(&r.f, 4, LIST2);
    assert_watch_from(&r.f, 5, "10");
    cr_assert_eq(seen_get(&r.s, &r.s.begins), 4);
    cr_assert_eq(seen_get(&r.s, &r.s.ends), 1);
    struct kube_client_stats cs;
    kube_client_stats(r.c, &cs);
    cr_assert_eq(cs.requests[KUBE_VERB_GET][KUBE_CODE_5XX], 1);
    cr_assert_eq(cs.requests[KUBE_VERB_GET][KUBE_CODE_2XX], 4);
    rig_stop(&r);
}

/* Watches: a 503, then a connection closed without an answer; both
 * rewatch from the same resourceVersion. */
static void script_watch_failures(struct fake *f, int fd, int n, const char *target)
{
    if (answer_list(fd, target))
        return;
    if (n == 2) {
        status_reply(fd, 503, "ServiceUnavailable");
        return;
    }
    if (n == 3)
        return;
    stream_head(fd);
    hang(f, fd);
}

Test(kube_watch, watch_failures_back_off_and_rewatch)
{
    struct rig r;
    rig_start(&r, script_watch_failures, 0);
    cr_assert(wait_requests(&r.f, 5), "requests: %d", atomic_load(&r.f.nreq));
    for (int i = 2; i < 5; i++)
        assert_watch_from(&r.f, i, "10");
    struct kube_watch_stats st;
    kube_watch_stats(r.w, &st);
    cr_assert_eq(st.relists, 0);
    cr_assert_eq(st.restarts, 2);
    struct kube_client_stats cs;
    kube_client_stats(r.c, &cs);
    cr_assert_eq(cs.requests[KUBE_VERB_WATCH][KUBE_CODE_5XX], 1);
    cr_assert_eq(cs.requests[KUBE_VERB_WATCH][KUBE_CODE_ERROR], 1);
    rig_stop(&r);
}

/* A line that is not a watch event, then one longer than the limit:
 * each ends the stream and forces a relist (an event may be lost). */
static void script_bad_lines(struct fake *f, int fd, int n, const char *target)
{
    if (answer_list(fd, target))
        return;
    stream_head(fd);
    if (n == 2) {
        send_str(fd, "this is not json\n");
    } else if (n == 5) {
        size_t chunk = 1 << 20;
        char *x = malloc(chunk);
        memset(x, 'x', chunk);
        send_str(fd, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"");
        for (size_t sent = 0; sent <= KUBE_WATCH_LINE_MAX && !atomic_load(&f->stop);
             sent += chunk)
            send_all(fd, x, chunk);
        free(x);
    } else {
        hang(f, fd);
    }
}

Test(kube_watch, bad_and_oversized_lines_relist, .timeout = 30)
{
    struct rig r;
    rig_start(&r, script_bad_lines, 0);
    cr_assert(wait_requests(&r.f, 9), "requests: %d", atomic_load(&r.f.nreq));
    assert_target(&r.f, 3, LIST1);
    assert_watch_from(&r.f, 5, "10");
    assert_target(&r.f, 6, LIST1);
    assert_watch_from(&r.f, 8, "10");
    struct kube_watch_stats st;
    kube_watch_stats(r.w, &st);
    cr_assert_eq(st.relists, 2);
    rig_stop(&r);
}

/* Stop is prompt wherever the thread is: in a silent stream here. */
static void script_silent(struct fake *f, int fd, int n, const char *target)
{
    (void)n;
    if (answer_list(fd, target))
        return;
    stream_head(fd);
    hang(f, fd);
}

Test(kube_watch, stop_during_a_silent_watch)
{
    struct rig r;
    rig_start(&r, script_silent, 0);
    cr_assert(wait_requests(&r.f, 3));
    usleep(300 * 1000);
    cr_assert(kube_watch_synced(r.w));
    rig_stop(&r);
}

/* ... and in a backoff: every request fails, the sleeps grow. */
static void script_always_500(struct fake *f, int fd, int n, const char *target)
{
    (void)f, (void)n, (void)target;
    status_reply(fd, 500, "InternalError");
}

Test(kube_watch, stop_during_backoff)
{
    struct rig r;
    rig_start(&r, script_always_500, 0);
    cr_assert(wait_requests(&r.f, 4));
    cr_assert(!kube_watch_synced(r.w));
    rig_stop(&r);
}

Test(kube_watch, start_refuses_bad_options)
{
    struct kube_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.server, sizeof cfg.server, "http://127.0.0.1:1");
    struct kube_client *c;
    char err[ERR_MAX];
    cr_assert_eq(kube_client_new(&cfg, NULL, &c, err, sizeof err), 0, "%s", err);
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct kube_watch_handlers h = {.arg = &s, .on_list_begin = s_begin,
                                    .on_event = s_event, .on_list_end = s_end};
    struct kube_watch_opts o = {.name = "x", .path = "/api/v1/pods?watch=1"};
    struct kube_watch *w;
    cr_assert_eq(kube_watch_start(c, &o, &h, &w, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "label_selector"), "%s", err);
    o.path = "api/v1/pods";
    cr_assert_eq(kube_watch_start(c, &o, &h, &w, err, sizeof err), -1);
    o.path = "/api/v1/pods";
    h.on_list_end = NULL;
    cr_assert_eq(kube_watch_start(c, &o, &h, &w, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "handlers"), "%s", err);
    kube_client_free(c);
}

/* Transport errors name the method and URL and the curl reason. */
Test(kube_watch, client_transport_error_message)
{
    struct kube_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.server, sizeof cfg.server, "http://127.0.0.1:1");
    snprintf(cfg.token, sizeof cfg.token, "s3cret-token");
    struct kube_client *c;
    char err[ERR_MAX];
    cr_assert_eq(kube_client_new(&cfg, NULL, &c, err, sizeof err), 0, "%s", err);
    struct kube_conn *k = kube_conn_new(c);
    struct kube_response r;
    cr_assert_eq(kube_request(k, "GET", "/api/v1/pods", NULL, NULL, 0, &r, err,
                              sizeof err), -1);
    cr_assert_not_null(strstr(err, "GET http://127.0.0.1:1/api/v1/pods: "), "%s", err);
    cr_assert_null(strstr(err, "s3cret"), "%s", err);
    cr_assert_eq(kube_request(k, "HEAD", "/x", NULL, NULL, 0, &r, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "unsupported method HEAD"), "%s", err);
    cr_assert_eq(kube_request(k, "GET", "/a b", NULL, NULL, 0, &r, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "unescaped"), "%s", err);
    struct kube_client_stats s;
    kube_client_stats(c, &s);
    cr_assert_eq(s.requests[KUBE_VERB_GET][KUBE_CODE_ERROR], 1);
    kube_conn_free(k);
    kube_client_free(c);
}

/* ---- kube_request against the fake --------------------------------------- */

static struct kube_client *plain_client(struct fake *f, unsigned timeout_ms)
{
    struct kube_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.server, sizeof cfg.server, "http://127.0.0.1:%u", f->port);
    snprintf(cfg.token, sizeof cfg.token, "s3cret-token");
    struct kube_client_opts o;
    kube_client_opts_init(&o);
    o.timeout_ms = timeout_ms;
    struct kube_client *c;
    char err[ERR_MAX];
    cr_assert_eq(kube_client_new(&cfg, &o, &c, err, sizeof err), 0, "%s", err);
    return c;
}

static void script_echo(struct fake *f, int fd, int n, const char *target)
{
    (void)f, (void)n, (void)target;
    reply(fd, 201, "{\"ok\":true}");
}

Test(kube_client_fake, request_headers)
{
    struct fake f;
    log_set_level(LOG_ERROR);
    fake_start(&f, script_echo);
    struct kube_client *c = plain_client(&f, 5000);
    struct kube_conn *k = kube_conn_new(c);
    struct kube_response r;
    char err[ERR_MAX];
    const char *body = "{\"kind\":\"ConfigMap\"}";
    cr_assert_eq(kube_request(k, "PATCH", "/api/v1/x?fieldManager=m&force=true",
                              "application/apply-patch+yaml", body, strlen(body), &r,
                              err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(r.body, "{\"ok\":true}");
    cr_assert_eq(r.len, strlen(r.body));
    kube_response_free(&r);
    pthread_mutex_lock(&f.mu);
    const char *h = f.last_head;
    cr_assert(strncmp(h, "PATCH /api/v1/x?fieldManager=m&force=true HTTP/1.1\r\n", 52) == 0, "%s", h);
    cr_assert_not_null(strstr(h, "\r\nUser-Agent: " KUBE_USER_AGENT "/"), "%s", h);
    cr_assert_not_null(strstr(h, "\r\nAccept: application/json\r\n"), "%s", h);
    cr_assert_not_null(strstr(h, "\r\nContent-Type: application/apply-patch+yaml\r\n"), "%s", h);
    cr_assert_not_null(strstr(h, "\r\nAuthorization: Bearer s3cret-token\r\n"), "%s", h);
    cr_assert_null(strstr(h, "Expect:"), "no 100-continue wait");
    pthread_mutex_unlock(&f.mu);
    kube_conn_free(k);
    kube_client_free(c);
    fake_stop(&f);
}

/* A body past KUBE_RESPONSE_MAX fails the request instead of growing. */
static void script_huge(struct fake *f, int fd, int n, const char *target)
{
    (void)f, (void)n, (void)target;
    size_t total = (size_t)KUBE_RESPONSE_MAX + 1, chunk = 1 << 20;
    char head[256];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n", total);
    send_str(fd, head);
    char *x = malloc(chunk);
    memset(x, ' ', chunk);
    for (size_t sent = 0; sent < total; sent += chunk)
        send_all(fd, x, total - sent < chunk ? total - sent : chunk);
    free(x);
}

Test(kube_client_fake, response_cap, .timeout = 60)
{
    struct fake f;
    log_set_level(LOG_ERROR);
    fake_start(&f, script_huge);
    struct kube_client *c = plain_client(&f, 30000);
    struct kube_conn *k = kube_conn_new(c);
    struct kube_response r;
    char err[ERR_MAX];
    cr_assert_eq(kube_request(k, "GET", "/big", NULL, NULL, 0, &r, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "GET http://127.0.0.1:"), "%s", err);
    cr_assert_not_null(strstr(err, "response larger than 67108864 bytes"), "%s", err);
    cr_assert_null(r.body);
    kube_conn_free(k);
    kube_client_free(c);
    fake_stop(&f);
}

/* The per-request timeout bounds a server that never answers. */
#define MUTE_TIMEOUT_MS 300
#define MUTE_TIMEOUT_VALGRIND_MS 3000
#define MUTE_SLACK_S 1.7 /* past the timeout: curl's own check interval and a busy machine */
static void script_mute(struct fake *f, int fd, int n, const char *target)
{
    (void)n, (void)target;
    hang(f, fd);
}

Test(kube_client_fake, request_timeout)
{
    struct fake f;
    log_set_level(LOG_ERROR);
    fake_start(&f, script_mute);
    /* Under valgrind on a busy machine 300 ms can run out before curl has
     * even connected ("Failed to resolve host ... with timeout"), which is
     * not the silent server this test is about. */
    unsigned timeout_ms = getenv("IO_UNDER_VALGRIND") ? MUTE_TIMEOUT_VALGRIND_MS : MUTE_TIMEOUT_MS;
    struct kube_client *c = plain_client(&f, timeout_ms);
    struct kube_conn *k = kube_conn_new(c);
    struct kube_response r;
    char err[ERR_MAX];
    double t0 = now_s();
    cr_assert_eq(kube_request(k, "GET", "/slow", NULL, NULL, 0, &r, err, sizeof err), -1);
    double took = now_s() - t0;
    cr_assert(took >= (timeout_ms - 10) / 1000.0 && took < timeout_ms / 1000.0 + MUTE_SLACK_S,
              "took %.3f s with a %u ms timeout", took, timeout_ms);
    cr_assert_not_null(strstr(err, "timed out"), "%s", err);
    struct kube_client_stats s;
    kube_client_stats(c, &s);
    cr_assert_eq(s.requests[KUBE_VERB_GET][KUBE_CODE_ERROR], 1);
    kube_conn_free(k);
    kube_client_free(c);
    fake_stop(&f);
}
