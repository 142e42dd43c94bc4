/*
 * testutil.h — helpers shared by the unit tests: base64 decoding and a
 * small RFC 6902 applier (add/replace/remove) so tests can check that a
 * patch does what it says and that mutating twice equals mutating once.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Decodes strict standard base64 (b64_decode) into a malloc'd
 * NUL-terminated buffer, or returns NULL if it is not base64. */
char *tu_base64_decode(const char *in, size_t *out_len);

/* Apply a JSON Patch array to doc in place.  Returns 0 or -1. */
int tu_patch_apply(cJSON *doc, const cJSON *ops);

/* Build an AdmissionReview body around an object (JSON text). */
char *tu_review(const char *operation, const char *object_json,
                const char *old_object_json);
char *tu_scale_review(const char *operation, long long replicas,
                      long long old_replicas);

#endif
