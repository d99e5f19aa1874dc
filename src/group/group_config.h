/*
 * Group configs (KIP-848 and its successors): the keys Kafka 4.4 lists for a
 * GROUP config resource, their defaults (the broker's group.* settings where
 * Samsa has them, Kafka's defaults otherwise), and the validation Kafka applies
 * to a dynamic value. Values are stored as ConfigRecords of resource type
 * GROUP; consumer groups act on consumer.session.timeout.ms and
 * consumer.heartbeat.interval.ms (consumer.c), the other keys are stored and
 * reported.
 */
#ifndef GROUP_CONFIG_H
#define GROUP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { GROUP_CFG_INT, GROUP_CFG_BOOL, GROUP_CFG_STRING, GROUP_CFG_LIST } group_cfg_type_t;

typedef struct group_config_def {
    const char *name;
    group_cfg_type_t type;
    const char *default_value;
    const char *synonym; /* the broker key Kafka names as its DEFAULT_CONFIG synonym */
    int64_t at_least;    /* INT keys: below it "Value must be at least" */
    int64_t max;         /* INT keys: the top of the range Kafka checks next */
    int64_t range_min;   /* > 0: refused as "must be in the range range_min to max
                          * inclusive."; 0: above max "must be less than or equal to" */
    const char *doc;
} group_config_def_t;

extern const group_config_def_t group_configs[];
extern const size_t group_configs_count;

typedef struct sm_config sm_config_t;

/* The definition of a key, or NULL. */
const group_config_def_t *group_config_def(const char *name, size_t len);
/* A key's default: the broker's value of its synonym (group.consumer.session.timeout.ms
 * for consumer.session.timeout.ms) when the broker knows that key, else Kafka's
 * default. broker may be NULL. */
const char *group_config_default(const group_config_def_t *d, const sm_config_t *broker);
/* Checks a value (len bytes) for a key; false with Kafka's message in err. The
 * session timeouts and heartbeat intervals must lie within the broker's
 * group.consumer.min/max.* bounds (Kafka's GroupConfig.validate); broker may
 * be NULL (Kafka's default bounds). */
bool group_config_validate(const group_config_def_t *d, const sm_config_t *broker,
                           const char *value, size_t len, char *err, size_t errlen);
/* Checks a group's whole config after a change (value(arg, name) gives its
 * value or NULL when unset): a session timeout must exceed its heartbeat
 * interval, either taken from the broker when the group does not set it.
 * False with Kafka's message in err. */
bool group_config_check_set(const sm_config_t *broker,
                            const char *(*value)(void *arg, const char *name), void *arg, char *err,
                            size_t errlen);

#endif
