/*
 * The replication decisions of a partition's leader and followers as pure functions of
 * their arguments (no locks, no I/O), shared by src/broker/replica.c and the deterministic
 * simulation of replication (tests/unit/test_repl_sim.c): the leader's high watermark, the
 * ISR's shrink and expand choices, the leader's record of a follower's fetch, the KIP-320
 * divergence check and the follower's truncation point.
 */
#ifndef BROKER_REPLICA_RULES_H
#define BROKER_REPLICA_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/leader_epochs.h"

/* What a leader knows of one replica of its partition. */
typedef struct replica_peer {
    int32_t id;
    int64_t leo;               /* log end it fetched from last, -1: unknown */
    int64_t last_caught_up_ms; /* monotonic */
    int64_t last_fetch_ms;
    int64_t leader_leo_at_last_fetch;
    int64_t broker_epoch; /* from its fetches' replica state, -1 unknown */
} replica_peer_t;

/*
 * The high watermark a leader (broker self, log end leader_leo) may move to: the least LEO
 * of itself and of the peers in the committed ISR or in the ISR proposed while an
 * AlterPartition is in flight (pending, NULL / 0 when none: Kafka's maximal ISR). -1 when
 * it must not move: with eligible leader replicas (KIP-966, elr) and an ISR smaller than
 * min_isr, a record is committed only once min ISR replicas have it.
 */
int64_t broker_replica_rule_hw(int64_t leader_leo, int32_t self, const replica_peer_t *peers,
                               int32_t n, const int32_t *isr, int32_t n_isr, const int32_t *pending,
                               int32_t n_pending, bool elr, int32_t min_isr);
/*
 * After the AlterPartition proposed at partition epoch base_pe was answered `error`
 * (REQUEST_TIMED_OUT when no answer came) while this broker knows partition epoch known_pe:
 * whether the proposed ISR may have been committed all the same, so that its members must
 * still count in the HW (Kafka's maximal ISR) and the same ISR is proposed again, until the
 * metadata shows a partition epoch newer than base_pe. NONE settles it, and so does
 * INELIGIBLE_REPLICA (the controller found base_pe current and refused); any other error
 * leaves the outcome unknown (a timeout, a lost connection, or a refusal of a retry whose
 * earlier attempt was committed).
 */
bool broker_replica_rule_alter_unresolved(int16_t error, int32_t base_pe, int32_t known_pe);
/* Whether ISR member r (not the leader) is out of sync: behind the leader's log end and not
 * caught up for lag_ms (replica.lag.time.max.ms). */
bool broker_replica_rule_out_of_sync(const replica_peer_t *r, int64_t leader_leo, int64_t now_ms,
                                     int64_t lag_ms);
/* Whether follower r (not in the ISR) may join it: its LEO reached the HW and the start of
 * the leader's current epoch (epoch_start). */
bool broker_replica_rule_may_join(const replica_peer_t *r, int64_t hw, int64_t epoch_start);
/* The leader records a fetch of follower r at fetch_offset (its LEO) while its own log ends
 * at leader_leo: the LEO, and the last time r was caught up (at the end, or at least at the
 * end the leader had at r's previous fetch). broker_epoch -1: unchanged. */
void broker_replica_rule_fetched(replica_peer_t *r, int64_t fetch_offset, int64_t leader_leo,
                                 int64_t now_ms, int64_t broker_epoch);
/*
 * KIP-320 on the leader (leader-epoch cache e, log end leo): a follower's fetch at
 * fetch_offset whose last fetched epoch is last_epoch (>= 0) diverges when that epoch is
 * not the leader's or ends here before fetch_offset; then *div_epoch / *div_end say where
 * it ended here (OffsetForLeaderEpoch's answer) and the fetch reads nothing.
 */
bool broker_replica_rule_diverges(const log_epochs_t *e, int64_t leo, int32_t last_epoch,
                                  int64_t fetch_offset, int32_t *div_epoch, int64_t *div_end);
/*
 * Where a follower (leader-epoch cache mine, log end leo, high watermark hw) truncates when
 * the leader says its epoch `epoch` ended at `end`: both have the epoch: the earlier of its
 * two ends; ours lacks it: the end of our newest epoch below it; the leader knows none of
 * ours (epoch or end < 0): our HW. Never past leo.
 */
int64_t broker_replica_rule_truncation(const log_epochs_t *mine, int64_t leo, int64_t hw,
                                       int32_t epoch, int64_t end);

#endif
