/*
 * The brokers a client is told about (Metadata, DescribeCluster): this node alone on a
 * single node (with its broker.rack); in a cluster every registered broker of the metadata image
 * that has an endpoint of the listener the request came through, fenced ones only when asked.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "cluster/cluster.h"

int broker_nodes(broker_req_t *r, bool include_fenced, broker_node_t **out) {
    broker_t *b = r->b;
    *out = NULL;
    if (!b->s.cluster_mode) {
        broker_node_t *n = sm_arena_calloc(&r->arena, 1, sizeof(*n));
        if (!n) return -1;
        n->id = b->s.node_id;
        n->host = sm_arena_str(&r->arena, broker_req_host(r));
        n->port = broker_req_port(r);
        const char *rack = sm_config_str(b->cfg, "broker.rack");
        n->rack = rack && *rack ? sm_arena_str(&r->arena, rack) : SM_STR_NULL;
        *out = n;
        return 1;
    }
    const char *listener = r->listener ? r->listener->name : "";
    meta_image_rdlock(&b->image);
    size_t total = sm_map_size(&b->image.brokers), it = 0;
    broker_node_t *v = sm_arena_calloc(&r->arena, total + 1, sizeof(*v));
    int n = 0;
    void *val;
    while (v && sm_map_next(&b->image.brokers, &it, NULL, NULL, &val)) {
        const meta_broker_t *bk = val;
        const meta_endpoint_t *e = meta_broker_endpoint(bk, listener);
        if (!e || (bk->fenced && !include_fenced)) continue;
        broker_node_t *o = &v[n++];
        o->id = bk->id;
        o->host = sm_arena_str(&r->arena, e->host);
        o->port = e->port;
        o->rack = bk->has_rack ? sm_arena_str(&r->arena, bk->rack) : SM_STR_NULL;
        o->fenced = bk->fenced;
    }
    meta_image_unlock(&b->image);
    if (!v) return -1;
    /* ascending ids, as Kafka lists them */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1].id > v[j].id; j--) {
            broker_node_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *out = v;
    return n;
}

int broker_node(broker_req_t *r, int32_t id, broker_node_t *out) {
    broker_node_t *all;
    int n = broker_nodes(r, false, &all);
    for (int i = 0; i < n; i++)
        if (all[i].id == id) {
            *out = all[i];
            return SM_OK;
        }
    return n < 0 ? SM_ERR_NOMEM : SM_ERR_NOTFOUND;
}

bool broker_other_leader(broker_req_t *r, bool by_id, const sm_uuid_t *topic_id, sm_str_t name,
                         int32_t partition, int32_t *leader, int32_t *epoch) {
    broker_t *b = r->b;
    *leader = *epoch = -1;
    meta_image_rdlock(&b->image);
    meta_topic_t *mt =
        by_id ? meta_image_topic_by_id(&b->image, topic_id) : meta_image_topic(&b->image, name);
    if (mt && partition >= 0 && partition < mt->n_partitions) {
        *leader = mt->partitions[partition].leader;
        *epoch = mt->partitions[partition].leader_epoch;
    }
    meta_image_unlock(&b->image);
    return *leader >= 0 && *leader != b->s.node_id;
}

int broker_nodes_among(broker_req_t *r, const int32_t *ids, int n, broker_node_t **out) {
    broker_node_t *all;
    int nall = n > 0 ? broker_nodes(r, false, &all) : 0;
    if (nall < 0) return -1;
    int k = 0;
    for (int i = 0; i < nall; i++) {
        bool named = false;
        for (int j = 0; j < n && !named; j++)
            named = ids[j] == all[i].id;
        if (named) all[k++] = all[i];
    }
    *out = k > 0 ? all : NULL;
    return k;
}

int32_t broker_client_controller_id(broker_t *b) {
    /* Kafka's brokers name a live broker (clients cannot reach controllers, and any broker
     * relays controller requests): this one. */
    return b->s.node_id;
}
