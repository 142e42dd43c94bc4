/*
 * fdlimit.h — the open-file limit, raised to fit --max-connections.
 *
 * Every HTTPS connection is a file descriptor, and so is every API
 * connection, watch, epoll instance and certificate read.  Container
 * runtimes and systemd often start a process with a soft RLIMIT_NOFILE of
 * 1024 under a much higher hard limit, while --max-connections defaults to
 * 1024 on its own: at the soft limit accept() fails with EMFILE and the
 * server stalls instead of refusing cleanly.  So, as Go's runtime does for
 * every Go program, the soft limit is raised to the hard one at startup;
 * and when even the hard limit cannot hold the connections plus what the
 * rest of the process needs, the caller lowers the connection limit to
 * what fits (libmicrohttpd then refuses the excess) and says how to raise
 * the hard limit.
 */
#ifndef SRV_FDLIMIT_H
#define SRV_FDLIMIT_H

#include <stddef.h>

/* Descriptors for everything but HTTPS connections and the per-thread
 * ones counted by the caller: the listen socket, log and certificate
 * files, the API watches, the leader and Event clients, pipes, and room
 * for a TLS library or resolver that opens a file of its own. */
#define SRV_FD_RESERVE_BASE 64u

struct srv_fd_limit {
    unsigned long before;   /* soft limit found at startup */
    unsigned long soft;     /* soft limit now */
    unsigned long hard;
};

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit and tell whether `need`
 * descriptors fit under it.  Returns 0 if they fit, 1 if they do not
 * (lim->soft is then the most there can be), -1 if the limit cannot be
 * read (err says why; nothing was changed).  A soft limit that cannot be
 * raised (a sandbox refusing setrlimit) is not an error: lim says what
 * stands.
 */
int srv_fd_limit_raise(unsigned long need, struct srv_fd_limit *lim, char *err,
                       size_t errlen);

#endif
