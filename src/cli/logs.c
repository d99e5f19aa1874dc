/*
 * samsa logs cleaner: the log cleaner's state of each compacted partition in a
 * broker's log directory (dirty ratio, clean point, last cleaning), read from
 * the samsa-cleaner-state file the broker rewrites with its checkpoints
 * (log.flush.offset.checkpoint.interval.ms). Local: it reads files, not the
 * Kafka protocol, which has no request for cleaner state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/out.h"

static void logs_usage(FILE *f) {
    fprintf(f, "usage: samsa logs cleaner --log-dir DIR [--topic TOPIC]\n\n"
               "The log cleaner's state of each compacted partition in log directory DIR,\n"
               "as the broker last wrote it (with its checkpoints, every\n"
               "log.flush.offset.checkpoint.interval.ms, and at shutdown).\n");
}

int cli_logs(int argc, char **argv) {
    const char *dir = NULL, *topic = NULL;
    if (argc < 2 || strcmp(argv[1], "cleaner") != 0) {
        logs_usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? CLI_OK : CLI_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--log-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            topic = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            logs_usage(stdout);
            return CLI_OK;
        } else {
            cli_error("logs cleaner: unknown option '%s'", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!dir) {
        cli_error("logs cleaner: --log-dir is required");
        return CLI_USAGE;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/samsa-cleaner-state", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("%s: no cleaner state (no compacted partition, or the broker has not "
                  "checkpointed yet)",
                  path);
        return CLI_FAIL;
    }
    static const char *const hdr[] = {"TOPIC",       "PARTITION",   "DIRTY-RATIO", "CLEAN-BYTES",
                                      "DIRTY-BYTES", "CLEAN-POINT", "RUNS",        "LAST-RUN",
                                      "LAST-MS",     "REMOVED",     "READ",        "WRITTEN"};
    out_table_t t;
    out_table_init(&t, sizeof(hdr) / sizeof(hdr[0]), hdr);
    char line[1024];
    long long written = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "# written_ms=%lld", &written) == 1 || line[0] == '#') continue;
        char tp[256];
        int part;
        long long cp, fu, cb, db, runs, last, dur, rd, wr, rm;
        double ratio;
        if (sscanf(line, "%255s %d %lld %lld %lld %lld %lf %lld %lld %lld %lld %lld %lld", tp,
                   &part, &cp, &fu, &cb, &db, &ratio, &runs, &last, &dur, &rd, &wr, &rm) != 13)
            continue;
        if (topic && strcmp(topic, tp) != 0) continue;
        char when[64] = "never";
        if (last > 0) {
            time_t s = (time_t)(last / 1000);
            struct tm tm;
            gmtime_r(&s, &tm);
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        out_table_cell(&t, "%s", tp);
        out_table_cell(&t, "%d", part);
        out_table_cell(&t, "%.3f", ratio);
        out_table_cell(&t, "%lld", cb);
        out_table_cell(&t, "%lld", db);
        out_table_cell(&t, "%lld", cp);
        out_table_cell(&t, "%lld", runs);
        out_table_cell(&t, "%s", when);
        out_table_cell(&t, "%lld", dur);
        out_table_cell(&t, "%lld", rm);
        out_table_cell(&t, "%lld", rd);
        out_table_cell(&t, "%lld", wr);
    }
    fclose(f);
    out_table_print(&t, stdout);
    if (written > 0) {
        time_t s = (time_t)(written / 1000);
        struct tm tm;
        char when[64];
        gmtime_r(&s, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("(as of %s)\n", when);
    }
    out_table_free(&t);
    return CLI_OK;
}
