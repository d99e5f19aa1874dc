/*
 * DescribeConfigs and IncrementalAlterConfigs for the admin commands (see
 * adm_configs.h).
 */
#include "cli/adm_configs.h"

#include <string.h>

#include "cli/cli.h"
#include "cli/out.h"

const char *adm_config_source_name(int8_t source) {
    switch (source) {
    case 1: return "DYNAMIC_TOPIC_CONFIG";
    case 2: return "DYNAMIC_BROKER_CONFIG";
    case 3: return "DYNAMIC_DEFAULT_BROKER_CONFIG";
    case 4: return "STATIC_BROKER_CONFIG";
    case 5: return "DEFAULT_CONFIG";
    case 6: return "DYNAMIC_BROKER_LOGGER_CONFIG";
    case 7: return "CLIENT_METRICS_CONFIG";
    case 8: return "GROUP_CONFIG";
    default: return "UNKNOWN";
    }
}

int adm_describe_configs(kc_client_t *kc, sm_arena_t *a, int8_t type, const char *const *names,
                         size_t n, proto_describe_configs_response_t **out) {
    proto_describe_configs_request_t req;
    proto_describe_configs_request_init(&req);
    req.resources.n = (int32_t)n;
    req.resources.v = sm_arena_calloc(a, n + 1, sizeof(*req.resources.v));
    proto_describe_configs_response_t *resp = sm_arena_alloc(a, sizeof(*resp));
    if (!req.resources.v || !resp) return SM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        req.resources.v[i].resource_type = type;
        req.resources.v[i].resource_name = sm_arena_str(a, names[i]);
        req.resources.v[i].configuration_keys.n = -1;
    }
    req.include_synonyms = false;
    int rc = kc_call(kc, -1, PROTO_DESCRIBE_CONFIGS_REQUEST_API_KEY, 4, &req, resp, a, NULL);
    if (rc != SM_OK) return rc;
    *out = resp;
    return SM_OK;
}

const adm_config_result_t *adm_config_result(const proto_describe_configs_response_t *resp,
                                             const char *name) {
    for (int32_t i = 0; i < resp->results.n; i++)
        if (sm_str_eq(resp->results.v[i].resource_name, sm_str_from(name)))
            return &resp->results.v[i];
    return NULL;
}

int adm_config_ops_parse(const adm_list_t *items, int8_t op, const char *flag, adm_config_op_t *ops,
                         size_t *nops) {
    for (size_t i = 0; i < items->n; i++) {
        char *item = (char *)items->v[i];
        adm_config_op_t *o = &ops[(*nops)++];
        o->op = op;
        o->key = item;
        o->value = NULL;
        if (op == ADM_OP_DELETE) {
            if (!*item || strchr(item, '=')) {
                cli_error("%s: '%s' is not a config name", flag, item);
                return CLI_USAGE;
            }
            continue;
        }
        char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            cli_error("%s: '%s' is not key=value", flag, item);
            return CLI_USAGE;
        }
        *eq = '\0';
        char *v = eq + 1;
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '[' && v[vl - 1] == ']') {
            v[vl - 1] = '\0';
            v++;
        }
        o->value = v;
    }
    return CLI_OK;
}

int adm_alter_configs(adm_cmd_t *m, int8_t type, const char *name, const adm_config_op_t *ops,
                      size_t nops, const char *what) {
    sm_arena_t *a = &m->a;
    proto_incremental_alter_configs_request_t req;
    proto_incremental_alter_configs_request_init(&req);
    proto_incremental_alter_configs_request_alter_configs_resource_t res;
    memset(&res, 0, sizeof(res));
    res.resource_type = type;
    res.resource_name = sm_arena_str(a, name);
    res.configs.n = (int32_t)nops;
    res.configs.v = sm_arena_calloc(a, nops ? nops : 1, sizeof(*res.configs.v));
    if (!res.configs.v) return CLI_FAIL;
    for (size_t i = 0; i < nops; i++) {
        res.configs.v[i].name = sm_arena_str(a, ops[i].key);
        res.configs.v[i].config_operation = ops[i].op;
        res.configs.v[i].value = ops[i].value ? sm_arena_str(a, ops[i].value) : SM_STR_NULL;
    }
    req.resources.n = 1;
    req.resources.v = &res;
    proto_incremental_alter_configs_response_t resp;
    int rc = kc_call(&m->kc, -1, PROTO_INCREMENTAL_ALTER_CONFIGS_REQUEST_API_KEY, 1, &req, &resp, a,
                     NULL);
    bool one = rc == SM_OK && resp.responses.n == 1;
    return adm_check_one(m, rc, what, "IncrementalAlterConfigs", rc == SM_OK ? resp.responses.n : 1,
                         one ? resp.responses.v[0].error_code : 0,
                         one ? resp.responses.v[0].error_message : SM_STR_NULL);
}
