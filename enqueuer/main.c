// SPDX-License-Identifier: MIT
/* enqueuer: placeholder entry point until its issue lands; answers --help/--version. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("enqueuer %s\n", EF_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: enqueuer [--redis URL]\n");
            return 0;
        }
    }
    fprintf(stderr, "enqueuer: not implemented yet\n");
    return 2;
}
