/*
 * mint.c — CA and serving certificate creation.  See mint.h.
 */
#include "mint.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>

#define SECONDS_PER_DAY 86400

/* Records the failing step so one message names it and GnuTLS's reason. */
#define TRY(what, call)                                                     \
    do {                                                                    \
        rc = (call);                                                        \
        if (rc < 0) {                                                       \
            *step = (what);                                                 \
            goto fail;                                                      \
        }                                                                   \
    } while (0)

struct keyed_crt {
    gnutls_x509_privkey_t key;
    gnutls_privkey_t signer;    /* borrows key */
    gnutls_x509_crt_t crt;
};

static void keyed_crt_free(struct keyed_crt *k)
{
    if (k->signer)
        gnutls_privkey_deinit(k->signer);
    if (k->key)
        gnutls_x509_privkey_deinit(k->key);
    if (k->crt)
        gnutls_x509_crt_deinit(k->crt);
    memset(k, 0, sizeof *k);
}

/* Key, serial, validity, subject and subject key id: what a CA and a
 * leaf share. */
static int keyed_crt_init(struct keyed_crt *k, const char *cn, time_t now,
                          int days, const char **step)
{
    int rc;
    unsigned char serial[CERTS_SERIAL_BYTES];
    unsigned char kid[CERTS_KEY_ID_MAX];
    size_t kid_len = sizeof kid;

    memset(k, 0, sizeof *k);
    TRY("init key", gnutls_x509_privkey_init(&k->key));
    TRY("generate ECDSA P-256 key",
        gnutls_x509_privkey_generate(
            k->key, GNUTLS_PK_ECDSA,
            GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
    TRY("init signer", gnutls_privkey_init(&k->signer));
    TRY("import signer", gnutls_privkey_import_x509(k->signer, k->key, 0));
    TRY("init certificate", gnutls_x509_crt_init(&k->crt));
    TRY("set version", gnutls_x509_crt_set_version(k->crt, 3));
    TRY("draw serial", gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial));
    /* Positive, and a non-zero first byte keeps all 16 bytes in DER. */
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01);
    TRY("set serial", gnutls_x509_crt_set_serial(k->crt, serial, sizeof serial));
    TRY("set notBefore",
        gnutls_x509_crt_set_activation_time(k->crt, now - CERTS_SKEW_SECONDS));
    TRY("set notAfter",
        gnutls_x509_crt_set_expiration_time(
            k->crt, now + (time_t)days * SECONDS_PER_DAY));
    TRY("set subject",
        gnutls_x509_crt_set_dn_by_oid(k->crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                      cn, (unsigned)strlen(cn)));
    TRY("set public key", gnutls_x509_crt_set_key(k->crt, k->key));
    TRY("compute key id",
        gnutls_x509_crt_get_key_id(k->crt, GNUTLS_KEYID_USE_SHA1, kid,
                                   &kid_len));
    TRY("set subject key id",
        gnutls_x509_crt_set_subject_key_id(k->crt, kid, kid_len));
    return 0;
fail:
    return rc;
}

static int make_ca(struct keyed_crt *ca, time_t now, int days,
                   const char **step)
{
    int rc = keyed_crt_init(ca, CERTS_CA_CN, now,
                            days > CERTS_CA_DAYS_MIN ? days : CERTS_CA_DAYS_MIN,
                            step);
    if (rc < 0)
        return rc;
    TRY("set CA basicConstraints",
        gnutls_x509_crt_set_basic_constraints(ca->crt, 1, -1));
    TRY("set CA keyUsage",
        gnutls_x509_crt_set_key_usage(ca->crt, GNUTLS_KEY_KEY_CERT_SIGN |
                                                   GNUTLS_KEY_CRL_SIGN));
    TRY("self-sign CA",
        gnutls_x509_crt_privkey_sign(ca->crt, ca->crt, ca->signer,
                                     GNUTLS_DIG_SHA256, 0));
    return 0;
fail:
    return rc;
}

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

static int make_leaf(struct keyed_crt *leaf, const struct keyed_crt *ca,
                     const struct certs_names *names, time_t now, int days,
                     const char **step)
{
    unsigned char kid[CERTS_KEY_ID_MAX];
    size_t kid_len = sizeof kid;
    unsigned critical = 0;
    int rc = keyed_crt_init(leaf, pick_cn(names), now, days, step);
    if (rc < 0)
        return rc;
    TRY("set leaf basicConstraints",
        gnutls_x509_crt_set_basic_constraints(leaf->crt, 0, -1));
    TRY("set leaf keyUsage",
        gnutls_x509_crt_set_key_usage(leaf->crt,
                                      GNUTLS_KEY_DIGITAL_SIGNATURE));
    TRY("set extKeyUsage",
        gnutls_x509_crt_set_key_purpose_oid(leaf->crt,
                                            GNUTLS_KP_TLS_WWW_SERVER, 0));
    rc = add_sans(leaf->crt, names, step);
    if (rc < 0)
        return rc;
    TRY("read CA key id",
        gnutls_x509_crt_get_subject_key_id(ca->crt, kid, &kid_len, &critical));
    TRY("set authority key id",
        gnutls_x509_crt_set_authority_key_id(leaf->crt, kid, kid_len));
    TRY("sign leaf",
        gnutls_x509_crt_privkey_sign(leaf->crt, ca->crt, ca->signer,
                                     GNUTLS_DIG_SHA256, 0));
    return 0;
fail:
    return rc;
}

int certs_mint(const struct certs_names *names, int days, time_t now,
               struct certs_minted *out, char *err, size_t errlen)
{
    struct keyed_crt ca = {0}, leaf = {0};
    const char *what = "mint";
    const char **step = &what;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = make_ca(&ca, now, days, step)) < 0 ||
        (rc = make_leaf(&leaf, &ca, names, now, days, step)) < 0)
        goto fail;
    TRY("export CA", gnutls_x509_crt_export2(ca.crt, GNUTLS_X509_FMT_PEM,
                                              &out->ca_pem));
    TRY("export certificate",
        gnutls_x509_crt_export2(leaf.crt, GNUTLS_X509_FMT_PEM, &out->cert_pem));
    TRY("export key",
        gnutls_x509_privkey_export2_pkcs8(leaf.key, GNUTLS_X509_FMT_PEM, NULL,
                                          GNUTLS_PKCS_PLAIN, &out->key_pem));
    keyed_crt_free(&ca);
    keyed_crt_free(&leaf);
    return 0;
fail:
    snprintf(err, errlen, "cannot create certificates: %s: %s", what,
             gnutls_strerror(rc));
    keyed_crt_free(&ca);
    keyed_crt_free(&leaf);
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
