/*
 * A partition this broker leads: its log, leader epoch, idempotent producer
 * state and the fetches parked on it. Reference-counted: handlers and parked
 * requests hold references. Deleting the topic detaches the log at once (its
 * folder renamed <topic>-<p>.<uuid>-delete, the name free for a new topic);
 * the log itself stays open until the partition's last reference goes. Thread-safety: mu covers the
 * producer state and serialises appends with their sequence checks.
 */
#ifndef BROKER_PARTITION_H
#define BROKER_PARTITION_H

#include <stdatomic.h>

#include "base/err.h"
#include "broker/broker.h"
#include "protocol/records.h"
#include "storage/leader_epochs.h"
#include "txn/aborted_index.h"
#include "txn/producer_state.h"

typedef struct broker_waiter broker_waiter_t;

struct broker_partition {
    broker_t *b;
    sm_uuid_t topic_id;
    int32_t index;
    char topic[256];
    atomic_int refs;
    atomic_bool deleted;
    pthread_mutex_t mu;
    log_t *log;
    _Atomic int32_t leader_epoch; /* changed by the metadata applier (cluster mode) */
    txn_producer_state_t producers;
    txn_aborted_index_t aborted; /* aborted transactions (under mu) */
    int64_t last_snapshot_offset;
    int snapshot_segments;  /* segment count when the last snapshot was taken */
    int64_t snapshot_bytes; /* log_appended_bytes at the last snapshot */
    int64_t snapshot_every; /* samsa.log.recovery.flush.bytes: a snapshot this often (bytes) */
    /* topic configs that matter on the produce path */
    int32_t max_message_bytes;
    bool log_append_time;
    bool compacted; /* cleanup.policy holds compact: every record needs a key */
    int64_t timestamp_before_max_ms;
    int64_t timestamp_after_max_ms;
    /* Replication throttles: this broker's pairs (or *) in the topic's
     * leader. / follower.replication.throttled.replicas (replica.c). */
    bool leader_throttled;
    bool follower_throttled;
    broker_waiter_t *waiters; /* parked fetches (under mu) */
    /* Replication (replica.h). Single node: replicated false, leader true, the
     * high watermark is the log end. Under mu unless atomic. */
    bool replicated;          /* cluster mode: the image's replica set governs it */
    _Atomic bool leader;      /* this broker leads it */
    int32_t leader_id;        /* -1: none */
    int32_t partition_epoch;
    _Atomic int64_t hw;       /* high watermark (replicated only) */
    int32_t min_isr;          /* min.insync.replicas */
    bool elr;                 /* eligible.leader.replicas.version >= 1 (KIP-966 HW rule) */
    struct replica_set *rs;   /* replicas and ISR as this broker knows them (replicated) */
    log_epochs_t epochs;      /* leader-epoch cache (replicated) */
    int32_t fetch_from;       /* the leader whose fetcher has it, -1: none */
};

/* After an append, under p->mu: snapshots the producer state when a segment
 * rolled since the last snapshot. */
void broker_partition_after_append(broker_partition_t *p);

/* Producer state of a batch just appended at first..last (data batches;
 * transactional ones open their producer's transaction). Under p->mu. */
SM_MUST_CHECK int broker_partition_track_batch(broker_partition_t *p, const proto_batch_header_t *h,
                                               int64_t first, int64_t last, int64_t timestamp);
/* Producer state and aborted index for a marker appended at offset. Under
 * p->mu. Returns SM_OK, SM_ERR_FENCED or SM_ERR_STALE (see txn_producer_state_end_txn). */
SM_MUST_CHECK int broker_partition_track_marker(broker_partition_t *p, int64_t producer_id,
                                                int16_t epoch, int32_t coordinator_epoch,
                                                bool commit, int64_t offset, int64_t timestamp);
/* The last stable offset: the first offset of the oldest open transaction, or
 * the high watermark when none is open. Under p->mu. */
int64_t broker_partition_lso(broker_partition_t *p);
/*
 * Appends a COMMIT or ABORT marker (a control batch) for producer_id at epoch
 * and closes its transaction here (WriteTxnMarkers). Returns a Kafka error
 * code: INVALID_PRODUCER_EPOCH for an epoch older than the partition knows,
 * TRANSACTION_COORDINATOR_FENCED for an older coordinator epoch,
 * KAFKA_STORAGE_ERROR when the log is offline. Takes p->mu; wakes fetches.
 */
int16_t broker_partition_write_marker(broker_partition_t *p, int64_t producer_id, int16_t epoch,
                                      int32_t coordinator_epoch, bool commit);
/* The producer state (and aborted index) of one batch read from the log or
 * fetched from a leader. Under p->mu. */
SM_MUST_CHECK int broker_partition_replay_batch(broker_partition_t *p, const uint8_t *batch,
                                                size_t len, const proto_batch_header_t *h);
/* After the log lost its tail or restarted elsewhere (replication): the
 * producer state, aborted index and snapshots are rebuilt from what is left.
 * Under p->mu. */
void broker_partition_log_truncated(broker_partition_t *p);
/* Looks up (and references) the partition, or NULL. */
broker_partition_t *broker_partition_get(broker_t *b, const sm_uuid_t *topic_id, int32_t index);
void broker_partition_put(broker_partition_t *p);
/* Looks up (and references) a partition by topic id when id is given and not
 * zero, otherwise by topic name; NULL when there is no such partition. */
broker_partition_t *broker_partition_lookup(broker_t *b, sm_str_t topic, const sm_uuid_t *id,
                                            int32_t index);
/* The error for a partition broker_partition_lookup did not find:
 * NOT_LEADER_OR_FOLLOWER while its log still recovers after an unclean stop
 * (retriable: clients refresh metadata and retry, as with a partition Kafka
 * has not brought online yet), else dflt. */
int16_t broker_partition_absent_error(broker_t *b, sm_str_t topic, const sm_uuid_t *id,
                                      int32_t index, int16_t dflt);
/* The leader Metadata and DescribeTopicPartitions report for a partition of
 * topic, and its error: none (-1, LEADER_NOT_AVAILABLE, as Kafka reports a
 * partition not yet online; clients wait and refresh) without a leader or
 * while its log still recovers after an unclean stop. A leader named here may
 * not serve the partition yet for a few ms after its creation (it answers
 * NOT_LEADER_OR_FOLLOWER meanwhile and clients retry, as with Kafka's brokers,
 * which apply metadata asynchronously too). Caller holds the image lock. */
int16_t broker_partition_leader(broker_t *b, const meta_topic_t *t, const meta_partition_t *mp,
                                int32_t *leader);
/* The log manager's deferred recovery made topic-partition's log available:
 * its partition is created (and served) now. */
void broker_partition_recovered(void *broker, const char *topic, int32_t index);

/* Creates the partition objects (and logs) for a topic's partitions from
 * first on; called from the controller's listener and at start-up. */
int broker_partitions_create(broker_t *b, const meta_topic_t *t, int32_t first);
/* Detaches every partition of the topic; logs go once unreferenced. */
void broker_partitions_delete(broker_t *b, const meta_topic_t *t);
/* Refreshes the produce-path topic configs of a topic's partitions. */
void broker_partitions_reconfigure(broker_t *b, const meta_topic_t *t);
/* Closes every partition (shutdown): snapshots producer state. */
void broker_partitions_close_all(broker_t *b);

/* The log config for a topic: broker defaults overridden by topic configs.
 * Caller holds the image lock. */
void broker_topic_log_config(broker_t *b, const meta_topic_t *t, log_config_t *out);

#endif
