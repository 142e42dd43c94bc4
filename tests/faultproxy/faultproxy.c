/*
 * faultproxy — a loopback TCP proxy that a test steers into faults.
 *
 *   faultproxy --upstream PORT [--listen PORT] [--control PORT] [--ready-file F]
 *
 * Clients dial 127.0.0.1:<listen>; every connection is forwarded byte for
 * byte to 127.0.0.1:<upstream> (TLS passes through untouched, so a server
 * certificate for 127.0.0.1 still matches).  A test changes the behaviour
 * by sending one line to 127.0.0.1:<control> and reading one reply line
 * ("ok ..." or "error ..."); bash can do that with /dev/tcp alone:
 *
 *   pass             forward normally (connections cut off earlier stay so)
 *   delay MS         hold every chunk MS ms before forwarding it
 *   drop             reset each new connection at once; current ones go on
 *   reset            RST every current connection (both sides); mode stays
 *   blackhole        current and new connections go half-open: their bytes
 *                    are read and thrown away, nothing is forwarded, the
 *                    sockets stay open; they never forward again
 *   partition SECS   for SECS s read nothing and accept nothing (bytes and
 *                    handshakes stall, as when packets are lost), then pass
 *   status           mode, open connections, totals
 *
 * Why C and not Go: it builds with the operator's own flags in a second,
 * no module download, and a test needs nothing else installed.
 *
 * One thread per connection, polling both sockets with a short timeout so
 * a mode change or reset is seen within POLL_MS.  Connections are bounded
 * (MAX_CONNS; more are reset); everything binds 127.0.0.1 only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 128          /* open connections; more are reset        */
#define POLL_MS 50             /* how soon a thread sees a mode change    */
#define CHUNK 16384            /* bytes read at once                      */
#define LISTEN_BACKLOG 16
#define CONTROL_LINE_MAX 128
#define CONTROL_TIMEOUT_S 5    /* a control client that says nothing      */
#define UPSTREAM_CONNECT_MS 5000
#define DELAY_MAX_MS 600000
#define PARTITION_MAX_S 3600

enum mode { M_PASS, M_DELAY, M_DROP, M_BLACKHOLE };
static const char *const mode_names[] = { "pass", "delay", "drop", "blackhole" };

static atomic_int g_mode = M_PASS;
static atomic_int g_delay_ms;
static atomic_uint g_reset_gen;        /* bumped by "reset"                */
static atomic_uint g_blackhole_gen;    /* bumped by "blackhole"            */
static atomic_llong g_partition_until; /* monotonic ms; 0 = none          */
static atomic_int g_open;
static atomic_ullong g_accepted, g_dropped, g_resets, g_bytes, g_refused_full;
static volatile sig_atomic_t g_stop;
static int g_upstream_port;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static bool partitioned(void)
{
    long long until = atomic_load(&g_partition_until);
    return until > 0 && mono_ms() < until;
}

/* Close with an RST rather than a FIN: what a reset connection looks like. */
static void close_rst(int fd)
{
    struct linger l = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static int listen_on(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

/* Connect to the upstream within UPSTREAM_CONNECT_MS; -1 when it refuses
 * (the API server is down): the client then sees its connection reset. */
static int dial_upstream(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)g_upstream_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int err = 0;
        socklen_t el = sizeof err;
        if (poll(&p, 1, UPSTREAM_CONNECT_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

struct conn {
    int client, upstream;      /* upstream -1 while half-open from birth */
    unsigned reset_gen, blackhole_gen;
    bool dead;                 /* half-open: never forwards again        */
};

/* Write all of buf to a non-blocking fd, giving up when a reset comes or
 * the peer stops reading for good.  0 on success. */
static int write_all(struct conn *c, int fd, const char *buf, size_t n)
{
    while (n > 0) {
        if (atomic_load(&g_reset_gen) != c->reset_gen || g_stop)
            return -1;
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
            atomic_fetch_add(&g_bytes, (unsigned long long)w);
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        poll(&p, 1, POLL_MS);
    }
    return 0;
}

/* Hold a chunk for the current delay, in slices so a reset still ends the
 * connection on time. */
static int hold(struct conn *c)
{
    int left = atomic_load(&g_mode) == M_DELAY ? atomic_load(&g_delay_ms) : 0;
    while (left > 0) {
        if (atomic_load(&g_reset_gen) != c->reset_gen || g_stop)
            return -1;
        int step = left < POLL_MS ? left : POLL_MS;
        sleep_ms(step);
        left -= step;
    }
    return 0;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    char *buf = malloc(CHUNK);
    bool rst = false;
    if (!c->dead && (c->upstream = dial_upstream()) < 0)
        rst = true;
    while (buf && !rst && !g_stop) {
        if (atomic_load(&g_reset_gen) != c->reset_gen) {
            rst = true;
            atomic_fetch_add(&g_resets, 1);
            break;
        }
        if (atomic_load(&g_blackhole_gen) != c->blackhole_gen)
            c->dead = true;
        if (partitioned()) {
            sleep_ms(POLL_MS);
            continue;
        }
        struct pollfd p[2] = { { .fd = c->client, .events = POLLIN },
                               { .fd = c->upstream, .events = POLLIN } };
        int n = poll(p, c->upstream >= 0 ? 2 : 1, POLL_MS);
        if (n <= 0)
            continue;
        bool closed = false;
        for (int i = 0; i < 2 && !closed; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(p[i].fd, buf, CHUNK, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                closed = true;  /* either side gone: end both */
                break;
            }
            if (r < 0 || c->dead)
                continue;       /* half-open: swallow what comes */
            if (hold(c) != 0 || write_all(c, p[1 - i].fd, buf, (size_t)r) != 0)
                closed = true;
        }
        if (closed)
            break;
    }
    if (rst) {
        close_rst(c->client);
        if (c->upstream >= 0)
            close_rst(c->upstream);
    } else {
        close(c->client);
        if (c->upstream >= 0)
            close(c->upstream);
    }
    free(buf);
    free(c);
    atomic_fetch_sub(&g_open, 1);
    return NULL;
}

static void on_accept(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    atomic_fetch_add(&g_accepted, 1);
    int mode = atomic_load(&g_mode);
    if (mode == M_DROP) {
        atomic_fetch_add(&g_dropped, 1);
        close_rst(fd);
        return;
    }
    if (atomic_load(&g_open) >= MAX_CONNS) {
        atomic_fetch_add(&g_refused_full, 1);
        close_rst(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close_rst(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *c = (struct conn){ .client = fd, .upstream = -1,
                        .reset_gen = atomic_load(&g_reset_gen),
                        .blackhole_gen = atomic_load(&g_blackhole_gen),
                        .dead = mode == M_BLACKHOLE };
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&g_open, 1);
    if (pthread_create(&t, &at, conn_main, c) != 0) {
        atomic_fetch_sub(&g_open, 1);
        close_rst(fd);
        free(c);
    }
    pthread_attr_destroy(&at);
}

/* Parse a decimal in [0, max]; -1 when it is not one. */
static long parse_num(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > max)
        return -1;
    return v;
}

static void command(const char *line, char *out, size_t cap)
{
    char verb[16] = "", arg[32] = "";
    if (sscanf(line, "%15s %31s", verb, arg) < 1) {
        snprintf(out, cap, "error empty command\n");
        return;
    }
    long v;
    if (strcmp(verb, "pass") == 0) {
        atomic_store(&g_partition_until, 0);
        atomic_store(&g_mode, M_PASS);
    } else if (strcmp(verb, "delay") == 0) {
        if ((v = parse_num(arg, DELAY_MAX_MS)) < 0) {
            snprintf(out, cap, "error delay needs milliseconds in [0, %d]\n", DELAY_MAX_MS);
            return;
        }
        atomic_store(&g_delay_ms, (int)v);
        atomic_store(&g_mode, M_DELAY);
    } else if (strcmp(verb, "drop") == 0) {
        atomic_store(&g_mode, M_DROP);
    } else if (strcmp(verb, "reset") == 0) {
        atomic_fetch_add(&g_reset_gen, 1);
    } else if (strcmp(verb, "blackhole") == 0) {
        atomic_store(&g_mode, M_BLACKHOLE);
        atomic_fetch_add(&g_blackhole_gen, 1);
    } else if (strcmp(verb, "partition") == 0) {
        if ((v = parse_num(arg, PARTITION_MAX_S)) < 0) {
            snprintf(out, cap, "error partition needs seconds in [0, %d]\n", PARTITION_MAX_S);
            return;
        }
        atomic_store(&g_mode, M_PASS);
        atomic_store(&g_partition_until, mono_ms() + v * 1000);
    } else if (strcmp(verb, "status") != 0) {
        snprintf(out, cap, "error unknown command '%s' (pass, delay MS, drop, reset, "
                 "blackhole, partition SECS, status)\n", verb);
        return;
    }
    long long until = atomic_load(&g_partition_until);
    double left = until > 0 ? (double)(until - mono_ms()) / 1000.0 : 0;
    snprintf(out, cap, "ok mode=%s delay_ms=%d partition_left_s=%.1f open=%d "
             "accepted=%llu dropped=%llu resets=%llu full=%llu bytes=%llu\n",
             mode_names[atomic_load(&g_mode)], atomic_load(&g_delay_ms),
             left > 0 ? left : 0.0, atomic_load(&g_open),
             atomic_load(&g_accepted), atomic_load(&g_dropped),
             atomic_load(&g_resets), atomic_load(&g_refused_full),
             atomic_load(&g_bytes));
}

/* One control client: one line in, one line out, then close. */
static void on_control(int cfd)
{
    int fd = accept4(cfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct timeval tv = { CONTROL_TIMEOUT_S, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char line[CONTROL_LINE_MAX + 1];
    size_t n = 0;
    bool whole = false;
    while (n < CONTROL_LINE_MAX && !whole) {
        ssize_t r = recv(fd, line + n, CONTROL_LINE_MAX - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        whole = memchr(line, '\n', n) != NULL;
    }
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    char out[512];
    if (!whole && n == CONTROL_LINE_MAX)
        snprintf(out, sizeof out, "error line longer than %d bytes\n", CONTROL_LINE_MAX);
    else
        command(line, out, sizeof out);
    send(fd, out, strlen(out), MSG_NOSIGNAL);
    fprintf(stderr, "faultproxy: %s -> %s", line, out);
    close(fd);
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: faultproxy --upstream PORT [--listen PORT] [--control PORT] "
                    "[--ready-file FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    long listen_port = 0, control_port = 0;
    const char *ready = NULL;
    g_upstream_port = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--upstream") == 0)
            g_upstream_port = (int)parse_num(argv[++i], 65535);
        else if (strcmp(argv[i], "--listen") == 0)
            listen_port = parse_num(argv[++i], 65535);
        else if (strcmp(argv[i], "--control") == 0)
            control_port = parse_num(argv[++i], 65535);
        else if (strcmp(argv[i], "--ready-file") == 0)
            ready = argv[++i];
        else
            return usage();
    }
    if (g_upstream_port <= 0 || listen_port < 0 || control_port < 0)
        return usage();
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lport = 0, cport = 0;
    int lfd = listen_on((int)listen_port, &lport);
    int cfd = listen_on((int)control_port, &cport);
    if (lfd < 0 || cfd < 0) {
        fprintf(stderr, "faultproxy: cannot listen on 127.0.0.1:%ld or :%ld: %s\n",
                listen_port, control_port, strerror(errno));
        return 1;
    }
    if (ready) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "PROXY_PORT=%d\nPROXY_CONTROL_PORT=%d\n", lport, cport) < 0 ||
            fclose(f) != 0 || rename(tmp, ready) != 0) {
            fprintf(stderr, "faultproxy: cannot write %s: %s\n", ready, strerror(errno));
            return 1;
        }
    }
    fprintf(stderr, "faultproxy: 127.0.0.1:%d -> 127.0.0.1:%d, control 127.0.0.1:%d\n",
            lport, g_upstream_port, cport);
    while (!g_stop) {
        long long until = atomic_load(&g_partition_until);
        if (until > 0 && mono_ms() >= until) {
            atomic_store(&g_partition_until, 0);
            fprintf(stderr, "faultproxy: partition over\n");
        }
        /* A partition accepts nothing: handshakes past the backlog stall. */
        struct pollfd p[2] = { { .fd = cfd, .events = POLLIN },
                               { .fd = lfd, .events = POLLIN } };
        int n = poll(p, partitioned() ? 1 : 2, POLL_MS);
        if (n <= 0)
            continue;
        if (p[0].revents & POLLIN)
            on_control(cfd);
        if (!partitioned() && (p[1].revents & POLLIN))
            on_accept(lfd);
    }
    /* Threads notice g_stop within POLL_MS; give them a moment to close. */
    for (int i = 0; i < 40 && atomic_load(&g_open) > 0; i++)
        sleep_ms(POLL_MS);
    close(lfd);
    close(cfd);
    return 0;
}
