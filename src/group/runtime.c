/*
 * The coordinator runtime: groups sharded by their partition of
 * __consumer_offsets, each shard with its own lock; the write path (a state
 * change appends its records to the shard's partition, then applies, and its
 * answer waits for the records to be durable); the timer thread; loading at
 * start. Not for protocol rules: classic.c and offsets.c decide what to write.
 *
 * Invariants (Kafka 4's coordinator runtime, commit-then-apply flavour):
 *  1. A shard's in-memory state is the replay of its partition's log up to
 *     the log end: a change is applied only after group_append wrote its
 *     records, under the shard's mu, so log order is apply order.
 *  2. A failed append changes nothing: the caller answers with the append's
 *     error and keeps its state (the timer retries timer-driven changes).
 *  3. No request is answered "done" before the records it depends on are as
 *     durable as the broker acknowledges writes: answers wait for the group's
 *     write_end through the host (the flusher's completion when fsync-before-
 *     ack is on). No lock is held while an fsync runs.
 *  4. A flush that fails takes the shard out of service (failed): its state
 *     may hold changes that never became durable, so nothing is answered from
 *     it again; requests get NOT_COORDINATOR until a restart reloads it.
 *
 * Threads: handlers run on event-loop threads under one shard's mu; the
 * timer thread visits the shards one at a time; answers run on whichever
 * thread the host completes them on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "group/group_impl.h"
#include "protocol/errors.h"

const char *const group_state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                         "Stable", "Dead"};

static int64_t clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void group_client_of(broker_req_t *r, char **client_id, char **client_host) {
    *client_id =
        group_dupstr(r->req.header.client_id.len >= 0 ? r->req.header.client_id : SM_STR_LIT(""));
    const char *peer = net_conn_peer(r->net->conn);
    const char *colon = strrchr(peer, ':');
    char host[80];
    snprintf(host, sizeof(host), "/%.*s", colon ? (int)(colon - peer) : (int)strlen(peer), peer);
    *client_host = gs_cstr(host);
}

int64_t group_now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
int64_t group_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

/* A group string: the bytes, a NUL, and the length kept in the 8 bytes
 * before them, so Kafka strings holding NUL bytes keep them. */
char *gs_new(const char *p, int32_t len) {
    if (len < 0) return NULL;
    char *b = malloc(8 + (size_t)len + 1);
    if (!b) return NULL;
    int64_t n = len;
    memcpy(b, &n, 8);
    if (len) memcpy(b + 8, p, (size_t)len);
    b[8 + len] = 0;
    return b + 8;
}

int32_t gs_len(const char *g) {
    int64_t n;
    memcpy(&n, g - 8, 8);
    return (int32_t)n;
}

void gs_free(char *g) {
    if (g) free(g - 8);
}

char *gs_copy(const char *g) { return g ? gs_new(g, gs_len(g)) : NULL; }

char *gs_cstr(const char *c) { return c ? gs_new(c, (int32_t)strlen(c)) : NULL; }

bool gs_eq(const char *a, const char *b) {
    return a && b && gs_len(a) == gs_len(b) && memcmp(a, b, (size_t)gs_len(a)) == 0;
}

int gs_cmp(const char *a, const char *b) {
    int32_t la = gs_len(a), lb = gs_len(b);
    int c = memcmp(a, b, (size_t)(la < lb ? la : lb));
    return c ? c : (la > lb) - (la < lb);
}

sm_str_t gs_arena(broker_req_t *r, const char *g) {
    if (!g) return SM_STR_NULL;
    char *p = sm_arena_alloc(&r->arena, (size_t)gs_len(g) + 1);
    if (!p) return SM_STR_NULL;
    memcpy(p, g, (size_t)gs_len(g) + 1);
    return (sm_str_t){p, gs_len(g)};
}

char *group_dupstr(sm_str_t s) { return gs_new(s.ptr, s.len); }

bool group_streq(const char *g, sm_str_t s) {
    if (!g) return s.len < 0;
    return s.len == gs_len(g) && memcmp(g, s.ptr, (size_t)s.len) == 0;
}

sm_str_t group_S(const char *g) { return g ? (sm_str_t){g, gs_len(g)} : SM_STR_NULL; }

sm_str_t group_S0(const char *g) { return g ? group_S(g) : SM_STR_LIT(""); }

int32_t group_partition_for(sm_str_t id, int32_t partitions) {
    /* Java's String.hashCode over UTF-16 code units; group ids are ASCII in
     * practice, and bytes >= 0x80 are taken as Latin-1 like Kafka's own
     * tooling would see them after decoding. */
    int32_t h = 0;
    for (int32_t i = 0; i < id.len; i++)
        h = (int32_t)((uint32_t)h * 31u + (uint8_t)id.ptr[i]);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return a % partitions;
}

/* ---------------------------------------------------------------- shards */

group_shard_t *group_shard_for(group_coordinator_t *c, sm_str_t group_id) {
    sm_str_t id = group_id.len < 0 ? SM_STR_LIT("") : group_id;
    return &c->shards[group_partition_for(id, c->nshards)];
}

group_t *group_get(group_shard_t *s, sm_str_t id) {
    return id.len < 0 ? NULL : sm_map_get(&s->groups, id.ptr, (size_t)id.len);
}

group_t *group_get_or_create(group_shard_t *s, sm_str_t id) {
    group_t *g = group_get(s, id);
    if (g || id.len < 0) return g;
    g = calloc(1, sizeof(*g));
    if (!g || !(g->id = group_dupstr(id))) {
        free(g);
        return NULL;
    }
    sm_map_init(&g->offsets);
    g->state = GROUP_EMPTY;
    g->state_ts = group_wall_ms();
    if (sm_map_put(&s->groups, id.ptr, (size_t)id.len, g)) {
        gs_free(g->id);
        free(g);
        return NULL;
    }
    return g;
}

void group_remove(group_shard_t *s, group_t *g) {
    sm_map_del(&s->groups, g->id, (size_t)gs_len(g->id));
    group_free(g);
}

/* Whether s serves its groups now (caller holds s->mu): loaded for the
 * latest leadership asked for. */
static bool shard_serves(group_shard_t *s) {
    return s->state == SHARD_LOADED && s->loaded_gen == atomic_load(&s->gen);
}

int16_t group_shard_error(group_shard_t *s) {
    if (shard_serves(s))
        return atomic_load(&s->failed) ? PROTO_ERR_NOT_COORDINATOR : PROTO_ERR_NONE;
    /* A leadership this broker got is being loaded (or about to be), unless
     * that load failed. */
    unsigned gen = atomic_load(&s->gen);
    return atomic_load(&s->want_led) && s->load_failed_gen != gen
               ? PROTO_ERR_COORDINATOR_LOAD_IN_PROGRESS
               : PROTO_ERR_NOT_COORDINATOR;
}

/* ---------------------------------------------------------------- writes */

int16_t group_append(group_coordinator_t *c, group_shard_t *s, group_rec_t *recs, int n,
                     int64_t *end) {
    return group_append_txn(c, s, recs, n, -1, -1, end);
}

int16_t group_append_txn(group_coordinator_t *c, group_shard_t *s, group_rec_t *recs, int n,
                         int64_t producer_id, int16_t producer_epoch, int64_t *end) {
    *end = 0;
    if (n == 0) return PROTO_ERR_NONE;
    if (!shard_serves(s) || atomic_load(&s->failed)) return PROTO_ERR_NOT_COORDINATOR;
    uint8_t *batch;
    size_t len;
    if (group_batch_build(recs, n, group_wall_ms(), producer_id, producer_epoch, &batch, &len))
        return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    int rc = c->host.append(c->host.ctx, s->partition, batch, len, end);
    free(batch);
    if (rc == SM_OK) return PROTO_ERR_NONE;
    *end = 0;
    sm_warn("group", "append to partition %d of the offsets topic failed: %s", s->partition,
            sm_strerror(rc));
    /* Kafka answers a missing partition with COORDINATOR_NOT_AVAILABLE and a
     * storage error with NOT_COORDINATOR. */
    return rc == SM_ERR_NOTFOUND ? PROTO_ERR_COORDINATOR_NOT_AVAILABLE : PROTO_ERR_NOT_COORDINATOR;
}

typedef struct answer {
    group_coordinator_t *c;
    group_shard_t *s;
    broker_req_t *r;
    group_answer_fn fn;
    unsigned gen; /* the shard's gen when the records were written */
} answer_t;

static void answer_done(void *arg, int status) {
    answer_t *a = arg;
    group_coordinator_t *c = a->c;
    /* A write of a leadership since given up fails nothing of a later one. */
    if (status != SM_OK && a->gen == atomic_load(&a->s->gen) &&
        !atomic_exchange(&a->s->failed, true))
        sm_error("group",
                 "partition %d of the offsets topic is not durable (%s): its groups are "
                 "out of service until restart",
                 a->s->partition, sm_strerror(status));
    a->fn(a->r, status != SM_OK ? PROTO_ERR_NOT_COORDINATOR : PROTO_ERR_NONE);
    free(a);
    pthread_mutex_lock(&c->tmu);
    if (--c->inflight == 0) pthread_cond_broadcast(&c->tcv);
    pthread_mutex_unlock(&c->tmu);
}

void group_answer_after(group_coordinator_t *c, group_shard_t *s, int64_t end, broker_req_t *r,
                        group_answer_fn fn) {
    if (end <= 0) {
        fn(r, PROTO_ERR_NONE);
        return;
    }
    answer_t *a = malloc(sizeof(*a));
    if (!a) {
        fn(r, PROTO_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    *a = (answer_t){c, s, r, fn, atomic_load(&s->gen)};
    pthread_mutex_lock(&c->tmu);
    c->inflight++;
    pthread_mutex_unlock(&c->tmu);
    c->host.when_durable(c->host.ctx, s->partition, end, answer_done, a);
}

/* ---------------------------------------------------------------- timer */

void group_timer_kick(group_coordinator_t *c) {
    pthread_mutex_lock(&c->tmu);
    c->twake = true;
    pthread_cond_broadcast(&c->tcv); /* the loader waits on tcv too */
    pthread_mutex_unlock(&c->tmu);
}

static void *timer_main(void *arg) {
    group_coordinator_t *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->tmu);
        bool stop = c->stopping;
        c->twake = false;
        pthread_mutex_unlock(&c->tmu);
        if (stop) break;
        int64_t now = group_now_ms(), next = now + 1000;
        bool retention = now >= c->next_retention_check;
        if (retention) c->next_retention_check = now + c->retention_check_ms;
        if (c->next_retention_check < next) next = c->next_retention_check;
        for (int32_t i = 0; i < c->nshards; i++) {
            group_shard_t *s = &c->shards[i];
            pthread_mutex_lock(&s->mu);
            if (shard_serves(s) && !atomic_load(&s->failed)) {
                if (retention) group_offsets_expire(c, s, group_wall_ms());
                size_t it = 0;
                void *v;
                while (sm_map_next(&s->groups, &it, NULL, NULL, &v)) {
                    if (((group_t *)v)->cg)
                        group_consumer_tick(c, s, v, now, &next);
                    else
                        group_classic_tick(c, s, v, now, &next);
                }
            }
            pthread_mutex_unlock(&s->mu);
        }
        pthread_mutex_lock(&c->tmu);
        if (!c->twake && !c->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = next - group_now_ms();
            if (wait < 1) wait = 1;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&c->tcv, &c->tmu, &ts);
        }
        pthread_mutex_unlock(&c->tmu);
    }
    return NULL;
}

/* ---------------------------------------------------------------- start/stop */

static void load_one(void *arg, sm_bytes_t key, sm_bytes_t value, int64_t txn_pid) {
    group_load_record(arg, key, value, txn_pid);
}

static void load_marker(void *arg, int64_t producer_id, bool commit) {
    group_shard_t *s = arg;
    group_txn_offsets_complete(&s->txn, producer_id, s->partition, commit, group_offsets_apply_txn,
                               s);
}

void group_coordinator_txn_marker(group_coordinator_t *c, int32_t partition, int64_t producer_id,
                                  bool commit) {
    if (partition < 0 || partition >= c->nshards) return;
    group_shard_t *s = &c->shards[partition];
    pthread_mutex_lock(&s->mu);
    if (shard_serves(s)) {
        group_txn_offsets_complete(&s->txn, producer_id, partition, commit, group_offsets_apply_txn,
                                   s);
    } else if (atomic_load(&s->want_led) && s->load_failed_gen != atomic_load(&s->gen)) {
        /* A load is pending or running and may have read past this marker's
         * offset already: kept for when the shard is installed (a marker
         * applied twice finds nothing pending the second time). A shard not
         * led here reads it from the log if it is ever loaded. */
        group_shard_marker_t *mk = malloc(sizeof(*mk));
        if (mk) {
            *mk = (group_shard_marker_t){producer_id, commit, s->markers};
            s->markers = mk;
        } else {
            sm_error("group",
                     "partition %d of the offsets topic: a transaction marker is lost "
                     "while loading (out of memory)",
                     partition);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- loading */

/* A load or unload of one shard, queued by elect / resign for the loader. */
typedef struct group_load_job {
    int32_t partition;
    int32_t leader_epoch;
    unsigned gen;
    bool load;
    struct group_load_job *next;
} group_load_job_t;

static void shard_markers_free(group_shard_t *s) {
    while (s->markers) {
        group_shard_marker_t *n = s->markers->next;
        free(s->markers);
        s->markers = n;
    }
}

void group_shard_state_free(sm_map_t *groups, group_txn_offsets_t *txn) {
    size_t it = 0;
    void *v;
    while (sm_map_next(groups, &it, NULL, NULL, &v))
        group_free(v);
    sm_map_free(groups);
    group_txn_offsets_free(txn);
}

/* Takes the shard's groups out (under s->mu): parked requests are answered
 * with err, the state is handed to the caller to free outside the lock. */
static void shard_detach(group_shard_t *s, int16_t err, sm_map_t *groups,
                         group_txn_offsets_t *txn) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&s->groups, &it, NULL, NULL, &v))
        group_classic_abort(v, err);
    *groups = s->groups;
    *txn = s->txn;
    sm_map_init(&s->groups);
    group_txn_offsets_init(&s->txn);
}

static void load_one(void *arg, sm_bytes_t key, sm_bytes_t value, int64_t txn_pid);
static void load_marker(void *arg, int64_t producer_id, bool commit);

/* A shard's groups were just read: their members' sessions start now, as
 * Kafka's coordinator schedules them when a partition is loaded (caller holds
 * s->mu, or owns s before the timer starts). */
static void shard_loaded(group_shard_t *s) {
    int64_t now = group_now_ms();
    size_t it = 0;
    void *v;
    while (sm_map_next(&s->groups, &it, NULL, NULL, &v)) {
        if (((group_t *)v)->cg)
            group_consumer_loaded(v, now);
        else
            group_classic_loaded(v, now);
    }
}

/* Reads partition j->partition into a private shard, then installs it when no
 * elect / resign came meanwhile. Loader thread, no lock held while reading. */
static void run_load(group_coordinator_t *c, const group_load_job_t *j) {
    group_shard_t *s = &c->shards[j->partition];
    pthread_mutex_lock(&s->mu);
    bool current = atomic_load(&s->gen) == j->gen;
    if (current) {
        s->state = SHARD_LOADING;
        s->leader_epoch = j->leader_epoch;
    }
    pthread_mutex_unlock(&s->mu);
    if (!current) return; /* a later elect / resign is queued */
    group_shard_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.partition = j->partition;
    sm_map_init(&tmp.groups);
    group_txn_offsets_init(&tmp.txn);
    int64_t t0 = group_now_ms();
    group_reader_t reader = {load_one, load_marker, &tmp};
    int rc = c->host.read_all(c->host.ctx, j->partition, &reader);
    sm_map_t old;
    group_txn_offsets_t old_txn;
    sm_map_init(&old);
    group_txn_offsets_init(&old_txn);
    pthread_mutex_lock(&s->mu);
    current = atomic_load(&s->gen) == j->gen;
    if (current && rc != SM_OK) {
        /* The partition is not here (or unreadable): no coordinator for it
         * until the next leadership change. */
        s->state = SHARD_UNLOADED;
        s->load_failed_gen = j->gen;
        shard_markers_free(s);
        pthread_mutex_unlock(&s->mu);
        sm_warn("group", "partition %d of the offsets topic cannot be loaded: %s", j->partition,
                sm_strerror(rc));
        group_shard_state_free(&tmp.groups, &tmp.txn);
        return;
    }
    if (!current) {
        pthread_mutex_unlock(&s->mu);
        group_shard_state_free(&tmp.groups, &tmp.txn);
        return;
    }
    shard_detach(s, PROTO_ERR_NOT_COORDINATOR, &old, &old_txn);
    s->groups = tmp.groups;
    s->txn = tmp.txn;
    /* Markers that arrived while loading, oldest first. */
    group_shard_marker_t *rev = NULL;
    while (s->markers) {
        group_shard_marker_t *n = s->markers->next;
        s->markers->next = rev;
        rev = s->markers;
        s->markers = n;
    }
    for (group_shard_marker_t *m = rev; m; m = m->next)
        group_txn_offsets_complete(&s->txn, m->producer_id, s->partition, m->commit,
                                   group_offsets_apply_txn, s);
    s->markers = rev;
    shard_markers_free(s);
    shard_loaded(s);
    atomic_store(&s->failed, false);
    s->state = SHARD_LOADED;
    s->loaded_gen = j->gen;
    size_t ngroups = sm_map_size(&s->groups);
    int32_t epoch = s->leader_epoch;
    pthread_mutex_unlock(&s->mu);
    group_shard_state_free(&old, &old_txn);
    sm_info("group",
            "partition %d of the offsets topic loaded (leader epoch %d): %zu groups in %lld ms",
            j->partition, epoch, ngroups, (long long)(group_now_ms() - t0));
    group_timer_kick(c);
}

/* Drops an unloaded shard's groups; parked requests get NOT_COORDINATOR. */
static void run_unload(group_coordinator_t *c, const group_load_job_t *j) {
    group_shard_t *s = &c->shards[j->partition];
    sm_map_t old;
    group_txn_offsets_t old_txn;
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->gen) != j->gen) {
        /* a later elect / resign is queued: it installs or drops */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->state = SHARD_UNLOADED;
    shard_markers_free(s);
    shard_detach(s, PROTO_ERR_NOT_COORDINATOR, &old, &old_txn);
    pthread_mutex_unlock(&s->mu);
    size_t n = sm_map_size(&old);
    group_shard_state_free(&old, &old_txn);
    sm_info("group", "partition %d of the offsets topic unloaded (%zu groups dropped)",
            j->partition, n);
}

static void *loader_main(void *arg) {
    group_coordinator_t *c = arg;
    pthread_mutex_lock(&c->tmu);
    for (;;) {
        while (!c->jobs && !c->stopping)
            pthread_cond_wait(&c->tcv, &c->tmu);
        if (c->stopping) break;
        group_load_job_t *j = c->jobs;
        c->jobs = j->next;
        if (!c->jobs) c->jobs_tail = NULL;
        pthread_mutex_unlock(&c->tmu);
        if (j->load)
            run_load(c, j);
        else
            run_unload(c, j);
        free(j);
        pthread_mutex_lock(&c->tmu);
    }
    pthread_mutex_unlock(&c->tmu);
    return NULL;
}

/* Asks for shard p to be loaded (load) or dropped: bumps its gen, so work
 * queued before is stale, and queues the loader's work. Takes only tmu: the
 * metadata applier calls it holding the image lock, which handlers take
 * under a shard's mu. */
static void shard_transition(group_coordinator_t *c, int32_t p, int32_t leader_epoch, bool load) {
    if (p < 0 || p >= c->nshards) {
        sm_warn("group",
                "partition %d of the offsets topic is beyond the %d this broker "
                "coordinates (offsets.topic.num.partitions): ignored",
                p, c->nshards);
        return;
    }
    group_shard_t *s = &c->shards[p];
    group_load_job_t *j = malloc(sizeof(*j));
    atomic_store(&s->want_led, load && j);
    unsigned gen = atomic_fetch_add(&s->gen, 1) + 1;
    if (!j) {
        sm_error("group", "partition %d of the offsets topic: out of memory, not loaded", p);
        return;
    }
    *j = (group_load_job_t){p, leader_epoch, gen, load, NULL};
    pthread_mutex_lock(&c->tmu);
    if (c->jobs_tail)
        c->jobs_tail->next = j;
    else
        c->jobs = j;
    c->jobs_tail = j;
    pthread_cond_broadcast(&c->tcv);
    pthread_mutex_unlock(&c->tmu);
}

void group_coordinator_elect(group_coordinator_t *c, int32_t partition, int32_t leader_epoch) {
    shard_transition(c, partition, leader_epoch, true);
}

void group_coordinator_resign(group_coordinator_t *c, int32_t partition) {
    shard_transition(c, partition, -1, false);
}

/* group.consumer.assignors: short names or Kafka's class names. */
static void read_assignors(group_coordinator_t *c, const char *list) {
    c->nassignors = 0;
    for (const char *p = list ? list : ""; *p && c->nassignors < 2;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *name = NULL;
        if ((n == 7 && strncmp(p, "uniform", 7) == 0) ||
            (n > 15 && memmem(p, n, "UniformAssignor", 15)))
            name = "uniform";
        else if ((n == 5 && strncmp(p, "range", 5) == 0) ||
                 (n > 13 && memmem(p, n, "RangeAssignor", 13)))
            name = "range";
        if (name) snprintf(c->assignors[c->nassignors++], sizeof(c->assignors[0]), "%s", name);
        p += n + (e ? 1 : 0);
    }
    if (!c->nassignors) snprintf(c->assignors[c->nassignors++], sizeof(c->assignors[0]), "uniform");
}

int group_coordinator_new(const group_host_t *host, int32_t partitions, const sm_config_t *cfg,
                          bool load_all, group_coordinator_t **out) {
    if (partitions <= 0) return SM_ERR;
    group_coordinator_t *c = calloc(1, sizeof(*c));
    if (!c) return SM_ERR_NOMEM;
    c->host = *host;
    c->shards = calloc((size_t)partitions, sizeof(*c->shards));
    if (!c->shards) {
        free(c);
        return SM_ERR_NOMEM;
    }
    c->nshards = partitions;
    for (int32_t i = 0; i < partitions; i++) {
        pthread_mutex_init(&c->shards[i].mu, NULL);
        c->shards[i].partition = i;
        sm_map_init(&c->shards[i].groups);
        group_txn_offsets_init(&c->shards[i].txn);
    }
    pthread_mutex_init(&c->tmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->tcv, &ca);
    pthread_condattr_destroy(&ca);
    c->initial_delay = sm_config_int(cfg, "group.initial.rebalance.delay.ms");
    c->min_session = sm_config_int(cfg, "group.min.session.timeout.ms");
    c->max_session = sm_config_int(cfg, "group.max.session.timeout.ms");
    c->max_size = sm_config_int(cfg, "group.max.size");
    c->retention_ms = sm_config_is_set(cfg, "samsa.offsets.retention.ms")
                          ? sm_config_long(cfg, "samsa.offsets.retention.ms")
                          : (int64_t)sm_config_int(cfg, "offsets.retention.minutes") * 60000;
    c->retention_check_ms = sm_config_long(cfg, "offsets.retention.check.interval.ms");
    c->next_retention_check = group_now_ms() + c->retention_check_ms;
    read_assignors(c, sm_config_str(cfg, "group.consumer.assignors"));
    c->consumer_session = sm_config_int(cfg, "group.consumer.session.timeout.ms");
    c->consumer_heartbeat = sm_config_int(cfg, "group.consumer.heartbeat.interval.ms");
    c->consumer_max_size = sm_config_int(cfg, "group.consumer.max.size");
    const char *policy = sm_config_str(cfg, "group.consumer.migration.policy");
    c->migrate_up = !policy || !strcasecmp(policy, "bidirectional") || !strcasecmp(policy, "upgrade");
    c->migrate_down =
        !policy || !strcasecmp(policy, "bidirectional") || !strcasecmp(policy, "downgrade");
    size_t ngroups = 0;
    for (int32_t i = 0; load_all && i < partitions; i++) {
        group_reader_t reader = {load_one, load_marker, &c->shards[i]};
        c->host.read_all(c->host.ctx, i, &reader);
        shard_loaded(&c->shards[i]);
        c->shards[i].state = SHARD_LOADED;
        ngroups += sm_map_size(&c->shards[i].groups);
    }
    if (ngroups) sm_info("group", "loaded %zu groups from __consumer_offsets", ngroups);
    if (pthread_create(&c->loader, NULL, loader_main, c)) {
        c->stopping = true;
        group_coordinator_free(c);
        return SM_ERR;
    }
    c->loader_started = true;
    if (pthread_create(&c->timer, NULL, timer_main, c)) {
        c->stopping = true;
        group_coordinator_free(c);
        return SM_ERR;
    }
    c->timer_started = true;
    *out = c;
    return SM_OK;
}

void group_coordinator_stop(group_coordinator_t *c) {
    if (!c) return;
    pthread_mutex_lock(&c->tmu);
    c->stopping = true;
    pthread_cond_broadcast(&c->tcv);
    pthread_mutex_unlock(&c->tmu);
    if (c->timer_started) pthread_join(c->timer, NULL);
    c->timer_started = false;
    if (c->loader_started) pthread_join(c->loader, NULL);
    c->loader_started = false;
    /* (The metadata applier may still queue work until the cluster stops.) */
    pthread_mutex_lock(&c->tmu);
    while (c->jobs) {
        group_load_job_t *n = c->jobs->next;
        free(c->jobs);
        c->jobs = n;
    }
    c->jobs_tail = NULL;
    pthread_mutex_unlock(&c->tmu);
    for (int32_t i = 0; i < c->nshards; i++) {
        group_shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        atomic_store(&s->stopping, true);
        size_t it = 0;
        void *v;
        while (sm_map_next(&s->groups, &it, NULL, NULL, &v))
            group_classic_abort(v, PROTO_ERR_COORDINATOR_NOT_AVAILABLE);
        pthread_mutex_unlock(&s->mu);
    }
}

void group_coordinator_free(group_coordinator_t *c) {
    if (!c) return;
    group_coordinator_stop(c);
    /* Answers waiting for a flush come from the host's threads. */
    pthread_mutex_lock(&c->tmu);
    while (c->inflight > 0)
        pthread_cond_wait(&c->tcv, &c->tmu);
    pthread_mutex_unlock(&c->tmu);
    for (int32_t i = 0; i < c->nshards; i++) {
        group_shard_t *s = &c->shards[i];
        group_shard_state_free(&s->groups, &s->txn);
        shard_markers_free(s);
        pthread_mutex_destroy(&s->mu);
    }
    free(c->shards);
    pthread_cond_destroy(&c->tcv);
    pthread_mutex_destroy(&c->tmu);
    free(c);
}

void group_coordinator_swap_host(group_coordinator_t *c, const group_host_t *h, group_host_t *old) {
    for (int32_t i = 0; i < c->nshards; i++)
        pthread_mutex_lock(&c->shards[i].mu);
    if (old) *old = c->host;
    c->host = *h;
    for (int32_t i = c->nshards; i-- > 0;)
        pthread_mutex_unlock(&c->shards[i].mu);
}
