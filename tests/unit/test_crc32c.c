/*
 * CRC-32C: published check values, incremental use (split at every point),
 * and the hardware path agreeing with the portable one on every length 0..300
 * at every alignment and on a large buffer. Seeded, deterministic data.
 */
#include "base/crc32c.h"
#include "test.h"

#define SEED 0x5eed2024u

static uint64_t rng_state;
static uint8_t rng_byte(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint8_t)(rng_state >> 56);
}
static void fill_random(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = rng_byte();
}

/* The known vectors (RFC 3720 B.4 and the usual "123456789" check value) on
 * both paths. */
static void test_known_vectors(void) {
    uint8_t buf[32];
    for (int path = 0; path < 2; path++) {
        uint32_t (*crc)(uint32_t, const void *, size_t) = path ? sm_crc32c_sw : sm_crc32c;
        CHECK_EQ_INT(0xE3069283u, crc(0, "123456789", 9));
        CHECK_EQ_INT(0, crc(0, "", 0));
        CHECK_EQ_INT(0, crc(0, NULL, 0));
        memset(buf, 0, 32);
        CHECK_EQ_INT(0x8A9136AAu, crc(0, buf, 32));
        memset(buf, 0xff, 32);
        CHECK_EQ_INT(0x62A8AB43u, crc(0, buf, 32));
        for (int i = 0; i < 32; i++)
            buf[i] = (uint8_t)i;
        CHECK_EQ_INT(0x46DD794Eu, crc(0, buf, 32));
        for (int i = 0; i < 32; i++)
            buf[i] = (uint8_t)(31 - i);
        CHECK_EQ_INT(0x113FDB5Cu, crc(0, buf, 32));
        /* Extending by nothing leaves any CRC as it was. */
        CHECK_EQ_INT(0xE3069283u, crc(0xE3069283u, buf, 0));
    }
}

/* Extending a CRC piece by piece gives the one-shot CRC, wherever the split is. */
static void test_incremental_every_split(void) {
    uint8_t buf[300];
    rng_state = SEED;
    fill_random(buf, sizeof(buf));
    for (size_t len = 0; len <= sizeof(buf); len += 37) {
        uint32_t one = sm_crc32c(0, buf, len);
        for (size_t cut = 0; cut <= len; cut++) {
            CHECK_EQ_INT(one, sm_crc32c(sm_crc32c(0, buf, cut), buf + cut, len - cut));
            CHECK_EQ_INT(one, sm_crc32c_sw(sm_crc32c_sw(0, buf, cut), buf + cut, len - cut));
            /* mixing the paths mid-stream */
            CHECK_EQ_INT(one, sm_crc32c_sw(sm_crc32c(0, buf, cut), buf + cut, len - cut));
        }
    }
    /* byte at a time */
    uint32_t c = 0;
    for (size_t i = 0; i < sizeof(buf); i++)
        c = sm_crc32c(c, buf + i, 1);
    CHECK_EQ_INT(sm_crc32c_sw(0, buf, sizeof(buf)), c);
}

/* hw == sw for every length 0..300 starting at every offset 0..15 (so the
 * byte-wise head, the 8-byte body and the tail all take every shape). */
static void test_hw_matches_sw(void) {
    enum { MAXLEN = 300, MAXOFF = 16 };
    uint8_t *buf = malloc(MAXLEN + MAXOFF);
    REQUIRE(buf != NULL);
    rng_state = SEED;
    fill_random(buf, MAXLEN + MAXOFF);
    int mismatches = 0;
    for (size_t off = 0; off < MAXOFF; off++) {
        for (size_t len = 0; len <= MAXLEN; len++) {
            uint32_t sw = sm_crc32c_sw(0, buf + off, len);
            uint32_t hw = sm_crc32c(0, buf + off, len);
            if (sw != hw) mismatches++;
            /* a nonzero starting CRC too */
            if (sm_crc32c(0x12345678u, buf + off, len) != sm_crc32c_sw(0x12345678u, buf + off, len))
                mismatches++;
        }
    }
    CHECK_EQ_INT(0, mismatches);
    free(buf);

    size_t big = (1u << 20) + 13;
    buf = malloc(big);
    REQUIRE(buf != NULL);
    fill_random(buf, big);
    CHECK_EQ_INT(sm_crc32c_sw(0, buf + 3, big - 3), sm_crc32c(0, buf + 3, big - 3));
    free(buf);
    fprintf(stderr, "seed %#x, hardware crc32c: %s\n", SEED,
            sm_crc32c_hw_available() ? "yes" : "no");
}

/* A single flipped bit anywhere always changes the CRC (CRCs catch every
 * one-bit error), which the record batch tests lean on. */
static void test_single_bit_errors_detected(void) {
    uint8_t buf[128];
    rng_state = SEED + 1;
    fill_random(buf, sizeof(buf));
    uint32_t good = sm_crc32c(0, buf, sizeof(buf));
    int missed = 0;
    for (size_t i = 0; i < sizeof(buf); i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            if (sm_crc32c(0, buf, sizeof(buf)) == good) missed++;
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK_EQ_INT(0, missed);
}

int main(void) {
    RUN(test_known_vectors);
    RUN(test_incremental_every_split);
    RUN(test_hw_matches_sw);
    RUN(test_single_bit_errors_detected);
    return t_summary("crc32c");
}
