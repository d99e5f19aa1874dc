/*
 * Latency histogram and rate limiter of the perf subcommands (perf_stats.h).
 * Buckets: values below 1024 µs each have their own; above, every power of
 * two is split into 512 equal buckets, so a bucket is at most 1/512 of its
 * value wide. 41 binary orders of magnitude cover 25 days.
 */
#include "cli/perf_stats.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "cli/io_common.h"

#define LINEAR_LIMIT 1024u /* values below are exact */
#define SUB_BITS 9         /* 512 buckets per power of two above */
#define MAX_EXP 40         /* largest power of two kept apart; above is clamped */
#define NBUCKETS (LINEAR_LIMIT + (MAX_EXP - 10 + 1) * (1u << SUB_BITS))

int perf_hist_init(perf_hist_t *h) {
    h->n = h->sum_us = h->max_us = 0;
    h->counts = calloc(NBUCKETS, sizeof(*h->counts));
    return h->counts ? 0 : -1;
}

void perf_hist_free(perf_hist_t *h) {
    free(h->counts);
    h->counts = NULL;
}

static size_t bucket_of(uint64_t v) {
    if (v < LINEAR_LIMIT) return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* 2^e <= v < 2^(e+1), e >= 10 */
    if (e > MAX_EXP) return NBUCKETS - 1;
    unsigned shift = e - SUB_BITS;
    return LINEAR_LIMIT + (size_t)(e - 10) * (1u << SUB_BITS) +
           (size_t)((v >> shift) - (1u << SUB_BITS));
}

/* The middle of a bucket's range. */
static uint64_t bucket_value(size_t b) {
    if (b < LINEAR_LIMIT) return b;
    size_t k = b - LINEAR_LIMIT;
    unsigned e = 10 + (unsigned)(k >> SUB_BITS);
    uint64_t sub = (k & ((1u << SUB_BITS) - 1)) + (1u << SUB_BITS);
    unsigned shift = e - SUB_BITS;
    return (sub << shift) + ((1ull << shift) >> 1);
}

void perf_hist_add(perf_hist_t *h, uint64_t us) {
    h->counts[bucket_of(us)]++;
    h->n++;
    h->sum_us += us;
    if (us > h->max_us) h->max_us = us;
}

uint64_t perf_hist_percentile(const perf_hist_t *h, double p) {
    if (h->n == 0) return 0;
    if (p >= 100.0) return h->max_us;
    /* The smallest value with at least p% of the samples at or below it. */
    double want = p / 100.0 * (double)h->n;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want || rank == 0) rank++;
    uint64_t seen = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t v = bucket_value(b);
            return v < h->max_us ? v : h->max_us;
        }
    }
    return h->max_us;
}

double perf_hist_mean_us(const perf_hist_t *h) {
    return h->n ? (double)h->sum_us / (double)h->n : 0.0;
}

int perf_hist_write_csv(const perf_hist_t *h, FILE *f) {
    fprintf(f, "percentile,latency_ms\n");
    /* Whole percentiles, then tenths and hundredths towards the tail. */
    for (int i = 0; i < 99; i++)
        fprintf(f, "%d,%.3f\n", i, (double)perf_hist_percentile(h, i) / 1000.0);
    for (int i = 990; i < 999; i++)
        fprintf(f, "%.1f,%.3f\n", i / 10.0, (double)perf_hist_percentile(h, i / 10.0) / 1000.0);
    for (int i = 9990; i < 10000; i++)
        fprintf(f, "%.2f,%.3f\n", i / 100.0, (double)perf_hist_percentile(h, i / 100.0) / 1000.0);
    fprintf(f, "100,%.3f\n", (double)h->max_us / 1000.0);
    return ferror(f) ? -1 : 0;
}

void perf_throttle_start(perf_throttle_t *t, double rate) {
    t->start_us = io_now_us();
    t->rate = rate;
}

void perf_throttle_wait(const perf_throttle_t *t, uint64_t i) {
    if (t->rate <= 0) return;
    int64_t due = t->start_us + (int64_t)((double)i * 1e6 / t->rate);
    int64_t early = due - io_now_us();
    if (early < 1000) return;
    struct timespec ts = {.tv_sec = due / 1000000, .tv_nsec = (long)(due % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        if (io_stop_requested()) return;
}
