/*
 * From a request frame to a response: parse the header, check the api and
 * version, decode the body, run the handler, encode the response (with
 * zero-copy file ranges for record data) and hand it to the network layer.
 * Runs on the event-loop thread that read the frame; broker_req_finish may
 * run on any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker.h"
#include "cluster/cluster.h"
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

enum { API_VERSIONS_KEY = 18 };

/* Cluster mode: the APIs only the active controller serves; a broker relays them. */
static bool controller_api(int16_t key) {
    switch (key) {
    case 19: /* CreateTopics */
    case 20: /* DeleteTopics */
    case 33: /* AlterConfigs */
    case 37: /* CreatePartitions */
    case 43: /* ElectLeaders */
    case 44: /* IncrementalAlterConfigs */
    case 45: /* AlterPartitionReassignments */
    case 46: /* ListPartitionReassignments */
    case 49: /* AlterClientQuotas */
    case 55: /* DescribeQuorum */
    case 57: /* UpdateFeatures */
    case 80: /* AddRaftVoter (KIP-853): decided by the Raft leader */
    case 81: /* RemoveRaftVoter */
    case 82: /* UpdateRaftVoter */
        return true;
    default: return false;
    }
}

/* The group coordinator's APIs (a cluster has no group coordinator yet). */
static bool group_api(int16_t key) {
    switch (key) {
    case 8: case 9: case 11: case 12: case 13: case 14: case 15: case 16: case 42: case 47:
    case 68: case 69:
        return true;
    default: return false;
    }
}

static void req_free(broker_req_t *r) {
    for (int i = 0; i < r->nranges; i++) log_range_release(&r->ranges[i]);
    free(r->ranges);
    sm_arena_free(&r->arena);
    free(r);
}

static void release_req(void *arg) { req_free(arg); }

sm_bytes_t broker_req_add_range(broker_req_t *r, log_range_t *range) {
    if (r->nranges == r->cap_ranges) {
        int cap = r->cap_ranges ? r->cap_ranges * 2 : 8;
        log_range_t *n = realloc(r->ranges, sizeof(*n) * (size_t)cap);
        if (!n) {
            log_range_release(range);
            return (sm_bytes_t){NULL, 0};
        }
        r->ranges = n;
        r->cap_ranges = cap;
    }
    r->ranges[r->nranges++] = *range;
    range->seg = NULL;
    return (sm_bytes_t){NULL, (int32_t)range->len};
}

/* Encodes the response at version (header version from the api) and sends it. */
static void send_response(broker_req_t *r, const proto_api_desc_t *api, int16_t version) {
    int hv = api->api_key == API_VERSIONS_KEY ? 0 : proto_response_header_version(api->api_key, version);
    if (hv < 0) hv = 0;
    size_t body = api->response->size(version, r->resp);
    size_t holes_len = 0;
    for (int i = 0; i < r->nranges; i++) holes_len += r->ranges[i].len;
    size_t total = 4 + proto_resp_header_len(hv) + body;
    size_t mem = total - holes_len;
    uint8_t *buf = sm_arena_alloc(&r->arena, mem);
    size_t *pos = r->nranges ? sm_arena_calloc(&r->arena, (size_t)r->nranges, sizeof(size_t)) : NULL;
    net_segment_t *segs = sm_arena_calloc(&r->arena, (size_t)r->nranges * 2 + 1, sizeof(*segs));
    if (!buf || (r->nranges && !pos) || !segs || total - 4 > INT32_MAX) goto fail;
    sm_holes_t holes = {0, (size_t)r->nranges, pos};
    sm_writer_t w = sm_writer_make(buf, mem);
    if (r->nranges) w.holes = &holes;
    if (sm_wr_i32(&w, (int32_t)(total - 4)) || proto_resp_header_write(&w, hv, r->req.header.correlation_id) ||
        api->response->encode(&w, version, r->resp) || w.p != buf + mem || holes.n != (size_t)r->nranges) {
        sm_error("broker", "encoding %s v%d response failed", api->name, version);
        goto fail;
    }
    int n = 0;
    size_t at = 0;
    for (int i = 0; i < r->nranges; i++) {
        if (pos[i] > at) segs[n++] = (net_segment_t){buf + at, pos[i] - at, -1, 0, NULL, NULL};
        segs[n++] = (net_segment_t){NULL, r->ranges[i].len, r->ranges[i].fd, r->ranges[i].file_pos, NULL, NULL};
        at = pos[i];
    }
    if (mem > at || n == 0) segs[n++] = (net_segment_t){buf + at, mem - at, -1, 0, NULL, NULL};
    /* The last segment's release frees the request (arena, range references). */
    segs[n - 1].release = release_req;
    segs[n - 1].release_arg = r;
    net_request_respond(r->net, segs, n);
    return;
fail:
    net_request_close(r->net);
    req_free(r);
}

void broker_req_finish(broker_req_t *r) {
    send_response(r, r->req.api, r->version);
}

void broker_req_finish_none(broker_req_t *r) {
    net_request_respond_none(r->net);
    req_free(r);
}

static void close_req(broker_req_t *r, const char *why) {
    sm_warn("broker", "closing connection from %s: %s", net_conn_peer(r->net->conn), why);
    net_request_close(r->net);
    req_free(r);
}

/* Responds with the api's error response: the body's defaults with the top-level
 * error code when it has one. */
static void error_response(broker_req_t *r, const proto_api_desc_t *api, int16_t version, int16_t code) {
    r->resp = sm_arena_alloc(&r->arena, api->response->struct_size);
    if (!r->resp) {
        close_req(r, "out of memory");
        return;
    }
    api->response->init(r->resp);
    api->response->set_error(r->resp, code);
    send_response(r, api, version);
}

void broker_on_request(net_request_t *nreq, void *arg) {
    const broker_listener_t *l = arg;
    broker_t *b = l->b;
    broker_req_t *r = calloc(1, sizeof(*r));
    if (!r) {
        net_request_close(nreq);
        return;
    }
    r->b = b;
    r->net = nreq;
    r->listener = l;
    /* Decoded structures are bounded by a multiple of the frame size. */
    sm_arena_init(&r->arena, proto_decode_arena_limit(nreq->len));
    int rc = proto_request_parse_header(nreq->frame, nreq->len, &r->arena, &r->req);
    r->version = r->req.header.request_api_version;
    int16_t key = r->req.header.request_api_key;
    if (rc == SM_ERR_PARSE || (rc == SM_ERR_VERSION && !r->req.api && nreq->len < 8)) {
        close_req(r, "malformed request header");
        return;
    }
    const proto_api_desc_t *api = r->req.api;
    const broker_api_t *served = broker_api_find(key);
    if (!api) {
        /* Not a Kafka api key: nothing can be answered. */
        close_req(r, "unknown api key");
        return;
    }
    if (key == API_VERSIONS_KEY && (!served || r->version > served->max_version || rc == SM_ERR_VERSION)) {
        /* KIP-511: answer with our versions in a v0 body. */
        r->version = 0;
        r->resp = sm_arena_alloc(&r->arena, api->response->struct_size);
        if (!r->resp) {
            close_req(r, "out of memory");
            return;
        }
        api->response->init(r->resp);
        broker_handle_api_versions(r);
        ((proto_api_versions_response_t *)r->resp)->error_code = PROTO_ERR_UNSUPPORTED_VERSION;
        send_response(r, api, 0);
        return;
    }
    if (rc == SM_ERR_VERSION) {
        close_req(r, "request version outside the schema");
        return;
    }
    if (!served || r->version < served->min_version || r->version > served->max_version) {
        error_response(r, api, r->version, PROTO_ERR_UNSUPPORTED_VERSION);
        return;
    }
    if (b->cluster && !l->forwarded && controller_api(key)) {
        /* Relayed to the active controller (served there, or here when this is it). */
        cluster_forward(b->cluster, nreq);
        req_free(r);
        return;
    }
    if (!b->groups && group_api(key)) {
        error_response(r, api, r->version, PROTO_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    r->req.body = sm_arena_alloc(&r->arena, api->request->struct_size);
    if (!r->req.body) {
        close_req(r, "request too large to decode");
        return;
    }
    sm_reader_t rd = sm_reader_make(r->req.body_start, r->req.body_len);
    rc = api->request->decode(&rd, &r->arena, r->version, r->req.body);
    /* Bytes after the body are ignored, as Kafka does: some clients (librdkafka's
     * "all topics" Metadata request) send a few. */
    if (rc != SM_OK) {
        char why[160];
        snprintf(why, sizeof(why), "%s %s v%d request (%zu bytes left)",
                 rc == SM_ERR_NOMEM ? "oversized" : "malformed", api->name, r->version, sm_rd_left(&rd));
        char hex[2 * 96 + 1];
        size_t n = nreq->len < 96 ? nreq->len : 96;
        for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", nreq->frame[i]);
        sm_debug("broker", "%s: frame starts %s", why, hex);
        close_req(r, why);
        return;
    }
    /* The frame bounded what decoding could allocate; a response scales with
     * the broker's state (all topics' metadata, every log dir), not with the
     * request, so handlers are not held to that bound. */
    r->arena.limit = 0;
    r->resp = sm_arena_alloc(&r->arena, api->response->struct_size);
    if (!r->resp) {
        close_req(r, "out of memory");
        return;
    }
    api->response->init(r->resp);
    switch (served->handler(r)) {
    case BROKER_RESPOND:
        broker_req_finish(r);
        break;
    case BROKER_PARKED:
        break;
    case BROKER_NO_RESPONSE:
        broker_req_finish_none(r);
        break;
    default:
        close_req(r, "request refused by its handler");
        break;
    }
}
