/*
 * test_crd.c — the CRD generator: valid YAML, driven by the table and the
 * rules in force (a flag that changes a bound changes the description).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "isvc_crd.h"
#include "isvc_fields.h"

static char *render(const struct isvc_rules *rules)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cr_assert_eq(isvc_crd_write(f, rules), 0);
    fclose(f);
    return text;
}

/* Walk the YAML document; return the scalar at a path of mapping keys
 * (NULL-terminated), or NULL. */
static char *yaml_get(const char *text, const char *const *path)
{
    yaml_parser_t p;
    yaml_document_t doc;
    cr_assert(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    cr_assert(yaml_parser_load(&p, &doc), "CRD is not valid YAML: %s", p.problem);
    yaml_node_t *node = yaml_document_get_root_node(&doc);
    for (size_t i = 0; node && path[i]; i++) {
        yaml_node_t *next = NULL;
        if (node->type != YAML_MAPPING_NODE)
            break;
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
            yaml_node_t *k = yaml_document_get_node(&doc, pair->key);
            if (k->type == YAML_SCALAR_NODE &&
                strcmp((char *)k->data.scalar.value, path[i]) == 0) {
                next = yaml_document_get_node(&doc, pair->value);
                break;
            }
        }
        node = next;
    }
    char *out = NULL;
    if (node && node->type == YAML_SCALAR_NODE)
        out = strdup((char *)node->data.scalar.value);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return out;
}

Test(crd, is_yaml_with_expected_identity)
{
    struct isvc_rules rules;
    isvc_rules_init(&rules);
    char *text = render(&rules);
    char *name = yaml_get(text, (const char *[]){ "metadata", "name", NULL });
    cr_expect_str_eq(name, "inferenceservices.ai.example.com");
    char *group = yaml_get(text, (const char *[]){ "spec", "group", NULL });
    cr_expect_str_eq(group, "ai.example.com");
    char *scope = yaml_get(text, (const char *[]){ "spec", "scope", NULL });
    cr_expect_str_eq(scope, "Namespaced");
    cr_expect(strstr(text, "shortNames:\n      - isvc\n") != NULL);
    cr_expect(strstr(text, "specReplicasPath: .spec.replicas") != NULL);
    cr_expect(strstr(text, "statusReplicasPath: .status.replicas") != NULL);
    cr_expect(strstr(text, "labelSelectorPath: .status.selector") != NULL);
    cr_expect(strstr(text, "status: {}") != NULL);
    free(name);
    free(group);
    free(scope);
    free(text);
}

Test(crd, printer_columns_in_order)
{
    struct isvc_rules rules;
    isvc_rules_init(&rules);
    char *text = render(&rules);
    const char *order[] = { "name: Model", "name: GPU", "name: Replicas",
                            "name: Ready", "name: Phase", "name: Endpoint",
                            "name: Age" };
    const char *at = strstr(text, "additionalPrinterColumns:");
    cr_assert_not_null(at);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *next = strstr(at, order[i]);
        cr_assert_not_null(next, "column %s missing or out of order", order[i]);
        at = next;
    }
    free(text);
}

Test(crd, spec_schema_comes_from_the_table)
{
    struct isvc_rules rules;
    isvc_rules_init(&rules);
    char *text = render(&rules);
    const char *base[] = { "spec", "versions", NULL };
    (void)base;
    for (int i = 0; i < ISVC_F_COUNT; i++) {
        char desc[1024], needle[1200];
        isvc_field_describe(&isvc_fields[i], &rules, desc, sizeof(desc));
        snprintf(needle, sizeof(needle), "description: \"%s\"", desc);
        cr_expect(strstr(text, needle) != NULL, "missing description for %s",
                  isvc_fields[i].name);
    }
    cr_expect(strstr(text, "replicas:\n                  type: integer\n"
                           "                  format: int32\n"
                           "                  default: 1\n") != NULL);
    cr_expect(strstr(text, "maxBatchSize:\n                  type: integer\n"
                           "                  format: int32\n"
                           "                  default: 32\n") != NULL);
    cr_expect(strstr(text, "Allowed: A100, H100, L40S.") != NULL);
    cr_expect(strstr(text, "Between 0 and 64. Defaults to 1.") != NULL);
    /* Enforcement stays with the webhook (see isvc_crd.h). */
    cr_expect_null(strstr(text, "maximum:"));
    free(text);
}

Test(crd, follows_rule_flags)
{
    struct isvc_rules rules;
    char err[128];
    isvc_rules_init(&rules);
    cr_assert_eq(isvc_rules_set_gpu_types(&rules, "B200,H200", err, sizeof(err)), 0);
    rules.max[ISVC_F_REPLICAS] = 8;
    rules.default_int[ISVC_F_MAX_BATCH_SIZE] = 16;
    char *text = render(&rules);
    cr_expect(strstr(text, "Allowed: B200, H200.") != NULL);
    cr_expect(strstr(text, "Between 0 and 8. Defaults to 1.") != NULL);
    cr_expect(strstr(text, "default: 16\n") != NULL);
    free(text);
}
