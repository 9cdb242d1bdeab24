// SPDX-License-Identifier: MIT
/*
 * statusd's command line: the flags, their defaults, the listen address and
 * the rule that statusd does not open its mutating routes beyond loopback
 * without a token.  Kept apart from main() so the unit tests can reach it.
 */
#include "statusd.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: statusd [options]\n"
    "\n"
    "Serves the farm's jobs, queues, workers and metrics as JSON over HTTP,\n"
    "Server-Sent Events for live progress, and a dashboard page at /.\n"
    "\n"
    "  --listen HOST:PORT       address to listen on (default " EF_SD_LISTEN_DEFAULT
    "; port 0 picks one)\n"
    "  --redis URL              redis://[:password@]host[:port][/db] or unix:///path\n"
    "                           or redis+sentinel://[user:pass@]host:port[,...]/MASTER[/db]\n"
    "                           or redis+cluster://[user:pass@]host:port[,host:port...]\n"
    "                           or over TLS rediss://, rediss+sentinel://, rediss+cluster:// with\n"
    "                           ?cacert=PATH&cert=PATH&key=PATH&sni=NAME (verification always on)\n"
    "                           (default $REDIS_URL, else " EF_DEFAULT_REDIS_URL ")\n"
    "  --token TOKEN            require 'Authorization: Bearer TOKEN' on mutating routes\n"
    "                           (default $STATUSD_TOKEN); needed to listen beyond loopback\n"
    "  --read-only              refuse every mutating route (POST) instead, and skip\n"
    "                           marking abandoned enqueues failed\n"
    "  --port-file FILE         write the bound port to FILE once listening\n"
    "  --max-connections N      connections served at once; more get 503 (default 1024)\n"
    "  --idle-timeout-ms MS     close idle keep-alive connections and stalled writers (default "
    "60000)\n"
    "  --header-timeout-ms MS   a request must arrive within MS of its first byte (default 10000)\n"
    "  --max-body BYTES         largest request body (default 1048576)\n"
    "  --log-format text|json   log line format (default text)\n"
    "  --log-level LEVEL        debug, info, warn, error (default info)\n"
    "  --help                   this text\n"
    "  --version                the version\n";

const char *ef_sd_usage(void) { return usage; }

int ef_sd_addr_is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *a = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        /* ::ffff:127.x.y.z */
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return a[12] == 127;
    }
    return 0;
}

int ef_sd_listen_parse(const char *s, struct sockaddr_storage *out, char *err) {
    char host[128];
    const char *colon, *port_s;
    long port;
    char *end;
    memset(out, 0, sizeof *out);
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host) {
            ef_seterr(err, "bad listen address '%s' (want [V6ADDR]:PORT)", s);
            return -1;
        }
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        port_s = rb + 2;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host) {
            ef_seterr(err, "bad listen address '%s' (want HOST:PORT)", s);
            return -1;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port_s = colon + 1;
    }
    port = strtol(port_s, &end, 10);
    if (!*port_s || *end || port < 0 || port > 65535) {
        ef_seterr(err, "bad port in listen address '%s'", s);
        return -1;
    }
    if (strcmp(host, "localhost") == 0 || host[0] == '\0')
        snprintf(host, sizeof host, "%s", "127.0.0.1");
    if (strchr(host, ':')) {
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) != 0) {
            ef_seterr(err, "bad IPv6 address '%s'", host);
            return -1;
        }
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) != 0 ||
               strspn(host, "0123456789.") != strlen(host)) {
        ef_seterr(err, "bad IPv4 address '%s' (use a numeric address or localhost)", host);
        return -1;
    }
    return 0;
}

static int parse_int(const char *flag, const char *v, long min, long max, long *out, char *err) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < min || x > max) {
        ef_seterr(err, "%s wants a number from %ld to %ld, got '%s'", flag, min, max, v);
        return -1;
    }
    *out = x;
    return 0;
}

int ef_sd_opts_parse(ef_sd_opts_t *o, int argc, char **argv, char *err) {
    const char *listen = EF_SD_LISTEN_DEFAULT;
    const char *env_token = getenv("STATUSD_TOKEN");
    long x;
    memset(o, 0, sizeof *o);
    o->max_connections = EF_SD_MAX_CONNECTIONS_DEFAULT;
    o->idle_timeout_ms = EF_SD_IDLE_TIMEOUT_MS_DEFAULT;
    o->header_timeout_ms = EF_SD_HEADER_TIMEOUT_MS_DEFAULT;
    o->max_body = EF_SD_HTTP_MAX_BODY;
    o->log_level = EF_LOG_INFO;
    o->log_format = EF_LOG_TEXT;
    if (env_token && *env_token)
        o->token = env_token;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[64];
        const char *eq = strchr(a, '=');
        /* --flag=value and --flag value */
        if (strncmp(a, "--", 2) == 0 && eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            a = name;
            v = eq + 1;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return EF_SD_OPTS_HELP;
        if (strcmp(a, "--version") == 0)
            return EF_SD_OPTS_VERSION;
        if (strcmp(a, "--read-only") == 0) {
            o->read_only = 1;
            continue;
        }
        static const char *const with_value[] = {"--listen",
                                                 "--redis",
                                                 "--token",
                                                 "--port-file",
                                                 "--max-connections",
                                                 "--idle-timeout-ms",
                                                 "--header-timeout-ms",
                                                 "--max-body",
                                                 "--log-format",
                                                 "--log-level",
                                                 NULL};
        int known = 0;
        for (int k = 0; with_value[k]; k++)
            if (strcmp(a, with_value[k]) == 0)
                known = 1;
        if (!known) {
            ef_seterr(err, "unknown option '%s' (see --help)", argv[i]);
            return -1;
        }
        if (!v) {
            if (i + 1 >= argc) {
                ef_seterr(err, "%s needs a value", a);
                return -1;
            }
            v = argv[++i];
        }
        if (strcmp(a, "--listen") == 0) {
            listen = v;
        } else if (strcmp(a, "--redis") == 0) {
            o->redis_url = v;
        } else if (strcmp(a, "--token") == 0) {
            o->token = *v ? v : NULL;
        } else if (strcmp(a, "--port-file") == 0) {
            o->port_file = v;
        } else if (strcmp(a, "--max-connections") == 0) {
            if (parse_int(a, v, 1, 1000000, &x, err) != 0)
                return -1;
            o->max_connections = (int)x;
        } else if (strcmp(a, "--idle-timeout-ms") == 0) {
            if (parse_int(a, v, 10, 86400000, &x, err) != 0)
                return -1;
            o->idle_timeout_ms = (int)x;
        } else if (strcmp(a, "--header-timeout-ms") == 0) {
            if (parse_int(a, v, 10, 3600000, &x, err) != 0)
                return -1;
            o->header_timeout_ms = (int)x;
        } else if (strcmp(a, "--max-body") == 0) {
            if (parse_int(a, v, 0, 1L << 30, &x, err) != 0)
                return -1;
            o->max_body = (size_t)x;
        } else if (strcmp(a, "--log-format") == 0) {
            if (ef_log_format_parse(v, &o->log_format) != 0) {
                ef_seterr(err, "--log-format wants text or json, got '%s'", v);
                return -1;
            }
        } else if (strcmp(a, "--log-level") == 0) {
            if (ef_log_level_parse(v, &o->log_level) != 0) {
                ef_seterr(err, "--log-level wants debug, info, warn, error or off, got '%s'", v);
                return -1;
            }
        }
    }
    if (ef_sd_listen_parse(listen, &o->listen, err) != 0)
        return -1;
    snprintf(o->listen_text, sizeof o->listen_text, "%s", listen);
    o->redis_url = ef_redis_url_default(o->redis_url);
    return EF_SD_OPTS_RUN;
}

int ef_sd_opts_check(const ef_sd_opts_t *o, char *err) {
    if (!ef_sd_addr_is_loopback((const struct sockaddr *)&o->listen) && !o->token &&
        !o->read_only) {
        ef_seterr(err,
                  "refusing to listen on %s without a token: its mutating routes would be open "
                  "to the network (set --token or $STATUSD_TOKEN, or use --read-only)",
                  o->listen_text);
        return -1;
    }
    return 0;
}
