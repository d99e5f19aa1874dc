/*
 * DeleteTopics: by name (v0-5 TopicNames, v6+ Name) or by topic id (v6+).
 * The topic leaves the metadata image at once; its partition logs are removed
 * off the request path (renamed, then deleted by the storage layer).
 */
#include <string.h>

#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

typedef proto_delete_topics_request_t req_t;
typedef proto_delete_topics_response_t resp_t;
typedef proto_delete_topics_response_deletable_topic_result_t result_t;

static void delete_one(broker_req_t *r, sm_str_t name, const sm_uuid_t *id, result_t *out) {
    broker_t *b = r->b;
    out->name = name;
    if (id) out->topic_id = *id;
    if (!b->s.delete_topic_enable) {
        out->error_code = PROTO_ERR_TOPIC_DELETION_DISABLED;
        out->error_message = SM_STR_LIT("Topic deletion is disabled.");
        return;
    }
    if (id && name.len < 0) {
        /* Answer with the name too, as Kafka does. */
        meta_image_rdlock(&b->image);
        meta_topic_t *t = meta_image_topic_by_id(&b->image, id);
        if (t) out->name = sm_arena_str(&r->arena, t->name);
        meta_image_unlock(&b->image);
    } else if (!id) {
        meta_image_rdlock(&b->image);
        meta_topic_t *t = meta_image_topic(&b->image, name);
        if (t) out->topic_id = t->id;
        meta_image_unlock(&b->image);
    }
    meta_result_t res;
    meta_delete_topic(&b->controller, name, id, &res);
    out->error_code = res.error;
    out->error_message = res.message[0] ? sm_arena_str(&r->arena, res.message) : SM_STR_NULL;
}

int broker_handle_delete_topics(broker_req_t *r) {
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int32_t n = r->version >= 6 ? req->topics.n : req->topic_names.n;
    if (n < 0) n = 0;
    resp->responses.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(result_t));
    if (!resp->responses.v) return BROKER_CLOSE;
    resp->responses.n = n;
    for (int32_t i = 0; i < n; i++) {
        result_t *out = &resp->responses.v[i];
        out->error_message = SM_STR_NULL;
        if (r->version >= 6) {
            const proto_delete_topics_request_delete_topic_state_t *t = &req->topics.v[i];
            bool by_id = !sm_uuid_is_zero(&t->topic_id);
            if (by_id && t->name.len >= 0) {
                out->name = t->name;
                out->topic_id = t->topic_id;
                out->error_code = PROTO_ERR_INVALID_REQUEST;
                out->error_message = SM_STR_LIT("Give a topic name or a topic id, not both.");
                continue;
            }
            delete_one(r, t->name, by_id ? &t->topic_id : NULL, out);
        } else {
            delete_one(r, req->topic_names.v[i], NULL, out);
        }
    }
    return BROKER_RESPOND;
}
