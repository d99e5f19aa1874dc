/*
 * Metadata snapshots in Kafka's KRaft `.checkpoint` format: the metadata image written as
 * record batches (a SnapshotHeader control batch, data batches of metadata records that
 * rebuild the image, a SnapshotFooter control batch), loaded back with every CRC and the
 * header/footer framing checked, the snapshot directory's lifecycle (latest complete one,
 * crash leftovers, retention), and the byte reader behind Raft's FetchSnapshot.
 * Not for: deciding when to snapshot (raft.c asks) or wiring into the server.
 */
#ifndef META_SNAPSHOT_H
#define META_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "metadata/image.h"
#include "raft/raft.h"

/* Kafka's names: `<20-digit end offset>-<10-digit epoch>.checkpoint`; a snapshot being
 * written ends in `.checkpoint.part`, one marked for deletion in `.checkpoint.deleted`. */
#define META_SNAPSHOT_SUFFIX ".checkpoint"
#define META_SNAPSHOT_PART_SUFFIX ".checkpoint.part"
#define META_SNAPSHOT_DELETED_SUFFIX ".checkpoint.deleted"
#define META_SNAPSHOT_NAME_LEN 42 /* 20 + 1 + 10 + 11, without the NUL */

/* Control record types of a snapshot (Kafka's ControlRecordType). */
enum {
    META_CONTROL_SNAPSHOT_HEADER = 3,
    META_CONTROL_SNAPSHOT_FOOTER = 4,
    META_CONTROL_KRAFT_VERSION = 5,
    META_CONTROL_KRAFT_VOTERS = 6,
};

#define META_SNAPSHOT_DEFAULT_BATCH_BYTES (1u << 20)
/* The largest snapshot file meta_snapshot_load reads into memory. */
#define META_SNAPSHOT_MAX_FILE_BYTES ((size_t)1 << 30)

typedef struct meta_snapshot_opts {
    /* Bytes per data batch, header included (a record larger than that gets a batch of
     * its own); 0: META_SNAPSHOT_DEFAULT_BATCH_BYTES. */
    uint32_t max_batch_bytes;
    /* The broker whose dynamic configs the image holds (ConfigRecord resource name). */
    int32_t node_id;
    /* Timestamp of the batches and records; 0: the wall clock. */
    int64_t timestamp_ms;
    /* A dynamic quorum's voter set (KIP-853): written after the header as a KRaftVersion
     * (kraft.version 1) and a Voters control record, as Kafka's snapshots hold them. */
    const raft_voter_set_t *voters;
} meta_snapshot_opts_t;

/* What a loaded (or verified) snapshot held. */
typedef struct meta_snapshot_info {
    raft_offset_epoch_t id; /* from the file name; offset -1 when the name is not Kafka's */
    int64_t last_contained_log_timestamp;
    int64_t records;    /* metadata records (control records not counted) */
    int64_t skipped;    /* metadata records of types this version does not know */
    int32_t batches;    /* all batches, control ones included */
    int64_t size_bytes; /* file size */
    raft_voter_set_t voters; /* its Voters control record; n 0 when it has none */
} meta_snapshot_info_t;

/*
 * Serialises the image as a snapshot with end offset / epoch `id` into a new malloc'd
 * buffer (*data, *len; the caller frees it). The caller holds the image's read lock (or
 * owns the image). Batches have base offsets 0, 1, ... within the snapshot and partition
 * leader epoch id.epoch, as Kafka's RecordsSnapshotWriter writes them. opts may be NULL.
 * Returns SM_OK, SM_ERR_NOMEM, or SM_ERR_RANGE for an id Kafka could not name.
 */
int meta_snapshot_encode(const meta_image_t *img, raft_offset_epoch_t id,
                         int64_t last_contained_log_timestamp, const meta_snapshot_opts_t *opts,
                         uint8_t **data, size_t *len);

/*
 * Writes the bytes of a snapshot as <dir>/<name of id>.checkpoint atomically: into
 * `<name>.checkpoint.part`, fsync, rename, fsync of dir. An existing snapshot of that id
 * is replaced. On failure the .part file is removed and no .checkpoint appears. Returns
 * SM_OK, SM_ERR_IO (errno set) or SM_ERR_RANGE.
 */
int meta_snapshot_write_bytes(const char *dir, raft_offset_epoch_t id, const uint8_t *data,
                              size_t len);

/*
 * A follower receiving a snapshot by FetchSnapshot (RAFT_ACT_SNAPSHOT_WRITE): writes len
 * bytes at position of `<name>.checkpoint.part` (a write at position 0 starts the file
 * afresh). Nothing is fsynced until meta_snapshot_part_install. Returns SM_OK, SM_ERR_IO or
 * SM_ERR_RANGE.
 */
int meta_snapshot_part_write(const char *dir, raft_offset_epoch_t id, int64_t position,
                             const uint8_t *data, size_t len);

/*
 * RAFT_ACT_SNAPSHOT_INSTALL: checks the whole `.part` (as meta_snapshot_verify, with id's
 * epoch), fsyncs it, renames it to `<name>.checkpoint` and fsyncs dir. A `.part` that fails
 * the check is removed (SM_ERR_CORRUPT); one that cannot be read is left. Returns SM_OK,
 * SM_ERR_CORRUPT, SM_ERR_NOTFOUND (no `.part`), SM_ERR_IO, SM_ERR_NOMEM or SM_ERR_RANGE.
 */
int meta_snapshot_part_install(const char *dir, raft_offset_epoch_t id);

/* meta_snapshot_encode then meta_snapshot_write_bytes; the caller holds the image's read
 * lock for the whole call (or owns the image). */
int meta_snapshot_write(const meta_image_t *img, const char *dir, raft_offset_epoch_t id,
                        int64_t last_contained_log_timestamp, const meta_snapshot_opts_t *opts);

/*
 * Checks snapshot bytes without applying them: every batch whole and CRC-valid, offsets
 * consecutive from 0, the first record a SnapshotHeader in a control batch, the last a
 * SnapshotFooter (in a control batch) with nothing after it, every metadata record
 * decodable (types this version does not know are counted in info->skipped). When
 * expect_epoch >= 0, every batch's partition leader epoch must equal it. info may be NULL.
 * Returns SM_OK or SM_ERR_CORRUPT.
 */
int meta_snapshot_verify(const uint8_t *data, size_t len, int32_t expect_epoch,
                         meta_snapshot_info_t *info);

/*
 * Loads the snapshot file at path into img, which must be freshly initialised (empty).
 * The whole file is verified (as meta_snapshot_verify, with the epoch of its name when the
 * name is Kafka's) before any record is applied; then every record is applied with the
 * write lock held, and img->last_offset becomes id.offset - 1. On an error after the
 * check (a record the image refuses, SM_ERR_NOMEM) img is partly filled: free it.
 * info may be NULL. Returns SM_OK, SM_ERR_IO, SM_ERR_CORRUPT, SM_ERR_NOMEM or the
 * image's refusal.
 */
int meta_snapshot_load(meta_image_t *img, const char *path, meta_snapshot_info_t *info);

/* Parses a file name (no directory) of Kafka's `<offset>-<epoch>.checkpoint` form.
 * Returns SM_OK or SM_ERR_PARSE. */
int meta_snapshot_parse_name(const char *name, raft_offset_epoch_t *id);

/*
 * Tidies a snapshot directory and finds the snapshot to load at start: removes crash
 * leftovers (`*.checkpoint.part`, `*.checkpoint.deleted`), takes the newest snapshot
 * (by offset, then epoch) that passes meta_snapshot_verify (a newer one that fails is
 * logged and left in place), and deletes complete snapshots older than it beyond the
 * newest `keep` (keep >= 1; the chosen one counts). Fills *id and path (the chosen
 * file's full path; cap bytes). Returns SM_OK, SM_ERR_NOTFOUND when there is no usable
 * snapshot (a missing directory included), SM_ERR_IO, or SM_ERR_SPACE when path is too
 * small.
 */
int meta_snapshot_latest(const char *dir, int keep, raft_offset_epoch_t *id, char *path,
                         size_t cap);

/*
 * raft_config_t.snapshot_read over a snapshot directory: ctx is the directory's path (a
 * NUL-terminated string that outlives the raft node). Reads up to max bytes at position
 * of snapshot id into buf; *n is what was read (0 at or past the end), *size the file's
 * size. Returns SM_OK, SM_ERR_NOTFOUND when the snapshot is not there, SM_ERR_IO.
 */
int meta_snapshot_read(void *ctx, raft_offset_epoch_t id, int64_t position, uint8_t *buf,
                       uint32_t max, uint32_t *n, int64_t *size);

#endif
