/*
 * wh_mutate.h — the mutating webhook's defaults, as a pure function.
 */
#ifndef WH_MUTATE_H
#define WH_MUTATE_H

#include <cjson/cJSON.h>

#include "isvc_fields.h"
#include "wh_patch.h"

/*
 * Append to patch the operations that default and normalise object:
 * the managed-by label, every defaulted field that is absent, and the
 * canonical spelling of gpuType.  Nothing is added when the object is
 * already in that form, or when it is being deleted.
 * Returns 0, or -1 on allocation failure.
 */
int wh_mutate_isvc(const struct isvc_rules *rules, const cJSON *object,
                   struct wh_patch *patch);

#endif
