/*
 * One partition's log in Kafka's on-disk format: a folder <topic>-<partition>
 * of segments named by their 20-digit base offset (.log holds record batches
 * byte for byte, .index maps relative offsets to file positions every
 * index.interval.bytes, .timeindex maps timestamps to relative offsets). This
 * layer knows nothing about topics' metadata or clients.
 *
 * Threads: appends, truncation and roll are serialised by the log's mutex;
 * readers may run concurrently and see only batches whose write finished
 * (the end position is published after the write). Segments are
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

typedef struct log_config {
    int64_t segment_bytes;        /* segment.bytes / log.segment.bytes */
    int64_t segment_ms;           /* segment.ms / log.roll.ms */
    int32_t index_interval_bytes; /* index.interval.bytes */
    int32_t segment_index_bytes;  /* segment.index.bytes: max index file size */
    int64_t retention_ms;         /* -1: forever */
    int64_t retention_bytes;      /* -1: unlimited */
    int64_t flush_interval_messages; /* flush.messages: fsync after this many */
    int64_t flush_interval_ms;    /* flush.ms: fsync when the oldest unflushed is older */
    int64_t file_delete_delay_ms; /* file.delete.delay.ms */
    bool fsync_before_ack;        /* samsa.log.fsync.before.ack */
} log_config_t;

/* Kafka's defaults. */
void log_config_default(log_config_t *cfg);

typedef struct log_segment log_segment_t;
struct proto_batch_header;
typedef struct log log_t;

/* A byte range of a segment file to send (sendfile) or copy. Holds a segment
 * reference until log_range_release. */
typedef struct log_range {
    log_segment_t *seg;
    int fd;
    int64_t file_pos;
    size_t len;            /* 0 when nothing is available at the offset */
    int64_t first_offset;  /* base offset of the first batch in the range */
} log_range_t;

/*
 * Opens (creating if needed) the log in folder dir. clean: the log dir was shut
 * down cleanly and recovery_point (from the checkpoint) covers everything: no
 * segment data is read. Otherwise segments from the one holding recovery_point
 * on are scanned, batches validated, a torn or corrupt tail truncated and
 * indexes rebuilt; what was cut is logged in one line. log_start_offset comes
 * from the log-start-offset checkpoint (-1 if unknown).
 */
int log_open(const char *dir, const log_config_t *cfg, bool clean, int64_t recovery_point,
             int64_t log_start_offset, log_t **out);
/* Flushes, trims the active segment's indexes and closes every file. */
int log_close(log_t *l);
/* Closes without flushing (tests: simulate a crash of this process). */
void log_abandon(log_t *l);

/* Changes the configuration (dynamic topic configs). */
void log_set_config(log_t *l, const log_config_t *cfg);
const char *log_dir(const log_t *l);

int64_t log_end_offset(log_t *l);
int64_t log_start_offset(log_t *l);
/* Offset up to which (exclusive) the log is known to be on disk. */
int64_t log_flushed_offset(log_t *l);
/* Total bytes of all segments. */
int64_t log_size_bytes(log_t *l);
int log_segment_count(log_t *l);
bool log_offline(log_t *l);

/*
 * Appends one or more validated record batches (data is modified in place:
 * base offsets are assigned from the log end offset and the partition leader
 * epoch is set). Returns the first and last offsets assigned. Rolls to a new
 * segment first when segment.bytes, segment.ms, a full index or the relative
 * offset range require it.
 */
int log_append(log_t *l, uint8_t *data, size_t len, int32_t leader_epoch, int64_t *first_offset,
               int64_t *last_offset);

/* fsyncs everything appended so far (group commit: concurrent callers share
 * one fsync). Returns SM_OK when data up to the log end at the call is on disk. */
int log_flush(log_t *l);

/*
 * The range of segment bytes starting at the batch containing offset, at most
 * max_bytes long (but never less than the whole first batch when min_one),
 * within one segment. Returns SM_OK (len may be 0 at the log end),
 * SM_ERR_RANGE if offset is outside [log start, log end].
 */
int log_read(log_t *l, int64_t offset, size_t max_bytes, bool min_one, log_range_t *out);
void log_range_release(log_range_t *r);
/* Copies up to cap bytes of the range into buf; returns bytes copied or < 0. */
int64_t log_range_copy(const log_range_t *r, uint8_t *buf, size_t cap);

/*
 * Calls fn for every batch from the one holding offset from to the log end,
 * in order, with the batch bytes copied out (headers parsed, not validated).
 * fn returns SM_OK to go on, or a status that stops the walk and is returned.
 */
int log_for_each_batch(log_t *l, int64_t from,
                       int (*fn)(void *arg, const uint8_t *batch, size_t len,
                                 const struct proto_batch_header *h),
                       void *arg);

/*
 * ListOffsets by timestamp: the first offset whose batch max timestamp is >= ts
 * (and that record's timestamp in *found_ts). *offset = -1 when none is.
 */
int log_offset_for_timestamp(log_t *l, int64_t ts, int64_t *offset, int64_t *found_ts);
/* The offset and timestamp of the record with the largest timestamp. */
int log_max_timestamp(log_t *l, int64_t *offset, int64_t *ts);

/* Removes every batch at or after offset (replication: follower truncation). */
int log_truncate_to(log_t *l, int64_t offset);
/* Moves the log start offset to offset (DeleteRecords) and drops whole
 * segments below it. SM_ERR_RANGE when offset > log end. */
int log_delete_records_before(log_t *l, int64_t offset);

/*
 * One pass of time/size retention and flush.ms at now_ms. Deleted segments are
 * renamed to .deleted and removed after file.delete.delay.ms. Returns the
 * number of segments removed. Called from the log manager's background thread.
 */
int log_run_maintenance(log_t *l, int64_t now_ms);

/* Moves the whole folder aside (<dir>.<suffix>-delete) for deletion. */
int log_rename_for_delete(log_t *l, const char *new_dir);

#endif
