/*
 * http.c — libmicrohttpd daemon, routing, bounded body reading and the
 * HTTP metrics.  See http.h.
 *
 * libmicrohttpd calls the access handler several times per request:
 * once when the headers are in (we route, check method, content type and
 * declared length, and may answer at once), once per chunk of body (we
 * append to a capped buffer), and once with no data (we answer).  An early
 * answer before the body is read makes libmicrohttpd close the connection
 * afterwards, which is what we want for 405/413/415.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "http_deadline.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "wh.h"

enum route {
    ROUTE_VALIDATE,
    ROUTE_MUTATE,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_OTHER,
    ROUTE_COUNT
};

static const char *const route_paths[ROUTE_COUNT] = {
    "/validate", "/mutate", "/healthz", "/readyz", "/metrics", "other",
};

/* Status codes we count individually; anything else is "other". */
static const unsigned counted_codes[] = { 200, 400, 404, 405, 413, 415, 500, 503 };
#define CODE_SLOTS (sizeof(counted_codes) / sizeof(counted_codes[0]) + 1)

struct ready_check {
    const char *name;
    srv_ready_fn fn;
    void *arg;
};

struct srv {
    struct MHD_Daemon *daemon;
    struct srv_deadlines *deadlines;
    struct srv_config cfg;
    uint16_t port;
    _Atomic unsigned in_flight;
    _Atomic uint64_t requests[ROUTE_COUNT][CODE_SLOTS];
    _Atomic unsigned route_in_flight[ROUTE_COUNT];
    struct metrics_hist latency[2];           /* validate, mutate */
    _Atomic uint64_t admissions[2][2];        /* [route][allowed] */
    _Atomic uint64_t denials[ISVC_REASON_COUNT + 1];
    _Atomic uint64_t patched;
    size_t ready_count;
    struct ready_check ready[SRV_READY_CHECKS_MAX];
};

struct request {
    enum route route;
    uint64_t start_ns;
    unsigned status;        /* queued status, 0 while none */
    bool discard;           /* answered early: ignore the rest of the body */
    char *body;
    size_t len, cap;
};

void srv_config_init(struct srv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = "0.0.0.0:9443";
    cfg->tls_priorities = SRV_TLS_PRIORITIES_DEFAULT;
    cfg->max_connections = SRV_MAX_CONNECTIONS_DEFAULT;
    cfg->idle_timeout_s = SRV_IDLE_TIMEOUT_DEFAULT_S;
    cfg->header_timeout_s = SRV_HANDSHAKE_TIMEOUT_S;
    cfg->request_timeout_s = SRV_REQUEST_TIMEOUT_DEFAULT_S;
    cfg->webhook = true;
}

int srv_parse_listen(const char *listen, struct sockaddr_storage *ss,
                     char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon;
    const char *h = listen;
    size_t hlen;

    memset(ss, 0, sizeof(*ss));
    if (listen == NULL || *listen == '\0')
        goto bad;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            goto bad;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            goto bad;
        hlen = (size_t)(colon - listen);
    }
    if (hlen >= sizeof(host))
        goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
        goto bad;

    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (hlen == 0 || inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        if (hlen == 0)
            v4->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return 0;
    }
bad:
    snprintf(err, errlen, "--listen \"%s\": expected IPv4:PORT or [IPv6]:PORT, "
             "e.g. 0.0.0.0:9443", listen ? listen : "");
    return -1;
}

static enum route route_of(const char *url)
{
    for (int r = 0; r < ROUTE_OTHER; r++)
        if (strcmp(url, route_paths[r]) == 0)
            return (enum route)r;
    return ROUTE_OTHER;
}

static size_t code_slot(unsigned code)
{
    for (size_t i = 0; i < CODE_SLOTS - 1; i++)
        if (counted_codes[i] == code)
            return i;
    return CODE_SLOTS - 1;
}

static enum MHD_Result respond(struct MHD_Connection *c, struct request *rq,
                               unsigned status, const char *type, void *body,
                               size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    rq->status = status;
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c,
                                    struct request *rq, unsigned status,
                                    const char *text)
{
    return respond(c, rq, status, "text/plain; charset=utf-8", (void *)text,
                   strlen(text), MHD_RESPMEM_PERSISTENT);
}

static bool is_json(const char *ctype)
{
    static const char want[] = "application/json";
    if (ctype == NULL || strncasecmp(ctype, want, sizeof(want) - 1) != 0)
        return false;
    char next = ctype[sizeof(want) - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* Headers are in: decide whether this request can go on to its body. */
static enum MHD_Result on_headers(struct srv *s, struct MHD_Connection *c,
                                  struct request *rq, const char *method)
{
    bool webhook = rq->route == ROUTE_VALIDATE || rq->route == ROUTE_MUTATE;
    if (rq->route == ROUTE_OTHER || (webhook && !s->cfg.webhook))
        return respond_text(c, rq, 404, "not found\n");
    if (webhook) {
        if (strcmp(method, "POST") != 0)
            return respond_text(c, rq, 405, "method not allowed: use POST\n");
        if (!is_json(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE)))
            return respond_text(c, rq, 415, "unsupported media type: send "
                                "Content-Type: application/json\n");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end != '\0' || n > SRV_BODY_MAX)
                return respond_text(c, rq, 413, "request body larger than "
                                    "7 MiB\n");
            if (n > 0 && (rq->body = malloc((size_t)n)) != NULL)
                rq->cap = (size_t)n;
        }
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond_text(c, rq, 405, "method not allowed: use GET\n");
    return MHD_YES;
}

/* Append one chunk of body; false when the cap is passed. */
static bool append_body(struct request *rq, const char *data, size_t n)
{
    if (n > SRV_BODY_MAX - rq->len)
        return false;
    if (rq->len + n > rq->cap) {
        size_t want = rq->cap ? rq->cap : 16384;
        while (want < rq->len + n)
            want *= 2;
        if (want > SRV_BODY_MAX)
            want = SRV_BODY_MAX;
        char *p = realloc(rq->body, want);
        if (p == NULL)
            return false;
        rq->body = p;
        rq->cap = want;
    }
    memcpy(rq->body + rq->len, data, n);
    rq->len += n;
    return true;
}

static void count_admission(struct srv *s, enum route route,
                            const struct wh_result *res)
{
    int w = route == ROUTE_MUTATE;
    atomic_fetch_add_explicit(&s->admissions[w][res->allowed ? 1 : 0], 1,
                              memory_order_relaxed);
    if (res->patched)
        atomic_fetch_add_explicit(&s->patched, 1, memory_order_relaxed);
    for (int i = 0; i < ISVC_REASON_COUNT; i++)
        if (res->denials[i])
            atomic_fetch_add_explicit(&s->denials[i], res->denials[i],
                                      memory_order_relaxed);
    if (res->denied_request)
        atomic_fetch_add_explicit(&s->denials[ISVC_REASON_COUNT], 1,
                                  memory_order_relaxed);
}

static enum MHD_Result serve_webhook(struct srv *s, struct MHD_Connection *c,
                                     struct request *rq)
{
    struct wh_result res;
    enum wh_kind kind = rq->route == ROUTE_VALIDATE ? WH_VALIDATE : WH_MUTATE;

    if (log_enabled(LOG_DEBUG)) {
        /* Bodies may hold secrets users put in specs: debug level only. */
        char preview[512];
        size_t n = rq->len < sizeof(preview) - 1 ? rq->len : sizeof(preview) - 1;
        memcpy(preview, rq->body ? rq->body : "", n);
        preview[n] = '\0';
        log_debug("admission request", LF_STR("route", route_paths[rq->route]),
                  LF_INT("bytes", rq->len), LF_STR("body", preview));
    }
    if (wh_admit(kind, s->cfg.rules, rq->body, rq->len, &res) != 0)
        return respond_text(c, rq, 500, "out of memory\n");
    if (res.http_status == 200)
        count_admission(s, rq->route, &res);
    else
        log_info("rejected request", LF_STR("route", route_paths[rq->route]),
                 LF_INT("code", res.http_status), LF_STR("reason", res.body));
    enum MHD_Result ret = respond(c, rq, (unsigned)res.http_status,
                                  res.content_type, res.body, res.body_len,
                                  MHD_RESPMEM_MUST_FREE);
    res.body = NULL;   /* now owned by the response */
    return ret;
}

static enum MHD_Result serve_readyz(struct srv *s, struct MHD_Connection *c,
                                    struct request *rq)
{
    char *text = malloc(512);
    if (text == NULL)
        return respond_text(c, rq, 500, "out of memory\n");
    size_t o = 0;
    bool ok = true;
    for (size_t i = 0; i < s->ready_count; i++) {
        if (!s->ready[i].fn(s->ready[i].arg)) {
            ok = false;
            o += (size_t)snprintf(text + o, 512 - o, "[-]%s failed\n",
                                  s->ready[i].name);
        }
        if (o >= 400)
            break;
    }
    if (ok)
        snprintf(text, 512, "ok\n");
    return respond(c, rq, ok ? 200 : 503, "text/plain; charset=utf-8", text,
                   strlen(text), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_metrics(struct MHD_Connection *c,
                                     struct request *rq)
{
    char *page;
    size_t len;
    if (metrics_render(&page, &len) != 0)
        return respond_text(c, rq, 500, "metrics page too large\n");
    return respond(c, rq, 200, "text/plain; version=0.0.4; charset=utf-8", page,
                   len, MHD_RESPMEM_MUST_FREE);
}

/* The deadline registered for c's socket, or NULL. */
static struct srv_conn_deadline *conn_deadline(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct srv *s = cls;
    struct request *rq = *con_cls;
    (void)version;

    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        rq->route = route_of(url);
        rq->start_ns = mono_now_ns();
        atomic_fetch_add(&s->in_flight, 1);
        atomic_fetch_add(&s->route_in_flight[rq->route], 1);
        /* The connection proved itself: give it the keep-alive timeout,
         * and this request its own deadline, however it trickles in. */
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                                  s->cfg.idle_timeout_s);
        struct srv_conn_deadline *cd = conn_deadline(c);
        if (cd)
            srv_deadline_extend(cd, (uint64_t)s->cfg.request_timeout_s * 1000);
        enum MHD_Result r = on_headers(s, c, rq, method);
        if (rq->status)
            rq->discard = true;
        return r;
    }
    if (*upload_size > 0) {
        if (!rq->discard && !append_body(rq, upload, *upload_size)) {
            /* Past the cap without a Content-Length (chunked): libmicrohttpd
             * 0.9.75 accepts a response only before or after the body, so
             * the one bounded answer is to drop the connection now rather
             * than read an unbounded stream to the end. */
            log_info("request body past the cap, closing connection",
                     LF_STR("route", route_paths[rq->route]),
                     LF_INT("limitBytes", SRV_BODY_MAX));
            rq->status = 413;
            return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->status)
        return MHD_YES;   /* already answered */
    switch (rq->route) {
    case ROUTE_VALIDATE:
    case ROUTE_MUTATE:
        return serve_webhook(s, c, rq);
    case ROUTE_HEALTHZ:
        return respond_text(c, rq, 200, "ok\n");
    case ROUTE_READYZ:
        return serve_readyz(s, c, rq);
    case ROUTE_METRICS:
        return serve_metrics(c, rq);
    case ROUTE_OTHER:
    case ROUTE_COUNT:
        break;
    }
    return respond_text(c, rq, 404, "not found\n");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv *s = cls;
    struct request *rq = *con_cls;
    (void)toe;
    if (rq == NULL)
        return;
    /* Kept alive: the next request's headers are due within the idle
     * timeout plus the header timeout. */
    struct srv_conn_deadline *cd = conn_deadline(c);
    if (cd)
        srv_deadline_extend(cd, ((uint64_t)s->cfg.idle_timeout_s +
                                 s->cfg.header_timeout_s) * 1000);
    uint64_t elapsed = mono_now_ns() - rq->start_ns;
    unsigned status = rq->status ? rq->status : 500;
    atomic_fetch_add_explicit(&s->requests[rq->route][code_slot(status)], 1,
                              memory_order_relaxed);
    if (rq->route == ROUTE_VALIDATE || rq->route == ROUTE_MUTATE)
        metrics_hist_observe_ns(&s->latency[rq->route], elapsed);
    atomic_fetch_sub(&s->route_in_flight[rq->route], 1);
    atomic_fetch_sub(&s->in_flight, 1);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* Every accepted socket gets a deadline (http_deadline.h); libmicrohttpd
 * calls CLOSED before it closes the socket. */
static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct srv *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? srv_deadlines_add(s->deadlines, ci->connect_fd,
                                                 (uint64_t)s->cfg.header_timeout_s *
                                                     1000)
                             : NULL;
        return;
    }
    if (*socket_context != NULL) {
        srv_deadlines_remove(s->deadlines, *socket_context);
        *socket_context = NULL;
    }
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!log_enabled(LOG_DEBUG))
        return;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    if (n && msg[n - 1] == '\n')
        msg[n - 1] = '\0';
    /* Per-connection TLS failures from scanners land here: debug only. */
    log_debug("libmicrohttpd", LF_STR("detail", msg));
}

static void collect(struct metrics_buf *b, void *arg)
{
    struct srv *s = arg;
    metrics_printf(b, "# HELP inference_operator_http_requests_total HTTP "
                      "requests by route and status code.\n"
                      "# TYPE inference_operator_http_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT; r++) {
        for (size_t k = 0; k < CODE_SLOTS; k++) {
            uint64_t v = atomic_load_explicit(&s->requests[r][k],
                                              memory_order_relaxed);
            if (v == 0)
                continue;
            char code[8];
            if (k < CODE_SLOTS - 1)
                snprintf(code, sizeof(code), "%u", counted_codes[k]);
            else
                snprintf(code, sizeof(code), "other");
            metrics_printf(b, "inference_operator_http_requests_total{route=\"%s\","
                              "code=\"%s\"} %llu\n", route_paths[r], code,
                           (unsigned long long)v);
        }
    }
    metrics_printf(b, "# HELP inference_operator_http_connections_expired_total "
                      "Connections closed for not finishing their handshake, "
                      "headers or request in time (slow or stuck clients).\n"
                      "# TYPE inference_operator_http_connections_expired_total "
                      "counter\n"
                      "inference_operator_http_connections_expired_total %llu\n",
                   (unsigned long long)srv_deadlines_expired(s->deadlines));
    metrics_printf(b, "# HELP controller_runtime_webhook_requests_in_flight "
                      "Admission requests being served.\n"
                      "# TYPE controller_runtime_webhook_requests_in_flight gauge\n");
    for (int r = ROUTE_VALIDATE; r <= ROUTE_MUTATE; r++)
        metrics_printf(b, "controller_runtime_webhook_requests_in_flight"
                          "{webhook=\"%s\"} %u\n", route_paths[r],
                       atomic_load(&s->route_in_flight[r]));
    metrics_printf(b, "# HELP controller_runtime_webhook_latency_seconds "
                      "Admission request latency, body read to answer queued.\n"
                      "# TYPE controller_runtime_webhook_latency_seconds histogram\n");
    for (int r = ROUTE_VALIDATE; r <= ROUTE_MUTATE; r++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "webhook=\"%s\"", route_paths[r]);
        metrics_hist_write(b, "controller_runtime_webhook_latency_seconds",
                           labels, &s->latency[r]);
    }
    metrics_printf(b, "# HELP inference_operator_admissions_total Admission "
                      "answers by webhook and verdict.\n"
                      "# TYPE inference_operator_admissions_total counter\n");
    for (int r = ROUTE_VALIDATE; r <= ROUTE_MUTATE; r++)
        for (int a = 0; a < 2; a++)
            metrics_printf(b, "inference_operator_admissions_total{webhook=\"%s\","
                              "allowed=\"%s\"} %llu\n", route_paths[r],
                           a ? "true" : "false",
                           (unsigned long long)atomic_load(&s->admissions[r][a]));
    metrics_printf(b, "inference_operator_admissions_patched_total %llu\n",
                   (unsigned long long)atomic_load(&s->patched));
    metrics_printf(b, "# HELP inference_operator_webhook_denials_total Field "
                      "errors in denials by reason (Request: the request itself "
                      "was refused).\n"
                      "# TYPE inference_operator_webhook_denials_total counter\n");
    for (int i = 0; i <= ISVC_REASON_COUNT; i++)
        metrics_printf(b, "inference_operator_webhook_denials_total{reason=\"%s\"} "
                          "%llu\n",
                       i < ISVC_REASON_COUNT ? isvc_reason_name((enum isvc_reason)i)
                                             : "Request",
                       (unsigned long long)atomic_load(&s->denials[i]));
}

unsigned srv_thread_count(const struct srv_config *cfg)
{
    if (cfg->threads)
        return cfg->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int srv_start(const struct srv_config *cfg, struct srv **out, char *err,
              size_t errlen)
{
    struct sockaddr_storage addr;
    if (srv_parse_listen(cfg->listen, &addr, err, errlen) != 0)
        return -1;
    if (cfg->webhook && cfg->rules == NULL) {
        snprintf(err, errlen, "internal: webhook enabled without rules");
        return -1;
    }
    struct srv *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    if (s->cfg.header_timeout_s == 0)
        s->cfg.header_timeout_s = SRV_HANDSHAKE_TIMEOUT_S;
    if (s->cfg.request_timeout_s == 0)
        s->cfg.request_timeout_s = SRV_REQUEST_TIMEOUT_DEFAULT_S;
    if (srv_deadlines_start(&s->deadlines, err, errlen) != 0) {
        free(s);
        return -1;
    }
    unsigned threads = srv_thread_count(cfg);
    unsigned flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;

    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_HTTPS_CERT_CALLBACK2, certs_store_retrieve,
        MHD_OPTION_HTTPS_PRIORITIES, cfg->tls_priorities,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        /* The deadline reaper drops a connection at the header timeout;
         * libmicrohttpd's own silence timer is only the fallback for one
         * that could not be registered (out of memory), so it never races
         * the reaper and every drop is counted. */
        MHD_OPTION_CONNECTION_TIMEOUT,
        s->cfg.header_timeout_s * SRV_SILENCE_TIMEOUT_FACTOR,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_END);
    if (s->daemon == NULL) {
        snprintf(err, errlen, "could not start the HTTPS server on %s: the "
                 "address may be in use, or the TLS priority string \"%s\" "
                 "is invalid", cfg->listen, cfg->tls_priorities);
        srv_deadlines_stop(s->deadlines);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    if (metrics_register(collect, s) != 0)
        log_warn("metrics registry full; HTTP metrics not exported");
    *out = s;
    return 0;
}

uint16_t srv_port(const struct srv *s)
{
    return s->port;
}

int srv_add_ready_check(struct srv *s, const char *name, srv_ready_fn fn,
                        void *arg)
{
    if (s->ready_count == SRV_READY_CHECKS_MAX)
        return -1;
    s->ready[s->ready_count++] = (struct ready_check){ name, fn, arg };
    return 0;
}

unsigned srv_shutdown(struct srv *s, unsigned timeout_ms)
{
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    uint64_t deadline = mono_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (atomic_load(&s->in_flight) > 0 && mono_now_ns() < deadline)
        sleep_ms(10);
    unsigned left = atomic_load(&s->in_flight);
    metrics_unregister(collect, s);
    MHD_stop_daemon(s->daemon);
    srv_deadlines_stop(s->deadlines);
    free(s);
    return left;
}
