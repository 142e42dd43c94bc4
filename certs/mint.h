/*
 * mint.h — making a CA and a serving certificate with GnuTLS.
 * Internal to certs/.
 */
#ifndef CERTS_MINT_H
#define CERTS_MINT_H

#include "names.h"

#include <gnutls/gnutls.h>
#include <time.h>

#define CERTS_SERIAL_BYTES 16
#define CERTS_KEY_ID_MAX 64

/* PEM bytes of a fresh set, each owned here (gnutls_malloc'd). */
struct certs_minted {
    gnutls_datum_t ca_pem;
    gnutls_datum_t cert_pem;   /* the leaf only */
    gnutls_datum_t key_pem;    /* PKCS#8, unencrypted; wiped on free */
};

/* Mints a CA and a leaf for names, valid from now - CERTS_SKEW_SECONDS
 * to now + days (the CA to now + max(days, CERTS_CA_DAYS_MIN)).
 * Returns 0 (free *out with certs_minted_free), or -1 with err. */
int certs_mint(const struct certs_names *names, int days, time_t now,
               struct certs_minted *out, char *err, size_t errlen);

void certs_minted_free(struct certs_minted *m);

#endif
