/*
 * Replication throttles: the sampled byte rate and its bound (see repl_quota.h).
 */
#include "broker/repl_quota.h"

#include <string.h>

void repl_quota_init(repl_quota_t *q) {
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    q->bound = INT64_MAX;
    q->n_samples = 11;
    q->window_ms = 1000;
}

void repl_quota_destroy(repl_quota_t *q) { pthread_mutex_destroy(&q->mu); }

void repl_quota_set_window(repl_quota_t *q, int32_t n_samples, int64_t window_ms) {
    if (n_samples < 1) n_samples = 1;
    if (n_samples > REPL_QUOTA_MAX_SAMPLES) n_samples = REPL_QUOTA_MAX_SAMPLES;
    if (window_ms < 1) window_ms = 1;
    pthread_mutex_lock(&q->mu);
    if (q->n_samples != n_samples || q->window_ms != window_ms) {
        q->n_samples = n_samples;
        q->window_ms = window_ms;
        q->used = 0;
        q->current = 0;
    }
    pthread_mutex_unlock(&q->mu);
}

void repl_quota_set_bound(repl_quota_t *q, int64_t bytes_per_sec) {
    pthread_mutex_lock(&q->mu);
    q->bound = bytes_per_sec < 0 ? 0 : bytes_per_sec;
    pthread_mutex_unlock(&q->mu);
}

bool repl_quota_bounded(repl_quota_t *q) {
    pthread_mutex_lock(&q->mu);
    bool b = q->bound != INT64_MAX;
    pthread_mutex_unlock(&q->mu);
    return b;
}

static void sample_reset(repl_quota_sample_t *s, int64_t now) {
    s->start_ms = now;
    s->last_ms = now;
    s->bytes = 0;
}

/* Under mu: the sample records go to, the first one started when none is. */
static repl_quota_sample_t *current(repl_quota_t *q, int64_t now) {
    if (q->used == 0) {
        q->current = 0;
        q->used = 1;
        sample_reset(&q->s[0], now);
    }
    return &q->s[q->current];
}

/* Under mu: samples without a record for the whole window start over empty. */
static void purge(repl_quota_t *q, int64_t now) {
    int64_t expire = (int64_t)q->n_samples * q->window_ms;
    for (int32_t i = 0; i < q->used; i++)
        if (now - q->s[i].last_ms >= expire) sample_reset(&q->s[i], now);
}

void repl_quota_record(repl_quota_t *q, int64_t bytes, int64_t now_ms) {
    if (bytes <= 0) return;
    pthread_mutex_lock(&q->mu);
    repl_quota_sample_t *s = current(q, now_ms);
    if (now_ms - s->start_ms >= q->window_ms) {
        /* Complete: the next sample of the ring (n + 1 of them: the oldest
         * may still overlap the window) starts now. */
        q->current = (q->current + 1) % (q->n_samples + 1);
        if (q->current >= q->used) q->used = q->current + 1;
        s = &q->s[q->current];
        sample_reset(s, now_ms);
    }
    s->bytes += bytes;
    s->last_ms = now_ms;
    pthread_mutex_unlock(&q->mu);
}

/* Under mu. */
static double rate_locked(repl_quota_t *q, int64_t now) {
    purge(q, now);
    int64_t total = 0, oldest = now;
    for (int32_t i = 0; i < q->used; i++) {
        total += q->s[i].bytes;
        if (q->s[i].start_ms < oldest) oldest = q->s[i].start_ms;
    }
    int64_t elapsed = now - oldest;
    if (elapsed < q->window_ms) elapsed = q->window_ms;
    return (double)total * 1000.0 / (double)elapsed;
}

double repl_quota_rate(repl_quota_t *q, int64_t now_ms) {
    pthread_mutex_lock(&q->mu);
    double r = rate_locked(q, now_ms);
    pthread_mutex_unlock(&q->mu);
    return r;
}

bool repl_quota_exceeded(repl_quota_t *q, int64_t now_ms) {
    pthread_mutex_lock(&q->mu);
    bool over = q->bound != INT64_MAX && rate_locked(q, now_ms) > (double)q->bound;
    pthread_mutex_unlock(&q->mu);
    return over;
}
