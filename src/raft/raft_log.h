/*
 * The in-memory view of the metadata log that a Raft node keeps: entries from the log start
 * (the latest snapshot's end offset) to the log end, with the epoch lookups KRaft's fetch
 * validation needs. It mirrors what the caller holds on disk; it does no I/O.
 */
#ifndef RAFT_RAFT_LOG_H
#define RAFT_RAFT_LOG_H

#include "raft/raft.h"

typedef struct raft_log {
    raft_entry_t *e; /* e[i] is the entry at offset start + i */
    int64_t n, cap;
    int64_t start;       /* log start offset: end offset of the latest snapshot */
    int32_t start_epoch; /* epoch of the entry at start - 1 (the snapshot's epoch); 0 */
} raft_log_t;

void raft_log_init(raft_log_t *l, raft_offset_epoch_t snapshot);
void raft_log_destroy(raft_log_t *l);
static inline int64_t raft_log_end_offset(const raft_log_t *l) { return l->start + l->n; }
/* Epoch of the last entry (the snapshot's when the log is empty). */
int32_t raft_log_last_epoch(const raft_log_t *l);
/* Epoch of the entry at offset - 1, for offset in [start, end]; -1 outside. */
int32_t raft_log_epoch_before(const raft_log_t *l, int64_t offset);
/* Appends a copy of e. Returns 0 or SM_ERR_NOMEM. */
int raft_log_append(raft_log_t *l, const raft_entry_t *e);
/* Drops entries at offsets >= offset (offset >= start). */
void raft_log_truncate(raft_log_t *l, int64_t offset);
/* Drops entries below offset (a snapshot ending there, of epoch `epoch`, now covers them). */
void raft_log_drop_prefix(raft_log_t *l, int64_t offset, int32_t epoch);
/* Replaces everything with an empty log starting at the snapshot's end. */
void raft_log_reset(raft_log_t *l, raft_offset_epoch_t snapshot);
const raft_entry_t *raft_log_at(const raft_log_t *l, int64_t offset);
/* KRaft's endOffsetForEpoch: the largest epoch <= epoch held here and the offset where it
 * ends (start of the next epoch, or the log end). Returns false when epoch predates what the
 * log holds (a snapshot is needed to answer). */
bool raft_log_end_for_epoch(const raft_log_t *l, int32_t epoch, raft_offset_epoch_t *out);

int raft_entry_copy(raft_entry_t *dst, const raft_entry_t *src);

#endif
