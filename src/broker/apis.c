/*
 * The served API table (see apis.h): the version ranges a Kafka 4.4 broker
 * advertises. Kafka 4.4 advertises Produce from v0 so that old librdkafka
 * versions keep compression on, yet its Produce schema starts at v3: a v0-v2
 * request closes the connection; we do the same.
 */
#include "broker/apis.h"

#include <stddef.h>

#include "broker/handlers/handlers.h"

static const broker_api_t apis[] = {
    {0, 0, 13, broker_handle_produce},
    {1, 4, 18, broker_handle_fetch},
    {2, 1, 11, broker_handle_list_offsets},
    {3, 0, 13, broker_handle_metadata},
    {8, 2, 10, broker_handle_offset_commit},
    {9, 1, 10, broker_handle_offset_fetch},
    {10, 0, 6, broker_handle_find_coordinator},
    {11, 0, 9, broker_handle_join_group},
    {12, 0, 4, broker_handle_heartbeat},
    {13, 0, 5, broker_handle_leave_group},
    {14, 0, 5, broker_handle_sync_group},
    {15, 0, 6, broker_handle_describe_groups},
    {16, 0, 5, broker_handle_list_groups},
    {18, 0, 5, broker_handle_api_versions},
    {19, 2, 7, broker_handle_create_topics},
    {20, 1, 6, broker_handle_delete_topics},
    {21, 0, 2, broker_handle_delete_records},
    {22, 0, 5, broker_handle_init_producer_id},
    {23, 2, 4, broker_handle_offset_for_leader_epoch},
    {24, 0, 5, broker_handle_add_partitions_to_txn},
    {25, 0, 4, broker_handle_add_offsets_to_txn},
    {26, 0, 5, broker_handle_end_txn},
    {27, 1, 2, broker_handle_write_txn_markers},
    {28, 0, 6, broker_handle_txn_offset_commit},
    {29, 1, 3, broker_handle_describe_acls},
    {30, 1, 3, broker_handle_create_acls},
    {31, 1, 3, broker_handle_delete_acls},
    {32, 1, 4, broker_handle_describe_configs},
    {33, 0, 2, broker_handle_alter_configs},
    {35, 1, 5, broker_handle_describe_log_dirs},
    {37, 0, 3, broker_handle_create_partitions},
    {42, 0, 3, broker_handle_delete_groups},
    {43, 0, 2, broker_handle_elect_leaders},
    {44, 0, 1, broker_handle_incremental_alter_configs},
    {45, 0, 1, broker_handle_alter_partition_reassignments},
    {46, 0, 0, broker_handle_list_partition_reassignments},
    {47, 0, 0, broker_handle_offset_delete},
    {48, 0, 1, broker_handle_describe_client_quotas},
    {49, 0, 1, broker_handle_alter_client_quotas},
    {50, 0, 0, broker_handle_describe_user_scram_credentials},
    {51, 0, 0, broker_handle_alter_user_scram_credentials},
    {55, 0, 2, broker_handle_describe_quorum},
    {57, 0, 2, broker_handle_update_features},
    {60, 0, 2, broker_handle_describe_cluster},
    {61, 0, 0, broker_handle_describe_producers},
    {65, 0, 0, broker_handle_describe_transactions},
    {66, 0, 2, broker_handle_list_transactions},
    {68, 0, 1, broker_handle_consumer_group_heartbeat},
    {69, 0, 1, broker_handle_consumer_group_describe},
    {75, 0, 0, broker_handle_describe_topic_partitions},
    {80, 0, 1, broker_handle_add_raft_voter},
    {81, 0, 0, broker_handle_remove_raft_voter},
    {82, 0, 0, broker_handle_update_raft_voter},
};

const broker_api_t *broker_api_find(int16_t api_key) {
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
        if (apis[i].api_key == api_key) return &apis[i];
    return NULL;
}

const broker_api_t *broker_apis(size_t *count) {
    *count = sizeof(apis) / sizeof(apis[0]);
    return apis;
}
