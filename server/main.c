/*
 * main.c — inference-operator: one binary, a few subcommands.
 *
 *   serve   the HTTPS server: admission webhook (+ reconciler, later)
 *   certs   create a CA and a serving certificate
 *   crd     print the InferenceService CustomResourceDefinition
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "commands.h"

static void usage(FILE *out)
{
    fprintf(out,
            "inference-operator %s — Kubernetes operator for InferenceService "
            "(ai.example.com/v1)\n\n"
            "Usage: inference-operator COMMAND [flags]\n\n"
            "Commands:\n"
            "  serve   run the HTTPS server (admission webhook)\n"
            "  certs   create a CA and a serving certificate for the webhook\n"
            "  crd     print the InferenceService CRD (YAML)\n\n"
            "  --version  print the version\n"
            "  --help     this text; COMMAND --help for a command's flags\n\n"
            "Every flag can also be set through the environment: --some-flag "
            "is INFERENCE_OPERATOR_SOME_FLAG.\n",
            IO_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("inference-operator %s\n", IO_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0) {
        srv_alloc_reexec(argv);   /* returns when there is nothing to do */
        return cmd_serve(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "certs") == 0)
        return cmd_certs(argc - 1, argv + 1);
    if (strcmp(cmd, "crd") == 0)
        return cmd_crd(argc - 1, argv + 1);
    fprintf(stderr, "inference-operator: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
