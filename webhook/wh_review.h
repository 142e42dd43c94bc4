/*
 * wh_review.h — decoding an admission.k8s.io/v1 AdmissionReview.
 *
 * The body comes from the network: it is parsed with a size already capped
 * by the server, every field is type-checked, and nothing is assumed to
 * exist.  A body that cannot be a review at all (not JSON, no request, no
 * uid) is reported as such so the server can answer 400; anything with a
 * uid is answered with a review, even when the answer is "denied".
 */
#ifndef WH_REVIEW_H
#define WH_REVIEW_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define WH_REVIEW_API_VERSION "admission.k8s.io/v1"
#define WH_REVIEW_KIND "AdmissionReview"
/* A uid is a UUID in practice; bound it so a hostile one cannot bloat
 * the echo in the response. */
#define WH_UID_MAX 128

enum wh_operation {
    WH_OP_CREATE,
    WH_OP_UPDATE,
    WH_OP_DELETE,
    WH_OP_CONNECT,
    WH_OP_UNKNOWN
};

struct wh_review {
    cJSON *root;                 /* owned: the whole parsed body       */
    const char *api_version;     /* borrowed from root (may be wrong)  */
    const char *uid;
    enum wh_operation operation;
    const char *group;           /* request.resource.group             */
    const char *resource;        /* request.resource.resource          */
    const char *sub_resource;    /* "" or "scale"                      */
    bool dry_run;
    const cJSON *object;         /* may be NULL (DELETE)               */
    const cJSON *old_object;     /* may be NULL (CREATE)               */
};

/*
 * Parse body[0..len) into review.  Returns 0 when the body is a review
 * with a uid (review->root then owned by the caller: wh_review_free), or
 * -1 with a one-line reason in err when it cannot be answered as one.
 */
int wh_review_decode(const char *body, size_t len, struct wh_review *review,
                     char *err, size_t errlen);

void wh_review_free(struct wh_review *review);

const char *wh_operation_name(enum wh_operation op);

#endif
