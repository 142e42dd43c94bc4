/*
 * test_cache.c — rc_cache's watch handlers as the queue sees them: which
 * InferenceService events are urgent (news to the user: created, or a new
 * spec generation, from a live watch) and which are not (a relist's
 * objects, status-only changes, deletions); and rc_cache_learn, which may
 * cache a worker's own apply result only when the watch cannot have seen
 * the object go (no DELETED event, no relist since the write was sent)
 * and cannot hold anything newer (no entry, or no watch event since).
 */
#include <criterion/criterion.h>

#include "rc_cache.h"

#include <stdio.h>
#include <string.h>

/* What the cache asked the queue for, in order. */
struct wakes {
    char keys[16][RC_KEY_BUF];
    bool urgent[16];
    size_t n;
};

static void record(struct wakes *w, const char *key, bool urgent)
{
    cr_assert_lt(w->n, 16);
    snprintf(w->keys[w->n], RC_KEY_BUF, "%s", key);
    w->urgent[w->n++] = urgent;
}

static void wake_normal(void *arg, const char *key)
{
    record(arg, key, false);
}

static void wake_urgent(void *arg, const char *key)
{
    record(arg, key, true);
}

static void expect_wake(struct wakes *w, const char *key, bool urgent)
{
    cr_assert_eq(w->n, 1, "%zu wakes, want 1 (%s)", w->n, key);
    cr_expect_str_eq(w->keys[0], key);
    cr_expect_eq(w->urgent[0], urgent, "%s: urgent %d, want %d", key, w->urgent[0],
                 urgent);
    w->n = 0;
}

static cJSON *isvc(const char *name, long generation, const char *phase)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"%s\",\"uid\":\"u-%s\","
             "\"resourceVersion\":\"1\",\"generation\":%ld},"
             "\"spec\":{\"model\":\"m\",\"replicas\":1,\"gpuType\":\"H100\"}%s%s%s}",
             name, name, generation, phase ? ",\"status\":{\"phase\":\"" : "",
             phase ? phase : "", phase ? "\"}" : "");
    cJSON *o = cJSON_Parse(text);
    cr_assert_not_null(o);
    return o;
}

static cJSON *deployment(const char *name)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"%s\",\"uid\":\"d-%s\","
             "\"ownerReferences\":[{\"apiVersion\":\"ai.example.com/v1\","
             "\"kind\":\"InferenceService\",\"name\":\"%s\",\"uid\":\"u-%s\","
             "\"controller\":true}]},\"spec\":{\"replicas\":1}}",
             name, name, name, name);
    cJSON *o = cJSON_Parse(text);
    cr_assert_not_null(o);
    return o;
}

static void event(struct kube_watch_handlers *h, enum kube_event type, cJSON *obj)
{
    h->on_event(h->arg, type, obj);
    cJSON_Delete(obj);
}

static bool cached_deployment(struct rc_cache *c, const char *key)
{
    pthread_rwlock_rdlock(&c->lock);
    bool found = rc_map_get(&c->deploys, key) != NULL;
    pthread_rwlock_unlock(&c->lock);
    return found;
}

Test(cache, live_creates_and_new_generations_are_urgent_the_rest_is_not)
{
    struct rc_cache c;
    struct wakes w = {0};
    cr_assert_eq(rc_cache_init(&c, wake_normal, &w), 0);
    c.enqueue_urgent = wake_urgent;
    struct kube_watch_handlers h = rc_cache_isvc_handlers(&c);

    /* A relist's objects are not news, even the first time. */
    h.on_list_begin(h.arg);
    event(&h, KUBE_EVENT_ADDED, isvc("listed", 1, NULL));
    expect_wake(&w, "ns/listed", false);
    h.on_list_end(h.arg);
    cr_expect_eq(w.n, 0);

    event(&h, KUBE_EVENT_ADDED, isvc("a", 1, NULL));
    expect_wake(&w, "ns/a", true);
    /* Our own status write comes back with the same generation. */
    event(&h, KUBE_EVENT_MODIFIED, isvc("a", 1, "Pending"));
    expect_wake(&w, "ns/a", false);
    /* The user edits the spec. */
    event(&h, KUBE_EVENT_MODIFIED, isvc("a", 2, "Pending"));
    expect_wake(&w, "ns/a", true);
    event(&h, KUBE_EVENT_DELETED, isvc("a", 2, "Pending"));
    expect_wake(&w, "ns/a", false);
    /* Without an urgent callback everything goes the normal way. */
    c.enqueue_urgent = NULL;
    event(&h, KUBE_EVENT_ADDED, isvc("b", 1, NULL));
    expect_wake(&w, "ns/b", false);
    rc_cache_free(&c);
}

Test(cache, learn_fills_a_gap_and_replaces_only_what_no_event_touched_since)
{
    struct rc_cache c;
    struct wakes w = {0};
    cr_assert_eq(rc_cache_init(&c, wake_normal, &w), 0);
    struct kube_watch_handlers h = rc_cache_deploy_handlers(&c);

    struct rc_cache_mark mark = rc_cache_mark(&c, RC_KIND_DEPLOYMENT);
    cJSON *d = deployment("x");
    cr_expect(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));
    cr_expect(cached_deployment(&c, "ns/x"));
    cr_expect_eq(w.n, 0, "learning wakes nobody: the worker knows");
    /* Nothing came from the watch since: a second answer replaces it. */
    cr_expect(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));
    /* The watch's own event replaces the learned entry, as any update... */
    event(&h, KUBE_EVENT_ADDED, deployment("x"));
    expect_wake(&w, "ns/x", false);
    cr_expect(cached_deployment(&c, "ns/x"));
    /* ...and an answer to a write sent before that event must not
     * overwrite what the watch delivered (it may be newer). */
    cr_expect_not(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));
    /* A missing entry is filled even after other events. */
    cJSON *y = deployment("y");
    cr_expect(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, y));
    cJSON_Delete(y);
    cJSON_Delete(d);
    /* An InferenceService is never learned: only the watch knows its spec. */
    cJSON *i = isvc("i", 1, NULL);
    struct rc_cache_mark im = rc_cache_mark(&c, RC_KIND_ISVC);
    cr_expect_not(rc_cache_learn(&c, RC_KIND_ISVC, &im, i));
    cJSON_Delete(i);
    rc_cache_free(&c);
}

Test(cache, learn_never_brings_back_what_may_have_gone)
{
    struct rc_cache c;
    struct wakes w = {0};
    cr_assert_eq(rc_cache_init(&c, wake_normal, &w), 0);
    struct kube_watch_handlers h = rc_cache_deploy_handlers(&c);
    cJSON *d = deployment("x");

    /* Sent, then the watch saw it created and deleted before the answer
     * was handled: the answer must not resurrect it. */
    struct rc_cache_mark mark = rc_cache_mark(&c, RC_KIND_DEPLOYMENT);
    event(&h, KUBE_EVENT_ADDED, deployment("x"));
    event(&h, KUBE_EVENT_DELETED, deployment("x"));
    w.n = 0;
    cr_expect_not(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));
    cr_expect_not(cached_deployment(&c, "ns/x"));

    /* A delete of any other Deployment also makes the answer unsafe. */
    mark = rc_cache_mark(&c, RC_KIND_DEPLOYMENT);
    event(&h, KUBE_EVENT_DELETED, deployment("other"));
    w.n = 0;
    cr_expect_not(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));

    /* During a relist: refused (the list may predate the write). */
    h.on_list_begin(h.arg);
    mark = rc_cache_mark(&c, RC_KIND_DEPLOYMENT);
    cr_expect_not(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));
    h.on_list_end(h.arg);
    /* Across a relist: refused too. */
    cr_expect_not(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));
    /* After it, with a fresh mark: fine. */
    mark = rc_cache_mark(&c, RC_KIND_DEPLOYMENT);
    cr_expect(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));
    /* A clear (a cold standby stepping down) also counts as gone. */
    rc_cache_clear(&c);
    cr_expect_not(rc_cache_learn(&c, RC_KIND_DEPLOYMENT, &mark, d));
    cr_expect_not(cached_deployment(&c, "ns/x"));
    /* Services keep marks of their own: Deployment deletes do not count. */
    struct rc_cache_mark sm = rc_cache_mark(&c, RC_KIND_SERVICE);
    event(&h, KUBE_EVENT_DELETED, deployment("z"));
    struct rc_cache_mark sm2 = rc_cache_mark(&c, RC_KIND_SERVICE);
    cr_expect_eq(sm.gone, sm2.gone);
    cJSON_Delete(d);
    rc_cache_free(&c);
}
