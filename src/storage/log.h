/*
 * One partition's log in Kafka's on-disk format: a folder <topic>-<partition>
 * of segments named by their 20-digit base offset (.log holds record batches
 * byte for byte, .index maps relative offsets to file positions every
 * index.interval.bytes, .timeindex maps timestamps to relative offsets). This
 * layer knows nothing about topics' metadata, clients or the high watermark.
 *
 * Threads: appends, roll, truncation and retention's list changes are
 * serialised by the log's mutex, held only for in-memory work and the append's
 * write (never for an fsync, a rename or a read of old data). Readers run
 * concurrently and see only batches whose write finished. Segments are
 * reference-counted so retention cannot close a file a fetch is still sending.
 * A failed write or fsync takes the log offline: every later call returns
 * SM_ERR_IO until the log is reopened (and recovered).
 */
#ifndef STORAGE_LOG_H
#define STORAGE_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct log_config {
    int64_t segment_bytes;           /* segment.bytes / log.segment.bytes */
    int64_t segment_ms;              /* segment.ms / log.roll.ms */
    int32_t index_interval_bytes;    /* index.interval.bytes */
    int32_t segment_index_bytes;     /* segment.index.bytes: max index file size */
    int64_t retention_ms;            /* -1: forever */
    int64_t retention_bytes;         /* -1: unlimited */
    int64_t flush_interval_messages; /* flush.messages: fsync after this many */
    int64_t flush_interval_ms;       /* flush.ms: fsync when the oldest unflushed is older */
    int64_t file_delete_delay_ms;    /* file.delete.delay.ms */
    bool fsync_before_ack;           /* samsa.log.fsync.before.ack: the caller syncs
                                        (log_flush_request) before acknowledging */
    /* Compaction (storage/cleaner.c). */
    bool compact;                  /* cleanup.policy holds compact */
    double min_cleanable_ratio;    /* min.cleanable.dirty.ratio */
    int64_t min_compaction_lag_ms; /* min.compaction.lag.ms */
    int64_t max_compaction_lag_ms; /* max.compaction.lag.ms */
    int64_t delete_retention_ms;   /* delete.retention.ms: how long tombstones stay */
    /* Recovery bound (samsa.log.recovery.flush.*): with a flusher attached, a
     * background flush once this many bytes, or bytes this old, are
     * unflushed; <= 0 disables each. */
    int64_t recovery_flush_bytes;
    int64_t recovery_flush_ms;
} log_config_t;

/* Kafka's defaults. */
void log_config_default(log_config_t *cfg);

typedef struct log_segment log_segment_t;
struct proto_batch_header;
typedef struct log log_t;
typedef struct log_flusher log_flusher_t;

/* A byte range of a segment file to send (sendfile) or copy. Holds a segment
 * reference and keeps fd open until log_range_release. */
typedef struct log_range {
    log_segment_t *seg;
    int fd;
    int64_t file_pos;
    size_t len;           /* 0 when nothing is available at the offset */
    int64_t first_offset; /* base offset of the first batch in the range */
} log_range_t;

/*
 * Opens (creating if needed) the log in folder dir. clean: the log dir was shut
 * down cleanly and recovery_point (from the checkpoint) is the log end: no
 * segment data is read, and only the active segment and its index are opened.
 * Otherwise segments from the one holding recovery_point on are scanned,
 * batches validated (size, CRC), a torn or corrupt tail truncated (with every
 * later segment), indexes rebuilt, and what was cut logged in one line.
 * log_start_offset comes from the log-start-offset checkpoint (-1 if unknown).
 * Out of descriptors (EMFILE/ENFILE) it waits for one, up to the descriptor
 * wait (log_set_descriptor_wait_ms), and starts again; SM_ERR_LIMIT when the
 * shortage outlasted it. Any other failure is returned at once.
 */
int log_open(const char *dir, const log_config_t *cfg, bool clean, int64_t recovery_point,
             int64_t log_start_offset, log_t **out);
/* Flushes, writes the active segment's indexes and closes every file. Waits
 * for pending flush requests. Returns SM_ERR_IO when data may not be on disk. */
SM_MUST_CHECK int log_close(log_t *l);
/* Closes without flushing (tests: simulate a crash of this process). */
void log_abandon(log_t *l);

/* Changes the configuration (dynamic topic configs). */
void log_set_config(log_t *l, const log_config_t *cfg);
void log_get_config(log_t *l, log_config_t *cfg);
const char *log_dir(const log_t *l);

int64_t log_end_offset(log_t *l);
int64_t log_start_offset(log_t *l);
/* Offset up to which (exclusive) the log is known to be on disk: the recovery
 * point written to the checkpoint. */
int64_t log_flushed_offset(log_t *l);
/* Bytes appended since the log was opened. */
int64_t log_appended_bytes(log_t *l);
/* Total bytes of all segments. */
int64_t log_size_bytes(log_t *l);
int log_segment_count(log_t *l);
bool log_offline(log_t *l);
/* True while appends fail for lack of space (reads go on; the next append
 * that finds space clears it). */
bool log_full(log_t *l);

/*
 * Appends one or more validated record batches (data is modified in place:
 * base offsets are assigned from the log end offset and the partition leader
 * epoch is set). Returns the first and last offsets assigned. Rolls to a new
 * segment first when segment.bytes, segment.ms, a full index or the relative
 * offset range require it. Returns once the bytes are written (page cache);
 * durability is log_flush_request / log_sync_to.
 */
SM_MUST_CHECK int log_append(log_t *l, uint8_t *data, size_t len, int32_t leader_epoch,
                             int64_t *first_offset, int64_t *last_offset);
/* A follower's append (replication): the batches keep the offsets and leader
 * epochs the leader gave them; the first must start at or past the log end
 * and each after the one before (SM_ERR_RANGE otherwise, nothing written). */
SM_MUST_CHECK int log_append_as_follower(log_t *l, uint8_t *data, size_t len,
                                         int64_t *first_offset, int64_t *last_offset);
/* Starts a new segment at the log end (no-op when the active one is empty). */
SM_MUST_CHECK int log_roll(log_t *l);

/* Blocking group commit: returns SM_OK once every offset below `offset` is on
 * disk. Concurrent callers share fsyncs: one fdatasync covers every batch
 * appended before it started. */
SM_MUST_CHECK int log_sync_to(log_t *l, int64_t offset);
/* log_sync_to(the log end at the call). */
SM_MUST_CHECK int log_flush(log_t *l);

/*
 * Group commit without blocking: a pool of flusher threads serves many logs.
 * log_flush_request asks for every offset below `offset` to be on disk:
 *  - returns SM_OK when it already is (cb is not called);
 *  - returns SM_ERR_AGAIN when queued: cb(arg, status) runs exactly once on a
 *    flusher thread, status SM_OK when durable or SM_ERR_IO when the log went
 *    offline; cb may be NULL (fire and forget);
 *  - returns SM_ERR_IO at once when the log is offline.
 * After log_flusher_stop has begun, requests are served on the caller's
 * thread (blocking) and return SM_OK or SM_ERR_IO. A log must not be closed
 * while the caller still needs a callback from it; log_close waits for the
 * flusher to be done with the log.
 */
typedef void (*log_flush_cb)(void *arg, int status);
int log_flusher_start(int nthreads, log_flusher_t **out);
/* Serves every queued request, then stops the threads and frees f. */
void log_flusher_stop(log_flusher_t *f);
int log_flush_request(log_flusher_t *f, log_t *l, int64_t offset, log_flush_cb cb, void *arg);
/* Lets the log hand background flushes (rolled segments, flush.messages) to f
 * instead of doing them on the appender's thread. */
void log_attach_flusher(log_t *l, log_flusher_t *f);

/*
 * The range of segment bytes starting at the batch containing offset, at most
 * max_bytes long (but never less than the whole first batch when min_one),
 * within one segment; the range may end inside a batch when max_bytes cuts it
 * (Fetch semantics). Returns SM_OK (len may be 0 at the log end), SM_ERR_RANGE
 * if offset is outside [log start, log end], SM_ERR_CORRUPT when the segment
 * holds garbage where a batch should be.
 */
int log_read(log_t *l, int64_t offset, size_t max_bytes, bool min_one, log_range_t *out);
/* log_read bounded above: nothing at or past end_offset (a batch boundary:
 * the high watermark or the last stable offset) is in the range. */
int log_read_upto(log_t *l, int64_t offset, int64_t end_offset, size_t max_bytes, bool min_one,
                  log_range_t *out);
/* Base offset of the segment holding offset (the active segment's when offset
 * is the log end), or -1. */
int64_t log_segment_base_of(log_t *l, int64_t offset);
void log_range_release(log_range_t *r);
/* Copies up to cap bytes of the range into buf; returns bytes copied or < 0. */
int64_t log_range_copy(const log_range_t *r, uint8_t *buf, size_t cap);
/* Copy-out read: like log_read, then the bytes into buf (cap bytes); *len is
 * the number copied and *first_offset the base offset of the first batch. */
int log_read_copy(log_t *l, int64_t offset, size_t max_bytes, bool min_one, uint8_t *buf,
                  size_t cap, size_t *len, int64_t *first_offset);

/*
 * Calls fn for every batch from the one holding offset from to the log end,
 * in order, with the batch bytes copied out (headers parsed, not validated).
 * fn returns SM_OK to go on, or a status that stops the walk and is returned.
 * A descriptor shortage is waited out, as log_open does.
 */
SM_MUST_CHECK int log_for_each_batch(log_t *l, int64_t from,
                                     int (*fn)(void *arg, const uint8_t *batch, size_t len,
                                               const struct proto_batch_header *h),
                                     void *arg);

/*
 * ListOffsets by timestamp: the first offset at or after the log start whose
 * record timestamp is >= ts, and that record's timestamp in *found_ts (inside
 * compressed batches too). *offset = -1 when there is none.
 * (Earliest is log_start_offset, latest is log_end_offset.)
 */
int log_offset_for_timestamp(log_t *l, int64_t ts, int64_t *offset, int64_t *found_ts);
/* MAX_TIMESTAMP (KIP-734): the offset and timestamp of the batch with the
 * largest timestamp (its last offset, as Kafka's time index records it);
 * -1 / -1 for an empty log. */
int log_max_timestamp(log_t *l, int64_t *offset, int64_t *ts);

/*
 * Removes every batch at or after offset (replication: follower truncation).
 * When offset falls inside a batch the whole batch goes and the log end
 * becomes its base offset. A log start above offset moves down to it; at or
 * below the first segment's base this is log_truncate_fully.
 */
SM_MUST_CHECK int log_truncate_to(log_t *l, int64_t offset);
/* Deletes every segment and restarts the log empty at offset (start = end =
 * offset), as Kafka's truncateFullyAndStartAt. */
SM_MUST_CHECK int log_truncate_fully(log_t *l, int64_t offset);
/* Moves the log start offset to offset (DeleteRecords) and drops whole
 * segments below it. SM_ERR_RANGE when offset > log end. */
SM_MUST_CHECK int log_delete_records_before(log_t *l, int64_t offset);

/*
 * One pass of time/size retention, flush.ms and pending flushes of rolled
 * segments at now_ms. Deleted segments are renamed to .deleted and removed
 * after file.delete.delay.ms. Returns the number of segments removed. Called
 * from the log manager's background thread; appends keep going meanwhile.
 */
int log_run_maintenance(log_t *l, int64_t now_ms);
/* The two halves of log_run_maintenance: retention (every
 * log.retention.check.interval.ms) and the cheap per-tick work (flush.ms,
 * rolled segments' flushes, unlinking .deleted files whose delay passed). */
int log_run_retention(log_t *l, int64_t now_ms);
void log_run_flush_policy(log_t *l, int64_t now_ms);

/* The high watermark kept for the partition (replication-offset-checkpoint:
 * replication sets it as it moves, the log manager writes it with its other
 * checkpoints and gives it back at start); -1 when none. */
int64_t log_high_watermark(log_t *l);
void log_set_high_watermark(log_t *l, int64_t hw);

/* Moves the whole folder aside (<dir>.<suffix>-delete) for deletion. */
SM_MUST_CHECK int log_rename_for_delete(log_t *l, const char *new_dir);

/* Bounds the idle descriptors and mapped indexes that segments hold,
 * process-wide, active segments included (opened again on demand; default
 * 2048, the log manager sets log_manager_default_open_segments()). */
void log_set_open_segment_limit(int n);
/* Segments currently holding a cached descriptor or mapped index. */
int log_open_segment_count(void);
/* Bounds the segment descriptors held at once, idle or in use by reads
 * in flight (default: no bound; the log manager sets
 * log_manager_default_descriptor_budget()). Past it an open closes idle ones
 * first, then fails as out of descriptors (SM_ERR_LIMIT). */
void log_set_descriptor_budget(int n);
/* Segment descriptors held now, idle or in use. */
int log_open_descriptors(void);
/* A descriptor shortage is waited out, by opening and recovery, for at most
 * this long (default LOG_DESCRIPTOR_WAIT_MS) before the caller is told. */
#define LOG_DESCRIPTOR_WAIT_MS 30000
void log_set_descriptor_wait_ms(int64_t ms);
/* sm_mono_ms() plus the descriptor wait. */
int64_t log_descriptor_deadline(void);
/* After a failed step: true when rc is SM_ERR_LIMIT and a descriptor was
 * waited for (try the step again), false to give up with rc. */
bool log_descriptor_retry(int rc, int64_t deadline);
/* How many times the storage waited for a descriptor (tests, logs). */
int64_t log_descriptor_waits(void);
/* What recovery of unclean logs did, process-wide: segments scanned, bytes
 * scanned (of the segment holding the recovery point only those past the
 * index point below it), and bytes cut as torn or corrupt. */
typedef struct log_recovery_totals {
    int64_t segments, bytes, cut_bytes;
    int64_t max_log_bytes; /* the most bytes one log's recovery scanned */
} log_recovery_totals_t;
void log_recovery_totals(log_recovery_totals_t *out);
/* Starts max_log_bytes over (the log manager, before it loads its dirs). */
void log_recovery_reset_max(void);
/* Bytes read from .log files by storage itself (recovery scans, lookups,
 * copies; not sendfile), process-wide. */
int64_t log_segment_bytes_read(void);

/* Kafka's partition.metadata file in a partition folder ("version: 0",
 * "topic_id: <base64url>"), written atomically. */
SM_MUST_CHECK int log_write_partition_metadata(const char *dir, const uint8_t topic_id[16]);
/* SM_ERR_NOTFOUND when absent, SM_ERR_CORRUPT when unreadable. */
int log_read_partition_metadata(const char *dir, uint8_t topic_id[16]);

#endif
