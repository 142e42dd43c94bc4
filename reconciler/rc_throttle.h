/*
 * rc_throttle.h — a bound on status writes that change only a message.
 *
 * A pod's problem message can change without anything else changing: the
 * scheduler rewrites "0/10 nodes are available: 4 Insufficient
 * nvidia.com/gpu ..." whenever the cluster's node counts move, for every
 * pending pod.  Status, reason and phase changes are always written at
 * once; a change of messages alone is written at most once per
 * RC_MESSAGE_WRITE_MIN_S per InferenceService (a skipped one is picked up
 * by the next reconcile after that, at the latest the resync).
 *
 * Memory: an entry (key + 32 bytes) only for InferenceServices whose last
 * status write carried a pod problem; it goes when the problem does.
 */
#ifndef RC_THROTTLE_H
#define RC_THROTTLE_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rc_map.h"

#define RC_MESSAGE_WRITE_MIN_S 30

struct rc_throttle {
    pthread_mutex_t lock;
    struct rc_map last;   /* key -> its last write: signature and time */
};

int rc_throttle_init(struct rc_throttle *t);
void rc_throttle_free(struct rc_throttle *t);

/* The signature of a status: its hash with every condition's message
 * left out (so two statuses differing only in messages share it). */
uint64_t rc_status_signature(const cJSON *status);

/* May a status with this signature be written for key now?  False only
 * when the last write recorded for key had the same signature (a message-
 * only change) less than RC_MESSAGE_WRITE_MIN_S ago. */
bool rc_throttle_allow(struct rc_throttle *t, const char *key, uint64_t sig,
                       int64_t now);

/* A status write for key succeeded.  keep: it carried a pod problem (the
 * kind of message that churns), so remember it; otherwise forget key. */
void rc_throttle_wrote(struct rc_throttle *t, const char *key, uint64_t sig,
                       int64_t now, bool keep);

size_t rc_throttle_count(struct rc_throttle *t);

#endif
