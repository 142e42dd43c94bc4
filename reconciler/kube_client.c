/*
 * kube_client.c — requests and streams to the API server on libcurl.
 * See kube_client.h for the threading model and error contract.
 *
 * Every request resets its easy handle and sets every option afresh, so
 * no option of one request (a body, a custom method, a timeout) can leak
 * into the next; curl_easy_reset keeps the live connection, the share
 * and the caches, which is all that should survive.
 */
#include "kube_client.h"

#include "clock.h"
#include "kube_ratelimit.h"
#include "kube_token.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef IO_VERSION
#define IO_VERSION "dev"
#endif

#define UA_MAX 256
/* First body allocation; lists grow it geometrically. */
#define BODY_INITIAL_CAP 16384
/* Status bodies are small; a larger error body is not parsed as JSON. */
#define STATUS_PARSE_MAX (1024 * 1024)
/* Error bodies of a stream are kept up to this, for the message. */
#define STREAM_ERROR_BODY_MAX (64 * 1024)
/* TCP keepalive: probe an idle connection after 30 s, every 10 s, so a
 * silently dropped peer is noticed even between requests. */
#define KEEPALIVE_IDLE_S 30L
#define KEEPALIVE_INTVL_S 10L
/* curl copies every request over TLS through an upload buffer of its own,
 * 64 KiB by default and kept for the handle's life, yet never writes more
 * than 16 KiB (CURL_MAX_WRITE_SIZE) to TLS at once: the minimum, 16 KiB,
 * loses nothing.  48 KiB less heap on each of ~10 handles (watches,
 * workers, elector, event sender); only touched pages are resident, but
 * the heap grew around each buffer (valgrind massif at 5 000 objects). */
#define UPLOAD_BUFFER_BYTES 16384L

_Static_assert(KUBE_VERBS == 6 && KUBE_CODES == 6,
               "kube_client_stats.requests is [6][6]");

struct kube_client {
    struct kube_config cfg;
    struct kube_client_opts opts;
    char user_agent[UA_MAX];
    struct kube_ratelimit rl;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    struct kube_token token;
    bool token_ready, rl_ready, share_mu_ready;   /* for a partial setup */
    _Atomic uint64_t requests[KUBE_VERBS][KUBE_CODES];
};

struct kube_conn {
    struct kube_client *client;
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    long connects;
    long http_version;
};

/* ---- small helpers ------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copy at most dstlen-1 bytes, blanking control characters so a server's
 * text can go into a log line or an error string as one line. */
static void copy_clean(char *dst, size_t dstlen, const char *src, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < dstlen && src[i]; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    dst[i] = '\0';
    while (i > 0 && dst[i - 1] == ' ')
        dst[--i] = '\0';
}

int kube_verb_index(const char *method)
{
    static const char *const names[KUBE_VERBS] = {
        [KUBE_VERB_GET] = "GET",     [KUBE_VERB_POST] = "POST",
        [KUBE_VERB_PUT] = "PUT",     [KUBE_VERB_PATCH] = "PATCH",
        [KUBE_VERB_DELETE] = "DELETE",
    };
    for (int i = 0; method && i < KUBE_VERBS; i++)
        if (names[i] && strcmp(method, names[i]) == 0)
            return i;
    return -1;
}

const char *kube_verb_name(int verb)
{
    static const char *const names[KUBE_VERBS] = {
        "GET", "WATCH", "POST", "PUT", "PATCH", "DELETE",
    };
    return verb >= 0 && verb < KUBE_VERBS ? names[verb] : "unknown";
}

int kube_code_class(long status)
{
    if (status == 0)
        return KUBE_CODE_ERROR;
    if (status >= 200 && status < 600 && status / 100 != 1)
        return (int)(status / 100) - 2;
    return KUBE_CODE_OTHER;
}

const char *kube_code_name(int code_class)
{
    static const char *const names[KUBE_CODES] = {
        "2xx", "3xx", "4xx", "5xx", "error", "other",
    };
    return code_class >= 0 && code_class < KUBE_CODES ? names[code_class]
                                                      : "unknown";
}

static void count(struct kube_client *c, int verb, long status)
{
    atomic_fetch_add_explicit(&c->requests[verb][kube_code_class(status)], 1,
                              memory_order_relaxed);
}

void kube_client_stats(struct kube_client *c, struct kube_client_stats *out)
{
    for (int v = 0; v < KUBE_VERBS; v++)
        for (int k = 0; k < KUBE_CODES; k++)
            out->requests[v][k] =
                atomic_load_explicit(&c->requests[v][k], memory_order_relaxed);
}

char *kube_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
                    *p == '_' || *p == '~';
        if (keep) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- Status decoding ------------------------------------------------------ */

/* metav1.StatusReason for a code, as the API machinery names them, for
 * bodies that are not a Status (a proxy's page, "404 page not found"). */
static const char *reason_for(long status)
{
    switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default:  return status >= 500 ? "InternalError" : "Unknown";
    }
}

static void copy_json_string(char *dst, size_t dstlen, const cJSON *obj,
                             const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(v) && v->valuestring)
        copy_clean(dst, dstlen, v->valuestring, strlen(v->valuestring));
}

void kube_status_decode(struct kube_response *r)
{
    r->reason[0] = r->message[0] = '\0';
    if (r->status < 400)
        return;
    if (r->body && r->len > 0 && r->len <= STATUS_PARSE_MAX) {
        cJSON *st = cJSON_ParseWithLength(r->body, r->len);
        if (cJSON_IsObject(st)) {
            copy_json_string(r->reason, sizeof r->reason, st, "reason");
            copy_json_string(r->message, sizeof r->message, st, "message");
        } else if (r->body[0] != '{') {
            copy_clean(r->message, sizeof r->message, r->body, r->len);
        }
        cJSON_Delete(st);
    }
    if (!r->reason[0])
        snprintf(r->reason, sizeof r->reason, "%s", reason_for(r->status));
    if (!r->message[0])
        snprintf(r->message, sizeof r->message, "HTTP %ld", r->status);
}

void kube_response_free(struct kube_response *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ---- client -------------------------------------------------------------- */

void kube_client_opts_init(struct kube_client_opts *o)
{
    o->qps = 50;
    o->burst = 100;
    o->timeout_ms = 30000;
    o->connect_timeout_ms = 10000;
    o->user_agent = NULL;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *arg)
{
    (void)h;
    (void)a;
    struct kube_client *c = arg;
    pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    (void)h;
    struct kube_client *c = arg;
    pthread_mutex_unlock(&c->share_mu[data]);
}

/* TLS sessions and DNS are shared so a new conn resumes instead of doing a
 * full handshake.  Connections are not: libcurl 7.88 does not support a
 * shared connection cache across threads. */
static int share_init(struct kube_client *c, char *err, size_t errlen)
{
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_mu[i], NULL);  /* default attrs: cannot fail */
    c->share_mu_ready = true;
    c->share = curl_share_init();
    if (!c->share ||
        curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) ||
        curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
        curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) ||
        curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS)) {
        set_err(err, errlen, "kube client: cannot set up the curl share handle");
        return -1;
    }
    return 0;
}

static int check_config(const struct kube_config *cfg, char *err, size_t errlen)
{
    if (strncmp(cfg->server, "https://", 8) != 0 &&
        strncmp(cfg->server, "http://", 7) != 0) {
        set_err(err, errlen, "kube client: server \"%s\" is not an http(s) URL",
                cfg->server);
        return -1;
    }
    if (!cfg->cert_file[0] != !cfg->key_file[0]) {
        set_err(err, errlen, "kube client: a client certificate needs both "
                "certificate and key files (got %s only)",
                cfg->cert_file[0] ? "the certificate" : "the key");
        return -1;
    }
    return 0;
}

/* Each part records that it is ready, so kube_client_free can undo a
 * partial setup. */
static int client_init(struct kube_client *c, const struct kube_config *cfg,
                       const struct kube_client_opts *opts, char *err, size_t errlen)
{
    c->cfg = *cfg;
    /* The token lives in c->token only: no second copy to leak. */
    explicit_bzero(c->cfg.token, sizeof c->cfg.token);
    if (opts)
        c->opts = *opts;
    else
        kube_client_opts_init(&c->opts);
    snprintf(c->user_agent, sizeof c->user_agent, "%s",
             c->opts.user_agent ? c->opts.user_agent
                                : KUBE_USER_AGENT "/" IO_VERSION);
    c->opts.user_agent = c->user_agent;
    if (kube_token_init(&c->token, cfg->token, cfg->token_file, mono_now_s(), err,
                        errlen) != 0)
        return -1;
    c->token_ready = true;
    if (kube_ratelimit_init(&c->rl, c->opts.qps, c->opts.burst) != 0) {
        set_err(err, errlen, "kube client: cannot create the rate limiter");
        return -1;
    }
    c->rl_ready = true;
    return share_init(c, err, errlen);
}

int kube_client_new(const struct kube_config *cfg,
                    const struct kube_client_opts *opts,
                    struct kube_client **out, char *err, size_t errlen)
{
    *out = NULL;
    if (check_config(cfg, err, errlen) != 0)
        return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        set_err(err, errlen, "kube client: curl_global_init failed");
        return -1;
    }
    struct kube_client *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(err, errlen, "kube client: out of memory");
        curl_global_cleanup();
        return -1;
    }
    if (client_init(c, cfg, opts, err, errlen) != 0) {
        kube_client_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* All conns must be freed first: the share handle refuses to go while an
 * easy handle still uses it. */
void kube_client_free(struct kube_client *c)
{
    if (!c)
        return;
    if (c->share && curl_share_cleanup(c->share) != CURLSHE_OK) {
        log_error("kube client freed while conns still use it; leaking the share");
    } else if (c->share_mu_ready) {
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_destroy(&c->share_mu[i]);
    }
    if (c->token_ready)
        kube_token_destroy(&c->token);
    if (c->rl_ready)
        kube_ratelimit_destroy(&c->rl);
    free(c);
    curl_global_cleanup();
}

/* ---- conn ------------------------------------------------------------------ */

struct kube_conn *kube_conn_new(struct kube_client *c)
{
    struct kube_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->client = c;
    conn->easy = curl_easy_init();
    if (!conn->easy) {
        free(conn);
        return NULL;
    }
    return conn;
}

void kube_conn_free(struct kube_conn *conn)
{
    if (!conn)
        return;
    curl_easy_cleanup(conn->easy);
    free(conn);
}

/*
 * Forget the connection: a fresh handle dials anew on the next request.
 * Called when the connection is presumed dead (a silent stream, a request
 * that timed out).  With HTTP/2 an abandoned stream leaves its connection
 * in the handle's cache, so without this every later request and watch of
 * this conn went down the same half-open connection and died the same
 * way, until curl retired it minutes later.  If no new handle can be had
 * the old one is kept: still usable, merely not rescued.
 */
static void drop_connection(struct kube_conn *conn)
{
    CURL *fresh = curl_easy_init();
    if (!fresh) {
        log_warn("kube client: out of memory replacing a dead connection; keeping it");
        return;
    }
    curl_easy_cleanup(conn->easy);
    conn->easy = fresh;
}

long kube_conn_connects(const struct kube_conn *conn)
{
    return conn->connects;
}

long kube_conn_http_version(const struct kube_conn *conn)
{
    return conn->http_version;
}

/* Options every transfer has: transport, TLS, identity. */
static void setup_common(struct kube_conn *conn, const char *url,
                         struct curl_slist *headers)
{
    const struct kube_client *c = conn->client;
    CURL *e = conn->easy;
    curl_easy_reset(e);
    conn->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, conn->errbuf);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, KEEPALIVE_IDLE_S);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, KEEPALIVE_INTVL_S);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER_BYTES);
    /* HTTP/1.1, not HTTP/2: every conn is one easy handle used by one
     * thread, one request at a time, so HTTP/2 multiplexes nothing here,
     * and each HTTP/2 connection costs a 32 KiB read buffer in curl plus
     * 16 KiB of nghttp2 session buffers (valgrind massif), times 3
     * watches + 4 workers + the elector. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    if (c->cfg.ca_file[0]) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->cfg.ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (c->cfg.cert_file[0]) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->cfg.cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->cfg.key_file);
    }
    if (c->cfg.insecure_skip_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* Request headers.  "Expect:" stops curl waiting for 100-continue before
 * large bodies, which the API server does not need. */
static struct curl_slist *make_headers(const char *content_type, const char *auth)
{
    struct curl_slist *h = NULL, *t;
    char ct[256];
    const char *lines[4] = {"Accept: application/json", "Expect:", NULL, auth};
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        lines[2] = ct;
    }
    for (size_t i = 0; i < 4; i++) {
        if (!lines[i])
            continue;
        t = curl_slist_append(h, lines[i]);
        if (!t) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = t;
    }
    return h;
}

/* Transfer statistics kept for kube_conn_connects / _http_version. */
static void note_transfer(struct kube_conn *conn)
{
    long n = 0, v = 0;
    if (curl_easy_getinfo(conn->easy, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK)
        conn->connects += n;
    if (curl_easy_getinfo(conn->easy, CURLINFO_HTTP_VERSION, &v) == CURLE_OK && v) {
        switch (v) {
        case CURL_HTTP_VERSION_1_0: conn->http_version = 10; break;
        case CURL_HTTP_VERSION_1_1: conn->http_version = 11; break;
        case CURL_HTTP_VERSION_2_0: conn->http_version = 20; break;
        default: conn->http_version = v; break;
        }
    }
}

/* "GET https://host/path: <curl error>" — never a header, so no token. */
static void transport_err(struct kube_conn *conn, const char *method,
                          const char *url, CURLcode rc, char *err, size_t errlen)
{
    const char *detail = conn->errbuf[0] ? conn->errbuf : curl_easy_strerror(rc);
    set_err(err, errlen, "%s %s: %s", method, url, detail);
}

/* A path goes into the request line: only visible ASCII, leading '/'. */
static int check_path(const char *path, char *err, size_t errlen)
{
    if (!path || path[0] != '/') {
        set_err(err, errlen, "kube request: path must start with '/'");
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            set_err(err, errlen, "kube request: path has an unescaped byte "
                    "0x%02x at offset %zu", *p, (size_t)(p - (const unsigned char *)path));
            return -1;
        }
    }
    return 0;
}

static char *make_url(const struct kube_client *c, const char *path)
{
    size_t n = strlen(c->cfg.server) + strlen(path) + 1;
    char *url = malloc(n);
    if (url)
        snprintf(url, n, "%s%s", c->cfg.server, path);
    return url;
}

/* ---- kube_request ----------------------------------------------------------- */

struct body {
    char *data;
    size_t len, cap;
    size_t max;
    bool too_large;
};

static int body_append(struct body *b, const char *p, size_t n)
{
    if (n > b->max - b->len) {
        b->too_large = true;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : BODY_INITIAL_CAP;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        char *nd = realloc(b->data, cap);
        if (!nd)
            return -1;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    size_t n = size * nmemb;
    return body_append(arg, p, n) == 0 ? n : 0;
}

/* Method and body options for one verb. */
static void setup_method(CURL *e, int verb, const char *method,
                         const char *body, size_t len)
{
    if (verb == KUBE_VERB_GET) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (verb == KUBE_VERB_POST)
        curl_easy_setopt(e, CURLOPT_POST, 1L);
    else
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body || verb != KUBE_VERB_DELETE) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(body ? len : 0));
    }
}

struct req {
    int verb;
    const char *method, *url, *content_type, *body;
    size_t len;
};

/* One attempt: perform and collect the body.  0 with resp, or -1. */
static int perform(struct kube_conn *conn, const struct req *q, const char *auth,
                   struct kube_response *resp, char *err, size_t errlen)
{
    struct kube_client *c = conn->client;
    struct curl_slist *headers = make_headers(q->content_type, auth);
    struct body b = {.max = KUBE_RESPONSE_MAX};
    if (!headers) {
        set_err(err, errlen, "%s %s: out of memory", q->method, q->url);
        return -1;
    }
    setup_common(conn, q->url, headers);
    CURL *e = conn->easy;
    setup_method(e, q->verb, q->method, q->body, q->len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    kube_ratelimit_wait(&c->rl);
    CURLcode rc = curl_easy_perform(e);
    note_transfer(conn);
    curl_slist_free_all(headers);  /* holds the token: curl copied what it needs */
    if (rc != CURLE_OK) {
        if (b.too_large)
            set_err(err, errlen, "%s %s: response larger than %u bytes",
                    q->method, q->url, KUBE_RESPONSE_MAX);
        else
            transport_err(conn, q->method, q->url, rc, err, errlen);
        if (rc == CURLE_OPERATION_TIMEDOUT)
            drop_connection(conn);
        free(b.data);
        count(c, q->verb, 0);
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!b.data && body_append(&b, "", 0) != 0) {
        set_err(err, errlen, "%s %s: out of memory", q->method, q->url);
        count(c, q->verb, 0);
        return -1;
    }
    resp->body = b.data;
    resp->len = b.len;
    count(c, q->verb, resp->status);
    return 0;
}

int kube_request(struct kube_conn *conn, const char *method, const char *path,
                 const char *content_type, const char *body, size_t len,
                 struct kube_response *resp, char *err, size_t errlen)
{
    memset(resp, 0, sizeof *resp);
    struct req q = {.verb = kube_verb_index(method), .method = method,
                    .content_type = content_type, .body = body, .len = len};
    if (q.verb < 0) {
        set_err(err, errlen, "kube request: unsupported method %s",
                method ? method : "(null)");
        return -1;
    }
    if (check_path(path, err, errlen) != 0)
        return -1;
    char *url = make_url(conn->client, path);
    bool oom;
    char *auth = kube_token_header_at(&conn->client->token, mono_now_s(), false, &oom);
    if (!url || oom) {
        set_err(err, errlen, "%s %s: out of memory", method, path);
        free(url);
        kube_token_free_header(auth);
        return -1;
    }
    q.url = url;
    double t0 = mono_now_s();
    int rc = perform(conn, &q, auth, resp, err, errlen);
    /* A rotated token: re-read at once and retry once, but only when the
     * file really holds a different token (else the 401 is the answer). */
    if (rc == 0 && resp->status == 401 && conn->client->token.path[0]) {
        char *fresh = kube_token_header_at(&conn->client->token, mono_now_s(), true, &oom);
        if (fresh && (!auth || strcmp(fresh, auth) != 0)) {
            log_info("kube request got 401; retrying with the re-read token",
                     LF_STR("method", method), LF_STR("path", path));
            kube_response_free(resp);
            memset(resp, 0, sizeof *resp);
            rc = perform(conn, &q, fresh, resp, err, errlen);
        }
        kube_token_free_header(fresh);
    }
    if (rc == 0)
        kube_status_decode(resp);
    log_debug("kube request", LF_STR("method", method), LF_STR("path", path),
              LF_INT("status", rc == 0 ? resp->status : 0),
              LF_DBL("seconds", mono_now_s() - t0));
    kube_token_free_header(auth);
    free(url);
    return rc;
}

/* ---- kube_stream ------------------------------------------------------------- */

struct stream {
    struct kube_conn *conn;
    kube_stream_fn on_data;
    void *arg;
    const volatile bool *stop;
    double idle_s;
    double last_byte_s;
    long status;          /* known once the first body byte arrives */
    struct body errbody;  /* the body of a non-2xx answer */
    bool stopped, idle, by_callback;
};

static size_t on_stream_header(char *p, size_t size, size_t nmemb, void *arg)
{
    (void)p;
    struct stream *s = arg;
    s->last_byte_s = mono_now_s();
    return size * nmemb;
}

static size_t on_stream_data(char *p, size_t size, size_t nmemb, void *arg)
{
    struct stream *s = arg;
    size_t n = size * nmemb;
    s->last_byte_s = mono_now_s();
    if (s->status == 0)
        curl_easy_getinfo(s->conn->easy, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status < 200 || s->status >= 300) {
        /* Not events: keep the start of it for the error message. */
        size_t room = s->errbody.max - s->errbody.len;
        body_append(&s->errbody, p, n < room ? n : room);
        return n;
    }
    if (s->on_data(s->arg, p, n) != 0) {
        s->by_callback = true;
        return 0;
    }
    return n;
}

/* Called about once a second even when nothing arrives: the place to
 * notice the stop flag and a connection gone silent. */
static int on_stream_progress(void *arg, curl_off_t dlt, curl_off_t dln,
                              curl_off_t ult, curl_off_t uln)
{
    (void)dlt, (void)dln, (void)ult, (void)uln;
    struct stream *s = arg;
    /* Another thread sets the flag: an atomic load keeps that race-free
     * whatever plain bool the caller hands in. */
    if (s->stop && __atomic_load_n(s->stop, __ATOMIC_ACQUIRE)) {
        s->stopped = true;
        return 1;
    }
    if (mono_now_s() - s->last_byte_s > s->idle_s) {
        s->idle = true;
        return 1;
    }
    return 0;
}

static void setup_stream(struct kube_conn *conn, struct stream *s)
{
    CURL *e = conn->easy;
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_stream_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_stream_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, s);
}

/* How a stream ended, as kube_stream's contract puts it. */
static int stream_result(struct kube_conn *conn, struct stream *s, CURLcode rc,
                         const char *url, char *err, size_t errlen)
{
    if (s->idle) {
        set_err(err, errlen, "GET %s: no data for %.0f s, connection presumed dead",
                url, s->idle_s);
        return -1;
    }
    if (rc != CURLE_OK && !s->stopped && !s->by_callback) {
        transport_err(conn, "GET", url, rc, err, errlen);
        return -1;
    }
    if (s->status >= 400) {
        struct kube_response r = {.status = s->status, .body = s->errbody.data,
                                  .len = s->errbody.len};
        kube_status_decode(&r);
        set_err(err, errlen, "GET %s: %ld %s: %s", url, s->status, r.reason,
                r.message);
    }
    return 0;
}

int kube_stream(struct kube_conn *conn, const char *path, unsigned idle_timeout_s,
                kube_stream_fn on_data, void *arg, const volatile bool *stop,
                long *status, char *err, size_t errlen)
{
    *status = 0;
    if (check_path(path, err, errlen) != 0)
        return -1;
    struct kube_client *c = conn->client;
    bool oom;
    char *url = make_url(c, path);
    char *auth = kube_token_header_at(&c->token, mono_now_s(), false, &oom);
    struct curl_slist *headers = url && !oom ? make_headers(NULL, auth) : NULL;
    kube_token_free_header(auth);
    if (!headers) {
        set_err(err, errlen, "GET %s: out of memory", path);
        free(url);
        return -1;
    }
    struct stream s = {.conn = conn, .on_data = on_data, .arg = arg, .stop = stop,
                       .idle_s = idle_timeout_s,
                       .errbody = {.max = STREAM_ERROR_BODY_MAX}};
    setup_common(conn, url, headers);
    setup_stream(conn, &s);
    kube_ratelimit_wait(&c->rl);
    s.last_byte_s = mono_now_s();
    CURLcode rc = curl_easy_perform(conn->easy);
    note_transfer(conn);
    curl_slist_free_all(headers);
    if (s.status == 0)
        curl_easy_getinfo(conn->easy, CURLINFO_RESPONSE_CODE, &s.status);
    *status = s.status;
    int result = stream_result(conn, &s, rc, url, err, errlen);
    if (s.idle || rc == CURLE_OPERATION_TIMEDOUT)
        drop_connection(conn);
    count(c, KUBE_VERB_WATCH, result == 0 ? s.status : 0);
    if (s.status == 401) {
        /* The caller retries after its backoff, with a fresh token. */
        kube_token_refresh_at(&c->token, mono_now_s());
    }
    free(s.errbody.data);
    free(url);
    return result;
}
