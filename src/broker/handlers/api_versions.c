/*
 * ApiVersions: the served APIs and their version ranges, and (v3+) the
 * supported and finalized feature levels (see features.c). A request at a
 * version above ours gets UNSUPPORTED_VERSION with the v0 body listing our
 * ranges (the dispatcher encodes it at v0), so the client can retry with a
 * version both know (KIP-511).
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

int broker_handle_api_versions(broker_req_t *r) {
    proto_api_versions_response_t *resp = r->resp;
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
