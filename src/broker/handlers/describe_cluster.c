/*
 * DescribeCluster: the cluster id, the controller (this node: it is a
 * combined broker and controller) and the brokers (this one). Controller
 * endpoints (v1 EndpointType 2) are served by Kafka's controllers only, so a
 * broker refuses them as Kafka does. v2 (KIP-1073) marks fenced brokers and
 * lists them only when IncludeFencedBrokers asks: the one broker here is
 * serving, so it is unfenced and there is no fenced one to add.
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

int broker_handle_describe_cluster(broker_req_t *r) {
    broker_t *b = r->b;
    proto_describe_cluster_request_t *req = broker_body(r);
    proto_describe_cluster_response_t *resp = r->resp;
    resp->endpoint_type = r->version >= 1 ? req->endpoint_type : 1;
    resp->cluster_id = sm_str_from(b->cluster_id);
    resp->controller_id = b->s.node_id;
    if (r->version >= 1 && req->endpoint_type != 1) {
        resp->error_code = PROTO_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp->error_message = sm_arena_str(&r->arena, "The broker only handles BROKER endpoints.");
        resp->controller_id = -1;
        resp->brokers.n = 0;
        return BROKER_RESPOND;
    }
    resp->brokers.v = sm_arena_calloc(&r->arena, 1, sizeof(*resp->brokers.v));
    if (!resp->brokers.v) return BROKER_CLOSE;
    resp->brokers.n = 1;
    resp->brokers.v[0].broker_id = b->s.node_id;
    resp->brokers.v[0].host = sm_str_from(broker_req_host(r));
    resp->brokers.v[0].port = broker_req_port(r);
    resp->brokers.v[0].rack = (sm_str_t){NULL, -1};
    resp->brokers.v[0].is_fenced = false;
    /* No authorizer: every cluster operation is allowed. */
    resp->cluster_authorized_operations =
        req->include_cluster_authorized_operations ? BROKER_CLUSTER_OPS : INT32_MIN;
    return BROKER_RESPOND;
}
