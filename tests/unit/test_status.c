/*
 * test_status.c — status derivation and condition transitions, time
 * parsing, and the lean cache decoders.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_pool.h"
#include "rc_cache.h"
#include "rc_desired.h"
#include "rc_status.h"

#define NOW 1790000000

static struct rc_dep_state ready_dep(long long n)
{
    struct rc_dep_state d = { .exists = true, .generation = 2, .observed_generation = 2,
                              .spec_replicas = n, .replicas = n, .ready = n,
                              .available = n, .updated = n };
    d.available_cond.status = 'T';
    d.progressing_cond.status = 'T';
    snprintf(d.progressing_cond.reason, sizeof(d.progressing_cond.reason),
             "NewReplicaSetAvailable");
    return d;
}

static struct rc_status_input input(const struct rc_dep_state *d, long long want)
{
    struct rc_status_input in = {
        .generation = 5, .desired_replicas = want, .spec_valid = true,
        .endpoint = "http://x.ns.svc:8000", .selector = "app=x", .dep = d,
        .now = NOW,
    };
    return in;
}

static const cJSON *cond(const cJSON *st, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(st, "conditions"))
        if (strcmp(cJSON_GetObjectItem(c, "type")->valuestring, type) == 0)
            return c;
    cr_assert_fail("no %s condition", type);
    return NULL;
}

static const char *field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert(cJSON_IsString(v), "%s", k);
    return v->valuestring;
}

Test(status, ready_when_all_replicas_updated_and_ready)
{
    struct rc_dep_state d = ready_dep(2);
    struct rc_status_input in = input(&d, 2);
    cJSON *st = rc_status_build(&in);
    cr_expect_str_eq(field(st, "phase"), "Ready");
    cr_expect_eq(cJSON_GetObjectItem(st, "readyReplicas")->valueint, 2);
    cr_expect_eq(cJSON_GetObjectItem(st, "replicas")->valueint, 2);
    cr_expect_eq(cJSON_GetObjectItem(st, "observedGeneration")->valueint, 5);
    cr_expect_str_eq(field(st, "endpoint"), "http://x.ns.svc:8000");
    cr_expect_str_eq(field(st, "selector"), "app=x");
    cr_expect_str_eq(field(cond(st, "Ready"), "status"), "True");
    cr_expect_str_eq(field(cond(st, "Ready"), "reason"), "AllReplicasReady");
    cr_expect_str_eq(field(cond(st, "Progressing"), "status"), "False");
    cr_expect_str_eq(field(cond(st, "Degraded"), "status"), "False");
    cr_expect_eq(cJSON_GetObjectItem(cond(st, "Ready"), "observedGeneration")->valueint, 5);
    cr_expect_str_eq(field(cond(st, "Ready"), "lastTransitionTime"), "2026-09-21T14:13:20Z");
    cJSON_Delete(st);
}

Test(status, never_ready_while_pods_are_not)
{
    struct rc_dep_state d = ready_dep(3);
    d.ready = 1;   /* two pods crash-looping */
    struct rc_status_input in = input(&d, 3);
    cJSON *st = rc_status_build(&in);
    cr_expect_str_eq(field(st, "phase"), "Progressing");
    cr_expect_str_eq(field(cond(st, "Ready"), "status"), "False");
    cr_expect_str_eq(field(cond(st, "Ready"), "reason"), "ReplicasNotReady");
    cr_expect_str_eq(field(cond(st, "Ready"), "message"), "1/3 replicas ready, 3 updated");
    cr_expect_str_eq(field(cond(st, "Progressing"), "status"), "True");
    cJSON_Delete(st);

    d = ready_dep(3);
    d.observed_generation = 1;   /* the controller has not seen the change */
    in = input(&d, 3);
    st = rc_status_build(&in);
    cr_expect_str_eq(field(cond(st, "Ready"), "reason"), "RolloutPending");
    cJSON_Delete(st);

    d = ready_dep(3);
    in = input(&d, 4);   /* spec says 4, Deployment still at 3 */
    cr_expect_str_eq(rc_status_phase(&in), "Progressing");
}

Test(status, failed_deployment_propagates_reason)
{
    struct rc_dep_state d = ready_dep(2);
    d.ready = 0;
    d.progressing_cond.status = 'F';
    snprintf(d.progressing_cond.reason, sizeof(d.progressing_cond.reason),
             "ProgressDeadlineExceeded");
    snprintf(d.progressing_cond.message, sizeof(d.progressing_cond.message),
             "ReplicaSet \"x-5d\" has timed out progressing.");
    struct rc_status_input in = input(&d, 2);
    cJSON *st = rc_status_build(&in);
    cr_expect_str_eq(field(st, "phase"), "Failed");
    cr_expect_str_eq(field(cond(st, "Ready"), "status"), "False");
    cr_expect_str_eq(field(cond(st, "Ready"), "reason"), "ProgressDeadlineExceeded");
    cr_expect_str_eq(field(cond(st, "Ready"), "message"),
                     "ReplicaSet \"x-5d\" has timed out progressing.");
    cr_expect_str_eq(field(cond(st, "Degraded"), "status"), "True");
    cJSON_Delete(st);

    d = ready_dep(2);
    d.ready = 0;
    d.failure_cond.status = 'T';
    snprintf(d.failure_cond.reason, sizeof(d.failure_cond.reason), "FailedCreate");
    snprintf(d.failure_cond.message, sizeof(d.failure_cond.message), "quota exceeded");
    in = input(&d, 2);
    st = rc_status_build(&in);
    cr_expect_str_eq(field(cond(st, "Ready"), "reason"), "FailedCreate");
    cr_expect_str_eq(field(cond(st, "Degraded"), "message"), "quota exceeded");
    cJSON_Delete(st);
}

Test(status, invalid_spec_and_missing_deployment)
{
    struct rc_status_input in = input(NULL, 1);
    cr_expect_str_eq(rc_status_phase(&in), "Pending");
    in.spec_valid = false;
    in.invalid_message = "spec.gpuType: Unsupported value: \"T4\"";
    cJSON *st = rc_status_build(&in);
    cr_expect_str_eq(field(st, "phase"), "Failed");
    cr_expect_str_eq(field(cond(st, "Degraded"), "reason"), "InvalidSpec");
    cr_expect_str_eq(field(cond(st, "Degraded"), "message"), in.invalid_message);
    cr_expect_str_eq(field(cond(st, "Ready"), "status"), "False");
    cJSON_Delete(st);

    struct rc_dep_state zero = ready_dep(0);
    in = input(&zero, 0);
    cr_expect_str_eq(rc_status_phase(&in), "Ready");
}

Test(status, transition_time_moves_only_on_transitions)
{
    struct rc_dep_state d = ready_dep(1);
    struct rc_status_input in = input(&d, 1);
    in.prev[RC_COND_READY] = (struct rc_cond_prev){ 'T', NOW - 3600 };
    in.prev[RC_COND_PROGRESSING] = (struct rc_cond_prev){ 'T', NOW - 3600 };
    cJSON *st = rc_status_build(&in);
    char earlier[32], now[32];
    rc_time_format(NOW - 3600, earlier, sizeof(earlier));
    rc_time_format(NOW, now, sizeof(now));
    cr_expect_str_eq(field(cond(st, "Ready"), "lastTransitionTime"), earlier,
                     "Ready stayed True: time kept");
    cr_expect_str_eq(field(cond(st, "Progressing"), "lastTransitionTime"), now,
                     "Progressing went True -> False: time moved");
    /* Same input twice gives the same status (and hash): no write. */
    cJSON *again = rc_status_build(&in);
    cr_expect_eq(rc_json_hash(st), rc_json_hash(again));
    cJSON_Delete(again);
    cJSON_Delete(st);
}

Test(status, time_parsing)
{
    cr_expect_eq(rc_time_parse("1970-01-01T00:00:00Z"), 0);
    cr_expect_eq(rc_time_parse("2026-09-21T14:13:20Z"), NOW);
    cr_expect_eq(rc_time_parse("2026-09-21T16:13:20+02:00"), NOW);
    cr_expect_eq(rc_time_parse("2026-09-21T14:13:20.123456Z"), NOW);
    cr_expect_eq(rc_time_parse("2026-13-21T14:13:20Z"), -1);
    cr_expect_eq(rc_time_parse("garbage"), -1);
    cr_expect_eq(rc_time_parse(NULL), -1);
    cr_expect_eq(rc_time_parse("2026-09-21T14:13:20"), -1);
}

/* Every field is exactly its digits: sscanf's %d used to take a sign or a
 * blank, so "-1" hours or a "-001" year parsed into a time that never was
 * (a condition's lastTransitionTime moved before 1970 or by hours). */
Test(status, time_parsing_refuses_signs_blanks_and_out_of_range_offsets)
{
    static const char *const bad[] = {
        "-001-09-21T14:13:20Z",      "2026--9-21T14:13:20Z",
        "2026-09--1T14:13:20Z",      "2026-09-21T-1:13:20Z",
        "2026-09-21T14:-1:20Z",      "2026-09-21T14:13:-1Z",
        "2026-09-21T+1:13:20Z",      "2026-09-21T 1:13:20Z",
        " 2026-09-21T14:13:20Z",     "2026-09-21T14:13:20+-1:00",
        "2026-09-21T14:13:20+01:-1", "2026-09-21T14:13:20+24:00",
        "2026-09-21T14:13:20+01:60", "2026-09-21T14:13:20.Z",
        "2026-09-21T24:13:20Z",      "2026-09-21T14:60:20Z",
        "2026-09-21T14:13:61Z",      "2026-00-21T14:13:20Z",
        "2026-09-00T14:13:20Z",      "2026-09-21 14:13:20Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(rc_time_parse(bad[i]), -1, "%s", bad[i]);
    cr_expect_eq(rc_time_parse("2026-09-21t14:13:20z"), NOW);
    cr_expect_eq(rc_time_parse("2026-09-21T14:13:20-00:00"), NOW);
    cr_expect_eq(rc_time_parse("2026-09-21T23:43:20+09:30"), NOW);
}

Test(cache, isvc_decode_keeps_only_what_reconcile_needs)
{
    cJSON *obj = cJSON_Parse(
        "{\"apiVersion\":\"ai.example.com/v1\",\"kind\":\"InferenceService\","
        "\"metadata\":{\"name\":\"llama\",\"namespace\":\"ns\",\"uid\":\"u-1\","
        "\"resourceVersion\":\"77\",\"generation\":4,"
        "\"managedFields\":[{\"manager\":\"kubectl\",\"fieldsV1\":{\"f:spec\":{}}}],"
        "\"annotations\":{\"big\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}},"
        "\"spec\":{\"model\":\"m\",\"gpuType\":\"H100\",\"replicas\":2},"
        "\"status\":{\"phase\":\"Ready\",\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\",\"lastTransitionTime\":\"2026-09-21T14:13:20Z\"}]}}");
    struct rc_isvc *e = rc_isvc_decode(obj);
    cr_assert_not_null(e);
    cr_expect_str_eq(e->key, "ns/llama");
    cr_expect_str_eq(e->uid, "u-1");
    cr_expect_str_eq(e->rv, "77");
    cr_expect_eq(e->generation, 4);
    cr_expect_str_eq(e->model, "m");
    cr_expect_str_eq(e->gpu_type, "H100");
    cr_expect(e->has_replicas);
    cr_expect_eq(e->replicas, 2);
    cr_expect_not(e->has_max_batch_size);
    cr_expect_eq(e->cond[RC_COND_READY].status, 'T');
    cr_expect_eq(e->cond[RC_COND_READY].since, NOW);
    cr_expect_eq(e->status_hash,
                 rc_json_hash(cJSON_GetObjectItem(obj, "status")));
    size_t size = rc_pool_size(e);
    cr_expect_lt(size, 512, "one InferenceService costs %zu bytes", size);
    rc_pool_free(e);
    cJSON_Delete(obj);
}

Test(cache, huge_model_is_cut_but_its_length_kept)
{
    size_t n = 100000;
    char *json = malloc(n + 200);
    int o = sprintf(json, "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\"},"
                          "\"spec\":{\"model\":\"");
    memset(json + o, 'm', n);
    strcpy(json + o + n, "\"}}");
    cJSON *obj = cJSON_Parse(json);
    struct rc_isvc *e = rc_isvc_decode(obj);
    cr_assert_not_null(e);
    cr_expect_eq(e->model_len, n);
    cr_expect_eq(strlen(e->model), RC_MODEL_KEEP);
    rc_pool_free(e);
    cJSON_Delete(obj);
    free(json);
}

Test(cache, unusable_objects_are_refused)
{
    const char *bad[] = { "{}", "{\"metadata\":{\"name\":\"a\"}}",
                          "{\"metadata\":[]}", "[]", "{\"metadata\":{\"name\":7,"
                          "\"namespace\":\"x\"}}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *o = cJSON_Parse(bad[i]);
        cr_expect_null(rc_isvc_decode(o), "%s", bad[i]);
        cr_expect_null(rc_deploy_decode(o), "%s", bad[i]);
        cr_expect_null(rc_service_decode(o), "%s", bad[i]);
        cJSON_Delete(o);
    }
}

Test(cache, deployment_decode_finds_owner_and_state)
{
    struct rc_settings s;
    rc_settings_init(&s);
    cr_assert_eq(rc_shapes_init(&s), 0);
    cJSON *obj = cJSON_Parse(
        "{\"metadata\":{\"name\":\"llama\",\"namespace\":\"ns\",\"generation\":3,"
        "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Other\",\"name\":\"z\","
        "\"uid\":\"z\"},{\"apiVersion\":\"ai.example.com/v1\",\"kind\":"
        "\"InferenceService\",\"name\":\"llama\",\"uid\":\"u-1\",\"controller\":true}]},"
        "\"spec\":{\"replicas\":2},\"status\":{\"observedGeneration\":3,\"replicas\":2,"
        "\"readyReplicas\":1,\"updatedReplicas\":2,\"availableReplicas\":1,"
        "\"conditions\":[{\"type\":\"Progressing\",\"status\":\"False\",\"reason\":"
        "\"ProgressDeadlineExceeded\",\"message\":\"timed out\"},{\"type\":"
        "\"ReplicaFailure\",\"status\":\"True\",\"reason\":\"FailedCreate\"}]}}");
    struct rc_deploy *d = rc_deploy_decode(obj);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->key, "ns/llama");
    cr_expect_str_eq(d->owner_key, "ns/llama");
    cr_expect_str_eq(d->owner_uid, "u-1");
    struct rc_dep_state st;
    rc_deploy_state(d, &st);
    cr_expect_eq(st.generation, 3);
    cr_expect_eq(st.spec_replicas, 2);
    cr_expect_eq(st.ready, 1);
    cr_expect_eq(st.progressing_cond.status, 'F');
    cr_expect_str_eq(st.progressing_cond.reason, "ProgressDeadlineExceeded");
    cr_expect_str_eq(st.progressing_cond.message, "timed out");
    cr_expect_eq(st.failure_cond.status, 'T');
    cr_expect_str_eq(st.failure_cond.reason, "FailedCreate");
    cr_expect_str_eq(st.failure_cond.message, "");
    cr_expect_eq(st.available_cond.status, 0);
    /* Conditions cost their strings only, not fixed buffers. */
    cr_expect_lt(sizeof(*d), 256u);
    rc_pool_free(d);
    cJSON_Delete(obj);
    rc_shapes_free();
}
