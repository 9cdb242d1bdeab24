// SPDX-License-Identifier: MIT
/*
 * The --redis URL parser (see ef_redis_url.h).  Percent-escapes in the user
 * and password are decoded so passwords with '@' or ':' can be written.
 */
#include "ef_redis_url.h"

#include "ef_text.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies s[0..n) into dst (cap bytes) decoding %XX; -1 when too long or bad. */
static int pct_copy(char *dst, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= n)
                return -1;
            h = ef_hexval(s[i + 1]);
            l = ef_hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

static int parse_db(const char *s, size_t n, int *db) {
    int64_t v;
    if (ef_parse_i64(s, n, &v) != 0 || v > 100000)
        return -1;
    *db = (int)v;
    return 0;
}

static int parse_userinfo(const char *s, size_t n, ef_redis_url_t *out, char *err) {
    const char *colon = memchr(s, ':', n);
    if (!colon) {
        /* redis://password@host is how many tools spell a bare password */
        if (pct_copy(out->password, sizeof out->password, s, n) != 0)
            goto bad;
        return 0;
    }
    if (pct_copy(out->user, sizeof out->user, s, (size_t)(colon - s)) != 0 ||
        pct_copy(out->password, sizeof out->password, colon + 1, n - (size_t)(colon - s) - 1) != 0)
        goto bad;
    return 0;
bad:
    ef_seterr(err, "bad user or password in redis URL");
    return -1;
}

static int parse_unix(const char *rest, ef_redis_url_t *out, char *err) {
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t)(q - rest) : strlen(rest);
    if (plen == 0 || rest[0] != '/') {
        ef_seterr(err, "unix URL needs an absolute socket path (unix:///path)");
        return -1;
    }
    if (plen >= sizeof out->path) {
        ef_seterr(err, "unix socket path too long");
        return -1;
    }
    memcpy(out->path, rest, plen);
    out->path[plen] = '\0';
    while (q && *q) {
        const char *p = q + 1, *amp = strchr(p, '&'), *eq;
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        eq = memchr(p, '=', len);
        if (!eq) {
            ef_seterr(err, "bad query parameter in unix URL");
            return -1;
        }
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        if (klen == 2 && memcmp(p, "db", 2) == 0) {
            if (parse_db(eq + 1, vlen, &out->db) != 0) {
                ef_seterr(err, "bad db number in redis URL");
                return -1;
            }
        } else if (klen == 8 && memcmp(p, "password", 8) == 0) {
            if (pct_copy(out->password, sizeof out->password, eq + 1, vlen) != 0) {
                ef_seterr(err, "bad password in redis URL");
                return -1;
            }
        } else if (klen == 4 && memcmp(p, "user", 4) == 0) {
            if (pct_copy(out->user, sizeof out->user, eq + 1, vlen) != 0) {
                ef_seterr(err, "bad user in redis URL");
                return -1;
            }
        } else {
            ef_seterr(err, "unknown parameter '%.*s' in unix URL", (int)klen, p);
            return -1;
        }
        q = amp;
    }
    return 0;
}

/* Parses one host[:port] (or [v6]:port) of n bytes into a; an empty host
 * is 127.0.0.1 when allow_empty, an error otherwise. */
static int parse_addr(const char *s, size_t n, ef_redis_addr_t *a, int defport, int allow_empty,
                      const char *what, char *err) {
    const char *end = s + n, *colon;
    size_t hl;
    a->port = defport;
    if (n > 0 && *s == '[') { /* [::1]:6379 */
        const char *rb = memchr(s, ']', n);
        if (!rb || rb == s + 1 || (size_t)(rb - s - 1) >= sizeof a->host) {
            ef_seterr(err, "bad IPv6 host '%.*s' in %s", (int)(n > 60 ? 60 : n), s, what);
            return -1;
        }
        memcpy(a->host, s + 1, (size_t)(rb - s - 1));
        a->host[rb - s - 1] = '\0';
        if (rb + 1 < end && rb[1] != ':') {
            ef_seterr(err, "bad IPv6 host '%.*s' in %s", (int)(n > 60 ? 60 : n), s, what);
            return -1;
        }
        colon = rb + 1 < end ? rb + 1 : NULL;
    } else {
        colon = memchr(s, ':', n);
        hl = (size_t)((colon ? colon : end) - s);
        if (hl >= sizeof a->host) {
            ef_seterr(err, "host too long in %s", what);
            return -1;
        }
        memcpy(a->host, s, hl);
        a->host[hl] = '\0';
        for (size_t i = 0; i < hl; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c <= ' ' || c == '@' || c == '/' || c == '?' || c == ',' || c >= 0x7f) {
                ef_seterr(err, "bad character in host '%.*s' in %s", (int)(hl > 60 ? 60 : hl), s,
                          what);
                return -1;
            }
        }
    }
    if (!a->host[0]) {
        if (!allow_empty) {
            ef_seterr(err, "empty host in %s (write host:port)", what);
            return -1;
        }
        snprintf(a->host, sizeof a->host, "127.0.0.1");
    }
    if (colon) {
        int64_t p;
        if (ef_parse_i64(colon + 1, (size_t)(end - colon - 1), &p) != 0 || p < 1 || p > 65535) {
            ef_seterr(err, "bad port '%.*s' in %s (1 to 65535)",
                      (int)(end - colon - 1 > 20 ? 20 : end - colon - 1), colon + 1, what);
            return -1;
        }
        a->port = (int)p;
    }
    return 0;
}

/* Parses "h1:p1,h2:p2,..." (n bytes) into out->hosts. */
static int parse_hosts(const char *s, size_t n, ef_redis_url_t *out, int defport, const char *what,
                       char *err) {
    const char *end = s + n;
    out->nhosts = 0;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *stop = comma ? comma : end;
        if (out->nhosts == EF_REDIS_URL_MAX_HOSTS) {
            ef_seterr(err, "too many hosts in %s (at most %d)", what, EF_REDIS_URL_MAX_HOSTS);
            return -1;
        }
        if (parse_addr(s, (size_t)(stop - s), &out->hosts[out->nhosts], defport, 0, what, err) != 0)
            return -1;
        out->nhosts++;
        if (!comma)
            break;
        s = comma + 1;
    }
    memcpy(out->host, out->hosts[0].host, sizeof out->host);
    out->port = out->hosts[0].port;
    return 0;
}

/* The query parameters of the TCP forms: the sentinels' credentials on a
 * Sentinel URL, the TLS options on a TLS URL (one table, one loop). */
static const struct {
    const char *name;
    size_t off, cap;
    int tls; /* 1: TLS URLs only; 0: Sentinel URLs only */
} url_params[] = {
    {"sentinel_user", offsetof(ef_redis_url_t, sentinel_user), 128, 0},
    {"sentinel_password", offsetof(ef_redis_url_t, sentinel_password), 256, 0},
    {"cacert", offsetof(ef_redis_url_t, tls_cacert), 256, 1},
    {"cert", offsetof(ef_redis_url_t, tls_cert), 256, 1},
    {"key", offsetof(ef_redis_url_t, tls_key), 256, 1},
    {"sni", offsetof(ef_redis_url_t, tls_sni), EF_REDIS_HOST_LEN, 1},
};

static int parse_query(const char *q, ef_redis_url_t *out, const char *what, char *err) {
    int sentinel = out->kind == EF_REDIS_URL_SENTINEL;
    while (q && *q) {
        const char *p = q + 1, *amp = strchr(p, '&'), *eq;
        size_t len = amp ? (size_t)(amp - p) : strlen(p), klen, vlen, i;
        eq = memchr(p, '=', len);
        if (!eq) {
            ef_seterr(err, "bad query parameter '%.*s' in %s (want name=value)",
                      (int)(len > 40 ? 40 : len), p, what);
            return -1;
        }
        klen = (size_t)(eq - p);
        vlen = len - klen - 1;
        for (i = 0; i < EF_ARRAY_LEN(url_params); i++)
            if (strlen(url_params[i].name) == klen && memcmp(p, url_params[i].name, klen) == 0)
                break;
        if (i < EF_ARRAY_LEN(url_params) && url_params[i].tls && !out->tls) {
            ef_seterr(err,
                      "%s= needs a TLS URL (rediss://, rediss+sentinel://, "
                      "rediss+cluster://)",
                      url_params[i].name);
            return -1;
        }
        if (i == EF_ARRAY_LEN(url_params) || (!url_params[i].tls && !sentinel)) {
            if (!sentinel && !out->tls)
                ef_seterr(err, "%s takes no query parameters (got '%.40s')", what, q);
            else
                ef_seterr(err, "unknown parameter '%.*s' in %s (known: %s%s)",
                          (int)(klen > 40 ? 40 : klen), p, what,
                          sentinel ? "sentinel_user, sentinel_password" : "",
                          out->tls
                              ? (sentinel ? ", cacert, cert, key, sni" : "cacert, cert, key, sni")
                              : "");
            return -1;
        }
        if (vlen == 0 ||
            pct_copy((char *)out + url_params[i].off, url_params[i].cap, eq + 1, vlen) != 0) {
            ef_seterr(err, "bad %s in %s", url_params[i].name, what);
            return -1;
        }
        q = amp;
    }
    if (out->sentinel_user[0] && !out->sentinel_password[0]) {
        ef_seterr(err, "sentinel_user needs sentinel_password in sentinel URL");
        return -1;
    }
    if (!out->tls_cert[0] != !out->tls_key[0]) {
        ef_seterr(err, "cert= and key= go together in %s (the client certificate and its key)",
                  what);
        return -1;
    }
    return 0;
}

/* "/MASTER[/db]" of a redis+sentinel:// URL (path without the query). */
static int parse_sentinel_path(const char *s, size_t n, ef_redis_url_t *out, char *err) {
    const char *slash;
    size_t ml;
    if (n < 2 || s[0] != '/') {
        ef_seterr(err, "sentinel URL needs the master's name: "
                       "redis+sentinel://host:port[,host:port...]/MASTER[/db]");
        return -1;
    }
    s++, n--;
    slash = memchr(s, '/', n);
    ml = slash ? (size_t)(slash - s) : n;
    if (ml == 0 || ml > EF_REDIS_MASTER_MAX_LEN) {
        ef_seterr(err, "sentinel master name must be 1 to %d bytes", EF_REDIS_MASTER_MAX_LEN);
        return -1;
    }
    for (size_t i = 0; i < ml; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            ef_seterr(err,
                      "bad character in sentinel master name '%.*s' (allowed: A-Z a-z 0-9 _ . -)",
                      (int)(ml > 60 ? 60 : ml), s);
            return -1;
        }
    }
    memcpy(out->master, s, ml);
    out->master[ml] = '\0';
    if (slash && (size_t)(slash + 1 - s) < n &&
        parse_db(slash + 1, n - (size_t)(slash + 1 - s), &out->db) != 0) {
        ef_seterr(err, "bad db number '%.*s' in sentinel URL", (int)(n - (size_t)(slash + 1 - s)),
                  slash + 1);
        return -1;
    }
    return 0;
}

/* Everything after "scheme://" of the TCP forms; kind is already set. */
static int parse_tcp(const char *rest, ef_redis_url_t *out, char *err) {
    const char *what = out->kind == EF_REDIS_URL_SENTINEL  ? "sentinel URL"
                       : out->kind == EF_REDIS_URL_CLUSTER ? "cluster URL"
                                                           : "redis URL";
    const char *query = strchr(rest, '?');
    const char *end = query ? query : rest + strlen(rest);
    const char *slash = memchr(rest, '/', (size_t)(end - rest));
    const char *hostend = slash ? slash : end;
    const char *at = memrchr(rest, '@', (size_t)(hostend - rest));
    ef_redis_addr_t one;

    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), out, err) != 0)
            return -1;
        rest = at + 1;
    }
    if (parse_query(query, out, what, err) != 0)
        return -1;
    switch (out->kind) {
    case EF_REDIS_URL_SENTINEL:
        if (parse_hosts(rest, (size_t)(hostend - rest), out, EF_REDIS_SENTINEL_PORT, what, err) !=
                0 ||
            parse_sentinel_path(hostend, (size_t)(end - hostend), out, err) != 0)
            return -1;
        return 0;
    case EF_REDIS_URL_CLUSTER:
        if (parse_hosts(rest, (size_t)(hostend - rest), out, 6379, what, err) != 0)
            return -1;
        if (end - hostend > 1 && !(end - hostend == 2 && hostend[1] == '0')) {
            ef_seterr(err, "cluster URL takes no path (Redis Cluster has only db 0; got '%.40s')",
                      hostend);
            return -1;
        }
        return 0;
    default: break;
    }
    if (memchr(rest, ',', (size_t)(hostend - rest))) {
        ef_seterr(err, "a redis:// URL names one host; use redis+sentinel:// or "
                       "redis+cluster:// for several");
        return -1;
    }
    if (parse_addr(rest, (size_t)(hostend - rest), &one, 6379, 1, what, err) != 0)
        return -1;
    memcpy(out->host, one.host, sizeof out->host);
    out->port = one.port;
    if (slash && slash + 1 < end) {
        if (parse_db(slash + 1, (size_t)(end - slash - 1), &out->db) != 0) {
            ef_seterr(err, "bad db number '%.20s' in redis URL", slash + 1);
            return -1;
        }
    }
    return 0;
}

static const struct {
    const char *scheme;
    ef_redis_url_kind_t kind;
    int tls;
} url_schemes[] = {
    {"redis://", EF_REDIS_URL_TCP, 0},
    {"rediss://", EF_REDIS_URL_TCP, 1},
    {"redis+sentinel://", EF_REDIS_URL_SENTINEL, 0},
    {"rediss+sentinel://", EF_REDIS_URL_SENTINEL, 1},
    {"redis+cluster://", EF_REDIS_URL_CLUSTER, 0},
    {"rediss+cluster://", EF_REDIS_URL_CLUSTER, 1},
};

int ef_redis_url_parse(const char *url, ef_redis_url_t *out, char *err) {
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (!url || !*url) {
        ef_seterr(err, "empty redis URL");
        return -1;
    }
    if (strlen(url) > 8192) {
        ef_seterr(err, "redis URL too long (over 8192 bytes)");
        return -1;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        out->kind = EF_REDIS_URL_UNIX;
        return parse_unix(url + 7, out, err);
    }
    for (size_t i = 0; i < EF_ARRAY_LEN(url_schemes); i++) {
        size_t n = strlen(url_schemes[i].scheme);
        if (strncmp(url, url_schemes[i].scheme, n) == 0) {
            out->kind = url_schemes[i].kind;
            out->tls = url_schemes[i].tls;
            return parse_tcp(url + n, out, err);
        }
    }
    ef_seterr(err,
              "redis URL must start with redis://, rediss://, unix://, redis+sentinel://, "
              "rediss+sentinel://, redis+cluster:// or rediss+cluster:// (got '%.40s')",
              url);
    return -1;
}

int ef_redis_url_supported(const ef_redis_url_t *u, char *err) {
    (void)err;
    if (u->kind == EF_REDIS_URL_CLUSTER && u->nhosts < 1)
        return -1; /* the parser never makes one */
    return 0;
}

const char *ef_redis_url_default(const char *flag_value) {
    const char *env;
    if (flag_value && *flag_value)
        return flag_value;
    env = getenv("REDIS_URL");
    if (env && *env)
        return env;
    return EF_DEFAULT_REDIS_URL;
}

/* Appends "?name=value&..." for the query parameters that are set (the
 * sentinel password as ***). */
static void redacted_query(const ef_redis_url_t *u, char *buf, size_t len, size_t o) {
    char sep = '?';
    for (size_t i = 0; i < EF_ARRAY_LEN(url_params) && o < len; i++) {
        const char *v = (const char *)u + url_params[i].off;
        if (!v[0])
            continue;
        if (strcmp(url_params[i].name, "sentinel_password") == 0)
            v = "***";
        o += (size_t)snprintf(buf + o, len - o, "%c%s=%s", sep, url_params[i].name, v);
        sep = '&';
    }
}

void ef_redis_url_redacted(const ef_redis_url_t *u, char *buf, size_t len) {
    static const char *const names[2][4] = {
        {"redis", "unix", "redis+sentinel", "redis+cluster"},
        {"rediss", "unix", "rediss+sentinel", "rediss+cluster"}};
    const char *scheme = names[u->tls ? 1 : 0][u->kind];
    char host[300];
    size_t o;
    if (u->path[0]) {
        snprintf(buf, len, "unix://%s?db=%d%s", u->path, u->db,
                 u->password[0] ? "&password=***" : "");
        return;
    }
    o = (size_t)snprintf(buf, len, "%s://%s%s%s", scheme, u->user, u->password[0] ? ":***" : "",
                         (u->user[0] || u->password[0]) ? "@" : "");
    if (u->kind == EF_REDIS_URL_TCP) {
        snprintf(host, sizeof host, strchr(u->host, ':') ? "[%s]" : "%s", u->host);
        if (o < len)
            o += (size_t)snprintf(buf + o, len - o, "%s:%d/%d", host, u->port, u->db);
        redacted_query(u, buf, len, o);
        return;
    }
    for (int i = 0; i < u->nhosts && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o,
                              strchr(u->hosts[i].host, ':') ? "%s[%s]:%d" : "%s%s:%d", i ? "," : "",
                              u->hosts[i].host, u->hosts[i].port);
    if (u->kind == EF_REDIS_URL_SENTINEL && o < len)
        o += (size_t)snprintf(buf + o, len - o, "/%s/%d", u->master, u->db);
    redacted_query(u, buf, len, o);
}
