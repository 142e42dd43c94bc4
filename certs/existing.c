/*
 * existing.c — is the set on disk worth keeping?  See existing.h.
 */
#include "existing.h"

#include "fileio.h"
#include "pair.h"

#include <gnutls/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SAN_MAX 512

static bool san_has(gnutls_x509_crt_t crt, unsigned type, const void *want,
                    size_t want_len)
{
    for (unsigned seq = 0;; seq++) {
        unsigned char buf[SAN_MAX];
        size_t len = sizeof buf;
        int t = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &len, NULL);
        if (t == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue;   /* longer than any name we accept */
        if (t < 0)
            return false;
        if ((unsigned)t != type || len != want_len)
            continue;
        if (type == GNUTLS_SAN_DNSNAME
                ? strncasecmp((const char *)buf, want, len) == 0
                : memcmp(buf, want, len) == 0)
            return true;
    }
}

static enum certs_set_state coverage(gnutls_x509_crt_t leaf,
                                     const struct certs_names *n, char *why,
                                     size_t whylen)
{
    for (size_t i = 0; i < n->dns_count; i++) {
        if (!san_has(leaf, GNUTLS_SAN_DNSNAME, n->dns[i], strlen(n->dns[i]))) {
            snprintf(why, whylen, "DNS name %s", n->dns[i]);
            return CERTS_SET_UNCOVERED;
        }
    }
    for (size_t i = 0; i < n->ip_count; i++) {
        if (!san_has(leaf, GNUTLS_SAN_IPADDRESS, n->ips[i].bytes,
                     n->ips[i].len)) {
            snprintf(why, whylen, "IP address %s", n->ip_text[i]);
            return CERTS_SET_UNCOVERED;
        }
    }
    return CERTS_SET_VALID;
}

static bool expiring(gnutls_x509_crt_t crt, time_t now, const char *what,
                     char *why, size_t whylen)
{
    time_t na = gnutls_x509_crt_get_expiration_time(crt);
    if (na != (time_t)-1 && na - now > CERTS_RENEW_MARGIN_SECONDS)
        return false;
    snprintf(why, whylen, "%s expires within %d seconds", what,
             CERTS_RENEW_MARGIN_SECONDS);
    return true;
}

/* With the pair already checked, the CA must vouch for the leaf and
 * neither may be about to expire. */
static enum certs_set_state judge(const gnutls_datum_t *ca_pem,
                                  const struct certs_pair *pair,
                                  const struct certs_names *names, time_t now,
                                  char *why, size_t whylen)
{
    gnutls_x509_crt_t ca = NULL, leaf = NULL;
    enum certs_set_state st = CERTS_SET_INVALID;
    unsigned status = 0;
    int rc;
    if ((rc = gnutls_x509_crt_init(&ca)) < 0 ||
        (rc = gnutls_x509_crt_init(&leaf)) < 0 ||
        (rc = gnutls_x509_crt_import(ca, ca_pem, GNUTLS_X509_FMT_PEM)) < 0 ||
        (rc = gnutls_x509_crt_import(leaf, certs_pair_cert_der(pair, 0),
                                     GNUTLS_X509_FMT_DER)) < 0) {
        snprintf(why, whylen, "%s: %s", CERTS_CA_FILE, gnutls_strerror(rc));
        goto done;
    }
    rc = gnutls_x509_crt_verify(leaf, &ca, 1, 0, &status);
    if (rc < 0 || status != 0) {
        snprintf(why, whylen, "%s does not verify against %s", CERTS_CERT_FILE,
                 CERTS_CA_FILE);
        goto done;
    }
    if (expiring(leaf, now, CERTS_CERT_FILE, why, whylen) ||
        expiring(ca, now, CERTS_CA_FILE, why, whylen))
        goto done;
    st = coverage(leaf, names, why, whylen);
done:
    if (leaf)
        gnutls_x509_crt_deinit(leaf);
    if (ca)
        gnutls_x509_crt_deinit(ca);
    return st;
}

enum certs_set_state certs_set_examine(const char *dir,
                                       const struct certs_names *names,
                                       time_t now, char *why, size_t whylen)
{
    char ca_path[CERTS_PATH_MAX], crt_path[CERTS_PATH_MAX];
    char key_path[CERTS_PATH_MAX];
    unsigned char *ca = NULL;
    size_t ca_len = 0;
    struct certs_pair *pair = NULL;
    enum certs_set_state st = CERTS_SET_INVALID;

    if (certs_path_join(ca_path, sizeof ca_path, dir, CERTS_CA_FILE, why,
                        whylen) != 0 ||
        certs_path_join(crt_path, sizeof crt_path, dir, CERTS_CERT_FILE, why,
                        whylen) != 0 ||
        certs_path_join(key_path, sizeof key_path, dir, CERTS_KEY_FILE, why,
                        whylen) != 0 ||
        certs_file_read(ca_path, CERTS_PEM_MAX, &ca, &ca_len, why, whylen) != 0 ||
        certs_pair_load_files(crt_path, key_path, &pair, why, whylen) != 0)
        goto done;
    gnutls_datum_t ca_pem = {ca, (unsigned)ca_len};
    st = judge(&ca_pem, pair, names, now, why, whylen);
done:
    certs_pair_free(pair);
    free(ca);
    return st;
}
