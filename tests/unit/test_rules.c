/*
 * test_rules.c — every validation rule and its exact message.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isvc_fields.h"
#include "isvc_rules.h"

static struct isvc_rules rules;

static void setup(void)
{
    isvc_rules_init(&rules);
}

TestSuite(rules, .init = setup);

/* Decode and validate a spec given as JSON; return the joined message. */
static size_t check(const char *spec_json, const char *old_json,
                    struct isvc_report *rep)
{
    cJSON *spec = cJSON_Parse(spec_json);
    cJSON *old = old_json ? cJSON_Parse(old_json) : NULL;
    struct isvc_spec s, o;
    isvc_report_init(rep);
    isvc_spec_decode(spec, &s, rep);
    if (old) {
        struct isvc_report scratch;
        isvc_report_init(&scratch);
        isvc_spec_decode(old, &o, &scratch);
    }
    isvc_spec_validate(&rules, &s, old ? &o : NULL, rep);
    size_t n = rep->error_count;
    /* The report borrows from the tree only through the spec struct, and
     * messages are copies, so freeing now is safe. */
    cJSON_Delete(spec);
    cJSON_Delete(old);
    return n;
}

static const char *msg(const struct isvc_report *rep, size_t i)
{
    cr_assert_lt(i, rep->error_count);
    return rep->errors[i].message;
}

Test(rules, valid_spec_passes)
{
    struct isvc_report rep;
    cr_expect_eq(check("{\"model\":\"meta-llama/Llama-3.1-8B-Instruct\","
                       "\"replicas\":2,\"gpuType\":\"H100\",\"maxBatchSize\":64}",
                       NULL, &rep), 0);
    cr_expect_eq(rep.warning_count, 0);
}

Test(rules, gpu_type_unsupported_lists_supported_values)
{
    struct isvc_report rep;
    cr_assert_eq(check("{\"model\":\"m\",\"gpuType\":\"T4\"}", NULL, &rep), 1);
    cr_expect_str_eq(msg(&rep, 0), "spec.gpuType: Unsupported value: \"T4\": "
                     "supported values: \"A100\", \"H100\", \"L40S\"");
    cr_expect_eq(rep.errors[0].reason, ISVC_REASON_UNSUPPORTED);
    cr_expect_str_eq(rep.errors[0].field, "spec.gpuType");
}

Test(rules, gpu_type_is_case_insensitive)
{
    struct isvc_report rep;
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"h100\"}", NULL, &rep), 0);
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"l40s\"}", NULL, &rep), 0);
}

Test(rules, replicas_out_of_bounds)
{
    struct isvc_report rep;
    cr_assert_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":100000}",
                       NULL, &rep), 1);
    cr_expect_str_eq(msg(&rep, 0), "spec.replicas: Invalid value: 100000: must "
                     "be between 0 and 64");
    cr_assert_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":-1}",
                       NULL, &rep), 1);
    cr_expect_str_eq(msg(&rep, 0), "spec.replicas: Invalid value: -1: must be "
                     "between 0 and 64");
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":0}",
                       NULL, &rep), 0);
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":64}",
                       NULL, &rep), 0);
}

Test(rules, batch_size_bounds_only_when_present)
{
    struct isvc_report rep;
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\"}", NULL, &rep), 0);
    cr_assert_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"maxBatchSize\":0}",
                       NULL, &rep), 1);
    cr_expect_str_eq(msg(&rep, 0), "spec.maxBatchSize: Invalid value: 0: must "
                     "be between 1 and 4096");
    cr_assert_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"maxBatchSize\":4097}",
                       NULL, &rep), 1);
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"maxBatchSize\":4096}",
                       NULL, &rep), 0);
}

Test(rules, model_required_and_non_empty)
{
    struct isvc_report rep;
    cr_assert_eq(check("{\"gpuType\":\"A100\"}", NULL, &rep), 1);
    cr_expect_str_eq(msg(&rep, 0), "spec.model: Required value");
    cr_expect_eq(rep.errors[0].reason, ISVC_REASON_REQUIRED);
    cr_assert_eq(check("{\"model\":\"\",\"gpuType\":\"A100\"}", NULL, &rep), 1);
    cr_expect_str_eq(msg(&rep, 0), "spec.model: Required value");
}

Test(rules, model_charset_and_leading_dash)
{
    struct isvc_report rep;
    cr_expect_eq(check("{\"model\":\"s3://bucket/llama@v1+q=4\",\"gpuType\":\"A100\"}",
                       NULL, &rep), 0);
    cr_assert_eq(check("{\"model\":\"a b\",\"gpuType\":\"A100\"}", NULL, &rep), 1);
    cr_expect(strstr(msg(&rep, 0), "spec.model: Invalid value: \"a b\": must "
                     "consist of letters, digits and") != NULL, "%s", msg(&rep, 0));
    cr_assert_eq(check("{\"model\":\"--trust-remote-code\",\"gpuType\":\"A100\"}",
                       NULL, &rep), 1);
    cr_expect(strstr(msg(&rep, 0), "may not start with '-'") != NULL);
    cr_assert_eq(check("{\"model\":\"m\\n\",\"gpuType\":\"A100\"}", NULL, &rep), 1);
    cr_expect(strstr(msg(&rep, 0), "\"m\\x0a\"") != NULL, "%s", msg(&rep, 0));
}

Test(rules, model_too_long_message_is_short)
{
    struct isvc_report rep;
    size_t n = 5 * 1024 * 1024;
    char *big = malloc(n + 64);
    strcpy(big, "{\"gpuType\":\"A100\",\"model\":\"");
    size_t o = strlen(big);
    memset(big + o, 'a', n);
    strcpy(big + o + n, "\"}");
    cr_assert_eq(check(big, NULL, &rep), 1);
    cr_expect_str_eq(msg(&rep, 0), "spec.model: Too long: may not be more than "
                     "256 characters");
    cr_expect_eq(rep.errors[0].reason, ISVC_REASON_TOO_LONG);
    free(big);
}

Test(rules, all_violations_reported_together)
{
    struct isvc_report rep;
    cr_assert_eq(check("{\"gpuType\":\"T4\",\"replicas\":100000,"
                       "\"maxBatchSize\":99999}", NULL, &rep), 4);
    char joined[4096];
    isvc_report_join(&rep, joined, sizeof(joined));
    cr_expect_str_eq(joined,
                     "spec.model: Required value; "
                     "spec.replicas: Invalid value: 100000: must be between 0 and 64; "
                     "spec.gpuType: Unsupported value: \"T4\": supported values: "
                     "\"A100\", \"H100\", \"L40S\"; "
                     "spec.maxBatchSize: Invalid value: 99999: must be between 1 "
                     "and 4096");
}

Test(rules, wrong_types_are_type_errors)
{
    struct isvc_report rep;
    cr_assert_eq(check("{\"model\":7,\"gpuType\":[\"A100\"],\"replicas\":\"3\","
                       "\"maxBatchSize\":1.5}", NULL, &rep), 6);
    cr_expect_str_eq(msg(&rep, 0), "spec.model: Invalid value: 7: must be of type string");
    cr_expect_str_eq(msg(&rep, 1), "spec.gpuType: Invalid value: [array]: must be "
                     "of type string");
    cr_expect_str_eq(msg(&rep, 2), "spec.replicas: Invalid value: \"3\": must be "
                     "of type integer");
    cr_expect_str_eq(msg(&rep, 3), "spec.maxBatchSize: Invalid value: 1.5: must "
                     "be of type integer");
    /* ...and then model and gpuType are missing. */
    cr_expect_str_eq(msg(&rep, 4), "spec.model: Required value");
    cr_expect_str_eq(msg(&rep, 5), "spec.gpuType: Required value");
}

Test(rules, spec_not_an_object)
{
    struct isvc_report rep;
    check("\"x\"", NULL, &rep);
    cr_expect_str_eq(msg(&rep, 0), "spec: Invalid value: \"x\": must be an object");
}

Test(rules, huge_numbers_are_not_integers)
{
    struct isvc_report rep;
    cr_assert_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":1e300}",
                       NULL, &rep), 1);
    cr_expect_eq(rep.errors[0].reason, ISVC_REASON_TYPE);
}

Test(rules, unknown_fields_warn)
{
    struct isvc_report rep;
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"gpuCount\":2}",
                       NULL, &rep), 0);
    cr_assert_eq(rep.warning_count, 1);
    cr_expect_str_eq(rep.warnings[0], "spec: unknown field \"gpuCount\", ignored");
}

Test(rules, warnings_fit_api_server_limit)
{
    struct isvc_report rep;
    char json[1024];
    char key[400];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    snprintf(json, sizeof(json), "{\"model\":\"m\",\"gpuType\":\"A100\",\"%s\":1}", key);
    check(json, NULL, &rep);
    cr_assert_eq(rep.warning_count, 1);
    cr_expect_leq(strlen(rep.warnings[0]), 120);
}

Test(rules, null_fields_count_as_absent)
{
    struct isvc_report rep;
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":null}",
                       NULL, &rep), 0);
}

Test(rules, update_ratchets_unchanged_invalid_fields)
{
    struct isvc_report rep;
    /* Stored with 100 replicas before --max-replicas was lowered: a label
     * edit keeps the value and must pass, with a warning. */
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":100}",
                       "{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":100}",
                       &rep), 0);
    cr_expect_eq(rep.warning_count, 1);
    /* Changing it to another bad value is denied. */
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":101}",
                       "{\"model\":\"m\",\"gpuType\":\"A100\",\"replicas\":100}",
                       &rep), 1);
    /* A GPU type removed from --gpu-types later stays allowed unchanged. */
    cr_expect_eq(check("{\"model\":\"m\",\"gpuType\":\"T4\"}",
                       "{\"model\":\"m\",\"gpuType\":\"T4\"}", &rep), 0);
    /* Required fields are never ratcheted. */
    cr_expect_eq(check("{\"gpuType\":\"A100\"}", "{\"gpuType\":\"A100\"}", &rep), 1);
}

Test(rules, scale_replicas)
{
    struct isvc_report rep;
    isvc_report_init(&rep);
    cr_expect_eq(isvc_replicas_validate(&rules, 10, &rep), 0);
    cr_expect_eq(isvc_replicas_validate(&rules, 65, &rep), 1);
    cr_expect_str_eq(rep.errors[0].message, "spec.replicas: Invalid value: 65: "
                     "must be between 0 and 64");
}

Test(rules, names_must_be_dns1035_labels)
{
    struct isvc_report rep;
    isvc_report_init(&rep);
    cr_expect_eq(isvc_name_validate("llama-3-8b", NULL, &rep), 0);
    cr_expect_eq(isvc_name_validate("3llama", NULL, &rep), 1);
    cr_expect(strstr(rep.errors[0].message, "metadata.name: Invalid value: "
                     "\"3llama\": a DNS-1035 label") == rep.errors[0].message);
    cr_expect_eq(isvc_name_validate("a.b", NULL, &rep), 1);
    cr_expect_eq(isvc_name_validate("ends-", NULL, &rep), 1);
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    isvc_report_init(&rep);
    cr_expect_eq(isvc_name_validate(longname, NULL, &rep), 1);
    cr_expect(strstr(rep.errors[0].message, "must be no more than 63 characters"));
    longname[63] = '\0';
    cr_expect_eq(isvc_name_validate(longname, NULL, &rep), 0);
    /* generateName: the prefix may end in '-', 5 characters are added. */
    cr_expect_eq(isvc_name_validate("", "llama-", &rep), 0);
    longname[59] = '\0';
    cr_expect_eq(isvc_name_validate(NULL, longname, &rep), 1);
}

Test(rules, report_is_bounded)
{
    struct isvc_report rep;
    isvc_report_init(&rep);
    for (int i = 0; i < ISVC_ERRORS_MAX + 5; i++)
        isvc_replicas_validate(&rules, 1000, &rep);
    cr_expect_eq(rep.error_count, ISVC_ERRORS_MAX);
    cr_expect(rep.errors_truncated);
    char joined[ISVC_ERRORS_MAX * ISVC_ERROR_LEN];
    isvc_report_join(&rep, joined, sizeof(joined));
    cr_expect(strstr(joined, "(more errors not shown)") != NULL);
}

Test(rules, configured_gpu_types_and_bounds)
{
    char err[256];
    cr_assert_eq(isvc_rules_set_gpu_types(&rules, "A100, B200 ,GH200", err,
                                          sizeof(err)), 0, "%s", err);
    cr_expect_eq(rules.gpu_type_count, 3);
    cr_expect_str_eq(rules.gpu_types[1], "B200");
    cr_expect_str_eq(isvc_rules_canonical_gpu(&rules, "gh200"), "GH200");
    cr_expect_null(isvc_rules_canonical_gpu(&rules, "H100"));

    cr_expect_eq(isvc_rules_set_gpu_types(&rules, "", err, sizeof(err)), -1);
    cr_expect_eq(isvc_rules_set_gpu_types(&rules, "A100,,H100", err, sizeof(err)), -1);
    cr_expect(strstr(err, "empty entry") != NULL);
    cr_expect_eq(isvc_rules_set_gpu_types(&rules, "A100,a100", err, sizeof(err)), -1);
    cr_expect(strstr(err, "listed twice") != NULL);
    cr_expect_eq(isvc_rules_set_gpu_types(&rules, "A1\"00", err, sizeof(err)), -1);
    /* A refused list leaves the previous one in force. */
    cr_expect_eq(rules.gpu_type_count, 3);

    rules.min[ISVC_F_REPLICAS] = 10;
    rules.max[ISVC_F_REPLICAS] = 5;
    cr_expect_eq(isvc_rules_check(&rules, err, sizeof(err)), -1);
    cr_expect(strstr(err, "spec.replicas: minimum 10 is greater than maximum 5"));
    rules.min[ISVC_F_REPLICAS] = 2;
    rules.max[ISVC_F_REPLICAS] = 8;
    cr_expect_eq(isvc_rules_check(&rules, err, sizeof(err)), -1,
                 "default 1 is outside [2, 8]");
    rules.default_int[ISVC_F_REPLICAS] = 2;
    cr_expect_eq(isvc_rules_check(&rules, err, sizeof(err)), 0, "%s", err);
}

Test(rules, table_is_coherent)
{
    char err[256];
    struct isvc_rules fresh;
    isvc_rules_init(&fresh);
    cr_expect_eq(isvc_rules_check(&fresh, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(fresh.gpu_type_count, 3);
    for (int i = 0; i < ISVC_F_COUNT; i++) {
        cr_expect_eq(isvc_fields[i].id, i);
        cr_expect_not_null(isvc_fields[i].description);
        cr_expect(strncmp(isvc_fields[i].path, "spec.", 5) == 0);
    }
}
