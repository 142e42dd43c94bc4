/*
 * store.h — the serving certificate of the HTTPS server, rotated without
 * a restart.
 *
 * The store holds the current pair (DIR/tls.crt + DIR/tls.key) and a
 * watcher thread that re-reads both files after inotify events (100 ms
 * debounce) and every interval_ms.  Identical bytes are a no-op; changed
 * bytes are parsed and checked (pair.h) and either swapped in or refused,
 * in which case the old pair keeps serving.
 *
 * Handshakes: certs_store_retrieve() (MHD_OPTION_HTTPS_CERT_CALLBACK2)
 * takes a reference on the current pair under a mutex held only for a
 * pointer copy, builds fresh GnuTLS objects from the pair's DER and
 * returns them with GNUTLS_CERT_RETR_DEINIT_ALL.  With that flag GnuTLS
 * 3.7 (lib/auth/cert.c, _gnutls_selected_certs_deinit, run from
 * gnutls_deinit() or when a session selects again) calls
 * gnutls_pcert_deinit() on each pcert, gnutls_free() on the array (hence
 * gnutls_malloc) and gnutls_privkey_deinit() on the key (which, imported
 * with gnutls_privkey_import_x509_raw, owns its x509 key).  So nothing a
 * session holds is shared with the store, and a swap frees the old pair
 * as soon as its last reference (a callback mid-copy) drops.
 * Cost: ~30 us per handshake for an ECDSA P-256 leaf (cert parse ~26 us,
 * key ~4 us); a loopback TLS 1.3 handshake (both ends, one process) took
 * ~735 us through the callback against ~710 us with static credentials.
 * The copies live as long as the connection: a few KiB each.
 */
#ifndef CERTS_STORE_H
#define CERTS_STORE_H

#include "pair.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

/* controller-runtime's certwatcher re-reads every 10 s as well. */
#define CERTS_INTERVAL_DEFAULT_MS 10000
#define CERTS_INTERVAL_MIN_MS 100u
#define CERTS_INTERVAL_MAX_MS (24u * 60 * 60 * 1000)

/*
 * Called after each check that saw file contents differ from the pair
 * being served: ok=true after a swap (detail: the new certificate's
 * subject and expiry), ok=false when refused (detail: why; reported once
 * per distinct bad content, not on every re-read).  Never called when
 * nothing changed.  Runs on the thread that did the check (the watcher,
 * or the caller of certs_store_reload_now) with the store's check lock
 * held: it must not call certs_store_reload_now or certs_store_close.
 */
typedef void (*certs_reload_fn)(void *arg, bool ok, const char *detail);

struct certs_store;

/* Loads DIR/tls.crt and DIR/tls.key (an error if invalid) and starts the
 * watcher.  interval_ms: 0 means CERTS_INTERVAL_DEFAULT_MS, else within
 * [CERTS_INTERVAL_MIN_MS, CERTS_INTERVAL_MAX_MS].  fn may be NULL.
 * Returns 0 and *out, or -1 with err. */
int certs_store_open(const char *dir, unsigned interval_ms, certs_reload_fn fn,
                     void *arg, struct certs_store **out, char *err,
                     size_t errlen);

/* Stops the watcher (eventfd wake-up, join) and frees everything.
 * Uninstall it and stop the HTTPS server first.  NULL is a no-op. */
void certs_store_close(struct certs_store *s);

/* Successful swaps since open (for tests and metrics). */
unsigned long certs_store_generation(const struct certs_store *s);

/* Re-checks the files now, synchronously (tests, SIGHUP).  Returns 0 if
 * swapped or unchanged, -1 with err if the files are refused (the old
 * pair keeps serving). */
int certs_store_reload_now(struct certs_store *s, char *err, size_t errlen);

/* A malloc'd copy of the current leaf's DER (caller frees).  Returns 0,
 * or -1 with err. */
int certs_store_current_der(struct certs_store *s, unsigned char **der,
                            size_t *len, char *err, size_t errlen);

/* Per-handshake copies of the current pair (see pair.h); what
 * certs_store_retrieve hands to GnuTLS.  Returns 0 or a GnuTLS error. */
int certs_store_handshake_copy(struct certs_store *s, gnutls_pcert_st **certs,
                               unsigned *n, gnutls_privkey_t *key);

/* gnutls_certificate_retrieve_function3 for MHD_OPTION_HTTPS_CERT_CALLBACK2.
 * MHD passes no user pointer, so it serves the store installed below (one
 * HTTPS server per process).  Returns -1 (handshake fails) when none is
 * installed. */
int certs_store_retrieve(gnutls_session_t session,
                         const struct gnutls_cert_retr_st *info,
                         gnutls_pcert_st **certs, unsigned int *pcert_length,
                         gnutls_ocsp_data_st **ocsp, unsigned int *ocsp_length,
                         gnutls_privkey_t *privkey, unsigned int *flags);

/* Makes s the store certs_store_retrieve serves; NULL uninstalls. */
void certs_store_install(struct certs_store *s);

#endif
