/*
 * kube_lines.h — split a byte stream into '\n'-terminated lines,
 * incrementally: bytes already scanned are never scanned again, so a
 * megabyte event arriving in 1-byte chunks costs O(n), not O(n²) (the
 * official C client re-parses its whole buffer on every chunk).
 */
#ifndef KUBE_LINES_H
#define KUBE_LINES_H

#include <stddef.h>

struct kube_lines {
    char *buf;
    size_t len;        /* bytes held (an incomplete line)          */
    size_t cap;
    size_t max;        /* longest line accepted                    */
};

/* on_line gets a line without its '\n' (NUL-terminated at line[len]);
 * returning non-zero stops feeding and is passed back. */
typedef int (*kube_line_fn)(void *arg, char *line, size_t len);

void kube_lines_init(struct kube_lines *l, size_t max);

/* Returns 0, the callback's non-zero value, or -1 when a line exceeds max
 * (the buffer is then reset; the caller should reconnect). */
int kube_lines_feed(struct kube_lines *l, const char *data, size_t n,
                    kube_line_fn on_line, void *arg);

/* Drop any partial line (after a reconnect). */
void kube_lines_reset(struct kube_lines *l);
void kube_lines_free(struct kube_lines *l);

#endif
