/*
 * rc_events.c — see rc_events.h.
 */
#include "rc_events.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "isvc_fields.h"
#include "log.h"
#include "rc_map.h"

void rc_events_init(struct rc_events *e)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->lock, NULL);
    if (gethostname(e->instance, sizeof(e->instance) - 1) != 0)
        snprintf(e->instance, sizeof(e->instance), "inference-operator");
}

void rc_events_destroy(struct rc_events *e)
{
    pthread_mutex_destroy(&e->lock);
}

/* True when this fingerprint was not reported within the window; records
 * it either way. */
static bool fresh(struct rc_events *e, uint64_t fp, int64_t now)
{
    size_t i = (size_t)(fp % RC_EVENT_SLOTS);
    bool is_new;
    pthread_mutex_lock(&e->lock);
    is_new = !(e->slots[i].fp == fp && now - e->slots[i].at < RC_EVENT_DEDUP_S);
    if (is_new) {
        e->slots[i].fp = fp;
        e->slots[i].at = now;
    } else {
        e->suppressed++;
    }
    pthread_mutex_unlock(&e->lock);
    return is_new;
}

void rc_event(struct rc_events *e, struct kube_conn *conn,
              const struct rc_event_target *t, bool warning,
              const char *reason, const char *action, const char *message,
              int64_t now)
{
    char fpsrc[1024];
    snprintf(fpsrc, sizeof(fpsrc), "%s\n%s\n%s", t->uid ? t->uid : "", reason, message);
    if (!fresh(e, rc_hash_str(fpsrc), now))
        return;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[48], base[40], name[320], path[400];
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%06ldZ", ts.tv_nsec / 1000);
    snprintf(base, sizeof(base), "%llx%06lx", (unsigned long long)ts.tv_sec,
             ts.tv_nsec / 1000);
    snprintf(name, sizeof(name), "%.200s.%s", t->name, base);
    snprintf(path, sizeof(path), "/apis/events.k8s.io/v1/namespaces/%s/events", t->ns);

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
    if (body == NULL) {
        e->failed++;
        return;
    }
    struct kube_response resp;
    char err[256];
    int rc = kube_request(conn, "POST", path, "application/json", body,
                          strlen(body), &resp, err, sizeof(err));
    cJSON_free(body);
    pthread_mutex_lock(&e->lock);
    if (rc == 0 && resp.status < 300) {
        e->sent++;
    } else {
        e->failed++;
    }
    pthread_mutex_unlock(&e->lock);
    if (rc != 0)
        log_debug("event not recorded", LF_STR("object", t->name), LF_STR("error", err));
    else if (resp.status >= 300)
        log_debug("event not recorded", LF_STR("object", t->name),
                  LF_INT("code", resp.status), LF_STR("message", resp.message));
    if (rc == 0)
        kube_response_free(&resp);
}
