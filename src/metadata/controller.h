/*
 * The controller: the only writer of cluster metadata. Each change (create or
 * delete a topic, add partitions, alter configs, allocate producer ids) is
 * validated against the image, turned into metadata records, appended as one
 * batch through the quorum (the metadata log; a single voter on one node, the
 * seam for Raft later), and applied to the image once committed. Changes are
 * serialised by the controller's mutex; callers are event-loop threads.
 */
#ifndef META_CONTROLLER_H
#define META_CONTROLLER_H

#include <pthread.h>

#include "metadata/image.h"
#include "metadata/record.h"

/*
 * The quorum seam: appends a batch of framed records (a record-batch v2 blob
 * built by the controller) durably and returns the offset of its first record.
 * Single voter: append + fsync. Raft: replicate to a majority.
 */
struct meta_config_kv;
struct meta_result;

typedef struct meta_quorum {
    int (*append)(void *ctx, uint8_t *batch, size_t len, int64_t *base_offset);
    void *_Atomic ctx; /* set by cluster_start while handlers may read it */
    /*
     * Replicated (a Raft quorum, cluster mode): append returns once the records
     * are committed and every node's applier (meta_controller_apply_change) has
     * applied them here too, or SM_ERR_AGAIN when this node is not the active
     * controller. The controller then neither applies nor notifies itself, and
     * places replicas on the registered, unfenced brokers of the image.
     */
    bool replicated;
    /* Replicated: true on the active controller (others get NOT_CONTROLLER). */
    bool (*is_active)(void *ctx);
    /* Cluster mode, not the active controller: these ask the active one. */
    void (*remote_create_topic)(void *ctx, sm_str_t name, int32_t partitions,
                                int16_t replication_factor, const struct meta_config_kv *configs,
                                int32_t nconfigs, struct meta_result *res);
    void (*remote_allocate_producer_ids)(void *ctx, int32_t count, int64_t *first,
                                         struct meta_result *res);
} meta_quorum_t;

/* Told about topics appearing and disappearing (the broker creates and
 * deletes partition logs). Called with the controller mutex held, after the
 * records are durable in the metadata log and applied to the image; topic
 * pointers are valid for the call only. topic_deleted gets the topic as it
 * was (name, id, partition count; no partitions or configs): it is no longer
 * in the image. */
typedef struct meta_listener {
    void (*topic_created)(void *ctx, const meta_topic_t *t, int32_t first_new_partition);
    void (*topic_deleted)(void *ctx, const meta_topic_t *t);
    /* A topic's config overrides changed (t), or the dynamic broker configs
     * (t == NULL). Called with the image read lock held. */
    void (*configs_changed)(void *ctx, const meta_topic_t *t);
    void *ctx;
    /* Cluster mode: partitions of t changed leader, replicas or ISR (PartitionChangeRecord).
     * Called with the image read lock held. May be NULL. */
    void (*partitions_changed)(void *ctx, const meta_topic_t *t);
} meta_listener_t;

typedef struct meta_controller {
    pthread_mutex_t mu;
    meta_image_t *img;
    meta_quorum_t quorum;
    meta_listener_t listener;
    int32_t node_id;
    int64_t next_offset; /* metadata log end */
} meta_controller_t;

typedef struct meta_config_kv {
    sm_str_t name;
    sm_str_t value; /* len < 0: delete the override */
} meta_config_kv_t;

/* Result of a change: a Kafka error code and message (message may be NULL). */
typedef struct meta_result {
    int16_t error;
    char message[256];
} meta_result_t;

int meta_controller_init(meta_controller_t *c, meta_image_t *img, int32_t node_id,
                         meta_quorum_t quorum, meta_listener_t listener);
void meta_controller_free(meta_controller_t *c);

/*
 * Replays one committed batch (from the metadata log at start-up) into the
 * image. Returns SM_OK, or an error for a corrupt record or a record that
 * cannot be applied (the image would not match the log: fatal at start).
 */
int meta_controller_replay_batch(meta_controller_t *c, const uint8_t *batch, size_t len);

/*
 * Cluster mode: applies one committed change (one record, or the records of a
 * Begin/EndTransactionRecord pair, given without those two) to the image and
 * notifies the listener, on every node. values are framed metadata records;
 * first_offset is the offset of values[0]. Never takes c->mu (a controller
 * operation holding it waits for this). Returns SM_OK or the first error.
 */
int meta_controller_apply_change(meta_controller_t *c, const sm_bytes_t *values, int n,
                                 const int64_t *offsets);

/* Creates a topic. partitions/replication_factor < 0 mean the broker default
 * passed in defaults_*; validate_only checks without changing anything. On
 * success *topic_id is set. */
void meta_create_topic(meta_controller_t *c, sm_str_t name, int32_t partitions,
                       int16_t replication_factor, const meta_config_kv_t *configs,
                       int32_t nconfigs, bool validate_only, sm_uuid_t *topic_id,
                       meta_result_t *res);
/* Creates a topic with the replicas given per partition (assign[i]: partition i's brokers,
 * the first active one leads), validated as Kafka's controller validates them. */
void meta_create_topic_assigned(meta_controller_t *c, sm_str_t name, const sm_i32_array_t *assign,
                                int32_t n, const meta_config_kv_t *configs, int32_t nconfigs,
                                bool validate_only, sm_uuid_t *topic_id, meta_result_t *res);
/* Deletes a topic by name (id == NULL) or by id. */
void meta_delete_topic(meta_controller_t *c, sm_str_t name, const sm_uuid_t *id,
                       meta_result_t *res);
/* Grows a topic to total partitions. */
void meta_create_partitions(meta_controller_t *c, sm_str_t name, int32_t total,
                            bool validate_only, meta_result_t *res);
/* Grows a topic to total partitions with the replicas given for each new one (assign has
 * total - current entries; NULL: placed as CreateTopics places them). */
void meta_create_partitions_assigned(meta_controller_t *c, sm_str_t name, int32_t total,
                                     const sm_i32_array_t *assign, bool validate_only,
                                     meta_result_t *res);
/* Sets (value != NULL) or deletes topic config overrides, all or nothing. */
void meta_alter_topic_configs(meta_controller_t *c, sm_str_t name, const meta_config_kv_t *kv,
                              int32_t n, bool validate_only, meta_result_t *res);
/* Sets (value != NULL) or deletes dynamic broker configs of resource_name (a
 * node id, or "" for the cluster-wide default), all or nothing. The caller has
 * validated names and values against the broker's config table. */
void meta_alter_broker_configs(meta_controller_t *c, sm_str_t resource_name,
                               const meta_config_kv_t *kv, int32_t n, bool validate_only,
                               meta_result_t *res);
/* Sets or deletes dynamic configs of a group (ConfigRecords of resource type
 * GROUP), all or nothing; the caller validated them. */
void meta_alter_group_configs(meta_controller_t *c, sm_str_t group, const meta_config_kv_t *kv,
                              int32_t n, bool validate_only, meta_result_t *res);

/* One change of a client quota: set key to value, or remove it. */
typedef struct meta_quota_op {
    sm_str_t key;
    double value;
    bool remove;
} meta_quota_op_t;

/* Appends one ClientQuotaRecord per op for the entity (validated by the caller). */
void meta_alter_client_quotas(meta_controller_t *c, const meta_quota_part_t *parts, int nparts,
                              const meta_quota_op_t *ops, int32_t n, meta_result_t *res);

/* Finalizes feature levels (FeatureLevelRecords; level 0 removes a feature),
 * all or nothing; the caller checked them against the supported ranges. */
void meta_set_feature_levels(meta_controller_t *c, const sm_str_t *names, const int16_t *levels,
                             int32_t n, meta_result_t *res);

/* Reserves a block of count producer ids; returns the first in *first. */
void meta_allocate_producer_ids(meta_controller_t *c, int32_t count, int64_t *first,
                                meta_result_t *res);

#endif
