/*
 * rc_queue.c — the reconciler's work queue (see rc_queue.h).
 *
 * One mutex guards everything.  Each tracked key has exactly one entry,
 * found through an open-addressing hash table, and the entry's state says
 * where it is:
 *
 *   READY       linked into one of two ready FIFOs, the urgent lane or
 *               the normal one (intrusive, doubly linked, so an urgent
 *               add can move a waiting key to the urgent lane in O(1));
 *   DELAYED     in the min-heap by due time, heap_idx pointing back so an
 *               earlier add_after or a plain add can move it;
 *   PROCESSING  held by a worker; a later add sets dirty, a later delayed
 *               add sets pending_due, and done() acts on them — so a key
 *               being processed is never in the FIFO or the heap, which is
 *               what makes exclusivity hold by construction;
 *   IDLE        only backoff state (failures > 0) keeps it alive.
 *
 * An entry is freed as soon as it is IDLE with no failures, so memory
 * follows the live key count; the table and heap shrink with it.
 * Delayed entries are moved to the FIFO by whoever calls get (or stats):
 * getters sleep on the condition variable until the earliest due time, so
 * no timer thread is needed.
 */
#include "rc_queue.h"
#include "clock.h"
#include "rc_pool.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_KEYS    1000000u
#define DEFAULT_BASE_MS     1000u
#define DEFAULT_CAP_MS      60000u
#define NS_PER_MS           1000000ull

/* Table capacity is a power of two; grow above 3/4 full, shrink below
 * 1/8 full — the gap keeps a key count hovering at a boundary from
 * resizing on every add/done. */
#define TABLE_MIN           16u
#define TABLE_GROW_NUM      3u
#define TABLE_GROW_DEN      4u
#define TABLE_SHRINK_DIV    8u

enum entry_state { ST_IDLE, ST_READY, ST_DELAYED, ST_PROCESSING };

struct entry {
    uint64_t hash;              /* kept so resizing never rehashes keys    */
    uint64_t due_ns;            /* DELAYED, or PROCESSING with pending_due */
    uint64_t ready_ns;          /* when it became ready, for wait stats    */
    struct entry *next_ready;   /* lane links while READY                  */
    struct entry *prev_ready;
    size_t heap_idx;            /* position in the heap while DELAYED      */
    unsigned failures;          /* backoff exponent; survives done()       */
    enum entry_state state;
    bool urgent;                /* READY: in the urgent lane               */
    bool dirty;                 /* added while processing: ready at done  */
    bool dirty_urgent;          /* ... and into the urgent lane            */
    unsigned carry;             /* caller's bits, handed to the next take  */
    bool pending_due;           /* delayed-added while processing          */
    char key[];
};

/* A FIFO of READY entries. */
struct lane {
    struct entry *head, *tail;
    size_t len;
};

struct rc_queue {
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* CLOCK_MONOTONIC, for timed waits        */
    pthread_cond_t urgent_cond; /* takers of the urgent lane only          */

    struct entry **slots;       /* hash table, NULL = empty                */
    size_t cap;                 /* slots; power of two                     */
    size_t count;               /* entries                                 */

    /* Sized with the table: it holds at most count < cap entries, so a
     * push never allocates — done(), which cannot fail, relies on it. */
    struct entry **heap;
    size_t heap_cap;
    size_t heap_len;

    struct lane ready, urgent;
    size_t processing;

    size_t max_keys;
    uint64_t base_ms, cap_ms;
    bool shut;

    uint64_t adds, retries, dropped, wait_ns_sum, wait_count;
};

/* ---- time ------------------------------------------------------------ */

/* Saturating, so an absurd delay means "never" rather than "in the past". */
static uint64_t due_after(uint64_t now, uint64_t delay_ms)
{
    if (delay_ms > (UINT64_MAX - now) / NS_PER_MS)
        return UINT64_MAX;
    return now + delay_ms * NS_PER_MS;
}

/* ---- keys and hashing ----------------------------------------------- */

static bool key_ok(const char *key)
{
    if (!key)
        return false;
    size_t n = strnlen(key, RC_QUEUE_KEY_MAX);
    return n > 0 && n < RC_QUEUE_KEY_MAX;
}

/* FNV-1a, then a murmur-style finaliser: the table indexes by the low
 * bits, which plain FNV spreads poorly for keys sharing a long prefix
 * ("namespace/..."). */
static uint64_t hash_key(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* Slot holding key, or the empty slot where it would go. */
static size_t find_slot(const struct rc_queue *q, const char *key,
                        uint64_t h)
{
    size_t mask = q->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        const struct entry *e = q->slots[i];
        if (!e || (e->hash == h && strcmp(e->key, key) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

static struct entry *lookup(const struct rc_queue *q, const char *key)
{
    return q->slots[find_slot(q, key, hash_key(key))];
}

/* ---- table resizing -------------------------------------------------- */

static void rehash_into(struct rc_queue *q, struct entry **slots,
                        size_t cap)
{
    size_t mask = cap - 1;
    for (size_t i = 0; i < q->cap; i++) {
        struct entry *e = q->slots[i];
        if (!e)
            continue;
        size_t j = (size_t)e->hash & mask;
        while (slots[j])
            j = (j + 1) & mask;
        slots[j] = e;
    }
}

static int resize(struct rc_queue *q, size_t cap)
{
    struct entry **slots = rc_pool_calloc(cap * sizeof *slots);
    if (!slots)
        return -1;
    struct entry **heap = rc_pool_alloc(cap * sizeof *heap);
    if (heap) {
        if (q->heap_len)
            memcpy(heap, q->heap, q->heap_len * sizeof *heap);
        rc_pool_free(q->heap);
        q->heap = heap;
        q->heap_cap = cap;
    } else if (cap > q->heap_cap) {
        rc_pool_free(slots);
        return -1;
    }   /* else a failed shrink keeps the larger heap, which is still valid */
    rehash_into(q, slots, cap);
    rc_pool_free(q->slots);
    q->slots = slots;
    q->cap = cap;
    return 0;
}

static void maybe_shrink(struct rc_queue *q)
{
    if (q->cap > TABLE_MIN && q->count < q->cap / TABLE_SHRINK_DIV)
        (void)resize(q, q->cap / 2);   /* failing to shrink is harmless */
}

/* ---- entries ---------------------------------------------------------- */

/* Existing entry, or a new IDLE one; NULL at the bound or out of memory
 * (*refused tells which). */
static struct entry *get_or_create(struct rc_queue *q, const char *key,
                                   bool *refused)
{
    uint64_t h = hash_key(key);
    size_t i = find_slot(q, key, h);
    *refused = false;
    if (q->slots[i])
        return q->slots[i];
    if (q->count >= q->max_keys) {
        *refused = true;
        return NULL;
    }
    if ((q->count + 1) * TABLE_GROW_DEN > q->cap * TABLE_GROW_NUM) {
        if (resize(q, q->cap * 2) != 0)
            return NULL;
        i = find_slot(q, key, h);
    }
    size_t len = strlen(key) + 1;
    struct entry *e = rc_pool_calloc(sizeof *e + len);
    if (!e)
        return NULL;
    memcpy(e->key, key, len);
    e->hash = h;
    e->state = ST_IDLE;
    q->slots[i] = e;
    q->count++;
    return e;
}

/* Backward-shift deletion: keeps probe chains intact without tombstones,
 * so lookups never slow down as keys come and go. */
static void remove_slot(struct rc_queue *q, size_t hole)
{
    size_t mask = q->cap - 1;
    q->slots[hole] = NULL;
    for (size_t j = (hole + 1) & mask; q->slots[j]; j = (j + 1) & mask) {
        size_t home = (size_t)q->slots[j]->hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            q->slots[hole] = q->slots[j];
            q->slots[j] = NULL;
            hole = j;
        }
    }
}

/* Free e if nothing refers to it any more. */
static void release_if_unused(struct rc_queue *q, struct entry *e)
{
    if (e->state != ST_IDLE || e->failures > 0)
        return;
    remove_slot(q, find_slot(q, e->key, e->hash));
    q->count--;
    rc_pool_free(e);
    maybe_shrink(q);
}

/* ---- delay heap ------------------------------------------------------- */

static void heap_set(struct rc_queue *q, size_t i, struct entry *e)
{
    q->heap[i] = e;
    e->heap_idx = i;
}

static void sift_up(struct rc_queue *q, size_t i)
{
    struct entry *e = q->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (q->heap[parent]->due_ns <= e->due_ns)
            break;
        heap_set(q, i, q->heap[parent]);
        i = parent;
    }
    heap_set(q, i, e);
}

static void sift_down(struct rc_queue *q, size_t i)
{
    struct entry *e = q->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= q->heap_len)
            break;
        if (child + 1 < q->heap_len &&
            q->heap[child + 1]->due_ns < q->heap[child]->due_ns)
            child++;
        if (e->due_ns <= q->heap[child]->due_ns)
            break;
        heap_set(q, i, q->heap[child]);
        i = child;
    }
    heap_set(q, i, e);
}

static void heap_push(struct rc_queue *q, struct entry *e)
{
    heap_set(q, q->heap_len++, e);
    sift_up(q, e->heap_idx);
}

static void heap_remove(struct rc_queue *q, struct entry *e)
{
    size_t i = e->heap_idx;
    struct entry *last = q->heap[--q->heap_len];
    if (last == e)
        return;
    heap_set(q, i, last);
    sift_up(q, i);
    sift_down(q, last->heap_idx);
}

/* ---- state transitions ------------------------------------------------ */

static void lane_push(struct lane *l, struct entry *e)
{
    e->next_ready = NULL;
    e->prev_ready = l->tail;
    if (l->tail)
        l->tail->next_ready = e;
    else
        l->head = e;
    l->tail = e;
    l->len++;
}

static void lane_unlink(struct lane *l, struct entry *e)
{
    if (e->prev_ready)
        e->prev_ready->next_ready = e->next_ready;
    else
        l->head = e->next_ready;
    if (e->next_ready)
        e->next_ready->prev_ready = e->prev_ready;
    else
        l->tail = e->prev_ready;
    e->next_ready = e->prev_ready = NULL;
    l->len--;
}

static void make_ready(struct rc_queue *q, struct entry *e, uint64_t since,
                       bool urgent)
{
    e->state = ST_READY;
    e->ready_ns = since;
    e->urgent = urgent;
    lane_push(urgent ? &q->urgent : &q->ready, e);
    pthread_cond_signal(&q->cond);
    if (urgent)
        pthread_cond_signal(&q->urgent_cond);
}

/* A getter may be sleeping until the old earliest due time; wake one so
 * it recomputes its deadline. */
static void schedule(struct rc_queue *q, struct entry *e, uint64_t due)
{
    e->state = ST_DELAYED;
    e->due_ns = due;
    heap_push(q, e);
    if (e->heap_idx == 0)
        pthread_cond_signal(&q->cond);
}

static void promote_due(struct rc_queue *q, uint64_t now)
{
    while (q->heap_len > 0 && q->heap[0]->due_ns <= now) {
        struct entry *e = q->heap[0];
        heap_remove(q, e);
        make_ready(q, e, e->due_ns, false);
    }
}

/* The urgent lane first: it holds only what a watch event just asked for. */
static struct entry *pop_ready(struct rc_queue *q)
{
    struct lane *l = q->urgent.head ? &q->urgent : &q->ready;
    struct entry *e = l->head;
    if (e)
        lane_unlink(l, e);
    return e;
}

/* Ask for e to be ready at due (now or later); earlier always wins.
 * Returns whether anything changed, which is what counts as an add. */
static bool request(struct rc_queue *q, struct entry *e, uint64_t due,
                    uint64_t now, bool urgent)
{
    bool now_ready = due <= now;
    switch (e->state) {
    case ST_READY:
        if (!urgent || e->urgent)
            return false;
        lane_unlink(&q->ready, e);   /* moves up; keeps its ready time */
        make_ready(q, e, e->ready_ns, true);
        return true;
    case ST_IDLE:
        if (now_ready)
            make_ready(q, e, now, urgent);
        else
            schedule(q, e, due);
        return true;
    case ST_DELAYED:
        if (due >= e->due_ns)
            return false;
        heap_remove(q, e);
        if (now_ready)
            make_ready(q, e, now, urgent);
        else
            schedule(q, e, due);
        return true;
    case ST_PROCESSING:
        if (urgent && now_ready && !e->dirty_urgent) {
            e->dirty = e->dirty_urgent = true;
            return true;
        }
        if (e->dirty || (e->pending_due && due >= e->due_ns))
            return false;
        if (now_ready) {
            e->dirty = true;
        } else {
            e->pending_due = true;
            e->due_ns = due;
        }
        return true;
    }
    return false;
}

/* min(cap, base * 2^failures) without overflow: doubling stops at the cap,
 * so the loop runs at most log2(cap / base) + 1 times. */
static uint64_t backoff_ms(const struct rc_queue *q, unsigned failures)
{
    uint64_t d = q->base_ms;
    for (unsigned i = 0; i < failures && d < q->cap_ms; i++)
        d *= 2;
    return d < q->cap_ms ? d : q->cap_ms;
}

/* Shared body of the three adds; rate_limited replaces delay_ms by the
 * key's backoff and counts a failure. */
static int add_common(struct rc_queue *q, const char *key, uint64_t delay_ms,
                      bool rate_limited, bool urgent, unsigned carry)
{
    if (!key_ok(key))
        return -1;
    pthread_mutex_lock(&q->mu);
    int rc = -1;
    bool refused = false;
    struct entry *e = q->shut ? NULL : get_or_create(q, key, &refused);
    if (e) {
        uint64_t now = mono_now_ns();
        if (rate_limited) {
            delay_ms = backoff_ms(q, e->failures);
            if (e->failures < UINT_MAX)
                e->failures++;
            q->retries++;
        }
        e->carry |= carry;
        if (request(q, e, due_after(now, delay_ms), now, urgent))
            q->adds++;
        rc = 0;
    } else if (refused) {
        q->dropped++;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* ---- public API ------------------------------------------------------- */

/* Timed waits use CLOCK_MONOTONIC so a wall-clock step cannot stall or
 * fire delayed keys early. */
static int init_sync(struct rc_queue *q)
{
    if (cond_init_monotonic(&q->cond) != 0)
        return -1;
    if (cond_init_monotonic(&q->urgent_cond) != 0) {
        pthread_cond_destroy(&q->cond);
        return -1;
    }
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        pthread_cond_destroy(&q->cond);
        pthread_cond_destroy(&q->urgent_cond);
        return -1;
    }
    return 0;
}

int rc_queue_new(const struct rc_queue_opts *opts, struct rc_queue **out)
{
    struct rc_queue_opts o = opts ? *opts : (struct rc_queue_opts){0};
    if (!out)
        return -1;
    *out = NULL;
    struct rc_queue *q = calloc(1, sizeof *q);
    if (!q)
        return -1;
    q->max_keys = o.max_keys ? o.max_keys : DEFAULT_MAX_KEYS;
    q->base_ms = o.backoff_base_ms ? o.backoff_base_ms : DEFAULT_BASE_MS;
    q->cap_ms = o.backoff_cap_ms ? o.backoff_cap_ms : DEFAULT_CAP_MS;
    if (q->base_ms > q->cap_ms || resize(q, TABLE_MIN) != 0 ||
        init_sync(q) != 0) {
        rc_pool_free(q->slots);
        rc_pool_free(q->heap);
        free(q);
        return -1;
    }
    *out = q;
    return 0;
}

void rc_queue_free(struct rc_queue *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->cap; i++)
        rc_pool_free(q->slots[i]);
    rc_pool_free(q->slots);
    rc_pool_free(q->heap);
    pthread_cond_destroy(&q->cond);
    pthread_cond_destroy(&q->urgent_cond);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int rc_queue_add(struct rc_queue *q, const char *key)
{
    return add_common(q, key, 0, false, false, 0);
}

int rc_queue_add_urgent(struct rc_queue *q, const char *key)
{
    return add_common(q, key, 0, false, true, 0);
}

int rc_queue_add_carry(struct rc_queue *q, const char *key, unsigned carry)
{
    return add_common(q, key, 0, false, false, carry);
}

int rc_queue_add_after(struct rc_queue *q, const char *key, uint64_t delay_ms)
{
    return add_common(q, key, delay_ms, false, false, 0);
}

int rc_queue_add_rate_limited(struct rc_queue *q, const char *key)
{
    return add_common(q, key, 0, true, false, 0);
}

void rc_queue_forget(struct rc_queue *q, const char *key)
{
    if (!key_ok(key))
        return;
    pthread_mutex_lock(&q->mu);
    struct entry *e = lookup(q, key);
    if (e) {
        e->failures = 0;
        release_if_unused(q, e);
    }
    pthread_mutex_unlock(&q->mu);
}

unsigned rc_queue_failures(struct rc_queue *q, const char *key)
{
    if (!key_ok(key))
        return 0;
    pthread_mutex_lock(&q->mu);
    const struct entry *e = lookup(q, key);
    unsigned n = e ? e->failures : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t rc_queue_tracked(struct rc_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

static void wait_for_work(struct rc_queue *q)
{
    if (q->heap_len == 0) {
        pthread_cond_wait(&q->cond, &q->mu);
        return;
    }
    struct timespec at = timespec_from_ns(q->heap[0]->due_ns);
    int rc = pthread_cond_timedwait(&q->cond, &q->mu, &at);
    (void)rc;   /* timeout, wakeup or spurious: the caller re-checks */
}

static struct entry *take(struct rc_queue *q, bool urgent_only)
{
    uint64_t now = mono_now_ns();
    promote_due(q, now);
    struct entry *e = urgent_only ? q->urgent.head : pop_ready(q);
    if (!e)
        return NULL;
    if (urgent_only)
        lane_unlink(&q->urgent, e);
    e->state = ST_PROCESSING;
    q->processing++;
    q->wait_ns_sum += now > e->ready_ns ? now - e->ready_ns : 0;
    q->wait_count++;
    return e;
}

/* Hands e's key and item out; wakes the next taker if work remains. */
static void hand_out(struct rc_queue *q, struct entry *e, char key[RC_QUEUE_KEY_MAX],
                     struct rc_queue_item *item)
{
    memcpy(key, e->key, strlen(e->key) + 1);
    if (item) {
        item->urgent = e->urgent;
        item->carry = e->carry;
    }
    e->urgent = false;
    e->carry = 0;
    /* Pass the baton: one signal wakes one getter, so if work or a
     * timer remains, hand it to another sleeper rather than leaving
     * every sleeper on a deadline that no longer applies. */
    if (q->ready.head || q->urgent.head || q->heap_len > 0)
        pthread_cond_signal(&q->cond);
    if (q->urgent.head)
        pthread_cond_signal(&q->urgent_cond);
}

int rc_queue_take(struct rc_queue *q, char key[RC_QUEUE_KEY_MAX],
                  struct rc_queue_item *item)
{
    pthread_mutex_lock(&q->mu);
    struct entry *e = NULL;
    while (!q->shut && !(e = take(q, false)))
        wait_for_work(q);
    if (e)
        hand_out(q, e, key, item);
    pthread_mutex_unlock(&q->mu);
    return e ? 0 : -1;
}

int rc_queue_take_urgent(struct rc_queue *q, char key[RC_QUEUE_KEY_MAX],
                         struct rc_queue_item *item, uint64_t wait_ms)
{
    pthread_mutex_lock(&q->mu);
    uint64_t until = due_after(mono_now_ns(), wait_ms);
    struct entry *e = NULL;
    while (!q->shut && !(e = take(q, true)) && mono_now_ns() < until) {
        struct timespec at = timespec_from_ns(until);
        (void)pthread_cond_timedwait(&q->urgent_cond, &q->mu, &at);
    }
    if (e)
        hand_out(q, e, key, item);
    int rc = e ? 0 : q->shut ? -1 : 1;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int rc_queue_get(struct rc_queue *q, char key[RC_QUEUE_KEY_MAX])
{
    return rc_queue_take(q, key, NULL);
}

void rc_queue_done(struct rc_queue *q, const char *key)
{
    if (!key_ok(key))
        return;
    pthread_mutex_lock(&q->mu);
    struct entry *e = lookup(q, key);
    if (e && e->state == ST_PROCESSING) {
        uint64_t now = mono_now_ns();
        bool dirty = e->dirty, urgent = e->dirty_urgent, pending = e->pending_due;
        e->dirty = e->dirty_urgent = e->pending_due = false;
        e->state = ST_IDLE;
        q->processing--;
        if (dirty || (pending && e->due_ns <= now))
            make_ready(q, e, now, urgent);
        else if (pending)
            schedule(q, e, e->due_ns);
        else
            release_if_unused(q, e);
    }
    pthread_mutex_unlock(&q->mu);
}

void rc_queue_shutdown(struct rc_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->shut = true;
    pthread_cond_broadcast(&q->cond);
    pthread_cond_broadcast(&q->urgent_cond);
    pthread_mutex_unlock(&q->mu);
}

void rc_queue_stats(struct rc_queue *q, struct rc_queue_stats *out)
{
    pthread_mutex_lock(&q->mu);
    promote_due(q, mono_now_ns());
    *out = (struct rc_queue_stats){
        .adds = q->adds,
        .retries = q->retries,
        .dropped = q->dropped,
        .depth = q->ready.len + q->urgent.len,
        .urgent = q->urgent.len,
        .delayed = q->heap_len,
        .processing = q->processing,
        .wait_ns_sum = q->wait_ns_sum,
        .wait_count = q->wait_count,
    };
    pthread_mutex_unlock(&q->mu);
}
