/*
 * CreateTopics: validates and creates each topic through the controller
 * (partitions and replication factor -1 take num.partitions and
 * default.replication.factor), honouring validateOnly. v5+ responses describe
 * the created topic: partition count, replication factor and its configs.
 */
#include <string.h>

#include "broker/handlers/handlers.h"
#include "metadata/topic_config.h"
#include "protocol/errors.h"

typedef proto_create_topics_request_t req_t;
typedef proto_create_topics_response_t resp_t;
typedef proto_create_topics_response_creatable_topic_result_t result_t;

/* v5+: the topic's effective configs (its overrides, else the defaults). */
static void fill_configs(broker_req_t *r, const proto_create_topics_request_creatable_topic_t *t,
                         result_t *out) {
    size_t n = meta_topic_configs_count;
    out->configs.v = sm_arena_calloc(&r->arena, n, sizeof(*out->configs.v));
    if (!out->configs.v) return;
    out->configs.n = 0;
    for (size_t i = 0; i < n; i++) {
        const meta_topic_config_def_t *d = &meta_topic_configs[i];
        proto_create_topics_response_creatable_topic_configs_t *c =
            &out->configs.v[out->configs.n++];
        c->name = sm_str_from(d->name);
        c->value = sm_str_from(d->default_value);
        c->config_source = 5; /* DEFAULT_CONFIG */
        c->read_only = false;
        c->is_sensitive = false;
        for (int32_t k = 0; k < t->configs.n; k++) {
            if (sm_str_eq(t->configs.v[k].name, c->name) && t->configs.v[k].value.len >= 0) {
                c->value = t->configs.v[k].value;
                c->config_source = 1; /* TOPIC_CONFIG */
            }
        }
    }
}

int broker_handle_create_topics(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(result_t));
    if (!resp->topics.v) return BROKER_CLOSE;
    resp->topics.n = n;
    for (int32_t i = 0; i < n; i++) {
        const proto_create_topics_request_creatable_topic_t *t = &req->topics.v[i];
        result_t *out = &resp->topics.v[i];
        out->name = t->name;
        out->configs.n = -1;
        out->num_partitions = -1;
        out->replication_factor = -1;
        /* The same name twice in one request is refused for both. */
        bool dup = false;
        for (int32_t j = 0; j < n; j++)
            if (j != i && sm_str_eq(req->topics.v[j].name, t->name)) dup = true;
        if (dup) {
            out->error_code = PROTO_ERR_INVALID_REQUEST;
            out->error_message = sm_arena_str(&r->arena, "Duplicate topic name.");
            continue;
        }
        sm_i32_array_t *assign = NULL;
        if (t->assignments.n > 0) {
            /* Manual assignment (Kafka's checks of the request; the controller checks the
             * brokers): partition i's replicas at assign[i]. */
            const char *bad = NULL;
            int16_t code = PROTO_ERR_INVALID_REQUEST;
            if (t->replication_factor != -1)
                bad = "A manual partition assignment was specified, but replication factor "
                      "was not set to -1.";
            else if (t->num_partitions != -1)
                bad = "A manual partition assignment was specified, but numPartitions was not "
                      "set to -1.";
            assign = sm_arena_calloc(&r->arena, (size_t)t->assignments.n, sizeof(*assign));
            if (!assign) return BROKER_CLOSE;
            for (int32_t k = 0; !bad && k < t->assignments.n; k++) {
                int32_t idx = t->assignments.v[k].partition_index;
                code = PROTO_ERR_INVALID_REPLICA_ASSIGNMENT;
                if (idx < 0 || idx >= t->assignments.n)
                    bad = "partitions should be a consecutive 0-based integer sequence";
                else if (assign[idx].v)
                    bad = "Found multiple manual partition assignments for a partition.";
                else if (t->assignments.v[k].broker_ids.n <= 0)
                    bad = "The manual partition assignment includes an empty replica list.";
                else
                    assign[idx] = t->assignments.v[k].broker_ids;
            }
            if (bad) {
                out->error_code = code;
                out->error_message = sm_arena_str(&r->arena, bad);
                continue;
            }
        }
        int32_t partitions = t->assignments.n > 0 ? t->assignments.n : t->num_partitions;
        if (partitions == -1) partitions = b->s.num_partitions;
        int16_t rf =
            t->replication_factor == -1 ? b->s.default_replication_factor : t->replication_factor;
        meta_config_kv_t *kv = NULL;
        if (t->configs.n > 0) {
            kv = sm_arena_calloc(&r->arena, (size_t)t->configs.n, sizeof(*kv));
            if (!kv) return BROKER_CLOSE;
            for (int32_t k = 0; k < t->configs.n; k++)
                kv[k] = (meta_config_kv_t){t->configs.v[k].name, t->configs.v[k].value};
        }
        meta_result_t res;
        sm_uuid_t id = {{0}};
        int32_t nkv = t->configs.n > 0 ? t->configs.n : 0;
        if (assign) {
            rf = (int16_t)assign[0].n;
            meta_create_topic_assigned(&b->controller, t->name, assign, partitions, kv, nkv,
                                       req->validate_only, &id, &res);
        } else {
            meta_create_topic(&b->controller, t->name, partitions, rf, kv, nkv,
                              req->validate_only, &id, &res);
        }
        out->error_code = res.error;
        out->error_message = res.message[0] ? sm_arena_str(&r->arena, res.message) : SM_STR_NULL;
        if (res.error == PROTO_ERR_NONE) {
            out->topic_id = id;
            if (r->version >= 5) {
                out->num_partitions = partitions;
                out->replication_factor = rf;
                fill_configs(r, t, out);
            }
        }
    }
    return BROKER_RESPOND;
}
