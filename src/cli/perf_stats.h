/*
 * What the perf subcommands measure with: a latency histogram of fixed size
 * (log-linear buckets, under 0.2% error, any number of samples), and a rate
 * limiter that sleeps instead of spinning. Not thread-safe: each histogram
 * is fed by one thread.
 */
#ifndef SAMSA_CLI_PERF_STATS_H
#define SAMSA_CLI_PERF_STATS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint64_t *counts; /* one per bucket */
    uint64_t n, sum_us, max_us;
} perf_hist_t;

/* 0, or -1 when the buckets cannot be allocated. */
int perf_hist_init(perf_hist_t *h);
void perf_hist_free(perf_hist_t *h);
void perf_hist_add(perf_hist_t *h, uint64_t us);
/* The latency at percentile p (0..100) in microseconds; 0 when empty. Values
 * are a bucket's middle, capped at the largest sample. */
uint64_t perf_hist_percentile(const perf_hist_t *h, double p);
double perf_hist_mean_us(const perf_hist_t *h);
/* Writes "percentile,latency_ms" rows from 0 to 99.99 and 100 (the max). */
int perf_hist_write_csv(const perf_hist_t *h, FILE *f);

/*
 * Paces operation i of a run at rate per second (rate <= 0: no limit) by
 * sleeping until its due time; operations less than a millisecond early go
 * at once, so a high rate costs no sleep per operation.
 */
typedef struct {
    int64_t start_us;
    double rate;
} perf_throttle_t;

void perf_throttle_start(perf_throttle_t *t, double rate);
void perf_throttle_wait(const perf_throttle_t *t, uint64_t i);

#endif
