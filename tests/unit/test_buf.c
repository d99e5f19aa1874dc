/* Wire readers and writers: varints at their edges, overlong and truncated
 * varints, classic and compact lengths, array bounds, full writers. */
#include "base/buf.h"
#include "test.h"

static void test_varints(void) {
    static const int64_t vals[] = {0, 1, -1, 63, -64, 64, 300, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
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
    CHECK(sm_rd_string(&r, false, false, &s) == SM_OK && s.len == 3 && memcmp(s.ptr, "abc", 3) == 0);
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

int main(void) {
    RUN(test_varints);
    RUN(test_strings_and_bytes);
    RUN(test_arrays_and_full_writers);
    return t_summary("buf");
}
