/*
 * One handler per API, each in broker/handlers/<api>.c. A handler reads the
 * decoded request (broker_body(r)), fills the initialised response (r->resp)
 * and returns a broker_outcome.
 */
#ifndef BROKER_HANDLERS_H
#define BROKER_HANDLERS_H

#include "broker/broker.h"

int broker_handle_api_versions(broker_req_t *r);
/* Feature levels: handlers/features.c. Fills ApiVersions' feature fields. */
int broker_api_versions_features(broker_req_t *r);
int broker_handle_update_features(broker_req_t *r);
int broker_handle_metadata(broker_req_t *r);
int broker_handle_produce(broker_req_t *r);
int broker_handle_fetch(broker_req_t *r);
int broker_handle_list_offsets(broker_req_t *r);
int broker_handle_create_topics(broker_req_t *r);
int broker_handle_delete_topics(broker_req_t *r);
int broker_handle_init_producer_id(broker_req_t *r);
int broker_handle_offset_for_leader_epoch(broker_req_t *r);
/* Admin */
int broker_handle_describe_configs(broker_req_t *r);
int broker_handle_alter_configs(broker_req_t *r);
int broker_handle_incremental_alter_configs(broker_req_t *r);
int broker_handle_create_partitions(broker_req_t *r);
int broker_handle_delete_records(broker_req_t *r);
int broker_handle_describe_cluster(broker_req_t *r);
int broker_handle_describe_quorum(broker_req_t *r);
int broker_handle_add_raft_voter(broker_req_t *r);
int broker_handle_remove_raft_voter(broker_req_t *r);
int broker_handle_update_raft_voter(broker_req_t *r);
int broker_handle_describe_log_dirs(broker_req_t *r);
int broker_handle_elect_leaders(broker_req_t *r);
int broker_handle_alter_partition_reassignments(broker_req_t *r);
int broker_handle_list_partition_reassignments(broker_req_t *r);
int broker_handle_describe_producers(broker_req_t *r);
int broker_handle_describe_topic_partitions(broker_req_t *r);
/* Client quotas (stored, not enforced): handlers/client_quotas.c */
int broker_handle_describe_client_quotas(broker_req_t *r);
int broker_handle_alter_client_quotas(broker_req_t *r);
/* Security without an authorizer or SCRAM: handlers/security.c */
int broker_handle_describe_acls(broker_req_t *r);
int broker_handle_create_acls(broker_req_t *r);
int broker_handle_delete_acls(broker_req_t *r);
int broker_handle_describe_user_scram_credentials(broker_req_t *r);
int broker_handle_alter_user_scram_credentials(broker_req_t *r);
/* Consumer groups and offsets: src/group/ (classic.c, consumer.c, offsets.c, admin.c) */

int broker_handle_find_coordinator(broker_req_t *r);
int broker_handle_join_group(broker_req_t *r);
int broker_handle_sync_group(broker_req_t *r);
int broker_handle_heartbeat(broker_req_t *r);
int broker_handle_leave_group(broker_req_t *r);
int broker_handle_offset_commit(broker_req_t *r);
int broker_handle_offset_fetch(broker_req_t *r);
int broker_handle_offset_delete(broker_req_t *r);
int broker_handle_list_groups(broker_req_t *r);
int broker_handle_describe_groups(broker_req_t *r);
int broker_handle_delete_groups(broker_req_t *r);
int broker_handle_consumer_group_heartbeat(broker_req_t *r);
int broker_handle_consumer_group_describe(broker_req_t *r);
int broker_handle_txn_offset_commit(broker_req_t *r);
/* Transactions: src/txn/coordinator.c */
int broker_handle_add_partitions_to_txn(broker_req_t *r);
int broker_handle_add_offsets_to_txn(broker_req_t *r);
int broker_handle_end_txn(broker_req_t *r);
int broker_handle_write_txn_markers(broker_req_t *r);
int broker_handle_describe_transactions(broker_req_t *r);
int broker_handle_list_transactions(broker_req_t *r);

#endif
