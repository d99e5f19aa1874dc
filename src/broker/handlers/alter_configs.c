/*
 * AlterConfigs (the legacy call: the given set replaces every override of the
 * resource) and IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT per
 * key), for topics and for this broker. Changes are validated, then written
 * as ConfigRecords through the controller, all of a resource's changes or none;
 * they take effect at once (the controller's listener reconfigures the
 * partitions). Broker keys that cannot change at run time are refused, as by
 * Kafka, with INVALID_REQUEST.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/configs.h"
#include "broker/handlers/handlers.h"
#include "group/group_config.h"
#include "protocol/errors.h"

enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };

/* One requested change, before it becomes a meta_config_kv_t. */
typedef struct change {
    sm_str_t name;
    int8_t op;
    sm_str_t value; /* len < 0: null */
} change_t;

typedef struct outcome {
    int16_t error;
    char message[320];
} outcome_t;

static void fail(outcome_t *o, int16_t error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(outcome_t *o, int16_t error, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    o->error = error;
    vsnprintf(o->message, sizeof(o->message), fmt, ap);
    va_end(ap);
}

/* Steps *p over the next comma-separated item of a list (spaces trimmed);
 * false at the end of the list. Empty items are skipped. */
static bool next_item(const char **p, const char **item, size_t *len) {
    while (**p) {
        while (**p == ' ')
            (*p)++;
        const char *e = strchr(*p, ',');
        size_t l = e ? (size_t)(e - *p) : strlen(*p);
        *item = *p;
        *p = e ? e + 1 : *p + l;
        while (l && (*item)[l - 1] == ' ')
            l--;
        if (l) {
            *len = l;
            return true;
        }
    }
    return false;
}

static bool list_has(const char *list, const char *item, size_t len) {
    const char *x;
    size_t l;
    while (next_item(&list, &x, &l))
        if (l == len && memcmp(x, item, len) == 0) return true;
    return false;
}

static void list_add(char *out, size_t *n, const char *item, size_t len) {
    if (*n) out[(*n)++] = ',';
    memcpy(out + *n, item, len);
    *n += len;
    out[*n] = 0;
}

/*
 * APPEND/SUBTRACT: the list current with value's items added (those not yet
 * present) or removed, into an arena string.
 */
static sm_str_t list_edit(broker_req_t *r, const char *current, sm_str_t value, bool append) {
    size_t cap = strlen(current) + (size_t)(value.len > 0 ? value.len : 0) + 2;
    char *out = sm_arena_calloc(&r->arena, cap, 1);
    if (!out) return (sm_str_t){NULL, -1};
    char vbuf[1024];
    snprintf(vbuf, sizeof(vbuf), "%.*s", value.len > 0 ? (int)value.len : 0,
             value.ptr ? value.ptr : "");
    size_t n = 0;
    const char *p = current, *x;
    size_t l;
    while (next_item(&p, &x, &l))
        if (append || !list_has(vbuf, x, l)) list_add(out, &n, x, l);
    p = vbuf;
    while (append && next_item(&p, &x, &l))
        if (!list_has(out, x, l)) list_add(out, &n, x, l);
    return (sm_str_t){out, (int32_t)n};
}

static bool duplicate_names(const change_t *c, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = i + 1; j < n; j++)
            if (sm_str_eq(c[i].name, c[j].name)) return true;
    return false;
}

/*
 * Legacy AlterConfigs replaces a resource's whole set: every current override
 * (current) the request does not name is deleted. Appends those deletions to
 * kv (room for them is the caller's) and returns the new count.
 */
static int32_t delete_unnamed(broker_req_t *r, const sm_map_t *current, const change_t *c,
                              int32_t n, meta_config_kv_t *kv, int32_t nkv) {
    size_t it = 0;
    const void *key;
    size_t klen;
    while (sm_map_next(current, &it, &key, &klen, NULL)) {
        bool named = false;
        for (int32_t i = 0; i < n; i++)
            if (c[i].name.len == (int32_t)klen && memcmp(c[i].name.ptr, key, klen) == 0)
                named = true;
        if (!named)
            kv[nkv++] = (meta_config_kv_t){{sm_arena_strndup(&r->arena, key, klen), (int32_t)klen},
                                           {NULL, -1}};
    }
    return nkv;
}

static void alter_topic(broker_req_t *r, sm_str_t topic, const change_t *c, int32_t n, bool replace,
                        bool validate_only, outcome_t *o) {
    broker_t *b = r->b;
    /* Room for the changes plus, when replacing, a delete per existing override. */
    meta_image_rdlock(&b->image);
    const meta_topic_t *t = meta_image_topic(&b->image, topic);
    size_t existing = t ? sm_map_size(&t->configs) : 0;
    meta_config_kv_t *kv = sm_arena_calloc(&r->arena, (size_t)n + existing + 1, sizeof(*kv));
    int32_t nkv = 0;
    if (!t) {
        fail(o, PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION, "Topic '%.*s' does not exist.",
             (int)topic.len, topic.ptr);
        goto out;
    }
    if (!kv) {
        fail(o, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
        goto out;
    }
    const sm_config_t *eff = broker_configs_acquire(b);
    for (int32_t i = 0; i < n && !o->error; i++) {
        const meta_topic_config_def_t *d =
            c[i].name.len > 0 ? meta_topic_config_def(c[i].name.ptr, (size_t)c[i].name.len) : NULL;
        if (!d) {
            fail(o, PROTO_ERR_INVALID_CONFIG, "Unknown topic config name: %.*s",
                 c[i].name.len > 0 ? (int)c[i].name.len : 0, c[i].name.ptr ? c[i].name.ptr : "");
            break;
        }
        meta_config_kv_t *k = &kv[nkv++];
        k->name = c[i].name;
        switch (c[i].op) {
        case OP_SET:
            if (c[i].value.len < 0) {
                fail(o, PROTO_ERR_INVALID_CONFIG, "Null value not supported for topic config: %s",
                     d->name);
                break;
            }
            k->value = c[i].value;
            break;
        case OP_DELETE: k->value = (sm_str_t){NULL, -1}; break;
        case OP_APPEND:
        case OP_SUBTRACT: {
            if (d->type != META_CFG_LIST) {
                fail(o, PROTO_ERR_INVALID_CONFIG,
                     "Config value %s is not allowed for config key: %s",
                     c[i].op == OP_APPEND ? "append" : "subtract", d->name);
                break;
            }
            char cur[1024];
            int8_t src;
            broker_topic_config_value(eff, t, d, cur, sizeof(cur), &src);
            k->value = list_edit(r, cur, c[i].value, c[i].op == OP_APPEND);
            break;
        }
        default:
            fail(o, PROTO_ERR_INVALID_REQUEST, "Unknown config operation %d for %s", c[i].op,
                 d->name);
        }
    }
    broker_configs_release(b);
    if (!o->error && replace) nkv = delete_unnamed(r, &t->configs, c, n, kv, nkv);
out:
    meta_image_unlock(&b->image);
    if (o->error) return;
    meta_result_t res;
    meta_alter_topic_configs(&b->controller, topic, kv, nkv, validate_only, &res);
    if (res.error) fail(o, res.error, "%s", res.message);
}

/* Whether name is the id of another registered broker of the cluster. Clients
 * send a broker's configs to that broker, which checks the id (Kafka's rule); in
 * a cluster it relays them to the active controller without saying which broker
 * it is, so the controller accepts any registered broker's id. */
static bool other_broker(broker_t *b, sm_str_t name) {
    if (!b->cluster || name.len <= 0 || name.len > 10) return false;
    int64_t id = 0;
    for (int32_t i = 0; i < name.len; i++) {
        if (name.ptr[i] < '0' || name.ptr[i] > '9') return false;
        id = id * 10 + (name.ptr[i] - '0');
    }
    if (id > INT32_MAX) return false;
    meta_image_rdlock(&b->image);
    bool known = meta_image_broker(&b->image, (int32_t)id) != NULL;
    meta_image_unlock(&b->image);
    return known;
}

static void alter_broker(broker_req_t *r, sm_str_t name, const change_t *c, int32_t n, bool replace,
                         bool validate_only, outcome_t *o) {
    broker_t *b = r->b;
    char id[16];
    snprintf(id, sizeof(id), "%d", b->s.node_id);
    bool other = name.len != 0 && !sm_str_eq(name, sm_str_from(id)) && other_broker(b, name);
    if (name.len != 0 && !sm_str_eq(name, sm_str_from(id)) && !other) {
        fail(o, PROTO_ERR_INVALID_REQUEST,
             "Unexpected broker id, expected %s or empty string, but received %.*s", id,
             name.len > 0 ? (int)name.len : 0, name.ptr ? name.ptr : "");
        return;
    }
    meta_image_rdlock(&b->image);
    /* Another broker's own configs are not in this image: the legacy call's
     * replacement and APPEND / SUBTRACT start from none. */
    sm_map_t none;
    sm_map_init(&none);
    const sm_map_t *current = name.len == 0 ? &b->image.broker_default_configs
                              : other       ? &none
                                            : &b->image.broker_configs;
    size_t existing = sm_map_size(current);
    meta_config_kv_t *kv = sm_arena_calloc(&r->arena, (size_t)n + existing + 1, sizeof(*kv));
    int32_t nkv = 0;
    const sm_config_t *eff = broker_configs_acquire(b);
    sm_config_t *scratch = sm_config_dup(eff);
    if (!kv || !scratch) fail(o, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
    for (int32_t i = 0; i < n && !o->error; i++) {
        char key[256];
        /* A name holding NUL (or too long) is no key either server knows. */
        bool bad_name = c[i].name.len <= 0 || (size_t)c[i].name.len >= sizeof(key) ||
                        memchr(c[i].name.ptr, 0, (size_t)c[i].name.len);
        snprintf(key, sizeof(key), "%.*s", bad_name ? 0 : (int)c[i].name.len,
                 bad_name ? "" : c[i].name.ptr);
        const sm_config_key_t *def = sm_config_key(key);
        bool stored_only = !bad_name && sm_config_key_stored_only(key);
        if (bad_name || (!stored_only && (!def || !sm_config_key_dynamic(key)))) {
            fail(o, PROTO_ERR_INVALID_REQUEST, "Cannot update these configs dynamically: Set(%s)",
                 key);
            break;
        }
        if (sm_config_key_listener_only(key)) {
            fail(o, PROTO_ERR_INVALID_REQUEST,
                 "These security configs can be dynamically updated only per-listener using the "
                 "listener "
                 "prefix: [%s]",
                 key);
            break;
        }
        meta_config_kv_t *k = &kv[nkv++];
        k->name = c[i].name;
        sm_str_t v = c[i].value;
        if (c[i].op == OP_DELETE) {
            k->value = (sm_str_t){NULL, -1};
            continue;
        }
        if (c[i].op == OP_APPEND || c[i].op == OP_SUBTRACT) {
            if (def ? def->type != SM_CFG_LIST : !stored_only) {
                fail(o, PROTO_ERR_INVALID_CONFIG,
                     "Config value %s is not allowed for config key: %s",
                     c[i].op == OP_APPEND ? "append" : "subtract", key);
                break;
            }
            const char *cur = def ? sm_config_str(eff, key) : sm_map_get(current, key, strlen(key));
            v = list_edit(r, cur ? cur : "", v, c[i].op == OP_APPEND);
        } else if (c[i].op != OP_SET) {
            fail(o, PROTO_ERR_INVALID_REQUEST, "Unknown config operation %d for %s", c[i].op, key);
            break;
        }
        if (v.len < 0) {
            fail(o, PROTO_ERR_INVALID_CONFIG, "Null value not supported for config: %s", key);
            break;
        }
        char value[1024], err[300];
        snprintf(value, sizeof(value), "%.*s", (int)v.len, v.ptr ? v.ptr : "");
        if ((size_t)v.len >= sizeof(value) || memchr(v.ptr, 0, (size_t)v.len)) {
            fail(o, PROTO_ERR_INVALID_CONFIG, "Invalid value for configuration %s: %s", key,
                 (size_t)v.len >= sizeof(value) ? "too long" : "it holds a NUL byte");
            break;
        }
        /* Keys Samsa only stores are validated when it knows their type. */
        if ((def || !stored_only) &&
            sm_config_set(scratch, key, value, SM_CONFIG_DYNAMIC, err, sizeof(err))) {
            const char *why = strncmp(err, "config: ", 8) == 0 ? err + 8 : err;
            fail(o, PROTO_ERR_INVALID_CONFIG, "Invalid value %s for configuration %s", value, why);
            break;
        }
        k->value = v;
    }
    broker_configs_release(b);
    sm_config_free(scratch);
    if (!o->error && replace) nkv = delete_unnamed(r, current, c, n, kv, nkv);
    meta_image_unlock(&b->image);
    sm_map_free(&none);
    if (o->error) return;
    meta_result_t res;
    meta_alter_broker_configs(&b->controller, name, kv, nkv, validate_only, &res);
    if (res.error) fail(o, res.error, "%s", res.message);
}

/* A group's configs as they would be after the changes kv (a null value
 * deletes): what group_config_check_set reads. */
typedef struct group_set {
    broker_req_t *r;
    const sm_map_t *current;
    const meta_config_kv_t *kv;
    int32_t n;
} group_set_t;

static const char *group_set_value(void *arg, const char *name) {
    group_set_t *gs = arg;
    for (int32_t i = gs->n; i-- > 0;)
        if (sm_str_eq(gs->kv[i].name, sm_str_from(name))) {
            sm_str_t v = gs->kv[i].value;
            if (v.len < 0) return NULL;
            char *c = sm_arena_alloc(&gs->r->arena, (size_t)v.len + 1);
            if (!c) return NULL;
            memcpy(c, v.ptr, (size_t)v.len);
            c[v.len] = 0;
            return c;
        }
    return gs->current ? sm_map_get(gs->current, name, strlen(name)) : NULL;
}

/* GROUP (IncrementalAlterConfigs only, as in Kafka): validated against the
 * group config table and the broker's bounds (Kafka's GroupConfig.validate
 * on the group's configs after the change), stored as ConfigRecords. */
static void alter_group(broker_req_t *r, sm_str_t name, const change_t *c, int32_t n,
                        bool validate_only, outcome_t *o) {
    if (name.len <= 0) {
        fail(o, PROTO_ERR_INVALID_REQUEST, "Group name is empty.");
        return;
    }
    meta_config_kv_t *kv = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*kv));
    if (!kv) {
        fail(o, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
        return;
    }
    meta_image_rdlock(&r->b->image);
    const sm_map_t *current = meta_group_configs(&r->b->image, name);
    for (int32_t i = 0; i < n && !o->error; i++) {
        const group_config_def_t *d =
            c[i].name.len > 0 ? group_config_def(c[i].name.ptr, (size_t)c[i].name.len) : NULL;
        if (!d) {
            fail(o, PROTO_ERR_INVALID_CONFIG, "Unknown group config name: %.*s",
                 c[i].name.len > 100 ? 100 : (c[i].name.len > 0 ? (int)c[i].name.len : 0),
                 c[i].name.ptr ? c[i].name.ptr : "");
            break;
        }
        kv[i].name = c[i].name;
        sm_str_t v = c[i].value;
        if (c[i].op == OP_DELETE) {
            kv[i].value = (sm_str_t){NULL, -1};
            continue;
        }
        if (c[i].op == OP_APPEND || c[i].op == OP_SUBTRACT) {
            if (d->type != GROUP_CFG_LIST) {
                fail(o, PROTO_ERR_INVALID_CONFIG,
                     "Config value %s is not allowed for config key: %s",
                     c[i].op == OP_APPEND ? "append" : "subtract", d->name);
                break;
            }
            const char *cur = current ? sm_map_get(current, d->name, strlen(d->name)) : NULL;
            v = list_edit(r, cur ? cur : d->default_value, v, c[i].op == OP_APPEND);
        } else if (c[i].op != OP_SET) {
            fail(o, PROTO_ERR_INVALID_REQUEST, "Unknown config operation %d for %s", c[i].op,
                 d->name);
            break;
        }
        char err[400];
        if (v.len < 0) {
            fail(o, PROTO_ERR_INVALID_CONFIG, "Null value not supported for config: %s", d->name);
        } else if (!group_config_validate(d, r->b->cfg, v.ptr, (size_t)v.len, err, sizeof(err))) {
            fail(o, PROTO_ERR_INVALID_CONFIG, "%s", err);
        }
        kv[i].value = v;
    }
    group_set_t set = {r, current, kv, n};
    char err[400];
    if (!o->error && !group_config_check_set(r->b->cfg, group_set_value, &set, err, sizeof(err)))
        fail(o, PROTO_ERR_INVALID_CONFIG, "%s", err);
    meta_image_unlock(&r->b->image);
    if (o->error) return;
    meta_result_t res;
    meta_alter_group_configs(&r->b->controller, name, kv, n, validate_only, &res);
    if (res.error) fail(o, res.error, "%s", res.message);
}

static void alter_resource(broker_req_t *r, int8_t type, sm_str_t name, const change_t *c,
                           int32_t n, bool replace, bool validate_only, outcome_t *o) {
    o->error = 0;
    o->message[0] = 0;
    if (duplicate_names(c, n)) {
        fail(o, PROTO_ERR_INVALID_REQUEST, "Error due to duplicate config keys");
        return;
    }
    if (type == META_RESOURCE_TOPIC)
        alter_topic(r, name, c, n, replace, validate_only, o);
    else if (type == META_RESOURCE_BROKER)
        alter_broker(r, name, c, n, replace, validate_only, o);
    else if (type == META_RESOURCE_GROUP && !replace)
        alter_group(r, name, c, n, validate_only, o);
    else
        fail(o, PROTO_ERR_INVALID_REQUEST, "Unsupported resource type %d for altering configs",
             type);
}

/* Room for count (< 0: none) elements of size in the request's arena; *n
 * gets the element count. NULL when out of memory. */
static void *arena_array(broker_req_t *r, int32_t count, size_t size, int32_t *n) {
    *n = count > 0 ? count : 0;
    return sm_arena_calloc(&r->arena, (size_t)*n + 1, size);
}

/* Applies one resource's changes and writes its error fields; the caller
 * fills the rest of its answer (the two APIs' response types differ). */
static void answer_resource(broker_req_t *r, int8_t type, sm_str_t name, const change_t *c,
                            int32_t n, bool replace, bool validate_only, int16_t *error_code,
                            sm_str_t *error_message) {
    outcome_t o;
    alter_resource(r, type, name, c, n, replace, validate_only, &o);
    *error_code = o.error;
    *error_message = o.error ? sm_arena_str(&r->arena, o.message) : (sm_str_t){NULL, -1};
}

int broker_handle_incremental_alter_configs(broker_req_t *r) {
    proto_incremental_alter_configs_request_t *req = broker_body(r);
    proto_incremental_alter_configs_response_t *resp = r->resp;
    resp->responses.v =
        arena_array(r, req->resources.n, sizeof(*resp->responses.v), &resp->responses.n);
    if (!resp->responses.v) return BROKER_CLOSE;
    for (int32_t i = 0; i < resp->responses.n; i++) {
        const proto_incremental_alter_configs_request_alter_configs_resource_t *res =
            &req->resources.v[i];
        int32_t nc;
        change_t *c = arena_array(r, res->configs.n, sizeof(*c), &nc);
        if (!c) return BROKER_CLOSE;
        for (int32_t k = 0; k < nc; k++)
            c[k] = (change_t){res->configs.v[k].name, res->configs.v[k].config_operation,
                              res->configs.v[k].value};
        resp->responses.v[i].resource_type = res->resource_type;
        resp->responses.v[i].resource_name = res->resource_name;
        answer_resource(r, res->resource_type, res->resource_name, c, nc, false, req->validate_only,
                        &resp->responses.v[i].error_code, &resp->responses.v[i].error_message);
    }
    return BROKER_RESPOND;
}

int broker_handle_alter_configs(broker_req_t *r) {
    proto_alter_configs_request_t *req = broker_body(r);
    proto_alter_configs_response_t *resp = r->resp;
    resp->responses.v =
        arena_array(r, req->resources.n, sizeof(*resp->responses.v), &resp->responses.n);
    if (!resp->responses.v) return BROKER_CLOSE;
    for (int32_t i = 0; i < resp->responses.n; i++) {
        const proto_alter_configs_request_alter_configs_resource_t *res = &req->resources.v[i];
        int32_t nc;
        change_t *c = arena_array(r, res->configs.n, sizeof(*c), &nc);
        if (!c) return BROKER_CLOSE;
        /* The legacy call replaces the set: a null value removes the key. */
        for (int32_t k = 0; k < nc; k++) {
            sm_str_t v = res->configs.v[k].value;
            c[k] = (change_t){res->configs.v[k].name, v.len < 0 ? OP_DELETE : OP_SET, v};
        }
        resp->responses.v[i].resource_type = res->resource_type;
        resp->responses.v[i].resource_name = res->resource_name;
        answer_resource(r, res->resource_type, res->resource_name, c, nc, true, req->validate_only,
                        &resp->responses.v[i].error_code, &resp->responses.v[i].error_message);
    }
    return BROKER_RESPOND;
}
