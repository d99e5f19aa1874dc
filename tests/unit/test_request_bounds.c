/*
 * What decoding a request may allocate: arrays whose elements compute to zero
 * bytes on the wire are still bounded by the frame, crafted counts fail
 * before any allocation, the arena never reserves past its limit
 * (proto_decode_arena_limit), and every captured client request decodes
 * within that limit.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "protocol/request.h"
#include "test.h"

/* Decodes body as (api, version) under the limit for a frame of that size;
 * returns the status and the bytes the arena reserved. */
static int decode_body(int16_t key, int16_t version, const uint8_t *body, size_t len,
                       size_t *reserved) {
    const proto_api_desc_t *api = proto_api_lookup(key);
    sm_arena_t a;
    sm_arena_init(&a, proto_decode_arena_limit(len));
    void *msg = malloc(api->request->struct_size);
    sm_reader_t r = sm_reader_make(body, len);
    int rc = api->request->decode(&r, &a, version, msg);
    *reserved = a.reserved;
    sm_arena_free(&a);
    free(msg);
    return rc;
}

static void test_zero_size_elements_are_bounded_by_the_frame(void) {
    /* The generator computes a zero-byte smallest element for these arrays
     * (their fields belong to later versions than some the schema has); a
     * count of 20,000 with no elements behind it used to allocate and zero
     * 20,000 elements before failing. */
    /* DeleteTopics v6: Topics is a compact array (count + 1 as a varint). */
    uint8_t delete_topics[] = {0xa2, 0x9c, 0x01, 0, 0, 0x75, 0x30, 0};
    size_t reserved;
    CHECK_EQ_INT(SM_ERR_PARSE, decode_body(20, 6, delete_topics, sizeof(delete_topics), &reserved));
    CHECK_EQ_INT(0, (int)reserved);
    /* Fetch v7: no topics, then ForgottenTopicsData claiming 20,000. */
    uint8_t fetch[4 + 4 + 4 + 4 + 1 + 4 + 4 + 4 + 4] = {0};
    memset(fetch, 0xff, 4);              /* replica id -1 */
    fetch[sizeof(fetch) - 4] = 0;        /* forgotten count 20000 */
    fetch[sizeof(fetch) - 3] = 0;
    fetch[sizeof(fetch) - 2] = 0x4e;
    fetch[sizeof(fetch) - 1] = 0x20;
    CHECK_EQ_INT(SM_ERR_PARSE, decode_body(1, 7, fetch, sizeof(fetch), &reserved));
    CHECK_EQ_INT(0, (int)reserved);
    /* LeaveGroup v3: group id "", then Members claiming 20,000. */
    uint8_t leave[] = {0, 0, 0, 0, 0x4e, 0x20};
    CHECK_EQ_INT(SM_ERR_PARSE, decode_body(13, 3, leave, sizeof(leave), &reserved));
    CHECK_EQ_INT(0, (int)reserved);
}

static uint64_t rng = 0x5eed;
static uint8_t rnd_byte(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t x = (uint32_t)(rng >> 33);
    /* Small counts and lengths, large ones, and anything. */
    switch (x % 4) {
    case 0: return 0;
    case 1: return (uint8_t)(x >> 8) % 4;
    case 2: return 0xff;
    default: return (uint8_t)(x >> 8);
    }
}

static void test_random_bodies_reserve_within_the_limit(void) {
    /* Every request api and version, bodies of random bytes biased to
     * counts: whatever they decode to, the arena reserves no more than the
     * limit for their size. */
    enum { LEN = 512, ROUNDS = 60 };
    uint8_t body[LEN];
    size_t worst = 0;
    for (int key = 0; key < 128; key++) {
        const proto_api_desc_t *api = proto_api_lookup((int16_t)key);
        if (!api) continue;
        for (int v = api->request->min_version; v <= api->request->max_version; v++) {
            for (int round = 0; round < ROUNDS; round++) {
                size_t len = 1 + (size_t)(rnd_byte() * 2) % LEN;
                for (size_t i = 0; i < len; i++)
                    body[i] = rnd_byte();
                size_t reserved;
                decode_body((int16_t)key, (int16_t)v, body, len, &reserved);
                if (reserved > worst) worst = reserved;
                CHECK(reserved <= proto_decode_arena_limit(len));
            }
        }
    }
    printf("  largest reservation for a body of at most %d bytes: %zu bytes\n", LEN, worst);
}

static void test_captured_requests_decode_within_the_limit(void) {
    /* Real clients' requests (tests/vectors) all fit the limit. */
    const char *dirs[] = {SAMSA_SOURCE_DIR "/tests/vectors/confluent-kafka",
                          SAMSA_SOURCE_DIR "/tests/vectors/java",
                          SAMSA_SOURCE_DIR "/tests/vectors/kcat"};
    int decoded = 0;
    double worst = 0;
    for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (!strstr(e->d_name, "-request.bin")) continue;
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", dirs[d], e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            static uint8_t frame[1 << 20];
            size_t len = fread(frame, 1, sizeof(frame), f);
            fclose(f);
            sm_arena_t a;
            sm_arena_init(&a, proto_decode_arena_limit(len));
            proto_request_t req;
            int rc = proto_request_parse(frame, len, &a, &req);
            if (rc == SM_ERR_VERSION) {
                sm_arena_free(&a);
                continue;
            }
            if (rc != SM_OK) fprintf(stderr, "  %s: %d\n", e->d_name, rc);
            CHECK_EQ_INT(SM_OK, rc);
            if ((double)a.used / (double)len > worst) worst = (double)a.used / (double)len;
            decoded++;
            sm_arena_free(&a);
        }
        closedir(dir);
    }
    printf("  %d captured requests; most decoded bytes per frame byte: %.2f\n", decoded, worst);
    CHECK(decoded > 50);
}

int main(void) {
    RUN(test_zero_size_elements_are_bounded_by_the_frame);
    RUN(test_random_bodies_reserve_within_the_limit);
    RUN(test_captured_requests_decode_within_the_limit);
    return t_summary("request_bounds");
}
