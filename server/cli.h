/*
 * cli.h — table-driven flags with environment fallback.
 *
 * Each subcommand declares its flags once; every flag --some-name can also
 * be set with INFERENCE_OPERATOR_SOME_NAME, as operators in containers are
 * configured.  A flag on the command line wins over the environment, which
 * wins over the default.  --help is generated from the same table.
 */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_ENV_PREFIX "INFERENCE_OPERATOR_"

enum cli_type {
    CLI_STRING,   /* const char **target                       */
    CLI_UINT,     /* unsigned *target, within [min, max]        */
    CLI_LLONG,    /* long long *target, within [min, max]       */
    CLI_BOOL,     /* bool *target; "--x" or "--x=true|false"    */
    CLI_FUNC,     /* fn(arg, value, err, errlen) parses it      */
};

typedef int (*cli_setter)(void *arg, const char *value, char *err,
                          size_t errlen);

struct cli_opt {
    const char *name;       /* without the leading "--"           */
    enum cli_type type;
    void *target;
    const char *metavar;    /* e.g. "ADDR:PORT"                    */
    const char *help;
    long long min, max;     /* numeric bounds                      */
    cli_setter fn;          /* CLI_FUNC only                       */
};

struct cli_command {
    const char *name;       /* "serve"                            */
    const char *summary;
    const struct cli_opt *opts;
    size_t count;
};

/*
 * Apply the environment, then argv (argv[0] is the subcommand).
 * Returns 0 to go on, 1 when --help was printed, -1 on error (message in
 * err, naming the flag or variable and what it accepts).
 */
int cli_parse(const struct cli_command *cmd, int argc, char **argv,
              char *err, size_t errlen);

void cli_usage(const struct cli_command *cmd, FILE *out);

/* The environment variable that backs a flag name. */
void cli_env_name(const char *flag, char *out, size_t cap);

#endif
