/*
 * ListOffsets: earliest (-2), latest (-1), max timestamp (-3, v7+), earliest
 * local (-4, v8+: the same as earliest without tiered storage), latest tiered
 * (-5, v9+) and earliest pending upload (-6, v11+, KIP-1023): without tiered
 * storage there is none, so -1; or the first offset with a timestamp >= T
 * through the time index. An unknown negative timestamp (or one below its
 * version) is INVALID_REQUEST. Latest is the last stable offset for read_committed
 * (v2+).
 */
#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "broker/replica.h"
#include "protocol/errors.h"

typedef proto_list_offsets_request_t req_t;
typedef proto_list_offsets_response_t resp_t;
typedef proto_list_offsets_response_list_offsets_partition_response_t presp_t;

static void lookup(broker_partition_t *p, int64_t ts, int16_t v, bool committed, presp_t *out) {
    out->leader_epoch = p->leader_epoch;
    out->timestamp = -1;
    if (ts == -1) {
        /* read_committed: the last stable offset (KIP-98). */
        if (committed) {
            pthread_mutex_lock(&p->mu);
            out->offset = broker_partition_lso(p);
            pthread_mutex_unlock(&p->mu);
        } else {
            out->offset = broker_partition_hw(p);
        }
    } else if (ts == -2 || (ts == -4 && v >= 8)) {
        out->offset = log_start_offset(p->log);
    } else if (ts == -3 && v >= 7) {
        int64_t off, mts;
        log_max_timestamp(p->log, &off, &mts);
        out->offset = off;
        out->timestamp = mts;
    } else if ((ts == -5 && v >= 9) || (ts == -6 && v >= 11)) {
        out->offset = -1;
    } else if (ts < 0) {
        out->error_code = PROTO_ERR_INVALID_REQUEST;
        out->offset = -1;
    } else {
        int64_t off, fts;
        if (log_offset_for_timestamp(p->log, ts, &off, &fts) != SM_OK) {
            out->error_code = PROTO_ERR_KAFKA_STORAGE_ERROR;
            out->offset = -1;
            return;
        }
        out->offset = off;
        out->timestamp = fts;
        if (off < 0) out->leader_epoch = -1;
    }
}

int broker_handle_list_offsets(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->topics.v));
    if (!resp->topics.v) return BROKER_CLOSE;
    resp->topics.n = nt;
    for (int32_t i = 0; i < nt; i++) {
        const proto_list_offsets_request_list_offsets_topic_t *rt = &req->topics.v[i];
        proto_list_offsets_response_list_offsets_topic_response_t *tr = &resp->topics.v[i];
        tr->name = rt->name;
        int32_t np = rt->partitions.n > 0 ? rt->partitions.n : 0;
        tr->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(presp_t));
        if (!tr->partitions.v) return BROKER_CLOSE;
        tr->partitions.n = np;
        for (int32_t k = 0; k < np; k++) {
            const proto_list_offsets_request_list_offsets_partition_t *rp = &rt->partitions.v[k];
            presp_t *out = &tr->partitions.v[k];
            out->partition_index = rp->partition_index;
            out->timestamp = -1;
            out->offset = -1;
            out->leader_epoch = -1;
            broker_partition_t *p = broker_partition_lookup(b, rt->name, NULL, rp->partition_index);
            if (!p) {
                out->error_code = broker_partition_absent_error(
                    b, rt->name, NULL, rp->partition_index, PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION);
                continue;
            }
            if (!broker_partition_serves(p)) {
                out->error_code = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
            } else if (r->version >= 4 && rp->current_leader_epoch >= 0 &&
                       rp->current_leader_epoch != p->leader_epoch) {
                out->error_code = rp->current_leader_epoch < p->leader_epoch
                                      ? PROTO_ERR_FENCED_LEADER_EPOCH
                                      : PROTO_ERR_UNKNOWN_LEADER_EPOCH;
            } else {
                lookup(p, rp->timestamp, r->version, r->version >= 2 && req->isolation_level == 1,
                       out);
            }
            broker_partition_put(p);
        }
    }
    return BROKER_RESPOND;
}
