/*
 * The group coordinator (see coordinator.h for the state machine). Handlers of
 * the group APIs live here too, since they are the coordinator's interface.
 *
 * Invariants, under c->mu:
 *  1. A member's join_req / sync_req is non-NULL only while that request is
 *     parked; it is answered exactly once and then cleared.
 *  2. state == PREPARING implies rebalance_deadline > 0.
 *  3. generation grows by one per completed join phase.
 */
#include "group/coordinator.h"
#include "group/txn_offsets.h"
#include "txn/coordinator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/log.h"
#include "broker/delayed.h"
#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "metadata/topic_config.h"
#include "protocol/errors.h"
#include "protocol/records.h"

#define OFFSETS_TOPIC "__consumer_offsets"
#define MAX_METADATA 4096

enum { EMPTY = 0, PREPARING, COMPLETING, STABLE, DEAD };
static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"};

/* A string the coordinator owns. Kafka strings may hold NUL bytes, so every
 * string of a group carries its length; p == NULL is a null string. */
typedef struct gstr {
    char *p;
    int32_t len;
} gstr_t;

typedef struct protocol {
    gstr_t name;
    uint8_t *meta;
    int32_t meta_len;
} protocol_t;

typedef struct member {
    gstr_t id;
    gstr_t instance_id; /* null: dynamic member */
    gstr_t client_id;
    gstr_t client_host;
    int32_t session_timeout;
    int32_t rebalance_timeout;
    int nprotocols;
    protocol_t *protocols;
    uint8_t *assignment;
    int32_t assignment_len;
    int64_t last_seen;
    broker_req_t *join_req;
    broker_req_t *sync_req;
    struct member *next;
} member_t;

typedef struct offset_entry {
    int64_t offset;
    int32_t leader_epoch;
    gstr_t metadata;
    int64_t commit_ts;
} offset_entry_t;

typedef struct pending_id {
    gstr_t id;
    int64_t expires;
    struct pending_id *next;
} pending_id_t;

typedef struct group {
    gstr_t id;
    int state;
    gstr_t protocol_type;
    gstr_t protocol;
    int32_t generation;
    gstr_t leader;
    member_t *members;
    int nmembers;
    pending_id_t *pending; /* member ids handed out with MEMBER_ID_REQUIRED */
    sm_map_t offsets;      /* "topic" NUL int32 partition -> offset_entry_t* */
    int64_t rebalance_deadline;
    int64_t rebalance_max; /* initial-delay window may not pass this */
    int64_t state_ts;
} group_t;

struct group_coordinator {
    broker_t *b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sm_map_t groups;
    bool stopping;
    pthread_t timer;
    sm_uuid_t topic_id;
    int32_t partitions;
    int32_t initial_delay;
    int32_t min_session, max_session, max_size;
    int64_t retention_ms;        /* offsets.retention.minutes (or samsa.offsets.retention.ms) */
    int64_t retention_check_ms;  /* offsets.retention.check.interval.ms */
    int64_t next_retention_check;
    group_txn_offsets_t txn_offsets; /* TxnOffsetCommit offsets awaiting markers */
};

static int64_t now_ms(void) { return broker_mono_ms(); }

/* A copy of s; *out is null for a null s. Returns SM_ERR_NOMEM. */
static int gs_set(gstr_t *out, sm_str_t s) {
    gstr_t n = {NULL, 0};
    if (s.len >= 0) {
        n.p = malloc((size_t)s.len + 1);
        if (!n.p) return SM_ERR_NOMEM;
        if (s.len) memcpy(n.p, s.ptr, (size_t)s.len);
        n.p[s.len] = 0;
        n.len = s.len;
    }
    free(out->p);
    *out = n;
    return SM_OK;
}

static gstr_t gs_dup(sm_str_t s) {
    gstr_t n = {NULL, 0};
    gs_set(&n, s);
    return n;
}

static void gs_free(gstr_t *s) {
    free(s->p);
    s->p = NULL;
    s->len = 0;
}

#define NO_ID ((gstr_t){NULL, 0})

static sm_str_t V(gstr_t s) { return s.p ? (sm_str_t){s.p, s.len} : SM_STR_NULL; }

/* V(s), or "" for a null s. */
static sm_str_t V0(gstr_t s) { return s.p ? (sm_str_t){s.p, s.len} : SM_STR_LIT(""); }

static bool streq(gstr_t c, sm_str_t s) { return c.p ? sm_str_eq(V(c), s) : s.len < 0; }

static bool gs_eq(gstr_t a, gstr_t b) { return a.p && b.p && sm_str_eq(V(a), V(b)); }

/* A copy in the response's arena: responses are written after c->mu is released. */
static sm_str_t gs_arena(broker_req_t *r, gstr_t s) {
    if (!s.p) return SM_STR_NULL;
    char *p = sm_arena_strndup(&r->arena, s.p, (size_t)s.len);
    return p ? (sm_str_t){p, s.len} : SM_STR_NULL;
}

static sm_str_t S(const char *c) { return c ? (sm_str_t){c, (int32_t)strlen(c)} : SM_STR_NULL; }

int32_t group_partition_for(sm_str_t id, int32_t partitions) {
    /* Java's String.hashCode over UTF-16 code units; group ids are ASCII in
     * practice, and bytes >= 0x80 are taken as Latin-1 like Kafka's own
     * tooling would see them after decoding. */
    int32_t h = 0;
    for (int32_t i = 0; i < id.len; i++) h = (int32_t)((uint32_t)h * 31u + (uint8_t)id.ptr[i]);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return a % partitions;
}

/* ---------------------------------------------------------------- groups */

static void member_free(member_t *m) {
    for (int i = 0; i < m->nprotocols; i++) {
        gs_free(&m->protocols[i].name);
        free(m->protocols[i].meta);
    }
    free(m->protocols);
    free(m->assignment);
    gs_free(&m->id);
    gs_free(&m->instance_id);
    gs_free(&m->client_id);
    gs_free(&m->client_host);
    free(m);
}

static group_t *group_get(group_coordinator_t *c, sm_str_t id) {
    return id.len < 0 ? NULL : sm_map_get(&c->groups, id.ptr, (size_t)id.len);
}

static group_t *group_get_or_create(group_coordinator_t *c, sm_str_t id) {
    group_t *g = group_get(c, id);
    if (g) return g;
    g = calloc(1, sizeof(*g));
    if (!g || gs_set(&g->id, id)) {
        free(g);
        return NULL;
    }
    sm_map_init(&g->offsets);
    g->state = EMPTY;
    g->state_ts = broker_now_ms();
    if (sm_map_put(&c->groups, id.ptr, (size_t)id.len, g)) {
        gs_free(&g->id);
        free(g);
        return NULL;
    }
    return g;
}

static void group_free(group_t *g) {
    while (g->members) {
        member_t *m = g->members;
        g->members = m->next;
        member_free(m);
    }
    while (g->pending) {
        pending_id_t *p = g->pending;
        g->pending = p->next;
        gs_free(&p->id);
        free(p);
    }
    size_t it = 0;
    void *v;
    while (sm_map_next(&g->offsets, &it, NULL, NULL, &v)) {
        gs_free(&((offset_entry_t *)v)->metadata);
        free(v);
    }
    sm_map_free(&g->offsets);
    gs_free(&g->id);
    gs_free(&g->protocol_type);
    gs_free(&g->protocol);
    gs_free(&g->leader);
    free(g);
}

static member_t *member_find(group_t *g, sm_str_t id) {
    for (member_t *m = g->members; m; m = m->next)
        if (streq(m->id, id)) return m;
    return NULL;
}

static member_t *member_by_instance(group_t *g, sm_str_t instance) {
    if (instance.len < 0) return NULL;
    for (member_t *m = g->members; m; m = m->next)
        if (m->instance_id.p && streq(m->instance_id, instance)) return m;
    return NULL;
}

static void member_remove(group_t *g, member_t *m) {
    member_t **pp = &g->members;
    while (*pp && *pp != m) pp = &(*pp)->next;
    if (*pp) *pp = m->next;
    g->nmembers--;
    member_free(m);
}

static void set_state(group_t *g, int s) {
    g->state = s;
    g->state_ts = broker_now_ms();
}

/* The topic of an offsets map key. */
static sm_str_t offset_key_topic(const void *key, size_t len) { return (sm_str_t){key, (int32_t)len - 5}; }

static size_t offset_key(char *buf, size_t cap, sm_str_t topic, int32_t partition) {
    size_t n = topic.len > 0 ? (size_t)topic.len : 0;
    if (n + 5 > cap) n = cap - 5;
    memcpy(buf, topic.ptr, n);
    buf[n] = 0;
    memcpy(buf + n + 1, &partition, 4);
    return n + 5;
}

/* ---------------------------------------------------------------- persistence */

typedef struct rec {
    uint8_t *key;
    size_t key_len;
    uint8_t *value; /* NULL: tombstone */
    size_t value_len;
} rec_t;

/* Encodes "int16 prefix + message at version v" with a generated codec. A
 * key's prefix is its record type (the schema's apiKey: 1 offset commit, 2
 * group metadata) and the key schema is at version 0; a value's prefix is its
 * version. */
static int encode_prefixed(const proto_msg_desc_t *d, int16_t prefix, int16_t v, const void *msg, uint8_t **out,
                           size_t *len) {
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

static int offset_record(sm_str_t group, sm_str_t topic, int32_t partition, const offset_entry_t *e, rec_t *r) {
    proto_offset_commit_key_t k;
    proto_offset_commit_key_init(&k);
    k.group = group;
    k.topic = topic;
    k.partition = partition;
    memset(r, 0, sizeof(*r));
    const proto_msg_desc_t *kd = proto_msg_lookup("OffsetCommitKey");
    int rc = encode_prefixed(kd, kd->api_key, 0, &k, &r->key, &r->key_len);
    if (rc || !e) return rc;
    proto_offset_commit_value_t v;
    proto_offset_commit_value_init(&v);
    v.offset = e->offset;
    v.leader_epoch = e->leader_epoch;
    v.metadata = V0(e->metadata);
    v.commit_timestamp = e->commit_ts;
    return encode_prefixed(proto_msg_lookup("OffsetCommitValue"), 3, 3, &v, &r->value, &r->value_len);
}

static int group_record(group_t *g, bool tombstone, rec_t *r) {
    proto_group_metadata_key_t k;
    proto_group_metadata_key_init(&k);
    k.group = V(g->id);
    memset(r, 0, sizeof(*r));
    const proto_msg_desc_t *kd = proto_msg_lookup("GroupMetadataKey");
    int rc = encode_prefixed(kd, kd->api_key, 0, &k, &r->key, &r->key_len);
    if (rc || tombstone) return rc;
    proto_group_metadata_value_t v;
    proto_group_metadata_value_init(&v);
    v.protocol_type = V0(g->protocol_type);
    v.generation = g->generation;
    v.protocol = V(g->protocol);
    v.leader = V(g->leader);
    v.current_state_timestamp = g->state_ts;
    proto_group_metadata_value_member_metadata_t *mm = calloc((size_t)g->nmembers + 1, sizeof(*mm));
    if (!mm) return SM_ERR_NOMEM;
    int i = 0;
    for (member_t *m = g->members; m; m = m->next, i++) {
        mm[i].member_id = V(m->id);
        mm[i].group_instance_id = V(m->instance_id);
        mm[i].client_id = V(m->client_id);
        mm[i].client_host = V(m->client_host);
        mm[i].rebalance_timeout = m->rebalance_timeout;
        mm[i].session_timeout = m->session_timeout;
        mm[i].subscription = (sm_bytes_t){NULL, 0};
        for (int k2 = 0; k2 < m->nprotocols; k2++)
            if (gs_eq(m->protocols[k2].name, g->protocol))
                mm[i].subscription = (sm_bytes_t){m->protocols[k2].meta, m->protocols[k2].meta_len};
        mm[i].assignment = (sm_bytes_t){m->assignment, m->assignment ? m->assignment_len : 0};
    }
    v.members = (proto_group_metadata_value_member_metadata_array_t){i, mm};
    rc = encode_prefixed(proto_msg_lookup("GroupMetadataValue"), 3, 3, &v, &r->value, &r->value_len);
    free(mm);
    return rc;
}

static void recs_free(rec_t *r, int n) {
    for (int i = 0; i < n; i++) {
        free(r[i].key);
        free(r[i].value);
    }
}

/* Appends records to the group's __consumer_offsets partition (fsynced when
 * the broker acknowledges only flushed data). Returns a Kafka error code. */
static int16_t append_records_as(group_coordinator_t *c, sm_str_t group, rec_t *recs, int n,
                                 int64_t producer_id, int16_t producer_epoch);

static int16_t append_records(group_coordinator_t *c, sm_str_t group, rec_t *recs, int n) {
    return append_records_as(c, group, recs, n, -1, -1);
}

/* producer_id >= 0: a transactional batch of that producer (TxnOffsetCommit),
 * which the partition's producer state tracks until its marker. */
static int16_t append_records_as(group_coordinator_t *c, sm_str_t group, rec_t *recs, int n,
                                 int64_t producer_id, int16_t producer_epoch) {
    if (n == 0) return PROTO_ERR_NONE;
    size_t cap = PROTO_BATCH_HEADER_SIZE;
    for (int i = 0; i < n; i++) cap += recs[i].key_len + recs[i].value_len + 32;
    uint8_t *buf = malloc(cap);
    if (!buf) return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    int64_t ts = broker_now_ms();
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t o = {0, 0, producer_id >= 0 ? PROTO_ATTR_TRANSACTIONAL : 0, ts,
                                    producer_id, producer_id >= 0 ? producer_epoch : -1, -1};
    proto_batch_builder_init(&bb, buf, cap, &o);
    for (int i = 0; i < n; i++)
        proto_batch_builder_add(&bb, ts, (sm_bytes_t){recs[i].key, (int32_t)recs[i].key_len},
                                recs[i].value ? (sm_bytes_t){recs[i].value, (int32_t)recs[i].value_len} : SM_BYTES_NULL,
                                NULL, 0);
    size_t len;
    int16_t err = PROTO_ERR_NONE;
    broker_partition_t *p = broker_partition_get(c->b, &c->topic_id, group_partition_for(group, c->partitions));
    if (proto_batch_builder_finish(&bb, &len) || !p) {
        err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        int64_t first, last;
        pthread_mutex_lock(&p->mu);
        int rc = log_append(p->log, buf, len, p->leader_epoch, &first, &last);
        if (rc == SM_OK && producer_id >= 0) {
            proto_batch_header_t h;
            if (proto_batch_parse_header(buf, len, &h) == SM_OK)
                rc = broker_partition_track_batch(p, &h, first, last, ts);
        }
        pthread_mutex_unlock(&p->mu);
        if (rc == SM_OK && c->b->s.fsync_before_ack) rc = log_flush(p->log);
        if (rc) err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        else broker_wake(c->b, p);
    }
    if (p) broker_partition_put(p);
    free(buf);
    return err;
}

static int16_t persist_group(group_coordinator_t *c, group_t *g) {
    rec_t r;
    if (group_record(g, false, &r)) return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    int16_t err = append_records(c, V(g->id), &r, 1);
    recs_free(&r, 1);
    return err;
}

/* ---- loading ---- */

static int load_record(group_coordinator_t *c, sm_bytes_t key, sm_bytes_t value) {
    if (key.len < 2) return SM_OK;
    sm_reader_t r = sm_reader_make(key.ptr, (size_t)key.len);
    int16_t kv;
    sm_rd_i16(&r, &kv);
    sm_arena_t a;
    sm_arena_init(&a, 0);
    /* The prefix is the record type: 0 (Kafka's legacy offset commit key) and
     * 1 share the offset commit key's layout, 2 is group metadata. */
    if (kv == 0 || kv == 1) {
        proto_offset_commit_key_t k;
        if (proto_offset_commit_key_decode(&r, &a, 0, &k) == SM_OK) {
            group_t *g = group_get_or_create(c, k.group);
            char kb[300];
            size_t kl = offset_key(kb, sizeof(kb), k.topic, k.partition);
            offset_entry_t *old = g ? sm_map_del(&g->offsets, kb, kl) : NULL;
            if (old) {
                gs_free(&old->metadata);
                free(old);
            }
            if (g && value.len >= 2) {
                sm_reader_t vr = sm_reader_make(value.ptr, (size_t)value.len);
                int16_t vv;
                proto_offset_commit_value_t v;
                sm_rd_i16(&vr, &vv);
                offset_entry_t *e = calloc(1, sizeof(*e));
                if (e && proto_offset_commit_value_decode(&vr, &a, vv, &v) == SM_OK) {
                    e->offset = v.offset;
                    e->leader_epoch = v.leader_epoch;
                    e->metadata = gs_dup(v.metadata);
                    e->commit_ts = v.commit_timestamp;
                    if (sm_map_put(&g->offsets, kb, kl, e)) free(e);
                } else {
                    free(e);
                }
            }
        }
    } else if (kv == 2) {
        proto_group_metadata_key_t k;
        if (proto_group_metadata_key_decode(&r, &a, 0, &k) == SM_OK) {
            group_t *g = group_get_or_create(c, k.group);
            if (g && value.len >= 2) {
                sm_reader_t vr = sm_reader_make(value.ptr, (size_t)value.len);
                int16_t vv;
                proto_group_metadata_value_t v;
                sm_rd_i16(&vr, &vv);
                if (proto_group_metadata_value_decode(&vr, &a, vv, &v) == SM_OK) {
                    gs_set(&g->protocol_type, v.protocol_type);
                    gs_set(&g->protocol, v.protocol);
                    gs_set(&g->leader, v.leader);
                    g->generation = v.generation;
                    /* Members are not restored: they rejoin after a restart
                     * (their sessions did not survive it), which starts a
                     * rebalance of the next generation. */
                }
            } else if (g && value.len < 0) {
                sm_str_t gid = V(g->id);
                sm_map_del(&c->groups, gid.ptr, (size_t)gid.len);
                group_free(g);
            }
        }
    }
    sm_arena_free(&a);
    return SM_OK;
}

static void apply_txn_offset(void *arg, const group_txn_offset_t *e);

/* A transactional offset commit read back at start: pending until its marker. */
static void load_txn_record(group_coordinator_t *c, int32_t partition, int64_t pid, sm_bytes_t key,
                            sm_bytes_t value) {
    sm_reader_t r = sm_reader_make(key.ptr, (size_t)key.len);
    int16_t kv;
    if (key.len < 2 || sm_rd_i16(&r, &kv) || (kv != 0 && kv != 1) || value.len < 2) return;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_offset_commit_key_t k;
    sm_reader_t vr = sm_reader_make(value.ptr, (size_t)value.len);
    int16_t vv;
    proto_offset_commit_value_t v;
    if (proto_offset_commit_key_decode(&r, &a, 0, &k) == SM_OK && sm_rd_i16(&vr, &vv) == SM_OK &&
        proto_offset_commit_value_decode(&vr, &a, vv, &v) == SM_OK) {
        group_txn_offset_t e = {{(const uint8_t *)k.group.ptr, k.group.len},
                                {(const uint8_t *)k.topic.ptr, k.topic.len},
                                {(const uint8_t *)v.metadata.ptr, v.metadata.len},
                                k.partition, v.offset, v.leader_epoch, v.commit_timestamp, partition};
        group_txn_offsets_add(&c->txn_offsets, pid, &e);
    }
    sm_arena_free(&a);
}

typedef struct load_ctx {
    group_coordinator_t *c;
    int32_t partition;
} load_ctx_t;

static int load_batch(void *arg, const uint8_t *batch, size_t len, const proto_batch_header_t *h) {
    load_ctx_t *lc = arg;
    group_coordinator_t *c = lc->c;
    if (proto_batch_compression(h) != PROTO_COMPRESSION_NONE) return SM_OK;
    if (h->attributes & PROTO_ATTR_CONTROL) {
        int32_t ce;
        int type = proto_control_batch_type(batch, len, &ce);
        if (type == PROTO_CONTROL_COMMIT || type == PROTO_CONTROL_ABORT)
            group_txn_offsets_complete(&c->txn_offsets, h->producer_id, lc->partition,
                                       type == PROTO_CONTROL_COMMIT, apply_txn_offset, c);
        return SM_OK;
    }
    bool txn = (h->attributes & PROTO_ATTR_TRANSACTIONAL) && h->producer_id >= 0;
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE, h->records_count);
    while (proto_record_iter_next(&it, &rec) == 1) {
        if (txn) load_txn_record(c, lc->partition, h->producer_id, rec.key, rec.value);
        else load_record(c, rec.key, rec.value);
    }
    return SM_OK;
}

/* ---------------------------------------------------------------- rebalancing */

static void respond_join_error(broker_req_t *r, int16_t err, gstr_t member_id) {
    proto_join_group_response_t *resp = r->resp;
    resp->error_code = err;
    resp->generation_id = -1;
    resp->member_id = member_id.p ? gs_arena(r, member_id) : SM_STR_LIT("");
    resp->leader = SM_STR_LIT("");
    resp->protocol_name = r->version >= 7 ? SM_STR_NULL : SM_STR_LIT("");
    resp->protocol_type = SM_STR_NULL;
    broker_req_finish(r);
}

static void respond_sync(broker_req_t *r, int16_t err, group_t *g, member_t *m) {
    proto_sync_group_response_t *resp = r->resp;
    resp->error_code = err;
    resp->protocol_type = g && !err ? gs_arena(r, g->protocol_type) : SM_STR_NULL;
    resp->protocol_name = g && !err ? gs_arena(r, g->protocol) : SM_STR_NULL;
    resp->assignment = (sm_bytes_t){NULL, 0};
    if (!err && m && m->assignment) {
        uint8_t *p = sm_arena_alloc(&r->arena, (size_t)m->assignment_len + 1);
        if (p) {
            memcpy(p, m->assignment, (size_t)m->assignment_len);
            resp->assignment = (sm_bytes_t){p, m->assignment_len};
        }
    }
    broker_req_finish(r);
}

/* The protocol every member supports that most members prefer. */
static const gstr_t *select_protocol(group_t *g) {
    member_t *first = g->members;
    if (!first) return NULL;
    const gstr_t *best = NULL;
    int best_votes = -1;
    for (int i = 0; i < first->nprotocols; i++) {
        const gstr_t *cand = &first->protocols[i].name;
        bool all = true;
        for (member_t *m = g->members; m && all; m = m->next) {
            bool has = false;
            for (int k = 0; k < m->nprotocols; k++)
                if (gs_eq(m->protocols[k].name, *cand)) has = true;
            all = has;
        }
        if (!all) continue;
        int votes = 0;
        for (member_t *m = g->members; m; m = m->next) {
            /* a member votes for its most preferred protocol all support */
            for (int k = 0; k < m->nprotocols; k++) {
                const gstr_t *p = &m->protocols[k].name;
                bool supported = true;
                for (member_t *o = g->members; o && supported; o = o->next) {
                    bool has = false;
                    for (int j = 0; j < o->nprotocols; j++)
                        if (gs_eq(o->protocols[j].name, *p)) has = true;
                    supported = has;
                }
                if (supported) {
                    if (gs_eq(*p, *cand)) votes++;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static void fill_join_response(broker_req_t *r, group_t *g, member_t *m) {
    proto_join_group_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_NONE;
    resp->generation_id = g->generation;
    resp->protocol_type = gs_arena(r, g->protocol_type);
    resp->protocol_name = gs_arena(r, g->protocol);
    resp->leader = gs_arena(r, g->leader);
    resp->member_id = gs_arena(r, m->id);
    resp->skip_assignment = false;
    resp->members.n = 0;
    if (gs_eq(g->leader, m->id)) {
        resp->members.v = sm_arena_calloc(&r->arena, (size_t)g->nmembers + 1, sizeof(*resp->members.v));
        int i = 0;
        for (member_t *o = g->members; resp->members.v && o; o = o->next) {
            resp->members.v[i].member_id = gs_arena(r, o->id);
            resp->members.v[i].group_instance_id = gs_arena(r, o->instance_id);
            for (int k = 0; k < o->nprotocols; k++) {
                if (gs_eq(o->protocols[k].name, g->protocol)) {
                    uint8_t *p = sm_arena_alloc(&r->arena, (size_t)o->protocols[k].meta_len + 1);
                    if (p) memcpy(p, o->protocols[k].meta, (size_t)o->protocols[k].meta_len);
                    resp->members.v[i].metadata = (sm_bytes_t){p, p ? o->protocols[k].meta_len : 0};
                }
            }
            i++;
        }
        resp->members.n = i;
    }
}

/* Ends the join phase: members that did not rejoin leave, a new generation
 * starts, every parked JoinGroup is answered. */
static void complete_join(group_coordinator_t *c, group_t *g) {
    for (member_t *m = g->members, *n; m; m = n) {
        n = m->next;
        if (!m->join_req) member_remove(g, m);
    }
    g->rebalance_deadline = 0;
    g->generation++;
    if (!g->members) {
        gs_free(&g->protocol);
        gs_free(&g->leader);
        set_state(g, EMPTY);
        persist_group(c, g);
        return;
    }
    const gstr_t *p = select_protocol(g);
    gs_set(&g->protocol, p ? V(*p) : SM_STR_NULL);
    if (!g->leader.p || !member_find(g, V(g->leader))) gs_set(&g->leader, V(g->members->id));
    set_state(g, COMPLETING);
    sm_info("group", "%.*s: rebalanced: generation %d with %d members, protocol %.*s, leader %.*s", (int)g->id.len, g->id.p,
             g->generation, g->nmembers, (int)g->protocol.len, g->protocol.p ? g->protocol.p : "",
             (int)g->leader.len, g->leader.p);
    for (member_t *m = g->members; m; m = m->next) {
        broker_req_t *r = m->join_req;
        m->join_req = NULL;
        fill_join_response(r, g, m);
        broker_req_finish(r);
    }
}

static void prepare_rebalance(group_coordinator_t *c, group_t *g, bool initial) {
    /* Parked syncs of the old generation learn about the rebalance. */
    for (member_t *m = g->members; m; m = m->next) {
        if (m->sync_req) {
            respond_sync(m->sync_req, PROTO_ERR_REBALANCE_IN_PROGRESS, g, m);
            m->sync_req = NULL;
        }
    }
    int32_t max_rt = 0;
    for (member_t *m = g->members; m; m = m->next)
        if (m->rebalance_timeout > max_rt) max_rt = m->rebalance_timeout;
    int64_t now = now_ms();
    g->rebalance_max = now + max_rt;
    g->rebalance_deadline = initial && c->initial_delay > 0 ? now + c->initial_delay : now + max_rt;
    if (g->rebalance_deadline > g->rebalance_max) g->rebalance_deadline = g->rebalance_max;
    set_state(g, PREPARING);
    sm_info("group", "%.*s: preparing rebalance (generation %d, %d members)", (int)g->id.len, g->id.p,
             g->generation, g->nmembers);
    pthread_cond_signal(&c->cv);
}

static bool all_joined(group_t *g) {
    for (member_t *m = g->members; m; m = m->next)
        if (!m->join_req) return false;
    return true;
}

/* After a member joined, left or expired while PREPARING. */
static void maybe_complete_join(group_coordinator_t *c, group_t *g, bool initial_window) {
    if (g->state != PREPARING) return;
    if (all_joined(g) && !initial_window) complete_join(c, g);
}

static void member_gone(group_coordinator_t *c, group_t *g, member_t *m) {
    sm_debug("group", "%.*s: member %.*s leaves", (int)g->id.len, g->id.p, (int)m->id.len, m->id.p);
    if (m->join_req) respond_join_error(m->join_req, PROTO_ERR_UNKNOWN_MEMBER_ID, NO_ID);
    if (m->sync_req) respond_sync(m->sync_req, PROTO_ERR_UNKNOWN_MEMBER_ID, NULL, NULL);
    m->join_req = m->sync_req = NULL;
    member_remove(g, m);
    if (g->state == STABLE || g->state == COMPLETING) {
        if (!g->members) {
            g->generation++;
            gs_free(&g->leader);
            set_state(g, EMPTY);
            persist_group(c, g);
        } else {
            prepare_rebalance(c, g, false);
        }
    } else if (g->state == PREPARING) {
        if (!g->members) complete_join(c, g);
        else maybe_complete_join(c, g, false);
    }
}

/*
 * Offset expiry (KIP-211): offsets of an empty group expire retention_ms after
 * the later of the group becoming empty and their commit; a group that never
 * had members (simple commits) expires each offset retention_ms after its
 * commit. Groups left with neither members nor offsets are deleted. Writes
 * tombstones. Caller holds c->mu.
 */
static void expire_offsets(group_coordinator_t *c, int64_t now) {
    sm_str_t *dead = NULL;
    size_t ndead = 0, it = 0;
    void *v;
    while (sm_map_next(&c->groups, &it, NULL, NULL, &v)) {
        group_t *g = v;
        if (g->state != EMPTY || g->members) continue;
        size_t n = sm_map_size(&g->offsets), oit = 0, ne = 0;
        rec_t *recs = calloc(n + 2, sizeof(rec_t));
        char **keys = calloc(n + 1, sizeof(char *));
        size_t *klens = calloc(n + 1, sizeof(size_t));
        const void *k;
        size_t kl;
        void *ov;
        while (recs && keys && klens && sm_map_next(&g->offsets, &oit, &k, &kl, &ov)) {
            offset_entry_t *e = ov;
            int64_t base = g->protocol_type.p && e->commit_ts < g->state_ts ? g->state_ts : e->commit_ts;
            if (now - base < c->retention_ms) continue;
            int32_t part;
            memcpy(&part, (const char *)k + kl - 4, 4);
            if (offset_record(V(g->id), offset_key_topic(k, kl), part, NULL, &recs[ne]) != SM_OK) continue;
            keys[ne] = malloc(kl);
            if (keys[ne]) memcpy(keys[ne], k, kl);
            klens[ne] = kl;
            ne++;
        }
        bool drop_group = recs && sm_map_size(&g->offsets) == ne;
        int nr = (int)ne;
        if (drop_group && group_record(g, true, &recs[nr]) == SM_OK) nr++;
        if (nr && append_records(c, V(g->id), recs, nr) == PROTO_ERR_NONE) {
            for (size_t i = 0; i < ne; i++) {
                offset_entry_t *e = keys[i] ? sm_map_del(&g->offsets, keys[i], klens[i]) : NULL;
                if (e) {
                    gs_free(&e->metadata);
                    free(e);
                }
            }
            if (ne) sm_info("group", "%.*s: %zu committed offset(s) expired", (int)g->id.len, g->id.p, ne);
            if (drop_group) {
                sm_str_t *nd = realloc(dead, sizeof(*nd) * (ndead + 1));
                if (nd) {
                    dead = nd;
                    dead[ndead++] = V(g->id);
                }
            }
        }
        if (recs) recs_free(recs, nr);
        for (size_t i = 0; keys && i < ne; i++) free(keys[i]);
        free(recs);
        free(keys);
        free(klens);
    }
    for (size_t i = 0; i < ndead; i++) {
        group_t *g = sm_map_del(&c->groups, dead[i].ptr, (size_t)dead[i].len);
        if (g) group_free(g);
    }
    free(dead);
}

static void *timer_main(void *arg) {
    group_coordinator_t *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        int64_t now = now_ms(), next = now + 1000;
        if (now >= c->next_retention_check) {
            expire_offsets(c, broker_now_ms());
            c->next_retention_check = now + c->retention_check_ms;
        }
        if (c->next_retention_check < next) next = c->next_retention_check;
        size_t it = 0;
        void *v;
        while (sm_map_next(&c->groups, &it, NULL, NULL, &v)) {
            group_t *g = v;
            if (g->state == PREPARING && g->rebalance_deadline) {
                if (now >= g->rebalance_deadline) {
                    complete_join(c, g);
                } else if (g->rebalance_deadline < next) {
                    next = g->rebalance_deadline;
                }
            }
            for (member_t *m = g->members, *n; m; m = n) {
                n = m->next;
                /* A member waiting in JoinGroup is not expired meanwhile. */
                if (m->join_req) continue;
                int64_t exp = m->last_seen + m->session_timeout;
                if (now >= exp) {
                    sm_info("group", "%.*s: member %.*s expired after %d ms without heartbeat", (int)g->id.len,
                            g->id.p, (int)m->id.len, m->id.p, m->session_timeout);
                    member_gone(c, g, m);
                } else if (exp < next) {
                    next = exp;
                }
            }
            for (pending_id_t **pp = &g->pending; *pp;) {
                if (now >= (*pp)->expires) {
                    pending_id_t *d = *pp;
                    *pp = d->next;
                    gs_free(&d->id);
                    free(d);
                } else {
                    pp = &(*pp)->next;
                }
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = next - now_ms();
        if (wait < 1) wait = 1;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---------------------------------------------------------------- start/stop */

static group_coordinator_t *coord(broker_t *b) { return b->groups; }

int32_t group_offsets_partition(broker_t *b, sm_str_t group_id) {
    group_coordinator_t *c = coord(b);
    return c && group_id.len > 0 ? group_partition_for(group_id, c->partitions) : -1;
}

/* A committed transactional offset becomes the group's committed offset
 * (under c->mu). */
static void apply_txn_offset(void *arg, const group_txn_offset_t *e) {
    group_coordinator_t *c = arg;
    group_t *g = group_get_or_create(c, (sm_str_t){(const char *)e->group.ptr, e->group.len});
    if (!g) return;
    char kb[300];
    size_t kl = offset_key(kb, sizeof(kb), (sm_str_t){(const char *)e->topic.ptr, e->topic.len},
                           e->partition);
    offset_entry_t *n = calloc(1, sizeof(*n));
    if (!n) return;
    n->offset = e->offset;
    n->leader_epoch = e->leader_epoch;
    n->metadata = gs_dup((sm_str_t){(const char *)e->metadata.ptr, e->metadata.len});
    n->commit_ts = e->commit_ts;
    offset_entry_t *old = sm_map_get(&g->offsets, kb, kl);
    if (sm_map_put(&g->offsets, kb, kl, n)) {
        gs_free(&n->metadata);
        free(n);
        return;
    }
    if (old) {
        gs_free(&old->metadata);
        free(old);
    }
}

void group_txn_marker(broker_t *b, int32_t partition, int64_t producer_id, bool commit) {
    group_coordinator_t *c = coord(b);
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    group_txn_offsets_complete(&c->txn_offsets, producer_id, partition, commit, apply_txn_offset, c);
    pthread_mutex_unlock(&c->mu);
}

int group_coordinator_start(broker_t *b) {
    group_coordinator_t *c = calloc(1, sizeof(*c));
    if (!c) return SM_ERR_NOMEM;
    c->b = b;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    sm_map_init(&c->groups);
    group_txn_offsets_init(&c->txn_offsets);
    c->initial_delay = sm_config_int(b->cfg, "group.initial.rebalance.delay.ms");
    c->min_session = sm_config_int(b->cfg, "group.min.session.timeout.ms");
    c->max_session = sm_config_int(b->cfg, "group.max.session.timeout.ms");
    c->max_size = sm_config_int(b->cfg, "group.max.size");
    c->retention_ms = sm_config_is_set(b->cfg, "samsa.offsets.retention.ms")
                          ? sm_config_long(b->cfg, "samsa.offsets.retention.ms")
                          : (int64_t)sm_config_int(b->cfg, "offsets.retention.minutes") * 60000;
    c->retention_check_ms = sm_config_long(b->cfg, "offsets.retention.check.interval.ms");
    c->next_retention_check = now_ms() + c->retention_check_ms;
    b->groups = c;
    /* __consumer_offsets: created on first start, like Kafka's, compacted. */
    sm_str_t name = SM_STR_LIT(OFFSETS_TOPIC);
    meta_image_rdlock(&b->image);
    meta_topic_t *t = meta_image_topic(&b->image, name);
    bool exists = t != NULL;
    meta_image_unlock(&b->image);
    if (!exists) {
        char seg[24];
        snprintf(seg, sizeof(seg), "%d", sm_config_int(b->cfg, "offsets.topic.segment.bytes"));
        meta_config_kv_t kv[] = {{SM_STR_LIT("cleanup.policy"), SM_STR_LIT("compact")},
                                 {SM_STR_LIT("segment.bytes"), sm_str_from(seg)}};
        meta_result_t res;
        sm_uuid_t id;
        meta_create_topic(&b->controller, name, sm_config_int(b->cfg, "offsets.topic.num.partitions"), 1, kv, 2,
                          false, &id, &res);
        if (res.error) {
            sm_error("group", "cannot create %s: %s", OFFSETS_TOPIC, res.message);
            return SM_ERR;
        }
    }
    meta_image_rdlock(&b->image);
    t = meta_image_topic(&b->image, name);
    if (t) {
        c->topic_id = t->id;
        c->partitions = t->n_partitions;
    }
    meta_image_unlock(&b->image);
    if (!t) return SM_ERR;
    for (int32_t p = 0; p < c->partitions; p++) {
        broker_partition_t *bp = broker_partition_get(b, &c->topic_id, p);
        if (!bp) continue;
        load_ctx_t lc = {c, p};
        log_for_each_batch(bp->log, 0, load_batch, &lc);
        broker_partition_put(bp);
    }
    if (sm_map_size(&c->groups)) sm_info("group", "loaded %zu groups from %s", sm_map_size(&c->groups), OFFSETS_TOPIC);
    if (pthread_create(&c->timer, NULL, timer_main, c)) return SM_ERR;
    return SM_OK;
}

void group_coordinator_stop(broker_t *b) {
    group_coordinator_t *c = b->groups;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_broadcast(&c->cv);
    size_t it = 0;
    void *v;
    while (sm_map_next(&c->groups, &it, NULL, NULL, &v)) {
        group_t *g = v;
        for (member_t *m = g->members; m; m = m->next) {
            if (m->join_req) respond_join_error(m->join_req, PROTO_ERR_COORDINATOR_NOT_AVAILABLE, NO_ID);
            if (m->sync_req) respond_sync(m->sync_req, PROTO_ERR_COORDINATOR_NOT_AVAILABLE, NULL, NULL);
            m->join_req = m->sync_req = NULL;
        }
    }
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->timer, NULL);
}

void group_coordinator_free(broker_t *b) {
    group_coordinator_t *c = b->groups;
    if (!c) return;
    size_t it = 0;
    void *v;
    while (sm_map_next(&c->groups, &it, NULL, NULL, &v)) group_free(v);
    sm_map_free(&c->groups);
    group_txn_offsets_free(&c->txn_offsets);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    b->groups = NULL;
}

/* ---------------------------------------------------------------- handlers */

int broker_handle_find_coordinator(broker_req_t *r) {
    broker_t *b = r->b;
    proto_find_coordinator_request_t *req = broker_body(r);
    proto_find_coordinator_response_t *resp = r->resp;
    /* Key types: 0 groups, 1 transactional ids (both here), 2 share groups. */
    int16_t err = req->key_type == 0 || (req->key_type == 1 && b->txns)
                      ? PROTO_ERR_NONE
                      : req->key_type > 2 ? PROTO_ERR_INVALID_REQUEST
                                          : PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    sm_str_t host = sm_arena_str(&r->arena, broker_req_host(r));
    if (r->version < 4) {
        resp->error_code = err;
        resp->error_message = err ? SM_STR_LIT("No coordinator for this key type") : SM_STR_NULL;
        resp->node_id = err ? -1 : b->s.node_id;
        resp->host = err ? SM_STR_LIT("") : host;
        resp->port = err ? -1 : broker_req_port(r);
        return BROKER_RESPOND;
    }
    int32_t n = req->coordinator_keys.n > 0 ? req->coordinator_keys.n : 0;
    resp->coordinators.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->coordinators.v));
    if (!resp->coordinators.v) return BROKER_CLOSE;
    resp->coordinators.n = n;
    for (int32_t i = 0; i < n; i++) {
        proto_find_coordinator_response_coordinator_t *o = &resp->coordinators.v[i];
        o->key = req->coordinator_keys.v[i];
        o->error_code = err;
        o->error_message = err ? SM_STR_LIT("No coordinator for this key type") : SM_STR_NULL;
        o->node_id = err ? -1 : b->s.node_id;
        o->host = err ? SM_STR_LIT("") : host;
        o->port = err ? -1 : broker_req_port(r);
    }
    return BROKER_RESPOND;
}

static member_t *new_member(sm_str_t id, const proto_join_group_request_t *req, broker_req_t *r) {
    member_t *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->id = gs_dup(id);
    m->instance_id = gs_dup(req->group_instance_id);
    m->client_id = gs_dup(r->req.header.client_id.len >= 0 ? r->req.header.client_id : SM_STR_LIT(""));
    const char *peer = net_conn_peer(r->net->conn);
    const char *colon = strrchr(peer, ':');
    char host[80];
    snprintf(host, sizeof(host), "/%.*s", colon ? (int)(colon - peer) : (int)strlen(peer), peer);
    m->client_host = gs_dup(S(host));
    return m;
}

static int set_protocols(member_t *m, const proto_join_group_request_t *req) {
    for (int i = 0; i < m->nprotocols; i++) {
        gs_free(&m->protocols[i].name);
        free(m->protocols[i].meta);
    }
    free(m->protocols);
    m->nprotocols = 0;
    m->protocols = calloc((size_t)req->protocols.n + 1, sizeof(protocol_t));
    if (!m->protocols) return SM_ERR_NOMEM;
    for (int32_t i = 0; i < req->protocols.n; i++) {
        const proto_join_group_request_join_group_request_protocol_t *p = &req->protocols.v[i];
        m->protocols[i].name = gs_dup(p->name);
        int32_t ml = p->metadata.len > 0 ? p->metadata.len : 0;
        m->protocols[i].meta = malloc((size_t)ml + 1);
        if (m->protocols[i].meta && ml) memcpy(m->protocols[i].meta, p->metadata.ptr, (size_t)ml);
        m->protocols[i].meta_len = ml;
        m->nprotocols++;
    }
    return SM_OK;
}

static bool protocols_compatible(group_t *g, const proto_join_group_request_t *req) {
    if (!g->members) return true;
    if (!g->protocol_type.p || !streq(g->protocol_type, req->protocol_type)) return false;
    /* At least one protocol every member (and this one) supports. */
    for (int32_t i = 0; i < req->protocols.n; i++) {
        bool all = true;
        for (member_t *m = g->members; m && all; m = m->next) {
            bool has = false;
            for (int k = 0; k < m->nprotocols; k++)
                if (streq(m->protocols[k].name, req->protocols.v[i].name)) has = true;
            all = has;
        }
        if (all) return true;
    }
    return false;
}

/* Kafka's shape: <group.instance.id or client.id>-<uuid>; the prefix is
 * copied as bytes (it may hold NUL). id.p is NULL when out of memory. */
static gstr_t make_member_id(sm_str_t client_id, sm_str_t instance) {
    uint8_t u[16];
    if (getrandom(u, 16, 0) != 16)
        for (int i = 0; i < 16; i++) u[i] = (uint8_t)rand();
    sm_str_t prefix = instance.len >= 0 ? instance : client_id;
    int32_t plen = prefix.len > 0 ? prefix.len : 0;
    gstr_t id = {malloc((size_t)plen + 40), 0};
    if (!id.p) return id;
    if (plen) memcpy(id.p, prefix.ptr, (size_t)plen);
    int n = snprintf(id.p + plen, 40, "-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                     u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    id.len = plen + n;
    return id;
}

int broker_handle_join_group(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_join_group_request_t *req = broker_body(r);
    int16_t v = r->version;
    if (req->group_id.len <= 0) {
        respond_join_error(r, PROTO_ERR_INVALID_GROUP_ID, NO_ID);
        return BROKER_PARKED;
    }
    if (req->session_timeout_ms < c->min_session || req->session_timeout_ms > c->max_session) {
        respond_join_error(r, PROTO_ERR_INVALID_SESSION_TIMEOUT, NO_ID);
        return BROKER_PARKED;
    }
    if (req->protocol_type.len <= 0 || req->protocols.n <= 0) {
        respond_join_error(r, PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL, NO_ID);
        return BROKER_PARKED;
    }
    int32_t rebalance_timeout = v >= 1 ? req->rebalance_timeout_ms : req->session_timeout_ms;
    sm_debug("group", "%.*s: JoinGroup v%d from '%.*s'", (int)req->group_id.len, req->group_id.ptr, v,
             (int)req->member_id.len, req->member_id.ptr ? req->member_id.ptr : "");
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        /* Nothing would complete a join parked now: the timer is gone. */
        pthread_mutex_unlock(&c->mu);
        respond_join_error(r, PROTO_ERR_COORDINATOR_NOT_AVAILABLE, NO_ID);
        return BROKER_PARKED;
    }
    group_t *g = group_get_or_create(c, req->group_id);
    if (!g) {
        pthread_mutex_unlock(&c->mu);
        respond_join_error(r, PROTO_ERR_UNKNOWN_SERVER_ERROR, NO_ID);
        return BROKER_PARKED;
    }
    if (!protocols_compatible(g, req)) {
        pthread_mutex_unlock(&c->mu);
        respond_join_error(r, PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL, NO_ID);
        return BROKER_PARKED;
    }
    member_t *m = NULL;
    bool is_static = req->group_instance_id.len >= 0;
    if (req->member_id.len == 0) {
        member_t *old = is_static ? member_by_instance(g, req->group_instance_id) : NULL;
        gstr_t id = make_member_id(r->req.header.client_id, req->group_instance_id);
        if (!id.p) {
            pthread_mutex_unlock(&c->mu);
            respond_join_error(r, PROTO_ERR_UNKNOWN_SERVER_ERROR, NO_ID);
            return BROKER_PARKED;
        }
        if (old) {
            /* KIP-345: a static member restarting takes its place back under
             * a new member id; the old id is fenced. No rebalance when the
             * group is stable and the protocols are unchanged. */
            if (old->join_req) respond_join_error(old->join_req, PROTO_ERR_FENCED_INSTANCE_ID, NO_ID);
            if (old->sync_req) respond_sync(old->sync_req, PROTO_ERR_FENCED_INSTANCE_ID, NULL, NULL);
            old->join_req = old->sync_req = NULL;
            bool was_leader = gs_eq(g->leader, old->id);
            gs_free(&old->id);
            old->id = id;
            if (was_leader) gs_set(&g->leader, V(id));
            old->session_timeout = req->session_timeout_ms;
            old->rebalance_timeout = rebalance_timeout;
            old->last_seen = now_ms();
            if (g->state == STABLE) {
                set_protocols(old, req);
                fill_join_response(r, g, old);
                /* The leader learns the members again only on a real rebalance. */
                ((proto_join_group_response_t *)r->resp)->members.n = 0;
                ((proto_join_group_response_t *)r->resp)->skip_assignment = was_leader && v >= 9;
                pthread_mutex_unlock(&c->mu);
                broker_req_finish(r);
                return BROKER_PARKED;
            }
            m = old;
        } else if (!is_static && v >= 4) {
            /* KIP-394: a new dynamic member first gets its id. */
            pending_id_t *p = calloc(1, sizeof(*p));
            if (p) {
                p->id = id;
                p->expires = now_ms() + req->session_timeout_ms;
                p->next = g->pending;
                g->pending = p;
            }
            pthread_mutex_unlock(&c->mu);
            respond_join_error(r, PROTO_ERR_MEMBER_ID_REQUIRED, id);
            if (!p) gs_free(&id);
            return BROKER_PARKED;
        } else {
            if (c->max_size > 0 && g->nmembers >= c->max_size) {
                gs_free(&id);
                pthread_mutex_unlock(&c->mu);
                respond_join_error(r, PROTO_ERR_GROUP_MAX_SIZE_REACHED, NO_ID);
                return BROKER_PARKED;
            }
            m = new_member(V(id), req, r);
            gs_free(&id);
            if (!m) {
                pthread_mutex_unlock(&c->mu);
                respond_join_error(r, PROTO_ERR_UNKNOWN_SERVER_ERROR, NO_ID);
                return BROKER_PARKED;
            }
            m->next = g->members;
            g->members = m;
            g->nmembers++;
        }
    } else {
        m = member_find(g, req->member_id);
        if (!m) {
            /* A member id handed out with MEMBER_ID_REQUIRED. */
            pending_id_t **pp = &g->pending;
            while (*pp && !streq((*pp)->id, req->member_id)) pp = &(*pp)->next;
            if (*pp) {
                if (c->max_size > 0 && g->nmembers >= c->max_size) {
                    pthread_mutex_unlock(&c->mu);
                    respond_join_error(r, PROTO_ERR_GROUP_MAX_SIZE_REACHED, NO_ID);
                    return BROKER_PARKED;
                }
                pending_id_t *p = *pp;
                *pp = p->next;
                m = new_member(V(p->id), req, r);
                gs_free(&p->id);
                free(p);
                if (m) {
                    m->next = g->members;
                    g->members = m;
                    g->nmembers++;
                }
            }
        } else if (is_static && (!m->instance_id.p || !streq(m->instance_id, req->group_instance_id))) {
            pthread_mutex_unlock(&c->mu);
            respond_join_error(r, PROTO_ERR_FENCED_INSTANCE_ID, NO_ID);
            return BROKER_PARKED;
        }
        if (!m) {
            int16_t err = is_static && member_by_instance(g, req->group_instance_id) ? PROTO_ERR_FENCED_INSTANCE_ID
                                                                                       : PROTO_ERR_UNKNOWN_MEMBER_ID;
            pthread_mutex_unlock(&c->mu);
            respond_join_error(r, err, NO_ID);
            return BROKER_PARKED;
        }
    }
    if (m->join_req) respond_join_error(m->join_req, PROTO_ERR_REBALANCE_IN_PROGRESS, NO_ID);
    set_protocols(m, req);
    m->session_timeout = req->session_timeout_ms;
    m->rebalance_timeout = rebalance_timeout;
    m->last_seen = now_ms();
    m->join_req = r;
    if (!g->protocol_type.p || !streq(g->protocol_type, req->protocol_type)) gs_set(&g->protocol_type, req->protocol_type);
    bool initial = false;
    if (g->state == EMPTY) {
        initial = true;
        prepare_rebalance(c, g, true);
    } else if (g->state == STABLE || g->state == COMPLETING) {
        prepare_rebalance(c, g, false);
    } else if (g->state == PREPARING && c->initial_delay > 0 && g->generation == 0) {
        /* Initial delay: each new member extends the wait, up to the timeout. */
        int64_t d = now_ms() + c->initial_delay;
        g->rebalance_deadline = d < g->rebalance_max ? d : g->rebalance_max;
        initial = true;
        pthread_cond_signal(&c->cv);
    }
    if (!(initial && c->initial_delay > 0)) maybe_complete_join(c, g, false);
    pthread_mutex_unlock(&c->mu);
    return BROKER_PARKED;
}

int broker_handle_sync_group(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_sync_group_request_t *req = broker_body(r);
    pthread_mutex_lock(&c->mu);
    group_t *g = group_get(c, req->group_id);
    member_t *m = g ? member_find(g, req->member_id) : NULL;
    int16_t err = PROTO_ERR_NONE;
    if (c->stopping) {
        err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE; /* no sync may park now */
    } else if (!g || !m) {
        err = g && req->group_instance_id.len >= 0 && member_by_instance(g, req->group_instance_id)
                  ? PROTO_ERR_FENCED_INSTANCE_ID
                  : PROTO_ERR_UNKNOWN_MEMBER_ID;
    } else if (req->generation_id != g->generation) {
        err = PROTO_ERR_ILLEGAL_GENERATION;
    } else if ((req->protocol_type.len >= 0 && !streq(g->protocol_type, req->protocol_type)) ||
               (req->protocol_name.len >= 0 && !streq(g->protocol, req->protocol_name))) {
        err = PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL;
    } else if (g->state == PREPARING) {
        err = PROTO_ERR_REBALANCE_IN_PROGRESS;
    }
    if (err) {
        pthread_mutex_unlock(&c->mu);
        respond_sync(r, err, NULL, NULL);
        return BROKER_PARKED;
    }
    m->last_seen = now_ms();
    if (g->state == STABLE) {
        respond_sync(r, PROTO_ERR_NONE, g, m);
        pthread_mutex_unlock(&c->mu);
        return BROKER_PARKED;
    }
    /* COMPLETING */
    if (m->sync_req) respond_sync(m->sync_req, PROTO_ERR_REBALANCE_IN_PROGRESS, NULL, NULL);
    m->sync_req = r;
    if (gs_eq(g->leader, m->id)) {
        for (member_t *o = g->members; o; o = o->next) {
            free(o->assignment);
            o->assignment = NULL;
            o->assignment_len = 0;
        }
        for (int32_t i = 0; i < req->assignments.n; i++) {
            member_t *o = member_find(g, req->assignments.v[i].member_id);
            sm_bytes_t a = req->assignments.v[i].assignment;
            if (!o || a.len < 0) continue;
            o->assignment = malloc((size_t)a.len + 1);
            if (o->assignment) {
                memcpy(o->assignment, a.ptr, (size_t)a.len);
                o->assignment_len = a.len;
            }
        }
        int16_t perr = persist_group(c, g);
        set_state(g, STABLE);
        sm_debug("group", "%.*s: stable at generation %d", (int)g->id.len, g->id.p, g->generation);
        for (member_t *o = g->members; o; o = o->next) {
            if (!o->sync_req) continue;
            respond_sync(o->sync_req, perr, g, o);
            o->sync_req = NULL;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return BROKER_PARKED;
}

int broker_handle_heartbeat(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_heartbeat_request_t *req = broker_body(r);
    proto_heartbeat_response_t *resp = r->resp;
    pthread_mutex_lock(&c->mu);
    group_t *g = group_get(c, req->group_id);
    member_t *m = g ? member_find(g, req->member_id) : NULL;
    if (!g || !m) {
        resp->error_code = g && req->group_instance_id.len >= 0 && member_by_instance(g, req->group_instance_id)
                               ? PROTO_ERR_FENCED_INSTANCE_ID
                               : PROTO_ERR_UNKNOWN_MEMBER_ID;
    } else if (req->generation_id != g->generation) {
        resp->error_code = PROTO_ERR_ILLEGAL_GENERATION;
    } else {
        m->last_seen = now_ms();
        resp->error_code = g->state == PREPARING ? PROTO_ERR_REBALANCE_IN_PROGRESS : PROTO_ERR_NONE;
    }
    sm_debug("group", "heartbeat %.*s gen %d: %d", (int)req->member_id.len, req->member_id.ptr, req->generation_id,
             resp->error_code);
    pthread_mutex_unlock(&c->mu);
    return BROKER_RESPOND;
}

int broker_handle_leave_group(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_leave_group_request_t *req = broker_body(r);
    proto_leave_group_response_t *resp = r->resp;
    pthread_mutex_lock(&c->mu);
    group_t *g = group_get(c, req->group_id);
    if (r->version < 3) {
        member_t *m = g ? member_find(g, req->member_id) : NULL;
        resp->error_code = m ? PROTO_ERR_NONE : PROTO_ERR_UNKNOWN_MEMBER_ID;
        if (m) member_gone(c, g, m);
    } else {
        int32_t n = req->members.n > 0 ? req->members.n : 0;
        resp->members.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->members.v));
        resp->members.n = resp->members.v ? n : 0;
        resp->error_code = g ? PROTO_ERR_NONE : PROTO_ERR_UNKNOWN_MEMBER_ID;
        for (int32_t i = 0; i < resp->members.n; i++) {
            const proto_leave_group_request_member_identity_t *id = &req->members.v[i];
            proto_leave_group_response_member_response_t *o = &resp->members.v[i];
            o->member_id = id->member_id;
            o->group_instance_id = id->group_instance_id;
            member_t *m = NULL;
            if (g && id->group_instance_id.len >= 0) {
                m = member_by_instance(g, id->group_instance_id);
                if (m && id->member_id.len > 0 && !streq(m->id, id->member_id)) {
                    o->error_code = PROTO_ERR_FENCED_INSTANCE_ID;
                    continue;
                }
            } else if (g) {
                m = member_find(g, id->member_id);
            }
            o->error_code = m ? PROTO_ERR_NONE : PROTO_ERR_UNKNOWN_MEMBER_ID;
            if (m) member_gone(c, g, m);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return BROKER_RESPOND;
}

/* ---- offsets ---- */

/* Checks a commit's membership; returns a Kafka error. Caller holds c->mu. */
static int16_t commit_allowed(group_t *g, int32_t generation, sm_str_t member_id, sm_str_t instance_id) {
    if (generation < 0 && member_id.len <= 0) {
        /* A simple commit: only for a group without active members. */
        return g->members ? PROTO_ERR_UNKNOWN_MEMBER_ID : PROTO_ERR_NONE;
    }
    member_t *m = member_find(g, member_id);
    if (!m) {
        if (instance_id.len >= 0 && member_by_instance(g, instance_id)) return PROTO_ERR_FENCED_INSTANCE_ID;
        return PROTO_ERR_UNKNOWN_MEMBER_ID;
    }
    if (generation != g->generation) return PROTO_ERR_ILLEGAL_GENERATION;
    /* Kafka's classic coordinator: a member of the current generation may
     * still commit while the group prepares a rebalance (it commits what it
     * consumed before its partitions are revoked); only once the join phase
     * completed, while the group awaits SyncGroup, is the commit refused. */
    if (g->state == COMPLETING) return PROTO_ERR_REBALANCE_IN_PROGRESS;
    m->last_seen = now_ms();
    return PROTO_ERR_NONE;
}

/* UNKNOWN_TOPIC_OR_PARTITION for a partition the image does not hold, as
 * Kafka answers before the commit reaches its coordinator. */
static int16_t commit_partition_known(broker_t *b, sm_str_t topic, int32_t partition) {
    meta_image_rdlock(&b->image);
    const meta_topic_t *t = meta_image_topic(&b->image, topic);
    bool known = t && partition >= 0 && partition < t->n_partitions;
    meta_image_unlock(&b->image);
    return known ? PROTO_ERR_NONE : PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
}

/* OffsetCommit and OffsetFetch v10+ name topics by id (KIP-848); offsets stay
 * keyed by topic name. The name of a topic id, copied into the request's
 * arena, or a null string when no topic has that id. */
static sm_str_t topic_name_of(broker_req_t *r, const sm_uuid_t *id) {
    meta_image_rdlock(&r->b->image);
    meta_topic_t *t = sm_uuid_is_zero(id) ? NULL : meta_image_topic_by_id(&r->b->image, id);
    sm_str_t name = t ? sm_arena_str(&r->arena, t->name) : SM_STR_NULL;
    meta_image_unlock(&r->b->image);
    return name;
}

/* The id of a topic name; false when no such topic exists. */
static bool topic_id_of(broker_t *b, sm_str_t name, sm_uuid_t *id) {
    meta_image_rdlock(&b->image);
    meta_topic_t *t = meta_image_topic(&b->image, name);
    if (t) *id = t->id;
    meta_image_unlock(&b->image);
    return t != NULL;
}

/*
 * TxnOffsetCommit (KIP-98, member fields KIP-447): offsets written as a
 * transactional batch of the producer to the group's __consumer_offsets
 * partition, visible only once the transaction commits. The partition must
 * be in the transaction (AddOffsetsToTxn first), checked with the
 * transaction coordinator as Kafka's verification does.
 */
int broker_handle_txn_offset_commit(broker_req_t *r) {
    broker_t *b = r->b;
    group_coordinator_t *c = coord(b);
    proto_txn_offset_commit_request_t *req = broker_body(r);
    proto_txn_offset_commit_response_t *resp = r->resp;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->topics.v));
    if (!resp->topics.v) return BROKER_CLOSE;
    resp->topics.n = nt;
    int total = 0;
    /* v6 names topics by id (KIP-1319); offsets stay keyed by name. */
    sm_str_t *names = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*names));
    if (!names) return BROKER_CLOSE;
    for (int32_t i = 0; i < nt; i++) {
        const proto_txn_offset_commit_request_txn_offset_commit_request_topic_t *t = &req->topics.v[i];
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        names[i] = r->version >= 6 ? topic_name_of(r, &t->topic_id) : t->name;
        resp->topics.v[i].name = t->name;
        resp->topics.v[i].topic_id = t->topic_id;
        resp->topics.v[i].partitions.v =
            sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*resp->topics.v[i].partitions.v));
        if (!resp->topics.v[i].partitions.v) return BROKER_CLOSE;
        resp->topics.v[i].partitions.n = np;
        for (int32_t k = 0; k < np; k++)
            resp->topics.v[i].partitions.v[k].partition_index = t->partitions.v[k].partition_index;
        total += np;
    }
    int16_t gerr = PROTO_ERR_NONE;
    int32_t gp = -1;
    if (!c) {
        gerr = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    } else if (req->group_id.len <= 0) {
        gerr = PROTO_ERR_INVALID_GROUP_ID;
    } else {
        gp = group_partition_for(req->group_id, c->partitions);
        /* v5+ (transactions V2) adds the partition itself, as AddOffsetsToTxn. */
        gerr = r->version >= 5
                   ? txn_coordinator_add_implicit(b, req->transactional_id, req->producer_id,
                                                  req->producer_epoch, SM_STR_LIT(OFFSETS_TOPIC), gp)
                   : txn_coordinator_verify(b, req->transactional_id, req->producer_id,
                                            req->producer_epoch, SM_STR_LIT(OFFSETS_TOPIC), gp,
                                            10);
        if (gerr == PROTO_ERR_NOT_ENOUGH_REPLICAS) gerr = PROTO_ERR_CONCURRENT_TRANSACTIONS;
        if (gerr == PROTO_ERR_INVALID_PRODUCER_EPOCH && r->version >= 3)
            gerr = PROTO_ERR_PRODUCER_FENCED;
    }
    rec_t *recs = gerr ? NULL : calloc((size_t)total + 1, sizeof(rec_t));
    group_txn_offset_t *pend = gerr ? NULL : calloc((size_t)total + 1, sizeof(*pend));
    if (!gerr && (!recs || !pend)) gerr = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    int nrecs = 0;
    if (c) pthread_mutex_lock(&c->mu);
    if (!gerr && r->version >= 3 && (req->member_id.len > 0 || req->generation_id_or_member_epoch >= 0)) {
        group_t *g = group_get(c, req->group_id);
        gerr = g ? commit_allowed(g, req->generation_id_or_member_epoch, req->member_id, req->group_instance_id)
                 : PROTO_ERR_ILLEGAL_GENERATION;
    }
    int64_t now = broker_now_ms();
    for (int32_t i = 0; i < nt; i++) {
        const proto_txn_offset_commit_request_txn_offset_commit_request_topic_t *t = &req->topics.v[i];
        for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++) {
            const proto_txn_offset_commit_request_txn_offset_commit_request_partition_t *p =
                &t->partitions.v[k];
            int16_t *err = &resp->topics.v[i].partitions.v[k].error_code;
            *err = gerr;
            if (gerr) continue;
            if (names[i].len < 0) {
                *err = PROTO_ERR_UNKNOWN_TOPIC_ID;
                continue;
            }
            if (p->committed_metadata.len > MAX_METADATA) {
                *err = PROTO_ERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            int32_t epoch = r->version >= 2 ? p->committed_leader_epoch : -1;
            /* e borrows the request's metadata bytes for the record only. */
            offset_entry_t e = {p->committed_offset, epoch,
                                {(char *)p->committed_metadata.ptr, p->committed_metadata.len}, now};
            if (p->committed_metadata.len < 0) e.metadata = NO_ID;
            if (offset_record(req->group_id, names[i], p->partition_index, &e, &recs[nrecs])) {
                *err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
                continue;
            }
            pend[nrecs] = (group_txn_offset_t){
                {(const uint8_t *)req->group_id.ptr, req->group_id.len},
                {(const uint8_t *)names[i].ptr, names[i].len},
                {(const uint8_t *)p->committed_metadata.ptr,
                 p->committed_metadata.len < 0 ? 0 : p->committed_metadata.len},
                p->partition_index, p->committed_offset, epoch, now, gp};
            nrecs++;
        }
    }
    int16_t aerr = gerr || !nrecs ? gerr
                                  : append_records_as(c, req->group_id, recs, nrecs,
                                                      req->producer_id, req->producer_epoch);
    for (int i = 0; !aerr && i < nrecs; i++)
        if (group_txn_offsets_add(&c->txn_offsets, req->producer_id, &pend[i]))
            aerr = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    if (aerr && !gerr)
        for (int32_t i = 0; i < nt; i++)
            for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++)
                if (!resp->topics.v[i].partitions.v[k].error_code)
                    resp->topics.v[i].partitions.v[k].error_code = aerr;
    if (c) pthread_mutex_unlock(&c->mu);
    if (recs) recs_free(recs, nrecs);
    free(recs);
    free(pend);
    return BROKER_RESPOND;
}

int broker_handle_offset_commit(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_offset_commit_request_t *req = broker_body(r);
    proto_offset_commit_response_t *resp = r->resp;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->topics.v));
    if (!resp->topics.v) return BROKER_CLOSE;
    resp->topics.n = nt;
    int total = 0;
    for (int32_t i = 0; i < nt; i++) total += req->topics.v[i].partitions.n > 0 ? req->topics.v[i].partitions.n : 0;
    rec_t *recs = calloc((size_t)total + 1, sizeof(rec_t));
    if (!recs) return BROKER_CLOSE;
    sm_str_t *names = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*names));
    if (!names) {
        free(recs);
        return BROKER_CLOSE;
    }
    int nrecs = 0;
    pthread_mutex_lock(&c->mu);
    int16_t gerr = PROTO_ERR_NONE;
    group_t *g = NULL;
    if (req->group_id.len <= 0) {
        gerr = PROTO_ERR_INVALID_GROUP_ID;
    } else {
        g = group_get(c, req->group_id);
        if (!g && (r->version == 0 || req->generation_id_or_member_epoch < 0)) g = group_get_or_create(c, req->group_id);
        if (!g) gerr = req->generation_id_or_member_epoch >= 0 ? PROTO_ERR_ILLEGAL_GENERATION : PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        else if (r->version >= 1) gerr = commit_allowed(g, req->generation_id_or_member_epoch, req->member_id, req->group_instance_id);
    }
    int64_t now = broker_now_ms();
    for (int32_t i = 0; i < nt; i++) {
        const proto_offset_commit_request_offset_commit_request_topic_t *t = &req->topics.v[i];
        proto_offset_commit_response_offset_commit_response_topic_t *o = &resp->topics.v[i];
        o->name = t->name;
        o->topic_id = t->topic_id;
        /* The name the offsets are kept under (resolved from the id at v10+). */
        sm_str_t name = r->version >= 10 ? topic_name_of(r, &t->topic_id) : t->name;
        names[i] = name;
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        o->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? np : 0;
        for (int32_t k = 0; k < o->partitions.n; k++) {
            const proto_offset_commit_request_offset_commit_request_partition_t *p = &t->partitions.v[k];
            o->partitions.v[k].partition_index = p->partition_index;
            int16_t perr = name.len < 0 ? PROTO_ERR_UNKNOWN_TOPIC_ID
                                        : commit_partition_known(r->b, name, p->partition_index);
            if (perr || gerr) {
                o->partitions.v[k].error_code = perr ? perr : gerr;
                continue;
            }
            if (p->committed_metadata.len > MAX_METADATA) {
                o->partitions.v[k].error_code = PROTO_ERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            /* e borrows the request's metadata bytes for the record only. */
            offset_entry_t e = {p->committed_offset, r->version >= 6 ? p->committed_leader_epoch : -1,
                                {(char *)p->committed_metadata.ptr, p->committed_metadata.len}, now};
            if (p->committed_metadata.len < 0) e.metadata = NO_ID;
            if (offset_record(req->group_id, name, p->partition_index, &e, &recs[nrecs]) == SM_OK) nrecs++;
            o->partitions.v[k].error_code = PROTO_ERR_NONE;
        }
    }
    /* The commit is acknowledged only after it is appended. */
    int16_t aerr = gerr ? gerr : append_records(c, req->group_id, recs, nrecs);
    if (!gerr && aerr == PROTO_ERR_NONE) {
        for (int32_t i = 0; i < nt; i++) {
            const proto_offset_commit_request_offset_commit_request_topic_t *t = &req->topics.v[i];
            for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++) {
                if (resp->topics.v[i].partitions.v[k].error_code) continue;
                const proto_offset_commit_request_offset_commit_request_partition_t *p = &t->partitions.v[k];
                char kb[300];
                size_t kl = offset_key(kb, sizeof(kb), names[i], p->partition_index);
                offset_entry_t *e = sm_map_get(&g->offsets, kb, kl);
                if (!e) {
                    e = calloc(1, sizeof(*e));
                    if (!e || sm_map_put(&g->offsets, kb, kl, e)) {
                        free(e);
                        continue;
                    }
                }
                e->offset = p->committed_offset;
                e->leader_epoch = r->version >= 6 ? p->committed_leader_epoch : -1;
                gs_set(&e->metadata, p->committed_metadata.len >= 0 ? p->committed_metadata : SM_STR_LIT(""));
                e->commit_ts = now;
            }
        }
    } else if (aerr) {
        for (int32_t i = 0; i < nt; i++)
            for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++)
                if (!resp->topics.v[i].partitions.v[k].error_code) resp->topics.v[i].partitions.v[k].error_code = aerr;
    }
    pthread_mutex_unlock(&c->mu);
    recs_free(recs, nrecs);
    free(recs);
    return BROKER_RESPOND;
}

/* Fills one group's offsets for OffsetFetch (v8+ layout); topics == NULL: all. */
static void fetch_group_offsets(broker_req_t *r, group_coordinator_t *c, sm_str_t group_id, bool stable,
                                const proto_offset_fetch_request_offset_fetch_request_topics_array_t *topics,
                                proto_offset_fetch_response_offset_fetch_response_group_t *out) {
    out->group_id = group_id;
    out->error_code = PROTO_ERR_NONE;
    group_t *g = group_get(c, group_id);
    if (topics->n >= 0) {
        out->topics.v = sm_arena_calloc(&r->arena, (size_t)topics->n + 1, sizeof(*out->topics.v));
        out->topics.n = out->topics.v ? topics->n : 0;
        for (int32_t i = 0; i < out->topics.n; i++) {
            const proto_offset_fetch_request_offset_fetch_request_topics_t *t = &topics->v[i];
            proto_offset_fetch_response_offset_fetch_response_topics_t *o = &out->topics.v[i];
            o->name = t->name;
            o->topic_id = t->topic_id;
            sm_str_t name = r->version >= 10 ? topic_name_of(r, &t->topic_id) : t->name;
            int32_t np = t->partition_indexes.n > 0 ? t->partition_indexes.n : 0;
            o->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
            o->partitions.n = o->partitions.v ? np : 0;
            for (int32_t k = 0; k < o->partitions.n; k++) {
                proto_offset_fetch_response_offset_fetch_response_partitions_t *p = &o->partitions.v[k];
                p->partition_index = t->partition_indexes.v[k];
                if (name.len < 0) {
                    p->committed_offset = -1;
                    p->committed_leader_epoch = -1;
                    p->metadata = SM_STR_LIT("");
                    p->error_code = PROTO_ERR_UNKNOWN_TOPIC_ID;
                    continue;
                }
                char kb[300];
                size_t kl = offset_key(kb, sizeof(kb), name, p->partition_index);
                offset_entry_t *e = g ? sm_map_get(&g->offsets, kb, kl) : NULL;
                p->committed_offset = e ? e->offset : -1;
                p->committed_leader_epoch = e ? e->leader_epoch : -1;
                p->metadata = e && e->metadata.p ? gs_arena(r, e->metadata) : SM_STR_LIT("");
                /* KIP-447: a reader asking for stable offsets waits while a
                 * transaction holds an offset of this partition. */
                p->error_code = stable && group_txn_offsets_pending(
                                              &c->txn_offsets,
                                              (sm_bytes_t){(const uint8_t *)group_id.ptr, group_id.len},
                                              (sm_bytes_t){(const uint8_t *)t->name.ptr, t->name.len},
                                              p->partition_index)
                                    ? PROTO_ERR_UNSTABLE_OFFSET_COMMIT
                                    : PROTO_ERR_NONE;
            }
        }
        return;
    }
    /* All committed offsets of the group, one topic entry per partition. */
    size_t n = g ? sm_map_size(&g->offsets) : 0, it = 0, i = 0;
    out->topics.v = sm_arena_calloc(&r->arena, n + 1, sizeof(*out->topics.v));
    const void *k;
    size_t kl;
    void *v;
    while (g && out->topics.v && sm_map_next(&g->offsets, &it, &k, &kl, &v) && i < n) {
        offset_entry_t *e = v;
        int32_t part;
        memcpy(&part, (const char *)k + kl - 4, 4);
        sm_str_t topic = offset_key_topic(k, kl);
        sm_uuid_t tid = {{0}};
        /* v10+ answers by topic id: offsets of a deleted topic have none. */
        if (r->version >= 10 && !topic_id_of(r->b, topic, &tid)) continue;
        proto_offset_fetch_response_offset_fetch_response_topics_t *o = &out->topics.v[i++];
        o->name = (sm_str_t){sm_arena_strndup(&r->arena, topic.ptr, (size_t)topic.len), topic.len};
        o->topic_id = tid;
        o->partitions.v = sm_arena_calloc(&r->arena, 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? 1 : 0;
        if (o->partitions.v) {
            o->partitions.v[0].partition_index = part;
            o->partitions.v[0].committed_offset = e->offset;
            o->partitions.v[0].committed_leader_epoch = e->leader_epoch;
            o->partitions.v[0].metadata = e->metadata.p ? gs_arena(r, e->metadata) : SM_STR_LIT("");
        }
    }
    out->topics.n = (int32_t)i;
}

int broker_handle_offset_fetch(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_offset_fetch_request_t *req = broker_body(r);
    proto_offset_fetch_response_t *resp = r->resp;
    pthread_mutex_lock(&c->mu);
    if (r->version >= 8) {
        int32_t n = req->groups.n > 0 ? req->groups.n : 0;
        resp->groups.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->groups.v));
        resp->groups.n = resp->groups.v ? n : 0;
        for (int32_t i = 0; i < resp->groups.n; i++)
            fetch_group_offsets(r, c, req->groups.v[i].group_id, req->require_stable,
                                &req->groups.v[i].topics, &resp->groups.v[i]);
    } else {
        /* Older layout: translate through the v8 shape. */
        proto_offset_fetch_request_offset_fetch_request_topics_array_t topics = {-1, NULL};
        if (req->topics.n >= 0) {
            topics.v = sm_arena_calloc(&r->arena, (size_t)req->topics.n + 1, sizeof(*topics.v));
            topics.n = topics.v ? req->topics.n : 0;
            for (int32_t i = 0; i < topics.n; i++) {
                topics.v[i].name = req->topics.v[i].name;
                topics.v[i].partition_indexes = req->topics.v[i].partition_indexes;
            }
        }
        proto_offset_fetch_response_offset_fetch_response_group_t one;
        memset(&one, 0, sizeof(one));
        fetch_group_offsets(r, c, req->group_id, r->version >= 7 && req->require_stable, &topics,
                            &one);
        resp->error_code = PROTO_ERR_NONE;
        resp->topics.v = sm_arena_calloc(&r->arena, (size_t)one.topics.n + 1, sizeof(*resp->topics.v));
        resp->topics.n = resp->topics.v ? one.topics.n : 0;
        for (int32_t i = 0; i < resp->topics.n; i++) {
            resp->topics.v[i].name = one.topics.v[i].name;
            int32_t np = one.topics.v[i].partitions.n;
            resp->topics.v[i].partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*resp->topics.v[i].partitions.v));
            resp->topics.v[i].partitions.n = resp->topics.v[i].partitions.v ? np : 0;
            for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++) {
                const proto_offset_fetch_response_offset_fetch_response_partitions_t *s = &one.topics.v[i].partitions.v[k];
                proto_offset_fetch_response_offset_fetch_response_partition_t *d = &resp->topics.v[i].partitions.v[k];
                d->partition_index = s->partition_index;
                d->committed_offset = s->committed_offset;
                d->committed_leader_epoch = s->committed_leader_epoch;
                d->metadata = s->metadata;
                d->error_code = s->error_code;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return BROKER_RESPOND;
}

int broker_handle_offset_delete(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_offset_delete_request_t *req = broker_body(r);
    proto_offset_delete_response_t *resp = r->resp;
    pthread_mutex_lock(&c->mu);
    group_t *g = group_get(c, req->group_id);
    if (!g) {
        resp->error_code = PROTO_ERR_GROUP_ID_NOT_FOUND;
        pthread_mutex_unlock(&c->mu);
        return BROKER_RESPOND;
    }
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->topics.v));
    resp->topics.n = resp->topics.v ? nt : 0;
    for (int32_t i = 0; i < resp->topics.n; i++) {
        const proto_offset_delete_request_offset_delete_request_topic_t *t = &req->topics.v[i];
        proto_offset_delete_response_offset_delete_response_topic_t *o = &resp->topics.v[i];
        o->name = t->name;
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        o->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? np : 0;
        /* An active consumer group may not lose offsets of topics it reads:
         * its members' subscriptions name them (checked loosely by name). */
        bool subscribed = false;
        if (g->state != EMPTY && g->state != DEAD)
            for (member_t *m = g->members; m && !subscribed; m = m->next)
                for (int k = 0; k < m->nprotocols && !subscribed; k++)
                    if (t->name.len > 0 && memmem(m->protocols[k].meta, (size_t)m->protocols[k].meta_len, t->name.ptr,
                                                  (size_t)t->name.len))
                        subscribed = true;
        for (int32_t k = 0; k < o->partitions.n; k++) {
            int32_t part = t->partitions.v[k].partition_index;
            o->partitions.v[k].partition_index = part;
            if (subscribed) {
                o->partitions.v[k].error_code = PROTO_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
                continue;
            }
            char kb[300];
            size_t kl = offset_key(kb, sizeof(kb), t->name, part);
            offset_entry_t *e = sm_map_del(&g->offsets, kb, kl);
            if (e) {
                rec_t rec;
                if (offset_record(req->group_id, t->name, part, NULL, &rec) == SM_OK) {
                    append_records(c, req->group_id, &rec, 1);
                    recs_free(&rec, 1);
                }
                gs_free(&e->metadata);
                free(e);
            }
            o->partitions.v[k].error_code = PROTO_ERR_NONE;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return BROKER_RESPOND;
}

/* ---- admin ---- */

int broker_handle_list_groups(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_list_groups_request_t *req = broker_body(r);
    proto_list_groups_response_t *resp = r->resp;
    pthread_mutex_lock(&c->mu);
    size_t n = sm_map_size(&c->groups), it = 0, i = 0;
    resp->groups.v = sm_arena_calloc(&r->arena, n + 1, sizeof(*resp->groups.v));
    void *v;
    while (resp->groups.v && sm_map_next(&c->groups, &it, NULL, NULL, &v)) {
        group_t *g = v;
        const char *state = state_names[g->state];
        bool keep = req->states_filter.n <= 0;
        for (int32_t k = 0; k < req->states_filter.n; k++)
            if (req->states_filter.v[k].len == (int32_t)strlen(state) &&
                strncasecmp(state, req->states_filter.v[k].ptr, strlen(state)) == 0)
                keep = true;
        bool type_ok = req->types_filter.n <= 0;
        for (int32_t k = 0; k < req->types_filter.n; k++)
            if (req->types_filter.v[k].len == 7 && strncasecmp(req->types_filter.v[k].ptr, "classic", 7) == 0) type_ok = true;
        if (!keep || !type_ok) continue;
        resp->groups.v[i].group_id = gs_arena(r, g->id);
        resp->groups.v[i].protocol_type = g->protocol_type.p ? gs_arena(r, g->protocol_type) : SM_STR_LIT("");
        resp->groups.v[i].group_state = sm_arena_str(&r->arena, state);
        resp->groups.v[i].group_type = SM_STR_LIT("classic");
        i++;
    }
    resp->groups.n = (int32_t)i;
    resp->error_code = PROTO_ERR_NONE;
    pthread_mutex_unlock(&c->mu);
    return BROKER_RESPOND;
}

/* The message of GROUP_ID_NOT_FOUND (DescribeGroups v6+, DeleteGroups v3+;
 * older versions do not carry it). */
static sm_str_t group_not_found(broker_req_t *r, sm_str_t id) {
    char msg[300];
    snprintf(msg, sizeof(msg), "Group %.*s not found.", id.len > 0 ? (int)(id.len > 250 ? 250 : id.len) : 0,
             id.ptr ? id.ptr : "");
    return sm_arena_str(&r->arena, msg);
}

int broker_handle_describe_groups(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_describe_groups_request_t *req = broker_body(r);
    proto_describe_groups_response_t *resp = r->resp;
    int32_t n = req->groups.n > 0 ? req->groups.n : 0;
    resp->groups.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->groups.v));
    if (!resp->groups.v) return BROKER_CLOSE;
    resp->groups.n = n;
    pthread_mutex_lock(&c->mu);
    for (int32_t i = 0; i < n; i++) {
        proto_describe_groups_response_described_group_t *o = &resp->groups.v[i];
        group_t *g = group_get(c, req->groups.v[i]);
        o->group_id = req->groups.v[i];
        o->authorized_operations = INT32_MIN;
        if (!g) {
            o->error_code = r->version >= 6 ? PROTO_ERR_GROUP_ID_NOT_FOUND : PROTO_ERR_NONE;
            if (r->version >= 6) o->error_message = group_not_found(r, o->group_id);
            o->group_state = SM_STR_LIT("Dead");
            o->protocol_type = SM_STR_LIT("");
            o->protocol_data = SM_STR_LIT("");
            continue;
        }
        o->error_code = PROTO_ERR_NONE;
        o->group_state = sm_arena_str(&r->arena, state_names[g->state]);
        o->protocol_type = g->protocol_type.p ? gs_arena(r, g->protocol_type) : SM_STR_LIT("");
        o->protocol_data = g->state == STABLE && g->protocol.p ? gs_arena(r, g->protocol) : SM_STR_LIT("");
        o->members.v = sm_arena_calloc(&r->arena, (size_t)g->nmembers + 1, sizeof(*o->members.v));
        int k = 0;
        for (member_t *m = g->members; o->members.v && m; m = m->next, k++) {
            proto_describe_groups_response_described_group_member_t *d = &o->members.v[k];
            d->member_id = gs_arena(r, m->id);
            d->group_instance_id = gs_arena(r, m->instance_id);
            d->client_id = gs_arena(r, m->client_id);
            d->client_host = gs_arena(r, m->client_host);
            d->member_metadata = (sm_bytes_t){NULL, 0};
            for (int j = 0; j < m->nprotocols; j++)
                if (gs_eq(m->protocols[j].name, g->protocol)) {
                    uint8_t *p = sm_arena_alloc(&r->arena, (size_t)m->protocols[j].meta_len + 1);
                    if (p) memcpy(p, m->protocols[j].meta, (size_t)m->protocols[j].meta_len);
                    d->member_metadata = (sm_bytes_t){p, p ? m->protocols[j].meta_len : 0};
                }
            d->member_assignment = (sm_bytes_t){NULL, 0};
            if (m->assignment && g->state == STABLE) {
                uint8_t *p = sm_arena_alloc(&r->arena, (size_t)m->assignment_len + 1);
                if (p) memcpy(p, m->assignment, (size_t)m->assignment_len);
                d->member_assignment = (sm_bytes_t){p, p ? m->assignment_len : 0};
            }
        }
        o->members.n = o->members.v ? k : 0;
    }
    pthread_mutex_unlock(&c->mu);
    return BROKER_RESPOND;
}

int broker_handle_delete_groups(broker_req_t *r) {
    group_coordinator_t *c = coord(r->b);
    proto_delete_groups_request_t *req = broker_body(r);
    proto_delete_groups_response_t *resp = r->resp;
    int32_t n = req->groups_names.n > 0 ? req->groups_names.n : 0;
    resp->results.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->results.v));
    if (!resp->results.v) return BROKER_CLOSE;
    resp->results.n = n;
    pthread_mutex_lock(&c->mu);
    for (int32_t i = 0; i < n; i++) {
        sm_str_t id = req->groups_names.v[i];
        resp->results.v[i].group_id = id;
        group_t *g = group_get(c, id);
        if (!g) {
            resp->results.v[i].error_code = PROTO_ERR_GROUP_ID_NOT_FOUND;
            resp->results.v[i].error_message = group_not_found(r, id);
            continue;
        }
        if (g->members) {
            resp->results.v[i].error_code = PROTO_ERR_NON_EMPTY_GROUP;
            resp->results.v[i].error_message = sm_arena_str(&r->arena, "The group is not empty.");
            continue;
        }
        /* Tombstones for every offset and for the group itself. */
        size_t cnt = sm_map_size(&g->offsets) + 1, it = 0;
        rec_t *recs = calloc(cnt, sizeof(rec_t));
        int nr = 0;
        const void *k;
        size_t kl;
        while (recs && sm_map_next(&g->offsets, &it, &k, &kl, NULL)) {
            int32_t part;
            memcpy(&part, (const char *)k + kl - 4, 4);
            if (offset_record(id, offset_key_topic(k, kl), part, NULL, &recs[nr]) == SM_OK) nr++;
        }
        if (recs && group_record(g, true, &recs[nr]) == SM_OK) nr++;
        int16_t err = recs ? append_records(c, id, recs, nr) : PROTO_ERR_UNKNOWN_SERVER_ERROR;
        if (recs) recs_free(recs, nr);
        free(recs);
        resp->results.v[i].error_code = err;
        if (!err) {
            sm_map_del(&c->groups, id.ptr, (size_t)id.len);
            group_free(g);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return BROKER_RESPOND;
}
