/*
 * group_host_t over the broker (see group/host.h): appends go to the
 * partition of __consumer_offsets under its mu like a produce; durability
 * waits on the log manager's flusher pool when the broker fsyncs before
 * acknowledging, so no coordinator thread blocks in an fsync. Also creates
 * the topic: at start on a single node; in a cluster when FindCoordinator
 * first needs it, through the controller. And the hook partition.c calls when
 * this broker starts or stops leading a partition of an internal topic: the
 * coordinators (group and transaction) load or unload that partition.
 */
#include "broker/group_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/delayed.h"
#include "broker/partition.h"
#include "broker/replica.h"
#include "group/coordinator.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "txn/coordinator.h"

#define OFFSETS_TOPIC "__consumer_offsets"

typedef struct group_host_ctx {
    broker_t *b;
    sm_uuid_t topic_id;
    int32_t partitions;
} group_host_ctx_t;

static group_host_ctx_t host_ctx; /* one broker per process */

/* Partition part of __consumer_offsets here (a new reference), or NULL. A
 * cluster's topic appears after the coordinator started (and may be deleted
 * and created again): looked up by name there. */
static broker_partition_t *offsets_partition(group_host_ctx_t *h, int32_t part) {
    if (h->b->s.cluster_mode)
        return broker_partition_lookup(h->b, SM_STR_LIT(OFFSETS_TOPIC), NULL, part);
    return broker_partition_get(h->b, &h->topic_id, part);
}

static int host_append(void *ctx, int32_t part, uint8_t *batch, size_t len, int64_t *end) {
    group_host_ctx_t *h = ctx;
    broker_partition_t *p = offsets_partition(h, part);
    if (!p) return SM_ERR_NOTFOUND;
    int64_t first, last;
    pthread_mutex_lock(&p->mu);
    /* Only the leader writes (a cluster moves the coordinator with it). */
    int rc = broker_partition_serves(p)
                 ? log_append(p->log, batch, len, p->leader_epoch, &first, &last)
                 : SM_ERR_AGAIN;
    if (rc == SM_OK) broker_replica_appended(p);
    pthread_mutex_unlock(&p->mu);
    /* A transactional batch (TxnOffsetCommit) joins its producer's open
     * transaction in the partition's producer state, as a produce would. */
    proto_batch_header_t bh;
    if (rc == SM_OK && proto_batch_parse_header(batch, len, &bh) == SM_OK &&
        (bh.attributes & PROTO_ATTR_TRANSACTIONAL) && bh.producer_id >= 0) {
        pthread_mutex_lock(&p->mu);
        rc = broker_partition_track_batch(p, &bh, first, last, bh.max_timestamp);
        pthread_mutex_unlock(&p->mu);
    }
    if (rc == SM_OK) {
        *end = last + 1;
        broker_wake(h->b, p);
    }
    broker_partition_put(p);
    return rc;
}

typedef struct durable_wait {
    broker_partition_t *p;
    group_durable_fn done;
    void *arg;
    broker_t *b;
    int64_t end;
} durable_wait_t;

static void flushed(void *arg, int status) {
    durable_wait_t *w = arg;
    w->done(w->arg, status);
    broker_partition_put(w->p);
    free(w);
}

/* In a cluster the ISR has the write: then, with fsync before ack, the flush. */
static void replicated(void *arg, int status) {
    durable_wait_t *w = arg;
    if (status != SM_OK || !w->b->s.fsync_before_ack) {
        flushed(w, status);
        return;
    }
    int rc = log_flush_request(log_manager_flusher(w->b->logs), w->p->log, w->end, flushed, w);
    if (rc != SM_ERR_AGAIN) flushed(w, rc);
}

static void host_when_durable(void *ctx, int32_t part, int64_t end, group_durable_fn done,
                              void *arg) {
    group_host_ctx_t *h = ctx;
    if (!h->b->s.fsync_before_ack && !h->b->s.cluster_mode) {
        done(arg, SM_OK);
        return;
    }
    broker_partition_t *p = offsets_partition(h, part);
    durable_wait_t *w = p ? malloc(sizeof(*w)) : NULL;
    if (!w) {
        if (p) broker_partition_put(p);
        done(arg, p ? SM_ERR_NOMEM : SM_ERR_NOTFOUND);
        return;
    }
    *w = (durable_wait_t){p, done, arg, h->b, end};
    if (p->replicated)
        broker_replica_when_replicated(
            p, end, sm_config_int(h->b->cfg, "offsets.commit.timeout.ms"), replicated, w);
    else
        replicated(w, SM_OK);
}

static int read_batch(void *arg, const uint8_t *batch, size_t len, const proto_batch_header_t *h) {
    const group_reader_t *rd = arg;
    if (proto_batch_compression(h) != PROTO_COMPRESSION_NONE) return SM_OK;
    if (h->attributes & PROTO_ATTR_CONTROL) {
        int32_t ce;
        int type = proto_control_batch_type(batch, len, &ce);
        if (type == PROTO_CONTROL_COMMIT || type == PROTO_CONTROL_ABORT)
            rd->marker(rd->arg, h->producer_id, type == PROTO_CONTROL_COMMIT);
        return SM_OK;
    }
    int64_t txn_pid =
        (h->attributes & PROTO_ATTR_TRANSACTIONAL) && h->producer_id >= 0 ? h->producer_id : -1;
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h->records_count);
    while (proto_record_iter_next(&it, &rec) == 1)
        rd->record(rd->arg, rec.key, rec.value, txn_pid);
    return SM_OK;
}

static int host_read_all(void *ctx, int32_t part, const group_reader_t *reader) {
    group_host_ctx_t *h = ctx;
    broker_partition_t *p = offsets_partition(h, part);
    if (!p) return SM_ERR_NOTFOUND;
    int r = log_for_each_batch(p->log, 0, read_batch, (void *)reader);
    broker_partition_put(p);
    return r;
}

static bool host_topic_name(void *ctx, const sm_uuid_t *id, char *name, size_t cap) {
    group_host_ctx_t *h = ctx;
    meta_image_rdlock(&h->b->image);
    meta_topic_t *t = sm_uuid_is_zero(id) ? NULL : meta_image_topic_by_id(&h->b->image, id);
    if (t) snprintf(name, cap, "%s", t->name);
    meta_image_unlock(&h->b->image);
    return t != NULL;
}

static bool host_topic(void *ctx, sm_str_t name, sm_uuid_t *id, int32_t *partitions) {
    group_host_ctx_t *h = ctx;
    meta_image_rdlock(&h->b->image);
    meta_topic_t *t = meta_image_topic(&h->b->image, name);
    if (t) {
        *id = t->id;
        *partitions = t->n_partitions;
    }
    meta_image_unlock(&h->b->image);
    return t != NULL;
}

static void host_for_each_topic(void *ctx, void (*fn)(void *arg, sm_str_t name), void *arg) {
    group_host_ctx_t *h = ctx;
    meta_image_rdlock(&h->b->image);
    size_t it = 0;
    void *v;
    while (sm_map_next(&h->b->image.topics_by_name, &it, NULL, NULL, &v)) {
        meta_topic_t *t = v;
        if (!t->internal) fn(arg, (sm_str_t){t->name, (int32_t)strlen(t->name)});
    }
    meta_image_unlock(&h->b->image);
}

static void host_partition_racks(void *ctx, const sm_uuid_t *topic,
                                 void (*fn)(void *arg, int32_t partition, sm_str_t rack),
                                 void *arg) {
    group_host_ctx_t *h = ctx;
    broker_t *b = h->b;
    const char *own = b->s.cluster_mode ? NULL : sm_config_str(b->cfg, "broker.rack");
    meta_image_rdlock(&b->image);
    const meta_topic_t *t = meta_image_topic_by_id(&b->image, topic);
    for (int32_t p = 0; t && p < t->n_partitions; p++) {
        if (own) {
            /* A single node holds every replica. */
            if (*own) fn(arg, p, sm_str_from(own));
            continue;
        }
        const meta_partition_t *mp = &t->partitions[p];
        for (int32_t i = 0; i < mp->n_replicas; i++) {
            const meta_broker_t *bk = meta_image_broker(&b->image, mp->replicas[i]);
            if (bk && bk->has_rack && bk->rack[0]) fn(arg, p, sm_str_from(bk->rack));
        }
    }
    meta_image_unlock(&b->image);
}

static bool host_group_config(void *ctx, sm_str_t group, const char *name, char *out, size_t cap) {
    group_host_ctx_t *h = ctx;
    meta_image_rdlock(&h->b->image);
    const sm_map_t *m = meta_group_configs(&h->b->image, group);
    const char *v = m ? sm_map_get(m, name, strlen(name)) : NULL;
    if (v) snprintf(out, cap, "%s", v);
    meta_image_unlock(&h->b->image);
    return v != NULL;
}

/* __consumer_offsets: created on first start, like Kafka's, compacted. */
static int offsets_topic(broker_t *b, sm_uuid_t *id, int32_t *partitions) {
    sm_str_t name = SM_STR_LIT(OFFSETS_TOPIC);
    meta_image_rdlock(&b->image);
    bool exists = meta_image_topic(&b->image, name) != NULL;
    meta_image_unlock(&b->image);
    if (!exists) {
        char seg[24];
        snprintf(seg, sizeof(seg), "%d", sm_config_int(b->cfg, "offsets.topic.segment.bytes"));
        meta_config_kv_t kv[] = {{SM_STR_LIT("cleanup.policy"), SM_STR_LIT("compact")},
                                 {SM_STR_LIT("segment.bytes"), sm_str_from(seg)}};
        meta_result_t res;
        sm_uuid_t created;
        meta_create_topic(&b->controller, name,
                          sm_config_int(b->cfg, "offsets.topic.num.partitions"),
                          broker_internal_rf(b, "offsets.topic.replication.factor"), kv, 2, false,
                          &created, &res);
        if (res.error) {
            sm_error("group", "cannot create %s: %s", OFFSETS_TOPIC, res.message);
            return SM_ERR;
        }
    }
    meta_image_rdlock(&b->image);
    meta_topic_t *t = meta_image_topic(&b->image, name);
    if (t) {
        *id = t->id;
        *partitions = t->n_partitions;
    }
    meta_image_unlock(&b->image);
    return t ? SM_OK : SM_ERR;
}

int broker_groups_start(broker_t *b) {
    host_ctx.b = b;
    int32_t partitions = 0;
    if (b->s.cluster_mode) {
        /* No topic yet (the image fills as the metadata log applies, and the
         * topic is created when first needed): every node hashes group ids
         * over the configured partition count, the count it is created with. */
        partitions = sm_config_int(b->cfg, "offsets.topic.num.partitions");
    } else if (offsets_topic(b, &host_ctx.topic_id, &partitions)) {
        return SM_ERR;
    }
    host_ctx.partitions = partitions;
    group_host_t host = {&host_ctx,           host_append,          host_when_durable,
                         host_read_all,       host_topic,           host_topic_name,
                         host_for_each_topic, host_partition_racks, host_group_config};
    return group_coordinator_new(&host, partitions, b->cfg, !b->s.cluster_mode, &b->groups);
}

void broker_coordinators_leadership(broker_t *b, const char *topic, int32_t partition, bool led,
                                    int32_t leader_epoch) {
    if (!b->s.cluster_mode) return; /* a single node loads everything at start */
    if (strcmp(topic, OFFSETS_TOPIC) == 0 && b->groups) {
        if (led)
            group_coordinator_elect(b->groups, partition, leader_epoch);
        else
            group_coordinator_resign(b->groups, partition);
    } else if (strcmp(topic, TXN_STATE_TOPIC) == 0 && b->txns) {
        if (led)
            txn_coordinator_elect(b, partition, leader_epoch);
        else
            txn_coordinator_resign(b, partition);
    }
}

int16_t broker_coordinator_node(broker_t *b, const char *topic, int32_t partition, int32_t *node) {
    *node = -1;
    sm_str_t name = sm_str_from(topic);
    meta_image_rdlock(&b->image);
    meta_topic_t *t = meta_image_topic(&b->image, name);
    if (t && partition < t->n_partitions) *node = t->partitions[partition].leader;
    meta_image_unlock(&b->image);
    if (*node >= 0) return PROTO_ERR_NONE;
    if (t) return PROTO_ERR_COORDINATOR_NOT_AVAILABLE; /* no leader now */
    /* First use: created through the controller with the configured replication
     * factor, as Kafka creates its internal topics (creation fails, and clients
     * keep retrying, while fewer brokers than that are registered). */
    bool offsets = strcmp(topic, OFFSETS_TOPIC) == 0;
    char seg[24];
    snprintf(seg, sizeof(seg), "%d",
             sm_config_int(b->cfg, offsets ? "offsets.topic.segment.bytes"
                                           : "transaction.state.log.segment.bytes"));
    meta_config_kv_t kv[] = {{SM_STR_LIT("cleanup.policy"), SM_STR_LIT("compact")},
                             {SM_STR_LIT("segment.bytes"), sm_str_from(seg)}};
    meta_result_t res;
    sm_uuid_t created;
    meta_create_topic(&b->controller, name,
                      sm_config_int(b->cfg, offsets ? "offsets.topic.num.partitions"
                                                    : "transaction.state.log.num.partitions"),
                      broker_internal_rf(b, offsets ? "offsets.topic.replication.factor"
                                                    : "transaction.state.log.replication.factor"),
                      kv, 2, false, &created, &res);
    if (res.error && res.error != PROTO_ERR_TOPIC_ALREADY_EXISTS)
        sm_warn("group", "cannot create %s: %s (%s)", topic, proto_error_name(res.error),
                res.message);
    return PROTO_ERR_COORDINATOR_NOT_AVAILABLE;
}

int32_t group_offsets_partition(struct broker *b, sm_str_t group_id) {
    return b->groups && group_id.len > 0 ? group_partition_for(group_id, host_ctx.partitions) : -1;
}

void group_txn_marker(struct broker *b, int32_t partition, int64_t producer_id, bool commit) {
    if (b->groups) group_coordinator_txn_marker(b->groups, partition, producer_id, commit);
}

void broker_groups_stop(broker_t *b) {
    if (b->groups) group_coordinator_stop(b->groups);
}

void broker_groups_free(broker_t *b) {
    group_coordinator_free(b->groups);
    b->groups = NULL;
}
