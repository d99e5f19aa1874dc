/*
 * Broker configuration as Kafka's server.properties: Java-properties parsing,
 * a table of known keys with Kafka's types and defaults, validation with one
 * clear line per problem, --override key=value, and typed getters. Keys Kafka
 * knows that Samsa does not act on (ssl.*, sasl.*, ...) are accepted with a
 * warning so an operator's existing file works.
 */
#ifndef SM_CONFIG_H
#define SM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sm_config_source {
    SM_CONFIG_DEFAULT = 0,
    SM_CONFIG_FILE = 1,
    SM_CONFIG_OVERRIDE = 2,
    SM_CONFIG_DYNAMIC_DEFAULT = 3, /* cluster-wide dynamic broker default (metadata log) */
    SM_CONFIG_DYNAMIC = 4,         /* this broker's dynamic config (metadata log) */
} sm_config_source_t;

typedef enum sm_config_type {
    SM_CFG_STRING,
    SM_CFG_INT,
    SM_CFG_LONG,
    SM_CFG_BOOL,
    SM_CFG_DOUBLE,
    SM_CFG_LIST,
} sm_config_type_t;

typedef struct sm_config_key {
    const char *name;
    sm_config_type_t type;
    const char *default_value; /* NULL: no default (unset) */
    int64_t min, max;          /* numeric bounds, inclusive */
    const char *const *choices; /* allowed values, NULL-terminated, or NULL */
    const char *doc;
} sm_config_key_t;

typedef struct sm_config sm_config_t;

extern const sm_config_key_t sm_config_keys[];
extern const size_t sm_config_keys_count;

sm_config_t *sm_config_new(void);
void sm_config_free(sm_config_t *c);
/* A copy of c (values and their sources), or NULL when out of memory. */
sm_config_t *sm_config_dup(const sm_config_t *c);
/* Removes key's value so its default applies again. */
void sm_config_unset(sm_config_t *c, const char *key);
/* The table entry of a known key, or NULL. */
const sm_config_key_t *sm_config_key(const char *key);
/* True for keys an operator may change at run time (IncrementalAlterConfigs on
 * a broker resource): the broker-wide defaults of topic configs and the
 * replication throttles' rates. */
bool sm_config_key_dynamic(const char *key);
/* Broker keys Kafka 4.4 lets change at run time that Samsa stores and reports
 * but does not act on (thread pools, the log cleaner, connection limits,
 * the log-dir move throttle, SSL and SASL settings, per-listener settings), and custom keys
 * neither Kafka nor Samsa knows, which Kafka stores too. */
bool sm_config_key_stored_only(const char *key);
/* SSL key and trust store settings: Kafka changes them only per listener
 * (listener.name.<listener>.<key>). */
bool sm_config_key_listener_only(const char *key);
/* Keys whose values are secrets, or custom keys Kafka does not know: described
 * with a null value, as Kafka describes them. */
bool sm_config_key_sensitive(const char *key);

/* Each returns 0, or -1 with one line naming the key and the problem in err. */
int sm_config_load_file(sm_config_t *c, const char *path, char *err, size_t errlen);
int sm_config_set(sm_config_t *c, const char *key, const char *value, sm_config_source_t src,
                  char *err, size_t errlen);
/* Parses "key=value" (for --override). */
int sm_config_set_override(sm_config_t *c, const char *kv, char *err, size_t errlen);

/* Typed getters for known keys (defaults apply); unset strings give NULL. */
const char *sm_config_str(const sm_config_t *c, const char *key);
int64_t sm_config_long(const sm_config_t *c, const char *key);
int32_t sm_config_int(const sm_config_t *c, const char *key);
bool sm_config_bool(const sm_config_t *c, const char *key);
bool sm_config_is_set(const sm_config_t *c, const char *key);
sm_config_source_t sm_config_source(const sm_config_t *c, const char *key);

/* Keys Kafka knows that Samsa accepts without acting on are marked by their
 * doc starting with SM_CONFIG_INERT_DOC (DescribeConfigs shows that doc). */
#define SM_CONFIG_INERT_DOC "Not in effect"
bool sm_config_key_inert(const char *key);
/* Checks between keys (Kafka's); -1 with one line in err when one fails. */
int sm_config_check(const sm_config_t *c, char *err, size_t errlen);
/* One warning per inert key set in c (file or --override); returns how many.
 * Keys matched only by a Kafka prefix (ssl.*, ...) warn as they are set. */
int sm_config_warn_inert(const sm_config_t *c);

/* Kafka's precedence: log.retention.ms > .minutes > .hours; -1 = forever. */
int64_t sm_config_retention_ms(const sm_config_t *c);
/* log.roll.ms > log.roll.hours. */
int64_t sm_config_roll_ms(const sm_config_t *c);

#endif
