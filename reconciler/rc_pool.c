/*
 * rc_pool.c — see rc_pool.h.
 *
 * A page begins with its header; its blocks follow, all of one class.  A
 * page with room is on its class's list; a full one is on none.  Blocks
 * never handed out are taken from the page's end ("fresh"), so a new page
 * is touched one block at a time; freed blocks form a list through their
 * first bytes.  A page left empty goes back to the kernel (MADV_DONTNEED)
 * unless it is its class's only page with room (a record deleted and made
 * again must not cost a page fault each time).  Which pages of a region are
 * free is kept in a bitmap beside the region, not in the pages: a page
 * given back reads as zeros.
 */
#include "rc_pool.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memtools.h"

#if defined(IO_ASAN)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define STEP 16u
#define CLASSES (RC_POOL_SMALL_MAX / STEP)
#define PAGES_PER_REGION (RC_POOL_REGION / RC_POOL_PAGE)
#define LARGE_MAGIC 0x6c61726765u          /* "large" */

struct page {
    struct page *next, *prev;       /* its class's list of pages with room */
    void *free;                     /* first freed block                   */
    uint16_t cls;
    uint16_t used;                  /* blocks handed out                   */
    uint16_t fresh;                 /* blocks never handed out (at the end) */
    uint16_t count;                 /* blocks in the page                  */
};
#define HEADER ((sizeof(struct page) + STEP - 1) / STEP * STEP)
_Static_assert(HEADER + 4 * RC_POOL_SMALL_MAX <= RC_POOL_PAGE, "4 blocks a page");
_Static_assert(RC_POOL_SMALL_MAX % STEP == 0, "classes are STEP apart");

struct region {
    char *base;
    unsigned bumped;                /* pages ever handed out, from the start */
    unsigned released;              /* of those, free again                  */
    uint64_t free_map[PAGES_PER_REGION / 64];  /* released pages            */
};

/* Large blocks: a mapping of their own behind this header. */
struct large {
    size_t mapped;
    size_t magic;
};
_Static_assert(sizeof(struct large) % STEP == 0, "large blocks stay aligned");

static struct {
    pthread_mutex_t lock;
    struct page *with_room[CLASSES];
    struct region regions[RC_POOL_REGIONS_MAX];
    unsigned nregions;
    struct rc_pool_stats stats;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t class_of(size_t n)
{
    return n == 0 ? 0 : (n - 1) / STEP;
}

static size_t class_size(size_t cls)
{
    return (cls + 1) * STEP;
}

static struct region *region_of(const void *p)
{
    const char *c = p;
    for (unsigned i = 0; i < pool.nregions; i++)
        if (c >= pool.regions[i].base && c < pool.regions[i].base + RC_POOL_REGION)
            return &pool.regions[i];
    return NULL;
}

/* A page for class cls, from a released one, the current region's end, or
 * a new region.  NULL when out of memory. */
static struct page *page_new(size_t cls)
{
    char *at = NULL;
    for (unsigned i = 0; i < pool.nregions && !at; i++) {
        struct region *r = &pool.regions[i];
        if (r->released > 0) {
            for (unsigned w = 0; w < PAGES_PER_REGION / 64; w++) {
                if (r->free_map[w] == 0)
                    continue;
                unsigned bit = (unsigned)__builtin_ctzll(r->free_map[w]);
                r->free_map[w] &= ~(1ull << bit);
                r->released--;
                at = r->base + (size_t)(w * 64 + bit) * RC_POOL_PAGE;
                break;
            }
        } else if (r->bumped < PAGES_PER_REGION) {
            at = r->base + (size_t)r->bumped++ * RC_POOL_PAGE;
        }
    }
    if (!at) {
        if (pool.nregions == RC_POOL_REGIONS_MAX)
            return NULL;
        void *m = mmap(NULL, RC_POOL_REGION, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        struct region *r = &pool.regions[pool.nregions++];
        memset(r, 0, sizeof(*r));
        r->base = m;
        r->bumped = 1;
        at = m;
        pool.stats.regions++;
    }
    struct page *p = (struct page *)at;
    memset(p, 0, sizeof(*p));
    p->cls = (uint16_t)cls;
    p->count = (uint16_t)((RC_POOL_PAGE - HEADER) / class_size(cls));
    p->fresh = p->count;
    POISON(at + HEADER, RC_POOL_PAGE - HEADER);
    pool.stats.small_pages++;
    return p;
}

/* An empty page back to the kernel, and into its region's free map. */
static void page_release(struct page *p)
{
    struct region *r = region_of(p);
    size_t idx = (size_t)((char *)p - r->base) / RC_POOL_PAGE;
    UNPOISON((char *)p + HEADER, RC_POOL_PAGE - HEADER);
    madvise(p, RC_POOL_PAGE, MADV_DONTNEED);
    r->free_map[idx / 64] |= 1ull << (idx % 64);
    r->released++;
    pool.stats.small_pages--;
}

static void list_push(struct page *p)
{
    struct page **head = &pool.with_room[p->cls];
    p->prev = NULL;
    p->next = *head;
    if (*head)
        (*head)->prev = p;
    *head = p;
}

static void list_remove(struct page *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        pool.with_room[p->cls] = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
}

static void *large_alloc(size_t n)
{
    size_t mapped = (n + sizeof(struct large) + RC_POOL_PAGE - 1) / RC_POOL_PAGE *
                    RC_POOL_PAGE;
    void *m = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    struct large *h = m;
    h->mapped = mapped;
    h->magic = LARGE_MAGIC;
    pthread_mutex_lock(&pool.lock);
    pool.stats.large_bytes += mapped;
    pthread_mutex_unlock(&pool.lock);
    return h + 1;
}

void *rc_pool_alloc(size_t n)
{
    if (n > RC_POOL_ALLOC_MAX)
        return NULL;
    if (ON_VALGRIND())
        return malloc(n ? n : 1);
    if (n > RC_POOL_SMALL_MAX)
        return large_alloc(n);
    size_t cls = class_of(n), size = class_size(cls);
    pthread_mutex_lock(&pool.lock);
    struct page *p = pool.with_room[cls];
    if (!p) {
        p = page_new(cls);
        if (!p) {
            pthread_mutex_unlock(&pool.lock);
            return NULL;
        }
        list_push(p);
    }
    char *b;
    if (p->free) {
        b = p->free;
        UNPOISON(b, size);
        memcpy(&p->free, b, sizeof(void *));
    } else {
        b = (char *)p + HEADER + (size_t)(p->count - p->fresh) * size;
        p->fresh--;
        UNPOISON(b, size);
    }
    p->used++;
    if (!p->free && p->fresh == 0)
        list_remove(p);
    pool.stats.small_bytes += size;
    pthread_mutex_unlock(&pool.lock);
    return b;
}

void *rc_pool_calloc(size_t n)
{
    void *p = rc_pool_alloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

void rc_pool_free(void *ptr)
{
    if (!ptr)
        return;
    if (ON_VALGRIND()) {
        free(ptr);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    if (!region_of(ptr)) {
        struct large *h = (struct large *)ptr - 1;
        if (h->magic != LARGE_MAGIC)
            abort();   /* not ours: a double free or a stray pointer */
        h->magic = 0;
        pool.stats.large_bytes -= h->mapped;
        pthread_mutex_unlock(&pool.lock);
        munmap(h, h->mapped);
        return;
    }
    struct page *p = (struct page *)((uintptr_t)ptr & ~(uintptr_t)(RC_POOL_PAGE - 1));
    size_t size = class_size(p->cls);
    bool was_full = !p->free && p->fresh == 0;
    memcpy(ptr, &p->free, sizeof(void *));
    p->free = ptr;
    POISON(ptr, size);
    p->used--;
    pool.stats.small_bytes -= size;
    if (was_full)
        list_push(p);
    if (p->used == 0 && (p->next || p->prev)) {
        list_remove(p);
        page_release(p);
    }
    pthread_mutex_unlock(&pool.lock);
}

bool rc_pool_in_use(void)
{
    return !ON_VALGRIND();
}

size_t rc_pool_size(const void *ptr)
{
    if (!ptr)
        return 0;
    if (ON_VALGRIND())
        return malloc_usable_size((void *)ptr);
    pthread_mutex_lock(&pool.lock);
    bool small = region_of(ptr) != NULL;
    pthread_mutex_unlock(&pool.lock);
    if (!small) {
        const struct large *h = (const struct large *)ptr - 1;
        return h->mapped - sizeof(*h);
    }
    const struct page *p =
        (const struct page *)((uintptr_t)ptr & ~(uintptr_t)(RC_POOL_PAGE - 1));
    return class_size(p->cls);
}

void rc_pool_stats(struct rc_pool_stats *out)
{
    pthread_mutex_lock(&pool.lock);
    *out = pool.stats;
    pthread_mutex_unlock(&pool.lock);
}
