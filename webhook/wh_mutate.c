/*
 * wh_mutate.c — defaults and normalisation of an InferenceService, as a
 * JSON Patch.  Driven by the field table: every field with a default is
 * defaulted, every ONE_OF_NOCASE field is put in its canonical spelling.
 *
 * Idempotent by construction: each op is emitted only when the object
 * differs from what the op would produce, so applying the patch and
 * mutating again yields no patch.
 */
#include "wh_mutate.h"

#include <ctype.h>
#include <string.h>

/* Canonical spelling of a GPU type, ignoring surrounding blanks. */
static const char *canonical_gpu(const struct isvc_rules *rules, const char *s)
{
    char trimmed[ISVC_GPU_TYPE_LEN_MAX + 1];
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 0 || len > ISVC_GPU_TYPE_LEN_MAX)
        return NULL;
    memcpy(trimmed, s, len);
    trimmed[len] = '\0';
    return isvc_rules_canonical_gpu(rules, trimmed);
}

/* The managed-by label as a JSON object member list: {"key":"value"}. */
static int label_object(struct wh_json *j)
{
    wh_json_lit(j, "{");
    wh_json_string(j, ISVC_MANAGED_BY_KEY);
    wh_json_lit(j, ":");
    wh_json_string(j, ISVC_MANAGED_BY_VALUE);
    return wh_json_lit(j, "}");
}

/* Add value_json (written by the caller into j) at path; frees j. */
static int add_written(struct wh_patch *patch, const char *path,
                       struct wh_json *j, int written)
{
    int rc = -1;
    if (written == 0 && !j->failed)
        rc = wh_patch_add_json(patch, "add", path, j->data, j->len);
    wh_json_free(j);
    return rc;
}

static int label_ops(const cJSON *object, struct wh_patch *patch)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(object, "metadata");
    if (meta != NULL && !cJSON_IsObject(meta))
        return 0;   /* not ours to repair; the API server rejects it */
    const cJSON *labels = meta ? cJSON_GetObjectItemCaseSensitive(meta, "labels")
                               : NULL;
    if (meta == NULL) {
        struct wh_json j = { 0 };
        wh_json_lit(&j, "{\"labels\":");
        label_object(&j);
        return add_written(patch, "/metadata", &j, wh_json_lit(&j, "}"));
    }
    if (labels == NULL || cJSON_IsNull(labels)) {
        struct wh_json j = { 0 };
        return add_written(patch, "/metadata/labels", &j, label_object(&j));
    }
    if (!cJSON_IsObject(labels))
        return 0;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(labels,
                                                        ISVC_MANAGED_BY_KEY);
    if (cJSON_IsString(cur) && strcmp(cur->valuestring, ISVC_MANAGED_BY_VALUE) == 0)
        return 0;
    static const char prefix[] = "/metadata/labels/";
    char path[WH_POINTER_MAX];
    memcpy(path, prefix, sizeof(prefix));
    if (wh_pointer_escape(ISVC_MANAGED_BY_KEY, path + sizeof(prefix) - 1,
                          sizeof(path) - (sizeof(prefix) - 1)) != 0)
        return -1;
    /* "add" on an existing member replaces it (RFC 6902 4.1). */
    return wh_patch_add_string(patch, "add", path, ISVC_MANAGED_BY_VALUE);
}

/* Defaults for a spec that is absent altogether: one "add /spec". */
static int whole_spec_op(const struct isvc_rules *rules, struct wh_patch *patch)
{
    struct wh_json j = { 0 };
    const char *sep = "{";
    for (int i = 0; i < ISVC_F_COUNT; i++) {
        if (!rules->has_default[i])
            continue;
        wh_json_lit(&j, sep);
        wh_json_string(&j, isvc_fields[i].name);
        wh_json_lit(&j, ":");
        wh_json_int(&j, rules->default_int[i]);
        sep = ",";
    }
    if (sep[0] == '{')
        wh_json_lit(&j, "{");   /* no field has a default: an empty spec */
    return add_written(patch, "/spec", &j, wh_json_lit(&j, "}"));
}

static int spec_ops(const struct isvc_rules *rules, const cJSON *object,
                    struct wh_patch *patch)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(object, "spec");
    if (spec == NULL || cJSON_IsNull(spec))
        return whole_spec_op(rules, patch);
    if (!cJSON_IsObject(spec))
        return 0;   /* the validating webhook denies it */

    for (int i = 0; i < ISVC_F_COUNT; i++) {
        const struct isvc_field *f = &isvc_fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, f->name);
        static const char prefix[] = "/spec/";
        char path[WH_POINTER_MAX];
        size_t name_len = strlen(f->name);
        if (name_len >= sizeof(path) - (sizeof(prefix) - 1))
            return -1;   /* the table's names are short: cannot happen */
        memcpy(path, prefix, sizeof(prefix) - 1);
        memcpy(path + sizeof(prefix) - 1, f->name, name_len + 1);

        if ((v == NULL || cJSON_IsNull(v)) && rules->has_default[i]) {
            if (wh_patch_add_int(patch, "add", path, rules->default_int[i]))
                return -1;
            continue;
        }
        if (f->match == ISVC_MATCH_ONE_OF_NOCASE && cJSON_IsString(v)) {
            const char *canon = canonical_gpu(rules, v->valuestring);
            if (canon && strcmp(canon, v->valuestring) != 0 &&
                wh_patch_add_string(patch, "replace", path, canon))
                return -1;
        }
    }
    return 0;
}

int wh_mutate_isvc(const struct isvc_rules *rules, const cJSON *object,
                   struct wh_patch *patch)
{
    if (object == NULL || !cJSON_IsObject(object))
        return 0;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(object, "metadata");
    if (cJSON_IsObject(meta) &&
        cJSON_GetObjectItemCaseSensitive(meta, "deletionTimestamp") != NULL)
        return 0;   /* being deleted: leave it exactly as it is */
    if (label_ops(object, patch) != 0)
        return -1;
    return spec_ops(rules, object, patch);
}
