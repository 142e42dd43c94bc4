/*
 * metrics.c — Prometheus text rendering and the collector registry.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_hist_bounds[METRICS_HIST_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t want = b->cap ? b->cap * 2 : 4096;
        while (want < b->len + (size_t)n + 1)
            want *= 2;
        if (want > METRICS_PAGE_MAX) {
            b->failed = true;
            return;
        }
        char *p = realloc(b->data, want);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = want;
    }
}

void metrics_hist_observe_ns(struct metrics_hist *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < METRICS_HIST_BUCKETS && s > metrics_hist_bounds[i])
        i++;
    if (i < METRICS_HIST_BUCKETS)
        atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void metrics_hist_write(struct metrics_buf *b, const char *name,
                        const char *labels, const struct metrics_hist *h)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < METRICS_HIST_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        metrics_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                       metrics_hist_bounds[i], (unsigned long long)cumulative);
    }
    uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
    /* The total is read last; a concurrent observation can make +Inf
     * briefly exceed the last bucket, never fall below it. */
    if (count < cumulative)
        count = cumulative;
    metrics_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)count);
    metrics_printf(b, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels,
                   labels[0] ? "}" : "",
                   (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    metrics_printf(b, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                   labels[0] ? "}" : "", (unsigned long long)count);
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    metrics_collect_fn fn;
    void *arg;
} collectors[METRICS_COLLECTORS_MAX];
static size_t collector_count;

int metrics_register(metrics_collect_fn fn, void *arg)
{
    int rc = -1;
    pthread_mutex_lock(&registry_lock);
    if (collector_count < METRICS_COLLECTORS_MAX) {
        collectors[collector_count].fn = fn;
        collectors[collector_count].arg = arg;
        collector_count++;
        rc = 0;
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

void metrics_unregister(metrics_collect_fn fn, void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < collector_count; i++) {
        if (collectors[i].fn == fn && collectors[i].arg == arg) {
            memmove(&collectors[i], &collectors[i + 1],
                    (collector_count - i - 1) * sizeof(collectors[0]));
            collector_count--;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

int metrics_render(char **out, size_t *len)
{
    struct metrics_buf b = { 0 };
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < collector_count; i++)
        collectors[i].fn(&b, collectors[i].arg);
    pthread_mutex_unlock(&registry_lock);
    if (b.failed || b.data == NULL) {
        free(b.data);
        if (b.failed)
            return -1;
        b.data = calloc(1, 1);
        if (b.data == NULL)
            return -1;
    }
    *out = b.data;
    *len = b.len;
    return 0;
}
