/*
 * samsa transactions list / describe / abort: the transactional ids the
 * coordinators know (ListTransactions, KIP-664), one id's state, producer and
 * partitions (DescribeTransactions), and the abort of a hanging transaction
 * on one partition by writing its ABORT marker (WriteTxnMarkers), as Kafka's
 * kafka-transactions.sh does. The producer to abort is named, or found from
 * the partition's open transactions (DescribeProducers) by --start-offset.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/adm_args.h"
#include "cli/cli.h"
#include "cli/out.h"

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

static int tx_list(int argc, char **argv) {
    adm_cmd_t m;
    adm_list_t states = {0};
    int64_t pid = -1, duration = -1;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--state", ADM_LIST, &states, "STATE", "only transactions in STATE (repeatable: Ongoing, "
                                                "PrepareCommit, CompleteAbort, ...)", false},
        {"--producer-id", ADM_INT, &pid, "ID", "only this producer id", false},
        {"--duration-ms", ADM_INT, &duration, "MS", "only transactions open longer than MS", false},
    };
    int ret = adm_start(&m, argc, argv, "samsa transactions list [--state STATE]... [--producer-id ID]",
                        opts, NOPTS(opts), NULL);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    proto_list_transactions_request_t req;
    proto_list_transactions_request_init(&req);
    req.state_filters.v = sm_arena_calloc(&m.a, states.n + 1, sizeof(sm_str_t));
    for (size_t i = 0; req.state_filters.v && i < states.n; i++)
        req.state_filters.v[req.state_filters.n++] = sm_str_from(states.v[i]);
    int64_t pids[1] = {pid};
    if (pid >= 0) req.producer_id_filters = (sm_i64_array_t){1, pids};
    req.duration_filter = duration;
    proto_list_transactions_response_t resp;
    int rc = kc_call(&m.kc, -1, PROTO_LIST_TRANSACTIONS_REQUEST_API_KEY, 1, &req, &resp, &m.a, NULL);
    if ((ret = adm_check_one(&m, rc, "transactions", "ListTransactions", 1,
                             rc == SM_OK ? resp.error_code : 0, SM_STR_NULL)) != CLI_OK)
        goto done;
    for (int32_t i = 0; i < resp.unknown_state_filters.n; i++)
        cli_error("warning: unknown state '%.*s'", (int)resp.unknown_state_filters.v[i].len,
                  resp.unknown_state_filters.v[i].ptr);
    if (m.c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        oj_arr(&j);
        for (int32_t i = 0; i < resp.transaction_states.n; i++) {
            oj_obj(&j);
            oj_ksstr(&j, "transactional_id", resp.transaction_states.v[i].transactional_id);
            oj_kint(&j, "producer_id", resp.transaction_states.v[i].producer_id);
            oj_ksstr(&j, "state", resp.transaction_states.v[i].transaction_state);
            oj_obj_end(&j);
        }
        oj_arr_end(&j);
    } else {
        static const char *const hdr[] = {"TRANSACTIONAL ID", "PRODUCER ID", "STATE"};
        out_table_t t;
        out_table_init(&t, 3, hdr);
        for (int32_t i = 0; i < resp.transaction_states.n; i++) {
            out_table_str(&t, resp.transaction_states.v[i].transactional_id);
            out_table_cell(&t, "%lld", (long long)resp.transaction_states.v[i].producer_id);
            out_table_str(&t, resp.transaction_states.v[i].transaction_state);
        }
        out_table_print(&t, stdout);
        out_table_free(&t);
    }
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

static int tx_describe(int argc, char **argv) {
    adm_cmd_t m;
    const char *id = NULL;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--transactional-id", ADM_STR, &id, "ID", "the transactional id (required)", false},
    };
    static const char *const required[] = {"--transactional-id", NULL};
    int ret = adm_start(&m, argc, argv, "samsa transactions describe --transactional-id ID", opts,
                        NOPTS(opts), required);
    if (ret != CLI_OK) goto done;
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    proto_describe_transactions_request_t req;
    proto_describe_transactions_request_init(&req);
    sm_str_t ids[1] = {sm_str_from(id)};
    req.transactional_ids = (sm_str_array_t){1, ids};
    proto_describe_transactions_response_t resp;
    int rc = kc_call(&m.kc, -1, PROTO_DESCRIBE_TRANSACTIONS_REQUEST_API_KEY, 0, &req, &resp, &m.a,
                     NULL);
    const proto_describe_transactions_response_transaction_state_t *s =
        rc == SM_OK && resp.transaction_states.n == 1 ? &resp.transaction_states.v[0] : NULL;
    if ((ret = adm_check_one(&m, rc, id, "DescribeTransactions", resp.transaction_states.n,
                             s ? s->error_code : 0, SM_STR_NULL)) != CLI_OK)
        goto done;
    if (m.c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        oj_obj(&j);
        oj_ksstr(&j, "transactional_id", s->transactional_id);
        oj_kint(&j, "producer_id", s->producer_id);
        oj_kint(&j, "producer_epoch", s->producer_epoch);
        oj_ksstr(&j, "state", s->transaction_state);
        oj_kint(&j, "timeout_ms", s->transaction_timeout_ms);
        oj_kint(&j, "start_time_ms", s->transaction_start_time_ms);
        oj_key(&j, "partitions");
        oj_arr(&j);
        for (int32_t i = 0; i < s->topics.n; i++)
            for (int32_t k = 0; k < s->topics.v[i].partitions.n; k++) {
                oj_obj(&j);
                oj_ksstr(&j, "topic", s->topics.v[i].topic);
                oj_kint(&j, "partition", s->topics.v[i].partitions.v[k]);
                oj_obj_end(&j);
            }
        oj_arr_end(&j);
        oj_obj_end(&j);
        goto done;
    }
    static const char *const hdr[] = {"TRANSACTIONAL ID", "PRODUCER ID", "EPOCH", "STATE",
                                      "TIMEOUT MS",       "START MS",    "PARTITIONS"};
    out_table_t t;
    out_table_init(&t, 7, hdr);
    out_table_str(&t, s->transactional_id);
    out_table_cell(&t, "%lld", (long long)s->producer_id);
    out_table_cell(&t, "%d", s->producer_epoch);
    out_table_str(&t, s->transaction_state);
    out_table_cell(&t, "%d", s->transaction_timeout_ms);
    out_table_cell(&t, "%lld", (long long)s->transaction_start_time_ms);
    char parts[1024];
    size_t used = 0;
    parts[0] = 0;
    for (int32_t i = 0; i < s->topics.n; i++)
        for (int32_t k = 0; k < s->topics.v[i].partitions.n && used < sizeof(parts); k++)
            used += (size_t)snprintf(parts + used, sizeof(parts) - used, "%s%.*s-%d",
                                     used ? "," : "", (int)s->topics.v[i].topic.len,
                                     s->topics.v[i].topic.ptr, s->topics.v[i].partitions.v[k]);
    out_table_cell(&t, "%s", used ? parts : "-");
    out_table_print(&t, stdout);
    out_table_free(&t);
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

/* The producer whose open transaction on topic-partition began at start_offset. */
static int find_producer(adm_cmd_t *m, const char *topic, int32_t partition, int64_t start_offset,
                         int64_t *pid, int16_t *epoch, int32_t *coord_epoch) {
    proto_describe_producers_request_t req;
    proto_describe_producers_request_init(&req);
    proto_describe_producers_request_topic_request_t tr;
    memset(&tr, 0, sizeof(tr));
    tr.name = sm_str_from(topic);
    int32_t parts[1] = {partition};
    tr.partition_indexes = (sm_i32_array_t){1, parts};
    req.topics = (proto_describe_producers_request_topic_request_array_t){1, &tr};
    proto_describe_producers_response_t resp;
    int rc = kc_call(&m->kc, -1, PROTO_DESCRIBE_PRODUCERS_REQUEST_API_KEY, 0, &req, &resp, &m->a, NULL);
    const proto_describe_producers_response_partition_response_t *p =
        rc == SM_OK && resp.topics.n == 1 && resp.topics.v[0].partitions.n == 1
            ? &resp.topics.v[0].partitions.v[0]
            : NULL;
    if (adm_check_one(m, rc, topic, "DescribeProducers", p ? 1 : 0, p ? p->error_code : 0,
                      p ? p->error_message : SM_STR_NULL) != CLI_OK)
        return CLI_FAIL;
    for (int32_t i = 0; i < p->active_producers.n; i++) {
        if (p->active_producers.v[i].current_txn_start_offset != start_offset) continue;
        *pid = p->active_producers.v[i].producer_id;
        *epoch = (int16_t)p->active_producers.v[i].producer_epoch;
        *coord_epoch = p->active_producers.v[i].coordinator_epoch;
        return CLI_OK;
    }
    cli_error("%s-%d: no open transaction starts at offset %lld", topic, partition,
              (long long)start_offset);
    return CLI_FAIL;
}

static int tx_abort(int argc, char **argv) {
    adm_cmd_t m;
    const char *topic = NULL;
    int64_t partition = -1, start = -1, pid = -1, epoch = -1, coord_epoch = -1;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--topic", ADM_STR, &topic, "TOPIC", "the partition's topic (required)", false},
        {"--partition", ADM_INT, &partition, "N", "the partition (required)", false},
        {"--start-offset", ADM_INT, &start, "OFFSET",
         "the first offset of the transaction to abort (finds its producer)", false},
        {"--producer-id", ADM_INT, &pid, "ID", "or name the producer", false},
        {"--producer-epoch", ADM_INT, &epoch, "EPOCH", "with --producer-id", false},
        {"--coordinator-epoch", ADM_INT, &coord_epoch, "EPOCH", "with --producer-id", false},
    };
    static const char *const required[] = {"--topic", "--partition", NULL};
    int ret = adm_start(&m, argc, argv,
                        "samsa transactions abort --topic T --partition N "
                        "(--start-offset OFFSET | --producer-id ID --producer-epoch E "
                        "--coordinator-epoch C)",
                        opts, NOPTS(opts), required);
    if (ret != CLI_OK) goto done;
    if (start < 0 && (pid < 0 || epoch < 0 || coord_epoch < 0)) {
        cli_error("give --start-offset, or --producer-id, --producer-epoch and --coordinator-epoch");
        ret = CLI_USAGE;
        goto done;
    }
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    int16_t e16 = (int16_t)epoch;
    int32_t ce = (int32_t)coord_epoch;
    if (start >= 0 &&
        (ret = find_producer(&m, topic, (int32_t)partition, start, &pid, &e16, &ce)) != CLI_OK)
        goto done;
    proto_write_txn_markers_request_t req;
    proto_write_txn_markers_request_init(&req);
    proto_write_txn_markers_request_writable_txn_marker_t mk;
    memset(&mk, 0, sizeof(mk));
    proto_write_txn_markers_request_writable_txn_marker_topic_t mt;
    memset(&mt, 0, sizeof(mt));
    int32_t parts[1] = {(int32_t)partition};
    mt.name = sm_str_from(topic);
    mt.partition_indexes = (sm_i32_array_t){1, parts};
    mk.producer_id = pid;
    mk.producer_epoch = e16;
    mk.transaction_result = false;
    mk.coordinator_epoch = ce;
    mk.topics = (proto_write_txn_markers_request_writable_txn_marker_topic_array_t){1, &mt};
    req.markers = (proto_write_txn_markers_request_writable_txn_marker_array_t){1, &mk};
    proto_write_txn_markers_response_t resp;
    int rc = kc_call(&m.kc, -1, PROTO_WRITE_TXN_MARKERS_REQUEST_API_KEY, 1, &req, &resp, &m.a, NULL);
    bool shaped = rc == SM_OK && resp.markers.n == 1 && resp.markers.v[0].topics.n == 1 &&
                  resp.markers.v[0].topics.v[0].partitions.n == 1;
    if ((ret = adm_check_one(&m, rc, topic, "WriteTxnMarkers", shaped ? 1 : 0,
                             shaped ? resp.markers.v[0].topics.v[0].partitions.v[0].error_code : 0,
                             SM_STR_NULL)) != CLI_OK)
        goto done;
    printf("Aborted the transaction of producer %lld (epoch %d) on %s-%lld\n", (long long)pid, e16,
           topic, (long long)partition);
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}

int cli_transactions(int argc, char **argv) {
    static const adm_sub_t subs[] = {
        {"list", tx_list, "transactional ids, their producers and states"},
        {"describe", tx_describe, "one transactional id: producer, epoch, state, partitions"},
        {"abort", tx_abort, "abort a hanging transaction on one partition (ABORT marker)"},
    };
    return adm_dispatch(argc, argv, "transactions", subs, sizeof(subs) / sizeof(subs[0]));
}
