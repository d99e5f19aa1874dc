/*
 * Races and lifetimes of a broker running in this process, driven over real
 * sockets: long-poll fetches parked and woken by appends and deadlines at
 * once, topics deleted and re-created while their partitions are still
 * referenced, a restart with a partition folder of another topic id, and a
 * stop while fetches are parked and requests keep arriving. Meant to be run
 * under ThreadSanitizer (make test-tsan) and ASan (make test-asan) as well:
 * there a race or a use after free fails the run even when the plain build
 * happens to survive it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/delayed.h"
#include "broker/partition.h"
#include "protocol/gen/api.h"
#include "protocol/gen/create_topics_request.h"
#include "protocol/gen/create_topics_response.h"
#include "protocol/gen/delete_topics_request.h"
#include "protocol/gen/delete_topics_response.h"
#include "protocol/gen/fetch_request.h"
#include "protocol/gen/fetch_response.h"
#include "protocol/gen/heartbeat_request.h"
#include "protocol/gen/heartbeat_response.h"
#include "protocol/gen/produce_request.h"
#include "protocol/gen/produce_response.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "protocol/request.h"
#include "storage/log.h"
#include "sock_util.h"
#include "test.h"

#define IO_TIMEOUT_MS 20000

/* One request and its response on fd. Returns 1 with *resp decoded into a,
 * 0 when the connection closed or nothing came, -1 when the response does
 * not decode or answers another request. */
static int rpc(int fd, int16_t key, int16_t v, const void *body, sm_arena_t *a, void **resp) {
    static atomic_int next_corr = 1;
    const proto_api_desc_t *api = proto_api_lookup(key);
    proto_request_header_t h;
    proto_request_header_init(&h);
    h.request_api_key = key;
    h.request_api_version = v;
    h.correlation_id = atomic_fetch_add(&next_corr, 1);
    h.client_id = (sm_str_t){"stress", 6};
    int hv = proto_request_header_version(key, v);
    size_t hn = proto_request_header_size((int16_t)hv, &h), bn = api->request->size(v, body);
    uint8_t *frame = malloc(4 + hn + bn);
    if (!frame) return -1;
    sm_writer_t w = sm_writer_make(frame, 4 + hn + bn);
    int rc = -1;
    if (sm_wr_i32(&w, (int32_t)(hn + bn)) || proto_request_header_encode(&w, (int16_t)hv, &h) ||
        api->request->encode(&w, v, body))
        goto out;
    rc = 0;
    uint8_t size[4];
    if (!write_full(fd, frame, 4 + hn + bn) || !read_full(fd, size, 4, IO_TIMEOUT_MS)) goto out;
    uint32_t n = (uint32_t)size[0] << 24 | (uint32_t)size[1] << 16 | (uint32_t)size[2] << 8 | size[3];
    uint8_t *data = n >= 4 && n < (64u << 20) ? sm_arena_alloc(a, n) : NULL;
    if (!data || !read_full(fd, data, n, IO_TIMEOUT_MS)) goto out;
    rc = -1;
    int32_t corr = (int32_t)((uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
                             (uint32_t)data[2] << 8 | data[3]);
    size_t skip = proto_resp_header_len(proto_response_header_version(key, v));
    void *body_out = sm_arena_alloc(a, api->response->struct_size);
    sm_reader_t r = sm_reader_make(data + skip, n - skip);
    if (corr == h.correlation_id && body_out && n >= skip &&
        api->response->decode(&r, a, v, body_out) == SM_OK) {
        *resp = body_out;
        rc = 1;
    }
out:
    free(frame);
    return rc;
}

/* ---- the broker under test ---- */

typedef struct harness {
    char dir[64];
    int port;
    sm_config_t *cfg;
    broker_t b;
} harness_t;

static bool start(harness_t *h, const char *const *overrides) {
    char kv[512], err[256];
    if (!h->dir[0]) {
        snprintf(h->dir, sizeof(h->dir), "/tmp/samsa-stress-XXXXXX");
        if (!mkdtemp(h->dir)) return false;
    }
    h->port = free_port();
    h->cfg = sm_config_new();
    snprintf(kv, sizeof(kv), "listeners=PLAINTEXT://127.0.0.1:%d", h->port);
    if (sm_config_set_override(h->cfg, kv, err, sizeof(err))) return false;
    snprintf(kv, sizeof(kv), "log.dirs=%s", h->dir);
    if (sm_config_set_override(h->cfg, kv, err, sizeof(err))) return false;
    for (int i = 0; overrides && overrides[i]; i++)
        if (sm_config_set_override(h->cfg, overrides[i], err, sizeof(err))) return false;
    return broker_start(&h->b, h->cfg) == SM_OK;
}

static void stop(harness_t *h) {
    broker_stop(&h->b);
    sm_config_free(h->cfg);
    h->cfg = NULL;
}

static void cleanup(harness_t *h) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", h->dir);
}

/* ---- requests ---- */

static int16_t create_topic(int fd, const char *name, int32_t partitions, sm_uuid_t *id) {
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_create_topics_request_t req;
    proto_create_topics_request_init(&req);
    proto_create_topics_request_creatable_topic_t t = {0};
    t.name = (sm_str_t){name, (int32_t)strlen(name)};
    t.num_partitions = partitions;
    t.replication_factor = 1;
    req.topics = (proto_create_topics_request_creatable_topic_array_t){1, &t};
    req.timeout_ms = 10000;
    proto_create_topics_response_t *resp = NULL;
    int16_t err = -1;
    if (rpc(fd, 19, 7, &req, &a, (void **)&resp) == 1 && resp->topics.n == 1) {
        err = resp->topics.v[0].error_code;
        if (id) *id = resp->topics.v[0].topic_id;
    }
    sm_arena_free(&a);
    return err;
}

static int16_t delete_topic(int fd, const char *name) {
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_delete_topics_request_t req;
    proto_delete_topics_request_init(&req);
    sm_str_t n = {name, (int32_t)strlen(name)};
    req.topic_names = (sm_str_array_t){1, &n};
    req.timeout_ms = 10000;
    proto_delete_topics_response_t *resp = NULL;
    int16_t err = -1;
    if (rpc(fd, 20, 4, &req, &a, (void **)&resp) == 1 && resp->responses.n == 1)
        err = resp->responses.v[0].error_code;
    sm_arena_free(&a);
    return err;
}

/* Produces one batch of count records to topic-partition; returns the error
 * code, -1 when the connection failed. */
static int16_t produce(int fd, const char *topic, int32_t partition, int count) {
    uint8_t batch[4096];
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t o = {.base_offset = 0,
                                    .base_timestamp = 1,
                                    .producer_id = -1,
                                    .producer_epoch = -1,
                                    .base_sequence = -1};
    proto_batch_builder_init(&bb, batch, sizeof(batch), &o);
    for (int i = 0; i < count; i++)
        proto_batch_builder_add(&bb, 1, SM_BYTES_NULL, (sm_bytes_t){(const uint8_t *)"value", 5},
                                NULL, 0);
    size_t len;
    if (proto_batch_builder_finish(&bb, &len)) return -1;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_produce_request_t req;
    proto_produce_request_init(&req);
    proto_produce_request_partition_produce_data_t pd = {0};
    pd.index = partition;
    pd.records = (sm_bytes_t){batch, (int32_t)len};
    proto_produce_request_topic_produce_data_t td = {0};
    td.name = (sm_str_t){topic, (int32_t)strlen(topic)};
    td.partition_data = (proto_produce_request_partition_produce_data_array_t){1, &pd};
    req.acks = 1;
    req.timeout_ms = 10000;
    req.topic_data = (proto_produce_request_topic_produce_data_array_t){1, &td};
    proto_produce_response_t *resp = NULL;
    int16_t err = -1;
    if (rpc(fd, 0, 7, &req, &a, (void **)&resp) == 1 && resp->responses.n == 1 &&
        resp->responses.v[0].partition_responses.n == 1)
        err = resp->responses.v[0].partition_responses.v[0].error_code;
    sm_arena_free(&a);
    return err;
}

/* Fetch (v4 to v12: by topic name; from v7 without a session) of partitions
 * [0, n) of topic at offs[i], waiting up to max_wait.
 * On an answer, offs[i] moves to each partition's high watermark. Returns 1
 * answered (errors counted in *errors), 0 closed, -1 undecodable. */
static int fetch(int fd, int16_t version, const char *topic, int32_t n, int64_t *offs,
                 int32_t max_wait, int *errors) {
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_fetch_request_t req;
    proto_fetch_request_init(&req);
    proto_fetch_request_fetch_partition_t *ps = sm_arena_calloc(&a, (size_t)n, sizeof(*ps));
    for (int32_t i = 0; i < n; i++) {
        ps[i].partition = i;
        ps[i].current_leader_epoch = -1;
        ps[i].fetch_offset = offs[i];
        ps[i].log_start_offset = -1;
        ps[i].partition_max_bytes = 4096;
    }
    proto_fetch_request_fetch_topic_t t = {0};
    t.topic = (sm_str_t){topic, (int32_t)strlen(topic)};
    t.partitions = (proto_fetch_request_fetch_partition_array_t){n, ps};
    req.replica_id = -1;
    req.max_wait_ms = max_wait;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.topics = (proto_fetch_request_fetch_topic_array_t){1, &t};
    req.session_epoch = -1;
    proto_fetch_response_t *resp = NULL;
    int rc = rpc(fd, 1, version, &req, &a, (void **)&resp);
    if (rc == 1) {
        for (int32_t k = 0; k < resp->responses.n; k++) {
            proto_fetch_response_fetchable_topic_response_t *tr = &resp->responses.v[k];
            for (int32_t j = 0; j < tr->partitions.n; j++) {
                proto_fetch_response_partition_data_t *pd = &tr->partitions.v[j];
                if (pd->error_code != PROTO_ERR_NONE) {
                    (*errors)++;
                } else if (pd->partition_index >= 0 && pd->partition_index < n) {
                    offs[pd->partition_index] = pd->high_watermark;
                }
            }
        }
    }
    sm_arena_free(&a);
    return rc;
}

/* ---- load generators ---- */

typedef struct load {
    int port;
    const char *topic;
    int32_t partitions;
    int32_t max_wait;
    int16_t version; /* Fetch version; 0: v4 */
    atomic_bool *stop;
    /* results: answered and closed are watched while the load runs, the
     * rest read after the join */
    atomic_long answered, closed;
    long errors, undecodable;
    long answered_after_stop_flag;
    atomic_bool *stopping_flag; /* set by the test before broker_stop, may be NULL */
} load_t;

static void *fetcher(void *arg) {
    load_t *l = arg;
    int64_t *offs = calloc((size_t)l->partitions, sizeof(*offs));
    int fd = connect_to(l->port);
    while (offs && fd >= 0 && !atomic_load(l->stop)) {
        int errs = 0;
        int rc = fetch(fd, l->version ? l->version : 4, l->topic, l->partitions, offs, l->max_wait,
                       &errs);
        bool flagged = l->stopping_flag && atomic_load(l->stopping_flag);
        if (rc == 1) {
            atomic_fetch_add(&l->answered, 1);
            if (flagged) l->answered_after_stop_flag++;
            l->errors += errs;
            if (errs) /* the topic was deleted or re-created: start over */
                memset(offs, 0, sizeof(*offs) * (size_t)l->partitions);
        } else {
            if (rc < 0) l->undecodable++;
            atomic_fetch_add(&l->closed, 1);
            close(fd);
            fd = connect_to(l->port);
        }
    }
    if (fd >= 0) close(fd);
    free(offs);
    return NULL;
}

static void *producer(void *arg) {
    load_t *l = arg;
    int fd = connect_to(l->port);
    unsigned seed = (unsigned)(uintptr_t)l;
    while (fd >= 0 && !atomic_load(l->stop)) {
        int16_t err = produce(fd, l->topic, (int32_t)(rand_r(&seed) % (unsigned)l->partitions), 1);
        if (err < 0) {
            atomic_fetch_add(&l->closed, 1);
            close(fd);
            fd = connect_to(l->port);
        } else {
            atomic_fetch_add(&l->answered, 1);
            if (err) l->errors++;
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* ---- tests ---- */

/* Fetches parked on 500 empty partitions with a 1 ms wait, from 24
 * connections, while appends wake them: deadlines, wakes and registrations
 * overlap all the time. Every fetch must be answered. */
static void test_parked_fetch_storm(void) {
    harness_t h = {0};
    REQUIRE(start(&h, NULL));
    int fd = connect_to(h.port);
    REQUIRE(fd >= 0);
    CHECK_EQ_INT(0, create_topic(fd, "storm", 500, NULL));
    close(fd);
    enum { FETCHERS = 24, PRODUCERS = 2 };
    atomic_bool halt = false;
    load_t f[FETCHERS], p[PRODUCERS];
    pthread_t ft[FETCHERS], pt[PRODUCERS];
    for (int i = 0; i < FETCHERS; i++) {
        f[i] = (load_t){.port = h.port, .topic = "storm", .partitions = 500, .max_wait = 1,
                        .stop = &halt};
        REQUIRE(pthread_create(&ft[i], NULL, fetcher, &f[i]) == 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (load_t){.port = h.port, .topic = "storm", .partitions = 500, .stop = &halt};
        REQUIRE(pthread_create(&pt[i], NULL, producer, &p[i]) == 0);
    }
    /* Runs until enough fetches went through, or one connection failed (a
     * crash ends it anyway; a hang is bounded by the clients' read timeout). */
    long answered = 0, failed = 0;
    while (answered < 10000 && failed == 0) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        answered = failed = 0;
        for (int i = 0; i < FETCHERS; i++) {
            answered += atomic_load(&f[i].answered);
            failed += atomic_load(&f[i].closed);
        }
    }
    atomic_store(&halt, true);
    long closed = 0, undecodable = 0, errors = 0, produced = 0;
    for (int i = 0; i < FETCHERS; i++) {
        pthread_join(ft[i], NULL);
        closed += f[i].closed;
        undecodable += f[i].undecodable;
        errors += f[i].errors;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(pt[i], NULL);
        closed += p[i].closed;
        errors += p[i].errors;
        produced += p[i].answered;
    }
    fprintf(stderr, "storm: %ld fetches answered, %ld produced\n", answered, produced);
    CHECK(answered >= 10000);
    CHECK(produced > 0);
    CHECK_EQ_INT(0, closed);
    CHECK_EQ_INT(0, undecodable);
    CHECK_EQ_INT(0, errors);
    stop(&h);
    cleanup(&h);
}

static bool read_topic_id(const char *dir, sm_uuid_t *id) {
    return log_read_partition_metadata(dir, id->b) == SM_OK;
}

/* A partition of a deleted topic that is still referenced (here: held the
 * way an in-flight fetch holds it) must not lend its log to the topic
 * re-created under the same name, and dropping the last reference must not
 * touch the new topic's log. */
static void test_recreate_while_referenced(void) {
    harness_t h = {0};
    REQUIRE(start(&h, NULL));
    int fd = connect_to(h.port);
    REQUIRE(fd >= 0);
    sm_uuid_t id1, id2;
    REQUIRE(create_topic(fd, "again", 1, &id1) == 0);
    CHECK_EQ_INT(0, produce(fd, "again", 0, 3));
    broker_partition_t *old = broker_partition_get(&h.b, &id1, 0);
    REQUIRE(old);
    CHECK_EQ_INT(3, log_end_offset(old->log));
    CHECK_EQ_INT(0, delete_topic(fd, "again"));
    REQUIRE(create_topic(fd, "again", 1, &id2) == 0);
    CHECK(memcmp(id1.b, id2.b, 16) != 0);
    broker_partition_t *neu = broker_partition_get(&h.b, &id2, 0);
    REQUIRE(neu);
    CHECK(neu->log != old->log);
    CHECK_EQ_INT(0, log_end_offset(neu->log));
    char path[256];
    snprintf(path, sizeof(path), "%s/again-0", h.dir);
    sm_uuid_t on_disk = {{0}};
    CHECK(read_topic_id(path, &on_disk) && memcmp(on_disk.b, id2.b, 16) == 0);
    /* The old partition's last reference goes: the new log stays whole. */
    broker_partition_put(old);
    CHECK_EQ_INT(0, produce(fd, "again", 0, 2));
    CHECK_EQ_INT(2, log_end_offset(neu->log));
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(read_topic_id(path, &on_disk) && memcmp(on_disk.b, id2.b, 16) == 0);
    broker_partition_put(neu);
    close(fd);
    stop(&h);
    /* After a restart the topic has what was produced to the new one only. */
    REQUIRE(start(&h, NULL));
    broker_partition_t *back = broker_partition_get(&h.b, &id2, 0);
    CHECK(back && log_end_offset(back->log) == 2);
    if (back) broker_partition_put(back);
    stop(&h);
    cleanup(&h);
}

/* Delete and re-create a topic over and over while fetchers long-poll it and
 * producers write to it. Afterwards every partition folder names the id of
 * the topic that lives now. */
static void test_delete_recreate_under_load(void) {
    harness_t h = {0};
    REQUIRE(start(&h, NULL));
    int fd = connect_to(h.port);
    REQUIRE(fd >= 0);
    enum { PARTS = 3, FETCHERS = 4, PRODUCERS = 2, ROUNDS = 40 };
    sm_uuid_t id;
    REQUIRE(create_topic(fd, "churn", PARTS, &id) == 0);
    atomic_bool halt = false;
    load_t f[FETCHERS], p[PRODUCERS];
    pthread_t ft[FETCHERS], pt[PRODUCERS];
    for (int i = 0; i < FETCHERS; i++) {
        /* Half without, half with fetch-session support (v12, no session). */
        f[i] = (load_t){.port = h.port, .topic = "churn", .partitions = PARTS, .max_wait = 20,
                        .version = i % 2 ? 12 : 4, .stop = &halt};
        REQUIRE(pthread_create(&ft[i], NULL, fetcher, &f[i]) == 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (load_t){.port = h.port, .topic = "churn", .partitions = PARTS, .stop = &halt};
        REQUIRE(pthread_create(&pt[i], NULL, producer, &p[i]) == 0);
    }
    int failures = 0;
    for (int r = 0; r < ROUNDS; r++) {
        failures += delete_topic(fd, "churn") != 0;
        failures += create_topic(fd, "churn", PARTS, &id) != 0;
    }
    CHECK_EQ_INT(0, failures);
    atomic_store(&halt, true);
    long answered = 0, undecodable = 0;
    for (int i = 0; i < FETCHERS; i++) {
        pthread_join(ft[i], NULL);
        answered += f[i].answered;
        undecodable += f[i].undecodable;
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    CHECK(answered > 0);
    CHECK_EQ_INT(0, undecodable);
    for (int32_t i = 0; i < PARTS; i++) {
        broker_partition_t *pp = broker_partition_get(&h.b, &id, i);
        CHECK(pp != NULL);
        if (!pp) continue;
        sm_uuid_t on_disk = {{0}};
        CHECK(read_topic_id(log_dir(pp->log), &on_disk) && memcmp(on_disk.b, id.b, 16) == 0);
        broker_partition_put(pp);
    }
    close(fd);
    stop(&h);
    cleanup(&h);
}

/* The 5 records in a partition folder whose partition.metadata names id. */
static bool write_foreign_folder(const char *path, const sm_uuid_t *id) {
    log_config_t lc;
    log_config_default(&lc);
    log_t *l;
    if (log_open(path, &lc, false, 0, -1, &l) != SM_OK) return false;
    uint8_t batch[512];
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t o = {.producer_id = -1, .producer_epoch = -1, .base_sequence = -1};
    proto_batch_builder_init(&bb, batch, sizeof(batch), &o);
    for (int i = 0; i < 5; i++)
        proto_batch_builder_add(&bb, 1, SM_BYTES_NULL, (sm_bytes_t){(const uint8_t *)"x", 1}, NULL,
                                0);
    size_t len;
    int64_t base, last;
    bool ok = proto_batch_builder_finish(&bb, &len) == SM_OK &&
              log_append(l, batch, len, 0, &base, &last) == SM_OK;
    return log_close(l) == SM_OK && ok && log_write_partition_metadata(path, id->b) == SM_OK;
}

/* A folder whose partition.metadata names another topic id than the image's
 * topic of that name (the topic was deleted and re-created while this
 * broker's folder stayed behind) is not served for the topic: its data does
 * not appear, and the folder's own data is kept aside, not deleted. A folder
 * of a name no topic has is left alone at start and not adopted by a topic
 * created later under that name. */
static void test_restart_with_orphan_folder(void) {
    harness_t h = {0};
    REQUIRE(start(&h, NULL));
    int fd = connect_to(h.port);
    REQUIRE(fd >= 0);
    sm_uuid_t id;
    REQUIRE(create_topic(fd, "orphan", 1, &id) == 0);
    close(fd);
    stop(&h);
    /* Replace the folder with one of another topic id holding 5 records,
     * and add ghost-0 (no topic of that name) of yet another id. */
    char path[256], cmd[600];
    snprintf(path, sizeof(path), "%s/orphan-0", h.dir);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
    REQUIRE(system(cmd) == 0);
    sm_uuid_t other = id;
    other.b[15] ^= 0x5a;
    REQUIRE(write_foreign_folder(path, &other));
    char ghost[256];
    snprintf(ghost, sizeof(ghost), "%s/ghost-0", h.dir);
    sm_uuid_t ghost_id = id;
    ghost_id.b[14] ^= 0x33;
    REQUIRE(write_foreign_folder(ghost, &ghost_id));

    REQUIRE(start(&h, NULL));
    broker_partition_t *p = broker_partition_get(&h.b, &id, 0);
    REQUIRE(p);
    CHECK_EQ_INT(0, log_end_offset(p->log));
    sm_uuid_t on_disk = {{0}};
    CHECK(read_topic_id(log_dir(p->log), &on_disk) && memcmp(on_disk.b, id.b, 16) == 0);
    broker_partition_put(p);
    /* ghost-0 is left alone at start; a new topic of that name gets a
     * folder of its own, not the ghost's records. */
    CHECK(read_topic_id(ghost, &on_disk) && memcmp(on_disk.b, ghost_id.b, 16) == 0);
    fd = connect_to(h.port);
    REQUIRE(fd >= 0);
    sm_uuid_t gid;
    REQUIRE(create_topic(fd, "ghost", 1, &gid) == 0);
    close(fd);
    p = broker_partition_get(&h.b, &gid, 0);
    REQUIRE(p);
    CHECK_EQ_INT(0, log_end_offset(p->log));
    CHECK(read_topic_id(ghost, &on_disk) && memcmp(on_disk.b, gid.b, 16) == 0);
    broker_partition_put(p);
    stop(&h);
    /* The strays' data is still on disk, beside the topics' folders. */
    snprintf(cmd, sizeof(cmd), "ls -d %s/orphan-0.*-stray %s/ghost-0.*-stray >/dev/null 2>&1",
             h.dir, h.dir);
    CHECK(system(cmd) == 0);
    cleanup(&h);
}


/* Stops the broker while fetches are parked and fetches and fsynced produces
 * keep arriving on other connections: parked fetches are answered, requests
 * that arrive while the network drains complete on their loop, and nothing
 * touches the delayed-request module after it is gone. */
static void test_stop_with_parked_requests(void) {
    harness_t h = {0};
    const char *ovr[] = {"samsa.log.fsync.before.ack=true", NULL};
    REQUIRE(start(&h, ovr));
    int fd = connect_to(h.port);
    REQUIRE(fd >= 0);
    sm_uuid_t quit_id;
    REQUIRE(create_topic(fd, "quit", 4, &quit_id) == 0);
    REQUIRE(create_topic(fd, "quit-other", 2, NULL) == 0);
    close(fd);
    enum { PARKED = 8, BUSY = 4, PRODUCERS = 2 };
    atomic_bool halt = false, stopping = false;
    load_t f[PARKED + BUSY], p[PRODUCERS];
    pthread_t ft[PARKED + BUSY], pt[PRODUCERS];
    for (int i = 0; i < PARKED + BUSY; i++) {
        /* The first ones park on "quit" for a minute; the others poll the
         * topic the producers write to, briefly. */
        f[i] = (load_t){.port = h.port, .topic = i < PARKED ? "quit" : "quit-other",
                        .partitions = i < PARKED ? 4 : 2, .max_wait = i < PARKED ? 60000 : 2,
                        .stop = &halt, .stopping_flag = &stopping};
        REQUIRE(pthread_create(&ft[i], NULL, fetcher, &f[i]) == 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (load_t){.port = h.port, .topic = "quit-other", .partitions = 2, .stop = &halt};
        REQUIRE(pthread_create(&pt[i], NULL, producer, &p[i]) == 0);
    }
    /* Waits until every long poll is parked (PARKED waiters on quit-0) and
     * the brief pollers are answered often. */
    broker_partition_t *q0 = broker_partition_get(&h.b, &quit_id, 0);
    REQUIRE(q0);
    for (;;) {
        long busy = 0;
        for (int i = PARKED; i < PARKED + BUSY; i++)
            busy += atomic_load(&f[i].answered);
        if (busy >= 100 && broker_parked_on(q0) == PARKED) break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    broker_partition_put(q0);
    atomic_store(&stopping, true);
    stop(&h);
    atomic_store(&halt, true);
    long undecodable = 0, parked_answered = 0;
    for (int i = 0; i < PARKED + BUSY; i++) {
        pthread_join(ft[i], NULL);
        undecodable += f[i].undecodable;
        if (i < PARKED) parked_answered += f[i].answered_after_stop_flag > 0;
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    CHECK_EQ_INT(0, undecodable);
    /* Each long poll parked when the stop began was answered, not dropped
     * (nothing wakes them before: the producers write to another topic). */
    CHECK_EQ_INT(PARKED, parked_answered);
    cleanup(&h);
}

/* Heartbeats of unknown members, in a loop: group requests the coordinator
 * answers at once. */
static void *heartbeater(void *arg) {
    load_t *l = arg;
    int fd = connect_to(l->port);
    while (fd >= 0 && !atomic_load(l->stop)) {
        sm_arena_t a;
        sm_arena_init(&a, 0);
        proto_heartbeat_request_t req;
        proto_heartbeat_request_init(&req);
        req.group_id = (sm_str_t){"stress-group", 12};
        req.generation_id = 1;
        req.member_id = (sm_str_t){"nobody", 6};
        proto_heartbeat_response_t *resp = NULL;
        int rc = rpc(fd, 12, 0, &req, &a, (void **)&resp);
        sm_arena_free(&a);
        if (rc == 1) {
            atomic_fetch_add(&l->answered, 1);
        } else {
            if (rc < 0) l->undecodable++;
            atomic_fetch_add(&l->closed, 1);
            close(fd);
            fd = connect_to(l->port);
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* Stops the broker while group requests keep arriving: the network drains
 * after the coordinator stopped, so the requests it still dispatches must
 * find a coordinator that answers them, not a freed one. */
static void test_stop_with_group_requests(void) {
    harness_t h = {0};
    const char *ovr[] = {"group.initial.rebalance.delay.ms=0", "offsets.topic.num.partitions=1",
                         NULL};
    REQUIRE(start(&h, ovr));
    enum { CLIENTS = 6 };
    atomic_bool halt = false;
    load_t g[CLIENTS];
    pthread_t gt[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        g[i] = (load_t){.port = h.port, .stop = &halt};
        REQUIRE(pthread_create(&gt[i], NULL, heartbeater, &g[i]) == 0);
    }
    for (long answered = 0; answered < 200;) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
        answered = 0;
        for (int i = 0; i < CLIENTS; i++)
            answered += atomic_load(&g[i].answered);
    }
    stop(&h);
    atomic_store(&halt, true);
    long undecodable = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(gt[i], NULL);
        undecodable += g[i].undecodable;
    }
    CHECK_EQ_INT(0, undecodable);
    cleanup(&h);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    sm_log_set_level(SM_LOG_ERROR);
    const char *only = argc > 1 ? argv[1] : NULL;
#define RUN_IF(fn)                                                                                 \
    if (!only || strcmp(only, #fn) == 0) RUN(fn)
    RUN_IF(test_parked_fetch_storm);
    RUN_IF(test_recreate_while_referenced);
    RUN_IF(test_delete_recreate_under_load);
    RUN_IF(test_restart_with_orphan_folder);
    RUN_IF(test_stop_with_parked_requests);
    RUN_IF(test_stop_with_group_requests);
    return t_summary("broker_stress");
}
