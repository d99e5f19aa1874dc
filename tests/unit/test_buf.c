/*
 * Wire readers and writers of base/buf.h: varints at their edges and their
 * exact bytes, overlong and truncated varints, fixed-size reads running out,
 * classic and compact lengths with null, array count bounds, full writers.
 */
#include "base/buf.h"
#include "test.h"

static void test_varints(void) {
    static const int64_t vals[] = {0,   1,         -1,        63,        -64,      64,
                                   300, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        uint8_t buf[16];
        sm_writer_t w = sm_writer_make(buf, sizeof(buf));
        CHECK_EQ_INT(SM_OK, sm_wr_varlong(&w, vals[i]));
        CHECK_EQ_INT(sm_varlong_size(vals[i]), (size_t)(w.p - buf));
        sm_reader_t r = sm_reader_make(buf, (size_t)(w.p - buf));
        int64_t back = 0;
        CHECK_EQ_INT(SM_OK, sm_rd_varlong(&r, &back));
        CHECK(back == vals[i]);
        if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX) {
            w = sm_writer_make(buf, sizeof(buf));
            CHECK_EQ_INT(SM_OK, sm_wr_varint(&w, (int32_t)vals[i]));
            r = sm_reader_make(buf, (size_t)(w.p - buf));
            int32_t b32 = 0;
            CHECK_EQ_INT(SM_OK, sm_rd_varint(&r, &b32));
            CHECK_EQ_INT(vals[i], b32);
        }
    }
    /* overlong: six bytes for a 32-bit varint, eleven for a 64-bit one */
    uint8_t over[12] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    sm_reader_t r = sm_reader_make(over, 6);
    uint32_t u;
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_uvarint(&r, &u));
    memset(over, 0x80, 11);
    over[11] = 0;
    r = sm_reader_make(over, 12);
    uint64_t u64;
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_uvarlong(&r, &u64));
    /* fifth byte with bits beyond 32 */
    uint8_t big[5] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    r = sm_reader_make(big, 5);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_uvarint(&r, &u));
    /* truncated */
    uint8_t trunc[2] = {0x80, 0x80};
    r = sm_reader_make(trunc, 2);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_uvarint(&r, &u));
}

static void test_strings_and_bytes(void) {
    uint8_t buf[64];
    sm_writer_t w = sm_writer_make(buf, sizeof(buf));
    CHECK_EQ_INT(SM_OK, sm_wr_string(&w, SM_STR_LIT("abc"), false));
    CHECK_EQ_INT(SM_OK, sm_wr_string(&w, SM_STR_NULL, false));
    CHECK_EQ_INT(SM_OK, sm_wr_string(&w, SM_STR_LIT("xy"), true));
    CHECK_EQ_INT(SM_OK, sm_wr_string(&w, SM_STR_NULL, true));
    CHECK_EQ_INT(SM_OK, sm_wr_bytes(&w, (sm_bytes_t){(const uint8_t *)"q", 1}, false));
    CHECK_EQ_INT(SM_OK, sm_wr_bytes(&w, SM_BYTES_NULL, true));
    sm_reader_t r = sm_reader_make(buf, (size_t)(w.p - buf));
    sm_str_t s;
    sm_bytes_t b;
    CHECK(sm_rd_string(&r, false, false, &s) == SM_OK && s.len == 3 &&
          memcmp(s.ptr, "abc", 3) == 0);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_string(&r, false, false, &s)); /* null where not nullable */
    r = sm_reader_make(buf + 5, (size_t)(w.p - buf) - 5);
    CHECK(sm_rd_string(&r, false, true, &s) == SM_OK && s.len == -1);
    CHECK(sm_rd_string(&r, true, false, &s) == SM_OK && s.len == 2);
    CHECK(sm_rd_string(&r, true, true, &s) == SM_OK && s.len == -1);
    CHECK(sm_rd_bytes(&r, false, false, &b) == SM_OK && b.len == 1);
    CHECK(sm_rd_bytes(&r, true, true, &b) == SM_OK && b.len == -1);
    CHECK_EQ_INT(0, sm_rd_left(&r));
    /* a length beyond the buffer, and a negative length other than -1 */
    uint8_t bad[6] = {0x00, 0x10, 'a', 'b'};
    r = sm_reader_make(bad, 4);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_string(&r, false, true, &s));
    uint8_t neg[4] = {0xff, 0xfe};
    r = sm_reader_make(neg, 2);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_string(&r, false, true, &s));
    /* classic strings longer than int16 cannot be written */
    static char longstr[40000];
    memset(longstr, 'a', sizeof(longstr));
    uint8_t *lb = malloc(50000);
    w = sm_writer_make(lb, 50000);
    CHECK_EQ_INT(SM_ERR_RANGE, sm_wr_string(&w, (sm_str_t){longstr, 40000}, false));
    free(lb);
}

static void test_arrays_and_full_writers(void) {
    uint8_t buf[8] = {0x7f, 0xff, 0xff, 0xff};
    sm_reader_t r = sm_reader_make(buf, 8);
    int32_t n;
    /* 2^31-1 elements of at least 4 bytes in 4 remaining bytes */
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_array_len(&r, false, false, 4, &n));
    uint8_t ok[8] = {0, 0, 0, 1, 1, 2, 3, 4};
    r = sm_reader_make(ok, 8);
    CHECK(sm_rd_array_len(&r, false, false, 4, &n) == SM_OK && n == 1);
    uint8_t nul[4] = {0xff, 0xff, 0xff, 0xff};
    r = sm_reader_make(nul, 4);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_array_len(&r, false, false, 1, &n));
    r = sm_reader_make(nul, 4);
    CHECK(sm_rd_array_len(&r, false, true, 1, &n) == SM_OK && n == -1);
    uint8_t small[3];
    sm_writer_t w = sm_writer_make(small, 3);
    CHECK_EQ_INT(SM_ERR_SPACE, sm_wr_i32(&w, 5));
    CHECK_EQ_INT(SM_OK, sm_wr_i16(&w, 5));
    CHECK_EQ_INT(SM_ERR_SPACE, sm_wr_uvarint(&w, 300));
    CHECK_EQ_INT(SM_OK, sm_wr_u8(&w, 1));
    CHECK_EQ_INT(SM_ERR_SPACE, sm_wr_u8(&w, 1));
}

/* The exact bytes of zig-zag varints, as Kafka's ByteUtils writes them. */
static void test_varint_encodings(void) {
    static const struct {
        int64_t v;
        bool is32;
        uint8_t len;
        uint8_t bytes[10];
    } cases[] = {
        {0, true, 1, {0x00}},
        {-1, true, 1, {0x01}},
        {1, true, 1, {0x02}},
        {63, true, 1, {0x7e}},
        {-64, true, 1, {0x7f}},
        {64, true, 2, {0x80, 0x01}},
        {INT32_MAX, true, 5, {0xfe, 0xff, 0xff, 0xff, 0x0f}},
        {INT32_MIN, true, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
        {INT64_MAX, false, 10, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
        {INT64_MIN, false, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[10];
        sm_writer_t w = sm_writer_make(buf, sizeof(buf));
        if (cases[i].is32) {
            CHECK_EQ_INT(SM_OK, sm_wr_varint(&w, (int32_t)cases[i].v));
            CHECK_EQ_INT(cases[i].len, sm_varint_size((int32_t)cases[i].v));
        } else {
            CHECK_EQ_INT(SM_OK, sm_wr_varlong(&w, cases[i].v));
        }
        CHECK_EQ_INT(cases[i].len, sm_varlong_size(cases[i].v));
        CHECK_EQ_INT(cases[i].len, (size_t)(w.p - buf));
        CHECK_EQ_MEM(cases[i].bytes, buf, cases[i].len);
        /* Every proper prefix is a truncated varint: SM_ERR_PARSE. */
        for (size_t cut = 0; cut < cases[i].len; cut++) {
            sm_reader_t r = sm_reader_make(buf, cut);
            int32_t v32;
            int64_t v64;
            CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_varlong(&r, &v64));
            r = sm_reader_make(buf, cut);
            CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_varint(&r, &v32));
        }
        /* A 64-bit value past 32 bits does not read as a varint. */
        if (!cases[i].is32) {
            sm_reader_t r = sm_reader_make(buf, cases[i].len);
            int32_t v32;
            CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_varint(&r, &v32));
        }
    }
    /* unsigned extremes */
    uint8_t buf[10];
    sm_writer_t w = sm_writer_make(buf, sizeof(buf));
    CHECK_EQ_INT(SM_OK, sm_wr_uvarint(&w, UINT32_MAX));
    CHECK_EQ_INT(5, (size_t)(w.p - buf));
    sm_reader_t r = sm_reader_make(buf, 5);
    uint32_t u32;
    CHECK(sm_rd_uvarint(&r, &u32) == SM_OK && u32 == UINT32_MAX);
    w = sm_writer_make(buf, sizeof(buf));
    CHECK_EQ_INT(SM_OK, sm_wr_uvarlong(&w, UINT64_MAX));
    CHECK_EQ_INT(10, (size_t)(w.p - buf));
    r = sm_reader_make(buf, 10);
    uint64_t u64;
    CHECK(sm_rd_uvarlong(&r, &u64) == SM_OK && u64 == UINT64_MAX);
    /* tenth byte carrying more than the 64th bit */
    buf[9] = 0x02;
    r = sm_reader_make(buf, 10);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_uvarlong(&r, &u64));
    /* overlong zero: five bytes is the most a varint may take, ten for a varlong */
    static const uint8_t zero5[] = {0x80, 0x80, 0x80, 0x80, 0x00};
    r = sm_reader_make(zero5, sizeof(zero5));
    CHECK(sm_rd_uvarint(&r, &u32) == SM_OK && u32 == 0 && sm_rd_left(&r) == 0);
    static const uint8_t zero6[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    r = sm_reader_make(zero6, sizeof(zero6));
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_uvarint(&r, &u32));
}

/* Fixed-size reads fail without moving the cursor when bytes run out. */
static void test_fixed_reads(void) {
    static const uint8_t b[8] = {0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
    sm_reader_t r = sm_reader_make(b, 8);
    int16_t v16;
    int32_t v32;
    int64_t v64;
    CHECK(sm_rd_i16(&r, &v16) == SM_OK && v16 == (int16_t)0x8001);
    CHECK(sm_rd_i32(&r, &v32) == SM_OK && v32 == 0x02030405);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_i32(&r, &v32));
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_i64(&r, &v64));
    CHECK_EQ_INT(2, sm_rd_left(&r));
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_skip(&r, 3));
    CHECK_EQ_INT(SM_OK, sm_rd_skip(&r, 2));
    uint8_t u8;
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_u8(&r, &u8));
    sm_uuid_t id;
    r = sm_reader_make(b, 8);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_uuid(&r, &id));
    const uint8_t *sl;
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_slice(&r, 9, &sl));
    CHECK(sm_rd_slice(&r, 8, &sl) == SM_OK && sl == b);
    r = sm_reader_make(b, 8);
    CHECK(sm_rd_i64(&r, &v64) == SM_OK && (uint64_t)v64 == 0x8001020304050607ull);
}

/* Compact lengths: 0 is null, 1 is empty, n+1 is n; classic: -1 null. */
static void test_length_prefixes(void) {
    uint8_t buf[32];
    sm_writer_t w = sm_writer_make(buf, sizeof(buf));
    CHECK_EQ_INT(SM_OK, sm_wr_string(&w, SM_STR_NULL, true));
    CHECK_EQ_INT(SM_OK, sm_wr_string(&w, SM_STR_LIT(""), true));
    CHECK_EQ_INT(SM_OK, sm_wr_bytes(&w, SM_BYTES_NULL, false));
    CHECK_EQ_INT(SM_OK, sm_wr_bytes(&w, (sm_bytes_t){(const uint8_t *)"", 0}, false));
    CHECK_EQ_INT(SM_OK, sm_wr_string(&w, SM_STR_NULL, false));
    static const uint8_t expect[] = {0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff};
    CHECK_EQ_INT(sizeof(expect), (size_t)(w.p - buf));
    CHECK_EQ_MEM(expect, buf, sizeof(expect));
    CHECK_EQ_INT(1, sm_string_size(SM_STR_NULL, true));
    CHECK_EQ_INT(2, sm_string_size(SM_STR_NULL, false));
    CHECK_EQ_INT(4 + 3, sm_bytes_size((sm_bytes_t){(const uint8_t *)"abc", 3}, false));
    CHECK_EQ_INT(1 + 3, sm_bytes_size((sm_bytes_t){(const uint8_t *)"abc", 3}, true));
    sm_reader_t r = sm_reader_make(buf, sizeof(expect));
    sm_str_t s;
    sm_bytes_t b;
    CHECK(sm_rd_string(&r, true, true, &s) == SM_OK && s.len == -1 && s.ptr == NULL);
    CHECK(sm_rd_string(&r, true, false, &s) == SM_OK && s.len == 0);
    CHECK(sm_rd_bytes(&r, false, true, &b) == SM_OK && b.len == -1);
    CHECK(sm_rd_bytes(&r, false, false, &b) == SM_OK && b.len == 0);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_string(&r, false, false, &s)); /* null, not nullable */
    /* a compact null where null is not allowed */
    r = sm_reader_make(buf, 1);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_bytes(&r, true, false, &b));
    /* compact lengths above INT32_MAX, classic bytes length -2, a compact
     * length beyond the data */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    r = sm_reader_make(huge, sizeof(huge));
    int32_t len;
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_ulen(&r, &len));
    static const uint8_t neg2[] = {0xff, 0xff, 0xff, 0xfe};
    r = sm_reader_make(neg2, sizeof(neg2));
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_bytes(&r, false, true, &b));
    static const uint8_t past[] = {0x05, 'a', 'b'};
    r = sm_reader_make(past, sizeof(past));
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_string(&r, true, true, &s));
    /* classic int32 bytes length beyond the data */
    static const uint8_t past32[] = {0x7f, 0xff, 0xff, 0xff, 'a'};
    r = sm_reader_make(past32, sizeof(past32));
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_bytes(&r, false, true, &b));
}

/* Array counts are bounded by remaining bytes / smallest element size. */
static void test_array_bounds(void) {
    uint8_t buf[16] = {0, 0, 0, 3};
    sm_reader_t r = sm_reader_make(buf, 4 + 12);
    int32_t n;
    CHECK(sm_rd_array_len(&r, false, false, 4, &n) == SM_OK && n == 3); /* exactly fits */
    r = sm_reader_make(buf, 4 + 11);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_array_len(&r, false, false, 4, &n)); /* one byte short */
    /* min_elem_size 0 still counts a byte per element (as Kafka's readers):
     * no count of empty-looking elements gets past the frame */
    r = sm_reader_make(buf, 4);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_array_len(&r, false, false, 0, &n));
    r = sm_reader_make(buf, 4 + 3);
    CHECK(sm_rd_array_len(&r, false, false, 0, &n) == SM_OK && n == 3);
    /* compact: stored n + 1 */
    uint8_t c[8] = {0x04, 1, 2, 3};
    r = sm_reader_make(c, 4);
    CHECK(sm_rd_array_len(&r, true, false, 1, &n) == SM_OK && n == 3);
    r = sm_reader_make(c, 3);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_array_len(&r, true, false, 1, &n));
    uint8_t cnull[1] = {0x00};
    r = sm_reader_make(cnull, 1);
    CHECK(sm_rd_array_len(&r, true, true, 1, &n) == SM_OK && n == -1);
    r = sm_reader_make(cnull, 1);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_array_len(&r, true, false, 1, &n));
    /* a huge compact count */
    uint8_t chuge[5] = {0xff, 0xff, 0xff, 0xff, 0x07};
    r = sm_reader_make(chuge, 5);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_array_len(&r, true, false, 1, &n));
    /* negative classic counts other than -1 */
    uint8_t neg[4] = {0xff, 0xff, 0xff, 0xfe};
    r = sm_reader_make(neg, 4);
    CHECK_EQ_INT(SM_ERR_PARSE, sm_rd_array_len(&r, false, true, 1, &n));
}

/* Every writer reports SM_ERR_SPACE instead of writing past the end. */
static void test_writers_full(void) {
    uint8_t buf[16];
    sm_writer_t w;
    sm_uuid_t id = {{0}};
    for (size_t cap = 0; cap < 16; cap++) {
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 1 ? SM_OK : SM_ERR_SPACE, sm_wr_i8(&w, 1));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 2 ? SM_OK : SM_ERR_SPACE, sm_wr_i16(&w, 1));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 4 ? SM_OK : SM_ERR_SPACE, sm_wr_i32(&w, 1));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 8 ? SM_OK : SM_ERR_SPACE, sm_wr_i64(&w, 1));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 8 ? SM_OK : SM_ERR_SPACE, sm_wr_f64(&w, 1.5));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 16 ? SM_OK : SM_ERR_SPACE, sm_wr_uuid(&w, &id));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 5 ? SM_OK : SM_ERR_SPACE, sm_wr_varint(&w, INT32_MIN));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 10 ? SM_OK : SM_ERR_SPACE, sm_wr_varlong(&w, INT64_MIN));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 2 + 3 ? SM_OK : SM_ERR_SPACE,
                     sm_wr_string(&w, SM_STR_LIT("abc"), false));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 1 + 3 ? SM_OK : SM_ERR_SPACE,
                     sm_wr_string(&w, SM_STR_LIT("abc"), true));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 4 + 3 ? SM_OK : SM_ERR_SPACE,
                     sm_wr_bytes(&w, (sm_bytes_t){(const uint8_t *)"abc", 3}, false));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 4 ? SM_OK : SM_ERR_SPACE, sm_wr_array_len(&w, 7, false));
        w = sm_writer_make(buf, cap);
        CHECK_EQ_INT(cap >= 3 ? SM_OK : SM_ERR_SPACE, sm_wr_raw(&w, "xyz", 3));
        CHECK(w.p <= buf + cap);
    }
    /* a records field into a writer whose hole list is full */
    size_t pos[1];
    sm_holes_t holes = {0, 1, pos};
    w = sm_writer_make(buf, sizeof(buf));
    w.holes = &holes;
    CHECK_EQ_INT(SM_OK, sm_wr_records(&w, (sm_bytes_t){NULL, 100}, false));
    CHECK_EQ_INT(1, holes.n);
    CHECK_EQ_INT(4, pos[0]);
    CHECK_EQ_INT(SM_ERR_SPACE, sm_wr_records(&w, (sm_bytes_t){NULL, 100}, false));
}

int main(void) {
    RUN(test_varints);
    RUN(test_varint_encodings);
    RUN(test_fixed_reads);
    RUN(test_strings_and_bytes);
    RUN(test_length_prefixes);
    RUN(test_arrays_and_full_writers);
    RUN(test_array_bounds);
    RUN(test_writers_full);
    return t_summary("buf");
}
