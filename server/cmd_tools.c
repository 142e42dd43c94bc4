/*
 * cmd_tools.c — the two offline subcommands: `certs` and `crd`.
 */
#include <stdio.h>
#include <string.h>

#include "certs.h"
#include "cli.h"
#include "commands.h"
#include "isvc_crd.h"

/* Room for the text of every --dns/--ip value. */
#define CERTS_LIST_MAX 4096

struct name_list {
    char storage[CERTS_LIST_MAX];
    const char *items[CERTS_NAMES_MAX];
    size_t count;
};

/* Split "a,b,c" into the list (appending, so the flag may repeat). */
static int add_names(void *arg, const char *value, char *err, size_t errlen)
{
    struct name_list *l = arg;
    size_t used = 0;
    for (size_t i = 0; i < l->count; i++)
        used += strlen(l->items[i]) + 1;
    size_t len = strlen(value);
    if (used + len + 1 > sizeof(l->storage)) {
        snprintf(err, errlen, "list too long");
        return -1;
    }
    char *copy = l->storage + used;
    memcpy(copy, value, len + 1);
    for (char *tok = copy; tok && *tok;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        if (*tok) {
            if (l->count == CERTS_NAMES_MAX) {
                snprintf(err, errlen, "more than %d names", CERTS_NAMES_MAX);
                return -1;
            }
            l->items[l->count++] = tok;
        }
        tok = comma ? comma + 1 : NULL;
    }
    return 0;
}

int cmd_certs(int argc, char **argv)
{
    const char *out_dir = NULL;
    struct name_list dns = { .count = 0 }, ips = { .count = 0 };
    unsigned days = 365;
    bool force = false;
    const struct cli_opt opts[] = {
        { "out", CLI_STRING, &out_dir, "DIR",
          "directory to write ca.crt, tls.crt and tls.key into (required)", 0, 0,
          NULL },
        { "dns", CLI_FUNC, &dns, "NAME[,NAME...]",
          "DNS names the serving certificate is valid for", 0, 0, add_names },
        { "ip", CLI_FUNC, &ips, "IP[,IP...]",
          "IP addresses the serving certificate is valid for", 0, 0, add_names },
        { "days", CLI_UINT, &days, "N",
          "validity of the serving certificate in days (default 365)", 1, 36500,
          NULL },
        { "force", CLI_BOOL, &force, NULL,
          "replace an existing valid set", 0, 0, NULL },
    };
    const struct cli_command cmd = {
        "certs",
        "Create a CA and a serving certificate signed by it (ECDSA P-256).\n"
        "An existing valid set for the same names is kept unless --force.",
        opts, sizeof(opts) / sizeof(opts[0]),
    };
    char err[512];
    int rc = cli_parse(&cmd, argc, argv, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "inference-operator certs: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    if (out_dir == NULL || *out_dir == '\0') {
        fprintf(stderr, "inference-operator certs: --out DIR is required\n");
        return 2;
    }
    if (dns.count + ips.count == 0) {
        fprintf(stderr, "inference-operator certs: give at least one --dns or "
                "--ip name for the certificate\n");
        return 2;
    }
    struct certs_request req = {
        .out_dir = out_dir, .dns = dns.items, .dns_count = dns.count,
        .ips = ips.items, .ip_count = ips.count, .days = (int)days,
        .force = force,
    };
    enum certs_outcome outcome;
    if (certs_generate(&req, &outcome, err, sizeof(err)) != 0) {
        fprintf(stderr, "inference-operator certs: %s\n", err);
        return 1;
    }
    printf("%s %s/ca.crt, %s/tls.crt, %s/tls.key\n",
           outcome == CERTS_KEPT ? "kept valid existing" : "wrote", out_dir,
           out_dir, out_dir);
    return 0;
}

int cmd_crd(int argc, char **argv)
{
    struct isvc_rules rules;
    isvc_rules_init(&rules);
    const struct cli_opt opts[] = { RULE_FLAGS(&rules) };
    const struct cli_command cmd = {
        "crd",
        "Print the InferenceService CustomResourceDefinition for the given "
        "rules\n(the same rule flags as `serve`, so descriptions and defaults "
        "match).",
        opts, sizeof(opts) / sizeof(opts[0]),
    };
    char err[512];
    int rc = cli_parse(&cmd, argc, argv, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "inference-operator crd: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    if (isvc_rules_check(&rules, err, sizeof(err)) != 0) {
        fprintf(stderr, "inference-operator crd: %s\n", err);
        return 2;
    }
    if (isvc_crd_write(stdout, &rules) != 0) {
        fprintf(stderr, "inference-operator crd: writing to stdout failed\n");
        return 1;
    }
    return 0;
}
