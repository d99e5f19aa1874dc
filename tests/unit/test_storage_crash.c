/*
 * Storage crash and corruption tests: a child appends with fsync before
 * acknowledgement (four producers sharing fsyncs through the flusher) and is
 * killed with SIGKILL at random moments; every acknowledged batch must come
 * back intact and nothing torn may be served. Then damaged files: a segment
 * cut at every byte of its last batch, bit flips, a corrupt middle segment,
 * lost or garbage index files, leftovers of interrupted operations.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "base/log.h"
#include "storage/log_manager.h"
#include "storage_util.h"
#include "test.h"

/* ---------------------------------------------------------------- kill -9 */

typedef struct ack {
    int64_t first, last;
    uint32_t tag;
    uint32_t pad;
} ack_t;

typedef struct producer {
    log_manager_t *m;
    log_t *l;
    int wfd;
    int id;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int status; /* 1 while waiting for the flush */
} producer_t;

static void on_durable(void *arg, int status) {
    producer_t *p = arg;
    pthread_mutex_lock(&p->mu);
    p->status = status == SM_OK ? 0 : -1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *producer_main(void *arg) {
    producer_t *p = arg;
    uint8_t buf[8192];
    for (uint32_t seq = 0;; seq++) {
        uint32_t tag = (uint32_t)p->id << 24 | (seq & 0xffffff);
        size_t len = su_batch(buf, sizeof(buf), 1 + (int)(seq % 4), 5000 + seq, NULL, tag,
                              50 + (seq * 37) % 700);
        ack_t a = {0, 0, tag, 0};
        if (log_append(p->l, buf, len, 1, &a.first, &a.last)) _exit(4);
        pthread_mutex_lock(&p->mu);
        p->status = 1;
        pthread_mutex_unlock(&p->mu);
        int rc = log_flush_request(log_manager_flusher(p->m), p->l, a.last + 1, on_durable, p);
        if (rc == SM_ERR_AGAIN) {
            pthread_mutex_lock(&p->mu);
            while (p->status == 1)
                pthread_cond_wait(&p->cv, &p->mu);
            rc = p->status;
            pthread_mutex_unlock(&p->mu);
        }
        if (rc) _exit(5);
        /* Acknowledged: durable. One write of 24 bytes to a pipe is atomic. */
        if (write(p->wfd, &a, sizeof(a)) != sizeof(a)) _exit(6);
    }
    return NULL;
}

static void child_main(const char *dir, int wfd) {
    const char *dirs[] = {dir};
    log_manager_opts_t o = {.dirs = dirs,
                            .ndirs = 1,
                            .recovery_threads = 1,
                            .checkpoint_interval_ms = 20,
                            .flush_threads = 1};
    log_config_default(&o.defaults);
    o.defaults.segment_bytes = 20000;
    o.defaults.index_interval_bytes = 1000;
    o.defaults.fsync_before_ack = true;
    log_manager_t *m;
    log_t *l;
    if (log_manager_open(&o, &m) || log_manager_get_or_create(m, "crash", 0, NULL, NULL, &l)) _exit(3);
    static producer_t ps[4];
    pthread_t tids[4];
    for (int i = 0; i < 4; i++) {
        ps[i] =
            (producer_t){m, l, wfd, i + 1, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
        if (pthread_create(&tids[i], NULL, producer_main, &ps[i])) _exit(7);
    }
    pthread_join(tids[0], NULL);
    _exit(8);
}

static void spin_us(int64_t us) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

/* Every batch from the log start to the end validates and offsets follow each
 * other; returns the number of batches. */
static int check_whole_log(log_t *l, int round) {
    uint8_t buf[8192];
    int64_t o = log_start_offset(l), end = log_end_offset(l), expect = -1;
    int n = 0;
    while (o < end) {
        proto_batch_header_t h;
        int rc = su_read_batch(l, o, buf, sizeof(buf), &h);
        if (rc != SM_OK || (expect >= 0 && h.base_offset != expect)) {
            t_failures++;
            fprintf(stderr, "round %d: batch at %lld: rc %d base %lld\n", round, (long long)o, rc,
                    (long long)h.base_offset);
            return n;
        }
        expect = o = proto_batch_last_offset(&h) + 1;
        n++;
    }
    t_checks++;
    return n;
}

static void test_crash_kill9(void) {
    char dir[512];
    su_path(dir, sizeof(dir), "crash");
    const char *dirs[] = {dir};
    static ack_t acked[200000];
    int nacked = 0, rounds = 60, kills = 0;
    uint64_t seed = su_seed(99), s = seed;
    fprintf(stderr, "crash seed %llu (SAMSA_SEED)\n", (unsigned long long)seed);
    for (int round = 0; round < rounds && t_failures == 0; round++) {
        int p[2];
        REQUIRE(pipe(p) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child_main(dir, p[1]);
        }
        close(p[1]);
        int want = 1 + (int)(su_rand(&s) % 50);
        for (int k = 0; k < want; k++) {
            ack_t a;
            if (read(p[0], &a, sizeof(a)) != sizeof(a)) break;
            acked[nacked++] = a;
        }
        /* A random moment: appends, flushes and rolls are in flight. */
        spin_us((int64_t)(su_rand(&s) % 3000));
        kill(pid, SIGKILL);
        ack_t a;
        while (read(p[0], &a, sizeof(a)) == sizeof(a) && nacked < 200000)
            acked[nacked++] = a;
        close(p[0]);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status)) {
            t_failures++;
            fprintf(stderr, "round %d: the child exited with %d before the kill\n", round,
                    WEXITSTATUS(status));
            break;
        }
        kills++;
        /* Reopen as after a crash (no clean-shutdown marker). */
        log_manager_opts_t o = {.dirs = dirs, .ndirs = 1, .recovery_threads = 1};
        log_config_default(&o.defaults);
        o.defaults.segment_bytes = 20000;
        log_manager_t *m;
        REQUIRE(log_manager_open(&o, &m) == SM_OK);
        log_t *l = log_manager_get(m, "crash", 0);
        REQUIRE(l);
        uint8_t buf[8192];
        for (int k = 0; k < nacked; k++) {
            proto_batch_header_t h;
            int rc = su_read_batch(l, acked[k].first, buf, sizeof(buf), &h);
            if (rc != SM_OK || h.base_offset != acked[k].first ||
                proto_batch_last_offset(&h) != acked[k].last ||
                su_tag(buf, proto_batch_total_size(&h)) != acked[k].tag) {
                t_failures++;
                fprintf(stderr, "round %d: acknowledged batch %lld..%lld (tag %x) lost (rc %d)\n",
                        round, (long long)acked[k].first, (long long)acked[k].last, acked[k].tag,
                        rc);
                break;
            }
        }
        t_checks++;
        check_whole_log(l, round);
        REQUIRE(log_manager_close(m) == SM_OK);
        /* Every third child starts unclean from the checkpoints instead. */
        if (round % 3 == 0) {
            char marker[600];
            snprintf(marker, sizeof(marker), "%s/.kafka_cleanshutdown", dir);
            unlink(marker);
        }
    }
    fprintf(stderr, "crash test: %d acknowledged batches over %d kills\n", nacked, kills);
    CHECK_EQ_INT(rounds, kills);
    CHECK(nacked >= rounds);
}

/* ---------------------------------------------------------------- damage */

static void write_batches(const char *dir, int n, size_t *sizes, const log_config_t *cfg) {
    log_t *l;
    if (log_open(dir, cfg, false, 0, -1, &l)) abort();
    uint8_t buf[4096];
    for (int i = 0; i < n; i++) {
        int64_t f, la;
        sizes[i] = su_batch(buf, sizeof(buf), 2, 7000 + 10 * i, NULL, (uint32_t)i, 100);
        if (log_append(l, buf, sizes[i], 0, &f, &la)) abort();
    }
    if (log_close(l)) abort();
}

/* Opens unclean (recovery point 0) and checks the end offset and that every
 * batch reads back. */
static void expect_after_recovery(const char *dir, const log_config_t *cfg, int64_t end) {
    log_t *l;
    REQUIRE(log_open(dir, cfg, false, 0, -1, &l) == SM_OK);
    CHECK_EQ_INT(end, log_end_offset(l));
    check_whole_log(l, -1);
    log_close(l);
}

static void test_corrupt_tail_every_cut(void) {
    char dir[512], seg[600];
    size_t sizes[3];
    su_path(dir, sizeof(dir), "cut-0");
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.index_interval_bytes = 1;
    write_batches(dir, 3, sizes, &cfg);
    su_seg_path(seg, sizeof(seg), dir, 0, ".log");
    size_t full = sizes[0] + sizes[1] + sizes[2];
    uint8_t *orig;
    size_t olen;
    REQUIRE(fio_read_file(seg, &orig, &olen, 1 << 20) == SM_OK);
    REQUIRE(olen == full);
    for (size_t cut = sizes[0] + sizes[1]; cut < full; cut++) {
        REQUIRE(fio_write_file(seg, orig, cut, false) == SM_OK);
        log_t *l;
        REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
        CHECK_EQ_INT(4, log_end_offset(l)); /* two intact batches of 2 records */
        uint8_t buf[4096];
        proto_batch_header_t h;
        CHECK_EQ_INT(SM_OK, su_read_batch(l, 3, buf, sizeof(buf), &h));
        log_range_t r;
        CHECK_EQ_INT(SM_ERR_RANGE, log_read(l, 5, 100, true, &r));
        log_close(l);
        CHECK_EQ_INT((int64_t)(sizes[0] + sizes[1]), su_file_size(seg));
    }
    /* Appends continue where the intact data ends. */
    log_t *l;
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    uint8_t buf[4096];
    int64_t f, la;
    CHECK_EQ_INT(SM_OK,
                 log_append(l, buf, su_batch(buf, sizeof(buf), 1, 1, NULL, 9, 10), 0, &f, &la));
    CHECK_EQ_INT(4, f);
    log_close(l);
    free(orig);
}

static void test_corrupt_bit_flips(void) {
    char dir[512], seg[600];
    size_t sizes[3];
    su_path(dir, sizeof(dir), "flip-0");
    log_config_t cfg;
    log_config_default(&cfg);
    write_batches(dir, 3, sizes, &cfg);
    su_seg_path(seg, sizeof(seg), dir, 0, ".log");
    size_t full = sizes[0] + sizes[1] + sizes[2], last = sizes[0] + sizes[1];
    uint8_t *orig;
    size_t olen;
    REQUIRE(fio_read_file(seg, &orig, &olen, 1 << 20) == SM_OK);
    /* Every byte of the last batch from its length field on, except the
     * partition leader epoch (outside the CRC, as in Kafka). */
    for (size_t pos = last + PROTO_BATCH_OFF_LENGTH; pos < full; pos++) {
        if (pos >= last + PROTO_BATCH_OFF_LEADER_EPOCH && pos < last + PROTO_BATCH_OFF_MAGIC)
            continue;
        orig[pos] ^= (uint8_t)(1u << (pos % 8));
        REQUIRE(fio_write_file(seg, orig, full, false) == SM_OK);
        orig[pos] ^= (uint8_t)(1u << (pos % 8));
        log_t *l;
        REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
        if (log_end_offset(l) != 4) {
            t_failures++;
            fprintf(stderr, "flip at byte %zu of the last batch: log end %lld\n", pos - last,
                    (long long)log_end_offset(l));
        }
        t_checks++;
        log_close(l);
    }
    free(orig);
}

/* Damage in a middle segment: it is cut there and every later segment goes. */
static void test_corrupt_middle_segment(void) {
    char dir[512], p[600];
    su_path(dir, sizeof(dir), "mid-0");
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 700; /* two batches per segment */
    size_t sizes[8];
    write_batches(dir, 8, sizes, &cfg); /* segments at 0, 4, 8, 12 */
    su_seg_path(p, sizeof(p), dir, 4, ".log");
    int fd = open(p, O_RDWR);
    REQUIRE(fd >= 0);
    uint8_t b;
    int64_t at = (int64_t)sizes[2] + 40; /* inside the second batch of segment 4 */
    REQUIRE(pread(fd, &b, 1, at) == 1);
    b ^= 0x5a;
    REQUIRE(pwrite(fd, &b, 1, at) == 1);
    close(fd);
    expect_after_recovery(dir, &cfg, 6);
    CHECK_EQ_INT(2, su_count_files(dir, ".log"));
    su_seg_path(p, sizeof(p), dir, 8, ".log");
    CHECK(access(p, F_OK) != 0);
}

static void test_corrupt_indexes(void) {
    char dir[512], p[600];
    su_path(dir, sizeof(dir), "idx-0");
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 1500; /* five batches per segment */
    cfg.index_interval_bytes = 1;
    size_t sizes[20];
    write_batches(dir, 20, sizes, &cfg); /* segments at 0, 10, 20, 30 */
    uint8_t buf[4096];
    proto_batch_header_t h;
    log_t *l;
    /* (1) an inactive segment's .index is lost: rebuilt when first used. */
    su_seg_path(p, sizeof(p), dir, 10, ".index");
    int64_t idx_size = su_file_size(p);
    CHECK(idx_size == 5 * 8);
    unlink(p);
    REQUIRE(log_open(dir, &cfg, true, 40, 0, &l) == SM_OK);
    CHECK_EQ_INT(SM_OK, su_read_batch(l, 17, buf, sizeof(buf), &h));
    CHECK_EQ_INT(16, h.base_offset);
    CHECK_EQ_INT(idx_size, su_file_size(p));
    log_close(l);
    /* (2) garbage that looks plausible: entries point into the middle of
     * batches. The read notices and the index is rebuilt. */
    uint8_t junk[40];
    for (int i = 0; i < 5; i++) {
        int32_t rel = i * 2 + 1, pos = 1 + i * 13;
        uint8_t *e = junk + i * 8;
        e[0] = (uint8_t)(rel >> 24), e[1] = (uint8_t)(rel >> 16), e[2] = (uint8_t)(rel >> 8);
        e[3] = (uint8_t)rel;
        e[4] = (uint8_t)(pos >> 24), e[5] = (uint8_t)(pos >> 16), e[6] = (uint8_t)(pos >> 8);
        e[7] = (uint8_t)pos;
    }
    REQUIRE(fio_write_file(p, junk, sizeof(junk), false) == SM_OK);
    REQUIRE(log_open(dir, &cfg, true, 40, 0, &l) == SM_OK);
    for (int64_t o = 10; o < 20; o++) {
        CHECK_EQ_INT(SM_OK, su_read_batch(l, o, buf, sizeof(buf), &h));
        CHECK_EQ_INT(o & ~1, h.base_offset);
    }
    log_close(l);
    /* (3) a time index of impossible size, and the active segment's index
     * lost: both rebuilt, timestamp lookups still right. */
    su_seg_path(p, sizeof(p), dir, 20, ".timeindex");
    REQUIRE(fio_write_file(p, junk, 7, false) == SM_OK);
    su_seg_path(p, sizeof(p), dir, 30, ".index");
    unlink(p);
    REQUIRE(log_open(dir, &cfg, true, 40, 0, &l) == SM_OK);
    int64_t off, ts;
    CHECK_EQ_INT(SM_OK, log_offset_for_timestamp(l, 7000 + 10 * 12 + 1, &off, &ts));
    CHECK_EQ_INT(25, off);
    CHECK_EQ_INT(SM_OK, su_read_batch(l, 39, buf, sizeof(buf), &h));
    CHECK_EQ_INT(38, h.base_offset);
    log_close(l);
    expect_after_recovery(dir, &cfg, 40);
}

/* Leftovers of interrupted operations are cleaned up at open. */
static void test_leftovers(void) {
    char dir[512], p[600];
    su_path(dir, sizeof(dir), "left-0");
    log_config_t cfg;
    log_config_default(&cfg);
    size_t sizes[2];
    write_batches(dir, 2, sizes, &cfg);
    /* An empty segment in the middle (crash during a roll), index files of a
     * segment whose .log is gone, files renamed for deletion, a swap file. */
    su_seg_path(p, sizeof(p), dir, 4, ".log");
    REQUIRE(fio_write_file(p, "", 0, false) == SM_OK);
    log_t *l;
    uint8_t buf[4096];
    int64_t f, la;
    /* make offset 4 be a real later segment after the empty one */
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    CHECK_EQ_INT(4, log_end_offset(l));
    log_close(l);
    su_seg_path(p, sizeof(p), dir, 2, ".log");
    REQUIRE(fio_write_file(p, "", 0, false) == SM_OK); /* empty, before the last */
    su_seg_path(p, sizeof(p), dir, 77, ".index");
    REQUIRE(fio_write_file(p, "12345678", 8, false) == SM_OK);
    su_seg_path(p, sizeof(p), dir, 1, ".log.deleted");
    REQUIRE(fio_write_file(p, "x", 1, false) == SM_OK);
    su_seg_path(p, sizeof(p), dir, 1, ".log.swap");
    REQUIRE(fio_write_file(p, "x", 1, false) == SM_OK);
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    CHECK_EQ_INT(0, su_count_files(dir, ".deleted"));
    CHECK_EQ_INT(0, su_count_files(dir, ".swap"));
    CHECK_EQ_INT(0, su_count_files(dir, "00077."));
    CHECK_EQ_INT(0, su_count_files(dir, "00002."));
    CHECK_EQ_INT(SM_OK,
                 log_append(l, buf, su_batch(buf, sizeof(buf), 1, 1, NULL, 9, 10), 0, &f, &la));
    CHECK_EQ_INT(4, f);
    log_close(l);
    expect_after_recovery(dir, &cfg, 5);
}

int main(void) {
    su_make_root("storage-crash");
    sm_log_set_level(getenv("SAMSA_LOG") ? SM_LOG_DEBUG : SM_LOG_ERROR + 1); /* warnings expected */
    RUN(test_corrupt_tail_every_cut);
    RUN(test_corrupt_bit_flips);
    RUN(test_corrupt_middle_segment);
    RUN(test_corrupt_indexes);
    RUN(test_leftovers);
    RUN(test_crash_kill9);
    fio_remove_tree(su_root);
    return t_summary("storage_crash");
}
