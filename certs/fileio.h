/*
 * fileio.h — the few file operations certs/ needs, all bounded and
 * crash-safe.  Internal to certs/.
 */
#ifndef CERTS_FILEIO_H
#define CERTS_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#define CERTS_PATH_MAX 4096
/* Temp names collide only with leftovers of a crashed run of the same
 * pid; a few retries step over them. */
#define CERTS_TMP_TRIES 16

/* Joins dir and name into out.  Returns 0, or -1 with err if too long. */
int certs_path_join(char *out, size_t cap, const char *dir, const char *name,
                    char *err, size_t errlen);

/* Reads a regular file (symlinks followed, as in a Secret mount) of at
 * most max bytes into a malloc'd buffer the caller frees; a NUL follows
 * the data (not counted in *len).  wholefile_read with this module's
 * messages ("cannot open /x: ...").  Returns 0, or -1 with err and *out
 * NULL. */
int certs_file_read(const char *path, size_t max, unsigned char **out,
                    size_t *len, char *err, size_t errlen);

/* mkdir -p; components it creates get mode 0700.  Returns 0 or -1. */
int certs_dir_ensure(const char *dir, char *err, size_t errlen);

/* Replaces dir/name with data atomically: a temp file in dir, created
 * O_EXCL with mode 0600 (so it is never readable by others while being
 * written), fsynced, chmod'ed to mode, renamed over name.  Call
 * certs_dir_sync() after the last replace so the renames survive a
 * crash.  Returns 0, or -1 with err (the temp file is removed). */
int certs_file_replace(const char *dir, const char *name, const void *data,
                       size_t len, mode_t mode, char *err, size_t errlen);

int certs_dir_sync(const char *dir, char *err, size_t errlen);

#endif
