/*
 * kube_ratelimit.c — token bucket with reservations.  See kube_ratelimit.h.
 */
#include "kube_ratelimit.h"

#include <errno.h>
#include <math.h>
#include <time.h>

int kube_ratelimit_init(struct kube_ratelimit *rl, double qps, unsigned burst)
{
    if (pthread_mutex_init(&rl->mu, NULL) != 0)
        return -1;
    rl->qps = qps;
    rl->burst = burst ? (double)burst : 1.0;
    rl->tokens = rl->burst;
    rl->last_s = 0;
    rl->started = false;
    return 0;
}

void kube_ratelimit_destroy(struct kube_ratelimit *rl)
{
    pthread_mutex_destroy(&rl->mu);
}

double kube_ratelimit_reserve_at(struct kube_ratelimit *rl, double now_s)
{
    if (!(rl->qps > 0))
        return 0;
    pthread_mutex_lock(&rl->mu);
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
    rl->tokens -= 1.0;
    double wait = rl->tokens >= 0 ? 0 : -rl->tokens / rl->qps;
    pthread_mutex_unlock(&rl->mu);
    return wait;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kube_ratelimit_wait(struct kube_ratelimit *rl)
{
    double wait = kube_ratelimit_reserve_at(rl, mono_s());
    if (wait <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)wait};
    ts.tv_nsec = (long)((wait - floor(wait)) * 1e9);
    /* The token is already ours: finish the sleep whatever interrupts. */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
