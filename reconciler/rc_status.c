/*
 * rc_status.c — status derivation.  See rc_status.h.
 */
#include "rc_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cond_names[RC_COND_COUNT] = {
    "Ready", "Progressing", "Degraded",
};

static const char *const problem_reasons[RC_POD_PROBLEM_COUNT] = {
    [RC_POD_OK] = "",
    [RC_POD_CREATE_CONFIG_ERROR] = "CreateContainerConfigError",
    [RC_POD_INVALID_IMAGE] = "InvalidImageName",
    [RC_POD_IMAGE_PULL_BACKOFF] = "ImagePullBackOff",
    [RC_POD_ERR_IMAGE_PULL] = "ErrImagePull",
    [RC_POD_CREATE_ERROR] = "CreateContainerError",
    [RC_POD_RUN_ERROR] = "RunContainerError",
    [RC_POD_CRASH_LOOP] = "CrashLoopBackOff",
    [RC_POD_FAILED] = "PodFailed",
    [RC_POD_UNSCHEDULABLE] = "Unschedulable",
};

const char *rc_pod_problem_reason(enum rc_pod_problem p)
{
    return (p >= 0 && p < RC_POD_PROBLEM_COUNT) ? problem_reasons[p] : "";
}

const char *rc_cond_name(enum rc_cond_type t)
{
    return (t >= 0 && t < RC_COND_COUNT) ? cond_names[t] : "Unknown";
}

struct cond {
    char status;
    const char *reason;
    char message[RC_MESSAGE_MAX + 64];
};

struct verdict {
    const char *phase;
    struct cond c[RC_COND_COUNT];
};

static void set(struct cond *c, char status, const char *reason,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set(struct cond *c, char status, const char *reason,
                const char *fmt, ...)
{
    va_list ap;
    c->status = status;
    c->reason = reason;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
}

/* A Deployment that has given up: the progress deadline passed, or pods
 * cannot even be created (quota, admission). */
static bool failed(const struct rc_dep_state *d, const struct rc_dep_cond **why)
{
    if (d->progressing_cond.status == 'F' &&
        strcmp(d->progressing_cond.reason, "ProgressDeadlineExceeded") == 0) {
        *why = &d->progressing_cond;
        return true;
    }
    if (d->failure_cond.status == 'T') {
        *why = &d->failure_cond;
        return true;
    }
    return false;
}

static void decide(const struct rc_status_input *in, struct verdict *v)
{
    const struct rc_dep_state *d = in->dep;
    const struct rc_dep_cond *why;

    if (!in->spec_valid) {
        v->phase = "Failed";
        set(&v->c[RC_COND_READY], 'F', "InvalidSpec", "%s", in->invalid_message);
        set(&v->c[RC_COND_PROGRESSING], 'F', "InvalidSpec",
            "the spec breaks the admission rules; fix it to deploy");
        set(&v->c[RC_COND_DEGRADED], 'T', "InvalidSpec", "%s", in->invalid_message);
        return;
    }
    if (in->blocked_reason) {
        v->phase = "Pending";
        set(&v->c[RC_COND_READY], 'F', in->blocked_reason, "%s", in->blocked_message);
        set(&v->c[RC_COND_PROGRESSING], 'F', in->blocked_reason, "%s",
            in->blocked_message);
        set(&v->c[RC_COND_DEGRADED], 'T', in->blocked_reason, "%s", in->blocked_message);
        return;
    }
    set(&v->c[RC_COND_DEGRADED], 'F', "AsExpected", "no failure observed");
    if (d == NULL || !d->exists) {
        v->phase = "Pending";
        set(&v->c[RC_COND_READY], 'F', "DeploymentMissing",
            "the Deployment has not been created yet");
        set(&v->c[RC_COND_PROGRESSING], 'T', "Creating", "creating the Deployment");
        return;
    }
    const struct rc_pod_summary *p = in->pods;
    bool pod_problem = p && p->problem != RC_POD_OK && p->problem < RC_POD_PROBLEM_COUNT;
    bool dep_failed = failed(d, &why);
    if (pod_problem) {
        /* The pod says why; never Ready while one of them fails. */
        const char *reason = rc_pod_problem_reason(p->problem);
        const char *msg = p->message[0] ? p->message : reason;
        set(&v->c[RC_COND_READY], 'F', reason, "%s", msg);
        set(&v->c[RC_COND_DEGRADED], 'T', reason, "%s", msg);
        if (dep_failed) {
            v->phase = "Failed";
            set(&v->c[RC_COND_PROGRESSING], 'F',
                why->reason[0] ? why->reason : "DeploymentFailed", "%s",
                why->message[0] ? why->message : "the Deployment failed");
            return;
        }
        v->phase = d->ready > 0 ? "Progressing" : "Pending";
        set(&v->c[RC_COND_PROGRESSING], 'T',
            d->progressing_cond.reason[0] ? d->progressing_cond.reason : "RollingOut",
            "%s", d->progressing_cond.message[0] ? d->progressing_cond.message
                                                 : "waiting for replicas to become ready");
        return;
    }
    if (dep_failed) {
        v->phase = "Failed";
        set(&v->c[RC_COND_READY], 'F', why->reason[0] ? why->reason : "DeploymentFailed",
            "%s", why->message[0] ? why->message : "the Deployment failed");
        set(&v->c[RC_COND_PROGRESSING], 'F', why->reason[0] ? why->reason : "DeploymentFailed",
            "%s", why->message[0] ? why->message : "the Deployment failed");
        set(&v->c[RC_COND_DEGRADED], 'T', why->reason[0] ? why->reason : "DeploymentFailed",
            "%s", why->message[0] ? why->message : "the Deployment failed");
        return;
    }
    long long want = in->desired_replicas;
    bool observed = d->observed_generation >= d->generation;
    bool rolled = observed && d->spec_replicas == want && d->updated >= want &&
                  d->ready >= want && d->replicas <= d->updated;
    if (rolled && want == 0) {
        v->phase = "Ready";
        set(&v->c[RC_COND_READY], 'T', "ScaledToZero", "0 replicas requested");
        set(&v->c[RC_COND_PROGRESSING], 'F', "RolloutComplete", "scaled to zero");
        return;
    }
    if (rolled) {
        v->phase = "Ready";
        set(&v->c[RC_COND_READY], 'T', "AllReplicasReady", "%lld/%lld replicas ready",
            d->ready, want);
        set(&v->c[RC_COND_PROGRESSING], 'F', "RolloutComplete",
            "every replica runs the current spec");
        return;
    }
    v->phase = d->ready > 0 || d->replicas > 0 ? "Progressing" : "Pending";
    if (!observed)
        set(&v->c[RC_COND_READY], 'F', "RolloutPending",
            "the Deployment has not observed the latest spec yet");
    else
        set(&v->c[RC_COND_READY], 'F', "ReplicasNotReady",
            "%lld/%lld replicas ready, %lld updated", d->ready, want, d->updated);
    const char *reason = d->progressing_cond.reason[0] ? d->progressing_cond.reason
                                                        : "RollingOut";
    set(&v->c[RC_COND_PROGRESSING], 'T', reason, "%s",
        d->progressing_cond.message[0] ? d->progressing_cond.message
                                        : "waiting for replicas to become ready");
}

const char *rc_status_phase(const struct rc_status_input *in)
{
    struct verdict v;
    memset(&v, 0, sizeof(v));
    decide(in, &v);
    return v.phase;
}

void rc_time_format(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), no timezone games. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Exactly n ASCII digits at s, as a number; -1 otherwise.  Done by hand
 * because sscanf's %d also takes signs and leading blanks ("-1", " 7"). */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The fixed part "YYYY-MM-DDTHH:MM:SS": offsets of each field. */
#define TIME_FIXED_LEN 19

int64_t rc_time_parse(const char *s)
{
    if (s == NULL || strnlen(s, TIME_FIXED_LEN) < TIME_FIXED_LEN)
        return -1;
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return -1;
    const char *p = s + TIME_FIXED_LEN;
    if (*p == '.') {
        const char *frac = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == frac)
            return -1;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        /* "+hh:mm": strnlen first so nothing reads past the NUL. */
        if (strnlen(p, 6) < 6 || p[3] != ':')
            return -1;
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        offset = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
           mi * 60 + sec - offset;
}

static const char *status_word(char s)
{
    return s == 'T' ? "True" : s == 'F' ? "False" : "Unknown";
}

cJSON *rc_status_build(const struct rc_status_input *in)
{
    struct verdict v;
    memset(&v, 0, sizeof(v));
    decide(in, &v);

    cJSON *st = cJSON_CreateObject();
    if (st == NULL)
        return NULL;
    const struct rc_dep_state *d = in->dep;
    bool have = d && d->exists && in->spec_valid;
    cJSON_AddNumberToObject(st, "observedGeneration", (double)in->generation);
    cJSON_AddNumberToObject(st, "replicas", have ? (double)d->replicas : 0);
    cJSON_AddNumberToObject(st, "readyReplicas", have ? (double)d->ready : 0);
    cJSON_AddStringToObject(st, "phase", v.phase);
    if (in->spec_valid) {
        cJSON_AddStringToObject(st, "endpoint", in->endpoint);
        cJSON_AddStringToObject(st, "selector", in->selector);
    }
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    for (int i = 0; i < RC_COND_COUNT; i++) {
        cJSON *c = cJSON_CreateObject();
        if (c == NULL || conds == NULL) {
            cJSON_Delete(c);
            cJSON_Delete(st);
            return NULL;
        }
        cJSON_AddItemToArray(conds, c);
        int64_t since = in->prev[i].status == v.c[i].status && in->prev[i].since > 0
                            ? in->prev[i].since : in->now;
        char ts[32];
        rc_time_format(since, ts, sizeof(ts));
        cJSON_AddStringToObject(c, "type", cond_names[i]);
        cJSON_AddStringToObject(c, "status", status_word(v.c[i].status));
        cJSON_AddNumberToObject(c, "observedGeneration", (double)in->generation);
        cJSON_AddStringToObject(c, "lastTransitionTime", ts);
        cJSON_AddStringToObject(c, "reason", v.c[i].reason);
        cJSON_AddStringToObject(c, "message", v.c[i].message);
    }
    /* A missing member means an allocation failed somewhere above. */
    if (cJSON_GetArraySize(conds) != RC_COND_COUNT ||
        !cJSON_GetObjectItemCaseSensitive(st, "phase")) {
        cJSON_Delete(st);
        return NULL;
    }
    return st;
}
