// SPDX-License-Identifier: MIT
/*
 * Parsing of the --redis URL every program takes:
 *   redis://[[user]:password@]host[:port][/db]
 *   unix:///path/to/socket[?db=N&password=P&user=U]
 * Default: $REDIS_URL, else redis://127.0.0.1:6379/0.  The password never
 * appears in a log line: use ef_redis_url_redacted() to print a URL.
 */
#ifndef EF_REDIS_URL_H
#define EF_REDIS_URL_H

#include "ef_common.h"

typedef struct {
    char host[256];  /* empty for unix sockets */
    int port;
    char path[256];  /* unix socket path, empty for TCP */
    char user[128];  /* ACL user, empty for the default user */
    char password[256];
    int db;
} ef_redis_url_t;

/* Parses url into out; on failure returns -1 and says why in err. */
int ef_redis_url_parse(const char *url, ef_redis_url_t *out, char *err);
/* The URL to use: the flag's value, else $REDIS_URL, else the default. */
const char *ef_redis_url_default(const char *flag_value);
/* Writes a printable form without the password. */
void ef_redis_url_redacted(const ef_redis_url_t *u, char *buf, size_t len);

#endif
