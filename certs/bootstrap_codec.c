/*
 * bootstrap_codec.c — the pure parts of the self-signed bootstrap: names,
 * options, the Secret's JSON both ways, the caBundle patch and the
 * renewal decision.  See bootstrap.h.
 */
#include "bootstrap.h"

#include "base64.h"
#include "issue.h"
#include "kname.h"
#include "names.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_TEXT_MAX 96

static const char *const item_keys[CERTS_BOOTSTRAP_ITEMS] = {
    "tls.crt", "tls.key", "ca.crt", "ca.key",
};

const char *certs_bootstrap_item_key(enum certs_bootstrap_item i)
{
    return (unsigned)i < CERTS_BOOTSTRAP_ITEMS ? item_keys[i] : "?";
}

const char *certs_bootstrap_action_name(enum certs_bootstrap_action a)
{
    switch (a) {
    case CERTS_BOOTSTRAP_CREATE: return "create";
    case CERTS_BOOTSTRAP_KEEP: return "keep";
    case CERTS_BOOTSTRAP_RENEW_LEAF: return "renew-leaf";
    case CERTS_BOOTSTRAP_NEW_CA: return "new-ca";
    }
    return "?";
}

/* ---- material ---------------------------------------------------------- */

void certs_bootstrap_material_free(struct certs_bootstrap_material *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < CERTS_BOOTSTRAP_ITEMS; i++) {
        if (m->item[i].data)
            explicit_bzero(m->item[i].data, m->item[i].len);
        free(m->item[i].data);
        m->item[i].data = NULL;
        m->item[i].len = 0;
    }
}

int certs_bootstrap_material_copy(const struct certs_bootstrap_material *src,
                                  struct certs_bootstrap_material *dst)
{
    memset(dst, 0, sizeof *dst);
    for (int i = 0; i < CERTS_BOOTSTRAP_ITEMS; i++) {
        if (src->item[i].data == NULL)
            continue;
        dst->item[i].data = malloc(src->item[i].len + 1);
        if (dst->item[i].data == NULL) {
            certs_bootstrap_material_free(dst);
            return -1;
        }
        memcpy(dst->item[i].data, src->item[i].data, src->item[i].len);
        dst->item[i].data[src->item[i].len] = '\0';
        dst->item[i].len = src->item[i].len;
    }
    return 0;
}

/* ---- names and options ------------------------------------------------- */

int certs_bootstrap_names_make(const char *service, const char *ns,
                               const char *cluster_domain,
                               struct certs_bootstrap_names *out, char *err,
                               size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (cluster_domain == NULL || cluster_domain[0] == '\0')
        cluster_domain = CERTS_BOOTSTRAP_CLUSTER_DOMAIN;
    if (!kname_valid(service, KNAME_LABEL_MAX, false)) {
        snprintf(err, errlen, "service name \"%s\" is not a DNS label "
                 "(lowercase letters, digits, '-', at most %d)",
                 service ? service : "", KNAME_LABEL_MAX);
        return -1;
    }
    if (!kname_valid(ns, KNAME_LABEL_MAX, false)) {
        snprintf(err, errlen, "namespace \"%s\" is not a DNS label",
                 ns ? ns : "");
        return -1;
    }
    const char *fmt[CERTS_BOOTSTRAP_NAME_COUNT] = {
        "%s", "%s.%s", "%s.%s.svc", "%s.%s.svc.%s",
    };
    for (size_t i = 0; i < CERTS_BOOTSTRAP_NAME_COUNT; i++) {
        char *d = out->dns[i];
        int n = snprintf(d, sizeof out->dns[i], fmt[i], service, ns,
                         cluster_domain);
        if (n < 0 || (size_t)n >= sizeof out->dns[i] ||
            certs_dns_check(d, err, errlen) != 0) {
            if (n < 0 || (size_t)n >= sizeof out->dns[i])
                snprintf(err, errlen, "DNS name for service %s in %s is "
                         "longer than %d characters", service, ns,
                         CERTS_DNS_NAME_MAX);
            memset(out, 0, sizeof *out);
            return -1;
        }
        out->list[i] = d;
    }
    out->count = CERTS_BOOTSTRAP_NAME_COUNT;
    return 0;
}

int certs_bootstrap_opts_resolve(const struct certs_bootstrap_opts *o,
                                 struct certs_bootstrap_opts *out, char *err,
                                 size_t errlen)
{
    if (o == NULL) {
        snprintf(err, errlen, "no options");
        return -1;
    }
    *out = *o;
    if (out->validity_days == 0)
        out->validity_days = CERTS_BOOTSTRAP_VALIDITY_DAYS_DEFAULT;
    if (out->renew_before_days == 0)
        out->renew_before_days = CERTS_BOOTSTRAP_RENEW_BEFORE_DAYS_DEFAULT;
    if (out->interval_s == 0)
        out->interval_s = CERTS_BOOTSTRAP_INTERVAL_S_DEFAULT;
    if (out->validating_config && out->validating_config[0] == '\0')
        out->validating_config = NULL;
    if (out->mutating_config && out->mutating_config[0] == '\0')
        out->mutating_config = NULL;
    if (out->cluster_domain == NULL || out->cluster_domain[0] == '\0')
        out->cluster_domain = CERTS_BOOTSTRAP_CLUSTER_DOMAIN;

    struct certs_bootstrap_names names;
    if (certs_bootstrap_names_make(out->service_name, out->namespace_,
                                   out->cluster_domain, &names, err,
                                   errlen) != 0)
        return -1;
    const struct { const char *what, *v; bool required; } objs[] = {
        {"secret name", out->secret_name, true},
        {"validating webhook configuration", out->validating_config, false},
        {"mutating webhook configuration", out->mutating_config, false},
    };
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
        if (objs[i].v == NULL && !objs[i].required)
            continue;
        if (!kname_valid(objs[i].v, KNAME_SUBDOMAIN_MAX, true)) {
            snprintf(err, errlen, "%s \"%s\" is not a valid object name",
                     objs[i].what, objs[i].v ? objs[i].v : "");
            return -1;
        }
    }
    if (out->cert_dir == NULL || out->cert_dir[0] == '\0') {
        snprintf(err, errlen, "a certificate directory is required");
        return -1;
    }
    if (out->validity_days > CERTS_BOOTSTRAP_VALIDITY_DAYS_MAX) {
        snprintf(err, errlen, "certificate validity must be 1..%d days, "
                 "not %u", CERTS_BOOTSTRAP_VALIDITY_DAYS_MAX,
                 out->validity_days);
        return -1;
    }
    /* Else every pass would find the fresh leaf due and renew again. */
    if (out->renew_before_days >= out->validity_days) {
        snprintf(err, errlen, "renew-before (%u days) must be shorter than "
                 "the validity (%u days)", out->renew_before_days,
                 out->validity_days);
        return -1;
    }
    if (out->interval_s > CERTS_BOOTSTRAP_INTERVAL_S_MAX) {
        snprintf(err, errlen, "check interval must be 1..%u seconds",
                 CERTS_BOOTSTRAP_INTERVAL_S_MAX);
        return -1;
    }
    return 0;
}

/* ---- the Secret -------------------------------------------------------- */

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Zero the data values of a Secret held in cJSON before it is freed. */
static void wipe_data(cJSON *secret)
{
    cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data");
    cJSON *v;
    cJSON_ArrayForEach(v, data) {
        if (cJSON_IsString(v) && v->valuestring)
            explicit_bzero(v->valuestring, strlen(v->valuestring));
    }
}

static void add_why(char *why, size_t whylen, const char *what,
                    const char *key)
{
    size_t n = strlen(why);
    if (n + 1 < whylen)
        snprintf(why + n, whylen - n, "%s%s %s", n ? "; " : "", key, what);
}

int certs_bootstrap_secret_parse(const char *json, size_t len,
                                 struct certs_bootstrap_material *m,
                                 char rv[CERTS_BOOTSTRAP_RV_MAX], char *why,
                                 size_t whylen, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    rv[0] = '\0';
    if (whylen)
        why[0] = '\0';
    if (len > CERTS_BOOTSTRAP_OBJ_MAX) {
        snprintf(err, errlen, "Secret is larger than %u bytes",
                 CERTS_BOOTSTRAP_OBJ_MAX);
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "Secret is not a JSON object");
        goto done;
    }
    const char *type = str_at(root, "type");
    if (type == NULL || strcmp(type, "kubernetes.io/tls") != 0) {
        snprintf(err, errlen, "Secret has type \"%s\", not kubernetes.io/tls; "
                 "refusing to manage it (delete it or choose another name)",
                 type ? type : "");
        goto done;
    }
    const char *v = str_at(cJSON_GetObjectItemCaseSensitive(root, "metadata"),
                           "resourceVersion");
    if (v == NULL || v[0] == '\0' || strlen(v) >= CERTS_BOOTSTRAP_RV_MAX) {
        snprintf(err, errlen, "Secret has no usable metadata.resourceVersion");
        goto done;
    }
    snprintf(rv, CERTS_BOOTSTRAP_RV_MAX, "%s", v);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    for (int i = 0; i < CERTS_BOOTSTRAP_ITEMS; i++) {
        const char *b64 = str_at(data, item_keys[i]);
        if (b64 == NULL) {
            add_why(why, whylen, "missing", item_keys[i]);
            continue;
        }
        if (b64_decode(b64, strlen(b64), CERTS_BOOTSTRAP_DATA_MAX, 0,
                       &m->item[i].data, &m->item[i].len, NULL) != 0) {
            add_why(why, whylen, "is not base64 or is too large",
                    item_keys[i]);
            continue;
        }
        if (m->item[i].len == 0) {
            free(m->item[i].data);
            m->item[i].data = NULL;
            add_why(why, whylen, "empty", item_keys[i]);
        }
    }
    rc = 0;
done:
    if (root) {
        wipe_data(root);
        cJSON_Delete(root);
    }
    if (rc != 0)
        certs_bootstrap_material_free(m);
    return rc;
}

static cJSON *data_object(const struct certs_bootstrap_material *m)
{
    cJSON *data = cJSON_CreateObject();
    if (data == NULL)
        return NULL;
    for (int i = 0; i < CERTS_BOOTSTRAP_ITEMS; i++) {
        if (m->item[i].data == NULL)
            continue;
        char *b64 = b64_encode(m->item[i].data, m->item[i].len);
        cJSON *s = b64 ? cJSON_CreateString(b64) : NULL;
        if (b64) {
            explicit_bzero(b64, strlen(b64));
            free(b64);
        }
        if (s == NULL || !cJSON_AddItemToObject(data, item_keys[i], s)) {
            cJSON_Delete(s);
            wipe_data(data);
            cJSON_Delete(data);
            return NULL;
        }
    }
    return data;
}

/* An object member, made if missing (or replaced when not an object). */
static cJSON *object_at(cJSON *parent, const char *key)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (cJSON_IsObject(o))
        return o;
    if (o)
        cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
    return cJSON_AddObjectToObject(parent, key);
}

char *certs_bootstrap_secret_json(const struct certs_bootstrap_material *m,
                                  const char *ns, const char *name,
                                  const char *existing, size_t existing_len,
                                  char *err, size_t errlen)
{
    for (int i = 0; i < CERTS_BOOTSTRAP_ITEMS; i++) {
        if (m->item[i].data == NULL || m->item[i].len == 0) {
            snprintf(err, errlen, "no %s to store", item_keys[i]);
            return NULL;
        }
    }
    cJSON *root = existing ? cJSON_ParseWithLength(existing, existing_len)
                           : cJSON_CreateObject();
    cJSON *data = NULL;
    char *out = NULL;
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, existing ? "the Secret read is not a JSON object"
                                       : "out of memory");
        goto done;
    }
    if (existing) {
        /* Wipe the old keys now: the data is about to be replaced. */
        wipe_data(root);
        cJSON_DeleteItemFromObjectCaseSensitive(root, "data");
        cJSON_DeleteItemFromObjectCaseSensitive(root, "stringData");
    } else {
        cJSON *md;
        if (!cJSON_AddStringToObject(root, "apiVersion", "v1") ||
            !cJSON_AddStringToObject(root, "kind", "Secret") ||
            (md = cJSON_AddObjectToObject(root, "metadata")) == NULL ||
            !cJSON_AddStringToObject(md, "name", name) ||
            !cJSON_AddStringToObject(md, "namespace", ns) ||
            !cJSON_AddStringToObject(root, "type", "kubernetes.io/tls")) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
    }
    cJSON *labels = object_at(object_at(root, "metadata"), "labels");
    if (labels == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (!cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/managed-by"))
        cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by",
                                CERTS_BOOTSTRAP_MANAGED_BY);
    if ((data = data_object(m)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    cJSON_AddItemToObject(root, "data", data);
    out = cJSON_PrintUnformatted(root);
    if (out == NULL)
        snprintf(err, errlen, "out of memory");
done:
    if (root) {
        wipe_data(root);
        cJSON_Delete(root);
    }
    return out;
}

/* ---- the caBundle patch ------------------------------------------------ */

int certs_bootstrap_cabundle_patch(const char *config_json, size_t len,
                                   const char *ca_b64, char **patch,
                                   unsigned *changed, char *err,
                                   size_t errlen)
{
    *patch = NULL;
    *changed = 0;
    if (len > CERTS_BOOTSTRAP_OBJ_MAX) {
        snprintf(err, errlen, "webhook configuration is larger than %u bytes",
                 CERTS_BOOTSTRAP_OBJ_MAX);
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength(config_json, len);
    cJSON *ops = NULL;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "webhook configuration is not a JSON object");
        goto done;
    }
    const char *rv = str_at(cJSON_GetObjectItemCaseSensitive(root, "metadata"),
                            "resourceVersion");
    if (rv == NULL || rv[0] == '\0') {
        snprintf(err, errlen, "webhook configuration has no "
                 "metadata.resourceVersion");
        goto done;
    }
    ops = cJSON_CreateArray();
    cJSON *test = cJSON_CreateObject();
    if (ops == NULL || test == NULL || !cJSON_AddItemToArray(ops, test) ||
        !cJSON_AddStringToObject(test, "op", "test") ||
        !cJSON_AddStringToObject(test, "path", "/metadata/resourceVersion") ||
        !cJSON_AddStringToObject(test, "value", rv)) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(root, "webhooks");
    const cJSON *hook;
    unsigned i = 0, n = 0;
    if (!cJSON_IsArray(hooks))
        hooks = NULL;   /* no webhooks: nothing to inject */
    cJSON_ArrayForEach(hook, hooks) {
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(hook, "clientConfig");
        if (!cJSON_IsObject(cc)) {
            const char *wname = str_at(hook, "name");
            snprintf(err, errlen, "webhook %u (%s) has no clientConfig", i,
                     wname ? wname : "unnamed");
            goto done;
        }
        const char *have = str_at(cc, "caBundle");
        if (have == NULL || strcmp(have, ca_b64) != 0) {
            char path[PATH_TEXT_MAX];
            snprintf(path, sizeof path, "/webhooks/%u/clientConfig/caBundle", i);
            cJSON *op = cJSON_CreateObject();
            if (op == NULL || !cJSON_AddItemToArray(ops, op) ||
                !cJSON_AddStringToObject(op, "op", "add") ||
                !cJSON_AddStringToObject(op, "path", path) ||
                !cJSON_AddStringToObject(op, "value", ca_b64)) {
                snprintf(err, errlen, "out of memory");
                goto done;
            }
            n++;
        }
        i++;
    }
    rc = 0;
    if (n > 0) {
        *patch = cJSON_PrintUnformatted(ops);
        if (*patch == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else {
            *changed = n;
        }
    }
done:
    cJSON_Delete(ops);
    cJSON_Delete(root);
    return rc;
}

/* ---- the decision ------------------------------------------------------ */

enum certs_bootstrap_action
certs_bootstrap_decide(const struct certs_bootstrap_state *st, time_t now,
                       unsigned validity_days, unsigned renew_before_days)
{
    if (!st->present)
        return CERTS_BOOTSTRAP_CREATE;
    if (st->leaf_ok &&
        st->leaf_not_after - now > (time_t)renew_before_days * CERTS_SECONDS_PER_DAY)
        return CERTS_BOOTSTRAP_KEEP;
    if (st->ca_ok &&
        st->ca_not_after - now > (time_t)validity_days * CERTS_SECONDS_PER_DAY)
        return CERTS_BOOTSTRAP_RENEW_LEAF;
    return CERTS_BOOTSTRAP_NEW_CA;
}
