/*
 * load.c — closed-loop HTTPS load generator for the admission webhook.
 *
 *   load --port N --path /validate --ca CA.crt --body FILE
 *        [--conns C] [--requests N] [--warmup W] [--threads T]
 *        [--name localhost] [--timeout SECONDS] [--pid SERVER_PID]
 *
 * Opens C keep-alive TLS connections to 127.0.0.1 (handshakes up front,
 * blocking with timeouts, not timed; the server certificate is verified
 * against CA for NAME), then T threads drive their share of connections
 * over non-blocking sockets with epoll: send one request, read the whole
 * response (Content-Length), record its latency, send the next.  W warm-up
 * requests run first and are not counted; then exactly N are timed.
 * A response counts as ok only if it is HTTP 200 and its body holds
 * "allowed":true.  Prints one JSON line of results on stdout; failures
 * (the first few in full) go to stderr.  Exits 0 whenever it measured.
 *
 * With --pid it also reports the server's CPU time (user+system, from
 * /proc) per timed request: on a shared 2-core machine that is steadier
 * than throughput, and it is what the handler really costs.  Its own CPU
 * per request shows how much of the machine the generator took.
 *
 * Few threads on purpose: the generator shares the 2 cores with the
 * server, and every cycle it burns is taken from the thing measured.
 */
#define _GNU_SOURCE            /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX 65536          /* our answers are < 1 KiB */
#define MAX_CONNS 1024
#define MAX_THREADS 8
#define STALL_NS (10ull * 1000000000ull)   /* no progress this long: give up */
#define FAIL_SHOWN 5

struct opts {
    unsigned port, conns, threads;
    long requests, warmup;
    const char *path, *ca, *body, *name;
    unsigned timeout_s;
    int pid;
};

struct conn {
    int fd;
    gnutls_session_t s;
    bool busy, dead, want_write;
    long idx;                   /* request number within the phase */
    uint64_t t0;
    size_t len;
    char *buf;
};

/* One run of a fixed number of requests shared by all threads. */
struct phase {
    long total;
    _Atomic long next;          /* next request number to hand out */
    _Atomic long ok, failed;
    uint64_t *lat;              /* ns per request number; UINT64_MAX = failed */
    uint64_t deadline;
};

struct worker {
    pthread_t tid;
    struct phase *ph;
    struct conn *conns[MAX_CONNS];
    unsigned n;
};

static char *request;           /* the whole HTTP request, built once */
static size_t request_len;
static _Atomic int fails_shown;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* utime+stime of PID in ns, 0 when unreadable.  Fields 14 and 15 of
 * /proc/PID/stat, counted after the ")" that ends the command name. */
static uint64_t proc_cpu_ns(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u "
                            "%*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

static uint64_t self_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One line per failure, the response flattened: run.sh prefixes each line. */
static void show_failure(long idx, const char *what, const char *detail)
{
    if (atomic_fetch_add(&fails_shown, 1) >= FAIL_SHOWN)
        return;
    char flat[301] = "";
    for (size_t i = 0; detail && detail[i] && i < sizeof(flat) - 1; i++) {
        flat[i] = detail[i] == '\r' || detail[i] == '\n' ? ' ' : detail[i];
        flat[i + 1] = '\0';
    }
    fprintf(stderr, "load: request %ld failed: %s%s%s\n", idx, what,
            detail ? ": " : "", flat);
}

static void fail(struct phase *ph, struct conn *c, const char *what,
                 const char *detail)
{
    ph->lat[c->idx] = UINT64_MAX;
    atomic_fetch_add(&ph->failed, 1);
    show_failure(c->idx, what, detail);
    c->busy = false;
}

/* An I/O error leaves the TLS stream unusable: drop the connection. */
static void kill_conn(struct phase *ph, struct conn *c, const char *what,
                      const char *detail)
{
    if (c->busy)
        fail(ph, c, what, detail);
    c->dead = true;
    close(c->fd);   /* also removes it from the epoll set */
}

static void want_events(int ep, struct conn *c, bool write)
{
    struct epoll_event ev = { .events = EPOLLIN | (write ? EPOLLOUT : 0),
                              .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_write = write;
}

/* Hands the request to GnuTLS; on EAGAIN, waits for EPOLLOUT and is called
 * again, which GnuTLS allows with the same arguments. */
static void send_request(struct phase *ph, int ep, struct conn *c)
{
    ssize_t r = gnutls_record_send(c->s, request, request_len);
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
        if (!c->want_write)
            want_events(ep, c, true);
        return;
    }
    if (c->want_write)
        want_events(ep, c, false);
    if (r < 0)
        kill_conn(ph, c, "send", gnutls_strerror((int)r));
    else if ((size_t)r != request_len)   /* < one TLS record: cannot happen */
        kill_conn(ph, c, "send", "short TLS write");
}

/* Takes the next request number, if any are left, and sends it. */
static bool start_request(struct phase *ph, int ep, struct conn *c)
{
    long idx = atomic_fetch_add(&ph->next, 1);
    if (idx >= ph->total)
        return false;
    c->idx = idx;
    c->busy = true;
    c->len = 0;
    c->t0 = now_ns();
    send_request(ph, ep, c);
    return true;
}

/* Returns the total response length once complete, 0 while partial,
 * -1 when it cannot be parsed (reason in *why). */
static long response_length(const char *b, size_t len, const char **why)
{
    const char *end = memmem(b, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len >= RESP_MAX ? (*why = "headers too long", -1) : 0;
    size_t hdr = (size_t)(end - b) + 4;
    for (const char *p = b; p < end; ) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0) {
            long cl = strtol(p + 15, NULL, 10);
            if (cl < 0 || hdr + (size_t)cl > RESP_MAX)
                return *why = "bad Content-Length", -1;
            return len >= hdr + (size_t)cl ? (long)(hdr + (size_t)cl) : 0;
        }
        p = eol + 2;
    }
    return *why = "no Content-Length", -1;
}

static void finish(struct phase *ph, struct conn *c, size_t total)
{
    uint64_t t = now_ns() - c->t0;
    c->buf[total < RESP_MAX ? total : RESP_MAX - 1] = '\0';
    if (strncmp(c->buf, "HTTP/1.1 200 ", 13) != 0) {
        fail(ph, c, "status", c->buf);
        return;
    }
    if (strstr(c->buf, "\"allowed\":true") == NULL) {
        fail(ph, c, "not allowed", c->buf);
        return;
    }
    ph->lat[c->idx] = t;
    atomic_fetch_add(&ph->ok, 1);
    c->busy = false;
}

/* Reads until the response is whole or the socket runs dry.  GnuTLS may
 * hold decrypted bytes the kernel no longer shows, so read to EAGAIN
 * rather than trusting one epoll wake-up per record. */
static void on_readable(struct phase *ph, int ep, struct conn *c)
{
    for (int guard = 0; guard < 64; guard++) {
        if (c->len >= RESP_MAX) {
            kill_conn(ph, c, "response", "too long");
            return;
        }
        ssize_t r = gnutls_record_recv(c->s, c->buf + c->len,
                                       RESP_MAX - 1 - c->len);
        if (r == GNUTLS_E_AGAIN)
            return;
        if (r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r == 0) {
            kill_conn(ph, c, "recv", "server closed the connection");
            return;
        }
        if (r < 0) {
            if (!gnutls_error_is_fatal((int)r))
                continue;
            kill_conn(ph, c, "recv", gnutls_strerror((int)r));
            return;
        }
        if (!c->busy) {
            kill_conn(ph, c, "recv", "bytes while no request was pending");
            return;
        }
        c->len += (size_t)r;
        const char *why = NULL;
        long total = response_length(c->buf, c->len, &why);
        if (total < 0) {
            c->buf[c->len] = '\0';
            kill_conn(ph, c, why, c->buf);
            return;
        }
        if (total > 0) {
            finish(ph, c, (size_t)total);
            start_request(ph, ep, c);
            return;
        }
    }
}

static void *drive(void *arg)
{
    struct worker *w = arg;
    struct phase *ph = w->ph;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return NULL;
    }
    for (unsigned i = 0; i < w->n; i++) {
        struct conn *c = w->conns[i];
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        c->want_write = false;
        if (!c->dead)
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    for (unsigned i = 0; i < w->n; i++)
        if (!w->conns[i]->dead)
            start_request(ph, ep, w->conns[i]);

    uint64_t progress = now_ns();
    struct epoll_event evs[64];
    for (;;) {
        unsigned busy = 0;
        for (unsigned i = 0; i < w->n; i++)
            busy += w->conns[i]->busy && !w->conns[i]->dead;
        if (busy == 0)
            break;                      /* budget spent, or all conns dead */
        uint64_t t = now_ns();
        if (t > ph->deadline || t - progress > STALL_NS) {
            for (unsigned i = 0; i < w->n; i++)
                if (w->conns[i]->busy && !w->conns[i]->dead)
                    kill_conn(ph, w->conns[i], "timeout", NULL);
            break;
        }
        int n = epoll_wait(ep, evs, 64, 1000);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            progress = t;
            if (c->want_write && (evs[i].events & EPOLLOUT))
                send_request(ph, ep, c);
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(ph, ep, c);
        }
    }
    for (unsigned i = 0; i < w->n; i++)
        if (!w->conns[i]->dead)
            epoll_ctl(ep, EPOLL_CTL_DEL, w->conns[i]->fd, NULL);
    close(ep);
    return NULL;
}

static int run_phase(struct worker *ws, unsigned nt, struct phase *ph,
                     unsigned timeout_s)
{
    ph->deadline = now_ns() + (uint64_t)timeout_s * 1000000000ull;
    for (unsigned t = 0; t < nt; t++) {
        ws[t].ph = ph;
        if (pthread_create(&ws[t].tid, NULL, drive, &ws[t]) != 0)
            return -1;
    }
    for (unsigned t = 0; t < nt; t++)
        pthread_join(ws[t].tid, NULL);
    /* Requests never handed out (all connections died) count as failed. */
    long handed = atomic_load(&ph->next);
    if (handed < ph->total)
        atomic_fetch_add(&ph->failed, ph->total - handed);
    return 0;
}

/* Connects and handshakes in blocking mode with timeouts, then switches
 * the socket to non-blocking for the timed phase. */
static int open_conn(struct conn *c, const struct opts *o,
                     gnutls_certificate_credentials_t cred)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)o->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { .tv_sec = 5 };
    int one = 1, r;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return perror("socket"), -1;
    /* Like Go's client (the kube-apiserver): no Nagle delay. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return perror("connect"), close(c->fd), -1;
    if ((r = gnutls_init(&c->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK)) < 0 ||
        (r = gnutls_set_default_priority(c->s)) < 0 ||
        (r = gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, cred)) < 0 ||
        (r = gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, o->name,
                                    strlen(o->name))) < 0)
        goto tls_err;
    /* Handshake fails unless the chain verifies to CA for NAME. */
    gnutls_session_set_verify_cert(c->s, o->name, 0);
    gnutls_transport_set_int(c->s, c->fd);
    gnutls_handshake_set_timeout(c->s, 5000);
    do
        r = gnutls_handshake(c->s);
    while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0)
        goto tls_err;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->buf = malloc(RESP_MAX);
    return c->buf ? 0 : -1;
tls_err:
    fprintf(stderr, "load: TLS to 127.0.0.1:%u: %s\n", o->port,
            gnutls_strerror(r));
    if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        gnutls_datum_t out;
        unsigned st = gnutls_session_get_verify_cert_status(c->s);
        if (gnutls_certificate_verification_status_print(
                st, GNUTLS_CRT_X509, &out, 0) == 0) {
            fprintf(stderr, "load: %s\n", out.data);
            gnutls_free(out.data);
        }
    }
    close(c->fd);
    return -1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return perror(path), NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    return buf;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double pct_us(const uint64_t *v, long n, double q)
{
    if (n == 0)
        return 0;
    long k = (long)(q * (double)n + 0.999999) - 1;
    return (double)v[k < 0 ? 0 : k >= n ? n - 1 : k] / 1000.0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        { "port", 1, 0, 'p' }, { "path", 1, 0, 'u' }, { "ca", 1, 0, 'a' },
        { "body", 1, 0, 'b' }, { "conns", 1, 0, 'c' },
        { "requests", 1, 0, 'n' }, { "warmup", 1, 0, 'w' },
        { "threads", 1, 0, 't' }, { "name", 1, 0, 'N' },
        { "timeout", 1, 0, 'T' }, { "pid", 1, 0, 'P' }, { 0, 0, 0, 0 },
    };
    *o = (struct opts){ .conns = 1, .threads = 1, .requests = 10000,
                        .warmup = 1000, .name = "localhost", .timeout_s = 60,
                        .path = "/validate" };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': o->port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'u': o->path = optarg; break;
        case 'a': o->ca = optarg; break;
        case 'b': o->body = optarg; break;
        case 'c': o->conns = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'n': o->requests = strtol(optarg, NULL, 10); break;
        case 'w': o->warmup = strtol(optarg, NULL, 10); break;
        case 't': o->threads = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'N': o->name = optarg; break;
        case 'T': o->timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'P': o->pid = (int)strtol(optarg, NULL, 10); break;
        default: return -1;
        }
    }
    if (o->port == 0 || o->port > 65535 || !o->ca || !o->body ||
        o->conns == 0 || o->conns > MAX_CONNS || o->requests <= 0 ||
        o->warmup < 0 || o->threads == 0 || o->threads > MAX_THREADS ||
        o->timeout_s == 0)
        return -1;
    if (o->threads > o->conns)
        o->threads = o->conns;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: load --port N --ca CA.crt --body FILE "
                "[--path /validate] [--conns C<=%d] [--requests N] "
                "[--warmup W] [--threads T<=%d] [--name localhost] "
                "[--timeout S] [--pid SERVER_PID]\n", MAX_CONNS, MAX_THREADS);
        return 2;
    }
    size_t blen;
    char *body = read_file(o.body, &blen);
    if (body == NULL)
        return 1;
    request = malloc(blen + 512);
    if (request == NULL)
        return 1;
    request_len = (size_t)snprintf(request, 512,
        "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: webhook-bench\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
        "Content-Length: %zu\r\n\r\n", o.path, o.name, blen);
    memcpy(request + request_len, body, blen);
    request_len += blen;

    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
        gnutls_certificate_set_x509_trust_file(cred, o.ca,
                                               GNUTLS_X509_FMT_PEM) <= 0) {
        fprintf(stderr, "load: cannot load CA %s\n", o.ca);
        return 1;
    }

    struct conn *conns = calloc(o.conns, sizeof(*conns));
    struct worker *ws = calloc(o.threads, sizeof(*ws));
    if (conns == NULL || ws == NULL)
        return 1;
    for (unsigned i = 0; i < o.conns; i++) {
        if (open_conn(&conns[i], &o, cred) != 0)
            return 1;
        ws[i % o.threads].conns[ws[i % o.threads].n++] = &conns[i];
    }
    char *tls = gnutls_session_get_desc(conns[0].s);

    struct phase warm = { .total = o.warmup };
    struct phase run = { .total = o.requests };
    warm.lat = calloc((size_t)(o.warmup ? o.warmup : 1), sizeof(uint64_t));
    run.lat = calloc((size_t)o.requests, sizeof(uint64_t));
    if (warm.lat == NULL || run.lat == NULL)
        return 1;
    /* Fault the latency pages in now, not inside the timed loop. */
    memset(run.lat, 0xff, (size_t)o.requests * sizeof(uint64_t));
    if (o.warmup && run_phase(ws, o.threads, &warm, o.timeout_s) != 0)
        return 1;
    uint64_t srv0 = o.pid ? proc_cpu_ns(o.pid) : 0, self0 = self_cpu_ns();
    uint64_t t0 = now_ns();
    if (run_phase(ws, o.threads, &run, o.timeout_s) != 0)
        return 1;
    double secs = (double)(now_ns() - t0) / 1e9;
    double self_us = (double)(self_cpu_ns() - self0) / 1e3 / (double)o.requests;
    uint64_t srv1 = o.pid ? proc_cpu_ns(o.pid) : 0;
    double srv_us = srv0 && srv1 ? (double)(srv1 - srv0) / 1e3 / (double)o.requests
                                 : 0;

    /* Failed slots hold UINT64_MAX and sort to the end. */
    qsort(run.lat, (size_t)o.requests, sizeof(uint64_t), cmp_u64);
    long ok = atomic_load(&run.ok);
    double sum = 0;
    for (long i = 0; i < ok; i++)
        sum += (double)run.lat[i];
    printf("{\"path\":\"%s\",\"conns\":%u,\"threads\":%u,\"requests\":%ld,"
           "\"warmup\":%ld,\"ok\":%ld,\"failed\":%ld,\"warmup_failed\":%ld,"
           "\"seconds\":%.3f,\"rps\":%.0f,\"mean_us\":%.1f,\"p50_us\":%.1f,"
           "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
           "\"server_cpu_us\":%.2f,\"load_cpu_us\":%.2f,\"tls\":\"%s\"}\n",
           o.path, o.conns, o.threads, o.requests, o.warmup, ok,
           o.requests - ok, atomic_load(&warm.failed), secs,
           secs > 0 ? (double)ok / secs : 0, ok ? sum / (double)ok / 1000 : 0,
           pct_us(run.lat, ok, 0.50), pct_us(run.lat, ok, 0.90),
           pct_us(run.lat, ok, 0.99), ok ? (double)run.lat[ok - 1] / 1000 : 0,
           srv_us, self_us, tls ? tls : "?");

    for (unsigned i = 0; i < o.conns; i++) {
        if (!conns[i].dead) {
            gnutls_bye(conns[i].s, GNUTLS_SHUT_WR);  /* best effort */
            close(conns[i].fd);
        }
        gnutls_deinit(conns[i].s);
        free(conns[i].buf);
    }
    gnutls_free(tls);
    gnutls_certificate_free_credentials(cred);
    free(warm.lat), free(run.lat), free(conns), free(ws), free(body);
    free(request);
    return 0;
}
