/*
 * watch.c — inotify + periodic wake-ups on one thread.  See watch.h.
 */
#include "watch.h"

#include "clock.h"
#include "fileio.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

/* A Secret volume update is a rename of the `..data` symlink (MOVED_TO);
 * plain writers give CLOSE_WRITE or CREATE; SELF events mean the
 * directory itself went away and the watch must be re-armed. */
#define WATCH_MASK                                                          \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB |     \
     IN_DELETE_SELF | IN_MOVE_SELF)

struct certs_watch {
    char dir[CERTS_PATH_MAX];
    unsigned interval_ms;
    certs_watch_fn fn;
    void *arg;
    int ino_fd;
    int wd;            /* -1 while dir cannot be watched */
    int stop_fd;       /* eventfd: readable = stop */
    pthread_t thread;
};

static int until(uint64_t deadline)
{
    uint64_t now = mono_now_ms();
    return deadline > now ? (int)(deadline - now) : 0;
}

/* Watching the path again after every wake follows a replaced directory:
 * the same inode gives back the same wd, a new one a new wd. */
static void arm(struct certs_watch *w)
{
    int wd = inotify_add_watch(w->ino_fd, w->dir, WATCH_MASK);
    if (w->wd >= 0 && wd != w->wd)
        inotify_rm_watch(w->ino_fd, w->wd);
    w->wd = wd;
}

static void drain(struct certs_watch *w)
{
    _Alignas(struct inotify_event) char buf[CERTS_INOTIFY_BUF];
    while (read(w->ino_fd, buf, sizeof buf) > 0)
        ;
}

enum wait_result { WAIT_TIMEOUT, WAIT_EVENT, WAIT_STOP };

static enum wait_result wait_for(struct certs_watch *w, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = w->stop_fd, .events = POLLIN},
                          {.fd = w->ino_fd, .events = POLLIN}};
    int n = poll(p, 2, timeout_ms);
    if (n < 0) {
        /* EINTR or worse: behave as a timeout; the caller's deadlines
         * bound how often this can repeat. */
        return WAIT_TIMEOUT;
    }
    if (p[0].revents)
        return WAIT_STOP;
    if (p[1].revents) {
        drain(w);
        return WAIT_EVENT;
    }
    return WAIT_TIMEOUT;
}

/* After an event, wait until the directory has been quiet for
 * CERTS_DEBOUNCE_MS (at most CERTS_DEBOUNCE_MAX_MS). */
static bool debounce(struct certs_watch *w)
{
    uint64_t give_up = mono_now_ms() + CERTS_DEBOUNCE_MAX_MS;
    for (;;) {
        int left = until(give_up);
        int t = left < CERTS_DEBOUNCE_MS ? left : CERTS_DEBOUNCE_MS;
        enum wait_result r = wait_for(w, t);
        if (r == WAIT_STOP)
            return false;
        if (r == WAIT_TIMEOUT || left == 0)
            return true;
    }
}

static void *run(void *arg)
{
    struct certs_watch *w = arg;
    uint64_t next = mono_now_ms() + w->interval_ms;
    for (;;) {
        int t = until(next);
        if (w->wd < 0 && t > CERTS_REARM_RETRY_MS)
            t = CERTS_REARM_RETRY_MS;
        enum wait_result r = wait_for(w, t);
        if (r == WAIT_STOP || (r == WAIT_EVENT && !debounce(w)))
            break;
        bool was_unarmed = w->wd < 0;
        arm(w);
        bool due = r == WAIT_EVENT || until(next) == 0 ||
                   (was_unarmed && w->wd >= 0);
        if (!due)
            continue;
        w->fn(w->arg);
        next = mono_now_ms() + w->interval_ms;
    }
    return NULL;
}

static void watch_free(struct certs_watch *w)
{
    if (w->ino_fd >= 0)
        close(w->ino_fd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    free(w);
}

/* Signals stay with the threads that expect them (e.g. a sigwait loop). */
static int spawn(struct certs_watch *w)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, run, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int certs_watch_start(const char *dir, unsigned interval_ms, certs_watch_fn fn,
                      void *arg, struct certs_watch **out, char *err,
                      size_t errlen)
{
    struct certs_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(err, errlen, "out of memory starting the certificate watcher");
        return -1;
    }
    w->ino_fd = w->stop_fd = w->wd = -1;
    if (strlen(dir) >= sizeof w->dir) {
        snprintf(err, errlen, "directory path %s is too long", dir);
        goto fail;
    }
    strcpy(w->dir, dir);
    w->interval_ms = interval_ms;
    w->fn = fn;
    w->arg = arg;
    w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->ino_fd < 0 || w->stop_fd < 0) {
        snprintf(err, errlen, "cannot set up file watching: %s (raise "
                 "fs.inotify.max_user_instances?)", strerror(errno));
        goto fail;
    }
    arm(w);
    if (w->wd < 0) {
        snprintf(err, errlen, "cannot watch %s: %s", dir, strerror(errno));
        goto fail;
    }
    int rc = spawn(w);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the certificate watcher thread: "
                 "%s", strerror(rc));
        goto fail;
    }
    *out = w;
    return 0;
fail:
    watch_free(w);
    return -1;
}

void certs_watch_stop(struct certs_watch *w)
{
    if (w == NULL)
        return;
    uint64_t one = 1;
    while (write(w->stop_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    pthread_join(w->thread, NULL);
    watch_free(w);
}
