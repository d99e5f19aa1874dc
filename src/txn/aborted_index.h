/*
 * The aborted-transaction index of one partition: for every aborted
 * transaction, its producer id, first and last offset (the ABORT marker) and
 * the last stable offset when it was aborted. read_committed fetches return
 * the entries overlapping what they read, so clients drop the aborted
 * records. Kept in memory sorted by last offset, and on disk as Kafka's
 * <segment base>.txnindex next to the segment holding the marker (entries of
 * 34 bytes: int16 version 0, then the four int64 fields, big-endian), so it
 * is deleted with its segment. Not thread-safe: the partition's lock covers it.
 *
 * Invariants: entries are sorted by last_offset, strictly increasing (one
 * marker per offset); every entry's last_offset is below the log end.
 */
#ifndef TXN_ABORTED_INDEX_H
#define TXN_ABORTED_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct txn_aborted {
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset;
    int64_t last_stable_offset;
} txn_aborted_t;

typedef struct txn_aborted_index {
    txn_aborted_t *v;
    size_t n, cap;
} txn_aborted_index_t;

#define TXN_ABORTED_ENTRY_SIZE 34

void txn_aborted_index_init(txn_aborted_index_t *x);
void txn_aborted_index_free(txn_aborted_index_t *x);

/* Adds an entry (last_offset above every entry's) and appends it to
 * dir/<segment_base>.txnindex. The entry stays in memory when the file write
 * fails (the log replay after a restart rebuilds it); returns SM_OK or
 * SM_ERR_IO / SM_ERR_NOMEM. */
SM_MUST_CHECK int txn_aborted_index_add(txn_aborted_index_t *x, const txn_aborted_t *e,
                                        const char *dir, int64_t segment_base);
/* Adds an entry found by replaying the log (after `from`, where the files
 * stop): in memory and on disk, like add. */
#define txn_aborted_index_replayed txn_aborted_index_add

/* The first entry (index into v) whose last_offset is >= from; n if none. */
size_t txn_aborted_index_first_ending(const txn_aborted_index_t *x, int64_t from);
/* Calls fn for each entry with last_offset >= from and first_offset < upto,
 * in last-offset order. */
void txn_aborted_index_collect(const txn_aborted_index_t *x, int64_t from, int64_t upto,
                               void (*fn)(void *arg, const txn_aborted_t *e), void *arg);
/* Drops the entry of producer_id's marker at last_offset (the log cleaner
 * removed the marker), if there is one. */
void txn_aborted_index_remove(txn_aborted_index_t *x, int64_t producer_id, int64_t last_offset);
/* Drops entries whose marker is below log_start (their segments are gone). */
void txn_aborted_index_drop_before(txn_aborted_index_t *x, int64_t log_start);

/*
 * Loads every *.txnindex of dir, keeping the entries with last_offset < below
 * (what the log replay from `below` on re-adds is dropped from memory and
 * from the files). A file with a torn or bad entry keeps its good prefix.
 */
int txn_aborted_index_load(txn_aborted_index_t *x, const char *dir, int64_t below);
/* Every entry of dir's *.txnindex files (the valid prefix of each), sorted by
 * last offset, the files left as they are: the log cleaner's read-only view
 * (a file being appended to is read up to its last whole entry). */
int txn_aborted_index_read_dir(txn_aborted_index_t *x, const char *dir);
/* Writes n entries as one index file at path (through a temporary file,
 * fsynced, renamed, the directory fsynced). */
int txn_aborted_index_write_file(const txn_aborted_t *v, size_t n, const char *path);

#endif
