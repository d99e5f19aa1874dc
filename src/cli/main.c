/*
 * samsa: the command-line tool for operators, in the spirit of Kafka's bin/
 * scripts, as one binary with subcommands. This file dispatches to them and
 * holds what they share (errors, librdkafka configuration).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "version.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"topics", cli_topics, "create, list, describe, alter and delete topics"},
    {"produce", cli_produce, "console producer: one record per line of stdin"},
    {"consume", cli_consume, "console consumer: records to stdout"},
    {"groups", cli_groups, "list, describe, delete consumer groups; reset their offsets"},
    {"configs", cli_configs, "describe and alter topic and broker configs"},
    {"cluster", cli_cluster, "describe the cluster: brokers, controller, id, versions"},
    {"transactions", cli_transactions, "list, describe and abort transactions"},
    {"perf", cli_perf, "producer and consumer performance tests"},
    {"logs", cli_logs, "the log cleaner's state of compacted partitions in a log dir"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: samsa <command> [options]   (samsa <command> --help for its "
               "options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit codes: 0 ok, 1 the operation failed, 2 usage error\n");
}

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("samsa: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

rd_kafka_conf_t *cli_rk_conf(const char *bootstrap, char *const *props, size_t nprops) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        cli_error("--bootstrap-server: %s", err);
        goto fail;
    }
    for (size_t i = 0; i < nprops; i++) {
        char kv[1024];
        const char *eq = strchr(props[i], '=');
        if (!eq || eq == props[i] || strlen(props[i]) >= sizeof(kv)) {
            cli_error("property '%s': expected key=value", props[i]);
            goto fail;
        }
        memcpy(kv, props[i], (size_t)(eq - props[i]));
        kv[eq - props[i]] = '\0';
        if (rd_kafka_conf_set(conf, kv, eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            cli_error("property %s: %s", kv, err);
            goto fail;
        }
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

bool cli_progress_wanted(void) { return isatty(STDERR_FILENO); }

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("samsa %s (librdkafka %s)\n", SAMSA_VERSION, rd_kafka_version_str());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command '%s' (samsa --help lists them)", argv[1]);
    return CLI_USAGE;
}
