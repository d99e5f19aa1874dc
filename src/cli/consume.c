/*
 * samsa consume: not built yet.
 */
#include "cli/cli.h"

int cli_consume(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("consume: not built yet");
    return CLI_FAIL;
}
