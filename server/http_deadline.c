/*
 * http_deadline.c — see http_deadline.h.
 */
#include "http_deadline.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "log.h"

struct srv_conn_deadline {
    struct srv_conn_deadline *prev, *next;
    int fd;
    bool expired;                  /* shut down once already */
    _Atomic uint64_t deadline_ns;  /* CLOCK_MONOTONIC */
};

struct srv_deadlines {
    pthread_mutex_t lock;          /* the list and every entry's links */
    pthread_cond_t wake;
    bool stopping;
    struct srv_conn_deadline head; /* sentinel of a circular list */
    size_t count, peak;            /* registered now, most since a trim */
    _Atomic uint64_t expired;
    pthread_t thread;
};

static void reap(struct srv_deadlines *d, uint64_t now)
{
    for (struct srv_conn_deadline *c = d->head.next; c != &d->head; c = c->next) {
        if (c->expired || atomic_load_explicit(&c->deadline_ns,
                                               memory_order_relaxed) > now)
            continue;
        /* Registered, so libmicrohttpd has not closed fd yet (it
         * unregisters first, under this lock). */
        if (shutdown(c->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
            log_debug("connection past its deadline: shutdown failed",
                      LF_STR("error", strerror(errno)));
        c->expired = true;
        atomic_fetch_add_explicit(&d->expired, 1, memory_order_relaxed);
    }
}

/* After a burst of connections (an attack, a thundering herd) has mostly
 * gone, hand the freed pools and TLS sessions back to the kernel: glibc
 * otherwise keeps them in its arenas, ~10 MiB after 300 connections
 * where the idle server needs ~4.  Only after a burst, so it costs
 * nothing in steady state. */
static bool burst_over(struct srv_deadlines *d)
{
    if (d->peak < SRV_TRIM_BURST_MIN || d->count > d->peak / 4)
        return false;
    d->peak = d->count;
    return true;
}

static void *reaper_main(void *arg)
{
    struct srv_deadlines *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        if (burst_over(d)) {
            pthread_mutex_unlock(&d->lock);
#ifdef __GLIBC__
            malloc_trim(0);
#endif
            pthread_mutex_lock(&d->lock);
            continue;
        }
        struct timespec until = mono_deadline_after_ms(SRV_DEADLINE_TICK_MS);
        pthread_cond_timedwait(&d->wake, &d->lock, &until);
        if (!d->stopping)
            reap(d, mono_now_ns());
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int srv_deadlines_start(struct srv_deadlines **out, char *err, size_t errlen)
{
    struct srv_deadlines *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->head.next = d->head.prev = &d->head;
    int rc = pthread_mutex_init(&d->lock, NULL);
    if (rc == 0) {
        rc = cond_init_monotonic(&d->wake);
        if (rc == 0) {
            rc = pthread_create(&d->thread, NULL, reaper_main, d);
            if (rc == 0) {
                *out = d;
                return 0;
            }
            pthread_cond_destroy(&d->wake);
        }
        pthread_mutex_destroy(&d->lock);
    }
    free(d);
    snprintf(err, errlen, "could not start the connection deadline thread: %s",
             strerror(rc));
    return -1;
}

void srv_deadlines_stop(struct srv_deadlines *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    /* The daemon is stopped: whatever is left was never unregistered
     * (it cannot be, but never leak it). */
    struct srv_conn_deadline *c = d->head.next;
    while (c != &d->head) {
        struct srv_conn_deadline *next = c->next;
        free(c);
        c = next;
    }
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

struct srv_conn_deadline *srv_deadlines_add(struct srv_deadlines *d, int fd,
                                            uint64_t timeout_ms)
{
    struct srv_conn_deadline *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = fd;
    atomic_init(&c->deadline_ns, mono_now_ns() + timeout_ms * 1000000u);
    pthread_mutex_lock(&d->lock);
    c->prev = d->head.prev;
    c->next = &d->head;
    d->head.prev->next = c;
    d->head.prev = c;
    if (++d->count > d->peak)
        d->peak = d->count;
    pthread_mutex_unlock(&d->lock);
    return c;
}

void srv_deadline_extend(struct srv_conn_deadline *cd, uint64_t timeout_ms)
{
    atomic_store_explicit(&cd->deadline_ns, mono_now_ns() + timeout_ms * 1000000u,
                          memory_order_relaxed);
}

void srv_deadlines_remove(struct srv_deadlines *d, struct srv_conn_deadline *cd)
{
    pthread_mutex_lock(&d->lock);
    cd->prev->next = cd->next;
    cd->next->prev = cd->prev;
    d->count--;
    pthread_mutex_unlock(&d->lock);
    free(cd);
}

uint64_t srv_deadlines_expired(const struct srv_deadlines *d)
{
    return atomic_load_explicit(&d->expired, memory_order_relaxed);
}
