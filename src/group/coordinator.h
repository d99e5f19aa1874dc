/*
 * The group coordinator: consumer groups of the classic protocol (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, static membership KIP-345), committed
 * offsets and the admin views of groups, persisted in __consumer_offsets in
 * Kafka's record formats and read back at start. It reaches the broker only
 * through group_host_t (host.h); the group APIs' handlers (declared in
 * broker/handlers/handlers.h) take the coordinator from the broker.
 *
 * Its parts: runtime.c (shards per partition of __consumer_offsets, the write
 * path, the timer, loading), records.c (the records), classic.c (the classic
 * protocol's state machine), offsets.c (committed offsets), admin.c (list,
 * describe, delete, find coordinator).
 */
#ifndef GROUP_COORDINATOR_H
#define GROUP_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"
#include "group/host.h"

typedef struct group_coordinator group_coordinator_t;

/* Reads the group.* and offsets.* settings of cfg, starts the timer and the
 * loader thread. With load_all (a single node) loads the groups of every
 * partition through host (borrowed: copied) before returning; without (a
 * cluster) every shard starts unloaded and the loader loads those
 * group_coordinator_elect names. */
int group_coordinator_new(const group_host_t *host, int32_t partitions, const sm_config_t *cfg,
                          bool load_all, group_coordinator_t **out);
/* This broker became the leader of __consumer_offsets partition at
 * leader_epoch: the shard answers COORDINATOR_LOAD_IN_PROGRESS until the
 * loader thread has read the partition, then serves it. Non-blocking: any
 * thread, no lock of the coordinator's held. */
void group_coordinator_elect(group_coordinator_t *c, int32_t partition, int32_t leader_epoch);
/* This broker no longer leads the partition: its shard answers NOT_COORDINATOR
 * at once; the loader drops its groups and answers their parked requests with
 * NOT_COORDINATOR. Non-blocking, as elect. */
void group_coordinator_resign(group_coordinator_t *c, int32_t partition);
/* Answers parked requests (COORDINATOR_NOT_AVAILABLE) and stops the timer.
 * The coordinator stays allocated: requests the event loops still dispatch
 * are answered (a join or sync with COORDINATOR_NOT_AVAILABLE: none parks
 * any more). */
void group_coordinator_stop(group_coordinator_t *c);
/* Frees the coordinator, after the event loops stopped (waits for answers
 * still waiting on the host's flushes). */
void group_coordinator_free(group_coordinator_t *c);
/* Tests: replaces the host (old receives the previous one); call while no
 * request is in flight. */
void group_coordinator_swap_host(group_coordinator_t *c, const group_host_t *h, group_host_t *old);

/* Kafka's partition of __consumer_offsets for a group: abs(hashCode) % n. */
int32_t group_partition_for(sm_str_t group_id, int32_t partitions);
/* A transaction marker was written on __consumer_offsets partition: its
 * producer's pending transactional offsets are applied (commit) or dropped. */
void group_coordinator_txn_marker(group_coordinator_t *c, int32_t partition, int64_t producer_id,
                                  bool commit);
/* The broker's side (broker/group_host.c), for the transaction coordinator:
 * the __consumer_offsets partition of a group (-1 without a coordinator),
 * and group_coordinator_txn_marker on the broker's coordinator. */
struct broker;
int32_t group_offsets_partition(struct broker *b, sm_str_t group_id);
void group_txn_marker(struct broker *b, int32_t partition, int64_t producer_id, bool commit);

#endif
