/*
 * Every served API at every served version, fed randomly filled requests
 * (the generated fill helpers: random counts, nulls, strings, ids, numbers)
 * over real sockets to a broker running in this process. Each must be
 * answered with a response that decodes, or the connection closed; the broker
 * must keep serving and stop cleanly afterwards. Under ASan/UBSan (make
 * test-asan) this is what catches a handler reading out of bounds or leaking
 * on a path no client takes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "broker/apis.h"
#include "broker/broker.h"
#include "protocol/gen/create_partitions_request.h"
#include "protocol/gen/create_topics_request.h"
#include "protocol/gen/fetch_request.h"
#include "protocol/gen/join_group_request.h"
#include "protocol/gen/produce_request.h"
#include "protocol/gen_testing.h"
#include "protocol/request.h"
#include "sock_util.h"
#include "test.h"

#define ROUNDS_PER_VERSION 40

const char *pt_last_failure; /* used by the generated eq helpers */
#define READ_TIMEOUT_MS 2000

static const pt_msg_fns_t *fill_for(const proto_msg_desc_t *d) {
    for (size_t i = 0; i < proto_msgs_count; i++)
        if (&proto_msgs[i] == d) return &pt_msg_fns[i];
    return NULL;
}

/* Keeps random requests from asking for work no test should wait on: topics
 * of millions of partitions, long polls of days. (A request that does park
 * is fine: each request has its own connection and the broker answers parked
 * requests when it stops.) */
static void tame(int16_t key, void *body) {
    if (key == 0) {
        proto_produce_request_t *r = body;
        r->timeout_ms = abs(r->timeout_ms % 200);
    } else if (key == 1) {
        proto_fetch_request_t *r = body;
        r->max_wait_ms = abs(r->max_wait_ms % 200);
    } else if (key == 11) {
        proto_join_group_request_t *r = body;
        r->rebalance_timeout_ms = abs(r->rebalance_timeout_ms % 500);
        r->session_timeout_ms = abs(r->session_timeout_ms % 500);
    } else if (key == 19) {
        proto_create_topics_request_t *r = body;
        for (int32_t i = 0; i < r->topics.n; i++) {
            int32_t *np = &r->topics.v[i].num_partitions;
            *np = *np % 5;
        }
    } else if (key == 37) {
        proto_create_partitions_request_t *r = body;
        for (int32_t i = 0; i < r->topics.n; i++)
            r->topics.v[i].count %= 6;
    }
}

/*
 * Sends one random request of (api, version) on a fresh connection. Returns
 * 1 when answered with a decodable response, 0 when the connection was closed
 * or nothing came before the timeout, -1 on a response that does not decode.
 * A well-formed request deserves an answer, so the caller counts closes.
 */
static int send_random(int port, const proto_api_desc_t *api, int16_t v, pt_rng_t *g) {
    const pt_msg_fns_t *f = fill_for(api->request);
    if (!f) return -1;
    sm_arena_t a;
    sm_arena_init(&a, 64u << 20);
    void *body = sm_arena_alloc(&a, api->request->struct_size);
    f->fill(g, &a, v, body);
    tame(api->api_key, body);
    proto_request_header_t h;
    proto_request_header_init(&h);
    h.request_api_key = api->api_key;
    h.request_api_version = v;
    h.correlation_id = (int32_t)pt_rand(g, 1000000);
    h.client_id = (sm_str_t){"fuzz", 4};
    int hv = proto_request_header_version(api->api_key, v);
    size_t hn = proto_request_header_size((int16_t)hv, &h), bn = api->request->size(v, body);
    uint8_t *frame = malloc(4 + hn + bn);
    sm_writer_t w = sm_writer_make(frame, 4 + hn + bn);
    int result = -1;
    if (sm_wr_i32(&w, (int32_t)(hn + bn)) || proto_request_header_encode(&w, (int16_t)hv, &h) ||
        api->request->encode(&w, v, body)) {
        fprintf(stderr, "%s v%d: encoding the random request failed\n", api->name, v);
        goto out;
    }
    int fd = connect_to(port);
    if (fd < 0) goto out;
    result = 0;
    uint8_t size[4];
    if (write_full(fd, frame, 4 + hn + bn) && read_full(fd, size, 4, READ_TIMEOUT_MS)) {
        uint32_t n =
            (uint32_t)size[0] << 24 | (uint32_t)size[1] << 16 | (uint32_t)size[2] << 8 | size[3];
        uint8_t *resp = n < (64u << 20) ? malloc(n ? n : 1) : NULL;
        if (resp && read_full(fd, resp, n, READ_TIMEOUT_MS)) {
            int rhv = proto_response_header_version(api->api_key, v);
            size_t skip = proto_resp_header_len(rhv);
            void *rb = sm_arena_alloc(&a, api->response->struct_size);
            sm_reader_t r = sm_reader_make(resp + skip, n - skip);
            int32_t corr = n >= 4 ? (int32_t)((uint32_t)resp[0] << 24 | (uint32_t)resp[1] << 16 |
                                              (uint32_t)resp[2] << 8 | resp[3])
                                  : -1;
            /* ApiVersions answers a version it does not serve with v0. */
            int16_t rv = api->api_key == 18 && v > broker_api_find(18)->max_version ? 0 : v;
            result = n >= skip && corr == h.correlation_id && rb &&
                             api->response->decode(&r, &a, rv, rb) == SM_OK
                         ? 1
                         : -1;
            if (result < 0) fprintf(stderr, "%s v%d: the response does not decode\n", api->name, v);
        }
        free(resp);
    }
    close(fd);
out:
    free(frame);
    sm_arena_free(&a);
    return result;
}

static void test_random_requests_to_every_api(void) {
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/samsa-fuzz-XXXXXX";
    REQUIRE(mkdtemp(dir));
    int port = free_port();
    REQUIRE(port > 0);
    sm_config_t *cfg = sm_config_new();
    char kv[512], err[256];
    snprintf(kv, sizeof(kv), "listeners=PLAINTEXT://127.0.0.1:%d", port);
    REQUIRE(sm_config_set_override(cfg, kv, err, sizeof(err)) == 0);
    snprintf(kv, sizeof(kv), "log.dirs=%s", dir);
    REQUIRE(sm_config_set_override(cfg, kv, err, sizeof(err)) == 0);
    REQUIRE(sm_config_set_override(cfg, "group.initial.rebalance.delay.ms=0", err, sizeof(err)) ==
            0);
    REQUIRE(sm_config_set_override(cfg, "offsets.topic.num.partitions=3", err, sizeof(err)) == 0);
    sm_log_set_level(SM_LOG_ERROR);
    static broker_t b;
    REQUIRE(broker_start(&b, cfg) == SM_OK);

    pt_rng_t g = {0x5a175a};
    size_t napis;
    const broker_api_t *apis = broker_apis(&napis);
    int answered = 0, silent = 0, silent_api[128] = {0};
    for (size_t i = 0; i < napis; i++) {
        const proto_api_desc_t *api = proto_api_lookup(apis[i].api_key);
        REQUIRE(api);
        /* Kafka serves no version its schema marks unstable. */
        CHECK(apis[i].max_version <= api->request->max_stable_version);
        /* Advertised versions below the schema (Produce v0-v2) cannot be
         * encoded; the broker closes the connection on them. */
        int16_t lo = apis[i].min_version > api->request->min_version ? apis[i].min_version
                                                                      : api->request->min_version;
        for (int16_t v = lo; v <= apis[i].max_version; v++) {
            for (int k = 0; k < ROUNDS_PER_VERSION; k++) {
                int rc = send_random(port, api, v, &g);
                CHECK(rc >= 0);
                if (rc < 0) break;
                answered += rc == 1;
                silent += rc == 0;
                if (rc == 0 && apis[i].api_key < 128) silent_api[apis[i].api_key]++;
            }
        }
    }
    fprintf(stderr, "random requests: %d answered, %d closed or unanswered\n", answered, silent);
    for (int k = 0; k < 128; k++)
        if (silent_api[k])
            fprintf(stderr, "  %s: %d unanswered\n", proto_api_lookup((int16_t)k)->name,
                    silent_api[k]);
    /* Only SyncGroup may wait (for its leader) past the read timeout. */
    CHECK_EQ_INT(silent_api[14], silent);

    /* Still serving: an ApiVersions v3 is answered. */
    pt_rng_t g2 = {7};
    CHECK_EQ_INT(1, send_random(port, proto_api_lookup(18), 3, &g2));
    broker_stop(&b);
    sm_config_free(cfg);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void) {
    RUN(test_random_requests_to_every_api);
    return t_summary("broker_requests");
}
