/*
 * test_cli.c — flags, environment fallback and their precedence; the
 * listen-address parser; the JSON log line format.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "http.h"
#include "log.h"

struct opts {
    const char *listen;
    unsigned threads;
    bool flag;
    long long n;
};

static int upper_only(void *arg, const char *v, char *err, size_t errlen)
{
    for (const char *c = v; *c; c++) {
        if (*c < 'A' || *c > 'Z') {
            snprintf(err, errlen, "upper case only");
            return -1;
        }
    }
    *(const char **)arg = v;
    return 0;
}

static struct opts o;
static const char *word;
static const struct cli_opt table[] = {
    { "listen", CLI_STRING, &o.listen, "ADDR", "where", 0, 0, NULL },
    { "threads", CLI_UINT, &o.threads, "N", "how many", 1, 8, NULL },
    { "flag", CLI_BOOL, &o.flag, NULL, "a switch", 0, 0, NULL },
    { "n", CLI_LLONG, &o.n, "N", "a number", -5, 5, NULL },
    { "word", CLI_FUNC, &word, "W", "a word", 0, 0, upper_only },
};
static const struct cli_command cmd = { "serve", "test", table, 5 };

static int parse(int argc, char **argv, char *err)
{
    memset(&o, 0, sizeof(o));
    return cli_parse(&cmd, argc, argv, err, 256);
}

Test(cli, flags_in_both_forms)
{
    char err[256];
    char *argv[] = { "serve", "--listen", "1.2.3.4:5", "--threads=3", "--flag",
                     "--n", "-5", NULL };
    cr_assert_eq(parse(7, argv, err), 0, "%s", err);
    cr_expect_str_eq(o.listen, "1.2.3.4:5");
    cr_expect_eq(o.threads, 3);
    cr_expect(o.flag);
    cr_expect_eq(o.n, -5);
}

Test(cli, environment_then_flag_precedence)
{
    char err[256];
    char env[64];
    cli_env_name("threads", env, sizeof(env));
    cr_expect_str_eq(env, "INFERENCE_OPERATOR_THREADS");
    setenv("INFERENCE_OPERATOR_THREADS", "2", 1);
    setenv("INFERENCE_OPERATOR_FLAG", "true", 1);
    char *argv1[] = { "serve", NULL };
    cr_assert_eq(parse(1, argv1, err), 0, "%s", err);
    cr_expect_eq(o.threads, 2);
    cr_expect(o.flag);
    char *argv2[] = { "serve", "--threads", "7", "--flag=false", NULL };
    cr_assert_eq(parse(4, argv2, err), 0, "%s", err);
    cr_expect_eq(o.threads, 7, "the flag wins over the environment");
    cr_expect_not(o.flag);
    unsetenv("INFERENCE_OPERATOR_THREADS");
    unsetenv("INFERENCE_OPERATOR_FLAG");
}

Test(cli, errors_name_the_source)
{
    char err[256];
    char *a1[] = { "serve", "--threads", "9", NULL };
    cr_expect_eq(parse(3, a1, err), -1);
    cr_expect_str_eq(err, "--threads: \"9\" is not an integer between 1 and 8");
    char *a2[] = { "serve", "--bogus", NULL };
    cr_expect_eq(parse(2, a2, err), -1);
    cr_expect(strstr(err, "unknown flag --bogus") != NULL);
    char *a3[] = { "serve", "--listen", NULL };
    cr_expect_eq(parse(2, a3, err), -1);
    cr_expect(strstr(err, "--listen needs a value") != NULL);
    char *a4[] = { "serve", "positional", NULL };
    cr_expect_eq(parse(2, a4, err), -1);
    char *a5[] = { "serve", "--word", "abc", NULL };
    cr_expect_eq(parse(3, a5, err), -1);
    cr_expect_str_eq(err, "--word: upper case only");
    setenv("INFERENCE_OPERATOR_FLAG", "maybe", 1);
    char *a6[] = { "serve", NULL };
    cr_expect_eq(parse(1, a6, err), -1);
    cr_expect(strstr(err, "$INFERENCE_OPERATOR_FLAG") != NULL, "%s", err);
    unsetenv("INFERENCE_OPERATOR_FLAG");
    char *a7[] = { "serve", "--threads", "3x", NULL };
    cr_expect_eq(parse(3, a7, err), -1);
}

Test(cli, listen_addresses)
{
    struct sockaddr_storage ss;
    char err[256];
    cr_assert_eq(srv_parse_listen("127.0.0.1:9443", &ss, err, sizeof(err)), 0);
    cr_expect_eq(ss.ss_family, AF_INET);
    cr_expect_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9443);
    cr_assert_eq(srv_parse_listen("[::1]:0", &ss, err, sizeof(err)), 0);
    cr_expect_eq(ss.ss_family, AF_INET6);
    cr_assert_eq(srv_parse_listen(":8443", &ss, err, sizeof(err)), 0);
    cr_expect_eq(ss.ss_family, AF_INET);
    cr_expect_eq(srv_parse_listen("localhost:1", &ss, err, sizeof(err)), -1);
    cr_expect_eq(srv_parse_listen("1.2.3.4", &ss, err, sizeof(err)), -1);
    cr_expect_eq(srv_parse_listen("1.2.3.4:70000", &ss, err, sizeof(err)), -1);
    cr_expect_eq(srv_parse_listen("1.2.3.4:", &ss, err, sizeof(err)), -1);
    cr_expect(strstr(err, "expected IPv4:PORT") != NULL);
}

Test(log, json_lines_escape_and_type_fields)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    log_set_fd(fds[1]);
    log_set_level(LOG_INFO);
    log_debug("hidden");
    log_info("hello \"world\"\n", LF_STR("k", "v\x01"), LF_INT("n", -3),
             LF_BOOL("b", 1));
    log_info("bare");
    log_set_fd(2);
    close(fds[1]);
    char buf[1024] = { 0 };
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    cr_assert_gt(n, 0);
    cr_expect_null(strstr(buf, "hidden"));
    char *second = strchr(buf, '\n');
    cr_assert_not_null(second);
    *second++ = '\0';
    cr_expect(strstr(buf, "\"level\":\"info\",\"msg\":\"hello \\\"world\\\"\\n\","
                          "\"k\":\"v\\u0001\",\"n\":-3,\"b\":true}") != NULL, "%s", buf);
    cr_expect(strncmp(buf, "{\"ts\":\"", 7) == 0);
    cr_expect(strstr(second, "\"msg\":\"bare\"}\n") != NULL, "%s", second);
}

Test(log, long_values_are_cut_not_overflowed)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    size_t big = LOG_LINE_MAX * 2;
    char *v = malloc(big + 1);
    memset(v, 'x', big);
    v[big] = '\0';
    log_set_fd(fds[1]);
    log_info("big", LF_STR("v", v), LF_INT("after", 1));
    log_set_fd(2);
    close(fds[1]);
    char *buf = calloc(1, LOG_LINE_MAX * 2);
    ssize_t n = read(fds[0], buf, LOG_LINE_MAX * 2 - 1);
    close(fds[0]);
    cr_assert_gt(n, 0);
    cr_expect_leq((size_t)n, LOG_LINE_MAX);
    cr_expect_eq(buf[n - 1], '\n');
    cr_expect_eq(buf[n - 2], '}');
    cr_expect(strstr(buf, "...") != NULL);
    free(v);
    free(buf);
}
