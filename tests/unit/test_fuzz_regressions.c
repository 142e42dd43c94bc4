/*
 * test_fuzz_regressions.c — inputs the fuzz targets (fuzz/) found
 * crashing, kept as tests so they stay fixed in every build: plain, asan
 * and valgrind.  An out-of-bounds read only faults by luck in a plain
 * build, so the strings go at the very end of a page followed by an
 * inaccessible one: reading one byte past the NUL crashes everywhere.
 * Undefined behaviour with no visible effect on x86 (a float-to-integer
 * overflow) is caught by `make asan`, whose UBSan aborts on it.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kube_client.h"
#include "kube_watch.h"
#include "log.h"
#include "rc_pool.h"
#include "rc_cache.h"
#include "rc_status.h"

struct guarded {
    void *map;
    size_t len;
    char *s;
};

/* s copied so that its NUL is the last readable byte. */
static struct guarded guard(const char *s)
{
    struct guarded g;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = strlen(s) + 1;
    cr_assert_lt(n, page);
    g.len = 2 * page;
    g.map = mmap(NULL, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
    cr_assert_neq(g.map, MAP_FAILED);
    cr_assert_eq(mprotect((char *)g.map + page, page, PROT_NONE), 0);
    g.s = (char *)g.map + page - n;
    memcpy(g.s, s, n);
    return g;
}

static void unguard(struct guarded *g)
{
    munmap(g->map, g->len);
}

static int64_t parse_guarded(const char *s)
{
    struct guarded g = guard(s);
    int64_t t = rc_time_parse(g.s);
    unguard(&g);
    return t;
}

/*
 * fuzz_cache_decoders: an InferenceService condition whose
 * lastTransitionTime has a short zone offset ("+1:2").  sscanf("%2d:%2d")
 * accepts it, then the parser skipped a fixed 6 bytes ("+hh:mm") and read
 * past the string's NUL (heap-buffer-overflow in rc_time_parse, from
 * rc_isvc_decode → isvc_conditions).
 */
Test(fuzz_regressions, short_zone_offset_is_refused_without_reading_past_the_end)
{
    static const char *const bad[] = {
        "2026-11-25T09:10:09+1:2",  "2026-11-25T09:10:09-1:2",
        "2026-11-25T09:10:09+01:2", "2026-11-25T09:10:09+1:02",
        "2026-11-25T09:10:09+1:",   "2026-11-25T09:10:09+",
        "2026-11-25T09:10:09.5+1:2", "2026-11-25T09:10:09+ 1: 2",
        "2026-11-25T09:10:09+1:2xx", "2026-11-25T09:10:09+01:00x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(parse_guarded(bad[i]), -1, "%s", bad[i]);
    /* What the API server writes still parses, at the very end of a page. */
    cr_expect_eq(parse_guarded("1970-01-01T02:00:00+02:00"), 0);
    cr_expect_eq(parse_guarded("1970-01-01T00:00:00-01:30"), 5400);
    cr_expect_eq(parse_guarded("1970-01-01T00:00:00.25Z"), 0);
}

/* The same input the way the fuzzer reached it: through the decoder. */
Test(fuzz_regressions, isvc_condition_with_short_zone_offset)
{
    cJSON *obj = cJSON_Parse(
        "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\"},\"status\":"
        "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
        "\"lastTransitionTime\":\"2026-11-25T09:10:09+1:2\"}]}}");
    cr_assert_not_null(obj);
    struct rc_isvc *e = rc_isvc_decode(obj);
    cr_assert_not_null(e);
    cr_expect_eq(e->cond[RC_COND_READY].status, 'T');
    cr_expect_eq(e->cond[RC_COND_READY].since, -1);
    rc_pool_free(e);
    cJSON_Delete(obj);
}

/* ---- kube_watch: an ERROR event with an absurd code ---------------------- */

/* A one-connection-at-a-time fake API server: lists are empty, the first
 * watch sends `event` and ends, later watches send nothing until closed. */
struct fake {
    int lfd;
    unsigned short port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int lists, watches;
    const char *event;
};

static void fake_send(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

static void fake_serve(struct fake *f, int fd)
{
    char head[4096] = "";
    size_t n = 0;
    while (n + 1 < sizeof head && !strstr(head, "\r\n\r\n")) {
        ssize_t k = recv(fd, head + n, sizeof head - 1 - n, 0);
        if (k <= 0)
            return;
        n += (size_t)k;
        head[n] = '\0';
    }
    char *eol = strstr(head, "\r\n");
    if (eol)
        *eol = '\0';
    if (!strstr(head, "watch=1")) {
        static const char list[] =
            "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\","
            "\"metadata\":{\"resourceVersion\":\"7\"},\"items\":[]}";
        char h[256];
        snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(list));
        fake_send(fd, h);
        fake_send(fd, list);
        atomic_fetch_add(&f->lists, 1);
        return;
    }
    fake_send(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  "Connection: close\r\n\r\n");
    if (atomic_fetch_add(&f->watches, 1) == 0) {
        fake_send(fd, f->event);
        fake_send(fd, "\n");
        return;
    }
    char b[256];
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0 && recv(fd, b, sizeof b, 0) <= 0)
            return;
    }
}

static void *fake_run(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        fake_serve(f, fd);
        close(fd);
    }
    return NULL;
}

static void on_nothing(void *arg)
{
    (void)arg;
}

static void on_object(void *arg, enum kube_event t, const cJSON *obj)
{
    (void)arg, (void)t, (void)obj;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * fuzz_watch_lines: {"type":"ERROR","object":{"code":4.6e95}} made
 * on_error_event convert a double far outside long's range to long
 * (UBSan: "4.66667e+95 is outside the range of representable values of
 * type 'long'").  A code that is no HTTP status now counts as 500: the
 * watch backs off and watches again from where it was, no relist.
 */
Test(fuzz_regressions, watch_error_event_with_an_absurd_code, .timeout = 30)
{
    /* The code the watch settled on is in its log line: unfixed, x86
     * turned the overflow into LONG_MIN, which a plain build shows too
     * (GCC's -fsanitize=undefined leaves float-cast-overflow out). */
    char log_path[] = "/tmp/fuzz-regression-log-XXXXXX";
    int log_fd = mkstemp(log_path);
    cr_assert_geq(log_fd, 0);
    unlink(log_path);
    log_set_fd(log_fd);
    log_set_level(LOG_INFO);
    struct fake f;
    memset(&f, 0, sizeof f);
    f.event = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
              "\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old\","
              "\"reason\":\"Expired\",\"code\":4666666666666666666666666666666666666666"
              "66666666666666666666666666666666666666666666666666666610}}";
    f.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(f.lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert_eq(bind(f.lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(f.lfd, 8), 0);
    cr_assert_eq(getsockname(f.lfd, (struct sockaddr *)&a, &al), 0);
    f.port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&f.thread, NULL, fake_run, &f), 0);

    struct kube_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.server, sizeof cfg.server, "http://127.0.0.1:%u", f.port);
    char err[1024];
    struct kube_client *c;
    cr_assert_eq(kube_client_new(&cfg, NULL, &c, err, sizeof err), 0, "%s", err);
    struct kube_watch_handlers h = {.on_list_begin = on_nothing,
                                    .on_event = on_object,
                                    .on_list_end = on_nothing};
    struct kube_watch_opts o = {.name = "fuzz-regression",
                                .path = "/api/v1/configmaps", .timeout_s = 60};
    struct kube_watch *w;
    cr_assert_eq(kube_watch_start(c, &o, &h, &w, err, sizeof err), 0, "%s", err);

    /* The ERROR ends the first watch; the second one follows a backoff
     * of at most KUBE_WATCH_BACKOFF_MIN_MS. */
    double until = mono_now() + 10;
    while (atomic_load(&f.watches) < 2 && mono_now() < until)
        usleep(5000);
    int watches = atomic_load(&f.watches), lists = atomic_load(&f.lists);
    kube_watch_stop(w);
    kube_client_free(c);
    atomic_store(&f.stop, true);
    pthread_join(f.thread, NULL);
    close(f.lfd);
    cr_expect_geq(watches, 2, "watches: %d", watches);
    cr_expect_eq(lists, 1, "an ERROR that is not 410 must not relist");

    char logs[16384];
    ssize_t n = pread(log_fd, logs, sizeof logs - 1, 0);
    close(log_fd);
    cr_assert_gt(n, 0);
    logs[n] = '\0';
    const char *line = strstr(logs, "\"msg\":\"watch got an ERROR event\"");
    cr_assert_not_null(line, "no ERROR event logged:\n%s", logs);
    const char *end = strchr(line, '\n');
    const char *code = strstr(line, "\"code\":500");
    cr_expect(code && (!end || code < end), "ERROR code not taken as 500: %.*s",
              (int)(end ? end - line : 200), line);
}
