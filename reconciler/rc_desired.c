/*
 * rc_desired.c — desired Deployment and Service, and the managed-field
 * hash.  See rc_desired.h.
 */
#include "rc_desired.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* GPU Feature Discovery's nvidia.com/gpu.product values seen on the
 * common SKUs of each type. */
static const struct {
    const char *type;
    const char *names;
} builtin_products[] = {
    { "A100", "NVIDIA-A100-SXM4-40GB|NVIDIA-A100-SXM4-80GB|NVIDIA-A100-PCIE-40GB|"
              "NVIDIA-A100-80GB-PCIe" },
    { "H100", "NVIDIA-H100-80GB-HBM3|NVIDIA-H100-SXM5-80GB|NVIDIA-H100-PCIe|"
              "NVIDIA-H100-NVL" },
    { "L40S", "NVIDIA-L40S" },
};

static int parse_names(struct rc_gpu_products *p, const char *names, size_t len,
                       char *err, size_t errlen)
{
    p->count = 0;
    const char *c = names, *end = names + len;
    while (c < end) {
        const char *bar = memchr(c, '|', (size_t)(end - c));
        size_t n = bar ? (size_t)(bar - c) : (size_t)(end - c);
        if (n == 0 || n > RC_PRODUCT_LEN_MAX) {
            snprintf(err, errlen, "--gpu-products: product name for %s is empty "
                     "or longer than %d characters", p->type, RC_PRODUCT_LEN_MAX);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (!(isalnum((unsigned char)c[i]) || c[i] == '-' || c[i] == '_' ||
                  c[i] == '.')) {
                snprintf(err, errlen, "--gpu-products: \"%.*s\" is not a valid "
                         "label value", (int)n, c);
                return -1;
            }
        }
        if (p->count == RC_PRODUCTS_MAX) {
            snprintf(err, errlen, "--gpu-products: more than %d products for %s",
                     RC_PRODUCTS_MAX, p->type);
            return -1;
        }
        memcpy(p->names[p->count], c, n);
        p->names[p->count][n] = '\0';
        p->count++;
        c = bar ? bar + 1 : end;
    }
    if (p->count == 0) {
        snprintf(err, errlen, "--gpu-products: no product names for %s", p->type);
        return -1;
    }
    return 0;
}

void rc_settings_init(struct rc_settings *s)
{
    char err[128];
    memset(s, 0, sizeof(*s));
    snprintf(s->image, sizeof(s->image), "%s", RC_IMAGE_DEFAULT);
    s->gpus_per_replica = 1;
    for (size_t i = 0; i < sizeof(builtin_products) / sizeof(builtin_products[0]); i++) {
        struct rc_gpu_products *p = &s->gpu_map[s->gpu_map_count++];
        snprintf(p->type, sizeof(p->type), "%s", builtin_products[i].type);
        (void)parse_names(p, builtin_products[i].names,
                          strlen(builtin_products[i].names), err, sizeof(err));
    }
}

int rc_settings_set_gpu_products(struct rc_settings *s, const char *spec,
                                 char *err, size_t errlen)
{
    struct rc_settings next = *s;
    next.gpu_map_count = 0;
    const char *c = spec;
    while (c && *c) {
        const char *semi = strchr(c, ';');
        size_t n = semi ? (size_t)(semi - c) : strlen(c);
        const char *eq = memchr(c, '=', n);
        if (eq == NULL || eq == c || (size_t)(eq - c) > ISVC_GPU_TYPE_LEN_MAX) {
            snprintf(err, errlen, "--gpu-products: expected TYPE=PRODUCT[|PRODUCT...] "
                     "separated by ';', got \"%.*s\"", (int)(n > 64 ? 64 : n), c);
            return -1;
        }
        if (next.gpu_map_count == ISVC_GPU_TYPES_MAX) {
            snprintf(err, errlen, "--gpu-products: more than %d GPU types",
                     ISVC_GPU_TYPES_MAX);
            return -1;
        }
        struct rc_gpu_products *p = &next.gpu_map[next.gpu_map_count++];
        snprintf(p->type, sizeof(p->type), "%.*s", (int)(eq - c), c);
        if (parse_names(p, eq + 1, n - (size_t)(eq - c) - 1, err, errlen) != 0)
            return -1;
        c = semi ? semi + 1 : NULL;
    }
    if (next.gpu_map_count == 0) {
        snprintf(err, errlen, "--gpu-products: no GPU type given");
        return -1;
    }
    *s = next;
    return 0;
}

const struct rc_gpu_products *rc_gpu_products_for(const struct rc_settings *s,
                                                  const char *gpu_type)
{
    for (size_t i = 0; i < s->gpu_map_count; i++)
        if (gpu_type && strcasecmp(s->gpu_map[i].type, gpu_type) == 0)
            return &s->gpu_map[i];
    return NULL;
}

void rc_selector(const struct rc_owner *o, char *out, size_t cap)
{
    snprintf(out, cap, "app.kubernetes.io/instance=%s,app.kubernetes.io/name="
             "inference-server", o->name);
}

void rc_endpoint(const struct rc_owner *o, char *out, size_t cap)
{
    snprintf(out, cap, "http://%s.%s.svc:%d", o->name, o->ns, RC_MODEL_PORT);
}

/* Labels on everything we create; the first two also select the pods. */
static cJSON *labels(const struct rc_owner *o, bool selector_only)
{
    cJSON *l = cJSON_CreateObject();
    if (!l)
        return NULL;
    cJSON_AddStringToObject(l, "app.kubernetes.io/instance", o->name);
    cJSON_AddStringToObject(l, "app.kubernetes.io/name", "inference-server");
    if (!selector_only) {
        cJSON_AddStringToObject(l, "app.kubernetes.io/component", "model-server");
        cJSON_AddStringToObject(l, "app.kubernetes.io/managed-by", ISVC_MANAGED_BY_VALUE);
        cJSON_AddStringToObject(l, "app.kubernetes.io/part-of", "inference-operator");
    }
    return l;
}

static cJSON *metadata(const struct rc_owner *o)
{
    cJSON *m = cJSON_CreateObject();
    if (!m)
        return NULL;
    cJSON_AddStringToObject(m, "name", o->name);
    cJSON_AddStringToObject(m, "namespace", o->ns);
    cJSON_AddItemToObject(m, "labels", labels(o, false));
    cJSON *refs = cJSON_AddArrayToObject(m, "ownerReferences");
    cJSON *ref = cJSON_CreateObject();
    cJSON_AddItemToArray(refs, ref);
    cJSON_AddStringToObject(ref, "apiVersion", ISVC_API_VERSION);
    cJSON_AddStringToObject(ref, "kind", ISVC_KIND);
    cJSON_AddStringToObject(ref, "name", o->name);
    cJSON_AddStringToObject(ref, "uid", o->uid);
    cJSON_AddBoolToObject(ref, "controller", 1);
    cJSON_AddBoolToObject(ref, "blockOwnerDeletion", 1);
    return m;
}

static cJSON *container(const struct rc_settings *s, const struct rc_owner *o)
{
    char batch[32], port[16], gpus[16];
    snprintf(batch, sizeof(batch), "%lld", o->max_batch_size);
    snprintf(port, sizeof(port), "%d", RC_MODEL_PORT);
    snprintf(gpus, sizeof(gpus), "%u", s->gpus_per_replica);

    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", RC_CONTAINER_NAME);
    cJSON_AddStringToObject(c, "image", s->image);
    const char *args[] = { "--model", o->model, "--max-num-seqs", batch,
                           "--port", port };
    cJSON_AddItemToObject(c, "args", cJSON_CreateStringArray(args, 6));
    cJSON *ports = cJSON_AddArrayToObject(c, "ports");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToArray(ports, p);
    cJSON_AddStringToObject(p, "name", "http");
    cJSON_AddNumberToObject(p, "containerPort", RC_MODEL_PORT);
    cJSON_AddStringToObject(p, "protocol", "TCP");
    cJSON *res = cJSON_AddObjectToObject(c, "resources");
    cJSON *limits = cJSON_AddObjectToObject(res, "limits");
    cJSON_AddStringToObject(limits, RC_GPU_RESOURCE, gpus);
    cJSON *probe = cJSON_AddObjectToObject(c, "readinessProbe");
    cJSON *get = cJSON_AddObjectToObject(probe, "httpGet");
    cJSON_AddStringToObject(get, "path", "/health");
    cJSON_AddStringToObject(get, "port", "http");
    cJSON_AddNumberToObject(probe, "initialDelaySeconds", 10);
    cJSON_AddNumberToObject(probe, "periodSeconds", 10);
    return c;
}

/* Schedule only on nodes whose GPU is one of the type's products, and
 * tolerate the taint GPU pools usually carry. */
static void placement(cJSON *pod, const struct rc_gpu_products *prod)
{
    cJSON *aff = cJSON_AddObjectToObject(pod, "affinity");
    cJSON *na = cJSON_AddObjectToObject(aff, "nodeAffinity");
    cJSON *req = cJSON_AddObjectToObject(na, "requiredDuringSchedulingIgnoredDuringExecution");
    cJSON *terms = cJSON_AddArrayToObject(req, "nodeSelectorTerms");
    cJSON *term = cJSON_CreateObject();
    cJSON_AddItemToArray(terms, term);
    cJSON *exprs = cJSON_AddArrayToObject(term, "matchExpressions");
    cJSON *e = cJSON_CreateObject();
    cJSON_AddItemToArray(exprs, e);
    cJSON_AddStringToObject(e, "key", RC_GPU_PRODUCT_LABEL);
    cJSON_AddStringToObject(e, "operator", "In");
    cJSON *values = cJSON_AddArrayToObject(e, "values");
    for (size_t i = 0; i < prod->count; i++)
        cJSON_AddItemToArray(values, cJSON_CreateString(prod->names[i]));

    cJSON *tols = cJSON_AddArrayToObject(pod, "tolerations");
    cJSON *t = cJSON_CreateObject();
    cJSON_AddItemToArray(tols, t);
    cJSON_AddStringToObject(t, "key", RC_GPU_RESOURCE);
    cJSON_AddStringToObject(t, "operator", "Exists");
    cJSON_AddStringToObject(t, "effect", "NoSchedule");
}

/* cJSON's Add* functions return NULL on OOM and leave the tree valid, so
 * the builders check once at the end by printing size: any missing piece
 * is caught by the final validity check. */
static bool complete(const cJSON *obj, const char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!cJSON_GetObjectItemCaseSensitive(obj, paths[i]))
            return false;
    return true;
}

/* apiVersion, kind, o's metadata and an empty spec (*spec): how every
 * object we own begins.  NULL when out of memory; a member that could not
 * be added is caught by complete() once the object is built. */
static cJSON *owned_object(const char *api_version, const char *kind,
                           const struct rc_owner *o, cJSON **spec)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return NULL;
    cJSON_AddStringToObject(obj, "apiVersion", api_version);
    cJSON_AddStringToObject(obj, "kind", kind);
    cJSON_AddItemToObject(obj, "metadata", metadata(o));
    *spec = cJSON_AddObjectToObject(obj, "spec");
    return obj;
}

cJSON *rc_desired_deployment(const struct rc_settings *s, const struct rc_owner *o)
{
    const struct rc_gpu_products *prod = rc_gpu_products_for(s, o->gpu_type);
    if (prod == NULL)
        return NULL;
    cJSON *spec;
    cJSON *d = owned_object("apps/v1", "Deployment", o, &spec);
    if (!d)
        return NULL;
    cJSON_AddNumberToObject(spec, "replicas", (double)o->replicas);
    cJSON *sel = cJSON_AddObjectToObject(spec, "selector");
    cJSON_AddItemToObject(sel, "matchLabels", labels(o, true));
    cJSON *tpl = cJSON_AddObjectToObject(spec, "template");
    cJSON *tmeta = cJSON_AddObjectToObject(tpl, "metadata");
    cJSON_AddItemToObject(tmeta, "labels", labels(o, false));
    cJSON *pod = cJSON_AddObjectToObject(tpl, "spec");
    cJSON *containers = cJSON_AddArrayToObject(pod, "containers");
    cJSON_AddItemToArray(containers, container(s, o));
    placement(pod, prod);

    static const char *const need[] = { "apiVersion", "kind", "metadata", "spec" };
    char *probe = cJSON_PrintUnformatted(d);
    bool ok = probe && complete(d, need, 4);
    cJSON_free(probe);
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

cJSON *rc_desired_service(const struct rc_owner *o)
{
    cJSON *spec;
    cJSON *svc = owned_object("v1", "Service", o, &spec);
    if (!svc)
        return NULL;
    cJSON_AddStringToObject(spec, "type", "ClusterIP");
    cJSON_AddItemToObject(spec, "selector", labels(o, true));
    cJSON *ports = cJSON_AddArrayToObject(spec, "ports");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToArray(ports, p);
    cJSON_AddStringToObject(p, "name", "http");
    cJSON_AddNumberToObject(p, "port", RC_MODEL_PORT);
    cJSON_AddStringToObject(p, "targetPort", "http");
    cJSON_AddStringToObject(p, "protocol", "TCP");

    static const char *const need[] = { "apiVersion", "kind", "metadata", "spec" };
    if (!complete(svc, need, 4)) {
        cJSON_Delete(svc);
        return NULL;
    }
    return svc;
}

/* --- hashing ------------------------------------------------------------ */

static uint64_t mix(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return mix(h, s, strlen(s) + 1);
}

static int cmp_keys(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* Objects hash their members in key order: the API server re-encodes
 * custom resources with sorted keys, we build ours in our own order. */
static uint64_t hash_value(uint64_t h, const cJSON *v)
{
    char num[40];
    if (v == NULL)
        return mix_str(h, "\001absent");
    if (cJSON_IsObject(v)) {
        size_t n = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            n++;
        const cJSON **kids = malloc((n ? n : 1) * sizeof(*kids));
        if (kids == NULL)
            return mix_str(h, "\001oom");
        n = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            kids[n++] = c;
        qsort(kids, n, sizeof(*kids), cmp_keys);
        h = mix_str(h, "{");
        for (size_t i = 0; i < n; i++) {
            h = mix_str(h, kids[i]->string ? kids[i]->string : "");
            h = hash_value(h, kids[i]);
        }
        free(kids);
        return mix_str(h, "}");
    }
    if (cJSON_IsArray(v)) {
        h = mix_str(h, "[");
        for (const cJSON *c = v->child; c; c = c->next)
            h = hash_value(h, c);
        return mix_str(h, "]");
    }
    if (cJSON_IsString(v))
        return mix_str(mix_str(h, "s"), v->valuestring);
    if (cJSON_IsNumber(v)) {
        snprintf(num, sizeof(num), "%.17g", v->valuedouble);
        return mix_str(mix_str(h, "n"), num);
    }
    if (cJSON_IsBool(v))
        return mix_str(h, cJSON_IsTrue(v) ? "true" : "false");
    return mix_str(h, "null");
}

uint64_t rc_json_hash(const cJSON *v)
{
    return hash_value(1469598103934665603ull, v);
}

static const cJSON *find_named(const cJSON *array, const char *name)
{
    for (const cJSON *c = array ? array->child : NULL; c; c = c->next) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return c;
    }
    return NULL;
}

static uint64_t project(uint64_t h, const char *key, const cJSON *shape,
                        const cJSON *obj);

static uint64_t project_array(uint64_t h, const char *key, const cJSON *shape,
                              const cJSON *obj)
{
    if (!cJSON_IsArray(obj))
        return mix_str(h, "\001not-array");
    bool objects = shape->child && cJSON_IsObject(shape->child);
    if (!objects)
        return hash_value(h, obj);   /* scalars: the whole list is ours */
    bool keyed = key && (strcmp(key, "containers") == 0 || strcmp(key, "ports") == 0);
    const cJSON *o = obj->child;
    for (const cJSON *s = shape->child; s; s = s->next) {
        const cJSON *match;
        if (keyed) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, "name");
            match = cJSON_IsString(n) ? find_named(obj, n->valuestring) : NULL;
        } else {
            match = o;
            o = o ? o->next : NULL;
        }
        h = project(mix_str(h, "#"), NULL, s, match);
    }
    return h;
}

static uint64_t project(uint64_t h, const char *key, const cJSON *shape,
                        const cJSON *obj)
{
    if (cJSON_IsObject(shape)) {
        if (obj != NULL && !cJSON_IsObject(obj))
            return mix_str(h, "\001not-object");
        for (const cJSON *s = shape->child; s; s = s->next) {
            h = mix_str(h, s->string);
            h = project(h, s->string, s,
                        obj ? cJSON_GetObjectItemCaseSensitive(obj, s->string) : NULL);
        }
        return h;
    }
    if (cJSON_IsArray(shape))
        return obj ? project_array(h, key, shape, obj) : mix_str(h, "\001absent");
    return hash_value(h, obj);
}

uint64_t rc_managed_hash(const cJSON *shape, const cJSON *obj)
{
    uint64_t h = 1469598103934665603ull;
    for (const cJSON *s = shape ? shape->child : NULL; s; s = s->next) {
        if (strcmp(s->string, "apiVersion") == 0 || strcmp(s->string, "kind") == 0)
            continue;
        h = mix_str(h, s->string);
        h = project(h, s->string, s, cJSON_GetObjectItemCaseSensitive(obj, s->string));
    }
    return h;
}

static cJSON *deployment_shape, *service_shape;

int rc_shapes_init(const struct rc_settings *s)
{
    if (s->gpu_map_count == 0)
        return -1;
    struct rc_owner o = { .ns = "ns", .name = "shape", .uid = "uid",
                          .model = "model", .gpu_type = s->gpu_map[0].type,
                          .replicas = 1, .max_batch_size = 1 };
    rc_shapes_free();
    deployment_shape = rc_desired_deployment(s, &o);
    service_shape = rc_desired_service(&o);
    if (!deployment_shape || !service_shape) {
        rc_shapes_free();
        return -1;
    }
    return 0;
}

const cJSON *rc_deployment_shape(void)
{
    return deployment_shape;
}

const cJSON *rc_service_shape(void)
{
    return service_shape;
}

void rc_shapes_free(void)
{
    cJSON_Delete(deployment_shape);
    cJSON_Delete(service_shape);
    deployment_shape = service_shape = NULL;
}
