/*
 * commands.h — the subcommands of the one binary, and the rule flags
 * that `serve` and `crd` share (so the CRD can be generated for the same
 * rules the webhook enforces).
 */
#ifndef COMMANDS_H
#define COMMANDS_H

#include "cli.h"
#include "isvc_fields.h"

int cmd_serve(int argc, char **argv);
int cmd_certs(int argc, char **argv);
int cmd_crd(int argc, char **argv);

int rule_flag_gpu_types(void *rules, const char *value, char *err,
                        size_t errlen);

#define RULE_FLAGS(r)                                                          \
    { "gpu-types", CLI_FUNC, (r), "LIST",                                      \
      "allowed GPU types, comma-separated (default A100,H100,L40S)", 0, 0,     \
      rule_flag_gpu_types },                                                   \
    { "min-replicas", CLI_LLONG, &(r)->min[ISVC_F_REPLICAS], "N",              \
      "smallest spec.replicas allowed (default 0)", 0, 100000, NULL },         \
    { "max-replicas", CLI_LLONG, &(r)->max[ISVC_F_REPLICAS], "N",              \
      "largest spec.replicas allowed (default 64)", 0, 100000, NULL },         \
    { "default-replicas", CLI_LLONG, &(r)->default_int[ISVC_F_REPLICAS], "N",  \
      "spec.replicas when absent (default 1)", 0, 100000, NULL },              \
    { "max-batch-size", CLI_LLONG, &(r)->max[ISVC_F_MAX_BATCH_SIZE], "N",      \
      "largest spec.maxBatchSize allowed (default 4096)", 1, 1048576, NULL },  \
    { "default-batch-size", CLI_LLONG,                                         \
      &(r)->default_int[ISVC_F_MAX_BATCH_SIZE], "N",                           \
      "spec.maxBatchSize when absent (default 32)", 1, 1048576, NULL }

#endif
