/*
 * rc_reconcile.c — see rc_reconcile.h.
 */
#include "rc_reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "isvc_rules.h"
#include "log.h"
#include "rc_status.h"

/* What reconcile needs, copied out of the caches so no lock is held
 * across API calls. */
struct snapshot {
    char ns[64], name[254], uid[65];
    char model[RC_MODEL_KEEP + 1], gpu[RC_GPU_KEEP + 1];
    char decode_errors[RC_INVALID_KEEP];
    bool has_model, has_gpu, has_replicas, has_batch, deleting;
    size_t model_len;
    long long generation, replicas, batch;
    uint64_t status_hash;
    struct rc_cond_prev cond[RC_COND_COUNT];

    bool dep_cached, svc_cached;
    uint64_t dep_hash, svc_hash;
    char dep_owner_uid[65], svc_owner_uid[65];
    struct rc_dep_state dep;
    bool have_pods;
    struct rc_pod_summary pods;
};

/* The fence: checked immediately before every write is sent. */
static bool may_write(struct rc_ctx *ctx)
{
    if (ctx->may_write == NULL || ctx->may_write(ctx->may_write_arg))
        return true;
    atomic_fetch_add(&ctx->fenced, 1);
    return false;
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Returns false when the InferenceService is not in the cache. */
static bool take_snapshot(struct rc_cache *cache, struct rc_pods *pods, const char *key,
                          struct snapshot *s)
{
    memset(s, 0, sizeof(*s));
    pthread_rwlock_rdlock(&cache->lock);
    const struct rc_isvc *i = rc_map_get(&cache->isvcs, key);
    if (i == NULL) {
        pthread_rwlock_unlock(&cache->lock);
        return false;
    }
    copy(s->ns, sizeof(s->ns), i->ns);
    copy(s->name, sizeof(s->name), i->name);
    copy(s->uid, sizeof(s->uid), i->uid);
    s->has_model = i->model != NULL;
    copy(s->model, sizeof(s->model), i->model);
    s->model_len = i->model_len;
    s->has_gpu = i->gpu_type != NULL;
    copy(s->gpu, sizeof(s->gpu), i->gpu_type);
    copy(s->decode_errors, sizeof(s->decode_errors), i->decode_errors);
    s->generation = i->generation;
    s->has_replicas = i->has_replicas;
    s->replicas = i->replicas;
    s->has_batch = i->has_max_batch_size;
    s->batch = i->max_batch_size;
    s->deleting = i->deleting;
    s->status_hash = i->status_hash;
    memcpy(s->cond, i->cond, sizeof(s->cond));

    const struct rc_deploy *d = rc_map_get(&cache->deploys, key);
    if (d) {
        s->dep_cached = true;
        s->dep_hash = d->managed_hash;
        rc_deploy_state(d, &s->dep);
        copy(s->dep_owner_uid, sizeof(s->dep_owner_uid), d->owner_uid);
    }
    const struct rc_service *v = rc_map_get(&cache->services, key);
    if (v) {
        s->svc_cached = true;
        s->svc_hash = v->managed_hash;
        copy(s->svc_owner_uid, sizeof(s->svc_owner_uid), v->owner_uid);
    }
    pthread_rwlock_unlock(&cache->lock);
    if (pods) {
        s->have_pods = true;
        rc_pods_summary(pods, key, &s->pods);
    }
    return true;
}

/* Validate with the webhook's own rules; message in out when invalid. */
static bool spec_valid(const struct rc_ctx *ctx, const struct snapshot *s,
                       char *out, size_t cap)
{
    struct isvc_report rep;
    struct isvc_spec spec = {
        .has_model = s->has_model, .model = s->model, .model_len = s->model_len,
        .has_gpu_type = s->has_gpu, .gpu_type = s->gpu,
        .has_replicas = s->has_replicas, .replicas = s->replicas,
        .has_max_batch_size = s->has_batch, .max_batch_size = s->batch,
    };
    isvc_report_init(&rep);
    isvc_name_validate(s->name, NULL, &rep);
    isvc_spec_validate(ctx->rules, &spec, NULL, &rep);
    if (rep.error_count == 0 && s->decode_errors[0] == '\0')
        return true;
    char joined[RC_INVALID_KEEP];
    isvc_report_join(&rep, joined, sizeof(joined));
    snprintf(out, cap, "%.250s%s%.300s", s->decode_errors,
             s->decode_errors[0] && joined[0] ? "; " : "", joined);
    return false;
}

static const char *kind_path(enum rc_apply_kind k)
{
    return k == RC_APPLY_DEPLOYMENT ? "/apis/apps/v1/namespaces/%s/deployments/%s"
                                    : "/api/v1/namespaces/%s/services/%s";
}

static const char *kind_name(enum rc_apply_kind k)
{
    return k == RC_APPLY_DEPLOYMENT ? "Deployment" : "Service";
}

static enum rc_kind cache_kind(enum rc_apply_kind k)
{
    return k == RC_APPLY_DEPLOYMENT ? RC_KIND_DEPLOYMENT : RC_KIND_SERVICE;
}

/* Server-side apply of desired; on success *fresh gets the Deployment's
 * state from the response (so status does not wait for the watch), and
 * the cache learns the object (so the next pass does not apply it again
 * before the watch delivers it). */
static enum rc_apply_result apply(struct rc_ctx *ctx, struct kube_conn *conn,
                                  enum rc_apply_kind k,
                                  const struct snapshot *s, const cJSON *desired,
                                  struct rc_dep_state *fresh, char *blocked,
                                  size_t bcap, char *err, size_t errlen)
{
    char path[600];
    int n = snprintf(path, sizeof(path), kind_path(k), s->ns, s->name);
    snprintf(path + n, sizeof(path) - (size_t)n, "?fieldManager=%s&force=true",
             RC_FIELD_MANAGER);
    char *body = cJSON_PrintUnformatted(desired);
    if (body == NULL) {
        snprintf(err, errlen, "out of memory encoding the %s", kind_name(k));
        return RC_APPLY_FAILED;
    }
    struct rc_cache_mark mark = rc_cache_mark(ctx->cache, cache_kind(k));
    struct kube_response r;
    int rc = kube_request(conn, "PATCH", path, "application/apply-patch+yaml", body,
                          strlen(body), &r, err, errlen);
    cJSON_free(body);
    if (rc != 0)
        return RC_APPLY_FAILED;
    enum rc_apply_result out = RC_APPLY_FAILED;
    if (r.status == 200 || r.status == 201) {
        out = r.status == 201 ? RC_APPLY_CREATED : RC_APPLY_UPDATED;
        cJSON *obj = cJSON_ParseWithLength(r.body, r.len);
        if (obj && fresh)
            rc_dep_state_decode(obj, fresh);
        if (obj)
            rc_cache_learn(ctx->cache, cache_kind(k), &mark, obj);
        cJSON_Delete(obj);
    } else if (r.status == 422 && strstr(r.message, "ontroller") != NULL) {
        /* The name is taken by an object another controller owns: the API
         * server refused a second controller reference, nothing merged. */
        snprintf(blocked, bcap, "%s %.63s/%.253s exists and is controlled by "
                 "another object; rename one of them", kind_name(k), s->ns, s->name);
        snprintf(err, errlen, "%s", blocked);
    } else {
        snprintf(err, errlen, "apply %s %s/%s: %ld %s: %s", kind_name(k), s->ns,
                 s->name, r.status, r.reason, r.message);
    }
    kube_response_free(&r);
    return out;
}

/*
 * Apply one owned object if it drifted.  A Deployment or Service with our
 * name and no controller is adopted (as controller-runtime does with
 * orphans); one controlled by another object makes the API server refuse
 * the second controller reference, reported in blocked.  Returns the
 * apply's outcome, or -1 when nothing needed doing.
 */
static int ensure(struct rc_ctx *ctx, struct kube_conn *conn, enum rc_apply_kind k,
                  const struct snapshot *s, const cJSON *desired,
                  struct rc_dep_state *fresh, char *blocked, size_t bcap,
                  char *err, size_t errlen)
{
    bool cached = k == RC_APPLY_DEPLOYMENT ? s->dep_cached : s->svc_cached;
    uint64_t have = k == RC_APPLY_DEPLOYMENT ? s->dep_hash : s->svc_hash;
    const char *owner = k == RC_APPLY_DEPLOYMENT ? s->dep_owner_uid : s->svc_owner_uid;
    if (cached && have == rc_managed_hash(desired, desired) &&
        strcmp(owner, s->uid) == 0)
        return -1;   /* nothing drifted: no write */
    if (!may_write(ctx)) {
        snprintf(err, errlen, "not the leader: %s not applied", kind_name(k));
        return RC_APPLY_FAILED;
    }
    enum rc_apply_result r = apply(ctx, conn, k, s, desired, fresh, blocked, bcap, err,
                                   errlen);
    atomic_fetch_add(&ctx->applies[k][r], 1);
    return (int)r;
}

/* One event per reconcile that wrote something, naming what it did (and
 * what the urgent pass before it did, from carry). */
static void report_applies(struct rc_ctx *ctx, const struct snapshot *s, int dep,
                           int svc, unsigned carry)
{
    if (dep < 0 && (carry & RC_CARRY_DEP_CREATED))
        dep = RC_APPLY_CREATED;
    else if (dep < 0 && (carry & RC_CARRY_DEP_UPDATED))
        dep = RC_APPLY_UPDATED;
    else if (dep == RC_APPLY_UPDATED && (carry & RC_CARRY_DEP_CREATED))
        dep = RC_APPLY_CREATED;
    if (dep < 0 && svc < 0)
        return;
    bool created = dep == RC_APPLY_CREATED || svc == RC_APPLY_CREATED;
    char msg[600];
    size_t o = 0;
    const int results[2] = { dep, svc };
    for (int k = 0; k < 2; k++) {
        if (results[k] < 0)
            continue;
        o += (size_t)snprintf(msg + o, sizeof(msg) - o, "%s%s %s %.63s/%.253s",
                              o ? "; " : "",
                              results[k] == RC_APPLY_CREATED ? "created" : "updated",
                              kind_name((enum rc_apply_kind)k), s->ns, s->name);
        if (o >= sizeof(msg))
            break;
    }
    struct rc_event_target t = { s->ns, s->name, s->uid };
    if (may_write(ctx))
        rc_event(ctx->events, &t, false, created ? "Created" : "Updated",
                 "Apply", msg, (int64_t)time(NULL));
}

static enum rc_result write_status(struct rc_ctx *ctx, struct kube_conn *conn,
                                   const struct snapshot *s,
                                   const struct rc_status_input *in,
                                   char *err, size_t errlen)
{
    cJSON *status = rc_status_build(in);
    if (status == NULL) {
        snprintf(err, errlen, "out of memory building status");
        return RC_RETRY;
    }
    if (rc_json_hash(status) == s->status_hash) {
        cJSON_Delete(status);
        return RC_DONE;   /* unchanged: no write */
    }
    char key[RC_KEY_BUF];
    snprintf(key, sizeof(key), "%s/%s", s->ns, s->name);
    uint64_t sig = ctx->throttle ? rc_status_signature(status) : 0;
    if (ctx->throttle && !rc_throttle_allow(ctx->throttle, key, sig, in->now)) {
        /* Only messages changed, and recently: the next reconcile after
         * the interval (at the latest the resync) writes it. */
        cJSON_Delete(status);
        atomic_fetch_add(&ctx->status_deferred, 1);
        return RC_DONE;
    }
    if (!may_write(ctx)) {
        cJSON_Delete(status);
        snprintf(err, errlen, "not the leader: status not written");
        return RC_FENCED;
    }
    cJSON *patch = cJSON_CreateObject();
    cJSON_AddItemToObject(patch, "status", status);
    char *body = cJSON_PrintUnformatted(patch);
    cJSON_Delete(patch);
    if (body == NULL) {
        snprintf(err, errlen, "out of memory encoding status");
        return RC_RETRY;
    }
    char path[600];
    snprintf(path, sizeof(path),
             "/apis/%s/namespaces/%s/%s/%s/status", ISVC_API_VERSION, s->ns,
             ISVC_PLURAL, s->name);
    struct kube_response r;
    int rc = kube_request(conn, "PATCH", path, "application/merge-patch+json", body,
                          strlen(body), &r, err, errlen);
    cJSON_free(body);
    if (rc != 0)
        return RC_RETRY;
    enum rc_result out = RC_DONE;
    if (r.status == 200) {
        atomic_fetch_add(&ctx->status_writes, 1);
        if (ctx->throttle)
            rc_throttle_wrote(ctx->throttle, key, sig, in->now,
                              in->pods && in->pods->problem != RC_POD_OK);
    } else if (r.status == 404) {
        out = RC_GONE;
    } else if (r.status == 409) {
        atomic_fetch_add(&ctx->status_conflicts, 1);
        snprintf(err, errlen, "status of %s/%s: conflict: %s", s->ns, s->name, r.message);
        out = RC_CONFLICT;
    } else {
        snprintf(err, errlen, "status of %s/%s: %ld %s: %s", s->ns, s->name, r.status,
                 r.reason, r.message);
        out = RC_RETRY;
    }
    kube_response_free(&r);
    return out;
}

static void status_input(const struct rc_ctx *ctx, const struct snapshot *s,
                         const struct rc_dep_state *dep, long long replicas,
                         char *endpoint, size_t ecap, char *selector, size_t scap,
                         struct rc_status_input *in)
{
    struct rc_owner o = { .ns = s->ns, .name = s->name };
    rc_endpoint(&o, endpoint, ecap);
    rc_selector(&o, selector, scap);
    memset(in, 0, sizeof(*in));
    in->generation = s->generation;
    in->desired_replicas = replicas;
    in->spec_valid = true;
    in->endpoint = endpoint;
    in->selector = selector;
    in->dep = dep;
    in->pods = s->have_pods ? &s->pods : NULL;
    memcpy(in->prev, s->cond, sizeof(in->prev));
    in->now = (int64_t)time(NULL);
    (void)ctx;
}

enum rc_result rc_reconcile(struct rc_ctx *ctx, struct kube_conn *conn,
                            const char *key, struct rc_pass *pass, char *err,
                            size_t errlen)
{
    const bool urgent = pass->urgent;
    const unsigned carried = pass->carry;
    pass->carry = 0;
    struct snapshot *s = malloc(sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return RC_RETRY;
    }
    enum rc_result result = RC_DONE;
    char endpoint[400], selector[400], invalid[RC_INVALID_KEEP + 64];
    char blocked[512] = "";
    struct rc_status_input in;
    err[0] = '\0';

    if (!take_snapshot(ctx->cache, ctx->pods, key, s)) {
        result = RC_GONE;
        goto out;
    }
    if (s->deleting)
        goto out;

    long long replicas = s->has_replicas ? s->replicas
                                         : ctx->rules->default_int[ISVC_F_REPLICAS];
    long long batch = s->has_batch ? s->batch
                                   : ctx->rules->default_int[ISVC_F_MAX_BATCH_SIZE];
    struct rc_dep_state dep = s->dep;
    dep.exists = s->dep_cached;
    status_input(ctx, s, &dep, replicas, endpoint, sizeof(endpoint), selector,
                 sizeof(selector), &in);

    if (!spec_valid(ctx, s, invalid, sizeof(invalid))) {
        in.spec_valid = false;
        in.invalid_message = invalid;
        struct rc_event_target t = { s->ns, s->name, s->uid };
        if (may_write(ctx))
            rc_event(ctx->events, &t, true, "InvalidSpec", "Validate", invalid,
                     in.now);
        result = write_status(ctx, conn, s, &in, err, errlen);
        goto out;
    }

    struct rc_owner owner = { .ns = s->ns, .name = s->name, .uid = s->uid,
                              .model = s->model, .gpu_type = s->gpu,
                              .replicas = replicas, .max_batch_size = batch };
    cJSON *want_dep = rc_desired_deployment(ctx->settings, &owner);
    cJSON *want_svc = rc_desired_service(&owner);
    if (want_dep == NULL || want_svc == NULL) {
        cJSON_Delete(want_dep);
        cJSON_Delete(want_svc);
        snprintf(err, errlen, "cannot build the Deployment for gpuType \"%s\": no "
                 "GPU product names configured for it (--gpu-products)", s->gpu);
        in.blocked_reason = "NoGPUProducts";
        in.blocked_message = err;
        char ignored[256];
        write_status(ctx, conn, s, &in, ignored, sizeof(ignored));
        result = RC_RETRY;
        goto out;
    }
    int dep_done = ensure(ctx, conn, RC_APPLY_DEPLOYMENT, s, want_dep, &dep, blocked,
                          sizeof(blocked), err, errlen);
    if (urgent && (dep_done == RC_APPLY_CREATED || dep_done == RC_APPLY_UPDATED)) {
        /* The rest waits behind the other urgent Deployments. */
        cJSON_Delete(want_dep);
        cJSON_Delete(want_svc);
        pass->carry = carried | (dep_done == RC_APPLY_CREATED ? RC_CARRY_DEP_CREATED
                                                              : RC_CARRY_DEP_UPDATED);
        result = RC_FOLLOW_UP;
        goto out;
    }
    int svc_done = -1;
    bool ok = dep_done != RC_APPLY_FAILED;
    if (ok) {
        svc_done = ensure(ctx, conn, RC_APPLY_SERVICE, s, want_svc, NULL, blocked,
                          sizeof(blocked), err, errlen);
        ok = svc_done != RC_APPLY_FAILED;
    }
    cJSON_Delete(want_dep);
    cJSON_Delete(want_svc);
    report_applies(ctx, s, dep_done == RC_APPLY_FAILED ? -1 : dep_done,
                   svc_done == RC_APPLY_FAILED ? -1 : svc_done, carried);
    if (!ok && blocked[0]) {
        in.blocked_reason = "NameConflict";
        in.blocked_message = blocked;
        char ignored[256];
        write_status(ctx, conn, s, &in, ignored, sizeof(ignored));
        snprintf(err, errlen, "%s", blocked);
        result = RC_RETRY;
        goto out;
    }
    if (!ok) {
        /* Say so on the object too: a user reading status must not see a
         * healthy Pending while every apply fails. */
        struct rc_event_target t = { s->ns, s->name, s->uid };
        if (!may_write(ctx)) {
            result = RC_FENCED;
            goto out;
        }
        rc_event(ctx->events, &t, true, "ApplyFailed", "Apply", err, in.now);
        in.blocked_reason = "ApplyFailed";
        in.blocked_message = err;
        char ignored[256];
        write_status(ctx, conn, s, &in, ignored, sizeof(ignored));
        result = RC_RETRY;
        goto out;
    }
    result = write_status(ctx, conn, s, &in, err, errlen);
out:
    free(s);
    return result;
}
