/*
 * The classic consumer group protocol: JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup, static membership (KIP-345), member ids handed out first
 * (KIP-394), session and rebalance timeouts. Decides the transitions and the
 * GroupMetadata records they write; the runtime appends them. Not for
 * committed offsets (offsets.c) nor the admin views (admin.c).
 *
 * States (Kafka's):
 *
 *   Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
 *     ^                 ^       |                                     |
 *     |                 |       +--every member gone--> Empty         | leader's SyncGroup
 *     |                 +--join, leave, session expiry----------------+--> Stable
 *     +--last member leaves / expires (from Stable or Completing)---------+
 *
 * Transitions that write (to Empty, to Stable, a static member taking its
 * place back under a new id in Stable) append their GroupMetadata record
 * first and change state only when the append succeeded. The record holds
 * the generation, its protocol and leader and every member (ids, client,
 * timeouts, subscription, assignment), as Kafka's. A coordinator that loads
 * the group (a restart, or the partition's leadership moving in a cluster)
 * restores the last record: Stable with those members, or Empty
 * (records.c); each member's session starts at the load
 * (group_classic_loaded), so members keep heartbeating and committing with
 * their member id and generation. What happened after the last record (a
 * join phase under way, a member gone) is not persisted: a join phase starts
 * again when members rejoin, a departed member expires. Invariants, under
 * the shard's mu:
 *  1. A member's join_req / sync_req is non-NULL only while that request is
 *     parked; it is answered exactly once and then cleared.
 *  2. state == PreparingRebalance implies rebalance_deadline > 0.
 *  3. generation grows by one per completed join phase.
 *  4. state == Empty implies no members.
 *  5. In Stable, the last GroupMetadata record written for the group holds
 *     its generation, protocol, leader and exactly its members (ids,
 *     instance ids, assignments): a load gives back the same group.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "group/group_impl.h"
#include "protocol/errors.h"

#define S group_S

/* ---------------------------------------------------------------- members */

void group_protocols_free(group_protocol_t *p, int n) {
    for (int i = 0; i < n; i++) {
        gs_free(p[i].name);
        free(p[i].meta);
    }
    free(p);
}

int group_protocols_copy(const proto_join_group_request_join_group_request_protocol_array_t *in,
                         group_protocol_t **out, int *n) {
    int32_t cnt = in->n > 0 ? in->n : 0;
    group_protocol_t *p = calloc((size_t)cnt + 1, sizeof(*p));
    *out = NULL;
    *n = 0;
    if (!p) return SM_ERR_NOMEM;
    for (int32_t i = 0; i < cnt; i++) {
        const proto_join_group_request_join_group_request_protocol_t *q = &in->v[i];
        int32_t ml = q->metadata.len > 0 ? q->metadata.len : 0;
        p[i].name = group_dupstr(q->name);
        p[i].meta = malloc((size_t)ml + 1);
        if (!p[i].name || !p[i].meta) {
            group_protocols_free(p, i + 1);
            return SM_ERR_NOMEM;
        }
        if (ml) memcpy(p[i].meta, q->metadata.ptr, (size_t)ml);
        p[i].meta_len = ml;
    }
    *out = p;
    *n = cnt;
    return SM_OK;
}

void group_classic_member_free(group_member_t *m) {
    group_protocols_free(m->protocols, m->nprotocols);
    free(m->assignment);
    gs_free(m->id);
    gs_free(m->instance_id);
    gs_free(m->client_id);
    gs_free(m->client_host);
    free(m);
}

void group_free(group_t *g) {
    while (g->members) {
        group_member_t *m = g->members;
        g->members = m->next;
        group_classic_member_free(m);
    }
    while (g->pending) {
        group_pending_id_t *p = g->pending;
        g->pending = p->next;
        gs_free(p->id);
        free(p);
    }
    group_offsets_free(g);
    group_consumer_free(g->cg);
    gs_free(g->id);
    gs_free(g->protocol_type);
    gs_free(g->protocol);
    gs_free(g->leader);
    free(g);
}

group_member_t *group_member_find(group_t *g, sm_str_t id) {
    for (group_member_t *m = g->members; m; m = m->next)
        if (group_streq(m->id, id)) return m;
    return NULL;
}

group_member_t *group_member_by_instance(group_t *g, sm_str_t instance) {
    if (instance.len < 0) return NULL;
    for (group_member_t *m = g->members; m; m = m->next)
        if (m->instance_id && group_streq(m->instance_id, instance)) return m;
    return NULL;
}

static void member_remove(group_t *g, group_member_t *m) {
    group_member_t **pp = &g->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp) *pp = m->next;
    g->nmembers--;
    group_classic_member_free(m);
}

static void set_state(group_t *g, int s) {
    g->state = s;
    g->state_ts = group_wall_ms();
}

/* ---------------------------------------------------------------- answers */

void group_classic_join_error(broker_req_t *r, int16_t err, const char *member_id) {
    proto_join_group_response_t *resp = r->resp;
    resp->error_code = err;
    resp->generation_id = -1;
    resp->member_id = member_id ? gs_arena(r, member_id) : SM_STR_LIT("");
    resp->leader = SM_STR_LIT("");
    resp->protocol_name = r->version >= 7 ? SM_STR_NULL : SM_STR_LIT("");
    resp->protocol_type = SM_STR_NULL;
    broker_req_finish(r);
}

/* Fills a successful SyncGroup answer from the group (under the shard's mu). */
static void fill_sync(broker_req_t *r, group_t *g, group_member_t *m) {
    proto_sync_group_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_NONE;
    resp->protocol_type = g->protocol_type ? gs_arena(r, g->protocol_type) : SM_STR_NULL;
    resp->protocol_name = g->protocol ? gs_arena(r, g->protocol) : SM_STR_NULL;
    resp->assignment = (sm_bytes_t){NULL, 0};
    if (m && m->assignment) {
        uint8_t *p = sm_arena_alloc(&r->arena, (size_t)m->assignment_len + 1);
        if (p) {
            memcpy(p, m->assignment, (size_t)m->assignment_len);
            resp->assignment = (sm_bytes_t){p, m->assignment_len};
        }
    }
}

/* group_answer_fn of SyncGroup. */
void group_classic_sync_answer(broker_req_t *r, int16_t err) {
    proto_sync_group_response_t *resp = r->resp;
    if (err) {
        resp->error_code = err;
        resp->protocol_type = SM_STR_NULL;
        resp->protocol_name = SM_STR_NULL;
        resp->assignment = (sm_bytes_t){NULL, 0};
    }
    broker_req_finish(r);
}

static void respond_sync_error(broker_req_t *r, int16_t err) { group_classic_sync_answer(r, err); }

/* The protocol every member supports that most members prefer. */
static bool all_support(group_t *g, const char *p) {
    for (group_member_t *o = g->members; o; o = o->next) {
        bool has = false;
        for (int j = 0; j < o->nprotocols && !has; j++)
            has = gs_eq(o->protocols[j].name, p);
        if (!has) return false;
    }
    return true;
}

const char *group_classic_select_protocol(group_t *g) {
    group_member_t *first = g->members;
    if (!first) return NULL;
    const char *best = NULL;
    int best_votes = -1;
    for (int i = 0; i < first->nprotocols; i++) {
        const char *cand = first->protocols[i].name;
        if (!all_support(g, cand)) continue;
        int votes = 0;
        /* a member votes for its most preferred protocol all support */
        for (group_member_t *m = g->members; m; m = m->next)
            for (int k = 0; k < m->nprotocols; k++)
                if (all_support(g, m->protocols[k].name)) {
                    votes += gs_eq(m->protocols[k].name, cand);
                    break;
                }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static void fill_join_response(broker_req_t *r, group_t *g, group_member_t *m) {
    proto_join_group_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_NONE;
    resp->generation_id = g->generation;
    resp->protocol_type = gs_arena(r, g->protocol_type);
    resp->protocol_name = gs_arena(r, g->protocol);
    resp->leader = gs_arena(r, g->leader);
    resp->member_id = gs_arena(r, m->id);
    resp->skip_assignment = false;
    resp->members.n = 0;
    if (!gs_eq(g->leader, m->id)) return;
    resp->members.v = sm_arena_calloc(&r->arena, (size_t)g->nmembers + 1, sizeof(*resp->members.v));
    int i = 0;
    for (group_member_t *o = g->members; resp->members.v && o; o = o->next, i++) {
        resp->members.v[i].member_id = gs_arena(r, o->id);
        resp->members.v[i].group_instance_id = gs_arena(r, o->instance_id);
        for (int k = 0; k < o->nprotocols; k++) {
            if (!gs_eq(o->protocols[k].name, g->protocol)) continue;
            uint8_t *p = sm_arena_alloc(&r->arena, (size_t)o->protocols[k].meta_len + 1);
            if (p) memcpy(p, o->protocols[k].meta, (size_t)o->protocols[k].meta_len);
            resp->members.v[i].metadata = (sm_bytes_t){p, p ? o->protocols[k].meta_len : 0};
        }
    }
    resp->members.n = resp->members.v ? i : 0;
}

/* ---------------------------------------------------------------- transitions */

/* Writes g's move to Empty at the next generation (no members, protocol or
 * leader) and, when the append succeeded, makes it: every remaining member
 * goes (their parked requests learn it). Returns the append's error. */
static int16_t become_empty(group_coordinator_t *c, group_shard_t *s, group_t *g) {
    group_meta_view_t view = {g->generation + 1, NULL, NULL, false, NULL};
    group_rec_t rec;
    if (group_meta_record(g, &view, false, &rec)) return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    int64_t end;
    int16_t err = group_append(c, s, &rec, 1, &end);
    group_recs_free(&rec, 1);
    if (err) return err;
    while (g->members) {
        group_member_t *m = g->members;
        if (m->join_req) group_classic_join_error(m->join_req, PROTO_ERR_UNKNOWN_MEMBER_ID, NULL);
        if (m->sync_req) respond_sync_error(m->sync_req, PROTO_ERR_UNKNOWN_MEMBER_ID);
        m->join_req = m->sync_req = NULL;
        member_remove(g, m);
    }
    g->generation++;
    g->rebalance_deadline = 0;
    gs_free(g->protocol);
    g->protocol = NULL;
    gs_free(g->leader);
    g->leader = NULL;
    g->write_end = end;
    set_state(g, GROUP_EMPTY);
    return PROTO_ERR_NONE;
}

/* Ends the join phase: members that did not rejoin leave, a new generation
 * starts, every parked JoinGroup is answered. Nothing is written unless no
 * member rejoined (then the group becomes Empty, which is written). */
static int16_t complete_join(group_coordinator_t *c, group_shard_t *s, group_t *g) {
    bool any = false;
    for (group_member_t *m = g->members; m && !any; m = m->next)
        any = m->join_req != NULL;
    if (!any) return become_empty(c, s, g);
    for (group_member_t *m = g->members, *n; m; m = n) {
        n = m->next;
        if (!m->join_req) {
            if (m->sync_req) respond_sync_error(m->sync_req, PROTO_ERR_UNKNOWN_MEMBER_ID);
            m->sync_req = NULL;
            member_remove(g, m);
        }
    }
    g->rebalance_deadline = 0;
    g->generation++;
    gs_free(g->protocol);
    const char *p = group_classic_select_protocol(g);
    g->protocol = gs_copy(p);
    if (!g->leader || !group_member_find(g, S(g->leader))) {
        gs_free(g->leader);
        g->leader = gs_copy(g->members->id);
    }
    set_state(g, GROUP_COMPLETING);
    sm_info("group", "%s: rebalanced: generation %d with %d members, protocol %s, leader %s", g->id,
            g->generation, g->nmembers, g->protocol ? g->protocol : "-", g->leader);
    for (group_member_t *m = g->members; m; m = m->next) {
        broker_req_t *r = m->join_req;
        m->join_req = NULL;
        fill_join_response(r, g, m);
        broker_req_finish(r);
    }
    return PROTO_ERR_NONE;
}

static void prepare_rebalance(group_coordinator_t *c, group_t *g, bool initial) {
    /* Parked syncs of the old generation learn about the rebalance. */
    for (group_member_t *m = g->members; m; m = m->next) {
        if (m->sync_req) respond_sync_error(m->sync_req, PROTO_ERR_REBALANCE_IN_PROGRESS);
        m->sync_req = NULL;
    }
    int32_t max_rt = 0;
    for (group_member_t *m = g->members; m; m = m->next)
        if (m->rebalance_timeout > max_rt) max_rt = m->rebalance_timeout;
    int64_t now = group_now_ms();
    g->rebalance_max = now + max_rt;
    g->rebalance_deadline = initial && c->initial_delay > 0 ? now + c->initial_delay : now + max_rt;
    if (g->rebalance_deadline > g->rebalance_max) g->rebalance_deadline = g->rebalance_max;
    if (g->rebalance_deadline <= 0) g->rebalance_deadline = 1;
    set_state(g, GROUP_PREPARING);
    sm_info("group", "%s: preparing rebalance (generation %d, %d members)", g->id, g->generation,
            g->nmembers);
    group_timer_kick(c);
}

void group_classic_prepare_rebalance(group_coordinator_t *c, group_t *g) {
    prepare_rebalance(c, g, false);
}

static void maybe_complete_join(group_coordinator_t *c, group_shard_t *s, group_t *g) {
    if (g->state != GROUP_PREPARING) return;
    for (group_member_t *m = g->members; m; m = m->next)
        if (!m->join_req) return;
    complete_join(c, s, g);
}

/* m leaves (LeaveGroup or session expiry). When it is the last member the
 * group's move to Empty is written first; a failed write keeps m and returns
 * the error. */
static int16_t member_gone(group_coordinator_t *c, group_shard_t *s, group_t *g,
                           group_member_t *m) {
    sm_debug("group", "%s: member %s leaves", g->id, m->id);
    if (g->nmembers == 1 && g->state != GROUP_EMPTY) return become_empty(c, s, g);
    if (m->join_req) group_classic_join_error(m->join_req, PROTO_ERR_UNKNOWN_MEMBER_ID, NULL);
    if (m->sync_req) respond_sync_error(m->sync_req, PROTO_ERR_UNKNOWN_MEMBER_ID);
    m->join_req = m->sync_req = NULL;
    member_remove(g, m);
    if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING)
        prepare_rebalance(c, g, false);
    else
        maybe_complete_join(c, s, g);
    return PROTO_ERR_NONE;
}

void group_classic_tick(group_coordinator_t *c, group_shard_t *s, group_t *g, int64_t now,
                        int64_t *next) {
    /* A failed write is retried on a later tick, not at once: its deadline
     * stays in the past, so it does not lower *next. */
    if (g->state == GROUP_PREPARING && g->rebalance_deadline) {
        if (now >= g->rebalance_deadline)
            complete_join(c, s, g);
        else if (g->rebalance_deadline < *next)
            *next = g->rebalance_deadline;
    }
    for (group_member_t *m = g->members, *n; m; m = n) {
        n = m->next;
        /* A member waiting in JoinGroup is not expired meanwhile. */
        if (m->join_req) continue;
        int64_t exp = m->last_seen + m->session_timeout;
        if (now >= exp) {
            sm_info("group", "%s: member %s expired after %d ms without heartbeat", g->id, m->id,
                    m->session_timeout);
            /* The last member's departure empties the group (all members). */
            if (member_gone(c, s, g, m) == PROTO_ERR_NONE && !g->members) break;
        } else if (exp < *next) {
            *next = exp;
        }
    }
    for (group_pending_id_t **pp = &g->pending; *pp;) {
        if (now >= (*pp)->expires) {
            group_pending_id_t *d = *pp;
            *pp = d->next;
            gs_free(d->id);
            free(d);
        } else {
            pp = &(*pp)->next;
        }
    }
}

void group_classic_loaded(group_t *g, int64_t now) {
    for (group_member_t *m = g->members; m; m = m->next)
        m->last_seen = now;
}

void group_classic_abort(group_t *g, int16_t err) {
    for (group_member_t *m = g->members; m; m = m->next) {
        if (m->join_req) group_classic_join_error(m->join_req, err, NULL);
        if (m->sync_req) respond_sync_error(m->sync_req, err);
        m->join_req = m->sync_req = NULL;
    }
}

/* ---------------------------------------------------------------- JoinGroup */

static group_member_t *new_member(sm_str_t id, const proto_join_group_request_t *req,
                                  broker_req_t *r) {
    group_member_t *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->id = group_dupstr(id);
    m->instance_id = group_dupstr(req->group_instance_id);
    group_client_of(r, &m->client_id, &m->client_host);
    return m;
}

static int set_protocols(group_member_t *m, const proto_join_group_request_t *req) {
    group_protocol_t *p;
    int n;
    if (group_protocols_copy(&req->protocols, &p, &n)) return SM_ERR_NOMEM;
    group_protocols_free(m->protocols, m->nprotocols);
    m->protocols = p;
    m->nprotocols = n;
    return SM_OK;
}

static bool protocols_compatible(group_t *g, const proto_join_group_request_t *req) {
    if (!g->members) return true;
    if (!g->protocol_type || !group_streq(g->protocol_type, req->protocol_type)) return false;
    /* At least one protocol every member (and this one) supports. */
    for (int32_t i = 0; i < req->protocols.n; i++) {
        bool all = true;
        for (group_member_t *m = g->members; m && all; m = m->next) {
            bool has = false;
            for (int k = 0; k < m->nprotocols; k++)
                if (group_streq(m->protocols[k].name, req->protocols.v[i].name)) has = true;
            all = has;
        }
        if (all) return true;
    }
    return false;
}

/* Kafka's shape: <group.instance.id or client.id>-<uuid>, byte for byte (a
 * client id may hold NUL bytes). Returns a group string. */
static char *make_member_id(sm_str_t client_id, sm_str_t instance) {
    uint8_t u[16];
    if (getrandom(u, 16, 0) != 16)
        for (int i = 0; i < 16; i++)
            u[i] = (uint8_t)rand();
    sm_str_t prefix = instance.len >= 0 ? instance : client_id;
    int plen = prefix.len > 0 ? prefix.len : 0;
    char uuid[40];
    int ulen = snprintf(uuid, sizeof(uuid),
                        "-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                        u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                        u[12], u[13], u[14], u[15]);
    char *buf = malloc((size_t)plen + (size_t)ulen + 1);
    if (!buf) return NULL;
    if (plen) memcpy(buf, prefix.ptr, (size_t)plen);
    memcpy(buf + plen, uuid, (size_t)ulen);
    char *id = gs_new(buf, plen + ulen);
    free(buf);
    return id;
}

static group_member_t *add_member(group_t *g, sm_str_t id, const proto_join_group_request_t *req,
                                  broker_req_t *r) {
    group_member_t *m = new_member(id, req, r);
    if (m) {
        m->next = g->members;
        g->members = m;
        g->nmembers++;
    }
    return m;
}

/* group_answer_fn of a JoinGroup answered after a write (filled in already). */
static void join_answer(broker_req_t *r, int16_t err) {
    if (err)
        group_classic_join_error(r, err, NULL);
    else
        broker_req_finish(r);
}

/* A static member restarting with an empty member id (KIP-345) takes its
 * place back under a new id; the old id is fenced. When the group is stable
 * and the member's protocols leave the group's protocol as it is, there is
 * no rebalance: the group's record is written with the new id (so a later
 * coordinator knows it), then the JoinGroup is answered (returns true, also
 * when the write failed: the member keeps its old id then). Otherwise the
 * caller parks the join and the group rebalances (returns false). Takes id. */
static bool rejoin_static(group_coordinator_t *c, group_shard_t *s, group_t *g, group_member_t *old,
                          char *id, const proto_join_group_request_t *req,
                          int32_t rebalance_timeout, broker_req_t *r) {
    if (old->join_req) group_classic_join_error(old->join_req, PROTO_ERR_FENCED_INSTANCE_ID, NULL);
    if (old->sync_req) respond_sync_error(old->sync_req, PROTO_ERR_FENCED_INSTANCE_ID);
    old->join_req = old->sync_req = NULL;
    /* What the member was, restored when the record cannot be written. */
    group_member_t was = *old;
    char *was_leader = gs_eq(g->leader, old->id) ? g->leader : NULL;
    old->id = id;
    if (was_leader) g->leader = gs_copy(id);
    old->session_timeout = req->session_timeout_ms;
    old->rebalance_timeout = rebalance_timeout;
    old->last_seen = group_now_ms();
    if (g->state != GROUP_STABLE) {
        gs_free(was.id);
        gs_free(was_leader);
        return false;
    }
    old->protocols = NULL;
    old->nprotocols = 0;
    bool keep = set_protocols(old, req) == SM_OK &&
                gs_eq(group_classic_select_protocol(g), g->protocol) && (!was_leader || g->leader);
    int16_t err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
    int64_t end = 0;
    group_rec_t rec;
    group_meta_view_t view = {g->generation, g->protocol, g->leader, true, NULL};
    if (keep && group_meta_record(g, &view, false, &rec) == SM_OK) {
        err = group_append(c, s, &rec, 1, &end);
        group_recs_free(&rec, 1);
    }
    if (!keep) {
        /* The protocol would change: the caller parks the join (with the
         * request's protocols) and the group rebalances. */
        group_protocols_free(was.protocols, was.nprotocols);
        gs_free(was.id);
        gs_free(was_leader);
        return false;
    }
    if (err) {
        /* Not written: the member is as it was, the old id still valid. */
        group_protocols_free(old->protocols, old->nprotocols);
        gs_free(old->id);
        *old = was;
        if (was_leader) {
            gs_free(g->leader);
            g->leader = was_leader;
        }
        group_classic_join_error(r, err, NULL);
        return true;
    }
    group_protocols_free(was.protocols, was.nprotocols);
    gs_free(was.id);
    gs_free(was_leader);
    g->write_end = end;
    fill_join_response(r, g, old);
    /* The leader learns the members again only on a real rebalance. */
    ((proto_join_group_response_t *)r->resp)->members.n = 0;
    ((proto_join_group_response_t *)r->resp)->skip_assignment = was_leader && r->version >= 9;
    group_answer_after(c, s, end, r, join_answer);
    return true;
}

/* Finds or admits the member a JoinGroup speaks for. Returns NULL after
 * answering r (an error, MEMBER_ID_REQUIRED, a static rejoin). */
static group_member_t *join_member(group_coordinator_t *c, group_shard_t *s, group_t *g,
                                   const proto_join_group_request_t *req, int32_t rebalance_timeout,
                                   broker_req_t *r) {
    bool is_static = req->group_instance_id.len >= 0;
    if (req->member_id.len == 0) {
        group_member_t *old =
            is_static ? group_member_by_instance(g, req->group_instance_id) : NULL;
        char *id = make_member_id(r->req.header.client_id, req->group_instance_id);
        if (!id) {
            group_classic_join_error(r, PROTO_ERR_UNKNOWN_SERVER_ERROR, NULL);
            return NULL;
        }
        if (old) return rejoin_static(c, s, g, old, id, req, rebalance_timeout, r) ? NULL : old;
        if (!is_static && r->version >= 4) {
            /* KIP-394: a new dynamic member first gets its id. */
            group_pending_id_t *p = calloc(1, sizeof(*p));
            if (p) {
                p->id = id;
                p->expires = group_now_ms() + req->session_timeout_ms;
                p->next = g->pending;
                g->pending = p;
            }
            group_classic_join_error(r, PROTO_ERR_MEMBER_ID_REQUIRED, id);
            if (!p) gs_free(id);
            return NULL;
        }
        group_member_t *m = NULL;
        int16_t err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        if (c->max_size > 0 && g->nmembers >= c->max_size)
            err = PROTO_ERR_GROUP_MAX_SIZE_REACHED;
        else
            m = add_member(g, S(id), req, r);
        gs_free(id);
        if (!m) group_classic_join_error(r, err, NULL);
        return m;
    }
    group_member_t *m = group_member_find(g, req->member_id);
    if (m && is_static &&
        (!m->instance_id || !group_streq(m->instance_id, req->group_instance_id))) {
        group_classic_join_error(r, PROTO_ERR_FENCED_INSTANCE_ID, NULL);
        return NULL;
    }
    if (!m) {
        /* A member id handed out with MEMBER_ID_REQUIRED. */
        group_pending_id_t **pp = &g->pending;
        while (*pp && !group_streq((*pp)->id, req->member_id))
            pp = &(*pp)->next;
        if (*pp) {
            if (c->max_size > 0 && g->nmembers >= c->max_size) {
                group_classic_join_error(r, PROTO_ERR_GROUP_MAX_SIZE_REACHED, NULL);
                return NULL;
            }
            group_pending_id_t *p = *pp;
            *pp = p->next;
            m = add_member(g, S(p->id), req, r);
            gs_free(p->id);
            free(p);
        }
    }
    if (!m) {
        int16_t err = is_static && group_member_by_instance(g, req->group_instance_id)
                          ? PROTO_ERR_FENCED_INSTANCE_ID
                          : PROTO_ERR_UNKNOWN_MEMBER_ID;
        group_classic_join_error(r, err, NULL);
    }
    return m;
}

int broker_handle_join_group(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_join_group_request_t *req = broker_body(r);
    if (req->group_id.len <= 0) {
        group_classic_join_error(r, PROTO_ERR_INVALID_GROUP_ID, NULL);
        return BROKER_PARKED;
    }
    if (req->session_timeout_ms < c->min_session || req->session_timeout_ms > c->max_session) {
        group_classic_join_error(r, PROTO_ERR_INVALID_SESSION_TIMEOUT, NULL);
        return BROKER_PARKED;
    }
    if (req->protocol_type.len <= 0 || req->protocols.n <= 0) {
        group_classic_join_error(r, PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
        return BROKER_PARKED;
    }
    int32_t rebalance_timeout =
        r->version >= 1 ? req->rebalance_timeout_ms : req->session_timeout_ms;
    group_shard_t *s = group_shard_for(c, req->group_id);
    pthread_mutex_lock(&s->mu);
    int16_t err = group_shard_error(s);
    /* Nothing would complete a join parked now: the timer is gone. */
    if (!err && atomic_load(&s->stopping)) err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    group_t *g = err ? NULL : group_get_or_create(s, req->group_id);
    if (!err && !g) err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
    if (!err && g->cg && g->cg->nmembers) {
        /* KIP-848: a classic member of a consumer group. */
        group_migrate_join(c, s, g, r, req, rebalance_timeout);
        pthread_mutex_unlock(&s->mu);
        return BROKER_PARKED;
    }
    if (!err && g->cg) {
        /* An empty consumer group becomes a classic one again. */
        group_consumer_free(g->cg);
        g->cg = NULL;
    }
    if (!err && !protocols_compatible(g, req)) err = PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL;
    if (err) {
        pthread_mutex_unlock(&s->mu);
        group_classic_join_error(r, err, NULL);
        return BROKER_PARKED;
    }
    group_member_t *m = join_member(c, s, g, req, rebalance_timeout, r);
    if (!m) {
        pthread_mutex_unlock(&s->mu);
        return BROKER_PARKED;
    }
    if (m->join_req) group_classic_join_error(m->join_req, PROTO_ERR_REBALANCE_IN_PROGRESS, NULL);
    set_protocols(m, req);
    m->session_timeout = req->session_timeout_ms;
    m->rebalance_timeout = rebalance_timeout;
    m->last_seen = group_now_ms();
    m->join_req = r;
    if (!g->protocol_type || !group_streq(g->protocol_type, req->protocol_type)) {
        gs_free(g->protocol_type);
        g->protocol_type = group_dupstr(req->protocol_type);
    }
    bool initial = false;
    if (g->state == GROUP_EMPTY) {
        initial = true;
        prepare_rebalance(c, g, true);
    } else if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING) {
        prepare_rebalance(c, g, false);
    } else if (g->state == GROUP_PREPARING && c->initial_delay > 0 && g->generation == 0) {
        /* Initial delay: each new member extends the wait, up to the timeout. */
        int64_t d = group_now_ms() + c->initial_delay;
        g->rebalance_deadline = d < g->rebalance_max ? d : g->rebalance_max;
        initial = true;
        group_timer_kick(c);
    }
    if (!(initial && c->initial_delay > 0)) maybe_complete_join(c, s, g);
    pthread_mutex_unlock(&s->mu);
    return BROKER_PARKED;
}

/* ---------------------------------------------------------------- SyncGroup */

/* The leader's assignments, in member list order ({NULL, -1}: none). */
static sm_bytes_t *stage_assignments(group_t *g, const proto_sync_group_request_t *req) {
    sm_bytes_t *a = calloc((size_t)g->nmembers + 1, sizeof(*a));
    if (!a) return NULL;
    int i = 0;
    for (group_member_t *o = g->members; o; o = o->next, i++) {
        a[i] = (sm_bytes_t){NULL, -1};
        for (int32_t k = 0; k < req->assignments.n; k++)
            if (group_streq(o->id, req->assignments.v[k].member_id) &&
                req->assignments.v[k].assignment.len >= 0)
                a[i] = req->assignments.v[k].assignment;
    }
    return a;
}

/* The leader's SyncGroup: writes the assignments, then (appended) makes the
 * group Stable and answers every parked sync once the write is durable. */
static void complete_sync(group_coordinator_t *c, group_shard_t *s, group_t *g,
                          const proto_sync_group_request_t *req) {
    sm_bytes_t *a = stage_assignments(g, req);
    group_meta_view_t view = {g->generation, g->protocol, g->leader, true, a};
    group_rec_t rec;
    int64_t end = 0;
    int16_t err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
    if (a && group_meta_record(g, &view, false, &rec) == SM_OK) {
        err = group_append(c, s, &rec, 1, &end);
        group_recs_free(&rec, 1);
    }
    if (!err) {
        int i = 0;
        for (group_member_t *o = g->members; o; o = o->next, i++) {
            free(o->assignment);
            o->assignment = NULL;
            o->assignment_len = 0;
            if (a[i].len < 0) continue;
            o->assignment = malloc((size_t)a[i].len + 1);
            if (o->assignment) {
                memcpy(o->assignment, a[i].ptr, (size_t)a[i].len);
                o->assignment_len = a[i].len;
            }
        }
        g->write_end = end;
        set_state(g, GROUP_STABLE);
        sm_debug("group", "%s: stable at generation %d", g->id, g->generation);
    }
    free(a);
    for (group_member_t *o = g->members; o; o = o->next) {
        broker_req_t *sr = o->sync_req;
        if (!sr) continue;
        o->sync_req = NULL;
        if (err) {
            respond_sync_error(sr, err);
        } else {
            fill_sync(sr, g, o);
            group_answer_after(c, s, end, sr, group_classic_sync_answer);
        }
    }
}

/* The member a SyncGroup or Heartbeat speaks for at its generation, or NULL
 * with *err set (the shard's error, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID for
 * a replaced static member, ILLEGAL_GENERATION). Caller holds s->mu. */
static group_member_t *generation_member(group_shard_t *s, sm_str_t group_id, sm_str_t member_id,
                                         sm_str_t instance_id, int32_t generation, group_t **gp,
                                         int16_t *err) {
    *err = group_shard_error(s);
    group_t *g = *err ? NULL : group_get(s, group_id);
    group_member_t *m = g ? group_member_find(g, member_id) : NULL;
    *gp = g;
    if (*err) return NULL;
    if (!m) {
        *err = g && instance_id.len >= 0 && group_member_by_instance(g, instance_id)
                   ? PROTO_ERR_FENCED_INSTANCE_ID
                   : PROTO_ERR_UNKNOWN_MEMBER_ID;
        return NULL;
    }
    if (generation != g->generation) {
        *err = PROTO_ERR_ILLEGAL_GENERATION;
        return NULL;
    }
    return m;
}

int broker_handle_sync_group(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_sync_group_request_t *req = broker_body(r);
    group_shard_t *s = group_shard_for(c, req->group_id);
    pthread_mutex_lock(&s->mu);
    group_t *g = group_shard_error(s) ? NULL : group_get(s, req->group_id);
    if (g && g->cg) {
        group_migrate_sync(c, s, g, r, req);
        pthread_mutex_unlock(&s->mu);
        return BROKER_PARKED;
    }
    int16_t err;
    group_member_t *m = generation_member(s, req->group_id, req->member_id, req->group_instance_id,
                                          req->generation_id, &g, &err);
    if (!m) {
    } else if (atomic_load(&s->stopping)) {
        err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE; /* no sync may park now */
    } else if ((req->protocol_type.len >= 0 &&
                !group_streq(g->protocol_type, req->protocol_type)) ||
               (req->protocol_name.len >= 0 && !group_streq(g->protocol, req->protocol_name))) {
        err = PROTO_ERR_INCONSISTENT_GROUP_PROTOCOL;
    } else if (g->state == GROUP_PREPARING) {
        err = PROTO_ERR_REBALANCE_IN_PROGRESS;
    }
    if (err) {
        pthread_mutex_unlock(&s->mu);
        respond_sync_error(r, err);
        return BROKER_PARKED;
    }
    m->last_seen = group_now_ms();
    if (g->state == GROUP_STABLE) {
        fill_sync(r, g, m);
        group_answer_after(c, s, g->write_end, r, group_classic_sync_answer);
        pthread_mutex_unlock(&s->mu);
        return BROKER_PARKED;
    }
    /* CompletingRebalance: wait for the leader. */
    if (m->sync_req) respond_sync_error(m->sync_req, PROTO_ERR_REBALANCE_IN_PROGRESS);
    m->sync_req = r;
    if (gs_eq(g->leader, m->id)) complete_sync(c, s, g, req);
    pthread_mutex_unlock(&s->mu);
    return BROKER_PARKED;
}

/* ---------------------------------------------------------------- Heartbeat, LeaveGroup */

int broker_handle_heartbeat(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_heartbeat_request_t *req = broker_body(r);
    proto_heartbeat_response_t *resp = r->resp;
    group_shard_t *s = group_shard_for(c, req->group_id);
    pthread_mutex_lock(&s->mu);
    group_t *g = group_shard_error(s) ? NULL : group_get(s, req->group_id);
    if (g && g->cg) {
        resp->error_code = group_migrate_heartbeat(g, req);
        pthread_mutex_unlock(&s->mu);
        return BROKER_RESPOND;
    }
    int16_t err;
    group_member_t *m = generation_member(s, req->group_id, req->member_id, req->group_instance_id,
                                          req->generation_id, &g, &err);
    if (m) {
        m->last_seen = group_now_ms();
        err = g->state == GROUP_PREPARING ? PROTO_ERR_REBALANCE_IN_PROGRESS : PROTO_ERR_NONE;
    }
    pthread_mutex_unlock(&s->mu);
    resp->error_code = err;
    return BROKER_RESPOND;
}

static void leave_answer(broker_req_t *r, int16_t err) {
    proto_leave_group_response_t *resp = r->resp;
    if (err) resp->error_code = err;
    broker_req_finish(r);
}

/* One member of a LeaveGroup; *end grows to the log end it must wait for. */
static int16_t leave_one(group_coordinator_t *c, group_shard_t *s, group_t *g, sm_str_t member_id,
                         sm_str_t instance_id, int64_t *end) {
    group_member_t *m = NULL;
    if (!g) return PROTO_ERR_UNKNOWN_MEMBER_ID;
    if (g->cg) return group_migrate_leave(c, s, g, member_id, instance_id, end);
    if (instance_id.len >= 0) {
        m = group_member_by_instance(g, instance_id);
        if (m && member_id.len > 0 && !group_streq(m->id, member_id))
            return PROTO_ERR_FENCED_INSTANCE_ID;
    } else {
        m = group_member_find(g, member_id);
    }
    if (!m) return PROTO_ERR_UNKNOWN_MEMBER_ID;
    int16_t err = member_gone(c, s, g, m);
    if (!err && g->write_end > *end) *end = g->write_end;
    return err;
}

int broker_handle_leave_group(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_leave_group_request_t *req = broker_body(r);
    proto_leave_group_response_t *resp = r->resp;
    group_shard_t *s = group_shard_for(c, req->group_id);
    pthread_mutex_lock(&s->mu);
    int16_t serr = group_shard_error(s);
    group_t *g = serr ? NULL : group_get(s, req->group_id);
    int64_t end = 0;
    if (serr) {
        resp->error_code = serr;
    } else if (r->version < 3) {
        resp->error_code = leave_one(c, s, g, req->member_id, SM_STR_NULL, &end);
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
            o->error_code = leave_one(c, s, g, id->member_id, id->group_instance_id, &end);
        }
    }
    group_answer_after(c, s, end, r, leave_answer);
    pthread_mutex_unlock(&s->mu);
    return BROKER_PARKED;
}
