/*
 * DescribeCluster: the cluster id, the controller (this node: any broker relays
 * controller requests) and the brokers (broker_nodes: this one, or a cluster's). Controller
 * endpoints (v1 EndpointType 2) are served by Kafka's controllers only, so a
 * broker refuses them as Kafka does. v2 (KIP-1073) marks fenced brokers and
 * lists them only when IncludeFencedBrokers asks.
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

int broker_handle_describe_cluster(broker_req_t *r) {
    broker_t *b = r->b;
    proto_describe_cluster_request_t *req = broker_body(r);
    proto_describe_cluster_response_t *resp = r->resp;
    resp->endpoint_type = r->version >= 1 ? req->endpoint_type : 1;
    resp->cluster_id = sm_str_from(b->cluster_id);
    resp->controller_id = broker_client_controller_id(b);
    if (r->version >= 1 && req->endpoint_type != 1) {
        resp->error_code = PROTO_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp->error_message = sm_arena_str(&r->arena, "The broker only handles BROKER endpoints.");
        resp->controller_id = -1;
        resp->brokers.n = 0;
        return BROKER_RESPOND;
    }
    broker_node_t *nodes;
    int nn = broker_nodes(r, r->version >= 2 && req->include_fenced_brokers, &nodes);
    if (nn < 0) return BROKER_CLOSE;
    resp->brokers.v = sm_arena_calloc(&r->arena, (size_t)nn + 1, sizeof(*resp->brokers.v));
    if (!resp->brokers.v) return BROKER_CLOSE;
    resp->brokers.n = nn;
    for (int i = 0; i < nn; i++) {
        resp->brokers.v[i].broker_id = nodes[i].id;
        resp->brokers.v[i].host = nodes[i].host;
        resp->brokers.v[i].port = nodes[i].port;
        resp->brokers.v[i].rack = nodes[i].rack;
        resp->brokers.v[i].is_fenced = nodes[i].fenced;
    }
    /* No authorizer: every cluster operation is allowed. */
    resp->cluster_authorized_operations =
        req->include_cluster_authorized_operations ? BROKER_CLUSTER_OPS : INT32_MIN;
    return BROKER_RESPOND;
}
