/*
 * serve.c — `inference-operator serve`: wire config, certificates, the
 * HTTPS server and signals together, then wait.
 *
 * Signals are blocked in every thread before any thread starts, and the
 * main thread takes them with sigwait(): no async-signal-safety puzzles,
 * and SIGPIPE from a client that hung up never kills the process.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#define CERT_RELOAD_INTERVAL_DEFAULT_S 10
#define SHUTDOWN_TIMEOUT_DEFAULT_S 10
#define DEFAULT_CERT_DIR "/tmp/k8s-webhook-server/serving-certs"

struct serve_opts {
    struct srv_config srv;
    const char *cert_dir;
    const char *log_level;
    unsigned cert_reload_s;
    unsigned shutdown_timeout_s;
    bool webhook_only;
    bool reconciler_only;
    struct isvc_rules rules;
};

static _Atomic uint64_t cert_reloads_ok, cert_reloads_failed;

static void on_cert_reload(void *arg, bool ok, const char *detail)
{
    (void)arg;
    if (ok) {
        atomic_fetch_add(&cert_reloads_ok, 1);
        log_info("serving certificate reloaded", LF_STR("detail", detail));
    } else {
        atomic_fetch_add(&cert_reloads_failed, 1);
        log_error("serving certificate refused; the previous one keeps serving",
                  LF_STR("reason", detail));
    }
}

static void collect_certs(struct metrics_buf *b, void *arg)
{
    (void)arg;
    metrics_printf(b,
                   "# HELP inference_operator_cert_reloads_total Serving "
                   "certificate reloads after a change on disk.\n"
                   "# TYPE inference_operator_cert_reloads_total counter\n"
                   "inference_operator_cert_reloads_total{result=\"success\"} %llu\n"
                   "inference_operator_cert_reloads_total{result=\"error\"} %llu\n",
                   (unsigned long long)atomic_load(&cert_reloads_ok),
                   (unsigned long long)atomic_load(&cert_reloads_failed));
}

int rule_flag_gpu_types(void *rules, const char *value, char *err,
                        size_t errlen)
{
    return isvc_rules_set_gpu_types(rules, value, err, errlen);
}

/* Keep the allocator from hoarding memory: a few arenas instead of eight
 * per core, and large blocks (request bodies up to 7 MiB) served by mmap so
 * they go back to the kernel when freed.  A fixed threshold also stops
 * glibc from raising it dynamically after the first big free. */
static void tune_allocator(void)
{
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

static int wait_for_signals(struct certs_store *store)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            char err[256];
            if (certs_store_reload_now(store, err, sizeof(err)) != 0)
                log_error("SIGHUP: certificate reload refused", LF_STR("reason", err));
            else
                log_info("SIGHUP: certificates checked");
            continue;
        }
        return sig;
    }
}

int cmd_serve(int argc, char **argv)
{
    struct serve_opts o = { .cert_dir = DEFAULT_CERT_DIR, .log_level = "info",
                            .cert_reload_s = CERT_RELOAD_INTERVAL_DEFAULT_S,
                            .shutdown_timeout_s = SHUTDOWN_TIMEOUT_DEFAULT_S };
    srv_config_init(&o.srv);
    isvc_rules_init(&o.rules);
    const struct cli_opt opts[] = {
        { "listen", CLI_STRING, &o.srv.listen, "ADDR:PORT",
          "address to serve HTTPS on (default 0.0.0.0:9443)", 0, 0, NULL },
        { "cert-dir", CLI_STRING, &o.cert_dir, "DIR",
          "directory with tls.crt and tls.key, reloaded when they change "
          "(default " DEFAULT_CERT_DIR ")", 0, 0, NULL },
        { "webhook-only", CLI_BOOL, &o.webhook_only, NULL,
          "serve the admission webhook without the reconciler", 0, 0, NULL },
        { "reconciler-only", CLI_BOOL, &o.reconciler_only, NULL,
          "run the reconciler without serving the webhook routes", 0, 0, NULL },
        { "threads", CLI_UINT, &o.srv.threads, "N",
          "HTTPS worker threads (default: number of CPUs)", 0, 256, NULL },
        { "tls-priorities", CLI_STRING, &o.srv.tls_priorities, "STRING",
          "GnuTLS priority string (default " SRV_TLS_PRIORITIES_DEFAULT ")",
          0, 0, NULL },
        { "max-connections", CLI_UINT, &o.srv.max_connections, "N",
          "concurrent connections accepted (default 1024)", 1, 65536, NULL },
        { "idle-timeout", CLI_UINT, &o.srv.idle_timeout_s, "SECONDS",
          "close keep-alive connections idle this long (default 120)", 1, 3600,
          NULL },
        { "cert-reload-interval", CLI_UINT, &o.cert_reload_s, "SECONDS",
          "re-read the certificate files at least this often (default 10)", 1,
          86400, NULL },
        { "shutdown-timeout", CLI_UINT, &o.shutdown_timeout_s, "SECONDS",
          "on SIGTERM, wait this long for in-flight requests (default 10)", 0,
          300, NULL },
        { "log-level", CLI_STRING, &o.log_level, "LEVEL",
          "debug, info, warn or error (default info)", 0, 0, NULL },
        RULE_FLAGS(&o.rules),
    };
    const struct cli_command cmd = {
        "serve", "Serve the InferenceService admission webhook over HTTPS.",
        opts, sizeof(opts) / sizeof(opts[0]),
    };
    char err[512];
    int rc = cli_parse(&cmd, argc, argv, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "inference-operator serve: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    if (log_set_level_name(o.log_level) != 0) {
        fprintf(stderr, "inference-operator serve: --log-level \"%s\": use "
                "debug, info, warn or error\n", o.log_level);
        return 2;
    }
    if (isvc_rules_check(&o.rules, err, sizeof(err)) != 0) {
        fprintf(stderr, "inference-operator serve: %s\n", err);
        return 2;
    }
    if (o.webhook_only && o.reconciler_only) {
        fprintf(stderr, "inference-operator serve: --webhook-only and "
                "--reconciler-only exclude each other\n");
        return 2;
    }
    if (!o.webhook_only) {
        fprintf(stderr, "inference-operator serve: this build has no reconciler "
                "yet; run with --webhook-only\n");
        return 2;
    }

    tune_allocator();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct certs_store *store;
    if (certs_store_open(o.cert_dir, o.cert_reload_s * 1000u, on_cert_reload,
                         NULL, &store, err, sizeof(err)) != 0) {
        log_error("cannot load the serving certificate", LF_STR("dir", o.cert_dir),
                  LF_STR("reason", err));
        return 1;
    }
    certs_store_install(store);
    metrics_register(collect_certs, NULL);

    o.srv.webhook = true;
    o.srv.rules = &o.rules;
    struct srv *srv;
    if (srv_start(&o.srv, &srv, err, sizeof(err)) != 0) {
        log_error("cannot start the HTTPS server", LF_STR("reason", err));
        certs_store_install(NULL);
        certs_store_close(store);
        return 1;
    }
    char addr[96];
    snprintf(addr, sizeof(addr), "%.80s", o.srv.listen);
    log_info("serving", LF_STR("listen", addr), LF_INT("port", srv_port(srv)),
             LF_STR("certDir", o.cert_dir), LF_BOOL("webhook", true),
             LF_BOOL("reconciler", false), LF_STR("version", IO_VERSION));

    int sig = wait_for_signals(store);
    log_info("shutting down", LF_STR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
             LF_INT("timeoutSeconds", o.shutdown_timeout_s));
    unsigned left = srv_shutdown(srv, o.shutdown_timeout_s * 1000u);
    metrics_unregister(collect_certs, NULL);
    certs_store_install(NULL);
    certs_store_close(store);
    if (left)
        log_warn("requests cut off by the shutdown deadline", LF_INT("count", left));
    log_info("stopped");
    return 0;
}
