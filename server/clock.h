/*
 * clock.h — intervals, deadlines, sleeps and timed-wait condition variables,
 * all on CLOCK_MONOTONIC so a wall-clock step (NTP, VM resume) cannot stretch
 * or cut a wait.  A timed wait's condvar comes from cond_init_monotonic() and
 * its deadline from mono_deadline_after_ms(): one clock on both sides.
 * CLOCK_REALTIME stays only where a calendar time is meant (API, certs, logs).
 */
#ifndef SRV_CLOCK_H
#define SRV_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC now.  Cannot fail on Linux (the clock always exists). */
uint64_t mono_now_ns(void);
uint64_t mono_now_ms(void);
double mono_now_s(void);

/* base + ms, normalised (0 <= tv_nsec < 1e9). */
struct timespec timespec_add_ms(struct timespec base, uint64_t ms);

/* An absolute CLOCK_MONOTONIC time kept as an integer, as the timespec
 * pthread_cond_timedwait wants. */
struct timespec timespec_from_ns(uint64_t ns);
struct timespec timespec_from_ms(uint64_t ms);

/* CLOCK_MONOTONIC now + ms: the deadline for a timed wait on a condition
 * variable made by cond_init_monotonic().  No clock parameter on purpose:
 * a wall-clock deadline given to such a wait is the bug this prevents. */
struct timespec mono_deadline_after_ms(uint64_t ms);

/* Sleep at least ms (ns), resuming after a signal interrupts. */
void sleep_ms(uint64_t ms);
void sleep_ns(uint64_t ns);

/* pthread_cond_init on CLOCK_MONOTONIC.  0, or an errno value (cond is
 * then not initialised). */
int cond_init_monotonic(pthread_cond_t *cond);

#endif
