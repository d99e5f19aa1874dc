/*
 * Consumer-group calls for `samsa groups` (see adm_groups.h). Offsets are
 * listed at each partition's leader and committed at the group's coordinator,
 * as Kafka's AdminClient does.
 */
#include "cli/adm_groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/out.h"

static int str_cmp(sm_str_t a, sm_str_t b) {
    int32_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

adm_part_t *adm_parts_add(adm_cmd_t *m, adm_parts_t *ps, sm_str_t topic, int32_t partition) {
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].partition == partition && sm_str_eq(ps->v[i].topic, topic)) return &ps->v[i];
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 32;
        adm_part_t *v = sm_arena_calloc(&m->a, cap, sizeof(*v));
        if (!v) {
            cli_error("out of memory");
            exit(CLI_FAIL);
        }
        if (ps->n) memcpy(v, ps->v, ps->n * sizeof(*v));
        ps->v = v;
        ps->cap = cap;
    }
    adm_part_t *p = &ps->v[ps->n++];
    memset(p, 0, sizeof(*p));
    p->topic = topic;
    p->partition = partition;
    p->committed = p->log_start = p->log_end = p->target = -1;
    return p;
}

static int part_cmp(const void *x, const void *y) {
    const adm_part_t *a = x, *b = y;
    int c = str_cmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

void adm_parts_sort(adm_parts_t *ps) {
    if (ps->n > 1) qsort(ps->v, ps->n, sizeof(*ps->v), part_cmp);
}

static adm_part_t *parts_find(adm_parts_t *ps, sm_str_t topic, int32_t partition) {
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i].partition == partition && sm_str_eq(ps->v[i].topic, topic)) return &ps->v[i];
    return NULL;
}

/* A coordinator that is loading or moving answers with a retriable error. */
static bool coordinator_retriable(int16_t code) {
    return code == PROTO_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
           code == PROTO_ERR_COORDINATOR_NOT_AVAILABLE || code == PROTO_ERR_NOT_COORDINATOR;
}

static void backoff(void) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void group_what(char *buf, size_t cap, const char *group) {
    snprintf(buf, cap, "group '%s'", group);
}

int adm_coordinator(adm_cmd_t *m, const char *group, int32_t *node) {
    int64_t deadline = kc_now_ms() + m->c.timeout_ms;
    char what[300];
    group_what(what, sizeof(what), group);
    for (;;) {
        int16_t kerr;
        sm_str_t kmsg;
        if (kc_find_coordinator(&m->kc, group, &m->a, node, &kerr, &kmsg) != SM_OK) {
            cli_error("%s: %s", what, m->kc.err);
            return CLI_FAIL;
        }
        if (kerr == PROTO_ERR_NONE) return CLI_OK;
        if (!coordinator_retriable(kerr) || kc_now_ms() >= deadline) {
            out_kafka_error(what, kerr, kmsg);
            return CLI_FAIL;
        }
        out_progress("waiting for the coordinator of %s (%s)", what, proto_error_name(kerr));
        backoff();
    }
}

int adm_describe_group(adm_cmd_t *m, int32_t node, const char *group, adm_group_t **out) {
    int64_t deadline = kc_now_ms() + m->c.timeout_ms;
    char what[300];
    group_what(what, sizeof(what), group);
    proto_describe_groups_request_t req;
    proto_describe_groups_request_init(&req);
    sm_str_t name = sm_arena_str(&m->a, group);
    req.groups.n = 1;
    req.groups.v = &name;
    for (;;) {
        proto_describe_groups_response_t *resp = sm_arena_alloc(&m->a, sizeof(*resp));
        if (!resp) return CLI_FAIL;
        int rc = kc_call(&m->kc, node, PROTO_DESCRIBE_GROUPS_REQUEST_API_KEY, 5, &req, resp, &m->a,
                         NULL);
        bool one = rc == SM_OK && resp->groups.n == 1;
        int16_t code = one ? resp->groups.v[0].error_code : 0;
        if (one && coordinator_retriable(code) && kc_now_ms() < deadline) {
            backoff();
            continue;
        }
        int ret = adm_check_one(m, rc, what, "DescribeGroups", rc == SM_OK ? resp->groups.n : 1,
                                code, SM_STR_NULL);
        if (ret == CLI_OK) *out = &resp->groups.v[0];
        return ret;
    }
}

bool adm_group_inactive(const adm_group_t *g) {
    return g->members.n == 0 || sm_str_eq(g->group_state, SM_STR_LIT("Empty")) ||
           sm_str_eq(g->group_state, SM_STR_LIT("Dead"));
}

int adm_fetch_committed(adm_cmd_t *m, int32_t node, const char *group, adm_parts_t *ps,
                        bool only_listed) {
    char what[300];
    group_what(what, sizeof(what), group);
    proto_offset_fetch_request_t req;
    proto_offset_fetch_request_init(&req);
    proto_offset_fetch_request_offset_fetch_request_group_t g;
    memset(&g, 0, sizeof(g));
    g.group_id = req.group_id = sm_arena_str(&m->a, group);
    g.member_id = SM_STR_NULL;
    g.member_epoch = -1;
    g.topics.n = -1;
    req.topics.n = -1;
    req.groups.n = 1;
    req.groups.v = &g;
    proto_offset_fetch_response_t resp;
    int16_t v;
    int rc = kc_call(&m->kc, node, PROTO_OFFSET_FETCH_REQUEST_API_KEY, 8, &req, &resp, &m->a, &v);
    if (rc != SM_OK) {
        cli_error("%s: %s", what, m->kc.err);
        return CLI_FAIL;
    }
    if (v >= 8) {
        if (resp.groups.n != 1) {
            cli_error("%s: OffsetFetch answered %d groups, expected 1", what, resp.groups.n);
            return CLI_FAIL;
        }
        if (resp.groups.v[0].error_code != PROTO_ERR_NONE) {
            out_kafka_error(what, resp.groups.v[0].error_code, SM_STR_NULL);
            return CLI_FAIL;
        }
        /* v8 topics have the same layout as the older ones, field for field. */
        const proto_offset_fetch_response_offset_fetch_response_topics_array_t *ts =
            &resp.groups.v[0].topics;
        for (int32_t i = 0; i < ts->n; i++)
            for (int32_t k = 0; k < ts->v[i].partitions.n; k++) {
                const proto_offset_fetch_response_offset_fetch_response_partitions_t *p =
                    &ts->v[i].partitions.v[k];
                if (p->error_code != PROTO_ERR_NONE || p->committed_offset < 0) continue;
                adm_part_t *dst = only_listed
                                      ? parts_find(ps, ts->v[i].name, p->partition_index)
                                      : adm_parts_add(m, ps, ts->v[i].name, p->partition_index);
                if (dst) dst->committed = p->committed_offset;
            }
        return CLI_OK;
    }
    if (resp.error_code != PROTO_ERR_NONE) {
        out_kafka_error(what, resp.error_code, SM_STR_NULL);
        return CLI_FAIL;
    }
    for (int32_t i = 0; i < resp.topics.n; i++)
        for (int32_t k = 0; k < resp.topics.v[i].partitions.n; k++) {
            const proto_offset_fetch_response_offset_fetch_response_partition_t *p =
                &resp.topics.v[i].partitions.v[k];
            if (p->error_code != PROTO_ERR_NONE || p->committed_offset < 0) continue;
            sm_str_t t = resp.topics.v[i].name;
            adm_part_t *dst = only_listed ? parts_find(ps, t, p->partition_index)
                                          : adm_parts_add(m, ps, t, p->partition_index);
            if (dst) dst->committed = p->committed_offset;
        }
    return CLI_OK;
}

/* Metadata of the distinct topics of ps. */
static int parts_metadata(adm_cmd_t *m, const adm_parts_t *ps, proto_metadata_response_t *md) {
    const char **names = sm_arena_calloc(&m->a, ps->n + 1, sizeof(*names));
    if (!names) return CLI_FAIL;
    size_t nn = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (i > 0 && sm_str_eq(ps->v[i].topic, ps->v[i - 1].topic)) continue;
        names[nn++] = sm_arena_strndup(&m->a, ps->v[i].topic.ptr, (size_t)ps->v[i].topic.len);
    }
    if (kc_metadata(&m->kc, names, nn, &m->a, md) != SM_OK) {
        cli_error("%s", m->kc.err);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* The leader of each partition of ps into leaders[]; reports unknown ones. */
static int parts_leaders(adm_cmd_t *m, const adm_parts_t *ps, int32_t *leaders) {
    proto_metadata_response_t md;
    if (parts_metadata(m, ps, &md) != CLI_OK) return CLI_FAIL;
    for (size_t i = 0; i < ps->n; i++) {
        const adm_part_t *p = &ps->v[i];
        char what[320];
        snprintf(what, sizeof(what), "topic '%.*s' partition %d", (int)p->topic.len, p->topic.ptr,
                 p->partition);
        int16_t code = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        leaders[i] = -1;
        for (int32_t t = 0; t < md.topics.n; t++) {
            if (!sm_str_eq(md.topics.v[t].name, p->topic)) continue;
            if (md.topics.v[t].error_code != PROTO_ERR_NONE) code = md.topics.v[t].error_code;
            for (int32_t k = 0; k < md.topics.v[t].partitions.n; k++)
                if (md.topics.v[t].partitions.v[k].partition_index == p->partition) {
                    leaders[i] = md.topics.v[t].partitions.v[k].leader_id;
                    code = leaders[i] < 0 ? PROTO_ERR_LEADER_NOT_AVAILABLE : PROTO_ERR_NONE;
                }
        }
        if (code != PROTO_ERR_NONE) {
            out_kafka_error(what, code, SM_STR_NULL);
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

enum { WANT_START, WANT_END, WANT_TIME };

/* ListOffsets at timestamp ts for every partition, one request per leader. */
static int list_offsets(adm_cmd_t *m, adm_parts_t *ps, int64_t ts, int want) {
    if (ps->n == 0) return CLI_OK;
    adm_parts_sort(ps);
    int32_t *leaders = sm_arena_calloc(&m->a, ps->n, sizeof(*leaders));
    bool *done = sm_arena_calloc(&m->a, ps->n, sizeof(*done));
    proto_list_offsets_request_list_offsets_topic_t *topics =
        sm_arena_calloc(&m->a, ps->n, sizeof(*topics));
    proto_list_offsets_request_list_offsets_partition_t *parts =
        sm_arena_calloc(&m->a, ps->n, sizeof(*parts));
    if (!leaders || !done || !topics || !parts) return CLI_FAIL;
    if (parts_leaders(m, ps, leaders) != CLI_OK) return CLI_FAIL;
    for (size_t first = 0; first < ps->n; first++) {
        if (done[first]) continue;
        int32_t leader = leaders[first];
        proto_list_offsets_request_t req;
        proto_list_offsets_request_init(&req);
        req.replica_id = -1;
        req.isolation_level = 0;
        req.timeout_ms = (int32_t)m->c.timeout_ms;
        req.topics.v = topics;
        req.topics.n = 0;
        size_t np = 0;
        for (size_t i = first; i < ps->n; i++) {
            if (done[i] || leaders[i] != leader) continue;
            done[i] = true;
            proto_list_offsets_request_list_offsets_topic_t *t =
                req.topics.n > 0 ? &topics[req.topics.n - 1] : NULL;
            if (!t || !sm_str_eq(t->name, ps->v[i].topic)) {
                t = &topics[req.topics.n++];
                memset(t, 0, sizeof(*t));
                t->name = ps->v[i].topic;
                t->partitions.v = &parts[np];
            }
            proto_list_offsets_request_list_offsets_partition_t *p = &parts[np++];
            memset(p, 0, sizeof(*p));
            p->partition_index = ps->v[i].partition;
            p->current_leader_epoch = -1;
            p->timestamp = ts;
            t->partitions.n++;
        }
        proto_list_offsets_response_t resp;
        if (kc_call(&m->kc, leader, PROTO_LIST_OFFSETS_REQUEST_API_KEY, 7, &req, &resp, &m->a,
                    NULL) != SM_OK) {
            cli_error("%s", m->kc.err);
            return CLI_FAIL;
        }
        for (int32_t t = 0; t < resp.topics.n; t++)
            for (int32_t k = 0; k < resp.topics.v[t].partitions.n; k++) {
                const proto_list_offsets_response_list_offsets_partition_response_t *r =
                    &resp.topics.v[t].partitions.v[k];
                adm_part_t *p = parts_find(ps, resp.topics.v[t].name, r->partition_index);
                if (!p) continue;
                if (r->error_code != PROTO_ERR_NONE) {
                    char what[320];
                    snprintf(what, sizeof(what), "topic '%.*s' partition %d", (int)p->topic.len,
                             p->topic.ptr, p->partition);
                    out_kafka_error(what, r->error_code, SM_STR_NULL);
                    return CLI_FAIL;
                }
                if (want == WANT_START) p->log_start = r->offset;
                if (want == WANT_END) p->log_end = r->offset;
                if (want == WANT_TIME) p->target = r->offset >= 0 ? r->offset : p->log_end;
            }
    }
    return CLI_OK;
}

int adm_fetch_log_offsets(adm_cmd_t *m, adm_parts_t *ps) {
    if (list_offsets(m, ps, -2, WANT_START) != CLI_OK) return CLI_FAIL;
    return list_offsets(m, ps, -1, WANT_END);
}

int adm_offsets_for_time(adm_cmd_t *m, adm_parts_t *ps, int64_t ts_ms) {
    return list_offsets(m, ps, ts_ms, WANT_TIME);
}

int adm_topic_partitions(adm_cmd_t *m, const char *topic, adm_parts_t *ps) {
    proto_metadata_response_t md;
    const char *names[1] = {topic};
    if (kc_metadata(&m->kc, names, 1, &m->a, &md) != SM_OK) {
        cli_error("%s", m->kc.err);
        return CLI_FAIL;
    }
    char what[300];
    snprintf(what, sizeof(what), "topic '%s'", topic);
    if (md.topics.n != 1 || md.topics.v[0].error_code != PROTO_ERR_NONE) {
        out_kafka_error(what,
                        md.topics.n == 1 ? md.topics.v[0].error_code
                                         : PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                        SM_STR_NULL);
        return CLI_FAIL;
    }
    sm_str_t name = sm_arena_str(&m->a, topic);
    for (int32_t k = 0; k < md.topics.v[0].partitions.n; k++)
        adm_parts_add(m, ps, name, md.topics.v[0].partitions.v[k].partition_index);
    return CLI_OK;
}

int adm_commit_targets(adm_cmd_t *m, int32_t node, const char *group, const adm_parts_t *ps) {
    char what[300];
    group_what(what, sizeof(what), group);
    proto_offset_commit_request_t req;
    proto_offset_commit_request_init(&req);
    req.group_id = sm_arena_str(&m->a, group);
    req.generation_id_or_member_epoch = -1;
    req.member_id = SM_STR_LIT("");
    req.group_instance_id = SM_STR_NULL;
    req.retention_time_ms = -1;
    proto_offset_commit_request_offset_commit_request_topic_t *topics =
        sm_arena_calloc(&m->a, ps->n + 1, sizeof(*topics));
    proto_offset_commit_request_offset_commit_request_partition_t *parts =
        sm_arena_calloc(&m->a, ps->n + 1, sizeof(*parts));
    if (!topics || !parts) return CLI_FAIL;
    req.topics.v = topics;
    for (size_t i = 0; i < ps->n; i++) {
        proto_offset_commit_request_offset_commit_request_topic_t *t =
            req.topics.n > 0 ? &topics[req.topics.n - 1] : NULL;
        if (!t || !sm_str_eq(t->name, ps->v[i].topic)) {
            t = &topics[req.topics.n++];
            t->name = ps->v[i].topic;
            t->partitions.v = &parts[i];
        }
        parts[i].partition_index = ps->v[i].partition;
        parts[i].committed_offset = ps->v[i].target;
        parts[i].committed_leader_epoch = -1;
        parts[i].committed_metadata = SM_STR_LIT("");
        t->partitions.n++;
    }
    proto_offset_commit_response_t resp;
    if (kc_call(&m->kc, node, PROTO_OFFSET_COMMIT_REQUEST_API_KEY, 8, &req, &resp, &m->a, NULL) !=
        SM_OK) {
        cli_error("%s: %s", what, m->kc.err);
        return CLI_FAIL;
    }
    int failed = 0;
    for (int32_t t = 0; t < resp.topics.n; t++)
        for (int32_t k = 0; k < resp.topics.v[t].partitions.n; k++) {
            const proto_offset_commit_response_offset_commit_response_partition_t *p =
                &resp.topics.v[t].partitions.v[k];
            if (p->error_code == PROTO_ERR_NONE) continue;
            char pw[600];
            snprintf(pw, sizeof(pw), "%s topic '%.*s' partition %d", what,
                     (int)resp.topics.v[t].name.len, resp.topics.v[t].name.ptr, p->partition_index);
            out_kafka_error(pw, p->error_code, SM_STR_NULL);
            failed++;
        }
    return failed ? CLI_FAIL : CLI_OK;
}

void adm_attach_members(adm_cmd_t *m, const adm_group_t *g, adm_parts_t *ps) {
    if (!sm_str_eq(g->protocol_type, SM_STR_LIT("consumer"))) return;
    for (int32_t i = 0; i < g->members.n; i++) {
        const adm_member_t *mem = &g->members.v[i];
        sm_bytes_t b = mem->member_assignment;
        if (b.len < 2) continue;
        sm_reader_t r = sm_reader_make(b.ptr, (size_t)b.len);
        int16_t v;
        if (sm_rd_i16(&r, &v) != SM_OK || v < 0) continue;
        /* A newer assignment version starts with the fields we know (KIP-429). */
        if (v > PROTO_CONSUMER_PROTOCOL_ASSIGNMENT_MAX_VERSION)
            v = PROTO_CONSUMER_PROTOCOL_ASSIGNMENT_MAX_VERSION;
        proto_consumer_protocol_assignment_t as;
        if (proto_consumer_protocol_assignment_decode(&r, &m->a, v, &as) != SM_OK) continue;
        for (int32_t t = 0; t < as.assigned_partitions.n; t++) {
            const proto_consumer_protocol_assignment_topic_partition_t *tp =
                &as.assigned_partitions.v[t];
            for (int32_t k = 0; k < tp->partitions.n; k++)
                adm_parts_add(m, ps, tp->topic, tp->partitions.v[k])->member = mem;
        }
    }
}

int adm_add_topic_arg(adm_cmd_t *m, const char *arg, adm_parts_t *ps) {
    const char *colon = strrchr(arg, ':');
    if (!colon) return adm_topic_partitions(m, arg, ps);
    sm_str_t topic = {sm_arena_strndup(&m->a, arg, (size_t)(colon - arg)), (int32_t)(colon - arg)};
    const char *p = colon + 1;
    if (!topic.ptr || topic.len == 0 || !*p) goto bad;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) goto bad;
        adm_parts_add(m, ps, topic, (int32_t)v);
        p = *end ? end + 1 : end;
    }
    return CLI_OK;
bad:
    cli_error("--topic: '%s' is not TOPIC or TOPIC:PARTITION[,PARTITION...]", arg);
    return CLI_USAGE;
}
