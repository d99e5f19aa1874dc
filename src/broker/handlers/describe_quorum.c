/*
 * DescribeQuorum on a single node: its metadata log is a quorum of one voter, this node,
 * leader of epoch 1 with every record committed. In a cluster the request is relayed to
 * the active controller (dispatch.c), which answers from its Raft state (cluster/serve.c).
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"
#include "storage/log.h"

int broker_handle_describe_quorum(broker_req_t *r) {
    broker_t *b = r->b;
    proto_describe_quorum_response_t *resp = r->resp;
    typedef proto_describe_quorum_response_topic_data_t topic_t;
    typedef proto_describe_quorum_response_partition_data_t part_t;
    typedef proto_describe_quorum_response_replica_state_t replica_t;
    typedef proto_describe_quorum_response_node_t node_t;
    typedef proto_describe_quorum_response_listener_t listener_t;
    topic_t *t = sm_arena_calloc(&r->arena, 1, sizeof(*t));
    part_t *p = sm_arena_calloc(&r->arena, 1, sizeof(*p));
    replica_t *v = sm_arena_calloc(&r->arena, 1, sizeof(*v));
    node_t *n = sm_arena_calloc(&r->arena, 1, sizeof(*n));
    listener_t *l = sm_arena_calloc(&r->arena, 1, sizeof(*l));
    if (!t || !p || !v || !n || !l) return BROKER_CLOSE;
    int64_t end = b->metadata_log ? log_end_offset(b->metadata_log) : 0;
    int64_t now = broker_now_ms();
    t->topic_name = SM_STR_LIT("__cluster_metadata");
    t->partitions = (proto_describe_quorum_response_partition_data_array_t){1, p};
    p->partition_index = 0;
    p->error_code = PROTO_ERR_NONE;
    p->error_message = SM_STR_NULL;
    p->leader_id = b->s.node_id;
    p->leader_epoch = 1;
    p->high_watermark = end;
    v->replica_id = b->s.node_id;
    v->log_end_offset = end;
    v->last_fetch_timestamp = now;
    v->last_caught_up_timestamp = now;
    p->current_voters = (proto_describe_quorum_response_replica_state_array_t){1, v};
    p->observers = (proto_describe_quorum_response_replica_state_array_t){0, NULL};
    resp->topics = (proto_describe_quorum_response_topic_data_array_t){1, t};
    n->node_id = b->s.node_id;
    l->name = sm_arena_str(&r->arena, r->listener ? r->listener->name : "PLAINTEXT");
    l->host = sm_arena_str(&r->arena, broker_req_host(r));
    l->port = (uint16_t)broker_req_port(r);
    n->listeners = (proto_describe_quorum_response_listener_array_t){1, l};
    resp->nodes = (proto_describe_quorum_response_node_array_t){1, n};
    return BROKER_RESPOND;
}
