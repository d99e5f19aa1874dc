/*
 * One log segment (internal to storage/): the .log file, its sparse offset
 * index and time index, and a process-wide cache that bounds how many inactive
 * segments hold an open descriptor or a mapped index. Not a public API: only
 * storage/log*.c use it.
 *
 * Lock order: the log's mutex, then s->imu, then s->fmu, then the cache mutex.
 *  - the log's mutex guards next_offset, bytes_since_index, created_ms and the
 *    segment's place in the log;
 *  - s->imu guards the index views, max_ts / max_ts_offset / ts_known, and
 *    (together with fmu) pinned;
 *  - s->fmu guards fd, fd_users, path, deleted and pinned;
 *  - size is atomic: written under the log's mutex after the bytes are in the
 *    file, read by anyone (a reader never looks past it).
 * A pinned segment (the active one, or a rolled one not yet flushed) keeps its
 * in-memory index; its descriptor, like every segment's, is in the cache's LRU
 * while open and not in use, and may be closed (reopened on the next
 * seg_fd_acquire). An unpinned segment may also lose its mapped index there.
 * So descriptors are bounded by the cache limit plus those in use, whatever
 * the number of partitions.
 */
#ifndef STORAGE_SEGMENT_H
#define STORAGE_SEGMENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/records.h"

#define SEG_IDX_ENTRY 8   /* .index: int32 relative offset, int32 position (big-endian) */
#define SEG_TIDX_ENTRY 12 /* .timeindex: int64 timestamp, int32 relative offset */

/* Entries as on disk; data is malloc'd (cap > 0) or a read-only mmap (cap == 0). */
typedef struct seg_index {
    uint8_t *data;
    int32_t n;
    size_t cap;
    size_t map_len;
} seg_index_t;

typedef struct log_segment log_segment_t;

struct log_segment {
    int64_t base;
    _Atomic int64_t size;
    atomic_uint truncations; /* bumped before each truncation: readers notice */
    int64_t next_offset;
    int64_t bytes_since_index;
    int64_t created_ms;
    atomic_int refs;

    pthread_mutex_t imu;
    bool idx_loaded;
    bool idx_corrupt; /* a read found the index pointing at garbage: rebuild on next use */
    seg_index_t idx, tidx;
    bool ts_known;
    int64_t max_ts;        /* largest batch max timestamp, -1 when none */
    int64_t max_ts_offset; /* last offset of the batch that holds it */
    /* A pinned segment's index entries already in its files (a recovery
     * hint written at each flush); stale: rewrite the files whole. */
    int32_t idx_persisted, tidx_persisted;
    bool idx_files_stale;

    pthread_mutex_t fmu;
    char *path; /* <dir>/<20-digit base>, without extension */
    int fd;
    int fd_users;
    bool pinned;
    bool deleted;
    int64_t delete_after_ms;

    log_segment_t *lru_prev, *lru_next; /* cache mutex */
    bool in_lru;
};

/* A new segment object (refs = 1) for files <dir>/<base>.*; opens nothing. */
log_segment_t *seg_new(const char *dir, int64_t base);
void seg_ref(log_segment_t *s);
/* Drops a reference; the last one closes the files and frees the segment. */
void seg_unref(log_segment_t *s);

/* Creates an empty active segment: truncates/creates .log, removes stale index
 * files, pins it with an empty in-memory index. May evict others from the
 * cache: the caller holds no segment lock. SM_ERR_LIMIT when out of
 * descriptors (nothing was created), SM_ERR_IO otherwise (errno set). */
int seg_create_files(log_segment_t *s);
/* Pins an existing segment as the active one: copies its index into memory so
 * appends can extend it (loads it if needed). The .log is opened on demand. */
int seg_pin_active(log_segment_t *s, int32_t index_interval);
/* The segment stops needing its resources pinned (it was flushed and its index
 * files written): it joins the cache's LRU. */
void seg_unpin(log_segment_t *s);

/* A descriptor of the .log file (read-write), open until seg_fd_release.
 * Opens it when the cache closed it; out of descriptors, first closes idle
 * cached ones. SM_ERR_LIMIT when the process is still out of descriptors
 * (EMFILE/ENFILE), SM_ERR_IO otherwise (errno set). May evict others: the
 * caller holds no segment lock. */
int seg_fd_acquire(log_segment_t *s, int *fd);
void seg_fd_release(log_segment_t *s);

/* Path of one of the segment's files ("" / ".deleted" suffix applied). */
void seg_file_path(log_segment_t *s, const char *ext, char *buf, size_t cap);

/*
 * Notes one batch appended at pos in the in-memory indexes (caller holds the
 * log's mutex; takes imu). An offset index entry is added every
 * index_interval bytes and for the first batch; the time index gets the
 * maximum timestamp so far when it grew.
 */
int seg_note_batch(log_segment_t *s, int32_t index_interval, int64_t pos,
                   const proto_batch_header_t *h);
/* Appends the time index's closing entry (max timestamp so far), as Kafka does
 * when a segment becomes inactive or is closed. Caller holds the log's mutex. */
int seg_close_time_index(log_segment_t *s);
/* Writes both index files from memory and fsyncs them. */
int seg_write_index_files(log_segment_t *s);
/*
 * Writes the in-memory index entries not yet in the index files (a pinned
 * segment's; no fsync): after a crash they let recovery skip the part of the
 * segment below the recovery point (seg_recover_from). Entries describing
 * data not yet flushed are harmless: recovery keeps only those below it.
 */
int seg_persist_index(log_segment_t *s);
/*
 * Recovery of a segment whose bytes below the recovery point rp are known to
 * be on disk: keeps the entries of its index files that describe offsets
 * below rp, and scans (validating every batch) only from the second-to-last
 * of those offset index entries on. Falls back to a whole scan when the files
 * hold fewer than two such entries or the batch there does not check.
 * *valid_end as seg_scan; *scan_from: where the scan began.
 */
int seg_recover_from(log_segment_t *s, int fd, int32_t index_interval, int64_t rp,
                     int64_t file_size, int64_t *valid_end, int64_t *scan_from);

/*
 * Rebuilds the in-memory indexes by reading the .log from position 0 through
 * fd. validate: check every batch's size and CRC; otherwise headers and
 * sizes only. *valid_end: where whole valid batches end. Also sets next_offset,
 * bytes_since_index and the max timestamp. Single-threaded use (open, or under
 * the log's mutex with imu held by the caller when with_imu is false).
 */
int seg_scan(log_segment_t *s, int fd, int32_t index_interval, bool validate, int64_t file_size,
             int64_t *valid_end);

/*
 * The file position from which to walk batch headers to reach the batch that
 * holds offset (0 when no index entry is below it). Loads the index lazily;
 * rebuilds it when missing or corrupt.
 */
int seg_lookup_position(log_segment_t *s, int32_t index_interval, int64_t offset, int64_t *pos);
/* The offset to start a search for the first record with timestamp >= ts. */
int seg_lookup_time(log_segment_t *s, int32_t index_interval, int64_t ts, int64_t *offset);
/* Max timestamp and its offset (loads the time index's last entry lazily). */
int seg_max_timestamp(log_segment_t *s, int32_t index_interval, int64_t *ts, int64_t *offset);
/* A read found garbage where the index pointed: rebuild it on next use. */
void seg_mark_index_corrupt(log_segment_t *s);
/*
 * Drops in-memory index entries at or after offset / position pos (the
 * segment is being truncated to pos, caller holds the log's mutex and the
 * segment is pinned), then recomputes the max timestamp and
 * bytes_since_index from what is left (reads the batches after the last kept
 * index entry through fd).
 */
int seg_truncate_indexes(log_segment_t *s, int fd, int64_t offset, int64_t pos);

/* Renames the three files to *.deleted (deletion delayed like Kafka's). */
int seg_rename_deleted(log_segment_t *s, int64_t delete_after_ms);
/* True once the segment was renamed for deletion (retention, truncation). */
bool seg_retired(log_segment_t *s);
/* Unlinks the files (with their .deleted suffix when renamed). */
void seg_unlink_files(log_segment_t *s);
/* The folder was renamed: files now live under dir. */
int seg_set_dir(log_segment_t *s, const char *dir);

/* SM_ERR_LIMIT for EMFILE/ENFILE (a descriptor shortage: retry later),
 * SM_ERR_IO for anything else. */
int seg_status_of_errno(int err);
/*
 * Waits for a descriptor (after an open failed with SM_ERR_LIMIT): closes
 * every idle cached descriptor, then waits until the storage closes one or a
 * short slice (descriptors held elsewhere give no signal) has passed.
 * SM_OK: try the open again; SM_ERR_LIMIT: deadline_ms (sm_mono_ms) passed.
 * The caller holds no segment lock.
 */
int seg_fd_wait(int64_t deadline_ms);
/* How many times seg_fd_wait waited, process-wide (tests, logs). */
int64_t seg_fd_waits(void);

/* Bounds the .log descriptors segments hold at once, idle or in use (a
 * read's range holds one until released): past it an open first closes
 * idle ones, then fails as out of descriptors (SM_ERR_LIMIT). */
void seg_set_fd_budget(int n);
/* .log descriptors the segments hold now. */
int seg_open_fds(void);
/* Bounds how many segments keep an idle fd or a mapped index (>= 1). */
void seg_cache_set_limit(int n);
/* Segments currently in the cache (tests, metrics). */
int seg_cache_size(void);

/* pread through the storage read counter. */
int seg_pread(int fd, void *buf, size_t len, int64_t off);
/* Bytes storage read from .log files itself (recovery, lookups, copies):
 * sendfile ranges are not counted. */
int64_t seg_bytes_read(void);

#endif
