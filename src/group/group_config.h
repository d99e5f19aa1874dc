/*
 * Group configs (KIP-848 and its successors): the keys Kafka 4.4 lists for a
 * GROUP config resource, their defaults (the broker's group.* settings, which
 * Samsa does not have, so Kafka's defaults), and the validation Kafka applies
 * to a dynamic value. Samsa's groups are classic groups: the values are
 * stored (ConfigRecords of resource type GROUP) and reported, not acted on.
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

/* The definition of a key, or NULL. */
const group_config_def_t *group_config_def(const char *name, size_t len);
/* Checks a value (len bytes) for a key; false with Kafka's message in err. */
bool group_config_validate(const group_config_def_t *d, const char *value, size_t len, char *err,
                           size_t errlen);

#endif
