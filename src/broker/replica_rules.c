/*
 * Replication decisions as pure functions (see replica_rules.h).
 */
#include "broker/replica_rules.h"

#include "protocol/errors.h"

static bool has(const int32_t *v, int32_t n, int32_t id) {
    for (int32_t i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

int64_t broker_replica_rule_hw(int64_t leader_leo, int32_t self, const replica_peer_t *peers,
                               int32_t n, const int32_t *isr, int32_t n_isr, const int32_t *pending,
                               int32_t n_pending, bool elr, int32_t min_isr) {
    if (elr && n_isr < min_isr) return -1;
    int64_t least = leader_leo;
    for (int32_t i = 0; i < n; i++) {
        const replica_peer_t *r = &peers[i];
        if (r->id == self) continue;
        bool member = has(isr, n_isr, r->id) || has(pending, n_pending, r->id);
        if (member && r->leo < least) least = r->leo;
    }
    return least;
}

bool broker_replica_rule_alter_unresolved(int16_t error, int32_t base_pe, int32_t known_pe) {
    return error != PROTO_ERR_NONE && error != PROTO_ERR_INELIGIBLE_REPLICA && known_pe <= base_pe;
}

bool broker_replica_rule_out_of_sync(const replica_peer_t *r, int64_t leader_leo, int64_t now_ms,
                                     int64_t lag_ms) {
    return r && r->leo < leader_leo && now_ms - r->last_caught_up_ms > lag_ms;
}

bool broker_replica_rule_may_join(const replica_peer_t *r, int64_t hw, int64_t epoch_start) {
    return r->leo >= 0 && r->leo >= hw && r->leo >= epoch_start;
}

void broker_replica_rule_fetched(replica_peer_t *r, int64_t fetch_offset, int64_t leader_leo,
                                 int64_t now_ms, int64_t broker_epoch) {
    if (fetch_offset >= leader_leo)
        r->last_caught_up_ms = now_ms;
    else if (r->leader_leo_at_last_fetch >= 0 && fetch_offset >= r->leader_leo_at_last_fetch &&
             r->last_fetch_ms > r->last_caught_up_ms)
        r->last_caught_up_ms = r->last_fetch_ms;
    r->leader_leo_at_last_fetch = leader_leo;
    r->last_fetch_ms = now_ms;
    r->leo = fetch_offset;
    if (broker_epoch >= 0) r->broker_epoch = broker_epoch;
}

bool broker_replica_rule_diverges(const log_epochs_t *e, int64_t leo, int32_t last_epoch,
                                  int64_t fetch_offset, int32_t *div_epoch, int64_t *div_end) {
    *div_epoch = -1;
    *div_end = -1;
    if (last_epoch < 0) return false;
    int32_t ep;
    int64_t end;
    log_epochs_end_offset(e, last_epoch, leo, &ep, &end);
    if (ep >= last_epoch && end >= fetch_offset) return false;
    *div_epoch = ep;
    *div_end = end;
    return true;
}

int64_t broker_replica_rule_truncation(const log_epochs_t *mine, int64_t leo, int64_t hw,
                                       int32_t epoch, int64_t end) {
    int64_t to;
    if (epoch < 0 || end < 0) {
        to = hw;
    } else {
        int32_t my_epoch;
        int64_t my_end;
        log_epochs_end_offset(mine, epoch, leo, &my_epoch, &my_end);
        if (my_epoch < 0 || my_end < 0)
            to = end;
        else if (my_epoch != epoch)
            to = my_end;
        else
            to = end < my_end ? end : my_end;
    }
    return to > leo ? leo : to;
}
