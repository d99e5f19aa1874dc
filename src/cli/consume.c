/*
 * samsa consume: the console consumer (Kafka's kafka-console-consumer.sh).
 * Without --group it assigns the partitions itself (no group, no commits);
 * with --group it subscribes and commits what it printed. Records are
 * written as Kafka's DefaultMessageFormatter lays them out (text), the same
 * with base64 bytes, or one JSON object per line. Not a benchmark: see perf.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/io_common.h"

static const char usage[] =
    "usage: samsa consume [--bootstrap-server HOST:PORT] --topic TOPIC [options]\n"
    "\n"
    "Prints records to stdout, one per line.\n"
    "\n"
    "options:\n"
    "  --bootstrap-server B      broker(s) to connect to (default: $SAMSA_BOOTSTRAP, else "
    "localhost:9092)\n"
    "  --topic T                 topic to read (required)\n"
    "  --group G                 consume in group G and commit offsets; without it the\n"
    "                            partitions are assigned directly and nothing is committed\n"
    "  --from-beginning          start at the earliest offset (in a group: when the group\n"
    "                            has no committed offset)\n"
    "  --partition P             read only partition P (not with --group)\n"
    "  --offset N|earliest|latest  start offset in --partition (default: latest)\n"
    "  --from-timestamp T        start at the first record at or after T: milliseconds\n"
    "                            since the epoch, or ISO-8601 such as 2024-05-01T12:00:00Z\n"
    "                            (local time when no zone is given)\n"
    "  --max-messages N          exit after N records\n"
    "  --timeout-ms N            exit after N ms without a record; also how long to wait\n"
    "                            for the cluster at start (default there: 10000)\n"
    "  --property k=v            output property (also --formatter-property):\n"
    "      print.key, print.headers, print.partition, print.offset, print.timestamp,\n"
    "      print.value (true|false; only print.value is true by default),\n"
    "      key.separator (tab), line.separator (newline), headers.separator (,),\n"
    "      headers.key.separator (:), null.literal (null; - with --format base64)\n"
    "  --format text|base64|json text: Kafka's layout, bytes as they are; base64: the\n"
    "                            same with key, value and header values in base64; json:\n"
    "                            one object per line with every field\n"
    "  --isolation-level L       read_uncommitted (default) or read_committed\n"
    "  --consumer-property k=v   any librdkafka consumer property (repeatable)\n"
    "\n"
    "Prints \"Processed a total of N messages\" on stderr at the end. Exit codes: 0 ok\n"
    "(also after --timeout-ms without records), 1 failed, 2 usage error.\n";

enum {
    A_BOOTSTRAP,
    A_TOPIC,
    A_GROUP,
    A_FROM_BEGINNING,
    A_PARTITION,
    A_OFFSET,
    A_FROM_TS,
    A_MAX,
    A_TIMEOUT,
    A_PROPERTY,
    A_FORMAT,
    A_ISOLATION,
    A_CONSUMER_PROP,
    A_COUNT
};

typedef enum { FMT_TEXT, FMT_BASE64, FMT_JSON } out_kind_t;

/* Kafka's DefaultMessageFormatter settings. */
typedef struct {
    out_kind_t kind;
    bool timestamp, partition, offset, headers, key, value;
    const char *key_sep, *line_sep, *hdr_sep, *hdr_key_sep, *null_literal;
} out_format_t;

typedef struct {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* without a group: where the assigned partitions deliver */
    rd_kafka_topic_t *rkt;   /* without a group */
    int32_t first, last;     /* without a group: the partitions started */
    const char *topic;
    int64_t *next;     /* without a group: next offset per partition (< 0: symbolic) */
    bool told_waiting; /* the "waiting for records" note was shown */
    bool group;
    int64_t from_ts; /* -1 unless --from-timestamp */
    int timeout_ms;  /* for offset look-ups */
} consumer_t;

/* ---- output ---- */

static void put_bytes(const out_format_t *f, const void *p, size_t n) {
    if (!p) {
        fputs(f->null_literal, stdout);
    } else if (f->kind == FMT_BASE64) {
        char small[512];
        size_t len = io_b64_len(n);
        char *b = len <= sizeof(small) ? small : malloc(len);
        if (!b) {
            cli_error("consume: out of memory");
            exit(CLI_FAIL);
        }
        io_b64_encode(p, n, b);
        fwrite(b, 1, len, stdout);
        if (b != small) free(b);
    } else {
        fwrite(p, 1, n, stdout);
    }
}

static void put_sep(const out_format_t *f, bool more) {
    fputs(more ? f->key_sep : f->line_sep, stdout);
}

/* Kafka's order: timestamp, partition, offset, headers, key, value; each
 * followed by key.separator when more follow, line.separator after the last. */
static void write_text(const out_format_t *f, const rd_kafka_message_t *m) {
    if (f->timestamp) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        if (tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
            fputs("NO_TIMESTAMP", stdout);
        else
            printf("%s:%lld", tt == RD_KAFKA_TIMESTAMP_CREATE_TIME ? "CreateTime" : "LogAppendTime",
                   (long long)ts);
        put_sep(f, f->partition || f->offset || f->headers || f->key || f->value);
    }
    if (f->partition) {
        printf("Partition:%d", (int)m->partition);
        put_sep(f, f->offset || f->headers || f->key || f->value);
    }
    if (f->offset) {
        printf("Offset:%lld", (long long)m->offset);
        put_sep(f, f->headers || f->key || f->value);
    }
    if (f->headers) {
        rd_kafka_headers_t *hdrs = NULL;
        const char *name;
        const void *val;
        size_t len, i = 0;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
            for (; rd_kafka_header_get_all(hdrs, i, &name, &val, &len) == 0; i++) {
                if (i) fputs(f->hdr_sep, stdout);
                fputs(name, stdout);
                fputs(f->hdr_key_sep, stdout);
                put_bytes(f, val, len);
            }
        if (i == 0) fputs("NO_HEADERS", stdout);
        put_sep(f, f->key || f->value);
    }
    if (f->key) {
        put_bytes(f, m->key, m->key_len);
        put_sep(f, f->value);
    }
    if (f->value) {
        put_bytes(f, m->payload, m->len);
        fputs(f->line_sep, stdout);
    }
}

static void write_json(const rd_kafka_message_t *m) {
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    const char *topic = rd_kafka_topic_name(m->rkt);
    fputs("{\"topic\":", stdout);
    io_json_bytes(stdout, topic, strlen(topic));
    printf(",\"partition\":%d,\"offset\":%lld,\"timestamp\":", (int)m->partition,
           (long long)m->offset);
    if (tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        fputs("null,\"timestamp_type\":\"NoTimestampType\"", stdout);
    else
        printf("%lld,\"timestamp_type\":\"%s\"", (long long)ts,
               tt == RD_KAFKA_TIMESTAMP_CREATE_TIME ? "CreateTime" : "LogAppendTime");
    fputs(",\"key\":", stdout);
    io_json_bytes(stdout, m->key, m->key_len);
    fputs(",\"value\":", stdout);
    io_json_bytes(stdout, m->payload, m->len);
    fputs(",\"headers\":[", stdout);
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &len) == 0; i++) {
            fputs(i ? ",{\"key\":" : "{\"key\":", stdout);
            io_json_bytes(stdout, name, strlen(name));
            fputs(",\"value\":", stdout);
            io_json_bytes(stdout, val, len);
            fputc('}', stdout);
        }
    }
    fputs("]}\n", stdout);
}

/* ---- arguments ---- */

/* Days from 1970-01-01 to a proleptic Gregorian date (no time zone). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/*
 * Milliseconds since the epoch, or ISO-8601: YYYY-MM-DD[THH:MM[:SS[.fff]]]
 * followed by Z, +HH:MM, +HHMM (or -) or nothing (local time). -1 if neither.
 */
static int64_t parse_time(const char *s) {
    bool digits = *s != '\0';
    for (const char *p = s; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    if (digits) return strtoll(s, NULL, 10);
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3) return -1;
    const char *p = s + used;
    if (*p == 'T' || *p == ' ') {
        int n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2) return -1;
        p += 1 + n;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &n) != 1) return -1;
            p += 1 + n;
            if (*p == '.') {
                int digits_read = 0, frac = 0;
                for (p++; isdigit((unsigned char)*p); p++, digits_read++)
                    if (digits_read < 3) frac = frac * 10 + (*p - '0');
                for (; digits_read < 3; digits_read++)
                    frac *= 10;
                ms = frac;
            }
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    int64_t secs;
    if (*p == '\0') {
        struct tm tm = {.tm_year = y - 1900,
                        .tm_mon = mo - 1,
                        .tm_mday = d,
                        .tm_hour = h,
                        .tm_min = mi,
                        .tm_sec = sec,
                        .tm_isdst = -1};
        time_t t = mktime(&tm);
        if (t == (time_t)-1) return -1;
        secs = (int64_t)t;
    } else {
        int zone = 0;
        if (*p == 'Z' && p[1] == '\0') {
            zone = 0;
        } else if (*p == '+' || *p == '-') {
            int zh, zm, n = 0;
            if (sscanf(p + 1, "%2d:%2d%n", &zh, &zm, &n) != 2 &&
                sscanf(p + 1, "%2d%2d%n", &zh, &zm, &n) != 2)
                return -1;
            if (p[1 + n] != '\0') return -1;
            zone = (*p == '-' ? -1 : 1) * (zh * 3600 + zm * 60);
        } else {
            return -1;
        }
        secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - zone;
    }
    return secs * 1000 + ms;
}

static int parse_format(io_arg_t *args, out_format_t *f) {
    static const char *const known[] = {
        "print.key",         "print.headers",         "print.partition", "print.offset",
        "print.timestamp",   "print.value",           "key.separator",   "line.separator",
        "headers.separator", "headers.key.separator", "null.literal",    NULL};
    int rc = io_props_check("consume", &args[A_PROPERTY], known);
    if (rc) return rc;
    const char *kind = args[A_FORMAT].seen ? args[A_FORMAT].value : "text";
    if (strcmp(kind, "text") == 0) {
        f->kind = FMT_TEXT;
    } else if (strcmp(kind, "base64") == 0) {
        f->kind = FMT_BASE64;
    } else if (strcmp(kind, "json") == 0) {
        f->kind = FMT_JSON;
    } else {
        cli_error("consume: --format: '%s' is not text, base64 or json", kind);
        return CLI_USAGE;
    }
    const io_arg_t *p = &args[A_PROPERTY];
    f->timestamp = io_prop_true(p, "print.timestamp", false);
    f->partition = io_prop_true(p, "print.partition", false);
    f->offset = io_prop_true(p, "print.offset", false);
    f->headers = io_prop_true(p, "print.headers", false);
    f->key = io_prop_true(p, "print.key", false);
    f->value = io_prop_true(p, "print.value", true);
    const char *v;
    f->key_sep = (v = io_prop_get(p, "key.separator")) ? v : "\t";
    f->line_sep = (v = io_prop_get(p, "line.separator")) ? v : "\n";
    f->hdr_sep = (v = io_prop_get(p, "headers.separator")) ? v : ",";
    f->hdr_key_sep = (v = io_prop_get(p, "headers.key.separator")) ? v : ":";
    /* "null" is itself base64 (of 3 bytes); "-" is not, so base64 output
     * keeps null and those bytes apart. */
    f->null_literal = (v = io_prop_get(p, "null.literal")) ? v
                      : f->kind == FMT_BASE64              ? "-"
                                                           : "null";
    return 0;
}

/* Checks the combinations Kafka's console consumer refuses. */
static int check_args(io_arg_t *args, long long *partition, int64_t *start, int64_t *from_ts) {
    int rc;
    if ((rc = io_arg_require("consume", &args[A_TOPIC])) ||
        (rc = io_arg_int("consume", &args[A_PARTITION], 0, INT32_MAX, partition)))
        return rc;
    struct {
        int a, b;
    } clash[] = {{A_FROM_BEGINNING, A_OFFSET},
                 {A_FROM_BEGINNING, A_FROM_TS},
                 {A_OFFSET, A_FROM_TS},
                 {A_GROUP, A_PARTITION}};
    for (size_t i = 0; i < sizeof(clash) / sizeof(clash[0]); i++)
        if (args[clash[i].a].seen && args[clash[i].b].seen) {
            cli_error("consume: %s and %s cannot be used together", args[clash[i].a].name,
                      args[clash[i].b].name);
            return CLI_USAGE;
        }
    if (args[A_OFFSET].seen && !args[A_PARTITION].seen) {
        cli_error("consume: --offset needs --partition");
        return CLI_USAGE;
    }
    *start = args[A_FROM_BEGINNING].seen ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    if (args[A_OFFSET].seen) {
        const char *o = args[A_OFFSET].value;
        if (strcmp(o, "earliest") == 0) {
            *start = RD_KAFKA_OFFSET_BEGINNING;
        } else if (strcmp(o, "latest") == 0) {
            *start = RD_KAFKA_OFFSET_END;
        } else {
            long long n = 0;
            if ((rc = io_arg_int("consume", &args[A_OFFSET], 0, INT64_MAX, &n))) return rc;
            *start = n;
        }
    }
    *from_ts = -1;
    if (args[A_FROM_TS].seen && (*from_ts = parse_time(args[A_FROM_TS].value)) < 0) {
        cli_error("consume: --from-timestamp: '%s' is neither milliseconds nor ISO-8601",
                  args[A_FROM_TS].value);
        return CLI_USAGE;
    }
    const char *iso = args[A_ISOLATION].value;
    if (args[A_ISOLATION].seen && strcmp(iso, "read_committed") != 0 &&
        strcmp(iso, "read_uncommitted") != 0) {
        cli_error("consume: --isolation-level: '%s' is not read_committed or read_uncommitted",
                  iso);
        return CLI_USAGE;
    }
    return 0;
}

/* ---- consuming ---- */

/* Rewrites each partition's offset to the first one at or after the
 * timestamp (the end when there is none). */
static int offsets_at_time(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int64_t ts,
                           int timeout_ms) {
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = ts;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, parts, timeout_ms);
    if (err) {
        cli_error("consume: looking up offsets for the timestamp: %s: %s", rd_kafka_err2name(err),
                  rd_kafka_err2str(err));
        return CLI_FAIL;
    }
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].err) {
            cli_error("consume: partition %d: %s: %s", (int)parts->elems[i].partition,
                      rd_kafka_err2name(parts->elems[i].err),
                      rd_kafka_err2str(parts->elems[i].err));
            return CLI_FAIL;
        }
        if (parts->elems[i].offset < 0) parts->elems[i].offset = RD_KAFKA_OFFSET_END;
    }
    return 0;
}

/* In a group with --from-timestamp: each assigned partition starts at the
 * timestamp (committed offsets are not used). Runs inside consumer_poll. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    consumer_t *c = opaque;
    /* When the look-up fails (it said so on stderr) the group's committed
     * offsets are used instead. */
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS &&
        offsets_at_time(rk, parts, c->from_ts, c->timeout_ms))
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    io_rebalance_apply(rk, err, parts);
}

/* Without a group: start the partitions [first, last] at start (or the
 * timestamp) on one queue, with the simple consumer (no group, no commits). */
/* A start offset past the end of the log would be reset by the client: say
 * where the end is and start there. */
static int64_t check_start(consumer_t *c, int32_t p, int64_t start) {
    int64_t lo = 0, hi = 0;
    if (start < 0 || rd_kafka_query_watermark_offsets(c->rk, c->topic, p, &lo, &hi,
                                                      c->timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return start;
    if (start <= hi) return start;
    cli_error("consume: warning: --offset %lld is past the end of %s-%d (the log ends at offset "
              "%lld); starting at the end",
              (long long)start, c->topic, (int)p, (long long)hi);
    return RD_KAFKA_OFFSET_END;
}

/* On a terminal, after a few quiet seconds: where each partition waits and
 * where its log ends, so an empty partition or a far offset is not a mystery. */
#define WAITING_NOTE_MS 3000
static void tell_waiting(consumer_t *c) {
    c->told_waiting = true;
    if (c->group || !c->next || !cli_progress_wanted()) return;
    for (int32_t p = c->first; p <= c->last && p - c->first < 8; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(c->rk, c->topic, p, &lo, &hi, c->timeout_ms)) continue;
        int64_t at = c->next[p - c->first];
        if (at == RD_KAFKA_OFFSET_END) at = hi;
        if (at == RD_KAFKA_OFFSET_BEGINNING) at = lo;
        if (at < 0) continue;
        cli_error("consume: waiting for records on %s-%d at offset %lld; the log ends at %lld",
                  c->topic, (int)p, (long long)at, (long long)hi);
    }
    if (c->last - c->first >= 8)
        cli_error("consume: ... and %d more partitions", (int)(c->last - c->first - 7));
}

static int start_assigned(consumer_t *c, const char *topic, int64_t start) {
    c->rkt = rd_kafka_topic_new(c->rk, topic, NULL);
    c->queue = rd_kafka_queue_new(c->rk);
    c->topic = topic;
    c->next = calloc((size_t)(c->last - c->first + 1), sizeof(*c->next));
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(c->last - c->first + 1);
    for (int32_t p = c->first; p <= c->last; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = check_start(c, p, start);
    int rc = 0;
    if (c->from_ts >= 0) rc = offsets_at_time(c->rk, parts, c->from_ts, c->timeout_ms);
    for (int i = 0; i < parts->cnt && c->next; i++)
        c->next[i] = parts->elems[i].offset;
    for (int i = 0; i < parts->cnt && !rc; i++)
        if (rd_kafka_consume_start_queue(c->rkt, parts->elems[i].partition, parts->elems[i].offset,
                                         c->queue) != 0) {
            rd_kafka_resp_err_t err = rd_kafka_last_error();
            cli_error("consume: partition %d: %s: %s", (int)parts->elems[i].partition,
                      rd_kafka_err2name(err), rd_kafka_err2str(err));
            rc = CLI_FAIL;
        }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

static rd_kafka_message_t *next_message(consumer_t *c, int wait_ms) {
    return c->group ? rd_kafka_consumer_poll(c->rk, wait_ms)
                    : rd_kafka_consume_queue(c->queue, wait_ms);
}

/* Errors that end the run: the topic or partition is gone or forbidden. */
static bool error_is_fatal(rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
           err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
           err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED || err == RD_KAFKA_RESP_ERR__FATAL;
}

/* True once a group member has partitions (always true without a group). */
static bool has_assignment(consumer_t *c) {
    if (!c->group) return true;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts)) return false;
    bool any = parts->cnt > 0;
    rd_kafka_topic_partition_list_destroy(parts);
    return any;
}

/*
 * Prints records until max, the idle timeout or a signal. Returns 0 or
 * CLI_FAIL after a fatal error. In a group the idle clock starts when
 * partitions are assigned, since joining alone takes seconds (the broker's
 * initial rebalance delay); the wait for that is bounded by GROUP_JOIN_MS.
 */
#define GROUP_JOIN_MS 60000
static int consume_loop(consumer_t *c, const out_format_t *f, long long max, long long idle_ms,
                        long long *count) {
    int64_t last = io_now_us();
    bool unflushed = false, assigned = has_assignment(c);
    char last_warning[512] = "";
    while (!io_stop_requested() && (max < 0 || *count < max)) {
        int wait = 0;
        if (!unflushed) {
            wait = 100;
            if (idle_ms >= 0) {
                long long limit = assigned || idle_ms > GROUP_JOIN_MS ? idle_ms : GROUP_JOIN_MS;
                int64_t left = limit - (io_now_us() - last) / 1000;
                if (left <= 0) break;
                if (left < wait) wait = (int)left;
            }
        }
        rd_kafka_message_t *m = next_message(c, wait);
        if (!m) {
            /* Nothing waiting: show what was printed before blocking. */
            if (unflushed) fflush(stdout);
            unflushed = false;
            if (!assigned && (assigned = has_assignment(c))) last = io_now_us();
            if (!c->told_waiting && io_now_us() - last >= WAITING_NOTE_MS * 1000LL) tell_waiting(c);
            continue;
        }
        assigned = true;
        if (m->err) {
            rd_kafka_resp_err_t err = m->err;
            char msg[512];
            snprintf(msg, sizeof(msg), "%s: %s", rd_kafka_err2name(err),
                     rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
            if (error_is_fatal(err)) {
                cli_error("consume: %s", msg);
                return CLI_FAIL;
            }
            if (strcmp(msg, last_warning) != 0) cli_error("consume: warning: %s", msg);
            snprintf(last_warning, sizeof(last_warning), "%s", msg);
            continue;
        }
        if (f->kind == FMT_JSON)
            write_json(m);
        else
            write_text(f, m);
        if (c->next && m->partition >= c->first && m->partition <= c->last)
            c->next[m->partition - c->first] = m->offset + 1;
        rd_kafka_message_destroy(m);
        unflushed = true;
        ++*count;
        last = io_now_us();
    }
    fflush(stdout);
    return 0;
}

static int set_defaults(rd_kafka_conf_t *conf, io_arg_t *args) {
    const io_arg_t *cp = &args[A_CONSUMER_PROP];
    struct {
        const char *key, *value;
        bool apply;
    } sets[] = {
        /* Kafka's consumers read uncommitted records by default; librdkafka's
         * default is read_committed. */
        {"isolation.level", args[A_ISOLATION].seen ? args[A_ISOLATION].value : "read_uncommitted",
         args[A_ISOLATION].seen || !io_prop_get(cp, "isolation.level")},
        {"group.id", args[A_GROUP].value, args[A_GROUP].seen},
        {"auto.offset.reset", args[A_FROM_BEGINNING].seen ? "earliest" : "latest",
         args[A_GROUP].seen && !io_prop_get(cp, "auto.offset.reset")},
        /* The topic must exist: consuming does not create it. */
        {"allow.auto.create.topics", "false", !io_prop_get(cp, "allow.auto.create.topics")},
    };
    char err[512];
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        if (!sets[i].apply) continue;
        if (rd_kafka_conf_set(conf, sets[i].key, sets[i].value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            cli_error("consume: %s: %s", sets[i].key, err);
            return CLI_USAGE;
        }
    }
    return 0;
}

/* Commits what was printed (when in a group), then leaves. */
static int consumer_finish(consumer_t *c) {
    int rc = 0;
    if (c->group) {
        rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            cli_error("consume: committing offsets: %s: %s", rd_kafka_err2name(err),
                      rd_kafka_err2str(err));
            rc = CLI_FAIL;
        }
        rd_kafka_consumer_close(c->rk);
    } else if (c->rkt) {
        for (int32_t p = c->first; p <= c->last; p++)
            rd_kafka_consume_stop(c->rkt, p);
    }
    if (c->queue) rd_kafka_queue_destroy(c->queue);
    if (c->rkt) rd_kafka_topic_destroy(c->rkt);
    return rc;
}

int cli_consume(int argc, char **argv) {
    io_arg_t args[A_COUNT] = {
        [A_BOOTSTRAP] = IO_ARG("--bootstrap-server", NULL, IO_ARG_ONE),
        [A_TOPIC] = IO_ARG("--topic", NULL, IO_ARG_ONE),
        [A_GROUP] = IO_ARG("--group", NULL, IO_ARG_ONE),
        [A_FROM_BEGINNING] = IO_ARG("--from-beginning", NULL, IO_ARG_FLAG),
        [A_PARTITION] = IO_ARG("--partition", NULL, IO_ARG_ONE),
        [A_OFFSET] = IO_ARG("--offset", NULL, IO_ARG_ONE),
        [A_FROM_TS] = IO_ARG("--from-timestamp", NULL, IO_ARG_ONE),
        [A_MAX] = IO_ARG("--max-messages", NULL, IO_ARG_ONE),
        [A_TIMEOUT] = IO_ARG("--timeout-ms", NULL, IO_ARG_ONE),
        [A_PROPERTY] = IO_ARG("--property", "--formatter-property", IO_ARG_MANY),
        [A_FORMAT] = IO_ARG("--format", NULL, IO_ARG_ONE),
        [A_ISOLATION] = IO_ARG("--isolation-level", NULL, IO_ARG_ONE),
        [A_CONSUMER_PROP] = IO_ARG("--consumer-property", "--command-property", IO_ARG_MANY),
    };
    bool help;
    out_format_t fmt;
    long long partition = -1, max = -1, idle = -1;
    int64_t start, from_ts;
    long long count = 0;
    consumer_t c = {0};
    bool started = false;
    int rc = io_args_parse("consume", argc, argv, args, A_COUNT, usage, &help);
    if (rc || help) goto out;
    if ((rc = check_args(args, &partition, &start, &from_ts)) || (rc = parse_format(args, &fmt)) ||
        (rc = io_arg_int("consume", &args[A_MAX], 0, INT64_MAX, &max)) ||
        (rc = io_arg_int("consume", &args[A_TIMEOUT], 0, INT32_MAX, &idle)))
        goto out;
    io_arg_t *cp = &args[A_CONSUMER_PROP];
    rd_kafka_conf_t *conf =
        cli_rk_conf(cli_bootstrap(args[A_BOOTSTRAP].value), (char *const *)cp->values, cp->nvalues);
    if (!conf || (rc = set_defaults(conf, args))) {
        if (conf) rd_kafka_conf_destroy(conf);
        rc = CLI_USAGE;
        goto out;
    }
    c.group = args[A_GROUP].seen;
    c.from_ts = from_ts;
    c.timeout_ms = idle > 0 ? (int)idle : IO_DEFAULT_TIMEOUT_MS;
    if (c.group && from_ts >= 0) rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, &c);
    if (!(c.rk = io_rk_new(RD_KAFKA_CONSUMER, conf))) {
        rc = CLI_FAIL;
        goto out;
    }
    io_catch_signals();
    const char *topic = args[A_TOPIC].value;
    int partitions = 0;
    if ((rc = io_wait_topic(c.rk, topic, c.timeout_ms, &partitions))) goto out;
    if (partition >= partitions) {
        cli_error("consume: topic '%s' has %d partition(s); there is no partition %lld", topic,
                  partitions, partition);
        rc = CLI_FAIL;
        goto out;
    }
    started = true;
    if (c.group) {
        if ((rc = io_subscribe("consume", c.rk, topic))) goto out;
    } else {
        c.first = partition >= 0 ? (int32_t)partition : 0;
        c.last = partition >= 0 ? (int32_t)partition : partitions - 1;
        if ((rc = start_assigned(&c, topic, start))) goto out;
    }
    rc = consume_loop(&c, &fmt, max, idle, &count);
out:
    if (c.rk) {
        int frc = consumer_finish(&c);
        if (!rc) rc = frc;
        rd_kafka_destroy(c.rk);
    }
    free(c.next);
    if (started) fprintf(stderr, "Processed a total of %lld messages\n", count);
    io_args_free(args, A_COUNT);
    return rc;
}
