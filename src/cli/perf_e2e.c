/*
 * samsa perf e2e: end-to-end latency at a fixed rate. One producer sends at
 * R records/s with its send time (CLOCK_REALTIME, µs, little-endian in the
 * first 8 bytes) in each payload; a consumer in the same process, assigned
 * to every partition from its end before the first send, takes receive time
 * minus send time. Threads: the main thread sends and serves delivery
 * reports; the receiver thread owns the histogram until it is joined.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/perf_common.h"

static const char usage[] =
    "usage: samsa perf e2e [--bootstrap-server B] --topic T --num-records N\n"
    "                      --record-size S --throughput R [options]\n"
    "\n"
    "Produces N records of S bytes (at least 8) at R records/s and consumes them in\n"
    "the same process; each record's latency is its receive time minus its send time.\n"
    "\n"
    "options:\n"
    "  --bootstrap-server B        broker(s)\n"
    "  --topic T                   topic (auto-created if the broker allows it)\n"
    "  --num-records N             records to send\n"
    "  --record-size S             bytes per record, at least 8 (the send time)\n"
    "  --throughput R              records per second, -1 for no limit\n"
    "  --producer-props k=v ...    librdkafka producer properties (default here:\n"
    "                              linger.ms=0)\n"
    "  --consumer-props k=v ...    librdkafka consumer properties\n"
    "  --output text|json          summary format (default: text)\n"
    "  --latency-csv FILE          write the percentile curve (percentile,latency_ms\n"
    "                              from 0 to 99.99, then 100 = max) for plotting\n"
    "  --timeout-ms N              wait for the cluster at start, and for the last\n"
    "                              records after sending (default: 10000)\n"
    "\n"
    "Text: N records, avg A ms, p50 X ms, p99 Y ms, p99.9 Z ms, max M ms.\n"
    "JSON: {\"records\",\"p50_ms\",\"p99_ms\",\"p999_ms\",\"max_ms\",\"avg_ms\"}.\n"
    "Exit 1 when a record was not delivered or did not arrive in time.\n";

enum {
    E_BOOTSTRAP,
    E_TOPIC,
    E_NUM,
    E_SIZE,
    E_RATE,
    E_PPROPS,
    E_CPROPS,
    E_OUTPUT,
    E_CSV,
    E_TIMEOUT,
    E_COUNT
};

typedef struct {
    rd_kafka_queue_t *queue;
    perf_hist_t hist;
    long long want;
    atomic_llong received;
    atomic_llong deadline_us; /* 0 until the sender is done; then when to give up */
} receiver_t;

static void *receive_records(void *arg) {
    receiver_t *r = arg;
    while (atomic_load(&r->received) < r->want && !io_stop_requested()) {
        long long deadline = atomic_load(&r->deadline_us);
        if (deadline && io_now_us() > deadline) break;
        /* One at a time: the batch call waits for a full batch or its
         * timeout, which would add up to that timeout to every latency. */
        rd_kafka_message_t *m = rd_kafka_consume_queue(r->queue, 100);
        if (!m) continue;
        if (!m->err && m->len >= 8) {
            int64_t now = io_wall_us();
            uint64_t sent = 0;
            const unsigned char *p = m->payload;
            for (int k = 7; k >= 0; k--)
                sent = sent << 8 | p[k];
            perf_hist_add(&r->hist, now > (int64_t)sent ? (uint64_t)(now - (int64_t)sent) : 0);
            atomic_fetch_add(&r->received, 1);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

typedef struct {
    long long failed;
    char first_error[512];
} send_errors_t;

static void on_e2e_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    send_errors_t *e = opaque;
    if (m->err && e->failed++ == 0)
        snprintf(e->first_error, sizeof(e->first_error), "%s: %s", rd_kafka_err2name(m->err),
                 rd_kafka_err2str(m->err));
}

/* The consumer, positioned at each partition's current end (looked up
 * first: an OFFSET_END resolved later could skip the first records). */
static int start_receiver(rd_kafka_t *rk, const char *topic, int partitions, int timeout_ms,
                          rd_kafka_topic_t **rkt, rd_kafka_queue_t *q) {
    *rkt = rd_kafka_topic_new(rk, topic, NULL);
    for (int p = 0; p < partitions; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, timeout_ms);
        if (!err && rd_kafka_consume_start_queue(*rkt, p, hi, q) != 0) err = rd_kafka_last_error();
        if (err) {
            cli_error("perf e2e: partition %d: %s: %s", p, rd_kafka_err2name(err),
                      rd_kafka_err2str(err));
            return CLI_FAIL;
        }
    }
    return 0;
}

/* Sends n records at rate, serving delivery reports as it goes. */
static void send_timed(rd_kafka_t *rk, const char *topic, unsigned char *payload, size_t size,
                       long long n, double rate, send_errors_t *errs) {
    perf_throttle_t th;
    perf_throttle_start(&th, rate);
    for (long long i = 0; i < n && !io_stop_requested(); i++) {
        perf_throttle_wait(&th, (uint64_t)i);
        uint64_t now = (uint64_t)io_wall_us();
        for (int k = 0; k < 8; k++)
            payload[k] = (unsigned char)(now >> (8 * k));
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_VALUE(payload, size), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if (err && errs->failed++ == 0)
            snprintf(errs->first_error, sizeof(errs->first_error), "%s: %s", rd_kafka_err2name(err),
                     rd_kafka_err2str(err));
        rd_kafka_poll(rk, 0);
    }
}

/* Waits until the deadline for the last acknowledgements; what is still
 * unacknowledged then counts as failed. */
static void await_acks(rd_kafka_t *rk, int64_t deadline, long long timeout_ms,
                       send_errors_t *errs) {
    while (rd_kafka_outq_len(rk) > 0 && !io_stop_requested() && io_now_us() < deadline)
        rd_kafka_poll(rk, 50);
    int left = rd_kafka_outq_len(rk);
    if (left <= 0) return;
    if (errs->failed == 0)
        snprintf(errs->first_error, sizeof(errs->first_error),
                 "not acknowledged within %lld ms of the last send", timeout_ms);
    errs->failed += left;
}

static void print_summary(const perf_hist_t *h, bool json) {
    double p50 = (double)perf_hist_percentile(h, 50) / 1000.0;
    double p99 = (double)perf_hist_percentile(h, 99) / 1000.0;
    double p999 = (double)perf_hist_percentile(h, 99.9) / 1000.0;
    double max = (double)h->max_us / 1000.0, avg = perf_hist_mean_us(h) / 1000.0;
    if (json)
        printf("{\"records\":%llu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
               "\"max_ms\":%.3f,\"avg_ms\":%.3f}\n",
               (unsigned long long)h->n, p50, p99, p999, max, avg);
    else
        printf("%llu records, avg %.3f ms, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f "
               "ms.\n",
               (unsigned long long)h->n, avg, p50, p99, p999, max);
}

static int write_csv(const char *path, const perf_hist_t *h) {
    FILE *f = fopen(path, "w");
    if (!f) {
        cli_error("perf e2e: --latency-csv %s: %s", path, strerror(errno));
        return CLI_FAIL;
    }
    int bad = perf_hist_write_csv(h, f);
    if (fclose(f) != 0 || bad) {
        cli_error("perf e2e: writing %s failed", path);
        return CLI_FAIL;
    }
    return 0;
}

static rd_kafka_t *make_client(rd_kafka_type_t type, io_arg_t *args, int props,
                               send_errors_t *errs) {
    rd_kafka_conf_t *conf = perf_conf("perf e2e", &args[E_BOOTSTRAP], &args[props]);
    if (!conf) return NULL;
    char err[512];
    if (type == RD_KAFKA_PRODUCER) {
        /* Each record goes out at once unless the caller asks for batching. */
        if (io_producer_defaults("perf e2e", conf, &args[props], NULL) ||
            (!io_prop_get(&args[props], "linger.ms") &&
             !io_prop_get(&args[props], "queue.buffering.max.ms") &&
             rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof(err)))) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, on_e2e_delivery);
        rd_kafka_conf_set_opaque(conf, errs);
    }
    return io_rk_new(type, conf);
}

int perf_e2e(int argc, char **argv) {
    static const char cmd[] = "perf e2e";
    io_arg_t args[E_COUNT] = {
        [E_BOOTSTRAP] = IO_ARG("--bootstrap-server", NULL, IO_ARG_ONE),
        [E_TOPIC] = IO_ARG("--topic", NULL, IO_ARG_ONE),
        [E_NUM] = IO_ARG("--num-records", NULL, IO_ARG_ONE),
        [E_SIZE] = IO_ARG("--record-size", NULL, IO_ARG_ONE),
        [E_RATE] = IO_ARG("--throughput", NULL, IO_ARG_ONE),
        [E_PPROPS] = IO_ARG("--producer-props", NULL, IO_ARG_MULTI),
        [E_CPROPS] = IO_ARG("--consumer-props", NULL, IO_ARG_MULTI),
        [E_OUTPUT] = IO_ARG("--output", NULL, IO_ARG_ONE),
        [E_CSV] = IO_ARG("--latency-csv", NULL, IO_ARG_ONE),
        [E_TIMEOUT] = IO_ARG("--timeout-ms", NULL, IO_ARG_ONE),
    };
    bool help, json = false, hist_ok = false, thread_started = false;
    long long n = 0, size = 0, timeout = IO_DEFAULT_TIMEOUT_MS;
    double rate = -1;
    rd_kafka_t *prod = NULL, *cons = NULL;
    rd_kafka_topic_t *rkt = NULL;
    int partitions = 0;
    unsigned char *payload = NULL;
    receiver_t recv = {0};
    send_errors_t errs = {0};
    pthread_t receiver;
    int rc = io_args_parse(cmd, argc, argv, args, E_COUNT, usage, &help);
    if (rc || help) goto out;
    if ((rc = io_arg_require(cmd, &args[E_TOPIC])) || (rc = io_arg_require(cmd, &args[E_NUM])) ||
        (rc = io_arg_require(cmd, &args[E_SIZE])) || (rc = io_arg_require(cmd, &args[E_RATE])) ||
        (rc = io_arg_int(cmd, &args[E_NUM], 1, INT64_MAX, &n)) ||
        (rc = io_arg_int(cmd, &args[E_SIZE], 8, 100 * 1024 * 1024, &size)) ||
        (rc = io_arg_int(cmd, &args[E_TIMEOUT], 1, INT32_MAX, &timeout)) ||
        (rc = perf_parse_rate(cmd, &args[E_RATE], &rate)) ||
        (rc = perf_parse_output(cmd, &args[E_OUTPUT], &json)))
        goto out;
    if (!(prod = make_client(RD_KAFKA_PRODUCER, args, E_PPROPS, &errs)) ||
        !(cons = make_client(RD_KAFKA_CONSUMER, args, E_CPROPS, NULL))) {
        rc = CLI_USAGE;
        goto out;
    }
    if (perf_hist_init(&recv.hist) || !(payload = malloc((size_t)size))) {
        cli_error("%s: out of memory", cmd);
        rc = CLI_FAIL;
        goto out;
    }
    hist_ok = true;
    perf_fill_random(payload, (size_t)size);
    io_catch_signals();
    const char *topic = args[E_TOPIC].value;
    recv.queue = rd_kafka_queue_new(cons);
    recv.want = n;
    if ((rc = io_wait_topic(prod, topic, (int)timeout, &partitions)) ||
        (rc = start_receiver(cons, topic, partitions, (int)timeout, &rkt, recv.queue)))
        goto out;
    if (pthread_create(&receiver, NULL, receive_records, &recv) != 0) {
        cli_error("%s: cannot start the receiving thread", cmd);
        rc = CLI_FAIL;
        goto out;
    }
    thread_started = true;
    send_timed(prod, topic, payload, (size_t)size, n, rate, &errs);
    int64_t deadline = io_now_us() + timeout * 1000;
    atomic_store(&recv.deadline_us, deadline);
    await_acks(prod, deadline, timeout, &errs);
    pthread_join(receiver, NULL);
    thread_started = false;
    print_summary(&recv.hist, json);
    fflush(stdout);
    if (args[E_CSV].seen && (rc = write_csv(args[E_CSV].value, &recv.hist))) goto out;
    if (errs.failed) {
        cli_error("%s: %lld record(s) not delivered; first error: %s", cmd, errs.failed,
                  errs.first_error);
        rc = CLI_FAIL;
    } else if ((long long)recv.hist.n < n) {
        cli_error("%s: only %llu of %lld records arrived within %lld ms of the last send", cmd,
                  (unsigned long long)recv.hist.n, n, timeout);
        rc = CLI_FAIL;
    }
out:
    if (thread_started) {
        atomic_store(&recv.deadline_us, 1);
        pthread_join(receiver, NULL);
    }
    if (rkt) {
        for (int p = 0; p < partitions; p++)
            rd_kafka_consume_stop(rkt, p);
        rd_kafka_topic_destroy(rkt);
    }
    if (recv.queue) rd_kafka_queue_destroy(recv.queue);
    if (cons) rd_kafka_destroy(cons);
    if (prod) rd_kafka_destroy(prod);
    if (hist_ok) perf_hist_free(&recv.hist);
    free(payload);
    io_args_free(args, E_COUNT);
    return rc;
}
