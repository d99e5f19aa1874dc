/*
 * The seeded randomness of the deterministic simulations (test_raft_sim.c, test_repl_sim.c):
 * a splitmix64 stream from prng_state, which a simulation sets from its seed.
 */
#ifndef SM_SIM_RAND_H
#define SM_SIM_RAND_H

#include <stdbool.h>
#include <stdint.h>

static uint64_t prng_state;
static inline uint64_t prng(void) {
    uint64_t z = (prng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/* Uniform in [0, n), 0 when n <= 0. */
static inline int64_t rnd(int64_t n) { return n > 0 ? (int64_t)(prng() % (uint64_t)n) : 0; }
/* True with probability p. */
static inline bool chance(double p) { return (double)(prng() >> 11) / 9007199254740992.0 < p; }

#endif
