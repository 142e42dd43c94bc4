/*
 * wh_patch.h — building an RFC 6902 JSON Patch and its base64 form.
 *
 * The AdmissionReview response carries the patch as a base64 *string*
 * (kube-rs once sent a byte array and the API server refused it).
 */
#ifndef WH_PATCH_H
#define WH_PATCH_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Most operations one admission can produce: labels + every spec field. */
#define WH_PATCH_OPS_MAX 16
#define WH_POINTER_MAX 512

struct wh_patch {
    cJSON *ops;   /* owned JSON array, NULL until the first op */
};

/* Escape one JSON-pointer token (RFC 6901: '~' -> "~0", '/' -> "~1").
 * Returns 0, or -1 if it does not fit in cap. */
int wh_pointer_escape(const char *token, char *out, size_t cap);

/* Append {"op": op, "path": path, "value": value}.  Takes ownership of
 * value (may be NULL for "remove").  Returns 0 or -1 on allocation
 * failure or when the bound is reached (value is freed either way). */
int wh_patch_add(struct wh_patch *p, const char *op, const char *path,
                 cJSON *value);

size_t wh_patch_count(const struct wh_patch *p);

/* Serialise and base64-encode.  Returns a malloc'd string or NULL. */
char *wh_patch_base64(const struct wh_patch *p);

void wh_patch_free(struct wh_patch *p);

/* Standard base64 with padding.  Returns a malloc'd string or NULL. */
char *wh_base64_encode(const unsigned char *data, size_t len);

#endif
