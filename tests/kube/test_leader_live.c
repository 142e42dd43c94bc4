/*
 * test_leader_live.c — rc_leader against a real kube-apiserver
 * (tests/kube/run.sh --filter leader_live/STAR).  Two or three electors in
 * one process, each with its own client, on a Lease in a fresh namespace:
 *
 *   - exactly one leads, continuously; stopping it (release) hands over
 *     within about one retry period;
 *   - stopping without release: the other takes over only after the lease
 *     duration, by its own observation;
 *   - the leader's API server goes silent (a TCP proxy that stops
 *     forwarding): its fence drops at the renew deadline although its
 *     thread is stuck in a request, before the other takes over; when the
 *     path comes back there is still exactly one leader.
 *
 * Short durations keep it quick: lease 4 s, renew deadline 3 s, retry 0.5 s.
 * Every 10 ms the test checks that no two fences are up at once.
 */
#include <criterion/criterion.h>

#include "kube_client.h"
#include "rc_leader.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define L_LEASE 4000u
#define L_RENEW 3000u
#define L_RETRY 500u
#define L_SLACK_S 0.6         /* scheduling + request latency on 2 cores */
#define L_ERR 1024
#define L_PATH 512

/* ---- helpers ------------------------------------------------------------- */

static double lnow(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void lsleep(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void lcfg(struct kube_config *cfg, const char *server)
{
    if (!getenv("IO_KUBE_SERVER"))
        cr_skip_test("IO_KUBE_SERVER not set: run tests/kube/run.sh");
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->server, sizeof cfg->server, "%s", server ? server : getenv("IO_KUBE_SERVER"));
    snprintf(cfg->ca_file, sizeof cfg->ca_file, "%s", getenv("IO_KUBE_CA"));
    snprintf(cfg->cert_file, sizeof cfg->cert_file, "%s", getenv("IO_KUBE_CERT"));
    snprintf(cfg->key_file, sizeof cfg->key_file, "%s", getenv("IO_KUBE_KEY"));
}

static struct kube_client *lclient(void)
{
    struct kube_config cfg;
    lcfg(&cfg, NULL);
    struct kube_client_opts o;
    kube_client_opts_init(&o);
    struct kube_client *c;
    char err[L_ERR];
    cr_assert_eq(kube_client_new(&cfg, &o, &c, err, sizeof err), 0, "%s", err);
    return c;
}

static void lnamespace(struct kube_conn *k, char *ns, size_t len)
{
    static int n;
    snprintf(ns, len, "io-leader-%ld-%d-%ld", (long)getpid(), n++,
             (long)(lnow() * 1000) % 100000);
    char body[256], err[L_ERR];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
    struct kube_response r;
    cr_assert_eq(kube_request(k, "POST", "/api/v1/namespaces", "application/json", body,
                              strlen(body), &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.status, 201, "%s", r.body);
    kube_response_free(&r);
}

static void lget_lease(struct kube_conn *k, const char *ns, struct rc_lease_record *rec)
{
    char path[L_PATH], err[L_ERR];
    snprintf(path, sizeof path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/io-leader", ns);
    struct kube_response r;
    cr_assert_eq(kube_request(k, "GET", path, NULL, NULL, 0, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cJSON *o = cJSON_Parse(r.body);
    cr_assert_eq(rc_lease_parse(o, rec, err, sizeof err), 0, "%s", err);
    cJSON_Delete(o);
    kube_response_free(&r);
}

/* One elector and what its callback saw. */
struct elector {
    struct rc_leader *l;
    char id[32];
    atomic_int became, lost;
    _Atomic double became_at, lost_at;
};

static void on_change(void *arg, bool leading)
{
    struct elector *e = arg;
    if (leading) {
        atomic_store(&e->became_at, lnow());
        atomic_fetch_add(&e->became, 1);
    } else {
        atomic_store(&e->lost_at, lnow());
        atomic_fetch_add(&e->lost, 1);
    }
}

static void start_elector(struct elector *e, const char *server, const char *ns,
                          const char *id, bool release)
{
    struct kube_config cfg;
    lcfg(&cfg, server);
    struct rc_leader_opts o;
    rc_leader_opts_init(&o);
    o.name = "io-leader";
    o.namespace_ = ns;
    snprintf(e->id, sizeof e->id, "%s", id);
    o.identity = e->id;
    o.lease_ms = L_LEASE;
    o.renew_deadline_ms = L_RENEW;
    o.retry_ms = L_RETRY;
    o.release_on_stop = release;
    char err[L_ERR];
    cr_assert_eq(rc_leader_start(&cfg, &o, on_change, e, &e->l, err, sizeof err), 0, "%s", err);
}

static int count_leading(struct elector *es, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        if (es[i].l && rc_leader_leading(es[i].l))
            c++;
    return c;
}

/* Sample every 10 ms for up to s seconds: never two leaders.  Returns the
 * index of the leader once exactly one leads (when until_one), else the
 * leader at the end (-1: none). */
static int watch_fences(struct elector *es, int n, double s, bool until_one)
{
    double end = lnow() + s;
    int who = -1;
    do {
        int c = count_leading(es, n);
        cr_assert_leq(c, 1, "two leaders at once");
        who = -1;
        for (int i = 0; i < n; i++)
            if (es[i].l && rc_leader_leading(es[i].l))
                who = i;
        if (until_one && who >= 0)
            return who;
        lsleep(0.01);
    } while (lnow() < end);
    return who;
}

/* ---- a TCP proxy that can go silent -------------------------------------- */

#define PX_MAX 32

struct proxy {
    int lfd, port, upstream_port;
    atomic_bool silent;           /* forward nothing, accept and hold     */
    atomic_bool stop;
    pthread_t th;
    int a[PX_MAX], b[PX_MAX];     /* client side, upstream side           */
};

static void *proxy_run(void *arg)
{
    struct proxy *p = arg;
    char buf[16384];
    while (!atomic_load(&p->stop)) {
        struct pollfd fds[1 + 2 * PX_MAX];
        int map[1 + 2 * PX_MAX], nf = 0;
        fds[nf] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
        map[nf++] = -1;
        bool silent = atomic_load(&p->silent);
        for (int i = 0; i < PX_MAX && !silent; i++) {
            if (p->a[i] < 0)
                continue;
            fds[nf] = (struct pollfd){ .fd = p->a[i], .events = POLLIN };
            map[nf++] = 2 * i;
            fds[nf] = (struct pollfd){ .fd = p->b[i], .events = POLLIN };
            map[nf++] = 2 * i + 1;
        }
        if (poll(fds, (nfds_t)nf, 20) <= 0)
            continue;
        if (fds[0].revents & POLLIN) {
            int c = accept(p->lfd, NULL, NULL);
            int slot = -1;
            for (int i = 0; i < PX_MAX && c >= 0; i++)
                if (p->a[i] < 0) {
                    slot = i;
                    break;
                }
            int u = -1;
            if (c >= 0 && slot >= 0) {
                u = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in sa = { .sin_family = AF_INET,
                                          .sin_port = htons((uint16_t)p->upstream_port) };
                sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                if (u < 0 || connect(u, (struct sockaddr *)&sa, sizeof sa) != 0) {
                    if (u >= 0)
                        close(u);
                    u = -1;
                }
            }
            if (u >= 0) {
                p->a[slot] = c;
                p->b[slot] = u;
            } else if (c >= 0) {
                close(c);
            }
        }
        for (int k = 1; k < nf; k++) {
            if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int i = map[k] / 2;
            if (p->a[i] < 0)
                continue;
            int from = map[k] % 2 ? p->b[i] : p->a[i];
            int to = map[k] % 2 ? p->a[i] : p->b[i];
            ssize_t n = read(from, buf, sizeof buf);
            bool bad = n <= 0;
            for (ssize_t off = 0; !bad && off < n;) {
                ssize_t w = write(to, buf + off, (size_t)(n - off));
                if (w <= 0)
                    bad = true;
                else
                    off += w;
            }
            if (bad) {
                close(p->a[i]);
                close(p->b[i]);
                p->a[i] = p->b[i] = -1;
            }
        }
    }
    for (int i = 0; i < PX_MAX; i++)
        if (p->a[i] >= 0) {
            close(p->a[i]);
            close(p->b[i]);
        }
    close(p->lfd);
    return NULL;
}

static void proxy_start(struct proxy *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < PX_MAX; i++)
        p->a[i] = p->b[i] = -1;
    const char *srv = getenv("IO_KUBE_SERVER");
    const char *colon = strrchr(srv, ':');
    cr_assert_not_null(colon);
    p->upstream_port = atoi(colon + 1);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(p->lfd, 16), 0);
    cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
    p->port = ntohs(sa.sin_port);
    cr_assert_eq(pthread_create(&p->th, NULL, proxy_run, p), 0);
}

static void proxy_stop(struct proxy *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL);
}

/* ---- tests --------------------------------------------------------------- */

Test(leader_live, one_leads_and_release_hands_over, .timeout = 60)
{
    struct kube_client *c = lclient();
    struct kube_conn *k = kube_conn_new(c);
    char ns[64];
    lnamespace(k, ns, sizeof ns);

    struct elector es[3];
    memset(es, 0, sizeof es);
    start_elector(&es[0], NULL, ns, "alpha", true);
    start_elector(&es[1], NULL, ns, "beta", true);
    start_elector(&es[2], NULL, ns, "gamma", true);

    double t0 = lnow();
    int who = watch_fences(es, 3, 10, true);
    cr_assert_geq(who, 0, "nobody leads after 10 s");
    fprintf(stderr, "[leader] %s leads after %.2f s\n", es[who].id, lnow() - t0);
    /* Stays exactly one, the same one, over many renewals. */
    cr_assert_eq(watch_fences(es, 3, 3, false), who, "leadership moved without cause");
    cr_assert_eq(atomic_load(&es[who].became), 1);
    cr_assert_eq(atomic_load(&es[who].lost), 0);

    struct rc_lease_record rec;
    lget_lease(k, ns, &rec);
    cr_assert_str_eq(rec.holder, es[who].id);
    cr_assert_eq(rec.duration_s, L_LEASE / 1000);
    cr_assert_eq(strlen(rec.renew_time), strlen("2026-01-01T00:00:00.000000Z"), "%s",
                 rec.renew_time);
    cr_assert_eq(rec.transitions, 0, "created, never changed hands");
    struct rc_leader_stats st;
    rc_leader_stats(es[(who + 1) % 3].l, &st);
    cr_assert_str_eq(st.holder, es[who].id, "candidates know who leads");
    cr_assert_not(st.leading);

    /* Graceful stop at a random point of the candidates' poll cycle:
     * released; a candidate takes it at its next poll. */
    lsleep((double)(getpid() % 97) / 97.0 * L_RETRY / 1000.0);
    double t_stop = lnow();
    rc_leader_stop(es[who].l);
    es[who].l = NULL;
    double stopped = lnow() - t_stop;
    cr_assert_eq(atomic_load(&es[who].lost), 1, "fn(false) on stop");
    int next = watch_fences(es, 3, 5, true);
    double handover = lnow() - t_stop;
    cr_assert_geq(next, 0, "nobody took over");
    fprintf(stderr, "[leader] stop took %.3f s; %s leads %.2f s after the stop\n", stopped,
            es[next].id, handover);
    cr_assert_lt(handover, 2 * L_RETRY / 1000.0 + L_SLACK_S, "handover %.2f s", handover);
    lget_lease(k, ns, &rec);
    cr_assert_str_eq(rec.holder, es[next].id);
    cr_assert_eq(rec.transitions, 1);
    cr_assert_eq(watch_fences(es, 3, 1.5, false), next);

    for (int i = 0; i < 3; i++)
        rc_leader_stop(es[i].l);
    kube_conn_free(k);
    kube_client_free(c);
}

Test(leader_live, without_release_takeover_waits_for_expiry, .timeout = 60)
{
    struct kube_client *c = lclient();
    struct kube_conn *k = kube_conn_new(c);
    char ns[64];
    lnamespace(k, ns, sizeof ns);

    struct elector es[2];
    memset(es, 0, sizeof es);
    start_elector(&es[0], NULL, ns, "first", false);
    int who = watch_fences(es, 2, 10, true);
    cr_assert_eq(who, 0);
    start_elector(&es[1], NULL, ns, "second", false);
    cr_assert_eq(watch_fences(es, 2, 2, false), 0);

    /* As if killed: no release. */
    double t_stop = lnow();
    rc_leader_stop(es[0].l);
    es[0].l = NULL;
    int next = watch_fences(es, 2, L_LEASE / 1000.0 + 3, true);
    double took = lnow() - t_stop;
    cr_assert_eq(next, 1, "no takeover");
    fprintf(stderr, "[leader] takeover %.2f s after an unreleased stop (lease %.1f s)\n", took,
            L_LEASE / 1000.0);
    cr_assert_geq(took, (L_LEASE - L_RETRY) / 1000.0 - 0.1, "took over before expiry");
    cr_assert_lt(took, (L_LEASE + 2 * L_RETRY) / 1000.0 + L_SLACK_S);
    struct rc_lease_record rec;
    lget_lease(k, ns, &rec);
    cr_assert_str_eq(rec.holder, "second");
    cr_assert_eq(rec.transitions, 1);
    rc_leader_stop(es[1].l);
    kube_conn_free(k);
    kube_client_free(c);
}

Test(leader_live, silent_api_server_fence_drops_at_the_deadline, .timeout = 90)
{
    struct kube_client *c = lclient();
    struct kube_conn *k = kube_conn_new(c);
    char ns[64];
    lnamespace(k, ns, sizeof ns);
    struct proxy px;
    proxy_start(&px);
    char via[128];
    snprintf(via, sizeof via, "https://127.0.0.1:%d", px.port);

    struct elector es[2];
    memset(es, 0, sizeof es);
    start_elector(&es[0], via, ns, "behind-proxy", true);
    cr_assert_eq(watch_fences(es, 2, 10, true), 0);
    start_elector(&es[1], NULL, ns, "direct", true);
    cr_assert_eq(watch_fences(es, 2, 2, false), 0);

    /* The path to the API server goes silent: requests hang (the client
     * timeout is half the renew deadline), no renewals land. */
    double t_cut = lnow();
    atomic_store(&px.silent, true);
    double dropped = -1, other = -1;
    while (lnow() - t_cut < 15) {
        int n = count_leading(es, 2);
        cr_assert_leq(n, 1, "two leaders at once");
        if (dropped < 0 && !rc_leader_leading(es[0].l))
            dropped = lnow() - t_cut;
        if (other < 0 && rc_leader_leading(es[1].l))
            other = lnow() - t_cut;
        if (dropped >= 0 && other >= 0 && atomic_load(&es[0].lost) > 0)
            break;
        lsleep(0.01);
    }
    fprintf(stderr, "[leader] cut: fence down after %.2f s, fn(false) after %.2f s, "
            "the other leads after %.2f s\n", dropped,
            atomic_load(&es[0].lost_at) - t_cut, other);
    cr_assert_geq(dropped, 0, "the fence never dropped");
    cr_assert_leq(dropped, L_RENEW / 1000.0 + 0.05, "fence held past the renew deadline");
    cr_assert_gt(dropped, (L_RENEW - L_RETRY) / 1000.0 - 0.1, "dropped too early");
    cr_assert_eq(atomic_load(&es[0].lost), 1);
    /* fn(false) may wait for the stuck request: at most its timeout. */
    cr_assert_leq(atomic_load(&es[0].lost_at) - t_cut,
                  (L_RENEW + L_RENEW / 2) / 1000.0 + L_SLACK_S);
    cr_assert_geq(other, 0, "the direct elector never took over");
    cr_assert_gt(other, dropped, "takeover before the fence dropped");

    /* Back: the old leader sees the new holder and stays a candidate. */
    atomic_store(&px.silent, false);
    cr_assert_eq(watch_fences(es, 2, 4, false), 1);
    struct rc_leader_stats st;
    rc_leader_stats(es[0].l, &st);
    cr_assert_not(st.leading);
    cr_assert_str_eq(st.holder, "direct");
    cr_assert_eq(st.transitions, 2);

    rc_leader_stop(es[0].l);
    rc_leader_stop(es[1].l);
    proxy_stop(&px);
    kube_conn_free(k);
    kube_client_free(c);
}
