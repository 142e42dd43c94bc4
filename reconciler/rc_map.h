/*
 * rc_map.h — a string-keyed hash map for the caches: open addressing
 * with linear probing and backward-shift deletion, so there are no
 * tombstones to accumulate under churn.  A value's first member is its
 * key (a const char * into memory the value owns), so the table holds one
 * pointer per slot: 64 KiB less per cache of 5 000 objects than a
 * key-value pair would take.  Not thread-safe: the owner locks.
 */
#ifndef RC_MAP_H
#define RC_MAP_H

#include <stddef.h>
#include <stdint.h>

struct rc_map {
    void **slots;      /* values; NULL = empty */
    size_t cap;        /* power of two, or 0 */
    size_t count;
};

uint64_t rc_hash_str(const char *s);

/* The key a stored value starts with. */
static inline const char *rc_map_key(const void *value)
{
    return *(const char *const *)value;
}

/* NULL when absent. */
void *rc_map_get(const struct rc_map *m, const char *key);

/* Insert or replace; *old receives the replaced value (or NULL).  The key
 * pointer must stay valid while the entry is in the map.  Returns 0, or -1
 * on allocation failure (map unchanged). */
int rc_map_put(struct rc_map *m, void *value, void **old);

/* Remove; returns the value or NULL. */
void *rc_map_del(struct rc_map *m, const char *key);

/* Visit every entry; fn may not modify the map. */
void rc_map_each(const struct rc_map *m, void (*fn)(void *arg, void *value),
                 void *arg);

/* Remove every entry for which keep() returns 0, passing it to drop(). */
void rc_map_filter(struct rc_map *m, int (*keep)(void *arg, void *value),
                   void (*drop)(void *arg, void *value), void *arg);

void rc_map_free(struct rc_map *m);

#endif
