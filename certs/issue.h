/*
 * issue.h — the X.509 building blocks both certificate makers share:
 * `certs` (mint.c, a CA whose key is thrown away) and the self-signed
 * bootstrap (bootstrap_x509.c, a CA whose key is kept in a Secret).
 * Internal to certs/.
 *
 * One place decides the key type (ECDSA P-256), the serial, the validity
 * window (CERTS_SKEW_SECONDS back-dated), the CA and leaf extensions and
 * the signature digest, so the two makers cannot drift apart.
 *
 * Every function returns a GnuTLS error code (< 0) and sets *step to the
 * failing step, so the caller's one message names what failed and why.
 */
#ifndef CERTS_ISSUE_H
#define CERTS_ISSUE_H

#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <time.h>

#define CERTS_SECONDS_PER_DAY 86400

/* A certificate with its own key; owns all three handles. */
struct certs_keyed {
    gnutls_x509_privkey_t key;
    gnutls_privkey_t signer;        /* borrows key */
    gnutls_x509_crt_t crt;
};

void certs_keyed_free(struct certs_keyed *k);

/* k->key already set (e.g. a stored CA key): make k->signer from it. */
int certs_keyed_signer(struct certs_keyed *k, const char **step);

/* A self-signed CA (basicConstraints CA, keyCertSign|cRLSign), subject
 * CN=CERTS_CA_CN, valid for days. */
int certs_keyed_make_ca(struct certs_keyed *ca, time_t now, int days,
                        const char **step);

/* A serving leaf, not yet signed: fresh key, subject cn, basicConstraints
 * not-CA, digitalSignature, serverAuth.  The caller adds the SANs, then
 * calls certs_keyed_sign_leaf(). */
int certs_keyed_new_leaf(struct certs_keyed *leaf, const char *cn, time_t now,
                         int days, const char **step);

/* Signs leaf with ca; sets the authority key id when the CA has a subject
 * key id (a CA made elsewhere may lack one). */
int certs_keyed_sign_leaf(struct certs_keyed *leaf, const struct certs_keyed *ca,
                          const char **step);

#endif
