/*
 * Record batches v2: building, validation, iteration of records and headers,
 * in-place patches, the exact encoding, and clean failure on damaged input
 * (every truncation, every bit flip, bad lengths and varints, old magics).
 */
#include "base/buf.h"
#include "base/crc32c.h"
#include "protocol/records.h"
#include "test.h"

static size_t build_sample(uint8_t *buf, size_t cap, int nrec) {
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {.base_offset = 0,
                                    .partition_leader_epoch = 0,
                                    .attributes = 0,
                                    .base_timestamp = 1700000000000,
                                    .producer_id = 42,
                                    .producer_epoch = 1,
                                    .base_sequence = 7};
    proto_batch_builder_init(&b, buf, cap, &o);
    for (int i = 0; i < nrec; i++) {
        char key[16], val[32];
        int kl = snprintf(key, sizeof(key), "key-%d", i);
        int vl = snprintf(val, sizeof(val), "value-%d", i * 31);
        proto_record_header_t hdrs[2] = {{SM_STR_LIT("h1"), {(const uint8_t *)"x", 1}},
                                         {SM_STR_LIT("h2"), SM_BYTES_NULL}};
        sm_bytes_t k = i % 3 == 1 ? SM_BYTES_NULL : (sm_bytes_t){(const uint8_t *)key, kl};
        sm_bytes_t v = i % 4 == 2 ? SM_BYTES_NULL : (sm_bytes_t){(const uint8_t *)val, vl};
        proto_batch_builder_add(&b, 1700000000000 + i * 5, k, v, hdrs, i % 3);
    }
    size_t len = 0;
    CHECK_EQ_INT(SM_OK, proto_batch_builder_finish(&b, &len));
    return len;
}

static void test_build_validate_iterate(void) {
    uint8_t buf[8192];
    size_t len = build_sample(buf, sizeof(buf), 20);
    proto_batch_header_t h;
    REQUIRE(proto_batch_validate(buf, len, &h) == SM_OK);
    CHECK_EQ_INT(20, h.records_count);
    CHECK_EQ_INT(19, h.last_offset_delta);
    CHECK_EQ_INT(42, h.producer_id);
    CHECK_EQ_INT(1, h.producer_epoch);
    CHECK_EQ_INT(7, h.base_sequence);
    CHECK_EQ_INT(1700000000000 + 19 * 5, h.max_timestamp);
    CHECK_EQ_INT(len, proto_batch_total_size(&h));
    proto_record_iter_t it;
    proto_record_iter_init(&it, buf + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h.records_count);
    proto_record_t rec;
    int i = 0, rc;
    while ((rc = proto_record_iter_next(&it, &rec)) == 1) {
        CHECK_EQ_INT(i, rec.offset_delta);
        CHECK_EQ_INT(i * 5, rec.timestamp_delta);
        if (i % 3 == 1) {
            CHECK_EQ_INT(-1, rec.key.len);
        } else {
            char key[16];
            int kl = snprintf(key, sizeof(key), "key-%d", i);
            CHECK_EQ_INT(kl, rec.key.len);
            CHECK_EQ_MEM(key, rec.key.ptr, (size_t)kl);
        }
        if (i % 4 == 2) CHECK_EQ_INT(-1, rec.value.len);
        CHECK_EQ_INT(i % 3, rec.header_count);
        proto_header_iter_t hi;
        proto_header_iter_init(&hi, &rec);
        proto_record_header_t hd;
        int n = 0;
        while (proto_header_iter_next(&hi, &hd) == 1) {
            CHECK(hd.key.len == 2 && hd.key.ptr[0] == 'h' && hd.key.ptr[1] == '1' + n);
            CHECK_EQ_INT(n == 0 ? 1 : -1, hd.value.len);
            n++;
        }
        CHECK_EQ_INT(i % 3, n);
        i++;
    }
    CHECK_EQ_INT(0, rc);
    CHECK_EQ_INT(20, i);
}

static void test_exact_encoding(void) {
    uint8_t buf[128];
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 0, -1, -1, -1};
    proto_batch_builder_init(&b, buf, sizeof(buf), &o);
    proto_batch_builder_add(&b, 0, (sm_bytes_t){(const uint8_t *)"k", 1},
                            (sm_bytes_t){(const uint8_t *)"v", 1}, NULL, 0);
    size_t len;
    REQUIRE(proto_batch_builder_finish(&b, &len) == SM_OK);
    static const uint8_t expect[] = {
        0, 0, 0, 0, 0, 0, 0, 0,             /* base offset */
        0, 0, 0, 58,                        /* batch length */
        0, 0, 0, 0,                         /* partition leader epoch */
        2,                                  /* magic */
        0, 0, 0, 0,                         /* crc (checked below) */
        0, 0,                               /* attributes */
        0, 0, 0, 0,                         /* last offset delta */
        0, 0, 0, 0, 0, 0, 0, 0,             /* base timestamp */
        0, 0, 0, 0, 0, 0, 0, 0,             /* max timestamp */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producer id */
        0xff, 0xff,                         /* producer epoch */
        0xff, 0xff, 0xff, 0xff,             /* base sequence */
        0, 0, 0, 1,                         /* records count */
        0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00, /* the record */
    };
    REQUIRE(len == sizeof(expect));
    CHECK_EQ_MEM(expect, buf, 17);
    CHECK_EQ_MEM(expect + 21, buf + 21, sizeof(expect) - 21);
    uint32_t crc = (uint32_t)buf[17] << 24 | (uint32_t)buf[18] << 16 | (uint32_t)buf[19] << 8 | buf[20];
    CHECK_EQ_INT(sm_crc32c(0, expect + 21, sizeof(expect) - 21), crc);
}

static void test_patches(void) {
    uint8_t buf[4096];
    size_t len = build_sample(buf, sizeof(buf), 5);
    proto_batch_header_t h;
    proto_batch_set_base_offset(buf, 123456789);
    proto_batch_set_leader_epoch(buf, 17);
    REQUIRE(proto_batch_validate(buf, len, &h) == SM_OK);
    CHECK_EQ_INT(123456789, h.base_offset);
    CHECK_EQ_INT(17, h.partition_leader_epoch);
    CHECK_EQ_INT(123456789 + 4, proto_batch_last_offset(&h));
    proto_batch_set_log_append_time(buf, len, 1800000000000);
    REQUIRE(proto_batch_validate(buf, len, &h) == SM_OK);
    CHECK(h.attributes & PROTO_ATTR_LOG_APPEND_TIME);
    CHECK_EQ_INT(1800000000000, h.max_timestamp);
}

static void test_batch_iterator(void) {
    uint8_t buf[16384];
    size_t a = build_sample(buf, sizeof(buf), 3);
    size_t b = build_sample(buf + a, sizeof(buf) - a, 7);
    size_t c = build_sample(buf + a + b, sizeof(buf) - a - b, 1);
    proto_batch_iter_t it;
    const uint8_t *p;
    size_t len;
    proto_batch_header_t h;
    /* A partial trailing batch, as a Fetch response may carry. */
    proto_batch_iter_init(&it, buf, a + b + c - 5);
    CHECK_EQ_INT(1, proto_batch_iter_next(&it, &p, &len, &h));
    CHECK(p == buf && len == a && h.records_count == 3);
    CHECK_EQ_INT(1, proto_batch_iter_next(&it, &p, &len, &h));
    CHECK(p == buf + a && len == b && h.records_count == 7);
    CHECK_EQ_INT(SM_ERR_PARSE, proto_batch_iter_next(&it, &p, &len, &h));
    CHECK(it.p == buf + a + b);
    proto_batch_iter_init(&it, buf, a + b + c);
    int n = 0;
    while (proto_batch_iter_next(&it, &p, &len, &h) == 1) n++;
    CHECK_EQ_INT(3, n);
}

static void test_truncation_every_byte(void) {
    uint8_t buf[4096], copy[4096];
    size_t len = build_sample(buf, sizeof(buf), 6);
    proto_batch_header_t h;
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(copy, buf, cut);
        CHECK(proto_batch_validate(copy, cut, &h) != SM_OK);
        proto_batch_iter_t it;
        const uint8_t *p;
        size_t l;
        proto_batch_iter_init(&it, copy, cut);
        CHECK(proto_batch_iter_next(&it, &p, &l, &h) != 1);
    }
}

static void test_every_bit_flip(void) {
    uint8_t buf[4096];
    size_t len = build_sample(buf, sizeof(buf), 4);
    proto_batch_header_t h;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1 << bit);
            int rc = proto_batch_validate(buf, len, &h);
            /* Base offset and leader epoch are outside the CRC; everything
             * else must be caught. */
            if (i >= PROTO_BATCH_OFF_MAGIC) CHECK(rc != SM_OK);
            buf[i] ^= (uint8_t)(1 << bit);
        }
    }
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
}

/* Writes a batch whose records area is raw (CRC fixed up), for malformed records. */
static size_t raw_batch(uint8_t *buf, const uint8_t *records, size_t rlen, int32_t count) {
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 0, -1, -1, -1};
    proto_batch_builder_init(&b, buf, 4096, &o);
    size_t len;
    proto_batch_builder_finish(&b, &len);
    memcpy(buf + PROTO_BATCH_HEADER_SIZE, records, rlen);
    len = PROTO_BATCH_HEADER_SIZE + rlen;
    sm_writer_t w = sm_writer_make(buf + PROTO_BATCH_OFF_LENGTH, 4);
    sm_wr_i32(&w, (int32_t)(len - PROTO_BATCH_LOG_OVERHEAD));
    w = sm_writer_make(buf + PROTO_BATCH_OFF_LAST_OFFSET_DELTA, 4);
    sm_wr_i32(&w, count > 0 ? count - 1 : 0);
    w = sm_writer_make(buf + PROTO_BATCH_OFF_RECORDS_COUNT, 4);
    sm_wr_i32(&w, count);
    proto_batch_update_crc(buf, len);
    return len;
}

static void test_malformed_records(void) {
    uint8_t buf[4096];
    proto_batch_header_t h;
    static const uint8_t good[] = {0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, raw_batch(buf, good, sizeof(good), 1), &h));
    /* record length one too long / too short */
    uint8_t longer[] = {0x12, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};
    CHECK(proto_batch_validate(buf, raw_batch(buf, longer, sizeof(longer), 1), &h) != SM_OK);
    uint8_t shorter[] = {0x0e, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0};
    CHECK(proto_batch_validate(buf, raw_batch(buf, shorter, sizeof(shorter), 1), &h) != SM_OK);
    /* key length beyond the record */
    uint8_t bigkey[] = {0x10, 0, 0, 0, 0x7e, 'k', 0x02, 'v', 0};
    CHECK(proto_batch_validate(buf, raw_batch(buf, bigkey, sizeof(bigkey), 1), &h) != SM_OK);
    /* negative key length other than -1 */
    uint8_t negkey[] = {0x10, 0, 0, 0, 0x03, 'k', 0x02, 'v', 0};
    CHECK(proto_batch_validate(buf, raw_batch(buf, negkey, sizeof(negkey), 1), &h) != SM_OK);
    /* overlong varint (6 continuation bytes) as the record length */
    uint8_t overlong[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0};
    CHECK(proto_batch_validate(buf, raw_batch(buf, overlong, sizeof(overlong), 1), &h) != SM_OK);
    /* count larger than the records present, and smaller (bytes left over) */
    CHECK(proto_batch_validate(buf, raw_batch(buf, good, sizeof(good), 2), &h) != SM_OK);
    uint8_t two[sizeof(good) * 2];
    memcpy(two, good, sizeof(good));
    memcpy(two + sizeof(good), good, sizeof(good));
    two[sizeof(good) + 3] = 0x02; /* second record offset delta 1 */
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, raw_batch(buf, two, sizeof(two), 2), &h));
    CHECK(proto_batch_validate(buf, raw_batch(buf, two, sizeof(two), 1), &h) != SM_OK);
    /* offset deltas out of order */
    two[sizeof(good) + 3] = 0x00;
    CHECK(proto_batch_validate(buf, raw_batch(buf, two, sizeof(two), 2), &h) != SM_OK);
    /* huge and negative counts */
    size_t len = raw_batch(buf, good, sizeof(good), 1);
    sm_writer_t w = sm_writer_make(buf + PROTO_BATCH_OFF_RECORDS_COUNT, 4);
    sm_wr_i32(&w, INT32_MAX);
    proto_batch_update_crc(buf, len);
    CHECK(proto_batch_validate(buf, len, &h) != SM_OK);
    w = sm_writer_make(buf + PROTO_BATCH_OFF_RECORDS_COUNT, 4);
    sm_wr_i32(&w, -5);
    proto_batch_update_crc(buf, len);
    CHECK(proto_batch_validate(buf, len, &h) != SM_OK);
    /* old magic values */
    len = raw_batch(buf, good, sizeof(good), 1);
    buf[PROTO_BATCH_OFF_MAGIC] = 1;
    CHECK_EQ_INT(SM_ERR_VERSION, proto_batch_validate(buf, len, &h));
    buf[PROTO_BATCH_OFF_MAGIC] = 0;
    CHECK_EQ_INT(SM_ERR_VERSION, proto_batch_validate(buf, len, &h));
    /* unknown compression codec */
    len = raw_batch(buf, good, sizeof(good), 1);
    buf[PROTO_BATCH_OFF_ATTRIBUTES + 1] = 5;
    proto_batch_update_crc(buf, len);
    CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate(buf, len, &h));
    /* compressed batches are recognised; their records stay opaque */
    buf[PROTO_BATCH_OFF_ATTRIBUTES + 1] = PROTO_COMPRESSION_ZSTD;
    proto_batch_update_crc(buf, len);
    CHECK_EQ_INT(SM_OK, proto_batch_validate(buf, len, &h));
    CHECK_EQ_INT(PROTO_COMPRESSION_ZSTD, proto_batch_compression(&h));
}

static void test_builder_overflow_is_sticky(void) {
    uint8_t buf[100];
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 0, -1, -1, -1};
    proto_batch_builder_init(&b, buf, sizeof(buf), &o);
    uint8_t big[64] = {0};
    CHECK_EQ_INT(SM_ERR_SPACE, proto_batch_builder_add(&b, 0, SM_BYTES_NULL, (sm_bytes_t){big, 64}, NULL, 0));
    CHECK_EQ_INT(SM_ERR_SPACE, proto_batch_builder_add(&b, 0, SM_BYTES_NULL, SM_BYTES_NULL, NULL, 0));
    size_t len;
    CHECK_EQ_INT(SM_ERR_SPACE, proto_batch_builder_finish(&b, &len));
}

int main(void) {
    RUN(test_build_validate_iterate);
    RUN(test_exact_encoding);
    RUN(test_patches);
    RUN(test_batch_iterator);
    RUN(test_truncation_every_byte);
    RUN(test_every_bit_flip);
    RUN(test_malformed_records);
    RUN(test_builder_overflow_is_sticky);
    return t_summary("records");
}
