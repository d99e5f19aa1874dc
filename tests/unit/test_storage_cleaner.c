/*
 * Log compaction (storage/cleaner*.c): a model-based random test (keyed
 * records, tombstones, headers, compressed and idempotent batches across many
 * segments, cleanings with small key maps, restarts; every read from every
 * offset checked against the uncompacted model), a crash test (the cleaning
 * stopped by _exit at every step of the swap, and kill -9 at random moments),
 * and the cleaner threads of a log manager with the cleaner-offset-checkpoint.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "protocol/compress.h"
#include "storage/cleaner.h"
#include "storage/log_manager.h"
#include "storage_util.h"
#include "txn/aborted_index.h"
#include "test.h"

/* ---------------------------------------------------------------- model */

typedef struct mrec {
    int32_t key; /* -1: no key */
    bool tombstone;
    uint32_t id; /* value and header carry it */
    int64_t ts;
    int64_t appended_at; /* simulated clock at the append */
} mrec_t;

typedef struct model {
    mrec_t *recs; /* by offset */
    int64_t n, cap;
    int64_t pid_last_base[4]; /* base offset of each producer's last batch, -1 none */
    int32_t pid_last_delta[4];
    int32_t pid_seq[4];
} model_t;

static void model_push(model_t *m, mrec_t r) {
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 1024;
        m->recs = realloc(m->recs, sizeof(*m->recs) * (size_t)m->cap);
        if (!m->recs) abort();
    }
    m->recs[m->n++] = r;
}

static void key_bytes(int32_t key, char *buf, size_t cap) { snprintf(buf, cap, "key-%d", key); }

/* Builds one batch of records (key -1 = keyless); compressed with codec; as
 * producer pid (-1 none). */
static size_t build_batch(uint8_t *out, size_t cap, const mrec_t *r, int n, int codec, int64_t pid,
                          int32_t seq) {
    uint8_t plain[65536];
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {
        0, 0, 0, r[0].ts, pid, (int16_t)(pid >= 0 ? 0 : -1), pid >= 0 ? seq : -1};
    proto_batch_builder_init(&b, plain, sizeof(plain), &o);
    for (int i = 0; i < n; i++) {
        char k[32];
        key_bytes(r[i].key, k, sizeof(k));
        uint8_t val[64];
        memset(val, (int)(r[i].id & 0xff), sizeof(val));
        memcpy(val, &r[i].id, 4);
        size_t vlen = 8 + r[i].id % 40;
        proto_record_header_t h = {SM_STR_LIT("id"), {(const uint8_t *)&r[i].id, 4}};
        proto_batch_builder_add(
            &b, r[i].ts,
            r[i].key >= 0 ? (sm_bytes_t){(const uint8_t *)k, (int32_t)strlen(k)} : SM_BYTES_NULL,
            r[i].tombstone ? SM_BYTES_NULL : (sm_bytes_t){val, (int32_t)vlen}, &h, 1);
    }
    size_t plen = 0;
    if (proto_batch_builder_finish(&b, &plen)) abort();
    if (codec == PROTO_COMPRESSION_NONE) {
        memcpy(out, plain, plen);
        return plen;
    }
    return su_compress_batch(out, cap, plain, plen, codec);
}

/* One record as read back. */
typedef struct rrec {
    int64_t offset;
    int32_t key;
    bool tombstone;
    uint32_t id;
    int64_t ts;
} rrec_t;

typedef struct rbatch {
    int64_t base, last, pid;
    int32_t seq, count;
} rbatch_t;

typedef struct scan {
    rrec_t *recs;
    int64_t n, cap;
    rbatch_t *batches;
    int64_t nb, capb;
    int bad; /* inconsistencies found while decoding */
} scan_t;

static void scan_free(scan_t *s) {
    free(s->recs);
    free(s->batches);
    memset(s, 0, sizeof(*s));
}

/* Decodes the batches in buf[0..len) (whole ones) into s; returns bytes used. */
static size_t decode_batches(const uint8_t *buf, size_t len, scan_t *s) {
    proto_batch_iter_t it;
    proto_batch_iter_init(&it, buf, len);
    const uint8_t *b;
    size_t blen, used = 0;
    proto_batch_header_t h;
    while (proto_batch_iter_next(&it, &b, &blen, &h) == 1) {
        used = (size_t)(b - buf) + blen;
        if (proto_batch_compute_crc(b, blen) != h.crc) s->bad++;
        if (s->nb == s->capb) {
            s->capb = s->capb ? s->capb * 2 : 256;
            s->batches = realloc(s->batches, sizeof(*s->batches) * (size_t)s->capb);
        }
        s->batches[s->nb++] = (rbatch_t){h.base_offset, proto_batch_last_offset(&h), h.producer_id,
                                         h.base_sequence, h.records_count};
        const uint8_t *data = b + PROTO_BATCH_HEADER_SIZE;
        size_t dlen = blen - PROTO_BATCH_HEADER_SIZE;
        uint8_t *owned = NULL;
        if (proto_batch_compression(&h) && h.records_count > 0) {
            if (proto_decompress_alloc(proto_batch_compression(&h), data, dlen, 1 << 24, &owned,
                                       &dlen)) {
                s->bad++;
                continue;
            }
            data = owned;
        }
        proto_record_iter_t ri;
        proto_record_t rec;
        proto_record_iter_init(&ri, data, dlen, h.records_count);
        int got = 0;
        while (proto_record_iter_next(&ri, &rec) == 1) {
            got++;
            rrec_t r = {h.base_offset + rec.offset_delta, -1, rec.value.len < 0, 0,
                        h.base_timestamp + rec.timestamp_delta};
            if (h.attributes & PROTO_ATTR_LOG_APPEND_TIME) r.ts = h.max_timestamp;
            if (rec.key.len > 4) {
                char kb[32];
                size_t kl = (size_t)rec.key.len < sizeof(kb) - 1 ? (size_t)rec.key.len : 31;
                memcpy(kb, rec.key.ptr, kl);
                kb[kl] = 0;
                r.key = atoi(kb + 4);
            }
            proto_header_iter_t hi;
            proto_record_header_t hd;
            proto_header_iter_init(&hi, &rec);
            if (proto_header_iter_next(&hi, &hd) == 1 && hd.value.len == 4)
                memcpy(&r.id, hd.value.ptr, 4);
            else
                s->bad++;
            if (!r.tombstone && (rec.value.len < 4 || memcmp(rec.value.ptr, &r.id, 4) != 0))
                s->bad++;
            if (r.offset > proto_batch_last_offset(&h)) s->bad++;
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 1024;
                s->recs = realloc(s->recs, sizeof(*s->recs) * (size_t)s->cap);
            }
            s->recs[s->n++] = r;
        }
        if (got != h.records_count) s->bad++;
        free(owned);
    }
    return used;
}

/* Reads from offset `from` to the end through log_read, max_bytes at a time. */
static int read_all(log_t *l, int64_t from, size_t max_bytes, scan_t *s) {
    static uint8_t buf[1 << 20];
    int64_t off = from, end = log_end_offset(l);
    int guard = 0;
    while (off < end && guard++ < 1000000) {
        size_t len;
        int64_t first;
        int rc = log_read_copy(l, off, max_bytes, true, buf, sizeof(buf), &len, &first);
        if (rc) return rc;
        if (len == 0) break;
        int64_t nb0 = s->nb;
        decode_batches(buf, len, s);
        if (s->nb == nb0) return SM_ERR_CORRUPT;
        off = s->batches[s->nb - 1].last + 1;
    }
    return SM_OK;
}

/* Checks the log against the model (see the file comment). */
static void verify(log_t *l, const model_t *m, int64_t now, int64_t delete_retention, uint64_t *rng,
                   bool every_offset) {
    scan_t full = {0};
    int rc = read_all(l, log_start_offset(l), 1 << 20, &full);
    CHECK_EQ_INT(SM_OK, rc);
    CHECK_EQ_INT(0, full.bad);
    /* Offsets strictly increase, batches do not overlap. */
    for (int64_t i = 1; i < full.n; i++)
        if (full.recs[i].offset <= full.recs[i - 1].offset) {
            CHECK(full.recs[i].offset > full.recs[i - 1].offset);
            break;
        }
    for (int64_t i = 1; i < full.nb; i++)
        if (full.batches[i].base <= full.batches[i - 1].last) {
            CHECK(full.batches[i].base > full.batches[i - 1].last);
            break;
        }
    /* Every record read is the uncompacted log's record at its offset. */
    int mism = 0;
    for (int64_t i = 0; i < full.n; i++) {
        const rrec_t *r = &full.recs[i];
        if (r->offset < 0 || r->offset >= m->n) {
            mism++;
            continue;
        }
        const mrec_t *w = &m->recs[r->offset];
        if (w->key != r->key || w->tombstone != r->tombstone || w->id != r->id || w->ts != r->ts)
            mism++;
    }
    CHECK_EQ_INT(0, mism);
    /* Each key's latest record is there (a tombstone may be gone only after
     * delete.retention.ms); keyless records may go. */
    bool *present = calloc((size_t)m->n + 1, 1);
    for (int64_t i = 0; i < full.n; i++)
        if (full.recs[i].offset >= 0 && full.recs[i].offset < m->n)
            present[full.recs[i].offset] = 1;
    int32_t maxkey = 0;
    for (int64_t i = 0; i < m->n; i++)
        if (m->recs[i].key > maxkey) maxkey = m->recs[i].key;
    int64_t *latest = malloc(sizeof(*latest) * (size_t)(maxkey + 1));
    for (int32_t k = 0; k <= maxkey; k++)
        latest[k] = -1;
    int64_t start = log_start_offset(l);
    for (int64_t i = start; i < m->n; i++)
        if (m->recs[i].key >= 0) latest[m->recs[i].key] = i;
    int missing = 0, early_tomb = 0;
    for (int32_t k = 0; k <= maxkey; k++) {
        int64_t o = latest[k];
        if (o < 0 || present[o]) continue;
        if (!m->recs[o].tombstone)
            missing++;
        else if (now - m->recs[o].appended_at < delete_retention)
            early_tomb++;
    }
    CHECK_EQ_INT(0, missing);
    CHECK_EQ_INT(0, early_tomb);
    /* Each producer's last batch stays (possibly empty), with its header. */
    for (int p = 0; p < 4; p++) {
        int64_t base = m->pid_last_base[p];
        if (base < start) continue;
        bool found = false;
        for (int64_t i = 0; i < full.nb; i++)
            if (full.batches[i].base == base) {
                found = full.batches[i].pid == p + 1 &&
                        full.batches[i].last == base + m->pid_last_delta[p];
                break;
            }
        CHECK(found);
    }
    /* A consumer starting at any offset gets exactly the records at or after
     * it (nothing skipped, nothing invented), whatever its fetch size. */
    int64_t end = log_end_offset(l);
    int64_t step = every_offset ? 1 : (end - start) / 50 + 1;
    int bad_reads = 0;
    int64_t idx = 0;
    for (int64_t o = start; o < end; o += step) {
        while (idx < full.n && full.recs[idx].offset < o)
            idx++;
        uint8_t buf[8192];
        size_t len;
        int64_t first;
        size_t maxb = 1 + su_rand(rng) % 3000;
        rc = log_read_copy(l, o, maxb, true, buf, sizeof(buf), &len, &first);
        if (rc == SM_ERR_SPACE) continue; /* a batch larger than this buffer */
        if (rc) {
            bad_reads++;
            continue;
        }
        scan_t one = {0};
        decode_batches(buf, len, &one);
        int64_t j = 0;
        while (j < one.n && one.recs[j].offset < o)
            j++;
        if (one.bad || one.nb == 0 || one.batches[one.nb - 1].last < o)
            bad_reads++;
        else if (j < one.n && (idx >= full.n || one.recs[j].offset != full.recs[idx].offset))
            bad_reads++;
        else if (j == one.n && idx < full.n &&
                 full.recs[idx].offset <= one.batches[one.nb - 1].last)
            bad_reads++;
        scan_free(&one);
    }
    CHECK_EQ_INT(0, bad_reads);
    free(latest);
    free(present);
    scan_free(&full);
}

static void model_append(log_t *l, model_t *m, uint64_t *rng, int32_t nkeys, int64_t now,
                         uint32_t *next_id) {
    mrec_t r[16];
    int n = 1 + (int)(su_rand(rng) % 8);
    for (int i = 0; i < n; i++) {
        uint64_t x = su_rand(rng) % 100;
        r[i].key = x < 2 ? -1 : (int32_t)(su_rand(rng) % (uint64_t)nkeys);
        r[i].tombstone = r[i].key >= 0 && x < 12;
        r[i].id = (*next_id)++;
        r[i].ts = now + i;
        r[i].appended_at = now;
    }
    static const int codecs[] = {PROTO_COMPRESSION_NONE, PROTO_COMPRESSION_NONE,
                                 PROTO_COMPRESSION_GZIP, PROTO_COMPRESSION_SNAPPY,
                                 PROTO_COMPRESSION_LZ4,  PROTO_COMPRESSION_ZSTD};
    int codec = codecs[su_rand(rng) % 6];
    int64_t pid = su_rand(rng) % 4 == 0 ? (int64_t)(1 + su_rand(rng) % 4) : -1;
    int32_t seq = pid > 0 ? m->pid_seq[pid - 1] : -1;
    uint8_t buf[65536];
    size_t len = build_batch(buf, sizeof(buf), r, n, codec, pid, seq);
    int64_t first, last;
    int rc = log_append(l, buf, len, 0, &first, &last);
    if (rc) {
        CHECK_EQ_INT(SM_OK, rc);
        return;
    }
    CHECK_EQ_INT(m->n, first);
    for (int i = 0; i < n; i++)
        model_push(m, r[i]);
    if (pid > 0) {
        m->pid_last_base[pid - 1] = first;
        m->pid_last_delta[pid - 1] = n - 1;
        m->pid_seq[pid - 1] += n;
    }
}

static log_config_t small_config(uint64_t *rng) {
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 2048 + (int64_t)(su_rand(rng) % 4096);
    cfg.index_interval_bytes = 256;
    cfg.compact = true;
    cfg.min_cleanable_ratio = 0.01 * (double)(su_rand(rng) % 60);
    cfg.delete_retention_ms = 400;
    cfg.retention_ms = -1;
    cfg.file_delete_delay_ms = 0;
    return cfg;
}

static int64_t model_ops_total, model_cleanings_total;

static void model_run(uint64_t seed, int ops) {
    uint64_t rng = seed;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/model-%llu", su_root, (unsigned long long)seed);
    log_config_t cfg = small_config(&rng);
    log_t *l;
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    model_t m = {0};
    for (int p = 0; p < 4; p++)
        m.pid_last_base[p] = -1;
    int32_t nkeys = 3 + (int32_t)(su_rand(&rng) % 120);
    uint32_t next_id = 1;
    int64_t now = 1000000;
    clean_map_t *map;
    REQUIRE(clean_map_new(1 << 20, 0.9, &map) == SM_OK);
    clean_map_t *tiny;
    REQUIRE(clean_map_new(24 * 64, 0.9, &tiny) == SM_OK); /* at most ~57 keys per cleaning */
    int cleanings = 0;
    for (int op = 0; op < ops && t_failures == 0; op++) {
        now += (int64_t)(su_rand(&rng) % 30);
        uint64_t x = su_rand(&rng) % 100;
        if (x < 75) {
            model_append(l, &m, &rng, nkeys, now, &next_id);
        } else if (x < 78) {
            CHECK_EQ_INT(SM_OK, log_roll(l));
        } else if (x < 93) {
            CHECK_EQ_INT(SM_OK, log_flush(l));
            log_clean_opts_t o = {.map = su_rand(&rng) % 3 ? map : tiny,
                                  .now_ms = now,
                                  .force = su_rand(&rng) % 2,
                                  .io_buffer_size = 64 + su_rand(&rng) % 3000};
            bool did;
            int rc = log_clean(l, &o, &did);
            CHECK(rc == SM_OK || rc == SM_ERR_SPACE);
            if (did) cleanings++;
            verify(l, &m, now, cfg.delete_retention_ms, &rng, su_rand(&rng) % 4 == 0);
        } else if (x < 96) {
            /* Clean restart. */
            CHECK_EQ_INT(SM_OK, log_flush(l));
            int64_t end = log_end_offset(l), start = log_start_offset(l);
            CHECK_EQ_INT(SM_OK, log_close(l));
            REQUIRE(log_open(dir, &cfg, true, end, start, &l) == SM_OK);
        } else if (x < 98) {
            /* Unclean restart: everything is scanned. */
            int64_t start = log_start_offset(l);
            log_abandon(l);
            REQUIRE(log_open(dir, &cfg, false, 0, start, &l) == SM_OK);
            CHECK_EQ_INT(m.n, log_end_offset(l));
        } else {
            /* A dynamic change of the ratio. */
            cfg.min_cleanable_ratio = 0.01 * (double)(su_rand(&rng) % 90);
            log_set_config(l, &cfg);
        }
    }
    /* Final: everything below the active segment cleaned twice, the second
     * time after the delete horizon: no tombstone and one record per key is
     * left there. */
    CHECK_EQ_INT(SM_OK, log_roll(l));
    CHECK_EQ_INT(SM_OK, log_flush(l));
    log_clean_opts_t o = {.map = map, .now_ms = now, .force = true, .io_buffer_size = 4096};
    bool did;
    CHECK_EQ_INT(SM_OK, log_clean(l, &o, &did));
    now += cfg.delete_retention_ms + 1;
    o.now_ms = now;
    CHECK_EQ_INT(SM_OK, log_clean(l, &o, &did));
    verify(l, &m, now, cfg.delete_retention_ms, &rng, true);
    scan_t full = {0};
    CHECK_EQ_INT(SM_OK, read_all(l, log_start_offset(l), 1 << 20, &full));
    int tombs = 0, dups = 0;
    int32_t *seen = calloc((size_t)nkeys, sizeof(int32_t));
    for (int64_t i = 0; i < full.n; i++) {
        if (full.recs[i].tombstone) tombs++;
        if (full.recs[i].key >= 0 && seen[full.recs[i].key]++) dups++;
        if (full.recs[i].key < 0) dups++;
    }
    CHECK_EQ_INT(0, tombs);
    CHECK_EQ_INT(0, dups);
    free(seen);
    scan_free(&full);
    /* Reopened unclean, the cleaned segments recover as they are. */
    int64_t start = log_start_offset(l);
    log_abandon(l);
    REQUIRE(log_open(dir, &cfg, false, 0, start, &l) == SM_OK);
    verify(l, &m, now, cfg.delete_retention_ms, &rng, false);
    CHECK_EQ_INT(SM_OK, log_close(l));
    model_ops_total += ops;
    model_cleanings_total += cleanings;
    clean_map_free(map);
    clean_map_free(tiny);
    free(m.recs);
    fio_remove_tree(dir);
}

static void test_model(void) {
    uint64_t base = su_seed(20261207);
    const char *e = getenv("SAMSA_CLEANER_SEEDS");
    int seeds = e ? atoi(e) : 8;
    for (int i = 0; i < seeds && t_failures == 0; i++) {
        uint64_t seed = base + (uint64_t)i;
        int before = t_failures;
        model_run(seed, 1500);
        if (t_failures != before)
            fprintf(stderr, "  failing seed: %llu\n", (unsigned long long)seed);
    }
    fprintf(stderr, "  model: %d seed(s) from %llu, %lld ops, %lld cleanings\n", seeds,
            (unsigned long long)base, (long long)model_ops_total, (long long)model_cleanings_total);
}

/* A key map that refuses what does not fit, and keeps the latest offset. */
static void test_map_bounds(void) {
    clean_map_t *m;
    REQUIRE(clean_map_new(24 * 16, 0.9, &m) == SM_OK);
    int stored = 0;
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        if (clean_map_put(m, (const uint8_t *)k, strlen(k), i) == SM_OK) stored++;
    }
    CHECK(stored > 0 && stored < 16);
    CHECK_EQ_INT(stored, (long long)clean_map_size(m));
    CHECK_EQ_INT(0, (long long)clean_map_room(m));
    CHECK_EQ_INT(SM_OK, clean_map_put(m, (const uint8_t *)"k0", 2, 500)); /* update fits */
    CHECK_EQ_INT(500, clean_map_get(m, (const uint8_t *)"k0", 2));
    CHECK_EQ_INT(-1, clean_map_get(m, (const uint8_t *)"k99", 3));
    clean_map_free(m);
}

/* ---------------------------------------------------------------- crashes */

static const char *crash_step;
static int crash_countdown;

static void crash_hook(const char *step) {
    if (--crash_countdown == 0) {
        crash_step = step;
        _exit(77);
    }
}

/* Deterministic content: batch b holds keys (b*7+i) % 50, values id = b*100+i,
 * every 9th record a tombstone. */
static void crash_append(log_t *l, int b, int codec) {
    mrec_t r[5];
    for (int i = 0; i < 5; i++)
        r[i] =
            (mrec_t){(b * 7 + i) % 50, (b * 5 + i) % 9 == 0, (uint32_t)(b * 100 + i), 1000 + b, 0};
    uint8_t buf[8192];
    size_t len = build_batch(buf, sizeof(buf), r, 5, codec, -1, 0);
    int64_t f, x;
    if (log_append(l, buf, len, 0, &f, &x)) _exit(3);
}

static void crash_fill(log_t *l, int nbatches) {
    for (int b = 0; b < nbatches; b++)
        crash_append(l, b, b % 3 ? 0 : PROTO_COMPRESSION_LZ4);
}

static log_config_t crash_config(int64_t segment_bytes) {
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = segment_bytes;
    cfg.index_interval_bytes = 256;
    cfg.compact = true;
    cfg.min_cleanable_ratio = 0;
    cfg.file_delete_delay_ms = 0;
    return cfg;
}

/* After a crash: every key's latest value (among what was appended) is read. */
static int crash_check(const char *dir, const log_config_t *cfg, int nbatches) {
    log_t *l;
    if (log_open(dir, cfg, false, 0, -1, &l)) return -1;
    scan_t s = {0};
    int bad = read_all(l, log_start_offset(l), 1 << 16, &s) ? 1 : 0;
    bad += s.bad;
    int64_t latest[50];
    bool tomb[50];
    for (int k = 0; k < 50; k++)
        latest[k] = -1;
    for (int b = 0; b < nbatches; b++)
        for (int i = 0; i < 5; i++) {
            latest[(b * 7 + i) % 50] = b * 5 + i;
            tomb[(b * 7 + i) % 50] = (b * 5 + i) % 9 == 0;
        }
    for (int k = 0; k < 50; k++) {
        if (latest[k] < 0 || tomb[k]) continue;
        bool found = false;
        for (int64_t i = 0; i < s.n; i++)
            if (s.recs[i].offset == latest[k])
                found = s.recs[i].key == k &&
                        s.recs[i].id == (uint32_t)((latest[k] / 5) * 100 + latest[k] % 5);
        if (!found) bad++;
    }
    for (int64_t i = 1; i < s.n; i++)
        if (s.recs[i].offset <= s.recs[i - 1].offset) bad++;
    if (log_end_offset(l) != (int64_t)nbatches * 5) bad++;
    scan_free(&s);
    log_close(l);
    return bad;
}

/* The cleaning stops (_exit) at every step: write, rename to .swap, each old
 * segment's rename, the swap's rename, the index write; each time the reopened
 * log has every key's latest value, and a second cleaning completes. */
static void test_crash_every_step(void) {
    log_config_t cfg = crash_config(3000);
    int rounds = 0, completed = 0;
    for (int step = 1; step < 200; step++) {
        char dir[300];
        snprintf(dir, sizeof(dir), "%s/crash-step-%d", su_root, step);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            log_t *l;
            if (log_open(dir, &cfg, false, 0, -1, &l)) _exit(2);
            crash_fill(l, 60);
            log_roll(l);
            log_flush(l);
            clean_map_t *map;
            clean_map_new(24 * 64, 0.9, &map);
            crash_countdown = step;
            log_cleaner_set_test_hook(crash_hook);
            log_clean_opts_t o = {
                .map = map, .now_ms = 5000, .force = true, .io_buffer_size = 4096};
            bool did;
            for (int i = 0; i < 3; i++)
                if (log_clean(l, &o, &did)) _exit(4);
            _exit(0); /* every step passed without a crash */
        }
        int st;
        waitpid(pid, &st, 0);
        REQUIRE(WIFEXITED(st));
        if (WEXITSTATUS(st) == 0) {
            completed = 1;
            fio_remove_tree(dir);
            break;
        }
        CHECK_EQ_INT(77, WEXITSTATUS(st));
        rounds++;
        CHECK_EQ_INT(0, crash_check(dir, &cfg, 60));
        /* And the log cleans further after the recovery. */
        log_t *l;
        REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
        clean_map_t *map;
        REQUIRE(clean_map_new(1 << 20, 0.9, &map) == SM_OK);
        log_clean_opts_t o = {.map = map, .now_ms = 5000, .force = true, .io_buffer_size = 4096};
        bool did;
        CHECK_EQ_INT(SM_OK, log_clean(l, &o, &did));
        CHECK_EQ_INT(0, su_count_files(dir, ".swap") + su_count_files(dir, ".cleaned"));
        clean_map_free(map);
        log_close(l);
        CHECK_EQ_INT(0, crash_check(dir, &cfg, 60));
        fio_remove_tree(dir);
    }
    CHECK(completed);
    CHECK(rounds >= 10);
    fprintf(stderr, "  crash at every step: %d step(s)\n", rounds);
}

/* kill -9 at random moments while a child appends and cleans in a loop. */
static void test_crash_kill9(void) {
    log_config_t cfg = crash_config(4000);
    uint64_t rng = su_seed(99);
    const char *e = getenv("SAMSA_CLEANER_KILLS");
    int rounds = e ? atoi(e) : 30;
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/kill9", su_root);
    int total_batches = 0;
    for (int round = 0; round < rounds && t_failures == 0; round++) {
        int pfd[2];
        REQUIRE(pipe(pfd) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            log_t *l;
            if (log_open(dir, &cfg, false, 0, -1, &l)) _exit(2);
            clean_map_t *map;
            clean_map_new(24 * 256, 0.9, &map);
            /* Batches continue the deterministic sequence where the log ends. */
            int b = (int)(log_end_offset(l) / 5);
            if (write(pfd[1], "r", 1) != 1) _exit(5);
            for (;;) {
                for (int k = 0; k < 20; k++, b++)
                    crash_append(l, b, 0);
                log_flush(l);
                log_clean_opts_t o = {
                    .map = map, .now_ms = 5000, .force = true, .io_buffer_size = 2048};
                bool did;
                if (log_clean(l, &o, &did)) _exit(4);
            }
        }
        close(pfd[1]);
        char c;
        CHECK_EQ_INT(1, read(pfd[0], &c, 1));
        close(pfd[0]);
        struct timespec ts = {0, (long)(1000000 + su_rand(&rng) % 60000000)};
        nanosleep(&ts, NULL); /* the moment of the kill, not a synchronisation */
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st));
        /* What reached the page cache survives a process kill: the whole
         * prefix of batches. */
        log_t *l;
        REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
        int nb = (int)(log_end_offset(l) / 5);
        CHECK_EQ_INT(0, log_end_offset(l) % 5);
        log_close(l);
        CHECK_EQ_INT(0, crash_check(dir, &cfg, nb));
        total_batches = nb;
    }
    fprintf(stderr, "  kill -9: %d round(s), %d batches at the end\n", rounds, total_batches);
    fio_remove_tree(dir);
}

/* Appends one record of key `key` (value id): producer pid's, in its open
 * transaction when txn. */
static int64_t append_rec(log_t *l, int32_t key, uint32_t id, int64_t pid, bool txn) {
    mrec_t r = {key, false, id, 1000, 0};
    uint8_t buf[4096];
    size_t len = build_batch(buf, sizeof(buf), &r, 1, 0, pid, (int32_t)id);
    if (txn) {
        buf[PROTO_BATCH_OFF_ATTRIBUTES + 1] |= PROTO_ATTR_TRANSACTIONAL;
        proto_batch_update_crc(buf, len);
    }
    int64_t f, x;
    if (log_append(l, buf, len, 0, &f, &x)) abort();
    return f;
}

/* Appends a COMMIT or ABORT marker of pid's transaction. */
static int64_t append_marker(log_t *l, int64_t pid, int type) {
    uint8_t buf[256];
    size_t len = proto_control_batch_build(buf, sizeof(buf), pid, 0, 0, type, 1000);
    int64_t f, x;
    if (!len || log_append(l, buf, len, 0, &f, &x)) abort();
    return f;
}

typedef struct seen_batches {
    int64_t base[64];
    bool marker[64];
    int n;
} seen_batches_t;

static int note_batch(void *arg, const uint8_t *b, size_t len, const proto_batch_header_t *h) {
    seen_batches_t *s = arg;
    if (s->n < 64) {
        s->marker[s->n] = (h->attributes & PROTO_ATTR_CONTROL) != 0;
        s->base[s->n++] = h->base_offset;
    }
    return SM_OK;
}

/* The log's batches, by base offset, as "o" (data) and "m" (marker): "0o 3m". */
static void batches_of(log_t *l, char *out, size_t cap) {
    seen_batches_t s = {.n = 0};
    CHECK_EQ_INT(SM_OK, log_for_each_batch(l, 0, note_batch, &s));
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < s.n && n + 24 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld%c", i ? " " : "", (long long)s.base[i],
                              s.marker[i] ? 'm' : 'o');
}

static int clean_at(log_t *l, clean_map_t *map, int64_t now) {
    log_roll(l);
    if (log_flush(l)) abort();
    log_clean_opts_t o = {.map = map, .now_ms = now, .force = true, .io_buffer_size = 4096};
    bool did;
    return log_clean(l, &o, &did);
}

/* Aborted entries of the log's .txnindex files. */
static size_t aborted_on_disk(const char *dir) {
    txn_aborted_index_t x;
    txn_aborted_index_init(&x);
    CHECK_EQ_INT(SM_OK, txn_aborted_index_read_dir(&x, dir));
    size_t n = x.n;
    txn_aborted_index_free(&x);
    return n;
}

/* Transactions as Kafka's cleaner treats them: an aborted transaction's
 * batches go and never remove a committed record; committed transactional
 * records are compacted like others; an open transaction and everything
 * after it stay; a marker stays while its transaction has batches, then gets
 * a delete horizon and goes after it; the .txnindex of a rewritten segment
 * keeps exactly the entries of the ABORT markers that stay. */
static void test_transactions_cleaned(void) {
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/txn", su_root);
    log_config_t cfg = crash_config(1 << 20);
    cfg.delete_retention_ms = 1000;
    log_t *l;
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    append_rec(l, 1, 100, -1, false);          /* 0 */
    append_rec(l, 1, 101, 7, true);            /* 1: committed (pid 7) */
    append_rec(l, 2, 102, 7, true);            /* 2 */
    append_marker(l, 7, PROTO_CONTROL_COMMIT); /* 3 */
    log_roll(l);
    append_rec(l, 1, 103, 8, true);                              /* 4: aborted (pid 8) */
    append_rec(l, 3, 104, 8, true);                              /* 5 */
    int64_t abort_at = append_marker(l, 8, PROTO_CONTROL_ABORT); /* 6 */
    txn_aborted_index_t x;
    txn_aborted_index_init(&x);
    txn_aborted_t e = {8, 4, abort_at, 4};
    CHECK_EQ_INT(SM_OK, txn_aborted_index_add(&x, &e, dir, log_segment_base_of(l, abort_at)));
    txn_aborted_index_free(&x);
    log_roll(l);
    append_rec(l, 2, 105, 9, true);   /* 7: open (pid 9) */
    append_rec(l, 4, 106, -1, false); /* 8 */
    clean_map_t *map;
    REQUIRE(clean_map_new(1 << 20, 0.9, &map) == SM_OK);
    char got[512];

    CHECK_EQ_INT(SM_OK, clean_at(l, map, 5000));
    batches_of(l, got, sizeof(got));
    /* 0 superseded by committed 1; the aborted 4 and 5 gone (4 did not
     * supersede 1); both markers stay (their batches were read); 7 open. */
    CHECK(strcmp(got, "1o 2o 3m 6m 7o 8o") == 0);
    if (strcmp(got, "1o 2o 3m 6m 7o 8o") != 0) fprintf(stderr, "  got %s\n", got);
    CHECK(log_clean_point(l) <= 7);
    CHECK_EQ_INT(1, aborted_on_disk(dir));

    append_marker(l, 9, PROTO_CONTROL_COMMIT); /* 9 */
    append_rec(l, 1, 107, -1, false);          /* 10 */
    append_rec(l, 2, 108, -1, false);          /* 11 */
    CHECK_EQ_INT(SM_OK, clean_at(l, map, 6000));
    batches_of(l, got, sizeof(got));
    /* Committed 1, 2 and 7 superseded; 3 and 9 stay (batches read now), 6
     * gets its horizon (6000 + 1000). */
    CHECK(strcmp(got, "3m 6m 8o 9m 10o 11o") == 0);
    if (strcmp(got, "3m 6m 8o 9m 10o 11o") != 0) fprintf(stderr, "  got %s\n", got);
    CHECK_EQ_INT(1, aborted_on_disk(dir));

    CHECK_EQ_INT(SM_OK, clean_at(l, map, 6500)); /* before the horizon: all stay */
    batches_of(l, got, sizeof(got));
    CHECK(strcmp(got, "3m 6m 8o 9m 10o 11o") == 0);
    CHECK_EQ_INT(SM_OK, clean_at(l, map, 7001));
    CHECK_EQ_INT(SM_OK, clean_at(l, map, 9000));
    batches_of(l, got, sizeof(got));
    /* Every marker went after its horizon, the index entry with its marker. */
    CHECK(strcmp(got, "8o 10o 11o") == 0);
    if (strcmp(got, "8o 10o 11o") != 0) fprintf(stderr, "  got %s\n", got);
    CHECK_EQ_INT(0, aborted_on_disk(dir));
    clean_map_free(map);
    CHECK_EQ_INT(SM_OK, log_close(l));
    /* Reopened after a crash: the same. */
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    batches_of(l, got, sizeof(got));
    CHECK(strcmp(got, "8o 10o 11o") == 0);
    CHECK_EQ_INT(SM_OK, log_close(l));
    fio_remove_tree(dir);
}

/* Files of a cleaning's aborted-transaction index after a crash: a
 * .txnindex.swap without its .log.swap is dropped (the old index stays); with
 * it, completing the swap puts it in place of the old index. */
static void test_txnindex_swap_recovery(void) {
    char dir[300], logp[400], path[400];
    snprintf(dir, sizeof(dir), "%s/txnswap", su_root);
    log_config_t cfg = crash_config(1 << 20);
    log_t *l;
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    append_rec(l, 1, 1, -1, false);
    append_rec(l, 2, 2, -1, false);
    log_roll(l);
    append_rec(l, 3, 3, -1, false);
    CHECK_EQ_INT(SM_OK, log_close(l));
    txn_aborted_t old[2] = {{5, 0, 0, 0}, {6, 1, 1, 0}}, fresh[1] = {{5, 0, 0, 0}};
    su_seg_path(path, sizeof(path), dir, 0, ".txnindex");
    REQUIRE(txn_aborted_index_write_file(old, 2, path) == SM_OK);
    char tswap[420];
    snprintf(tswap, sizeof(tswap), "%s.swap", path);
    REQUIRE(txn_aborted_index_write_file(fresh, 1, tswap) == SM_OK);
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    CHECK_EQ_INT(SM_OK, log_close(l));
    CHECK(access(tswap, F_OK) != 0);
    CHECK_EQ_INT(2, aborted_on_disk(dir));
    /* With its .log.swap (a copy of segment 0: whole batches). */
    REQUIRE(txn_aborted_index_write_file(fresh, 1, tswap) == SM_OK);
    su_seg_path(logp, sizeof(logp), dir, 0, ".log");
    uint8_t *data;
    size_t len;
    REQUIRE(fio_read_file(logp, &data, &len, 1 << 20) == SM_OK);
    char lswap[420];
    snprintf(lswap, sizeof(lswap), "%s.swap", logp);
    REQUIRE(fio_write_file(lswap, data, len, true) == SM_OK);
    free(data);
    REQUIRE(log_open(dir, &cfg, false, 0, -1, &l) == SM_OK);
    CHECK_EQ_INT(3, log_end_offset(l));
    CHECK_EQ_INT(SM_OK, log_close(l));
    CHECK(access(tswap, F_OK) != 0);
    CHECK(access(lswap, F_OK) != 0);
    CHECK_EQ_INT(1, aborted_on_disk(dir));
    fio_remove_tree(dir);
}

/* ---------------------------------------------------------------- manager */

/* Waits (waking the cleaners) until a cleaning of l completed and its size
 * dropped below size. */
static bool wait_smaller(log_manager_t *m, log_t *l, int64_t size, int64_t deadline_ms) {
    while (sm_time_ms() < deadline_ms) {
        log_clean_info_t info;
        log_clean_info(l, sm_time_ms(), &info);
        if (log_size_bytes(l) < size && info.last.runs >= 1 && log_clean_point(l) > 0) return true;
        log_cleaner_wake(log_manager_cleaner(m));
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL); /* polling a condition with a deadline */
    }
    return false;
}

/* The cleaner threads pick a dirty compacted log, clean it (the segment count
 * drops), write the cleaner-offset-checkpoint, and leave other logs alone. */
static void test_manager_cleaner_threads(void) {
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/mgr", su_root);
    const char *dirs[] = {dir};
    log_manager_opts_t o = {.dirs = dirs, .ndirs = 1, .recovery_threads = 1};
    log_config_default(&o.defaults);
    log_cleaner_opts_default(&o.cleaner);
    o.cleaner.threads = 2;
    o.cleaner.backoff_ms = 20;
    log_manager_t *m;
    REQUIRE(log_manager_open(&o, &m) == SM_OK);
    REQUIRE(log_manager_start_cleaner(m) == SM_OK);
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.segment_bytes = 3000;
    cfg.compact = true;
    cfg.min_cleanable_ratio = 0.01;
    log_config_t plain = cfg;
    plain.compact = false;
    log_t *l, *p;
    REQUIRE(log_manager_get_or_create(m, "compacted", 0, NULL, &cfg, &l) == SM_OK);
    REQUIRE(log_manager_get_or_create(m, "plain", 0, NULL, &plain, &p) == SM_OK);
    crash_fill(l, 80);
    crash_fill(p, 80);
    log_roll(l);
    log_flush(l);
    log_flush(p);
    int64_t size_before = log_size_bytes(l), before_p = log_size_bytes(p);
    int segs_p = log_segment_count(p);
    CHECK(wait_smaller(m, l, size_before, sm_time_ms() + 120000));
    CHECK_EQ_INT(before_p, log_size_bytes(p));
    CHECK_EQ_INT(segs_p, log_segment_count(p));
    log_clean_info_t info;
    log_clean_info(l, sm_time_ms(), &info);
    CHECK(info.compact);
    CHECK(info.last.runs >= 1);
    CHECK(log_clean_point(l) > 0);
    /* A dynamic change: the plain log becomes compacted and is cleaned. */
    plain.compact = true;
    log_set_config(p, &plain);
    CHECK(wait_smaller(m, p, before_p, sm_time_ms() + 120000));
    CHECK_EQ_INT(SM_OK, log_manager_close(m));
    char ck[400];
    snprintf(ck, sizeof(ck), "%s/cleaner-offset-checkpoint", dir);
    uint8_t *data;
    size_t len;
    REQUIRE(fio_read_file(ck, &data, &len, 1 << 20) == SM_OK);
    const char *line = memmem(data, len, "compacted 0 ", 12);
    REQUIRE(line != NULL);
    int64_t cp = strtoll(line + 12, NULL, 10);
    CHECK(cp > 0);
    free(data);
    /* Reopened: the clean point comes back from the checkpoint. */
    o.cleaner.enable = false;
    REQUIRE(log_manager_open(&o, &m) == SM_OK);
    l = log_manager_get(m, "compacted", 0);
    REQUIRE(l != NULL);
    CHECK_EQ_INT(cp, log_clean_point(l));
    CHECK_EQ_INT(SM_OK, log_manager_close(m));
}

int main(void) {
    su_make_root("cleaner");
    sm_log_set_level(SM_LOG_ERROR);
    RUN(test_map_bounds);
    RUN(test_model);
    RUN(test_crash_every_step);
    RUN(test_crash_kill9);
    RUN(test_transactions_cleaned);
    RUN(test_txnindex_swap_recovery);
    RUN(test_manager_cleaner_threads);
    fio_remove_tree(su_root);
    return t_summary("storage_cleaner");
}
