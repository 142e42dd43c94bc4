/*
 * names.c — DNS name and IP literal checks.  See names.h.
 */
#include "names.h"

#include "certs.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-';
}

int certs_dns_check(const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (n == 0 || n > CERTS_DNS_NAME_MAX) {
        snprintf(err, errlen, "DNS name '%.*s' must be 1..%d characters",
                 CERTS_DNS_NAME_MAX, name, CERTS_DNS_NAME_MAX);
        return -1;
    }
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && name[i] != '.') {
            if (!label_char(name[i])) {
                snprintf(err, errlen,
                         "DNS name '%s' has character '%c' (only letters, "
                         "digits, '-' and '.'; no wildcards)", name,
                         name[i]);
                return -1;
            }
            continue;
        }
        size_t len = i - start;
        if (len == 0 || len > CERTS_DNS_LABEL_MAX) {
            snprintf(err, errlen,
                     "DNS name '%s' has an empty label or one longer than "
                     "%d characters", name, CERTS_DNS_LABEL_MAX);
            return -1;
        }
        if (name[start] == '-' || name[i - 1] == '-') {
            snprintf(err, errlen,
                     "DNS name '%s' has a label starting or ending with '-'",
                     name);
            return -1;
        }
        start = i + 1;
    }
    unsigned char scratch[16];
    if (inet_pton(AF_INET, name, scratch) == 1) {
        /* Clients match an IP only against IP SANs. */
        snprintf(err, errlen, "'%s' is an IP address: pass it as an IP, "
                 "not a DNS name", name);
        return -1;
    }
    return 0;
}

int certs_ip_parse(const char *text, struct certs_ip *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->len = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->bytes) == 1) {
        out->len = 16;
        return 0;
    }
    snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", text);
    return -1;
}

int certs_names_parse(const struct certs_request *req, struct certs_names *out,
                      char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (req->dns_count + req->ip_count == 0) {
        snprintf(err, errlen, "at least one DNS name or IP address is "
                 "needed for the serving certificate");
        return -1;
    }
    if (req->dns_count > CERTS_NAMES_MAX || req->ip_count > CERTS_NAMES_MAX) {
        snprintf(err, errlen, "at most %d DNS names and %d IP addresses",
                 CERTS_NAMES_MAX, CERTS_NAMES_MAX);
        return -1;
    }
    for (size_t i = 0; i < req->dns_count; i++) {
        if (req->dns[i] == NULL) {
            snprintf(err, errlen, "DNS name %zu is missing", i + 1);
            return -1;
        }
        if (certs_dns_check(req->dns[i], err, errlen) != 0)
            return -1;
    }
    for (size_t i = 0; i < req->ip_count; i++) {
        if (req->ips[i] == NULL) {
            snprintf(err, errlen, "IP address %zu is missing", i + 1);
            return -1;
        }
        if (certs_ip_parse(req->ips[i], &out->ips[i], err, errlen) != 0)
            return -1;
    }
    out->dns = req->dns;
    out->dns_count = req->dns_count;
    out->ip_text = req->ips;
    out->ip_count = req->ip_count;
    return 0;
}
