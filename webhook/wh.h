/*
 * wh.h — the admission webhook as the server sees it: bytes of an
 * AdmissionReview in, bytes of the answer out.  Pure: no I/O, no global
 * state, safe to call from any number of threads at once.
 *
 *   body ──▶ wh_review_decode ──▶ rules (isvc_rules) / defaults (wh_mutate)
 *        ──▶ response (this file's wh_admit)
 */
#ifndef WH_H
#define WH_H

#include <stdbool.h>
#include <stddef.h>

#include "isvc_fields.h"
#include "isvc_rules.h"
#include "wh_review.h"

enum wh_kind { WH_VALIDATE, WH_MUTATE };

struct wh_result {
    int http_status;        /* 200 for any answered review, else 4xx       */
    char *body;             /* owned; JSON review, or a one-line reason    */
    size_t body_len;
    const char *content_type;
    bool allowed;
    bool patched;
    enum wh_operation operation;
    /* For the denial metrics: how many errors of each reason, and whether
     * the denial was about the request rather than the object. */
    unsigned denials[ISVC_REASON_COUNT];
    bool denied_request;
};

/*
 * Answer one admission request.  Returns 0 with out filled (free it with
 * wh_result_free), or -1 only when memory ran out (answer 500).
 */
int wh_admit(enum wh_kind kind, const struct isvc_rules *rules,
             const char *body, size_t len, struct wh_result *out);

void wh_result_free(struct wh_result *r);

#endif
