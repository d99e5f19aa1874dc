/*
 * The transaction coordinator (see coordinator.h).
 *
 * States of a transactional id (Kafka's TransactionState; the numbers are the
 * TransactionStatus values in __transaction_state):
 *
 *   Empty(0) --AddPartitions/AddOffsets--> Ongoing(1)
 *   Ongoing --EndTxn commit--> PrepareCommit(2) --markers written--> CompleteCommit(4)
 *   Ongoing --EndTxn abort, timeout, InitProducerId (fence)--> PrepareAbort(3)
 *           --markers written--> CompleteAbort(5)
 *   Empty / Complete* --InitProducerId--> Empty (epoch + 1, or a new producer id
 *           when the epoch is exhausted)
 *   Complete* --AddPartitions--> Ongoing
 *   Empty / Complete* --transactional.id.expiration.ms idle--> Dead(6): a tombstone
 *
 * Invariants (under c->mu):
 *  1. Commit, then apply: a transition is computed into a private copy, its
 *     record appended to __transaction_state (and flushed when the broker
 *     acknowledges only flushed data), and only then copied into the id's
 *     state; a failed write leaves the state as it was.
 *  2. pending is true exactly while a transition of that id is being written
 *     or its markers are being written; any other transition of the id is
 *     refused with CONCURRENT_TRANSACTIONS meanwhile.
 *  3. An id in PrepareCommit / PrepareAbort is on the marker queue (or being
 *     served by the marker thread) until its Complete record is applied.
 *  4. nparts == 0 in Empty and Complete*; the producer epoch never decreases
 *     for a producer id.
 * No record is appended and no fsync happens under c->mu: appends take only
 * the __transaction_state partition's lock. Event-loop threads never wait for
 * an fsync: their answer is sent from the flusher's completion.
 *
 * Partitions of __transaction_state (cluster mode: each follows its
 * leadership; a single node loads them all at start):
 *
 *   UNLOADED --txn_coordinator_elect--> LOADING --marker thread read it--> LOADED
 *   LOADING / LOADED --txn_coordinator_resign--> UNLOADED
 *
 *  5. Only the ids of LOADED partitions are in txns (an UNLOADED one's are
 *     removed by the marker thread once their writes in flight are done);
 *     requests for the others get NOT_COORDINATOR (UNLOADED) or
 *     COORDINATOR_LOAD_IN_PROGRESS (LOADING). A write started under one
 *     leadership (gen) is not applied under another.
 *
 * Threads: handlers on event loops; the marker thread (markers, Complete
 * records, timeouts, expiry, loading and unloading partitions); flusher
 * threads complete writes.
 */
#include "txn/coordinator.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/delayed.h"
#include "group/coordinator.h"
#include "broker/partition.h"
#include "broker/replica.h"
#include "metadata/controller.h"
#include "protocol/errors.h"
#include "protocol/gen/transaction_log_key.h"
#include "protocol/gen/transaction_log_value.h"
#include "protocol/records.h"
#include "protocol/versioned.h"

enum {
    ST_EMPTY = 0,
    ST_ONGOING = 1,
    ST_PREPARE_COMMIT = 2,
    ST_PREPARE_ABORT = 3,
    ST_COMPLETE_COMMIT = 4,
    ST_COMPLETE_ABORT = 5,
    ST_DEAD = 6,
    ST_PREPARE_EPOCH_FENCE = 7,
};
static const char *const state_names[] = {"Empty",          "Ongoing",       "PrepareCommit",
                                          "PrepareAbort",   "CompleteCommit", "CompleteAbort",
                                          "Dead",           "PrepareEpochFence"};

#define OFFSETS_TOPIC "__consumer_offsets"
#define EPOCH_EXHAUSTED (INT16_MAX - 1)

typedef struct tp {
    char *topic;
    int32_t partition;
} tp_t;

/* The state of one transactional id (or a proposed next state). */
typedef struct txn_state {
    int64_t pid, prev_pid;
    int64_t next_pid; /* V2: the producer id that follows an exhausted epoch at Complete, or -1 */
    int16_t epoch, last_epoch;
    int32_t timeout_ms;
    int state;
    tp_t *parts;
    int nparts;
    int64_t start_ts, update_ts;
    int16_t tv; /* the client's transaction version: 2 = KIP-890 part 2 (epoch bump per EndTxn) */
} txn_state_t;

typedef struct txn {
    char *id;
    int32_t id_len;
    txn_state_t s;
    broker_req_t *end_req; /* an EndTxn answered once its markers are written */
    int64_t end_pid;
    int16_t end_epoch;
    bool pending;
    bool queued;
    struct txn *next_q;
} txn_t;

/* A partition of __transaction_state here (invariant 5). */
enum { PART_UNLOADED = 0, PART_LOADING, PART_LOADED };
typedef struct txn_part_state {
    int state;
    unsigned gen; /* bumped at each elect / resign */
    int32_t leader_epoch;
} txn_part_state_t;

/* A load or unload queued for the marker thread. */
typedef struct txn_job {
    int32_t partition;
    unsigned gen;
    bool load;
    struct txn_job *next;
} txn_job_t;

struct txn_coordinator {
    broker_t *b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sm_map_t txns; /* id bytes -> txn_t* */
    txn_part_state_t *parts; /* [partitions] */
    txn_job_t *jobs, *jobs_tail;
    txn_t *q_head, *q_tail;
    bool stopping;
    pthread_t thread;
    sm_uuid_t topic_id;
    int32_t partitions;
    int32_t max_timeout_ms;
    int64_t id_expiration_ms;
    int64_t abort_interval_ms, expire_interval_ms;
    int64_t next_abort_check, next_expire_check;
};

static int64_t wall_ms(void) { return broker_now_ms(); }

static sm_str_t id_str(const txn_t *m) { return (sm_str_t){m->id, m->id_len}; }

/* ------------------------------------------------------------ states */

static void parts_free(tp_t *parts, int n) {
    for (int i = 0; i < n; i++)
        free(parts[i].topic);
    free(parts);
}

static void state_clear(txn_state_t *s) {
    parts_free(s->parts, s->nparts);
    s->parts = NULL;
    s->nparts = 0;
}

/* A deep copy of s (parts duplicated). */
static int state_copy(txn_state_t *dst, const txn_state_t *s) {
    *dst = *s;
    dst->parts = NULL;
    dst->nparts = 0;
    if (!s->nparts) return SM_OK;
    dst->parts = calloc((size_t)s->nparts, sizeof(tp_t));
    if (!dst->parts) return SM_ERR_NOMEM;
    for (int i = 0; i < s->nparts; i++) {
        dst->parts[i].partition = s->parts[i].partition;
        if (!(dst->parts[i].topic = strdup(s->parts[i].topic))) {
            dst->nparts = i;
            state_clear(dst);
            return SM_ERR_NOMEM;
        }
    }
    dst->nparts = s->nparts;
    return SM_OK;
}

static bool has_part(const txn_state_t *s, sm_str_t topic, int32_t partition) {
    for (int i = 0; i < s->nparts; i++)
        if (s->parts[i].partition == partition && sm_str_eq(sm_str_from(s->parts[i].topic), topic))
            return true;
    return false;
}

static int add_part(txn_state_t *s, sm_str_t topic, int32_t partition) {
    if (has_part(s, topic, partition)) return SM_OK;
    tp_t *n = realloc(s->parts, sizeof(tp_t) * (size_t)(s->nparts + 1));
    if (!n) return SM_ERR_NOMEM;
    s->parts = n;
    char *t = malloc((size_t)topic.len + 1);
    if (!t) return SM_ERR_NOMEM;
    memcpy(t, topic.ptr, (size_t)topic.len);
    t[topic.len] = 0;
    s->parts[s->nparts++] = (tp_t){t, partition};
    return SM_OK;
}

static void txn_free(txn_t *m) {
    state_clear(&m->s);
    free(m->id);
    free(m);
}

static txn_t *map_get(sm_map_t *txns, sm_str_t id) {
    return sm_map_get(txns, id.ptr, (size_t)id.len);
}

static txn_t *txn_get(txn_coordinator_t *c, sm_str_t id) { return map_get(&c->txns, id); }

static txn_t *map_new(sm_map_t *txns, sm_str_t id) {
    txn_t *m = calloc(1, sizeof(*m));
    if (!m || !(m->id = malloc((size_t)id.len + 1))) {
        free(m);
        return NULL;
    }
    memcpy(m->id, id.ptr, (size_t)id.len);
    m->id[id.len] = 0;
    m->id_len = id.len;
    m->s.pid = m->s.prev_pid = m->s.next_pid = -1;
    m->s.epoch = m->s.last_epoch = -1;
    m->s.start_ts = -1;
    if (sm_map_put(txns, id.ptr, (size_t)id.len, m)) {
        txn_free(m);
        return NULL;
    }
    return m;
}

static txn_t *txn_new(txn_coordinator_t *c, sm_str_t id) { return map_new(&c->txns, id); }

/* ------------------------------------------------------------ records */

int32_t txn_coordinator_partition_for(const broker_t *b, sm_str_t id) {
    int32_t n = b->txns ? ((const txn_coordinator_t *)b->txns)->partitions : 1;
    int32_t h = 0;
    for (int32_t i = 0; i < id.len; i++)
        h = (int32_t)((uint32_t)h * 31u + (uint8_t)id.ptr[i]);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return n > 0 ? a % n : 0;
}

/* The error a request about id gets from this broker's coordinator before
 * anything else (invariant 5); under c->mu. */
static int16_t id_error(txn_coordinator_t *c, sm_str_t id) {
    const txn_part_state_t *ps = &c->parts[txn_coordinator_partition_for(c->b, id)];
    if (ps->state == PART_LOADING) return PROTO_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    return ps->state == PART_LOADED ? PROTO_ERR_NONE : PROTO_ERR_NOT_COORDINATOR;
}

/* Key and value of id's state s (value NULL: a tombstone). */
static int state_record(sm_str_t id, const txn_state_t *s, bool tombstone, uint8_t **key,
                        size_t *key_len, uint8_t **value, size_t *value_len) {
    proto_transaction_log_key_t k;
    proto_transaction_log_key_init(&k);
    k.transactional_id = id;
    *value = NULL;
    *value_len = 0;
    if (proto_encode_versioned(proto_msg_lookup("TransactionLogKey"), 0, &k, key, key_len))
        return SM_ERR_NOMEM;
    if (tombstone) return SM_OK;
    proto_transaction_log_value_t v;
    proto_transaction_log_value_init(&v);
    v.producer_id = s->pid;
    v.producer_epoch = s->epoch;
    v.transaction_timeout_ms = s->timeout_ms;
    v.transaction_status = (int8_t)s->state;
    v.transaction_last_update_timestamp_ms = s->update_ts;
    v.transaction_start_timestamp_ms = s->start_ts;
    v.previous_producer_id = s->prev_pid;
    v.next_producer_id = s->next_pid;
    v.client_transaction_version = s->tv;
    /* Partitions grouped by topic, as Kafka writes them. */
    proto_transaction_log_value_partitions_schema_t *ps =
        calloc((size_t)s->nparts + 1, sizeof(*ps));
    int32_t *ids = calloc((size_t)s->nparts + 1, sizeof(int32_t));
    int rc = SM_ERR_NOMEM;
    if (!ps || !ids) goto out;
    int nt = 0, used = 0;
    for (int i = 0; i < s->nparts; i++) {
        bool seen = false;
        for (int t = 0; t < nt && !seen; t++)
            seen = sm_str_eq(ps[t].topic, sm_str_from(s->parts[i].topic));
        if (seen) continue;
        memset(&ps[nt], 0, sizeof(ps[nt]));
        ps[nt].topic = sm_str_from(s->parts[i].topic);
        ps[nt].partition_ids.v = ids + used;
        for (int j = i; j < s->nparts; j++)
            if (strcmp(s->parts[j].topic, s->parts[i].topic) == 0)
                ids[used++] = s->parts[j].partition;
        ps[nt].partition_ids.n = (int32_t)(ids + used - ps[nt].partition_ids.v);
        nt++;
    }
    v.transaction_partitions = (proto_transaction_log_value_partitions_schema_array_t){nt, ps};
    /* Version 1 (flexible, with the client's transaction version) for
     * transactions V2, version 0 otherwise, as Kafka writes them. */
    rc = proto_encode_versioned(proto_msg_lookup("TransactionLogValue"), s->tv >= 2 ? 1 : 0, &v,
                                value, value_len);
out:
    free(ps);
    free(ids);
    if (rc) free(*key);
    return rc;
}

/* ------------------------------------------------------------ writes */

enum { ANSWER_NONE = 0, ANSWER_INIT_PID, ANSWER_ADD_PARTITIONS, ANSWER_ADD_OFFSETS, ANSWER_END_TXN };

/* One transition being written. Owns next and the record bytes. */
typedef struct write_op {
    txn_coordinator_t *c;
    txn_t *m;
    txn_state_t next;
    bool tombstone;
    broker_req_t *r; /* answered on completion (NULL: none) */
    int answer;
    int16_t answer_err; /* error to answer with when the write succeeds */
    int64_t ans_pid;    /* the id's producer after the write (for the answer) */
    int16_t ans_epoch;
    int *out_status; /* synchronous writers learn the outcome here */
    broker_partition_t *p;
    int status;
    int32_t part; /* the id's partition of __transaction_state */
    unsigned gen; /* its gen when the write was prepared */
    int64_t end; /* the log end after the record */
} write_op_t;

static void answer(write_op_t *op, int16_t err);
static void answer_req(broker_req_t *r, int kind, int16_t err, int64_t pid, int16_t epoch);
static void enqueue_markers(txn_coordinator_t *c, txn_t *m);

/* Applies a written transition, answers and frees op. */
static void write_done(write_op_t *op) {
    txn_coordinator_t *c = op->c;
    txn_t *m = op->m;
    int16_t err = op->status == SM_OK ? op->answer_err : PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    pthread_mutex_lock(&c->mu);
    /* The partition's leadership changed since: nothing is applied under it. */
    bool stale = c->parts[op->part].gen != op->gen || c->parts[op->part].state != PART_LOADED;
    if (stale) {
        if (op->status == SM_OK) op->status = SM_ERR_STALE;
        err = PROTO_ERR_NOT_COORDINATOR;
        m->pending = false;
        pthread_cond_broadcast(&c->cv); /* an unload may wait for this write */
    } else if (op->status == SM_OK) {
        state_clear(&m->s);
        m->s = op->next;
        memset(&op->next, 0, sizeof(op->next));
        op->ans_pid = m->s.next_pid >= 0 ? m->s.next_pid : m->s.pid;
        op->ans_epoch = m->s.next_pid >= 0 ? 0 : m->s.epoch;
        if (m->s.state == ST_PREPARE_COMMIT || m->s.state == ST_PREPARE_ABORT) {
            enqueue_markers(c, m); /* stays pending until the markers are out */
            if (op->answer == ANSWER_END_TXN) {
                /* Answered once the markers are written: a client that
                 * begins its next transaction at once then finds the id
                 * ready instead of CONCURRENT_TRANSACTIONS (the decision
                 * is durable already; see end_answer). */
                m->end_req = op->r;
                m->end_pid = op->ans_pid;
                m->end_epoch = op->ans_epoch;
                op->r = NULL;
            }
        }
        else
            m->pending = false;
    } else {
        sm_warn("txn", "%s: could not write the transaction state: %s", m->id,
                sm_strerror(op->status));
        m->pending = false;
    }
    if (!m->pending) pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (op->out_status) *op->out_status = op->status;
    if (op->r) answer(op, err);
    state_clear(&op->next);
    if (op->p) broker_partition_put(op->p);
    free(op);
}

/* How long a state write waits for the ISR (Kafka's request.timeout.ms default). */
#define TXN_WRITE_REPLICATION_TIMEOUT_MS 30000

static void flushed(void *arg, int status) {
    write_op_t *op = arg;
    if (status != SM_OK) op->status = SM_ERR_IO;
    write_done(op);
}

/* The replicas have op's record (or not: status); then the flush when the
 * broker acknowledges only flushed data. */
static void replicated(void *arg, int status) {
    write_op_t *op = arg;
    broker_t *b = op->c->b;
    if (status != SM_OK || !b->s.fsync_before_ack) {
        op->status = status;
        write_done(op);
        return;
    }
    int rc = log_flush_request(log_manager_flusher(b->logs), op->p->log, op->end, flushed, op);
    if (rc != SM_ERR_AGAIN) flushed(op, rc);
}

/*
 * Writes op's transition: appends its record to the id's __transaction_state
 * partition; completes at once, or from the flusher when the broker
 * acknowledges only flushed data and wait is false. With wait, blocks for the
 * flush (the marker thread). Called without c->mu; m->pending is set.
 */
static void write_transition(write_op_t *op, bool wait) {
    txn_coordinator_t *c = op->c;
    broker_t *b = c->b;
    uint8_t *key = NULL, *value = NULL;
    size_t klen = 0, vlen = 0;
    op->status = SM_ERR;
    pthread_mutex_lock(&c->mu);
    bool current = c->parts[op->part].gen == op->gen && c->parts[op->part].state == PART_LOADED;
    pthread_mutex_unlock(&c->mu);
    op->p =
        current ? broker_partition_lookup(b, SM_STR_LIT(TXN_STATE_TOPIC), NULL, op->part) : NULL;
    if (!op->p ||
        state_record(id_str(op->m), &op->next, op->tombstone, &key, &klen, &value, &vlen)) {
        write_done(op);
        return;
    }
    size_t cap = PROTO_BATCH_HEADER_SIZE + klen + vlen + 32;
    uint8_t *buf = malloc(cap);
    int64_t ts = wall_ms(), first = 0, last = 0;
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t o = {0, 0, 0, ts, -1, -1, -1};
    size_t len = 0;
    if (buf) {
        proto_batch_builder_init(&bb, buf, cap, &o);
        proto_batch_builder_add(&bb, ts, (sm_bytes_t){key, (int32_t)klen},
                                value ? (sm_bytes_t){value, (int32_t)vlen} : SM_BYTES_NULL,
                                NULL, 0);
    }
    if (buf && proto_batch_builder_finish(&bb, &len) == SM_OK) {
        pthread_mutex_lock(&op->p->mu);
        op->status = broker_partition_serves(op->p)
                         ? log_append(op->p->log, buf, len, op->p->leader_epoch, &first, &last)
                         : SM_ERR_AGAIN;
        if (op->status == SM_OK) {
            broker_partition_after_append(op->p);
            broker_replica_appended(op->p);
        }
        pthread_mutex_unlock(&op->p->mu);
        /* Followers' fetches parked on the partition take the record now. */
        if (op->status == SM_OK) broker_wake(b, op->p);
    }
    free(buf);
    free(key);
    free(value);
    op->end = last + 1;
    if (op->status != SM_OK) {
        write_done(op);
        return;
    }
    /* In a cluster the ISR has it first (the state survives the leader). */
    int64_t timeout = TXN_WRITE_REPLICATION_TIMEOUT_MS;
    if (wait) {
        if (op->p->replicated)
            op->status = broker_replica_wait_replicated(op->p, op->end, timeout);
        if (op->status == SM_OK && b->s.fsync_before_ack)
            op->status = log_sync_to(op->p->log, op->end);
        write_done(op);
        return;
    }
    if (op->p->replicated)
        broker_replica_when_replicated(op->p, op->end, timeout, replicated, op);
    else
        replicated(op, SM_OK);
}

/* Starts writing next for m (under c->mu: marks m pending; the write itself
 * happens after the caller unlocks, through the returned op). */
static write_op_t *prepare_write(txn_coordinator_t *c, txn_t *m, txn_state_t *next,
                                 broker_req_t *r, int kind) {
    write_op_t *op = calloc(1, sizeof(*op));
    if (!op) return NULL;
    op->c = c;
    op->m = m;
    op->next = *next;
    memset(next, 0, sizeof(*next));
    op->r = r;
    op->answer = kind;
    op->part = txn_coordinator_partition_for(c->b, id_str(m));
    op->gen = c->parts[op->part].gen;
    m->pending = true;
    return op;
}

/* ------------------------------------------------------------ markers */

static void enqueue_markers(txn_coordinator_t *c, txn_t *m) {
    m->pending = true;
    if (m->queued) return;
    m->queued = true;
    m->next_q = NULL;
    if (c->q_tail) c->q_tail->next_q = m;
    else c->q_head = m;
    c->q_tail = m;
    pthread_cond_signal(&c->cv);
}

int16_t txn_write_marker_local(broker_t *b, sm_str_t topic, int32_t partition,
                               int64_t producer_id, int16_t epoch, int32_t coordinator_epoch,
                               bool commit) {
    broker_partition_t *p = broker_partition_lookup(b, topic, NULL, partition);
    /* A partition still recovering after an unclean stop is not gone: the
     * marker is retried (NOT_LEADER_OR_FOLLOWER) until it is served. */
    if (!p)
        return broker_partition_absent_error(b, topic, NULL, partition,
                                             PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    int16_t err = broker_partition_write_marker(p, producer_id, epoch, coordinator_epoch, commit);
    if (err == PROTO_ERR_NONE && b->s.fsync_before_ack && log_flush(p->log) != SM_OK)
        err = PROTO_ERR_KAFKA_STORAGE_ERROR;
    broker_partition_put(p);
    if (err == PROTO_ERR_NONE && sm_str_eq(topic, SM_STR_LIT(OFFSETS_TOPIC)))
        group_txn_marker(b, partition, producer_id, commit);
    return err;
}

/* A marker on topic-partition: written here when this broker holds it (a
 * single node always), else sent to its leader (cluster mode). */
static int16_t txn_write_marker(broker_t *b, sm_str_t topic, int32_t partition, int64_t producer_id,
                                int16_t epoch, int32_t coordinator_epoch, bool commit) {
    int32_t leader = -1;
    bool known = false;
    if (b->s.cluster_mode) {
        meta_image_rdlock(&b->image);
        const meta_topic_t *t = meta_image_topic(&b->image, topic);
        known = t && partition >= 0 && partition < t->n_partitions;
        if (known) leader = t->partitions[partition].leader;
        meta_image_unlock(&b->image);
        if (!known) return PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        if (leader < 0) return PROTO_ERR_NOT_LEADER_OR_FOLLOWER; /* retried */
    }
    if (!b->s.cluster_mode || leader == b->s.node_id)
        return txn_write_marker_local(b, topic, partition, producer_id, epoch, coordinator_epoch,
                                      commit);
    return txn_remote_write_marker(b, leader, topic, partition, producer_id, epoch,
                                   coordinator_epoch, commit);
}

static int32_t coordinator_epoch(txn_coordinator_t *c, sm_str_t id) {
    broker_partition_t *p = broker_partition_lookup(c->b, SM_STR_LIT(TXN_STATE_TOPIC), NULL,
                                                    txn_coordinator_partition_for(c->b, id));
    int32_t e = p ? p->leader_epoch : 0;
    if (p) broker_partition_put(p);
    return e;
}

/* Sends the EndTxn answer waiting on m's markers (success: the Prepare record
 * holding the decision is durable). Marker thread. */
static void end_answer(txn_coordinator_t *c, txn_t *m) {
    pthread_mutex_lock(&c->mu);
    broker_req_t *r = m->end_req;
    int64_t pid = m->end_pid;
    int16_t epoch = m->end_epoch;
    m->end_req = NULL;
    pthread_mutex_unlock(&c->mu);
    if (r) answer_req(r, ANSWER_END_TXN, PROTO_ERR_NONE, pid, epoch);
}

/* Writes the markers of m's prepared transaction, then its Complete record.
 * Marker thread; called without c->mu. Returns false to retry later: also when
 * the Complete record could not be written (the ISR did not get it in time),
 * as Kafka retries that append; m stays prepared meanwhile, and the markers
 * are written again (they are idempotent), or a new leader of the partition
 * finishes it. */
static bool complete_transaction(txn_coordinator_t *c, txn_t *m) {
    pthread_mutex_lock(&c->mu);
    txn_state_t s;
    int rc = state_copy(&s, &m->s);
    pthread_mutex_unlock(&c->mu);
    if (rc) return false;
    bool commit = s.state == ST_PREPARE_COMMIT;
    int32_t ce = coordinator_epoch(c, id_str(m));
    bool ok = true;
    for (int i = 0; i < s.nparts; i++) {
        int16_t err = txn_write_marker(c->b, sm_str_from(s.parts[i].topic), s.parts[i].partition,
                                       s.pid, s.epoch, ce, commit);
        if (err == PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
            /* Deleted since it was added: nothing there to end. */
            continue;
        }
        if (err == PROTO_ERR_INVALID_PRODUCER_EPOCH) {
            /* The partition knows a newer epoch: a later transaction of this
             * producer already ended here, nothing to write. */
            continue;
        }
        if (err != PROTO_ERR_NONE) {
            sm_warn("txn", "%s: %s marker for %s-%d failed (%s); retrying", m->id,
                    commit ? "COMMIT" : "ABORT", s.parts[i].topic, s.parts[i].partition,
                    proto_error_name(err));
            ok = false;
        }
    }
    if (!ok) {
        state_clear(&s);
        return false;
    }
    txn_state_t next = s;
    next.parts = NULL;
    next.nparts = 0;
    parts_free(s.parts, s.nparts);
    next.state = commit ? ST_COMPLETE_COMMIT : ST_COMPLETE_ABORT;
    next.update_ts = wall_ms();
    if (next.next_pid >= 0) {
        next.prev_pid = next.pid;
        next.pid = next.next_pid;
        next.next_pid = -1;
        next.epoch = 0;
        next.last_epoch = -1;
    }
    pthread_mutex_lock(&c->mu);
    write_op_t *op = prepare_write(c, m, &next, NULL, ANSWER_NONE);
    pthread_mutex_unlock(&c->mu);
    if (!op) return false;
    int status = SM_ERR;
    op->out_status = &status;
    sm_debug("txn", "%s: %s (producer %lld epoch %d)", m->id, commit ? "committed" : "aborted",
             (long long)op->next.pid, op->next.epoch);
    write_transition(op, true);
    if (status != SM_OK) return false;
    end_answer(c, m);
    return true;
}

/* Fences and aborts an Ongoing transaction: epoch + 1 (unless exhausted),
 * PrepareAbort. Under c->mu; returns the write to start, or NULL. */
static write_op_t *fence_and_abort(txn_coordinator_t *c, txn_t *m, broker_req_t *r, int kind) {
    txn_state_t next;
    if (state_copy(&next, &m->s)) return NULL;
    if (next.epoch < EPOCH_EXHAUSTED) {
        next.last_epoch = next.epoch;
        next.epoch++;
    }
    next.state = ST_PREPARE_ABORT;
    next.update_ts = wall_ms();
    return prepare_write(c, m, &next, r, kind);
}

/* Timed-out transactions are fenced and aborted (Kafka's
 * abortTimedOutTransactions); ids idle past transactional.id.expiration.ms
 * get a tombstone and are forgotten. One transition at a time: each write
 * happens without c->mu. */
static write_op_t *next_cleanup(txn_coordinator_t *c, bool expiry, int64_t now) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&c->txns, &it, NULL, NULL, &v)) {
        txn_t *m = v;
        if (m->pending) continue;
        if (!expiry) {
            if (m->s.state != ST_ONGOING || m->s.start_ts + m->s.timeout_ms > now) continue;
            sm_info("txn", "%s: transaction of producer %lld timed out after %d ms; aborting",
                    m->id, (long long)m->s.pid, m->s.timeout_ms);
            return fence_and_abort(c, m, NULL, ANSWER_NONE);
        }
        bool idle = m->s.state == ST_EMPTY || m->s.state == ST_COMPLETE_COMMIT ||
                    m->s.state == ST_COMPLETE_ABORT;
        if (!idle || m->s.update_ts + c->id_expiration_ms > now) continue;
        txn_state_t next;
        if (state_copy(&next, &m->s)) return NULL;
        next.state = ST_DEAD;
        write_op_t *op = prepare_write(c, m, &next, NULL, ANSWER_NONE);
        if (op) op->tombstone = true;
        return op;
    }
    return NULL;
}

static void cleanup(txn_coordinator_t *c, bool expiry) {
    pthread_mutex_lock(&c->mu);
    size_t bound = sm_map_size(&c->txns); /* a failing write is not retried in a loop */
    pthread_mutex_unlock(&c->mu);
    for (size_t n = 0; n < bound; n++) {
        pthread_mutex_lock(&c->mu);
        write_op_t *op = next_cleanup(c, expiry, wall_ms());
        pthread_mutex_unlock(&c->mu);
        if (!op) return;
        txn_t *m = op->m;
        write_transition(op, true);
        pthread_mutex_lock(&c->mu);
        if (m->s.state == ST_DEAD && !m->pending) {
            sm_info("txn", "%s: transactional id expired", m->id);
            sm_map_del(&c->txns, m->id, (size_t)m->id_len);
            txn_free(m);
        }
        pthread_mutex_unlock(&c->mu);
    }
}

static void run_job(txn_coordinator_t *c, const txn_job_t *j);

static void *marker_main(void *arg) {
    txn_coordinator_t *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping || c->q_head) {
        txn_job_t *j = c->stopping ? NULL : c->jobs;
        if (j) {
            c->jobs = j->next;
            if (!c->jobs) c->jobs_tail = NULL;
            pthread_mutex_unlock(&c->mu);
            run_job(c, j);
            free(j);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        txn_t *m = c->q_head;
        if (m) {
            c->q_head = m->next_q;
            if (!c->q_head) c->q_tail = NULL;
            m->queued = false;
            pthread_mutex_unlock(&c->mu);
            bool done = complete_transaction(c, m);
            if (!done) end_answer(c, m); /* decided; the markers follow later */
            pthread_mutex_lock(&c->mu);
            if (!done && !c->stopping) {
                /* Retried after the other queued ones, at most once a second. */
                enqueue_markers(c, m);
                sm_cond_wait_until(&c->cv, &c->mu, sm_mono_ms() + 1000);
            } else if (!done) {
                m->pending = false;
            }
            continue;
        }
        int64_t now = sm_mono_ms();
        if (now >= c->next_abort_check) {
            c->next_abort_check = now + c->abort_interval_ms;
            pthread_mutex_unlock(&c->mu);
            cleanup(c, false);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (now >= c->next_expire_check) {
            c->next_expire_check = now + c->expire_interval_ms;
            pthread_mutex_unlock(&c->mu);
            cleanup(c, true);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (c->stopping) break;
        sm_cond_wait_until(&c->cv, &c->mu,
                           c->next_abort_check < c->next_expire_check ? c->next_abort_check
                                                                      : c->next_expire_check);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ------------------------------------------------------------ loading */

static int load_record(sm_map_t *txns, sm_bytes_t key, sm_bytes_t value) {
    sm_reader_t kr = sm_reader_make(key.ptr, (size_t)key.len);
    int16_t kv;
    if (key.len < 2 || sm_rd_i16(&kr, &kv) || kv != 0) return SM_OK; /* not ours: skipped */
    sm_arena_t a;
    sm_arena_init(&a, 1 << 20);
    int rc = SM_OK;
    proto_transaction_log_key_t k;
    if (proto_transaction_log_key_decode(&kr, &a, 0, &k) || k.transactional_id.len <= 0) goto out;
    txn_t *m = map_get(txns, k.transactional_id);
    if (value.len < 0) {
        if (m) {
            sm_map_del(txns, m->id, (size_t)m->id_len);
            txn_free(m);
        }
        goto out;
    }
    sm_reader_t vr = sm_reader_make(value.ptr, (size_t)value.len);
    int16_t vv;
    proto_transaction_log_value_t v;
    if (sm_rd_i16(&vr, &vv) || vv < 0 || vv > 1 || proto_transaction_log_value_decode(&vr, &a, vv, &v))
        goto out;
    if (!m && !(m = map_new(txns, k.transactional_id))) {
        rc = SM_ERR_NOMEM;
        goto out;
    }
    state_clear(&m->s);
    m->s.pid = v.producer_id;
    m->s.prev_pid = vv >= 1 ? v.previous_producer_id : -1;
    m->s.epoch = v.producer_epoch;
    m->s.last_epoch = -1;
    m->s.timeout_ms = v.transaction_timeout_ms;
    m->s.state = v.transaction_status;
    m->s.start_ts = v.transaction_start_timestamp_ms;
    m->s.update_ts = v.transaction_last_update_timestamp_ms;
    m->s.tv = vv >= 1 ? v.client_transaction_version : 0;
    m->s.next_pid = vv >= 1 ? v.next_producer_id : -1;
    for (int32_t i = 0; i < v.transaction_partitions.n && rc == SM_OK; i++) {
        const proto_transaction_log_value_partitions_schema_t *ps = &v.transaction_partitions.v[i];
        for (int32_t j = 0; j < ps->partition_ids.n && rc == SM_OK; j++)
            rc = add_part(&m->s, ps->topic, ps->partition_ids.v[j]);
    }
out:
    sm_arena_free(&a);
    return rc;
}

static int load_batch(void *arg, const uint8_t *batch, size_t len, const proto_batch_header_t *h) {
    sm_map_t *txns = arg;
    if (h->attributes & PROTO_ATTR_CONTROL) return SM_OK;
    if (proto_batch_compression(h) != PROTO_COMPRESSION_NONE) return SM_OK;
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h->records_count);
    int rc;
    while ((rc = proto_record_iter_next(&it, &rec)) == 1)
        if (rec.key.len > 0 && load_record(txns, rec.key, rec.value) == SM_ERR_NOMEM)
            return SM_ERR_NOMEM;
    return SM_OK;
}

/* Reads partition j->partition into a private map, then installs its ids
 * when no elect / resign came meanwhile. Marker thread, no lock held while
 * reading. */
static void run_load(txn_coordinator_t *c, const txn_job_t *j) {
    sm_map_t tmp;
    sm_map_init(&tmp);
    int64_t t0 = sm_mono_ms();
    broker_partition_t *bp =
        broker_partition_lookup(c->b, SM_STR_LIT(TXN_STATE_TOPIC), NULL, j->partition);
    int rc = bp ? log_for_each_batch(bp->log, 0, load_batch, &tmp) : SM_ERR_NOTFOUND;
    if (bp) broker_partition_put(bp);
    size_t it = 0, n = 0, prepared = 0;
    void *v;
    pthread_mutex_lock(&c->mu);
    txn_part_state_t *ps = &c->parts[j->partition];
    bool current = ps->gen == j->gen && ps->state == PART_LOADING;
    if (current && rc != SM_OK) ps->state = PART_UNLOADED; /* until the next leadership change */
    if (current && rc == SM_OK) {
        while (sm_map_next(&tmp, &it, NULL, NULL, &v)) {
            txn_t *m = v;
            if (txn_get(c, id_str(m)) || sm_map_put(&c->txns, m->id, (size_t)m->id_len, m)) {
                txn_free(m); /* (none is left by the unload before) */
                continue;
            }
            n++;
            if (m->s.state == ST_PREPARE_COMMIT || m->s.state == ST_PREPARE_ABORT) {
                enqueue_markers(c, m);
                prepared++;
            }
        }
        ps->state = PART_LOADED;
    }
    int32_t epoch = ps->leader_epoch;
    pthread_mutex_unlock(&c->mu);
    if (!current || rc != SM_OK) {
        it = 0;
        while (sm_map_next(&tmp, &it, NULL, NULL, &v))
            txn_free(v);
    }
    sm_map_free(&tmp);
    if (current && rc != SM_OK)
        sm_warn("txn", "%s-%d cannot be loaded: %s", TXN_STATE_TOPIC, j->partition,
                sm_strerror(rc));
    else if (current)
        sm_info("txn",
                "%s-%d loaded (leader epoch %d): %zu transactional ids (%zu to complete) "
                "in %lld ms",
                TXN_STATE_TOPIC, j->partition, epoch, n, prepared, (long long)(sm_mono_ms() - t0));
}

/* Drops the ids of an unloaded partition once their writes in flight are
 * done (EndTxn answers waiting on markers get their decision: the new leader
 * writes the markers when it loads the partition). Marker thread. */
static void run_unload(txn_coordinator_t *c, const txn_job_t *j) {
    int32_t p = j->partition;
    pthread_mutex_lock(&c->mu);
    if (c->parts[p].state == PART_LOADED) { /* loaded again since */
        pthread_mutex_unlock(&c->mu);
        return;
    }
    /* Off the marker queue. */
    txn_t *prev = NULL;
    for (txn_t *m = c->q_head; m;) {
        txn_t *next = m->next_q;
        if (txn_coordinator_partition_for(c->b, id_str(m)) == p) {
            if (prev)
                prev->next_q = next;
            else
                c->q_head = next;
            if (c->q_tail == m) c->q_tail = prev;
            m->queued = false;
            m->pending = false;
        } else {
            prev = m;
        }
        m = next;
    }
    /* Writes in flight (from handlers) complete by themselves: write_done
     * applies nothing of a stale leadership and wakes us. */
    for (;;) {
        bool busy = false;
        size_t it = 0;
        void *v;
        while (!busy && sm_map_next(&c->txns, &it, NULL, NULL, &v))
            busy = ((txn_t *)v)->pending && txn_coordinator_partition_for(c->b, id_str(v)) == p;
        if (!busy) break;
        sm_cond_wait_until(&c->cv, &c->mu, sm_mono_ms() + 100);
    }
    txn_t *gone = NULL;
    size_t it = 0, n = 0;
    void *v;
    while (sm_map_next(&c->txns, &it, NULL, NULL, &v)) {
        txn_t *m = v;
        if (txn_coordinator_partition_for(c->b, id_str(m)) != p) continue;
        m->next_q = gone;
        gone = m;
    }
    for (txn_t *m = gone; m; m = m->next_q)
        sm_map_del(&c->txns, m->id, (size_t)m->id_len);
    pthread_mutex_unlock(&c->mu);
    while (gone) {
        txn_t *next = gone->next_q;
        if (gone->end_req)
            answer_req(gone->end_req, ANSWER_END_TXN, PROTO_ERR_NONE, gone->end_pid,
                       gone->end_epoch);
        txn_free(gone);
        gone = next;
        n++;
    }
    sm_info("txn", "%s-%d unloaded (%zu transactional ids dropped)", TXN_STATE_TOPIC, p, n);
}

static void run_job(txn_coordinator_t *c, const txn_job_t *j) {
    if (j->load)
        run_load(c, j);
    else
        run_unload(c, j);
}

static void part_transition(broker_t *b, int32_t p, int32_t leader_epoch, bool load) {
    txn_coordinator_t *c = b->txns;
    if (!c) return;
    if (p < 0 || p >= c->partitions) {
        sm_warn("txn",
                "%s-%d is beyond the %d partitions this broker coordinates "
                "(transaction.state.log.num.partitions): ignored",
                TXN_STATE_TOPIC, p, c->partitions);
        return;
    }
    txn_job_t *j = malloc(sizeof(*j));
    pthread_mutex_lock(&c->mu);
    txn_part_state_t *ps = &c->parts[p];
    bool same = load ? ps->state != PART_UNLOADED && ps->leader_epoch == leader_epoch
                     : ps->state == PART_UNLOADED;
    if (!same) {
        ps->gen++;
        ps->state = load && j ? PART_LOADING : PART_UNLOADED;
        ps->leader_epoch = leader_epoch;
        if (j) {
            *j = (txn_job_t){p, ps->gen, load, NULL};
            if (c->jobs_tail)
                c->jobs_tail->next = j;
            else
                c->jobs = j;
            c->jobs_tail = j;
            j = NULL;
            pthread_cond_broadcast(&c->cv);
        }
    }
    pthread_mutex_unlock(&c->mu);
    free(j);
}

void txn_coordinator_elect(broker_t *b, int32_t partition, int32_t leader_epoch) {
    part_transition(b, partition, leader_epoch, true);
}

void txn_coordinator_resign(broker_t *b, int32_t partition) {
    part_transition(b, partition, -1, false);
}

/* ------------------------------------------------------------ start/stop */

int txn_coordinator_start(broker_t *b) {
    txn_coordinator_t *c = calloc(1, sizeof(*c));
    if (!c) return SM_ERR_NOMEM;
    c->b = b;
    pthread_mutex_init(&c->mu, NULL);
    sm_cond_init_mono(&c->cv);
    sm_map_init(&c->txns);
    c->max_timeout_ms = sm_config_int(b->cfg, "transaction.max.timeout.ms");
    c->id_expiration_ms = sm_config_long(b->cfg, "transactional.id.expiration.ms");
    c->abort_interval_ms =
        sm_config_long(b->cfg, "transaction.abort.timed.out.transaction.cleanup.interval.ms");
    c->expire_interval_ms =
        sm_config_long(b->cfg, "transaction.remove.expired.transaction.cleanup.interval.ms");
    int64_t now = sm_mono_ms();
    c->next_abort_check = now + c->abort_interval_ms;
    c->next_expire_check = now + c->expire_interval_ms;

    const char *seg = sm_config_str(b->cfg, "transaction.state.log.segment.bytes");
    meta_config_kv_t kv[] = {{SM_STR_LIT("cleanup.policy"), SM_STR_LIT("compact")},
                             {SM_STR_LIT("segment.bytes"), sm_str_from(seg)}};
    if (b->s.cluster_mode) {
        /* Created when first needed (FindCoordinator), with this count;
         * partitions load as this broker becomes their leader. */
        c->partitions = sm_config_int(b->cfg, "transaction.state.log.num.partitions");
    } else if (broker_internal_topic(
                   b, TXN_STATE_TOPIC,
                   sm_config_int(b->cfg, "transaction.state.log.num.partitions"),
                   broker_internal_rf(b, "transaction.state.log.replication.factor"), kv, 2,
                   &c->topic_id, &c->partitions) != SM_OK) {
        goto fail;
    }
    if (!(c->parts = calloc((size_t)c->partitions + 1, sizeof(*c->parts)))) goto fail;
    for (int32_t p = 0; p < c->partitions; p++)
        c->parts[p].state = b->s.cluster_mode ? PART_UNLOADED : PART_LOADED;
    b->txns = c;
    for (int32_t p = 0; p < c->partitions && !b->s.cluster_mode; p++) {
        broker_partition_t *bp = broker_partition_get(b, &c->topic_id, p);
        if (!bp) continue;
        int rc = log_for_each_batch(bp->log, 0, load_batch, &c->txns);
        broker_partition_put(bp);
        if (rc != SM_OK) {
            sm_error("txn", "%s-%d: cannot load transaction state: %s", TXN_STATE_TOPIC, p,
                     sm_strerror(rc));
            goto fail;
        }
    }
    size_t it = 0, prepared = 0;
    void *v;
    while (sm_map_next(&c->txns, &it, NULL, NULL, &v)) {
        txn_t *m = v;
        if (m->s.state == ST_PREPARE_COMMIT || m->s.state == ST_PREPARE_ABORT) {
            enqueue_markers(c, m);
            prepared++;
        }
    }
    if (sm_map_size(&c->txns))
        sm_info("txn", "loaded %zu transactional ids from %s (%zu to complete)",
                sm_map_size(&c->txns), TXN_STATE_TOPIC, prepared);
    if (pthread_create(&c->thread, NULL, marker_main, c)) goto fail;
    return SM_OK;
fail:
    b->txns = NULL;
    it = 0;
    while (sm_map_next(&c->txns, &it, NULL, NULL, &v))
        txn_free(v);
    sm_map_free(&c->txns);
    free(c->parts);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return SM_ERR;
}

void txn_coordinator_stop(broker_t *b) {
    txn_coordinator_t *c = b->txns;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    b->txns = NULL;
    size_t it = 0;
    void *v;
    while (sm_map_next(&c->txns, &it, NULL, NULL, &v)) {
        txn_t *m = v;
        /* Decided (its Prepare record is durable); the markers follow at the
         * next start. */
        if (m->end_req) answer_req(m->end_req, ANSWER_END_TXN, PROTO_ERR_NONE, m->end_pid,
                                   m->end_epoch);
        txn_free(m);
    }
    sm_map_free(&c->txns);
    while (c->jobs) {
        txn_job_t *n = c->jobs->next;
        free(c->jobs);
        c->jobs = n;
    }
    free(c->parts);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ------------------------------------------------------------ verification */

/*
 * Cluster mode: when id's coordinator partition is not loaded here, asks the
 * broker leading it (AddPartitionsToTxn v4+, as Kafka's partition leaders do)
 * and returns true with *err the answer as a produce carries it; false when
 * this broker coordinates id (the caller decides locally).
 */
static bool ask_coordinator(broker_t *b, sm_str_t id, int64_t producer_id, int16_t epoch,
                            sm_str_t topic, int32_t partition, bool verify_only,
                            int16_t produce_version, int16_t *err) {
    txn_coordinator_t *c = b->txns;
    if (!b->s.cluster_mode) return false;
    int32_t part = txn_coordinator_partition_for(b, id);
    pthread_mutex_lock(&c->mu);
    bool here = c->parts[part].state != PART_UNLOADED;
    pthread_mutex_unlock(&c->mu);
    if (here) return false;
    int32_t node = -1;
    meta_image_rdlock(&b->image);
    const meta_topic_t *t = meta_image_topic(&b->image, SM_STR_LIT(TXN_STATE_TOPIC));
    if (t && part < t->n_partitions) node = t->partitions[part].leader;
    meta_image_unlock(&b->image);
    *err = node < 0 || node == b->s.node_id
               ? PROTO_ERR_NOT_ENOUGH_REPLICAS
               : txn_remote_add_partition(b, node, id, producer_id, epoch, topic, partition,
                                          verify_only);
    switch (*err) {
    case PROTO_ERR_NOT_COORDINATOR:
    case PROTO_ERR_COORDINATOR_NOT_AVAILABLE:
    case PROTO_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case PROTO_ERR_CONCURRENT_TRANSACTIONS:
        /* Retriable for the producer, as Kafka maps them on the produce path. */
        *err = PROTO_ERR_NOT_ENOUGH_REPLICAS;
        break;
    case PROTO_ERR_PRODUCER_FENCED: *err = PROTO_ERR_INVALID_PRODUCER_EPOCH; break;
    case PROTO_ERR_TRANSACTION_ABORTABLE:
        if (produce_version <= 10) *err = PROTO_ERR_INVALID_TXN_STATE;
        break;
    default: break;
    }
    return true;
}

int16_t txn_coordinator_verify(broker_t *b, sm_str_t id, int64_t producer_id, int16_t epoch,
                               sm_str_t topic, int32_t partition, int16_t produce_version) {
    txn_coordinator_t *c = b->txns;
    if (!c) return PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    if (id.len <= 0) return PROTO_ERR_INVALID_TXN_STATE;
    int16_t err = PROTO_ERR_NONE;
    if (ask_coordinator(b, id, producer_id, epoch, topic, partition, true, produce_version, &err))
        return err;
    pthread_mutex_lock(&c->mu);
    if (id_error(c, id)) {
        pthread_mutex_unlock(&c->mu);
        return PROTO_ERR_NOT_ENOUGH_REPLICAS; /* loading: retried */
    }
    txn_t *m = txn_get(c, id);
    if (!m || m->s.pid != producer_id) {
        err = PROTO_ERR_INVALID_PRODUCER_ID_MAPPING;
    } else if (m->s.epoch != epoch) {
        err = PROTO_ERR_INVALID_PRODUCER_EPOCH;
    } else if (m->s.state == ST_PREPARE_COMMIT || m->s.state == ST_PREPARE_ABORT) {
        err = PROTO_ERR_NOT_ENOUGH_REPLICAS;
    } else if (m->s.state != ST_ONGOING || !has_part(&m->s, topic, partition)) {
        err = produce_version > 10 ? PROTO_ERR_TRANSACTION_ABORTABLE : PROTO_ERR_INVALID_TXN_STATE;
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

/*
 * Transactions V2 (KIP-890 part 2): a partition the producer writes to (a
 * transactional Produce v12+, TxnOffsetCommit v5+) joins its transaction
 * without AddPartitionsToTxn. On a single node, blocking: returns once the
 * transition is written (and flushed when the broker acknowledges only flushed
 * data). In a cluster the transition is started and NOT_ENOUGH_REPLICAS
 * answered (the caller's retry finds the partition added). Error codes as
 * txn_coordinator_verify's.
 */
int16_t txn_coordinator_add_implicit(broker_t *b, sm_str_t id, int64_t producer_id, int16_t epoch,
                                     sm_str_t topic, int32_t partition) {
    txn_coordinator_t *c = b->txns;
    if (!c) return PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    if (id.len <= 0) return PROTO_ERR_INVALID_TXN_STATE;
    int16_t err = PROTO_ERR_NONE;
    if (ask_coordinator(b, id, producer_id, epoch, topic, partition, false, 12, &err)) return err;
    write_op_t *op = NULL;
    pthread_mutex_lock(&c->mu);
    int16_t cerr = id_error(c, id);
    txn_t *m = cerr ? NULL : txn_get(c, id);
    if (cerr) {
        err = PROTO_ERR_NOT_ENOUGH_REPLICAS; /* loading: retried */
    } else if (!m || m->s.pid != producer_id) {
        err = PROTO_ERR_INVALID_PRODUCER_ID_MAPPING;
    } else if (m->s.epoch != epoch) {
        err = PROTO_ERR_INVALID_PRODUCER_EPOCH;
    } else if (m->pending || m->s.state == ST_PREPARE_COMMIT || m->s.state == ST_PREPARE_ABORT) {
        err = PROTO_ERR_NOT_ENOUGH_REPLICAS;
    } else if (m->s.state != ST_ONGOING || !has_part(&m->s, topic, partition)) {
        txn_state_t next;
        if (state_copy(&next, &m->s)) {
            err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            if (next.state != ST_ONGOING) {
                state_clear(&next);
                next.start_ts = wall_ms();
            }
            next.state = ST_ONGOING;
            next.tv = 2;
            next.update_ts = wall_ms();
            if (add_part(&next, topic, partition) || !(op = prepare_write(c, m, &next, NULL, 0))) {
                state_clear(&next);
                err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (!op) return err;
    if (b->s.cluster_mode) {
        /* The record must reach the ISR first, and this event loop may be the
         * one serving the followers' fetches that replicate it: written
         * without waiting here. The producer retries (NOT_ENOUGH_REPLICAS, as
         * while any transition of the id is pending) and finds its partition
         * in the transaction once the record is replicated. */
        write_transition(op, false);
        return PROTO_ERR_NOT_ENOUGH_REPLICAS;
    }
    int status = SM_ERR;
    op->out_status = &status;
    write_transition(op, true);
    return status == SM_OK ? PROTO_ERR_NONE : PROTO_ERR_NOT_ENOUGH_REPLICAS;
}

/* ------------------------------------------------------------ answers */

/*
 * Kafka answers a fenced producer with PRODUCER_FENCED from these versions on
 * and with INVALID_PRODUCER_EPOCH before (clients of that age know only it).
 */
static int16_t fenced(int16_t version, int16_t first_version) {
    return version >= first_version ? PROTO_ERR_PRODUCER_FENCED : PROTO_ERR_INVALID_PRODUCER_EPOCH;
}

typedef proto_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_array_t
    topic_results_t;

static void fill_topic_results(topic_results_t *tr, int16_t err) {
    for (int32_t i = 0; i < tr->n; i++)
        for (int32_t k = 0; k < tr->v[i].results_by_partition.n; k++)
            tr->v[i].results_by_partition.v[k].partition_error_code = err;
}

static void answer(write_op_t *op, int16_t err) {
    answer_req(op->r, op->answer, err, op->ans_pid, op->ans_epoch);
}

static void answer_req(broker_req_t *r, int kind, int16_t err, int64_t pid, int16_t epoch) {
    switch (kind) {
    case ANSWER_INIT_PID: {
        proto_init_producer_id_response_t *resp = r->resp;
        resp->error_code = err;
        resp->producer_id = err ? -1 : pid;
        resp->producer_epoch = err ? -1 : epoch;
        break;
    }
    case ANSWER_ADD_PARTITIONS: {
        proto_add_partitions_to_txn_response_t *resp = r->resp;
        if (r->version < 4) fill_topic_results(&resp->results_by_topic_v3_and_below, err);
        else if (resp->results_by_transaction.n == 1)
            fill_topic_results(&resp->results_by_transaction.v[0].topic_results, err);
        break;
    }
    case ANSWER_ADD_OFFSETS: ((proto_add_offsets_to_txn_response_t *)r->resp)->error_code = err; break;
    case ANSWER_END_TXN: {
        proto_end_txn_response_t *resp = r->resp;
        resp->error_code = err;
        resp->producer_id = err ? -1 : pid;
        resp->producer_epoch = err ? -1 : epoch;
        break;
    }
    default: break;
    }
    broker_req_finish(r);
}

/* Validates the id's producer for AddPartitions / AddOffsets / EndTxn; under
 * c->mu. */
static int16_t check_producer(txn_t *m, int64_t pid, int16_t epoch, int16_t fenced_err) {
    if (!m || m->s.pid != pid) return PROTO_ERR_INVALID_PRODUCER_ID_MAPPING;
    if (m->s.epoch != epoch) return fenced_err;
    if (m->pending || m->s.state == ST_PREPARE_COMMIT || m->s.state == ST_PREPARE_ABORT)
        return PROTO_ERR_CONCURRENT_TRANSACTIONS;
    return PROTO_ERR_NONE;
}

int txn_handle_init_producer_id(broker_req_t *r) {
    broker_t *b = r->b;
    txn_coordinator_t *c = b->txns;
    proto_init_producer_id_request_t *req = broker_body(r);
    proto_init_producer_id_response_t *resp = r->resp;
    resp->producer_id = -1;
    resp->producer_epoch = -1;
    sm_str_t id = req->transactional_id;
    if (!c) {
        resp->error_code = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return BROKER_RESPOND;
    }
    if (id.len == 0) {
        resp->error_code = PROTO_ERR_INVALID_REQUEST;
        return BROKER_RESPOND;
    }
    if (req->transaction_timeout_ms <= 0 || req->transaction_timeout_ms > c->max_timeout_ms) {
        resp->error_code = PROTO_ERR_INVALID_TRANSACTION_TIMEOUT;
        return BROKER_RESPOND;
    }
    bool expected = r->version >= 3 && req->producer_id >= 0;
    int64_t new_pid = -1;
    pthread_mutex_lock(&c->mu);
    int16_t cerr = id.len > 0 ? id_error(c, id) : PROTO_ERR_NONE;
    txn_t *m = txn_get(c, id);
    bool need_pid = !m || (m->s.epoch >= EPOCH_EXHAUSTED && !m->pending &&
                           (!expected || req->producer_epoch == m->s.epoch));
    pthread_mutex_unlock(&c->mu);
    if (cerr) {
        resp->error_code = cerr;
        return BROKER_RESPOND;
    }
    /* A new producer id comes from the controller: not under c->mu. */
    if (need_pid && broker_next_producer_id(b, &new_pid) != SM_OK) {
        resp->error_code = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return BROKER_RESPOND;
    }
    int16_t err = PROTO_ERR_NONE;
    write_op_t *op = NULL;
    txn_state_t next;
    memset(&next, 0, sizeof(next));
    pthread_mutex_lock(&c->mu);
    if ((err = id_error(c, id))) goto out;
    m = txn_get(c, id);
    if (!m) {
        if (!(m = txn_new(c, id))) {
            err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
            goto out;
        }
        m->s.pid = new_pid;
        m->s.timeout_ms = req->transaction_timeout_ms;
        m->s.update_ts = wall_ms();
        new_pid = -1;
    }
    if (m->pending) {
        err = PROTO_ERR_CONCURRENT_TRANSACTIONS;
        goto out;
    }
    /* KIP-360: a producer naming its id and epoch is either the current one,
     * a just-created state (epoch -1), or a retry after an epoch rotation. */
    if (expected && !(m->s.epoch < 0 || req->producer_id == m->s.pid ||
                      (req->producer_id == m->s.prev_pid && req->producer_epoch >= EPOCH_EXHAUSTED))) {
        err = fenced(r->version, 4);
        goto out;
    }
    switch (m->s.state) {
    case ST_PREPARE_COMMIT:
    case ST_PREPARE_ABORT: err = PROTO_ERR_CONCURRENT_TRANSACTIONS; goto out;
    case ST_ONGOING:
        /* Fence the running transaction: bump the epoch and abort it; the
         * producer retries and gets the next epoch once the abort is done. */
        sm_info("txn", "%s: InitProducerId fences producer %lld epoch %d and aborts its transaction",
                m->id, (long long)m->s.pid, m->s.epoch);
        op = fence_and_abort(c, m, r, ANSWER_INIT_PID);
        if (!op) err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        else op->answer_err = PROTO_ERR_CONCURRENT_TRANSACTIONS;
        goto out;
    default: break;
    }
    if (state_copy(&next, &m->s)) {
        err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        goto out;
    }
    if (expected && req->producer_epoch >= 0 && req->producer_epoch != m->s.epoch &&
        m->s.epoch >= 0 && !(req->producer_id == m->s.prev_pid)) {
        if (req->producer_epoch == m->s.last_epoch) {
            /* A retry of the bump whose answer was lost: answer it again. */
            state_clear(&next);
            resp->producer_id = m->s.pid;
            resp->producer_epoch = m->s.epoch;
            goto out;
        }
        err = fenced(r->version, 4);
        state_clear(&next);
        goto out;
    }
    if (next.epoch >= EPOCH_EXHAUSTED && new_pid >= 0) {
        next.prev_pid = next.pid;
        next.pid = new_pid;
        next.epoch = 0;
        next.last_epoch = -1;
        new_pid = -1;
    } else {
        next.last_epoch = next.epoch;
        next.epoch++;
    }
    state_clear(&next);
    next.state = ST_EMPTY;
    next.timeout_ms = req->transaction_timeout_ms;
    next.start_ts = -1;
    next.update_ts = wall_ms();
    op = prepare_write(c, m, &next, r, ANSWER_INIT_PID);
    if (!op) err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
out:
    pthread_mutex_unlock(&c->mu);
    if (op) {
        write_transition(op, false);
        return BROKER_PARKED;
    }
    resp->error_code = err;
    if (err) {
        resp->producer_id = -1;
        resp->producer_epoch = -1;
    } else if (resp->producer_id < 0) {
        resp->producer_id = m->s.pid;
        resp->producer_epoch = m->s.epoch;
    }
    return BROKER_RESPOND;
}

/* Adds partitions (names, indexes) to id's transaction: answers through
 * results (error per partition) or, parked, from the write. */
typedef struct add_req {
    sm_str_t id;
    int64_t pid;
    int16_t epoch;
    const proto_add_partitions_to_txn_request_add_partitions_to_txn_topic_array_t *topics;
    sm_str_t group_topic; /* AddOffsetsToTxn: __consumer_offsets and one partition */
    int32_t group_partition;
} add_req_t;

/* Checks topics exist; returns NONE or UNKNOWN_TOPIC_OR_PARTITION and marks
 * the unknown ones (the others get OPERATION_NOT_ATTEMPTED, as Kafka). */
static int16_t check_partitions(broker_t *b, const add_req_t *a, topic_results_t *out) {
    int16_t err = PROTO_ERR_NONE;
    for (int32_t i = 0; a->topics && i < a->topics->n; i++) {
        const proto_add_partitions_to_txn_request_add_partitions_to_txn_topic_t *t = &a->topics->v[i];
        for (int32_t k = 0; k < t->partitions.n; k++) {
            if (b->s.cluster_mode) {
                /* In a cluster the partition lives on its replicas: the image knows it. */
                meta_image_rdlock(&b->image);
                const meta_topic_t *mt = meta_image_topic(&b->image, t->name);
                bool ok = mt && t->partitions.v[k] >= 0 && t->partitions.v[k] < mt->n_partitions;
                meta_image_unlock(&b->image);
                if (ok) continue;
            } else {
                broker_partition_t *p =
                    broker_partition_lookup(b, t->name, NULL, t->partitions.v[k]);
                if (p) {
                    broker_partition_put(p);
                    continue;
                }
            }
            err = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (out) out->v[i].results_by_partition.v[k].partition_error_code = err;
        }
    }
    if (err && out)
        for (int32_t i = 0; i < out->n; i++)
            for (int32_t k = 0; k < out->v[i].results_by_partition.n; k++)
                if (out->v[i].results_by_partition.v[k].partition_error_code != err)
                    out->v[i].results_by_partition.v[k].partition_error_code =
                        PROTO_ERR_OPERATION_NOT_ATTEMPTED;
    return err;
}

/* Under c->mu: validates and prepares the write; *err when answered now. */
static write_op_t *add_partitions(txn_coordinator_t *c, const add_req_t *a, broker_req_t *r,
                                  int kind, int16_t fenced_err, int16_t *err) {
    *err = PROTO_ERR_NONE;
    if (a->id.len <= 0) {
        *err = PROTO_ERR_INVALID_REQUEST;
        return NULL;
    }
    if ((*err = id_error(c, a->id))) return NULL;
    txn_t *m = txn_get(c, a->id);
    if ((*err = check_producer(m, a->pid, a->epoch, fenced_err))) return NULL;
    txn_state_t next;
    if (state_copy(&next, &m->s)) {
        *err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    if (next.state != ST_ONGOING) {
        state_clear(&next);
        next.start_ts = wall_ms();
    }
    int before = next.nparts;
    int rc = SM_OK;
    for (int32_t i = 0; a->topics && i < a->topics->n && rc == SM_OK; i++)
        for (int32_t k = 0; k < a->topics->v[i].partitions.n && rc == SM_OK; k++)
            rc = add_part(&next, a->topics->v[i].name, a->topics->v[i].partitions.v[k]);
    if (a->group_topic.len > 0 && rc == SM_OK)
        rc = add_part(&next, a->group_topic, a->group_partition);
    if (rc) {
        state_clear(&next);
        *err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    if (m->s.state == ST_ONGOING && next.nparts == before) {
        /* Every partition is in already: nothing to write. */
        state_clear(&next);
        return NULL;
    }
    next.state = ST_ONGOING;
    next.update_ts = wall_ms();
    write_op_t *op = prepare_write(c, m, &next, r, kind);
    if (!op) {
        state_clear(&next);
        *err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    return op;
}

/* Fills the per-partition results of topics with err (arena of r). */
static int init_topic_results(broker_req_t *r,
                              const proto_add_partitions_to_txn_request_add_partitions_to_txn_topic_array_t *topics,
                              topic_results_t *out, int16_t err) {
    int32_t n = topics->n > 0 ? topics->n : 0;
    out->v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*out->v));
    if (!out->v) return SM_ERR_NOMEM;
    out->n = n;
    for (int32_t i = 0; i < n; i++) {
        out->v[i].name = topics->v[i].name;
        int32_t np = topics->v[i].partitions.n > 0 ? topics->v[i].partitions.n : 0;
        out->v[i].results_by_partition.v =
            sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*out->v[i].results_by_partition.v));
        if (!out->v[i].results_by_partition.v) return SM_ERR_NOMEM;
        out->v[i].results_by_partition.n = np;
        for (int32_t k = 0; k < np; k++) {
            out->v[i].results_by_partition.v[k].partition_index = topics->v[i].partitions.v[k];
            out->v[i].results_by_partition.v[k].partition_error_code = err;
        }
    }
    return SM_OK;
}

/* KIP-890 part 1, from another broker: is each partition in the transaction? */
static void verify_only(txn_coordinator_t *c, const add_req_t *a, topic_results_t *out) {
    pthread_mutex_lock(&c->mu);
    txn_t *m = txn_get(c, a->id);
    int16_t err = PROTO_ERR_NONE;
    if (a->id.len <= 0) err = PROTO_ERR_INVALID_REQUEST;
    else if ((err = id_error(c, a->id)))
        m = NULL;
    else if (!m || m->s.pid != a->pid) err = PROTO_ERR_INVALID_PRODUCER_ID_MAPPING;
    else if (m->s.epoch != a->epoch) err = PROTO_ERR_PRODUCER_FENCED;
    else if (m->s.state == ST_PREPARE_COMMIT || m->s.state == ST_PREPARE_ABORT)
        err = PROTO_ERR_CONCURRENT_TRANSACTIONS;
    for (int32_t i = 0; i < out->n; i++)
        for (int32_t k = 0; k < out->v[i].results_by_partition.n; k++) {
            int16_t e = err;
            if (!e && (m->s.state != ST_ONGOING ||
                       !has_part(&m->s, out->v[i].name,
                                 out->v[i].results_by_partition.v[k].partition_index)))
                e = PROTO_ERR_TRANSACTION_ABORTABLE;
            out->v[i].results_by_partition.v[k].partition_error_code = e;
        }
    pthread_mutex_unlock(&c->mu);
}

int broker_handle_add_partitions_to_txn(broker_req_t *r) {
    txn_coordinator_t *c = r->b->txns;
    proto_add_partitions_to_txn_request_t *req = broker_body(r);
    proto_add_partitions_to_txn_response_t *resp = r->resp;
    if (r->version < 4) {
        add_req_t a = {req->v3_and_below_transactional_id, req->v3_and_below_producer_id,
                       req->v3_and_below_producer_epoch, &req->v3_and_below_topics,
                       SM_STR_NULL, -1};
        topic_results_t *out = &resp->results_by_topic_v3_and_below;
        if (init_topic_results(r, a.topics, out, PROTO_ERR_NONE)) return BROKER_CLOSE;
        if (!c) {
            fill_topic_results(out, PROTO_ERR_COORDINATOR_NOT_AVAILABLE);
            return BROKER_RESPOND;
        }
        if (check_partitions(r->b, &a, out)) return BROKER_RESPOND;
        int16_t err;
        pthread_mutex_lock(&c->mu);
        write_op_t *op = add_partitions(c, &a, r, ANSWER_ADD_PARTITIONS, fenced(r->version, 2), &err);
        pthread_mutex_unlock(&c->mu);
        if (op) {
            write_transition(op, false);
            return BROKER_PARKED;
        }
        fill_topic_results(out, err);
        return BROKER_RESPOND;
    }
    /* v4+: from brokers, several transactions; adding ones are answered from
     * their write only when alone in the request (Kafka's brokers send one
     * per request), verify-only ones at once. */
    int32_t n = req->transactions.n > 0 ? req->transactions.n : 0;
    resp->results_by_transaction.v =
        sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->results_by_transaction.v));
    if (!resp->results_by_transaction.v) return BROKER_CLOSE;
    resp->results_by_transaction.n = n;
    resp->error_code = c ? PROTO_ERR_NONE : PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
    for (int32_t i = 0; i < n; i++) {
        const proto_add_partitions_to_txn_request_add_partitions_to_txn_transaction_t *t =
            &req->transactions.v[i];
        proto_add_partitions_to_txn_response_add_partitions_to_txn_result_t *o =
            &resp->results_by_transaction.v[i];
        o->transactional_id = t->transactional_id;
        if (init_topic_results(r, &t->topics, &o->topic_results, PROTO_ERR_NONE))
            return BROKER_CLOSE;
        if (!c) {
            fill_topic_results(&o->topic_results, PROTO_ERR_COORDINATOR_NOT_AVAILABLE);
            continue;
        }
        add_req_t a = {t->transactional_id, t->producer_id, t->producer_epoch, &t->topics,
                       SM_STR_NULL, -1};
        if (t->verify_only) {
            verify_only(c, &a, &o->topic_results);
            continue;
        }
        if (check_partitions(r->b, &a, &o->topic_results)) continue;
        int16_t err;
        pthread_mutex_lock(&c->mu);
        write_op_t *op =
            n == 1 ? add_partitions(c, &a, r, ANSWER_ADD_PARTITIONS, PROTO_ERR_PRODUCER_FENCED, &err)
                   : NULL;
        if (n != 1) err = PROTO_ERR_INVALID_REQUEST;
        pthread_mutex_unlock(&c->mu);
        if (op) {
            write_transition(op, false);
            return BROKER_PARKED;
        }
        fill_topic_results(&o->topic_results, err);
    }
    return BROKER_RESPOND;
}

int broker_handle_add_offsets_to_txn(broker_req_t *r) {
    broker_t *b = r->b;
    txn_coordinator_t *c = b->txns;
    proto_add_offsets_to_txn_request_t *req = broker_body(r);
    proto_add_offsets_to_txn_response_t *resp = r->resp;
    int32_t gp = group_offsets_partition(b, req->group_id);
    if (!c || gp < 0) {
        resp->error_code = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return BROKER_RESPOND;
    }
    add_req_t a = {req->transactional_id, req->producer_id, req->producer_epoch, NULL,
                   SM_STR_LIT(OFFSETS_TOPIC), gp};
    int16_t err;
    pthread_mutex_lock(&c->mu);
    write_op_t *op = add_partitions(c, &a, r, ANSWER_ADD_OFFSETS, fenced(r->version, 2), &err);
    pthread_mutex_unlock(&c->mu);
    if (op) {
        write_transition(op, false);
        return BROKER_PARKED;
    }
    resp->error_code = err;
    return BROKER_RESPOND;
}

int broker_handle_end_txn(broker_req_t *r) {
    txn_coordinator_t *c = r->b->txns;
    proto_end_txn_request_t *req = broker_body(r);
    proto_end_txn_response_t *resp = r->resp;
    resp->producer_id = -1;
    resp->producer_epoch = -1;
    if (!c) {
        resp->error_code = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return BROKER_RESPOND;
    }
    if (req->transactional_id.len <= 0) {
        resp->error_code = PROTO_ERR_INVALID_REQUEST;
        return BROKER_RESPOND;
    }
    /* Transactions V2 (KIP-890 part 2, EndTxn v5+): every EndTxn bumps the
     * epoch (its markers carry the new one, fencing the old epoch's late
     * writes) and answers with it; an exhausted epoch moves to a new producer
     * id. A retry by the previous epoch of what was done succeeds. */
    bool v2 = r->version >= 5;
    int64_t new_pid = -1;
    if (v2) {
        pthread_mutex_lock(&c->mu);
        txn_t *m0 = txn_get(c, req->transactional_id);
        bool need = m0 && m0->s.epoch >= EPOCH_EXHAUSTED - 1;
        pthread_mutex_unlock(&c->mu);
        if (need && broker_next_producer_id(r->b, &new_pid) != SM_OK) {
            resp->error_code = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
            return BROKER_RESPOND;
        }
    }
    int16_t err = PROTO_ERR_NONE;
    write_op_t *op = NULL;
    pthread_mutex_lock(&c->mu);
    int16_t cerr = id_error(c, req->transactional_id);
    txn_t *m = cerr ? NULL : txn_get(c, req->transactional_id);
    int st = m ? m->s.state : -1;
    bool retry = v2 && m && !m->pending && req->producer_epoch == m->s.last_epoch &&
                 (req->producer_id == m->s.pid || req->producer_id == m->s.prev_pid) &&
                 ((st == ST_COMPLETE_COMMIT && req->committed) ||
                  (st == ST_COMPLETE_ABORT && !req->committed));
    bool retry_pending = v2 && m && req->producer_epoch == m->s.last_epoch &&
                         req->producer_id == m->s.pid &&
                         ((st == ST_PREPARE_COMMIT && req->committed) ||
                          (st == ST_PREPARE_ABORT && !req->committed));
    if (cerr) {
        err = cerr;
    } else if (retry) {
        err = PROTO_ERR_NONE;
    } else if (retry_pending) {
        err = PROTO_ERR_CONCURRENT_TRANSACTIONS;
    } else if (!m || m->s.pid != req->producer_id) {
        err = PROTO_ERR_INVALID_PRODUCER_ID_MAPPING;
    } else if (m->s.epoch != req->producer_epoch) {
        err = fenced(r->version, 2);
    } else if (m->pending && st != ST_PREPARE_COMMIT && st != ST_PREPARE_ABORT) {
        err = PROTO_ERR_CONCURRENT_TRANSACTIONS;
    } else if (st == ST_ONGOING ||
               (v2 && !m->pending &&
                (st == ST_EMPTY || st == ST_COMPLETE_COMMIT || st == ST_COMPLETE_ABORT))) {
        /* (V2: a transaction that wrote nothing still ends with an epoch bump.) */
        txn_state_t next;
        if (state_copy(&next, &m->s)) {
            err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            if (st != ST_ONGOING) state_clear(&next);
            next.state = req->committed ? ST_PREPARE_COMMIT : ST_PREPARE_ABORT;
            next.update_ts = wall_ms();
            if (v2) {
                next.tv = 2;
                next.last_epoch = next.epoch;
                /* An exhausted epoch: the markers still go out under the
                 * old producer id's next epoch; the answer, and the id once
                 * complete, name the new producer id. */
                next.epoch++;
                if (next.epoch >= EPOCH_EXHAUSTED && new_pid >= 0) {
                    next.next_pid = new_pid;
                    new_pid = -1;
                }
            }
            if (!(op = prepare_write(c, m, &next, r, ANSWER_END_TXN))) {
                state_clear(&next);
                err = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
            }
        }
    } else if ((st == ST_COMPLETE_COMMIT && req->committed) ||
               (st == ST_COMPLETE_ABORT && !req->committed)) {
        err = PROTO_ERR_NONE; /* a retry of what is done */
    } else if ((st == ST_PREPARE_COMMIT && req->committed) ||
               (st == ST_PREPARE_ABORT && !req->committed)) {
        err = PROTO_ERR_CONCURRENT_TRANSACTIONS;
    } else {
        err = PROTO_ERR_INVALID_TXN_STATE;
    }
    if (!err && !op) {
        resp->producer_id = m->s.pid;
        resp->producer_epoch = m->s.epoch;
    }
    pthread_mutex_unlock(&c->mu);
    if (op) {
        write_transition(op, false);
        return BROKER_PARKED;
    }
    if (err && err != PROTO_ERR_NONE)
        sm_debug("txn", "EndTxn of %.*s: %s", req->transactional_id.len,
                 req->transactional_id.ptr, proto_error_name(err));
    resp->error_code = err;
    return BROKER_RESPOND;
}

int broker_handle_write_txn_markers(broker_req_t *r) {
    proto_write_txn_markers_request_t *req = broker_body(r);
    proto_write_txn_markers_response_t *resp = r->resp;
    int32_t n = req->markers.n > 0 ? req->markers.n : 0;
    resp->markers.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->markers.v));
    if (!resp->markers.v) return BROKER_CLOSE;
    resp->markers.n = n;
    for (int32_t i = 0; i < n; i++) {
        const proto_write_txn_markers_request_writable_txn_marker_t *mk = &req->markers.v[i];
        proto_write_txn_markers_response_writable_txn_marker_result_t *o = &resp->markers.v[i];
        o->producer_id = mk->producer_id;
        int32_t nt = mk->topics.n > 0 ? mk->topics.n : 0;
        o->topics.v = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*o->topics.v));
        if (!o->topics.v) return BROKER_CLOSE;
        o->topics.n = nt;
        for (int32_t t = 0; t < nt; t++) {
            o->topics.v[t].name = mk->topics.v[t].name;
            int32_t np = mk->topics.v[t].partition_indexes.n > 0 ? mk->topics.v[t].partition_indexes.n : 0;
            o->topics.v[t].partitions.v =
                sm_arena_calloc(&r->arena, (size_t)np + 1, sizeof(*o->topics.v[t].partitions.v));
            if (!o->topics.v[t].partitions.v) return BROKER_CLOSE;
            o->topics.v[t].partitions.n = np;
            for (int32_t k = 0; k < np; k++) {
                int32_t part = mk->topics.v[t].partition_indexes.v[k];
                o->topics.v[t].partitions.v[k].partition_index = part;
                o->topics.v[t].partitions.v[k].error_code = txn_write_marker_local(
                    r->b, mk->topics.v[t].name, part, mk->producer_id, mk->producer_epoch,
                    mk->coordinator_epoch, mk->transaction_result);
            }
        }
    }
    return BROKER_RESPOND;
}

static void describe_one(broker_req_t *r, txn_coordinator_t *c, sm_str_t id,
                         proto_describe_transactions_response_transaction_state_t *o) {
    o->transactional_id = id;
    o->transaction_state = SM_STR_LIT("");
    o->producer_id = -1;
    o->producer_epoch = -1;
    o->transaction_start_time_ms = -1;
    o->topics.n = 0;
    if (!c) {
        o->error_code = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return;
    }
    if (id.len <= 0) {
        o->error_code = PROTO_ERR_INVALID_REQUEST;
        return;
    }
    pthread_mutex_lock(&c->mu);
    int16_t cerr = id_error(c, id);
    txn_t *m = cerr ? NULL : txn_get(c, id);
    if (cerr) {
        o->error_code = cerr;
    } else if (!m || m->s.state == ST_DEAD) {
        o->error_code = PROTO_ERR_TRANSACTIONAL_ID_NOT_FOUND;
    } else {
        o->error_code = PROTO_ERR_NONE;
        o->transaction_state = sm_arena_str(&r->arena, state_names[m->s.state]);
        o->transaction_timeout_ms = m->s.timeout_ms;
        o->transaction_start_time_ms = m->s.start_ts;
        o->producer_id = m->s.pid;
        o->producer_epoch = m->s.epoch;
        o->topics.v = sm_arena_calloc(&r->arena, (size_t)m->s.nparts + 1, sizeof(*o->topics.v));
        int32_t *ids = sm_arena_calloc(&r->arena, (size_t)m->s.nparts + 1, sizeof(int32_t));
        int used = 0;
        for (int i = 0; o->topics.v && ids && i < m->s.nparts; i++) {
            int32_t t = 0;
            while (t < o->topics.n &&
                   !sm_str_eq(o->topics.v[t].topic, sm_str_from(m->s.parts[i].topic)))
                t++;
            if (t < o->topics.n) continue;
            o->topics.v[t].topic = sm_arena_str(&r->arena, m->s.parts[i].topic);
            o->topics.v[t].partitions.v = ids + used;
            for (int j = i; j < m->s.nparts; j++)
                if (strcmp(m->s.parts[j].topic, m->s.parts[i].topic) == 0)
                    ids[used++] = m->s.parts[j].partition;
            o->topics.v[t].partitions.n = (int32_t)(ids + used - o->topics.v[t].partitions.v);
            o->topics.n++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

int broker_handle_describe_transactions(broker_req_t *r) {
    proto_describe_transactions_request_t *req = broker_body(r);
    proto_describe_transactions_response_t *resp = r->resp;
    int32_t n = req->transactional_ids.n > 0 ? req->transactional_ids.n : 0;
    resp->transaction_states.v =
        sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->transaction_states.v));
    if (!resp->transaction_states.v) return BROKER_CLOSE;
    resp->transaction_states.n = n;
    for (int32_t i = 0; i < n; i++)
        describe_one(r, r->b->txns, req->transactional_ids.v[i], &resp->transaction_states.v[i]);
    return BROKER_RESPOND;
}

int broker_handle_list_transactions(broker_req_t *r) {
    txn_coordinator_t *c = r->b->txns;
    proto_list_transactions_request_t *req = broker_body(r);
    proto_list_transactions_response_t *resp = r->resp;
    resp->unknown_state_filters.n = 0;
    resp->transaction_states.n = 0;
    if (!c) {
        resp->error_code = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return BROKER_RESPOND;
    }
    int32_t nf = req->state_filters.n > 0 ? req->state_filters.n : 0;
    bool state_ok[8] = {false};
    resp->unknown_state_filters.v = sm_arena_calloc(&r->arena, (size_t)nf + 1, sizeof(sm_str_t));
    if (!resp->unknown_state_filters.v) return BROKER_CLOSE;
    for (int32_t i = 0; i < nf; i++) {
        bool known = false;
        for (int s = 0; s < 8; s++)
            if (sm_str_eq(req->state_filters.v[i], sm_str_from(state_names[s])))
                known = state_ok[s] = true;
        if (!known) resp->unknown_state_filters.v[resp->unknown_state_filters.n++] = req->state_filters.v[i];
    }
    /* v2: a regular expression over the ids (POSIX extended here; the
     * patterns admin tools send, such as "app-.*", mean the same). */
    regex_t re;
    bool use_re = r->version >= 2 && req->transactional_id_pattern.len > 0;
    if (use_re) {
        char *pat = sm_arena_strndup(&r->arena, req->transactional_id_pattern.ptr,
                                     (size_t)req->transactional_id_pattern.len);
        if (!pat || regcomp(&re, pat, REG_EXTENDED | REG_NOSUB)) {
            resp->error_code = PROTO_ERR_INVALID_REQUEST;
            return BROKER_RESPOND;
        }
    }
    int64_t now = wall_ms();
    pthread_mutex_lock(&c->mu);
    resp->transaction_states.v = sm_arena_calloc(&r->arena, sm_map_size(&c->txns) + 1,
                                                 sizeof(*resp->transaction_states.v));
    size_t it = 0;
    void *v;
    while (resp->transaction_states.v && sm_map_next(&c->txns, &it, NULL, NULL, &v)) {
        txn_t *m = v;
        if (m->s.state == ST_DEAD || (nf && !state_ok[m->s.state])) continue;
        if (id_error(c, id_str(m))) continue; /* being unloaded */
        bool pid_ok = req->producer_id_filters.n <= 0;
        for (int32_t i = 0; !pid_ok && i < req->producer_id_filters.n; i++)
            pid_ok = req->producer_id_filters.v[i] == m->s.pid;
        if (!pid_ok) continue;
        if (use_re && regexec(&re, m->id, 0, NULL, 0) != 0) continue;
        /* KIP-994: only transactions running longer than the filter. */
        if (r->version >= 1 && req->duration_filter >= 0 &&
            (m->s.state != ST_ONGOING || now - m->s.start_ts <= req->duration_filter))
            continue;
        proto_list_transactions_response_transaction_state_t *o =
            &resp->transaction_states.v[resp->transaction_states.n++];
        o->transactional_id = (sm_str_t){sm_arena_strndup(&r->arena, m->id, (size_t)m->id_len),
                                         m->id_len};
        o->producer_id = m->s.pid;
        o->transaction_state = sm_arena_str(&r->arena, state_names[m->s.state]);
    }
    pthread_mutex_unlock(&c->mu);
    if (use_re) regfree(&re);
    resp->error_code = PROTO_ERR_NONE;
    return BROKER_RESPOND;
}
