/*
 * kube_ratelimit.c — token bucket with reservations.  See kube_ratelimit.h.
 */
#include "kube_ratelimit.h"

#include <stdint.h>

#include "clock.h"

int kube_ratelimit_init(struct kube_ratelimit *rl, double qps, unsigned burst)
{
    if (pthread_mutex_init(&rl->mu, NULL) != 0)
        return -1;
    kube_ratelimit_set(rl, qps, burst);
    return 0;
}

void kube_ratelimit_set(struct kube_ratelimit *rl, double qps, unsigned burst)
{
    pthread_mutex_lock(&rl->mu);
    rl->qps = qps;
    rl->burst = burst ? (double)burst : 1.0;
    rl->tokens = rl->burst;
    rl->last_s = 0;
    rl->started = false;
    pthread_mutex_unlock(&rl->mu);
}

void kube_ratelimit_destroy(struct kube_ratelimit *rl)
{
    pthread_mutex_destroy(&rl->mu);
}

/* Add what accrued since the last refill (under mu). */
static void refill(struct kube_ratelimit *rl, double now_s)
{
    /* A clock that steps back (only possible with injected time) refills
     * nothing rather than draining the bucket. */
    if (rl->started && now_s > rl->last_s) {
        rl->tokens += (now_s - rl->last_s) * rl->qps;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
    }
    if (!rl->started || now_s > rl->last_s)
        rl->last_s = now_s;
    rl->started = true;
}

double kube_ratelimit_reserve_at(struct kube_ratelimit *rl, double now_s)
{
    if (!(rl->qps > 0))
        return 0;
    pthread_mutex_lock(&rl->mu);
    refill(rl, now_s);
    rl->tokens -= 1.0;
    double wait = rl->tokens >= 0 ? 0 : -rl->tokens / rl->qps;
    pthread_mutex_unlock(&rl->mu);
    return wait;
}

bool kube_ratelimit_take_at(struct kube_ratelimit *rl, double now_s)
{
    if (!(rl->qps > 0))
        return true;
    pthread_mutex_lock(&rl->mu);
    refill(rl, now_s);
    bool taken = rl->tokens >= 1.0;
    if (taken)
        rl->tokens -= 1.0;
    pthread_mutex_unlock(&rl->mu);
    return taken;
}

void kube_ratelimit_wait(struct kube_ratelimit *rl)
{
    double wait = kube_ratelimit_reserve_at(rl, mono_now_s());
    /* The token is already ours: sleep_ns finishes the sleep whatever
     * interrupts it. */
    if (wait > 0)
        sleep_ns((uint64_t)(wait * 1e9));
}
