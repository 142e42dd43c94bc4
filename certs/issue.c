/*
 * issue.c — X.509 building blocks shared by mint.c and bootstrap_x509.c.
 * See issue.h.
 */
#include "issue.h"

#include "certs.h"
#include "mint.h"

#include <gnutls/crypto.h>
#include <string.h>

/* Records the failing step so one message names it and GnuTLS's reason. */
#define TRY(what, call)                                                     \
    do {                                                                    \
        rc = (call);                                                        \
        if (rc < 0) {                                                       \
            *step = (what);                                                 \
            return rc;                                                      \
        }                                                                   \
    } while (0)

void certs_keyed_free(struct certs_keyed *k)
{
    if (k->signer)
        gnutls_privkey_deinit(k->signer);
    if (k->key)
        gnutls_x509_privkey_deinit(k->key);
    if (k->crt)
        gnutls_x509_crt_deinit(k->crt);
    memset(k, 0, sizeof *k);
}

int certs_keyed_signer(struct certs_keyed *k, const char **step)
{
    int rc;
    TRY("init signer", gnutls_privkey_init(&k->signer));
    TRY("import signer", gnutls_privkey_import_x509(k->signer, k->key, 0));
    return 0;
}

/* Fresh key, serial, validity, subject and subject key id: what a CA and
 * a leaf share. */
static int keyed_new(struct certs_keyed *k, const char *cn, time_t now,
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
    if ((rc = certs_keyed_signer(k, step)) < 0)
        return rc;
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
            k->crt, now + (time_t)days * CERTS_SECONDS_PER_DAY));
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
}

int certs_keyed_make_ca(struct certs_keyed *ca, time_t now, int days,
                        const char **step)
{
    int rc = keyed_new(ca, CERTS_CA_CN, now, days, step);
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
}

int certs_keyed_new_leaf(struct certs_keyed *leaf, const char *cn, time_t now,
                         int days, const char **step)
{
    int rc = keyed_new(leaf, cn, now, days, step);
    if (rc < 0)
        return rc;
    TRY("set leaf basicConstraints",
        gnutls_x509_crt_set_basic_constraints(leaf->crt, 0, -1));
    TRY("set leaf keyUsage",
        gnutls_x509_crt_set_key_usage(leaf->crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
    TRY("set extKeyUsage",
        gnutls_x509_crt_set_key_purpose_oid(leaf->crt, GNUTLS_KP_TLS_WWW_SERVER,
                                            0));
    return 0;
}

int certs_keyed_sign_leaf(struct certs_keyed *leaf, const struct certs_keyed *ca,
                          const char **step)
{
    unsigned char kid[CERTS_KEY_ID_MAX];
    size_t kid_len = sizeof kid;
    unsigned critical = 0;
    int rc;
    if (gnutls_x509_crt_get_subject_key_id(ca->crt, kid, &kid_len,
                                           &critical) >= 0)
        TRY("set authority key id",
            gnutls_x509_crt_set_authority_key_id(leaf->crt, kid, kid_len));
    TRY("sign leaf",
        gnutls_x509_crt_privkey_sign(leaf->crt, ca->crt, ca->signer,
                                     GNUTLS_DIG_SHA256, 0));
    return 0;
}
