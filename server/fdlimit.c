/*
 * fdlimit.c — see fdlimit.h.
 */
#include "fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static unsigned long as_count(rlim_t v)
{
    return v == RLIM_INFINITY || v > (rlim_t)~0ul ? ~0ul : (unsigned long)v;
}

int srv_fd_limit_raise(unsigned long need, struct srv_fd_limit *lim, char *err,
                       size_t errlen)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(err, errlen, "cannot read the open-file limit: %s",
                 strerror(errno));
        return -1;
    }
    lim->before = as_count(rl.rlim_cur);
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit raised = { rl.rlim_max, rl.rlim_max };
        /* Linux caps NOFILE at fs.nr_open even when the hard limit says
         * "unlimited"; then the raise fails and the old soft limit
         * stands. */
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl = raised;
    }
    lim->soft = as_count(rl.rlim_cur);
    lim->hard = as_count(rl.rlim_max);
    return need <= lim->soft ? 0 : 1;
}
