/*
 * isvc_crd.h — the InferenceService CustomResourceDefinition, generated
 * from the field table (`inference-operator crd`).
 *
 * What the schema holds, and what it deliberately leaves to the webhook:
 * the schema gives every field its type, default and description (the
 * description states the bounds and allowed values in force).  It does not
 * repeat the bounds as minimum/maximum/enum/required: the API server runs
 * schema validation *before* validating webhooks, so a schema enum would
 * answer first with its own single-field error, the user would never see
 * the webhook's complete list of violations, and the rules could no longer
 * be changed by the operator's flags without a CRD upgrade.
 */
#ifndef ISVC_CRD_H
#define ISVC_CRD_H

#include <stdio.h>

#include "isvc_fields.h"

/* Write the CRD as YAML.  Returns 0, or -1 if writing failed. */
int isvc_crd_write(FILE *out, const struct isvc_rules *rules);

#endif
