/*
 * KIP-853 voter sets: lookups, and their form in the log, a VotersRecord (and the
 * KRaftVersionRecord that goes with kraft.version 1) encoded as Kafka encodes the values of
 * those control records. Pure functions; the history of sets along the log is raft.c's.
 */
#ifndef RAFT_RAFT_VOTERS_H
#define RAFT_RAFT_VOTERS_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/* Index of id in s, -1 when it does not vote. */
int raft_voters_find(const raft_voter_set_t *s, int32_t id);

/* Writes s as a VotersRecord value (version 0, each voter with its one endpoint and the
 * kraft.version range 0..1) into buf. Returns 0 with *len, or SM_ERR_SPACE. */
int raft_voters_encode(const raft_voter_set_t *s, uint8_t *buf, size_t cap, size_t *len);
/* Reads a VotersRecord value. Returns 0, or SM_ERR_CORRUPT (bad bytes, too many voters, a
 * negative or repeated id). The first endpoint of each voter is kept. */
int raft_voters_decode(const uint8_t *data, size_t len, raft_voter_set_t *out);

/* A KRaftVersionRecord value of the given kraft.version (RAFT_KRAFT_VERSION_BYTES). */
#define RAFT_KRAFT_VERSION_BYTES 8
int raft_kraft_version_encode(int16_t version, uint8_t *buf, size_t cap, size_t *len);
int raft_kraft_version_decode(const uint8_t *data, size_t len, int16_t *version);

/* Upper bound of raft_voters_encode's output. */
#define RAFT_VOTERS_BYTES_MAX                                                                      \
    (8 + RAFT_MAX_VOTERS * (4 + 16 + 8 + RAFT_LISTENER_MAX + RAFT_HOST_MAX + 16))

#endif
