/*
 * ApiVersions: the served APIs and their version ranges, and (v3+) the
 * supported and finalized feature levels (see features.c). A request at a
 * version above ours gets UNSUPPORTED_VERSION with the v0 body listing our
 * ranges (the dispatcher encodes it at v0), so the client can retry with a
 * version both know (KIP-511). From v5 a client that knows the cluster and
 * node it means to reach names both; when they are not this broker's the
 * answer is REBOOTSTRAP_REQUIRED with no api keys (KIP-1242), so that the
 * client looks for its cluster again.
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

int broker_handle_api_versions(broker_req_t *r) {
    proto_api_versions_response_t *resp = r->resp;
    const proto_api_versions_request_t *req = broker_body(r);
    if (r->version >= 5 && req->cluster_id.len >= 0 && req->node_id >= 0 &&
        (!sm_str_eq(req->cluster_id, sm_str_from(r->b->cluster_id)) ||
         req->node_id != r->b->s.node_id)) {
        resp->error_code = PROTO_ERR_REBOOTSTRAP_REQUIRED;
        resp->api_keys.n = 0;
        return BROKER_RESPOND;
    }
    size_t n;
    const broker_api_t *apis = broker_apis(&n);
    resp->api_keys.v = sm_arena_calloc(&r->arena, n, sizeof(*resp->api_keys.v));
    if (!resp->api_keys.v) return BROKER_CLOSE;
    resp->api_keys.n = (int32_t)n;
    for (size_t i = 0; i < n; i++) {
        resp->api_keys.v[i].api_key = apis[i].api_key;
        resp->api_keys.v[i].min_version = apis[i].min_version;
        resp->api_keys.v[i].max_version = apis[i].max_version;
    }
    resp->error_code = PROTO_ERR_NONE;
    if (r->version >= 3 && broker_api_versions_features(r) != SM_OK) return BROKER_CLOSE;
    return BROKER_RESPOND;
}
