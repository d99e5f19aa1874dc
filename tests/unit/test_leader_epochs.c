/*
 * The leader-epoch cache (storage/leader_epochs.c): Kafka's answers for where
 * an epoch ended, the checkpoint file written on every change and read back
 * (a tail past the log end dropped, a damaged file refused), truncation from
 * either end, and follower appends that keep the leader's offsets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "storage/leader_epochs.h"
#include "storage/log.h"
#include "protocol/records.h"
#include "test.h"

static char dir[] = "/tmp/samsa-epochs-XXXXXX";

static void end_of(const log_epochs_t *e, int32_t epoch, int64_t log_end, int32_t want_epoch,
                   int64_t want_end) {
    int32_t oe;
    int64_t oend;
    log_epochs_end_offset(e, epoch, log_end, &oe, &oend);
    CHECK_EQ_INT(want_epoch, oe);
    CHECK_EQ_INT(want_end, oend);
}

static void test_end_offsets_as_kafka_answers(void) {
    log_epochs_t e;
    REQUIRE(log_epochs_load(&e, dir, 0) == SM_OK);
    end_of(&e, 0, 0, -1, -1); /* empty: unknown */
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 1, 0));
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 3, 100));
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 5, 250));
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 4, 300)); /* older than the latest: ignored */
    CHECK_EQ_INT(5, log_epochs_latest(&e));
    CHECK_EQ_INT(250, log_epochs_latest_start(&e));
    end_of(&e, 5, 400, 5, 400); /* the latest ends at the log end */
    end_of(&e, 3, 400, 3, 250); /* an older one where the next began */
    end_of(&e, 4, 400, 3, 250); /* never written: the newest below it, ending there */
    end_of(&e, 2, 400, 1, 100);
    end_of(&e, 0, 400, 0, 0);   /* older than the first: that epoch, ending at the first start */
    end_of(&e, 6, 400, -1, -1); /* newer than anything written: unknown */
    log_epochs_free(&e);
}

static void test_checkpoint_file_round_trip_and_truncation(void) {
    log_epochs_t e;
    REQUIRE(log_epochs_load(&e, dir, 0) == SM_OK);
    CHECK_EQ_INT(SM_OK, log_epochs_clear(&e));
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 0, 0));
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 2, 10));
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 7, 40));
    log_epochs_free(&e);
    char path[4096];
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", dir);
    uint8_t *data;
    size_t len;
    REQUIRE(fio_read_file(path, &data, &len, 1 << 20) == SM_OK);
    CHECK(len == strlen("0\n3\n0 0\n2 10\n7 40\n") &&
          memcmp(data, "0\n3\n0 0\n2 10\n7 40\n", len) == 0);
    free(data);
    /* A log that lost its tail past 40 in a crash: epoch 7 wrote nothing. */
    REQUIRE(log_epochs_load(&e, dir, 40) == SM_OK);
    CHECK_EQ_INT(2, log_epochs_latest(&e));
    /* A follower truncating to 5, then its log start moving to 3. */
    CHECK_EQ_INT(SM_OK, log_epochs_truncate_from_end(&e, 5));
    CHECK_EQ_INT(0, log_epochs_latest(&e));
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 9, 5));
    CHECK_EQ_INT(SM_OK, log_epochs_truncate_from_start(&e, 7));
    CHECK_EQ_INT(1, (int)e.n);
    CHECK_EQ_INT(9, e.v[0].epoch);
    CHECK_EQ_INT(7, e.v[0].start_offset);
    /* A new epoch starting where an older one also started replaces it. */
    CHECK_EQ_INT(SM_OK, log_epochs_assign(&e, 10, 7));
    CHECK_EQ_INT(1, (int)e.n);
    CHECK_EQ_INT(10, e.v[0].epoch);
    log_epochs_free(&e);
    /* A damaged file is refused (and the cache empty), never half-read. */
    REQUIRE(fio_write_file(path, "0\n2\n3 10\n2 20\n", 14, false) == SM_OK);
    CHECK_EQ_INT(SM_ERR_CORRUPT, log_epochs_load(&e, dir, 100));
    CHECK_EQ_INT(0, (int)e.n);
    log_epochs_free(&e);
}

/* One batch of one record at base offset base with leader epoch epoch. */
static size_t batch_at(uint8_t *buf, size_t cap, int64_t base, int32_t epoch) {
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t o = {0, 0, 0, 1000, -1, -1, -1};
    proto_batch_builder_init(&bb, buf, cap, &o);
    proto_batch_builder_add(&bb, 1000, (sm_bytes_t){(const uint8_t *)"k", 1},
                            (sm_bytes_t){(const uint8_t *)"v", 1}, NULL, 0);
    size_t len = 0;
    if (proto_batch_builder_finish(&bb, &len) != SM_OK) return 0;
    proto_batch_set_base_offset(buf, base);
    proto_batch_set_leader_epoch(buf, epoch);
    proto_batch_update_crc(buf, len);
    return len;
}

static void test_follower_append_keeps_offsets(void) {
    char ldir[4200];
    snprintf(ldir, sizeof(ldir), "%s/t-0", dir);
    log_config_t cfg;
    log_config_default(&cfg);
    log_t *l;
    REQUIRE(log_open(ldir, &cfg, false, 0, -1, &l) == SM_OK);
    uint8_t buf[512];
    int64_t first, last;
    size_t n = batch_at(buf, sizeof(buf), 0, 3);
    CHECK_EQ_INT(SM_OK, log_append_as_follower(l, buf, n, &first, &last));
    CHECK_EQ_INT(0, first);
    /* A compacted leader's log may skip offsets: the gap is kept. */
    n = batch_at(buf, sizeof(buf), 5, 4);
    CHECK_EQ_INT(SM_OK, log_append_as_follower(l, buf, n, &first, &last));
    CHECK_EQ_INT(5, first);
    CHECK_EQ_INT(6, log_end_offset(l));
    /* Below the end: refused, nothing written. */
    n = batch_at(buf, sizeof(buf), 2, 4);
    CHECK_EQ_INT(SM_ERR_RANGE, log_append_as_follower(l, buf, n, &first, &last));
    CHECK_EQ_INT(6, log_end_offset(l));
    /* The epoch the leader gave is what is stored. */
    uint8_t out[512];
    size_t got;
    int64_t base;
    REQUIRE(log_read_copy(l, 5, sizeof(out), true, out, sizeof(out), &got, &base) == SM_OK);
    proto_batch_header_t h;
    REQUIRE(proto_batch_parse_header(out, got, &h) == SM_OK);
    CHECK_EQ_INT(5, h.base_offset);
    CHECK_EQ_INT(4, h.partition_leader_epoch);
    CHECK_EQ_INT(SM_OK, log_close(l));
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    RUN(test_end_offsets_as_kafka_answers);
    RUN(test_checkpoint_file_round_trip_and_truncation);
    RUN(test_follower_append_keeps_offsets);
    fio_remove_tree(dir);
    return t_summary("leader_epochs");
}
