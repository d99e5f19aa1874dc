/*
 * The broker's effective configuration (see configs.h). The effective config
 * is a copy of the static one with dynamic values applied, swapped under
 * settings_mu; readers hold that mutex for as long as they use it.
 */
#include "broker/configs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/partition.h"

static void apply_dynamic(sm_config_t *eff, const sm_map_t *m, sm_config_source_t src) {
    size_t it = 0;
    const void *k;
    size_t klen;
    void *v;
    while (sm_map_next(m, &it, &k, &klen, &v)) {
        char key[256], err[256];
        if (klen >= sizeof(key)) continue;
        memcpy(key, k, klen);
        key[klen] = 0;
        /* Kafka keys Samsa only stores stay in the image, for DescribeConfigs. */
        if (!sm_config_key(key) && sm_config_key_stored_only(key)) continue;
        if (sm_config_set(eff, key, v, src, err, sizeof(err)))
            sm_warn("config", "dynamic config %s=%s ignored: %s", key, (const char *)v, err);
    }
}

/* Topic defaults and produce-path settings from eff; caller holds settings_mu. */
static void derive_topic_defaults(broker_t *b, const sm_config_t *c) {
    broker_settings_t *s = &b->s;
    s->message_max_bytes = sm_config_int(c, "message.max.bytes");
    s->log_append_time =
        strcmp(sm_config_str(c, "log.message.timestamp.type"), "LogAppendTime") == 0;
    s->timestamp_before_max_ms = sm_config_long(c, "log.message.timestamp.before.max.ms");
    s->timestamp_after_max_ms = sm_config_long(c, "log.message.timestamp.after.max.ms");
    s->min_insync_replicas = sm_config_int(c, "min.insync.replicas");
    s->replica_fetch_max_bytes = sm_config_int(c, "replica.fetch.max.bytes");
    s->replica_fetch_response_max_bytes = sm_config_int(c, "replica.fetch.response.max.bytes");
    s->replica_fetch_wait_max_ms = sm_config_int(c, "replica.fetch.wait.max.ms");
    s->replica_fetch_min_bytes = sm_config_int(c, "replica.fetch.min.bytes");
    s->replica_fetch_backoff_ms = sm_config_int(c, "replica.fetch.backoff.ms");
    s->replica_lag_time_max_ms = sm_config_long(c, "replica.lag.time.max.ms");
    s->replica_socket_timeout_ms = sm_config_int(c, "replica.socket.timeout.ms");
    s->num_replica_fetchers = sm_config_int(c, "num.replica.fetchers");
    repl_quota_set_bound(&b->leader_quota, sm_config_long(c, "leader.replication.throttled.rate"));
    repl_quota_set_bound(&b->follower_quota,
                         sm_config_long(c, "follower.replication.throttled.rate"));
    const char *selector = sm_config_str(c, "replica.selector.class");
    s->rack_aware_selector =
        selector && strstr(selector, "RackAwareReplicaSelector") != NULL;

    log_config_t *d = &b->log_defaults;
    log_config_default(d);
    d->segment_bytes = sm_config_long(c, "log.segment.bytes");
    d->segment_ms = sm_config_roll_ms(c);
    d->index_interval_bytes = sm_config_int(c, "log.index.interval.bytes");
    d->segment_index_bytes = sm_config_int(c, "log.index.size.max.bytes");
    d->retention_ms = sm_config_retention_ms(c);
    d->retention_bytes = sm_config_long(c, "log.retention.bytes");
    d->flush_interval_messages = sm_config_long(c, "log.flush.interval.messages");
    d->flush_interval_ms = sm_config_is_set(c, "log.flush.interval.ms")
                               ? sm_config_long(c, "log.flush.interval.ms")
                               : INT64_MAX;
    d->file_delete_delay_ms = sm_config_long(c, "log.segment.delete.delay.ms");
    d->fsync_before_ack = s->fsync_before_ack;
    d->recovery_flush_bytes = sm_config_long(c, "samsa.log.recovery.flush.bytes");
    d->recovery_flush_ms = sm_config_long(c, "samsa.log.recovery.flush.ms");
    b->cleanup_delete_default = strstr(sm_config_str(c, "log.cleanup.policy"), "delete") != NULL;
    d->compact = strstr(sm_config_str(c, "log.cleanup.policy"), "compact") != NULL;
    d->min_cleanable_ratio = strtod(sm_config_str(c, "log.cleaner.min.cleanable.ratio"), NULL);
    d->min_compaction_lag_ms = sm_config_long(c, "log.cleaner.min.compaction.lag.ms");
    d->max_compaction_lag_ms = sm_config_long(c, "log.cleaner.max.compaction.lag.ms");
    d->delete_retention_ms = sm_config_long(c, "log.cleaner.delete.retention.ms");
}

int broker_configs_refresh(broker_t *b) {
    sm_config_t *eff = sm_config_dup(b->cfg);
    if (!eff) return SM_ERR_NOMEM;
    apply_dynamic(eff, &b->image.broker_default_configs, SM_CONFIG_DYNAMIC_DEFAULT);
    apply_dynamic(eff, &b->image.broker_configs, SM_CONFIG_DYNAMIC);
    pthread_mutex_lock(&b->settings_mu);
    sm_config_t *old = b->eff;
    b->eff = eff;
    derive_topic_defaults(b, eff);
    pthread_mutex_unlock(&b->settings_mu);
    sm_config_free(old);

    size_t it = 0;
    void *v;
    while (sm_map_next(&b->image.topics_by_name, &it, NULL, NULL, &v))
        broker_partitions_reconfigure(b, v);
    return SM_OK;
}

const sm_config_t *broker_configs_acquire(broker_t *b) {
    pthread_mutex_lock(&b->settings_mu);
    return b->eff;
}

void broker_configs_release(broker_t *b) { pthread_mutex_unlock(&b->settings_mu); }

int8_t broker_config_source(const sm_config_t *eff, const char *key) {
    if (!sm_config_is_set(eff, key)) return BROKER_CFG_SRC_DEFAULT;
    switch (sm_config_source(eff, key)) {
    case SM_CONFIG_DYNAMIC: return BROKER_CFG_SRC_DYNAMIC_BROKER;
    case SM_CONFIG_DYNAMIC_DEFAULT: return BROKER_CFG_SRC_DYNAMIC_DEFAULT_BROKER;
    case SM_CONFIG_FILE:
    case SM_CONFIG_OVERRIDE: return BROKER_CFG_SRC_STATIC_BROKER;
    default: return BROKER_CFG_SRC_DEFAULT;
    }
}

int broker_topic_config_synonyms(const meta_topic_config_def_t *d, const char *out[3]) {
    if (!d->broker_key) return 0;
    if (strcmp(d->name, "retention.ms") == 0) {
        out[0] = "log.retention.ms";
        out[1] = "log.retention.minutes";
        out[2] = "log.retention.hours";
        return 3;
    }
    if (strcmp(d->name, "segment.ms") == 0) {
        out[0] = "log.roll.ms";
        out[1] = "log.roll.hours";
        return 2;
    }
    if (strcmp(d->name, "segment.jitter.ms") == 0) {
        out[0] = "log.roll.jitter.ms";
        out[1] = "log.roll.jitter.hours";
        return 2;
    }
    out[0] = d->broker_key;
    return 1;
}

void broker_synonym_to_topic_value(const char *synonym, const char *value, char *buf, size_t len) {
    int64_t mult = 0;
    size_t n = strlen(synonym);
    if (n > 8 && strcmp(synonym + n - 8, ".minutes") == 0) mult = 60000;
    if (n > 6 && strcmp(synonym + n - 6, ".hours") == 0) mult = 3600000;
    if (!mult) {
        snprintf(buf, len, "%s", value);
        return;
    }
    int64_t v = strtoll(value, NULL, 10);
    snprintf(buf, len, "%" PRId64, v < 0 ? v : v * mult);
}

void broker_topic_config_value(const sm_config_t *eff, const meta_topic_t *t,
                               const meta_topic_config_def_t *d, char *buf, size_t len,
                               int8_t *source) {
    const char *v = t ? meta_topic_config(t, d->name) : NULL;
    if (v) {
        snprintf(buf, len, "%s", v);
        *source = BROKER_CFG_SRC_TOPIC;
        return;
    }
    const char *syn[3];
    int n = broker_topic_config_synonyms(d, syn);
    for (int i = 0; i < n; i++) {
        if (!sm_config_key(syn[i]) || !sm_config_is_set(eff, syn[i])) continue;
        broker_synonym_to_topic_value(syn[i], sm_config_str(eff, syn[i]), buf, len);
        *source = broker_config_source(eff, syn[i]);
        return;
    }
    snprintf(buf, len, "%s", d->default_value);
    *source = BROKER_CFG_SRC_DEFAULT;
}
