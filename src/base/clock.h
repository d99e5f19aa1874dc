/*
 * Time sources: wall-clock milliseconds (record timestamps, retention, segment
 * age) and monotonic milliseconds (deadlines, intervals). Tests can pin the
 * wall clock with sm_clock_set_fake. Not a timer or scheduler.
 */
#ifndef SM_CLOCK_H
#define SM_CLOCK_H

#include <pthread.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME), or the fake time. */
int64_t sm_time_ms(void);
/* Milliseconds of CLOCK_MONOTONIC: never jumps, meaningless across processes. */
int64_t sm_mono_ms(void);
/* Tests: sm_time_ms returns ms from now on; a negative value restores the real clock. */
void sm_clock_set_fake(int64_t ms);

/* A condition variable whose timed waits run on CLOCK_MONOTONIC. */
void sm_cond_init_mono(pthread_cond_t *cv);
/* Waits on cv (mu held) until signalled or sm_mono_ms() reaches deadline. */
void sm_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline);

#endif
