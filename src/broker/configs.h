/*
 * The broker's effective configuration: server.properties (and --override)
 * with the dynamic broker configs of the metadata log on top, and the
 * effective value of each topic config (override, else the broker default it
 * inherits, else Kafka's default). DescribeConfigs reports these; the topic
 * defaults that partitions use (segment size, retention, max message size,
 * ...) are re-derived from them whenever dynamic configs change.
 */
#ifndef BROKER_CONFIGS_H
#define BROKER_CONFIGS_H

#include "broker/broker.h"
#include "metadata/topic_config.h"

/* DescribeConfigs ConfigSource values (Kafka's). */
enum {
    BROKER_CFG_SRC_UNKNOWN = 0,
    BROKER_CFG_SRC_TOPIC = 1,
    BROKER_CFG_SRC_DYNAMIC_BROKER = 2,
    BROKER_CFG_SRC_DYNAMIC_DEFAULT_BROKER = 3,
    BROKER_CFG_SRC_STATIC_BROKER = 4,
    BROKER_CFG_SRC_DEFAULT = 5,
};

/*
 * Rebuilds the effective broker config from the static one and the image's
 * dynamic broker configs, re-derives the topic defaults and reconfigures every
 * partition. Caller holds the image lock (read is enough).
 */
int broker_configs_refresh(broker_t *b);

/* The effective broker config, stable until broker_configs_release. */
const sm_config_t *broker_configs_acquire(broker_t *b);
void broker_configs_release(broker_t *b);

/* DescribeConfigs source of a broker key in eff. */
int8_t broker_config_source(const sm_config_t *eff, const char *key);

/*
 * The value a topic config has for topic t (t == NULL: the default a new topic
 * gets): its override (source TOPIC), else the broker key it inherits when set
 * dynamically or statically (retention.ms also from log.retention.minutes and
 * .hours, segment.ms from log.roll.hours), else the table's default. Writes a
 * NUL-terminated value into buf. Caller holds the image lock when t != NULL.
 */
void broker_topic_config_value(const sm_config_t *eff, const meta_topic_t *t,
                               const meta_topic_config_def_t *d, char *buf, size_t len,
                               int8_t *source);

/* The broker keys a topic config inherits from, most specific first
 * (retention.ms: log.retention.ms, log.retention.minutes, log.retention.hours);
 * returns their count (0..3). */
int broker_topic_config_synonyms(const meta_topic_config_def_t *d, const char *out[3]);

/* Converts a synonym's value to the topic config's unit (hours → ms, ...). */
void broker_synonym_to_topic_value(const char *synonym, const char *value, char *buf, size_t len);

#endif
