/*
 * Support for the generated fill/eq functions (protocol/gen/testing/), used by
 * the codec round-trip tests only; never linked into the programs.
 */
#ifndef PROTO_GEN_TESTING_H
#define PROTO_GEN_TESTING_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/types.h"
#include "protocol/gen_support.h"

typedef struct pt_rng {
    uint64_t s;
} pt_rng_t;

static inline uint64_t pt_next(pt_rng_t *g) {
    /* splitmix64 */
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint32_t pt_rand(pt_rng_t *g, uint32_t n) { return (uint32_t)(pt_next(g) % n); }
/* True one time in n. */
static inline bool pt_coin(pt_rng_t *g, uint32_t n) { return pt_rand(g, n) == 0; }
static inline void pt_uuid(pt_rng_t *g, sm_uuid_t *u) {
    uint64_t a = pt_next(g), b = pt_next(g);
    memcpy(u->b, &a, 8);
    memcpy(u->b + 8, &b, 8);
}
static inline sm_str_t pt_str(pt_rng_t *g, sm_arena_t *a) {
    int32_t n = (int32_t)pt_rand(g, 12);
    char *p = sm_arena_alloc(a, (size_t)n + 1);
    for (int32_t i = 0; i < n; i++) p[i] = (char)('a' + pt_rand(g, 26));
    return (sm_str_t){p, n};
}
static inline sm_bytes_t pt_bytes(pt_rng_t *g, sm_arena_t *a) {
    int32_t n = (int32_t)pt_rand(g, 20);
    uint8_t *p = sm_arena_alloc(a, (size_t)n + 1);
    for (int32_t i = 0; i < n; i++) p[i] = (uint8_t)pt_next(g);
    return (sm_bytes_t){p, n};
}
static inline bool pt_bytes_eq(sm_bytes_t x, sm_bytes_t y) {
    if (x.len != y.len) return false;
    return x.len <= 0 || memcmp(x.ptr, y.ptr, (size_t)x.len) == 0;
}

/* The field that differed, for the failure message. */
extern const char *pt_last_failure;
static inline bool pt_fail(const char *what) {
    pt_last_failure = what;
    return false;
}

typedef struct pt_msg_fns {
    const char *name;
    void (*fill)(pt_rng_t *g, sm_arena_t *a, int16_t v, void *m);
    bool (*eq)(int16_t v, const void *x, const void *y);
} pt_msg_fns_t;

extern const pt_msg_fns_t pt_msg_fns[];
extern const size_t pt_msg_fns_count;

#endif
