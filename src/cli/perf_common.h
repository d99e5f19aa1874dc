/*
 * What the perf tests (perf.c, perf_e2e.c) share beyond the histogram:
 * parsing of their common options, the client configuration and the payload.
 */
#ifndef SAMSA_CLI_PERF_COMMON_H
#define SAMSA_CLI_PERF_COMMON_H

#include <stdbool.h>

#include "cli/io_common.h"
#include "cli/perf_stats.h"

#define MIB (1024.0 * 1024.0)

/* --output text|json; CLI_USAGE after a message on another value. */
int perf_parse_output(const char *cmd, const io_arg_t *a, bool *json);
/* --throughput: a positive number of records per second, or -1 (no limit). */
int perf_parse_rate(const char *cmd, const io_arg_t *a, double *rate);
/* A configuration from --bootstrap-server (or bootstrap.servers among the
 * properties, as Kafka's perf tools take it) and the properties; NULL after
 * a message (usage error). */
rd_kafka_conf_t *perf_conf(const char *cmd, const io_arg_t *bootstrap, const io_arg_t *props);
/* Fills p with pseudo-random (incompressible) bytes. */
void perf_fill_random(unsigned char *p, size_t n);

/* samsa perf e2e (argv[0] = "e2e"). */
int perf_e2e(int argc, char **argv);

#endif
