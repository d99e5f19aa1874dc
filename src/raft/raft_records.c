/*
 * Raft entries <-> record batches (see raft_records.h).
 */
#include "raft/raft_records.h"

#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "protocol/gen/leader_change_message.h"
#include "protocol/records.h"

/* A LeaderChange entry's data is the leader id, 4 bytes big-endian (raft.c). */
static int32_t leader_of(const raft_entry_t *e) {
    if (e->len < 4) return -1;
    return (int32_t)((uint32_t)e->data[0] << 24 | (uint32_t)e->data[1] << 16 |
                     (uint32_t)e->data[2] << 8 | e->data[3]);
}

#define LEADER_CHANGE_MAX (64 + 4 * RAFT_MAX_VOTERS * 2 + 64)

size_t raft_records_bound(const raft_entry_t *e, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += PROTO_BATCH_HEADER_SIZE + 32 +
                 (e[i].control == RAFT_CONTROL_LEADER_CHANGE ? LEADER_CHANGE_MAX : e[i].len);
    return total;
}

/* Kafka's control record type of an entry's control kind. */
static uint8_t control_type_of(uint8_t control) {
    switch (control) {
    case RAFT_CONTROL_KRAFT_VERSION: return RAFT_CONTROL_TYPE_KRAFT_VERSION;
    case RAFT_CONTROL_VOTERS: return RAFT_CONTROL_TYPE_VOTERS;
    default: return RAFT_CONTROL_TYPE_LEADER_CHANGE;
    }
}

static int encode_leader_change(const raft_entry_t *e, const int32_t *voters, int n_voters,
                                uint8_t *buf, size_t cap, size_t *len) {
    proto_leader_change_message_t m;
    proto_leader_change_message_voter_t v[RAFT_MAX_VOTERS];
    proto_leader_change_message_init(&m);
    if (n_voters > RAFT_MAX_VOTERS) n_voters = RAFT_MAX_VOTERS;
    memset(v, 0, sizeof(v));
    for (int i = 0; i < n_voters; i++)
        v[i].voter_id = voters[i];
    m.version = 0;
    m.leader_id = leader_of(e);
    m.voters = (proto_leader_change_message_voter_array_t){n_voters, v};
    m.granting_voters = (proto_leader_change_message_voter_array_t){0, v};
    sm_writer_t w = sm_writer_make(buf, cap);
    int rc = proto_leader_change_message_encode(&w, 0, &m);
    *len = (size_t)(w.p - buf);
    return rc;
}

int raft_records_encode(const raft_entry_t *e, int n, int64_t base, int64_t timestamp_ms,
                        const int32_t *voters, int n_voters, uint8_t *buf, size_t cap,
                        size_t *len) {
    size_t at = 0;
    int i = 0;
    while (i < n) {
        int j = i + 1;
        while (j < n && e[j].epoch == e[i].epoch && e[j].control == e[i].control)
            j++;
        proto_batch_builder_t bb;
        proto_batch_builder_opts_t opts = {
            .base_offset = base + i,
            .partition_leader_epoch = e[i].epoch,
            .attributes = e[i].control ? PROTO_ATTR_CONTROL : 0,
            .base_timestamp = timestamp_ms,
            .producer_id = -1,
            .producer_epoch = -1,
            .base_sequence = -1,
        };
        if (at > cap) return SM_ERR_SPACE;
        proto_batch_builder_init(&bb, buf + at, cap - at, &opts);
        for (int k = i; k < j; k++) {
            if (e[k].control == RAFT_CONTROL_KRAFT_VERSION || e[k].control == RAFT_CONTROL_VOTERS) {
                /* KIP-853's records: the entry's data is the record's value */
                uint8_t key[4] = {0, 0, 0, control_type_of(e[k].control)};
                proto_batch_builder_add(&bb, timestamp_ms, (sm_bytes_t){key, 4},
                                        (sm_bytes_t){e[k].data, (int32_t)e[k].len}, NULL, 0);
            } else if (e[k].control) {
                uint8_t key[4] = {0, 0, 0, RAFT_CONTROL_TYPE_LEADER_CHANGE};
                uint8_t val[LEADER_CHANGE_MAX];
                size_t vl;
                int rc = encode_leader_change(&e[k], voters, n_voters, val, sizeof(val), &vl);
                if (rc != SM_OK) return rc;
                proto_batch_builder_add(&bb, timestamp_ms, (sm_bytes_t){key, 4},
                                        (sm_bytes_t){val, (int32_t)vl}, NULL, 0);
            } else {
                proto_batch_builder_add(&bb, timestamp_ms, SM_BYTES_NULL,
                                        (sm_bytes_t){e[k].data, (int32_t)e[k].len}, NULL, 0);
            }
        }
        size_t bl;
        int rc = proto_batch_builder_finish(&bb, &bl);
        if (rc != SM_OK) return rc;
        at += bl;
        i = j;
    }
    *len = at;
    return SM_OK;
}

/* Records of one batch, appended to the growing entry array. */
static int decode_batch(const uint8_t *batch, size_t blen, const proto_batch_header_t *h,
                        sm_arena_t *a, raft_entry_t *out, int *n) {
    bool control = (h->attributes & PROTO_ATTR_CONTROL) != 0;
    proto_record_iter_t it;
    proto_record_iter_init(&it, batch + PROTO_BATCH_HEADER_SIZE, blen - PROTO_BATCH_HEADER_SIZE,
                           h->records_count);
    proto_record_t rec;
    int rc;
    while ((rc = proto_record_iter_next(&it, &rec)) == 1) {
        raft_entry_t *e = &out[(*n)++];
        memset(e, 0, sizeof(*e));
        e->epoch = h->partition_leader_epoch;
        if (!control) {
            if (rec.value.len < 0) return SM_ERR_CORRUPT;
            e->data = (uint8_t *)rec.value.ptr;
            e->len = (uint32_t)rec.value.len;
            continue;
        }
        /* Control records: LeaderChange, KRaftVersion and Voters become entries; other types
         * do not belong in the log: refuse what cannot be replayed. */
        if (rec.key.len < 4 || rec.key.ptr[2] != 0 || rec.value.len < 0) return SM_ERR_CORRUPT;
        uint8_t type = rec.key.ptr[3];
        if (type == RAFT_CONTROL_TYPE_KRAFT_VERSION || type == RAFT_CONTROL_TYPE_VOTERS) {
            e->control =
                type == RAFT_CONTROL_TYPE_VOTERS ? RAFT_CONTROL_VOTERS : RAFT_CONTROL_KRAFT_VERSION;
            e->data = (uint8_t *)rec.value.ptr;
            e->len = (uint32_t)rec.value.len;
            continue;
        }
        if (type != RAFT_CONTROL_TYPE_LEADER_CHANGE) return SM_ERR_CORRUPT;
        proto_leader_change_message_t m;
        sm_reader_t r = sm_reader_make(rec.value.ptr, (size_t)rec.value.len);
        if (proto_leader_change_message_decode(&r, a, 0, &m) != SM_OK) return SM_ERR_CORRUPT;
        uint8_t *d = sm_arena_alloc(a, 4);
        if (!d) return SM_ERR_NOMEM;
        d[0] = (uint8_t)((uint32_t)m.leader_id >> 24);
        d[1] = (uint8_t)((uint32_t)m.leader_id >> 16);
        d[2] = (uint8_t)((uint32_t)m.leader_id >> 8);
        d[3] = (uint8_t)m.leader_id;
        e->control = RAFT_CONTROL_LEADER_CHANGE;
        e->data = d;
        e->len = 4;
    }
    return rc < 0 ? SM_ERR_CORRUPT : SM_OK;
}

int raft_records_decode(const uint8_t *data, size_t len, sm_arena_t *a, raft_entry_t **entries,
                        int *n, int64_t *base) {
    *entries = NULL;
    *n = 0;
    *base = -1;
    /* Count first: every record takes at least 7 bytes, so len / 7 bounds the entries. */
    proto_batch_iter_t it;
    proto_batch_iter_init(&it, data, len);
    const uint8_t *batch;
    size_t blen;
    proto_batch_header_t h;
    int64_t total = 0;
    while (proto_batch_iter_next(&it, &batch, &blen, &h) == 1) {
        if (h.records_count < 0 || h.records_count > (int32_t)(blen / 7 + 1)) return SM_ERR_CORRUPT;
        total += h.records_count;
    }
    if (total == 0) return SM_OK;
    raft_entry_t *out = sm_arena_calloc(a, (size_t)total, sizeof(*out));
    if (!out) return SM_ERR_NOMEM;
    proto_batch_iter_init(&it, data, len);
    int64_t expect = -1;
    while (proto_batch_iter_next(&it, &batch, &blen, &h) == 1) {
        proto_batch_header_t vh;
        if (proto_batch_validate(batch, blen, &vh) != SM_OK ||
            proto_batch_compression(&vh) != PROTO_COMPRESSION_NONE)
            return SM_ERR_CORRUPT;
        if (expect >= 0 && vh.base_offset != expect) return SM_ERR_CORRUPT;
        if (*base < 0) *base = vh.base_offset;
        int before = *n;
        int rc = decode_batch(batch, blen, &vh, a, out, n);
        if (rc != SM_OK) return rc;
        if (*n - before != vh.records_count) return SM_ERR_CORRUPT;
        expect = vh.base_offset + vh.records_count;
    }
    *entries = out;
    return SM_OK;
}
