/*
 * Cluster mode: this node's part in a KRaft-style cluster. One quorum thread owns the Raft
 * state machine (src/raft), the metadata log __cluster_metadata-0 on disk and the
 * `quorum-state` file, talks to the other voters over their controller listeners, applies
 * committed metadata records to the image on every node, and runs both sides of broker
 * registration (BrokerRegistration, BrokerHeartbeat, fencing). A controller node also serves
 * its CONTROLLER listener on its own network thread, and a worker thread executes the admin
 * requests other brokers forward to it. Nothing here ever blocks on another node: requests
 * to the controller are queued and answered asynchronously.
 *
 * Threads and ownership:
 *   quorum thread   raft_t, the metadata log, peer connections, the apply cursor
 *   controller net  decodes CONTROLLER-listener requests, queues them to the quorum thread
 *                   (Raft, registration, DescribeQuorum) or to the worker (admin)
 *   worker          runs forwarded admin requests through the broker's handlers; they block
 *                   until their records commit (cluster_append), which the quorum thread
 *                   completes
 *   any thread      cluster_append, cluster_forward, the cluster_* getters
 */
#ifndef CLUSTER_CLUSTER_H
#define CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "metadata/controller.h"
#include "metadata/image.h"
#include "net/net.h"
#include "raft/raft.h"

typedef struct cluster cluster_t;

typedef struct cluster_voter {
    int32_t id;
    char host[256];
    int32_t port;
} cluster_voter_t;

typedef struct cluster_opts {
    int32_t node_id;
    bool is_broker;     /* process.roles has broker */
    bool is_controller; /* process.roles has controller */
    cluster_voter_t voters[RAFT_MAX_VOTERS]; /* controller.quorum.voters (a static quorum) */
    int n_voters;
    /* KIP-853, a dynamic quorum: controller.quorum.bootstrap.servers (ids unused) instead of
     * voters; the voter set comes from the metadata log. directory_id: this node's
     * meta.properties directory.id, its voter key with node_id. */
    bool dynamic;
    cluster_voter_t bootstrap[RAFT_MAX_VOTERS];
    int n_bootstrap;
    uint8_t directory_id[16];
    char cluster_id[64];
    char metadata_dir[4096]; /* <first log dir>/__cluster_metadata-0 */
    /* The CONTROLLER listener (controller role). */
    char controller_listener[64];
    char controller_host[256];
    int32_t controller_port;
    net_opts_t net; /* limits for the controller listener (on_request/arg set here) */
    /* controller.quorum.* timeouts */
    int64_t election_timeout_ms, fetch_timeout_ms, election_backoff_max_ms, request_timeout_ms,
        retry_backoff_ms;
    int64_t snapshot_min_entries;  /* from metadata.log.max.record.bytes.between.snapshots */
    int64_t snapshot_interval_ms;  /* metadata.log.max.snapshot.interval.ms */
    int64_t heartbeat_interval_ms; /* broker.heartbeat.interval.ms */
    int64_t session_timeout_ms;    /* broker.session.timeout.ms */
    bool unclean_leader_election; /* unclean.leader.election.enable (a topic may override) */
    int32_t min_insync_replicas;  /* min.insync.replicas (a topic may override): the ELR's */
    bool auto_leader_rebalance;   /* auto.leader.rebalance.enable */
    int64_t leader_imbalance_check_ms; /* leader.imbalance.check.interval.seconds */
    int32_t leader_imbalance_pct;      /* leader.imbalance.per.broker.percentage */
    /* This broker's registration: endpoints (advertised), rack ("" for none). */
    meta_endpoint_t endpoints[META_MAX_ENDPOINTS];
    int n_endpoints;
    char rack[128];
    /* KIP-966: the broker epoch of the clean shutdown before this start (from the
     * clean-shutdown markers), -1 after an unclean one; sent as PreviousBrokerEpoch. */
    int64_t previous_broker_epoch;
    meta_image_t *image;
    meta_controller_t *controller;
    /* Runs a forwarded admin request on the worker thread: the broker decodes it, runs the
     * handler and responds on nreq (never forwarding it again). */
    void (*serve)(void *ctx, net_request_t *nreq);
    void *serve_ctx;
    /* Forwarding (cluster_forward), both on the quorum thread, never blocking: true when a
     * controller's answer (response frame without its size prefix) to api_key at version
     * says it is not the active controller, so the relay is sent again; and the answer, with
     * error in every result, of a client's request whose deadline passed (serve_ctx). */
    bool (*forward_stale)(const uint8_t *resp, size_t len, int16_t api_key, int16_t version);
    void (*forward_fail)(void *ctx, net_request_t *nreq, int16_t error);
    /* A broker's start-up, as Kafka's BrokerServer: it registers, catches up with the metadata
     * log up to its registration (the controller's log end when it registered), is unfenced,
     * and only then serves clients. Run once on the quorum thread at that moment (the broker
     * opens its client listeners); must not block. */
    void (*on_serving)(void *ctx);
} cluster_opts_t;

/* Reads process.roles-related settings; see broker.c. Starts the threads and the controller
 * listener. *out and the controller's quorum.ctx are set before any thread starts (the
 * broker's handlers read them concurrently: both atomic). Logs and returns an error when
 * the metadata log or quorum-state file cannot be used. */
int cluster_start(const cluster_opts_t *o, cluster_t *_Atomic *out);
/* Graceful stop: a broker asks to be fenced (controlled shutdown) and a leader resigns, each
 * waited for up to a few seconds; then the threads stop and the log closes. */
void cluster_stop(cluster_t *cl);
/* The broker epoch of this broker's last accepted registration, -1 when none (the one a
 * clean shutdown records for the next start). */
int64_t cluster_broker_epoch(cluster_t *cl);

/* meta_quorum_t.append in cluster mode: proposes the records of batch (wrapped in a
 * Begin/EndTransactionRecord pair when more than one) and blocks until they are committed
 * and applied here. SM_ERR_AGAIN when this node is not the active controller (or stops
 * being it before they commit). */
int cluster_append(void *cl, uint8_t *batch, size_t len, int64_t *base_offset);
/* True on the active controller: the Raft leader whose epoch's first entry is applied. */
bool cluster_is_active(void *cl);

/* Sends a client's request (an admin API the controller serves, or DescribeQuorum) to the
 * active controller and relays its answer on nreq; served here when this node is it. As
 * Kafka's forwarding channel, it is sent again to the current controller while the answer
 * says NOT_CONTROLLER, the connection to the controller drops, another controller becomes
 * known or an attempt goes unanswered for 30 s, until 60 s after it arrived; then the client
 * is answered REQUEST_TIMED_OUT. Relays go to the controller in arrival order. */
void cluster_forward(cluster_t *cl, net_request_t *nreq);

/* Before the client listeners stop: every client's relay, waiting or on the wire, and any
 * that comes later is closed by the quorum thread at once (the listeners' grace period sees
 * them complete; a relay must not outlive its connection's server). Any thread. */
void cluster_forward_close(cluster_t *cl);

/* The current controller (Raft leader) id, or -1. */
int32_t cluster_controller_id(cluster_t *cl);
/* Highest metadata offset applied here, -1 when none. */
int64_t cluster_applied_offset(cluster_t *cl);

/* The remote halves of meta_quorum_t (CreateTopics / AllocateProducerIds sent to the active
 * controller, waited for). */
void cluster_remote_create_topic(void *cl, sm_str_t name, int32_t partitions,
                                 int16_t replication_factor, const meta_config_kv_t *configs,
                                 int32_t nconfigs, meta_result_t *res);
void cluster_remote_allocate_producer_ids(void *cl, int32_t count, int64_t *first,
                                          meta_result_t *res);

/*
 * Replication (issue 13): a partition leader asks the active controller to change the ISR
 * (AlterPartition v3). isr holds the proposed in-sync replicas with the broker epoch each
 * one sent in its replica fetches (-1 when unknown). Queued, never blocking: done runs
 * exactly once on the quorum thread (it must not block) with Kafka's error code
 * (NONE, FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, INELIGIBLE_REPLICA,
 * NOT_CONTROLLER, REQUEST_TIMED_OUT, UNKNOWN_TOPIC_OR_PARTITION, ...) and, on NONE, the
 * partition state the controller committed. Returns SM_OK when queued (done will run),
 * else an error (done will not run).
 */
typedef void (*cluster_alter_partition_cb)(void *arg, int16_t error, int32_t leader_epoch,
                                           int32_t partition_epoch, const int32_t *isr,
                                           int32_t n_isr);
SM_MUST_CHECK int cluster_alter_partition(cluster_t *cl, const sm_uuid_t *topic_id,
                                          int32_t partition, int32_t leader_epoch,
                                          int32_t partition_epoch, const int32_t *isr,
                                          const int64_t *broker_epochs, int32_t n_isr,
                                          cluster_alter_partition_cb done, void *arg);

/*
 * ElectLeaders (KIP-460) on the active controller, from the worker thread: type 0 PREFERRED,
 * 1 UNCLEAN, for each of parts (topic id and partition; error filled with Kafka's code:
 * NONE, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
 * UNKNOWN_TOPIC_OR_PARTITION). The caller lists the partitions (all of them for a null list).
 * Blocks until the elections are committed and applied. SM_ERR_AGAIN: not the active
 * controller.
 */
typedef struct cluster_election {
    sm_uuid_t topic_id;
    int32_t partition;
    int16_t error;
} cluster_election_t;
int cluster_elect_leaders(cluster_t *cl, int8_t type, cluster_election_t *parts, int n);
/*
 * AlterPartitionReassignments (KIP-455) on the active controller, from the worker thread:
 * each of parts moves to its replicas (NULL: cancels its ongoing reassignment); error and
 * message filled with Kafka's answer per partition. Blocks until committed and applied.
 * SM_ERR_AGAIN: not the active controller.
 */
typedef struct cluster_reassignment {
    sm_uuid_t topic_id;
    int32_t partition;
    const int32_t *replicas; /* NULL: cancel */
    int32_t n;
    int16_t error;
    char message[160];
} cluster_reassignment_t;
int cluster_alter_reassignments(cluster_t *cl, cluster_reassignment_t *parts, int n);
/* Leaders elected from outside the ISR (unclean.leader.election.enable) by this controller. */
int64_t cluster_unclean_elections(cluster_t *cl);

/* Parses controller.quorum.voters ("id@host:port,..."); one line to err on failure. */
int cluster_parse_voters(const char *list, cluster_voter_t *out, int *n, char *err, size_t cap);
/* Parses controller.quorum.bootstrap.servers ("host:port,..."; ids are set to -1). */
int cluster_parse_bootstrap(const char *list, cluster_voter_t *out, int *n, char *err,
                            size_t cap);
/* `samsa-server --format --standalone` (Kafka's `kafka-storage format --standalone`): writes
 * the bootstrap checkpoint (00000000000000000000-0000000000.checkpoint) of metadata_dir
 * holding kraft.version 1 and a voter set of this one controller. Fails when the metadata
 * directory already holds a log or a snapshot. */
int cluster_format_standalone(const char *metadata_dir, int32_t node_id,
                              const uint8_t directory_id[16], const char *listener,
                              const char *host, int32_t port);
/* The cluster id a node formats itself with when none is given: derived from the voter set,
 * so nodes started on empty directories with the same voters agree without a format step. */
void cluster_default_id(const cluster_voter_t *v, int n, char out[23]);

#endif
