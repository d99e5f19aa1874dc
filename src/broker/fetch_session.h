/*
 * Fetch sessions (KIP-227): the broker remembers, per session, the partitions
 * a client fetches and what it last told the client about each (high
 * watermark, log start, last stable offset), so incremental fetches list only
 * changed partitions both ways. Sessions are not tied to a connection. The
 * cache holds max.incremental.fetch.session.cache.slots sessions and evicts
 * the least recently used one. Thread-safe (one mutex).
 */
#ifndef BROKER_FETCH_SESSION_H
#define BROKER_FETCH_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/map.h"
#include "base/types.h"

typedef struct fs_part {
    char topic[256];
    sm_uuid_t topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int64_t sent_hw; /* -1: nothing sent yet, so the next response includes it */
    int64_t sent_lso;
    int64_t sent_log_start;
} fs_part_t;

typedef struct fetch_session {
    int32_t id;
    int32_t epoch; /* the epoch the next request must carry */
    int64_t last_used;
    int n, cap;
    fs_part_t *parts;
} fetch_session_t;

typedef struct fetch_sessions {
    pthread_mutex_t mu;
    sm_map_t by_id; /* int32 id -> fetch_session_t* */
    int max_slots;
} fetch_sessions_t;

void fetch_sessions_init(fetch_sessions_t *c, int max_slots);
void fetch_sessions_free(fetch_sessions_t *c);

/* Creates a session (evicting the least recently used when full); returns
 * its id, or 0 when sessions are disabled. Caller holds c->mu. */
fetch_session_t *fetch_session_create(fetch_sessions_t *c, int64_t now);
fetch_session_t *fetch_session_get(fetch_sessions_t *c, int32_t id);
void fetch_session_remove(fetch_sessions_t *c, int32_t id);

/* Adds or updates a partition of the session (by topic id when not zero,
 * otherwise by name). Returns the entry, or NULL without memory. */
fs_part_t *fetch_session_upsert(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                                int32_t partition);
void fetch_session_forget(fetch_session_t *s, const char *topic, const sm_uuid_t *id,
                          int32_t partition);

#endif
