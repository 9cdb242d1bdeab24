// SPDX-License-Identifier: MIT
/*
 * Blocking Redis client helpers for the command-line tools; see
 * ef_redis_sync.h.
 */
#include "ef_redis_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "ef_scripts_gen.h"
#include "ef_sentinel.h"
#include "ef_tls_sync.h"

/* A NULL reply says why in err.  A failover reply (READONLY, UNBLOCKED,
 * LOADING, MASTERDOWN: see ef_sentinel.h) means the node is not the master
 * any more: the context is marked broken so that the caller, seeing a lost
 * connection, connects (and resolves) again. */
static redisReply *checked(redisContext *c, redisReply *r, char *err) {
    if (r && r->type == REDIS_REPLY_ERROR && ef_sentinel_failover_error(r->str)) {
        c->err = REDIS_ERR_OTHER;
        snprintf(c->errstr, sizeof c->errstr, "not the master any more: %.100s", r->str);
        freeReplyObject(r);
        r = NULL;
    }
    if (!r)
        ef_seterr(err, "redis: %s", c->errstr[0] ? c->errstr : "connection lost");
    return r;
}

redisReply *ef_redis_sync_cmd(redisContext *c, char *err, int argc, const char **argv,
                              const size_t *lens) {
    return checked(c, redisCommandArgv(c, argc, argv, lens), err);
}

redisContext *ef_redis_sync_connect(const char *url_str, int timeout_ms, char *err) {
    ef_redis_url_t url;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c;
    redisReply *r = NULL;
    char where[2048];

    if (ef_redis_url_parse(url_str, &url, err) != 0 || ef_redis_url_supported(&url, err) != 0)
        return NULL;
    if (url.kind == EF_REDIS_URL_SENTINEL) {
        ef_redis_addr_t master;
        if (ef_sentinel_resolve_sync(&url, &master, err) != 0)
            return NULL;
        memcpy(url.host, master.host, sizeof url.host);
        url.port = master.port;
        snprintf(where, sizeof where, "%s:%d (master %s)", url.host, url.port, url.master);
    } else {
        ef_redis_url_redacted(&url, where, sizeof where);
    }
    if (url.tls) {
        char why[EF_ERR_LEN];
        c = ef_tls_sync_connect(&url, url.host, url.port, timeout_ms, why);
        if (!c) {
            ef_seterr(err, "cannot connect to redis at %s: %s", where, why);
            return NULL;
        }
    } else if (url.path[0])
        c = redisConnectUnixWithTimeout(url.path, tv);
    else
        c = redisConnectWithTimeout(url.host, url.port, tv);
    if (!c || c->err) {
        ef_seterr(err, "cannot connect to redis at %s: %s", where, c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (url.password[0]) {
        if (url.user[0])
            r = redisCommand(c, "AUTH %s %s", url.user, url.password);
        else
            r = redisCommand(c, "AUTH %s", url.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            ef_seterr(err, "redis at %s refused the credentials: %s", where,
                      r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    if (url.db != 0) {
        r = redisCommand(c, "SELECT %d", url.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            ef_seterr(err, "redis at %s: SELECT %d failed: %s", where, url.db,
                      r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    if (url.kind == EF_REDIS_URL_SENTINEL) {
        char why[EF_ERR_LEN];
        r = redisCommand(c, "ROLE");
        if (!r || ef_sentinel_role_check(r, why) != 0) {
            ef_seterr(err, "redis at %s: %s", where, r ? why : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    /* one pipelined round trip for every script */
    for (const ef_script_t *const *s = ef_scripts_all; *s; s++)
        redisAppendCommand(c, "SCRIPT LOAD %b", (*s)->body, (*s)->len);
    for (const ef_script_t *const *s = ef_scripts_all; *s; s++) {
        r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r || r->type != REDIS_REPLY_STRING) {
            ef_seterr(err, "redis at %s: SCRIPT LOAD %s failed: %s", where, (*s)->name,
                      r ? (r->str ? r->str : "unexpected reply") : c->errstr);
            goto fail;
        }
        if (strcmp(r->str, (*s)->sha) != 0) {
            ef_seterr(err, "redis computed SHA1 %s for script %s, the build computed %s", r->str,
                      (*s)->name, (*s)->sha);
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    if (r)
        freeReplyObject(r);
    ef_tls_sync_free(c);
    return NULL;
}

void ef_redis_sync_free(redisContext *c) { ef_tls_sync_free(c); }

/* Builds EVALSHA/EVAL argv around the caller's keys and args. */
static int script_argv(const ef_script_t *s, int use_body, int nkeys, int argc, const char **argv,
                       const size_t *lens, const char ***out_v, size_t **out_l, char *nk) {
    int n = argc + 3;
    const char **v = ef_malloc(sizeof *v * (size_t)n);
    size_t *l = ef_malloc(sizeof *l * (size_t)n);
    snprintf(nk, 16, "%d", nkeys);
    v[0] = use_body ? "EVAL" : "EVALSHA";
    l[0] = strlen(v[0]);
    v[1] = use_body ? s->body : s->sha;
    l[1] = use_body ? s->len : strlen(s->sha);
    v[2] = nk;
    l[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        v[i + 3] = argv[i];
        l[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    *out_v = v;
    *out_l = l;
    return n;
}

redisReply *ef_redis_sync_script(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                 const char **argv, const size_t *lens, char *err) {
    const char **v;
    size_t *l;
    char nk[16];
    redisReply *r;
    int n = script_argv(s, 0, nkeys, argc, argv, lens, &v, &l, nk);
    r = redisCommandArgv(c, n, v, l);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        free(v);
        free(l);
        n = script_argv(s, 1, nkeys, argc, argv, lens, &v, &l, nk);
        r = redisCommandArgv(c, n, v, l);
    }
    free(v);
    free(l);
    return checked(c, r, err);
}

int ef_redis_sync_script_append(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                const char **argv, const size_t *lens) {
    const char **v;
    size_t *l;
    char nk[16];
    int n = script_argv(s, 0, nkeys, argc, argv, lens, &v, &l, nk);
    int rc = redisAppendCommandArgv(c, n, v, l);
    free(v);
    free(l);
    return rc == REDIS_OK ? 0 : -1;
}

redisReply *ef_redis_sync_call(redisContext *c, const ef_call_t *call, char *err) {
    if (call->bad) {
        ef_seterr(err, "%s", call->err);
        return NULL;
    }
    return ef_redis_sync_script(c, call->script, call->nkeys, call->argc, call->argv, call->lens,
                                err);
}

int ef_redis_sync_call_append(redisContext *c, const ef_call_t *call) {
    if (call->bad)
        return -1;
    return ef_redis_sync_script_append(c, call->script, call->nkeys, call->argc, call->argv,
                                       call->lens);
}
