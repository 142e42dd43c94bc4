/*
 * test_fdlimit.c — srv_fd_limit_raise lifts the soft open-file limit to
 * the hard one and says whether a count fits.  Each test runs in its own
 * process (Criterion forks), so lowering the soft limit here touches no
 * other test.  Only the soft limit is changed: under valgrind the hard one
 * cannot be.
 */
#include <criterion/criterion.h>
#include <sys/resource.h>

#include "fdlimit.h"

static struct rlimit lower_soft_limit(void)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    cr_assert_gt(rl.rlim_max, 64, "hard limit %llu too low for this test",
                 (unsigned long long)rl.rlim_max);
    struct rlimit low = { 64, rl.rlim_max };
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    return rl;
}

Test(fdlimit, raises_the_soft_limit_to_the_hard_one)
{
    struct rlimit rl = lower_soft_limit();
    struct srv_fd_limit lim;
    char err[128];
    cr_assert_eq(srv_fd_limit_raise(32, &lim, err, sizeof(err)), 0);
    cr_assert_eq(lim.before, 64);
    cr_assert_eq(lim.soft, rl.rlim_max);
    cr_assert_eq(lim.hard, rl.rlim_max);
    struct rlimit now;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &now), 0);
    cr_assert_eq(now.rlim_cur, rl.rlim_max, "the process limit itself was raised");
}

Test(fdlimit, a_need_above_the_soft_limit_fits_once_raised)
{
    struct rlimit rl = lower_soft_limit();
    struct srv_fd_limit lim;
    char err[128];
    /* 65 does not fit the soft limit of 64, but fits the hard one. */
    cr_assert_eq(srv_fd_limit_raise(65, &lim, err, sizeof(err)), 0);
    cr_assert_eq(lim.soft, rl.rlim_max);
}

Test(fdlimit, a_need_above_the_hard_limit_does_not_fit)
{
    struct rlimit rl = lower_soft_limit();
    struct srv_fd_limit lim;
    char err[128];
    cr_assert_eq(srv_fd_limit_raise((unsigned long)rl.rlim_max + 1, &lim, err,
                                    sizeof(err)), 1);
    cr_assert_eq(lim.soft, rl.rlim_max, "still raised as far as it goes");
    cr_assert_eq(srv_fd_limit_raise((unsigned long)rl.rlim_max, &lim, err,
                                    sizeof(err)), 0, "exactly the limit fits");
    cr_assert_eq(lim.before, rl.rlim_max, "the second call found it raised");
}
