// SPDX-License-Identifier: MIT
/*
 * The --redis URL parser (see ef_redis_url.h).  Percent-escapes in the user
 * and password are decoded so passwords with '@' or ':' can be written.
 */
#include "ef_redis_url.h"

#include "ef_text.h"

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

int ef_redis_url_parse(const char *url, ef_redis_url_t *out, char *err) {
    const char *rest, *at, *slash, *hostend, *colon;
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (!url || !*url) {
        ef_seterr(err, "empty redis URL");
        return -1;
    }
    if (strncmp(url, "unix://", 7) == 0)
        return parse_unix(url + 7, out, err);
    if (strncmp(url, "redis://", 8) != 0) {
        ef_seterr(err, "redis URL must start with redis:// or unix:// (got '%.40s')", url);
        return -1;
    }
    rest = url + 8;
    slash = strchr(rest, '/');
    hostend = slash ? slash : rest + strlen(rest);
    at = memrchr(rest, '@', (size_t)(hostend - rest));
    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), out, err) != 0)
            return -1;
        rest = at + 1;
    }
    if (*rest == '[') { /* [::1]:6379 */
        const char *rb = memchr(rest, ']', (size_t)(hostend - rest));
        if (!rb || (size_t)(rb - rest - 1) >= sizeof out->host) {
            ef_seterr(err, "bad IPv6 host in redis URL");
            return -1;
        }
        memcpy(out->host, rest + 1, (size_t)(rb - rest - 1));
        out->host[rb - rest - 1] = '\0';
        colon = (rb + 1 < hostend && rb[1] == ':') ? rb + 1 : NULL;
    } else {
        colon = memchr(rest, ':', (size_t)(hostend - rest));
        size_t hl = (size_t)((colon ? colon : hostend) - rest);
        if (hl >= sizeof out->host) {
            ef_seterr(err, "host too long in redis URL");
            return -1;
        }
        memcpy(out->host, rest, hl);
        out->host[hl] = '\0';
    }
    if (!out->host[0])
        snprintf(out->host, sizeof out->host, "127.0.0.1");
    if (colon) {
        int64_t p;
        if (ef_parse_i64(colon + 1, (size_t)(hostend - colon - 1), &p) != 0 || p < 1 || p > 65535) {
            ef_seterr(err, "bad port in redis URL");
            return -1;
        }
        out->port = (int)p;
    }
    if (slash && slash[1]) {
        if (parse_db(slash + 1, strlen(slash + 1), &out->db) != 0) {
            ef_seterr(err, "bad db number '%.20s' in redis URL", slash + 1);
            return -1;
        }
    }
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

void ef_redis_url_redacted(const ef_redis_url_t *u, char *buf, size_t len) {
    char host[300];
    if (u->path[0]) {
        snprintf(buf, len, "unix://%s?db=%d%s", u->path, u->db, u->password[0] ? "&password=***" : "");
        return;
    }
    snprintf(host, sizeof host, strchr(u->host, ':') ? "[%s]" : "%s", u->host);
    snprintf(buf, len, "redis://%s%s%s%s:%d/%d", u->user, u->password[0] ? ":***" : "",
             (u->user[0] || u->password[0]) ? "@" : "", host, u->port, u->db);
}
