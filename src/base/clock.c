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
