/*
 * isvc_rules.h — pure validation of an InferenceService, shared by the
 * validating webhook and the reconciler (which meets objects stored while
 * the webhook was down).  No I/O, no allocation: decoding borrows strings
 * from the caller's JSON tree and errors go into a fixed-size report.
 *
 * Messages use the wording of Kubernetes' own field errors
 * (k8s.io/apimachinery/pkg/util/validation/field) so that kubectl users
 * recognise them:
 *   spec.gpuType: Unsupported value: "T4": supported values: "A100", "H100"
 *   spec.replicas: Invalid value: 100000: must be between 0 and 64
 *   spec.model: Required value
 */
#ifndef ISVC_RULES_H
#define ISVC_RULES_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "isvc_fields.h"

/* Bounds of a report: enough for every field to fail twice over; a report
 * that overflows says so in its last message rather than dropping it. */
#define ISVC_ERRORS_MAX 16
#define ISVC_ERROR_LEN 320
#define ISVC_WARNINGS_MAX 8
/* The API server shows admission warnings of up to 120 characters. */
#define ISVC_WARNING_LEN 120
/* Longest rendering of a bad value inside a message. */
#define ISVC_VALUE_SHOWN_MAX 64

/* Machine-readable reasons, as metav1.CauseType spells them. */
enum isvc_reason {
    ISVC_REASON_REQUIRED,      /* FieldValueRequired     */
    ISVC_REASON_INVALID,       /* FieldValueInvalid      */
    ISVC_REASON_UNSUPPORTED,   /* FieldValueNotSupported */
    ISVC_REASON_TOO_LONG,      /* FieldValueTooLong      */
    ISVC_REASON_TYPE,          /* FieldValueTypeInvalid  */
    ISVC_REASON_COUNT
};

const char *isvc_reason_name(enum isvc_reason r);

struct isvc_error {
    enum isvc_reason reason;
    char field[48];                /* e.g. "spec.replicas" */
    char message[ISVC_ERROR_LEN];  /* full "field: Kind: detail" text */
};

struct isvc_report {
    size_t error_count;
    bool errors_truncated;
    struct isvc_error errors[ISVC_ERRORS_MAX];
    size_t warning_count;
    char warnings[ISVC_WARNINGS_MAX][ISVC_WARNING_LEN + 1];
};

/* A decoded spec.  Strings are borrowed from the JSON tree it came from. */
struct isvc_spec {
    bool has_model, has_replicas, has_gpu_type, has_max_batch_size;
    const char *model;
    size_t model_len;
    long long replicas;
    const char *gpu_type;
    long long max_batch_size;
};

void isvc_report_init(struct isvc_report *rep);

/*
 * Decode `spec` (may be NULL: a missing spec) into out.  Wrong JSON types
 * become FieldValueTypeInvalid errors, unknown keys become warnings.
 * Returns the number of errors added.
 */
size_t isvc_spec_decode(const cJSON *spec, struct isvc_spec *out,
                        struct isvc_report *rep);

/*
 * Check a decoded spec against the rules.  `old` is the stored spec on an
 * UPDATE (NULL on CREATE): a violation in a field whose value did not
 * change becomes a warning instead of an error, as Kubernetes' validation
 * ratcheting does, so tightening a flag never locks existing objects.
 * Returns the number of errors added.
 */
size_t isvc_spec_validate(const struct isvc_rules *rules,
                          const struct isvc_spec *spec,
                          const struct isvc_spec *old,
                          struct isvc_report *rep);

/* Check one replica count (the scale subresource's spec.replicas). */
size_t isvc_replicas_validate(const struct isvc_rules *rules, long long v,
                              struct isvc_report *rep);

/*
 * Check metadata.name (or, when name is empty, generateName) can name the
 * Deployment and Service: a DNS-1035 label of at most 63 characters.
 */
size_t isvc_name_validate(const char *name, const char *generate_name,
                          struct isvc_report *rep);

/*
 * Join the errors into one line: "a; b; c".  Writes at most cap bytes
 * including the terminator.
 */
void isvc_report_join(const struct isvc_report *rep, char *buf, size_t cap);

/* Read a JSON number as an exact integer.  Returns false for fractions,
 * non-finite numbers and values outside long long. */
bool isvc_json_integer(const cJSON *item, long long *out);

#endif
