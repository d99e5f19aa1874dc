/*
 * DescribeTopicPartitions (KIP-966; kafka-topics --describe in Kafka 4): the
 * named topics, or all topics when none is named, sorted by name, with their
 * partitions, at most ResponsePartitionLimit partitions per response (capped
 * at max.request.partition.size.limit, 2000). A response that stops early
 * carries NextCursor (topic and partition to go on from); a request with a
 * Cursor starts there. Unknown topics get UNKNOWN_TOPIC_OR_PARTITION. The
 * eligible leader replicas and LastKnownElr are the image's (KIP-966, kept by
 * the controller in cluster mode; empty on one node).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "protocol/errors.h"

typedef proto_describe_topic_partitions_response_describe_topic_partitions_response_topic_t topic_t;
typedef proto_describe_topic_partitions_response_describe_topic_partitions_response_partition_t
    part_t;

enum { PARTITION_LIMIT_MAX = 2000 };

static int name_cmp(const void *a, const void *b) {
    const sm_str_t *x = a, *y = b;
    int32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->ptr, y->ptr, (size_t)n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static sm_i32_array_t arena_i32(sm_arena_t *a, const int32_t *v, int32_t n) {
    sm_i32_array_t out = {0, NULL};
    if (n > 0 && (out.v = sm_arena_calloc(a, (size_t)n, sizeof(int32_t)))) {
        memcpy(out.v, v, sizeof(int32_t) * (size_t)n);
        out.n = n;
    }
    return out;
}

/* The names to describe, sorted and without duplicates, from the cursor's
 * topic on; caller holds the image lock. NULL when out of memory. */
static sm_str_t *names_to_describe(broker_req_t *r,
                                   const proto_describe_topic_partitions_request_t *req,
                                   int32_t *count) {
    const meta_image_t *img = &r->b->image;
    bool all = req->topics.n <= 0;
    size_t n = all ? sm_map_size(&img->topics_by_name) : (size_t)req->topics.n;
    sm_str_t *names = sm_arena_calloc(&r->arena, n + 1, sizeof(*names));
    if (!names) return NULL;
    size_t k = 0, it = 0;
    void *v;
    if (all)
        while (k < n && sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v))
            names[k++] = sm_str_from(((const meta_topic_t *)v)->name);
    else
        for (; k < n; k++)
            names[k] = req->topics.v[k].name.len >= 0 ? req->topics.v[k].name : SM_STR_LIT("");
    qsort(names, k, sizeof(*names), name_cmp);
    size_t out = 0;
    for (size_t i = 0; i < k; i++) {
        if (out && sm_str_eq(names[out - 1], names[i])) continue;
        if (req->cursor && name_cmp(&names[i], &req->cursor->topic_name) < 0) continue;
        names[out++] = names[i];
    }
    *count = (int32_t)out;
    return names;
}

static void fill_partition(broker_req_t *r, const meta_topic_t *t, const meta_partition_t *mp,
                           part_t *p) {
    p->error_code = broker_partition_leader(r->b, t, mp, &p->leader_id);
    p->partition_index = mp->id;
    p->leader_epoch = mp->leader_epoch;
    p->replica_nodes = arena_i32(&r->arena, mp->replicas, mp->n_replicas);
    p->isr_nodes = arena_i32(&r->arena, mp->isr, mp->n_isr);
    p->eligible_leader_replicas = arena_i32(&r->arena, mp->elr, mp->n_elr);
    p->last_known_elr = arena_i32(&r->arena, mp->last_known_elr, mp->n_last_known_elr);
    p->offline_replicas = (sm_i32_array_t){0, NULL};
}

/* Kafka refuses a cursor with a negative partition, or naming a topic the
 * request's topic list does not hold, with INVALID_REQUEST for each topic. */
static bool cursor_valid(const proto_describe_topic_partitions_request_t *req) {
    if (!req->cursor) return true;
    if (req->cursor->partition_index < 0) return false;
    if (req->topics.n <= 0) return true;
    for (int32_t i = 0; i < req->topics.n; i++)
        if (sm_str_eq(req->topics.v[i].name, req->cursor->topic_name)) return true;
    return false;
}

static int refuse(broker_req_t *r, const proto_describe_topic_partitions_request_t *req) {
    proto_describe_topic_partitions_response_t *resp = r->resp;
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    topic_t *topics = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*topics));
    if (!topics) return BROKER_CLOSE;
    for (int32_t i = 0; i < n; i++) {
        topics[i].error_code = PROTO_ERR_INVALID_REQUEST;
        topics[i].name = req->topics.v[i].name;
        topics[i].topic_authorized_operations = INT32_MIN;
    }
    resp->topics =
        (proto_describe_topic_partitions_response_describe_topic_partitions_response_topic_array_t){
            n, topics};
    return BROKER_RESPOND;
}

int broker_handle_describe_topic_partitions(broker_req_t *r) {
    proto_describe_topic_partitions_request_t *req = broker_body(r);
    proto_describe_topic_partitions_response_t *resp = r->resp;
    resp->next_cursor = NULL;
    if (!cursor_valid(req)) return refuse(r, req);
    int32_t limit = req->response_partition_limit;
    if (limit <= 0 || limit > PARTITION_LIMIT_MAX) limit = PARTITION_LIMIT_MAX;
    meta_image_t *img = &r->b->image;
    meta_image_rdlock(img);
    int32_t n = 0;
    sm_str_t *names = names_to_describe(r, req, &n);
    topic_t *topics = names ? sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*topics)) : NULL;
    if (!topics) {
        meta_image_unlock(img);
        return BROKER_CLOSE;
    }
    int32_t nt = 0, left = limit;
    for (int32_t i = 0; i < n; i++) {
        const meta_topic_t *t = meta_image_topic(img, names[i]);
        int32_t first = req->cursor && sm_str_eq(names[i], req->cursor->topic_name)
                            ? req->cursor->partition_index
                            : 0;
        if (left == 0) {
            resp->next_cursor = sm_arena_calloc(&r->arena, 1, sizeof(*resp->next_cursor));
            if (resp->next_cursor)
                *resp->next_cursor = (proto_describe_topic_partitions_response_cursor_t){
                    .topic_name =
                        (sm_str_t){sm_arena_strndup(&r->arena, names[i].ptr, (size_t)names[i].len),
                                   names[i].len},
                    .partition_index = first};
            break;
        }
        topic_t *o = &topics[nt++];
        o->name = (sm_str_t){sm_arena_strndup(&r->arena, names[i].ptr, (size_t)names[i].len),
                             names[i].len};
        o->topic_authorized_operations = BROKER_TOPIC_OPS;
        if (!t) {
            o->error_code = meta_topic_name_valid(names[i]) ? PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION
                                                            : PROTO_ERR_INVALID_TOPIC_EXCEPTION;
            continue;
        }
        o->topic_id = t->id;
        o->is_internal = t->internal;
        int32_t count = t->n_partitions - first;
        if (count < 0) count = 0;
        if (count > left) count = left;
        o->partitions.v = sm_arena_calloc(&r->arena, (size_t)count + 1, sizeof(part_t));
        if (!o->partitions.v) {
            meta_image_unlock(img);
            return BROKER_CLOSE;
        }
        o->partitions.n = count;
        for (int32_t k = 0; k < count; k++)
            fill_partition(r, t, &t->partitions[first + k], &o->partitions.v[k]);
        left -= count;
        if (first + count < t->n_partitions) {
            resp->next_cursor = sm_arena_calloc(&r->arena, 1, sizeof(*resp->next_cursor));
            if (resp->next_cursor)
                *resp->next_cursor = (proto_describe_topic_partitions_response_cursor_t){
                    .topic_name = o->name, .partition_index = first + count};
            break;
        }
    }
    meta_image_unlock(img);
    resp->topics =
        (proto_describe_topic_partitions_response_describe_topic_partitions_response_topic_array_t){
            nt, topics};
    return BROKER_RESPOND;
}
