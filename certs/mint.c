/*
 * mint.c — CA and serving certificate creation.  See mint.h.
 */
#include "mint.h"

#include "issue.h"

#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>

/* Records the failing step so one message names it and GnuTLS's reason. */
#define TRY(what, call)                                                     \
    do {                                                                    \
        rc = (call);                                                        \
        if (rc < 0) {                                                       \
            *step = (what);                                                 \
            goto fail;                                                      \
        }                                                                   \
    } while (0)

/* CN is informational (clients check SANs), so a name too long for it
 * is skipped rather than refused. */
static const char *pick_cn(const struct certs_names *n)
{
    for (size_t i = 0; i < n->dns_count; i++)
        if (strlen(n->dns[i]) <= CERTS_CN_MAX)
            return n->dns[i];
    if (n->ip_count > 0)
        return n->ip_text[0];
    return CERTS_CN_FALLBACK;
}

static int add_sans(gnutls_x509_crt_t crt, const struct certs_names *n,
                    const char **step)
{
    int rc;
    for (size_t i = 0; i < n->dns_count; i++)
        TRY("add DNS SAN",
            gnutls_x509_crt_set_subject_alt_name(
                crt, GNUTLS_SAN_DNSNAME, n->dns[i],
                (unsigned)strlen(n->dns[i]), GNUTLS_FSAN_APPEND));
    for (size_t i = 0; i < n->ip_count; i++)
        TRY("add IP SAN",
            gnutls_x509_crt_set_subject_alt_name(
                crt, GNUTLS_SAN_IPADDRESS, n->ips[i].bytes,
                (unsigned)n->ips[i].len, GNUTLS_FSAN_APPEND));
    return 0;
fail:
    return rc;
}

static int make_leaf(struct certs_keyed *leaf, const struct certs_keyed *ca,
                     const struct certs_names *names, time_t now, int days,
                     const char **step)
{
    int rc = certs_keyed_new_leaf(leaf, pick_cn(names), now, days, step);
    if (rc < 0 || (rc = add_sans(leaf->crt, names, step)) < 0)
        return rc;
    return certs_keyed_sign_leaf(leaf, ca, step);
}

int certs_mint(const struct certs_names *names, int days, time_t now,
               struct certs_minted *out, char *err, size_t errlen)
{
    struct certs_keyed ca = {0}, leaf = {0};
    const char *what = "mint";
    const char **step = &what;
    int rc;
    int ca_days = days > CERTS_CA_DAYS_MIN ? days : CERTS_CA_DAYS_MIN;

    memset(out, 0, sizeof *out);
    if ((rc = certs_keyed_make_ca(&ca, now, ca_days, step)) < 0 ||
        (rc = make_leaf(&leaf, &ca, names, now, days, step)) < 0)
        goto fail;
    TRY("export CA", gnutls_x509_crt_export2(ca.crt, GNUTLS_X509_FMT_PEM,
                                              &out->ca_pem));
    TRY("export certificate",
        gnutls_x509_crt_export2(leaf.crt, GNUTLS_X509_FMT_PEM, &out->cert_pem));
    TRY("export key",
        gnutls_x509_privkey_export2_pkcs8(leaf.key, GNUTLS_X509_FMT_PEM, NULL,
                                          GNUTLS_PKCS_PLAIN, &out->key_pem));
    certs_keyed_free(&ca);
    certs_keyed_free(&leaf);
    return 0;
fail:
    snprintf(err, errlen, "cannot create certificates: %s: %s", what,
             gnutls_strerror(rc));
    certs_keyed_free(&ca);
    certs_keyed_free(&leaf);
    certs_minted_free(out);
    return -1;
}

void certs_minted_free(struct certs_minted *m)
{
    gnutls_free(m->ca_pem.data);
    gnutls_free(m->cert_pem.data);
    if (m->key_pem.data)
        gnutls_memset(m->key_pem.data, 0, m->key_pem.size);
    gnutls_free(m->key_pem.data);
    memset(m, 0, sizeof *m);
}
