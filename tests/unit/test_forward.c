/*
 * The broker's half of forwarding (src/broker/forward.c): which controller answers mean
 * "not the active controller" (the relay sends the request again), and the error answer of a
 * request whose forwarding timed out, one result per item the request named.
 */
#include "broker/forward.h"

#include "base/arena.h"
#include "protocol/errors.h"
#include "protocol/gen/api.h"
#include "protocol/request.h"
#include "test.h"

/* A request frame without size prefix: header then body, as a client sends it. */
static uint8_t *request_frame(int16_t key, int16_t version, int32_t corr, const void *body,
                              size_t *len) {
    const proto_api_desc_t *api = proto_api_lookup(key);
    int hv = proto_request_header_version(key, version);
    proto_request_header_t h;
    proto_request_header_init(&h);
    h.request_api_key = key;
    h.request_api_version = version;
    h.correlation_id = corr;
    h.client_id = sm_str_from("test");
    size_t n = proto_request_header_size((int16_t)hv, &h) + api->request->size(version, body);
    uint8_t *buf = malloc(n);
    sm_writer_t w = sm_writer_make(buf, n);
    if (proto_request_header_encode(&w, (int16_t)hv, &h) != SM_OK ||
        api->request->encode(&w, version, body) != SM_OK) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Decodes a response frame (size prefix included) into body; checks its correlation id. */
static int decode_response(const uint8_t *frame, size_t len, int16_t key, int16_t version,
                           int32_t corr, sm_arena_t *a, void *body) {
    const proto_api_desc_t *api = proto_api_lookup(key);
    sm_reader_t r = sm_reader_make(frame + 4, len - 4);
    proto_response_header_t rh;
    int rc = proto_response_header_decode(
        &r, a, (int16_t)proto_response_header_version(key, version), &rh);
    if (rc != SM_OK) return rc;
    if (rh.correlation_id != corr) return SM_ERR_PARSE;
    api->response->init(body);
    return api->response->decode(&r, a, version, body);
}

/* The error answer to body sent as key at version: decoded into resp (from a). */
static int fail_and_decode(int16_t key, int16_t version, int32_t corr, const void *body,
                           sm_arena_t *a, void *resp) {
    size_t len = 0, rlen = 0;
    uint8_t *req = request_frame(key, version, corr, body, &len), *frame = NULL;
    int rc = req ? broker_forward_error_frame(req, len, PROTO_ERR_REQUEST_TIMED_OUT, &frame, &rlen)
                 : SM_ERR_NOMEM;
    uint8_t *keep = rc == SM_OK ? sm_arena_alloc(a, rlen) : NULL; /* decoded names borrow it */
    if (keep) {
        memcpy(keep, frame, rlen);
        rc = decode_response(keep, rlen, key, version, corr, a, resp);
    } else if (rc == SM_OK) {
        rc = SM_ERR_NOMEM;
    }
    free(req);
    free(frame);
    return rc;
}

/* A response body encoded as the controller sends it: without size prefix. */
static bool stale(int16_t key, int16_t version, const void *body) {
    sm_arena_t a;
    sm_arena_init(&a, 0);
    uint8_t *frame;
    size_t len;
    bool s = false;
    if (proto_response_encode(&a, proto_api_lookup(key), version, 9, body, &frame, &len) == SM_OK)
        s = broker_forward_stale(frame + 4, len - 4, key, version);
    sm_arena_free(&a);
    return s;
}

/* NOT_CONTROLLER in any topic's result makes a CreateTopics answer stale; other errors do not. */
static void test_stale_create_topics(void) {
    proto_create_topics_response_t r;
    proto_create_topics_response_creatable_topic_result_t t[2];
    memset(t, 0, sizeof(t));
    t[0].name = sm_str_from("a");
    t[1].name = sm_str_from("b");
    t[0].error_message = t[1].error_message = SM_STR_NULL;
    proto_create_topics_response_init(&r);
    r.topics = (proto_create_topics_response_creatable_topic_result_array_t){2, t};
    t[1].error_code = PROTO_ERR_TOPIC_ALREADY_EXISTS;
    CHECK(!stale(19, 7, &r));
    CHECK(!stale(19, 2, &r));
    t[1].error_code = PROTO_ERR_NOT_CONTROLLER;
    CHECK(stale(19, 7, &r));
    CHECK(stale(19, 2, &r));
}

/* Nested results count (ElectLeaders' partitions), as do top-level codes; DescribeQuorum's
 * stale error is NOT_LEADER_OR_FOLLOWER. */
static void test_stale_nested_and_quorum(void) {
    proto_elect_leaders_response_t e;
    proto_elect_leaders_response_replica_election_result_t et;
    proto_elect_leaders_response_partition_result_t ep;
    memset(&et, 0, sizeof(et));
    memset(&ep, 0, sizeof(ep));
    proto_elect_leaders_response_init(&e);
    et.topic = sm_str_from("t");
    et.partition_result = (proto_elect_leaders_response_partition_result_array_t){1, &ep};
    ep.error_message = SM_STR_NULL;
    e.replica_election_results =
        (proto_elect_leaders_response_replica_election_result_array_t){1, &et};
    CHECK(!stale(43, 2, &e));
    ep.error_code = PROTO_ERR_NOT_CONTROLLER;
    CHECK(stale(43, 2, &e));

    proto_describe_quorum_response_t q;
    proto_describe_quorum_response_init(&q);
    q.error_code = PROTO_ERR_NOT_CONTROLLER;
    CHECK(!stale(55, 1, &q));
    q.error_code = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    CHECK(stale(55, 1, &q));

    proto_list_partition_reassignments_response_t l;
    proto_list_partition_reassignments_response_init(&l);
    l.error_message = SM_STR_NULL;
    l.error_code = PROTO_ERR_NOT_CONTROLLER;
    CHECK(stale(46, 0, &l));
}

/* Bytes that are no answer are not stale: they are relayed as they are. */
static void test_stale_garbage(void) {
    uint8_t junk[] = {0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK(!broker_forward_stale(junk, sizeof(junk), 19, 7));
    CHECK(!broker_forward_stale(junk, 2, 19, 7));
    CHECK(!broker_forward_stale(junk, sizeof(junk), 1234, 0));
}

/* A timed-out CreateTopics names every topic with REQUEST_TIMED_OUT, at the request's
 * version and correlation id. */
static void test_fail_create_topics(void) {
    proto_create_topics_request_t q;
    proto_create_topics_request_creatable_topic_t t[2];
    memset(t, 0, sizeof(t));
    proto_create_topics_request_init(&q);
    t[0].name = sm_str_from("first");
    t[1].name = sm_str_from("second");
    t[0].num_partitions = t[1].num_partitions = 3;
    t[0].replication_factor = t[1].replication_factor = 2;
    q.topics = (proto_create_topics_request_creatable_topic_array_t){2, t};
    for (int16_t v = 2; v <= 7; v += 5) {
        sm_arena_t a;
        sm_arena_init(&a, 0);
        proto_create_topics_response_t r;
        CHECK_EQ_INT(SM_OK, fail_and_decode(19, v, 77, &q, &a, &r));
        CHECK_EQ_INT(2, r.topics.n);
        for (int32_t i = 0; i < r.topics.n && i < 2; i++) {
            CHECK_EQ_INT(PROTO_ERR_REQUEST_TIMED_OUT, r.topics.v[i].error_code);
            CHECK(sm_str_eq(r.topics.v[i].name, t[i].name));
        }
        sm_arena_free(&a);
    }
}

/* AlterPartitionReassignments: the top-level code and every partition's. */
static void test_fail_reassignments(void) {
    proto_alter_partition_reassignments_request_t q;
    proto_alter_partition_reassignments_request_reassignable_topic_t t;
    proto_alter_partition_reassignments_request_reassignable_partition_t p[2];
    memset(&t, 0, sizeof(t));
    memset(p, 0, sizeof(p));
    proto_alter_partition_reassignments_request_init(&q);
    int32_t reps[2] = {1, 3};
    p[0].partition_index = 4;
    p[1].partition_index = 6;
    p[0].replicas = p[1].replicas = (sm_i32_array_t){2, reps};
    t.name = sm_str_from("moved");
    t.partitions =
        (proto_alter_partition_reassignments_request_reassignable_partition_array_t){2, p};
    q.topics = (proto_alter_partition_reassignments_request_reassignable_topic_array_t){1, &t};
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_alter_partition_reassignments_response_t r;
    CHECK_EQ_INT(SM_OK, fail_and_decode(45, 0, 5, &q, &a, &r));
    CHECK_EQ_INT(PROTO_ERR_REQUEST_TIMED_OUT, r.error_code);
    CHECK_EQ_INT(1, r.responses.n);
    if (r.responses.n == 1) {
        CHECK_EQ_INT(2, r.responses.v[0].partitions.n);
        CHECK_EQ_INT(6, r.responses.v[0].partitions.v[1].partition_index);
        CHECK_EQ_INT(PROTO_ERR_REQUEST_TIMED_OUT, r.responses.v[0].partitions.v[1].error_code);
    }
    sm_arena_free(&a);
}

/* DeleteTopics names its topics two ways: by name (v0-5) and as topics with ids (v6+). */
static void test_fail_delete_topics(void) {
    proto_delete_topics_request_t q;
    proto_delete_topics_request_init(&q);
    sm_str_t names[1] = {sm_str_from("gone")};
    q.topic_names = (sm_str_array_t){1, names};
    proto_delete_topics_request_delete_topic_state_t st;
    memset(&st, 0, sizeof(st));
    st.name = sm_str_from("gone");
    st.topic_id.b[15] = 7;
    q.topics = (proto_delete_topics_request_delete_topic_state_array_t){1, &st};
    for (int16_t v = 4; v <= 6; v += 2) {
        sm_arena_t a;
        sm_arena_init(&a, 0);
        proto_delete_topics_response_t r;
        CHECK_EQ_INT(SM_OK, fail_and_decode(20, v, 3, &q, &a, &r));
        CHECK_EQ_INT(1, r.responses.n);
        if (r.responses.n == 1) {
            CHECK(sm_str_eq(r.responses.v[0].name, names[0]));
            CHECK_EQ_INT(PROTO_ERR_REQUEST_TIMED_OUT, r.responses.v[0].error_code);
            if (v >= 6) CHECK_EQ_INT(7, r.responses.v[0].topic_id.b[15]);
        }
        sm_arena_free(&a);
    }
}

/* A frame that is no request gets no answer (the connection is closed instead). */
static void test_fail_garbage(void) {
    uint8_t junk[] = {0, 19, 0, 7, 0, 0, 0, 1, 0xff};
    uint8_t *resp = NULL;
    size_t rlen = 0;
    CHECK(broker_forward_error_frame(junk, sizeof(junk), PROTO_ERR_REQUEST_TIMED_OUT, &resp,
                                     &rlen) != SM_OK);
    CHECK(resp == NULL);
}

int main(void) {
    RUN(test_stale_create_topics);
    RUN(test_stale_nested_and_quorum);
    RUN(test_stale_garbage);
    RUN(test_fail_create_topics);
    RUN(test_fail_reassignments);
    RUN(test_fail_delete_topics);
    RUN(test_fail_garbage);
    return t_summary("test_forward");
}
