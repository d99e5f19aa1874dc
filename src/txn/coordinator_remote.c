/*
 * The transaction coordinator's requests to other brokers of a cluster: the
 * markers of a transaction to the leaders of its partitions (WriteTxnMarkers),
 * and a partition leader's check (KIP-890 part 1, verify only) or addition
 * (part 2) of a partition to a transaction whose coordinator is another broker
 * (AddPartitionsToTxn v4+, the broker-to-broker form). Blocking, one
 * connection per call over the inter-broker listener (kclient): for the marker
 * thread and the produce path, which already wait for fsyncs. Not the local
 * side (coordinator.c).
 */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker.h"
#include "client/kclient.h"
#include "metadata/image.h"
#include "protocol/errors.h"
#include "protocol/gen/add_partitions_to_txn_request.h"
#include "protocol/gen/add_partitions_to_txn_response.h"
#include "protocol/gen/write_txn_markers_request.h"
#include "protocol/gen/write_txn_markers_response.h"
#include "txn/coordinator.h"

#define API_ADD_PARTITIONS_TO_TXN 24
#define API_WRITE_TXN_MARKERS 27
#define REQUEST_TIMEOUT_MS 30000 /* Kafka's request.timeout.ms default */

/* "host:port" of node's endpoint on the inter-broker listener
 * (inter.broker.listener.name, else the name of this broker's first
 * listener). */
static int node_address(broker_t *b, int32_t node, char *out, size_t cap) {
    const char *name = sm_config_str(b->cfg, "inter.broker.listener.name");
    if (!name || !*name) name = b->nlisteners ? b->listeners[0].name : "PLAINTEXT";
    int rc = SM_ERR_NOTFOUND;
    meta_image_rdlock(&b->image);
    const meta_broker_t *bk = meta_image_broker(&b->image, node);
    const meta_endpoint_t *e = bk && !bk->fenced ? meta_broker_endpoint(bk, name) : NULL;
    if (e) {
        snprintf(out, cap, "%s:%d", e->host, e->port);
        rc = SM_OK;
    }
    meta_image_unlock(&b->image);
    return rc;
}

/* One request to node, its answer decoded into resp (arena a). */
static int call_node(broker_t *b, int32_t node, int16_t api, int16_t max_version, const void *req,
                     void *resp, sm_arena_t *a) {
    char addr[300];
    int rc = node_address(b, node, addr, sizeof(addr));
    if (rc) return rc;
    kc_client_t kc;
    if ((rc = kc_open(&kc, addr, REQUEST_TIMEOUT_MS)) == SM_OK)
        rc = kc_call(&kc, -1, api, max_version, req, resp, a, NULL);
    if (rc) sm_debug("txn", "request %d to broker %d (%s) failed: %s", api, node, addr, kc.err);
    kc_close(&kc);
    return rc;
}

int16_t txn_remote_write_marker(broker_t *b, int32_t node, sm_str_t topic, int32_t partition,
                                int64_t producer_id, int16_t epoch, int32_t coordinator_epoch,
                                bool commit) {
    proto_write_txn_markers_request_t q;
    proto_write_txn_markers_request_init(&q);
    proto_write_txn_markers_request_writable_txn_marker_t mk;
    proto_write_txn_markers_request_writable_txn_marker_topic_t t;
    memset(&mk, 0, sizeof(mk));
    memset(&t, 0, sizeof(t));
    t.name = topic;
    t.partition_indexes = (sm_i32_array_t){1, &partition};
    mk.producer_id = producer_id;
    mk.producer_epoch = epoch;
    mk.transaction_result = commit;
    mk.coordinator_epoch = coordinator_epoch;
    mk.topics = (proto_write_txn_markers_request_writable_txn_marker_topic_array_t){1, &t};
    q.markers = (proto_write_txn_markers_request_writable_txn_marker_array_t){1, &mk};
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_write_txn_markers_response_t resp;
    /* A failed call is retried by the marker thread as a leader change would be. */
    int16_t err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    if (call_node(b, node, API_WRITE_TXN_MARKERS, 1, &q, &resp, &a) == SM_OK &&
        resp.markers.n == 1 && resp.markers.v[0].topics.n == 1 &&
        resp.markers.v[0].topics.v[0].partitions.n == 1)
        err = resp.markers.v[0].topics.v[0].partitions.v[0].error_code;
    sm_arena_free(&a);
    return err;
}

int16_t txn_remote_add_partition(broker_t *b, int32_t node, sm_str_t id, int64_t producer_id,
                                 int16_t epoch, sm_str_t topic, int32_t partition,
                                 bool verify_only) {
    proto_add_partitions_to_txn_request_t q;
    proto_add_partitions_to_txn_request_init(&q);
    proto_add_partitions_to_txn_request_add_partitions_to_txn_transaction_t tx;
    proto_add_partitions_to_txn_request_add_partitions_to_txn_topic_t t;
    memset(&tx, 0, sizeof(tx));
    memset(&t, 0, sizeof(t));
    t.name = topic;
    t.partitions = (sm_i32_array_t){1, &partition};
    tx.transactional_id = id;
    tx.producer_id = producer_id;
    tx.producer_epoch = epoch;
    tx.verify_only = verify_only;
    tx.topics = (proto_add_partitions_to_txn_request_add_partitions_to_txn_topic_array_t){1, &t};
    q.transactions =
        (proto_add_partitions_to_txn_request_add_partitions_to_txn_transaction_array_t){1, &tx};
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_add_partitions_to_txn_response_t resp;
    /* Unreachable coordinator: retriable for the producer, as Kafka's
     * verification answers when it cannot reach the coordinator. */
    int16_t err = PROTO_ERR_NOT_ENOUGH_REPLICAS;
    if (call_node(b, node, API_ADD_PARTITIONS_TO_TXN, 5, &q, &resp, &a) == SM_OK) {
        if (resp.error_code)
            err = resp.error_code;
        else if (resp.results_by_transaction.n == 1 &&
                 resp.results_by_transaction.v[0].topic_results.n == 1 &&
                 resp.results_by_transaction.v[0].topic_results.v[0].results_by_partition.n == 1)
            err = resp.results_by_transaction.v[0]
                      .topic_results.v[0]
                      .results_by_partition.v[0]
                      .partition_error_code;
    }
    sm_arena_free(&a);
    return err;
}
