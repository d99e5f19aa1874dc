/*
 * Metadata snapshots (.checkpoint): random images written and loaded back are equal, the
 * file is laid out as Kafka's RecordsSnapshotWriter lays it out, a truncated or bit-flipped
 * file is refused, crash leftovers and old snapshots are cleaned up, a failed write leaves
 * nothing behind, the FetchSnapshot reader returns the file's bytes, and a snapshot fetched
 * in chunks installs only when whole.
 *
 * `test_meta_snapshot --write DIR` writes one snapshot of a fixed image into DIR and prints
 * its path; `test_meta_snapshot --load FILE` loads a snapshot and prints what the image got
 * (tests/integration/test_meta_snapshot_kafka.py: Kafka reads ours, we read Kafka's).
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/log.h"
#include "metadata/snapshot.h"
#include "protocol/gen/client_quota_record.h"
#include "protocol/gen/config_record.h"
#include "protocol/gen/feature_level_record.h"
#include "protocol/gen/partition_record.h"
#include "protocol/gen/producer_ids_record.h"
#include "protocol/gen/topic_record.h"
#include "protocol/records.h"
#include "raft/quorum_file.h"
#include "test.h"

/* ---- building images ---- */

static uint64_t rng;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static int apply_ok(meta_image_t *img, int16_t type, const void *msg) {
    int rc = meta_image_apply(img, type, msg, 0);
    if (rc != SM_OK) fprintf(stderr, "apply of record type %d failed: %d\n", type, rc);
    return rc;
}

static void put_config(meta_image_t *img, int8_t type, const char *resource, const char *name,
                       const char *value) {
    proto_config_record_t c;
    proto_config_record_init(&c);
    c.resource_type = type;
    c.resource_name = sm_str_from(resource);
    c.name = sm_str_from(name);
    c.value = sm_str_from(value);
    apply_ok(img, PROTO_CONFIG_RECORD_API_KEY, &c);
}

static void put_feature(meta_image_t *img, const char *name, int16_t level) {
    proto_feature_level_record_t f;
    proto_feature_level_record_init(&f);
    f.name = sm_str_from(name);
    f.feature_level = level;
    apply_ok(img, PROTO_FEATURE_LEVEL_RECORD_API_KEY, &f);
}

static void put_topic(meta_image_t *img, const char *name, int32_t partitions, bool gap) {
    proto_topic_record_t t;
    proto_topic_record_init(&t);
    t.name = sm_str_from(name);
    for (int i = 0; i < 16; i++)
        t.topic_id.b[i] = (uint8_t)rnd(256);
    apply_ok(img, PROTO_TOPIC_RECORD_API_KEY, &t);
    for (int32_t p = 0; p < partitions; p++) {
        if (gap && p == 0 && partitions > 1) continue; /* a slot no record filled */
        int32_t replicas[5], isr[5];
        int32_t nr = 1 + (int32_t)rnd(5), ni = (int32_t)rnd((uint32_t)nr + 1);
        for (int32_t i = 0; i < nr; i++)
            replicas[i] = (int32_t)rnd(1000);
        for (int32_t i = 0; i < ni; i++)
            isr[i] = replicas[i];
        proto_partition_record_t pr;
        proto_partition_record_init(&pr);
        pr.partition_id = p;
        pr.topic_id = t.topic_id;
        pr.replicas = (sm_i32_array_t){nr, replicas};
        pr.isr = (sm_i32_array_t){ni, isr};
        pr.leader = ni ? isr[0] : -1;
        pr.leader_epoch = (int32_t)rnd(100000);
        pr.partition_epoch = (int32_t)rnd(100000);
        /* eligible leader replicas (KIP-966): some of those out of the ISR, the others
         * last known (version 2 tagged fields in the snapshot) */
        int32_t elr[5], lke[5], ne = 0, nl = 0;
        for (int32_t i = ni; i < nr; i++) {
            if (rnd(2))
                elr[ne++] = replicas[i];
            else
                lke[nl++] = replicas[i];
        }
        pr.eligible_leader_replicas = (sm_i32_array_t){ne, elr};
        pr.last_known_elr = (sm_i32_array_t){nl, lke};
        apply_ok(img, PROTO_PARTITION_RECORD_API_KEY, &pr);
    }
}

static void put_quota(meta_image_t *img, int nparts, const char *key, double value) {
    static const char *types[] = {"user", "client-id", "ip"};
    proto_client_quota_record_entity_data_t ents[3];
    char names[3][16];
    int first = (int)rnd(3);
    for (int i = 0; i < nparts; i++) {
        memset(&ents[i], 0, sizeof(ents[i]));
        ents[i].entity_type = sm_str_from(types[(first + i) % 3]);
        snprintf(names[i], sizeof(names[i]), "e%u", rnd(50));
        ents[i].entity_name = rnd(4) ? sm_str_from(names[i]) : SM_STR_NULL;
    }
    proto_client_quota_record_t q;
    proto_client_quota_record_init(&q);
    q.entity = (proto_client_quota_record_entity_data_array_t){nparts, ents};
    q.key = sm_str_from(key);
    q.value = value;
    apply_ok(img, PROTO_CLIENT_QUOTA_RECORD_API_KEY, &q);
}

static void put_producer_ids(meta_image_t *img, int64_t next) {
    proto_producer_ids_record_t p;
    proto_producer_ids_record_init(&p);
    p.broker_id = 1;
    p.next_producer_id = next;
    apply_ok(img, PROTO_PRODUCER_IDS_RECORD_API_KEY, &p);
}

/* An image with everything the image tracks, drawn from the seed. */
static void random_image(meta_image_t *img, uint64_t seed) {
    rng = seed * 0x9e3779b97f4a7c15ull + 1;
    static const char *quota_keys[] = {"producer_byte_rate", "consumer_byte_rate",
                                       "request_percentage", "connection_creation_rate"};
    static const char *features[] = {"group.version", "transaction.version", "kraft.version"};
    put_feature(img, "metadata.version", (int16_t)(1 + rnd(30)));
    for (int i = 0; i < 3; i++)
        if (rnd(2)) put_feature(img, features[i], (int16_t)(1 + rnd(3)));
    int topics = (int)rnd(40);
    for (int i = 0; i < topics; i++) {
        char name[64];
        snprintf(name, sizeof(name), "topic-%d.%u", i, rnd(1000000));
        put_topic(img, name, 1 + (int32_t)rnd(12), rnd(6) == 0);
        int nc = (int)rnd(4);
        for (int c = 0; c < nc; c++) {
            char cn[32], cv[32];
            snprintf(cn, sizeof(cn), "config.%d", c);
            snprintf(cv, sizeof(cv), "%u", rnd(1u << 30));
            put_config(img, META_RESOURCE_TOPIC, name, cn, cv);
        }
    }
    int nb = (int)rnd(4);
    for (int c = 0; c < nb; c++) {
        char cn[32], cv[32];
        snprintf(cn, sizeof(cn), "broker.config.%d", c);
        snprintf(cv, sizeof(cv), "v%u", rnd(1000));
        put_config(img, META_RESOURCE_BROKER, "", cn, cv);
        if (rnd(2)) put_config(img, META_RESOURCE_BROKER, "7", cn, "mine");
    }
    int ng = (int)rnd(5);
    for (int g = 0; g < ng; g++) {
        char gn[32];
        snprintf(gn, sizeof(gn), "group-%d", g);
        put_config(img, META_RESOURCE_GROUP, gn, "consumer.session.timeout.ms", "45000");
        if (rnd(2))
            put_config(img, META_RESOURCE_GROUP, gn, "consumer.heartbeat.interval.ms", "5000");
    }
    int nq = (int)rnd(12);
    for (int q = 0; q < nq; q++)
        put_quota(img, 1 + (int)rnd(3), quota_keys[rnd(4)], (double)rnd(1u << 20) / 7.0);
    if (rnd(4)) put_producer_ids(img, 1000 * (int64_t)(1 + rnd(1000)));
}

/* ---- image equality ---- */

typedef enum { VAL_STR, VAL_DOUBLE, VAL_I16, VAL_MAP_STR, VAL_MAP_DOUBLE } val_kind_t;

static bool maps_equal(const sm_map_t *a, const sm_map_t *b, val_kind_t k, const char *what);

static bool vals_equal(val_kind_t k, const void *a, const void *b, const char *what) {
    switch (k) {
    case VAL_STR: return strcmp(a, b) == 0;
    case VAL_DOUBLE: return *(const double *)a == *(const double *)b;
    case VAL_I16: return *(const int16_t *)a == *(const int16_t *)b;
    case VAL_MAP_STR: return maps_equal(a, b, VAL_STR, what);
    case VAL_MAP_DOUBLE: return maps_equal(a, b, VAL_DOUBLE, what);
    }
    return false;
}

/* Same keys and equal values (maps of maps compared inside); `what` names the map in the
 * failure message. */
static bool maps_equal(const sm_map_t *a, const sm_map_t *b, val_kind_t k, const char *what) {
    if (sm_map_size(a) != sm_map_size(b)) {
        fprintf(stderr, "%s: %zu entries, expected %zu\n", what, sm_map_size(b), sm_map_size(a));
        return false;
    }
    size_t it = 0;
    const void *key;
    size_t kl;
    void *v;
    while (sm_map_next(a, &it, &key, &kl, &v)) {
        void *w = sm_map_get(b, key, kl);
        if (!w || !vals_equal(k, v, w, what)) {
            fprintf(stderr, "%s: an entry of %zu key bytes %s\n", what, kl,
                    w ? "differs" : "is missing");
            return false;
        }
    }
    return true;
}

static bool arrays_equal(const int32_t *a, int32_t na, const int32_t *b, int32_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0);
}

static bool topics_equal(const meta_topic_t *a, const meta_topic_t *b) {
    if (memcmp(a->id.b, b->id.b, 16) || a->n_partitions != b->n_partitions ||
        a->internal != b->internal) {
        fprintf(stderr, "topic %s: id, partition count or internal flag differs\n", a->name);
        return false;
    }
    for (int32_t i = 0; i < a->n_partitions; i++) {
        const meta_partition_t *p = &a->partitions[i], *q = &b->partitions[i];
        if (p->id != q->id || p->leader != q->leader || p->leader_epoch != q->leader_epoch ||
            p->partition_epoch != q->partition_epoch ||
            (p->replicas == NULL) != (q->replicas == NULL) ||
            !arrays_equal(p->replicas, p->n_replicas, q->replicas, q->n_replicas) ||
            !arrays_equal(p->isr, p->n_isr, q->isr, q->n_isr) ||
            !arrays_equal(p->elr, p->n_elr, q->elr, q->n_elr) ||
            !arrays_equal(p->last_known_elr, p->n_last_known_elr, q->last_known_elr,
                          q->n_last_known_elr)) {
            fprintf(stderr, "topic %s partition %d differs\n", a->name, i);
            return false;
        }
    }
    return maps_equal(&a->configs, &b->configs, VAL_STR, a->name);
}

static bool images_equal(const meta_image_t *a, const meta_image_t *b) {
    if (sm_map_size(&a->topics_by_name) != sm_map_size(&b->topics_by_name) ||
        sm_map_size(&a->topics_by_id) != sm_map_size(&b->topics_by_id)) {
        fprintf(stderr, "topic count %zu, expected %zu\n", sm_map_size(&b->topics_by_name),
                sm_map_size(&a->topics_by_name));
        return false;
    }
    size_t it = 0;
    void *v;
    while (sm_map_next(&a->topics_by_name, &it, NULL, NULL, &v)) {
        const meta_topic_t *t = v, *u = meta_image_topic(b, sm_str_from(t->name));
        if (!u || meta_image_topic_by_id(b, &t->id) != u) {
            fprintf(stderr, "topic %s is missing\n", t->name);
            return false;
        }
        if (!topics_equal(t, u)) return false;
    }
    if (a->next_producer_id != b->next_producer_id) {
        fprintf(stderr, "next producer id %lld, expected %lld\n", (long long)b->next_producer_id,
                (long long)a->next_producer_id);
        return false;
    }
    return maps_equal(&a->broker_configs, &b->broker_configs, VAL_STR, "broker configs") &&
           maps_equal(&a->broker_default_configs, &b->broker_default_configs, VAL_STR,
                      "broker defaults") &&
           maps_equal(&a->group_configs, &b->group_configs, VAL_MAP_STR, "group configs") &&
           maps_equal(&a->client_quotas, &b->client_quotas, VAL_MAP_DOUBLE, "client quotas") &&
           maps_equal(&a->features, &b->features, VAL_I16, "features");
}

/* ---- helpers ---- */

static char *tmp_dir(void) {
    char *d = strdup("/tmp/samsa-snapshot-XXXXXX");
    if (!d || !mkdtemp(d)) abort();
    return d;
}

static void rm_dir(char *d) {
    fio_remove_tree(d);
    free(d);
}

static bool exists(const char *dir, const char *name) {
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static const meta_snapshot_opts_t small_batches = {.max_batch_bytes = 700, .node_id = 7};

/* ---- tests ---- */

/* Random images survive write + load unchanged, whatever the batch size. */
static void test_round_trip_random_images(void) {
    char *dir = tmp_dir();
    for (uint64_t seed = 1; seed <= 120; seed++) {
        meta_image_t a, b;
        REQUIRE(meta_image_init(&a) == SM_OK && meta_image_init(&b) == SM_OK);
        random_image(&a, seed);
        meta_snapshot_opts_t o = {.max_batch_bytes = seed % 3 == 0 ? 0 : 200 + rnd(4000),
                                  .node_id = 7};
        raft_offset_epoch_t id = {(int64_t)seed * 1000 + 17, (int32_t)(seed % 9)};
        CHECK_EQ_INT(SM_OK, meta_snapshot_write(&a, dir, id, 1700000000000 + (int64_t)seed, &o));
        char name[64], path[4096];
        raft_snapshot_file_name(id, name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        meta_snapshot_info_t info;
        int rc = meta_snapshot_load(&b, path, &info);
        CHECK_EQ_INT(SM_OK, rc);
        if (rc == SM_OK) {
            if (!images_equal(&a, &b)) {
                fprintf(stderr, "seed %llu: loaded image differs\n", (unsigned long long)seed);
                CHECK(false);
            }
            CHECK_EQ_INT(id.offset - 1, b.last_offset);
            CHECK_EQ_INT(id.offset, info.id.offset);
            CHECK_EQ_INT(id.epoch, info.id.epoch);
            CHECK_EQ_INT(1700000000000 + (int64_t)seed, info.last_contained_log_timestamp);
            CHECK_EQ_INT(0, info.skipped);
        }
        unlink(path);
        meta_image_free(&a);
        meta_image_free(&b);
    }
    CHECK_EQ_INT(0, count_entries(dir));
    rm_dir(dir);
}

/* An empty image is a header batch and a footer batch, and loads as empty. */
static void test_empty_image(void) {
    meta_image_t a, b;
    REQUIRE(meta_image_init(&a) == SM_OK && meta_image_init(&b) == SM_OK);
    uint8_t *data;
    size_t len;
    REQUIRE(meta_snapshot_encode(&a, (raft_offset_epoch_t){5, 2}, 9, NULL, &data, &len) == SM_OK);
    meta_snapshot_info_t info;
    CHECK_EQ_INT(SM_OK, meta_snapshot_verify(data, len, 2, &info));
    CHECK_EQ_INT(2, info.batches);
    CHECK_EQ_INT(0, info.records);
    CHECK_EQ_INT(9, info.last_contained_log_timestamp);
    char *dir = tmp_dir();
    CHECK_EQ_INT(SM_OK, meta_snapshot_write_bytes(dir, (raft_offset_epoch_t){5, 2}, data, len));
    char path[4096];
    snprintf(path, sizeof(path), "%s/00000000000000000005-0000000002.checkpoint", dir);
    CHECK_EQ_INT(SM_OK, meta_snapshot_load(&b, path, NULL));
    CHECK(images_equal(&a, &b));
    CHECK_EQ_INT(4, b.last_offset);
    free(data);
    rm_dir(dir);
    meta_image_free(&a);
    meta_image_free(&b);
}

/* Control record type of the first record of a control batch. */
static int first_control_type(const uint8_t *batch, size_t len) {
    proto_record_iter_t ri;
    proto_batch_header_t h;
    proto_batch_parse_header(batch, len, &h);
    proto_record_iter_init(&ri, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h.records_count);
    proto_record_t rec;
    if (proto_record_iter_next(&ri, &rec) != 1 || rec.key.len != 4) return -1;
    return rec.key.ptr[2] << 8 | rec.key.ptr[3];
}

/* Kafka's layout: a header control batch at offset 0, data batches with consecutive
 * offsets, bounded in size, a footer control batch last; leader epoch = snapshot epoch. */
static void test_layout_is_kafkas(void) {
    meta_image_t a;
    REQUIRE(meta_image_init(&a) == SM_OK);
    random_image(&a, 77);
    for (int i = 0; i < 30; i++) {
        char name[32];
        snprintf(name, sizeof(name), "many-%d", i);
        put_topic(&a, name, 10, false);
    }
    uint8_t *data;
    size_t len;
    REQUIRE(meta_snapshot_encode(&a, (raft_offset_epoch_t){4242, 6}, 1, &small_batches, &data,
                                 &len) == SM_OK);
    proto_batch_iter_t it;
    proto_batch_iter_init(&it, data, len);
    const uint8_t *batch, *last = NULL;
    size_t blen, last_len = 0;
    proto_batch_header_t h;
    int64_t next = 0;
    int n = 0, data_batches = 0;
    while (proto_batch_iter_next(&it, &batch, &blen, &h) == 1) {
        CHECK_EQ_INT(next, h.base_offset);
        CHECK_EQ_INT(6, h.partition_leader_epoch);
        CHECK_EQ_INT(-1, h.producer_id);
        CHECK_EQ_INT(0, proto_batch_compression(&h));
        bool control = h.attributes & PROTO_ATTR_CONTROL;
        if (n == 0) {
            CHECK(control);
            CHECK_EQ_INT(META_CONTROL_SNAPSHOT_HEADER, first_control_type(batch, blen));
        } else if (!control) {
            data_batches++;
            CHECK(blen <= small_batches.max_batch_bytes || h.records_count == 1);
        }
        next = proto_batch_last_offset(&h) + 1;
        last = batch;
        last_len = blen;
        n++;
    }
    CHECK(data_batches > 5);
    REQUIRE(last != NULL);
    proto_batch_parse_header(last, last_len, &h);
    CHECK(h.attributes & PROTO_ATTR_CONTROL);
    CHECK_EQ_INT(1, h.records_count);
    CHECK_EQ_INT(META_CONTROL_SNAPSHOT_FOOTER, first_control_type(last, last_len));
    free(data);
    meta_image_free(&a);
}

/* Every truncation and every single bit flip of a snapshot is refused. */
static void test_damaged_files_refused(void) {
    meta_image_t a;
    REQUIRE(meta_image_init(&a) == SM_OK);
    random_image(&a, 5);
    uint8_t *data;
    size_t len;
    REQUIRE(meta_snapshot_encode(&a, (raft_offset_epoch_t){100, 3}, 1, &small_batches, &data,
                                 &len) == SM_OK);
    REQUIRE(meta_snapshot_verify(data, len, 3, NULL) == SM_OK);
    int accepted = 0;
    for (size_t cut = 0; cut < len; cut++)
        if (meta_snapshot_verify(data, cut, 3, NULL) == SM_OK) accepted++;
    CHECK_EQ_INT(0, accepted);
    uint8_t *copy = malloc(len);
    REQUIRE(copy != NULL);
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(copy, data, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (meta_snapshot_verify(copy, len, 3, NULL) == SM_OK) {
            if (accepted++ < 3) fprintf(stderr, "flip of bit %zu accepted\n", bit);
        }
    }
    CHECK_EQ_INT(0, accepted);
    /* A snapshot with an extra batch after the footer (a later write appended). */
    uint8_t *twice = malloc(len * 2);
    REQUIRE(twice != NULL);
    memcpy(twice, data, len);
    memcpy(twice + len, data, len);
    CHECK_EQ_INT(SM_ERR_CORRUPT, meta_snapshot_verify(twice, len * 2, 3, NULL));
    /* The wrong epoch for the file name. */
    CHECK_EQ_INT(SM_ERR_CORRUPT, meta_snapshot_verify(data, len, 4, NULL));

    /* Through files: a truncated file and a flipped byte, loaded by path. */
    char *dir = tmp_dir();
    char path[4096];
    snprintf(path, sizeof(path), "%s/00000000000000000100-0000000003.checkpoint", dir);
    meta_image_t b;
    REQUIRE(meta_image_init(&b) == SM_OK);
    CHECK_EQ_INT(SM_OK, fio_write_file(path, data, len - 1, false));
    CHECK_EQ_INT(SM_ERR_CORRUPT, meta_snapshot_load(&b, path, NULL));
    memcpy(copy, data, len);
    copy[len / 2] ^= 0x40;
    CHECK_EQ_INT(SM_OK, fio_write_file(path, copy, len, false));
    CHECK_EQ_INT(SM_ERR_CORRUPT, meta_snapshot_load(&b, path, NULL));
    /* Refused before anything was applied. */
    CHECK_EQ_INT(0, sm_map_size(&b.topics_by_name));
    CHECK_EQ_INT(0, sm_map_size(&b.features));
    CHECK_EQ_INT(-1, b.last_offset);
    snprintf(path, sizeof(path), "%s/missing.checkpoint", dir);
    CHECK_EQ_INT(SM_ERR_NOTFOUND, meta_snapshot_load(&b, path, NULL));
    rm_dir(dir);
    meta_image_free(&b);
    free(twice);
    free(copy);
    free(data);
    meta_image_free(&a);
}

static void write_raw(const char *dir, const char *name, const void *data, size_t len) {
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if (fio_write_file(p, data, len, false) != SM_OK) abort();
}

/* At start: .part and .deleted leftovers are removed, a corrupt newer snapshot is passed
 * over (and kept), the newest complete one is chosen, older ones beyond `keep` go. */
static void test_latest_and_leftovers(void) {
    char *dir = tmp_dir();
    raft_offset_epoch_t id;
    char path[4096];
    CHECK_EQ_INT(SM_ERR_NOTFOUND, meta_snapshot_latest(dir, 2, &id, path, sizeof(path)));
    CHECK_EQ_INT(SM_ERR_NOTFOUND,
                 meta_snapshot_latest("/nonexistent/samsa-snapshots", 2, &id, path, sizeof(path)));
    meta_image_t a;
    REQUIRE(meta_image_init(&a) == SM_OK);
    random_image(&a, 9);
    raft_offset_epoch_t ids[] = {{10, 1}, {20, 1}, {30, 2}, {30, 1}};
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(SM_OK, meta_snapshot_write(&a, dir, ids[i], 0, NULL));
    /* A crash mid-write of a newer snapshot, and a deletion that did not finish. */
    write_raw(dir, "00000000000000000040-0000000002.checkpoint.part", "torn", 4);
    write_raw(dir, "00000000000000000005-0000000001.checkpoint.deleted", "old", 3);
    /* A newer snapshot that is damaged (truncated to its header). */
    uint8_t *data;
    size_t len;
    REQUIRE(meta_snapshot_encode(&a, (raft_offset_epoch_t){50, 2}, 0, NULL, &data, &len) == SM_OK);
    write_raw(dir, "00000000000000000050-0000000002.checkpoint", data, len / 2);
    write_raw(dir, "not-a-snapshot.txt", "x", 1);

    CHECK_EQ_INT(SM_OK, meta_snapshot_latest(dir, 2, &id, path, sizeof(path)));
    CHECK_EQ_INT(30, id.offset);
    CHECK_EQ_INT(2, id.epoch);
    char want[4096];
    snprintf(want, sizeof(want), "%s/00000000000000000030-0000000002.checkpoint", dir);
    CHECK(strcmp(want, path) == 0);
    CHECK(!exists(dir, "00000000000000000040-0000000002.checkpoint.part"));
    CHECK(!exists(dir, "00000000000000000005-0000000001.checkpoint.deleted"));
    CHECK(exists(dir, "00000000000000000050-0000000002.checkpoint"));
    CHECK(exists(dir, "00000000000000000030-0000000002.checkpoint"));
    CHECK(exists(dir, "00000000000000000030-0000000001.checkpoint"));
    CHECK(!exists(dir, "00000000000000000020-0000000001.checkpoint"));
    CHECK(!exists(dir, "00000000000000000010-0000000001.checkpoint"));
    CHECK(exists(dir, "not-a-snapshot.txt"));
    /* The chosen one loads. */
    meta_image_t b;
    REQUIRE(meta_image_init(&b) == SM_OK);
    CHECK_EQ_INT(SM_OK, meta_snapshot_load(&b, path, NULL));
    CHECK(images_equal(&a, &b));
    meta_image_free(&b);
    /* keep = 1 leaves only the chosen one (and the damaged newer one). */
    CHECK_EQ_INT(SM_OK, meta_snapshot_latest(dir, 1, &id, path, sizeof(path)));
    CHECK(!exists(dir, "00000000000000000030-0000000001.checkpoint"));
    CHECK_EQ_INT(3, count_entries(dir));
    /* A path buffer that is too small. */
    char tiny[8];
    CHECK_EQ_INT(SM_ERR_SPACE, meta_snapshot_latest(dir, 1, &id, tiny, sizeof(tiny)));
    free(data);
    meta_image_free(&a);
    rm_dir(dir);
}

/* A write that fails (ENOSPC, a failed fsync) leaves neither a .checkpoint nor a .part. */
static void test_failed_write_leaves_nothing(void) {
    char *dir = tmp_dir();
    meta_image_t a;
    REQUIRE(meta_image_init(&a) == SM_OK);
    random_image(&a, 3);
    raft_offset_epoch_t id = {77, 1};
    fio_fault_set_short(0, 10, ENOSPC);
    CHECK_EQ_INT(SM_ERR_IO, meta_snapshot_write(&a, dir, id, 0, NULL));
    fio_fault_set(0, 0);
    CHECK_EQ_INT(0, count_entries(dir));
    fio_fault_set_sync(0, EIO);
    CHECK_EQ_INT(SM_ERR_IO, meta_snapshot_write(&a, dir, id, 0, NULL));
    fio_fault_set_sync(0, 0);
    CHECK_EQ_INT(0, count_entries(dir));
    CHECK_EQ_INT(SM_OK, meta_snapshot_write(&a, dir, id, 0, NULL));
    CHECK_EQ_INT(1, count_entries(dir));
    CHECK(exists(dir, "00000000000000000077-0000000001.checkpoint"));
    CHECK_EQ_INT(SM_ERR_IO, meta_snapshot_write(&a, "/nonexistent/samsa-snapshots", id, 0, NULL));
    CHECK_EQ_INT(SM_ERR_RANGE, meta_snapshot_write(&a, dir, (raft_offset_epoch_t){-1, 0}, 0, NULL));
    meta_image_free(&a);
    rm_dir(dir);
}

/* The FetchSnapshot reader returns the file's bytes chunk by chunk, its size, nothing past
 * the end, and NOTFOUND for a snapshot that is not there. */
static void test_snapshot_read_hook(void) {
    char *dir = tmp_dir();
    meta_image_t a;
    REQUIRE(meta_image_init(&a) == SM_OK);
    random_image(&a, 11);
    raft_offset_epoch_t id = {300, 4};
    uint8_t *data;
    size_t len;
    REQUIRE(meta_snapshot_encode(&a, id, 0, NULL, &data, &len) == SM_OK);
    REQUIRE(meta_snapshot_write_bytes(dir, id, data, len) == SM_OK);
    raft_config_t cfg;
    raft_config_defaults(&cfg);
    cfg.snapshot_read = meta_snapshot_read;
    cfg.ctx = dir;
    uint8_t *back = malloc(len);
    REQUIRE(back != NULL);
    int64_t pos = 0, size = -1;
    uint8_t chunk[97];
    while (pos < (int64_t)len) {
        uint32_t n = 0;
        REQUIRE(cfg.snapshot_read(cfg.ctx, id, pos, chunk, sizeof(chunk), &n, &size) == SM_OK);
        CHECK_EQ_INT((int64_t)len, size);
        REQUIRE(n > 0 && pos + n <= (int64_t)len);
        memcpy(back + pos, chunk, n);
        pos += n;
    }
    CHECK_EQ_MEM(data, back, len);
    uint32_t n = 5;
    CHECK_EQ_INT(SM_OK,
                 meta_snapshot_read(dir, id, (int64_t)len + 10, chunk, sizeof(chunk), &n, &size));
    CHECK_EQ_INT(0, n);
    CHECK_EQ_INT(SM_ERR_NOTFOUND, meta_snapshot_read(dir, (raft_offset_epoch_t){301, 4}, 0, chunk,
                                                     sizeof(chunk), &n, &size));
    free(back);
    free(data);
    meta_image_free(&a);
    rm_dir(dir);
}

/* A follower's FetchSnapshot transfer: chunks read from the leader's directory through the
 * read hook, written to the .part, installed, loaded: the leader's image. A transfer with a
 * missing chunk is refused at install and its .part removed; a transfer cut by a crash
 * leaves a .part that start-up removes. */
static void test_fetched_snapshot_install(void) {
    char *leader = tmp_dir(), *follower = tmp_dir();
    meta_image_t a;
    REQUIRE(meta_image_init(&a) == SM_OK);
    random_image(&a, 21);
    raft_offset_epoch_t id = {900, 3};
    REQUIRE(meta_snapshot_write(&a, leader, id, 0, &small_batches) == SM_OK);
    /* First a transfer whose second chunk never arrives, then a whole one. */
    static const int skips[] = {1, -1};
    for (int t = 0; t < 2; t++) {
        int skip = skips[t];
        int64_t pos = 0, size = 0;
        int chunk_no = 0;
        uint8_t chunk[211];
        do {
            uint32_t n = 0;
            REQUIRE(meta_snapshot_read(leader, id, pos, chunk, sizeof(chunk), &n, &size) == SM_OK);
            if (chunk_no++ != skip)
                CHECK_EQ_INT(SM_OK, meta_snapshot_part_write(follower, id, pos, chunk, n));
            pos += n;
        } while (pos < size);
        int rc = meta_snapshot_part_install(follower, id);
        if (skip < 0) {
            CHECK_EQ_INT(SM_OK, rc);
            CHECK(exists(follower, "00000000000000000900-0000000003.checkpoint"));
        } else {
            CHECK_EQ_INT(SM_ERR_CORRUPT, rc);
            CHECK(!exists(follower, "00000000000000000900-0000000003.checkpoint"));
        }
        CHECK(!exists(follower, "00000000000000000900-0000000003.checkpoint.part"));
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/00000000000000000900-0000000003.checkpoint", follower);
    meta_image_t b;
    REQUIRE(meta_image_init(&b) == SM_OK);
    CHECK_EQ_INT(SM_OK, meta_snapshot_load(&b, path, NULL));
    CHECK(images_equal(&a, &b));
    meta_image_free(&b);
    /* A transfer restarted at position 0 starts the .part afresh. */
    uint8_t junk[4000];
    memset(junk, 0xab, sizeof(junk));
    raft_offset_epoch_t id2 = {950, 3};
    CHECK_EQ_INT(SM_OK, meta_snapshot_part_write(follower, id2, 0, junk, sizeof(junk)));
    uint8_t *data;
    size_t len;
    REQUIRE(meta_snapshot_encode(&a, id2, 0, NULL, &data, &len) == SM_OK);
    CHECK_EQ_INT(SM_OK, meta_snapshot_part_write(follower, id2, 0, data, len));
    CHECK_EQ_INT(SM_OK, meta_snapshot_part_install(follower, id2));
    /* A crash mid-transfer: the .part is left, start-up removes it and keeps the rest. */
    CHECK_EQ_INT(
        SM_OK, meta_snapshot_part_write(follower, (raft_offset_epoch_t){990, 4}, 0, data, len / 3));
    CHECK_EQ_INT(SM_ERR_NOTFOUND,
                 meta_snapshot_part_install(follower, (raft_offset_epoch_t){1, 1}));
    raft_offset_epoch_t got;
    CHECK_EQ_INT(SM_OK, meta_snapshot_latest(follower, 2, &got, path, sizeof(path)));
    CHECK_EQ_INT(950, got.offset);
    CHECK(!exists(follower, "00000000000000000990-0000000004.checkpoint.part"));
    CHECK_EQ_INT(2, count_entries(follower));
    free(data);
    meta_image_free(&a);
    rm_dir(leader);
    rm_dir(follower);
}

static void test_parse_name(void) {
    raft_offset_epoch_t id;
    CHECK_EQ_INT(SM_OK,
                 meta_snapshot_parse_name("00000000000000012345-0000000007.checkpoint", &id));
    CHECK_EQ_INT(12345, id.offset);
    CHECK_EQ_INT(7, id.epoch);
    const char *bad[] = {"00000000000000012345-0000000007.checkpoint.part",
                         "0000000000000012345-0000000007.checkpoint",
                         "00000000000000012345_0000000007.checkpoint",
                         "0000000000000001234x-0000000007.checkpoint",
                         "00000000000000012345-9999999999.checkpoint",
                         "99999999999999999999-0000000007.checkpoint",
                         "00000000000000012345-0000000007.log",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(SM_ERR_PARSE, meta_snapshot_parse_name(bad[i], &id));
}

/* A fixed image for Kafka's DumpLogSegments: every record type the snapshot writes. */
static int write_fixed(const char *dir) {
    meta_image_t a;
    if (meta_image_init(&a) != SM_OK) return 1;
    rng = 42;
    put_feature(&a, "metadata.version", 33);
    put_feature(&a, "group.version", 1);
    put_topic(&a, "orders", 3, false);
    put_topic(&a, "payments", 2, false);
    put_config(&a, META_RESOURCE_TOPIC, "orders", "cleanup.policy", "compact");
    put_config(&a, META_RESOURCE_TOPIC, "payments", "retention.ms", "3600000");
    put_config(&a, META_RESOURCE_BROKER, "", "log.retention.ms", "86400000");
    put_config(&a, META_RESOURCE_BROKER, "1", "log.cleaner.threads", "2");
    put_config(&a, META_RESOURCE_GROUP, "billing", "consumer.session.timeout.ms", "50000");
    put_quota(&a, 2, "producer_byte_rate", 1048576.0);
    put_quota(&a, 1, "consumer_byte_rate", 2097152.0);
    put_producer_ids(&a, 5000);
    meta_snapshot_opts_t o = {.max_batch_bytes = 300, .node_id = 1};
    raft_offset_epoch_t id = {1234, 5};
    int rc = meta_snapshot_write(&a, dir, id, 1700000000000, &o);
    meta_image_free(&a);
    if (rc != SM_OK) {
        fprintf(stderr, "writing the snapshot failed: %s\n", sm_strerror(rc));
        return 1;
    }
    char name[64];
    raft_snapshot_file_name(id, name, sizeof(name));
    printf("%s/%s\n", dir, name);
    return 0;
}

static int feature_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads a snapshot (one Kafka wrote) and prints what the image got, one fact a line. */
static int load_and_print(const char *path) {
    meta_image_t img;
    meta_snapshot_info_t info;
    if (meta_image_init(&img) != SM_OK) return 1;
    int rc = meta_snapshot_load(&img, path, &info);
    if (rc != SM_OK) {
        printf("refused: %s\n", sm_strerror(rc));
        meta_image_free(&img);
        return 1;
    }
    printf("records %lld skipped %lld batches %d timestamp %lld\n", (long long)info.records,
           (long long)info.skipped, info.batches, (long long)info.last_contained_log_timestamp);
    char *lines[64];
    size_t n = 0, it = 0;
    const void *k;
    size_t kl;
    void *v;
    while (n < 64 && sm_map_next(&img.features, &it, &k, &kl, &v)) {
        char *line = malloc(kl + 32);
        if (!line) break;
        snprintf(line, kl + 32, "feature %.*s %d", (int)kl, (const char *)k, *(int16_t *)v);
        lines[n++] = line;
    }
    qsort(lines, n, sizeof(*lines), feature_cmp);
    for (size_t i = 0; i < n; i++) {
        printf("%s\n", lines[i]);
        free(lines[i]);
    }
    printf("topics %zu\n", sm_map_size(&img.topics_by_name));
    meta_image_free(&img);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write") == 0) return write_fixed(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--load") == 0) return load_and_print(argv[2]);
    sm_log_set_level(SM_LOG_ERROR + 1);
    RUN(test_round_trip_random_images);
    RUN(test_empty_image);
    RUN(test_layout_is_kafkas);
    RUN(test_damaged_files_refused);
    RUN(test_latest_and_leftovers);
    RUN(test_failed_write_leaves_nothing);
    RUN(test_snapshot_read_hook);
    RUN(test_fetched_snapshot_install);
    RUN(test_parse_name);
    return t_summary("test_meta_snapshot");
}
