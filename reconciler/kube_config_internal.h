/*
 * kube_config_internal.h — helpers shared by the kube_config*.c files
 * (bounded file reads, private temp files, names).  Not part of the
 * kube_config.h contract; the kubeconfig fuzz target uses it directly.
 */
#ifndef KUBE_CONFIG_INTERNAL_H
#define KUBE_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* Long enough for any message this module builds; longer is truncated. */
#define KCFG_MSG_MAX 1024

/* The files inline *-data is written to, inside kube_config.tmp_dir. */
#define KCFG_CA_NAME "ca.crt"
#define KCFG_CERT_NAME "client.crt"
#define KCFG_KEY_NAME "client.key"

/* Writes a message into err (if err and errlen allow).  Returns -1. */
int kcfg_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Copies src into dst[cap], or fails naming what was too long.
 * Returns 0 or -1 with err.
 */
int kcfg_copy(char *dst, size_t cap, const char *src, const char *what,
              char *err, size_t errlen);

/*
 * Reads a regular file (symlinks followed) of at most max bytes into a
 * malloc'd, NUL-terminated buffer the caller frees (wholefile_read).
 * Messages start with the path: "/x: No such file or directory".
 * Returns 0 or -1 with err.
 */
int kcfg_read_file(const char *path, size_t max, char **out, size_t *len,
                   char *err, size_t errlen);

/*
 * Checks that path is a readable regular file of at most
 * KUBE_CONFIG_FILE_MAX bytes, so a typo fails at load and not on the
 * first request.  Messages start with the path.  Returns 0 or -1.
 */
int kcfg_check_file(const char *path, char *err, size_t errlen);

/*
 * Creates a private (0700) directory under $TMPDIR, else /tmp, and
 * writes its path into dir[cap].  Returns 0 or -1 with err.
 */
int kcfg_tmpdir_create(char *dir, size_t cap, char *err, size_t errlen);

/*
 * Writes data to dir/name, a new file (O_EXCL, O_NOFOLLOW) of mode 0600,
 * and its path into path[cap].  On failure nothing is left behind.
 * Returns 0 or -1 with err.
 */
int kcfg_write_private(const char *dir, const char *name, const void *data,
                       size_t len, char *path, size_t cap, char *err,
                       size_t errlen);

/* True if s is a valid namespace name (RFC 1123 label, <= 63 chars). */
bool kcfg_namespace_valid(const char *s);

/* Parses and validates a kubeconfig already read into memory. */
struct kube_config;
int kcfg_parse(const char *path, const char *buf, size_t len,
               const char *context, struct kube_config *out, char *err,
               size_t errlen);

#endif
