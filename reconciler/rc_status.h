/*
 * rc_status.h — an InferenceService's status, derived from its spec and
 * its Deployment by a pure function (time is an argument).
 *
 * Status must not lie (KServe's most common complaint is Ready=True while
 * pods crash): Ready is True only when the Deployment has observed the
 * current template and every desired replica is updated and ready.  A
 * Deployment that failed (ProgressDeadlineExceeded, ReplicaFailure) makes
 * Ready=False and Degraded=True with its reason and message.
 *
 * Pods come next (rc_pods.c keeps the problems of the pods our
 * Deployments own): any live pod with a problem (unschedulable,
 * crash-looping, image not pullable, ...) makes Ready=False and
 * Degraded=True with that problem as reason and message, even when the
 * Deployment's counters have not caught up — the Deployment only says
 * "0/1 ready", the pod says why.  Precedence: an invalid spec, then a
 * blocked apply, then a missing Deployment, then the pod problem for
 * Ready/Degraded (it is the more specific "why"; a failed Deployment
 * still makes the phase Failed and Progressing=False with its reason).
 *
 * Conditions follow the API conventions: type, status True/False/Unknown,
 * CamelCase reason, message, observedGeneration, and a lastTransitionTime
 * that moves only when the status of that condition changes.
 */
#ifndef RC_STATUS_H
#define RC_STATUS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum rc_cond_type { RC_COND_READY, RC_COND_PROGRESSING, RC_COND_DEGRADED,
                    RC_COND_COUNT };

/* What the cache keeps of each condition the object already has. */
struct rc_cond_prev {
    char status;          /* 'T', 'F', 'U', or 0 when absent */
    int64_t since;        /* lastTransitionTime, Unix seconds */
};

#define RC_REASON_MAX 64
#define RC_MESSAGE_MAX 256

/* One condition of the Deployment (Available, Progressing, ReplicaFailure). */
struct rc_dep_cond {
    char status;          /* 'T', 'F', 'U', or 0 when absent */
    char reason[RC_REASON_MAX];
    char message[RC_MESSAGE_MAX];
};

/* What status needs of the Deployment. */
struct rc_dep_state {
    bool exists;
    long long generation, observed_generation;
    long long spec_replicas;
    long long replicas, ready, available, updated;
    struct rc_dep_cond available_cond, progressing_cond, failure_cond;
};

/*
 * What is wrong with a pod, worst first: when several pods have problems
 * the one reported is the worst, ties broken by pod name, so the reason
 * and message do not flip between pods from one reconcile to the next.
 * Config and image problems come first (they need the user to change
 * something), then crashes, then scheduling (capacity, which may clear up
 * by itself).
 */
enum rc_pod_problem {
    RC_POD_OK = 0,
    RC_POD_CREATE_CONFIG_ERROR,   /* CreateContainerConfigError       */
    RC_POD_INVALID_IMAGE,         /* InvalidImageName                  */
    RC_POD_IMAGE_PULL_BACKOFF,    /* ImagePullBackOff                  */
    RC_POD_ERR_IMAGE_PULL,        /* ErrImagePull                      */
    RC_POD_CREATE_ERROR,          /* CreateContainerError              */
    RC_POD_RUN_ERROR,             /* RunContainerError                 */
    RC_POD_CRASH_LOOP,            /* CrashLoopBackOff                  */
    RC_POD_FAILED,                /* phase Failed (e.g. Evicted)       */
    RC_POD_UNSCHEDULABLE,         /* PodScheduled=False, Unschedulable */
    RC_POD_PROBLEM_COUNT
};

/* The condition reason for a problem ("Unschedulable", "CrashLoopBackOff",
 * ...; "PodFailed" for RC_POD_FAILED), "" for RC_POD_OK. */
const char *rc_pod_problem_reason(enum rc_pod_problem p);

/* Longest problem message kept per pod, NUL included. */
#define RC_POD_MESSAGE_MAX RC_MESSAGE_MAX

/* The pods of one InferenceService, as status needs them. */
struct rc_pod_summary {
    unsigned pods, ready;             /* live (not terminating) pods     */
    unsigned problems;                /* live pods with a problem        */
    enum rc_pod_problem problem;      /* the worst, or RC_POD_OK         */
    char message[RC_POD_MESSAGE_MAX]; /* its message                     */
};

struct rc_status_input {
    long long generation;              /* the InferenceService's           */
    long long desired_replicas;
    bool spec_valid;
    const char *invalid_message;       /* when !spec_valid                 */
    /* Something outside the spec blocks progress (e.g. the Deployment's
     * name is taken by an object we do not control): Pending, Ready=False,
     * Degraded=True with this reason and message.  NULL when nothing does. */
    const char *blocked_reason;
    const char *blocked_message;
    const char *endpoint;
    const char *selector;
    const struct rc_dep_state *dep;
    const struct rc_pod_summary *pods; /* NULL: no pod information       */
    struct rc_cond_prev prev[RC_COND_COUNT];
    int64_t now;                       /* Unix seconds                     */
};

const char *rc_cond_name(enum rc_cond_type t);

/* The status object for a /status merge patch (caller frees), or NULL. */
cJSON *rc_status_build(const struct rc_status_input *in);

/* The phase rc_status_build would write (for logs and tests). */
const char *rc_status_phase(const struct rc_status_input *in);

/* Read "2026-01-02T03:04:05Z" (RFC 3339, UTC or offset). -1 if bad. */
int64_t rc_time_parse(const char *s);
void rc_time_format(int64_t t, char *out, size_t cap);

#endif
