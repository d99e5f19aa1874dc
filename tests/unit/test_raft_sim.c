/*
 * Deterministic simulation of the KRaft quorum (src/raft/): 3 or 5 voters (plus an observer
 * on some seeds) on a simulated clock and network that drops, duplicates, delays, reorders
 * and partitions messages, with nodes crashing at any point (between any two outbox actions)
 * and restarting from what they had made durable. After every step a checker verifies
 * election safety, vote durability, log matching, leader completeness, state-machine safety
 * and a monotonic high watermark; after the faults stop, liveness. Also: bad-input cases
 * refused with Kafka's error codes, and proof that the checker catches injected bugs.
 * Dynamic quorums (KIP-853): five nodes of which one to three are formatted as the first
 * voters, the others observers that find the leader through the bootstrap servers; voters
 * are added and removed (the leader too) while the faults go on, under the same checker.
 *
 * Usage: test_raft_sim                      the `make test` suite
 *        test_raft_sim --seeds N [--start S] [--nodes 3|5] [--dynamic]   more seeds
 *        test_raft_sim --seed S --nodes N [--bug B] --trace  one seed, every event printed
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "protocol/errors.h"
#include "base/arena.h"
#include "raft/quorum_file.h"
#include "raft/raft_codec.h"
#include "raft/raft.h"
#include "raft/raft_voters.h"
#include "sim_rand.h"
#include "test.h"

#define MAX_NODES 6
#define SNAP_BYTES 100
#define CLUSTER "samsa-sim-cluster"

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}
#define CHAIN0 0x5a5a5a5a12345678ULL

static uint64_t entry_chain(uint64_t prev, int64_t offset, const raft_entry_t *e) {
    uint64_t h = mix(prev, (uint64_t)offset);
    h = mix(h, (uint64_t)e->epoch);
    h = mix(h, e->control);
    for (uint32_t i = 0; i < e->len; i++)
        h = mix(h, e->data[i]);
    return h;
}

/* ---- the simulated world ---- */

typedef struct disk_entry {
    raft_entry_t e;
    uint64_t chain; /* hash of the whole log up to and including this entry */
} disk_entry_t;

typedef struct node {
    int32_t id;
    raft_t *r;
    bool up;
    int64_t restart_at;
    /* disk: the log from disk_start, the durable prefix, the quorum-state file, a snapshot */
    disk_entry_t *disk;
    int64_t n_disk, cap_disk, disk_start, durable_end;
    uint64_t start_chain;
    bool flush_pending;
    int64_t flush_at;
    raft_quorum_state_t qfile;
    bool have_qfile;
    raft_offset_epoch_t snap_id; /* offset 0: none */
    uint8_t snap[SNAP_BYTES];
    raft_offset_epoch_t in_snap_id; /* a snapshot being fetched (not durable until installed) */
    uint8_t in_snap[SNAP_BYTES];
    /* the state machine: how far it applied and the chain hash there */
    int64_t applied;
    uint64_t applied_chain;
    raft_state_kind_t last_state;
    /* dynamic quorum: the voter set of its snapshot, and of its bootstrap checkpoint (the
     * formatted first voters; empty for a node that joins as an observer) */
    raft_voter_set_t snap_voters, boot_voters;
} node_t;

typedef struct event {
    int64_t at;
    uint64_t seq;
    raft_msg_t m;
} event_t;

typedef struct leader_rec {
    int32_t epoch, node;
    int64_t start, n; /* chain hashes of its log at election: offsets start .. start+n-1 */
    uint64_t *chain;
} leader_rec_t;

typedef struct world {
    uint64_t seed;
    int n_voters, n_nodes;
    bool dynamic;
    int bug;
    bool trace;
    bool no_vote_check; /* leave double votes to the election-safety check */
    node_t nodes[MAX_NODES];
    int64_t now;
    /* network */
    event_t *ev;
    int n_ev, cap_ev;
    uint64_t ev_seq;
    bool blocked[MAX_NODES][MAX_NODES];
    double p_drop, p_dup, p_crash_action;
    int64_t max_delay, max_flush;
    int max_fetch_entries;
    uint32_t snapshot_chunk;
    bool faults;
    /* checker state */
    uint64_t *cchain; /* cchain[o] = chain hash of the committed log below offset o */
    int32_t *cepoch;  /* cepoch[o] = epoch of the leader under which offset o committed */
    int64_t n_committed, cap_committed;
    leader_rec_t *leaders;
    int n_leaders, cap_leaders;
    int32_t (*votes)[MAX_NODES]; /* votes[epoch][node]: durable vote, -1 none */
    int32_t cap_votes;
    struct {
        uint64_t key, chain;
    } * lm; /* log matching: (offset, epoch) -> chain hash */
    int64_t lm_cap, lm_n;
    uint64_t next_payload;
    uint64_t first_payload_after_heal, max_committed_payload;
    char failure[512];
    /* figures */
    long long steps, elections, crashes, snapshots_installed, truncations, resignations;
    long long voters_added, voters_removed, leaders_removed;
} world_t;

static world_t W;

static void fail(const char *fmt, ...) {
    if (W.failure[0]) return;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(W.failure, sizeof(W.failure), "t=%" PRId64 "ms: ", W.now);
    vsnprintf(W.failure + n, sizeof(W.failure) - (size_t)n, fmt, ap);
    va_end(ap);
}

static void trace(const char *fmt, ...) {
    if (!W.trace) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%8" PRId64 " ", W.now);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static node_t *node_by_id(int32_t id) {
    for (int i = 0; i < W.n_nodes; i++)
        if (W.nodes[i].id == id) return &W.nodes[i];
    return NULL;
}
static int idx_of(const node_t *n) { return (int)(n - W.nodes); }

/* ---- event heap (time, then send order) ---- */

static bool ev_less(const event_t *a, const event_t *b) {
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void ev_push(const raft_msg_t *m, int64_t at) {
    if (W.n_ev == W.cap_ev) {
        W.cap_ev = W.cap_ev ? W.cap_ev * 2 : 256;
        W.ev = realloc(W.ev, (size_t)W.cap_ev * sizeof(event_t));
        if (!W.ev) abort();
    }
    event_t e = {.at = at, .seq = W.ev_seq++};
    if (raft_msg_clone(&e.m, m) != SM_OK) abort();
    int i = W.n_ev++;
    while (i > 0 && ev_less(&e, &W.ev[(i - 1) / 2])) {
        W.ev[i] = W.ev[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    W.ev[i] = e;
}

static event_t ev_pop(void) {
    event_t top = W.ev[0];
    event_t last = W.ev[--W.n_ev];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= W.n_ev) break;
        if (c + 1 < W.n_ev && ev_less(&W.ev[c + 1], &W.ev[c])) c++;
        if (!ev_less(&W.ev[c], &last)) break;
        W.ev[i] = W.ev[c];
        i = c;
    }
    if (W.n_ev > 0) W.ev[i] = last;
    return top;
}

/* ---- checker pieces ---- */

static void committed_push(uint64_t chain, int32_t epoch) {
    if (W.n_committed + 1 >= W.cap_committed) {
        W.cap_committed = W.cap_committed ? W.cap_committed * 2 : 1024;
        W.cchain = realloc(W.cchain, (size_t)W.cap_committed * sizeof(uint64_t));
        W.cepoch = realloc(W.cepoch, (size_t)W.cap_committed * sizeof(int32_t));
        if (!W.cchain || !W.cepoch) abort();
    }
    W.cepoch[W.n_committed] = epoch;
    W.cchain[++W.n_committed] = chain;
}

static uint64_t lm_key(int64_t offset, int32_t epoch) {
    return mix(mix(0x1234, (uint64_t)offset), (uint64_t)epoch) | 1;
}

/* Log matching: two logs holding an entry of the same offset and epoch hold the same
 * entries up to it (the chain hash covers the whole prefix). */
static void check_log_matching(int64_t offset, int32_t epoch, uint64_t chain, int32_t node) {
    if (W.lm_n * 2 >= W.lm_cap) {
        int64_t cap = W.lm_cap ? W.lm_cap * 2 : 4096;
        __typeof__(W.lm) t = calloc((size_t)cap, sizeof(*t));
        if (!t) abort();
        for (int64_t i = 0; i < W.lm_cap; i++) {
            if (!W.lm[i].key) continue;
            int64_t j = (int64_t)(W.lm[i].key % (uint64_t)cap);
            while (t[j].key)
                j = (j + 1) % cap;
            t[j] = W.lm[i];
        }
        free(W.lm);
        W.lm = t;
        W.lm_cap = cap;
    }
    uint64_t k = lm_key(offset, epoch);
    int64_t j = (int64_t)(k % (uint64_t)W.lm_cap);
    while (W.lm[j].key && W.lm[j].key != k)
        j = (j + 1) % W.lm_cap;
    if (!W.lm[j].key) {
        W.lm[j].key = k;
        W.lm[j].chain = chain;
        W.lm_n++;
    } else if (W.lm[j].chain != chain) {
        fail("log matching: node %d holds offset %" PRId64 " epoch %d with another prefix", node,
             offset, epoch);
    }
}

static int32_t *vote_slot(int32_t epoch, int node_idx) {
    if (epoch >= W.cap_votes) {
        int32_t cap = W.cap_votes ? W.cap_votes : 64;
        while (cap <= epoch)
            cap *= 2;
        W.votes = realloc(W.votes, (size_t)cap * sizeof(*W.votes));
        if (!W.votes) abort();
        for (int32_t e = W.cap_votes; e < cap; e++)
            for (int i = 0; i < MAX_NODES; i++)
                W.votes[e][i] = -1;
        W.cap_votes = cap;
    }
    return &W.votes[epoch][node_idx];
}

static uint64_t disk_chain_before(const node_t *n, int64_t offset) {
    if (offset == n->disk_start) return n->start_chain;
    return n->disk[offset - 1 - n->disk_start].chain;
}

/* A node applies committed entries: each must extend or equal the committed sequence. */
static void apply_to(node_t *n, int64_t hw) {
    if (hw < n->applied) {
        fail("node %d: high watermark went back from %" PRId64 " to %" PRId64, n->id, n->applied,
             hw);
        return;
    }
    for (int64_t o = n->applied; o < hw && !W.failure[0]; o++) {
        if (o < n->disk_start || o >= n->disk_start + n->n_disk) {
            fail("node %d: committed offset %" PRId64 " not in its log", n->id, o);
            return;
        }
        const disk_entry_t *d = &n->disk[o - n->disk_start];
        if (o < W.n_committed) {
            if (W.cchain[o + 1] != d->chain)
                fail("state machine safety: node %d applies another entry at offset %" PRId64,
                     n->id, o);
        } else if (o == W.n_committed) {
            /* the high watermark a node learns comes from the leader of its own epoch */
            int32_t epoch = raft_quorum_state(n->r).epoch;
            committed_push(d->chain, epoch);
            /* leader completeness: every leader of a later epoch holds it */
            for (int i = 0; i < W.n_leaders; i++) {
                leader_rec_t *L = &W.leaders[i];
                if (L->epoch <= epoch || o < L->start) continue;
                if (o >= L->start + L->n || L->chain[o - L->start] != d->chain)
                    fail(
                        "leader completeness: leader %d of epoch %d lacks committed offset %" PRId64
                        " (epoch %d)",
                        L->node, L->epoch, o, d->e.epoch);
            }
            if (d->e.control == RAFT_CONTROL_NONE && d->e.len == 8) {
                uint64_t id;
                memcpy(&id, d->e.data, 8);
                if (id > W.max_committed_payload) W.max_committed_payload = id;
            }
        } else {
            fail("node %d applies offset %" PRId64 " beyond the committed %" PRId64, n->id, o,
                 W.n_committed);
        }
        n->applied = o + 1;
        n->applied_chain = d->chain;
    }
}

static void check_new_leader(node_t *n) {
    raft_quorum_state_t q = raft_quorum_state(n->r);
    for (int i = 0; i < W.n_leaders; i++) {
        if (W.leaders[i].epoch != q.epoch) continue;
        if (W.leaders[i].node != n->id)
            fail("election safety: nodes %d and %d both lead epoch %d", W.leaders[i].node, n->id,
                 q.epoch);
        return;
    }
    W.elections++;
    trace("node %d leads epoch %d", n->id, q.epoch);
    /* leader completeness at election: it holds every entry committed in earlier epochs */
    int64_t end = n->disk_start + n->n_disk;
    for (int64_t o = n->disk_start; o < W.n_committed; o++)
        if (W.cepoch[o] < q.epoch &&
            (o >= end || n->disk[o - n->disk_start].chain != W.cchain[o + 1])) {
            fail("leader completeness: leader %d of epoch %d differs at committed offset %" PRId64,
                 n->id, q.epoch, o);
            break;
        }
    if (W.n_leaders == W.cap_leaders) {
        W.cap_leaders = W.cap_leaders ? W.cap_leaders * 2 : 64;
        W.leaders = realloc(W.leaders, (size_t)W.cap_leaders * sizeof(*W.leaders));
        if (!W.leaders) abort();
    }
    leader_rec_t *L = &W.leaders[W.n_leaders++];
    L->epoch = q.epoch;
    L->node = n->id;
    L->start = n->disk_start;
    L->n = n->n_disk;
    L->chain = malloc((size_t)(n->n_disk ? n->n_disk : 1) * sizeof(uint64_t));
    if (!L->chain) abort();
    for (int64_t i = 0; i < n->n_disk; i++)
        L->chain[i] = n->disk[i].chain;
}

/* ---- a node's disk ---- */

static void disk_truncate(node_t *n, int64_t offset) {
    if (offset < n->disk_start) offset = n->disk_start;
    while (n->disk_start + n->n_disk > offset)
        free(n->disk[--n->n_disk].e.data);
    if (n->durable_end > offset) n->durable_end = offset;
}

static void disk_append(node_t *n, int64_t offset, const raft_entry_t *e) {
    if (offset != n->disk_start + n->n_disk) {
        fail("node %d: append at %" PRId64 " but its log ends at %" PRId64, n->id, offset,
             n->disk_start + n->n_disk);
        return;
    }
    if (n->n_disk == n->cap_disk) {
        n->cap_disk = n->cap_disk ? n->cap_disk * 2 : 256;
        n->disk = realloc(n->disk, (size_t)n->cap_disk * sizeof(*n->disk));
        if (!n->disk) abort();
    }
    disk_entry_t *d = &n->disk[n->n_disk];
    d->e = *e;
    d->e.data = malloc(e->len ? e->len : 1);
    if (!d->e.data) abort();
    memcpy(d->e.data, e->data, e->len);
    d->chain = entry_chain(disk_chain_before(n, offset), offset, e);
    n->n_disk++;
    check_log_matching(offset, e->epoch, d->chain, n->id);
}

static void disk_drop_prefix(node_t *n, int64_t offset) {
    if (offset <= n->disk_start) return;
    if (offset > n->disk_start + n->n_disk) {
        fail("node %d: log start %" PRId64 " past its log end", n->id, offset);
        return;
    }
    int64_t k = offset - n->disk_start;
    uint64_t chain = n->disk[k - 1].chain;
    for (int64_t i = 0; i < k; i++)
        free(n->disk[i].e.data);
    memmove(n->disk, n->disk + k, (size_t)(n->n_disk - k) * sizeof(*n->disk));
    n->n_disk -= k;
    n->disk_start = offset;
    n->start_chain = chain;
    if (n->durable_end < offset) n->durable_end = offset;
}

/* offset, epoch, chain hash, then the voter set's ids (a dynamic quorum's snapshot holds
 * its VotersRecord), then filler */
#define SNAP_VOTERS_AT 20
static void snap_encode(uint8_t *b, raft_offset_epoch_t id, uint64_t chain,
                        const raft_voter_set_t *voters) {
    memset(b, 0, SNAP_BYTES);
    memcpy(b, &id.offset, 8);
    memcpy(b + 8, &id.epoch, 4);
    memcpy(b + 12, &chain, 8);
    int n = voters ? voters->n : 0;
    b[SNAP_VOTERS_AT] = (uint8_t)n;
    for (int i = 0; i < n; i++)
        memcpy(b + SNAP_VOTERS_AT + 1 + 4 * i, &voters->v[i].id, 4);
    for (int i = SNAP_VOTERS_AT + 1 + 4 * MAX_NODES; i < SNAP_BYTES; i++)
        b[i] = (uint8_t)(chain >> (i % 8)) ^ (uint8_t)i;
}

static void snap_voters_of(const uint8_t *b, raft_voter_set_t *out) {
    memset(out, 0, sizeof(*out));
    out->n = b[SNAP_VOTERS_AT] <= MAX_NODES ? b[SNAP_VOTERS_AT] : 0;
    for (int i = 0; i < out->n; i++)
        memcpy(&out->v[i].id, b + SNAP_VOTERS_AT + 1 + 4 * i, 4);
}

static int snap_read(void *ctx, raft_offset_epoch_t id, int64_t pos, uint8_t *buf, uint32_t max,
                     uint32_t *n, int64_t *size) {
    node_t *nd = ctx;
    if (nd->snap_id.offset != id.offset || nd->snap_id.epoch != id.epoch || id.offset == 0)
        return SM_ERR_NOTFOUND;
    *size = SNAP_BYTES;
    int64_t left = SNAP_BYTES - pos;
    if (left < 0) left = 0;
    *n = (uint32_t)(left < max ? left : max);
    memcpy(buf, nd->snap + pos, *n);
    return SM_OK;
}

/* ---- running nodes ---- */

static void crash(node_t *n);

/* Every message travels as Kafka wire bytes (Vote at v2, Fetch at v12-17 with its entries as
 * record batches, the others at v0 or v1, chosen by seed); the request header's correlation
 * id, and with it which request a Vote answer belongs to, is carried beside the body, as the
 * server does. */
static void through_codec(raft_msg_t *m, uint8_t *buf, size_t cap, sm_arena_t *a) {
    bool vote = m->kind == RAFT_MSG_VOTE_REQ || m->kind == RAFT_MSG_VOTE_RESP;
    bool fetch = m->kind == RAFT_MSG_FETCH_REQ || m->kind == RAFT_MSG_FETCH_RESP;
    int16_t v = vote ? 2 : fetch ? (int16_t)(12 + W.seed % 6) : (int16_t)(W.seed % 2);
    sm_writer_t w = sm_writer_make(buf, cap);
    raft_msg_t out;
    if (raft_codec_encode(m, a, v, &w) != SM_OK) {
        fail("codec: cannot encode %s", raft_msg_kind_name(m->kind));
        return;
    }
    sm_reader_t r = sm_reader_make(buf, (size_t)(w.p - buf));
    if (raft_codec_decode(m->kind, &r, a, v, m->from, m->to, &out) != SM_OK) {
        fail("codec: cannot decode %s", raft_msg_kind_name(m->kind));
        return;
    }
    out.corr = m->corr;
    if (m->kind == RAFT_MSG_VOTE_RESP) out.u.vote_resp.pre_vote = m->u.vote_resp.pre_vote;
    *m = out;
}

static void deliver_later(const raft_msg_t *orig) {
    static uint8_t buf[1 << 16];
    sm_arena_t a;
    sm_arena_init(&a, 1 << 20);
    raft_msg_t wire = *orig, *m = &wire;
    if (m->to < 0) { /* a bootstrap server: the transport knows its address, not its id */
        int k = RAFT_BOOTSTRAP_INDEX(m->to);
        if (k < 0 || k >= W.n_voters) {
            fail("node %d sends to bootstrap server %d of %d", m->from, k, W.n_voters);
            goto out;
        }
        m->to = W.nodes[k].id;
    }
    through_codec(m, buf, sizeof(buf), &a);
    node_t *from = node_by_id(m->from), *to = node_by_id(m->to);
    if (!to) goto out;
    if (W.faults && (chance(W.p_drop) || W.blocked[idx_of(from)][idx_of(to)])) goto out;
    ev_push(m, W.now + 1 + rnd(W.max_delay));
    if (W.faults && chance(W.p_dup)) ev_push(m, W.now + 1 + rnd(W.max_delay * 2));
out:
    sm_arena_free(&a);
}

/* Executes a node's outbox in order; a crash may strike between any two actions. */
static void drain(node_t *n) {
    raft_action_t a;
    while (n->up && raft_poll(n->r, &a)) {
        if (W.faults && chance(W.p_crash_action)) {
            crash(n);
            return;
        }
        switch (a.kind) {
        case RAFT_ACT_PERSIST_STATE: {
            int32_t *v = vote_slot(a.state.epoch, idx_of(n));
            if (a.state.voted_id >= 0) {
                if (!W.no_vote_check && *v >= 0 && *v != a.state.voted_id)
                    fail("vote safety: node %d voted for %d then %d in epoch %d", n->id, *v,
                         a.state.voted_id, a.state.epoch);
                *v = a.state.voted_id;
            }
            if (n->have_qfile && a.state.epoch < n->qfile.epoch)
                fail("node %d: quorum-state epoch went back", n->id);
            n->qfile = a.state;
            n->have_qfile = true;
            break;
        }
        case RAFT_ACT_APPEND:
            for (int i = 0; i < a.n_entries; i++)
                disk_append(n, a.offset + i, &a.entries[i]);
            if (!n->flush_pending) {
                n->flush_pending = true;
                n->flush_at = W.now + rnd(W.max_flush + 1);
            }
            break;
        case RAFT_ACT_TRUNCATE:
            if (a.offset < n->applied)
                fail("node %d truncates to %" PRId64 " below what it applied (%" PRId64 ")", n->id,
                     a.offset, n->applied);
            if (a.offset < n->disk_start + n->n_disk) W.truncations++;
            disk_truncate(n, a.offset);
            break;
        case RAFT_ACT_SEND:
            trace("%d -> %d %s epoch %d err %d leader %d%s%s", a.msg.from, a.msg.to,
                  raft_msg_kind_name(a.msg.kind), a.msg.epoch, a.msg.error, a.msg.leader_id,
                  a.msg.kind == RAFT_MSG_VOTE_RESP && a.msg.u.vote_resp.granted ? " granted" : "",
                  (a.msg.kind == RAFT_MSG_VOTE_RESP || a.msg.kind == RAFT_MSG_VOTE_REQ) &&
                          (a.msg.kind == RAFT_MSG_VOTE_REQ ? a.msg.u.vote_req.pre_vote
                                                           : a.msg.u.vote_resp.pre_vote)
                      ? " pre"
                      : "");
            if (a.msg.kind == RAFT_MSG_FETCH_REQ)
                trace("   fetch offset %" PRId64 " last epoch %d", a.msg.u.fetch_req.fetch_offset,
                      a.msg.u.fetch_req.last_fetched_epoch);
            if (a.msg.kind == RAFT_MSG_FETCH_RESP)
                trace("   base %" PRId64 " n %d hw %" PRId64 " diverging %" PRId64
                      " snapshot %" PRId64,
                      a.msg.u.fetch_resp.base_offset, a.msg.u.fetch_resp.n_entries,
                      a.msg.u.fetch_resp.high_watermark, a.msg.u.fetch_resp.diverging.offset,
                      a.msg.u.fetch_resp.snapshot_id.offset);
            deliver_later(&a.msg);
            break;
        case RAFT_ACT_COMMIT: apply_to(n, a.offset); break;
        case RAFT_ACT_SNAPSHOT_REQUEST:
            if (n->applied != a.snapshot.offset) {
                fail("node %d asked to snapshot at %" PRId64 " having applied %" PRId64, n->id,
                     a.snapshot.offset, n->applied);
                break;
            }
            if (W.dynamic != (a.voters != NULL)) fail("node %d: snapshot voters", n->id);
            n->snap_id = a.snapshot;
            if (a.voters) n->snap_voters = *a.voters;
            snap_encode(n->snap, a.snapshot, n->applied_chain, a.voters);
            raft_snapshot_created(n->r, W.now, a.snapshot);
            break;
        case RAFT_ACT_LOG_START: disk_drop_prefix(n, a.offset); break;
        case RAFT_ACT_SNAPSHOT_WRITE:
            if (a.position == 0) n->in_snap_id = a.snapshot;
            if (a.position + a.len > SNAP_BYTES) {
                fail("node %d: snapshot chunk beyond its size", n->id);
                break;
            }
            memcpy(n->in_snap + a.position, a.data, a.len);
            break;
        case RAFT_ACT_SNAPSHOT_INSTALL: {
            int64_t off;
            uint64_t chain;
            memcpy(&off, n->in_snap, 8);
            memcpy(&chain, n->in_snap + 12, 8);
            if (off != a.snapshot.offset || off > W.n_committed || W.cchain[off] != chain) {
                fail("state machine safety: node %d installs a snapshot at %" PRId64
                     " that is not the committed state",
                     n->id, a.snapshot.offset);
                break;
            }
            if (off < n->applied) fail("node %d installs a snapshot behind what it applied", n->id);
            W.snapshots_installed++;
            n->snap_id = a.snapshot;
            memcpy(n->snap, n->in_snap, SNAP_BYTES);
            disk_truncate(n, n->disk_start);
            n->disk_start = n->durable_end = off;
            n->start_chain = chain;
            n->applied = off;
            n->applied_chain = chain;
            if (W.dynamic) {
                snap_voters_of(n->snap, &n->snap_voters);
                raft_snapshot_voters(n->r, &n->snap_voters);
            }
            break;
        }
        case RAFT_ACT_LEADER_CHANGE: break;
        }
    }
}

static void after_step(node_t *n) {
    if (!n->up) return;
    drain(n);
    if (!n->up) return;
    if (raft_state(n->r) != n->last_state) {
        if (n->last_state == RAFT_LEADER && raft_state(n->r) == RAFT_RESIGNED) W.resignations++;
        n->last_state = raft_state(n->r);
        trace("node %d is %s in epoch %d", n->id, raft_state_name(n->last_state),
              raft_quorum_state(n->r).epoch);
    }
    const char *why = NULL;
    int inv = raft_check_invariants(n->r, &why);
    if (inv) fail("node %d breaks invariant %d: %s", n->id, inv, why);
    if (raft_state(n->r) == RAFT_LEADER) check_new_leader(n);
    if (raft_log_end(n->r) != n->disk_start + n->n_disk || raft_log_start(n->r) != n->disk_start)
        fail("node %d: in-memory log [%" PRId64 ",%" PRId64 ") differs from its disk [%" PRId64
             ",%" PRId64 ")",
             n->id, raft_log_start(n->r), raft_log_end(n->r), n->disk_start,
             n->disk_start + n->n_disk);
}

static raft_config_t config_for(node_t *n) {
    raft_config_t c;
    raft_config_defaults(&c);
    c.node_id = n->id;
    c.n_voters = W.n_voters;
    for (int i = 0; i < W.n_voters; i++)
        c.voters[i] = W.nodes[i].id;
    snprintf(c.cluster_id, sizeof(c.cluster_id), "%s", CLUSTER);
    c.election_timeout_ms = 150;
    c.fetch_timeout_ms = 300;
    c.election_backoff_max_ms = 150;
    c.request_timeout_ms = 100;
    c.retry_backoff_ms = 10;
    c.fetch_max_wait_ms = 80;
    c.max_fetch_entries = W.max_fetch_entries;
    c.snapshot_chunk_bytes = W.snapshot_chunk;
    c.snapshot_min_entries = 40;
    c.rng_seed = W.seed * 1000003 + (uint64_t)n->id;
    c.snapshot_read = snap_read;
    c.ctx = n;
    c.test_bug = W.bug;
    if (W.dynamic) {
        c.dynamic = true;
        c.n_voters = 0;
        c.n_bootstrap = W.n_voters; /* the first voters are the bootstrap servers */
    }
    return c;
}

static void start(node_t *n) {
    raft_config_t c = config_for(n);
    /* recovery: a crash between taking a snapshot and trimming the log leaves a prefix the
     * snapshot covers; the log handed to raft starts at the snapshot */
    if (n->snap_id.offset > n->disk_start + n->n_disk) { /* the snapshot is past the log */
        disk_truncate(n, n->disk_start);
        n->disk_start = n->durable_end = n->snap_id.offset;
        n->start_chain = W.cchain[n->snap_id.offset];
    } else if (n->snap_id.offset > n->disk_start) {
        disk_drop_prefix(n, n->snap_id.offset);
    }
    raft_entry_t *es = calloc((size_t)(n->n_disk ? n->n_disk : 1), sizeof(*es));
    if (!es) abort();
    for (int64_t i = 0; i < n->n_disk; i++)
        es[i] = n->disk[i].e;
    int32_t voters[RAFT_MAX_VOTERS];
    for (int i = 0; i < W.n_voters; i++)
        voters[i] = W.nodes[i].id;
    raft_restore_t rs = {.state = n->qfile,
                         .have_state = n->have_qfile,
                         .state_voters = voters,
                         .n_state_voters = W.n_voters,
                         .snapshot = n->snap_id,
                         .voters = n->snap_id.offset ? &n->snap_voters : &n->boot_voters,
                         .entries = es,
                         .n_entries = (int)n->n_disk};
    int rc = raft_new(&c, &rs, W.now, &n->r);
    free(es);
    if (rc != SM_OK) {
        fail("node %d does not restart: %d", n->id, rc);
        return;
    }
    n->up = true;
    n->last_state = (raft_state_kind_t)-1;
    n->applied = n->snap_id.offset;
    n->applied_chain = n->snap_id.offset ? W.cchain[n->snap_id.offset] : CHAIN0;
    n->in_snap_id.offset = 0;
    trace("node %d starts (log %" PRId64 "..%" PRId64 ", epoch %d)", n->id, n->disk_start,
          n->disk_start + n->n_disk, n->qfile.epoch);
    after_step(n);
}

/* A crash loses memory, the unflushed log tail and a half-fetched snapshot; the quorum-state
 * file, the durable log and the last complete snapshot stay. */
static void crash(node_t *n) {
    trace("node %d crashes (durable log end %" PRId64 ")", n->id, n->durable_end);
    W.crashes++;
    raft_free(n->r);
    n->r = NULL;
    n->up = false;
    n->flush_pending = false;
    disk_truncate(n, n->durable_end);
    n->restart_at = W.now + 20 + rnd(800);
}

static node_t *current_leader(void) {
    node_t *best = NULL;
    for (int i = 0; i < W.n_nodes; i++) {
        node_t *n = &W.nodes[i];
        if (!n->up || raft_state(n->r) != RAFT_LEADER) continue;
        if (!best || raft_quorum_state(n->r).epoch > raft_quorum_state(best->r).epoch) best = n;
    }
    return best;
}

static void random_fault(void) {
    int k = (int)rnd(10);
    if (k < 3) {
        node_t *n = &W.nodes[rnd(W.n_nodes)];
        if (n->up) crash(n);
    } else if (k < 5) { /* symmetric partition into two random sides */
        uint32_t side = (uint32_t)prng();
        for (int i = 0; i < W.n_nodes; i++)
            for (int j = 0; j < W.n_nodes; j++)
                W.blocked[i][j] = ((side >> i) & 1) != ((side >> j) & 1);
        trace("partition %x", side & ((1u << W.n_nodes) - 1));
    } else if (k < 7) { /* one-way link failure */
        int a = (int)rnd(W.n_nodes), b = (int)rnd(W.n_nodes);
        W.blocked[a][b] = true;
        trace("one-way block %d -> %d", W.nodes[a].id, W.nodes[b].id);
    } else if (k < 8) { /* isolate the leader */
        node_t *l = current_leader();
        if (l) {
            for (int j = 0; j < W.n_nodes; j++)
                W.blocked[idx_of(l)][j] = W.blocked[j][idx_of(l)] = j != idx_of(l);
            trace("leader %d isolated", l->id);
        }
    } else if (k < 9) {
        node_t *l = current_leader();
        if (l) raft_resign(l->r, W.now), after_step(l);
        if (l && l->up) crash(l); /* graceful shutdown: resign, then stop */
    } else {
        memset(W.blocked, 0, sizeof(W.blocked));
        trace("network healed");
    }
}

/* A dynamic quorum's operator: asks the leader to add a node that does not vote or to
 * remove a voter (the leader itself too). Refusals (a change pending, a node not caught up)
 * are part of the game. */
static void membership_change(void) {
    node_t *l = current_leader();
    if (!l) return;
    const raft_voter_set_t *s = raft_voters(l->r);
    int64_t off;
    int16_t err;
    if (chance(0.6) && s->n < W.n_nodes) {
        node_t *c = &W.nodes[rnd(W.n_nodes)];
        if (raft_voters_find(s, c->id) >= 0) return;
        raft_voter_t v = {.id = c->id};
        err = raft_add_voter(l->r, W.now, &v, &off);
        trace("add voter %d: error %d", c->id, err);
        if (err == PROTO_ERR_NONE) W.voters_added++;
    } else {
        int32_t id = s->v[rnd(s->n)].id;
        uint8_t dir[16] = {0};
        err = raft_remove_voter(l->r, W.now, id, dir, &off);
        trace("remove voter %d: error %d", id, err);
        if (err == PROTO_ERR_NONE) W.voters_removed++, W.leaders_removed += id == l->id;
    }
    after_step(l);
}

static void world_free(void) {
    for (int i = 0; i < W.n_nodes; i++) {
        node_t *n = &W.nodes[i];
        raft_free(n->r);
        disk_truncate(n, n->disk_start);
        free(n->disk);
    }
    for (int i = 0; i < W.n_ev; i++)
        raft_msg_release(&W.ev[i].m);
    free(W.ev);
    free(W.cchain);
    free(W.cepoch);
    for (int i = 0; i < W.n_leaders; i++)
        free(W.leaders[i].chain);
    free(W.leaders);
    free(W.votes);
    free(W.lm);
    memset(&W, 0, sizeof(W));
}

typedef struct sim_opts {
    uint64_t seed;
    int n_voters; /* dynamic: the formatted first voters, of 5 nodes */
    bool dynamic;
    bool observer;
    int bug;
    bool trace;
    bool no_vote_check;
    int64_t fault_ms, live_ms;
} sim_opts_t;

/* Runs one seed; returns 0, or 1 with W.failure set (kept until world_free). */
static int run_seed(const sim_opts_t *o, char *failure, size_t failure_len) {
    memset(&W, 0, sizeof(W));
    W.seed = o->seed;
    prng_state = o->seed * 0x2545f4914f6cdd1dULL + 17;
    W.n_voters = o->n_voters;
    W.n_nodes = o->dynamic ? 5 : o->n_voters + (o->observer ? 1 : 0);
    W.dynamic = o->dynamic;
    W.bug = o->bug;
    W.trace = o->trace;
    W.no_vote_check = o->no_vote_check;
    W.faults = true;
    W.p_drop = (double)rnd(20) / 100.0;
    W.p_dup = (double)rnd(10) / 100.0;
    W.p_crash_action = (double)rnd(3) / 1000.0;
    W.max_delay = 1 + rnd(30);
    W.max_flush = rnd(20);
    W.max_fetch_entries = 4 + (int)rnd(13); /* fewer makes catching up outlast the test */
    W.snapshot_chunk = 7 + (uint32_t)rnd(60);
    W.cap_committed = 1024;
    W.cchain = malloc((size_t)W.cap_committed * sizeof(uint64_t));
    W.cepoch = malloc((size_t)W.cap_committed * sizeof(int32_t));
    if (!W.cchain || !W.cepoch) abort();
    W.cchain[0] = CHAIN0;
    for (int i = 0; i < W.n_nodes; i++) {
        W.nodes[i].id = i + 1;
        W.nodes[i].start_chain = CHAIN0;
    }
    for (int i = 0; W.dynamic && i < W.n_voters; i++) /* the standalone-formatted voters */
        for (int j = 0; j < W.n_voters; j++)
            W.nodes[i].boot_voters.v[W.nodes[i].boot_voters.n++].id = W.nodes[j].id;
    for (int i = 0; i < W.n_nodes; i++)
        start(&W.nodes[i]);
    int64_t heal_at = o->fault_ms, end_at = o->fault_ms + o->live_ms;
    int64_t next_fault = rnd(300), next_propose = rnd(20);
    int64_t next_change = W.dynamic ? 100 + rnd(300) : INT64_MAX;
    bool healed = false;
    while (!W.failure[0] && W.now < end_at) {
        /* the next thing to happen: a message, a flush, a restart, a timer, a fault, a proposal */
        /* the client goes on for a second after the faults, and until something it proposed
         * after them committed (at most until 3 s before the end), leaving time to catch up */
        bool client_done =
            W.now >= heal_at + 1000 &&
            (W.max_committed_payload >= W.first_payload_after_heal || W.now >= end_at - 3000);
        int64_t t = client_done ? end_at : next_propose;
        if (!healed && heal_at < t) t = heal_at;
        if (!healed && next_fault < t) t = next_fault;
        if (!healed && next_change < t) t = next_change;
        if (W.n_ev && W.ev[0].at < t) t = W.ev[0].at;
        node_t *tick_node = NULL, *flush_node = NULL, *restart_node = NULL;
        for (int i = 0; i < W.n_nodes; i++) {
            node_t *n = &W.nodes[i];
            if (!n->up) {
                if (n->restart_at < t)
                    t = n->restart_at, restart_node = n, tick_node = flush_node = NULL;
                continue;
            }
            if (n->flush_pending && n->flush_at < t)
                t = n->flush_at, flush_node = n, tick_node = restart_node = NULL;
            int64_t d = raft_next_deadline(n->r);
            if (d < t) t = d, tick_node = n, flush_node = restart_node = NULL;
        }
        if (t > W.now) W.now = t;
        W.steps++;
        if (restart_node) {
            start(restart_node);
        } else if (flush_node) {
            flush_node->flush_pending = false;
            flush_node->durable_end = flush_node->disk_start + flush_node->n_disk;
            raft_log_flushed(flush_node->r, W.now, flush_node->durable_end);
            after_step(flush_node);
        } else if (tick_node) {
            raft_tick(tick_node->r, W.now);
            after_step(tick_node);
        } else if (W.n_ev && W.ev[0].at <= t) {
            event_t e = ev_pop();
            node_t *to = node_by_id(e.m.to), *from = node_by_id(e.m.from);
            if (to->up && !(W.faults && W.blocked[idx_of(from)][idx_of(to)])) {
                raft_step(to->r, W.now, &e.m);
                after_step(to);
            }
            raft_msg_release(&e.m);
        } else if (!healed && t == heal_at) {
            healed = true;
            W.faults = false;
            memset(W.blocked, 0, sizeof(W.blocked));
            W.first_payload_after_heal = W.next_payload + 1;
            for (int i = 0; i < W.n_nodes; i++)
                if (!W.nodes[i].up) W.nodes[i].restart_at = W.now;
            trace("faults stop");
        } else if (!healed && t == next_fault) {
            random_fault();
            next_fault = W.now + 50 + rnd(700);
        } else if (!healed && t == next_change) {
            membership_change();
            next_change = W.now + 50 + rnd(300);
        } else if (t == next_propose) {
            node_t *l = current_leader();
            if (l) {
                uint64_t id = ++W.next_payload;
                int64_t off;
                if (raft_propose(l->r, W.now, &id, sizeof(id), &off) == SM_OK) after_step(l);
            }
            next_propose = W.now + 1 + rnd(30);
        }
    }
    /* liveness: after the faults stopped, a leader exists, something proposed after the
     * heal committed, and every node applied the same committed log */
    if (!W.failure[0]) {
        node_t *l = current_leader();
        if (!l)
            fail("liveness: no leader %" PRId64 " ms after the faults stopped", o->live_ms);
        else if (W.max_committed_payload < W.first_payload_after_heal)
            fail("liveness: nothing proposed after the faults stopped committed");
        else
            for (int i = 0; i < W.n_nodes; i++)
                if (W.nodes[i].applied != W.n_committed)
                    fail("liveness: node %d applied %" PRId64 " of %" PRId64 " committed",
                         W.nodes[i].id, W.nodes[i].applied, W.n_committed);
        /* DescribeQuorum from the leader: every voter caught up, the observer listed */
        raft_quorum_info_t qi;
        if (!W.failure[0] && raft_describe_quorum(l->r, &qi) != PROTO_ERR_NONE)
            fail("DescribeQuorum refused by the leader");
        int n_voters = W.dynamic && l ? raft_voters(l->r)->n : W.n_voters;
        if (!W.failure[0] && (qi.leader_id != l->id || qi.high_watermark != W.n_committed ||
                              qi.n_voters != n_voters || qi.n_observers != W.n_nodes - n_voters))
            fail("DescribeQuorum: leader %d hw %" PRId64 " voters %d observers %d", qi.leader_id,
                 qi.high_watermark, qi.n_voters, qi.n_observers);
        for (int i = 0; !W.failure[0] && i < qi.n_voters; i++)
            if (qi.voters[i].log_end_offset < W.n_committed)
                fail("DescribeQuorum: voter %d at %" PRId64, qi.voters[i].id,
                     qi.voters[i].log_end_offset);
    }
    int rc = W.failure[0] ? 1 : 0;
    if (failure) snprintf(failure, failure_len, "%s", W.failure);
    return rc;
}

static sim_opts_t opts_for(uint64_t seed, int n_voters, int bug) {
    sim_opts_t o = {.seed = seed,
                    .n_voters = n_voters,
                    .observer = (seed & 1) != 0,
                    .bug = bug,
                    .fault_ms = 4000,
                    .live_ms = 6000};
    return o;
}

/* A dynamic quorum (KIP-853): 5 nodes, one to three of them formatted as the first voters. */
static sim_opts_t opts_dynamic(uint64_t seed) {
    sim_opts_t o = opts_for(seed, 1 + (int)(seed % 3), RAFT_BUG_NONE);
    o.dynamic = true;
    o.observer = false;
    return o;
}

struct totals {
    long long steps, elections, crashes, snaps, committed, truncations, resignations;
    long long added, removed, leaders_removed;
};

/* n_voters 0: dynamic quorums */
static int run_many(uint64_t start, uint64_t n, int n_voters, struct totals *tot) {
    int failed = 0;
    for (uint64_t s = start; s < start + n; s++) {
        sim_opts_t o = n_voters ? opts_for(s, n_voters, RAFT_BUG_NONE) : opts_dynamic(s);
        char why[512];
        if (run_seed(&o, why, sizeof(why))) {
            failed++;
            fprintf(stderr,
                    "seed %" PRIu64 " (%s) FAILED: %s\n  reproduce: "
                    "build/tests/test_raft_sim --seed %" PRIu64 " %s --trace\n",
                    s, n_voters ? "static" : "dynamic", why, s,
                    n_voters == 5 ? "--nodes 5"
                    : n_voters    ? "--nodes 3"
                                  : "--dynamic");
        }
        tot->added += W.voters_added;
        tot->removed += W.voters_removed;
        tot->leaders_removed += W.leaders_removed;
        tot->steps += W.steps;
        tot->elections += W.elections;
        tot->crashes += W.crashes;
        tot->snaps += W.snapshots_installed;
        tot->committed += W.n_committed;
        tot->truncations += W.truncations;
        tot->resignations += W.resignations;
        world_free();
    }
    return failed;
}

/* ---- the `make test` suite ---- */

/* Seeds per `make test` run (a few seconds); sanitizer builds, about ten times slower, run a
 * quarter of them (they look for memory errors, the seeds are for `make raft-sim`). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SEED_SHARE 4
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SEED_SHARE 4
#endif
#endif
#ifndef SEED_SHARE
#define SEED_SHARE 1
#endif
#define SEEDS_3 (2000 / SEED_SHARE)
#define SEEDS_5 (1500 / SEED_SHARE)
#define SEEDS_DYNAMIC (1500 / SEED_SHARE)

/* Runs a batch of seeds and checks the faults reached the paths they are for: crashes,
 * elections, divergent tails truncated, snapshots installed, leaders resigning. */
static void sim_suite(uint64_t start, int seeds, int n_voters) {
    struct totals t = {0};
    CHECK_EQ_INT(0, run_many(start, (uint64_t)seeds, n_voters, &t));
    fprintf(stderr,
            "  %d voters: %d seeds, %lld steps, %lld elections, %lld crashes, %lld truncations, "
            "%lld snapshot installs, %lld resignations, %lld entries committed\n",
            n_voters, seeds, t.steps, t.elections, t.crashes, t.truncations, t.snaps,
            t.resignations, t.committed);
    CHECK(t.elections > seeds);
    CHECK(t.crashes > 0);
    CHECK(t.truncations > 0);
    CHECK(t.snaps > 0);
    CHECK(t.resignations > 0);
}

static void test_sim_3_voters(void) { sim_suite(1, SEEDS_3, 3); }
static void test_sim_5_voters(void) { sim_suite(100001, SEEDS_5, 5); }

/* KIP-853 under the same faults: voters added and removed, the leader removed too. */
static void test_sim_dynamic_voters(void) {
    struct totals t = {0};
    int seeds = SEEDS_DYNAMIC;
    CHECK_EQ_INT(0, run_many(200001, (uint64_t)seeds, 0, &t));
    fprintf(stderr,
            "  dynamic: %d seeds, %lld steps, %lld elections, %lld crashes, %lld truncations, "
            "%lld snapshot installs, %lld voters added, %lld removed (%lld leaders), %lld "
            "entries committed\n",
            seeds, t.steps, t.elections, t.crashes, t.truncations, t.snaps, t.added, t.removed,
            t.leaders_removed, t.committed);
    CHECK(t.elections > seeds);
    CHECK(t.crashes > 0);
    CHECK(t.truncations > 0);
    CHECK(t.snaps > 0);
    CHECK(t.added > seeds / 2);
    CHECK(t.removed > seeds / 2);
    CHECK(t.leaders_removed > 0);
}

/* The checker is only worth something if it fails on a broken rule. */
enum { ALL_CHECKS = 0, NO_VOTE_CHECK = 1 };

static void expect_caught(int bug, int n_voters, int leave_out, const char *what) {
    int caught = 0;
    uint64_t first = 0;
    char why[512];
    for (uint64_t s = 1; s <= 300 && !caught; s++) {
        sim_opts_t o = opts_for(s, n_voters, bug);
        o.no_vote_check = (leave_out & NO_VOTE_CHECK) != 0;
        if (run_seed(&o, why, sizeof(why))) caught++, first = s;
        world_free();
    }
    if (caught) fprintf(stderr, "  %s caught at seed %" PRIu64 ": %s\n", what, first, why);
    CHECK(caught > 0);
}

static void test_checker_catches_commit_without_majority(void) {
    expect_caught(RAFT_BUG_COMMIT_WITHOUT_MAJORITY, 3, ALL_CHECKS, "commit without a majority");
}

static void test_checker_catches_commit_of_old_epoch(void) {
    expect_caught(RAFT_BUG_COMMIT_OLD_EPOCH, 5, ALL_CHECKS, "commit by an older epoch's entries");
}

static void test_checker_catches_skipped_consistency_check(void) {
    expect_caught(RAFT_BUG_SKIP_CONSISTENCY, 3, ALL_CHECKS, "fetch served without the epoch check");
}

static void test_checker_catches_double_vote(void) {
    expect_caught(RAFT_BUG_DOUBLE_VOTE, 5, ALL_CHECKS, "two votes in one epoch");
    /* without the direct vote check, its consequence: two leaders of one epoch */
    expect_caught(RAFT_BUG_DOUBLE_VOTE, 5, NO_VOTE_CHECK,
                  "two votes in one epoch (its consequence, without the vote check)");
}

/* ---- bad input: refused with Kafka's error codes, no state change ---- */

/* Kafka's defaults, voters 1..n_voters. */
static raft_config_t small_config(int32_t id, int n_voters) {
    raft_config_t c;
    raft_config_defaults(&c);
    c.node_id = id;
    c.n_voters = n_voters;
    for (int i = 0; i < n_voters; i++)
        c.voters[i] = i + 1;
    snprintf(c.cluster_id, sizeof(c.cluster_id), "%s", CLUSTER);
    return c;
}

static raft_t *lone_node(int32_t id, int64_t now) {
    raft_config_t c = small_config(id, 3);
    raft_t *r = NULL;
    if (raft_new(&c, NULL, now, &r) != SM_OK) return NULL;
    raft_action_t a;
    while (raft_poll(r, &a)) {
    }
    return r;
}

/* Steps one request and returns the error of the single response it produced. */
static int16_t answer_of(raft_t *r, const raft_msg_t *m, bool *other_actions) {
    raft_step(r, 10, m);
    raft_action_t a;
    int16_t err = -100;
    *other_actions = false;
    while (raft_poll(r, &a)) {
        if (a.kind == RAFT_ACT_SEND && a.msg.to == m->from)
            err = a.msg.error;
        else
            *other_actions = true;
    }
    return err;
}

static raft_msg_t request(raft_msg_kind_t kind, int32_t from, int32_t to, int32_t epoch) {
    raft_msg_t m;
    memset(&m, 0, sizeof(m));
    m.kind = kind;
    m.from = from;
    m.to = to;
    m.epoch = epoch;
    m.corr = 7;
    snprintf(m.cluster_id, sizeof(m.cluster_id), "%s", CLUSTER);
    return m;
}

static void test_bad_input_refused(void) {
    raft_t *r = lone_node(1, 0);
    REQUIRE(r != NULL);
    raft_quorum_state_t before = raft_quorum_state(r);
    bool other;

    raft_msg_t v = request(RAFT_MSG_VOTE_REQ, 9, 1, 5); /* node 9 is not a voter */
    v.u.vote_req.last = (raft_offset_epoch_t){0, 0};
    CHECK_EQ_INT(PROTO_ERR_INCONSISTENT_VOTER_SET, answer_of(r, &v, &other));
    CHECK(!other);

    v.from = 2;
    memcpy(v.cluster_id, "another-cluster", 16);
    CHECK_EQ_INT(PROTO_ERR_INCONSISTENT_CLUSTER_ID, answer_of(r, &v, &other));
    CHECK(!other);

    raft_msg_t b = request(RAFT_MSG_BEGIN_EPOCH_REQ, 9, 1, 5);
    CHECK_EQ_INT(PROTO_ERR_INCONSISTENT_VOTER_SET, answer_of(r, &b, &other));
    raft_msg_t e = request(RAFT_MSG_END_EPOCH_REQ, 8, 1, 5);
    CHECK_EQ_INT(PROTO_ERR_INCONSISTENT_VOTER_SET, answer_of(r, &e, &other));
    raft_quorum_state_t after = raft_quorum_state(r);
    CHECK_EQ_INT(before.epoch, after.epoch);
    CHECK_EQ_INT(before.voted_id, after.voted_id);

    /* a real vote moves the epoch to 5; then a stale epoch is fenced */
    v = request(RAFT_MSG_VOTE_REQ, 2, 1, 5);
    v.u.vote_req.last = (raft_offset_epoch_t){0, 0};
    CHECK_EQ_INT(PROTO_ERR_NONE, answer_of(r, &v, &other));
    CHECK(other); /* the vote was persisted before the answer */
    CHECK_EQ_INT(2, raft_quorum_state(r).voted_id);
    v = request(RAFT_MSG_VOTE_REQ, 3, 1, 4);
    v.u.vote_req.last = (raft_offset_epoch_t){0, 0};
    CHECK_EQ_INT(PROTO_ERR_FENCED_LEADER_EPOCH, answer_of(r, &v, &other));
    CHECK(!other);
    b = request(RAFT_MSG_BEGIN_EPOCH_REQ, 3, 1, 4);
    CHECK_EQ_INT(PROTO_ERR_FENCED_LEADER_EPOCH, answer_of(r, &b, &other));
    CHECK_EQ_INT(5, raft_quorum_state(r).epoch);
    CHECK_EQ_INT(2, raft_quorum_state(r).voted_id);

    /* Fetch to a non-leader: its epoch's answer names who it knows */
    raft_msg_t f = request(RAFT_MSG_FETCH_REQ, 3, 1, 6);
    CHECK_EQ_INT(PROTO_ERR_UNKNOWN_LEADER_EPOCH, answer_of(r, &f, &other));
    f.epoch = 5;
    CHECK_EQ_INT(PROTO_ERR_NOT_LEADER_OR_FOLLOWER, answer_of(r, &f, &other));
    f.epoch = 2;
    CHECK_EQ_INT(PROTO_ERR_FENCED_LEADER_EPOCH, answer_of(r, &f, &other));
    raft_msg_t s = request(RAFT_MSG_FETCH_SNAPSHOT_REQ, 3, 1, 5);
    CHECK_EQ_INT(PROTO_ERR_NOT_LEADER_OR_FOLLOWER, answer_of(r, &s, &other));
    const char *why = NULL;
    CHECK_EQ_INT(0, raft_check_invariants(r, &why));
    raft_free(r);
}

static void test_voter_set_disagreement_refuses_start(void) {
    raft_config_t c = small_config(1, 3);
    int32_t file_voters[3] = {1, 2, 4};
    raft_restore_t rs = {
        .state = {3, -1, -1}, .have_state = true, .state_voters = file_voters, .n_state_voters = 3};
    raft_t *r = NULL;
    CHECK_EQ_INT(SM_ERR_RANGE, raft_new(&c, &rs, 0, &r));
    CHECK(r == NULL);
    file_voters[2] = 3;
    CHECK_EQ_INT(SM_OK, raft_new(&c, &rs, 0, &r));
    CHECK_EQ_INT(3, raft_quorum_state(r).epoch);
    raft_free(r);
}

/* One voter: elected at start, commits its own appends once flushed. */
static void test_single_voter_commits_after_flush(void) {
    raft_config_t c = small_config(1, 1);
    raft_t *r = NULL;
    REQUIRE(raft_new(&c, NULL, 0, &r) == SM_OK);
    CHECK_EQ_INT(RAFT_LEADER, raft_state(r));
    int64_t off = -1;
    CHECK_EQ_INT(SM_OK, raft_propose(r, 1, "x", 1, &off));
    CHECK_EQ_INT(1, off); /* offset 0 is the LeaderChange record */
    raft_action_t a;
    int64_t committed = 0;
    while (raft_poll(r, &a))
        if (a.kind == RAFT_ACT_COMMIT) committed = a.offset;
    CHECK_EQ_INT(0, committed);
    raft_log_flushed(r, 2, 2);
    while (raft_poll(r, &a))
        if (a.kind == RAFT_ACT_COMMIT) committed = a.offset;
    CHECK_EQ_INT(2, committed);
    raft_quorum_info_t qi;
    CHECK_EQ_INT(PROTO_ERR_NONE, raft_describe_quorum(r, &qi));
    CHECK_EQ_INT(2, qi.high_watermark);
    raft_free(r);
}

/* Drains the outbox; returns the last COMMIT offset seen (or `committed`). */
static int64_t drain_commits(raft_t *r, int64_t committed) {
    raft_action_t a;
    while (raft_poll(r, &a))
        if (a.kind == RAFT_ACT_COMMIT) committed = a.offset;
    return committed;
}

/* An observer's Fetch at the leader's log end (its directory id: {from}), answered at once. */
static void observer_fetches(raft_t *r, int32_t from, int64_t now) {
    raft_msg_t f = request(RAFT_MSG_FETCH_REQ, from, 1, raft_quorum_state(r).epoch);
    f.u.fetch_req.dir[0] = (uint8_t)from;
    f.u.fetch_req.fetch_offset = raft_log_end(r);
    f.u.fetch_req.last_fetched_epoch = raft_last_position(r).epoch;
    raft_step(r, now, &f);
}

/* KIP-853 on a standalone-formatted leader: Kafka's answers to each bad change, one change at
 * a time, the new voter's catching up, commit by the new majority. */
static void test_voter_changes_answers(void) {
    raft_config_t c = small_config(1, 1);
    c.dynamic = true;
    c.n_voters = 0;
    raft_voter_set_t boot = {.n = 1, .v = {{.id = 1}}};
    raft_restore_t rs = {.voters = &boot};
    raft_t *r = NULL;
    REQUIRE(raft_new(&c, &rs, 0, &r) == SM_OK);
    CHECK_EQ_INT(RAFT_LEADER, raft_state(r));
    raft_voter_t two = {.id = 2, .dir = {2}, .listener = "CONTROLLER", .host = "h2", .port = 9};
    int64_t off = -1;
    /* nothing of this epoch committed yet */
    CHECK_EQ_INT(PROTO_ERR_REQUEST_TIMED_OUT, raft_add_voter(r, 1, &two, &off));
    raft_log_flushed(r, 1, raft_log_end(r));
    CHECK_EQ_INT(1, drain_commits(r, 0));
    /* node 2 never fetched: not caught up */
    CHECK_EQ_INT(PROTO_ERR_REQUEST_TIMED_OUT, raft_add_voter(r, 2, &two, &off));
    CHECK_EQ_INT(PROTO_ERR_DUPLICATE_VOTER, raft_add_voter(r, 2, &boot.v[0], &off));
    observer_fetches(r, 2, 3);
    drain_commits(r, 0);
    raft_voter_t other_dir = two; /* the replica is (id, directory id), as Kafka's ReplicaKey */
    other_dir.dir[0] = 9;
    CHECK_EQ_INT(PROTO_ERR_REQUEST_TIMED_OUT, raft_add_voter(r, 4, &other_dir, &off));
    CHECK_EQ_INT(PROTO_ERR_NONE, raft_add_voter(r, 4, &two, &off));
    CHECK_EQ_INT(1, off);
    CHECK_EQ_INT(2, raft_voters(r)->n); /* in force once appended */
    raft_voter_t three = {.id = 3, .dir = {3}};
    observer_fetches(r, 3, 5);
    CHECK_EQ_INT(PROTO_ERR_REQUEST_TIMED_OUT, raft_add_voter(r, 5, &three, &off)); /* pending */
    /* the leader alone no longer commits: the new majority (1 and 2) must hold it */
    raft_log_flushed(r, 6, raft_log_end(r));
    CHECK_EQ_INT(1, drain_commits(r, 1));
    observer_fetches(r, 2, 7);
    CHECK_EQ_INT(2, drain_commits(r, 1));
    uint8_t zero[16] = {0};
    CHECK_EQ_INT(PROTO_ERR_VOTER_NOT_FOUND, raft_remove_voter(r, 8, 7, zero, &off));
    CHECK_EQ_INT(PROTO_ERR_VOTER_NOT_FOUND, raft_remove_voter(r, 8, 2, zero, &off)); /* dir */
    /* the leader removes itself: it leads until the removal commits, then resigns */
    CHECK_EQ_INT(PROTO_ERR_NONE, raft_remove_voter(r, 9, 1, zero, &off));
    CHECK_EQ_INT(RAFT_LEADER, raft_state(r));
    CHECK(!raft_is_voter(r));
    raft_log_flushed(r, 10, raft_log_end(r));
    drain_commits(r, 0);
    CHECK_EQ_INT(RAFT_LEADER, raft_state(r)); /* its own copy no longer counts */
    observer_fetches(r, 2, 11);
    CHECK_EQ_INT(off + 1, drain_commits(r, 0));
    CHECK_EQ_INT(RAFT_RESIGNED, raft_state(r));
    const char *why = NULL;
    CHECK_EQ_INT(0, raft_check_invariants(r, &why));
    raft_free(r);
    /* a static quorum (kraft.version 0) refuses changes as Kafka does */
    c = small_config(1, 1);
    REQUIRE(raft_new(&c, NULL, 0, &r) == SM_OK);
    raft_log_flushed(r, 1, raft_log_end(r));
    drain_commits(r, 0);
    CHECK_EQ_INT(PROTO_ERR_UNSUPPORTED_VERSION, raft_add_voter(r, 2, &two, &off));
    raft_free(r);
}

/* The VotersRecord form of a set round-trips; damaged bytes and repeated ids are refused. */
static void test_voters_record_round_trip(void) {
    raft_voter_set_t s = {.n = 2,
                          .v = {{.id = 1, .dir = {1, 2}, .listener = "CONTROLLER", .host = "a",
                                 .port = 9093},
                                {.id = 2, .listener = "CONTROLLER", .host = "b", .port = 9193}}};
    uint8_t buf[RAFT_VOTERS_BYTES_MAX];
    size_t len = 0;
    REQUIRE(raft_voters_encode(&s, buf, sizeof(buf), &len) == SM_OK);
    raft_voter_set_t back;
    REQUIRE(raft_voters_decode(buf, len, &back) == SM_OK);
    CHECK_EQ_INT(2, back.n);
    CHECK(memcmp(&s, &back, sizeof(s)) == 0);
    CHECK(raft_voters_decode(buf, len - 1, &back) != SM_OK);
    s.v[1].id = 1;
    REQUIRE(raft_voters_encode(&s, buf, sizeof(buf), &len) == SM_OK);
    CHECK(raft_voters_decode(buf, len, &back) != SM_OK);
}

/* Any message, however wrong its fields (kinds, senders, epochs, offsets, entries, snapshot
 * chunks), leaves a node's invariants intact and never crashes it; ticks are mixed in so it
 * passes through every state. */
static void test_random_messages_keep_invariants(void) {
    prng_state = 424242;
    for (int round = 0; round < 100; round++) {
        raft_t *r = lone_node(1 + (int32_t)(round % 4), 0); /* node 4: an observer */
        REQUIRE(r != NULL);
        int64_t now = 0;
        uint64_t last_corr = 0;
        for (int i = 0; i < 3000; i++) {
            now += rnd(60);
            if (chance(0.2)) {
                raft_tick(r, now);
            } else if (chance(0.05)) {
                int64_t off;
                raft_propose(r, now, "p", 1, &off);
            } else {
                raft_msg_t m = request((raft_msg_kind_t)(1 + rnd(10)), (int32_t)rnd(6),
                                       1 + (int32_t)(round % 4), (int32_t)rnd(8) - 1);
                /* often a plausible answer: to the last request, from the known leader */
                m.corr = chance(0.6) ? last_corr : (uint64_t)rnd(4);
                if (chance(0.6) && raft_quorum_state(r).leader_id >= 0)
                    m.from = raft_quorum_state(r).leader_id;
                if (chance(0.6)) m.epoch = raft_quorum_state(r).epoch;
                m.error = chance(0.7) ? 0 : (int16_t)rnd(120);
                m.leader_id = (int32_t)rnd(6) - 1;
                if (chance(0.05)) m.cluster_id[0] = 'X';
                raft_entry_t es[4];
                uint8_t data[16] = {0};
                switch (m.kind) {
                case RAFT_MSG_VOTE_REQ:
                case RAFT_MSG_VOTE_RESP:
                    m.u.vote_req.pre_vote = chance(0.5);
                    m.u.vote_req.last = (raft_offset_epoch_t){rnd(40) - 2, (int32_t)rnd(8) - 1};
                    if (m.kind == RAFT_MSG_VOTE_RESP) m.u.vote_resp.granted = chance(0.5);
                    break;
                case RAFT_MSG_END_EPOCH_REQ:
                    m.u.end_epoch_req.n_preferred = (int)rnd(4);
                    for (int k = 0; k < 4; k++)
                        m.u.end_epoch_req.preferred[k] = (int32_t)rnd(5);
                    break;
                case RAFT_MSG_FETCH_REQ:
                    m.u.fetch_req.fetch_offset = rnd(40) - 2;
                    m.u.fetch_req.last_fetched_epoch = (int32_t)rnd(8) - 1;
                    m.u.fetch_req.max_wait_ms = rnd(3) * 50;
                    break;
                case RAFT_MSG_FETCH_RESP:
                    m.u.fetch_resp.high_watermark = rnd(40) - 2;
                    m.u.fetch_resp.diverging = chance(0.2)
                                                   ? (raft_offset_epoch_t){rnd(40), (int32_t)rnd(8)}
                                                   : (raft_offset_epoch_t){-1, -1};
                    m.u.fetch_resp.snapshot_id =
                        chance(0.1) ? (raft_offset_epoch_t){rnd(40), (int32_t)rnd(8)}
                                    : (raft_offset_epoch_t){-1, -1};
                    m.u.fetch_resp.base_offset = chance(0.6) ? raft_log_end(r) : rnd(40);
                    m.u.fetch_resp.n_entries = (int)rnd(5);
                    for (int k = 0; k < m.u.fetch_resp.n_entries; k++)
                        es[k] = (raft_entry_t){.epoch = (int32_t)rnd(8), .len = 1, .data = data};
                    m.u.fetch_resp.entries = es;
                    break;
                case RAFT_MSG_FETCH_SNAPSHOT_REQ:
                    m.u.snap_req.snapshot_id = (raft_offset_epoch_t){rnd(40), (int32_t)rnd(8)};
                    m.u.snap_req.position = rnd(40) - 2;
                    break;
                case RAFT_MSG_FETCH_SNAPSHOT_RESP:
                    m.u.snap_resp.snapshot_id = (raft_offset_epoch_t){rnd(40), (int32_t)rnd(8)};
                    m.u.snap_resp.size = rnd(40) - 2;
                    m.u.snap_resp.position = rnd(40) - 2;
                    m.u.snap_resp.data = data;
                    m.u.snap_resp.len = (uint32_t)rnd(17);
                    break;
                default: break;
                }
                raft_step(r, now, &m);
            }
            raft_action_t a;
            while (raft_poll(r, &a)) {
                if (a.kind == RAFT_ACT_SEND) last_corr = a.msg.corr;
                if (a.kind == RAFT_ACT_APPEND && chance(0.5))
                    raft_log_flushed(r, now, raft_log_end(r));
            }
            const char *why = NULL;
            int inv = raft_check_invariants(r, &why);
            if (inv) {
                fprintf(stderr, "round %d step %d: invariant %d: %s\n", round, i, inv, why);
                CHECK_EQ_INT(0, inv);
                break;
            }
        }
        raft_free(r);
    }
}

/* The quorum-state file as Kafka writes it (data_version 0, static voters) round-trips;
 * Kafka's KIP-853 form (data_version 1) parses; damaged files are refused. */
static void test_quorum_state_file(void) {
    raft_quorum_state_t st = {.epoch = 7, .leader_id = 2, .voted_id = 3}, got;
    int32_t voters[3] = {1, 2, 3}, v[RAFT_MAX_VOTERS];
    char buf[256];
    size_t len = 0;
    int n = 0;
    REQUIRE(raft_quorum_file_format(&st, voters, 3, buf, sizeof(buf), &len) == SM_OK);
    const char *want = "{\"clusterId\":\"\",\"leaderId\":2,\"leaderEpoch\":7,\"votedId\":3,"
                       "\"appliedOffset\":0,\"currentVoters\":[{\"voterId\":1},{\"voterId\":2},"
                       "{\"voterId\":3}],\"data_version\":0}\n";
    CHECK_EQ_INT(strlen(want), len);
    CHECK_EQ_MEM(want, buf, strlen(want));
    CHECK_EQ_INT(SM_OK, raft_quorum_file_parse(buf, len, &got, v, &n));
    CHECK_EQ_INT(7, got.epoch);
    CHECK_EQ_INT(2, got.leader_id);
    CHECK_EQ_INT(3, got.voted_id);
    CHECK_EQ_INT(3, n);
    CHECK_EQ_INT(3, v[2]);
    const char *v1 = "{\"leaderId\":-1,\"leaderEpoch\":4,\"votedId\":1,"
                     "\"votedDirectoryId\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"data_version\":1}";
    CHECK_EQ_INT(SM_OK, raft_quorum_file_parse(v1, strlen(v1), &got, v, &n));
    CHECK_EQ_INT(4, got.epoch);
    CHECK_EQ_INT(-1, n);
    const char *bad[] = {"",
                         "{",
                         "{\"leaderEpoch\":4}",
                         "{\"leaderEpoch\":4,\"data_version\":2}",
                         "{\"leaderEpoch\":99999999999,\"data_version\":0}",
                         "{\"leaderEpoch\":1,\"data_version\":0,\"x\":1}",
                         "{\"leaderEpoch\":1,\"data_version\":0} trailing"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(SM_ERR_PARSE, raft_quorum_file_parse(bad[i], strlen(bad[i]), &got, v, &n));
    CHECK_EQ_INT(SM_ERR_SPACE, raft_quorum_file_format(&st, voters, 3, buf, 20, &len));
    char name[64];
    CHECK_EQ_INT(SM_OK,
                 raft_snapshot_file_name((raft_offset_epoch_t){12345, 7}, name, sizeof(name)));
    CHECK(strcmp(name, "00000000000000012345-0000000007.checkpoint") == 0);
}

/* Encodes m at version v with the generated codec and decodes it back. */
static int codec_round_trip(const raft_msg_t *m, int16_t v, raft_msg_t *out, uint8_t *buf,
                            size_t cap, sm_arena_t *a) {
    sm_writer_t w = sm_writer_make(buf, cap);
    int rc = raft_codec_encode(m, a, v, &w);
    if (rc != SM_OK) return rc;
    sm_reader_t r = sm_reader_make(buf, (size_t)(w.p - buf));
    rc = raft_codec_decode(m->kind, &r, a, v, m->from, m->to, out);
    if (rc == SM_OK && sm_rd_left(&r) != 0) rc = SM_ERR_PARSE;
    return rc;
}

/* Vote, BeginQuorumEpoch, EndQuorumEpoch and FetchSnapshot survive the Kafka wire form at
 * every version the codec knows; Fetch, not mapped yet, is refused. */
static void test_codec_adapter_round_trips(void) {
    uint8_t buf[1024];
    sm_arena_t a;
    sm_arena_init(&a, 1 << 20);
    for (int16_t v = 0; v <= 1; v++) {
        raft_msg_t m = request(RAFT_MSG_BEGIN_EPOCH_REQ, 2, 1, 9), got;
        CHECK_EQ_INT(SM_OK, codec_round_trip(&m, v, &got, buf, sizeof(buf), &a));
        CHECK_EQ_INT(9, got.epoch);
        CHECK(strcmp(got.cluster_id, CLUSTER) == 0);

        m = request(RAFT_MSG_BEGIN_EPOCH_RESP, 1, 2, 9);
        m.error = PROTO_ERR_FENCED_LEADER_EPOCH;
        m.leader_id = 3;
        CHECK_EQ_INT(SM_OK, codec_round_trip(&m, v, &got, buf, sizeof(buf), &a));
        CHECK_EQ_INT(PROTO_ERR_FENCED_LEADER_EPOCH, got.error);
        CHECK_EQ_INT(3, got.leader_id);
        CHECK_EQ_INT(9, got.epoch);

        m = request(RAFT_MSG_END_EPOCH_REQ, 2, 1, 4);
        m.u.end_epoch_req.n_preferred = 2;
        m.u.end_epoch_req.preferred[0] = 3;
        m.u.end_epoch_req.preferred[1] = 1;
        CHECK_EQ_INT(SM_OK, codec_round_trip(&m, v, &got, buf, sizeof(buf), &a));
        CHECK_EQ_INT(4, got.epoch);
        CHECK_EQ_INT(2, got.u.end_epoch_req.n_preferred);
        CHECK_EQ_INT(3, got.u.end_epoch_req.preferred[0]);
        CHECK_EQ_INT(1, got.u.end_epoch_req.preferred[1]);

        m = request(RAFT_MSG_END_EPOCH_RESP, 1, 2, 4);
        m.leader_id = 2;
        CHECK_EQ_INT(SM_OK, codec_round_trip(&m, v, &got, buf, sizeof(buf), &a));
        CHECK_EQ_INT(2, got.leader_id);

        m = request(RAFT_MSG_FETCH_SNAPSHOT_REQ, 3, 1, 6);
        m.u.snap_req.snapshot_id = (raft_offset_epoch_t){120, 5};
        m.u.snap_req.position = 40;
        CHECK_EQ_INT(SM_OK, codec_round_trip(&m, v, &got, buf, sizeof(buf), &a));
        CHECK_EQ_INT(6, got.epoch);
        CHECK_EQ_INT(120, got.u.snap_req.snapshot_id.offset);
        CHECK_EQ_INT(5, got.u.snap_req.snapshot_id.epoch);
        CHECK_EQ_INT(40, got.u.snap_req.position);
        CHECK(strcmp(got.cluster_id, CLUSTER) == 0);

        uint8_t chunk[5] = {1, 2, 3, 4, 5};
        m = request(RAFT_MSG_FETCH_SNAPSHOT_RESP, 1, 3, 6);
        m.leader_id = 1;
        m.u.snap_resp.snapshot_id = (raft_offset_epoch_t){120, 5};
        m.u.snap_resp.size = 100;
        m.u.snap_resp.position = 40;
        m.u.snap_resp.data = chunk;
        m.u.snap_resp.len = 5;
        CHECK_EQ_INT(SM_OK, codec_round_trip(&m, v, &got, buf, sizeof(buf), &a));
        CHECK_EQ_INT(1, got.leader_id);
        CHECK_EQ_INT(6, got.epoch);
        CHECK_EQ_INT(100, got.u.snap_resp.size);
        CHECK_EQ_INT(40, got.u.snap_resp.position);
        REQUIRE(got.u.snap_resp.len == 5);
        CHECK_EQ_MEM(chunk, got.u.snap_resp.data, 5);
    }
    raft_msg_t got;
    for (int16_t v = 0; v <= 2; v++) {
        raft_msg_t vote = request(RAFT_MSG_VOTE_REQ, 2, 1, 3);
        vote.u.vote_req.last = (raft_offset_epoch_t){77, 2};
        CHECK_EQ_INT(SM_OK, codec_round_trip(&vote, v, &got, buf, sizeof(buf), &a));
        CHECK_EQ_INT(3, got.epoch);
        CHECK_EQ_INT(77, got.u.vote_req.last.offset);
        CHECK_EQ_INT(2, got.u.vote_req.last.epoch);
        CHECK(!got.u.vote_req.pre_vote);
        vote.u.vote_req.pre_vote = true; /* PreVote exists from v2 on */
        CHECK_EQ_INT(v >= 2 ? SM_OK : SM_ERR_VERSION,
                     codec_round_trip(&vote, v, &got, buf, sizeof(buf), &a));
        if (v >= 2) CHECK(got.u.vote_req.pre_vote);

        raft_msg_t vr = request(RAFT_MSG_VOTE_RESP, 1, 2, 3);
        vr.leader_id = 3;
        vr.u.vote_resp.granted = true;
        CHECK_EQ_INT(SM_OK, codec_round_trip(&vr, v, &got, buf, sizeof(buf), &a));
        CHECK(got.u.vote_resp.granted);
        CHECK_EQ_INT(3, got.leader_id);
        CHECK_EQ_INT(3, got.epoch);
    }
    raft_msg_t fetch = request(RAFT_MSG_FETCH_REQ, 2, 1, 3);
    CHECK_EQ_INT(SM_ERR_VERSION, codec_round_trip(&fetch, 1, &got, buf, sizeof(buf), &a));
    /* a body cut short is a parse error, never a read past it */
    raft_msg_t m = request(RAFT_MSG_FETCH_SNAPSHOT_REQ, 3, 1, 6);
    sm_writer_t w = sm_writer_make(buf, sizeof(buf));
    REQUIRE(raft_codec_encode(&m, &a, 1, &w) == SM_OK);
    for (size_t cut = 0; cut < (size_t)(w.p - buf); cut++) {
        sm_reader_t r = sm_reader_make(buf, cut);
        CHECK(raft_codec_decode(m.kind, &r, &a, 1, 3, 1, &got) != SM_OK);
    }
    sm_arena_free(&a);
}

int main(int argc, char **argv) {
    sm_log_set_level(SM_LOG_ERROR + 1);
    sim_seed_args_t sa = {0, 0, 1, false};
    int nodes = 0, bug = 0;
    bool tr = false, dynamic = false;
    for (int i = 1; i < argc; i++) {
        if (sim_seed_arg(argc, argv, &i, &sa)) continue;
        if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
            nodes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bug") && i + 1 < argc)
            bug = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--trace"))
            tr = true;
        else if (!strcmp(argv[i], "--dynamic"))
            dynamic = true;
    }
    if (sa.one) {
        sim_opts_t o = dynamic ? opts_dynamic(sa.seed) : opts_for(sa.seed, nodes ? nodes : 3, bug);
        o.trace = tr;
        char why[512];
        int rc = run_seed(&o, why, sizeof(why));
        fprintf(stderr,
                "seed %" PRIu64 ": %s (%lld steps, %lld elections, %" PRId64 " committed)\n", sa.seed,
                rc ? why : "ok", W.steps, W.elections, W.n_committed);
        world_free();
        return rc;
    }
    if (sa.seeds) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct totals t = {0};
        int failed = 0;
        if (dynamic) failed += run_many(sa.start, sa.seeds, 0, &t);
        if (!dynamic && nodes != 5) failed += run_many(sa.start, sa.seeds, 3, &t);
        if (!dynamic && nodes != 3) failed += run_many(sa.start, sa.seeds, 5, &t);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(stderr,
                "%d failed; %lld steps, %lld elections, %lld crashes, %lld truncations, %lld "
                "snapshot installs, %lld resignations, %lld committed; %.1f s\n",
                failed, t.steps, t.elections, t.crashes, t.truncations, t.snaps, t.resignations,
                t.committed,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        return failed ? 1 : 0;
    }
    RUN(test_single_voter_commits_after_flush);
    RUN(test_voter_changes_answers);
    RUN(test_voters_record_round_trip);
    RUN(test_bad_input_refused);
    RUN(test_voter_set_disagreement_refuses_start);
    RUN(test_quorum_state_file);
    RUN(test_codec_adapter_round_trips);
    RUN(test_random_messages_keep_invariants);
    RUN(test_sim_3_voters);
    RUN(test_sim_5_voters);
    RUN(test_sim_dynamic_voters);
    RUN(test_checker_catches_commit_without_majority);
    RUN(test_checker_catches_double_vote);
    RUN(test_checker_catches_commit_of_old_epoch);
    RUN(test_checker_catches_skipped_consistency_check);
    return t_summary("test_raft_sim");
}
