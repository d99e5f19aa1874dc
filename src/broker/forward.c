/*
 * Forwarded admin requests, the broker's half: reads the active controller's answer for the
 * error that means "I am not the controller" (so the relay sends it again), and builds the
 * error answer of a request whose forwarding timed out. The relay, its retries and deadline
 * are in src/cluster (cluster_forward); nothing here keeps state.
 */
#include "broker/forward.h"

#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "protocol/errors.h"
#include "protocol/gen/api.h"
#include "protocol/request.h"

/* The api keys forwarded to the controller (dispatch.c's controller_api). */
enum {
    K_CREATE_TOPICS = 19,
    K_DELETE_TOPICS = 20,
    K_ALTER_CONFIGS = 33,
    K_CREATE_PARTITIONS = 37,
    K_ELECT_LEADERS = 43,
    K_INCREMENTAL_ALTER_CONFIGS = 44,
    K_ALTER_PARTITION_REASSIGNMENTS = 45,
    K_LIST_PARTITION_REASSIGNMENTS = 46,
    K_ALTER_CLIENT_QUOTAS = 49,
    K_DESCRIBE_QUORUM = 55,
    K_UPDATE_FEATURES = 57,
    K_ALLOCATE_PRODUCER_IDS = 67, /* a broker's own call, relayed the same way */
    K_ADD_RAFT_VOTER = 80,
    K_REMOVE_RAFT_VOTER = 81,
    K_UPDATE_RAFT_VOTER = 82,
};

/* True when an element of the result array arr has error code e. */
#define ANY_ERROR(arr, e)                                                                          \
    any_error((arr).n > 0 ? &(arr).v[0].error_code : NULL, (arr).n, sizeof(*(arr).v), (e))

static bool any_error(const int16_t *first, int32_t n, size_t stride, int16_t e) {
    for (int32_t i = 0; i < n; i++)
        if (*(const int16_t *)(const void *)((const char *)first + (size_t)i * stride) == e)
            return true;
    return false;
}

static bool stale_body(int16_t key, const void *m, int16_t e) {
    switch (key) {
    case K_CREATE_TOPICS: return ANY_ERROR(((const proto_create_topics_response_t *)m)->topics, e);
    case K_DELETE_TOPICS:
        return ANY_ERROR(((const proto_delete_topics_response_t *)m)->responses, e);
    case K_ALTER_CONFIGS:
        return ANY_ERROR(((const proto_alter_configs_response_t *)m)->responses, e);
    case K_INCREMENTAL_ALTER_CONFIGS:
        return ANY_ERROR(((const proto_incremental_alter_configs_response_t *)m)->responses, e);
    case K_CREATE_PARTITIONS:
        return ANY_ERROR(((const proto_create_partitions_response_t *)m)->results, e);
    case K_ALTER_CLIENT_QUOTAS:
        return ANY_ERROR(((const proto_alter_client_quotas_response_t *)m)->entries, e);
    case K_ELECT_LEADERS: {
        const proto_elect_leaders_response_t *r = m;
        bool any = r->error_code == e;
        for (int32_t i = 0; i < r->replica_election_results.n && !any; i++)
            any = ANY_ERROR(r->replica_election_results.v[i].partition_result, e);
        return any;
    }
    case K_ALTER_PARTITION_REASSIGNMENTS: {
        const proto_alter_partition_reassignments_response_t *r = m;
        bool any = r->error_code == e;
        for (int32_t i = 0; i < r->responses.n && !any; i++)
            any = ANY_ERROR(r->responses.v[i].partitions, e);
        return any;
    }
    case K_DESCRIBE_QUORUM: {
        const proto_describe_quorum_response_t *r = m;
        bool any = r->error_code == e;
        for (int32_t i = 0; i < r->topics.n && !any; i++)
            any = ANY_ERROR(r->topics.v[i].partitions, e);
        return any;
    }
    case K_UPDATE_FEATURES: {
        const proto_update_features_response_t *r = m;
        return r->error_code == e || ANY_ERROR(r->results, e);
    }
    default: {
        /* the answers with one top-level ErrorCode only */
        const int16_t *code = NULL;
        switch (key) {
        case K_LIST_PARTITION_REASSIGNMENTS:
            code = &((const proto_list_partition_reassignments_response_t *)m)->error_code;
            break;
        case K_ADD_RAFT_VOTER:
            code = &((const proto_add_raft_voter_response_t *)m)->error_code;
            break;
        case K_REMOVE_RAFT_VOTER:
            code = &((const proto_remove_raft_voter_response_t *)m)->error_code;
            break;
        case K_UPDATE_RAFT_VOTER:
            code = &((const proto_update_raft_voter_response_t *)m)->error_code;
            break;
        case K_ALLOCATE_PRODUCER_IDS:
            code = &((const proto_allocate_producer_ids_response_t *)m)->error_code;
            break;
        default: break;
        }
        return code && *code == e;
    }
    }
}

bool broker_forward_stale(const uint8_t *resp, size_t len, int16_t api_key, int16_t version) {
    const proto_api_desc_t *api = proto_api_lookup(api_key);
    int hv = proto_response_header_version(api_key, version);
    if (!api || hv < 0) return false;
    bool stale = false;
    sm_arena_t a;
    sm_arena_init(&a, proto_decode_arena_limit(len));
    sm_reader_t r = sm_reader_make(resp, len);
    proto_response_header_t rh;
    void *body = sm_arena_alloc(&a, api->response->struct_size);
    if (body && proto_response_header_decode(&r, &a, (int16_t)hv, &rh) == SM_OK) {
        api->response->init(body);
        if (api->response->decode(&r, &a, version, body) == SM_OK)
            stale = stale_body(api_key, body,
                               api_key == K_DESCRIBE_QUORUM ? PROTO_ERR_NOT_LEADER_OR_FOLLOWER
                                                            : PROTO_ERR_NOT_CONTROLLER);
    }
    sm_arena_free(&a);
    return stale;
}

/* ---- error answers: one result per item the request names, each with error ---- */

/* Gives the result array out n zeroed elements from a (none when n < 0); false when out of
 * memory. */
#define MIRROR(a, out, count)                                                                      \
    ((out).n = (count) > 0 ? (count) : 0,                                                          \
     ((out).v = sm_arena_calloc((a), (size_t)(out).n + 1, sizeof(*(out).v))) != NULL)

/* AlterConfigs and IncrementalAlterConfigs: the same resources and results in two types. */
#define FAIL_CONFIG_RESOURCES(a, q, r, e)                                                          \
    do {                                                                                           \
        if (!MIRROR(a, (r)->responses, (q)->resources.n)) return SM_ERR_NOMEM;                     \
        for (int32_t i = 0; i < (r)->responses.n; i++) {                                           \
            (r)->responses.v[i].error_code = (e);                                                  \
            (r)->responses.v[i].error_message = SM_STR_NULL;                                       \
            (r)->responses.v[i].resource_type = (q)->resources.v[i].resource_type;                 \
            (r)->responses.v[i].resource_name = (q)->resources.v[i].resource_name;                 \
        }                                                                                          \
        return SM_OK;                                                                              \
    } while (0)

static int fail_create_topics(sm_arena_t *a, const proto_create_topics_request_t *q,
                              proto_create_topics_response_t *r, int16_t e) {
    if (!MIRROR(a, r->topics, q->topics.n)) return SM_ERR_NOMEM;
    for (int32_t i = 0; i < r->topics.n; i++) {
        proto_create_topics_response_creatable_topic_result_t *t = &r->topics.v[i];
        t->name = q->topics.v[i].name;
        t->error_code = e;
        t->error_message = SM_STR_NULL;
        t->num_partitions = -1;
        t->replication_factor = -1;
        t->configs.n = -1;
    }
    return SM_OK;
}

static int fail_delete_topics(sm_arena_t *a, int16_t version,
                              const proto_delete_topics_request_t *q,
                              proto_delete_topics_response_t *r, int16_t e) {
    if (!MIRROR(a, r->responses, version >= 6 ? q->topics.n : q->topic_names.n))
        return SM_ERR_NOMEM;
    for (int32_t i = 0; i < r->responses.n; i++) {
        proto_delete_topics_response_deletable_topic_result_t *t = &r->responses.v[i];
        if (version >= 6) {
            t->name = q->topics.v[i].name;
            t->topic_id = q->topics.v[i].topic_id;
        } else {
            t->name = q->topic_names.v[i];
        }
        t->error_code = e;
        t->error_message = SM_STR_NULL;
    }
    return SM_OK;
}

static int fail_create_partitions(sm_arena_t *a, const proto_create_partitions_request_t *q,
                                  proto_create_partitions_response_t *r, int16_t e) {
    if (!MIRROR(a, r->results, q->topics.n)) return SM_ERR_NOMEM;
    for (int32_t i = 0; i < r->results.n; i++) {
        r->results.v[i].name = q->topics.v[i].name;
        r->results.v[i].error_code = e;
        r->results.v[i].error_message = SM_STR_NULL;
    }
    return SM_OK;
}

static int fail_alter_configs(sm_arena_t *a, const proto_alter_configs_request_t *q,
                              proto_alter_configs_response_t *r, int16_t e) {
    FAIL_CONFIG_RESOURCES(a, q, r, e);
}

static int fail_incremental_alter_configs(sm_arena_t *a,
                                          const proto_incremental_alter_configs_request_t *q,
                                          proto_incremental_alter_configs_response_t *r,
                                          int16_t e) {
    FAIL_CONFIG_RESOURCES(a, q, r, e);
}

static int fail_elect_leaders(sm_arena_t *a, const proto_elect_leaders_request_t *q,
                              proto_elect_leaders_response_t *r, int16_t e) {
    r->error_code = e;
    if (!MIRROR(a, r->replica_election_results, q->topic_partitions.n)) return SM_ERR_NOMEM;
    for (int32_t i = 0; i < r->replica_election_results.n; i++) {
        const proto_elect_leaders_request_topic_partitions_t *qt = &q->topic_partitions.v[i];
        proto_elect_leaders_response_replica_election_result_t *t =
            &r->replica_election_results.v[i];
        t->topic = qt->topic;
        if (!MIRROR(a, t->partition_result, qt->partitions.n)) return SM_ERR_NOMEM;
        for (int32_t j = 0; j < t->partition_result.n; j++) {
            t->partition_result.v[j].partition_id = qt->partitions.v[j];
            t->partition_result.v[j].error_code = e;
            t->partition_result.v[j].error_message = SM_STR_NULL;
        }
    }
    return SM_OK;
}

static int fail_reassignments(sm_arena_t *a, const proto_alter_partition_reassignments_request_t *q,
                              proto_alter_partition_reassignments_response_t *r, int16_t e) {
    r->error_code = e;
    r->error_message = SM_STR_NULL;
    r->allow_replication_factor_change = q->allow_replication_factor_change;
    if (!MIRROR(a, r->responses, q->topics.n)) return SM_ERR_NOMEM;
    for (int32_t i = 0; i < r->responses.n; i++) {
        const proto_alter_partition_reassignments_request_reassignable_topic_t *qt =
            &q->topics.v[i];
        proto_alter_partition_reassignments_response_reassignable_topic_response_t *t =
            &r->responses.v[i];
        t->name = qt->name;
        if (!MIRROR(a, t->partitions, qt->partitions.n)) return SM_ERR_NOMEM;
        for (int32_t j = 0; j < t->partitions.n; j++) {
            t->partitions.v[j].partition_index = qt->partitions.v[j].partition_index;
            t->partitions.v[j].error_code = e;
            t->partitions.v[j].error_message = SM_STR_NULL;
        }
    }
    return SM_OK;
}

static int fail_client_quotas(sm_arena_t *a, const proto_alter_client_quotas_request_t *q,
                              proto_alter_client_quotas_response_t *r, int16_t e) {
    if (!MIRROR(a, r->entries, q->entries.n)) return SM_ERR_NOMEM;
    for (int32_t i = 0; i < r->entries.n; i++) {
        const proto_alter_client_quotas_request_entry_data_t *qe = &q->entries.v[i];
        proto_alter_client_quotas_response_entry_data_t *re = &r->entries.v[i];
        re->error_code = e;
        re->error_message = SM_STR_NULL;
        if (!MIRROR(a, re->entity, qe->entity.n)) return SM_ERR_NOMEM;
        for (int32_t j = 0; j < re->entity.n; j++) {
            re->entity.v[j].entity_type = qe->entity.v[j].entity_type;
            re->entity.v[j].entity_name = qe->entity.v[j].entity_name;
        }
    }
    return SM_OK;
}

static int fill_error(sm_arena_t *a, const proto_request_t *req, void *resp, int16_t e) {
    int16_t v = req->header.request_api_version;
    switch (req->header.request_api_key) {
    case K_CREATE_TOPICS: return fail_create_topics(a, req->body, resp, e);
    case K_DELETE_TOPICS: return fail_delete_topics(a, v, req->body, resp, e);
    case K_ALTER_CONFIGS: return fail_alter_configs(a, req->body, resp, e);
    case K_INCREMENTAL_ALTER_CONFIGS: return fail_incremental_alter_configs(a, req->body, resp, e);
    case K_CREATE_PARTITIONS: return fail_create_partitions(a, req->body, resp, e);
    case K_ELECT_LEADERS: return fail_elect_leaders(a, req->body, resp, e);
    case K_ALTER_PARTITION_REASSIGNMENTS: return fail_reassignments(a, req->body, resp, e);
    case K_ALTER_CLIENT_QUOTAS: return fail_client_quotas(a, req->body, resp, e);
    default: return req->api->response->set_error(resp, e); /* one top-level ErrorCode */
    }
}

int broker_forward_error_frame(const uint8_t *req_frame, size_t req_len, int16_t error,
                               uint8_t **out, size_t *out_len) {
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_request_t req;
    uint8_t *enc = NULL;
    size_t len = 0;
    void *resp = NULL;
    int rc = proto_request_parse(req_frame, req_len, &a, &req);
    if (rc == SM_OK && !req.api) rc = SM_ERR_PARSE;
    if (rc != SM_OK) goto out;
    resp = sm_arena_alloc(&a, req.api->response->struct_size);
    if (!resp) {
        rc = SM_ERR_NOMEM;
        goto out;
    }
    req.api->response->init(resp);
    rc = fill_error(&a, &req, resp, error);
    if (rc != SM_OK) goto out;
    rc = proto_response_encode(&a, req.api, req.header.request_api_version,
                               req.header.correlation_id, resp, &enc, &len);
    if (rc != SM_OK) goto out;
    *out = malloc(len);
    if (!*out) {
        rc = SM_ERR_NOMEM;
        goto out;
    }
    memcpy(*out, enc, len);
    *out_len = len;
out:
    sm_arena_free(&a);
    return rc;
}

void broker_forward_fail(void *ctx, net_request_t *nreq, int16_t error) {
    (void)ctx;
    uint8_t *frame = NULL;
    size_t len = 0;
    if (broker_forward_error_frame(nreq->frame, nreq->len, error, &frame, &len) != SM_OK) {
        net_request_close(nreq);
        return;
    }
    net_segment_t seg = {frame, len, -1, 0, free, frame};
    net_request_respond(nreq, &seg, 1);
}
