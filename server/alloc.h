/*
 * alloc.h — how the operator uses glibc's allocator, in one place.
 *
 * Memory is this product's headline, and at its scale (a dozen threads,
 * tens of thousands of small blocks) the allocator's defaults cost more
 * than the data: per-thread arenas and caches each keep their own free
 * memory, and free pages in the middle of the heap are never returned.
 * The measurements behind each choice are in alloc.c.
 */
#ifndef SRV_ALLOC_H
#define SRV_ALLOC_H

#include <stdbool.h>

/* How often the main thread looks whether to trim. */
#define SRV_ALLOC_TRIM_PERIOD_S 5
/* The heap must have grown, or its free memory, by this much to trim. */
#define SRV_ALLOC_TRIM_STEP (256 * 1024)
/* The glibc tunable srv_alloc_reexec sets (see alloc.c). */
#define SRV_ALLOC_TUNABLE "glibc.malloc.tcache_count=0"

/*
 * glibc reads its tunables from GLIBC_TUNABLES only when a program starts,
 * so the per-thread caches can be turned off only by starting again: when
 * GLIBC_TUNABLES does not already say what tcache_count to use, exec this
 * same binary (same argv, same PID) with SRV_ALLOC_TUNABLE added.  Returns
 * only when it did not exec: already set (by us, or by the user, whose
 * choice stands), or the exec failed (then nothing changes but the caches).
 * Call first thing in main, before any thread or file exists.
 */
void srv_alloc_reexec(char **argv);

/* Arena count, mmap and trim thresholds: call before the first thread. */
void srv_alloc_tune(void);

/* Called every SRV_ALLOC_TRIM_PERIOD_S: give free heap pages back when the
 * process or its free memory grew by SRV_ALLOC_TRIM_STEP since the last
 * time.  Returns whether it trimmed. */
bool srv_alloc_maybe_trim(void);

#endif
