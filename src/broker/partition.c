/*
 * The registry of partitions this broker leads (see partition.h). Lock order:
 * b->partitions_mu, then a partition's mu; the image lock is never taken while
 * holding either.
 */
#include "broker/partition.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "broker/delayed.h"
#include "broker/group_host.h"
#include "broker/replica.h"
#include "metadata/topic_config.h"
#include "protocol/errors.h"
#include "protocol/records.h"

typedef struct pkey {
    uint8_t id[16];
    int32_t index;
} pkey_t;

static pkey_t make_key(const sm_uuid_t *id, int32_t index) {
    pkey_t k;
    memset(&k, 0, sizeof(k));
    memcpy(k.id, id->b, 16);
    k.index = index;
    return k;
}

static void drop_partition(broker_t *b, const meta_topic_t *t, int32_t i);

broker_partition_t *broker_partition_get(broker_t *b, const sm_uuid_t *topic_id, int32_t index) {
    pkey_t k = make_key(topic_id, index);
    pthread_mutex_lock(&b->partitions_mu);
    broker_partition_t *p = sm_map_get(&b->partitions, &k, sizeof(k));
    if (p) atomic_fetch_add(&p->refs, 1);
    pthread_mutex_unlock(&b->partitions_mu);
    return p;
}

broker_partition_t *broker_partition_lookup(broker_t *b, sm_str_t topic, const sm_uuid_t *id,
                                            int32_t index) {
    meta_image_rdlock(&b->image);
    meta_topic_t *t = id && !sm_uuid_is_zero(id) ? meta_image_topic_by_id(&b->image, id)
                                                 : meta_image_topic(&b->image, topic);
    bool ok = t && index >= 0 && index < t->n_partitions;
    sm_uuid_t tid = t ? t->id : (sm_uuid_t){{0}};
    meta_image_unlock(&b->image);
    return ok ? broker_partition_get(b, &tid, index) : NULL;
}

static void snapshot_path(broker_partition_t *p, int64_t offset, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%020lld.snapshot", log_dir(p->log), (long long)offset);
}

/*
 * Writes the producer state snapshot at the log end and removes older ones.
 * An empty state is written too: a restart then replays nothing instead of
 * every batch header from the log start (minutes for a large log). Only an
 * empty log needs no snapshot.
 */
static void write_snapshot(broker_partition_t *p, bool durable) {
    int64_t end = log_end_offset(p->log);
    if (end == p->last_snapshot_offset) return;
    if (end == log_start_offset(p->log) && sm_map_size(&p->producers.producers) == 0) return;
    char path[4096];
    snapshot_path(p, end, path, sizeof(path));
    if (txn_producer_state_write_snapshot(&p->producers, path, durable) == SM_OK) {
        if (p->last_snapshot_offset >= 0 && p->last_snapshot_offset != end) {
            char old[4096];
            snapshot_path(p, p->last_snapshot_offset, old, sizeof(old));
            unlink(old);
        }
        p->last_snapshot_offset = end;
    }
}

void broker_partition_after_append(broker_partition_t *p) {
    int segs = log_segment_count(p->log);
    int64_t appended = p->snapshot_every > 0 ? log_appended_bytes(p->log) : 0;
    if (segs == p->snapshot_segments &&
        (p->snapshot_every <= 0 || appended - p->snapshot_bytes < p->snapshot_every))
        return;
    /* A segment rolled (or retention removed some), or the recovery bound's
     * worth of bytes was appended: a snapshot here bounds what recovery after
     * a crash replays (Kafka snapshots at each roll only). Not fsynced: a
     * lost one costs a longer replay. */
    write_snapshot(p, false);
    p->snapshot_segments = segs;
    p->snapshot_bytes = appended;
}

int16_t broker_partition_absent_error(broker_t *b, sm_str_t topic, const sm_uuid_t *id,
                                      int32_t index, int16_t dflt) {
    char name[256] = "";
    meta_image_rdlock(&b->image);
    meta_topic_t *t = id && !sm_uuid_is_zero(id) ? meta_image_topic_by_id(&b->image, id)
                                                 : meta_image_topic(&b->image, topic);
    if (t) snprintf(name, sizeof(name), "%s", t->name);
    /* In a cluster a partition of a known topic lives on its replicas only: a client with
     * old metadata is sent to look for its leader, as Kafka answers. */
    bool elsewhere = t && b->s.cluster_mode && index >= 0 && index < t->n_partitions;
    meta_image_unlock(&b->image);
    if (elsewhere) return PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    return t && log_manager_pending(b->logs, name, index) ? PROTO_ERR_NOT_LEADER_OR_FOLLOWER : dflt;
}

int16_t broker_partition_leader(broker_t *b, const meta_topic_t *t, const meta_partition_t *mp,
                                int32_t *leader) {
    bool none = mp->leader < 0 || log_manager_pending(b->logs, t->name, mp->id);
    *leader = none ? -1 : mp->leader;
    return none ? PROTO_ERR_LEADER_NOT_AVAILABLE : PROTO_ERR_NONE;
}

void broker_partition_recovered(void *broker, const char *topic, int32_t index) {
    broker_t *b = broker;
    meta_image_rdlock(&b->image);
    meta_topic_t *t = meta_image_topic(&b->image, (sm_str_t){topic, (int32_t)strlen(topic)});
    if (t && index < t->n_partitions) {
        log_t *l = log_manager_get(b->logs, topic, index);
        sm_info("broker", "%s-%d: recovered, now served (log end %lld)", topic, index,
                l ? (long long)log_end_offset(l) : -1LL);
        broker_partitions_create(b, t, index);
    }
    meta_image_unlock(&b->image);
    /* A folder no topic claims is closed and left on disk, as at start (in a cluster the
     * image fills as the metadata log applies: the topic may just not be there yet). */
    if (!b->s.cluster_mode && (!t || index >= t->n_partitions)) broker_close_unclaimed_logs(b);
}

void broker_partition_put(broker_partition_t *p) {
    if (atomic_fetch_sub(&p->refs, 1) != 1) return;
    broker_t *b = p->b;
    if (atomic_load(&p->deleted)) {
        /* Detached (renamed) at delete time; closed and removed now. */
        log_manager_dispose(b->logs, p->log);
    } else {
        write_snapshot(p, true);
    }
    txn_producer_state_free(&p->producers);
    txn_aborted_index_free(&p->aborted);
    broker_replica_free(p);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void broker_topic_log_config(broker_t *b, const meta_topic_t *t, log_config_t *out) {
    pthread_mutex_lock(&b->settings_mu);
    *out = b->log_defaults;
    bool deletes = b->cleanup_delete_default;
    pthread_mutex_unlock(&b->settings_mu);
    const char *v;
    if ((v = meta_topic_config(t, "cleanup.policy"))) {
        deletes = strstr(v, "delete") != NULL;
        out->compact = strstr(v, "compact") != NULL;
    }
    if ((v = meta_topic_config(t, "min.cleanable.dirty.ratio")))
        out->min_cleanable_ratio = strtod(v, NULL);
    if ((v = meta_topic_config(t, "min.compaction.lag.ms")))
        out->min_compaction_lag_ms = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "max.compaction.lag.ms")))
        out->max_compaction_lag_ms = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "delete.retention.ms")))
        out->delete_retention_ms = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "retention.ms"))) out->retention_ms = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "retention.bytes"))) out->retention_bytes = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "segment.bytes"))) out->segment_bytes = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "segment.ms"))) out->segment_ms = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "segment.index.bytes")))
        out->segment_index_bytes = (int32_t)strtol(v, NULL, 10);
    if ((v = meta_topic_config(t, "index.interval.bytes")))
        out->index_interval_bytes = (int32_t)strtol(v, NULL, 10);
    if ((v = meta_topic_config(t, "flush.messages")))
        out->flush_interval_messages = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "flush.ms"))) out->flush_interval_ms = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "file.delete.delay.ms")))
        out->file_delete_delay_ms = strtoll(v, NULL, 10);
    /* Kafka's maxSegmentMs: a compacted log rolls by max.compaction.lag.ms
     * too, so a record never waits longer than that in the active segment. */
    if (out->compact && out->max_compaction_lag_ms > 0 &&
        out->max_compaction_lag_ms < out->segment_ms)
        out->segment_ms = out->max_compaction_lag_ms;
    if (!deletes) {
        /* cleanup.policy=compact alone: nothing goes by age or size, the
         * cleaner keeps each key's latest record (compact,delete does both). */
        out->retention_ms = -1;
        out->retention_bytes = -1;
    }
}

/* The produce-path configs of a topic into p; caller holds p->mu. */
static void topic_produce_configs(broker_t *b, const meta_topic_t *t, broker_partition_t *p) {
    const char *v;
    pthread_mutex_lock(&b->settings_mu);
    p->max_message_bytes = b->s.message_max_bytes;
    p->log_append_time = b->s.log_append_time;
    p->timestamp_before_max_ms = b->s.timestamp_before_max_ms;
    p->timestamp_after_max_ms = b->s.timestamp_after_max_ms;
    p->compacted = b->log_defaults.compact;
    p->min_isr = b->s.min_insync_replicas;
    pthread_mutex_unlock(&b->settings_mu);
    if ((v = meta_topic_config(t, "min.insync.replicas"))) p->min_isr = (int32_t)strtol(v, NULL, 10);
    p->elr = meta_elr_enabled(&b->image);
    if ((v = meta_topic_config(t, "max.message.bytes")))
        p->max_message_bytes = (int32_t)strtol(v, NULL, 10);
    if ((v = meta_topic_config(t, "cleanup.policy"))) p->compacted = strstr(v, "compact") != NULL;
    if ((v = meta_topic_config(t, "message.timestamp.type")))
        p->log_append_time = strcmp(v, "LogAppendTime") == 0;
    if ((v = meta_topic_config(t, "message.timestamp.before.max.ms")))
        p->timestamp_before_max_ms = strtoll(v, NULL, 10);
    if ((v = meta_topic_config(t, "message.timestamp.after.max.ms")))
        p->timestamp_after_max_ms = strtoll(v, NULL, 10);
    /* Kafka reads both lists by this broker's id: a leader throttles what it sends
     * for its own pairs, a follower what it fetches for its own. */
    p->leader_throttled = meta_throttled_replica(
        meta_topic_config(t, "leader.replication.throttled.replicas"), p->index, b->s.node_id);
    p->follower_throttled = meta_throttled_replica(
        meta_topic_config(t, "follower.replication.throttled.replicas"), p->index, b->s.node_id);
}

int broker_partition_track_batch(broker_partition_t *p, const proto_batch_header_t *h,
                                 int64_t first, int64_t last, int64_t timestamp) {
    if (h->producer_id < 0) return SM_OK;
    int rc = SM_OK;
    if (h->base_sequence >= 0) {
        int32_t last_seq = (int32_t)(((int64_t)h->base_sequence + h->last_offset_delta) %
                                     ((int64_t)INT32_MAX + 1));
        rc = txn_producer_state_update(&p->producers, h->producer_id, h->producer_epoch,
                                       h->base_sequence, last_seq, first, last, timestamp);
    }
    if (rc == SM_OK && (h->attributes & PROTO_ATTR_TRANSACTIONAL))
        rc = txn_producer_state_begin_txn(&p->producers, h->producer_id, h->producer_epoch, first);
    return rc;
}

int64_t broker_partition_lso(broker_partition_t *p) {
    int64_t first = txn_producer_state_first_open_txn(&p->producers);
    int64_t hw = broker_partition_hw(p);
    return first >= 0 && first < hw ? first : hw;
}

int broker_partition_track_marker(broker_partition_t *p, int64_t producer_id, int16_t epoch,
                                  int32_t coordinator_epoch, bool commit, int64_t offset,
                                  int64_t timestamp) {
    int64_t first;
    int rc = txn_producer_state_end_txn(&p->producers, producer_id, epoch, coordinator_epoch,
                                        offset, timestamp, &first);
    if (rc != SM_OK || commit || first < 0) return rc;
    /* The LSO once this transaction is closed: the next open one's start, or
     * the offset after the marker. */
    int64_t next = txn_producer_state_first_open_txn(&p->producers);
    txn_aborted_t e = {producer_id, first, offset, next >= 0 && next <= offset ? next : offset + 1};
    if (txn_aborted_index_add(&p->aborted, &e, log_dir(p->log),
                              log_segment_base_of(p->log, offset)) != SM_OK)
        sm_warn("broker", "%s-%d: cannot write the aborted-transaction index at %lld", p->topic,
                p->index, (long long)offset);
    return SM_OK;
}

int16_t broker_partition_write_marker(broker_partition_t *p, int64_t producer_id, int16_t epoch,
                                      int32_t coordinator_epoch, bool commit) {
    uint8_t buf[128];
    int64_t now = broker_now_ms();
    size_t len =
        proto_control_batch_build(buf, sizeof(buf), producer_id, epoch, coordinator_epoch,
                                  commit ? PROTO_CONTROL_COMMIT : PROTO_CONTROL_ABORT, now);
    if (!len) return PROTO_ERR_UNKNOWN_SERVER_ERROR;
    int16_t err = PROTO_ERR_NONE;
    bool moved = false;
    pthread_mutex_lock(&p->mu);
    const txn_producer_t *known = txn_producer_state_get(&p->producers, producer_id);
    int64_t first, last;
    if (p->replicated && !atomic_load(&p->leader)) {
        err = PROTO_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (known && epoch < known->epoch) {
        err = PROTO_ERR_INVALID_PRODUCER_EPOCH;
    } else if (known && coordinator_epoch < known->coordinator_epoch) {
        err = PROTO_ERR_TRANSACTION_COORDINATOR_FENCED;
    } else if (log_append(p->log, buf, len, p->leader_epoch, &first, &last) != SM_OK) {
        err = PROTO_ERR_KAFKA_STORAGE_ERROR;
    } else {
        /* Checked above, so the marker cannot be refused any more; only
         * memory can fail it, and the replay at the next start repairs the
         * state from the log. */
        if (broker_partition_track_marker(p, producer_id, epoch, coordinator_epoch, commit, first,
                                          now) != SM_OK)
            sm_error("broker",
                     "%s-%d: the marker at %lld is written but not in the producer "
                     "state (out of memory)",
                     p->topic, p->index, (long long)first);
        broker_partition_after_append(p);
        moved = broker_replica_appended(p);
    }
    pthread_mutex_unlock(&p->mu);
    if (err == PROTO_ERR_NONE || moved) broker_wake(p->b, p);
    return err;
}

int broker_partition_replay_batch(broker_partition_t *p, const uint8_t *batch, size_t len,
                                  const proto_batch_header_t *h) {
    if (h->producer_id < 0) return SM_OK;
    if (h->attributes & PROTO_ATTR_CONTROL) {
        int32_t coord_epoch;
        int type = proto_control_batch_type(batch, len, &coord_epoch);
        /* FENCED / STALE: a marker the log holds although a newer epoch
         * had already closed the transaction (history as written); the
         * state stays as the newer marker left it. */
        if (type == PROTO_CONTROL_ABORT || type == PROTO_CONTROL_COMMIT) {
            int rc = broker_partition_track_marker(p, h->producer_id, h->producer_epoch,
                                                   coord_epoch, type == PROTO_CONTROL_COMMIT,
                                                   h->base_offset, h->max_timestamp);
            if (rc != SM_OK && rc != SM_ERR_FENCED && rc != SM_ERR_STALE) return rc;
        }
        return SM_OK;
    }
    return broker_partition_track_batch(p, h, h->base_offset, proto_batch_last_offset(h),
                                        h->max_timestamp);
}

static int replay_producer_batch(void *arg, const uint8_t *batch, size_t len,
                                 const proto_batch_header_t *h) {
    return broker_partition_replay_batch(arg, batch, len, h);
}

/* Loads the newest producer snapshot and replays batches appended after it. */
static void restore_producers(broker_partition_t *p) {
    DIR *d = opendir(log_dir(p->log));
    int64_t best = -1;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n == 29 && strcmp(e->d_name + 20, ".snapshot") == 0) {
                int64_t off = strtoll(e->d_name, NULL, 10);
                if (off > best) best = off;
            }
        }
        closedir(d);
    }
    int64_t from = log_start_offset(p->log);
    if (best >= 0 && best <= log_end_offset(p->log)) {
        char path[4096];
        snapshot_path(p, best, path, sizeof(path));
        if (txn_producer_state_read_snapshot(&p->producers, path) == SM_OK) {
            from = best;
            p->last_snapshot_offset = best;
        }
    }
    /* The aborted-transaction index up to the snapshot; the replay re-adds
     * what lies after it. */
    if (txn_aborted_index_load(&p->aborted, log_dir(p->log), from) != SM_OK)
        sm_warn("broker", "%s-%d: the aborted-transaction index could not be read whole", p->topic,
                p->index);
    txn_aborted_index_drop_before(&p->aborted, log_start_offset(p->log));
    /* Replay producer batches and markers after the snapshot. A replay that
     * stops leaves the state of what was replayed: idempotent producers may
     * then see OUT_OF_ORDER_SEQUENCE or open transactions stay open (LSO). */
    int rc = log_for_each_batch(p->log, from, replay_producer_batch, p);
    if (rc != SM_OK)
        sm_error("broker", "%s-%d: the producer state replay from offset %lld stopped: %s",
                 p->topic, p->index, (long long)from, sm_strerror(rc));
}

void broker_partition_log_truncated(broker_partition_t *p) {
    /* Snapshots past the new end describe batches that are gone. */
    int64_t end = log_end_offset(p->log);
    DIR *d = opendir(log_dir(p->log));
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n == 29 && strcmp(e->d_name + 20, ".snapshot") == 0 &&
                strtoll(e->d_name, NULL, 10) > end) {
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", log_dir(p->log), e->d_name);
                unlink(path);
            }
        }
        closedir(d);
    }
    txn_producer_state_free(&p->producers);
    txn_producer_state_init(&p->producers);
    txn_aborted_index_free(&p->aborted);
    txn_aborted_index_init(&p->aborted);
    p->last_snapshot_offset = -1;
    restore_producers(p); /* the aborted index too: from its files below the snapshot */
    p->snapshot_segments = log_segment_count(p->log);
}

int broker_partitions_create(broker_t *b, const meta_topic_t *t, int32_t first) {
    int first_err = SM_OK;
    log_config_t cfg;
    broker_topic_log_config(b, t, &cfg);
    /* The controller and the recovery threads create partitions: one at a
     * time, so a partition is never created twice. */
    pthread_mutex_lock(&b->create_mu);
    for (int32_t i = first; i < t->n_partitions; i++) {
        if (b->s.cluster_mode) {
            /* A cluster's node holds the partitions it is a replica of. */
            bool mine = false;
            for (int32_t k = 0; k < t->partitions[i].n_replicas; k++)
                if (t->partitions[i].replicas[k] == b->s.node_id) mine = true;
            if (!mine) {
                /* Moved away (a reassignment): its copy here goes, as Kafka's
                 * StopReplica with delete. */
                drop_partition(b, t, i);
                continue;
            }
        }
        pkey_t k = make_key(&t->id, i);
        pthread_mutex_lock(&b->partitions_mu);
        broker_partition_t *have = sm_map_get(&b->partitions, &k, sizeof(k));
        if (have) atomic_fetch_add(&have->refs, 1);
        pthread_mutex_unlock(&b->partitions_mu);
        if (have) {
            bool was_led = atomic_load(&have->leader);
            int32_t was_epoch = have->leader_epoch;
            /* leadership, epochs, replicas, ISR: as the image has them now */
            broker_replica_update(have, &t->partitions[i]);
            broker_partition_put(have);
            /* the coordinators follow an internal topic's leadership */
            bool led = t->partitions[i].leader == b->s.node_id;
            if (led != was_led || (led && was_epoch != t->partitions[i].leader_epoch))
                broker_coordinators_leadership(b, t->name, i, led, t->partitions[i].leader_epoch);
            continue;
        }
        broker_partition_t *p = calloc(1, sizeof(*p));
        if (!p) {
            first_err = SM_ERR_NOMEM;
            break;
        }
        p->b = b;
        p->topic_id = t->id;
        p->index = i;
        snprintf(p->topic, sizeof(p->topic), "%s", t->name);
        atomic_init(&p->refs, 1);
        atomic_init(&p->deleted, false);
        pthread_mutex_init(&p->mu, NULL);
        p->leader_epoch = t->partitions[i].leader_epoch;
        p->last_snapshot_offset = -1;
        p->snapshot_every = cfg.recovery_flush_bytes;
        txn_producer_state_init(&p->producers);
        txn_aborted_index_init(&p->aborted);
        topic_produce_configs(b, t, p);
        int rc = log_manager_get_or_create(b->logs, t->name, i, t->id.b, &cfg, &p->log);
        if (rc == SM_ERR_AGAIN) {
            /* Still recovering: created when its log is (broker_partition_recovered). */
            txn_producer_state_free(&p->producers);
            txn_aborted_index_free(&p->aborted);
            pthread_mutex_destroy(&p->mu);
            free(p);
            continue;
        }
        if (rc) {
            /* This partition alone goes offline (unknown to requests); the
             * topic's other partitions and the broker carry on. */
            sm_error("broker", "%s-%d: cannot open the log (%s); the partition is offline", t->name,
                     i, sm_strerror(rc));
            pthread_mutex_destroy(&p->mu);
            free(p);
            if (!first_err) first_err = rc;
            continue;
        }
        log_set_config(p->log, &cfg);
        restore_producers(p);
        p->snapshot_segments = log_segment_count(p->log);
        if ((rc = broker_replica_init(p, &t->partitions[i])) != SM_OK) {
            sm_error("broker", "%s-%d: replication state not set up (%s); the partition is offline",
                     t->name, i, sm_strerror(rc));
            broker_partition_put(p);
            if (!first_err) first_err = rc;
            continue;
        }
        pthread_mutex_lock(&b->partitions_mu);
        rc = sm_map_put(&b->partitions, &k, sizeof(k), p);
        pthread_mutex_unlock(&b->partitions_mu);
        if (rc) {
            broker_partition_put(p);
            first_err = rc;
            break;
        }
        if (t->partitions[i].leader == b->s.node_id)
            broker_coordinators_leadership(b, t->name, i, true, t->partitions[i].leader_epoch);
    }
    pthread_mutex_unlock(&b->create_mu);
    return first_err;
}

void broker_partitions_delete(broker_t *b, const meta_topic_t *t) {
    for (int32_t i = 0; i < t->n_partitions; i++)
        drop_partition(b, t, i);
}

static void drop_partition(broker_t *b, const meta_topic_t *t, int32_t i) {
    pkey_t k = make_key(&t->id, i);
    pthread_mutex_lock(&b->partitions_mu);
    broker_partition_t *p = sm_map_del(&b->partitions, &k, sizeof(k));
    pthread_mutex_unlock(&b->partitions_mu);
    if (!p) return;
    broker_coordinators_leadership(b, p->topic, p->index, false, -1);
    /* The folder is renamed now, so a topic re-created under this name
     * gets a folder of its own; the log stays open for requests that
     * still hold the partition and goes with the last reference. */
    log_t *l;
    if (log_manager_detach(b->logs, p->topic, p->index, p->topic_id.b, &l) == SM_OK)
        atomic_store(&p->deleted, true);
    else
        sm_error("broker", "%s-%d: the log is not registered under this topic id: kept", p->topic,
                 p->index);
    broker_replica_stop(p);
    /* Parked fetches answer now (the partition is gone for them). */
    broker_wake(b, p);
    broker_partition_put(p); /* the registry's reference */
}

void broker_partitions_reconfigure(broker_t *b, const meta_topic_t *t) {
    log_config_t cfg;
    broker_topic_log_config(b, t, &cfg);
    for (int32_t i = 0; i < t->n_partitions; i++) {
        broker_partition_t *p = broker_partition_get(b, &t->id, i);
        if (!p) continue;
        pthread_mutex_lock(&p->mu);
        topic_produce_configs(b, t, p);
        p->snapshot_every = cfg.recovery_flush_bytes;
        pthread_mutex_unlock(&p->mu);
        log_set_config(p->log, &cfg);
        broker_partition_put(p);
    }
    /* A policy or ratio change is seen at once, not after the backoff. */
    if (b->logs) log_cleaner_wake(log_manager_cleaner(b->logs));
}

void broker_partitions_close_all(broker_t *b) {
    pthread_mutex_lock(&b->partitions_mu);
    size_t it = 0;
    void *v;
    broker_partition_t **all = calloc(sm_map_size(&b->partitions) + 1, sizeof(*all));
    size_t n = 0;
    while (all && sm_map_next(&b->partitions, &it, NULL, NULL, &v))
        all[n++] = v;
    sm_map_free(&b->partitions);
    sm_map_init(&b->partitions);
    pthread_mutex_unlock(&b->partitions_mu);
    for (size_t i = 0; i < n; i++)
        broker_partition_put(all[i]);
    free(all);
}
