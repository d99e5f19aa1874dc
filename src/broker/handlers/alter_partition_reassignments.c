/*
 * AlterPartitionReassignments (KIP-455): in a cluster the active controller moves each
 * partition to its target replicas or cancels its ongoing move (src/cluster/partitions.c);
 * the new replicas join as their leader adds them to the ISR (AlterPartition), which
 * completes the move. One node: the only replica set is this node, so that target is
 * answered as done, a cancel NO_REASSIGNMENT_IN_PROGRESS, anything else
 * INVALID_REPLICA_ASSIGNMENT as Kafka answers for brokers that are not registered.
 */
#include <stdio.h>

#include "broker/handlers/handlers.h"
#include "cluster/cluster.h"
#include "protocol/errors.h"

typedef proto_alter_partition_reassignments_request_t req_t;
typedef proto_alter_partition_reassignments_response_t resp_t;
typedef proto_alter_partition_reassignments_response_reassignable_topic_response_t topic_out_t;
typedef proto_alter_partition_reassignments_response_reassignable_partition_response_t part_out_t;

/* One node: the answer for a partition of topic t (NULL unknown). */
static void single_node(broker_t *b, const meta_topic_t *t, cluster_reassignment_t *r) {
    if (!t || r->partition < 0 || r->partition >= t->n_partitions) {
        r->error = PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        snprintf(r->message, sizeof(r->message), "Unable to find partition %s:%d.",
                 t ? t->name : "?", r->partition);
    } else if (!r->replicas) {
        r->error = PROTO_ERR_NO_REASSIGNMENT_IN_PROGRESS;
        snprintf(r->message, sizeof(r->message), "No partition reassignment is in progress.");
    } else if (r->n != 1 || r->replicas[0] != b->s.node_id) {
        r->error = PROTO_ERR_INVALID_REPLICA_ASSIGNMENT;
        snprintf(r->message, sizeof(r->message),
                 "The manual partition assignment includes a broker that is not registered.");
    }
}

int broker_handle_alter_partition_reassignments(broker_req_t *r) {
    broker_t *b = r->b;
    req_t *req = broker_body(r);
    resp_t *resp = r->resp;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0, n = 0;
    for (int32_t i = 0; i < nt; i++)
        n += req->topics.v[i].partitions.n > 0 ? req->topics.v[i].partitions.n : 0;
    cluster_reassignment_t *re = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*re));
    topic_out_t *topics = sm_arena_calloc(&r->arena, (size_t)nt + 1, sizeof(*topics));
    part_out_t *parts = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*parts));
    if (!re || !topics || !parts) return BROKER_CLOSE;
    /* the request's partitions in order; unknown topics keep a zero id */
    int k = 0;
    meta_image_rdlock(&b->image);
    for (int32_t i = 0; i < nt; i++) {
        const proto_alter_partition_reassignments_request_reassignable_topic_t *t =
            &req->topics.v[i];
        const meta_topic_t *mt = meta_image_topic(&b->image, t->name);
        for (int32_t p = 0; p < t->partitions.n; p++, k++) {
            const sm_i32_array_t *reps = &t->partitions.v[p].replicas;
            re[k].topic_id = mt ? mt->id : (sm_uuid_t){{0}};
            re[k].partition = t->partitions.v[p].partition_index;
            static const int32_t none[1];
            re[k].replicas = reps->n >= 0 ? (reps->v ? reps->v : none) : NULL; /* NULL: cancel */
            re[k].n = reps->n >= 0 ? reps->n : 0;
            /* v1 AllowReplicationFactorChange=false: the count of replicas stays */
            if (r->version >= 1 && !req->allow_replication_factor_change && re[k].replicas &&
                mt && re[k].partition >= 0 && re[k].partition < mt->n_partitions) {
                const meta_partition_t *mp = &mt->partitions[re[k].partition];
                int32_t rf = mp->n_replicas - mp->n_adding;
                if (re[k].n != rf) {
                    re[k].error = PROTO_ERR_INVALID_REPLICATION_FACTOR;
                    snprintf(re[k].message, sizeof(re[k].message),
                             "The replication factor is changed from %d to %d", rf, re[k].n);
                }
            }
            if (!b->cluster && re[k].error == PROTO_ERR_NONE) single_node(b, mt, &re[k]);
        }
    }
    meta_image_unlock(&b->image);
    if (b->cluster) {
        /* refused ones are left out of the controller's work, then put back */
        cluster_reassignment_t *todo = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(*todo));
        int *at = sm_arena_calloc(&r->arena, (size_t)n + 1, sizeof(int));
        if (!todo || !at) return BROKER_CLOSE;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (re[i].error == PROTO_ERR_NONE) {
                at[m] = i;
                todo[m++] = re[i];
            }
        int rc = m > 0 ? cluster_alter_reassignments(b->cluster, todo, m) : SM_OK;
        for (int i = 0; i < m; i++) {
            re[at[i]] = todo[i];
            if (rc != SM_OK) {
                re[at[i]].error = rc == SM_ERR_AGAIN ? PROTO_ERR_NOT_CONTROLLER
                                                     : PROTO_ERR_UNKNOWN_SERVER_ERROR;
                re[at[i]].message[0] = 0;
            }
        }
    }
    k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const proto_alter_partition_reassignments_request_reassignable_topic_t *t =
            &req->topics.v[i];
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        topics[i].name = t->name;
        topics[i].partitions =
            (proto_alter_partition_reassignments_response_reassignable_partition_response_array_t){
                np, &parts[k]};
        for (int32_t p = 0; p < np; p++, k++) {
            parts[k].partition_index = re[k].partition;
            parts[k].error_code = re[k].error;
            parts[k].error_message =
                re[k].message[0] ? sm_arena_str(&r->arena, re[k].message) : SM_STR_NULL;
        }
    }
    resp->error_code = PROTO_ERR_NONE;
    resp->error_message = SM_STR_NULL;
    resp->allow_replication_factor_change = req->allow_replication_factor_change;
    resp->responses =
        (proto_alter_partition_reassignments_response_reassignable_topic_response_array_t){nt,
                                                                                          topics};
    return BROKER_RESPOND;
}
