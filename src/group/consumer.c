/*
 * The consumer group protocol (KIP-848): ConsumerGroupHeartbeat and
 * ConsumerGroupDescribe, member epochs, target assignment (computed by the
 * assignors of assignor.c) and reconciliation with revocation before
 * reassignment, static membership, session and rebalance timeouts. Not for
 * the classic protocol (classic.c) nor committed offsets (offsets.c).
 *
 * Group: epoch (bumped on every change of members, subscriptions or the
 * subscribed topics' partition counts), assignment_epoch (the epoch the
 * target assignment was computed for; computed at once, so it equals epoch
 * after each heartbeat). Member states (Kafka's):
 *
 *   STABLE --new target--> UNREVOKED (owns partitions the target took away:
 *     |                      the member is told its kept partitions and keeps
 *     |                      its epoch until it acknowledges the revocation)
 *     |                           | acknowledged
 *     +--------> UNRELEASED <-----+ (the member's epoch moves to the target's;
 *                   |               partitions still owned by others wait)
 *                   +--all released--> STABLE
 *
 * Invariants, under the shard's mu:
 *  1. No partition is in two members' (assigned ∪ pending revocation): a
 *     partition is handed out only once its previous owner gave it up.
 *  2. A member's epoch is at most the assignment epoch; epoch == assignment
 *     epoch unless the member is UNREVOKED.
 *  3. Persistence is commit-or-rollback: a heartbeat works on the group,
 *     writes the records of what changed, and restores the snapshot taken
 *     before it when the append fails (the request gets the append's error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "base/regex.h"
#include "broker/handlers/handlers.h"
#include "group/group_impl.h"
#include "protocol/errors.h"

#define S group_S

enum { CM_STABLE = 0, CM_UNREVOKED = 2, CM_UNRELEASED = 1 };

/* ---------------------------------------------------------------- partition sets */

static int tp_cmp(const void *a, const void *b) {
    const group_tp_t *x = a, *y = b;
    int c = memcmp(x->topic.b, y->topic.b, 16);
    return c ? c : (x->p > y->p) - (x->p < y->p);
}

static bool tp_has(const group_tps_t *s, const group_tp_t *tp) {
    return s->n && bsearch(tp, s->v, (size_t)s->n, sizeof(*tp), tp_cmp) != NULL;
}

int group_tps_add(group_tps_t *s, group_tp_t tp) {
    if (s->n == s->cap) {
        int ncap = s->cap ? s->cap * 2 : 8;
        group_tp_t *nv = realloc(s->v, (size_t)ncap * sizeof(*nv));
        if (!nv) return SM_ERR_NOMEM;
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = tp;
    return SM_OK;
}

void group_tps_sort(group_tps_t *s) {
    if (s->n > 1) qsort(s->v, (size_t)s->n, sizeof(*s->v), tp_cmp);
}

static bool tp_eq(const group_tps_t *a, const group_tps_t *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, (size_t)a->n * sizeof(*a->v)) == 0);
}

static int tp_copy(group_tps_t *dst, const group_tps_t *src) {
    dst->n = 0;
    for (int i = 0; i < src->n; i++)
        if (group_tps_add(dst, src->v[i])) return SM_ERR_NOMEM;
    return SM_OK;
}

/* ---------------------------------------------------------------- members */

void group_cg_member_free(group_cmember_t *m) {
    gs_free(m->id);
    gs_free(m->instance_id);
    gs_free(m->rack);
    gs_free(m->client_id);
    gs_free(m->client_host);
    gs_free(m->assignor);
    gs_free(m->regex);
    sm_regex_free(m->re);
    for (int i = 0; i < m->ntopics; i++)
        gs_free(m->topics[i]);
    free(m->topics);
    free(m->assigned.v);
    free(m->revoking.v);
    free(m->target.v);
    group_protocols_free(m->protocols, m->nprotocols);
    free(m);
}

static char *dup_or_null(const char *s) { return gs_copy(s); }

static group_cmember_t *cmember_clone(const group_cmember_t *m) {
    group_cmember_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    *c = *m;
    c->next = NULL;
    c->id = dup_or_null(m->id);
    c->instance_id = dup_or_null(m->instance_id);
    c->rack = dup_or_null(m->rack);
    c->client_id = dup_or_null(m->client_id);
    c->client_host = dup_or_null(m->client_host);
    c->assignor = dup_or_null(m->assignor);
    c->regex = dup_or_null(m->regex);
    c->re = NULL;
    if (c->regex && sm_regex_compile(c->regex, strlen(c->regex), &c->re)) c->re = NULL;
    c->topics = calloc((size_t)m->ntopics + 1, sizeof(char *));
    for (int i = 0; c->topics && i < m->ntopics; i++)
        c->topics[i] = gs_copy(m->topics[i]);
    c->assigned = c->revoking = c->target = (group_tps_t){0};
    c->protocols = NULL;
    c->nprotocols = 0;
    if (m->nprotocols) {
        c->protocols = calloc((size_t)m->nprotocols, sizeof(*c->protocols));
        for (int i = 0; c->protocols && i < m->nprotocols; i++, c->nprotocols++) {
            c->protocols[i].name = gs_copy(m->protocols[i].name);
            c->protocols[i].meta = malloc((size_t)m->protocols[i].meta_len + 1);
            if (c->protocols[i].meta)
                memcpy(c->protocols[i].meta, m->protocols[i].meta,
                       (size_t)m->protocols[i].meta_len);
            c->protocols[i].meta_len = m->protocols[i].meta_len;
            if (!c->protocols[i].name || !c->protocols[i].meta) {
                c->nprotocols++;
                group_cg_member_free(c);
                return NULL;
            }
        }
    }
    if ((m->nprotocols && !c->protocols) || !c->topics || tp_copy(&c->assigned, &m->assigned) ||
        tp_copy(&c->revoking, &m->revoking) || tp_copy(&c->target, &m->target)) {
        group_cg_member_free(c);
        return NULL;
    }
    return c;
}

void group_consumer_free(group_cgroup_t *cg) {
    if (!cg) return;
    while (cg->members) {
        group_cmember_t *m = cg->members;
        cg->members = m->next;
        group_cg_member_free(m);
    }
    free(cg);
}

group_cgroup_t *group_cg_clone(const group_cgroup_t *cg) {
    group_cgroup_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    *c = *cg;
    c->members = NULL;
    group_cmember_t **tail = &c->members;
    for (const group_cmember_t *m = cg->members; m; m = m->next) {
        if (!(*tail = cmember_clone(m))) {
            group_consumer_free(c);
            return NULL;
        }
        tail = &(*tail)->next;
    }
    return c;
}

group_cmember_t *group_cg_member(group_cgroup_t *cg, sm_str_t id) {
    for (group_cmember_t *m = cg->members; m; m = m->next)
        if (group_streq(m->id, id)) return m;
    return NULL;
}

group_cmember_t *group_cg_member_by_instance(group_cgroup_t *cg, sm_str_t instance) {
    if (instance.len < 0) return NULL;
    for (group_cmember_t *m = cg->members; m; m = m->next)
        if (m->instance_id && group_streq(m->instance_id, instance)) return m;
    return NULL;
}

/* Takes m out of the group and frees it. */
static void cmember_unlink(group_cgroup_t *cg, group_cmember_t *m) {
    group_cmember_t **pp = &cg->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp) *pp = m->next;
    cg->nmembers--;
    group_cg_member_free(m);
}

/* A member leaves: the group moves to a new epoch. */
void group_cg_remove(group_cgroup_t *cg, group_cmember_t *m) {
    cmember_unlink(cg, m);
    cg->epoch++;
}

/* ---------------------------------------------------------------- reconciliation */

/* True when another member than m holds tp (assigned or being revoked). */
static bool owned_elsewhere(group_cgroup_t *cg, const group_cmember_t *m, const group_tp_t *tp) {
    for (group_cmember_t *o = cg->members; o; o = o->next)
        if (o != m && (tp_has(&o->assigned, tp) || tp_has(&o->revoking, tp))) return true;
    return false;
}

bool group_cg_waiting(group_cgroup_t *cg, const group_cmember_t *m) {
    for (int i = 0; i < m->target.n; i++)
        if (!tp_has(&m->assigned, &m->target.v[i]) && owned_elsewhere(cg, m, &m->target.v[i]))
            return true;
    return false;
}

/* Moves m toward its target (Kafka's CurrentAssignmentBuilder). owned: the
 * partitions the member reports owning (NULL: not reported). */
void group_cg_reconcile(group_cgroup_t *cg, group_cmember_t *m, const group_tps_t *owned) {
    if (m->state == CM_UNREVOKED) {
        /* Acknowledged when it owns none of the partitions being revoked. */
        bool acked = owned != NULL;
        for (int i = 0; acked && i < m->revoking.n; i++)
            acked = !tp_has(owned, &m->revoking.v[i]);
        if (!acked) return;
        m->revoking.n = 0;
        m->state = CM_STABLE;
    }
    if (m->epoch == cg->assignment_epoch && m->state == CM_STABLE) return;
    group_tps_t keep = {0}, revoke = {0};
    for (int i = 0; i < m->assigned.n; i++)
        group_tps_add(tp_has(&m->target, &m->assigned.v[i]) ? &keep : &revoke, m->assigned.v[i]);
    /* A member that reports owning none of them has released them already
     * (a classic eager member rejoins owning nothing). */
    bool owns_revoked = owned == NULL;
    for (int i = 0; !owns_revoked && i < revoke.n; i++)
        owns_revoked = tp_has(owned, &revoke.v[i]);
    if (revoke.n && owns_revoked) {
        free(m->assigned.v);
        free(m->revoking.v);
        m->assigned = keep;
        m->revoking = revoke;
        m->state = CM_UNREVOKED;
        m->revoke_deadline = group_now_ms() + m->rebalance_timeout;
        m->send_assignment = true;
        return;
    }
    free(revoke.v);
    bool unreleased = false;
    for (int i = 0; i < m->target.n; i++) {
        const group_tp_t *tp = &m->target.v[i];
        /* keep holds assigned ∩ target so far (and is unsorted from here). */
        if (tp_has(&m->assigned, tp)) continue;
        if (owned_elsewhere(cg, m, tp))
            unreleased = true;
        else
            group_tps_add(&keep, *tp);
    }
    group_tps_sort(&keep);
    if (!tp_eq(&keep, &m->assigned)) m->send_assignment = true;
    free(m->assigned.v);
    m->assigned = keep;
    if (m->epoch != cg->assignment_epoch) {
        m->prev_epoch = m->epoch;
        m->epoch = cg->assignment_epoch;
    }
    m->state = unreleased ? CM_UNRELEASED : CM_STABLE;
}

/* ---------------------------------------------------------------- records */

static int encode_rec(const char *key_msg, const void *key, const char *val_msg, const void *val,
                      group_rec_t *r) {
    memset(r, 0, sizeof(*r));
    if (group_encode_key(key_msg, key, &r->key, &r->key_len)) return SM_ERR;
    if (val && group_encode_value(val_msg, 0, val, &r->value, &r->value_len)) {
        free(r->key);
        memset(r, 0, sizeof(*r));
        return SM_ERR;
    }
    return SM_OK;
}

typedef struct rec_list {
    group_rec_t *v;
    int n, cap;
    bool failed;
} rec_list_t;

static group_rec_t *rec_next(rec_list_t *l) {
    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 8;
        group_rec_t *nv = realloc(l->v, (size_t)ncap * sizeof(*nv));
        if (!nv) {
            l->failed = true;
            return NULL;
        }
        l->v = nv;
        l->cap = ncap;
    }
    return &l->v[l->n];
}

static void rec_push(rec_list_t *l, int rc) {
    if (rc)
        l->failed = true;
    else
        l->n++;
}

/* A partition set as the records' topic-partitions array (from arena a). */
#define TPS_ARRAY(type, a, set, out)                                                               \
    do {                                                                                           \
        (out).n = 0;                                                                               \
        (out).v = sm_arena_calloc((a), (size_t)(set)->n + 1, sizeof(*(out).v));                    \
        for (int i_ = 0; (out).v && i_ < (set)->n; i_++) {                                         \
            if ((out).n == 0 ||                                                                    \
                memcmp((out).v[(out).n - 1].topic_id.b, (set)->v[i_].topic.b, 16) != 0) {          \
                (out).v[(out).n].topic_id = (set)->v[i_].topic;                                    \
                (out).v[(out).n].partitions.v =                                                    \
                    sm_arena_calloc((a), (size_t)(set)->n + 1, sizeof(int32_t));                   \
                (out).n++;                                                                         \
            }                                                                                      \
            type *t_ = &(out).v[(out).n - 1];                                                      \
            if (t_->partitions.v) t_->partitions.v[t_->partitions.n++] = (set)->v[i_].p;           \
        }                                                                                          \
    } while (0)

static void member_records(rec_list_t *l, sm_arena_t *a, const group_t *g, const group_cmember_t *m,
                           const group_cmember_t *old, bool target_changed) {
    sm_str_t gid = S(g->id), mid = S(m->id);
    group_rec_t *r;
    bool meta_changed =
        !old || old->ntopics != m->ntopics || old->rebalance_timeout != m->rebalance_timeout ||
        (old->regex == NULL) != (m->regex == NULL) || (m->regex && !gs_eq(old->regex, m->regex));
    for (int i = 0; !meta_changed && i < m->ntopics; i++)
        meta_changed = strcmp(old->topics[i], m->topics[i]) != 0;
    meta_changed = meta_changed || old->nprotocols != m->nprotocols ||
                   old->session_timeout != m->session_timeout;
    for (int i = 0; !meta_changed && i < m->nprotocols; i++)
        meta_changed = !gs_eq(old->protocols[i].name, m->protocols[i].name) ||
                       old->protocols[i].meta_len != m->protocols[i].meta_len ||
                       memcmp(old->protocols[i].meta, m->protocols[i].meta,
                              (size_t)m->protocols[i].meta_len) != 0;
    if (meta_changed && (r = rec_next(l))) {
        proto_consumer_group_member_metadata_key_t k = {.group_id = gid, .member_id = mid};
        proto_consumer_group_member_metadata_value_t v;
        proto_consumer_group_member_metadata_value_init(&v);
        v.instance_id = S(m->instance_id);
        v.rack_id = S(m->rack);
        v.client_id = group_S0(m->client_id);
        v.client_host = group_S0(m->client_host);
        sm_str_t *names = sm_arena_calloc(a, (size_t)m->ntopics + 1, sizeof(*names));
        for (int i = 0; names && i < m->ntopics; i++)
            names[i] = S(m->topics[i]);
        v.subscribed_topic_names = (sm_str_array_t){names && !m->regex ? m->ntopics : 0, names};
        v.subscribed_topic_regex = S(m->regex);
        v.rebalance_timeout_ms = m->rebalance_timeout;
        v.server_assignor = S(m->assignor);
        proto_consumer_group_member_metadata_value_classic_member_metadata_t cm;
        memset(&cm, 0, sizeof(cm));
        if (m->nprotocols) {
            cm.session_timeout_ms = m->session_timeout;
            cm.supported_protocols.n = m->nprotocols;
            cm.supported_protocols.v =
                sm_arena_calloc(a, (size_t)m->nprotocols, sizeof(*cm.supported_protocols.v));
            for (int i = 0; cm.supported_protocols.v && i < m->nprotocols; i++) {
                cm.supported_protocols.v[i].name = S(m->protocols[i].name);
                cm.supported_protocols.v[i].metadata =
                    (sm_bytes_t){m->protocols[i].meta, m->protocols[i].meta_len};
            }
            if (!cm.supported_protocols.v) cm.supported_protocols.n = 0;
            v.classic_member_metadata = &cm;
        }
        rec_push(l, encode_rec("ConsumerGroupMemberMetadataKey", &k,
                               "ConsumerGroupMemberMetadataValue", &v, r));
    }
    if ((target_changed && (!old || !tp_eq(&old->target, &m->target))) && (r = rec_next(l))) {
        proto_consumer_group_target_assignment_member_key_t k = {.group_id = gid, .member_id = mid};
        proto_consumer_group_target_assignment_member_value_t v;
        proto_consumer_group_target_assignment_member_value_init(&v);
        TPS_ARRAY(proto_consumer_group_target_assignment_member_value_topic_partition_t, a,
                  &m->target, v.topic_partitions);
        rec_push(l, encode_rec("ConsumerGroupTargetAssignmentMemberKey", &k,
                               "ConsumerGroupTargetAssignmentMemberValue", &v, r));
    }
    bool cur_changed = !old || old->epoch != m->epoch || old->state != m->state ||
                       !tp_eq(&old->assigned, &m->assigned) || !tp_eq(&old->revoking, &m->revoking);
    if (cur_changed && (r = rec_next(l))) {
        proto_consumer_group_current_member_assignment_key_t k = {.group_id = gid,
                                                                  .member_id = mid};
        proto_consumer_group_current_member_assignment_value_t v;
        proto_consumer_group_current_member_assignment_value_init(&v);
        v.member_epoch = m->epoch;
        v.previous_member_epoch = m->prev_epoch;
        v.state = (int8_t)m->state;
        TPS_ARRAY(proto_consumer_group_current_member_assignment_value_topic_partitions_t, a,
                  &m->assigned, v.assigned_partitions);
        TPS_ARRAY(proto_consumer_group_current_member_assignment_value_topic_partitions_t, a,
                  &m->revoking, v.partitions_pending_revocation);
        rec_push(l, encode_rec("ConsumerGroupCurrentMemberAssignmentKey", &k,
                               "ConsumerGroupCurrentMemberAssignmentValue", &v, r));
    }
}

static void member_tombstones(rec_list_t *l, const group_t *g, const group_cmember_t *m) {
    sm_str_t gid = S(g->id), mid = S(m->id);
    group_rec_t *r;
    proto_consumer_group_current_member_assignment_key_t ck = {.group_id = gid, .member_id = mid};
    if ((r = rec_next(l)))
        rec_push(l, encode_rec("ConsumerGroupCurrentMemberAssignmentKey", &ck, NULL, NULL, r));
    proto_consumer_group_target_assignment_member_key_t tk = {.group_id = gid, .member_id = mid};
    if ((r = rec_next(l)))
        rec_push(l, encode_rec("ConsumerGroupTargetAssignmentMemberKey", &tk, NULL, NULL, r));
    proto_consumer_group_member_metadata_key_t mk = {.group_id = gid, .member_id = mid};
    if ((r = rec_next(l)))
        rec_push(l, encode_rec("ConsumerGroupMemberMetadataKey", &mk, NULL, NULL, r));
}

int group_cg_tombstones(const group_t *g, group_rec_t **recs, int *n) {
    rec_list_t l = {*recs, *n, *n, false};
    for (const group_cmember_t *m = g->cg->members; m; m = m->next)
        member_tombstones(&l, g, m);
    group_rec_t *r;
    proto_consumer_group_target_assignment_metadata_key_t tk = {.group_id = S(g->id)};
    if ((r = rec_next(&l)))
        rec_push(&l, encode_rec("ConsumerGroupTargetAssignmentMetadataKey", &tk, NULL, NULL, r));
    proto_consumer_group_metadata_key_t mk = {.group_id = S(g->id)};
    if ((r = rec_next(&l)))
        rec_push(&l, encode_rec("ConsumerGroupMetadataKey", &mk, NULL, NULL, r));
    *recs = l.v;
    *n = l.n;
    return l.failed ? SM_ERR_NOMEM : SM_OK;
}

/* The records that take the group from old to g's current state. */
static void diff_records(rec_list_t *l, sm_arena_t *a, const group_t *g,
                         const group_cgroup_t *old) {
    const group_cgroup_t *cg = g->cg;
    group_rec_t *r;
    if ((!old || old->epoch != cg->epoch || old->topics_hash != cg->topics_hash) &&
        (r = rec_next(l))) {
        proto_consumer_group_metadata_key_t k = {.group_id = S(g->id)};
        proto_consumer_group_metadata_value_t v;
        proto_consumer_group_metadata_value_init(&v);
        v.epoch = cg->epoch;
        v.metadata_hash = (int64_t)cg->topics_hash;
        rec_push(l,
                 encode_rec("ConsumerGroupMetadataKey", &k, "ConsumerGroupMetadataValue", &v, r));
    }
    bool target_changed = !old || old->assignment_epoch != cg->assignment_epoch;
    for (const group_cmember_t *m = cg->members; m; m = m->next) {
        const group_cmember_t *o = NULL;
        for (const group_cmember_t *x = old ? old->members : NULL; x && !o; x = x->next)
            if (gs_eq(x->id, m->id)) o = x;
        member_records(l, a, g, m, o, target_changed);
    }
    for (const group_cmember_t *x = old ? old->members : NULL; x; x = x->next) {
        bool gone = true;
        for (const group_cmember_t *m = cg->members; m && gone; m = m->next)
            gone = !gs_eq(x->id, m->id);
        if (gone) member_tombstones(l, g, x);
    }
    if (target_changed && (r = rec_next(l))) {
        proto_consumer_group_target_assignment_metadata_key_t k = {.group_id = S(g->id)};
        proto_consumer_group_target_assignment_metadata_value_t v;
        proto_consumer_group_target_assignment_metadata_value_init(&v);
        v.assignment_epoch = cg->assignment_epoch;
        rec_push(l, encode_rec("ConsumerGroupTargetAssignmentMetadataKey", &k,
                               "ConsumerGroupTargetAssignmentMetadataValue", &v, r));
    }
}

int16_t group_cg_commit(group_coordinator_t *c, group_shard_t *s, group_t *g, group_cgroup_t *old,
                        const group_rec_t *pre, int npre) {
    rec_list_t l = {0};
    sm_arena_t a;
    sm_arena_init(&a, 0);
    for (int i = 0; i < npre; i++) {
        group_rec_t *r = rec_next(&l);
        if (!r) break;
        memset(r, 0, sizeof(*r));
        r->key = malloc(pre[i].key_len + 1);
        r->value = pre[i].value ? malloc(pre[i].value_len + 1) : NULL;
        rec_push(&l, !r->key || (pre[i].value && !r->value) ? SM_ERR_NOMEM : SM_OK);
        if (r->key) memcpy(r->key, pre[i].key, pre[i].key_len), r->key_len = pre[i].key_len;
        if (r->value)
            memcpy(r->value, pre[i].value, pre[i].value_len), r->value_len = pre[i].value_len;
    }
    diff_records(&l, &a, g, old);
    int64_t end = 0;
    int16_t err = l.failed ? PROTO_ERR_UNKNOWN_SERVER_ERROR : group_append(c, s, l.v, l.n, &end);
    group_recs_free(l.v, l.n);
    free(l.v);
    sm_arena_free(&a);
    if (err) {
        group_consumer_free(g->cg);
        g->cg = old;
        return err;
    }
    if (end) g->write_end = end;
    group_consumer_free(old);
    return PROTO_ERR_NONE;
}

/* ---------------------------------------------------------------- the group */

typedef struct regex_scan {
    const sm_regex_t *re;
    char **names;
    int n, cap;
} regex_scan_t;

static void regex_visit(void *arg, sm_str_t name) {
    regex_scan_t *rs = arg;
    if (!sm_regex_matches(rs->re, name.ptr, (size_t)name.len)) return;
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 8;
        char **nn = realloc(rs->names, (size_t)cap * sizeof(char *));
        if (!nn) return;
        rs->names = nn;
        rs->cap = cap;
    }
    if ((rs->names[rs->n] = group_dupstr(name))) rs->n++;
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A regex member's topics: the topics its regex matches now (the regex is
 * matched in linear time: base/regex.h), sorted. */
static void resolve_regex(group_coordinator_t *c, group_cmember_t *m) {
    regex_scan_t rs = {m->re, NULL, 0, 0};
    c->host.for_each_topic(c->host.ctx, regex_visit, &rs);
    if (rs.n > 1) qsort(rs.names, (size_t)rs.n, sizeof(char *), str_cmp);
    for (int i = 0; i < m->ntopics; i++)
        gs_free(m->topics[i]);
    free(m->topics);
    m->topics = rs.names;
    m->ntopics = rs.n;
}

/* Recomputes the target when the epoch moved or the subscribed topics'
 * partitions changed; regex subscriptions are resolved again first. */
int group_cg_refresh(group_coordinator_t *c, group_cgroup_t *cg) {
    for (group_cmember_t *m = cg->members; m; m = m->next)
        if (m->re) resolve_regex(c, m);
    return group_assignor_refresh(c, cg);
}

const char *group_consumer_state(const group_t *g) {
    const group_cgroup_t *cg = g->cg;
    if (!cg || !cg->members) return "Empty";
    if (cg->assignment_epoch != cg->epoch) return "Assigning";
    for (const group_cmember_t *m = cg->members; m; m = m->next)
        if (m->epoch != cg->assignment_epoch || m->state != CM_STABLE) return "Reconciling";
    return "Stable";
}

int16_t group_consumer_commit_epoch(group_t *g, sm_str_t member_id, int32_t epoch) {
    group_cmember_t *m = g->cg ? group_cg_member(g->cg, member_id) : NULL;
    if (!m) return PROTO_ERR_UNKNOWN_MEMBER_ID;
    if (epoch == m->epoch) return PROTO_ERR_NONE;
    return epoch > m->epoch ? PROTO_ERR_FENCED_MEMBER_EPOCH : PROTO_ERR_STALE_MEMBER_EPOCH;
}

/* True when m owns every partition the commit names. */
static bool owns_all(group_coordinator_t *c, const group_cmember_t *m,
                     const proto_offset_commit_request_t *req) {
    for (int32_t i = 0; i < req->topics.n; i++) {
        group_tp_t tp;
        int32_t n;
        if (!sm_uuid_is_zero(&req->topics.v[i].topic_id))
            tp.topic = req->topics.v[i].topic_id;
        else if (!c->host.topic(c->host.ctx, req->topics.v[i].name, &tp.topic, &n))
            return false;
        for (int32_t k = 0; k < req->topics.v[i].partitions.n; k++) {
            tp.p = req->topics.v[i].partitions.v[k].partition_index;
            if (!tp_has(&m->assigned, &tp) && !tp_has(&m->revoking, &tp)) return false;
        }
    }
    return true;
}

int16_t group_consumer_commit_allowed(group_coordinator_t *c, group_t *g,
                                      const proto_offset_commit_request_t *req) {
    int32_t epoch = req->generation_id_or_member_epoch;
    if (epoch < 0 && req->member_id.len <= 0)
        return g->cg && g->cg->members ? PROTO_ERR_UNKNOWN_MEMBER_ID : PROTO_ERR_NONE;
    group_cmember_t *m = g->cg ? group_cg_member(g->cg, req->member_id) : NULL;
    if (!m) return PROTO_ERR_UNKNOWN_MEMBER_ID;
    if (epoch == m->epoch) return PROTO_ERR_NONE;
    if (epoch > m->epoch) return PROTO_ERR_FENCED_MEMBER_EPOCH;
    /* A commit sent before the member learned its new epoch (the heartbeat
     * that moved it raced the commit) is taken when the member still owns
     * every partition it names: its epoch moved only after it released what
     * it lost, so nothing it commits belongs to another member yet. */
    if (epoch == m->prev_epoch && owns_all(c, m, req)) return PROTO_ERR_NONE;
    return PROTO_ERR_STALE_MEMBER_EPOCH;
}

/* A group's consumer.* setting: its dynamic group config (IncrementalAlterConfigs
 * on the GROUP resource, validated within the broker's group.consumer.min/max.*
 * bounds when set), else the broker's group.consumer.* value. */
static int32_t group_setting(group_coordinator_t *c, sm_str_t group, const char *key,
                             int32_t broker_value) {
    char v[32];
    if (!c->host.group_config || !c->host.group_config(c->host.ctx, group, key, v, sizeof(v)))
        return broker_value;
    char *end;
    long x = strtol(v, &end, 10);
    return end != v && !*end && x > 0 && x <= INT32_MAX ? (int32_t)x : broker_value;
}

/* A member's session: its own for a classic member, the group's otherwise. */
static int64_t session_end(int32_t group_session, const group_cmember_t *m) {
    return m->last_seen + (m->nprotocols ? m->session_timeout : group_session);
}

void group_consumer_tick(group_coordinator_t *c, group_shard_t *s, group_t *g, int64_t now,
                         int64_t *next) {
    group_cgroup_t *cg = g->cg;
    if (!cg) return;
    int32_t session =
        group_setting(c, S(g->id), "consumer.session.timeout.ms", c->consumer_session);
    group_cmember_t *first_late = NULL;
    for (group_cmember_t *m = cg->members; m; m = m->next) {
        int64_t exp = session_end(session, m);
        int64_t rev = m->state == CM_UNREVOKED ? m->revoke_deadline : INT64_MAX;
        if (now >= exp || now >= rev) {
            if (!first_late) first_late = m;
        } else if ((exp < rev ? exp : rev) < *next) {
            *next = exp < rev ? exp : rev;
        }
    }
    if (!first_late) return;
    if (group_migrate_can_downgrade(c, g, first_late)) {
        /* The last consumer-protocol member is fenced: classic members remain. */
        sm_info("group", "%s: consumer member %s fenced, the group becomes classic", g->id,
                first_late->id);
        group_migrate_downgrade(c, s, g, first_late);
        return;
    }
    group_cgroup_t *old = group_cg_clone(cg);
    if (!old) return;
    for (group_cmember_t *m = cg->members, *n; m; m = n) {
        n = m->next;
        bool expired = now >= session_end(session, m);
        if (!expired && !(m->state == CM_UNREVOKED && now >= m->revoke_deadline)) continue;
        sm_info("group", "%s: consumer member %s fenced (%s)", g->id, m->id,
                expired ? "session timeout" : "rebalance timeout");
        group_cg_remove(cg, m);
    }
    if (group_cg_refresh(c, cg) == SM_OK) {
        group_cg_commit(c, s, g, old, NULL, 0);
    } else {
        group_consumer_free(g->cg);
        g->cg = old;
    }
}

/* ---------------------------------------------------------------- ConsumerGroupHeartbeat */

static int owned_from(const proto_consumer_group_heartbeat_request_t *req, group_tps_t *out) {
    for (int32_t i = 0; i < req->topic_partitions.n; i++)
        for (int32_t k = 0; k < req->topic_partitions.v[i].partitions.n; k++)
            if (group_tps_add(out, (group_tp_t){req->topic_partitions.v[i].topic_id,
                                                req->topic_partitions.v[i].partitions.v[k]}))
                return SM_ERR_NOMEM;
    group_tps_sort(out);
    return SM_OK;
}

static void fill_assignment(broker_req_t *r, const group_cmember_t *m) {
    proto_consumer_group_heartbeat_response_t *resp = r->resp;
    proto_consumer_group_heartbeat_response_assignment_t *as =
        sm_arena_calloc(&r->arena, 1, sizeof(*as));
    if (!as) return;
    TPS_ARRAY(proto_consumer_group_heartbeat_response_topic_partitions_t, &r->arena, &m->assigned,
              as->topic_partitions);
    resp->assignment = as;
}

char *group_cg_new_member_id(void) {
    uint8_t u[16];
    if (getrandom(u, 16, 0) != 16)
        for (int i = 0; i < 16; i++)
            u[i] = (uint8_t)rand();
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char id[23];
    for (int i = 0; i < 22; i++) {
        int bit = i * 6, byte = bit / 8, off = bit % 8;
        unsigned v = ((unsigned)u[byte] << 8 | (byte + 1 < 16 ? u[byte + 1] : 0)) >> (10 - off);
        id[i] = b64[v & 63];
    }
    id[22] = 0;
    return gs_new(id, 22);
}

/* Applies a join or a heartbeat's fields to m; true when its subscription changed. */
static bool update_member(group_cmember_t *m, const proto_consumer_group_heartbeat_request_t *req) {
    bool changed = false;
    if (req->rebalance_timeout_ms > 0) m->rebalance_timeout = req->rebalance_timeout_ms;
    if (req->rack_id.len >= 0 && !group_streq(m->rack, req->rack_id)) {
        gs_free(m->rack);
        m->rack = group_dupstr(req->rack_id);
    }
    if (req->server_assignor.len >= 0 && !group_streq(m->assignor, req->server_assignor)) {
        gs_free(m->assignor);
        m->assignor = group_dupstr(req->server_assignor);
        changed = true;
    }
    if (req->subscribed_topic_regex.len >= 0 &&
        !group_streq(m->regex, req->subscribed_topic_regex)) {
        gs_free(m->regex);
        sm_regex_free(m->re);
        m->regex = NULL;
        m->re = NULL;
        /* An empty regex ends the regex subscription. */
        if (req->subscribed_topic_regex.len > 0) {
            m->regex = group_dupstr(req->subscribed_topic_regex);
            if (m->regex && sm_regex_compile(m->regex, strlen(m->regex), &m->re)) m->re = NULL;
        }
        changed = true;
    }
    if (req->subscribed_topic_names.n >= 0 && !m->regex) {
        bool same = req->subscribed_topic_names.n == m->ntopics;
        for (int32_t i = 0; same && i < m->ntopics; i++)
            same = group_streq(m->topics[i], req->subscribed_topic_names.v[i]);
        if (!same) {
            for (int i = 0; i < m->ntopics; i++)
                gs_free(m->topics[i]);
            free(m->topics);
            m->ntopics = 0;
            m->topics = calloc((size_t)req->subscribed_topic_names.n + 1, sizeof(char *));
            for (int32_t i = 0; m->topics && i < req->subscribed_topic_names.n; i++)
                if ((m->topics[m->ntopics] = group_dupstr(req->subscribed_topic_names.v[i])))
                    m->ntopics++;
            changed = true;
        }
    }
    return changed;
}

/* True for a null, empty or all-whitespace string (Kafka trims). */
static bool blank(sm_str_t v) {
    for (int32_t i = 0; i < v.len; i++)
        if (v.ptr[i] > ' ') return false;
    return true;
}

/* Checks the request's shape: Kafka 4.4's checks, in its order, with its
 * messages (why[cap]). From v1 the member makes its own id (KIP-1082), so a
 * join without one is refused too. */
static int16_t validate(group_coordinator_t *c, int16_t version,
                        const proto_consumer_group_heartbeat_request_t *req, char *why,
                        size_t cap) {
    const char *msg = NULL;
    int16_t err = PROTO_ERR_INVALID_REQUEST;
    int32_t epoch = req->member_epoch;
    if ((version >= 1 || epoch > 0 || epoch == -1) && blank(req->member_id))
        msg = "MemberId can't be empty.";
    else if (blank(req->group_id))
        msg = "GroupId can't be empty.";
    else if (req->instance_id.len >= 0 && blank(req->instance_id))
        msg = "InstanceId can't be empty.";
    else if (req->rack_id.len >= 0 && blank(req->rack_id))
        msg = "RackId can't be empty.";
    else if (epoch == 0 && req->rebalance_timeout_ms == -1)
        msg = "RebalanceTimeoutMs must be provided in first request.";
    else if (epoch == 0 && req->topic_partitions.n > 0)
        msg = "TopicPartitions must be empty when (re-)joining.";
    else if (epoch == 0 && req->subscribed_topic_names.n < 0 && req->subscribed_topic_regex.len < 0)
        msg = "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when "
              "(re-)joining.";
    else if (epoch == -2 && req->instance_id.len < 0)
        msg = "InstanceId can't be null.";
    else if (epoch < -2)
        msg = "MemberEpoch is invalid.";
    if (msg) {
        snprintf(why, cap, "%s", msg);
        return err;
    }
    if (req->server_assignor.len >= 0) {
        bool known = false;
        for (int i = 0; i < c->nassignors && !known; i++)
            known = group_streq(c->assignors[i], req->server_assignor);
        if (!known) {
            snprintf(why, cap, "ServerAssignor %.*s is not supported. Supported assignors: %s%s%s.",
                     req->server_assignor.len > 100 ? 100 : (int)req->server_assignor.len,
                     req->server_assignor.ptr ? req->server_assignor.ptr : "", c->assignors[0],
                     c->nassignors > 1 ? ", " : "", c->nassignors > 1 ? c->assignors[1] : "");
            return PROTO_ERR_UNSUPPORTED_ASSIGNOR;
        }
    }
    if (req->subscribed_topic_regex.len > 0) {
        sm_regex_t *re;
        if (sm_regex_compile(req->subscribed_topic_regex.ptr,
                             (size_t)req->subscribed_topic_regex.len, &re)) {
            snprintf(why, cap, "SubscribedTopicRegex is not a valid regular expression.");
            return PROTO_ERR_INVALID_REGULAR_EXPRESSION;
        }
        sm_regex_free(re);
    }
    return PROTO_ERR_NONE;
}

static void heartbeat_answer(broker_req_t *r, int16_t err) {
    proto_consumer_group_heartbeat_response_t *resp = r->resp;
    if (err) {
        resp->error_code = err;
        resp->assignment = NULL;
    }
    broker_req_finish(r);
}

/* The member the heartbeat speaks for (created on a join), or NULL with *err. */
static group_cmember_t *heartbeat_member(group_coordinator_t *c, group_cgroup_t *cg,
                                         broker_req_t *r,
                                         const proto_consumer_group_heartbeat_request_t *req,
                                         int16_t *err) {
    group_cmember_t *m = req->member_id.len > 0 ? group_cg_member(cg, req->member_id) : NULL;
    if (req->member_epoch == 0) {
        group_cmember_t *old = group_cg_member_by_instance(cg, req->instance_id);
        if (old && old != m) {
            /* KIP-345 for consumer groups: a static member rejoining replaces
             * its former incarnation only once that one left (epoch -2). */
            if (old->epoch != -2) {
                *err = PROTO_ERR_UNRELEASED_INSTANCE_ID;
                return NULL;
            }
            gs_free(old->id);
            old->id =
                req->member_id.len > 0 ? group_dupstr(req->member_id) : group_cg_new_member_id();
            old->epoch = old->prev_epoch = 0;
            old->state = CM_STABLE;
            old->assigned.n = old->revoking.n = 0;
            old->send_assignment = true;
            return old;
        }
        if (m) {
            /* A rejoin of a known member: it starts over. */
            m->epoch = 0;
            m->assigned.n = m->revoking.n = 0;
            m->state = CM_STABLE;
            m->send_assignment = true;
            return m;
        }
        if (cg->nmembers >= c->consumer_max_size) {
            *err = PROTO_ERR_GROUP_MAX_SIZE_REACHED;
            return NULL;
        }
        m = calloc(1, sizeof(*m));
        if (!m || !(m->id = req->member_id.len > 0 ? group_dupstr(req->member_id)
                                                   : group_cg_new_member_id())) {
            free(m);
            *err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
            return NULL;
        }
        m->instance_id = group_dupstr(req->instance_id);
        group_client_of(r, &m->client_id, &m->client_host);
        m->send_assignment = true;
        m->next = cg->members;
        cg->members = m;
        cg->nmembers++;
        cg->epoch++;
        return m;
    }
    if (!m) {
        *err = PROTO_ERR_UNKNOWN_MEMBER_ID;
        return NULL;
    }
    if (req->member_epoch == -1 || req->member_epoch == -2) return m;
    /* The previous epoch is accepted when the member missed our answer and
     * owns nothing beyond its assignment. */
    if (req->member_epoch != m->epoch && req->member_epoch != m->prev_epoch) {
        *err = PROTO_ERR_FENCED_MEMBER_EPOCH;
        return NULL;
    }
    return m;
}

int broker_handle_consumer_group_heartbeat(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_consumer_group_heartbeat_request_t *req = broker_body(r);
    proto_consumer_group_heartbeat_response_t *resp = r->resp;
    const char *why = NULL;
    char invalid[300];
    resp->member_id = SM_STR_NULL;
    resp->heartbeat_interval_ms =
        group_setting(c, req->group_id, "consumer.heartbeat.interval.ms", c->consumer_heartbeat);
    int16_t err = validate(c, r->version, req, invalid, sizeof(invalid));
    if (err) {
        resp->error_code = err;
        resp->error_message = sm_arena_str(&r->arena, invalid);
        return BROKER_RESPOND;
    }
    group_shard_t *s = group_shard_for(c, req->group_id);
    pthread_mutex_lock(&s->mu);
    err = group_shard_error(s);
    group_t *g = err ? NULL : group_get_or_create(s, req->group_id);
    if (!err && !g) err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
    if (!err && !g->cg) {
        /* A classic group with members converts online when the policy
         * allows it (KIP-848); an empty one just changes type. */
        if (g->members || g->state != GROUP_EMPTY) {
            err = group_migrate_upgrade(c, s, g);
            if (err == PROTO_ERR_GROUP_ID_NOT_FOUND) {
                snprintf(invalid, sizeof(invalid), "Group %.*s is not a consumer group.",
                         req->group_id.len > 250 ? 250 : (int)req->group_id.len, req->group_id.ptr);
                why = invalid;
            }
        } else if (!(g->cg = calloc(1, sizeof(*g->cg)))) {
            err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    group_cgroup_t *old = err ? NULL : group_cg_clone(g->cg);
    if (!err && !old) err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
    group_cmember_t *m = err ? NULL : heartbeat_member(c, g->cg, r, req, &err);
    if (m && !err && req->member_epoch == -1 && group_migrate_can_downgrade(c, g, m)) {
        /* The last consumer-protocol member leaves: classic members remain. */
        resp->member_epoch = -1;
        resp->member_id = gs_arena(r, m->id);
        group_consumer_free(old);
        err = group_migrate_downgrade(c, s, g, m);
        resp->error_code = err;
        group_answer_after(c, s, err ? 0 : g->write_end, r, heartbeat_answer);
        pthread_mutex_unlock(&s->mu);
        return BROKER_PARKED;
    }
    group_tps_t owned = {0};
    bool has_owned = req->topic_partitions.n >= 0;
    if (m && has_owned && owned_from(req, &owned)) err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
    if (m && !err) {
        m->last_seen = group_now_ms();
        if (req->member_epoch == -1 || req->member_epoch == -2) {
            /* Leaving: a static member (-2) keeps its place for its session. */
            resp->member_epoch = req->member_epoch;
            resp->member_id = gs_arena(r, m->id);
            if (req->member_epoch == -2 && m->instance_id) {
                m->epoch = -2;
                m->assigned.n = m->revoking.n = 0;
            } else {
                group_cg_remove(g->cg, m);
            }
            m = NULL;
        } else if (update_member(m, req)) {
            g->cg->epoch++;
        }
        if (group_cg_refresh(c, g->cg)) err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        /* Only the member that heartbeats moves (it learns its new epoch in
         * this answer); the others move at their own heartbeats. */
        if (!err && m) group_cg_reconcile(g->cg, m, has_owned ? &owned : NULL);
    }
    free(owned.v);
    if (!err && old) {
        err = group_cg_commit(c, s, g, old, NULL, 0);
        old = NULL;
        if (err) m = NULL;
    } else if (old) {
        group_consumer_free(g->cg);
        g->cg = old;
        m = NULL;
    }
    if (m && !err) {
        resp->member_id = gs_arena(r, m->id);
        resp->member_epoch = m->epoch;
        if (m->send_assignment || req->member_epoch == 0 || has_owned) fill_assignment(r, m);
        m->send_assignment = false;
    }
    resp->error_code = err;
    if (err && why) resp->error_message = sm_arena_str(&r->arena, why);
    if (err) resp->member_epoch = -1;
    group_answer_after(c, s, err || !g ? 0 : g->write_end, r, heartbeat_answer);
    pthread_mutex_unlock(&s->mu);
    return BROKER_PARKED;
}

/* ---------------------------------------------------------------- loading */

static group_cgroup_t *load_cgroup(group_shard_t *s, sm_str_t gid, group_t **gp) {
    group_t *g = group_get_or_create(s, gid);
    *gp = g;
    if (g && !g->cg) g->cg = calloc(1, sizeof(*g->cg));
    return g ? g->cg : NULL;
}

static group_cmember_t *load_member(group_cgroup_t *cg, sm_str_t mid) {
    group_cmember_t *m = group_cg_member(cg, mid);
    if (m) return m;
    m = calloc(1, sizeof(*m));
    if (!m || !(m->id = group_dupstr(mid))) {
        free(m);
        return NULL;
    }
    /* Its session starts over at load: it expires unless it heartbeats. */
    m->last_seen = group_now_ms();
    m->next = cg->members;
    cg->members = m;
    cg->nmembers++;
    return m;
}

static void load_tps(group_tps_t *out, const sm_uuid_t *ids, const sm_i32_array_t *parts, int32_t n,
                     size_t stride) {
    out->n = 0;
    for (int32_t i = 0; i < n; i++) {
        const sm_uuid_t *id = (const sm_uuid_t *)((const char *)ids + (size_t)i * stride);
        const sm_i32_array_t *pa =
            (const sm_i32_array_t *)((const char *)parts + (size_t)i * stride);
        for (int32_t k = 0; k < pa->n; k++)
            group_tps_add(out, (group_tp_t){*id, pa->v[k]});
    }
    group_tps_sort(out);
}

#define LOAD_TPS(out, arr)                                                                         \
    load_tps((out), &(arr).v[0].topic_id, &(arr).v[0].partitions, (arr).n, sizeof(*(arr).v))

/* A member's records: a tombstone of its metadata removes it. */
static void load_member_record(group_shard_t *s, int16_t kv, sm_str_t gid, sm_str_t mid,
                               sm_reader_t *vr, bool tomb, sm_arena_t *a) {
    group_t *g;
    group_cgroup_t *cg = load_cgroup(s, gid, &g);
    if (!cg) return;
    group_cmember_t *m = group_cg_member(cg, mid);
    if (tomb) {
        if (m && kv == 5) cmember_unlink(cg, m);
        return;
    }
    if (!m && !(m = load_member(cg, mid))) return;
    if (kv == 5) {
        proto_consumer_group_member_metadata_value_t v;
        if (proto_consumer_group_member_metadata_value_decode(vr, a, 0, &v)) return;
        gs_free(m->instance_id);
        gs_free(m->rack);
        gs_free(m->client_id);
        gs_free(m->client_host);
        gs_free(m->assignor);
        m->instance_id = group_dupstr(v.instance_id);
        m->rack = group_dupstr(v.rack_id);
        m->client_id = group_dupstr(v.client_id);
        m->client_host = group_dupstr(v.client_host);
        m->assignor = group_dupstr(v.server_assignor);
        m->rebalance_timeout = v.rebalance_timeout_ms;
        group_protocols_free(m->protocols, m->nprotocols);
        m->protocols = NULL;
        m->nprotocols = 0;
        const proto_consumer_group_member_metadata_value_classic_member_metadata_t *cm =
            v.classic_member_metadata;
        if (cm && cm->supported_protocols.n > 0 &&
            (m->protocols = calloc((size_t)cm->supported_protocols.n, sizeof(*m->protocols)))) {
            m->session_timeout = cm->session_timeout_ms;
            for (int32_t i = 0; i < cm->supported_protocols.n; i++, m->nprotocols++) {
                sm_bytes_t b = cm->supported_protocols.v[i].metadata;
                int32_t bl = b.len > 0 ? b.len : 0;
                m->protocols[i].name = group_dupstr(cm->supported_protocols.v[i].name);
                m->protocols[i].meta = malloc((size_t)bl + 1);
                if (m->protocols[i].meta && bl) memcpy(m->protocols[i].meta, b.ptr, (size_t)bl);
                m->protocols[i].meta_len = m->protocols[i].meta ? bl : 0;
            }
        }
        gs_free(m->regex);
        sm_regex_free(m->re);
        m->re = NULL;
        m->regex = v.subscribed_topic_regex.len > 0 ? group_dupstr(v.subscribed_topic_regex) : NULL;
        if (m->regex && sm_regex_compile(m->regex, strlen(m->regex), &m->re)) m->re = NULL;
        for (int i = 0; i < m->ntopics; i++)
            gs_free(m->topics[i]);
        free(m->topics);
        m->ntopics = 0;
        m->topics =
            calloc((size_t)(v.subscribed_topic_names.n > 0 ? v.subscribed_topic_names.n : 0) + 1,
                   sizeof(char *));
        for (int32_t i = 0; m->topics && i < v.subscribed_topic_names.n; i++)
            if ((m->topics[m->ntopics] = group_dupstr(v.subscribed_topic_names.v[i]))) m->ntopics++;
    } else if (kv == 7) {
        proto_consumer_group_target_assignment_member_value_t v;
        if (proto_consumer_group_target_assignment_member_value_decode(vr, a, 0, &v)) return;
        if (v.topic_partitions.n > 0)
            LOAD_TPS(&m->target, v.topic_partitions);
        else
            m->target.n = 0;
    } else if (kv == 8) {
        proto_consumer_group_current_member_assignment_value_t v;
        if (proto_consumer_group_current_member_assignment_value_decode(vr, a, 0, &v)) return;
        m->epoch = v.member_epoch;
        m->prev_epoch = v.previous_member_epoch;
        m->state = v.state;
        if (v.assigned_partitions.n > 0)
            LOAD_TPS(&m->assigned, v.assigned_partitions);
        else
            m->assigned.n = 0;
        if (v.partitions_pending_revocation.n > 0)
            LOAD_TPS(&m->revoking, v.partitions_pending_revocation);
        else
            m->revoking.n = 0;
        if (m->state == CM_UNREVOKED) m->revoke_deadline = group_now_ms() + m->rebalance_timeout;
    }
}

void group_consumer_loaded(group_t *g, int64_t now) {
    for (group_cmember_t *m = g->cg ? g->cg->members : NULL; m; m = m->next) {
        m->last_seen = now;
        if (m->state == CM_UNREVOKED) m->revoke_deadline = now + m->rebalance_timeout;
    }
}

void group_consumer_load(group_shard_t *s, int16_t kv, sm_reader_t *kr, sm_bytes_t value,
                         sm_arena_t *a) {
    bool tomb = value.len < 0;
    sm_reader_t vr = sm_reader_make(value.ptr, tomb ? 0 : (size_t)value.len);
    int16_t vv;
    if (!tomb && sm_rd_i16(&vr, &vv)) return;
    if (kv == 3 || kv == 6) {
        sm_str_t gid;
        if (kv == 3) {
            proto_consumer_group_metadata_key_t k;
            if (proto_consumer_group_metadata_key_decode(kr, a, 0, &k)) return;
            gid = k.group_id;
        } else {
            proto_consumer_group_target_assignment_metadata_key_t k;
            if (proto_consumer_group_target_assignment_metadata_key_decode(kr, a, 0, &k)) return;
            gid = k.group_id;
        }
        group_t *g;
        group_cgroup_t *cg = load_cgroup(s, gid, &g);
        if (!cg) return;
        if (tomb) {
            if (kv != 3) return;
            /* The consumer group is gone (deleted, or downgraded: a classic
             * GroupMetadata record follows); its offsets stay. */
            group_consumer_free(g->cg);
            g->cg = NULL;
            if (!sm_map_size(&g->offsets) && !g->protocol_type) group_remove(s, g);
            return;
        }
        if (kv == 3) {
            proto_consumer_group_metadata_value_t v;
            if (proto_consumer_group_metadata_value_decode(&vr, a, 0, &v) == SM_OK)
                cg->epoch = v.epoch, cg->topics_hash = (uint64_t)v.metadata_hash;
        } else {
            proto_consumer_group_target_assignment_metadata_value_t v;
            if (proto_consumer_group_target_assignment_metadata_value_decode(&vr, a, 0, &v) ==
                SM_OK)
                cg->assignment_epoch = v.assignment_epoch;
        }
    } else if (kv == 5 || kv == 7 || kv == 8) {
        sm_str_t gid, mid;
        if (kv == 5) {
            proto_consumer_group_member_metadata_key_t k;
            if (proto_consumer_group_member_metadata_key_decode(kr, a, 0, &k)) return;
            gid = k.group_id, mid = k.member_id;
        } else if (kv == 7) {
            proto_consumer_group_target_assignment_member_key_t k;
            if (proto_consumer_group_target_assignment_member_key_decode(kr, a, 0, &k)) return;
            gid = k.group_id, mid = k.member_id;
        } else {
            proto_consumer_group_current_member_assignment_key_t k;
            if (proto_consumer_group_current_member_assignment_key_decode(kr, a, 0, &k)) return;
            gid = k.group_id, mid = k.member_id;
        }
        load_member_record(s, kv, gid, mid, &vr, tomb, a);
    }
}

/* ---------------------------------------------------------------- ConsumerGroupDescribe */

/* A partition set as the answer's assignment, topic names from the members'
 * subscriptions (a partition of a topic no member subscribes to any more
 * keeps an empty name). */
static proto_consumer_group_describe_response_assignment_t *
describe_assignment(broker_req_t *r, group_coordinator_t *c, const group_cgroup_t *cg,
                    const group_tps_t *set) {
    proto_consumer_group_describe_response_assignment_t *as =
        sm_arena_calloc(&r->arena, 1, sizeof(*as));
    if (!as) return NULL;
    TPS_ARRAY(proto_consumer_group_describe_response_topic_partitions_t, &r->arena, set,
              as->topic_partitions);
    for (int32_t i = 0; i < as->topic_partitions.n; i++) {
        proto_consumer_group_describe_response_topic_partitions_t *t = &as->topic_partitions.v[i];
        t->topic_name = SM_STR_LIT("");
        for (const group_cmember_t *m = cg->members; m && !t->topic_name.len; m = m->next)
            for (int k = 0; k < m->ntopics; k++) {
                sm_uuid_t id;
                int32_t n;
                if (c->host.topic(c->host.ctx, S(m->topics[k]), &id, &n) &&
                    !memcmp(id.b, t->topic_id.b, 16)) {
                    t->topic_name = sm_arena_str(&r->arena, m->topics[k]);
                    break;
                }
            }
    }
    return as;
}

static void describe_cgroup(broker_req_t *r, group_coordinator_t *c, const group_t *g,
                            proto_consumer_group_describe_response_described_group_t *o) {
    const group_cgroup_t *cg = g->cg;
    o->group_state = sm_arena_str(&r->arena, group_consumer_state(g));
    o->group_epoch = cg->epoch;
    o->assignment_epoch = cg->assignment_epoch;
    o->assignor_name = sm_arena_str(&r->arena, group_assignor_preferred(c, cg));
    o->members.v = sm_arena_calloc(&r->arena, (size_t)cg->nmembers + 1, sizeof(*o->members.v));
    int k = 0;
    for (const group_cmember_t *m = cg->members; o->members.v && m; m = m->next, k++) {
        proto_consumer_group_describe_response_member_t *d = &o->members.v[k];
        d->member_id = gs_arena(r, m->id);
        d->instance_id = gs_arena(r, m->instance_id);
        d->rack_id = gs_arena(r, m->rack);
        d->member_epoch = m->epoch;
        d->client_id = m->client_id ? gs_arena(r, m->client_id) : SM_STR_LIT("");
        d->client_host = m->client_host ? gs_arena(r, m->client_host) : SM_STR_LIT("");
        sm_str_t *names = sm_arena_calloc(&r->arena, (size_t)m->ntopics + 1, sizeof(*names));
        for (int i = 0; names && i < m->ntopics; i++)
            names[i] = sm_arena_str(&r->arena, m->topics[i]);
        d->subscribed_topic_names = (sm_str_array_t){names ? m->ntopics : 0, names};
        d->subscribed_topic_regex = gs_arena(r, m->regex);
        /* Kafka's current assignment counts the partitions being revoked. */
        group_tps_t cur = {0};
        if (tp_copy(&cur, &m->assigned) == SM_OK) {
            for (int i = 0; i < m->revoking.n; i++)
                group_tps_add(&cur, m->revoking.v[i]);
            group_tps_sort(&cur);
        }
        d->assignment = describe_assignment(r, c, cg, &cur);
        free(cur.v);
        d->member_type = m->nprotocols ? 0 : 1; /* KIP-1099: classic 0, consumer 1 */
        d->target_assignment = describe_assignment(r, c, cg, &m->target);
    }
    o->members.n = o->members.v ? k : 0;
}

int broker_handle_consumer_group_describe(broker_req_t *r) {
    group_coordinator_t *c = r->b->groups;
    proto_consumer_group_describe_request_t *req = broker_body(r);
    proto_consumer_group_describe_response_t *resp = r->resp;
    int32_t n = req->group_ids.n > 0 ? req->group_ids.n : 0;
    resp->groups.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->groups.v));
    if (!resp->groups.v) return BROKER_CLOSE;
    resp->groups.n = n;
    for (int32_t i = 0; i < n; i++) {
        proto_consumer_group_describe_response_described_group_t *o = &resp->groups.v[i];
        sm_str_t id = req->group_ids.v[i];
        o->group_id = id;
        o->authorized_operations = INT32_MIN;
        o->group_state = SM_STR_LIT("Dead");
        o->assignor_name = SM_STR_LIT("");
        group_shard_t *s = group_shard_for(c, id);
        pthread_mutex_lock(&s->mu);
        o->error_code = group_shard_error(s);
        group_t *g = o->error_code ? NULL : group_get(s, id);
        if (g && g->cg) {
            describe_cgroup(r, c, g, o);
        } else if (!o->error_code) {
            char msg[300];
            snprintf(msg, sizeof(msg),
                     g ? "Group %.*s is not a consumer group." : "Group %.*s not found.",
                     id.len > 250 ? 250 : (id.len > 0 ? (int)id.len : 0), id.ptr ? id.ptr : "");
            o->error_code = PROTO_ERR_GROUP_ID_NOT_FOUND;
            o->error_message = sm_arena_str(&r->arena, msg);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return BROKER_RESPOND;
}
