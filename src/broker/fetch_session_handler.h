/*
 * The fetching side of a fetch session (KIP-227), as Kafka's FetchSessionHandler keeps it
 * for a follower: which partitions the leader's session holds and what was last said of
 * each, so that a request names only the partitions whose fetch state changed (and, in
 * ForgottenTopicsData, those that left), while the leader keeps serving the others.
 * Pure bookkeeping: no I/O, no locks (one fetcher thread owns a handler).
 *
 * States: no session (session id 0, epoch 0: every request is full, epoch 0 asking the
 * leader to open one) -> full request answered with a session id (epoch 1) -> incremental
 * requests, the epoch one more after each answered one (INT32_MAX wraps to 1). A request
 * that failed (connection) or was answered with an error (FETCH_SESSION_ID_NOT_FOUND, the
 * session evicted: id 0; INVALID_FETCH_SESSION_EPOCH or any other: the same id, so the
 * leader closes it) makes the next request full (epoch 0); an incremental answer with
 * session id 0 means the leader closed it: full again.
 * Invariant: after fsh_build, the session holds exactly the partitions just wanted, with
 * the data last sent for each (the leader's view once it answers).
 */
#ifndef BROKER_FETCH_SESSION_HANDLER_H
#define BROKER_FETCH_SESSION_HANDLER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/map.h"
#include "base/types.h"

/* One partition's fetch state, as a Fetch request names it. */
typedef struct fsh_part {
    sm_uuid_t topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int64_t log_start;
    int32_t current_leader_epoch;
    int32_t last_fetched_epoch;
    int32_t max_bytes;
} fsh_part_t;

typedef struct fsh {
    int32_t session_id; /* 0: none */
    int32_t epoch;      /* the next request's: 0 full, > 0 incremental */
    bool last_full;     /* the request in flight is full */
    fsh_part_t *parts;  /* the session's partitions, in the order last wanted */
    int n, cap;
    sm_map_t index; /* (topic id, partition) -> position in parts + 1 */
    int64_t full_requests, incremental_requests;
} fsh_t;

void fsh_init(fsh_t *h);
void fsh_free(fsh_t *h);

/*
 * The next request for the n wanted partitions. *full: list every wanted partition (epoch
 * 0). Otherwise send[] (n_send of them) indexes the wanted partitions that are new to the
 * session or whose state differs from what was last sent, and forget[] (n_forget) holds the
 * session's partitions no longer wanted; send needs room for n, forget for h->n before the
 * call. The session then holds the wanted partitions, want[i] at position i (fsh_find).
 * SM_OK, or SM_ERR_NOMEM (the handler is then reset: the next request is full).
 */
int fsh_build(fsh_t *h, const fsh_part_t *want, int n, bool *full, int *send, int *n_send,
              fsh_part_t *forget, int *n_forget);
/* Position of (topic_id, partition) in the session (so in the want[] of the last
 * fsh_build), or -1. */
int fsh_find(const fsh_t *h, const sm_uuid_t *topic_id, int32_t partition);
/* The answer to the last request: its top-level error and session id. Returns true when
 * its partitions can be used (no error). */
bool fsh_response(fsh_t *h, int16_t error, int32_t session_id);
/* The last request got no answer (the connection failed): the next one is full. */
void fsh_failed(fsh_t *h);

#endif
