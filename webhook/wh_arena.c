/*
 * wh_arena.c — see wh_arena.h.
 */
#include "wh_arena.h"

#include <cjson/cJSON.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static _Thread_local struct wh_arena *current;

static void *arena_malloc(size_t size)
{
    struct wh_arena *a = current;
    if (a != NULL) {
        /* Round up so every block keeps malloc's alignment. */
        size_t align = alignof(max_align_t);
        size_t rounded = (size + align - 1) & ~(align - 1);
        if (rounded >= size && rounded <= a->cap - a->used) {
            void *p = a->base + a->used;
            a->used += rounded;
            return p;
        }
    }
    return malloc(size);
}

static void arena_free(void *p)
{
    struct wh_arena *a = current;
    uintptr_t u = (uintptr_t)p;
    if (a != NULL && u >= (uintptr_t)a->base &&
        u < (uintptr_t)a->base + a->cap)
        return;   /* released all at once when the arena ends */
    free(p);
}

void wh_arena_install(void)
{
    cJSON_Hooks hooks = { .malloc_fn = arena_malloc, .free_fn = arena_free };
    cJSON_InitHooks(&hooks);
}

void wh_arena_begin(struct wh_arena *arena, void *buf, size_t cap)
{
    /* Start aligned whatever buf's alignment. */
    size_t align = alignof(max_align_t);
    size_t skip = (align - (uintptr_t)buf % align) % align;
    arena->base = (unsigned char *)buf + skip;
    arena->cap = cap > skip ? cap - skip : 0;
    arena->used = 0;
    current = arena;
}

void wh_arena_end(void)
{
    current = NULL;
}
