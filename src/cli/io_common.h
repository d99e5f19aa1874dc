/*
 * What samsa produce, consume and perf share: their option parser (Kafka's
 * flag spellings, usage errors that name the flag), base64 and JSON text,
 * and the librdkafka steps each of them takes first: a quiet client that
 * remembers its last error, and a bounded wait until a topic is usable.
 * Not for the admin subcommands (topics, groups, ...), which have their own.
 */
#ifndef SAMSA_CLI_IO_COMMON_H
#define SAMSA_CLI_IO_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

/* How long a tool waits for the cluster before it gives up (--timeout-ms). */
#define IO_DEFAULT_TIMEOUT_MS 10000

typedef enum {
    IO_ARG_FLAG,  /* no value: --from-beginning */
    IO_ARG_ONE,   /* one value, the last one given wins: --topic T */
    IO_ARG_MANY,  /* repeatable, one value each: --property k=v --property k2=v2 */
    IO_ARG_MULTI, /* repeatable, every following word up to the next --option:
                     --producer-props a=1 b=2 (Kafka's argparse nargs='+') */
} io_arg_kind_t;

typedef struct {
    const char *name;  /* "--topic" */
    const char *alias; /* another accepted spelling, or NULL */
    io_arg_kind_t kind;
    /* Filled by io_args_parse: */
    bool seen;
    const char *value;   /* IO_ARG_ONE: the value (borrowed from argv) */
    const char **values; /* IO_ARG_MANY/MULTI: every value in order */
    size_t nvalues;
} io_arg_t;

/* An option table entry: IO_ARG("--topic", NULL, IO_ARG_ONE). */
#define IO_ARG(name_, alias_, kind_)                                                               \
    { .name = (name_), .alias = (alias_), .kind = (kind_) }

/*
 * Parses argv[1..argc) (argv[0] is the command's name, used in messages).
 * Accepts "--name value" and "--name=value". On --help or -h prints usage to
 * stdout and sets *help. Returns 0 to go on, or CLI_USAGE after one line on
 * stderr naming the option and the problem. io_args_free releases the value
 * lists (the strings stay argv's).
 */
int io_args_parse(const char *cmd, int argc, char **argv, io_arg_t *args, size_t nargs,
                  const char *usage, bool *help);
void io_args_free(io_arg_t *args, size_t nargs);

/* CLI_USAGE with "<cmd>: <name> is required" unless the option was given. */
int io_arg_require(const char *cmd, const io_arg_t *a);

/*
 * The option's value as a whole number in [min, max]; *out is left alone when
 * the option was not given. CLI_USAGE (with one line naming the option) when
 * it is not a number or out of range.
 */
int io_arg_int(const char *cmd, const io_arg_t *a, long long min, long long max, long long *out);

/*
 * Properties given as repeated k=v values (--property): the value of the last
 * one named key, or NULL. io_props_check fails with CLI_USAGE on a value
 * without '=' or a key not in known (NULL-terminated).
 */
const char *io_prop_get(const io_arg_t *a, const char *key);
bool io_prop_true(const io_arg_t *a, const char *key, bool dflt);
int io_props_check(const char *cmd, const io_arg_t *a, const char *const *known);

/* Base64 (RFC 4648 with padding). Encoded length of n bytes, and encoding
 * into out (which must hold io_b64_len(n) bytes; no NUL written). */
size_t io_b64_len(size_t n);
void io_b64_encode(const void *in, size_t n, char *out);
/* Decodes n characters in place-safe fashion into out (room for n*3/4 bytes).
 * Returns the decoded length, or -1 on a character or padding error. */
long io_b64_decode(const char *in, size_t n, unsigned char *out);

bool io_utf8_valid(const void *p, size_t n);
/* Writes p as a JSON string (quotes included; p must be valid UTF-8). */
void io_json_string(FILE *f, const void *p, size_t n);
/* Writes bytes as a JSON string when valid UTF-8, else as {"base64":"..."};
 * NULL as null. */
void io_json_bytes(FILE *f, const void *p, size_t n);

/*
 * A librdkafka client of the given type from conf (takes ownership of conf
 * in every case). Installs callbacks that keep librdkafka's own log lines off
 * stderr (unless the caller asked for them with a "debug" property) and
 * remember the last error, which io_last_error reports. NULL after one line
 * on stderr when the client cannot be made.
 */
rd_kafka_t *io_rk_new(rd_kafka_type_t type, rd_kafka_conf_t *conf);
/* The last error librdkafka reported on this client ("" when none). */
const char *io_last_error(void);

/*
 * Waits until the topic is known with a leader for every partition, at most
 * timeout_ms; fills *partitions with its partition count. A producer's
 * metadata request lets the broker auto-create the topic (if it allows it);
 * a consumer's does not. Returns 0, or CLI_FAIL after one line on stderr: the
 * broker was not reachable in time, or the topic does not exist.
 */
int io_wait_topic(rd_kafka_t *rk, const char *topic, int timeout_ms, int *partitions);

/*
 * Kafka's producer defaults on a configuration the user's properties were
 * already applied to: acks (when the --acks flag gave it), idempotence on
 * unless acks or max.in.flight conflict with it or the user set it, and
 * Kafka's 120 s delivery timeout. CLI_USAGE after a message on a bad value.
 */
int io_producer_defaults(const char *cmd, rd_kafka_conf_t *conf, const io_arg_t *props,
                         const char *acks);

/*
 * Group consumers: io_subscribe sends the consumer's events to its poll
 * queue and subscribes to one topic (CLI_FAIL after a message);
 * io_rebalance_apply takes or gives up partitions as a rebalance callback
 * must, for eager and cooperative protocols alike.
 */
int io_subscribe(const char *cmd, rd_kafka_t *rk, const char *topic);
void io_rebalance_apply(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts);

/* Monotonic and wall clocks in microseconds. */
int64_t io_now_us(void);
int64_t io_wall_us(void);

/*
 * SIGINT and SIGTERM set a flag (io_stop_requested) instead of killing the
 * process, so a tool can flush, commit and print its totals first.
 */
void io_catch_signals(void);
bool io_stop_requested(void);
/* How many of those signals arrived so far. */
int io_stop_count(void);

#endif
