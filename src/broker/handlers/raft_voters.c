/*
 * AddRaftVoter, RemoveRaftVoter and UpdateRaftVoter (KIP-853) on a single node: its metadata
 * log is a static one-voter quorum (kraft.version 0), so a change is refused as Kafka refuses
 * it there (UNSUPPORTED_VERSION). In a cluster the requests are relayed to the Raft leader
 * (dispatch.c), which decides them (cluster/voters.c).
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"

#define STATIC_QUORUM "This node's quorum is static (kraft.version 0): voters cannot change."

int broker_handle_add_raft_voter(broker_req_t *r) {
    proto_add_raft_voter_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_UNSUPPORTED_VERSION;
    resp->error_message = SM_STR_LIT(STATIC_QUORUM);
    return SM_OK;
}

int broker_handle_remove_raft_voter(broker_req_t *r) {
    proto_remove_raft_voter_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_UNSUPPORTED_VERSION;
    resp->error_message = SM_STR_LIT(STATIC_QUORUM);
    return SM_OK;
}

int broker_handle_update_raft_voter(broker_req_t *r) {
    proto_update_raft_voter_response_t *resp = r->resp;
    resp->error_code = PROTO_ERR_UNSUPPORTED_VERSION;
    return SM_OK;
}
