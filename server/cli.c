/*
 * cli.c — flag and environment parsing.  See cli.h.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cli_env_name(const char *flag, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "%s", CLI_ENV_PREFIX);
    for (const char *c = flag; *c && o + 1 < cap; c++)
        out[o++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
    if (o < cap)
        out[o] = '\0';
}

static int parse_bool(const char *v, bool *out)
{
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
        strcasecmp(v, "yes") == 0) {
        *out = true;
        return 0;
    }
    if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
        strcasecmp(v, "no") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

/* Apply one value; `source` names where it came from for the message. */
static int apply(const struct cli_opt *o, const char *value, const char *source,
                 char *err, size_t errlen)
{
    char *end;
    switch (o->type) {
    case CLI_STRING:
        *(const char **)o->target = value;
        return 0;
    case CLI_BOOL:
        if (parse_bool(value, (bool *)o->target) == 0)
            return 0;
        snprintf(err, errlen, "%s: \"%s\" is not a boolean (true or false)",
                 source, value);
        return -1;
    case CLI_UINT:
    case CLI_LLONG: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: \"%s\" is not an integer between %lld "
                     "and %lld", source, value, o->min, o->max);
            return -1;
        }
        if (o->type == CLI_UINT)
            *(unsigned *)o->target = (unsigned)v;
        else
            *(long long *)o->target = v;
        return 0;
    }
    case CLI_FUNC: {
        char inner[256];
        if (o->fn(o->target, value, inner, sizeof(inner)) == 0)
            return 0;
        snprintf(err, errlen, "%s: %s", source, inner);
        return -1;
    }
    }
    return -1;
}

static const struct cli_opt *find(const struct cli_command *cmd,
                                  const char *name, size_t len)
{
    for (size_t i = 0; i < cmd->count; i++)
        if (strlen(cmd->opts[i].name) == len &&
            strncmp(cmd->opts[i].name, name, len) == 0)
            return &cmd->opts[i];
    return NULL;
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv,
              char *err, size_t errlen)
{
    for (size_t i = 0; i < cmd->count; i++) {
        char env[128], source[160];
        cli_env_name(cmd->opts[i].name, env, sizeof(env));
        const char *v = getenv(env);
        if (v == NULL)
            continue;
        snprintf(source, sizeof(source), "$%s", env);
        if (apply(&cmd->opts[i], v, source, err, errlen) != 0)
            return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cli_usage(cmd, stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "%s: unexpected argument \"%s\" (flags start "
                     "with --; see %s --help)", cmd->name, arg, cmd->name);
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct cli_opt *o = find(cmd, name, len);
        if (o == NULL) {
            snprintf(err, errlen, "%s: unknown flag --%.*s (see %s --help)",
                     cmd->name, (int)len, name, cmd->name);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL) {
            if (o->type == CLI_BOOL) {
                value = "true";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                snprintf(err, errlen, "--%s needs a value (%s)", o->name,
                         o->metavar ? o->metavar : "see --help");
                return -1;
            }
        }
        char source[96];
        snprintf(source, sizeof(source), "--%s", o->name);
        if (apply(o, value, source, err, errlen) != 0)
            return -1;
    }
    return 0;
}

void cli_usage(const struct cli_command *cmd, FILE *out)
{
    fprintf(out, "Usage: inference-operator %s [flags]\n\n%s\n\nFlags:\n",
            cmd->name, cmd->summary);
    for (size_t i = 0; i < cmd->count; i++) {
        const struct cli_opt *o = &cmd->opts[i];
        char left[64], env[128];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        cli_env_name(o->name, env, sizeof(env));
        fprintf(out, "  %-30s %s\n  %-30s (env %s)\n", left, o->help, "", env);
    }
    fprintf(out, "  %-30s %s\n", "--help", "show this help");
}
