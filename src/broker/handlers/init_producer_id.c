/*
 * InitProducerId for idempotent producers: always a new producer id from the blocks the
 * controller allocates, epoch 0, as Kafka's transaction coordinator answers a request
 * without a transactional id, even when it names the producer's current id and epoch
 * (librdkafka does so to bump its epoch, KIP-360): the new id is unknown to every
 * partition, so its first batch is accepted at any sequence wherever it goes. Transactional
 * ids go to the transaction coordinator (txn/coordinator.c), which bumps epochs.
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
