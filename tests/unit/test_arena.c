/*
 * The per-request arena (base/arena.h): 16-byte alignment, zeroed memory even
 * when reused, the byte limit, size overflow, blocks larger than a chunk,
 * string copies, and reset. Allocations are filled and checked afterwards, so
 * overlapping blocks show up (and ASan sees writes past a chunk).
 */
#include "base/arena.h"
#include "test.h"

#include <stdint.h>

#define SEED 0xa7e4au

static uint64_t rng_state;
static uint32_t rng_next(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* Many allocations of mixed sizes: each aligned, zeroed, and untouched by the
 * others (every block filled with its own byte, checked at the end). */
static void test_alignment_zeroing_no_overlap(void) {
    enum { N = 20000 };
    sm_arena_t a;
    sm_arena_init(&a, 0);
    static uint8_t *ptrs[N];
    static size_t sizes[N];
    rng_state = SEED;
    int misaligned = 0, dirty = 0, overlapped = 0;
    for (int i = 0; i < N; i++) {
        /* mostly small, sometimes a few KiB, now and then beyond a chunk */
        uint32_t r = rng_next();
        sizes[i] = r % 100 < 90 ? r % 97 : r % 100 < 99 ? r % 5000 : 70000 + r % 50000;
        ptrs[i] = sm_arena_alloc(&a, sizes[i]);
        REQUIRE(ptrs[i] != NULL);
        misaligned += ((uintptr_t)ptrs[i] & 15) != 0;
        dirty += !all_zero(ptrs[i], sizes[i]);
        memset(ptrs[i], (uint8_t)(i * 7 + 1), sizes[i]);
    }
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < sizes[i]; k++) {
            if (ptrs[i][k] != (uint8_t)(i * 7 + 1)) {
                overlapped++;
                break;
            }
        }
    }
    CHECK_EQ_INT(0, misaligned);
    CHECK_EQ_INT(0, dirty);
    CHECK_EQ_INT(0, overlapped);
    /* used counts what was handed out, padding included */
    size_t expect = 0;
    for (int i = 0; i < N; i++)
        expect += sizes[i] ? (sizes[i] + 15) / 16 * 16 : 16;
    CHECK_EQ_INT(expect, a.used);
    fprintf(stderr, "seed %#x\n", SEED);
    sm_arena_free(&a);
}

/* Memory comes back zeroed after a reset, though the process has just had it
 * dirty. Zero-size allocations are distinct and usable as markers. */
static void test_reset_and_reuse(void) {
    sm_arena_t a;
    sm_arena_init(&a, 1 << 20);
    for (int round = 0; round < 3; round++) {
        int dirty = 0;
        for (int i = 0; i < 200; i++) {
            uint8_t *p = sm_arena_alloc(&a, 512);
            REQUIRE(p != NULL);
            dirty += !all_zero(p, 512);
            memset(p, 0xaa, 512);
        }
        CHECK_EQ_INT(0, dirty);
        CHECK_EQ_INT(200 * 512, a.used);
        sm_arena_reset(&a);
        CHECK_EQ_INT(0, a.used);
        CHECK(a.head == NULL);
        CHECK_EQ_INT(1 << 20, a.limit); /* the limit survives a reset */
    }
    void *z1 = sm_arena_alloc(&a, 0), *z2 = sm_arena_alloc(&a, 0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    sm_arena_free(&a);
    /* freeing an arena that never allocated, and twice */
    sm_arena_init(&a, 0);
    sm_arena_free(&a);
    sm_arena_free(&a);
    CHECK(a.head == NULL && a.used == 0);
}

/* The limit caps what is handed out (padding included); a refused request
 * leaves the arena usable for one that fits. */
static void test_limit(void) {
    sm_arena_t a;
    sm_arena_init(&a, 1000);
    CHECK(sm_arena_alloc(&a, 1001) == NULL);
    CHECK(sm_arena_alloc(&a, 1000) == NULL); /* 1008 once padded */
    CHECK_EQ_INT(0, a.used);
    CHECK(sm_arena_alloc(&a, 992) != NULL);
    CHECK_EQ_INT(992, a.used);
    CHECK(sm_arena_alloc(&a, 1) == NULL); /* would take 16 more */
    CHECK_EQ_INT(992, a.used);
    sm_arena_reset(&a);
    int n = 0;
    while (sm_arena_alloc(&a, 10) != NULL)
        n++;
    CHECK_EQ_INT(1000 / 16, n);
    CHECK(a.used <= a.limit);
    sm_arena_free(&a);
    /* a limit beyond one chunk, reached through a large block */
    sm_arena_init(&a, 3u << 20);
    CHECK(sm_arena_alloc(&a, 2u << 20) != NULL);
    CHECK(sm_arena_alloc(&a, 1u << 20) != NULL);
    CHECK(sm_arena_alloc(&a, 16) == NULL);
    sm_arena_free(&a);
}

/* Sizes that overflow when padded or multiplied are refused, not wrapped. */
static void test_overflow(void) {
    sm_arena_t a;
    sm_arena_init(&a, 0);
    CHECK(sm_arena_alloc(&a, SIZE_MAX) == NULL);
    CHECK(sm_arena_alloc(&a, SIZE_MAX - 14) == NULL);
    CHECK(sm_arena_calloc(&a, SIZE_MAX / 2, 3) == NULL);
    CHECK(sm_arena_calloc(&a, (size_t)1 << 40, (size_t)1 << 40) == NULL);
    CHECK_EQ_INT(0, a.used);
    uint32_t *v = sm_arena_calloc(&a, 100, sizeof(uint32_t));
    CHECK(v != NULL && all_zero((const uint8_t *)v, 400));
    CHECK(sm_arena_calloc(&a, 0, 8) != NULL);
    sm_arena_free(&a);
}

/* A block bigger than any chunk gets a chunk of its own; small allocations
 * before and after it keep working and nothing overlaps. */
static void test_large_blocks(void) {
    sm_arena_t a;
    sm_arena_init(&a, 0);
    uint8_t *small1 = sm_arena_alloc(&a, 100);
    REQUIRE(small1 != NULL);
    memset(small1, 1, 100);
    size_t big_n = (4u << 20) + 3;
    uint8_t *big = sm_arena_alloc(&a, big_n);
    REQUIRE(big != NULL);
    CHECK(((uintptr_t)big & 15) == 0);
    CHECK(all_zero(big, big_n));
    memset(big, 2, big_n);
    uint8_t *small2 = sm_arena_alloc(&a, 100);
    REQUIRE(small2 != NULL);
    memset(small2, 3, 100);
    uint8_t *big2 = sm_arena_alloc(&a, 2u << 20);
    REQUIRE(big2 != NULL);
    memset(big2, 4, 2u << 20);
    CHECK(small1[0] == 1 && small1[99] == 1);
    CHECK(big[0] == 2 && big[big_n - 1] == 2);
    CHECK(small2[0] == 3 && small2[99] == 3);
    CHECK(big2[0] == 4 && big2[(2u << 20) - 1] == 4);
    sm_arena_free(&a);
}

static void test_strings(void) {
    sm_arena_t a;
    sm_arena_init(&a, 0);
    char *s = sm_arena_strndup(&a, "hello world", 5);
    CHECK(s != NULL && strcmp(s, "hello") == 0);
    char *e = sm_arena_strndup(&a, "", 0);
    CHECK(e != NULL && e[0] == 0);
    sm_str_t st = sm_arena_str(&a, "topic-1");
    CHECK(st.len == 7 && memcmp(st.ptr, "topic-1", 7) == 0 && st.ptr[7] == 0);
    sm_str_t nul = sm_arena_str(&a, NULL);
    CHECK(nul.len == -1 && nul.ptr == NULL);
    sm_arena_free(&a);
    /* out of room: a null string, not a crash */
    sm_arena_init(&a, 16);
    CHECK(sm_arena_alloc(&a, 16) != NULL);
    sm_str_t none = sm_arena_str(&a, "x");
    CHECK(none.len == -1);
    CHECK(sm_arena_strndup(&a, "x", 1) == NULL);
    sm_arena_free(&a);
}

int main(void) {
    RUN(test_alignment_zeroing_no_overlap);
    RUN(test_reset_and_reuse);
    RUN(test_limit);
    RUN(test_overflow);
    RUN(test_large_blocks);
    RUN(test_strings);
    return t_summary("arena");
}
