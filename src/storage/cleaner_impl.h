/*
 * Private declarations shared by storage/cleaner*.c. Not a public API.
 */
#ifndef STORAGE_CLEANER_IMPL_H
#define STORAGE_CLEANER_IMPL_H

#include "storage/cleaner.h"
#include "storage/log_impl.h"

/* bytes_per_second <= 0 or huge (Kafka's default Double.MAX_VALUE): *out = NULL, unthrottled. */
int clean_throttle_new(double bytes_per_second, clean_throttle_t **out);
void clean_throttle_free(clean_throttle_t *t);
/* Accounts bytes of I/O; returns how long the caller should pause (ms). */
int64_t clean_throttle_delay_ms(clean_throttle_t *t, size_t bytes);

#endif
