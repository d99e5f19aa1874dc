/*
 * The Raft quorum of the metadata log, as KRaft (Kafka 4.4) runs it: a pure state machine.
 * The caller feeds it inbound messages (raft_step), time (raft_tick) and completions
 * (raft_log_flushed, raft_snapshot_created), and drains an ordered outbox (raft_poll) of
 * actions: quorum-state writes, log appends and truncations, messages to send, commit
 * notifications, snapshot requests. It never does I/O, never reads a clock, and draws its
 * election jitter from a seed the caller gives. States, transitions and invariants: the top
 * of raft.c, docs/raft.md. Not thread-safe: one owner calls everything.
 */
#ifndef RAFT_RAFT_H
#define RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_VOTERS 16
#define RAFT_MAX_OBSERVERS 32
#define RAFT_NO_NODE (-1)
#define RAFT_CLUSTER_ID_MAX 32
/* Destination of a Fetch to the k-th bootstrap server (its node id is not known). */
#define RAFT_BOOTSTRAP_NODE(k) (-2 - (k))
#define RAFT_BOOTSTRAP_INDEX(to) (-2 - (to))

typedef enum raft_state_kind {
    RAFT_UNATTACHED = 0, /* epoch known, leader not; maybe voted in this epoch */
    RAFT_PROSPECTIVE,    /* pre-vote round at the current epoch (KIP-996) */
    RAFT_CANDIDATE,      /* epoch bumped, voted for itself, asking for votes */
    RAFT_LEADER,
    RAFT_FOLLOWER, /* knows the leader of its epoch and fetches from it */
    RAFT_RESIGNED, /* was leader of this epoch; stepping down (shutdown or lost quorum) */
} raft_state_kind_t;

/* (end offset, epoch): a log position as KRaft compares them (epoch first). */
typedef struct raft_offset_epoch {
    int64_t offset;
    int32_t epoch;
} raft_offset_epoch_t;

/* One log entry: a record (batch) of the metadata log. One entry takes one offset. */
typedef struct raft_entry {
    int32_t epoch;
    uint8_t control; /* RAFT_CONTROL_*: KRaft control records, not handed to the state machine */
    uint32_t len;
    uint8_t *data; /* owned by whoever holds the entry */
} raft_entry_t;

/* KRaft control records kept as entries. A KRaftVersion entry's data is a KRaftVersionRecord,
 * a Voters entry's data a VotersRecord (KIP-853), both as Kafka encodes their values. */
enum {
    RAFT_CONTROL_NONE = 0,
    RAFT_CONTROL_LEADER_CHANGE = 1,
    RAFT_CONTROL_KRAFT_VERSION = 2,
    RAFT_CONTROL_VOTERS = 3,
};

#define RAFT_HOST_MAX 64
#define RAFT_LISTENER_MAX 32

/* A voter as KIP-853 names it: id, directory id (meta.properties directory.id) and the
 * endpoint of its controller listener. */
typedef struct raft_voter {
    int32_t id;
    uint8_t dir[16];
    char listener[RAFT_LISTENER_MAX]; /* "" when unknown (a static voter) */
    char host[RAFT_HOST_MAX];
    uint16_t port;
} raft_voter_t;

typedef struct raft_voter_set {
    int n;
    raft_voter_t v[RAFT_MAX_VOTERS];
} raft_voter_set_t;

/* The quorum-state file (Kafka's `quorum-state`): written before anything depending on it. */
typedef struct raft_quorum_state {
    int32_t epoch;
    int32_t leader_id; /* RAFT_NO_NODE when unknown */
    int32_t voted_id;  /* RAFT_NO_NODE when no vote in this epoch */
} raft_quorum_state_t;

/* ---- messages (internal form; an adapter maps them onto the generated codecs) ---- */

typedef enum raft_msg_kind {
    RAFT_MSG_VOTE_REQ = 1,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_BEGIN_EPOCH_REQ,
    RAFT_MSG_BEGIN_EPOCH_RESP,
    RAFT_MSG_END_EPOCH_REQ,
    RAFT_MSG_END_EPOCH_RESP,
    RAFT_MSG_FETCH_REQ,
    RAFT_MSG_FETCH_RESP,
    RAFT_MSG_FETCH_SNAPSHOT_REQ,
    RAFT_MSG_FETCH_SNAPSHOT_RESP,
} raft_msg_kind_t;

typedef struct raft_msg {
    raft_msg_kind_t kind;
    int32_t from, to;
    uint64_t corr;     /* request id; a response echoes its request's */
    int32_t epoch;     /* sender's epoch (candidate epoch of a Vote; replica epoch of a pre-vote) */
    int16_t error;     /* responses: Kafka error code */
    int32_t leader_id; /* responses: the responder's known leader */
    /* responses: the leader's controller endpoint when the responder knows it (Kafka's
     * NodeEndpoints), so an observer that knows no voter can reach the leader; host ""
     * when unknown */
    char leader_host[RAFT_HOST_MAX];
    uint16_t leader_port;
    char cluster_id[RAFT_CLUSTER_ID_MAX];
    union {
        struct {
            bool pre_vote;
            raft_offset_epoch_t last; /* candidate's log end and last epoch */
        } vote_req;
        struct {
            bool pre_vote;
            bool granted;
        } vote_resp;
        struct {
            int32_t preferred[RAFT_MAX_VOTERS]; /* successors, best first */
            int n_preferred;
        } end_epoch_req;
        struct {
            int64_t fetch_offset;
            int32_t last_fetched_epoch;
            int64_t max_wait_ms;
            uint8_t dir[16]; /* the fetcher's directory id (ReplicaDirectoryId, v17) */
        } fetch_req;
        struct {
            int64_t high_watermark;
            int64_t log_start_offset;
            raft_offset_epoch_t diverging;   /* offset < 0: none */
            raft_offset_epoch_t snapshot_id; /* offset < 0: none */
            int64_t base_offset;             /* offset of entries[0] */
            raft_entry_t *entries;
            int n_entries;
        } fetch_resp;
        struct {
            raft_offset_epoch_t snapshot_id;
            int64_t position;
        } snap_req;
        struct {
            raft_offset_epoch_t snapshot_id;
            int64_t size;
            int64_t position;
            uint8_t *data;
            uint32_t len;
        } snap_resp;
    } u;
} raft_msg_t;

/* Deep copy (entries, snapshot bytes) and release of a message's owned parts. */
int raft_msg_clone(raft_msg_t *dst, const raft_msg_t *src);
void raft_msg_release(raft_msg_t *m);
const char *raft_msg_kind_name(raft_msg_kind_t k);
const char *raft_state_name(raft_state_kind_t s);

/* ---- the outbox ---- */

typedef enum raft_action_kind {
    /* Write and fsync the quorum-state file before executing any later action. */
    RAFT_ACT_PERSIST_STATE = 1,
    /* Append entries at `offset` to the log (write now; fsync and report with
     * raft_log_flushed when done). */
    RAFT_ACT_APPEND,
    /* Remove every entry at offset >= `offset` (durably) before later actions. */
    RAFT_ACT_TRUNCATE,
    RAFT_ACT_SEND,
    /* The high watermark moved to `offset`: entries below it are committed; apply them. */
    RAFT_ACT_COMMIT,
    /* Take a snapshot of the state machine at `snapshot` (end offset, epoch of the entry
     * before it) once applied that far; report with raft_snapshot_created. */
    RAFT_ACT_SNAPSHOT_REQUEST,
    /* Entries below `offset` are covered by a snapshot: the log may drop them. */
    RAFT_ACT_LOG_START,
    /* Follower fetching a snapshot: write `len` bytes at `position` of snapshot `snapshot`. */
    RAFT_ACT_SNAPSHOT_WRITE,
    /* The snapshot `snapshot` is complete: fsync it, load it into the state machine, drop
     * the whole log; the log now starts (and ends) at its end offset. */
    RAFT_ACT_SNAPSHOT_INSTALL,
    /* Informational: the known leader or epoch changed. */
    RAFT_ACT_LEADER_CHANGE,
} raft_action_kind_t;

typedef struct raft_action {
    raft_action_kind_t kind;
    raft_quorum_state_t state;   /* PERSIST_STATE, LEADER_CHANGE */
    int64_t offset;              /* APPEND (first offset), TRUNCATE, COMMIT, LOG_START */
    const raft_entry_t *entries; /* APPEND */
    int n_entries;
    raft_msg_t msg;               /* SEND */
    raft_offset_epoch_t snapshot; /* SNAPSHOT_* */
    /* SNAPSHOT_REQUEST of a dynamic quorum: the voter set in force at the snapshot's offset,
     * to be written into its header (NULL for a static quorum) */
    const raft_voter_set_t *voters;
    int64_t position;    /* SNAPSHOT_WRITE */
    const uint8_t *data; /* SNAPSHOT_WRITE */
    uint32_t len;
} raft_action_t;

/* ---- configuration ---- */

typedef struct raft_config {
    int32_t node_id;
    int32_t voters[RAFT_MAX_VOTERS]; /* controller.quorum.voters (a static quorum) */
    int n_voters;
    /* KIP-853, kraft.version 1: the voter set is the latest VotersRecord of the log (or the
     * snapshot / bootstrap checkpoint below it); voters[] is unused. n_bootstrap: how many
     * controller.quorum.bootstrap.servers an observer that knows no voter may ask; a Fetch to
     * the k-th is sent to RAFT_BOOTSTRAP_NODE(k) and the transport addresses it. */
    bool dynamic;
    int n_bootstrap;
    uint8_t directory_id[16]; /* this node's, sent in its Fetch requests */
    char cluster_id[RAFT_CLUSTER_ID_MAX];
    int64_t election_timeout_ms;     /* controller.quorum.election.timeout.ms (1000) */
    int64_t fetch_timeout_ms;        /* controller.quorum.fetch.timeout.ms (2000) */
    int64_t election_backoff_max_ms; /* controller.quorum.election.backoff.max.ms (1000) */
    int64_t request_timeout_ms;      /* controller.quorum.request.timeout.ms (2000) */
    int64_t retry_backoff_ms;        /* controller.quorum.retry.backoff.ms (20) */
    int64_t fetch_max_wait_ms;       /* long-poll of a follower's Fetch (500) */
    int max_fetch_entries;           /* entries per Fetch response */
    uint32_t snapshot_chunk_bytes;   /* bytes per FetchSnapshot response */
    int64_t snapshot_min_entries; /* metadata.log.max.record.bytes.between.snapshots, in entries */
    int64_t snapshot_interval_ms; /* metadata.log.max.snapshot.interval.ms (0: off) */
    uint64_t rng_seed;            /* election jitter; the caller seeds it */
    /* Reads bytes of a local snapshot to serve FetchSnapshot. Returns 0 and fills *n and
     * *size, or a negative status when the snapshot is gone. Synchronous. */
    int (*snapshot_read)(void *ctx, raft_offset_epoch_t id, int64_t position, uint8_t *buf,
                         uint32_t max, uint32_t *n, int64_t *size);
    void *ctx;
    /* Test-only switches that break a rule, to prove the simulation's checker catches it. */
    int test_bug;
} raft_config_t;

enum {
    RAFT_BUG_NONE = 0,
    RAFT_BUG_COMMIT_WITHOUT_MAJORITY = 1, /* the leader commits what it alone holds */
    RAFT_BUG_DOUBLE_VOTE = 2,             /* a voter grants a second vote in one epoch */
    RAFT_BUG_COMMIT_OLD_EPOCH = 3,        /* the high watermark moves by older epochs' entries */
    RAFT_BUG_SKIP_CONSISTENCY = 4,        /* the leader serves a Fetch without checking its epoch */
};

/* Kafka's defaults for the timing fields; the caller sets ids, voters, cluster id, seed. */
void raft_config_defaults(raft_config_t *c);

/* What a node recovered from disk at start: quorum-state file, latest snapshot, log. */
typedef struct raft_restore {
    raft_quorum_state_t state;
    bool have_state;
    const int32_t *state_voters; /* voters recorded in the quorum-state file */
    int n_state_voters;
    raft_offset_epoch_t snapshot; /* offset 0, epoch 0: none */
    /* dynamic quorum: the voter set in force at the log start (the snapshot's, or the
     * bootstrap checkpoint's of a standalone format); NULL or empty: none known yet */
    const raft_voter_set_t *voters;
    const raft_entry_t *entries; /* the durable log after the snapshot */
    int n_entries;
} raft_restore_t;

typedef struct raft raft_t;

/* Creates a node. Fails (SM_ERR_RANGE) when the configuration is unusable or the
 * quorum-state file's voter set disagrees with the configured one. */
int raft_new(const raft_config_t *cfg, const raft_restore_t *restore, int64_t now_ms, raft_t **out);
void raft_free(raft_t *r);

/* Feeds one inbound message (borrowed). Bad input is answered with Kafka's error codes. */
void raft_step(raft_t *r, int64_t now_ms, const raft_msg_t *msg);
/* Advances time: timeouts, retries, parked fetches, check-quorum, snapshot timing. */
void raft_tick(raft_t *r, int64_t now_ms);
/* The earliest time raft_tick has something to do. */
int64_t raft_next_deadline(const raft_t *r);
/* The log is durable up to `offset` (everything written when the fsync began). */
void raft_log_flushed(raft_t *r, int64_t now_ms, int64_t offset);
/* A snapshot requested by RAFT_ACT_SNAPSHOT_REQUEST is durable. */
void raft_snapshot_created(raft_t *r, int64_t now_ms, raft_offset_epoch_t id);
/* Leader only: appends an entry (data copied). Returns its offset in *offset, or
 * SM_ERR_AGAIN when this node is not an active leader. */
int raft_propose(raft_t *r, int64_t now_ms, const void *data, uint32_t len, int64_t *offset);
/* The transport saw the leader's connection fail (closed, refused): a follower stops
 * waiting out fetch.timeout.ms for it and no longer counts it as heard from, so the
 * followers that lost it too can elect another within the election timeout. Only
 * liveness depends on it: a wrong call costs an election, never safety. */
void raft_leader_unreachable(raft_t *r, int64_t now);
/* KIP-853 on the leader of a dynamic quorum: one change at a time, after the leader
 * committed an entry of its epoch and the previous change committed. Each appends a
 * VotersRecord that takes effect at once (commit then needs the new set's majority) and
 * returns Kafka's error code; on NONE, *offset is the record's offset and the change is done
 * once the high watermark passes it. A removed leader resigns once its removal commits.
 *   add: the new voter must be an observer that fetched up to the log end within
 *        fetch.timeout.ms (REQUEST_TIMED_OUT otherwise); DUPLICATE_VOTER if its id votes.
 *   remove: VOTER_NOT_FOUND unless (id, directory id) is a voter other than the last one.
 *   update: a voter's endpoint (same id and directory id), VOTER_NOT_FOUND otherwise. */
int16_t raft_add_voter(raft_t *r, int64_t now_ms, const raft_voter_t *v, int64_t *offset);
int16_t raft_remove_voter(raft_t *r, int64_t now_ms, int32_t id, const uint8_t dir[16],
                          int64_t *offset);
int16_t raft_update_voter(raft_t *r, int64_t now_ms, const raft_voter_t *v, int64_t *offset);
/* After executing SNAPSHOT_INSTALL of a dynamic quorum: the voter set the installed snapshot
 * holds (its VotersRecord), in force from the new log start. */
void raft_snapshot_voters(raft_t *r, const raft_voter_set_t *set);
/* The voter set in force (the latest in the log, committed or not); kraft.version. */
const raft_voter_set_t *raft_voters(const raft_t *r);
int16_t raft_kraft_version(const raft_t *r);

/* Graceful shutdown: a leader resigns (EndQuorumEpoch, preferred successors). */
void raft_resign(raft_t *r, int64_t now_ms);

/* Takes the next action; it stays valid until the next raft_poll or raft_free.
 * Returns false when the outbox is empty. */
bool raft_poll(raft_t *r, raft_action_t *out);

/* ---- introspection (DescribeQuorum, tests) ---- */
typedef struct raft_replica_info {
    int32_t id;
    int64_t log_end_offset; /* -1 unknown */
    int64_t last_fetch_ms;  /* -1 never */
    int64_t last_caught_up_ms;
    uint8_t dir[16]; /* directory id as its Fetch named it (zeros: unknown) */
} raft_replica_info_t;

typedef struct raft_quorum_info {
    int32_t leader_id, epoch;
    int64_t high_watermark;
    raft_replica_info_t voters[RAFT_MAX_VOTERS];
    int n_voters;
    raft_replica_info_t observers[RAFT_MAX_OBSERVERS];
    int n_observers;
} raft_quorum_info_t;

/* Leader: fills DescribeQuorum's answer; others: NOT_LEADER_OR_FOLLOWER (returned). */
int16_t raft_describe_quorum(const raft_t *r, raft_quorum_info_t *out);

raft_state_kind_t raft_state(const raft_t *r);
raft_quorum_state_t raft_quorum_state(const raft_t *r);
int64_t raft_high_watermark(const raft_t *r);
int64_t raft_log_start(const raft_t *r);
int64_t raft_log_end(const raft_t *r);
raft_offset_epoch_t raft_last_position(const raft_t *r);
/* The entry at offset (log_start <= offset < log_end), borrowed; NULL outside. */
const raft_entry_t *raft_entry_at(const raft_t *r, int64_t offset);
bool raft_is_voter(const raft_t *r);

/* Debug checker of the numbered invariants at the top of raft.c: 0, or the number of the
 * first one broken (and *why describes it). */
int raft_check_invariants(const raft_t *r, const char **why);

#endif
