/*
 * harness.h — a real server for integration tests: certificates made by
 * our own certs code into a temp dir, the certs store, and the HTTPS
 * server on an ephemeral loopback port, all in the test process; clients
 * are libcurl verifying against the generated CA (never insecure).
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http.h"
#include "isvc_fields.h"
#include "store.h"

struct harness {
    char dir[256];         /* cert dir: ca.crt tls.crt tls.key */
    char ca_path[300];
    struct isvc_rules rules;
    struct certs_store *store;
    struct srv *srv;
    unsigned short port;
};

struct reply {
    long status;
    char *body;            /* NUL-terminated, owned */
    size_t len;
    long connects;         /* new connections this request opened */
    char content_type[128];
};

/* Generate certs into a fresh temp dir, open the store, start a server. */
void harness_start(struct harness *h);
void harness_stop(struct harness *h);

/* URL for a route on the harness server. */
void harness_url(const struct harness *h, const char *path, char *out,
                 size_t cap);

/* A curl handle set up to trust the harness CA (and optionally a second
 * CA file, for rotation tests). */
CURL *harness_curl(const struct harness *h, const char *ca_path);

/* One request on handle c (keeps its connection for reuse).  body NULL
 * means GET.  Returns CURLE_OK or the curl error. */
CURLcode harness_do(CURL *c, const char *url, const char *content_type,
                    const char *body, size_t len, struct reply *r);

void reply_free(struct reply *r);

/* Body of an AdmissionReview for an InferenceService object (JSON). */
char *review_for(const char *operation, const char *object_json);

/* VmRSS in KiB of process pid (0: this one), or -1. */
long proc_rss_kib(pid_t pid);
/* Current VmRSS of this process in KiB. */
long self_rss_kib(void);

#endif
