/*
 * fileio.c — bounded reads and atomic replaces.  See fileio.h.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int certs_path_join(char *out, size_t cap, const char *dir, const char *name,
                    char *err, size_t errlen)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "path %s/%s is longer than %d bytes", dir,
                 name, CERTS_PATH_MAX - 1);
        return -1;
    }
    return 0;
}

static int read_all(int fd, unsigned char *buf, size_t cap, size_t *got)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return 0;
}

int certs_file_read(const char *path, size_t max, unsigned char **out,
                    size_t *len, char *err, size_t errlen)
{
    /* O_NONBLOCK: a FIFO in the cert dir must not block the open before
     * the regular-file check below; regular files ignore the flag. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    /* One byte more than allowed tells "too big" from "exactly max",
     * whatever st_size claimed while the file was being written. */
    unsigned char *buf = malloc(max + 2);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading %s", path);
        close(fd);
        return -1;
    }
    size_t got = 0;
    int rc = read_all(fd, buf, max + 1, &got);
    int saved = errno;
    close(fd);
    if (rc != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(saved));
        free(buf);
        return -1;
    }
    if (got > max) {
        snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
        explicit_bzero(buf, got);   /* it may have been a key */
        free(buf);
        return -1;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static int mkdir_one(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        snprintf(err, errlen, "%s exists and is not a directory", path);
        return -1;
    }
    snprintf(err, errlen, "cannot create directory %s: %s", path,
             strerror(errno));
    return -1;
}

int certs_dir_ensure(const char *dir, char *err, size_t errlen)
{
    char buf[CERTS_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) {
        snprintf(err, errlen, "output directory must be 1..%d bytes long",
                 CERTS_PATH_MAX - 1);
        return -1;
    }
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        int rc = mkdir_one(buf, err, errlen);
        buf[i] = '/';
        if (rc != 0)
            return -1;
    }
    return mkdir_one(buf, err, errlen);
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static atomic_uint tmp_counter;

static int open_tmp(const char *dir, const char *name, char *tmp, size_t cap,
                    char *err, size_t errlen)
{
    for (int i = 0; i < CERTS_TMP_TRIES; i++) {
        int n = snprintf(tmp, cap, "%s/.%s.tmp.%ld.%u", dir, name,
                         (long)getpid(), atomic_fetch_add(&tmp_counter, 1));
        if (n < 0 || (size_t)n >= cap) {
            snprintf(err, errlen, "path %s/%s is too long", dir, name);
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
                      O_NOFOLLOW, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", tmp,
                     strerror(errno));
            return -1;
        }
    }
    snprintf(err, errlen, "cannot create a temporary file in %s", dir);
    return -1;
}

int certs_file_replace(const char *dir, const char *name, const void *data,
                       size_t len, mode_t mode, char *err, size_t errlen)
{
    char tmp[CERTS_PATH_MAX], dst[CERTS_PATH_MAX];
    if (certs_path_join(dst, sizeof dst, dir, name, err, errlen) != 0)
        return -1;
    int fd = open_tmp(dir, name, tmp, sizeof tmp, err, errlen);
    if (fd < 0)
        return -1;
    const char *what = "write";
    if (write_all(fd, data, len) != 0)
        goto fail;
    what = "chmod";
    if (fchmod(fd, mode) != 0)
        goto fail;
    what = "fsync";
    if (fsync(fd) != 0)
        goto fail;
    what = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0)
        goto fail;
    what = "rename";
    if (rename(tmp, dst) != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot %s %s: %s", what,
             strcmp(what, "rename") == 0 ? dst : tmp, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}

int certs_dir_sync(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot fsync directory %s: %s", dir,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}
