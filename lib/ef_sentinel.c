// SPDX-License-Identifier: MIT
/*
 * Redis Sentinel helpers (see ef_sentinel.h): the failover replies, the
 * two answers a client checks, and the blocking resolution.
 */
#include "ef_sentinel.h"

#include "ef_tls_sync.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

int ef_sentinel_failover_error(const char *str) {
    static const char *const prefixes[] = {"READONLY", "UNBLOCKED", "LOADING", "MASTERDOWN"};
    if (!str)
        return 0;
    for (size_t i = 0; i < EF_ARRAY_LEN(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(str, prefixes[i], n) == 0 && (str[n] == ' ' || str[n] == '\0'))
            return 1;
    }
    return 0;
}

int ef_sentinel_addr_from_reply(const redisReply *reply, ef_redis_addr_t *out, char *err) {
    int64_t port;
    if (!reply) {
        ef_seterr(err, "no answer");
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        ef_seterr(err, "%.200s", reply->str);
        return -1;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        ef_seterr(err, "does not know that master");
        return -1;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING || reply->element[0]->len == 0 ||
        reply->element[0]->len >= sizeof out->host ||
        ef_parse_i64(reply->element[1]->str, reply->element[1]->len, &port) != 0 || port < 1 ||
        port > 65535) {
        ef_seterr(err, "answered something other than [host, port]");
        return -1;
    }
    memcpy(out->host, reply->element[0]->str, reply->element[0]->len);
    out->host[reply->element[0]->len] = '\0';
    out->port = (int)port;
    return 0;
}

int ef_sentinel_role_check(const redisReply *reply, char *err) {
    const redisReply *e;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        ef_seterr(err, "ROLE %s",
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "gave no role");
        return -1;
    }
    e = reply->element[0];
    if (e->type != REDIS_REPLY_STRING) {
        ef_seterr(err, "ROLE gave no role");
        return -1;
    }
    if (e->len == 6 && memcmp(e->str, "master", 6) == 0)
        return 0;
    ef_seterr(err, "the node says it is a %.20s, not the master", e->str);
    return -1;
}

/* Asks one sentinel; 0 and out filled, or -1 with why in err. */
static int ask_one(const ef_redis_url_t *u, const ef_redis_addr_t *s, ef_redis_addr_t *out,
                   char *err) {
    struct timeval tv = {EF_SENTINEL_TIMEOUT_MS / 1000, (EF_SENTINEL_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = u->tls ? ef_tls_sync_connect(u, s->host, s->port, EF_SENTINEL_TIMEOUT_MS, err)
                             : redisConnectWithTimeout(s->host, s->port, tv);
    redisReply *r = NULL;
    int rc = -1;
    if (u->tls && !c)
        return -1;
    if (!c || c->err) {
        ef_seterr(err, "%s", c ? c->errstr : "out of memory");
        redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    if (u->sentinel_password[0]) {
        r = u->sentinel_user[0]
                ? redisCommand(c, "AUTH %s %s", u->sentinel_user, u->sentinel_password)
                : redisCommand(c, "AUTH %s", u->sentinel_password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            ef_seterr(err, "AUTH: %.200s", r ? r->str : c->errstr);
            goto out;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", u->master);
    if (!r)
        ef_seterr(err, "%s", c->errstr);
    else
        rc = ef_sentinel_addr_from_reply(r, out, err);
out:
    if (r)
        freeReplyObject(r);
    ef_tls_sync_free(c);
    return rc;
}

int ef_sentinel_resolve_sync(const ef_redis_url_t *u, ef_redis_addr_t *out, char *err) {
    char all[EF_ERR_LEN] = "", one[EF_ERR_LEN];
    size_t o = 0;
    for (int i = 0; i < u->nhosts; i++) {
        one[0] = '\0';
        if (ask_one(u, &u->hosts[i], out, one) == 0)
            return 0;
        if (o < sizeof all)
            o += (size_t)snprintf(all + o, sizeof all - o, "%s%s:%d %s", i ? "; " : "",
                                  u->hosts[i].host, u->hosts[i].port, one);
    }
    ef_seterr(err, "no sentinel gave the address of master '%s' (%s)", u->master, all);
    return -1;
}
