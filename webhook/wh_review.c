/*
 * wh_review.c — AdmissionReview decoding.  See wh_review.h.
 */
#include "wh_review.h"

#include <stdio.h>
#include <string.h>

static const char *string_field(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *object_field(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsObject(v) ? v : NULL;
}

static enum wh_operation parse_operation(const char *s)
{
    if (s == NULL)
        return WH_OP_UNKNOWN;
    if (strcmp(s, "CREATE") == 0)
        return WH_OP_CREATE;
    if (strcmp(s, "UPDATE") == 0)
        return WH_OP_UPDATE;
    if (strcmp(s, "DELETE") == 0)
        return WH_OP_DELETE;
    if (strcmp(s, "CONNECT") == 0)
        return WH_OP_CONNECT;
    return WH_OP_UNKNOWN;
}

const char *wh_operation_name(enum wh_operation op)
{
    switch (op) {
    case WH_OP_CREATE: return "CREATE";
    case WH_OP_UPDATE: return "UPDATE";
    case WH_OP_DELETE: return "DELETE";
    case WH_OP_CONNECT: return "CONNECT";
    case WH_OP_UNKNOWN: break;
    }
    return "UNKNOWN";
}

int wh_review_decode(const char *body, size_t len, struct wh_review *review,
                     char *err, size_t errlen)
{
    memset(review, 0, sizeof(*review));
    if (len == 0) {
        snprintf(err, errlen, "empty body: expected an AdmissionReview");
        return -1;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    /* Anything but whitespace after the value means the body is not one
     * JSON document (cJSON would silently ignore it). */
    if (root != NULL) {
        for (const char *p = end; p < body + len; p++) {
            if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
                cJSON_Delete(root);
                root = NULL;
                break;
            }
        }
    }
    if (root == NULL) {
        snprintf(err, errlen, "body is not valid JSON (or nests deeper than %d)",
                 CJSON_NESTING_LIMIT);
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "body is not a JSON object: expected an "
                              "AdmissionReview");
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *request = object_field(root, "request");
    if (request == NULL) {
        snprintf(err, errlen, "AdmissionReview has no \"request\" object");
        cJSON_Delete(root);
        return -1;
    }
    const char *uid = string_field(request, "uid");
    if (uid == NULL || *uid == '\0') {
        snprintf(err, errlen, "AdmissionReview request has no \"uid\" string");
        cJSON_Delete(root);
        return -1;
    }
    if (strlen(uid) > WH_UID_MAX) {
        snprintf(err, errlen, "AdmissionReview request uid is longer than %d "
                              "characters", WH_UID_MAX);
        cJSON_Delete(root);
        return -1;
    }
    review->root = root;
    review->uid = uid;
    review->api_version = string_field(root, "apiVersion");
    review->operation = parse_operation(string_field(request, "operation"));

    const cJSON *resource = object_field(request, "resource");
    review->group = resource ? string_field(resource, "group") : NULL;
    review->resource = resource ? string_field(resource, "resource") : NULL;
    const char *sub = string_field(request, "subResource");
    review->sub_resource = sub ? sub : "";
    review->dry_run = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(request,
                                                                    "dryRun"));
    review->object = object_field(request, "object");
    review->old_object = object_field(request, "oldObject");
    return 0;
}

void wh_review_free(struct wh_review *review)
{
    cJSON_Delete(review->root);
    review->root = NULL;
}
