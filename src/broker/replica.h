/*
 * Replication of partitions between the brokers of a cluster (issue 13), as
 * Kafka 4.4 replicates them: followers fetch from the leader with the Fetch
 * API, the leader tracks what each follower has and advances the high
 * watermark (HW) to what every in-sync replica (ISR) has, and changes the
 * ISR through the controller (AlterPartition).
 *
 * A partition on this broker is, by the metadata image only:
 *   leader    serves Produce and consumer Fetches; knows each follower's log
 *             end (LEO, from its fetch offset) and when it last caught up;
 *             HW = the least LEO of the ISR (and of members being added);
 *             asks the controller to drop a follower that has not caught up
 *             for replica.lag.time.max.ms and to add one that reached HW;
 *   follower  registered with the replica fetcher of its leader's broker;
 *             appends what it fetches with the leader's offsets and epochs,
 *             truncates a tail that diverges from the leader's log (the
 *             leader's answer to the last fetched epoch, KIP-320), and takes
 *             HW = min(leader's HW, own LEO);
 *   leaderless (leader -1) neither: clients get NOT_LEADER_OR_FOLLOWER.
 * Single-node mode never replicates: p->replicated is false, p->leader true,
 * and the HW is the log end.
 *
 * Invariants: HW <= LEO; a leader's HW never moves back; a leader's HW is
 * at most the LEO of every member of the ISR it last had committed; every
 * batch a leader appends carries its current leader epoch and the
 * leader-epoch cache has an entry for that epoch at or before the batch;
 * at most one ISR change per partition is in flight, and its answer is
 * applied only when its partition epoch is newer than the one known; a
 * proposal whose outcome is unknown (it timed out, or was refused after an
 * attempt that may have been committed) keeps counting in the HW and is
 * proposed again unchanged until the metadata shows a newer partition epoch.
 *
 * Locks: everything here runs under the partition's mu, except the calls to
 * the controller (cluster_alter_partition) and to broker_wake, made after mu
 * is released. The fetchers' lock (replica_fetcher.c) is taken after a
 * partition's mu, never before it.
 */
#ifndef BROKER_REPLICA_H
#define BROKER_REPLICA_H

#include "broker/partition.h"
#include "broker/replica_rules.h"
#include "metadata/image.h"

typedef struct replica_set {
    int32_t n;
    replica_peer_t *peers; /* the assignment, this broker included */
    int32_t n_isr;
    int32_t *isr; /* the committed ISR */
    bool alter_inflight;
    int32_t n_pending;
    int32_t *pending;        /* the ISR proposed while in flight or unresolved */
    int32_t pending_base_pe; /* the partition epoch it was proposed at */
    bool pending_unresolved; /* its AlterPartition failed and may have been committed */
    int64_t alter_retry_ms;  /* no new proposal before this (monotonic) */
    int64_t leader_hw;       /* follower: the leader's HW in its last answer, -1 unknown */
} replica_set_t;

/* Whether this broker leads p (clients' requests are served here). */
bool broker_partition_serves(broker_partition_t *p);
/* The high watermark: what consumers may read below. */
int64_t broker_partition_hw(broker_partition_t *p);

/* At creation, under no lock: loads the leader-epoch cache and sets the
 * partition up as the image says (broker_replica_update). */
SM_MUST_CHECK int broker_replica_init(broker_partition_t *p, const meta_partition_t *mp);
void broker_replica_free(broker_partition_t *p);
/* The image changed this partition (leader, epochs, replicas, ISR): becomes
 * leader or follower, registers with or leaves a fetcher. Takes p->mu. */
void broker_replica_update(broker_partition_t *p, const meta_partition_t *mp);

/* Produce, before the append: NOT_LEADER_OR_FOLLOWER when this broker does
 * not lead p; with acks=all, NOT_ENOUGH_REPLICAS when the ISR is smaller than
 * min.insync.replicas. NONE otherwise. Takes p->mu. */
int16_t broker_replica_produce_check(broker_partition_t *p, int16_t acks);
/* Under p->mu after the leader appended: a lone ISR member moves HW to the
 * log end. Returns true when HW moved (the caller wakes p after unlock). */
bool broker_replica_appended(broker_partition_t *p);
/* Produce with acks=all: whether everything below `required` is replicated.
 * Returns false while waiting; true with *err: NONE, NOT_LEADER_OR_FOLLOWER
 * (leadership lost), NOT_ENOUGH_REPLICAS_AFTER_APPEND (ISR below
 * min.insync.replicas). Takes p->mu. */
bool broker_replica_acked(broker_partition_t *p, int64_t required, int16_t *err);

/* The coordinators' writes: done(arg, SM_OK) once the ISR has everything
 * below end (at once on a single node or when it already has), SM_ERR_AGAIN
 * when leadership is lost, the ISR is below min.insync.replicas or timeout_ms
 * passes first. done runs on this thread or the delayed thread. */
typedef void (*broker_replicated_fn)(void *arg, int status);
void broker_replica_when_replicated(broker_partition_t *p, int64_t end, int64_t timeout_ms,
                                    broker_replicated_fn done, void *arg);
/* The same, blocking (a thread that may wait: the marker writer). Not on the
 * delayed thread. */
int broker_replica_wait_replicated(broker_partition_t *p, int64_t end, int64_t timeout_ms);

/*
 * A follower's Fetch reached the leader (Fetch with a replica id): checks the
 * follower's last fetched epoch against the leader-epoch cache (a divergence
 * fills *div_epoch / *div_end, and then the fetch reads nothing), records the
 * follower's LEO and catch-up time, moves HW and proposes ISR growth. Returns
 * a Kafka error (NOT_LEADER_OR_FOLLOWER when not the leader or not a replica).
 * *hw_moved: the caller wakes p. Takes p->mu.
 */
int16_t broker_replica_follower_fetch(broker_partition_t *p, int32_t replica_id,
                                      int64_t broker_epoch, int64_t fetch_offset,
                                      int32_t last_fetched_epoch, int32_t *div_epoch,
                                      int64_t *div_end, bool *hw_moved);

/*
 * Leader side of the replication throttle (Kafka's shouldLeaderThrottle), for a
 * follower's fetch of p: true when p is leader-throttled on this broker, the
 * follower is not in the ISR and the leader quota is exceeded: the answer then
 * carries no records for p (and they do not count toward the fetch's min bytes).
 * *counted: p's bytes in the answer count against the leader quota (every
 * follower's, in the ISR or not, as Kafka counts them). Takes p->mu.
 */
bool broker_replica_leader_throttle(broker_partition_t *p, int32_t replica_id, bool *counted);

/* The partition is deleted here: its fetcher lets it go. */
void broker_replica_stop(broker_partition_t *p);

/* OffsetForLeaderEpoch from the leader-epoch cache: where epoch ended. */
void broker_replica_epoch_end(broker_partition_t *p, int32_t epoch, int32_t *out_epoch,
                              int64_t *out_end);

/* KIP-392 with replica.selector.class RackAwareReplicaSelector: the in-sync
 * replica in the client's rack a consumer should read from, or -1 (the
 * leader: no rack given, none there, or the leader is there). */
int32_t broker_replica_preferred_read(broker_partition_t *p, sm_str_t client_rack);

/* The ISR upkeep of a leader (periodic): drops followers not caught up for
 * replica.lag.time.max.ms, retries additions. */
void broker_replica_tick(broker_partition_t *p, int64_t now_ms);

/* Follower side (replica_fetcher.c calls these; each takes p->mu). */
typedef struct replica_fetch_pos {
    int64_t fetch_offset;
    int32_t last_fetched_epoch;
    int32_t current_leader_epoch;
    int64_t log_start;
    bool throttled; /* follower-throttled here: its bytes count against the follower quota */
    bool in_sync;   /* in the ISR, or caught up to the leader's HW: never held back */
} replica_fetch_pos_t;
/* Where to fetch from; false when p is no longer a follower of leader. */
bool broker_replica_fetch_pos(broker_partition_t *p, int32_t leader, replica_fetch_pos_t *pos);
/* Appends fetched batches (complete ones, CRC-checked) and takes the leader's
 * HW and log start. Returns SM_OK, SM_ERR_CORRUPT (a bad batch: nothing
 * after it appended), SM_ERR_RANGE (offsets not after the log end: the
 * leader changed under us), or the log's error. */
int broker_replica_follower_append(broker_partition_t *p, int32_t leader, int64_t fetch_offset,
                                   const uint8_t *records, size_t len, int64_t leader_hw,
                                   int64_t leader_log_start);
/* The leader's answer to a divergent last fetched epoch: truncates the tail
 * that differs. */
int broker_replica_diverged(broker_partition_t *p, int32_t leader, int32_t epoch, int64_t end);
/* The fetch offset is outside the leader's log: below its start, restarts
 * the log at the start; above its end, truncates to its HW. */
int broker_replica_out_of_range(broker_partition_t *p, int32_t leader, int64_t fetch_offset,
                                int64_t leader_log_start, int64_t leader_hw);

/* Fetchers and the ISR upkeep thread (replica_fetcher.c). */
SM_MUST_CHECK int broker_replicas_start(broker_t *b);
/* Joins the threads; fetchers keep their partitions until free (the quorum
 * thread may still call broker_replicas_follow, then ignored). */
void broker_replicas_stop(broker_t *b);
/* After the quorum thread stopped: releases everything. */
void broker_replicas_free(broker_t *b);
/* Makes the fetcher of broker `leader` fetch p (-1: no fetcher). */
void broker_replicas_follow(broker_t *b, broker_partition_t *p, int32_t leader);

#endif
