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

static cJSON *build_review(const struct wh_review *r, const struct answer *a,
                           bool *patched)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL ||
        !cJSON_AddStringToObject(root, "apiVersion",
                                 str_or(r->api_version, WH_REVIEW_API_VERSION)) ||
        !cJSON_AddStringToObject(root, "kind", WH_REVIEW_KIND))
        goto fail;
    cJSON *resp = cJSON_AddObjectToObject(root, "response");
    if (resp == NULL ||
        !cJSON_AddStringToObject(resp, "uid", r->uid) ||
        !cJSON_AddBoolToObject(resp, "allowed", a->allowed))
        goto fail;
    if (!a->allowed) {
        cJSON *status = cJSON_AddObjectToObject(resp, "status");
        if (status == NULL ||
            !cJSON_AddStringToObject(status, "status", "Failure") ||
            !cJSON_AddNumberToObject(status, "code", a->code) ||
            !cJSON_AddStringToObject(status, "reason",
                                     a->code == 403 ? "Forbidden" : "BadRequest") ||
            !cJSON_AddStringToObject(status, "message", a->message))
            goto fail;
    }
    if (a->report.warning_count > 0) {
        cJSON *w = cJSON_AddArrayToObject(resp, "warnings");
        if (w == NULL)
            goto fail;
        for (size_t i = 0; i < a->report.warning_count; i++) {
            cJSON *s = cJSON_CreateString(a->report.warnings[i]);
            if (s == NULL)
                goto fail;
            cJSON_AddItemToArray(w, s);
        }
    }
    *patched = false;
    if (a->allowed && wh_patch_count(&a->patch) > 0) {
        char *b64 = wh_patch_base64(&a->patch);
        if (b64 == NULL)
            goto fail;
        cJSON *p = cJSON_AddStringToObject(resp, "patch", b64);
        free(b64);
        if (p == NULL || !cJSON_AddStringToObject(resp, "patchType", "JSONPatch"))
            goto fail;
        *patched = true;
    }
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}

int wh_admit(enum wh_kind kind, const struct isvc_rules *rules,
             const char *body, size_t len, struct wh_result *out)
{
    struct wh_review review;
    char err[256];

    memset(out, 0, sizeof(*out));
    if (wh_review_decode(body, len, &review, err, sizeof(err)) != 0)
        return set_text(out, 400, err);

    struct answer *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        wh_review_free(&review);
        return -1;
    }
    isvc_report_init(&a->report);
    decide(kind, rules, &review, a);

    int rc = -1;
    cJSON *json = build_review(&review, a, &out->patched);
    if (json != NULL) {
        out->body = cJSON_PrintUnformatted(json);
        cJSON_Delete(json);
    }
    if (out->body != NULL) {
        out->body_len = strlen(out->body);
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

void wh_result_free(struct wh_result *r)
{
    /* cJSON_PrintUnformatted and set_text both allocate with malloc. */
    free(r->body);
    r->body = NULL;
}
