/*
 * Wall-clock and monotonic milliseconds (see clock.h), with a process-wide
 * fake wall clock for tests.
 */
#include "base/clock.h"

#include <stdatomic.h>
#include <time.h>

static _Atomic int64_t fake_ms = -1;

static int64_t read_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sm_time_ms(void) {
    int64_t f = atomic_load_explicit(&fake_ms, memory_order_relaxed);
    return f >= 0 ? f : read_ms(CLOCK_REALTIME);
}

int64_t sm_mono_ms(void) { return read_ms(CLOCK_MONOTONIC); }

void sm_clock_set_fake(int64_t ms) { atomic_store(&fake_ms, ms < 0 ? -1 : ms); }

void sm_cond_init_mono(pthread_cond_t *cv) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void sm_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline) {
    struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
    pthread_cond_timedwait(cv, mu, &ts);
}
