/*
 * fuzz_cache_decoders.c — one input = one JSON value, as a watch or a
 * list page delivers an object, decoded by all four cache decoders
 * (rc_isvc_decode, rc_deploy_decode, rc_service_decode, rc_pod_decode;
 * the deployment and service ones
 * hash the managed fields with the shapes rc_shapes_init builds from the
 * default settings).
 *
 * Checks beyond the sanitizers: what the decoders promise about their
 * one-block results (NULL exactly when namespace/name are missing, the
 * key is "ns/name", every kept string is cut to its documented bound, the
 * model's true length survives the cut), and that the hashes do not
 * depend on the order of object members (the API server re-encodes with
 * sorted keys; the operator builds its own objects in its own order).
 */
#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "rc_pool.h"
#include "rc_cache.h"
#include "rc_desired.h"
#include "rc_pods.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct rc_settings s;
    rc_settings_init(&s);
    if (rc_shapes_init(&s) != 0)
        abort();
    /* The shapes live for the whole run (as in the operator); LeakSanitizer
     * still sees them reachable through the globals. */
    return 0;
}

static const char *meta_str(const cJSON *obj, const char *key)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_IsObject(meta)
                         ? cJSON_GetObjectItemCaseSensitive(meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A condition status as the decoders keep it: 0 when absent. */
static bool cond_ok(char s)
{
    return s == 0 || s == 'T' || s == 'F' || s == 'U';
}

static void check_cut(const char *kept, const char *src, size_t keep,
                      const char *what)
{
    if (src == NULL) {
        FUZZ_CHECK(kept == NULL, "%s kept without a source", what);
        return;
    }
    FUZZ_CHECK(kept != NULL, "%s dropped", what);
    size_t n = strlen(src) < keep ? strlen(src) : keep;
    FUZZ_CHECK(strlen(kept) == n && memcmp(kept, src, n) == 0,
               "%s: kept \"%s\", source \"%.80s\" cut at %zu", what, kept,
               src, keep);
}

/* isvc_spec_decode reads every member, so with a key given twice the
 * last one wins (as in Go's encoding/json); cJSON's lookup finds the
 * first. */
static const cJSON *last_member(const cJSON *obj, const char *key)
{
    const cJSON *found = NULL;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0)
            found = c;
    return found;
}

static void check_key(const char *key, const char *ns, const char *name)
{
    char want[RC_KEY_BUF];
    snprintf(want, sizeof want, "%s/%s", ns, name);
    FUZZ_CHECK(key && strcmp(key, want) == 0, "key \"%s\" for %s/%s",
               key ? key : "(null)", ns, name);
}

/* Reverse the members of every object, recursively.  Returns true when
 * some object has a key twice: then "the first one wins" lookups see a
 * different member and order independence does not hold by design. */
static bool reverse_objects(cJSON *v)
{
    bool dup = false;
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return false;
    for (cJSON *c = v->child; c; c = c->next) {
        dup |= reverse_objects(c);
        if (cJSON_IsObject(v))
            for (cJSON *d = c->next; d && !dup; d = d->next)
                dup = c->string && d->string && strcmp(c->string, d->string) == 0;
    }
    if (!cJSON_IsObject(v) || v->child == NULL)
        return dup;
    /* cJSON lists: next is NULL-terminated, the head's prev is the tail. */
    cJSON *head = v->child, *prev = NULL, *c = head;
    while (c) {
        cJSON *next = c->next;
        c->next = prev;
        c->prev = next;
        prev = c;
        c = next;
    }
    v->child = prev;      /* the old tail */
    prev->prev = head;    /* new head's prev is the new tail */
    return dup;
}

/* The instance label rc_pod_decode keys its owner by, or NULL. */
static const char *instance_label(const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *labels = cJSON_IsObject(meta)
                              ? cJSON_GetObjectItemCaseSensitive(meta, "labels") : NULL;
    const cJSON *v = cJSON_IsObject(labels)
                         ? cJSON_GetObjectItemCaseSensitive(labels, RC_POD_INSTANCE_LABEL)
                         : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A pod: NULL exactly without namespace, name or instance label; keys cut
 * as documented; a message exactly when there is a problem, within its
 * bound, and a problem code status knows a reason for. */
static void check_pod(const cJSON *obj, const char *ns, const char *name)
{
    struct rc_pod *p = rc_pod_decode(obj);
    const char *inst = instance_label(obj);
    bool placeable = ns && name && inst && ns[0] && name[0] && inst[0];
    FUZZ_CHECK((p != NULL) == placeable, "pod decoded %d, placeable %d", p != NULL,
               placeable);
    if (p == NULL)
        return;
    char want[RC_KEY_BUF];
    snprintf(want, sizeof want, "%.63s/%.253s", ns, name);
    FUZZ_CHECK(strcmp(p->key, want) == 0, "pod key \"%s\"", p->key);
    snprintf(want, sizeof want, "%.63s/%.253s", ns, inst);
    FUZZ_CHECK(strcmp(p->owner_key, want) == 0, "pod owner \"%s\"", p->owner_key);
    FUZZ_CHECK(p->problem < RC_POD_PROBLEM_COUNT, "pod problem %d", p->problem);
    FUZZ_CHECK((p->message != NULL) == (p->problem != RC_POD_OK),
               "pod message %p with problem %d", (const void *)p->message, p->problem);
    FUZZ_CHECK(!p->message || strlen(p->message) < RC_POD_MESSAGE_MAX, "pod message");
    FUZZ_CHECK(p->problem == RC_POD_OK ||
                   rc_pod_problem_reason((enum rc_pod_problem)p->problem)[0],
               "pod problem %d without a reason", p->problem);
    rc_pool_free(p);
}

static void decode_all(const cJSON *obj, struct rc_isvc **i, struct rc_deploy **d,
                       struct rc_service **s)
{
    *i = rc_isvc_decode(obj);
    *d = rc_deploy_decode(obj);
    *s = rc_service_decode(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *obj = cJSON_ParseWithLength((const char *)data, size);
    if (obj == NULL)
        return 0;

    struct rc_isvc *i;
    struct rc_deploy *d;
    struct rc_service *s;
    decode_all(obj, &i, &d, &s);

    const char *ns = meta_str(obj, "namespace"), *name = meta_str(obj, "name");
    bool keyed = ns && name;
    FUZZ_CHECK((d != NULL) == keyed && (s != NULL) == keyed,
               "deploy/service decoded %d/%d, namespace and name present %d",
               d != NULL, s != NULL, keyed);
    FUZZ_CHECK((i != NULL) == (keyed && ns[0] && name[0]),
               "isvc decoded %d with namespace \"%s\" name \"%s\"", i != NULL,
               ns ? ns : "(null)", name ? name : "(null)");
    if (i) {
        check_key(i->key, ns, name);
        check_cut(i->ns, ns, 63, "isvc namespace");
        check_cut(i->name, name, 253, "isvc name");
        check_cut(i->uid, meta_str(obj, "uid"), 64, "isvc uid");
        check_cut(i->rv, meta_str(obj, "resourceVersion"), 32, "isvc rv");
        FUZZ_CHECK(i->decode_errors && strlen(i->decode_errors) < RC_INVALID_KEEP,
                   "decode_errors");
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
        const cJSON *model = cJSON_IsObject(spec) ? last_member(spec, "model")
                                                  : NULL;
        if (i->model) {
            FUZZ_CHECK(cJSON_IsString(model) &&
                           i->model_len == strlen(model->valuestring),
                       "model_len %zu", i->model_len);
            check_cut(i->model, model->valuestring, RC_MODEL_KEEP, "model");
        }
        FUZZ_CHECK(!i->gpu_type || strlen(i->gpu_type) <= RC_GPU_KEEP, "gpu");
        for (int c = 0; c < RC_COND_COUNT; c++)
            FUZZ_CHECK(cond_ok(i->cond[c].status),
                       "condition status %d", i->cond[c].status);
    }
    if (d) {
        check_key(d->key, ns, name);
        FUZZ_CHECK(!d->owner_uid || d->owner_key, "owner uid without owner");
        FUZZ_CHECK(!d->owner_uid || strlen(d->owner_uid) <= 64, "owner uid");
        const struct rc_dep_cond_ref *cs[] = {&d->available_cond,
                                              &d->progressing_cond,
                                              &d->failure_cond};
        for (size_t c = 0; c < 3; c++)
            FUZZ_CHECK(cond_ok(cs[c]->status) &&
                           strlen(cs[c]->reason) < RC_REASON_MAX &&
                           strlen(cs[c]->message) < RC_MESSAGE_MAX,
                       "deployment condition %zu", c);
    }
    check_pod(obj, ns, name);
    if (s) {
        check_key(s->key, ns, name);
        FUZZ_CHECK(!s->owner_uid || strlen(s->owner_uid) <= 64, "owner uid");
        if (d)
            FUZZ_CHECK((d->owner_key == NULL) == (s->owner_key == NULL) &&
                           (!d->owner_key ||
                            strcmp(d->owner_key, s->owner_key) == 0),
                       "deployment and service see different owners");
    }

    /* The same object with every member list reversed hashes the same. */
    cJSON *rev = cJSON_Duplicate(obj, true);
    if (rev && !reverse_objects(rev)) {
        struct rc_isvc *i2;
        struct rc_deploy *d2;
        struct rc_service *s2;
        decode_all(rev, &i2, &d2, &s2);
        FUZZ_CHECK(!i == !i2 && !d == !d2 && !s == !s2, "decoded differently "
                   "with members reversed");
        FUZZ_CHECK(!i || i->status_hash == i2->status_hash,
                   "isvc status hash depends on member order");
        FUZZ_CHECK(!d || d->managed_hash == d2->managed_hash,
                   "deployment managed hash depends on member order");
        FUZZ_CHECK(!s || s->managed_hash == s2->managed_hash,
                   "service managed hash depends on member order");
        rc_pool_free(i2);
        rc_pool_free(d2);
        rc_pool_free(s2);
    }
    cJSON_Delete(rev);

    rc_pool_free(i);
    rc_pool_free(d);
    rc_pool_free(s);
    cJSON_Delete(obj);
    return 0;
}
