/*
 * Fetch: for each requested partition, the segment range from the batch that
 * holds the fetch offset (a whole batch even when the offset is inside it, as
 * Kafka does), up to partition max bytes and the response's max bytes (the
 * first partition with data always gets at least one whole batch, KIP-74),
 * sent from the file with sendfile. Long poll: with fewer than min bytes
 * available the request is parked until an append to one of its partitions or
 * max wait. Topic ids from v13. No fetch sessions are kept: every response has
 * session id 0, which clients handle as a full fetch each time (KIP-227
 * allows a broker to decline sessions). Isolation levels read the same data:
 * there are no transactions yet, so the last stable offset is the high
 * watermark.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/delayed.h"
#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "protocol/errors.h"

typedef proto_fetch_request_t req_t;
typedef proto_fetch_response_t resp_t;
typedef proto_fetch_response_partition_data_t pdata_t;

/* Per-request state kept across re-evaluations (in the request's arena). */
typedef struct fetch_state {
    int64_t deadline;
    int nparts;
    broker_partition_t **parts; /* NULL entries for unknown partitions */
} fetch_state_t;

static void release_ranges(broker_req_t *r) {
    for (int i = 0; i < r->nranges; i++) log_range_release(&r->ranges[i]);
    r->nranges = 0;
}

/* Builds the response from the current state of the logs; returns the number
 * of record bytes it carries. */
static size_t build(broker_req_t *r, fetch_state_t *st) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int16_t v = r->version;
    release_ranges(r);
    size_t budget = req->max_bytes > 0 ? (size_t)req->max_bytes : (size_t)b->s.fetch_max_bytes;
    if (v < 3) budget = SIZE_MAX;
    if (budget > (size_t)b->s.fetch_max_bytes) budget = (size_t)b->s.fetch_max_bytes;
    size_t total = 0;
    bool first_data = true;
    int idx = 0;
    resp->error_code = PROTO_ERR_NONE;
    resp->session_id = 0;
    for (int32_t i = 0; i < resp->responses.n; i++) {
        const proto_fetch_request_fetch_topic_t *rt = &req->topics.v[i];
        proto_fetch_response_fetchable_topic_response_t *tr = &resp->responses.v[i];
        for (int32_t k = 0; k < tr->partitions.n; k++, idx++) {
            const proto_fetch_request_fetch_partition_t *rp = &rt->partitions.v[k];
            pdata_t *out = &tr->partitions.v[k];
            broker_partition_t *p = st->parts[idx];
            out->partition_index = rp->partition;
            out->records = (sm_bytes_t){NULL, 0};
            out->aborted_transactions.n = -1;
            out->preferred_read_replica = -1;
            out->high_watermark = -1;
            out->last_stable_offset = -1;
            out->log_start_offset = -1;
            if (!p) {
                out->error_code = v >= 13 ? PROTO_ERR_UNKNOWN_TOPIC_ID : PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (rp->current_leader_epoch >= 0 && v >= 9) {
                if (rp->current_leader_epoch < p->leader_epoch) {
                    out->error_code = PROTO_ERR_FENCED_LEADER_EPOCH;
                    continue;
                }
                if (rp->current_leader_epoch > p->leader_epoch) {
                    out->error_code = PROTO_ERR_UNKNOWN_LEADER_EPOCH;
                    continue;
                }
            }
            int64_t hw = log_end_offset(p->log);
            out->high_watermark = hw;
            out->last_stable_offset = hw;
            out->log_start_offset = log_start_offset(p->log);
            out->aborted_transactions.n = v >= 4 ? 0 : -1;
            if (rp->fetch_offset < out->log_start_offset || rp->fetch_offset > hw) {
                out->error_code = PROTO_ERR_OFFSET_OUT_OF_RANGE;
                continue;
            }
            out->error_code = PROTO_ERR_NONE;
            if (rp->fetch_offset == hw || (total >= budget && !first_data)) continue;
            size_t max = rp->partition_max_bytes > 0 ? (size_t)rp->partition_max_bytes : 0;
            if (budget - total < max) max = budget - total;
            if (max == 0 && !first_data) continue;
            log_range_t range;
            int rc = log_read(p->log, rp->fetch_offset, max, first_data, &range);
            if (rc == SM_ERR_RANGE) {
                out->error_code = PROTO_ERR_OFFSET_OUT_OF_RANGE;
                continue;
            }
            if (rc != SM_OK) {
                out->error_code = PROTO_ERR_KAFKA_STORAGE_ERROR;
                continue;
            }
            if (range.len == 0) {
                log_range_release(&range);
                continue;
            }
            total += range.len;
            first_data = false;
            out->records = broker_req_add_range(r, &range);
        }
    }
    return total;
}

static bool retry(broker_req_t *r, bool final) {
    req_t *req = broker_body(r);
    fetch_state_t *st = r->state;
    size_t got = build(r, st);
    if (!final && got < (size_t)(req->min_bytes > 0 ? req->min_bytes : 1) &&
        broker_mono_ms() < st->deadline) {
        release_ranges(r);
        return false;
    }
    for (int i = 0; i < st->nparts; i++)
        if (st->parts[i]) broker_partition_put(st->parts[i]);
    st->nparts = 0;
    broker_req_finish(r);
    return true;
}

int broker_handle_fetch(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int16_t v = r->version;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->responses.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->responses.v));
    if (!resp->responses.v) return BROKER_CLOSE;
    resp->responses.n = nt;
    int total_parts = 0;
    for (int32_t i = 0; i < nt; i++) total_parts += req->topics.v[i].partitions.n > 0 ? req->topics.v[i].partitions.n : 0;
    fetch_state_t *st = sm_arena_alloc(&r->arena, sizeof(*st));
    if (!st) return BROKER_CLOSE;
    st->parts = sm_arena_calloc(&r->arena, (size_t)total_parts + 1, sizeof(*st->parts));
    if (!st->parts) return BROKER_CLOSE;
    st->nparts = total_parts;
    r->state = st;
    int idx = 0;
    for (int32_t i = 0; i < nt; i++) {
        const proto_fetch_request_fetch_topic_t *rt = &req->topics.v[i];
        proto_fetch_response_fetchable_topic_response_t *tr = &resp->responses.v[i];
        tr->topic = rt->topic;
        tr->topic_id = rt->topic_id;
        int32_t np = rt->partitions.n > 0 ? rt->partitions.n : 0;
        tr->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(pdata_t));
        if (!tr->partitions.v) return BROKER_CLOSE;
        tr->partitions.n = np;
        meta_image_rdlock(&b->image);
        meta_topic_t *t = v >= 13 ? meta_image_topic_by_id(&b->image, &rt->topic_id)
                                  : meta_image_topic(&b->image, rt->topic);
        sm_uuid_t tid = t ? t->id : (sm_uuid_t){{0}};
        int32_t n = t ? t->n_partitions : 0;
        meta_image_unlock(&b->image);
        for (int32_t k = 0; k < np; k++, idx++) {
            int32_t pi = rt->partitions.v[k].partition;
            st->parts[idx] = (t && pi >= 0 && pi < n) ? broker_partition_get(b, &tid, pi) : NULL;
        }
    }
    int32_t wait = req->max_wait_ms > 0 ? req->max_wait_ms : 0;
    st->deadline = broker_mono_ms() + wait;
    size_t got = build(r, st);
    bool enough = got >= (size_t)(req->min_bytes > 0 ? req->min_bytes : 1);
    if (enough || wait == 0 || total_parts == 0) {
        for (int i = 0; i < st->nparts; i++)
            if (st->parts[i]) broker_partition_put(st->parts[i]);
        st->nparts = 0;
        return BROKER_RESPOND;
    }
    /* Long poll: park on the known partitions. */
    release_ranges(r);
    broker_partition_t **known = sm_arena_calloc(&r->arena, (size_t)total_parts + 1, sizeof(*known));
    int nk = 0;
    for (int i = 0; known && i < st->nparts; i++)
        if (st->parts[i]) known[nk++] = st->parts[i];
    broker_park(b, r, known, nk, st->deadline, retry);
    return BROKER_PARKED;
}
