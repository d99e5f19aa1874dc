/*
 * Applying metadata records to the in-memory image (see image.h).
 */
#include "metadata/image.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "protocol/gen/broker_registration_change_record.h"
#include "protocol/gen/client_quota_record.h"
#include "protocol/gen/fence_broker_record.h"
#include "protocol/gen/register_broker_record.h"
#include "protocol/gen/unfence_broker_record.h"
#include "protocol/gen/unregister_broker_record.h"
#include "protocol/gen/config_record.h"
#include "protocol/gen/feature_level_record.h"
#include "protocol/gen/partition_change_record.h"
#include "protocol/gen/partition_record.h"
#include "protocol/gen/producer_ids_record.h"
#include "protocol/gen/remove_topic_record.h"
#include "protocol/gen/topic_record.h"

int meta_image_init(meta_image_t *img) {
    memset(img, 0, sizeof(*img));
    if (pthread_rwlock_init(&img->lock, NULL)) return SM_ERR;
    sm_map_init(&img->topics_by_name);
    sm_map_init(&img->topics_by_id);
    sm_map_init(&img->broker_configs);
    sm_map_init(&img->broker_default_configs);
    sm_map_init(&img->group_configs);
    sm_map_init(&img->client_quotas);
    sm_map_init(&img->features);
    sm_map_init(&img->brokers);
    img->last_offset = -1;
    img->self_id = -1;
    return SM_OK;
}

#define SWAP_FIELD(f)                                                                      \
    do {                                                                                   \
        __typeof__(a->f) t_ = a->f;                                                        \
        a->f = b->f;                                                                       \
        b->f = t_;                                                                         \
    } while (0)

void meta_image_swap(meta_image_t *a, meta_image_t *b) {
    /* field by field: a's lock is held (and waited on) while this runs */
    SWAP_FIELD(topics_by_name);
    SWAP_FIELD(topics_by_id);
    SWAP_FIELD(broker_configs);
    SWAP_FIELD(broker_default_configs);
    SWAP_FIELD(group_configs);
    SWAP_FIELD(client_quotas);
    SWAP_FIELD(features);
    SWAP_FIELD(brokers);
    SWAP_FIELD(next_producer_id);
    SWAP_FIELD(last_offset);
    a->topics_version = a->topics_version > b->topics_version ? a->topics_version + 1
                                                              : b->topics_version + 1;
}

static void free_config_map(sm_map_t *m) {
    size_t it = 0;
    void *v;
    while (sm_map_next(m, &it, NULL, NULL, &v))
        free(v);
    sm_map_free(m);
}

/* Frees a map of maps (group configs, client quotas) and their values. */
static void free_nested_maps(sm_map_t *m) {
    size_t it = 0;
    void *v;
    while (sm_map_next(m, &it, NULL, NULL, &v)) {
        free_config_map(v);
        free(v);
    }
    sm_map_free(m);
}

static void topic_free(meta_topic_t *t) {
    for (int32_t i = 0; i < t->n_partitions; i++) {
        free(t->partitions[i].replicas);
        free(t->partitions[i].isr);
        free(t->partitions[i].adding);
        free(t->partitions[i].removing);
        free(t->partitions[i].elr);
        free(t->partitions[i].last_known_elr);
    }
    free(t->partitions);
    free_config_map(&t->configs);
    free(t->name);
    free(t);
}

void meta_image_free(meta_image_t *img) {
    size_t it = 0;
    void *v;
    while (sm_map_next(&img->topics_by_name, &it, NULL, NULL, &v))
        topic_free(v);
    sm_map_free(&img->topics_by_name);
    sm_map_free(&img->topics_by_id);
    free_config_map(&img->broker_configs);
    free_config_map(&img->broker_default_configs);
    free_nested_maps(&img->group_configs);
    free_nested_maps(&img->client_quotas);
    free_config_map(&img->features);
    free_config_map(&img->brokers);
    pthread_rwlock_destroy(&img->lock);
}

meta_topic_t *meta_image_topic(const meta_image_t *img, sm_str_t name) {
    if (name.len < 0) return NULL;
    return sm_map_get(&img->topics_by_name, name.ptr, (size_t)name.len);
}

meta_topic_t *meta_image_topic_by_id(const meta_image_t *img, const sm_uuid_t *id) {
    return sm_map_get(&img->topics_by_id, id->b, 16);
}

const char *meta_topic_config(const meta_topic_t *t, const char *name) {
    return sm_map_get(&t->configs, name, strlen(name));
}

const sm_map_t *meta_group_configs(const meta_image_t *img, sm_str_t group) {
    return group.len < 0 ? NULL : sm_map_get(&img->group_configs, group.ptr, (size_t)group.len);
}

int16_t meta_feature_level(const meta_image_t *img, const char *name) {
    const int16_t *l = sm_map_get(&img->features, name, strlen(name));
    return l ? *l : 0;
}

int16_t meta_feature_level_or(const meta_image_t *img, const char *name, int16_t implied) {
    const int16_t *l = sm_map_get(&img->features, name, strlen(name));
    return l ? *l : implied;
}

/* The inner map under key in a map of maps, created when create is set. */
static sm_map_t *nested_map(sm_map_t *outer, const void *key, size_t len, bool create) {
    sm_map_t *m = sm_map_get(outer, key, len);
    if (m || !create) return m;
    m = malloc(sizeof(*m));
    if (!m) return NULL;
    sm_map_init(m);
    if (sm_map_put(outer, key, len, m)) {
        free(m);
        return NULL;
    }
    return m;
}

/* Drops the inner map under key once it is empty. */
static void drop_if_empty(sm_map_t *outer, const void *key, size_t len) {
    sm_map_t *m = sm_map_get(outer, key, len);
    if (m && sm_map_size(m) == 0) {
        sm_map_del(outer, key, len);
        sm_map_free(m);
        free(m);
    }
}

static int set_config(sm_map_t *m, sm_str_t name, sm_str_t value) {
    if (name.len < 0) return SM_ERR_PARSE;
    if (value.len < 0) {
        free(sm_map_del(m, name.ptr, (size_t)name.len));
        return SM_OK;
    }
    char *v = malloc((size_t)value.len + 1);
    if (!v) return SM_ERR_NOMEM;
    memcpy(v, value.ptr, (size_t)value.len);
    v[value.len] = 0;
    char *old = sm_map_get(m, name.ptr, (size_t)name.len);
    int rc = sm_map_put(m, name.ptr, (size_t)name.len, v);
    if (rc) {
        free(v);
        return rc;
    }
    free(old);
    return SM_OK;
}

static int32_t *dup_i32(const sm_i32_array_t *a, int32_t *n) {
    *n = a->n > 0 ? a->n : 0;
    int32_t *p = malloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    if (p && *n) memcpy(p, a->v, sizeof(int32_t) * (size_t)*n);
    return p;
}

/* A reassignment list: NULL when empty (most partitions), so it costs nothing then. */
static int set_list(int32_t **p, int32_t *n, const sm_i32_array_t *a) {
    free(*p);
    *p = NULL;
    *n = 0;
    if (a->n <= 0) return SM_OK;
    *p = dup_i32(a, n);
    return *p ? SM_OK : SM_ERR_NOMEM;
}

static int apply_topic(meta_image_t *img, const proto_topic_record_t *r) {
    if (meta_image_topic_by_id(img, &r->topic_id)) return SM_ERR_EXISTS;
    meta_topic_t *t = calloc(1, sizeof(*t));
    if (!t) return SM_ERR_NOMEM;
    t->name = malloc((size_t)r->name.len + 1);
    if (!t->name) {
        free(t);
        return SM_ERR_NOMEM;
    }
    memcpy(t->name, r->name.ptr, (size_t)r->name.len);
    t->name[r->name.len] = 0;
    t->id = r->topic_id;
    sm_map_init(&t->configs);
    t->internal =
        strcmp(t->name, "__consumer_offsets") == 0 || strcmp(t->name, "__transaction_state") == 0;
    if (sm_map_put(&img->topics_by_name, t->name, (size_t)r->name.len, t) ||
        sm_map_put(&img->topics_by_id, t->id.b, 16, t)) {
        sm_map_del(&img->topics_by_name, t->name, (size_t)r->name.len);
        topic_free(t);
        return SM_ERR_NOMEM;
    }
    return SM_OK;
}

static int apply_partition(meta_image_t *img, const proto_partition_record_t *r) {
    meta_topic_t *t = meta_image_topic_by_id(img, &r->topic_id);
    if (!t) return SM_ERR_NOTFOUND;
    if (r->partition_id < 0) return SM_ERR_PARSE;
    if (r->partition_id >= t->n_partitions) {
        int32_t n = r->partition_id + 1;
        meta_partition_t *p = realloc(t->partitions, sizeof(*p) * (size_t)n);
        if (!p) return SM_ERR_NOMEM;
        memset(p + t->n_partitions, 0, sizeof(*p) * (size_t)(n - t->n_partitions));
        for (int32_t i = t->n_partitions; i < n; i++) {
            p[i].id = i;
            p[i].leader = -1;
        }
        t->partitions = p;
        t->n_partitions = n;
    }
    meta_partition_t *p = &t->partitions[r->partition_id];
    free(p->replicas);
    free(p->isr);
    p->replicas = dup_i32(&r->replicas, &p->n_replicas);
    p->isr = dup_i32(&r->isr, &p->n_isr);
    if (!p->replicas || !p->isr) return SM_ERR_NOMEM;
    p->leader = r->leader;
    p->leader_epoch = r->leader_epoch;
    p->partition_epoch = r->partition_epoch;
    if (set_list(&p->adding, &p->n_adding, &r->adding_replicas) != SM_OK ||
        set_list(&p->removing, &p->n_removing, &r->removing_replicas) != SM_OK)
        return SM_ERR_NOMEM;
    if (set_list(&p->elr, &p->n_elr, &r->eligible_leader_replicas) != SM_OK ||
        set_list(&p->last_known_elr, &p->n_last_known_elr, &r->last_known_elr) != SM_OK)
        return SM_ERR_NOMEM;
    return SM_OK;
}

static int apply_partition_change(meta_image_t *img, const proto_partition_change_record_t *r) {
    meta_topic_t *t = meta_image_topic_by_id(img, &r->topic_id);
    if (!t || r->partition_id < 0 || r->partition_id >= t->n_partitions) return SM_ERR_NOTFOUND;
    meta_partition_t *p = &t->partitions[r->partition_id];
    /* Leader -2 means "unchanged" in PartitionChangeRecord. */
    if (r->leader != -2) {
        p->leader = r->leader;
        p->leader_epoch++;
    }
    if (r->isr.n >= 0) {
        free(p->isr);
        p->isr = dup_i32(&r->isr, &p->n_isr);
        if (!p->isr) return SM_ERR_NOMEM;
    }
    if (r->replicas.n >= 0) {
        free(p->replicas);
        p->replicas = dup_i32(&r->replicas, &p->n_replicas);
        if (!p->replicas) return SM_ERR_NOMEM;
    }
    if (r->adding_replicas.n >= 0 && set_list(&p->adding, &p->n_adding, &r->adding_replicas))
        return SM_ERR_NOMEM;
    if (r->removing_replicas.n >= 0 &&
        set_list(&p->removing, &p->n_removing, &r->removing_replicas))
        return SM_ERR_NOMEM;
    if (r->eligible_leader_replicas.n >= 0 &&
        set_list(&p->elr, &p->n_elr, &r->eligible_leader_replicas))
        return SM_ERR_NOMEM;
    if (r->last_known_elr.n >= 0 && set_list(&p->last_known_elr, &p->n_last_known_elr,
                                             &r->last_known_elr))
        return SM_ERR_NOMEM;
    p->partition_epoch++;
    return SM_OK;
}

static int apply_remove_topic(meta_image_t *img, const proto_remove_topic_record_t *r) {
    meta_topic_t *t = sm_map_del(&img->topics_by_id, r->topic_id.b, 16);
    if (!t) return SM_ERR_NOTFOUND;
    sm_map_del(&img->topics_by_name, t->name, strlen(t->name));
    topic_free(t);
    return SM_OK;
}

static int apply_config(meta_image_t *img, const proto_config_record_t *r) {
    if (r->resource_type == META_RESOURCE_TOPIC) {
        meta_topic_t *t = meta_image_topic(img, r->resource_name);
        if (!t) return SM_ERR_NOTFOUND;
        return set_config(&t->configs, r->name, r->value);
    }
    if (r->resource_type == META_RESOURCE_BROKER && r->resource_name.len > 0 && img->self_id >= 0) {
        /* Another broker's dynamic configs (a cluster shares one log). */
        char id[16];
        size_t n = r->resource_name.len < 15 ? (size_t)r->resource_name.len : 15;
        memcpy(id, r->resource_name.ptr, n);
        id[n] = 0;
        if (atoi(id) != img->self_id) return SM_OK;
    }
    if (r->resource_type == META_RESOURCE_BROKER)
        return set_config(r->resource_name.len > 0 ? &img->broker_configs
                                                   : &img->broker_default_configs,
                          r->name, r->value);
    if (r->resource_type == META_RESOURCE_GROUP && r->resource_name.len > 0) {
        const char *g = r->resource_name.ptr;
        size_t gl = (size_t)r->resource_name.len;
        sm_map_t *m = nested_map(&img->group_configs, g, gl, r->value.len >= 0);
        if (!m) return r->value.len >= 0 ? SM_ERR_NOMEM : SM_OK;
        int rc = set_config(m, r->name, r->value);
        drop_if_empty(&img->group_configs, g, gl);
        return rc;
    }
    return SM_OK;
}

static int part_cmp(const void *a, const void *b) {
    const meta_quota_part_t *x = a, *y = b;
    int32_t n = x->type.len < y->type.len ? x->type.len : y->type.len;
    int c = memcmp(x->type.ptr, y->type.ptr, (size_t)n);
    return c ? c : (x->type.len > y->type.len) - (x->type.len < y->type.len);
}

size_t meta_quota_entity_key(const meta_quota_part_t *parts, int n, uint8_t *buf, size_t cap) {
    if (n <= 0 || n > META_QUOTA_MAX_PARTS) return 0;
    meta_quota_part_t sorted[META_QUOTA_MAX_PARTS];
    memcpy(sorted, parts, sizeof(*parts) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(*sorted), part_cmp);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const meta_quota_part_t *p = &sorted[i];
        if (p->type.len <= 0 || p->type.len > 0xffff || p->name.len > 0xffff) return 0;
        if (i && part_cmp(&sorted[i - 1], p) == 0) return 0;
        size_t nl = p->name.len > 0 ? (size_t)p->name.len : 0;
        if (len + 5 + (size_t)p->type.len + nl > cap) return 0;
        buf[len++] = (uint8_t)(p->type.len >> 8);
        buf[len++] = (uint8_t)p->type.len;
        memcpy(buf + len, p->type.ptr, (size_t)p->type.len);
        len += (size_t)p->type.len;
        buf[len++] = p->name.len < 0;
        buf[len++] = (uint8_t)(nl >> 8);
        buf[len++] = (uint8_t)nl;
        if (nl) memcpy(buf + len, p->name.ptr, nl);
        len += nl;
    }
    return len;
}

int meta_quota_entity_parts(const uint8_t *key, size_t len, meta_quota_part_t *parts) {
    int n = 0;
    size_t o = 0;
    while (o + 5 <= len && n < META_QUOTA_MAX_PARTS) {
        size_t tl = (size_t)key[o] << 8 | key[o + 1];
        parts[n].type = (sm_str_t){(const char *)key + o + 2, (int32_t)tl};
        o += 2 + tl;
        bool null = key[o];
        size_t nl = (size_t)key[o + 1] << 8 | key[o + 2];
        parts[n].name = null ? SM_STR_NULL : (sm_str_t){(const char *)key + o + 3, (int32_t)nl};
        o += 3 + nl;
        n++;
    }
    return n;
}

static int apply_client_quota(meta_image_t *img, const proto_client_quota_record_t *r) {
    meta_quota_part_t parts[META_QUOTA_MAX_PARTS];
    int n = r->entity.n;
    if (n <= 0 || n > META_QUOTA_MAX_PARTS || r->key.len < 0) return SM_ERR_PARSE;
    for (int i = 0; i < n; i++)
        parts[i] = (meta_quota_part_t){r->entity.v[i].entity_type, r->entity.v[i].entity_name};
    uint8_t key[1024];
    size_t kl = meta_quota_entity_key(parts, n, key, sizeof(key));
    if (!kl) return SM_ERR_PARSE;
    sm_map_t *m = nested_map(&img->client_quotas, key, kl, !r->remove);
    if (!m) return r->remove ? SM_OK : SM_ERR_NOMEM;
    int rc = SM_OK;
    if (r->remove) {
        free(sm_map_del(m, r->key.ptr, (size_t)r->key.len));
    } else {
        double *v = malloc(sizeof(*v));
        double *old = sm_map_get(m, r->key.ptr, (size_t)r->key.len);
        if (v) *v = r->value;
        rc = !v ? SM_ERR_NOMEM : sm_map_put(m, r->key.ptr, (size_t)r->key.len, v);
        if (rc)
            free(v);
        else
            free(old);
    }
    drop_if_empty(&img->client_quotas, key, kl);
    return rc;
}

static int apply_feature_level(meta_image_t *img, const proto_feature_level_record_t *r) {
    if (r->name.len <= 0) return SM_ERR_PARSE;
    if (r->feature_level < 0) return SM_ERR_PARSE;
    int16_t *l = sm_map_get(&img->features, r->name.ptr, (size_t)r->name.len);
    if (l) {
        *l = r->feature_level;
        return SM_OK;
    }
    l = malloc(sizeof(*l));
    if (!l) return SM_ERR_NOMEM;
    *l = r->feature_level;
    int rc = sm_map_put(&img->features, r->name.ptr, (size_t)r->name.len, l);
    if (rc) free(l);
    return rc;
}

meta_broker_t *meta_image_broker(const meta_image_t *img, int32_t id) {
    return sm_map_get(&img->brokers, &id, sizeof(id));
}

const meta_endpoint_t *meta_broker_endpoint(const meta_broker_t *bk, const char *listener) {
    for (int i = 0; i < bk->n_endpoints; i++)
        if (strcasecmp(bk->endpoints[i].name, listener) == 0) return &bk->endpoints[i];
    return NULL;
}

static void copy_str(char *dst, size_t cap, sm_str_t s) {
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, s.ptr, n);
    dst[n] = 0;
}

/* A registration replaces the broker's previous one (a new incarnation). */
static int apply_register_broker(meta_image_t *img, const proto_register_broker_record_t *r,
                                 int64_t offset) {
    meta_broker_t *bk = meta_image_broker(img, r->broker_id);
    bool added = false;
    if (!bk) {
        if (!(bk = calloc(1, sizeof(*bk)))) return SM_ERR_NOMEM;
        added = true;
    }
    memset(bk, 0, sizeof(*bk));
    bk->id = r->broker_id;
    bk->epoch = r->broker_epoch >= 0 ? r->broker_epoch : offset;
    bk->incarnation_id = r->incarnation_id;
    bk->fenced = r->fenced;
    bk->in_controlled_shutdown = r->in_controlled_shutdown;
    bk->has_rack = r->rack.len >= 0;
    copy_str(bk->rack, sizeof(bk->rack), r->rack);
    for (int32_t i = 0; i < r->end_points.n && bk->n_endpoints < META_MAX_ENDPOINTS; i++) {
        meta_endpoint_t *e = &bk->endpoints[bk->n_endpoints++];
        copy_str(e->name, sizeof(e->name), r->end_points.v[i].name);
        copy_str(e->host, sizeof(e->host), r->end_points.v[i].host);
        e->port = r->end_points.v[i].port;
        e->security_protocol = r->end_points.v[i].security_protocol;
    }
    if (added) {
        int rc = sm_map_put(&img->brokers, &bk->id, sizeof(bk->id), bk);
        if (rc) free(bk);
        return rc;
    }
    return SM_OK;
}

/* Fencing records name the epoch they apply to: a stale one (an older
 * registration) changes nothing. */
static void apply_fencing(meta_image_t *img, int32_t id, int64_t epoch, int fenced, int shutdown) {
    meta_broker_t *bk = meta_image_broker(img, id);
    if (!bk || (epoch >= 0 && bk->epoch != epoch)) return;
    if (fenced >= 0) bk->fenced = fenced;
    if (shutdown >= 0) bk->in_controlled_shutdown = shutdown;
}

int meta_image_apply(meta_image_t *img, int16_t type, const void *msg, int64_t offset) {
    int rc = SM_OK;
    switch (type) {
    case PROTO_TOPIC_RECORD_API_KEY:
        rc = apply_topic(img, msg);
        img->topics_version++;
        break;
    case PROTO_PARTITION_RECORD_API_KEY:
        rc = apply_partition(img, msg);
        img->topics_version++;
        break;
    case PROTO_PARTITION_CHANGE_RECORD_API_KEY:
        rc = apply_partition_change(img, msg);
        img->topics_version++;
        break;
    case PROTO_REMOVE_TOPIC_RECORD_API_KEY:
        rc = apply_remove_topic(img, msg);
        img->topics_version++;
        break;
    case PROTO_CONFIG_RECORD_API_KEY: rc = apply_config(img, msg); break;
    case PROTO_CLIENT_QUOTA_RECORD_API_KEY: rc = apply_client_quota(img, msg); break;
    case PROTO_FEATURE_LEVEL_RECORD_API_KEY: rc = apply_feature_level(img, msg); break;
    case PROTO_REGISTER_BROKER_RECORD_API_KEY: rc = apply_register_broker(img, msg, offset); break;
    case PROTO_UNREGISTER_BROKER_RECORD_API_KEY: {
        const proto_unregister_broker_record_t *r = msg;
        meta_broker_t *bk = meta_image_broker(img, r->broker_id);
        if (bk && (r->broker_epoch < 0 || bk->epoch == r->broker_epoch))
            free(sm_map_del(&img->brokers, &r->broker_id, sizeof(r->broker_id)));
        break;
    }
    case PROTO_FENCE_BROKER_RECORD_API_KEY: {
        const proto_fence_broker_record_t *r = msg;
        apply_fencing(img, r->id, r->epoch, 1, -1);
        break;
    }
    case PROTO_UNFENCE_BROKER_RECORD_API_KEY: {
        const proto_unfence_broker_record_t *r = msg;
        apply_fencing(img, r->id, r->epoch, 0, 0);
        break;
    }
    case PROTO_BROKER_REGISTRATION_CHANGE_RECORD_API_KEY: {
        const proto_broker_registration_change_record_t *r = msg;
        /* Fenced: 1 fenced, -1 unfenced, 0 unchanged; InControlledShutdown: 1 yes. */
        apply_fencing(img, r->broker_id, r->broker_epoch,
                      r->fenced == 1 ? 1 : r->fenced == -1 ? 0 : -1,
                      r->in_controlled_shutdown == 1 ? 1 : -1);
        break;
    }
    case PROTO_PRODUCER_IDS_RECORD_API_KEY: {
        const proto_producer_ids_record_t *r = msg;
        if (r->next_producer_id > img->next_producer_id)
            img->next_producer_id = r->next_producer_id;
        break;
    }
    default: break;
    }
    if (rc == SM_OK) img->last_offset = offset;
    return rc;
}

bool meta_topic_name_valid(sm_str_t name) {
    if (name.len <= 0 || name.len > 249) return false;
    if ((name.len == 1 && name.ptr[0] == '.') ||
        (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
        return false;
    for (int32_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool meta_topic_names_collide(sm_str_t a, sm_str_t b) {
    if (a.len != b.len) return false;
    for (int32_t i = 0; i < a.len; i++) {
        char x = a.ptr[i] == '.' ? '_' : a.ptr[i];
        char y = b.ptr[i] == '.' ? '_' : b.ptr[i];
        if (x != y) return false;
    }
    return true;
}
