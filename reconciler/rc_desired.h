/*
 * rc_desired.h — the objects an InferenceService should own, computed by
 * pure functions from its spec and the operator's settings: no I/O, no
 * cache, so every field is unit-tested without a cluster.
 *
 * Deployment <name>: replicas; one container "model-server" running an
 * OpenAI-compatible server (vLLM by default) with the model and batch size
 * as arguments, port 8000 and a readiness probe; nvidia.com/gpu in
 * limits; node affinity on nvidia.com/gpu.product In the GPU Feature
 * Discovery product names of the gpuType; a toleration for the
 * nvidia.com/gpu taint; the app.kubernetes.io labels; a controller
 * ownerReference.  Service <name>: ClusterIP, port 8000, same owner.
 *
 * Both are sent with server-side apply, so they carry only the fields we
 * own.  rc_managed_hash() summarises exactly those fields, for the
 * desired object and for what the API server returns, so "anything to
 * do?" is one integer comparison and no resync writes when nothing drifted.
 */
#ifndef RC_DESIRED_H
#define RC_DESIRED_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "isvc_fields.h"

#define RC_MODEL_PORT 8000
#define RC_CONTAINER_NAME "model-server"
#define RC_GPU_RESOURCE "nvidia.com/gpu"
#define RC_GPU_PRODUCT_LABEL "nvidia.com/gpu.product"
#define RC_FIELD_MANAGER "inference-operator"
#define RC_IMAGE_DEFAULT "vllm/vllm-openai:v0.6.3"
#define RC_PRODUCTS_MAX 16          /* product names per GPU type          */
#define RC_PRODUCT_LEN_MAX 64
#define RC_IMAGE_MAX 512

/* GPU type → GPU Feature Discovery product strings. */
struct rc_gpu_products {
    char type[ISVC_GPU_TYPE_LEN_MAX + 1];
    size_t count;
    char names[RC_PRODUCTS_MAX][RC_PRODUCT_LEN_MAX + 1];
};

struct rc_settings {
    char image[RC_IMAGE_MAX];
    unsigned gpus_per_replica;
    size_t gpu_map_count;
    struct rc_gpu_products gpu_map[ISVC_GPU_TYPES_MAX];
};

/* What the builders need of an InferenceService (strings borrowed). */
struct rc_owner {
    const char *ns;
    const char *name;
    const char *uid;
    const char *model;
    const char *gpu_type;
    long long replicas;
    long long max_batch_size;
};

/* Defaults: RC_IMAGE_DEFAULT, 1 GPU, and the built-in product table for
 * A100, H100 and L40S. */
void rc_settings_init(struct rc_settings *s);

/*
 * Replace the product table from "H100=NVIDIA-H100-80GB-HBM3|NVIDIA-H100-PCIe;
 * A100=...".  Returns 0, or -1 with err.
 */
int rc_settings_set_gpu_products(struct rc_settings *s, const char *spec,
                                 char *err, size_t errlen);

/* Product names for a GPU type (case-insensitive), or NULL. */
const struct rc_gpu_products *rc_gpu_products_for(const struct rc_settings *s,
                                                  const char *gpu_type);

/* The pod label selector, "app.kubernetes.io/instance=<name>,...". */
void rc_selector(const struct rc_owner *o, char *out, size_t cap);

/* The in-cluster URL of the model server. */
void rc_endpoint(const struct rc_owner *o, char *out, size_t cap);

/* Desired objects as apply bodies (caller frees), or NULL on OOM or when
 * the gpuType has no product names. */
cJSON *rc_desired_deployment(const struct rc_settings *s, const struct rc_owner *o);
cJSON *rc_desired_service(const struct rc_owner *o);

/*
 * Hash of the fields `shape` sets, read from obj: every leaf path of
 * shape is looked up in obj, so defaults the API server adds elsewhere do
 * not count, and a changed or removed managed field does.  Arrays:
 * "containers" and "ports" are matched by element name (a sidecar injected
 * beside ours is not drift); other arrays of objects position by position
 * over the shape's length; arrays of scalars are compared whole.  The
 * top-level apiVersion and kind are skipped (list items lack them).
 */
uint64_t rc_managed_hash(const cJSON *shape, const cJSON *obj);

/* Order-independent hash of a whole JSON value (object keys sorted). */
uint64_t rc_json_hash(const cJSON *v);

/* Shapes built once for hashing observed objects (any spec will do: the
 * set of leaves does not depend on values).  Not thread-safe to create;
 * call rc_shapes_init before starting workers. */
int rc_shapes_init(const struct rc_settings *s);
const cJSON *rc_deployment_shape(void);
const cJSON *rc_service_shape(void);
void rc_shapes_free(void);

#endif
