/*
 * isvc_fields.h — the one table of InferenceService spec fields.
 *
 * Every fact about a spec field (its JSON name, type, whether it is
 * required, its bounds, its allowed values, its default and the sentence
 * that describes it) is declared once, in isvc_fields.c.  Three consumers
 * read it and nothing else:
 *   - the validating webhook and the reconciler (isvc_rules.c),
 *   - the mutating webhook's defaulting (wh_mutate.c),
 *   - the CRD generator behind `inference-operator crd` (isvc_crd.c).
 *
 * Bounds and allowed values can be changed at start-up by flags; those
 * runtime values live in a struct isvc_rules that is initialised from this
 * table, so a flag never makes the table and the rules disagree silently.
 */
#ifndef ISVC_FIELDS_H
#define ISVC_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#define ISVC_GROUP "ai.example.com"
#define ISVC_VERSION "v1"
#define ISVC_KIND "InferenceService"
#define ISVC_PLURAL "inferenceservices"
#define ISVC_SINGULAR "inferenceservice"
#define ISVC_SHORT_NAME "isvc"
#define ISVC_API_VERSION ISVC_GROUP "/" ISVC_VERSION

/* The label the mutating webhook adds to every InferenceService. */
#define ISVC_MANAGED_BY_KEY "app.kubernetes.io/managed-by"
#define ISVC_MANAGED_BY_VALUE "inference-operator"

/* Kubernetes object names that become Service names must be DNS-1035
 * labels: at most 63 characters.  generateName gets 5 random characters. */
#define ISVC_NAME_MAX 63
#define ISVC_GENERATED_SUFFIX_LEN 5

/* Upper bound on the number of allowed GPU types a flag may configure. */
#define ISVC_GPU_TYPES_MAX 32
/* Longest GPU type name accepted from a flag. */
#define ISVC_GPU_TYPE_LEN_MAX 32

enum isvc_field_id {
    ISVC_F_MODEL,
    ISVC_F_REPLICAS,
    ISVC_F_GPU_TYPE,
    ISVC_F_MAX_BATCH_SIZE,
    ISVC_F_COUNT
};

enum isvc_type { ISVC_T_STRING, ISVC_T_INTEGER };

/* How a string field's allowed values are matched. */
enum isvc_match {
    ISVC_MATCH_NONE,             /* any value within the charset/length */
    ISVC_MATCH_ONE_OF_NOCASE,    /* one of the allowed list, any case   */
};

struct isvc_field {
    enum isvc_field_id id;
    const char *name;        /* JSON name under .spec               */
    const char *path;        /* field path as users see it          */
    enum isvc_type type;
    bool required;
    /* For integers: value bounds.  For strings: length bounds.  Flags may
     * move integer bounds, but never past hard_min/hard_max. */
    long long min, max;
    long long hard_min, hard_max;
    /* Strings: characters allowed besides ASCII letters and digits, and
     * those that may not come first (a leading '-' would turn a model
     * name into a flag of the model server). */
    const char *extra_chars;
    const char *no_lead_chars;
    enum isvc_match match;
    const char *default_allowed;  /* comma-separated, for ONE_OF lists */
    bool has_default;
    long long default_int;
    const char *description;
    /* Printer column header for `kubectl get` (NULL for none) and its
     * position among the spec columns. */
    const char *column;
    int column_rank;
};

extern const struct isvc_field isvc_fields[ISVC_F_COUNT];

/* Runtime rules: the table's bounds, possibly overridden by flags. */
struct isvc_rules {
    long long min[ISVC_F_COUNT];
    long long max[ISVC_F_COUNT];
    bool has_default[ISVC_F_COUNT];
    long long default_int[ISVC_F_COUNT];
    size_t gpu_type_count;
    char gpu_types[ISVC_GPU_TYPES_MAX][ISVC_GPU_TYPE_LEN_MAX + 1];
};

/* Fill rules with the table's built-in values. Cannot fail. */
void isvc_rules_init(struct isvc_rules *rules);

/*
 * Replace the allowed GPU types from a comma-separated list such as
 * "A100,H100,L40S".  Returns 0, or -1 with a message in err for an empty
 * list, an empty or over-long entry, a bad character, a duplicate, or too
 * many entries.  On error rules is unchanged.
 */
int isvc_rules_set_gpu_types(struct isvc_rules *rules, const char *list,
                             char *err, size_t errlen);

/*
 * Check the rules are coherent (min <= max, default within bounds).
 * Returns 0, or -1 with a message naming the flags to fix.
 */
int isvc_rules_check(const struct isvc_rules *rules, char *err, size_t errlen);

/* Canonical spelling of gpu type s (case-insensitive match), or NULL. */
const char *isvc_rules_canonical_gpu(const struct isvc_rules *rules,
                                     const char *s);

/*
 * Write the field's full description: the table's sentence followed by
 * the bounds, default and allowed values in force.  Used by the CRD
 * generator so `kubectl explain` states the rules the webhook enforces.
 * Returns the length written (truncated to fit cap).
 */
size_t isvc_field_describe(const struct isvc_field *f,
                           const struct isvc_rules *rules,
                           char *buf, size_t cap);

#endif
