/*
 * names.h — checking the names a serving certificate is asked to cover.
 * Internal to certs/.
 */
#ifndef CERTS_NAMES_H
#define CERTS_NAMES_H

#include "certs.h"

#include <stddef.h>

/* An IP SAN as it is encoded in a certificate: 4 or 16 bytes. */
struct certs_ip {
    unsigned char bytes[16];
    size_t len;
};

/* RFC 1123 host name: labels of [A-Za-z0-9-], 1..63 chars, no leading
 * or trailing '-', 1..253 chars in all.  Wildcards are refused: the
 * webhook is reached by its exact Service name, and a wildcard would
 * let any sibling name impersonate it.  Returns 0, or -1 with err. */
int certs_dns_check(const char *name, char *err, size_t errlen);

/* IPv4 or IPv6 literal (inet_pton; no zone id).  Returns 0 or -1. */
int certs_ip_parse(const char *text, struct certs_ip *out, char *err,
                   size_t errlen);

/* The request's names, checked, with the IPs in SAN form. */
struct certs_names {
    const char *const *dns;         /* borrowed from the request */
    size_t dns_count;
    const char *const *ip_text;     /* borrowed from the request */
    struct certs_ip ips[CERTS_NAMES_MAX];
    size_t ip_count;
};

/* Checks the request's name lists (at least one name, bounds, each name
 * well formed).  Returns 0, or -1 with err naming the bad entry. */
int certs_names_parse(const struct certs_request *req, struct certs_names *out,
                      char *err, size_t errlen);

#endif
