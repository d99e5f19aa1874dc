/*
 * Option parsing and subcommand dispatch for the admin commands (see
 * adm_args.h). Kafka's long options in both "--name value" and
 * "--name=value" forms, and kcat's short forms (cli_expand_short).
 */
#include "cli/adm_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/out.h"

typedef struct opt_table {
    const adm_opt_t *opts;
    size_t n;
} opt_table_t;

static bool has_opt(const char *name, void *ctx) {
    const opt_table_t *t = ctx;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->opts[i].name, name) == 0) return true;
    return false;
}

/* "-b, " when a short form stands for the option, else "". */
static const char *short_of(const char *name, opt_table_t *t) {
    static char out[8];
    static const char letters[] = "btgpo";
    for (const char *l = letters; *l; l++) {
        char w[3] = {'-', *l, 0};
        const char *e = cli_expand_short(w, has_opt, t);
        if (e && strcmp(e, name) == 0) {
            snprintf(out, sizeof(out), "%s, ", w);
            return out;
        }
    }
    return "";
}

static void print_help(const char *usage, const adm_opt_t *opts, size_t nopts) {
    printf("usage: %s\n\noptions:\n", usage);
    opt_table_t t = {opts, nopts};
    for (size_t i = 0; i < nopts; i++) {
        char left[64];
        const char *sh = short_of(opts[i].name, &t);
        if (opts[i].kind == ADM_FLAG)
            snprintf(left, sizeof(left), "%s%s", sh, opts[i].name);
        else
            snprintf(left, sizeof(left), "%s%s %s", sh, opts[i].name, opts[i].arg);
        printf("  %-30s %s%s\n", left, opts[i].help,
               opts[i].kind == ADM_LIST ? " (repeatable)" : "");
    }
    printf("  %-30s %s\n", "--help", "print this help");
}

static int parse_int(const char *name, const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        cli_error("%s: '%s' is not a number", name, s);
        return CLI_USAGE;
    }
    *out = v;
    return CLI_OK;
}

int adm_parse(int argc, char **argv, const char *usage, adm_opt_t *opts, size_t nopts,
              adm_common_t *c) {
    if (c) {
        c->timeout_ms = 10000;
        c->output = "table";
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(usage, opts, nopts);
            return -1;
        }
        opt_table_t table = {opts, nopts};
        const char *expanded = cli_expand_short(a, has_opt, &table);
        if (expanded) a = expanded;
        if (strncmp(a, "--", 2) != 0) {
            cli_error("unexpected argument '%s' (options start with --)", a);
            return CLI_USAGE;
        }
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        adm_opt_t *o = NULL;
        for (size_t k = 0; k < nopts; k++)
            if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, a, nlen) == 0) o = &opts[k];
        if (!o) {
            cli_error("unknown option '%.*s' (--help lists the options)", (int)nlen, a);
            return CLI_USAGE;
        }
        o->seen = true;
        if (o->kind == ADM_FLAG) {
            if (eq) {
                cli_error("%s takes no value", o->name);
                return CLI_USAGE;
            }
            *(bool *)o->dst = true;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                cli_error("%s needs a value (%s)", o->name, o->arg);
                return CLI_USAGE;
            }
            val = argv[++i];
            /* "--topic --partitions 3": the value is missing, not "--partitions". */
            if (strncmp(val, "--", 2) == 0) {
                cli_error("%s needs a value (%s)", o->name, o->arg);
                return CLI_USAGE;
            }
        }
        if (o->kind == ADM_STR) {
            *(const char **)o->dst = val;
        } else if (o->kind == ADM_INT) {
            if (parse_int(o->name, val, (int64_t *)o->dst) != CLI_OK) return CLI_USAGE;
        } else {
            adm_list_t *l = o->dst;
            if (!l->v) {
                l->v = calloc((size_t)argc, sizeof(*l->v));
                if (!l->v) {
                    cli_error("out of memory");
                    return CLI_FAIL;
                }
            }
            l->v[l->n++] = val;
        }
    }
    if (c) {
        c->bootstrap = cli_bootstrap(c->bootstrap);
        if (c->timeout_ms <= 0 || c->timeout_ms > 3600000) {
            cli_error("--timeout-ms: %lld is out of range (1..3600000)", (long long)c->timeout_ms);
            return CLI_USAGE;
        }
        if (strcmp(c->output, "json") == 0)
            c->json = true;
        else if (strcmp(c->output, "table") != 0) {
            cli_error("--output: '%s' is not one of table, json", c->output);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}

void adm_free(adm_opt_t *opts, size_t nopts) {
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].kind == ADM_LIST) {
            adm_list_t *l = opts[i].dst;
            free(l->v);
            l->v = NULL;
            l->n = 0;
        }
}

bool adm_seen(const adm_opt_t *opts, size_t nopts, const char *name) {
    for (size_t i = 0; i < nopts; i++)
        if (strcmp(opts[i].name, name) == 0) return opts[i].seen;
    return false;
}

int adm_require(const adm_opt_t *opts, size_t nopts, const char *name) {
    if (adm_seen(opts, nopts, name)) return CLI_OK;
    cli_error("missing required option %s", name);
    return CLI_USAGE;
}

int adm_start(adm_cmd_t *m, int argc, char **argv, const char *usage, adm_opt_t *opts, size_t nopts,
              const char *const *required) {
    memset(m, 0, sizeof(*m));
    sm_arena_init(&m->a, 0);
    int ret = adm_parse(argc, argv, usage, opts, nopts, &m->c);
    for (size_t i = 0; ret == CLI_OK && required && required[i]; i++)
        ret = adm_require(opts, nopts, required[i]);
    return ret;
}

int adm_connect(adm_cmd_t *m) {
    int rc = kc_open(&m->kc, m->c.bootstrap, (int)m->c.timeout_ms);
    if (rc == SM_OK) {
        m->connected = true;
        return CLI_OK;
    }
    cli_error("%s", m->kc.err);
    kc_close(&m->kc);
    return rc == SM_ERR_PARSE ? CLI_USAGE : CLI_FAIL;
}

int adm_finish(adm_cmd_t *m, adm_opt_t *opts, size_t nopts, int ret) {
    out_progress_end();
    if (m->connected) kc_close(&m->kc);
    m->connected = false;
    adm_free(opts, nopts);
    sm_arena_free(&m->a);
    return ret < 0 ? CLI_OK : ret;
}

int adm_check_one(adm_cmd_t *m, int call_rc, const char *what, const char *api, int32_t nresults,
                  int16_t code, sm_str_t message) {
    if (call_rc != SM_OK) {
        cli_error("%s: %s", what, m->kc.err);
        return CLI_FAIL;
    }
    if (nresults != 1) {
        cli_error("%s: %s answered %d results, expected 1", what, api, nresults);
        return CLI_FAIL;
    }
    if (code != PROTO_ERR_NONE) {
        out_kafka_error(what, code, message);
        return CLI_FAIL;
    }
    return CLI_OK;
}

int adm_dispatch(int argc, char **argv, const char *what, const adm_sub_t *subs, size_t nsubs) {
    bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    if (argc < 2 || help) {
        FILE *f = help ? stdout : stderr;
        fprintf(f,
                "usage: samsa %s <subcommand> [options]   (samsa %s <subcommand> --help)\n\n"
                "subcommands:\n",
                what, what);
        for (size_t i = 0; i < nsubs; i++)
            fprintf(f, "  %-15s %s\n", subs[i].name, subs[i].summary);
        return help ? CLI_OK : CLI_USAGE;
    }
    for (size_t i = 0; i < nsubs; i++)
        if (strcmp(argv[1], subs[i].name) == 0) return subs[i].run(argc - 1, argv + 1);
    cli_error("%s: unknown subcommand '%s' (samsa %s --help lists them)", what, argv[1], what);
    return CLI_USAGE;
}

int adm_split_commas(const char *s, adm_list_t *out) {
    size_t cap = strlen(s) + 1;
    const char **v = realloc(out->v, (out->n + cap) * sizeof(*v));
    if (!v) return SM_ERR_NOMEM;
    out->v = v;
    const char *start = s;
    int depth = 0;
    for (const char *p = s;; p++) {
        if (*p == '[') depth++;
        if (*p == ']' && depth > 0) depth--;
        if (*p == '\0' || (*p == ',' && depth == 0)) {
            size_t n = (size_t)(p - start);
            if (n > 0) {
                char *piece = malloc(n + 1);
                if (!piece) return SM_ERR_NOMEM;
                memcpy(piece, start, n);
                piece[n] = '\0';
                out->v[out->n++] = piece;
            }
            if (*p == '\0') break;
            start = p + 1;
        }
    }
    return SM_OK;
}

void adm_list_free_strings(adm_list_t *l) {
    for (size_t i = 0; i < l->n; i++)
        free((void *)l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
