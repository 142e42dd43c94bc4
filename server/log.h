/*
 * log.h — structured JSON log lines on stderr, one object per line:
 *   {"ts":"2026-11-25T07:34:42.123Z","level":"info","msg":"listening","addr":"0.0.0.0:9443"}
 *
 * Fields are typed so numbers stay numbers for log pipelines.  A line is
 * built in a fixed buffer and written with one write(2), so lines from
 * different threads never interleave.  Request bodies, tokens and keys are
 * never passed here above debug level (see server/http.c).
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Longest line; longer field values are cut with "...". */
#define LOG_LINE_MAX 4096

enum log_field_type { LOG_FIELD_NONE, LOG_FIELD_STR, LOG_FIELD_INT,
                      LOG_FIELD_DOUBLE, LOG_FIELD_BOOL };

struct log_field {
    const char *key;
    enum log_field_type type;
    const char *s;
    long long i;
    double d;
};

#define LF_STR(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_STR, .s = (v) })
#define LF_INT(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_INT, .i = (long long)(v) })
#define LF_DBL(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_DOUBLE, .d = (double)(v) })
#define LF_BOOL(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_BOOL, .i = !!(v) })

/* The leading empty field lets a call carry no fields at all. */
#define LOG_AT(lvl, msg, ...)                                                   \
    do {                                                                        \
        if (log_enabled(lvl)) {                                                 \
            const struct log_field log_f_[] = { { 0 }, __VA_ARGS__ };           \
            log_write((lvl), (msg), log_f_, sizeof(log_f_) / sizeof(log_f_[0])); \
        }                                                                       \
    } while (0)

#define log_debug(msg, ...) LOG_AT(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) LOG_AT(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) LOG_AT(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) LOG_AT(LOG_ERROR, msg, __VA_ARGS__)

/* "debug", "info", "warn" or "error".  Returns 0, or -1 if unknown. */
int log_set_level_name(const char *name);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Where lines go (default 2, stderr); tests point it at a pipe. */
void log_set_fd(int fd);

void log_write(enum log_level level, const char *msg,
               const struct log_field *fields, size_t count);

#endif
