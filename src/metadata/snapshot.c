/*
 * Metadata snapshots as KRaft `.checkpoint` files (see snapshot.h), laid out as Kafka's
 * RecordsSnapshotWriter lays them out:
 *
 *   control batch  base offset 0   SnapshotHeaderRecord (control type 3)
 *   data batches   offsets 1..n    FeatureLevel, Topic + Partition + topic Config, broker
 *                                  and group Config, ClientQuota, ProducerIds records
 *   control batch  offset n + 1    SnapshotFooterRecord (control type 4)
 *
 * Offsets run from 0 within the file; every batch's partition leader epoch is the
 * snapshot's epoch. A control record's key is (int16 version 0, int16 type); its value is
 * the record encoded at its version (0), without a version prefix. Data records are
 * framed as in the metadata log (record.h), with null keys.
 *
 * Invariants of a file this module accepts: it is a whole number of batches, each with a
 * valid CRC; offsets are consecutive from 0; the first record is a SnapshotHeader in a
 * control batch; the last record is a SnapshotFooter and nothing follows it; every data
 * record decodes. Files are only ever created by rename of a fsynced `.part`, so a crash
 * leaves a `.part` (removed at start) or a complete snapshot, never a torn `.checkpoint`.
 */
#include "metadata/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/log.h"
#include "metadata/record.h"
#include "protocol/compress.h"
#include "protocol/gen/client_quota_record.h"
#include "protocol/gen/config_record.h"
#include "protocol/gen/feature_level_record.h"
#include "protocol/gen/partition_record.h"
#include "protocol/gen/producer_ids_record.h"
#include "protocol/gen/register_broker_record.h"
#include "protocol/gen/snapshot_footer_record.h"
#include "protocol/gen/snapshot_header_record.h"
#include "protocol/gen/topic_record.h"
#include "protocol/records.h"
#include "raft/quorum_file.h"
#include "raft/raft_voters.h"

/* A decompressed batch of a snapshot may not exceed this (Kafka's batches are 8 MiB). */
#define MAX_DECOMPRESSED_BATCH ((size_t)64 << 20)

/* ---- a growable byte buffer ---- */

typedef struct vec {
    uint8_t *p;
    size_t len, cap;
} vec_t;

static int vec_reserve(vec_t *v, size_t more) {
    if (v->cap - v->len >= more) return SM_OK;
    size_t cap = v->cap ? v->cap : 4096;
    while (cap - v->len < more) {
        if (cap > SIZE_MAX / 2) return SM_ERR_NOMEM;
        cap *= 2;
    }
    uint8_t *p = realloc(v->p, cap);
    if (!p) return SM_ERR_NOMEM;
    v->p = p;
    v->cap = cap;
    return SM_OK;
}

/* ---- writing ---- */

/* Pending data records of the batch being filled, and the file so far. */
typedef struct snap_enc {
    vec_t out;
    vec_t vals;   /* encoded record values, back to back */
    size_t *ends; /* end of value i in vals */
    int32_t n, n_cap;
    size_t batch_size; /* header + encoded records of the pending batch */
    int64_t next_offset;
    int32_t epoch;
    int64_t ts;
    size_t max_batch;
    int status; /* first error, sticky */
} snap_enc_t;

static proto_batch_builder_opts_t batch_opts(const snap_enc_t *e, int16_t attributes) {
    return (proto_batch_builder_opts_t){
        .base_offset = e->next_offset,
        .partition_leader_epoch = e->epoch,
        .attributes = attributes,
        .base_timestamp = e->ts,
        .producer_id = -1,
        .producer_epoch = -1,
        .base_sequence = -1,
    };
}

/* Writes the pending data records as one batch. */
static void enc_flush(snap_enc_t *e) {
    if (e->status || e->n == 0) return;
    if ((e->status = vec_reserve(&e->out, e->batch_size)) != SM_OK) return;
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t o = batch_opts(e, 0);
    proto_batch_builder_init(&bb, e->out.p + e->out.len, e->batch_size, &o);
    size_t start = 0;
    for (int32_t i = 0; i < e->n; i++) {
        sm_bytes_t v = {e->vals.p + start, (int32_t)(e->ends[i] - start)};
        proto_batch_builder_add(&bb, e->ts, SM_BYTES_NULL, v, NULL, 0);
        start = e->ends[i];
    }
    size_t len;
    if ((e->status = proto_batch_builder_finish(&bb, &len)) != SM_OK) return;
    e->out.len += len;
    e->next_offset += e->n;
    e->n = 0;
    e->vals.len = 0;
    e->batch_size = PROTO_BATCH_HEADER_SIZE;
}

/* Adds one metadata record (type, version 0, the generated struct) to the pending batch,
 * starting a new batch when it would pass max_batch. */
static void enc_record_v(snap_enc_t *e, int16_t type, int16_t version, const void *msg);

static void enc_record(snap_enc_t *e, int16_t type, const void *msg) {
    enc_record_v(e, type, 0, msg);
}

static void enc_record_v(snap_enc_t *e, int16_t type, int16_t version, const void *msg) {
    if (e->status) return;
    meta_record_t r = {type, version, msg};
    size_t vlen = meta_record_size(&r);
    if (vlen == 0 || vlen > INT32_MAX) {
        e->status = SM_ERR_RANGE;
        return;
    }
    sm_bytes_t probe = {NULL, (int32_t)vlen};
    size_t rsize = proto_record_size(0, e->n, SM_BYTES_NULL, probe, NULL, 0);
    if (e->n > 0 && e->batch_size + rsize > e->max_batch) {
        enc_flush(e);
        if (e->status) return;
        rsize = proto_record_size(0, 0, SM_BYTES_NULL, probe, NULL, 0);
    }
    if (e->n == e->n_cap) {
        int32_t cap = e->n_cap ? e->n_cap * 2 : 256;
        size_t *ends = realloc(e->ends, sizeof(*ends) * (size_t)cap);
        if (!ends) {
            e->status = SM_ERR_NOMEM;
            return;
        }
        e->ends = ends;
        e->n_cap = cap;
    }
    if ((e->status = vec_reserve(&e->vals, vlen)) != SM_OK) return;
    sm_writer_t w = sm_writer_make(e->vals.p + e->vals.len, vlen);
    if ((e->status = meta_record_write(&w, &r)) != SM_OK) return;
    e->vals.len += vlen;
    e->ends[e->n++] = e->vals.len;
    e->batch_size += rsize;
}

/* Appends a control batch of one record of the given type; value is the control record
 * encoded at version 0. */
static void enc_control(snap_enc_t *e, int16_t type, const uint8_t *value, size_t vlen) {
    if (e->status) return;
    uint8_t key[4] = {0, 0, (uint8_t)((uint16_t)type >> 8), (uint8_t)type};
    sm_bytes_t k = {key, 4}, v = {value, (int32_t)vlen};
    size_t cap = PROTO_BATCH_HEADER_SIZE + proto_record_size(0, 0, k, v, NULL, 0);
    if ((e->status = vec_reserve(&e->out, cap)) != SM_OK) return;
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t o = batch_opts(e, PROTO_ATTR_CONTROL);
    proto_batch_builder_init(&bb, e->out.p + e->out.len, cap, &o);
    proto_batch_builder_add(&bb, e->ts, k, v, NULL, 0);
    size_t len;
    if ((e->status = proto_batch_builder_finish(&bb, &len)) != SM_OK) return;
    e->out.len += len;
    e->next_offset++;
}

static void enc_config(snap_enc_t *e, int8_t type, sm_str_t resource, const sm_map_t *m) {
    size_t it = 0;
    const void *k;
    size_t kl;
    void *v;
    while (sm_map_next(m, &it, &k, &kl, &v)) {
        proto_config_record_t c;
        proto_config_record_init(&c);
        c.resource_type = type;
        c.resource_name = resource;
        c.name = (sm_str_t){k, (int32_t)kl};
        c.value = sm_str_from(v);
        enc_record(e, PROTO_CONFIG_RECORD_API_KEY, &c);
    }
}

static void enc_features(snap_enc_t *e, const meta_image_t *img) {
    /* metadata.version first: Kafka's loader reads every later record at that version. */
    static const char mv[] = "metadata.version";
    const int16_t *l = sm_map_get(&img->features, mv, sizeof(mv) - 1);
    proto_feature_level_record_t f;
    if (l) {
        proto_feature_level_record_init(&f);
        f.name = SM_STR_LIT(mv);
        f.feature_level = *l;
        enc_record(e, PROTO_FEATURE_LEVEL_RECORD_API_KEY, &f);
    }
    size_t it = 0;
    const void *k;
    size_t kl;
    void *v;
    while (sm_map_next(&img->features, &it, &k, &kl, &v)) {
        if (kl == sizeof(mv) - 1 && !memcmp(k, mv, kl)) continue;
        proto_feature_level_record_init(&f);
        f.name = (sm_str_t){k, (int32_t)kl};
        f.feature_level = *(const int16_t *)v;
        enc_record(e, PROTO_FEATURE_LEVEL_RECORD_API_KEY, &f);
    }
}

static void enc_topic(snap_enc_t *e, const meta_topic_t *t) {
    proto_topic_record_t tr;
    proto_topic_record_init(&tr);
    tr.name = sm_str_from(t->name);
    tr.topic_id = t->id;
    enc_record(e, PROTO_TOPIC_RECORD_API_KEY, &tr);
    for (int32_t i = 0; i < t->n_partitions; i++) {
        const meta_partition_t *p = &t->partitions[i];
        /* A slot below the highest partition that no PartitionRecord filled: replaying
         * the higher ones recreates it. */
        if (!p->replicas) continue;
        proto_partition_record_t pr;
        proto_partition_record_init(&pr);
        pr.partition_id = p->id;
        pr.topic_id = t->id;
        pr.replicas = (sm_i32_array_t){p->n_replicas, p->replicas};
        pr.isr = (sm_i32_array_t){p->n_isr, p->isr};
        pr.leader = p->leader;
        pr.leader_epoch = p->leader_epoch;
        pr.partition_epoch = p->partition_epoch;
        pr.adding_replicas = (sm_i32_array_t){p->n_adding, p->adding};
        pr.removing_replicas = (sm_i32_array_t){p->n_removing, p->removing};
        /* the ELR fields are tagged fields of version 2 */
        int16_t v = p->n_elr > 0 || p->n_last_known_elr > 0 ? 2 : 0;
        pr.eligible_leader_replicas = (sm_i32_array_t){p->n_elr, p->elr};
        pr.last_known_elr = (sm_i32_array_t){p->n_last_known_elr, p->last_known_elr};
        enc_record_v(e, PROTO_PARTITION_RECORD_API_KEY, v, &pr);
    }
    enc_config(e, META_RESOURCE_TOPIC, tr.name, &t->configs);
}

static void enc_quotas(snap_enc_t *e, const meta_image_t *img) {
    size_t it = 0;
    const void *k;
    size_t kl;
    void *v;
    while (sm_map_next(&img->client_quotas, &it, &k, &kl, &v)) {
        meta_quota_part_t parts[META_QUOTA_MAX_PARTS];
        int n = meta_quota_entity_parts(k, kl, parts);
        proto_client_quota_record_entity_data_t ents[META_QUOTA_MAX_PARTS];
        for (int i = 0; i < n; i++) {
            memset(&ents[i], 0, sizeof(ents[i]));
            ents[i].entity_type = parts[i].type;
            ents[i].entity_name = parts[i].name;
        }
        size_t jt = 0;
        const void *qk;
        size_t qkl;
        void *qv;
        while (sm_map_next(v, &jt, &qk, &qkl, &qv)) {
            proto_client_quota_record_t q;
            proto_client_quota_record_init(&q);
            q.entity = (proto_client_quota_record_entity_data_array_t){n, ents};
            q.key = (sm_str_t){qk, (int32_t)qkl};
            q.value = *(const double *)qv;
            q.remove = false;
            enc_record(e, PROTO_CLIENT_QUOTA_RECORD_API_KEY, &q);
        }
    }
}

/* Registered brokers (cluster mode): their registration as it stands, fencing included. */
static void enc_brokers(snap_enc_t *e, const meta_image_t *img) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&img->brokers, &it, NULL, NULL, &v)) {
        const meta_broker_t *bk = v;
        proto_register_broker_record_t r;
        proto_register_broker_record_broker_endpoint_t eps[META_MAX_ENDPOINTS];
        proto_register_broker_record_init(&r);
        r.broker_id = bk->id;
        r.incarnation_id = bk->incarnation_id;
        r.broker_epoch = bk->epoch;
        for (int i = 0; i < bk->n_endpoints; i++) {
            memset(&eps[i], 0, sizeof(eps[i]));
            eps[i].name = sm_str_from(bk->endpoints[i].name);
            eps[i].host = sm_str_from(bk->endpoints[i].host);
            eps[i].port = (uint16_t)bk->endpoints[i].port;
            eps[i].security_protocol = bk->endpoints[i].security_protocol;
        }
        r.end_points =
            (proto_register_broker_record_broker_endpoint_array_t){bk->n_endpoints, eps};
        r.features.n = 0;
        r.rack = bk->has_rack ? sm_str_from(bk->rack) : SM_STR_NULL;
        r.fenced = bk->fenced;
        r.in_controlled_shutdown = bk->in_controlled_shutdown;
        enc_record_v(e, PROTO_REGISTER_BROKER_RECORD_API_KEY, 3, &r);
    }
}

int meta_snapshot_encode(const meta_image_t *img, raft_offset_epoch_t id,
                         int64_t last_contained_log_timestamp, const meta_snapshot_opts_t *opts,
                         uint8_t **data, size_t *len) {
    if (id.offset < 0 || id.epoch < 0) return SM_ERR_RANGE;
    meta_snapshot_opts_t o = opts ? *opts : (meta_snapshot_opts_t){0};
    snap_enc_t e = {0};
    e.epoch = id.epoch;
    e.ts = o.timestamp_ms ? o.timestamp_ms : sm_time_ms();
    e.max_batch = o.max_batch_bytes ? o.max_batch_bytes : META_SNAPSHOT_DEFAULT_BATCH_BYTES;
    e.batch_size = PROTO_BATCH_HEADER_SIZE;

    uint8_t ctl[64];
    proto_snapshot_header_record_t h;
    proto_snapshot_header_record_init(&h);
    h.version = 0;
    h.last_contained_log_timestamp = last_contained_log_timestamp;
    sm_writer_t w = sm_writer_make(ctl, sizeof(ctl));
    if ((e.status = proto_snapshot_header_record_encode(&w, 0, &h)) == SM_OK)
        enc_control(&e, META_CONTROL_SNAPSHOT_HEADER, ctl, (size_t)(w.p - ctl));
    if (o.voters) {
        uint8_t vbuf[RAFT_VOTERS_BYTES_MAX];
        size_t vlen;
        if ((e.status = raft_kraft_version_encode(1, ctl, sizeof(ctl), &vlen)) == SM_OK)
            enc_control(&e, META_CONTROL_KRAFT_VERSION, ctl, vlen);
        if (!e.status &&
            (e.status = raft_voters_encode(o.voters, vbuf, sizeof(vbuf), &vlen)) == SM_OK)
            enc_control(&e, META_CONTROL_KRAFT_VOTERS, vbuf, vlen);
    }

    enc_features(&e, img);
    enc_brokers(&e, img);
    size_t it = 0;
    void *v;
    while (sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v))
        enc_topic(&e, v);
    char node[16];
    snprintf(node, sizeof(node), "%" PRId32, o.node_id);
    enc_config(&e, META_RESOURCE_BROKER, SM_STR_LIT(""), &img->broker_default_configs);
    enc_config(&e, META_RESOURCE_BROKER, sm_str_from(node), &img->broker_configs);
    it = 0;
    const void *k;
    size_t kl;
    while (sm_map_next(&img->group_configs, &it, &k, &kl, &v))
        enc_config(&e, META_RESOURCE_GROUP, (sm_str_t){k, (int32_t)kl}, v);
    enc_quotas(&e, img);
    if (img->next_producer_id > 0) {
        /* The next block's start is the whole state; no broker asked for this one. */
        proto_producer_ids_record_t p;
        proto_producer_ids_record_init(&p);
        p.broker_id = -1;
        p.broker_epoch = -1;
        p.next_producer_id = img->next_producer_id;
        enc_record(&e, PROTO_PRODUCER_IDS_RECORD_API_KEY, &p);
    }
    enc_flush(&e);

    proto_snapshot_footer_record_t f;
    proto_snapshot_footer_record_init(&f);
    f.version = 0;
    w = sm_writer_make(ctl, sizeof(ctl));
    if (e.status == SM_OK && (e.status = proto_snapshot_footer_record_encode(&w, 0, &f)) == SM_OK)
        enc_control(&e, META_CONTROL_SNAPSHOT_FOOTER, ctl, (size_t)(w.p - ctl));

    free(e.vals.p);
    free(e.ends);
    if (e.status != SM_OK) {
        free(e.out.p);
        return e.status;
    }
    *data = e.out.p;
    *len = e.out.len;
    return SM_OK;
}

/* <dir>/<name of id>.checkpoint into path (cap bytes). */
static int snapshot_path(const char *dir, raft_offset_epoch_t id, char *path, size_t cap) {
    char name[64];
    if (raft_snapshot_file_name(id, name, sizeof(name)) != SM_OK) return SM_ERR_RANGE;
    int w = snprintf(path, cap, "%s/%s", dir, name);
    return (w < 0 || (size_t)w >= cap) ? SM_ERR_SPACE : SM_OK;
}

/* The snapshot's path and its .part (cap bytes each). */
static int snapshot_paths(const char *dir, raft_offset_epoch_t id, char *path, char *part,
                          size_t cap) {
    if (snapshot_path(dir, id, path, cap) != SM_OK) return SM_ERR_RANGE;
    int w = snprintf(part, cap, "%s.part", path);
    return (w < 0 || (size_t)w >= cap) ? SM_ERR_RANGE : SM_OK;
}

/* fsync of the .part, rename over path, fsync of dir; the .part is removed on failure. */
static int part_commit(const char *dir, const char *part, const char *path) {
    int rc = SM_OK;
    int fd = open(part, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? SM_ERR_NOTFOUND : SM_ERR_IO;
    if (fio_fsync(fd)) rc = SM_ERR_IO;
    close(fd);
    if (rc == SM_OK && rename(part, path)) rc = SM_ERR_IO;
    if (rc != SM_OK) {
        int saved = errno;
        unlink(part);
        errno = saved;
        return rc;
    }
    return fio_fsync_dir(dir) ? SM_ERR_IO : SM_OK;
}

int meta_snapshot_part_write(const char *dir, raft_offset_epoch_t id, int64_t position,
                             const uint8_t *data, size_t len) {
    char path[4096], part[4096];
    if (position < 0) return SM_ERR_RANGE;
    int rc = snapshot_paths(dir, id, path, part, sizeof(path));
    if (rc != SM_OK) return rc;
    int fd = open(part, O_WRONLY | O_CREAT | (position == 0 ? O_TRUNC : 0) | O_CLOEXEC, 0644);
    if (fd < 0) return SM_ERR_IO;
    rc = fio_pwrite_all(fd, data, len, position);
    if (close(fd) && rc == SM_OK) rc = SM_ERR_IO;
    return rc;
}

int meta_snapshot_write_bytes(const char *dir, raft_offset_epoch_t id, const uint8_t *data,
                              size_t len) {
    char path[4096], part[4096];
    int rc = snapshot_paths(dir, id, path, part, sizeof(path));
    if (rc != SM_OK) return rc;
    rc = meta_snapshot_part_write(dir, id, 0, data, len);
    if (rc != SM_OK) {
        int saved = errno;
        unlink(part);
        errno = saved;
        return rc;
    }
    return part_commit(dir, part, path);
}

int meta_snapshot_part_install(const char *dir, raft_offset_epoch_t id) {
    char path[4096], part[4096];
    int rc = snapshot_paths(dir, id, path, part, sizeof(path));
    if (rc != SM_OK) return rc;
    uint8_t *data = NULL;
    size_t len;
    rc = fio_read_file(part, &data, &len, META_SNAPSHOT_MAX_FILE_BYTES);
    if (rc == SM_ERR_NOTFOUND || rc == SM_ERR_IO || rc == SM_ERR_NOMEM) return rc;
    /* Too large for a snapshot, or not one: either way it is not installed. */
    if (rc == SM_OK) rc = meta_snapshot_verify(data, len, id.epoch, NULL);
    free(data);
    if (rc != SM_OK) {
        sm_error("snapshot", "the fetched snapshot %s is incomplete or corrupt; removed", part);
        unlink(part);
        return SM_ERR_CORRUPT;
    }
    return part_commit(dir, part, path);
}

int meta_snapshot_write(const meta_image_t *img, const char *dir, raft_offset_epoch_t id,
                        int64_t last_contained_log_timestamp, const meta_snapshot_opts_t *opts) {
    uint8_t *data;
    size_t len;
    int rc = meta_snapshot_encode(img, id, last_contained_log_timestamp, opts, &data, &len);
    if (rc != SM_OK) return rc;
    rc = meta_snapshot_write_bytes(dir, id, data, len);
    free(data);
    return rc;
}

/* ---- reading ---- */

/* Called for each metadata record in order; a non-OK status stops the walk. */
typedef int (*record_fn)(void *ctx, int16_t type, const void *msg);

/* The control record type of a control record's key, or -1 when the key is malformed. */
static int control_type(sm_bytes_t key) {
    if (key.len < 4) return -1;
    int16_t version = (int16_t)(key.ptr[0] << 8 | key.ptr[1]);
    if (version < 0) return -1;
    return (int16_t)(key.ptr[2] << 8 | key.ptr[3]);
}

/* Walk state: where in the header / data / footer framing the file is. */
typedef struct walk {
    int64_t next_offset;
    bool header, footer;
    meta_snapshot_info_t info;
} walk_t;

static int walk_control(walk_t *s, const proto_record_t *rec, sm_arena_t *a) {
    int t = control_type(rec->key);
    bool first = s->next_offset == 0;
    if (s->footer || t < 0 || rec->value.len < 0) return SM_ERR_CORRUPT;
    if (first != (t == META_CONTROL_SNAPSHOT_HEADER)) return SM_ERR_CORRUPT;
    sm_reader_t r = sm_reader_make(rec->value.ptr, (size_t)rec->value.len);
    if (t == META_CONTROL_SNAPSHOT_HEADER) {
        proto_snapshot_header_record_t h;
        if (proto_snapshot_header_record_decode(&r, a, 0, &h) != SM_OK || sm_rd_left(&r))
            return SM_ERR_CORRUPT;
        s->header = true;
        s->info.last_contained_log_timestamp = h.last_contained_log_timestamp;
    } else if (t == META_CONTROL_SNAPSHOT_FOOTER) {
        proto_snapshot_footer_record_t f;
        if (proto_snapshot_footer_record_decode(&r, a, 0, &f) != SM_OK || sm_rd_left(&r))
            return SM_ERR_CORRUPT;
        s->footer = true;
    } else if (t == META_CONTROL_KRAFT_VOTERS) { /* KIP-853: the voter set, for Raft */
        if (raft_voters_decode(rec->value.ptr, (size_t)rec->value.len, &s->info.voters) != SM_OK)
            return SM_ERR_CORRUPT;
    }
    /* KRaftVersion and unknown control types: not for the image. */
    return SM_OK;
}

static int walk_data(walk_t *s, const proto_record_t *rec, sm_arena_t *a, record_fn fn, void *ctx) {
    if (!s->header || s->footer || rec->value.len < 0) return SM_ERR_CORRUPT;
    int16_t type, version;
    void *msg;
    int rc = meta_record_read(rec->value.ptr, (size_t)rec->value.len, a, &type, &version, &msg);
    if (rc == SM_ERR_VERSION) {
        s->info.skipped++;
        return SM_OK;
    }
    if (rc != SM_OK) return rc == SM_ERR_NOMEM ? rc : SM_ERR_CORRUPT;
    s->info.records++;
    return fn ? fn(ctx, type, msg) : SM_OK;
}

/* Walks every batch and record of a snapshot, checking the framing, calling fn (may be
 * NULL) for each metadata record. */
static int walk_snapshot(const uint8_t *data, size_t len, int32_t expect_epoch, record_fn fn,
                         void *ctx, meta_snapshot_info_t *info) {
    walk_t s = {0};
    s.info.id = (raft_offset_epoch_t){-1, -1};
    s.info.size_bytes = (int64_t)len;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    uint8_t *plain = NULL;
    proto_batch_iter_t bi;
    proto_batch_iter_init(&bi, data, len);
    const uint8_t *batch;
    size_t blen;
    proto_batch_header_t h;
    int rc;
    while ((rc = proto_batch_iter_next(&bi, &batch, &blen, &h)) == 1) {
        if (proto_batch_validate(batch, blen, &h) != SM_OK || h.base_offset != s.next_offset ||
            h.records_count <= 0 || h.last_offset_delta != h.records_count - 1 ||
            (expect_epoch >= 0 && h.partition_leader_epoch != expect_epoch)) {
            rc = SM_ERR_CORRUPT;
            goto out;
        }
        const uint8_t *recs = batch + PROTO_BATCH_HEADER_SIZE;
        size_t rlen = blen - PROTO_BATCH_HEADER_SIZE;
        int codec = proto_batch_compression(&h);
        if (codec != PROTO_COMPRESSION_NONE) {
            free(plain);
            plain = NULL;
            if (proto_decompress_alloc(codec, recs, rlen, MAX_DECOMPRESSED_BATCH, &plain, &rlen) !=
                SM_OK) {
                rc = SM_ERR_CORRUPT;
                goto out;
            }
            recs = plain;
        }
        proto_record_iter_t ri;
        proto_record_iter_init(&ri, recs, rlen, h.records_count);
        proto_record_t rec;
        int32_t i = 0;
        while ((rc = proto_record_iter_next(&ri, &rec)) == 1) {
            if (rec.offset_delta != i++) {
                rc = SM_ERR_CORRUPT;
                goto out;
            }
            rc = (h.attributes & PROTO_ATTR_CONTROL) ? walk_control(&s, &rec, &a)
                                                     : walk_data(&s, &rec, &a, fn, ctx);
            if (rc != SM_OK) goto out;
            s.next_offset++;
        }
        if (rc < 0 || i != h.records_count || ri.p != ri.end) {
            rc = SM_ERR_CORRUPT;
            goto out;
        }
        s.info.batches++;
        sm_arena_reset(&a);
    }
    /* rc 0: a clean end; anything else is a torn or corrupt tail. */
    rc = (rc == 0 && s.header && s.footer) ? SM_OK : SM_ERR_CORRUPT;
out:
    free(plain);
    sm_arena_free(&a);
    if (info) *info = s.info;
    return rc;
}

int meta_snapshot_verify(const uint8_t *data, size_t len, int32_t expect_epoch,
                         meta_snapshot_info_t *info) {
    return walk_snapshot(data, len, expect_epoch, NULL, NULL, info);
}

int meta_snapshot_parse_name(const char *name, raft_offset_epoch_t *id) {
    size_t n = strlen(name);
    if (n != META_SNAPSHOT_NAME_LEN || name[20] != '-' ||
        strcmp(name + 31, META_SNAPSHOT_SUFFIX) != 0)
        return SM_ERR_PARSE;
    int64_t off = 0, ep = 0;
    for (int i = 0; i < 31; i++) {
        if (i == 20) continue;
        if (name[i] < '0' || name[i] > '9') return SM_ERR_PARSE;
        int64_t *acc = i < 20 ? &off : &ep;
        if (*acc > (INT64_MAX - 9) / 10) return SM_ERR_PARSE;
        *acc = *acc * 10 + (name[i] - '0');
    }
    if (ep > INT32_MAX) return SM_ERR_PARSE;
    *id = (raft_offset_epoch_t){off, (int32_t)ep};
    return SM_OK;
}

typedef struct apply_ctx {
    meta_image_t *img;
    int64_t offset;
} apply_ctx_t;

static int apply_record(void *ctx, int16_t type, const void *msg) {
    apply_ctx_t *c = ctx;
    return meta_image_apply(c->img, type, msg, c->offset);
}

int meta_snapshot_load(meta_image_t *img, const char *path, meta_snapshot_info_t *info) {
    const char *slash = strrchr(path, '/');
    raft_offset_epoch_t id;
    if (meta_snapshot_parse_name(slash ? slash + 1 : path, &id) != SM_OK)
        id = (raft_offset_epoch_t){-1, -1};
    uint8_t *data = NULL;
    size_t len;
    int rc = fio_read_file(path, &data, &len, META_SNAPSHOT_MAX_FILE_BYTES);
    if (rc != SM_OK) return rc == SM_ERR_RANGE ? SM_ERR_CORRUPT : rc;
    meta_snapshot_info_t got;
    rc = walk_snapshot(data, len, id.epoch, NULL, NULL, &got);
    if (rc == SM_OK) {
        apply_ctx_t c = {img, id.offset >= 0 ? id.offset - 1 : -1};
        meta_image_wrlock(img);
        rc = walk_snapshot(data, len, id.epoch, apply_record, &c, &got);
        img->last_offset = c.offset;
        meta_image_unlock(img);
    }
    got.id = id;
    if (info) *info = got;
    free(data);
    return rc;
}

/* ---- the directory ---- */

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int id_cmp_desc(const void *a, const void *b) {
    const raft_offset_epoch_t *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? 1 : -1;
    return (x->epoch < y->epoch) - (x->epoch > y->epoch);
}

/* Whether the snapshot file at path is complete and well-formed. */
static bool snapshot_usable(const char *path, raft_offset_epoch_t id) {
    uint8_t *data = NULL;
    size_t len;
    if (fio_read_file(path, &data, &len, META_SNAPSHOT_MAX_FILE_BYTES) != SM_OK) return false;
    bool ok = meta_snapshot_verify(data, len, id.epoch, NULL) == SM_OK;
    free(data);
    return ok;
}

/* Lists the snapshot ids in dir, removing crash leftovers; *ids is malloc'd. */
static int scan_dir(const char *dir, raft_offset_epoch_t **ids, int *n, bool *removed) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? SM_ERR_NOTFOUND : SM_ERR_IO;
    int rc = SM_OK, cap = 0;
    *ids = NULL;
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        raft_offset_epoch_t id;
        if (ends_with(de->d_name, META_SNAPSHOT_PART_SUFFIX) ||
            ends_with(de->d_name, META_SNAPSHOT_DELETED_SUFFIX)) {
            if (unlinkat(dirfd(d), de->d_name, 0) && errno != ENOENT) {
                rc = SM_ERR_IO;
                break;
            }
            sm_info("snapshot", "removed the leftover %s/%s", dir, de->d_name);
            *removed = true;
        } else if (meta_snapshot_parse_name(de->d_name, &id) == SM_OK) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 8;
                raft_offset_epoch_t *p = realloc(*ids, sizeof(*p) * (size_t)cap);
                if (!p) {
                    rc = SM_ERR_NOMEM;
                    break;
                }
                *ids = p;
            }
            (*ids)[(*n)++] = id;
        }
    }
    closedir(d);
    if (rc != SM_OK) {
        free(*ids);
        *ids = NULL;
    }
    return rc;
}

int meta_snapshot_latest(const char *dir, int keep, raft_offset_epoch_t *id, char *path,
                         size_t cap) {
    raft_offset_epoch_t *ids;
    int n;
    bool changed = false;
    int rc = scan_dir(dir, &ids, &n, &changed);
    if (rc != SM_OK) return rc;
    if (n > 0) qsort(ids, (size_t)n, sizeof(*ids), id_cmp_desc);
    char p[4096];
    int chosen = -1;
    for (int i = 0; i < n && chosen < 0; i++) {
        if ((rc = snapshot_path(dir, ids[i], p, sizeof(p))) != SM_OK) goto out;
        if (snapshot_usable(p, ids[i]))
            chosen = i;
        else
            sm_error("snapshot", "%s is incomplete or corrupt; an older snapshot is used", p);
    }
    if (chosen < 0) {
        rc = SM_ERR_NOTFOUND;
        goto out;
    }
    int kept = 1;
    for (int i = chosen + 1; i < n; i++) {
        if (kept < (keep > 0 ? keep : 1)) {
            kept++;
            continue;
        }
        if ((rc = snapshot_path(dir, ids[i], p, sizeof(p))) != SM_OK) goto out;
        if (unlink(p) && errno != ENOENT) {
            rc = SM_ERR_IO;
            goto out;
        }
        changed = true;
    }
    if (changed && fio_fsync_dir(dir)) {
        rc = SM_ERR_IO;
        goto out;
    }
    *id = ids[chosen];
    rc = snapshot_path(dir, ids[chosen], path, cap);
out:
    free(ids);
    return rc;
}

int meta_snapshot_read(void *ctx, raft_offset_epoch_t id, int64_t position, uint8_t *buf,
                       uint32_t max, uint32_t *n, int64_t *size) {
    char path[4096];
    if (position < 0 || snapshot_path(ctx, id, path, sizeof(path)) != SM_OK) return SM_ERR_NOTFOUND;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? SM_ERR_NOTFOUND : SM_ERR_IO;
    struct stat st;
    int rc = SM_OK;
    if (fstat(fd, &st)) {
        rc = SM_ERR_IO;
        goto out;
    }
    *size = (int64_t)st.st_size;
    *n = 0;
    if (position < *size) {
        int64_t left = *size - position;
        uint32_t want = left < (int64_t)max ? (uint32_t)left : max;
        if ((rc = fio_pread_all(fd, buf, want, position)) != SM_OK) goto out;
        *n = want;
    }
out:
    close(fd);
    return rc;
}
