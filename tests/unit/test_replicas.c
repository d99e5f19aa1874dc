/*
 * The controller's replica decisions (metadata/replicas.c): placement spreads replicas over
 * distinct brokers and racks with balanced leaders; fencing, shutdown and unfencing elect
 * leaders from the ISR (unclean only when allowed); the preferred election; AlterPartition
 * refused with Kafka's codes in Kafka's order; eligible leader replicas (KIP-966): kept while
 * the ISR is below min ISR, emptied when it is back, elected cleanly before any unclean
 * election.
 */
#include <string.h>

#include "base/err.h"

#include "metadata/replicas.h"
#include "protocol/errors.h"
#include "test.h"

static int rack_index(const meta_place_broker_t *b, int nb, int32_t id) {
    for (int i = 0; i < nb; i++)
        if (b[i].id == id) return b[i].rack[0];
    return -1;
}

/* Six brokers in three racks, 60 partitions of RF 3: each partition on three distinct
 * brokers in three distinct racks; every broker leads 10; every broker holds 30. */
static void test_place_racks(void) {
    meta_place_broker_t b[] = {{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}, {5, "c"}, {6, "c"}};
    int32_t out[60 * 3];
    REQUIRE(meta_place_replicas(b, 6, 60, 3, 7, out) == SM_OK);
    int leads[7] = {0}, holds[7] = {0};
    for (int p = 0; p < 60; p++) {
        int32_t *r = &out[p * 3];
        CHECK(r[0] != r[1] && r[0] != r[2] && r[1] != r[2]);
        int a = rack_index(b, 6, r[0]), x = rack_index(b, 6, r[1]), y = rack_index(b, 6, r[2]);
        CHECK(a != x && a != y && x != y);
        leads[r[0]]++;
        for (int k = 0; k < 3; k++)
            holds[r[k]]++;
    }
    for (int id = 1; id <= 6; id++) {
        CHECK_EQ_INT(10, leads[id]);
        CHECK_EQ_INT(30, holds[id]);
    }
    /* consecutive partitions' leaders alternate racks */
    for (int p = 1; p < 60; p++)
        CHECK(rack_index(b, 6, out[p * 3]) != rack_index(b, 6, out[(p - 1) * 3]));
}

/* No racks: distinct brokers, leaders balanced, and a leader's followers vary. */
static void test_place_no_racks(void) {
    meta_place_broker_t b[] = {{10, ""}, {11, ""}, {12, ""}, {13, ""}};
    int32_t out[40 * 2];
    REQUIRE(meta_place_replicas(b, 4, 40, 2, 0, out) == SM_OK);
    int leads[14] = {0};
    bool followers_of_10[14] = {false};
    for (int p = 0; p < 40; p++) {
        CHECK(out[p * 2] != out[p * 2 + 1]);
        leads[out[p * 2]]++;
        if (out[p * 2] == 10) followers_of_10[out[p * 2 + 1]] = true;
    }
    for (int id = 10; id <= 13; id++)
        CHECK_EQ_INT(10, leads[id]);
    int distinct = 0;
    for (int id = 10; id <= 13; id++)
        distinct += followers_of_10[id];
    CHECK(distinct >= 2);
}

static void test_place_too_few(void) {
    meta_place_broker_t b[] = {{1, ""}, {2, ""}};
    int32_t out[3];
    CHECK_EQ_INT(SM_ERR_RANGE, meta_place_replicas(b, 2, 1, 3, 0, out));
    CHECK_EQ_INT(SM_ERR_RANGE, meta_place_replicas(b, 2, 1, 0, 0, out));
}

static meta_partition_t part(int32_t *replicas, int nr, int32_t *isr, int ni, int32_t leader) {
    return (meta_partition_t){.leader = leader,
                              .leader_epoch = 5,
                              .partition_epoch = 9,
                              .n_replicas = nr,
                              .replicas = replicas,
                              .n_isr = ni,
                              .isr = isr};
}

/* The leader is fenced: the next ISR member in replica order that is usable leads and the
 * fenced broker leaves the ISR. */
static void test_fence_moves_leader(void) {
    int32_t reps[] = {1, 2, 3}, isr[] = {1, 2, 3};
    meta_partition_t p = part(reps, 3, isr, 3, 1);
    int32_t usable[] = {2, 3};
    meta_broker_view_t v = {usable, 2, usable, 2};
    meta_partition_change_t ch;
    meta_partition_elect(&p, 1, &v, false, &ch);
    CHECK(ch.changed);
    CHECK_EQ_INT(2, ch.leader);
    CHECK(ch.isr_changed);
    CHECK_EQ_INT(2, ch.n_isr);
    CHECK_EQ_INT(2, ch.isr[0]);
    CHECK_EQ_INT(3, ch.isr[1]);
    CHECK(!ch.unclean);
    /* a follower fenced: leader stays, ISR shrinks */
    int32_t usable13[] = {1, 3};
    v = (meta_broker_view_t){usable13, 2, usable13, 2};
    meta_partition_elect(&p, 2, &v, false, &ch);
    CHECK_EQ_INT(-2, ch.leader);
    CHECK_EQ_INT(2, ch.n_isr);
}

/* The last ISR member is kept; no eligible leader: -1; unclean: an alive replica leads and
 * is the whole ISR. */
static void test_fence_last_isr_member(void) {
    int32_t reps[] = {1, 2, 3}, isr[] = {1};
    meta_partition_t p = part(reps, 3, isr, 1, 1);
    int32_t usable[] = {2, 3};
    meta_broker_view_t v = {usable, 2, usable, 2};
    meta_partition_change_t ch;
    meta_partition_elect(&p, 1, &v, false, &ch);
    CHECK(ch.changed);
    CHECK_EQ_INT(-1, ch.leader);
    CHECK(!ch.isr_changed);
    meta_partition_elect(&p, 1, &v, true, &ch);
    CHECK_EQ_INT(2, ch.leader);
    CHECK(ch.unclean);
    CHECK_EQ_INT(1, ch.n_isr);
    CHECK_EQ_INT(2, ch.isr[0]);
}

/* Unfencing the last ISR member of a leaderless partition makes it the leader. */
static void test_unfence_leads(void) {
    int32_t reps[] = {1, 2, 3}, isr[] = {1};
    meta_partition_t p = part(reps, 3, isr, 1, -1);
    int32_t usable[] = {1, 2, 3};
    meta_broker_view_t v = {usable, 3, usable, 3};
    meta_partition_change_t ch;
    meta_partition_elect(&p, -1, &v, false, &ch);
    CHECK_EQ_INT(1, ch.leader);
    CHECK(!ch.isr_changed);
    /* a broker in controlled shutdown (alive, not usable) does not lead */
    int32_t alive[] = {1, 2, 3}, usable23[] = {2, 3};
    v = (meta_broker_view_t){usable23, 2, alive, 3};
    meta_partition_elect(&p, -1, &v, false, &ch);
    CHECK(!ch.changed);
}

static void test_preferred(void) {
    int32_t reps[] = {1, 2, 3}, isr[] = {1, 2, 3};
    meta_partition_t p = part(reps, 3, isr, 3, 2);
    int32_t usable[] = {1, 2, 3};
    meta_broker_view_t v = {usable, 3, usable, 3};
    meta_partition_change_t ch;
    CHECK_EQ_INT(PROTO_ERR_NONE, meta_partition_elect_preferred(&p, &v, &ch));
    CHECK_EQ_INT(1, ch.leader);
    p.leader = 1;
    CHECK_EQ_INT(PROTO_ERR_ELECTION_NOT_NEEDED, meta_partition_elect_preferred(&p, &v, &ch));
    p.leader = 2;
    int32_t isr23[] = {2, 3};
    p.isr = isr23;
    p.n_isr = 2;
    CHECK_EQ_INT(PROTO_ERR_PREFERRED_LEADER_NOT_AVAILABLE,
                 meta_partition_elect_preferred(&p, &v, &ch));
}

static meta_broker_state_t states(void *ctx, int32_t id) {
    (void)ctx;
    if (id == 4) return (meta_broker_state_t){true, true, false, 40};  /* fenced */
    if (id == 5) return (meta_broker_state_t){true, false, true, 50};  /* shutting down */
    if (id >= 1 && id <= 3) return (meta_broker_state_t){true, false, false, id * 10};
    return (meta_broker_state_t){0};
}

static int16_t alter(const meta_partition_t *p, int32_t sender, int32_t le, int32_t pe,
                     const meta_isr_member_t *isr, int n, bool *same) {
    return meta_alter_partition_check(p, sender, le, pe, isr, n, states, NULL, same);
}

static void test_alter_partition(void) {
    int32_t reps[] = {1, 2, 3, 4, 5}, isr[] = {1, 2};
    meta_partition_t p = part(reps, 5, isr, 2, 1); /* leader epoch 5, partition epoch 9 */
    meta_isr_member_t ok[] = {{1, 10}, {2, 20}, {3, 30}};
    bool same;
    CHECK_EQ_INT(PROTO_ERR_NONE, alter(&p, 1, 5, 9, ok, 3, &same));
    CHECK(!same);
    CHECK_EQ_INT(PROTO_ERR_NONE, alter(&p, 1, 5, 9, ok, 2, &same));
    CHECK(same);
    CHECK_EQ_INT(PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION, alter(NULL, 1, 5, 9, ok, 3, &same));
    CHECK_EQ_INT(PROTO_ERR_FENCED_LEADER_EPOCH, alter(&p, 1, 4, 9, ok, 3, &same));
    CHECK_EQ_INT(PROTO_ERR_NOT_CONTROLLER, alter(&p, 1, 6, 9, ok, 3, &same));
    CHECK_EQ_INT(PROTO_ERR_INVALID_REQUEST, alter(&p, 2, 5, 9, ok, 3, &same));
    CHECK_EQ_INT(PROTO_ERR_INVALID_UPDATE_VERSION, alter(&p, 1, 5, 8, ok, 3, &same));
    meta_isr_member_t no_leader[] = {{2, 20}, {3, 30}};
    CHECK_EQ_INT(PROTO_ERR_INVALID_REQUEST, alter(&p, 1, 5, 9, no_leader, 2, &same));
    meta_isr_member_t twice[] = {{1, 10}, {1, 10}};
    CHECK_EQ_INT(PROTO_ERR_INVALID_REQUEST, alter(&p, 1, 5, 9, twice, 2, &same));
    meta_isr_member_t not_replica[] = {{1, 10}, {9, -1}};
    CHECK_EQ_INT(PROTO_ERR_INVALID_REQUEST, alter(&p, 1, 5, 9, not_replica, 2, &same));
    meta_isr_member_t fenced[] = {{1, 10}, {4, 40}};
    CHECK_EQ_INT(PROTO_ERR_INELIGIBLE_REPLICA, alter(&p, 1, 5, 9, fenced, 2, &same));
    meta_isr_member_t shutting[] = {{1, 10}, {5, 50}};
    CHECK_EQ_INT(PROTO_ERR_INELIGIBLE_REPLICA, alter(&p, 1, 5, 9, shutting, 2, &same));
    meta_isr_member_t stale[] = {{1, 10}, {3, 29}};
    CHECK_EQ_INT(PROTO_ERR_INELIGIBLE_REPLICA, alter(&p, 1, 5, 9, stale, 2, &same));
    meta_isr_member_t unknown_epoch[] = {{1, -1}, {3, -1}};
    CHECK_EQ_INT(PROTO_ERR_NONE, alter(&p, 1, 5, 9, unknown_epoch, 2, &same));
}

/* Moving [1,2,3] to [2,3,4]: replicas [2,3,4,1], adding 4, removing 1, not complete while
 * 4 is out of the ISR; complete once it is in: replicas [2,3,4], 1 leaves ISR and
 * leadership. Pure removal completes at once; cancel reverts. */
static void test_reassign(void) {
    int32_t reps[] = {1, 2, 3}, isr[] = {1, 2, 3};
    meta_partition_t p = part(reps, 3, isr, 3, 1);
    int32_t usable[] = {1, 2, 3, 4};
    meta_broker_view_t v = {usable, 4, usable, 4};
    meta_partition_change_t ch;
    int32_t target[] = {2, 3, 4};
    CHECK_EQ_INT(PROTO_ERR_NONE, meta_partition_reassign(&p, target, 3, &v, false, &ch));
    CHECK(ch.replicas_changed && ch.reassign_changed && !ch.isr_changed);
    CHECK_EQ_INT(4, ch.n_replicas);
    int32_t want[] = {2, 3, 4, 1};
    CHECK_EQ_MEM(want, ch.replicas, sizeof(want));
    CHECK_EQ_INT(1, ch.n_adding);
    CHECK_EQ_INT(4, ch.adding[0]);
    CHECK_EQ_INT(1, ch.n_removing);
    CHECK_EQ_INT(1, ch.removing[0]);
    CHECK_EQ_INT(-2, ch.leader);

    /* the state after that record, then the ISR gains 4 (AlterPartition) */
    int32_t adding[] = {4}, removing[] = {1};
    meta_partition_t q = part(want, 4, isr, 3, 1);
    q.adding = adding;
    q.n_adding = 1;
    q.removing = removing;
    q.n_removing = 1;
    meta_partition_change_t alt = {.leader = -2, .isr_changed = true, .n_isr = 4, .changed = true};
    int32_t grown[] = {1, 2, 3, 4};
    memcpy(alt.isr, grown, sizeof(grown));
    CHECK(meta_partition_complete_reassignment(&q, &v, &alt));
    CHECK_EQ_INT(3, alt.n_replicas);
    CHECK_EQ_MEM(target, alt.replicas, sizeof(target));
    CHECK_EQ_INT(3, alt.n_isr);
    CHECK_EQ_INT(2, alt.leader);
    CHECK(alt.reassign_changed && alt.n_adding == 0 && alt.n_removing == 0);
    /* without 4 in the ISR it stays ongoing */
    meta_partition_change_t none = {.leader = -2};
    CHECK(!meta_partition_complete_reassignment(&q, &v, &none));

    /* cancel: the replicas before the move (in the merged order, as Kafka), 4 out */
    CHECK_EQ_INT(PROTO_ERR_NONE, meta_partition_reassign(&q, NULL, 0, &v, false, &ch));
    CHECK_EQ_INT(3, ch.n_replicas);
    int32_t reverted[] = {2, 3, 1};
    CHECK_EQ_MEM(reverted, ch.replicas, sizeof(reverted));
    CHECK(ch.reassign_changed && ch.n_adding == 0 && ch.n_removing == 0);
    CHECK_EQ_INT(PROTO_ERR_NO_REASSIGNMENT_IN_PROGRESS,
                 meta_partition_reassign(&p, NULL, 0, &v, false, &ch));

    /* pure removal of the leader: done at once, 2 leads */
    int32_t smaller[] = {2, 3};
    CHECK_EQ_INT(PROTO_ERR_NONE, meta_partition_reassign(&p, smaller, 2, &v, false, &ch));
    CHECK_EQ_INT(2, ch.n_replicas);
    CHECK_EQ_INT(2, ch.n_isr);
    CHECK_EQ_INT(2, ch.leader);
    CHECK(ch.n_adding == 0 && ch.n_removing == 0);
    /* the same replicas: nothing to do */
    CHECK_EQ_INT(PROTO_ERR_NONE, meta_partition_reassign(&p, reps, 3, &v, false, &ch));
    CHECK(!ch.changed);
}

static bool has_id(const int32_t *ids, int32_t n, int32_t id) { return meta_id_in(ids, n, id); }

/* p with the ELR (ne of elr) and LastKnownElr (nl of lke) set. */
static void set_elr(meta_partition_t *p, int32_t *elr, int32_t ne, int32_t *lke, int32_t nl) {
    p->elr = elr;
    p->n_elr = ne;
    p->last_known_elr = lke;
    p->n_last_known_elr = nl;
}

/* The ISR shrinks below min ISR: those that left it join the ELR; growing back to min ISR
 * empties it. A replica that shut down uncleanly does not join it. */
static void test_elr_isr_shrink_and_grow(void) {
    int32_t reps[] = {1, 2, 3}, isr[] = {1, 2, 3};
    meta_partition_t p = part(reps, 3, isr, 3, 1);
    meta_partition_change_t ch = {.leader = -2, .changed = true, .isr_changed = true, .n_isr = 1};
    ch.isr[0] = 1;
    meta_partition_settle_elr(&p, 2, NULL, 0, &ch);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(2, ch.n_elr);
    CHECK(has_id(ch.elr, ch.n_elr, 2) && has_id(ch.elr, ch.n_elr, 3));
    CHECK_EQ_INT(0, ch.n_last_known_elr);
    /* at min ISR (2 of 3): nothing to keep */
    ch = (meta_partition_change_t){.leader = -2, .changed = true, .isr_changed = true, .n_isr = 2};
    ch.isr[0] = 1;
    ch.isr[1] = 2;
    meta_partition_settle_elr(&p, 2, NULL, 0, &ch);
    CHECK(!ch.elr_changed);
    /* an unclean shutdown of 3: not eligible */
    ch = (meta_partition_change_t){.leader = -2, .changed = true, .isr_changed = true, .n_isr = 1};
    ch.isr[0] = 1;
    int32_t unclean[] = {3};
    meta_partition_settle_elr(&p, 2, unclean, 1, &ch);
    CHECK_EQ_INT(1, ch.n_elr);
    CHECK_EQ_INT(2, ch.elr[0]);
    CHECK_EQ_INT(0, ch.n_last_known_elr);
    /* back at min ISR: the ELR empties, and with a leader LastKnownElr too */
    int32_t isr1[] = {1}, elr[] = {2, 3}, lke[] = {4};
    p = part(reps, 3, isr1, 1, 1);
    set_elr(&p, elr, 2, lke, 1);
    ch = (meta_partition_change_t){.leader = -2, .changed = true, .isr_changed = true, .n_isr = 2};
    ch.isr[0] = 1;
    ch.isr[1] = 2;
    meta_partition_settle_elr(&p, 2, NULL, 0, &ch);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(0, ch.n_elr);
    CHECK_EQ_INT(1, ch.n_last_known_elr); /* carried: settle_last_known decides */
    meta_partition_settle_last_known(&p, &ch);
    CHECK_EQ_INT(0, ch.n_elr);
    CHECK_EQ_INT(0, ch.n_last_known_elr);
}

/* LastKnownElr as Kafka's default (balanced recovery): the leader when a change empties the
 * ISR; kept while the partition is leaderless; emptied once it has a leader. */
static void test_last_known_leader_settles(void) {
    int32_t reps[] = {1, 2, 3}, isr[] = {2}, elr[] = {1, 3};
    meta_partition_t p = part(reps, 3, isr, 1, 2);
    set_elr(&p, elr, 2, NULL, 0);
    /* the ISR empties, no leader: LastKnownElr = 2, the ELR untouched */
    meta_partition_change_t ch = {.leader = -1, .changed = true, .isr_changed = true, .n_isr = 0};
    meta_partition_settle_last_known(&p, &ch);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(1, ch.n_last_known_elr);
    CHECK_EQ_INT(2, ch.last_known_elr[0]);
    CHECK_EQ_INT(2, ch.n_elr);
    CHECK(has_id(ch.elr, ch.n_elr, 1) && has_id(ch.elr, ch.n_elr, 3));
    /* leaderless with LastKnownElr 2: an ELR change keeps it */
    int32_t lke[] = {2}, elr1[] = {1};
    meta_partition_t q = part(reps, 3, NULL, 0, -1);
    set_elr(&q, elr, 2, lke, 1);
    ch = (meta_partition_change_t){.leader = -2, .changed = true, .elr_changed = true,
                                   .n_elr = 1, .n_last_known_elr = 1};
    memcpy(ch.elr, elr1, sizeof(elr1));
    ch.last_known_elr[0] = 2;
    meta_partition_settle_last_known(&q, &ch);
    CHECK_EQ_INT(1, ch.n_last_known_elr);
    CHECK_EQ_INT(2, ch.last_known_elr[0]);
    /* nothing to change: nothing written */
    ch = (meta_partition_change_t){.leader = -2};
    meta_partition_settle_last_known(&q, &ch);
    CHECK(!ch.changed && !ch.elr_changed);
    /* a leader again: emptied, the ELR kept */
    ch = (meta_partition_change_t){.leader = 3, .changed = true};
    meta_partition_settle_last_known(&q, &ch);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(0, ch.n_last_known_elr);
    CHECK_EQ_INT(2, ch.n_elr);
}

/* With ELR, fencing the last ISR member empties the ISR and it joins the ELR; fenced ELR
 * members stay; unfencing an ELR member of a partition with an empty ISR elects it cleanly
 * (ISR = it) even where unclean elections are allowed. */
static void test_elr_fence_and_clean_election(void) {
    int32_t reps[] = {1, 2, 3}, isr[] = {1}, elr[] = {2, 3};
    meta_partition_t p = part(reps, 3, isr, 1, 1);
    set_elr(&p, elr, 2, NULL, 0);
    int32_t none[] = {0};
    meta_broker_view_t v = {none, 0, none, 0};
    meta_partition_change_t ch;
    /* ELR member 2 fenced: nothing changes */
    int32_t only1[] = {1};
    v = (meta_broker_view_t){only1, 1, only1, 1};
    meta_partition_elect_elr(&p, 2, &v, false, 2, &ch);
    CHECK(!ch.changed);
    /* the leader, last ISR member, fenced: no leader, empty ISR, ELR {2, 3, 1} */
    v = (meta_broker_view_t){none, 0, none, 0};
    meta_partition_elect_elr(&p, 1, &v, false, 2, &ch);
    CHECK_EQ_INT(-1, ch.leader);
    CHECK(ch.isr_changed);
    CHECK_EQ_INT(0, ch.n_isr);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(3, ch.n_elr);
    CHECK(has_id(ch.elr, 3, 1) && has_id(ch.elr, 3, 2) && has_id(ch.elr, 3, 3));
    CHECK(!ch.unclean);
    /* 3 comes back: it leads from the ELR, clean */
    int32_t elr_all[] = {2, 3, 1};
    meta_partition_t q = part(reps, 3, NULL, 0, -1);
    set_elr(&q, elr_all, 3, NULL, 0);
    int32_t only3[] = {3};
    v = (meta_broker_view_t){only3, 1, only3, 1};
    meta_partition_elect_elr(&q, -1, &v, true, 2, &ch);
    CHECK_EQ_INT(3, ch.leader);
    CHECK(!ch.unclean);
    CHECK(ch.isr_changed);
    CHECK_EQ_INT(1, ch.n_isr);
    CHECK_EQ_INT(3, ch.isr[0]);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(2, ch.n_elr);
    CHECK(!has_id(ch.elr, ch.n_elr, 3));
    /* without ELR (min ISR 0) the last ISR member stays and nothing else is kept */
    meta_partition_elect_elr(&p, 1, &v, false, 0, &ch);
    CHECK(!ch.isr_changed);
    CHECK(!ch.elr_changed);
    CHECK_EQ_INT(-1, ch.leader);
}

/* No ISR member nor ELR member can lead: an unclean election (when allowed) empties the
 * ELR and LastKnownElr. */
static void test_elr_unclean_clears(void) {
    int32_t reps[] = {1, 2, 3}, elr[] = {2}, lke[] = {1};
    meta_partition_t p = part(reps, 3, NULL, 0, -1);
    set_elr(&p, elr, 1, lke, 1);
    int32_t only3[] = {3};
    meta_broker_view_t v = {only3, 1, only3, 1};
    meta_partition_change_t ch;
    meta_partition_elect_elr(&p, -1, &v, false, 2, &ch);
    CHECK(!ch.changed);
    meta_partition_elect_elr(&p, -1, &v, true, 2, &ch);
    CHECK_EQ_INT(3, ch.leader);
    CHECK(ch.unclean);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(0, ch.n_elr);
    CHECK_EQ_INT(0, ch.n_last_known_elr);
}

/* KIP-966's unclean shutdown: a broker that registers again with another broker epoch than
 * its last leaves the ELR and cannot be elected from it; another ELR
 * member still leads cleanly; in the ISR it leaves it (even as the last member) and the
 * leadership moves. Without ELR (min ISR 0) nothing changes. */
static void test_elr_unclean_shutdown(void) {
    int32_t reps[] = {1, 2, 3}, elr[] = {2, 3};
    meta_partition_t p = part(reps, 3, NULL, 0, -1);
    set_elr(&p, elr, 2, NULL, 0);
    int32_t none[] = {0};
    meta_broker_view_t v = {none, 0, none, 0};
    meta_partition_change_t ch;
    meta_partition_unclean_shutdown(&p, 3, &v, false, 2, &ch);
    CHECK(ch.changed);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(1, ch.n_elr);
    CHECK_EQ_INT(2, ch.elr[0]);
    CHECK_EQ_INT(0, ch.n_last_known_elr);
    CHECK(!ch.isr_changed);
    CHECK_EQ_INT(-2, ch.leader);
    /* 2 is alive: it leads from the ELR (clean) */
    int32_t only2[] = {2};
    v = (meta_broker_view_t){only2, 1, only2, 1};
    meta_partition_unclean_shutdown(&p, 3, &v, false, 2, &ch);
    CHECK_EQ_INT(2, ch.leader);
    CHECK(!ch.unclean);
    CHECK_EQ_INT(1, ch.n_isr);
    CHECK_EQ_INT(2, ch.isr[0]);
    CHECK_EQ_INT(0, ch.n_elr);
    CHECK_EQ_INT(0, ch.n_last_known_elr);
    /* the only ISR member (the leader) restarted uncleanly: it leaves the ISR, the ELR
     * member 2 leads */
    int32_t isr1[] = {1}, elr2[] = {2};
    meta_partition_t q = part(reps, 3, isr1, 1, 1);
    set_elr(&q, elr2, 1, NULL, 0);
    meta_partition_unclean_shutdown(&q, 1, &v, false, 2, &ch);
    CHECK_EQ_INT(2, ch.leader);
    CHECK_EQ_INT(1, ch.n_isr);
    CHECK_EQ_INT(2, ch.isr[0]);
    CHECK_EQ_INT(0, ch.n_elr);
    CHECK_EQ_INT(0, ch.n_last_known_elr); /* it has a leader */
    /* no ELR member either: the ISR empties, LastKnownElr is the leader it had */
    meta_partition_t q1 = part(reps, 3, isr1, 1, 1);
    v = (meta_broker_view_t){none, 0, none, 0};
    meta_partition_unclean_shutdown(&q1, 1, &v, false, 2, &ch);
    CHECK_EQ_INT(-1, ch.leader);
    CHECK_EQ_INT(0, ch.n_isr);
    CHECK_EQ_INT(0, ch.n_elr);
    CHECK_EQ_INT(1, ch.n_last_known_elr);
    CHECK_EQ_INT(1, ch.last_known_elr[0]);
    /* a clean restart is not this call; with ELR off it changes nothing */
    meta_partition_unclean_shutdown(&q, 1, &v, false, 0, &ch);
    CHECK(!ch.changed);
}

/* ElectLeaders UNCLEAN with ELR (Kafka 4.4): the ISR first, then (ISR empty) the ELR,
 * cleanly; LastKnownElr members only by an unclean election, which empties both lists. */
static int32_t none_ids[] = {0};

static void test_elect_unclean_elr_first(void) {
    int32_t reps[] = {1, 2, 3}, elr[] = {3}, lke[] = {2};
    meta_partition_t p = part(reps, 3, NULL, 0, -1);
    set_elr(&p, elr, 1, lke, 1);
    int32_t live[] = {2, 3};
    meta_broker_view_t v = {live, 2, live, 2};
    meta_partition_change_t ch;
    CHECK_EQ_INT(PROTO_ERR_NONE, meta_partition_elect_unclean(&p, &v, 2, &ch));
    CHECK_EQ_INT(3, ch.leader); /* not 2, first in replica order but only LastKnownElr */
    CHECK(!ch.unclean);
    CHECK_EQ_INT(1, ch.n_isr);
    CHECK_EQ_INT(3, ch.isr[0]);
    /* without ELR the first alive replica leads, uncleanly */
    CHECK_EQ_INT(PROTO_ERR_NONE, meta_partition_elect_unclean(&p, &v, 0, &ch));
    CHECK_EQ_INT(2, ch.leader);
    CHECK(ch.unclean);
    /* the ELR member down: LastKnownElr's 2 leads uncleanly, both lists empty */
    int32_t only2[] = {2};
    v = (meta_broker_view_t){only2, 1, only2, 1};
    CHECK_EQ_INT(PROTO_ERR_NONE, meta_partition_elect_unclean(&p, &v, 2, &ch));
    CHECK_EQ_INT(2, ch.leader);
    CHECK(ch.unclean);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(0, ch.n_elr);
    CHECK_EQ_INT(0, ch.n_last_known_elr);
    /* nobody alive */
    v = (meta_broker_view_t){none_ids, 0, none_ids, 0};
    CHECK_EQ_INT(PROTO_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE,
                 meta_partition_elect_unclean(&p, &v, 2, &ch));
}

/* A one-replica partition with ELR (min ISR 1) across its broker's kill -9 and restart:
 * fencing empties the ISR into the ELR and makes it the LastKnownElr (the last leader), the
 * unclean re-registration takes it out of the ELR, and unfencing elects it by the
 * last-known-leader rule (marked unclean). A LastKnownElr of two (as an older Samsa wrote
 * it) elects nobody. */
static void test_elr_last_known_leader(void) {
    int32_t reps[] = {1}, isr[] = {1};
    meta_partition_t p = part(reps, 1, isr, 1, 1);
    meta_broker_view_t v = {none_ids, 0, none_ids, 0};
    meta_partition_change_t ch;
    meta_partition_elect_elr(&p, 1, &v, false, 1, &ch);
    CHECK_EQ_INT(-1, ch.leader);
    CHECK_EQ_INT(0, ch.n_isr);
    CHECK_EQ_INT(1, ch.n_elr);
    CHECK_EQ_INT(1, ch.elr[0]);
    CHECK_EQ_INT(1, ch.n_last_known_elr);
    CHECK_EQ_INT(1, ch.last_known_elr[0]);
    int32_t elr[] = {1}, lke[] = {1};
    meta_partition_t q = part(reps, 1, NULL, 0, -1);
    set_elr(&q, elr, 1, lke, 1);
    meta_partition_unclean_shutdown(&q, 1, &v, false, 1, &ch);
    CHECK_EQ_INT(0, ch.n_elr);
    CHECK_EQ_INT(1, ch.n_last_known_elr);
    CHECK_EQ_INT(1, ch.last_known_elr[0]);
    CHECK(ch.leader < 0);
    meta_partition_t r = part(reps, 1, NULL, 0, -1);
    set_elr(&r, NULL, 0, lke, 1);
    int32_t one[] = {1};
    v = (meta_broker_view_t){one, 1, one, 1};
    meta_partition_elect_elr(&r, -1, &v, false, 1, &ch);
    CHECK_EQ_INT(1, ch.leader);
    CHECK(ch.unclean);
    CHECK_EQ_INT(1, ch.n_isr);
    CHECK_EQ_INT(1, ch.isr[0]);
    CHECK(ch.elr_changed);
    CHECK_EQ_INT(0, ch.n_last_known_elr);
    /* still fenced: nothing */
    v = (meta_broker_view_t){none_ids, 0, none_ids, 0};
    meta_partition_elect_elr(&r, -1, &v, false, 1, &ch);
    CHECK(!ch.changed);
    /* two known replicas: which one has the records is unknown, nobody leads */
    int32_t reps3[] = {1, 2, 3}, lke2[] = {1, 2}, live[] = {1, 2};
    meta_partition_t s3 = part(reps3, 3, NULL, 0, -1);
    set_elr(&s3, NULL, 0, lke2, 2);
    v = (meta_broker_view_t){live, 2, live, 2};
    meta_partition_elect_elr(&s3, -1, &v, false, 2, &ch);
    CHECK(!ch.changed);
}

int main(void) {
    RUN(test_place_racks);
    RUN(test_place_no_racks);
    RUN(test_place_too_few);
    RUN(test_fence_moves_leader);
    RUN(test_fence_last_isr_member);
    RUN(test_unfence_leads);
    RUN(test_preferred);
    RUN(test_alter_partition);
    RUN(test_reassign);
    RUN(test_elr_isr_shrink_and_grow);
    RUN(test_last_known_leader_settles);
    RUN(test_elr_fence_and_clean_election);
    RUN(test_elr_unclean_clears);
    RUN(test_elr_unclean_shutdown);
    RUN(test_elect_unclean_elr_first);
    RUN(test_elr_last_known_leader);
    return t_summary("replicas");
}
