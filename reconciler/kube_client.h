/*
 * kube_client.h — a small Kubernetes API client on libcurl, written for
 * exactly what this operator does (get, list, watch, server-side apply,
 * status patches, create).
 *
 * Threads: a kube_client is shared (config, credentials, rate limiter,
 * TLS session cache, counters); each thread that talks to the API server
 * owns one kube_conn (a curl easy handle that keeps its connection alive).
 * A kube_conn is never used by two threads at once, which is the rule
 * libcurl sets.  TLS sessions are shared between conns through a curl
 * share handle with locks, so a new connection resumes instead of doing
 * a full handshake.
 *
 * Credentials: a client certificate, a static token, or a token file that
 * is re-read at least every KUBE_TOKEN_REFRESH_S and at once after a 401
 * (bound service-account tokens rotate).
 *
 * Errors: kube_request returns 0 whenever the API server answered, with
 * the HTTP status and, for failures, the Status object's reason and
 * message decoded into the response; -1 only for transport failures, with
 * a message naming the server and the curl error.
 */
#ifndef KUBE_CLIENT_H
#define KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube_config.h"

#define KUBE_TOKEN_REFRESH_S 60
/* Largest response body accepted (a list page of 500 Deployments is a
 * few MB); larger fails the request. */
#define KUBE_RESPONSE_MAX (64u * 1024 * 1024)
#define KUBE_USER_AGENT "inference-operator"

struct kube_client_opts {
    double qps;                  /* sustained requests/s (default 50)      */
    unsigned burst;              /* bucket size (default 100)              */
    unsigned timeout_ms;         /* per request, watches excepted (30000)  */
    unsigned connect_timeout_ms; /* (10000)                                */
    const char *user_agent;      /* default KUBE_USER_AGENT "/" version    */
};

struct kube_response {
    long status;                 /* HTTP status                            */
    char *body;                  /* NUL-terminated, owned; may be ""       */
    size_t len;
    char reason[64];             /* Status.reason for >= 400, e.g. "Conflict" */
    char message[512];           /* Status.message for >= 400              */
};

struct kube_client;
struct kube_conn;

void kube_client_opts_init(struct kube_client_opts *o);

/* cfg is copied.  Returns 0, or -1 with err. */
int kube_client_new(const struct kube_config *cfg,
                    const struct kube_client_opts *opts,
                    struct kube_client **out, char *err, size_t errlen);
void kube_client_free(struct kube_client *c);

/* One per thread.  Returns NULL on allocation failure. */
struct kube_conn *kube_conn_new(struct kube_client *c);
void kube_conn_free(struct kube_conn *conn);

/*
 * One request.  path starts with '/' and is already escaped (query string
 * included).  body may be NULL.  Waits for the rate limiter first.
 * Returns 0 with resp filled (free with kube_response_free) whenever an
 * HTTP response arrived, or -1 with err on a transport failure.
 */
int kube_request(struct kube_conn *conn, const char *method, const char *path,
                 const char *content_type, const char *body, size_t len,
                 struct kube_response *resp, char *err, size_t errlen);

void kube_response_free(struct kube_response *r);

/*
 * Streaming GET for watches: calls on_data with each chunk as it arrives,
 * until the server ends the response, on_data returns non-zero, the stop
 * flag becomes true, or no byte arrives for idle_timeout_s (a dead
 * connection; a bookmark or any event counts as a byte).  Not rate
 * limited beyond its start.  Returns 0 with *status set when the stream
 * ended normally (or was stopped), -1 with err otherwise.
 */
typedef int (*kube_stream_fn)(void *arg, const char *data, size_t len);
int kube_stream(struct kube_conn *conn, const char *path, unsigned idle_timeout_s,
                kube_stream_fn on_data, void *arg, const volatile bool *stop,
                long *status, char *err, size_t errlen);

/* Counters for /metrics: requests by verb and status class. */
struct kube_client_stats {
    uint64_t requests[6][6];     /* [verb][code class]; see kube_client.c */
};
void kube_client_stats(struct kube_client *c, struct kube_client_stats *out);
/* Names for the indexes of kube_client_stats.requests. */
const char *kube_verb_name(int verb);
const char *kube_code_name(int code_class);

/* ---- Added by the kube_client.c implementation (internals for tests and
 * metrics; nothing above changed). ---------------------------------------- */

/* Indexes of kube_client_stats.requests.  A list is a GET: kube_request
 * cannot tell them apart, and the path says which it was in debug logs. */
enum kube_verb {
    KUBE_VERB_GET, KUBE_VERB_WATCH, KUBE_VERB_POST, KUBE_VERB_PUT,
    KUBE_VERB_PATCH, KUBE_VERB_DELETE, KUBE_VERBS
};
enum kube_code_class {
    KUBE_CODE_2XX, KUBE_CODE_3XX, KUBE_CODE_4XX, KUBE_CODE_5XX,
    KUBE_CODE_ERROR,             /* transport failure: no HTTP status      */
    KUBE_CODE_OTHER,             /* 1xx or nonsense                        */
    KUBE_CODES
};

/* The verb slot of an HTTP method kube_request accepts, or -1. */
int kube_verb_index(const char *method);
/* The class of an HTTP status; 0 means a transport failure. */
int kube_code_class(long status);

/* Fill r->reason and r->message from r->body for r->status >= 400: the
 * metav1.Status fields when the body is one, else the API machinery's
 * reason for the code and the start of the body (control characters
 * blanked).  Clears both for status < 400. */
void kube_status_decode(struct kube_response *r);

/* Percent-encode s for a query value (RFC 3986 unreserved kept).
 * Returns a malloc'd string, or NULL on allocation failure. */
char *kube_escape(const char *s);

/* Diagnostics of one conn: connections it has opened so far (1 while
 * keep-alive holds), and the HTTP version of its last transfer (11, 20). */
long kube_conn_connects(const struct kube_conn *conn);
long kube_conn_http_version(const struct kube_conn *conn);

#endif
