/*
 * The group coordinator's write path against a broker in this process, over
 * real sockets, with its host (group/host.h) wrapped to inject faults: a
 * failed append answers with Kafka's error and changes no state; a flush of
 * one group's partition held back does not hold back another group's
 * heartbeats, and the held commit is answered only once its flush completes;
 * a shard follows its partition's leadership (elect / resign, as in a
 * cluster): NOT_COORDINATOR once unloaded (parked requests too),
 * COORDINATOR_LOAD_IN_PROGRESS while it loads, its offsets back once loaded,
 * and its groups' members too: a classic member (dynamic, or static after
 * taking its place back under a new id) and a consumer group member keep
 * heartbeating and committing with their ids and generation / epoch.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "broker/broker.h"
#include "group/coordinator.h"
#include "protocol/errors.h"
#include "protocol/request.h"
#include "sock_util.h"
#include "test.h"

#define WAIT_MS 10000
#define NPART 4

/* Sends one request (api key, version, body). */
static bool send_req(int fd, int16_t key, int16_t v, const void *body) {
    const proto_api_desc_t *api = proto_api_lookup(key);
    proto_request_header_t h;
    proto_request_header_init(&h);
    h.request_api_key = key;
    h.request_api_version = v;
    h.correlation_id = 7;
    h.client_id = SM_STR_LIT("test");
    int hv = proto_request_header_version(key, v);
    size_t hn = proto_request_header_size((int16_t)hv, &h), bn = api->request->size(v, body);
    uint8_t *frame = malloc(4 + hn + bn);
    sm_writer_t w = sm_writer_make(frame, 4 + hn + bn);
    bool ok = frame && !sm_wr_i32(&w, (int32_t)(hn + bn)) &&
              !proto_request_header_encode(&w, (int16_t)hv, &h) &&
              !api->request->encode(&w, v, body) && write_full(fd, frame, 4 + hn + bn);
    free(frame);
    return ok;
}

/* Reads the response to the last request into *out (allocated from a);
 * false when none arrives within timeout_ms. */
static bool recv_resp(int fd, int16_t key, int16_t v, sm_arena_t *a, void **out, int timeout_ms) {
    const proto_api_desc_t *api = proto_api_lookup(key);
    uint8_t size[4];
    if (!read_full(fd, size, 4, timeout_ms)) return false;
    uint32_t n =
        (uint32_t)size[0] << 24 | (uint32_t)size[1] << 16 | (uint32_t)size[2] << 8 | size[3];
    uint8_t *buf = sm_arena_alloc(a, n + 1);
    if (!buf || !read_full(fd, buf, n, WAIT_MS)) return false;
    size_t skip = proto_resp_header_len(proto_response_header_version(key, v));
    sm_reader_t r = sm_reader_make(buf + skip, n - skip);
    *out = sm_arena_alloc(a, api->response->struct_size);
    return *out && api->response->decode(&r, a, v, *out) == SM_OK;
}

static void *rpc(int fd, int16_t key, int16_t v, const void *body, sm_arena_t *a) {
    void *out = NULL;
    if (!send_req(fd, key, v, body) || !recv_resp(fd, key, v, a, &out, WAIT_MS)) return NULL;
    return out;
}

/* ---------------------------------------------------------------- the wrapped host */

static group_host_t real;
static atomic_bool fail_appends;
static atomic_int held_partition = -1;
typedef struct held {
    int32_t p;
    int64_t end;
    group_durable_fn done;
    void *arg;
} held_t;
static held_t held[16];
static int nheld;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

/* Loads wait while hold_loads is set. */
static bool hold_loads;
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t load_cv = PTHREAD_COND_INITIALIZER;

static int wrap_read_all(void *ctx, int32_t p, const group_reader_t *reader) {
    pthread_mutex_lock(&load_mu);
    while (hold_loads)
        pthread_cond_wait(&load_cv, &load_mu);
    pthread_mutex_unlock(&load_mu);
    return real.read_all(ctx, p, reader);
}

static void set_hold_loads(bool on) {
    pthread_mutex_lock(&load_mu);
    hold_loads = on;
    pthread_cond_broadcast(&load_cv);
    pthread_mutex_unlock(&load_mu);
}

static int wrap_append(void *ctx, int32_t p, uint8_t *batch, size_t len, int64_t *end) {
    if (atomic_load(&fail_appends)) return SM_ERR_IO;
    return real.append(ctx, p, batch, len, end);
}

static void wrap_when_durable(void *ctx, int32_t p, int64_t end, group_durable_fn done, void *arg) {
    pthread_mutex_lock(&held_mu);
    if (p == atomic_load(&held_partition) && nheld < 16) {
        held[nheld++] = (held_t){p, end, done, arg};
        pthread_mutex_unlock(&held_mu);
        return;
    }
    pthread_mutex_unlock(&held_mu);
    real.when_durable(ctx, p, end, done, arg);
}

static void release_held(void) {
    pthread_mutex_lock(&held_mu);
    atomic_store(&held_partition, -1);
    int n = nheld;
    nheld = 0;
    held_t copy[16];
    memcpy(copy, held, sizeof(copy));
    pthread_mutex_unlock(&held_mu);
    for (int i = 0; i < n; i++)
        real.when_durable(real.ctx, copy[i].p, copy[i].end, copy[i].done, copy[i].arg);
}

/* ---------------------------------------------------------------- helpers */

static broker_t b;
static sm_config_t *cfg;
static char dir[64];
static int port;

static bool start_broker(bool fsync) {
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/samsa-grt-XXXXXX");
    if (!mkdtemp(dir) || (port = free_port()) <= 0) return false;
    cfg = sm_config_new();
    char kv[512], err[256];
    const char *fixed[] = {"group.initial.rebalance.delay.ms=0", "offsets.topic.num.partitions=4",
                           fsync ? "samsa.log.fsync.before.ack=true"
                                 : "samsa.log.fsync.before.ack=false"};
    for (size_t i = 0; i < 3; i++)
        if (sm_config_set_override(cfg, fixed[i], err, sizeof(err))) return false;
    snprintf(kv, sizeof(kv), "listeners=PLAINTEXT://127.0.0.1:%d", port);
    if (sm_config_set_override(cfg, kv, err, sizeof(err))) return false;
    snprintf(kv, sizeof(kv), "log.dirs=%s", dir);
    if (sm_config_set_override(cfg, kv, err, sizeof(err))) return false;
    sm_log_set_level(SM_LOG_ERROR);
    memset(&b, 0, sizeof(b));
    if (broker_start(&b, cfg) != SM_OK) return false;
    group_host_t wrapped, none;
    memset(&none, 0, sizeof(none));
    group_coordinator_swap_host(b.groups, &none, &real);
    wrapped = real;
    wrapped.append = wrap_append;
    wrapped.when_durable = wrap_when_durable;
    wrapped.read_all = wrap_read_all;
    group_coordinator_swap_host(b.groups, &wrapped, NULL);
    return true;
}

static void stop_broker(void) {
    broker_stop(&b);
    sm_config_free(cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

/* A group id of the given partition of __consumer_offsets. */
static void group_in(int32_t partition, const char *prefix, char *out, size_t cap) {
    for (int i = 0;; i++) {
        snprintf(out, cap, "%s-%d", prefix, i);
        if (group_partition_for((sm_str_t){out, (int32_t)strlen(out)}, NPART) == partition) return;
    }
}

static bool create_topic(int fd, const char *name, sm_arena_t *a) {
    proto_create_topics_request_t req;
    proto_create_topics_request_init(&req);
    proto_create_topics_request_creatable_topic_t t;
    memset(&t, 0, sizeof(t));
    t.name = (sm_str_t){name, (int32_t)strlen(name)};
    t.num_partitions = 1;
    t.replication_factor = 1;
    req.topics = (proto_create_topics_request_creatable_topic_array_t){1, &t};
    req.timeout_ms = 5000;
    proto_create_topics_response_t *resp = rpc(fd, 19, 2, &req, a);
    return resp && resp->topics.n == 1 && resp->topics.v[0].error_code == 0;
}

/* OffsetCommit v2 of one partition of topic "t"; returns the partition's error. */
static bool send_commit(int fd, const char *group, int32_t gen, const char *member, int64_t off) {
    proto_offset_commit_request_t req;
    proto_offset_commit_request_init(&req);
    proto_offset_commit_request_offset_commit_request_topic_t t;
    memset(&t, 0, sizeof(t));
    proto_offset_commit_request_offset_commit_request_partition_t p;
    memset(&p, 0, sizeof(p));
    p.partition_index = 0;
    p.committed_offset = off;
    p.committed_metadata = SM_STR_LIT("m");
    t.name = SM_STR_LIT("t");
    t.partitions = (proto_offset_commit_request_offset_commit_request_partition_array_t){1, &p};
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.generation_id_or_member_epoch = gen;
    req.member_id = (sm_str_t){member, (int32_t)strlen(member)};
    req.retention_time_ms = -1;
    req.topics = (proto_offset_commit_request_offset_commit_request_topic_array_t){1, &t};
    return send_req(fd, 8, 2, &req);
}

static int commit_error(proto_offset_commit_response_t *resp) {
    if (!resp || resp->topics.n != 1 || resp->topics.v[0].partitions.n != 1) return -1;
    return resp->topics.v[0].partitions.v[0].error_code;
}

static int commit(int fd, const char *group, int32_t gen, const char *member, int64_t off,
                  sm_arena_t *a) {
    void *resp = NULL;
    if (!send_commit(fd, group, gen, member, off) || !recv_resp(fd, 8, 2, a, &resp, WAIT_MS))
        return -1;
    return commit_error(resp);
}

/* OffsetFetch v1 of partition 0 of "t": the offset, or -(error code) - 1000
 * when the partition answers an error. */
static int64_t committed(int fd, const char *group, sm_arena_t *a) {
    proto_offset_fetch_request_t req;
    proto_offset_fetch_request_init(&req);
    proto_offset_fetch_request_offset_fetch_request_topic_t t;
    memset(&t, 0, sizeof(t));
    int32_t part = 0;
    t.name = SM_STR_LIT("t");
    t.partition_indexes = (sm_i32_array_t){1, &part};
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.topics = (proto_offset_fetch_request_offset_fetch_request_topic_array_t){1, &t};
    proto_offset_fetch_response_t *resp = rpc(fd, 9, 1, &req, a);
    if (!resp || resp->topics.n != 1 || resp->topics.v[0].partitions.n != 1) return -100;
    if (resp->topics.v[0].partitions.v[0].error_code)
        return -1000 - resp->topics.v[0].partitions.v[0].error_code;
    return resp->topics.v[0].partitions.v[0].committed_offset;
}

typedef struct joined {
    int16_t error;
    int32_t generation;
    char member[128];
} joined_t;

/* JoinGroup v3 (no MEMBER_ID_REQUIRED round) of a new member. */
static joined_t join(int fd, const char *group, sm_arena_t *a) {
    joined_t j = {-1, -1, ""};
    proto_join_group_request_t req;
    proto_join_group_request_init(&req);
    proto_join_group_request_join_group_request_protocol_t p;
    memset(&p, 0, sizeof(p));
    p.name = SM_STR_LIT("range");
    p.metadata = (sm_bytes_t){(const uint8_t *)"meta", 4};
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.session_timeout_ms = 30000;
    req.rebalance_timeout_ms = 30000;
    req.member_id = SM_STR_LIT("");
    req.protocol_type = SM_STR_LIT("consumer");
    req.protocols = (proto_join_group_request_join_group_request_protocol_array_t){1, &p};
    proto_join_group_response_t *resp = rpc(fd, 11, 3, &req, a);
    if (!resp) return j;
    j.error = resp->error_code;
    j.generation = resp->generation_id;
    snprintf(j.member, sizeof(j.member), "%.*s", (int)resp->member_id.len, resp->member_id.ptr);
    return j;
}

static int sync_group(int fd, const char *group, const joined_t *j, sm_arena_t *a) {
    proto_sync_group_request_t req;
    proto_sync_group_request_init(&req);
    proto_sync_group_request_sync_group_request_assignment_t as;
    memset(&as, 0, sizeof(as));
    as.member_id = (sm_str_t){j->member, (int32_t)strlen(j->member)};
    as.assignment = (sm_bytes_t){(const uint8_t *)"assign", 6};
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.generation_id = j->generation;
    req.member_id = as.member_id;
    req.assignments = (proto_sync_group_request_sync_group_request_assignment_array_t){1, &as};
    proto_sync_group_response_t *resp = rpc(fd, 14, 2, &req, a);
    return resp ? resp->error_code : -1;
}

static int heartbeat(int fd, const char *group, const joined_t *j, sm_arena_t *a) {
    proto_heartbeat_request_t req;
    proto_heartbeat_request_init(&req);
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.generation_id = j->generation;
    req.member_id = (sm_str_t){j->member, (int32_t)strlen(j->member)};
    proto_heartbeat_response_t *resp = rpc(fd, 12, 2, &req, a);
    return resp ? resp->error_code : -1;
}

static int leave(int fd, const char *group, const joined_t *j, sm_arena_t *a) {
    proto_leave_group_request_t req;
    proto_leave_group_request_init(&req);
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.member_id = (sm_str_t){j->member, (int32_t)strlen(j->member)};
    proto_leave_group_response_t *resp = rpc(fd, 13, 2, &req, a);
    return resp ? resp->error_code : -1;
}

/* The group's state and member count from DescribeGroups v1. */
static bool describe(int fd, const char *group, char *state, size_t cap, int *members,
                     sm_arena_t *a) {
    proto_describe_groups_request_t req;
    proto_describe_groups_request_init(&req);
    sm_str_t g = {group, (int32_t)strlen(group)};
    req.groups = (sm_str_array_t){1, &g};
    proto_describe_groups_response_t *resp = rpc(fd, 15, 1, &req, a);
    if (!resp || resp->groups.n != 1) return false;
    snprintf(state, cap, "%.*s", (int)resp->groups.v[0].group_state.len,
             resp->groups.v[0].group_state.ptr);
    *members = resp->groups.v[0].members.n;
    return true;
}

/* JoinGroup v5 of static member `instance` (member id "": a new process). */
static joined_t join_static(int fd, const char *group, const char *instance, sm_arena_t *a) {
    joined_t j = {-1, -1, ""};
    proto_join_group_request_t req;
    proto_join_group_request_init(&req);
    proto_join_group_request_join_group_request_protocol_t p;
    memset(&p, 0, sizeof(p));
    p.name = SM_STR_LIT("range");
    p.metadata = (sm_bytes_t){(const uint8_t *)"meta", 4};
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.session_timeout_ms = 30000;
    req.rebalance_timeout_ms = 30000;
    req.member_id = SM_STR_LIT("");
    req.group_instance_id = (sm_str_t){instance, (int32_t)strlen(instance)};
    req.protocol_type = SM_STR_LIT("consumer");
    req.protocols = (proto_join_group_request_join_group_request_protocol_array_t){1, &p};
    proto_join_group_response_t *resp = rpc(fd, 11, 5, &req, a);
    if (!resp) return j;
    j.error = resp->error_code;
    j.generation = resp->generation_id;
    snprintf(j.member, sizeof(j.member), "%.*s", (int)resp->member_id.len, resp->member_id.ptr);
    return j;
}

/* Heartbeat v3 of a static member. */
static int heartbeat_static(int fd, const char *group, const joined_t *j, const char *instance,
                            sm_arena_t *a) {
    proto_heartbeat_request_t req;
    proto_heartbeat_request_init(&req);
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.generation_id = j->generation;
    req.member_id = (sm_str_t){j->member, (int32_t)strlen(j->member)};
    req.group_instance_id = (sm_str_t){instance, (int32_t)strlen(instance)};
    proto_heartbeat_response_t *resp = rpc(fd, 12, 3, &req, a);
    return resp ? resp->error_code : -1;
}

/* ConsumerGroupHeartbeat v0 of member (j->member, "" to join) at its epoch
 * (j->generation), subscribed to "t"; fills j from the answer. */
static int consumer_heartbeat(int fd, const char *group, joined_t *j, sm_arena_t *a) {
    proto_consumer_group_heartbeat_request_t req;
    proto_consumer_group_heartbeat_request_init(&req);
    sm_str_t topic = SM_STR_LIT("t");
    req.group_id = (sm_str_t){group, (int32_t)strlen(group)};
    req.member_id = (sm_str_t){j->member, (int32_t)strlen(j->member)};
    req.member_epoch = j->generation;
    req.rebalance_timeout_ms = 30000;
    req.subscribed_topic_names = (sm_str_array_t){1, &topic};
    proto_consumer_group_heartbeat_response_t *resp = rpc(fd, 68, 0, &req, a);
    if (!resp) return -1;
    if (!resp->error_code) {
        snprintf(j->member, sizeof(j->member), "%.*s", (int)resp->member_id.len,
                 resp->member_id.ptr);
        j->generation = resp->member_epoch;
    }
    return resp->error_code;
}

/* A broker (no fsync) with topic "t" and a connection to it (-1: failed). */
static int open_broker(sm_arena_t *a) {
    sm_arena_init(a, 64u << 20);
    if (!start_broker(false)) return -1;
    int fd = connect_to(port);
    if (fd >= 0 && !create_topic(fd, "t", a)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void close_broker(int fd, sm_arena_t *a) {
    close(fd);
    sm_arena_free(a);
    stop_broker();
}

/* Resigns and elects partition p again, as when its leadership moves away
 * and back, and waits until group (which committed offset `off` of "t")
 * is served again. */
static void reload(int32_t p, int fd, const char *group, int64_t off, sm_arena_t *a) {
    group_coordinator_resign(b.groups, p);
    group_coordinator_elect(b.groups, p, 5);
    int64_t got = -1;
    for (int i = 0; i < WAIT_MS / 10 && (got = committed(fd, group, a)) != off; i++)
        usleep(10000);
    CHECK_EQ_INT(off, got);
}

/* ---------------------------------------------------------------- tests */

/* A failed append answers NOT_COORDINATOR and leaves offsets, the group's
 * state and its members as they were; the same requests succeed after. */
static void test_failed_append_changes_nothing(void) {
    REQUIRE(start_broker(false));
    sm_arena_t a;
    sm_arena_init(&a, 64u << 20);
    int fd = connect_to(port);
    REQUIRE(fd >= 0);
    REQUIRE(create_topic(fd, "t", &a));
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, "simple", -1, "", 5, &a));
    atomic_store(&fail_appends, true);
    CHECK_EQ_INT(PROTO_ERR_NOT_COORDINATOR, commit(fd, "simple", -1, "", 9, &a));
    CHECK_EQ_INT(5, committed(fd, "simple", &a));

    /* SyncGroup of the leader: its assignment is not taken, the group stays
     * in CompletingRebalance. */
    atomic_store(&fail_appends, false);
    joined_t j = join(fd, "grp", &a);
    REQUIRE(j.error == PROTO_ERR_NONE);
    atomic_store(&fail_appends, true);
    CHECK_EQ_INT(PROTO_ERR_NOT_COORDINATOR, sync_group(fd, "grp", &j, &a));
    char state[64];
    int members = -1;
    REQUIRE(describe(fd, "grp", state, sizeof(state), &members, &a));
    CHECK(strcmp(state, "CompletingRebalance") == 0);
    CHECK_EQ_INT(1, members);
    atomic_store(&fail_appends, false);
    CHECK_EQ_INT(PROTO_ERR_NONE, sync_group(fd, "grp", &j, &a));
    REQUIRE(describe(fd, "grp", state, sizeof(state), &members, &a));
    CHECK(strcmp(state, "Stable") == 0);

    /* The last member's LeaveGroup: the move to Empty is not written, so the
     * member stays. */
    atomic_store(&fail_appends, true);
    CHECK_EQ_INT(PROTO_ERR_NOT_COORDINATOR, leave(fd, "grp", &j, &a));
    REQUIRE(describe(fd, "grp", state, sizeof(state), &members, &a));
    CHECK(strcmp(state, "Stable") == 0);
    CHECK_EQ_INT(1, members);
    CHECK_EQ_INT(PROTO_ERR_NONE, heartbeat(fd, "grp", &j, &a));
    atomic_store(&fail_appends, false);
    CHECK_EQ_INT(PROTO_ERR_NONE, leave(fd, "grp", &j, &a));
    REQUIRE(describe(fd, "grp", state, sizeof(state), &members, &a));
    CHECK(strcmp(state, "Empty") == 0);
    CHECK_EQ_INT(0, members);
    close(fd);
    sm_arena_free(&a);
    stop_broker();
}

/* With fsync-before-ack, a commit of group A whose partition's flush is held
 * stays unanswered while group B (another partition) joins, syncs and
 * heartbeats, and A's own heartbeats are answered too; A's commit is
 * answered once the flush is let through. */
static void test_held_flush_blocks_only_its_answer(void) {
    REQUIRE(start_broker(true));
    sm_arena_t a;
    sm_arena_init(&a, 64u << 20);
    int fd = connect_to(port), fa = connect_to(port);
    REQUIRE(fd >= 0 && fa >= 0);
    REQUIRE(create_topic(fd, "t", &a));
    char ga[64], gb[64];
    group_in(1, "ga", ga, sizeof(ga));
    group_in(2, "gb", gb, sizeof(gb));
    joined_t ja = join(fd, ga, &a);
    REQUIRE(ja.error == PROTO_ERR_NONE);
    REQUIRE(sync_group(fd, ga, &ja, &a) == PROTO_ERR_NONE);

    atomic_store(&held_partition, 1);
    REQUIRE(send_commit(fa, ga, ja.generation, ja.member, 42));
    /* Group B's whole life runs meanwhile, and so do A's heartbeats. */
    joined_t jb = join(fd, gb, &a);
    CHECK_EQ_INT(PROTO_ERR_NONE, jb.error);
    CHECK_EQ_INT(PROTO_ERR_NONE, sync_group(fd, gb, &jb, &a));
    CHECK_EQ_INT(PROTO_ERR_NONE, heartbeat(fd, gb, &jb, &a));
    CHECK_EQ_INT(PROTO_ERR_NONE, heartbeat(fd, ga, &ja, &a));
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, gb, jb.generation, jb.member, 7, &a));
    /* A's commit is still waiting for its flush: nothing to read yet. */
    pthread_mutex_lock(&held_mu);
    int waiting = nheld;
    pthread_mutex_unlock(&held_mu);
    CHECK_EQ_INT(1, waiting);
    struct pollfd pfd = {fa, POLLIN, 0};
    CHECK_EQ_INT(0, poll(&pfd, 1, 0));

    release_held();
    void *resp = NULL;
    CHECK(recv_resp(fa, 8, 2, &a, &resp, WAIT_MS));
    CHECK_EQ_INT(PROTO_ERR_NONE, commit_error(resp));
    CHECK_EQ_INT(42, committed(fd, ga, &a));
    close(fa);
    close(fd);
    sm_arena_free(&a);
    stop_broker();
}

/* A cluster's coordinator follows leadership: resign unloads a shard (its
 * requests, a parked JoinGroup too, get NOT_COORDINATOR; other shards are
 * untouched); elect loads it off the event loop (COORDINATOR_LOAD_IN_PROGRESS
 * meanwhile) and then serves what the log holds. */
static void test_shard_follows_leadership(void) {
    REQUIRE(start_broker(false));
    sm_arena_t a;
    sm_arena_init(&a, 64u << 20);
    int fd = connect_to(port), fj = connect_to(port);
    REQUIRE(fd >= 0 && fj >= 0);
    REQUIRE(create_topic(fd, "t", &a));
    char g1[64], g2[64], gj[64];
    group_in(1, "g1", g1, sizeof(g1));
    group_in(2, "g2", g2, sizeof(g2));
    group_in(1, "gj", gj, sizeof(gj));
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, g1, -1, "", 11, &a));
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, g2, -1, "", 22, &a));
    /* A second member's join parks: the first must rejoin. */
    joined_t j1 = join(fd, gj, &a);
    REQUIRE(j1.error == PROTO_ERR_NONE);
    proto_join_group_request_t req;
    proto_join_group_request_init(&req);
    proto_join_group_request_join_group_request_protocol_t pr;
    memset(&pr, 0, sizeof(pr));
    pr.name = SM_STR_LIT("range");
    pr.metadata = (sm_bytes_t){(const uint8_t *)"meta", 4};
    req.group_id = (sm_str_t){gj, (int32_t)strlen(gj)};
    req.session_timeout_ms = 30000;
    req.rebalance_timeout_ms = 30000;
    req.member_id = SM_STR_LIT("");
    req.protocol_type = SM_STR_LIT("consumer");
    req.protocols = (proto_join_group_request_join_group_request_protocol_array_t){1, &pr};
    REQUIRE(send_req(fj, 11, 3, &req));
    struct pollfd pfd = {fj, POLLIN, 0};
    CHECK_EQ_INT(0, poll(&pfd, 1, 200));

    group_coordinator_resign(b.groups, 1);
    void *jresp = NULL;
    CHECK(recv_resp(fj, 11, 3, &a, &jresp, WAIT_MS));
    CHECK(jresp && ((proto_join_group_response_t *)jresp)->error_code == PROTO_ERR_NOT_COORDINATOR);
    CHECK_EQ_INT(PROTO_ERR_NOT_COORDINATOR, commit(fd, g1, -1, "", 12, &a));
    CHECK_EQ_INT(-1000 - PROTO_ERR_NOT_COORDINATOR, committed(fd, g1, &a));
    CHECK_EQ_INT(22, committed(fd, g2, &a)); /* another shard */

    set_hold_loads(true);
    group_coordinator_elect(b.groups, 1, 3);
    CHECK_EQ_INT(PROTO_ERR_COORDINATOR_LOAD_IN_PROGRESS, commit(fd, g1, -1, "", 13, &a));
    CHECK_EQ_INT(-1000 - PROTO_ERR_COORDINATOR_LOAD_IN_PROGRESS, committed(fd, g1, &a));
    set_hold_loads(false);
    int64_t got = -1;
    for (int i = 0; i < WAIT_MS / 10 && (got = committed(fd, g1, &a)) != 11; i++)
        usleep(10000);
    CHECK_EQ_INT(11, got);
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, g1, -1, "", 14, &a));
    CHECK_EQ_INT(14, committed(fd, g1, &a));
    close(fj);
    close(fd);
    sm_arena_free(&a);
    stop_broker();
}

/* A classic group's members survive a reload of its partition (the
 * coordinator moving): the member heartbeats, syncs and commits with its id
 * and generation, and the group is Stable with it, without a rebalance. */
static void test_classic_members_survive_reload(void) {
    sm_arena_t a;
    int fd = open_broker(&a);
    REQUIRE(fd >= 0);
    char gm[64];
    group_in(1, "gm", gm, sizeof(gm));
    joined_t j = join(fd, gm, &a);
    REQUIRE(j.error == PROTO_ERR_NONE);
    REQUIRE(sync_group(fd, gm, &j, &a) == PROTO_ERR_NONE);
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, gm, j.generation, j.member, 5, &a));
    reload(1, fd, gm, 5, &a);
    CHECK_EQ_INT(PROTO_ERR_NONE, heartbeat(fd, gm, &j, &a));
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, gm, j.generation, j.member, 6, &a));
    CHECK_EQ_INT(6, committed(fd, gm, &a));
    CHECK_EQ_INT(PROTO_ERR_NONE, sync_group(fd, gm, &j, &a));
    char state[64];
    int members = -1;
    REQUIRE(describe(fd, gm, state, sizeof(state), &members, &a));
    CHECK(strcmp(state, "Stable") == 0);
    CHECK_EQ_INT(1, members);
    /* A simple commit is refused: the group has a member. */
    CHECK_EQ_INT(PROTO_ERR_UNKNOWN_MEMBER_ID, commit(fd, gm, -1, "", 7, &a));
    /* It leaves: the group is Empty, and so it loads. */
    CHECK_EQ_INT(PROTO_ERR_NONE, leave(fd, gm, &j, &a));
    reload(1, fd, gm, 6, &a);
    REQUIRE(describe(fd, gm, state, sizeof(state), &members, &a));
    CHECK(strcmp(state, "Empty") == 0);
    CHECK_EQ_INT(0, members);
    CHECK_EQ_INT(PROTO_ERR_UNKNOWN_MEMBER_ID, heartbeat(fd, gm, &j, &a));
    close_broker(fd, &a);
}

/* A static member restarted (a new member id, no rebalance) is written with
 * its new id: after a reload the new id heartbeats and the old one is fenced.
 * When that write fails the member keeps its old id. */
static void test_static_member_new_id_survives_reload(void) {
    sm_arena_t a;
    int fd = open_broker(&a);
    REQUIRE(fd >= 0);
    char gs[64];
    group_in(2, "gs", gs, sizeof(gs));
    joined_t j1 = join_static(fd, gs, "inst", &a);
    REQUIRE(j1.error == PROTO_ERR_NONE);
    REQUIRE(sync_group(fd, gs, &j1, &a) == PROTO_ERR_NONE);
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, gs, j1.generation, j1.member, 3, &a));

    atomic_store(&fail_appends, true);
    joined_t failed = join_static(fd, gs, "inst", &a);
    atomic_store(&fail_appends, false);
    CHECK_EQ_INT(PROTO_ERR_NOT_COORDINATOR, failed.error);
    CHECK_EQ_INT(PROTO_ERR_NONE, heartbeat_static(fd, gs, &j1, "inst", &a));

    joined_t j2 = join_static(fd, gs, "inst", &a);
    CHECK_EQ_INT(PROTO_ERR_NONE, j2.error);
    CHECK_EQ_INT(j1.generation, j2.generation);
    CHECK(strcmp(j1.member, j2.member) != 0);
    reload(2, fd, gs, 3, &a);
    CHECK_EQ_INT(PROTO_ERR_NONE, heartbeat_static(fd, gs, &j2, "inst", &a));
    CHECK_EQ_INT(PROTO_ERR_FENCED_INSTANCE_ID, heartbeat_static(fd, gs, &j1, "inst", &a));
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, gs, j2.generation, j2.member, 4, &a));
    close_broker(fd, &a);
}

/* A consumer group's (KIP-848) member survives a reload: its next heartbeat
 * at its epoch is answered, and it commits at that epoch. */
static void test_consumer_members_survive_reload(void) {
    sm_arena_t a;
    int fd = open_broker(&a);
    REQUIRE(fd >= 0);
    char gc[64];
    group_in(3, "gc", gc, sizeof(gc));
    joined_t j = {-1, 0, ""};
    REQUIRE(consumer_heartbeat(fd, gc, &j, &a) == PROTO_ERR_NONE);
    REQUIRE(j.generation > 0 && j.member[0]);
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, gc, j.generation, j.member, 8, &a));
    joined_t before = j;
    reload(3, fd, gc, 8, &a);
    CHECK_EQ_INT(PROTO_ERR_NONE, consumer_heartbeat(fd, gc, &j, &a));
    CHECK(strcmp(before.member, j.member) == 0);
    CHECK_EQ_INT(before.generation, j.generation);
    CHECK_EQ_INT(PROTO_ERR_NONE, commit(fd, gc, j.generation, j.member, 9, &a));
    close_broker(fd, &a);
}

int main(void) {
    RUN(test_failed_append_changes_nothing);
    RUN(test_held_flush_blocks_only_its_answer);
    RUN(test_shard_follows_leadership);
    RUN(test_classic_members_survive_reload);
    RUN(test_static_member_new_id_survives_reload);
    RUN(test_consumer_members_survive_reload);
    return t_summary("group_runtime");
}
