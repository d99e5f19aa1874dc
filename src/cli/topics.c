/*
 * samsa topics: create, list, describe, alter and delete topics, in the manner
 * of Kafka's kafka-topics.sh (same flag names, same describe layout). Talks
 * to the broker through kclient; configs go through adm_configs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/adm_args.h"
#include "cli/adm_configs.h"
#include "cli/cli.h"
#include "cli/out.h"

typedef proto_metadata_response_metadata_response_topic_t md_topic_t;
typedef proto_metadata_response_metadata_response_partition_t md_part_t;

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

static int cmp_topic(const void *x, const void *y) {
    const md_topic_t *a = x, *b = y;
    int32_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
    int c = n > 0 ? memcmp(a->name.ptr, b->name.ptr, (size_t)n) : 0;
    return c ? c : (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

static int cmp_part(const void *x, const void *y) {
    const md_part_t *a = x, *b = y;
    return (a->partition_index > b->partition_index) - (a->partition_index < b->partition_index);
}

static void sort_metadata(proto_metadata_response_t *md) {
    if (md->topics.n > 1) qsort(md->topics.v, (size_t)md->topics.n, sizeof(md_topic_t), cmp_topic);
    for (int32_t i = 0; i < md->topics.n; i++)
        if (md->topics.v[i].partitions.n > 1)
            qsort(md->topics.v[i].partitions.v, (size_t)md->topics.v[i].partitions.n,
                  sizeof(md_part_t), cmp_part);
}

static int replication_factor(const md_topic_t *t) {
    return t->partitions.n > 0 ? t->partitions.v[0].replica_nodes.n : 0;
}

/* "1,2,3" into buf. */
static const char *ids_text(const sm_i32_array_t *ids, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < ids->n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? "," : "", ids->v[i]);
    return buf;
}

static void json_ids(out_json_t *j, const sm_i32_array_t *ids) {
    oj_arr(j);
    for (int32_t i = 0; i < ids->n; i++)
        oj_int(j, ids->v[i]);
    oj_arr_end(j);
}

static int topics_create(int argc, char **argv) {
    adm_cmd_t m;
    const char *topic = NULL;
    int64_t partitions = -1, rf = -1;
    adm_list_t configs = {0};
    bool if_not_exists = false;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--topic", ADM_STR, &topic, "NAME", "topic to create (required)", false},
        {"--partitions", ADM_INT, &partitions, "N", "number of partitions (default: broker's)",
         false},
        {"--replication-factor", ADM_INT, &rf, "N", "replicas per partition (default: broker's)",
         false},
        {"--config", ADM_LIST, &configs, "KEY=VALUE", "topic config override", false},
        {"--if-not-exists", ADM_FLAG, &if_not_exists, "", "succeed if the topic already exists",
         false},
    };
    static const char *const required[] = {"--topic", NULL};
    int ret = adm_start(&m, argc, argv, "samsa topics create [-b HOST:PORT] --topic NAME [options]",
                        opts, NOPTS(opts), required);
    if (ret != CLI_OK) goto done;
    ret = CLI_USAGE;
    if (adm_seen(opts, NOPTS(opts), "--partitions") && (partitions < 1 || partitions > INT32_MAX)) {
        cli_error("--partitions: must be at least 1, not %lld", (long long)partitions);
        goto done;
    }
    if (adm_seen(opts, NOPTS(opts), "--replication-factor") && (rf < 1 || rf > INT16_MAX)) {
        cli_error("--replication-factor: must be at least 1, not %lld", (long long)rf);
        goto done;
    }
    proto_create_topics_request_t req;
    proto_create_topics_request_init(&req);
    proto_create_topics_request_creatable_topic_t t;
    memset(&t, 0, sizeof(t));
    t.name = sm_str_from(topic);
    t.num_partitions = (int32_t)partitions;
    t.replication_factor = (int16_t)rf;
    t.configs.n = (int32_t)configs.n;
    t.configs.v = sm_arena_calloc(&m.a, configs.n + 1, sizeof(*t.configs.v));
    if (!t.configs.v) goto done;
    for (size_t i = 0; i < configs.n; i++) {
        const char *eq = strchr(configs.v[i], '=');
        if (!eq || eq == configs.v[i]) {
            cli_error("--config: '%s' is not key=value", configs.v[i]);
            goto done;
        }
        t.configs.v[i].name = (sm_str_t){configs.v[i], (int32_t)(eq - configs.v[i])};
        t.configs.v[i].value = sm_str_from(eq + 1);
    }
    req.topics.n = 1;
    req.topics.v = &t;
    req.timeout_ms = (int32_t)m.c.timeout_ms;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    proto_create_topics_response_t resp;
    int rc = kc_call(&m.kc, -1, PROTO_CREATE_TOPICS_REQUEST_API_KEY, 7, &req, &resp, &m.a, NULL);
    const proto_create_topics_response_creatable_topic_result_t *r =
        rc == SM_OK && resp.topics.n == 1 ? &resp.topics.v[0] : NULL;
    bool existed = r && r->error_code == PROTO_ERR_TOPIC_ALREADY_EXISTS && if_not_exists;
    char what[300];
    snprintf(what, sizeof(what), "topic '%s'", topic);
    ret = adm_check_one(&m, rc, what, "CreateTopics", rc == SM_OK ? resp.topics.n : 1,
                        r && !existed ? r->error_code : 0, r ? r->error_message : SM_STR_NULL);
    if (ret != CLI_OK) goto done;
    if (m.c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        char id[23];
        oj_obj(&j);
        oj_kstr(&j, "topic", topic);
        oj_kbool(&j, "created", !existed);
        oj_key(&j, "topic_id");
        if (existed || sm_uuid_is_zero(&r->topic_id)) {
            oj_null(&j);
        } else {
            out_uuid(&r->topic_id, id);
            oj_str(&j, id);
        }
        oj_key(&j, "partitions");
        if (existed)
            oj_null(&j);
        else
            oj_int(&j, r->num_partitions);
        oj_key(&j, "replication_factor");
        if (existed)
            oj_null(&j);
        else
            oj_int(&j, r->replication_factor);
        oj_obj_end(&j);
    } else if (existed) {
        printf("Topic %s already exists.\n", topic);
    } else {
        printf("Created topic %s.\n", topic);
    }
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

static int topics_list(int argc, char **argv) {
    adm_cmd_t m;
    bool exclude_internal = false;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--exclude-internal", ADM_FLAG, &exclude_internal, "", "leave out internal topics", false},
    };
    int ret = adm_start(&m, argc, argv, "samsa topics list [-b HOST:PORT] [options]", opts,
                        NOPTS(opts), NULL);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    proto_metadata_response_t md;
    if (kc_metadata(&m.kc, NULL, 0, &m.a, &md) != SM_OK) {
        cli_error("%s", m.kc.err);
        ret = CLI_FAIL;
        goto done;
    }
    sort_metadata(&md);
    out_json_t j;
    out_table_t t;
    static const char *const hdr[] = {"TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "INTERNAL"};
    oj_init(&j, stdout);
    out_table_init(&t, 4, hdr);
    if (m.c.json) oj_arr(&j);
    for (int32_t i = 0; i < md.topics.n; i++) {
        const md_topic_t *tp = &md.topics.v[i];
        if (exclude_internal && tp->is_internal) continue;
        if (tp->error_code != PROTO_ERR_NONE || tp->name.len < 0) continue;
        if (m.c.json) {
            char id[23];
            out_uuid(&tp->topic_id, id);
            oj_obj(&j);
            oj_ksstr(&j, "topic", tp->name);
            oj_kstr(&j, "topic_id", id);
            oj_kint(&j, "partitions", tp->partitions.n);
            oj_kint(&j, "replication_factor", replication_factor(tp));
            oj_kbool(&j, "internal", tp->is_internal);
            oj_obj_end(&j);
        } else {
            out_table_str(&t, tp->name);
            out_table_cell(&t, "%d", tp->partitions.n);
            out_table_cell(&t, "%d", replication_factor(tp));
            out_table_cell(&t, "%s", tp->is_internal ? "yes" : "no");
        }
    }
    if (m.c.json)
        oj_arr_end(&j);
    else
        out_table_print(&t, stdout);
    out_table_free(&t);
    ret = CLI_OK;
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

/* The config overrides of the topics in md, in one DescribeConfigs; *out
 * stays NULL for an old broker without DescribeConfigs. */
static int topics_overrides(adm_cmd_t *m, const proto_metadata_response_t *md,
                            proto_describe_configs_response_t **out) {
    *out = NULL;
    if (kc_api_max(&m->kc, PROTO_DESCRIBE_CONFIGS_REQUEST_API_KEY) < 0 || md->topics.n == 0)
        return CLI_OK;
    const char **names = sm_arena_calloc(&m->a, (size_t)md->topics.n, sizeof(*names));
    if (!names) return CLI_FAIL;
    for (int32_t i = 0; i < md->topics.n; i++)
        names[i] =
            sm_arena_strndup(&m->a, md->topics.v[i].name.ptr, (size_t)md->topics.v[i].name.len);
    out_progress("describing the configs of %d topics", md->topics.n);
    if (adm_describe_configs(&m->kc, &m->a, ADM_RES_TOPIC, names, (size_t)md->topics.n, out) !=
        SM_OK) {
        cli_error("%s", m->kc.err);
        return CLI_FAIL;
    }
    out_progress_end();
    for (int32_t i = 0; i < (*out)->results.n; i++) {
        const adm_config_result_t *r = &(*out)->results.v[i];
        if (r->error_code == PROTO_ERR_NONE) continue;
        char what[300], name[256];
        snprintf(what, sizeof(what), "topic '%s'", out_cstr(r->resource_name, name, sizeof(name)));
        out_kafka_error(what, r->error_code, r->error_message);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static bool is_override(const adm_config_entry_t *e) {
    return e->config_source == ADM_SRC_DYNAMIC_TOPIC;
}

static void describe_text(const md_topic_t *tp, const adm_config_result_t *cfg) {
    char id[23], buf[1024];
    out_uuid(&tp->topic_id, id);
    printf("Topic: %.*s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: ",
           (int)tp->name.len, tp->name.ptr, id, tp->partitions.n, replication_factor(tp));
    int shown = 0;
    for (int32_t i = 0; cfg && i < cfg->configs.n; i++) {
        const adm_config_entry_t *e = &cfg->configs.v[i];
        if (!is_override(e)) continue;
        printf("%s%.*s=%.*s", shown++ ? "," : "", (int)e->name.len, e->name.ptr,
               e->is_sensitive ? 4 : (int)(e->value.len < 0 ? 4 : e->value.len),
               e->is_sensitive || e->value.len < 0 ? "null" : e->value.ptr);
    }
    printf("\n");
    for (int32_t p = 0; p < tp->partitions.n; p++) {
        const md_part_t *pt = &tp->partitions.v[p];
        printf("\tTopic: %.*s\tPartition: %d\tLeader: ", (int)tp->name.len, tp->name.ptr,
               pt->partition_index);
        if (pt->leader_id < 0)
            printf("none");
        else
            printf("%d", pt->leader_id);
        printf("\tReplicas: %s", ids_text(&pt->replica_nodes, buf, sizeof(buf)));
        printf("\tIsr: %s", ids_text(&pt->isr_nodes, buf, sizeof(buf)));
        if (pt->offline_replicas.n > 0)
            printf("\tOffline: %s", ids_text(&pt->offline_replicas, buf, sizeof(buf)));
        printf("\n");
    }
}

static void describe_json(out_json_t *j, const md_topic_t *tp, const adm_config_result_t *cfg) {
    char id[23];
    out_uuid(&tp->topic_id, id);
    oj_obj(j);
    oj_ksstr(j, "topic", tp->name);
    oj_kstr(j, "topic_id", id);
    oj_kbool(j, "internal", tp->is_internal);
    oj_kint(j, "partition_count", tp->partitions.n);
    oj_kint(j, "replication_factor", replication_factor(tp));
    oj_key(j, "configs");
    oj_obj(j);
    for (int32_t i = 0; cfg && i < cfg->configs.n; i++) {
        const adm_config_entry_t *e = &cfg->configs.v[i];
        if (!is_override(e)) continue;
        char key[256];
        oj_key(j, out_cstr(e->name, key, sizeof(key)));
        if (e->is_sensitive)
            oj_null(j);
        else
            oj_sstr(j, e->value);
    }
    oj_obj_end(j);
    oj_key(j, "partitions");
    oj_arr(j);
    for (int32_t p = 0; p < tp->partitions.n; p++) {
        const md_part_t *pt = &tp->partitions.v[p];
        oj_obj(j);
        oj_kint(j, "partition", pt->partition_index);
        oj_key(j, "leader");
        if (pt->leader_id < 0)
            oj_null(j);
        else
            oj_int(j, pt->leader_id);
        oj_key(j, "replicas");
        json_ids(j, &pt->replica_nodes);
        oj_key(j, "isr");
        json_ids(j, &pt->isr_nodes);
        oj_key(j, "offline");
        json_ids(j, &pt->offline_replicas);
        oj_obj_end(j);
    }
    oj_arr_end(j);
    oj_obj_end(j);
}

static int topics_describe(int argc, char **argv) {
    adm_cmd_t m;
    adm_list_t names = {0};
    bool exclude_internal = false;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--topic", ADM_LIST, &names, "NAME", "topic to describe (default: every topic)", false},
        {"--exclude-internal", ADM_FLAG, &exclude_internal, "", "leave out internal topics", false},
    };
    int ret = adm_start(&m, argc, argv, "samsa topics describe [-b HOST:PORT] [--topic NAME]...",
                        opts, NOPTS(opts), NULL);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    proto_metadata_response_t md;
    ret = CLI_FAIL;
    if (kc_metadata(&m.kc, names.n ? names.v : NULL, names.n, &m.a, &md) != SM_OK) {
        cli_error("%s", m.kc.err);
        goto done;
    }
    sort_metadata(&md);
    for (int32_t i = 0; i < md.topics.n; i++) {
        const md_topic_t *tp = &md.topics.v[i];
        if (tp->error_code != PROTO_ERR_NONE) {
            char what[300], name[256];
            snprintf(what, sizeof(what), "topic '%s'", out_cstr(tp->name, name, sizeof(name)));
            char msg[300];
            snprintf(msg, sizeof(msg), "Topic '%s' does not exist.", name);
            out_kafka_error(what, tp->error_code,
                            tp->error_code == PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION
                                ? sm_str_from(msg)
                                : SM_STR_NULL);
            goto done;
        }
    }
    if (exclude_internal) {
        int32_t k = 0;
        for (int32_t i = 0; i < md.topics.n; i++)
            if (!md.topics.v[i].is_internal) md.topics.v[k++] = md.topics.v[i];
        md.topics.n = k;
    }
    proto_describe_configs_response_t *cfgs;
    if (topics_overrides(&m, &md, &cfgs) != CLI_OK) goto done;
    out_json_t j;
    oj_init(&j, stdout);
    if (m.c.json) oj_arr(&j);
    for (int32_t i = 0; i < md.topics.n; i++) {
        const md_topic_t *tp = &md.topics.v[i];
        char name[256];
        const adm_config_result_t *cfg =
            cfgs ? adm_config_result(cfgs, out_cstr(tp->name, name, sizeof(name))) : NULL;
        if (m.c.json)
            describe_json(&j, tp, cfg);
        else
            describe_text(tp, cfg);
    }
    if (m.c.json) oj_arr_end(&j);
    ret = CLI_OK;
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

static int topics_delete(int argc, char **argv) {
    adm_cmd_t m;
    adm_list_t names = {0};
    bool if_exists = false;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--topic", ADM_LIST, &names, "NAME", "topic to delete (required)", false},
        {"--if-exists", ADM_FLAG, &if_exists, "", "succeed if the topic does not exist", false},
    };
    int ret = adm_start(&m, argc, argv, "samsa topics delete [-b HOST:PORT] --topic NAME...", opts,
                        NOPTS(opts), NULL);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_require(opts, NOPTS(opts), "--topic")) != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    proto_delete_topics_request_t req;
    proto_delete_topics_request_init(&req);
    req.topics.n = req.topic_names.n = (int32_t)names.n;
    req.topics.v = sm_arena_calloc(&m.a, names.n, sizeof(*req.topics.v));
    req.topic_names.v = sm_arena_calloc(&m.a, names.n, sizeof(*req.topic_names.v));
    req.timeout_ms = (int32_t)m.c.timeout_ms;
    ret = CLI_FAIL;
    if (!req.topics.v || !req.topic_names.v) goto done;
    for (size_t i = 0; i < names.n; i++)
        req.topics.v[i].name = req.topic_names.v[i] = sm_str_from(names.v[i]);
    proto_delete_topics_response_t resp;
    if (kc_call(&m.kc, -1, PROTO_DELETE_TOPICS_REQUEST_API_KEY, 6, &req, &resp, &m.a, NULL) !=
        SM_OK) {
        cli_error("%s", m.kc.err);
        goto done;
    }
    int failed = 0;
    out_json_t j;
    oj_init(&j, stdout);
    if (m.c.json) oj_arr(&j);
    for (int32_t i = 0; i < resp.responses.n; i++) {
        const proto_delete_topics_response_deletable_topic_result_t *r = &resp.responses.v[i];
        char name[256];
        out_cstr(r->name, name, sizeof(name));
        bool missing = r->error_code == PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        if (r->error_code != PROTO_ERR_NONE && !(missing && if_exists)) {
            char what[300];
            snprintf(what, sizeof(what), "topic '%s'", name);
            out_kafka_error(what, r->error_code, r->error_message);
            failed++;
            continue;
        }
        if (m.c.json) {
            oj_obj(&j);
            oj_kstr(&j, "topic", name);
            oj_kbool(&j, "deleted", !missing);
            oj_obj_end(&j);
        } else if (missing) {
            printf("Topic %s does not exist.\n", name);
        } else {
            printf("Deleted topic %s.\n", name);
        }
    }
    if (m.c.json) oj_arr_end(&j);
    ret = failed ? CLI_FAIL : CLI_OK;
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

static int add_partitions(adm_cmd_t *m, const char *topic, int32_t count) {
    proto_create_partitions_request_t req;
    proto_create_partitions_request_init(&req);
    proto_create_partitions_request_create_partitions_topic_t t;
    memset(&t, 0, sizeof(t));
    t.name = sm_str_from(topic);
    t.count = count;
    t.assignments.n = -1;
    req.topics.n = 1;
    req.topics.v = &t;
    req.timeout_ms = (int32_t)m->c.timeout_ms;
    proto_create_partitions_response_t resp;
    char what[300];
    snprintf(what, sizeof(what), "topic '%s'", topic);
    int rc =
        kc_call(&m->kc, -1, PROTO_CREATE_PARTITIONS_REQUEST_API_KEY, 3, &req, &resp, &m->a, NULL);
    bool one = rc == SM_OK && resp.results.n == 1;
    return adm_check_one(m, rc, what, "CreatePartitions", rc == SM_OK ? resp.results.n : 1,
                         one ? resp.results.v[0].error_code : 0,
                         one ? resp.results.v[0].error_message : SM_STR_NULL);
}

static int topics_alter(int argc, char **argv) {
    adm_cmd_t m;
    const char *topic = NULL;
    int64_t partitions = 0;
    adm_list_t set = {0}, del = {0};
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--topic", ADM_STR, &topic, "NAME", "topic to alter (required)", false},
        {"--partitions", ADM_INT, &partitions, "N", "raise the partition count to N", false},
        {"--config", ADM_LIST, &set, "KEY=VALUE", "set a topic config", false},
        {"--delete-config", ADM_LIST, &del, "KEY", "remove a topic config override", false},
    };
    adm_config_op_t *ops = NULL;
    size_t nops = 0;
    int ret = adm_start(&m, argc, argv,
                        "samsa topics alter [-b HOST:PORT] --topic NAME "
                        "[--partitions N] [--config K=V]... [--delete-config K]...",
                        opts, NOPTS(opts), NULL);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_require(opts, NOPTS(opts), "--topic")) != CLI_OK) goto done;
    bool want_parts = adm_seen(opts, NOPTS(opts), "--partitions");
    if (!want_parts && set.n == 0 && del.n == 0) {
        cli_error("nothing to alter: give --partitions, --config or --delete-config");
        ret = CLI_USAGE;
        goto done;
    }
    if (want_parts && (partitions < 1 || partitions > INT32_MAX)) {
        cli_error("--partitions: must be at least 1, not %lld", (long long)partitions);
        ret = CLI_USAGE;
        goto done;
    }
    ops = calloc(set.n + del.n + 1, sizeof(*ops));
    if (!ops) {
        ret = CLI_FAIL;
        goto done;
    }
    if ((ret = adm_config_ops_parse(&set, ADM_OP_SET, "--config", ops, &nops)) != CLI_OK ||
        (ret = adm_config_ops_parse(&del, ADM_OP_DELETE, "--delete-config", ops, &nops)) != CLI_OK)
        goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    char what[300];
    snprintf(what, sizeof(what), "topic '%s'", topic);
    if (nops) {
        ret = adm_alter_configs(&m, ADM_RES_TOPIC, topic, ops, nops, what);
        if (ret != CLI_OK) goto done;
    }
    if (want_parts) {
        ret = add_partitions(&m, topic, (int32_t)partitions);
        if (ret != CLI_OK) goto done;
    }
    if (m.c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        oj_obj(&j);
        oj_kstr(&j, "topic", topic);
        oj_key(&j, "partitions");
        if (want_parts)
            oj_int(&j, partitions);
        else
            oj_null(&j);
        oj_kint(&j, "configs_changed", (int64_t)nops);
        oj_obj_end(&j);
    } else {
        if (nops) printf("Updated %zu config(s) of topic %s.\n", nops, topic);
        if (want_parts) printf("Topic %s now has %lld partitions.\n", topic, (long long)partitions);
    }
    ret = CLI_OK;
done:
    free(ops);
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

int cli_topics(int argc, char **argv) {
    static const adm_sub_t subs[] = {
        {"create", topics_create, "create a topic"},
        {"list", topics_list, "list topics with partition counts"},
        {"describe", topics_describe, "partitions, leaders, replicas and config overrides"},
        {"alter", topics_alter, "add partitions, set or remove topic configs"},
        {"delete", topics_delete, "delete topics"},
    };
    return adm_dispatch(argc, argv, "topics", subs, sizeof(subs) / sizeof(subs[0]));
}
