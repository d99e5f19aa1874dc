/*
 * The partition log's private state, shared by storage/log*.c and
 * storage/flusher.c. Not a public API.
 *
 * Invariants, under l->mu:
 *  1. segs[] is sorted by base and never empty; segs[i]->next_offset <=
 *     segs[i+1]->base (equal unless recovery cut a segment short).
 *  2. end_offset == segs[last]->next_offset; start_offset >= segs[0]->base
 *     (or the log is empty at start_offset == end_offset).
 *  3. Every byte of a segment below its size is a whole batch, validated when
 *     it was appended or recovered.
 *  4. flushed_offset <= end_offset; every segment holding offsets below it is
 *     fsynced, and inactive ones among them have their index files written.
 *     Segments holding offsets at or above it are pinned. The active
 *     segment's index files hold (unsynced) its entries noted before the last
 *     flush: a hint recovery checks before it uses it.
 *  5. offline is sticky: set on the first failed write or fsync, except a
 *     write that failed for lack of space (ENOSPC, EDQUOT): that sets full,
 *     cuts the active segment back to its size, and leaves reads alone; the
 *     next append cuts again (to the last good byte) and tries, and the first
 *     one that succeeds clears full.
 * Lock order: flusher mutex, l->wmu, l->flush_mu, l->mu, then segment locks.
 */
#ifndef STORAGE_LOG_IMPL_H
#define STORAGE_LOG_IMPL_H

#include <stdatomic.h>

#include "storage/cleaner.h"
#include "storage/log.h"
#include "storage/segment.h"

typedef struct log_waiter {
    int64_t offset;
    log_flush_cb cb;
    void *arg;
    struct log_waiter *next;
} log_waiter_t;

struct log {
    pthread_mutex_t mu;
    pthread_mutex_t flush_mu; /* one flush or truncation at a time */
    char *_Atomic dir;        /* read without the mutex; replaced only by a folder rename */
    char *old_dir;            /* the name before that rename, freed with the log */
    log_config_t cfg;
    log_segment_t **segs;
    int nsegs, cap;
    int64_t start_offset;
    _Atomic int64_t end_offset;
    _Atomic int64_t flushed_offset;
    int64_t unflushed_msgs;
    int64_t appended_bytes;     /* total appended since open */
    int64_t flushed_bytes;      /* appended_bytes covered by the last finished flush */
    bool recovery_flush_queued; /* a background flush for the recovery bound is queued */
    int64_t first_unflushed_ms; /* 0 when everything is flushed */
    bool dir_dirty;             /* files created or removed since the last directory fsync */
    int64_t unfinished_base;    /* oldest rolled segment not yet flushed, INT64_MAX if none */
    atomic_bool offline;
    atomic_bool full;      /* the last append failed for lack of space (invariant 5) */
    log_segment_t **trash; /* renamed .deleted segments waiting for unlink */
    int ntrash, cap_trash;

    /* Flush requests (flusher.c), under wmu. */
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    log_waiter_t *waiters, *waiters_tail;
    bool fq_queued, fq_busy;
    log_t *fq_next; /* flusher queue link (flusher mutex) */
    log_flusher_t *flusher;

    /* The high watermark replication last gave it, for the checkpoint
     * (replication-offset-checkpoint); -1 none. */
    _Atomic int64_t high_watermark;

    /* Compaction (cleaner.c). clean_point and clean_stats under mu. */
    int64_t clean_point;   /* offsets below were cleaned (cleaner-offset-checkpoint); -1 none */
    int64_t clean_horizon; /* earliest delete horizon of retained tombstones; 0 none */
    log_clean_stats_t clean_stats;
    atomic_bool cleaning;    /* a cleaner thread holds the log (set under the manager's mutex) */
    atomic_bool clean_abort; /* stop cleaning it (deleted, shutdown) */
};

static inline log_segment_t *log_active(log_t *l) { return l->segs[l->nsegs - 1]; }

/* Index of the segment holding offset (largest base <= offset). l->mu held. */
int log_find_segment(log_t *l, int64_t offset);
/* Logs the failure once and makes the log offline. */
void log_go_offline(log_t *l, const char *what, int err);
/* Removes segs[0..n) from the list (l->mu held) and returns them in *out
 * (a new array the caller passes to log_retire_segments). */
int log_detach_head(log_t *l, int n, log_segment_t ***out);
/* Renames detached segments to .deleted and queues them for unlink (takes
 * l->mu briefly). Frees the array. */
void log_retire_segments(log_t *l, log_segment_t **segs, int n, int64_t now);
/* Starts a new active segment at the log end; l->mu held. */
int log_roll_locked(log_t *l);
/* Flushes up to min(limit, log end); l->flush_mu held. */
int log_flush_locked(log_t *l, int64_t limit);
/* Asks for a background flush (to the attached flusher, if any). */
void log_flush_async(log_t *l);
/*
 * Walks batch headers in [pos, size) of fd to the first batch whose last
 * offset is >= offset. Returns SM_OK with *found_pos and *h, SM_ERR_NOTFOUND
 * when size is reached, SM_ERR_CORRUPT on garbage.
 */
int log_walk_to_offset(int fd, int64_t pos, int64_t size, int64_t offset, int64_t *found_pos,
                       proto_batch_header_t *h);
/* The recovery bound's flush: asks the flusher for everything below offset
 * (a request that stays queued until a flush covers it, so one made while a
 * flush runs is not lost); clears recovery_flush_queued when nothing was
 * queued. Takes l->mu. */
void log_flush_for_recovery(log_t *l, int64_t offset);
/* Waits until no flusher thread holds or will hold the log. */
void log_flush_quiesce(log_t *l);

#endif
