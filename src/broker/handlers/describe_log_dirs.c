/*
 * DescribeLogDirs: for each log directory, the partitions it holds (all, or
 * those asked for) with their sizes on disk, and (v4+) the file system's
 * total and usable bytes. Replicas are never behind (offset lag 0) and
 * never moving between directories (no future replicas). v5's IsCordoned
 * (KIP-1066) is false: directories cannot be cordoned here, every one takes
 * new partitions.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

typedef proto_describe_log_dirs_request_t req_t;
typedef proto_describe_log_dirs_response_t resp_t;
typedef proto_describe_log_dirs_response_describe_log_dirs_result_t dir_result_t;
typedef proto_describe_log_dirs_response_describe_log_dirs_topic_t topic_result_t;
typedef proto_describe_log_dirs_response_describe_log_dirs_partition_t part_result_t;

typedef struct found {
    const char *topic; /* arena copy */
    int32_t partition;
    int64_t size;
    int dir; /* index into the log dirs */
} found_t;

typedef struct walk {
    broker_req_t *r;
    const req_t *req;
    const char *const *dirs;
    int ndirs;
    found_t *v;
    size_t n, cap;
    bool failed; /* out of memory */
} walk_t;

static bool asked(const req_t *req, const char *topic, int32_t partition) {
    if (req->topics.n < 0) return true;
    for (int32_t i = 0; i < req->topics.n; i++) {
        if (!sm_str_eq(req->topics.v[i].topic, sm_str_from(topic))) continue;
        for (int32_t k = 0; k < req->topics.v[i].partitions.n; k++)
            if (req->topics.v[i].partitions.v[k] == partition) return true;
    }
    return false;
}

static void collect(void *arg, const char *topic, int32_t partition, log_t *l) {
    walk_t *w = arg;
    if (!asked(w->req, topic, partition)) return;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        found_t *v = sm_arena_calloc(&w->r->arena, cap, sizeof(*v));
        if (!v) {
            w->failed = true;
            return;
        }
        if (w->n) memcpy(v, w->v, w->n * sizeof(*v));
        w->v = v;
        w->cap = cap;
    }
    const char *path = log_dir(l);
    int dir = -1;
    for (int i = 0; i < w->ndirs; i++) {
        size_t dl = strlen(w->dirs[i]);
        if (strncmp(path, w->dirs[i], dl) == 0 && path[dl] == '/') dir = i;
    }
    if (dir < 0) return;
    w->v[w->n++] = (found_t){sm_arena_strndup(&w->r->arena, topic, strlen(topic)), partition,
                             log_size_bytes(l), dir};
}

static int by_dir_topic_partition(const void *x, const void *y) {
    const found_t *a = x, *b = y;
    if (a->dir != b->dir) return a->dir < b->dir ? -1 : 1;
    int c = strcmp(a->topic, b->topic);
    if (c) return c;
    return (a->partition > b->partition) - (a->partition < b->partition);
}

int broker_handle_describe_log_dirs(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    walk_t w = {.r = r, .req = req};
    w.ndirs = log_manager_dirs(b->logs, &w.dirs);
    log_manager_foreach(b->logs, collect, &w);
    if (w.failed) return BROKER_CLOSE;
    if (w.n) qsort(w.v, w.n, sizeof(*w.v), by_dir_topic_partition);
    resp->error_code = PROTO_ERR_NONE;
    resp->results.v = sm_arena_calloc(&r->arena, (size_t)w.ndirs + 1, sizeof(dir_result_t));
    if (!resp->results.v) return BROKER_CLOSE;
    resp->results.n = w.ndirs;
    for (int d = 0; d < w.ndirs; d++) {
        dir_result_t *out = &resp->results.v[d];
        out->log_dir = sm_str_from(w.dirs[d]);
        out->is_cordoned = false;
        struct statvfs st;
        if (statvfs(w.dirs[d], &st) == 0) {
            out->total_bytes = (int64_t)st.f_blocks * (int64_t)st.f_frsize;
            out->usable_bytes = (int64_t)st.f_bavail * (int64_t)st.f_frsize;
        } else {
            out->error_code = PROTO_ERR_KAFKA_STORAGE_ERROR;
            out->total_bytes = out->usable_bytes = -1;
        }
        /* w.v is sorted by dir, topic, partition: each run of a topic is one entry. */
        size_t first = 0, ntopics = 0;
        while (first < w.n && w.v[first].dir < d)
            first++;
        size_t end = first;
        for (; end < w.n && w.v[end].dir == d; end++)
            if (end == first || strcmp(w.v[end].topic, w.v[end - 1].topic) != 0) ntopics++;
        out->topics.v = sm_arena_calloc(&r->arena, ntopics + 1, sizeof(topic_result_t));
        if (!out->topics.v) return BROKER_CLOSE;
        out->topics.n = 0;
        for (size_t i = first; i < end;) {
            size_t run = i;
            while (run < end && strcmp(w.v[run].topic, w.v[i].topic) == 0)
                run++;
            topic_result_t *t = &out->topics.v[out->topics.n++];
            t->name = sm_str_from(w.v[i].topic);
            t->partitions.v = sm_arena_calloc(&r->arena, run - i, sizeof(part_result_t));
            if (!t->partitions.v) return BROKER_CLOSE;
            t->partitions.n = (int32_t)(run - i);
            for (size_t k = i; k < run; k++) {
                part_result_t *p = &t->partitions.v[k - i];
                p->partition_index = w.v[k].partition;
                p->partition_size = w.v[k].size;
                p->offset_lag = 0;
                p->is_future_key = false;
            }
            i = run;
        }
    }
    return BROKER_RESPOND;
}
