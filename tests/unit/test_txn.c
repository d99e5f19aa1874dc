/*
 * The partition side of transactions: open transactions in the producer
 * state (begin, end by marker, fencing by epoch, the first open offset that
 * bounds the LSO, snapshots, truncation), the aborted-transaction index
 * (range queries, drops, the .txnindex files and their reload with a torn
 * tail), and marker batches (build and parse).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fileio.h"
#include "protocol/records.h"
#include "test.h"
#include "txn/aborted_index.h"
#include "txn/producer_state.h"

static void test_open_transactions_bound_the_lso(void) {
    txn_producer_state_t s;
    txn_producer_state_init(&s);
    CHECK_EQ_INT(-1, txn_producer_state_first_open_txn(&s));
    txn_producer_state_update(&s, 7, 0, 0, 4, 10, 14, 1);
    CHECK_EQ_INT(SM_OK, txn_producer_state_begin_txn(&s, 7, 0, 10));
    txn_producer_state_update(&s, 8, 0, 0, 1, 15, 16, 1);
    CHECK_EQ_INT(SM_OK, txn_producer_state_begin_txn(&s, 8, 0, 15));
    /* a second batch of an open transaction does not move its start */
    txn_producer_state_update(&s, 7, 0, 5, 5, 17, 17, 1);
    CHECK_EQ_INT(SM_OK, txn_producer_state_begin_txn(&s, 7, 0, 17));
    CHECK_EQ_INT(10, txn_producer_state_first_open_txn(&s));
    int64_t first = -2;
    CHECK_EQ_INT(SM_OK, txn_producer_state_end_txn(&s, 7, 0, 0, 18, 2, &first));
    CHECK_EQ_INT(10, first);
    CHECK_EQ_INT(15, txn_producer_state_first_open_txn(&s));
    /* a marker for a producer with nothing open closes nothing */
    CHECK_EQ_INT(SM_OK, txn_producer_state_end_txn(&s, 7, 0, 0, 19, 2, &first));
    CHECK_EQ_INT(-1, first);
    CHECK_EQ_INT(SM_OK, txn_producer_state_end_txn(&s, 8, 0, 0, 20, 2, &first));
    CHECK_EQ_INT(15, first);
    CHECK_EQ_INT(-1, txn_producer_state_first_open_txn(&s));
    txn_producer_state_free(&s);
}

static void test_markers_fence_older_epochs(void) {
    txn_producer_state_t s;
    txn_producer_state_init(&s);
    txn_producer_state_update(&s, 3, 1, 0, 0, 0, 0, 1);
    txn_producer_state_begin_txn(&s, 3, 1, 0);
    int64_t first;
    /* the coordinator fences: an ABORT of epoch 2 ends epoch 1's transaction */
    CHECK_EQ_INT(SM_OK, txn_producer_state_end_txn(&s, 3, 2, 0, 1, 2, &first));
    CHECK_EQ_INT(0, first);
    int64_t dup;
    /* the zombie's writes are refused; the new epoch starts at sequence 0 */
    CHECK_EQ_INT(TXN_FENCED_EPOCH, txn_producer_state_check(&s, 3, 1, 1, 1, &dup));
    CHECK_EQ_INT(TXN_APPEND, txn_producer_state_check(&s, 3, 2, 0, 0, &dup));
    /* an older epoch's marker, or an older coordinator's, changes nothing */
    CHECK_EQ_INT(SM_ERR_FENCED, txn_producer_state_end_txn(&s, 3, 1, 0, 2, 2, &first));
    CHECK_EQ_INT(SM_OK, txn_producer_state_end_txn(&s, 3, 2, 5, 3, 2, &first));
    CHECK_EQ_INT(SM_ERR_STALE, txn_producer_state_end_txn(&s, 3, 2, 4, 4, 2, &first));
    /* the fence survives a snapshot although the producer has no batches */
    char path[] = "/tmp/samsa-test-txn-snap-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    txn_producer_state_update(&s, 9, 0, 0, 0, 5, 5, 1);
    txn_producer_state_begin_txn(&s, 9, 0, 5);
    CHECK_EQ_INT(SM_OK, txn_producer_state_write_snapshot(&s, path, false));
    txn_producer_state_t r;
    txn_producer_state_init(&r);
    CHECK_EQ_INT(SM_OK, txn_producer_state_read_snapshot(&r, path));
    CHECK_EQ_INT(TXN_FENCED_EPOCH, txn_producer_state_check(&r, 3, 1, 1, 1, &dup));
    CHECK_EQ_INT(5, txn_producer_state_first_open_txn(&r));
    /* truncation below a transaction's start forgets it */
    txn_producer_state_truncate(&r, 5);
    CHECK_EQ_INT(-1, txn_producer_state_first_open_txn(&r));
    unlink(path);
    txn_producer_state_free(&r);
    txn_producer_state_free(&s);
}

static int collected[16][2];
static int ncollected;
static void collect(void *arg, const txn_aborted_t *e) {
    (void)arg;
    if (ncollected < 16) {
        collected[ncollected][0] = (int)e->producer_id;
        collected[ncollected][1] = (int)e->first_offset;
    }
    ncollected++;
}

static void test_aborted_index(void) {
    char dir[] = "/tmp/samsa-test-txnidx-XXXXXX";
    REQUIRE(mkdtemp(dir));
    txn_aborted_index_t x;
    txn_aborted_index_init(&x);
    /* three aborted transactions: [0,9] in segment 0, [5,20] and [30,31] in segment 20 */
    txn_aborted_t a = {1, 0, 9, 5}, b = {2, 5, 20, 21}, c = {3, 30, 31, 32};
    CHECK_EQ_INT(SM_OK, txn_aborted_index_add(&x, &a, dir, 0));
    CHECK_EQ_INT(SM_OK, txn_aborted_index_add(&x, &b, dir, 20));
    CHECK_EQ_INT(SM_OK, txn_aborted_index_add(&x, &c, dir, 20));
    /* out of order: refused */
    CHECK_EQ_INT(SM_ERR_RANGE, txn_aborted_index_add(&x, &a, dir, 0));
    ncollected = 0;
    txn_aborted_index_collect(&x, 10, 30, collect, NULL);
    CHECK_EQ_INT(1, ncollected); /* only b: a ended before 10, c begins at 30 */
    CHECK_EQ_INT(2, collected[0][0]);
    ncollected = 0;
    txn_aborted_index_collect(&x, 0, 100, collect, NULL);
    CHECK_EQ_INT(3, ncollected);
    /* reload: entries at or past 25 are left to the log replay, and are gone from disk */
    txn_aborted_index_t y;
    txn_aborted_index_init(&y);
    CHECK_EQ_INT(SM_OK, txn_aborted_index_load(&y, dir, 25));
    CHECK_EQ_INT(2, (int)y.n);
    CHECK_EQ_INT(9, y.v[0].last_offset);
    CHECK_EQ_INT(20, y.v[1].last_offset);
    char path[512];
    snprintf(path, sizeof(path), "%s/%020d.txnindex", dir, 20);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == TXN_ABORTED_ENTRY_SIZE);
    /* a torn tail (half an entry) keeps the whole ones */
    int fd = open(path, O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    CHECK_EQ_INT(SM_OK, fio_write_all(fd, "garbage", 7));
    close(fd);
    txn_aborted_index_t z;
    txn_aborted_index_init(&z);
    CHECK_EQ_INT(SM_OK, txn_aborted_index_load(&z, dir, 1000));
    CHECK_EQ_INT(2, (int)z.n);
    /* the log start passing a marker drops its entry */
    txn_aborted_index_drop_before(&z, 10);
    CHECK_EQ_INT(1, (int)z.n);
    CHECK_EQ_INT(2, z.v[0].producer_id);
    txn_aborted_index_free(&x);
    txn_aborted_index_free(&y);
    txn_aborted_index_free(&z);
    fio_remove_tree(dir);
}

static void test_marker_batches(void) {
    uint8_t buf[128];
    size_t len = proto_control_batch_build(buf, sizeof(buf), 42, 3, 7, PROTO_CONTROL_COMMIT, 1000);
    REQUIRE(len > 0);
    proto_batch_header_t h;
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
    CHECK_EQ_INT(PROTO_ATTR_TRANSACTIONAL | PROTO_ATTR_CONTROL, h.attributes);
    CHECK_EQ_INT(42, h.producer_id);
    CHECK_EQ_INT(3, h.producer_epoch);
    int32_t ce = -5;
    CHECK_EQ_INT(PROTO_CONTROL_COMMIT, proto_control_batch_type(buf, len, &ce));
    CHECK_EQ_INT(7, ce);
    len = proto_control_batch_build(buf, sizeof(buf), 42, 3, 7, PROTO_CONTROL_ABORT, 1000);
    CHECK_EQ_INT(PROTO_CONTROL_ABORT, proto_control_batch_type(buf, len, &ce));
    /* a data batch is no marker; a short buffer is refused */
    CHECK(proto_control_batch_type(buf, 20, &ce) < 0);
    CHECK_EQ_INT(0, (int)proto_control_batch_build(buf, 40, 42, 3, 7, PROTO_CONTROL_ABORT, 1000));
}

int main(void) {
    RUN(test_open_transactions_bound_the_lso);
    RUN(test_markers_fence_older_epochs);
    RUN(test_aborted_index);
    RUN(test_marker_batches);
    return t_summary("txn");
}
