/*
 * The metadata image: the in-memory state built by applying metadata log
 * records (TopicRecord, PartitionRecord, ConfigRecord, ...) in order. Every
 * reader (Metadata, Produce, Fetch handlers) looks things up here; only the
 * controller changes it, and only by applying records it has appended to the
 * metadata log. Thread-safety: readers take meta_image_rdlock, the applier the
 * write lock; pointers obtained under the lock stay valid until unlock (topics
 * are freed only by RemoveTopicRecord under the write lock).
 */
#ifndef META_IMAGE_H
#define META_IMAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/map.h"
#include "base/types.h"

typedef struct meta_partition {
    int32_t id;
    int32_t leader;
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t n_replicas;
    int32_t *replicas;
    int32_t n_isr;
    int32_t *isr;
    /* An ongoing reassignment (KIP-455): replicas being added / removed; NULL when none. */
    int32_t n_adding, n_removing;
    int32_t *adding, *removing;
    /* Eligible leader replicas (KIP-966): replicas that left the ISR while it was below
     * min.insync.replicas and still hold every committed record; LastKnownElr: those that
     * left the ELR (unclean shutdown) or the ISR while it was below min ISR. NULL when empty. */
    int32_t n_elr, n_last_known_elr;
    int32_t *elr, *last_known_elr;
} meta_partition_t;

typedef struct meta_topic {
    char *name; /* NUL-terminated */
    sm_uuid_t id;
    int32_t n_partitions;
    meta_partition_t *partitions; /* indexed by partition id */
    sm_map_t configs;             /* config name -> char* value (topic overrides) */
    bool internal;                /* __consumer_offsets, __transaction_state */
} meta_topic_t;

/* A registered broker (RegisterBrokerRecord and the fencing records after it). */
#define META_MAX_ENDPOINTS 8
typedef struct meta_endpoint {
    char name[64];
    char host[256];
    int32_t port;
    int16_t security_protocol;
} meta_endpoint_t;

typedef struct meta_broker {
    int32_t id;
    int64_t epoch; /* the offset of its registration record */
    sm_uuid_t incarnation_id;
    bool fenced;
    bool in_controlled_shutdown;
    char rack[128]; /* "" when none */
    bool has_rack;
    int n_endpoints;
    meta_endpoint_t endpoints[META_MAX_ENDPOINTS];
} meta_broker_t;

typedef struct meta_image {
    pthread_rwlock_t lock;
    sm_map_t topics_by_name; /* name -> meta_topic_t* */
    sm_map_t topics_by_id;   /* 16-byte uuid -> meta_topic_t* */
    sm_map_t broker_configs;         /* dynamic configs of this broker: name -> char* value */
    sm_map_t broker_default_configs; /* dynamic cluster-wide broker defaults (resource "") */
    sm_map_t group_configs;  /* group id -> sm_map_t* (config name -> char* value) */
    sm_map_t client_quotas;  /* meta_quota_entity_key() bytes -> sm_map_t* (quota key -> double*) */
    sm_map_t features;       /* feature name -> int16_t* finalized level (FeatureLevelRecord, > 0) */
    sm_map_t brokers;         /* int32 broker id -> meta_broker_t* (cluster mode) */
    int64_t next_producer_id; /* first id of the next producer id block */
    int64_t last_offset;      /* offset of the last applied record, -1 if none */
    int64_t topics_version;   /* bumped on every topic/partition change */
    int32_t self_id;          /* this node: BROKER ConfigRecords of other ids are skipped; -1 all */
} meta_image_t;

/* ConfigRecord resource types (Kafka's ConfigResource.Type). */
enum { META_RESOURCE_TOPIC = 2, META_RESOURCE_BROKER = 4, META_RESOURCE_GROUP = 32 };

/* One part of a client-quota entity: type "user", "client-id" or "ip"; a
 * null name is the type's default entity. */
typedef struct meta_quota_part {
    sm_str_t type;
    sm_str_t name;
} meta_quota_part_t;

enum { META_QUOTA_MAX_PARTS = 3 };

/*
 * The canonical key of a quota entity in client_quotas: its parts sorted by
 * type, each as u16 type length, type, u8 null flag, u16 name length, name.
 * Returns the key length, 0 when the entity is invalid (no parts, more than
 * META_QUOTA_MAX_PARTS, a type twice, or longer than cap).
 */
size_t meta_quota_entity_key(const meta_quota_part_t *parts, int n, uint8_t *buf, size_t cap);
/* The parts of a key made by meta_quota_entity_key (views into key); their count. */
int meta_quota_entity_parts(const uint8_t *key, size_t len, meta_quota_part_t *parts);

int meta_image_init(meta_image_t *img);
/* Exchanges the contents of a and b (not their locks): a follower installing a snapshot
 * builds the new image aside and swaps it in under a's write lock. */
void meta_image_swap(meta_image_t *a, meta_image_t *b);
void meta_image_free(meta_image_t *img);

static inline void meta_image_rdlock(meta_image_t *img) { pthread_rwlock_rdlock(&img->lock); }
static inline void meta_image_wrlock(meta_image_t *img) { pthread_rwlock_wrlock(&img->lock); }
static inline void meta_image_unlock(meta_image_t *img) { pthread_rwlock_unlock(&img->lock); }

/* Lookups; the caller holds a lock. */
meta_topic_t *meta_image_topic(const meta_image_t *img, sm_str_t name);
meta_topic_t *meta_image_topic_by_id(const meta_image_t *img, const sm_uuid_t *id);
const char *meta_topic_config(const meta_topic_t *t, const char *name);
/* A group's dynamic config map (name -> char*), or NULL when it has none. */
const sm_map_t *meta_group_configs(const meta_image_t *img, sm_str_t group);
/* A registered broker, or NULL. */
meta_broker_t *meta_image_broker(const meta_image_t *img, int32_t id);
/* The endpoint of broker bk named listener (case-insensitive), or NULL. */
const meta_endpoint_t *meta_broker_endpoint(const meta_broker_t *bk, const char *listener);
/* The finalized level of a feature (0: not finalized). */
int16_t meta_feature_level(const meta_image_t *img, const char *name);
/* The finalized level of a feature, `implied` when no FeatureLevelRecord set it (a level 0
 * record is kept: a feature finalized by default can be disabled). */
int16_t meta_feature_level_or(const meta_image_t *img, const char *name, int16_t implied);
/* eligible.leader.replicas.version (KIP-966), finalized at 1 unless disabled. */
#define META_ELR_FEATURE "eligible.leader.replicas.version"
static inline bool meta_elr_enabled(const meta_image_t *img) {
    return meta_feature_level_or(img, META_ELR_FEATURE, 1) >= 1;
}

/*
 * Applies one decoded metadata record (type = record api key, msg = the
 * generated struct). Caller holds the write lock. Records of types the image
 * does not track are accepted and ignored. Returns SM_OK, SM_ERR_NOTFOUND for a
 * record about an unknown topic, or SM_ERR_NOMEM.
 */
int meta_image_apply(meta_image_t *img, int16_t type, const void *msg, int64_t offset);

/* True when name is a legal topic name (Kafka's rules: 1..249 chars of
 * [a-zA-Z0-9._-], not "." or ".."). */
bool meta_topic_name_valid(sm_str_t name);
/* Kafka warns when topic names collide after replacing '.' with '_'. */
bool meta_topic_names_collide(sm_str_t a, sm_str_t b);

#endif
