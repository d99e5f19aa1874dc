/*
 * samsa: the command-line tool. Subcommands arrive with the admin/CLI work; for
 * now it prints its version.
 */
#include <stdio.h>

#include "version.h"

int main(void) {
    printf("samsa %s\n", SAMSA_VERSION);
    return 0;
}
