/*
 * samsa cluster: not built yet.
 */
#include "cli/cli.h"

int cli_cluster(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("cluster: not built yet");
    return CLI_FAIL;
}
