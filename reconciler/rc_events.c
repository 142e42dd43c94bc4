/*
 * rc_events.c — see rc_events.h.
 */
#include "rc_events.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "isvc_fields.h"
#include "log.h"
#include "rc_map.h"

void rc_events_init(struct rc_events *e)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    if (gethostname(e->instance, sizeof(e->instance) - 1) != 0)
        snprintf(e->instance, sizeof(e->instance), "inference-operator");
    /* A default mutex cannot fail to initialise on Linux, as the two
     * above. */
    (void)kube_ratelimit_init(&e->rate, RC_EVENT_QPS_DEFAULT, RC_EVENT_BURST_DEFAULT);
}

void rc_events_set_rate(struct rc_events *e, unsigned qps, unsigned burst)
{
    kube_ratelimit_set(&e->rate, qps, burst);
}

void rc_events_destroy(struct rc_events *e)
{
    rc_events_stop(e);
    free(e->slots);
    e->slots = NULL;
    kube_ratelimit_destroy(&e->rate);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
}

static void msg_free(struct rc_event_msg *m)
{
    cJSON_free(m->body);
    free(m->path);
    m->body = m->path = NULL;
}

/* POST one Event on the sender's connection (made on first use). */
static void send_one(struct rc_events *e, struct kube_conn **conn,
                     const struct rc_event_msg *m)
{
    if (e->may_write && !e->may_write(e->may_write_arg)) {
        atomic_fetch_add(&e->fenced, 1);
        return;
    }
    if (*conn == NULL && (*conn = kube_conn_new(e->client)) == NULL) {
        atomic_fetch_add(&e->failed, 1);
        log_debug("event not recorded", LF_STR("error", "no API connection (out of memory)"));
        return;
    }
    struct kube_response resp;
    char err[256];
    int rc = kube_request(*conn, "POST", m->path, "application/json", m->body,
                          strlen(m->body), &resp, err, sizeof(err));
    if (rc != 0) {
        atomic_fetch_add(&e->failed, 1);
        log_debug("event not recorded", LF_STR("path", m->path), LF_STR("error", err));
        return;
    }
    if (resp.status < 300) {
        atomic_fetch_add(&e->sent, 1);
    } else {
        atomic_fetch_add(&e->failed, 1);
        log_debug("event not recorded", LF_STR("path", m->path),
                  LF_INT("code", resp.status), LF_STR("message", resp.message));
    }
    kube_response_free(&resp);
}

static void *sender_main(void *arg)
{
    struct rc_events *e = arg;
    struct kube_conn *conn = NULL;
    uint64_t drain_until = 0;   /* mono_now_ns; 0 until stopping */
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (e->count == 0 && !e->stopping)
            pthread_cond_wait(&e->wake, &e->lock);
        if (e->count == 0)
            break;
        if (e->stopping) {
            if (drain_until == 0)
                drain_until = mono_now_ns() + RC_EVENT_DRAIN_MS * 1000000ull;
            else if (mono_now_ns() >= drain_until)
                break;
        }
        struct rc_event_msg m = e->queue[e->head];
        e->queue[e->head] = (struct rc_event_msg){ 0 };
        e->head = (e->head + 1) % RC_EVENT_QUEUE;
        e->count--;
        pthread_mutex_unlock(&e->lock);
        send_one(e, &conn, &m);
        msg_free(&m);
        pthread_mutex_lock(&e->lock);
    }
    while (e->count > 0) {   /* past the drain deadline */
        msg_free(&e->queue[e->head]);
        e->head = (e->head + 1) % RC_EVENT_QUEUE;
        e->count--;
        atomic_fetch_add(&e->dropped, 1);
    }
    pthread_mutex_unlock(&e->lock);
    kube_conn_free(conn);
    return NULL;
}

int rc_events_start(struct rc_events *e, struct kube_client *client,
                    bool (*may_write)(void *arg), void *may_write_arg,
                    char *err, size_t errlen)
{
    e->client = client;
    e->may_write = may_write;
    e->may_write_arg = may_write_arg;
    e->stopping = false;
    if (pthread_create(&e->sender, NULL, sender_main, e) != 0) {
        snprintf(err, errlen, "cannot start the event sender thread");
        return -1;
    }
    pthread_mutex_lock(&e->lock);
    e->started = true;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

void rc_events_stop(struct rc_events *e)
{
    pthread_mutex_lock(&e->lock);
    bool was = e->started;
    e->started = false;
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    if (was)
        pthread_join(e->sender, NULL);
}

/* True when this fingerprint was not reported within the window; records
 * it either way. */
static bool fresh(struct rc_events *e, uint64_t fp, int64_t now)
{
    size_t i = (size_t)(fp % RC_EVENT_SLOTS);
    bool is_new;
    pthread_mutex_lock(&e->lock);
    if (e->slots == NULL)
        e->slots = calloc(RC_EVENT_SLOTS, sizeof(*e->slots));
    if (e->slots == NULL) {
        /* No memory to remember it: report it anyway, once more at worst. */
        pthread_mutex_unlock(&e->lock);
        return true;
    }
    is_new = !(e->slots[i].fp == fp && now - e->slots[i].at < RC_EVENT_DEDUP_S);
    if (is_new) {
        e->slots[i].fp = fp;
        e->slots[i].at = now;
    }
    pthread_mutex_unlock(&e->lock);
    if (!is_new)
        atomic_fetch_add(&e->suppressed, 1);
    return is_new;
}

/* The Event as JSON (cJSON_free), or NULL when out of memory. */
static char *event_body(const struct rc_events *e, const struct rc_event_target *t,
                        bool warning, const char *reason, const char *action,
                        const char *message)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[48], base[40], name[320];
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%06ldZ", ts.tv_nsec / 1000);
    /* Unique per object and microsecond, as the name must be. */
    snprintf(base, sizeof(base), "%llx%06lx", (unsigned long long)ts.tv_sec,
             ts.tv_nsec / 1000);
    snprintf(name, sizeof(name), "%.200s.%s", t->name, base);

    cJSON *ev = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(ev, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", t->ns);
    cJSON_AddStringToObject(ev, "apiVersion", "events.k8s.io/v1");
    cJSON_AddStringToObject(ev, "kind", "Event");
    cJSON_AddStringToObject(ev, "eventTime", when);
    cJSON_AddStringToObject(ev, "reportingController", ISVC_GROUP "/inference-operator");
    cJSON_AddStringToObject(ev, "reportingInstance", e->instance);
    cJSON_AddStringToObject(ev, "action", action);
    cJSON_AddStringToObject(ev, "reason", reason);
    cJSON_AddStringToObject(ev, "type", warning ? "Warning" : "Normal");
    char note[1024];
    snprintf(note, sizeof(note), "%.1000s", message);
    cJSON_AddStringToObject(ev, "note", note);
    cJSON *reg = cJSON_AddObjectToObject(ev, "regarding");
    cJSON_AddStringToObject(reg, "apiVersion", ISVC_API_VERSION);
    cJSON_AddStringToObject(reg, "kind", ISVC_KIND);
    cJSON_AddStringToObject(reg, "namespace", t->ns);
    cJSON_AddStringToObject(reg, "name", t->name);
    if (t->uid)
        cJSON_AddStringToObject(reg, "uid", t->uid);
    char *body = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    return body;
}

void rc_event(struct rc_events *e, const struct rc_event_target *t, bool warning,
              const char *reason, const char *action, const char *message,
              int64_t now)
{
    char fpsrc[1024];
    snprintf(fpsrc, sizeof(fpsrc), "%s\n%s\n%s", t->uid ? t->uid : "", reason, message);
    if (!fresh(e, rc_hash_str(fpsrc), now))
        return;
    if (!kube_ratelimit_take_at(&e->rate, mono_now_s())) {
        atomic_fetch_add(&e->throttled, 1);
        return;
    }

    struct rc_event_msg m = { .body = event_body(e, t, warning, reason, action, message) };
    size_t plen = strlen(t->ns) + 48;
    m.path = malloc(plen);
    if (m.body == NULL || m.path == NULL) {
        msg_free(&m);
        atomic_fetch_add(&e->failed, 1);
        return;
    }
    snprintf(m.path, plen, "/apis/events.k8s.io/v1/namespaces/%s/events", t->ns);

    pthread_mutex_lock(&e->lock);
    bool queued = e->started && !e->stopping && e->count < RC_EVENT_QUEUE;
    if (queued) {
        e->queue[(e->head + e->count) % RC_EVENT_QUEUE] = m;
        e->count++;
        pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->lock);
    if (!queued) {
        msg_free(&m);
        atomic_fetch_add(&e->dropped, 1);
    }
}
