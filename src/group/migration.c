/*
 * Online migration between the classic and the consumer group protocols
 * (KIP-848): a classic group with members becomes a consumer group when a
 * member joins with ConsumerGroupHeartbeat; classic members inside a consumer
 * group are served through JoinGroup, SyncGroup, Heartbeat and LeaveGroup
 * against the consumer group's assignment; a consumer group whose last
 * consumer-protocol member leaves while classic members remain becomes a
 * classic group again. group.consumer.migration.policy allows each direction.
 * Not for either protocol on its own (classic.c, consumer.c).
 *
 *   classic group (members, protocol type "consumer")
 *       | ConsumerGroupHeartbeat, upgrade allowed: each classic member keeps
 *       | its last assignment at member epoch = the generation
 *       v
 *   consumer group with classic members --last consumer-protocol member
 *       ^                                   leaves or is fenced, downgrade
 *       |                                   allowed--> classic group at
 *       |                                   generation = group epoch,
 *       +-- (classic members rejoin)        assignments = targets, rebalancing
 *
 * A classic member inside a consumer group learns of a new group epoch from
 * Heartbeat (REBALANCE_IN_PROGRESS) and rejoins; its JoinGroup reconciles it
 * (the owned partitions of its subscription acknowledge revocations: an
 * eager member owns none), answers its member epoch as the generation, and
 * SyncGroup hands it the partitions it holds. Invariants are consumer.c's.
 * A conversion writes one batch: the old type's tombstones, then the new
 * type's records; a failed append leaves the group as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "group/group_impl.h"
#include "protocol/errors.h"

#define S group_S

enum { CM_STABLE = 0, CM_UNRELEASED = 1, CM_UNREVOKED = 2 };

/* The protocol type of consumers ("consumer"). */
static sm_str_t consumer_type(void) { return SM_STR_LIT("consumer"); }

static bool is_consumer_type(sm_str_t t) {
    return t.len == 8 && memcmp(t.ptr, "consumer", 8) == 0;
}

/* ---------------------------------------------------------------- embedded protocol */

/* Decodes a ConsumerProtocolSubscription (versions above 3 read as 3, as
 * Kafka's clients write them forward compatibly). */
static int decode_subscription(const uint8_t *meta, int32_t len, sm_arena_t *a,
                               proto_consumer_protocol_subscription_t *sub) {
    sm_reader_t rd = sm_reader_make(meta, len > 0 ? (size_t)len : 0);
    int16_t v;
    proto_consumer_protocol_subscription_init(sub);
    if (sm_rd_i16(&rd, &v) || v < 0) return SM_ERR;
    return proto_consumer_protocol_subscription_decode(&rd, a, v > 3 ? 3 : v, sub);
}

/* The embedded protocol's version a member speaks (its metadata's first
 * int16), for the assignment it gets back. */
static int16_t meta_version(const group_protocol_t *p) {
    if (!p || p->meta_len < 2) return 0;
    int16_t v = (int16_t)((p->meta[0] << 8) | p->meta[1]);
    return v < 0 ? 0 : v > 3 ? 3 : v;
}

/* Partitions named by topic as a set of topic ids (unknown topics skipped). */
static void named_to_tps(group_coordinator_t *c, const sm_str_t *topics,
                         const sm_i32_array_t *parts, int32_t n, size_t stride, group_tps_t *out) {
    out->n = 0;
    for (int32_t i = 0; i < n; i++) {
        const sm_str_t *t = (const sm_str_t *)((const char *)topics + (size_t)i * stride);
        const sm_i32_array_t *pa = (const sm_i32_array_t *)((const char *)parts + (size_t)i * stride);
        sm_uuid_t id;
        int32_t np;
        if (!c->host.topic(c->host.ctx, *t, &id, &np)) continue;
        for (int32_t k = 0; k < pa->n; k++)
            if (pa->v[k] >= 0 && pa->v[k] < np) group_tps_add(out, (group_tp_t){id, pa->v[k]});
    }
    group_tps_sort(out);
}

#define NAMED_TPS(c, arr, out)                                                                     \
    named_to_tps((c), &(arr).v[0].topic, &(arr).v[0].partitions, (arr).n > 0 ? (arr).n : 0,        \
                 sizeof(*(arr).v), (out))

/* The name of a topic id among the group's subscribed topics, or NULL. */
static const char *topic_name(group_coordinator_t *c, const group_cgroup_t *cg,
                              const sm_uuid_t *id) {
    for (const group_cmember_t *m = cg->members; m; m = m->next)
        for (int k = 0; k < m->ntopics; k++) {
            sm_uuid_t tid;
            int32_t n;
            if (c->host.topic(c->host.ctx, S(m->topics[k]), &tid, &n) &&
                memcmp(tid.b, id->b, 16) == 0)
                return m->topics[k];
        }
    return NULL;
}

/* A partition set as a ConsumerProtocolAssignment of version v, from arena a. */
static sm_bytes_t encode_assignment(group_coordinator_t *c, const group_cgroup_t *cg,
                                    const group_tps_t *set, int16_t v, sm_arena_t *a) {
    proto_consumer_protocol_assignment_t as;
    proto_consumer_protocol_assignment_init(&as);
    as.assigned_partitions.v = sm_arena_calloc(a, (size_t)set->n + 1, sizeof(*as.assigned_partitions.v));
    as.assigned_partitions.n = 0;
    for (int i = 0; as.assigned_partitions.v && i < set->n; i++) {
        const char *name = topic_name(c, cg, &set->v[i].topic);
        if (!name) continue;
        proto_consumer_protocol_assignment_topic_partition_t *t =
            as.assigned_partitions.n
                ? &as.assigned_partitions.v[as.assigned_partitions.n - 1]
                : NULL;
        if (!t || !group_streq(name, t->topic)) {
            t = &as.assigned_partitions.v[as.assigned_partitions.n++];
            t->topic = S(name);
            t->partitions.v = sm_arena_calloc(a, (size_t)set->n + 1, sizeof(int32_t));
            t->partitions.n = 0;
        }
        if (t->partitions.v) t->partitions.v[t->partitions.n++] = set->v[i].p;
    }
    size_t len = 2 + proto_consumer_protocol_assignment_size(v, &as);
    uint8_t *buf = sm_arena_alloc(a, len);
    if (!buf) return (sm_bytes_t){NULL, 0};
    sm_writer_t w = sm_writer_make(buf, len);
    if (sm_wr_i16(&w, v) || proto_consumer_protocol_assignment_encode(&w, v, &as))
        return (sm_bytes_t){NULL, 0};
    return (sm_bytes_t){buf, (int32_t)len};
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sets m's subscribed topics to the subscription's (sorted, no duplicates);
 * true when they changed. */
static bool set_topics(group_cmember_t *m, const proto_consumer_protocol_subscription_t *sub) {
    int32_t n = sub->topics.n > 0 ? sub->topics.n : 0;
    char **t = calloc((size_t)n + 1, sizeof(char *));
    int nt = 0;
    for (int32_t i = 0; t && i < n; i++)
        if ((t[nt] = group_dupstr(sub->topics.v[i]))) nt++;
    if (nt > 1) qsort(t, (size_t)nt, sizeof(char *), str_cmp);
    int u = 0;
    for (int i = 0; i < nt; i++) {
        if (u && strcmp(t[u - 1], t[i]) == 0)
            gs_free(t[i]);
        else
            t[u++] = t[i];
    }
    bool same = t && u == m->ntopics;
    for (int i = 0; same && i < u; i++)
        same = strcmp(t[i], m->topics[i]) == 0;
    if (same || !t) {
        for (int i = 0; i < u; i++)
            gs_free(t ? t[i] : NULL);
        free(t);
        return false;
    }
    for (int i = 0; i < m->ntopics; i++)
        gs_free(m->topics[i]);
    free(m->topics);
    m->topics = t;
    m->ntopics = u;
    return true;
}

static int copy_protocols(const group_protocol_t *in, int n, group_protocol_t **out) {
    *out = calloc((size_t)n + 1, sizeof(**out));
    if (!*out) return SM_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        (*out)[i].name = gs_copy(in[i].name);
        (*out)[i].meta = malloc((size_t)in[i].meta_len + 1);
        if (!(*out)[i].name || !(*out)[i].meta) {
            group_protocols_free(*out, i + 1);
            *out = NULL;
            return SM_ERR_NOMEM;
        }
        memcpy((*out)[i].meta, in[i].meta, (size_t)in[i].meta_len);
        (*out)[i].meta_len = in[i].meta_len;
    }
    return SM_OK;
}

/* ---------------------------------------------------------------- upgrade */

/* A classic member as a consumer group member at epoch `epoch`, owning (and
 * targeted with) its last classic assignment. NULL: malformed protocol. */
static group_cmember_t *member_from_classic(group_coordinator_t *c, const group_t *g,
                                            const group_member_t *o, int32_t epoch) {
    const group_protocol_t *p = o->nprotocols ? &o->protocols[0] : NULL;
    for (int i = 0; g->protocol && i < o->nprotocols; i++)
        if (gs_eq(o->protocols[i].name, g->protocol)) p = &o->protocols[i];
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_consumer_protocol_subscription_t sub;
    group_cmember_t *m = calloc(1, sizeof(*m));
    if (!m || !p || decode_subscription(p->meta, p->meta_len, &a, &sub)) goto fail;
    m->id = gs_copy(o->id);
    m->instance_id = gs_copy(o->instance_id);
    m->client_id = gs_copy(o->client_id);
    m->client_host = gs_copy(o->client_host);
    m->rack = group_dupstr(sub.rack_id);
    m->rebalance_timeout = o->rebalance_timeout;
    m->session_timeout = o->session_timeout;
    m->epoch = m->prev_epoch = epoch;
    m->state = CM_STABLE;
    m->last_seen = o->last_seen;
    if (!m->id || copy_protocols(o->protocols, o->nprotocols, &m->protocols)) goto fail;
    m->nprotocols = o->nprotocols;
    set_topics(m, &sub);
    if (!m->topics && !(m->topics = calloc(1, sizeof(char *)))) goto fail;
    if (o->assignment_len > 0) {
        sm_reader_t rd = sm_reader_make(o->assignment, (size_t)o->assignment_len);
        int16_t v;
        proto_consumer_protocol_assignment_t as;
        if (sm_rd_i16(&rd, &v) || v < 0 ||
            proto_consumer_protocol_assignment_decode(&rd, &a, v > 3 ? 3 : v, &as))
            goto fail;
        NAMED_TPS(c, as.assigned_partitions, &m->assigned);
        for (int i = 0; i < m->assigned.n; i++)
            group_tps_add(&m->target, m->assigned.v[i]);
    }
    sm_arena_free(&a);
    return m;
fail:
    if (m) group_cg_member_free(m);
    sm_arena_free(&a);
    return NULL;
}

/* Drops g's classic state (members answered with err, pending ids). */
static void drop_classic(group_t *g, int16_t err) {
    group_classic_abort(g, err);
    while (g->members) {
        group_member_t *m = g->members;
        g->members = m->next;
        group_classic_member_free(m);
    }
    g->nmembers = 0;
    while (g->pending) {
        group_pending_id_t *p = g->pending;
        g->pending = p->next;
        gs_free(p->id);
        free(p);
    }
    gs_free(g->protocol_type);
    gs_free(g->protocol);
    gs_free(g->leader);
    g->protocol_type = g->protocol = g->leader = NULL;
    g->rebalance_deadline = 0;
    g->state = GROUP_EMPTY;
    g->state_ts = group_wall_ms();
}

int16_t group_migrate_upgrade(group_coordinator_t *c, group_shard_t *s, group_t *g) {
    if (!c->migrate_up || !group_streq(g->protocol_type, consumer_type()) ||
        g->nmembers > c->consumer_max_size)
        return PROTO_ERR_GROUP_ID_NOT_FOUND;
    group_cgroup_t *cg = calloc(1, sizeof(*cg));
    if (!cg) return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    cg->epoch = cg->assignment_epoch = g->generation;
    for (const group_member_t *o = g->members; o; o = o->next) {
        group_cmember_t *m = member_from_classic(c, g, o, g->generation);
        if (!m) {
            sm_info("group", "%s: not upgraded: member %s's consumer protocol is malformed", g->id,
                    o->id);
            group_consumer_free(cg);
            return PROTO_ERR_GROUP_ID_NOT_FOUND;
        }
        m->next = cg->members;
        cg->members = m;
        cg->nmembers++;
    }
    group_meta_view_t none = {0};
    group_rec_t tomb;
    if (group_meta_record(g, &none, true, &tomb)) {
        group_consumer_free(cg);
        return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    }
    g->cg = cg;
    int16_t err = group_cg_commit(c, s, g, NULL, &tomb, 1);
    group_recs_free(&tomb, 1);
    if (err) return err;
    sm_info("group", "%s: upgraded from classic to consumer at epoch %d with %d members", g->id,
            cg->epoch, cg->nmembers);
    /* Members waiting in a join or sync phase rejoin the consumer group. */
    drop_classic(g, PROTO_ERR_REBALANCE_IN_PROGRESS);
    return PROTO_ERR_NONE;
}

/* ---------------------------------------------------------------- downgrade */

bool group_migrate_can_downgrade(group_coordinator_t *c, const group_t *g,
                                 const group_cmember_t *leaving) {
    if (!c->migrate_down || !g->cg || g->cg->nmembers < 2) return false;
    for (const group_cmember_t *m = g->cg->members; m; m = m->next)
        if (m != leaving && !m->nprotocols) return false;
    return g->cg->nmembers - 1 <= c->max_size;
}

int16_t group_migrate_downgrade(group_coordinator_t *c, group_shard_t *s, group_t *g,
                                const group_cmember_t *leaving) {
    group_cgroup_t *cg = g->cg;
    int64_t now = group_now_ms();
    int16_t err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
    group_rec_t *recs = NULL;
    int nrecs = 0;
    sm_bytes_t *assign = NULL;
    char *protocol = NULL;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    /* The remaining members as classic members, in the consumer group's order. */
    group_member_t *list = NULL, **tail = &list;
    int n = 0;
    for (const group_cmember_t *m = cg->members; m; m = m->next) {
        if (m == leaving) continue;
        group_member_t *o = calloc(1, sizeof(*o));
        if (!o) goto out;
        *tail = o;
        tail = &o->next;
        n++;
        o->id = gs_copy(m->id);
        o->instance_id = gs_copy(m->instance_id);
        o->client_id = m->client_id ? gs_copy(m->client_id) : gs_cstr("");
        o->client_host = m->client_host ? gs_copy(m->client_host) : gs_cstr("");
        o->session_timeout = m->session_timeout;
        o->rebalance_timeout = m->rebalance_timeout;
        o->last_seen = now;
        if (!o->id || copy_protocols(m->protocols, m->nprotocols, &o->protocols)) goto out;
        o->nprotocols = m->nprotocols;
    }
    g->members = list;
    g->nmembers = n;
    protocol = gs_copy(group_classic_select_protocol(g));
    if (!protocol || !(assign = calloc((size_t)n + 1, sizeof(*assign)))) goto out;
    /* Each member gets its target, in the embedded protocol's version it speaks. */
    int i = 0;
    for (group_member_t *o = list; o; o = o->next, i++) {
        const group_protocol_t *p = NULL;
        for (int k = 0; k < o->nprotocols; k++)
            if (gs_eq(o->protocols[k].name, protocol)) p = &o->protocols[k];
        const group_cmember_t *m = group_cg_member(cg, S(o->id));
        assign[i] = encode_assignment(c, cg, &m->target, meta_version(p), &a);
        if (!assign[i].ptr) goto out;
    }
    if (group_cg_tombstones(g, &recs, &nrecs)) goto out;
    group_rec_t *more = realloc(recs, ((size_t)nrecs + 1) * sizeof(*recs));
    if (!more) goto out;
    recs = more;
    gs_free(g->protocol_type);
    g->protocol_type = gs_cstr("consumer");
    group_meta_view_t view = {cg->epoch, protocol, NULL, true, assign};
    if (group_meta_record(g, &view, false, &recs[nrecs])) goto out;
    nrecs++;
    int64_t end;
    err = group_append(c, s, recs, nrecs, &end);
    if (err) goto out;
    i = 0;
    for (group_member_t *o = list; o; o = o->next, i++) {
        o->assignment = malloc((size_t)assign[i].len + 1);
        if (o->assignment) memcpy(o->assignment, assign[i].ptr, (size_t)assign[i].len);
        o->assignment_len = o->assignment ? assign[i].len : 0;
    }
    list = NULL;
    g->generation = cg->epoch;
    g->protocol = protocol;
    protocol = NULL;
    g->write_end = end;
    g->state = GROUP_STABLE;
    group_consumer_free(cg);
    g->cg = NULL;
    sm_info("group", "%s: downgraded from consumer to classic at generation %d with %d members",
            g->id, g->generation, g->nmembers);
    /* The members rejoin as a classic group. */
    group_classic_prepare_rebalance(c, g);
out:
    if (list) {
        while (list) {
            group_member_t *o = list;
            list = o->next;
            group_classic_member_free(o);
        }
        g->members = NULL;
        g->nmembers = 0;
        gs_free(g->protocol_type);
        g->protocol_type = NULL;
    }
    group_recs_free(recs, nrecs);
    free(recs);
    free(assign);
    gs_free(protocol);
    sm_arena_free(&a);
    return err;
}

/* ---------------------------------------------------------------- classic requests */

/* The classic member a SyncGroup, Heartbeat or LeaveGroup names, or NULL
 * with *err (Kafka's validateConsumerGroupMember, then the classic check). */
static group_cmember_t *classic_member(group_cgroup_t *cg, sm_str_t member_id,
                                       sm_str_t instance_id, int16_t *err) {
    group_cmember_t *m;
    if (instance_id.len >= 0) {
        m = group_cg_member_by_instance(cg, instance_id);
        if (m && !group_streq(m->id, member_id)) {
            *err = PROTO_ERR_FENCED_INSTANCE_ID;
            return NULL;
        }
    } else {
        m = group_cg_member(cg, member_id);
    }
    if (!m || !m->nprotocols) {
        *err = PROTO_ERR_UNKNOWN_MEMBER_ID;
        return NULL;
    }
    *err = PROTO_ERR_NONE;
    return m;
}

/* True when req's protocols share one with every classic member but skip. */
static bool protocols_supported(const group_cgroup_t *cg, const group_cmember_t *skip,
                                const proto_join_group_request_t *req) {
    for (int32_t i = 0; i < req->protocols.n; i++) {
        bool all = true;
        for (const group_cmember_t *m = cg->members; m && all; m = m->next) {
            if (m == skip || !m->nprotocols) continue;
            bool has = false;
            for (int k = 0; k < m->nprotocols && !has; k++)
                has = group_streq(m->protocols[k].name, req->protocols.v[i].name);
            all = has;
        }
        if (all) return true;
    }
    return false;
}

static void join_answer(broker_req_t *r, int16_t err) {
    if (err)
        group_classic_join_error(r, err, NULL);
    else
        broker_req_finish(r);
}

/* Finds or admits the member of a JoinGroup (cg may change: caller holds a
 * snapshot). NULL with *err. */
static group_cmember_t *join_member(group_coordinator_t *c, group_cgroup_t *cg, broker_req_t *r,
                                    const proto_join_group_request_t *req, bool *changed,
                                    int16_t *err) {
    group_cmember_t *m = NULL;
    bool unknown = req->member_id.len == 0;
    if (req->group_instance_id.len >= 0) {
        m = group_cg_member_by_instance(cg, req->group_instance_id);
        if (m && !unknown && !group_streq(m->id, req->member_id)) {
            *err = PROTO_ERR_FENCED_INSTANCE_ID;
            return NULL;
        }
        if (m && unknown) {
            /* A restarted static member takes its place back under a new id. */
            char *id = group_cg_new_member_id();
            if (!id) {
                *err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
                return NULL;
            }
            gs_free(m->id);
            m->id = id;
        }
    } else if (!unknown) {
        m = group_cg_member(cg, req->member_id);
    }
    if (m) {
        if (!m->nprotocols) {
            *err = PROTO_ERR_UNKNOWN_MEMBER_ID;
            return NULL;
        }
        return m;
    }
    if (cg->nmembers >= c->consumer_max_size) {
        *err = PROTO_ERR_GROUP_MAX_SIZE_REACHED;
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (!m || !(m->id = unknown ? group_cg_new_member_id() : group_dupstr(req->member_id)) ||
        !(m->topics = calloc(1, sizeof(char *)))) {
        if (m) group_cg_member_free(m);
        *err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        return NULL;
    }
    m->instance_id = group_dupstr(req->group_instance_id);
    group_client_of(r, &m->client_id, &m->client_host);
    m->next = cg->members;
    cg->members = m;
    cg->nmembers++;
    *changed = true;
    return m;
}

void group_migrate_join(group_coordinator_t *c, group_shard_t *s, group_t *g, broker_req_t *r,
                        const proto_join_group_request_t *req, int32_t rebalance_timeout) {
    group_cgroup_t *cg = g->cg;
    int16_t err = PROTO_ERR_NONE;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_consumer_protocol_subscription_t sub;
    group_tps_t owned = {0};
    group_cgroup_t *old = NULL;
    group_cmember_t *m = NULL;
    if (!is_consumer_type(req->protocol_type)) err = PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL;
    else if (decode_subscription(req->protocols.v[0].metadata.ptr, req->protocols.v[0].metadata.len,
                                 &a, &sub))
        err = PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (err) goto out;
    if (req->member_id.len == 0 && req->group_instance_id.len < 0 && r->version >= 4) {
        /* KIP-394: a new dynamic member first gets its id. */
        char *id = group_cg_new_member_id();
        group_classic_join_error(r, id ? PROTO_ERR_MEMBER_ID_REQUIRED : PROTO_ERR_UNKNOWN_SERVER_ERROR,
                                 id);
        gs_free(id);
        sm_arena_free(&a);
        return;
    }
    if (!(old = group_cg_clone(cg))) {
        err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        goto out;
    }
    bool changed = false;
    if (!(m = join_member(c, cg, r, req, &changed, &err))) goto out;
    if (!protocols_supported(cg, m, req)) {
        err = PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL;
        goto out;
    }
    group_protocol_t *p;
    int np;
    if (group_protocols_copy(&req->protocols, &p, &np)) {
        err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        goto out;
    }
    group_protocols_free(m->protocols, m->nprotocols);
    m->protocols = p;
    m->nprotocols = np;
    m->session_timeout = req->session_timeout_ms;
    m->rebalance_timeout = rebalance_timeout;
    if (!group_streq(m->rack, sub.rack_id)) {
        gs_free(m->rack);
        m->rack = group_dupstr(sub.rack_id);
    }
    m->last_seen = group_now_ms();
    if (set_topics(m, &sub)) changed = true;
    if (changed) cg->epoch++;
    if (group_cg_refresh(c, cg)) {
        err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        goto out;
    }
    NAMED_TPS(c, sub.owned_partitions, &owned);
    group_cg_reconcile(cg, m, &owned);
    proto_join_group_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_NONE;
    resp->generation_id = m->epoch;
    resp->protocol_type = consumer_type();
    resp->protocol_name = gs_arena(r, m->protocols[0].name);
    resp->leader = SM_STR_LIT("");
    resp->member_id = gs_arena(r, m->id);
    resp->skip_assignment = false;
    resp->members.n = 0;
    err = group_cg_commit(c, s, g, old, NULL, 0);
    old = NULL;
out:
    if (old) {
        group_consumer_free(g->cg);
        g->cg = old;
    }
    free(owned.v);
    sm_arena_free(&a);
    if (err)
        group_classic_join_error(r, err, NULL);
    else
        group_answer_after(c, s, g->write_end, r, join_answer);
}

void group_migrate_sync(group_coordinator_t *c, group_shard_t *s, group_t *g, broker_req_t *r,
                        const proto_sync_group_request_t *req) {
    proto_sync_group_response_t *resp = r->resp;
    int16_t err;
    group_cmember_t *m = classic_member(g->cg, req->member_id, req->group_instance_id, &err);
    if (m && req->generation_id != m->epoch) err = PROTO_ERR_ILLEGAL_GENERATION;
    if (m && !err &&
        ((req->protocol_type.len >= 0 && !is_consumer_type(req->protocol_type)) ||
         (req->protocol_name.len >= 0 && !group_streq(m->protocols[0].name, req->protocol_name))))
        err = PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL;
    /* A newer group epoch: rejoin first, unless revocations are under way
     * (the next join finishes them). */
    if (m && !err && g->cg->epoch > m->epoch && m->state != CM_UNREVOKED)
        err = PROTO_ERR_REBALANCE_IN_PROGRESS;
    if (err) {
        group_classic_sync_answer(r, err);
        return;
    }
    m->last_seen = group_now_ms();
    resp->error_code = PROTO_ERR_NONE;
    resp->protocol_type = consumer_type();
    resp->protocol_name = gs_arena(r, m->protocols[0].name);
    resp->assignment =
        encode_assignment(c, g->cg, &m->assigned, meta_version(&m->protocols[0]), &r->arena);
    group_answer_after(c, s, g->write_end, r, group_classic_sync_answer);
}

int16_t group_migrate_heartbeat(group_t *g, const proto_heartbeat_request_t *req) {
    int16_t err;
    group_cmember_t *m = classic_member(g->cg, req->member_id, req->group_instance_id, &err);
    if (!m) return err;
    if (req->generation_id != m->epoch) return PROTO_ERR_ILLEGAL_GENERATION;
    m->last_seen = group_now_ms();
    /* Rejoin: to catch up with a new epoch, to finish revoking, or to take
     * partitions that were released meanwhile. */
    if (m->epoch < g->cg->epoch || m->state == CM_UNREVOKED ||
        (m->state == CM_UNRELEASED && !group_cg_waiting(g->cg, m)))
        return PROTO_ERR_REBALANCE_IN_PROGRESS;
    return PROTO_ERR_NONE;
}

int16_t group_migrate_leave(group_coordinator_t *c, group_shard_t *s, group_t *g,
                            sm_str_t member_id, sm_str_t instance_id, int64_t *end) {
    int16_t err = PROTO_ERR_UNKNOWN_MEMBER_ID;
    group_cmember_t *m = instance_id.len >= 0 && member_id.len == 0
                             ? group_cg_member_by_instance(g->cg, instance_id)
                             : classic_member(g->cg, member_id, instance_id, &err);
    if (!m || !m->nprotocols) return m ? PROTO_ERR_UNKNOWN_MEMBER_ID : err;
    group_cgroup_t *old = group_cg_clone(g->cg);
    if (!old) return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    sm_info("group", "%s: classic member %s leaves the consumer group", g->id, m->id);
    group_cg_remove(g->cg, m);
    if (group_cg_refresh(c, g->cg)) {
        group_consumer_free(g->cg);
        g->cg = old;
        return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    }
    err = group_cg_commit(c, s, g, old, NULL, 0);
    if (!err && g->write_end > *end) *end = g->write_end;
    return err;
}
