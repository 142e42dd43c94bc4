/*
 * certs.h — self-signed serving certificates for the webhook server.
 *
 * The operator needs a CA bundle it can hand to the API server and a
 * serving pair signed by it.  certs_generate() makes both, and is safe
 * to run on every start: a valid set that covers the requested names is
 * kept byte for byte, so the caBundle already registered stays right.
 */
#ifndef CERTS_H
#define CERTS_H

#include <stdbool.h>
#include <stddef.h>

#define CERTS_CA_FILE   "ca.crt"
#define CERTS_CERT_FILE "tls.crt"
#define CERTS_KEY_FILE  "tls.key"

/* A PEM bigger than this is not a certificate we made or should trust. */
#define CERTS_PEM_MAX (1024 * 1024)

#define CERTS_DAYS_MIN 1
#define CERTS_DAYS_MAX 36500
/* The CA outlives the serving cert so a leaf-only renewal elsewhere does
 * not force a new caBundle; it never expires before its leaf. */
#define CERTS_CA_DAYS_MIN 3650
/* Clocks in a cluster disagree; backdate so a fresh cert is usable. */
#define CERTS_SKEW_SECONDS (5 * 60)
/* A kept set must stay valid at least this long, else it is replaced. */
#define CERTS_RENEW_MARGIN_SECONDS (24 * 60 * 60)

#define CERTS_NAMES_MAX 64          /* per kind: DNS names, IPs */
#define CERTS_DNS_NAME_MAX 253
#define CERTS_DNS_LABEL_MAX 63
/* RFC 5280 ub-common-name: a longer first name is left out of the CN. */
#define CERTS_CN_MAX 64
#define CERTS_CA_CN "inference-operator-ca"
#define CERTS_CN_FALLBACK "inference-operator"

struct certs_request {
    const char *out_dir;          /* created 0700 (with parents) if missing */
    const char *const *dns;       /* RFC 1123 host names; no wildcards,   */
    size_t dns_count;             /*   no trailing dot                    */
    const char *const *ips;       /* IPv4 or IPv6 literals (no zone id)   */
    size_t ip_count;              /* dns_count + ip_count >= 1            */
    int days;                     /* serving cert validity, [1, 36500]    */
    bool force;                   /* replace even a valid covering set    */
};

enum certs_outcome { CERTS_CREATED, CERTS_KEPT };

/*
 * Writes OUT_DIR/ca.crt, tls.crt (leaf only) and tls.key (PKCS#8 PEM,
 * mode 0600), each atomically (temp file, fsync, rename, fsync dir).
 *
 * Without force: a valid set (parses, key matches, chains to ca.crt,
 * neither cert expiring within CERTS_RENEW_MARGIN_SECONDS) that covers
 * every requested name is kept (CERTS_KEPT, nothing touched); a valid
 * set missing a name is an error asking for --force; a missing, partial
 * or invalid set is replaced (CERTS_CREATED).  With force: always new.
 *
 * The CA (ECDSA P-256, CN=inference-operator-ca) is valid for
 * max(days, CERTS_CA_DAYS_MIN) days; the leaf (ECDSA P-256, CN = first
 * name of at most CERTS_CN_MAX chars, SANs = all names) for days.
 *
 * Returns 0 and sets *outcome, or -1 with a message in err.
 */
int certs_generate(const struct certs_request *req,
                   enum certs_outcome *outcome, char *err, size_t errlen);

#endif
