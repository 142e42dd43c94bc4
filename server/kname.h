/*
 * kname.h — whether a string may be a Kubernetes object name of the DNS
 * kinds: an RFC 1123 label (namespaces, Services) or subdomain (Secrets,
 * Leases, webhook configurations).  One check for the certificate
 * bootstrap, leader election and the kubeconfig's namespaces, so they
 * cannot disagree about what a name is.
 */
#ifndef SRV_KNAME_H
#define SRV_KNAME_H

#include <stdbool.h>
#include <stddef.h>

#define KNAME_LABEL_MAX 63
#define KNAME_SUBDOMAIN_MAX 253

/*
 * True if s is 1..max lowercase alphanumerics and '-' (and '.' when dots),
 * alphanumeric at both ends: a name the API accepts and a URL path needs
 * no escaping for.  The labels between dots are not checked one by one
 * ("a..b" passes); the API server still refuses those.  NULL is not a name.
 */
bool kname_valid(const char *s, size_t max, bool dots);

#endif
