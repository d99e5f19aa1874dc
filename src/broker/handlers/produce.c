/*
 * Produce: validates each partition's record batch (exactly one magic-v2
 * batch from v3 on, CRC, sizes, record structure, max.message.bytes,
 * timestamps), checks idempotent producers' sequences, appends it to the
 * partition log (batches are stored as produced; base offset, leader epoch and
 * for LogAppendTime the timestamp are patched in place), and answers per
 * partition; from v13 topics are named by id (KIP-516). acks=0 gets no
 * response; with samsa.log.fsync.before.ack the answer waits for the flusher
 * (group commit). Produce v0-v2 are advertised,
 * as Kafka 4.4 does, but not decodable: such a request closes the connection
 * (dispatch.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delayed.h"
#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "broker/replica.h"
#include "protocol/compress.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "txn/coordinator.h"
#include "base/log.h"

typedef proto_produce_request_t req_t;
typedef proto_produce_response_t resp_t;
typedef proto_produce_response_partition_produce_response_t presp_t;

/* The bound on a compressed batch's records when they are decompressed to be
 * checked: 16 times max.message.bytes, within 1..256 MiB. */
static size_t decompressed_bound(const broker_partition_t *p) {
    size_t cap = (size_t)p->max_message_bytes * 16;
    if (cap < (1u << 20)) cap = 1u << 20;
    if (cap > (256u << 20)) cap = 256u << 20;
    return cap;
}

/*
 * KIP-467 and Kafka's LogValidator: a compacted topic takes only records with
 * keys. Each keyless record is named in record_errors (its index in the batch
 * and a message), and the whole batch is refused with INVALID_RECORD. The
 * batch passed validate(), so its records decode.
 */
static int16_t check_keys(broker_req_t *r, broker_partition_t *p, const uint8_t *data, size_t len,
                          const proto_batch_header_t *h, presp_t *out) {
    const uint8_t *area = data + PROTO_BATCH_HEADER_SIZE;
    size_t area_len = len - PROTO_BATCH_HEADER_SIZE;
    uint8_t *plain = NULL;
    int codec = proto_batch_compression(h);
    if (codec != PROTO_COMPRESSION_NONE) {
        if (proto_decompress_alloc(codec, area, area_len, decompressed_bound(p), &plain,
                                   &area_len) != SM_OK)
            return PROTO_ERR_CORRUPT_MESSAGE;
        area = plain;
    }
    int32_t n = 0;
    proto_produce_response_batch_index_and_error_message_t *errs =
        sm_arena_calloc(&r->arena, (size_t)h->records_count + 1, sizeof(*errs));
    char msg[400];
    snprintf(msg, sizeof(msg),
             "Compacted topic cannot accept message without key in topic partition %s-%d", p->topic,
             p->index);
    sm_str_t key_msg = sm_arena_str(&r->arena, msg);
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, area, area_len, h->records_count);
    for (int32_t i = 0; errs && proto_record_iter_next(&it, &rec) == 1; i++) {
        if (rec.key.len >= 0) continue;
        errs[n].batch_index = i;
        errs[n].batch_index_error_message = key_msg;
        n++;
    }
    free(plain);
    if (!errs) return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    if (n == 0) return PROTO_ERR_NONE;
    out->record_errors = (proto_produce_response_batch_index_and_error_message_array_t){n, errs};
    /* Kafka's summary: the count and the first three errors. */
    size_t cap = 200 + 3 * (sizeof(msg) + 40), used;
    char *sum = sm_arena_alloc(&r->arena, cap);
    if (!sum) return PROTO_ERR_INVALID_RECORD;
    used = (size_t)snprintf(
        sum, cap,
        "One or more records have been rejected due to %d record errors in total, and only "
        "showing the first three errors at most: [",
        n);
    for (int32_t i = 0; i < n && i < 3; i++)
        used +=
            (size_t)snprintf(sum + used, cap - used, "%sRecordError(batchIndex=%d, message='%s')",
                             i ? ", " : "", errs[i].batch_index, msg);
    snprintf(sum + used, cap - used, "]");
    out->error_message = sm_str_from(sum);
    return PROTO_ERR_INVALID_RECORD;
}

/* Validates the records of one partition; returns a Kafka error code. */
static int16_t validate(broker_req_t *r, broker_partition_t *p, uint8_t *data, size_t len,
                        proto_batch_header_t *h, presp_t *out) {
    if (!data || len == 0) {
        out->error_message = sm_arena_str(&r->arena, "Produce request has no records");
        return PROTO_ERR_CORRUPT_MESSAGE;
    }
    proto_batch_iter_t it;
    const uint8_t *bp;
    size_t blen;
    proto_batch_iter_init(&it, data, len);
    int rc = proto_batch_iter_next(&it, &bp, &blen, h);
    if (rc == SM_ERR_VERSION) return PROTO_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    if (rc != 1) return PROTO_ERR_CORRUPT_MESSAGE;
    if (blen != len) {
        out->error_message = sm_arena_str(
            &r->arena,
            "Produce requests with version 3 or later must contain exactly one record batch");
        return PROTO_ERR_INVALID_RECORD;
    }
    if ((int64_t)len > p->max_message_bytes) {
        out->error_message =
            sm_arena_str(&r->arena, "The record batch is larger than max.message.bytes");
        return PROTO_ERR_MESSAGE_TOO_LARGE;
    }
    rc = proto_batch_validate(data, len, h);
    if (rc == SM_ERR_VERSION) return PROTO_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    if (rc != SM_OK) {
        out->error_message = sm_arena_str(
            &r->arena, "Record batch failed validation (size, CRC or record structure)");
        return PROTO_ERR_CORRUPT_MESSAGE;
    }
    if (proto_batch_compression(h) != PROTO_COMPRESSION_NONE) {
        /* Decompress into a bounded buffer to check every record; a batch that
         * would expand past the bound is refused, not allocated. */
        rc = proto_batch_validate_compressed(data, len, decompressed_bound(p));
        if (rc == SM_ERR_RANGE) {
            out->error_message =
                sm_arena_str(&r->arena, "Decompressed record batch exceeds the broker's bound");
            return PROTO_ERR_RECORD_LIST_TOO_LARGE;
        }
        if (rc == SM_ERR_VERSION) return PROTO_ERR_UNSUPPORTED_COMPRESSION_TYPE;
        if (rc != SM_OK) {
            out->error_message =
                sm_arena_str(&r->arena, "Compressed record batch failed validation");
            return PROTO_ERR_CORRUPT_MESSAGE;
        }
    }
    if (h->records_count == 0) {
        out->error_message = sm_arena_str(&r->arena, "Record batch has no records");
        return PROTO_ERR_INVALID_RECORD;
    }
    if (h->attributes & PROTO_ATTR_CONTROL) {
        out->error_message = sm_arena_str(&r->arena, "Clients cannot produce control batches");
        return PROTO_ERR_INVALID_RECORD;
    }
    if ((h->attributes & PROTO_ATTR_TRANSACTIONAL) && h->producer_id < 0) {
        out->error_message = sm_arena_str(&r->arena, "Transactional batch without a producer id");
        return PROTO_ERR_INVALID_RECORD;
    }
    if (h->producer_id >= 0 && h->base_sequence < 0) {
        out->error_message = sm_arena_str(&r->arena, "Idempotent batch without a base sequence");
        return PROTO_ERR_INVALID_RECORD;
    }
    if (p->compacted) {
        int16_t err = check_keys(r, p, data, len, h, out);
        if (err) return err;
    }
    if (!p->log_append_time) {
        int64_t now = broker_now_ms();
        if ((p->timestamp_before_max_ms < INT64_MAX &&
             now - h->base_timestamp > p->timestamp_before_max_ms) ||
            h->max_timestamp - now > p->timestamp_after_max_ms) {
            out->error_message = sm_arena_str(
                &r->arena, "Timestamp of the record batch is out of the accepted range");
            return PROTO_ERR_INVALID_TIMESTAMP;
        }
    }
    return PROTO_ERR_NONE;
}

/*
 * The first batch of a transaction on a partition is written only once the
 * coordinator has the partition in that transaction: KIP-890 part 1 checks it
 * (Produce up to v11), part 2 adds it (v12+: transactions V2 name no
 * AddPartitionsToTxn). Later batches of the same open transaction need
 * nothing. Not under p->mu: the coordinator may write and flush. *guard gets
 * the producer's marker count here: a marker appended between this check and
 * the append ended the transaction the check was about (the append then refuses
 * a batch that would open a transaction nobody ends, as Kafka's verification
 * guard).
 */
static int16_t check_transaction(broker_req_t *r, broker_partition_t *p,
                                 const proto_batch_header_t *h, presp_t *out, uint64_t *guard) {
    if (!(h->attributes & PROTO_ATTR_TRANSACTIONAL)) return PROTO_ERR_NONE;
    pthread_mutex_lock(&p->mu);
    const txn_producer_t *tp = txn_producer_state_get(&p->producers, h->producer_id);
    bool open = tp && tp->current_txn_first_offset >= 0 && tp->epoch == h->producer_epoch;
    *guard = tp ? tp->markers : 0;
    pthread_mutex_unlock(&p->mu);
    if (open) return PROTO_ERR_NONE;
    proto_produce_request_t *req = broker_body(r);
    sm_str_t topic = sm_str_from(p->topic);
    int16_t err = r->version >= 12
                      ? txn_coordinator_add_implicit(r->b, req->transactional_id, h->producer_id,
                                                     h->producer_epoch, topic, p->index)
                      : txn_coordinator_verify(r->b, req->transactional_id, h->producer_id,
                                               h->producer_epoch, topic, p->index, r->version);
    if (err == PROTO_ERR_INVALID_TXN_STATE || err == PROTO_ERR_TRANSACTION_ABORTABLE)
        out->error_message = sm_arena_str(&r->arena, "Partition was not added to the transaction");
    return err;
}

/* Appends one validated batch with the idempotence checks; under p->mu. */
static int16_t append(broker_req_t *r, broker_partition_t *p, uint8_t *data, size_t len,
                      const proto_batch_header_t *h, presp_t *out, bool *appended, uint64_t guard,
                      int64_t *end, bool *hw_moved) {
    int16_t err = PROTO_ERR_NONE;
    pthread_mutex_lock(&p->mu);
    /* Leadership may have moved since the check before validation. */
    if (p->replicated && !atomic_load(&p->leader)) {
        err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
        goto out;
    }
    if (h->attributes & PROTO_ATTR_TRANSACTIONAL) {
        const txn_producer_t *tp = txn_producer_state_get(&p->producers, h->producer_id);
        if (tp && tp->markers != guard && tp->current_txn_first_offset < 0) {
            err = r->version > 10 ? PROTO_ERR_TRANSACTION_ABORTABLE : PROTO_ERR_INVALID_TXN_STATE;
            goto out;
        }
    }
    if (h->producer_id >= 0) {
        int64_t dup = -1;
        int32_t last_seq = (int32_t)(((int64_t)h->base_sequence + h->last_offset_delta) %
                                     ((int64_t)INT32_MAX + 1));
        switch (txn_producer_state_check(&p->producers, h->producer_id, h->producer_epoch,
                                         h->base_sequence, last_seq, &dup)) {
        case TXN_APPEND: break;
        case TXN_DUPLICATE:
            /* A retry of a batch the log has: answered with its offset once it is as
             * replicated as a first answer would have been (a leader cut off from its
             * followers may hold it unreplicated: acknowledging it then loses it). */
            out->base_offset = dup;
            out->log_start_offset = log_start_offset(p->log);
            *end = dup + (int64_t)h->last_offset_delta + 1;
            goto out;
        case TXN_OUT_OF_ORDER: err = PROTO_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER; goto out;
        case TXN_FENCED_EPOCH: err = PROTO_ERR_INVALID_PRODUCER_EPOCH; goto out;
        case TXN_UNKNOWN_PRODUCER: err = PROTO_ERR_UNKNOWN_PRODUCER_ID; goto out;
        }
    }
    int64_t now = broker_now_ms();
    if (p->log_append_time) {
        proto_batch_set_log_append_time(data, len, now);
        out->log_append_time_ms = now;
    }
    int64_t first, last;
    int rc = log_append(p->log, data, len, p->leader_epoch, &first, &last);
    if (rc != SM_OK) {
        err = PROTO_ERR_KAFKA_STORAGE_ERROR;
        out->error_message = sm_arena_str(
            &r->arena, log_full(p->log) ? "No space left on the partition's disk"
                                        : "The partition's log is offline after an I/O error");
        goto out;
    }
    if (broker_partition_track_batch(p, h, first, last,
                                     p->log_append_time ? now : h->max_timestamp) != SM_OK)
        sm_warn("produce", "%s-%d: producer state not updated at %lld (out of memory)", p->topic,
                p->index, (long long)first);
    broker_partition_after_append(p);
    out->base_offset = first;
    out->log_start_offset = log_start_offset(p->log);
    *appended = true;
    *end = last + 1;
    *hw_moved = broker_replica_appended(p);
out:
    pthread_mutex_unlock(&p->mu);
    return err;
}

/* acks=all on replicated partitions: the answer waits until the ISR has
 * every appended batch (the high watermark passes it). */
typedef struct ack_wait {
    broker_partition_t *p; /* referenced by the parked request */
    int64_t required;
    presp_t *out;
    bool done;
} ack_wait_t;

typedef struct ack_state {
    int n;
    ack_wait_t *w;
    broker_partition_t **touched;
    int ntouched;
} ack_state_t;

static bool ack_retry(broker_req_t *r, bool final) {
    ack_state_t *st = r->state;
    bool all = true;
    for (int i = 0; i < st->n; i++) {
        ack_wait_t *w = &st->w[i];
        if (w->done) continue;
        int16_t err;
        if (broker_replica_acked(w->p, w->required, &err)) {
            w->done = true;
        } else if (final) {
            w->done = true;
            err = PROTO_ERR_REQUEST_TIMED_OUT;
        } else {
            all = false;
            continue;
        }
        if (err != PROTO_ERR_NONE) {
            w->out->error_code = err;
            w->out->base_offset = -1;
        }
    }
    if (!all) return false;
    broker_t *b = r->b;
    if (b->s.fsync_before_ack && !atomic_load(&b->stopping))
        broker_flush_then_finish(b, r, st->touched, st->ntouched);
    else
        broker_req_finish(r);
    return true;
}

/* KIP-951 (v10+): partitions answered NOT_LEADER_OR_FOLLOWER name their
 * leader and epoch, and the response lists those leaders' endpoints, so the
 * client retries there without a Metadata round trip. */
static void name_leaders(broker_req_t *r) {
    resp_t *resp = r->resp;
    int32_t total = 0;
    for (int32_t i = 0; i < resp->responses.n; i++)
        total += resp->responses.v[i].partition_responses.n;
    resp->node_endpoints.n = 0;
    int32_t *leaders = sm_arena_calloc(&r->arena, (size_t)total + 1, sizeof(*leaders));
    if (!leaders) return;
    int nleaders = 0;
    for (int32_t i = 0; i < resp->responses.n; i++) {
        proto_produce_response_topic_produce_response_t *t = &resp->responses.v[i];
        for (int32_t k = 0; k < t->partition_responses.n; k++) {
            presp_t *o = &t->partition_responses.v[k];
            if (o->error_code != PROTO_ERR_NOT_LEADER_OR_FOLLOWER) continue;
            int32_t leader, epoch;
            if (!broker_other_leader(r, r->version >= 13, &t->topic_id, t->name, o->index,
                                     &leader, &epoch))
                continue;
            o->current_leader = sm_arena_calloc(&r->arena, 1, sizeof(*o->current_leader));
            if (!o->current_leader) return;
            o->current_leader->leader_id = leader;
            o->current_leader->leader_epoch = epoch;
            leaders[nleaders++] = leader;
        }
    }
    broker_node_t *nodes;
    int n = broker_nodes_among(r, leaders, nleaders, &nodes);
    if (n <= 0) return;
    resp->node_endpoints.v = sm_arena_calloc(&r->arena, (size_t)n, sizeof(*resp->node_endpoints.v));
    if (!resp->node_endpoints.v) return;
    for (int i = 0; i < n; i++) {
        proto_produce_response_node_endpoint_t *e = &resp->node_endpoints.v[i];
        e->node_id = nodes[i].id;
        e->host = nodes[i].host;
        e->port = nodes[i].port;
        e->rack = nodes[i].rack;
    }
    resp->node_endpoints.n = n;
}

int broker_handle_produce(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int32_t nt = req->topic_data.n > 0 ? req->topic_data.n : 0;
    resp->responses.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->responses.v));
    if (!resp->responses.v) return BROKER_CLOSE;
    resp->responses.n = nt;
    int16_t all_err = PROTO_ERR_NONE;
    if (req->acks != 0 && req->acks != 1 && req->acks != -1)
        all_err = PROTO_ERR_INVALID_REQUIRED_ACKS;

    int total_parts = 0;
    for (int32_t i = 0; i < nt; i++)
        total_parts +=
            req->topic_data.v[i].partition_data.n > 0 ? req->topic_data.v[i].partition_data.n : 0;
    /* On the heap, not in the request's arena: once the request is handed to
     * the flusher or parked it may be answered (and its arena freed) before
     * this handler has released its references. */
    broker_partition_t **touched = calloc((size_t)total_parts + 1, sizeof(*touched));
    ack_wait_t *waits = sm_arena_calloc(&r->arena, (size_t)total_parts + 1, sizeof(*waits));
    if (!touched || !waits) {
        free(touched);
        return BROKER_CLOSE;
    }
    int ntouched = 0, nwaits = 0;

    for (int32_t i = 0; i < nt; i++) {
        const proto_produce_request_topic_produce_data_t *td = &req->topic_data.v[i];
        proto_produce_response_topic_produce_response_t *tr = &resp->responses.v[i];
        tr->name = td->name;
        tr->topic_id = td->topic_id;
        int32_t np = td->partition_data.n > 0 ? td->partition_data.n : 0;
        tr->partition_responses.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(presp_t));
        if (!tr->partition_responses.v) goto close;
        tr->partition_responses.n = np;
        for (int32_t k = 0; k < np; k++) {
            const proto_produce_request_partition_produce_data_t *pd = &td->partition_data.v[k];
            presp_t *out = &tr->partition_responses.v[k];
            out->index = pd->index;
            out->base_offset = -1;
            out->log_append_time_ms = -1;
            out->log_start_offset = -1;
            out->error_message = SM_STR_NULL;
            out->record_errors.n = 0;
            if (all_err) {
                out->error_code = all_err;
                continue;
            }
            /* v13+ names topics by id only (KIP-516). */
            bool by_id = r->version >= 13;
            broker_partition_t *p =
                broker_partition_lookup(b, td->name, by_id ? &td->topic_id : NULL, pd->index);
            if (!p) {
                out->error_code = broker_partition_absent_error(
                    b, td->name, by_id ? &td->topic_id : NULL, pd->index,
                    by_id ? PROTO_ERR_UNKNOWN_TOPIC_ID : PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION);
                continue;
            }
            uint8_t *data = (uint8_t *)pd->records.ptr;
            size_t len = pd->records.len > 0 ? (size_t)pd->records.len : 0;
            proto_batch_header_t h;
            out->error_code = validate(r, p, data, len, &h, out);
            bool appended = false, hw_moved = false;
            uint64_t guard = 0;
            int64_t end = -1;
            if (out->error_code == PROTO_ERR_NONE)
                out->error_code = broker_replica_produce_check(p, req->acks);
            if (out->error_code == PROTO_ERR_NONE)
                out->error_code = check_transaction(r, p, &h, out, &guard);
            if (out->error_code == PROTO_ERR_NONE)
                out->error_code =
                    append(r, p, data, len, &h, out, &appended, guard, &end, &hw_moved);
            if (appended) broker_wake(b, p);
            /* appended, or a duplicate of a batch the log holds (end set) */
            if (appended || (end >= 0 && out->error_code == PROTO_ERR_NONE)) {
                if (req->acks == -1 && p->replicated)
                    waits[nwaits++] = (ack_wait_t){p, end, out, false};
                touched[ntouched++] = p;
            } else {
                broker_partition_put(p);
            }
        }
    }
    if (b->s.cluster_mode && r->version >= 10) name_leaders(r);
    int outcome = BROKER_RESPOND;
    if (b->s.fsync_before_ack && ntouched > 0 && atomic_load(&b->stopping))
        for (int i = 0; i < ntouched; i++)
            if (log_flush(touched[i]->log) != SM_OK) broker_produce_unflushed(r, touched[i]);
    if (req->acks == 0 && all_err == PROTO_ERR_NONE) {
        outcome = BROKER_NO_RESPONSE;
    } else if (nwaits > 0) {
        /* acks=all: parked until the ISR has the batches (woken as the high
         * watermark moves), at most the request's timeout. */
        ack_state_t *st = sm_arena_calloc(&r->arena, 1, sizeof(*st));
        broker_partition_t **kept =
            sm_arena_calloc(&r->arena, (size_t)ntouched + 1, sizeof(*kept));
        if (!st || !kept) {
            outcome = BROKER_CLOSE;
        } else {
            memcpy(kept, touched, (size_t)ntouched * sizeof(*kept));
            *st = (ack_state_t){nwaits, waits, kept, ntouched};
            r->state = st;
            int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : 0;
            broker_park(b, r, touched, ntouched, broker_mono_ms() + timeout, ack_retry);
            outcome = BROKER_PARKED;
        }
    } else if (b->s.fsync_before_ack && ntouched > 0 && !atomic_load(&b->stopping)) {
        broker_flush_then_finish(b, r, touched, ntouched);
        outcome = BROKER_PARKED;
    }
    for (int i = 0; i < ntouched; i++)
        broker_partition_put(touched[i]);
    free(touched);
    return outcome;
close:
    for (int i = 0; i < ntouched; i++)
        broker_partition_put(touched[i]);
    free(touched);
    return BROKER_CLOSE;
}

void broker_produce_unflushed(broker_req_t *r, broker_partition_t *p) {
    proto_produce_response_t *resp = r->resp;
    sm_str_t topic = sm_str_from(p->topic);
    for (int32_t i = 0; i < resp->responses.n; i++) {
        proto_produce_response_topic_produce_response_t *t = &resp->responses.v[i];
        if (r->version >= 13 ? memcmp(t->topic_id.b, p->topic_id.b, 16) != 0
                             : !sm_str_eq(t->name, topic))
            continue;
        for (int32_t k = 0; k < t->partition_responses.n; k++) {
            presp_t *o = &t->partition_responses.v[k];
            if (o->index != p->index || o->error_code != PROTO_ERR_NONE) continue;
            o->error_code = PROTO_ERR_KAFKA_STORAGE_ERROR;
            o->base_offset = -1;
            o->error_message = sm_arena_str(&r->arena, "The append could not be flushed to disk");
        }
    }
}
