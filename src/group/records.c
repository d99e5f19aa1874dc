/*
 * The group coordinator's records in __consumer_offsets, in Kafka's formats:
 * OffsetCommitKey v1 / OffsetCommitValue v3 and GroupMetadataKey v2 /
 * GroupMetadataValue v3, null values as tombstones. Encodes them, builds the
 * batch the runtime appends, and replays them at load (newest record wins; a
 * classic group comes back with the members of its last record, Stable, or
 * Empty without members, as Kafka's coordinator loads it). Not for deciding
 * what to write: the protocol parts do that.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "group/group_impl.h"
#include "protocol/errors.h"
#include "protocol/gen/api.h"
#include "protocol/records.h"

size_t group_offset_key(char *buf, size_t cap, sm_str_t topic, int32_t partition) {
    size_t n = topic.len > 0 ? (size_t)topic.len : 0;
    if (n + 5 > cap) n = cap - 5;
    memcpy(buf, topic.ptr, n);
    buf[n] = 0;
    memcpy(buf + n + 1, &partition, 4);
    return n + 5;
}

/* Encodes "int16 prefix + message at version v" with a generated codec. */
static int encode_prefixed(const proto_msg_desc_t *d, int16_t prefix, int16_t v, const void *msg,
                           uint8_t **out, size_t *len) {
    size_t n = 2 + d->size(v, msg);
    uint8_t *buf = malloc(n);
    if (!buf) return SM_ERR_NOMEM;
    sm_writer_t w = sm_writer_make(buf, n);
    if (sm_wr_i16(&w, prefix) || d->encode(&w, v, msg)) {
        free(buf);
        return SM_ERR;
    }
    *out = buf;
    *len = n;
    return SM_OK;
}

int group_encode_key(const char *key_msg, const void *key, uint8_t **out, size_t *len) {
    const proto_msg_desc_t *d = proto_msg_lookup(key_msg);
    return encode_prefixed(d, d->api_key, 0, key, out, len);
}

int group_encode_value(const char *value_msg, int16_t version, const void *value, uint8_t **out,
                       size_t *len) {
    return encode_prefixed(proto_msg_lookup(value_msg), version, version, value, out, len);
}

int group_offset_record(sm_str_t group, sm_str_t topic, int32_t partition, const group_offset_t *e,
                        group_rec_t *r) {
    proto_offset_commit_key_t k;
    proto_offset_commit_key_init(&k);
    k.group = group;
    k.topic = topic;
    k.partition = partition;
    memset(r, 0, sizeof(*r));
    int rc = group_encode_key("OffsetCommitKey", &k, &r->key, &r->key_len);
    if (rc || !e) return rc;
    proto_offset_commit_value_t v;
    proto_offset_commit_value_init(&v);
    v.offset = e->offset;
    v.leader_epoch = e->leader_epoch;
    v.metadata = group_S0(e->metadata);
    v.commit_timestamp = e->commit_ts;
    rc = group_encode_value("OffsetCommitValue", 3, &v, &r->value, &r->value_len);
    if (rc) {
        free(r->key);
        r->key = NULL;
    }
    return rc;
}

int group_meta_record(const group_t *g, const group_meta_view_t *view, bool tombstone,
                      group_rec_t *r) {
    proto_group_metadata_key_t k;
    proto_group_metadata_key_init(&k);
    k.group = group_S(g->id);
    memset(r, 0, sizeof(*r));
    int rc = group_encode_key("GroupMetadataKey", &k, &r->key, &r->key_len);
    if (rc || tombstone) return rc;
    proto_group_metadata_value_t v;
    proto_group_metadata_value_init(&v);
    v.protocol_type = group_S0(g->protocol_type);
    v.generation = view->generation;
    v.protocol = group_S(view->protocol);
    v.leader = group_S(view->leader);
    v.current_state_timestamp = group_wall_ms();
    int n = view->members ? g->nmembers : 0;
    proto_group_metadata_value_member_metadata_t *mm = calloc((size_t)n + 1, sizeof(*mm));
    if (!mm) {
        free(r->key);
        r->key = NULL;
        return SM_ERR_NOMEM;
    }
    int i = 0;
    for (const group_member_t *m = g->members; m && i < n; m = m->next, i++) {
        mm[i].member_id = group_S(m->id);
        mm[i].group_instance_id = group_S(m->instance_id);
        mm[i].client_id = group_S(m->client_id);
        mm[i].client_host = group_S(m->client_host);
        mm[i].rebalance_timeout = m->rebalance_timeout;
        mm[i].session_timeout = m->session_timeout;
        mm[i].subscription = (sm_bytes_t){NULL, 0};
        for (int p = 0; p < m->nprotocols; p++)
            if (gs_eq(m->protocols[p].name, view->protocol))
                mm[i].subscription = (sm_bytes_t){m->protocols[p].meta, m->protocols[p].meta_len};
        if (view->assign)
            mm[i].assignment = view->assign[i].len >= 0 ? view->assign[i] : (sm_bytes_t){NULL, 0};
        else
            mm[i].assignment = (sm_bytes_t){m->assignment, m->assignment ? m->assignment_len : 0};
    }
    v.members = (proto_group_metadata_value_member_metadata_array_t){i, mm};
    rc = group_encode_value("GroupMetadataValue", 3, &v, &r->value, &r->value_len);
    free(mm);
    if (rc) {
        free(r->key);
        r->key = NULL;
    }
    return rc;
}

void group_recs_free(group_rec_t *r, int n) {
    for (int i = 0; i < n; i++) {
        free(r[i].key);
        free(r[i].value);
    }
}

int group_batch_build(const group_rec_t *recs, int n, int64_t ts, int64_t producer_id,
                      int16_t producer_epoch, uint8_t **out, size_t *len) {
    size_t cap = PROTO_BATCH_HEADER_SIZE;
    for (int i = 0; i < n; i++)
        cap += recs[i].key_len + recs[i].value_len + 32;
    uint8_t *buf = malloc(cap);
    if (!buf) return SM_ERR_NOMEM;
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t o = {
        0,  0,           producer_id >= 0 ? PROTO_ATTR_TRANSACTIONAL : 0,
        ts, producer_id, producer_id >= 0 ? producer_epoch : -1,
        -1};
    proto_batch_builder_init(&bb, buf, cap, &o);
    for (int i = 0; i < n; i++) {
        sm_bytes_t value =
            recs[i].value ? (sm_bytes_t){recs[i].value, (int32_t)recs[i].value_len} : SM_BYTES_NULL;
        proto_batch_builder_add(&bb, ts, (sm_bytes_t){recs[i].key, (int32_t)recs[i].key_len}, value,
                                NULL, 0);
    }
    if (proto_batch_builder_finish(&bb, len)) {
        free(buf);
        return SM_ERR;
    }
    *out = buf;
    return SM_OK;
}

/* ---- loading ---- */

static void load_offset(group_shard_t *s, sm_reader_t *r, sm_arena_t *a, int16_t kv,
                        sm_bytes_t value) {
    proto_offset_commit_key_t k;
    if (proto_offset_commit_key_decode(r, a, 0, &k) != SM_OK) return;
    group_t *g = group_get_or_create(s, k.group);
    if (!g) return;
    char kb[300];
    size_t kl = group_offset_key(kb, sizeof(kb), k.topic, k.partition);
    group_offset_t *old = sm_map_del(&g->offsets, kb, kl);
    if (old) {
        gs_free(old->metadata);
        free(old);
    }
    if (value.len < 2) return;
    sm_reader_t vr = sm_reader_make(value.ptr, (size_t)value.len);
    int16_t vv;
    proto_offset_commit_value_t v;
    sm_rd_i16(&vr, &vv);
    group_offset_t *e = calloc(1, sizeof(*e));
    if (e && proto_offset_commit_value_decode(&vr, a, vv, &v) == SM_OK) {
        e->offset = v.offset;
        e->leader_epoch = v.leader_epoch;
        e->metadata = group_dupstr(v.metadata);
        e->commit_ts = v.commit_timestamp;
        if (sm_map_put(&g->offsets, kb, kl, e)) {
            gs_free(e->metadata);
            free(e);
        }
    } else {
        free(e);
    }
}

/* Drops a classic group's members and generation data (a newer record or a
 * tombstone replaces them). */
static void clear_classic(group_t *g) {
    while (g->members) {
        group_member_t *m = g->members;
        g->members = m->next;
        group_classic_member_free(m);
    }
    g->nmembers = 0;
    gs_free(g->protocol_type);
    gs_free(g->protocol);
    gs_free(g->leader);
    g->protocol_type = g->protocol = g->leader = NULL;
}

static uint8_t *copy_bytes(sm_bytes_t b, int32_t *len) {
    int32_t n = b.len > 0 ? b.len : 0;
    uint8_t *p = malloc((size_t)n + 1);
    if (p && n) memcpy(p, b.ptr, (size_t)n);
    *len = p ? n : 0;
    return p;
}

/* One member of a GroupMetadataValue as Kafka's coordinator loads it: the
 * group's protocol is its only protocol, with its subscription as metadata;
 * a v0 record's missing rebalance timeout is the session timeout. */
static group_member_t *load_member(const proto_group_metadata_value_t *v,
                                   const proto_group_metadata_value_member_metadata_t *mm) {
    group_member_t *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->id = group_dupstr(mm->member_id);
    m->instance_id = group_dupstr(mm->group_instance_id);
    m->client_id = group_dupstr(mm->client_id.len >= 0 ? mm->client_id : SM_STR_LIT(""));
    m->client_host = group_dupstr(mm->client_host.len >= 0 ? mm->client_host : SM_STR_LIT(""));
    m->session_timeout = mm->session_timeout;
    m->rebalance_timeout =
        mm->rebalance_timeout == -1 ? mm->session_timeout : mm->rebalance_timeout;
    m->assignment = copy_bytes(mm->assignment, &m->assignment_len);
    bool ok = m->id && m->client_id && m->client_host && m->assignment &&
              (mm->group_instance_id.len < 0 || m->instance_id);
    if (ok && v->protocol.len >= 0) {
        m->protocols = calloc(1, sizeof(*m->protocols));
        ok = m->protocols && (m->protocols[0].name = group_dupstr(v->protocol)) &&
             (m->protocols[0].meta = copy_bytes(mm->subscription, &m->protocols[0].meta_len));
        if (m->protocols) m->nprotocols = 1;
    }
    /* Its session starts over when the shard is installed (group_classic_loaded). */
    m->last_seen = group_now_ms();
    if (!ok) {
        group_classic_member_free(m);
        return NULL;
    }
    return m;
}

/* A classic group's GroupMetadata record: the generation's protocol, leader
 * and members with their assignments (written when a generation becomes
 * Stable, when the group becomes Empty, and when a static member takes its
 * place back), so the group comes back Stable with its members, or Empty. */
static void load_group(group_shard_t *s, sm_reader_t *r, sm_arena_t *a, int16_t kv,
                       sm_bytes_t value) {
    proto_group_metadata_key_t k;
    if (proto_group_metadata_key_decode(r, a, 0, &k) != SM_OK) return;
    group_t *g = group_get_or_create(s, k.group);
    if (!g) return;
    if (value.len < 0) {
        /* The classic group is gone (deleted, or upgraded: consumer group
         * records follow); offsets have their own tombstones. */
        clear_classic(g);
        g->state = GROUP_EMPTY;
        if (!sm_map_size(&g->offsets) && (!g->cg || !g->cg->nmembers)) group_remove(s, g);
        return;
    }
    if (value.len < 2) return;
    sm_reader_t vr = sm_reader_make(value.ptr, (size_t)value.len);
    int16_t vv;
    proto_group_metadata_value_t v;
    if (sm_rd_i16(&vr, &vv) != SM_OK || proto_group_metadata_value_decode(&vr, a, vv, &v) != SM_OK)
        return;
    /* A classic group's record: a consumer group of this id was downgraded. */
    group_consumer_free(g->cg);
    g->cg = NULL;
    clear_classic(g);
    g->protocol_type = group_dupstr(v.protocol_type);
    g->protocol = group_dupstr(v.protocol);
    g->leader = group_dupstr(v.leader);
    g->generation = v.generation;
    group_member_t **tail = &g->members;
    for (int32_t i = 0; i < v.members.n; i++) {
        group_member_t *m = load_member(&v, &v.members.v[i]);
        if (!m) {
            sm_error("group", "%s: member %d of generation %d not loaded (out of memory)", g->id, i,
                     v.generation);
            continue;
        }
        *tail = m;
        tail = &m->next;
        g->nmembers++;
    }
    g->state = g->members ? GROUP_STABLE : GROUP_EMPTY;
    g->state_ts = v.current_state_timestamp >= 0 ? v.current_state_timestamp : group_wall_ms();
    g->rebalance_deadline = 0;
}

/* A transactional offset commit read back: pending until its marker. */
static void load_txn_offset(group_shard_t *s, sm_reader_t *r, sm_arena_t *a, sm_bytes_t value,
                            int64_t pid) {
    proto_offset_commit_key_t k;
    sm_reader_t vr = sm_reader_make(value.ptr, value.len > 0 ? (size_t)value.len : 0);
    int16_t vv;
    proto_offset_commit_value_t v;
    if (value.len < 2 || proto_offset_commit_key_decode(r, a, 0, &k) != SM_OK ||
        sm_rd_i16(&vr, &vv) != SM_OK || proto_offset_commit_value_decode(&vr, a, vv, &v) != SM_OK)
        return;
    group_txn_offset_t e = {{(const uint8_t *)k.group.ptr, k.group.len},
                            {(const uint8_t *)k.topic.ptr, k.topic.len},
                            {(const uint8_t *)v.metadata.ptr, v.metadata.len},
                            k.partition,
                            v.offset,
                            v.leader_epoch,
                            v.commit_timestamp,
                            s->partition};
    group_txn_offsets_add(&s->txn, pid, &e);
}

void group_load_record(group_shard_t *s, sm_bytes_t key, sm_bytes_t value, int64_t txn_pid) {
    if (key.len < 2) return;
    sm_reader_t r = sm_reader_make(key.ptr, (size_t)key.len);
    int16_t kv;
    sm_rd_i16(&r, &kv);
    sm_arena_t a;
    sm_arena_init(&a, 0);
    /* The prefix is the record type: 0 (Kafka's legacy offset commit key) and
     * 1 share the offset commit key's layout, 2 is group metadata, 3-8 are
     * the consumer group records. */
    if (txn_pid >= 0 && (kv == 0 || kv == 1))
        load_txn_offset(s, &r, &a, value, txn_pid);
    else if (kv == 0 || kv == 1)
        load_offset(s, &r, &a, kv, value);
    else if (kv == 2)
        load_group(s, &r, &a, kv, value);
    else if (kv >= 3 && kv <= 8)
        group_consumer_load(s, kv, &r, value, &a);
    sm_arena_free(&a);
}
