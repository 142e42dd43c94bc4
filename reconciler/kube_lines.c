/*
 * kube_lines.c — incremental '\n' splitter.  See kube_lines.h.
 *
 * Invariant between calls: buf[0..len) is the start of a line and holds no
 * '\n' (every complete line has been delivered).  So the scan position is
 * implicitly len: a feed only ever scans the bytes it was given, each byte
 * is copied once, and nothing is ever moved.  A megabyte line arriving one
 * byte at a time costs one memchr of one byte plus one append per call.
 *
 * Lines are delivered byte-exact: a '\r' before the '\n' stays part of the
 * line.  Kubernetes sends bare '\n'; a JSON decoder skips '\r' as
 * whitespace anyway, and a splitter that edits data is harder to reason
 * about.  Empty lines are delivered with len 0.
 */
#include "kube_lines.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* First allocation: most watch events (a few KB) fit without regrowing. */
#define LINES_INITIAL_CAP 4096
/* A buffer grown past this for one big object is released after its line,
 * so one large event does not pin megabytes for the life of a watch. */
#define LINES_KEEP_CAP (64 * 1024)

void kube_lines_init(struct kube_lines *l, size_t max)
{
    l->buf = NULL;
    l->len = 0;
    l->cap = 0;
    l->max = max;
}

/* Make room for need bytes plus the NUL the callback is promised.  Grows
 * geometrically so appends stay amortised O(1), but never past max + 1. */
static int reserve(struct kube_lines *l, size_t need)
{
    if (need < l->cap)
        return 0;
    size_t limit = l->max < SIZE_MAX ? l->max + 1 : SIZE_MAX;
    size_t cap = l->cap ? l->cap : LINES_INITIAL_CAP;
    while (cap - 1 < need)
        cap = cap > limit / 2 ? limit : cap * 2;
    if (cap > limit)
        cap = limit;
    char *nb = realloc(l->buf, cap);
    if (!nb)
        return -1;
    l->buf = nb;
    l->cap = cap;
    return 0;
}

/* Append n bytes of the current line; -1 when the line would pass max
 * (or memory runs out: the caller's answer is the same, reconnect). */
static int append(struct kube_lines *l, const char *data, size_t n)
{
    if (n > l->max - l->len)
        return -1;
    if (reserve(l, l->len + n) != 0)
        return -1;
    memcpy(l->buf + l->len, data, n);
    l->len += n;
    return 0;
}

int kube_lines_feed(struct kube_lines *l, const char *data, size_t n,
                    kube_line_fn on_line, void *arg)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t part = nl ? (size_t)(nl - data) : n;
        if (append(l, data, part) != 0) {
            kube_lines_reset(l);
            return -1;
        }
        if (!nl)
            return 0;
        /* reserve() always leaves room for the NUL, even for len 0. */
        if (reserve(l, l->len) != 0) {
            kube_lines_reset(l);
            return -1;
        }
        l->buf[l->len] = '\0';
        size_t len = l->len;
        l->len = 0;
        int rc = on_line(arg, l->buf, len);
        if (l->cap > LINES_KEEP_CAP) {
            free(l->buf);
            l->buf = NULL;
            l->cap = 0;
        }
        if (rc != 0)
            return rc;  /* the rest of this chunk is dropped: caller stops */
        data = nl + 1;
        n -= part + 1;
    }
    return 0;
}

void kube_lines_reset(struct kube_lines *l)
{
    l->len = 0;
}

void kube_lines_free(struct kube_lines *l)
{
    free(l->buf);
    kube_lines_init(l, l->max);
}
