/*
 * Replication throttles (broker/repl_quota.c): Kafka's SimpleRate over a ring of
 * samples and its bound, driven by an injected clock (no sleeps): unbounded never
 * throttles, the first window counts as a whole one, the bound is crossed only
 * past it, idle samples expire, a sender that moves data only while the quota
 * allows stays within bound x elapsed plus one fetch (and reaches the bound),
 * and the throttled-replicas lists of topic configs.
 */
#include <stdint.h>

#include "broker/repl_quota.h"
#include "metadata/topic_config.h"
#include "test.h"

static void test_unbounded_never_exceeded(void) {
    repl_quota_t q;
    repl_quota_init(&q);
    CHECK(!repl_quota_bounded(&q));
    repl_quota_record(&q, INT64_C(1) << 40, 0);
    CHECK(!repl_quota_exceeded(&q, 0));
    CHECK(!repl_quota_exceeded(&q, 5));
    repl_quota_set_bound(&q, INT64_MAX);
    CHECK(!repl_quota_exceeded(&q, 10));
    repl_quota_destroy(&q);
}

static void test_bound_crossed_past_it_only(void) {
    repl_quota_t q;
    repl_quota_init(&q);
    repl_quota_set_bound(&q, 1000);
    CHECK(repl_quota_bounded(&q));
    CHECK(!repl_quota_exceeded(&q, 0)); /* nothing recorded */
    /* The first sample counts as a whole window (1 s): 1000 bytes at once is
     * exactly the bound, allowed; one more byte is over. */
    repl_quota_record(&q, 1000, 0);
    CHECK_EQ_INT(1000, (int64_t)repl_quota_rate(&q, 0));
    CHECK(!repl_quota_exceeded(&q, 0));
    repl_quota_record(&q, 1, 0);
    CHECK(repl_quota_exceeded(&q, 0));
    CHECK(repl_quota_exceeded(&q, 1000));  /* 1001 bytes over 1 s */
    CHECK(!repl_quota_exceeded(&q, 1001)); /* 1001 bytes over 1.001 s */
    /* Twice the bound in the second second: over until 3 s have passed. */
    repl_quota_record(&q, 1999, 1500);
    CHECK(repl_quota_exceeded(&q, 1500));
    CHECK(repl_quota_exceeded(&q, 2999));
    CHECK(!repl_quota_exceeded(&q, 3000));
    repl_quota_destroy(&q);
}

static void test_idle_samples_expire(void) {
    repl_quota_t q;
    repl_quota_init(&q);
    repl_quota_set_bound(&q, 100);
    repl_quota_record(&q, 100000, 0);
    CHECK(repl_quota_exceeded(&q, 0));
    /* 11 samples of 1 s: a record 11 s old no longer counts. */
    CHECK(repl_quota_exceeded(&q, 10999));
    CHECK(!repl_quota_exceeded(&q, 11000));
    CHECK_EQ_INT(0, (int64_t)repl_quota_rate(&q, 11000));
    repl_quota_destroy(&q);
}

static void test_bound_change_keeps_the_rate(void) {
    repl_quota_t q;
    repl_quota_init(&q);
    repl_quota_record(&q, 5000, 0); /* counted while unbounded */
    repl_quota_set_bound(&q, 1000);
    CHECK(repl_quota_exceeded(&q, 100));
    repl_quota_set_bound(&q, 10000);
    CHECK(!repl_quota_exceeded(&q, 100));
    repl_quota_set_bound(&q, INT64_MAX); /* removed: Long.MAX */
    CHECK(!repl_quota_bounded(&q));
    repl_quota_destroy(&q);
}

static void test_window_settings(void) {
    repl_quota_t q;
    repl_quota_init(&q);
    repl_quota_set_window(&q, 2, 100); /* 2 samples of 100 ms */
    repl_quota_set_bound(&q, 1000);
    repl_quota_record(&q, 300, 0);
    CHECK(repl_quota_exceeded(&q, 150));  /* 300 bytes over 150 ms */
    CHECK(!repl_quota_exceeded(&q, 200)); /* expired after 2 x 100 ms */
    /* Out-of-range settings are held to what the ring holds. */
    repl_quota_set_window(&q, 0, 0);
    CHECK_EQ_INT(1, q.n_samples);
    CHECK_EQ_INT(1, q.window_ms);
    repl_quota_set_window(&q, 1000000, 1000);
    CHECK_EQ_INT(REPL_QUOTA_MAX_SAMPLES, q.n_samples);
    repl_quota_destroy(&q);
}

/* A throttled sender: every `tick` ms it moves one chunk when the quota is not
 * exceeded. Over any run the bytes stay within bound x elapsed plus the chunks
 * admitted at the edge, and the sender is not held far below the bound. */
static void run_sender(int64_t bound, int64_t chunk, int64_t tick, int64_t until) {
    repl_quota_t q;
    repl_quota_init(&q);
    repl_quota_set_bound(&q, bound);
    int64_t moved = 0, worst_excess = 0;
    for (int64_t now = 0; now <= until; now += tick) {
        if (!repl_quota_exceeded(&q, now)) {
            repl_quota_record(&q, chunk, now);
            moved += chunk;
        }
        /* Elapsed counts from 0 and at least one window, as the rate does. */
        int64_t elapsed = now < 1000 ? 1000 : now;
        int64_t excess = moved - bound * elapsed / 1000;
        if (excess > worst_excess) worst_excess = excess;
    }
    CHECK(worst_excess <= 2 * chunk);
    if (worst_excess > 2 * chunk)
        fprintf(stderr, "  bound %lld chunk %lld: %lld bytes over bound x elapsed\n",
                (long long)bound, (long long)chunk, (long long)worst_excess);
    /* Throttled, not starved: at least 90% of the bound over the run. */
    CHECK(moved >= bound * until / 1000 * 9 / 10);
    repl_quota_destroy(&q);
}

static void test_sender_within_bound(void) {
    run_sender(1 << 20, 1 << 20, 5, 120000);  /* 1 MiB/s in 1 MiB fetches for 2 minutes */
    run_sender(1 << 20, 64 << 10, 1, 60000);  /* smaller fetches */
    run_sender(10 << 20, 1 << 20, 20, 90000); /* 10 MiB/s */
    run_sender(1000, 10, 3, 45000);
}

static void test_throttled_replicas_lists(void) {
    CHECK(meta_throttled_replica("*", 3, 7));
    CHECK(meta_throttled_replica("0:1,1:2", 0, 1));
    CHECK(meta_throttled_replica(" 0:1 , 1:2 ", 1, 2));
    CHECK(!meta_throttled_replica("0:1,1:2", 0, 2));
    CHECK(!meta_throttled_replica("0:1,1:2", 2, 1));
    CHECK(!meta_throttled_replica("", 0, 1));
    CHECK(!meta_throttled_replica(NULL, 0, 1));
    CHECK(!meta_throttled_replica("10:1", 1, 1));
    CHECK(!meta_throttled_replica("0:11", 0, 1));
    char err[256];
    const char *name = "leader.replication.throttled.replicas";
    CHECK(meta_topic_config_validate(name, strlen(name), "*", 1, err, sizeof(err)));
    CHECK(meta_topic_config_validate(name, strlen(name), "", 0, err, sizeof(err)));
    CHECK(meta_topic_config_validate(name, strlen(name), "0:1, 12:3", 9, err, sizeof(err)));
    CHECK(!meta_topic_config_validate(name, strlen(name), "0:x", 3, err, sizeof(err)));
    CHECK(strstr(err, "must be the literal '*' or a list of replicas") != NULL);
    CHECK(!meta_topic_config_validate(name, strlen(name), "*,0:1", 5, err, sizeof(err)));
    CHECK(!meta_topic_config_validate(name, strlen(name), "0:1:2", 5, err, sizeof(err)));
    CHECK(!meta_topic_config_validate(name, strlen(name), "-1:2", 4, err, sizeof(err)));
}

int main(void) {
    RUN(test_unbounded_never_exceeded);
    RUN(test_bound_crossed_past_it_only);
    RUN(test_idle_samples_expire);
    RUN(test_bound_change_keeps_the_rate);
    RUN(test_window_settings);
    RUN(test_sender_within_bound);
    RUN(test_throttled_replicas_lists);
    return t_summary("repl_quota");
}
