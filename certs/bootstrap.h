/*
 * bootstrap.h — the operator side of the chart's `selfSigned` certificate
 * mode: the operator keeps its webhook CA and serving certificate in a
 * Secret, writes the pair into its own cert dir (where certs_store picks
 * it up without a restart) and injects the CA into both webhook
 * configurations.  It does not depend on kubelet's Secret-volume
 * propagation: every replica reads the Secret and writes its own files.
 *
 * One pass (certs_bootstrap_once):
 *  1. GET the Secret.  Absent: mint a CA (CERTS_BOOTSTRAP_CA_DAYS or more)
 *     and a serving cert for the Service's DNS names, POST a
 *     kubernetes.io/tls Secret with tls.crt, tls.key, ca.crt and ca.key.
 *     409 AlreadyExists: another replica won; GET again and use theirs.
 *  2. Present: examine it (base64, pair matches, chains to ca.crt, SANs
 *     cover the names, expiry).  A leaf that is fine and outside
 *     renew_before_days is kept.  Otherwise a new leaf is signed with the
 *     stored CA when that CA outlives the new leaf, else a new CA is made
 *     (ca.crt then holds the new CA followed by the old one while the old
 *     one is still valid, so replicas still serving the old leaf stay
 *     trusted).  The Secret is PUT with the resourceVersion read
 *     (optimistic concurrency); 409: GET again, someone else renewed.
 *  3. caBundle: for each webhook entry of both configurations whose
 *     clientConfig.caBundle is not base64(ca.crt), one JSON patch per
 *     configuration: a `test` of /metadata/resourceVersion, then an `add`
 *     of /webhooks/i/clientConfig/caBundle per entry (the test fails with
 *     422 when the object changed since the GET: GET again, retry).
 *  4. Files: tls.key (0600), tls.crt, ca.crt (0644) in cert_dir, each
 *     replaced atomically and only when its bytes differ.
 *  The order of 3 and 4: the caBundle goes first, so a replica never
 *  serves a leaf of a CA the API server does not trust yet.  If injection
 *  fails the files are still written when that cannot break trust (the
 *  dir had no ca.crt yet, or the same one); only a CA switch waits.
 *
 * The Secret holds the CA's private key so that renewals keep the same CA
 * and the caBundle stays valid.  It lives in the operator's namespace and
 * only the operator's ServiceAccount may read it (the chart's Role grants
 * get/create/update on that one Secret name; nothing else in the chart
 * reads Secrets).  Key material is never logged, and the buffers this code
 * owns are wiped before they are freed.
 *
 * Bounds: a Secret or configuration response over CERTS_BOOTSTRAP_OBJ_MAX,
 * or a data value over CERTS_BOOTSTRAP_DATA_MAX (decoded), is refused /
 * treated as missing.
 */
#ifndef CERTS_BOOTSTRAP_H
#define CERTS_BOOTSTRAP_H

#include "certs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct kube_client;
struct kube_conn;

#define CERTS_BOOTSTRAP_VALIDITY_DAYS_DEFAULT 365u
#define CERTS_BOOTSTRAP_RENEW_BEFORE_DAYS_DEFAULT 30u
#define CERTS_BOOTSTRAP_INTERVAL_S_DEFAULT 60u
#define CERTS_BOOTSTRAP_INTERVAL_S_MAX 86400u
/* Serving cert validity; the CA lives max(CA_DAYS, 2 x validity). */
#define CERTS_BOOTSTRAP_VALIDITY_DAYS_MAX (CERTS_DAYS_MAX / 2)
#define CERTS_BOOTSTRAP_CA_DAYS 3650
#define CERTS_BOOTSTRAP_CLUSTER_DOMAIN "cluster.local"
/* Per decoded Secret data value. */
#define CERTS_BOOTSTRAP_DATA_MAX (64u * 1024)
/* A whole Secret or webhook configuration as read (etcd's limit is
 * 1.5 MiB; a Secret's data is capped at 1 MiB by the API server). */
#define CERTS_BOOTSTRAP_OBJ_MAX (2u * 1024 * 1024)
/* Lost races (409, failed test) retried within one pass. */
#define CERTS_BOOTSTRAP_CONFLICT_TRIES 5
#define CERTS_BOOTSTRAP_RV_MAX 64
#define CERTS_BOOTSTRAP_WHY_MAX 512
#define CERTS_BOOTSTRAP_MANAGED_BY "inference-operator"

struct certs_bootstrap_opts {
    const char *namespace_;        /* operator namespace (Secret lives here) */
    const char *secret_name;       /* e.g. "inference-operator-webhook-tls" */
    const char *service_name;      /* webhook Service; SANs: svc, svc.ns,
                                      svc.ns.svc, svc.ns.svc.<cluster_domain> */
    const char *validating_config; /* ValidatingWebhookConfiguration name;
                                      NULL or "" = none */
    const char *mutating_config;   /* MutatingWebhookConfiguration name;
                                      NULL or "" = none */
    const char *cert_dir;          /* writable dir for tls.crt, tls.key,
                                      ca.crt (created 0700 if missing) */
    unsigned validity_days;        /* serving cert; 0 = 365, at most
                                      CERTS_BOOTSTRAP_VALIDITY_DAYS_MAX */
    unsigned renew_before_days;    /* renew when it expires within this;
                                      0 = 30; must be < validity_days */
    unsigned interval_s;           /* re-check period; 0 = 60 */
    const char *cluster_domain;    /* NULL or "" = "cluster.local" */
};

/* What one pass did. */
enum certs_bootstrap_action {
    CERTS_BOOTSTRAP_CREATE,      /* no Secret: new CA + leaf, POSTed    */
    CERTS_BOOTSTRAP_KEEP,        /* the Secret's pair is fine           */
    CERTS_BOOTSTRAP_RENEW_LEAF,  /* new leaf from the stored CA, PUT    */
    CERTS_BOOTSTRAP_NEW_CA,      /* new CA + leaf, PUT                  */
};

struct certs_bootstrap_result {
    enum certs_bootstrap_action action; /* the last decision of the pass */
    bool secret_written;           /* this pass POSTed or PUT the Secret   */
    bool files_written;            /* at least one file in cert_dir changed */
    unsigned webhooks_patched;     /* entries whose caBundle was set       */
    unsigned conflicts;            /* lost races retried                   */
    time_t leaf_not_after;         /* of the pair now in the Secret        */
};

const char *certs_bootstrap_action_name(enum certs_bootstrap_action a);

/* Checks o (required names, bounds, names valid) and fills *out with o's
 * values, defaults applied (strings still borrowed).  Returns 0 or -1. */
int certs_bootstrap_opts_resolve(const struct certs_bootstrap_opts *o,
                                 struct certs_bootstrap_opts *out, char *err,
                                 size_t errlen);

/*
 * One full pass, synchronous (see the top of this file).  conn is the
 * caller's (one thread).  Returns 0, or -1 with err (transport failure,
 * unexpected status with the API's reason and message, a configuration
 * that does not exist, races lost CERTS_BOOTSTRAP_CONFLICT_TRIES times).
 */
int certs_bootstrap_once(struct kube_conn *conn,
                         const struct certs_bootstrap_opts *o, char *err,
                         size_t errlen);

/* The same, reporting what happened (res may be NULL). */
int certs_bootstrap_run(struct kube_conn *conn,
                        const struct certs_bootstrap_opts *o,
                        struct certs_bootstrap_result *res, char *err,
                        size_t errlen);

/*
 * Startup: passes until one succeeds, with exponential backoff (0.5 s
 * doubling to 30 s, jittered) while the API server is unreachable or
 * answers with errors; each failure is logged at warn.  Gives up after
 * timeout_s (0 = never) or when should_stop(arg) returns true (checked
 * between attempts, at least every 200 ms; may be NULL).  Returns 0, or
 * -1 with the last error in err.
 */
int certs_bootstrap_first_pass(struct kube_conn *conn,
                               const struct certs_bootstrap_opts *o,
                               unsigned timeout_s,
                               bool (*should_stop)(void *arg), void *arg,
                               char *err, size_t errlen);

struct certs_bootstrap;

/*
 * Starts the renewal thread: a pass every interval_s (±10 % jitter, the
 * first one interval_s after the start: run certs_bootstrap_first_pass
 * before), on errors sooner with backoff (1 s doubling, capped at
 * interval_s, jittered).  The thread has its own kube_conn on c, which
 * must outlive certs_bootstrap_stop.  o's strings are copied.
 * Returns 0 and *out, or -1 with err.
 */
int certs_bootstrap_start(struct kube_client *c,
                          const struct certs_bootstrap_opts *o,
                          struct certs_bootstrap **out, char *err,
                          size_t errlen);

/* Wakes the thread and joins it: at once between passes; a pass under
 * way finishes its current request first.  NULL is a no-op. */
void certs_bootstrap_stop(struct certs_bootstrap *b);

struct certs_bootstrap_stats {
    uint64_t passes_ok, passes_failed;
    uint64_t secret_writes, file_writes, webhooks_patched;
    time_t leaf_not_after;         /* 0 until a pass succeeded */
};
void certs_bootstrap_stats(struct certs_bootstrap *b,
                           struct certs_bootstrap_stats *out);

/* ---- The parts without I/O, for tests (certs/bootstrap_*.c). -------- */

#define CERTS_BOOTSTRAP_NAME_COUNT 4

/* The Service's DNS names: svc, svc.ns, svc.ns.svc,
 * svc.ns.svc.<cluster_domain>. */
struct certs_bootstrap_names {
    char dns[CERTS_BOOTSTRAP_NAME_COUNT][CERTS_DNS_NAME_MAX + 1];
    const char *list[CERTS_BOOTSTRAP_NAME_COUNT];   /* points into dns: do
                                                       not copy the struct */
    size_t count;
};

/* cluster_domain NULL or "" = CERTS_BOOTSTRAP_CLUSTER_DOMAIN.  Returns 0,
 * or -1 with err when a part is empty or a name is not a valid host name. */
int certs_bootstrap_names_make(const char *service, const char *ns,
                               const char *cluster_domain,
                               struct certs_bootstrap_names *out, char *err,
                               size_t errlen);

/* The Secret's four values, PEM bytes (NUL-terminated, length without
 * the NUL); data NULL = missing. */
enum certs_bootstrap_item {
    CERTS_BOOTSTRAP_TLS_CRT,       /* "tls.crt": the leaf                 */
    CERTS_BOOTSTRAP_TLS_KEY,       /* "tls.key": its key, PKCS#8          */
    CERTS_BOOTSTRAP_CA_CRT,        /* "ca.crt": current CA first, then the
                                      previous one during a CA rotation   */
    CERTS_BOOTSTRAP_CA_KEY,        /* "ca.key": the current CA's key      */
    CERTS_BOOTSTRAP_ITEMS
};
struct certs_bootstrap_blob {
    unsigned char *data;           /* malloc'd */
    size_t len;
};
struct certs_bootstrap_material {
    struct certs_bootstrap_blob item[CERTS_BOOTSTRAP_ITEMS];
};

/* "tls.crt", ... */
const char *certs_bootstrap_item_key(enum certs_bootstrap_item i);
/* Wipes the keys, frees everything, leaves m empty. */
void certs_bootstrap_material_free(struct certs_bootstrap_material *m);
/* Deep copy.  Returns 0, or -1 when out of memory. */
int certs_bootstrap_material_copy(const struct certs_bootstrap_material *src,
                                  struct certs_bootstrap_material *dst);

/*
 * A Secret as the API returned it.  Returns -1 with err when it is not a
 * Secret this code may manage: not a JSON object, type other than
 * kubernetes.io/tls (a user's Secret of the same name is never
 * overwritten), no metadata.resourceVersion.  Each data value that is
 * missing, not valid base64 or larger than CERTS_BOOTSTRAP_DATA_MAX is
 * left empty in *m (why says which; examine then finds it unusable).
 */
int certs_bootstrap_secret_parse(const char *json, size_t len,
                                 struct certs_bootstrap_material *m,
                                 char rv[CERTS_BOOTSTRAP_RV_MAX], char *why,
                                 size_t whylen, char *err, size_t errlen);

/*
 * The Secret body to send: with existing NULL a new kubernetes.io/tls
 * Secret (POST) labelled app.kubernetes.io/managed-by=inference-operator;
 * with existing (the JSON as read) that object with its data replaced
 * and everything else kept, resourceVersion included (PUT).  Returns a
 * malloc'd string (wipe it before freeing: it holds the keys), or NULL
 * with err.
 */
char *certs_bootstrap_secret_json(const struct certs_bootstrap_material *m,
                                  const char *ns, const char *name,
                                  const char *existing, size_t existing_len,
                                  char *err, size_t errlen);

/* What the Secret's material is worth at now for names. */
struct certs_bootstrap_state {
    bool present;                  /* the Secret exists                     */
    bool ca_ok;                    /* ca.crt's first cert is a CA, ca.key is
                                      its key, valid at now               */
    time_t ca_not_after;
    bool leaf_ok;                  /* tls.key belongs to tls.crt, which
                                      chains to the first CA of ca.crt,
                                      covers every name, valid at now     */
    time_t leaf_not_after;
    char why[CERTS_BOOTSTRAP_WHY_MAX]; /* why not ca_ok / leaf_ok */
};

void certs_bootstrap_examine(const struct certs_bootstrap_material *m,
                             const struct certs_bootstrap_names *names,
                             time_t now, struct certs_bootstrap_state *st);

/*
 * The decision, pure: CREATE without a Secret; KEEP when the leaf is ok
 * and expires more than renew_before_days after now; else RENEW_LEAF when
 * the CA is ok and outlives a leaf of validity_days issued now; else
 * NEW_CA.
 */
enum certs_bootstrap_action
certs_bootstrap_decide(const struct certs_bootstrap_state *st, time_t now,
                       unsigned validity_days, unsigned renew_before_days);

/*
 * New material for action (not KEEP): CREATE and NEW_CA mint a CA of
 * max(CERTS_BOOTSTRAP_CA_DAYS, 2 x validity_days) days (for NEW_CA,
 * ca.crt also carries old's first CA while it is valid at now);
 * RENEW_LEAF copies old's ca.crt and ca.key and signs a new leaf with
 * them.  Leaves are ECDSA P-256, valid from now - CERTS_SKEW_SECONDS for
 * validity_days, SANs = names.  Returns 0 (free *out), or -1 with err.
 */
int certs_bootstrap_issue(enum certs_bootstrap_action action,
                          const struct certs_bootstrap_material *old,
                          const struct certs_bootstrap_names *names,
                          time_t now, unsigned validity_days,
                          struct certs_bootstrap_material *out, char *err,
                          size_t errlen);

/*
 * The JSON patch that sets every webhooks[i].clientConfig.caBundle of a
 * webhook configuration (JSON as read) to ca_b64: a test of
 * /metadata/resourceVersion, then one add per entry that differs (add
 * replaces an existing member and creates a missing one).  *patch is NULL
 * when every entry is already right (or there are none).  *changed: the
 * entries the patch sets.  Returns 0, or -1 with err (not an object, no
 * resourceVersion, an entry without clientConfig).
 */
int certs_bootstrap_cabundle_patch(const char *config_json, size_t len,
                                   const char *ca_b64, char **patch,
                                   unsigned *changed, char *err,
                                   size_t errlen);

/* How dir/name compares with b's bytes.  The bytes read are wiped before
 * they are freed: the file may be a private key. */
enum certs_file_match {
    CERTS_FILE_UNREADABLE,     /* missing, or cannot be read */
    CERTS_FILE_SAME,
    CERTS_FILE_DIFFERS,
};
enum certs_file_match certs_bootstrap_file_match(const char *dir, const char *name,
                                                 const struct certs_bootstrap_blob *b);

/* Writes m's tls.key (0600), tls.crt and ca.crt (0644) into dir (made
 * if missing), each only if its bytes differ; *changed says whether any
 * did.  Returns 0, or -1 with err. */
int certs_bootstrap_write_files(const char *dir,
                                const struct certs_bootstrap_material *m,
                                bool *changed, char *err, size_t errlen);

#endif
