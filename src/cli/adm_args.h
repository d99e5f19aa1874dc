/*
 * Option parsing shared by the admin commands (topics, groups, configs,
 * cluster): a table of Kafka-style long options, --help on every level, and
 * usage errors as one line on stderr with exit code 2. Also the dispatch from
 * a command to its subcommands.
 */
#ifndef SAMSA_CLI_ADM_ARGS_H
#define SAMSA_CLI_ADM_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/kclient.h"

enum adm_kind {
    ADM_FLAG, /* bool, no value */
    ADM_STR,  /* const char *, last one wins */
    ADM_INT,  /* int64_t, must be a whole number */
    ADM_LIST, /* adm_list_t, repeatable */
};

typedef struct adm_list {
    const char **v;
    size_t n;
} adm_list_t;

typedef struct adm_opt {
    const char *name; /* "--topic" */
    enum adm_kind kind;
    void *dst;
    const char *arg; /* value placeholder in the usage, e.g. "NAME" */
    const char *help;
    bool seen; /* set by the parser */
} adm_opt_t;

/* Options every admin subcommand takes. */
typedef struct adm_common {
    const char *bootstrap;
    int64_t timeout_ms;
    const char *output; /* "table" or "json" */
    bool json;
} adm_common_t;

#define ADM_COMMON_OPTS(c)                                                                         \
    {"--bootstrap-server",                                                                         \
     ADM_STR,                                                                                      \
     &(c)->bootstrap,                                                                              \
     "HOST:PORT",                                                                                  \
     "broker(s) to connect to, comma-separated (default $SAMSA_BOOTSTRAP or localhost:9092)",      \
     false},                                                                                       \
        {"--timeout-ms",                                                                           \
         ADM_INT,                                                                                  \
         &(c)->timeout_ms,                                                                         \
         "MS",                                                                                     \
         "give up on an unanswered request after MS (default 10000)",                              \
         false},                                                                                   \
    {                                                                                              \
        "--output", ADM_STR, &(c)->output, "table|json", "output format (default table)", false    \
    }

/*
 * Parses argv[1..] (argv[0] is the subcommand's name) against opts. usage is
 * the first line of --help. Returns CLI_OK to go on, CLI_USAGE after printing
 * a usage error, or -1 after printing --help (the caller exits CLI_OK).
 * Validates the common options when c is not NULL (bootstrap: cli_bootstrap).
 */
int adm_parse(int argc, char **argv, const char *usage, adm_opt_t *opts, size_t nopts,
              adm_common_t *c);
/* Frees the lists the parser filled. */
void adm_free(adm_opt_t *opts, size_t nopts);
/* True when the option named name was given. */
bool adm_seen(const adm_opt_t *opts, size_t nopts, const char *name);
/* Prints "missing required option NAME" and returns CLI_USAGE when absent. */
int adm_require(const adm_opt_t *opts, size_t nopts, const char *name);

/* What one admin subcommand holds: its common options, its client and an
 * arena for its requests and responses. */
typedef struct adm_cmd {
    adm_common_t c;
    kc_client_t kc;
    bool connected;
    sm_arena_t a;
} adm_cmd_t;

/* Initialises m and parses argv (see adm_parse); checks the options named in
 * required (NULL-terminated). Returns CLI_OK to go on, else what to finish with. */
int adm_start(adm_cmd_t *m, int argc, char **argv, const char *usage, adm_opt_t *opts, size_t nopts,
              const char *const *required);
/* Connects m's client, printing the failure; returns CLI_OK, CLI_FAIL or CLI_USAGE. */
int adm_connect(adm_cmd_t *m);
/* Releases m and the parsed lists; returns the exit code for ret (help: CLI_OK). */
int adm_finish(adm_cmd_t *m, adm_opt_t *opts, size_t nopts, int ret);

/*
 * Checks the answer to a request about one resource: the call's status, the
 * result count and the Kafka error. Prints "samsa: <what>: ..." and returns
 * CLI_FAIL on any failure, else CLI_OK.
 */
int adm_check_one(adm_cmd_t *m, int call_rc, const char *what, const char *api, int32_t nresults,
                  int16_t code, sm_str_t message);

typedef struct adm_sub {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} adm_sub_t;

/* Runs the subcommand argv[1] of command argv[0]; --help lists them. */
int adm_dispatch(int argc, char **argv, const char *what, const adm_sub_t *subs, size_t nsubs);

/* Splits s at commas, keeping "[a,b]" brackets together; each piece is
 * appended to out as a new heap string (freed with adm_list_free_strings). */
int adm_split_commas(const char *s, adm_list_t *out);
void adm_list_free_strings(adm_list_t *l);

#endif
