/*
 * Offsets committed inside transactions (TxnOffsetCommit, KIP-98/KIP-447):
 * written to __consumer_offsets as transactional batches at once, but held
 * here, per producer id, until the transaction's marker reaches that
 * __consumer_offsets partition: COMMIT makes them the group's committed
 * offsets, ABORT drops them. While any is pending for a group's partition,
 * OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for it.
 * Not thread-safe: the group coordinator's lock covers it. Strings are
 * byte-exact (lengths, not NUL-terminated).
 *
 * Invariant: an entry is in exactly one producer's list, in commit order;
 * a later entry for the same group and partition supersedes an earlier one
 * when applied (they are applied in order).
 */
#ifndef GROUP_TXN_OFFSETS_H
#define GROUP_TXN_OFFSETS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/map.h"
#include "base/types.h"

typedef struct group_txn_offset {
    sm_bytes_t group, topic, metadata; /* own copies (metadata.len < 0: null) */
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    int64_t commit_ts;
    int32_t offsets_partition; /* the __consumer_offsets partition of the group */
} group_txn_offset_t;

typedef struct group_txn_offsets {
    sm_map_t by_producer; /* 8-byte producer id -> pending list */
} group_txn_offsets_t;

void group_txn_offsets_init(group_txn_offsets_t *s);
void group_txn_offsets_free(group_txn_offsets_t *s);
/* Adds a pending offset of producer_id (copies e's strings). SM_OK or SM_ERR_NOMEM. */
int group_txn_offsets_add(group_txn_offsets_t *s, int64_t producer_id, const group_txn_offset_t *e);
/* True when an offset of group for topic-partition waits for a marker. */
bool group_txn_offsets_pending(const group_txn_offsets_t *s, sm_bytes_t group, sm_bytes_t topic,
                               int32_t partition);
/* The marker of producer_id on __consumer_offsets partition offsets_partition:
 * with commit, calls apply for each of its pending offsets there, in commit
 * order; then forgets them either way. */
void group_txn_offsets_complete(group_txn_offsets_t *s, int64_t producer_id,
                                int32_t offsets_partition, bool commit,
                                void (*apply)(void *arg, const group_txn_offset_t *e), void *arg);

#endif
