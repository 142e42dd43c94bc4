/*
 * kube_ratelimit.h — the client's token bucket (client-go's --kube-api-qps
 * and --kube-api-burst).
 *
 * Reservation style, as golang.org/x/time/rate: a caller takes a token at
 * once, even into debt, and is told how long to wait for it.  Waiters are
 * thus served in arrival order, each sleeps exactly once, and no condition
 * variable is needed.  The arithmetic takes the time as an argument so
 * tests can drive it without sleeping.
 */
#ifndef KUBE_RATELIMIT_H
#define KUBE_RATELIMIT_H

#include <pthread.h>
#include <stdbool.h>

struct kube_ratelimit {
    pthread_mutex_t mu;
    double qps;          /* tokens per second; <= 0 = unlimited    */
    double burst;        /* bucket size, >= 1                      */
    double tokens;       /* may be negative: reserved in advance   */
    double last_s;       /* time of the last refill                */
    bool started;        /* last_s is meaningful                   */
};

/* A full bucket.  Returns 0, or -1 if the mutex cannot be created. */
int kube_ratelimit_init(struct kube_ratelimit *rl, double qps, unsigned burst);
void kube_ratelimit_destroy(struct kube_ratelimit *rl);

/* Sets the rate (as init does) and fills the bucket. */
void kube_ratelimit_set(struct kube_ratelimit *rl, double qps, unsigned burst);

/* Take one token at time now_s (any monotonic clock in seconds, e.g.
 * clock.h's mono_now_s()); returns how many seconds the caller must wait
 * before using it (0 = go). */
double kube_ratelimit_reserve_at(struct kube_ratelimit *rl, double now_s);

/* Take one token at time now_s only if the bucket holds one (never into
 * debt): true = taken.  For what is dropped rather than delayed. */
bool kube_ratelimit_take_at(struct kube_ratelimit *rl, double now_s);

/* Take one token now and sleep until it is due. */
void kube_ratelimit_wait(struct kube_ratelimit *rl);

#endif
