/*
 * Voter sets and their VotersRecord / KRaftVersionRecord form (see raft_voters.h).
 */
#include "raft/raft_voters.h"

#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "protocol/gen/kraft_version_record.h"
#include "protocol/gen/voters_record.h"

int raft_voters_find(const raft_voter_set_t *s, int32_t id) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i].id == id) return i;
    return -1;
}

int raft_voters_encode(const raft_voter_set_t *s, uint8_t *buf, size_t cap, size_t *len) {
    proto_voters_record_t m;
    proto_voters_record_voter_t v[RAFT_MAX_VOTERS];
    proto_voters_record_endpoint_t ep[RAFT_MAX_VOTERS];
    proto_voters_record_kraft_version_feature_t feat = {.min_supported_version = 0,
                                                        .max_supported_version = 1};
    proto_voters_record_init(&m);
    memset(v, 0, sizeof(v));
    memset(ep, 0, sizeof(ep));
    int n = s->n < RAFT_MAX_VOTERS ? s->n : RAFT_MAX_VOTERS;
    for (int i = 0; i < n; i++) {
        const raft_voter_t *x = &s->v[i];
        v[i].voter_id = x->id;
        memcpy(v[i].voter_directory_id.b, x->dir, 16);
        ep[i].name = sm_str_from(x->listener);
        ep[i].host = sm_str_from(x->host);
        ep[i].port = x->port;
        v[i].endpoints = (proto_voters_record_endpoint_array_t){x->host[0] ? 1 : 0, &ep[i]};
        v[i].kraft_version_feature = &feat;
    }
    m.version = 0;
    m.voters = (proto_voters_record_voter_array_t){n, v};
    sm_writer_t w = sm_writer_make(buf, cap);
    int rc = proto_voters_record_encode(&w, 0, &m);
    if (rc != SM_OK) return SM_ERR_SPACE;
    *len = (size_t)(w.p - buf);
    return SM_OK;
}

/* A wire string into a bounded C string (cut at cap - 1 bytes). */
#define COPY_STR(dst, s)                                                                           \
    snprintf((dst), sizeof(dst), "%.*s", (s).len > 0 ? (int)(s).len : 0, (s).ptr)

int raft_voters_decode(const uint8_t *data, size_t len, raft_voter_set_t *out) {
    sm_arena_t a;
    sm_arena_init(&a, 64 * 1024);
    int rc = SM_ERR_CORRUPT;
    proto_voters_record_t m;
    sm_reader_t r = sm_reader_make(data, len);
    memset(out, 0, sizeof(*out));
    if (proto_voters_record_decode(&r, &a, 0, &m) != SM_OK) goto out;
    if (m.voters.n < 0 || m.voters.n > RAFT_MAX_VOTERS) goto out;
    for (int i = 0; i < m.voters.n; i++) {
        const proto_voters_record_voter_t *v = &m.voters.v[i];
        raft_voter_t *x = &out->v[i];
        if (v->voter_id < 0 || raft_voters_find(out, v->voter_id) >= 0) goto out;
        x->id = v->voter_id;
        memcpy(x->dir, v->voter_directory_id.b, 16);
        if (v->endpoints.n > 0) {
            COPY_STR(x->listener, v->endpoints.v[0].name);
            COPY_STR(x->host, v->endpoints.v[0].host);
            x->port = v->endpoints.v[0].port;
        }
        out->n = i + 1;
    }
    rc = SM_OK;
out:
    sm_arena_free(&a);
    return rc;
}

int raft_kraft_version_encode(int16_t version, uint8_t *buf, size_t cap, size_t *len) {
    proto_kraft_version_record_t m;
    proto_kraft_version_record_init(&m);
    m.version = 0;
    m.kraft_version = version;
    sm_writer_t w = sm_writer_make(buf, cap);
    if (proto_kraft_version_record_encode(&w, 0, &m) != SM_OK) return SM_ERR_SPACE;
    *len = (size_t)(w.p - buf);
    return SM_OK;
}

int raft_kraft_version_decode(const uint8_t *data, size_t len, int16_t *version) {
    sm_arena_t a;
    sm_arena_init(&a, 4096);
    proto_kraft_version_record_t m;
    sm_reader_t r = sm_reader_make(data, len);
    int rc = proto_kraft_version_record_decode(&r, &a, 0, &m) == SM_OK ? SM_OK : SM_ERR_CORRUPT;
    if (rc == SM_OK) *version = m.kraft_version;
    sm_arena_free(&a);
    return rc;
}
