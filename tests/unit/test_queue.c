/*
 * test_queue.c — rc_queue semantics: dedup, FIFO, exclusivity, delayed
 * adds (earlier wins), backoff, the bound, shutdown, stats, and a
 * many-thread stress test checking exclusivity and "an add after a
 * processing started leads to another processing".
 *
 * Timing: delays are tens of milliseconds; assertions use the queue's own
 * lower bounds (a key is never early) and only very generous upper bounds
 * (seconds) to tell "soon" from "the long delay we overrode".
 */
#include <criterion/criterion.h>

#include "rc_queue.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LONG_MS       10000u   /* a delay no test waits out            */
#define SOON_MS       5000u    /* generous bound for "not the long one" */
#define BLOCK_MS      100u     /* long enough for a thread to block    */
#define NS_PER_MS     1000000ull

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u,
                          .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static struct rc_queue *make(size_t max_keys, uint64_t base_ms,
                             uint64_t cap_ms)
{
    struct rc_queue_opts o = {.max_keys = max_keys,
                              .backoff_base_ms = base_ms,
                              .backoff_cap_ms = cap_ms};
    struct rc_queue *q = NULL;
    cr_assert_eq(rc_queue_new(&o, &q), 0);
    cr_assert_not_null(q);
    return q;
}

static struct rc_queue_stats stats(struct rc_queue *q)
{
    struct rc_queue_stats s;
    rc_queue_stats(q, &s);
    return s;
}

static void expect_get(struct rc_queue *q, const char *want)
{
    char key[RC_QUEUE_KEY_MAX];
    cr_assert_eq(rc_queue_get(q, key), 0);
    cr_assert_str_eq(key, want);
}

/* Get the next key and return how long (ms) since t0 it became available. */
static uint64_t get_after(struct rc_queue *q, const char *want, uint64_t t0)
{
    expect_get(q, want);
    return mono_ms() - t0;
}

/* A getter on its own thread, to show who blocks and who is woken. */
struct getter {
    struct rc_queue *q;
    pthread_t thread;
    char key[RC_QUEUE_KEY_MAX];
    int rc;
    atomic_bool returned;
};

static void *getter_main(void *arg)
{
    struct getter *g = arg;
    g->rc = rc_queue_get(g->q, g->key);
    atomic_store(&g->returned, true);
    return NULL;
}

static void getter_start(struct getter *g, struct rc_queue *q)
{
    memset(g, 0, sizeof *g);
    g->q = q;
    atomic_init(&g->returned, false);
    cr_assert_eq(pthread_create(&g->thread, NULL, getter_main, g), 0);
}

static void getter_join(struct getter *g)
{
    cr_assert_eq(pthread_join(g->thread, NULL), 0);
}

TestSuite(queue, .timeout = 60);   /* a lost key hangs a getter */

Test(queue, new_rejects_bad_options_and_accepts_defaults)
{
    struct rc_queue *q = NULL;
    struct rc_queue_opts bad = {.backoff_base_ms = 5000,
                                .backoff_cap_ms = 1000};
    cr_expect_eq(rc_queue_new(&bad, &q), -1);
    cr_expect_null(q);
    /* Only the base given: above the default cap is still bad. */
    bad.backoff_base_ms = 61000;
    bad.backoff_cap_ms = 0;
    cr_expect_eq(rc_queue_new(&bad, &q), -1);
    cr_assert_eq(rc_queue_new(NULL, &q), 0);
    /* Default base is 1 s: the first retry is scheduled, not ready. */
    cr_expect_eq(rc_queue_add_rate_limited(q, "ns/a"), 0);
    cr_expect_eq(stats(q).delayed, 1);
    rc_queue_free(q);
}

Test(queue, invalid_keys_are_refused)
{
    struct rc_queue *q = make(0, 0, 0);
    char longest[RC_QUEUE_KEY_MAX];
    char too_long[RC_QUEUE_KEY_MAX + 1];
    memset(longest, 'k', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'k', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';

    cr_expect_eq(rc_queue_add(q, NULL), -1);
    cr_expect_eq(rc_queue_add(q, ""), -1);
    cr_expect_eq(rc_queue_add(q, too_long), -1);
    cr_expect_eq(rc_queue_add_after(q, "", 5), -1);
    cr_expect_eq(rc_queue_add_rate_limited(q, too_long), -1);
    cr_expect_eq(rc_queue_failures(q, NULL), 0);
    rc_queue_forget(q, "");
    rc_queue_done(q, NULL);
    cr_expect_eq(rc_queue_tracked(q), 0);

    cr_assert_eq(rc_queue_add(q, longest), 0);
    expect_get(q, longest);
    rc_queue_done(q, longest);
    cr_expect_eq(stats(q).adds, 1);
    rc_queue_free(q);
}

Test(queue, duplicate_adds_give_one_get)
{
    struct rc_queue *q = make(0, 0, 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rc_queue_add(q, "ns/a"), 0);
    cr_expect_eq(stats(q).depth, 1);
    expect_get(q, "ns/a");
    cr_expect_eq(stats(q).depth, 0);
    rc_queue_done(q, "ns/a");
    cr_expect_eq(stats(q).depth, 0);
    cr_expect_eq(stats(q).adds, 1);
    rc_queue_free(q);
}

Test(queue, ready_keys_come_out_in_fifo_order)
{
    static const char *const keys[] = {"ns/c", "ns/a", "ns/b", "other/a"};
    struct rc_queue *q = make(0, 0, 0);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        cr_assert_eq(rc_queue_add(q, keys[i]), 0);
    cr_assert_eq(rc_queue_add(q, "ns/c"), 0);   /* no reordering */
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        expect_get(q, keys[i]);
    rc_queue_free(q);
}

Test(queue, key_being_processed_is_not_handed_out_again_until_done)
{
    struct rc_queue *q = make(0, 0, 0);
    struct getter g;
    cr_assert_eq(rc_queue_add(q, "ns/x"), 0);
    expect_get(q, "ns/x");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rc_queue_add(q, "ns/x"), 0);
    cr_expect_eq(stats(q).depth, 0);
    cr_expect_eq(stats(q).processing, 1);

    /* Another key can still be taken meanwhile. */
    cr_assert_eq(rc_queue_add(q, "ns/y"), 0);
    expect_get(q, "ns/y");
    rc_queue_done(q, "ns/y");

    getter_start(&g, q);
    sleep_ms(BLOCK_MS);
    cr_expect_not(atomic_load(&g.returned), "x was handed out twice");
    rc_queue_done(q, "ns/x");   /* dirty: ready again, wakes the getter */
    getter_join(&g);
    cr_assert_eq(g.rc, 0);
    cr_expect_str_eq(g.key, "ns/x");
    /* Three adds while processing made it ready exactly once. */
    cr_expect_eq(stats(q).depth, 0);
    cr_expect_eq(stats(q).processing, 1);
    rc_queue_done(q, "ns/x");
    cr_expect_eq(stats(q).depth, 0);
    cr_expect_eq(rc_queue_tracked(q), 0);
    rc_queue_free(q);
}

/* Take the next key and check how it was queued. */
static void expect_take(struct rc_queue *q, const char *want, bool urgent,
                        unsigned carry)
{
    char key[RC_QUEUE_KEY_MAX];
    struct rc_queue_item item = { .urgent = !urgent, .carry = ~0u };
    cr_assert_eq(rc_queue_take(q, key, &item), 0);
    cr_assert_str_eq(key, want);
    cr_expect_eq(item.urgent, urgent, "%s: urgent %d, want %d", want, item.urgent, urgent);
    cr_expect_eq(item.carry, carry, "%s: carry %u, want %u", want, item.carry, carry);
}

Test(queue, urgent_lane_is_emptied_first_in_its_own_fifo_order)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add(q, "ns/n1"), 0);
    cr_assert_eq(rc_queue_add(q, "ns/n2"), 0);
    cr_assert_eq(rc_queue_add_urgent(q, "ns/u1"), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/d", LONG_MS), 0);
    cr_assert_eq(rc_queue_add_urgent(q, "ns/u2"), 0);
    cr_assert_eq(rc_queue_add_urgent(q, "ns/u1"), 0);   /* dedup */
    struct rc_queue_stats s = stats(q);
    cr_expect_eq(s.depth, 4);
    cr_expect_eq(s.urgent, 2);
    expect_take(q, "ns/u1", true, 0);
    expect_take(q, "ns/u2", true, 0);
    expect_take(q, "ns/n1", false, 0);
    /* A delayed key asked for urgently is ready now, ahead of n2. */
    cr_assert_eq(rc_queue_add_urgent(q, "ns/d"), 0);
    expect_take(q, "ns/d", true, 0);
    expect_take(q, "ns/n2", false, 0);
    cr_expect_eq(stats(q).urgent, 0);
    rc_queue_free(q);
}

Test(queue, urgent_add_moves_a_waiting_key_up_and_a_plain_add_does_not_move_it_down)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add(q, "ns/a"), 0);
    cr_assert_eq(rc_queue_add(q, "ns/b"), 0);
    cr_assert_eq(rc_queue_add(q, "ns/c"), 0);
    cr_assert_eq(rc_queue_add_urgent(q, "ns/b"), 0);   /* from the middle */
    cr_assert_eq(rc_queue_add_urgent(q, "ns/c"), 0);   /* from the tail */
    cr_assert_eq(rc_queue_add(q, "ns/b"), 0);          /* stays urgent */
    struct rc_queue_stats s = stats(q);
    cr_expect_eq(s.depth, 3);
    cr_expect_eq(s.urgent, 2);
    expect_take(q, "ns/b", true, 0);
    expect_take(q, "ns/c", true, 0);
    expect_take(q, "ns/a", false, 0);
    /* The normal lane survived unlinking its middle and tail: it works. */
    cr_assert_eq(rc_queue_add(q, "ns/z"), 0);
    expect_take(q, "ns/z", false, 0);
    cr_expect_eq(stats(q).depth, 0);
    rc_queue_free(q);
}

Test(queue, urgent_add_while_processing_comes_back_urgent_at_done)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add(q, "ns/x"), 0);
    expect_take(q, "ns/x", false, 0);
    cr_assert_eq(rc_queue_add(q, "ns/x"), 0);          /* dirty, normal */
    cr_assert_eq(rc_queue_add_urgent(q, "ns/x"), 0);   /* upgraded */
    cr_assert_eq(rc_queue_add(q, "ns/y"), 0);
    cr_expect_eq(stats(q).depth, 1, "x must not be handed out twice");
    rc_queue_done(q, "ns/x");
    expect_take(q, "ns/x", true, 0);
    expect_take(q, "ns/y", false, 0);
    rc_queue_done(q, "ns/x");
    rc_queue_done(q, "ns/y");
    cr_expect_eq(rc_queue_tracked(q), 0);
    rc_queue_free(q);
}

Test(queue, carry_reaches_the_next_take_once)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add_urgent(q, "ns/x"), 0);
    expect_take(q, "ns/x", true, 0);
    /* The pass leaves a note for its follow-up before done. */
    cr_assert_eq(rc_queue_add_carry(q, "ns/x", 1u), 0);
    cr_assert_eq(rc_queue_add_carry(q, "ns/x", 4u), 0);   /* bits OR */
    rc_queue_done(q, "ns/x");
    expect_take(q, "ns/x", false, 5u);
    rc_queue_done(q, "ns/x");
    cr_assert_eq(rc_queue_add(q, "ns/x"), 0);
    expect_take(q, "ns/x", false, 0);   /* handed out once, then cleared */
    rc_queue_done(q, "ns/x");
    cr_expect_eq(rc_queue_tracked(q), 0);
    rc_queue_free(q);
}

/* A burst worker's take: the urgent lane only, with a deadline. */
struct urgent_taker {
    struct rc_queue *q;
    pthread_t thread;
    char key[RC_QUEUE_KEY_MAX];
    uint64_t wait_ms;
    int rc;
    atomic_bool returned;
};

static void *urgent_taker_main(void *arg)
{
    struct urgent_taker *t = arg;
    struct rc_queue_item item;
    t->rc = rc_queue_take_urgent(t->q, t->key, &item, t->wait_ms);
    atomic_store(&t->returned, true);
    return NULL;
}

static void urgent_taker_start(struct urgent_taker *t, struct rc_queue *q, uint64_t wait_ms)
{
    memset(t, 0, sizeof *t);
    t->q = q;
    t->wait_ms = wait_ms;
    atomic_init(&t->returned, false);
    cr_assert_eq(pthread_create(&t->thread, NULL, urgent_taker_main, t), 0);
}

Test(queue, take_urgent_ignores_the_normal_lane_and_times_out)
{
    struct rc_queue *q = make(0, 0, 0);
    char key[RC_QUEUE_KEY_MAX];
    cr_assert_eq(rc_queue_add(q, "ns/normal"), 0);
    uint64_t t0 = mono_ms();
    cr_expect_eq(rc_queue_take_urgent(q, key, NULL, 50), 1);
    cr_expect_geq(mono_ms() - t0, 50);
    cr_expect_eq(stats(q).depth, 1, "the normal key is left for the workers");
    cr_assert_eq(rc_queue_add_urgent(q, "ns/u"), 0);
    cr_expect_eq(rc_queue_take_urgent(q, key, NULL, LONG_MS), 0);
    cr_expect_str_eq(key, "ns/u");
    rc_queue_done(q, "ns/u");
    rc_queue_free(q);
}

Test(queue, urgent_add_wakes_a_sleeping_urgent_taker_and_a_normal_add_does_not)
{
    struct rc_queue *q = make(0, 0, 0);
    struct urgent_taker t;
    urgent_taker_start(&t, q, LONG_MS);
    sleep_ms(BLOCK_MS);
    cr_assert_eq(rc_queue_add(q, "ns/normal"), 0);
    sleep_ms(BLOCK_MS);
    cr_expect_not(atomic_load(&t.returned), "a normal key woke the urgent taker");
    uint64_t t0 = mono_ms();
    cr_assert_eq(rc_queue_add_urgent(q, "ns/u"), 0);
    cr_assert_eq(pthread_join(t.thread, NULL), 0);
    cr_expect_lt(mono_ms() - t0, SOON_MS);
    cr_expect_eq(t.rc, 0);
    cr_expect_str_eq(t.key, "ns/u");
    /* And shutdown ends a waiting urgent taker with -1. */
    urgent_taker_start(&t, q, LONG_MS);
    sleep_ms(BLOCK_MS);
    rc_queue_shutdown(q);
    cr_assert_eq(pthread_join(t.thread, NULL), 0);
    cr_expect_eq(t.rc, -1);
    rc_queue_free(q);
}

Test(queue, done_without_readd_forgets_the_key)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add(q, "ns/a"), 0);
    cr_expect_eq(rc_queue_tracked(q), 1);
    expect_get(q, "ns/a");
    rc_queue_done(q, "ns/a");
    struct rc_queue_stats s = stats(q);
    cr_expect_eq(s.depth + s.delayed + s.processing, 0);
    cr_expect_eq(rc_queue_tracked(q), 0);
    rc_queue_done(q, "ns/a");   /* a stray done is harmless */
    cr_expect_eq(rc_queue_tracked(q), 0);
    rc_queue_free(q);
}

Test(queue, delayed_keys_come_out_in_due_order)
{
    struct rc_queue *q = make(0, 0, 0);
    uint64_t t0 = mono_ms();
    cr_assert_eq(rc_queue_add_after(q, "ns/150", 150), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/50", 50), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/100", 100), 0);
    cr_expect_eq(stats(q).delayed, 3);
    cr_expect_eq(stats(q).depth, 0);
    cr_expect_geq(get_after(q, "ns/50", t0), 50);
    cr_expect_geq(get_after(q, "ns/100", t0), 100);
    cr_expect_geq(get_after(q, "ns/150", t0), 150);
    rc_queue_free(q);
}

Test(queue, add_after_zero_is_ready_now)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/a", 0), 0);
    cr_expect_eq(stats(q).depth, 1);
    cr_expect_eq(stats(q).delayed, 0);
    rc_queue_free(q);
}

Test(queue, earlier_time_wins)
{
    struct rc_queue *q = make(0, 0, 0);
    uint64_t t0 = mono_ms();
    cr_assert_eq(rc_queue_add_after(q, "ns/x", LONG_MS), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/x", 20), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/x", LONG_MS), 0); /* later loses */
    cr_expect_eq(stats(q).delayed, 1);
    uint64_t waited = get_after(q, "ns/x", t0);
    cr_expect_geq(waited, 20);
    cr_expect_lt(waited, SOON_MS);
    cr_expect_eq(stats(q).adds, 2);   /* the later one changed nothing */
    rc_queue_free(q);
}

Test(queue, add_overrides_a_delay)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/x", LONG_MS), 0);
    cr_assert_eq(rc_queue_add(q, "ns/x"), 0);
    struct rc_queue_stats s = stats(q);
    cr_expect_eq(s.depth, 1);
    cr_expect_eq(s.delayed, 0);
    /* A ready key ignores a later delayed add. */
    cr_assert_eq(rc_queue_add_after(q, "ns/x", LONG_MS), 0);
    cr_expect_eq(stats(q).delayed, 0);
    expect_get(q, "ns/x");
    rc_queue_done(q, "ns/x");
    cr_expect_eq(rc_queue_tracked(q), 0);
    rc_queue_free(q);
}

/* Many keys pushed far out, then pulled in (decrease-key) or made ready
 * (removal from the middle of the heap): ready ones first in add order,
 * then the rest by due time, ties in add order. */
#define ORDER_KEYS   64
#define ORDER_STEP   10    /* ms between distinct due times */
#define ORDER_SLOTS  8

static unsigned order_delay(int i)
{
    return ORDER_STEP * (1 + (unsigned)(i * 5) % ORDER_SLOTS);
}

Test(queue, heap_keeps_order_through_decrease_and_removal)
{
    struct rc_queue *q = make(0, 0, 0);
    char key[RC_QUEUE_KEY_MAX];
    for (int i = 0; i < ORDER_KEYS; i++) {
        snprintf(key, sizeof key, "ns/k%02d", i);
        cr_assert_eq(rc_queue_add_after(q, key, LONG_MS + (unsigned)i), 0);
    }
    for (int i = 0; i < ORDER_KEYS; i++) {
        snprintf(key, sizeof key, "ns/k%02d", i);
        if (i % ORDER_SLOTS == 0)
            cr_assert_eq(rc_queue_add(q, key), 0);
        else
            cr_assert_eq(rc_queue_add_after(q, key, order_delay(i)), 0);
    }
    int prev = -1;
    unsigned prev_delay = 0;
    for (int n = 0; n < ORDER_KEYS; n++) {
        cr_assert_eq(rc_queue_get(q, key), 0);
        int i = atoi(key + strlen("ns/k"));
        unsigned d = i % ORDER_SLOTS == 0 ? 0 : order_delay(i);
        cr_assert(d > prev_delay || (d == prev_delay && i > prev),
                  "%s (delay %u) after k%02d (delay %u)", key, d, prev,
                  prev_delay);
        prev = i;
        prev_delay = d;
    }
    cr_expect_eq(stats(q).delayed, 0);
    rc_queue_free(q);
}

Test(queue, sleeping_getter_notices_an_earlier_delayed_key)
{
    struct rc_queue *q = make(0, 0, 0);
    struct getter g;
    cr_assert_eq(rc_queue_add_after(q, "ns/late", LONG_MS), 0);
    getter_start(&g, q);
    sleep_ms(BLOCK_MS);   /* now sleeping until "late" is due */
    uint64_t t0 = mono_ms();
    cr_assert_eq(rc_queue_add_after(q, "ns/soon", 20), 0);
    getter_join(&g);
    cr_assert_eq(g.rc, 0);
    cr_expect_str_eq(g.key, "ns/soon");
    cr_expect_lt(mono_ms() - t0, SOON_MS);
    rc_queue_free(q);
}

/* Two sleepers, two keys due together: the first to wake must pass the
 * wakeup on, or the second sleeps on while a key is due. */
Test(queue, every_sleeper_is_served_when_keys_fall_due_together)
{
    struct rc_queue *q = make(0, 0, 0);
    struct getter g[2];
    getter_start(&g[0], q);
    getter_start(&g[1], q);
    sleep_ms(BLOCK_MS);
    uint64_t t0 = mono_ms();
    cr_assert_eq(rc_queue_add_after(q, "ns/a", 30), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/b", 30), 0);
    getter_join(&g[0]);
    getter_join(&g[1]);
    cr_expect_lt(mono_ms() - t0, SOON_MS);
    cr_assert_eq(g[0].rc, 0);
    cr_assert_eq(g[1].rc, 0);
    cr_expect_str_neq(g[0].key, g[1].key);
    rc_queue_free(q);
}

Test(queue, delayed_add_while_processing_is_scheduled_at_done)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add(q, "ns/x"), 0);
    expect_get(q, "ns/x");
    uint64_t t0 = mono_ms();
    cr_assert_eq(rc_queue_add_after(q, "ns/x", LONG_MS), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/x", 40), 0);   /* earlier wins */
    cr_expect_eq(stats(q).delayed, 0);   /* not while processing */
    rc_queue_done(q, "ns/x");
    cr_expect_eq(stats(q).delayed + stats(q).depth, 1);
    uint64_t waited = get_after(q, "ns/x", t0);
    cr_expect_geq(waited, 40);
    cr_expect_lt(waited, SOON_MS);

    /* Already due by the time the worker finishes: ready at once. */
    cr_assert_eq(rc_queue_add_after(q, "ns/x", 10), 0);
    sleep_ms(30);
    rc_queue_done(q, "ns/x");
    cr_expect_eq(stats(q).depth, 1);
    expect_get(q, "ns/x");

    /* A plain add beats a pending delay. */
    cr_assert_eq(rc_queue_add_after(q, "ns/x", LONG_MS), 0);
    cr_assert_eq(rc_queue_add(q, "ns/x"), 0);
    rc_queue_done(q, "ns/x");
    cr_expect_eq(stats(q).depth, 1);
    cr_expect_eq(stats(q).delayed, 0);
    rc_queue_free(q);
}

#define BACKOFF_BASE_MS 10u
#define BACKOFF_CAP_MS  40u
#define BACKOFF_PILE    10     /* failures that would overflow the cap */

/* One rate-limited round trip; returns the ms until the key came out. */
static uint64_t retry_once(struct rc_queue *q, const char *key)
{
    uint64_t t0 = mono_ms();
    cr_assert_eq(rc_queue_add_rate_limited(q, key), 0);
    uint64_t waited = get_after(q, key, t0);
    rc_queue_done(q, key);
    return waited;
}

Test(queue, backoff_doubles_is_capped_survives_done_and_resets_on_forget)
{
    struct rc_queue *q = make(0, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    const char *k = "ns/x";
    cr_expect_eq(rc_queue_failures(q, k), 0);

    cr_expect_geq(retry_once(q, k), BACKOFF_BASE_MS);
    cr_expect_eq(rc_queue_failures(q, k), 1);
    cr_expect_eq(rc_queue_tracked(q), 1);   /* backoff outlives done */
    cr_expect_geq(retry_once(q, k), 2 * BACKOFF_BASE_MS);
    cr_expect_eq(rc_queue_failures(q, k), 2);
    cr_expect_geq(retry_once(q, k), 4 * BACKOFF_BASE_MS);
    cr_expect_eq(rc_queue_failures(q, k), 3);

    /* Pile failures up while it waits: the earliest due time stands. */
    for (int i = 0; i < BACKOFF_PILE; i++)
        cr_assert_eq(rc_queue_add_rate_limited(q, k), 0);
    expect_get(q, k);
    rc_queue_done(q, k);
    cr_expect_eq(rc_queue_failures(q, k), 3 + BACKOFF_PILE);
    /* Uncapped this would be 10 ms * 2^13, over a minute. */
    uint64_t capped = retry_once(q, k);
    cr_expect_geq(capped, BACKOFF_CAP_MS);
    cr_expect_lt(capped, SOON_MS);

    rc_queue_forget(q, k);
    cr_expect_eq(rc_queue_failures(q, k), 0);
    cr_expect_eq(rc_queue_tracked(q), 0);
    cr_expect_geq(retry_once(q, k), BACKOFF_BASE_MS);
    cr_expect_eq(rc_queue_failures(q, k), 1);
    cr_expect_eq(stats(q).retries, 3 + BACKOFF_PILE + 1 + 1);
    rc_queue_free(q);
}

/* Long enough that the key is still waiting when the checks right after
 * the add run, even under valgrind on a busy machine (10 ms was not). */
#define WAITING_BASE_MS 1000u

Test(queue, forget_keeps_a_waiting_key_waiting)
{
    struct rc_queue *q = make(0, WAITING_BASE_MS, WAITING_BASE_MS);
    cr_assert_eq(rc_queue_add_rate_limited(q, "ns/x"), 0);
    rc_queue_forget(q, "ns/x");
    cr_expect_eq(rc_queue_failures(q, "ns/x"), 0);
    cr_expect_eq(stats(q).delayed, 1);
    expect_get(q, "ns/x");
    rc_queue_done(q, "ns/x");
    cr_expect_eq(rc_queue_tracked(q), 0);
    rc_queue_free(q);
}

Test(queue, bound_refuses_new_keys_and_frees_room_at_done)
{
    struct rc_queue *q = make(3, BACKOFF_BASE_MS, BACKOFF_CAP_MS);
    cr_assert_eq(rc_queue_add(q, "ns/a"), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/b", LONG_MS), 0);
    cr_assert_eq(rc_queue_add(q, "ns/c"), 0);
    cr_expect_eq(rc_queue_add(q, "ns/d"), -1);
    cr_expect_eq(stats(q).dropped, 1);
    /* Keys already tracked are never refused. */
    cr_expect_eq(rc_queue_add(q, "ns/a"), 0);
    cr_expect_eq(rc_queue_add(q, "ns/b"), 0);
    cr_expect_eq(rc_queue_add_rate_limited(q, "ns/e"), -1);
    cr_expect_eq(rc_queue_failures(q, "ns/e"), 0);
    struct rc_queue_stats s = stats(q);
    cr_expect_eq(s.dropped, 2);
    cr_expect_eq(s.retries, 0);
    cr_expect_eq(rc_queue_tracked(q), 3);

    expect_get(q, "ns/a");
    cr_expect_eq(rc_queue_add(q, "ns/d"), -1);   /* a is still processing */
    rc_queue_done(q, "ns/a");
    cr_expect_eq(rc_queue_add(q, "ns/d"), 0);
    cr_expect_eq(stats(q).dropped, 3);

    /* Backoff state holds a slot until forget. */
    expect_get(q, "ns/c");
    rc_queue_done(q, "ns/c");
    expect_get(q, "ns/b");
    cr_assert_eq(rc_queue_add_rate_limited(q, "ns/b"), 0);
    rc_queue_done(q, "ns/b");
    expect_get(q, "ns/d");
    rc_queue_done(q, "ns/d");
    expect_get(q, "ns/b");
    rc_queue_done(q, "ns/b");
    cr_expect_eq(rc_queue_tracked(q), 1);
    rc_queue_forget(q, "ns/b");
    cr_expect_eq(rc_queue_tracked(q), 0);
    rc_queue_free(q);
}

Test(queue, shutdown_wakes_a_blocked_getter_and_refuses_work)
{
    struct rc_queue *q = make(0, 0, 0);
    struct getter g;
    getter_start(&g, q);
    sleep_ms(BLOCK_MS);
    cr_expect_not(atomic_load(&g.returned));
    rc_queue_shutdown(q);
    getter_join(&g);
    cr_expect_eq(g.rc, -1);
    cr_expect_eq(rc_queue_add(q, "ns/a"), -1);
    cr_expect_eq(rc_queue_add_after(q, "ns/a", 5), -1);
    cr_expect_eq(rc_queue_add_rate_limited(q, "ns/a"), -1);
    char key[RC_QUEUE_KEY_MAX];
    cr_expect_eq(rc_queue_get(q, key), -1);
    cr_expect_eq(stats(q).dropped, 0);   /* shutdown is not the bound */
    rc_queue_free(q);
}

Test(queue, shutdown_stops_handing_out_waiting_keys)
{
    struct rc_queue *q = make(0, 0, 0);
    char key[RC_QUEUE_KEY_MAX];
    cr_assert_eq(rc_queue_add(q, "ns/a"), 0);
    cr_assert_eq(rc_queue_add(q, "ns/b"), 0);
    expect_get(q, "ns/a");
    rc_queue_shutdown(q);
    cr_expect_eq(rc_queue_get(q, key), -1);
    rc_queue_done(q, "ns/a");   /* in-flight work still finishes */
    cr_expect_eq(stats(q).processing, 0);
    rc_queue_free(q);
}

Test(queue, stats_count_what_is_where)
{
    struct rc_queue *q = make(0, 0, 0);
    cr_assert_eq(rc_queue_add(q, "ns/a"), 0);
    cr_assert_eq(rc_queue_add(q, "ns/c"), 0);
    cr_assert_eq(rc_queue_add_after(q, "ns/b", LONG_MS), 0);
    sleep_ms(20);
    expect_get(q, "ns/a");
    struct rc_queue_stats s = stats(q);
    cr_expect_eq(s.depth, 1);
    cr_expect_eq(s.delayed, 1);
    cr_expect_eq(s.processing, 1);
    cr_expect_eq(s.adds, 3);
    cr_expect_eq(s.retries, 0);
    cr_expect_eq(s.wait_count, 1);
    cr_expect_geq(s.wait_ns_sum, 20 * NS_PER_MS);

    cr_assert_eq(rc_queue_add(q, "ns/a"), 0);   /* dirty: counts       */
    cr_assert_eq(rc_queue_add(q, "ns/a"), 0);   /* already dirty: not  */
    cr_assert_eq(rc_queue_add(q, "ns/c"), 0);   /* already ready: not  */
    s = stats(q);
    cr_expect_eq(s.adds, 4);
    cr_expect_eq(s.depth, 1);
    rc_queue_done(q, "ns/a");
    s = stats(q);
    cr_expect_eq(s.depth, 2);
    cr_expect_eq(s.processing, 0);
    cr_expect_eq(rc_queue_tracked(q), 3);
    rc_queue_free(q);
}

#define MANY_KEYS 4096

/* Thousands of keys: the table grows, then loses entries one by one
 * (backward-shift deletion) and shrinks; lookups must stay right
 * throughout, and free must release entries still waiting. */
Test(queue, many_keys_grow_and_shrink_the_table)
{
    struct rc_queue *q = make(0, LONG_MS, LONG_MS);
    char key[RC_QUEUE_KEY_MAX];
    for (int i = 0; i < MANY_KEYS; i++) {
        snprintf(key, sizeof key, "ns%d/name-%d", i % 7, i);
        cr_assert_eq(rc_queue_add(q, key), 0);
    }
    cr_expect_eq(rc_queue_tracked(q), MANY_KEYS);
    size_t kept = 0;
    for (int i = 0; i < MANY_KEYS; i++) {
        char want[RC_QUEUE_KEY_MAX];
        snprintf(want, sizeof want, "ns%d/name-%d", i % 7, i);
        expect_get(q, want);
        rc_queue_done(q, want);
        if (i % 3 == 0) {   /* a failure keeps it, delayed */
            cr_assert_eq(rc_queue_add_rate_limited(q, want), 0);
            kept++;
        }
    }
    cr_expect_eq(rc_queue_tracked(q), kept);
    cr_expect_eq(stats(q).delayed, kept);
    for (int i = 0; i < MANY_KEYS; i++) {
        snprintf(key, sizeof key, "ns%d/name-%d", i % 7, i);
        cr_expect_eq(rc_queue_failures(q, key), i % 3 == 0 ? 1u : 0u,
                     "%s", key);
    }
    rc_queue_free(q);   /* with entries still delayed */
}

/* ---- stress ----------------------------------------------------------- */

#define STRESS_KEYS         200
#define STRESS_PRODUCERS    4
#define STRESS_WORKERS      4
#define STRESS_OPS          50000   /* per producer: 200k adds in all */
#define STRESS_MAX_DELAY_MS 5
#define STRESS_BASE_MS      1
#define STRESS_CAP_MS       4
#define STRESS_PACE         4       /* producers yield every this many adds */
#define DRAIN_POLL_MS       5
#define DRAIN_LIMIT_MS      60000

/*
 * The property checked at the end: the queue promises that an add made
 * after a processing of the key started leads to another processing.
 * Every add takes a ticket from one global sequence *before* calling add,
 * every processing takes one *after* get returned, so for a correct queue
 * the last processing's ticket is above the last add's; a lost add leaves
 * it below (unless the two race within a few instructions).
 */
struct stress {
    struct rc_queue *q;
    atomic_uint_fast64_t seq;
    atomic_uint_fast64_t last_add[STRESS_KEYS];
    atomic_uint_fast64_t last_start[STRESS_KEYS];
    atomic_int busy[STRESS_KEYS];
    atomic_uint overlaps;
    atomic_uint refused;
    atomic_uint_fast64_t gets;
    atomic_bool draining;
};

struct stress_thread {
    struct stress *s;
    uint64_t rng;
};

/* xorshift64: rand() is not thread-safe. */
static unsigned next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (unsigned)(*x >> 32);
}

static void raise_to(atomic_uint_fast64_t *v, uint_fast64_t n)
{
    uint_fast64_t cur = atomic_load(v);
    while (cur < n && !atomic_compare_exchange_weak(v, &cur, n))
        ;
}

enum stress_op { OP_ADD, OP_ADD_AFTER, OP_RATE_LIMITED };

static void stress_add(struct stress *s, int k, enum stress_op op,
                       unsigned delay_ms)
{
    char key[RC_QUEUE_KEY_MAX];
    snprintf(key, sizeof key, "ns/k%03d", k);
    raise_to(&s->last_add[k], atomic_fetch_add(&s->seq, 1) + 1);
    int rc = op == OP_ADD         ? rc_queue_add(s->q, key)
             : op == OP_ADD_AFTER ? rc_queue_add_after(s->q, key, delay_ms)
                                  : rc_queue_add_rate_limited(s->q, key);
    if (rc != 0)
        atomic_fetch_add(&s->refused, 1);
}

static void *producer_main(void *arg)
{
    struct stress_thread *t = arg;
    for (int i = 0; i < STRESS_OPS; i++) {
        int k = (int)(next_rand(&t->rng) % STRESS_KEYS);
        unsigned r = next_rand(&t->rng) % 10;
        enum stress_op op = r < 7 ? OP_ADD
                            : r < 9 ? OP_ADD_AFTER : OP_RATE_LIMITED;
        stress_add(t->s, k, op,
                   next_rand(&t->rng) % (STRESS_MAX_DELAY_MS + 1));
        /* Unpaced, producers finish before workers run and dedup folds
         * nearly every add away; yielding keeps adds and processing
         * overlapping (100k+ processings instead of a few hundred). */
        if (i % STRESS_PACE == 0)
            sched_yield();
    }
    return NULL;
}

/* What a reconcile does at the end: fail, requeue later, get re-added by
 * an event that arrived meanwhile, or succeed. */
static void worker_finish(struct stress_thread *t, const char *key, int k)
{
    struct stress *s = t->s;
    unsigned r = next_rand(&t->rng) % 16;
    if (atomic_load(&s->draining) || r > 3)
        rc_queue_forget(s->q, key);
    else if (r < 2)
        stress_add(s, k, OP_RATE_LIMITED, 0);
    else
        stress_add(s, k, r == 2 ? OP_ADD_AFTER : OP_ADD,
                   1 + next_rand(&t->rng) % STRESS_MAX_DELAY_MS);
}

static void *worker_main(void *arg)
{
    struct stress_thread *t = arg;
    struct stress *s = t->s;
    char key[RC_QUEUE_KEY_MAX];
    while (rc_queue_get(s->q, key) == 0) {
        int k = atoi(key + strlen("ns/k"));
        raise_to(&s->last_start[k], atomic_fetch_add(&s->seq, 1) + 1);
        if (atomic_exchange(&s->busy[k], 1) != 0)
            atomic_fetch_add(&s->overlaps, 1);
        if (next_rand(&t->rng) % 4 == 0)
            sched_yield();   /* widen the window for a second worker */
        worker_finish(t, key, k);
        atomic_store(&s->busy[k], 0);
        atomic_fetch_add(&s->gets, 1);
        rc_queue_done(s->q, key);
    }
    return NULL;
}

static bool stress_idle(struct rc_queue *q)
{
    struct rc_queue_stats st = stats(q);
    return st.depth == 0 && st.delayed == 0 && st.processing == 0;
}

/* Producers are done and workers stop re-adding: wait for the queue to
 * empty.  Idle is final here, since only a processing worker re-adds. */
static void stress_drain(struct stress *s)
{
    atomic_store(&s->draining, true);
    uint64_t t0 = mono_ms();
    while (!stress_idle(s->q)) {
        cr_assert_lt(mono_ms() - t0, DRAIN_LIMIT_MS, "queue never drained");
        sleep_ms(DRAIN_POLL_MS);
    }
}

static void stress_check(struct stress *s)
{
    cr_expect_eq(atomic_load(&s->overlaps), 0,
                 "a key was processed by two workers at once");
    cr_expect_eq(atomic_load(&s->refused), 0);
    int lost = 0;
    for (int k = 0; k < STRESS_KEYS; k++) {
        uint_fast64_t added = atomic_load(&s->last_add[k]);
        if (added && atomic_load(&s->last_start[k]) < added)
            lost++;
    }
    cr_expect_eq(lost, 0, "%d keys added after their last processing", lost);
    struct rc_queue_stats st = stats(s->q);
    cr_expect_eq(st.wait_count, atomic_load(&s->gets));
    cr_expect_gt(st.adds, 0);
    cr_expect_gt(st.retries, 0);
    cr_expect_leq(rc_queue_tracked(s->q), STRESS_KEYS);
}

Test(queue, stress_many_producers_and_workers, .timeout = 600)
{
    static struct stress s;   /* large: keep it off the stack */
    struct stress_thread prod[STRESS_PRODUCERS], work[STRESS_WORKERS];
    pthread_t prod_t[STRESS_PRODUCERS], work_t[STRESS_WORKERS];
    s.q = make(0, STRESS_BASE_MS, STRESS_CAP_MS);
    for (int i = 0; i < STRESS_WORKERS; i++) {
        work[i] = (struct stress_thread){&s, 0x9e3779b97f4a7c15ull + (uint64_t)i};
        cr_assert_eq(pthread_create(&work_t[i], NULL, worker_main, &work[i]), 0);
    }
    for (int i = 0; i < STRESS_PRODUCERS; i++) {
        prod[i] = (struct stress_thread){&s, 0x2545f4914f6cdd1dull + (uint64_t)i};
        cr_assert_eq(pthread_create(&prod_t[i], NULL, producer_main, &prod[i]), 0);
    }
    for (int i = 0; i < STRESS_PRODUCERS; i++)
        pthread_join(prod_t[i], NULL);
    stress_drain(&s);
    rc_queue_shutdown(s.q);
    for (int i = 0; i < STRESS_WORKERS; i++)
        pthread_join(work_t[i], NULL);

    stress_check(&s);
    char key[RC_QUEUE_KEY_MAX];
    for (int k = 0; k < STRESS_KEYS; k++) {
        snprintf(key, sizeof key, "ns/k%03d", k);
        rc_queue_forget(s.q, key);
    }
    cr_expect_eq(rc_queue_tracked(s.q), 0, "entries outlived their keys");
    rc_queue_free(s.q);
}
