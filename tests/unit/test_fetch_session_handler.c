/*
 * The follower's side of a fetch session (broker/fetch_session_handler.c), Kafka's
 * FetchSessionHandler rules: the first request is full (epoch 0); once the leader answers
 * with a session id the requests are incremental (epochs 1, 2, ...) and name only the
 * partitions whose fetch state changed, new ones, and the ones that left (forgotten);
 * answers are matched to the session's partitions; the session errors, a failed request
 * and a leader that closes the session make the next request full again.
 */
#include <string.h>

#include "base/err.h"
#include "broker/fetch_session_handler.h"
#include "protocol/errors.h"
#include "test.h"

static fsh_part_t part(uint8_t topic, int32_t partition, int64_t offset) {
    fsh_part_t p;
    memset(&p, 0, sizeof(p));
    p.topic_id.b[0] = topic;
    p.partition = partition;
    p.fetch_offset = offset;
    p.current_leader_epoch = 3;
    p.last_fetched_epoch = 2;
    p.max_bytes = 1 << 20;
    return p;
}

typedef struct built {
    bool full;
    int send[8], n_send;
    fsh_part_t forget[8];
    int n_forget;
} built_t;

static void build(fsh_t *h, const fsh_part_t *want, int n, built_t *b) {
    REQUIRE(h->n <= 8 && n <= 8);
    REQUIRE(fsh_build(h, want, n, &b->full, b->send, &b->n_send, b->forget, &b->n_forget) ==
            SM_OK);
}

static void test_full_then_incremental(void) {
    fsh_t h;
    fsh_init(&h);
    fsh_part_t want[3] = {part(1, 0, 10), part(1, 1, 20), part(2, 0, 30)};
    built_t b;
    build(&h, want, 3, &b);
    CHECK(b.full);
    CHECK_EQ_INT(0, h.session_id);
    CHECK_EQ_INT(0, h.epoch);
    CHECK_EQ_INT(3, b.n_send);
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 77));
    CHECK_EQ_INT(77, h.session_id);
    CHECK_EQ_INT(1, h.epoch);
    /* nothing changed: an incremental request naming no partition */
    build(&h, want, 3, &b);
    CHECK(!b.full);
    CHECK_EQ_INT(0, b.n_send);
    CHECK_EQ_INT(0, b.n_forget);
    /* answers still reach every partition of the session */
    CHECK_EQ_INT(2, fsh_find(&h, &want[2].topic_id, 0));
    CHECK_EQ_INT(-1, fsh_find(&h, &want[2].topic_id, 5));
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 77));
    CHECK_EQ_INT(2, h.epoch);
    /* one partition fetched records, another got a new leader epoch, one new, one gone */
    fsh_part_t next[3] = {part(1, 1, 25), part(2, 0, 30), part(3, 0, 0)};
    next[1].current_leader_epoch = 4;
    build(&h, next, 3, &b);
    CHECK(!b.full);
    CHECK_EQ_INT(3, b.n_send);
    CHECK_EQ_INT(0, b.send[0]);
    CHECK_EQ_INT(1, b.send[1]);
    CHECK_EQ_INT(2, b.send[2]);
    CHECK_EQ_INT(1, b.n_forget);
    CHECK_EQ_INT(1, b.forget[0].topic_id.b[0]);
    CHECK_EQ_INT(0, b.forget[0].partition);
    CHECK_EQ_INT(0, fsh_find(&h, &next[0].topic_id, 1));
    CHECK_EQ_INT(-1, fsh_find(&h, &want[0].topic_id, 0));
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 77));
    CHECK_EQ_INT(3, h.epoch);
    /* only the last fetched epoch changed (a truncation to the same offset): named */
    next[0].last_fetched_epoch = 1;
    build(&h, next, 3, &b);
    CHECK_EQ_INT(1, b.n_send);
    CHECK_EQ_INT(0, b.send[0]);
    CHECK_EQ_INT(1, (int)h.full_requests);
    CHECK_EQ_INT(3, (int)h.incremental_requests);
    fsh_free(&h);
}

static void test_errors_make_the_next_full(void) {
    fsh_t h;
    fsh_init(&h);
    fsh_part_t want[2] = {part(1, 0, 10), part(1, 1, 20)};
    built_t b;
    build(&h, want, 2, &b);
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 9));
    build(&h, want, 2, &b);
    CHECK(!b.full);
    /* evicted on the leader: no session, full */
    CHECK(!fsh_response(&h, PROTO_ERR_FETCH_SESSION_ID_NOT_FOUND, 0));
    CHECK_EQ_INT(0, h.session_id);
    build(&h, want, 2, &b);
    CHECK(b.full);
    CHECK_EQ_INT(2, b.n_send);
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 11));
    /* a wrong epoch: full, naming the session so the leader closes it */
    build(&h, want, 2, &b);
    CHECK(!fsh_response(&h, PROTO_ERR_INVALID_FETCH_SESSION_EPOCH, 0));
    CHECK_EQ_INT(11, h.session_id);
    CHECK_EQ_INT(0, h.epoch);
    build(&h, want, 2, &b);
    CHECK(b.full);
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 12));
    CHECK_EQ_INT(12, h.session_id);
    CHECK_EQ_INT(1, h.epoch);
    /* a failed request (the connection): full */
    build(&h, want, 2, &b);
    CHECK(!b.full);
    fsh_failed(&h);
    build(&h, want, 2, &b);
    CHECK(b.full);
    /* the leader opened no session (its cache disabled): full every time */
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 0));
    build(&h, want, 2, &b);
    CHECK(b.full);
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 13));
    /* an incremental answer without a session id: the leader closed it */
    build(&h, want, 2, &b);
    CHECK(!b.full);
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 0));
    build(&h, want, 2, &b);
    CHECK(b.full);
    /* the epoch wraps to 1 */
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 14));
    h.epoch = INT32_MAX;
    build(&h, want, 2, &b);
    CHECK(fsh_response(&h, PROTO_ERR_NONE, 14));
    CHECK_EQ_INT(1, h.epoch);
    fsh_free(&h);
}

int main(void) {
    RUN(test_full_then_incremental);
    RUN(test_errors_make_the_next_full);
    return t_summary("fetch_session_handler");
}
