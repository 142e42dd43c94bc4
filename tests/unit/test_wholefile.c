/*
 * test_wholefile.c — server/wholefile: the size bound read past st_size,
 * what is not a regular file (a FIFO refused without blocking), what each
 * failure reports (certs/ and the kubeconfig code word their messages
 * from it), and writes that finish.
 */
#include <criterion/criterion.h>

#include "wholefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_T 512
#define FILE_MAX 64

static char root[PATH_T];

static void make_root(void)
{
    snprintf(root, sizeof root, "/tmp/wholefile-test-XXXXXX");
    cr_assert_not_null(mkdtemp(root), "%s", strerror(errno));
}

/* The tests make only plain entries (files, a link, a FIFO) in root. */
static void remove_root(void)
{
    DIR *d = opendir(root);
    cr_assert_not_null(d, "%s: %s", root, strerror(errno));
    struct dirent *e;
    char p[PATH_T * 2];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(p, sizeof p, "%s/%s", root, e->d_name);
        cr_assert(n > 0 && (size_t)n < sizeof p, "path too long");
        cr_assert_eq(unlink(p), 0, "%s: %s", p, strerror(errno));
    }
    closedir(d);
    cr_assert_eq(rmdir(root), 0, "%s: %s", root, strerror(errno));
}

TestSuite(wholefile, .init = make_root, .fini = remove_root);

static void path_of(char *out, const char *name)
{
    int n = snprintf(out, PATH_T, "%s/%s", root, name);
    cr_assert(n > 0 && n < PATH_T, "path too long");
}

static void put(const char *path, size_t n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    cr_assert_eq(fclose(f), 0);
}

Test(wholefile, exactly_max_fits_one_more_does_not)
{
    char p[PATH_T];
    path_of(p, "f");
    put(p, FILE_MAX);
    char *buf;
    size_t len;
    int e = -1;
    cr_assert_eq(wholefile_read(p, FILE_MAX, &buf, &len, &e), WHOLEFILE_OK);
    cr_assert_eq(len, FILE_MAX);
    cr_assert_eq(buf[len], '\0');
    cr_assert_eq(strncmp(buf, "abcdefghijklmnopqrstuvwxyzabcdef", 32), 0);
    free(buf);
    cr_assert_eq(wholefile_read(p, FILE_MAX - 1, &buf, &len, &e),
                 WHOLEFILE_TOO_LARGE);
    cr_assert_null(buf);
    cr_assert_eq(len, 0);
}

Test(wholefile, empty_file)
{
    char p[PATH_T];
    path_of(p, "empty");
    put(p, 0);
    char *buf;
    size_t len;
    int e;
    cr_assert_eq(wholefile_read(p, 0, &buf, &len, &e), WHOLEFILE_OK);
    cr_assert_eq(len, 0);
    cr_assert_eq(buf[0], '\0');
    free(buf);
}

Test(wholefile, missing_file_says_why)
{
    char p[PATH_T];
    path_of(p, "absent");
    char *buf;
    size_t len;
    int e = 0;
    cr_assert_eq(wholefile_read(p, FILE_MAX, &buf, &len, &e), WHOLEFILE_OPEN);
    cr_assert_eq(e, ENOENT);
    cr_assert_null(buf);
}

Test(wholefile, symlink_is_followed)
{
    char p[PATH_T], link[PATH_T];
    path_of(p, "target");
    path_of(link, "link");
    put(p, 3);
    cr_assert_eq(symlink(p, link), 0, "%s", strerror(errno));
    char *buf;
    size_t len;
    int e;
    cr_assert_eq(wholefile_read(link, FILE_MAX, &buf, &len, &e), WHOLEFILE_OK);
    cr_assert_str_eq(buf, "abc");
    free(buf);
}

/* The timeout turns a FIFO open that blocks into a failure, not a hang. */
Test(wholefile, only_regular_files, .timeout = 20)
{
    char fifo[PATH_T];
    path_of(fifo, "fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0, "%s", strerror(errno));
    const char *not_files[] = {root, fifo, "/dev/null"};
    for (size_t i = 0; i < sizeof not_files / sizeof not_files[0]; i++) {
        char *buf;
        size_t len;
        int e;
        cr_assert_eq(wholefile_read(not_files[i], FILE_MAX, &buf, &len, &e),
                     WHOLEFILE_NOT_REGULAR, "%s", not_files[i]);
        cr_assert_null(buf);
        int fd;
        struct stat st;
        cr_assert_eq(wholefile_open_regular(not_files[i], &fd, &st, &e),
                     WHOLEFILE_NOT_REGULAR, "%s", not_files[i]);
        cr_assert_eq(fd, -1);
    }
}

Test(wholefile, open_regular_hands_over_the_descriptor)
{
    char p[PATH_T];
    path_of(p, "f");
    put(p, 10);
    int fd, e;
    struct stat st;
    cr_assert_eq(wholefile_open_regular(p, &fd, &st, &e), WHOLEFILE_OK);
    cr_assert_geq(fd, 0);
    cr_assert_eq(st.st_size, 10);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "not close-on-exec");
    cr_assert_eq(close(fd), 0);
}

Test(wholefile, write_finishes_and_reads_back)
{
    char p[PATH_T];
    path_of(p, "written");
    static unsigned char data[256 * 1024];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "%s", strerror(errno));
    cr_assert_eq(wholefile_write(fd, data, sizeof data), 0, "%s",
                 strerror(errno));
    cr_assert_eq(close(fd), 0);
    char *buf;
    size_t len;
    int e;
    cr_assert_eq(wholefile_read(p, sizeof data, &buf, &len, &e),
                 WHOLEFILE_OK);
    cr_assert_eq(len, sizeof data);
    cr_assert_eq(memcmp(buf, data, len), 0);
    free(buf);
    cr_assert_eq(wholefile_write(fd, data, 1), -1, "a closed descriptor");
    cr_assert_eq(errno, EBADF);
    cr_assert_eq(wholefile_write(-1, NULL, 0), 0, "nothing to write");
}
