/*
 * clock.c — see clock.h.  Deadlines are absolute timespecs built by
 * arithmetic on a monotonic reading, so the same helpers serve a relative
 * wait (mono_deadline_after_ms) and a wake-up time a caller already keeps
 * as an integer (timespec_from_ms/ns).
 */
#include "clock.h"

#include <errno.h>

#define NS_PER_S 1000000000u
#define NS_PER_MS 1000000u
#define MS_PER_S 1000u

uint64_t mono_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t mono_now_ms(void)
{
    return mono_now_ns() / NS_PER_MS;
}

double mono_now_s(void)
{
    return (double)mono_now_ns() / (double)NS_PER_S;
}

struct timespec timespec_add_ms(struct timespec base, uint64_t ms)
{
    base.tv_sec += (time_t)(ms / MS_PER_S);
    base.tv_nsec += (long)(ms % MS_PER_S) * (long)NS_PER_MS;
    if (base.tv_nsec >= (long)NS_PER_S) {
        base.tv_sec++;
        base.tv_nsec -= (long)NS_PER_S;
    }
    return base;
}

struct timespec timespec_from_ns(uint64_t ns)
{
    return (struct timespec){ .tv_sec = (time_t)(ns / NS_PER_S),
                              .tv_nsec = (long)(ns % NS_PER_S) };
}

struct timespec timespec_from_ms(uint64_t ms)
{
    return timespec_add_ms((struct timespec){ 0, 0 }, ms);
}

struct timespec mono_deadline_after_ms(uint64_t ms)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return timespec_add_ms(now, ms);
}

/* nanosleep leaves what remains in left, so an interrupted sleep goes on
 * for exactly that. */
static void sleep_for(struct timespec left)
{
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

void sleep_ns(uint64_t ns)
{
    sleep_for(timespec_from_ns(ns));
}

void sleep_ms(uint64_t ms)
{
    sleep_for(timespec_from_ms(ms));
}

int cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}
