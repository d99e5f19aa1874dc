/*
 * samsa groups: not built yet.
 */
#include "cli/cli.h"

int cli_groups(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("groups: not built yet");
    return CLI_FAIL;
}
