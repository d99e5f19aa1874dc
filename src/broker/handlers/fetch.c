/*
 * Fetch: for each partition, the segment range from the batch that holds the
 * fetch offset (a whole batch even when the offset is inside it, as Kafka
 * does), up to the partition's max bytes and the response's max bytes (the
 * first partition with data always gets at least one whole batch, KIP-74),
 * sent from the file with sendfile. Long poll: with fewer than min bytes
 * available the request is parked until an append to one of its partitions,
 * the deletion of one, or max wait. A partition error (unknown or deleted
 * partition, offset out of range, fenced epoch) answers at once, as Kafka's
 * delayed fetch completes on one. Topic ids from v13. A fenced leader epoch
 * names the current leader and epoch (v12+) and, from v16, the leader's
 * endpoint (KIP-951).
 *
 * Fetch sessions (KIP-227, v7+): epoch 0 opens a session holding the request's
 * partitions (fetch offset, max bytes, current leader epoch, last fetched
 * epoch); later requests (epoch > 0) name only partitions that changed
 * and forgotten ones, every partition of the session is served as named
 * last (a follower's fetch offset still counts as its log end for the ISR
 * and the high watermark), and the response lists only partitions with news
 * (records, an error, a diverging epoch, a preferred read replica, or a
 * changed high watermark / log start / last stable offset). Followers use
 * sessions as consumers do (replica_fetcher.c). Epoch -1 fetches without a
 * session. read_committed fetches stop at the last stable offset and carry the
 * aborted transactions of what they read (KIP-98); read_uncommitted ones read
 * up to the high watermark.
 *
 * A follower's fetch (a replica id) reads to the log end; a partition that is
 * leader-throttled here (leader.replication.throttled.replicas) gets no records
 * while the follower is out of the ISR and leader.replication.throttled.rate is
 * exceeded, and the bytes sent for such partitions are counted against it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delayed.h"
#include "broker/fetch_session.h"
#include "broker/handlers/handlers.h"
#include "broker/partition.h"
#include "broker/replica.h"
#include "base/log.h"
#include "protocol/errors.h"

typedef proto_fetch_request_t req_t;
typedef proto_fetch_response_t resp_t;
typedef proto_fetch_response_partition_data_t pdata_t;
typedef proto_fetch_response_fetchable_topic_response_t tresp_t;

/* One partition this request reads. */
typedef struct fpart {
    sm_str_t topic;
    sm_uuid_t topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    int32_t last_fetched_epoch; /* -1: none (KIP-320; replica fetches) */
    broker_partition_t *p; /* NULL: unknown partition */
    pdata_t *out;
    bool held;    /* a follower's data left out by the leader throttle this time */
    bool counted; /* its bytes count against the leader throttle */
} fpart_t;

typedef struct fetch_state {
    int64_t deadline;
    int n;
    fpart_t *parts;
    int32_t session_id; /* 0: no session */
    bool incremental;
    bool failed; /* a partition has an error: answer now, as Kafka does */
    int32_t replica_id;    /* a follower's fetch (replication); -1: a consumer's */
    int64_t replica_epoch; /* its broker epoch, -1 unknown */
} fetch_state_t;

static fetch_sessions_t session_cache;
static pthread_once_t session_once = PTHREAD_ONCE_INIT;
/* Every event loop writes it before the one-time init reads it: atomic. */
static atomic_int session_slots = 1000;
static void session_init(void) { fetch_sessions_init(&session_cache, atomic_load(&session_slots)); }

static fetch_sessions_t *cache_of(broker_t *b) {
    atomic_store(&session_slots, b->s.fetch_session_slots);
    pthread_once(&session_once, session_init);
    return &session_cache;
}

static void release_ranges(broker_req_t *r) {
    for (int i = 0; i < r->nranges; i++)
        log_range_release(&r->ranges[i]);
    r->nranges = 0;
}

static void release_parts(fetch_state_t *st) {
    for (int i = 0; i < st->n; i++)
        if (st->parts[i].p) broker_partition_put(st->parts[i].p);
    st->n = 0;
}

typedef struct aborted_fill {
    pdata_t *out;
    int32_t cap;
} aborted_fill_t;

static void add_aborted(void *arg, const txn_aborted_t *e) {
    aborted_fill_t *f = arg;
    if (f->out->aborted_transactions.n >= f->cap) return;
    proto_fetch_response_aborted_transaction_t *a =
        &f->out->aborted_transactions.v[f->out->aborted_transactions.n++];
    a->producer_id = e->producer_id;
    a->first_offset = e->first_offset;
}

/* The aborted transactions a read_committed reader of [from, upto) must know
 * to drop their records (those that end at or after from and began before
 * upto). */
static void aborted_in_range(broker_req_t *r, broker_partition_t *p, int64_t from, int64_t upto,
                             pdata_t *out) {
    pthread_mutex_lock(&p->mu);
    int32_t n = 0;
    for (size_t i = 0; i < p->aborted.n; i++)
        if (p->aborted.v[i].last_offset >= from && p->aborted.v[i].first_offset < upto) n++;
    out->aborted_transactions.v =
        n ? sm_arena_calloc(&r->arena, (size_t)n, sizeof(*out->aborted_transactions.v)) : NULL;
    aborted_fill_t f = {out, out->aborted_transactions.v ? n : 0};
    if (f.cap) txn_aborted_index_collect(&p->aborted, from, upto, add_aborted, &f);
    pthread_mutex_unlock(&p->mu);
}

/* Names the partition's leader and epoch from the metadata image in out
 * (KIP-951) when it has one other than this broker. */
static bool name_leader(broker_req_t *r, const fpart_t *fp, pdata_t *out) {
    int32_t leader, epoch;
    if (!broker_other_leader(r, r->version >= 13, &fp->topic_id, fp->topic, fp->partition,
                             &leader, &epoch))
        return false;
    out->current_leader = sm_arena_calloc(&r->arena, 1, sizeof(*out->current_leader));
    if (!out->current_leader) return false;
    out->current_leader->leader_id = leader;
    out->current_leader->leader_epoch = epoch;
    return true;
}

/* Fills every partition's response from the logs now; returns record bytes. */
static size_t build(broker_req_t *r, fetch_state_t *st) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    int16_t v = r->version;
    release_ranges(r);
    size_t budget = req->max_bytes > 0 ? (size_t)req->max_bytes : (size_t)b->s.fetch_max_bytes;
    if (budget > (size_t)b->s.fetch_max_bytes) budget = (size_t)b->s.fetch_max_bytes;
    size_t total = 0;
    bool first_data = true, fenced = false;
    bool committed = req->isolation_level == 1;
    st->failed = false;
    for (int i = 0; i < st->n; i++) {
        fpart_t *fp = &st->parts[i];
        pdata_t *out = fp->out;
        broker_partition_t *p = fp->p;
        out->partition_index = fp->partition;
        out->current_leader = NULL;
        out->diverging_epoch = NULL;
        out->records = (sm_bytes_t){NULL, 0};
        out->aborted_transactions.n = -1;
        out->preferred_read_replica = -1;
        out->high_watermark = -1;
        out->last_stable_offset = -1;
        out->log_start_offset = -1;
        /* A partition deleted since the request resolved it is unknown now. */
        if (!p || atomic_load(&p->deleted)) {
            int16_t unknown =
                v >= 13 ? PROTO_ERR_UNKNOWN_TOPIC_ID : PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            out->error_code =
                p ? unknown
                  : broker_partition_absent_error(b, fp->topic, v >= 13 ? &fp->topic_id : NULL,
                                                  fp->partition, unknown);
            st->failed = true;
            /* Not a replica here: the leader is named too (KIP-951). */
            if (out->error_code == PROTO_ERR_NOT_LEADER_OR_FOLLOWER && v >= 12 &&
                name_leader(r, fp, out))
                fenced = true;
            continue;
        }
        bool replica = st->replica_id >= 0;
        /* KIP-392: consumers from v11 on may read from a follower (up to its
         * high watermark), and the leader may send them to one in their rack. */
        bool from_follower = p->replicated && !replica && !atomic_load(&p->leader) && v >= 11 &&
                             p->leader_id >= 0;
        if (p->replicated && !replica && !from_follower && !atomic_load(&p->leader)) {
            /* A follower (or leaderless) here: clients go to the leader,
             * named when known (KIP-951). */
            out->error_code = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
            st->failed = true;
            pthread_mutex_lock(&p->mu);
            int32_t lid = p->leader_id, lep = p->leader_epoch;
            pthread_mutex_unlock(&p->mu);
            if (lid >= 0 && v >= 12)
                out->current_leader = sm_arena_calloc(&r->arena, 1, sizeof(*out->current_leader));
            if (out->current_leader) {
                out->current_leader->leader_id = lid;
                out->current_leader->leader_epoch = lep;
                fenced = true;
            }
            continue;
        }
        if (fp->current_leader_epoch >= 0 && v >= 9 &&
            fp->current_leader_epoch != p->leader_epoch) {
            out->error_code = fp->current_leader_epoch < p->leader_epoch
                                  ? PROTO_ERR_FENCED_LEADER_EPOCH
                                  : PROTO_ERR_UNKNOWN_LEADER_EPOCH;
            st->failed = true;
            /* KIP-951: name the current leader (this node) and its epoch. */
            if (out->error_code == PROTO_ERR_FENCED_LEADER_EPOCH)
                out->current_leader = sm_arena_calloc(&r->arena, 1, sizeof(*out->current_leader));
            if (out->current_leader) {
                out->current_leader->leader_id = b->s.node_id;
                out->current_leader->leader_epoch = p->leader_epoch;
                fenced = true;
            }
            continue;
        }
        if (replica) {
            /* A follower: its fetch offset is its log end (ISR, high
             * watermark); a divergent last epoch is answered at once. */
            int32_t de;
            int64_t dend;
            bool moved;
            int16_t err =
                broker_replica_follower_fetch(p, st->replica_id, st->replica_epoch,
                                              fp->fetch_offset, fp->last_fetched_epoch, &de,
                                              &dend, &moved);
            if (moved) broker_wake(b, p);
            if (err != PROTO_ERR_NONE) {
                out->error_code = err;
                st->failed = true;
                continue;
            }
            if (de >= 0 || dend >= 0) {
                out->diverging_epoch =
                    sm_arena_calloc(&r->arena, 1, sizeof(*out->diverging_epoch));
                if (out->diverging_epoch) {
                    out->diverging_epoch->epoch = de;
                    out->diverging_epoch->end_offset = dend;
                }
                out->error_code = PROTO_ERR_NONE;
                out->high_watermark = broker_partition_hw(p);
                out->last_stable_offset = out->high_watermark;
                out->log_start_offset = log_start_offset(p->log);
                out->aborted_transactions.n = 0;
                st->failed = true;
                continue;
            }
        }
        /* The leader throttle (KIP-73): a throttled partition of a follower out of
         * the ISR gets no records while the leader quota is exceeded. */
        fp->held = replica && broker_replica_leader_throttle(p, st->replica_id, &fp->counted);
        if (!replica && v >= 11 && !from_follower) {
            int32_t preferred = broker_replica_preferred_read(p, req->rack_id);
            if (preferred >= 0) {
                out->preferred_read_replica = preferred;
                out->error_code = PROTO_ERR_NONE;
                out->high_watermark = broker_partition_hw(p);
                out->last_stable_offset = out->high_watermark;
                out->log_start_offset = log_start_offset(p->log);
                out->aborted_transactions.n = 0;
                st->failed = true; /* answered at once, as Kafka does */
                continue;
            }
        }
        int64_t hw = broker_partition_hw(p);
        int64_t leo = log_end_offset(p->log);
        pthread_mutex_lock(&p->mu);
        int64_t lso = broker_partition_lso(p);
        pthread_mutex_unlock(&p->mu);
        if (lso > hw) lso = hw;
        out->high_watermark = hw;
        out->last_stable_offset = lso;
        out->log_start_offset = log_start_offset(p->log);
        out->aborted_transactions.n = 0;
        /* read_committed (KIP-98) reads only below the last stable offset,
         * consumers below the high watermark, followers to the log end. */
        int64_t end = replica ? leo : committed ? lso : hw;
        if (fp->fetch_offset < out->log_start_offset || fp->fetch_offset > leo) {
            out->error_code = PROTO_ERR_OFFSET_OUT_OF_RANGE;
            st->failed = true;
            continue;
        }
        out->error_code = PROTO_ERR_NONE;
        if (fp->held) continue;
        if (fp->fetch_offset >= end || (total >= budget && !first_data)) continue;
        size_t max = fp->max_bytes > 0 ? (size_t)fp->max_bytes : 0;
        if (budget - total < max) max = budget - total;
        if (max == 0 && !first_data) continue;
        log_range_t range;
        int rc = log_read_upto(p->log, fp->fetch_offset,
                               committed || (p->replicated && !replica) ? end : INT64_MAX, max,
                               first_data, &range);
        /* Out of descriptors (the ranges already in this response hold
         * some): the partition waits for the next fetch, without an error. */
        if (rc == SM_ERR_LIMIT && !first_data) continue;
        if (rc != SM_OK) {
            out->error_code =
                rc == SM_ERR_RANGE ? PROTO_ERR_OFFSET_OUT_OF_RANGE : PROTO_ERR_KAFKA_STORAGE_ERROR;
            st->failed = true;
            continue;
        }
        if (range.len == 0) {
            log_range_release(&range);
            continue;
        }
        total += range.len;
        first_data = false;
        sm_debug("fetch", "%.*s-%d: fetch at %lld returns %zu bytes from batch %lld (end %lld)",
                 fp->topic.len > 0 ? (int)fp->topic.len : 0, fp->topic.ptr ? fp->topic.ptr : "",
                 fp->partition, (long long)fp->fetch_offset, range.len,
                 (long long)range.first_offset, (long long)hw);
        out->records = broker_req_add_range(r, &range);
        if (committed) aborted_in_range(r, p, fp->fetch_offset, end, out);
    }
    /* KIP-951 (v16+): the endpoints of the leaders named above. */
    resp_t *resp = r->resp;
    resp->node_endpoints.n = 0;
    int32_t *leaders = fenced && v >= 16 ? sm_arena_calloc(&r->arena, (size_t)st->n + 1,
                                                           sizeof(*leaders))
                                         : NULL;
    int nleaders = 0;
    for (int i = 0; leaders && i < st->n; i++) {
        const proto_fetch_response_leader_id_and_epoch_t *cl = st->parts[i].out->current_leader;
        if (cl && cl->leader_id >= 0) leaders[nleaders++] = cl->leader_id;
    }
    broker_node_t *nodes;
    int nn = broker_nodes_among(r, leaders, nleaders, &nodes);
    if (nn > 0 && (resp->node_endpoints.v = sm_arena_calloc(&r->arena, (size_t)nn,
                                                            sizeof(*resp->node_endpoints.v)))) {
        for (int i = 0; i < nn; i++) {
            proto_fetch_response_node_endpoint_t *e = &resp->node_endpoints.v[i];
            e->node_id = nodes[i].id;
            e->host = nodes[i].host;
            e->port = nodes[i].port;
            e->rack = nodes[i].rack;
        }
        resp->node_endpoints.n = nn;
    }
    return total;
}

/* Session bookkeeping at response time: remembers what the client is told
 * and, for incremental fetches, drops partitions without news. */
static void settle_session(broker_req_t *r, fetch_state_t *st) {
    resp_t *resp = r->resp;
    resp->session_id = st->session_id;
    if (!st->session_id) return;
    fetch_sessions_t *c = cache_of(r->b);
    fetch_session_t *s = fetch_session_get(c, st->session_id);
    if (s) pthread_mutex_lock(&s->mu);
    for (int i = 0; s && i < st->n; i++) {
        fpart_t *fp = &st->parts[i];
        pdata_t *out = fp->out;
        char name[256];
        snprintf(name, sizeof(name), "%.*s", fp->topic.len > 0 ? (int)fp->topic.len : 0,
                 fp->topic.ptr ? fp->topic.ptr : "");
        fs_part_t *sp = fetch_session_find(s, name, &fp->topic_id, fp->partition);
        bool news = out->records.len > 0 || out->error_code != PROTO_ERR_NONE || !sp ||
                    out->diverging_epoch || out->preferred_read_replica >= 0 ||
                    sp->sent_hw != out->high_watermark || sp->sent_lso != out->last_stable_offset ||
                    sp->sent_log_start != out->log_start_offset;
        if (sp) {
            sp->sent_hw = out->high_watermark;
            sp->sent_lso = out->last_stable_offset;
            sp->sent_log_start = out->log_start_offset;
        }
        /* Marked for removal from the response with partition_index < 0. */
        if (st->incremental && !news) out->partition_index = -1;
    }
    if (s) {
        s->last_used = broker_mono_ms();
        pthread_mutex_unlock(&s->mu);
        fetch_session_put(c, s);
    }
    if (!st->incremental) return;
    for (int32_t i = 0; i < resp->responses.n; i++) {
        tresp_t *tr = &resp->responses.v[i];
        int32_t k = 0;
        for (int32_t j = 0; j < tr->partitions.n; j++)
            if (tr->partitions.v[j].partition_index >= 0)
                tr->partitions.v[k++] = tr->partitions.v[j];
        tr->partitions.n = k;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < resp->responses.n; i++)
        if (resp->responses.v[i].partitions.n > 0) resp->responses.v[k++] = resp->responses.v[i];
    resp->responses.n = k;
}

/* A follower's answer is final: the bytes of leader-throttled partitions in it
 * count against the leader quota (Kafka records them after the read). */
static void record_throttled(broker_req_t *r, fetch_state_t *st) {
    if (st->replica_id < 0) return;
    int64_t bytes = 0;
    for (int i = 0; i < st->n; i++)
        if (st->parts[i].counted && st->parts[i].out->records.len > 0)
            bytes += st->parts[i].out->records.len;
    if (bytes > 0) repl_quota_record(&r->b->leader_quota, bytes, broker_mono_ms());
}

static void finish(broker_req_t *r, fetch_state_t *st) {
    record_throttled(r, st);
    settle_session(r, st);
    release_parts(st);
    broker_req_finish(r);
}

static bool retry(broker_req_t *r, bool final) {
    req_t *req = broker_body(r);
    fetch_state_t *st = r->state;
    size_t got = build(r, st);
    if (!final && !st->failed && got < (size_t)(req->min_bytes > 0 ? req->min_bytes : 1) &&
        broker_mono_ms() < st->deadline) {
        release_ranges(r);
        return false;
    }
    finish(r, st);
    return true;
}

/* Lays out the response topics for the partitions in st (grouped by topic in
 * order of first appearance) and points each part at its response slot. */
static int layout_response(broker_req_t *r, fetch_state_t *st) {
    resp_t *resp = r->resp;
    resp->responses.v = sm_arena_calloc(&r->arena, (size_t)st->n + 1, sizeof(tresp_t));
    int32_t *count = sm_arena_calloc(&r->arena, (size_t)st->n + 1, sizeof(int32_t));
    int32_t *topic_of = sm_arena_calloc(&r->arena, (size_t)st->n + 1, sizeof(int32_t));
    if (!resp->responses.v || !count || !topic_of) return SM_ERR_NOMEM;
    /* Topics by id (v13+) or name: a hash, so thousands of topics cost no
     * more than their partitions. */
    sm_map_t topics;
    sm_map_init(&topics);
    int32_t nt = 0;
    for (int i = 0; i < st->n; i++) {
        fpart_t *fp = &st->parts[i];
        const void *key =
            r->version >= 13 ? (const void *)fp->topic_id.b : (const void *)fp->topic.ptr;
        size_t kl = r->version >= 13 ? 16 : (fp->topic.len > 0 ? (size_t)fp->topic.len : 0);
        intptr_t t = (intptr_t)sm_map_get(&topics, key ? key : "", kl) - 1;
        if (t < 0) {
            t = nt++;
            if (sm_map_put(&topics, key ? key : "", kl, (void *)(t + 1))) {
                sm_map_free(&topics);
                return SM_ERR_NOMEM;
            }
            resp->responses.v[t].topic = fp->topic;
            resp->responses.v[t].topic_id = fp->topic_id;
        }
        topic_of[i] = (int32_t)t;
        count[t]++;
    }
    sm_map_free(&topics);
    resp->responses.n = nt;
    for (int32_t k = 0; k < nt; k++) {
        resp->responses.v[k].partitions.v =
            sm_arena_calloc(&r->arena, (size_t)count[k] + 1, sizeof(pdata_t));
        if (!resp->responses.v[k].partitions.v) return SM_ERR_NOMEM;
        resp->responses.v[k].partitions.n = 0;
    }
    /* The parts in response order (topic by topic): build() adds record
     * ranges in parts order, and the ranges fill the response's record holes
     * in encoding order, so the two orders must be the same (a session's
     * parts can interleave topics). */
    fpart_t *ordered = sm_arena_calloc(&r->arena, (size_t)st->n + 1, sizeof(fpart_t));
    int32_t *next = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(int32_t));
    if (!ordered || !next) return SM_ERR_NOMEM;
    for (int32_t k = 1; k < nt; k++)
        next[k] = next[k - 1] + count[k - 1];
    for (int i = 0; i < st->n; i++) {
        int32_t t = topic_of[i];
        tresp_t *tr = &resp->responses.v[t];
        fpart_t *fp = &ordered[next[t]++];
        *fp = st->parts[i];
        fp->out = &tr->partitions.v[tr->partitions.n++];
    }
    st->parts = ordered;
    return SM_OK;
}

static void resolve(broker_t *b, int16_t v, fpart_t *fp) {
    fp->p = broker_partition_lookup(b, fp->topic, v >= 13 ? &fp->topic_id : NULL, fp->partition);
}

/* The partitions of a full fetch: the request's own. */
static int parts_from_request(broker_req_t *r, fetch_state_t *st) {
    req_t *req = broker_body(r);
    int total = 0;
    for (int32_t i = 0; i < req->topics.n; i++)
        total += req->topics.v[i].partitions.n > 0 ? req->topics.v[i].partitions.n : 0;
    st->parts = sm_arena_calloc(&r->arena, (size_t)total + 1, sizeof(fpart_t));
    if (!st->parts) return SM_ERR_NOMEM;
    for (int32_t i = 0; i < req->topics.n; i++) {
        const proto_fetch_request_fetch_topic_t *rt = &req->topics.v[i];
        for (int32_t k = 0; k < rt->partitions.n; k++) {
            const proto_fetch_request_fetch_partition_t *rp = &rt->partitions.v[k];
            st->parts[st->n++] = (fpart_t){rt->topic,
                                           rt->topic_id,
                                           rp->partition,
                                           rp->fetch_offset,
                                           rp->partition_max_bytes,
                                           rp->current_leader_epoch,
                                           r->version >= 12 ? rp->last_fetched_epoch : -1,
                                           NULL,
                                           NULL,
                                           false,
                                           false};
        }
    }
    return SM_OK;
}

/* Records the request's partitions in session s (fetch positions and max
 * bytes) and removes the forgotten ones; false when the session cannot hold
 * them (FETCH_SESSION_MAX_PARTITIONS, memory). Caller holds s->mu. */
static bool update_session(broker_req_t *r, fetch_session_t *s) {
    req_t *req = broker_body(r);
    char name[256];
    for (int32_t i = 0; i < req->topics.n; i++) {
        const proto_fetch_request_fetch_topic_t *rt = &req->topics.v[i];
        snprintf(name, sizeof(name), "%.*s", rt->topic.len > 0 ? (int)rt->topic.len : 0,
                 rt->topic.ptr ? rt->topic.ptr : "");
        for (int32_t k = 0; k < rt->partitions.n; k++) {
            fs_part_t *sp =
                fetch_session_upsert(s, name, &rt->topic_id, rt->partitions.v[k].partition);
            if (!sp) return false;
            sp->fetch_offset = rt->partitions.v[k].fetch_offset;
            sp->max_bytes = rt->partitions.v[k].partition_max_bytes;
            /* Kept for the incremental fetches that do not name the partition: the
             * leader epoch is checked and a follower's divergence found on each. */
            sp->current_leader_epoch = rt->partitions.v[k].current_leader_epoch;
            sp->last_fetched_epoch =
                r->version >= 12 ? rt->partitions.v[k].last_fetched_epoch : -1;
        }
    }
    for (int32_t i = 0; i < req->forgotten_topics_data.n; i++) {
        const proto_fetch_request_forgotten_topic_t *ft = &req->forgotten_topics_data.v[i];
        snprintf(name, sizeof(name), "%.*s", ft->topic.len > 0 ? (int)ft->topic.len : 0,
                 ft->topic.ptr ? ft->topic.ptr : "");
        for (int32_t k = 0; k < ft->partitions.n; k++)
            fetch_session_forget(s, name, &ft->topic_id, ft->partitions.v[k]);
    }
    return true;
}

/* Opens, continues or closes the request's fetch session; returns a top-level
 * Kafka error (the response then carries no partitions). */
static int16_t handle_session(broker_req_t *r, fetch_state_t *st) {
    req_t *req = broker_body(r);
    if (r->version < 7)
        return parts_from_request(r, st) ? PROTO_ERR_UNKNOWN_SERVER_ERROR : PROTO_ERR_NONE;
    fetch_sessions_t *c = cache_of(r->b);
    int64_t now = broker_mono_ms();
    int16_t err = PROTO_ERR_NONE;
    if (req->session_epoch == -1 || req->session_epoch == 0) {
        /* Full fetch: closes the named session; epoch 0 opens a new one,
         * unless it would be too big (KIP-227: session id 0, no session). */
        if (req->session_id != 0) fetch_session_remove(c, req->session_id);
        if (parts_from_request(r, st)) {
            err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        } else if (req->session_epoch == 0 && st->n <= FETCH_SESSION_MAX_PARTITIONS) {
            fetch_session_t *s = fetch_session_create(c, now);
            if (s) {
                pthread_mutex_lock(&s->mu);
                bool ok = update_session(r, s);
                pthread_mutex_unlock(&s->mu);
                if (ok)
                    st->session_id = s->id;
                else
                    fetch_session_remove(c, s->id);
                fetch_session_put(c, s);
            }
        }
        return err;
    }
    fetch_session_t *s = fetch_session_get(c, req->session_id);
    if (!s) return PROTO_ERR_FETCH_SESSION_ID_NOT_FOUND;
    bool drop = false;
    pthread_mutex_lock(&s->mu);
    if (s->epoch != req->session_epoch) {
        err = PROTO_ERR_INVALID_FETCH_SESSION_EPOCH;
    } else if (!update_session(r, s)) {
        /* Grown past its bound: the client starts over with a full
         * fetch, which then gets no session. */
        err = PROTO_ERR_FETCH_SESSION_ID_NOT_FOUND;
        drop = true;
    } else {
        s->epoch = s->epoch == INT32_MAX ? 1 : s->epoch + 1;
        s->last_used = now;
        st->session_id = s->id;
        st->incremental = true;
        st->parts = sm_arena_calloc(&r->arena, (size_t)s->n + 1, sizeof(fpart_t));
        if (!st->parts) {
            err = PROTO_ERR_UNKNOWN_SERVER_ERROR;
        } else {
            for (int i = 0; i < s->n; i++) {
                const fs_part_t *sp = &s->parts[i];
                size_t tl = strlen(sp->topic);
                char *name = sm_arena_strndup(&r->arena, sp->topic, tl);
                st->parts[st->n++] = (fpart_t){{name, (int32_t)tl},
                                               sp->topic_id,
                                               sp->partition,
                                               sp->fetch_offset,
                                               sp->max_bytes,
                                               sp->current_leader_epoch,
                                               sp->last_fetched_epoch,
                                               NULL,
                                               NULL,
                                               false,
                                               false};
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (drop) fetch_session_remove(c, s->id);
    fetch_session_put(c, s);
    return err;
}

int broker_handle_fetch(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    fetch_state_t *st = sm_arena_alloc(&r->arena, sizeof(*st));
    if (!st) return BROKER_CLOSE;
    r->state = st;
    memset(st, 0, sizeof(*st));
    /* Replication: a follower names itself (ReplicaState from v15). */
    st->replica_id = r->version >= 15 ? (req->replica_state ? req->replica_state->replica_id : -1)
                                      : req->replica_id;
    st->replica_epoch =
        r->version >= 15 && req->replica_state ? req->replica_state->replica_epoch : -1;
    if (!b->s.cluster_mode) st->replica_id = -1;
    int16_t err = handle_session(r, st);
    if (err != PROTO_ERR_NONE) {
        resp->error_code = err;
        resp->session_id = 0;
        resp->responses.n = 0;
        return BROKER_RESPOND;
    }
    if (layout_response(r, st)) return BROKER_CLOSE;
    for (int i = 0; i < st->n; i++)
        resolve(b, r->version, &st->parts[i]);
    int32_t wait = req->max_wait_ms > 0 ? req->max_wait_ms : 0;
    st->deadline = broker_mono_ms() + wait;
    size_t got = build(r, st);
    bool enough = got >= (size_t)(req->min_bytes > 0 ? req->min_bytes : 1);
    if (enough || st->failed || wait == 0 || st->n == 0 || atomic_load(&b->stopping)) {
        record_throttled(r, st);
        settle_session(r, st);
        release_parts(st);
        return BROKER_RESPOND;
    }
    /* Long poll: park on the known partitions. */
    release_ranges(r);
    broker_partition_t **known = sm_arena_calloc(&r->arena, (size_t)st->n + 1, sizeof(*known));
    int nk = 0;
    for (int i = 0; known && i < st->n; i++)
        if (st->parts[i].p) known[nk++] = st->parts[i].p;
    broker_park(b, r, known, nk, st->deadline, retry);
    return BROKER_PARKED;
}
