/*
 * samsa produce: not built yet.
 */
#include "cli/cli.h"

int cli_produce(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("produce: not built yet");
    return CLI_FAIL;
}
