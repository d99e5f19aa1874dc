/*
 * Request header parsing and response header writing (see request.h).
 */
#include "protocol/request.h"

enum { API_KEY_API_VERSIONS = 18, API_KEY_CONTROLLED_SHUTDOWN = 7 };

static bool is_flexible(const proto_msg_desc_t *m, int16_t version) {
    return m->first_flexible_version >= 0 && version >= m->first_flexible_version;
}

int proto_request_header_version(int16_t api_key, int16_t version) {
    const proto_api_desc_t *api = proto_api_lookup(api_key);
    if (!api || version < api->request->min_version || version > api->request->max_version)
        return -1;
    if (is_flexible(api->request, version)) return 2;
    /* ControlledShutdown v0 predates the client id. */
    if (api_key == API_KEY_CONTROLLED_SHUTDOWN && version == 0) return 0;
    return 1;
}

int proto_response_header_version(int16_t api_key, int16_t version) {
    const proto_api_desc_t *api = proto_api_lookup(api_key);
    if (!api || version < api->response->min_version || version > api->response->max_version)
        return -1;
    if (api_key == API_KEY_API_VERSIONS) return 0;
    return is_flexible(api->response, version) ? 1 : 0;
}

int proto_request_parse_header(const uint8_t *frame, size_t len, sm_arena_t *a,
                               proto_request_t *req) {
    memset(req, 0, sizeof(*req));
    proto_request_header_init(&req->header);
    sm_reader_t r = sm_reader_make(frame, len);
    TRY(sm_rd_i16(&r, &req->header.request_api_key));
    TRY(sm_rd_i16(&r, &req->header.request_api_version));
    TRY(sm_rd_i32(&r, &req->header.correlation_id));
    int16_t key = req->header.request_api_key, version = req->header.request_api_version;
    req->api = proto_api_lookup(key);
    int hv = proto_request_header_version(key, version);
    if (hv < 0) {
        /* Unknown version: Kafka still reads the client id of header v1 so it
         * can log it; the body is left alone. A v2 header is read when the
         * version is above the flexible threshold. */
        req->header_version = 1;
        if (req->api && req->api->request->first_flexible_version >= 0 &&
            version >= req->api->request->first_flexible_version)
            req->header_version = 2;
        sm_reader_t hr = sm_reader_make(frame, len);
        if (proto_request_header_decode(&hr, a, (int16_t)req->header_version, &req->header) ==
            SM_OK) {
            req->body_start = hr.p;
            req->body_len = sm_rd_left(&hr);
        }
        return SM_ERR_VERSION;
    }
    req->header_version = (int16_t)hv;
    r = sm_reader_make(frame, len);
    TRY(proto_request_header_decode(&r, a, (int16_t)hv, &req->header));
    req->body_start = r.p;
    req->body_len = sm_rd_left(&r);
    return SM_OK;
}

int proto_request_parse(const uint8_t *frame, size_t len, sm_arena_t *a, proto_request_t *req) {
    TRY(proto_request_parse_header(frame, len, a, req));
    const proto_msg_desc_t *m = req->api->request;
    req->body = sm_arena_alloc(a, m->struct_size);
    if (!req->body) return SM_ERR_NOMEM;
    sm_reader_t r = sm_reader_make(req->body_start, req->body_len);
    TRY(m->decode(&r, a, req->header.request_api_version, req->body));
    if (sm_rd_left(&r) != 0) return SM_ERR_PARSE;
    return SM_OK;
}

size_t proto_decode_arena_limit(size_t len) {
    return PROTO_DECODE_RATIO * len + PROTO_DECODE_SLACK;
}

size_t proto_resp_header_len(int header_version) { return header_version >= 1 ? 5 : 4; }

int proto_resp_header_write(sm_writer_t *w, int header_version, int32_t correlation_id) {
    TRY(sm_wr_i32(w, correlation_id));
    if (header_version >= 1) TRY(sm_wr_uvarint(w, 0)); /* no tagged fields */
    return SM_OK;
}

int proto_response_encode(sm_arena_t *a, const proto_api_desc_t *api, int16_t version,
                          int32_t correlation_id, const void *body, uint8_t **out, size_t *len) {
    int hv = proto_response_header_version(api->api_key, version);
    if (hv < 0) return SM_ERR_VERSION;
    size_t body_size = api->response->size(version, body);
    size_t total = 4 + proto_resp_header_len(hv) + body_size;
    if (total - 4 > INT32_MAX) return SM_ERR_RANGE;
    uint8_t *buf = sm_arena_alloc(a, total);
    if (!buf) return SM_ERR_NOMEM;
    sm_writer_t w = sm_writer_make(buf, total);
    TRY(sm_wr_i32(&w, (int32_t)(total - 4)));
    TRY(proto_resp_header_write(&w, hv, correlation_id));
    TRY(api->response->encode(&w, version, body));
    if (w.p != buf + total) return SM_ERR;
    *out = buf;
    *len = total;
    return SM_OK;
}
