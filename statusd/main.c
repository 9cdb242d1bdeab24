// SPDX-License-Identifier: MIT
/* statusd: placeholder entry point until its issue lands; answers --help/--version. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("statusd %s\n", EF_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: statusd [--redis URL]\n");
            return 0;
        }
    }
    fprintf(stderr, "statusd: not implemented yet\n");
    return 2;
}
