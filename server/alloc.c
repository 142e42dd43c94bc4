/*
 * alloc.c — see alloc.h.  Why each setting (issue 7 has the runs):
 *
 *  - One arena (M_ARENA_MAX 1).  glibc gives each thread that meets
 *    contention its own arena (up to 8 per core), and each keeps its own
 *    free memory; the operator's threads mostly wait on the network.
 *  - No per-thread caches (tcache_count 0, through srv_alloc_reexec).  A
 *    thread keeps up to 7 freed blocks of each of 64 sizes for itself;
 *    after parsing API responses each worker held ~70 KB that no other
 *    thread and no trim could use (measured at 1 000 creates with 12
 *    workers: heap 2.6 -> 1.8 MB), and a thread's cached blocks sit
 *    between the blocks others keep, so they fragment the heap too.  The
 *    cost is the arena lock on every malloc: webhook throughput at 50
 *    connections 0.86 -> 0.83 of the TLS floor (bench/webhook).
 *  - Large blocks (request bodies up to 7 MiB, list responses) by mmap, so
 *    they go back to the kernel when freed; a fixed threshold also stops
 *    glibc from raising it dynamically after the first big free.
 *  - Trim: a relist or a burst of events builds and frees megabytes of
 *    small JSON nodes; glibc only returns the top of the heap, so the free
 *    pages in the middle stay resident.  srv_alloc_maybe_trim gives them
 *    back (malloc_trim: MADV_DONTNEED on whole free pages) when the
 *    process grew by SRV_ALLOC_TRIM_STEP since the last trim (growth read
 *    from the resident size: a burst that reuses trimmed pages and frees
 *    them again between two looks leaves the free count where it was but
 *    the pages resident), or the free count did (workers that freed their
 *    connections below blocks still in use: the size does not move).
 */
#include "alloc.h"

#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memtools.h"

/* "name=value:name=value"; a tunable named once is not named again. */
#define TUNABLES_MAX 1024

void srv_alloc_reexec(char **argv)
{
#if defined(IO_ASAN)
    (void)argv;   /* the sanitizer's allocator: glibc's tunables do nothing */
#else
    if (ON_VALGRIND())
        return;   /* memcheck replaces malloc: nothing to tune, a slow exec */
    const char *have = getenv("GLIBC_TUNABLES");
    if (have && strstr(have, "glibc.malloc.tcache_count"))
        return;
    char want[TUNABLES_MAX];
    int n = have && *have
                ? snprintf(want, sizeof(want), "%s:%s", have, SRV_ALLOC_TUNABLE)
                : snprintf(want, sizeof(want), "%s", SRV_ALLOC_TUNABLE);
    if (n < 0 || (size_t)n >= sizeof(want))
        return;
    /* The binary's own path (not /proc/self/exe itself: under a tool that
     * runs us, that is the tool). */
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0 || (size_t)len >= sizeof(self) - 1)
        return;
    self[len] = '\0';
    if (setenv("GLIBC_TUNABLES", want, 1) != 0)
        return;
    execv(self, argv);
    /* Still here: run as we are, with the environment as it was. */
    if (have)
        setenv("GLIBC_TUNABLES", have, 1);
    else
        unsetenv("GLIBC_TUNABLES");
#endif
}

void srv_alloc_tune(void)
{
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

/* Resident bytes of this process (/proc/self/statm), or 0 if unknown. */
static size_t resident_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    (void)strtoull(buf, &end, 10);            /* size */
    unsigned long long resident = strtoull(end, NULL, 10);
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)resident * (size_t)page : 0;
}

bool srv_alloc_maybe_trim(void)
{
    static size_t after_last_trim, free_after_last_trim;
    size_t rss = resident_bytes();
    size_t free_now = mallinfo2().fordblks;
    bool grew = rss == 0 || rss >= after_last_trim + SRV_ALLOC_TRIM_STEP;
    bool freed = free_now >= free_after_last_trim + SRV_ALLOC_TRIM_STEP;
    if (rss < after_last_trim)
        after_last_trim = rss;  /* shrank on its own: count from here */
    if (free_now < free_after_last_trim)
        free_after_last_trim = free_now;
    if (!grew && !freed)
        return false;
    if (free_now < SRV_ALLOC_TRIM_STEP)
        return false;   /* the growth is in use, not free: nothing to give back */
    malloc_trim(0);
    after_last_trim = resident_bytes();
    free_after_last_trim = mallinfo2().fordblks;
    return true;
}
