/*
 * existing.h — judging a certificate set already in the output dir.
 * Internal to certs/.
 */
#ifndef CERTS_EXISTING_H
#define CERTS_EXISTING_H

#include "names.h"

#include <time.h>

enum certs_set_state {
    CERTS_SET_INVALID,    /* absent, partial, broken or expiring: replace */
    CERTS_SET_VALID,      /* valid and covers every requested name: keep */
    CERTS_SET_UNCOVERED,  /* valid but misses a name: only with --force */
};

/* Reads dir's ca.crt, tls.crt, tls.key and says what they are worth for
 * names at time now; why (for INVALID and UNCOVERED) says what is wrong
 * or which name is missing. */
enum certs_set_state certs_set_examine(const char *dir,
                                       const struct certs_names *names,
                                       time_t now, char *why, size_t whylen);

#endif
