/*
 * wh_arena.h — a per-request bump allocator for the review's cJSON tree.
 *
 * Parsing an AdmissionReview builds ~30 cJSON nodes and strings, each its
 * own malloc, all freed together a few microseconds later; with the answer
 * written directly (wh_json.h) that churn was most of an admission's cost,
 * and the freed small blocks made the TLS layer's next 16 KiB allocation
 * consolidate the heap.  While an arena is active on a thread, cJSON's
 * allocations on that thread come from it (a buffer on wh_admit's stack)
 * and its frees of them are no-ops; anything that does not fit, and every
 * allocation on any other thread, goes to malloc as before.
 *
 * cJSON's hooks are process-wide, so wh_arena_install() must run once
 * before any other thread starts (serve does it with its allocator
 * tuning).  Without it wh_admit behaves the same, on malloc.
 */
#ifndef WH_ARENA_H
#define WH_ARENA_H

#include <stddef.h>

/* Room for the tree of a typical review (~3 KiB) many times over; a
 * larger body's tree continues on malloc. */
#define WH_ARENA_SIZE (16u * 1024)

struct wh_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
};

/* Route cJSON's allocations through the arena hooks.  Call before threads
 * start; idempotent. */
void wh_arena_install(void);

/* Make arena (over buf[0..cap)) this thread's current one.  Every cJSON
 * object allocated while it is active must be deleted before
 * wh_arena_end(), on this thread. */
void wh_arena_begin(struct wh_arena *arena, void *buf, size_t cap);
void wh_arena_end(void);

#endif
