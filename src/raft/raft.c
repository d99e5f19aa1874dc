/*
 * KRaft's quorum state machine: elections (pre-vote, vote), leadership (BeginQuorumEpoch,
 * EndQuorumEpoch, check-quorum), pull replication (Fetch with divergence and snapshot
 * answers, FetchSnapshot), the high watermark and snapshot scheduling. Pure: time, messages
 * and I/O completions come in through the API, effects leave through the outbox.
 *
 * States and transitions (function that moves, in brackets):
 *
 *                       any state, on seeing a higher epoch [become_unattached]
 *        +----------------------------------------------------------------+
 *        v                                                                |
 *   Unattached --election timeout--> Prospective --pre-votes--> Candidate --votes--> Leader
 *        |                            ^   |    ^                  |                    |
 *        |                            |   |    +--election timeout+    resign / quorum lost
 *        |              fetch timeout |   | pre-vote lost                              v
 *        +-------leader learnt---> Follower <-+                                    Resigned
 *                                                                                      |
 *                                     Prospective <-------election timeout-------------+
 *
 *  from                      to           on                                   [function]
 *  Unattached                Prospective  election timeout (voters only)       become_prospective
 *  Follower                  Prospective  fetch timeout (observers: Unattached)
 *  Resigned                  Prospective  election timeout (unless shutting down)
 *  Candidate                 Prospective  election timeout, or lost after a backoff
 *  Prospective               Candidate    pre-votes of a majority              become_candidate
 *  Prospective               Follower     pre-vote lost, had a leader          become_follower
 *  Unattached/Prospective/   Follower     BeginQuorumEpoch, or an answer naming
 *    Candidate                            the leader of this or a later epoch
 *  Candidate                 Leader       votes of a majority                  become_leader
 *  Leader                    Resigned     raft_resign, or check-quorum failed  become_resigned
 *  any                       Unattached   a higher epoch without its leader    become_unattached
 *
 *  Observers (not in the voter set) only move between Unattached and Follower.
 *
 * Invariants (checked by raft_check_invariants):
 *  1. log start <= high watermark <= log end, and log start <= flushed <= log end.
 *  2. Entry epochs never decrease along the log, are >= the snapshot's epoch and <= the
 *     current epoch.
 *  3. Leader: it is a voter, leader id and voted id are itself, and the entry at the epoch
 *     start offset is the LeaderChange control record of the current epoch.
 *  4. Candidate: voted for itself, no leader. Unattached and Prospective: no leader unless
 *     Prospective kept the one it followed. Follower: a leader other than itself. Resigned:
 *     the leader is itself.
 *  5. The last quorum state handed to the caller to persist equals the current one: no
 *     message leaves that depends on state not yet queued for the quorum-state file.
 *  6. The high watermark never decreases during a node's life.
 *  7. A leader moves the high watermark only past its epoch start offset (an entry of its own
 *     epoch), so the high watermark is the one it had when elected or above that offset.
 *  8. Vote tallies count voters only, and at most one grant per voter.
 */
#include "raft/raft.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "protocol/errors.h"
#include "raft/raft_log.h"
#include "raft/raft_voters.h"

#define MOD "raft"

typedef struct raft_peer {
    int32_t id;
    int64_t end_offset; /* leader: offset of the last valid fetch; -1 unknown */
    int64_t last_fetch_ms;
    int64_t last_caught_up_ms;
    bool acked;       /* leader: fetched or acknowledged BeginQuorumEpoch this epoch */
    int64_t retry_at; /* next resend of BeginQuorumEpoch / Vote */
    int8_t vote;      /* prospective/candidate: 0 none, 1 granted, -1 rejected */
    bool parked;      /* leader: a Fetch waits for data (long poll) */
    uint64_t parked_corr;
    int64_t parked_offset;
    int64_t parked_deadline;
    int64_t hw_sent; /* leader: the high watermark last sent to this replica */
    uint8_t dir[16];  /* leader: the directory id its Fetch named */
} raft_peer_t;

typedef struct out_node {
    raft_action_t a;
    raft_entry_t *owned_entries; /* APPEND copies */
    uint8_t *owned_data;         /* SNAPSHOT_WRITE copy */
    raft_voter_set_t *owned_set; /* SNAPSHOT_REQUEST's voter set */
} out_node_t;

/* A VotersRecord of the log: the set in force from its offset on (KIP-853). */
typedef struct voters_at {
    int64_t offset;
    raft_voter_set_t set;
} voters_at_t;

struct raft {
    raft_config_t cfg;
    int self_idx; /* index in voters; -1 for an observer */
    raft_state_kind_t state;
    raft_quorum_state_t qs, persisted;
    raft_log_t log;
    raft_offset_epoch_t snapshot; /* latest durable snapshot; offset 0: none */
    int64_t flushed;
    int64_t hw, hw_max, hw_at_election;
    bool snapshot_pending;
    int64_t last_snapshot_ms;
    /* timers */
    int64_t election_deadline;
    int64_t fetch_deadline;
    int64_t last_leader_contact_ms; /* follower: last good answer of the leader */
    bool leader_resigned;           /* follower: EndQuorumEpoch received this epoch */
    /* follower / observer fetching */
    uint64_t inflight_corr;
    int64_t inflight_expiry;
    int64_t next_fetch_ms;
    bool fetching_snapshot;
    raft_offset_epoch_t fetch_snap_id;
    int64_t fetch_snap_pos;
    /* leader */
    int64_t epoch_start_offset;
    int64_t check_quorum_start;
    raft_peer_t voters[RAFT_MAX_VOTERS]; /* the peers of the set in force, in its order */
    int n_voters;
    /* the voter set: `base` is in force at the log start (static: controller.quorum.voters;
     * dynamic: the snapshot's or bootstrap checkpoint's), then each VotersRecord of the log
     * in `hist` (oldest first) from its offset on, committed or not */
    raft_voter_set_t base;
    voters_at_t *hist;
    int n_hist, cap_hist;
    raft_peer_t observers[RAFT_MAX_OBSERVERS];
    int n_observers;
    bool shutting_down;
    int elections_lost; /* consecutive lost elections, for the backoff */
    uint64_t rng;
    uint64_t next_corr;
    /* outbox */
    out_node_t *out;
    int out_head, out_n, out_cap;
    out_node_t polled;
    bool polled_valid;
    /* bad input is logged once per (error, sender, kind) */
    struct {
        int16_t err;
        int32_t from;
        raft_msg_kind_t kind;
    } refused[8];
    int n_refused;
};

/* ---- small helpers ---- */

static uint64_t rng_next(raft_t *r) {
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rng_range(raft_t *r, int64_t n) {
    return n > 0 ? (int64_t)(rng_next(r) % (uint64_t)n) : 0;
}

static int voter_index(const raft_t *r, int32_t id) {
    for (int i = 0; i < r->n_voters; i++)
        if (r->voters[i].id == id) return i;
    return -1;
}

static bool is_voter_id(const raft_t *r, int32_t id) { return voter_index(r, id) >= 0; }
static int majority(const raft_t *r) { return r->n_voters / 2 + 1; }

/* ---- the voter set (KIP-853) ---- */

static const raft_voter_set_t *current_set(const raft_t *r) {
    return r->n_hist ? &r->hist[r->n_hist - 1].set : &r->base;
}

/* The set in force at `offset` (the entries below it). */
static const raft_voter_set_t *set_before(const raft_t *r, int64_t offset) {
    for (int i = r->n_hist - 1; i >= 0; i--)
        if (r->hist[i].offset < offset) return &r->hist[i].set;
    return &r->base;
}

/* A leader named by a message: a static quorum knows every voter; in a dynamic one the
 * replica's own set may lag the log (KIP-853), so any node may be the leader it names. */
static bool leader_known_ok(const raft_t *r, int32_t leader) {
    return r->cfg.dynamic || is_voter_id(r, leader);
}

/* Whether this node may stand for election: it votes in the set in force, or (Raft's
 * single-server changes) its removal is not committed yet and it voted in the set before:
 * the old set may still need it, e.g. a leader that appended its own removal and then lost
 * its quorum holds the longest log, which nobody else can be elected without. */
static bool may_campaign(const raft_t *r) {
    if (r->self_idx >= 0) return true;
    if (!r->cfg.dynamic || !r->n_hist) return false;
    int64_t last = r->hist[r->n_hist - 1].offset;
    return last >= r->hw && raft_voters_find(set_before(r, last), r->cfg.node_id) >= 0;
}

static void peer_reset_one(raft_peer_t *p, int32_t id, int64_t now) {
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->end_offset = -1;
    p->last_fetch_ms = -1;
    p->last_caught_up_ms = -1;
    p->hw_sent = -1;
    p->retry_at = now;
}

/* Rebuilds the peers from the set in force, keeping what is known of each replica: a voter
 * that stays keeps its state, a new one comes from the observers (or starts unknown), a
 * removed one becomes an observer so its parked fetch is still answered. */
static void sync_peers(raft_t *r, int64_t now) {
    const raft_voter_set_t *s = current_set(r);
    raft_peer_t old[RAFT_MAX_VOTERS];
    int n_old = r->n_voters;
    memcpy(old, r->voters, (size_t)n_old * sizeof(*old));
    r->n_voters = s->n;
    r->self_idx = -1;
    for (int i = 0; i < s->n; i++) {
        int32_t id = s->v[i].id;
        raft_peer_t *p = &r->voters[i];
        if (id == r->cfg.node_id) r->self_idx = i;
        int k = -1;
        for (int j = 0; j < n_old && k < 0; j++)
            if (old[j].id == id) k = j;
        if (k >= 0) {
            *p = old[k];
            old[k].id = RAFT_NO_NODE;
            continue;
        }
        for (int j = 0; j < r->n_observers && k < 0; j++)
            if (r->observers[j].id == id) k = j;
        if (k >= 0) {
            *p = r->observers[k];
            r->observers[k] = r->observers[--r->n_observers];
            p->acked = false;
            p->retry_at = now;
            p->vote = 0;
            continue;
        }
        peer_reset_one(p, id, now);
    }
    for (int j = 0; j < n_old; j++)
        if (old[j].id != RAFT_NO_NODE && old[j].id != r->cfg.node_id &&
            r->n_observers < RAFT_MAX_OBSERVERS)
            r->observers[r->n_observers++] = old[j];
}

/* Notes a control entry appended at `offset`: a VotersRecord starts a new set. Returns true
 * when the set changed. */
static bool note_entry(raft_t *r, int64_t offset, const raft_entry_t *e) {
    if (!r->cfg.dynamic || e->control != RAFT_CONTROL_VOTERS) return false;
    raft_voter_set_t set;
    if (raft_voters_decode(e->data, e->len, &set) != SM_OK || set.n == 0) {
        sm_error(MOD, "node %d: unreadable VotersRecord at offset %lld kept out of the voter set",
                 r->cfg.node_id, (long long)offset);
        return false;
    }
    if (r->n_hist == r->cap_hist) {
        int cap = r->cap_hist ? r->cap_hist * 2 : 8;
        voters_at_t *h = realloc(r->hist, (size_t)cap * sizeof(*h));
        if (!h) abort(); /* the voter history is the state machine's memory */
        r->hist = h;
        r->cap_hist = cap;
    }
    r->hist[r->n_hist].offset = offset;
    r->hist[r->n_hist].set = set;
    r->n_hist++;
    return true;
}

/* The log was truncated to `offset`: VotersRecords at or above it no longer count. */
static void voters_truncated(raft_t *r, int64_t now, int64_t offset) {
    int before = r->n_hist;
    while (r->n_hist && r->hist[r->n_hist - 1].offset >= offset)
        r->n_hist--;
    if (r->n_hist != before) sync_peers(r, now);
}
static int64_t log_end(const raft_t *r) { return raft_log_end_offset(&r->log); }

static raft_offset_epoch_t last_position(const raft_t *r) {
    raft_offset_epoch_t p = {log_end(r), raft_log_last_epoch(&r->log)};
    return p;
}

/* KRaft orders log positions by epoch, then offset. */
static int position_cmp(raft_offset_epoch_t a, raft_offset_epoch_t b) {
    if (a.epoch != b.epoch) return a.epoch < b.epoch ? -1 : 1;
    if (a.offset != b.offset) return a.offset < b.offset ? -1 : 1;
    return 0;
}

static int64_t election_timeout(raft_t *r) {
    return r->cfg.election_timeout_ms + rng_range(r, r->cfg.election_timeout_ms);
}

/* ---- outbox ---- */

static out_node_t *out_push(raft_t *r, raft_action_kind_t kind) {
    if (r->out_head + r->out_n == r->out_cap) {
        if (r->out_head > 0) {
            memmove(r->out, r->out + r->out_head, (size_t)r->out_n * sizeof(*r->out));
            r->out_head = 0;
        }
        if (r->out_n == r->out_cap) {
            int cap = r->out_cap ? r->out_cap * 2 : 32;
            out_node_t *n = realloc(r->out, (size_t)cap * sizeof(*n));
            if (!n) abort(); /* the outbox is the state machine's memory: no way to continue */
            r->out = n;
            r->out_cap = cap;
        }
    }
    out_node_t *o = &r->out[r->out_head + r->out_n++];
    memset(o, 0, sizeof(*o));
    o->a.kind = kind;
    return o;
}

static void out_node_free(out_node_t *o) {
    if (o->a.kind == RAFT_ACT_SEND) raft_msg_release(&o->a.msg);
    if (o->owned_entries) {
        for (int i = 0; i < o->a.n_entries; i++)
            free(o->owned_entries[i].data);
        free(o->owned_entries);
    }
    free(o->owned_data);
    free(o->owned_set);
    memset(o, 0, sizeof(*o));
}

bool raft_poll(raft_t *r, raft_action_t *out) {
    if (r->polled_valid) out_node_free(&r->polled);
    r->polled_valid = false;
    if (r->out_n == 0) return false;
    r->polled = r->out[r->out_head++];
    r->out_n--;
    if (r->out_n == 0) r->out_head = 0;
    r->polled_valid = true;
    *out = r->polled.a;
    return true;
}

static void emit_leader_change(raft_t *r) {
    out_node_t *o = out_push(r, RAFT_ACT_LEADER_CHANGE);
    o->a.state = r->qs;
}

/* Queues the quorum-state write when it changed; everything queued after depends on it. */
static void persist(raft_t *r) {
    if (memcmp(&r->qs, &r->persisted, sizeof(r->qs)) == 0) return;
    bool leader_changed =
        r->qs.epoch != r->persisted.epoch || r->qs.leader_id != r->persisted.leader_id;
    out_node_t *o = out_push(r, RAFT_ACT_PERSIST_STATE);
    o->a.state = r->qs;
    r->persisted = r->qs;
    if (leader_changed) emit_leader_change(r);
}

static raft_msg_t *msg_new(raft_t *r, raft_msg_kind_t kind, int32_t to) {
    out_node_t *o = out_push(r, RAFT_ACT_SEND);
    raft_msg_t *m = &o->a.msg;
    m->kind = kind;
    m->from = r->cfg.node_id;
    m->to = to;
    m->epoch = r->qs.epoch;
    m->leader_id = r->qs.leader_id;
    memcpy(m->cluster_id, r->cfg.cluster_id, sizeof(m->cluster_id));
    int li = r->qs.leader_id >= 0 ? raft_voters_find(current_set(r), r->qs.leader_id) : -1;
    if (li >= 0 && current_set(r)->v[li].host[0]) {
        memcpy(m->leader_host, current_set(r)->v[li].host, sizeof(m->leader_host));
        m->leader_port = current_set(r)->v[li].port;
    }
    return m;
}

static raft_msg_t *reply_new(raft_t *r, const raft_msg_t *req, raft_msg_kind_t kind, int16_t err) {
    raft_msg_t *m = msg_new(r, kind, req->from);
    m->corr = req->corr;
    m->error = err;
    return m;
}

static void emit_append(raft_t *r, int64_t offset, const raft_entry_t *e, int n) {
    out_node_t *o = out_push(r, RAFT_ACT_APPEND);
    o->owned_entries = calloc((size_t)n, sizeof(raft_entry_t));
    if (!o->owned_entries) abort();
    for (int i = 0; i < n; i++)
        if (raft_entry_copy(&o->owned_entries[i], &e[i]) != SM_OK) abort();
    o->a.offset = offset;
    o->a.entries = o->owned_entries;
    o->a.n_entries = n;
}

static void emit_offset(raft_t *r, raft_action_kind_t kind, int64_t offset) {
    out_node_t *o = out_push(r, kind);
    o->a.offset = offset;
}

/* Logs a refused request once per (error, sender, kind); the refusal changes no state. */
static void refuse_log(raft_t *r, const raft_msg_t *m, int16_t err, const char *why) {
    for (int i = 0; i < r->n_refused; i++)
        if (r->refused[i].err == err && r->refused[i].from == m->from &&
            r->refused[i].kind == m->kind)
            return;
    int slot = r->n_refused < 8 ? r->n_refused++ : (int)(rng_next(r) % 8);
    r->refused[slot].err = err;
    r->refused[slot].from = m->from;
    r->refused[slot].kind = m->kind;
    sm_warn(MOD, "node %d: refused %s from node %d (epoch %d, ours %d): %s (%s)", r->cfg.node_id,
            raft_msg_kind_name(m->kind), m->from, m->epoch, r->qs.epoch, proto_error_name(err),
            why);
}

/* ---- the high watermark and snapshots ---- */

static void maybe_request_snapshot(raft_t *r, int64_t now) {
    if (r->snapshot_pending || r->hw <= r->snapshot.offset) return;
    bool by_size = r->cfg.snapshot_min_entries > 0 &&
                   r->hw - r->snapshot.offset >= r->cfg.snapshot_min_entries;
    bool by_time =
        r->cfg.snapshot_interval_ms > 0 && now - r->last_snapshot_ms >= r->cfg.snapshot_interval_ms;
    if (!by_size && !by_time) return;
    int32_t ep = raft_log_epoch_before(&r->log, r->hw);
    if (ep < 0) return;
    out_node_t *o = out_push(r, RAFT_ACT_SNAPSHOT_REQUEST);
    o->a.snapshot.offset = r->hw;
    o->a.snapshot.epoch = ep;
    if (r->cfg.dynamic) {
        o->owned_set = malloc(sizeof(*o->owned_set));
        if (!o->owned_set) abort();
        *o->owned_set = *set_before(r, r->hw);
        o->a.voters = o->owned_set;
    }
    r->snapshot_pending = true;
}

static void set_hw(raft_t *r, int64_t now, int64_t hw) {
    if (hw > log_end(r)) hw = log_end(r);
    if (hw <= r->hw) return;
    r->hw = hw;
    if (hw > r->hw_max) r->hw_max = hw;
    emit_offset(r, RAFT_ACT_COMMIT, hw);
    maybe_request_snapshot(r, now);
}

static void complete_parked(raft_t *r, int64_t now, bool all);
static void become_resigned(raft_t *r, int64_t now);

/* Leader: the high watermark is the largest offset a majority of voters hold durably,
 * advanced only past the epoch start offset (an entry of the current epoch). */
static void leader_update_hw(raft_t *r, int64_t now) {
    int64_t v[RAFT_MAX_VOTERS];
    for (int i = 0; i < r->n_voters; i++)
        v[i] = i == r->self_idx ? r->flushed : r->voters[i].end_offset;
    for (int i = 1; i < r->n_voters; i++) /* descending insertion sort; n is small */
        for (int j = i; j > 0 && v[j] > v[j - 1]; j--) {
            int64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    int64_t candidate = v[majority(r) - 1];
    if (r->cfg.test_bug == RAFT_BUG_COMMIT_WITHOUT_MAJORITY) candidate = r->flushed;
    bool own_epoch =
        candidate > r->epoch_start_offset || r->cfg.test_bug == RAFT_BUG_COMMIT_OLD_EPOCH;
    if (own_epoch && candidate > r->hw) {
        set_hw(r, now, candidate);
        complete_parked(r, now, true);
    }
    /* KIP-853: a leader removed from the set leads until its removal commits, then resigns */
    if (r->self_idx < 0 && r->n_hist && r->hw > r->hist[r->n_hist - 1].offset)
        become_resigned(r, now);
}

/* ---- state transitions ---- */

static void reset_peers(raft_t *r, int64_t now) {
    for (int i = 0; i < r->n_voters; i++) {
        raft_peer_t *p = &r->voters[i];
        p->end_offset = -1;
        p->acked = false;
        p->retry_at = now;
        p->vote = 0;
        p->parked = false;
        p->last_fetch_ms = -1;
        p->last_caught_up_ms = -1;
        p->hw_sent = -1;
    }
    r->n_observers = 0;
}

static void clear_fetch(raft_t *r) {
    r->inflight_corr = 0;
    r->fetching_snapshot = false;
    r->leader_resigned = false;
}

static void become_unattached(raft_t *r, int64_t now, int32_t epoch, int32_t voted) {
    if (epoch != r->qs.epoch) voted = RAFT_NO_NODE;
    r->state = RAFT_UNATTACHED;
    r->qs.epoch = epoch;
    r->qs.leader_id = RAFT_NO_NODE;
    r->qs.voted_id = voted;
    r->election_deadline = now + election_timeout(r);
    r->next_fetch_ms = now;
    clear_fetch(r);
    reset_peers(r, now);
    persist(r);
}

static void send_fetch(raft_t *r, int64_t now, int32_t to);

static void become_follower(raft_t *r, int64_t now, int32_t epoch, int32_t leader) {
    if (epoch != r->qs.epoch) r->qs.voted_id = RAFT_NO_NODE;
    r->state = RAFT_FOLLOWER;
    r->elections_lost = 0;
    r->qs.epoch = epoch;
    r->qs.leader_id = leader;
    r->fetch_deadline = now + r->cfg.fetch_timeout_ms;
    r->last_leader_contact_ms = INT64_MIN / 2; /* only the leader's own answers count */
    r->next_fetch_ms = now;
    clear_fetch(r);
    reset_peers(r, now);
    persist(r);
    sm_debug(MOD, "node %d: follower of %d in epoch %d", r->cfg.node_id, leader, epoch);
    if (r->flushed >= log_end(r)) send_fetch(r, now, leader);
}

static void become_leader(raft_t *r, int64_t now);

static void send_vote_request(raft_t *r, int32_t to, bool pre_vote) {
    raft_msg_t *m = msg_new(r, RAFT_MSG_VOTE_REQ, to);
    m->corr = ++r->next_corr;
    m->u.vote_req.pre_vote = pre_vote;
    m->u.vote_req.last = last_position(r);
}

static void solicit(raft_t *r, int64_t now, bool pre_vote) {
    for (int i = 0; i < r->n_voters; i++) {
        raft_peer_t *p = &r->voters[i];
        p->vote = i == r->self_idx ? 1 : 0;
        p->retry_at = now + r->cfg.request_timeout_ms;
        if (i != r->self_idx) send_vote_request(r, p->id, pre_vote);
    }
}

static int tally(const raft_t *r, int8_t want) {
    int n = 0;
    for (int i = 0; i < r->n_voters; i++)
        n += r->voters[i].vote == want;
    return n;
}

static void become_candidate(raft_t *r, int64_t now) {
    r->state = RAFT_CANDIDATE;
    r->qs.epoch++;
    r->qs.leader_id = RAFT_NO_NODE;
    r->qs.voted_id = r->cfg.node_id;
    r->election_deadline = now + election_timeout(r);
    clear_fetch(r);
    reset_peers(r, now);
    persist(r); /* the vote for itself is durable before any Vote request leaves */
    sm_debug(MOD, "node %d: candidate in epoch %d", r->cfg.node_id, r->qs.epoch);
    solicit(r, now, false);
    if (tally(r, 1) >= majority(r)) become_leader(r, now);
}

/* KIP-996: a pre-vote round at the current epoch; the epoch only moves once a majority
 * says it would vote, so a partitioned node cannot disrupt a healthy leader. */
static void become_prospective(raft_t *r, int64_t now) {
    if (r->qs.leader_id == r->cfg.node_id) { /* a resigned leader gives up its epoch's lead */
        r->qs.leader_id = RAFT_NO_NODE;
        persist(r);
    }
    r->state = RAFT_PROSPECTIVE;
    r->election_deadline = now + election_timeout(r);
    r->inflight_corr = 0;
    r->fetching_snapshot = false;
    reset_peers(r, now);
    solicit(r, now, true);
    if (tally(r, 1) >= majority(r)) become_candidate(r, now);
}

static void send_begin_epoch(raft_t *r, int64_t now, raft_peer_t *p) {
    raft_msg_t *m = msg_new(r, RAFT_MSG_BEGIN_EPOCH_REQ, p->id);
    m->corr = ++r->next_corr;
    p->retry_at = now + r->cfg.request_timeout_ms;
}

static void become_leader(raft_t *r, int64_t now) {
    r->state = RAFT_LEADER;
    r->elections_lost = 0;
    r->qs.leader_id = r->cfg.node_id;
    persist(r);
    reset_peers(r, now);
    r->hw_at_election = r->hw;
    r->epoch_start_offset = log_end(r);
    r->check_quorum_start = now;
    /* KRaft starts every epoch with a LeaderChange control record; committing it commits
     * every earlier entry (only entries of the current epoch move the high watermark). */
    uint8_t body[4] = {(uint8_t)(r->cfg.node_id >> 24), (uint8_t)(r->cfg.node_id >> 16),
                       (uint8_t)(r->cfg.node_id >> 8), (uint8_t)r->cfg.node_id};
    raft_entry_t e = {
        .epoch = r->qs.epoch, .control = RAFT_CONTROL_LEADER_CHANGE, .len = 4, .data = body};
    if (raft_log_append(&r->log, &e) != SM_OK) abort();
    emit_append(r, r->epoch_start_offset, &e, 1);
    sm_info(MOD, "node %d: leader of epoch %d at offset %lld", r->cfg.node_id, r->qs.epoch,
            (long long)r->epoch_start_offset);
    for (int i = 0; i < r->n_voters; i++) {
        raft_peer_t *p = &r->voters[i];
        if (i == r->self_idx) {
            p->last_fetch_ms = now;
            continue;
        }
        send_begin_epoch(r, now, p);
    }
    leader_update_hw(r, now);
}

/* Leader → Resigned: EndQuorumEpoch to the other voters, preferred successors first
 * (the voters with the longest fetched logs), so they start an election without waiting
 * for their fetch timeout. */
static void become_resigned(raft_t *r, int64_t now) {
    int32_t order[RAFT_MAX_VOTERS];
    int n = 0;
    for (int i = 0; i < r->n_voters; i++)
        if (i != r->self_idx) order[n++] = r->voters[i].id;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            int64_t a = r->voters[voter_index(r, order[j])].end_offset;
            int64_t b = r->voters[voter_index(r, order[j - 1])].end_offset;
            if (a <= b) break;
            int32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < r->n_voters; i++) {
        if (i == r->self_idx) continue;
        raft_msg_t *m = msg_new(r, RAFT_MSG_END_EPOCH_REQ, r->voters[i].id);
        m->corr = ++r->next_corr;
        memcpy(m->u.end_epoch_req.preferred, order, sizeof(order));
        m->u.end_epoch_req.n_preferred = n;
    }
    complete_parked(r, now, true);
    r->state = RAFT_RESIGNED;
    r->election_deadline = now + election_timeout(r);
    sm_info(MOD, "node %d: resigned leadership of epoch %d", r->cfg.node_id, r->qs.epoch);
}

void raft_resign(raft_t *r, int64_t now) {
    r->shutting_down = true;
    if (r->state == RAFT_LEADER) become_resigned(r, now);
}

/* ---- fetching (follower side) ---- */

static void send_fetch(raft_t *r, int64_t now, int32_t to) {
    raft_msg_t *m = msg_new(r, RAFT_MSG_FETCH_REQ, to);
    m->corr = ++r->next_corr;
    m->u.fetch_req.fetch_offset = log_end(r);
    m->u.fetch_req.last_fetched_epoch = raft_log_last_epoch(&r->log);
    m->u.fetch_req.max_wait_ms = r->cfg.fetch_max_wait_ms;
    memcpy(m->u.fetch_req.dir, r->cfg.directory_id, 16);
    r->inflight_corr = m->corr;
    r->inflight_expiry = now + r->cfg.fetch_max_wait_ms + r->cfg.request_timeout_ms;
}

static void send_fetch_snapshot(raft_t *r, int64_t now) {
    raft_msg_t *m = msg_new(r, RAFT_MSG_FETCH_SNAPSHOT_REQ, r->qs.leader_id);
    m->corr = ++r->next_corr;
    m->u.snap_req.snapshot_id = r->fetch_snap_id;
    m->u.snap_req.position = r->fetch_snap_pos;
    r->inflight_corr = m->corr;
    r->inflight_expiry = now + r->cfg.request_timeout_ms;
}

/* Sends the next Fetch when none is in flight and what was appended is durable (the fetch
 * offset tells the leader what this replica holds on disk; the high watermark counts it). */
static void follower_maybe_fetch(raft_t *r, int64_t now) {
    if (r->inflight_corr || now < r->next_fetch_ms) return;
    if (r->state == RAFT_FOLLOWER) {
        if (r->leader_resigned) return;
        if (r->fetching_snapshot)
            send_fetch_snapshot(r, now);
        else if (r->flushed >= log_end(r))
            send_fetch(r, now, r->qs.leader_id);
    } else if (r->state == RAFT_UNATTACHED && r->self_idx < 0) {
        /* an observer finds the leader by asking any voter it knows, or else one of
         * controller.quorum.bootstrap.servers (KRaft's bootstrap fetch) */
        if (r->n_voters > 0)
            send_fetch(r, now, r->voters[rng_range(r, r->n_voters)].id);
        else if (r->cfg.n_bootstrap > 0)
            send_fetch(r, now, RAFT_BOOTSTRAP_NODE((int32_t)rng_range(r, r->cfg.n_bootstrap)));
    }
}

/* ---- shared answer handling ---- */

/* A response or request names an epoch and maybe a leader: move to it when newer (or when
 * it names the leader of our epoch we did not know). Returns true when the message is
 * stale or made us change state, so its body must not be used further. */
static bool handle_epoch_info(raft_t *r, int64_t now, int32_t epoch, int32_t leader) {
    if (epoch < r->qs.epoch) return true;
    if (epoch > r->qs.epoch) {
        if (leader >= 0 && leader != r->cfg.node_id && leader_known_ok(r, leader))
            become_follower(r, now, epoch, leader);
        else
            become_unattached(r, now, epoch, RAFT_NO_NODE);
        return true;
    }
    if (leader < 0 || leader == r->cfg.node_id || !leader_known_ok(r, leader)) return false;
    switch (r->state) {
    case RAFT_PROSPECTIVE:
        /* others still naming the leader we lost contact with is no news */
        if (r->qs.leader_id == leader) return false;
        become_follower(r, now, epoch, leader);
        return true;
    case RAFT_UNATTACHED:
    case RAFT_CANDIDATE: become_follower(r, now, epoch, leader); return true;
    case RAFT_FOLLOWER:
        if (r->qs.leader_id == leader) return false;
        sm_error(MOD, "node %d: two leaders named for epoch %d: %d and %d", r->cfg.node_id, epoch,
                 r->qs.leader_id, leader);
        return true;
    case RAFT_LEADER:
    case RAFT_RESIGNED:
        sm_error(MOD, "node %d: leader of epoch %d told node %d leads it", r->cfg.node_id, epoch,
                 leader);
        return true;
    }
    return true;
}

static bool cluster_ok(const raft_t *r, const raft_msg_t *m) {
    return memcmp(m->cluster_id, r->cfg.cluster_id, RAFT_CLUSTER_ID_MAX) == 0;
}

/* ---- Vote ---- */

static bool can_grant(raft_t *r, int64_t now, const raft_msg_t *m, bool log_ok) {
    if (!log_ok) return false;
    int32_t cand = m->from;
    if (m->u.vote_req.pre_vote) {
        switch (r->state) {
        case RAFT_LEADER:
        case RAFT_RESIGNED: return false;
        case RAFT_FOLLOWER:
            /* KIP-996: a follower that heard from its leader recently keeps it */
            return r->leader_resigned || now - r->last_leader_contact_ms >= r->cfg.fetch_timeout_ms;
        default: return true;
        }
    }
    if (r->cfg.test_bug == RAFT_BUG_DOUBLE_VOTE && r->state == RAFT_UNATTACHED) return true;
    switch (r->state) {
    case RAFT_UNATTACHED: return r->qs.voted_id == RAFT_NO_NODE || r->qs.voted_id == cand;
    case RAFT_PROSPECTIVE:
        if (r->qs.voted_id != RAFT_NO_NODE) return r->qs.voted_id == cand;
        return r->qs.leader_id == RAFT_NO_NODE;
    default: return false;
    }
}

static void handle_vote_req(raft_t *r, int64_t now, const raft_msg_t *m) {
    int16_t err = PROTO_ERR_NONE;
    const char *why = NULL;
    bool pre = m->u.vote_req.pre_vote;
    raft_offset_epoch_t last = m->u.vote_req.last;
    if (!cluster_ok(r, m))
        err = PROTO_ERR_INCONSISTENT_CLUSTER_ID, why = "cluster id";
    else if (!r->cfg.dynamic && (r->self_idx < 0 || !is_voter_id(r, m->from)))
        err = PROTO_ERR_INCONSISTENT_VOTER_SET, why = "not a voter";
    else if (last.offset < 0 || last.epoch < 0 ||
             (pre ? last.epoch > m->epoch : last.epoch >= m->epoch))
        err = PROTO_ERR_INVALID_REQUEST, why = "log position";
    else if (m->epoch < r->qs.epoch)
        err = PROTO_ERR_FENCED_LEADER_EPOCH, why = "stale epoch";
    if (err != PROTO_ERR_NONE) {
        refuse_log(r, m, err, why);
        raft_msg_t *resp = reply_new(r, m, RAFT_MSG_VOTE_RESP, err);
        resp->u.vote_resp.pre_vote = pre;
        return;
    }
    if (m->epoch > r->qs.epoch) become_unattached(r, now, m->epoch, RAFT_NO_NODE);
    bool log_ok = position_cmp(last, last_position(r)) >= 0;
    bool granted = can_grant(r, now, m, log_ok);
    if (granted && !pre) {
        if (r->state != RAFT_UNATTACHED) become_unattached(r, now, r->qs.epoch, m->from);
        r->qs.voted_id = m->from;
        r->election_deadline = now + election_timeout(r);
        persist(r); /* the vote is durable before the response that grants it */
    }
    raft_msg_t *resp = reply_new(r, m, RAFT_MSG_VOTE_RESP, PROTO_ERR_NONE);
    resp->u.vote_resp.pre_vote = pre;
    resp->u.vote_resp.granted = granted;
}

static void handle_vote_resp(raft_t *r, int64_t now, const raft_msg_t *m) {
    bool pre = m->u.vote_resp.pre_vote;
    if (handle_epoch_info(r, now, m->epoch, m->leader_id)) return;
    if (!(pre ? r->state == RAFT_PROSPECTIVE : r->state == RAFT_CANDIDATE)) return;
    int i = voter_index(r, m->from);
    if (i < 0 || i == r->self_idx) return;
    int8_t before = r->voters[i].vote;
    r->voters[i].vote = (m->error == PROTO_ERR_NONE && m->u.vote_resp.granted) ? 1 : -1;
    bool just_lost = before != -1 && r->voters[i].vote == -1 && tally(r, -1) == majority(r);
    if (tally(r, 1) >= majority(r)) {
        if (pre)
            become_candidate(r, now);
        else
            become_leader(r, now);
    } else if (!pre && just_lost) {
        /* the election is lost: back off (binary exponential, election.backoff.max.ms) and
         * pre-vote again, so candidates that split the votes do not collide again */
        int shift = r->elections_lost < 20 ? r->elections_lost : 20;
        int64_t cap = r->cfg.retry_backoff_ms << shift;
        if (cap > r->cfg.election_backoff_max_ms) cap = r->cfg.election_backoff_max_ms;
        int64_t at = now + 1 + rng_range(r, cap);
        if (at < r->election_deadline) r->election_deadline = at;
        r->elections_lost++;
    } else if (pre && just_lost) {
        /* the pre-vote lost: back to the leader we followed, or wait unattached */
        if (r->qs.leader_id >= 0)
            become_follower(r, now, r->qs.epoch, r->qs.leader_id);
        else
            become_unattached(r, now, r->qs.epoch, r->qs.voted_id);
    }
}

/* ---- BeginQuorumEpoch / EndQuorumEpoch ---- */

/* Checks of a request only the leader of its epoch sends to voters. */
static int16_t check_from_leader(raft_t *r, const raft_msg_t *m, const char **why) {
    if (!cluster_ok(r, m)) return *why = "cluster id", PROTO_ERR_INCONSISTENT_CLUSTER_ID;
    /* a dynamic quorum's sets may lag the log: a new voter hears from its leader before it
     * fetched the VotersRecord naming it (KIP-853) */
    if (!r->cfg.dynamic && (r->self_idx < 0 || !is_voter_id(r, m->from)))
        return *why = "not a voter", PROTO_ERR_INCONSISTENT_VOTER_SET;
    if (m->epoch < r->qs.epoch) return *why = "stale epoch", PROTO_ERR_FENCED_LEADER_EPOCH;
    if (m->epoch == r->qs.epoch && r->qs.leader_id >= 0 && r->qs.leader_id != m->from)
        return *why = "another leader holds this epoch", PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    return PROTO_ERR_NONE;
}

static void handle_begin_epoch(raft_t *r, int64_t now, const raft_msg_t *m) {
    const char *why = NULL;
    int16_t err = check_from_leader(r, m, &why);
    if (err == PROTO_ERR_NONE && m->epoch == r->qs.epoch &&
        (r->state == RAFT_LEADER || r->state == RAFT_RESIGNED))
        err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER, why = "this node leads the epoch";
    if (err != PROTO_ERR_NONE) {
        refuse_log(r, m, err, why);
        reply_new(r, m, RAFT_MSG_BEGIN_EPOCH_RESP, err);
        return;
    }
    if (!(r->state == RAFT_FOLLOWER && r->qs.epoch == m->epoch))
        become_follower(r, now, m->epoch, m->from);
    r->last_leader_contact_ms = now;
    r->fetch_deadline = now + r->cfg.fetch_timeout_ms;
    reply_new(r, m, RAFT_MSG_BEGIN_EPOCH_RESP, PROTO_ERR_NONE);
}

static void handle_begin_epoch_resp(raft_t *r, int64_t now, const raft_msg_t *m) {
    if (handle_epoch_info(r, now, m->epoch, m->leader_id)) return;
    int i = voter_index(r, m->from);
    if (r->state == RAFT_LEADER && i >= 0 && m->error == PROTO_ERR_NONE) r->voters[i].acked = true;
}

/* KRaft's strict exponential backoff: the first preferred successor starts at once, the
 * next ones later, the rest after a random backoff. */
static int64_t successor_backoff(raft_t *r, const raft_msg_t *m) {
    for (int i = 0; i < m->u.end_epoch_req.n_preferred && i < RAFT_MAX_VOTERS; i++) {
        if (m->u.end_epoch_req.preferred[i] != r->cfg.node_id) continue;
        if (i == 0) return 0;
        int64_t b = r->cfg.retry_backoff_ms << (i < 20 ? i : 20);
        return b < r->cfg.election_backoff_max_ms ? b : r->cfg.election_backoff_max_ms;
    }
    return rng_range(r, r->cfg.election_backoff_max_ms) + 1;
}

static void handle_end_epoch(raft_t *r, int64_t now, const raft_msg_t *m) {
    const char *why = NULL;
    int16_t err = check_from_leader(r, m, &why);
    if (err != PROTO_ERR_NONE) {
        refuse_log(r, m, err, why);
        reply_new(r, m, RAFT_MSG_END_EPOCH_RESP, err);
        return;
    }
    int64_t backoff = successor_backoff(r, m);
    if (m->epoch > r->qs.epoch) {
        become_unattached(r, now, m->epoch, RAFT_NO_NODE);
        r->election_deadline = now + backoff;
    } else if (r->state == RAFT_FOLLOWER) {
        r->leader_resigned = true;
        r->fetch_deadline = now + backoff;
    }
    reply_new(r, m, RAFT_MSG_END_EPOCH_RESP, PROTO_ERR_NONE);
}

/* ---- Fetch (leader side) ---- */

static raft_peer_t *replica_for(raft_t *r, int64_t now, int32_t id) {
    int i = voter_index(r, id);
    if (i >= 0) return &r->voters[i];
    for (int k = 0; k < r->n_observers; k++)
        if (r->observers[k].id == id) return &r->observers[k];
    if (r->n_observers == RAFT_MAX_OBSERVERS) return NULL;
    raft_peer_t *p = &r->observers[r->n_observers++];
    peer_reset_one(p, id, now);
    return p;
}

/* Fills a Fetch answer for a replica at a valid position `offset`. */
static void fill_fetch_data(raft_t *r, raft_msg_t *resp, int64_t offset) {
    resp->u.fetch_resp.high_watermark = r->hw;
    resp->u.fetch_resp.log_start_offset = r->log.start;
    resp->u.fetch_resp.diverging.offset = -1;
    resp->u.fetch_resp.snapshot_id.offset = -1;
    resp->u.fetch_resp.base_offset = offset;
    int64_t n = log_end(r) - offset;
    if (n > r->cfg.max_fetch_entries) n = r->cfg.max_fetch_entries;
    if (n <= 0) return;
    raft_entry_t *e = calloc((size_t)n, sizeof(*e));
    if (!e) abort();
    for (int64_t i = 0; i < n; i++)
        if (raft_entry_copy(&e[i], raft_log_at(&r->log, offset + i)) != SM_OK) abort();
    resp->u.fetch_resp.entries = e;
    resp->u.fetch_resp.n_entries = (int)n;
}

static void answer_parked(raft_t *r, raft_peer_t *p) {
    raft_msg_t *resp = msg_new(r, RAFT_MSG_FETCH_RESP, p->id);
    resp->corr = p->parked_corr;
    p->parked = false;
    if (r->state != RAFT_LEADER) {
        resp->error = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
        return;
    }
    fill_fetch_data(r, resp, p->parked_offset);
    p->hw_sent = r->hw;
}

/* Answers parked fetches: every one (`all`: new data, a new high watermark, resignation)
 * or those whose wait is over. */
static void complete_parked(raft_t *r, int64_t now, bool all) {
    for (int i = 0; i < r->n_voters; i++)
        if (r->voters[i].parked && (all || now >= r->voters[i].parked_deadline))
            answer_parked(r, &r->voters[i]);
    for (int i = 0; i < r->n_observers; i++)
        if (r->observers[i].parked && (all || now >= r->observers[i].parked_deadline))
            answer_parked(r, &r->observers[i]);
}

static int16_t check_leader_request(raft_t *r, const raft_msg_t *m) {
    if (!cluster_ok(r, m)) return PROTO_ERR_INCONSISTENT_CLUSTER_ID;
    if (m->epoch < r->qs.epoch) return PROTO_ERR_FENCED_LEADER_EPOCH;
    if (m->epoch > r->qs.epoch) return PROTO_ERR_UNKNOWN_LEADER_EPOCH;
    if (r->state != RAFT_LEADER) return PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    return PROTO_ERR_NONE;
}

static void handle_fetch_req(raft_t *r, int64_t now, const raft_msg_t *m) {
    int16_t err = check_leader_request(r, m);
    int64_t off = m->u.fetch_req.fetch_offset;
    int32_t last_epoch = m->u.fetch_req.last_fetched_epoch;
    if (err == PROTO_ERR_NONE &&
        (off < 0 || last_epoch < 0 || last_epoch > r->qs.epoch || m->from == r->cfg.node_id))
        err = PROTO_ERR_INVALID_REQUEST;
    if (err != PROTO_ERR_NONE) {
        if (err != PROTO_ERR_NOT_LEADER_OR_FOLLOWER && err != PROTO_ERR_FENCED_LEADER_EPOCH)
            refuse_log(r, m, err, "fetch");
        reply_new(r, m, RAFT_MSG_FETCH_RESP, err);
        return;
    }
    /* where does the replica's log stand against ours? */
    raft_offset_epoch_t end, diverging = {-1, -1};
    bool need_snapshot = off < r->log.start || (off == r->log.start && r->log.start > 0 &&
                                                last_epoch != r->log.start_epoch);
    if (!need_snapshot && !(off == 0 && last_epoch == 0)) {
        if (!raft_log_end_for_epoch(&r->log, last_epoch, &end))
            need_snapshot = true;
        else if ((end.epoch != last_epoch || off > end.offset) &&
                 r->cfg.test_bug != RAFT_BUG_SKIP_CONSISTENCY) {
            diverging = end;
            if (end.offset < r->log.start) need_snapshot = true;
        }
    }
    if (need_snapshot || diverging.offset >= 0) {
        raft_msg_t *resp = reply_new(r, m, RAFT_MSG_FETCH_RESP, PROTO_ERR_NONE);
        fill_fetch_data(r, resp, log_end(r));
        if (need_snapshot)
            resp->u.fetch_resp.snapshot_id = r->snapshot;
        else
            resp->u.fetch_resp.diverging = diverging;
        return;
    }
    /* a valid position: it is what the replica holds durably */
    raft_peer_t *p = replica_for(r, now, m->from);
    if (p) {
        p->end_offset = off; /* a replica that restarted may report less: believe it */
        memcpy(p->dir, m->u.fetch_req.dir, 16);
        p->last_fetch_ms = now;
        p->acked = true;
        if (off >= log_end(r)) p->last_caught_up_ms = now;
        if (p->parked && p->parked_corr != m->corr) answer_parked(r, p);
    }
    if (is_voter_id(r, m->from)) leader_update_hw(r, now);
    if (p && off >= log_end(r) && m->u.fetch_req.max_wait_ms > 0 && p->hw_sent == r->hw) {
        /* nothing new: park the fetch until data, a new high watermark, or its wait is over */
        p->parked = true;
        p->parked_corr = m->corr;
        p->parked_offset = off;
        p->parked_deadline = now + m->u.fetch_req.max_wait_ms;
        return;
    }
    raft_msg_t *resp = reply_new(r, m, RAFT_MSG_FETCH_RESP, PROTO_ERR_NONE);
    fill_fetch_data(r, resp, off);
    if (p) p->hw_sent = r->hw;
}

/* ---- Fetch (follower side) ---- */

static void handle_fetch_resp(raft_t *r, int64_t now, const raft_msg_t *m) {
    bool mine = m->corr == r->inflight_corr && r->inflight_corr != 0;
    if (mine) {
        r->inflight_corr = 0;
        r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
    }
    if (handle_epoch_info(r, now, m->epoch, m->leader_id)) return;
    if (!mine || r->state != RAFT_FOLLOWER || m->from != r->qs.leader_id) return;
    if (m->error != PROTO_ERR_NONE) return;
    r->next_fetch_ms = now;
    r->fetch_deadline = now + r->cfg.fetch_timeout_ms;
    r->last_leader_contact_ms = now;
    const raft_offset_epoch_t div = m->u.fetch_resp.diverging;
    if (div.offset >= 0) {
        raft_offset_epoch_t mine_end;
        int64_t t = div.offset;
        if (raft_log_end_for_epoch(&r->log, div.epoch, &mine_end) && mine_end.offset < t)
            t = mine_end.offset;
        if (t < r->hw) {
            sm_error(MOD,
                     "node %d: leader %d asks to truncate below the high watermark (%lld < %lld)",
                     r->cfg.node_id, m->from, (long long)t, (long long)r->hw);
            t = r->hw;
        }
        if (t < log_end(r)) {
            raft_log_truncate(&r->log, t);
            if (r->flushed > t) r->flushed = t;
            emit_offset(r, RAFT_ACT_TRUNCATE, t);
            voters_truncated(r, now, t);
        }
        follower_maybe_fetch(r, now);
        return;
    }
    if (m->u.fetch_resp.snapshot_id.offset >= 0) {
        if (m->u.fetch_resp.snapshot_id.offset <= r->hw) return;
        r->fetching_snapshot = true;
        r->fetch_snap_id = m->u.fetch_resp.snapshot_id;
        r->fetch_snap_pos = 0;
        follower_maybe_fetch(r, now);
        return;
    }
    int n = m->u.fetch_resp.n_entries;
    if (n > 0) {
        if (m->u.fetch_resp.base_offset != log_end(r)) return; /* not where we asked */
        /* epochs must continue ours and stay within the leader's: anything else is not a
         * log this leader can have, and is dropped rather than stored */
        int32_t prev = raft_log_last_epoch(&r->log);
        for (int i = 0; i < n; i++) {
            int32_t e = m->u.fetch_resp.entries[i].epoch;
            if (e < prev || e > r->qs.epoch) {
                refuse_log(r, m, PROTO_ERR_CORRUPT_MESSAGE, "entry epochs out of order");
                return;
            }
            prev = e;
        }
        bool set_changed = false;
        for (int i = 0; i < n; i++) {
            if (raft_log_append(&r->log, &m->u.fetch_resp.entries[i]) != SM_OK) abort();
            set_changed |=
                note_entry(r, m->u.fetch_resp.base_offset + i, &m->u.fetch_resp.entries[i]);
        }
        emit_append(r, m->u.fetch_resp.base_offset, m->u.fetch_resp.entries, n);
        if (set_changed) sync_peers(r, now); /* KIP-853: in force once appended */
    }
    int64_t hw = m->u.fetch_resp.high_watermark;
    set_hw(r, now, hw < log_end(r) ? hw : log_end(r));
    follower_maybe_fetch(r, now);
}

/* ---- FetchSnapshot ---- */

static void handle_fetch_snapshot_req(raft_t *r, int64_t now, const raft_msg_t *m) {
    int16_t err = check_leader_request(r, m);
    raft_msg_t *resp = reply_new(r, m, RAFT_MSG_FETCH_SNAPSHOT_RESP, err);
    resp->u.snap_resp.snapshot_id = m->u.snap_req.snapshot_id;
    if (err != PROTO_ERR_NONE) return;
    /* a voter fetching a snapshot follows this leader: it counts for check-quorum, as in
     * Kafka (a slow snapshot transfer must not cost the leader its quorum) */
    int vi = voter_index(r, m->from);
    if (vi >= 0) r->voters[vi].last_fetch_ms = now;
    raft_offset_epoch_t id = m->u.snap_req.snapshot_id;
    if (id.offset != r->snapshot.offset || id.epoch != r->snapshot.epoch || id.offset == 0 ||
        !r->cfg.snapshot_read) {
        resp->error = PROTO_ERR_SNAPSHOT_NOT_FOUND;
        return;
    }
    uint32_t max = r->cfg.snapshot_chunk_bytes;
    uint8_t *buf = malloc(max ? max : 1);
    if (!buf) abort();
    uint32_t n = 0;
    int64_t size = 0;
    if (m->u.snap_req.position < 0 || r->cfg.snapshot_read(r->cfg.ctx, id, m->u.snap_req.position,
                                                           buf, max, &n, &size) != SM_OK) {
        free(buf);
        resp->error = PROTO_ERR_SNAPSHOT_NOT_FOUND;
        return;
    }
    if (m->u.snap_req.position > size) {
        free(buf);
        resp->error = PROTO_ERR_POSITION_OUT_OF_RANGE;
        return;
    }
    resp->u.snap_resp.size = size;
    resp->u.snap_resp.position = m->u.snap_req.position;
    resp->u.snap_resp.data = buf;
    resp->u.snap_resp.len = n;
}

static void handle_fetch_snapshot_resp(raft_t *r, int64_t now, const raft_msg_t *m) {
    bool mine = m->corr == r->inflight_corr && r->inflight_corr != 0;
    if (mine) r->inflight_corr = 0;
    if (handle_epoch_info(r, now, m->epoch, m->leader_id)) return;
    if (!mine || r->state != RAFT_FOLLOWER || !r->fetching_snapshot || m->from != r->qs.leader_id)
        return;
    raft_offset_epoch_t id = m->u.snap_resp.snapshot_id;
    if (m->error != PROTO_ERR_NONE || id.offset != r->fetch_snap_id.offset ||
        id.epoch != r->fetch_snap_id.epoch || m->u.snap_resp.position != r->fetch_snap_pos) {
        /* the leader moved on to another snapshot: start over with a Fetch */
        r->fetching_snapshot = false;
        r->next_fetch_ms = now + r->cfg.retry_backoff_ms;
        return;
    }
    r->fetch_deadline = now + r->cfg.fetch_timeout_ms;
    r->last_leader_contact_ms = now;
    if (m->u.snap_resp.len > 0) {
        out_node_t *o = out_push(r, RAFT_ACT_SNAPSHOT_WRITE);
        o->owned_data = malloc(m->u.snap_resp.len);
        if (!o->owned_data) abort();
        memcpy(o->owned_data, m->u.snap_resp.data, m->u.snap_resp.len);
        o->a.snapshot = id;
        o->a.position = r->fetch_snap_pos;
        o->a.data = o->owned_data;
        o->a.len = m->u.snap_resp.len;
        r->fetch_snap_pos += m->u.snap_resp.len;
    }
    if (r->fetch_snap_pos >= m->u.snap_resp.size) {
        out_node_t *o = out_push(r, RAFT_ACT_SNAPSHOT_INSTALL);
        o->a.snapshot = id;
        raft_log_reset(&r->log, id);
        /* the caller reads the snapshot's voter set (raft_snapshot_voters) as it installs it */
        r->base = *current_set(r);
        r->n_hist = 0;
        r->snapshot = id;
        r->flushed = id.offset;
        r->hw = r->hw > id.offset ? r->hw : id.offset;
        if (r->hw > r->hw_max) r->hw_max = r->hw;
        r->fetching_snapshot = false;
        r->snapshot_pending = false;
        r->last_snapshot_ms = now;
    } else if (m->u.snap_resp.len == 0) {
        r->fetching_snapshot = false; /* no progress: fall back to Fetch */
    }
    follower_maybe_fetch(r, now);
}

/* ---- entry points ---- */

void raft_step(raft_t *r, int64_t now, const raft_msg_t *m) {
    if (m->to != r->cfg.node_id) return;
    /* not a peer: nothing to answer (a Fetch answer of a bootstrap server, whose id the
     * transport does not know, only tells who leads) */
    if (m->from == r->cfg.node_id || (m->from < 0 && m->kind != RAFT_MSG_FETCH_RESP)) {
        refuse_log(r, m, PROTO_ERR_INVALID_REQUEST, "sender is not a peer");
        return;
    }
    switch (m->kind) {
    case RAFT_MSG_VOTE_REQ: handle_vote_req(r, now, m); break;
    case RAFT_MSG_VOTE_RESP: handle_vote_resp(r, now, m); break;
    case RAFT_MSG_BEGIN_EPOCH_REQ: handle_begin_epoch(r, now, m); break;
    case RAFT_MSG_BEGIN_EPOCH_RESP: handle_begin_epoch_resp(r, now, m); break;
    case RAFT_MSG_END_EPOCH_REQ: handle_end_epoch(r, now, m); break;
    case RAFT_MSG_END_EPOCH_RESP: handle_epoch_info(r, now, m->epoch, m->leader_id); break;
    case RAFT_MSG_FETCH_REQ: handle_fetch_req(r, now, m); break;
    case RAFT_MSG_FETCH_RESP: handle_fetch_resp(r, now, m); break;
    case RAFT_MSG_FETCH_SNAPSHOT_REQ: handle_fetch_snapshot_req(r, now, m); break;
    case RAFT_MSG_FETCH_SNAPSHOT_RESP: handle_fetch_snapshot_resp(r, now, m); break;
    }
}

static void leader_tick(raft_t *r, int64_t now) {
    for (int i = 0; i < r->n_voters; i++) {
        raft_peer_t *p = &r->voters[i];
        if (i != r->self_idx && !p->acked && now >= p->retry_at) send_begin_epoch(r, now, p);
    }
    complete_parked(r, now, false);
    /* check quorum: a leader that has not heard from a majority within 1.5 fetch timeouts
     * steps down, so a partitioned leader stops claiming the epoch */
    int64_t window = r->cfg.fetch_timeout_ms + r->cfg.fetch_timeout_ms / 2;
    if (now - r->check_quorum_start >= window) {
        int heard = 0;
        for (int i = 0; i < r->n_voters; i++)
            heard += i == r->self_idx || r->voters[i].last_fetch_ms >= r->check_quorum_start;
        if (heard < majority(r)) {
            sm_info(MOD, "node %d: lost the quorum of epoch %d", r->cfg.node_id, r->qs.epoch);
            become_resigned(r, now);
            return;
        }
        r->check_quorum_start = now;
    }
}

void raft_tick(raft_t *r, int64_t now) {
    switch (r->state) {
    case RAFT_UNATTACHED:
        if (may_campaign(r) && now >= r->election_deadline) become_prospective(r, now);
        break;
    case RAFT_PROSPECTIVE:
    case RAFT_CANDIDATE:
        if (now >= r->election_deadline && r->cfg.dynamic && r->state == RAFT_PROSPECTIVE &&
            r->qs.leader_id >= 0 && r->qs.leader_id != r->cfg.node_id) {
            /* a pre-vote that went nowhere while a leader was known: fetch from it again, as
             * Kafka does. In a dynamic quorum this replica's set may be stale (it may have
             * been removed without knowing) and a majority of it unreachable; only the log
             * can tell it so. */
            become_follower(r, now, r->qs.epoch, r->qs.leader_id);
            break;
        }
        if (now >= r->election_deadline) {
            become_prospective(r, now); /* KIP-996: a lost or stalled election pre-votes again */
            break;
        }
        for (int i = 0; i < r->n_voters; i++) {
            raft_peer_t *p = &r->voters[i];
            if (i != r->self_idx && p->vote == 0 && now >= p->retry_at) {
                send_vote_request(r, p->id, r->state == RAFT_PROSPECTIVE);
                p->retry_at = now + r->cfg.request_timeout_ms;
            }
        }
        break;
    case RAFT_FOLLOWER:
        if (now >= r->fetch_deadline) {
            if (may_campaign(r))
                become_prospective(r, now);
            else
                become_unattached(r, now, r->qs.epoch, RAFT_NO_NODE);
        }
        break;
    case RAFT_LEADER: leader_tick(r, now); break;
    case RAFT_RESIGNED:
        if (r->shutting_down || now < r->election_deadline) break;
        if (may_campaign(r))
            become_prospective(r, now);
        else /* removed from the voters: an observer from now on */
            become_unattached(r, now, r->qs.epoch, r->qs.voted_id);
        break;
    }
    if (r->inflight_corr && now >= r->inflight_expiry) r->inflight_corr = 0;
    follower_maybe_fetch(r, now);
    maybe_request_snapshot(r, now);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t raft_next_deadline(const raft_t *r) {
    int64_t d = INT64_MAX;
    switch (r->state) {
    case RAFT_UNATTACHED:
        if (may_campaign(r)) d = r->election_deadline;
        break;
    case RAFT_PROSPECTIVE:
    case RAFT_CANDIDATE:
        d = r->election_deadline;
        for (int i = 0; i < r->n_voters; i++)
            if (i != r->self_idx && r->voters[i].vote == 0) d = min64(d, r->voters[i].retry_at);
        break;
    case RAFT_FOLLOWER: d = r->fetch_deadline; break;
    case RAFT_LEADER: {
        int64_t window = r->cfg.fetch_timeout_ms + r->cfg.fetch_timeout_ms / 2;
        d = r->check_quorum_start + window;
        for (int i = 0; i < r->n_voters; i++) {
            const raft_peer_t *p = &r->voters[i];
            if (i != r->self_idx && !p->acked) d = min64(d, p->retry_at);
            if (p->parked) d = min64(d, p->parked_deadline);
        }
        for (int i = 0; i < r->n_observers; i++)
            if (r->observers[i].parked) d = min64(d, r->observers[i].parked_deadline);
        break;
    }
    case RAFT_RESIGNED:
        if (!r->shutting_down) d = r->election_deadline;
        break;
    }
    if (r->inflight_corr)
        d = min64(d, r->inflight_expiry);
    else if ((r->state == RAFT_FOLLOWER && !r->leader_resigned &&
              (r->fetching_snapshot || r->flushed >= raft_log_end_offset(&r->log))) ||
             (r->state == RAFT_UNATTACHED && r->self_idx < 0))
        d = min64(d, r->next_fetch_ms);
    if (r->cfg.snapshot_interval_ms > 0 && !r->snapshot_pending && r->hw > r->snapshot.offset)
        d = min64(d, r->last_snapshot_ms + r->cfg.snapshot_interval_ms);
    return d;
}

void raft_log_flushed(raft_t *r, int64_t now, int64_t offset) {
    if (offset > log_end(r)) offset = log_end(r);
    if (offset <= r->flushed) return;
    r->flushed = offset;
    if (r->state == RAFT_LEADER)
        leader_update_hw(r, now);
    else
        follower_maybe_fetch(r, now);
}

void raft_snapshot_created(raft_t *r, int64_t now, raft_offset_epoch_t id) {
    r->snapshot_pending = false;
    r->last_snapshot_ms = now;
    if (id.offset <= r->snapshot.offset || id.offset > r->hw ||
        raft_log_epoch_before(&r->log, id.offset) != id.epoch)
        return;
    r->snapshot = id;
    raft_log_drop_prefix(&r->log, id.offset, id.epoch);
    int k = 0; /* VotersRecords the snapshot covers fold into the set at the log start */
    while (k < r->n_hist && r->hist[k].offset < id.offset)
        r->base = r->hist[k++].set;
    if (k) {
        memmove(r->hist, r->hist + k, (size_t)(r->n_hist - k) * sizeof(*r->hist));
        r->n_hist -= k;
    }
    if (r->flushed < id.offset) r->flushed = id.offset;
    emit_offset(r, RAFT_ACT_LOG_START, id.offset);
}

void raft_leader_unreachable(raft_t *r, int64_t now) {
    if (r->state != RAFT_FOLLOWER || now - r->last_leader_contact_ms >= r->cfg.fetch_timeout_ms)
        return;
    /* Give up on the leader now rather than at fetch.timeout.ms, after a random part of the
     * election timeout so that followers that noticed together do not collide; the
     * pre-vote still needs a majority that lost it too. */
    r->last_leader_contact_ms = now - r->cfg.fetch_timeout_ms;
    int64_t at = now + (int64_t)rng_range(r, (int)(r->cfg.election_timeout_ms / 2) + 1);
    if (at < r->fetch_deadline) r->fetch_deadline = at;
}

int raft_propose(raft_t *r, int64_t now, const void *data, uint32_t len, int64_t *offset) {
    if (r->state != RAFT_LEADER) return SM_ERR_AGAIN;
    raft_entry_t e = {
        .epoch = r->qs.epoch, .control = RAFT_CONTROL_NONE, .len = len, .data = (uint8_t *)data};
    int64_t off = log_end(r);
    int rc = raft_log_append(&r->log, &e);
    if (rc != SM_OK) return rc;
    emit_append(r, off, &e, 1);
    complete_parked(r, now, true);
    *offset = off;
    return SM_OK;
}

/* ---- voter changes (KIP-853), leader side ---- */

/* Kafka's preconditions of every change: leadership, kraft.version 1, an entry of this epoch
 * committed (so no change of an earlier leader is still in flight) and no change pending. */
static int16_t change_allowed(const raft_t *r) {
    if (r->state != RAFT_LEADER) return PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    if (!r->cfg.dynamic) return PROTO_ERR_UNSUPPORTED_VERSION;
    if (r->hw <= r->epoch_start_offset) return PROTO_ERR_REQUEST_TIMED_OUT;
    if (r->n_hist && r->hist[r->n_hist - 1].offset >= r->hw) return PROTO_ERR_REQUEST_TIMED_OUT;
    return PROTO_ERR_NONE;
}

/* Appends a VotersRecord of `set`; in force at once. */
static int16_t append_voters(raft_t *r, int64_t now, const raft_voter_set_t *set, int64_t *offset) {
    uint8_t buf[RAFT_VOTERS_BYTES_MAX];
    size_t len;
    if (raft_voters_encode(set, buf, sizeof(buf), &len) != SM_OK) return PROTO_ERR_INVALID_REQUEST;
    raft_entry_t e = {
        .epoch = r->qs.epoch, .control = RAFT_CONTROL_VOTERS, .len = (uint32_t)len, .data = buf};
    int64_t off = log_end(r);
    if (raft_log_append(&r->log, &e) != SM_OK) abort();
    emit_append(r, off, &e, 1);
    note_entry(r, off, &e);
    sync_peers(r, now);
    sm_info(MOD, "node %d: voter set of %d voters appended at offset %lld", r->cfg.node_id, set->n,
            (long long)off);
    complete_parked(r, now, true);
    leader_update_hw(r, now); /* the new majority may already hold everything */
    *offset = off;
    return PROTO_ERR_NONE;
}

int16_t raft_add_voter(raft_t *r, int64_t now, const raft_voter_t *v, int64_t *offset) {
    int16_t err = change_allowed(r);
    if (err != PROTO_ERR_NONE) return err;
    const raft_voter_set_t *cur = current_set(r);
    if (raft_voters_find(cur, v->id) >= 0) return PROTO_ERR_DUPLICATE_VOTER;
    if (v->id < 0 || cur->n == RAFT_MAX_VOTERS) return PROTO_ERR_INVALID_REQUEST;
    /* the new voter must be an observer that caught up with the log lately (Kafka: the
     * replica's last caught-up time within the fetch timeout) */
    const raft_peer_t *obs = NULL; /* the replica (id, directory id), as Kafka's ReplicaKey */
    for (int i = 0; i < r->n_observers; i++)
        if (r->observers[i].id == v->id && memcmp(r->observers[i].dir, v->dir, 16) == 0)
            obs = &r->observers[i];
    if (!obs || obs->last_caught_up_ms < 0 ||
        now - obs->last_caught_up_ms > r->cfg.fetch_timeout_ms)
        return PROTO_ERR_REQUEST_TIMED_OUT;
    raft_voter_set_t next = *cur;
    next.v[next.n++] = *v;
    return append_voters(r, now, &next, offset);
}

int16_t raft_remove_voter(raft_t *r, int64_t now, int32_t id, const uint8_t dir[16],
                          int64_t *offset) {
    int16_t err = change_allowed(r);
    if (err != PROTO_ERR_NONE) return err;
    const raft_voter_set_t *cur = current_set(r);
    int i = raft_voters_find(cur, id);
    if (i < 0 || memcmp(cur->v[i].dir, dir, 16) != 0 || cur->n == 1)
        return PROTO_ERR_VOTER_NOT_FOUND;
    raft_voter_set_t next = *cur;
    next.v[i] = next.v[--next.n];
    return append_voters(r, now, &next, offset);
}

int16_t raft_update_voter(raft_t *r, int64_t now, const raft_voter_t *v, int64_t *offset) {
    int16_t err = change_allowed(r);
    if (err != PROTO_ERR_NONE) return err;
    const raft_voter_set_t *cur = current_set(r);
    int i = raft_voters_find(cur, v->id);
    if (i < 0 || memcmp(cur->v[i].dir, v->dir, 16) != 0) return PROTO_ERR_VOTER_NOT_FOUND;
    raft_voter_set_t next = *cur;
    next.v[i] = *v;
    return append_voters(r, now, &next, offset);
}

void raft_snapshot_voters(raft_t *r, const raft_voter_set_t *set) {
    if (!r->cfg.dynamic || set->n < 1 || set->n > RAFT_MAX_VOTERS) return;
    r->base = *set;
    if (r->n_hist == 0) sync_peers(r, 0);
}

const raft_voter_set_t *raft_voters(const raft_t *r) { return current_set(r); }
int16_t raft_kraft_version(const raft_t *r) { return r->cfg.dynamic ? 1 : 0; }

/* ---- construction ---- */

void raft_config_defaults(raft_config_t *c) {
    memset(c, 0, sizeof(*c));
    c->election_timeout_ms = 1000;
    c->fetch_timeout_ms = 2000;
    c->election_backoff_max_ms = 1000;
    c->request_timeout_ms = 2000;
    c->retry_backoff_ms = 20;
    c->fetch_max_wait_ms = 500;
    c->max_fetch_entries = 256;
    c->snapshot_chunk_bytes = 1 << 20;
    c->snapshot_min_entries = 0;
    c->snapshot_interval_ms = 0;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static bool same_voter_set(const int32_t *a, int na, const int32_t *b, int nb) {
    if (na != nb || na > RAFT_MAX_VOTERS) return false;
    int32_t x[RAFT_MAX_VOTERS], y[RAFT_MAX_VOTERS];
    memcpy(x, a, (size_t)na * sizeof(int32_t));
    memcpy(y, b, (size_t)nb * sizeof(int32_t));
    qsort(x, (size_t)na, sizeof(int32_t), cmp_i32);
    qsort(y, (size_t)nb, sizeof(int32_t), cmp_i32);
    return memcmp(x, y, (size_t)na * sizeof(int32_t)) == 0;
}

int raft_new(const raft_config_t *cfg, const raft_restore_t *rs, int64_t now, raft_t **out) {
    int rc = SM_ERR_RANGE;
    raft_t *r = NULL;
    if (cfg->node_id < 0) goto out;
    if (!cfg->dynamic && (cfg->n_voters < 1 || cfg->n_voters > RAFT_MAX_VOTERS)) goto out;
    for (int i = 0; !cfg->dynamic && i < cfg->n_voters; i++)
        for (int j = 0; j < i; j++)
            if (cfg->voters[i] == cfg->voters[j] || cfg->voters[i] < 0) goto out;
    if (!cfg->dynamic && rs && rs->have_state && rs->state_voters &&
        !same_voter_set(rs->state_voters, rs->n_state_voters, cfg->voters, cfg->n_voters)) {
        sm_error(MOD,
                 "node %d: the quorum-state file names another voter set than "
                 "controller.quorum.voters; refusing to start",
                 cfg->node_id);
        goto out;
    }
    rc = SM_ERR_NOMEM;
    r = calloc(1, sizeof(*r));
    if (!r) goto out;
    r->cfg = *cfg;
    r->rng = cfg->rng_seed ^ ((uint64_t)(uint32_t)cfg->node_id << 32);
    if (!cfg->dynamic) {
        r->base.n = cfg->n_voters;
        for (int i = 0; i < cfg->n_voters; i++)
            r->base.v[i].id = cfg->voters[i];
    } else if (rs && rs->voters && rs->voters->n > 0 && rs->voters->n <= RAFT_MAX_VOTERS) {
        r->base = *rs->voters;
    }
    raft_offset_epoch_t snap = {0, 0};
    if (rs) snap = rs->snapshot;
    raft_log_init(&r->log, snap);
    r->snapshot = snap;
    if (rs) {
        for (int i = 0; i < rs->n_entries; i++) {
            if (raft_log_append(&r->log, &rs->entries[i]) != SM_OK) goto out;
            note_entry(r, snap.offset + i, &rs->entries[i]);
        }
    }
    sync_peers(r, now);
    r->flushed = log_end(r);
    r->hw = r->hw_max = r->log.start;
    r->last_snapshot_ms = now;
    r->qs.epoch = 0;
    r->qs.leader_id = RAFT_NO_NODE;
    r->qs.voted_id = RAFT_NO_NODE;
    if (rs && rs->have_state) r->qs = rs->state;
    if (raft_log_last_epoch(&r->log) > r->qs.epoch) {
        r->qs.epoch = raft_log_last_epoch(&r->log);
        r->qs.leader_id = r->qs.voted_id = RAFT_NO_NODE;
    }
    r->persisted = r->qs;
    /* a leader that restarts cannot resume its epoch (its followers' state is gone) */
    if (r->qs.leader_id == cfg->node_id && may_campaign(r)) {
        r->state = RAFT_RESIGNED;
        r->election_deadline = now + election_timeout(r);
        reset_peers(r, now);
    } else if (r->qs.leader_id >= 0 && leader_known_ok(r, r->qs.leader_id) &&
               r->qs.leader_id != cfg->node_id) {
        become_follower(r, now, r->qs.epoch, r->qs.leader_id);
    } else {
        become_unattached(r, now, r->qs.epoch, r->qs.voted_id);
        if (r->n_voters == 1 && r->self_idx == 0) become_prospective(r, now);
    }
    *out = r;
    r = NULL;
    rc = SM_OK;
out:
    if (r) raft_free(r);
    return rc;
}

void raft_free(raft_t *r) {
    if (!r) return;
    if (r->polled_valid) out_node_free(&r->polled);
    for (int i = 0; i < r->out_n; i++)
        out_node_free(&r->out[r->out_head + i]);
    free(r->out);
    raft_log_destroy(&r->log);
    free(r->hist);
    free(r);
}

/* ---- introspection ---- */

raft_state_kind_t raft_state(const raft_t *r) { return r->state; }
raft_quorum_state_t raft_quorum_state(const raft_t *r) { return r->qs; }
int64_t raft_high_watermark(const raft_t *r) { return r->hw; }
int64_t raft_log_start(const raft_t *r) { return r->log.start; }
int64_t raft_log_end(const raft_t *r) { return log_end(r); }
raft_offset_epoch_t raft_last_position(const raft_t *r) { return last_position(r); }
const raft_entry_t *raft_entry_at(const raft_t *r, int64_t offset) {
    return raft_log_at(&r->log, offset);
}
bool raft_is_voter(const raft_t *r) { return r->self_idx >= 0; }

static void replica_info(const raft_t *r, const raft_peer_t *p, bool self, raft_replica_info_t *o) {
    o->id = p->id;
    o->log_end_offset = self ? r->flushed : p->end_offset;
    o->last_fetch_ms = p->last_fetch_ms;
    o->last_caught_up_ms = self ? p->last_fetch_ms : p->last_caught_up_ms;
    memcpy(o->dir, self ? r->cfg.directory_id : p->dir, 16);
}

int16_t raft_describe_quorum(const raft_t *r, raft_quorum_info_t *out) {
    memset(out, 0, sizeof(*out));
    if (r->state != RAFT_LEADER) return PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    out->leader_id = r->cfg.node_id;
    out->epoch = r->qs.epoch;
    out->high_watermark = r->hw;
    out->n_voters = r->n_voters;
    for (int i = 0; i < r->n_voters; i++)
        replica_info(r, &r->voters[i], i == r->self_idx, &out->voters[i]);
    out->n_observers = r->n_observers;
    for (int i = 0; i < r->n_observers; i++)
        replica_info(r, &r->observers[i], false, &out->observers[i]);
    return PROTO_ERR_NONE;
}

#define BROKEN(n, text)                                                                            \
    do {                                                                                           \
        *why = text;                                                                               \
        return n;                                                                                  \
    } while (0)

int raft_check_invariants(const raft_t *r, const char **why) {
    const char *unused;
    if (!why) why = &unused;
    int64_t end = log_end(r);
    if (r->log.start > r->hw || r->hw > end) BROKEN(1, "high watermark outside the log");
    if (r->flushed < r->log.start || r->flushed > end) BROKEN(1, "flushed offset outside the log");
    int32_t prev = r->log.start_epoch;
    for (int64_t i = 0; i < r->log.n; i++) {
        if (r->log.e[i].epoch < prev) BROKEN(2, "entry epochs decrease");
        if (r->log.e[i].epoch > r->qs.epoch) BROKEN(2, "entry epoch above the current epoch");
        prev = r->log.e[i].epoch;
    }
    const raft_quorum_state_t *q = &r->qs;
    switch (r->state) {
    case RAFT_LEADER: {
        if (q->leader_id != r->cfg.node_id || q->voted_id != r->cfg.node_id)
            BROKEN(3, "leader without its own leadership and vote");
        if (r->self_idx < 0 && !(r->n_hist && r->hist[r->n_hist - 1].offset >= r->hw))
            BROKEN(3, "leader outside the voter set past its removal's commit");
        const raft_entry_t *e = raft_log_at(&r->log, r->epoch_start_offset);
        if (r->epoch_start_offset >= r->log.start &&
            (!e || e->control != RAFT_CONTROL_LEADER_CHANGE || e->epoch != q->epoch))
            BROKEN(3, "no LeaderChange record at the epoch start offset");
        break;
    }
    case RAFT_CANDIDATE:
        if (q->voted_id != r->cfg.node_id || q->leader_id != RAFT_NO_NODE)
            BROKEN(4, "candidate without its own vote");
        break;
    case RAFT_UNATTACHED:
        if (q->leader_id != RAFT_NO_NODE) BROKEN(4, "unattached with a leader");
        break;
    case RAFT_PROSPECTIVE:
        if (!may_campaign(r)) BROKEN(4, "observer in an election");
        break;
    case RAFT_FOLLOWER:
        if (q->leader_id < 0 || q->leader_id == r->cfg.node_id)
            BROKEN(4, "follower without a leader");
        break;
    case RAFT_RESIGNED:
        if (q->leader_id != r->cfg.node_id) BROKEN(4, "resigned but not the leader");
        break;
    }
    if (memcmp(&r->qs, &r->persisted, sizeof(r->qs)) != 0)
        BROKEN(5, "quorum state not queued for the file");
    if (r->hw < r->hw_max) BROKEN(6, "high watermark went back");
    if (r->state == RAFT_LEADER && r->hw != r->hw_at_election && r->hw <= r->epoch_start_offset)
        BROKEN(7, "high watermark moved by an entry of an older epoch");
    int granted = 0;
    for (int i = 0; i < r->n_voters; i++)
        granted += r->voters[i].vote == 1;
    if (granted > r->n_voters) BROKEN(8, "more grants than voters");
    return 0;
}
