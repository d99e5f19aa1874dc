/*
 * Controller operations (see controller.h). Every operation: lock, validate
 * against the image, build records, append them as one batch through the
 * quorum, apply them to the image under its write lock, notify the listener.
 *
 * The metadata log is the single source of truth: nothing reaches the image
 * or the listener (partition logs on disk) before its records are durable in
 * the log, and nothing is done when the append fails. Records that were
 * committed but do not apply mean the image no longer matches the log: the
 * request gets an error and a loud line is logged; at start-up (replay) the
 * same is fatal.
 */
#include "metadata/controller.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/log.h"
#include "metadata/replicas.h"
#include "metadata/topic_config.h"
#include "protocol/errors.h"
#include "protocol/gen/client_quota_record.h"
#include "protocol/gen/config_record.h"
#include "protocol/gen/feature_level_record.h"
#include "protocol/gen/partition_record.h"
#include "protocol/gen/producer_ids_record.h"
#include "protocol/gen/remove_topic_record.h"
#include "protocol/gen/topic_record.h"
#include "protocol/records.h"

#define MAX_PARTITIONS_PER_REQUEST 100000
#define PRODUCER_ID_BLOCK 1000

int meta_controller_init(meta_controller_t *c, meta_image_t *img, int32_t node_id,
                         meta_quorum_t quorum, meta_listener_t listener) {
    memset(c, 0, sizeof(*c));
    if (pthread_mutex_init(&c->mu, NULL)) return SM_ERR;
    c->img = img;
    c->node_id = node_id;
    c->quorum = quorum;
    c->listener = listener;
    return SM_OK;
}

void meta_controller_free(meta_controller_t *c) { pthread_mutex_destroy(&c->mu); }

static void set_result(meta_result_t *res, int16_t error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_result(meta_result_t *res, int16_t error, const char *fmt, ...) {
    res->error = error;
    res->message[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->message, sizeof(res->message), fmt, ap);
        va_end(ap);
    }
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void random_topic_id(sm_uuid_t *id) {
    do {
        if (getrandom(id->b, 16, 0) != 16) {
            for (int i = 0; i < 16; i++)
                id->b[i] = (uint8_t)rand();
        }
        id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40); /* version 4 */
        id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80); /* IETF variant */
        /* Kafka avoids ids whose base64 form starts with '-'. */
    } while (sm_uuid_is_zero(id) || (id->b[0] >> 2) == 62);
}

/* Why commit_records failed, for the request's result. */
enum {
    COMMIT_OK = 0,
    COMMIT_APPEND_FAILED = 1,
    COMMIT_APPLY_FAILED = 2,
    COMMIT_NOT_CONTROLLER = 3,
};

static void commit_error(meta_result_t *res, int how) {
    if (how == COMMIT_NOT_CONTROLLER)
        set_result(res, PROTO_ERR_NOT_CONTROLLER,
                   "This node is not the active controller (the quorum is electing one or it "
                   "moved); retry.");
    else if (how == COMMIT_APPEND_FAILED)
        set_result(res, PROTO_ERR_KAFKA_STORAGE_ERROR, "Metadata log append failed");
    else
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR,
                   "Committed metadata records could not be applied");
}

/*
 * Appends records as one batch through the quorum (durable when it returns),
 * then applies them to the image. Returns COMMIT_OK, COMMIT_APPEND_FAILED
 * (nothing changed) or COMMIT_APPLY_FAILED (committed, but the image does not
 * follow: logged). Called with c->mu held.
 */
static int commit_records(meta_controller_t *c, const meta_record_t *recs, int32_t n) {
    size_t cap = PROTO_BATCH_HEADER_SIZE;
    for (int32_t i = 0; i < n; i++)
        cap += meta_record_size(&recs[i]) + 32;
    uint8_t *values = NULL, *batch = malloc(cap);
    size_t *offs = calloc((size_t)n + 1, sizeof(size_t));
    int rc = SM_ERR_NOMEM, how = COMMIT_APPEND_FAILED;
    if (!batch || !offs) goto out;
    size_t vcap = 0;
    for (int32_t i = 0; i < n; i++)
        vcap += meta_record_size(&recs[i]);
    values = malloc(vcap ? vcap : 1);
    if (!values) goto out;
    sm_writer_t vw = sm_writer_make(values, vcap);
    for (int32_t i = 0; i < n; i++) {
        offs[i] = (size_t)(vw.p - values);
        if ((rc = meta_record_write(&vw, &recs[i])) != SM_OK) goto out;
    }
    offs[n] = (size_t)(vw.p - values);
    int64_t ts = now_ms();
    proto_batch_builder_t bb;
    proto_batch_builder_opts_t opts = {
        .base_offset = c->next_offset,
        .partition_leader_epoch = 0,
        .attributes = 0,
        .base_timestamp = ts,
        .producer_id = -1,
        .producer_epoch = -1,
        .base_sequence = -1,
    };
    proto_batch_builder_init(&bb, batch, cap, &opts);
    for (int32_t i = 0; i < n; i++) {
        sm_bytes_t v = {values + offs[i], (int32_t)(offs[i + 1] - offs[i])};
        proto_batch_builder_add(&bb, ts, SM_BYTES_NULL, v, NULL, 0);
    }
    size_t len;
    if ((rc = proto_batch_builder_finish(&bb, &len)) != SM_OK) goto out;
    int64_t base;
    if ((rc = c->quorum.append(c->quorum.ctx, batch, len, &base)) != SM_OK) {
        if (rc == SM_ERR_AGAIN && c->quorum.replicated) {
            how = COMMIT_NOT_CONTROLLER;
            goto out;
        }
        sm_error("controller", "metadata log append failed: %s", sm_strerror(rc));
        goto out;
    }
    c->next_offset = base + n;
    how = COMMIT_OK;
    if (c->quorum.replicated) goto out; /* the applier did it on commit */
    meta_image_wrlock(c->img);
    for (int32_t i = 0; i < n && how == COMMIT_OK; i++) {
        int arc = meta_image_apply(c->img, recs[i].type, recs[i].msg, base + i);
        if (arc != SM_OK) {
            sm_error("controller",
                     "metadata record type %d at offset %lld is committed but cannot be applied: "
                     "%s; the image no longer matches the metadata log",
                     recs[i].type, (long long)(base + i), sm_strerror(arc));
            how = COMMIT_APPLY_FAILED;
        }
    }
    meta_image_unlock(c->img);
out:
    free(values);
    free(offs);
    free(batch);
    return how;
}

int meta_controller_replay_batch(meta_controller_t *c, const uint8_t *batch, size_t len) {
    proto_batch_header_t h;
    int rc = proto_batch_validate(batch, len, &h);
    if (rc != SM_OK) return rc;
    if (h.attributes & PROTO_ATTR_CONTROL) {
        c->next_offset = proto_batch_last_offset(&h) + 1;
        return SM_OK;
    }
    if (proto_batch_compression(&h) != PROTO_COMPRESSION_NONE) return SM_ERR_CORRUPT;
    proto_record_iter_t it;
    proto_record_iter_init(&it, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE,
                           h.records_count);
    proto_record_t rec;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    meta_image_wrlock(c->img);
    while ((rc = proto_record_iter_next(&it, &rec)) == 1) {
        int16_t type, version;
        void *msg;
        if (rec.value.len < 0) continue;
        rc = meta_record_read(rec.value.ptr, (size_t)rec.value.len, &a, &type, &version, &msg);
        if (rc == SM_ERR_VERSION) continue; /* a record type this version does not know */
        if (rc != SM_OK) break;
        int64_t off = h.base_offset + rec.offset_delta;
        int arc = meta_image_apply(c->img, type, msg, off);
        if (arc != SM_OK) {
            /* The log is the truth: an image that skips a record is wrong. */
            sm_error("controller",
                     "metadata log replay: record type %d at offset %lld cannot be applied: %s",
                     type, (long long)off, sm_strerror(arc));
            rc = arc;
            break;
        }
    }
    meta_image_unlock(c->img);
    sm_arena_free(&a);
    if (rc < 0) return rc;
    c->next_offset = proto_batch_last_offset(&h) + 1;
    return SM_OK;
}

static bool validate_configs(const meta_config_kv_t *configs, int32_t n, meta_result_t *res) {
    for (int32_t i = 0; i < n; i++) {
        char err[200];
        if (configs[i].name.len < 0) {
            set_result(res, PROTO_ERR_INVALID_CONFIG, "Null config name");
            return false;
        }
        if (configs[i].value.len < 0) continue;
        if (!meta_topic_config_validate(configs[i].name.ptr, (size_t)configs[i].name.len,
                                        configs[i].value.ptr, (size_t)configs[i].value.len, err,
                                        sizeof(err))) {
            set_result(res, PROTO_ERR_INVALID_CONFIG, "%s", err);
            return false;
        }
    }
    return true;
}

static void notify_created(meta_controller_t *c, sm_str_t name, int32_t first) {
    if (!c->listener.topic_created || c->quorum.replicated) return;
    meta_image_rdlock(c->img);
    meta_topic_t *t = meta_image_topic(c->img, name);
    if (t) c->listener.topic_created(c->listener.ctx, t, first);
    meta_image_unlock(c->img);
}

/* The replicas of new partitions: partition i's rf replicas at replicas[i * rf] (leader
 * first), its ISR at isr[i * rf] (n_isr[i] of them). */
typedef struct placement {
    int32_t n, rf;
    int32_t *replicas, *isr, *n_isr;
} placement_t;

static void placement_free(placement_t *pl) {
    free(pl->replicas);
    free(pl->isr);
    free(pl->n_isr);
    memset(pl, 0, sizeof(*pl));
}

static int placement_alloc(placement_t *pl, int32_t n, int32_t rf, meta_result_t *res) {
    size_t cells = (size_t)(n > 0 ? n : 1) * (size_t)(rf > 0 ? rf : 1);
    pl->n = n;
    pl->rf = rf;
    pl->replicas = calloc(cells, sizeof(int32_t));
    pl->isr = calloc(cells, sizeof(int32_t));
    pl->n_isr = calloc((size_t)(n > 0 ? n : 1), sizeof(int32_t));
    if (pl->replicas && pl->isr && pl->n_isr) return SM_OK;
    placement_free(pl);
    set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
    return SM_ERR_NOMEM;
}

static bool not_active(meta_controller_t *c, meta_result_t *res) {
    if (!c->quorum.is_active || c->quorum.is_active(c->quorum.ctx)) return false;
    set_result(res, PROTO_ERR_NOT_CONTROLLER, "This node is not the active controller.");
    return true;
}

/* A registered broker that is unfenced and not in controlled shutdown (Kafka's "active"). */
static bool broker_active(const meta_image_t *img, int32_t id) {
    const meta_broker_t *bk = meta_image_broker(img, id);
    return bk && !bk->fenced && !bk->in_controlled_shutdown;
}

/*
 * Places n new partitions of rf replicas. Single node: this node alone (rf 1). Cluster:
 * meta_place_replicas over the active brokers from a random start; fails with
 * NOT_CONTROLLER away from the active controller and INVALID_REPLICATION_FACTOR (Kafka's
 * messages) when the brokers do not suffice.
 */
static int place_replicas(meta_controller_t *c, int32_t n, int32_t rf, placement_t *pl,
                          meta_result_t *res) {
    if (!c->quorum.replicated) {
        if (placement_alloc(pl, n, 1, res) != SM_OK) return SM_ERR_NOMEM;
        for (int32_t i = 0; i < n; i++) {
            pl->replicas[i] = pl->isr[i] = c->node_id;
            pl->n_isr[i] = 1;
        }
        return SM_OK;
    }
    if (not_active(c, res)) return SM_ERR_AGAIN;
    enum { MAX_CANDS = 1024 };
    meta_place_broker_t *cands = calloc(MAX_CANDS, sizeof(*cands));
    char(*racks)[128] = calloc(MAX_CANDS, sizeof(*racks));
    int nb = 0, rc = SM_ERR_NOMEM;
    if (!cands || !racks) {
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
        goto out;
    }
    meta_image_rdlock(c->img);
    size_t it = 0;
    void *v;
    while (sm_map_next(&c->img->brokers, &it, NULL, NULL, &v) && nb < MAX_CANDS) {
        const meta_broker_t *bk = v;
        if (bk->fenced || bk->in_controlled_shutdown) continue;
        memcpy(racks[nb], bk->rack, sizeof(racks[nb]));
        cands[nb] = (meta_place_broker_t){bk->id, racks[nb]};
        nb++;
    }
    meta_image_unlock(c->img);
    rc = SM_ERR_RANGE;
    if (nb == 0) {
        set_result(res, PROTO_ERR_INVALID_REPLICATION_FACTOR,
                   "Unable to replicate the partition %d time(s): All brokers are currently "
                   "fenced.",
                   rf);
        goto out;
    }
    if (rf > nb || rf > META_MAX_REPLICAS) {
        set_result(res, PROTO_ERR_INVALID_REPLICATION_FACTOR,
                   "Unable to replicate the partition %d time(s): The target replication factor "
                   "of %d cannot be reached because only %d broker(s) are registered.",
                   rf, rf, nb);
        goto out;
    }
    if ((rc = placement_alloc(pl, n, rf, res)) != SM_OK) goto out;
    uint32_t start = (uint32_t)rand();
    if ((rc = meta_place_replicas(cands, nb, n, rf, start, pl->replicas)) != SM_OK) {
        placement_free(pl);
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
        goto out;
    }
    memcpy(pl->isr, pl->replicas, sizeof(int32_t) * (size_t)n * (size_t)rf);
    for (int32_t i = 0; i < n; i++)
        pl->n_isr[i] = rf;
out:
    free(cands);
    free(racks);
    return rc;
}

/*
 * A manual assignment (CreateTopics / CreatePartitions assignments), validated as Kafka's
 * controller does: each partition's replicas registered brokers, none twice, the same
 * count for all; the ISR is the active ones, the first of them leads. Single node: only
 * this node, once.
 */
static int place_manual(meta_controller_t *c, const sm_i32_array_t *assign, int32_t n,
                        placement_t *pl, meta_result_t *res) {
    int32_t rf = assign[0].n;
    if (!c->quorum.replicated) {
        for (int32_t i = 0; i < n; i++)
            if (assign[i].n != 1 || assign[i].v[0] != c->node_id) {
                set_result(res, PROTO_ERR_INVALID_REPLICA_ASSIGNMENT,
                           "Invalid replica assignment: only this broker can hold replicas.");
                return SM_ERR_RANGE;
            }
        return place_replicas(c, n, 1, pl, res);
    }
    if (not_active(c, res)) return SM_ERR_AGAIN;
    for (int32_t i = 0; i < n; i++) {
        if (assign[i].n <= 0) {
            set_result(res, PROTO_ERR_INVALID_REPLICA_ASSIGNMENT,
                       "The manual partition assignment includes an empty replica list.");
            return SM_ERR_RANGE;
        }
        if (assign[i].n > META_MAX_REPLICAS) {
            set_result(res, PROTO_ERR_INVALID_REPLICATION_FACTOR,
                       "Unable to replicate the partition %d time(s).", assign[i].n);
            return SM_ERR_RANGE;
        }
    }
    if (placement_alloc(pl, n, rf, res) != SM_OK) return SM_ERR_NOMEM;
    int rc = SM_ERR_RANGE;
    meta_image_rdlock(c->img);
    for (int32_t i = 0; i < n; i++) {
        const sm_i32_array_t *a = &assign[i];
        for (int32_t k = 0; k < a->n; k++) {
            if (!meta_image_broker(c->img, a->v[k])) {
                set_result(res, PROTO_ERR_INVALID_REPLICA_ASSIGNMENT,
                           "The manual partition assignment includes broker %d, but no such "
                           "broker is registered.",
                           a->v[k]);
                goto out;
            }
            if (meta_id_in(a->v, k, a->v[k])) {
                set_result(res, PROTO_ERR_INVALID_REPLICA_ASSIGNMENT,
                           "The manual partition assignment includes the broker %d more than "
                           "once.",
                           a->v[k]);
                goto out;
            }
        }
        if (a->n != rf) {
            set_result(res, PROTO_ERR_INVALID_REPLICA_ASSIGNMENT,
                       "The manual partition assignment includes a partition with %d "
                       "replica(s), but this is not consistent with previous partitions, which "
                       "have %d replica(s).",
                       a->n, rf);
            goto out;
        }
        for (int32_t k = 0; k < a->n; k++) {
            pl->replicas[i * rf + k] = a->v[k];
            if (broker_active(c->img, a->v[k])) pl->isr[i * rf + pl->n_isr[i]++] = a->v[k];
        }
        if (pl->n_isr[i] == 0) {
            set_result(res, PROTO_ERR_INVALID_REPLICA_ASSIGNMENT,
                       "All brokers specified in the manual partition assignment for partition "
                       "%d are fenced or in controlled shutdown.",
                       i);
            goto out;
        }
    }
    rc = SM_OK;
out:
    meta_image_unlock(c->img);
    if (rc != SM_OK) placement_free(pl);
    return rc;
}

/* Partition id (first + i)'s record from the placement. */
static void placement_record(const placement_t *pl, int32_t i, int32_t first, sm_uuid_t tid,
                             proto_partition_record_t *pr) {
    proto_partition_record_init(pr);
    pr->partition_id = first + i;
    pr->topic_id = tid;
    pr->replicas = (sm_i32_array_t){pl->rf, &pl->replicas[i * pl->rf]};
    pr->isr = (sm_i32_array_t){pl->n_isr[i], &pl->isr[i * pl->rf]};
    pr->leader = pl->isr[i * pl->rf];
    pr->leader_epoch = 0;
    pr->partition_epoch = 0;
}

static void create_topic(meta_controller_t *c, sm_str_t name, int32_t partitions,
                         int16_t replication_factor, const sm_i32_array_t *assign,
                         int32_t nassign, const meta_config_kv_t *configs, int32_t nconfigs,
                         bool validate_only, sm_uuid_t *topic_id, meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    if (!meta_topic_name_valid(name)) {
        set_result(res, PROTO_ERR_INVALID_TOPIC_EXCEPTION,
                   "Topic name \"%.*s\" is illegal, it contains a character other than ASCII "
                   "alphanumerics, '.', '_' and '-', or is empty, '.', '..' or too long",
                   name.len < 0 ? 0 : (int)name.len, name.ptr ? name.ptr : "");
        return;
    }
    if (assign) {
        partitions = nassign;
        replication_factor = (int16_t)assign[0].n;
    }
    if (partitions == 0 || partitions < -1 || partitions > MAX_PARTITIONS_PER_REQUEST) {
        set_result(res, PROTO_ERR_INVALID_PARTITIONS,
                   "Number of partitions must be larger than 0.");
        return;
    }
    if (!assign && (replication_factor == 0 || replication_factor < -1)) {
        set_result(res, PROTO_ERR_INVALID_REPLICATION_FACTOR,
                   "Replication factor must be larger than 0, or -1 to use the default value.");
        return;
    }
    if (!assign && replication_factor > 1 && !c->quorum.replicated) {
        set_result(res, PROTO_ERR_INVALID_REPLICATION_FACTOR,
                   "Unable to replicate the partition %d time(s): The target replication factor "
                   "of %d cannot be reached because only 1 broker(s) are registered.",
                   replication_factor, replication_factor);
        return;
    }
    if (!validate_configs(configs, nconfigs, res)) return;
    if (partitions < 0) partitions = 1; /* callers resolve -1 to num.partitions first */
    if (replication_factor < 0) replication_factor = 1;

    pthread_mutex_lock(&c->mu);
    placement_t pl = {0};
    int prc = assign ? place_manual(c, assign, nassign, &pl, res)
                     : place_replicas(c, partitions, replication_factor, &pl, res);
    if (prc != SM_OK) {
        if (res->error == PROTO_ERR_NOT_CONTROLLER && !assign && !validate_only &&
            c->quorum.remote_create_topic) {
            pthread_mutex_unlock(&c->mu);
            c->quorum.remote_create_topic(c->quorum.ctx, name, partitions, replication_factor,
                                          configs, nconfigs, res);
            return;
        }
        goto out;
    }
    meta_image_rdlock(c->img);
    bool exists = meta_image_topic(c->img, name) != NULL;
    bool collides = false;
    if (!exists) {
        size_t it = 0;
        const void *k;
        size_t kl;
        while (sm_map_next(&c->img->topics_by_name, &it, &k, &kl, NULL))
            if (meta_topic_names_collide(name, (sm_str_t){k, (int32_t)kl})) collides = true;
    }
    meta_image_unlock(c->img);
    if (exists) {
        set_result(res, PROTO_ERR_TOPIC_ALREADY_EXISTS, "Topic '%.*s' already exists.",
                   (int)name.len, name.ptr);
        goto out;
    }
    if (collides) {
        set_result(res, PROTO_ERR_INVALID_TOPIC_EXCEPTION,
                   "Topic '%.*s' collides with an existing topic: names that differ only in '.' "
                   "and '_' collide.",
                   (int)name.len, name.ptr);
        goto out;
    }
    if (validate_only) goto out;

    int32_t nrecs = 1 + partitions + nconfigs;
    meta_record_t *recs = calloc((size_t)nrecs, sizeof(*recs));
    proto_partition_record_t *prs = calloc((size_t)partitions, sizeof(*prs));
    proto_config_record_t *crs = calloc((size_t)(nconfigs ? nconfigs : 1), sizeof(*crs));
    proto_topic_record_t tr;
    if (!recs || !prs || !crs) {
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
        goto free_recs;
    }
    proto_topic_record_init(&tr);
    tr.name = name;
    random_topic_id(&tr.topic_id);
    recs[0] = (meta_record_t){PROTO_TOPIC_RECORD_API_KEY, 0, &tr};
    for (int32_t p = 0; p < partitions; p++) {
        placement_record(&pl, p, 0, tr.topic_id, &prs[p]);
        recs[1 + p] = (meta_record_t){PROTO_PARTITION_RECORD_API_KEY, 0, &prs[p]};
    }
    int32_t nc = 0;
    for (int32_t i = 0; i < nconfigs; i++) {
        if (configs[i].value.len < 0) continue;
        proto_config_record_init(&crs[nc]);
        crs[nc].resource_type = META_RESOURCE_TOPIC;
        crs[nc].resource_name = name;
        crs[nc].name = configs[i].name;
        crs[nc].value = configs[i].value;
        recs[1 + partitions + nc] = (meta_record_t){PROTO_CONFIG_RECORD_API_KEY, 0, &crs[nc]};
        nc++;
    }
    int how = commit_records(c, recs, 1 + partitions + nc);
    if (how != COMMIT_OK) {
        commit_error(res, how);
        goto free_recs;
    }
    *topic_id = tr.topic_id;
    notify_created(c, name, 0);
free_recs:
    free(recs);
    free(prs);
    free(crs);
out:
    placement_free(&pl);
    pthread_mutex_unlock(&c->mu);
}

void meta_create_topic(meta_controller_t *c, sm_str_t name, int32_t partitions,
                       int16_t replication_factor, const meta_config_kv_t *configs,
                       int32_t nconfigs, bool validate_only, sm_uuid_t *topic_id,
                       meta_result_t *res) {
    create_topic(c, name, partitions, replication_factor, NULL, 0, configs, nconfigs,
                 validate_only, topic_id, res);
}

void meta_create_topic_assigned(meta_controller_t *c, sm_str_t name, const sm_i32_array_t *assign,
                                int32_t n, const meta_config_kv_t *configs, int32_t nconfigs,
                                bool validate_only, sm_uuid_t *topic_id, meta_result_t *res) {
    create_topic(c, name, n, -1, assign, n, configs, nconfigs, validate_only, topic_id, res);
}

void meta_delete_topic(meta_controller_t *c, sm_str_t name, const sm_uuid_t *id,
                       meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    pthread_mutex_lock(&c->mu);
    meta_image_rdlock(c->img);
    meta_topic_t *t = id ? meta_image_topic_by_id(c->img, id) : meta_image_topic(c->img, name);
    sm_uuid_t tid = t ? t->id : (sm_uuid_t){{0}};
    meta_image_unlock(c->img);
    if (!t) {
        if (id)
            set_result(res, PROTO_ERR_UNKNOWN_TOPIC_ID, "This server does not host this topic ID.");
        else
            set_result(res, PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                       "This server does not host this topic-partition.");
        goto out;
    }
    /* What the listener needs once the topic is gone from the image. Only
     * this thread (holding c->mu) changes the image, so it holds until the
     * commit. */
    meta_image_rdlock(c->img);
    t = meta_image_topic_by_id(c->img, &tid);
    meta_topic_t gone = {.name = strdup(t->name), .id = tid, .n_partitions = t->n_partitions};
    meta_image_unlock(c->img);
    if (!gone.name) {
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
        goto out;
    }
    proto_remove_topic_record_t rr;
    proto_remove_topic_record_init(&rr);
    rr.topic_id = tid;
    meta_record_t rec = {PROTO_REMOVE_TOPIC_RECORD_API_KEY, 0, &rr};
    /* Committed and applied first; only then do the partitions go. */
    int how = commit_records(c, &rec, 1);
    if (how != COMMIT_OK)
        commit_error(res, how);
    else if (c->listener.topic_deleted && !c->quorum.replicated)
        c->listener.topic_deleted(c->listener.ctx, &gone);
    free(gone.name);
out:
    pthread_mutex_unlock(&c->mu);
}

void meta_create_partitions_assigned(meta_controller_t *c, sm_str_t name, int32_t total,
                                     const sm_i32_array_t *assign, bool validate_only,
                                     meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    pthread_mutex_lock(&c->mu);
    meta_image_rdlock(c->img);
    meta_topic_t *t = meta_image_topic(c->img, name);
    int32_t current = t ? t->n_partitions : 0;
    sm_uuid_t tid = t ? t->id : (sm_uuid_t){{0}};
    /* New partitions get the replication factor of the first one, as Kafka's do. */
    int32_t rf = t && t->n_partitions > 0 && t->partitions[0].n_replicas > 0
                     ? t->partitions[0].n_replicas
                     : 1;
    meta_image_unlock(c->img);
    placement_t pl = {0};
    if (!t) {
        set_result(res, PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION, "The topic '%.*s' does not exist.",
                   (int)name.len, name.ptr);
        goto out;
    }
    if (total <= current) {
        if (total == current)
            set_result(res, PROTO_ERR_INVALID_PARTITIONS, "Topic already has %d partitions.",
                       current);
        else
            set_result(res, PROTO_ERR_INVALID_PARTITIONS,
                       "The topic %.*s currently has %d partition(s); %d would not be an "
                       "increase.",
                       (int)name.len, name.ptr, current, total);
        goto out;
    }
    if (total - current > MAX_PARTITIONS_PER_REQUEST) {
        set_result(res, PROTO_ERR_INVALID_PARTITIONS, "Too many partitions requested.");
        goto out;
    }
    int32_t n = total - current;
    int prc = assign ? place_manual(c, assign, n, &pl, res) : place_replicas(c, n, rf, &pl, res);
    if (prc != SM_OK || validate_only) goto out;
    meta_record_t *recs = calloc((size_t)n, sizeof(*recs));
    proto_partition_record_t *prs = calloc((size_t)n, sizeof(*prs));
    if (!recs || !prs) {
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
    } else {
        for (int32_t i = 0; i < n; i++) {
            placement_record(&pl, i, current, tid, &prs[i]);
            recs[i] = (meta_record_t){PROTO_PARTITION_RECORD_API_KEY, 0, &prs[i]};
        }
        int how = commit_records(c, recs, n);
        if (how != COMMIT_OK)
            commit_error(res, how);
        else
            notify_created(c, name, current);
    }
    free(recs);
    free(prs);
out:
    placement_free(&pl);
    pthread_mutex_unlock(&c->mu);
}

void meta_create_partitions(meta_controller_t *c, sm_str_t name, int32_t total, bool validate_only,
                            meta_result_t *res) {
    meta_create_partitions_assigned(c, name, total, NULL, validate_only, res);
}

static void notify_configs(meta_controller_t *c, const sm_str_t *topic) {
    if (!c->listener.configs_changed || c->quorum.replicated) return;
    meta_image_rdlock(c->img);
    meta_topic_t *t = topic ? meta_image_topic(c->img, *topic) : NULL;
    if (t || !topic) c->listener.configs_changed(c->listener.ctx, t);
    meta_image_unlock(c->img);
}

/* Appends one ConfigRecord per kv for the resource; the caller holds c->mu. */
static void commit_configs(meta_controller_t *c, int8_t type, sm_str_t resource,
                           const meta_config_kv_t *kv, int32_t n, meta_result_t *res) {
    meta_record_t *recs = calloc((size_t)n, sizeof(*recs));
    proto_config_record_t *crs = calloc((size_t)n, sizeof(*crs));
    if (!recs || !crs) {
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
    } else {
        for (int32_t i = 0; i < n; i++) {
            proto_config_record_init(&crs[i]);
            crs[i].resource_type = type;
            crs[i].resource_name = resource;
            crs[i].name = kv[i].name;
            crs[i].value = kv[i].value;
            recs[i] = (meta_record_t){PROTO_CONFIG_RECORD_API_KEY, 0, &crs[i]};
        }
        int how = commit_records(c, recs, n);
        if (how != COMMIT_OK)
            commit_error(res, how);
        else
            notify_configs(c, type == META_RESOURCE_TOPIC ? &resource : NULL);
    }
    free(recs);
    free(crs);
}

void meta_alter_topic_configs(meta_controller_t *c, sm_str_t name, const meta_config_kv_t *kv,
                              int32_t n, bool validate_only, meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    if (!validate_configs(kv, n, res)) return;
    pthread_mutex_lock(&c->mu);
    meta_image_rdlock(c->img);
    bool exists = meta_image_topic(c->img, name) != NULL;
    meta_image_unlock(c->img);
    if (!exists) {
        set_result(res, PROTO_ERR_UNKNOWN_TOPIC_OR_PARTITION, "The topic '%.*s' does not exist.",
                   (int)name.len, name.ptr);
    } else if (!validate_only && n > 0) {
        commit_configs(c, META_RESOURCE_TOPIC, name, kv, n, res);
    }
    pthread_mutex_unlock(&c->mu);
}

void meta_alter_broker_configs(meta_controller_t *c, sm_str_t resource_name,
                               const meta_config_kv_t *kv, int32_t n, bool validate_only,
                               meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    if (validate_only || n == 0) return;
    pthread_mutex_lock(&c->mu);
    commit_configs(c, META_RESOURCE_BROKER, resource_name, kv, n, res);
    pthread_mutex_unlock(&c->mu);
}

void meta_alter_group_configs(meta_controller_t *c, sm_str_t group, const meta_config_kv_t *kv,
                              int32_t n, bool validate_only, meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    if (validate_only || n == 0) return;
    pthread_mutex_lock(&c->mu);
    commit_configs(c, META_RESOURCE_GROUP, group, kv, n, res);
    pthread_mutex_unlock(&c->mu);
}

/* Commits records under c->mu; a failure becomes the request's result. */
static void commit_locked(meta_controller_t *c, const meta_record_t *recs, int32_t n, meta_result_t *res) {
    pthread_mutex_lock(&c->mu);
    int how = commit_records(c, recs, n);
    if (how != COMMIT_OK) commit_error(res, how);
    pthread_mutex_unlock(&c->mu);
}

void meta_alter_client_quotas(meta_controller_t *c, const meta_quota_part_t *parts, int nparts,
                              const meta_quota_op_t *ops, int32_t n, meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    if (n <= 0) return;
    proto_client_quota_record_entity_data_t ent[META_QUOTA_MAX_PARTS];
    for (int i = 0; i < nparts && i < META_QUOTA_MAX_PARTS; i++) {
        memset(&ent[i], 0, sizeof(ent[i]));
        ent[i].entity_type = parts[i].type;
        ent[i].entity_name = parts[i].name;
    }
    meta_record_t *recs = calloc((size_t)n, sizeof(*recs));
    proto_client_quota_record_t *qrs = calloc((size_t)n, sizeof(*qrs));
    if (!recs || !qrs) {
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
    } else {
        for (int32_t i = 0; i < n; i++) {
            proto_client_quota_record_init(&qrs[i]);
            qrs[i].entity = (proto_client_quota_record_entity_data_array_t){nparts, ent};
            qrs[i].key = ops[i].key;
            qrs[i].value = ops[i].remove ? 0 : ops[i].value;
            qrs[i].remove = ops[i].remove;
            recs[i] = (meta_record_t){PROTO_CLIENT_QUOTA_RECORD_API_KEY, 0, &qrs[i]};
        }
        commit_locked(c, recs, n, res);
    }
    free(recs);
    free(qrs);
}

void meta_set_feature_levels(meta_controller_t *c, const sm_str_t *names, const int16_t *levels,
                             int32_t n, meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    if (n <= 0) return;
    meta_record_t *recs = calloc((size_t)n, sizeof(*recs));
    proto_feature_level_record_t *frs = calloc((size_t)n, sizeof(*frs));
    if (!recs || !frs) {
        set_result(res, PROTO_ERR_UNKNOWN_SERVER_ERROR, "Out of memory");
    } else {
        for (int32_t i = 0; i < n; i++) {
            proto_feature_level_record_init(&frs[i]);
            frs[i].name = names[i];
            frs[i].feature_level = levels[i];
            recs[i] = (meta_record_t){PROTO_FEATURE_LEVEL_RECORD_API_KEY, 0, &frs[i]};
        }
        commit_locked(c, recs, n, res);
    }
    free(recs);
    free(frs);
}

void meta_allocate_producer_ids(meta_controller_t *c, int32_t count, int64_t *first,
                                meta_result_t *res) {
    set_result(res, PROTO_ERR_NONE, NULL);
    if (count <= 0) count = PRODUCER_ID_BLOCK;
    pthread_mutex_lock(&c->mu);
    meta_image_rdlock(c->img);
    int64_t start = c->img->next_producer_id;
    meta_image_unlock(c->img);
    proto_producer_ids_record_t pr;
    proto_producer_ids_record_init(&pr);
    pr.broker_id = c->node_id;
    pr.broker_epoch = 0;
    pr.next_producer_id = start + count;
    meta_record_t rec = {PROTO_PRODUCER_IDS_RECORD_API_KEY, 0, &pr};
    int how = commit_records(c, &rec, 1);
    if (how != COMMIT_OK)
        commit_error(res, how);
    else
        *first = start;
    pthread_mutex_unlock(&c->mu);
    if (how == COMMIT_NOT_CONTROLLER && c->quorum.remote_allocate_producer_ids)
        c->quorum.remote_allocate_producer_ids(c->quorum.ctx, count, first, res);
}

/* What one applied change tells the listener once the image is unlocked. */
typedef struct change_notes {
    sm_uuid_t created[64]; /* topics that gained partitions, and the first new one */
    int32_t first[64];
    int ncreated;
    sm_uuid_t changed[64]; /* topics with a PartitionChangeRecord */
    int nchanged;
    meta_topic_t deleted[16]; /* as they were (name owned) */
    int ndeleted;
    char *configs[16]; /* topics whose overrides changed (names owned) */
    int nconfigs;
    bool broker_configs;
    bool overflow; /* more than the arrays hold: notify every topic */
} change_notes_t;

static void note_partition(change_notes_t *cn, const sm_uuid_t *id, int32_t p) {
    for (int i = 0; i < cn->ncreated; i++)
        if (memcmp(cn->created[i].b, id->b, 16) == 0) {
            if (p < cn->first[i]) cn->first[i] = p;
            return;
        }
    if (cn->ncreated == 64) {
        cn->overflow = true;
        return;
    }
    cn->created[cn->ncreated] = *id;
    cn->first[cn->ncreated++] = p;
}

static void note_record(meta_controller_t *c, change_notes_t *cn, int16_t type, const void *msg) {
    switch (type) {
    case PROTO_PARTITION_RECORD_API_KEY: {
        const proto_partition_record_t *r = msg;
        note_partition(cn, &r->topic_id, r->partition_id);
        break;
    }
    case PROTO_PARTITION_CHANGE_RECORD_API_KEY: {
        const proto_partition_change_record_t *r = msg;
        for (int i = 0; i < cn->nchanged; i++)
            if (memcmp(cn->changed[i].b, r->topic_id.b, 16) == 0) return;
        if (cn->nchanged == 64)
            cn->overflow = true;
        else
            cn->changed[cn->nchanged++] = r->topic_id;
        break;
    }
    case PROTO_REMOVE_TOPIC_RECORD_API_KEY: {
        const proto_remove_topic_record_t *r = msg;
        meta_topic_t *t = meta_image_topic_by_id(c->img, &r->topic_id);
        if (!t || cn->ndeleted == 16) break;
        cn->deleted[cn->ndeleted++] =
            (meta_topic_t){.name = strdup(t->name), .id = t->id, .n_partitions = t->n_partitions};
        break;
    }
    case PROTO_CONFIG_RECORD_API_KEY: {
        const proto_config_record_t *r = msg;
        if (r->resource_type == META_RESOURCE_BROKER) cn->broker_configs = true;
        if (r->resource_type != META_RESOURCE_TOPIC || cn->nconfigs == 16) break;
        cn->configs[cn->nconfigs++] = strndup(r->resource_name.ptr, (size_t)r->resource_name.len);
        break;
    }
    default: break;
    }
}

static void send_notes(meta_controller_t *c, change_notes_t *cn) {
    const meta_listener_t *l = &c->listener;
    for (int i = 0; i < cn->ndeleted; i++) {
        if (l->topic_deleted && cn->deleted[i].name) l->topic_deleted(l->ctx, &cn->deleted[i]);
        free(cn->deleted[i].name);
    }
    meta_image_rdlock(c->img);
    for (int i = 0; i < cn->ncreated && l->topic_created; i++) {
        meta_topic_t *t = meta_image_topic_by_id(c->img, &cn->created[i]);
        if (t) l->topic_created(l->ctx, t, cn->first[i]);
    }
    for (int i = 0; i < cn->nchanged && l->partitions_changed; i++) {
        meta_topic_t *t = meta_image_topic_by_id(c->img, &cn->changed[i]);
        if (t) l->partitions_changed(l->ctx, t);
    }
    if (cn->overflow) {
        size_t it = 0;
        void *v;
        while (sm_map_next(&c->img->topics_by_name, &it, NULL, NULL, &v)) {
            if (l->partitions_changed)
                l->partitions_changed(l->ctx, v);
            else if (l->topic_created)
                l->topic_created(l->ctx, v, 0);
        }
    }
    for (int i = 0; i < cn->nconfigs; i++) {
        meta_topic_t *t = cn->configs[i] ? meta_image_topic(c->img, sm_str_from(cn->configs[i]))
                                         : NULL;
        if (t && l->configs_changed) l->configs_changed(l->ctx, t);
        free(cn->configs[i]);
    }
    if (cn->broker_configs && l->configs_changed) l->configs_changed(l->ctx, NULL);
    meta_image_unlock(c->img);
}

int meta_controller_apply_change(meta_controller_t *c, const sm_bytes_t *values, int n,
                                 const int64_t *offsets) {
    change_notes_t *cn = calloc(1, sizeof(*cn));
    if (!cn) return SM_ERR_NOMEM;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    int rc = SM_OK;
    meta_image_wrlock(c->img);
    for (int i = 0; i < n && rc == SM_OK; i++) {
        int16_t type, version;
        void *msg;
        if (values[i].len < 0) continue;
        rc = meta_record_read(values[i].ptr, (size_t)values[i].len, &a, &type, &version, &msg);
        if (rc == SM_ERR_VERSION) { /* a record type this version does not know */
            rc = SM_OK;
            continue;
        }
        if (rc != SM_OK) break;
        note_record(c, cn, type, msg);
        rc = meta_image_apply(c->img, type, msg, offsets[i]);
        if (rc != SM_OK)
            sm_error("controller",
                     "committed metadata record type %d at offset %lld cannot be applied: %s; "
                     "the image no longer matches the metadata log",
                     type, (long long)offsets[i], sm_strerror(rc));
    }
    meta_image_unlock(c->img);
    sm_arena_free(&a);
    send_notes(c, cn);
    free(cn);
    return rc;
}
