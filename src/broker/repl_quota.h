/*
 * Replication throttles (Kafka's ReplicationQuotaManager, KIP-73): one quota on
 * the leader side, one on the follower side of a broker. A quota is a byte rate
 * measured over a sliding window and its bound, `leader.replication.throttled.rate`
 * or `follower.replication.throttled.rate` (bytes/s; Long.MAX: unthrottled).
 * Which partitions count against it is the caller's business (replica.c reads the
 * topics' throttled-replicas lists); this module only measures and compares. Time
 * is always given by the caller (monotonic ms), so the unit test drives the clock.
 *
 * The rate is Kafka's SimpleRate over replication.quota.window.num samples of
 * replication.quota.window.size.seconds each:
 *   - record(bytes, now) adds to the current sample; a sample older than one
 *     window is complete and the next one (a ring of num + 1) starts at now;
 *   - a sample whose last record is num windows old is reset (it starts again
 *     at now, empty) before every measure;
 *   - rate(now) = bytes of all samples / max(now - start of the oldest, one
 *     window);
 *   - the quota is exceeded when rate > bound. Recording never checks it: a
 *     fetch that was allowed is counted whole, so the bytes moved exceed
 *     bound x elapsed by at most the data of the fetches admitted just before
 *     the rate went over (Kafka's overshoot, the same here).
 * Thread-safety: every function takes q->mu.
 */
#ifndef BROKER_REPL_QUOTA_H
#define BROKER_REPL_QUOTA_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* replication.quota.window.num is held to this many samples. */
#define REPL_QUOTA_MAX_SAMPLES 100

typedef struct repl_quota_sample {
    int64_t start_ms;
    int64_t last_ms;
    int64_t bytes;
} repl_quota_sample_t;

typedef struct repl_quota {
    pthread_mutex_t mu;
    int64_t bound;     /* bytes/s; INT64_MAX: never exceeded */
    int32_t n_samples; /* samples in the window */
    int64_t window_ms; /* length of one sample */
    int32_t current;   /* the sample records go to */
    int32_t used;      /* samples started so far, at most n_samples + 1 */
    repl_quota_sample_t s[REPL_QUOTA_MAX_SAMPLES + 1];
} repl_quota_t;

/* Kafka's defaults: unthrottled, 11 samples of 1 s. */
void repl_quota_init(repl_quota_t *q);
void repl_quota_destroy(repl_quota_t *q);
/* The window (static settings: the samples start over) and the bound. */
void repl_quota_set_window(repl_quota_t *q, int32_t n_samples, int64_t window_ms);
/* A new bound (dynamic config); the measured rate is kept. */
void repl_quota_set_bound(repl_quota_t *q, int64_t bytes_per_sec);
/* Whether a bound below Long.MAX is set. */
bool repl_quota_bounded(repl_quota_t *q);
/* Counts bytes of throttled partitions moved at now_ms. */
void repl_quota_record(repl_quota_t *q, int64_t bytes, int64_t now_ms);
/* The measured rate (bytes/s) at now_ms. */
double repl_quota_rate(repl_quota_t *q, int64_t now_ms);
/* rate > bound at now_ms: throttled partitions get no bytes now. */
bool repl_quota_exceeded(repl_quota_t *q, int64_t now_ms);

#endif
