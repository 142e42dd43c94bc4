/*
 * serve.c — `inference-operator serve`: wire config, certificates, the
 * HTTPS server and signals together, then wait.
 *
 * Signals are blocked in every thread before any thread starts, and the
 * main thread takes them with sigwait(): no async-signal-safety puzzles,
 * and SIGPIPE from a client that hung up never kills the process.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "commands.h"
#include "fdlimit.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "bootstrap.h"
#include "kube_client.h"
#include "kube_config.h"
#include "kube_watch.h"
#include "rc_controller.h"
#include "rc_events.h"
#include "store.h"
#include "wh_arena.h"

#define CERT_RELOAD_INTERVAL_DEFAULT_S 10
#define SHUTDOWN_TIMEOUT_DEFAULT_S 10
#define DEFAULT_CERT_DIR "/tmp/k8s-webhook-server/serving-certs"

struct serve_opts {
    struct srv_config srv;
    struct rc_controller_opts rc;
    const char *kubeconfig;
    const char *sa_dir;
    const char *namespace_;
    const char *image;
    const char *gpu_products;
    unsigned workers;
    unsigned burst_workers;
    unsigned requeue_after_s;
    unsigned watch_timeout_s;
    unsigned request_timeout_s;
    unsigned connect_timeout_s;
    unsigned backoff_base_ms;
    unsigned backoff_max_s;
    unsigned qps, burst;
    unsigned event_qps, event_burst;
    unsigned gpus_per_replica;
    bool leader_elect;
    bool warm_standby;
    const char *cert_mode;
    const char *cert_secret;
    const char *webhook_service;
    const char *webhook_config;
    const char *operator_ns;
    unsigned cert_validity_days, cert_renew_before_days, cert_check_interval_s;
    const char *leader_id;
    const char *leader_ns;
    unsigned lease_s, renew_s, retry_s;
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

static int load_kube_config(const struct serve_opts *o, struct kube_config *kube)
{
    char err[1024];
    int rc;
    if (o->sa_dir)
        rc = kube_config_in_cluster(o->sa_dir, kube, err, sizeof(err));
    else
        rc = kube_config_load(o->kubeconfig, kube, err, sizeof(err));
    if (rc != 0) {
        log_error("cannot configure the Kubernetes client", LF_STR("reason", err));
        return -1;
    }
    return 0;
}

/* The operator's own namespace: the flag, else the pod's (in-cluster) or
 * the kubeconfig context's, else "default". */
static const char *operator_namespace(const struct serve_opts *o,
                                      const struct kube_config *kube)
{
    if (o->operator_ns && *o->operator_ns)
        return o->operator_ns;
    return kube->namespace_[0] ? kube->namespace_ : "default";
}

/* SIGTERM/SIGINT are blocked and taken by sigwait; while starting up, a
 * pending one means "give up now" (it stays pending for sigwait). */
static bool stop_requested(void *arg)
{
    (void)arg;
    sigset_t pending;
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

/*
 * --cert-mode selfSigned: make sure the TLS Secret exists and is fresh,
 * the webhook configurations trust its CA, and --cert-dir holds its pair,
 * before the HTTPS server loads it; then keep renewing in the background.
 */
static int start_cert_bootstrap(struct serve_opts *o, const struct kube_config *kube,
                                struct kube_client **client,
                                struct certs_bootstrap **boot)
{
    char err[1024];
    struct kube_client_opts copts;
    kube_client_opts_init(&copts);
    copts.connect_timeout_ms = o->connect_timeout_s * 1000u;
    if (kube_client_new(kube, &copts, client, err, sizeof(err)) != 0) {
        log_error("cannot create the Kubernetes client for certificates",
                  LF_STR("reason", err));
        return -1;
    }
    struct certs_bootstrap_opts bo = {
        .namespace_ = operator_namespace(o, kube),
        .secret_name = o->cert_secret,
        .service_name = o->webhook_service,
        .validating_config = o->webhook_config,
        .mutating_config = o->webhook_config,
        .cert_dir = o->cert_dir,
        .validity_days = o->cert_validity_days,
        .renew_before_days = o->cert_renew_before_days,
        .interval_s = o->cert_check_interval_s,
    };
    struct kube_conn *conn = kube_conn_new(*client);
    if (conn == NULL) {
        log_error("out of memory");
        return -1;
    }
    log_info("ensuring the webhook certificate", LF_STR("secret", o->cert_secret),
             LF_STR("namespace", bo.namespace_), LF_STR("service", o->webhook_service));
    int rc = certs_bootstrap_first_pass(conn, &bo, 0, stop_requested, NULL, err,
                                        sizeof(err));
    kube_conn_free(conn);
    if (rc != 0) {
        log_error("cannot set up the webhook certificate", LF_STR("reason", err));
        return -1;
    }
    if (certs_bootstrap_start(*client, &bo, boot, err, sizeof(err)) != 0) {
        log_error("cannot start certificate renewal", LF_STR("reason", err));
        return -1;
    }
    return 0;
}

/* Connect the reconciler: config, then the controller.  Returns 0 or -1
 * (logged). */
static int start_reconciler(struct serve_opts *o, struct kube_config *kube,
                            struct rc_controller **ctl)
{
    char err[1024];
    o->rc.kube = kube;
    o->rc.rules = &o->rules;
    o->rc.workers = o->workers;
    o->rc.burst_workers = o->burst_workers;
    o->rc.requeue_after_ms = (uint64_t)o->requeue_after_s * 1000u;
    o->rc.watch_timeout_s = o->watch_timeout_s;
    o->rc.client.timeout_ms = o->request_timeout_s * 1000u;
    o->rc.client.connect_timeout_ms = o->connect_timeout_s * 1000u;
    o->rc.backoff_base_ms = o->backoff_base_ms;
    o->rc.backoff_cap_ms = (uint64_t)o->backoff_max_s * 1000u;
    o->rc.client.qps = o->qps;
    o->rc.client.burst = o->burst;
    o->rc.event_qps = o->event_qps;
    o->rc.event_burst = o->event_burst;
    o->rc.watch_namespace = o->namespace_;
    o->rc.leader_elect = o->leader_elect;
    o->rc.warm_standby = o->warm_standby;
    rc_leader_opts_init(&o->rc.leader);
    o->rc.leader.name = o->leader_id;
    o->rc.leader.namespace_ = o->leader_ns ? o->leader_ns : operator_namespace(o, kube);
    o->rc.leader.lease_ms = o->lease_s * 1000u;
    o->rc.leader.renew_deadline_ms = o->renew_s * 1000u;
    o->rc.leader.retry_ms = o->retry_s * 1000u;
    if (o->leader_elect && o->lease_s <= o->renew_s) {
        log_error("--leader-election-lease-duration must be longer than "
                  "--leader-election-renew-deadline",
                  LF_INT("lease", o->lease_s), LF_INT("renewDeadline", o->renew_s));
        return -1;
    }
    if (o->leader_elect) {
        /* A write already on the wire when the fence drops must land before
         * the Lease can expire for another replica: keep each request
         * shorter than lease - renew deadline. */
        unsigned gap_ms = (o->lease_s - o->renew_s) * 1000u;
        if (o->rc.client.timeout_ms == 0 || o->rc.client.timeout_ms > gap_ms)
            o->rc.client.timeout_ms = gap_ms > 1000 ? gap_ms - 500 : gap_ms;
    }
    snprintf(o->rc.settings.image, sizeof(o->rc.settings.image), "%s", o->image);
    o->rc.settings.gpus_per_replica = o->gpus_per_replica;
    if (o->gpu_products &&
        rc_settings_set_gpu_products(&o->rc.settings, o->gpu_products, err,
                                     sizeof(err)) != 0) {
        log_error("bad --gpu-products", LF_STR("reason", err));
        return -1;
    }
    for (size_t i = 0; i < o->rules.gpu_type_count; i++) {
        if (!rc_gpu_products_for(&o->rc.settings, o->rules.gpu_types[i])) {
            log_error("a GPU type has no product names; add it to --gpu-products",
                      LF_STR("gpuType", o->rules.gpu_types[i]));
            return -1;
        }
    }
    if (rc_controller_start(&o->rc, ctl, err, sizeof(err)) != 0) {
        log_error("cannot start the reconciler", LF_STR("reason", err));
        return -1;
    }
    log_info("reconciler started", LF_STR("config", kube->source),
             LF_STR("server", kube->server), LF_INT("workers", o->rc.workers),
             LF_STR("namespace", o->namespace_ ? o->namespace_ : ""),
             LF_BOOL("leaderElect", o->leader_elect),
             LF_BOOL("warmStandby", o->warm_standby));
    return 0;
}

int rule_flag_gpu_types(void *rules, const char *value, char *err,
                        size_t errlen)
{
    return isvc_rules_set_gpu_types(rules, value, err, errlen);
}

static int wait_for_signals(struct certs_store *store)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    const struct timespec period = { .tv_sec = SRV_ALLOC_TRIM_PERIOD_S };
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &period);
        if (sig < 0) {
            srv_alloc_maybe_trim();  /* EAGAIN: the period passed (or EINTR) */
            continue;
        }
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

/* Raise the open-file limit for --max-connections, or lower the
 * connection limit to what the hard limit allows (fdlimit.h). */
static int fit_connections(struct serve_opts *o)
{
    /* libmicrohttpd: an epoll instance and a wake-up descriptor per
     * thread; the reconciler: one API connection per worker. */
    unsigned long reserve = SRV_FD_RESERVE_BASE +
                            2ul * srv_thread_count(&o->srv) +
                            (o->webhook_only ? 0ul : (unsigned long)o->workers +
                                                         o->burst_workers);
    unsigned long need = reserve + o->srv.max_connections;
    static const char raise_hard_limit[] =
        "raise the hard nofile limit (ulimit -Hn, systemd LimitNOFILE=, the "
        "container runtime's default ulimits)";
    struct srv_fd_limit lim;
    char err[256];
    int rc = srv_fd_limit_raise(need, &lim, err, sizeof(err));
    if (rc < 0) {
        log_warn("open-file limit unknown; --max-connections unchecked",
                 LF_STR("reason", err));
        return 0;
    }
    if (lim.soft != lim.before)
        log_debug("open-file limit raised", LF_INT("from", lim.before),
                  LF_INT("to", lim.soft));
    if (rc == 0)
        return 0;
    if (lim.soft <= reserve) {
        log_error("the open-file limit leaves no room for connections",
                  LF_INT("openFileLimit", lim.soft), LF_INT("needed", need),
                  LF_STR("fix", raise_hard_limit));
        return -1;
    }
    unsigned fit = (unsigned)(lim.soft - reserve);
    log_warn("--max-connections lowered to fit the open-file limit",
             LF_INT("maxConnections", fit),
             LF_INT("requested", o->srv.max_connections),
             LF_INT("openFileLimit", lim.soft), LF_STR("fix", raise_hard_limit));
    o->srv.max_connections = fit;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct serve_opts o = { .cert_dir = DEFAULT_CERT_DIR, .log_level = "info",
                            .cert_reload_s = CERT_RELOAD_INTERVAL_DEFAULT_S,
                            .shutdown_timeout_s = SHUTDOWN_TIMEOUT_DEFAULT_S };
    srv_config_init(&o.srv);
    isvc_rules_init(&o.rules);
    rc_controller_opts_init(&o.rc);
    o.image = RC_IMAGE_DEFAULT;
    o.workers = RC_WORKERS_DEFAULT;
    o.burst_workers = RC_BURST_WORKERS_DEFAULT;
    o.requeue_after_s = RC_REQUEUE_AFTER_MS_DEFAULT / 1000;
    o.watch_timeout_s = KUBE_WATCH_TIMEOUT_S;
    o.request_timeout_s = o.rc.client.timeout_ms / 1000u;
    o.connect_timeout_s = o.rc.client.connect_timeout_ms / 1000u;
    o.backoff_base_ms = RC_BACKOFF_BASE_MS_DEFAULT;
    o.backoff_max_s = RC_BACKOFF_CAP_MS_DEFAULT / 1000;
    o.qps = 1000;
    o.burst = 2000;
    o.event_qps = RC_EVENT_QPS_DEFAULT;
    o.event_burst = RC_EVENT_BURST_DEFAULT;
    o.gpus_per_replica = 1;
    o.leader_id = "inference-operator";
    o.warm_standby = true;
    o.cert_mode = "provided";
    o.cert_secret = "inference-operator-webhook-tls";
    o.webhook_service = "inference-operator-webhook";
    o.webhook_config = "inference-operator";
    o.lease_s = RC_LEADER_LEASE_MS_DEFAULT / 1000;
    o.renew_s = RC_LEADER_RENEW_DEADLINE_MS_DEFAULT / 1000;
    o.retry_s = RC_LEADER_RETRY_MS_DEFAULT / 1000;
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
        { "header-timeout", CLI_UINT, &o.srv.header_timeout_s, "SECONDS",
          "drop a connection whose TLS handshake and request headers are not "
          "all in this long after it opened (default 10)", 1, 3600, NULL },
        { "request-timeout", CLI_UINT, &o.srv.request_timeout_s, "SECONDS",
          "drop a request whose body and answer take longer than this "
          "(default 30, the API server's longest webhook timeout)", 1, 3600,
          NULL },
        { "cert-reload-interval", CLI_UINT, &o.cert_reload_s, "SECONDS",
          "re-read the certificate files at least this often (default 10)", 1,
          86400, NULL },
        { "shutdown-timeout", CLI_UINT, &o.shutdown_timeout_s, "SECONDS",
          "on SIGTERM, wait this long for in-flight requests (default 10)", 0,
          300, NULL },
        { "log-level", CLI_STRING, &o.log_level, "LEVEL",
          "debug, info, warn or error (default info)", 0, 0, NULL },
        { "kubeconfig", CLI_STRING, &o.kubeconfig, "FILE",
          "kubeconfig to use (default $KUBECONFIG, in-cluster, ~/.kube/config)",
          0, 0, NULL },
        { "service-account-dir", CLI_STRING, &o.sa_dir, "DIR",
          "run in-cluster with the token, ca.crt and namespace in DIR (default "
          "when KUBERNETES_SERVICE_HOST is set: " KUBE_SA_DIR_DEFAULT ")", 0, 0, NULL },
        { "namespace", CLI_STRING, &o.namespace_, "NS",
          "reconcile only this namespace (default: all)", 0, 0, NULL },
        { "workers", CLI_UINT, &o.workers, "N", "reconcile workers (default 4)", 1,
          RC_WORKERS_MAX, NULL },
        { "burst-workers", CLI_UINT, &o.burst_workers, "N",
          "extra workers started only while new or edited InferenceServices wait "
          "for their Deployment, each with its own API connection; each exits 2 s "
          "after the burst (default 8; 0 = none)",
          0, RC_BURST_WORKERS_MAX, NULL },
        { "requeue-after", CLI_UINT, &o.requeue_after_s, "SECONDS",
          "resync each InferenceService this long after a success (default 30)", 1,
          86400, NULL },
        { "watch-timeout", CLI_UINT, &o.watch_timeout_s, "SECONDS",
          "server-side timeout asked of each watch (± jitter); a watch silent "
          "5 s longer is taken for a dead connection and reopened (default "
          "290)", 10, 3600, NULL },
        { "kube-request-timeout", CLI_UINT, &o.request_timeout_s, "SECONDS",
          "longest wait for one API request, watches excepted (default 30)", 1,
          600, NULL },
        { "kube-connect-timeout", CLI_UINT, &o.connect_timeout_s, "SECONDS",
          "longest wait for a new connection to the API server, TLS handshake "
          "included (default 10)", 1, 600, NULL },
        { "error-backoff-base-ms", CLI_UINT, &o.backoff_base_ms, "MS",
          "first retry delay after an error, doubling per failure (default 1000)", 1,
          600000, NULL },
        { "error-backoff-max", CLI_UINT, &o.backoff_max_s, "SECONDS",
          "longest retry delay after errors (default 60)", 1, 3600, NULL },
        { "qps", CLI_UINT, &o.qps, "N",
          "API requests per second (default 1000: a guard against a runaway "
          "loop; the API server's priority and fairness does the real "
          "protecting)", 1,
          100000, NULL },
        { "burst", CLI_UINT, &o.burst, "N", "API request burst (default 2000)", 1,
          100000, NULL },
        { "event-qps", CLI_UINT, &o.event_qps, "N",
          "Events recorded per second at most, as the kubelet's eventRecordQPS; "
          "more are dropped and counted (default 10; 0 = no limit)", 0, 10000, NULL },
        { "event-burst", CLI_UINT, &o.event_burst, "N",
          "Events recorded at once before --event-qps applies (default 100)", 1,
          100000, NULL },
        { "model-server-image", CLI_STRING, &o.image, "IMAGE",
          "container image of the model server (default " RC_IMAGE_DEFAULT ")", 0, 0,
          NULL },
        { "gpus-per-replica", CLI_UINT, &o.gpus_per_replica, "N",
          "nvidia.com/gpu limit of each model-server pod (default 1)", 1, 64, NULL },
        { "cert-mode", CLI_STRING, &o.cert_mode, "MODE",
          "provided or certManager: --cert-dir is filled by someone else (a "
          "Secret volume); selfSigned: the operator keeps a CA and serving "
          "certificate in --cert-secret, injects the caBundle into "
          "--webhook-config-name and writes the pair into --cert-dir (default "
          "provided)", 0, 0, NULL },
        { "cert-secret", CLI_STRING, &o.cert_secret, "NAME",
          "selfSigned: TLS Secret in the operator's namespace (default "
          "inference-operator-webhook-tls)", 0, 0, NULL },
        { "webhook-service", CLI_STRING, &o.webhook_service, "NAME",
          "selfSigned: the webhook Service whose DNS names the certificate "
          "carries (default inference-operator-webhook)", 0, 0, NULL },
        { "webhook-config-name", CLI_STRING, &o.webhook_config, "NAME",
          "selfSigned: Validating and MutatingWebhookConfiguration to inject the "
          "caBundle into (default inference-operator)", 0, 0, NULL },
        { "operator-namespace", CLI_STRING, &o.operator_ns, "NS",
          "the operator's own namespace (default: the pod's, else the "
          "kubeconfig context's, else default)", 0, 0, NULL },
        { "cert-validity-days", CLI_UINT, &o.cert_validity_days, "DAYS",
          "selfSigned: serving certificate validity (default 365)", 0, 3650, NULL },
        { "cert-renew-before-days", CLI_UINT, &o.cert_renew_before_days, "DAYS",
          "selfSigned: renew this long before expiry (default 30)", 0, 3649, NULL },
        { "cert-check-interval", CLI_UINT, &o.cert_check_interval_s, "SECONDS",
          "selfSigned: how often to check the Secret (default 60)", 0, 86400, NULL },
        { "leader-elect", CLI_BOOL, &o.leader_elect, NULL,
          "only the replica holding the Lease reconciles (default off; the chart "
          "turns it on)", 0, 0, NULL },
        { "leader-elect-warm-standby", CLI_BOOL, &o.warm_standby, NULL,
          "standbys keep their watches and caches warm for a fast failover "
          "(default true); =false: a standby watches nothing until it wins the "
          "Lease and frees its caches when it steps down", 0, 0, NULL },
        { "leader-election-id", CLI_STRING, &o.leader_id, "NAME",
          "name of the Lease (default inference-operator)", 0, 0, NULL },
        { "leader-election-namespace", CLI_STRING, &o.leader_ns, "NS",
          "namespace of the Lease (default: the pod's namespace, else default)", 0,
          0, NULL },
        { "leader-election-lease-duration", CLI_UINT, &o.lease_s, "SECONDS",
          "how long a Lease stays valid without renewal (default 15)", 2, 3600, NULL },
        { "leader-election-renew-deadline", CLI_UINT, &o.renew_s, "SECONDS",
          "the leader steps down when it could not renew for this long (default 10)",
          1, 3600, NULL },
        { "leader-election-retry-period", CLI_UINT, &o.retry_s, "SECONDS",
          "renew and candidate poll period (default 2)", 1, 600, NULL },
        { "gpu-products", CLI_STRING, &o.gpu_products, "MAP",
          "GPU type to node product labels, e.g. "
          "\"H100=NVIDIA-H100-80GB-HBM3|NVIDIA-H100-PCIe;A100=NVIDIA-A100-SXM4-80GB\" "
          "(default: built-in table for A100, H100, L40S)", 0, 0, NULL },
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
    bool self_signed = strcmp(o.cert_mode, "selfSigned") == 0;
    /* certManager: cert-manager fills the mounted Secret and injects the
     * caBundle itself, so for the operator it is the same as provided. */
    if (!self_signed && strcmp(o.cert_mode, "provided") != 0 &&
        strcmp(o.cert_mode, "certManager") != 0) {
        fprintf(stderr, "inference-operator serve: --cert-mode \"%s\": use "
                "selfSigned, certManager or provided\n", o.cert_mode);
        return 2;
    }
    if (o.webhook_only && o.reconciler_only) {
        fprintf(stderr, "inference-operator serve: --webhook-only and "
                "--reconciler-only exclude each other\n");
        return 2;
    }

    if (fit_connections(&o) != 0)
        return 1;
    srv_alloc_tune();
    wh_arena_install();   /* cJSON's hooks: before any thread starts */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* Everything below is undone at `out`, in reverse order of starting;
     * each undo is a no-op for what never started. */
    struct kube_config kube;
    memset(&kube, 0, sizeof(kube));
    struct kube_client *cert_client = NULL;
    struct certs_bootstrap *boot = NULL;
    struct certs_store *store = NULL;
    struct rc_controller *ctl = NULL;
    struct srv *srv = NULL;
    unsigned left = 0;
    int status = 1;
    bool need_kube = !o.webhook_only || self_signed;
    if (need_kube && load_kube_config(&o, &kube) != 0)
        goto out;
    if (self_signed && start_cert_bootstrap(&o, &kube, &cert_client, &boot) != 0)
        goto out;

    if (certs_store_open(o.cert_dir, o.cert_reload_s * 1000u, on_cert_reload,
                         NULL, &store, err, sizeof(err)) != 0) {
        log_error("cannot load the serving certificate", LF_STR("dir", o.cert_dir),
                  LF_STR("reason", err));
        goto out;
    }
    certs_store_install(store);
    if (metrics_register(collect_certs, NULL) != 0)
        log_warn("metrics registry full; certificate metrics not exported");

    if (!o.webhook_only && start_reconciler(&o, &kube, &ctl) != 0)
        goto out;
    o.srv.webhook = !o.reconciler_only;
    o.srv.rules = &o.rules;
    if (srv_start(&o.srv, &srv, err, sizeof(err)) != 0) {
        log_error("cannot start the HTTPS server", LF_STR("reason", err));
        goto out;
    }
    if (ctl)
        srv_add_ready_check(srv, "caches-synced", rc_controller_ready, ctl);
    char addr[96];
    snprintf(addr, sizeof(addr), "%.80s", o.srv.listen);
    log_info("serving", LF_STR("listen", addr), LF_INT("port", srv_port(srv)),
             LF_STR("certDir", o.cert_dir), LF_BOOL("webhook", o.srv.webhook),
             LF_BOOL("reconciler", ctl != NULL), LF_STR("version", IO_VERSION));

    int sig = wait_for_signals(store);
    log_info("shutting down", LF_STR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
             LF_INT("timeoutSeconds", o.shutdown_timeout_s));
    /* Stop taking keys and let in-flight reconciles finish while the
     * webhook still answers; then drain the HTTPS server. */
    rc_controller_stop(ctl);
    ctl = NULL;
    left = srv_shutdown(srv, o.shutdown_timeout_s * 1000u);
    status = 0;
out:
    rc_controller_stop(ctl);
    metrics_unregister(collect_certs, NULL);
    if (store != NULL) {
        certs_store_install(NULL);
        certs_store_close(store);
    }
    certs_bootstrap_stop(boot);
    kube_client_free(cert_client);
    kube_config_free(&kube);
    if (status == 0) {
        if (left)
            log_warn("requests cut off by the shutdown deadline", LF_INT("count", left));
        log_info("stopped");
    }
    return status;
}
