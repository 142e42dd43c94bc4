/*
 * test_secrets.c — what must never reach the operator's logs, checked
 * with a known canary string in every place a secret can come from:
 *
 *   - a bearer token (kubeconfig `token`, `tokenFile`) sent to an API
 *     server that answers 401 to everything (the re-read and retry paths
 *     included), at the most verbose log level;
 *   - a kubeconfig refused at start for a malformed token;
 *   - admission request bodies (valid, denied, malformed, past the cap):
 *     above debug never; at debug only in the debug-level lines (the
 *     issue's rule: "request bodies are never logged above debug").
 *
 * The binary runs as a child; its whole log is searched.
 */
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "certs.h"
#include "harness.h"
#include "hostile_util.h"

#define CANARY "io-canary-5f0c9d1e7a3b42d8"
/* The token must have been sent this many times before the logs are
 * judged: enough for the first request, the 401 re-read retry and the
 * watch backoff paths to have run. */
#define TOKEN_USES_MIN 4
#define WAIT_S 60
/* Re-reading the child's log (up to 4 MB) this often while waiting. */
#define REFUSAL_POLL_MS 200

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
    curl_global_cleanup();
}

TestSuite(secrets, .init = setup, .fini = teardown, .timeout = 180);

/* Every line of log that holds the canary must be at debug level (or no
 * line at all when debug_allowed is false). */
static void expect_canary_confined(const char *log, bool debug_allowed)
{
    size_t hits = 0;
    for (const char *line = log; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        cr_assert_not_null(copy);
        if (strstr(copy, CANARY)) {
            hits++;
            cr_expect(debug_allowed && strstr(copy, "\"level\":\"debug\""),
                      "secret in the log: %s", copy);
        }
        free(copy);
        line = end ? end + 1 : line + len;
    }
    cr_log_info("canary in %zu log lines (debug allowed: %d)", hits, debug_allowed);
}

/* ---- a fake API server that refuses every token ------------------------- */

struct fake_api {
    struct MHD_Daemon *d;
    unsigned port;
    atomic_int requests, canary_tokens;
};

static enum MHD_Result refuse(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version,
                              const char *upload, size_t *upload_size, void **ptr)
{
    struct fake_api *f = cls;
    (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
    if (*ptr == NULL) {
        *ptr = f;
        return MHD_YES;
    }
    atomic_fetch_add(&f->requests, 1);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (auth && strcmp(auth, "Bearer " CANARY) == 0)
        atomic_fetch_add(&f->canary_tokens, 1);
    static const char body[] =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
        "\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\","
        "\"code\":401}";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 401, r);
    MHD_destroy_response(r);
    return ret;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void fake_start(struct fake_api *f, const struct harness *h)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/tls.crt", h->dir);
    char *crt = slurp(p);
    snprintf(p, sizeof(p), "%s/tls.key", h->dir);
    char *key = slurp(p);
    memset(f, 0, sizeof(*f));
    f->d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                            NULL, refuse, f, MHD_OPTION_HTTPS_MEM_KEY, key,
                            MHD_OPTION_HTTPS_MEM_CERT, crt, MHD_OPTION_END);
    cr_assert_not_null(f->d);
    free(crt);
    free(key);
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert_not_null(i);
    f->port = i->port;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* A kubeconfig for the fake API whose user part is `user`. */
static void kubeconfig(char *out, size_t cap, const struct harness *h,
                       unsigned port, const char *user)
{
    snprintf(out, cap, "%s/kubeconfig", h->dir);
    char text[2048];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
             "clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:%u\n"
             "    certificate-authority: %s\n"
             "contexts:\n- name: c\n  context: {cluster: k, user: u, namespace: default}\n"
             "users:\n- name: u\n  user:\n%s",
             port, h->ca_path, user);
    write_file(out, text, 0600);
}

static bool refusal_logged(const char *log)
{
    return strstr(log, "401") || strstr(log, "Unauthorized");
}

/* Run the reconciler against the fake until the token was used enough,
 * then stop it and judge its log. */
static void run_refused(const char *user_yaml, bool token_file)
{
    struct harness h;
    harness_start(&h);
    if (token_file) {
        char tok[400];
        snprintf(tok, sizeof(tok), "%s/token", h.dir);
        write_file(tok, CANARY "\n", 0600);
    }
    struct fake_api f;
    fake_start(&f, &h);
    char kc[400];
    kubeconfig(kc, sizeof(kc), &h, f.port, user_yaml);

    struct hchild ch;
    const char *flags[] = { "--kubeconfig", kc, "--log-level", "debug", NULL };
    hchild_start_mode(&ch, "--reconciler-only", flags);
    double until = hostile_now_s() + WAIT_S;
    while (atomic_load(&f.canary_tokens) < TOKEN_USES_MIN && hostile_now_s() < until &&
           hchild_alive(&ch))
        hostile_sleep_ms(50);
    cr_expect_geq(atomic_load(&f.canary_tokens), TOKEN_USES_MIN,
                  "the token was sent %d times (requests %d)",
                  atomic_load(&f.canary_tokens), atomic_load(&f.requests));
    /* The fake counts a token when the request arrives; the operator logs
     * the refusal after the answer, which under valgrind is seconds later. */
    char *log = hchild_log(&ch);
    until = hostile_now_s() + WAIT_S;
    while (!refusal_logged(log) && hostile_now_s() < until && hchild_alive(&ch)) {
        free(log);
        hostile_sleep_ms(REFUSAL_POLL_MS);
        log = hchild_log(&ch);
    }
    hchild_stop(&ch);
    cr_expect(refusal_logged(log), "the refusals were not logged at all:\n%s", log);
    expect_canary_confined(log, false);
    free(log);
    MHD_stop_daemon(f.d);
    char p[400];
    snprintf(p, sizeof(p), "%s/kubeconfig", h.dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/token", h.dir);
    unlink(p);
    harness_stop(&h);
}

Test(secrets, token_refused_by_the_api_server_is_never_logged)
{
    run_refused("    token: " CANARY "\n", false);
}

Test(secrets, token_file_refused_by_the_api_server_is_never_logged)
{
    /* Relative to the kubeconfig's directory, where run_refused puts it. */
    run_refused("    tokenFile: token\n", true);
}

/* Refused at start: the message names the problem, never the token. */
Test(secrets, malformed_token_in_kubeconfig_is_not_echoed)
{
    struct harness h;
    harness_start(&h);
    static const char *const users[] = {
        "    token: \"" CANARY " and more\"\n",
        "    token: \"" CANARY "\\u0001\"\n",
        "    token: [" CANARY "]\n",
    };
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        char kc[400];
        kubeconfig(kc, sizeof(kc), &h, 1, users[i]);
        char log[400];
        snprintf(log, sizeof(log), "%s/out", h.dir);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            FILE *o = freopen(log, "w", stderr);
            if (o == NULL || dup2(fileno(stderr), 1) < 0)
                _exit(126);
            execl(getenv("IO_BIN"), "inference-operator", "serve", "--reconciler-only",
                  "--kubeconfig", kc, "--log-level", "debug", "--listen",
                  "127.0.0.1:0", "--cert-dir", h.dir, (char *)NULL);
            _exit(127);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                  WEXITSTATUS(status) < 126, "kubeconfig %zu was not refused", i);
        char *out = slurp(log);
        cr_expect(strlen(out) > 0, "refused without a word");
        expect_canary_confined(out, false);
        free(out);
        unlink(log);
        unlink(kc);
    }
    harness_stop(&h);
}

/* ---- admission bodies ---------------------------------------------------- */

static void admit(const struct hchild *ch, const char *body, size_t len)
{
    struct harness none;
    memset(&none, 0, sizeof(none));
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/validate", ch->port);
    CURL *c = harness_curl(&none, ch->ca);
    struct reply r;
    CURLcode rc = harness_do(c, url, "application/json", body, len, &r);
    cr_expect(rc == CURLE_OK || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR,
              "%s", curl_easy_strerror(rc));
    reply_free(&r);
    curl_easy_cleanup(c);
}

static void send_bodies(const struct hchild *ch)
{
    char *ok = review_for("CREATE", "{\"metadata\":{\"name\":\"a\",\"annotations\":"
                                    "{\"k\":\"" CANARY "\"}},\"spec\":{\"model\":"
                                    "\"org/m\",\"gpuType\":\"H100\"}}");
    char *denied = review_for("CREATE", "{\"metadata\":{\"name\":\"a\"},\"spec\":"
                                        "{\"model\":\"" CANARY "\",\"gpuType\":\""
                                        CANARY "\",\"replicas\":-1}}");
    static const char *const broken[] = {
        "{\"request\":{\"uid\":\"" CANARY "\"", "[\"" CANARY "\"]",
        "{\"apiVersion\":\"" CANARY "\",\"kind\":\"" CANARY "\",\"request\":{}}",
        CANARY,
    };
    admit(ch, ok, strlen(ok));
    admit(ch, denied, strlen(denied));
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        admit(ch, broken[i], strlen(broken[i]));
    /* Past the cap: refused from its Content-Length. */
    size_t big = SRV_BODY_MAX + 1;
    char *huge = malloc(big);
    cr_assert_not_null(huge);
    for (size_t i = 0; i < big; i++)
        huge[i] = CANARY[i % (sizeof(CANARY) - 1)];
    admit(ch, huge, big);
    free(huge);
    free(ok);
    free(denied);
}

Test(secrets, admission_bodies_never_logged_above_debug)
{
    static const char *const levels[] = { "info", "warn", "error", "debug" };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        struct hchild ch;
        const char *flags[] = { "--log-level", levels[i], NULL };
        hchild_start(&ch, flags);
        send_bodies(&ch);
        char *log = hchild_log(&ch);
        cr_expect_eq(hchild_stop(&ch), 0);
        bool debug = strcmp(levels[i], "debug") == 0;
        if (debug)
            cr_expect(strstr(log, CANARY) != NULL, "debug logs request bodies: "
                      "without them this test would prove nothing");
        expect_canary_confined(log, debug);
        free(log);
    }
}
