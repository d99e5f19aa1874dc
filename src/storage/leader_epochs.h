/*
 * A partition's leader-epoch cache (KIP-101/279): for every leader epoch that
 * wrote to the log, the offset of its first batch, kept in the partition
 * folder's `leader-epoch-checkpoint` file in Kafka's format:
 *
 *   0                  version
 *   N                  number of entries
 *   <epoch> <offset>   N lines, epochs and offsets strictly increasing
 *
 * Replication asks it where an epoch ended (a follower's divergence check,
 * OffsetForLeaderEpoch), and keeps it in step with the log: an append of a
 * batch with a newer epoch adds an entry, truncation of the tail removes the
 * entries at or past the new end, a moved log start clips the first ones.
 *
 * Invariants: entries are sorted by epoch and by start offset, both strictly
 * increasing; the file, when written, holds exactly the entries (written
 * atomically, a temporary file renamed). Not thread-safe: the partition's
 * mutex covers it.
 */
#ifndef STORAGE_LEADER_EPOCHS_H
#define STORAGE_LEADER_EPOCHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct log_epoch_entry {
    int32_t epoch;
    int64_t start_offset;
} log_epoch_entry_t;

typedef struct log_epochs {
    log_epoch_entry_t *v;
    size_t n, cap;
    char path[4096]; /* "" : in memory only */
} log_epochs_t;

/*
 * Loads dir/leader-epoch-checkpoint (an absent file is an empty cache) and
 * drops entries at or past log_end (a tail lost in a crash). SM_ERR_CORRUPT
 * when the file is unreadable; the cache is then empty and the caller decides
 * (the file is rewritten on the next change).
 */
int log_epochs_load(log_epochs_t *e, const char *dir, int64_t log_end);
void log_epochs_free(log_epochs_t *e);

/* The newest epoch, or -1 when empty. */
int32_t log_epochs_latest(const log_epochs_t *e);
/* The start offset of the newest epoch, or -1. */
int64_t log_epochs_latest_start(const log_epochs_t *e);

/*
 * Records that epoch wrote from start_offset on. Ignored (SM_OK) unless epoch
 * is newer than the latest; an entry with a start at or below an earlier
 * one's replaces those (they never wrote). Writes the file when it changed.
 */
SM_MUST_CHECK int log_epochs_assign(log_epochs_t *e, int32_t epoch, int64_t start_offset);
/* The log was truncated to end: entries starting at or past it go. */
SM_MUST_CHECK int log_epochs_truncate_from_end(log_epochs_t *e, int64_t end);
/* The log start moved to start: entries wholly below it go, and the one that
 * covers it starts there. */
SM_MUST_CHECK int log_epochs_truncate_from_start(log_epochs_t *e, int64_t start);
/* Empties the cache (the log restarts at another offset). */
SM_MUST_CHECK int log_epochs_clear(log_epochs_t *e);

/*
 * Where `epoch` ended in a log whose end is log_end, as Kafka answers
 * OffsetForLeaderEpoch: the latest epoch ends at log_end; an older one ends
 * where the next newer epoch starts, and *out_epoch is the newest epoch at or
 * below `epoch` (or `epoch` itself when none is older); an epoch newer than
 * the latest, or any epoch of an empty cache, is unknown: -1 / -1.
 */
void log_epochs_end_offset(const log_epochs_t *e, int32_t epoch, int64_t log_end,
                           int32_t *out_epoch, int64_t *out_end);

#endif
