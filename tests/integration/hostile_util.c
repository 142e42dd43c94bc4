/*
 * hostile_util.c — see hostile_util.h.
 */
#define _GNU_SOURCE   /* POLLRDHUP */
#include "hostile_util.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* A TLS handshake on loopback takes milliseconds; this bounds a stuck one
 * (and one under valgrind, which is far slower). */
#define HTLS_HANDSHAKE_TIMEOUT_MS 30000
#define LOG_MAX (4u * 1024 * 1024)
#define LEGIT_CONNECT_TIMEOUT_S 90

#define VALID_OBJECT                                                           \
    "{\"apiVersion\":\"ai.example.com/v1\",\"kind\":\"InferenceService\","      \
    "\"metadata\":{\"name\":\"llama\"},\"spec\":{\"model\":\"org/llama\","       \
    "\"gpuType\":\"h100\"}}"

bool hostile_under_valgrind(void)
{
    return getenv("IO_UNDER_VALGRIND") != NULL;
}

double hostile_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void hostile_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *bin(void)
{
    const char *b = getenv("IO_BIN");
    cr_assert_not_null(b, "IO_BIN must point at build/inference-operator");
    return b;
}

/* Fork + exec argv with stdout/stderr to log_path; the pid. */
static pid_t spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* A failed assertion ends the test process without hchild_stop:
         * the server must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin(), argv);
        _exit(127);
    }
    return pid;
}

char *hchild_log(const struct hchild *ch)
{
    char *buf = calloc(1, LOG_MAX + 1);
    cr_assert_not_null(buf);
    int fd = open(ch->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    size_t len = 0;
    ssize_t n;
    while (len < LOG_MAX && (n = read(fd, buf + len, LOG_MAX - len)) > 0)
        len += (size_t)n;
    close(fd);
    return buf;
}

void hchild_start(struct hchild *ch, const char *const extra[])
{
    hchild_start_mode(ch, "--webhook-only", extra);
}

void hchild_start_mode(struct hchild *ch, const char *mode,
                       const char *const extra[])
{
    memset(ch, 0, sizeof(*ch));
    snprintf(ch->dir, sizeof(ch->dir), "/tmp/io-hostile-XXXXXX");
    cr_assert_not_null(mkdtemp(ch->dir));
    snprintf(ch->ca, sizeof(ch->ca), "%s/ca.crt", ch->dir);
    snprintf(ch->log, sizeof(ch->log), "%s/log", ch->dir);

    char *certs[] = { "inference-operator", "certs", "--out", ch->dir, "--ip",
                      "127.0.0.1", NULL };
    int status;
    pid_t pid = spawn(certs, ch->log);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "certs failed");

    /* A port picked here, so that starting does not depend on the log
     * level letting the "serving" line through. */
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    cr_assert_eq(bind(probe, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(probe, (struct sockaddr *)&a, &alen), 0);
    unsigned port = ntohs(a.sin_port);
    close(probe);
    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);

    enum { ARGS_MAX = 32 };
    char *argv[ARGS_MAX];
    size_t n = 0;
    const char *base[] = { "inference-operator", "serve", mode,
                           "--listen", listen, "--cert-dir", ch->dir,
                           "--threads", "2" };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        argv[n++] = (char *)base[i];
    for (size_t i = 0; extra && extra[i]; i++) {
        cr_assert_lt(n, (size_t)ARGS_MAX - 1);
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    ch->pid = spawn(argv, ch->log);

    double until = hostile_now_s() + HOSTILE_CHILD_TIMEOUT_MS / 1000.0;
    while (hostile_now_s() < until && hchild_alive(ch)) {
        int fd = hostile_tcp(port);
        if (fd >= 0) {
            close(fd);
            ch->port = port;
            break;
        }
        hostile_sleep_ms(20);
    }
    cr_assert_gt(ch->port, 0, "the server did not start (log %s)", ch->log);
}

bool hchild_alive(const struct hchild *ch)
{
    int status;
    return ch->pid > 0 && waitpid(ch->pid, &status, WNOHANG) == 0;
}

long hchild_rss_kib(const struct hchild *ch)
{
    return ch->pid > 0 ? proc_rss_kib(ch->pid) : -1;
}

int hchild_stop(struct hchild *ch)
{
    int status = -1;
    if (ch->pid > 0) {
        kill(ch->pid, SIGTERM);
        double until = hostile_now_s() + HOSTILE_CHILD_TIMEOUT_MS / 1000.0;
        pid_t got = 0;
        while ((got = waitpid(ch->pid, &status, WNOHANG)) == 0 &&
               hostile_now_s() < until)
            hostile_sleep_ms(10);
        if (got != ch->pid) {
            kill(ch->pid, SIGKILL);
            waitpid(ch->pid, &status, 0);
            status = -1;
        }
        ch->pid = 0;
    }
    const char *names[] = { "ca.crt", "tls.crt", "tls.key", "log" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s/%s", ch->dir, names[i]);
        unlink(p);
    }
    rmdir(ch->dir);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int hostile_tcp(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

bool hostile_closed_within(int fd, int ms)
{
    double until = hostile_now_s() + ms / 1000.0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
        double left = until - hostile_now_s();
        int r = poll(&p, 1, left > 0 ? (int)(left * 1000) : 0);
        if (r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return true;
        if (r > 0) {
            /* Data (an alert, an error page): drain it and look again. */
            char buf[4096];
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return true;
        }
        if (hostile_now_s() >= until)
            return false;
    }
}

int htls_connect(struct htls *t, unsigned port, const char *ca,
                 const char *priorities)
{
    static gnutls_certificate_credentials_t creds;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static char creds_ca[96];
    /* One trust store per CA file, shared by every session (read-only). */
    pthread_mutex_lock(&lock);
    if (creds == NULL || strcmp(creds_ca, ca) != 0) {
        if (creds)
            gnutls_certificate_free_credentials(creds);
        cr_assert_eq(gnutls_certificate_allocate_credentials(&creds), 0);
        cr_assert_gt(gnutls_certificate_set_x509_trust_file(creds, ca,
                                                            GNUTLS_X509_FMT_PEM), 0);
        snprintf(creds_ca, sizeof(creds_ca), "%s", ca);
    }
    gnutls_certificate_credentials_t c = creds;
    pthread_mutex_unlock(&lock);

    t->fd = hostile_tcp(port);
    t->s = NULL;
    if (t->fd < 0)
        return GNUTLS_E_PUSH_ERROR;
    int rc = gnutls_init(&t->s, GNUTLS_CLIENT);
    if (rc == 0)
        rc = gnutls_priority_set_direct(t->s, priorities, NULL);
    if (rc == 0)
        rc = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c);
    if (rc == 0) {
        gnutls_session_set_verify_cert(t->s, NULL, 0);
        gnutls_transport_set_int(t->s, t->fd);
        gnutls_handshake_set_timeout(t->s, HTLS_HANDSHAKE_TIMEOUT_MS);
        do
            rc = gnutls_handshake(t->s);
        while (rc < 0 && !gnutls_error_is_fatal(rc));
    }
    if (rc != 0)
        htls_close(t);
    return rc;
}

void htls_close(struct htls *t)
{
    if (t->s)
        gnutls_deinit(t->s);
    if (t->fd >= 0)
        close(t->fd);
    t->s = NULL;
    t->fd = -1;
}

static void *legit_main(void *arg)
{
    struct legit *l = arg;
    struct harness none;
    memset(&none, 0, sizeof(none));
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/validate", l->port);
    char *body = review_for("CREATE", VALID_OBJECT);
    while (!atomic_load(&l->stop)) {
        /* A fresh connection each time: under attack it is the new
         * connection (a slot, a handshake) that must still get through. */
        CURL *c = harness_curl(&none, l->ca);
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
        /* Past --max-connections a new connection waits in the listen
         * backlog until the deadline frees a slot: a while, not forever. */
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)LEGIT_CONNECT_TIMEOUT_S);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)LEGIT_CONNECT_TIMEOUT_S + 30);
        struct reply r;
        CURLcode rc = harness_do(c, url, "application/json", body, strlen(body), &r);
        bool good = rc == CURLE_OK && r.status == 200 &&
                    strstr(r.body, "\"allowed\":true") != NULL;
        if (good) {
            atomic_fetch_add(&l->ok, 1);
        } else if (atomic_fetch_add(&l->bad, 1) == 0) {
            snprintf(l->first_error, sizeof(l->first_error), "curl: %s, HTTP %ld",
                     curl_easy_strerror(rc), r.status);
        }
        reply_free(&r);
        curl_easy_cleanup(c);
    }
    free(body);
    return NULL;
}

void legit_start(struct legit *l, const struct hchild *ch)
{
    memset(l, 0, sizeof(*l));
    l->port = ch->port;
    snprintf(l->ca, sizeof(l->ca), "%s", ch->ca);
    cr_assert_eq(pthread_create(&l->thread, NULL, legit_main, l), 0);
}

void legit_stop(struct legit *l)
{
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
}
