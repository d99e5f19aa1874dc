/*
 * Replica placement, leader elections and the AlterPartition check (see replicas.h). Pure
 * functions of their arguments; the rules are Kafka's controller's (ReplicationControlManager,
 * PartitionChangeBuilder), the placement our own rack-alternating stripe.
 */
#include "metadata/replicas.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "protocol/errors.h"

bool meta_id_in(const int32_t *ids, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static int cmp_broker(const void *a, const void *b) {
    const meta_place_broker_t *x = a, *y = b;
    int r = strcmp(x->rack ? x->rack : "", y->rack ? y->rack : "");
    if (r) return r;
    return x->id < y->id ? -1 : x->id > y->id;
}

int meta_place_replicas(const meta_place_broker_t *brokers, int nb, int32_t n, int32_t rf,
                        uint32_t start, int32_t *out) {
    if (rf < 1 || rf > nb || rf > META_MAX_REPLICAS) return SM_ERR_RANGE;
    meta_place_broker_t *s = malloc(sizeof(*s) * (size_t)nb);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)nb);
    int *rack = malloc(sizeof(int) * (size_t)nb), *rack_of = malloc(sizeof(int) * (size_t)nb);
    int *first = malloc(sizeof(int) * (size_t)nb), *len = malloc(sizeof(int) * (size_t)nb);
    int rc = SM_ERR_NOMEM;
    if (!s || !ids || !rack || !rack_of || !first || !len) goto out;
    memcpy(s, brokers, sizeof(*s) * (size_t)nb);
    qsort(s, (size_t)nb, sizeof(*s), cmp_broker);
    /* Racks as runs of the sorted list; the stripe takes the k-th broker of every rack in
     * round k, so neighbours in it are in different racks while racks last. */
    int nr = 0;
    for (int i = 0; i < nb; i++) {
        if (i == 0 || cmp_broker(&(meta_place_broker_t){0, s[i].rack},
                                 &(meta_place_broker_t){0, s[i - 1].rack}) != 0) {
            first[nr] = i;
            len[nr++] = 0;
        }
        len[nr - 1]++;
    }
    int taken = 0;
    for (int k = 0; taken < nb; k++)
        for (int r = 0; r < nr; r++)
            if (k < len[r]) {
                ids[taken] = s[first[r] + k].id;
                rack_of[taken++] = r;
            }
    for (int32_t i = 0; i < n; i++) {
        uint64_t g = (uint64_t)start + (uint64_t)i;
        int pos = (int)(g % (uint64_t)nb);
        int shift = nb > 1 ? (int)((g / (uint64_t)nb) % (uint64_t)(nb - 1)) : 0;
        int32_t *reps = &out[(int64_t)i * rf];
        int chosen[META_MAX_REPLICAS];
        memset(rack, 0, sizeof(int) * (size_t)nr);
        reps[0] = ids[pos];
        chosen[0] = pos;
        rack[rack_of[pos]]++;
        for (int32_t j = 1; j < rf; j++) {
            /* the next broker along the stripe whose rack holds the fewest replicas yet */
            int best = -1;
            for (int k = 0; k < nb; k++) {
                int c = (pos + 1 + shift + k) % nb;
                bool used = false;
                for (int32_t u = 0; u < j; u++)
                    if (chosen[u] == c) used = true;
                if (used) continue;
                if (best < 0 || rack[rack_of[c]] < rack[rack_of[best]]) best = c;
            }
            reps[j] = ids[best];
            chosen[j] = best;
            rack[rack_of[best]]++;
        }
    }
    rc = SM_OK;
out:
    free(s);
    free(ids);
    free(rack);
    free(rack_of);
    free(first);
    free(len);
    return rc;
}

static int32_t minus(const int32_t *ids, int32_t n, const int32_t *drop, int32_t nd,
                     int32_t *out);

static void change_init(meta_partition_change_t *out) {
    memset(out, 0, sizeof(*out));
    out->leader = -2;
}

static void set_isr(meta_partition_change_t *out, const int32_t *isr, int n) {
    out->isr_changed = true;
    out->changed = true;
    out->n_isr = n;
    if (n > 0) memcpy(out->isr, isr, sizeof(int32_t) * (size_t)n);
}

/* The first of replicas that is in isr and usable, or -1. */
static int32_t first_eligible(const int32_t *replicas, int nr, const int32_t *isr, int ni,
                              const meta_broker_view_t *view) {
    for (int i = 0; i < nr; i++)
        if (meta_id_in(isr, ni, replicas[i]) && meta_id_in(view->usable, view->n_usable, replicas[i]))
            return replicas[i];
    return -1;
}

/* Whether ids (n of them) equal list (m of them, NULL when empty) as sets. */
static bool same_set(const int32_t *ids, int32_t n, const int32_t *list, int32_t m) {
    if (n != m) return false;
    for (int32_t i = 0; i < n; i++)
        if (!meta_id_in(list, m, ids[i])) return false;
    return true;
}

void meta_partition_settle_elr(const meta_partition_t *p, int32_t min_isr,
                               const int32_t *unclean_shutdown, int n_unclean,
                               meta_partition_change_t *out) {
    const int32_t *isr = out->isr_changed ? out->isr : p->isr;
    int32_t ni = out->isr_changed ? out->n_isr : p->n_isr;
    int32_t elr[META_MAX_REPLICAS];
    int32_t ne = 0;
    if (ni < min_isr) {
        /* candidates: the current ELR and ISR, in that order, once each */
        int32_t cand[2 * META_MAX_REPLICAS];
        int32_t nc = 0;
        for (int32_t i = 0; i < p->n_elr && nc < META_MAX_REPLICAS; i++)
            if (!meta_id_in(cand, nc, p->elr[i])) cand[nc++] = p->elr[i];
        for (int32_t i = 0; i < p->n_isr && nc < 2 * META_MAX_REPLICAS; i++)
            if (!meta_id_in(cand, nc, p->isr[i])) cand[nc++] = p->isr[i];
        for (int32_t i = 0; i < nc && ne < META_MAX_REPLICAS; i++)
            if (!meta_id_in(isr, ni, cand[i]) &&
                !meta_id_in(unclean_shutdown, n_unclean, cand[i]))
                elr[ne++] = cand[i];
    }
    if (same_set(elr, ne, p->elr, p->n_elr)) {
        out->elr_changed = false;
        return;
    }
    /* LastKnownElr is carried here; meta_partition_settle_last_known sets it */
    out->elr_changed = true;
    out->changed = true;
    out->n_elr = ne;
    out->n_last_known_elr = p->n_last_known_elr;
    if (ne > 0) memcpy(out->elr, elr, sizeof(int32_t) * (size_t)ne);
    if (p->n_last_known_elr > 0)
        memcpy(out->last_known_elr, p->last_known_elr,
               sizeof(int32_t) * (size_t)p->n_last_known_elr);
}

void meta_partition_settle_last_known(const meta_partition_t *p, meta_partition_change_t *out) {
    int32_t leader = out->leader == -2 ? p->leader : out->leader;
    const int32_t *known = out->elr_changed ? out->last_known_elr : p->last_known_elr;
    int32_t nl = out->elr_changed ? out->n_last_known_elr : p->n_last_known_elr;
    int32_t nw, w = -1;
    if (out->isr_changed && out->n_isr == 0 && p->n_isr > 0 && p->leader >= 0) {
        nw = 1; /* the leader it had when the ISR emptied */
        w = p->leader;
    } else if (leader >= 0) {
        nw = 0; /* a leader again */
    } else {
        return; /* leaderless: kept */
    }
    if (nw == nl && (nw == 0 || known[0] == w)) return;
    if (!out->elr_changed) {
        out->n_elr = p->n_elr;
        if (p->n_elr > 0) memcpy(out->elr, p->elr, sizeof(int32_t) * (size_t)p->n_elr);
    }
    out->elr_changed = true;
    out->changed = true;
    out->n_last_known_elr = nw;
    if (nw == 1) out->last_known_elr[0] = w;
}

/* Empties the ELR and LastKnownElr (an unclean election: the new leader's log decides). */
static void clear_elr(const meta_partition_t *p, meta_partition_change_t *out) {
    out->n_elr = out->n_last_known_elr = 0;
    out->elr_changed = p->n_elr > 0 || p->n_last_known_elr > 0;
    if (out->elr_changed) out->changed = true;
}

/* The elections of meta_partition_elect_elr, with broker `crashed` (-1: none) restarted
 * after an unclean shutdown: it is not eligible either, and leaves the ELR. */
static void elect_leader(const meta_partition_t *p, int32_t gone, int32_t crashed,
                         const meta_broker_view_t *view, bool unclean, int32_t min_isr,
                         meta_partition_change_t *out) {
    change_init(out);
    bool elr_on = min_isr >= 1;
    int32_t isr[META_MAX_REPLICAS];
    int n = 0;
    for (int32_t i = 0; i < p->n_isr && n < META_MAX_REPLICAS; i++)
        if (p->isr[i] != gone) isr[n++] = p->isr[i];
    if (n == 0 && !elr_on) { /* the last member stays */
        n = p->n_isr < META_MAX_REPLICAS ? p->n_isr : META_MAX_REPLICAS;
        if (n > 0) memcpy(isr, p->isr, sizeof(int32_t) * (size_t)n);
    }
    if (n != p->n_isr) set_isr(out, isr, n);
    if (elr_on) meta_partition_settle_elr(p, min_isr, &crashed, crashed >= 0 ? 1 : 0, out);
    if (p->leader >= 0 && p->leader != gone &&
        meta_id_in(view->usable, view->n_usable, p->leader))
        return;
    int32_t leader = first_eligible(p->replicas, p->n_replicas, isr, n, view);
    if (leader < 0 && elr_on && n == 0) {
        const int32_t *elr = out->elr_changed ? out->elr : p->elr;
        int32_t ne = out->elr_changed ? out->n_elr : p->n_elr;
        leader = first_eligible(p->replicas, p->n_replicas, elr, ne, view);
        if (leader >= 0) { /* a clean election from the ELR */
            int32_t rest[META_MAX_REPLICAS], lke[META_MAX_REPLICAS];
            int32_t nr = minus(elr, ne, &leader, 1, rest);
            int32_t nl = out->elr_changed ? out->n_last_known_elr : p->n_last_known_elr;
            const int32_t *known = out->elr_changed ? out->last_known_elr : p->last_known_elr;
            if (nl > 0) memcpy(lke, known, sizeof(int32_t) * (size_t)nl);
            set_isr(out, &leader, 1);
            out->elr_changed = true;
            out->n_elr = nr;
            memcpy(out->elr, rest, sizeof(int32_t) * (size_t)nr);
            out->n_last_known_elr = nl;
            memcpy(out->last_known_elr, lke, sizeof(int32_t) * (size_t)nl);
        }
    }
    if (leader < 0 && elr_on && n == 0) {
        /* Kafka's last-known-leader rule: with the ISR and ELR empty, the partition's last
         * leader (LastKnownElr) leads when usable, marked unclean (it may have lost its
         * unflushed tail, and any ELR member that would have held more is gone) */
        int32_t ne = out->elr_changed ? out->n_elr : p->n_elr;
        int32_t nl = out->elr_changed ? out->n_last_known_elr : p->n_last_known_elr;
        const int32_t *known = out->elr_changed ? out->last_known_elr : p->last_known_elr;
        if (ne == 0 && nl == 1 && known[0] != gone &&
            meta_id_in(view->usable, view->n_usable, known[0])) {
            leader = known[0];
            out->unclean = true;
            set_isr(out, &leader, 1);
            clear_elr(p, out);
        }
    }
    if (leader < 0 && unclean) {
        for (int32_t i = 0; i < p->n_replicas && leader < 0; i++)
            if (p->replicas[i] != gone && meta_id_in(view->alive, view->n_alive, p->replicas[i]))
                leader = p->replicas[i];
        if (leader >= 0) {
            out->unclean = true;
            set_isr(out, &leader, 1);
            if (elr_on) clear_elr(p, out);
        }
    }
    if (leader != p->leader) {
        out->leader = leader;
        out->changed = true;
    }
}

static void elect_core(const meta_partition_t *p, int32_t gone, int32_t crashed,
                       const meta_broker_view_t *view, bool unclean, int32_t min_isr,
                       meta_partition_change_t *out) {
    elect_leader(p, gone, crashed, view, unclean, min_isr, out);
    if (min_isr >= 1) meta_partition_settle_last_known(p, out);
}

void meta_partition_elect_elr(const meta_partition_t *p, int32_t gone,
                              const meta_broker_view_t *view, bool unclean, int32_t min_isr,
                              meta_partition_change_t *out) {
    elect_core(p, gone, -1, view, unclean, min_isr, out);
}

void meta_partition_unclean_shutdown(const meta_partition_t *p, int32_t id,
                                     const meta_broker_view_t *view, bool unclean, int32_t min_isr,
                                     meta_partition_change_t *out) {
    if (min_isr < 1) {
        change_init(out);
        return;
    }
    elect_core(p, id, id, view, unclean, min_isr, out);
}

void meta_partition_elect(const meta_partition_t *p, int32_t gone, const meta_broker_view_t *view,
                          bool unclean, meta_partition_change_t *out) {
    meta_partition_elect_elr(p, gone, view, unclean, 0, out);
}

int16_t meta_partition_elect_preferred(const meta_partition_t *p, const meta_broker_view_t *view,
                                       meta_partition_change_t *out) {
    change_init(out);
    if (p->n_replicas < 1) return PROTO_ERR_PREFERRED_LEADER_NOT_AVAILABLE;
    int32_t pref = p->replicas[0];
    if (p->leader == pref) return PROTO_ERR_ELECTION_NOT_NEEDED;
    if (!meta_id_in(p->isr, p->n_isr, pref) || !meta_id_in(view->usable, view->n_usable, pref))
        return PROTO_ERR_PREFERRED_LEADER_NOT_AVAILABLE;
    out->leader = pref;
    out->changed = true;
    return PROTO_ERR_NONE;
}

int16_t meta_partition_elect_unclean(const meta_partition_t *p, const meta_broker_view_t *view,
                                     int32_t min_isr, meta_partition_change_t *out) {
    change_init(out);
    if (p->leader >= 0 && meta_id_in(view->usable, view->n_usable, p->leader))
        return PROTO_ERR_ELECTION_NOT_NEEDED;
    meta_partition_elect_elr(p, -1, view, true, min_isr, out);
    if (!out->changed || out->leader < 0) return PROTO_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
    return PROTO_ERR_NONE;
}

/* ids minus those in drop, into out; the count. */
static int32_t minus(const int32_t *ids, int32_t n, const int32_t *drop, int32_t nd,
                     int32_t *out) {
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (!meta_id_in(drop, nd, ids[i])) out[k++] = ids[i];
    return k;
}

static void set_replicas(meta_partition_change_t *out, const int32_t *r, int32_t n) {
    out->replicas_changed = true;
    out->changed = true;
    out->n_replicas = n;
    memcpy(out->replicas, r, sizeof(int32_t) * (size_t)n);
}

/* The leader after the change: kept when still in the ISR and usable, else elected. */
static void settle_leader(const meta_partition_t *p, const meta_broker_view_t *view,
                          meta_partition_change_t *out) {
    const int32_t *isr = out->isr_changed ? out->isr : p->isr;
    int32_t ni = out->isr_changed ? out->n_isr : p->n_isr;
    const int32_t *reps = out->replicas_changed ? out->replicas : p->replicas;
    int32_t nr = out->replicas_changed ? out->n_replicas : p->n_replicas;
    int32_t leader = out->leader != -2 ? out->leader : p->leader;
    if (leader >= 0 && meta_id_in(isr, ni, leader) && meta_id_in(reps, nr, leader) &&
        meta_id_in(view->usable, view->n_usable, leader))
        return;
    int32_t next = first_eligible(reps, nr, isr, ni, view);
    if (next != p->leader || out->leader != -2) {
        out->leader = next;
        out->changed = true;
    }
}

bool meta_partition_complete_reassignment(const meta_partition_t *p,
                                          const meta_broker_view_t *view,
                                          meta_partition_change_t *out) {
    const int32_t *removing = out->reassign_changed ? out->removing : p->removing;
    int32_t na = out->reassign_changed ? out->n_adding : p->n_adding;
    int32_t nrm = out->reassign_changed ? out->n_removing : p->n_removing;
    if (na == 0 && nrm == 0) return false;
    const int32_t *isr = out->isr_changed ? out->isr : p->isr;
    int32_t ni = out->isr_changed ? out->n_isr : p->n_isr;
    const int32_t *reps = out->replicas_changed ? out->replicas : p->replicas;
    int32_t nr = out->replicas_changed ? out->n_replicas : p->n_replicas;
    int32_t new_isr[META_MAX_REPLICAS], new_reps[META_MAX_REPLICAS];
    int32_t k = minus(isr, ni, removing, nrm, new_isr);
    int32_t m = minus(reps, nr, removing, nrm, new_reps);
    if (k == 0 || m == 0) return false;
    for (int32_t i = 0; i < m; i++)
        if (!meta_id_in(new_isr, k, new_reps[i])) return false;
    set_replicas(out, new_reps, m);
    set_isr(out, new_isr, k);
    out->reassign_changed = true;
    out->n_adding = out->n_removing = 0;
    settle_leader(p, view, out);
    return true;
}

int16_t meta_partition_reassign(const meta_partition_t *p, const int32_t *target, int32_t n,
                                const meta_broker_view_t *view, bool unclean,
                                meta_partition_change_t *out) {
    change_init(out);
    if (!target) {
        if (p->n_adding == 0 && p->n_removing == 0) return PROTO_ERR_NO_REASSIGNMENT_IN_PROGRESS;
        int32_t reps[META_MAX_REPLICAS], isr[META_MAX_REPLICAS];
        int32_t nr = minus(p->replicas, p->n_replicas, p->adding, p->n_adding, reps);
        int32_t ni = minus(p->isr, p->n_isr, p->adding, p->n_adding, isr);
        if (ni == 0) {
            if (!unclean || nr == 0) return PROTO_ERR_INVALID_REPLICA_ASSIGNMENT;
            isr[ni++] = reps[0];
            out->unclean = true;
        }
        set_replicas(out, reps, nr);
        if (ni != p->n_isr) set_isr(out, isr, ni);
        out->reassign_changed = true;
        settle_leader(p, view, out);
        return PROTO_ERR_NONE;
    }
    if (n < 1 || n > META_MAX_REPLICAS) return PROTO_ERR_INVALID_REPLICA_ASSIGNMENT;
    int32_t removing[META_MAX_REPLICAS], adding[META_MAX_REPLICAS], reps[META_MAX_REPLICAS];
    int32_t nrm = minus(p->replicas, p->n_replicas, target, n, removing);
    int32_t na = minus(target, n, p->replicas, p->n_replicas, adding);
    if (n + nrm > META_MAX_REPLICAS) return PROTO_ERR_INVALID_REPLICA_ASSIGNMENT;
    memcpy(reps, target, sizeof(int32_t) * (size_t)n);
    memcpy(reps + n, removing, sizeof(int32_t) * (size_t)nrm);
    bool same = n + nrm == p->n_replicas;
    for (int32_t i = 0; same && i < p->n_replicas; i++)
        if (reps[i] != p->replicas[i]) same = false;
    if (!same) set_replicas(out, reps, n + nrm);
    if (na != p->n_adding || nrm != p->n_removing ||
        memcmp(adding, p->adding ? p->adding : adding, sizeof(int32_t) * (size_t)na) ||
        memcmp(removing, p->removing ? p->removing : removing, sizeof(int32_t) * (size_t)nrm)) {
        out->reassign_changed = true;
        out->changed = true;
        out->n_adding = na;
        out->n_removing = nrm;
        memcpy(out->adding, adding, sizeof(int32_t) * (size_t)na);
        memcpy(out->removing, removing, sizeof(int32_t) * (size_t)nrm);
    }
    meta_partition_complete_reassignment(p, view, out);
    return PROTO_ERR_NONE;
}

int16_t meta_alter_partition_check(const meta_partition_t *p, int32_t sender,
                                   int32_t leader_epoch, int32_t partition_epoch,
                                   const meta_isr_member_t *isr, int32_t n_isr,
                                   meta_broker_state_t (*brokers)(void *ctx, int32_t id),
                                   void *ctx, bool *same) {
    *same = false;
    if (!p) return PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (leader_epoch > p->leader_epoch || partition_epoch > p->partition_epoch)
        return PROTO_ERR_NOT_CONTROLLER;
    if (leader_epoch < p->leader_epoch) return PROTO_ERR_FENCED_LEADER_EPOCH;
    if (sender != p->leader) return PROTO_ERR_INVALID_REQUEST;
    if (partition_epoch < p->partition_epoch) return PROTO_ERR_INVALID_UPDATE_VERSION;
    if (n_isr < 1 || n_isr > META_MAX_REPLICAS) return PROTO_ERR_INVALID_REQUEST;
    bool has_leader = false;
    for (int32_t i = 0; i < n_isr; i++) {
        if (!meta_id_in(p->replicas, p->n_replicas, isr[i].id)) return PROTO_ERR_INVALID_REQUEST;
        for (int32_t k = 0; k < i; k++)
            if (isr[k].id == isr[i].id) return PROTO_ERR_INVALID_REQUEST;
        if (isr[i].id == p->leader) has_leader = true;
    }
    if (!has_leader) return PROTO_ERR_INVALID_REQUEST;
    for (int32_t i = 0; i < n_isr; i++) {
        meta_broker_state_t b = brokers(ctx, isr[i].id);
        if (!b.registered || b.fenced || b.in_controlled_shutdown ||
            (isr[i].broker_epoch != -1 && isr[i].broker_epoch != b.epoch))
            return PROTO_ERR_INELIGIBLE_REPLICA;
    }
    if (n_isr == p->n_isr) {
        bool eq = true;
        for (int32_t i = 0; i < n_isr; i++)
            if (isr[i].id != p->isr[i]) eq = false;
        *same = eq;
    }
    return PROTO_ERR_NONE;
}
