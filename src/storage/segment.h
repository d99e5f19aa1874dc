/*
 * One log segment: the .log file and its in-memory offset and time indexes,
 * mirrored in the .index and .timeindex files. Used only by storage/log.c,
 * under the log's mutex except for the reference count.
 */
#ifndef STORAGE_SEGMENT_H
#define STORAGE_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct seg_index_entry {
    int32_t rel_offset;
    int32_t position;
} seg_index_entry_t;

typedef struct seg_time_entry {
    int64_t timestamp;
    int32_t rel_offset;
} seg_time_entry_t;

struct log_segment {
    int64_t base;        /* base offset (the file name) */
    int64_t next_offset; /* offset after the last batch */
    int64_t size;        /* bytes of whole batches in the .log file */
    int fd;              /* .log, read-write */
    int idx_fd, tidx_fd; /* -1 when closed (inactive segment with loaded index) */
    char *path;          /* <dir>/<20-digit base>, without extension */
    seg_index_entry_t *idx;
    int32_t n_idx, cap_idx;
    seg_time_entry_t *tidx;
    int32_t n_tidx, cap_tidx;
    int64_t max_ts;        /* largest batch max timestamp, -1 when empty */
    int64_t max_ts_offset; /* last offset of the batch holding it */
    int64_t bytes_since_index;
    int64_t created_ms;    /* when the first batch was appended (for segment.ms) */
    atomic_int refs;
    bool deleted;
    int64_t delete_after_ms; /* for .deleted files */
};

#endif
