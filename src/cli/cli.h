/*
 * samsa, the command-line tool: the subcommands and the little they share.
 * Each subcommand lives in its own file (topics.c, produce.c, ...) and gets
 * argv from its own name on (argv[0] = "topics"). Exit codes are Kafka
 * operators' expectations: 0 ok, 1 the operation failed, 2 a usage error.
 */
#ifndef SAMSA_CLI_H
#define SAMSA_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cli_topics(int argc, char **argv);
int cli_produce(int argc, char **argv);
int cli_consume(int argc, char **argv);
int cli_groups(int argc, char **argv);
int cli_configs(int argc, char **argv);
int cli_cluster(int argc, char **argv);
int cli_transactions(int argc, char **argv);
int cli_perf(int argc, char **argv);
int cli_logs(int argc, char **argv);

/* Prints "samsa: <message>" as one line on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A librdkafka configuration with bootstrap.servers set, then each "key=value"
 * of props applied in order. On a bad property prints one line naming it and
 * returns NULL (the caller exits CLI_USAGE).
 */
rd_kafka_conf_t *cli_rk_conf(const char *bootstrap, char *const *props, size_t nprops);

/* The bootstrap servers to use: given (an option's value), else the
 * environment variable SAMSA_BOOTSTRAP, else CLI_DEFAULT_BOOTSTRAP. */
#define CLI_DEFAULT_BOOTSTRAP "localhost:9092"
const char *cli_bootstrap(const char *given);

/* How long a connection attempt to one server may take before the next one
 * in the list is tried (and an unreachable cluster is reported), in ms. */
#define CLI_CONNECT_TIMEOUT_MS 1000

/*
 * The long option a short form stands for, as kcat and rpk spell them: -b
 * --bootstrap-server, -t --topic, -g --group, -p --partition (else
 * --partitions), -o --offset (else --output). known(name, ctx) says whether
 * the command has that long option. NULL when w is not such a short form.
 */
const char *cli_expand_short(const char *w, bool (*known)(const char *name, void *ctx), void *ctx);

/* True when stderr is a terminal (progress lines are shown only then). */
bool cli_progress_wanted(void);

#endif
