/*
 * http.h — the one HTTPS server of the process (libmicrohttpd + GnuTLS).
 *
 * Routes:
 *   POST /validate  /mutate   admission webhook (webhook/wh.h)
 *   GET  /healthz             the process is alive
 *   GET  /readyz              certificates loaded and every registered
 *                             readiness check passes (the reconciler adds
 *                             "caches synced")
 *   GET  /metrics             Prometheus text
 *
 * Threads: libmicrohttpd's own pool with epoll; handlers never block on
 * anything but the CPU, so the reconciler can never slow admission.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "isvc_fields.h"

/* 7 MiB, as controller-runtime: two ~3 MiB objects (object + oldObject)
 * and room for the review around them. */
#define SRV_BODY_MAX (7u * 1024 * 1024)
/* libmicrohttpd's per-connection pool: request line, headers, read and
 * write buffers (bodies go to our own buffer).  It is allocated per
 * connection and zeroed per request, so it is most of a connection's
 * memory: 8 KiB takes headers up to ~7 KiB (larger get 431), several
 * times what the API server or a bearer token sends, and keeps 50 busy
 * connections within issue 2's 2 MB RSS growth (32 KiB did not). */
#define SRV_CONNECTION_MEMORY (8u * 1024)
#define SRV_MAX_CONNECTIONS_DEFAULT 1024
/* Idle keep-alive timeout, longer than the API server's own idle pool
 * timeout (90 s, Go's default) so the client always closes first and never
 * reuses a connection we are closing. */
#define SRV_IDLE_TIMEOUT_DEFAULT_S 120
/* Default --header-timeout: a connection must finish its TLS handshake
 * and its first request's headers within this many seconds of being
 * accepted, however it trickles them in (TLS never finished, slowloris). */
#define SRV_HANDSHAKE_TIMEOUT_S 10
/* libmicrohttpd's silence timeout before the first request, in header
 * timeouts: later than the deadline, so only a fallback. */
#define SRV_SILENCE_TIMEOUT_FACTOR 2u
/* Default --request-timeout: from a request's headers to its answer being
 * sent (a body that lies about its length, a slow POST, a client that
 * never reads).  The API server gives a webhook at most 30 s
 * (timeoutSeconds is capped there), so no answer later than that is ever
 * read. */
#define SRV_REQUEST_TIMEOUT_DEFAULT_S 30
#define SRV_READY_CHECKS_MAX 8
#define SRV_TLS_PRIORITIES_DEFAULT "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct srv_config {
    const char *listen;             /* "ADDR:PORT", "[v6]:PORT"; port 0 = any */
    unsigned threads;               /* 0 = number of CPUs                   */
    const char *tls_priorities;
    unsigned max_connections;
    unsigned idle_timeout_s;
    unsigned header_timeout_s;      /* see SRV_HANDSHAKE_TIMEOUT_S          */
    unsigned request_timeout_s;     /* see SRV_REQUEST_TIMEOUT_DEFAULT_S    */
    bool webhook;                   /* serve /validate and /mutate          */
    const struct isvc_rules *rules; /* borrowed, must outlive the server    */
};

typedef bool (*srv_ready_fn)(void *arg);

struct srv;

/* Fill cfg with the defaults above. */
void srv_config_init(struct srv_config *cfg);

/* libmicrohttpd threads cfg asks for: cfg->threads, else one per CPU. */
unsigned srv_thread_count(const struct srv_config *cfg);

/*
 * Start listening.  The certificate comes from the certs store installed
 * with certs_store_install() before this call.  Returns 0, or -1 with err.
 */
int srv_start(const struct srv_config *cfg, struct srv **out, char *err,
              size_t errlen);

/* Port actually bound (useful with port 0). */
uint16_t srv_port(const struct srv *s);

/* Add a readiness check (call before traffic matters; bounded). */
int srv_add_ready_check(struct srv *s, const char *name, srv_ready_fn fn,
                        void *arg);

/*
 * Stop accepting connections, let in-flight requests finish for up to
 * timeout_ms, then close everything and free s.  Returns the number of
 * requests that were still running when the deadline hit (0 = clean).
 */
unsigned srv_shutdown(struct srv *s, unsigned timeout_ms);

/* Parse "ADDR:PORT" into a socket address.  Exposed for unit tests. */
struct sockaddr_storage;
int srv_parse_listen(const char *listen, struct sockaddr_storage *ss,
                     char *err, size_t errlen);

#endif
