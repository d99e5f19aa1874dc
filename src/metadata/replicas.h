/*
 * The controller's replica decisions as pure functions of the image's state: where the
 * replicas of new partitions go (rack-aware, balanced), who leads a partition when brokers
 * are fenced, unfenced or shut down, whether an AlterPartition from a leader is accepted,
 * and the preferred leader election. No I/O and no locks: the callers (controller.c,
 * src/cluster) read the image, decide here, and commit the records the decision implies.
 * Not here: turning decisions into records, liveness, the wire.
 */
#ifndef META_REPLICAS_H
#define META_REPLICAS_H

#include <stdbool.h>
#include <stdint.h>

#include "metadata/image.h"

/* More replicas per partition than this are refused (INVALID_REPLICATION_FACTOR). */
#define META_MAX_REPLICAS 64

/* A broker replicas may be placed on. */
typedef struct meta_place_broker {
    int32_t id;
    const char *rack; /* "" when none */
} meta_place_broker_t;

/*
 * Places rf replicas for each of n partitions on the nb brokers (distinct, unfenced ones).
 * out gets n * rf broker ids, partition i's at out[i * rf], its leader first. Replicas of a
 * partition are distinct brokers spread over as many racks as there are; leaders go round
 * the brokers in rack-alternating order from `start` (a random number for new topics), so
 * consecutive partitions alternate racks and each broker leads n / nb of them; followers
 * shift with each round so that the same leader does not always get the same followers.
 * Returns SM_OK, or SM_ERR_RANGE when rf < 1, rf > nb or rf > META_MAX_REPLICAS, SM_ERR_NOMEM.
 */
int meta_place_replicas(const meta_place_broker_t *brokers, int nb, int32_t n, int32_t rf,
                        uint32_t start, int32_t *out);

/* What the controller knows of the brokers for an election. */
typedef struct meta_broker_view {
    const int32_t *usable; /* unfenced and not in controlled shutdown */
    int n_usable;
    const int32_t *alive; /* unfenced (an unclean election may pick these) */
    int n_alive;
} meta_broker_view_t;

/* A partition change the decisions produce (a PartitionChangeRecord's fields). */
typedef struct meta_partition_change {
    bool changed;
    int32_t leader; /* -2: unchanged, -1: no leader */
    bool isr_changed;
    int32_t n_isr;
    int32_t isr[META_MAX_REPLICAS];
    bool unclean; /* the leader was elected from outside the ISR */
    bool replicas_changed;
    int32_t n_replicas;
    int32_t replicas[META_MAX_REPLICAS];
    bool reassign_changed; /* adding / removing set (possibly emptied) */
    int32_t n_adding, n_removing;
    int32_t adding[META_MAX_REPLICAS], removing[META_MAX_REPLICAS];
    bool elr_changed; /* eligible leader replicas and LastKnownElr (KIP-966) */
    int32_t n_elr, n_last_known_elr;
    int32_t elr[META_MAX_REPLICAS], last_known_elr[META_MAX_REPLICAS];
} meta_partition_change_t;

bool meta_id_in(const int32_t *ids, int n, int32_t id);

/*
 * Leadership after broker `gone` (-1: none) is fenced or shuts down, or after a broker is
 * unfenced (it is then in view->usable, gone -1). gone leaves the ISR unless it is its last
 * member (Kafka keeps the last one, so the partition knows who has its data). The leader
 * stays when it is still usable; otherwise the first replica in replica order that is in the
 * (new) ISR and usable leads; none: with unclean, the first alive replica leads and becomes
 * the whole ISR (data may be lost); else the partition has no leader (-1).
 */
void meta_partition_elect(const meta_partition_t *p, int32_t gone, const meta_broker_view_t *view,
                          bool unclean, meta_partition_change_t *out);
/*
 * meta_partition_elect with eligible leader replicas (KIP-966) when min_isr >= 1 (0: as
 * meta_partition_elect). Differences: gone leaves the ISR even when it is its last member
 * (the ISR may be empty); the ELR is settled as meta_partition_settle_elr does; when no ISR
 * member can lead and the ISR is empty, the first usable ELR member in replica order leads
 * (a clean election: the ISR becomes it and it leaves the ELR); with the ELR empty too and
 * a LastKnownElr of exactly one usable replica (the last leader), that replica leads (Kafka's last-known-leader
 * rule, marked unclean: the ISR becomes it and both lists empty; for a one-replica partition
 * this is its only copy coming back after an unclean restart); then any unclean election,
 * which empties the ELR and LastKnownElr. LastKnownElr is then settled as
 * meta_partition_settle_last_known does.
 */
void meta_partition_elect_elr(const meta_partition_t *p, int32_t gone,
                              const meta_broker_view_t *view, bool unclean, int32_t min_isr,
                              meta_partition_change_t *out);
/*
 * A broker that registers again after an unclean shutdown (KIP-966: its PreviousBrokerEpoch
 * is not its last registration's epoch, so its unflushed records may be lost), as Kafka's
 * controller handles it for each partition whose ISR or ELR holds it: it leaves the ISR
 * (even as its last member) and the ELR, is not eligible, and the elections of
 * meta_partition_elect_elr follow (LastKnownElr as meta_partition_settle_last_known). Nothing changes when min_isr < 1 (ELR off).
 */
void meta_partition_unclean_shutdown(const meta_partition_t *p, int32_t id,
                                     const meta_broker_view_t *view, bool unclean, int32_t min_isr,
                                     meta_partition_change_t *out);
/*
 * The ELR after the change out (its ISR when set, else p's), KIP-966's rules: an ISR of at
 * least min_isr members empties it; a smaller one makes it the current ELR and ISR members
 * not in the new ISR, less the n_unclean replicas that shut down uncleanly (they lost their
 * unflushed records). LastKnownElr is carried over (meta_partition_settle_last_known sets
 * it). Sets out->elr_changed (and out->changed) only when the ELR differs from p's.
 */
void meta_partition_settle_elr(const meta_partition_t *p, int32_t min_isr,
                               const int32_t *unclean_shutdown, int n_unclean,
                               meta_partition_change_t *out);
/*
 * LastKnownElr after the change out, as Kafka 4.4's default (KIP-966's balanced recovery):
 * a change that empties the ISR makes it the partition's leader until then; a change after
 * which the partition has a leader empties it; otherwise it is kept. With the ISR and the
 * ELR empty, its one replica leads once usable (meta_partition_elect_elr, unclean).
 */
void meta_partition_settle_last_known(const meta_partition_t *p, meta_partition_change_t *out);

/*
 * Preferred leader election (ElectLeaders PREFERRED, auto rebalance): the first replica
 * leads when it is usable and in the ISR. Returns Kafka's error: NONE (out->changed),
 * ELECTION_NOT_NEEDED when it leads already, PREFERRED_LEADER_NOT_AVAILABLE otherwise.
 */
int16_t meta_partition_elect_preferred(const meta_partition_t *p, const meta_broker_view_t *view,
                                       meta_partition_change_t *out);
/*
 * Unclean election (ElectLeaders UNCLEAN), as Kafka 4.4's: a leaderless partition gets a
 * leader from its ISR when one is usable; with eligible leader replicas (min_isr >= 1) and
 * an empty ISR, from its ELR (a clean election, as meta_partition_elect_elr); else the
 * first alive replica (unclean: it becomes the ISR, the ELR and LastKnownElr empty).
 * LastKnownElr members are not preferred. ELECTION_NOT_NEEDED when it has a leader,
 * ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is alive.
 */
int16_t meta_partition_elect_unclean(const meta_partition_t *p, const meta_broker_view_t *view,
                                     int32_t min_isr, meta_partition_change_t *out);

/*
 * AlterPartitionReassignments (KIP-455) for p: move to the target replicas (n of them,
 * validated by the caller: registered, distinct, not empty), or cancel (target NULL). Moving:
 * the replicas become target then the ones leaving (removing = current - target, adding =
 * target - current), completed at once when the ISR already holds every target replica.
 * Cancelling reverts to the replicas before the move (the adding ones leave them and the
 * ISR); NO_REASSIGNMENT_IN_PROGRESS when none is ongoing, INVALID_REPLICA_ASSIGNMENT when
 * reverting would empty the ISR and unclean elections are not allowed. NONE with
 * out->changed false: nothing to do.
 */
int16_t meta_partition_reassign(const meta_partition_t *p, const int32_t *target, int32_t n,
                                const meta_broker_view_t *view, bool unclean,
                                meta_partition_change_t *out);
/*
 * Completes p's ongoing reassignment within the change out (its ISR, replicas and lists
 * where set, else p's) when the target replicas are all in the ISR, as Kafka does on every
 * partition change: the removing replicas leave the replicas and the ISR, the lists empty,
 * and a leader that left is replaced. Returns true when it completed.
 */
bool meta_partition_complete_reassignment(const meta_partition_t *p,
                                          const meta_broker_view_t *view,
                                          meta_partition_change_t *out);

/* One proposed ISR member of an AlterPartition: its id and the broker epoch it fetched with
 * (-1 unknown). */
typedef struct meta_isr_member {
    int32_t id;
    int64_t broker_epoch;
} meta_isr_member_t;

/* A broker's registration as the AlterPartition check needs it. */
typedef struct meta_broker_state {
    bool registered, fenced, in_controlled_shutdown;
    int64_t epoch;
} meta_broker_state_t;

/*
 * Validates one partition of an AlterPartition from broker `sender` (whose broker epoch the
 * caller checked: STALE_BROKER_EPOCH is the whole request's error), in Kafka's controller's
 * order: UNKNOWN_TOPIC_OR_PARTITION (p NULL), NOT_CONTROLLER (epochs newer than ours: this
 * controller is behind), FENCED_LEADER_EPOCH (an older leader epoch), INVALID_REQUEST (the
 * sender does not lead), INVALID_UPDATE_VERSION (an older partition epoch), INVALID_REQUEST
 * (the new ISR is empty, names a broker twice or one that is not a replica, or lacks the
 * leader), INELIGIBLE_REPLICA (a new member is not registered, fenced, in controlled
 * shutdown, or fetched with another broker epoch). brokers(ctx, id) describes broker id.
 * NONE: *same is set when the ISR equals the current one (nothing to commit).
 */
int16_t meta_alter_partition_check(const meta_partition_t *p, int32_t sender,
                                   int32_t leader_epoch, int32_t partition_epoch,
                                   const meta_isr_member_t *isr, int32_t n_isr,
                                   meta_broker_state_t (*brokers)(void *ctx, int32_t id),
                                   void *ctx, bool *same);

#endif
