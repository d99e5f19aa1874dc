/*
 * samsa-server entry point. The broker itself arrives with the broker work;
 * for now this prints the version so the build and `make run` have a target.
 */
#include <stdio.h>
#include <string.h>

#include "version.h"

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") != 0) {
        fprintf(stderr, "samsa-server: the broker is not built yet (unexpected argument '%s')\n",
                argv[1]);
        return 2;
    }
    printf("samsa-server %s\n", SAMSA_VERSION);
    return 0;
}
