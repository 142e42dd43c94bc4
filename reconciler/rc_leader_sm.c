/*
 * rc_leader_sm.c — the election state machine and the Lease JSON codec.
 * No I/O and no clock reads: rc_leader.c feeds it times and results.
 * See rc_leader.h for the rules and why they are safe.
 */
#include "rc_leader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static bool is_us(const struct rc_leader_sm *sm, const char *holder)
{
    return holder[0] && strcmp(holder, sm->identity) == 0;
}

/* The record's duration in ms; an unset or nonsensical one reads as ours,
 * which is never shorter than what a sane holder would write. */
static uint64_t record_ms(const struct rc_leader_sm *sm)
{
    long long s = sm->rec.duration_s;
    if (s <= 0 || s > 86400 * 365)
        return sm->lease_ms;
    return (uint64_t)s * 1000u;
}

/* Did the election fields change?  The resourceVersion is left out: a
 * label edit changes it without anyone renewing. */
static bool record_differs(const struct rc_lease_record *a, const struct rc_lease_record *b)
{
    return strcmp(a->holder, b->holder) != 0 || a->duration_s != b->duration_s ||
           strcmp(a->acquire_time, b->acquire_time) != 0 ||
           strcmp(a->renew_time, b->renew_time) != 0 || a->transitions != b->transitions;
}

static struct rc_leader_step step_none(void)
{
    return (struct rc_leader_step){ .op = RC_LEASE_WAIT, .event = RC_LEADER_NONE };
}

static void step_down(struct rc_leader_sm *sm, struct rc_leader_step *st, const char *reason)
{
    if (!sm->leading)
        return;
    sm->leading = false;
    sm->transitions++;
    st->event = RC_LEADER_LOST;
    st->reason = reason;
}

/* Leaders stop at the renew deadline, whatever else is going on. */
static void check_deadline(struct rc_leader_sm *sm, uint64_t now_ms, struct rc_leader_step *st)
{
    if (sm->leading && now_ms >= sm->renewed_ms + sm->renew_deadline_ms)
        step_down(sm, st, "renew deadline exceeded");
}

/* Turn st into a WAIT until next_ms (never past our renew deadline, so the
 * driver wakes to step down on time). */
static void wait_step(struct rc_leader_sm *sm, struct rc_leader_step *st)
{
    st->op = RC_LEASE_WAIT;
    st->wake_ms = sm->next_ms;
    if (sm->leading) {
        uint64_t dl = sm->renewed_ms + sm->renew_deadline_ms;
        if (dl < st->wake_ms)
            st->wake_ms = dl;
    }
}

/* ---- the state machine --------------------------------------------------- */

void rc_leader_sm_init(struct rc_leader_sm *sm, const char *identity,
                       unsigned lease_ms, unsigned renew_deadline_ms,
                       unsigned retry_ms, uint64_t now_ms)
{
    memset(sm, 0, sizeof *sm);
    copy_str(sm->identity, sizeof sm->identity, identity);
    sm->lease_ms = lease_ms;
    sm->renew_deadline_ms = renew_deadline_ms;
    sm->retry_ms = retry_ms;
    sm->next_ms = now_ms;
}

bool rc_leader_sm_expired(const struct rc_leader_sm *sm, uint64_t now_ms)
{
    if (!sm->have_record || !sm->rec.holder[0])
        return true;
    return now_ms >= sm->observed_ms + record_ms(sm);
}

uint64_t rc_leader_sm_valid_until(const struct rc_leader_sm *sm)
{
    return sm->leading ? sm->renewed_ms + sm->renew_deadline_ms : 0;
}

struct rc_leader_step rc_leader_sm_poll(struct rc_leader_sm *sm, uint64_t now_ms)
{
    struct rc_leader_step st = step_none();
    check_deadline(sm, now_ms, &st);
    if (now_ms < sm->next_ms) {
        wait_step(sm, &st);
        return st;
    }
    /* client-go's fast path: a leader renews with the resourceVersion of
     * its own last write, without reading first. */
    if (sm->leading && sm->have_record && sm->rec.rv[0] && is_us(sm, sm->rec.holder))
        st.op = RC_LEASE_RENEW;
    else
        st.op = RC_LEASE_GET;
    return st;
}

struct rc_leader_step rc_leader_sm_observed(struct rc_leader_sm *sm, uint64_t now_ms,
                                            enum rc_lease_result res,
                                            const struct rc_lease_record *rec)
{
    struct rc_leader_step st = step_none();
    check_deadline(sm, now_ms, &st);

    if (res == RC_LEASE_NOT_FOUND) {
        sm->have_record = false;
        step_down(sm, &st, "lease deleted");
        st.op = RC_LEASE_CREATE;
        return st;
    }
    if (res != RC_LEASE_OK || !rec) {
        sm->next_ms = now_ms + sm->retry_ms;
        wait_step(sm, &st);
        return st;
    }

    /* The observedTime rule: the clock starts when the record changes. */
    if (!sm->have_record || record_differs(&sm->rec, rec))
        sm->observed_ms = now_ms;
    sm->rec = *rec;
    sm->have_record = true;

    if (sm->leading && !is_us(sm, rec->holder))
        step_down(sm, &st, rec->holder[0] ? "lease taken by another holder" : "lease released by someone else");

    if (sm->leading) {
        st.op = RC_LEASE_RENEW;           /* the slow path: renew with what we read */
        return st;
    }
    if (rc_leader_sm_expired(sm, now_ms)) {
        st.op = RC_LEASE_ACQUIRE;
        return st;
    }
    /* Held and valid (by someone else, or by us from before a step-down):
     * poll every half retry period, and right at the expiry we observe.
     * Half, not client-go's whole period, so a Lease released on a
     * graceful shutdown is taken within ~1 s: one GET a second from each
     * standby is nothing to the API server. */
    sm->conflicts = 0;
    sm->next_ms = now_ms + (sm->retry_ms + 1) / 2;
    uint64_t expiry = sm->observed_ms + record_ms(sm);
    if (expiry < sm->next_ms)
        sm->next_ms = expiry;
    wait_step(sm, &st);
    return st;
}

void rc_leader_sm_record(const struct rc_leader_sm *sm, enum rc_lease_op op,
                         const char *now_micro, struct rc_lease_record *out)
{
    memset(out, 0, sizeof *out);
    const struct rc_lease_record *old = sm->have_record ? &sm->rec : NULL;
    copy_str(out->acquire_time, sizeof out->acquire_time, now_micro);
    copy_str(out->renew_time, sizeof out->renew_time, now_micro);
    if (old)
        copy_str(out->rv, sizeof out->rv, old->rv);

    switch (op) {
    case RC_LEASE_RELEASE:
        out->holder[0] = '\0';
        out->duration_s = 1;
        out->transitions = old ? old->transitions : 0;
        return;
    case RC_LEASE_RENEW:
        copy_str(out->holder, sizeof out->holder, sm->identity);
        out->duration_s = (long long)(sm->lease_ms / 1000u);
        if (old && old->acquire_time[0])
            copy_str(out->acquire_time, sizeof out->acquire_time, old->acquire_time);
        out->transitions = old ? old->transitions : 0;
        return;
    case RC_LEASE_ACQUIRE:
        copy_str(out->holder, sizeof out->holder, sm->identity);
        out->duration_s = (long long)(sm->lease_ms / 1000u);
        /* A change of holder counts; taking back our own lease does not. */
        out->transitions = old ? old->transitions + (is_us(sm, old->holder) ? 0 : 1) : 0;
        return;
    case RC_LEASE_CREATE:
    default:
        copy_str(out->holder, sizeof out->holder, sm->identity);
        out->duration_s = (long long)(sm->lease_ms / 1000u);
        out->transitions = 0;
        out->rv[0] = '\0';
        return;
    }
}

struct rc_leader_step rc_leader_sm_wrote(struct rc_leader_sm *sm, enum rc_lease_op op,
                                         uint64_t sent_ms, uint64_t now_ms,
                                         enum rc_lease_result res,
                                         const struct rc_lease_record *written)
{
    struct rc_leader_step st = step_none();
    /* A renewal that answers after the deadline does not bring leadership
     * back: the fence already said no. */
    check_deadline(sm, now_ms, &st);

    switch (res) {
    case RC_LEASE_OK:
        sm->conflicts = 0;
        if (written) {
            sm->rec = *written;
            sm->have_record = true;
            sm->observed_ms = now_ms;
        }
        if ((op == RC_LEASE_CREATE || op == RC_LEASE_ACQUIRE) && !sm->leading &&
            now_ms < sent_ms + sm->renew_deadline_ms) {
            sm->leading = true;
            sm->renewed_ms = sent_ms;
            sm->transitions++;
            st.event = RC_LEADER_ELECTED;
        } else if (op == RC_LEASE_RENEW && sm->leading && sent_ms > sm->renewed_ms) {
            sm->renewed_ms = sent_ms;
        }
        sm->next_ms = now_ms + sm->retry_ms;
        break;
    case RC_LEASE_NOT_FOUND:
    case RC_LEASE_CONFLICT:
        if (res == RC_LEASE_NOT_FOUND) {
            sm->have_record = false;
            step_down(sm, &st, "lease deleted");
        } else {
            sm->rec.rv[0] = '\0';         /* stale: the fast path must read first */
        }
        /* Someone else wrote: read again at once, unless that already
         * happened and we conflicted again (then back off a period). */
        sm->next_ms = sm->conflicts++ == 0 ? now_ms : now_ms + sm->retry_ms;
        break;
    case RC_LEASE_FAILED:
    default:
        sm->next_ms = now_ms + sm->retry_ms;
        break;
    }
    wait_step(sm, &st);
    return st;
}

struct rc_leader_step rc_leader_sm_stop(struct rc_leader_sm *sm, uint64_t now_ms)
{
    struct rc_leader_step st = step_none();
    check_deadline(sm, now_ms, &st);
    if (st.event == RC_LEADER_LOST)
        return st;                         /* no longer ours to release */
    bool was = sm->leading;
    step_down(sm, &st, "stopping");
    st.op = was ? RC_LEASE_RELEASE : RC_LEASE_WAIT;
    st.wake_ms = now_ms;
    return st;
}

const char *rc_lease_op_name(enum rc_lease_op op)
{
    switch (op) {
    case RC_LEASE_WAIT: return "wait";
    case RC_LEASE_GET: return "get";
    case RC_LEASE_CREATE: return "create";
    case RC_LEASE_ACQUIRE: return "acquire";
    case RC_LEASE_RENEW: return "renew";
    case RC_LEASE_RELEASE: return "release";
    }
    return "?";
}

/* ---- Lease JSON ---------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "lease: %s", what);
}

/* Copy an optional string field; -1 when mistyped or too long. */
static int get_str(const cJSON *obj, const char *key, char *dst, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    dst[0] = '\0';
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring || strlen(v->valuestring) >= cap)
        return -1;
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

static int get_int(const cJSON *obj, const char *key, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < -9e15 || v->valuedouble > 9e15)
        return -1;
    *out = (long long)v->valuedouble;
    return 0;
}

int rc_lease_parse(const cJSON *lease, struct rc_lease_record *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(lease)) {
        set_err(err, errlen, "not a JSON object");
        return -1;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(lease, "metadata");
    if (!cJSON_IsObject(meta) || get_str(meta, "resourceVersion", out->rv, sizeof out->rv) ||
        !out->rv[0]) {
        set_err(err, errlen, "no metadata.resourceVersion");
        return -1;
    }
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(lease, "spec");
    if (!spec || cJSON_IsNull(spec))
        return 0;                          /* an empty Lease: free */
    if (!cJSON_IsObject(spec)) {
        set_err(err, errlen, "spec is not an object");
        return -1;
    }
    if (get_str(spec, "holderIdentity", out->holder, sizeof out->holder)) {
        set_err(err, errlen, "spec.holderIdentity is not a string or too long");
        return -1;
    }
    if (get_int(spec, "leaseDurationSeconds", &out->duration_s) ||
        get_int(spec, "leaseTransitions", &out->transitions)) {
        set_err(err, errlen, "spec.leaseDurationSeconds/leaseTransitions is not a number");
        return -1;
    }
    if (get_str(spec, "acquireTime", out->acquire_time, sizeof out->acquire_time) ||
        get_str(spec, "renewTime", out->renew_time, sizeof out->renew_time)) {
        set_err(err, errlen, "spec.acquireTime/renewTime is not a string or too long");
        return -1;
    }
    return 0;
}

/* Replace (or add) key in obj; false on allocation failure. */
static bool put(cJSON *obj, const char *key, cJSON *val)
{
    if (!val)
        return false;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    if (!cJSON_AddItemToObject(obj, key, val)) {
        cJSON_Delete(val);
        return false;
    }
    return true;
}

/* An object member, created when absent or not an object. */
static cJSON *member_obj(cJSON *obj, const char *key)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsObject(m))
        return m;
    m = cJSON_CreateObject();
    return put(obj, key, m) ? m : NULL;
}

char *rc_lease_body(const cJSON *base, const char *name, const char *namespace_,
                    const struct rc_lease_record *r)
{
    cJSON *o = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
    char *out = NULL;
    if (!o)
        return NULL;
    bool ok = put(o, "apiVersion", cJSON_CreateString("coordination.k8s.io/v1")) &&
              put(o, "kind", cJSON_CreateString("Lease"));
    cJSON *meta = ok ? member_obj(o, "metadata") : NULL;
    cJSON *spec = meta ? member_obj(o, "spec") : NULL;
    ok = spec != NULL;
    if (ok) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
        ok = put(meta, "name", cJSON_CreateString(name)) &&
             put(meta, "namespace", cJSON_CreateString(namespace_));
        if (ok && r->rv[0])
            ok = put(meta, "resourceVersion", cJSON_CreateString(r->rv));
        else if (ok)
            cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion");
    }
    if (ok)
        ok = put(spec, "holderIdentity", cJSON_CreateString(r->holder)) &&
             put(spec, "leaseDurationSeconds", cJSON_CreateNumber((double)r->duration_s)) &&
             put(spec, "leaseTransitions", cJSON_CreateNumber((double)r->transitions));
    if (ok && r->acquire_time[0])
        ok = put(spec, "acquireTime", cJSON_CreateString(r->acquire_time));
    if (ok && r->renew_time[0])
        ok = put(spec, "renewTime", cJSON_CreateString(r->renew_time));
    if (ok)
        out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

void rc_lease_micro_time(struct timespec wall, char out[RC_LEASE_TIME_MAX])
{
    struct tm tm;
    time_t t = wall.tv_sec;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, RC_LEASE_TIME_MAX, "1970-01-01T00:00:00.000000Z");
        return;
    }
    snprintf(out, RC_LEASE_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (long)(wall.tv_nsec / 1000));
}
