/*
 * test_bootstrap.c — the parts of the self-signed bootstrap without I/O
 * to the API server: names, options, the decision with injected
 * time, issuing and judging certificates, the Secret's JSON both ways,
 * the caBundle patch, and writing the cert dir.
 */
#include <criterion/criterion.h>

#include "base64.h"
#include "bootstrap.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERR_MAX 1024
#define DAY 86400
#define PATH_T 512

static const time_t T0 = 1800000000;   /* 2027-01-15 */

/* Filled in place: list points into dns, so the struct is not copied. */
static void names_of(const char *svc, const char *ns,
                     struct certs_bootstrap_names *n)
{
    char err[ERR_MAX];
    cr_assert_eq(certs_bootstrap_names_make(svc, ns, NULL, n, err, sizeof err),
                 0, "%s", err);
}

static void issue(enum certs_bootstrap_action a,
                  const struct certs_bootstrap_material *old,
                  const struct certs_bootstrap_names *n, time_t now,
                  unsigned days, struct certs_bootstrap_material *out)
{
    char err[ERR_MAX];
    cr_assert_eq(certs_bootstrap_issue(a, old, n, now, days, out, err,
                                       sizeof err), 0, "%s", err);
}

static bool blob_eq(const struct certs_bootstrap_blob *a,
                    const struct certs_bootstrap_blob *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static size_t count_certs(const struct certs_bootstrap_blob *b)
{
    size_t n = 0;
    const char *p = (const char *)b->data;
    while ((p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* ---- names and options ------------------------------------------------- */

Test(bootstrap, dns_names_from_service_and_namespace)
{
    struct certs_bootstrap_names n;
    names_of("io-webhook", "ops", &n);
    cr_assert_eq(n.count, 4);
    cr_assert_str_eq(n.list[0], "io-webhook");
    cr_assert_str_eq(n.list[1], "io-webhook.ops");
    cr_assert_str_eq(n.list[2], "io-webhook.ops.svc");
    cr_assert_str_eq(n.list[3], "io-webhook.ops.svc.cluster.local");

    char err[ERR_MAX];
    cr_assert_eq(certs_bootstrap_names_make("w", "n", "corp.example", &n, err,
                                            sizeof err), 0, "%s", err);
    cr_assert_str_eq(n.list[3], "w.n.svc.corp.example");

    const char *bad[][2] = {{"Webhook", "ops"}, {"web_hook", "ops"},
                            {"", "ops"}, {"w", ""}, {"-w", "ops"},
                            {"w", "o.ps"}, {NULL, "ops"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq(certs_bootstrap_names_make(bad[i][0], bad[i][1], NULL, &n,
                                                err, sizeof err), -1,
                     "case %zu", i);
        cr_assert_neq(err[0], '\0');
    }
    /* A cluster domain that makes a bad host name. */
    cr_assert_eq(certs_bootstrap_names_make("w", "n", "bad_domain", &n, err,
                                            sizeof err), -1);
}

static struct certs_bootstrap_opts good_opts(void)
{
    return (struct certs_bootstrap_opts){
        .namespace_ = "ops", .secret_name = "io-webhook-tls",
        .service_name = "io-webhook", .validating_config = "io-validating",
        .mutating_config = "io-mutating", .cert_dir = "/tmp/x"};
}

Test(bootstrap, options_defaults_and_checks)
{
    struct certs_bootstrap_opts o = good_opts(), r;
    char err[ERR_MAX];
    cr_assert_eq(certs_bootstrap_opts_resolve(&o, &r, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(r.validity_days, 365);
    cr_assert_eq(r.renew_before_days, 30);
    cr_assert_eq(r.interval_s, 60);
    cr_assert_str_eq(r.cluster_domain, "cluster.local");

    o.mutating_config = "";
    cr_assert_eq(certs_bootstrap_opts_resolve(&o, &r, err, sizeof err), 0);
    cr_assert_null(r.mutating_config);

    struct { const char *what; struct certs_bootstrap_opts o; } bad[] = {
        {"renew >= validity", good_opts()}, {"no dir", good_opts()},
        {"bad secret", good_opts()}, {"no secret", good_opts()},
        {"bad config", good_opts()}, {"validity", good_opts()},
        {"interval", good_opts()}, {"no service", good_opts()},
    };
    bad[0].o.validity_days = 10;
    bad[0].o.renew_before_days = 10;
    bad[1].o.cert_dir = "";
    bad[2].o.secret_name = "Bad";
    bad[3].o.secret_name = NULL;
    bad[4].o.validating_config = "a/b";
    bad[5].o.validity_days = CERTS_BOOTSTRAP_VALIDITY_DAYS_MAX + 1;
    bad[6].o.interval_s = CERTS_BOOTSTRAP_INTERVAL_S_MAX + 1;
    bad[7].o.service_name = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(certs_bootstrap_opts_resolve(&bad[i].o, &r, err, sizeof err),
                     -1, "%s accepted", bad[i].what);
}

/* ---- the decision ------------------------------------------------------ */

Test(bootstrap, decide_with_injected_time)
{
    const unsigned V = 365, R = 30;
    struct certs_bootstrap_state s = {0};
    cr_assert_eq(certs_bootstrap_decide(&s, T0, V, R), CERTS_BOOTSTRAP_CREATE);

    s = (struct certs_bootstrap_state){.present = true, .ca_ok = true,
        .ca_not_after = T0 + 3000 * (time_t)DAY, .leaf_ok = true,
        .leaf_not_after = T0 + 200 * (time_t)DAY};
    cr_assert_eq(certs_bootstrap_decide(&s, T0, V, R), CERTS_BOOTSTRAP_KEEP);
    /* 31 days left: keep; exactly 30: renew. */
    time_t t = s.leaf_not_after - 31 * (time_t)DAY;
    cr_assert_eq(certs_bootstrap_decide(&s, t, V, R), CERTS_BOOTSTRAP_KEEP);
    t = s.leaf_not_after - 30 * (time_t)DAY;
    cr_assert_eq(certs_bootstrap_decide(&s, t, V, R), CERTS_BOOTSTRAP_RENEW_LEAF);
    /* The CA must outlive a new leaf: 366 days left renews, 365 does not. */
    s.ca_not_after = t + 366 * (time_t)DAY;
    cr_assert_eq(certs_bootstrap_decide(&s, t, V, R), CERTS_BOOTSTRAP_RENEW_LEAF);
    s.ca_not_after = t + 365 * (time_t)DAY;
    cr_assert_eq(certs_bootstrap_decide(&s, t, V, R), CERTS_BOOTSTRAP_NEW_CA);
    /* An invalid leaf (names, key, chain) is replaced at once. */
    s.ca_not_after = T0 + 3000 * (time_t)DAY;
    s.leaf_ok = false;
    cr_assert_eq(certs_bootstrap_decide(&s, T0, V, R), CERTS_BOOTSTRAP_RENEW_LEAF);
    /* No usable CA key: a new CA, even with a good leaf due. */
    s.ca_ok = false;
    cr_assert_eq(certs_bootstrap_decide(&s, T0, V, R), CERTS_BOOTSTRAP_NEW_CA);
    /* ... but a good leaf outside the window is kept without one. */
    s.leaf_ok = true;
    cr_assert_eq(certs_bootstrap_decide(&s, T0, V, R), CERTS_BOOTSTRAP_KEEP);
    cr_assert_str_eq(certs_bootstrap_action_name(CERTS_BOOTSTRAP_RENEW_LEAF),
                     "renew-leaf");
}

/* ---- issuing and judging ----------------------------------------------- */

Test(bootstrap, issue_examine_and_decide_over_a_lifetime)
{
    struct certs_bootstrap_names n;
    names_of("io-webhook", "ops", &n);
    struct certs_bootstrap_material m;
    struct certs_bootstrap_state st;
    issue(CERTS_BOOTSTRAP_CREATE, NULL, &n, T0, 365, &m);
    for (int i = 0; i < CERTS_BOOTSTRAP_ITEMS; i++)
        cr_assert(m.item[i].len > 0 && m.item[i].data[m.item[i].len] == '\0');
    cr_assert_eq(count_certs(&m.item[CERTS_BOOTSTRAP_CA_CRT]), 1);
    cr_assert_not_null(strstr((char *)m.item[CERTS_BOOTSTRAP_TLS_KEY].data,
                              "BEGIN PRIVATE KEY"));

    certs_bootstrap_examine(&m, &n, T0, &st);
    cr_assert(st.present && st.ca_ok && st.leaf_ok, "%s", st.why);
    cr_assert_eq(st.leaf_not_after, T0 + 365 * (time_t)DAY);
    cr_assert_eq(st.ca_not_after, T0 + 3650 * (time_t)DAY);
    cr_assert_eq(certs_bootstrap_decide(&st, T0, 365, 30), CERTS_BOOTSTRAP_KEEP);

    /* Day 336: inside the 30-day window. */
    time_t t = T0 + 336 * (time_t)DAY;
    certs_bootstrap_examine(&m, &n, t, &st);
    cr_assert(st.leaf_ok, "%s", st.why);
    cr_assert_eq(certs_bootstrap_decide(&st, t, 365, 30),
                 CERTS_BOOTSTRAP_RENEW_LEAF);
    /* Day 400: the leaf has expired; the CA still signs. */
    t = T0 + 400 * (time_t)DAY;
    certs_bootstrap_examine(&m, &n, t, &st);
    cr_assert(!st.leaf_ok && st.ca_ok);
    cr_assert_not_null(strstr(st.why, "expired"), "%s", st.why);
    cr_assert_eq(certs_bootstrap_decide(&st, t, 365, 30),
                 CERTS_BOOTSTRAP_RENEW_LEAF);
    /* Day 3300: the CA would die before a new leaf. */
    t = T0 + 3300 * (time_t)DAY;
    certs_bootstrap_examine(&m, &n, t, &st);
    cr_assert_eq(certs_bootstrap_decide(&st, t, 365, 30), CERTS_BOOTSTRAP_NEW_CA);
    /* Day 3651: the CA has expired. */
    t = T0 + 3651 * (time_t)DAY;
    certs_bootstrap_examine(&m, &n, t, &st);
    cr_assert(!st.ca_ok && !st.leaf_ok);
    cr_assert_eq(certs_bootstrap_decide(&st, t, 365, 30), CERTS_BOOTSTRAP_NEW_CA);
    certs_bootstrap_material_free(&m);
    cr_assert_null(m.item[0].data);
}

Test(bootstrap, renew_leaf_keeps_the_ca)
{
    struct certs_bootstrap_names n;
    names_of("io-webhook", "ops", &n);
    struct certs_bootstrap_material a, b;
    struct certs_bootstrap_state st;
    issue(CERTS_BOOTSTRAP_CREATE, NULL, &n, T0, 365, &a);
    time_t t = T0 + 340 * (time_t)DAY;
    issue(CERTS_BOOTSTRAP_RENEW_LEAF, &a, &n, t, 365, &b);
    cr_assert(blob_eq(&a.item[CERTS_BOOTSTRAP_CA_CRT], &b.item[CERTS_BOOTSTRAP_CA_CRT]));
    cr_assert(blob_eq(&a.item[CERTS_BOOTSTRAP_CA_KEY], &b.item[CERTS_BOOTSTRAP_CA_KEY]));
    cr_assert(!blob_eq(&a.item[CERTS_BOOTSTRAP_TLS_CRT], &b.item[CERTS_BOOTSTRAP_TLS_CRT]));
    cr_assert(!blob_eq(&a.item[CERTS_BOOTSTRAP_TLS_KEY], &b.item[CERTS_BOOTSTRAP_TLS_KEY]));
    certs_bootstrap_examine(&b, &n, t, &st);
    cr_assert(st.ca_ok && st.leaf_ok, "%s", st.why);
    cr_assert_eq(st.leaf_not_after, t + 365 * (time_t)DAY);
    cr_assert_eq(certs_bootstrap_decide(&st, t, 365, 30), CERTS_BOOTSTRAP_KEEP);

    /* Renewing without a stored CA is refused. */
    char err[ERR_MAX];
    struct certs_bootstrap_material c;
    cr_assert_eq(certs_bootstrap_issue(CERTS_BOOTSTRAP_RENEW_LEAF, NULL, &n, t,
                                       365, &c, err, sizeof err), -1);
    cr_assert_eq(certs_bootstrap_issue(CERTS_BOOTSTRAP_KEEP, &a, &n, t, 365, &c,
                                       err, sizeof err), -1);
    certs_bootstrap_material_free(&a);
    certs_bootstrap_material_free(&b);
}

Test(bootstrap, new_ca_bundles_the_previous_ca)
{
    struct certs_bootstrap_names n;
    names_of("io-webhook", "ops", &n);
    struct certs_bootstrap_material a, b, c;
    struct certs_bootstrap_state st;
    issue(CERTS_BOOTSTRAP_CREATE, NULL, &n, T0, 365, &a);
    time_t t = T0 + 3400 * (time_t)DAY;
    issue(CERTS_BOOTSTRAP_NEW_CA, &a, &n, t, 365, &b);
    const struct certs_bootstrap_blob *old_ca = &a.item[CERTS_BOOTSTRAP_CA_CRT];
    const struct certs_bootstrap_blob *bundle = &b.item[CERTS_BOOTSTRAP_CA_CRT];
    cr_assert_eq(count_certs(bundle), 2);
    /* New CA first, the old one after it, byte for byte. */
    cr_assert(bundle->len > old_ca->len);
    cr_assert_eq(memcmp(bundle->data + bundle->len - old_ca->len, old_ca->data,
                        old_ca->len), 0);
    cr_assert(!blob_eq(&a.item[CERTS_BOOTSTRAP_CA_KEY], &b.item[CERTS_BOOTSTRAP_CA_KEY]));
    certs_bootstrap_examine(&b, &n, t, &st);
    cr_assert(st.ca_ok && st.leaf_ok, "%s", st.why);
    cr_assert_eq(st.ca_not_after, t + 3650 * (time_t)DAY);

    /* Once the old CA has expired it is dropped; the bundle stays at 2. */
    time_t t2 = T0 + 3700 * (time_t)DAY;
    issue(CERTS_BOOTSTRAP_NEW_CA, &b, &n, t2, 365, &c);
    cr_assert_eq(count_certs(&c.item[CERTS_BOOTSTRAP_CA_CRT]), 2);
    certs_bootstrap_material_free(&c);
    struct certs_bootstrap_material d;
    issue(CERTS_BOOTSTRAP_NEW_CA, &a, &n, t2, 365, &d);
    cr_assert_eq(count_certs(&d.item[CERTS_BOOTSTRAP_CA_CRT]), 1);
    certs_bootstrap_material_free(&d);
    /* A long validity gets a CA of twice that. */
    issue(CERTS_BOOTSTRAP_CREATE, NULL, &n, T0, 3000, &d);
    certs_bootstrap_examine(&d, &n, T0, &st);
    cr_assert_eq(st.ca_not_after, T0 + 6000 * (time_t)DAY);
    certs_bootstrap_material_free(&d);
    certs_bootstrap_material_free(&a);
    certs_bootstrap_material_free(&b);
}

Test(bootstrap, examine_finds_what_is_wrong)
{
    struct certs_bootstrap_names n;
    names_of("io-webhook", "ops", &n);
    struct certs_bootstrap_names other;
    names_of("io-webhook", "elsewhere", &other);
    struct certs_bootstrap_material a, b, mix;
    struct certs_bootstrap_state st;
    issue(CERTS_BOOTSTRAP_CREATE, NULL, &n, T0, 365, &a);
    issue(CERTS_BOOTSTRAP_CREATE, NULL, &n, T0, 365, &b);

    /* Names: the Service moved to another namespace. */
    certs_bootstrap_examine(&a, &other, T0, &st);
    cr_assert(st.ca_ok && !st.leaf_ok);
    cr_assert_not_null(strstr(st.why, "does not cover io-webhook.elsewhere"),
                       "%s", st.why);
    cr_assert_eq(certs_bootstrap_decide(&st, T0, 365, 30),
                 CERTS_BOOTSTRAP_RENEW_LEAF);

    /* Key of another leaf. */
    cr_assert_eq(certs_bootstrap_material_copy(&a, &mix), 0);
    free(mix.item[CERTS_BOOTSTRAP_TLS_KEY].data);
    mix.item[CERTS_BOOTSTRAP_TLS_KEY].data = NULL;
    {
        struct certs_bootstrap_material tmp;
        cr_assert_eq(certs_bootstrap_material_copy(&b, &tmp), 0);
        mix.item[CERTS_BOOTSTRAP_TLS_KEY] = tmp.item[CERTS_BOOTSTRAP_TLS_KEY];
        tmp.item[CERTS_BOOTSTRAP_TLS_KEY].data = NULL;
        certs_bootstrap_material_free(&tmp);
    }
    certs_bootstrap_examine(&mix, &n, T0, &st);
    cr_assert(st.ca_ok && !st.leaf_ok);
    cr_assert_not_null(strstr(st.why, "tls.key does not belong"), "%s", st.why);
    certs_bootstrap_material_free(&mix);

    /* Leaf signed by another CA. */
    cr_assert_eq(certs_bootstrap_material_copy(&a, &mix), 0);
    for (int i = CERTS_BOOTSTRAP_CA_CRT; i <= CERTS_BOOTSTRAP_CA_KEY; i++) {
        free(mix.item[i].data);
        mix.item[i].data = malloc(b.item[i].len + 1);
        memcpy(mix.item[i].data, b.item[i].data, b.item[i].len + 1);
        mix.item[i].len = b.item[i].len;
    }
    certs_bootstrap_examine(&mix, &n, T0, &st);
    cr_assert(st.ca_ok && !st.leaf_ok);
    cr_assert_not_null(strstr(st.why, "not signed by ca.crt"), "%s", st.why);
    certs_bootstrap_material_free(&mix);

    /* No ca.key: the leaf is still fine, the CA cannot sign. */
    cr_assert_eq(certs_bootstrap_material_copy(&a, &mix), 0);
    free(mix.item[CERTS_BOOTSTRAP_CA_KEY].data);
    mix.item[CERTS_BOOTSTRAP_CA_KEY].data = NULL;
    mix.item[CERTS_BOOTSTRAP_CA_KEY].len = 0;
    certs_bootstrap_examine(&mix, &n, T0, &st);
    cr_assert(!st.ca_ok && st.leaf_ok);
    cr_assert_not_null(strstr(st.why, "ca.key"), "%s", st.why);
    certs_bootstrap_material_free(&mix);

    /* The leaf as its own CA: not a CA certificate. */
    cr_assert_eq(certs_bootstrap_material_copy(&a, &mix), 0);
    free(mix.item[CERTS_BOOTSTRAP_CA_CRT].data);
    mix.item[CERTS_BOOTSTRAP_CA_CRT].data =
        (unsigned char *)strdup((char *)a.item[CERTS_BOOTSTRAP_TLS_CRT].data);
    mix.item[CERTS_BOOTSTRAP_CA_CRT].len = a.item[CERTS_BOOTSTRAP_TLS_CRT].len;
    certs_bootstrap_examine(&mix, &n, T0, &st);
    cr_assert(!st.ca_ok && !st.leaf_ok);
    cr_assert_not_null(strstr(st.why, "not a CA"), "%s", st.why);
    cr_assert_eq(certs_bootstrap_decide(&st, T0, 365, 30), CERTS_BOOTSTRAP_NEW_CA);
    certs_bootstrap_material_free(&mix);

    /* Nothing at all. */
    memset(&mix, 0, sizeof mix);
    certs_bootstrap_examine(&mix, &n, T0, &st);
    cr_assert(st.present && !st.ca_ok && !st.leaf_ok);
    certs_bootstrap_material_free(&a);
    certs_bootstrap_material_free(&b);
}

/* ---- the Secret's JSON ------------------------------------------------- */

static void check_data(const cJSON *root, const struct certs_bootstrap_material *m)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    cr_assert(cJSON_IsObject(data));
    cr_assert_eq(cJSON_GetArraySize(data), CERTS_BOOTSTRAP_ITEMS);
    for (int i = 0; i < CERTS_BOOTSTRAP_ITEMS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(
            data, certs_bootstrap_item_key((enum certs_bootstrap_item)i));
        cr_assert(cJSON_IsString(v));
        unsigned char *d;
        size_t n;
        cr_assert_eq(b64_decode(v->valuestring, strlen(v->valuestring),
                                CERTS_BOOTSTRAP_DATA_MAX, 0, &d, &n, NULL), 0);
        cr_assert_eq(n, m->item[i].len);
        cr_assert_eq(memcmp(d, m->item[i].data, n), 0);
        free(d);
    }
}

static const char *path_str(const cJSON *root, const char *a, const char *b,
                            const char *c)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (c)
        v = cJSON_GetObjectItemCaseSensitive(v, c);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

Test(bootstrap, secret_json_create_parse_update)
{
    struct certs_bootstrap_names n;
    names_of("io-webhook", "ops", &n);
    struct certs_bootstrap_material m, back, m2;
    char err[ERR_MAX], rv[CERTS_BOOTSTRAP_RV_MAX], why[CERTS_BOOTSTRAP_WHY_MAX];
    issue(CERTS_BOOTSTRAP_CREATE, NULL, &n, T0, 365, &m);

    char *json = certs_bootstrap_secret_json(&m, "ops", "io-webhook-tls", NULL,
                                             0, err, sizeof err);
    cr_assert_not_null(json, "%s", err);
    cJSON *root = cJSON_Parse(json);
    cr_assert_str_eq(path_str(root, "apiVersion", NULL, NULL), "v1");
    cr_assert_str_eq(path_str(root, "kind", NULL, NULL), "Secret");
    cr_assert_str_eq(path_str(root, "type", NULL, NULL), "kubernetes.io/tls");
    cr_assert_str_eq(path_str(root, "metadata", "name", NULL), "io-webhook-tls");
    cr_assert_str_eq(path_str(root, "metadata", "namespace", NULL), "ops");
    cr_assert_str_eq(path_str(root, "metadata", "labels",
                              "app.kubernetes.io/managed-by"),
                     "inference-operator");
    cr_assert_null(path_str(root, "metadata", "resourceVersion", NULL));
    check_data(root, &m);

    /* What the API returns: the same plus a resourceVersion. */
    cJSON_AddStringToObject(cJSON_GetObjectItem(root, "metadata"),
                            "resourceVersion", "812");
    char *stored = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    cr_assert_eq(certs_bootstrap_secret_parse(stored, strlen(stored), &back, rv,
                                              why, sizeof why, err, sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(rv, "812");
    cr_assert_str_eq(why, "");
    for (int i = 0; i < CERTS_BOOTSTRAP_ITEMS; i++)
        cr_assert(blob_eq(&back.item[i], &m.item[i]), "item %d", i);

    /* The update keeps what others put on the object. */
    const char *existing =
        "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
        "\"io-webhook-tls\",\"namespace\":\"ops\",\"resourceVersion\":\"900\","
        "\"uid\":\"u-1\",\"labels\":{\"team\":\"ml\"},\"annotations\":{\"a\":"
        "\"b\"}},\"type\":\"kubernetes.io/tls\",\"data\":{\"tls.crt\":\"QQ==\","
        "\"extra\":\"QQ==\"},\"stringData\":{\"x\":\"y\"}}";
    issue(CERTS_BOOTSTRAP_RENEW_LEAF, &m, &n, T0 + DAY, 365, &m2);
    char *put = certs_bootstrap_secret_json(&m2, "ops", "io-webhook-tls",
                                            existing, strlen(existing), err,
                                            sizeof err);
    cr_assert_not_null(put, "%s", err);
    root = cJSON_Parse(put);
    cr_assert_str_eq(path_str(root, "metadata", "resourceVersion", NULL), "900");
    cr_assert_str_eq(path_str(root, "metadata", "uid", NULL), "u-1");
    cr_assert_str_eq(path_str(root, "metadata", "labels", "team"), "ml");
    cr_assert_str_eq(path_str(root, "metadata", "labels",
                              "app.kubernetes.io/managed-by"),
                     "inference-operator");
    cr_assert_str_eq(path_str(root, "metadata", "annotations", "a"), "b");
    cr_assert_null(cJSON_GetObjectItem(root, "stringData"));
    check_data(root, &m2);   /* exactly four keys: "extra" is gone */
    cJSON_Delete(root);

    /* Nothing to store without every item. */
    free(m2.item[CERTS_BOOTSTRAP_CA_KEY].data);
    m2.item[CERTS_BOOTSTRAP_CA_KEY].data = NULL;
    cr_assert_null(certs_bootstrap_secret_json(&m2, "ops", "s", NULL, 0, err,
                                               sizeof err));
    cr_assert_not_null(strstr(err, "ca.key"));

    free(json);
    free(put);
    free(stored);
    certs_bootstrap_material_free(&m);
    certs_bootstrap_material_free(&m2);
    certs_bootstrap_material_free(&back);
}

Test(bootstrap, secret_parse_refuses_and_tolerates)
{
    struct certs_bootstrap_material m;
    char err[ERR_MAX], rv[CERTS_BOOTSTRAP_RV_MAX], why[CERTS_BOOTSTRAP_WHY_MAX];
    const char *refused[] = {
        "not json",
        "[]",
        "{\"type\":\"Opaque\",\"metadata\":{\"resourceVersion\":\"1\"}}",
        "{\"metadata\":{\"resourceVersion\":\"1\"}}",
        "{\"type\":\"kubernetes.io/tls\",\"metadata\":{}}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        cr_assert_eq(certs_bootstrap_secret_parse(refused[i], strlen(refused[i]),
                                                  &m, rv, why, sizeof why, err,
                                                  sizeof err), -1, "%s",
                     refused[i]);

    /* Bad values are left empty; the rest is read. */
    size_t big = CERTS_BOOTSTRAP_DATA_MAX + 3;   /* decodes to > max */
    unsigned char *raw = calloc(1, big);
    char *big64 = b64_encode(raw, big);
    size_t cap = strlen(big64) + 512;
    char *json = malloc(cap);
    snprintf(json, cap,
             "{\"type\":\"kubernetes.io/tls\",\"metadata\":{\"resourceVersion\":"
             "\"7\"},\"data\":{\"tls.crt\":\"QUJD\",\"tls.key\":\"!!!!\","
             "\"ca.crt\":\"%s\"}}", big64);
    cr_assert_eq(certs_bootstrap_secret_parse(json, strlen(json), &m, rv, why,
                                              sizeof why, err, sizeof err), 0,
                 "%s", err);
    cr_assert_str_eq(rv, "7");
    cr_assert_eq(m.item[CERTS_BOOTSTRAP_TLS_CRT].len, 3);
    cr_assert_str_eq((char *)m.item[CERTS_BOOTSTRAP_TLS_CRT].data, "ABC");
    cr_assert_null(m.item[CERTS_BOOTSTRAP_TLS_KEY].data);
    cr_assert_null(m.item[CERTS_BOOTSTRAP_CA_CRT].data);
    cr_assert_null(m.item[CERTS_BOOTSTRAP_CA_KEY].data);
    cr_assert_not_null(strstr(why, "tls.key is not base64"), "%s", why);
    cr_assert_not_null(strstr(why, "ca.crt is not base64 or is too large"), "%s", why);
    cr_assert_not_null(strstr(why, "ca.key missing"), "%s", why);
    certs_bootstrap_material_free(&m);
    free(json);
    free(big64);
    free(raw);
}

/* ---- the caBundle patch ------------------------------------------------ */

/* Applies our patch shape: a test of /metadata/resourceVersion, then adds
 * of /webhooks/N/clientConfig/caBundle.  Returns 0 or -1. */
static int apply_patch(cJSON *doc, const char *patch)
{
    cJSON *ops = cJSON_Parse(patch);
    const cJSON *op;
    int rc = 0;
    cJSON_ArrayForEach(op, ops) {
        const char *kind = cJSON_GetObjectItem(op, "op")->valuestring;
        const char *path = cJSON_GetObjectItem(op, "path")->valuestring;
        const char *value = cJSON_GetObjectItem(op, "value")->valuestring;
        if (strcmp(kind, "test") == 0) {
            const cJSON *have = cJSON_GetObjectItem(
                cJSON_GetObjectItem(doc, "metadata"), "resourceVersion");
            cr_assert_str_eq(path, "/metadata/resourceVersion");
            if (!cJSON_IsString(have) || strcmp(have->valuestring, value) != 0)
                rc = -1;
            continue;
        }
        cr_assert_str_eq(kind, "add");
        unsigned i;
        char tail[64];
        cr_assert_eq(sscanf(path, "/webhooks/%u/%63s", &i, tail), 2, "%s", path);
        cr_assert_str_eq(tail, "clientConfig/caBundle");
        cJSON *cc = cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "webhooks"), (int)i),
            "clientConfig");
        cr_assert_not_null(cc);
        cJSON_DeleteItemFromObject(cc, "caBundle");
        cJSON_AddStringToObject(cc, "caBundle", value);
    }
    cJSON_Delete(ops);
    return rc;
}

Test(bootstrap, cabundle_patch_sets_only_wrong_entries)
{
    const char *ca = "Q0EgUEVN";
    const char *config =
        "{\"kind\":\"ValidatingWebhookConfiguration\",\"metadata\":{\"name\":"
        "\"io\",\"resourceVersion\":\"42\"},\"webhooks\":["
        "{\"name\":\"right.io\",\"clientConfig\":{\"url\":\"https://x\","
        "\"caBundle\":\"Q0EgUEVN\"}},"
        "{\"name\":\"wrong.io\",\"clientConfig\":{\"service\":{\"name\":\"s\","
        "\"namespace\":\"n\"},\"caBundle\":\"T0xE\"}},"
        "{\"name\":\"missing.io\",\"clientConfig\":{\"url\":\"https://y\"}},"
        "{\"name\":\"right2.io\",\"clientConfig\":{\"caBundle\":\"Q0EgUEVN\"}}]}";
    char *patch;
    unsigned changed;
    char err[ERR_MAX];
    cr_assert_eq(certs_bootstrap_cabundle_patch(config, strlen(config), ca,
                                                &patch, &changed, err,
                                                sizeof err), 0, "%s", err);
    cr_assert_eq(changed, 2);
    cr_assert_str_eq(patch,
        "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"42\"},"
        "{\"op\":\"add\",\"path\":\"/webhooks/1/clientConfig/caBundle\",\"value\":\"Q0EgUEVN\"},"
        "{\"op\":\"add\",\"path\":\"/webhooks/2/clientConfig/caBundle\",\"value\":\"Q0EgUEVN\"}]");

    /* Applied, the next patch is empty; applied to a changed object, the
     * test fails. */
    cJSON *doc = cJSON_Parse(config);
    cr_assert_eq(apply_patch(doc, patch), 0);
    char *after = cJSON_PrintUnformatted(doc);
    char *again;
    cr_assert_eq(certs_bootstrap_cabundle_patch(after, strlen(after), ca, &again,
                                                &changed, err, sizeof err), 0);
    cr_assert_null(again);
    cr_assert_eq(changed, 0);
    const cJSON *hook;
    cJSON_ArrayForEach(hook, cJSON_GetObjectItem(doc, "webhooks"))
        cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(hook, "clientConfig"),
                                             "caBundle")->valuestring, ca);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(doc, "metadata"),
                              "resourceVersion", cJSON_CreateString("43"));
    cr_assert_eq(apply_patch(doc, patch), -1);
    cJSON_Delete(doc);
    free(after);
    free(patch);

    /* No webhooks: nothing to do. */
    const char *empty = "{\"metadata\":{\"resourceVersion\":\"1\"}}";
    cr_assert_eq(certs_bootstrap_cabundle_patch(empty, strlen(empty), ca, &patch,
                                                &changed, err, sizeof err), 0);
    cr_assert_null(patch);

    const char *refused[] = {
        "nope",
        "{\"metadata\":{},\"webhooks\":[]}",
        "{\"metadata\":{\"resourceVersion\":\"1\"},\"webhooks\":[{\"name\":\"a\"}]}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        cr_assert_eq(certs_bootstrap_cabundle_patch(refused[i], strlen(refused[i]),
                                                    ca, &patch, &changed, err,
                                                    sizeof err), -1, "%s",
                     refused[i]);
        cr_assert_null(patch);
    }
    cr_assert_not_null(strstr(err, "webhook 0 (a) has no clientConfig"), "%s", err);
}

/* ---- the cert dir ------------------------------------------------------ */

static void stat_file(const char *dir, const char *name, struct stat *st)
{
    char p[PATH_T];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    cr_assert_eq(stat(p, st), 0, "%s", p);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' ||
                                    strcmp(e->d_name, "..") == 0))
            continue;
        char p[PATH_T * 2];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

Test(bootstrap, write_files_only_when_different)
{
    char root[] = "/tmp/io-bootstrap-XXXXXX";
    cr_assert_not_null(mkdtemp(root));
    char dir[64];
    snprintf(dir, sizeof dir, "%s/certs", root);   /* made by the write */
    struct certs_bootstrap_names n;
    names_of("io-webhook", "ops", &n);
    struct certs_bootstrap_material a, b;
    char err[ERR_MAX];
    bool changed;
    issue(CERTS_BOOTSTRAP_CREATE, NULL, &n, T0, 365, &a);
    cr_assert_eq(certs_bootstrap_write_files(dir, &a, &changed, err, sizeof err),
                 0, "%s", err);
    cr_assert(changed);
    struct stat key1, crt1, ca1, key2, crt2, ca2;
    stat_file(dir, "tls.key", &key1);
    stat_file(dir, "tls.crt", &crt1);
    stat_file(dir, "ca.crt", &ca1);
    cr_assert_eq(key1.st_mode & 0777, 0600);
    cr_assert_eq(crt1.st_mode & 0777, 0644);
    cr_assert_eq(ca1.st_mode & 0777, 0644);
    cr_assert_eq((size_t)crt1.st_size, a.item[CERTS_BOOTSTRAP_TLS_CRT].len);
    /* ca.key never goes to disk. */
    struct stat none;
    char p[PATH_T];
    snprintf(p, sizeof p, "%s/ca.key", dir);
    cr_assert_neq(stat(p, &none), 0);

    /* Same bytes: nothing touched (a rename would change the inode). */
    cr_assert_eq(certs_bootstrap_write_files(dir, &a, &changed, err, sizeof err), 0);
    cr_assert(!changed);
    stat_file(dir, "tls.key", &key2);
    stat_file(dir, "tls.crt", &crt2);
    stat_file(dir, "ca.crt", &ca2);
    cr_assert_eq(key1.st_ino, key2.st_ino);
    cr_assert_eq(crt1.st_ino, crt2.st_ino);
    cr_assert_eq(ca1.st_ino, ca2.st_ino);

    /* A renewed leaf: the pair is replaced, ca.crt is not. */
    issue(CERTS_BOOTSTRAP_RENEW_LEAF, &a, &n, T0 + DAY, 365, &b);
    cr_assert_eq(certs_bootstrap_write_files(dir, &b, &changed, err, sizeof err), 0);
    cr_assert(changed);
    stat_file(dir, "tls.key", &key2);
    stat_file(dir, "tls.crt", &crt2);
    stat_file(dir, "ca.crt", &ca2);
    cr_assert_neq(key1.st_ino, key2.st_ino);
    cr_assert_neq(crt1.st_ino, crt2.st_ino);
    cr_assert_eq(ca1.st_ino, ca2.st_ino);
    cr_assert_eq(key2.st_mode & 0777, 0600);

    /* Incomplete material is refused before anything is written. */
    free(b.item[CERTS_BOOTSTRAP_TLS_KEY].data);
    b.item[CERTS_BOOTSTRAP_TLS_KEY].data = NULL;
    b.item[CERTS_BOOTSTRAP_TLS_KEY].len = 0;
    cr_assert_eq(certs_bootstrap_write_files(dir, &b, &changed, err, sizeof err), -1);
    cr_assert(!changed);

    certs_bootstrap_material_free(&a);
    certs_bootstrap_material_free(&b);
    rm_dir(dir);
    rmdir(root);
}
