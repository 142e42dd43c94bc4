/*
 * kube_config_file.c — one kubeconfig, read with libyaml's document API
 * and checked the way client-go checks it, so a file kubectl accepts
 * either works here or fails with a message naming what is unsupported.
 *
 * The file is user input: every node's type is checked before use, keys
 * may be missing or null, and nesting and node count are capped before
 * the document is built so a hostile file cannot exhaust memory.
 */
#include "kube_config.h"
#include "kube_config_internal.h"

#include "base64.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

/* A kubeconfig is 4 levels deep and has a few hundred nodes; these
 * leave room for thousands of contexts while bounding what libyaml
 * allocates for a crafted file. */
#define KCFG_DEPTH_MAX 64
#define KCFG_NODES_MAX 200000
#define KCFG_WHERE_MAX 320        /* "cluster \"name\"" in messages      */
#define KCFG_NAMES_MAX 256        /* "(clusters: a, b, ...)" in messages */
#define KCFG_KEY_MAX 64           /* "client-certificate-data"           */
#define HTTPS_PREFIX "https://"
#define HTTP_PREFIX "http://"
#define PEM_BEGIN "-----BEGIN "
#define USE_INSTEAD "use a client certificate or a token"

struct kc {
    const char *path;             /* as given, for messages          */
    char dir[PATH_MAX];           /* its absolute directory          */
    yaml_document_t doc;
    yaml_node_t *root;
    struct kube_config *out;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct kc *k, const char *fmt, ...)
{
    char msg[KCFG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kcfg_fail(k->err, k->errlen, "kubeconfig %s: %s", k->path, msg);
}

/* ---- libyaml ---------------------------------------------------------- */

static int yaml_fail(struct kc *k, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return fail(k, "out of memory reading the YAML");
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->error == YAML_READER_ERROR)
        return fail(k, "not valid YAML: %s at byte %zu", problem,
                    p->problem_offset);
    return fail(k, "not valid YAML at line %zu, column %zu: %s%s%s",
                p->problem_mark.line + 1, p->problem_mark.column + 1,
                problem, p->context ? " " : "",
                p->context ? p->context : "");
}

/* Best effort: libyaml's buffers held the token and key text. */
static void parser_wipe(yaml_parser_t *p)
{
    if (p->buffer.start)
        explicit_bzero(p->buffer.start,
                       (size_t)(p->buffer.end - p->buffer.start));
    if (p->raw_buffer.start)
        explicit_bzero(p->raw_buffer.start,
                       (size_t)(p->raw_buffer.end - p->raw_buffer.start));
}

static void doc_wipe(yaml_document_t *d)
{
    for (yaml_node_t *n = d->nodes.start; n && n < d->nodes.top; n++)
        if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
            explicit_bzero(n->data.scalar.value, n->data.scalar.length);
}

static bool is_node_event(yaml_event_type_t t)
{
    return t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT ||
           t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT;
}

/* One event of the pre-scan.  Returns 1 at the end, 0 to go on, -1. */
static int prescan_event(struct kc *k, yaml_event_type_t t, size_t *depth,
                         size_t *nodes)
{
    if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT)
        return 1;
    if (is_node_event(t) && ++*nodes > KCFG_NODES_MAX)
        return fail(k, "has more than %d YAML nodes; is it a kubeconfig?",
                    KCFG_NODES_MAX);
    if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
        if (++*depth > KCFG_DEPTH_MAX)
            return fail(k, "is nested more than %d levels deep; is it a "
                        "kubeconfig?", KCFG_DEPTH_MAX);
    } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
        --*depth;
    }
    return 0;
}

/*
 * Walks the first document's events without building it, so depth and
 * size are refused before yaml_parser_load allocates for them.
 */
static int prescan(struct kc *k, const char *buf, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return fail(k, "out of memory reading the YAML");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    size_t depth = 0, nodes = 0;
    int rc = 0;
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = yaml_fail(k, &p);
            break;
        }
        if (ev.type == YAML_SCALAR_EVENT)
            explicit_bzero(ev.data.scalar.value, ev.data.scalar.length);
        rc = prescan_event(k, ev.type, &depth, &nodes);
        yaml_event_delete(&ev);
    }
    parser_wipe(&p);
    yaml_parser_delete(&p);
    return rc < 0 ? -1 : 0;
}

/* On success k->doc must be deleted; on failure libyaml already did. */
static int load(struct kc *k, const char *buf, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return fail(k, "out of memory reading the YAML");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int rc = yaml_parser_load(&p, &k->doc) ? 0 : yaml_fail(k, &p);
    parser_wipe(&p);
    yaml_parser_delete(&p);
    return rc;
}

/* ---- typed access to nodes -------------------------------------------- */

static yaml_node_t *node_at(struct kc *k, int id)
{
    return yaml_document_get_node(&k->doc, id);
}

static const char *kind(const yaml_node_t *n)
{
    switch (n ? n->type : YAML_NO_NODE) {
    case YAML_SCALAR_NODE:
        return "a string";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "empty";
    }
}

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE ||
        n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
    size_t len = strlen(s);
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
           memcmp(n->data.scalar.value, s, len) == 0;
}

/*
 * *out = the value of key in map; NULL if map is NULL, the key is absent
 * or its value null.  A key given twice is an error, as in client-go.
 */
static int map_get(struct kc *k, const yaml_node_t *map, const char *where,
                   const char *key, yaml_node_t **out)
{
    *out = NULL;
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return 0;
    bool seen = false;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        if (!scalar_is(node_at(k, p->key), key))
            continue;
        if (seen)
            return fail(k, "%s: key \"%s\" appears twice", where, key);
        seen = true;
        yaml_node_t *v = node_at(k, p->value);
        if (v && !is_null(v))
            *out = v;
    }
    return 0;
}

/* *out = a string value; NULL when absent, null or "" (client-go's
 * omitempty: an empty field is an unset one). */
static int get_str(struct kc *k, const yaml_node_t *map, const char *where,
                   const char *key, const char **out)
{
    *out = NULL;
    yaml_node_t *v;
    if (map_get(k, map, where, key, &v) != 0)
        return -1;
    if (v == NULL)
        return 0;
    if (v->type != YAML_SCALAR_NODE)
        return fail(k, "%s: %s must be a string, not %s", where, key, kind(v));
    const char *s = (const char *)v->data.scalar.value;
    if (strlen(s) != v->data.scalar.length)
        return fail(k, "%s: %s contains a NUL byte", where, key);
    if (s[0] != '\0')
        *out = s;
    return 0;
}

static int get_map(struct kc *k, const yaml_node_t *map, const char *where,
                   const char *key, yaml_node_t **out)
{
    if (map_get(k, map, where, key, out) != 0)
        return -1;
    if (*out && (*out)->type != YAML_MAPPING_NODE)
        return fail(k, "%s: %s must be a mapping, not %s", where, key,
                    kind(*out));
    return 0;
}

/* YAML 1.1 booleans, as the Go YAML library kubectl uses reads them. */
static int get_bool(struct kc *k, const yaml_node_t *map, const char *where,
                    const char *key, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    *out = false;
    yaml_node_t *v;
    if (map_get(k, map, where, key, &v) != 0)
        return -1;
    if (v == NULL)
        return 0;
    if (v->type == YAML_SCALAR_NODE) {
        const char *s = (const char *)v->data.scalar.value;
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
                *out = strcasecmp(s, yes[i]) == 0;
                return 0;
            }
        }
    }
    return fail(k, "%s: %s must be true or false", where, key);
}

/* The scalar under key if there is one; for messages, never fails. */
static const char *peek_str(struct kc *k, const yaml_node_t *map,
                            const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *v = node_at(k, p->value);
        if (scalar_is(node_at(k, p->key), key) && v &&
            v->type == YAML_SCALAR_NODE && !is_null(v))
            return (const char *)v->data.scalar.value;
    }
    return NULL;
}

/* ---- named lists: contexts, clusters, users ----------------------------- */

static void names_add(char *buf, size_t cap, const char *name)
{
    static const char more[] = ", ...";
    size_t used = strlen(buf);
    if (used + sizeof more > cap)
        return;   /* already full, "..." is in place */
    int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", name);
    if (n < 0 || (size_t)n >= cap - used)
        snprintf(buf + (cap - sizeof more), sizeof more, "%s", more);
}

/* The item of list whose name is name (error if not exactly one), and
 * its `one` mapping (NULL when absent or null). */
static int find_named(struct kc *k, const char *list, const char *one,
                      const char *name, yaml_node_t **out)
{
    *out = NULL;
    yaml_node_t *seq, *found = NULL;
    if (map_get(k, k->root, "top level", list, &seq) != 0)
        return -1;
    if (seq && seq->type != YAML_SEQUENCE_NODE)
        return fail(k, "%s must be a list, not %s", list, kind(seq));
    char names[KCFG_NAMES_MAX] = "";
    char where[KCFG_WHERE_MAX];
    for (yaml_node_item_t *it = seq ? seq->data.sequence.items.start : NULL;
         it && it < seq->data.sequence.items.top; it++) {
        yaml_node_t *item = node_at(k, *it);
        snprintf(where, sizeof where, "%s[%td]", list,
                 it - seq->data.sequence.items.start);
        if (item == NULL || item->type != YAML_MAPPING_NODE)
            return fail(k, "%s must be a mapping, not %s", where, kind(item));
        const char *n;
        if (get_str(k, item, where, "name", &n) != 0)
            return -1;
        if (n == NULL)
            continue;
        names_add(names, sizeof names, n);
        if (strcmp(n, name) != 0)
            continue;
        if (found)
            return fail(k, "%s \"%s\" is defined twice", one, name);
        found = item;
    }
    if (found == NULL)
        return fail(k, "%s \"%s\" not found (%s: %s)", one, name, list,
                    names[0] ? names : "none");
    snprintf(where, sizeof where, "%s \"%s\"", one, name);
    return get_map(k, found, where, one, out);
}

/* ---- files and inline data -------------------------------------------- */

/* Relative paths are relative to the kubeconfig's directory (client-go). */
static int resolve_file(struct kc *k, const char *where, const char *key,
                        const char *file, char *dst)
{
    const char *dir = strcmp(k->dir, "/") == 0 ? "" : k->dir;
    int n = file[0] == '/' ? snprintf(dst, PATH_MAX, "%s", file)
                           : snprintf(dst, PATH_MAX, "%s/%s", dir, file);
    if (n < 0 || n >= PATH_MAX) {
        dst[0] = '\0';
        return fail(k, "%s: %s path is longer than %d bytes", where, key,
                    PATH_MAX - 1);
    }
    char msg[KCFG_MSG_MAX];
    if (kcfg_check_file(dst, msg, sizeof msg) != 0) {
        dst[0] = '\0';
        return fail(k, "%s: %s %s", where, key, msg);
    }
    return 0;
}

static bool has_pem(const unsigned char *p, size_t len)
{
    size_t m = sizeof PEM_BEGIN - 1;
    for (size_t i = 0; i + m <= len; i++)
        if (memcmp(p + i, PEM_BEGIN, m) == 0)
            return true;
    return false;
}

static int write_tmp(struct kc *k, const char *where, const char *key,
                     const char *fname, const unsigned char *data, size_t len,
                     char *dst)
{
    struct kube_config *o = k->out;
    char msg[KCFG_MSG_MAX];
    if (o->tmp_dir[0] == '\0' &&
        kcfg_tmpdir_create(o->tmp_dir, sizeof o->tmp_dir, msg, sizeof msg))
        return fail(k, "%s: %s: %s", where, key, msg);
    if (kcfg_write_private(o->tmp_dir, fname, data, len, dst, PATH_MAX, msg,
                           sizeof msg) != 0)
        return fail(k, "%s: %s: %s", where, key, msg);
    return 0;
}

static int bad_base64(struct kc *k, const char *where, const char *key,
                      const char *b64, size_t bad_at)
{
    unsigned char c = (unsigned char)b64[bad_at];
    if (c == '\0')
        return fail(k, "%s: %s is not valid base64: it ends in the middle "
                    "of a 4-character group (truncated?)", where, key);
    if (c > ' ' && c < 0x7f)
        return fail(k, "%s: %s is not valid base64: unexpected '%c' at "
                    "offset %zu", where, key, c, bad_at);
    return fail(k, "%s: %s is not valid base64: unexpected byte 0x%02x at "
                "offset %zu", where, key, c, bad_at);
}

/* Decodes *-data into a private file, because libcurl's GnuTLS backend
 * only takes paths. */
static int write_data(struct kc *k, const char *where, const char *key,
                      const char *b64, const char *fname, char *dst)
{
    unsigned char *data;
    size_t len, bad_at;
    /* Whitespace is skipped: PEM bodies and folded YAML scalars. */
    int rc = b64_decode(b64, strlen(b64), B64_NO_LIMIT, B64_SKIP_SPACE,
                        &data, &len, &bad_at);
    if (rc == B64_ERR_NO_MEMORY)
        return fail(k, "%s: out of memory decoding %s", where, key);
    if (rc != 0)
        return bad_base64(k, where, key, b64, bad_at);
    /* A double-encoded or DER value passes base64 but not GnuTLS; say
     * so now rather than as a TLS error on the first request. */
    if (!has_pem(data, len))
        rc = fail(k, "%s: %s does not decode to PEM (no \"-----BEGIN\" "
                  "line); it must be the base64 of a PEM file", where, key);
    else
        rc = write_tmp(k, where, key, fname, data, len, dst);
    explicit_bzero(data, len);
    free(data);
    return rc;
}

/* key (a path) or key-data (inline); both_ok lets the data win, as
 * client-go does for the CA but not for the client pair. */
static int file_or_data(struct kc *k, const yaml_node_t *map,
                        const char *where, const char *key, const char *fname,
                        bool both_ok, char *dst)
{
    char data_key[KCFG_KEY_MAX];
    snprintf(data_key, sizeof data_key, "%s-data", key);
    const char *file, *data;
    if (get_str(k, map, where, key, &file) != 0 ||
        get_str(k, map, where, data_key, &data) != 0)
        return -1;
    if (file && data && !both_ok)
        return fail(k, "%s: both %s and %s are set; keep one", where, key,
                    data_key);
    if (data)
        return write_data(k, where, data_key, data, fname, dst);
    if (file)
        return resolve_file(k, where, key, file, dst);
    return 0;
}

/* ---- context, cluster, user ------------------------------------------- */

static int context_name(struct kc *k, const char *context, const char **out)
{
    *out = context;
    if (context)
        return 0;
    if (get_str(k, k->root, "top level", "current-context", out) != 0)
        return -1;
    if (*out == NULL)
        return fail(k, "current-context is not set; choose a context with "
                    "'kubectl config use-context NAME'");
    return 0;
}

static int parse_context(struct kc *k, const char *name, const char **cluster,
                         const char **user)
{
    yaml_node_t *c;
    const char *ns;
    char where[KCFG_WHERE_MAX];
    snprintf(where, sizeof where, "context \"%s\"", name);
    if (find_named(k, "contexts", "context", name, &c) != 0 ||
        get_str(k, c, where, "cluster", cluster) != 0 ||
        get_str(k, c, where, "user", user) != 0 ||
        get_str(k, c, where, "namespace", &ns) != 0)
        return -1;
    if (*cluster == NULL)
        return fail(k, "%s names no cluster", where);
    if (ns == NULL)
        return 0;
    if (!kcfg_namespace_valid(ns))
        return fail(k, "%s: namespace \"%s\" is not a valid namespace name "
                    "(lower-case letters, digits and '-', at most %d)", where,
                    ns, KUBE_NAMESPACE_MAX - 1);
    return kcfg_copy(k->out->namespace_, sizeof k->out->namespace_, ns,
                     "namespace", k->err, k->errlen);
}

static int refuse_cluster_extras(struct kc *k, const yaml_node_t *c,
                                 const char *where)
{
    const char *proxy, *sni;
    if (get_str(k, c, where, "proxy-url", &proxy) != 0 ||
        get_str(k, c, where, "tls-server-name", &sni) != 0)
        return -1;
    if (proxy)
        return fail(k, "%s: proxy-url is not supported; set the https_proxy "
                    "environment variable instead", where);
    if (sni)
        return fail(k, "%s: tls-server-name is not supported; set server to "
                    "a name the API server's certificate covers", where);
    return 0;
}

static int check_server(struct kc *k, const char *where, const char *s)
{
    size_t https = sizeof HTTPS_PREFIX - 1;
    if (strncasecmp(s, HTTP_PREFIX, sizeof HTTP_PREFIX - 1) == 0)
        return fail(k, "%s: server %s is plain http, which would send "
                    "credentials in clear text; only https:// servers are "
                    "supported", where, s);
    if (strncasecmp(s, HTTPS_PREFIX, https) != 0)
        return fail(k, "%s: server \"%s\" is not an https:// URL", where, s);
    if (s[https] == '\0' || s[https] == '/')
        return fail(k, "%s: server \"%s\" has no host", where, s);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return fail(k, "%s: server \"%s\" contains a space or a control "
                        "character", where, s);
    return 0;
}

static int parse_server(struct kc *k, const yaml_node_t *c, const char *where)
{
    const char *s;
    if (get_str(k, c, where, "server", &s) != 0)
        return -1;
    if (s == NULL)
        return fail(k, "%s has no server", where);
    if (check_server(k, where, s) != 0)
        return -1;
    char *dst = k->out->server;
    size_t n = strlen(s);
    if (n >= KUBE_SERVER_MAX)
        return fail(k, "%s: server is longer than %d bytes", where,
                    KUBE_SERVER_MAX - 1);
    while (n > sizeof HTTPS_PREFIX && s[n - 1] == '/')
        n--;   /* paths are appended to it */
    memcpy(dst, s, n);
    dst[n] = '\0';
    /* The client checks the scheme with a plain compare. */
    memcpy(dst, HTTPS_PREFIX, sizeof HTTPS_PREFIX - 1);
    return 0;
}

static int parse_cluster(struct kc *k, const char *name)
{
    yaml_node_t *c;
    char where[KCFG_WHERE_MAX];
    snprintf(where, sizeof where, "cluster \"%s\"", name);
    bool insecure;
    const char *ca, *ca_data;
    if (find_named(k, "clusters", "cluster", name, &c) != 0 ||
        refuse_cluster_extras(k, c, where) != 0 ||
        parse_server(k, c, where) != 0 ||
        get_bool(k, c, where, "insecure-skip-tls-verify", &insecure) != 0 ||
        get_str(k, c, where, "certificate-authority", &ca) != 0 ||
        get_str(k, c, where, "certificate-authority-data", &ca_data) != 0)
        return -1;
    if (insecure && (ca || ca_data))
        return fail(k, "%s: insecure-skip-tls-verify cannot be combined with "
                    "a certificate-authority; drop one", where);
    k->out->insecure_skip_verify = insecure;
    return file_or_data(k, c, where, "certificate-authority", KCFG_CA_NAME,
                        true, k->out->ca_file);
}

static int refuse_plugins(struct kc *k, const yaml_node_t *u,
                          const char *where)
{
    yaml_node_t *exec, *provider;
    if (map_get(k, u, where, "exec", &exec) != 0 ||
        map_get(k, u, where, "auth-provider", &provider) != 0)
        return -1;
    if (exec) {
        const char *cmd = peek_str(k, exec, "command");
        return fail(k, "%s: exec credential plugins are not supported%s%s%s; "
                    USE_INSTEAD, where, cmd ? " (command \"" : "",
                    cmd ? cmd : "", cmd ? "\")" : "");
    }
    if (provider) {
        const char *name = peek_str(k, provider, "name");
        return fail(k, "%s: auth-provider%s%s%s is not supported; "
                    USE_INSTEAD, where, name ? " \"" : "", name ? name : "",
                    name ? "\"" : "");
    }
    return 0;
}

/* Anything that would change who we authenticate as must not be
 * silently ignored. */
static int refuse_unsupported(struct kc *k, const yaml_node_t *u,
                              const char *where)
{
    static const char *const basic[] = {"username", "password"};
    static const char *const imp[] = {"as", "as-uid", "as-groups",
                                      "as-user-extra"};
    if (refuse_plugins(k, u, where) != 0)
        return -1;
    yaml_node_t *v;
    for (size_t i = 0; i < sizeof basic / sizeof basic[0]; i++) {
        if (map_get(k, u, where, basic[i], &v) != 0)
            return -1;
        if (v)
            return fail(k, "%s: basic authentication (username/password) is "
                        "not supported; " USE_INSTEAD, where);
    }
    for (size_t i = 0; i < sizeof imp / sizeof imp[0]; i++) {
        if (map_get(k, u, where, imp[i], &v) != 0)
            return -1;
        if (v)
            return fail(k, "%s: impersonation (%s) is not supported; use the "
                        "credentials of that identity", where, imp[i]);
    }
    return 0;
}

/* The token goes into an HTTP header as is. */
static int copy_token(struct kc *k, const char *where, const char *tok)
{
    size_t n = strlen(tok);
    if (n >= KUBE_TOKEN_MAX)
        return fail(k, "%s: token is longer than %d bytes", where,
                    KUBE_TOKEN_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
            return fail(k, "%s: token contains a space, a control character "
                        "or non-ASCII at offset %zu", where, i);
    memcpy(k->out->token, tok, n + 1);
    return 0;
}

static int parse_user(struct kc *k, const char *name)
{
    struct kube_config *o = k->out;
    yaml_node_t *u;
    char where[KCFG_WHERE_MAX];
    snprintf(where, sizeof where, "user \"%s\"", name);
    const char *tok, *tok_file;
    if (find_named(k, "users", "user", name, &u) != 0 ||
        refuse_unsupported(k, u, where) != 0 ||
        file_or_data(k, u, where, "client-certificate", KCFG_CERT_NAME, false,
                     o->cert_file) != 0 ||
        file_or_data(k, u, where, "client-key", KCFG_KEY_NAME, false,
                     o->key_file) != 0 ||
        get_str(k, u, where, "token", &tok) != 0 ||
        get_str(k, u, where, "tokenFile", &tok_file) != 0)
        return -1;
    if ((o->cert_file[0] == '\0') != (o->key_file[0] == '\0'))
        return fail(k, "%s: %s is set but %s is not; a client certificate "
                    "needs both", where,
                    o->cert_file[0] ? "client-certificate" : "client-key",
                    o->cert_file[0] ? "client-key" : "client-certificate");
    if (tok)   /* client-go: token takes precedence over tokenFile */
        return copy_token(k, where, tok);
    if (tok_file)
        return resolve_file(k, where, "tokenFile", tok_file, o->token_file);
    return 0;
}

/* ---- the whole file ------------------------------------------------------ */

static int dir_of(struct kc *k)
{
    char cwd[PATH_MAX] = "";
    if (k->path[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
        return fail(k, "cannot resolve its directory: %s", strerror(errno));
    int n = snprintf(k->dir, sizeof k->dir, "%s%s%s", cwd, cwd[0] ? "/" : "",
                     k->path);
    if (n < 0 || (size_t)n >= sizeof k->dir)
        return fail(k, "path is longer than %d bytes", PATH_MAX - 1);
    char *slash = strrchr(k->dir, '/');
    slash[slash == k->dir ? 1 : 0] = '\0';
    return 0;
}

static int fill(struct kc *k, const char *context)
{
    k->root = yaml_document_get_root_node(&k->doc);
    if (k->root == NULL)
        return fail(k, "is empty");
    if (k->root->type != YAML_MAPPING_NODE)
        return fail(k, "is not a kubeconfig: the top level is %s, not a "
                    "mapping", kind(k->root));
    const char *ctx, *cluster, *user;
    if (context_name(k, context, &ctx) != 0 ||
        parse_context(k, ctx, &cluster, &user) != 0 ||
        parse_cluster(k, cluster) != 0 ||
        (user && parse_user(k, user) != 0))
        return -1;
    snprintf(k->out->source, sizeof k->out->source,
             "kubeconfig %s, context %s", k->path, ctx);
    return 0;
}

int kcfg_parse(const char *path, const char *buf, size_t len,
               const char *context, struct kube_config *out, char *err,
               size_t errlen)
{
    struct kc k = {.path = path, .out = out, .err = err, .errlen = errlen};
    if (dir_of(&k) != 0 || prescan(&k, buf, len) != 0 ||
        load(&k, buf, len) != 0)
        return -1;
    int rc = fill(&k, context);
    doc_wipe(&k.doc);
    yaml_document_delete(&k.doc);
    return rc;
}
