/*
 * samsa topics: not built yet.
 */
#include "cli/cli.h"

int cli_topics(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("topics: not built yet");
    return CLI_FAIL;
}
