/*
 * wholefile.h — a whole file in, a whole buffer out: the read with a size
 * cap behind the certificate files (certs/) and the kubeconfig, token and
 * namespace files (reconciler/), and the write that finishes what short
 * writes leave.  Each caller words failures its own way, so these return
 * what failed (and errno), never a message.
 *
 * Only regular files are read (symlinks followed, as in a Secret or a
 * ServiceAccount mount), and the open is O_NONBLOCK so that a FIFO at the
 * path cannot block before the check.  The size is bounded by reading one
 * byte past the limit, never by trusting st_size: the file may be growing.
 */
#ifndef SRV_WHOLEFILE_H
#define SRV_WHOLEFILE_H

#include <stddef.h>
#include <sys/stat.h>

enum wholefile_result {
    WHOLEFILE_OK = 0,
    WHOLEFILE_OPEN,          /* open(2) failed; *err_no says why */
    WHOLEFILE_STAT,          /* fstat(2) failed; *err_no says why */
    WHOLEFILE_NOT_REGULAR,   /* a directory, FIFO, device or socket */
    WHOLEFILE_NO_MEMORY,
    WHOLEFILE_READ,          /* read(2) failed; *err_no says why */
    WHOLEFILE_TOO_LARGE,     /* more than max bytes */
};

/* Opens path for reading (O_CLOEXEC) and checks that it is a regular
 * file.  On WHOLEFILE_OK, *fd is open (the caller closes it) and *st
 * describes it; otherwise nothing is left open.  *err_no is set for the
 * results that carry one. */
enum wholefile_result wholefile_open_regular(const char *path, int *fd,
                                             struct stat *st, int *err_no);

/* Reads the regular file at path, at most max bytes, into *out, malloc'd
 * with a NUL after the *len bytes (not counted); the caller frees it, and
 * wipes it first if it held a secret.  On failure *out is NULL, *len 0,
 * and whatever was read is wiped. */
enum wholefile_result wholefile_read(const char *path, size_t max,
                                     char **out, size_t *len, int *err_no);

/* Writes all len bytes of data to fd, through short writes and EINTR.
 * Returns 0, or -1 with errno (some bytes may have been written). */
int wholefile_write(int fd, const void *data, size_t len);

#endif
