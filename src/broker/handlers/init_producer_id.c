/*
 * InitProducerId for idempotent producers: a new producer id from the blocks
 * the controller allocates, epoch 0; a producer that names its current id and
 * epoch (KIP-360, v3+) gets the same id with the epoch bumped. Transactional
 * ids go to the transaction coordinator (txn/coordinator.c).
 */
#include "broker/handlers/handlers.h"
#include "protocol/errors.h"
#include "txn/coordinator.h"

int broker_handle_init_producer_id(broker_req_t *r) {
    proto_init_producer_id_request_t *req = broker_body(r);
    proto_init_producer_id_response_t *resp = r->resp;
    resp->producer_id = -1;
    resp->producer_epoch = -1;
    if (req->transactional_id.len >= 0) return txn_handle_init_producer_id(r);
    if (r->version >= 3 && req->producer_id >= 0 && req->producer_epoch >= 0 &&
        req->producer_epoch < INT16_MAX - 1) {
        resp->producer_id = req->producer_id;
        resp->producer_epoch = (int16_t)(req->producer_epoch + 1);
        resp->error_code = PROTO_ERR_NONE;
        return BROKER_RESPOND;
    }
    int64_t pid;
    if (broker_next_producer_id(r->b, &pid) != SM_OK) {
        resp->error_code = PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
        return BROKER_RESPOND;
    }
    resp->producer_id = pid;
    resp->producer_epoch = 0;
    resp->error_code = PROTO_ERR_NONE;
    return BROKER_RESPOND;
}
