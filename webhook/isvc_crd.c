/*
 * isvc_crd.c — CRD YAML generation from the field table.  See isvc_crd.h.
 *
 * Strings are written as JSON-style double-quoted scalars, which YAML
 * reads verbatim, so a description can hold any character safely.
 */
#include "isvc_crd.h"

#include <string.h>

/* Status fields the reconciler writes, described once here. */
struct status_field {
    const char *name;
    const char *type;
    const char *format;
    const char *description;
};

static const struct status_field status_fields[] = {
    { "replicas", "integer", "int32",
      "Pods the Deployment has, for the scale subresource." },
    { "readyReplicas", "integer", "int32", "Pods that are ready to serve." },
    { "endpoint", "string", NULL,
      "In-cluster URL of the model server's Service." },
    { "phase", "string", NULL,
      "Summary for humans: Pending, Progressing, Ready or Failed. "
      "Conditions are the authoritative state." },
    { "selector", "string", NULL,
      "Label selector of the pods, for the scale subresource and HPA." },
    { "observedGeneration", "integer", "int64",
      "The metadata.generation this status was computed from." },
};

/* Printer columns after the spec ones. */
struct column {
    const char *name, *type, *path;
};

static const struct column status_columns[] = {
    { "Ready", "integer", ".status.readyReplicas" },
    { "Phase", "string", ".status.phase" },
    { "Endpoint", "string", ".status.endpoint" },
    { "Age", "date", ".metadata.creationTimestamp" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void put_kv(FILE *out, int indent, const char *key, const char *quoted)
{
    fprintf(out, "%*s%s: ", indent, "", key);
    put_quoted(out, quoted);
    fputc('\n', out);
}

static void write_columns(FILE *out, const struct isvc_rules *rules)
{
    (void)rules;
    fprintf(out, "      additionalPrinterColumns:\n");
    for (int rank = 1; rank <= ISVC_F_COUNT; rank++) {
        for (int i = 0; i < ISVC_F_COUNT; i++) {
            const struct isvc_field *f = &isvc_fields[i];
            if (f->column == NULL || f->column_rank != rank)
                continue;
            fprintf(out, "        - name: %s\n", f->column);
            fprintf(out, "          type: %s\n",
                    f->type == ISVC_T_INTEGER ? "integer" : "string");
            fprintf(out, "          jsonPath: .spec.%s\n", f->name);
        }
    }
    for (size_t i = 0; i < N(status_columns); i++) {
        fprintf(out, "        - name: %s\n", status_columns[i].name);
        fprintf(out, "          type: %s\n", status_columns[i].type);
        fprintf(out, "          jsonPath: %s\n", status_columns[i].path);
    }
}

static void write_spec_schema(FILE *out, const struct isvc_rules *rules)
{
    char desc[1024];
    fprintf(out, "            spec:\n");
    fprintf(out, "              type: object\n");
    put_kv(out, 14, "description",
           "Desired state: which model to serve, on which GPU, how many "
           "replicas. Validated and defaulted by the operator's admission "
           "webhook.");
    fprintf(out, "              properties:\n");
    for (int i = 0; i < ISVC_F_COUNT; i++) {
        const struct isvc_field *f = &isvc_fields[i];
        fprintf(out, "                %s:\n", f->name);
        if (f->type == ISVC_T_INTEGER) {
            fprintf(out, "                  type: integer\n");
            fprintf(out, "                  format: int32\n");
            if (rules->has_default[i])
                fprintf(out, "                  default: %lld\n",
                        rules->default_int[i]);
        } else {
            fprintf(out, "                  type: string\n");
        }
        isvc_field_describe(f, rules, desc, sizeof(desc));
        put_kv(out, 18, "description", desc);
    }
}

static void write_status_schema(FILE *out)
{
    fprintf(out, "            status:\n");
    fprintf(out, "              type: object\n");
    put_kv(out, 14, "description", "Observed state, written by the operator.");
    fprintf(out, "              properties:\n");
    for (size_t i = 0; i < N(status_fields); i++) {
        const struct status_field *s = &status_fields[i];
        fprintf(out, "                %s:\n", s->name);
        fprintf(out, "                  type: %s\n", s->type);
        if (s->format)
            fprintf(out, "                  format: %s\n", s->format);
        put_kv(out, 18, "description", s->description);
    }
    /* metav1.Condition, as the API conventions define it. */
    fputs("                conditions:\n"
          "                  type: array\n"
          "                  description: \"Ready, Progressing and Degraded, "
          "per the Kubernetes API conventions.\"\n"
          "                  x-kubernetes-list-type: map\n"
          "                  x-kubernetes-list-map-keys:\n"
          "                    - type\n"
          "                  items:\n"
          "                    type: object\n"
          "                    required:\n"
          "                      - type\n"
          "                      - status\n"
          "                      - lastTransitionTime\n"
          "                      - reason\n"
          "                      - message\n"
          "                    properties:\n"
          "                      type:\n"
          "                        type: string\n"
          "                      status:\n"
          "                        type: string\n"
          "                        enum:\n"
          "                          - \"True\"\n"
          "                          - \"False\"\n"
          "                          - Unknown\n"
          "                      observedGeneration:\n"
          "                        type: integer\n"
          "                        format: int64\n"
          "                      lastTransitionTime:\n"
          "                        type: string\n"
          "                        format: date-time\n"
          "                      reason:\n"
          "                        type: string\n"
          "                      message:\n"
          "                        type: string\n", out);
}

int isvc_crd_write(FILE *out, const struct isvc_rules *rules)
{
    fputs("# Generated by `inference-operator crd` from the field table in\n"
          "# webhook/isvc_fields.c. Do not edit: change the table and run\n"
          "# `make crd`.\n", out);
    fprintf(out,
            "apiVersion: apiextensions.k8s.io/v1\n"
            "kind: CustomResourceDefinition\n"
            "metadata:\n"
            "  name: %s.%s\n"
            "  labels:\n"
            "    app.kubernetes.io/name: inference-operator\n"
            "spec:\n"
            "  group: %s\n"
            "  scope: Namespaced\n"
            "  names:\n"
            "    kind: %s\n"
            "    listKind: %sList\n"
            "    plural: %s\n"
            "    singular: %s\n"
            "    shortNames:\n"
            "      - %s\n"
            "  versions:\n"
            "    - name: %s\n"
            "      served: true\n"
            "      storage: true\n"
            "      subresources:\n"
            "        status: {}\n"
            "        scale:\n"
            "          specReplicasPath: .spec.replicas\n"
            "          statusReplicasPath: .status.replicas\n"
            "          labelSelectorPath: .status.selector\n",
            ISVC_PLURAL, ISVC_GROUP, ISVC_GROUP, ISVC_KIND, ISVC_KIND,
            ISVC_PLURAL, ISVC_SINGULAR, ISVC_SHORT_NAME, ISVC_VERSION);
    write_columns(out, rules);
    fputs("      schema:\n"
          "        openAPIV3Schema:\n"
          "          type: object\n", out);
    put_kv(out, 10, "description",
           "InferenceService runs a model server on GPUs: a Deployment and a "
           "Service managed by inference-operator.");
    fputs("          properties:\n"
          "            apiVersion:\n"
          "              type: string\n"
          "            kind:\n"
          "              type: string\n"
          "            metadata:\n"
          "              type: object\n", out);
    write_spec_schema(out, rules);
    write_status_schema(out);
    fflush(out);
    return ferror(out) ? -1 : 0;
}
