/*
 * Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete and their expiry
 * (KIP-211). A commit or deletion appends its records first and changes the
 * group's offsets only when the append succeeded; the answer waits for the
 * records to be durable (runtime.c). Not for membership (classic.c).
 *
 * Invariant, under the shard's mu: g->offsets holds exactly the newest
 * OffsetCommit record of each (topic, partition) of g appended to the
 * shard's partition, absent after a tombstone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "txn/coordinator.h"
#include "group/group_impl.h"
#include "protocol/errors.h"

#define S group_S

void group_offsets_free(group_t *g) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&g->offsets, &it, NULL, NULL, &v)) {
        gs_free(((group_offset_t *)v)->metadata);
        free(v);
    }
    sm_map_free(&g->offsets);
}

static void offset_put(group_t *g, sm_str_t topic, int32_t partition, const group_offset_t *val) {
    char kb[300];
    size_t kl = group_offset_key(kb, sizeof(kb), topic, partition);
    group_offset_t *e = sm_map_get(&g->offsets, kb, kl);
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e || sm_map_put(&g->offsets, kb, kl, e)) {
            free(e);
            return;
        }
    }
    gs_free(e->metadata);
    *e = *val;
    e->metadata = val->metadata ? gs_copy(val->metadata) : gs_new("", 0);
}

static void offset_drop(group_t *g, const void *key, size_t klen) {
    group_offset_t *e = sm_map_del(&g->offsets, key, klen);
    if (e) {
        gs_free(e->metadata);
        free(e);
    }
}

/* The topic of a map key ("topic" NUL int32). */
static sm_str_t key_topic(const void *k, size_t kl) { return (sm_str_t){k, (int32_t)kl - 5}; }

/* The partition of a map key ("topic" NUL int32). */
static int32_t key_partition(const void *k, size_t kl) {
    int32_t part;
    memcpy(&part, (const char *)k + kl - 4, 4);
    return part;
}

/* OffsetCommit and OffsetFetch v10+ (and TxnOffsetCommit v6) name topics by
 * id (KIP-848); offsets stay keyed by topic name. The name of a topic id,
 * copied into the request's arena, or a null string when no topic has it. */
static sm_str_t topic_name_of(group_coordinator_t *c, broker_req_t *r, const sm_uuid_t *id) {
    char name[256];
    if (!c->host.topic_name(c->host.ctx, id, name, sizeof(name))) return SM_STR_NULL;
    return sm_arena_str(&r->arena, name);
}

/* UNKNOWN_TOPIC_OR_PARTITION for a partition the metadata does not hold. */
static int16_t partition_known(group_coordinator_t *c, sm_str_t topic, int32_t partition) {
    sm_uuid_t id;
    int32_t n = 0;
    bool known = c->host.topic(c->host.ctx, topic, &id, &n) && partition >= 0 && partition < n;
    return known ? PROTO_ERR_NONE : PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
}

/* ---------------------------------------------------------------- OffsetCommit */

/* Checks a commit's membership; returns a Kafka error. txn: a TxnOffsetCommit
 * (KIP-447). Caller holds the shard's mu. */
static int16_t commit_allowed(group_t *g, int32_t generation, sm_str_t member_id,
                              sm_str_t instance_id, bool txn) {
    if (generation < 0 && member_id.len <= 0) {
        /* A simple commit: only for a group without active members. */
        return g->members ? PROTO_ERR_UNKNOWN_MEMBER_ID : PROTO_ERR_NONE;
    }
    /* A transactional commit without a generation, for a group without members. */
    if (txn && generation < 0 && !g->members) return PROTO_ERR_NONE;
    group_member_t *m = group_member_find(g, member_id);
    if (!m) {
        if (instance_id.len >= 0 && group_member_by_instance(g, instance_id))
            return PROTO_ERR_FENCED_INSTANCE_ID;
        return PROTO_ERR_UNKNOWN_MEMBER_ID;
    }
    if (generation != g->generation) return PROTO_ERR_ILLEGAL_GENERATION;
    /* A member of the current generation may commit while the group prepares
     * a rebalance (it is revoking its partitions), not while it awaits
     * SyncGroup, as Kafka's classic coordinator. The group's state is not
     * enforced for a transactional commit (nor by Kafka): its producer
     * could only abort on REBALANCE_IN_PROGRESS. */
    if (!txn && g->state == GROUP_COMPLETING) return PROTO_ERR_REBALANCE_IN_PROGRESS;
    m->last_seen = group_now_ms();
    return PROTO_ERR_NONE;
}

/* The group a commit goes to, or NULL with *err set. */
static group_t *commit_group(group_coordinator_t *c, group_shard_t *s,
                             const proto_offset_commit_request_t *req, int16_t version,
                             int16_t *err) {
    *err = group_shard_error(s);
    if (*err) return NULL;
    if (req->group_id.len <= 0) {
        *err = PROTO_ERR_INVALID_GROUP_ID;
        return NULL;
    }
    group_t *g = group_get(s, req->group_id);
    if (!g && (version == 0 || req->generation_id_or_member_epoch < 0))
        g = group_get_or_create(s, req->group_id);
    if (!g) {
        *err = req->generation_id_or_member_epoch >= 0 ? PROTO_ERR_ILLEGAL_GENERATION
                                                       : PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    if (g->cg)
        *err = group_consumer_commit_allowed(c, g, req);
    else if (version >= 1)
        *err = commit_allowed(g, req->generation_id_or_member_epoch, req->member_id,
                              req->group_instance_id, false);
    return *err ? NULL : g;
}

/* Sets every partition of an OffsetCommit response still without an error to err. */
static void commit_fail_rest(proto_offset_commit_response_t *resp, int16_t err) {
    for (int32_t i = 0; i < resp->topics.n; i++)
        for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++)
            if (!resp->topics.v[i].partitions.v[k].error_code)
                resp->topics.v[i].partitions.v[k].error_code = err;
}

static void commit_answer(broker_req_t *r, int16_t err) {
    if (err) commit_fail_rest(r->resp, err);
    broker_req_finish(r);
}

/* A committed value; its metadata is a new group string (NUL bytes kept;
 * null metadata is ""): the caller frees it. */
static group_offset_t
commit_value(const broker_req_t *r,
             const proto_offset_commit_request_offset_commit_request_partition_t *p, int64_t now) {
    char *meta =
        p->committed_metadata.len >= 0 ? group_dupstr(p->committed_metadata) : gs_new("", 0);
    return (group_offset_t){p->committed_offset, r->version >= 6 ? p->committed_leader_epoch : -1,
                            meta, now};
}

int broker_handle_offset_commit(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_offset_commit_request_t *req = broker_body(r);
    proto_offset_commit_response_t *resp = r->resp;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->topics.v));
    if (!resp->topics.v) return BROKER_CLOSE;
    resp->topics.n = nt;
    int total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req->topics.v[i].partitions.n > 0 ? req->topics.v[i].partitions.n : 0;
    group_rec_t *recs = calloc((size_t)total + 1, sizeof(group_rec_t));
    sm_str_t *names = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*names));
    if (!recs || !names) {
        free(recs);
        return BROKER_CLOSE;
    }
    int nrecs = 0;
    group_shard_t *s = group_shard_for(c, req->group_id);
    pthread_mutex_lock(&s->mu);
    int16_t gerr;
    group_t *g = commit_group(c, s, req, r->version, &gerr);
    int64_t now = group_wall_ms();
    for (int32_t i = 0; i < nt; i++) {
        const proto_offset_commit_request_offset_commit_request_topic_t *t = &req->topics.v[i];
        proto_offset_commit_response_offset_commit_response_topic_t *o = &resp->topics.v[i];
        o->name = t->name;
        o->topic_id = t->topic_id;
        /* The name the offsets are kept under (resolved from the id at v10+). */
        names[i] = r->version >= 10 ? topic_name_of(c, r, &t->topic_id) : t->name;
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        o->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? np : 0;
        for (int32_t k = 0; k < o->partitions.n; k++) {
            const proto_offset_commit_request_offset_commit_request_partition_t *p =
                &t->partitions.v[k];
            o->partitions.v[k].partition_index = p->partition_index;
            /* Unknown topics and partitions are answered before the group's
             * errors, as Kafka checks them before the commit reaches its
             * coordinator. */
            int16_t perr = names[i].len < 0 ? PROTO_ERR_UNKNOWN_TOPIC_ID
                                            : partition_known(c, names[i], p->partition_index);
            o->partitions.v[k].error_code = perr ? perr : gerr;
            if (perr || gerr) continue;
            if (p->committed_metadata.len > GROUP_MAX_METADATA) {
                o->partitions.v[k].error_code = PROTO_ERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            group_offset_t e = commit_value(r, p, now);
            if (group_offset_record(req->group_id, names[i], p->partition_index, &e, &recs[nrecs]))
                o->partitions.v[k].error_code = PROTO_ERR_UNKNOWN_SERVER_ERROR;
            else
                nrecs++;
            gs_free(e.metadata);
        }
    }
    /* Append first; the offsets change only when it succeeded. */
    int64_t end = 0;
    int16_t aerr = g ? group_append(c, s, recs, nrecs, &end) : PROTO_ERR_NONE;
    if (g && !aerr) {
        for (int32_t i = 0; i < nt; i++)
            for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++) {
                if (resp->topics.v[i].partitions.v[k].error_code) continue;
                const proto_offset_commit_request_offset_commit_request_partition_t *p =
                    &req->topics.v[i].partitions.v[k];
                group_offset_t e = commit_value(r, p, now);
                offset_put(g, names[i], p->partition_index, &e);
                gs_free(e.metadata);
            }
        if (end) g->write_end = end;
    } else if (aerr) {
        commit_fail_rest(resp, aerr);
    }
    group_recs_free(recs, nrecs);
    free(recs);
    group_answer_after(c, s, g ? g->write_end : 0, r, commit_answer);
    pthread_mutex_unlock(&s->mu);
    return BROKER_PARKED;
}

/* ---------------------------------------------------------------- OffsetFetch */

static void fetch_partition(broker_req_t *r, group_shard_t *s, group_t *g, sm_str_t group_id,
                            sm_str_t topic, bool stable,
                            proto_offset_fetch_response_offset_fetch_response_partitions_t *p) {
    if (topic.len < 0) {
        p->committed_offset = -1;
        p->committed_leader_epoch = -1;
        p->metadata = SM_STR_LIT("");
        p->error_code = PROTO_ERR_UNKNOWN_TOPIC_ID;
        return;
    }
    char kb[300];
    size_t kl = group_offset_key(kb, sizeof(kb), topic, p->partition_index);
    group_offset_t *e = g ? sm_map_get(&g->offsets, kb, kl) : NULL;
    p->committed_offset = e ? e->offset : -1;
    p->committed_leader_epoch = e ? e->leader_epoch : -1;
    p->metadata = e && e->metadata ? gs_arena(r, e->metadata) : SM_STR_LIT("");
    /* KIP-447: a reader asking for stable offsets waits while a transaction
     * holds an offset of this partition. */
    p->error_code =
        stable && group_txn_offsets_pending(
                      &s->txn, (sm_bytes_t){(const uint8_t *)group_id.ptr, group_id.len},
                      (sm_bytes_t){(const uint8_t *)topic.ptr, topic.len}, p->partition_index)
            ? PROTO_ERR_UNSTABLE_OFFSET_COMMIT
            : PROTO_ERR_NONE;
}

/* Fills one group's offsets for OffsetFetch (v8+ layout); topics->n < 0: all. */
static void
fetch_group_offsets(broker_req_t *r, group_coordinator_t *c, sm_str_t group_id, bool stable,
                    const proto_offset_fetch_request_offset_fetch_request_topics_array_t *topics,
                    proto_offset_fetch_response_offset_fetch_response_group_t *out) {
    out->group_id = group_id;
    group_shard_t *s = group_shard_for(c, group_id);
    pthread_mutex_lock(&s->mu);
    out->error_code = group_shard_error(s);
    group_t *g = out->error_code ? NULL : group_get(s, group_id);
    if (topics->n >= 0) {
        out->topics.v = sm_arena_calloc(&r->arena, (size_t)topics->n + 1, sizeof(*out->topics.v));
        out->topics.n = out->topics.v ? topics->n : 0;
        for (int32_t i = 0; i < out->topics.n; i++) {
            const proto_offset_fetch_request_offset_fetch_request_topics_t *t = &topics->v[i];
            proto_offset_fetch_response_offset_fetch_response_topics_t *o = &out->topics.v[i];
            o->name = t->name;
            o->topic_id = t->topic_id;
            sm_str_t name = r->version >= 10 ? topic_name_of(c, r, &t->topic_id) : t->name;
            int32_t np = t->partition_indexes.n > 0 ? t->partition_indexes.n : 0;
            o->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
            o->partitions.n = o->partitions.v ? np : 0;
            for (int32_t k = 0; k < o->partitions.n; k++) {
                o->partitions.v[k].partition_index = t->partition_indexes.v[k];
                fetch_partition(r, s, g, group_id, name, stable, &o->partitions.v[k]);
            }
        }
        pthread_mutex_unlock(&s->mu);
        return;
    }
    /* All committed offsets of the group, one topic entry per partition. */
    size_t n = g ? sm_map_size(&g->offsets) : 0, it = 0, i = 0;
    out->topics.v = sm_arena_calloc(&r->arena, n + 1, sizeof(*out->topics.v));
    const void *k;
    size_t kl;
    while (g && out->topics.v && i < n && sm_map_next(&g->offsets, &it, &k, &kl, NULL)) {
        sm_uuid_t tid = {{0}};
        int32_t nparts;
        /* v10+ answers by topic id: offsets of a deleted topic have none. */
        if (r->version >= 10 && !c->host.topic(c->host.ctx, key_topic(k, kl), &tid, &nparts))
            continue;
        proto_offset_fetch_response_offset_fetch_response_topics_t *o = &out->topics.v[i++];
        o->name = sm_arena_str(&r->arena, k); /* topic names hold no NUL */
        o->topic_id = tid;
        o->partitions.v = sm_arena_calloc(&r->arena, 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? 1 : 0;
        if (o->partitions.v) {
            o->partitions.v[0].partition_index = key_partition(k, kl);
            fetch_partition(r, s, g, group_id, o->name, stable, &o->partitions.v[0]);
        }
    }
    out->topics.n = (int32_t)i;
    pthread_mutex_unlock(&s->mu);
}

int broker_handle_offset_fetch(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_offset_fetch_request_t *req = broker_body(r);
    proto_offset_fetch_response_t *resp = r->resp;
    if (r->version >= 8) {
        int32_t n = req->groups.n > 0 ? req->groups.n : 0;
        resp->groups.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->groups.v));
        resp->groups.n = resp->groups.v ? n : 0;
        for (int32_t i = 0; i < resp->groups.n; i++)
            fetch_group_offsets(r, c, req->groups.v[i].group_id, req->require_stable,
                                &req->groups.v[i].topics, &resp->groups.v[i]);
        return BROKER_RESPOND;
    }
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
    fetch_group_offsets(r, c, req->group_id, r->version >= 7 && req->require_stable, &topics, &one);
    resp->error_code = one.error_code;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)one.topics.n + 1, sizeof(*resp->topics.v));
    resp->topics.n = resp->topics.v ? one.topics.n : 0;
    for (int32_t i = 0; i < resp->topics.n; i++) {
        resp->topics.v[i].name = one.topics.v[i].name;
        int32_t np = one.topics.v[i].partitions.n;
        resp->topics.v[i].partitions.v =
            sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*resp->topics.v[i].partitions.v));
        resp->topics.v[i].partitions.n = resp->topics.v[i].partitions.v ? np : 0;
        for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++) {
            const proto_offset_fetch_response_offset_fetch_response_partitions_t *sp =
                &one.topics.v[i].partitions.v[k];
            proto_offset_fetch_response_offset_fetch_response_partition_t *d =
                &resp->topics.v[i].partitions.v[k];
            d->partition_index = sp->partition_index;
            d->committed_offset = sp->committed_offset;
            d->committed_leader_epoch = sp->committed_leader_epoch;
            d->metadata = sp->metadata;
            /* v0-1 have no top-level error: a coordinator error is each partition's. */
            d->error_code = sp->error_code || r->version >= 2 ? sp->error_code : one.error_code;
        }
    }
    return BROKER_RESPOND;
}

/* ---------------------------------------------------------------- OffsetDelete */

/* An active consumer group may not lose offsets of topics it reads: its
 * members' subscriptions name them (checked loosely by name). */
static bool group_subscribes(group_t *g, sm_str_t topic) {
    if (g->state == GROUP_EMPTY || g->state == GROUP_DEAD || topic.len <= 0) return false;
    for (group_member_t *m = g->members; m; m = m->next)
        for (int k = 0; k < m->nprotocols; k++)
            if (memmem(m->protocols[k].meta, (size_t)m->protocols[k].meta_len, topic.ptr,
                       (size_t)topic.len))
                return true;
    return false;
}

static void delete_answer(broker_req_t *r, int16_t err) {
    proto_offset_delete_response_t *resp = r->resp;
    if (err) resp->error_code = err;
    broker_req_finish(r);
}

int broker_handle_offset_delete(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_offset_delete_request_t *req = broker_body(r);
    proto_offset_delete_response_t *resp = r->resp;
    group_shard_t *s = group_shard_for(c, req->group_id);
    pthread_mutex_lock(&s->mu);
    int16_t err = group_shard_error(s);
    group_t *g = err ? NULL : group_get(s, req->group_id);
    if (!g) {
        resp->error_code = err ? err : PROTO_ERR_GROUP_ID_NOT_FOUND;
        pthread_mutex_unlock(&s->mu);
        return BROKER_RESPOND;
    }
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0, total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req->topics.v[i].partitions.n > 0 ? req->topics.v[i].partitions.n : 0;
    group_rec_t *recs = calloc((size_t)total + 1, sizeof(*recs));
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->topics.v));
    if (!recs || !resp->topics.v) {
        free(recs);
        pthread_mutex_unlock(&s->mu);
        return BROKER_CLOSE;
    }
    resp->topics.n = nt;
    int nrecs = 0;
    for (int32_t i = 0; i < nt; i++) {
        const proto_offset_delete_request_offset_delete_request_topic_t *t = &req->topics.v[i];
        proto_offset_delete_response_offset_delete_response_topic_t *o = &resp->topics.v[i];
        o->name = t->name;
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        o->partitions.v = sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? np : 0;
        bool subscribed = group_subscribes(g, t->name);
        for (int32_t k = 0; k < o->partitions.n; k++) {
            int32_t part = t->partitions.v[k].partition_index;
            o->partitions.v[k].partition_index = part;
            o->partitions.v[k].error_code = subscribed ? PROTO_ERR_GROUP_SUBSCRIBED_TO_TOPIC : 0;
            char kb[300];
            size_t kl = group_offset_key(kb, sizeof(kb), t->name, part);
            if (!subscribed && sm_map_get(&g->offsets, kb, kl) &&
                group_offset_record(req->group_id, t->name, part, NULL, &recs[nrecs]) == SM_OK)
                nrecs++;
        }
    }
    int64_t end = 0;
    err = group_append(c, s, recs, nrecs, &end);
    group_recs_free(recs, nrecs);
    free(recs);
    if (err) {
        resp->error_code = err;
    } else {
        for (int32_t i = 0; i < nt; i++)
            for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++) {
                if (resp->topics.v[i].partitions.v[k].error_code) continue;
                char kb[300];
                size_t kl = group_offset_key(kb, sizeof(kb), req->topics.v[i].name,
                                             resp->topics.v[i].partitions.v[k].partition_index);
                offset_drop(g, kb, kl);
            }
        if (end) g->write_end = end;
    }
    group_answer_after(c, s, err ? 0 : g->write_end, r, delete_answer);
    pthread_mutex_unlock(&s->mu);
    return BROKER_PARKED;
}

/* ---------------------------------------------------------------- expiry */

/*
 * Offset expiry (KIP-211): offsets of an empty group expire retention_ms after
 * the later of the group becoming empty and their commit; a group that never
 * had members (simple commits) expires each offset retention_ms after its
 * commit. Groups left with neither members nor offsets are deleted. Writes
 * the tombstones first; a failed write is tried again at the next check.
 */
static void expire_group(group_coordinator_t *c, group_shard_t *s, group_t *g, int64_t now,
                         bool *drop) {
    *drop = false;
    size_t n = sm_map_size(&g->offsets), it = 0, ne = 0;
    group_rec_t *recs = calloc(n + 2, sizeof(*recs));
    char **keys = calloc(n + 1, sizeof(char *));
    size_t *klens = calloc(n + 1, sizeof(size_t));
    const void *k;
    size_t kl;
    void *ov;
    while (recs && keys && klens && sm_map_next(&g->offsets, &it, &k, &kl, &ov)) {
        group_offset_t *e = ov;
        int64_t base = g->protocol_type && e->commit_ts < g->state_ts ? g->state_ts : e->commit_ts;
        if (now - base < c->retention_ms) continue;
        if (!(keys[ne] = malloc(kl))) continue;
        memcpy(keys[ne], k, kl);
        klens[ne] = kl;
        if (group_offset_record(S(g->id), key_topic(k, kl), key_partition(k, kl), NULL,
                                &recs[ne]) != SM_OK) {
            free(keys[ne]);
            continue;
        }
        ne++;
    }
    bool drop_group = recs && keys && klens && sm_map_size(&g->offsets) == ne;
    int nr = (int)ne;
    group_meta_view_t none = {0};
    if (drop_group && group_meta_record(g, &none, true, &recs[nr]) == SM_OK) nr++;
    int64_t end;
    if (nr && group_append(c, s, recs, nr, &end) == PROTO_ERR_NONE) {
        for (size_t i = 0; i < ne; i++)
            offset_drop(g, keys[i], klens[i]);
        if (ne) sm_info("group", "%s: %zu committed offset(s) expired", g->id, ne);
        g->write_end = end;
        *drop = drop_group;
    }
    if (recs) group_recs_free(recs, nr);
    for (size_t i = 0; keys && i < ne; i++)
        free(keys[i]);
    free(recs);
    free(keys);
    free(klens);
}

void group_offsets_expire(group_coordinator_t *c, group_shard_t *s, int64_t now) {
    group_t **dead = NULL;
    size_t ndead = 0, it = 0;
    void *v;
    while (sm_map_next(&s->groups, &it, NULL, NULL, &v)) {
        group_t *g = v;
        if (g->state != GROUP_EMPTY || g->members || (g->cg && g->cg->nmembers)) continue;
        bool drop;
        expire_group(c, s, g, now, &drop);
        if (!drop) continue;
        group_t **nd = realloc(dead, sizeof(*nd) * (ndead + 1));
        if (nd) {
            dead = nd;
            dead[ndead++] = g;
        }
    }
    for (size_t i = 0; i < ndead; i++)
        group_remove(s, dead[i]);
    free(dead);
}

/* ---------------------------------------------------------------- transactions */

static void txn_commit_answer(broker_req_t *r, int16_t err) {
    proto_txn_offset_commit_response_t *resp = r->resp;
    for (int32_t i = 0; err && i < resp->topics.n; i++)
        for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++)
            if (!resp->topics.v[i].partitions.v[k].error_code)
                resp->topics.v[i].partitions.v[k].error_code = err;
    broker_req_finish(r);
}

void group_offsets_apply_txn(void *shard, const group_txn_offset_t *e) {
    group_t *g = group_get_or_create(shard, (sm_str_t){(const char *)e->group.ptr, e->group.len});
    if (!g) return;
    group_offset_t v = {
        e->offset, e->leader_epoch,
        gs_new((const char *)e->metadata.ptr, e->metadata.len < 0 ? 0 : e->metadata.len),
        e->commit_ts};
    offset_put(g, (sm_str_t){(const char *)e->topic.ptr, e->topic.len}, e->partition, &v);
    gs_free(v.metadata);
}

/*
 * The member check of a TxnOffsetCommit (KIP-447), under the shard's mu. As
 * Kafka's classic coordinator: a request without a generation is accepted for
 * a group without members (or no group yet); otherwise the member must be in
 * the group at the current generation, whatever the state of a live group
 * (commit_allowed with txn).
 */
static int16_t txn_commit_allowed(group_shard_t *s, const proto_txn_offset_commit_request_t *req,
                                  int16_t version) {
    int32_t generation = req->generation_id_or_member_epoch;
    if (version < 3 || (req->member_id.len <= 0 && generation < 0)) return PROTO_ERR_NONE;
    group_t *g = group_get(s, req->group_id);
    if (!g) return generation < 0 ? PROTO_ERR_NONE : PROTO_ERR_ILLEGAL_GENERATION;
    if (g->cg) return group_consumer_commit_epoch(g, req->member_id, generation);
    if (g->state == GROUP_DEAD) return PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    return commit_allowed(g, generation, req->member_id, req->group_instance_id, true);
}

/*
 * TxnOffsetCommit (KIP-98, member fields KIP-447): offsets written as a
 * transactional batch of the producer to the group's __consumer_offsets
 * partition, visible only once the transaction commits (the marker reaches
 * the partition: group_coordinator_txn_marker). The partition must be in the
 * transaction (AddOffsetsToTxn first, or implicitly from v5), checked with the
 * transaction coordinator as Kafka's verification does.
 */
int broker_handle_txn_offset_commit(broker_req_t *r) {
    broker_t *b = r->b;
    group_coordinator_t *c = b->groups;
    proto_txn_offset_commit_request_t *req = broker_body(r);
    proto_txn_offset_commit_response_t *resp = r->resp;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*resp->topics.v));
    /* v6 names topics by id (KIP-1319); offsets stay keyed by name. */
    sm_str_t *names = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*names));
    if (!resp->topics.v || !names) return BROKER_CLOSE;
    resp->topics.n = nt;
    int total = 0;
    for (int32_t i = 0; i < nt; i++) {
        const proto_txn_offset_commit_request_txn_offset_commit_request_topic_t *t =
            &req->topics.v[i];
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        names[i] = r->version >= 6 ? topic_name_of(c, r, &t->topic_id) : t->name;
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
    if (req->group_id.len <= 0) {
        gerr = PROTO_ERR_INVALID_GROUP_ID;
    } else {
        gp = group_partition_for(req->group_id, c->nshards);
        /* v5+ (transactions V2) adds the partition itself, as AddOffsetsToTxn. */
        gerr = r->version >= 5 ? txn_coordinator_add_implicit(b, req->transactional_id,
                                                              req->producer_id, req->producer_epoch,
                                                              SM_STR_LIT("__consumer_offsets"), gp)
                               : txn_coordinator_verify(b, req->transactional_id, req->producer_id,
                                                        req->producer_epoch,
                                                        SM_STR_LIT("__consumer_offsets"), gp, 10);
        if (gerr == PROTO_ERR_NOT_ENOUGH_REPLICAS) gerr = PROTO_ERR_CONCURRENT_TRANSACTIONS;
        if (gerr == PROTO_ERR_INVALID_PRODUCER_EPOCH && r->version >= 3)
            gerr = PROTO_ERR_PRODUCER_FENCED;
    }
    group_rec_t *recs = gerr ? NULL : calloc((size_t)total + 1, sizeof(*recs));
    group_txn_offset_t *pend = gerr ? NULL : calloc((size_t)total + 1, sizeof(*pend));
    if (!gerr && (!recs || !pend)) gerr = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    int nrecs = 0;
    group_shard_t *s = group_shard_for(c, req->group_id);
    pthread_mutex_lock(&s->mu);
    if (!gerr) gerr = group_shard_error(s);
    if (!gerr) gerr = txn_commit_allowed(s, req, r->version);
    int64_t now = group_wall_ms();
    for (int32_t i = 0; i < nt; i++) {
        const proto_txn_offset_commit_request_txn_offset_commit_request_topic_t *t =
            &req->topics.v[i];
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
            if (p->committed_metadata.len > GROUP_MAX_METADATA) {
                *err = PROTO_ERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            int32_t epoch = r->version >= 2 ? p->committed_leader_epoch : -1;
            group_offset_t e = {p->committed_offset, epoch,
                                p->committed_metadata.len >= 0 ? group_dupstr(p->committed_metadata)
                                                               : gs_new("", 0),
                                now};
            int rc =
                group_offset_record(req->group_id, names[i], p->partition_index, &e, &recs[nrecs]);
            gs_free(e.metadata);
            if (rc) {
                *err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
                continue;
            }
            pend[nrecs] = (group_txn_offset_t){
                {(const uint8_t *)req->group_id.ptr, req->group_id.len},
                {(const uint8_t *)names[i].ptr, names[i].len},
                {(const uint8_t *)p->committed_metadata.ptr,
                 p->committed_metadata.len < 0 ? 0 : p->committed_metadata.len},
                p->partition_index,
                p->committed_offset,
                epoch,
                now,
                gp};
            nrecs++;
        }
    }
    /* Written first; pending until the marker, and only when written. */
    int64_t end = 0;
    int16_t aerr = gerr || !nrecs ? gerr
                                  : group_append_txn(c, s, recs, nrecs, req->producer_id,
                                                     req->producer_epoch, &end);
    for (int i = 0; !aerr && i < nrecs; i++)
        if (group_txn_offsets_add(&s->txn, req->producer_id, &pend[i]))
            aerr = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    if (aerr && !gerr)
        for (int32_t i = 0; i < nt; i++)
            for (int32_t k = 0; k < resp->topics.v[i].partitions.n; k++)
                if (!resp->topics.v[i].partitions.v[k].error_code)
                    resp->topics.v[i].partitions.v[k].error_code = aerr;
    if (recs) group_recs_free(recs, nrecs);
    free(recs);
    free(pend);
    group_answer_after(c, s, aerr ? 0 : end, r, txn_commit_answer);
    pthread_mutex_unlock(&s->mu);
    return BROKER_PARKED;
}
