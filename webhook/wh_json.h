/*
 * wh_json.h — writing JSON text straight into one growable buffer.
 *
 * The admission answer is small and its shape is fixed, so it is written
 * directly instead of being built as a cJSON tree and printed: one buffer,
 * no node per member, no number formatting through printf (issue 2's
 * /mutate throughput goal; see bench/webhook).
 *
 * Errors are sticky: once an append fails (allocation, or the buffer would
 * pass WH_JSON_MAX) every later append is a no-op returning -1 and
 * wh_json_take() returns NULL, so a writer may check each call or only the
 * last one.
 */
#ifndef WH_JSON_H
#define WH_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Largest text the webhook ever writes: a full denial with every error
 * escaped (each byte at most 6 as \u00XX) fits many times over. */
#define WH_JSON_MAX (1024u * 1024)
/* First allocation: an allowed review with a full patch fits in it. */
#define WH_JSON_INITIAL 1024u

struct wh_json {
    char *data;     /* owned; NUL-terminated while !failed */
    size_t len;
    size_t cap;
    bool failed;
};

/* Appends raw bytes (already JSON).  Returns 0 or -1. */
int wh_json_raw(struct wh_json *j, const char *s, size_t n);

/* Appends a NUL-terminated string of raw JSON (a literal, a key). */
int wh_json_lit(struct wh_json *j, const char *s);

/* Appends s as a quoted JSON string: '"', '\\' and control characters
 * escaped the way cJSON prints them; other bytes copied as they are. */
int wh_json_string(struct wh_json *j, const char *s);

/* Appends a decimal integer. */
int wh_json_int(struct wh_json *j, long long v);

/* Appends the standard padded base64 of data[0..n), unquoted. */
int wh_json_base64(struct wh_json *j, const unsigned char *data, size_t n);

/* Hands over the text (caller frees with free()) and its length; NULL if
 * any append failed.  The writer is empty afterwards. */
char *wh_json_take(struct wh_json *j, size_t *len);

void wh_json_free(struct wh_json *j);

#endif
