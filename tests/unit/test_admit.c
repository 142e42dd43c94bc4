/*
 * test_admit.c — the webhook from request bytes to response bytes:
 * protocol echo, denial wording, patches (content, escaping, base64,
 * idempotence), the scale subresource and hostile bodies.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "wh.h"
#include "wh_patch.h"

static struct isvc_rules rules;

static void setup(void)
{
    isvc_rules_init(&rules);
}

TestSuite(admit, .init = setup);

#define GOOD_OBJECT                                                            \
    "{\"apiVersion\":\"ai.example.com/v1\",\"kind\":\"InferenceService\","      \
    "\"metadata\":{\"name\":\"llama\",\"namespace\":\"default\","              \
    "\"labels\":{\"app.kubernetes.io/managed-by\":\"inference-operator\"}},"   \
    "\"spec\":{\"model\":\"meta-llama/Llama-3.1-8B\",\"replicas\":1,"           \
    "\"gpuType\":\"H100\",\"maxBatchSize\":32}}"

/* Run one review; returns the parsed response (caller frees). */
static cJSON *admit(enum wh_kind kind, const char *body, struct wh_result *res)
{
    cr_assert_eq(wh_admit(kind, &rules, body, strlen(body), res), 0);
    if (res->http_status != 200)
        return NULL;
    cr_assert_str_eq(res->content_type, "application/json");
    cJSON *root = cJSON_Parse(res->body);
    cr_assert_not_null(root, "response is not JSON: %s", res->body);
    return root;
}

static const cJSON *response(const cJSON *root)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "response");
    cr_assert(cJSON_IsObject(r));
    return r;
}

static bool allowed(const cJSON *root)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(response(root), "allowed"));
}

static const char *status_message(const cJSON *root)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(response(root), "status");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(st, "message");
    cr_assert(cJSON_IsString(m));
    return m->valuestring;
}

/* Decode the response's patch into a JSON array, or NULL if none. */
static cJSON *patch_of(const cJSON *root)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(response(root), "patch");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(response(root), "patchType");
    if (p == NULL) {
        cr_expect_null(t, "patchType without patch");
        return NULL;
    }
    cr_assert(cJSON_IsString(p), "patch must be a base64 string");
    cr_assert(cJSON_IsString(t));
    cr_expect_str_eq(t->valuestring, "JSONPatch");
    char *json = tu_base64_decode(p->valuestring, NULL);
    cr_assert_not_null(json);
    cJSON *ops = cJSON_Parse(json);
    free(json);
    cr_assert(cJSON_IsArray(ops));
    return ops;
}

Test(admit, valid_create_is_allowed_and_echoes_uid)
{
    struct wh_result res;
    char *body = tu_review("CREATE", GOOD_OBJECT, NULL);
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect(allowed(root));
    cr_expect_str_eq(cJSON_GetObjectItem(root, "apiVersion")->valuestring,
                     "admission.k8s.io/v1");
    cr_expect_str_eq(cJSON_GetObjectItem(root, "kind")->valuestring, "AdmissionReview");
    cr_expect_str_eq(cJSON_GetObjectItem(response(root), "uid")->valuestring,
                     "705ab4f5-6393-11e8-b7cc-42010a800002");
    cr_expect_null(cJSON_GetObjectItem(response(root), "status"));
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, invalid_create_is_denied_with_all_field_errors)
{
    struct wh_result res;
    char *body = tu_review("CREATE",
        "{\"metadata\":{\"name\":\"llama\"},\"spec\":{\"model\":\"m\","
        "\"gpuType\":\"T4\",\"replicas\":100000}}", NULL);
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect_not(allowed(root));
    const cJSON *st = cJSON_GetObjectItem(response(root), "status");
    cr_expect_eq(cJSON_GetObjectItem(st, "code")->valueint, 403);
    cr_expect_str_eq(status_message(root),
                     "spec.replicas: Invalid value: 100000: must be between 0 "
                     "and 64; spec.gpuType: Unsupported value: \"T4\": supported "
                     "values: \"A100\", \"H100\", \"L40S\"");
    cr_expect_eq(res.denials[ISVC_REASON_INVALID], 1);
    cr_expect_eq(res.denials[ISVC_REASON_UNSUPPORTED], 1);
    cr_expect_not(res.allowed);
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, bad_name_is_denied_on_create_only)
{
    struct wh_result res;
    const char *obj = "{\"metadata\":{\"name\":\"Llama_3\"},\"spec\":{\"model\":"
                      "\"m\",\"gpuType\":\"A100\"}}";
    char *body = tu_review("CREATE", obj, NULL);
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect_not(allowed(root));
    cr_expect(strstr(status_message(root), "metadata.name: Invalid value: "
                     "\"Llama_3\"") != NULL);
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, update_breaking_a_rule_is_denied)
{
    struct wh_result res;
    char *body = tu_review("UPDATE",
        "{\"metadata\":{\"name\":\"llama\"},\"spec\":{\"model\":\"m\","
        "\"gpuType\":\"H100\",\"replicas\":65}}", GOOD_OBJECT);
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect_not(allowed(root));
    cr_expect_str_eq(status_message(root), "spec.replicas: Invalid value: 65: "
                     "must be between 0 and 64");
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, delete_and_objects_being_deleted_are_allowed)
{
    struct wh_result res;
    char *body = tu_review("DELETE", NULL, GOOD_OBJECT);
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect(allowed(root));
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);

    body = tu_review("UPDATE",
        "{\"metadata\":{\"name\":\"llama\",\"deletionTimestamp\":"
        "\"2026-01-01T00:00:00Z\"},\"spec\":{\"gpuType\":\"T4\"}}", GOOD_OBJECT);
    root = admit(WH_VALIDATE, body, &res);
    cr_expect(allowed(root));
    cJSON_Delete(root);
    wh_result_free(&res);
    root = admit(WH_MUTATE, body, &res);
    cr_expect(allowed(root));
    cr_expect_null(patch_of(root));
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, mutate_defaults_and_normalises)
{
    struct wh_result res;
    const char *obj = "{\"apiVersion\":\"ai.example.com/v1\",\"kind\":"
                      "\"InferenceService\",\"metadata\":{\"name\":\"llama\"},"
                      "\"spec\":{\"model\":\"m\",\"gpuType\":\" h100\"}}";
    char *body = tu_review("CREATE", obj, NULL);
    cJSON *root = admit(WH_MUTATE, body, &res);
    cr_expect(allowed(root));
    cr_expect(res.patched);
    cJSON *ops = patch_of(root);
    cr_assert_not_null(ops);
    char *ops_text = cJSON_PrintUnformatted(ops);
    cr_expect_str_eq(ops_text,
        "[{\"op\":\"add\",\"path\":\"/metadata/labels\",\"value\":"
        "{\"app.kubernetes.io/managed-by\":\"inference-operator\"}},"
        "{\"op\":\"add\",\"path\":\"/spec/replicas\",\"value\":1},"
        "{\"op\":\"replace\",\"path\":\"/spec/gpuType\",\"value\":\"H100\"},"
        "{\"op\":\"add\",\"path\":\"/spec/maxBatchSize\",\"value\":32}]");
    free(ops_text);

    /* Apply it and mutate again: nothing left to do (idempotent). */
    cJSON *doc = cJSON_Parse(obj);
    cr_assert_eq(tu_patch_apply(doc, ops), 0);
    char *patched = cJSON_PrintUnformatted(doc);
    char *body2 = tu_review("CREATE", patched, NULL);
    struct wh_result res2;
    cJSON *root2 = admit(WH_MUTATE, body2, &res2);
    cr_expect_null(patch_of(root2), "second mutation must not patch");
    cr_expect_not(res2.patched);
    /* And the mutated object passes validation. */
    struct wh_result res3;
    cJSON *root3 = admit(WH_VALIDATE, body2, &res3);
    cr_expect(allowed(root3));

    cJSON_Delete(root3);
    wh_result_free(&res3);
    cJSON_Delete(root2);
    wh_result_free(&res2);
    free(body2);
    cJSON_free(patched);
    cJSON_Delete(doc);
    cJSON_Delete(ops);
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, mutate_label_key_is_pointer_escaped)
{
    struct wh_result res;
    char *body = tu_review("CREATE",
        "{\"metadata\":{\"name\":\"x\",\"labels\":{\"team\":\"a\"}},\"spec\":"
        "{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":1,\"maxBatchSize\":8}}",
        NULL);
    cJSON *root = admit(WH_MUTATE, body, &res);
    cJSON *ops = patch_of(root);
    cr_assert_not_null(ops);
    cr_assert_eq(cJSON_GetArraySize(ops), 1);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ops, 0), "path")->valuestring,
                     "/metadata/labels/app.kubernetes.io~1managed-by");
    cJSON_Delete(ops);
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, mutate_missing_spec_and_metadata)
{
    struct wh_result res;
    char *body = tu_review("CREATE", "{\"kind\":\"InferenceService\"}", NULL);
    cJSON *root = admit(WH_MUTATE, body, &res);
    cJSON *ops = patch_of(root);
    cr_assert_not_null(ops);
    cJSON *doc = cJSON_Parse("{\"kind\":\"InferenceService\"}");
    cr_assert_eq(tu_patch_apply(doc, ops), 0);
    char *text = cJSON_PrintUnformatted(doc);
    cr_expect_str_eq(text, "{\"kind\":\"InferenceService\",\"metadata\":{\"labels\":"
                     "{\"app.kubernetes.io/managed-by\":\"inference-operator\"}},"
                     "\"spec\":{\"replicas\":1,\"maxBatchSize\":32}}");
    cJSON_free(text);
    cJSON_Delete(doc);
    cJSON_Delete(ops);
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, mutate_uses_configured_defaults)
{
    struct wh_result res;
    rules.default_int[ISVC_F_MAX_BATCH_SIZE] = 128;
    char *body = tu_review("CREATE", "{\"metadata\":{\"labels\":{\"app.kubernetes.io/"
                           "managed-by\":\"inference-operator\"}},\"spec\":{\"model\":"
                           "\"m\",\"gpuType\":\"A100\",\"replicas\":3}}", NULL);
    cJSON *root = admit(WH_MUTATE, body, &res);
    cJSON *ops = patch_of(root);
    char *text = cJSON_PrintUnformatted(ops);
    cr_expect_str_eq(text, "[{\"op\":\"add\",\"path\":\"/spec/maxBatchSize\","
                     "\"value\":128}]");
    cJSON_free(text);
    cJSON_Delete(ops);
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, scale_subresource_respects_replica_bounds)
{
    struct wh_result res;
    char *body = tu_scale_review("UPDATE", 65, 1);
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect_not(allowed(root));
    cr_expect_str_eq(status_message(root), "spec.replicas: Invalid value: 65: "
                     "must be between 0 and 64");
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);

    body = tu_scale_review("UPDATE", 5, 1);
    root = admit(WH_VALIDATE, body, &res);
    cr_expect(allowed(root));
    cJSON_Delete(root);
    wh_result_free(&res);
    root = admit(WH_MUTATE, body, &res);
    cr_expect(allowed(root));
    cr_expect_null(patch_of(root), "scale is never patched");
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
}

Test(admit, dry_run_gets_the_same_answer)
{
    struct wh_result a, b;
    char *body = tu_review("CREATE", "{\"spec\":{\"model\":\"m\",\"gpuType\":\"T4\"}}",
                           NULL);
    char *dry = strdup(body);
    char *p = strstr(dry, "\"dryRun\":false");
    memcpy(p, "\"dryRun\":true ", 14);
    cJSON *ra = admit(WH_VALIDATE, body, &a);
    cJSON *rb = admit(WH_VALIDATE, dry, &b);
    cr_expect_str_eq(status_message(ra), status_message(rb));
    cJSON_Delete(ra);
    cJSON_Delete(rb);
    wh_result_free(&a);
    wh_result_free(&b);
    free(body);
    free(dry);
}

Test(admit, v1beta1_is_refused_clearly)
{
    struct wh_result res;
    const char *body = "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":"
                       "\"AdmissionReview\",\"request\":{\"uid\":\"u1\"}}";
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect_not(allowed(root));
    cr_expect_str_eq(cJSON_GetObjectItem(root, "apiVersion")->valuestring,
                     "admission.k8s.io/v1beta1");
    cr_expect(strstr(status_message(root), "speaks admission.k8s.io/v1") != NULL);
    cr_expect(res.denied_request);
    cJSON_Delete(root);
    wh_result_free(&res);
}

Test(admit, other_resources_are_refused)
{
    struct wh_result res;
    const char *body =
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
        "\"request\":{\"uid\":\"u2\",\"operation\":\"CREATE\",\"resource\":"
        "{\"group\":\"apps\",\"version\":\"v1\",\"resource\":\"deployments\"},"
        "\"object\":{}}}";
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect_not(allowed(root));
    cr_expect(strstr(status_message(root), "not \"apps\" \"deployments\"") != NULL,
              "%s", status_message(root));
    cJSON_Delete(root);
    wh_result_free(&res);
}

/* Bodies that cannot be a review at all get a 4xx and a one-line reason. */
static void expect_400(const char *body, size_t len, const char *reason_part)
{
    struct wh_result res;
    cr_assert_eq(wh_admit(WH_VALIDATE, &rules, body, len, &res), 0);
    cr_expect_eq(res.http_status, 400);
    cr_expect(strstr(res.body, reason_part) != NULL, "%s", res.body);
    cr_expect_eq(strchr(res.body, '\n'), res.body + res.body_len - 1, "one line");
    wh_result_free(&res);
}

Test(admit, hostile_bodies)
{
    expect_400("", 0, "empty body");
    expect_400("{\"apiVersion\":", 14, "not valid JSON");
    expect_400("[1,2]", 5, "not a JSON object");
    expect_400("{}", 2, "no \"request\"");
    expect_400("{\"request\":[]}", 14, "no \"request\"");
    expect_400("{\"request\":{}}", 14, "no \"uid\"");
    expect_400("{\"request\":{\"uid\":42}}", 22, "no \"uid\"");
    /* Bytes after the JSON value are not a review either. */
    expect_400("{\"request\":{\"uid\":\"a\"}} trailing", 32, "not valid JSON");
    /* Embedded NUL: length says more than the string. */
    expect_400("{\"request\":{\"uid\":\"a\"}}\0{", 25, "not valid JSON");

    /* Deep nesting: rejected by the parser's limit, no stack overflow. */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    expect_400(deep, depth * 2, "not valid JSON");
    free(deep);

    /* An over-long uid is not echoed. */
    char uid_body[512];
    char uid[300];
    memset(uid, 'u', sizeof(uid) - 1);
    uid[sizeof(uid) - 1] = '\0';
    snprintf(uid_body, sizeof(uid_body), "{\"request\":{\"uid\":\"%s\"}}", uid);
    expect_400(uid_body, strlen(uid_body), "uid is longer than");
}

Test(admit, wrong_types_inside_request_do_not_crash)
{
    const char *bodies[] = {
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"u\","
        "\"operation\":7,\"resource\":\"x\",\"object\":[]}}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"u\","
        "\"operation\":\"CREATE\",\"resource\":{\"group\":\"ai.example.com\","
        "\"resource\":\"inferenceservices\"},\"object\":{\"metadata\":7,"
        "\"spec\":{\"model\":{\"a\":1},\"replicas\":true}}}}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"u\","
        "\"operation\":\"CREATE\",\"resource\":{\"group\":\"ai.example.com\","
        "\"resource\":\"inferenceservices\"},\"subResource\":\"scale\","
        "\"object\":{\"spec\":{\"replicas\":\"many\"}}}}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"u\","
        "\"operation\":\"PATCH\",\"resource\":{\"group\":\"ai.example.com\","
        "\"resource\":\"inferenceservices\"}}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        for (int k = 0; k < 2; k++) {
            struct wh_result res;
            cJSON *root = admit(k ? WH_MUTATE : WH_VALIDATE, bodies[i], &res);
            if (root) {
                cr_expect_not_null(cJSON_GetObjectItem(response(root), "allowed"));
                cJSON_Delete(root);
            }
            wh_result_free(&res);
        }
    }
}

Test(admit, five_megabyte_string_is_denied_briefly)
{
    size_t n = 5 * 1024 * 1024;
    char *model = malloc(n + 1);
    memset(model, 'x', n);
    model[n] = '\0';
    size_t cap = n + 256;
    char *obj = malloc(cap);
    snprintf(obj, cap, "{\"spec\":{\"gpuType\":\"A100\",\"model\":\"%s\"}}", model);
    char *body = tu_review("CREATE", obj, NULL);
    struct wh_result res;
    cJSON *root = admit(WH_VALIDATE, body, &res);
    cr_expect_not(allowed(root));
    cr_expect_lt(res.body_len, 2048, "the echo must not carry the value");
    cJSON_Delete(root);
    wh_result_free(&res);
    free(body);
    free(obj);
    free(model);
}

Test(patch, pointer_escaping)
{
    char out[64];
    cr_assert_eq(wh_pointer_escape("a/b~c", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "a~1b~0c");
    cr_assert_eq(wh_pointer_escape("~/", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "~0~1");
    cr_expect_eq(wh_pointer_escape("abcdef", out, 6), -1, "no room for NUL");
    cr_expect_eq(wh_pointer_escape("abcde", out, 6), 0);
}

Test(patch, bounded_number_of_ops)
{
    struct wh_patch p = { 0 };
    for (int i = 0; i < WH_PATCH_OPS_MAX; i++)
        cr_expect_eq(wh_patch_add(&p, "add", "/x", cJSON_CreateNumber(i)), 0);
    cr_expect_eq(wh_patch_add(&p, "add", "/x", cJSON_CreateNumber(0)), -1);
    cr_expect_eq(wh_patch_count(&p), WH_PATCH_OPS_MAX);
    wh_patch_free(&p);
}
