/*
 * hostile_util.h — what the hostile-client tests (test_hostile.c) need:
 * the shipped binary as a child process (so its RSS and its survival are
 * its own), raw and TLS attacker connections, and a legitimate client
 * that keeps sending reviews in a thread while an attack runs.
 */
#ifndef HOSTILE_UTIL_H
#define HOSTILE_UTIL_H

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Upper bound for the child to start or stop; never waited longer. */
#define HOSTILE_CHILD_TIMEOUT_MS 60000

struct hchild {
    pid_t pid;
    unsigned port;
    char dir[64];          /* cert dir: ca.crt tls.crt tls.key, and log */
    char ca[96];
    char log[96];
};

/* Certificates for 127.0.0.1 into a fresh dir, then `serve --webhook-only`
 * on an ephemeral port with the given extra flags (NULL-terminated). */
void hchild_start(struct hchild *ch, const char *const extra[]);
/* The same with another mode flag ("--reconciler-only"). */
void hchild_start_mode(struct hchild *ch, const char *mode,
                       const char *const extra[]);
/* SIGTERM and wait; returns the exit status (-1: killed or signalled). */
int hchild_stop(struct hchild *ch);
bool hchild_alive(const struct hchild *ch);
long hchild_rss_kib(const struct hchild *ch);
/* The child's whole log so far (malloc'd, NUL-terminated). */
char *hchild_log(const struct hchild *ch);

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
int hostile_tcp(unsigned port);
/* True once the server has closed (or reset) fd, waiting up to ms. */
bool hostile_closed_within(int fd, int ms);

/* A TLS client session over a new connection: the handshake with
 * `priorities`, trusting ca.  Returns 0, or the GnuTLS error (the session
 * is then freed and *fd is -1). */
struct htls {
    gnutls_session_t s;
    int fd;
};
int htls_connect(struct htls *t, unsigned port, const char *ca,
                 const char *priorities);
void htls_close(struct htls *t);

/* A legitimate client: reviews on fresh connections in a loop until
 * stopped, counting answers that are right and those that are not. */
struct legit {
    pthread_t thread;
    unsigned port;
    char ca[96];
    atomic_bool stop;
    atomic_int ok, bad;
    char first_error[256];
};
void legit_start(struct legit *l, const struct hchild *ch);
/* Stop and join; ok/bad hold the totals. */
void legit_stop(struct legit *l);

/* IO_UNDER_VALGRIND: everything runs many times slower. */
bool hostile_under_valgrind(void);
double hostile_now_s(void);
void hostile_sleep_ms(long ms);

#endif
