/*
 * The thin adapter between raft_msg_t and the generated Kafka 4.4 codecs: Vote (PreVote is
 * v2), BeginQuorumEpoch, EndQuorumEpoch, FetchSnapshot and Fetch (entries as record
 * batches, raft_records.h; the topic by name below v13, by Kafka's fixed metadata topic id
 * from v13), requests and responses, all on __cluster_metadata-0. Does no I/O; the caller
 * frames the bytes (request header, correlation id).
 */
#ifndef RAFT_RAFT_CODEC_H
#define RAFT_RAFT_CODEC_H

#include "base/arena.h"
#include "base/buf.h"
#include "raft/raft.h"

#define RAFT_METADATA_TOPIC "__cluster_metadata"

/* Writes m's body at `version`. Returns 0, SM_ERR_VERSION for a kind this adapter does not
 * map or a pre-vote below Vote v2, or the codec's error (SM_ERR_SPACE when w is too small). */
int raft_codec_encode(const raft_msg_t *m, sm_arena_t *a, int16_t version, sm_writer_t *w);

/* Reads a body of `kind` at `version` into *m (from, to: the connection's peer and this
 * node; for a request, from < 0 takes the sender from the body). Snapshot bytes in *m borrow r's buffer; strings are copied. Returns 0, SM_ERR_PARSE
 * (also for a body that is not exactly one partition of __cluster_metadata), or
 * SM_ERR_VERSION. A Vote response does not say whether it answers a pre-vote: the caller
 * sets m->u.vote_resp.pre_vote from the request it sent (by correlation id). */
int raft_codec_decode(raft_msg_kind_t kind, sm_reader_t *r, sm_arena_t *a, int16_t version,
                      int32_t from, int32_t to, raft_msg_t *m);

#endif
