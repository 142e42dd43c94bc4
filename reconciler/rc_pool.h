/*
 * rc_pool.h — memory for what lives as long as a watched object does.
 *
 * The cache entries, work-queue entries and status-throttle records of
 * every InferenceService, Deployment and Service (and the hash tables that
 * index them) are made while the reconciler is busiest: a burst of creates,
 * when workers also hold TLS connections, response bodies and JSON trees
 * for a few milliseconds each.  From one malloc heap, the long-lived
 * records end up between the short-lived blocks; when the burst ends, the
 * freed blocks are holes smaller than a page that malloc_trim cannot give
 * back (measured at 1 000 creates with 12 burst workers: 2.0 MB free in
 * the heap, 1.0 MB of it resident for good).  The pool keeps the
 * long-lived records apart, so the heap they would have pinned empties
 * and shrinks.
 *
 * Small blocks (up to RC_POOL_SMALL_MAX bytes) come from 4 KiB pages
 * carved into one size class each (16-byte steps), the pages from 1 MiB
 * regions reserved with mmap (only what is touched is resident); a page
 * whose blocks are all free is given back to the kernel.  Larger blocks
 * (the hash tables) are mapped on their own.  No per-block header: a
 * 40-byte record costs 48 bytes, not malloc's 48 + 8 rounded.
 *
 * Thread-safe (one mutex: the callers allocate at watch-event rate, not
 * per byte).  Under valgrind (memcheck cannot see inside a pool) every
 * call goes to malloc/free instead, so leaks and misuse are still found;
 * under AddressSanitizer free blocks are poisoned.
 */
#ifndef RC_POOL_H
#define RC_POOL_H

#include <stdbool.h>
#include <stddef.h>

#define RC_POOL_PAGE 4096u
#define RC_POOL_SMALL_MAX 1008u          /* at least 4 blocks a page       */
#define RC_POOL_REGION (1024u * 1024u)   /* pages are carved from these    */
#define RC_POOL_REGIONS_MAX 256u         /* 256 MiB of small blocks        */
/* Larger requests are refused (NULL): no record or table comes near it,
 * so one that asks is a size computed wrong. */
#define RC_POOL_ALLOC_MAX ((size_t)1 << 30)

/* A block of n bytes (n may be 0), or NULL when out of memory. */
void *rc_pool_alloc(size_t n);
/* The same, zeroed. */
void *rc_pool_calloc(size_t n);
/* Give back what rc_pool_alloc/rc_pool_calloc returned; NULL is a no-op. */
void rc_pool_free(void *p);
/* What a block really occupies (its class size), for tests and budgets. */
size_t rc_pool_size(const void *p);

/* False under valgrind, where every call is malloc/free (see above). */
bool rc_pool_in_use(void);

struct rc_pool_stats {
    size_t small_pages;     /* pages holding small blocks                 */
    size_t small_bytes;     /* bytes of small blocks in use (class sizes) */
    size_t large_bytes;     /* bytes mapped for large blocks              */
    size_t regions;         /* 1 MiB regions reserved                     */
};
void rc_pool_stats(struct rc_pool_stats *out);

#endif
