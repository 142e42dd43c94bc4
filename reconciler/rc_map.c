/*
 * rc_map.c — see rc_map.h.
 */
#include "rc_map.h"
#include "rc_pool.h"

#include <stdlib.h>
#include <string.h>

#define RC_MAP_MIN_CAP 16

uint64_t rc_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t find(const struct rc_map *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    while (m->slots[i] && strcmp(rc_map_key(m->slots[i]), key) != 0)
        i = (i + 1) & mask;
    return i;
}

void *rc_map_get(const struct rc_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = find(m, key, rc_hash_str(key));
    return m->slots[i];
}

static int grow(struct rc_map *m, size_t cap)
{
    void **slots = rc_pool_calloc(cap * sizeof(*slots));
    if (slots == NULL)
        return -1;
    struct rc_map old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i]) {
            const char *k = rc_map_key(old.slots[i]);
            m->slots[find(m, k, rc_hash_str(k))] = old.slots[i];
        }
    }
    rc_pool_free(old.slots);
    return 0;
}

int rc_map_put(struct rc_map *m, void *value, void **old)
{
    *old = NULL;
    const char *key = rc_map_key(value);
    /* Keep the load factor under 3/4 so probes stay short. */
    if ((m->count + 1) * 4 > m->cap * 3 &&
        grow(m, m->cap ? m->cap * 2 : RC_MAP_MIN_CAP) != 0)
        return -1;
    size_t i = find(m, key, rc_hash_str(key));
    if (m->slots[i])
        *old = m->slots[i];
    else
        m->count++;
    m->slots[i] = value;
    return 0;
}

/* Backward-shift deletion: pull later entries of the probe run into the
 * hole so lookups never need tombstones. */
static void remove_at(struct rc_map *m, size_t i)
{
    size_t mask = m->cap - 1;
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (m->slots[j] == NULL)
            break;
        size_t home = (size_t)rc_hash_str(rc_map_key(m->slots[j])) & mask;
        /* Move j into the hole if its home is not in (hole, j]. */
        int between = hole <= j ? (home > hole && home <= j)
                                : (home > hole || home <= j);
        if (!between) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole] = NULL;
    m->count--;
}

void *rc_map_del(struct rc_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t i = find(m, key, rc_hash_str(key));
    void *v = m->slots[i];
    if (v == NULL)
        return NULL;
    remove_at(m, i);
    return v;
}

void rc_map_each(const struct rc_map *m, void (*fn)(void *arg, void *value),
                 void *arg)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i])
            fn(arg, m->slots[i]);
}

void rc_map_filter(struct rc_map *m, int (*keep)(void *arg, void *value),
                   void (*drop)(void *arg, void *value), void *arg)
{
    /* A removal shifts later entries back into the hole, possibly across
     * the end of the table; re-check slot i after a removal and repeat the
     * pass until nothing moves (keep() must be stable, so this ends). */
    int removed;
    do {
        removed = 0;
        for (size_t i = 0; i < m->cap;) {
            void *v = m->slots[i];
            if (v == NULL || keep(arg, v)) {
                i++;
                continue;
            }
            remove_at(m, i);
            drop(arg, v);
            removed = 1;
        }
    } while (removed);
}

void rc_map_free(struct rc_map *m)
{
    rc_pool_free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}
