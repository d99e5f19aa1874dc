/*
 * Idempotent producer state of one partition: for each producer id its epoch
 * and the metadata of its last five appended batches (first/last sequence and
 * offsets), so a retried batch is recognised as a duplicate and answered with
 * its original offsets, and a gap in sequences is refused
 * (OUT_OF_ORDER_SEQUENCE_NUMBER) as Kafka does (KIP-98, KIP-360). Persisted in
 * Kafka's producer snapshot file format, <offset>.snapshot in the partition
 * folder. Not thread-safe: the partition's lock covers it.
 */
#ifndef TXN_PRODUCER_STATE_H
#define TXN_PRODUCER_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/map.h"

#define TXN_BATCHES_KEPT 5

typedef struct txn_batch_meta {
    int32_t first_seq;
    int32_t last_seq;
    int64_t first_offset; /* -1 when unknown (restored from a snapshot) */
    int64_t last_offset;
    int64_t timestamp; /* max timestamp of the batch */
} txn_batch_meta_t;

typedef struct txn_producer {
    int64_t producer_id;
    int16_t epoch;
    int32_t n_batches; /* valid entries in batches, newest last */
    txn_batch_meta_t batches[TXN_BATCHES_KEPT];
    int64_t last_timestamp;
    int32_t coordinator_epoch;
    int64_t current_txn_first_offset; /* -1: no open transaction */
    uint32_t markers;                 /* markers seen for this producer (not persisted) */
} txn_producer_t;

typedef struct txn_producer_state {
    sm_map_t producers; /* 8-byte producer id -> txn_producer_t* */
    int n_open;         /* producers with current_txn_first_offset >= 0 */
} txn_producer_state_t;

/* Outcome of checking a batch before it is appended. */
typedef enum txn_check {
    TXN_APPEND = 0,         /* new batch: append, then call txn_producer_state_update */
    TXN_DUPLICATE = 1,      /* already appended: answer with dup_first/last_offset */
    TXN_OUT_OF_ORDER = 2,   /* OUT_OF_ORDER_SEQUENCE_NUMBER */
    TXN_FENCED_EPOCH = 3,   /* INVALID_PRODUCER_EPOCH: older epoch than known */
    TXN_UNKNOWN_PRODUCER = 4, /* UNKNOWN_PRODUCER_ID: sequence not 0 for an unknown id */
} txn_check_t;

void txn_producer_state_init(txn_producer_state_t *s);
void txn_producer_state_free(txn_producer_state_t *s);

/*
 * Checks a batch of an idempotent producer (producer_id >= 0) with sequences
 * first_seq..last_seq. For TXN_DUPLICATE, *dup_offset gets the first offset
 * the original append got.
 */
txn_check_t txn_producer_state_check(const txn_producer_state_t *s, int64_t producer_id,
                                     int16_t epoch, int32_t first_seq, int32_t last_seq,
                                     int64_t *dup_offset);
/* Records an appended batch. Returns SM_OK or SM_ERR_NOMEM. */
SM_MUST_CHECK int txn_producer_state_update(txn_producer_state_t *s, int64_t producer_id,
                                            int16_t epoch, int32_t first_seq, int32_t last_seq,
                                            int64_t first_offset, int64_t last_offset,
                                            int64_t timestamp);
/*
 * Transactions (KIP-98). A producer's first transactional batch after a
 * marker opens its transaction at that batch's first offset; a control batch
 * (COMMIT/ABORT marker) closes it. The first offset of the oldest open
 * transaction bounds the last stable offset.
 *
 * begin: after txn_producer_state_update of a transactional batch (or for
 * one without sequences, such as TxnOffsetCommit's: the producer's entry is
 * created then).
 * end: for a marker at marker_offset; *first_offset gets the closed
 * transaction's first offset (-1: none was open, e.g. an abort for a
 * transaction that never wrote here). SM_ERR_FENCED for a marker of an older
 * producer epoch than known (INVALID_PRODUCER_EPOCH), SM_ERR_STALE for an older
 * coordinator epoch (TRANSACTION_COORDINATOR_FENCED); nothing changes then.
 */
SM_MUST_CHECK int txn_producer_state_begin_txn(txn_producer_state_t *s, int64_t producer_id,
                                               int16_t epoch, int64_t first_offset);
SM_MUST_CHECK int txn_producer_state_end_txn(txn_producer_state_t *s, int64_t producer_id,
                                             int16_t epoch, int32_t coordinator_epoch,
                                             int64_t marker_offset, int64_t timestamp,
                                             int64_t *first_offset);
/* First offset of the oldest open transaction, or -1 when none is open. */
int64_t txn_producer_state_first_open_txn(const txn_producer_state_t *s);

/* Forgets producers whose last batch is at or beyond offset (log truncation),
 * or below it (log start moved past them, keep_above = true). */
void txn_producer_state_truncate(txn_producer_state_t *s, int64_t offset);
const txn_producer_t *txn_producer_state_get(const txn_producer_state_t *s, int64_t producer_id);
/* Drops producers idle since before min_timestamp (producer.id.expiration.ms). */
void txn_producer_state_expire(txn_producer_state_t *s, int64_t min_timestamp);

/*
 * Snapshot files, Kafka's format: int16 version (1), uint32 CRC-32C of the rest,
 * int32 count, then per producer: int64 id, int16 epoch, int32 last sequence,
 * int64 last offset, int32 offset delta (last - first), int64 timestamp,
 * int32 coordinator epoch, int64 current transaction first offset.
 * Written atomically (temp file, rename); durable adds the fsyncs of the file
 * before the rename and of the directory after it.
 */
SM_MUST_CHECK int txn_producer_state_write_snapshot(const txn_producer_state_t *s, const char *path,
                                                    bool durable);
/* Replaces s with the snapshot's contents. SM_ERR_CORRUPT on a bad CRC or size. */
int txn_producer_state_read_snapshot(txn_producer_state_t *s, const char *path);

#endif
