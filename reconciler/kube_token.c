/*
 * kube_token.c — static or file-backed bearer token.  See kube_token.h.
 */
#include "kube_token.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_PREFIX "Authorization: Bearer "
#define TOKEN_ERR_MAX (PATH_MAX + 128)

/* A token goes into a header line: anything but visible ASCII (a
 * newline, a NUL, a space) would corrupt or split the request. */
static bool token_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool trailing_space(char ch)
{
    return ch == '\n' || ch == '\r' || ch == ' ' || ch == '\t';
}

/* Read at most cap bytes of fd into buf; -1 on a read error. */
static ssize_t read_capped(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t k = read(fd, buf + n, cap - n);
        if (k == 0)
            break;
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        n += (size_t)k;
    }
    return (ssize_t)n;
}

int kube_token_read_file(const char *path, char *out, char *err, size_t errlen)
{
    /* O_NONBLOCK + a regular file only: a FIFO (or a device) at the path
     * would block the open or the read, and this runs on every refresh. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "token file %s: not a regular file", path);
        close(fd);
        return -1;
    }
    /* One byte more than a token may have tells "too long" from "fits". */
    char buf[KUBE_TOKEN_MAX + 1];
    ssize_t got = read_capped(fd, buf, sizeof buf);
    int saved = errno;
    close(fd);
    int rc = -1;
    size_t n = got > 0 ? (size_t)got : 0;
    if (got < 0) {
        snprintf(err, errlen, "token file %s: %s", path, strerror(saved));
    } else if (n == sizeof buf) {
        snprintf(err, errlen, "token file %s: larger than %d bytes", path,
                 KUBE_TOKEN_MAX);
    } else {
        while (n > 0 && trailing_space(buf[n - 1]))
            n--;
        if (!token_ok(buf, n)) {
            snprintf(err, errlen, "token file %s: empty, or not one bearer token "
                     "(spaces or control characters inside)", path);
        } else {
            memcpy(out, buf, n);
            out[n] = '\0';
            rc = 0;
        }
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

int kube_token_init(struct kube_token *t, const char *static_token,
                    const char *path, double now_s, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    size_t n = strlen(static_token);
    if (n > 0 && (n >= sizeof t->value || !token_ok(static_token, n))) {
        snprintf(err, errlen, "bearer token: longer than %zu bytes, or spaces or "
                 "control characters inside", sizeof t->value - 1);
        return -1;
    }
    if (strlen(path) >= sizeof t->path) {
        snprintf(err, errlen, "token file path longer than %zu bytes",
                 sizeof t->path - 1);
        return -1;
    }
    memcpy(t->value, static_token, n + 1);
    memcpy(t->path, path, strlen(path) + 1);
    t->read_s = now_s;
    if (t->path[0]) {
        char fresh[KUBE_TOKEN_MAX];
        int rc = kube_token_read_file(t->path, fresh, err, errlen);
        if (rc == 0)
            memcpy(t->value, fresh, strlen(fresh) + 1);
        explicit_bzero(fresh, sizeof fresh);
        if (rc != 0 && !t->value[0])
            return -1;  /* the static token, if any, serves until it reads */
    }
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        snprintf(err, errlen, "bearer token: cannot create its mutex");
        explicit_bzero(t->value, sizeof t->value);
        return -1;
    }
    return 0;
}

void kube_token_destroy(struct kube_token *t)
{
    pthread_mutex_destroy(&t->mu);
    explicit_bzero(t->value, sizeof t->value);
}

/* Caller holds mu. */
static void refresh_locked(struct kube_token *t, double now_s, bool force)
{
    if (!t->path[0] || (!force && now_s - t->read_s < KUBE_TOKEN_REFRESH_S))
        return;
    char err[TOKEN_ERR_MAX];
    char fresh[KUBE_TOKEN_MAX];
    /* Tried now, whatever the result: a missing file is not re-read on
     * every request, only on schedule or after a 401. */
    t->read_s = now_s;
    if (kube_token_read_file(t->path, fresh, err, sizeof err) == 0)
        memcpy(t->value, fresh, strlen(fresh) + 1);
    else
        log_warn("bearer token re-read failed; keeping the last token",
                 LF_STR("error", err));
    explicit_bzero(fresh, sizeof fresh);
}

char *kube_token_header_at(struct kube_token *t, double now_s, bool force,
                           bool *oom)
{
    *oom = false;
    pthread_mutex_lock(&t->mu);
    refresh_locked(t, now_s, force);
    char *h = NULL;
    if (t->value[0]) {
        size_t n = strlen(AUTH_PREFIX) + strlen(t->value) + 1;
        if ((h = malloc(n)) != NULL)
            snprintf(h, n, "%s%s", AUTH_PREFIX, t->value);
        else
            *oom = true;
    }
    pthread_mutex_unlock(&t->mu);
    return h;
}

void kube_token_free_header(char *header)
{
    if (header) {
        explicit_bzero(header, strlen(header));
        free(header);
    }
}

void kube_token_refresh_at(struct kube_token *t, double now_s)
{
    pthread_mutex_lock(&t->mu);
    refresh_locked(t, now_s, true);
    pthread_mutex_unlock(&t->mu);
}
