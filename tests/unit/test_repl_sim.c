/*
 * Deterministic simulation of partition replication: 3 to 5 brokers replicate one partition
 * under a single controller on a seeded clock and network (delays, drops, reordering, cut
 * links and healing), with brokers killed (the unflushed tail of their logs lost on some
 * seeds, as in a power loss), shut down cleanly and restarted, and producers sending
 * acks=all records to whichever broker believes it leads.
 *
 * The decisions are Samsa's own: the controller's elections, eligible leader replicas
 * (KIP-966), unclean-shutdown handling and AlterPartition check (src/metadata/replicas.c),
 * the leader's high watermark, ISR shrink and expand, its record of follower fetches, the
 * KIP-320 divergence check and the follower's truncation point (src/broker/replica_rules.c,
 * which src/broker/replica.c calls), on in-memory leader-epoch caches
 * (src/storage/leader_epochs.c). The simulation plays the rest of replica.c (when to apply
 * what, as it does), the controller's record application and the network.
 *
 * A checker runs after every event: no acknowledged record is missing from, or at another
 * offset in, the log of a later leader or below any replica's HW; replicas agree below
 * their HWs; a leader's HW never moves back within its epoch; the leader epoch a broker
 * knows and the epochs along a log never decrease; at most one broker leads an epoch; no
 * record is in a log twice. A loss is allowed only after an unclean election (allowed, or
 * the last-known-leader rule): it is counted, and the agreement check stops for that seed;
 * a power loss alone never explains one. On failure: the seed, the broken rule and the last
 * events.
 *
 * Usage: test_repl_sim                                  the `make test` suite
 *        test_repl_sim --seeds N [--start S]            more seeds (every family)
 *        test_repl_sim --seed S [--bug B] [--trace]     one seed (B: 1 no divergence check,
 *                                                       2 HW from the leader's LEO alone,
 *                                                       3 a timed-out ISR change forgotten)
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "broker/replica_rules.h"
#include "metadata/replicas.h"
#include "protocol/errors.h"
#include "storage/leader_epochs.h"
#include "sim_rand.h"
#include "test.h"

#define MAXB 5
#define MAXLOG 1024
#define MAXREC 1024
#define MAXMSG 4096
#define BATCH 8
#define CTRL 0
#define CLIENT (MAXB + 1)
#define NODES (MAXB + 2)

#define LAG_MS 1000     /* replica.lag.time.max.ms */
#define SESSION_MS 1500 /* broker.session.timeout.ms */
#define ALTER_RETRY_MS 500
#define ALTER_TIMEOUT_MS 3000 /* the controller client's request timeout */
#define MAX_ALTERS 16
#define TICK_MS 10

/* ---- options ---- */
typedef struct sim_opts {
    uint64_t seed;
    int n;           /* brokers, replicas of the partition */
    int32_t min_isr; /* min.insync.replicas */
    bool elr;        /* eligible leader replicas on */
    bool unclean;    /* unclean.leader.election.enable */
    bool power_loss; /* kills lose the unflushed tail */
    int bug;         /* 0 none; 1 no divergence check; 2 HW from the leader's LEO; 3 a
                      * timed-out ISR change no longer counts in the HW (the rule before
                      * this simulation found it) */
    int64_t run_ms, calm_ms;
    bool trace;
} sim_opts_t;

/* ---- the world ---- */
typedef struct entry {
    int32_t epoch, rec;
} entry_t;

typedef enum {
    M_FETCH,
    M_FETCH_RESP,
    M_ALTER,
    M_ALTER_RESP,
    M_META,
    M_HEARTBEAT,
    M_REGISTER,
    M_REGISTER_RESP,
    M_PRODUCE
} mtype_t;

/* A partition's state as the metadata log carries it to brokers. */
typedef struct meta_view {
    int32_t leader, leader_epoch, partition_epoch, n_isr;
    int32_t isr[MAXB];
} meta_view_t;

typedef struct msg {
    mtype_t type;
    int from, to;
    int64_t at;
    int16_t err;
    int32_t i1, i2, i3; /* per type: ids, epochs */
    int64_t l1, l2, l3; /* per type: offsets, broker epochs */
    int32_t n;
    entry_t e[BATCH];
    int32_t ids[MAXB];
    int64_t epochs[MAXB];
    meta_view_t mv;
} msg_t;

typedef struct broker {
    int32_t id;
    bool up;
    int64_t restart_at;
    bool clean_stop; /* its last stop was a clean shutdown */
    entry_t log[MAXLOG];
    int64_t leo, flushed, hw, hw_ckpt;
    log_epochs_t epochs;
    int32_t pos[MAXREC]; /* offset of each record in the log, -1 */
    /* registration */
    int64_t broker_epoch, last_epoch; /* current; last registered (for a clean restart) */
    int64_t incarnation;              /* a new one at every start */
    int64_t register_sent;
    /* partition state (replica.c's broker_partition_t) */
    int32_t meta_pe; /* last metadata applied (the metadata log is ordered) */
    bool leader;
    int32_t leader_id, leader_epoch, partition_epoch;
    replica_peer_t peers[MAXB];
    int32_t n_isr, isr[MAXB], n_pending, pending[MAXB], pending_base_pe;
    bool alter_inflight, pending_unresolved;
    int64_t alter_retry_ms, leader_hw;
    /* AlterPartition requests whose callback has not run (cluster_alter_partition: it runs
     * exactly once, with the answer or REQUEST_TIMED_OUT) */
    int32_t alter_seq, n_alters;
    struct {
        int32_t seq;
        int64_t deadline;
    } alters[MAX_ALTERS];
    /* timers */
    int64_t next_hb, next_tick, next_flush, fetch_sent;
    bool fetch_inflight;
    int32_t fetch_seq;
    /* checker */
    int64_t checked; /* log[0, checked) compared with the committed log */
    int32_t max_epoch_known, hw_epoch;
    int64_t hw_seen;
} broker_t;

typedef struct ctrl_broker {
    bool registered, fenced;
    int64_t epoch, last_hb, incarnation;
} ctrl_broker_t;

typedef enum { R_NONE, R_PENDING, R_ACKED, R_FAILED, R_LOST } rec_state_t;
typedef struct rec {
    rec_state_t state;
    int32_t broker;
    int64_t offset;
    bool exposed; /* a copy was lost in a power loss */
} rec_t;

#define TRACE_N 64
static struct world {
    sim_opts_t o;
    int64_t now;
    broker_t b[MAXB + 1];
    /* controller */
    meta_partition_t p;
    int32_t c_replicas[MAXB], c_isr[MAXB], c_elr[MAXB], c_lke[MAXB];
    ctrl_broker_t cb[MAXB + 1];
    int64_t next_broker_epoch, next_ctrl_tick;
    /* network */
    msg_t *q;
    int nq;
    bool cut[NODES][NODES];
    int64_t heal_at;
    /* producers and the checker */
    rec_t recs[MAXREC];
    int32_t n_recs;
    entry_t committed[MAXLOG];
    int64_t n_committed;
    int32_t epoch_leader[4096];
    bool unclean_happened, failed;
    char why[512];
    char trace[TRACE_N][160];
    int trace_next;
    /* figures */
    long long steps, acked, lost, elections, unclean_elections, truncations, shrinks, expands,
        kills, power_losses, clean_stops, cuts, refused_produce, calm_acked;
} W;

static void tr(const char *fmt, ...) {
    char *line = W.trace[W.trace_next++ % TRACE_N];
    int k = snprintf(line, 160, "%6lld ", (long long)W.now);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, (size_t)(160 - k), fmt, ap);
    va_end(ap);
    if (W.o.trace) fprintf(stderr, "%s\n", line);
}

static void fail(const char *fmt, ...) {
    if (W.failed) return;
    W.failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(W.why, sizeof(W.why), fmt, ap);
    va_end(ap);
}

static bool in(const int32_t *v, int32_t n, int32_t id) { return meta_id_in(v, n, id); }

/* ---- network ---- */
static msg_t *send_msg(mtype_t type, int from, int to) {
    static msg_t sink;
    memset(&sink, 0, sizeof(sink));
    if (W.nq >= MAXMSG || W.cut[from][to] || (W.now < W.o.run_ms && chance(0.02)))
        return &sink; /* lost */
    msg_t *m = &W.q[W.nq++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = from;
    m->to = to;
    m->at = W.now + 1 + rnd(chance(0.05) ? 300 : 25);
    return m;
}

/* ---- controller ---- */
static meta_broker_state_t ctrl_broker_state(void *ctx, int32_t id) {
    (void)ctx;
    if (id < 1 || id > W.o.n) return (meta_broker_state_t){0};
    const ctrl_broker_t *c = &W.cb[id];
    return (meta_broker_state_t){c->registered, c->fenced, false, c->epoch};
}

typedef struct view_buf {
    int32_t usable[MAXB];
    meta_broker_view_t v;
} view_buf_t;

/* The brokers that may lead: registered, unfenced, not `gone`. */
static void ctrl_view(int32_t gone, view_buf_t *vb) {
    int n = 0;
    for (int32_t i = 1; i <= W.o.n; i++)
        if (i != gone && W.cb[i].registered && !W.cb[i].fenced) vb->usable[n++] = i;
    vb->v = (meta_broker_view_t){vb->usable, n, vb->usable, n};
}

static void meta_of(meta_view_t *mv) {
    mv->leader = W.p.leader;
    mv->leader_epoch = W.p.leader_epoch;
    mv->partition_epoch = W.p.partition_epoch;
    mv->n_isr = W.p.n_isr;
    memcpy(mv->isr, W.p.isr, sizeof(int32_t) * (size_t)W.p.n_isr);
}

static void ctrl_publish(void) {
    for (int i = 1; i <= W.o.n; i++) {
        msg_t *m = send_msg(M_META, CTRL, i);
        meta_of(&m->mv);
    }
}

static void fmt_ids(char *buf, size_t cap, const int32_t *v, int32_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int32_t i = 0; i < n && k + 4 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? "," : "", v[i]);
}

/* Applies a change as the image does a PartitionChangeRecord (and add_change's clearing of
 * the ELR on an unclean election). */
static void ctrl_apply(const meta_partition_change_t *ch, const char *why) {
    if (!ch->changed) return;
    meta_partition_t *p = &W.p;
    if (ch->leader != -2) {
        p->leader = ch->leader;
        p->leader_epoch++;
        W.elections++;
    }
    if (ch->isr_changed) {
        p->n_isr = ch->n_isr;
        memcpy(p->isr, ch->isr, sizeof(int32_t) * (size_t)ch->n_isr);
    }
    if (ch->elr_changed) {
        p->n_elr = ch->n_elr;
        memcpy(p->elr, ch->elr, sizeof(int32_t) * (size_t)ch->n_elr);
        p->n_last_known_elr = ch->n_last_known_elr;
        memcpy(p->last_known_elr, ch->last_known_elr,
               sizeof(int32_t) * (size_t)ch->n_last_known_elr);
    } else if (ch->unclean) {
        p->n_elr = p->n_last_known_elr = 0;
    }
    if (ch->unclean) {
        /* the new leader's log decides: replicas may disagree below their HWs */
        W.unclean_happened = true;
        W.unclean_elections++;
    }
    p->partition_epoch++;
    char isr[64], elr[64], lke[64];
    fmt_ids(isr, sizeof(isr), p->isr, p->n_isr);
    fmt_ids(elr, sizeof(elr), p->elr, p->n_elr);
    fmt_ids(lke, sizeof(lke), p->last_known_elr, p->n_last_known_elr);
    tr("ctrl %s: leader %d epoch %d pe %d isr [%s] elr [%s] lke [%s]%s", why, p->leader,
       p->leader_epoch, p->partition_epoch, isr, elr, lke, ch->unclean ? " UNCLEAN" : "");
    ctrl_publish();
}

static int32_t ctrl_min_isr(void) { return W.o.elr ? W.o.min_isr : 0; }

static void ctrl_fence(int32_t id, const char *why) {
    view_buf_t vb;
    ctrl_view(id, &vb);
    meta_partition_change_t ch;
    meta_partition_elect_elr(&W.p, id, &vb.v, W.o.unclean, ctrl_min_isr(), &ch);
    W.cb[id].fenced = true;
    tr("ctrl fences %d (%s)", id, why);
    ctrl_apply(&ch, "fence");
}

static void ctrl_receive(const msg_t *m) {
    int32_t id = m->from;
    ctrl_broker_t *c = &W.cb[id];
    if (m->type == M_REGISTER) {
        bool restarted = c->registered && c->incarnation != m->l2;
        /* another incarnation of it is alive: refused (it asks again) */
        if (restarted && !c->fenced && W.now - c->last_hb < SESSION_MS) return;
        bool unclean = W.o.elr && restarted && m->l1 != c->epoch;
        if (unclean && (in(W.p.isr, W.p.n_isr, id) || in(W.p.elr, W.p.n_elr, id))) {
            view_buf_t vb;
            ctrl_view(id, &vb);
            meta_partition_change_t ch;
            meta_partition_unclean_shutdown(&W.p, id, &vb.v, W.o.unclean, ctrl_min_isr(), &ch);
            tr("ctrl: %d registers after an unclean shutdown", id);
            ctrl_apply(&ch, "unclean shutdown");
        }
        c->registered = true;
        c->fenced = true;
        c->epoch = W.next_broker_epoch++;
        c->incarnation = m->l2;
        c->last_hb = W.now;
        tr("ctrl registers %d at broker epoch %lld (fenced)", id, (long long)c->epoch);
        msg_t *r = send_msg(M_REGISTER_RESP, CTRL, id);
        r->l1 = c->epoch;
        r->l2 = m->l2;
        return;
    }
    if (m->type == M_HEARTBEAT) {
        if (!c->registered || m->l1 != c->epoch) {
            msg_t *r = send_msg(M_META, CTRL, id);
            r->err = PROTO_ERR_STALE_BROKER_EPOCH;
            return;
        }
        c->last_hb = W.now;
        if (c->fenced) {
            c->fenced = false;
            tr("ctrl unfences %d", id);
            if (W.p.leader < 0) {
                view_buf_t vb;
                ctrl_view(-1, &vb);
                meta_partition_change_t ch;
                meta_partition_elect_elr(&W.p, -1, &vb.v, W.o.unclean, ctrl_min_isr(), &ch);
                ctrl_apply(&ch, "unfence");
            }
        }
        msg_t *r = send_msg(M_META, CTRL, id); /* the metadata log reaches it */
        meta_of(&r->mv);
        return;
    }
    if (m->type == M_ALTER) {
        msg_t *r = send_msg(M_ALTER_RESP, CTRL, id);
        r->i3 = m->i3;
        if (!c->registered || m->l1 != c->epoch) {
            r->err = PROTO_ERR_STALE_BROKER_EPOCH;
            return;
        }
        meta_isr_member_t isr[MAXB];
        for (int32_t i = 0; i < m->n; i++)
            isr[i] = (meta_isr_member_t){m->ids[i], m->epochs[i]};
        bool same = false;
        int16_t err = meta_alter_partition_check(&W.p, id, m->i1, m->i2, isr, m->n,
                                                 ctrl_broker_state, NULL, &same);
        r->err = err;
        if (err != PROTO_ERR_NONE) {
            tr("ctrl refuses AlterPartition of %d: %s", id, proto_error_name(err));
            return;
        }
        if (!same) {
            meta_partition_change_t ch = {.changed = true, .leader = -2, .isr_changed = true};
            ch.n_isr = m->n;
            memcpy(ch.isr, m->ids, sizeof(int32_t) * (size_t)m->n);
            if (ctrl_min_isr() > 0) meta_partition_settle_elr(&W.p, ctrl_min_isr(), NULL, 0, &ch);
            ctrl_apply(&ch, "AlterPartition");
        }
        meta_of(&r->mv);
    }
}

static void ctrl_tick(void) {
    for (int32_t i = 1; i <= W.o.n; i++) {
        ctrl_broker_t *c = &W.cb[i];
        if (c->registered && !c->fenced && W.now - c->last_hb > SESSION_MS)
            ctrl_fence(i, "session expired");
    }
}

/* ---- brokers: the log ---- */
static void log_cut(broker_t *b, int64_t end) {
    for (int64_t o = end; o < b->leo; o++)
        b->pos[b->log[o].rec] = -1;
    if (end < b->leo) b->leo = end;
    if (b->flushed > b->leo) b->flushed = b->leo;
    if (b->checked > b->leo) b->checked = b->leo;
}

static void log_append(broker_t *b, entry_t e) {
    if (b->leo >= MAXLOG) {
        fail("log of broker %d full", b->id);
        return;
    }
    if (b->pos[e.rec] >= 0)
        fail("record %d appended twice to broker %d (offsets %d and %lld)", e.rec, b->id,
             b->pos[e.rec], (long long)b->leo);
    if (b->leo > 0 && e.epoch < b->log[b->leo - 1].epoch)
        fail("broker %d appends epoch %d after epoch %d", b->id, e.epoch, b->log[b->leo - 1].epoch);
    b->pos[e.rec] = (int32_t)b->leo;
    b->log[b->leo++] = e;
}

/* replica.c's truncate_to */
static void truncate_to(broker_t *b, int64_t end, const char *why) {
    if (end == b->leo) {
        if (log_epochs_truncate_from_end(&b->epochs, b->leo) != SM_OK) fail("epochs");
        return;
    }
    if (end > b->leo) return;
    tr("b%d truncates %lld -> %lld (%s)", b->id, (long long)b->leo, (long long)end, why);
    W.truncations++;
    log_cut(b, end);
    if (log_epochs_truncate_from_end(&b->epochs, b->leo) != SM_OK) fail("epochs");
    if (b->hw > b->leo) b->hw = b->leo;
}

/* ---- brokers: the leader side ---- */
static replica_peer_t *peer_of(broker_t *b, int32_t id) {
    for (int i = 0; i < W.o.n; i++)
        if (b->peers[i].id == id) return &b->peers[i];
    return NULL;
}

static bool advance_hw(broker_t *b) {
    if (!b->leader) return false;
    int64_t least;
    if (W.o.bug == 2)
        least = b->leo;
    else
        least = broker_replica_rule_hw(
            b->leo, b->id, b->peers, W.o.n, b->isr, b->n_isr, b->pending,
            b->alter_inflight || b->pending_unresolved ? b->n_pending : 0, W.o.elr, W.o.min_isr);
    if (least < 0 || least <= b->hw) return false;
    b->hw = least;
    return true;
}

static bool propose(broker_t *b, const int32_t *isr, int32_t n) {
    if (b->alter_inflight || W.now < b->alter_retry_ms) return false;
    if (b->pending_unresolved) {
        isr = b->pending;
        n = b->n_pending;
    }
    b->alter_inflight = true;
    memmove(b->pending, isr, sizeof(int32_t) * (size_t)n);
    b->n_pending = n;
    b->pending_base_pe = b->partition_epoch;
    int32_t seq = ++b->alter_seq;
    if (b->n_alters < MAX_ALTERS) {
        b->alters[b->n_alters].seq = seq;
        b->alters[b->n_alters++].deadline = W.now + ALTER_TIMEOUT_MS;
    }
    msg_t *m = send_msg(M_ALTER, b->id, CTRL);
    m->i3 = seq;
    m->i1 = b->leader_epoch;
    m->i2 = b->partition_epoch;
    m->l1 = b->broker_epoch;
    m->n = n;
    for (int32_t i = 0; i < n; i++) {
        m->ids[i] = isr[i];
        const replica_peer_t *r = peer_of(b, isr[i]);
        m->epochs[i] = r && isr[i] != b->id ? r->broker_epoch : -1;
    }
    char s[64];
    fmt_ids(s, sizeof(s), isr, n);
    tr("b%d proposes ISR [%s] (le %d pe %d)", b->id, s, b->leader_epoch, b->partition_epoch);
    return true;
}

static void maybe_expand(broker_t *b, const replica_peer_t *r) {
    if (in(b->isr, b->n_isr, r->id) ||
        !broker_replica_rule_may_join(r, b->hw, log_epochs_latest_start(&b->epochs)))
        return;
    int32_t isr[MAXB];
    int32_t n = 0;
    for (int32_t i = 0; i < b->n_isr; i++)
        isr[n++] = b->isr[i];
    isr[n++] = r->id;
    if (propose(b, isr, n)) W.expands++;
}

static void leader_tick(broker_t *b) {
    if (!b->leader || b->alter_inflight) return;
    int32_t isr[MAXB];
    int32_t n = 0;
    bool shrink = false;
    for (int32_t i = 0; i < b->n_isr; i++) {
        const replica_peer_t *r = peer_of(b, b->isr[i]);
        if (b->isr[i] != b->id && broker_replica_rule_out_of_sync(r, b->leo, W.now, LAG_MS))
            shrink = true;
        else
            isr[n++] = b->isr[i];
    }
    if (shrink) {
        if (propose(b, isr, n)) W.shrinks++;
        return;
    }
    for (int i = 0; i < W.o.n && !b->alter_inflight; i++)
        if (b->peers[i].id != b->id) maybe_expand(b, &b->peers[i]);
}

static void on_fetch(broker_t *b, const msg_t *m) {
    msg_t *r = send_msg(M_FETCH_RESP, b->id, m->from);
    r->i3 = m->i3; /* the fetch's sequence number */
    r->l1 = m->l1; /* fetch offset */
    r->i2 = -1;
    replica_peer_t *peer = peer_of(b, m->from);
    if (!b->leader || !peer) {
        r->err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
        return;
    }
    if (m->i2 != b->leader_epoch) { /* the handler's current leader epoch check */
        r->err = m->i2 < b->leader_epoch ? PROTO_ERR_FENCED_LEADER_EPOCH
                                         : PROTO_ERR_UNKNOWN_LEADER_EPOCH;
        return;
    }
    int32_t div_epoch;
    int64_t div_end;
    if (W.o.bug != 1 &&
        broker_replica_rule_diverges(&b->epochs, b->leo, m->i1, m->l1, &div_epoch, &div_end)) {
        r->i2 = div_epoch;
        r->l2 = div_end;
        r->l3 = -2; /* diverged */
        return;
    }
    broker_replica_rule_fetched(peer, m->l1, b->leo, W.now, m->l2);
    advance_hw(b);
    maybe_expand(b, peer);
    r->l3 = b->hw;
    for (int64_t o = m->l1; o < b->leo && o >= 0 && r->n < BATCH; o++)
        r->e[r->n++] = b->log[o];
}

/* Its parked acks=all produces are answered with an error (leadership lost, or it stopped). */
static void fail_pending(broker_t *b) {
    for (int32_t i = 0; i < W.n_recs; i++)
        if (W.recs[i].state == R_PENDING && W.recs[i].broker == b->id) W.recs[i].state = R_FAILED;
}

static void on_produce(broker_t *b, const msg_t *m) {
    int32_t rec = m->i1;
    if (!b->leader || b->n_isr < W.o.min_isr) {
        W.recs[rec].state = R_FAILED;
        W.refused_produce++;
        return;
    }
    W.recs[rec].state = R_PENDING;
    W.recs[rec].broker = b->id;
    W.recs[rec].offset = b->leo;
    log_append(b, (entry_t){b->leader_epoch, rec});
    advance_hw(b);
}

/* ---- brokers: the follower side ---- */
static void on_fetch_resp(broker_t *b, const msg_t *m) {
    if (m->i3 != b->fetch_seq) return; /* an answer to an older fetch */
    b->fetch_inflight = false;
    if (m->err != PROTO_ERR_NONE) return;
    if (b->leader || b->leader_id != m->from) return; /* following(p, leader) */
    if (m->l3 == -2) {
        int64_t to = broker_replica_rule_truncation(&b->epochs, b->leo, b->hw, m->i2, m->l2);
        truncate_to(b, to, "diverged from the leader");
        return;
    }
    if (b->leo != m->l1) return;
    for (int32_t i = 0; i < m->n; i++) {
        log_append(b, m->e[i]);
        if (log_epochs_assign(&b->epochs, m->e[i].epoch, b->leo - 1) != SM_OK) fail("epochs");
    }
    int64_t hw = m->l3 < b->leo ? m->l3 : b->leo;
    if (hw > b->hw) b->hw = hw;
    b->leader_hw = m->l3;
}

/* replica.c's broker_replica_update */
static void on_meta(broker_t *b, const meta_view_t *mv) {
    if (mv->partition_epoch <= b->meta_pe) return;
    b->meta_pe = mv->partition_epoch;
    if (mv->leader_epoch < b->max_epoch_known)
        fail("broker %d learns leader epoch %d after %d", b->id, mv->leader_epoch,
             b->max_epoch_known);
    b->max_epoch_known = mv->leader_epoch;
    bool was_leader = b->leader;
    int32_t old_leader = b->leader_id, old_epoch = b->leader_epoch;
    if (mv->partition_epoch > b->pending_base_pe) b->pending_unresolved = false;
    if (mv->partition_epoch >= b->partition_epoch) {
        b->n_isr = mv->n_isr;
        memcpy(b->isr, mv->isr, sizeof(int32_t) * (size_t)mv->n_isr);
        b->partition_epoch = mv->partition_epoch;
    }
    b->leader_id = mv->leader;
    b->leader_epoch = mv->leader_epoch;
    bool now_leader = mv->leader == b->id;
    if (now_leader && (!was_leader || old_epoch != mv->leader_epoch)) {
        if (log_epochs_assign(&b->epochs, mv->leader_epoch, b->leo) != SM_OK) fail("epochs");
        for (int i = 0; i < W.o.n; i++) {
            replica_peer_t *r = &b->peers[i];
            r->leo = r->id == b->id ? b->leo : -1;
            r->last_caught_up_ms = W.now;
            r->last_fetch_ms = 0;
            r->leader_leo_at_last_fetch = -1;
        }
        b->alter_inflight = b->pending_unresolved = false;
        b->alter_retry_ms = 0;
        b->leader = true;
        tr("b%d leads at epoch %d (leo %lld hw %lld)", b->id, mv->leader_epoch, (long long)b->leo,
           (long long)b->hw);
        /* Leader completeness: every acknowledged record is here, at its offset. Checked
         * when this is the controller's current leader epoch: a delayed message of an older
         * one makes a leader nobody follows, which cannot acknowledge anything (what it
         * could do wrong the committed-log checks below catch). */
        for (int32_t i = 0; mv->leader_epoch == W.p.leader_epoch && i < W.n_recs; i++) {
            rec_t *r = &W.recs[i];
            if (r->state != R_ACKED) continue;
            if (r->offset < b->leo && b->log[r->offset].rec == i) continue;
            if (W.unclean_happened) {
                tr("acknowledged record %d (offset %lld) lost after an unclean election", i,
                   (long long)r->offset);
                r->state = R_LOST;
                W.lost++;
            } else {
                fail("new leader %d (epoch %d) lacks acknowledged record %d at offset %lld "
                     "(has %d)%s",
                     b->id, mv->leader_epoch, i, (long long)r->offset,
                     r->offset < b->leo ? b->log[r->offset].rec : -1,
                     r->exposed ? "; a power loss took a copy of it" : "");
            }
        }
    } else if (!now_leader) {
        if (was_leader) {
            b->leader = false;
            fail_pending(b);
        }
        if (old_leader != mv->leader) b->leader_hw = -1;
        if (old_leader != mv->leader || old_epoch != mv->leader_epoch)
            tr("b%d follows %d at epoch %d (leo %lld)", b->id, mv->leader, mv->leader_epoch,
               (long long)b->leo);
        if (old_leader != mv->leader) b->fetch_inflight = false;
    }
    if (now_leader) advance_hw(b);
}

/* Takes request seq off the outstanding ones; false when its callback already ran. */
static bool alter_called(broker_t *b, int32_t seq) {
    for (int32_t i = 0; i < b->n_alters; i++)
        if (b->alters[i].seq == seq) {
            b->alters[i] = b->alters[--b->n_alters];
            return true;
        }
    return false;
}

/* replica.c's alter_done */
static void on_alter_resp(broker_t *b, const msg_t *m) {
    if (!alter_called(b, m->i3)) return;
    b->alter_inflight = false;
    if (W.o.bug != 3)
        b->pending_unresolved =
            broker_replica_rule_alter_unresolved(m->err, b->pending_base_pe, b->partition_epoch);
    const meta_view_t *mv = &m->mv;
    if (m->err == PROTO_ERR_NONE && mv->partition_epoch > b->partition_epoch &&
        mv->leader_epoch == b->leader_epoch) {
        b->partition_epoch = mv->partition_epoch;
        b->n_isr = mv->n_isr;
        memcpy(b->isr, mv->isr, sizeof(int32_t) * (size_t)mv->n_isr);
    } else if (m->err != PROTO_ERR_NONE) {
        b->alter_retry_ms = W.now + ALTER_RETRY_MS;
    }
    advance_hw(b);
}

static void broker_receive(broker_t *b, const msg_t *m) {
    if (!b->up) return;
    if (m->type == M_REGISTER_RESP) {
        if (m->l2 != b->incarnation) return;
        b->broker_epoch = m->l1;
        b->last_epoch = m->l1;
        b->next_hb = W.now;
        return;
    }
    if (b->broker_epoch < 0) return; /* not registered yet */
    if (m->type == M_META && m->err == PROTO_ERR_STALE_BROKER_EPOCH) {
        b->broker_epoch = -1; /* registers again */
        return;
    }
    switch (m->type) {
    case M_FETCH: on_fetch(b, m); break;
    case M_FETCH_RESP: on_fetch_resp(b, m); break;
    case M_META: on_meta(b, &m->mv); break;
    case M_ALTER_RESP: on_alter_resp(b, m); break;
    case M_PRODUCE: on_produce(b, m); break;
    default: break;
    }
}

static void broker_timers(broker_t *b) {
    if (!b->up) {
        if (W.now >= b->restart_at && b->restart_at >= 0) {
            b->up = true;
            b->broker_epoch = -1;
            b->incarnation = W.next_broker_epoch++;
            b->register_sent = -10000;
            tr("b%d restarts (leo %lld hw %lld)", b->id, (long long)b->leo, (long long)b->hw);
        }
        return;
    }
    if (b->broker_epoch < 0) {
        if (W.now - b->register_sent >= 500) {
            msg_t *m = send_msg(M_REGISTER, b->id, CTRL);
            m->l1 = b->clean_stop ? b->last_epoch : -1;
            m->l2 = b->incarnation;
            b->register_sent = W.now;
        }
        return;
    }
    for (int32_t i = 0; i < b->n_alters; i++)
        if (W.now >= b->alters[i].deadline) {
            msg_t t = {.type = M_ALTER_RESP, .err = PROTO_ERR_REQUEST_TIMED_OUT};
            t.i3 = b->alters[i].seq;
            tr("b%d: AlterPartition timed out", b->id);
            on_alter_resp(b, &t);
            break;
        }
    if (W.now >= b->next_hb) {
        msg_t *m = send_msg(M_HEARTBEAT, b->id, CTRL);
        m->l1 = b->broker_epoch;
        b->next_hb = W.now + 250;
    }
    if (W.now >= b->next_tick) {
        leader_tick(b);
        b->next_tick = W.now + 100;
    }
    if (W.now >= b->next_flush) {
        b->flushed = b->leo;
        b->hw_ckpt = b->hw;
        b->next_flush = W.now + 50 + rnd(1000);
    }
    if (!b->leader && b->leader_id > 0 && (!b->fetch_inflight || W.now - b->fetch_sent > 1000)) {
        msg_t *m = send_msg(M_FETCH, b->id, b->leader_id);
        m->i1 = log_epochs_latest(&b->epochs);
        m->i2 = b->leader_epoch;
        m->i3 = ++b->fetch_seq;
        m->l1 = b->leo;
        m->l2 = b->broker_epoch;
        b->fetch_inflight = true;
        b->fetch_sent = W.now;
    }
}

/* ---- faults ---- */
static void stop_broker(broker_t *b, bool clean) {
    b->up = false;
    b->restart_at = W.now + 200 + rnd(3000);
    b->clean_stop = clean;
    fail_pending(b);
    if (clean) {
        /* Controlled shutdown: leaderships move first, everything is flushed. The
         * clean-shutdown markers hold this incarnation's broker epoch: -1 when it never
         * registered (the next registration then counts as after an unclean stop), and only
         * its own registration can ask for the handover. */
        W.clean_stops++;
        b->flushed = b->leo;
        b->hw_ckpt = b->hw;
        b->last_epoch = b->broker_epoch;
        const ctrl_broker_t *c = &W.cb[b->id];
        if (b->broker_epoch >= 0 && c->epoch == b->broker_epoch && !c->fenced)
            ctrl_fence(b->id, "controlled shutdown");
        tr("b%d shuts down cleanly", b->id);
    } else if (W.o.power_loss) {
        W.power_losses++;
        int64_t keep = b->flushed + rnd(b->leo - b->flushed + 1);
        for (int64_t o = keep; o < b->leo; o++)
            W.recs[b->log[o].rec].exposed = true;
        tr("b%d loses power (leo %lld -> %lld)", b->id, (long long)b->leo, (long long)keep);
        log_cut(b, keep);
    } else {
        W.kills++;
        tr("b%d killed", b->id);
    }
    /* what a restart finds: the durable log, the leader-epoch checkpoint less the entries
     * at or past its end, the HW checkpoint within the log */
    if (log_epochs_truncate_from_end(&b->epochs, b->leo) != SM_OK) fail("epochs");
    b->hw = b->hw_ckpt < b->leo ? b->hw_ckpt : b->leo;
    b->checked = b->checked < b->hw ? b->checked : b->hw;
    b->meta_pe = -1;
    b->leader = false;
    b->leader_id = -1;
    b->leader_epoch = -1;
    b->partition_epoch = -1;
    b->n_isr = b->n_pending = 0;
    b->alter_inflight = b->pending_unresolved = false;
    b->alter_retry_ms = 0;
    b->n_alters = 0;
    b->leader_hw = -1;
    b->fetch_inflight = false;
    b->hw_epoch = -1; /* a new incarnation starts from the HW checkpoint */
    for (int i = 0; i < W.o.n; i++)
        b->peers[i] = (replica_peer_t){i + 1, -1, 0, 0, -1, -1};
    /* its messages in flight are gone with its sockets */
    for (int i = 0; i < W.nq; i++)
        if (W.q[i].to == b->id || W.q[i].from == b->id) W.q[i].to = -1;
}

static void faults(void) {
    if (W.now >= W.o.run_ms) return;
    if (chance(0.004)) {
        broker_t *b = &W.b[1 + rnd(W.o.n)];
        int up = 0;
        for (int i = 1; i <= W.o.n; i++)
            up += W.b[i].up;
        if (b->up && up > 1) stop_broker(b, chance(0.3));
    }
    if (W.heal_at < 0 && chance(0.002)) {
        /* cut one node (a broker or the controller) from some others, or a broker from all */
        int x = (int)rnd(W.o.n + 1);
        W.cuts++;
        for (int y = 0; y <= W.o.n; y++)
            if (y != x && chance(0.6)) W.cut[x][y] = W.cut[y][x] = true;
        W.heal_at = W.now + 300 + rnd(4000);
        tr("network: node %d cut off", x);
    }
    if (W.heal_at >= 0 && W.now >= W.heal_at) {
        memset(W.cut, 0, sizeof(W.cut));
        W.heal_at = -1;
        tr("network healed");
    }
}

static void produce(void) {
    if (W.n_recs >= MAXREC || !chance(0.15)) return;
    int32_t cand[MAXB], n = 0;
    for (int32_t i = 1; i <= W.o.n; i++)
        if (W.b[i].up && W.b[i].leader) cand[n++] = i;
    if (n == 0) return;
    int32_t rec = W.n_recs++;
    W.recs[rec].state = R_FAILED; /* until a leader appends it */
    msg_t *m = send_msg(M_PRODUCE, CLIENT, cand[rnd(n)]);
    m->i1 = rec;
}

/* ---- the checker ---- */
static void check(void) {
    for (int32_t i = 1; i <= W.o.n && !W.failed; i++) {
        broker_t *b = &W.b[i];
        if (b->hw > b->leo)
            fail("broker %d: HW %lld past its log end %lld", i, (long long)b->hw,
                 (long long)b->leo);
        /* replicas agree below their HWs: each with the committed log */
        if (!W.unclean_happened)
            for (int64_t o = b->checked; o < b->hw && !W.failed; o++) {
                if (o == W.n_committed) W.committed[W.n_committed++] = b->log[o];
                if (W.committed[o].rec != b->log[o].rec || W.committed[o].epoch != b->log[o].epoch)
                    fail("broker %d has record %d (epoch %d) at offset %lld below its HW %lld, "
                         "where another has record %d (epoch %d)",
                         i, b->log[o].rec, b->log[o].epoch, (long long)o, (long long)b->hw,
                         W.committed[o].rec, W.committed[o].epoch);
            }
        if (b->checked < b->hw) b->checked = b->hw;
        if (b->leader && b->up) {
            int32_t e = b->leader_epoch;
            if (e >= 0 && e < 4096) {
                if (W.epoch_leader[e] == 0) W.epoch_leader[e] = i;
                if (W.epoch_leader[e] != i)
                    fail("brokers %d and %d both led epoch %d", W.epoch_leader[e], i, e);
            }
            if (b->hw_epoch == e && b->hw < b->hw_seen)
                fail("leader %d's HW moved back from %lld to %lld in epoch %d", i,
                     (long long)b->hw_seen, (long long)b->hw, e);
            b->hw_epoch = e;
            b->hw_seen = b->hw;
        }
    }
    /* acknowledgements (broker_replica_acked), each checked against the committed log */
    for (int32_t r = 0; r < W.n_recs && !W.failed; r++) {
        rec_t *x = &W.recs[r];
        if (x->state != R_PENDING) continue;
        broker_t *b = &W.b[x->broker];
        if (!b->leader || b->hw <= x->offset) continue;
        if (b->n_isr < W.o.min_isr) {
            x->state = R_FAILED;
            continue;
        }
        x->state = R_ACKED;
        W.acked++;
        if (W.now >= W.o.run_ms) W.calm_acked++;
        if (b->log[x->offset].rec != r)
            fail("leader %d acknowledges record %d at offset %lld, where it has record %d", b->id,
                 r, (long long)x->offset, b->log[x->offset].rec);
        else if (!W.unclean_happened &&
                 (x->offset >= W.n_committed || W.committed[x->offset].rec != r))
            fail("acknowledged record %d is not at offset %lld of the committed log", r,
                 (long long)x->offset);
    }
}

/* ---- running a seed ---- */
static void world_reset(const sim_opts_t *o) {
    msg_t *q = W.q;
    for (int i = 1; i <= MAXB; i++)
        log_epochs_free(&W.b[i].epochs);
    memset(&W, 0, sizeof(W));
    W.q = q;
    W.o = *o;
    W.heal_at = -1;
    W.next_broker_epoch = 100;
    prng_state = o->seed * 0x2545f4914f6cdd1dULL + 7;
    meta_partition_t *p = &W.p;
    p->replicas = W.c_replicas;
    p->isr = W.c_isr;
    p->elr = W.c_elr;
    p->last_known_elr = W.c_lke;
    p->n_replicas = p->n_isr = o->n;
    for (int i = 0; i < o->n; i++)
        W.c_replicas[i] = W.c_isr[i] = i + 1;
    p->leader = 1 + (int32_t)rnd(o->n);
    p->leader_epoch = 0;
    p->partition_epoch = 0;
    for (int i = 1; i <= o->n; i++) {
        broker_t *b = &W.b[i];
        b->id = i;
        b->up = true;
        b->restart_at = -1;
        b->register_sent = -10000;
        b->meta_pe = -1;
        b->leader_id = b->leader_epoch = b->partition_epoch = -1;
        b->leader_hw = -1;
        b->max_epoch_known = -1;
        b->hw_epoch = -1;
        b->next_flush = rnd(500);
        memset(b->pos, -1, sizeof(b->pos));
        for (int k = 0; k < o->n; k++)
            b->peers[k] = (replica_peer_t){k + 1, -1, 0, 0, -1, -1};
        /* registered before the run: unfenced, as after the cluster formed */
        b->incarnation = W.next_broker_epoch++;
        b->broker_epoch = b->last_epoch = W.next_broker_epoch++;
        W.cb[i] = (ctrl_broker_t){true, false, b->broker_epoch, 0, b->incarnation};
    }
}

static void deliver(int i) {
    msg_t m = W.q[i];
    W.q[i] = W.q[--W.nq];
    if (m.to < 0) return;
    W.steps++;
    if (m.to == CTRL)
        ctrl_receive(&m);
    else
        broker_receive(&W.b[m.to], &m);
    check();
}

static bool quiet_failures; /* the checker's own tests expect failures */

static int run_seed(const sim_opts_t *o) {
    if (!W.q) W.q = malloc(sizeof(msg_t) * MAXMSG);
    world_reset(o);
    tr("seed %llu: %d brokers, min ISR %d, ELR %s, unclean %s, power loss %s",
       (unsigned long long)o->seed, o->n, o->min_isr, o->elr ? "on" : "off",
       o->unclean ? "on" : "off", o->power_loss ? "on" : "off");
    ctrl_publish();
    for (W.now = 0; W.now < o->run_ms + o->calm_ms && !W.failed; W.now += TICK_MS) {
        /* messages due by now, in a random order */
        for (;;) {
            int due[MAXMSG], nd = 0;
            for (int i = 0; i < W.nq; i++)
                if (W.q[i].at <= W.now) due[nd++] = i;
            if (nd == 0 || W.failed) break;
            deliver(due[rnd(nd)]);
        }
        faults();
        if (W.now >= o->run_ms) { /* calm: everyone up, the network whole */
            memset(W.cut, 0, sizeof(W.cut));
            for (int i = 1; i <= o->n; i++)
                if (!W.b[i].up && W.b[i].restart_at > W.now) W.b[i].restart_at = W.now;
        }
        if (W.now % 100 == 0) ctrl_tick();
        for (int i = 1; i <= o->n; i++)
            broker_timers(&W.b[i]);
        produce();
        check();
    }
    if (o->trace) /* where everyone ended */
        for (int i = 1; i <= o->n; i++) {
            broker_t *b = &W.b[i];
            char isr[64];
            fmt_ids(isr, sizeof(isr), b->isr, b->n_isr);
            fprintf(stderr,
                    "b%d: %s, %s of epoch %d, log end %lld, HW %lld, ISR [%s]%s, latest epoch "
                    "%d from %lld\n",
                    i, b->up ? "up" : "down", b->leader ? "leader" : "follower", b->leader_epoch,
                    (long long)b->leo, (long long)b->hw, isr,
                    b->alter_inflight ? " (change in flight)" : "", log_epochs_latest(&b->epochs),
                    (long long)log_epochs_latest_start(&b->epochs));
        }
    /* Liveness where Kafka promises it: with every broker back and the network whole, the
     * partition takes acks=all records again: its ISR keeps its last member (no ELR), or an
     * ELR member leads, or with the ISR and ELR empty its last leader (Kafka's default
     * balanced recovery), or (where allowed) any replica. */
    if (!W.failed && W.calm_acked == 0)
        fail("no record acknowledged in the %lld ms after the faults stopped",
             (long long)o->calm_ms);
    if (W.failed && quiet_failures) return 1;
    if (W.failed) {
        fprintf(stderr, "seed %llu FAILED: %s\nlast events:\n", (unsigned long long)o->seed, W.why);
        for (int k = 0; k < TRACE_N; k++) {
            const char *line = W.trace[(W.trace_next + k) % TRACE_N];
            if (line[0]) fprintf(stderr, "  %s\n", line);
        }
        return 1;
    }
    return 0;
}

/* The seed families: sizes and settings from the seed. */
static int family_of(uint64_t seed) { return (int)((seed / 3) % 4); }

static sim_opts_t opts_for(uint64_t seed, int bug) {
    sim_opts_t o = {0};
    o.seed = seed;
    o.bug = bug;
    o.n = seed % 3 == 0 ? 5 : seed % 3 == 1 ? 3 : 4;
    int family = family_of(seed);
    o.elr = family != 1;
    o.min_isr = (int32_t)(1 + (seed / 12) % (uint64_t)(o.n > 3 ? 3 : 2));
    o.power_loss = family == 2;
    o.unclean = family == 3;
    o.run_ms = 20000;
    o.calm_ms = 10000;
    return o;
}

typedef struct totals {
    long long seeds, failed, steps, acked, lost, elections, unclean, truncations, shrinks, expands,
        kills, power, clean, cuts, calm_ok;
    long long f_seeds[4], f_calm_ok[4], f_unchecked[4], f_lost[4];
} totals_t;

static int run_many(uint64_t start, uint64_t n, int bug, totals_t *t, bool quiet) {
    int failed = 0;
    for (uint64_t s = start; s < start + n; s++) {
        sim_opts_t o = opts_for(s, bug);
        quiet_failures = quiet;
        int rc = run_seed(&o);
        quiet_failures = false;
        if (rc && !quiet)
            fprintf(stderr, "reproduce: test_repl_sim --seed %llu%s --trace\n",
                    (unsigned long long)s, bug ? " --bug N" : "");
        failed += rc != 0;
        t->seeds++;
        t->failed += rc != 0;
        t->steps += W.steps;
        t->acked += W.acked;
        t->lost += W.lost;
        t->elections += W.elections;
        t->unclean += W.unclean_elections;
        t->truncations += W.truncations;
        t->shrinks += W.shrinks;
        t->expands += W.expands;
        t->kills += W.kills;
        t->power += W.power_losses;
        t->clean += W.clean_stops;
        t->cuts += W.cuts;
        t->calm_ok += W.calm_acked > 0;
        int f = family_of(s);
        t->f_seeds[f]++;
        t->f_calm_ok[f] += W.calm_acked > 0;
        t->f_unchecked[f] += W.unclean_happened;
        t->f_lost[f] += W.lost;
    }
    return failed;
}

static void print_totals(const totals_t *t, double secs) {
    fprintf(stderr,
            "%lld seeds, %lld failed; %lld steps, %lld acknowledged, %lld lost after unclean "
            "elections, "
            "%lld elections (%lld unclean), %lld truncations, %lld ISR shrinks, %lld expands, "
            "%lld kills, %lld power losses, %lld clean stops, %lld cuts; %lld seeds made "
            "progress after the faults stopped; %.1f s\n",
            t->seeds, t->failed, t->steps, t->acked, t->lost, t->elections, t->unclean,
            t->truncations, t->shrinks, t->expands, t->kills, t->power, t->clean, t->cuts,
            t->calm_ok, secs);
    static const char *names[4] = {"ELR on, kills", "ELR off, kills", "ELR on, power losses",
                                   "unclean elections on"};
    for (int f = 0; f < 4; f++)
        fprintf(stderr,
                "  %-22s %6lld seeds, %6lld made progress after the faults, %6lld lost "
                "acknowledged records, %6lld seeds stopped the agreement check\n",
                names[f], t->f_seeds[f], t->f_calm_ok[f], t->f_lost[f], t->f_unchecked[f]);
}

static void test_sim_seeds(void) {
    totals_t t = {0};
    CHECK_EQ_INT(0, run_many(1, 2000, 0, &t, false));
    print_totals(&t, 0);
    CHECK(t.acked > 10000);
    CHECK(t.elections > 1000);
    CHECK(t.truncations > 50);
    CHECK(t.shrinks > 100 && t.expands > 100);
    CHECK(t.calm_ok > t.seeds / 3);
}

/* The checker catches broken rules: each injected bug fails some seeds. */
static void test_checker_catches_no_divergence_check(void) {
    totals_t t = {0};
    run_many(1, 300, 1, &t, true);
    fprintf(stderr, "bug 1 (no divergence check): %lld of %lld seeds fail\n", t.failed, t.seeds);
    CHECK(t.failed > 0);
}

static void test_checker_catches_hw_from_leader_alone(void) {
    totals_t t = {0};
    run_many(1, 300, 2, &t, true);
    fprintf(stderr, "bug 2 (HW from the leader's LEO): %lld of %lld seeds fail\n", t.failed,
            t.seeds);
    CHECK(t.failed > 0);
}

/* The rule itself: only an answer that settles the proposal drops its members from the HW. */
static void test_alter_unresolved_rule(void) {
    CHECK(!broker_replica_rule_alter_unresolved(PROTO_ERR_NONE, 8, 8));
    CHECK(!broker_replica_rule_alter_unresolved(PROTO_ERR_INELIGIBLE_REPLICA, 8, 8));
    CHECK(broker_replica_rule_alter_unresolved(PROTO_ERR_REQUEST_TIMED_OUT, 8, 8));
    CHECK(broker_replica_rule_alter_unresolved(PROTO_ERR_INVALID_UPDATE_VERSION, 8, 8));
    CHECK(broker_replica_rule_alter_unresolved(PROTO_ERR_NOT_CONTROLLER, 8, 8));
    /* the metadata already showed a newer partition epoch: settled */
    CHECK(!broker_replica_rule_alter_unresolved(PROTO_ERR_REQUEST_TIMED_OUT, 8, 9));
}

/*
 * Found by this simulation: a leader whose AlterPartition adding a follower timed out after
 * the controller had committed it went back to its old ISR for the HW; cut off from the
 * controller with the other followers, it moved the HW (and acknowledged acks=all records)
 * past what that follower had, while the controller elected it from the ISR it had
 * committed. Bug 3 is that old rule: 5 of seeds 1-20000 fail with it (3975: replicas
 * disagree below their HWs; 7527: an acknowledged record lost), and pass with the rule
 * replica.c now follows.
 */
static void test_alter_timeout_keeps_maximal_isr(void) {
    static const uint64_t seeds[] = {3975, 7527};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        sim_opts_t o = opts_for(seeds[i], 3);
        quiet_failures = true;
        CHECK_EQ_INT(1, run_seed(&o));
        quiet_failures = false;
        o = opts_for(seeds[i], 0);
        CHECK_EQ_INT(0, run_seed(&o));
    }
}

int main(int argc, char **argv) {
    sm_log_set_level(SM_LOG_ERROR + 1);
    sim_seed_args_t sa = {0, 0, 1, false};
    int bug = 0;
    bool trace = false;
    for (int i = 1; i < argc; i++) {
        if (sim_seed_arg(argc, argv, &i, &sa)) continue;
        if (!strcmp(argv[i], "--bug") && i + 1 < argc)
            bug = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--trace"))
            trace = true;
    }
    if (sa.one) {
        sim_opts_t o = opts_for(sa.seed, bug);
        o.trace = trace;
        int rc = run_seed(&o);
        fprintf(stderr, "seed %llu: %s (%lld steps, %lld acknowledged, %lld elections)\n",
                (unsigned long long)sa.seed, rc ? "FAILED" : "ok", W.steps, W.acked, W.elections);
        return rc;
    }
    if (sa.seeds) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        totals_t t = {0};
        int failed = run_many(sa.start, sa.seeds, bug, &t, false);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_totals(&t, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        return failed ? 1 : 0;
    }
    RUN(test_alter_unresolved_rule);
    RUN(test_sim_seeds);
    RUN(test_checker_catches_no_divergence_check);
    RUN(test_checker_catches_hw_from_leader_alone);
    RUN(test_alter_timeout_keeps_maximal_isr);
    return t_summary("test_repl_sim");
}
