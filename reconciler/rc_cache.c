/*
 * rc_cache.c — decoders and the watch-fed caches.  See rc_cache.h.
 */
#include "rc_cache.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isvc_fields.h"
#include "isvc_rules.h"
#include "rc_desired.h"
#include "rc_pool.h"

/* rc_map finds each entry's key at its start. */
_Static_assert(offsetof(struct rc_isvc, key) == 0, "rc_map keys come first");
_Static_assert(offsetof(struct rc_deploy, key) == 0, "rc_map keys come first");
_Static_assert(offsetof(struct rc_service, key) == 0, "rc_map keys come first");

/* --- a block of strings after a struct --------------------------------- */

/* An object's strings are copied into one block after its struct.  A
 * string that ends another one already packed is not copied again but
 * points into it: a Deployment's owner key is usually its own key
 * ("ns/name", same name), an InferenceService's name ends its key, and
 * every empty string is the end of any other.  ~100 bytes per
 * InferenceService with its Deployment and Service, at 5 000 of them
 * half a megabyte. */

#define STRINGS_MAX 12

struct packer {
    const char *src[STRINGS_MAX];
    size_t len[STRINGS_MAX];
    const char **dst[STRINGS_MAX];
    size_t n;
};

/* Queue s (cut to keep bytes; NULL stays NULL) for *dst. */
static void pack(struct packer *p, const char **dst, const char *s, size_t keep)
{
    if (p->n == STRINGS_MAX)
        return;
    size_t len = s ? strlen(s) : 0;
    if (len > keep)
        len = keep;
    p->src[p->n] = s;
    p->len[p->n] = len;
    p->dst[p->n] = dst;
    p->n++;
}

/* The earlier string that s (len bytes) ends, or -1. */
static int ended_by(const struct packer *p, size_t i)
{
    for (size_t j = 0; j < i; j++) {
        if (p->src[j] == NULL || p->len[j] < p->len[i])
            continue;
        if (memcmp(p->src[j] + p->len[j] - p->len[i], p->src[i], p->len[i]) == 0)
            return (int)j;
    }
    return -1;
}

/* Allocate head_size + strings, copy head in, point the fields at the
 * copies.  dst pointers were taken inside `head`; they are rebased. */
static void *pack_finish(struct packer *p, const void *head, size_t head_size)
{
    int alias[STRINGS_MAX];
    size_t total = 0;
    for (size_t i = 0; i < p->n; i++) {
        alias[i] = p->src[i] ? ended_by(p, i) : -1;
        if (p->src[i] && alias[i] < 0)
            total += p->len[i] + 1;
    }
    char *block = rc_pool_alloc(head_size + total);
    if (block == NULL)
        return NULL;
    memcpy(block, head, head_size);
    char *w = block + head_size;
    const char *copy[STRINGS_MAX];
    for (size_t i = 0; i < p->n; i++) {
        const char **field = (const char **)(block + ((const char *)p->dst[i] -
                                                      (const char *)head));
        if (p->src[i] == NULL) {
            *field = copy[i] = NULL;
            continue;
        }
        if (alias[i] >= 0) {
            size_t j = (size_t)alias[i];
            *field = copy[i] = copy[j] + p->len[j] - p->len[i];
            continue;
        }
        memcpy(w, p->src[i], p->len[i]);
        w[p->len[i]] = '\0';
        *field = copy[i] = w;
        w += p->len[i] + 1;
    }
    return block;
}

/* --- JSON helpers --------------------------------------------------------- */

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long long int_at(const cJSON *obj, const char *key, long long dflt)
{
    long long v;
    return isvc_json_integer(cJSON_GetObjectItemCaseSensitive(obj, key), &v) ? v : dflt;
}

static const cJSON *obj_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsObject(v) ? v : NULL;
}

static char cond_status(const char *s)
{
    if (s == NULL)
        return 0;
    return strcmp(s, "True") == 0 ? 'T' : strcmp(s, "False") == 0 ? 'F' : 'U';
}

/* "ns/name" of the controlling InferenceService, if any. */
static bool controller_owner(const cJSON *meta, const char *ns, char *key,
                             size_t cap, const char **uid)
{
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences");
    const cJSON *list = cJSON_IsArray(refs) ? refs : NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, list) {
        const char *kind = str_at(r, "kind"), *api = str_at(r, "apiVersion");
        const char *name = str_at(r, "name");
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller")) ||
            !kind || strcmp(kind, ISVC_KIND) != 0 || !api ||
            strncmp(api, ISVC_GROUP "/", sizeof(ISVC_GROUP)) != 0 || !name)
            continue;
        snprintf(key, cap, "%s/%s", ns, name);
        *uid = str_at(r, "uid");
        return true;
    }
    return false;
}

/* --- InferenceService ----------------------------------------------------- */

static void isvc_conditions(const cJSON *status, struct rc_isvc *e)
{
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    const cJSON *list = cJSON_IsArray(conds) ? conds : NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        const char *type = str_at(c, "type");
        for (int i = 0; type && i < RC_COND_COUNT; i++) {
            if (strcmp(type, rc_cond_name((enum rc_cond_type)i)) == 0) {
                e->cond[i].status = cond_status(str_at(c, "status"));
                e->cond[i].since = rc_time_parse(str_at(c, "lastTransitionTime"));
            }
        }
    }
}

struct rc_isvc *rc_isvc_decode(const cJSON *obj)
{
    const cJSON *meta = obj_at(obj, "metadata");
    const char *ns = meta ? str_at(meta, "namespace") : NULL;
    const char *name = meta ? str_at(meta, "name") : NULL;
    if (!ns || !name || !*ns || !*name)
        return NULL;

    struct rc_isvc e;
    memset(&e, 0, sizeof(e));
    char key[RC_KEY_BUF];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    e.generation = int_at(meta, "generation", 0);
    e.deleting = cJSON_GetObjectItemCaseSensitive(meta, "deletionTimestamp") != NULL;

    struct isvc_report rep;
    struct isvc_spec spec;
    isvc_report_init(&rep);
    isvc_spec_decode(cJSON_GetObjectItemCaseSensitive(obj, "spec"), &spec, &rep);
    char errors[RC_INVALID_KEEP];
    isvc_report_join(&rep, errors, sizeof(errors));
    e.model_len = spec.model_len;
    e.has_replicas = spec.has_replicas;
    e.replicas = spec.replicas;
    e.has_max_batch_size = spec.has_max_batch_size;
    e.max_batch_size = spec.max_batch_size;

    const cJSON *status = obj_at(obj, "status");
    e.status_hash = status ? rc_json_hash(status) : 0;
    if (status)
        isvc_conditions(status, &e);

    struct packer p = { .n = 0 };
    pack(&p, &e.key, key, sizeof(key));
    pack(&p, &e.ns, ns, 63);
    pack(&p, &e.name, name, 253);
    pack(&p, &e.uid, str_at(meta, "uid"), 64);
    pack(&p, &e.rv, str_at(meta, "resourceVersion"), 32);
    pack(&p, &e.model, spec.has_model ? spec.model : NULL, RC_MODEL_KEEP);
    pack(&p, &e.gpu_type, spec.has_gpu_type ? spec.gpu_type : NULL, RC_GPU_KEEP);
    pack(&p, &e.decode_errors, errors, RC_INVALID_KEEP - 1);
    return pack_finish(&p, &e, sizeof(e));
}

/* --- Deployment and Service ---------------------------------------------- */

static void dep_cond(const cJSON *c, struct rc_dep_cond *out)
{
    out->status = cond_status(str_at(c, "status"));
    snprintf(out->reason, sizeof(out->reason), "%s", str_at(c, "reason") ? str_at(c, "reason") : "");
    snprintf(out->message, sizeof(out->message), "%s",
             str_at(c, "message") ? str_at(c, "message") : "");
}

void rc_dep_state_decode(const cJSON *obj, struct rc_dep_state *d)
{
    memset(d, 0, sizeof(*d));
    const cJSON *meta = obj_at(obj, "metadata");
    const cJSON *spec = obj_at(obj, "spec");
    const cJSON *status = obj_at(obj, "status");
    d->exists = meta != NULL;
    d->generation = meta ? int_at(meta, "generation", 0) : 0;
    d->spec_replicas = spec ? int_at(spec, "replicas", 1) : 1;
    if (status == NULL)
        return;
    d->observed_generation = int_at(status, "observedGeneration", 0);
    d->replicas = int_at(status, "replicas", 0);
    d->ready = int_at(status, "readyReplicas", 0);
    d->available = int_at(status, "availableReplicas", 0);
    d->updated = int_at(status, "updatedReplicas", 0);
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    const cJSON *list = cJSON_IsArray(conds) ? conds : NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, list) {
        const char *type = str_at(c, "type");
        if (type == NULL)
            continue;
        if (strcmp(type, "Available") == 0)
            dep_cond(c, &d->available_cond);
        else if (strcmp(type, "Progressing") == 0)
            dep_cond(c, &d->progressing_cond);
        else if (strcmp(type, "ReplicaFailure") == 0)
            dep_cond(c, &d->failure_cond);
    }
}

struct rc_deploy *rc_deploy_decode(const cJSON *obj)
{
    const cJSON *meta = obj_at(obj, "metadata");
    const char *ns = meta ? str_at(meta, "namespace") : NULL;
    const char *name = meta ? str_at(meta, "name") : NULL;
    if (!ns || !name)
        return NULL;
    struct rc_deploy e;
    memset(&e, 0, sizeof(e));
    char key[RC_KEY_BUF], owner[RC_KEY_BUF];
    const char *owner_uid = NULL;
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    bool owned = controller_owner(meta, ns, owner, sizeof(owner), &owner_uid);
    struct rc_dep_state st;
    rc_dep_state_decode(obj, &st);
    e.exists = st.exists;
    e.generation = st.generation;
    e.observed_generation = st.observed_generation;
    e.spec_replicas = st.spec_replicas;
    e.replicas = st.replicas;
    e.ready = st.ready;
    e.available = st.available;
    e.updated = st.updated;
    e.managed_hash = rc_managed_hash(rc_deployment_shape(), obj);
    struct packer p = { .n = 0 };
    pack(&p, &e.key, key, sizeof(key));
    pack(&p, &e.owner_key, owned ? owner : NULL, sizeof(owner));
    pack(&p, &e.owner_uid, owned ? owner_uid : NULL, 64);
    const struct rc_dep_cond *from[3] = { &st.available_cond, &st.progressing_cond,
                                          &st.failure_cond };
    struct rc_dep_cond_ref *to[3] = { &e.available_cond, &e.progressing_cond,
                                      &e.failure_cond };
    for (int i = 0; i < 3; i++) {
        to[i]->status = from[i]->status;
        pack(&p, &to[i]->reason, from[i]->reason, RC_REASON_MAX - 1);
        pack(&p, &to[i]->message, from[i]->message, RC_MESSAGE_MAX - 1);
    }
    return pack_finish(&p, &e, sizeof(e));
}

void rc_deploy_state(const struct rc_deploy *d, struct rc_dep_state *out)
{
    memset(out, 0, sizeof(*out));
    out->exists = d->exists;
    out->generation = d->generation;
    out->observed_generation = d->observed_generation;
    out->spec_replicas = d->spec_replicas;
    out->replicas = d->replicas;
    out->ready = d->ready;
    out->available = d->available;
    out->updated = d->updated;
    const struct rc_dep_cond_ref *from[3] = { &d->available_cond, &d->progressing_cond,
                                              &d->failure_cond };
    struct rc_dep_cond *to[3] = { &out->available_cond, &out->progressing_cond,
                                  &out->failure_cond };
    for (int i = 0; i < 3; i++) {
        to[i]->status = from[i]->status;
        snprintf(to[i]->reason, sizeof(to[i]->reason), "%s", from[i]->reason);
        snprintf(to[i]->message, sizeof(to[i]->message), "%s", from[i]->message);
    }
}

struct rc_service *rc_service_decode(const cJSON *obj)
{
    const cJSON *meta = obj_at(obj, "metadata");
    const char *ns = meta ? str_at(meta, "namespace") : NULL;
    const char *name = meta ? str_at(meta, "name") : NULL;
    if (!ns || !name)
        return NULL;
    struct rc_service e;
    memset(&e, 0, sizeof(e));
    char key[RC_KEY_BUF], owner[RC_KEY_BUF];
    const char *owner_uid = NULL;
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    bool owned = controller_owner(meta, ns, owner, sizeof(owner), &owner_uid);
    e.managed_hash = rc_managed_hash(rc_service_shape(), obj);
    struct packer p = { .n = 0 };
    pack(&p, &e.key, key, sizeof(key));
    pack(&p, &e.owner_key, owned ? owner : NULL, sizeof(owner));
    pack(&p, &e.owner_uid, owned ? owner_uid : NULL, 64);
    return pack_finish(&p, &e, sizeof(e));
}

/* --- the caches ------------------------------------------------------------ */

int rc_cache_init(struct rc_cache *c, rc_enqueue_fn enqueue, void *arg)
{
    memset(c, 0, sizeof(*c));
    c->enqueue = enqueue;
    c->enqueue_arg = arg;
    return pthread_rwlock_init(&c->lock, NULL) == 0 ? 0 : -1;
}

static void free_value(void *arg, void *v)
{
    (void)arg;
    rc_pool_free(v);
}

static void clear_maps(struct rc_cache *c)
{
    rc_map_each(&c->isvcs, free_value, NULL);
    rc_map_each(&c->deploys, free_value, NULL);
    rc_map_each(&c->services, free_value, NULL);
    rc_map_free(&c->isvcs);
    rc_map_free(&c->deploys);
    rc_map_free(&c->services);
}

void rc_cache_clear(struct rc_cache *c)
{
    pthread_rwlock_wrlock(&c->lock);
    for (int k = 0; k < RC_KIND_COUNT; k++)
        c->gone[k]++;
    clear_maps(c);
    pthread_rwlock_unlock(&c->lock);
}

void rc_cache_free(struct rc_cache *c)
{
    clear_maps(c);
    pthread_rwlock_destroy(&c->lock);
}

/* Each kind differs only in its decoder, where the key and owner sit,
 * and its list generation. */

#define kind_ctx rc_cache_kind

static struct rc_map *map_of(struct rc_cache *c, enum rc_kind k)
{
    return k == RC_KIND_ISVC ? &c->isvcs : k == RC_KIND_DEPLOYMENT ? &c->deploys : &c->services;
}

static uint32_t *gen_of(struct rc_cache *c, enum rc_kind k)
{
    return k == RC_KIND_ISVC ? &c->gen_isvc : k == RC_KIND_DEPLOYMENT ? &c->gen_deploy
                                                            : &c->gen_service;
}

/* The key a change of this entry should wake up. */
static const char *wake_key(enum rc_kind k, const void *v)
{
    if (v == NULL)
        return NULL;
    if (k == RC_KIND_ISVC)
        return ((const struct rc_isvc *)v)->key;
    if (k == RC_KIND_DEPLOYMENT)
        return ((const struct rc_deploy *)v)->owner_key;
    return ((const struct rc_service *)v)->owner_key;
}

static uint32_t *list_gen_of(enum rc_kind k, void *v)
{
    if (k == RC_KIND_ISVC)
        return &((struct rc_isvc *)v)->list_gen;
    if (k == RC_KIND_DEPLOYMENT)
        return &((struct rc_deploy *)v)->list_gen;
    return &((struct rc_service *)v)->list_gen;
}

static void *decode(enum rc_kind k, const cJSON *obj)
{
    if (k == RC_KIND_ISVC)
        return rc_isvc_decode(obj);
    if (k == RC_KIND_DEPLOYMENT)
        return rc_deploy_decode(obj);
    return rc_service_decode(obj);
}

static void enqueue(struct rc_cache *c, const char *key)
{
    if (key && c->enqueue)
        c->enqueue(c->enqueue_arg, key);
}

static void on_list_begin(void *arg)
{
    struct kind_ctx *kc = arg;
    pthread_rwlock_wrlock(&kc->cache->lock);
    (*gen_of(kc->cache, (enum rc_kind)kc->kind))++;
    kc->cache->listing[kc->kind] = true;
    kc->cache->gone[kc->kind]++;
    pthread_rwlock_unlock(&kc->cache->lock);
}

/* A watch event that changed what the user asked for: a new object, or a
 * new spec generation.  A relist's objects are not news (controller-runtime
 * files its initial list low too). */
static bool spec_news(const struct rc_cache *c, const struct rc_isvc *old,
                      const struct rc_isvc *fresh)
{
    if (c->listing[RC_KIND_ISVC] || fresh->deleting)
        return false;
    return old == NULL || old->generation != fresh->generation;
}

static void on_event(void *arg, enum kube_event type, const cJSON *obj)
{
    struct kind_ctx *kc = arg;
    struct rc_cache *c = kc->cache;
    char wake_new[RC_KEY_BUF] = "", wake_old[RC_KEY_BUF] = "";
    void *fresh = decode(kc->kind, obj);
    if (fresh == NULL)
        return;   /* not an object we can key: nothing to cache */

    bool urgent = false;
    pthread_rwlock_wrlock(&c->lock);
    struct rc_map *m = map_of(c, kc->kind);
    void *old = NULL;
    if (type == KUBE_EVENT_DELETED) {
        old = rc_map_del(m, rc_map_key(fresh));
        c->gone[kc->kind]++;
    } else {
        c->changed[kc->kind]++;
        *list_gen_of(kc->kind, fresh) = *gen_of(c, kc->kind);
        if (rc_map_put(m, fresh, &old) != 0) {
            /* Out of memory: drop the event; the next resync relists. */
            old = NULL;
        } else {
            urgent = kc->kind == RC_KIND_ISVC && spec_news(c, old, fresh);
            snprintf(wake_new, sizeof(wake_new), "%s",
                     wake_key(kc->kind, fresh) ? wake_key(kc->kind, fresh) : "");
            fresh = NULL;   /* owned by the map now */
        }
    }
    if (old && wake_key(kc->kind, old))
        snprintf(wake_old, sizeof(wake_old), "%s", wake_key(kc->kind, old));
    if (type == KUBE_EVENT_DELETED && fresh && wake_key(kc->kind, fresh) && !wake_old[0])
        snprintf(wake_old, sizeof(wake_old), "%s", wake_key(kc->kind, fresh));
    pthread_rwlock_unlock(&c->lock);
    rc_pool_free(old);
    rc_pool_free(fresh);
    if (wake_new[0] && urgent && c->enqueue_urgent)
        c->enqueue_urgent(c->enqueue_arg, wake_new);
    else if (wake_new[0])
        enqueue(c, wake_new);
    if (wake_old[0] && strcmp(wake_old, wake_new) != 0)
        enqueue(c, wake_old);
}

struct sweep {
    struct rc_cache *cache;
    enum rc_kind kind;
    uint32_t gen;
    size_t woken;
    char (*keys)[RC_KEY_BUF];
    size_t cap;
};

static int still_listed(void *arg, void *v)
{
    struct sweep *s = arg;
    return *list_gen_of(s->kind, v) == s->gen;
}

static void drop_entry(void *arg, void *v)
{
    struct sweep *s = arg;
    const char *k = wake_key(s->kind, v);
    if (k && s->woken < s->cap)
        snprintf(s->keys[s->woken++], RC_KEY_BUF, "%s", k);
    rc_pool_free(v);
}

/* Relist done: what the list did not mention was deleted while we were
 * not watching.  Wake its owner so it is recreated or forgotten. */
static void on_list_end(void *arg)
{
    struct kind_ctx *kc = arg;
    struct rc_cache *c = kc->cache;
    struct sweep s = { .cache = c, .kind = (enum rc_kind)kc->kind };
    pthread_rwlock_wrlock(&c->lock);
    s.gen = *gen_of(c, kc->kind);
    c->listing[kc->kind] = false;
    c->gone[kc->kind]++;
    struct rc_map *m = map_of(c, kc->kind);
    s.cap = m->count;
    s.keys = s.cap ? calloc(s.cap, RC_KEY_BUF) : NULL;
    if (s.keys == NULL)
        s.cap = 0;
    rc_map_filter(m, still_listed, drop_entry, &s);
    pthread_rwlock_unlock(&c->lock);
    for (size_t i = 0; i < s.woken; i++)
        enqueue(c, s.keys[i]);
    free(s.keys);
}

static struct kube_watch_handlers handlers(struct rc_cache *c, enum rc_kind k)
{
    c->kinds[k].cache = c;
    c->kinds[k].kind = (int)k;
    struct kube_watch_handlers h = {
        .arg = &c->kinds[k],
        .on_list_begin = on_list_begin,
        .on_event = on_event,
        .on_list_end = on_list_end,
    };
    return h;
}

struct kube_watch_handlers rc_cache_isvc_handlers(struct rc_cache *c)
{
    return handlers(c, RC_KIND_ISVC);
}

struct kube_watch_handlers rc_cache_deploy_handlers(struct rc_cache *c)
{
    return handlers(c, RC_KIND_DEPLOYMENT);
}

struct kube_watch_handlers rc_cache_service_handlers(struct rc_cache *c)
{
    return handlers(c, RC_KIND_SERVICE);
}

struct rc_cache_mark rc_cache_mark(struct rc_cache *c, enum rc_kind kind)
{
    pthread_rwlock_rdlock(&c->lock);
    struct rc_cache_mark m = { c->gone[kind], c->changed[kind] };
    pthread_rwlock_unlock(&c->lock);
    return m;
}

bool rc_cache_learn(struct rc_cache *c, enum rc_kind kind,
                    const struct rc_cache_mark *since, const cJSON *obj)
{
    if (kind == RC_KIND_ISVC)
        return false;   /* only the watch knows what the user asked for */
    void *fresh = decode(kind, obj);
    if (fresh == NULL)
        return false;
    void *old = NULL;
    bool kept = false;
    pthread_rwlock_wrlock(&c->lock);
    struct rc_map *m = map_of(c, kind);
    bool present = rc_map_get(m, rc_map_key(fresh)) != NULL;
    if (c->gone[kind] == since->gone && !c->listing[kind] &&
        (!present || c->changed[kind] == since->changed)) {
        *list_gen_of(kind, fresh) = *gen_of(c, kind);
        kept = rc_map_put(m, fresh, &old) == 0;
    }
    pthread_rwlock_unlock(&c->lock);
    rc_pool_free(old);
    if (!kept)
        rc_pool_free(fresh);
    return kept;
}

void rc_cache_counts(struct rc_cache *c, size_t *isvcs, size_t *deploys,
                     size_t *services)
{
    pthread_rwlock_rdlock(&c->lock);
    *isvcs = c->isvcs.count;
    *deploys = c->deploys.count;
    *services = c->services.count;
    pthread_rwlock_unlock(&c->lock);
}

struct each_ctx {
    rc_enqueue_fn fn;
    void *arg;
};

static void each_isvc(void *arg, void *v)
{
    struct each_ctx *e = arg;
    e->fn(e->arg, ((struct rc_isvc *)v)->key);
}

void rc_cache_each_isvc(struct rc_cache *c, rc_enqueue_fn fn, void *arg)
{
    struct each_ctx e = { fn, arg };
    pthread_rwlock_rdlock(&c->lock);
    rc_map_each(&c->isvcs, each_isvc, &e);
    pthread_rwlock_unlock(&c->lock);
}
