/*
 * Partition leadership and ISR changes, on the quorum thread: both sides of AlterPartition
 * (a partition leader asks the active controller to change its ISR), ElectLeaders, the
 * automatic preferred-leader rebalance, partition reassignments (KIP-455), and the elections that fencing, controlled shutdown
 * and unfencing imply. The decisions are metadata/replicas.c's; here they become
 * PartitionChangeRecords and answers.
 *
 * Controller side, states of a partition decision: decided on the applied image ->
 * proposed (cl->part_pending) -> applied. Invariant: no decision about a partition is made
 * while an earlier change of it is proposed but not applied, so every decision sees the state
 * the previous one left, as Kafka's controller applies its records to its own state before
 * deciding the next. Changes of many partitions (fencing, unfencing, elections,
 * reassignments) wait until everything is applied (fencing and unfencing retry on the next
 * tick or heartbeat, ElectLeaders waits in cl->deferred); an AlterPartition waits in
 * cl->deferred only while such a change, or another AlterPartition of one of its
 * partitions (cl->touched), is pending, so ISR changes of different partitions commit
 * together.
 * Broker side, an AlterPartition: queued -> on the wire (cl->alters) -> answered, failed
 * (NOT_CONTROLLER) or timed out (REQUEST_TIMED_OUT); its callback runs exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cluster/cluster_impl.h"
#include "metadata/record.h"
#include "metadata/replicas.h"
#include "protocol/errors.h"
#include "protocol/gen/partition_change_record.h"

/* ---- the brokers as elections see them ---- */

typedef struct view_buf {
    int32_t usable[CL_MAX_BROKERS], alive[CL_MAX_BROKERS];
    meta_broker_view_t v;
} view_buf_t;

/* The image's brokers, with `gone` taken out and `back` counted usable (the change being
 * decided). Caller holds the image lock. */
static void build_view(const meta_image_t *img, int32_t gone, int32_t back, view_buf_t *vb) {
    int nu = 0, na = 0;
    size_t it = 0;
    void *v;
    while (sm_map_next(&img->brokers, &it, NULL, NULL, &v) && na < CL_MAX_BROKERS) {
        const meta_broker_t *bk = v;
        if (bk->id == gone) continue;
        bool fenced = bk->fenced && bk->id != back;
        bool shutting = bk->in_controlled_shutdown && bk->id != back;
        if (fenced) continue;
        vb->alive[na++] = bk->id;
        if (!shutting) vb->usable[nu++] = bk->id;
    }
    vb->v = (meta_broker_view_t){vb->usable, nu, vb->alive, na};
}

/* unclean.leader.election.enable for t: its override, else the dynamic cluster-wide default,
 * else this controller's setting. Image locked. */
static bool unclean_allowed(cluster_t *cl, const meta_topic_t *t) {
    const char *key = "unclean.leader.election.enable";
    const char *v = meta_topic_config(t, key);
    if (!v) v = sm_map_get(&cl->o.image->broker_default_configs, key, strlen(key));
    if (v) return strcmp(v, "true") == 0;
    return cl->o.unclean_leader_election;
}

/* The min ISR the ELR (KIP-966) keeps for t: min.insync.replicas (its override, else the
 * dynamic cluster-wide default, else this controller's setting); 0 when
 * eligible.leader.replicas.version is 0. Image locked. */
static int32_t elr_min_isr(cluster_t *cl, const meta_topic_t *t) {
    const meta_image_t *img = cl->o.image;
    if (!meta_elr_enabled(img)) return 0;
    const char *key = "min.insync.replicas";
    const char *v = meta_topic_config(t, key);
    if (!v) v = sm_map_get(&img->broker_default_configs, key, strlen(key));
    int32_t m = v ? (int32_t)strtol(v, NULL, 10) : cl->o.min_insync_replicas;
    return m >= 1 ? m : 1;
}

/* Appends partition p of t's change as a PartitionChangeRecord. */
static void add_change(cluster_t *cl, cl_recs_t *rs, const meta_topic_t *t,
                       const meta_partition_t *p, const meta_partition_change_t *ch) {
    proto_partition_change_record_t pc;
    proto_partition_change_record_init(&pc);
    pc.partition_id = p->id;
    pc.topic_id = t->id;
    pc.leader = ch->leader;
    if (ch->isr_changed) pc.isr = (sm_i32_array_t){ch->n_isr, (int32_t *)ch->isr};
    if (ch->replicas_changed)
        pc.replicas = (sm_i32_array_t){ch->n_replicas, (int32_t *)ch->replicas};
    if (ch->reassign_changed) {
        pc.adding_replicas = (sm_i32_array_t){ch->n_adding, (int32_t *)ch->adding};
        pc.removing_replicas = (sm_i32_array_t){ch->n_removing, (int32_t *)ch->removing};
    }
    int16_t version = 0;
    meta_partition_change_t cleared;
    if (ch->unclean && !ch->elr_changed && (p->n_elr > 0 || p->n_last_known_elr > 0)) {
        /* an unclean leader's log decides: the ELR is no longer meaningful */
        cleared = *ch;
        cleared.elr_changed = true;
        cleared.n_elr = cleared.n_last_known_elr = 0;
        ch = &cleared;
    }
    if (ch->elr_changed) { /* tagged fields of version 2 */
        version = 2;
        pc.eligible_leader_replicas = (sm_i32_array_t){ch->n_elr, (int32_t *)ch->elr};
        pc.last_known_elr =
            (sm_i32_array_t){ch->n_last_known_elr, (int32_t *)ch->last_known_elr};
    }
    if (ch->unclean) {
        pc.leader_recovery_state = 1; /* RECOVERING, as Kafka marks an unclean leader */
        int64_t n = atomic_fetch_add(&cl->unclean_elections, 1) + 1;
        bool last_known = p->n_isr == 0 && p->n_elr == 0 && p->n_last_known_elr == 1 &&
                          p->last_known_elr[0] == ch->leader;
        sm_warn(CL_MOD,
                "unclean leader election: %s-%d led by broker %d, %s; records the ISR had "
                "and it lacks are lost (unclean elections so far: %lld)",
                t->name, p->id, ch->leader,
                last_known ? "its last leader, back with the ISR and ELR empty"
                           : "outside the ISR",
                (long long)n);
    }
    cl_recs_add(rs, PROTO_PARTITION_CHANGE_RECORD_API_KEY, version, &pc);
}

void cl_leadership_changes(cluster_t *cl, cl_recs_t *rs, int32_t id, cl_lead_t how) {
    meta_image_t *img = cl->o.image;
    meta_image_rdlock(img);
    view_buf_t *vb = malloc(sizeof(*vb));
    if (!vb) {
        rs->oom = true;
        meta_image_unlock(img);
        return;
    }
    build_view(img, how == CL_LEAD_UNFENCE ? -1 : id, how == CL_LEAD_UNFENCE ? id : -1, vb);
    size_t it = 0;
    void *v;
    while (sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v)) {
        const meta_topic_t *t = v;
        for (int32_t i = 0; i < t->n_partitions; i++) {
            const meta_partition_t *p = &t->partitions[i];
            if (!meta_id_in(p->replicas, p->n_replicas, id)) continue;
            /* unfencing: only partitions without a leader change */
            if (how == CL_LEAD_UNFENCE && p->leader >= 0) continue;
            meta_partition_change_t ch;
            if (how == CL_LEAD_UNCLEAN_SHUTDOWN) {
                /* Kafka's handleBrokerUncleanShutdown: the partitions whose ISR or ELR
                 * holds it */
                if (!meta_id_in(p->isr, p->n_isr, id) && !meta_id_in(p->elr, p->n_elr, id))
                    continue;
                meta_partition_unclean_shutdown(p, id, &vb->v, unclean_allowed(cl, t),
                                                elr_min_isr(cl, t), &ch);
            } else {
                meta_partition_elect_elr(p, how == CL_LEAD_UNFENCE ? -1 : id, &vb->v,
                                         unclean_allowed(cl, t), elr_min_isr(cl, t), &ch);
            }
            if (ch.changed) meta_partition_complete_reassignment(p, &vb->v, &ch);
            if (ch.changed) add_change(cl, rs, t, p, &ch);
        }
    }
    free(vb);
    meta_image_unlock(img);
}

bool cl_partitions_busy(cluster_t *cl) {
    bool busy = cl->part_pending >= cl->apply_next;
    if (!busy && sm_map_size(&cl->touched) > 0) {
        sm_map_free(&cl->touched);
        sm_map_init(&cl->touched);
    }
    return busy;
}

static void touched_key(const sm_uuid_t *topic, int32_t partition, uint8_t key[20]) {
    memcpy(key, topic->b, 16);
    for (int i = 0; i < 4; i++)
        key[16 + i] = (uint8_t)((uint32_t)partition >> (24 - 8 * i));
}

/* Whether an AlterPartition must wait: a many-partition change, or a change of one of its
 * partitions, is proposed and not applied yet. */
static bool alter_must_wait(cluster_t *cl, const proto_alter_partition_request_t *q) {
    if (!cl_partitions_busy(cl)) return false;
    if (cl->bulk_pending >= cl->apply_next) return true;
    for (int32_t i = 0; i < q->topics.n; i++)
        for (int32_t k = 0; k < q->topics.v[i].partitions.n; k++) {
            uint8_t key[20];
            touched_key(&q->topics.v[i].topic_id, q->topics.v[i].partitions.v[k].partition_index,
                        key);
            if (sm_map_get(&cl->touched, key, sizeof(key))) return true;
        }
    return false;
}

void cl_partitions_defer(cluster_t *cl, cl_in_t *in) {
    in->next = NULL;
    if (cl->deferred_tail)
        cl->deferred_tail->next = in;
    else
        cl->deferred = in;
    cl->deferred_tail = in;
}

/* ---- AlterPartition, controller side ---- */

static meta_broker_state_t broker_state(void *ctx, int32_t id) {
    const meta_broker_t *bk = meta_image_broker(ctx, id);
    meta_broker_state_t s = {0};
    if (bk) s = (meta_broker_state_t){true, bk->fenced, bk->in_controlled_shutdown, bk->epoch};
    return s;
}

typedef proto_alter_partition_response_t ap_resp_t;
typedef proto_alter_partition_response_topic_data_t ap_topic_t;
typedef proto_alter_partition_response_partition_data_t ap_part_t;

static void answer_alter_error(cl_in_t *in, int16_t err) {
    ap_resp_t resp;
    proto_alter_partition_response_init(&resp);
    resp.error_code = err;
    resp.topics.n = 0;
    cl_respond(in->nreq, CL_API_ALTER_PARTITION, in->version, in->corr, &resp);
}

/* Decides one partition: its answer in out, its record (if any) in rs. Image locked. */
static void alter_one(cluster_t *cl, const meta_topic_t *t, int32_t sender,
                      const proto_alter_partition_request_partition_data_t *pd, int16_t version,
                      const meta_broker_view_t *view, sm_arena_t *a, cl_recs_t *rs,
                      ap_part_t *out) {
    meta_image_t *img = cl->o.image;
    memset(out, 0, sizeof(*out));
    out->partition_index = pd->partition_index;
    out->leader_id = -1;
    out->leader_epoch = -1;
    out->partition_epoch = -1;
    out->isr = (sm_i32_array_t){0, NULL};
    const meta_partition_t *p = t && pd->partition_index >= 0 &&
                                        pd->partition_index < t->n_partitions
                                    ? &t->partitions[pd->partition_index]
                                    : NULL;
    int32_t n = version >= 3 ? pd->new_isr_with_epochs.n : pd->new_isr.n;
    if (n < 0) n = 0;
    meta_isr_member_t *isr = sm_arena_calloc(a, (size_t)n + 1, sizeof(*isr));
    if (!isr) {
        out->error_code = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    for (int32_t i = 0; i < n; i++)
        isr[i] = version >= 3 ? (meta_isr_member_t){pd->new_isr_with_epochs.v[i].broker_id,
                                                    pd->new_isr_with_epochs.v[i].broker_epoch}
                              : (meta_isr_member_t){pd->new_isr.v[i], -1};
    bool same = false;
    int16_t err = meta_alter_partition_check(p, sender, pd->leader_epoch, pd->partition_epoch,
                                             isr, n, broker_state, img, &same);
    if (err == PROTO_ERR_NONE && pd->leader_recovery_state == 1 && n > 1)
        err = PROTO_ERR_INVALID_REQUEST; /* a recovering leader's ISR is itself alone */
    out->error_code = err;
    if (err != PROTO_ERR_NONE) {
        sm_info(CL_MOD,
                "AlterPartition from broker %d for %s-%d refused: %s (leader epoch %d/%d, "
                "partition epoch %d/%d)",
                sender, t ? t->name : "?", pd->partition_index, proto_error_name(err),
                pd->leader_epoch, p ? p->leader_epoch : -1, pd->partition_epoch,
                p ? p->partition_epoch : -1);
        return;
    }
    int32_t *ids = sm_arena_calloc(a, (size_t)n + 1, sizeof(int32_t));
    if (!ids) {
        out->error_code = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    for (int32_t i = 0; i < n; i++)
        ids[i] = isr[i].id;
    out->leader_id = p->leader;
    out->leader_epoch = p->leader_epoch;
    out->isr = (sm_i32_array_t){n, ids};
    out->leader_recovery_state = pd->leader_recovery_state;
    out->partition_epoch = same ? p->partition_epoch : p->partition_epoch + 1;
    if (same) return;
    meta_partition_change_t ch = {.changed = true, .leader = -2, .isr_changed = true, .n_isr = n};
    memcpy(ch.isr, ids, sizeof(int32_t) * (size_t)n);
    bool completed = meta_partition_complete_reassignment(p, view, &ch);
    int32_t min_isr = elr_min_isr(cl, t);
    if (min_isr > 0) meta_partition_settle_elr(p, min_isr, NULL, 0, &ch);
    if (completed) {
        sm_info(CL_MOD, "%s-%d: reassignment completed (%d replica(s))", t->name, p->id,
                ch.n_replicas);
        memcpy(ids, ch.isr, sizeof(int32_t) * (size_t)ch.n_isr);
        out->isr.n = ch.n_isr;
        if (ch.leader != -2 && ch.leader != sender) {
            /* the leader left with the completed reassignment: it must learn the new one
             * before it asks again (Kafka's answer) */
            out->error_code = PROTO_ERR_NEW_LEADER_ELECTED;
        }
    }
    add_change(cl, rs, t, p, &ch);
    sm_info(CL_MOD, "AlterPartition from broker %d: %s-%d ISR now %d broker(s), partition epoch %d",
            sender, t->name, p->id, n, p->partition_epoch + 1);
}

bool cl_ctrl_alter_partition_new(cluster_t *cl, cl_in_t *in) {
    if (cl->deferred && atomic_load(&cl->active)) { /* after those already waiting, in order */
        cl_partitions_defer(cl, in);
        return false;
    }
    return cl_ctrl_alter_partition(cl, in);
}

bool cl_ctrl_alter_partition(cluster_t *cl, cl_in_t *in) {
    const proto_alter_partition_request_t *q = in->body;
    if (!atomic_load(&cl->active)) {
        answer_alter_error(in, PROTO_ERR_NOT_CONTROLLER);
        return true;
    }
    if (alter_must_wait(cl, q)) {
        cl_partitions_defer(cl, in);
        return false;
    }
    meta_image_t *img = cl->o.image;
    cl_recs_t rs = {0};
    ap_resp_t resp;
    proto_alter_partition_response_init(&resp);
    meta_image_rdlock(img);
    const meta_broker_t *bk = meta_image_broker(img, q->broker_id);
    if (!bk || bk->epoch != q->broker_epoch) {
        meta_image_unlock(img);
        sm_info(CL_MOD, "AlterPartition from broker %d with broker epoch %lld refused: %s",
                q->broker_id, (long long)q->broker_epoch,
                bk ? "its registration has another epoch" : "not registered");
        answer_alter_error(in, PROTO_ERR_STALE_BROKER_EPOCH);
        return true;
    }
    int32_t nt = q->topics.n > 0 ? q->topics.n : 0;
    ap_topic_t *topics = sm_arena_calloc(&in->arena, (size_t)nt + 1, sizeof(*topics));
    view_buf_t *vb = sm_arena_alloc(&in->arena, sizeof(*vb));
    bool oom = !topics || !vb;
    if (vb) build_view(img, -1, -1, vb);
    for (int32_t i = 0; !oom && i < nt; i++) {
        const proto_alter_partition_request_topic_data_t *td = &q->topics.v[i];
        const meta_topic_t *t = meta_image_topic_by_id(img, &td->topic_id);
        int32_t np = td->partitions.n > 0 ? td->partitions.n : 0;
        ap_part_t *parts = sm_arena_calloc(&in->arena, (size_t)np + 1, sizeof(*parts));
        if (!parts) {
            oom = true;
            break;
        }
        topics[i].topic_id = td->topic_id;
        topics[i].partitions = (proto_alter_partition_response_partition_data_array_t){np, parts};
        for (int32_t k = 0; k < np; k++) {
            if (!t) { /* v2+ names topics by id */
                memset(&parts[k], 0, sizeof(parts[k]));
                parts[k].partition_index = td->partitions.v[k].partition_index;
                parts[k].error_code = PROTO_ERR_UNKNOWN_TOPIC_ID;
                parts[k].leader_id = -1;
                parts[k].leader_epoch = -1;
                parts[k].partition_epoch = -1;
                continue;
            }
            alter_one(cl, t, q->broker_id, &td->partitions.v[k], in->version, &vb->v,
                      &in->arena, &rs, &parts[k]);
        }
    }
    meta_image_unlock(img);
    if (oom || rs.oom) {
        cl_recs_free(&rs);
        answer_alter_error(in, PROTO_ERR_UNKNOWN_SERVER_ERROR);
        return true;
    }
    resp.topics = (proto_alter_partition_response_topic_data_array_t){nt, topics};
    if (rs.n == 0) { /* nothing to change: answered now (idempotent retries land here) */
        cl_recs_free(&rs);
        cl_respond(in->nreq, CL_API_ALTER_PARTITION, in->version, in->corr, &resp);
        return true;
    }
    int64_t first = -1, last = -1;
    int rc = cl_propose_records(cl, rs.v, rs.n, &first, &last);
    cl_recs_free(&rs);
    const proto_api_desc_t *api = proto_api_lookup(CL_API_ALTER_PARTITION);
    cl_inbound_t *ib = calloc(1, sizeof(*ib));
    if (rc != SM_OK || !ib ||
        cl_encode_frame(api->response, CL_API_ALTER_PARTITION, in->version, in->corr, true, &resp,
                        NULL, &ib->frame, &ib->frame_len) != SM_OK) {
        free(ib);
        answer_alter_error(in, rc == SM_ERR_AGAIN ? PROTO_ERR_NOT_CONTROLLER
                                                  : PROTO_ERR_UNKNOWN_SERVER_ERROR);
        return true;
    }
    cl->part_pending = last;
    for (int32_t i = 0; i < q->topics.n; i++)
        for (int32_t k = 0; k < q->topics.v[i].partitions.n; k++) {
            uint8_t key[20];
            touched_key(&q->topics.v[i].topic_id, q->topics.v[i].partitions.v[k].partition_index,
                        key);
            if (sm_map_put(&cl->touched, key, sizeof(key), cl) != SM_OK)
                cl->bulk_pending = last; /* out of memory: everything waits instead */
        }
    /* answered once the change is applied (cluster.c apply_to) */
    ib->next = cl->after;
    ib->offset = last;
    ib->nreq = in->nreq;
    ib->api_key = CL_API_ALTER_PARTITION;
    ib->version = in->version;
    ib->corr = in->corr;
    ib->at = cl_now();
    cl->after = ib;
    return true;
}

/* ---- ElectLeaders and the leader imbalance check ---- */

/* One partition of an AlterPartitionReassignments: checked as Kafka's controller checks a
 * manual assignment, decided, its record added to rs. Image locked. */
static void reassign_one(cluster_t *cl, const meta_image_t *img, const meta_broker_view_t *view,
                         cluster_reassignment_t *r, cl_recs_t *rs) {
    const meta_topic_t *t = meta_image_topic_by_id(img, &r->topic_id);
    r->error = PROTO_ERR_NONE;
    r->message[0] = 0;
    if (!t || r->partition < 0 || r->partition >= t->n_partitions) {
        r->error = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        snprintf(r->message, sizeof(r->message), "Unable to find partition %s:%d.",
                 t ? t->name : "?", r->partition);
        return;
    }
    const meta_partition_t *p = &t->partitions[r->partition];
    if (r->replicas) {
        const char *why = NULL;
        int32_t who = -1;
        if (r->n <= 0) why = "The manual partition assignment includes an empty replica list.";
        for (int32_t k = 0; !why && k < r->n; k++) {
            who = r->replicas[k];
            if (!meta_image_broker(img, who))
                why = "The manual partition assignment includes broker %d, but no such broker is "
                      "registered.";
            else if (meta_id_in(r->replicas, k, who))
                why = "The manual partition assignment includes the broker %d more than once.";
        }
        if (why) {
            r->error = PROTO_ERR_INVALID_REPLICA_ASSIGNMENT;
            snprintf(r->message, sizeof(r->message), why, who);
            return;
        }
    }
    meta_partition_change_t ch;
    r->error = meta_partition_reassign(p, r->replicas, r->n, view, unclean_allowed(cl, t), &ch);
    if (r->error == PROTO_ERR_NO_REASSIGNMENT_IN_PROGRESS)
        snprintf(r->message, sizeof(r->message), "No partition reassignment is in progress.");
    else if (r->error != PROTO_ERR_NONE)
        snprintf(r->message, sizeof(r->message),
                 "Unable to revert partition assignment for %s:%d because it would require an "
                 "unclean leader election.",
                 t->name, p->id);
    else if (ch.changed)
        add_change(cl, rs, t, p, &ch);
}

/* Decides the elections or reassignments of el (image unlocked here), proposes them; SM_OK
 * with *proposed false when nothing changes. */
static int elect(cluster_t *cl, cl_elect_t *el, int64_t *last, bool *proposed) {
    meta_image_t *img = cl->o.image;
    cl_recs_t rs = {0};
    view_buf_t *vb = malloc(sizeof(*vb));
    *proposed = false;
    if (!vb) return SM_ERR_NOMEM;
    meta_image_rdlock(img);
    build_view(img, -1, -1, vb);
    for (int i = 0; i < el->n_re; i++)
        reassign_one(cl, img, &vb->v, &el->re[i], &rs);
    for (int i = 0; i < el->n; i++) {
        cluster_election_t *e = &el->parts[i];
        const meta_topic_t *t = meta_image_topic_by_id(img, &e->topic_id);
        if (!t || e->partition < 0 || e->partition >= t->n_partitions) {
            e->error = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        const meta_partition_t *p = &t->partitions[e->partition];
        meta_partition_change_t ch;
        e->error = el->type == 1
                       ? meta_partition_elect_unclean(p, &vb->v, elr_min_isr(cl, t), &ch)
                       : meta_partition_elect_preferred(p, &vb->v, &ch);
        if (e->error == PROTO_ERR_NONE) add_change(cl, &rs, t, p, &ch);
    }
    meta_image_unlock(img);
    free(vb);
    int rc = SM_OK;
    if (rs.oom) rc = SM_ERR_NOMEM;
    if (rc == SM_OK && rs.n > 0) {
        int64_t first = -1;
        rc = cl_propose_records(cl, rs.v, rs.n, &first, last);
        if (rc == SM_OK) {
            cl->part_pending = cl->bulk_pending = *last;
            *proposed = true;
        }
    }
    cl_recs_free(&rs);
    return rc;
}

static void elect_finish(cluster_t *cl, cl_elect_t *el, int status) {
    pthread_mutex_lock(&cl->mu);
    el->status = status;
    el->done = true;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

bool cl_ctrl_elect(cluster_t *cl, cl_in_t *in) {
    cl_elect_t *el = in->elect;
    if (!atomic_load(&cl->active)) {
        elect_finish(cl, el, SM_ERR_AGAIN);
        return true;
    }
    if (cl_partitions_busy(cl)) {
        cl_partitions_defer(cl, in);
        return false;
    }
    int64_t last = -1;
    bool proposed = false;
    int rc = elect(cl, el, &last, &proposed);
    if (rc != SM_OK || !proposed) {
        elect_finish(cl, el, rc);
        return true;
    }
    /* completed by the applier as a proposal's waiter */
    cl_waiter_t *w = el->w;
    w->last = last;
    pthread_mutex_lock(&cl->mu);
    w->next = cl->waiters;
    cl->waiters = w;
    pthread_mutex_unlock(&cl->mu);
    return true;
}

/* Runs el on the quorum thread and waits for it to be decided, committed and applied. */
static int run_elect(cluster_t *cl, cl_elect_t *el) {
    cl_in_t *in = calloc(1, sizeof(*in));
    if (!in) return SM_ERR_NOMEM;
    in->kind = CL_IN_ELECT;
    in->elect = el;
    cl_push(cl, in);
    pthread_mutex_lock(&cl->mu);
    while (!el->done && !el->w->done)
        pthread_cond_wait(&cl->cv, &cl->mu);
    pthread_mutex_unlock(&cl->mu);
    return el->done ? el->status : el->w->status;
}

int cluster_elect_leaders(cluster_t *cl, int8_t type, cluster_election_t *parts, int n) {
    if (!cl || !atomic_load(&cl->active)) return SM_ERR_AGAIN;
    cl_waiter_t w;
    memset(&w, 0, sizeof(w));
    cl_elect_t el = {.type = type, .parts = parts, .n = n, .w = &w};
    return run_elect(cl, &el);
}

int cluster_alter_reassignments(cluster_t *cl, cluster_reassignment_t *parts, int n) {
    if (!cl || !atomic_load(&cl->active)) return SM_ERR_AGAIN;
    cl_waiter_t w;
    memset(&w, 0, sizeof(w));
    cl_elect_t el = {.re = parts, .n_re = n, .w = &w};
    return run_elect(cl, &el);
}

int64_t cluster_unclean_elections(cluster_t *cl) { return atomic_load(&cl->unclean_elections); }

/*
 * auto.leader.rebalance.enable: a broker leading fewer than its share of the partitions it
 * is the preferred replica of (more than leader.imbalance.per.broker.percentage of them led
 * elsewhere) gets them back where it is in the ISR and usable.
 */
static void rebalance(cluster_t *cl) {
    meta_image_t *img = cl->o.image;
    enum { MAX_MOVES = 1024 };
    cluster_election_t *moves = calloc(MAX_MOVES, sizeof(*moves));
    int32_t *pref = calloc(CL_MAX_BROKERS, sizeof(int32_t));
    int32_t *ids = calloc(CL_MAX_BROKERS, sizeof(int32_t));
    int32_t *off = calloc(CL_MAX_BROKERS, sizeof(int32_t));
    int nb = 0, nm = 0;
    if (!moves || !pref || !ids || !off) goto out;
    meta_image_rdlock(img);
    size_t it = 0;
    void *v;
    while (sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v)) {
        const meta_topic_t *t = v;
        for (int32_t i = 0; i < t->n_partitions; i++) {
            const meta_partition_t *p = &t->partitions[i];
            if (p->n_replicas < 2) continue;
            int k = 0;
            while (k < nb && ids[k] != p->replicas[0])
                k++;
            if (k == nb) {
                if (nb == CL_MAX_BROKERS) continue;
                ids[nb++] = p->replicas[0];
            }
            pref[k]++;
            if (p->leader != p->replicas[0]) off[k]++;
        }
    }
    it = 0;
    while (sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v) && nm < MAX_MOVES) {
        const meta_topic_t *t = v;
        for (int32_t i = 0; i < t->n_partitions && nm < MAX_MOVES; i++) {
            const meta_partition_t *p = &t->partitions[i];
            if (p->n_replicas < 2 || p->leader == p->replicas[0]) continue;
            int k = 0;
            while (k < nb && ids[k] != p->replicas[0])
                k++;
            if (k == nb || (int64_t)off[k] * 100 <= (int64_t)pref[k] * cl->o.leader_imbalance_pct)
                continue;
            moves[nm++] = (cluster_election_t){t->id, p->id, 0};
        }
    }
    meta_image_unlock(img);
    if (nm > 0) {
        cl_elect_t el = {.type = 0, .parts = moves, .n = nm};
        int64_t last;
        bool proposed = false;
        if (elect(cl, &el, &last, &proposed) == SM_OK && proposed)
            sm_info(CL_MOD, "leader imbalance: preferred replicas elected for imbalanced brokers");
    }
out:
    free(moves);
    free(pref);
    free(ids);
    free(off);
}

/* ---- AlterPartition, broker side ---- */

static void alter_call(cl_alter_t *a, int16_t err, int32_t leader_epoch, int32_t partition_epoch,
                       const int32_t *isr, int32_t n) {
    if (a->called) return;
    a->called = true;
    a->done(a->arg, err, leader_epoch, partition_epoch, isr, n);
}

static void alter_forget(cluster_t *cl, cl_alter_t *a) {
    cl_alter_t **pp = &cl->alters;
    while (*pp && *pp != a)
        pp = &(*pp)->next;
    if (*pp) *pp = a->next;
    free(a->isr);
    free(a->epochs);
    free(a);
}

int cluster_alter_partition(cluster_t *cl, const sm_uuid_t *topic_id, int32_t partition,
                            int32_t leader_epoch, int32_t partition_epoch, const int32_t *isr,
                            const int64_t *broker_epochs, int32_t n_isr,
                            cluster_alter_partition_cb done, void *arg) {
    if (!cl || !done || n_isr < 0 || n_isr > META_MAX_REPLICAS) return SM_ERR_RANGE;
    cl_alter_t *a = calloc(1, sizeof(*a));
    cl_in_t *in = calloc(1, sizeof(*in));
    if (a) {
        a->isr = calloc((size_t)n_isr + 1, sizeof(int32_t));
        a->epochs = calloc((size_t)n_isr + 1, sizeof(int64_t));
    }
    if (!a || !in || !a->isr || !a->epochs) {
        if (a) {
            free(a->isr);
            free(a->epochs);
        }
        free(a);
        free(in);
        return SM_ERR_NOMEM;
    }
    a->topic_id = *topic_id;
    a->partition = partition;
    a->leader_epoch = leader_epoch;
    a->partition_epoch = partition_epoch;
    a->n_isr = n_isr;
    for (int32_t i = 0; i < n_isr; i++) {
        a->isr[i] = isr[i];
        a->epochs[i] = broker_epochs ? broker_epochs[i] : -1;
    }
    a->done = done;
    a->arg = arg;
    in->kind = CL_IN_ALTER_SEND;
    in->alter = a;
    cl_push(cl, in);
    return SM_OK;
}

void cl_alter_send(cluster_t *cl, cl_alter_t *a, int64_t now) {
    int32_t leader = atomic_load(&cl->leader_id);
    cl_peer_t *p = leader >= 0 ? cl_peer(cl, leader, true) : NULL;
    if (!p || !cl_peer_ready(cl, p, now)) {
        alter_call(a, PROTO_ERR_NOT_CONTROLLER, -1, -1, NULL, 0);
        alter_forget(cl, a);
        return;
    }
    proto_alter_partition_request_t q;
    proto_alter_partition_request_topic_data_t td;
    proto_alter_partition_request_partition_data_t pd;
    proto_alter_partition_request_broker_state_t bs[META_MAX_REPLICAS];
    proto_alter_partition_request_init(&q);
    memset(&td, 0, sizeof(td));
    memset(&pd, 0, sizeof(pd));
    q.broker_id = cl->o.node_id;
    q.broker_epoch = cl->broker_epoch;
    td.topic_id = a->topic_id;
    pd.partition_index = a->partition;
    pd.leader_epoch = a->leader_epoch;
    pd.partition_epoch = a->partition_epoch;
    pd.new_isr = (sm_i32_array_t){0, NULL};
    for (int32_t i = 0; i < a->n_isr; i++) {
        memset(&bs[i], 0, sizeof(bs[i]));
        bs[i].broker_id = a->isr[i];
        bs[i].broker_epoch = a->epochs[i];
    }
    pd.new_isr_with_epochs =
        (proto_alter_partition_request_broker_state_array_t){a->n_isr, bs};
    td.partitions = (proto_alter_partition_request_partition_data_array_t){1, &pd};
    q.topics = (proto_alter_partition_request_topic_data_array_t){1, &td};
    const proto_api_desc_t *api = proto_api_lookup(CL_API_ALTER_PARTITION);
    char client[32];
    snprintf(client, sizeof(client), "samsa-broker-%d", cl->o.node_id);
    uint8_t *frame;
    size_t len;
    cl_out_t *o = calloc(1, sizeof(*o));
    if (!o || cl_encode_frame(api->request, CL_API_ALTER_PARTITION, CL_V_ALTER_PARTITION, 0,
                              false, &q, client, &frame, &len) != SM_OK) {
        free(o);
        alter_call(a, PROTO_ERR_UNKNOWN_SERVER_ERROR, -1, -1, NULL, 0);
        alter_forget(cl, a);
        return;
    }
    o->kind = CL_OUT_ALTER;
    o->api_key = CL_API_ALTER_PARTITION;
    o->version = CL_V_ALTER_PARTITION;
    o->alter = a;
    a->deadline = now + cl->o.request_timeout_ms;
    a->next = cl->alters;
    cl->alters = a;
    if (cl_peer_send(cl, p, frame, len, o) != SM_OK) { /* o freed there */
        alter_call(a, PROTO_ERR_NOT_CONTROLLER, -1, -1, NULL, 0);
        alter_forget(cl, a);
    }
}

void cl_alter_failed(cluster_t *cl, cl_out_t *o) {
    cl_alter_t *a = o->alter;
    alter_call(a, PROTO_ERR_NOT_CONTROLLER, -1, -1, NULL, 0);
    alter_forget(cl, a);
}

void cl_alter_response(cluster_t *cl, cl_out_t *o, sm_reader_t *r, sm_arena_t *ar) {
    cl_alter_t *a = o->alter;
    proto_alter_partition_response_t resp;
    proto_alter_partition_response_init(&resp);
    if (proto_alter_partition_response_decode(r, ar, o->version, &resp) != SM_OK) {
        alter_call(a, PROTO_ERR_UNKNOWN_SERVER_ERROR, -1, -1, NULL, 0);
    } else if (resp.error_code != PROTO_ERR_NONE) {
        alter_call(a, resp.error_code, -1, -1, NULL, 0);
    } else {
        const ap_part_t *pr = NULL;
        for (int32_t i = 0; i < resp.topics.n && !pr; i++)
            for (int32_t k = 0; k < resp.topics.v[i].partitions.n && !pr; k++)
                if (resp.topics.v[i].partitions.v[k].partition_index == a->partition)
                    pr = &resp.topics.v[i].partitions.v[k];
        if (!pr)
            alter_call(a, PROTO_ERR_UNKNOWN_SERVER_ERROR, -1, -1, NULL, 0);
        else
            alter_call(a, pr->error_code, pr->leader_epoch, pr->partition_epoch, pr->isr.v,
                       pr->isr.n > 0 ? pr->isr.n : 0);
    }
    alter_forget(cl, a);
}

/* ---- tick and stop ---- */

void cl_partitions_tick(cluster_t *cl, int64_t now) {
    for (cl_alter_t *a = cl->alters; a; a = a->next)
        if (!a->called && now >= a->deadline)
            alter_call(a, PROTO_ERR_REQUEST_TIMED_OUT, -1, -1, NULL, 0);
    /* Each waiting request is tried once, in order; those that must wait longer go back to
     * the list (away from the active controller they are answered NOT_CONTROLLER). */
    cl_in_t *in = cl->deferred;
    cl->deferred = cl->deferred_tail = NULL;
    while (in) {
        cl_in_t *next = in->next;
        bool finished = in->kind == CL_IN_ALTER      ? cl_ctrl_alter_partition(cl, in)
                        : in->kind == CL_IN_REGISTER ? cl_ctrl_register(cl, in, now)
                                                     : cl_ctrl_elect(cl, in);
        if (finished) {
            sm_arena_free(&in->arena);
            free(in);
        }
        in = next;
    }
    if (!atomic_load(&cl->active) || !cl->o.auto_leader_rebalance) return;
    if (cl->next_rebalance_at == 0) cl->next_rebalance_at = now + cl->o.leader_imbalance_check_ms;
    if (now < cl->next_rebalance_at || cl_partitions_busy(cl)) return;
    cl->next_rebalance_at = now + cl->o.leader_imbalance_check_ms;
    rebalance(cl);
}

void cl_partitions_stop(cluster_t *cl) {
    sm_map_free(&cl->touched);
    while (cl->deferred) {
        cl_in_t *in = cl->deferred;
        cl->deferred = in->next;
        if (in->kind == CL_IN_ALTER || in->kind == CL_IN_REGISTER)
            net_request_close(in->nreq);
        else
            elect_finish(cl, in->elect, SM_ERR_AGAIN);
        sm_arena_free(&in->arena);
        free(in);
    }
    cl->deferred_tail = NULL;
    while (cl->alters) {
        cl_alter_t *a = cl->alters;
        alter_call(a, PROTO_ERR_NOT_CONTROLLER, -1, -1, NULL, 0);
        cl->alters = a->next;
        free(a->isr);
        free(a->epochs);
        free(a);
    }
}
