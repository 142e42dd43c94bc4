/*
 * test_desired.c — desired Deployment/Service builders, the managed-field
 * hash (no drift from server defaults, drift from edits), and rc_map.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc_desired.h"
#include "rc_map.h"

static struct rc_settings settings;
static const struct rc_owner owner = {
    .ns = "team-a", .name = "llama", .uid = "0b6c-uid",
    .model = "meta-llama/Llama-3.1-8B", .gpu_type = "H100",
    .replicas = 3, .max_batch_size = 64,
};

static void setup(void)
{
    rc_settings_init(&settings);
    cr_assert_eq(rc_shapes_init(&settings), 0);
}

static void teardown(void)
{
    rc_shapes_free();
}

TestSuite(desired, .init = setup, .fini = teardown);

/* Follow a dotted path; keys may contain dots themselves (label keys), so
 * at each level the longest key that prefixes the rest of the path wins. */
static const cJSON *at(const cJSON *v, const char *path)
{
    const char *p = path;
    while (v && *p) {
        const cJSON *next = NULL;
        size_t best = 0;
        if (cJSON_IsArray(v)) {
            char *end;
            long i = strtol(p, &end, 10);
            next = cJSON_GetArrayItem(v, (int)i);
            best = (size_t)(end - p);
        } else {
            const cJSON *c;
            cJSON_ArrayForEach(c, v) {
                size_t n = strlen(c->string);
                if (n > best && strncmp(p, c->string, n) == 0 &&
                    (p[n] == '.' || p[n] == '\0')) {
                    best = n;
                    next = c;
                }
            }
        }
        if (next == NULL)
            return NULL;
        v = next;
        p += best;
        if (*p == '.')
            p++;
    }
    return v;
}

static const char *str(const cJSON *v, const char *path)
{
    const cJSON *x = at(v, path);
    cr_assert(cJSON_IsString(x), "%s is not a string", path);
    return x->valuestring;
}

static double num(const cJSON *v, const char *path)
{
    const cJSON *x = at(v, path);
    cr_assert(cJSON_IsNumber(x), "%s is not a number", path);
    return x->valuedouble;
}

Test(desired, deployment_fields)
{
    cJSON *d = rc_desired_deployment(&settings, &owner);
    cr_assert_not_null(d);
    cr_expect_str_eq(str(d, "apiVersion"), "apps/v1");
    cr_expect_str_eq(str(d, "kind"), "Deployment");
    cr_expect_str_eq(str(d, "metadata.name"), "llama");
    cr_expect_str_eq(str(d, "metadata.namespace"), "team-a");
    cr_expect_eq(num(d, "spec.replicas"), 3);
    const cJSON *ref = at(d, "metadata.ownerReferences.0");
    cr_expect_str_eq(str(ref, "apiVersion"), "ai.example.com/v1");
    cr_expect_str_eq(str(ref, "kind"), "InferenceService");
    cr_expect_str_eq(str(ref, "uid"), "0b6c-uid");
    cr_expect(cJSON_IsTrue(at(ref, "controller")));
    cr_expect(cJSON_IsTrue(at(ref, "blockOwnerDeletion")));
    cr_expect_str_eq(str(d, "metadata.labels.app.kubernetes.io/managed-by"),
                     "inference-operator");

    const cJSON *c = at(d, "spec.template.spec.containers.0");
    cr_expect_str_eq(str(c, "name"), "model-server");
    cr_expect_str_eq(str(c, "image"), RC_IMAGE_DEFAULT);
    char *args = cJSON_PrintUnformatted(at(c, "args"));
    cr_expect_str_eq(args, "[\"--model\",\"meta-llama/Llama-3.1-8B\",\"--max-num-seqs\","
                     "\"64\",\"--port\",\"8000\"]");
    free(args);
    cr_expect_eq(num(c, "ports.0.containerPort"), 8000);
    cr_expect_str_eq(str(c, "resources.limits.nvidia.com/gpu"), "1");
    cr_expect_str_eq(str(c, "readinessProbe.httpGet.path"), "/health");

    const cJSON *expr = at(d, "spec.template.spec.affinity.nodeAffinity."
                              "requiredDuringSchedulingIgnoredDuringExecution."
                              "nodeSelectorTerms.0.matchExpressions.0");
    cr_expect_str_eq(str(expr, "key"), "nvidia.com/gpu.product");
    cr_expect_str_eq(str(expr, "operator"), "In");
    cr_expect_str_eq(str(expr, "values.0"), "NVIDIA-H100-80GB-HBM3");
    cr_expect_eq(cJSON_GetArraySize(at(expr, "values")), 4);
    const cJSON *tol = at(d, "spec.template.spec.tolerations.0");
    cr_expect_str_eq(str(tol, "key"), "nvidia.com/gpu");
    cr_expect_str_eq(str(tol, "operator"), "Exists");
    cr_expect_str_eq(str(tol, "effect"), "NoSchedule");

    /* The selector is a subset of the pod labels. */
    const cJSON *ml = at(d, "spec.selector.matchLabels");
    const cJSON *tl = at(d, "spec.template.metadata.labels");
    const cJSON *l;
    cJSON_ArrayForEach(l, ml) {
        const cJSON *same = cJSON_GetObjectItemCaseSensitive(tl, l->string);
        cr_expect(cJSON_IsString(same) && strcmp(same->valuestring, l->valuestring) == 0);
    }
    cJSON_Delete(d);
}

Test(desired, gpu_settings)
{
    char err[256];
    settings.gpus_per_replica = 8;
    cr_assert_eq(rc_settings_set_gpu_products(&settings, "H100=A-B|C_D;B200=NVIDIA-B200",
                                              err, sizeof(err)), 0, "%s", err);
    cJSON *d = rc_desired_deployment(&settings, &owner);
    cr_assert_not_null(d);
    const cJSON *c = at(d, "spec.template.spec.containers.0");
    cr_expect_str_eq(str(c, "resources.limits.nvidia.com/gpu"), "8");
    char *vals = cJSON_PrintUnformatted(at(d, "spec.template.spec.affinity.nodeAffinity."
                                              "requiredDuringSchedulingIgnoredDuringExecution."
                                              "nodeSelectorTerms.0.matchExpressions.0.values"));
    cr_expect_str_eq(vals, "[\"A-B\",\"C_D\"]");
    free(vals);
    cJSON_Delete(d);
    struct rc_owner l40 = owner;
    l40.gpu_type = "L40S";
    cr_expect_null(rc_desired_deployment(&settings, &l40), "no products for L40S now");
    cr_expect_eq(rc_settings_set_gpu_products(&settings, "H100", err, sizeof(err)), -1);
    cr_expect_eq(rc_settings_set_gpu_products(&settings, "H100=", err, sizeof(err)), -1);
    cr_expect_eq(rc_settings_set_gpu_products(&settings, "H100=a b", err, sizeof(err)), -1);
    cr_expect_not_null(rc_gpu_products_for(&settings, "b200"), "case-insensitive");
}

Test(desired, service_fields)
{
    cJSON *s = rc_desired_service(&owner);
    cr_assert_not_null(s);
    cr_expect_str_eq(str(s, "kind"), "Service");
    cr_expect_str_eq(str(s, "spec.type"), "ClusterIP");
    cr_expect_eq(num(s, "spec.ports.0.port"), 8000);
    cr_expect_str_eq(str(s, "spec.selector.app.kubernetes.io/instance"), "llama");
    cr_expect_str_eq(str(s, "metadata.ownerReferences.0.uid"), "0b6c-uid");
    char ep[128], sel[256];
    rc_endpoint(&owner, ep, sizeof(ep));
    cr_expect_str_eq(ep, "http://llama.team-a.svc:8000");
    rc_selector(&owner, sel, sizeof(sel));
    cr_expect_str_eq(sel, "app.kubernetes.io/instance=llama,app.kubernetes.io/name="
                     "inference-server");
    cJSON_Delete(s);
}

/* What the API server sends back: our fields plus its defaults, status,
 * managedFields, and keys in another order. */
static cJSON *as_served(const cJSON *desired)
{
    cJSON *d = cJSON_Duplicate(desired, 1);
    cJSON *meta = cJSON_GetObjectItem(d, "metadata");
    cJSON_AddStringToObject(meta, "resourceVersion", "12345");
    cJSON_AddNumberToObject(meta, "generation", 2);
    cJSON_AddItemToObject(meta, "managedFields", cJSON_Parse("[{\"manager\":\"x\"}]"));
    cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template"), "spec"),
        "containers"), 0);
    cJSON_AddStringToObject(c, "terminationMessagePath", "/dev/termination-log");
    cJSON_AddStringToObject(c, "imagePullPolicy", "IfNotPresent");
    cJSON *probe = cJSON_GetObjectItem(c, "readinessProbe");
    cJSON_AddNumberToObject(probe, "timeoutSeconds", 1);
    cJSON_AddNumberToObject(probe, "failureThreshold", 3);
    cJSON_AddStringToObject(cJSON_GetObjectItem(probe, "httpGet"), "scheme", "HTTP");
    cJSON_AddItemToObject(d, "status", cJSON_Parse("{\"replicas\":3}"));
    return d;
}

static cJSON *containers_of(cJSON *d)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(
        cJSON_GetObjectItem(d, "spec"), "template"), "spec"), "containers");
}

Test(desired, managed_hash_ignores_server_defaults)
{
    cJSON *want = rc_desired_deployment(&settings, &owner);
    uint64_t h = rc_managed_hash(want, want);
    cJSON *served = as_served(want);
    cr_expect_eq(rc_managed_hash(rc_deployment_shape(), served), h,
                 "defaults the server adds are not drift");
    /* List items come without apiVersion and kind. */
    cJSON_DeleteItemFromObject(served, "apiVersion");
    cJSON_DeleteItemFromObject(served, "kind");
    cr_expect_eq(rc_managed_hash(rc_deployment_shape(), served), h);
    /* A sidecar injected before ours is not drift either. */
    cJSON_InsertItemInArray(containers_of(served), 0,
                            cJSON_Parse("{\"name\":\"istio-proxy\",\"image\":\"x\"}"));
    cr_expect_eq(rc_managed_hash(rc_deployment_shape(), served), h);
    /* Foreign labels are not ours. */
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(served, "metadata"),
                                                "labels"), "team", "x");
    cr_expect_eq(rc_managed_hash(rc_deployment_shape(), served), h);
    cJSON_Delete(served);
    cJSON_Delete(want);
}

Test(desired, managed_hash_sees_drift)
{
    cJSON *want = rc_desired_deployment(&settings, &owner);
    uint64_t h = rc_managed_hash(want, want);

    cJSON *edited = as_served(want);
    cJSON *c = cJSON_GetArrayItem(containers_of(edited), 0);
    cJSON_ReplaceItemInObject(c, "image", cJSON_CreateString("evil:latest"));
    cr_expect_neq(rc_managed_hash(rc_deployment_shape(), edited), h, "image edit");
    cJSON_Delete(edited);

    edited = as_served(want);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(edited, "spec"), "replicas",
                              cJSON_CreateNumber(7));
    cr_expect_neq(rc_managed_hash(rc_deployment_shape(), edited), h, "replicas edit");
    cJSON_Delete(edited);

    edited = as_served(want);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetObjectItem(edited, "spec"),
                                                   "template"), "spec");
    cr_expect_neq(rc_managed_hash(rc_deployment_shape(), edited), h, "removed subtree");
    cJSON_Delete(edited);

    struct rc_owner other = owner;
    other.replicas = 4;
    cJSON *want4 = rc_desired_deployment(&settings, &other);
    cr_expect_neq(rc_managed_hash(want4, want4), h, "spec change changes desired");
    cJSON_Delete(want4);
    cJSON_Delete(want);
}

Test(desired, service_hash_ignores_cluster_ip)
{
    cJSON *want = rc_desired_service(&owner);
    uint64_t h = rc_managed_hash(want, want);
    cJSON *served = cJSON_Duplicate(want, 1);
    cJSON *spec = cJSON_GetObjectItem(served, "spec");
    cJSON_AddStringToObject(spec, "clusterIP", "10.0.0.7");
    cJSON_AddStringToObject(spec, "sessionAffinity", "None");
    cr_expect_eq(rc_managed_hash(rc_service_shape(), served), h);
    cJSON_ReplaceItemInObject(spec, "type", cJSON_CreateString("NodePort"));
    cr_expect_neq(rc_managed_hash(rc_service_shape(), served), h);
    cJSON_Delete(served);
    cJSON_Delete(want);
}

Test(desired, json_hash_is_key_order_independent)
{
    cJSON *a = cJSON_Parse("{\"b\":1,\"a\":{\"y\":[1,\"x\"],\"x\":true}}");
    cJSON *b = cJSON_Parse("{\"a\":{\"x\":true,\"y\":[1,\"x\"]},\"b\":1}");
    cJSON *c = cJSON_Parse("{\"a\":{\"x\":true,\"y\":[\"x\",1]},\"b\":1}");
    cr_expect_eq(rc_json_hash(a), rc_json_hash(b));
    cr_expect_neq(rc_json_hash(a), rc_json_hash(c), "array order matters");
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
}

/* --- rc_map ---------------------------------------------------------------- */

/* A map value starts with its key, as the caches' entries do. */
struct keyed {
    const char *key;
    char buf[16];
};

static struct keyed *keyed_new(int i)
{
    struct keyed *k = malloc(sizeof(*k));
    cr_assert_not_null(k);
    snprintf(k->buf, sizeof(k->buf), "%d", i);
    k->key = k->buf;
    return k;
}

static int keep_even(void *arg, void *v)
{
    (void)arg;
    return atoi(((struct keyed *)v)->key) % 2 == 0;
}

static void count_drop(void *arg, void *v)
{
    (*(int *)arg)++;
    free(v);
}

static void free_it(void *arg, void *v)
{
    (void)arg;
    free(v);
}

Test(map, put_get_delete_filter)
{
    struct rc_map m = { 0 };
    enum { N = 5000 };
    for (int i = 0; i < N; i++) {
        struct keyed *k = keyed_new(i);
        void *old;
        cr_assert_eq(rc_map_put(&m, k, &old), 0);
        cr_assert_null(old);
    }
    cr_expect_eq(m.count, N);
    for (int i = 0; i < N; i += 7) {
        char k[16];
        snprintf(k, sizeof(k), "%d", i);
        struct keyed *got = rc_map_get(&m, k);
        cr_assert_not_null(got, "%s", k);
        cr_expect_str_eq(got->key, k);
    }
    cr_expect_null(rc_map_get(&m, "nope"));
    for (int i = 0; i < N; i += 3) {
        char k[16];
        snprintf(k, sizeof(k), "%d", i);
        free(rc_map_del(&m, k));
    }
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%d", i);
        if (i % 3 == 0)
            cr_expect_null(rc_map_get(&m, k), "%d deleted", i);
        else
            cr_expect_not_null(rc_map_get(&m, k), "%d still there", i);
    }
    int dropped = 0;
    size_t before = m.count;
    rc_map_filter(&m, keep_even, count_drop, &dropped);
    cr_expect_eq(m.count + (size_t)dropped, before);
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%d", i);
        cr_expect_eq(rc_map_get(&m, k) != NULL, i % 3 != 0 && i % 2 == 0, "%d", i);
    }
    rc_map_each(&m, free_it, NULL);
    rc_map_free(&m);
}
