/*
 * samsa produce: the console producer (Kafka's kafka-console-producer.sh).
 * One record per line of stdin, split into headers, key and value by the
 * same reader properties as Kafka's LineMessageReader; --format base64 takes
 * key, value and header values base64-encoded so any bytes can be sent.
 * Not a load generator: that is samsa perf produce.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/io_common.h"

static const char usage[] =
    "usage: samsa produce [--bootstrap-server HOST:PORT] --topic TOPIC [options] < lines\n"
    "\n"
    "Sends one record per line of stdin (the line without its newline).\n"
    "\n"
    "options:\n"
    "  --bootstrap-server B      broker(s) to connect to (default: $SAMSA_BOOTSTRAP, else "
    "localhost:9092)\n"
    "  --topic T                 topic to write to (required; auto-created if the\n"
    "                            broker allows it)\n"
    "  --property k=v            line reader property (also --reader-property):\n"
    "      parse.key=true          split each line into key and value\n"
    "      key.separator=S         between key and value (default: tab)\n"
    "      parse.headers=true      lines start with headers\n"
    "      headers.delimiter=S     between the headers and the rest (default: tab)\n"
    "      headers.separator=S     between headers (default: ,)\n"
    "      headers.key.separator=S between a header's key and value (default: :)\n"
    "      null.marker=S           a key, value or header value equal to S is null\n"
    "                              (default with --format base64: -)\n"
    "      ignore.error=true       a line without a separator is sent whole as the value\n"
    "  --format text|base64      base64: key, value and header values are base64 on\n"
    "                            input (header keys stay text), so any bytes can be sent\n"
    "  --compression-type C      none, gzip, snappy, lz4 or zstd (default: none)\n"
    "  --acks all|-1|1|0         acknowledgements to wait for (default: all)\n"
    "  --partition N             write every record to partition N\n"
    "  --producer-property k=v   any librdkafka producer property (repeatable)\n"
    "  --sync                    wait for each record's acknowledgement before the next\n"
    "  --timeout-ms N            give up when the cluster does not answer within N ms\n"
    "                            (default: 10000)\n"
    "\n"
    "Idempotence is on unless --acks is not all or the producer properties turn it off.\n"
    "Exit codes: 0 every record was delivered, 1 a record failed (the first error is\n"
    "printed), 2 usage error.\n";

enum {
    A_BOOTSTRAP,
    A_TOPIC,
    A_PROPERTY,
    A_FORMAT,
    A_COMPRESSION,
    A_ACKS,
    A_PARTITION,
    A_PRODUCER_PROP,
    A_SYNC,
    A_TIMEOUT,
    A_COUNT
};

/* How a line is split (Kafka's LineMessageReader properties). */
typedef struct {
    bool parse_key, parse_headers, ignore_error, base64;
    const char *key_sep, *hdr_delim, *hdr_sep, *hdr_key_sep, *null_marker;
} line_format_t;

/* One record's parts, pointing into the line or into scratch buffers. */
typedef struct {
    const void *key, *value;
    size_t key_len, value_len;
    rd_kafka_headers_t *headers;
} line_record_t;

typedef struct {
    long long attempted, sent, delivered, failed;
    char first_error[512];
} produce_stats_t;

/* Delivery reports; runs on the thread that polls (this one). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    produce_stats_t *st = opaque;
    if (!m->err) {
        st->delivered++;
        return;
    }
    if (st->failed++ == 0)
        snprintf(st->first_error, sizeof(st->first_error), "%s: %s", rd_kafka_err2name(m->err),
                 rd_kafka_err2str(m->err));
}

static const void *find_sep(const char *s, size_t n, const char *sep) {
    size_t sl = strlen(sep);
    return sl ? memmem(s, n, sep, sl) : NULL;
}

static bool is_null_marker(const line_format_t *f, const char *s, size_t n) {
    return f->null_marker && strlen(f->null_marker) == n && memcmp(s, f->null_marker, n) == 0;
}

/*
 * Decodes one field in place when the format is base64 (a base64 string is
 * never shorter than what it decodes to). Null markers are checked by the
 * caller first.
 */
static int decode_field(const line_format_t *f, char *s, size_t *n, long line, const char *what) {
    if (!f->base64) return 0;
    long got = io_b64_decode(s, *n, (unsigned char *)s);
    if (got < 0) {
        cli_error("produce: line %ld: the %s is not valid base64", line, what);
        return CLI_FAIL;
    }
    *n = (size_t)got;
    return 0;
}

static int parse_headers(const line_format_t *f, char *s, size_t n, long line,
                         rd_kafka_headers_t *hdrs) {
    /* An empty section, or the console consumer's NO_HEADERS, means none. */
    if (n == 0 || (n == 10 && memcmp(s, "NO_HEADERS", 10) == 0)) return 0;
    size_t ssl = strlen(f->hdr_sep), ksl = strlen(f->hdr_key_sep);
    while (n > 0) {
        const char *end = find_sep(s, n, f->hdr_sep);
        size_t pair_len = end ? (size_t)(end - s) : n;
        const char *ks = find_sep(s, pair_len, f->hdr_key_sep);
        char *value = NULL;
        size_t key_len = pair_len, value_len = 0;
        if (!ks) {
            if (!f->ignore_error) {
                cli_error("produce: line %ld: no header key separator found in a header", line);
                return CLI_FAIL;
            }
        } else {
            key_len = (size_t)(ks - s);
            value = (char *)ks + ksl;
            value_len = pair_len - key_len - ksl;
            if (is_null_marker(f, value, value_len)) {
                value = NULL;
            } else if (decode_field(f, value, &value_len, line, "header value")) {
                return CLI_FAIL;
            }
        }
        if (is_null_marker(f, s, key_len)) {
            cli_error("produce: line %ld: a header key equals the null marker", line);
            return CLI_FAIL;
        }
        rd_kafka_resp_err_t err =
            rd_kafka_header_add(hdrs, s, (ssize_t)key_len, value, value ? (ssize_t)value_len : 0);
        if (err) {
            cli_error("produce: line %ld: header: %s", line, rd_kafka_err2str(err));
            return CLI_FAIL;
        }
        if (!end) break;
        s += pair_len + ssl;
        n -= pair_len + ssl;
    }
    return 0;
}

/*
 * Splits a line (without its newline; may be changed in place) into a
 * record, as Kafka's LineMessageReader does: headers first when parsed, then
 * the key, and the rest is the value.
 */
static int parse_line(const line_format_t *f, char *s, size_t n, long line, line_record_t *rec) {
    memset(rec, 0, sizeof(*rec));
    if (f->parse_headers) {
        const char *d = find_sep(s, n, f->hdr_delim);
        if (!d && !f->ignore_error) {
            cli_error("produce: line %ld: no headers delimiter found", line);
            return CLI_FAIL;
        }
        if (d) {
            size_t hl = (size_t)(d - s);
            if (!is_null_marker(f, s, hl)) {
                rec->headers = rd_kafka_headers_new(8);
                if (parse_headers(f, s, hl, line, rec->headers)) return CLI_FAIL;
            }
            size_t skip = hl + strlen(f->hdr_delim);
            s += skip;
            n -= skip;
        }
    }
    if (f->parse_key) {
        const char *k = find_sep(s, n, f->key_sep);
        if (!k && !f->ignore_error) {
            cli_error("produce: line %ld: no key separator found", line);
            return CLI_FAIL;
        }
        if (k) {
            size_t kl = (size_t)(k - s);
            if (!is_null_marker(f, s, kl)) {
                if (decode_field(f, s, &kl, line, "key")) return CLI_FAIL;
                rec->key = s;
                rec->key_len = kl;
            }
            size_t skip = (size_t)(k - s) + strlen(f->key_sep);
            s += skip;
            n -= skip;
        }
    }
    if (!is_null_marker(f, s, n)) {
        if (decode_field(f, s, &n, line, "value")) return CLI_FAIL;
        rec->value = s;
        rec->value_len = n;
    }
    return 0;
}

/* Serves delivery reports until nothing is in flight, or until one more
 * SIGINT/SIGTERM arrives than had when it started. */
static void drain(rd_kafka_t *rk) {
    int signals = io_stop_count();
    while (rd_kafka_outq_len(rk) > 0 && io_stop_count() == signals)
        rd_kafka_poll(rk, 100);
}

static int send_record(rd_kafka_t *rk, const char *topic, int32_t partition, line_record_t *rec,
                       produce_stats_t *st) {
    st->attempted++;
    for (;;) {
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY((void *)rec->key, rec->key_len),
                              RD_KAFKA_V_VALUE((void *)rec->value, rec->value_len),
                              RD_KAFKA_V_HEADERS(rec->headers), RD_KAFKA_V_END);
        if (!err) {
            rec->headers = NULL; /* librdkafka owns them now */
            st->sent++;
            return 0;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* Wait for deliveries to make room. */
            rd_kafka_poll(rk, 100);
            continue;
        }
        if (st->failed++ == 0)
            snprintf(st->first_error, sizeof(st->first_error), "%s: %s", rd_kafka_err2name(err),
                     rd_kafka_err2str(err));
        return 0;
    }
}

static rd_kafka_conf_t *producer_conf(io_arg_t *args) {
    io_arg_t *pp = &args[A_PRODUCER_PROP];
    rd_kafka_conf_t *conf =
        cli_rk_conf(cli_bootstrap(args[A_BOOTSTRAP].value), (char *const *)pp->values, pp->nvalues);
    if (!conf) return NULL;
    char err[512];
    if (io_producer_defaults("produce", conf, pp, args[A_ACKS].value)) goto fail;
    if (args[A_COMPRESSION].seen &&
        rd_kafka_conf_set(conf, "compression.type", args[A_COMPRESSION].value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
        cli_error("produce: --compression-type: %s", err);
        goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int check_args(io_arg_t *args, line_format_t *f, long long *partition, long long *timeout) {
    static const char *const known[] = {
        "parse.key",         "key.separator",     "parse.headers",
        "headers.delimiter", "headers.separator", "headers.key.separator",
        "null.marker",       "ignore.error",      NULL};
    int rc;
    if ((rc = io_arg_require("produce", &args[A_TOPIC])) ||
        (rc = io_props_check("produce", &args[A_PROPERTY], known)) ||
        (rc = io_arg_int("produce", &args[A_PARTITION], 0, INT32_MAX, partition)) ||
        (rc = io_arg_int("produce", &args[A_TIMEOUT], 1, INT32_MAX, timeout)))
        return rc;
    const char *fmt = args[A_FORMAT].seen ? args[A_FORMAT].value : "text";
    if (strcmp(fmt, "text") != 0 && strcmp(fmt, "base64") != 0) {
        cli_error("produce: --format: '%s' is not text or base64", fmt);
        return CLI_USAGE;
    }
    const char *acks = args[A_ACKS].value;
    if (args[A_ACKS].seen && strcmp(acks, "all") != 0 && strcmp(acks, "-1") != 0 &&
        strcmp(acks, "1") != 0 && strcmp(acks, "0") != 0) {
        cli_error("produce: --acks: '%s' is not all, -1, 1 or 0", acks);
        return CLI_USAGE;
    }
    static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    bool codec_ok = !args[A_COMPRESSION].seen;
    for (size_t i = 0; i < 5 && !codec_ok; i++)
        codec_ok = strcmp(args[A_COMPRESSION].value, codecs[i]) == 0;
    if (!codec_ok) {
        cli_error("produce: --compression-type: '%s' is not none, gzip, snappy, lz4 or zstd",
                  args[A_COMPRESSION].value);
        return CLI_USAGE;
    }
    const io_arg_t *p = &args[A_PROPERTY];
    f->base64 = strcmp(fmt, "base64") == 0;
    f->parse_key = io_prop_true(p, "parse.key", false);
    f->parse_headers = io_prop_true(p, "parse.headers", false);
    f->ignore_error = io_prop_true(p, "ignore.error", false);
    f->key_sep = io_prop_get(p, "key.separator") ? io_prop_get(p, "key.separator") : "\t";
    f->hdr_delim = io_prop_get(p, "headers.delimiter") ? io_prop_get(p, "headers.delimiter") : "\t";
    f->hdr_sep = io_prop_get(p, "headers.separator") ? io_prop_get(p, "headers.separator") : ",";
    f->hdr_key_sep =
        io_prop_get(p, "headers.key.separator") ? io_prop_get(p, "headers.key.separator") : ":";
    /* In base64 "-" cannot be data, and it is what consume --format base64
     * prints for null, so its output can be produced again. */
    f->null_marker = io_prop_get(p, "null.marker");
    if (!f->null_marker && f->base64) f->null_marker = "-";
    if ((f->parse_key && !f->key_sep[0]) ||
        (f->parse_headers && (!f->hdr_delim[0] || !f->hdr_sep[0] || !f->hdr_key_sep[0]))) {
        cli_error("produce: --property: separators must not be empty");
        return CLI_USAGE;
    }
    return 0;
}

/* Reads stdin to the end (or a signal), sending each line. CLI_FAIL on a
 * line that cannot be parsed or a read error. */
static int send_lines(rd_kafka_t *rk, const char *topic, int32_t partition, const line_format_t *f,
                      bool sync, produce_stats_t *st) {
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (ferror(stdin) && errno != EINTR) {
                cli_error("produce: reading stdin: %s", strerror(errno));
                rc = CLI_FAIL;
            }
            break;
        }
        lineno++;
        if (n > 0 && line[n - 1] == '\n') n--;
        line_record_t rec;
        if (parse_line(f, line, (size_t)n, lineno, &rec)) {
            if (rec.headers) rd_kafka_headers_destroy(rec.headers);
            rc = CLI_FAIL;
            break;
        }
        send_record(rk, topic, partition, &rec, st);
        if (rec.headers) rd_kafka_headers_destroy(rec.headers);
        if (sync)
            drain(rk);
        else
            rd_kafka_poll(rk, 0);
        if (io_stop_requested()) break;
    }
    free(line);
    return rc;
}

int cli_produce(int argc, char **argv) {
    io_arg_t args[A_COUNT] = {
        [A_BOOTSTRAP] = IO_ARG("--bootstrap-server", NULL, IO_ARG_ONE),
        [A_TOPIC] = IO_ARG("--topic", NULL, IO_ARG_ONE),
        [A_PROPERTY] = IO_ARG("--property", "--reader-property", IO_ARG_MANY),
        [A_FORMAT] = IO_ARG("--format", NULL, IO_ARG_ONE),
        [A_COMPRESSION] = IO_ARG("--compression-type", "--compression-codec", IO_ARG_ONE),
        [A_ACKS] = IO_ARG("--acks", "--request-required-acks", IO_ARG_ONE),
        [A_PARTITION] = IO_ARG("--partition", NULL, IO_ARG_ONE),
        [A_PRODUCER_PROP] = IO_ARG("--producer-property", "--command-property", IO_ARG_MANY),
        [A_SYNC] = IO_ARG("--sync", NULL, IO_ARG_FLAG),
        [A_TIMEOUT] = IO_ARG("--timeout-ms", NULL, IO_ARG_ONE),
    };
    bool help;
    line_format_t fmt;
    long long partition = RD_KAFKA_PARTITION_UA, timeout = IO_DEFAULT_TIMEOUT_MS;
    produce_stats_t st = {0};
    rd_kafka_t *rk = NULL;
    int rc = io_args_parse("produce", argc, argv, args, A_COUNT, usage, &help);
    if (rc || help) goto out;
    if ((rc = check_args(args, &fmt, &partition, &timeout))) goto out;
    rd_kafka_conf_t *conf = producer_conf(args);
    if (!conf) {
        rc = CLI_USAGE;
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    if (!(rk = io_rk_new(RD_KAFKA_PRODUCER, conf))) {
        rc = CLI_FAIL;
        goto out;
    }
    io_catch_signals();
    const char *topic = args[A_TOPIC].value;
    int partitions = 0;
    if ((rc = io_wait_topic(rk, topic, (int)timeout, &partitions))) goto out;
    if (partition != RD_KAFKA_PARTITION_UA && partition >= partitions) {
        cli_error("produce: topic '%s' has %d partition(s); there is no partition %lld", topic,
                  partitions, partition);
        rc = CLI_FAIL;
        goto out;
    }
    rc = send_lines(rk, topic, (int32_t)partition, &fmt, args[A_SYNC].seen, &st);
    drain(rk);
    int left = rd_kafka_outq_len(rk);
    if (left > 0 && st.failed++ == 0)
        snprintf(st.first_error, sizeof(st.first_error), "interrupted before delivery");
    if (st.failed) {
        cli_error("produce: %lld of %lld record(s) not delivered; first error: %s",
                  st.attempted - st.delivered, st.attempted, st.first_error);
        rc = CLI_FAIL;
    }
out:
    if (rk) rd_kafka_destroy(rk);
    io_args_free(args, A_COUNT);
    return rc;
}
