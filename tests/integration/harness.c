/*
 * harness.c — see harness.h.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs.h"
#include "log.h"

void harness_start(struct harness *h)
{
    char err[512];
    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "/tmp/io-itest-XXXXXX");
    cr_assert_not_null(mkdtemp(h->dir));
    snprintf(h->ca_path, sizeof(h->ca_path), "%s/ca.crt", h->dir);
    const char *dns[] = { "localhost" };
    const char *ips[] = { "127.0.0.1" };
    struct certs_request req = { .out_dir = h->dir, .dns = dns, .dns_count = 1,
                                 .ips = ips, .ip_count = 1, .days = 30 };
    enum certs_outcome outcome;
    cr_assert_eq(certs_generate(&req, &outcome, err, sizeof(err)), 0, "%s", err);

    /* Quiet unless a test fails: logs go to a file in the temp dir. */
    log_set_level(LOG_WARN);
    isvc_rules_init(&h->rules);
    cr_assert_eq(certs_store_open(h->dir, 60000, NULL, NULL, &h->store, err,
                                  sizeof(err)), 0, "%s", err);
    certs_store_install(h->store);
    struct srv_config cfg;
    srv_config_init(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.threads = 2;
    cfg.rules = &h->rules;
    cr_assert_eq(srv_start(&cfg, &h->srv, err, sizeof(err)), 0, "%s", err);
    h->port = srv_port(h->srv);
    cr_assert_neq(h->port, 0);
}

static void remove_dir(const char *dir)
{
    const char *names[] = { "ca.crt", "tls.crt", "tls.key", "ca2.crt", "both.crt" };
    char path[600];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

void harness_stop(struct harness *h)
{
    if (h->srv)
        cr_expect_eq(srv_shutdown(h->srv, 5000), 0, "requests cut at shutdown");
    certs_store_install(NULL);
    certs_store_close(h->store);
    remove_dir(h->dir);
}

void harness_url(const struct harness *h, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "https://127.0.0.1:%u%s", h->port, path);
}

CURL *harness_curl(const struct harness *h, const char *ca_path)
{
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_path ? ca_path : h->ca_path);
    /* Trust only our CA; loading the system store costs ~20 ms per handle. */
    curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    return c;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    char *grown = realloc(r->body, r->len + len + 1);
    if (grown == NULL)
        return 0;
    r->body = grown;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

CURLcode harness_do(CURL *c, const char *url, const char *content_type,
                    const char *body, size_t len, struct reply *r)
{
    struct curl_slist *headers = NULL;
    char ct[160];
    memset(r, 0, sizeof(*r));
    r->body = calloc(1, 1);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, ct);
        /* No "Expect: 100-continue" round trip: the API server sends none. */
        headers = curl_slist_append(headers, "Expect:");
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
    char *type = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    snprintf(r->content_type, sizeof(r->content_type), "%s", type ? type : "");
    return rc;
}

void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

char *review_for(const char *operation, const char *object_json)
{
    size_t cap = strlen(object_json) + 1024;
    char *out = malloc(cap);
    snprintf(out, cap,
             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
             "\"request\":{\"uid\":\"0df28fbd-5f5f-11e8-bc74-36e6bb280816\","
             "\"kind\":{\"group\":\"ai.example.com\",\"version\":\"v1\","
             "\"kind\":\"InferenceService\"},\"resource\":{\"group\":"
             "\"ai.example.com\",\"version\":\"v1\",\"resource\":"
             "\"inferenceservices\"},\"namespace\":\"default\",\"operation\":"
             "\"%s\",\"object\":%s}}",
             operation, object_json);
    return out;
}

long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

long self_rss_kib(void)
{
    return proc_rss_kib(0);
}
