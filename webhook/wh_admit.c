/*
 * wh_admit.c — one admission request from bytes to bytes.  See wh.h.
 *
 * Protocol facts this follows (admission.k8s.io/v1):
 *   - always HTTP 200 with an AdmissionReview echoing apiVersion, kind and
 *     request.uid, allowed or not; only a body that cannot be a review gets
 *     a 4xx;
 *   - a denial carries status.code >= 400 and a message; the API server
 *     prefixes it with `admission webhook "<name>" denied the request:`;
 *   - a patch is a base64 string of an RFC 6902 array with
 *     patchType "JSONPatch", omitted entirely when nothing changes;
 *   - warnings are short strings the API server hands to kubectl.
 */
#include "wh.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_arena.h"
#include "wh_mutate.h"
#include "wh_patch.h"

/* Longest denial message: every error of a full report, joined. */
#define WH_MESSAGE_MAX (ISVC_ERRORS_MAX * (ISVC_ERROR_LEN + 2) + 64)

struct answer {
    bool allowed;
    int code;                  /* status.code when denied */
    char message[WH_MESSAGE_MAX];
    struct isvc_report report;
    struct wh_patch patch;
};

static int set_text(struct wh_result *out, int status, const char *reason)
{
    size_t len = strlen(reason);
    out->http_status = status;
    out->content_type = "text/plain; charset=utf-8";
    out->body = malloc(len + 2);
    if (out->body == NULL)
        return -1;
    memcpy(out->body, reason, len);
    out->body[len] = '\n';
    out->body[len + 1] = '\0';
    out->body_len = len + 1;
    return 0;
}

static void deny_request(struct answer *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void deny_request(struct answer *a, int code, const char *fmt, ...)
{
    va_list ap;
    a->allowed = false;
    a->code = code;
    va_start(ap, fmt);
    vsnprintf(a->message, sizeof(a->message), fmt, ap);
    va_end(ap);
}

static const char *str_or(const char *s, const char *fallback)
{
    return s ? s : fallback;
}

static bool serves(const struct wh_review *r)
{
    return r->group && strcmp(r->group, ISVC_GROUP) == 0 && r->resource &&
           strcmp(r->resource, ISVC_PLURAL) == 0 &&
           (r->sub_resource[0] == '\0' || strcmp(r->sub_resource, "scale") == 0);
}

static const char *meta_string(const cJSON *obj, const char *key)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_IsObject(meta)
                         ? cJSON_GetObjectItemCaseSensitive(meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool being_deleted(const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    return cJSON_IsObject(meta) &&
           cJSON_GetObjectItemCaseSensitive(meta, "deletionTimestamp") != NULL;
}

/* The replica count of a Scale object, or an error in the report. */
static bool scale_replicas(const cJSON *scale, long long *out,
                           struct isvc_report *rep)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(scale, "spec");
    const cJSON *r = cJSON_IsObject(spec)
                         ? cJSON_GetObjectItemCaseSensitive(spec, "replicas") : NULL;
    if (r == NULL || cJSON_IsNull(r)) {
        *out = 0;   /* autoscaling/v1 Scale: omitted means 0 */
        return true;
    }
    if (isvc_json_integer(r, out))
        return true;
    /* Decode the Scale's spec as if it were ours to reuse the message. */
    struct isvc_spec ignored;
    cJSON *tmp = cJSON_CreateObject();
    if (tmp && cJSON_AddItemReferenceToObject(tmp, "replicas", (cJSON *)r))
        isvc_spec_decode(tmp, &ignored, rep);
    cJSON_Delete(tmp);
    return false;
}

static void validate_scale(const struct isvc_rules *rules,
                           const struct wh_review *r, struct isvc_report *rep)
{
    long long value, old;
    if (!scale_replicas(r->object, &value, rep))
        return;
    if (r->operation == WH_OP_UPDATE && r->old_object &&
        scale_replicas(r->old_object, &old, rep) && old == value)
        return;   /* unchanged: ratchet, as for the object itself */
    isvc_replicas_validate(rules, value, rep);
}

static void validate_object(const struct isvc_rules *rules,
                            const struct wh_review *r, struct isvc_report *rep)
{
    struct isvc_spec spec, old_spec;
    const struct isvc_spec *old = NULL;

    /* The name is immutable: only a CREATE can choose a bad one. */
    if (r->operation == WH_OP_CREATE)
        isvc_name_validate(meta_string(r->object, "name"),
                           meta_string(r->object, "generateName"), rep);
    isvc_spec_decode(cJSON_GetObjectItemCaseSensitive(r->object, "spec"),
                     &spec, rep);
    if (r->operation == WH_OP_UPDATE && r->old_object) {
        /* The stored object's own errors are not this request's fault. */
        struct isvc_report scratch;
        isvc_report_init(&scratch);
        isvc_spec_decode(cJSON_GetObjectItemCaseSensitive(r->old_object, "spec"),
                         &old_spec, &scratch);
        old = &old_spec;
    }
    isvc_spec_validate(rules, &spec, old, rep);
}

static void decide(enum wh_kind kind, const struct isvc_rules *rules,
                   const struct wh_review *r, struct answer *a)
{
    a->allowed = true;
    if (r->api_version == NULL || strcmp(r->api_version, WH_REVIEW_API_VERSION) != 0) {
        deny_request(a, 400, "unsupported AdmissionReview apiVersion \"%.40s\": "
                     "this webhook speaks %s; register it with "
                     "admissionReviewVersions: [\"v1\"]",
                     str_or(r->api_version, ""), WH_REVIEW_API_VERSION);
        return;
    }
    if (!serves(r)) {
        deny_request(a, 400, "this webhook serves %s %s (and %s/scale), not "
                     "\"%.60s\" \"%.60s%s%.20s\"; check the webhook "
                     "configuration's rules", ISVC_GROUP, ISVC_PLURAL,
                     ISVC_PLURAL, str_or(r->group, ""), str_or(r->resource, ""),
                     r->sub_resource[0] ? "/" : "", r->sub_resource);
        return;
    }
    if (r->operation == WH_OP_DELETE || r->operation == WH_OP_CONNECT)
        return;
    if (r->operation == WH_OP_UNKNOWN) {
        deny_request(a, 400, "unknown admission operation; expected CREATE, "
                     "UPDATE, DELETE or CONNECT");
        return;
    }
    if (r->object == NULL) {
        deny_request(a, 400, "%s request has no object",
                     wh_operation_name(r->operation));
        return;
    }
    bool is_scale = strcmp(r->sub_resource, "scale") == 0;
    if (!is_scale && being_deleted(r->object))
        return;

    if (kind == WH_MUTATE) {
        if (!is_scale && wh_mutate_isvc(rules, r->object, &a->patch) != 0)
            deny_request(a, 500, "out of memory building the patch");
        return;
    }
    if (is_scale)
        validate_scale(rules, r, &a->report);
    else
        validate_object(rules, r, &a->report);
    if (a->report.error_count > 0) {
        a->allowed = false;
        a->code = 403;
        isvc_report_join(&a->report, a->message, sizeof(a->message));
    }
}

/* Write the AdmissionReview answer.  The layout is the one cJSON printed
 * before (members in this order, no blanks); only the building changed. */
static int write_review(const struct wh_review *r, struct answer *a,
                        struct wh_json *j, bool *patched)
{
    wh_json_lit(j, "{\"apiVersion\":");
    wh_json_string(j, str_or(r->api_version, WH_REVIEW_API_VERSION));
    wh_json_lit(j, ",\"kind\":\"" WH_REVIEW_KIND "\",\"response\":{\"uid\":");
    wh_json_string(j, r->uid);
    wh_json_lit(j, a->allowed ? ",\"allowed\":true" : ",\"allowed\":false");
    if (!a->allowed) {
        wh_json_lit(j, ",\"status\":{\"status\":\"Failure\",\"code\":");
        wh_json_int(j, a->code);
        wh_json_lit(j, a->code == 403 ? ",\"reason\":\"Forbidden\""
                                      : ",\"reason\":\"BadRequest\"");
        wh_json_lit(j, ",\"message\":");
        wh_json_string(j, a->message);
        wh_json_lit(j, "}");
    }
    if (a->report.warning_count > 0) {
        for (size_t i = 0; i < a->report.warning_count; i++) {
            wh_json_lit(j, i == 0 ? ",\"warnings\":[" : ",");
            wh_json_string(j, a->report.warnings[i]);
        }
        wh_json_lit(j, "]");
    }
    *patched = false;
    if (a->allowed && wh_patch_count(&a->patch) > 0) {
        wh_json_lit(j, ",\"patch\":\"");
        if (wh_patch_write_base64(&a->patch, j) != 0)
            return -1;
        wh_json_lit(j, "\",\"patchType\":\"JSONPatch\"");
        *patched = true;
    }
    return wh_json_lit(j, "}}");
}

static int admit(enum wh_kind kind, const struct isvc_rules *rules,
                 const char *body, size_t len, struct wh_result *out)
{
    struct wh_review review;
    char err[256];

    memset(out, 0, sizeof(*out));
    if (wh_review_decode(body, len, &review, err, sizeof(err)) != 0)
        return set_text(out, 400, err);

    /* Not calloc: the answer is ~11 KiB of message and report buffers that
     * are written before they are read; zeroing them cost more than the
     * rest of an allowed review's answer. */
    struct answer *a = malloc(sizeof(*a));
    if (a == NULL) {
        wh_review_free(&review);
        return -1;
    }
    a->allowed = true;
    a->code = 0;
    a->message[0] = '\0';
    a->patch = (struct wh_patch){ 0 };
    isvc_report_init(&a->report);
    decide(kind, rules, &review, a);

    int rc = -1;
    struct wh_json json = { 0 };
    if (write_review(&review, a, &json, &out->patched) == 0)
        out->body = wh_json_take(&json, &out->body_len);
    wh_json_free(&json);
    if (out->body != NULL) {
        out->http_status = 200;
        out->content_type = "application/json";
        out->allowed = a->allowed;
        out->operation = review.operation;
        for (size_t i = 0; i < a->report.error_count; i++)
            out->denials[a->report.errors[i].reason]++;
        out->denied_request = !a->allowed && a->report.error_count == 0;
        rc = 0;
    }
    wh_patch_free(&a->patch);
    free(a);
    wh_review_free(&review);
    return rc;
}

int wh_admit(enum wh_kind kind, const struct isvc_rules *rules,
             const char *body, size_t len, struct wh_result *out)
{
    /* The review's tree lives and dies inside admit(): its nodes can come
     * from this stack buffer (wh_arena.h).  Not zeroed: cJSON clears each
     * node it takes. */
    unsigned char arena_buf[WH_ARENA_SIZE];
    struct wh_arena arena;
    wh_arena_begin(&arena, arena_buf, sizeof(arena_buf));
    int rc = admit(kind, rules, body, len, out);
    wh_arena_end();
    return rc;
}

void wh_result_free(struct wh_result *r)
{
    /* wh_json_take and set_text both allocate with malloc. */
    free(r->body);
    r->body = NULL;
}
