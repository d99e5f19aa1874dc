/*
 * Storage engine tests: a model-based random test (append / read / roll /
 * truncate / delete-records / restart against an in-memory model), a kill -9
 * crash test with fsync-before-ack, corrupt-tail recovery (every cut point of
 * the last batch, bit flips, missing indexes), retention, timestamp lookups,
 * the log manager's checkpoints and injected write failures.
 */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "protocol/records.h"
#include "storage/log.h"
#include "storage/log_manager.h"
#include "test.h"

static char tmproot[256];

static void make_tmproot(void) {
    snprintf(tmproot, sizeof(tmproot), "/tmp/samsa-storage-XXXXXX");
    if (!mkdtemp(tmproot)) abort();
}

static void path_in(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmproot, name);
}

/* Builds a batch of n records whose values encode (tag, i); returns its size. */
static size_t make_batch(uint8_t *buf, size_t cap, int n, int64_t ts, uint32_t tag, size_t vlen) {
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, ts, -1, -1, -1};
    proto_batch_builder_init(&b, buf, cap, &o);
    uint8_t val[2048];
    for (int i = 0; i < n; i++) {
        memset(val, (int)(tag + (uint32_t)i), vlen);
        memcpy(val, &tag, 4);
        val[4] = (uint8_t)i;
        proto_batch_builder_add(&b, ts + i, SM_BYTES_NULL, (sm_bytes_t){val, (int32_t)vlen}, NULL, 0);
    }
    size_t len = 0;
    if (proto_batch_builder_finish(&b, &len)) abort();
    return len;
}

/* Reads the batch starting exactly at offset into buf (copy path). */
static int read_batch_at(log_t *l, int64_t offset, uint8_t *buf, size_t cap, proto_batch_header_t *h) {
    log_range_t r;
    int rc = log_read(l, offset, 1, true, &r);
    if (rc) return rc;
    if (r.len == 0) {
        log_range_release(&r);
        return SM_ERR_NOTFOUND;
    }
    int64_t n = log_range_copy(&r, buf, cap);
    log_range_release(&r);
    if (n < PROTO_BATCH_HEADER_SIZE) return SM_ERR_IO;
    rc = proto_batch_parse_header(buf, (size_t)n, h);
    if (rc) return rc;
    return proto_batch_validate(buf, proto_batch_total_size(h), h);
}

/* ---------------------------------------------------------------- model test */

typedef struct model_batch {
    int64_t base;
    int count;
    uint32_t tag;
    int64_t ts;
} model_batch_t;

static void test_model(void) {
    char dir[512];
    path_in(dir, sizeof(dir), "model-0");
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 3000; /* many segments */
    cfg.index_interval_bytes = 500;
    log_t *l;
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    static model_batch_t model[4000];
    int nmodel = 0;
    int64_t start = 0;
    /* Fixed seed for CI; SAMSA_SEED explores others. */
    uint64_t seed = getenv("SAMSA_SEED") ? strtoull(getenv("SAMSA_SEED"), NULL, 10) : 20261125;
    fprintf(stderr, "model seed %llu\n", (unsigned long long)seed);
    uint64_t s = seed;
    uint8_t buf[65536];
    for (int step = 0; step < 3000; step++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int op = (int)((s >> 33) % 100);
        if (op < 60 && nmodel < 4000) {
            int n = 1 + (int)((s >> 20) % 5);
            uint32_t tag = (uint32_t)step;
            int64_t ts = 1000000 + step * 10;
            size_t len = make_batch(buf, sizeof(buf), n, ts, tag, 20 + (s >> 40) % 200);
            int64_t first, last;
            REQUIRE(log_append(l, buf, len, 3, &first, &last) == SM_OK);
            int64_t expect = nmodel ? model[nmodel - 1].base + model[nmodel - 1].count : start;
            CHECK_EQ_INT(expect, first);
            CHECK_EQ_INT(first + n - 1, last);
            model[nmodel++] = (model_batch_t){first, n, tag, ts};
        } else if (op < 80 && nmodel) {
            /* read a random offset: the batch containing it comes back */
            int k = (int)((s >> 24) % (uint64_t)nmodel);
            if (model[k].base + model[k].count <= start) continue;
            int64_t off = model[k].base + (int64_t)((s >> 12) % (uint64_t)model[k].count);
            if (off < start) off = start;
            proto_batch_header_t h;
            int rc = read_batch_at(l, off, buf, sizeof(buf), &h);
            CHECK_EQ_INT(SM_OK, rc);
            if (rc == SM_OK) {
                CHECK_EQ_INT(model[k].base, h.base_offset);
                CHECK_EQ_INT(model[k].count, h.records_count);
                CHECK_EQ_INT(3, h.partition_leader_epoch);
                proto_record_iter_t it;
                proto_record_t rec;
                proto_record_iter_init(&it, buf + PROTO_BATCH_HEADER_SIZE,
                                       proto_batch_total_size(&h) - PROTO_BATCH_HEADER_SIZE,
                                       h.records_count);
                CHECK_EQ_INT(1, proto_record_iter_next(&it, &rec));
                uint32_t tag;
                memcpy(&tag, rec.value.ptr, 4);
                CHECK_EQ_INT(model[k].tag, tag);
            }
        } else if (op < 87 && nmodel) {
            /* truncate to a random batch boundary at or after start */
            int k = (int)((s >> 24) % (uint64_t)nmodel);
            if (model[k].base < start) continue;
            REQUIRE(log_truncate_to(l, model[k].base) == SM_OK);
            nmodel = k;
            CHECK_EQ_INT(model[k].base, log_end_offset(l));
        } else if (op < 92 && nmodel) {
            int k = (int)((s >> 24) % (uint64_t)nmodel);
            if (model[k].base <= start) continue;
            REQUIRE(log_delete_records_before(l, model[k].base) == SM_OK);
            start = model[k].base;
            CHECK_EQ_INT(start, log_start_offset(l));
        } else {
            /* restart: clean or after a simulated crash */
            bool clean = (s >> 50) & 1;
            int64_t ls = log_start_offset(l), flushed;
            if (clean) {
                REQUIRE(log_flush(l) == SM_OK);
                flushed = log_flushed_offset(l);
                REQUIRE(log_close(l) == SM_OK);
            } else {
                flushed = 0;
                log_abandon(l);
            }
            REQUIRE(log_open(dir, &cfg, clean, flushed, ls, &l) == SM_OK);
            int64_t expect = nmodel ? model[nmodel - 1].base + model[nmodel - 1].count : start;
            CHECK_EQ_INT(expect, log_end_offset(l));
            CHECK_EQ_INT(start, log_start_offset(l));
        }
        int64_t expect_end = nmodel ? model[nmodel - 1].base + model[nmodel - 1].count : start;
        if (expect_end < start) expect_end = start;
        CHECK_EQ_INT(expect_end, log_end_offset(l));
    }
    /* Every live batch reads back in order. */
    for (int k = 0; k < nmodel; k++) {
        if (model[k].base < start) continue;
        proto_batch_header_t h;
        CHECK_EQ_INT(SM_OK, read_batch_at(l, model[k].base, buf, sizeof(buf), &h));
        CHECK_EQ_INT(model[k].base, h.base_offset);
    }
    /* Reads outside the log are refused. */
    log_range_t r;
    CHECK_EQ_INT(SM_ERR_RANGE, log_read(l, log_end_offset(l) + 1, 100, true, &r));
    if (start > 0) CHECK_EQ_INT(SM_ERR_RANGE, log_read(l, start - 1, 100, true, &r));
    CHECK(log_segment_count(l) > 3);
    log_close(l);
}

/* ---------------------------------------------------------------- crash test */

static void child_append(const char *dir, int wfd) {
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 20000;
    cfg.fsync_before_ack = true;
    log_t *l;
    if (log_open(dir, &cfg, false, 0, -1, &l)) _exit(3);
    uint8_t buf[8192];
    for (uint32_t i = 0;; i++) {
        int64_t first, last;
        uint32_t tag = (uint32_t)log_end_offset(l);
        size_t len = make_batch(buf, sizeof(buf), 3, 5000, tag, 300);
        if (log_append(l, buf, len, 0, &first, &last) || log_flush(l)) _exit(4);
        if (write(wfd, &first, sizeof(first)) != sizeof(first)) _exit(5);
    }
}

static void test_crash_kill9(void) {
    char dir[512];
    path_in(dir, sizeof(dir), "crash-0");
    static int64_t acked[100000];
    int nacked = 0;
    uint64_t s = 99;
    for (int round = 0; round < 50; round++) {
        int p[2];
        REQUIRE(pipe(p) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child_append(dir, p[1]);
        }
        close(p[1]);
        s = s * 6364136223846793005ull + 1;
        int want = 1 + (int)((s >> 33) % 40);
        for (int k = 0; k < want; k++) {
            int64_t off;
            if (read(p[0], &off, sizeof(off)) != sizeof(off)) break;
            acked[nacked++] = off;
        }
        kill(pid, SIGKILL);
        /* acks already in the pipe were acknowledged too */
        int64_t off;
        while (read(p[0], &off, sizeof(off)) == sizeof(off)) acked[nacked++] = off;
        close(p[0]);
        int status;
        waitpid(pid, &status, 0);
        /* Reopen as after a crash and check every acknowledged batch. */
        log_config_t cfg;
        log_config_default(&cfg);
        cfg.segment_bytes = 20000;
        log_t *l;
        REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
        uint8_t buf[8192];
        for (int k = 0; k < nacked; k++) {
            proto_batch_header_t h;
            int rc = read_batch_at(l, acked[k], buf, sizeof(buf), &h);
            if (rc != SM_OK || h.base_offset != acked[k]) {
                t_failures++;
                fprintf(stderr, "round %d: acknowledged batch at %lld lost (rc %d)\n", round,
                        (long long)acked[k], rc);
                break;
            }
        }
        /* Nothing torn is served: every batch up to the end validates. */
        int64_t o = log_start_offset(l), end = log_end_offset(l);
        while (o < end) {
            proto_batch_header_t h;
            if (read_batch_at(l, o, buf, sizeof(buf), &h) != SM_OK) {
                t_failures++;
                fprintf(stderr, "round %d: batch at %lld does not validate\n", round, (long long)o);
                break;
            }
            o = proto_batch_last_offset(&h) + 1;
        }
        t_checks++;
        log_close(l);
    }
    fprintf(stderr, "crash test: %d acknowledged batches over 50 kills\n", nacked);
    CHECK(nacked >= 50);
}

/* ---------------------------------------------------------------- corruption */

static void write_three_batches(const char *dir, size_t *sizes) {
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.index_interval_bytes = 1;
    log_t *l;
    if (log_open(dir, &cfg, false, 0, -1, &l)) abort();
    uint8_t buf[4096];
    for (int i = 0; i < 3; i++) {
        int64_t f, la;
        sizes[i] = make_batch(buf, sizeof(buf), 2, 7000 + i, (uint32_t)i, 100);
        if (log_append(l, buf, sizes[i], 0, &f, &la)) abort();
    }
    log_close(l);
}

static void test_corrupt_tail_every_cut(void) {
    char dir[512], seg[600];
    size_t sizes[3];
    path_in(dir, sizeof(dir), "cut-0");
    write_three_batches(dir, sizes);
    snprintf(seg, sizeof(seg), "%s/%020d.log", dir, 0);
    size_t full = sizes[0] + sizes[1] + sizes[2];
    uint8_t *orig;
    size_t olen;
    REQUIRE(fio_read_file(seg, &orig, &olen, 1 << 20) == SM_OK);
    REQUIRE(olen == full);
    log_config_t cfg;
    log_config_default(&cfg);
    for (size_t cut = sizes[0] + sizes[1]; cut < full; cut++) {
        REQUIRE(fio_write_file(seg, orig, cut, false) == SM_OK);
        log_t *l;
        REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
        CHECK_EQ_INT(4, log_end_offset(l)); /* two intact batches of 2 records */
        uint8_t buf[4096];
        proto_batch_header_t h;
        CHECK_EQ_INT(SM_OK, read_batch_at(l, 2, buf, sizeof(buf), &h));
        log_close(l);
        struct stat st;
        stat(seg, &st);
        CHECK_EQ_INT(sizes[0] + sizes[1], st.st_size);
    }
    /* Bit flips in the last batch: recovery keeps the first two. */
    for (size_t pos = sizes[0] + sizes[1] + PROTO_BATCH_OFF_MAGIC; pos < full; pos += 7) {
        memcpy(orig + 0, orig, 0);
        orig[pos] ^= 0x10;
        REQUIRE(fio_write_file(seg, orig, full, false) == SM_OK);
        log_t *l;
        REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
        CHECK_EQ_INT(4, log_end_offset(l));
        log_close(l);
        orig[pos] ^= 0x10;
    }
    /* A deleted index file is rebuilt. */
    REQUIRE(fio_write_file(seg, orig, full, false) == SM_OK);
    char idx[600];
    snprintf(idx, sizeof(idx), "%s/%020d.index", dir, 0);
    unlink(idx);
    log_t *l;
    REQUIRE(log_open(dir, &cfg, true, 6, -1, &l) == SM_OK);
    CHECK_EQ_INT(6, log_end_offset(l));
    uint8_t buf[4096];
    proto_batch_header_t h;
    CHECK_EQ_INT(SM_OK, read_batch_at(l, 5, buf, sizeof(buf), &h));
    CHECK_EQ_INT(4, h.base_offset);
    log_close(l);
    CHECK(access(idx, F_OK) == 0);
    free(orig);
}

/* ---------------------------------------------------------------- retention */

static void test_retention_and_delete_records(void) {
    char dir[512];
    path_in(dir, sizeof(dir), "ret-0");
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 1000;
    cfg.file_delete_delay_ms = 0;
    cfg.retention_ms = -1;
    cfg.retention_bytes = 3000;
    log_t *l;
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    uint8_t buf[4096];
    int64_t now = 1700000000000;
    for (int i = 0; i < 40; i++) {
        int64_t f, la;
        size_t len = make_batch(buf, sizeof(buf), 1, now - 100000 + i, (uint32_t)i, 300);
        REQUIRE(log_append(l, buf, len, 0, &f, &la) == SM_OK);
    }
    int before = log_segment_count(l);
    CHECK(before >= 10);
    int removed = log_run_maintenance(l, now);
    CHECK(removed > 0);
    CHECK(log_size_bytes(l) <= 3000 + 1000);
    CHECK(log_size_bytes(l) >= 3000 - 1000);
    int64_t start = log_start_offset(l);
    CHECK(start > 0);
    log_range_t r;
    CHECK_EQ_INT(SM_ERR_RANGE, log_read(l, start - 1, 100, true, &r));
    /* Time retention: everything is older than 50 s. */
    cfg.retention_bytes = -1;
    cfg.retention_ms = 50000;
    log_set_config(l, &cfg);
    log_run_maintenance(l, now);
    CHECK_EQ_INT(40, log_start_offset(l));
    CHECK_EQ_INT(40, log_end_offset(l));
    /* Appends continue after everything was removed. */
    int64_t f, la;
    size_t len = make_batch(buf, sizeof(buf), 1, now, 99, 10);
    CHECK_EQ_INT(SM_OK, log_append(l, buf, len, 0, &f, &la));
    CHECK_EQ_INT(40, f);
    /* delete-records */
    for (int i = 0; i < 5; i++) log_append(l, buf, make_batch(buf, sizeof(buf), 2, now, 1, 10), 0, &f, &la);
    CHECK_EQ_INT(SM_OK, log_delete_records_before(l, 45));
    CHECK_EQ_INT(45, log_start_offset(l));
    CHECK_EQ_INT(SM_ERR_RANGE, log_delete_records_before(l, 1000));
    proto_batch_header_t h;
    CHECK_EQ_INT(SM_OK, read_batch_at(l, 45, buf, sizeof(buf), &h));
    CHECK_EQ_INT(45, h.base_offset);
    log_close(l);
    /* No .deleted files remain after the delay. */
    DIR *d = opendir(dir);
    struct dirent *e;
    int deleted = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".deleted")) deleted++;
    closedir(d);
    CHECK_EQ_INT(0, deleted);
}

static void test_timestamp_lookup(void) {
    char dir[512];
    path_in(dir, sizeof(dir), "ts-0");
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 800;
    cfg.index_interval_bytes = 100;
    log_t *l;
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    uint8_t buf[4096];
    /* batch k holds records with timestamps 1000*k + 0..3 */
    for (int k = 0; k < 20; k++) {
        int64_t f, la;
        size_t len = make_batch(buf, sizeof(buf), 4, 1000 * k, (uint32_t)k, 50);
        REQUIRE(log_append(l, buf, len, 0, &f, &la) == SM_OK);
    }
    int64_t off, ts;
    CHECK_EQ_INT(SM_OK, log_offset_for_timestamp(l, 5002, &off, &ts));
    CHECK_EQ_INT(22, off);
    CHECK_EQ_INT(5002, ts);
    log_offset_for_timestamp(l, 5004, &off, &ts);
    CHECK_EQ_INT(24, off);
    CHECK_EQ_INT(6000, ts);
    log_offset_for_timestamp(l, 0, &off, &ts);
    CHECK_EQ_INT(0, off);
    log_offset_for_timestamp(l, 100000, &off, &ts);
    CHECK_EQ_INT(-1, off);
    log_max_timestamp(l, &off, &ts);
    CHECK_EQ_INT(19003, ts);
    CHECK_EQ_INT(79, off);
    log_close(l);
}

/* ---------------------------------------------------------------- manager */

static void test_manager_checkpoints_and_delete(void) {
    char d1[512], d2[512];
    path_in(d1, sizeof(d1), "mgr-a");
    path_in(d2, sizeof(d2), "mgr-b");
    const char *dirs[] = {d1, d2};
    log_manager_opts_t o = {.dirs = dirs, .ndirs = 2, .recovery_threads = 2};
    log_config_default(&o.defaults);
    log_manager_t *m;
    REQUIRE(log_manager_open(&o, &m) == SM_OK);
    uint8_t buf[4096];
    for (int p = 0; p < 6; p++) {
        log_t *l;
        REQUIRE(log_manager_get_or_create(m, "orders", p, NULL, &l) == SM_OK);
        for (int i = 0; i <= p; i++) {
            int64_t f, la;
            log_append(l, buf, make_batch(buf, sizeof(buf), 1, 1, 1, 10), 0, &f, &la);
        }
    }
    REQUIRE(log_manager_close(m) == SM_OK);
    char marker[600];
    snprintf(marker, sizeof(marker), "%s/.kafka_cleanshutdown", d1);
    CHECK(access(marker, F_OK) == 0);
    REQUIRE(log_manager_open(&o, &m) == SM_OK);
    CHECK(access(marker, F_OK) != 0); /* removed while running */
    for (int p = 0; p < 6; p++) {
        log_t *l = log_manager_get(m, "orders", p);
        REQUIRE(l);
        CHECK_EQ_INT(p + 1, log_end_offset(l));
    }
    CHECK_EQ_INT(SM_OK, log_manager_delete(m, "orders", 3));
    CHECK(log_manager_get(m, "orders", 3) == NULL);
    log_manager_run_maintenance(m);
    REQUIRE(log_manager_close(m) == SM_OK);
    /* the folder is gone from both dirs */
    char p3a[600], p3b[600];
    snprintf(p3a, sizeof(p3a), "%s/orders-3", d1);
    snprintf(p3b, sizeof(p3b), "%s/orders-3", d2);
    CHECK(access(p3a, F_OK) != 0 && access(p3b, F_OK) != 0);
    char topic[64];
    int32_t part;
    CHECK(log_manager_parse_dir_name("my-topic-12", topic, sizeof(topic), &part));
    CHECK(strcmp(topic, "my-topic") == 0 && part == 12);
    CHECK(!log_manager_parse_dir_name("nodash", topic, sizeof(topic), &part));
    CHECK(!log_manager_parse_dir_name("t-1x", topic, sizeof(topic), &part));
}

static void test_write_failure_goes_offline(void) {
    char dir[512];
    path_in(dir, sizeof(dir), "fault-0");
    log_config_t cfg;
    log_config_default(&cfg);
    log_t *l;
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    uint8_t buf[4096];
    int64_t f, la;
    size_t len = make_batch(buf, sizeof(buf), 2, 1, 1, 10);
    CHECK_EQ_INT(SM_OK, log_append(l, buf, len, 0, &f, &la));
    fio_fault_set(0, 28 /* ENOSPC */);
    CHECK_EQ_INT(SM_ERR_IO, log_append(l, buf, len, 0, &f, &la));
    fio_fault_set(0, 0);
    /* sticky until reopened */
    CHECK_EQ_INT(SM_ERR_IO, log_append(l, buf, len, 0, &f, &la));
    CHECK(log_offline(l));
    log_range_t r;
    CHECK_EQ_INT(SM_ERR_IO, log_read(l, 0, 100, true, &r));
    log_abandon(l);
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    CHECK_EQ_INT(2, log_end_offset(l));
    CHECK_EQ_INT(SM_OK, log_append(l, buf, len, 0, &f, &la));
    log_close(l);
}

int main(void) {
    make_tmproot();
    sm_log_set_level(SM_LOG_ERROR);
    RUN(test_model);
    RUN(test_corrupt_tail_every_cut);
    RUN(test_retention_and_delete_records);
    RUN(test_timestamp_lookup);
    RUN(test_manager_checkpoints_and_delete);
    RUN(test_write_failure_goes_offline);
    RUN(test_crash_kill9);
    fio_remove_tree(tmproot);
    return t_summary("storage");
}
