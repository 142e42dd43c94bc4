/*
 * test_patch_json.c — the direct JSON writer behind the admission answer
 * and the patch (wh_json.c, wh_patch.c), and the parse arena (wh_arena.c):
 * the text must be what cJSON would have printed, bounds must hold, and an
 * answer must not depend on whether the arena is in use.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "wh.h"
#include "wh_arena.h"
#include "wh_json.h"
#include "wh_patch.h"

/* Every byte value 1..255 once, so every escape and every pass-through. */
static void all_bytes(char *out)
{
    for (int i = 1; i < 256; i++)
        out[i - 1] = (char)i;
    out[255] = '\0';
}

Test(json_writer, strings_escape_as_cjson_prints_them)
{
    char bytes[256];
    all_bytes(bytes);
    const char *cases[] = { "", "plain", "quote \" backslash \\ slash /",
                            "tab\tnl\ncr\rbs\bff\f", "\x01\x1f\x7f",
                            "caf\xc3\xa9 \xe2\x9c\x93", bytes };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wh_json j = { 0 };
        cr_assert_eq(wh_json_string(&j, cases[i]), 0);
        size_t len;
        char *ours = wh_json_take(&j, &len);
        cr_assert_not_null(ours);
        cr_expect_eq(len, strlen(ours));
        cJSON *s = cJSON_CreateString(cases[i]);
        char *theirs = cJSON_PrintUnformatted(s);
        cr_expect_str_eq(ours, theirs, "case %zu", i);
        /* And it reads back as the same string. */
        cJSON *back = cJSON_Parse(ours);
        cr_assert(cJSON_IsString(back));
        cr_expect_str_eq(back->valuestring, cases[i]);
        cJSON_Delete(back);
        cJSON_free(theirs);
        cJSON_Delete(s);
        free(ours);
    }
}

Test(json_writer, integers_at_the_edges)
{
    const long long cases[] = { 0, 1, -1, 9, 10, 32, 100000, -100000,
                                LLONG_MAX, LLONG_MIN };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wh_json j = { 0 };
        cr_assert_eq(wh_json_int(&j, cases[i]), 0);
        char want[32];
        snprintf(want, sizeof(want), "%lld", cases[i]);
        cr_expect_str_eq(j.data, want);
        wh_json_free(&j);
    }
}

Test(json_writer, bound_is_sticky)
{
    struct wh_json j = { 0 };
    static char chunk[64 * 1024];
    memset(chunk, 'x', sizeof(chunk));
    size_t appended = 0;
    int rc = 0;
    for (size_t i = 0; i < WH_JSON_MAX / sizeof(chunk) + 2 && rc == 0; i++) {
        rc = wh_json_raw(&j, chunk, sizeof(chunk));
        if (rc == 0)
            appended += sizeof(chunk);
    }
    cr_expect_eq(rc, -1, "the writer must stop at WH_JSON_MAX");
    cr_expect_lt(appended, (size_t)WH_JSON_MAX);
    cr_expect_eq(wh_json_lit(&j, "}"), -1, "a failure is sticky");
    size_t len = 0;
    cr_expect_null(wh_json_take(&j, &len));
    cr_expect_null(j.data, "take released the buffer");
}

Test(json_writer, base64_of_every_length_mod_3)
{
    /* RFC 4648 section 10 vectors, through the in-place writer. */
    const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    const char *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                          "Zm9vYmFy" };
    for (size_t i = 0; i < 7; i++) {
        struct wh_json j = { 0 };
        cr_assert_eq(wh_json_lit(&j, "\""), 0);
        cr_assert_eq(wh_json_base64(&j, (const unsigned char *)in[i],
                                    strlen(in[i])), 0);
        char want[16];
        snprintf(want, sizeof(want), "\"%s", out[i]);
        cr_expect_str_eq(j.data, want);
        wh_json_free(&j);
    }
}

Test(patch_writer, typed_ops_read_back_as_the_array)
{
    struct wh_patch p = { 0 };
    cr_assert_eq(wh_patch_add_int(&p, "add", "/spec/replicas", 3), 0);
    cr_assert_eq(wh_patch_add_string(&p, "replace", "/spec/gpuType",
                                     "say \"hi\""), 0);
    cr_assert_eq(wh_patch_add_json(&p, "add", "/metadata/labels",
                                   "{\"a\":\"b\"}", 9), 0);
    cr_assert_eq(wh_patch_add(&p, "remove", "/spec/x", NULL), 0);
    cr_expect_eq(wh_patch_count(&p), 4);
    char *b64 = wh_patch_base64(&p);
    cr_assert_not_null(b64);
    char *text = tu_base64_decode(b64, NULL);
    cr_expect_str_eq(text,
        "[{\"op\":\"add\",\"path\":\"/spec/replicas\",\"value\":3},"
        "{\"op\":\"replace\",\"path\":\"/spec/gpuType\",\"value\":\"say \\\"hi\\\"\"},"
        "{\"op\":\"add\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"b\"}},"
        "{\"op\":\"remove\",\"path\":\"/spec/x\"}]");
    /* Encoding does not close the patch: later ops still join it. */
    cr_assert_eq(wh_patch_add_int(&p, "add", "/spec/y", -1), 0);
    char *b64b = wh_patch_base64(&p);
    char *text2 = tu_base64_decode(b64b, NULL);
    cJSON *ops = cJSON_Parse(text2);
    cr_assert(cJSON_IsArray(ops));
    cr_expect_eq(cJSON_GetArraySize(ops), 5);
    cJSON_Delete(ops);
    free(text2);
    free(b64b);
    free(text);
    free(b64);
    wh_patch_free(&p);
}

Test(patch_writer, empty_patch_has_no_base64)
{
    struct wh_patch p = { 0 };
    cr_expect_null(wh_patch_base64(&p));
    cr_expect_eq(wh_patch_count(&p), 0);
    wh_patch_free(&p);
}

/* Every answer of a set of bodies, both kinds, as one string. */
static char *answers(const struct isvc_rules *rules, char *const *bodies,
                     size_t n)
{
    struct wh_json all = { 0 };
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            struct wh_result r;
            cr_assert_eq(wh_admit(k ? WH_MUTATE : WH_VALIDATE, rules, bodies[i],
                                  strlen(bodies[i]), &r), 0);
            char head[64];
            snprintf(head, sizeof(head), "\n%d %d %d ", r.http_status, r.allowed,
                     r.patched);
            wh_json_lit(&all, head);
            wh_json_raw(&all, r.body, r.body_len);
            wh_result_free(&r);
        }
    }
    size_t len;
    char *text = wh_json_take(&all, &len);
    cr_assert_not_null(text);
    return text;
}

Test(arena, answers_do_not_depend_on_it)
{
    struct isvc_rules rules;
    isvc_rules_init(&rules);
    /* A tree far past WH_ARENA_SIZE, so part of it lands on malloc. */
    size_t big_cap = 200 * 1000;
    char *labels = malloc(big_cap);
    size_t o = 0;
    o += (size_t)snprintf(labels + o, big_cap - o, "{");
    for (int i = 0; i < 2000; i++)
        o += (size_t)snprintf(labels + o, big_cap - o, "%s\"k%d\":\"v%d\"",
                              i ? "," : "", i, i);
    snprintf(labels + o, big_cap - o, "}");
    char *big_obj = malloc(big_cap + 256);
    snprintf(big_obj, big_cap + 256,
             "{\"metadata\":{\"name\":\"big\",\"labels\":%s},\"spec\":"
             "{\"model\":\"m\",\"gpuType\":\"l40s\"}}", labels);
    char *bodies[] = {
        tu_review("CREATE", "{\"metadata\":{\"name\":\"a\"},\"spec\":"
                  "{\"model\":\"m\",\"gpuType\":\" h100\"}}", NULL),
        tu_review("CREATE", "{\"metadata\":{\"name\":\"Bad\\n\\\"x\"},\"spec\":"
                  "{\"model\":\"-m\\u0001\",\"replicas\":-5,\"gpuType\":\"z\","
                  "\"maxBatchSize\":\"a\"}}", NULL),
        tu_review("UPDATE", big_obj, big_obj),
        tu_review("DELETE", NULL, "{}"),
        tu_scale_review("UPDATE", 7, 3),
    };
    size_t n = sizeof(bodies) / sizeof(bodies[0]);

    char *without = answers(&rules, bodies, n);
    wh_arena_install();
    char *with = answers(&rules, bodies, n);
    cr_expect_str_eq(with, without);

    /* cJSON outside an admission still allocates and frees normally. */
    cJSON *doc = cJSON_Parse(big_obj);
    cr_assert_not_null(doc);
    char *printed = cJSON_PrintUnformatted(doc);
    cr_assert_not_null(printed);
    cJSON_free(printed);
    cJSON_Delete(doc);

    free(with);
    free(without);
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    free(big_obj);
    free(labels);
}
