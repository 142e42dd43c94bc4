/*
 * test_pool.c — rc_pool: every size gets an aligned block at least that
 * big, blocks are reused, pages left empty are given back (one kept per
 * class), large blocks are mapped and unmapped, calloc zeroes reused
 * blocks, and threads allocating and freeing at once leave nothing behind.
 * Under valgrind the pool is bypassed on purpose (memcheck checks the
 * callers instead): there the tests check that nothing went to the pool.
 */
#include <criterion/criterion.h>

#include "rc_pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MANY 20000u
#define THREADS 4
#define ROUNDS 20000u

static struct rc_pool_stats stats(void)
{
    struct rc_pool_stats s;
    rc_pool_stats(&s);
    return s;
}

Test(pool, every_size_is_aligned_big_enough_and_writable)
{
    void *blocks[RC_POOL_SMALL_MAX + 200];
    for (size_t n = 0; n < RC_POOL_SMALL_MAX + 200; n++) {
        blocks[n] = rc_pool_alloc(n);
        cr_assert_not_null(blocks[n], "size %zu", n);
        cr_expect_eq((uintptr_t)blocks[n] % 16, 0, "size %zu not 16-aligned", n);
        cr_expect_geq(rc_pool_size(blocks[n]), n, "size %zu", n);
        memset(blocks[n], 0xab, n);
    }
    for (size_t n = 0; n < RC_POOL_SMALL_MAX + 200; n++)
        rc_pool_free(blocks[n]);
    rc_pool_free(NULL);
    struct rc_pool_stats s = stats();
    cr_expect_eq(s.small_bytes, 0);
    cr_expect_eq(s.large_bytes, 0);
}

Test(pool, small_blocks_cost_their_class_only)
{
    void *p = rc_pool_alloc(40);
    cr_assert_not_null(p);
    if (rc_pool_in_use()) {
        cr_expect_eq(rc_pool_size(p), 48);
        cr_expect_eq(stats().small_bytes, 48);
    } else {
        cr_expect_eq(stats().small_bytes, 0, "bypassed under valgrind");
    }
    rc_pool_free(p);
}

Test(pool, a_freed_block_is_reused)
{
    void *a = rc_pool_alloc(100);
    rc_pool_free(a);
    void *b = rc_pool_alloc(100);
    if (rc_pool_in_use())
        cr_expect_eq(a, b, "the block just freed comes back first");
    rc_pool_free(b);
}

Test(pool, calloc_zeroes_a_reused_block)
{
    unsigned char *a = rc_pool_alloc(200);
    memset(a, 0xff, 200);
    rc_pool_free(a);
    unsigned char *b = rc_pool_calloc(200);
    cr_assert_not_null(b);
    for (size_t i = 0; i < 200; i++)
        cr_assert_eq(b[i], 0, "byte %zu", i);
    rc_pool_free(b);
}

Test(pool, empty_pages_go_back_to_the_kernel)
{
    static void *p[MANY];
    for (size_t i = 0; i < MANY; i++) {
        p[i] = rc_pool_alloc(64 + (i % 4) * 16);   /* four classes */
        cr_assert_not_null(p[i]);
    }
    struct rc_pool_stats full = stats();
    for (size_t i = 0; i < MANY; i++)
        rc_pool_free(p[i]);
    struct rc_pool_stats empty = stats();
    if (!rc_pool_in_use()) {
        cr_expect_eq(full.small_pages, 0, "bypassed under valgrind");
        return;
    }
    cr_expect_gt(full.small_pages, MANY * 64 / RC_POOL_PAGE, "pages: %zu", full.small_pages);
    cr_expect_leq(empty.small_pages, 4, "one page kept per class, %zu left",
                  empty.small_pages);
    cr_expect_eq(empty.small_bytes, 0);
    /* The released pages are used again before any new region. */
    for (size_t i = 0; i < MANY; i++)
        p[i] = rc_pool_alloc(80);
    cr_expect_eq(stats().regions, full.regions);
    for (size_t i = 0; i < MANY; i++)
        rc_pool_free(p[i]);
}

Test(pool, large_blocks_are_mapped_on_their_own)
{
    size_t n = 64 * 1024 + 3;
    unsigned char *p = rc_pool_calloc(n);
    cr_assert_not_null(p);
    cr_expect_eq((uintptr_t)p % 16, 0);
    cr_expect_geq(rc_pool_size(p), n);
    cr_expect_eq(p[n - 1], 0);
    p[n - 1] = 1;
    if (rc_pool_in_use())
        cr_expect_geq(stats().large_bytes, n);
    rc_pool_free(p);
    cr_expect_eq(stats().large_bytes, 0);
    cr_expect_null(rc_pool_alloc(SIZE_MAX - 8), "an impossible size fails cleanly");
    cr_expect_null(rc_pool_alloc(RC_POOL_ALLOC_MAX + 1), "past the bound: refused");
}

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *held[64] = { 0 };
    for (unsigned i = 0; i < ROUNDS; i++) {
        unsigned slot = (unsigned)rand_r(&seed) % 64;
        rc_pool_free(held[slot]);
        size_t n = (size_t)rand_r(&seed) % (RC_POOL_SMALL_MAX + 64);
        held[slot] = rc_pool_alloc(n);
        if (held[slot])
            memset(held[slot], (int)slot, n);
    }
    for (unsigned i = 0; i < 64; i++)
        rc_pool_free(held[i]);
    return NULL;
}

Test(pool, threads_allocating_at_once_leave_nothing_behind)
{
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    struct rc_pool_stats s = stats();
    cr_expect_eq(s.small_bytes, 0);
    cr_expect_eq(s.large_bytes, 0);
}
