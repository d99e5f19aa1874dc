/*
 * Loading a classic group from its GroupMetadata record (group/records.c), as
 * a coordinator does when it starts or takes over a partition of
 * __consumer_offsets: the group comes back Stable with every member of the
 * record (ids, static instance ids, client, timeouts, subscription,
 * assignment) in the record's order, or Empty without members; the newest
 * record wins, a tombstone removes the group, a record cut short changes
 * nothing; what Samsa writes for a Stable group is every member with its
 * assignment, so writing and loading give back the same group.
 */
#include <stdlib.h>
#include <string.h>

#include "group/group_impl.h"
#include "test.h"

static void shard_init(group_shard_t *s) {
    memset(s, 0, sizeof(*s));
    sm_map_init(&s->groups);
    group_txn_offsets_init(&s->txn);
}

static void shard_free(group_shard_t *s) { group_shard_state_free(&s->groups, &s->txn); }

static sm_bytes_t B(const char *s) { return (sm_bytes_t){(const uint8_t *)s, (int32_t)strlen(s)}; }

static bool gs_is(const char *g, const char *want) {
    return want ? g && gs_len(g) == (int32_t)strlen(want) && !memcmp(g, want, strlen(want))
                : g == NULL;
}

static bool bytes_is(const uint8_t *p, int32_t len, const char *want) {
    return p && len == (int32_t)strlen(want) && !memcmp(p, want, (size_t)len);
}

/* Replays "GroupMetadataKey(group) -> value at version v" into s (value
 * NULL: a tombstone), the value's last `cut` bytes left out. */
static void replay_cut(group_shard_t *s, const char *group, int16_t version,
                       const proto_group_metadata_value_t *value, size_t cut) {
    proto_group_metadata_key_t k;
    proto_group_metadata_key_init(&k);
    k.group = sm_str_from(group);
    uint8_t *key = NULL, *val = NULL;
    size_t kl = 0, vl = 0;
    CHECK_EQ_INT(SM_OK, group_encode_key("GroupMetadataKey", &k, &key, &kl));
    if (value)
        CHECK_EQ_INT(SM_OK, group_encode_value("GroupMetadataValue", version, value, &val, &vl));
    group_load_record(s, (sm_bytes_t){key, (int32_t)kl},
                      value ? (sm_bytes_t){val, (int32_t)(vl - cut)} : SM_BYTES_NULL, -1);
    free(key);
    free(val);
}

static void replay(group_shard_t *s, const char *group, int16_t version,
                   const proto_group_metadata_value_t *value) {
    replay_cut(s, group, version, value, 0);
}

/* A generation of two members, the second static. */
static proto_group_metadata_value_member_metadata_t two[2];

static proto_group_metadata_value_t generation7(void) {
    proto_group_metadata_value_t v;
    proto_group_metadata_value_init(&v);
    v.protocol_type = SM_STR_LIT("consumer");
    v.generation = 7;
    v.protocol = SM_STR_LIT("range");
    v.leader = SM_STR_LIT("m-1");
    v.current_state_timestamp = 1700000000000;
    memset(two, 0, sizeof(two));
    two[0] = (proto_group_metadata_value_member_metadata_t){SM_STR_LIT("m-1"),
                                                            SM_STR_NULL,
                                                            SM_STR_LIT("c1"),
                                                            SM_STR_LIT("/10.0.0.1"),
                                                            60000,
                                                            10000,
                                                            B("sub1"),
                                                            B("assign1"),
                                                            {0}};
    two[1] = (proto_group_metadata_value_member_metadata_t){SM_STR_LIT("m-2"),
                                                            SM_STR_LIT("i-2"),
                                                            SM_STR_LIT("c2"),
                                                            SM_STR_LIT("/10.0.0.2"),
                                                            45000,
                                                            20000,
                                                            B("sub2"),
                                                            B("assign2"),
                                                            {0}};
    v.members = (proto_group_metadata_value_member_metadata_array_t){2, two};
    return v;
}

/* The record of a Stable generation gives back the group: Stable, its
 * generation, protocol and leader, both members in order with everything
 * Kafka keeps of them, the static member found by its instance id, and the
 * sessions starting when the shard is installed. */
static void test_load_restores_members(void) {
    group_shard_t s;
    shard_init(&s);
    proto_group_metadata_value_t v = generation7();
    replay(&s, "g", 3, &v);
    group_t *g = group_get(&s, SM_STR_LIT("g"));
    REQUIRE(g != NULL);
    CHECK_EQ_INT(GROUP_STABLE, g->state);
    CHECK_EQ_INT(7, g->generation);
    CHECK(gs_is(g->protocol_type, "consumer"));
    CHECK(gs_is(g->protocol, "range"));
    CHECK(gs_is(g->leader, "m-1"));
    CHECK_EQ_INT(1700000000000, g->state_ts);
    CHECK_EQ_INT(2, g->nmembers);
    group_member_t *m1 = g->members, *m2 = m1 ? m1->next : NULL;
    REQUIRE(m1 && m2 && !m2->next);
    CHECK(gs_is(m1->id, "m-1"));
    CHECK(m1->instance_id == NULL);
    CHECK(gs_is(m1->client_id, "c1"));
    CHECK(gs_is(m1->client_host, "/10.0.0.1"));
    CHECK_EQ_INT(60000, m1->rebalance_timeout);
    CHECK_EQ_INT(10000, m1->session_timeout);
    REQUIRE(m1->nprotocols == 1);
    CHECK(gs_is(m1->protocols[0].name, "range"));
    CHECK(bytes_is(m1->protocols[0].meta, m1->protocols[0].meta_len, "sub1"));
    CHECK(bytes_is(m1->assignment, m1->assignment_len, "assign1"));
    CHECK(gs_is(m2->id, "m-2"));
    CHECK(gs_is(m2->instance_id, "i-2"));
    CHECK_EQ_INT(20000, m2->session_timeout);
    CHECK(bytes_is(m2->assignment, m2->assignment_len, "assign2"));
    CHECK(group_member_by_instance(g, SM_STR_LIT("i-2")) == m2);
    CHECK(group_member_find(g, SM_STR_LIT("m-2")) == m2);
    CHECK(m1->join_req == NULL && m1->sync_req == NULL);
    group_classic_loaded(g, 424242);
    CHECK_EQ_INT(424242, m1->last_seen);
    CHECK_EQ_INT(424242, m2->last_seen);
    shard_free(&s);
}

/* What Samsa writes for a Stable group (group_meta_record) holds every member
 * with its subscription and assignment, so writing the loaded group and
 * loading that record again gives the same group. */
static void test_written_record_holds_every_member(void) {
    group_shard_t s;
    shard_init(&s);
    proto_group_metadata_value_t v = generation7();
    replay(&s, "g", 3, &v);
    group_t *g = group_get(&s, SM_STR_LIT("g"));
    REQUIRE(g != NULL);
    group_meta_view_t view = {g->generation, g->protocol, g->leader, true, NULL};
    group_rec_t rec;
    REQUIRE(group_meta_record(g, &view, false, &rec) == SM_OK);
    sm_arena_t a;
    sm_arena_init(&a, 0);
    sm_reader_t r = sm_reader_make(rec.value, rec.value_len);
    int16_t vv = -1;
    proto_group_metadata_value_t back;
    REQUIRE(sm_rd_i16(&r, &vv) == SM_OK);
    CHECK_EQ_INT(3, vv);
    REQUIRE(proto_group_metadata_value_decode(&r, &a, vv, &back) == SM_OK);
    CHECK_EQ_INT(7, back.generation);
    CHECK(sm_str_eq(back.protocol, SM_STR_LIT("range")));
    CHECK(sm_str_eq(back.leader, SM_STR_LIT("m-1")));
    REQUIRE(back.members.n == 2);
    for (int i = 0; i < 2; i++) {
        const proto_group_metadata_value_member_metadata_t *x = &back.members.v[i], *y = &two[i];
        CHECK(sm_str_eq(x->member_id, y->member_id));
        CHECK(x->group_instance_id.len == y->group_instance_id.len &&
              (x->group_instance_id.len < 0 ||
               sm_str_eq(x->group_instance_id, y->group_instance_id)));
        CHECK(sm_str_eq(x->client_id, y->client_id));
        CHECK(sm_str_eq(x->client_host, y->client_host));
        CHECK_EQ_INT(y->rebalance_timeout, x->rebalance_timeout);
        CHECK_EQ_INT(y->session_timeout, x->session_timeout);
        CHECK(x->subscription.len == y->subscription.len &&
              !memcmp(x->subscription.ptr, y->subscription.ptr, (size_t)y->subscription.len));
        CHECK(x->assignment.len == y->assignment.len &&
              !memcmp(x->assignment.ptr, y->assignment.ptr, (size_t)y->assignment.len));
    }
    /* Loaded into another shard: the same members. */
    group_shard_t s2;
    shard_init(&s2);
    group_load_record(&s2, (sm_bytes_t){rec.key, (int32_t)rec.key_len},
                      (sm_bytes_t){rec.value, (int32_t)rec.value_len}, -1);
    group_t *g2 = group_get(&s2, SM_STR_LIT("g"));
    REQUIRE(g2 != NULL);
    CHECK_EQ_INT(GROUP_STABLE, g2->state);
    CHECK_EQ_INT(2, g2->nmembers);
    CHECK(g2->members && gs_is(g2->members->id, "m-1"));
    CHECK(group_member_by_instance(g2, SM_STR_LIT("i-2")) != NULL);
    group_recs_free(&rec, 1);
    sm_arena_free(&a);
    shard_free(&s2);
    shard_free(&s);
}

/* A version 0 record has no rebalance timeout: the session timeout stands in
 * for it, as in Kafka. */
static void test_v0_record_rebalance_timeout(void) {
    group_shard_t s;
    shard_init(&s);
    proto_group_metadata_value_t v = generation7();
    v.members.n = 1;
    replay(&s, "old", 0, &v);
    group_t *g = group_get(&s, SM_STR_LIT("old"));
    REQUIRE(g && g->members);
    CHECK_EQ_INT(GROUP_STABLE, g->state);
    CHECK_EQ_INT(10000, g->members->session_timeout);
    CHECK_EQ_INT(10000, g->members->rebalance_timeout);
    shard_free(&s);
}

/* The newest record wins: a later generation with one member replaces both;
 * a record cut short changes nothing; the Empty generation's record leaves
 * no member; a tombstone removes a group without offsets. */
static void test_newest_record_wins(void) {
    group_shard_t s;
    shard_init(&s);
    proto_group_metadata_value_t v = generation7();
    replay(&s, "g", 3, &v);
    v.generation = 8;
    v.leader = SM_STR_LIT("m-2");
    v.members = (proto_group_metadata_value_member_metadata_array_t){1, &two[1]};
    replay(&s, "g", 3, &v);
    group_t *g = group_get(&s, SM_STR_LIT("g"));
    REQUIRE(g != NULL);
    CHECK_EQ_INT(8, g->generation);
    CHECK_EQ_INT(1, g->nmembers);
    CHECK(g->members && gs_is(g->members->id, "m-2") && !g->members->next);
    CHECK(group_member_find(g, SM_STR_LIT("m-1")) == NULL);

    /* Cut short: ignored. */
    replay_cut(&s, "g", 3, &v, 9);
    g = group_get(&s, SM_STR_LIT("g"));
    REQUIRE(g != NULL);
    CHECK_EQ_INT(8, g->generation);
    CHECK_EQ_INT(1, g->nmembers);
    CHECK_EQ_INT(GROUP_STABLE, g->state);

    proto_group_metadata_value_t empty;
    proto_group_metadata_value_init(&empty);
    empty.protocol_type = SM_STR_LIT("consumer");
    empty.generation = 9;
    empty.protocol = SM_STR_NULL;
    empty.leader = SM_STR_NULL;
    empty.members = (proto_group_metadata_value_member_metadata_array_t){0, NULL};
    replay(&s, "g", 3, &empty);
    g = group_get(&s, SM_STR_LIT("g"));
    REQUIRE(g != NULL);
    CHECK_EQ_INT(GROUP_EMPTY, g->state);
    CHECK_EQ_INT(9, g->generation);
    CHECK_EQ_INT(0, g->nmembers);
    CHECK(g->members == NULL && g->protocol == NULL && g->leader == NULL);

    replay(&s, "g", 3, &v);
    replay(&s, "g", 3, NULL);
    CHECK(group_get(&s, SM_STR_LIT("g")) == NULL);
    shard_free(&s);
}

int main(void) {
    RUN(test_load_restores_members);
    RUN(test_written_record_holds_every_member);
    RUN(test_v0_record_rebalance_timeout);
    RUN(test_newest_record_wins);
    return t_summary("group_records");
}
