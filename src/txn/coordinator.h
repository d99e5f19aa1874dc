/*
 * The transaction coordinator (KIP-98; the broker-side verification of
 * KIP-890 part 1): transactional ids, their producer ids and epochs, the
 * partitions of each open transaction, and the COMMIT/ABORT markers that end
 * it. Its state is persisted in __transaction_state with Kafka's record
 * formats (TransactionLogKey / TransactionLogValue) and reloaded at start,
 * where transactions caught between prepare and complete are completed.
 * Not the partition side (txn/producer_state.h, txn/aborted_index.h).
 */
#ifndef TXN_COORDINATOR_H
#define TXN_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "base/types.h"

typedef struct broker broker_t;
typedef struct broker_req broker_req_t;
typedef struct txn_coordinator txn_coordinator_t;

#define TXN_STATE_TOPIC "__transaction_state"

/* Starts the coordinator: creates __transaction_state on first start, loads
 * it, resumes markers of prepared transactions, starts the timer thread. */
int txn_coordinator_start(broker_t *b);
/* Stops the thread (markers in progress finish first) and frees the state. */
void txn_coordinator_stop(broker_t *b);

/* The __transaction_state partition of a transactional id (Java's
 * String.hashCode, as Kafka, modulo the partition count). */
int32_t txn_coordinator_partition_for(const broker_t *b, sm_str_t transactional_id);

/*
 * KIP-890 part 1: may producer_id at epoch write transactional records to
 * topic-partition now? Kafka error codes as a produce answer carries them:
 * NONE; INVALID_PRODUCER_ID_MAPPING; INVALID_PRODUCER_EPOCH (fenced);
 * INVALID_TXN_STATE (v <= 10) or TRANSACTION_ABORTABLE (v > 10) when the
 * partition was not added; NOT_ENOUGH_REPLICAS for a transaction being
 * completed (retriable for old clients, as Kafka).
 */
int16_t txn_coordinator_verify(broker_t *b, sm_str_t transactional_id, int64_t producer_id,
                               int16_t epoch, sm_str_t topic, int32_t partition,
                               int16_t produce_version);

/*
 * Transactions V2 (KIP-890 part 2): adds topic-partition to the producer's
 * transaction (Produce v12+, TxnOffsetCommit v5+ name no AddPartitionsToTxn).
 * On a single node, blocks until the transition is written; in a cluster it
 * starts the write and answers NOT_ENOUGH_REPLICAS (retriable: the retry finds
 * the partition added once the ISR has the record), since the calling event
 * loop may serve the followers that replicate it. The same error codes as
 * txn_coordinator_verify (NOT_ENOUGH_REPLICAS when it could not be written).
 */
int16_t txn_coordinator_add_implicit(broker_t *b, sm_str_t transactional_id, int64_t producer_id,
                                     int16_t epoch, sm_str_t topic, int32_t partition);

/*
 * Writes a marker on a partition of this broker and, for __consumer_offsets,
 * lets the group coordinator apply or drop the transaction's offsets. Flushed
 * before returning when the broker acknowledges only flushed data. Blocking:
 * not for event-loop threads of busy brokers (WriteTxnMarkers, the marker
 * thread).
 */
int16_t txn_write_marker_local(broker_t *b, sm_str_t topic, int32_t partition,
                               int64_t producer_id, int16_t epoch, int32_t coordinator_epoch,
                               bool commit);

/*
 * Cluster mode (called by broker_coordinators_leadership): this broker became
 * the leader of partition of __transaction_state at leader_epoch (its ids
 * answer COORDINATOR_LOAD_IN_PROGRESS until the marker thread has loaded it,
 * then are served; prepared transactions get their markers), or stopped being
 * it (its ids answer NOT_COORDINATOR at once and are dropped). Non-blocking.
 */
void txn_coordinator_elect(broker_t *b, int32_t partition, int32_t leader_epoch);
void txn_coordinator_resign(broker_t *b, int32_t partition);

/*
 * Requests to another broker of the cluster (coordinator_remote.c), blocking:
 * a marker to node, the leader of topic-partition (its error code; a failed
 * call is NOT_LEADER_OR_FOLLOWER, retried); a partition leader's
 * AddPartitionsToTxn to node, the coordinator of id (verify_only: KIP-890 part
 * 1's check; else part 2's addition) with the partition's error code
 * (NOT_ENOUGH_REPLICAS when node cannot be reached).
 */
int16_t txn_remote_write_marker(broker_t *b, int32_t node, sm_str_t topic, int32_t partition,
                                int64_t producer_id, int16_t epoch, int32_t coordinator_epoch,
                                bool commit);
int16_t txn_remote_add_partition(broker_t *b, int32_t node, sm_str_t id, int64_t producer_id,
                                 int16_t epoch, sm_str_t topic, int32_t partition,
                                 bool verify_only);

/* Handlers (the coordinator's APIs). */
int txn_handle_init_producer_id(broker_req_t *r);

#endif
