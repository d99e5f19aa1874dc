/*
 * Kafka's on-disk names and formats around the Raft log, as pure functions over buffers:
 * the `quorum-state` file (one JSON line, QuorumStateData data_version 0 with the static
 * voter set, or 1 as KIP-853 writes it) and snapshot file names
 * (`<20-digit offset>-<10-digit epoch>.checkpoint`). The caller does the file I/O
 * (write to `quorum-state.tmp`, fsync, rename, as Kafka does).
 */
#ifndef RAFT_QUORUM_FILE_H
#define RAFT_QUORUM_FILE_H

#include <stddef.h>

#include "raft/raft.h"

/* Writes data_version 0: {"clusterId":"","leaderId":..,"leaderEpoch":..,"votedId":..,
 * "appliedOffset":0,"currentVoters":[{"voterId":..},..],"data_version":0} and a newline.
 * n_voters < 0: data_version 1 (a dynamic quorum, KIP-853), {"leaderId":..,"leaderEpoch":..,
 * "votedId":..,"data_version":1}. Returns 0, or SM_ERR_SPACE when buf is too small. */
int raft_quorum_file_format(const raft_quorum_state_t *st, const int32_t *voters, int n_voters,
                            char *buf, size_t cap, size_t *len);

/* Parses the file's first line (data_version 0 or 1). *n_voters is -1 when the file names no
 * voter set (version 1). Returns 0, or SM_ERR_PARSE on anything else. */
int raft_quorum_file_parse(const char *text, size_t len, raft_quorum_state_t *st,
                           int32_t voters[RAFT_MAX_VOTERS], int *n_voters);

/* "00000000000000012345-0000000007.checkpoint" for (12345, 7). */
int raft_snapshot_file_name(raft_offset_epoch_t id, char *buf, size_t cap);

#endif
