/*
 * Raft entries <-> Kafka record batches of __cluster_metadata-0, as KRaft lays them out on
 * disk and in Fetch responses. An entry is one record (one offset): a data entry is a record
 * whose value is the framed metadata record; a LeaderChange entry is a record of a control
 * batch (key: version 0, type 2) whose value is a LeaderChangeMessage; KRaftVersion (type 5)
 * and Voters (type 6) entries are control records whose value is the entry's data. Consecutive
 * entries of one epoch and kind share a batch; the batch's partition leader epoch is the entries'
 * epoch. Pure functions over buffers.
 */
#ifndef RAFT_RAFT_RECORDS_H
#define RAFT_RAFT_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "raft/raft.h"

/* Kafka's control record type of a LeaderChange record. */
#define RAFT_CONTROL_TYPE_LEADER_CHANGE 2
/* KIP-853's control record types: kraft.version, and the voter set. */
#define RAFT_CONTROL_TYPE_KRAFT_VERSION 5
#define RAFT_CONTROL_TYPE_VOTERS 6

/* Bytes raft_records_encode may need for these entries (an upper bound). */
size_t raft_records_bound(const raft_entry_t *e, int n);

/* Writes the n entries, the first at offset base, as batches into buf (cap bytes, at least
 * raft_records_bound). voters (n_voters) go into LeaderChange messages. Returns 0 with the
 * bytes written in *len, or SM_ERR_SPACE / SM_ERR_RANGE. */
int raft_records_encode(const raft_entry_t *e, int n, int64_t base, int64_t timestamp_ms,
                        const int32_t *voters, int n_voters, uint8_t *buf, size_t cap, size_t *len);

/* Reads whole batches from data (a trailing partial batch is ignored, as in a Fetch answer)
 * into entries allocated from a; entry data points into data or the arena. *base is the
 * offset of the first entry (-1 when none). Every batch must pass its CRC, hold uncompressed
 * records at consecutive offsets following the previous batch. Returns 0, SM_ERR_CORRUPT or
 * SM_ERR_NOMEM. */
int raft_records_decode(const uint8_t *data, size_t len, sm_arena_t *a, raft_entry_t **entries,
                        int *n, int64_t *base);

#endif
