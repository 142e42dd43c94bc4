/*
 * bootstrap_x509.c — judging the Secret's certificates and issuing new
 * ones for the self-signed bootstrap.  See bootstrap.h.
 *
 * This mints its own CA (with issue.c, as certs_mint() does) because the
 * bootstrap must keep the CA's private key (ca.key in the Secret) and
 * sign later leaves with it; certs_mint() drops the CA key by design.
 * Key type, extensions and validity rules come from issue.c, shared with mint.c.
 */
#include "bootstrap.h"

#include "issue.h"
#include "mint.h"
#include "pair.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SAN_MAX 512
/* Largest bundle judged: current CA + previous, with room to spare. */
#define CA_LIST_MAX 8
/* A notBefore this far ahead of our clock is a broken cert, not skew. */
#define FUTURE_SLACK_S (24 * 60 * 60)

/* ---- parsing ----------------------------------------------------------- */

struct parsed {
    gnutls_x509_crt_t *list;
    unsigned n;
};

static void parsed_free(struct parsed *p)
{
    for (unsigned i = 0; i < p->n; i++)
        gnutls_x509_crt_deinit(p->list[i]);
    gnutls_free(p->list);
    p->list = NULL;
    p->n = 0;
}

static int parse_certs(const struct certs_bootstrap_blob *b, unsigned max,
                       struct parsed *out)
{
    out->list = NULL;
    out->n = 0;
    if (b->data == NULL || b->len == 0 || b->len > UINT_MAX)
        return -1;
    gnutls_datum_t d = {b->data, (unsigned)b->len};
    if (gnutls_x509_crt_list_import2(&out->list, &out->n, &d,
                                     GNUTLS_X509_FMT_PEM, 0) < 0) {
        out->list = NULL;
        out->n = 0;
        return -1;
    }
    if (out->n == 0 || out->n > max) {
        parsed_free(out);
        return -1;
    }
    return 0;
}

static int parse_key(const struct certs_bootstrap_blob *b,
                     gnutls_x509_privkey_t *key)
{
    *key = NULL;
    if (b->data == NULL || b->len == 0 || b->len > UINT_MAX ||
        gnutls_x509_privkey_init(key) < 0)
        return -1;
    gnutls_datum_t d = {b->data, (unsigned)b->len};
    if (gnutls_x509_privkey_import2(*key, &d, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
        gnutls_x509_privkey_deinit(*key);
        *key = NULL;
        return -1;
    }
    return 0;
}

static bool key_matches(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
    unsigned char a[CERTS_KEY_ID_MAX], b[CERTS_KEY_ID_MAX];
    size_t alen = sizeof a, blen = sizeof b;
    return gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, a,
                                      &alen) >= 0 &&
           gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b,
                                          &blen) >= 0 &&
           alen == blen && memcmp(a, b, alen) == 0;
}

/* Valid at now: not expired, and not starting implausibly far ahead of
 * our clock (the API server's clock is the one that counts). */
static bool valid_at(gnutls_x509_crt_t crt, time_t now, time_t *not_after)
{
    time_t nb = gnutls_x509_crt_get_activation_time(crt);
    time_t na = gnutls_x509_crt_get_expiration_time(crt);
    *not_after = na;
    return nb != (time_t)-1 && na != (time_t)-1 && now < na &&
           nb <= now + FUTURE_SLACK_S;
}

static bool san_has(gnutls_x509_crt_t crt, const char *want)
{
    size_t want_len = strlen(want);
    for (unsigned seq = 0;; seq++) {
        unsigned char buf[SAN_MAX];
        size_t len = sizeof buf;
        int t = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &len, NULL);
        if (t == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue;
        if (t < 0)
            return false;
        if (t == GNUTLS_SAN_DNSNAME && len == want_len &&
            strncasecmp((const char *)buf, want, len) == 0)
            return true;
    }
}

static void why_set(struct certs_bootstrap_state *st, const char *what)
{
    size_t n = strlen(st->why);
    if (n + 1 < sizeof st->why)
        snprintf(st->why + n, sizeof st->why - n, "%s%s", n ? "; " : "", what);
}

void certs_bootstrap_examine(const struct certs_bootstrap_material *m,
                             const struct certs_bootstrap_names *names,
                             time_t now, struct certs_bootstrap_state *st)
{
    struct parsed cas = {0}, leafs = {0};
    gnutls_x509_privkey_t ca_key = NULL, leaf_key = NULL;
    bool ca_cert_ok = false;

    memset(st, 0, sizeof *st);
    st->present = true;

    if (parse_certs(&m->item[CERTS_BOOTSTRAP_CA_CRT], CA_LIST_MAX, &cas) != 0) {
        why_set(st, "ca.crt does not parse");
    } else if (gnutls_x509_crt_get_ca_status(cas.list[0], NULL) <= 0) {
        why_set(st, "ca.crt is not a CA certificate");
    } else if (!valid_at(cas.list[0], now, &st->ca_not_after)) {
        why_set(st, "ca.crt is expired or not yet valid");
    } else {
        ca_cert_ok = true;
        if (parse_key(&m->item[CERTS_BOOTSTRAP_CA_KEY], &ca_key) != 0)
            why_set(st, "ca.key does not parse");
        else if (!key_matches(cas.list[0], ca_key))
            why_set(st, "ca.key does not belong to ca.crt");
        else
            st->ca_ok = true;
    }

    unsigned status = 0;
    if (parse_certs(&m->item[CERTS_BOOTSTRAP_TLS_CRT], CERTS_CHAIN_MAX,
                    &leafs) != 0) {
        why_set(st, "tls.crt does not parse");
        goto done;
    }
    if (parse_key(&m->item[CERTS_BOOTSTRAP_TLS_KEY], &leaf_key) != 0) {
        why_set(st, "tls.key does not parse");
        goto done;
    }
    if (!key_matches(leafs.list[0], leaf_key)) {
        why_set(st, "tls.key does not belong to tls.crt");
        goto done;
    }
    if (!valid_at(leafs.list[0], now, &st->leaf_not_after)) {
        why_set(st, "tls.crt is expired or not yet valid");
        goto done;
    }
    if (!ca_cert_ok)
        goto done;
    if (gnutls_x509_crt_verify(leafs.list[0], &cas.list[0], 1,
                               GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
                                   GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
                               &status) < 0 ||
        status != 0) {
        why_set(st, "tls.crt is not signed by ca.crt");
        goto done;
    }
    for (size_t i = 0; i < names->count; i++) {
        if (!san_has(leafs.list[0], names->list[i])) {
            char what[CERTS_DNS_NAME_MAX + 32];
            snprintf(what, sizeof what, "tls.crt does not cover %s",
                     names->list[i]);
            why_set(st, what);
            goto done;
        }
    }
    st->leaf_ok = true;
done:
    if (leaf_key)
        gnutls_x509_privkey_deinit(leaf_key);
    if (ca_key)
        gnutls_x509_privkey_deinit(ca_key);
    parsed_free(&leafs);
    parsed_free(&cas);
}

/* ---- issuing ----------------------------------------------------------- */

#define TRY(what, call)                                                     \
    do {                                                                    \
        rc = (call);                                                        \
        if (rc < 0) {                                                       \
            *step = (what);                                                 \
            goto fail;                                                      \
        }                                                                   \
    } while (0)

static int make_leaf(struct certs_keyed *leaf, const struct certs_keyed *ca,
                     const struct certs_bootstrap_names *names, time_t now,
                     int days, const char **step)
{
    /* names->list[2] (svc.ns.svc) is the name the API server dials. */
    const char *cn = names->count > 2 ? names->list[2] : CERTS_CN_FALLBACK;
    if (strlen(cn) > CERTS_CN_MAX)
        cn = CERTS_CN_FALLBACK;
    int rc = certs_keyed_new_leaf(leaf, cn, now, days, step);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < names->count; i++)
        TRY("add DNS SAN",
            gnutls_x509_crt_set_subject_alt_name(
                leaf->crt, GNUTLS_SAN_DNSNAME, names->list[i],
                (unsigned)strlen(names->list[i]), GNUTLS_FSAN_APPEND));
    return certs_keyed_sign_leaf(leaf, ca, step);
fail:
    return rc;
}

/* A gnutls datum into a blob (malloc'd, NUL-terminated); the datum is
 * wiped and freed either way. */
static int take_datum(gnutls_datum_t *d, struct certs_bootstrap_blob *b)
{
    b->data = malloc((size_t)d->size + 1);
    if (b->data) {
        memcpy(b->data, d->data, d->size);
        b->data[d->size] = '\0';
        b->len = d->size;
    }
    gnutls_memset(d->data, 0, d->size);
    gnutls_free(d->data);
    d->data = NULL;
    d->size = 0;
    return b->data ? 0 : GNUTLS_E_MEMORY_ERROR;
}

static int export_crt(gnutls_x509_crt_t crt, struct certs_bootstrap_blob *b)
{
    gnutls_datum_t d = {NULL, 0};
    int rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d);
    return rc < 0 ? rc : take_datum(&d, b);
}

static int export_key(gnutls_x509_privkey_t key, struct certs_bootstrap_blob *b)
{
    gnutls_datum_t d = {NULL, 0};
    int rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
                                               GNUTLS_PKCS_PLAIN, &d);
    return rc < 0 ? rc : take_datum(&d, b);
}

static int blob_copy(const struct certs_bootstrap_blob *src,
                     struct certs_bootstrap_blob *dst)
{
    dst->data = malloc(src->len + 1);
    if (dst->data == NULL)
        return GNUTLS_E_MEMORY_ERROR;
    memcpy(dst->data, src->data, src->len);
    dst->data[src->len] = '\0';
    dst->len = src->len;
    return 0;
}

/* new_ca's PEM followed by old's first CA (when it is still valid), so
 * the bundle trusts both leaves during the switch. */
static int bundle(const struct certs_keyed *ca,
                  const struct certs_bootstrap_material *old, time_t now,
                  struct certs_bootstrap_blob *out)
{
    struct certs_bootstrap_blob cur = {0}, prev = {0};
    struct parsed olds = {0};
    time_t na;
    int rc = export_crt(ca->crt, &cur);
    if (rc < 0)
        return rc;
    if (old && parse_certs(&old->item[CERTS_BOOTSTRAP_CA_CRT], CA_LIST_MAX,
                           &olds) == 0 &&
        gnutls_x509_crt_get_ca_status(olds.list[0], NULL) > 0 &&
        valid_at(olds.list[0], now, &na)) {
        rc = export_crt(olds.list[0], &prev);
        if (rc < 0)
            goto done;
    }
    out->len = cur.len + prev.len;
    out->data = malloc(out->len + 1);
    if (out->data == NULL) {
        out->len = 0;
        rc = GNUTLS_E_MEMORY_ERROR;
        goto done;
    }
    memcpy(out->data, cur.data, cur.len);
    if (prev.len)
        memcpy(out->data + cur.len, prev.data, prev.len);
    out->data[out->len] = '\0';
    rc = 0;
done:
    parsed_free(&olds);
    free(cur.data);
    free(prev.data);
    return rc;
}

/* The stored CA (first of ca.crt, and ca.key) as a signer. */
static int load_ca(const struct certs_bootstrap_material *old, struct certs_keyed *ca,
                   const char **step)
{
    struct parsed cas = {0};
    int rc;
    memset(ca, 0, sizeof *ca);
    if (parse_certs(&old->item[CERTS_BOOTSTRAP_CA_CRT], CA_LIST_MAX, &cas) != 0 ||
        parse_key(&old->item[CERTS_BOOTSTRAP_CA_KEY], &ca->key) != 0 ||
        !key_matches(cas.list[0], ca->key)) {
        *step = "load the stored CA";
        parsed_free(&cas);
        certs_keyed_free(ca);
        return GNUTLS_E_INVALID_REQUEST;
    }
    /* Keep the first certificate, drop the rest. */
    ca->crt = cas.list[0];
    for (unsigned i = 1; i < cas.n; i++)
        gnutls_x509_crt_deinit(cas.list[i]);
    gnutls_free(cas.list);
    if ((rc = certs_keyed_signer(ca, step)) < 0) {
        certs_keyed_free(ca);
        return rc;
    }
    return 0;
}

int certs_bootstrap_issue(enum certs_bootstrap_action action,
                          const struct certs_bootstrap_material *old,
                          const struct certs_bootstrap_names *names,
                          time_t now, unsigned validity_days,
                          struct certs_bootstrap_material *out, char *err,
                          size_t errlen)
{
    struct certs_keyed ca = {0}, leaf = {0};
    const char *what = "issue";
    const char **step = &what;
    int rc;
    int days = (int)validity_days;
    int ca_days = days * 2 > CERTS_BOOTSTRAP_CA_DAYS ? days * 2
                                                     : CERTS_BOOTSTRAP_CA_DAYS;

    memset(out, 0, sizeof *out);
    if (days < CERTS_DAYS_MIN || days > CERTS_BOOTSTRAP_VALIDITY_DAYS_MAX ||
        names->count == 0) {
        snprintf(err, errlen, "cannot issue: validity %u days or no names",
                 validity_days);
        return -1;
    }
    switch (action) {
    case CERTS_BOOTSTRAP_CREATE:
    case CERTS_BOOTSTRAP_NEW_CA:
        if ((rc = certs_keyed_make_ca(&ca, now, ca_days, step)) < 0)
            goto fail;
        TRY("bundle the CA",
            bundle(&ca, action == CERTS_BOOTSTRAP_NEW_CA ? old : NULL, now,
                   &out->item[CERTS_BOOTSTRAP_CA_CRT]));
        TRY("export the CA key",
            export_key(ca.key, &out->item[CERTS_BOOTSTRAP_CA_KEY]));
        break;
    case CERTS_BOOTSTRAP_RENEW_LEAF:
        if (old == NULL) {
            rc = GNUTLS_E_INVALID_REQUEST;
            what = "renew without a stored CA";
            goto fail;
        }
        if ((rc = load_ca(old, &ca, step)) < 0)
            goto fail;
        TRY("copy ca.crt", blob_copy(&old->item[CERTS_BOOTSTRAP_CA_CRT],
                                     &out->item[CERTS_BOOTSTRAP_CA_CRT]));
        TRY("copy ca.key", blob_copy(&old->item[CERTS_BOOTSTRAP_CA_KEY],
                                     &out->item[CERTS_BOOTSTRAP_CA_KEY]));
        break;
    case CERTS_BOOTSTRAP_KEEP:
    default:
        rc = GNUTLS_E_INVALID_REQUEST;
        what = "nothing to issue";
        goto fail;
    }
    if ((rc = make_leaf(&leaf, &ca, names, now, days, step)) < 0)
        goto fail;
    TRY("export the certificate",
        export_crt(leaf.crt, &out->item[CERTS_BOOTSTRAP_TLS_CRT]));
    TRY("export the key", export_key(leaf.key, &out->item[CERTS_BOOTSTRAP_TLS_KEY]));
    certs_keyed_free(&ca);
    certs_keyed_free(&leaf);
    return 0;
fail:
    snprintf(err, errlen, "cannot issue certificates: %s: %s", what,
             gnutls_strerror(rc));
    certs_keyed_free(&ca);
    certs_keyed_free(&leaf);
    certs_bootstrap_material_free(out);
    return -1;
}
