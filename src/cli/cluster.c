/*
 * samsa cluster describe: the cluster id, the controller, the brokers (fenced
 * ones marked), the metadata quorum (leader, epoch, high watermark, each
 * voter's and observer's lag) and, with --api-versions, the API versions the
 * bootstrap broker supports. Uses DescribeCluster (KIP-700; v2 lists fenced
 * brokers) with a fallback to Metadata, and DescribeQuorum when served.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/adm_args.h"
#include "cli/cli.h"
#include "cli/out.h"

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

/* The cluster as either answer gives it. */
typedef struct cluster_view {
    sm_str_t cluster_id;
    int32_t controller_id;
    int32_t n;
    int32_t *ids;
    sm_str_t *hosts;
    int32_t *ports;
    sm_str_t *racks;
    bool *fenced;
    bool have_quorum;
    proto_describe_quorum_response_partition_data_t quorum;
} cluster_view_t;

static int view_alloc(adm_cmd_t *m, cluster_view_t *cv, int32_t n) {
    size_t k = n > 0 ? (size_t)n : 1;
    cv->n = n > 0 ? n : 0;
    cv->ids = sm_arena_calloc(&m->a, k, sizeof(*cv->ids));
    cv->hosts = sm_arena_calloc(&m->a, k, sizeof(*cv->hosts));
    cv->ports = sm_arena_calloc(&m->a, k, sizeof(*cv->ports));
    cv->racks = sm_arena_calloc(&m->a, k, sizeof(*cv->racks));
    cv->fenced = sm_arena_calloc(&m->a, k, sizeof(*cv->fenced));
    return cv->ids && cv->hosts && cv->ports && cv->racks && cv->fenced ? CLI_OK : CLI_FAIL;
}

/* Fills cv from a DescribeCluster or Metadata response (their broker arrays
 * differ in the generated type and the id field's name); sets rc to CLI_OK
 * or CLI_FAIL. */
#define VIEW_FILL(m, cv, resp, id_field, rc)                                                       \
    do {                                                                                           \
        (rc) = CLI_FAIL;                                                                           \
        (cv)->cluster_id = (resp).cluster_id;                                                      \
        (cv)->controller_id = (resp).controller_id;                                                \
        if (view_alloc((m), (cv), (resp).brokers.n) != CLI_OK) break;                              \
        for (int32_t i_ = 0; i_ < (cv)->n; i_++) {                                                 \
            (cv)->ids[i_] = (resp).brokers.v[i_].id_field;                                         \
            (cv)->hosts[i_] = (resp).brokers.v[i_].host;                                           \
            (cv)->ports[i_] = (resp).brokers.v[i_].port;                                           \
            (cv)->racks[i_] = (resp).brokers.v[i_].rack;                                           \
        }                                                                                          \
        (rc) = CLI_OK;                                                                             \
    } while (0)

static int fetch_view(adm_cmd_t *m, cluster_view_t *cv) {
    if (kc_api_max(&m->kc, PROTO_DESCRIBE_CLUSTER_REQUEST_API_KEY) >= 0) {
        proto_describe_cluster_request_t req;
        proto_describe_cluster_request_init(&req);
        req.endpoint_type = 1; /* brokers */
        req.include_fenced_brokers = true;
        proto_describe_cluster_response_t resp;
        int rc = kc_call(&m->kc, -1, PROTO_DESCRIBE_CLUSTER_REQUEST_API_KEY, 2, &req, &resp, &m->a,
                         NULL);
        if (adm_check_one(m, rc, "cluster", "DescribeCluster", 1, rc == SM_OK ? resp.error_code : 0,
                          rc == SM_OK ? resp.error_message : SM_STR_NULL) != CLI_OK)
            return CLI_FAIL;
        VIEW_FILL(m, cv, resp, broker_id, rc);
        for (int32_t i = 0; rc == CLI_OK && i < cv->n; i++)
            cv->fenced[i] = resp.brokers.v[i].is_fenced;
        return rc;
    }
    static const char *const none[1] = {NULL};
    proto_metadata_response_t md;
    if (kc_metadata(&m->kc, none, 0, &m->a, &md) != SM_OK) {
        cli_error("%s", m->kc.err);
        return CLI_FAIL;
    }
    int rc;
    VIEW_FILL(m, cv, md, node_id, rc);
    return rc;
}

/* The metadata quorum, when the broker serves DescribeQuorum (a failure leaves it out). */
static void fetch_quorum(adm_cmd_t *m, cluster_view_t *cv) {
    if (kc_api_max(&m->kc, PROTO_DESCRIBE_QUORUM_REQUEST_API_KEY) < 0) return;
    proto_describe_quorum_request_t req;
    proto_describe_quorum_request_topic_data_t topic;
    proto_describe_quorum_request_partition_data_t part;
    proto_describe_quorum_request_init(&req);
    memset(&topic, 0, sizeof(topic));
    memset(&part, 0, sizeof(part));
    topic.topic_name = SM_STR_LIT("__cluster_metadata");
    topic.partitions = (proto_describe_quorum_request_partition_data_array_t){1, &part};
    req.topics = (proto_describe_quorum_request_topic_data_array_t){1, &topic};
    proto_describe_quorum_response_t resp;
    if (kc_call(&m->kc, -1, PROTO_DESCRIBE_QUORUM_REQUEST_API_KEY, 2, &req, &resp, &m->a, NULL) !=
            SM_OK ||
        resp.error_code || resp.topics.n != 1 || resp.topics.v[0].partitions.n != 1 ||
        resp.topics.v[0].partitions.v[0].error_code)
        return;
    cv->quorum = resp.topics.v[0].partitions.v[0];
    cv->have_quorum = true;
}

static const char *api_name(int16_t key) {
    const proto_api_desc_t *api = proto_api_lookup(key);
    return api && api->name ? api->name : "Unknown";
}

static void print_json(adm_cmd_t *m, const cluster_view_t *cv, bool versions) {
    out_json_t j;
    oj_init(&j, stdout);
    oj_obj(&j);
    oj_ksstr(&j, "cluster_id", cv->cluster_id);
    oj_kint(&j, "controller_id", cv->controller_id);
    oj_key(&j, "brokers");
    oj_arr(&j);
    for (int32_t i = 0; i < cv->n; i++) {
        oj_obj(&j);
        oj_kint(&j, "id", cv->ids[i]);
        oj_ksstr(&j, "host", cv->hosts[i]);
        oj_kint(&j, "port", cv->ports[i]);
        oj_ksstr(&j, "rack", cv->racks[i]);
        oj_kbool(&j, "fenced", cv->fenced[i]);
        oj_obj_end(&j);
    }
    oj_arr_end(&j);
    if (cv->have_quorum) {
        const proto_describe_quorum_response_partition_data_t *q = &cv->quorum;
        oj_key(&j, "quorum");
        oj_obj(&j);
        oj_kint(&j, "leader_id", q->leader_id);
        oj_kint(&j, "leader_epoch", q->leader_epoch);
        oj_kint(&j, "high_watermark", q->high_watermark);
        for (int kind = 0; kind < 2; kind++) {
            const proto_describe_quorum_response_replica_state_array_t *rs =
                kind ? &q->observers : &q->current_voters;
            oj_key(&j, kind ? "observers" : "voters");
            oj_arr(&j);
            for (int32_t i = 0; i < rs->n; i++) {
                oj_obj(&j);
                oj_kint(&j, "id", rs->v[i].replica_id);
                oj_kint(&j, "log_end_offset", rs->v[i].log_end_offset);
                oj_kint(&j, "lag", q->high_watermark - rs->v[i].log_end_offset);
                oj_kint(&j, "last_fetch_timestamp", rs->v[i].last_fetch_timestamp);
                oj_obj_end(&j);
            }
            oj_arr_end(&j);
        }
        oj_obj_end(&j);
    }
    if (versions) {
        oj_key(&j, "api_versions");
        oj_arr(&j);
        for (int16_t k = 0; k < KC_MAX_API; k++) {
            if (kc_api_max(&m->kc, k) < 0) continue;
            oj_obj(&j);
            oj_kstr(&j, "api", api_name(k));
            oj_kint(&j, "key", k);
            oj_kint(&j, "min", kc_api_min(&m->kc, k));
            oj_kint(&j, "max", kc_api_max(&m->kc, k));
            oj_obj_end(&j);
        }
        oj_arr_end(&j);
    }
    oj_obj_end(&j);
}

static void print_text(adm_cmd_t *m, const cluster_view_t *cv, bool versions) {
    printf("Cluster ID: %.*s\n", cv->cluster_id.len > 0 ? (int)cv->cluster_id.len : 1,
           cv->cluster_id.len > 0 ? cv->cluster_id.ptr : "-");
    if (cv->controller_id >= 0)
        printf("Controller ID: %d\n\n", cv->controller_id);
    else
        printf("Controller ID: -\n\n");
    static const char *const hdr[] = {"BROKER", "HOST", "PORT", "RACK", "STATUS"};
    out_table_t t;
    out_table_init(&t, 5, hdr);
    for (int32_t i = 0; i < cv->n; i++) {
        out_table_cell(&t, "%d", cv->ids[i]);
        out_table_str(&t, cv->hosts[i]);
        out_table_cell(&t, "%d", cv->ports[i]);
        out_table_str(&t, cv->racks[i]);
        out_table_cell(&t, "%s", cv->fenced[i] ? "fenced" : "serving");
    }
    out_table_print(&t, stdout);
    out_table_free(&t);
    if (cv->have_quorum) {
        const proto_describe_quorum_response_partition_data_t *q = &cv->quorum;
        printf("\nMetadata quorum: leader %d, epoch %d, high watermark %lld\n", q->leader_id,
               q->leader_epoch, (long long)q->high_watermark);
        static const char *const qhdr[] = {"NODE", "ROLE", "LOG END", "LAG"};
        out_table_init(&t, 4, qhdr);
        for (int kind = 0; kind < 2; kind++) {
            const proto_describe_quorum_response_replica_state_array_t *rs =
                kind ? &q->observers : &q->current_voters;
            for (int32_t i = 0; i < rs->n; i++) {
                int32_t id = rs->v[i].replica_id;
                out_table_cell(&t, "%d", id);
                out_table_cell(&t, "%s", kind ? "observer" : id == q->leader_id ? "leader" : "voter");
                out_table_cell(&t, "%lld", (long long)rs->v[i].log_end_offset);
                out_table_cell(&t, "%lld", (long long)(q->high_watermark - rs->v[i].log_end_offset));
            }
        }
        out_table_print(&t, stdout);
        out_table_free(&t);
    }
    if (!versions) return;
    printf("\nAPI versions of %s:\n", m->kc.boot.addr);
    static const char *const vhdr[] = {"API", "KEY", "MIN", "MAX"};
    out_table_init(&t, 4, vhdr);
    for (int16_t k = 0; k < KC_MAX_API; k++) {
        if (kc_api_max(&m->kc, k) < 0) continue;
        out_table_cell(&t, "%s", api_name(k));
        out_table_cell(&t, "%d", k);
        out_table_cell(&t, "%d", kc_api_min(&m->kc, k));
        out_table_cell(&t, "%d", kc_api_max(&m->kc, k));
    }
    out_table_print(&t, stdout);
    out_table_free(&t);
}

static int cluster_describe(int argc, char **argv) {
    adm_cmd_t m;
    bool versions = false;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--api-versions", ADM_FLAG, &versions, "", "also list the supported API versions", false},
    };
    int ret = adm_start(&m, argc, argv, "samsa cluster describe [-b HOST:PORT] [--api-versions]",
                        opts, NOPTS(opts), NULL);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    cluster_view_t cv;
    memset(&cv, 0, sizeof(cv));
    if ((ret = fetch_view(&m, &cv)) != CLI_OK) goto done;
    fetch_quorum(&m, &cv);
    if (m.c.json)
        print_json(&m, &cv, versions);
    else
        print_text(&m, &cv, versions);
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

int cli_cluster(int argc, char **argv) {
    static const adm_sub_t subs[] = {
        {"describe", cluster_describe, "cluster id, controller, brokers, quorum, API versions"},
    };
    return adm_dispatch(argc, argv, "cluster", subs, sizeof(subs) / sizeof(subs[0]));
}
