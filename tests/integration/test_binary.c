/*
 * test_binary.c — the shipped binary as users and containers run it:
 * subcommands, --help, environment configuration, and a graceful SIGTERM
 * that lets an in-flight admission request finish.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Upper bound for any child we start; tests never wait longer. */
#define CHILD_TIMEOUT_MS 20000

static const char *bin(void)
{
    const char *b = getenv("IO_BIN");
    cr_assert_not_null(b, "IO_BIN must point at build/inference-operator");
    return b;
}

/* Run bin with args; capture stdout+stderr; return the exit status. */
static int run(char *const argv[], char *out, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        execv(bin(), argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(fds[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    char drain[4096];
    while (read(fds[0], drain, sizeof(drain)) > 0)
        ;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(binary, version_and_help)
{
    static char out[65536];
    char *v[] = { "inference-operator", "--version", NULL };
    cr_expect_eq(run(v, out, sizeof(out)), 0);
    cr_expect(strncmp(out, "inference-operator ", 19) == 0, "%s", out);

    char *h1[] = { "inference-operator", "--help", NULL };
    cr_expect_eq(run(h1, out, sizeof(out)), 0);
    cr_expect(strstr(out, "serve") && strstr(out, "certs") && strstr(out, "crd"));

    const char *cmds[] = { "serve", "certs", "crd" };
    for (int i = 0; i < 3; i++) {
        char *argv[] = { "inference-operator", (char *)cmds[i], "--help", NULL };
        cr_expect_eq(run(argv, out, sizeof(out)), 0, "%s --help", cmds[i]);
        cr_expect(strstr(out, "Usage: inference-operator ") != NULL);
    }
    char *sh[] = { "inference-operator", "serve", "--help", NULL };
    run(sh, out, sizeof(out));
    cr_expect(strstr(out, "--listen ADDR:PORT") != NULL);
    cr_expect(strstr(out, "INFERENCE_OPERATOR_LISTEN") != NULL);
    cr_expect(strstr(out, "--gpu-types LIST") != NULL);

    char *bad[] = { "inference-operator", "frobnicate", NULL };
    cr_expect_eq(run(bad, out, sizeof(out)), 2);
    cr_expect(strstr(out, "unknown command \"frobnicate\"") != NULL);
}

Test(binary, serve_flag_errors_are_clear)
{
    static char out[8192];
    char *a[] = { "inference-operator", "serve", "--max-replicas", "5",
                  "--min-replicas", "6", "--webhook-only", NULL };
    cr_expect_eq(run(a, out, sizeof(out)), 2);
    cr_expect(strstr(out, "spec.replicas: minimum 6 is greater than maximum 5") != NULL,
              "%s", out);
    char *b[] = { "inference-operator", "serve", "--gpu-types", "A100,,B200",
                  "--webhook-only", NULL };
    cr_expect_eq(run(b, out, sizeof(out)), 2);
    cr_expect(strstr(out, "--gpu-types: --gpu-types: empty entry") != NULL ||
              strstr(out, "empty entry") != NULL, "%s", out);
    char *c[] = { "inference-operator", "serve", "--webhook-only", "--cert-dir",
                  "/nonexistent-io-dir", NULL };
    cr_expect_eq(run(c, out, sizeof(out)), 1);
    cr_expect(strstr(out, "cannot load the serving certificate") != NULL, "%s", out);
}

/* The warm-standby switch of leader election: documented in --help with
 * its variable, and a bad value from either source is refused at start
 * naming where it came from (before any connection is attempted). */
Test(binary, leader_elect_warm_standby_flag)
{
    static char out[65536];
    char *h[] = { "inference-operator", "serve", "--help", NULL };
    cr_expect_eq(run(h, out, sizeof(out)), 0);
    cr_expect(strstr(out, "--leader-elect-warm-standby") != NULL, "%s", out);
    cr_expect(strstr(out, "INFERENCE_OPERATOR_LEADER_ELECT_WARM_STANDBY") != NULL);

    char *f[] = { "inference-operator", "serve", "--leader-elect-warm-standby=maybe",
                  NULL };
    cr_expect_eq(run(f, out, sizeof(out)), 2);
    cr_expect(strstr(out, "--leader-elect-warm-standby: \"maybe\" is not a boolean") != NULL,
              "%s", out);

    cr_assert_eq(setenv("INFERENCE_OPERATOR_LEADER_ELECT_WARM_STANDBY", "sometimes", 1), 0);
    char *e[] = { "inference-operator", "serve", NULL };
    cr_expect_eq(run(e, out, sizeof(out)), 2);
    cr_expect(strstr(out, "$INFERENCE_OPERATOR_LEADER_ELECT_WARM_STANDBY: \"sometimes\" "
                          "is not a boolean") != NULL, "%s", out);
    unsetenv("INFERENCE_OPERATOR_LEADER_ELECT_WARM_STANDBY");
}

Test(binary, certs_keeps_a_valid_set)
{
    static char out[4096];
    char dir[] = "/tmp/io-bin-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *a[] = { "inference-operator", "certs", "--out", dir, "--dns",
                  "svc.ns.svc,svc.ns.svc.cluster.local", "--ip", "127.0.0.1", NULL };
    cr_expect_eq(run(a, out, sizeof(out)), 0, "%s", out);
    cr_expect(strstr(out, "wrote") != NULL);
    char key[128];
    snprintf(key, sizeof(key), "%s/tls.key", dir);
    struct stat st;
    cr_assert_eq(stat(key, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    cr_expect_eq(run(a, out, sizeof(out)), 0);
    cr_expect(strstr(out, "kept valid existing") != NULL, "%s", out);
    char *b[] = { "inference-operator", "certs", "--out", dir, "--dns", "other.name",
                  NULL };
    cr_expect_eq(run(b, out, sizeof(out)), 1);
    cr_expect(strstr(out, "--force") != NULL, "%s", out);
    char *c[] = { "inference-operator", "certs", "--out", dir, NULL };
    cr_expect_eq(run(c, out, sizeof(out)), 2);
    const char *names[] = { "ca.crt", "tls.crt", "tls.key" };
    for (int i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* A server child configured only through the environment. */
struct child {
    pid_t pid;
    int log_fd;
    unsigned port;
    char dir[64];
    char log[65536];
    size_t log_len;
};

/* Read the child's log until `needle` appears or the deadline passes. */
static bool wait_log(struct child *ch, const char *needle, int timeout_ms)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (strstr(ch->log, needle))
            return true;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 +
                     (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= timeout_ms)
            return false;
        struct pollfd p = { .fd = ch->log_fd, .events = POLLIN };
        if (poll(&p, 1, (int)(timeout_ms - spent)) <= 0)
            continue;
        ssize_t n = read(ch->log_fd, ch->log + ch->log_len,
                         sizeof(ch->log) - 1 - ch->log_len);
        if (n <= 0)
            return strstr(ch->log, needle) != NULL;
        ch->log_len += (size_t)n;
        ch->log[ch->log_len] = '\0';
    }
}

/* nofile_hard: when nonzero, the child starts with a hard open-file limit
 * of at most this (soft limit 1024 below it), as a container runtime may
 * start it.  Under valgrind the hard limit cannot be changed: the child
 * keeps valgrind's, which is still far below what the test asks for. */
static void start_child_with(struct child *ch, unsigned long nofile_hard)
{
    static char out[4096];
    memset(ch, 0, sizeof(*ch));
    snprintf(ch->dir, sizeof(ch->dir), "/tmp/io-bin-XXXXXX");
    cr_assert_not_null(mkdtemp(ch->dir));
    char *a[] = { "inference-operator", "certs", "--out", ch->dir, "--ip",
                  "127.0.0.1", NULL };
    cr_assert_eq(run(a, out, sizeof(out)), 0, "%s", out);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    ch->pid = fork();
    cr_assert_geq(ch->pid, 0);
    if (ch->pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        setenv("INFERENCE_OPERATOR_LISTEN", "127.0.0.1:0", 1);
        setenv("INFERENCE_OPERATOR_CERT_DIR", ch->dir, 1);
        setenv("INFERENCE_OPERATOR_WEBHOOK_ONLY", "true", 1);
        setenv("INFERENCE_OPERATOR_THREADS", "2", 1);
        struct rlimit rl;
        if (nofile_hard && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            if (rl.rlim_max > nofile_hard)
                rl.rlim_max = nofile_hard;
            rl.rlim_cur = rl.rlim_max > 1024 ? 1024 : rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        execl(bin(), "inference-operator", "serve", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    ch->log_fd = fds[0];
    cr_assert(wait_log(ch, "\"msg\":\"serving\"", CHILD_TIMEOUT_MS), "log: %s", ch->log);
    const char *p = strstr(ch->log, "\"port\":");
    cr_assert_not_null(p);
    ch->port = (unsigned)strtoul(p + 7, NULL, 10);
    cr_assert_gt(ch->port, 0);
}

static void start_child(struct child *ch)
{
    start_child_with(ch, 0);
}

static int stop_child(struct child *ch, int sig)
{
    kill(ch->pid, sig);
    int status = -1;
    for (int i = 0; i < CHILD_TIMEOUT_MS / 10; i++) {
        if (waitpid(ch->pid, &status, WNOHANG) == ch->pid)
            break;
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
        if (i == CHILD_TIMEOUT_MS / 10 - 1) {
            kill(ch->pid, SIGKILL);
            waitpid(ch->pid, &status, 0);
        }
    }
    wait_log(ch, "\"msg\":\"stopped\"", 1000);
    close(ch->log_fd);
    const char *names[] = { "ca.crt", "tls.crt", "tls.key" };
    for (int i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", ch->dir, names[i]);
        unlink(p);
    }
    rmdir(ch->dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct slow_upload {
    unsigned port;
    char ca[128];
    const char *body;
    size_t len, sent;
    int sleeps;
    long status;
    CURLcode rc;
    char reply[4096];
    size_t reply_len;
};

/* Send the body in two halves with a pause between: the request is in
 * flight (headers in, body incomplete) when the signal arrives. */
static size_t slow_read(char *buf, size_t size, size_t n, void *arg)
{
    struct slow_upload *u = arg;
    size_t half = u->len / 2;
    if (u->sent == half && u->sleeps == 0) {
        struct timespec ts = { 1, 0 };
        nanosleep(&ts, NULL);
        u->sleeps++;
    }
    size_t limit = u->sent < half ? half : u->len;
    size_t take = limit - u->sent;
    if (take > size * n)
        take = size * n;
    memcpy(buf, u->body + u->sent, take);
    u->sent += take;
    return take;
}

static size_t keep_reply(char *p, size_t size, size_t n, void *arg)
{
    struct slow_upload *u = arg;
    size_t len = size * n;
    if (u->reply_len + len < sizeof(u->reply)) {
        memcpy(u->reply + u->reply_len, p, len);
        u->reply_len += len;
        u->reply[u->reply_len] = '\0';
    }
    return len;
}

static void *slow_client(void *arg)
{
    struct slow_upload *u = arg;
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/validate", u->port);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char cl[64];
    snprintf(cl, sizeof(cl), "Content-Length: %zu", u->len);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, u->ca);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)u->len);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, slow_read);
    curl_easy_setopt(c, CURLOPT_READDATA, u);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_reply);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    u->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &u->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return NULL;
}

Test(binary, sigterm_finishes_in_flight_requests_then_exits_0, .timeout = 60)
{
    struct child ch;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    start_child(&ch);

    struct slow_upload u = { .port = ch.port };
    snprintf(u.ca, sizeof(u.ca), "%s/ca.crt", ch.dir);
    char *body = review_for("CREATE", "{\"metadata\":{\"name\":\"a\"},\"spec\":"
                            "{\"model\":\"m\",\"gpuType\":\"A100\"}}");
    u.body = body;
    u.len = strlen(body);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, slow_client, &u), 0);
    /* Wait until the first half is on the wire, then ask for shutdown. */
    for (int i = 0; i < 500 && u.sent < u.len / 2; i++) {
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
    struct timespec ts = { 0, 200 * 1000000 };
    nanosleep(&ts, NULL);
    kill(ch.pid, SIGTERM);
    pthread_join(t, NULL);
    cr_expect_eq(u.rc, CURLE_OK, "%s", curl_easy_strerror(u.rc));
    cr_expect_eq(u.status, 200);
    cr_expect(strstr(u.reply, "\"allowed\":true") != NULL, "%s", u.reply);

    int code = stop_child(&ch, SIGTERM);
    cr_expect_eq(code, 0, "log: %s", ch.log);
    cr_expect(strstr(ch.log, "\"msg\":\"shutting down\"") != NULL);
    cr_expect(strstr(ch.log, "\"msg\":\"stopped\"") != NULL, "%s", ch.log);
    free(body);
    curl_global_cleanup();
}

Test(binary, request_bodies_stay_out_of_logs_at_info)
{
    struct child ch;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    start_child(&ch);
    char url[128], ca[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/validate", ch.port);
    snprintf(ca, sizeof(ca), "%s/ca.crt", ch.dir);
    const char *secret = "sk-SECRET-TOKEN-do-not-log";
    char obj[256];
    snprintf(obj, sizeof(obj), "{\"spec\":{\"model\":\"%s\",\"gpuType\":\"T4\"}}",
             secret);
    char *body = review_for("CREATE", obj);
    CURL *c = curl_easy_init();
    FILE *sink = fopen("/dev/null", "w");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    cr_expect_eq(curl_easy_perform(c), CURLE_OK);
    /* And a malformed one, which is logged (without its body). */
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, secret);
    cr_expect_eq(curl_easy_perform(c), CURLE_OK);
    curl_slist_free_all(hdrs);
    fclose(sink);
    curl_easy_cleanup(c);
    wait_log(&ch, "rejected request", 2000);
    cr_expect_eq(stop_child(&ch, SIGINT), 0);
    cr_expect_null(strstr(ch.log, secret), "log leaked the body: %s", ch.log);
    free(body);
    curl_global_cleanup();
}

/* A soft open-file limit under --max-connections is raised to the hard
 * one; a hard limit that cannot hold --max-connections lowers it, with a
 * warning that says what to raise, instead of accept() failing with EMFILE
 * at the limit.  The server then serves as usual. */
Test(binary, max_connections_fit_the_open_file_limit)
{
    struct child ch;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cr_assert_eq(setenv("INFERENCE_OPERATOR_MAX_CONNECTIONS", "65536", 1), 0);
    start_child_with(&ch, 4096);
    unsetenv("INFERENCE_OPERATOR_MAX_CONNECTIONS");
    cr_expect_not_null(strstr(ch.log, "--max-connections lowered to fit the "
                                      "open-file limit"), "log: %s", ch.log);
    cr_expect_not_null(strstr(ch.log, "\"requested\":65536"), "log: %s", ch.log);
    cr_expect_not_null(strstr(ch.log, "LimitNOFILE"), "the fix is named: %s", ch.log);

    char url[128], ca[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/healthz", ch.port);
    snprintf(ca, sizeof(ca), "%s/ca.crt", ch.dir);
    CURL *c = curl_easy_init();
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    cr_expect_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    cr_expect_eq(status, 200);
    fclose(sink);
    curl_easy_cleanup(c);
    cr_expect_eq(stop_child(&ch, SIGTERM), 0);
    curl_global_cleanup();
}
