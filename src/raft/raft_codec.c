/*
 * raft_msg_t <-> generated codec structs for Vote, BeginQuorumEpoch, EndQuorumEpoch and
 * FetchSnapshot (see raft_codec.h). Each body carries one topic (__cluster_metadata) with
 * one partition (0); anything else is refused as a parse error, as Kafka answers
 * INVALID_REQUEST for another topic partition.
 */
#include "raft/raft_codec.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "protocol/gen/begin_quorum_epoch_request.h"
#include "protocol/gen/begin_quorum_epoch_response.h"
#include "protocol/gen/end_quorum_epoch_request.h"
#include "protocol/gen/end_quorum_epoch_response.h"
#include "protocol/gen/fetch_request.h"
#include "protocol/gen/fetch_response.h"
#include "protocol/gen/fetch_snapshot_request.h"
#include "protocol/gen/fetch_snapshot_response.h"
#include "protocol/gen/vote_request.h"
#include "protocol/gen/vote_response.h"
#include "raft/raft_records.h"

/* Kafka's fixed topic id of __cluster_metadata (Uuid(0, 1)). */
static const sm_uuid_t METADATA_TOPIC_ID = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};

static sm_str_t cluster_str(const raft_msg_t *m) {
    return (sm_str_t){m->cluster_id, (int32_t)strnlen(m->cluster_id, RAFT_CLUSTER_ID_MAX)};
}

static void cluster_copy(raft_msg_t *m, sm_str_t s) {
    memset(m->cluster_id, 0, sizeof(m->cluster_id));
    if (s.len > 0)
        memcpy(m->cluster_id, s.ptr,
               (size_t)(s.len < RAFT_CLUSTER_ID_MAX - 1 ? s.len : RAFT_CLUSTER_ID_MAX - 1));
}

static bool is_metadata_topic(sm_str_t s) { return sm_str_eq(s, SM_STR_LIT(RAFT_METADATA_TOPIC)); }

/* One topic holding one partition, allocated in the arena: the shape of every KRaft body. */
#define ONE_PARTITION(arr_topics, topic_t, part_t, topic_field, a, part)                           \
    do {                                                                                           \
        topic_t *t_ = sm_arena_calloc((a), 1, sizeof(topic_t));                                    \
        part = sm_arena_calloc((a), 1, sizeof(part_t));                                            \
        if (!t_ || !part) return SM_ERR_NOMEM;                                                     \
        t_->topic_field = SM_STR_LIT(RAFT_METADATA_TOPIC);                                         \
        t_->partitions.n = 1;                                                                      \
        t_->partitions.v = part;                                                                   \
        (arr_topics).n = 1;                                                                        \
        (arr_topics).v = t_;                                                                       \
    } while (0)

/* The single partition of a decoded body, or a parse error. */
#define THE_PARTITION(arr_topics, topic_field, part)                                               \
    do {                                                                                           \
        if ((arr_topics).n != 1 || !is_metadata_topic((arr_topics).v[0].topic_field) ||            \
            (arr_topics).v[0].partitions.n != 1)                                                   \
            return SM_ERR_PARSE;                                                                   \
        part = &(arr_topics).v[0].partitions.v[0];                                                 \
    } while (0)

/* Decodes a request a leader sends (BeginQuorumEpoch, EndQuorumEpoch) up to its partition. */
#define DECODE_FROM_LEADER(T, q, p)                                                                \
    do {                                                                                           \
        int rc_ = T##_decode(r, a, v, &q);                                                         \
        if (rc_ != SM_OK) return rc_;                                                              \
        THE_PARTITION(q.topics, topic_name, p);                                                    \
        cluster_copy(m, q.cluster_id);                                                             \
        if (m->from < 0) m->from = p->leader_id;                                                   \
        if (p->leader_id != m->from) return SM_ERR_PARSE;                                          \
        m->epoch = p->leader_epoch;                                                                \
    } while (0)

/* The BeginQuorumEpoch and EndQuorumEpoch responses have one shape: error, leader, epoch. */
#define EPOCH_RESPONSE_CODEC(name, T)                                                              \
    static int enc_##name(const raft_msg_t *m, sm_arena_t *a, int16_t v, sm_writer_t *w) {         \
        T##_t q;                                                                                   \
        T##_partition_data_t *p;                                                                   \
        T##_init(&q);                                                                              \
        ONE_PARTITION(q.topics, T##_topic_data_t, T##_partition_data_t, topic_name, a, p);         \
        p->error_code = m->error;                                                                  \
        p->leader_id = m->leader_id;                                                               \
        p->leader_epoch = m->epoch;                                                                \
        return T##_encode(w, v, &q);                                                               \
    }                                                                                              \
    static int dec_##name(sm_reader_t *r, sm_arena_t *a, int16_t v, raft_msg_t *m) {               \
        T##_t q;                                                                                   \
        const T##_partition_data_t *p;                                                             \
        int rc = T##_decode(r, a, v, &q);                                                          \
        if (rc != SM_OK) return rc;                                                                \
        THE_PARTITION(q.topics, topic_name, p);                                                    \
        m->error = q.error_code ? q.error_code : p->error_code;                                    \
        m->leader_id = p->leader_id;                                                               \
        m->epoch = p->leader_epoch;                                                                \
        return SM_OK;                                                                              \
    }

EPOCH_RESPONSE_CODEC(begin_resp, proto_begin_quorum_epoch_response)
EPOCH_RESPONSE_CODEC(end_resp, proto_end_quorum_epoch_response)

static int encode_begin(const raft_msg_t *m, sm_arena_t *a, int16_t v, sm_writer_t *w) {
    if (m->kind == RAFT_MSG_BEGIN_EPOCH_REQ) {
        proto_begin_quorum_epoch_request_t q;
        proto_begin_quorum_epoch_request_partition_data_t *p;
        proto_begin_quorum_epoch_request_init(&q);
        q.cluster_id = cluster_str(m);
        q.voter_id = m->to;
        ONE_PARTITION(q.topics, proto_begin_quorum_epoch_request_topic_data_t,
                      proto_begin_quorum_epoch_request_partition_data_t, topic_name, a, p);
        p->leader_id = m->from;
        p->leader_epoch = m->epoch;
        return proto_begin_quorum_epoch_request_encode(w, v, &q);
    }
    return enc_begin_resp(m, a, v, w);
}

static int encode_end(const raft_msg_t *m, sm_arena_t *a, int16_t v, sm_writer_t *w) {
    if (m->kind == RAFT_MSG_END_EPOCH_REQ) {
        proto_end_quorum_epoch_request_t q;
        proto_end_quorum_epoch_request_partition_data_t *p;
        proto_end_quorum_epoch_request_init(&q);
        q.cluster_id = cluster_str(m);
        ONE_PARTITION(q.topics, proto_end_quorum_epoch_request_topic_data_t,
                      proto_end_quorum_epoch_request_partition_data_t, topic_name, a, p);
        p->leader_id = m->from;
        p->leader_epoch = m->epoch;
        int n = m->u.end_epoch_req.n_preferred;
        if (n < 0 || n > RAFT_MAX_VOTERS) return SM_ERR_RANGE;
        p->preferred_successors.n = n;
        p->preferred_successors.v = sm_arena_calloc(a, (size_t)(n ? n : 1), sizeof(int32_t));
        p->preferred_candidates.n = n;
        p->preferred_candidates.v =
            sm_arena_calloc(a, (size_t)(n ? n : 1), sizeof(*p->preferred_candidates.v));
        if (!p->preferred_successors.v || !p->preferred_candidates.v) return SM_ERR_NOMEM;
        for (int i = 0; i < n; i++) {
            p->preferred_successors.v[i] = m->u.end_epoch_req.preferred[i];
            p->preferred_candidates.v[i].candidate_id = m->u.end_epoch_req.preferred[i];
        }
        return proto_end_quorum_epoch_request_encode(w, v, &q);
    }
    return enc_end_resp(m, a, v, w);
}

static int encode_snapshot(const raft_msg_t *m, sm_arena_t *a, int16_t v, sm_writer_t *w) {
    if (m->kind == RAFT_MSG_FETCH_SNAPSHOT_REQ) {
        proto_fetch_snapshot_request_t q;
        proto_fetch_snapshot_request_partition_snapshot_t *p;
        proto_fetch_snapshot_request_init(&q);
        q.cluster_id = cluster_str(m);
        q.replica_id = m->from;
        q.max_bytes = INT32_MAX;
        ONE_PARTITION(q.topics, proto_fetch_snapshot_request_topic_snapshot_t,
                      proto_fetch_snapshot_request_partition_snapshot_t, name, a, p);
        p->current_leader_epoch = m->epoch;
        p->snapshot_id = sm_arena_calloc(a, 1, sizeof(*p->snapshot_id));
        if (!p->snapshot_id) return SM_ERR_NOMEM;
        p->snapshot_id->end_offset = m->u.snap_req.snapshot_id.offset;
        p->snapshot_id->epoch = m->u.snap_req.snapshot_id.epoch;
        p->position = m->u.snap_req.position;
        return proto_fetch_snapshot_request_encode(w, v, &q);
    }
    proto_fetch_snapshot_response_t q;
    proto_fetch_snapshot_response_partition_snapshot_t *p;
    proto_fetch_snapshot_response_init(&q);
    ONE_PARTITION(q.topics, proto_fetch_snapshot_response_topic_snapshot_t,
                  proto_fetch_snapshot_response_partition_snapshot_t, name, a, p);
    p->error_code = m->error;
    p->snapshot_id = sm_arena_calloc(a, 1, sizeof(*p->snapshot_id));
    p->current_leader = sm_arena_calloc(a, 1, sizeof(*p->current_leader));
    if (!p->snapshot_id || !p->current_leader) return SM_ERR_NOMEM;
    p->snapshot_id->end_offset = m->u.snap_resp.snapshot_id.offset;
    p->snapshot_id->epoch = m->u.snap_resp.snapshot_id.epoch;
    p->current_leader->leader_id = m->leader_id;
    p->current_leader->leader_epoch = m->epoch;
    p->size = m->u.snap_resp.size;
    p->position = m->u.snap_resp.position;
    p->unaligned_records = (sm_bytes_t){m->u.snap_resp.data, (int32_t)m->u.snap_resp.len};
    return proto_fetch_snapshot_response_encode(w, v, &q);
}

static int encode_vote(const raft_msg_t *m, sm_arena_t *a, int16_t v, sm_writer_t *w) {
    if (m->kind == RAFT_MSG_VOTE_REQ) {
        if (m->u.vote_req.pre_vote && v < 2) return SM_ERR_VERSION; /* PreVote is v2+ */
        proto_vote_request_t q;
        proto_vote_request_partition_data_t *p;
        proto_vote_request_init(&q);
        q.cluster_id = cluster_str(m);
        q.voter_id = m->to;
        ONE_PARTITION(q.topics, proto_vote_request_topic_data_t,
                      proto_vote_request_partition_data_t, topic_name, a, p);
        p->replica_epoch = m->epoch;
        p->replica_id = m->from;
        p->last_offset_epoch = m->u.vote_req.last.epoch;
        p->last_offset = m->u.vote_req.last.offset;
        p->pre_vote = m->u.vote_req.pre_vote;
        return proto_vote_request_encode(w, v, &q);
    }
    proto_vote_response_t q;
    proto_vote_response_partition_data_t *p;
    proto_vote_response_init(&q);
    ONE_PARTITION(q.topics, proto_vote_response_topic_data_t, proto_vote_response_partition_data_t,
                  topic_name, a, p);
    p->error_code = m->error;
    p->leader_id = m->leader_id;
    p->leader_epoch = m->epoch;
    p->vote_granted = m->u.vote_resp.granted;
    return proto_vote_response_encode(w, v, &q);
}

static int encode_fetch(const raft_msg_t *m, sm_arena_t *a, int16_t v, sm_writer_t *w) {
    if (m->kind == RAFT_MSG_FETCH_REQ) {
        proto_fetch_request_t q;
        proto_fetch_request_fetch_partition_t *p;
        proto_fetch_request_init(&q);
        q.cluster_id = cluster_str(m);
        q.replica_id = m->from;
        q.replica_state = sm_arena_calloc(a, 1, sizeof(*q.replica_state));
        if (!q.replica_state) return SM_ERR_NOMEM;
        q.replica_state->replica_id = m->from;
        q.replica_state->replica_epoch = -1;
        q.max_wait_ms = (int32_t)m->u.fetch_req.max_wait_ms;
        q.min_bytes = 0;
        q.max_bytes = 8 << 20;
        q.session_id = 0;
        q.session_epoch = -1;
        ONE_PARTITION(q.topics, proto_fetch_request_fetch_topic_t,
                      proto_fetch_request_fetch_partition_t, topic, a, p);
        q.topics.v[0].topic_id = METADATA_TOPIC_ID;
        p->partition = 0;
        p->current_leader_epoch = m->epoch;
        p->fetch_offset = m->u.fetch_req.fetch_offset;
        p->last_fetched_epoch = m->u.fetch_req.last_fetched_epoch;
        p->log_start_offset = -1;
        p->partition_max_bytes = 8 << 20;
        memcpy(p->replica_directory_id.b, m->u.fetch_req.dir, 16); /* v17+ (KIP-853) */
        return proto_fetch_request_encode(w, v, &q);
    }
    proto_fetch_response_t q;
    proto_fetch_response_partition_data_t *p;
    proto_fetch_response_init(&q);
    ONE_PARTITION(q.responses, proto_fetch_response_fetchable_topic_response_t,
                  proto_fetch_response_partition_data_t, topic, a, p);
    q.responses.v[0].topic_id = METADATA_TOPIC_ID;
    p->partition_index = 0;
    p->error_code = m->error;
    p->high_watermark = m->u.fetch_resp.high_watermark;
    p->last_stable_offset = m->u.fetch_resp.high_watermark;
    p->log_start_offset = m->u.fetch_resp.log_start_offset;
    p->aborted_transactions.n = -1;
    p->preferred_read_replica = -1;
    p->current_leader = sm_arena_calloc(a, 1, sizeof(*p->current_leader));
    if (!p->current_leader) return SM_ERR_NOMEM;
    p->current_leader->leader_id = m->leader_id;
    p->current_leader->leader_epoch = m->epoch;
    if (m->u.fetch_resp.diverging.offset >= 0) {
        p->diverging_epoch = sm_arena_calloc(a, 1, sizeof(*p->diverging_epoch));
        if (!p->diverging_epoch) return SM_ERR_NOMEM;
        p->diverging_epoch->epoch = m->u.fetch_resp.diverging.epoch;
        p->diverging_epoch->end_offset = m->u.fetch_resp.diverging.offset;
    }
    if (m->u.fetch_resp.snapshot_id.offset >= 0) {
        p->snapshot_id = sm_arena_calloc(a, 1, sizeof(*p->snapshot_id));
        if (!p->snapshot_id) return SM_ERR_NOMEM;
        p->snapshot_id->end_offset = m->u.fetch_resp.snapshot_id.offset;
        p->snapshot_id->epoch = m->u.fetch_resp.snapshot_id.epoch;
    }
    if (m->leader_host[0] && m->leader_id >= 0 && v >= 16) { /* KIP-853: where the leader is */
        proto_fetch_response_node_endpoint_t *ep = sm_arena_calloc(a, 1, sizeof(*ep));
        if (!ep) return SM_ERR_NOMEM;
        ep->node_id = m->leader_id;
        ep->host = sm_str_from(m->leader_host);
        ep->port = m->leader_port;
        ep->rack = SM_STR_NULL;
        q.node_endpoints = (proto_fetch_response_node_endpoint_array_t){1, ep};
    }
    p->records = (sm_bytes_t){NULL, 0};
    int n = m->u.fetch_resp.n_entries;
    if (n > 0) {
        size_t cap = raft_records_bound(m->u.fetch_resp.entries, n), len;
        uint8_t *buf = sm_arena_alloc(a, cap);
        if (!buf) return SM_ERR_NOMEM;
        int rc = raft_records_encode(m->u.fetch_resp.entries, n, m->u.fetch_resp.base_offset, 0,
                                     NULL, 0, buf, cap, &len);
        if (rc != SM_OK) return rc;
        p->records = (sm_bytes_t){buf, (int32_t)len};
    }
    return proto_fetch_response_encode(w, v, &q);
}

int raft_codec_encode(const raft_msg_t *m, sm_arena_t *a, int16_t version, sm_writer_t *w) {
    switch (m->kind) {
    case RAFT_MSG_VOTE_REQ:
    case RAFT_MSG_VOTE_RESP: return encode_vote(m, a, version, w);
    case RAFT_MSG_BEGIN_EPOCH_REQ:
    case RAFT_MSG_BEGIN_EPOCH_RESP: return encode_begin(m, a, version, w);
    case RAFT_MSG_END_EPOCH_REQ:
    case RAFT_MSG_END_EPOCH_RESP: return encode_end(m, a, version, w);
    case RAFT_MSG_FETCH_SNAPSHOT_REQ:
    case RAFT_MSG_FETCH_SNAPSHOT_RESP: return encode_snapshot(m, a, version, w);
    case RAFT_MSG_FETCH_REQ:
    case RAFT_MSG_FETCH_RESP: return encode_fetch(m, a, version, w);
    default: return SM_ERR_VERSION;
    }
}

static int decode_begin(sm_reader_t *r, sm_arena_t *a, int16_t v, raft_msg_t *m) {
    if (m->kind == RAFT_MSG_BEGIN_EPOCH_REQ) {
        proto_begin_quorum_epoch_request_t q;
        const proto_begin_quorum_epoch_request_partition_data_t *p;
        DECODE_FROM_LEADER(proto_begin_quorum_epoch_request, q, p);
        return SM_OK;
    }
    return dec_begin_resp(r, a, v, m);
}

static int decode_end(sm_reader_t *r, sm_arena_t *a, int16_t v, raft_msg_t *m) {
    if (m->kind == RAFT_MSG_END_EPOCH_REQ) {
        proto_end_quorum_epoch_request_t q;
        const proto_end_quorum_epoch_request_partition_data_t *p;
        DECODE_FROM_LEADER(proto_end_quorum_epoch_request, q, p);
        int n = v >= 1 ? p->preferred_candidates.n : p->preferred_successors.n;
        if (n < 0) n = 0;
        if (n > RAFT_MAX_VOTERS) n = RAFT_MAX_VOTERS;
        m->u.end_epoch_req.n_preferred = n;
        for (int i = 0; i < n; i++)
            m->u.end_epoch_req.preferred[i] =
                v >= 1 ? p->preferred_candidates.v[i].candidate_id : p->preferred_successors.v[i];
        return SM_OK;
    }
    return dec_end_resp(r, a, v, m);
}

static int decode_snapshot(sm_reader_t *r, sm_arena_t *a, int16_t v, raft_msg_t *m) {
    if (m->kind == RAFT_MSG_FETCH_SNAPSHOT_REQ) {
        proto_fetch_snapshot_request_t q;
        const proto_fetch_snapshot_request_partition_snapshot_t *p;
        int rc = proto_fetch_snapshot_request_decode(r, a, v, &q);
        if (rc != SM_OK) return rc;
        THE_PARTITION(q.topics, name, p);
        if (m->from < 0) m->from = q.replica_id;
        if (p->partition != 0 || !p->snapshot_id || q.replica_id != m->from) return SM_ERR_PARSE;
        cluster_copy(m, q.cluster_id);
        m->epoch = p->current_leader_epoch;
        m->u.snap_req.snapshot_id.offset = p->snapshot_id->end_offset;
        m->u.snap_req.snapshot_id.epoch = p->snapshot_id->epoch;
        m->u.snap_req.position = p->position;
        return SM_OK;
    }
    proto_fetch_snapshot_response_t q;
    const proto_fetch_snapshot_response_partition_snapshot_t *p;
    int rc = proto_fetch_snapshot_response_decode(r, a, v, &q);
    if (rc != SM_OK) return rc;
    THE_PARTITION(q.topics, name, p);
    if (p->index != 0 || !p->snapshot_id) return SM_ERR_PARSE;
    m->error = q.error_code ? q.error_code : p->error_code;
    m->leader_id = p->current_leader ? p->current_leader->leader_id : RAFT_NO_NODE;
    m->epoch = p->current_leader ? p->current_leader->leader_epoch : -1;
    m->u.snap_resp.snapshot_id.offset = p->snapshot_id->end_offset;
    m->u.snap_resp.snapshot_id.epoch = p->snapshot_id->epoch;
    m->u.snap_resp.size = p->size;
    m->u.snap_resp.position = p->position;
    m->u.snap_resp.data = p->unaligned_records.len > 0 ? (uint8_t *)p->unaligned_records.ptr : NULL;
    m->u.snap_resp.len = p->unaligned_records.len > 0 ? (uint32_t)p->unaligned_records.len : 0;
    return SM_OK;
}

static int decode_vote(sm_reader_t *r, sm_arena_t *a, int16_t v, raft_msg_t *m) {
    if (m->kind == RAFT_MSG_VOTE_REQ) {
        proto_vote_request_t q;
        const proto_vote_request_partition_data_t *p;
        int rc = proto_vote_request_decode(r, a, v, &q);
        if (rc != SM_OK) return rc;
        THE_PARTITION(q.topics, topic_name, p);
        if (m->from < 0) m->from = p->replica_id;
        if (p->replica_id != m->from) return SM_ERR_PARSE;
        cluster_copy(m, q.cluster_id);
        m->epoch = p->replica_epoch;
        m->u.vote_req.last.epoch = p->last_offset_epoch;
        m->u.vote_req.last.offset = p->last_offset;
        m->u.vote_req.pre_vote = v >= 2 && p->pre_vote;
        return SM_OK;
    }
    proto_vote_response_t q;
    const proto_vote_response_partition_data_t *p;
    int rc = proto_vote_response_decode(r, a, v, &q);
    if (rc != SM_OK) return rc;
    THE_PARTITION(q.topics, topic_name, p);
    m->error = q.error_code ? q.error_code : p->error_code;
    m->leader_id = p->leader_id;
    m->epoch = p->leader_epoch;
    m->u.vote_resp.granted = p->vote_granted;
    return SM_OK;
}

/* The metadata partition of a Fetch body: by id from v13, by name before. */
static bool is_metadata(sm_str_t name, const sm_uuid_t *id, int16_t v) {
    return v >= 13 ? memcmp(id->b, METADATA_TOPIC_ID.b, 16) == 0 : is_metadata_topic(name);
}

static int decode_fetch(sm_reader_t *r, sm_arena_t *a, int16_t v, raft_msg_t *m) {
    if (m->kind == RAFT_MSG_FETCH_REQ) {
        proto_fetch_request_t q;
        int rc = proto_fetch_request_decode(r, a, v, &q);
        if (rc != SM_OK) return rc;
        if (q.topics.n != 1 || q.topics.v[0].partitions.n != 1 ||
            !is_metadata(q.topics.v[0].topic, &q.topics.v[0].topic_id, v))
            return SM_ERR_PARSE;
        const proto_fetch_request_fetch_partition_t *p = &q.topics.v[0].partitions.v[0];
        int32_t replica = v >= 15 ? (q.replica_state ? q.replica_state->replica_id : -1)
                                  : q.replica_id;
        if (p->partition != 0 || replica < 0) return SM_ERR_PARSE;
        if (m->from < 0) m->from = replica;
        if (replica != m->from) return SM_ERR_PARSE;
        cluster_copy(m, q.cluster_id);
        m->epoch = p->current_leader_epoch;
        m->u.fetch_req.fetch_offset = p->fetch_offset;
        m->u.fetch_req.last_fetched_epoch = p->last_fetched_epoch;
        m->u.fetch_req.max_wait_ms = q.max_wait_ms;
        memcpy(m->u.fetch_req.dir, p->replica_directory_id.b, 16);
        return SM_OK;
    }
    proto_fetch_response_t q;
    int rc = proto_fetch_response_decode(r, a, v, &q);
    if (rc != SM_OK) return rc;
    if (q.responses.n != 1 || q.responses.v[0].partitions.n != 1 ||
        !is_metadata(q.responses.v[0].topic, &q.responses.v[0].topic_id, v))
        return SM_ERR_PARSE;
    const proto_fetch_response_partition_data_t *p = &q.responses.v[0].partitions.v[0];
    if (p->partition_index != 0) return SM_ERR_PARSE;
    m->error = q.error_code ? q.error_code : p->error_code;
    m->leader_id = p->current_leader ? p->current_leader->leader_id : RAFT_NO_NODE;
    m->epoch = p->current_leader ? p->current_leader->leader_epoch : -1;
    m->u.fetch_resp.high_watermark = p->high_watermark;
    m->u.fetch_resp.log_start_offset = p->log_start_offset;
    m->u.fetch_resp.diverging = p->diverging_epoch
                                    ? (raft_offset_epoch_t){p->diverging_epoch->end_offset,
                                                            p->diverging_epoch->epoch}
                                    : (raft_offset_epoch_t){-1, -1};
    m->u.fetch_resp.snapshot_id =
        p->snapshot_id ? (raft_offset_epoch_t){p->snapshot_id->end_offset, p->snapshot_id->epoch}
                       : (raft_offset_epoch_t){-1, -1};
    for (int i = 0; i < q.node_endpoints.n; i++) {
        const proto_fetch_response_node_endpoint_t *ep = &q.node_endpoints.v[i];
        if (ep->node_id != m->leader_id || ep->port <= 0 || ep->port > 65535 || ep->host.len <= 0)
            continue;
        snprintf(m->leader_host, sizeof(m->leader_host), "%.*s", (int)ep->host.len, ep->host.ptr);
        m->leader_port = (uint16_t)ep->port;
    }
    m->u.fetch_resp.base_offset = -1;
    if (p->records.len > 0) {
        int64_t base;
        rc = raft_records_decode(p->records.ptr, (size_t)p->records.len, a,
                                 &m->u.fetch_resp.entries, &m->u.fetch_resp.n_entries, &base);
        if (rc != SM_OK) return rc == SM_ERR_NOMEM ? rc : SM_ERR_PARSE;
        m->u.fetch_resp.base_offset = base;
    }
    return SM_OK;
}

int raft_codec_decode(raft_msg_kind_t kind, sm_reader_t *r, sm_arena_t *a, int16_t version,
                      int32_t from, int32_t to, raft_msg_t *m) {
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    m->from = from;
    m->to = to;
    m->leader_id = RAFT_NO_NODE;
    switch (kind) {
    case RAFT_MSG_VOTE_REQ:
    case RAFT_MSG_VOTE_RESP: return decode_vote(r, a, version, m);
    case RAFT_MSG_BEGIN_EPOCH_REQ:
    case RAFT_MSG_BEGIN_EPOCH_RESP: return decode_begin(r, a, version, m);
    case RAFT_MSG_END_EPOCH_REQ:
    case RAFT_MSG_END_EPOCH_RESP: return decode_end(r, a, version, m);
    case RAFT_MSG_FETCH_SNAPSHOT_REQ:
    case RAFT_MSG_FETCH_SNAPSHOT_RESP: return decode_snapshot(r, a, version, m);
    case RAFT_MSG_FETCH_REQ:
    case RAFT_MSG_FETCH_RESP: return decode_fetch(r, a, version, m);
    default: return SM_ERR_VERSION;
    }
}
