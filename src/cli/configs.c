/*
 * samsa configs: not built yet.
 */
#include "cli/cli.h"

int cli_configs(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("configs: not built yet");
    return CLI_FAIL;
}
