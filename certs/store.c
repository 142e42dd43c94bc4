/*
 * store.c — current pair, swaps and reload checks.  See store.h.
 */
#include "store.h"

#include "certs.h"
#include "fileio.h"
#include "watch.h"

#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_LEN 32      /* SHA-256 */
#define DETAIL_MAX (CERTS_SUMMARY_MAX + CERTS_PATH_MAX + 32)

/* A pair plus the number of holders: the store (while current) and any
 * handshake callback copying from it. */
struct slot {
    struct certs_pair *pair;
    unsigned long refs;
};

struct certs_store {
    char cert_path[CERTS_PATH_MAX];
    char key_path[CERTS_PATH_MAX];
    pthread_mutex_t lock;        /* guards cur and every slot's refs */
    struct slot *cur;
    atomic_ulong generation;
    pthread_mutex_t check_lock;  /* one check at a time; guards bad_* */
    unsigned char bad_digest[DIGEST_LEN];
    bool have_bad;
    certs_reload_fn fn;
    void *arg;
    struct certs_watch *watch;
};

static struct slot *acquire(struct certs_store *s)
{
    pthread_mutex_lock(&s->lock);
    struct slot *sl = s->cur;
    sl->refs++;
    pthread_mutex_unlock(&s->lock);
    return sl;
}

static void release(struct certs_store *s, struct slot *sl)
{
    pthread_mutex_lock(&s->lock);
    bool last = --sl->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) {
        certs_pair_free(sl->pair);
        free(sl);
    }
}

static void swap_in(struct certs_store *s, struct slot *fresh)
{
    pthread_mutex_lock(&s->lock);
    struct slot *old = s->cur;
    s->cur = fresh;
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->generation, 1);
    release(s, old);
}

static struct slot *slot_new(struct certs_pair *p, char *err, size_t errlen)
{
    struct slot *sl = malloc(sizeof *sl);
    if (sl == NULL) {
        snprintf(err, errlen, "out of memory holding a certificate pair");
        certs_pair_free(p);
        return NULL;
    }
    sl->pair = p;
    sl->refs = 1;
    return sl;
}

/* Digest of what was refused, so the same bad files are reported once. */
static void digest_of(const unsigned char *a, size_t alen,
                      const unsigned char *b, size_t blen, const char *why,
                      unsigned char out[DIGEST_LEN])
{
    gnutls_hash_hd_t h;
    memset(out, 0, DIGEST_LEN);
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return;
    gnutls_hash(h, &alen, sizeof alen);
    if (a)
        gnutls_hash(h, a, alen);
    gnutls_hash(h, &blen, sizeof blen);
    if (b)
        gnutls_hash(h, b, blen);
    if (a == NULL || b == NULL)
        gnutls_hash(h, why, strlen(why));
    gnutls_hash_deinit(h, out);
}

static void refuse(struct certs_store *s, const unsigned char digest[DIGEST_LEN],
                   const char *why)
{
    if (s->have_bad && memcmp(s->bad_digest, digest, DIGEST_LEN) == 0)
        return;
    memcpy(s->bad_digest, digest, DIGEST_LEN);
    s->have_bad = true;
    if (s->fn)
        s->fn(s->arg, false, why);
}

/* Loads changed bytes and swaps them in.  Returns 0 or -1 with err. */
static int try_swap(struct certs_store *s, const unsigned char *cert,
                    size_t cert_len, const unsigned char *key, size_t key_len,
                    char *err, size_t errlen)
{
    struct certs_pair *p = NULL;
    struct slot *sl;
    if (certs_pair_load_mem(cert, cert_len, key, key_len, s->cert_path,
                            s->key_path, &p, err, errlen) != 0 ||
        (sl = slot_new(p, err, errlen)) == NULL)
        return -1;
    char detail[DETAIL_MAX];
    snprintf(detail, sizeof detail, "now serving %s from %s",
             certs_pair_summary(p), s->cert_path);
    swap_in(s, sl);
    s->have_bad = false;
    if (s->fn)
        s->fn(s->arg, true, detail);
    return 0;
}

/* The whole check, with check_lock held. */
static int check(struct certs_store *s, char *err, size_t errlen)
{
    unsigned char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    unsigned char digest[DIGEST_LEN];
    int rc = -1;

    if (certs_file_read(s->cert_path, CERTS_PEM_MAX, &cert, &cert_len, err,
                        errlen) != 0 ||
        certs_file_read(s->key_path, CERTS_PEM_MAX, &key, &key_len, err,
                        errlen) != 0) {
        digest_of(cert, cert_len, key, key_len, err, digest);
        refuse(s, digest, err);
        goto done;
    }
    struct slot *sl = acquire(s);
    bool same = certs_pair_same_bytes(sl->pair, cert, cert_len, key, key_len);
    release(s, sl);
    if (same) {
        s->have_bad = false;
        rc = 0;
    } else if ((rc = try_swap(s, cert, cert_len, key, key_len, err,
                              errlen)) != 0) {
        digest_of(cert, cert_len, key, key_len, err, digest);
        refuse(s, digest, err);
    }
done:
    if (key)
        explicit_bzero(key, key_len);
    free(key);
    free(cert);
    return rc;
}

int certs_store_reload_now(struct certs_store *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->check_lock);
    int rc = check(s, err, errlen);
    pthread_mutex_unlock(&s->check_lock);
    return rc;
}

/* Watcher wake-up: the outcome reaches the user through s->fn. */
static void on_wake(void *arg)
{
    char err[DETAIL_MAX];
    certs_store_reload_now(arg, err, sizeof err);
}

static int store_paths(struct certs_store *s, const char *dir, char *err,
                       size_t errlen)
{
    if (certs_path_join(s->cert_path, sizeof s->cert_path, dir,
                        CERTS_CERT_FILE, err, errlen) != 0)
        return -1;
    return certs_path_join(s->key_path, sizeof s->key_path, dir,
                           CERTS_KEY_FILE, err, errlen);
}

int certs_store_open(const char *dir, unsigned interval_ms, certs_reload_fn fn,
                     void *arg, struct certs_store **out, char *err,
                     size_t errlen)
{
    if (dir == NULL || out == NULL) {
        snprintf(err, errlen, "a certificate directory is required");
        return -1;
    }
    if (interval_ms != 0 && (interval_ms < CERTS_INTERVAL_MIN_MS ||
                             interval_ms > CERTS_INTERVAL_MAX_MS)) {
        snprintf(err, errlen, "certificate re-read interval must be %u..%u "
                 "ms, not %u", CERTS_INTERVAL_MIN_MS, CERTS_INTERVAL_MAX_MS,
                 interval_ms);
        return -1;
    }
    struct certs_store *s = calloc(1, sizeof *s);
    struct certs_pair *p = NULL;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory opening the certificate store");
        return -1;
    }
    if (store_paths(s, dir, err, errlen) != 0 ||
        certs_pair_load_files(s->cert_path, s->key_path, &p, err, errlen) != 0 ||
        (s->cur = slot_new(p, err, errlen)) == NULL) {
        free(s);
        return -1;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->check_lock, NULL);
    atomic_init(&s->generation, 0);
    s->fn = fn;
    s->arg = arg;
    if (certs_watch_start(dir, interval_ms ? interval_ms
                                           : CERTS_INTERVAL_DEFAULT_MS,
                          on_wake, s, &s->watch, err, errlen) != 0) {
        certs_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void certs_store_close(struct certs_store *s)
{
    if (s == NULL)
        return;
    certs_watch_stop(s->watch);
    release(s, s->cur);
    pthread_mutex_destroy(&s->check_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

unsigned long certs_store_generation(const struct certs_store *s)
{
    return atomic_load(&((struct certs_store *)s)->generation);
}

int certs_store_current_der(struct certs_store *s, unsigned char **der,
                            size_t *len, char *err, size_t errlen)
{
    struct slot *sl = acquire(s);
    const gnutls_datum_t *d = certs_pair_cert_der(sl->pair, 0);
    unsigned char *copy = malloc(d->size);
    int rc = -1;
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory copying the certificate");
    } else {
        memcpy(copy, d->data, d->size);
        *der = copy;
        *len = d->size;
        rc = 0;
    }
    release(s, sl);
    return rc;
}

int certs_store_handshake_copy(struct certs_store *s, gnutls_pcert_st **certs,
                               unsigned *n, gnutls_privkey_t *key)
{
    struct slot *sl = acquire(s);
    int rc = certs_pair_handshake_copy(sl->pair, certs, n, key);
    release(s, sl);
    return rc;
}
