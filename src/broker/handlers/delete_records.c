/*
 * DeleteRecords: moves partitions' log start offsets forward (offset -1: to
 * the high watermark) and drops the segments wholly below; answers each with
 * the new low watermark. The log-start checkpoint is written before the
 * answer so a restart keeps the deletion.
 */
#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "broker/replica.h"
#include "protocol/errors.h"

typedef proto_delete_records_request_t req_t;
typedef proto_delete_records_response_t resp_t;
typedef proto_delete_records_response_delete_records_topic_result_t topic_result_t;
typedef proto_delete_records_response_delete_records_partition_result_t part_result_t;

static int16_t delete_before(broker_t *b, sm_str_t topic, int32_t index, int64_t offset,
                             int64_t *low) {
    broker_partition_t *p = broker_partition_lookup(b, topic, NULL, index);
    if (!p)
        return broker_partition_absent_error(b, topic, NULL, index,
                                             PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    int16_t err = PROTO_ERR_NONE;
    int64_t end = broker_partition_hw(p);
    if (offset == -1) offset = end;
    if (!broker_partition_serves(p)) {
        err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (log_offline(p->log)) {
        err = PROTO_ERR_KAFKA_STORAGE_ERROR;
    } else if (offset < 0 || offset > end) {
        err = PROTO_ERR_OFFSET_OUT_OF_RANGE;
    } else if (offset > log_start_offset(p->log) &&
               log_delete_records_before(p->log, offset) != SM_OK) {
        err = PROTO_ERR_KAFKA_STORAGE_ERROR;
    }
    *low = err ? -1 : log_start_offset(p->log);
    broker_partition_put(p);
    return err;
}

int broker_handle_delete_records(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(topic_result_t));
    if (!resp->topics.v) return BROKER_CLOSE;
    resp->topics.n = n;
    bool changed = false;
    for (int32_t i = 0; i < n; i++) {
        const proto_delete_records_request_delete_records_topic_t *t = &req->topics.v[i];
        topic_result_t *tout = &resp->topics.v[i];
        tout->name = t->name;
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        tout->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(part_result_t));
        if (!tout->partitions.v) return BROKER_CLOSE;
        tout->partitions.n = np;
        for (int32_t k = 0; k < np; k++) {
            part_result_t *out = &tout->partitions.v[k];
            out->partition_index = t->partitions.v[k].partition_index;
            out->error_code = delete_before(b, t->name, out->partition_index,
                                            t->partitions.v[k].offset, &out->low_watermark);
            changed |= out->error_code == PROTO_ERR_NONE;
        }
    }
    if (changed && log_manager_write_checkpoints(b->logs) != SM_OK) {
        for (int32_t i = 0; i < n; i++)
            for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++)
                if (!resp->topics.v[i].partitions.v[k].error_code)
                    resp->topics.v[i].partitions.v[k].error_code = PROTO_ERR_KAFKA_STORAGE_ERROR;
    }
    return BROKER_RESPOND;
}
