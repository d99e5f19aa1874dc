/*
 * ElectLeaders: on one node every partition's leader is its preferred (and
 * only) replica, so each named partition answers ELECTION_NOT_NEEDED and a
 * request for all partitions (null list) has nothing to report, as Kafka
 * answers when no election was needed.
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

typedef proto_elect_leaders_response_replica_election_result_t topic_result_t;
typedef proto_elect_leaders_response_partition_result_t part_result_t;

int broker_handle_elect_leaders(broker_req_t *r) {
    broker_t *b = r->b;
    proto_elect_leaders_request_t *req = broker_body(r);
    proto_elect_leaders_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_NONE;
    int32_t n = req->topic_partitions.n > 0 ? req->topic_partitions.n : 0;
    resp->replica_election_results.v =
        sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(topic_result_t));
    if (!resp->replica_election_results.v) return BROKER_CLOSE;
    resp->replica_election_results.n = n;
    if (r->version >= 1 && req->election_type != 0 && req->election_type != 1) {
        resp->error_code = PROTO_ERR_INVALID_REQUEST;
        resp->replica_election_results.n = 0;
        return BROKER_RESPOND;
    }
    meta_image_rdlock(&b->image);
    for (int32_t i = 0; i < n; i++) {
        const proto_elect_leaders_request_topic_partitions_t *t = &req->topic_partitions.v[i];
        topic_result_t *tout = &resp->replica_election_results.v[i];
        tout->topic = t->topic;
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        tout->partition_result.v =
            sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(part_result_t));
        if (!tout->partition_result.v) break;
        tout->partition_result.n = np;
        const meta_topic_t *mt = meta_image_topic(&b->image, t->topic);
        for (int32_t k = 0; k < np; k++) {
            part_result_t *out = &tout->partition_result.v[k];
            out->partition_id = t->partitions.v[k];
            if (!mt || out->partition_id < 0 || out->partition_id >= mt->n_partitions) {
                out->error_code = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                out->error_message = sm_arena_str(&r->arena, "The partition does not exist.");
            } else {
                out->error_code = PROTO_ERR_ELECTION_NOT_NEEDED;
                out->error_message =
                    sm_arena_str(&r->arena, "Leader election not needed for topic partition.");
            }
        }
    }
    meta_image_unlock(&b->image);
    return BROKER_RESPOND;
}
