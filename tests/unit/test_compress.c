/*
 * Compression codecs: round trips of every codec, bounded decompression
 * (a bomb is refused without being allocated), truncated and garbage input,
 * xerial snappy framing, and validation of a whole compressed batch.
 */
#include "base/err.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "test.h"

static const int codecs[] = {PROTO_COMPRESSION_GZIP, PROTO_COMPRESSION_SNAPPY, PROTO_COMPRESSION_LZ4,
                             PROTO_COMPRESSION_ZSTD};

static void fill(uint8_t *p, size_t n, int compressible) {
    uint64_t s = 42;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1;
        p[i] = compressible ? (uint8_t)("abcdefgh"[i % 8] + (i / 4096) % 3) : (uint8_t)(s >> 56);
    }
}

static void test_round_trips(void) {
    static const size_t sizes[] = {0, 1, 100, 65536, 1 << 20};
    for (size_t c = 0; c < 4; c++) {
        for (size_t k = 0; k < 5; k++) {
            for (int comp = 0; comp < 2; comp++) {
                size_t n = sizes[k];
                uint8_t *in = malloc(n + 1), *out = malloc(proto_compress_bound(codecs[c], n)),
                        *back = malloc(n + 1);
                fill(in, n, comp);
                size_t clen = 0, dlen = 0;
                CHECK_EQ_INT(SM_OK, proto_compress(codecs[c], -1, in, n, out, proto_compress_bound(codecs[c], n), &clen));
                CHECK_EQ_INT(SM_OK, proto_decompress(codecs[c], out, clen, back, n + 1, &dlen));
                CHECK_EQ_INT(n, dlen);
                CHECK(n == 0 || memcmp(in, back, n) == 0);
                if (n >= 100) {
                    /* one byte too little room: refused, not overrun */
                    uint8_t *small = malloc(n - 1);
                    CHECK_EQ_INT(SM_ERR_RANGE, proto_decompress(codecs[c], out, clen, small, n - 1, &dlen));
                    free(small);
                    /* truncated input */
                    for (size_t cut = 1; cut < clen; cut += clen / 7 + 1)
                        CHECK(proto_decompress(codecs[c], out, cut, back, n + 1, &dlen) != SM_OK ||
                              dlen < n);
                }
                free(in);
                free(out);
                free(back);
            }
        }
    }
}

static void test_bomb_is_refused(void) {
    /* 100 MiB of zeros compresses to little; a 1 MiB bound refuses it. */
    size_t n = 100u << 20;
    uint8_t *zeros = calloc(1, n);
    REQUIRE(zeros);
    for (size_t c = 0; c < 4; c++) {
        size_t cap = proto_compress_bound(codecs[c], n), clen;
        uint8_t *out = malloc(cap);
        REQUIRE(proto_compress(codecs[c], -1, zeros, n, out, cap, &clen) == SM_OK);
        CHECK(clen < (8u << 20));
        uint8_t *small = malloc(1 << 20);
        size_t dlen;
        CHECK_EQ_INT(SM_ERR_RANGE, proto_decompress(codecs[c], out, clen, small, 1 << 20, &dlen));
        free(small);
        free(out);
    }
    free(zeros);
}

static void test_garbage(void) {
    uint8_t junk[4096], out[8192];
    fill(junk, sizeof(junk), 0);
    size_t dlen;
    for (size_t c = 0; c < 4; c++)
        CHECK(proto_decompress(codecs[c], junk, sizeof(junk), out, sizeof(out), &dlen) != SM_OK);
    CHECK_EQ_INT(SM_ERR_VERSION, proto_decompress(7, junk, 10, out, sizeof(out), &dlen));
}

static void test_compressed_batch_validation(void) {
    uint8_t plain[8192];
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 1000, -1, -1, -1};
    proto_batch_builder_init(&b, plain, sizeof(plain), &o);
    for (int i = 0; i < 50; i++)
        proto_batch_builder_add(&b, 1000 + i, (sm_bytes_t){(const uint8_t *)"key", 3},
                                (sm_bytes_t){(const uint8_t *)"value-value-value", 17}, NULL, 0);
    size_t plen;
    REQUIRE(proto_batch_builder_finish(&b, &plen) == SM_OK);
    for (size_t c = 0; c < 4; c++) {
        static uint8_t batch[65536];
        memcpy(batch, plain, PROTO_BATCH_HEADER_SIZE);
        size_t clen;
        REQUIRE(proto_compress(codecs[c], -1, plain + PROTO_BATCH_HEADER_SIZE, plen - PROTO_BATCH_HEADER_SIZE,
                               batch + PROTO_BATCH_HEADER_SIZE, sizeof(batch) - PROTO_BATCH_HEADER_SIZE,
                               &clen) == SM_OK);
        size_t len = PROTO_BATCH_HEADER_SIZE + clen;
        batch[PROTO_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)codecs[c];
        uint32_t blen = (uint32_t)(len - PROTO_BATCH_LOG_OVERHEAD);
        batch[8] = (uint8_t)(blen >> 24);
        batch[9] = (uint8_t)(blen >> 16);
        batch[10] = (uint8_t)(blen >> 8);
        batch[11] = (uint8_t)blen;
        proto_batch_update_crc(batch, len);
        proto_batch_header_t h;
        CHECK_EQ_INT(SM_OK, proto_batch_validate(batch, len, &h));
        CHECK_EQ_INT(SM_OK, proto_batch_validate_compressed(batch, len, 1 << 20));
        /* too small a bound */
        CHECK_EQ_INT(SM_ERR_RANGE, proto_batch_validate_compressed(batch, len, 100));
        /* a wrong record count inside */
        batch[PROTO_BATCH_OFF_RECORDS_COUNT + 3] = 49;
        proto_batch_update_crc(batch, len);
        CHECK(proto_batch_validate_compressed(batch, len, 1 << 20) != SM_OK);
    }
}

int main(void) {
    RUN(test_round_trips);
    RUN(test_bomb_is_refused);
    RUN(test_garbage);
    RUN(test_compressed_batch_validation);
    return t_summary("compress");
}
