/*
 * test_leader.c — leader election.
 *
 *   leader_sm    the pure state machine with injected monotonic time: create,
 *                wait, take over by observation, clock skew, renew, step down,
 *                re-acquire, conflicts, release; and a simulation of three
 *                replicas against an in-memory Lease store with latency,
 *                partitions and a crash, checking that two fences are never
 *                up at once.
 *   leader_json  the Lease codec and MicroTime.
 *   leader       rc_leader_start's option checks and a thread that cannot
 *                reach any server (never leads, stops promptly).
 */
#include <criterion/criterion.h>

#include "rc_leader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE 15000u
#define RENEW 10000u
#define RETRY 2000u
#define ME "me_0123456789abcdef"
#define OTHER "other_fedcba9876543210"

/* ---- helpers ------------------------------------------------------------- */

static void sm_new(struct rc_leader_sm *sm, uint64_t now)
{
    rc_leader_sm_init(sm, ME, LEASE, RENEW, RETRY, now);
}

static struct rc_lease_record rec_of(const char *holder, long long dur, const char *renew,
                                     long long transitions, const char *rv)
{
    struct rc_lease_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.holder, sizeof r.holder, "%s", holder);
    r.duration_s = dur;
    snprintf(r.acquire_time, sizeof r.acquire_time, "2026-01-01T00:00:00.000000Z");
    snprintf(r.renew_time, sizeof r.renew_time, "%s", renew);
    r.transitions = transitions;
    snprintf(r.rv, sizeof r.rv, "%s", rv);
    return r;
}

/* What the server would answer to a write of want: want with a new rv. */
static struct rc_lease_record stored(const struct rc_lease_record *want, const char *rv)
{
    struct rc_lease_record r = *want;
    snprintf(r.rv, sizeof r.rv, "%s", rv);
    return r;
}

static void observe_expect(struct rc_leader_sm *sm, uint64_t now,
                           const struct rc_lease_record *r, enum rc_lease_op want)
{
    struct rc_leader_step st = rc_leader_sm_observed(sm, now, RC_LEASE_OK, r);
    cr_assert_eq(st.op, want, "t=%llu: op %s, want %s", (unsigned long long)now,
                 rc_lease_op_name(st.op), rc_lease_op_name(want));
}

/* Become leader at sent..now through a create. */
static void elect(struct rc_leader_sm *sm, uint64_t sent, uint64_t now)
{
    struct rc_leader_step st = rc_leader_sm_poll(sm, sent);
    cr_assert_eq(st.op, RC_LEASE_GET);
    st = rc_leader_sm_observed(sm, sent, RC_LEASE_NOT_FOUND, NULL);
    cr_assert_eq(st.op, RC_LEASE_CREATE);
    struct rc_lease_record want, got;
    rc_leader_sm_record(sm, RC_LEASE_CREATE, "2026-01-01T00:00:00.000000Z", &want);
    got = stored(&want, "100");
    st = rc_leader_sm_wrote(sm, RC_LEASE_CREATE, sent, now, RC_LEASE_OK, &got);
    cr_assert_eq(st.event, RC_LEADER_ELECTED);
    cr_assert(sm->leading);
}

/* ---- leader_sm ----------------------------------------------------------- */

Test(leader_sm, fresh_start_creates_and_leads)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 1000);
    cr_assert_not(sm.leading);
    cr_assert_eq(rc_leader_sm_valid_until(&sm), 0);

    struct rc_leader_step st = rc_leader_sm_poll(&sm, 1000);
    cr_assert_eq(st.op, RC_LEASE_GET, "a new candidate reads first");
    cr_assert_eq(st.event, RC_LEADER_NONE);
    st = rc_leader_sm_observed(&sm, 1010, RC_LEASE_NOT_FOUND, NULL);
    cr_assert_eq(st.op, RC_LEASE_CREATE);

    struct rc_lease_record want;
    rc_leader_sm_record(&sm, RC_LEASE_CREATE, "2026-05-01T10:00:00.123456Z", &want);
    cr_assert_str_eq(want.holder, ME);
    cr_assert_eq(want.duration_s, 15);
    cr_assert_eq(want.transitions, 0);
    cr_assert_str_eq(want.rv, "");
    cr_assert_str_eq(want.acquire_time, "2026-05-01T10:00:00.123456Z");
    cr_assert_str_eq(want.renew_time, "2026-05-01T10:00:00.123456Z");

    struct rc_lease_record got = stored(&want, "7");
    st = rc_leader_sm_wrote(&sm, RC_LEASE_CREATE, 1010, 1030, RC_LEASE_OK, &got);
    cr_assert_eq(st.event, RC_LEADER_ELECTED);
    cr_assert(sm.leading);
    cr_assert_eq(sm.transitions, 1);
    /* The fence runs from the send time of the write, not its answer. */
    cr_assert_eq(rc_leader_sm_valid_until(&sm), 1010 + RENEW);
    cr_assert_eq(st.op, RC_LEASE_WAIT);
    cr_assert_eq(st.wake_ms, 1030 + RETRY);
}

Test(leader_sm, create_failure_retries_after_a_period)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    rc_leader_sm_poll(&sm, 0);
    rc_leader_sm_observed(&sm, 0, RC_LEASE_NOT_FOUND, NULL);
    struct rc_leader_step st = rc_leader_sm_wrote(&sm, RC_LEASE_CREATE, 0, 30,
                                                  RC_LEASE_FAILED, NULL);
    cr_assert_eq(st.event, RC_LEADER_NONE);
    cr_assert_not(sm.leading);
    cr_assert_eq(st.op, RC_LEASE_WAIT);
    cr_assert_eq(st.wake_ms, 30 + RETRY);
    cr_assert_eq(rc_leader_sm_poll(&sm, 30 + RETRY - 1).op, RC_LEASE_WAIT);
    cr_assert_eq(rc_leader_sm_poll(&sm, 30 + RETRY).op, RC_LEASE_GET);
}

Test(leader_sm, get_failure_waits_a_period)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    rc_leader_sm_poll(&sm, 0);
    struct rc_leader_step st = rc_leader_sm_observed(&sm, 100, RC_LEASE_FAILED, NULL);
    cr_assert_eq(st.op, RC_LEASE_WAIT);
    cr_assert_eq(st.wake_ms, 100 + RETRY);
}

Test(leader_sm, held_and_renewed_by_another_waits_forever)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    char renew[64];
    for (uint64_t t = 0; t <= 120000; t += RETRY) {
        /* The holder renews between our reads: the record changes. */
        snprintf(renew, sizeof renew, "2026-01-01T00:%02llu:%02llu.000000Z",
                 (unsigned long long)(t / 60000), (unsigned long long)(t / 1000 % 60));
        struct rc_lease_record r = rec_of(OTHER, 15, renew, 3, "50");
        cr_assert_eq(rc_leader_sm_poll(&sm, t).op, RC_LEASE_GET);
        struct rc_leader_step st = rc_leader_sm_observed(&sm, t, RC_LEASE_OK, &r);
        cr_assert_eq(st.op, RC_LEASE_WAIT, "t=%llu", (unsigned long long)t);
        /* Standbys poll at half the retry period: a released Lease is
         * taken within ~1 s of a graceful shutdown. */
        cr_assert_eq(st.wake_ms, t + RETRY / 2);
        cr_assert_not(sm.leading);
    }
}

Test(leader_sm, unchanged_for_the_lease_duration_is_taken_over)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    struct rc_lease_record r = rec_of(OTHER, 15, "2026-01-01T00:00:00.000000Z", 3, "50");
    rc_leader_sm_poll(&sm, 1000);
    observe_expect(&sm, 1000, &r, RC_LEASE_WAIT);       /* first seen at 1000 */
    for (uint64_t t = 3000; t < 16000; t += RETRY)
        observe_expect(&sm, t, &r, RC_LEASE_WAIT);
    cr_assert_not(rc_leader_sm_expired(&sm, 15999));
    observe_expect(&sm, 15999, &r, RC_LEASE_WAIT);
    cr_assert(rc_leader_sm_expired(&sm, 16000));
    observe_expect(&sm, 16000, &r, RC_LEASE_ACQUIRE);

    struct rc_lease_record want;
    rc_leader_sm_record(&sm, RC_LEASE_ACQUIRE, "2026-01-01T00:00:16.000000Z", &want);
    cr_assert_str_eq(want.holder, ME);
    cr_assert_eq(want.transitions, 4, "a takeover counts a transition");
    cr_assert_str_eq(want.rv, "50", "the PUT carries the resourceVersion we read");
    cr_assert_str_eq(want.acquire_time, "2026-01-01T00:00:16.000000Z");
    cr_assert_eq(want.duration_s, 15);

    struct rc_lease_record got = stored(&want, "51");
    struct rc_leader_step st = rc_leader_sm_wrote(&sm, RC_LEASE_ACQUIRE, 16000, 16020,
                                                  RC_LEASE_OK, &got);
    cr_assert_eq(st.event, RC_LEADER_ELECTED);
    cr_assert_eq(rc_leader_sm_valid_until(&sm), 16000 + RENEW);
}

Test(leader_sm, a_change_restarts_the_observation)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    struct rc_lease_record a = rec_of(OTHER, 15, "2026-01-01T00:00:00.000000Z", 3, "50");
    struct rc_lease_record b = rec_of(OTHER, 15, "2026-01-01T00:00:10.000000Z", 3, "51");
    observe_expect(&sm, 0, &a, RC_LEASE_WAIT);
    observe_expect(&sm, 10000, &b, RC_LEASE_WAIT);       /* renewed: clock restarts */
    observe_expect(&sm, 24999, &b, RC_LEASE_WAIT);
    observe_expect(&sm, 25000, &b, RC_LEASE_ACQUIRE);
}

Test(leader_sm, a_resource_version_alone_is_not_a_renewal)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    struct rc_lease_record a = rec_of(OTHER, 15, "2026-01-01T00:00:00.000000Z", 3, "50");
    struct rc_lease_record b = a;
    snprintf(b.rv, sizeof b.rv, "77");                    /* a label edit */
    observe_expect(&sm, 0, &a, RC_LEASE_WAIT);
    observe_expect(&sm, 8000, &b, RC_LEASE_WAIT);
    observe_expect(&sm, 15000, &b, RC_LEASE_ACQUIRE);
    struct rc_lease_record want;
    rc_leader_sm_record(&sm, RC_LEASE_ACQUIRE, "x", &want);
    cr_assert_str_eq(want.rv, "77", "but the PUT uses the newest one");
}

Test(leader_sm, wakes_at_the_observed_expiry)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    struct rc_lease_record r = rec_of(OTHER, 15, "2026-01-01T00:00:00.000000Z", 0, "9");
    struct rc_leader_step st = rc_leader_sm_observed(&sm, 1000, RC_LEASE_OK, &r);
    cr_assert_eq(st.wake_ms, 2000, "half a retry period");
    st = rc_leader_sm_observed(&sm, 15500, RC_LEASE_OK, &r);
    cr_assert_eq(st.op, RC_LEASE_WAIT);
    cr_assert_eq(st.wake_ms, 16000, "not 16500: right at the expiry");
}

/* Skew: the wall-clock times in the record never matter, only whether the
 * record changes by our monotonic clock. */
static void run_skew(const char *renew_time, bool changes, uint64_t *acquired_at)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    *acquired_at = 0;
    for (uint64_t t = 0; t <= 60000; t += 500) {
        struct rc_lease_record r = rec_of(OTHER, 15, renew_time, 1, "5");
        if (changes)   /* the holder's clock is off, but it does renew */
            snprintf(r.renew_time, sizeof r.renew_time, "%s+%llu", renew_time,
                     (unsigned long long)t);
        struct rc_leader_step st = rc_leader_sm_observed(&sm, t, RC_LEASE_OK, &r);
        if (st.op == RC_LEASE_ACQUIRE) {
            *acquired_at = t;
            return;
        }
    }
}

Test(leader_sm, clock_skew_does_not_change_decisions)
{
    static const char *const times[] = {
        "2099-12-31T23:59:59.999999Z",    /* holder's clock far ahead   */
        "1999-01-01T00:00:00.000000Z",    /* far behind                 */
        "2026-01-01T00:00:00.000000Z",    /* about right                */
        "",                               /* none at all                */
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        uint64_t at;
        run_skew(times[i], false, &at);
        cr_assert_eq(at, 15000, "%s unchanged: taken at %llu", times[i],
                     (unsigned long long)at);
        run_skew(times[i], true, &at);
        cr_assert_eq(at, 0, "%s renewing: never taken", times[i]);
    }
}

Test(leader_sm, the_record_duration_rules)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    struct rc_lease_record r = rec_of(OTHER, 30, "t", 0, "1");
    observe_expect(&sm, 0, &r, RC_LEASE_WAIT);
    observe_expect(&sm, 29999, &r, RC_LEASE_WAIT);
    observe_expect(&sm, 30000, &r, RC_LEASE_ACQUIRE);

    /* Unset or nonsense: our own duration, never "expired at once". */
    long long bad[] = { 0, -5, 1LL << 40 };
    for (size_t i = 0; i < 3; i++) {
        sm_new(&sm, 0);
        r = rec_of(OTHER, bad[i], "t", 0, "1");
        observe_expect(&sm, 0, &r, RC_LEASE_WAIT);
        observe_expect(&sm, LEASE - 1, &r, RC_LEASE_WAIT);
        observe_expect(&sm, LEASE, &r, RC_LEASE_ACQUIRE);
    }
}

Test(leader_sm, a_released_lease_is_taken_at_once)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    struct rc_lease_record r = rec_of("", 1, "t", 6, "40");
    observe_expect(&sm, 0, &r, RC_LEASE_ACQUIRE);
    struct rc_lease_record want;
    rc_leader_sm_record(&sm, RC_LEASE_ACQUIRE, "now", &want);
    cr_assert_eq(want.transitions, 7);
    cr_assert_eq(want.duration_s, 15, "our duration replaces the released 1 s");
}

Test(leader_sm, leader_renews_every_retry_period)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    elect(&sm, 0, 50);
    uint64_t due = 50 + RETRY;
    for (int i = 0; i < 20; i++) {
        struct rc_leader_step st = rc_leader_sm_poll(&sm, due - 1);
        cr_assert_eq(st.op, RC_LEASE_WAIT);
        cr_assert_eq(st.wake_ms, due);
        st = rc_leader_sm_poll(&sm, due);
        cr_assert_eq(st.op, RC_LEASE_RENEW, "fast path: no read first");
        struct rc_lease_record want, got;
        rc_leader_sm_record(&sm, RC_LEASE_RENEW, "renewed", &want);
        cr_assert_str_eq(want.holder, ME);
        cr_assert_str_eq(want.acquire_time, "2026-01-01T00:00:00.000000Z",
                         "acquireTime stays");
        cr_assert_str_eq(want.renew_time, "renewed");
        cr_assert_eq(want.transitions, 0);
        cr_assert_str_neq(want.rv, "", "optimistic: the rv of our last write");
        char rv[16];
        snprintf(rv, sizeof rv, "%d", 200 + i);
        got = stored(&want, rv);
        st = rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, due, due + 20, RC_LEASE_OK, &got);
        cr_assert_eq(st.event, RC_LEADER_NONE);
        cr_assert(sm.leading);
        cr_assert_eq(rc_leader_sm_valid_until(&sm), due + RENEW);
        cr_assert_eq(st.wake_ms, due + 20 + RETRY);
        due += 20 + RETRY;
    }
    cr_assert_eq(sm.transitions, 1);
}

/* Elected with a send time of 0; every renewal from 2000 on fails. */
static void failing_renewals(struct rc_leader_sm *sm, uint64_t until)
{
    sm_new(sm, 0);
    elect(sm, 0, 0);
    for (uint64_t t = RETRY; t < until; t += RETRY) {
        struct rc_leader_step st = rc_leader_sm_poll(sm, t);
        cr_assert_eq(st.event, RC_LEADER_NONE, "t=%llu", (unsigned long long)t);
        cr_assert_eq(st.op, RC_LEASE_RENEW);
        st = rc_leader_sm_wrote(sm, RC_LEASE_RENEW, t, t, RC_LEASE_FAILED, NULL);
        cr_assert_eq(st.event, RC_LEADER_NONE);
    }
}

Test(leader_sm, renew_failures_within_the_deadline_keep_leading)
{
    struct rc_leader_sm sm;
    failing_renewals(&sm, RENEW);
    cr_assert(sm.leading);
    struct rc_leader_step st = rc_leader_sm_poll(&sm, RENEW - 1);
    cr_assert_eq(st.event, RC_LEADER_NONE);
    cr_assert(sm.leading);
    cr_assert_eq(rc_leader_sm_valid_until(&sm), RENEW);
    /* The next wake is capped by the deadline. */
    cr_assert_leq(st.wake_ms, RENEW);
}

Test(leader_sm, renew_failures_up_to_the_deadline_step_down)
{
    struct rc_leader_sm sm;
    failing_renewals(&sm, RENEW);
    struct rc_leader_step st = rc_leader_sm_poll(&sm, RENEW);
    cr_assert_eq(st.event, RC_LEADER_LOST);
    cr_assert_str_eq(st.reason, "renew deadline exceeded");
    cr_assert_not(sm.leading);
    cr_assert_eq(rc_leader_sm_valid_until(&sm), 0);
    cr_assert_eq(sm.transitions, 2);
    cr_assert_eq(st.op, RC_LEASE_GET, "a candidate now: read, no fast path");
    /* Polling again reports no second transition. */
    cr_assert_eq(rc_leader_sm_poll(&sm, RENEW + 1).event, RC_LEADER_NONE);
}

Test(leader_sm, a_renewal_answered_after_the_deadline_does_not_restore)
{
    struct rc_leader_sm sm;
    failing_renewals(&sm, 8000);
    struct rc_leader_step st = rc_leader_sm_poll(&sm, 8000);
    cr_assert_eq(st.op, RC_LEASE_RENEW);
    struct rc_lease_record want, got;
    rc_leader_sm_record(&sm, RC_LEASE_RENEW, "late", &want);
    got = stored(&want, "300");
    st = rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, 8000, 10500, RC_LEASE_OK, &got);
    cr_assert_eq(st.event, RC_LEADER_LOST);
    cr_assert_not(sm.leading);
    cr_assert_eq(rc_leader_sm_valid_until(&sm), 0);
}

Test(leader_sm, a_slow_renewal_within_the_deadline_extends_from_its_send_time)
{
    struct rc_leader_sm sm;
    failing_renewals(&sm, 8000);
    cr_assert_eq(rc_leader_sm_poll(&sm, 8000).op, RC_LEASE_RENEW);
    struct rc_lease_record want, got;
    rc_leader_sm_record(&sm, RC_LEASE_RENEW, "slow", &want);
    got = stored(&want, "300");
    struct rc_leader_step st = rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, 8000, 9900,
                                                  RC_LEASE_OK, &got);
    cr_assert_eq(st.event, RC_LEADER_NONE);
    cr_assert(sm.leading);
    cr_assert_eq(rc_leader_sm_valid_until(&sm), 8000 + RENEW);
}

Test(leader_sm, after_stepping_down_our_own_lease_waits_for_expiry)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    elect(&sm, 0, 0);
    struct rc_lease_record ours = sm.rec;        /* as last written, at 0 */
    for (uint64_t t = RETRY; t < RENEW; t += RETRY) {
        rc_leader_sm_poll(&sm, t);
        rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, t, t, RC_LEASE_FAILED, NULL);
    }
    struct rc_leader_step st = rc_leader_sm_poll(&sm, RENEW);
    cr_assert_eq(st.event, RC_LEADER_LOST);
    /* The server comes back: the Lease still names us, unchanged since
     * our last write was seen at 0. */
    observe_expect(&sm, RENEW, &ours, RC_LEASE_WAIT);
    cr_assert_not(sm.leading);
    observe_expect(&sm, LEASE - 1, &ours, RC_LEASE_WAIT);
    observe_expect(&sm, LEASE, &ours, RC_LEASE_ACQUIRE);
    struct rc_lease_record want;
    rc_leader_sm_record(&sm, RC_LEASE_ACQUIRE, "again", &want);
    cr_assert_eq(want.transitions, ours.transitions, "same holder: no transition");
    struct rc_lease_record got = stored(&want, "400");
    st = rc_leader_sm_wrote(&sm, RC_LEASE_ACQUIRE, LEASE, LEASE + 10, RC_LEASE_OK, &got);
    cr_assert_eq(st.event, RC_LEADER_ELECTED);
    cr_assert_eq(sm.transitions, 3);
}

Test(leader_sm, leader_that_sees_another_holder_steps_down_at_once)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    elect(&sm, 0, 0);
    /* Fast path renewal conflicts: someone wrote. */
    rc_leader_sm_poll(&sm, RETRY);
    struct rc_leader_step st = rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, RETRY, RETRY,
                                                  RC_LEASE_CONFLICT, NULL);
    cr_assert(sm.leading, "a conflict alone proves nothing yet");
    cr_assert_eq(st.wake_ms, RETRY, "read again at once");
    st = rc_leader_sm_poll(&sm, RETRY);
    cr_assert_eq(st.op, RC_LEASE_GET, "the cached rv is stale: no fast path");
    struct rc_lease_record r = rec_of(OTHER, 15, "x", 1, "900");
    st = rc_leader_sm_observed(&sm, RETRY + 10, RC_LEASE_OK, &r);
    cr_assert_eq(st.event, RC_LEADER_LOST);
    cr_assert_str_eq(st.reason, "lease taken by another holder");
    cr_assert_eq(rc_leader_sm_valid_until(&sm), 0);
    cr_assert_eq(st.op, RC_LEASE_WAIT);
}

Test(leader_sm, renew_conflict_from_a_metadata_edit_renews_on_the_slow_path)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    elect(&sm, 0, 0);
    struct rc_lease_record ours = sm.rec;
    rc_leader_sm_poll(&sm, RETRY);
    rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, RETRY, RETRY, RC_LEASE_CONFLICT, NULL);
    cr_assert_eq(rc_leader_sm_poll(&sm, RETRY).op, RC_LEASE_GET);
    snprintf(ours.rv, sizeof ours.rv, "555");     /* someone added a label */
    struct rc_leader_step st = rc_leader_sm_observed(&sm, RETRY, RC_LEASE_OK, &ours);
    cr_assert_eq(st.event, RC_LEADER_NONE);
    cr_assert_eq(st.op, RC_LEASE_RENEW);
    struct rc_lease_record want;
    rc_leader_sm_record(&sm, RC_LEASE_RENEW, "r", &want);
    cr_assert_str_eq(want.rv, "555");
    struct rc_lease_record got = stored(&want, "556");
    st = rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, RETRY, RETRY + 5, RC_LEASE_OK, &got);
    cr_assert(sm.leading);
    cr_assert_eq(rc_leader_sm_valid_until(&sm), RETRY + RENEW);
}

Test(leader_sm, create_conflict_reads_and_waits)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    rc_leader_sm_poll(&sm, 0);
    rc_leader_sm_observed(&sm, 0, RC_LEASE_NOT_FOUND, NULL);
    struct rc_leader_step st = rc_leader_sm_wrote(&sm, RC_LEASE_CREATE, 0, 10,
                                                  RC_LEASE_CONFLICT, NULL);
    cr_assert_eq(st.event, RC_LEADER_NONE);
    cr_assert_eq(st.wake_ms, 10, "AlreadyExists: read at once");
    cr_assert_eq(rc_leader_sm_poll(&sm, 10).op, RC_LEASE_GET);
    struct rc_lease_record r = rec_of(OTHER, 15, "x", 0, "1");
    observe_expect(&sm, 20, &r, RC_LEASE_WAIT);
    cr_assert_not(sm.leading);
}

Test(leader_sm, repeated_conflicts_back_off)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    struct rc_lease_record r = rec_of("", 1, "x", 0, "1");
    observe_expect(&sm, 0, &r, RC_LEASE_ACQUIRE);
    struct rc_leader_step st = rc_leader_sm_wrote(&sm, RC_LEASE_ACQUIRE, 0, 0,
                                                  RC_LEASE_CONFLICT, NULL);
    cr_assert_eq(st.wake_ms, 0);
    observe_expect(&sm, 0, &r, RC_LEASE_ACQUIRE);
    st = rc_leader_sm_wrote(&sm, RC_LEASE_ACQUIRE, 0, 0, RC_LEASE_CONFLICT, NULL);
    cr_assert_eq(st.wake_ms, RETRY, "second conflict in a row waits a period");
    cr_assert_not(sm.leading);
}

Test(leader_sm, lease_deleted_while_leading)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    elect(&sm, 0, 0);
    rc_leader_sm_poll(&sm, RETRY);
    struct rc_leader_step st = rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, RETRY, RETRY,
                                                  RC_LEASE_NOT_FOUND, NULL);
    cr_assert_eq(st.event, RC_LEADER_LOST);
    cr_assert_str_eq(st.reason, "lease deleted");
    cr_assert_eq(rc_leader_sm_poll(&sm, RETRY).op, RC_LEASE_GET);
    st = rc_leader_sm_observed(&sm, RETRY, RC_LEASE_NOT_FOUND, NULL);
    cr_assert_eq(st.op, RC_LEASE_CREATE);

    /* A GET that finds nothing while leading is the same news. */
    sm_new(&sm, 0);
    elect(&sm, 0, 0);
    st = rc_leader_sm_observed(&sm, 100, RC_LEASE_NOT_FOUND, NULL);
    cr_assert_eq(st.event, RC_LEADER_LOST);
    cr_assert_eq(st.op, RC_LEASE_CREATE);
}

Test(leader_sm, release_on_stop_writes_an_expired_record)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    elect(&sm, 0, 0);
    rc_leader_sm_poll(&sm, RETRY);
    struct rc_lease_record want, got;
    rc_leader_sm_record(&sm, RC_LEASE_RENEW, "r", &want);
    want.transitions = 9;                      /* pretend a history */
    got = stored(&want, "123");
    rc_leader_sm_wrote(&sm, RC_LEASE_RENEW, RETRY, RETRY, RC_LEASE_OK, &got);

    struct rc_leader_step st = rc_leader_sm_stop(&sm, 3000);
    cr_assert_eq(st.event, RC_LEADER_LOST);
    cr_assert_str_eq(st.reason, "stopping");
    cr_assert_eq(st.op, RC_LEASE_RELEASE);
    cr_assert_eq(rc_leader_sm_valid_until(&sm), 0, "the fence drops before the release");
    rc_leader_sm_record(&sm, RC_LEASE_RELEASE, "2026-01-01T00:00:03.000000Z", &want);
    cr_assert_str_eq(want.holder, "");
    cr_assert_eq(want.duration_s, 1);
    cr_assert_eq(want.transitions, 9);
    cr_assert_str_eq(want.rv, "123");
    cr_assert_str_eq(want.renew_time, "2026-01-01T00:00:03.000000Z");
    cr_assert_str_eq(want.acquire_time, "2026-01-01T00:00:03.000000Z");

    /* A candidate seeing it takes it at once. */
    struct rc_leader_sm other;
    rc_leader_sm_init(&other, OTHER, LEASE, RENEW, RETRY, 0);
    got = stored(&want, "124");
    observe_expect(&other, 3100, &got, RC_LEASE_ACQUIRE);
}

Test(leader_sm, stop_as_candidate_or_after_deadline_releases_nothing)
{
    struct rc_leader_sm sm;
    sm_new(&sm, 0);
    struct rc_leader_step st = rc_leader_sm_stop(&sm, 0);
    cr_assert_eq(st.event, RC_LEADER_NONE);
    cr_assert_eq(st.op, RC_LEASE_WAIT);

    sm_new(&sm, 0);
    elect(&sm, 0, 0);
    st = rc_leader_sm_stop(&sm, RENEW + 1);
    cr_assert_eq(st.event, RC_LEADER_LOST);
    cr_assert_str_eq(st.reason, "renew deadline exceeded");
    cr_assert_eq(st.op, RC_LEASE_WAIT, "no longer ours to release");
}

Test(leader_sm, takeovers_count_transitions)
{
    struct rc_leader_sm a, b;
    rc_leader_sm_init(&a, "a", LEASE, RENEW, RETRY, 0);
    rc_leader_sm_init(&b, "b", LEASE, RENEW, RETRY, 0);
    struct rc_lease_record want, got;

    /* a creates (0), b takes over after expiry (1), a takes back (2). */
    rc_leader_sm_observed(&a, 0, RC_LEASE_NOT_FOUND, NULL);
    rc_leader_sm_record(&a, RC_LEASE_CREATE, "t0", &want);
    got = stored(&want, "1");
    rc_leader_sm_wrote(&a, RC_LEASE_CREATE, 0, 0, RC_LEASE_OK, &got);
    cr_assert_eq(got.transitions, 0);

    observe_expect(&b, 0, &got, RC_LEASE_WAIT);
    observe_expect(&b, LEASE, &got, RC_LEASE_ACQUIRE);
    rc_leader_sm_record(&b, RC_LEASE_ACQUIRE, "t1", &want);
    cr_assert_eq(want.transitions, 1);
    got = stored(&want, "2");
    rc_leader_sm_wrote(&b, RC_LEASE_ACQUIRE, LEASE, LEASE, RC_LEASE_OK, &got);

    struct rc_leader_step st = rc_leader_sm_observed(&a, LEASE + 1, RC_LEASE_OK, &got);
    cr_assert_eq(st.event, RC_LEADER_LOST, "a learns it lost");
    observe_expect(&a, 2 * LEASE + 1, &got, RC_LEASE_ACQUIRE);
    rc_leader_sm_record(&a, RC_LEASE_ACQUIRE, "t2", &want);
    cr_assert_eq(want.transitions, 2);
    cr_assert_eq(a.transitions, 2);   /* elected, lost */
    cr_assert_eq(b.transitions, 1);
}

/* ---- simulation ---------------------------------------------------------- */

/*
 * Three replicas and one Lease store.  Each request is applied to the
 * store at a random point after it is sent and answered later still; a
 * partitioned replica's requests fail after a while without reaching the
 * store.  Each replica's monotonic clock has its own offset (the state
 * machine never compares clocks).  Checked every 10 ms: no two fences up at
 * once; and after the trouble, someone leads again.
 */
#define SIM_N 3
#define SIM_TICK 10u
#define SIM_END 240000u

struct store {
    bool exists;
    struct rc_lease_record rec;
    unsigned long rv;
};

struct replica {
    struct rc_leader_sm sm;
    uint64_t offset;              /* its monotonic clock = t + offset        */
    bool dead;
    bool busy;                    /* a request in flight                     */
    enum rc_lease_op op;
    struct rc_lease_record body;  /* for writes                              */
    uint64_t sent, apply_at, answer_at;
    bool applied;
    enum rc_lease_result res;
    struct rc_lease_record answer;
    uint64_t wake;                /* in global time                          */
};

static unsigned long long sim_rng;

static unsigned rnd(unsigned n)
{
    sim_rng ^= sim_rng << 13;
    sim_rng ^= sim_rng >> 7;
    sim_rng ^= sim_rng << 17;
    return n ? (unsigned)(sim_rng % n) : 0;
}

static void store_apply(struct store *s, struct replica *r)
{
    char rv[32];
    switch (r->op) {
    case RC_LEASE_GET:
        r->res = s->exists ? RC_LEASE_OK : RC_LEASE_NOT_FOUND;
        r->answer = s->rec;
        return;
    case RC_LEASE_CREATE:
        if (s->exists) {
            r->res = RC_LEASE_CONFLICT;
            return;
        }
        break;
    default:
        if (!s->exists) {
            r->res = RC_LEASE_NOT_FOUND;
            return;
        }
        if (strcmp(r->body.rv, s->rec.rv) != 0) {
            r->res = RC_LEASE_CONFLICT;
            return;
        }
        break;
    }
    snprintf(rv, sizeof rv, "%lu", ++s->rv);
    s->exists = true;
    s->rec = r->body;
    snprintf(s->rec.rv, sizeof s->rec.rv, "%s", rv);
    r->res = RC_LEASE_OK;
    r->answer = s->rec;
}

static void start_request(struct replica *r, enum rc_lease_op op, uint64_t t, bool slow)
{
    r->busy = true;
    r->op = op;
    r->sent = t;
    r->applied = false;
    r->res = RC_LEASE_FAILED;
    /* Usually a few ms each way; sometimes seconds (a loaded server). */
    unsigned there = slow ? rnd(3000) : (rnd(20) == 0 ? rnd(2500) : rnd(40));
    unsigned back = slow ? rnd(3000) : (rnd(20) == 0 ? rnd(2500) : rnd(40));
    r->apply_at = t + there;
    r->answer_at = t + there + back;
    if (op != RC_LEASE_GET) {
        char micro[RC_LEASE_TIME_MAX];
        snprintf(micro, sizeof micro, "wall-%llu", (unsigned long long)(t * 7 + r->offset));
        rc_leader_sm_record(&r->sm, op, micro, &r->body);
    }
}

static void handle(struct replica *r, struct rc_leader_step st, uint64_t t, bool slow)
{
    if (st.op == RC_LEASE_WAIT) {
        r->busy = false;
        r->wake = st.wake_ms - r->offset;
    } else {
        start_request(r, st.op, t, slow);
    }
}

static int fences_up(struct replica *rs, uint64_t t)
{
    int n = 0;
    for (int i = 0; i < SIM_N; i++)
        if (!rs[i].dead && rc_leader_sm_valid_until(&rs[i].sm) > t + rs[i].offset)
            n++;
    return n;
}

static void simulate(unsigned long long seed, unsigned *elections, uint64_t *last_leaderless)
{
    sim_rng = seed * 2654435761ull + 1;
    struct store s = { 0 };
    struct replica rs[SIM_N];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < SIM_N; i++) {
        char id[32];
        snprintf(id, sizeof id, "replica-%d", i);
        rs[i].offset = (uint64_t)rnd(1000000) * 1000u;
        rc_leader_sm_init(&rs[i].sm, id, LEASE, RENEW, RETRY, rs[i].offset);
        rs[i].wake = rnd(3000);
    }
    /* Trouble: partitions of random replicas, one crash, one slow spell,
     * one graceful stop with release; all over by SIM_END - 60 s. */
    uint64_t part_from[4], part_to[4];
    int part_who[4];
    for (int k = 0; k < 4; k++) {
        part_from[k] = 20000u + rnd(120000);
        part_to[k] = part_from[k] + 2000u + rnd(25000);
        part_who[k] = (int)rnd(SIM_N);
    }
    uint64_t crash_at = 30000u + rnd(100000);
    int crash_who = (int)rnd(SIM_N);
    uint64_t slow_from = 10000u + rnd(100000), slow_to = slow_from + 30000u;
    uint64_t stop_at = 60000u + rnd(100000);
    int stop_who = (int)rnd(SIM_N);
    *elections = 0;
    *last_leaderless = 0;

    for (uint64_t t = 0; t < SIM_END; t += SIM_TICK) {
        bool slow = t >= slow_from && t < slow_to;
        for (int i = 0; i < SIM_N; i++) {
            struct replica *r = &rs[i];
            if (r->dead)
                continue;
            uint64_t now = t + r->offset;
            if (i == crash_who && t >= crash_at) {
                r->dead = true;            /* kill -9: nothing more, no release */
                continue;
            }
            if (i == stop_who && t >= stop_at && !r->busy) {
                /* graceful stop once no request is in flight: step down,
                 * release (applied at once) */
                struct rc_leader_step st = rc_leader_sm_stop(&r->sm, now);
                if (st.op == RC_LEASE_RELEASE) {
                    start_request(r, RC_LEASE_RELEASE, t, false);
                    store_apply(&s, r);
                }
                r->dead = true;
                continue;
            }
            bool parted = false;
            for (int k = 0; k < 4; k++)
                if (part_who[k] == i && t >= part_from[k] && t < part_to[k])
                    parted = true;
            if (r->busy) {
                if (!r->applied && t >= r->apply_at) {
                    r->applied = true;
                    if (!parted)
                        store_apply(&s, r);
                    else
                        r->res = RC_LEASE_FAILED;
                }
                if (!r->applied || t < r->answer_at)
                    continue;
                struct rc_leader_step st;
                if (r->op == RC_LEASE_GET)
                    st = rc_leader_sm_observed(&r->sm, now, r->res,
                                               r->res == RC_LEASE_OK ? &r->answer : NULL);
                else
                    st = rc_leader_sm_wrote(&r->sm, r->op, r->sent + r->offset, now, r->res,
                                            r->res == RC_LEASE_OK ? &r->answer : NULL);
                if (st.event == RC_LEADER_ELECTED)
                    (*elections)++;
                handle(r, st, t, slow);
                continue;
            }
            if (t < r->wake)
                continue;
            struct rc_leader_step st = rc_leader_sm_poll(&r->sm, now);
            handle(r, st, t, slow);
        }
        int up = fences_up(rs, t);
        cr_assert_leq(up, 1, "seed %llu: %d leaders at t=%llu", seed, up,
                      (unsigned long long)t);
        if (up == 0)
            *last_leaderless = t;
    }
}

Test(leader_sm, simulation_never_two_leaders)
{
    unsigned total = 0;
    for (unsigned long long seed = 1; seed <= 150; seed++) {
        unsigned elections;
        uint64_t last_leaderless;
        simulate(seed, &elections, &last_leaderless);
        cr_assert_geq(elections, 1, "seed %llu: nobody ever led", seed);
        /* Trouble ends by 190 s at the latest (partition ≤ 27 s after
         * ≤ 140 s; slow spell ≤ 140 s): a leader within lease + retry +
         * latency after that, and it stays. */
        cr_assert_lt(last_leaderless, 190000u + LEASE + RENEW + 2 * RETRY,
                     "seed %llu: leaderless at %llu", seed,
                     (unsigned long long)last_leaderless);
        total += elections;
    }
    cr_assert_gt(total, 150, "the trouble caused some takeovers");
}

/* ---- leader_json --------------------------------------------------------- */

static const char *const LEASE_JSON =
    "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
    "\"metadata\":{\"name\":\"io-leader\",\"namespace\":\"ops\",\"resourceVersion\":\"4711\","
    "\"uid\":\"u-1\",\"labels\":{\"team\":\"ml\"},"
    "\"managedFields\":[{\"manager\":\"x\",\"operation\":\"Update\"}]},"
    "\"spec\":{\"holderIdentity\":\"host-a_00ff\",\"leaseDurationSeconds\":15,"
    "\"acquireTime\":\"2026-03-01T10:00:00.000001Z\",\"renewTime\":\"2026-03-01T10:05:00.123456Z\","
    "\"leaseTransitions\":3,\"strategy\":\"OldestEmulationVersion\"}}";

Test(leader_json, parse_a_lease)
{
    cJSON *o = cJSON_Parse(LEASE_JSON);
    cr_assert_not_null(o);
    struct rc_lease_record r;
    char err[256];
    cr_assert_eq(rc_lease_parse(o, &r, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(r.holder, "host-a_00ff");
    cr_assert_eq(r.duration_s, 15);
    cr_assert_str_eq(r.acquire_time, "2026-03-01T10:00:00.000001Z");
    cr_assert_str_eq(r.renew_time, "2026-03-01T10:05:00.123456Z");
    cr_assert_eq(r.transitions, 3);
    cr_assert_str_eq(r.rv, "4711");
    cJSON_Delete(o);
}

Test(leader_json, parse_sparse_and_bad)
{
    struct rc_lease_record r;
    char err[256];
    cJSON *o = cJSON_Parse("{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{}}");
    cr_assert_eq(rc_lease_parse(o, &r, err, sizeof err), 0);
    cr_assert_str_eq(r.holder, "");
    cr_assert_eq(r.duration_s, 0);
    cr_assert_eq(r.transitions, 0);
    cJSON_Delete(o);

    o = cJSON_Parse("{\"metadata\":{\"resourceVersion\":\"1\"}}");
    cr_assert_eq(rc_lease_parse(o, &r, err, sizeof err), 0, "no spec: a free lease");
    cJSON_Delete(o);

    static const char *const bad[] = {
        "{\"metadata\":{},\"spec\":{}}",
        "{\"spec\":{}}",
        "[]",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{\"holderIdentity\":5}}",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{\"leaseDurationSeconds\":\"15\"}}",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":{\"renewTime\":1}}",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = cJSON_Parse(bad[i]);
        cr_assert_not_null(o);
        err[0] = '\0';
        cr_assert_eq(rc_lease_parse(o, &r, err, sizeof err), -1, "%s", bad[i]);
        cr_assert_neq(err[0], '\0');
        cJSON_Delete(o);
    }

    /* A holder longer than the buffer is refused, never truncated into
     * something that might equal our identity. */
    size_t n = RC_LEASE_HOLDER_MAX + 10;
    char *big = malloc(n + 100);
    int w = snprintf(big, n + 100, "{\"metadata\":{\"resourceVersion\":\"1\"},"
                                   "\"spec\":{\"holderIdentity\":\"");
    memset(big + w, 'a', n);
    snprintf(big + w + n, 100, "\"}}");
    o = cJSON_Parse(big);
    cr_assert_eq(rc_lease_parse(o, &r, err, sizeof err), -1);
    cJSON_Delete(o);
    free(big);
}

Test(leader_json, update_body_keeps_metadata_and_sets_rv)
{
    cJSON *base = cJSON_Parse(LEASE_JSON);
    struct rc_lease_record r = rec_of("me_1", 15, "2026-03-01T10:06:00.000000Z", 4, "4711");
    char *body = rc_lease_body(base, "io-leader", "ops", &r);
    cr_assert_not_null(body);
    cJSON *o = cJSON_Parse(body);
    cr_assert_not_null(o);
    const cJSON *meta = cJSON_GetObjectItem(o, "metadata");
    const cJSON *spec = cJSON_GetObjectItem(o, "spec");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "apiVersion")->valuestring, "coordination.k8s.io/v1");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "kind")->valuestring, "Lease");
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "resourceVersion")->valuestring, "4711");
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "name")->valuestring, "io-leader");
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "namespace")->valuestring, "ops");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "labels"), "team")->valuestring,
                     "ml");
    cr_assert_null(cJSON_GetObjectItem(meta, "managedFields"));
    cr_assert_str_eq(cJSON_GetObjectItem(spec, "holderIdentity")->valuestring, "me_1");
    cr_assert_eq(cJSON_GetObjectItem(spec, "leaseDurationSeconds")->valueint, 15);
    cr_assert_eq(cJSON_GetObjectItem(spec, "leaseTransitions")->valueint, 4);
    cr_assert_str_eq(cJSON_GetObjectItem(spec, "renewTime")->valuestring,
                     "2026-03-01T10:06:00.000000Z");
    cr_assert_str_eq(cJSON_GetObjectItem(spec, "strategy")->valuestring,
                     "OldestEmulationVersion", "fields we do not own are kept");

    struct rc_lease_record back;
    cr_assert_eq(rc_lease_parse(o, &back, NULL, 0), 0);
    cr_assert_str_eq(back.holder, "me_1");
    cJSON_Delete(o);
    free(body);

    /* A release writes holderIdentity "" explicitly. */
    r = rec_of("", 1, "t", 4, "4712");
    body = rc_lease_body(base, "io-leader", "ops", &r);
    o = cJSON_Parse(body);
    spec = cJSON_GetObjectItem(o, "spec");
    cr_assert_str_eq(cJSON_GetObjectItem(spec, "holderIdentity")->valuestring, "");
    cr_assert_eq(cJSON_GetObjectItem(spec, "leaseDurationSeconds")->valueint, 1);
    cJSON_Delete(o);
    free(body);
    cJSON_Delete(base);
}

Test(leader_json, create_body)
{
    struct rc_lease_record r = rec_of("me \"quoted\"", 15, "2026-03-01T10:06:00.000000Z", 0, "");
    char *body = rc_lease_body(NULL, "io-leader", "ops", &r);
    cJSON *o = cJSON_Parse(body);
    cr_assert_not_null(o, "%s", body);
    const cJSON *meta = cJSON_GetObjectItem(o, "metadata");
    cr_assert_null(cJSON_GetObjectItem(meta, "resourceVersion"));
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "name")->valuestring, "io-leader");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "holderIdentity")
                         ->valuestring, "me \"quoted\"");
    cJSON_Delete(o);
    free(body);
}

Test(leader_json, micro_time)
{
    char out[RC_LEASE_TIME_MAX];
    rc_lease_micro_time((struct timespec){ .tv_sec = 0, .tv_nsec = 6999 }, out);
    cr_assert_str_eq(out, "1970-01-01T00:00:00.000006Z");
    rc_lease_micro_time((struct timespec){ .tv_sec = 1780000000, .tv_nsec = 123456789 }, out);
    cr_assert_str_eq(out, "2026-05-28T20:26:40.123456Z");
}

/* ---- leader (the threaded part, without a server) ------------------------ */

static void opts_ok(struct rc_leader_opts *o)
{
    rc_leader_opts_init(o);
    o->name = "io-leader";
    o->namespace_ = "ops";
}

static void cfg_nowhere(struct kube_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    /* Port 1 on loopback: connection refused at once. */
    snprintf(cfg->server, sizeof cfg->server, "http://127.0.0.1:1");
}

Test(leader, defaults)
{
    struct rc_leader_opts o;
    rc_leader_opts_init(&o);
    cr_assert_eq(o.lease_ms, 15000);
    cr_assert_eq(o.renew_deadline_ms, 10000);
    cr_assert_eq(o.retry_ms, 2000);
    cr_assert(o.release_on_stop);
    cr_assert_null(o.identity);
}

Test(leader, bad_options_are_refused)
{
    struct kube_config cfg;
    cfg_nowhere(&cfg);
    struct rc_leader_opts o;
    struct rc_leader *l = (struct rc_leader *)1;
    char err[512];
    struct {
        const char *name, *ns;
        unsigned lease, renew, retry;
        const char *want;
    } cases[] = {
        { "Io_Leader", "ops", 15000, 10000, 2000, "DNS subdomain" },
        { "", "ops", 15000, 10000, 2000, "DNS subdomain" },
        { "io-leader", "a.b", 15000, 10000, 2000, "DNS label" },
        { "io-leader", NULL, 15000, 10000, 2000, "DNS label" },
        { "io-leader", "ops", 15500, 10000, 2000, "whole seconds" },
        { "io-leader", "ops", 10000, 10000, 2000, "greater than the renew deadline" },
        { "io-leader", "ops", 15000, 2400, 2000, "1.2" },
        { "io-leader", "ops", 15000, 10000, 0, "retry" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        opts_ok(&o);
        o.name = cases[i].name;
        o.namespace_ = cases[i].ns;
        o.lease_ms = cases[i].lease;
        o.renew_deadline_ms = cases[i].renew;
        o.retry_ms = cases[i].retry;
        err[0] = '\0';
        cr_assert_eq(rc_leader_start(&cfg, &o, NULL, NULL, &l, err, sizeof err), -1,
                     "case %zu", i);
        cr_assert_null(l);
        cr_assert(strstr(err, cases[i].want), "case %zu: %s", i, err);
    }
    opts_ok(&o);
    char id[RC_LEADER_ID_MAX + 10];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    o.identity = id;
    cr_assert_eq(rc_leader_start(&cfg, &o, NULL, NULL, &l, err, sizeof err), -1);
}

static int calls_true, calls_false;

static void count_calls(void *arg, bool leading)
{
    (void)arg;
    if (leading)
        calls_true++;
    else
        calls_false++;
}

Test(leader, unreachable_server_never_leads_and_stops_promptly)
{
    struct kube_config cfg;
    cfg_nowhere(&cfg);
    struct rc_leader_opts o;
    opts_ok(&o);
    o.lease_ms = 3000;
    o.renew_deadline_ms = 2000;
    o.retry_ms = 200;
    struct rc_leader *l;
    char err[512];
    cr_assert_eq(rc_leader_start(&cfg, &o, count_calls, NULL, &l, err, sizeof err), 0, "%s",
                 err);
    struct rc_leader_stats st;
    for (int i = 0; i < 10; i++) {
        cr_assert_not(rc_leader_leading(l));
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    rc_leader_stats(l, &st);
    cr_assert_not(st.leading);
    cr_assert_eq(st.transitions, 0);
    cr_assert_str_eq(st.holder, "");
    /* "<hostname>_<16 hex>" */
    const char *us = strrchr(st.identity, '_');
    cr_assert_not_null(us, "%s", st.identity);
    cr_assert_eq(strlen(us + 1), 16, "%s", st.identity);
    cr_assert_eq(strspn(us + 1, "0123456789abcdef"), 16, "%s", st.identity);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc_leader_stop(l);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(s, 1.5, "stop took %.2f s", s);
    cr_assert_eq(calls_true, 0);
    cr_assert_eq(calls_false, 0);
    rc_leader_stop(NULL);
}

Test(leader, given_identity_is_used)
{
    struct kube_config cfg;
    cfg_nowhere(&cfg);
    struct rc_leader_opts o;
    opts_ok(&o);
    o.identity = "pod-7";
    struct rc_leader *l;
    char err[512];
    cr_assert_eq(rc_leader_start(&cfg, &o, NULL, NULL, &l, err, sizeof err), 0, "%s", err);
    struct rc_leader_stats st;
    rc_leader_stats(l, &st);
    cr_assert_str_eq(st.identity, "pod-7");
    rc_leader_stop(l);
}
