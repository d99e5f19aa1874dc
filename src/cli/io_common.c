/*
 * Shared parts of samsa produce, consume and perf: option parsing, base64 and
 * JSON text, a quiet librdkafka client that remembers its last error, and the
 * bounded wait for a topic. See io_common.h for the contracts.
 */
#include "cli/io_common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

/* ---- options ---- */

static io_arg_t *find_arg(io_arg_t *args, size_t nargs, const char *name, size_t len) {
    for (size_t i = 0; i < nargs; i++) {
        const char *names[2] = {args[i].name, args[i].alias};
        for (int k = 0; k < 2; k++)
            if (names[k] && strlen(names[k]) == len && memcmp(names[k], name, len) == 0)
                return &args[i];
    }
    return NULL;
}

static int push_value(const char *cmd, io_arg_t *a, const char *v, int argc) {
    if (!a->values) {
        a->values = calloc((size_t)argc + 1, sizeof(*a->values));
        if (!a->values) {
            cli_error("%s: out of memory", cmd);
            return CLI_FAIL;
        }
    }
    a->values[a->nvalues++] = v;
    return 0;
}

typedef struct arg_table {
    io_arg_t *args;
    size_t n;
} arg_table_t;

static bool has_arg(const char *name, void *ctx) {
    arg_table_t *t = ctx;
    return find_arg(t->args, t->n, name, strlen(name)) != NULL;
}

int io_args_parse(const char *cmd, int argc, char **argv, io_arg_t *args, size_t nargs,
                  const char *usage, bool *help) {
    *help = false;
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            fputs(usage, stdout);
            *help = true;
            return 0;
        }
        arg_table_t table = {args, nargs};
        const char *expanded = cli_expand_short(w, has_arg, &table);
        if (expanded) w = expanded;
        if (strncmp(w, "--", 2) != 0) {
            cli_error("%s: unexpected argument '%s' (samsa %s --help lists the options)", cmd, w,
                      cmd);
            return CLI_USAGE;
        }
        const char *eq = strchr(w, '=');
        size_t len = eq ? (size_t)(eq - w) : strlen(w);
        io_arg_t *a = find_arg(args, nargs, w, len);
        if (!a) {
            cli_error("%s: unknown option '%.*s' (samsa %s --help lists the options)", cmd,
                      (int)len, w, cmd);
            return CLI_USAGE;
        }
        a->seen = true;
        if (a->kind == IO_ARG_FLAG) {
            if (eq) {
                cli_error("%s: %s takes no value", cmd, a->name);
                return CLI_USAGE;
            }
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            /* A value may start with "--" (a separator, say), but not be
             * another option's name: "--topic --partition 1" lacks a topic. */
            const char *next = i + 1 < argc ? argv[i + 1] : NULL;
            bool is_option =
                next && strncmp(next, "--", 2) == 0 &&
                (a->kind != IO_ARG_ONE || find_arg(args, nargs, next, strcspn(next, "=")) ||
                 strcmp(next, "--help") == 0);
            if (!next || is_option) {
                cli_error("%s: %s needs a value", cmd, a->name);
                return CLI_USAGE;
            }
            v = argv[++i];
        }
        if (a->kind == IO_ARG_ONE) {
            a->value = v;
            continue;
        }
        if (push_value(cmd, a, v, argc)) return CLI_FAIL;
        if (a->kind == IO_ARG_MULTI)
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                if (push_value(cmd, a, argv[++i], argc)) return CLI_FAIL;
    }
    return 0;
}

void io_args_free(io_arg_t *args, size_t nargs) {
    for (size_t i = 0; i < nargs; i++) {
        free(args[i].values);
        args[i].values = NULL;
        args[i].nvalues = 0;
    }
}

int io_arg_require(const char *cmd, const io_arg_t *a) {
    if (a->seen) return 0;
    cli_error("%s: %s is required", cmd, a->name);
    return CLI_USAGE;
}

int io_arg_int(const char *cmd, const io_arg_t *a, long long min, long long max, long long *out) {
    if (!a->seen) return 0;
    const char *s = a->value;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE) {
        cli_error("%s: %s: '%s' is not a whole number", cmd, a->name, s);
        return CLI_USAGE;
    }
    if (v < min || v > max) {
        cli_error("%s: %s: %lld is out of range [%lld, %lld]", cmd, a->name, v, min, max);
        return CLI_USAGE;
    }
    *out = v;
    return 0;
}

const char *io_prop_get(const io_arg_t *a, const char *key) {
    size_t klen = strlen(key);
    for (size_t i = a->nvalues; i-- > 0;) {
        const char *kv = a->values[i];
        if (strncmp(kv, key, klen) == 0 && kv[klen] == '=') return kv + klen + 1;
    }
    return NULL;
}

bool io_prop_true(const io_arg_t *a, const char *key, bool dflt) {
    const char *v = io_prop_get(a, key);
    return v ? strcasecmp(v, "true") == 0 : dflt;
}

int io_props_check(const char *cmd, const io_arg_t *a, const char *const *known) {
    for (size_t i = 0; i < a->nvalues; i++) {
        const char *kv = a->values[i];
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            cli_error("%s: %s '%s': expected key=value", cmd, a->name, kv);
            return CLI_USAGE;
        }
        bool ok = false;
        for (size_t k = 0; known[k] && !ok; k++)
            ok = strlen(known[k]) == (size_t)(eq - kv) &&
                 memcmp(known[k], kv, (size_t)(eq - kv)) == 0;
        if (!ok) {
            cli_error("%s: %s: unknown property '%.*s'", cmd, a->name, (int)(eq - kv), kv);
            return CLI_USAGE;
        }
    }
    return 0;
}

/* ---- base64, UTF-8, JSON ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t io_b64_len(size_t n) { return (n + 2) / 3 * 4; }

void io_b64_encode(const void *in, size_t n, char *out) {
    const unsigned char *p = in;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = b64_alphabet[(v >> 6) & 63];
        *out++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long io_b64_decode(const char *in, size_t n, unsigned char *out) {
    if (n % 4 != 0) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = 0;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            int d;
            if (in[i + k] == '=' && i + 4 == n && k >= 2) {
                pad++;
                d = 0;
            } else if (pad || (d = b64_value(in[i + k])) < 0) {
                return -1;
            }
            v = v << 6 | (uint32_t)d;
        }
        out[o++] = (unsigned char)(v >> 16);
        if (pad < 2) out[o++] = (unsigned char)(v >> 8);
        if (pad < 1) out[o++] = (unsigned char)v;
    }
    return (long)o;
}

bool io_utf8_valid(const void *p, size_t n) {
    const unsigned char *s = p;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

void io_json_string(FILE *f, const void *p, size_t n) {
    const unsigned char *s = p;
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7F)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

void io_json_bytes(FILE *f, const void *p, size_t n) {
    if (!p) {
        fputs("null", f);
        return;
    }
    if (io_utf8_valid(p, n)) {
        io_json_string(f, p, n);
        return;
    }
    char small[256];
    size_t len = io_b64_len(n);
    char *b = len <= sizeof(small) ? small : malloc(len);
    if (!b) {
        /* Not being able to print one value must not lose the line's shape. */
        fputs("{\"base64\":null}", f);
        return;
    }
    io_b64_encode(p, n, b);
    fputs("{\"base64\":\"", f);
    fwrite(b, 1, len, f);
    fputs("\"}", f);
    if (b != small) free(b);
}

/* ---- librdkafka client ---- */

static pthread_mutex_t last_error_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_error[512];

static void remember_error(const char *msg) {
    /* Log lines start with the thread's name: "[thrd:host:port/id]: ". */
    const char *body = strncmp(msg, "[thrd:", 6) == 0 ? strstr(msg, "]: ") : NULL;
    if (body) msg = body + 3;
    pthread_mutex_lock(&last_error_lock);
    snprintf(last_error, sizeof(last_error), "%s", msg);
    pthread_mutex_unlock(&last_error_lock);
}

const char *io_last_error(void) {
    static char copy[sizeof(last_error)];
    pthread_mutex_lock(&last_error_lock);
    memcpy(copy, last_error, sizeof(copy));
    pthread_mutex_unlock(&last_error_lock);
    return copy;
}

/* librdkafka's log lines go to stderr by default, one per failed connection
 * attempt; a console tool prints its own one-line errors instead. Errors
 * (level <= 3) are remembered for those. Runs on librdkafka's threads. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)fac;
    if (level <= 3) remember_error(buf);
}

static void loud_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    quiet_log(rk, level, fac, buf);
    fprintf(stderr, "%%%d|%s|%s| %s\n", level, rd_kafka_name(rk), fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    (void)opaque;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    remember_error(msg);
}

rd_kafka_t *io_rk_new(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    char err[512];
    char debug[8];
    size_t dlen = sizeof(debug);
    bool wants_debug =
        rd_kafka_conf_get(conf, "debug", debug, &dlen) == RD_KAFKA_CONF_OK && dlen > 1;
    rd_kafka_conf_set_log_cb(conf, wants_debug ? loud_log : quiet_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        cli_error("cannot create the Kafka client: %s", err);
    }
    return rk;
}

int io_producer_defaults(const char *cmd, rd_kafka_conf_t *conf, const io_arg_t *props,
                         const char *acks) {
    if (!acks) acks = io_prop_get(props, "acks");
    if (!acks) acks = io_prop_get(props, "request.required.acks");
    bool acks_all = !acks || strcmp(acks, "all") == 0 || strcmp(acks, "-1") == 0;
    const char *inflight = io_prop_get(props, "max.in.flight.requests.per.connection");
    if (!inflight) inflight = io_prop_get(props, "max.in.flight");
    /* Like Kafka's producer: idempotent unless an explicit setting conflicts
     * with it (acks other than all, more than 5 requests in flight). */
    bool idempotent = acks_all && (!inflight || atoi(inflight) <= 5);
    struct {
        const char *key, *value;
        bool apply;
    } sets[] = {
        {"acks", acks, acks != NULL},
        {"enable.idempotence", idempotent ? "true" : "false",
         !io_prop_get(props, "enable.idempotence")},
        /* Kafka's delivery.timeout.ms default; librdkafka's is 300 s. */
        {"message.timeout.ms", "120000",
         !io_prop_get(props, "message.timeout.ms") && !io_prop_get(props, "delivery.timeout.ms")},
    };
    char err[512];
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        if (!sets[i].apply) continue;
        if (rd_kafka_conf_set(conf, sets[i].key, sets[i].value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            cli_error("%s: %s: %s", cmd, sets[i].key, err);
            return CLI_USAGE;
        }
    }
    return 0;
}

int io_subscribe(const char *cmd, rd_kafka_t *rk, const char *topic) {
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (!err) return 0;
    cli_error("%s: subscribe: %s: %s", cmd, rd_kafka_err2name(err), rd_kafka_err2str(err));
    return CLI_FAIL;
}

void io_rebalance_apply(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts) {
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (coop)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
    } else if (coop) {
        rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

int64_t io_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t io_wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

enum { TOPIC_AGAIN = -1 };

/* One metadata round: 0 when the topic is ready, TOPIC_AGAIN to ask again,
 * CLI_FAIL after a message when it does not exist. */
static int topic_ready(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int wait_ms, int *partitions,
                       rd_kafka_resp_err_t *last) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, wait_ms);
    *last = err;
    if (err) return TOPIC_AGAIN;
    int rc = TOPIC_AGAIN;
    const char *name = rd_kafka_topic_name(rkt);
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, name) != 0) continue;
        *last = t->err;
        if (t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
            t->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
            t->err == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION) {
            cli_error("topic '%s': %s: %s", name, rd_kafka_err2name(t->err),
                      t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? "the topic does not exist"
                                                                        : rd_kafka_err2str(t->err));
            rc = CLI_FAIL;
            break;
        }
        if (t->err || t->partition_cnt <= 0) break;
        bool leaders = true;
        for (int p = 0; p < t->partition_cnt; p++)
            leaders = leaders && t->partitions[p].leader >= 0;
        if (leaders) {
            *partitions = t->partition_cnt;
            rc = 0;
        }
        break;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

int io_wait_topic(rd_kafka_t *rk, const char *topic, int timeout_ms, int *partitions) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        cli_error("topic '%s': %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return CLI_FAIL;
    }
    int64_t start = io_now_us(), deadline = start + (int64_t)timeout_ms * 1000;
    /* Connections still failing after a couple of attempts: report it then
     * rather than at the deadline (a broker just starting gets that long). */
    int64_t unreachable_after = start + 2 * CLI_CONNECT_TIMEOUT_MS * 1000;
    rd_kafka_resp_err_t last = RD_KAFKA_RESP_ERR__TIMED_OUT;
    int rc;
    for (;;) {
        if (last == RD_KAFKA_RESP_ERR__TRANSPORT && io_now_us() >= unreachable_after) {
            const char *detail = io_last_error();
            cli_error("cannot reach the cluster: %s: %s", rd_kafka_err2name(last),
                      detail[0] ? detail : "every bootstrap server refused or failed");
            rc = CLI_FAIL;
            break;
        }
        int64_t left_ms = (deadline - io_now_us()) / 1000;
        if (left_ms <= 0 || io_stop_requested()) {
            rc = CLI_FAIL;
            const char *detail = io_last_error();
            if (last == RD_KAFKA_RESP_ERR__TRANSPORT || last == RD_KAFKA_RESP_ERR__TIMED_OUT)
                cli_error("cannot reach the cluster within %d ms: %s: %s", timeout_ms,
                          rd_kafka_err2name(last), detail[0] ? detail : rd_kafka_err2str(last));
            else
                cli_error("topic '%s' not ready within %d ms: %s: %s", topic, timeout_ms,
                          rd_kafka_err2name(last), rd_kafka_err2str(last));
            break;
        }
        rc = topic_ready(rk, rkt, (int)(left_ms < 1000 ? left_ms : 1000), partitions, &last);
        if (rc != TOPIC_AGAIN) break;
        /* Not there yet (connecting, or a topic being created): ask again a
         * little later rather than in a tight loop. */
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* ---- signals ---- */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag++;
}

void io_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a read of stdin blocked in produce must return. */
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        cli_error("cannot catch SIGINT/SIGTERM: %s", strerror(errno));
}

bool io_stop_requested(void) { return stop_flag != 0; }

int io_stop_count(void) { return (int)stop_flag; }
