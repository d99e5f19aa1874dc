/*
 * samsa configs: describe and alter topic and broker configs, in the manner
 * of Kafka's kafka-configs.sh (--entity-type, --entity-name, --add-config,
 * --delete-config; KIP-339's --append-config and --subtract-config for list
 * values). Alterations use IncrementalAlterConfigs only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/adm_configs.h"
#include "cli/cli.h"
#include "cli/out.h"

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

/* The resource named by --entity-type, --entity-name and --entity-default. */
typedef struct entity {
    int8_t type;
    const char *kind; /* "topic" or "broker", for messages */
    const char *name; /* NULL: every entity of the type; "": broker default */
} entity_t;

static int parse_entity(const char *type, const char *name, bool def, entity_t *e) {
    if (!type) {
        cli_error("missing required option --entity-type");
        return CLI_USAGE;
    }
    if (strcmp(type, "topics") == 0 || strcmp(type, "topic") == 0) {
        e->type = ADM_RES_TOPIC;
        e->kind = "topic";
    } else if (strcmp(type, "brokers") == 0 || strcmp(type, "broker") == 0) {
        e->type = ADM_RES_BROKER;
        e->kind = "broker";
    } else {
        cli_error("--entity-type: '%s' is not one of topics, brokers", type);
        return CLI_USAGE;
    }
    if (def && e->type != ADM_RES_BROKER) {
        cli_error("--entity-default: only for --entity-type brokers");
        return CLI_USAGE;
    }
    if (def && name) {
        cli_error("give only one of --entity-name, --entity-default");
        return CLI_USAGE;
    }
    if (e->type == ADM_RES_BROKER && name) {
        char *end;
        long id = strtol(name, &end, 10);
        if (!*name || *end || id < 0 || id > INT32_MAX) {
            cli_error("--entity-name: '%s' is not a broker id", name);
            return CLI_USAGE;
        }
    }
    e->name = def ? "" : name;
    return CLI_OK;
}

static void entity_what(const entity_t *e, const char *name, char *buf, size_t cap) {
    if (!*name)
        snprintf(buf, cap, "default broker config");
    else
        snprintf(buf, cap, "%s '%s'", e->kind, name);
}

/* What describe shows without --all: the overrides set at that level. */
static bool shown(const entity_t *e, const char *name, const adm_config_entry_t *c, bool all) {
    if (all) return true;
    if (e->type == ADM_RES_TOPIC) return c->config_source == ADM_SRC_DYNAMIC_TOPIC;
    return c->config_source == (*name ? ADM_SRC_DYNAMIC_BROKER : ADM_SRC_DYNAMIC_DEFAULT_BROKER);
}

static int describe_one(adm_cmd_t *m, const entity_t *e, const char *name, bool all,
                        const proto_describe_configs_response_t *resp, out_json_t *j) {
    char what[300];
    entity_what(e, name, what, sizeof(what));
    const adm_config_result_t *r = adm_config_result(resp, name);
    if (adm_check_one(m, SM_OK, what, "DescribeConfigs", r ? 1 : 0, r ? r->error_code : 0,
                      r ? r->error_message : SM_STR_NULL) != CLI_OK)
        return CLI_FAIL;
    if (m->c.json) {
        oj_obj(j);
        oj_kstr(j, "entity_type", e->type == ADM_RES_TOPIC ? "topics" : "brokers");
        oj_key(j, "entity_name");
        if (*name)
            oj_str(j, name);
        else
            oj_null(j);
        oj_key(j, "configs");
        oj_arr(j);
    } else if (!*name) {
        printf("%s configs for brokers in the cluster are:\n", all ? "All default" : "Default");
    } else {
        printf("%s configs for %s %s are:\n", all ? "All" : "Dynamic", e->kind, name);
    }
    for (int32_t i = 0; i < r->configs.n; i++) {
        const adm_config_entry_t *c = &r->configs.v[i];
        if (!shown(e, name, c, all)) continue;
        sm_str_t value = c->is_sensitive ? SM_STR_NULL : c->value;
        const char *src = adm_config_source_name(c->config_source);
        if (m->c.json) {
            oj_obj(j);
            oj_ksstr(j, "name", c->name);
            oj_ksstr(j, "value", value);
            oj_kstr(j, "source", src);
            oj_kbool(j, "sensitive", c->is_sensitive);
            oj_kbool(j, "read_only", c->read_only);
            oj_obj_end(j);
        } else {
            printf("  %.*s=%.*s source=%s sensitive=%s\n", (int)c->name.len, c->name.ptr,
                   value.len < 0 ? 4 : (int)value.len, value.len < 0 ? "null" : value.ptr, src,
                   c->is_sensitive ? "true" : "false");
        }
    }
    if (m->c.json) {
        oj_arr_end(j);
        oj_obj_end(j);
    }
    return CLI_OK;
}

static int configs_describe(int argc, char **argv) {
    adm_cmd_t m;
    const char *type = NULL, *name = NULL;
    bool def = false, all = false;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--entity-type", ADM_STR, &type, "topics|brokers", "kind of entity (required)", false},
        {"--entity-name", ADM_STR, &name, "NAME", "topic name or broker id (default: all)", false},
        {"--entity-default", ADM_FLAG, &def, "", "the cluster-wide broker defaults", false},
        {"--all", ADM_FLAG, &all, "", "every config, defaults included", false},
    };
    int ret = adm_start(&m, argc, argv,
                        "samsa configs describe [-b HOST:PORT] --entity-type "
                        "topics|brokers [--entity-name NAME | --entity-default] [--all]",
                        opts, NOPTS(opts), NULL);
    entity_t e;
    if (ret != CLI_OK || (ret = parse_entity(type, name, def, &e)) != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    /* Without a name: every topic (or broker) the cluster has. */
    const char **names = &e.name;
    size_t n = 1;
    if (!e.name) {
        proto_metadata_response_t md;
        static const char *const none[1] = {NULL};
        ret = CLI_FAIL;
        if (kc_metadata(&m.kc, e.type == ADM_RES_TOPIC ? NULL : none, 0, &m.a, &md) != SM_OK) {
            cli_error("%s", m.kc.err);
            goto done;
        }
        int32_t k = e.type == ADM_RES_TOPIC ? md.topics.n : md.brokers.n;
        names = sm_arena_calloc(&m.a, (size_t)k + 1, sizeof(*names));
        if (!names) goto done;
        for (n = 0; n < (size_t)k; n++) {
            char buf[16];
            if (e.type == ADM_RES_TOPIC) {
                names[n] = sm_arena_strndup(&m.a, md.topics.v[n].name.ptr,
                                            (size_t)md.topics.v[n].name.len);
            } else {
                snprintf(buf, sizeof(buf), "%d", md.brokers.v[n].node_id);
                names[n] = sm_arena_strndup(&m.a, buf, strlen(buf));
            }
        }
    }
    proto_describe_configs_response_t *resp;
    ret = CLI_FAIL;
    if (adm_describe_configs(&m.kc, &m.a, e.type, names, n, &resp) != SM_OK) {
        cli_error("%s", m.kc.err);
        goto done;
    }
    out_json_t j;
    oj_init(&j, stdout);
    if (m.c.json) oj_arr(&j);
    ret = CLI_OK;
    for (size_t i = 0; i < n && ret == CLI_OK; i++)
        ret = describe_one(&m, &e, names[i], all, resp, &j);
    if (m.c.json && ret == CLI_OK) oj_arr_end(&j);
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

static int configs_alter(int argc, char **argv) {
    adm_cmd_t m;
    const char *type = NULL, *name = NULL;
    bool def = false;
    adm_list_t add = {0}, del = {0}, app = {0}, sub = {0};
    adm_list_t items[4] = {{0}};
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--entity-type", ADM_STR, &type, "topics|brokers", "kind of entity (required)", false},
        {"--entity-name", ADM_STR, &name, "NAME", "topic name or broker id", false},
        {"--entity-default", ADM_FLAG, &def, "", "the cluster-wide broker defaults", false},
        {"--add-config", ADM_LIST, &add, "K=V[,K=V]", "set configs (list values as K=[a,b])",
         false},
        {"--delete-config", ADM_LIST, &del, "K[,K]", "remove overrides (back to the default)",
         false},
        {"--append-config", ADM_LIST, &app, "K=V[,K=V]", "add values to list configs", false},
        {"--subtract-config", ADM_LIST, &sub, "K=V[,K=V]", "remove values from list configs",
         false},
    };
    adm_config_op_t *ops = NULL;
    size_t nops = 0;
    int ret = adm_start(&m, argc, argv,
                        "samsa configs alter [-b HOST:PORT] --entity-type "
                        "topics|brokers (--entity-name NAME | --entity-default) [--add-config "
                        "K=V,...] [--delete-config K,...] [--append-config K=V,...] "
                        "[--subtract-config K=V,...]",
                        opts, NOPTS(opts), NULL);
    entity_t e;
    if (ret != CLI_OK || (ret = parse_entity(type, name, def, &e)) != CLI_OK) goto done;
    ret = CLI_USAGE;
    if (!e.name) {
        cli_error("missing required option --entity-name (or --entity-default)");
        goto done;
    }
    const adm_list_t *flags[4] = {&add, &del, &app, &sub};
    static const char *const flag_names[4] = {"--add-config", "--delete-config", "--append-config",
                                              "--subtract-config"};
    static const int8_t flag_ops[4] = {ADM_OP_SET, ADM_OP_DELETE, ADM_OP_APPEND, ADM_OP_SUBTRACT};
    size_t total = 0;
    for (int f = 0; f < 4; f++) {
        for (size_t i = 0; i < flags[f]->n; i++)
            if (adm_split_commas(flags[f]->v[i], &items[f]) != SM_OK) {
                ret = CLI_FAIL;
                goto done;
            }
        total += items[f].n;
    }
    if (total == 0) {
        cli_error("nothing to alter: give --add-config, --delete-config, --append-config or "
                  "--subtract-config");
        goto done;
    }
    ops = calloc(total, sizeof(*ops));
    if (!ops) {
        ret = CLI_FAIL;
        goto done;
    }
    for (int f = 0; f < 4; f++)
        if ((ret = adm_config_ops_parse(&items[f], flag_ops[f], flag_names[f], ops, &nops)) !=
            CLI_OK)
            goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    char what[300];
    entity_what(&e, e.name, what, sizeof(what));
    if ((ret = adm_alter_configs(&m, e.type, e.name, ops, nops, what)) != CLI_OK) goto done;
    if (m.c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        oj_obj(&j);
        oj_kstr(&j, "entity_type", e.type == ADM_RES_TOPIC ? "topics" : "brokers");
        oj_key(&j, "entity_name");
        if (*e.name)
            oj_str(&j, e.name);
        else
            oj_null(&j);
        oj_kint(&j, "configs_changed", (int64_t)nops);
        oj_obj_end(&j);
    } else if (!*e.name) {
        printf("Completed updating default config for brokers in the cluster.\n");
    } else {
        printf("Completed updating config for %s %s.\n", e.kind, e.name);
    }
done:
    free(ops);
    for (int f = 0; f < 4; f++)
        adm_list_free_strings(&items[f]);
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

int cli_configs(int argc, char **argv) {
    static const adm_sub_t subs[] = {
        {"describe", configs_describe, "show topic or broker configs and where they come from"},
        {"alter", configs_alter, "set, delete, append to or subtract from configs"},
    };
    return adm_dispatch(argc, argv, "configs", subs, sizeof(subs) / sizeof(subs[0]));
}
