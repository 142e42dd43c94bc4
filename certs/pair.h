/*
 * pair.h — a checked serving certificate chain and its private key.
 *
 * A pair is immutable once loaded: it keeps the files' bytes (so a
 * re-read can tell "unchanged" with a memcmp), each certificate's DER
 * and the key's DER, from which every TLS handshake gets its own copy.
 */
#ifndef CERTS_PAIR_H
#define CERTS_PAIR_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Leaf plus intermediates; more is a misconfigured bundle. */
#define CERTS_CHAIN_MAX 16
#define CERTS_SUMMARY_MAX 512

struct certs_pair;

/*
 * Parses a PEM chain (leaf first) and a PEM private key (PKCS#8, SEC1 or
 * PKCS#1, unencrypted) and checks: 1..CERTS_CHAIN_MAX certificates, the
 * key belongs to the first certificate, and the first certificate is
 * valid now (not before its notBefore, not expired).
 * Returns 0 and *out (free with certs_pair_free), or -1 with err.
 */
int certs_pair_load_files(const char *cert_path, const char *key_path,
                          struct certs_pair **out, char *err, size_t errlen);

/* The same on bytes already read; paths only label messages. */
int certs_pair_load_mem(const unsigned char *cert_pem, size_t cert_len,
                        const unsigned char *key_pem, size_t key_len,
                        const char *cert_label, const char *key_label,
                        struct certs_pair **out, char *err, size_t errlen);

void certs_pair_free(struct certs_pair *p);

/* True if the pair was loaded from exactly these bytes. */
bool certs_pair_same_bytes(const struct certs_pair *p,
                           const unsigned char *cert_pem, size_t cert_len,
                           const unsigned char *key_pem, size_t key_len);

size_t certs_pair_chain_len(const struct certs_pair *p);
/* DER of certificate i (0 = leaf), owned by the pair. */
const gnutls_datum_t *certs_pair_cert_der(const struct certs_pair *p,
                                          size_t i);
/* "CN=..., expires 2026-01-01T00:00:00Z": for reload reports. */
const char *certs_pair_summary(const struct certs_pair *p);
time_t certs_pair_not_after(const struct certs_pair *p);

/*
 * Fresh GnuTLS objects for one handshake: *certs is a gnutls_malloc'd
 * array of *n pcerts, *key a new privkey; all of it is the caller's (the
 * retrieve callback hands it to GnuTLS with GNUTLS_CERT_RETR_DEINIT_ALL).
 * Returns 0, or a negative GnuTLS error with nothing allocated.
 */
int certs_pair_handshake_copy(const struct certs_pair *p,
                              gnutls_pcert_st **certs, unsigned *n,
                              gnutls_privkey_t *key);

#endif
