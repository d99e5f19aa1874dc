/*
 * samsa: the command-line tool for operators, in the spirit of Kafka's bin/
 * scripts, as one binary with subcommands. This file dispatches to them and
 * holds what they share (errors, librdkafka configuration).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "version.h"

static int cli_help(int argc, char **argv);
static int cli_completion(int argc, char **argv);
static void usage(FILE *f);

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
    {"help", cli_help, "samsa help COMMAND [SUBCOMMAND]: the options of a command"},
    {"completion", cli_completion, "samsa completion bash|zsh: a shell completion script"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Completion asks samsa itself: commands from samsa --help, subcommands from
 * the "subcommands:" or "tests:" section of samsa CMD --help, options from
 * samsa CMD [SUB] --help, so it always matches the option tables. */
static const char bash_completion[] =
    "_samsa() {\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} words='' sub='' i\n"
    "    local cmd=${COMP_WORDS[1]}\n"
    "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
    "        words=$(samsa --help 2>/dev/null | awk '/^commands:/{f=1;next} f&&/^  [a-z]/{print "
    "$1}')\n"
    "    else\n"
    "        local subs\n"
    "        subs=$(samsa \"$cmd\" --help 2>/dev/null | awk '/^(subcommands|tests):/{f=1;next} "
    "f&&/^  [a-z]/{printf \"%s \", $1}')\n"
    "        for ((i = 2; i < COMP_CWORD; i++)); do\n"
    "            case \" $subs \" in *\" ${COMP_WORDS[i]} \"*) sub=${COMP_WORDS[i]}; break;; esac\n"
    "        done\n"
    "        if [ -n \"$subs\" ] && [ -z \"$sub\" ] && [[ $cur != -* ]]; then\n"
    "            words=$subs\n"
    "        elif [ \"$cmd\" = help ] || [ \"$cmd\" = completion ]; then\n"
    "            words=$( [ \"$cmd\" = help ] && samsa --help 2>/dev/null | awk "
    "'/^commands:/{f=1;next} "
    "f&&/^  [a-z]/{print $1}' || echo 'bash zsh')\n"
    "        else\n"
    "            words=$(samsa \"$cmd\" $sub --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | "
    "sort -u)\n"
    "        fi\n"
    "    fi\n"
    "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
    "}\n"
    "complete -F _samsa samsa\n";

static int cli_completion(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "bash") && strcmp(argv[1], "zsh"))) {
        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("usage: samsa completion bash|zsh\n\n"
                   "Prints a completion script: source <(samsa completion bash), or for zsh\n"
                   "source <(samsa completion zsh) (in ~/.bashrc or ~/.zshrc).\n");
            return CLI_OK;
        }
        cli_error("usage: samsa completion bash|zsh");
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "zsh") == 0)
        printf("#compdef samsa\nautoload -U +X bashcompinit && bashcompinit\n");
    fputs(bash_completion, stdout);
    return CLI_OK;
}

static int cli_help(int argc, char **argv) {
    if (argc < 2) {
        usage(stdout);
        return CLI_OK;
    }
    if (argc > 3) {
        cli_error("usage: samsa help COMMAND [SUBCOMMAND]");
        return CLI_USAGE;
    }
    char *args[4] = {argv[1], argc == 3 ? argv[2] : "--help", argc == 3 ? "--help" : NULL, NULL};
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0 && commands[i].run != cli_help)
            return commands[i].run(argc, args);
    cli_error("help: unknown command '%s' (samsa --help lists them)", argv[1]);
    return CLI_USAGE;
}

static void usage(FILE *f) {
    fprintf(f, "usage: samsa <command> [options]   (samsa <command> --help for its "
               "options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nshort forms (as kcat): -b --bootstrap-server, -t --topic, -g --group,\n"
               "  -p --partition (or --partitions), -o --offset (or --output)\n"
               "bootstrap servers default to $SAMSA_BOOTSTRAP, else " CLI_DEFAULT_BOOTSTRAP "\n");
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

const char *cli_bootstrap(const char *given) {
    if (given) return given;
    const char *env = getenv("SAMSA_BOOTSTRAP");
    return env && *env ? env : CLI_DEFAULT_BOOTSTRAP;
}

const char *cli_expand_short(const char *w, bool (*known)(const char *name, void *ctx), void *ctx) {
    static const struct {
        char letter;
        const char *names[2];
    } shorts[] = {
        {'b', {"--bootstrap-server", NULL}},
        {'t', {"--topic", NULL}},
        {'g', {"--group", NULL}},
        {'p', {"--partition", "--partitions"}},
        {'o', {"--offset", "--output"}},
    };
    if (w[0] != '-' || !w[1] || w[1] == '-' || w[2]) return NULL;
    for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        if (shorts[i].letter != w[1]) continue;
        for (int k = 0; k < 2 && shorts[i].names[k]; k++)
            if (known(shorts[i].names[k], ctx)) return shorts[i].names[k];
    }
    return NULL;
}

bool cli_progress_wanted(void) { return isatty(STDERR_FILENO); }

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
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
