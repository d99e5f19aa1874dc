/* CRC-32C: known vectors, incremental use, and hardware == software. */
#include "base/crc32c.h"
#include "test.h"

static void test_known_vectors(void) {
    uint8_t buf[32];
    CHECK_EQ_INT(0xE3069283u, sm_crc32c(0, "123456789", 9));
    CHECK_EQ_INT(0xE3069283u, sm_crc32c_sw(0, "123456789", 9));
    CHECK_EQ_INT(0, sm_crc32c(0, "", 0));
    memset(buf, 0, 32);
    CHECK_EQ_INT(0x8A9136AAu, sm_crc32c(0, buf, 32));
    memset(buf, 0xff, 32);
    CHECK_EQ_INT(0x62A8AB43u, sm_crc32c(0, buf, 32));
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    CHECK_EQ_INT(0x46DD794Eu, sm_crc32c(0, buf, 32));
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    CHECK_EQ_INT(0x113FDB5Cu, sm_crc32c(0, buf, 32));
}

static void test_incremental_and_hw_match(void) {
    uint8_t buf[512];
    uint64_t s = 7;
    for (size_t i = 0; i < sizeof(buf); i++) {
        s = s * 6364136223846793005ull + 1;
        buf[i] = (uint8_t)(s >> 56);
    }
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; off + len <= 300; len++) {
            uint32_t one = sm_crc32c(0, buf + off, len);
            CHECK_EQ_INT(sm_crc32c_sw(0, buf + off, len), one);
            size_t half = len / 3;
            uint32_t inc = sm_crc32c(sm_crc32c(0, buf + off, half), buf + off + half, len - half);
            CHECK_EQ_INT(one, inc);
        }
    }
    fprintf(stderr, "hardware crc32c: %s\n", sm_crc32c_hw_available() ? "yes" : "no");
}

int main(void) {
    RUN(test_known_vectors);
    RUN(test_incremental_and_hw_match);
    return t_summary("crc32c");
}
