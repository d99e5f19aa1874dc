/*
 * samsa-server [server.properties] [--override key=value]... [--format [--standalone]]
 * Like kafka-server-start.sh (with --format, like kafka-storage format). With no arguments: a single node on
 * localhost:9092 with data in ./data. Bad configuration: one line naming the
 * key and the problem, exit code 2. SIGTERM/SIGINT: clean shutdown.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "broker/broker.h"
#include "version.h"

static void usage(FILE *f) {
    fprintf(f, "usage: samsa-server [server.properties] [--override key=value]...\n"
               "       samsa-server [server.properties] [--override key=value]... --format "
               "[--standalone]\n"
               "       samsa-server --version\n");
}

int main(int argc, char **argv) {
    sm_config_t *cfg = sm_config_new();
    char err[512];
    bool format = false, standalone = false;
    if (!cfg) return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0 || strcmp(argv[i], "--standalone") == 0) {
            format = true;
            standalone |= strcmp(argv[i], "--standalone") == 0;
            continue;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("samsa-server %s\n", SAMSA_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--override") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "samsa-server: --override needs key=value\n");
                return 2;
            }
            if (sm_config_set_override(cfg, argv[++i], err, sizeof(err))) {
                fprintf(stderr, "%s\n", err);
                return 2;
            }
            continue;
        }
        if (strncmp(argv[i], "--override=", 11) == 0) {
            if (sm_config_set_override(cfg, argv[i] + 11, err, sizeof(err))) {
                fprintf(stderr, "%s\n", err);
                return 2;
            }
            continue;
        }
        if (argv[i][0] == '-') {
            fprintf(stderr, "samsa-server: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (i != 1) {
            fprintf(stderr, "samsa-server: the properties file must come first (got %s)\n", argv[i]);
            return 2;
        }
        if (sm_config_load_file(cfg, argv[i], err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
    }
    int lvl = sm_log_level_parse(sm_config_str(cfg, "samsa.log.level"));
    if (lvl >= 0) sm_log_set_level(lvl);
    if (sm_config_check(cfg, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    sm_config_warn_inert(cfg);
    if (format) {
        int frc = broker_format(cfg, standalone);
        sm_config_free(cfg);
        return frc == SM_ERR_PARSE ? 2 : frc ? 1 : 0;
    }

    /* Signals are taken synchronously by the main thread; other threads never
     * see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    static broker_t broker;
    int rc = broker_start(&broker, cfg);
    if (rc) {
        if (rc == SM_ERR_PARSE)
            fprintf(stderr, "samsa-server: could not start: bad configuration (see above)\n");
        else
            fprintf(stderr, "samsa-server: could not start (the error above says why)\n");
        return rc == SM_ERR_PARSE ? 2 : 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    sm_info("server", "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    broker_stop(&broker);
    sm_info("server", "stopped cleanly");
    sm_config_free(cfg);
    return 0;
}
