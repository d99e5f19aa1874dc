/*
 * Fetch sessions (KIP-227): the broker remembers, per session, the partitions
 * a client fetches and what it last told the client about each (high
 * watermark, log start, last stable offset), so incremental fetches list only
 * changed partitions both ways. Sessions are not tied to a connection. The
 * cache holds max.incremental.fetch.session.cache.slots sessions and evicts
 * the least recently used one.
 *
 * Locking: the cache mutex guards only the id map (lookup, create, remove,
 * eviction); each session has its own mutex for its partitions, so fetches of
 * different sessions never wait on each other for their per-partition work.
 * Lock order: cache, then session. A session is reference-counted: removal
 * from the cache drops the cache's reference, the last user frees it.
 *
 * Bounds: a session holds at most FETCH_SESSION_MAX_PARTITIONS partitions
 * (a bigger full fetch gets no session, as KIP-227 allows; an incremental one
 * that would grow past it loses its session), each partition found through a
 * hash index, so a fetch costs O(its partitions), never O(n^2).
 */
#ifndef BROKER_FETCH_SESSION_H
#define BROKER_FETCH_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/map.h"
#include "base/types.h"

#define FETCH_SESSION_MAX_PARTITIONS 50000

typedef struct fs_part {
    char *topic; /* owned */
    sm_uuid_t topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch; /* -1: not checked */
    int32_t last_fetched_epoch;   /* -1: none (a follower's, KIP-320) */
    int64_t sent_hw; /* -1: nothing sent yet, so the next response includes it */
    int64_t sent_lso;
    int64_t sent_log_start;
} fs_part_t;

typedef struct fetch_session {
    pthread_mutex_t mu; /* guards everything below but id */
    int32_t id;
    int refs;           /* the cache's and each user's; under the cache mutex */
    int32_t epoch;      /* the epoch the next request must carry */
    int64_t last_used;
    int n, cap;
    fs_part_t *parts;
    sm_map_t index;     /* partition key -> index in parts + 1 */
} fetch_session_t;

typedef struct fetch_sessions {
    pthread_mutex_t mu;
    sm_map_t by_id; /* int32 id -> fetch_session_t* */
    int max_slots;
} fetch_sessions_t;

void fetch_sessions_init(fetch_sessions_t *c, int max_slots);
void fetch_sessions_free(fetch_sessions_t *c);

/* Creates a session (evicting the least recently used when full) and returns
 * it with a reference for the caller, or NULL when sessions are disabled. */
fetch_session_t *fetch_session_create(fetch_sessions_t *c, int64_t now);
/* The session with that id and a reference for the caller, or NULL. */
fetch_session_t *fetch_session_get(fetch_sessions_t *c, int32_t id);
void fetch_session_put(fetch_sessions_t *c, fetch_session_t *s);
void fetch_session_remove(fetch_sessions_t *c, int32_t id);

/* Adds or updates a partition of the session (by topic id when not zero,
 * otherwise by name). Returns the entry, or NULL without memory or when the
 * session is full (FETCH_SESSION_MAX_PARTITIONS). Caller holds s->mu. */
fs_part_t *fetch_session_upsert(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                                int32_t partition);
/* The entry, or NULL. Caller holds s->mu. */
fs_part_t *fetch_session_find(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                              int32_t partition);
void fetch_session_forget(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                          int32_t partition);

#endif
