/*
 * Record batches v2: building, validation, iteration of records and headers
 * (every field compared), in-place patches, the exact encoding against bytes
 * written out by hand from the spec, and clean failure on damaged input (every
 * truncation, every bit flip with and without the CRC fixed up, seeded random
 * damage, bad lengths, counts and varints, old magics, unknown codecs).
 */
#include "base/buf.h"
#include "base/crc32c.h"
#include "protocol/records.h"
#include "test.h"

#define SEED 0x7ec0bd5u

static uint64_t rng_state;
static uint32_t rng_next(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* ---- a generated set of records covering the shapes a batch can hold ---- */

typedef struct spec {
    int64_t ts;
    sm_bytes_t key, value;
    proto_record_header_t hdrs[3];
    int32_t nh;
} spec_t;

static uint8_t payload[4096]; /* bytes the specs point into */

static sm_bytes_t bytes_at(size_t off, int32_t len) { return (sm_bytes_t){payload + off, len}; }

/* Record i of a batch: null keys, empty keys, null and empty values, binary
 * and long values (multi-byte varint lengths), timestamps before the base
 * (negative deltas), headers with null and empty values and empty keys. */
static spec_t make_spec(int i, int64_t base_ts) {
    spec_t s;
    memset(&s, 0, sizeof(s));
    s.ts = base_ts + (i % 5 == 3 ? -(int64_t)i : (int64_t)i * 7);
    switch (i % 4) {
    case 0: s.key = bytes_at((size_t)i % 100, 1 + i % 9); break;
    case 1: s.key = SM_BYTES_NULL; break;
    case 2: s.key = bytes_at(0, 0); break;
    default: s.key = bytes_at(200, 70); break;
    }
    switch (i % 6) {
    case 2: s.value = SM_BYTES_NULL; break;
    case 4: s.value = bytes_at(0, 0); break;
    case 5: s.value = bytes_at(300, 1000 + i % 50); break;
    default: s.value = bytes_at((size_t)i % 512, 1 + i % 40); break;
    }
    s.nh = i % 4;
    static const char *hkeys[3] = {"trace", "", "content-type"};
    for (int32_t h = 0; h < s.nh; h++) {
        s.hdrs[h].key = sm_str_from(hkeys[h]);
        s.hdrs[h].value = (i + h) % 3 == 0
                              ? SM_BYTES_NULL
                              : bytes_at((size_t)(i + h), (i + h) % 3 == 1 ? 0 : 5 + h);
    }
    return s;
}

static const proto_batch_builder_opts_t default_opts = {.base_offset = 1000,
                                                        .partition_leader_epoch = 9,
                                                        .attributes = 0,
                                                        .base_timestamp = 1700000000000,
                                                        .producer_id = 4242,
                                                        .producer_epoch = 3,
                                                        .base_sequence = 77};

/* Builds n generated records into a new heap buffer of exactly the batch's
 * size (so ASan sees any read past its end); *len gets the size. */
static uint8_t *build(int n, const proto_batch_builder_opts_t *o, size_t *len) {
    size_t cap = PROTO_BATCH_HEADER_SIZE;
    for (int i = 0; i < n; i++) {
        spec_t s = make_spec(i, o->base_timestamp);
        size_t rs = proto_record_size(s.ts - o->base_timestamp, i, s.key, s.value, s.hdrs, s.nh);
        if (rs == 0) return NULL;
        cap += rs;
    }
    uint8_t *buf = malloc(cap);
    if (!buf) return NULL;
    proto_batch_builder_t b;
    proto_batch_builder_init(&b, buf, cap, o);
    for (int i = 0; i < n; i++) {
        spec_t s = make_spec(i, o->base_timestamp);
        if (proto_batch_builder_add(&b, s.ts, s.key, s.value, s.hdrs, s.nh) != SM_OK) break;
    }
    if (proto_batch_builder_finish(&b, len) != SM_OK || *len != cap) {
        free(buf);
        return NULL;
    }
    return buf;
}

static bool bytes_eq(sm_bytes_t a, sm_bytes_t b) {
    if (a.len != b.len) return false;
    return a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

static uint32_t stored_crc(const uint8_t *buf) {
    sm_reader_t r = sm_reader_make(buf + PROTO_BATCH_OFF_CRC, 4);
    uint32_t v = 0;
    sm_rd_u32(&r, &v);
    return v;
}

/* Walks the records of a validated batch and compares every field with the
 * specs it was built from. Returns the number of records seen. */
static int check_records(const uint8_t *buf, size_t len, const proto_batch_header_t *h,
                         int64_t base_ts) {
    proto_record_iter_t it;
    proto_record_iter_init(&it, buf + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h->records_count);
    proto_record_t rec;
    int i = 0, rc, bad = 0;
    const uint8_t *prev = it.p;
    while ((rc = proto_record_iter_next(&it, &rec)) == 1) {
        spec_t s = make_spec(i, base_ts);
        size_t consumed = (size_t)(it.p - prev);
        prev = it.p;
        bad += consumed != proto_record_size(s.ts - base_ts, i, s.key, s.value, s.hdrs, s.nh);
        bad += rec.attributes != 0;
        bad += rec.offset_delta != i;
        bad += rec.timestamp_delta != s.ts - base_ts;
        bad += !bytes_eq(rec.key, s.key);
        bad += !bytes_eq(rec.value, s.value);
        bad += rec.header_count != s.nh;
        proto_header_iter_t hi;
        proto_header_iter_init(&hi, &rec);
        proto_record_header_t hd;
        int32_t n = 0;
        while ((rc = proto_header_iter_next(&hi, &hd)) == 1) {
            if (n >= s.nh) {
                bad++;
                break;
            }
            bad += !sm_str_eq(hd.key, s.hdrs[n].key) || hd.key.len < 0;
            bad += !bytes_eq(hd.value, s.hdrs[n].value);
            n++;
        }
        bad += rc != 0 || n != s.nh;
        i++;
    }
    CHECK_EQ_INT(0, rc);
    CHECK(it.p == buf + len);
    CHECK_EQ_INT(0, bad);
    return i;
}

/* Batches of 0, 1, 20 and 2000 records validate, report their header fields
 * and give back every field of every record and header. */
static void test_build_validate_iterate(void) {
    static const int counts[] = {0, 1, 2, 20, 2000};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        int n = counts[c];
        size_t len;
        uint8_t *buf = build(n, &default_opts, &len);
        REQUIRE(buf != NULL);
        proto_batch_header_t h;
        CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
        CHECK_EQ_INT(1000, h.base_offset);
        CHECK_EQ_INT(len - PROTO_BATCH_LOG_OVERHEAD, h.batch_length);
        CHECK_EQ_INT(len, proto_batch_total_size(&h));
        CHECK_EQ_INT(9, h.partition_leader_epoch);
        CHECK_EQ_INT(2, h.magic);
        CHECK_EQ_INT(proto_batch_compute_crc(buf, len), h.crc);
        CHECK_EQ_INT(sm_crc32c(0, buf + 21, len - 21), h.crc);
        CHECK_EQ_INT(0, h.attributes);
        CHECK_EQ_INT(PROTO_COMPRESSION_NONE, proto_batch_compression(&h));
        CHECK_EQ_INT(n ? n - 1 : 0, h.last_offset_delta);
        CHECK_EQ_INT(1000 + (n ? n - 1 : 0), proto_batch_last_offset(&h));
        CHECK_EQ_INT(1700000000000, h.base_timestamp);
        int64_t max_ts = n ? INT64_MIN : 1700000000000;
        for (int i = 0; i < n; i++) {
            spec_t s = make_spec(i, 1700000000000);
            if (s.ts > max_ts) max_ts = s.ts;
        }
        CHECK_EQ_INT(max_ts, h.max_timestamp);
        CHECK_EQ_INT(4242, h.producer_id);
        CHECK_EQ_INT(3, h.producer_epoch);
        CHECK_EQ_INT(77, h.base_sequence);
        CHECK_EQ_INT(n, h.records_count);
        CHECK_EQ_INT(n, check_records(buf, len, &h, 1700000000000));
        free(buf);
    }
}

/* Transactional and control bits pass through the builder and are reported. */
static void test_attributes_reported(void) {
    proto_batch_builder_opts_t o = default_opts;
    o.attributes = PROTO_ATTR_TRANSACTIONAL | PROTO_ATTR_CONTROL;
    size_t len;
    uint8_t *buf = build(1, &o, &len);
    REQUIRE(buf != NULL);
    proto_batch_header_t h;
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
    CHECK_EQ_INT(PROTO_ATTR_TRANSACTIONAL | PROTO_ATTR_CONTROL, h.attributes);
    free(buf);
}

/* The builder's output for one record (key "k", value "v", timestamp 0, not
 * idempotent), byte for byte as the spec lays it out, CRC included. */
static void test_exact_encoding_minimal(void) {
    uint8_t buf[128];
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 0, -1, -1, -1};
    proto_batch_builder_init(&b, buf, sizeof(buf), &o);
    CHECK_EQ_INT(SM_OK, proto_batch_builder_add(&b, 0, (sm_bytes_t){(const uint8_t *)"k", 1},
                                                (sm_bytes_t){(const uint8_t *)"v", 1}, NULL, 0));
    size_t len;
    REQUIRE(proto_batch_builder_finish(&b, &len) == SM_OK);
    /* clang-format off */
    static const uint8_t expect[] = {
        0, 0, 0, 0, 0, 0, 0, 0,                         /* base offset 0 */
        0, 0, 0, 58,                                    /* batch length: 70 - 12 */
        0, 0, 0, 0,                                     /* partition leader epoch */
        2,                                              /* magic */
        0xfe, 0x91, 0x7c, 0xab,                         /* crc32c of bytes 21..69 */
        0, 0,                                           /* attributes */
        0, 0, 0, 0,                                     /* last offset delta */
        0, 0, 0, 0, 0, 0, 0, 0,                         /* base timestamp */
        0, 0, 0, 0, 0, 0, 0, 0,                         /* max timestamp */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producer id -1 */
        0xff, 0xff,                                     /* producer epoch -1 */
        0xff, 0xff, 0xff, 0xff,                         /* base sequence -1 */
        0, 0, 0, 1,                                     /* records count */
        0x10,                                           /* record length 8, zig-zag */
        0x00,                                           /* attributes */
        0x00,                                           /* timestamp delta 0 */
        0x00,                                           /* offset delta 0 */
        0x02, 'k',                                      /* key length 1, key */
        0x02, 'v',                                      /* value length 1, value */
        0x00,                                           /* header count 0 */
    };
    /* clang-format on */
    CHECK_EQ_INT(sizeof(expect), len);
    CHECK_EQ_MEM(expect, buf, sizeof(expect) < len ? sizeof(expect) : len);
    proto_batch_header_t h;
    CHECK_EQ_INT(SM_OK, proto_batch_validate(expect, sizeof(expect), &h));
}

/* A richer batch: offsets, epoch, transactional bit, producer fields, a null
 * key, an empty key, a null value, headers with a null value, a negative
 * timestamp delta and a two-byte varint length; bytes from the spec by hand. */
static void test_exact_encoding_rich(void) {
    uint8_t buf[256];
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {5, 3, PROTO_ATTR_TRANSACTIONAL, 1000, 77, 2, 10};
    proto_batch_builder_init(&b, buf, sizeof(buf), &o);
    uint8_t z[64];
    memset(z, 'z', sizeof(z));
    proto_record_header_t h0 = {SM_STR_LIT("h"), {(const uint8_t *)"x", 1}};
    proto_record_header_t h1 = {SM_STR_LIT("h"), SM_BYTES_NULL};
    CHECK_EQ_INT(SM_OK, proto_batch_builder_add(&b, 1000, SM_BYTES_NULL,
                                                (sm_bytes_t){(const uint8_t *)"a", 1}, &h0, 1));
    CHECK_EQ_INT(SM_OK, proto_batch_builder_add(&b, 1003, (sm_bytes_t){(const uint8_t *)"", 0},
                                                SM_BYTES_NULL, &h1, 1));
    CHECK_EQ_INT(SM_OK, proto_batch_builder_add(&b, 999, (sm_bytes_t){(const uint8_t *)"kk", 2},
                                                (sm_bytes_t){z, 64}, NULL, 0));
    size_t len;
    REQUIRE(proto_batch_builder_finish(&b, &len) == SM_OK);
    uint8_t expect[158];
    /* clang-format off */
    static const uint8_t head[] = {
        0, 0, 0, 0, 0, 0, 0, 5,                         /* base offset 5 */
        0, 0, 0, 0x92,                                  /* batch length 146 */
        0, 0, 0, 3,                                     /* partition leader epoch 3 */
        2,                                              /* magic */
        0x9b, 0x5a, 0x2e, 0x04,                         /* crc32c */
        0x00, 0x10,                                     /* attributes: transactional */
        0, 0, 0, 2,                                     /* last offset delta */
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,                   /* base timestamp 1000 */
        0, 0, 0, 0, 0, 0, 0x03, 0xeb,                   /* max timestamp 1003 */
        0, 0, 0, 0, 0, 0, 0, 77,                        /* producer id */
        0, 2,                                           /* producer epoch */
        0, 0, 0, 10,                                    /* base sequence */
        0, 0, 0, 3,                                     /* records count */
        /* record 0: length 11, attrs, ts delta 0, offset delta 0, null key,
         * value "a", one header "h" = "x" */
        0x16, 0x00, 0x00, 0x00, 0x01, 0x02, 'a', 0x02, 0x02, 'h', 0x02, 'x',
        /* record 1: length 9, ts delta 3, offset delta 1, empty key, null
         * value, one header "h" = null */
        0x12, 0x00, 0x06, 0x02, 0x00, 0x01, 0x02, 0x02, 'h', 0x01,
        /* record 2: length 73 (two-byte varint), ts delta -1, offset delta 2,
         * key "kk", value length 64 (two-byte varint), then 64 'z' */
        0x92, 0x01, 0x00, 0x01, 0x04, 0x04, 'k', 'k', 0x80, 0x01,
    };
    /* clang-format on */
    memcpy(expect, head, sizeof(head));
    memset(expect + sizeof(head), 'z', 64);
    expect[sizeof(head) + 64] = 0x00; /* record 2: header count 0 */
    REQUIRE(sizeof(head) + 65 == sizeof(expect));
    CHECK_EQ_INT(sizeof(expect), len);
    CHECK_EQ_MEM(expect, buf, sizeof(expect) < len ? sizeof(expect) : len);
    proto_batch_header_t h;
    CHECK_EQ_INT(SM_OK, proto_batch_validate(expect, sizeof(expect), &h));
    CHECK_EQ_INT(1003, h.max_timestamp);
    CHECK_EQ_INT(7, proto_batch_last_offset(&h));
}

/* Base offset and leader epoch sit outside the CRC: patching them keeps the
 * stored CRC valid. LogAppendTime changes covered bytes and rewrites it. */
static void test_patches(void) {
    proto_batch_builder_opts_t o = default_opts;
    o.attributes = PROTO_ATTR_TRANSACTIONAL;
    size_t len;
    uint8_t *buf = build(5, &o, &len);
    REQUIRE(buf != NULL);
    proto_batch_header_t h;
    uint32_t crc = stored_crc(buf);
    proto_batch_set_base_offset(buf, 123456789012);
    proto_batch_set_leader_epoch(buf, 17);
    CHECK_EQ_INT(crc, stored_crc(buf));
    REQUIRE(proto_batch_validate(buf, len, &h) == SM_OK);
    CHECK_EQ_INT(123456789012, h.base_offset);
    CHECK_EQ_INT(17, h.partition_leader_epoch);
    CHECK_EQ_INT(123456789012 + 4, proto_batch_last_offset(&h));
    proto_batch_set_base_offset(buf, -1);
    proto_batch_set_leader_epoch(buf, -1);
    REQUIRE(proto_batch_validate(buf, len, &h) == SM_OK);
    CHECK_EQ_INT(-1, h.base_offset);
    CHECK_EQ_INT(-1, h.partition_leader_epoch);

    proto_batch_set_log_append_time(buf, len, 1800000000000);
    CHECK(stored_crc(buf) != crc);
    REQUIRE(proto_batch_validate(buf, len, &h) == SM_OK);
    CHECK_EQ_INT(PROTO_ATTR_LOG_APPEND_TIME | PROTO_ATTR_TRANSACTIONAL, h.attributes);
    CHECK_EQ_INT(1800000000000, h.max_timestamp);
    CHECK_EQ_INT(1700000000000, h.base_timestamp);
    CHECK_EQ_INT(5, check_records(buf, len, &h, 1700000000000));
    /* Setting it again is idempotent. */
    proto_batch_set_log_append_time(buf, len, 1800000000000);
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
    free(buf);
}

/* Concatenated batches come back one by one; a partial trailing batch cut at
 * any byte gives SM_ERR_PARSE with it.p left on it; a bad header stops the walk. */
static void test_batch_iterator(void) {
    static const int counts[] = {3, 7, 1, 0, 4};
    uint8_t *parts[5];
    size_t lens[5], total = 0;
    for (int i = 0; i < 5; i++) {
        proto_batch_builder_opts_t o = default_opts;
        o.base_offset = 100 * i;
        parts[i] = build(counts[i], &o, &lens[i]);
        REQUIRE(parts[i] != NULL);
        total += lens[i];
    }
    uint8_t *all = malloc(total);
    REQUIRE(all != NULL);
    size_t off[6] = {0};
    for (int i = 0; i < 5; i++) {
        memcpy(all + off[i], parts[i], lens[i]);
        off[i + 1] = off[i] + lens[i];
    }
    proto_batch_iter_t it;
    const uint8_t *p;
    size_t len;
    proto_batch_header_t h;
    proto_batch_iter_init(&it, all, total);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(1, proto_batch_iter_next(&it, &p, &len, &h));
        CHECK(p == all + off[i]);
        CHECK_EQ_INT(lens[i], len);
        CHECK_EQ_INT(100 * i, h.base_offset);
        CHECK_EQ_INT(counts[i], h.records_count);
        CHECK_EQ_INT(SM_OK, proto_batch_validate(p, len, &h));
    }
    CHECK_EQ_INT(0, proto_batch_iter_next(&it, &p, &len, &h));
    CHECK_EQ_INT(0, proto_batch_iter_next(&it, &p, &len, &h));

    /* The last batch cut at every length, in an exactly sized copy. */
    int bad = 0;
    for (size_t cut = 0; cut < lens[4]; cut++) {
        size_t n = off[4] + cut;
        uint8_t *copy = malloc(n ? n : 1);
        REQUIRE(copy != NULL);
        memcpy(copy, all, n);
        proto_batch_iter_init(&it, copy, n);
        for (int i = 0; i < 4; i++)
            bad += proto_batch_iter_next(&it, &p, &len, &h) != 1;
        int rc = proto_batch_iter_next(&it, &p, &len, &h);
        bad += rc != (cut == 0 ? 0 : SM_ERR_PARSE);
        bad += it.p != copy + off[4];
        free(copy);
    }
    CHECK_EQ_INT(0, bad);

    /* An old magic in the middle: the walk stops there with SM_ERR_VERSION. */
    all[off[2] + PROTO_BATCH_OFF_MAGIC] = 1;
    proto_batch_iter_init(&it, all, total);
    CHECK_EQ_INT(1, proto_batch_iter_next(&it, &p, &len, &h));
    CHECK_EQ_INT(1, proto_batch_iter_next(&it, &p, &len, &h));
    CHECK_EQ_INT(SM_ERR_VERSION, proto_batch_iter_next(&it, &p, &len, &h));
    all[off[2] + PROTO_BATCH_OFF_MAGIC] = 2;
    /* A length too small to hold the header: SM_ERR_CORRUPT. */
    sm_writer_t w = sm_writer_make(all + off[1] + PROTO_BATCH_OFF_LENGTH, 4);
    sm_wr_i32(&w, PROTO_BATCH_HEADER_SIZE - PROTO_BATCH_LOG_OVERHEAD - 1);
    proto_batch_iter_init(&it, all, total);
    CHECK_EQ_INT(1, proto_batch_iter_next(&it, &p, &len, &h));
    CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_iter_next(&it, &p, &len, &h));
    /* A length running past the data reads as a partial batch. */
    w = sm_writer_make(all + off[1] + PROTO_BATCH_OFF_LENGTH, 4);
    sm_wr_i32(&w, INT32_MAX);
    proto_batch_iter_init(&it, all, total);
    CHECK_EQ_INT(1, proto_batch_iter_next(&it, &p, &len, &h));
    CHECK_EQ_INT(SM_ERR_PARSE, proto_batch_iter_next(&it, &p, &len, &h));
    free(all);
    for (int i = 0; i < 5; i++)
        free(parts[i]);
}

/* Walks records and headers of possibly damaged bytes to the end; only
 * checks that nothing crashes or reads out of bounds (ASan) and that the walk
 * ends. Returns 1 when every record and header read cleanly. */
static int walk_all(const uint8_t *buf, size_t len) {
    if (len < PROTO_BATCH_HEADER_SIZE) return 0;
    proto_batch_header_t h;
    if (proto_batch_parse_header(buf, len, &h) != SM_OK) return 0;
    int compressed = proto_batch_compression(&h) != PROTO_COMPRESSION_NONE;
    proto_record_iter_t it;
    proto_record_iter_init(&it, buf + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h.records_count);
    proto_record_t rec;
    int rc;
    while ((rc = proto_record_iter_next(&it, &rec)) == 1) {
        proto_header_iter_t hi;
        proto_header_iter_init(&hi, &rec);
        proto_record_header_t hd;
        int hrc;
        while ((hrc = proto_header_iter_next(&hi, &hd)) == 1) {
        }
        if (hrc != 0) return compressed;
    }
    /* A compressed batch's record area is opaque: walking it as records only
     * shows nothing crashes. */
    return rc == 0 || compressed;
}

/* Every prefix of a valid batch fails validation and iteration cleanly. */
static void test_truncation_every_byte(void) {
    size_t len;
    uint8_t *buf = build(12, &default_opts, &len);
    REQUIRE(buf != NULL);
    proto_batch_header_t h;
    int accepted = 0, iterated = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        REQUIRE(copy != NULL);
        memcpy(copy, buf, cut);
        accepted += proto_batch_validate(copy, cut, &h) == SM_OK;
        proto_batch_iter_t it;
        const uint8_t *p;
        size_t l;
        proto_batch_iter_init(&it, copy, cut);
        iterated += proto_batch_iter_next(&it, &p, &l, &h) == 1;
        walk_all(copy, cut);
        free(copy);
    }
    CHECK_EQ_INT(0, accepted);
    CHECK_EQ_INT(0, iterated);
    free(buf);
}

/* Every single-bit flip: base offset and leader epoch are outside the CRC (and
 * any value is legal there); a flip anywhere else must be caught. Then the same
 * flips with the CRC fixed up, so the record checks alone face them: whatever
 * they accept must iterate cleanly, and nothing may crash. */
static void test_every_bit_flip(void) {
    size_t len;
    uint8_t *buf = build(6, &default_opts, &len);
    REQUIRE(buf != NULL);
    uint8_t *copy = malloc(len);
    REQUIRE(copy != NULL);
    proto_batch_header_t h;
    int missed = 0, rejected_outside = 0, accepted_fixed = 0, walk_failed = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, buf, len);
            copy[i] ^= (uint8_t)(1u << bit);
            int rc = proto_batch_validate(copy, len, &h);
            bool outside_crc = i < PROTO_BATCH_OFF_LENGTH ||
                               (i >= PROTO_BATCH_OFF_LEADER_EPOCH && i < PROTO_BATCH_OFF_MAGIC);
            if (outside_crc) {
                rejected_outside += rc != SM_OK;
            } else {
                missed += rc == SM_OK;
            }
            walk_all(copy, len);
            if (i >= PROTO_BATCH_OFF_ATTRIBUTES) {
                proto_batch_update_crc(copy, len);
                if (proto_batch_validate(copy, len, &h) == SM_OK) {
                    accepted_fixed++;
                    walk_failed += !walk_all(copy, len);
                }
            }
        }
    }
    CHECK_EQ_INT(0, missed);
    CHECK_EQ_INT(0, rejected_outside);
    CHECK_EQ_INT(0, walk_failed);
    fprintf(stderr, "bit flips with the CRC fixed up that still validate (data bytes): %d of %zu\n",
            accepted_fixed, (len - PROTO_BATCH_OFF_ATTRIBUTES) * 8);
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
    free(copy);
    free(buf);
}

/* Seeded random damage (1-4 random bytes overwritten, CRC fixed up so the
 * record checks are reached): validation never crashes and what it accepts
 * iterates cleanly. */
static void test_random_damage(void) {
    size_t len;
    uint8_t *buf = build(9, &default_opts, &len);
    REQUIRE(buf != NULL);
    uint8_t *copy = malloc(len);
    REQUIRE(copy != NULL);
    rng_state = SEED;
    proto_batch_header_t h;
    int accepted = 0, walk_failed = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, buf, len);
        int n = 1 + (int)(rng_next() % 4);
        for (int k = 0; k < n; k++) {
            /* half the time within the first records, where structure is dense */
            size_t span = len - PROTO_BATCH_OFF_ATTRIBUTES;
            if (round & 1 && span > 200) span = 200;
            size_t pos = PROTO_BATCH_OFF_ATTRIBUTES + rng_next() % span;
            copy[pos] = (uint8_t)rng_next();
        }
        proto_batch_update_crc(copy, len);
        if (proto_batch_validate(copy, len, &h) == SM_OK) {
            accepted++;
            walk_failed += !walk_all(copy, len);
        }
    }
    CHECK_EQ_INT(0, walk_failed);
    fprintf(stderr, "seed %#x: %d of 20000 damaged batches still valid\n", SEED, accepted);
    free(copy);
    free(buf);
}

/* Writes a batch whose records area is the given raw bytes, with length,
 * last offset delta, count and CRC made consistent, into an exactly sized
 * heap buffer. */
static uint8_t *raw_batch(const uint8_t *records, size_t rlen, int32_t count, size_t *len) {
    uint8_t hdr[PROTO_BATCH_HEADER_SIZE];
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 0, -1, -1, -1};
    proto_batch_builder_init(&b, hdr, sizeof(hdr), &o);
    size_t hl;
    if (proto_batch_builder_finish(&b, &hl) != SM_OK) return NULL;
    *len = PROTO_BATCH_HEADER_SIZE + rlen;
    uint8_t *buf = malloc(*len);
    if (!buf) return NULL;
    memcpy(buf, hdr, sizeof(hdr));
    if (rlen) memcpy(buf + PROTO_BATCH_HEADER_SIZE, records, rlen);
    sm_writer_t w = sm_writer_make(buf + PROTO_BATCH_OFF_LENGTH, 4);
    sm_wr_i32(&w, (int32_t)(*len - PROTO_BATCH_LOG_OVERHEAD));
    w = sm_writer_make(buf + PROTO_BATCH_OFF_LAST_OFFSET_DELTA, 4);
    sm_wr_i32(&w, count > 0 ? count - 1 : 0);
    w = sm_writer_make(buf + PROTO_BATCH_OFF_RECORDS_COUNT, 4);
    sm_wr_i32(&w, count);
    proto_batch_update_crc(buf, *len);
    return buf;
}

/* Validates raw records bytes in a batch; returns the status. */
static int validate_raw(const uint8_t *records, size_t rlen, int32_t count) {
    size_t len;
    uint8_t *buf = raw_batch(records, rlen, count, &len);
    if (!buf) return SM_ERR_NOMEM;
    proto_batch_header_t h;
    int rc = proto_batch_validate(buf, len, &h);
    walk_all(buf, len);
    free(buf);
    return rc;
}

#define RAW(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

/* Hand-made records that break one rule each are refused with SM_ERR_CORRUPT. */
static void test_malformed_records(void) {
    /* the well-formed baseline: key "k", value "v" */
    CHECK_EQ_INT(SM_OK, validate_raw(RAW(0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0), 1));
    /* with one header "h" = null */
    CHECK_EQ_INT(SM_OK,
                 validate_raw(RAW(0x16, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x02, 0x02, 'h', 0x01), 1));
    /* record length one too long, one too short, zero, negative */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x12, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x0e, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x00, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x01, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0), 1));
    /* record length one too long, with a byte there to take: fields end early */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x12, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0, 0), 1));
    /* key length beyond the record, and far beyond the batch (1,000,000) */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x10, 0, 0, 0, 0x7e, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 validate_raw(RAW(0x14, 0, 0, 0, 0x80, 0x89, 0x7a, 'k', 0x02, 'v', 0), 1));
    /* key and value lengths below -1 */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x10, 0, 0, 0, 0x03, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x10, 0, 0, 0, 0x02, 'k', 0x05, 'v', 0), 1));
    /* value length beyond the record */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x10, 0, 0, 0, 0x02, 'k', 0x04, 'v', 0), 1));
    /* header count negative, and larger than the headers present */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x01), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 validate_raw(RAW(0x16, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x04, 0x02, 'h', 0x01), 1));
    /* header key null (Kafka requires one), header key beyond the record,
     * header value length below -1 */
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 validate_raw(RAW(0x16, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x02, 0x01, 'h', 0x01), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 validate_raw(RAW(0x16, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x02, 0x08, 'h', 0x01), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 validate_raw(RAW(0x16, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0x02, 0x02, 'h', 0x03), 1));
    /* overlong varints: record length in 6 bytes, offset delta in 6 bytes,
     * key length in 6 bytes, timestamp delta in 11 bytes; and 5/10-byte
     * encodings carrying bits beyond 32/64 */
    CHECK_EQ_INT(
        SM_ERR_CORRUPT,
        validate_raw(RAW(0x90, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x1a, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
                                                  0x02, 'k', 0x02, 'v', 0),
                                              1));
    CHECK_EQ_INT(
        SM_ERR_CORRUPT,
        validate_raw(RAW(0x1a, 0, 0, 0, 0x82, 0x80, 0x80, 0x80, 0x80, 0x00, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 validate_raw(RAW(0x24, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                  0x80, 0x00, 0, 0x02, 'k', 0x02, 'v', 0),
                              1));
    CHECK_EQ_INT(
        SM_ERR_CORRUPT,
        validate_raw(RAW(0x18, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x02, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x22, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                  0xff, 0xff, 0x7f, 0, 0x02, 'k', 0x02, 'v', 0),
                                              1));
    /* ... while the longest legal ones (5 and 10 bytes) are fine */
    CHECK_EQ_INT(
        SM_OK,
        validate_raw(RAW(0x18, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x00, 0x02, 'k', 0x02, 'v', 0), 1));
    CHECK_EQ_INT(SM_OK, validate_raw(RAW(0x22, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                         0x80, 0x00, 0, 0x02, 'k', 0x02, 'v', 0),
                                     1));
    /* a varint cut off by the end of the batch */
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 validate_raw(RAW(0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0, 0x80), 2));

    /* counts: more records announced than present, fewer (bytes left over),
     * offset deltas that skip or repeat or start at 1 */
    static const uint8_t rec0[] = {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};
    uint8_t two[2 * sizeof(rec0)];
    memcpy(two, rec0, sizeof(rec0));
    memcpy(two + sizeof(rec0), rec0, sizeof(rec0));
    two[sizeof(rec0) + 3] = 0x02; /* second record: offset delta 1 */
    CHECK_EQ_INT(SM_OK, validate_raw(two, sizeof(two), 2));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(two, sizeof(two), 3));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(two, sizeof(two), 1));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(two, sizeof(two), 0));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(rec0, sizeof(rec0), 2));
    two[sizeof(rec0) + 3] = 0x00; /* repeats 0 */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(two, sizeof(two), 2));
    two[sizeof(rec0) + 3] = 0x04; /* skips to 2 */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(two, sizeof(two), 2));
    two[3] = 0x02;                /* starts at 1 */
    two[sizeof(rec0) + 3] = 0x04; /* then 2 */
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(two, sizeof(two), 2));
    /* an empty batch is fine; one with bytes after the (no) records is not */
    CHECK_EQ_INT(SM_OK, validate_raw(NULL, 0, 0));
    CHECK_EQ_INT(SM_ERR_CORRUPT, validate_raw(RAW(0x00), 0));
}

/* Header-level damage: counts, last offset delta, sizes, magic, codecs. */
static void test_malformed_headers(void) {
    static const uint8_t rec0[] = {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};
    size_t len;
    proto_batch_header_t h;
    uint8_t *buf = raw_batch(rec0, sizeof(rec0), 1, &len);
    REQUIRE(buf != NULL);
    sm_writer_t w;
#define PUT32(off, v) (w = sm_writer_make(buf + (off), 4), sm_wr_i32(&w, (v)))
    /* huge and negative counts, with the CRC made to match */
    static const int32_t counts[] = {INT32_MAX, INT32_MIN, -1, -5, 1 << 20, 2};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        PUT32(PROTO_BATCH_OFF_RECORDS_COUNT, counts[i]);
        PUT32(PROTO_BATCH_OFF_LAST_OFFSET_DELTA, counts[i] > 0 ? counts[i] - 1 : 0);
        proto_batch_update_crc(buf, len);
        CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate(buf, len, &h));
    }
    PUT32(PROTO_BATCH_OFF_RECORDS_COUNT, 1);
    /* last offset delta not count - 1, or negative */
    static const int32_t deltas[] = {1, 5, -1, INT32_MAX};
    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
        PUT32(PROTO_BATCH_OFF_LAST_OFFSET_DELTA, deltas[i]);
        proto_batch_update_crc(buf, len);
        CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate(buf, len, &h));
    }
    PUT32(PROTO_BATCH_OFF_LAST_OFFSET_DELTA, 0);
    proto_batch_update_crc(buf, len);
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
    /* batch length: one more or less than the bytes given, below the header
     * size, negative */
    const int32_t lengths[] = {1, -1, 0, -(int32_t)len};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        int32_t v = (int32_t)(len - PROTO_BATCH_LOG_OVERHEAD) + lengths[i];
        PUT32(PROTO_BATCH_OFF_LENGTH, v);
        int rc = proto_batch_validate(buf, len, &h);
        CHECK(rc == SM_ERR_CORRUPT || (lengths[i] == 0 && rc == SM_OK));
    }
    PUT32(PROTO_BATCH_OFF_LENGTH, PROTO_BATCH_HEADER_SIZE - PROTO_BATCH_LOG_OVERHEAD - 1);
    CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_parse_header(buf, len, &h));
    PUT32(PROTO_BATCH_OFF_LENGTH, (int32_t)(len - PROTO_BATCH_LOG_OVERHEAD));
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
    /* a wrong CRC */
    buf[PROTO_BATCH_OFF_CRC] ^= 1;
    CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate(buf, len, &h));
    buf[PROTO_BATCH_OFF_CRC] ^= 1;
    /* magic 0, 1 (old formats) and 3 (unknown): SM_ERR_VERSION, from the
     * header parser too, and even when only 17 bytes are there */
    static const int8_t magics[] = {0, 1, 3, -1};
    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        buf[PROTO_BATCH_OFF_MAGIC] = (uint8_t)magics[i];
        CHECK_EQ_INT(SM_ERR_VERSION, proto_batch_validate(buf, len, &h));
        CHECK_EQ_INT(SM_ERR_VERSION, proto_batch_parse_header(buf, PROTO_BATCH_OFF_MAGIC + 1, &h));
    }
    buf[PROTO_BATCH_OFF_MAGIC] = 2;
    CHECK_EQ_INT(SM_ERR_PARSE, proto_batch_parse_header(buf, PROTO_BATCH_OFF_MAGIC, &h));
    CHECK_EQ_INT(SM_ERR_PARSE, proto_batch_parse_header(buf, PROTO_BATCH_HEADER_SIZE - 1, &h));
    /* codecs 5..7 are corrupt; 1..4 are recognised and their record area is
     * opaque (garbage there is fine, as is a last offset delta the count
     * cannot check) */
    for (int codec = 1; codec <= 7; codec++) {
        buf[PROTO_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)codec;
        proto_batch_update_crc(buf, len);
        CHECK_EQ_INT(codec <= 4 ? SM_OK : SM_ERR_CORRUPT, proto_batch_validate(buf, len, &h));
        if (codec <= 4) CHECK_EQ_INT(codec, proto_batch_compression(&h));
    }
    free(buf);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    buf = raw_batch(junk, sizeof(junk), 3, &len);
    REQUIRE(buf != NULL);
    CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate(buf, len, &h));
    buf[PROTO_BATCH_OFF_ATTRIBUTES + 1] = PROTO_COMPRESSION_ZSTD;
    proto_batch_update_crc(buf, len);
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
    CHECK_EQ_INT(3, h.records_count);
    free(buf);
#undef PUT32
}

/* The builder: exact fit, one byte short, sticky errors, refused inputs. */
static void test_builder_limits(void) {
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 0, -1, -1, -1};
    uint8_t big[64] = {0};
    sm_bytes_t v64 = {big, 64};
    size_t rs = proto_record_size(0, 0, SM_BYTES_NULL, v64, NULL, 0);
    /* length 71 (two varint bytes), attributes, timestamp and offset deltas,
     * null key, value length 64 (two varint bytes), value, header count */
    CHECK_EQ_INT(2 + 1 + 1 + 1 + 1 + 2 + 64 + 1, rs);
    uint8_t buf[256];
    size_t len;
    /* exactly enough room */
    proto_batch_builder_init(&b, buf, PROTO_BATCH_HEADER_SIZE + rs, &o);
    CHECK_EQ_INT(SM_OK, proto_batch_builder_add(&b, 0, SM_BYTES_NULL, v64, NULL, 0));
    CHECK_EQ_INT(SM_OK, proto_batch_builder_finish(&b, &len));
    CHECK_EQ_INT(PROTO_BATCH_HEADER_SIZE + rs, len);
    /* one byte short: SM_ERR_SPACE, and it sticks even for a record that fits */
    proto_batch_builder_init(&b, buf, PROTO_BATCH_HEADER_SIZE + rs - 1, &o);
    CHECK_EQ_INT(SM_ERR_SPACE, proto_batch_builder_add(&b, 0, SM_BYTES_NULL, v64, NULL, 0));
    CHECK_EQ_INT(SM_ERR_SPACE,
                 proto_batch_builder_add(&b, 0, SM_BYTES_NULL, SM_BYTES_NULL, NULL, 0));
    CHECK_EQ_INT(SM_ERR_SPACE, proto_batch_builder_finish(&b, &len));
    /* a full builder after some records */
    proto_batch_builder_init(&b, buf, sizeof(buf), &o);
    int added = 0;
    while (proto_batch_builder_add(&b, 0, SM_BYTES_NULL, v64, NULL, 0) == SM_OK)
        added++;
    CHECK_EQ_INT(2, added);
    CHECK_EQ_INT(SM_ERR_SPACE, b.status);
    CHECK_EQ_INT(SM_ERR_SPACE, proto_batch_builder_finish(&b, &len));
    /* a buffer too small for the header */
    proto_batch_builder_init(&b, buf, PROTO_BATCH_HEADER_SIZE - 1, &o);
    CHECK_EQ_INT(SM_ERR_SPACE, proto_batch_builder_finish(&b, &len));
    /* compression bits: this builder writes uncompressed batches only */
    proto_batch_builder_opts_t oc = o;
    oc.attributes = PROTO_COMPRESSION_LZ4;
    proto_batch_builder_init(&b, buf, sizeof(buf), &oc);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_batch_builder_add(&b, 0, SM_BYTES_NULL, SM_BYTES_NULL, NULL, 0));
    CHECK_EQ_INT(SM_ERR_RANGE, proto_batch_builder_finish(&b, &len));
    /* a null header key, a negative header count, headers missing */
    proto_record_header_t nullkey = {SM_STR_NULL, SM_BYTES_NULL};
    CHECK_EQ_INT(0, proto_record_size(0, 0, SM_BYTES_NULL, SM_BYTES_NULL, &nullkey, 1));
    proto_batch_builder_init(&b, buf, sizeof(buf), &o);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_batch_builder_add(&b, 0, SM_BYTES_NULL, SM_BYTES_NULL, &nullkey, 1));
    CHECK_EQ_INT(SM_ERR_RANGE, proto_batch_builder_finish(&b, &len));
    proto_batch_builder_init(&b, buf, sizeof(buf), &o);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_batch_builder_add(&b, 0, SM_BYTES_NULL, SM_BYTES_NULL, NULL, -1));
    proto_batch_builder_init(&b, buf, sizeof(buf), &o);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_batch_builder_add(&b, 0, SM_BYTES_NULL, SM_BYTES_NULL, NULL, 2));
    /* a timestamp delta that overflows int64 */
    proto_batch_builder_opts_t ot = o;
    ot.base_timestamp = INT64_MAX;
    proto_batch_builder_init(&b, buf, sizeof(buf), &ot);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_batch_builder_add(&b, INT64_MIN, SM_BYTES_NULL, SM_BYTES_NULL, NULL, 0));
    /* extreme but representable deltas round-trip (10-byte varlongs) */
    proto_batch_builder_opts_t oz = o;
    oz.base_timestamp = 0;
    proto_batch_builder_init(&b, buf, sizeof(buf), &oz);
    CHECK_EQ_INT(SM_OK,
                 proto_batch_builder_add(&b, INT64_MIN, SM_BYTES_NULL, SM_BYTES_NULL, NULL, 0));
    CHECK_EQ_INT(SM_OK,
                 proto_batch_builder_add(&b, INT64_MAX, SM_BYTES_NULL, SM_BYTES_NULL, NULL, 0));
    REQUIRE(proto_batch_builder_finish(&b, &len) == SM_OK);
    proto_batch_header_t h;
    REQUIRE(proto_batch_validate(buf, len, &h) == SM_OK);
    CHECK_EQ_INT(INT64_MAX, h.max_timestamp);
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, buf + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h.records_count);
    CHECK(proto_record_iter_next(&it, &rec) == 1 && rec.timestamp_delta == INT64_MIN);
    CHECK(proto_record_iter_next(&it, &rec) == 1 && rec.timestamp_delta == INT64_MAX);
    CHECK_EQ_INT(0, proto_record_iter_next(&it, &rec));
}

int main(void) {
    fprintf(stderr, "seed %#x\n", SEED);
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 37 + (i >> 7));
    RUN(test_build_validate_iterate);
    RUN(test_attributes_reported);
    RUN(test_exact_encoding_minimal);
    RUN(test_exact_encoding_rich);
    RUN(test_patches);
    RUN(test_batch_iterator);
    RUN(test_truncation_every_byte);
    RUN(test_every_bit_flip);
    RUN(test_random_damage);
    RUN(test_malformed_records);
    RUN(test_malformed_headers);
    RUN(test_builder_limits);
    return t_summary("records");
}
