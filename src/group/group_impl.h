/*
 * The group coordinator's internal types, shared by its parts: the runtime
 * (runtime.c: shards, the write path, timers, loading), the records of
 * __consumer_offsets (records.c), the classic protocol (classic.c), the
 * consumer protocol (consumer.c) and its assignors (assignor.c), committed
 * offsets (offsets.c) and the admin views (admin.c). Not a public API:
 * the broker sees coordinator.h only.
 *
 * Locks: each shard's mu guards its groups; the timer's tmu guards only the
 * timer's wake flag. Order: a shard's mu, then tmu; no code holds two shards.
 * The host's own locks (a partition's, the flusher's) are taken inside host
 * calls only.
 */
#ifndef GROUP_IMPL_H
#define GROUP_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/map.h"
#include "broker/broker.h"
#include "group/coordinator.h"
#include "group/host.h"
#include "group/txn_offsets.h"

#define GROUP_MAX_METADATA 4096

/* States of a classic group (see classic.c for the machine). */
enum { GROUP_EMPTY = 0, GROUP_PREPARING, GROUP_COMPLETING, GROUP_STABLE, GROUP_DEAD };
extern const char *const group_state_names[];

typedef struct group_protocol {
    char *name;
    uint8_t *meta;
    int32_t meta_len;
} group_protocol_t;

typedef struct group_member {
    char *id;
    char *instance_id; /* NULL: dynamic member */
    char *client_id;
    char *client_host;
    int32_t session_timeout;
    int32_t rebalance_timeout;
    int nprotocols;
    group_protocol_t *protocols;
    uint8_t *assignment;
    int32_t assignment_len;
    int64_t last_seen;
    broker_req_t *join_req;
    broker_req_t *sync_req;
    struct group_member *next;
} group_member_t;

typedef struct group_offset {
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int64_t commit_ts;
} group_offset_t;

typedef struct group_pending_id {
    char *id;
    int64_t expires;
    struct group_pending_id *next;
} group_pending_id_t;

/* A consumer group's (KIP-848) partition sets: sorted, no duplicates. */
typedef struct group_tp {
    sm_uuid_t topic;
    int32_t p;
} group_tp_t;
typedef struct group_tps {
    group_tp_t *v;
    int n, cap;
} group_tps_t;

typedef struct group_cmember {
    char *id;
    char *instance_id; /* NULL: dynamic member */
    char *rack, *client_id, *client_host;
    char *assignor; /* server assignor the member asks for, or NULL */
    char *regex;    /* SubscribedTopicRegex, or NULL */
    struct sm_regex *re;
    char **topics; /* subscribed topic names (with a regex: the topics it matches, sorted) */
    int ntopics;
    int32_t epoch, prev_epoch; /* epoch -2: a static member that left */
    int32_t rebalance_timeout;
    int state;            /* consumer.c: CM_STABLE, CM_UNREVOKED, CM_UNRELEASED */
    group_tps_t assigned; /* what the member owns */
    group_tps_t revoking; /* what it must give up (UNREVOKED) */
    group_tps_t target;   /* what the assignor gave it */
    int64_t last_seen, revoke_deadline;
    bool send_assignment; /* assigned changed since the last answer */
    /* A classic member inside a consumer group (migration.c): it speaks
     * JoinGroup/SyncGroup/Heartbeat; nprotocols == 0 for consumer-protocol
     * members. Its session is its own session_timeout. */
    int32_t session_timeout;
    int nprotocols;
    group_protocol_t *protocols;
    struct group_cmember *next;
} group_cmember_t;

typedef struct group_cgroup {
    int32_t epoch, assignment_epoch;
    uint64_t topics_hash; /* subscribed topics' ids and partition counts */
    group_cmember_t *members;
    int nmembers;
} group_cgroup_t;

typedef struct group {
    char *id;
    group_cgroup_t *cg; /* non-NULL: a consumer group (KIP-848), classic fields unused */
    int state;
    char *protocol_type;
    char *protocol;
    int32_t generation;
    char *leader;
    group_member_t *members;
    int nmembers;
    group_pending_id_t *pending; /* member ids handed out with MEMBER_ID_REQUIRED */
    sm_map_t offsets;            /* "topic" NUL int32 partition -> group_offset_t* */
    int64_t rebalance_deadline;
    int64_t rebalance_max; /* initial-delay window may not pass this */
    int64_t state_ts;
    int64_t write_end; /* log end after this group's last append: answers wait for it */
} group_t;

/* A shard's place in this broker (runtime.c): single-node brokers load every
 * shard at start; in a cluster a shard follows its partition's leadership.
 * group_coordinator_elect / _resign only record what is wanted (want_led, a
 * new gen) and queue the loader's work, which moves the state:
 *
 *   UNLOADED --loader starts an elect's load--> LOADING --log read--> LOADED
 *   LOADING / LOADED --loader runs a resign--> UNLOADED
 *
 * A shard serves its groups only when LOADED for the latest gen asked for;
 * otherwise requests get COORDINATOR_LOAD_IN_PROGRESS while a leadership is
 * wanted (want_led) and NOT_COORDINATOR when not. Only a serving shard's
 * groups are read, written or ticked. */
enum { SHARD_UNLOADED = 0, SHARD_LOADING, SHARD_LOADED };

/* A transaction marker that reached a LOADING shard: applied when it loads. */
typedef struct group_shard_marker {
    int64_t producer_id;
    bool commit;
    struct group_shard_marker *next;
} group_shard_marker_t;

/* One partition of __consumer_offsets and the groups that live in it. */
typedef struct group_shard {
    pthread_mutex_t mu;
    int32_t partition;
    int state;            /* SHARD_*, under mu */
    int32_t leader_epoch; /* of the leadership that loaded (or loads) it, under mu */
    /* Bumped at each elect and resign (by the metadata applier, without mu):
     * work started for an older value is stale. */
    atomic_uint gen;
    atomic_bool want_led;          /* the last of elect / resign was elect */
    unsigned loaded_gen;           /* the gen the LOADED state was installed for, under mu */
    unsigned load_failed_gen;      /* a gen whose load failed (NOT_COORDINATOR then), under mu */
    group_shard_marker_t *markers; /* markers seen while LOADING, newest first */
    sm_map_t groups;
    /* A flush of this partition failed: its log is offline, the shard
     * answers NOT_COORDINATOR until the broker restarts and reloads it. Set
     * from flush callbacks without mu, read under mu. */
    atomic_bool failed;
    atomic_bool stopping;    /* the coordinator stops: no request parks any more */
    group_txn_offsets_t txn; /* TxnOffsetCommit offsets of this partition awaiting markers */
} group_shard_t;

struct group_coordinator {
    group_host_t host;
    group_shard_t *shards;
    int32_t nshards;
    /* settings */
    int32_t initial_delay;
    int32_t min_session, max_session, max_size;
    int64_t retention_ms;       /* offsets.retention.minutes (or samsa.offsets.retention.ms) */
    int64_t retention_check_ms; /* offsets.retention.check.interval.ms */
    char assignors[2][16];      /* group.consumer.assignors, short names */
    int nassignors;
    int32_t consumer_session, consumer_heartbeat, consumer_max_size;
    bool migrate_up, migrate_down; /* group.consumer.migration.policy */
    /* timer */
    pthread_mutex_t tmu;
    pthread_cond_t tcv;
    bool twake, stopping;
    int inflight; /* answers waiting for the host's durability callback */
    pthread_t timer;
    bool timer_started;
    /* The loader thread (cluster mode): loads and unloads shards in the order
     * elect / resign asked, off the event loops. Its queue is under tmu. */
    struct group_load_job *jobs, *jobs_tail;
    pthread_t loader;
    bool loader_started;
    int64_t next_retention_check;
};

/* A record of __consumer_offsets: "int16 version + message" key and value. */
typedef struct group_rec {
    uint8_t *key;
    size_t key_len;
    uint8_t *value; /* NULL: tombstone */
    size_t value_len;
} group_rec_t;

/* ---- runtime.c ---- */
int64_t group_now_ms(void); /* monotonic, for deadlines */
/* A request's client id and client host ("/address"), as group strings. */
void group_client_of(broker_req_t *r, char **client_id, char **client_host);
int64_t group_wall_ms(void); /* wall clock, for records */
/* Group strings (every string a group keeps): NUL-safe, their length kept
 * before the bytes (gs_len); made by gs_new / group_dupstr / gs_copy /
 * gs_cstr, freed by gs_free, compared by gs_eq / group_streq. */
char *gs_new(const char *p, int32_t len); /* len < 0: NULL */
int32_t gs_len(const char *g);
void gs_free(char *g);
char *gs_copy(const char *g);
char *gs_cstr(const char *c);
bool gs_eq(const char *a, const char *b);          /* false when either is NULL */
int gs_cmp(const char *a, const char *b);          /* byte order; neither NULL */
sm_str_t gs_arena(broker_req_t *r, const char *g); /* a copy in r's arena */
char *group_dupstr(sm_str_t s);
bool group_streq(const char *g, sm_str_t s);
sm_str_t group_S(const char *g);  /* NULL: a null string */
sm_str_t group_S0(const char *g); /* NULL: "" */

group_shard_t *group_shard_for(group_coordinator_t *c, sm_str_t group_id);
group_t *group_get(group_shard_t *s, sm_str_t id);
group_t *group_get_or_create(group_shard_t *s, sm_str_t id);
void group_remove(group_shard_t *s, group_t *g);
/* Frees the groups and pending transactional offsets of a detached shard
 * state (or of a shard nothing else uses). */
void group_shard_state_free(sm_map_t *groups, group_txn_offsets_t *txn);
/* Tells the timer thread a deadline moved. */
void group_timer_kick(group_coordinator_t *c);

/*
 * The write path. group_append writes records of g to s's partition (caller
 * holds s->mu) and returns a Kafka error: on error nothing was written and the
 * caller leaves its state as it was. On success *end is the log end after the
 * records; the caller applies the change at once (state follows log order),
 * sets the group's write_end, then answers through group_answer_after.
 */
int16_t group_append(group_coordinator_t *c, group_shard_t *s, group_rec_t *recs, int n,
                     int64_t *end);
/* group_append as a transactional batch of the producer (TxnOffsetCommit). */
int16_t group_append_txn(group_coordinator_t *c, group_shard_t *s, group_rec_t *recs, int n,
                         int64_t producer_id, int16_t producer_epoch, int64_t *end);
/* Fills err (when not NONE) into r's response, then sends it. */
typedef void (*group_answer_fn)(broker_req_t *r, int16_t err);
/* Answers r through fn once the partition is durable up to end (at once
 * when end <= 0, nothing is pending, or the broker does not fsync before
 * acknowledging). fn may run on this thread or on a flusher thread later, with
 * no lock held there: it must not touch group state. */
void group_answer_after(group_coordinator_t *c, group_shard_t *s, int64_t end, broker_req_t *r,
                        group_answer_fn fn);
/* The error a request to a shard gets before anything is done: NONE, or
 * NOT_COORDINATOR for a shard whose log failed. Caller holds s->mu. */
int16_t group_shard_error(group_shard_t *s);

/* ---- records.c ---- */
size_t group_offset_key(char *buf, size_t cap, sm_str_t topic, int32_t partition);
int group_offset_record(sm_str_t group, sm_str_t topic, int32_t partition, const group_offset_t *e,
                        group_rec_t *r);
/* The GroupMetadata record of g as it would be with the given generation,
 * protocol, leader and (when members) its members with assignments assign[i]
 * (in member list order; NULL: their current ones). tombstone: null value. */
typedef struct group_meta_view {
    int32_t generation;
    const char *protocol;
    const char *leader;
    bool members;
    const sm_bytes_t *assign;
} group_meta_view_t;
int group_meta_record(const group_t *g, const group_meta_view_t *v, bool tombstone, group_rec_t *r);
void group_recs_free(group_rec_t *r, int n);
/* Builds one record batch of recs (malloc'd into *out); producer_id >= 0: a
 * transactional batch of that producer and epoch. */
int group_batch_build(const group_rec_t *recs, int n, int64_t ts, int64_t producer_id,
                      int16_t producer_epoch, uint8_t **out, size_t *len);
/* Applies one loaded record (newest wins) to shard s; txn_pid >= 0: a
 * transactional offset commit, pending until its marker. */
void group_load_record(group_shard_t *s, sm_bytes_t key, sm_bytes_t value, int64_t txn_pid);
/* Encodes a coordinator record key: "int16 record type + key at version 0"
 * (Kafka 4.4's form: the type is the key schema's apiKey). */
int group_encode_key(const char *key_msg, const void *key, uint8_t **out, size_t *len);
/* Encodes a value: "int16 version + value at that version". */
int group_encode_value(const char *value_msg, int16_t version, const void *value, uint8_t **out,
                       size_t *len);

/* ---- classic.c ---- */
void group_free(group_t *g);
group_member_t *group_member_find(group_t *g, sm_str_t id);
group_member_t *group_member_by_instance(group_t *g, sm_str_t instance);
/* Timer work of one group: rebalance deadline, session expiry, pending ids. */
void group_classic_tick(group_coordinator_t *c, group_shard_t *s, group_t *g, int64_t now,
                        int64_t *next);
/* Answers every parked request of g with err (stopping). */
void group_classic_abort(group_t *g, int16_t err);
/* g was just loaded: its members' sessions start now. */
void group_classic_loaded(group_t *g, int64_t now);
const char *group_classic_select_protocol(group_t *g);
/* A JoinGroup's error answer (member_id: a group string, or NULL). */
void group_classic_join_error(broker_req_t *r, int16_t err, const char *member_id);
/* group_answer_fn of SyncGroup (the answer is filled in already). */
void group_classic_sync_answer(broker_req_t *r, int16_t err);
/* Starts a join phase of g (a classic group with members). */
void group_classic_prepare_rebalance(group_coordinator_t *c, group_t *g);
void group_classic_member_free(group_member_t *m);
/* Copies a JoinGroup's protocols into a fresh array (*out, *n). */
int group_protocols_copy(const proto_join_group_request_join_group_request_protocol_array_t *in,
                         group_protocol_t **out, int *n);
void group_protocols_free(group_protocol_t *p, int n);

/* ---- consumer.c ---- */
void group_consumer_free(group_cgroup_t *cg);
const char *group_consumer_state(const group_t *g);
/* A consumer group member's epoch check (TxnOffsetCommit): exact. */
int16_t group_consumer_commit_epoch(group_t *g, sm_str_t member_id, int32_t epoch);
int16_t group_consumer_commit_allowed(group_coordinator_t *c, group_t *g,
                                      const proto_offset_commit_request_t *req);
/* Replays one consumer group record (key version kv, key after the version). */
void group_consumer_load(group_shard_t *s, int16_t kv, sm_reader_t *kr, sm_bytes_t value,
                         sm_arena_t *a);
void group_consumer_tick(group_coordinator_t *c, group_shard_t *s, group_t *g, int64_t now,
                         int64_t *next);
/* g was just loaded: its members' sessions (and revocation deadlines) start now. */
void group_consumer_loaded(group_t *g, int64_t now);
/* The consumer group machinery migration.c drives (see consumer.c). */
group_cgroup_t *group_cg_clone(const group_cgroup_t *cg);
group_cmember_t *group_cg_member(group_cgroup_t *cg, sm_str_t id);
group_cmember_t *group_cg_member_by_instance(group_cgroup_t *cg, sm_str_t instance);
void group_cg_remove(group_cgroup_t *cg, group_cmember_t *m); /* frees m, bumps the epoch */
void group_cg_member_free(group_cmember_t *m);
int group_cg_refresh(group_coordinator_t *c, group_cgroup_t *cg);
/* Moves m toward its target; owned: what it reports owning (NULL: unknown). */
void group_cg_reconcile(group_cgroup_t *cg, group_cmember_t *m, const group_tps_t *owned);
/* True when m waits for a partition of its target another member holds. */
bool group_cg_waiting(group_cgroup_t *cg, const group_cmember_t *m);
/* Writes pre (n records, first) and what changed in g->cg since old, then
 * keeps the change; on a failed append restores old. Takes old. */
int16_t group_cg_commit(group_coordinator_t *c, group_shard_t *s, group_t *g, group_cgroup_t *old,
                        const group_rec_t *pre, int npre);
/* Appends to recs the tombstones that delete consumer group g->cg. */
int group_cg_tombstones(const group_t *g, group_rec_t **recs, int *n);
char *group_cg_new_member_id(void);
int group_tps_add(group_tps_t *s, group_tp_t tp);
void group_tps_sort(group_tps_t *s);

/* ---- assignor.c ---- */
/* Reads the subscribed topics (partition counts, replica racks): a changed
 * metadata hash moves the group epoch (KIP-1101); when the epoch is past the
 * assignment epoch, recomputes every member's target with the preferred
 * assignor. */
int group_assignor_refresh(group_coordinator_t *c, group_cgroup_t *cg);
/* The assignor most members ask for, else the first of group.consumer.assignors. */
const char *group_assignor_preferred(const group_coordinator_t *c, const group_cgroup_t *cg);

/* ---- migration.c ---- */
/* A ConsumerGroupHeartbeat reached classic group g with members: converts
 * it when the policy allows (GROUP_ID_NOT_FOUND otherwise). */
int16_t group_migrate_upgrade(group_coordinator_t *c, group_shard_t *s, group_t *g);
/* True when fencing `leaving` leaves only classic members and the policy
 * allows g to become classic again. */
bool group_migrate_can_downgrade(group_coordinator_t *c, const group_t *g,
                                 const group_cmember_t *leaving);
/* Turns consumer group g into a classic group without `leaving`, which then
 * rebalances. Returns the append's error (g unchanged on error). */
int16_t group_migrate_downgrade(group_coordinator_t *c, group_shard_t *s, group_t *g,
                                const group_cmember_t *leaving);
/* The classic protocol's requests to a consumer group: each answers r. */
void group_migrate_join(group_coordinator_t *c, group_shard_t *s, group_t *g, broker_req_t *r,
                        const proto_join_group_request_t *req, int32_t rebalance_timeout);
void group_migrate_sync(group_coordinator_t *c, group_shard_t *s, group_t *g, broker_req_t *r,
                        const proto_sync_group_request_t *req);
int16_t group_migrate_heartbeat(group_t *g, const proto_heartbeat_request_t *req);
int16_t group_migrate_leave(group_coordinator_t *c, group_shard_t *s, group_t *g,
                            sm_str_t member_id, sm_str_t instance_id, int64_t *end);

/* ---- offsets.c ---- */
/* A committed transactional offset becomes the group's offset (shard's mu). */
void group_offsets_apply_txn(void *shard, const group_txn_offset_t *e);
void group_offsets_free(group_t *g);
/* KIP-211 expiry over one shard. */
void group_offsets_expire(group_coordinator_t *c, group_shard_t *s, int64_t now_wall);

#endif
