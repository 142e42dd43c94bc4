/*
 * test_lines.c — kube_lines: the same lines whatever the chunk boundaries,
 * the max bound, stop values, and a 1 MB line fed a byte at a time.
 */
#include <criterion/criterion.h>

#include "kube_lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLLECT_MAX 64
#define LINE_CAP 256

struct collect {
    size_t n;
    char lines[COLLECT_MAX][LINE_CAP];
    size_t lens[COLLECT_MAX];
    int stop_at;        /* return 7 when this many lines are in; -1 never */
};

static int on_line(void *arg, char *line, size_t len)
{
    struct collect *c = arg;
    cr_assert_eq(line[len], '\0', "line not NUL-terminated");
    cr_assert_lt(c->n, COLLECT_MAX);
    cr_assert_lt(len, LINE_CAP);
    memcpy(c->lines[c->n], line, len + 1);
    c->lens[c->n] = len;
    c->n++;
    return (int)c->n == c->stop_at ? 7 : 0;
}

static void collect_init(struct collect *c)
{
    memset(c, 0, sizeof *c);
    c->stop_at = -1;
}

/* Feed text in pieces of the given sizes (cycled), collecting lines. */
static void feed_split(const char *text, const size_t *sizes, size_t nsizes,
                       struct collect *c)
{
    struct kube_lines l;
    kube_lines_init(&l, 1024);
    size_t n = strlen(text), off = 0, i = 0;
    while (off < n) {
        size_t k = sizes[i++ % nsizes];
        if (k > n - off)
            k = n - off;
        cr_assert_eq(kube_lines_feed(&l, text + off, k, on_line, c), 0);
        off += k;
    }
    kube_lines_free(&l);
}

static const char sample[] =
    "{\"type\":\"ADDED\",\"object\":{}}\n"
    "\n"
    "second line\n"
    "x\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}\n"
    "tail without newline";

static const char *const sample_lines[] = {
    "{\"type\":\"ADDED\",\"object\":{}}",
    "",
    "second line",
    "x",
    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}",
};
#define SAMPLE_LINES (sizeof sample_lines / sizeof sample_lines[0])

static void assert_sample(const struct collect *c)
{
    cr_assert_eq(c->n, SAMPLE_LINES, "got %zu lines", c->n);
    for (size_t i = 0; i < SAMPLE_LINES; i++) {
        cr_assert_eq(c->lens[i], strlen(sample_lines[i]), "line %zu length", i);
        cr_assert_str_eq(c->lines[i], sample_lines[i]);
    }
}

Test(lines, whole_text_at_once)
{
    struct collect c;
    collect_init(&c);
    size_t all = sizeof sample - 1;
    feed_split(sample, &all, 1, &c);
    assert_sample(&c);
}

Test(lines, byte_by_byte)
{
    struct collect c;
    collect_init(&c);
    size_t one = 1;
    feed_split(sample, &one, 1, &c);
    assert_sample(&c);
}

/* Two chunks split at every position, then three at every pair. */
Test(lines, every_split_point)
{
    size_t n = sizeof sample - 1;
    for (size_t a = 0; a <= n; a++) {
        struct collect c;
        collect_init(&c);
        size_t sizes[2] = {a ? a : n, n};
        feed_split(sample, sizes, 2, &c);
        assert_sample(&c);
    }
    for (size_t a = 1; a < n; a += 3) {
        for (size_t b = 1; a + b < n; b += 2) {
            struct collect c;
            collect_init(&c);
            size_t sizes[3] = {a, b, n};
            feed_split(sample, sizes, 3, &c);
            assert_sample(&c);
        }
    }
}

Test(lines, odd_chunk_sizes)
{
    static const size_t sizes[] = {3, 1, 7, 2, 13, 1, 1, 5};
    struct collect c;
    collect_init(&c);
    feed_split(sample, sizes, sizeof sizes / sizeof sizes[0], &c);
    assert_sample(&c);
}

Test(lines, empty_lines_and_empty_feed)
{
    struct kube_lines l;
    struct collect c;
    collect_init(&c);
    kube_lines_init(&l, 16);
    cr_assert_eq(kube_lines_feed(&l, "", 0, on_line, &c), 0);
    cr_assert_eq(kube_lines_feed(&l, "\n\n\n", 3, on_line, &c), 0);
    cr_assert_eq(c.n, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(c.lens[i], 0);
    kube_lines_free(&l);
}

/* '\r' is data: kept before the '\n', documented in kube_lines.c. */
Test(lines, crlf_keeps_cr)
{
    struct kube_lines l;
    struct collect c;
    collect_init(&c);
    kube_lines_init(&l, 16);
    cr_assert_eq(kube_lines_feed(&l, "ab\r\ncd\n", 7, on_line, &c), 0);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.lens[0], 3);
    cr_assert_str_eq(c.lines[0], "ab\r");
    cr_assert_str_eq(c.lines[1], "cd");
    kube_lines_free(&l);
}

#define SMALL_MAX 10

Test(lines, line_exactly_max_is_accepted)
{
    struct kube_lines l;
    struct collect c;
    collect_init(&c);
    kube_lines_init(&l, SMALL_MAX);
    /* Byte by byte so the buffer sits at exactly max before the '\n'. */
    const char *text = "0123456789\n";
    for (size_t i = 0; i < strlen(text); i++)
        cr_assert_eq(kube_lines_feed(&l, text + i, 1, on_line, &c), 0);
    cr_assert_eq(kube_lines_feed(&l, "0123456789\n", 11, on_line, &c), 0);
    cr_assert_eq(c.n, 2);
    cr_assert_str_eq(c.lines[0], "0123456789");
    cr_assert_str_eq(c.lines[1], "0123456789");
    kube_lines_free(&l);
}

Test(lines, line_over_max_fails_and_resets)
{
    struct kube_lines l;
    struct collect c;
    collect_init(&c);
    kube_lines_init(&l, SMALL_MAX);
    cr_assert_eq(kube_lines_feed(&l, "01234", 5, on_line, &c), 0);
    cr_assert_eq(kube_lines_feed(&l, "56789", 5, on_line, &c), 0);
    cr_assert_eq(kube_lines_feed(&l, "A", 1, on_line, &c), -1);
    cr_assert_eq(l.len, 0, "buffer reset after overflow");
    /* In one chunk too, even when the '\n' is right after. */
    cr_assert_eq(kube_lines_feed(&l, "0123456789A\n", 12, on_line, &c), -1);
    cr_assert_eq(c.n, 0);
    /* Usable again after the reset (the caller reconnects). */
    cr_assert_eq(kube_lines_feed(&l, "ok\n", 3, on_line, &c), 0);
    cr_assert_eq(c.n, 1);
    cr_assert_str_eq(c.lines[0], "ok");
    kube_lines_free(&l);
}

Test(lines, stop_value_propagates)
{
    struct kube_lines l;
    struct collect c;
    collect_init(&c);
    c.stop_at = 2;
    kube_lines_init(&l, 64);
    cr_assert_eq(kube_lines_feed(&l, "a\nb\nc\n", 6, on_line, &c), 7);
    cr_assert_eq(c.n, 2, "no line after the stop");
    kube_lines_free(&l);
}

Test(lines, reset_drops_partial_line)
{
    struct kube_lines l;
    struct collect c;
    collect_init(&c);
    kube_lines_init(&l, 64);
    cr_assert_eq(kube_lines_feed(&l, "partial", 7, on_line, &c), 0);
    kube_lines_reset(&l);
    cr_assert_eq(kube_lines_feed(&l, "fresh\n", 6, on_line, &c), 0);
    cr_assert_eq(c.n, 1);
    cr_assert_str_eq(c.lines[0], "fresh");
    kube_lines_free(&l);
}

struct big {
    size_t lines;
    size_t len;
    int ok;
};

static int on_big(void *arg, char *line, size_t len)
{
    struct big *b = arg;
    b->lines++;
    b->len = len;
    b->ok = line[0] == '{' && line[len - 1] == '}' && line[len] == '\0';
    for (size_t i = 1; b->ok && i + 1 < len; i++)
        b->ok = line[i] == 'a' + (char)(i % 26);
    return 0;
}

#define BIG_LEN (1024 * 1024)

/* An O(n²) splitter would scan ~5·10¹¹ bytes here; this one takes
 * milliseconds.  Only correctness is asserted; the time is printed. */
Test(lines, megabyte_line_byte_by_byte, .timeout = 60)
{
    char *text = malloc(BIG_LEN + 1);
    cr_assert_not_null(text);
    text[0] = '{';
    for (size_t i = 1; i + 1 < BIG_LEN; i++)
        text[i] = 'a' + (char)(i % 26);
    text[BIG_LEN - 1] = '}';
    text[BIG_LEN] = '\n';

    struct kube_lines l;
    struct big b = {0};
    kube_lines_init(&l, BIG_LEN);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i <= BIG_LEN; i++)
        cr_assert_eq(kube_lines_feed(&l, text + i, 1, on_big, &b), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(b.lines, 1);
    cr_assert_eq(b.len, BIG_LEN);
    cr_assert(b.ok, "line content differs");
    cr_assert_eq(l.len, 0);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_log_info("1 MiB line in 1-byte chunks: %.1f ms", ms);
    kube_lines_free(&l);
    free(text);
}
