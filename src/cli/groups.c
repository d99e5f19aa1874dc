/*
 * samsa groups: list, describe and delete consumer groups, delete their
 * committed offsets, and reset them, in the manner of Kafka's
 * kafka-consumer-groups.sh (same flags, same columns; reset-offsets is a dry
 * run unless --execute). The protocol work is in adm_groups.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/adm_groups.h"
#include "cli/cli.h"
#include "cli/out.h"

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

static bool state_matches(sm_str_t state, const adm_list_t *states) {
    if (states->n == 0) return true;
    for (size_t i = 0; i < states->n; i++)
        if (state.len == (int32_t)strlen(states->v[i]) &&
            strncasecmp(state.ptr, states->v[i], (size_t)state.len) == 0)
            return true;
    return false;
}

typedef proto_list_groups_response_listed_group_t listed_t;

static int listed_cmp(const void *x, const void *y) {
    const listed_t *a = x, *b = y;
    int32_t n = a->group_id.len < b->group_id.len ? a->group_id.len : b->group_id.len;
    int c = n > 0 ? memcmp(a->group_id.ptr, b->group_id.ptr, (size_t)n) : 0;
    return c ? c : (a->group_id.len > b->group_id.len) - (a->group_id.len < b->group_id.len);
}

static int groups_list(int argc, char **argv) {
    adm_cmd_t m;
    adm_list_t states_arg = {0}, states = {0};
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--state", ADM_LIST, &states_arg, "STATE[,STATE]",
         "only groups in these states (Empty, Stable, PreparingRebalance, ...)", false},
    };
    int ret = adm_start(&m, argc, argv, "samsa groups list [-b HOST:PORT] [--state S]", opts,
                        NOPTS(opts), NULL);
    if (ret != CLI_OK) goto done;
    for (size_t i = 0; i < states_arg.n; i++)
        if (adm_split_commas(states_arg.v[i], &states) != SM_OK) {
            ret = CLI_FAIL;
            goto done;
        }
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    ret = CLI_FAIL;
    static const char *const none[1] = {NULL};
    proto_metadata_response_t md;
    if (kc_metadata(&m.kc, none, 0, &m.a, &md) != SM_OK) {
        cli_error("%s", m.kc.err);
        goto done;
    }
    /* Each broker lists the groups it coordinates. */
    size_t cap = 0, n = 0;
    listed_t *all = NULL;
    for (int32_t b = 0; b < md.brokers.n; b++) {
        proto_list_groups_request_t req;
        proto_list_groups_request_init(&req);
        req.states_filter.n = (int32_t)states.n;
        req.states_filter.v = sm_arena_calloc(&m.a, states.n + 1, sizeof(sm_str_t));
        if (!req.states_filter.v) goto done;
        for (size_t i = 0; i < states.n; i++)
            req.states_filter.v[i] = sm_str_from(states.v[i]);
        proto_list_groups_response_t resp;
        if (kc_call(&m.kc, md.brokers.v[b].node_id, PROTO_LIST_GROUPS_REQUEST_API_KEY, 4, &req,
                    &resp, &m.a, NULL) != SM_OK) {
            cli_error("%s", m.kc.err);
            goto done;
        }
        if (resp.error_code != PROTO_ERR_NONE) {
            char what[64];
            snprintf(what, sizeof(what), "broker %d", md.brokers.v[b].node_id);
            out_kafka_error(what, resp.error_code, SM_STR_NULL);
            goto done;
        }
        if (n + (size_t)resp.groups.n > cap) {
            cap = n + (size_t)resp.groups.n;
            listed_t *v = sm_arena_calloc(&m.a, cap, sizeof(*v));
            if (!v) goto done;
            if (n) memcpy(v, all, n * sizeof(*v));
            all = v;
        }
        for (int32_t i = 0; i < resp.groups.n; i++)
            if (state_matches(resp.groups.v[i].group_state, &states)) all[n++] = resp.groups.v[i];
    }
    if (n > 1) qsort(all, n, sizeof(*all), listed_cmp);
    if (m.c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        oj_arr(&j);
        for (size_t i = 0; i < n; i++) {
            oj_obj(&j);
            oj_ksstr(&j, "group", all[i].group_id);
            oj_ksstr(&j, "state", all[i].group_state.len > 0 ? all[i].group_state : SM_STR_NULL);
            oj_ksstr(&j, "protocol_type", all[i].protocol_type);
            oj_obj_end(&j);
        }
        oj_arr_end(&j);
    } else {
        static const char *const hdr[] = {"GROUP", "STATE", "PROTOCOL-TYPE"};
        out_table_t t;
        out_table_init(&t, 3, hdr);
        for (size_t i = 0; i < n; i++) {
            out_table_str(&t, all[i].group_id);
            out_table_str(&t, all[i].group_state);
            out_table_str(&t, all[i].protocol_type);
        }
        out_table_print(&t, stdout);
        out_table_free(&t);
    }
    ret = CLI_OK;
done:
    adm_list_free_strings(&states);
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

static void json_opt_int(out_json_t *j, const char *key, int64_t v) {
    oj_key(j, key);
    if (v < 0)
        oj_null(j);
    else
        oj_int(j, v);
}

static void print_offsets(const adm_cmd_t *m, const char *group, const adm_parts_t *ps) {
    if (m->c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        oj_arr(&j);
        for (size_t i = 0; i < ps->n; i++) {
            const adm_part_t *p = &ps->v[i];
            oj_obj(&j);
            oj_kstr(&j, "group", group);
            oj_ksstr(&j, "topic", p->topic);
            oj_kint(&j, "partition", p->partition);
            json_opt_int(&j, "current_offset", p->committed);
            json_opt_int(&j, "log_end_offset", p->log_end);
            json_opt_int(&j, "lag",
                         p->committed >= 0 && p->log_end >= 0 ? p->log_end - p->committed : -1);
            oj_ksstr(&j, "consumer_id", p->member ? p->member->member_id : SM_STR_NULL);
            oj_ksstr(&j, "host", p->member ? p->member->client_host : SM_STR_NULL);
            oj_ksstr(&j, "client_id", p->member ? p->member->client_id : SM_STR_NULL);
            oj_obj_end(&j);
        }
        oj_arr_end(&j);
        return;
    }
    static const char *const hdr[] = {"GROUP",          "TOPIC",          "PARTITION",
                                      "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                                      "CONSUMER-ID",    "HOST",           "CLIENT-ID"};
    out_table_t t;
    out_table_init(&t, 9, hdr);
    for (size_t i = 0; i < ps->n; i++) {
        const adm_part_t *p = &ps->v[i];
        out_table_cell(&t, "%s", group);
        out_table_str(&t, p->topic);
        out_table_cell(&t, "%d", p->partition);
        if (p->committed >= 0)
            out_table_cell(&t, "%lld", (long long)p->committed);
        else
            out_table_cell(&t, "-");
        if (p->log_end >= 0)
            out_table_cell(&t, "%lld", (long long)p->log_end);
        else
            out_table_cell(&t, "-");
        if (p->committed >= 0 && p->log_end >= 0)
            out_table_cell(&t, "%lld", (long long)(p->log_end - p->committed));
        else
            out_table_cell(&t, "-");
        out_table_str(&t, p->member ? p->member->member_id : SM_STR_NULL);
        out_table_str(&t, p->member ? p->member->client_host : SM_STR_NULL);
        out_table_str(&t, p->member ? p->member->client_id : SM_STR_NULL);
    }
    out_table_print(&t, stdout);
    out_table_free(&t);
}

static size_t member_partitions(const adm_parts_t *ps, const adm_member_t *mem) {
    size_t n = 0;
    for (size_t i = 0; i < ps->n; i++)
        n += ps->v[i].member == mem;
    return n;
}

static void print_members(const adm_cmd_t *m, const char *group, const adm_group_t *g,
                          const adm_parts_t *ps) {
    out_json_t j;
    out_table_t t;
    static const char *const hdr[] = {"GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID",
                                      "HOST",  "CLIENT-ID",   "#PARTITIONS"};
    oj_init(&j, stdout);
    out_table_init(&t, 6, hdr);
    if (m->c.json) oj_arr(&j);
    for (int32_t i = 0; i < g->members.n; i++) {
        const adm_member_t *mem = &g->members.v[i];
        size_t np = member_partitions(ps, mem);
        if (m->c.json) {
            oj_obj(&j);
            oj_kstr(&j, "group", group);
            oj_ksstr(&j, "consumer_id", mem->member_id);
            oj_ksstr(&j, "group_instance_id", mem->group_instance_id);
            oj_ksstr(&j, "host", mem->client_host);
            oj_ksstr(&j, "client_id", mem->client_id);
            oj_kint(&j, "partitions", (int64_t)np);
            oj_obj_end(&j);
        } else {
            out_table_cell(&t, "%s", group);
            out_table_str(&t, mem->member_id);
            out_table_str(&t, mem->group_instance_id);
            out_table_str(&t, mem->client_host);
            out_table_str(&t, mem->client_id);
            out_table_cell(&t, "%zu", np);
        }
    }
    if (m->c.json)
        oj_arr_end(&j);
    else
        out_table_print(&t, stdout);
    out_table_free(&t);
}

static void print_state(adm_cmd_t *m, const char *group, const adm_group_t *g, int32_t node) {
    char coord[300] = "-";
    for (size_t i = 0; i < m->kc.nbrokers; i++)
        if (m->kc.brokers[i].node_id == node)
            snprintf(coord, sizeof(coord), "%s:%d (%d)", m->kc.brokers[i].host,
                     m->kc.brokers[i].port, node);
    if (m->c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        oj_obj(&j);
        oj_kstr(&j, "group", group);
        oj_kint(&j, "coordinator", node);
        oj_ksstr(&j, "assignment_strategy", g->protocol_data);
        oj_ksstr(&j, "state", g->group_state);
        oj_kint(&j, "members", g->members.n);
        oj_obj_end(&j);
        return;
    }
    static const char *const hdr[] = {"GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE",
                                      "#MEMBERS"};
    out_table_t t;
    out_table_init(&t, 5, hdr);
    out_table_cell(&t, "%s", group);
    out_table_cell(&t, "%s", coord);
    out_table_str(&t, g->protocol_data);
    out_table_str(&t, g->group_state);
    out_table_cell(&t, "%d", g->members.n);
    out_table_print(&t, stdout);
    out_table_free(&t);
}

static bool group_missing(const adm_group_t *g, const adm_parts_t *ps) {
    return sm_str_eq(g->group_state, SM_STR_LIT("Dead")) && g->members.n == 0 && ps->n == 0;
}

static int groups_describe(int argc, char **argv) {
    adm_cmd_t m;
    const char *group = NULL;
    bool members = false, state = false, offsets = false;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--group", ADM_STR, &group, "GROUP", "group to describe (required)", false},
        {"--offsets", ADM_FLAG, &offsets, "", "per partition offsets and lag (the default)", false},
        {"--members", ADM_FLAG, &members, "", "the group's members instead", false},
        {"--state", ADM_FLAG, &state, "", "the group's state and coordinator instead", false},
    };
    static const char *const required[] = {"--group", NULL};
    int ret = adm_start(&m, argc, argv,
                        "samsa groups describe [-b HOST:PORT] --group GROUP "
                        "[--offsets|--members|--state]",
                        opts, NOPTS(opts), required);
    if (ret != CLI_OK) goto done;
    if ((int)members + (int)state + (int)offsets > 1) {
        cli_error("give only one of --offsets, --members, --state");
        ret = CLI_USAGE;
        goto done;
    }
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    int32_t node;
    adm_group_t *g;
    adm_parts_t ps = {0};
    if ((ret = adm_coordinator(&m, group, &node)) != CLI_OK) goto done;
    if ((ret = adm_describe_group(&m, node, group, &g)) != CLI_OK) goto done;
    if ((ret = adm_fetch_committed(&m, node, group, &ps, false)) != CLI_OK) goto done;
    if (group_missing(g, &ps)) {
        char what[300], msg[300];
        snprintf(what, sizeof(what), "group '%s'", group);
        snprintf(msg, sizeof(msg), "Consumer group '%s' does not exist.", group);
        out_kafka_error(what, PROTO_ERR_GROUP_ID_NOT_FOUND, sm_str_from(msg));
        ret = CLI_FAIL;
        goto done;
    }
    adm_attach_members(&m, g, &ps);
    adm_parts_sort(&ps);
    out_progress_end();
    if (state) {
        print_state(&m, group, g, node);
    } else if (members) {
        print_members(&m, group, g, &ps);
    } else {
        if ((ret = adm_fetch_log_offsets(&m, &ps)) != CLI_OK) goto done;
        if (g->members.n == 0 && !m.c.json)
            fprintf(stderr, "Consumer group '%s' has no active members.\n", group);
        print_offsets(&m, group, &ps);
    }
    ret = CLI_OK;
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

/* DeleteGroups and OffsetDelete carry no error message; say what the
 * group-level codes mean here. */
static sm_str_t group_error_text(int16_t code, const char *group, char *buf, size_t cap) {
    if (code == PROTO_ERR_NON_EMPTY_GROUP)
        snprintf(buf, cap, "Consumer group '%s' has active members; stop them first.", group);
    else if (code == PROTO_ERR_GROUP_ID_NOT_FOUND)
        snprintf(buf, cap, "Consumer group '%s' does not exist.", group);
    else
        return SM_STR_NULL;
    return sm_str_from(buf);
}

static int groups_delete(int argc, char **argv) {
    adm_cmd_t m;
    adm_list_t groups = {0};
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--group", ADM_LIST, &groups, "GROUP", "group to delete (required)", false},
    };
    static const char *const required[] = {"--group", NULL};
    int ret = adm_start(&m, argc, argv, "samsa groups delete [-b HOST:PORT] --group GROUP...", opts,
                        NOPTS(opts), required);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    int failed = 0;
    out_json_t j;
    oj_init(&j, stdout);
    if (m.c.json) oj_arr(&j);
    for (size_t i = 0; i < groups.n; i++) {
        int32_t node;
        char what[300], msg[400];
        snprintf(what, sizeof(what), "group '%s'", groups.v[i]);
        if (adm_coordinator(&m, groups.v[i], &node) != CLI_OK) {
            failed++;
            continue;
        }
        proto_delete_groups_request_t req;
        proto_delete_groups_request_init(&req);
        sm_str_t name = sm_str_from(groups.v[i]);
        req.groups_names.n = 1;
        req.groups_names.v = &name;
        proto_delete_groups_response_t resp;
        int rc =
            kc_call(&m.kc, node, PROTO_DELETE_GROUPS_REQUEST_API_KEY, 2, &req, &resp, &m.a, NULL);
        bool one = rc == SM_OK && resp.results.n == 1;
        if (adm_check_one(&m, rc, what, "DeleteGroups", rc == SM_OK ? resp.results.n : 1,
                          one ? resp.results.v[0].error_code : 0,
                          group_error_text(one ? resp.results.v[0].error_code : 0, groups.v[i], msg,
                                           sizeof(msg))) != CLI_OK) {
            failed++;
            continue;
        }
        if (m.c.json) {
            oj_obj(&j);
            oj_kstr(&j, "group", groups.v[i]);
            oj_kbool(&j, "deleted", true);
            oj_obj_end(&j);
        } else {
            printf("Deleted consumer group %s.\n", groups.v[i]);
        }
    }
    if (m.c.json) oj_arr_end(&j);
    ret = failed ? CLI_FAIL : CLI_OK;
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

static int groups_delete_offsets(int argc, char **argv) {
    adm_cmd_t m;
    const char *group = NULL;
    adm_list_t topics = {0};
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--group", ADM_STR, &group, "GROUP", "group whose offsets to delete (required)", false},
        {"--topic", ADM_LIST, &topics, "TOPIC[:P,P]", "topic, or some of its partitions (required)",
         false},
    };
    static const char *const required[] = {"--group", "--topic", NULL};
    int ret = adm_start(&m, argc, argv,
                        "samsa groups delete-offsets [-b HOST:PORT] --group GROUP "
                        "--topic TOPIC[:P,P]...",
                        opts, NOPTS(opts), required);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    adm_parts_t ps = {0};
    for (size_t i = 0; i < topics.n; i++)
        if ((ret = adm_add_topic_arg(&m, topics.v[i], &ps)) != CLI_OK) goto done;
    adm_parts_sort(&ps);
    int32_t node;
    if ((ret = adm_coordinator(&m, group, &node)) != CLI_OK) goto done;
    proto_offset_delete_request_t req;
    proto_offset_delete_request_init(&req);
    req.group_id = sm_str_from(group);
    proto_offset_delete_request_offset_delete_request_topic_t *ts =
        sm_arena_calloc(&m.a, ps.n + 1, sizeof(*ts));
    proto_offset_delete_request_offset_delete_request_partition_t *pv =
        sm_arena_calloc(&m.a, ps.n + 1, sizeof(*pv));
    ret = CLI_FAIL;
    if (!ts || !pv) goto done;
    req.topics.v = ts;
    for (size_t i = 0; i < ps.n; i++) {
        if (req.topics.n == 0 || !sm_str_eq(ts[req.topics.n - 1].name, ps.v[i].topic)) {
            ts[req.topics.n].name = ps.v[i].topic;
            ts[req.topics.n].partitions.v = &pv[i];
            req.topics.n++;
        }
        pv[i].partition_index = ps.v[i].partition;
        ts[req.topics.n - 1].partitions.n++;
    }
    proto_offset_delete_response_t resp;
    char what[300];
    snprintf(what, sizeof(what), "group '%s'", group);
    int rc = kc_call(&m.kc, node, PROTO_OFFSET_DELETE_REQUEST_API_KEY, 0, &req, &resp, &m.a, NULL);
    char msg[400];
    int16_t top = rc == SM_OK ? resp.error_code : 0;
    if (adm_check_one(&m, rc, what, "OffsetDelete", 1, top,
                      group_error_text(top, group, msg, sizeof(msg))) != CLI_OK)
        goto done;
    int failed = 0;
    out_json_t j;
    out_table_t t;
    static const char *const hdr[] = {"TOPIC", "PARTITION", "STATUS"};
    oj_init(&j, stdout);
    out_table_init(&t, 3, hdr);
    if (m.c.json) oj_arr(&j);
    for (int32_t i = 0; i < resp.topics.n; i++)
        for (int32_t k = 0; k < resp.topics.v[i].partitions.n; k++) {
            int16_t code = resp.topics.v[i].partitions.v[k].error_code;
            failed += code != PROTO_ERR_NONE;
            if (m.c.json) {
                oj_obj(&j);
                oj_ksstr(&j, "topic", resp.topics.v[i].name);
                oj_kint(&j, "partition", resp.topics.v[i].partitions.v[k].partition_index);
                oj_kstr(&j, "error", code ? proto_error_name(code) : NULL);
                oj_obj_end(&j);
            } else {
                out_table_str(&t, resp.topics.v[i].name);
                out_table_cell(&t, "%d", resp.topics.v[i].partitions.v[k].partition_index);
                out_table_cell(&t, "%s", code ? proto_error_name(code) : "Successful");
            }
        }
    if (m.c.json)
        oj_arr_end(&j);
    else
        out_table_print(&t, stdout);
    out_table_free(&t);
    ret = failed ? CLI_FAIL : CLI_OK;
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

int cli_groups(int argc, char **argv) {
    static const adm_sub_t subs[] = {
        {"list", groups_list, "list consumer groups and their states"},
        {"describe", groups_describe, "offsets and lag per partition, members, or state"},
        {"delete", groups_delete, "delete consumer groups that have no members"},
        {"delete-offsets", groups_delete_offsets, "delete a group's committed offsets of topics"},
        {"reset-offsets", adm_groups_reset_offsets, "plan or (--execute) reset a group's offsets"},
    };
    return adm_dispatch(argc, argv, "groups", subs, sizeof(subs) / sizeof(subs[0]));
}
