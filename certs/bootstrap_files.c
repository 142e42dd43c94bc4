/*
 * bootstrap_files.c — the Secret's pair into the cert dir, touching only
 * files whose bytes differ.  See bootstrap.h.
 */
#include "bootstrap.h"

#include "fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_TEXT_MAX 512

enum certs_file_match certs_bootstrap_file_match(const char *dir, const char *name,
                                                 const struct certs_bootstrap_blob *b)
{
    char path[CERTS_PATH_MAX], ignored[ERR_TEXT_MAX];
    unsigned char *have = NULL;
    size_t len = 0;
    if (certs_path_join(path, sizeof path, dir, name, ignored,
                        sizeof ignored) != 0 ||
        certs_file_read(path, CERTS_BOOTSTRAP_DATA_MAX, &have, &len, ignored,
                        sizeof ignored) != 0)
        return CERTS_FILE_UNREADABLE;
    bool same = len == b->len && memcmp(have, b->data, len) == 0;
    explicit_bzero(have, len);
    free(have);
    return same ? CERTS_FILE_SAME : CERTS_FILE_DIFFERS;
}

int certs_bootstrap_write_files(const char *dir,
                                const struct certs_bootstrap_material *m,
                                bool *changed, char *err, size_t errlen)
{
    /* The key first: a reader between the renames sees a mismatched pair
     * and keeps serving the old one (certs_store refuses it), then the
     * next event brings the matching certificate. */
    static const struct {
        enum certs_bootstrap_item item;
        const char *file;
        mode_t mode;
    } files[] = {
        {CERTS_BOOTSTRAP_TLS_KEY, CERTS_KEY_FILE, 0600},
        {CERTS_BOOTSTRAP_TLS_CRT, CERTS_CERT_FILE, 0644},
        {CERTS_BOOTSTRAP_CA_CRT, CERTS_CA_FILE, 0644},
    };
    *changed = false;
    if (certs_dir_ensure(dir, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const struct certs_bootstrap_blob *b = &m->item[files[i].item];
        if (b->data == NULL || b->len == 0) {
            snprintf(err, errlen, "no %s to write",
                     certs_bootstrap_item_key(files[i].item));
            return -1;
        }
        /* A missing or unreadable file is written too. */
        if (certs_bootstrap_file_match(dir, files[i].file, b) == CERTS_FILE_SAME)
            continue;
        if (certs_file_replace(dir, files[i].file, b->data, b->len,
                               files[i].mode, err, errlen) != 0)
            return -1;
        *changed = true;
    }
    return *changed ? certs_dir_sync(dir, err, errlen) : 0;
}
