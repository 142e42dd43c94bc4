/*
 * isvc_fields.c — the InferenceService field table and the runtime rules
 * derived from it.  See isvc_fields.h for who reads it.
 */
#include "isvc_fields.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const struct isvc_field isvc_fields[ISVC_F_COUNT] = {
    [ISVC_F_MODEL] = {
        .id = ISVC_F_MODEL,
        .name = "model",
        .path = "spec.model",
        .type = ISVC_T_STRING,
        .required = true,
        .min = 1,
        .max = 256,
        .extra_chars = "._-/:@+=",
        .no_lead_chars = "-",
        .match = ISVC_MATCH_NONE,
        .description =
            "Model the server loads: a model hub id (org/name), a URI "
            "(s3://, gs://, hf://) or a path.",
        .column = "Model",
        .column_rank = 1,
    },
    [ISVC_F_REPLICAS] = {
        .id = ISVC_F_REPLICAS,
        .name = "replicas",
        .path = "spec.replicas",
        .type = ISVC_T_INTEGER,
        .required = false,
        .min = 0,
        .max = 64,
        .hard_min = 0,
        .hard_max = 100000,
        .has_default = true,
        .default_int = 1,
        .description =
            "Number of model-server pods (the operator's --min-replicas and "
            "--max-replicas set the bounds).",
        .column = "Replicas",
        .column_rank = 3,
    },
    [ISVC_F_GPU_TYPE] = {
        .id = ISVC_F_GPU_TYPE,
        .name = "gpuType",
        .path = "spec.gpuType",
        .type = ISVC_T_STRING,
        .required = true,
        .min = 1,
        .max = ISVC_GPU_TYPE_LEN_MAX,
        .match = ISVC_MATCH_ONE_OF_NOCASE,
        .default_allowed = "A100,H100,L40S",
        .description =
            "GPU model the pods are scheduled on, from the operator's "
            "--gpu-types; matched case-insensitively and stored in its "
            "canonical spelling.",
        .column = "GPU",
        .column_rank = 2,
    },
    [ISVC_F_MAX_BATCH_SIZE] = {
        .id = ISVC_F_MAX_BATCH_SIZE,
        .name = "maxBatchSize",
        .path = "spec.maxBatchSize",
        .type = ISVC_T_INTEGER,
        .required = false,
        .min = 1,
        .max = 4096,
        .hard_min = 1,
        .hard_max = 1048576,
        .has_default = true,
        .default_int = 32,
        .description =
            "Largest batch the model server forms (the operator's "
            "--max-batch-size bounds it, --default-batch-size defaults it).",
        .column = NULL,
    },
};

void isvc_rules_init(struct isvc_rules *rules)
{
    memset(rules, 0, sizeof(*rules));
    for (int i = 0; i < ISVC_F_COUNT; i++) {
        rules->min[i] = isvc_fields[i].min;
        rules->max[i] = isvc_fields[i].max;
        rules->has_default[i] = isvc_fields[i].has_default;
        rules->default_int[i] = isvc_fields[i].default_int;
    }
    char err[128];
    /* The built-in list is valid by construction; a failure here is a
     * programming error caught by the unit tests. */
    (void)isvc_rules_set_gpu_types(rules,
                                   isvc_fields[ISVC_F_GPU_TYPE].default_allowed,
                                   err, sizeof(err));
}

static bool gpu_char_ok(int c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.';
}

int isvc_rules_set_gpu_types(struct isvc_rules *rules, const char *list,
                             char *err, size_t errlen)
{
    char parsed[ISVC_GPU_TYPES_MAX][ISVC_GPU_TYPE_LEN_MAX + 1];
    size_t count = 0;

    if (list == NULL || *list == '\0') {
        snprintf(err, errlen, "--gpu-types: the list is empty; give at least "
                              "one GPU type, e.g. A100,H100,L40S");
        return -1;
    }
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        if (len == 0) {
            snprintf(err, errlen, "--gpu-types: empty entry in \"%s\"", list);
            return -1;
        }
        if (len > ISVC_GPU_TYPE_LEN_MAX) {
            snprintf(err, errlen,
                     "--gpu-types: entry \"%.*s...\" is longer than %d characters",
                     16, p, ISVC_GPU_TYPE_LEN_MAX);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            if (!gpu_char_ok((unsigned char)p[i])) {
                snprintf(err, errlen,
                         "--gpu-types: entry \"%.*s\" has character '%c'; use "
                         "letters, digits, '-', '_' or '.'",
                         (int)len, p, isprint((unsigned char)p[i]) ? p[i] : '?');
                return -1;
            }
        }
        if (count == ISVC_GPU_TYPES_MAX) {
            snprintf(err, errlen, "--gpu-types: more than %d entries",
                     ISVC_GPU_TYPES_MAX);
            return -1;
        }
        memcpy(parsed[count], p, len);
        parsed[count][len] = '\0';
        for (size_t j = 0; j < count; j++) {
            if (strcasecmp(parsed[j], parsed[count]) == 0) {
                snprintf(err, errlen,
                         "--gpu-types: \"%s\" is listed twice (case-insensitively)",
                         parsed[count]);
                return -1;
            }
        }
        count++;
        if (!end)
            break;
        p = end + 1;
    }
    memcpy(rules->gpu_types, parsed, sizeof(parsed));
    rules->gpu_type_count = count;
    return 0;
}

int isvc_rules_check(const struct isvc_rules *rules, char *err, size_t errlen)
{
    for (int i = 0; i < ISVC_F_COUNT; i++) {
        const struct isvc_field *f = &isvc_fields[i];
        if (f->type != ISVC_T_INTEGER)
            continue;
        if (rules->min[i] > rules->max[i]) {
            snprintf(err, errlen,
                     "%s: minimum %lld is greater than maximum %lld; check the "
                     "bound flags", f->path, rules->min[i], rules->max[i]);
            return -1;
        }
        if (rules->min[i] < f->hard_min || rules->max[i] > f->hard_max) {
            snprintf(err, errlen,
                     "%s: bounds [%lld, %lld] fall outside what the operator "
                     "supports [%lld, %lld]", f->path, rules->min[i],
                     rules->max[i], f->hard_min, f->hard_max);
            return -1;
        }
        if (rules->has_default[i] && (rules->default_int[i] < rules->min[i] ||
                                      rules->default_int[i] > rules->max[i])) {
            snprintf(err, errlen,
                     "%s: default %lld is outside [%lld, %lld]; check the "
                     "default and bound flags", f->path, rules->default_int[i],
                     rules->min[i], rules->max[i]);
            return -1;
        }
    }
    if (rules->gpu_type_count == 0) {
        snprintf(err, errlen, "--gpu-types: no GPU type configured");
        return -1;
    }
    return 0;
}

const char *isvc_rules_canonical_gpu(const struct isvc_rules *rules,
                                     const char *s)
{
    for (size_t i = 0; i < rules->gpu_type_count; i++)
        if (strcasecmp(rules->gpu_types[i], s) == 0)
            return rules->gpu_types[i];
    return NULL;
}

/* Append printf-style text to buf at *used, never past cap. */
static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    if (*used >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used += (size_t)n < cap - *used ? (size_t)n : cap - *used - 1;
}

size_t isvc_field_describe(const struct isvc_field *f,
                           const struct isvc_rules *rules,
                           char *buf, size_t cap)
{
    size_t used = 0;
    int i = f->id;

    buf[0] = '\0';
    append(buf, cap, &used, "%s", f->description);
    if (f->type == ISVC_T_INTEGER) {
        append(buf, cap, &used, " Between %lld and %lld.", rules->min[i],
               rules->max[i]);
        if (rules->has_default[i])
            append(buf, cap, &used, " Defaults to %lld.", rules->default_int[i]);
    } else if (f->match == ISVC_MATCH_ONE_OF_NOCASE) {
        append(buf, cap, &used, " Allowed:");
        for (size_t k = 0; k < rules->gpu_type_count; k++)
            append(buf, cap, &used, "%s %s", k ? "," : "", rules->gpu_types[k]);
        append(buf, cap, &used, ".");
    } else {
        append(buf, cap, &used, " %lld to %lld characters: letters, digits "
               "and", f->min, f->max);
        for (const char *c = f->extra_chars; c && *c; c++)
            append(buf, cap, &used, " %c", *c);
        if (f->no_lead_chars && *f->no_lead_chars)
            append(buf, cap, &used, "; may not start with '%s'",
                   f->no_lead_chars);
        append(buf, cap, &used, ".");
    }
    if (f->required)
        append(buf, cap, &used, " Required.");
    return used;
}
