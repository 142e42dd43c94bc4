/*
 * rc_cache.h — lean caches of InferenceServices and the Deployments and
 * Services they own.
 *
 * Full-object caches are what make Go operators reach hundreds of MB
 * (managedFields alone is 20-50 % of an object).  Here each object is
 * decoded once, from the watch, into one malloc'd block: a small struct
 * followed by the few strings reconcile needs, bounded in length.  No
 * JSON tree, no managedFields, no annotations.  Design numbers (measured
 * by the unit tests and the benchmark): about 300 bytes per
 * InferenceService, 250 per Deployment, 120 per Service, plus 16 bytes of
 * hash-table slot each.
 *
 * Concurrency: watch threads write, workers read under the same rwlock;
 * workers only read while computing desired state, never across an API
 * call.
 */
#ifndef RC_CACHE_H
#define RC_CACHE_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kube_watch.h"
#include "rc_map.h"
#include "rc_status.h"

/* Longest strings kept: longer ones are cut (and, for the model, flagged
 * so validation still reports "too long" with the true length). */
#define RC_MODEL_KEEP 257
#define RC_GPU_KEEP 64
#define RC_INVALID_KEEP 512
/* "namespace/name": 63 + 1 + 253, rounded up. */
#define RC_KEY_BUF 320

struct rc_isvc {
    const char *key;           /* "namespace/name"                      */
    const char *ns, *name, *uid, *rv;
    const char *model;         /* NULL when absent                      */
    size_t model_len;          /* true length (may exceed what is kept) */
    const char *gpu_type;      /* NULL when absent                      */
    const char *decode_errors; /* "" or wrong-type messages, joined     */
    long long generation;
    long long replicas, max_batch_size;
    bool has_replicas, has_max_batch_size;
    bool deleting;
    uint64_t status_hash;      /* rc_json_hash of .status (0 if none)   */
    struct rc_cond_prev cond[RC_COND_COUNT];
    uint32_t list_gen;
    char blob[];
};

/* A Deployment condition as cached: reason and message live in the
 * entry's blob instead of struct rc_dep_cond's fixed buffers (3 x 321
 * bytes, nearly all empty: they made a Deployment entry ~1.1 KB). */
struct rc_dep_cond_ref {
    char status;               /* 'T', 'F', 'U', or 0 when absent       */
    const char *reason, *message;  /* never NULL                        */
};

struct rc_deploy {
    const char *key;           /* "namespace/name"                      */
    const char *owner_key;     /* "namespace/owner" or NULL             */
    const char *owner_uid;
    uint64_t managed_hash;     /* rc_managed_hash with the shape        */
    bool exists;               /* the rc_dep_state fields, see below    */
    long long generation, observed_generation, spec_replicas;
    long long replicas, ready, available, updated;
    struct rc_dep_cond_ref available_cond, progressing_cond, failure_cond;
    uint32_t list_gen;
    char blob[];
};

/* The full rc_dep_state of a cached Deployment (copies the strings). */
void rc_deploy_state(const struct rc_deploy *d, struct rc_dep_state *out);

struct rc_service {
    const char *key;
    const char *owner_key;
    const char *owner_uid;
    uint64_t managed_hash;
    uint32_t list_gen;
    char blob[];
};

/* Decoders: one block each (free with rc_pool_free()), or NULL when obj is not
 * a usable object (no metadata.name/namespace).  Pure; unit-tested. */
struct rc_isvc *rc_isvc_decode(const cJSON *obj);
struct rc_deploy *rc_deploy_decode(const cJSON *obj);
struct rc_service *rc_service_decode(const cJSON *obj);
/* The Deployment part reused for apply responses. */
void rc_dep_state_decode(const cJSON *obj, struct rc_dep_state *out);

typedef void (*rc_enqueue_fn)(void *arg, const char *key);

enum rc_kind { RC_KIND_ISVC, RC_KIND_DEPLOYMENT, RC_KIND_SERVICE, RC_KIND_COUNT };

struct rc_cache;
/* What a watch handler is given: the cache and which map it feeds. */
struct rc_cache_kind {
    struct rc_cache *cache;
    int kind;
};

struct rc_cache {
    pthread_rwlock_t lock;
    struct rc_map isvcs, deploys, services;
    uint32_t gen_isvc, gen_deploy, gen_service;
    rc_enqueue_fn enqueue;
    /* For an InferenceService whose spec is news (created, or a new
     * generation) from a live watch event; NULL = enqueue. */
    rc_enqueue_fn enqueue_urgent;
    void *enqueue_arg;
    struct rc_cache_kind kinds[3];
    /* Per kind: bumped whenever an entry may have gone (a DELETED event,
     * a relist's start and end, a clear), bumped on every watch upsert, and
     * whether a relist is under way.  They make rc_cache_learn safe. */
    uint64_t gone[RC_KIND_COUNT], changed[RC_KIND_COUNT];
    bool listing[RC_KIND_COUNT];
};

int rc_cache_init(struct rc_cache *c, rc_enqueue_fn enqueue, void *arg);
void rc_cache_free(struct rc_cache *c);
/* Drop every entry (a cold standby stepping down gives its memory back). */
void rc_cache_clear(struct rc_cache *c);

/* Watch handlers that keep each map in step and enqueue the affected
 * InferenceService keys. */
struct kube_watch_handlers rc_cache_isvc_handlers(struct rc_cache *c);
struct kube_watch_handlers rc_cache_deploy_handlers(struct rc_cache *c);
struct kube_watch_handlers rc_cache_service_handlers(struct rc_cache *c);

/*
 * What a worker's own write taught it, before the watch says so: obj is
 * the API server's answer to an apply of a Deployment or Service, since
 * is rc_cache_mark taken before the write was sent.  Nothing is cached
 * while a relist is under way or if anything of the kind may have gone
 * since (so a deleted object is never brought back).  A missing entry is
 * added; an existing one is replaced only if no watch event of the kind
 * came in since (so a newer state from the watch is never overwritten).
 * The watch's own event replaces what was learned.  This spares the next
 * pass a second apply of what it just wrote.  Returns whether it was
 * cached.
 */
struct rc_cache_mark {
    uint64_t gone, changed;
};
struct rc_cache_mark rc_cache_mark(struct rc_cache *c, enum rc_kind kind);
bool rc_cache_learn(struct rc_cache *c, enum rc_kind kind,
                    const struct rc_cache_mark *since, const cJSON *obj);

/* Counts for metrics. */
void rc_cache_counts(struct rc_cache *c, size_t *isvcs, size_t *deploys,
                     size_t *services);

/* Call fn for every InferenceService key (resync); under the read lock. */
void rc_cache_each_isvc(struct rc_cache *c, rc_enqueue_fn fn, void *arg);

#endif
