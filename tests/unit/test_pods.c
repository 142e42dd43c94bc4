/*
 * test_pods.c — the pod decoder on pods as the API server returns them
 * (tests/unit/fixtures/pods/: created in kube-apiserver v1.37.2, status
 * set through the status subresource as the scheduler and kubelet would,
 * then read back with `kubectl get pod -o json`), the pod cache's
 * grouping, wake-ups and summary, status with pod input, and the bound
 * on status writes that change only messages.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_pool.h"
#include "rc_pods.h"
#include "rc_status.h"
#include "rc_throttle.h"

#define FIXTURES "tests/unit/fixtures/pods/"
#define FIXTURE_MAX (1u << 20)
#define NOW 1790000000

static cJSON *fixture(const char *name)
{
    /* make valgrind runs the tests from a copy in build/valgrind; it
     * says where the sources are. */
    const char *root = getenv("IO_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s%s" FIXTURES "%s.json", root ? root : "",
             root ? "/" : "", name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run the unit tests from the repository root)",
                       path);
    char *buf = malloc(FIXTURE_MAX);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, FIXTURE_MAX - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *obj = cJSON_Parse(buf);
    free(buf);
    cr_assert_not_null(obj, "%s is not JSON", path);
    return obj;
}

static struct rc_pod *decode_fixture(const char *name)
{
    cJSON *obj = fixture(name);
    struct rc_pod *p = rc_pod_decode(obj);
    cJSON_Delete(obj);
    cr_assert_not_null(p, "%s not decoded", name);
    return p;
}

Test(pods, unschedulable_keeps_the_schedulers_message)
{
    struct rc_pod *p = decode_fixture("unsch");
    cr_expect_str_eq(p->key, "fx/llama-5d8f7c6b9-unsch");
    cr_expect_str_eq(p->owner_key, "fx/llama");
    cr_expect_eq(p->problem, RC_POD_UNSCHEDULABLE);
    cr_expect_not(p->ready);
    cr_expect_not(p->terminating);
    cr_assert_not_null(p->message);
    cr_expect(strncmp(p->message, "0/10 nodes are available: 4 Insufficient nvidia.com/gpu, "
                      "6 node(s) didn't match Pod's node affinity/selector.", 99) == 0,
              "message: %s", p->message);
    /* Cut to its bound, never past it. */
    cr_expect_lt(strlen(p->message), RC_POD_MESSAGE_MAX);
    rc_pool_free(p);
}

Test(pods, running_and_ready_has_no_problem_and_no_message)
{
    struct rc_pod *p = decode_fixture("ready");
    cr_expect_eq(p->problem, RC_POD_OK);
    cr_expect(p->ready);
    cr_expect_null(p->message);
    /* The lean block: head + key + owner key, nothing else. */
    size_t block = sizeof(*p) + strlen(p->key) + 1 + strlen(p->owner_key) + 1;
    cr_expect_leq(block, 128, "a pod costs %zu bytes", block);
    rc_pool_free(p);
}

Test(pods, crash_loop_names_pod_container_and_last_exit)
{
    struct rc_pod *p = decode_fixture("crash");
    cr_expect_eq(p->problem, RC_POD_CRASH_LOOP);
    cr_expect_not(p->ready);
    cr_expect_str_eq(p->message,
                     "pod llama-5d8f7c6b9-crash container model-server: back-off 2m40s "
                     "restarting failed container=model-server "
                     "pod=llama-5d8f7c6b9-crash_fx(1f0c); last terminated: Error, "
                     "exit code 1");
    rc_pool_free(p);
}

Test(pods, image_pull_backoff)
{
    struct rc_pod *p = decode_fixture("pull");
    cr_expect_eq(p->problem, RC_POD_IMAGE_PULL_BACKOFF);
    cr_expect_str_eq(rc_pod_problem_reason(p->problem), "ImagePullBackOff");
    cr_expect_str_eq(p->message, "pod llama-5d8f7c6b9-pull container model-server: "
                                 "Back-off pulling image \"vllm/vllm-openai:v0.6.3\"");
    rc_pool_free(p);
}

Test(pods, refuses_what_it_cannot_place)
{
    const char *bad[] = {
        "{}",
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\"}}",
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"labels\":{}}}",
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"labels\":"
        "{\"app.kubernetes.io/instance\":\"\"}}}",
        "{\"metadata\":{\"name\":\"\",\"namespace\":\"n\",\"labels\":"
        "{\"app.kubernetes.io/instance\":\"x\"}}}",
        "{\"metadata\":{\"namespace\":\"n\",\"labels\":{\"app.kubernetes.io/instance\":7}}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *o = cJSON_Parse(bad[i]);
        cr_assert_not_null(o, "%s", bad[i]);
        cr_expect_null(rc_pod_decode(o), "%s", bad[i]);
        cJSON_Delete(o);
    }
}

Test(pods, wrong_types_and_other_failures)
{
    /* Odd shapes in status are ignored, not trusted. */
    cJSON *o = cJSON_Parse(
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"labels\":"
        "{\"app.kubernetes.io/instance\":\"x\"}},\"status\":{\"conditions\":7,"
        "\"containerStatuses\":[1,{\"state\":\"x\"},{\"state\":{\"waiting\":"
        "{\"reason\":5}}}]}}");
    struct rc_pod *p = rc_pod_decode(o);
    cr_assert_not_null(p);
    cr_expect_eq(p->problem, RC_POD_OK);
    cr_expect_not(p->ready);
    rc_pool_free(p);
    cJSON_Delete(o);

    /* An evicted pod; and the worst container wins over a crash. */
    o = cJSON_Parse(
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"labels\":"
        "{\"app.kubernetes.io/instance\":\"x\"}},\"status\":{\"phase\":\"Failed\","
        "\"reason\":\"Evicted\",\"message\":\"The node was low on resource: memory.\"}}");
    p = rc_pod_decode(o);
    cr_expect_eq(p->problem, RC_POD_FAILED);
    cr_expect_str_eq(p->message, "pod p failed: The node was low on resource: memory.");
    rc_pool_free(p);
    cJSON_Delete(o);

    o = cJSON_Parse(
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"deletionTimestamp\":"
        "\"2026-01-01T00:00:00Z\",\"labels\":{\"app.kubernetes.io/instance\":\"x\"}},"
        "\"status\":{\"containerStatuses\":[{\"name\":\"a\",\"state\":{\"waiting\":"
        "{\"reason\":\"CrashLoopBackOff\"}}},{\"name\":\"b\",\"state\":{\"waiting\":"
        "{\"reason\":\"CreateContainerConfigError\",\"message\":\"secret \\\"hf\\\" "
        "not found\"}}}]}}");
    p = rc_pod_decode(o);
    cr_expect_eq(p->problem, RC_POD_CREATE_CONFIG_ERROR);
    cr_expect_str_eq(p->message, "pod p container b: secret \"hf\" not found");
    cr_expect(p->terminating);
    rc_pool_free(p);
    cJSON_Delete(o);
}

/* --- the cache -------------------------------------------------------------- */

#define WOKEN_MAX 16

struct woken {
    char keys[WOKEN_MAX][320];
    int n;
};

static void record(void *arg, const char *key)
{
    struct woken *w = arg;
    if (w->n < WOKEN_MAX)
        snprintf(w->keys[w->n++], sizeof(w->keys[0]), "%s", key);
}

static void feed(struct kube_watch_handlers *h, enum kube_event type, const char *name)
{
    cJSON *o = fixture(name);
    h->on_event(h->arg, type, o);
    cJSON_Delete(o);
}

Test(pods, cache_groups_summarises_and_wakes_only_on_change)
{
    struct woken w = { .n = 0 };
    struct rc_pods pods;
    cr_assert_eq(rc_pods_init(&pods, record, &w), 0);
    struct kube_watch_handlers h = rc_pods_handlers(&pods);

    struct rc_pod_summary s;
    rc_pods_summary(&pods, "fx/llama", &s);
    cr_expect_eq(s.pods, 0);
    cr_expect_eq(s.problem, RC_POD_OK);

    h.on_list_begin(h.arg);
    feed(&h, KUBE_EVENT_ADDED, "ready");
    feed(&h, KUBE_EVENT_ADDED, "unsch");
    feed(&h, KUBE_EVENT_ADDED, "crash");
    h.on_list_end(h.arg);
    cr_expect_eq(w.n, 3);
    cr_expect_str_eq(w.keys[0], "fx/llama");
    cr_expect_eq(rc_pods_count(&pods), 3);

    rc_pods_summary(&pods, "fx/llama", &s);
    cr_expect_eq(s.pods, 3);
    cr_expect_eq(s.ready, 1);
    cr_expect_eq(s.problems, 2);
    /* The crash is reported before the scheduling problem. */
    cr_expect_eq(s.problem, RC_POD_CRASH_LOOP);
    cr_expect(strstr(s.message, "llama-5d8f7c6b9-crash") != NULL, "%s", s.message);

    /* The same pod again (kubelet touching something status ignores):
     * no wake-up. */
    feed(&h, KUBE_EVENT_MODIFIED, "crash");
    cr_expect_eq(w.n, 3);

    feed(&h, KUBE_EVENT_DELETED, "crash");
    cr_expect_eq(w.n, 4);
    rc_pods_summary(&pods, "fx/llama", &s);
    cr_expect_eq(s.pods, 2);
    cr_expect_eq(s.problem, RC_POD_UNSCHEDULABLE);

    /* A relist that no longer mentions a pod drops it and wakes its owner. */
    h.on_list_begin(h.arg);
    feed(&h, KUBE_EVENT_ADDED, "ready");
    h.on_list_end(h.arg);
    cr_expect_eq(w.n, 5);
    cr_expect_str_eq(w.keys[4], "fx/llama");
    rc_pods_summary(&pods, "fx/llama", &s);
    cr_expect_eq(s.pods, 1);
    cr_expect_eq(s.ready, 1);
    cr_expect_eq(s.problem, RC_POD_OK);
    cr_expect_str_eq(s.message, "");

    rc_pods_summary(&pods, "fx/other", &s);
    cr_expect_eq(s.pods, 0);
    rc_pods_clear(&pods);
    cr_expect_eq(rc_pods_count(&pods), 0);
    rc_pods_summary(&pods, "fx/llama", &s);
    cr_expect_eq(s.pods, 0);
    rc_pods_free(&pods);
}

/* --- status with pods ------------------------------------------------------ */

static struct rc_dep_state pending_dep(long long n)
{
    struct rc_dep_state d = { .exists = true, .generation = 2, .observed_generation = 2,
                              .spec_replicas = n, .replicas = n, .updated = n };
    d.available_cond.status = 'F';
    d.progressing_cond.status = 'T';
    snprintf(d.progressing_cond.reason, sizeof(d.progressing_cond.reason),
             "ReplicaSetUpdated");
    return d;
}

static const char *cond_field(const cJSON *st, const char *type, const char *key)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(st, "conditions"))
        if (strcmp(cJSON_GetObjectItem(c, "type")->valuestring, type) == 0)
            return cJSON_GetObjectItem(c, key)->valuestring;
    cr_assert_fail("no %s condition", type);
    return NULL;
}

static struct rc_status_input input(const struct rc_dep_state *d,
                                    const struct rc_pod_summary *p, long long want)
{
    struct rc_status_input in = {
        .generation = 2, .desired_replicas = want, .spec_valid = true,
        .endpoint = "http://x.ns.svc:8000", .selector = "app=x", .dep = d, .pods = p,
        .now = NOW,
    };
    return in;
}

Test(pod_status, unschedulable_says_why)
{
    struct rc_dep_state d = pending_dep(2);
    struct rc_pod_summary p = { .pods = 2, .problems = 2, .problem = RC_POD_UNSCHEDULABLE };
    snprintf(p.message, sizeof(p.message),
             "0/10 nodes are available: 4 Insufficient nvidia.com/gpu.");
    struct rc_status_input in = input(&d, &p, 2);
    cJSON *st = rc_status_build(&in);
    cr_assert_not_null(st);
    cr_expect_str_eq(cJSON_GetObjectItem(st, "phase")->valuestring, "Pending");
    cr_expect_str_eq(cond_field(st, "Ready", "status"), "False");
    cr_expect_str_eq(cond_field(st, "Ready", "reason"), "Unschedulable");
    cr_expect_str_eq(cond_field(st, "Ready", "message"),
                     "0/10 nodes are available: 4 Insufficient nvidia.com/gpu.");
    cr_expect_str_eq(cond_field(st, "Degraded", "status"), "True");
    cr_expect_str_eq(cond_field(st, "Degraded", "reason"), "Unschedulable");
    cr_expect_str_eq(cond_field(st, "Progressing", "status"), "True");
    cJSON_Delete(st);
}

Test(pod_status, never_ready_while_a_pod_crash_loops)
{
    /* The Deployment's counters say all ready (they lag the pod). */
    struct rc_dep_state d = pending_dep(2);
    d.ready = d.available = 2;
    struct rc_pod_summary p = { .pods = 2, .ready = 1, .problems = 1,
                                .problem = RC_POD_CRASH_LOOP };
    snprintf(p.message, sizeof(p.message), "pod x-1 container model-server: back-off");
    struct rc_status_input in = input(&d, &p, 2);
    cJSON *st = rc_status_build(&in);
    cr_expect_str_eq(cond_field(st, "Ready", "status"), "False");
    cr_expect_str_eq(cond_field(st, "Ready", "reason"), "CrashLoopBackOff");
    cr_expect_str_eq(cond_field(st, "Ready", "message"),
                     "pod x-1 container model-server: back-off");
    cr_expect_str_eq(cJSON_GetObjectItem(st, "phase")->valuestring, "Progressing");
    cJSON_Delete(st);

    /* Recovered: Ready again, with the time of this transition. */
    p = (struct rc_pod_summary){ .pods = 2, .ready = 2 };
    in = input(&d, &p, 2);
    in.prev[RC_COND_READY] = (struct rc_cond_prev){ 'F', NOW - 100 };
    st = rc_status_build(&in);
    cr_expect_str_eq(cond_field(st, "Ready", "status"), "True");
    cr_expect_str_eq(cond_field(st, "Ready", "reason"), "AllReplicasReady");
    cr_expect_str_eq(cond_field(st, "Degraded", "status"), "False");
    cr_expect_str_eq(cond_field(st, "Ready", "lastTransitionTime"), "2026-09-21T14:13:20Z");
    cJSON_Delete(st);
}

Test(pod_status, precedence)
{
    struct rc_pod_summary p = { .pods = 1, .problems = 1, .problem = RC_POD_UNSCHEDULABLE };
    snprintf(p.message, sizeof(p.message), "0/3 nodes are available");

    /* A failed Deployment: phase Failed, Progressing says the Deployment's
     * reason, Ready and Degraded keep the pod's (more specific) one. */
    struct rc_dep_state d = pending_dep(1);
    d.progressing_cond.status = 'F';
    snprintf(d.progressing_cond.reason, sizeof(d.progressing_cond.reason),
             "ProgressDeadlineExceeded");
    struct rc_status_input in = input(&d, &p, 1);
    cJSON *st = rc_status_build(&in);
    cr_expect_str_eq(cJSON_GetObjectItem(st, "phase")->valuestring, "Failed");
    cr_expect_str_eq(cond_field(st, "Ready", "reason"), "Unschedulable");
    cr_expect_str_eq(cond_field(st, "Progressing", "reason"), "ProgressDeadlineExceeded");
    cr_expect_str_eq(cond_field(st, "Progressing", "status"), "False");
    cJSON_Delete(st);

    /* An invalid spec and a missing Deployment come first. */
    in = input(&d, &p, 1);
    in.spec_valid = false;
    in.invalid_message = "spec.model: Required value";
    st = rc_status_build(&in);
    cr_expect_str_eq(cond_field(st, "Ready", "reason"), "InvalidSpec");
    cJSON_Delete(st);
    in = input(NULL, &p, 1);
    st = rc_status_build(&in);
    cr_expect_str_eq(cond_field(st, "Ready", "reason"), "DeploymentMissing");
    cJSON_Delete(st);

    /* No pod information at all: the Deployment alone decides. */
    d = pending_dep(1);
    in = input(&d, NULL, 1);
    st = rc_status_build(&in);
    cr_expect_str_eq(cond_field(st, "Ready", "reason"), "ReplicasNotReady");
    cJSON_Delete(st);
}

Test(pod_status, every_problem_has_a_reason)
{
    for (int i = 1; i < RC_POD_PROBLEM_COUNT; i++)
        cr_expect_neq(rc_pod_problem_reason((enum rc_pod_problem)i)[0], '\0', "%d", i);
    cr_expect_str_eq(rc_pod_problem_reason(RC_POD_OK), "");
    cr_expect_str_eq(rc_pod_problem_reason(RC_POD_PROBLEM_COUNT), "");
    cr_expect_str_eq(rc_pod_problem_reason(RC_POD_CRASH_LOOP), "CrashLoopBackOff");
    cr_expect_str_eq(rc_pod_problem_reason(RC_POD_UNSCHEDULABLE), "Unschedulable");
}

/* --- bounded writes of message-only changes ------------------------------- */

Test(pod_status, message_only_changes_are_bounded)
{
    struct rc_throttle t;
    cr_assert_eq(rc_throttle_init(&t), 0);
    struct rc_dep_state d = pending_dep(1);
    struct rc_pod_summary p = { .pods = 1, .problems = 1, .problem = RC_POD_UNSCHEDULABLE };
    snprintf(p.message, sizeof(p.message), "0/10 nodes are available: 4 Insufficient "
             "nvidia.com/gpu.");
    struct rc_status_input in = input(&d, &p, 1);
    cJSON *a = rc_status_build(&in);
    snprintf(p.message, sizeof(p.message), "0/11 nodes are available: 5 Insufficient "
             "nvidia.com/gpu.");
    cJSON *b = rc_status_build(&in);
    p.problem = RC_POD_CRASH_LOOP;
    cJSON *c = rc_status_build(&in);
    uint64_t sa = rc_status_signature(a), sb = rc_status_signature(b),
             sc = rc_status_signature(c);
    cr_expect_eq(sa, sb, "only the message differs: same signature");
    cr_expect_neq(sa, sc, "another reason: another signature");

    cr_expect(rc_throttle_allow(&t, "ns/x", sa, NOW), "nothing written yet");
    rc_throttle_wrote(&t, "ns/x", sa, NOW, true);
    cr_expect_eq(rc_throttle_count(&t), 1);
    cr_expect_not(rc_throttle_allow(&t, "ns/x", sb, NOW + 1), "message-only, 1 s later");
    cr_expect(rc_throttle_allow(&t, "ns/x", sc, NOW + 1), "a new reason goes at once");
    cr_expect(rc_throttle_allow(&t, "ns/y", sb, NOW + 1), "another object");
    cr_expect(rc_throttle_allow(&t, "ns/x", sb, NOW + RC_MESSAGE_WRITE_MIN_S),
              "message-only, after the interval");
    cr_expect(rc_throttle_allow(&t, "ns/x", sb, NOW - 5), "the clock went back");

    /* A write without a pod problem forgets the object: no memory kept. */
    rc_throttle_wrote(&t, "ns/x", sc, NOW + 2, false);
    cr_expect_eq(rc_throttle_count(&t), 0);
    cr_expect(rc_throttle_allow(&t, "ns/x", sc, NOW + 3));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    rc_throttle_free(&t);
}
