/* Idempotent producer state: sequence rules, duplicates, epochs, snapshots. */
#include <unistd.h>

#include "base/err.h"
#include "txn/producer_state.h"
#include "test.h"

static void test_sequences(void) {
    txn_producer_state_t s;
    txn_producer_state_init(&s);
    int64_t dup = -1;
    /* unknown producer may start anywhere */
    CHECK_EQ_INT(TXN_APPEND, txn_producer_state_check(&s, 1, 0, 5, 9, &dup));
    CHECK_EQ_INT(SM_OK, txn_producer_state_update(&s, 1, 0, 5, 9, 100, 104, 1));
    /* next in order */
    CHECK_EQ_INT(TXN_APPEND, txn_producer_state_check(&s, 1, 0, 10, 12, &dup));
    CHECK_EQ_INT(SM_OK, txn_producer_state_update(&s, 1, 0, 10, 12, 105, 107, 2));
    /* retry of an earlier batch: duplicate with its original offset */
    CHECK_EQ_INT(TXN_DUPLICATE, txn_producer_state_check(&s, 1, 0, 5, 9, &dup));
    CHECK_EQ_INT(100, dup);
    /* gap */
    CHECK_EQ_INT(TXN_OUT_OF_ORDER, txn_producer_state_check(&s, 1, 0, 14, 15, &dup));
    /* old epoch fenced, new epoch must start at 0 */
    CHECK_EQ_INT(TXN_FENCED_EPOCH, txn_producer_state_check(&s, 1, -1, 13, 13, &dup));
    CHECK_EQ_INT(TXN_OUT_OF_ORDER, txn_producer_state_check(&s, 1, 1, 13, 13, &dup));
    CHECK_EQ_INT(TXN_APPEND, txn_producer_state_check(&s, 1, 1, 0, 3, &dup));
    /* only the last five batches are remembered */
    for (int i = 0; i < 6; i++) {
        int32_t first = 13 + i * 2;
        CHECK_EQ_INT(TXN_APPEND, txn_producer_state_check(&s, 1, 0, first, first + 1, &dup));
        txn_producer_state_update(&s, 1, 0, first, first + 1, 200 + i * 2, 201 + i * 2, 3);
    }
    CHECK_EQ_INT(TXN_OUT_OF_ORDER, txn_producer_state_check(&s, 1, 0, 13, 14, &dup));
    CHECK_EQ_INT(TXN_DUPLICATE, txn_producer_state_check(&s, 1, 0, 15, 16, &dup));
    CHECK_EQ_INT(202, dup);
    /* wrap-around of sequences */
    txn_producer_state_update(&s, 2, 0, INT32_MAX - 1, INT32_MAX, 300, 301, 4);
    CHECK_EQ_INT(TXN_APPEND, txn_producer_state_check(&s, 2, 0, 0, 4, &dup));
    txn_producer_state_free(&s);
}

static void test_snapshot_roundtrip(void) {
    txn_producer_state_t s, r;
    txn_producer_state_init(&s);
    txn_producer_state_init(&r);
    for (int64_t pid = 0; pid < 50; pid++)
        txn_producer_state_update(&s, pid, (int16_t)(pid % 3), 0, (int32_t)pid, 1000 * pid,
                                  1000 * pid + pid, 77 + pid);
    char path[] = "/tmp/samsa-test-snapshot-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    CHECK_EQ_INT(SM_OK, txn_producer_state_write_snapshot(&s, path, true));
    CHECK_EQ_INT(SM_OK, txn_producer_state_read_snapshot(&r, path));
    for (int64_t pid = 0; pid < 50; pid++) {
        const txn_producer_t *p = txn_producer_state_get(&r, pid);
        REQUIRE(p);
        CHECK_EQ_INT(pid % 3, p->epoch);
        int64_t dup = -1;
        /* the last batch survives the snapshot: its retry is a duplicate */
        CHECK_EQ_INT(TXN_DUPLICATE, txn_producer_state_check(&r, pid, (int16_t)(pid % 3), 0,
                                                             (int32_t)pid, &dup));
        CHECK_EQ_INT(1000 * pid, dup);
        CHECK_EQ_INT(TXN_APPEND, txn_producer_state_check(&r, pid, (int16_t)(pid % 3),
                                                          (int32_t)pid + 1, (int32_t)pid + 1, &dup));
    }
    /* a flipped byte fails the CRC */
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    fseek(f, 20, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 20, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    CHECK_EQ_INT(SM_ERR_CORRUPT, txn_producer_state_read_snapshot(&r, path));
    unlink(path);
    txn_producer_state_free(&s);
    txn_producer_state_free(&r);
}

static void test_truncate(void) {
    txn_producer_state_t s;
    txn_producer_state_init(&s);
    txn_producer_state_update(&s, 1, 0, 0, 4, 0, 4, 1);
    txn_producer_state_update(&s, 1, 0, 5, 9, 5, 9, 1);
    txn_producer_state_update(&s, 2, 0, 0, 0, 10, 10, 1);
    txn_producer_state_truncate(&s, 6);
    int64_t dup;
    CHECK(txn_producer_state_get(&s, 2) == NULL);
    CHECK_EQ_INT(TXN_APPEND, txn_producer_state_check(&s, 1, 0, 5, 9, &dup));
    txn_producer_state_free(&s);
}

int main(void) {
    RUN(test_sequences);
    RUN(test_snapshot_roundtrip);
    RUN(test_truncate);
    return t_summary("producer_state");
}
