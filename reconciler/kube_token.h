/*
 * kube_token.h — the client's bearer token: a static one from the config,
 * or a file re-read every KUBE_TOKEN_REFRESH_S and at once after a 401,
 * because bound service-account tokens rotate (the official C client
 * reads its token once and fails an hour later).
 *
 * Thread-safe.  Times are passed in (any monotonic clock, in seconds) so
 * tests can drive the refresh schedule without sleeping.
 */
#ifndef KUBE_TOKEN_H
#define KUBE_TOKEN_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "kube_client.h"  /* KUBE_TOKEN_REFRESH_S */
#include "kube_config.h"

struct kube_token {
    pthread_mutex_t mu;
    char path[PATH_MAX];          /* token file, or "" for a static token */
    char value[KUBE_TOKEN_MAX];   /* the token in use, or "" for none     */
    double read_s;                /* when the file was last tried         */
};

/*
 * static_token and path may be "" (no token: client certificates).  With
 * a path, the file is read now; if that fails the static token serves
 * until the file reads, and with no static token it is an error.  Either
 * token must be visible ASCII: anything else would corrupt the header.
 * Returns 0, or -1 with err (naming the file, never the token).
 */
int kube_token_init(struct kube_token *t, const char *static_token,
                    const char *path, double now_s, char *err, size_t errlen);
/* Wipes the token. */
void kube_token_destroy(struct kube_token *t);

/*
 * The "Authorization: Bearer ..." header line for the token current at
 * now_s, re-reading the file first when KUBE_TOKEN_REFRESH_S has passed or
 * when force is set.  A failed re-read keeps the last token (a rotation in
 * progress is not an outage) and is logged.  Returns a malloc'd line for
 * kube_token_free_header, or NULL: no token (*oom false) or out of memory.
 */
char *kube_token_header_at(struct kube_token *t, double now_s, bool force,
                           bool *oom);
void kube_token_free_header(char *header);

/* Re-read the file now (after a 401 on a stream, for the next attempt). */
void kube_token_refresh_at(struct kube_token *t, double now_s);

/* Read one token file into out (KUBE_TOKEN_MAX bytes), trailing
 * whitespace trimmed.  Returns 0, or -1 with err. */
int kube_token_read_file(const char *path, char *out, char *err, size_t errlen);

#endif
