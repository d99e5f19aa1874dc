/*
 * The server-side assignors of consumer groups (KIP-848): `uniform` and
 * `range`, rack-aware, and the subscribed-topic metadata they read (topic
 * ids, partition counts, the racks of every partition's replicas). Pure
 * computation over a group under its shard's lock: no records, no answers
 * (consumer.c persists and reconciles what they produce).
 *
 * Properties, in priority order (as KIP-881 set them for the client
 * assignors and Kafka's server-side rack work keeps them):
 *  1. Validity: every partition of every subscribed topic that exists goes
 *     to exactly one member subscribed to it.
 *  2. Balance: uniform gives members sizes within one of each other when
 *     they share one subscription; range gives each topic's subscribers
 *     contiguous counts (the first partitions % subscribers one more).
 *  3. Rack alignment: when some member's rack (ConsumerGroupHeartbeat
 *     RackId) is the rack of some replica, and the partitions do not all
 *     have the same replica racks, a partition goes to a member of one of
 *     its replicas' racks where the balance allows it.
 *  4. Stickiness (uniform): a member keeps what its previous target gave it
 *     where 1-3 allow.
 * Kafka 4.4's own uniform and range ignore racks (its assignors were made
 * rack-unaware in 3.8; 4.1 re-added racks to the metadata hash only, KIP-1101):
 * without racks, or with every partition on the same racks (a single node),
 * the assignments here are the same as without rack-awareness.
 */
#include <stdlib.h>
#include <string.h>

#include "group/group_impl.h"

#define S group_S
#define MAX_RACKS 64 /* partition racks tracked as a 64-bit mask; more disables alignment */

typedef struct topic_view {
    char *name;
    sm_uuid_t id;
    int32_t partitions;
    uint64_t *racks; /* per partition: bit r = some replica is in rack r */
} topic_view_t;

/* The distinct replica racks of the subscribed topics. */
typedef struct rack_table {
    char *names[MAX_RACKS];
    int n;
    bool overflow; /* more than MAX_RACKS racks: alignment is off */
} rack_table_t;

typedef struct racks_scan {
    rack_table_t *rt;
    topic_view_t *t;
} racks_scan_t;

static void rack_visit(void *arg, int32_t p, sm_str_t rack) {
    racks_scan_t *rs = arg;
    rack_table_t *rt = rs->rt;
    if (p < 0 || p >= rs->t->partitions || rack.len <= 0) return;
    int i = 0;
    while (i < rt->n && !group_streq(rt->names[i], rack))
        i++;
    if (i == rt->n) {
        if (rt->n == MAX_RACKS || !(rt->names[rt->n] = group_dupstr(rack))) {
            rt->overflow = true;
            return;
        }
        rt->n++;
    }
    rs->t->racks[p] |= 1ull << i;
}

static void topics_free(topic_view_t *t, int nt, rack_table_t *rt) {
    for (int i = 0; t && i < nt; i++)
        free(t[i].racks);
    free(t);
    for (int i = 0; i < rt->n; i++)
        gs_free(rt->names[i]);
    rt->n = 0;
}

static bool subscribes(const group_cmember_t *m, const char *topic) {
    for (int i = 0; i < m->ntopics; i++)
        if (strcmp(m->topics[i], topic) == 0) return true;
    return false;
}

/* FNV-1a over a value's bytes. */
static uint64_t mix(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* The subscribed topics that exist, sorted by name, with their partitions'
 * replica racks, and the group's metadata hash over the topics' ids,
 * partition counts and racks (a change bumps the group epoch, KIP-1101). */
static int subscribed_topics(group_coordinator_t *c, group_cgroup_t *cg, topic_view_t **out, int *n,
                             rack_table_t *rt, uint64_t *hash) {
    int cap = 0, cnt = 0;
    topic_view_t *v = NULL;
    for (group_cmember_t *m = cg->members; m; m = m->next)
        for (int i = 0; i < m->ntopics; i++) {
            bool seen = false;
            for (int k = 0; k < cnt && !seen; k++)
                seen = strcmp(v[k].name, m->topics[i]) == 0;
            if (seen) continue;
            topic_view_t t = {m->topics[i], {{0}}, 0, NULL};
            if (!c->host.topic(c->host.ctx, S(m->topics[i]), &t.id, &t.partitions)) continue;
            if (cnt == cap) {
                cap = cap ? cap * 2 : 8;
                topic_view_t *nv = realloc(v, (size_t)cap * sizeof(*v));
                if (!nv) goto nomem;
                v = nv;
            }
            t.racks = calloc((size_t)t.partitions + 1, sizeof(uint64_t));
            if (!t.racks) goto nomem;
            v[cnt++] = t;
            racks_scan_t rs = {rt, &v[cnt - 1]};
            if (c->host.partition_racks)
                c->host.partition_racks(c->host.ctx, &t.id, rack_visit, &rs);
        }
    for (int i = 1; i < cnt; i++)
        for (int k = i; k > 0 && strcmp(v[k - 1].name, v[k].name) > 0; k--) {
            topic_view_t t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < cnt; i++) {
        h = mix(h, v[i].id.b, 16);
        h = mix(h, &v[i].partitions, sizeof(v[i].partitions));
        for (int32_t p = 0; p < v[i].partitions; p++)
            for (int r = 0; r < rt->n; r++)
                if (v[i].racks[p] >> r & 1)
                    h = mix(h, rt->names[r], (size_t)gs_len(rt->names[r]) + 1);
    }
    *out = v;
    *n = cnt;
    *hash = h;
    return SM_OK;
nomem:
    topics_free(v, cnt, rt);
    return SM_ERR_NOMEM;
}

/* A member's rack as a rack table index; -1 when it has none or no replica is there. */
static int member_rack(const rack_table_t *rt, const group_cmember_t *m) {
    for (int i = 0; m->rack && i < rt->n; i++)
        if (gs_eq(rt->names[i], m->rack)) return i;
    return -1;
}

/* Alignment is on when a member is in a replica's rack and the partitions'
 * rack sets differ (otherwise every member is as good as any other). */
static bool rack_aware(const rack_table_t *rt, const int *mrack, int nm, const topic_view_t *t,
                       int nt) {
    if (rt->overflow || rt->n == 0) return false;
    bool member = false;
    for (int k = 0; k < nm && !member; k++)
        member = mrack[k] >= 0;
    if (!member) return false;
    uint64_t first = 0;
    bool have = false;
    for (int i = 0; i < nt; i++)
        for (int32_t p = 0; p < t[i].partitions; p++) {
            if (have && t[i].racks[p] != first) return true;
            first = t[i].racks[p];
            have = true;
        }
    return false;
}

/* True when member rack r is among a partition's replica racks. */
static bool rack_match(int r, uint64_t racks) { return r >= 0 && (racks >> r & 1); }

/* Range: per topic, its subscribers in member id order get counts of
 * partitions / subscribers (the first partitions % subscribers one more);
 * aligned, each first takes the partitions of its rack in partition order,
 * then every one fills its count with the lowest partitions left, so
 * without alignment the counts are contiguous ranges. */
static int assign_range(group_cmember_t **ms, const int *mrack, int nm, const topic_view_t *t,
                        int nt, bool aligned) {
    int *subs = calloc((size_t)nm + 1, sizeof(*subs));
    int32_t *got = calloc((size_t)nm + 1, sizeof(*got));
    int rc = subs && got ? SM_OK : SM_ERR_NOMEM;
    for (int i = 0; rc == SM_OK && i < nt; i++) {
        int ns = 0;
        for (int k = 0; k < nm; k++)
            if (subscribes(ms[k], t[i].name)) subs[ns++] = k;
        if (!ns) continue;
        uint8_t *taken = calloc((size_t)t[i].partitions + 1, 1);
        if (!taken) {
            rc = SM_ERR_NOMEM;
            break;
        }
        int32_t per = t[i].partitions / ns, extra = t[i].partitions % ns;
        for (int s = 0; s < ns; s++)
            got[s] = 0;
        for (int pass = aligned ? 0 : 1; pass < 2; pass++)
            for (int s = 0; s < ns; s++) {
                int k = subs[s];
                int32_t want = per + (s < extra ? 1 : 0);
                for (int32_t p = 0; p < t[i].partitions && got[s] < want; p++) {
                    if (taken[p] || (pass == 0 && !rack_match(mrack[k], t[i].racks[p]))) continue;
                    taken[p] = 1;
                    got[s]++;
                    if (group_tps_add(&ms[k]->target, (group_tp_t){t[i].id, p})) rc = SM_ERR_NOMEM;
                }
            }
        free(taken);
    }
    free(subs);
    free(got);
    return rc;
}

/* Uniform's quotas: every member may hold floor partitions, `extra` of them
 * one more; a member takes an extra slot when it first goes past floor. */
typedef struct quota {
    int32_t floor, extra;
    uint8_t *has_extra;
} quota_t;

static bool quota_room(const quota_t *q, const group_cmember_t *m, int k) {
    return m->target.n < q->floor || (m->target.n == q->floor && (q->has_extra[k] || q->extra > 0));
}

static int quota_give(quota_t *q, group_cmember_t *m, int k, group_tp_t tp) {
    if (m->target.n == q->floor && !q->has_extra[k]) {
        q->has_extra[k] = 1;
        q->extra--;
    }
    return group_tps_add(&m->target, tp);
}

/* The topic view of tp, or NULL when its topic is gone or tp is past its partitions. */
static const topic_view_t *view_of(const topic_view_t *t, int nt, const group_tp_t *tp) {
    for (int i = 0; i < nt; i++)
        if (memcmp(t[i].id.b, tp->topic.b, 16) == 0) return tp->p < t[i].partitions ? &t[i] : NULL;
    return NULL;
}

/* Uniform: balanced, rack-aligned, sticky. Each member keeps what its
 * previous target gave it up to its quota (aligned: except partitions of
 * other racks than its own); then, aligned, every partition left goes to the
 * least loaded member of one of its racks with room; then what remains goes
 * back to its previous owner when it has room, else to the least loaded
 * subscriber with room, else to the least loaded subscriber (ties by member
 * id). */
static int assign_uniform(group_cmember_t **ms, const int *mrack, int nm, const topic_view_t *t,
                          int nt, group_tps_t *prev, bool aligned) {
    int32_t total = 0;
    for (int i = 0; i < nt; i++)
        total += t[i].partitions;
    quota_t q = {nm ? total / nm : 0, nm ? total % nm : 0, calloc((size_t)nm + 1, 1)};
    /* owner[i][p]: the member index holding the partition, -1 none; prev_owner likewise. */
    int **owner = calloc((size_t)nt + 1, sizeof(*owner));
    int **prev_owner = calloc((size_t)nt + 1, sizeof(*prev_owner));
    int rc = q.has_extra && owner && prev_owner ? SM_OK : SM_ERR_NOMEM;
    for (int i = 0; rc == SM_OK && i < nt; i++) {
        owner[i] = malloc(((size_t)t[i].partitions + 1) * sizeof(int));
        prev_owner[i] = malloc(((size_t)t[i].partitions + 1) * sizeof(int));
        if (!owner[i] || !prev_owner[i]) rc = SM_ERR_NOMEM;
        for (int32_t p = 0; rc == SM_OK && p < t[i].partitions; p++)
            owner[i][p] = prev_owner[i][p] = -1;
    }
    /* Keep. */
    for (int k = 0; rc == SM_OK && k < nm; k++)
        for (int j = 0; j < prev[k].n; j++) {
            const group_tp_t *tp = &prev[k].v[j];
            const topic_view_t *tv = view_of(t, nt, tp);
            if (!tv || !subscribes(ms[k], tv->name)) continue;
            int i = (int)(tv - t);
            if (prev_owner[i][tp->p] < 0) prev_owner[i][tp->p] = k;
            /* Two previous targets never share; loaded ones might. */
            if (owner[i][tp->p] >= 0 || !quota_room(&q, ms[k], k)) continue;
            if (aligned && mrack[k] >= 0 && tv->racks[tp->p] &&
                !rack_match(mrack[k], tv->racks[tp->p]))
                continue;
            owner[i][tp->p] = k;
            if (quota_give(&q, ms[k], k, *tp)) rc = SM_ERR_NOMEM;
        }
    for (int pass = aligned ? 0 : 1; rc == SM_OK && pass < 2; pass++)
        for (int i = 0; i < nt; i++)
            for (int32_t p = 0; p < t[i].partitions; p++) {
                if (owner[i][p] >= 0) continue;
                int best = -1;
                if (pass == 0) {
                    for (int k = 0; k < nm; k++)
                        if (rack_match(mrack[k], t[i].racks[p]) && subscribes(ms[k], t[i].name) &&
                            quota_room(&q, ms[k], k) &&
                            (best < 0 || ms[k]->target.n < ms[best]->target.n))
                            best = k;
                    if (best < 0) continue;
                } else {
                    int po = prev_owner[i][p];
                    bool kept = po >= 0 && quota_room(&q, ms[po], po);
                    if (kept) best = po;
                    for (int k = 0; !kept && k < nm; k++)
                        if (subscribes(ms[k], t[i].name) && quota_room(&q, ms[k], k) &&
                            (best < 0 || ms[k]->target.n < ms[best]->target.n))
                            best = k;
                    for (int k = 0; best < 0 && k < nm; k++)
                        if (subscribes(ms[k], t[i].name)) best = k;
                    for (int k = best + 1; best >= 0 && !quota_room(&q, ms[best], best) && k < nm;
                         k++)
                        if (subscribes(ms[k], t[i].name) && ms[k]->target.n < ms[best]->target.n)
                            best = k;
                    if (best < 0) continue;
                }
                owner[i][p] = best;
                if (quota_give(&q, ms[best], best, (group_tp_t){t[i].id, p})) rc = SM_ERR_NOMEM;
            }
    for (int i = 0; i < nt; i++) {
        if (owner) free(owner[i]);
        if (prev_owner) free(prev_owner[i]);
    }
    free(owner);
    free(prev_owner);
    free(q.has_extra);
    return rc;
}

static int member_id_cmp(const void *a, const void *b) {
    return gs_cmp((*(group_cmember_t *const *)a)->id, (*(group_cmember_t *const *)b)->id);
}

const char *group_assignor_preferred(const group_coordinator_t *c, const group_cgroup_t *cg) {
    /* Kafka's rule: the assignor most members ask for (ties: the one listed
     * first in group.consumer.assignors), else the first listed. */
    int votes[2] = {0, 0}, best = -1;
    for (const group_cmember_t *m = cg->members; m; m = m->next)
        for (int i = 0; m->assignor && i < c->nassignors; i++)
            if (strcmp(m->assignor, c->assignors[i]) == 0) votes[i]++;
    for (int i = 0; i < c->nassignors; i++)
        if (votes[i] && (best < 0 || votes[i] > votes[best])) best = i;
    return c->assignors[best < 0 ? 0 : best];
}

/* Recomputes every member's target assignment for the group epoch. */
static int compute_target(group_coordinator_t *c, group_cgroup_t *cg, const topic_view_t *t, int nt,
                          const rack_table_t *rt) {
    int nm = cg->nmembers;
    group_cmember_t **ms = calloc((size_t)nm + 1, sizeof(*ms));
    group_tps_t *prev = calloc((size_t)nm + 1, sizeof(*prev));
    int *mrack = calloc((size_t)nm + 1, sizeof(*mrack));
    int rc = SM_ERR_NOMEM;
    if (!ms || !prev || !mrack) goto out;
    int k = 0;
    for (group_cmember_t *m = cg->members; m; m = m->next)
        ms[k++] = m;
    qsort(ms, (size_t)nm, sizeof(*ms), member_id_cmp);
    for (k = 0; k < nm; k++) {
        mrack[k] = member_rack(rt, ms[k]);
        prev[k] = ms[k]->target;
        ms[k]->target = (group_tps_t){0};
    }
    bool aligned = rack_aware(rt, mrack, nm, t, nt);
    if (strcmp(group_assignor_preferred(c, cg), "range") == 0)
        rc = assign_range(ms, mrack, nm, t, nt, aligned);
    else
        rc = assign_uniform(ms, mrack, nm, t, nt, prev, aligned);
    for (k = 0; k < nm; k++) {
        group_tps_sort(&ms[k]->target);
        free(prev[k].v);
    }
    if (rc == SM_OK) cg->assignment_epoch = cg->epoch;
out:
    free(mrack);
    free(prev);
    free(ms);
    return rc;
}

int group_assignor_refresh(group_coordinator_t *c, group_cgroup_t *cg) {
    topic_view_t *t = NULL;
    int nt = 0;
    uint64_t hash;
    rack_table_t rt = {{0}, 0, false};
    if (subscribed_topics(c, cg, &t, &nt, &rt, &hash)) return SM_ERR_NOMEM;
    if (hash != cg->topics_hash) {
        cg->topics_hash = hash;
        cg->epoch++;
    }
    int rc = cg->assignment_epoch != cg->epoch ? compute_target(c, cg, t, nt, &rt) : SM_OK;
    topics_free(t, nt, &rt);
    return rc;
}
