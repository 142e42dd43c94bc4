/*
 * rc_throttle.c — see rc_throttle.h.
 */
#include "rc_throttle.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "rc_desired.h"
#include "rc_pool.h"

struct last_write {
    const char *key;
    uint64_t sig;
    int64_t at;
    char blob[];
};
_Static_assert(offsetof(struct last_write, key) == 0, "rc_map keys come first");

int rc_throttle_init(struct rc_throttle *t)
{
    memset(t, 0, sizeof(*t));
    return pthread_mutex_init(&t->lock, NULL) == 0 ? 0 : -1;
}

static void free_value(void *arg, void *v)
{
    (void)arg;
    rc_pool_free(v);
}

void rc_throttle_free(struct rc_throttle *t)
{
    rc_map_each(&t->last, free_value, NULL);
    rc_map_free(&t->last);
    pthread_mutex_destroy(&t->lock);
}

uint64_t rc_status_signature(const cJSON *status)
{
    cJSON *copy = cJSON_Duplicate(status, true);
    if (copy == NULL)
        return 0;   /* never equal to a real signature's use: see allow() */
    cJSON *conds = cJSON_GetObjectItemCaseSensitive(copy, "conditions");
    cJSON *list = cJSON_IsArray(conds) ? conds : NULL;
    cJSON *c;
    cJSON_ArrayForEach(c, list)
        cJSON_DeleteItemFromObjectCaseSensitive(c, "message");
    uint64_t h = rc_json_hash(copy);
    cJSON_Delete(copy);
    return h;
}

bool rc_throttle_allow(struct rc_throttle *t, const char *key, uint64_t sig,
                       int64_t now)
{
    if (sig == 0)
        return true;   /* no signature (out of memory): do not hold back */
    pthread_mutex_lock(&t->lock);
    const struct last_write *w = rc_map_get(&t->last, key);
    bool allow = w == NULL || w->sig != sig || now - w->at >= RC_MESSAGE_WRITE_MIN_S ||
                 now < w->at;
    pthread_mutex_unlock(&t->lock);
    return allow;
}

void rc_throttle_wrote(struct rc_throttle *t, const char *key, uint64_t sig,
                       int64_t now, bool keep)
{
    struct last_write *fresh = NULL;
    if (keep) {
        size_t len = strlen(key) + 1;
        fresh = rc_pool_alloc(sizeof(*fresh) + len);
        if (fresh) {
            memcpy(fresh->blob, key, len);
            fresh->key = fresh->blob;
            fresh->sig = sig;
            fresh->at = now;
        }
    }
    void *old = NULL;
    pthread_mutex_lock(&t->lock);
    if (fresh == NULL || rc_map_put(&t->last, fresh, &old) != 0) {
        /* Not kept (or no memory to keep it): the next write is not held
         * back, which only costs a write. */
        old = rc_map_del(&t->last, key);
        rc_pool_free(fresh);
    }
    pthread_mutex_unlock(&t->lock);
    rc_pool_free(old);
}

size_t rc_throttle_count(struct rc_throttle *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->last.count;
    pthread_mutex_unlock(&t->lock);
    return n;
}
