/*
 * retrieve.c — the GnuTLS certificate callback MHD calls per handshake.
 * See store.h.
 */
#include "store.h"

#include <stdatomic.h>

/* MHD's CERT_CALLBACK2 carries no user pointer, hence one per process. */
static _Atomic(struct certs_store *) installed;

void certs_store_install(struct certs_store *s)
{
    atomic_store(&installed, s);
}

int certs_store_retrieve(gnutls_session_t session,
                         const struct gnutls_cert_retr_st *info,
                         gnutls_pcert_st **certs, unsigned int *pcert_length,
                         gnutls_ocsp_data_st **ocsp, unsigned int *ocsp_length,
                         gnutls_privkey_t *privkey, unsigned int *flags)
{
    (void)session;
    (void)info;   /* one certificate: nothing to choose by name or algo */
    struct certs_store *s = atomic_load(&installed);
    unsigned n = 0;
    *certs = NULL;
    *pcert_length = 0;
    *ocsp = NULL;
    *ocsp_length = 0;
    *privkey = NULL;
    *flags = 0;
    /* On failure GnuTLS frees nothing, and the copy has
     * already released its partial work. */
    if (s == NULL || certs_store_handshake_copy(s, certs, &n, privkey) < 0)
        return -1;
    *pcert_length = n;
    /* GnuTLS now owns all of it (see store.h for exactly what it frees). */
    *flags = GNUTLS_CERT_RETR_DEINIT_ALL;
    return 0;
}
