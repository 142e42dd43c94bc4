/*
 * test_bootstrap_live.c — the self-signed certificate bootstrap
 * (certs/bootstrap.h) against a real kube-apiserver
 * (tests/kube/run.sh --filter 'bootstrap_live/STAR').
 *
 * Each test works in a fresh namespace with its own Validating and
 * Mutating webhook configurations of two webhooks each (url
 * https://127.0.0.1:1/x, failurePolicy Ignore, rules on a resource that
 * does not exist), and a fresh cert dir under /tmp:
 *   - the first pass creates the Secret, writes the files, injects the
 *     caBundle into all four webhooks; a second pass changes nothing
 *     (resourceVersions, inodes and mtimes unchanged);
 *   - a Secret whose leaf expires inside renew_before_days gets a new
 *     leaf from the SAME CA, and the files follow;
 *   - two concurrent first passes (two threads, two conns) end with one
 *     Secret and the same files in both dirs;
 *   - a missing configuration is an error, the files are still written;
 *   - the renewal thread follows a Secret rotated by someone else;
 *   - certs_bootstrap_first_pass gives up at its deadline when the API
 *     server is unreachable.
 */
#include <criterion/criterion.h>

#include "base64.h"
#include "bootstrap.h"
#include "fileio.h"
#include "kube_client.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define B_ERR 1024
#define B_PATH 512
#define B_BODY 4096
#define B_NAME 96
#define B_DAY 86400
#define B_SECRET "io-webhook-tls"
#define B_SERVICE "io-webhook"
#define B_WAIT_S 15.0

/* ---- helpers ------------------------------------------------------------ */

static double bnow(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bsleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static struct kube_client *bclient(const char *server)
{
    if (!getenv("IO_KUBE_SERVER"))
        cr_skip_test("IO_KUBE_SERVER not set: run tests/kube/run.sh");
    struct kube_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.server, sizeof cfg.server, "%s",
             server ? server : getenv("IO_KUBE_SERVER"));
    snprintf(cfg.ca_file, sizeof cfg.ca_file, "%s", getenv("IO_KUBE_CA"));
    snprintf(cfg.cert_file, sizeof cfg.cert_file, "%s", getenv("IO_KUBE_CERT"));
    snprintf(cfg.key_file, sizeof cfg.key_file, "%s", getenv("IO_KUBE_KEY"));
    struct kube_client_opts o;
    kube_client_opts_init(&o);
    o.qps = 1000;
    o.burst = 1000;
    if (server) {
        o.timeout_ms = 1000;
        o.connect_timeout_ms = 500;
    }
    struct kube_client *c;
    char err[B_ERR];
    cr_assert_eq(kube_client_new(&cfg, &o, &c, err, sizeof err), 0, "%s", err);
    return c;
}

/* A request that must get an HTTP answer; the caller frees r. */
static long breq(struct kube_conn *k, const char *method, const char *path,
                 const char *ct, const char *body, struct kube_response *r)
{
    char err[B_ERR];
    cr_assert_eq(kube_request(k, method, path, ct, body, body ? strlen(body) : 0,
                              r, err, sizeof err), 0, "%s %s: %s", method, path,
                 err);
    return r->status;
}

static long breq_status(struct kube_conn *k, const char *method,
                        const char *path, const char *ct, const char *body)
{
    struct kube_response r;
    long st = breq(k, method, path, ct, body, &r);
    kube_response_free(&r);
    return st;
}

/* GET path as parsed JSON (must be 200). */
static cJSON *bget(struct kube_conn *k, const char *path)
{
    struct kube_response r;
    cr_assert_eq(breq(k, "GET", path, NULL, NULL, &r), 200, "GET %s", path);
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    kube_response_free(&r);
    cr_assert_not_null(j);
    return j;
}

static const char *jstr(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : "";
}

struct fixture {
    struct kube_client *c;
    struct kube_conn *k;
    char ns[64];
    char vwc[B_NAME], mwc[B_NAME];
    char root[64], dir[B_PATH];
};

static const char *webhook_json(const char *kind, const char *name)
{
    static _Thread_local char body[B_BODY];
    /* The second entry starts with a wrong caBundle, the first with none. */
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"admissionregistration.k8s.io/v1\",\"kind\":\"%s\","
             "\"metadata\":{\"name\":\"%s\"},\"webhooks\":["
             "{\"name\":\"a.bootstrap.io\",\"clientConfig\":{\"url\":"
             "\"https://127.0.0.1:1/x\"},\"sideEffects\":\"None\","
             "\"admissionReviewVersions\":[\"v1\"],\"failurePolicy\":\"Ignore\","
             "\"rules\":[{\"apiGroups\":[\"bootstrap.example.com\"],"
             "\"apiVersions\":[\"v1\"],\"operations\":[\"CREATE\"],"
             "\"resources\":[\"widgets\"]}]},"
             "{\"name\":\"b.bootstrap.io\",\"clientConfig\":{\"url\":"
             "\"https://127.0.0.1:1/y\",\"caBundle\":\"QUJD\"},"
             "\"sideEffects\":\"None\",\"admissionReviewVersions\":[\"v1\"],"
             "\"failurePolicy\":\"Ignore\",\"rules\":[{\"apiGroups\":"
             "[\"bootstrap.example.com\"],\"apiVersions\":[\"v1\"],"
             "\"operations\":[\"UPDATE\"],\"resources\":[\"widgets\"]}]}]}",
             kind, name);
    return body;
}

static void vwc_path(char *p, size_t cap, const char *name)
{
    snprintf(p, cap, "/apis/admissionregistration.k8s.io/v1/"
             "validatingwebhookconfigurations/%s", name);
}

static void mwc_path(char *p, size_t cap, const char *name)
{
    snprintf(p, cap, "/apis/admissionregistration.k8s.io/v1/"
             "mutatingwebhookconfigurations/%s", name);
}

static void secret_path(char *p, size_t cap, const char *ns)
{
    snprintf(p, cap, "/api/v1/namespaces/%s/secrets/%s", ns, B_SECRET);
}

static void fixture_up(struct fixture *f, bool with_configs)
{
    static int seq;
    memset(f, 0, sizeof *f);
    f->c = bclient(NULL);
    f->k = kube_conn_new(f->c);
    snprintf(f->ns, sizeof f->ns, "io-boot-%ld-%d-%ld", (long)getpid(), ++seq,
             (long)(bnow() * 1000) % 100000);
    char body[B_BODY];
    snprintf(body, sizeof body, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
             "\"metadata\":{\"name\":\"%s\"}}", f->ns);
    cr_assert_eq(breq_status(f->k, "POST", "/api/v1/namespaces", "application/json",
                             body), 201);
    snprintf(f->vwc, sizeof f->vwc, "%s-v", f->ns);
    snprintf(f->mwc, sizeof f->mwc, "%s-m", f->ns);
    if (with_configs) {
        cr_assert_eq(breq_status(f->k, "POST",
                                 "/apis/admissionregistration.k8s.io/v1/"
                                 "validatingwebhookconfigurations",
                                 "application/json",
                                 webhook_json("ValidatingWebhookConfiguration",
                                              f->vwc)), 201);
        cr_assert_eq(breq_status(f->k, "POST",
                                 "/apis/admissionregistration.k8s.io/v1/"
                                 "mutatingwebhookconfigurations",
                                 "application/json",
                                 webhook_json("MutatingWebhookConfiguration",
                                              f->mwc)), 201);
    }
    snprintf(f->root, sizeof f->root, "/tmp/io-boot-live-XXXXXX");
    cr_assert_not_null(mkdtemp(f->root));
    snprintf(f->dir, sizeof f->dir, "%s/certs", f->root);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[B_PATH * 2];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void fixture_down(struct fixture *f)
{
    char path[B_PATH];
    vwc_path(path, sizeof path, f->vwc);
    breq_status(f->k, "DELETE", path, NULL, NULL);
    mwc_path(path, sizeof path, f->mwc);
    breq_status(f->k, "DELETE", path, NULL, NULL);
    rm_tree(f->root);
    kube_conn_free(f->k);
    kube_client_free(f->c);
}

static struct certs_bootstrap_opts fixture_opts(const struct fixture *f,
                                                const char *dir)
{
    return (struct certs_bootstrap_opts){
        .namespace_ = f->ns, .secret_name = B_SECRET, .service_name = B_SERVICE,
        .validating_config = f->vwc, .mutating_config = f->mwc,
        .cert_dir = dir ? dir : f->dir};
}

/* The Secret's material and resourceVersion. */
static void read_secret(struct kube_conn *k, const char *ns,
                        struct certs_bootstrap_material *m, char *rv)
{
    char path[B_PATH], err[B_ERR], why[CERTS_BOOTSTRAP_WHY_MAX];
    secret_path(path, sizeof path, ns);
    struct kube_response r;
    cr_assert_eq(breq(k, "GET", path, NULL, NULL, &r), 200);
    cr_assert_eq(certs_bootstrap_secret_parse(r.body, r.len, m, rv, why,
                                              sizeof why, err, sizeof err), 0,
                 "%s", err);
    cr_assert_str_eq(why, "", "%s", why);
    kube_response_free(&r);
}

static bool file_is(const char *dir, const char *name,
                    const struct certs_bootstrap_blob *b)
{
    char p[B_PATH * 2], err[B_ERR];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unsigned char *d;
    size_t n;
    if (certs_file_read(p, CERTS_BOOTSTRAP_DATA_MAX, &d, &n, err, sizeof err) != 0)
        return false;
    bool same = n == b->len && memcmp(d, b->data, n) == 0;
    free(d);
    return same;
}

static bool files_match(const char *dir, const struct certs_bootstrap_material *m)
{
    return file_is(dir, "tls.crt", &m->item[CERTS_BOOTSTRAP_TLS_CRT]) &&
           file_is(dir, "tls.key", &m->item[CERTS_BOOTSTRAP_TLS_KEY]) &&
           file_is(dir, "ca.crt", &m->item[CERTS_BOOTSTRAP_CA_CRT]);
}

/* Number of the 4 webhooks whose caBundle is base64(ca); rvs out. */
static int bundles_set(struct kube_conn *k, const struct fixture *f,
                       const struct certs_bootstrap_blob *ca,
                       char vrv[64], char mrv[64])
{
    char *want = b64_encode(ca->data, ca->len);
    char path[B_PATH];
    int n = 0;
    for (int which = 0; which < 2; which++) {
        if (which == 0)
            vwc_path(path, sizeof path, f->vwc);
        else
            mwc_path(path, sizeof path, f->mwc);
        cJSON *o = bget(k, path);
        snprintf(which == 0 ? vrv : mrv, 64, "%s",
                 jstr(o, "metadata", "resourceVersion"));
        const cJSON *h;
        cJSON_ArrayForEach(h, cJSON_GetObjectItem(o, "webhooks"))
            n += strcmp(jstr(h, "clientConfig", "caBundle"), want) == 0;
        cJSON_Delete(o);
    }
    free(want);
    return n;
}

struct fstat3 {
    struct stat s[3];
};

static void stat3(const char *dir, struct fstat3 *out)
{
    const char *names[3] = {"tls.crt", "tls.key", "ca.crt"};
    for (int i = 0; i < 3; i++) {
        char p[B_PATH * 2];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        cr_assert_eq(stat(p, &out->s[i]), 0, "%s", p);
    }
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void run_pass(struct kube_conn *k, const struct certs_bootstrap_opts *o,
                     struct certs_bootstrap_result *res)
{
    char err[B_ERR];
    double t0 = bnow();
    cr_assert_eq(certs_bootstrap_run(k, o, res, err, sizeof err), 0, "%s", err);
    fprintf(stderr, "[bootstrap_live] pass: %s, secret %s, files %s, %u webhook(s) "
            "patched, %u conflict(s), %.1f ms\n",
            certs_bootstrap_action_name(res->action),
            res->secret_written ? "written" : "kept",
            res->files_written ? "written" : "kept", res->webhooks_patched,
            res->conflicts, (bnow() - t0) * 1e3);
}

/* ---- tests -------------------------------------------------------------- */

Test(bootstrap_live, first_pass_creates_second_changes_nothing)
{
    struct fixture f;
    fixture_up(&f, true);
    struct certs_bootstrap_opts o = fixture_opts(&f, NULL);
    struct certs_bootstrap_result res;
    run_pass(f.k, &o, &res);
    cr_assert_eq(res.action, CERTS_BOOTSTRAP_CREATE);
    cr_assert(res.secret_written && res.files_written);
    cr_assert_eq(res.webhooks_patched, 4);
    time_t now = time(NULL);
    cr_assert(res.leaf_not_after > now + 364 * B_DAY &&
              res.leaf_not_after <= now + 365 * B_DAY);

    /* The Secret: kubernetes.io/tls, four keys, a pair for the Service. */
    char path[B_PATH], rv1[CERTS_BOOTSTRAP_RV_MAX], rv2[CERTS_BOOTSTRAP_RV_MAX];
    secret_path(path, sizeof path, f.ns);
    cJSON *s = bget(f.k, path);
    cr_assert_str_eq(jstr(s, "type", NULL), "kubernetes.io/tls");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(s, "data")), 4);
    cr_assert_str_eq(jstr(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "metadata"),
                                              "labels"),
                          "app.kubernetes.io/managed-by", NULL),
                     "inference-operator");
    cJSON_Delete(s);
    struct certs_bootstrap_material m;
    read_secret(f.k, f.ns, &m, rv1);
    struct certs_bootstrap_names names;
    char err[B_ERR];
    cr_assert_eq(certs_bootstrap_names_make(B_SERVICE, f.ns, NULL, &names, err,
                                            sizeof err), 0);
    struct certs_bootstrap_state st;
    certs_bootstrap_examine(&m, &names, now, &st);
    cr_assert(st.ca_ok && st.leaf_ok, "%s", st.why);

    /* The files are the Secret's; the key is private; no ca.key. */
    cr_assert(files_match(f.dir, &m));
    struct fstat3 a, b;
    stat3(f.dir, &a);
    cr_assert_eq(a.s[1].st_mode & 0777, 0600);
    char p[B_PATH * 2];
    snprintf(p, sizeof p, "%s/ca.key", f.dir);
    cr_assert_neq(access(p, F_OK), 0);

    /* All four caBundles. */
    char v1[64], m1[64], v2[64], m2[64];
    cr_assert_eq(bundles_set(f.k, &f, &m.item[CERTS_BOOTSTRAP_CA_CRT], v1, m1), 4);

    /* Second pass: nothing written anywhere. */
    bsleep_ms(20);   /* a rewrite would show in mtime even on coarse clocks */
    run_pass(f.k, &o, &res);
    cr_assert_eq(res.action, CERTS_BOOTSTRAP_KEEP);
    cr_assert(!res.secret_written && !res.files_written);
    cr_assert_eq(res.webhooks_patched, 0);
    struct certs_bootstrap_material m_again;
    read_secret(f.k, f.ns, &m_again, rv2);
    cr_assert_str_eq(rv1, rv2);
    cr_assert_eq(bundles_set(f.k, &f, &m.item[CERTS_BOOTSTRAP_CA_CRT], v2, m2), 4);
    cr_assert_str_eq(v1, v2);
    cr_assert_str_eq(m1, m2);
    stat3(f.dir, &b);
    for (int i = 0; i < 3; i++)
        cr_assert(same_stat(&a.s[i], &b.s[i]), "file %d rewritten", i);

    certs_bootstrap_material_free(&m);
    certs_bootstrap_material_free(&m_again);
    fixture_down(&f);
}

Test(bootstrap_live, expiring_leaf_renewed_with_the_same_ca)
{
    struct fixture f;
    fixture_up(&f, true);
    struct certs_bootstrap_names names;
    char err[B_ERR], path[B_PATH];
    cr_assert_eq(certs_bootstrap_names_make(B_SERVICE, f.ns, NULL, &names, err,
                                            sizeof err), 0);
    /* Someone stored a leaf valid for 2 days. */
    struct certs_bootstrap_material old;
    cr_assert_eq(certs_bootstrap_issue(CERTS_BOOTSTRAP_CREATE, NULL, &names,
                                       time(NULL), 2, &old, err, sizeof err), 0,
                 "%s", err);
    char *body = certs_bootstrap_secret_json(&old, f.ns, B_SECRET, NULL, 0, err,
                                             sizeof err);
    cr_assert_not_null(body, "%s", err);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/secrets", f.ns);
    cr_assert_eq(breq_status(f.k, "POST", path, "application/json", body), 201);
    free(body);

    /* With a 1-day window it is kept and served... */
    struct certs_bootstrap_opts o = fixture_opts(&f, NULL);
    o.validity_days = 2;
    o.renew_before_days = 1;
    struct certs_bootstrap_result res;
    run_pass(f.k, &o, &res);
    cr_assert_eq(res.action, CERTS_BOOTSTRAP_KEEP);
    cr_assert(!res.secret_written && res.files_written);
    cr_assert(files_match(f.dir, &old));
    struct fstat3 a, b;
    stat3(f.dir, &a);

    /* ... with the default 30 days it is due: new leaf, same CA. */
    o = fixture_opts(&f, NULL);
    bsleep_ms(20);
    run_pass(f.k, &o, &res);
    cr_assert_eq(res.action, CERTS_BOOTSTRAP_RENEW_LEAF);
    cr_assert(res.secret_written && res.files_written);
    cr_assert_eq(res.webhooks_patched, 0, "the caBundle must not change");
    struct certs_bootstrap_material now_m;
    char rv[CERTS_BOOTSTRAP_RV_MAX];
    read_secret(f.k, f.ns, &now_m, rv);
    const struct certs_bootstrap_blob *oc = &old.item[CERTS_BOOTSTRAP_CA_CRT];
    const struct certs_bootstrap_blob *nc = &now_m.item[CERTS_BOOTSTRAP_CA_CRT];
    cr_assert(oc->len == nc->len && memcmp(oc->data, nc->data, oc->len) == 0);
    const struct certs_bootstrap_blob *ok = &old.item[CERTS_BOOTSTRAP_CA_KEY];
    const struct certs_bootstrap_blob *nk = &now_m.item[CERTS_BOOTSTRAP_CA_KEY];
    cr_assert(ok->len == nk->len && memcmp(ok->data, nk->data, ok->len) == 0);
    const struct certs_bootstrap_blob *ol = &old.item[CERTS_BOOTSTRAP_TLS_CRT];
    const struct certs_bootstrap_blob *nl = &now_m.item[CERTS_BOOTSTRAP_TLS_CRT];
    cr_assert(ol->len != nl->len || memcmp(ol->data, nl->data, ol->len) != 0);
    struct certs_bootstrap_state st;
    certs_bootstrap_examine(&now_m, &names, time(NULL), &st);
    cr_assert(st.leaf_ok && st.leaf_not_after > time(NULL) + 364 * B_DAY, "%s", st.why);

    /* The files follow; ca.crt is left alone. */
    cr_assert(files_match(f.dir, &now_m));
    stat3(f.dir, &b);
    cr_assert(!same_stat(&a.s[0], &b.s[0]) && !same_stat(&a.s[1], &b.s[1]));
    cr_assert(same_stat(&a.s[2], &b.s[2]));
    char v[64], m[64];
    cr_assert_eq(bundles_set(f.k, &f, nc, v, m), 4);

    certs_bootstrap_material_free(&old);
    certs_bootstrap_material_free(&now_m);
    fixture_down(&f);
}

struct racer {
    struct kube_client *c;
    struct certs_bootstrap_opts o;
    pthread_barrier_t *go;
    struct certs_bootstrap_result res;
    int rc;
    char err[B_ERR];
};

static void *race_main(void *arg)
{
    struct racer *r = arg;
    struct kube_conn *k = kube_conn_new(r->c);
    /* Warm the connection so both passes start their GETs together. */
    struct kube_response resp;
    char err[B_ERR];
    if (kube_request(k, "GET", "/version", NULL, NULL, 0, &resp, err,
                     sizeof err) == 0)
        kube_response_free(&resp);
    pthread_barrier_wait(r->go);
    r->rc = certs_bootstrap_run(k, &r->o, &r->res, r->err, sizeof r->err);
    kube_conn_free(k);
    return NULL;
}

#define RACE_ROUNDS 4

Test(bootstrap_live, concurrent_first_passes_agree)
{
    unsigned lost_posts = 0, conflicts = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        struct fixture f;
        fixture_up(&f, true);
        char dir2[B_PATH];
        snprintf(dir2, sizeof dir2, "%s/replica2", f.root);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct racer r[2] = {
            {.c = f.c, .o = fixture_opts(&f, NULL), .go = &go},
            {.c = f.c, .o = fixture_opts(&f, dir2), .go = &go},
        };
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, race_main, &r[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < 2; i++)
            cr_assert_eq(r[i].rc, 0, "replica %d: %s", i, r[i].err);
        /* Exactly one created the Secret; the other used it. */
        cr_assert_eq(r[0].res.secret_written + r[1].res.secret_written, 1);
        cr_assert_eq(r[0].res.webhooks_patched + r[1].res.webhooks_patched, 4);
        for (int i = 0; i < 2; i++) {
            if (!r[i].res.secret_written && r[i].res.conflicts > 0)
                lost_posts++;
            conflicts += r[i].res.conflicts;
        }
        struct certs_bootstrap_material m;
        char rv[CERTS_BOOTSTRAP_RV_MAX], v[64], mm[64];
        read_secret(f.k, f.ns, &m, rv);
        cr_assert(files_match(f.dir, &m), "replica 1's files differ");
        cr_assert(files_match(dir2, &m), "replica 2's files differ");
        cr_assert_eq(bundles_set(f.k, &f, &m.item[CERTS_BOOTSTRAP_CA_CRT], v, mm), 4);
        char path[B_PATH];
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/secrets", f.ns);
        cJSON *list = bget(f.k, path);
        int n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
            n += strcmp(jstr(it, "metadata", "name"), B_SECRET) == 0;
        cr_assert_eq(n, 1);
        cJSON_Delete(list);
        certs_bootstrap_material_free(&m);
        fixture_down(&f);
    }
    fprintf(stderr, "[bootstrap_live] %d racing rounds: %u lost POST(s) retried "
            "(409 AlreadyExists), %u conflict(s) in all\n", RACE_ROUNDS,
            lost_posts, conflicts);
}

Test(bootstrap_live, missing_configuration_is_an_error_files_still_written)
{
    struct fixture f;
    fixture_up(&f, false);
    struct certs_bootstrap_opts o = fixture_opts(&f, NULL);
    struct certs_bootstrap_result res;
    char err[B_ERR];
    cr_assert_eq(certs_bootstrap_run(f.k, &o, &res, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "ValidatingWebhookConfiguration"), "%s", err);
    cr_assert_not_null(strstr(err, "does not exist"), "%s", err);
    cr_assert(res.secret_written && res.files_written);
    struct certs_bootstrap_material m;
    char rv[CERTS_BOOTSTRAP_RV_MAX];
    read_secret(f.k, f.ns, &m, rv);
    cr_assert(files_match(f.dir, &m));
    /* Without the configuration names it succeeds. */
    o.validating_config = NULL;
    o.mutating_config = "";
    cr_assert_eq(certs_bootstrap_run(f.k, &o, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.action, CERTS_BOOTSTRAP_KEEP);
    certs_bootstrap_material_free(&m);
    fixture_down(&f);
}

Test(bootstrap_live, renewal_thread_follows_a_rotated_secret)
{
    struct fixture f;
    fixture_up(&f, true);
    struct certs_bootstrap_opts o = fixture_opts(&f, NULL);
    o.interval_s = 1;
    struct certs_bootstrap_result res;
    run_pass(f.k, &o, &res);
    struct certs_bootstrap *b;
    char err[B_ERR];
    cr_assert_eq(certs_bootstrap_start(f.c, &o, &b, err, sizeof err), 0, "%s", err);

    /* Another replica rotates to a new CA (PUT over what it read). */
    struct certs_bootstrap_material cur, next;
    struct certs_bootstrap_names names;
    char rv[CERTS_BOOTSTRAP_RV_MAX], path[B_PATH];
    read_secret(f.k, f.ns, &cur, rv);
    cr_assert_eq(certs_bootstrap_names_make(B_SERVICE, f.ns, NULL, &names, err,
                                            sizeof err), 0);
    cr_assert_eq(certs_bootstrap_issue(CERTS_BOOTSTRAP_NEW_CA, &cur, &names,
                                       time(NULL), 365, &next, err, sizeof err), 0);
    secret_path(path, sizeof path, f.ns);
    struct kube_response r;
    cr_assert_eq(breq(f.k, "GET", path, NULL, NULL, &r), 200);
    char *body = certs_bootstrap_secret_json(&next, f.ns, B_SECRET, r.body, r.len,
                                             err, sizeof err);
    kube_response_free(&r);
    cr_assert_not_null(body, "%s", err);
    cr_assert_eq(breq_status(f.k, "PUT", path, "application/json", body), 200);
    free(body);

    /* The thread injects the two-CA bundle and writes the new pair. */
    double t0 = bnow();
    char v[64], m[64];
    while (!(files_match(f.dir, &next) &&
             bundles_set(f.k, &f, &next.item[CERTS_BOOTSTRAP_CA_CRT], v, m) == 4)) {
        cr_assert(bnow() - t0 < B_WAIT_S, "the thread did not follow within %.0f s",
                  B_WAIT_S);
        bsleep_ms(100);
    }
    fprintf(stderr, "[bootstrap_live] thread followed the rotation in %.2f s\n",
            bnow() - t0);
    struct certs_bootstrap_stats stats;
    certs_bootstrap_stats(b, &stats);
    cr_assert(stats.passes_ok >= 1 && stats.file_writes >= 1 &&
              stats.webhooks_patched == 4 && stats.secret_writes == 0);
    cr_assert_eq(stats.passes_failed, 0);
    t0 = bnow();
    certs_bootstrap_stop(b);
    cr_assert(bnow() - t0 < 1.0, "stop took %.2f s", bnow() - t0);
    certs_bootstrap_material_free(&cur);
    certs_bootstrap_material_free(&next);
    fixture_down(&f);
}

Test(bootstrap_live, first_pass_retries_until_deadline)
{
    struct kube_client *c = bclient("https://127.0.0.1:1");
    struct kube_conn *k = kube_conn_new(c);
    struct certs_bootstrap_opts o = {
        .namespace_ = "ops", .secret_name = B_SECRET, .service_name = B_SERVICE,
        .cert_dir = "/tmp/io-boot-unused"};
    char err[B_ERR];
    double t0 = bnow();
    cr_assert_eq(certs_bootstrap_first_pass(k, &o, 3, NULL, NULL, err, sizeof err),
                 -1);
    double took = bnow() - t0;
    cr_assert(took >= 2.9 && took < 4.5, "took %.2f s", took);
    cr_assert_not_null(strstr(err, "127.0.0.1:1"), "%s", err);
    /* A configuration error is not retried. */
    o.secret_name = "Bad Name";
    t0 = bnow();
    cr_assert_eq(certs_bootstrap_first_pass(k, &o, 30, NULL, NULL, err, sizeof err),
                 -1);
    cr_assert(bnow() - t0 < 0.5);
    kube_conn_free(k);
    kube_client_free(c);
}
