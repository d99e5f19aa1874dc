/*
 * DescribeConfigs: the configs of topics (each topic config with its
 * effective value and where it comes from: the topic's override, a dynamic or
 * static broker setting it inherits, or Kafka's default) and of this broker
 * (every key of server.properties Samsa knows; read-only unless it can be
 * changed at run time, or stored only: see sm_config_key_stored_only), and of
 * groups (KIP-848's group configs: dynamic values or defaults). Synonyms (v1+)
 * list the broker keys a config inherits from; documentation (v3+) one line
 * per key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/configs.h"
#include "broker/handlers/handlers.h"
#include "group/group_config.h"
#include "protocol/errors.h"

typedef proto_describe_configs_request_t req_t;
typedef proto_describe_configs_response_t resp_t;
typedef proto_describe_configs_response_describe_configs_result_t result_t;
typedef proto_describe_configs_response_describe_configs_resource_result_t entry_t;
typedef proto_describe_configs_response_describe_configs_synonym_t synonym_t;

/* DescribeConfigs ConfigType values (Kafka's). */
enum {
    TYPE_BOOLEAN = 1,
    TYPE_STRING = 2,
    TYPE_INT = 3,
    TYPE_LONG = 5,
    TYPE_DOUBLE = 6,
    TYPE_LIST = 7,
    TYPE_CLASS = 8,
    TYPE_PASSWORD = 9
};

static int8_t topic_type(meta_cfg_type_t t) {
    switch (t) {
    case META_CFG_BOOL: return TYPE_BOOLEAN;
    case META_CFG_INT: return TYPE_INT;
    case META_CFG_LONG: return TYPE_LONG;
    case META_CFG_DOUBLE: return TYPE_DOUBLE;
    case META_CFG_LIST: return TYPE_LIST;
    case META_CFG_CLASS: return TYPE_CLASS;
    default: return TYPE_STRING;
    }
}

static int8_t broker_type(sm_config_type_t t) {
    switch (t) {
    case SM_CFG_BOOL: return TYPE_BOOLEAN;
    case SM_CFG_INT: return TYPE_INT;
    case SM_CFG_LONG: return TYPE_LONG;
    case SM_CFG_DOUBLE: return TYPE_DOUBLE;
    case SM_CFG_LIST: return TYPE_LIST;
    default: return TYPE_STRING;
    }
}

/* True when the request asks for this key (null key list: every key). */
static bool wanted(const proto_describe_configs_request_describe_configs_resource_t *res,
                   const char *name) {
    if (res->configuration_keys.n <= 0) return true; /* null or empty: every key */
    for (int32_t i = 0; i < res->configuration_keys.n; i++)
        if (sm_str_eq(res->configuration_keys.v[i], sm_str_from(name))) return true;
    return false;
}

static sm_str_t astr(broker_req_t *r, const char *s) {
    return s ? sm_arena_str(&r->arena, s) : (sm_str_t){NULL, -1};
}

static void add_synonym(broker_req_t *r, entry_t *e, const char *name, const char *value,
                        int8_t source) {
    synonym_t *s = &e->synonyms.v[e->synonyms.n++];
    s->name = sm_str_from(name);
    s->value = astr(r, value);
    s->source = source;
}

static void fill_entry(broker_req_t *r, entry_t *e, const char *name, const char *value,
                       int8_t source, bool read_only, int8_t type, const char *doc, bool docs) {
    e->name = sm_str_from(name);
    e->value = astr(r, value);
    e->read_only = read_only;
    e->config_source = source;
    e->is_sensitive = false;
    e->config_type = type;
    e->documentation = docs && doc ? sm_str_from(doc) : (sm_str_t){NULL, -1};
    e->synonyms.n = 0;
    e->synonyms.v = NULL;
}

static void describe_topic(broker_req_t *r, const req_t *req,
                           const proto_describe_configs_request_describe_configs_resource_t *res,
                           result_t *out, const sm_config_t *eff) {
    broker_t *b = r->b;
    if (res->resource_name.len <= 0) {
        out->error_code = PROTO_ERR_INVALID_TOPIC_EXCEPTION;
        out->error_message = sm_arena_str(&r->arena, "Topic name is empty.");
        return;
    }
    const meta_topic_t *t = meta_image_topic(&b->image, res->resource_name);
    if (!t) {
        out->error_code = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        char msg[400];
        snprintf(msg, sizeof(msg), "Topic '%.*s' does not exist.", (int)res->resource_name.len,
                 res->resource_name.ptr);
        out->error_message = sm_arena_str(&r->arena, msg);
        return;
    }
    out->configs.v = sm_arena_calloc(&r->arena, meta_topic_configs_count, sizeof(entry_t));
    out->configs.n = 0;
    if (!out->configs.v) return;
    for (size_t i = 0; i < meta_topic_configs_count; i++) {
        const meta_topic_config_def_t *d = &meta_topic_configs[i];
        if (!wanted(res, d->name)) continue;
        char value[256];
        int8_t source;
        broker_topic_config_value(eff, t, d, value, sizeof(value), &source);
        entry_t *e = &out->configs.v[out->configs.n++];
        fill_entry(r, e, d->name, value, source, false, topic_type(d->type), d->doc,
                   req->include_documentation);
        if (!req->include_synonyms || r->version < 1) continue;
        const char *syn[3];
        int nsyn = broker_topic_config_synonyms(d, syn);
        e->synonyms.v = sm_arena_calloc(&r->arena, (size_t)nsyn + 2, sizeof(synonym_t));
        if (!e->synonyms.v) continue;
        /* As Kafka lists them: the override, the broker keys set dynamically
         * or statically, and, for a key the topic does not override, the
         * default of the broker key it inherits (none for segment.ms and
         * segment.jitter.ms, whose broker defaults are in hours). */
        if (source == BROKER_CFG_SRC_TOPIC) add_synonym(r, e, d->name, value, BROKER_CFG_SRC_TOPIC);
        bool defaulted = source == BROKER_CFG_SRC_TOPIC || strcmp(d->name, "segment.ms") == 0 ||
                         strcmp(d->name, "segment.jitter.ms") == 0;
        for (int k = 0; k < nsyn; k++) {
            const sm_config_key_t *key = sm_config_key(syn[k]);
            if (key && sm_config_is_set(eff, syn[k])) {
                add_synonym(r, e, syn[k], sm_config_str(eff, syn[k]),
                            broker_config_source(eff, syn[k]));
            } else if (!defaulted && (key ? key->default_value != NULL : nsyn == 1)) {
                /* Broker keys Samsa does not read (log.cleaner.*) default to the topic's default.
                 */
                add_synonym(r, e, syn[k], key ? key->default_value : d->default_value,
                            BROKER_CFG_SRC_DEFAULT);
                defaulted = true;
            }
        }
    }
}

#define STORED_ONLY_DOC                                                                            \
    "Kafka changes it at run time; Samsa stores and reports it but does not act on it."

/*
 * The dynamic settings Samsa only stores whose keys are not in its table
 * (ssl.*, sasl.*, listener.name.*, ...), from the image (the caller holds its
 * lock): set dynamically, never read-only; secrets are described with a null
 * value and is_sensitive, as Kafka describes PASSWORD configs.
 */
static void
describe_stored_only(broker_req_t *r, const req_t *req,
                     const proto_describe_configs_request_describe_configs_resource_t *res,
                     result_t *out, bool defaults_only) {
    const sm_map_t *m =
        defaults_only ? &r->b->image.broker_default_configs : &r->b->image.broker_configs;
    int8_t source =
        defaults_only ? BROKER_CFG_SRC_DYNAMIC_DEFAULT_BROKER : BROKER_CFG_SRC_DYNAMIC_BROKER;
    entry_t *more =
        sm_arena_calloc(&r->arena, (size_t)out->configs.n + sm_map_size(m) + 1, sizeof(entry_t));
    if (!more) return;
    if (out->configs.n) memcpy(more, out->configs.v, sizeof(entry_t) * (size_t)out->configs.n);
    out->configs.v = more;
    size_t it = 0;
    const void *k;
    size_t klen;
    void *v;
    while (sm_map_next(m, &it, &k, &klen, &v)) {
        char *name = sm_arena_strndup(&r->arena, k, klen);
        if (!name || sm_config_key(name) || !sm_config_key_stored_only(name) || !wanted(res, name))
            continue;
        bool secret = sm_config_key_sensitive(name);
        entry_t *e = &out->configs.v[out->configs.n++];
        fill_entry(r, e, name, secret ? NULL : v, source, false,
                   secret ? TYPE_PASSWORD : TYPE_STRING, STORED_ONLY_DOC,
                   req->include_documentation);
        e->is_sensitive = secret;
        if (!req->include_synonyms || r->version < 1) continue;
        e->synonyms.v = sm_arena_calloc(&r->arena, 1, sizeof(synonym_t));
        if (e->synonyms.v) add_synonym(r, e, name, secret ? NULL : v, source);
    }
}

static void describe_broker(broker_req_t *r, const req_t *req,
                            const proto_describe_configs_request_describe_configs_resource_t *res,
                            result_t *out, const sm_config_t *eff) {
    broker_t *b = r->b;
    char id[16];
    snprintf(id, sizeof(id), "%d", b->s.node_id);
    bool defaults_only = res->resource_name.len == 0;
    if (!defaults_only && !sm_str_eq(res->resource_name, sm_str_from(id))) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "Unexpected broker id, expected %s or empty string, but received %.*s", id,
                 (int)res->resource_name.len, res->resource_name.ptr);
        out->error_code = PROTO_ERR_INVALID_REQUEST;
        out->error_message = sm_arena_str(&r->arena, msg);
        return;
    }
    out->configs.v = sm_arena_calloc(&r->arena, sm_config_keys_count, sizeof(entry_t));
    out->configs.n = 0;
    if (!out->configs.v) return;
    for (size_t i = 0; i < sm_config_keys_count; i++) {
        const sm_config_key_t *k = &sm_config_keys[i];
        if (!wanted(res, k->name)) continue;
        int8_t source = broker_config_source(eff, k->name);
        const char *value = sm_config_str(eff, k->name);
        if (strcmp(k->name, "broker.id") == 0 && !value) {
            /* Kafka reports node.id as broker.id too. */
            value = id;
            source = broker_config_source(eff, "node.id");
        }
        if (defaults_only && source != BROKER_CFG_SRC_DYNAMIC_DEFAULT_BROKER) continue;
        entry_t *e = &out->configs.v[out->configs.n++];
        bool stored_only = sm_config_key_stored_only(k->name);
        fill_entry(r, e, k->name, value, source, !sm_config_key_dynamic(k->name) && !stored_only,
                   broker_type(k->type), stored_only ? STORED_ONLY_DOC : k->doc,
                   req->include_documentation);
        if (!req->include_synonyms || r->version < 1) continue;
        e->synonyms.v = sm_arena_calloc(&r->arena, 2, sizeof(synonym_t));
        if (!e->synonyms.v) continue;
        if (source != BROKER_CFG_SRC_DEFAULT) add_synonym(r, e, k->name, value, source);
        /* node.id has no default in Kafka (Samsa's 1 is a convenience). */
        if (k->default_value && strcmp(k->name, "node.id") != 0)
            add_synonym(r, e, k->name, k->default_value, BROKER_CFG_SRC_DEFAULT);
    }
    describe_stored_only(r, req, res, out, defaults_only);
}

enum { SRC_DYNAMIC_GROUP = 8 };

static int8_t group_type(group_cfg_type_t t) {
    switch (t) {
    case GROUP_CFG_INT: return TYPE_INT;
    case GROUP_CFG_BOOL: return TYPE_BOOLEAN;
    case GROUP_CFG_LIST: return TYPE_LIST;
    default: return TYPE_STRING;
    }
}

/* GROUP (KIP-848): every group config with its dynamic value or default; the
 * group need not exist. Caller holds the image lock. */
static void describe_group(broker_req_t *r, const req_t *req,
                           const proto_describe_configs_request_describe_configs_resource_t *res,
                           result_t *out) {
    if (res->resource_name.len <= 0) {
        out->error_code = PROTO_ERR_INVALID_REQUEST;
        out->error_message = sm_arena_str(&r->arena, "Group name is empty.");
        return;
    }
    const sm_map_t *dyn = meta_group_configs(&r->b->image, res->resource_name);
    out->configs.v = sm_arena_calloc(&r->arena, group_configs_count, sizeof(entry_t));
    if (!out->configs.v) return;
    for (size_t i = 0; i < group_configs_count; i++) {
        const group_config_def_t *d = &group_configs[i];
        if (!wanted(res, d->name)) continue;
        const char *set = dyn ? sm_map_get(dyn, d->name, strlen(d->name)) : NULL;
        int8_t source = set ? SRC_DYNAMIC_GROUP : BROKER_CFG_SRC_DEFAULT;
        entry_t *e = &out->configs.v[out->configs.n++];
        const char *dflt = group_config_default(d, r->b->cfg);
        fill_entry(r, e, d->name, set ? set : dflt, source, false, group_type(d->type), d->doc,
                   req->include_documentation);
        if (!req->include_synonyms || r->version < 1) continue;
        e->synonyms.v = sm_arena_calloc(&r->arena, 2, sizeof(synonym_t));
        if (!e->synonyms.v) continue;
        if (set) add_synonym(r, e, d->name, set, SRC_DYNAMIC_GROUP);
        add_synonym(r, e, d->synonym, dflt, BROKER_CFG_SRC_DEFAULT);
    }
}

/* BROKER_LOGGER: Samsa's log modules, each at the broker's level. */
static void describe_loggers(broker_req_t *r,
                             const proto_describe_configs_request_describe_configs_resource_t *res,
                             result_t *out) {
    static const char *const modules[] = {"broker", "config", "controller", "fetch",
                                          "group",  "net",    "server",     "storage"};
    static const char *const levels[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char id[16];
    snprintf(id, sizeof(id), "%d", r->b->s.node_id);
    if (!sm_str_eq(res->resource_name, sm_str_from(id))) {
        out->error_code = PROTO_ERR_INVALID_REQUEST;
        out->error_message = sm_arena_str(&r->arena, "Unexpected broker id for BROKER_LOGGER.");
        return;
    }
    size_t n = sizeof(modules) / sizeof(modules[0]);
    out->configs.v = sm_arena_calloc(&r->arena, n, sizeof(entry_t));
    if (!out->configs.v) return;
    int lvl = sm_log_min_level < 0 ? 0 : sm_log_min_level > 3 ? 3 : sm_log_min_level;
    for (size_t i = 0; i < n; i++) {
        if (!wanted(res, modules[i])) continue;
        fill_entry(r, &out->configs.v[out->configs.n++], modules[i], levels[lvl],
                   6 /* DYNAMIC_BROKER_LOGGER */, true, TYPE_STRING, NULL, false);
    }
}

static bool known_resource_type(int8_t t) {
    return t == META_RESOURCE_TOPIC || t == META_RESOURCE_BROKER || t == 8 /* BROKER_LOGGER */ ||
           t == META_RESOURCE_GROUP;
}

int broker_handle_describe_configs(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int32_t n = req->resources.n > 0 ? req->resources.n : 0;
    resp->results.v = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(result_t));
    if (!resp->results.v) return BROKER_CLOSE;
    resp->results.n = n;
    /* Lock order: image, then the effective config (as the config listener). */
    meta_image_rdlock(&b->image);
    const sm_config_t *eff = broker_configs_acquire(b);
    /* One resource of an unknown type fails the whole request, as in Kafka. */
    bool bad_type = false;
    for (int32_t i = 0; i < n; i++)
        bad_type |= !known_resource_type(req->resources.v[i].resource_type);
    for (int32_t i = 0; i < n; i++) {
        const proto_describe_configs_request_describe_configs_resource_t *res =
            &req->resources.v[i];
        result_t *out = &resp->results.v[i];
        out->error_message = (sm_str_t){"", 0}; /* Kafka: empty, not null, on success */
        out->resource_type = res->resource_type;
        out->resource_name = res->resource_name;
        out->configs.n = 0;
        if (bad_type) {
            out->error_code = PROTO_ERR_INVALID_REQUEST;
            out->error_message =
                sm_arena_str(&r->arena, "Unsupported resource type in DescribeConfigs.");
        } else if (res->resource_type == 8) {
            describe_loggers(r, res, out);
        } else if (res->resource_type == META_RESOURCE_TOPIC) {
            describe_topic(r, req, res, out, eff);
        } else if (res->resource_type == META_RESOURCE_BROKER) {
            describe_broker(r, req, res, out, eff);
        } else if (res->resource_type == META_RESOURCE_GROUP) {
            describe_group(r, req, res, out);
        } else {
            out->error_code = PROTO_ERR_INVALID_REQUEST;
            out->error_message =
                sm_arena_str(&r->arena, "Unsupported resource type for DescribeConfigs.");
        }
    }
    broker_configs_release(b);
    meta_image_unlock(&b->image);
    return BROKER_RESPOND;
}
