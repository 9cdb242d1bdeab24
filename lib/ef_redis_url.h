// SPDX-License-Identifier: MIT
/*
 * Parsing of the --redis URL every program takes:
 *   redis://[[user]:password@]host[:port][/db]
 *   unix:///path/to/socket[?db=N&password=P&user=U]
 *   redis+sentinel://[user:pass@]host:port[,host:port...]/MASTER[/db]
 *                    [?sentinel_user=U&sentinel_password=P]
 *   redis+cluster://[user:pass@]host:port[,host:port...]   (seed nodes)
 *   rediss://, rediss+sentinel://, rediss+cluster://: the same over TLS,
 *                    [?cacert=PATH&cert=PATH&key=PATH&sni=NAME]
 * Default: $REDIS_URL, else redis://127.0.0.1:6379/0.  The password never
 * appears in a log line: use ef_redis_url_redacted() to print a URL.
 *
 * Credentials: the userinfo always belongs to the data nodes (the master a
 * Sentinel set names, every Cluster node).  Sentinels are asked without
 * AUTH unless the query gives sentinel_password (and sentinel_user), so the
 * two may differ.  Sentinel hosts default to port 26379, Cluster seeds to
 * 6379; at most EF_REDIS_URL_MAX_HOSTS of them.
 *
 * TLS (the extra s of the scheme) covers every connection the URL leads to:
 * the node, each sentinel, the master a sentinel names, each cluster node.
 * Its query parameters are redis-cli's flags: cacert (the CA file; else the
 * system store), cert and key (a client certificate, both or neither), sni
 * (the name to send and verify; else the host connected to).  They mix with
 * the sentinel parameters in one query; on a plain URL they are refused, so
 * a forgotten s is never a silent plain-text connection.  unix:// has no
 * TLS form.  Verification cannot be turned off.
 *
 * A redis+cluster:// URL makes ef_redis_create() a slot router
 * (ef_cluster_client.h) and ef_redis_sync_connect() a client that follows
 * MOVED and ASK.
 */
#ifndef EF_REDIS_URL_H
#define EF_REDIS_URL_H

#include "ef_common.h"

#define EF_REDIS_URL_MAX_HOSTS 16
#define EF_REDIS_HOST_LEN 256
#define EF_REDIS_MASTER_MAX_LEN 127 /* bytes of a Sentinel master name */
#define EF_REDIS_SENTINEL_PORT 26379

typedef enum {
    EF_REDIS_URL_TCP = 0, /* redis:// one node */
    EF_REDIS_URL_UNIX,    /* unix:// one node */
    EF_REDIS_URL_SENTINEL,
    EF_REDIS_URL_CLUSTER,
} ef_redis_url_kind_t;

typedef struct {
    char host[EF_REDIS_HOST_LEN];
    int port;
} ef_redis_addr_t;

typedef struct {
    ef_redis_url_kind_t kind;
    char host[EF_REDIS_HOST_LEN]; /* TCP: the node; Sentinel, Cluster: hosts[0] */
    int port;
    char path[256]; /* unix socket path, empty for TCP */
    char user[128]; /* ACL user of the data nodes, empty for default */
    char password[256];
    int db;
    ef_redis_addr_t hosts[EF_REDIS_URL_MAX_HOSTS]; /* sentinels or cluster seeds */
    int nhosts;
    char master[EF_REDIS_MASTER_MAX_LEN + 1]; /* Sentinel: the master's name */
    char sentinel_user[128];
    char sentinel_password[256];
    int tls;                         /* rediss://, rediss+sentinel://, rediss+cluster:// */
    char tls_cacert[256];            /* PEM CA file; empty: the system store */
    char tls_cert[256];              /* PEM client certificate (chain); empty: none */
    char tls_key[256];               /* PEM key of tls_cert */
    char tls_sni[EF_REDIS_HOST_LEN]; /* name to verify; empty: the host */
} ef_redis_url_t;

/* Parses url into out; on failure returns -1 and says why in err. */
int ef_redis_url_parse(const char *url, ef_redis_url_t *out, char *err);
/* 0 when this build's programs can use u; -1 with the reason in err.
 * Every form parsed is supported now; kept for the programs' checks. */
int ef_redis_url_supported(const ef_redis_url_t *u, char *err);
/* The URL to use: the flag's value, else $REDIS_URL, else the default. */
const char *ef_redis_url_default(const char *flag_value);
/* Writes a printable form without the passwords. */
void ef_redis_url_redacted(const ef_redis_url_t *u, char *buf, size_t len);

#endif
