/*
 * Internals shared by the cluster module's files (cluster.c: the quorum thread, the Raft
 * driver and the applier; peer.c: connections to the other voters; serve.c: the controller
 * listener and the worker; brokers.c: registration, heartbeats and fencing). Not a public
 * interface.
 */
#ifndef CLUSTER_CLUSTER_IMPL_H
#define CLUSTER_CLUSTER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/arena.h"
#include "cluster/cluster.h"
#include "storage/log.h"

#define CL_MOD "cluster"

enum {
    CL_API_FETCH = 1,
    CL_API_API_VERSIONS = 18,
    CL_API_CREATE_TOPICS = 19,
    CL_API_ELECT_LEADERS = 43,
    CL_API_VOTE = 52,
    CL_API_BEGIN_EPOCH = 53,
    CL_API_END_EPOCH = 54,
    CL_API_DESCRIBE_QUORUM = 55,
    CL_API_ALTER_PARTITION = 56,
    CL_API_FETCH_SNAPSHOT = 59,
    CL_API_BROKER_REGISTRATION = 62,
    CL_API_BROKER_HEARTBEAT = 63,
    CL_API_ALLOCATE_PRODUCER_IDS = 67,
    CL_API_ADD_RAFT_VOTER = 80,
    CL_API_REMOVE_RAFT_VOTER = 81,
    CL_API_UPDATE_RAFT_VOTER = 82,
};

/* The versions this node sends. */
enum {
    CL_V_VOTE = 2,
    CL_V_BEGIN_EPOCH = 1,
    CL_V_END_EPOCH = 1,
    CL_V_FETCH = 17,
    CL_V_FETCH_SNAPSHOT = 1,
    CL_V_REGISTRATION = 3,
    CL_V_HEARTBEAT = 1,
    CL_V_CREATE_TOPICS = 7,
    CL_V_ALLOCATE_PRODUCER_IDS = 0,
    CL_V_ALTER_PARTITION = 3,
};

/* A byte buffer with a read position. */
typedef struct cl_buf {
    uint8_t *p;
    size_t len, cap, off;
} cl_buf_t;

int cl_buf_reserve(cl_buf_t *b, size_t more);
void cl_buf_free(cl_buf_t *b);

struct cl_out;

/* A request relayed to the controller: a client's (nreq) or an internal call's (frame).
 * States: waiting (not sent: no controller known or connected yet, or retry_at not reached)
 * -> sent (out is its attempt on the controller's connection) -> answered, or back to
 * waiting when the attempt fails: the connection drops, the answer says NOT_CONTROLLER,
 * another controller becomes known, or it goes unanswered for CL_FWD_ATTEMPT_MS. A waiting
 * relay past its deadline is answered with REQUEST_TIMED_OUT (a client's) or fails (an
 * internal call). Relays are kept in arrival order (cl->fwds) and sent in that order. */
typedef struct cl_fwd {
    struct cl_fwd *next;
    net_request_t *nreq; /* client request; its frame is the request */
    uint8_t *frame;      /* internal call: the request frame (no size prefix), owned */
    size_t len;
    int32_t orig_corr;
    int16_t api_key, version;
    int64_t deadline;
    bool sent;          /* on a peer connection now */
    struct cl_out *out; /* the attempt in flight while sent (its fwd points back here) */
    int32_t sent_to;    /* the controller it went to */
    int64_t sent_at;
    int64_t retry_at; /* not sent again before (after a NOT_CONTROLLER answer) */
    int attempts;
    /* internal call result (under cl->mu) */
    bool done;
    uint8_t *resp; /* response frame without size prefix; NULL on failure */
    size_t resp_len;
} cl_fwd_t;

typedef enum {
    CL_OUT_RAFT = 1,
    CL_OUT_FORWARD,
    CL_OUT_REGISTER,
    CL_OUT_HEARTBEAT,
    CL_OUT_ALTER,
} cl_out_kind_t;

/* An AlterPartition this broker sends for one of its partitions (partitions.c). Freed when
 * its request is answered or fails; done is called once (a timeout may call it first). */
typedef struct cl_alter {
    struct cl_alter *next; /* in cl->alters while on the wire */
    sm_uuid_t topic_id;
    int32_t partition, leader_epoch, partition_epoch, n_isr;
    int32_t *isr;
    int64_t *epochs;
    cluster_alter_partition_cb done;
    void *arg;
    bool called;
    int64_t deadline;
} cl_alter_t;

/* An ElectLeaders or AlterPartitionReassignments run on the quorum thread for a worker that
 * waits (partitions.c): parts, or re when a reassignment. */
typedef struct cl_elect {
    int8_t type;
    cluster_election_t *parts;
    int n;
    cluster_reassignment_t *re;
    int n_re;
    int status;
    bool done;
    struct cl_waiter *w;
} cl_elect_t;

/* A request this node sent on a peer connection, awaiting its response. */
typedef struct cl_out {
    struct cl_out *next;
    int32_t corr;
    cl_out_kind_t kind;
    int16_t api_key, version;
    raft_msg_kind_t resp_kind; /* CL_OUT_RAFT */
    uint64_t raft_corr;
    bool pre_vote;
    cl_fwd_t *fwd; /* CL_OUT_FORWARD; NULL once the relay gave this attempt up */
    cl_alter_t *alter; /* CL_OUT_ALTER */
} cl_out_t;

/* Where a node's controller listener is: from controller.quorum.voters, the voter set in
 * the log, or a leader's endpoint learned from a Fetch answer (NodeEndpoints). */
typedef struct cl_addr {
    int32_t id;
    char host[256];
    int32_t port;
} cl_addr_t;

#define CL_MAX_PEERS (4 * RAFT_MAX_VOTERS)

/* An outbound connection to a voter's controller listener. Each voter gets two: one for
 * Raft and one for controller requests (relays, registration, heartbeats). Responses come
 * back in request order on a connection, and a relayed CreateTopics is answered only once
 * its records commit, which needs this node's Fetch answered: on one connection they would
 * wait for each other. */
typedef struct cl_peer {
    int32_t id;
    bool control;
    char host[256];
    int32_t port;
    int fd; /* -1: not connected */
    bool connecting;
    cl_buf_t wbuf, rbuf;
    cl_out_t *pending;
    int32_t next_corr;
    int64_t retry_at;
    bool logged_down;
} cl_peer_t;

typedef enum {
    CL_IN_RAFT = 1,   /* a Raft request from another node (msg) */
    CL_IN_REGISTER,   /* BrokerRegistration (body) */
    CL_IN_HEARTBEAT,  /* BrokerHeartbeat (body) */
    CL_IN_DESCRIBE,   /* DescribeQuorum */
    CL_IN_PROPOSE,    /* a controller operation's records (waiter) */
    CL_IN_FORWARD,    /* a request to relay to the controller (fwd) */
    CL_IN_ALTER,      /* AlterPartition from a partition leader (body) */
    CL_IN_ALTER_SEND, /* this broker's AlterPartition to send (alter) */
    CL_IN_ELECT,      /* ElectLeaders from the worker (elect) */
    CL_IN_VOTERS,     /* AddRaftVoter / RemoveRaftVoter / UpdateRaftVoter (body) */
} cl_in_kind_t;

typedef struct cl_waiter cl_waiter_t;

/* Work handed to the quorum thread. */
typedef struct cl_in {
    struct cl_in *next;
    cl_in_kind_t kind;
    net_request_t *nreq;
    int16_t api_key, version;
    int32_t corr;
    sm_arena_t arena;
    raft_msg_t msg;
    void *body;
    cl_waiter_t *w;
    cl_fwd_t *fwd;
    cl_alter_t *alter;
    cl_elect_t *elect;
} cl_in_t;

/* A controller operation waiting for its records to commit and apply. */
struct cl_waiter {
    struct cl_waiter *next;
    sm_bytes_t *values; /* framed metadata records (copied) */
    int n;
    int64_t first, last; /* offsets once proposed */
    int status;
    bool done;
};

/* An inbound request answered by the quorum thread later: by Raft (matched by raft_corr) or
 * once the applier passes offset (a registration). */
typedef struct cl_inbound {
    struct cl_inbound *next;
    uint64_t raft_corr;
    int64_t offset;
    net_request_t *nreq;
    int16_t api_key, version;
    int32_t corr;
    int64_t at;
    int64_t broker_epoch;
    uint8_t *frame; /* a prepared response (size prefix included), else a registration's */
    size_t frame_len;
} cl_inbound_t;

/* Controller side: what the active controller knows of each broker's liveness. */
typedef struct cl_liveness {
    int32_t id;
    int64_t last_heartbeat; /* monotonic ms */
    int64_t pending;        /* last offset of a change proposed for it, -1 none */
} cl_liveness_t;

#define CL_MAX_BROKERS 256

struct cluster {
    cluster_opts_t o;
    raft_t *raft;
    log_t *log;
    char quorum_state_path[4200];
    int32_t voter_ids[RAFT_MAX_VOTERS];
    int epfd, evfd;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    /* cluster_forward_close: clients' relays are closed, not sent (the client listeners stop) */
    atomic_bool fwd_closed;

    pthread_mutex_t mu; /* inbox, waiters' done/status, fwd results, the shared view below */
    pthread_cond_t cv;  /* waiters and calls */
    cl_in_t *inbox, *inbox_tail;

    /* The voter set in force, for other threads (under mu; the quorum thread updates it). */
    raft_voter_set_t voters_view;

    /* The shared view (atomics: read by any thread). */
    atomic_int leader_id;
    atomic_bool active;
    atomic_llong applied; /* last applied offset, -1 none */

    /* Quorum thread only. */
    cl_peer_t peers[CL_MAX_PEERS]; /* made on first use (cl_peer) */
    int n_peers;
    cl_addr_t learned[RAFT_MAX_VOTERS]; /* leaders' endpoints from Fetch answers */
    int n_learned;
    cl_inbound_t *voter_changes; /* KIP-853 answers held until their record commits */
    cl_inbound_t *inbound;   /* Raft requests awaiting Raft's answer */
    cl_inbound_t *after;     /* answers waiting for the applier */
    cl_waiter_t *waiters;
    cl_fwd_t *fwds;          /* relays not yet answered, oldest first */
    uint64_t next_raft_corr;
    int64_t apply_next;      /* next offset to apply */
    int64_t epoch_start;     /* leader: offset of its epoch's LeaderChange; -1 */
    int32_t leader_epoch;    /* epoch epoch_start belongs to */
    bool need_flush;
    /* applier: an open metadata transaction */
    bool in_txn;
    sm_bytes_t *txn_vals;
    int64_t *txn_offs;
    int txn_n, txn_cap;
    /* broker agent */
    sm_uuid_t incarnation;
    int64_t broker_epoch;          /* -1: not registered */
    atomic_llong registered_epoch; /* the last accepted registration's epoch (-1: none) */
    bool reg_inflight, hb_inflight;
    /* when and to which controller the one in flight went: one sent to a controller that
     * lost its place, or unanswered for the request timeout (a paused process keeps its
     * connection open), is given up and sent again to the current one */
    int64_t reg_sent_at, hb_sent_at;
    int32_t reg_sent_to, hb_sent_to;
    int64_t next_agent_at;
    bool want_shutdown, shutdown_acked;
    /* starting -> serving (once, never back): the image holds this broker's registration
     * unfenced at its current broker epoch, so every record committed before it registered
     * is applied here; opts.on_serving has run (the client listeners open) */
    bool serving;
    /* controller side */
    cl_liveness_t live[CL_MAX_BROKERS];
    int n_live;
    int64_t next_fence_check;
    /* Last offset of a partition change proposed here: decisions about partitions wait
     * until it is applied, so that each is made on the state the previous one left. */
    int64_t part_pending;
    /* Of those, the last of a change that may touch many partitions (fencing, elections,
     * reassignments), and the partitions AlterPartitions changed since everything was
     * applied (20-byte keys: topic id, partition): an AlterPartition waits only for these. */
    int64_t bulk_pending;
    sm_map_t touched;
    cl_in_t *deferred, *deferred_tail; /* AlterPartition / ElectLeaders waiting for it */
    int64_t next_rebalance_at;
    atomic_llong unclean_elections; /* leaders elected outside the ISR */
    cl_alter_t *alters;             /* this broker's AlterPartitions on the wire */

    /* controller listener and worker (controller role) */
    net_server_t *net;
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    struct cl_work *work, *work_tail;
};

typedef struct cl_work {
    struct cl_work *next;
    net_request_t *nreq;
} cl_work_t;

/* A growing list of framed metadata records for one change. */
typedef struct cl_recs {
    sm_bytes_t *v;
    int n, cap;
    bool oom;
} cl_recs_t;

/* cluster.c */
void cl_wake(cluster_t *cl);
void cl_push(cluster_t *cl, cl_in_t *in);
int64_t cl_now(void);
/* Proposes framed records (quorum thread, active controller); *last gets the last offset. */
int cl_propose_records(cluster_t *cl, const sm_bytes_t *values, int n, int64_t *first,
                       int64_t *last);
/* Encodes body (api's request or response desc) into a malloc'ed frame: size prefix,
 * header, body. */
int cl_encode_frame(const proto_msg_desc_t *desc, int16_t api_key, int16_t version,
                    int32_t corr, bool response, const void *body, const char *client_id,
                    uint8_t **out, size_t *len);
/* Responds on nreq with body encoded as api_key's response at version. */
void cl_respond(net_request_t *nreq, int16_t api_key, int16_t version, int32_t corr,
                const void *body);
/* Responds with raw bytes (a frame with its size prefix, malloc'ed; freed when sent). */
void cl_respond_raw(net_request_t *nreq, uint8_t *frame, size_t len);

/* peer.c */
void cl_peers_init(cluster_t *cl);
void cl_peers_close(cluster_t *cl);
/* The Raft (control = false) or controller-request connection to voter id. */
cl_peer_t *cl_peer(cluster_t *cl, int32_t id, bool control);
/* Queues a request frame (size prefix included, corr set by the peer) on p; takes frame. */
int cl_peer_send(cluster_t *cl, cl_peer_t *p, uint8_t *frame, size_t len, cl_out_t *out);
bool cl_peer_ready(cluster_t *cl, cl_peer_t *p, int64_t now);
void cl_peer_event(cluster_t *cl, cl_peer_t *p, uint32_t events);
void cl_peers_arm(cluster_t *cl);
/* Sends a Raft request message to its voter. */
void cl_send_raft(cluster_t *cl, const raft_msg_t *m);
/* A relay's whole life (Kafka's forwarding retry timeout) and one attempt's (Kafka's
 * controller.socket.timeout.ms default), both from the broker's receipt of the request, and
 * the pause before one answered NOT_CONTROLLER is sent again. */
#define CL_FWD_TIMEOUT_MS 60000
#define CL_FWD_ATTEMPT_MS 30000
#define CL_FWD_BACKOFF_MS 100

/* Sends a relayed request to the controller when known and connected; false when it is
 * still waiting. */
bool cl_fwd_try(cluster_t *cl, cl_fwd_t *f, int64_t now);
/* The controller's answer to a relay's attempt (f is sent again when it says NOT_CONTROLLER
 * and the deadline allows). */
void cl_fwd_answer(cluster_t *cl, cl_fwd_t *f, const uint8_t *resp, size_t len, int64_t now);
/* Gives up f's attempt in flight (its late answer is dropped): f waits again. */
void cl_fwd_abandon(cl_fwd_t *f);
/* Completes f with resp (NULL: failed) and frees it when it is a client's. */
void cl_fwd_finish(cluster_t *cl, cl_fwd_t *f, const uint8_t *resp, size_t len);

/* voters.c */
void cl_voters_request(cluster_t *cl, cl_in_t *in, int64_t now);
void cl_voters_tick(cluster_t *cl, int64_t now);
void cl_voters_close(cluster_t *cl);

/* peer.c: a Fetch answer named the leader's endpoint */
void cl_peer_learn(cluster_t *cl, int32_t id, const char *host, int32_t port);

/* serve.c */
int cl_serve_start(cluster_t *cl);
void cl_serve_stop(cluster_t *cl);
/* Queues a request for the worker (a forwarded admin request run by the controller). */
void cl_work_push(cluster_t *cl, net_request_t *nreq);
void cl_answer_describe(cluster_t *cl, net_request_t *nreq, int16_t version, int32_t corr);
/* Decodes a voter change (AddRaftVoter, ...) and queues it for the quorum thread. */
void cl_serve_voters(cluster_t *cl, net_request_t *nreq);

/* brokers.c */
void cl_agent_tick(cluster_t *cl, int64_t now);
/* When the broker agent next wants to run while it is starting (INT64_MAX otherwise): the
 * quorum thread wakes for it. */
int64_t cl_agent_deadline(const cluster_t *cl);
void cl_agent_response(cluster_t *cl, cl_out_t *o, sm_reader_t *r, sm_arena_t *a);
void cl_agent_failed(cluster_t *cl, cl_out_t *o);
/* A BrokerRegistration; false when in was kept (deferred: an unclean shutdown's partition
 * changes wait until the earlier ones are applied). */
bool cl_ctrl_register(cluster_t *cl, cl_in_t *in, int64_t now);
void cl_ctrl_heartbeat(cluster_t *cl, cl_in_t *in, int64_t now);
void cl_ctrl_tick(cluster_t *cl, int64_t now);
void cl_ctrl_became_active(cluster_t *cl, int64_t now);
void cl_recs_add(cl_recs_t *rs, int16_t type, int16_t version, const void *msg);
void cl_recs_free(cl_recs_t *rs);

/* partitions.c */
typedef enum { CL_LEAD_FENCE, CL_LEAD_SHUTDOWN, CL_LEAD_UNFENCE, CL_LEAD_UNCLEAN_SHUTDOWN } cl_lead_t;
/* The PartitionChangeRecords broker id's fencing, controlled shutdown, unfencing or
 * registration after an unclean shutdown implies (meta_partition_elect_elr /
 * meta_partition_unclean_shutdown on every partition it is a replica of). */
void cl_leadership_changes(cluster_t *cl, cl_recs_t *rs, int32_t id, cl_lead_t how);
/* True while a partition change proposed here is not applied yet. */
bool cl_partitions_busy(cluster_t *cl);
/* Keeps in until cl_partitions_tick tries it again (ElectLeaders, AlterPartition,
 * BrokerRegistration). */
void cl_partitions_defer(cluster_t *cl, cl_in_t *in);
/* Controller side of AlterPartition / ElectLeaders; false when in was kept (deferred). */
bool cl_ctrl_alter_partition(cluster_t *cl, cl_in_t *in);
/* A newly arrived AlterPartition: behind the waiting ones, else decided now. */
bool cl_ctrl_alter_partition_new(cluster_t *cl, cl_in_t *in);
bool cl_ctrl_elect(cluster_t *cl, cl_in_t *in);
/* Broker side: sends a queued AlterPartition; its answer or failure. */
void cl_alter_send(cluster_t *cl, cl_alter_t *a, int64_t now);
void cl_alter_response(cluster_t *cl, cl_out_t *o, sm_reader_t *r, sm_arena_t *a);
void cl_alter_failed(cluster_t *cl, cl_out_t *o);
/* Deferred requests, AlterPartition timeouts, the leader imbalance check. */
void cl_partitions_tick(cluster_t *cl, int64_t now);
/* At stop: every deferred request and AlterPartition finished. */
void cl_partitions_stop(cluster_t *cl);

#endif
