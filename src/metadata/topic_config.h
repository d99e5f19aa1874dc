/*
 * Topic-level configs: the keys a topic may override (retention.ms, ...), their
 * types and valid values, and the broker key each one defaults to
 * (retention.ms <- log.retention.ms), as in Kafka's LogConfig.
 */
#ifndef META_TOPIC_CONFIG_H
#define META_TOPIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum meta_cfg_type {
    META_CFG_BOOL,
    META_CFG_INT,
    META_CFG_LONG,
    META_CFG_DOUBLE,
    META_CFG_STRING,
    META_CFG_LIST,
    META_CFG_CLASS,
} meta_cfg_type_t;

typedef struct meta_topic_config_def {
    const char *name;
    meta_cfg_type_t type;
    const char *broker_key;     /* broker config it defaults to, or NULL */
    const char *default_value;  /* Kafka's default when broker_key is NULL or unset */
    int64_t min;                /* inclusive lower bound for numbers */
    const char *const *choices; /* NULL-terminated allowed values (STRING/LIST), or NULL */
    bool implemented;           /* false: accepted and stored, not yet acted on */
    const char *doc;            /* one line for DescribeConfigs' documentation */
} meta_topic_config_def_t;

extern const meta_topic_config_def_t meta_topic_configs[];
extern const size_t meta_topic_configs_count;

const meta_topic_config_def_t *meta_topic_config_def(const char *name, size_t len);

/*
 * Checks value for the topic config key. Returns true when valid; otherwise
 * writes a one-line reason into err (e.g. "Invalid value abc for configuration
 * retention.ms: Not a number of type LONG").
 */
bool meta_topic_config_validate(const char *name, size_t name_len, const char *value,
                                size_t value_len, char *err, size_t errlen);

/*
 * Whether a throttled-replicas list (leader. / follower.replication.throttled.replicas:
 * "*" or "partition:broker,...") names partition on broker, as Kafka reads it: "*"
 * throttles every partition on every broker; a pair throttles that partition on that
 * broker only. NULL or "" names none.
 */
bool meta_throttled_replica(const char *list, int32_t partition, int32_t broker);

#endif
