/*
 * kube_config_util.c — the file, temp-dir and name helpers behind
 * kube_config.c.  See kube_config_internal.h.
 */
#include "kube_config.h"
#include "kube_config_internal.h"

#include "kname.h"
#include "wholefile.h"

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

/* A wholefile failure, worded as every message here: the path first. */
static int file_fail(enum wholefile_result r, const char *path, size_t max,
                     int e, char *err, size_t errlen)
{
    switch (r) {
    case WHOLEFILE_NOT_REGULAR:
        return kcfg_fail(err, errlen, "%s: not a regular file", path);
    case WHOLEFILE_NO_MEMORY:
        return kcfg_fail(err, errlen, "%s: out of memory", path);
    case WHOLEFILE_TOO_LARGE:
        return kcfg_fail(err, errlen, "%s: larger than %zu bytes", path, max);
    case WHOLEFILE_OK:
    case WHOLEFILE_OPEN:
    case WHOLEFILE_STAT:
    case WHOLEFILE_READ:
        break;
    }
    return kcfg_fail(err, errlen, "%s: %s", path, strerror(e));
}

int kcfg_read_file(const char *path, size_t max, char **out, size_t *len,
                   char *err, size_t errlen)
{
    int e = 0;
    enum wholefile_result r = wholefile_read(path, max, out, len, &e);
    if (r != WHOLEFILE_OK)
        return file_fail(r, path, max, e, err, errlen);
    return 0;
}

int kcfg_check_file(const char *path, char *err, size_t errlen)
{
    int fd, e = 0;
    struct stat st;
    enum wholefile_result r = wholefile_open_regular(path, &fd, &st, &e);
    if (r != WHOLEFILE_OK)
        return file_fail(r, path, 0, e, err, errlen);
    close(fd);
    if (st.st_size > KUBE_CONFIG_FILE_MAX)
        return file_fail(WHOLEFILE_TOO_LARGE, path, KUBE_CONFIG_FILE_MAX, 0,
                         err, errlen);
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
    int rc = wholefile_write(fd, data, len);
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
    return kname_valid(s, KUBE_NAMESPACE_MAX - 1, false);
}
