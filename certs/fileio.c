/*
 * fileio.c — bounded reads and atomic replaces.  See fileio.h.
 */
#include "fileio.h"

#include "wholefile.h"

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

int certs_file_read(const char *path, size_t max, unsigned char **out,
                    size_t *len, char *err, size_t errlen)
{
    char *buf;
    int e = 0;
    switch (wholefile_read(path, max, &buf, len, &e)) {
    case WHOLEFILE_OK:
        *out = (unsigned char *)buf;
        return 0;
    case WHOLEFILE_OPEN:
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
        break;
    case WHOLEFILE_STAT:
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(e));
        break;
    case WHOLEFILE_NOT_REGULAR:
        snprintf(err, errlen, "%s is not a regular file", path);
        break;
    case WHOLEFILE_NO_MEMORY:
        snprintf(err, errlen, "out of memory reading %s", path);
        break;
    case WHOLEFILE_READ:
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        break;
    case WHOLEFILE_TOO_LARGE:
        snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
        break;
    }
    *out = NULL;
    return -1;
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
    if (wholefile_write(fd, data, len) != 0)
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
