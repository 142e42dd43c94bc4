/*
 * pair.c — loading and checking a certificate chain with its key.
 * See pair.h.
 */
#include "pair.h"

#include "certs.h"
#include "fileio.h"

#include <gnutls/x509.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_ID_MAX 64
#define TIME_TEXT_MAX 32

struct certs_pair {
    unsigned char *cert_pem;            /* malloc'd copy of the file */
    size_t cert_len;
    unsigned char *key_pem;             /* malloc'd copy, wiped on free */
    size_t key_len;
    gnutls_datum_t der[CERTS_CHAIN_MAX]; /* gnutls_malloc'd */
    size_t n;
    gnutls_datum_t key_der;             /* gnutls_malloc'd, wiped on free */
    time_t not_after;
    char summary[CERTS_SUMMARY_MAX];
};

static void time_text(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "@%lld", (long long)t);
}

static int check_times(gnutls_x509_crt_t crt, const char *label, char *err,
                       size_t errlen)
{
    time_t now = time(NULL);
    time_t nb = gnutls_x509_crt_get_activation_time(crt);
    time_t na = gnutls_x509_crt_get_expiration_time(crt);
    char when[TIME_TEXT_MAX];
    if (nb == (time_t)-1 || na == (time_t)-1) {
        snprintf(err, errlen, "%s: certificate has no readable validity "
                 "period", label);
        return -1;
    }
    if (now < nb) {
        time_text(nb, when, sizeof when);
        snprintf(err, errlen, "%s: certificate is not valid before %s "
                 "(check the clock)", label, when);
        return -1;
    }
    if (now >= na) {
        time_text(na, when, sizeof when);
        snprintf(err, errlen, "%s: certificate expired at %s", label, when);
        return -1;
    }
    return 0;
}

static int check_key_matches(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key,
                             const char *cert_label, const char *key_label,
                             char *err, size_t errlen)
{
    unsigned char a[KEY_ID_MAX], b[KEY_ID_MAX];
    size_t alen = sizeof a, blen = sizeof b;
    int rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a, &alen);
    if (rc >= 0)
        rc = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b,
                                            &blen);
    if (rc < 0) {
        snprintf(err, errlen, "cannot compare %s with %s: %s", key_label,
                 cert_label, gnutls_strerror(rc));
        return -1;
    }
    if (alen != blen || memcmp(a, b, alen) != 0) {
        snprintf(err, errlen, "%s does not belong to the first certificate "
                 "in %s (public keys differ)", key_label, cert_label);
        return -1;
    }
    return 0;
}

static void summarise(struct certs_pair *p, gnutls_x509_crt_t leaf)
{
    gnutls_datum_t dn = {NULL, 0};
    char when[TIME_TEXT_MAX];
    time_text(p->not_after, when, sizeof when);
    if (gnutls_x509_crt_get_dn3(leaf, &dn, 0) < 0)
        dn.data = NULL;
    snprintf(p->summary, sizeof p->summary, "%s, expires %s",
             dn.data ? (const char *)dn.data : "(no subject)", when);
    gnutls_free(dn.data);
}

static unsigned char *dup_bytes(const unsigned char *src, size_t len)
{
    unsigned char *d = malloc(len ? len : 1);
    if (d && len)
        memcpy(d, src, len);
    return d;
}

/* Fills p from parsed objects: DERs, key DER, summary. */
static int fill(struct certs_pair *p, gnutls_x509_crt_t *list, unsigned count,
                gnutls_x509_privkey_t key, char *err, size_t errlen)
{
    int rc = 0;
    for (unsigned i = 0; i < count && rc >= 0; i++) {
        rc = gnutls_x509_crt_export2(list[i], GNUTLS_X509_FMT_DER, &p->der[i]);
        if (rc >= 0)
            p->n++;
    }
    /* SEC1/PKCS#1 DER: gnutls_privkey_import_x509_raw() takes it on its
     * first try, the cheapest form for the per-handshake import. */
    if (rc >= 0)
        rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_DER, &p->key_der);
    if (rc < 0) {
        snprintf(err, errlen, "cannot re-encode the certificate or key: %s",
                 gnutls_strerror(rc));
        return -1;
    }
    p->not_after = gnutls_x509_crt_get_expiration_time(list[0]);
    summarise(p, list[0]);
    return 0;
}

static int parse_chain(const unsigned char *pem, size_t len, const char *label,
                       gnutls_x509_crt_t **list, unsigned *count, char *err,
                       size_t errlen)
{
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
    if (len > UINT_MAX) {
        snprintf(err, errlen, "%s is too large", label);
        return -1;
    }
    int rc = gnutls_x509_crt_list_import2(list, count, &d, GNUTLS_X509_FMT_PEM,
                                          0);
    if (rc < 0) {
        snprintf(err, errlen, "%s: no complete PEM certificate chain (%s)",
                 label, gnutls_strerror(rc));
        return -1;
    }
    if (*count == 0 || *count > CERTS_CHAIN_MAX) {
        snprintf(err, errlen, "%s holds %u certificates; expected 1..%d",
                 label, *count, CERTS_CHAIN_MAX);
        return -1;
    }
    return 0;
}

static int parse_key(const unsigned char *pem, size_t len, const char *label,
                     gnutls_x509_privkey_t key, char *err, size_t errlen)
{
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
    int rc = len > UINT_MAX ? GNUTLS_E_INVALID_REQUEST
                            : gnutls_x509_privkey_import2(
                                  key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot parse the private key (%s); it must "
                 "be an unencrypted PEM key", label, gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

int certs_pair_load_mem(const unsigned char *cert_pem, size_t cert_len,
                        const unsigned char *key_pem, size_t key_len,
                        const char *cert_label, const char *key_label,
                        struct certs_pair **out, char *err, size_t errlen)
{
    gnutls_x509_crt_t *list = NULL;
    unsigned count = 0;
    gnutls_x509_privkey_t key = NULL;
    struct certs_pair *p = calloc(1, sizeof *p);
    int rc = -1;

    if (p == NULL) {
        snprintf(err, errlen, "out of memory loading %s", cert_label);
        goto done;
    }
    if (parse_chain(cert_pem, cert_len, cert_label, &list, &count, err,
                    errlen) != 0)
        goto done;
    if (gnutls_x509_privkey_init(&key) < 0) {
        snprintf(err, errlen, "out of memory loading %s", key_label);
        goto done;
    }
    if (parse_key(key_pem, key_len, key_label, key, err, errlen) != 0 ||
        check_key_matches(list[0], key, cert_label, key_label, err,
                          errlen) != 0 ||
        check_times(list[0], cert_label, err, errlen) != 0 ||
        fill(p, list, count, key, err, errlen) != 0)
        goto done;
    p->cert_pem = dup_bytes(cert_pem, cert_len);
    p->key_pem = dup_bytes(key_pem, key_len);
    if (p->cert_pem == NULL || p->key_pem == NULL) {
        snprintf(err, errlen, "out of memory loading %s", cert_label);
        goto done;
    }
    p->cert_len = cert_len;
    p->key_len = key_len;
    *out = p;
    p = NULL;
    rc = 0;
done:
    certs_pair_free(p);
    if (key)
        gnutls_x509_privkey_deinit(key);
    for (unsigned i = 0; i < count; i++)
        gnutls_x509_crt_deinit(list[i]);
    gnutls_free(list);
    return rc;
}

int certs_pair_load_files(const char *cert_path, const char *key_path,
                          struct certs_pair **out, char *err, size_t errlen)
{
    unsigned char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    int rc = -1;
    if (certs_file_read(cert_path, CERTS_PEM_MAX, &cert, &cert_len, err,
                        errlen) == 0 &&
        certs_file_read(key_path, CERTS_PEM_MAX, &key, &key_len, err,
                        errlen) == 0)
        rc = certs_pair_load_mem(cert, cert_len, key, key_len, cert_path,
                                 key_path, out, err, errlen);
    if (key)
        explicit_bzero(key, key_len);
    free(key);
    free(cert);
    return rc;
}

void certs_pair_free(struct certs_pair *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        gnutls_free(p->der[i].data);
    if (p->key_der.data)
        gnutls_memset(p->key_der.data, 0, p->key_der.size);
    gnutls_free(p->key_der.data);
    if (p->key_pem)
        explicit_bzero(p->key_pem, p->key_len);
    free(p->key_pem);
    free(p->cert_pem);
    free(p);
}

bool certs_pair_same_bytes(const struct certs_pair *p,
                           const unsigned char *cert_pem, size_t cert_len,
                           const unsigned char *key_pem, size_t key_len)
{
    return p->cert_len == cert_len && p->key_len == key_len &&
           memcmp(p->cert_pem, cert_pem, cert_len) == 0 &&
           memcmp(p->key_pem, key_pem, key_len) == 0;
}

size_t certs_pair_chain_len(const struct certs_pair *p)
{
    return p->n;
}

const gnutls_datum_t *certs_pair_cert_der(const struct certs_pair *p, size_t i)
{
    return i < p->n ? &p->der[i] : NULL;
}

const char *certs_pair_summary(const struct certs_pair *p)
{
    return p->summary;
}

time_t certs_pair_not_after(const struct certs_pair *p)
{
    return p->not_after;
}

int certs_pair_handshake_copy(const struct certs_pair *p,
                              gnutls_pcert_st **certs, unsigned *n,
                              gnutls_privkey_t *key)
{
    gnutls_privkey_t k = NULL;
    unsigned done = 0;
    int rc = GNUTLS_E_MEMORY_ERROR;
    /* gnutls_malloc: GnuTLS releases the array with gnutls_free. */
    gnutls_pcert_st *pc = gnutls_malloc(p->n * sizeof *pc);
    if (pc == NULL)
        goto fail;
    for (; done < p->n; done++) {
        rc = gnutls_pcert_import_x509_raw(&pc[done], &p->der[done],
                                          GNUTLS_X509_FMT_DER, 0);
        if (rc < 0)
            goto fail;
    }
    if ((rc = gnutls_privkey_init(&k)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(k, &p->key_der,
                                             GNUTLS_X509_FMT_DER, NULL, 0)) < 0)
        goto fail;
    *certs = pc;
    *n = (unsigned)p->n;
    *key = k;
    return 0;
fail:
    if (k)
        gnutls_privkey_deinit(k);
    for (unsigned i = 0; i < done; i++)
        gnutls_pcert_deinit(&pc[i]);
    gnutls_free(pc);
    return rc;
}
