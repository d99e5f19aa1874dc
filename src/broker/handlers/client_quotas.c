/*
 * DescribeClientQuotas and AlterClientQuotas (KIP-546): quotas of user,
 * client-id and ip entities, kept as ClientQuotaRecords in the metadata log
 * and in the image (meta_image_t.client_quotas). They are stored and reported
 * only: Samsa does not throttle clients yet.
 *
 * Validation as Kafka's: entity types user, client-id, ip (ip alone); keys
 * producer_byte_rate, consumer_byte_rate, request_percentage and
 * controller_mutation_rate for user / client-id entities,
 * connection_creation_rate for ip entities; byte rates and connection rates
 * are whole numbers.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

enum { MATCH_EXACT = 0, MATCH_DEFAULT = 1, MATCH_ANY = 2 };

typedef struct quota_key {
    const char *name;
    bool ip;    /* for ip entities (else user / client-id) */
    bool whole; /* a LONG or INT config in Kafka */
} quota_key_t;

static const quota_key_t quota_keys[] = {
    {"producer_byte_rate", false, true},      {"consumer_byte_rate", false, true},
    {"request_percentage", false, false},     {"controller_mutation_rate", false, false},
    {"connection_creation_rate", true, true},
};

static bool known_type(sm_str_t t) {
    return sm_str_eq(t, SM_STR_LIT("user")) || sm_str_eq(t, SM_STR_LIT("client-id")) ||
           sm_str_eq(t, SM_STR_LIT("ip"));
}

static void set_msg(broker_req_t *r, sm_str_t *out, const char *fmt, sm_str_t arg) {
    char msg[300];
    snprintf(msg, sizeof(msg), fmt, arg.len > 100 ? 100 : (arg.len > 0 ? (int)arg.len : 0),
             arg.ptr ? arg.ptr : "");
    *out = sm_arena_str(&r->arena, msg);
}

/* Whether one stored entity (parts) matches the request's components. */
static bool entity_matches(const meta_quota_part_t *parts, int n,
                           const proto_describe_client_quotas_request_t *req) {
    int32_t nc = req->components.n > 0 ? req->components.n : 0;
    if (req->strict && nc != n) return false;
    for (int32_t i = 0; i < nc; i++) {
        const proto_describe_client_quotas_request_component_data_t *c = &req->components.v[i];
        const meta_quota_part_t *p = NULL;
        for (int k = 0; k < n && !p; k++)
            if (sm_str_eq(parts[k].type, c->entity_type)) p = &parts[k];
        if (!p) return false;
        if (c->match_type == MATCH_EXACT && (p->name.len < 0 || !sm_str_eq(p->name, c->match)))
            return false;
        if (c->match_type == MATCH_DEFAULT && p->name.len >= 0) return false;
    }
    return true;
}

int broker_handle_describe_client_quotas(broker_req_t *r) {
    proto_describe_client_quotas_request_t *req = broker_body(r);
    proto_describe_client_quotas_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_NONE;
    resp->entries = (proto_describe_client_quotas_response_entry_data_array_t){0, NULL};
    bool has_ip = false, has_other = false;
    for (int32_t i = 0; i < req->components.n; i++) {
        const proto_describe_client_quotas_request_component_data_t *c = &req->components.v[i];
        if (!known_type(c->entity_type)) {
            resp->error_code = PROTO_ERR_INVALID_REQUEST;
            set_msg(r, &resp->error_message, "Custom entity type '%.*s' not supported",
                    c->entity_type);
            return BROKER_RESPOND;
        }
        for (int32_t k = 0; k < i; k++)
            if (sm_str_eq(req->components.v[k].entity_type, c->entity_type)) {
                resp->error_code = PROTO_ERR_INVALID_REQUEST;
                set_msg(r, &resp->error_message, "Duplicate filter component entity type: %.*s",
                        c->entity_type);
                return BROKER_RESPOND;
            }
        if (c->match_type < MATCH_EXACT || c->match_type > MATCH_ANY ||
            (c->match_type == MATCH_EXACT && c->match.len < 0)) {
            resp->error_code = PROTO_ERR_INVALID_REQUEST;
            set_msg(r, &resp->error_message, "Invalid match type for entity type %.*s",
                    c->entity_type);
            return BROKER_RESPOND;
        }
        if (sm_str_eq(c->entity_type, SM_STR_LIT("ip")))
            has_ip = true;
        else
            has_other = true;
    }
    if (has_ip && has_other) {
        resp->error_code = PROTO_ERR_INVALID_REQUEST;
        resp->error_message =
            SM_STR_LIT("Invalid entity filter component combination, IP filter component should "
                       "not be used with user or clientId filter component.");
        return BROKER_RESPOND;
    }
    meta_image_t *img = &r->b->image;
    meta_image_rdlock(img);
    size_t total = sm_map_size(&img->client_quotas), it = 0;
    proto_describe_client_quotas_response_entry_data_t *out =
        sm_arena_calloc(&r->arena, total + 1, sizeof(*out));
    int32_t n = 0;
    const void *key;
    size_t klen;
    void *v;
    while (out && sm_map_next(&img->client_quotas, &it, &key, &klen, &v)) {
        meta_quota_part_t parts[META_QUOTA_MAX_PARTS];
        int np = meta_quota_entity_parts(key, klen, parts);
        if (!entity_matches(parts, np, req)) continue;
        proto_describe_client_quotas_response_entry_data_t *e = &out[n++];
        e->entity.v = sm_arena_calloc(&r->arena, (size_t)np, sizeof(*e->entity.v));
        const sm_map_t *vals = v;
        e->values.v = sm_arena_calloc(&r->arena, sm_map_size(vals) + 1, sizeof(*e->values.v));
        if (!e->entity.v || !e->values.v) {
            out = NULL;
            break;
        }
        e->entity.n = np;
        for (int k = 0; k < np; k++) {
            e->entity.v[k].entity_type = (sm_str_t){
                sm_arena_strndup(&r->arena, parts[k].type.ptr, (size_t)parts[k].type.len),
                parts[k].type.len};
            e->entity.v[k].entity_name =
                parts[k].name.len < 0 ? SM_STR_NULL
                                      : (sm_str_t){sm_arena_strndup(&r->arena, parts[k].name.ptr,
                                                                    (size_t)parts[k].name.len),
                                                   parts[k].name.len};
        }
        size_t vit = 0;
        const void *qk;
        size_t qkl;
        void *qv;
        int32_t nv = 0;
        while (sm_map_next(vals, &vit, &qk, &qkl, &qv)) {
            e->values.v[nv].key = (sm_str_t){sm_arena_strndup(&r->arena, qk, qkl), (int32_t)qkl};
            e->values.v[nv].value = *(const double *)qv;
            nv++;
        }
        e->values.n = nv;
    }
    meta_image_unlock(img);
    if (!out) return BROKER_CLOSE;
    resp->entries = (proto_describe_client_quotas_response_entry_data_array_t){n, out};
    return BROKER_RESPOND;
}

/* Validates one AlterClientQuotas entry; returns a Kafka error and its message. */
static int16_t check_entry(broker_req_t *r, const proto_alter_client_quotas_request_entry_data_t *e,
                           meta_quota_part_t *parts, sm_str_t *msg) {
    int32_t n = e->entity.n > 0 ? e->entity.n : 0;
    bool ip = false, other = false;
    if (n == 0 || n > META_QUOTA_MAX_PARTS) {
        *msg = SM_STR_LIT("Invalid empty client quota entity");
        return PROTO_ERR_INVALID_REQUEST;
    }
    for (int32_t i = 0; i < n; i++) {
        sm_str_t t = e->entity.v[i].entity_type;
        if (!known_type(t)) {
            set_msg(r, msg, "Unhandled client quota entity type: %.*s", t);
            return PROTO_ERR_INVALID_REQUEST;
        }
        for (int32_t k = 0; k < i; k++)
            if (sm_str_eq(parts[k].type, t)) {
                set_msg(r, msg, "Duplicate entity type: %.*s", t);
                return PROTO_ERR_INVALID_REQUEST;
            }
        if (sm_str_eq(t, SM_STR_LIT("ip")))
            ip = true;
        else
            other = true;
        parts[i] = (meta_quota_part_t){t, e->entity.v[i].entity_name};
    }
    if (ip && other) {
        *msg = SM_STR_LIT(
            "Invalid quota entity combination, IP entity should not be combined with User or "
            "ClientId entities.");
        return PROTO_ERR_INVALID_REQUEST;
    }
    for (int32_t i = 0; i < e->ops.n; i++) {
        const proto_alter_client_quotas_request_op_data_t *op = &e->ops.v[i];
        const quota_key_t *qk = NULL;
        for (size_t k = 0; k < sizeof(quota_keys) / sizeof(quota_keys[0]) && !qk; k++)
            if (sm_str_eq(op->key, sm_str_from(quota_keys[k].name)) && quota_keys[k].ip == ip)
                qk = &quota_keys[k];
        if (!qk) {
            set_msg(r, msg, "Unknown quota key: %.*s", op->key);
            return PROTO_ERR_INVALID_REQUEST;
        }
        if (!op->remove && (isnan(op->value) || isinf(op->value) ||
                            (qk->whole && op->value != floor(op->value)))) {
            set_msg(r, msg, "%.*s cannot be a fractional value.", op->key);
            return PROTO_ERR_INVALID_REQUEST;
        }
        for (int32_t k = 0; k < i; k++)
            if (sm_str_eq(e->ops.v[k].key, op->key)) {
                set_msg(r, msg, "Duplicate quota key: %.*s", op->key);
                return PROTO_ERR_INVALID_REQUEST;
            }
    }
    return PROTO_ERR_NONE;
}

int broker_handle_alter_client_quotas(broker_req_t *r) {
    proto_alter_client_quotas_request_t *req = broker_body(r);
    proto_alter_client_quotas_response_t *resp = r->resp;
    int32_t n = req->entries.n > 0 ? req->entries.n : 0;
    resp->entries.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*resp->entries.v));
    if (!resp->entries.v) return BROKER_CLOSE;
    resp->entries.n = n;
    for (int32_t i = 0; i < n; i++) {
        const proto_alter_client_quotas_request_entry_data_t *e = &req->entries.v[i];
        proto_alter_client_quotas_response_entry_data_t *o = &resp->entries.v[i];
        int32_t ne = e->entity.n > 0 ? e->entity.n : 0;
        o->entity.v = sm_arena_calloc(&r->arena, (size_t)ne + 1, sizeof(*o->entity.v));
        if (!o->entity.v) return BROKER_CLOSE;
        o->entity.n = ne;
        for (int32_t k = 0; k < ne; k++) {
            o->entity.v[k].entity_type = e->entity.v[k].entity_type;
            o->entity.v[k].entity_name = e->entity.v[k].entity_name;
        }
        meta_quota_part_t parts[META_QUOTA_MAX_PARTS];
        o->error_message = SM_STR_NULL;
        o->error_code = check_entry(r, e, parts, &o->error_message);
        if (o->error_code || req->validate_only) continue;
        int32_t nops = e->ops.n > 0 ? e->ops.n : 0;
        meta_quota_op_t *ops = sm_arena_calloc(&r->arena, (size_t)nops + 1, sizeof(*ops));
        if (!ops) return BROKER_CLOSE;
        for (int32_t k = 0; k < nops; k++)
            ops[k] = (meta_quota_op_t){e->ops.v[k].key, e->ops.v[k].value, e->ops.v[k].remove};
        meta_result_t res;
        meta_alter_client_quotas(&r->b->controller, parts, ne, ops, nops, &res);
        o->error_code = res.error;
        if (res.error) o->error_message = sm_arena_str(&r->arena, res.message);
    }
    return BROKER_RESPOND;
}
