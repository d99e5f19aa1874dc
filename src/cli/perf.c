/*
 * samsa perf: throughput and latency tests in the manner of Kafka's
 * kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh, with their
 * output lines, so results read the same against Samsa and Apache Kafka.
 * perf produce and perf consume live here; perf e2e in perf_e2e.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/io_common.h"
#include "cli/perf_common.h"

static const char usage[] =
    "usage: samsa perf <test> [options]   (samsa perf <test> --help for its options)\n"
    "\n"
    "tests:\n"
    "  produce   producer throughput and send-to-acknowledgement latency\n"
    "            (kafka-producer-perf-test.sh)\n"
    "  consume   consumer throughput (kafka-consumer-perf-test.sh)\n"
    "  e2e       end-to-end latency at a fixed rate: produce to consume in one process\n";

static const char produce_usage[] =
    "usage: samsa perf produce [--bootstrap-server B] --topic T --num-records N\n"
    "                          --record-size S --throughput R [options]\n"
    "\n"
    "Sends N records of S random bytes (fixed at start) at R records/s (-1: no limit)\n"
    "and measures each record's latency from send to acknowledgement.\n"
    "\n"
    "options:\n"
    "  --bootstrap-server B        broker(s) (or bootstrap.servers in --producer-props)\n"
    "  --topic T                   topic (auto-created if the broker allows it)\n"
    "  --num-records N             records to send\n"
    "  --record-size S             bytes per record\n"
    "  --throughput R              records per second, -1 for no limit\n"
    "  --producer-props k=v ...    librdkafka producer properties (also\n"
    "                              --command-property), e.g. linger.ms=5 batch.size=65536\n"
    "  --acks all|-1|1|0           acknowledgements (default: all, idempotent)\n"
    "  --output text|json          summary format (default: text)\n"
    "  --timeout-ms N              wait for the cluster at start (default: 10000)\n"
    "  --transaction-records N     send in transactions of N records (needs\n"
    "                              --transactional-id); reports commit latency\n"
    "  --transactional-id ID       the producer's transactional.id\n"
    "\n"
    "Every 5 s a progress line goes to stderr; at the end one summary line goes to\n"
    "stdout, in Kafka's words:\n"
    "  N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency,\n"
    "  P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.\n"
    "or with --output json: {\"records\",\"records_per_sec\",\"mb_per_sec\",\n"
    "\"avg_latency_ms\",\"max_latency_ms\",\"p50_ms\",\"p95_ms\",\"p99_ms\",\"p999_ms\"}.\n"
    "MB is 2^20 bytes. Exit 1 when a record was not delivered.\n";

static const char consume_usage[] =
    "usage: samsa perf consume [--bootstrap-server B] --topic T --messages N [options]\n"
    "\n"
    "Reads N records and reports the throughput.\n"
    "\n"
    "options:\n"
    "  --bootstrap-server B        broker(s) (or bootstrap.servers in --consumer-props)\n"
    "  --topic T                   topic to read\n"
    "  --messages N                records to read (also --num-records)\n"
    "  --group G                   consume in group G (from the earliest offset when it\n"
    "                              has none); without it all partitions are assigned\n"
    "                              from the beginning\n"
    "  --consumer-props k=v ...    librdkafka consumer properties (also\n"
    "                              --command-property)\n"
    "  --timeout-ms N              give up after N ms without a record (default: 10000)\n"
    "  --output text|json          summary format (default: text)\n"
    "  --hide-header               text: leave out the header line\n"
    "\n"
    "Text output is Kafka's ConsumerPerformance header and line:\n"
    "  start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,\n"
    "  nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
    "JSON: {\"records\",\"bytes\",\"seconds\",\"mb_per_sec\",\"records_per_sec\"}.\n"
    "Bytes count keys and values; MB is 2^20 bytes. Exit 1 when fewer than N\n"
    "records arrived before the timeout (the summary still covers what did).\n";

/* ---- shared by the perf tests (perf_common.h) ---- */

int perf_parse_output(const char *cmd, const io_arg_t *a, bool *json) {
    const char *o = a->seen ? a->value : "text";
    *json = strcmp(o, "json") == 0;
    if (!*json && strcmp(o, "text") != 0) {
        cli_error("%s: --output: '%s' is not text or json", cmd, o);
        return CLI_USAGE;
    }
    return 0;
}

rd_kafka_conf_t *perf_conf(const char *cmd, const io_arg_t *bootstrap, const io_arg_t *props) {
    const char *b = bootstrap->seen ? bootstrap->value : io_prop_get(props, "bootstrap.servers");
    return cli_rk_conf(cli_bootstrap(b), (char *const *)props->values, props->nvalues);
}

int perf_parse_rate(const char *cmd, const io_arg_t *a, double *rate) {
    char *end = NULL;
    double v = strtod(a->value, &end);
    if (*a->value == '\0' || *end != '\0' || !(v > 0 || v == -1)) {
        cli_error("%s: --throughput: '%s' is not a positive number or -1", cmd, a->value);
        return CLI_USAGE;
    }
    *rate = v;
    return 0;
}

void perf_fill_random(unsigned char *p, size_t n) {
    /* xorshift64*: the payload only has to be incompressible, not secret. */
    uint64_t x = (uint64_t)io_wall_us() | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = (unsigned char)((x * 0x2545F4914F6CDD1DULL) >> 56);
    }
}

/* ---- perf produce ---- */

#define PROGRESS_US 5000000 /* Kafka's reporting interval */

/*
 * Delivery statistics. Written only by the poll thread (delivery reports run
 * there); the sending thread waits on `room` when librdkafka's queue is full
 * and reads the totals after joining it.
 */
typedef struct {
    perf_hist_t hist;
    size_t record_size;
    long long failed;
    char first_error[512];
    /* the current 5 s window */
    int64_t window_start_us;
    long long window_n;
    uint64_t window_sum_us, window_max_us;
    /* poll thread control */
    rd_kafka_t *rk;
    atomic_bool sending_done;
    pthread_mutex_t lock;
    pthread_cond_t room;
} produce_run_t;

static void on_perf_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    produce_run_t *r = opaque;
    int64_t now = io_now_us();
    if (m->err) {
        pthread_mutex_lock(&r->lock);
        if (r->failed++ == 0)
            snprintf(r->first_error, sizeof(r->first_error), "%s: %s", rd_kafka_err2name(m->err),
                     rd_kafka_err2str(m->err));
        pthread_mutex_unlock(&r->lock);
        return;
    }
    uint64_t lat = (uint64_t)(now - (int64_t)(intptr_t)m->_private);
    perf_hist_add(&r->hist, lat);
    r->window_n++;
    r->window_sum_us += lat;
    if (lat > r->window_max_us) r->window_max_us = lat;
    int64_t elapsed = now - r->window_start_us;
    if (elapsed >= PROGRESS_US) {
        double secs = (double)elapsed / 1e6;
        double rps = (double)r->window_n / secs;
        fprintf(stderr,
                "%lld records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms "
                "max latency.\n",
                r->window_n, rps, rps * (double)r->record_size / MIB,
                (double)r->window_sum_us / (double)r->window_n / 1000.0,
                (double)r->window_max_us / 1000.0);
        r->window_start_us = now;
        r->window_n = 0;
        r->window_sum_us = r->window_max_us = 0;
    }
}

/* The poll thread: serves delivery reports as they come, so each latency is
 * taken when the acknowledgement arrives, not when the sender gets round to
 * it. Ends when sending is done and nothing is left in flight. */
static void *poll_deliveries(void *arg) {
    produce_run_t *r = arg;
    int64_t stop_seen = 0;
    for (;;) {
        bool done = atomic_load(&r->sending_done);
        if (done && rd_kafka_outq_len(r->rk) == 0) break;
        /* Interrupted: acknowledgements in flight get 2 s (a second signal: none). */
        if (io_stop_requested() && !stop_seen) stop_seen = io_now_us();
        if (stop_seen && (io_stop_count() > 1 || io_now_us() - stop_seen > 2000000)) {
            rd_kafka_purge(r->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            break;
        }
        int served = rd_kafka_poll(r->rk, 20);
        if (served > 0) {
            pthread_mutex_lock(&r->lock);
            pthread_cond_broadcast(&r->room);
            pthread_mutex_unlock(&r->lock);
        }
    }
    return NULL;
}

/* Waits (at most 10 ms) for the poll thread to serve some deliveries. */
static void wait_for_room(produce_run_t *r) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->lock);
    pthread_cond_timedwait(&r->room, &r->lock, &ts);
    pthread_mutex_unlock(&r->lock);
}

/* Sends n records at the given rate; returns how many were handed over. */
static long long send_records(produce_run_t *r, const char *topic, const unsigned char *payload,
                              long long n, double rate) {
    perf_throttle_t th;
    perf_throttle_start(&th, rate);
    long long i;
    for (i = 0; i < n && !io_stop_requested(); i++) {
        perf_throttle_wait(&th, (uint64_t)i);
        int64_t sent = io_now_us();
        for (;;) {
            /* No copy: every record points at the same payload. */
            rd_kafka_resp_err_t err =
                rd_kafka_producev(r->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(0),
                                  RD_KAFKA_V_VALUE((void *)payload, r->record_size),
                                  RD_KAFKA_V_OPAQUE((void *)(intptr_t)sent), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                if (io_stop_requested()) return i;
                wait_for_room(r);
                continue;
            }
            if (err) {
                pthread_mutex_lock(&r->lock);
                if (r->failed++ == 0)
                    snprintf(r->first_error, sizeof(r->first_error), "%s: %s",
                             rd_kafka_err2name(err), rd_kafka_err2str(err));
                pthread_mutex_unlock(&r->lock);
            }
            break;
        }
    }
    return i;
}

/* Transactional sending: begin, n_txn records, commit, until n are sent;
 * each commit's duration (flush of its records + EndTxn) goes to commits. */
static long long send_transactions(produce_run_t *r, const char *topic,
                                   const unsigned char *payload, long long n, double rate,
                                   long long per_txn, perf_hist_t *commits) {
    long long sent = 0;
    while (sent < n && !io_stop_requested() && r->failed == 0) {
        rd_kafka_error_t *e = rd_kafka_begin_transaction(r->rk);
        long long k = n - sent < per_txn ? n - sent : per_txn;
        if (!e) sent += send_records(r, topic, payload, k, rate);
        int64_t t0 = io_now_us();
        if (!e) e = rd_kafka_commit_transaction(r->rk, 60000);
        if (e) {
            pthread_mutex_lock(&r->lock);
            if (r->failed++ == 0)
                snprintf(r->first_error, sizeof(r->first_error), "transaction: %s",
                         rd_kafka_error_string(e));
            pthread_mutex_unlock(&r->lock);
            rd_kafka_error_destroy(e);
            break;
        }
        perf_hist_add(commits, (uint64_t)(io_now_us() - t0));
    }
    return sent;
}

static void print_commit_summary(const perf_hist_t *c, bool json) {
    if (json) {
        printf("{\"transactions\":%llu,\"commit_avg_ms\":%.3f,\"commit_p50_ms\":%.3f,"
               "\"commit_p99_ms\":%.3f,\"commit_max_ms\":%.3f}\n",
               (unsigned long long)c->n, perf_hist_mean_us(c) / 1000.0,
               (double)perf_hist_percentile(c, 50) / 1000.0,
               (double)perf_hist_percentile(c, 99) / 1000.0, (double)c->max_us / 1000.0);
        return;
    }
    printf("%llu transactions committed, %.2f ms avg commit latency, %.2f ms 50th, %.2f ms 99th, "
           "%.2f ms max.\n",
           (unsigned long long)c->n, perf_hist_mean_us(c) / 1000.0,
           (double)perf_hist_percentile(c, 50) / 1000.0,
           (double)perf_hist_percentile(c, 99) / 1000.0, (double)c->max_us / 1000.0);
}

static void print_produce_summary(const produce_run_t *r, double secs, bool json) {
    const perf_hist_t *h = &r->hist;
    double rps = secs > 0 ? (double)h->n / secs : 0;
    double mbps = rps * (double)r->record_size / MIB;
    if (json) {
        printf("{\"records\":%llu,\"records_per_sec\":%.3f,\"mb_per_sec\":%.3f,"
               "\"avg_latency_ms\":%.3f,\"max_latency_ms\":%.3f,\"p50_ms\":%.3f,\"p95_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"p999_ms\":%.3f}\n",
               (unsigned long long)h->n, rps, mbps, perf_hist_mean_us(h) / 1000.0,
               (double)h->max_us / 1000.0, (double)perf_hist_percentile(h, 50) / 1000.0,
               (double)perf_hist_percentile(h, 95) / 1000.0,
               (double)perf_hist_percentile(h, 99) / 1000.0,
               (double)perf_hist_percentile(h, 99.9) / 1000.0);
        return;
    }
    /* Kafka's ProducerPerformance line: percentiles in whole milliseconds. */
    printf("%llu records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max "
           "latency, %llu ms 50th, %llu ms 95th, %llu ms 99th, %llu ms 99.9th.\n",
           (unsigned long long)h->n, rps, mbps, perf_hist_mean_us(h) / 1000.0,
           (double)h->max_us / 1000.0, (unsigned long long)(perf_hist_percentile(h, 50) / 1000),
           (unsigned long long)(perf_hist_percentile(h, 95) / 1000),
           (unsigned long long)(perf_hist_percentile(h, 99) / 1000),
           (unsigned long long)(perf_hist_percentile(h, 99.9) / 1000));
}

enum {
    P_BOOTSTRAP,
    P_TOPIC,
    P_NUM,
    P_SIZE,
    P_RATE,
    P_PROPS,
    P_ACKS,
    P_OUTPUT,
    P_TIMEOUT,
    P_TXN_RECORDS,
    P_TXN_ID,
    P_COUNT
};

static int perf_produce(int argc, char **argv) {
    static const char cmd[] = "perf produce";
    io_arg_t args[P_COUNT] = {
        [P_BOOTSTRAP] = IO_ARG("--bootstrap-server", NULL, IO_ARG_ONE),
        [P_TOPIC] = IO_ARG("--topic", NULL, IO_ARG_ONE),
        [P_NUM] = IO_ARG("--num-records", NULL, IO_ARG_ONE),
        [P_SIZE] = IO_ARG("--record-size", NULL, IO_ARG_ONE),
        [P_RATE] = IO_ARG("--throughput", NULL, IO_ARG_ONE),
        [P_PROPS] = IO_ARG("--producer-props", "--command-property", IO_ARG_MULTI),
        [P_ACKS] = IO_ARG("--acks", NULL, IO_ARG_ONE),
        [P_OUTPUT] = IO_ARG("--output", NULL, IO_ARG_ONE),
        [P_TIMEOUT] = IO_ARG("--timeout-ms", NULL, IO_ARG_ONE),
        [P_TXN_RECORDS] = IO_ARG("--transaction-records", NULL, IO_ARG_ONE),
        [P_TXN_ID] = IO_ARG("--transactional-id", NULL, IO_ARG_ONE),
    };
    bool help, json = false;
    long long n = 0, size = 0, timeout = IO_DEFAULT_TIMEOUT_MS, per_txn = 0;
    perf_hist_t commits;
    bool commits_ok = false;
    double rate = -1;
    unsigned char *payload = NULL;
    produce_run_t r = {.failed = 0};
    bool hist_ok = false, thread_started = false;
    pthread_t poller;
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.room, NULL);
    int rc = io_args_parse(cmd, argc, argv, args, P_COUNT, produce_usage, &help);
    if (rc || help) goto out;
    if ((rc = io_arg_require(cmd, &args[P_TOPIC])) || (rc = io_arg_require(cmd, &args[P_NUM])) ||
        (rc = io_arg_require(cmd, &args[P_SIZE])) || (rc = io_arg_require(cmd, &args[P_RATE])) ||
        (rc = io_arg_int(cmd, &args[P_NUM], 1, INT64_MAX, &n)) ||
        (rc = io_arg_int(cmd, &args[P_SIZE], 0, 100 * 1024 * 1024, &size)) ||
        (rc = io_arg_int(cmd, &args[P_TIMEOUT], 1, INT32_MAX, &timeout)) ||
        (rc = perf_parse_rate(cmd, &args[P_RATE], &rate)) ||
        (rc = perf_parse_output(cmd, &args[P_OUTPUT], &json)) ||
        (rc = io_arg_int(cmd, &args[P_TXN_RECORDS], 1, INT32_MAX, &per_txn)))
        goto out;
    if (per_txn && !args[P_TXN_ID].value) {
        cli_error("%s: --transaction-records needs --transactional-id", cmd);
        rc = CLI_USAGE;
        goto out;
    }
    rd_kafka_conf_t *conf = perf_conf(cmd, &args[P_BOOTSTRAP], &args[P_PROPS]);
    if (!conf || io_producer_defaults(cmd, conf, &args[P_PROPS], args[P_ACKS].value)) {
        if (conf) rd_kafka_conf_destroy(conf);
        rc = CLI_USAGE;
        goto out;
    }
    r.record_size = (size_t)size;
    if (perf_hist_init(&r.hist) || !(payload = malloc(size ? (size_t)size : 1))) {
        rd_kafka_conf_destroy(conf);
        cli_error("%s: out of memory", cmd);
        rc = CLI_FAIL;
        goto out;
    }
    hist_ok = true;
    if (per_txn) {
        char err[256];
        /* Kafka's 60 s transaction timeout is below the 120 s delivery timeout
         * perf uses; librdkafka refuses that, so the transaction gets 120 s. */
        bool own_timeout = io_prop_get(&args[P_PROPS], "transaction.timeout.ms") != NULL;
        if (perf_hist_init(&commits) ||
            rd_kafka_conf_set(conf, "transactional.id", args[P_TXN_ID].value, err, sizeof(err)) ||
            (!own_timeout && rd_kafka_conf_set(conf, "transaction.timeout.ms", "120000", err,
                                               sizeof(err)))) {
            rd_kafka_conf_destroy(conf);
            cli_error("%s: --transactional-id: %s", cmd, err);
            rc = CLI_FAIL;
            goto out;
        }
        commits_ok = true;
    }
    perf_fill_random(payload, (size_t)size);
    rd_kafka_conf_set_dr_msg_cb(conf, on_perf_delivery);
    rd_kafka_conf_set_opaque(conf, &r);
    if (!(r.rk = io_rk_new(RD_KAFKA_PRODUCER, conf))) {
        rc = CLI_FAIL;
        goto out;
    }
    io_catch_signals();
    int partitions;
    if ((rc = io_wait_topic(r.rk, args[P_TOPIC].value, (int)timeout, &partitions))) goto out;
    if (per_txn) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(r.rk, (int)timeout);
        if (e) {
            cli_error("%s: init transactions: %s", cmd, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rc = CLI_FAIL;
            goto out;
        }
    }
    int64_t start = io_now_us();
    r.window_start_us = start;
    if (pthread_create(&poller, NULL, poll_deliveries, &r) != 0) {
        cli_error("%s: cannot start the delivery thread", cmd);
        rc = CLI_FAIL;
        goto out;
    }
    thread_started = true;
    if (per_txn)
        send_transactions(&r, args[P_TOPIC].value, payload, n, rate, per_txn, &commits);
    else
        send_records(&r, args[P_TOPIC].value, payload, n, rate);
    atomic_store(&r.sending_done, true);
    pthread_join(poller, NULL);
    thread_started = false;
    print_produce_summary(&r, (double)(io_now_us() - start) / 1e6, json);
    if (per_txn) print_commit_summary(&commits, json);
    fflush(stdout);
    if (r.failed) {
        cli_error("%s: %lld record(s) not delivered; first error: %s", cmd, r.failed,
                  r.first_error);
        rc = CLI_FAIL;
    } else if ((long long)r.hist.n < n) {
        cli_error("%s: interrupted after %llu of %lld records", cmd, (unsigned long long)r.hist.n,
                  n);
        rc = CLI_FAIL;
    }
out:
    if (thread_started) {
        atomic_store(&r.sending_done, true);
        pthread_join(poller, NULL);
    }
    if (r.rk) rd_kafka_destroy(r.rk);
    if (hist_ok) perf_hist_free(&r.hist);
    if (commits_ok) perf_hist_free(&commits);
    free(payload);
    pthread_cond_destroy(&r.room);
    pthread_mutex_destroy(&r.lock);
    io_args_free(args, P_COUNT);
    return rc;
}

/* ---- perf consume ---- */

typedef struct {
    int64_t assigned_us; /* when the group first gave partitions (0 before) */
} group_join_t;

/* Records when the group first assigned partitions (Kafka's
 * rebalance.time.ms); runs inside the consume call. */
static void on_perf_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts, void *opaque) {
    group_join_t *j = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && !j->assigned_us)
        j->assigned_us = io_now_us();
    io_rebalance_apply(rk, err, parts);
}

/* Kafka's ConsumerPerformance date format: yyyy-MM-dd HH:mm:ss:SSS. */
static void format_time(int64_t wall_us, char *out, size_t n) {
    time_t secs = (time_t)(wall_us / 1000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    size_t len = strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + len, n - len, ":%03d", (int)(wall_us / 1000 % 1000));
}

typedef struct {
    long long records, bytes;
    int64_t start_wall_us, start_us, end_us, join_us;
} consume_result_t;

static void print_consume_summary(const consume_result_t *c, bool json, bool header) {
    double secs = (double)(c->end_us - c->start_us) / 1e6;
    double mb = (double)c->bytes / MIB;
    double fetch_secs = secs - (double)c->join_us / 1e6;
    if (json) {
        printf("{\"records\":%lld,\"bytes\":%lld,\"seconds\":%.3f,\"mb_per_sec\":%.4f,"
               "\"records_per_sec\":%.4f}\n",
               c->records, c->bytes, secs, secs > 0 ? mb / secs : 0,
               secs > 0 ? (double)c->records / secs : 0);
        return;
    }
    char start[64], end[64];
    format_time(c->start_wall_us, start, sizeof(start));
    format_time(c->start_wall_us + (c->end_us - c->start_us), end, sizeof(end));
    if (header)
        printf("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
               "nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n");
    printf("%s, %s, %.4f, %.4f, %lld, %.4f, %lld, %lld, %.4f, %.4f\n", start, end, mb,
           secs > 0 ? mb / secs : 0, c->records, secs > 0 ? (double)c->records / secs : 0,
           (long long)(c->join_us / 1000), (long long)(fetch_secs * 1000),
           fetch_secs > 0 ? mb / fetch_secs : 0,
           fetch_secs > 0 ? (double)c->records / fetch_secs : 0);
}

/* Reads until n records, the idle timeout or a signal, in batches. */
static void read_records(rd_kafka_queue_t *q, long long n, long long idle_ms, consume_result_t *c,
                         const group_join_t *join) {
    enum { BATCH = 10000 };
    rd_kafka_message_t **msgs = malloc(BATCH * sizeof(*msgs));
    if (!msgs) return;
    int64_t last = io_now_us();
    char last_warning[512] = "";
    while (c->records < n && !io_stop_requested()) {
        /* In a group, joining is not idle time (as with consume). */
        if (join && !join->assigned_us) last = io_now_us();
        if (io_now_us() - last > idle_ms * 1000) break;
        /* The call returns when the batch is full or after its wait: keep the
         * wait short so the last, partial batch is not held back long. */
        ssize_t got = rd_kafka_consume_batch_queue(q, 10, msgs, BATCH);
        int64_t now = io_now_us();
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                    strcmp(rd_kafka_err2name(m->err), last_warning) != 0) {
                    snprintf(last_warning, sizeof(last_warning), "%s", rd_kafka_err2name(m->err));
                    cli_error("perf consume: warning: %s: %s", rd_kafka_err2name(m->err),
                              rd_kafka_message_errstr(m));
                }
            } else if (c->records < n) {
                c->records++;
                c->bytes += (long long)(m->len + m->key_len);
                c->end_us = now;
                last = now;
            }
            rd_kafka_message_destroy(m);
        }
    }
    free(msgs);
}

enum { C_BOOTSTRAP, C_TOPIC, C_NUM, C_GROUP, C_PROPS, C_TIMEOUT, C_OUTPUT, C_HIDE, C_COUNT };

static int perf_consume(int argc, char **argv) {
    static const char cmd[] = "perf consume";
    io_arg_t args[C_COUNT] = {
        [C_BOOTSTRAP] = IO_ARG("--bootstrap-server", NULL, IO_ARG_ONE),
        [C_TOPIC] = IO_ARG("--topic", NULL, IO_ARG_ONE),
        [C_NUM] = IO_ARG("--messages", "--num-records", IO_ARG_ONE),
        [C_GROUP] = IO_ARG("--group", NULL, IO_ARG_ONE),
        [C_PROPS] = IO_ARG("--consumer-props", "--command-property", IO_ARG_MULTI),
        [C_TIMEOUT] = IO_ARG("--timeout-ms", "--timeout", IO_ARG_ONE),
        [C_OUTPUT] = IO_ARG("--output", NULL, IO_ARG_ONE),
        [C_HIDE] = IO_ARG("--hide-header", NULL, IO_ARG_FLAG),
    };
    bool help, json = false;
    long long n = 0, timeout = IO_DEFAULT_TIMEOUT_MS;
    rd_kafka_t *rk = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_topic_t *rkt = NULL;
    int partitions = 0;
    group_join_t join = {0};
    consume_result_t res = {0};
    char err[512];
    int rc = io_args_parse(cmd, argc, argv, args, C_COUNT, consume_usage, &help);
    if (rc || help) goto out;
    if ((rc = io_arg_require(cmd, &args[C_TOPIC])) || (rc = io_arg_require(cmd, &args[C_NUM])) ||
        (rc = io_arg_int(cmd, &args[C_NUM], 1, INT64_MAX, &n)) ||
        (rc = io_arg_int(cmd, &args[C_TIMEOUT], 1, INT32_MAX, &timeout)) ||
        (rc = perf_parse_output(cmd, &args[C_OUTPUT], &json)))
        goto out;
    rd_kafka_conf_t *conf = perf_conf(cmd, &args[C_BOOTSTRAP], &args[C_PROPS]);
    if (!conf) {
        rc = CLI_USAGE;
        goto out;
    }
    bool group = args[C_GROUP].seen;
    if ((group && rd_kafka_conf_set(conf, "group.id", args[C_GROUP].value, err, sizeof(err))) ||
        (!io_prop_get(&args[C_PROPS], "auto.offset.reset") &&
         rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err)))) {
        cli_error("%s: %s", cmd, err);
        rd_kafka_conf_destroy(conf);
        rc = CLI_USAGE;
        goto out;
    }
    if (group) rd_kafka_conf_set_rebalance_cb(conf, on_perf_rebalance);
    rd_kafka_conf_set_opaque(conf, &join);
    if (!(rk = io_rk_new(RD_KAFKA_CONSUMER, conf))) {
        rc = CLI_FAIL;
        goto out;
    }
    io_catch_signals();
    const char *topic = args[C_TOPIC].value;
    if ((rc = io_wait_topic(rk, topic, (int)timeout, &partitions))) goto out;
    res.start_wall_us = io_wall_us();
    res.start_us = res.end_us = io_now_us();
    if (group) {
        if ((rc = io_subscribe(cmd, rk, topic))) goto out;
        q = rd_kafka_queue_get_consumer(rk);
    } else {
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        q = rd_kafka_queue_new(rk);
        for (int p = 0; p < partitions; p++)
            if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) != 0) {
                rd_kafka_resp_err_t e = rd_kafka_last_error();
                cli_error("%s: partition %d: %s: %s", cmd, p, rd_kafka_err2name(e),
                          rd_kafka_err2str(e));
                rc = CLI_FAIL;
                goto out;
            }
    }
    read_records(q, n, timeout, &res, group ? &join : NULL);
    res.join_us = join.assigned_us ? join.assigned_us - res.start_us : 0;
    print_consume_summary(&res, json, !args[C_HIDE].seen);
    fflush(stdout);
    if (res.records < n) {
        cli_error("%s: only %lld of %lld records arrived (timeout %lld ms without a record)", cmd,
                  res.records, n, timeout);
        rc = CLI_FAIL;
    }
out:
    if (rkt)
        for (int p = 0; p < partitions; p++)
            rd_kafka_consume_stop(rkt, p);
    if (q) rd_kafka_queue_destroy(q);
    if (rkt) rd_kafka_topic_destroy(rkt);
    if (rk) {
        if (args[C_GROUP].seen) rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    io_args_free(args, C_COUNT);
    return rc;
}

int cli_perf(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "produce") == 0) return perf_produce(argc - 1, argv + 1);
    if (strcmp(argv[1], "consume") == 0) return perf_consume(argc - 1, argv + 1);
    if (strcmp(argv[1], "e2e") == 0) return perf_e2e(argc - 1, argv + 1);
    cli_error("perf: unknown test '%s' (samsa perf --help lists them)", argv[1]);
    return CLI_USAGE;
}
