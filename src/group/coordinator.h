/*
 * The group coordinator: the classic consumer group protocol (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, static membership KIP-345), committed
 * offsets, and the admin views of groups. State is kept in memory and every
 * change that must survive a restart is appended to __consumer_offsets in
 * Kafka's record formats (OffsetCommitKey/Value, GroupMetadataKey/Value),
 * which is read back, newest record wins, at start.
 *
 * Threads: handlers run on event-loop threads, the coordinator's timer thread
 * expires sessions and rebalance deadlines; one mutex guards all groups.
 * Parked JoinGroup and SyncGroup requests are completed by whichever thread
 * moves the group on.
 *
 * State machine of a group (Kafka's):
 *
 *   Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
 *     ^                 ^       |                                     |
 *     |                 |       +--every member gone--> Empty         | leader's SyncGroup
 *     |                 +--join, leave, session expiry----------------+--> Stable
 *     +--last member leaves / expires (from Stable or Completing)---------+
 */
#ifndef GROUP_COORDINATOR_H
#define GROUP_COORDINATOR_H

#include "broker/broker.h"

typedef struct group_coordinator group_coordinator_t;

/* Creates __consumer_offsets when missing, loads the groups, starts the timer. */
int group_coordinator_start(broker_t *b);
/* Answers parked requests and stops the timer thread. The coordinator stays
 * allocated: requests the event loops still dispatch are answered (a join
 * or sync with COORDINATOR_NOT_AVAILABLE: none parks any more). */
void group_coordinator_stop(broker_t *b);
/* Frees the coordinator, after the event loops stopped. */
void group_coordinator_free(broker_t *b);

/* Kafka's partition of __consumer_offsets for a group: abs(hashCode) % n. */
int32_t group_partition_for(sm_str_t group_id, int32_t partitions);
/* The __consumer_offsets partition of a group, or -1 without a coordinator. */
int32_t group_offsets_partition(broker_t *b, sm_str_t group_id);
/* A transaction marker was written on __consumer_offsets partition: its
 * producer's pending transactional offsets are applied (commit) or dropped. */
void group_txn_marker(broker_t *b, int32_t partition, int64_t producer_id, bool commit);

#endif
