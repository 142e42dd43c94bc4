/*
 * fuzz_admission.c — one input = one AdmissionReview body, answered by
 * the validating and the mutating webhook exactly as the server does
 * (wh_admit with the built-in rules), end to end: decode, rules, patch
 * builder, response encoding.
 *
 * Beyond "no crash, no leak, no sanitizer report" it checks what a caller
 * relies on:
 *   - the answer is either text (4xx) or a JSON AdmissionReview that
 *     echoes the request's uid, with allowed/patched matching the result;
 *   - validation never patches; a denial always carries a status;
 *   - the mutating webhook's patch is a JSON Patch of add/replace ops that
 *     applies cleanly to the request's object, and mutating the patched
 *     object again yields no patch (wh_mutate.c promises idempotence).
 */
#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base64.h"
#include "fuzz_common.h"
#include "wh.h"
#include "wh_mutate.h"
#include "wh_patch.h"

static struct isvc_rules rules;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    isvc_rules_init(&rules);
    return 0;
}

/* ---- a JSON Patch applier (the oracle) ------------------------------------ */

/* Next RFC 6901 token of *p into tok (unescaped); false at the end. */
static bool next_token(const char **p, char *tok, size_t cap)
{
    if (**p != '/')
        return false;
    (*p)++;
    size_t n = 0;
    while (**p && **p != '/') {
        char c = **p;
        if (c == '~') {
            (*p)++;
            FUZZ_CHECK(**p == '0' || **p == '1', "bad '~' escape in a pointer");
            c = **p == '0' ? '~' : '/';
        }
        FUZZ_CHECK(n + 1 < cap, "pointer token too long");
        tok[n++] = c;
        (*p)++;
    }
    tok[n] = '\0';
    return true;
}

/* Apply one add/replace op the way RFC 6902 does for object members.
 * Everything our mutator emits is such an op; anything else is a bug. */
static void apply_op(cJSON *root, const cJSON *op)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(op, "op");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(op, "path");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
    FUZZ_CHECK(cJSON_IsString(kind) && cJSON_IsString(path) && value,
               "patch op without op/path/value");
    bool add = strcmp(kind->valuestring, "add") == 0;
    FUZZ_CHECK(add || strcmp(kind->valuestring, "replace") == 0,
               "unexpected patch op \"%s\"", kind->valuestring);
    const char *p = path->valuestring;
    FUZZ_CHECK(p[0] == '/', "patch path \"%s\" is not a pointer below the root",
               path->valuestring);
    char tok[WH_POINTER_MAX], next[WH_POINTER_MAX];
    cJSON *parent = root;
    FUZZ_CHECK(next_token(&p, tok, sizeof tok), "empty pointer");
    while (next_token(&p, next, sizeof next)) {
        parent = cJSON_GetObjectItemCaseSensitive(parent, tok);
        FUZZ_CHECK(cJSON_IsObject(parent), "patch path \"%s\": \"%s\" is not "
                   "an existing object", path->valuestring, tok);
        memcpy(tok, next, sizeof tok);
    }
    FUZZ_CHECK(cJSON_IsObject(parent), "patch path \"%s\": parent is not an "
               "object", path->valuestring);
    cJSON *copy = cJSON_Duplicate(value, true);
    FUZZ_CHECK(copy != NULL, "out of memory");
    if (cJSON_GetObjectItemCaseSensitive(parent, tok)) {
        FUZZ_CHECK(cJSON_ReplaceItemInObjectCaseSensitive(parent, tok, copy),
                   "replace failed");
    } else {
        FUZZ_CHECK(add, "patch \"replace\" of a missing member \"%s\"",
                   path->valuestring);
        FUZZ_CHECK(cJSON_AddItemToObject(parent, tok, copy), "add failed");
    }
}

/* The patch in a mutating answer applies to the request's object, and
 * mutating the result again asks for nothing more. */
static void check_patch(const cJSON *request, const cJSON *resp)
{
    const cJSON *patch = cJSON_GetObjectItemCaseSensitive(resp, "patch");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(resp, "patchType");
    FUZZ_CHECK(cJSON_IsString(patch) && cJSON_IsString(type) &&
                   strcmp(type->valuestring, "JSONPatch") == 0,
               "patched answer without patch/patchType");
    /* The strict decoder (tests/unit/test_base64.c checks it on its own):
     * padding the writer got wrong fails here. */
    unsigned char *raw;
    size_t raw_len;
    int brc = b64_decode(patch->valuestring, strlen(patch->valuestring),
                         B64_NO_LIMIT, 0, &raw, &raw_len, NULL);
    FUZZ_CHECK(brc != B64_ERR_NO_MEMORY, "out of memory");
    FUZZ_CHECK(brc == 0, "patch is not valid base64");
    char *json = (char *)raw;
    cJSON *ops = cJSON_Parse(json);
    FUZZ_CHECK(cJSON_IsArray(ops) && cJSON_GetArraySize(ops) > 0 &&
                   cJSON_GetArraySize(ops) <= WH_PATCH_OPS_MAX,
               "patch is not a non-empty JSON array: %s", json);
    free(json);

    const cJSON *object = cJSON_GetObjectItemCaseSensitive(request, "object");
    FUZZ_CHECK(cJSON_IsObject(object), "patch for a request without object");
    cJSON *patched = cJSON_Duplicate(object, true);
    FUZZ_CHECK(patched != NULL, "out of memory");
    const cJSON *op;
    cJSON_ArrayForEach(op, ops)
        apply_op(patched, op);
    cJSON_Delete(ops);

    struct wh_patch again = {0};
    FUZZ_CHECK(wh_mutate_isvc(&rules, patched, &again) == 0, "mutate failed");
    if (wh_patch_count(&again) != 0) {
        char *o = cJSON_PrintUnformatted(patched);
        /* The patch text is "[op,op,..." until it is encoded. */
        FUZZ_CHECK(false, "mutation is not idempotent: after the patch, %s "
                   "still gets %zu op(s): %.*s]", o ? o : "?",
                   wh_patch_count(&again), (int)again.text.len,
                   again.text.data ? again.text.data : "");
    }
    wh_patch_free(&again);
    cJSON_Delete(patched);
}

/* ---- the answer's contract ------------------------------------------------ */

static void check_result(enum wh_kind kind, const uint8_t *data, size_t size,
                         const struct wh_result *r)
{
    FUZZ_CHECK(r->body != NULL, "no body");
    FUZZ_CHECK(strlen(r->body) == r->body_len, "body_len %zu != strlen %zu",
               r->body_len, strlen(r->body));
    if (r->http_status != 200) {
        FUZZ_CHECK(r->http_status >= 400 && r->http_status < 500,
                   "status %d", r->http_status);
        FUZZ_CHECK(r->body_len > 0 && r->body[r->body_len - 1] == '\n',
                   "text answer not one line");
        FUZZ_CHECK(!r->allowed && !r->patched, "4xx answer allowed/patched");
        return;
    }
    FUZZ_CHECK(kind == WH_MUTATE || !r->patched, "validation patched");

    cJSON *req = cJSON_ParseWithLength((const char *)data, size);
    cJSON *ans = cJSON_Parse(r->body);
    FUZZ_CHECK(req != NULL, "answered 200 to a body that is not JSON");
    FUZZ_CHECK(ans != NULL, "answer is not JSON: %s", r->body);
    const cJSON *request = cJSON_GetObjectItemCaseSensitive(req, "request");
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(ans, "response");
    const cJSON *uid_in = cJSON_GetObjectItemCaseSensitive(request, "uid");
    const cJSON *uid_out = cJSON_GetObjectItemCaseSensitive(resp, "uid");
    FUZZ_CHECK(cJSON_IsString(uid_in) && cJSON_IsString(uid_out) &&
                   strcmp(uid_in->valuestring, uid_out->valuestring) == 0,
               "uid not echoed: %s", r->body);
    const cJSON *kind_out = cJSON_GetObjectItemCaseSensitive(ans, "kind");
    FUZZ_CHECK(cJSON_IsString(kind_out) &&
                   strcmp(kind_out->valuestring, "AdmissionReview") == 0,
               "answer kind: %s", r->body);
    const cJSON *allowed = cJSON_GetObjectItemCaseSensitive(resp, "allowed");
    FUZZ_CHECK(cJSON_IsBool(allowed) && cJSON_IsTrue(allowed) == r->allowed,
               "allowed mismatch: %s", r->body);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(resp, "status");
    if (!r->allowed) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(status, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(status, "message");
        FUZZ_CHECK(cJSON_IsNumber(code) && code->valuedouble >= 400 &&
                       cJSON_IsString(msg) && msg->valuestring[0],
                   "denial without code/message: %s", r->body);
        FUZZ_CHECK(!r->patched, "denied and patched");
    }
    unsigned denials = 0;
    for (int i = 0; i < ISVC_REASON_COUNT; i++)
        denials += r->denials[i];
    FUZZ_CHECK(!r->denied_request || denials == 0, "request denial with "
               "field errors");
    FUZZ_CHECK(r->allowed || r->denied_request || denials > 0,
               "denied without a reason counted");
    FUZZ_CHECK(r->patched == (cJSON_GetObjectItemCaseSensitive(resp, "patch")
                              != NULL), "patched flag mismatch");
    if (r->patched)
        check_patch(request, resp);
    cJSON_Delete(ans);
    cJSON_Delete(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum wh_kind kinds[] = {WH_VALIDATE, WH_MUTATE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct wh_result r;
        if (wh_admit(kinds[i], &rules, (const char *)data, size, &r) != 0)
            abort();   /* only out of memory, which ASan would report */
        check_result(kinds[i], data, size, &r);
        wh_result_free(&r);
    }
    return 0;
}
