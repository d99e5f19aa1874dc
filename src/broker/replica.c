/*
 * A partition's replication state: leader and follower sides (see replica.h).
 */
#include "broker/replica.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/delayed.h"
#include "broker/repl_quota.h"
#include "cluster/cluster.h"
#include "protocol/errors.h"
#include "protocol/records.h"

#define REPL_MOD "replica"
/* A refused or lost ISR change is proposed again after this. */
#define ALTER_RETRY_MS 500

static bool has(const int32_t *v, int32_t n, int32_t id) {
    for (int32_t i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

static replica_peer_t *peer_of(replica_set_t *rs, int32_t id) {
    for (int32_t i = 0; rs && i < rs->n; i++)
        if (rs->peers[i].id == id) return &rs->peers[i];
    return NULL;
}

/* Under mu (or before the partition is published): the high watermark, kept in
 * the log for the replication-offset-checkpoint too. */
static void set_hw(broker_partition_t *p, int64_t hw) {
    atomic_store(&p->hw, hw);
    log_set_high_watermark(p->log, hw);
}

int64_t broker_partition_hw(broker_partition_t *p) {
    return p->replicated ? atomic_load(&p->hw) : log_end_offset(p->log);
}

/* Under mu: the least LEO of the maximal ISR (committed members and those
 * being added); moves HW forward only. */
static bool advance_hw(broker_partition_t *p) {
    if (!p->replicated || !atomic_load(&p->leader)) return false;
    replica_set_t *rs = p->rs;
    /* KIP-966: with eligible leader replicas, a record is committed only once min ISR
     * replicas have it, so every ELR member holds all committed records. */
    int64_t least = broker_replica_rule_hw(
        log_end_offset(p->log), p->b->s.node_id, rs->peers, rs->n, rs->isr, rs->n_isr, rs->pending,
        rs->alter_inflight || rs->pending_unresolved ? rs->n_pending : 0, p->elr, p->min_isr);
    if (least < 0 || least <= atomic_load(&p->hw)) return false;
    set_hw(p, least);
    return true;
}

/* An ISR change to propose after mu is released. */
typedef struct proposal {
    broker_partition_t *p; /* referenced */
    int32_t leader_epoch, partition_epoch, n;
    int32_t isr[64];
    int64_t epochs[64];
} proposal_t;

static void alter_done(void *arg, int16_t error, int32_t leader_epoch, int32_t partition_epoch,
                       const int32_t *isr, int32_t n_isr) {
    broker_partition_t *p = arg;
    bool moved = false;
    pthread_mutex_lock(&p->mu);
    replica_set_t *rs = p->rs;
    if (rs) {
        rs->alter_inflight = false;
        rs->pending_unresolved =
            broker_replica_rule_alter_unresolved(error, rs->pending_base_pe, p->partition_epoch);
        if (error == PROTO_ERR_NONE && partition_epoch > p->partition_epoch &&
            leader_epoch == p->leader_epoch && n_isr <= rs->n) {
            p->partition_epoch = partition_epoch;
            memcpy(rs->isr, isr, (size_t)n_isr * sizeof(*isr));
            rs->n_isr = n_isr;
        } else if (error != PROTO_ERR_NONE) {
            rs->alter_retry_ms = broker_mono_ms() + ALTER_RETRY_MS;
            sm_debug(REPL_MOD, "%s-%d: ISR change refused: %s", p->topic, p->index,
                     proto_error_name(error));
        }
        moved = advance_hw(p);
    }
    pthread_mutex_unlock(&p->mu);
    if (moved) broker_wake(p->b, p);
    broker_partition_put(p);
}

/* Under mu: prepares the proposal of ISR `isr` (marks it in flight). */
static bool propose(broker_partition_t *p, const int32_t *isr, int32_t n, proposal_t *out) {
    replica_set_t *rs = p->rs;
    if (rs->alter_inflight || n > 64 || !p->b->cluster) return false;
    if (broker_mono_ms() < rs->alter_retry_ms) return false;
    if (rs->pending_unresolved) { /* the same again until its outcome is known */
        isr = rs->pending;
        n = rs->n_pending;
    }
    rs->alter_inflight = true;
    memmove(rs->pending, isr, (size_t)n * sizeof(*isr));
    rs->n_pending = n;
    rs->pending_base_pe = p->partition_epoch;
    out->p = p;
    atomic_fetch_add(&p->refs, 1);
    out->leader_epoch = p->leader_epoch;
    out->partition_epoch = p->partition_epoch;
    out->n = n;
    for (int32_t i = 0; i < n; i++) {
        out->isr[i] = isr[i];
        const replica_peer_t *r = peer_of(rs, isr[i]);
        out->epochs[i] = r && isr[i] != p->b->s.node_id ? r->broker_epoch : -1;
    }
    return true;
}

/* After mu: sends a prepared proposal. */
static void send_proposal(proposal_t *pr) {
    broker_partition_t *p = pr->p;
    sm_info(REPL_MOD, "%s-%d: proposing ISR of %d replica(s) (partition epoch %d)", p->topic,
            p->index, pr->n, pr->partition_epoch);
    if (cluster_alter_partition(p->b->cluster, &p->topic_id, p->index, pr->leader_epoch,
                                pr->partition_epoch, pr->isr, pr->epochs, pr->n, alter_done,
                                p) == SM_OK)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->rs) {
        p->rs->alter_inflight = false;
        p->rs->alter_retry_ms = broker_mono_ms() + ALTER_RETRY_MS;
    }
    pthread_mutex_unlock(&p->mu);
    broker_partition_put(p);
}

/* Under mu: a follower that caught up joins the ISR (Kafka's rule: its LEO
 * reached HW and the start of the leader's current epoch). */
static bool maybe_expand(broker_partition_t *p, const replica_peer_t *r, proposal_t *pr) {
    replica_set_t *rs = p->rs;
    if (has(rs->isr, rs->n_isr, r->id) ||
        !broker_replica_rule_may_join(r, atomic_load(&p->hw), log_epochs_latest_start(&p->epochs)))
        return false;
    int32_t isr[64];
    int32_t n = 0;
    for (int32_t i = 0; i < rs->n_isr && n < 63; i++)
        isr[n++] = rs->isr[i];
    isr[n++] = r->id;
    return propose(p, isr, n, pr);
}

static int set_replicas(broker_partition_t *p, const meta_partition_t *mp) {
    replica_set_t *rs = p->rs;
    int32_t n = mp->n_replicas > 0 ? mp->n_replicas : 0;
    if (n != rs->n) {
        replica_peer_t *peers = calloc((size_t)n + 1, sizeof(*peers));
        int32_t *isr = calloc((size_t)n + 1, sizeof(int32_t));
        int32_t *pending = calloc((size_t)n + 1, sizeof(int32_t));
        if (!peers || !isr || !pending) {
            free(peers);
            free(isr);
            free(pending);
            return SM_ERR_NOMEM;
        }
        for (int32_t i = 0; i < n; i++) {
            const replica_peer_t *old = peer_of(rs, mp->replicas[i]);
            peers[i] = old ? *old : (replica_peer_t){mp->replicas[i], -1, 0, 0, -1, -1};
        }
        free(rs->peers);
        free(rs->isr);
        free(rs->pending);
        rs->peers = peers;
        rs->isr = isr;
        rs->pending = pending;
        rs->n = n;
        rs->n_pending = 0;
        rs->alter_inflight = false;
        rs->pending_unresolved = false;
    } else {
        for (int32_t i = 0; i < n; i++)
            if (rs->peers[i].id != mp->replicas[i])
                rs->peers[i] = (replica_peer_t){mp->replicas[i], -1, 0, 0, -1, -1};
    }
    /* A newer committed state settles a proposal of unknown outcome. */
    if (mp->partition_epoch > rs->pending_base_pe) rs->pending_unresolved = false;
    /* The committed ISR, unless an answer already gave a newer one. */
    if (mp->partition_epoch >= p->partition_epoch) {
        rs->n_isr = 0;
        for (int32_t i = 0; i < mp->n_isr && rs->n_isr < n; i++)
            if (has(mp->replicas, mp->n_replicas, mp->isr[i])) rs->isr[rs->n_isr++] = mp->isr[i];
        p->partition_epoch = mp->partition_epoch;
    }
    return SM_OK;
}

int broker_replica_init(broker_partition_t *p, const meta_partition_t *mp) {
    atomic_init(&p->leader, true);
    atomic_init(&p->hw, 0);
    p->leader_id = p->b->s.node_id;
    p->partition_epoch = -1;
    p->fetch_from = -1;
    if (!p->b->s.cluster_mode) return SM_OK;
    p->replicated = true;
    atomic_store(&p->leader, false);
    p->leader_id = -1;
    p->rs = calloc(1, sizeof(*p->rs));
    if (!p->rs) return SM_ERR_NOMEM;
    p->rs->leader_hw = -1;
    int rc = log_epochs_load(&p->epochs, log_dir(p->log), log_end_offset(p->log));
    if (rc == SM_ERR_CORRUPT)
        sm_warn(REPL_MOD, "%s-%d: leader-epoch-checkpoint unreadable: rebuilt from new epochs",
                p->topic, p->index);
    else if (rc)
        return rc;
    /* A log written before the cache existed: its last epoch from its start. */
    if (p->epochs.n == 0 && log_end_offset(p->log) > log_start_offset(p->log) &&
        log_epochs_assign(&p->epochs, p->leader_epoch, log_start_offset(p->log)) != SM_OK)
        sm_warn(REPL_MOD, "%s-%d: leader-epoch-checkpoint not written", p->topic, p->index);
    /* Consumers never read past what may not be replicated: HW starts where
     * the replication-offset-checkpoint left it (within the log), else at the
     * log start, and moves as the ISR shows what it has. */
    int64_t hw = log_high_watermark(p->log);
    if (hw > log_end_offset(p->log)) hw = log_end_offset(p->log);
    if (hw < log_start_offset(p->log)) hw = log_start_offset(p->log);
    set_hw(p, hw);
    p->leader_epoch = -1;
    broker_replica_update(p, mp);
    return SM_OK;
}

void broker_replica_free(broker_partition_t *p) {
    if (p->rs) {
        free(p->rs->peers);
        free(p->rs->isr);
        free(p->rs->pending);
        free(p->rs);
        p->rs = NULL;
    }
    log_epochs_free(&p->epochs);
}

void broker_replica_update(broker_partition_t *p, const meta_partition_t *mp) {
    if (!p->replicated) return;
    broker_t *b = p->b;
    int32_t self = b->s.node_id;
    bool moved = false, woke = false;
    int follow = -2; /* -2: no change */
    pthread_mutex_lock(&p->mu);
    bool was_leader = atomic_load(&p->leader);
    int32_t old_leader = p->leader_id, old_epoch = p->leader_epoch;
    if (set_replicas(p, mp) != SM_OK)
        sm_error(REPL_MOD, "%s-%d: replica set not updated (out of memory)", p->topic, p->index);
    p->leader_id = mp->leader;
    p->leader_epoch = mp->leader_epoch;
    bool now_leader = mp->leader == self;
    if (now_leader && (!was_leader || old_epoch != mp->leader_epoch)) {
        /* Leader from this epoch on: its batches carry it from the log end. */
        if (log_epochs_assign(&p->epochs, mp->leader_epoch, log_end_offset(p->log)) != SM_OK)
            sm_warn(REPL_MOD, "%s-%d: leader-epoch-checkpoint not written", p->topic, p->index);
        int64_t now = broker_mono_ms();
        for (int32_t i = 0; i < p->rs->n; i++) {
            replica_peer_t *r = &p->rs->peers[i];
            r->leo = r->id == self ? log_end_offset(p->log) : -1;
            r->last_caught_up_ms = now;
            r->last_fetch_ms = 0;
            r->leader_leo_at_last_fetch = -1;
        }
        p->rs->alter_inflight = false;
        p->rs->pending_unresolved = false;
        p->rs->alter_retry_ms = 0;
        atomic_store(&p->leader, true);
        sm_info(REPL_MOD, "%s-%d: leader at epoch %d (log end %lld, high watermark %lld)", p->topic,
                p->index, mp->leader_epoch, (long long)log_end_offset(p->log),
                (long long)atomic_load(&p->hw));
        woke = true;
    } else if (!now_leader) {
        if (was_leader) {
            atomic_store(&p->leader, false);
            woke = true; /* parked produces and fetches answer NOT_LEADER_OR_FOLLOWER */
        }
        if (old_leader != mp->leader) p->rs->leader_hw = -1;
        if (old_leader != mp->leader || old_epoch != mp->leader_epoch)
            sm_info(REPL_MOD, "%s-%d: follower of %d at epoch %d (log end %lld)", p->topic,
                    p->index, mp->leader, mp->leader_epoch, (long long)log_end_offset(p->log));
    }
    if (now_leader) moved = advance_hw(p);
    /* A follower fetches from its leader; a leader or a leaderless one from nobody. */
    int32_t from = now_leader || mp->leader < 0 ? -1 : mp->leader;
    if (from != p->fetch_from) {
        p->fetch_from = from;
        follow = from;
    }
    pthread_mutex_unlock(&p->mu);
    if (follow != -2) broker_replicas_follow(b, p, follow);
    if (moved || woke) broker_wake(b, p);
}

void broker_replica_stop(broker_partition_t *p) {
    if (!p->replicated) return;
    pthread_mutex_lock(&p->mu);
    bool was = p->fetch_from >= 0;
    p->fetch_from = -1;
    pthread_mutex_unlock(&p->mu);
    if (was) broker_replicas_follow(p->b, p, -1);
}

bool broker_partition_serves(broker_partition_t *p) {
    return !p->replicated || atomic_load(&p->leader);
}

int16_t broker_replica_produce_check(broker_partition_t *p, int16_t acks) {
    if (!p->replicated) return PROTO_ERR_NONE;
    int16_t err = PROTO_ERR_NONE;
    pthread_mutex_lock(&p->mu);
    if (!atomic_load(&p->leader))
        err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    else if (acks == -1 && p->rs->n_isr < p->min_isr)
        err = PROTO_ERR_NOT_ENOUGH_REPLICAS;
    pthread_mutex_unlock(&p->mu);
    return err;
}

bool broker_replica_appended(broker_partition_t *p) { return advance_hw(p); }

bool broker_replica_acked(broker_partition_t *p, int64_t required, int16_t *err) {
    *err = PROTO_ERR_NONE;
    if (!p->replicated) return true;
    bool done = true;
    pthread_mutex_lock(&p->mu);
    if (!atomic_load(&p->leader))
        *err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    else if (atomic_load(&p->hw) < required)
        done = false;
    else if (p->rs->n_isr < p->min_isr)
        *err = PROTO_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    pthread_mutex_unlock(&p->mu);
    return done;
}

typedef struct repl_wait {
    broker_partition_t *p; /* referenced */
    int64_t end;
    broker_replicated_fn done;
    void *arg;
} repl_wait_t;

static bool repl_check(void *arg, bool final) {
    repl_wait_t *w = arg;
    int16_t err;
    bool done = broker_replica_acked(w->p, w->end, &err);
    if (!done && !final) return false;
    w->done(w->arg, done && err == PROTO_ERR_NONE ? SM_OK : SM_ERR_AGAIN);
    broker_partition_put(w->p);
    free(w);
    return true;
}

void broker_replica_when_replicated(broker_partition_t *p, int64_t end, int64_t timeout_ms,
                                    broker_replicated_fn done, void *arg) {
    int16_t err;
    if (broker_replica_acked(p, end, &err)) {
        done(arg, err == PROTO_ERR_NONE ? SM_OK : SM_ERR_AGAIN);
        return;
    }
    repl_wait_t *w = malloc(sizeof(*w));
    if (!w) {
        done(arg, SM_ERR_NOMEM);
        return;
    }
    atomic_fetch_add(&p->refs, 1);
    *w = (repl_wait_t){p, end, done, arg};
    broker_park_wait(p->b, p, broker_mono_ms() + timeout_ms, repl_check, w);
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
} sync_wait_t;

static void sync_done(void *arg, int status) {
    sync_wait_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    w->status = status;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int broker_replica_wait_replicated(broker_partition_t *p, int64_t end, int64_t timeout_ms) {
    sync_wait_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, SM_OK};
    broker_replica_when_replicated(p, end, timeout_ms, sync_done, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return w.status;
}

int16_t broker_replica_follower_fetch(broker_partition_t *p, int32_t replica_id,
                                      int64_t broker_epoch, int64_t fetch_offset,
                                      int32_t last_fetched_epoch, int32_t *div_epoch,
                                      int64_t *div_end, bool *hw_moved) {
    *div_epoch = -1;
    *div_end = -1;
    *hw_moved = false;
    if (!p->replicated) return PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    proposal_t pr;
    bool send = false;
    int16_t err = PROTO_ERR_NONE;
    pthread_mutex_lock(&p->mu);
    replica_peer_t *r = peer_of(p->rs, replica_id);
    if (!atomic_load(&p->leader) || !r || replica_id == p->b->s.node_id) {
        err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
        goto out;
    }
    int64_t leo = log_end_offset(p->log);
    /* KIP-320: the follower's last epoch must end here where it ends there;
     * otherwise it is told where that epoch ended here. */
    if (broker_replica_rule_diverges(&p->epochs, leo, last_fetched_epoch, fetch_offset, div_epoch,
                                     div_end))
        goto out;
    broker_replica_rule_fetched(r, fetch_offset, leo, broker_mono_ms(), broker_epoch);
    *hw_moved = advance_hw(p);
    send = maybe_expand(p, r, &pr);
out:
    pthread_mutex_unlock(&p->mu);
    if (send) send_proposal(&pr);
    return err;
}

bool broker_replica_leader_throttle(broker_partition_t *p, int32_t replica_id, bool *counted) {
    *counted = false;
    if (!p->replicated) return false;
    pthread_mutex_lock(&p->mu);
    bool throttled = p->leader_throttled;
    bool in_sync = p->rs && has(p->rs->isr, p->rs->n_isr, replica_id);
    pthread_mutex_unlock(&p->mu);
    *counted = throttled;
    return throttled && !in_sync && repl_quota_exceeded(&p->b->leader_quota, broker_mono_ms());
}

void broker_replica_epoch_end(broker_partition_t *p, int32_t epoch, int32_t *out_epoch,
                              int64_t *out_end) {
    pthread_mutex_lock(&p->mu);
    if (p->replicated) {
        log_epochs_end_offset(&p->epochs, epoch, log_end_offset(p->log), out_epoch, out_end);
    } else {
        /* One node: every batch carries the one epoch it has ever had; an
         * older epoch ends where the log starts. */
        *out_epoch = epoch <= p->leader_epoch ? epoch : -1;
        *out_end = epoch == p->leader_epoch  ? log_end_offset(p->log)
                   : epoch < p->leader_epoch ? log_start_offset(p->log)
                                             : -1;
    }
    pthread_mutex_unlock(&p->mu);
}

int32_t broker_replica_preferred_read(broker_partition_t *p, sm_str_t client_rack) {
    broker_t *b = p->b;
    if (!p->replicated || !b->s.rack_aware_selector || client_rack.len <= 0) return -1;
    int32_t isr[64];
    int32_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (int32_t i = 0; atomic_load(&p->leader) && i < p->rs->n_isr && n < 64; i++)
        isr[n++] = p->rs->isr[i];
    pthread_mutex_unlock(&p->mu);
    int32_t best = -1;
    meta_image_rdlock(&b->image);
    for (int32_t i = 0; i < n; i++) {
        const meta_broker_t *bk = meta_image_broker(&b->image, isr[i]);
        if (!bk || bk->fenced || !bk->has_rack || strlen(bk->rack) != (size_t)client_rack.len ||
            memcmp(bk->rack, client_rack.ptr, (size_t)client_rack.len) != 0)
            continue;
        /* The leader itself when it is in the client's rack. */
        if (best < 0 || isr[i] == b->s.node_id) best = isr[i];
    }
    meta_image_unlock(&b->image);
    return best == b->s.node_id ? -1 : best;
}

void broker_replica_tick(broker_partition_t *p, int64_t now_ms) {
    if (!p->replicated) return;
    proposal_t pr;
    bool send = false;
    pthread_mutex_lock(&p->mu);
    replica_set_t *rs = p->rs;
    if (!atomic_load(&p->leader) || rs->alter_inflight) goto out;
    int32_t self = p->b->s.node_id;
    int64_t lag = p->b->s.replica_lag_time_max_ms;
    int64_t leo = log_end_offset(p->log);
    int32_t isr[64];
    int32_t n = 0;
    bool shrink = false;
    for (int32_t i = 0; i < rs->n_isr && n < 64; i++) {
        const replica_peer_t *r = peer_of(rs, rs->isr[i]);
        /* Out of sync: behind, and not caught up for replica.lag.time.max.ms. */
        bool out = rs->isr[i] != self && broker_replica_rule_out_of_sync(r, leo, now_ms, lag);
        if (out) {
            shrink = true;
            sm_info(REPL_MOD,
                    "%s-%d: replica %d out of sync (log end %lld of %lld, caught up %lld ms "
                    "ago)",
                    p->topic, p->index, r->id, (long long)r->leo, (long long)leo,
                    (long long)(now_ms - r->last_caught_up_ms));
        } else {
            isr[n++] = rs->isr[i];
        }
    }
    if (shrink) {
        send = propose(p, isr, n, &pr);
    } else {
        for (int32_t i = 0; i < rs->n && !send; i++)
            if (rs->peers[i].id != self) send = maybe_expand(p, &rs->peers[i], &pr);
    }
out:
    pthread_mutex_unlock(&p->mu);
    if (send) send_proposal(&pr);
}

/* ---- follower side ---- */

static bool following(broker_partition_t *p, int32_t leader) {
    return p->replicated && !atomic_load(&p->leader) && p->leader_id == leader &&
           !atomic_load(&p->deleted);
}

bool broker_replica_fetch_pos(broker_partition_t *p, int32_t leader, replica_fetch_pos_t *pos) {
    pthread_mutex_lock(&p->mu);
    bool ok = following(p, leader);
    if (ok) {
        pos->fetch_offset = log_end_offset(p->log);
        pos->last_fetched_epoch = log_epochs_latest(&p->epochs);
        pos->current_leader_epoch = p->leader_epoch;
        pos->log_start = log_start_offset(p->log);
        /* Kafka's follower is in sync once it fetched up to the leader's HW. */
        pos->throttled = p->follower_throttled;
        pos->in_sync = has(p->rs->isr, p->rs->n_isr, p->b->s.node_id) ||
                       (p->rs->leader_hw >= 0 && pos->fetch_offset >= p->rs->leader_hw);
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

/* Under mu: the follower's HW from the leader's, never past its own end. */
static bool follower_hw(broker_partition_t *p, int64_t leader_hw) {
    int64_t leo = log_end_offset(p->log);
    int64_t hw = leader_hw < leo ? leader_hw : leo;
    if (hw <= atomic_load(&p->hw)) return false;
    set_hw(p, hw);
    return true;
}

int broker_replica_follower_append(broker_partition_t *p, int32_t leader, int64_t fetch_offset,
                                   const uint8_t *records, size_t len, int64_t leader_hw,
                                   int64_t leader_log_start) {
    int rc = SM_OK;
    bool moved = false;
    pthread_mutex_lock(&p->mu);
    if (!following(p, leader) || log_end_offset(p->log) != fetch_offset) goto out;
    /* Complete batches only (a response may end inside one), each CRC-checked. */
    proto_batch_iter_t it;
    const uint8_t *bp;
    size_t blen, whole = 0;
    proto_batch_header_t h;
    proto_batch_iter_init(&it, records, len);
    while (proto_batch_iter_next(&it, &bp, &blen, &h) == 1) {
        if (proto_batch_compute_crc(bp, blen) != h.crc) {
            sm_warn(REPL_MOD, "%s-%d: batch at %lld from leader %d fails its CRC", p->topic,
                    p->index, (long long)h.base_offset, leader);
            rc = SM_ERR_CORRUPT;
            break;
        }
        whole += blen;
    }
    if (whole > 0) {
        int64_t first, last;
        int arc = log_append_as_follower(p->log, (uint8_t *)records, whole, &first, &last);
        if (arc != SM_OK) {
            rc = arc;
            goto out;
        }
        proto_batch_iter_init(&it, records, whole);
        while (proto_batch_iter_next(&it, &bp, &blen, &h) == 1) {
            if (log_epochs_assign(&p->epochs, h.partition_leader_epoch, h.base_offset) != SM_OK)
                sm_warn(REPL_MOD, "%s-%d: leader-epoch-checkpoint not written", p->topic, p->index);
            if (broker_partition_replay_batch(p, bp, blen, &h) != SM_OK)
                sm_warn(REPL_MOD, "%s-%d: producer state not updated at %lld", p->topic, p->index,
                        (long long)h.base_offset);
        }
        broker_partition_after_append(p);
    }
    if (leader_log_start > log_start_offset(p->log) && leader_log_start <= log_end_offset(p->log)) {
        if (log_delete_records_before(p->log, leader_log_start) != SM_OK ||
            log_epochs_truncate_from_start(&p->epochs, leader_log_start) != SM_OK)
            sm_warn(REPL_MOD, "%s-%d: log start not moved to the leader's %lld", p->topic, p->index,
                    (long long)leader_log_start);
    }
    /* Consumers reading from this follower (KIP-392) see the new HW. */
    moved = follower_hw(p, leader_hw);
    p->rs->leader_hw = leader_hw;
out:
    pthread_mutex_unlock(&p->mu);
    if (moved) broker_wake(p->b, p);
    return rc;
}

/* Under mu: cuts the log at end and everything derived from it. */
static int truncate_to(broker_partition_t *p, int64_t end, const char *why) {
    int64_t leo = log_end_offset(p->log);
    /* Nothing to cut; but an epoch that begins at the log end holds no batch (a leadership
     * that wrote nothing, taken while the real leader had moved on): it goes, or every
     * fetch names it as the last fetched epoch and diverges again. */
    if (end == leo) return log_epochs_truncate_from_end(&p->epochs, leo);
    if (end > leo) return SM_OK;
    sm_info(REPL_MOD, "%s-%d: truncating from %lld to %lld (%s)", p->topic, p->index,
            (long long)leo, (long long)end, why);
    int rc = log_truncate_to(p->log, end);
    if (rc == SM_OK) rc = log_epochs_truncate_from_end(&p->epochs, log_end_offset(p->log));
    if (rc == SM_OK) broker_partition_log_truncated(p);
    int64_t hw = atomic_load(&p->hw);
    if (hw > log_end_offset(p->log)) set_hw(p, log_end_offset(p->log));
    return rc;
}

int broker_replica_diverged(broker_partition_t *p, int32_t leader, int32_t epoch, int64_t end) {
    int rc = SM_OK;
    pthread_mutex_lock(&p->mu);
    if (!following(p, leader)) goto out;
    /* Both have the epoch: they agree up to the earlier of its ends. Ours
     * lacks it: cut to the end of our newest epoch below it (the next fetch
     * compares that one). The leader knows none of ours: keep our HW. */
    int64_t to = broker_replica_rule_truncation(&p->epochs, log_end_offset(p->log),
                                                atomic_load(&p->hw), epoch, end);
    rc = truncate_to(p, to, "diverged from the leader");
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int broker_replica_out_of_range(broker_partition_t *p, int32_t leader, int64_t fetch_offset,
                                int64_t leader_log_start, int64_t leader_hw) {
    int rc = SM_OK;
    pthread_mutex_lock(&p->mu);
    if (!following(p, leader)) goto out;
    if (fetch_offset < leader_log_start) {
        sm_info(REPL_MOD, "%s-%d: restarting the log at the leader's start %lld", p->topic,
                p->index, (long long)leader_log_start);
        rc = log_truncate_fully(p->log, leader_log_start);
        if (rc == SM_OK) rc = log_epochs_clear(&p->epochs);
        if (rc == SM_OK) broker_partition_log_truncated(p);
        set_hw(p, leader_log_start);
    } else if (leader_hw >= 0) {
        rc = truncate_to(p, leader_hw, "ahead of the leader");
    }
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}
