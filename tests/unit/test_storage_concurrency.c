/*
 * Storage under concurrency: appenders with group-committed flush requests,
 * readers checking every batch they get (CRC, offsets, content), retention
 * and rolls on a maintenance thread, timestamp lookups, and in a second phase
 * truncations racing with all of it. Runs until a number of appends is done,
 * never for a fixed time.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "base/clock.h"
#include "base/log.h"
#include "storage_util.h"
#include "test.h"

#define MAX_OFFSETS (1 << 20)
#define APPENDS_PER_PHASE 5000

typedef struct shared {
    log_t *l;
    log_flusher_t *f;
    _Atomic uint32_t tags[MAX_OFFSETS]; /* tag + 1 of the batch at each base offset */
    atomic_int appends, limit;
    atomic_int flushed_cbs, requested;
    atomic_bool truncating; /* phase 2: offsets are reused, contents not checked */
    atomic_bool stop;
    atomic_int errors;
    atomic_long reads, batches_checked;
} shared_t;

static void fail(shared_t *sh, const char *what, long long a, long long b) {
    if (atomic_fetch_add(&sh->errors, 1) < 10) fprintf(stderr, "%s: %lld %lld\n", what, a, b);
}

static void on_flushed(void *arg, int status) {
    shared_t *sh = arg;
    if (status != SM_OK && status != SM_ERR_RANGE) fail(sh, "flush callback failed", status, 0);
    atomic_fetch_add(&sh->flushed_cbs, 1);
}

typedef struct worker {
    shared_t *sh;
    int id;
} worker_t;

static void *appender(void *arg) {
    worker_t *w = arg;
    shared_t *sh = w->sh;
    uint64_t s = 1000 + (uint64_t)w->id;
    uint8_t buf[8192];
    while (!atomic_load(&sh->stop)) {
        int n = atomic_fetch_add(&sh->appends, 1);
        if (n >= atomic_load(&sh->limit)) break;
        uint32_t tag = (uint32_t)w->id << 24 | (uint32_t)n;
        size_t len = su_batch(buf, sizeof(buf), 1 + (int)(su_rand(&s) % 5), sm_time_ms(), NULL, tag,
                              20 + su_rand(&s) % 500);
        int64_t first, last;
        int rc = log_append(sh->l, buf, len, 0, &first, &last);
        if (rc) {
            fail(sh, "append", rc, n);
            break;
        }
        if (last < MAX_OFFSETS) atomic_store(&sh->tags[first], tag + 1);
        if (n % 4 == 0) {
            atomic_fetch_add(&sh->requested, 1);
            rc = log_flush_request(sh->f, sh->l, last + 1, on_flushed, sh);
            if (rc != SM_ERR_AGAIN) atomic_fetch_add(&sh->flushed_cbs, 1);
            if (rc != SM_OK && rc != SM_ERR_AGAIN) fail(sh, "flush request", rc, n);
        } else if (n % 97 == 0 && (rc = log_sync_to(sh->l, last + 1))) {
            fail(sh, "sync", rc, n);
        }
    }
    return NULL;
}

static void *reader(void *arg) {
    worker_t *w = arg;
    shared_t *sh = w->sh;
    uint64_t s = 2000 + (uint64_t)w->id;
    static _Thread_local uint8_t buf[1 << 17];
    while (!atomic_load(&sh->stop)) {
        int64_t start = log_start_offset(sh->l), end = log_end_offset(sh->l);
        if (end <= start) continue;
        int64_t off = start + (int64_t)(su_rand(&s) % (uint64_t)(end - start));
        size_t maxb = 1 + su_rand(&s) % sizeof(buf);
        log_range_t r;
        int rc = log_read(sh->l, off, maxb, true, &r);
        atomic_fetch_add(&sh->reads, 1);
        if (rc == SM_ERR_RANGE) continue; /* retention or truncation moved the bounds */
        if (rc) {
            fail(sh, "read", rc, off);
            continue;
        }
        if (r.len == 0) {
            log_range_release(&r);
            continue;
        }
        size_t want = r.len < sizeof(buf) ? r.len : sizeof(buf);
        int64_t got = log_range_copy(&r, buf, want);
        int64_t first = r.first_offset;
        log_range_release(&r);
        if (got != (int64_t)want) {
            /* A truncation may shorten the file under a range (Kafka fails
             * such a send too); nothing else may. */
            if (!atomic_load(&sh->truncating)) fail(sh, "short copy", got, (long long)want);
            continue;
        }
        proto_batch_iter_t it;
        const uint8_t *b;
        size_t blen;
        proto_batch_header_t h;
        proto_batch_iter_init(&it, buf, (size_t)got);
        int64_t expect = first;
        bool firstb = true;
        while (proto_batch_iter_next(&it, &b, &blen, &h) == 1) {
            if (h.base_offset != expect || (firstb && proto_batch_last_offset(&h) < off) ||
                proto_batch_validate(b, blen, &h) != SM_OK) {
                if (!atomic_load(&sh->truncating))
                    fail(sh, "bad batch at/for", (long long)h.base_offset, off);
                break;
            }
            uint32_t t = h.base_offset < MAX_OFFSETS ? atomic_load(&sh->tags[h.base_offset]) : 0;
            if (!atomic_load(&sh->truncating) && t && su_tag(b, blen) + 1 != t)
                fail(sh, "wrong content at", (long long)h.base_offset, (long long)t);
            expect = proto_batch_last_offset(&h) + 1;
            firstb = false;
            atomic_fetch_add(&sh->batches_checked, 1);
        }
    }
    return NULL;
}

static void *maintainer(void *arg) {
    shared_t *sh = arg;
    uint64_t s = 3000;
    while (!atomic_load(&sh->stop)) {
        int64_t now = sm_time_ms();
        log_run_retention(sh->l, now);
        log_run_flush_policy(sh->l, now);
        if (su_rand(&s) % 8 == 0 && log_roll(sh->l)) fail(sh, "roll", 0, 0);
        int64_t off, ts;
        int rc = log_offset_for_timestamp(sh->l, now - (int64_t)(su_rand(&s) % 200), &off, &ts);
        if (rc) fail(sh, "timestamp lookup", rc, 0);
        if ((rc = log_max_timestamp(sh->l, &off, &ts))) fail(sh, "max timestamp", rc, 0);
        if (atomic_load(&sh->truncating) && su_rand(&s) % 4 == 0) {
            int64_t end = log_end_offset(sh->l);
            if ((rc = log_truncate_to(sh->l, end - (int64_t)(su_rand(&s) % 40))))
                fail(sh, "truncate", rc, end);
        }
    }
    return NULL;
}

static void test_concurrent(void) {
    char dir[512];
    su_path(dir, sizeof(dir), "conc-0");
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 8000;
    cfg.index_interval_bytes = 500;
    cfg.retention_bytes = 40000;
    cfg.file_delete_delay_ms = 0;
    log_set_open_segment_limit(4);
    shared_t *sh = calloc(1, sizeof(*sh));
    REQUIRE(sh);
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &sh->l) == SM_OK);
    REQUIRE(log_flusher_start(2, &sh->f) == SM_OK);
    log_attach_flusher(sh->l, sh->f);
    pthread_t ta[3], tr[3], tm;
    worker_t wa[3], wr[3];
    for (int phase = 0; phase < 2; phase++) {
        atomic_store(&sh->stop, false);
        atomic_store(&sh->truncating, phase == 1);
        atomic_store(&sh->appends, phase * APPENDS_PER_PHASE);
        atomic_store(&sh->limit, (phase + 1) * APPENDS_PER_PHASE);
        for (int i = 0; i < 3; i++) {
            wa[i] = (worker_t){sh, i + 1};
            wr[i] = (worker_t){sh, i + 1};
            REQUIRE(pthread_create(&ta[i], NULL, appender, &wa[i]) == 0);
            REQUIRE(pthread_create(&tr[i], NULL, reader, &wr[i]) == 0);
        }
        REQUIRE(pthread_create(&tm, NULL, maintainer, sh) == 0);
        /* A phase ends when its appends are done. */
        for (int i = 0; i < 3; i++)
            pthread_join(ta[i], NULL);
        atomic_store(&sh->stop, true);
        for (int i = 0; i < 3; i++)
            pthread_join(tr[i], NULL);
        pthread_join(tm, NULL);
    }
    log_flusher_stop(sh->f);
    log_attach_flusher(sh->l, NULL);
    CHECK_EQ_INT(0, atomic_load(&sh->errors));
    CHECK_EQ_INT(atomic_load(&sh->requested), atomic_load(&sh->flushed_cbs));
    CHECK(atomic_load(&sh->batches_checked) > 1000);
    fprintf(stderr, "concurrency: %ld reads, %ld batches checked, %d segments at the end\n",
            atomic_load(&sh->reads), atomic_load(&sh->batches_checked), log_segment_count(sh->l));
    /* Everything left reads back after a clean restart. */
    int64_t end = log_end_offset(sh->l), start = log_start_offset(sh->l);
    CHECK_EQ_INT(SM_OK, log_close(sh->l));
    log_t *l;
    REQUIRE(log_open(dir, &cfg, true, end, start, &l) == SM_OK);
    CHECK_EQ_INT(end, log_end_offset(l));
    uint8_t buf[8192];
    for (int64_t o = log_start_offset(l); o < end;) {
        proto_batch_header_t h;
        int rc = su_read_batch(l, o, buf, sizeof(buf), &h);
        CHECK_EQ_INT(SM_OK, rc);
        if (rc) break;
        o = proto_batch_last_offset(&h) + 1;
    }
    log_close(l);
    free(sh);
    log_set_open_segment_limit(2048);
}

int main(void) {
    su_make_root("storage-conc");
    sm_log_set_level(SM_LOG_ERROR);
    RUN(test_concurrent);
    fio_remove_tree(su_root);
    return t_summary("storage_concurrency");
}
