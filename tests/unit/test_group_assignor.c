/*
 * The consumer groups' server-side assignors (group/assignor.c) over a fake
 * host whose partitions' replicas sit in given racks: uniform and range put
 * partitions in their members' racks when the balance allows, balance comes
 * first, racks shared by every partition change nothing, a rack change moves
 * the group epoch (KIP-1101), and the assignor most members ask for is used.
 */
#include <stdlib.h>
#include <string.h>

#include "group/group_impl.h"
#include "test.h"

#define NPARTS 6

/* Topic "t" of NPARTS partitions; racks[p] is partition p's replica rack ("" none). */
static const char *racks[NPARTS];
static const sm_uuid_t topic_id = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
static int32_t nparts = NPARTS;

static bool fake_topic(void *ctx, sm_str_t name, sm_uuid_t *id, int32_t *partitions) {
    if (!sm_str_eq(name, SM_STR_LIT("t"))) return false;
    *id = topic_id;
    *partitions = nparts;
    return true;
}

static void fake_racks(void *ctx, const sm_uuid_t *topic,
                       void (*fn)(void *arg, int32_t partition, sm_str_t rack), void *arg) {
    if (memcmp(topic->b, topic_id.b, 16) != 0) return;
    for (int32_t p = 0; p < nparts; p++)
        if (racks[p] && *racks[p]) fn(arg, p, sm_str_from(racks[p]));
}

static group_coordinator_t *coordinator(bool with_racks) {
    group_coordinator_t *c = calloc(1, sizeof(*c));
    c->host.topic = fake_topic;
    c->host.partition_racks = with_racks ? fake_racks : NULL;
    strcpy(c->assignors[0], "uniform");
    strcpy(c->assignors[1], "range");
    c->nassignors = 2;
    return c;
}

static group_cmember_t *member(group_cgroup_t *cg, const char *id, const char *rack,
                               const char *assignor) {
    group_cmember_t *m = calloc(1, sizeof(*m));
    m->id = gs_cstr(id);
    m->rack = rack ? gs_cstr(rack) : NULL;
    m->assignor = assignor ? gs_cstr(assignor) : NULL;
    m->topics = calloc(2, sizeof(char *));
    m->topics[0] = gs_cstr("t");
    m->ntopics = 1;
    m->next = cg->members;
    cg->members = m;
    cg->nmembers++;
    cg->epoch++;
    return m;
}

static void free_members(group_cgroup_t *cg) {
    while (cg->members) {
        group_cmember_t *m = cg->members;
        cg->members = m->next;
        group_cg_member_free(m);
    }
}

/* The partitions of m's target as a bit set. */
static unsigned target_bits(const group_cmember_t *m) {
    unsigned b = 0;
    for (int i = 0; i < m->target.n; i++)
        b |= 1u << m->target.v[i].p;
    return b;
}

static void set_racks(const char *first, const char *second) {
    for (int p = 0; p < NPARTS; p++)
        racks[p] = p < NPARTS / 2 ? first : second;
}

/* Partitions 0-2 in rack a, 3-5 in rack b; m1 is in b, m2 in a: each gets its
 * rack's half (without racks, m1 would get partitions of both). */
static void aligned_halves(const char *assignor) {
    set_racks("a", "b");
    group_coordinator_t *c = coordinator(true);
    group_cgroup_t cg = {0};
    group_cmember_t *m1 = member(&cg, "m1", "b", assignor);
    group_cmember_t *m2 = member(&cg, "m2", "a", assignor);
    REQUIRE(group_assignor_refresh(c, &cg) == SM_OK);
    CHECK_EQ_INT(0x38, target_bits(m1));
    CHECK_EQ_INT(0x07, target_bits(m2));
    CHECK_EQ_INT(cg.epoch, cg.assignment_epoch);
    free_members(&cg);
    free(c);
}

static void test_uniform_aligned(void) { aligned_halves("uniform"); }
static void test_range_aligned(void) { aligned_halves("range"); }

/* Balance before racks: five partitions in rack a, one in b, two members:
 * three each, the b member holding b's partition. */
static void test_balance_first(void) {
    for (int p = 0; p < NPARTS; p++)
        racks[p] = p == 4 ? "b" : "a";
    for (int k = 0; k < 2; k++) {
        group_coordinator_t *c = coordinator(true);
        group_cgroup_t cg = {0};
        const char *as = k ? "range" : "uniform";
        group_cmember_t *m1 = member(&cg, "m1", "a", as);
        group_cmember_t *m2 = member(&cg, "m2", "b", as);
        REQUIRE(group_assignor_refresh(c, &cg) == SM_OK);
        CHECK_EQ_INT(3, m1->target.n);
        CHECK_EQ_INT(3, m2->target.n);
        CHECK(target_bits(m2) & 0x10);
        CHECK_EQ_INT(0x3f, target_bits(m1) | target_bits(m2));
        free_members(&cg);
        free(c);
    }
}

/* Every partition on the same rack (a single node with broker.rack): the
 * assignment is the one without racks. */
static void test_one_rack_changes_nothing(void) {
    set_racks("a", "a");
    unsigned got[2][3];
    for (int with = 0; with < 2; with++) {
        group_coordinator_t *c = coordinator(with);
        group_cgroup_t cg = {0};
        group_cmember_t *ms[3] = {member(&cg, "m1", "b", NULL), member(&cg, "m2", "a", NULL),
                                  member(&cg, "m3", NULL, NULL)};
        REQUIRE(group_assignor_refresh(c, &cg) == SM_OK);
        for (int k = 0; k < 3; k++)
            got[with][k] = target_bits(ms[k]);
        free_members(&cg);
        free(c);
    }
    for (int k = 0; k < 3; k++)
        CHECK_EQ_INT(got[0][k], got[1][k]);
}

/* A member joining a rack-aligned group: sizes stay balanced, the b member
 * keeps only b partitions, and the a members share rack a's. */
static void test_join_keeps_alignment(void) {
    set_racks("a", "b");
    group_coordinator_t *c = coordinator(true);
    group_cgroup_t cg = {0};
    group_cmember_t *m1 = member(&cg, "m1", "b", NULL);
    group_cmember_t *m2 = member(&cg, "m2", "a", NULL);
    REQUIRE(group_assignor_refresh(c, &cg) == SM_OK);
    group_cmember_t *m3 = member(&cg, "m3", "a", NULL);
    REQUIRE(group_assignor_refresh(c, &cg) == SM_OK);
    CHECK_EQ_INT(2, m1->target.n);
    CHECK_EQ_INT(2, m2->target.n);
    CHECK_EQ_INT(2, m3->target.n);
    CHECK_EQ_INT(0, target_bits(m1) & 0x07);
    CHECK_EQ_INT(0x07, (target_bits(m2) | target_bits(m3)) & 0x07);
    CHECK_EQ_INT(0x3f, target_bits(m1) | target_bits(m2) | target_bits(m3));
    /* Sticky: m2 keeps two of the rack-a partitions it had. */
    CHECK_EQ_INT(0, target_bits(m2) & ~0x07u);
    free_members(&cg);
    free(c);
}

/* KIP-1101: a replica rack that changes moves the group epoch and the target. */
static void test_rack_change_bumps_epoch(void) {
    set_racks("a", "b");
    group_coordinator_t *c = coordinator(true);
    group_cgroup_t cg = {0};
    group_cmember_t *m1 = member(&cg, "m1", "b", NULL);
    member(&cg, "m2", "a", NULL);
    REQUIRE(group_assignor_refresh(c, &cg) == SM_OK);
    int32_t epoch = cg.epoch;
    REQUIRE(group_assignor_refresh(c, &cg) == SM_OK);
    CHECK_EQ_INT(epoch, cg.epoch);
    set_racks("b", "a");
    REQUIRE(group_assignor_refresh(c, &cg) == SM_OK);
    CHECK_EQ_INT(epoch + 1, cg.epoch);
    CHECK_EQ_INT(cg.epoch, cg.assignment_epoch);
    CHECK_EQ_INT(0x07, target_bits(m1));
    free_members(&cg);
    free(c);
}

/* The assignor most members ask for wins (Kafka's preferred server assignor). */
static void test_preferred_assignor(void) {
    group_coordinator_t *c = coordinator(false);
    group_cgroup_t cg = {0};
    CHECK(strcmp("uniform", group_assignor_preferred(c, &cg)) == 0);
    member(&cg, "m1", NULL, "range");
    member(&cg, "m2", NULL, "range");
    member(&cg, "m3", NULL, "uniform");
    CHECK(strcmp("range", group_assignor_preferred(c, &cg)) == 0);
    member(&cg, "m4", NULL, "uniform");
    CHECK(strcmp("uniform", group_assignor_preferred(c, &cg)) == 0);
    free_members(&cg);
    free(c);
}

int main(void) {
    RUN(test_uniform_aligned);
    RUN(test_range_aligned);
    RUN(test_balance_first);
    RUN(test_one_rack_changes_nothing);
    RUN(test_join_keeps_alignment);
    RUN(test_rack_change_bumps_epoch);
    RUN(test_preferred_assignor);
    return t_summary("test_group_assignor");
}
