/*
 * Metadata: brokers, cluster id, controller, and topics with their partitions,
 * by name or (v10+) by topic id. Missing topics are auto-created when both the
 * request (v4+: AllowAutoTopicCreation; earlier versions always allow it) and
 * auto.create.topics.enable allow it; creation is synchronous here, so the
 * response already describes the new topic.
 */
#include <string.h>

#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "protocol/errors.h"

typedef proto_metadata_request_t req_t;
typedef proto_metadata_response_t resp_t;
typedef proto_metadata_response_metadata_response_topic_t topic_t;
typedef proto_metadata_response_metadata_response_partition_t part_t;

static sm_i32_array_t arena_i32(sm_arena_t *a, const int32_t *v, int32_t n) {
    sm_i32_array_t out = {0, NULL};
    if (n > 0 && (out.v = sm_arena_calloc(a, (size_t)n, sizeof(int32_t)))) {
        memcpy(out.v, v, sizeof(int32_t) * (size_t)n);
        out.n = n;
    }
    return out;
}

/* Fills out from the image's topic; caller holds the image read lock. */
static void describe_topic(broker_req_t *r, const meta_topic_t *t, topic_t *out) {
    out->error_code = PROTO_ERR_NONE;
    out->name = sm_arena_str(&r->arena, t->name);
    out->topic_id = t->id;
    out->is_internal = t->internal;
    out->partitions.n = t->n_partitions;
    out->partitions.v = sm_arena_calloc(&r->arena, (size_t)t->n_partitions + 1, sizeof(part_t));
    if (!out->partitions.v) {
        out->partitions.n = 0;
        out->error_code = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    for (int32_t i = 0; i < t->n_partitions; i++) {
        const meta_partition_t *mp = &t->partitions[i];
        part_t *p = &out->partitions.v[i];
        p->error_code = broker_partition_leader(r->b, t, mp, &p->leader_id);
        p->partition_index = mp->id;
        p->leader_epoch = mp->leader_epoch;
        p->replica_nodes = arena_i32(&r->arena, mp->replicas, mp->n_replicas);
        p->isr_nodes = arena_i32(&r->arena, mp->isr, mp->n_isr);
        p->offline_replicas = (sm_i32_array_t){0, NULL};
    }
}

static void auto_create(broker_req_t *r, sm_str_t name) {
    broker_t *b = r->b;
    meta_result_t res;
    sm_uuid_t id;
    meta_create_topic(&b->controller, name, b->s.num_partitions, b->s.default_replication_factor,
                      NULL, 0, false, &id, &res);
}

int broker_handle_metadata(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int16_t v = r->version;

    broker_node_t *nodes;
    int nn = broker_nodes(r, false, &nodes);
    if (nn < 0) return BROKER_CLOSE;
    resp->brokers.n = nn;
    resp->brokers.v = sm_arena_calloc(&r->arena, (size_t)nn + 1, sizeof(*resp->brokers.v));
    if (!resp->brokers.v) return BROKER_CLOSE;
    for (int i = 0; i < nn; i++) {
        resp->brokers.v[i].node_id = nodes[i].id;
        resp->brokers.v[i].host = nodes[i].host;
        resp->brokers.v[i].port = nodes[i].port;
        resp->brokers.v[i].rack = nodes[i].rack;
    }
    resp->cluster_id = sm_arena_str(&r->arena, b->cluster_id);
    resp->controller_id = broker_client_controller_id(b);

    /* v0: an empty list means all topics; v1+: null means all topics. */
    bool all = req->topics.n < 0 || (v == 0 && req->topics.n == 0);
    bool allow_create = (v < 4 || req->allow_auto_topic_creation) && b->s.auto_create_topics;

    if (!all && allow_create) {
        for (int32_t i = 0; i < req->topics.n; i++) {
            sm_str_t name = req->topics.v[i].name;
            if (name.len <= 0 || !meta_topic_name_valid(name)) continue;
            meta_image_rdlock(&b->image);
            bool exists = meta_image_topic(&b->image, name) != NULL;
            meta_image_unlock(&b->image);
            if (!exists) auto_create(r, name);
        }
    }

    meta_image_rdlock(&b->image);
    if (all) {
        size_t n = sm_map_size(&b->image.topics_by_name), it = 0, i = 0;
        resp->topics.v = sm_arena_calloc(&r->arena, n + 1, sizeof(topic_t));
        if (!resp->topics.v) goto nomem;
        void *val;
        while (sm_map_next(&b->image.topics_by_name, &it, NULL, NULL, &val) && i < n)
            describe_topic(r, val, &resp->topics.v[i++]);
        resp->topics.n = (int32_t)i;
    } else {
        int32_t n = req->topics.n;
        resp->topics.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(topic_t));
        if (!resp->topics.v) goto nomem;
        resp->topics.n = n;
        for (int32_t i = 0; i < n; i++) {
            const proto_metadata_request_metadata_request_topic_t *rt = &req->topics.v[i];
            topic_t *out = &resp->topics.v[i];
            out->topic_authorized_operations = INT32_MIN;
            out->partitions =
                (proto_metadata_response_metadata_response_partition_array_t){0, NULL};
            out->name = rt->name;
            meta_topic_t *t = NULL;
            /* A topic named by a non-zero id is looked up by its id, whatever
             * its name says: the Java client leaves the name "" (its default)
             * when it asks for the names of the topic ids of a broker-side
             * regex subscription's assignment (KIP-848), as Kafka reads it. */
            bool by_id = rt->name.len < 0 || !sm_uuid_is_zero(&rt->topic_id);
            if (by_id && v < 12) {
                /* v10-11 carry topic ids but cannot answer a topic without a
                 * name (the response's name is nullable from v12), so Kafka
                 * refuses those requests. */
                out->name = (sm_str_t){"", 0};
                out->error_code = PROTO_ERR_INVALID_REQUEST;
                continue;
            }
            if (by_id)
                t = meta_image_topic_by_id(&b->image, &rt->topic_id);
            else
                t = meta_image_topic(&b->image, rt->name);
            if (t) {
                describe_topic(r, t, out);
                out->topic_authorized_operations = INT32_MIN;
            } else if (by_id) {
                out->error_code = PROTO_ERR_UNKNOWN_TOPIC_ID;
                out->topic_id = rt->topic_id;
            } else if (!meta_topic_name_valid(rt->name)) {
                out->error_code = PROTO_ERR_INVALID_TOPIC_EXCEPTION;
            } else {
                out->error_code = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            }
        }
    }
    /* No authorizer: every operation is allowed, and said so when asked. */
    int32_t topic_ops =
        v >= 8 && req->include_topic_authorized_operations ? BROKER_TOPIC_OPS : INT32_MIN;
    for (int32_t i = 0; i < resp->topics.n; i++)
        resp->topics.v[i].topic_authorized_operations = topic_ops;
    resp->cluster_authorized_operations =
        v >= 8 && v <= 10 && req->include_cluster_authorized_operations ? BROKER_CLUSTER_OPS
                                                                        : INT32_MIN;
    meta_image_unlock(&b->image);
    return BROKER_RESPOND;
nomem:
    meta_image_unlock(&b->image);
    return BROKER_CLOSE;
}
