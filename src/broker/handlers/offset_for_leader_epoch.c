/*
 * OffsetForLeaderEpoch: the end offset of the requested leader epoch, from the
 * partition's leader-epoch cache (replica.c): the current epoch ends at the
 * log end, an older one where the next began, a newer one is unknown (-1, -1),
 * as Kafka answers. A single node never changes leader: its one epoch ends at
 * the log end and older ones at the log start. Only the leader answers.
 */
#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "broker/replica.h"
#include "protocol/errors.h"

int broker_handle_offset_for_leader_epoch(broker_req_t *r) {
    broker_t *b = r->b;
    proto_offset_for_leader_epoch_request_t *req = broker_body(r);
    proto_offset_for_leader_epoch_response_t *resp = r->resp;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->topics.v));
    if (!resp->topics.v) return BROKER_CLOSE;
    resp->topics.n = nt;
    for (int32_t i = 0; i < nt; i++) {
        const proto_offset_for_leader_epoch_request_offset_for_leader_topic_t *rt =
            &req->topics.v[i];
        proto_offset_for_leader_epoch_response_offset_for_leader_topic_result_t *tr =
            &resp->topics.v[i];
        tr->topic = rt->topic;
        int32_t np = rt->partitions.n > 0 ? rt->partitions.n : 0;
        tr->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*tr->partitions.v));
        if (!tr->partitions.v) return BROKER_CLOSE;
        tr->partitions.n = np;
        for (int32_t k = 0; k < np; k++) {
            const proto_offset_for_leader_epoch_request_offset_for_leader_partition_t *rp =
                &rt->partitions.v[k];
            proto_offset_for_leader_epoch_response_epoch_end_offset_t *out = &tr->partitions.v[k];
            out->partition = rp->partition;
            out->leader_epoch = -1;
            out->end_offset = -1;
            broker_partition_t *p = broker_partition_lookup(b, rt->topic, NULL, rp->partition);
            if (!p) {
                out->error_code = broker_partition_absent_error(
                    b, rt->topic, NULL, rp->partition, PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION);
                continue;
            }
            if (r->version >= 2 && rp->current_leader_epoch >= 0 &&
                rp->current_leader_epoch != p->leader_epoch) {
                out->error_code = rp->current_leader_epoch < p->leader_epoch
                                      ? PROTO_ERR_FENCED_LEADER_EPOCH
                                      : PROTO_ERR_UNKNOWN_LEADER_EPOCH;
            } else if (!broker_partition_serves(p)) {
                out->error_code = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
            } else {
                broker_replica_epoch_end(p, rp->leader_epoch, &out->leader_epoch,
                                         &out->end_offset);
            }
            broker_partition_put(p);
        }
    }
    return BROKER_RESPOND;
}
