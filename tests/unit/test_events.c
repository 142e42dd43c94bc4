/*
 * test_events.c — rc_events' rate limit: the bucket starts full, refills
 * at qps up to burst, a qps of 0 never limits, and rc_event takes a token
 * only for an Event that survived deduplication.  Times are passed in, so
 * nothing here depends on how fast the test runs.
 */
#include <criterion/criterion.h>

#include "kube_ratelimit.h"
#include "rc_events.h"

static struct rc_events ev;

static void setup(void)
{
    rc_events_init(&ev);
}

static void teardown(void)
{
    rc_events_destroy(&ev);
}

TestSuite(events, .init = setup, .fini = teardown);

Test(events, defaults_are_the_documented_ones)
{
    cr_assert_eq(ev.rate.qps, RC_EVENT_QPS_DEFAULT);
    cr_assert_eq(ev.rate.burst, RC_EVENT_BURST_DEFAULT);
    for (int i = 0; i < RC_EVENT_BURST_DEFAULT; i++)
        cr_assert(kube_ratelimit_take_at(&ev.rate, 100.0), "token %d of the burst", i);
    cr_assert_not(kube_ratelimit_take_at(&ev.rate, 100.0), "the burst is spent");
}

Test(events, bucket_refills_at_qps_and_caps_at_burst)
{
    rc_events_set_rate(&ev, 2, 3);
    for (int i = 0; i < 3; i++)
        cr_assert(kube_ratelimit_take_at(&ev.rate, 10.0));
    cr_assert_not(kube_ratelimit_take_at(&ev.rate, 10.0));
    cr_assert_not(kube_ratelimit_take_at(&ev.rate, 10.25), "half a token is not one");
    cr_assert(kube_ratelimit_take_at(&ev.rate, 10.5), "2/s: one token after 0.5 s");
    cr_assert_not(kube_ratelimit_take_at(&ev.rate, 10.5));
    /* A long quiet spell fills the bucket to burst, never beyond. */
    for (int i = 0; i < 3; i++)
        cr_assert(kube_ratelimit_take_at(&ev.rate, 1000.0));
    cr_assert_not(kube_ratelimit_take_at(&ev.rate, 1000.0));
}

Test(events, a_clock_going_backwards_adds_nothing)
{
    rc_events_set_rate(&ev, 1, 1);
    cr_assert(kube_ratelimit_take_at(&ev.rate, 50.0));
    cr_assert_not(kube_ratelimit_take_at(&ev.rate, 20.0));
    cr_assert_not(kube_ratelimit_take_at(&ev.rate, 50.5));
    cr_assert(kube_ratelimit_take_at(&ev.rate, 51.0));
}

Test(events, qps_zero_never_limits)
{
    rc_events_set_rate(&ev, 0, 1);
    for (int i = 0; i < 100000; i++)
        cr_assert(kube_ratelimit_take_at(&ev.rate, 1.0));
}

Test(events, burst_zero_is_taken_as_one)
{
    rc_events_set_rate(&ev, 1, 0);
    cr_assert(kube_ratelimit_take_at(&ev.rate, 5.0));
    cr_assert_not(kube_ratelimit_take_at(&ev.rate, 5.0));
}

Test(events, duplicates_spend_no_token_and_the_rest_are_throttled)
{
    /* One token per hour: within this test the bucket holds exactly the
     * burst, however slowly the test runs. */
    kube_ratelimit_set(&ev.rate, 1.0 / 3600, 2);
    const struct rc_event_target t = { "ns", "isvc", "uid-1" };
    rc_event(&ev, &t, false, "Created", "Apply", "created Deployment ns/isvc", 1000);
    rc_event(&ev, &t, false, "Created", "Apply", "created Deployment ns/isvc", 1001);
    cr_assert_eq(atomic_load(&ev.suppressed), 1, "the repeat is a duplicate");
    rc_event(&ev, &t, false, "Updated", "Apply", "updated Deployment ns/isvc", 1002);
    rc_event(&ev, &t, true, "ApplyFailed", "Apply", "conflict", 1003);
    rc_event(&ev, &t, true, "InvalidSpec", "Validate", "bad gpuType", 1004);
    /* Two had tokens (and, with no sender started, were dropped); two did
     * not. */
    cr_assert_eq(atomic_load(&ev.dropped), 2);
    cr_assert_eq(atomic_load(&ev.throttled), 2);
    cr_assert_eq(atomic_load(&ev.sent), 0);
}
