/*
 * The broker: ties the network layer, the request codecs, the metadata image,
 * the controller and the partition logs together. One broker_t per process.
 * Handlers (broker/handlers/<api>.c) receive a broker_req_t holding the
 * decoded request and an initialised response body; they fill the response
 * and return a broker_outcome (apis.h).
 */
#ifndef BROKER_BROKER_H
#define BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/config.h"
#include "base/map.h"
#include "broker/apis.h"
#include "broker/repl_quota.h"
#include "metadata/controller.h"
#include "metadata/image.h"
#include "net/net.h"
#include "protocol/request.h"
#include "storage/log.h"
#include "storage/log_manager.h"

typedef struct broker broker_t;
typedef struct broker_partition broker_partition_t;
typedef struct broker_delayed broker_delayed_t;
typedef struct group_coordinator group_coordinator_t;
typedef struct txn_coordinator txn_coordinator_t;

#define BROKER_MAX_LISTENERS 16
#define BROKER_MAX_LOG_DIRS 64

/* One served listener: where it binds, the address given to clients that
 * connect through it, and its network server. */
typedef struct broker_listener {
    broker_t *b;
    char name[64];
    char host[256];
    int32_t port;
    char advertised_host[256];
    int32_t advertised_port;
    net_server_t *net;
    /* The controller listener's stand-in for requests brokers forwarded to this node:
     * they run here and are never forwarded again. */
    bool forwarded;
} broker_listener_t;

/* Settings the handlers read, resolved from the configuration at start.
 * advertised_*: the first listener's (for answers not tied to a connection). */
typedef struct broker_settings {
    int32_t node_id;
    bool cluster_mode; /* controller.quorum.voters set: a node of a Raft cluster */
    bool dynamic_quorum; /* controller.quorum.bootstrap.servers instead (KIP-853) */
    bool is_broker;    /* process.roles has broker (always outside cluster mode) */
    bool is_controller;
    char advertised_host[256];
    int32_t advertised_port;
    int32_t num_partitions;
    int16_t default_replication_factor;
    bool auto_create_topics;
    bool delete_topic_enable;
    int32_t message_max_bytes;
    bool log_append_time;
    int64_t timestamp_before_max_ms;
    int64_t timestamp_after_max_ms;
    int32_t fetch_max_bytes;
    bool fsync_before_ack;
    int32_t min_insync_replicas;
    /* Replication (replica.*, num.replica.fetchers; see replica.h). */
    int32_t replica_fetch_max_bytes;
    int32_t replica_fetch_response_max_bytes;
    int32_t replica_fetch_wait_max_ms;
    int32_t replica_fetch_min_bytes;
    int32_t replica_fetch_backoff_ms;
    int64_t replica_lag_time_max_ms;
    int32_t replica_socket_timeout_ms;
    int32_t num_replica_fetchers;
    bool rack_aware_selector; /* replica.selector.class is RackAwareReplicaSelector */
    int64_t producer_id_expiration_ms;
    int32_t fetch_session_slots; /* max.incremental.fetch.session.cache.slots */
} broker_settings_t;

/* One request in flight. Lives in its own arena, freed after the response is
 * handed to the network layer (or dropped). */
struct broker_req {
    broker_t *b;
    sm_arena_t arena;
    proto_request_t req;               /* header and decoded body */
    int16_t version;                   /* == req.header.request_api_version */
    void *resp;                        /* response body (api's response type), initialised */
    net_request_t *net;                /* the network request to complete */
    const broker_listener_t *listener; /* the listener the request came through */
    void *state;                       /* handler state across re-evaluations (parked requests) */
    /* Zero-copy record ranges for Fetch responses, in encoding order. */
    log_range_t *ranges;
    int nranges, cap_ranges;
};

struct broker {
    broker_settings_t s;
    atomic_bool stopping;        /* no request parks any more */
    sm_config_t *cfg;            /* static: server.properties and --override */
    pthread_mutex_t settings_mu; /* eff, log_defaults and the topic-default settings */
    sm_config_t *eff;            /* cfg with the dynamic broker configs applied */
    char cluster_id[64];
    meta_image_t image;
    meta_controller_t controller;
    log_t *metadata_log;
    log_manager_t *logs;
    log_config_t log_defaults;
    bool cleanup_delete_default; /* log.cleanup.policy includes "delete" */
    pthread_mutex_t partitions_mu;
    pthread_mutex_t create_mu; /* serialises broker_partitions_create */
    sm_map_t partitions;       /* topic id + partition index -> broker_partition_t* */
    broker_delayed_t *delayed;
    struct broker_replicas *replicas; /* cluster mode: fetchers and ISR upkeep (replica.h) */
    /* Replication throttles (leader./follower.replication.throttled.rate). */
    repl_quota_t leader_quota;
    repl_quota_t follower_quota;
    group_coordinator_t *groups;
    txn_coordinator_t *txns;
    broker_listener_t listeners[BROKER_MAX_LISTENERS];
    int nlisteners;
    /* Cluster mode: the client listeners start closed and open once the broker has caught up
     * with the metadata log and is unfenced (the quorum thread's on_serving); this lock keeps
     * that from racing broker_stop, which sets listeners_stopped first. */
    pthread_mutex_t listeners_mu;
    bool listeners_stopped;
    broker_listener_t ctrl_listener; /* cluster mode, controller role: CONTROLLER */
    struct cluster *_Atomic cluster; /* cluster mode (set while handlers run) */
    int lock_fds[BROKER_MAX_LOG_DIRS]; /* flock'ed .lock of each log dir */
    int nlocks;
    pthread_mutex_t pid_mu; /* producer id block */
    int64_t pid_next, pid_end;
};

/* Authorized-operation bit sets (1 << AclOperation code) reported without an
 * authorizer: every operation on a topic (READ, WRITE, CREATE, DELETE, ALTER,
 * DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS) and on the cluster (CREATE,
 * ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
 * IDEMPOTENT_WRITE), as Kafka reports them. */
#define BROKER_TOPIC_OPS                                                                           \
    ((1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11))
#define BROKER_CLUSTER_OPS                                                                         \
    ((1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12))

/* Starts the broker: storage, metadata replay, network. Returns SM_OK or an
 * error after logging why. After an unclean stop it answers (Metadata, and
 * the partitions already recovered) while partition logs still recover in
 * the background; the internal topics recover before the coordinators start. */
int broker_start(broker_t *b, sm_config_t *cfg);
/* `samsa-server --format [--standalone]`: writes meta.properties (cluster.id, node.id,
 * directory.id) into each log dir and, standalone, the bootstrap checkpoint of a one-voter
 * dynamic quorum of this controller (Kafka's `kafka-storage format --standalone`); then
 * returns. SM_ERR_PARSE on bad configuration (one `config:` line printed). */
int broker_format(sm_config_t *cfg, bool standalone);
/* Closes the partition logs no topic of the image claims, left on disk. */
void broker_close_unclaimed_logs(broker_t *b);
/* Stops accepting, completes parked requests, flushes and closes the logs. */
void broker_stop(broker_t *b);

static inline void *broker_body(broker_req_t *r) { return r->req.body; }

/* The address clients of r's listener are given for this broker. */
static inline const char *broker_req_host(const broker_req_t *r) {
    return r->listener ? r->listener->advertised_host : r->b->s.advertised_host;
}
static inline int32_t broker_req_port(const broker_req_t *r) {
    return r->listener ? r->listener->advertised_port : r->b->s.advertised_port;
}

/* Sends r's response (encodes r->resp) and frees r. Any thread. */
void broker_req_finish(broker_req_t *r);
/* Frees r without a response (acks=0). */
void broker_req_finish_none(broker_req_t *r);
/* Records a zero-copy range for the next hole; returns the sm_bytes_t to put in
 * the records field ({NULL, len}). The range is released after sending. */
sm_bytes_t broker_req_add_range(broker_req_t *r, log_range_t *range);

/* The replication factor of an internal topic: the broker key's value (key) in a cluster,
 * 1 on a single node, which has one broker to hold it. */
int16_t broker_internal_rf(broker_t *b, const char *key);
/* Creates an internal topic (__consumer_offsets, __transaction_state) on first
 * start with rf replicas; returns its id and partition count. Logs and fails when it cannot. */
int broker_internal_topic(broker_t *b, const char *name, int32_t partitions, int16_t rf,
                          const meta_config_kv_t *kv, int nkv, sm_uuid_t *id, int32_t *nparts);

/* Allocates the next producer id (blocks of 1000 from the controller). */
int broker_next_producer_id(broker_t *b, int64_t *pid);

/* A broker as clients are told about it. */
typedef struct broker_node {
    int32_t id;
    sm_str_t host;
    int32_t port;
    sm_str_t rack; /* null when none */
    bool fenced;
} broker_node_t;

/* The brokers to list for r (nodes.c): strings in r's arena; the count, or -1. */
int broker_nodes(broker_req_t *r, bool include_fenced, broker_node_t **out);
/* One of them by id (KIP-951 endpoints of a partition's leader): SM_ERR_NOTFOUND when
 * it is not listed. */
int broker_node(broker_req_t *r, int32_t id, broker_node_t *out);
/* The leader and leader epoch the metadata image gives a partition (by topic id when
 * by_id, else by name), for KIP-951's CurrentLeader: true when it has one and it is not
 * this broker. */
bool broker_other_leader(broker_req_t *r, bool by_id, const sm_uuid_t *topic_id, sm_str_t name,
                         int32_t partition, int32_t *leader, int32_t *epoch);
/* The listed brokers whose ids are among ids[0..n) (repeats allowed), once each: the
 * KIP-951 endpoints of the leaders an answer names. In r's arena; the count, or -1. */
int broker_nodes_among(broker_req_t *r, const int32_t *ids, int n, broker_node_t **out);
/* The controller id given to clients. */
int32_t broker_client_controller_id(broker_t *b);

/* Current wall-clock time in ms. */
int64_t broker_now_ms(void);

#endif
