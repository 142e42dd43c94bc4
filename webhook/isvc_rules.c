/*
 * isvc_rules.c — decode and validate an InferenceService spec against the
 * field table and the runtime rules.  See isvc_rules.h.
 */
#include "isvc_rules.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const reason_names[ISVC_REASON_COUNT] = {
    [ISVC_REASON_REQUIRED] = "FieldValueRequired",
    [ISVC_REASON_INVALID] = "FieldValueInvalid",
    [ISVC_REASON_UNSUPPORTED] = "FieldValueNotSupported",
    [ISVC_REASON_TOO_LONG] = "FieldValueTooLong",
    [ISVC_REASON_TYPE] = "FieldValueTypeInvalid",
};

const char *isvc_reason_name(enum isvc_reason r)
{
    return (r >= 0 && r < ISVC_REASON_COUNT) ? reason_names[r] : "Unknown";
}

void isvc_report_init(struct isvc_report *rep)
{
    rep->error_count = 0;
    rep->errors_truncated = false;
    rep->warning_count = 0;
}

static void add_error(struct isvc_report *rep, enum isvc_reason reason,
                      const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_error(struct isvc_report *rep, enum isvc_reason reason,
                      const char *field, const char *fmt, ...)
{
    if (rep->error_count == ISVC_ERRORS_MAX) {
        rep->errors_truncated = true;
        return;
    }
    struct isvc_error *e = &rep->errors[rep->error_count++];
    e->reason = reason;
    snprintf(e->field, sizeof(e->field), "%s", field);
    int n = snprintf(e->message, sizeof(e->message), "%s: ", field);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(e->message))
        vsnprintf(e->message + n, sizeof(e->message) - (size_t)n, fmt, ap);
    va_end(ap);
}

static void add_warning(struct isvc_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_warning(struct isvc_report *rep, const char *fmt, ...)
{
    if (rep->warning_count == ISVC_WARNINGS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->warnings[rep->warning_count++], ISVC_WARNING_LEN + 1, fmt, ap);
    va_end(ap);
}

/*
 * Render a string as a Go %q would, at most ISVC_VALUE_SHOWN_MAX source
 * bytes, so that a 5 MB hostile value makes a short message.
 */
static void quote(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    size_t shown = len > ISVC_VALUE_SHOWN_MAX ? ISVC_VALUE_SHOWN_MAX : len;

    if (cap < 8) {
        if (cap)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < shown && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        }
    }
    if (shown < len && o + 5 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* Show any JSON value briefly, for type errors. */
static void show_json(char *out, size_t cap, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        quote(out, cap, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsNumber(v)) {
        snprintf(out, cap, "%.17g", v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        snprintf(out, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNull(v)) {
        snprintf(out, cap, "null");
    } else if (cJSON_IsArray(v)) {
        snprintf(out, cap, "[array]");
    } else {
        snprintf(out, cap, "{object}");
    }
}

bool isvc_json_integer(const cJSON *item, long long *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    /* 2^63 is exactly representable; anything at or past it overflows. */
    if (!isfinite(d) || d != floor(d) || d >= 9223372036854775808.0 ||
        d < -9223372036854775808.0)
        return false;
    *out = (long long)d;
    return true;
}

static const char *json_type_name(enum isvc_type t)
{
    return t == ISVC_T_INTEGER ? "integer" : "string";
}

size_t isvc_spec_decode(const cJSON *spec, struct isvc_spec *out,
                        struct isvc_report *rep)
{
    size_t before = rep->error_count;
    char shown[ISVC_VALUE_SHOWN_MAX * 4 + 8];

    memset(out, 0, sizeof(*out));
    if (spec == NULL || cJSON_IsNull(spec))
        return 0;
    if (!cJSON_IsObject(spec)) {
        show_json(shown, sizeof(shown), spec);
        add_error(rep, ISVC_REASON_TYPE, "spec",
                  "Invalid value: %s: must be an object", shown);
        return rep->error_count - before;
    }
    for (const cJSON *item = spec->child; item; item = item->next) {
        const struct isvc_field *f = NULL;
        for (int i = 0; i < ISVC_F_COUNT; i++) {
            if (item->string && strcmp(item->string, isvc_fields[i].name) == 0) {
                f = &isvc_fields[i];
                break;
            }
        }
        if (f == NULL) {
            char key[ISVC_VALUE_SHOWN_MAX * 4 + 8];
            const char *k = item->string ? item->string : "";
            quote(key, sizeof(key), k, strlen(k));
            add_warning(rep, "spec: unknown field %s, ignored", key);
            continue;
        }
        if (cJSON_IsNull(item))
            continue;   /* explicit null means "not set" in Kubernetes */
        bool ok = false;
        switch (f->id) {
        case ISVC_F_MODEL:
            if ((ok = cJSON_IsString(item))) {
                out->has_model = true;
                out->model = item->valuestring;
                out->model_len = strlen(item->valuestring);
            }
            break;
        case ISVC_F_GPU_TYPE:
            if ((ok = cJSON_IsString(item))) {
                out->has_gpu_type = true;
                out->gpu_type = item->valuestring;
            }
            break;
        case ISVC_F_REPLICAS:
            if ((ok = isvc_json_integer(item, &out->replicas)))
                out->has_replicas = true;
            break;
        case ISVC_F_MAX_BATCH_SIZE:
            if ((ok = isvc_json_integer(item, &out->max_batch_size)))
                out->has_max_batch_size = true;
            break;
        case ISVC_F_COUNT:
            break;
        }
        if (!ok) {
            show_json(shown, sizeof(shown), item);
            add_error(rep, ISVC_REASON_TYPE, f->path,
                      "Invalid value: %s: must be of type %s", shown,
                      json_type_name(f->type));
        }
    }
    return rep->error_count - before;
}

static bool model_char_ok(const struct isvc_field *f, unsigned char c, bool lead)
{
    if (isalnum(c))
        return true;
    if (c == '\0' || strchr(f->extra_chars, c) == NULL)
        return false;
    return !(lead && strchr(f->no_lead_chars, c) != NULL);
}

/* A rule that failed: an error on CREATE or when the value changed, a
 * warning when an UPDATE leaves the offending value as it was. */
struct verdict {
    struct isvc_report *rep;
    bool unchanged;
};

static void model_rules(struct verdict *v, const struct isvc_spec *s)
{
    const struct isvc_field *f = &isvc_fields[ISVC_F_MODEL];
    char shown[ISVC_VALUE_SHOWN_MAX * 4 + 8];

    if (!s->has_model || s->model_len == 0) {
        add_error(v->rep, ISVC_REASON_REQUIRED, f->path, "Required value");
        return;
    }
    if ((long long)s->model_len > f->max) {
        if (v->unchanged)
            add_warning(v->rep, "%s: longer than %lld characters (unchanged, "
                        "allowed)", f->path, f->max);
        else
            add_error(v->rep, ISVC_REASON_TOO_LONG, f->path,
                      "Too long: may not be more than %lld characters", f->max);
        return;
    }
    for (size_t i = 0; i < s->model_len; i++) {
        if (!model_char_ok(f, (unsigned char)s->model[i], i == 0)) {
            quote(shown, sizeof(shown), s->model, s->model_len);
            if (v->unchanged) {
                add_warning(v->rep, "%s: invalid characters (unchanged, "
                            "allowed)", f->path);
                return;
            }
            char allowed[64];
            size_t o = 0;
            for (const char *c = f->extra_chars; *c && o + 6 < sizeof(allowed); c++)
                o += (size_t)snprintf(allowed + o, sizeof(allowed) - o,
                                      "%s'%c'", o ? ", " : "", *c);
            add_error(v->rep, ISVC_REASON_INVALID, f->path,
                      "Invalid value: %s: must consist of letters, digits and "
                      "%s, and may not start with '%s'", shown, allowed,
                      f->no_lead_chars);
            return;
        }
    }
}

static void int_rule(struct verdict *v, const struct isvc_rules *rules,
                     enum isvc_field_id id, bool present, long long value)
{
    const struct isvc_field *f = &isvc_fields[id];
    if (!present) {
        if (f->required)
            add_error(v->rep, ISVC_REASON_REQUIRED, f->path, "Required value");
        return;
    }
    if (value >= rules->min[id] && value <= rules->max[id])
        return;
    if (v->unchanged)
        add_warning(v->rep, "%s: %lld is outside [%lld, %lld] (unchanged, "
                    "allowed)", f->path, value, rules->min[id], rules->max[id]);
    else
        add_error(v->rep, ISVC_REASON_INVALID, f->path,
                  "Invalid value: %lld: must be between %lld and %lld", value,
                  rules->min[id], rules->max[id]);
}

static void gpu_rule(struct verdict *v, const struct isvc_rules *rules,
                     const struct isvc_spec *s)
{
    const struct isvc_field *f = &isvc_fields[ISVC_F_GPU_TYPE];
    if (!s->has_gpu_type || s->gpu_type[0] == '\0') {
        add_error(v->rep, ISVC_REASON_REQUIRED, f->path, "Required value");
        return;
    }
    if (isvc_rules_canonical_gpu(rules, s->gpu_type) != NULL)
        return;
    char shown[ISVC_VALUE_SHOWN_MAX * 4 + 8];
    quote(shown, sizeof(shown), s->gpu_type, strlen(s->gpu_type));
    if (v->unchanged) {
        add_warning(v->rep, "%s: %s is no longer supported (unchanged, "
                    "allowed)", f->path, shown);
        return;
    }
    char list[ISVC_GPU_TYPES_MAX * (ISVC_GPU_TYPE_LEN_MAX + 4)];
    size_t o = 0;
    for (size_t i = 0; i < rules->gpu_type_count && o < sizeof(list); i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s\"%s\"",
                              i ? ", " : "", rules->gpu_types[i]);
    add_error(v->rep, ISVC_REASON_UNSUPPORTED, f->path,
              "Unsupported value: %s: supported values: %s", shown, list);
}

static bool same_str(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

size_t isvc_spec_validate(const struct isvc_rules *rules,
                          const struct isvc_spec *spec,
                          const struct isvc_spec *old,
                          struct isvc_report *rep)
{
    size_t before = rep->error_count;
    struct verdict v = { .rep = rep };

    v.unchanged = old && old->has_model && spec->has_model &&
                  old->model_len == spec->model_len &&
                  same_str(old->model, spec->model);
    model_rules(&v, spec);

    v.unchanged = old && old->has_replicas && spec->has_replicas &&
                  old->replicas == spec->replicas;
    int_rule(&v, rules, ISVC_F_REPLICAS, spec->has_replicas, spec->replicas);

    v.unchanged = old && old->has_gpu_type && spec->has_gpu_type &&
                  same_str(old->gpu_type, spec->gpu_type);
    gpu_rule(&v, rules, spec);

    v.unchanged = old && old->has_max_batch_size && spec->has_max_batch_size &&
                  old->max_batch_size == spec->max_batch_size;
    int_rule(&v, rules, ISVC_F_MAX_BATCH_SIZE, spec->has_max_batch_size,
             spec->max_batch_size);
    return rep->error_count - before;
}

size_t isvc_replicas_validate(const struct isvc_rules *rules, long long value,
                              struct isvc_report *rep)
{
    size_t before = rep->error_count;
    struct verdict v = { .rep = rep };
    int_rule(&v, rules, ISVC_F_REPLICAS, true, value);
    return rep->error_count - before;
}

static bool dns1035_prefix_ok(const char *s, size_t len, bool full_label)
{
    if (len == 0)
        return !full_label;
    if (!(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    /* A full label may not end in '-'; a generateName prefix may, since
     * the random suffix follows it. */
    return !full_label || s[len - 1] != '-';
}

size_t isvc_name_validate(const char *name, const char *generate_name,
                          struct isvc_report *rep)
{
    size_t before = rep->error_count;
    char shown[ISVC_VALUE_SHOWN_MAX * 4 + 8];
    static const char dns1035[] =
        "a DNS-1035 label must consist of lower case alphanumeric characters "
        "or '-', start with an alphabetic character, and end with an "
        "alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for "
        "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

    if (name && *name) {
        size_t len = strlen(name);
        quote(shown, sizeof(shown), name, len);
        if (len > ISVC_NAME_MAX)
            add_error(rep, ISVC_REASON_INVALID, "metadata.name",
                      "Invalid value: %s: must be no more than %d characters "
                      "(it names the Deployment and Service)", shown,
                      ISVC_NAME_MAX);
        else if (!dns1035_prefix_ok(name, len, true))
            add_error(rep, ISVC_REASON_INVALID, "metadata.name",
                      "Invalid value: %s: %s", shown, dns1035);
    } else if (generate_name && *generate_name) {
        size_t len = strlen(generate_name);
        quote(shown, sizeof(shown), generate_name, len);
        if (len > ISVC_NAME_MAX - ISVC_GENERATED_SUFFIX_LEN)
            add_error(rep, ISVC_REASON_INVALID, "metadata.generateName",
                      "Invalid value: %s: must be no more than %d characters",
                      shown, ISVC_NAME_MAX - ISVC_GENERATED_SUFFIX_LEN);
        else if (!dns1035_prefix_ok(generate_name, len, false))
            add_error(rep, ISVC_REASON_INVALID, "metadata.generateName",
                      "Invalid value: %s: %s", shown, dns1035);
    }
    return rep->error_count - before;
}

void isvc_report_join(const struct isvc_report *rep, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < rep->error_count && o + 1 < cap; i++) {
        int n = snprintf(buf + o, cap - o, "%s%s", i ? "; " : "",
                         rep->errors[i].message);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    if (rep->errors_truncated && o + 1 < cap)
        snprintf(buf + o, cap - o, "; (more errors not shown)");
}
