/*
 * watch.h — a thread that calls back when a directory may have changed.
 * Internal to certs/.
 *
 * inotify says "something happened" quickly; a periodic tick catches what
 * inotify cannot see (a file changed behind a bind mount, a watch lost
 * while the directory was being replaced).  The callback must therefore
 * be cheap when nothing changed and tolerate spurious calls.
 */
#ifndef CERTS_WATCH_H
#define CERTS_WATCH_H

#include <stddef.h>

/* Quiet time after an event before calling back, so a writer doing
 * several renames is not caught half way. */
#define CERTS_DEBOUNCE_MS 100
/* A directory that never goes quiet is still read this often. */
#define CERTS_DEBOUNCE_MAX_MS 1000
/* While the directory is missing, how often to try to watch it again. */
#define CERTS_REARM_RETRY_MS 1000
#define CERTS_INOTIFY_BUF 4096

typedef void (*certs_watch_fn)(void *arg);

struct certs_watch;

/* Watches dir and calls fn(arg) from its own thread after each burst of
 * events and every interval_ms.  Returns 0 and *out, or -1 with err. */
int certs_watch_start(const char *dir, unsigned interval_ms, certs_watch_fn fn,
                      void *arg, struct certs_watch **out, char *err,
                      size_t errlen);

/* Wakes the thread, joins it and frees everything.  NULL is a no-op. */
void certs_watch_stop(struct certs_watch *w);

#endif
