/*
 * CreatePartitions: grows topics through the controller (never shrinks:
 * INVALID_PARTITIONS). Manual assignments are validated by the controller (one node: they
 * may only name this broker).
 */
#include <stdio.h>

#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

typedef proto_create_partitions_request_t req_t;
typedef proto_create_partitions_response_t resp_t;
typedef proto_create_partitions_response_create_partitions_topic_result_t result_t;

int broker_handle_create_partitions(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    resp->results.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(result_t));
    if (!resp->results.v) return BROKER_CLOSE;
    resp->results.n = n;
    for (int32_t i = 0; i < n; i++) {
        const proto_create_partitions_request_create_partitions_topic_t *t = &req->topics.v[i];
        result_t *out = &resp->results.v[i];
        out->name = t->name;
        bool dup = false;
        for (int32_t j = 0; j < n; j++)
            if (j != i && sm_str_eq(req->topics.v[j].name, t->name)) dup = true;
        if (dup) {
            out->error_code = PROTO_ERR_INVALID_REQUEST;
            out->error_message = sm_arena_str(&r->arena, "Duplicate topic in request.");
            continue;
        }
        if (t->assignments.n >= 0) {
            /* An assignment must cover exactly the new partitions. */
            meta_image_rdlock(&b->image);
            const meta_topic_t *mt = meta_image_topic(&b->image, t->name);
            int32_t current = mt ? mt->n_partitions : -1;
            meta_image_unlock(&b->image);
            if (current >= 0 && t->count > current && t->assignments.n != t->count - current) {
                char msg[200];
                snprintf(msg, sizeof(msg),
                         "Increasing the number of partitions by %d but %d assignments provided.",
                         t->count - current, t->assignments.n);
                out->error_code = PROTO_ERR_INVALID_REPLICA_ASSIGNMENT;
                out->error_message = sm_arena_str(&r->arena, msg);
                continue;
            }
        }
        meta_result_t res;
        sm_i32_array_t *assign = NULL;
        if (t->assignments.n > 0) {
            assign = sm_arena_calloc(&r->arena, (size_t)t->assignments.n, sizeof(*assign));
            if (!assign) return BROKER_CLOSE;
            for (int32_t k = 0; k < t->assignments.n; k++)
                assign[k] = t->assignments.v[k].broker_ids;
        }
        meta_create_partitions_assigned(&b->controller, t->name, t->count, assign,
                                        req->validate_only, &res);
        out->error_code = res.error;
        out->error_message =
            res.error ? sm_arena_str(&r->arena, res.message) : (sm_str_t){NULL, -1};
    }
    return BROKER_RESPOND;
}
