/*
 * wh_patch.h — building an RFC 6902 JSON Patch and its base64 form.
 *
 * The AdmissionReview response carries the patch as a base64 *string*
 * (kube-rs once sent a byte array and the API server refused it).
 *
 * The operations are written as JSON text as they are added (wh_json.h),
 * so the answer needs no tree and no second printing.
 */
#ifndef WH_PATCH_H
#define WH_PATCH_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "wh_json.h"

/* Most operations one admission can produce: labels + every spec field. */
#define WH_PATCH_OPS_MAX 16
#define WH_POINTER_MAX 512

struct wh_patch {
    struct wh_json text;   /* "[op,op,..." without the closing ']' */
    size_t count;
};

/* Escape one JSON-pointer token (RFC 6901: '~' -> "~0", '/' -> "~1").
 * Returns 0, or -1 if it does not fit in cap. */
int wh_pointer_escape(const char *token, char *out, size_t cap);

/* Append {"op": op, "path": path, "value": value}.  Takes ownership of
 * value (may be NULL for "remove").  Returns 0 or -1 on allocation
 * failure or when the bound is reached (value is freed either way). */
int wh_patch_add(struct wh_patch *p, const char *op, const char *path,
                 cJSON *value);

/* The same with the value given directly: an integer, a string (escaped
 * here), or JSON text the caller wrote (value_json[0..len)).  Return 0,
 * or -1 on allocation failure or when the bound is reached. */
int wh_patch_add_int(struct wh_patch *p, const char *op, const char *path,
                     long long value);
int wh_patch_add_string(struct wh_patch *p, const char *op, const char *path,
                        const char *value);
int wh_patch_add_json(struct wh_patch *p, const char *op, const char *path,
                      const char *value_json, size_t len);

size_t wh_patch_count(const struct wh_patch *p);

/* Append the base64 of the serialised patch to out.  Returns 0 or -1. */
int wh_patch_write_base64(struct wh_patch *p, struct wh_json *out);

/* Serialise and base64-encode.  Returns a malloc'd string or NULL. */
char *wh_patch_base64(struct wh_patch *p);

void wh_patch_free(struct wh_patch *p);

#endif
