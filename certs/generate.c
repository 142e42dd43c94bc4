/*
 * generate.c — certs_generate(): keep a good set, else mint and write a
 * new one.  See certs.h.
 */
#include "certs.h"

#include "existing.h"
#include "fileio.h"
#include "mint.h"
#include "names.h"

#include <stdio.h>
#include <time.h>

#define WHY_MAX 512

static int check_request(const struct certs_request *req,
                         enum certs_outcome *outcome, char *err, size_t errlen)
{
    if (req == NULL || outcome == NULL || req->out_dir == NULL ||
        req->out_dir[0] == '\0') {
        snprintf(err, errlen, "an output directory is required");
        return -1;
    }
    if (req->days < CERTS_DAYS_MIN || req->days > CERTS_DAYS_MAX) {
        snprintf(err, errlen, "validity must be %d..%d days, not %d",
                 CERTS_DAYS_MIN, CERTS_DAYS_MAX, req->days);
        return -1;
    }
    return 0;
}

/* Three renames cannot be one atomic step: a reader in between sees a
 * mismatched pair and refuses it (a store keeps serving the old one), and
 * a crash in between leaves a set the next run finds invalid and
 * replaces. */
static int write_set(const char *dir, const struct certs_minted *m, char *err,
                     size_t errlen)
{
    if (certs_file_replace(dir, CERTS_KEY_FILE, m->key_pem.data,
                           m->key_pem.size, 0600, err, errlen) != 0 ||
        certs_file_replace(dir, CERTS_CERT_FILE, m->cert_pem.data,
                           m->cert_pem.size, 0644, err, errlen) != 0 ||
        certs_file_replace(dir, CERTS_CA_FILE, m->ca_pem.data, m->ca_pem.size,
                           0644, err, errlen) != 0)
        return -1;
    return certs_dir_sync(dir, err, errlen);
}

int certs_generate(const struct certs_request *req,
                   enum certs_outcome *outcome, char *err, size_t errlen)
{
    struct certs_names names;
    struct certs_minted minted;
    char why[WHY_MAX];
    time_t now = time(NULL);

    if (check_request(req, outcome, err, errlen) != 0 ||
        certs_names_parse(req, &names, err, errlen) != 0 ||
        certs_dir_ensure(req->out_dir, err, errlen) != 0)
        return -1;
    if (!req->force) {
        switch (certs_set_examine(req->out_dir, &names, now, why, sizeof why)) {
        case CERTS_SET_VALID:
            *outcome = CERTS_KEPT;
            return 0;
        case CERTS_SET_UNCOVERED:
            snprintf(err, errlen,
                     "%s already holds a valid certificate set that does not "
                     "cover %s; pass --force to replace it (this makes a new "
                     "CA, so every caBundle must be updated)",
                     req->out_dir, why);
            return -1;
        case CERTS_SET_INVALID:
            break;
        }
    }
    if (certs_mint(&names, req->days, now, &minted, err, errlen) != 0)
        return -1;
    int rc = write_set(req->out_dir, &minted, err, errlen);
    certs_minted_free(&minted);
    if (rc != 0)
        return -1;
    *outcome = CERTS_CREATED;
    return 0;
}
