/*
 * samsa perf: not built yet.
 */
#include "cli/cli.h"

int cli_perf(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("perf: not built yet");
    return CLI_FAIL;
}
