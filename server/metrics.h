/*
 * metrics.h — Prometheus text exposition (format 0.0.4) without a client
 * library: owners keep their own atomic counters and histograms, register
 * a collector that prints them, and GET /metrics concatenates the
 * collectors' output.  Nothing is allocated on the hot path; an
 * observation is a few relaxed atomic adds.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Collectors a process may register (server, webhook, reconciler, ...). */
#define METRICS_COLLECTORS_MAX 16
/* Largest /metrics page; the reconciler's per-object series are not
 * exported, so this stays small. */
#define METRICS_PAGE_MAX (1024 * 1024)

struct metrics_buf {
    char *data;
    size_t len, cap;
    bool failed;   /* out of memory or past METRICS_PAGE_MAX */
};

void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Latency buckets in seconds, fine enough for a ~50 µs webhook and wide
 * enough for a multi-second API call: 100 µs ... 10 s. */
#define METRICS_HIST_BUCKETS 16
extern const double metrics_hist_bounds[METRICS_HIST_BUCKETS];

struct metrics_hist {
    _Atomic uint64_t buckets[METRICS_HIST_BUCKETS]; /* non-cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};

void metrics_hist_observe_ns(struct metrics_hist *h, uint64_t ns);

/* Write name_bucket/_sum/_count lines; labels is "" or `a="b",c="d"`. */
void metrics_hist_write(struct metrics_buf *b, const char *name,
                        const char *labels, const struct metrics_hist *h);

typedef void (*metrics_collect_fn)(struct metrics_buf *b, void *arg);

/* Returns 0, or -1 when METRICS_COLLECTORS_MAX are registered. */
int metrics_register(metrics_collect_fn fn, void *arg);
void metrics_unregister(metrics_collect_fn fn, void *arg);

/* Render every collector.  Returns 0 with a malloc'd page in *out, or -1. */
int metrics_render(char **out, size_t *len);

#endif
