/*
 * Config calls shared by `samsa topics` and `samsa configs`: DescribeConfigs
 * and IncrementalAlterConfigs (KIP-339) for one resource, with Kafka's names
 * of config sources. Printing the results is left to the commands.
 */
#ifndef SAMSA_CLI_ADM_CONFIGS_H
#define SAMSA_CLI_ADM_CONFIGS_H

#include "cli/adm_args.h"
#include "client/kclient.h"

enum { ADM_RES_TOPIC = 2, ADM_RES_BROKER = 4 };
enum { ADM_OP_SET = 0, ADM_OP_DELETE = 1, ADM_OP_APPEND = 2, ADM_OP_SUBTRACT = 3 };
enum {
    ADM_SRC_DYNAMIC_TOPIC = 1,
    ADM_SRC_DYNAMIC_BROKER = 2,
    ADM_SRC_DYNAMIC_DEFAULT_BROKER = 3,
    ADM_SRC_DEFAULT = 5
};

typedef proto_describe_configs_response_describe_configs_result_t adm_config_result_t;
typedef proto_describe_configs_response_describe_configs_resource_result_t adm_config_entry_t;

/* Kafka's name of a ConfigSource ("DYNAMIC_TOPIC_CONFIG", ...). */
const char *adm_config_source_name(int8_t source);

/*
 * DescribeConfigs for n resources of one type (all keys), in one request. On
 * success *out points into arena a; Kafka errors in the results are left for
 * the caller (adm_config_result finds each).
 */
int adm_describe_configs(kc_client_t *kc, sm_arena_t *a, int8_t type, const char *const *names,
                         size_t n, proto_describe_configs_response_t **out);
/* The result for the resource named name, or NULL when the answer lacks it. */
const adm_config_result_t *adm_config_result(const proto_describe_configs_response_t *resp,
                                             const char *name);

/* One change: key, value (NULL for DELETE) and operation. */
typedef struct adm_config_op {
    const char *key;
    const char *value;
    int8_t op;
} adm_config_op_t;

/*
 * Parses "k=v" items into ops with operation op (value required) or, for
 * ADM_OP_DELETE, plain keys. Values may be "[a,b]" for lists: the brackets
 * are dropped. Pointers borrow items. Prints a usage error and returns
 * CLI_USAGE on a malformed item.
 */
int adm_config_ops_parse(const adm_list_t *items, int8_t op, const char *flag, adm_config_op_t *ops,
                         size_t *nops);

/*
 * IncrementalAlterConfigs for one resource. Prints a broker error as
 * "samsa: <what>: NAME: message" and returns CLI_FAIL; CLI_OK on success.
 */
int adm_alter_configs(adm_cmd_t *m, int8_t type, const char *name, const adm_config_op_t *ops,
                      size_t nops, const char *what);

#endif
