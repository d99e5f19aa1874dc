/*
 * The seeded randomness of the deterministic simulations (test_raft_sim.c, test_repl_sim.c):
 * a splitmix64 stream from prng_state, which a simulation sets from its seed; and their
 * common command line (--seed N: one seed; --seeds N [--start S]: a range).
 */
#ifndef SM_SIM_RAND_H
#define SM_SIM_RAND_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct sim_seed_args {
    uint64_t seed, seeds, start;
    bool one; /* --seed given */
} sim_seed_args_t;

/* Takes argv[*i] (and its value) when it is --seed, --seeds or --start. */
static inline bool sim_seed_arg(int argc, char **argv, int *i, sim_seed_args_t *a) {
    if (*i + 1 >= argc) return false;
    uint64_t *dst = !strcmp(argv[*i], "--seed")    ? &a->seed
                    : !strcmp(argv[*i], "--seeds") ? &a->seeds
                    : !strcmp(argv[*i], "--start") ? &a->start
                                                   : NULL;
    if (!dst) return false;
    *dst = strtoull(argv[++*i], NULL, 10);
    if (dst == &a->seed) a->one = true;
    return true;
}

#endif
