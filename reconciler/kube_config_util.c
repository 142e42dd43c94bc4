/*
 * kube_config_util.c — the file, temp-dir and name helpers behind
 * kube_config.c.  See kube_config_internal.h.
 */
#include "kube_config.h"
#include "kube_config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KCFG_TMP_PREFIX "inference-operator-kube-"
#define KCFG_TMP_DEFAULT "/tmp"

int kcfg_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int kcfg_copy(char *dst, size_t cap, const char *src, const char *what,
              char *err, size_t errlen)
{
    size_t n = strlen(src);
    if (n >= cap)
        return kcfg_fail(err, errlen, "%s is too long (%zu bytes, at most %zu)",
                         what, n, cap - 1);
    memcpy(dst, src, n + 1);
    return 0;
}

/* ---- files ------------------------------------------------------------ */

static int open_regular(const char *path, int *fd_out, char *err,
                        size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer
     * forever, before fstat could say it is not a file; reads from a
     * regular file ignore the flag. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return kcfg_fail(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kcfg_fail(err, errlen, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kcfg_fail(err, errlen, "%s: not a regular file", path);
    }
    *fd_out = fd;
    return 0;
}

static int read_all(int fd, char *buf, size_t cap, size_t *got)
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

int kcfg_read_file(const char *path, size_t max, char **out, size_t *len,
                   char *err, size_t errlen)
{
    *out = NULL;
    *len = 0;
    int fd;
    if (open_regular(path, &fd, err, errlen) != 0)
        return -1;
    /* Reading one byte past max tells "too big" from "exactly max"
     * whatever st_size said, e.g. for a file still being written. */
    char *buf = malloc(max + 2);
    if (buf == NULL) {
        close(fd);
        return kcfg_fail(err, errlen, "%s: out of memory", path);
    }
    size_t got = 0;
    int rc = read_all(fd, buf, max + 1, &got);
    int e = errno;
    close(fd);
    if (rc != 0 || got > max) {
        explicit_bzero(buf, got);   /* it may hold a key or a token */
        free(buf);
        if (rc != 0)
            return kcfg_fail(err, errlen, "%s: %s", path, strerror(e));
        return kcfg_fail(err, errlen, "%s: larger than %zu bytes", path, max);
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

int kcfg_check_file(const char *path, char *err, size_t errlen)
{
    int fd;
    if (open_regular(path, &fd, err, errlen) != 0)
        return -1;
    struct stat st;
    int rc = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (rc != 0)
        return kcfg_fail(err, errlen, "%s: %s", path, strerror(e));
    if (st.st_size > KUBE_CONFIG_FILE_MAX)
        return kcfg_fail(err, errlen, "%s: larger than %d bytes", path,
                         KUBE_CONFIG_FILE_MAX);
    return 0;
}

/* $TMPDIR if it is an absolute path to a directory, else /tmp. */
static const char *tmp_base(void)
{
    const char *t = getenv("TMPDIR");
    struct stat st;
    if (t == NULL || t[0] != '/' || stat(t, &st) != 0 || !S_ISDIR(st.st_mode))
        return KCFG_TMP_DEFAULT;
    return t;
}

int kcfg_tmpdir_create(char *dir, size_t cap, char *err, size_t errlen)
{
    const char *base = tmp_base();
    int n = snprintf(dir, cap, "%s/" KCFG_TMP_PREFIX "XXXXXX", base);
    if (n < 0 || (size_t)n >= cap) {
        dir[0] = '\0';
        return kcfg_fail(err, errlen, "temp dir path under %s is too long",
                         base);
    }
    /* mkdtemp creates the directory with mode 0700. */
    if (mkdtemp(dir) == NULL) {
        int e = errno;
        dir[0] = '\0';
        return kcfg_fail(err, errlen,
                         "cannot create a private temp dir under %s: %s "
                         "(set TMPDIR to a writable directory)",
                         base, strerror(e));
    }
    return 0;
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

int kcfg_write_private(const char *dir, const char *name, const void *data,
                       size_t len, char *path, size_t cap, char *err,
                       size_t errlen)
{
    int n = snprintf(path, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        path[0] = '\0';
        return kcfg_fail(err, errlen, "path %s/%s is too long", dir, name);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  S_IRUSR | S_IWUSR);
    if (fd < 0) {
        int e = errno;
        path[0] = '\0';
        return kcfg_fail(err, errlen, "cannot create %s/%s: %s", dir, name,
                         strerror(e));
    }
    int rc = write_all(fd, data, len);
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        unlink(path);
        path[0] = '\0';
        return kcfg_fail(err, errlen, "cannot write %s/%s: %s", dir, name,
                         strerror(e));
    }
    return 0;
}

/* ---- names ------------------------------------------------------------ */

bool kcfg_namespace_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KUBE_NAMESPACE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i < n - 1))
            return false;
    }
    return true;
}
