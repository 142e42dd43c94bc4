/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"

#include "base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tu_base64_decode(const char *in, size_t *out_len)
{
    unsigned char *out;
    size_t n;
    if (b64_decode(in, strlen(in), B64_NO_LIMIT, 0, &out, &n, NULL) != 0)
        return NULL;
    if (out_len)
        *out_len = n;
    return (char *)out;
}

/* Unescape one pointer token in place. */
static void unescape(char *t)
{
    char *w = t;
    for (char *r = t; *r; r++) {
        if (r[0] == '~' && r[1] == '1') {
            *w++ = '/';
            r++;
        } else if (r[0] == '~' && r[1] == '0') {
            *w++ = '~';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static int apply_one(cJSON *doc, const char *op, const char *path,
                     const cJSON *value)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", path);
    if (buf[0] != '/')
        return -1;
    cJSON *parent = doc;
    char *tok = buf + 1;
    for (;;) {
        char *slash = strchr(tok, '/');
        if (slash)
            *slash = '\0';
        unescape(tok);
        if (!slash) {
            if (!cJSON_IsObject(parent))
                return -1;
            cJSON *existing = cJSON_GetObjectItemCaseSensitive(parent, tok);
            if (strcmp(op, "remove") == 0) {
                if (!existing)
                    return -1;
                cJSON_DeleteItemFromObjectCaseSensitive(parent, tok);
                return 0;
            }
            if (strcmp(op, "replace") == 0 && !existing)
                return -1;
            cJSON *copy = cJSON_Duplicate(value, 1);
            if (existing)
                cJSON_ReplaceItemInObjectCaseSensitive(parent, tok, copy);
            else
                cJSON_AddItemToObject(parent, tok, copy);
            return 0;
        }
        parent = cJSON_GetObjectItemCaseSensitive(parent, tok);
        if (!parent)
            return -1;
        tok = slash + 1;
    }
}

int tu_patch_apply(cJSON *doc, const cJSON *ops)
{
    const cJSON *op;
    cJSON_ArrayForEach(op, ops) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(op, "op");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(op, "path");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(op, "value");
        if (!cJSON_IsString(o) || !cJSON_IsString(p))
            return -1;
        if (apply_one(doc, o->valuestring, p->valuestring, v) != 0)
            return -1;
    }
    return 0;
}

char *tu_review(const char *operation, const char *object_json,
                const char *old_object_json)
{
    size_t cap = strlen(object_json ? object_json : "null") +
                 strlen(old_object_json ? old_object_json : "null") + 1024;
    char *out = malloc(cap);
    snprintf(out, cap,
             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
             "\"request\":{\"uid\":\"705ab4f5-6393-11e8-b7cc-42010a800002\","
             "\"kind\":{\"group\":\"ai.example.com\",\"version\":\"v1\","
             "\"kind\":\"InferenceService\"},"
             "\"resource\":{\"group\":\"ai.example.com\",\"version\":\"v1\","
             "\"resource\":\"inferenceservices\"},"
             "\"name\":\"llama\",\"namespace\":\"default\",\"operation\":\"%s\","
             "\"userInfo\":{\"username\":\"admin\"},"
             "\"object\":%s,\"oldObject\":%s,\"dryRun\":false}}",
             operation, object_json ? object_json : "null",
             old_object_json ? old_object_json : "null");
    return out;
}

char *tu_scale_review(const char *operation, long long replicas,
                      long long old_replicas)
{
    char *out = malloc(2048);
    snprintf(out, 2048,
             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
             "\"request\":{\"uid\":\"u-scale\","
             "\"kind\":{\"group\":\"autoscaling\",\"version\":\"v1\",\"kind\":\"Scale\"},"
             "\"resource\":{\"group\":\"ai.example.com\",\"version\":\"v1\","
             "\"resource\":\"inferenceservices\"},\"subResource\":\"scale\","
             "\"name\":\"llama\",\"namespace\":\"default\",\"operation\":\"%s\","
             "\"object\":{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"Scale\","
             "\"metadata\":{\"name\":\"llama\"},\"spec\":{\"replicas\":%lld}},"
             "\"oldObject\":{\"apiVersion\":\"autoscaling/v1\",\"kind\":\"Scale\","
             "\"metadata\":{\"name\":\"llama\"},\"spec\":{\"replicas\":%lld}}}}",
             operation, replicas, old_replicas);
    return out;
}
