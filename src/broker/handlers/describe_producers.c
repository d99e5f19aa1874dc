/*
 * DescribeProducers: the idempotent producers a partition knows (producer id,
 * epoch, last sequence and timestamp), as kept for duplicate detection.
 */
#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "protocol/errors.h"

typedef proto_describe_producers_response_topic_response_t topic_result_t;
typedef proto_describe_producers_response_partition_response_t part_result_t;
typedef proto_describe_producers_response_producer_state_t state_t;

static void describe_partition(broker_req_t *r, sm_str_t topic, part_result_t *out) {
    broker_partition_t *p = broker_partition_lookup(r->b, topic, NULL, out->partition_index);
    out->active_producers.n = 0;
    out->error_message = (sm_str_t){NULL, -1};
    if (!p) {
        out->error_code = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        out->error_message =
            sm_arena_str(&r->arena, "This server does not host this topic-partition.");
        return;
    }
    pthread_mutex_lock(&p->mu);
    size_t n = sm_map_size(&p->producers.producers);
    out->active_producers.v = sm_arena_calloc(&r->arena, n + 1, sizeof(state_t));
    if (out->active_producers.v) {
        size_t it = 0;
        void *v;
        while (sm_map_next(&p->producers.producers, &it, NULL, NULL, &v)) {
            const txn_producer_t *tp = v;
            state_t *s = &out->active_producers.v[out->active_producers.n++];
            s->producer_id = tp->producer_id;
            s->producer_epoch = tp->epoch;
            s->last_sequence = tp->n_batches ? tp->batches[tp->n_batches - 1].last_seq : -1;
            s->last_timestamp = tp->last_timestamp;
            s->coordinator_epoch = tp->coordinator_epoch;
            s->current_txn_start_offset = tp->current_txn_first_offset;
        }
    } else {
        out->error_code = PROTO_ERR_UNKNOWN_SERVER_ERROR;
    }
    pthread_mutex_unlock(&p->mu);
    broker_partition_put(p);
}

int broker_handle_describe_producers(broker_req_t *r) {
    proto_describe_producers_request_t *req = broker_body(r);
    proto_describe_producers_response_t *resp = r->resp;
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(topic_result_t));
    if (!resp->topics.v) return BROKER_CLOSE;
    resp->topics.n = n;
    for (int32_t i = 0; i < n; i++) {
        const proto_describe_producers_request_topic_request_t *t = &req->topics.v[i];
        topic_result_t *tout = &resp->topics.v[i];
        tout->name = t->name;
        int32_t np = t->partition_indexes.n > 0 ? t->partition_indexes.n : 0;
        tout->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(part_result_t));
        if (!tout->partitions.v) return BROKER_CLOSE;
        tout->partitions.n = np;
        for (int32_t k = 0; k < np; k++) {
            part_result_t *out = &tout->partitions.v[k];
            out->partition_index = t->partition_indexes.v[k];
            describe_partition(r, t->name, out);
        }
    }
    return BROKER_RESPOND;
}
