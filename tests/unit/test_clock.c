/*
 * test_clock.c — clock.h: deadline arithmetic (carry of milliseconds into
 * seconds, tv_nsec always below one second) and a timed wait on a
 * cond_init_monotonic() condition variable.  Timing assertions are lower
 * bounds on the monotonic clock only: a loaded machine may wake late, never
 * early.
 */
#include <criterion/criterion.h>

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#define NS_PER_S 1000000000L
#define NS_PER_MS 1000000L
#define WAIT_MS 50u

static void expect_ts(struct timespec got, time_t sec, long nsec)
{
    cr_expect_eq(got.tv_sec, sec, "tv_sec %lld, want %lld", (long long)got.tv_sec,
                 (long long)sec);
    cr_expect_eq(got.tv_nsec, nsec, "tv_nsec %ld, want %ld", got.tv_nsec, nsec);
}

/* -1, 0, 1 as a is before, at, after b. */
static int ts_cmp(struct timespec a, struct timespec b)
{
    if (a.tv_sec != b.tv_sec)
        return a.tv_sec < b.tv_sec ? -1 : 1;
    if (a.tv_nsec != b.tv_nsec)
        return a.tv_nsec < b.tv_nsec ? -1 : 1;
    return 0;
}

Test(clock, add_ms_carries_into_seconds)
{
    expect_ts(timespec_add_ms((struct timespec){ 5, 0 }, 0), 5, 0);
    expect_ts(timespec_add_ms((struct timespec){ 5, 0 }, 999), 5, 999 * NS_PER_MS);
    expect_ts(timespec_add_ms((struct timespec){ 5, 0 }, 1000), 6, 0);
    expect_ts(timespec_add_ms((struct timespec){ 5, 999 * NS_PER_MS }, 1), 6, 0);
    expect_ts(timespec_add_ms((struct timespec){ 5, NS_PER_S - 1 }, 1), 6,
              NS_PER_MS - 1);
    expect_ts(timespec_add_ms((struct timespec){ 0, 500 * NS_PER_MS }, 1500), 2, 0);
    expect_ts(timespec_add_ms((struct timespec){ 7, 1 }, 600000u), 607, 1);
}

Test(clock, add_ms_keeps_nsec_below_a_second)
{
    const long bases[] = { 0, 1, NS_PER_MS - 1, 500 * NS_PER_MS, NS_PER_S - NS_PER_MS,
                           NS_PER_S - 1 };
    const uint64_t adds[] = { 0, 1, 999, 1000, 1001, 1999, 86400000u };
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        for (size_t j = 0; j < sizeof adds / sizeof adds[0]; j++) {
            struct timespec base = { 100, bases[i] };
            struct timespec t = timespec_add_ms(base, adds[j]);
            cr_expect(t.tv_nsec >= 0 && t.tv_nsec < NS_PER_S,
                      "%ld ns + %llu ms: tv_nsec %ld", bases[i],
                      (unsigned long long)adds[j], t.tv_nsec);
            /* Nothing lost or invented: the same instant counted in ns. */
            int64_t want = 100 * NS_PER_S + bases[i] + (int64_t)adds[j] * NS_PER_MS;
            cr_expect_eq((int64_t)t.tv_sec * NS_PER_S + t.tv_nsec, want);
        }
    }
}

Test(clock, integer_times_to_timespec)
{
    expect_ts(timespec_from_ns(0), 0, 0);
    expect_ts(timespec_from_ns(1234567890123ull), 1234, 567890123);
    expect_ts(timespec_from_ms(0), 0, 0);
    expect_ts(timespec_from_ms(1999), 1, 999 * NS_PER_MS);
    /* rc_queue's "never" (a saturated due time) must still be a valid
     * timespec. */
    struct timespec never = timespec_from_ns(UINT64_MAX);
    cr_expect(never.tv_sec > 0 && never.tv_nsec < NS_PER_S);
}

Test(clock, readings_agree_and_never_go_back)
{
    uint64_t ns = mono_now_ns();
    uint64_t ms = mono_now_ms();
    double s = mono_now_s();
    cr_expect_geq(ms, ns / (uint64_t)NS_PER_MS);
    cr_expect_geq(s, (double)ms / 1000.0 - 0.001);
    cr_expect_geq(mono_now_ns(), ns);
}

Test(clock, deadline_is_now_plus_ms_on_the_monotonic_clock)
{
    struct timespec before;
    cr_assert_eq(clock_gettime(CLOCK_MONOTONIC, &before), 0);
    struct timespec d = mono_deadline_after_ms(WAIT_MS);
    cr_expect_geq(ts_cmp(d, timespec_add_ms(before, WAIT_MS)), 0);
    cr_expect(d.tv_nsec >= 0 && d.tv_nsec < NS_PER_S);
}

Test(clock, sleep_lasts_at_least_what_was_asked)
{
    uint64_t t0 = mono_now_ns();
    sleep_ms(20);
    cr_expect_geq(mono_now_ns() - t0, 20u * (uint64_t)NS_PER_MS);
    t0 = mono_now_ns();
    sleep_ns(5u * (uint64_t)NS_PER_MS);
    cr_expect_geq(mono_now_ns() - t0, 5u * (uint64_t)NS_PER_MS);
}

/* The fix this module exists for: a condition variable made by
 * cond_init_monotonic() times out at a mono_deadline_after_ms() deadline,
 * not before it.  (Were the condvar on CLOCK_REALTIME, the monotonic
 * deadline, decades in the past as a wall time, would fire at once.) */
Test(clock, monotonic_condvar_times_out_at_its_deadline)
{
    pthread_cond_t cv;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    cr_assert_eq(cond_init_monotonic(&cv), 0);
    pthread_mutex_lock(&mu);
    uint64_t t0 = mono_now_ns();
    struct timespec deadline = mono_deadline_after_ms(WAIT_MS);
    int rc;
    while ((rc = pthread_cond_timedwait(&cv, &mu, &deadline)) == 0)
        ;   /* spurious: nobody signals */
    uint64_t t1 = mono_now_ns();
    struct timespec now;
    cr_assert_eq(clock_gettime(CLOCK_MONOTONIC, &now), 0);
    pthread_mutex_unlock(&mu);
    cr_expect_eq(rc, ETIMEDOUT, "timedwait: %d", rc);
    cr_expect_geq(ts_cmp(now, deadline), 0, "woke before its deadline");
    cr_expect_geq(t1 - t0, (uint64_t)WAIT_MS * (uint64_t)NS_PER_MS,
                  "waited %llu ns", (unsigned long long)(t1 - t0));
    cr_expect_eq(pthread_cond_destroy(&cv), 0);
}
