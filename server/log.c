/*
 * log.c — structured JSON logging.  See log.h.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = LOG_INFO;
static _Atomic int out_fd = 2;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_set_level_name(const char *name)
{
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            atomic_store(&current_level, i);
            return 0;
        }
    }
    return -1;
}

void log_set_level(enum log_level level)
{
    atomic_store(&current_level, (int)level);
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&current_level, memory_order_relaxed);
}

void log_set_fd(int fd)
{
    atomic_store(&out_fd, fd);
}

struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
    bool full;   /* a value was cut: add no more fields */
};

/* Room kept at the end for the closing "}\n". */
#define LINE_RESERVE 8

static void put_raw(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - LINE_RESERVE - l->len;
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_str(struct line *l, const char *s)
{
    put_raw(l, s, strlen(s));
}

/* A JSON string, escaped, cut with "..." when the line is full. */
static void put_json_string(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put_raw(l, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        char esc[6];
        size_t n = 0;
        switch (*c) {
        case '"': esc[n++] = '\\'; esc[n++] = '"'; break;
        case '\\': esc[n++] = '\\'; esc[n++] = '\\'; break;
        case '\n': esc[n++] = '\\'; esc[n++] = 'n'; break;
        case '\r': esc[n++] = '\\'; esc[n++] = 'r'; break;
        case '\t': esc[n++] = '\\'; esc[n++] = 't'; break;
        default:
            if (*c < 0x20) {
                esc[n++] = '\\'; esc[n++] = 'u'; esc[n++] = '0'; esc[n++] = '0';
                esc[n++] = hex[*c >> 4]; esc[n++] = hex[*c & 15];
            } else {
                esc[n++] = (char)*c;
            }
        }
        /* Keep room for a field's worth of syntax after this value. */
        if (l->len + n + 64 > sizeof(l->buf) - LINE_RESERVE) {
            put_raw(l, "...", 3);
            l->full = true;
            break;
        }
        put_raw(l, esc, n);
    }
    put_raw(l, "\"", 1);
}

static void put_timestamp(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char buf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    put_json_string(l, buf);
}

void log_write(enum log_level level, const char *msg,
               const struct log_field *fields, size_t count)
{
    struct line l = { .len = 0, .full = false };
    int saved_errno = errno;
    char num[48];

    put_str(&l, "{\"ts\":");
    put_timestamp(&l);
    put_str(&l, ",\"level\":\"");
    put_str(&l, level_names[level <= LOG_ERROR ? level : LOG_ERROR]);
    put_str(&l, "\",\"msg\":");
    put_json_string(&l, msg);
    for (size_t i = 0; i < count; i++) {
        const struct log_field *f = &fields[i];
        if (l.full)
            break;
        if (f->key == NULL || f->type == LOG_FIELD_NONE)
            continue;
        put_raw(&l, ",", 1);
        put_json_string(&l, f->key);
        put_raw(&l, ":", 1);
        switch (f->type) {
        case LOG_FIELD_STR:
            put_json_string(&l, f->s);
            break;
        case LOG_FIELD_INT:
            snprintf(num, sizeof(num), "%lld", f->i);
            put_str(&l, num);
            break;
        case LOG_FIELD_DOUBLE:
            snprintf(num, sizeof(num), "%.6g", f->d);
            put_str(&l, num);
            break;
        case LOG_FIELD_BOOL:
            put_str(&l, f->i ? "true" : "false");
            break;
        case LOG_FIELD_NONE:
            break;
        }
    }
    memcpy(l.buf + l.len, "}\n", 2);
    l.len += 2;
    /* One write per line; a short write to a pipe of < PIPE_BUF is atomic,
     * longer lines may be split by the kernel but never interleaved by us. */
    int fd = atomic_load(&out_fd);
    size_t off = 0;
    while (off < l.len) {
        ssize_t n = write(fd, l.buf + off, l.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    errno = saved_errno;
}
