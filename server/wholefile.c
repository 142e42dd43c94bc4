/*
 * wholefile.c — bounded whole-file reads, complete writes.  See
 * wholefile.h.
 */
#include "wholefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum wholefile_result wholefile_open_regular(const char *path, int *fd,
                                             struct stat *st, int *err_no)
{
    *fd = -1;
    *err_no = 0;
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer
     * forever, before fstat could say it is not a file; reads from a
     * regular file ignore the flag. */
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f < 0) {
        *err_no = errno;
        return WHOLEFILE_OPEN;
    }
    if (fstat(f, st) != 0) {
        *err_no = errno;
        close(f);
        return WHOLEFILE_STAT;
    }
    if (!S_ISREG(st->st_mode)) {
        close(f);
        return WHOLEFILE_NOT_REGULAR;
    }
    *fd = f;
    return WHOLEFILE_OK;
}

/* Reads until cap bytes or the end.  Returns 0, or -1 with errno. */
static int read_up_to(int fd, char *buf, size_t cap, size_t *got)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *got = n;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return 0;
}

enum wholefile_result wholefile_read(const char *path, size_t max,
                                     char **out, size_t *len, int *err_no)
{
    *out = NULL;
    *len = 0;
    int fd;
    struct stat st;
    enum wholefile_result r = wholefile_open_regular(path, &fd, &st, err_no);
    if (r != WHOLEFILE_OK)
        return r;
    /* One byte past max tells "too big" from "exactly max"; one more
     * holds the NUL. */
    char *buf = max <= SIZE_MAX - 2 ? malloc(max + 2) : NULL;
    if (buf == NULL) {
        close(fd);
        return WHOLEFILE_NO_MEMORY;
    }
    size_t got = 0;
    int rc = read_up_to(fd, buf, max + 1, &got);
    *err_no = rc != 0 ? errno : 0;
    close(fd);
    if (rc != 0 || got > max) {
        explicit_bzero(buf, got);   /* it may hold a key or a token */
        free(buf);
        return rc != 0 ? WHOLEFILE_READ : WHOLEFILE_TOO_LARGE;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return WHOLEFILE_OK;
}

int wholefile_write(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
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
