// SPDX-License-Identifier: MIT
/*
 * Blocking Redis client helpers for the command-line tools; see
 * ef_redis_sync.h.
 */
#include "ef_redis_sync.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "ef_cluster.h"

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

static redisReply *exec_formatted(redisContext *c, const char *cmd, size_t len, char *err);

/* Runs argv as one command, following cluster redirections. */
static redisReply *exec_argv(redisContext *c, int argc, const char **argv, const size_t *lens,
                             char *err) {
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    redisReply *r;
    if (len < 0) {
        ef_seterr(err, "redis: cannot format a command");
        return NULL;
    }
    r = exec_formatted(c, cmd, (size_t)len, err);
    redisFreeCommand(cmd);
    return r;
}

redisReply *ef_redis_sync_cmd(redisContext *c, char *err, int argc, const char **argv,
                              const size_t *lens) {
    return exec_argv(c, argc, argv, lens, err);
}

/* The scripts a connection checks for (ef_scripts_all holds fewer). */
#define EF_SYNC_SCRIPTS_MAX 64
#define EF_SYNC_EXISTS_PER_CMD 8

/* Connects to one data node of url at host:port (a unix socket when url
 * has a path), authenticates, selects the database, checks ROLE on a
 * Sentinel set's master and loads the scripts the node does not hold yet.
 * NULL with err set. */
static redisContext *node_connect(const ef_redis_url_t *url, const char *host, int port,
                                  struct timeval tv, const char *where, char *err) {
    redisContext *c;
    redisReply *r = NULL;

    if (url->tls) {
        char why[EF_ERR_LEN];
        int ms = (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
        c = ef_tls_sync_connect(url, host, port, ms, why);
        if (!c) {
            ef_seterr(err, "cannot connect to redis at %s: %s", where, why);
            return NULL;
        }
    } else if (url->path[0])
        c = redisConnectUnixWithTimeout(url->path, tv);
    else
        c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        ef_seterr(err, "cannot connect to redis at %s: %s", where, c ? c->errstr : "out of memory");
        ef_tls_sync_free(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (url->password[0]) {
        if (url->user[0])
            r = redisCommand(c, "AUTH %s %s", url->user, url->password);
        else
            r = redisCommand(c, "AUTH %s", url->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            ef_seterr(err, "redis at %s refused the credentials: %s", where,
                      r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    if (url->db != 0) {
        r = redisCommand(c, "SELECT %d", url->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            ef_seterr(err, "redis at %s: SELECT %d failed: %s", where, url->db,
                      r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    if (url->kind == EF_REDIS_URL_SENTINEL) {
        char why[EF_ERR_LEN];
        r = redisCommand(c, "ROLE");
        if (!r || ef_sentinel_role_check(r, why) != 0) {
            ef_seterr(err, "redis at %s: %s", where, r ? why : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    /* SCRIPT EXISTS for every script (pipelined: one round trip), then
     * one pipelined round trip for those the node does not hold (after a
     * restart, on a new node): a program that connects once per job sends
     * 3 commands here, not one per script, on every node it uses */
    {
        /* SHAs 8 to a command: before AUTH, redis answers a longer one
         * with a protocol error instead of NOAUTH */
        const char *argv[EF_SYNC_EXISTS_PER_CMD + 2] = {"SCRIPT", "EXISTS"};
        int nscripts = 0, missing[EF_SYNC_SCRIPTS_MAX], nmissing = 0;
        while (ef_scripts_all[nscripts]) {
            if (++nscripts > EF_SYNC_SCRIPTS_MAX) {
                ef_seterr(err, "more than %d embedded scripts: raise EF_SYNC_SCRIPTS_MAX",
                          EF_SYNC_SCRIPTS_MAX);
                goto fail;
            }
        }
        for (int i = 0; i < nscripts; i += EF_SYNC_EXISTS_PER_CMD) {
            int n = 2;
            for (int j = i; j < nscripts && j < i + EF_SYNC_EXISTS_PER_CMD; j++)
                argv[n++] = ef_scripts_all[j]->sha;
            redisAppendCommandArgv(c, n, argv, NULL);
        }
        for (int i = 0; i < nscripts; i += EF_SYNC_EXISTS_PER_CMD) {
            int n = nscripts - i < EF_SYNC_EXISTS_PER_CMD ? nscripts - i : EF_SYNC_EXISTS_PER_CMD;
            r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || !r ||
                (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) != 0)) {
                ef_seterr(err, "redis at %s: SCRIPT EXISTS failed: %s", where,
                          r ? r->str : c->errstr);
                goto fail;
            }
            /* refused by an ACL that allows SCRIPT LOAD only, or unreadable:
             * loaded all the same */
            int known = r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)n;
            for (int j = 0; j < n; j++)
                if (!known || r->element[j]->type != REDIS_REPLY_INTEGER ||
                    r->element[j]->integer != 1)
                    missing[nmissing++] = i + j;
            freeReplyObject(r);
            r = NULL;
        }
        for (int i = 0; i < nmissing; i++)
            redisAppendCommand(c, "SCRIPT LOAD %b", ef_scripts_all[missing[i]]->body,
                               ef_scripts_all[missing[i]]->len);
        for (int i = 0; i < nmissing; i++) {
            const ef_script_t *sc = ef_scripts_all[missing[i]];
            r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || !r || r->type != REDIS_REPLY_STRING) {
                ef_seterr(err, "redis at %s: SCRIPT LOAD %s failed: %s", where, sc->name,
                          r ? (r->str ? r->str : "unexpected reply") : c->errstr);
                goto fail;
            }
            if (strcmp(r->str, sc->sha) != 0) {
                ef_seterr(err, "redis computed SHA1 %s for script %s, the build computed %s", r->str,
                          sc->name, sc->sha);
                goto fail;
            }
            freeReplyObject(r);
        }
        r = NULL;
    }
    return c;
fail:
    if (r)
        freeReplyObject(r);
    ef_tls_sync_free(c);
    return NULL;
}

/* ---- Cluster: following MOVED and ASK ---- */

/* A pipelined command whose reply is still to be read (cluster only). */
typedef struct pend_s {
    struct pend_s *next;
    char *cmd;
    size_t len;
} pend_t;

/* Kept in the reader's user field of a cluster connection (hiredis 0.14's
 * redisContext has none of its own): what is needed to reach another
 * node, the redirect counters, the commands of a pipeline in flight (to
 * resend one whose reply is a redirection), a side connection for those
 * resends and for ASK, and the node the connection moves to once the
 * pipeline is drained. */
/* A connection to a node the context moved away from, kept for a move
 * back: one enqueue goes to its queue's node, to farm:providers' node and
 * to farm:queues' node, and back, and a fresh connection costs a connect,
 * AUTH and the scripts' load each time. */
#define EF_REDIS_SYNC_PARKED_MAX 8
typedef struct {
    redisContext *c;
    ef_redis_addr_t at;
} parked_t;

typedef struct {
    ef_redis_url_t url;
    struct timeval tv;
    ef_redis_sync_stats_t st;
    pend_t *head, *tail;
    parked_t parked[EF_REDIS_SYNC_PARKED_MAX];
    int nparked;
    redisContext *side;
    ef_redis_addr_t side_at;
    ef_redis_addr_t at; /* the node c is connected to (a TLS context has no tcp.host) */
    ef_redis_addr_t move_to;
    int must_move;
} cluster_t;

static cluster_t *cluster_of(const redisContext *c) {
    return c && c->reader ? c->reader->privdata : NULL;
}

static int addr_eq(const ef_redis_addr_t *a, const ef_redis_addr_t *b) {
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* An idle connection has nothing to read: readable means closed (or a
 * stray reply), and it is not used again. */
static int idle_alive(const redisContext *c) {
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    return !c->err && c->fd >= 0 && poll(&pf, 1, 0) == 0;
}

/* The parked connection to `to`, taken out of the list, or NULL. */
static redisContext *unpark(cluster_t *cl, const ef_redis_addr_t *to) {
    for (int i = 0; i < cl->nparked; i++) {
        if (!addr_eq(&cl->parked[i].at, to))
            continue;
        redisContext *n = cl->parked[i].c;
        cl->parked[i] = cl->parked[--cl->nparked];
        if (idle_alive(n))
            return n;
        ef_tls_sync_free(n);
        return NULL;
    }
    return NULL;
}

/* Keeps n (connected to at) for a move back; the oldest goes when full. */
static void park(cluster_t *cl, redisContext *n, const ef_redis_addr_t *at) {
    if (cl->nparked == EF_REDIS_SYNC_PARKED_MAX) {
        ef_tls_sync_free(cl->parked[0].c); /* TLS: its pump thread too */
        memmove(cl->parked, cl->parked + 1, sizeof cl->parked[0] * (EF_REDIS_SYNC_PARKED_MAX - 1));
        cl->nparked--;
    }
    cl->parked[cl->nparked].c = n;
    cl->parked[cl->nparked].at = *at;
    cl->nparked++;
}

/* Moves c to another node: a connection to it (kept from an earlier move,
 * else a new one) takes the place of the current one inside the same
 * redisContext (the structs are swapped), so the caller's pointer stays
 * valid, and the current one is kept for a move back.  0, or -1 with err
 * set (c unchanged). */
static int cluster_move(redisContext *c, const ef_redis_addr_t *to, char *err) {
    cluster_t *cl = cluster_of(c);
    char where[EF_REDIS_HOST_LEN + 16];
    redisContext *n, tmp;
    snprintf(where, sizeof where, "%s:%d", to->host, to->port);
    n = unpark(cl, to);
    if (!n && !(n = node_connect(&cl->url, to->host, to->port, cl->tv, where, err)))
        return -1;
    tmp = *c;
    *c = *n;
    *n = tmp;
    n->reader->privdata = NULL;
    c->reader->privdata = cl;
    if (!n->err && n->fd >= 0)
        park(cl, n, &cl->at);
    else
        ef_tls_sync_free(n);
    cl->at = *to;
    return 0;
}

/* Sends a formatted command and reads its answer; NULL on a connection
 * error. */
static redisReply *round_trip(redisContext *c, const char *cmd, size_t len) {
    redisReply *r = NULL;
    if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK ||
        redisGetReply(c, (void **)&r) != REDIS_OK)
        return NULL;
    return r;
}

/* Runs cmd (after ASKING when asking) on the side connection to `to`,
 * opened or moved there first; NULL with err set on a connection error. */
static redisReply *side_run(cluster_t *cl, const ef_redis_addr_t *to, int asking, const char *cmd,
                            size_t len, char *err) {
    char where[EF_REDIS_HOST_LEN + 16];
    redisReply *ok = NULL, *r = NULL;
    snprintf(where, sizeof where, "%s:%d", to->host, to->port);
    if (cl->side && (cl->side_at.port != to->port || strcmp(cl->side_at.host, to->host) != 0)) {
        ef_tls_sync_free(cl->side);
        cl->side = NULL;
    }
    if (!cl->side) {
        cl->side = node_connect(&cl->url, to->host, to->port, cl->tv, where, err);
        if (!cl->side)
            return NULL;
        cl->side_at = *to;
    }
    if (asking)
        redisAppendCommand(cl->side, "ASKING");
    redisAppendFormattedCommand(cl->side, cmd, len);
    if ((asking && redisGetReply(cl->side, (void **)&ok) != REDIS_OK) ||
        redisGetReply(cl->side, (void **)&r) != REDIS_OK) {
        ef_seterr(err, "redis at %s: %s", where, cl->side->errstr);
        if (ok)
            freeReplyObject(ok);
        ef_tls_sync_free(cl->side);
        cl->side = NULL;
        return NULL;
    }
    if (ok)
        freeReplyObject(ok);
    return r;
}

/* Follows r for the formatted command cmd on a cluster connection: MOVED
 * moves c to the slot's new node and resends (in a pipeline, whose other
 * replies are still to come on c, the command is resent on the side
 * connection and c moves once the pipeline is drained); ASK sends ASKING
 * and the command on the side connection; TRYAGAIN and CLUSTERDOWN resend
 * after a backoff.  Returns the final answer (r itself when there is
 * nothing to follow), NULL on a connection error. */
static redisReply *cluster_follow(redisContext *c, redisReply *r, const char *cmd, size_t len,
                                  int pipelined, char *err) {
    cluster_t *cl = cluster_of(c);
    ef_cluster_redirect_t rd;
    ef_redis_addr_t here = {"", 0};
    char why[EF_ERR_LEN];
    if (cl)
        here = cl->at;
    for (int i = 0; cl && r && r->type == REDIS_REPLY_ERROR && i < EF_REDIS_SYNC_REDIRECTS_MAX;
         i++) {
        if (ef_cluster_redirect_parse(r->str, r->len, &rd, why) == 0) {
            if (!rd.to.host[0])
                snprintf(rd.to.host, sizeof rd.to.host, "%s", here.host);
            freeReplyObject(r);
            if (rd.kind == EF_CLUSTER_MOVED && !pipelined) {
                cl->st.moved++;
                if (cluster_move(c, &rd.to, err) != 0)
                    return NULL;
                here = rd.to;
                r = round_trip(c, cmd, len);
            } else if (rd.kind == EF_CLUSTER_MOVED) {
                cl->st.moved++;
                cl->move_to = rd.to;
                cl->must_move = 1;
                r = side_run(cl, &rd.to, 0, cmd, len, err);
            } else {
                cl->st.ask++;
                r = side_run(cl, &rd.to, 1, cmd, len, err);
            }
        } else if (strncmp(r->str, "TRYAGAIN", 8) == 0 || strncmp(r->str, "CLUSTERDOWN", 11) == 0) {
            freeReplyObject(r);
            cl->st.retries++;
            usleep((useconds_t)(50000 << (i < 4 ? i : 4)));
            r = pipelined ? side_run(cl, &here, 0, cmd, len, err) : round_trip(c, cmd, len);
        } else {
            break;
        }
    }
    return r;
}

/* Runs a formatted command, following cluster redirections; the answer
 * through checked(). */
static redisReply *exec_formatted(redisContext *c, const char *cmd, size_t len, char *err) {
    char ferr[EF_ERR_LEN] = "";
    redisReply *r = round_trip(c, cmd, len);
    r = cluster_follow(c, r, cmd, len, 0, ferr);
    if (!r && ferr[0]) {
        ef_seterr(err, "%s", ferr);
        return NULL;
    }
    return checked(c, r, err);
}

redisContext *ef_redis_sync_connect(const char *url_str, int timeout_ms, char *err) {
    ef_redis_url_t url;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = NULL;
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
    if (url.kind != EF_REDIS_URL_CLUSTER)
        return node_connect(&url, url.host, url.port, tv, where, err);
    /* a cluster: the first seed that answers; commands then follow MOVED */
    int seed = 0;
    for (; seed < url.nhosts && !c; seed++) {
        snprintf(where, sizeof where, "%s:%d", url.hosts[seed].host, url.hosts[seed].port);
        c = node_connect(&url, url.hosts[seed].host, url.hosts[seed].port, tv, where, err);
    }
    if (c) {
        cluster_t *cl = ef_calloc(1, sizeof *cl);
        cl->url = url;
        cl->at = url.hosts[seed - 1];
        cl->tv = tv;
        c->reader->privdata = cl;
    }
    return c;
}

void ef_redis_sync_free(redisContext *c) {
    cluster_t *cl = cluster_of(c);
    if (!c)
        return;
    if (cl) {
        pend_t *p;
        while ((p = cl->head)) {
            cl->head = p->next;
            redisFreeCommand(p->cmd);
            free(p);
        }
        ef_tls_sync_free(cl->side);
        for (int i = 0; i < cl->nparked; i++)
            ef_tls_sync_free(cl->parked[i].c);
        free(cl);
    }
    if (c->reader)
        c->reader->privdata = NULL;
    ef_tls_sync_free(c);
}

void ef_redis_sync_stats(const redisContext *c, ef_redis_sync_stats_t *out) {
    const cluster_t *cl = cluster_of(c);
    memset(out, 0, sizeof *out);
    if (cl)
        *out = cl->st;
}

int ef_redis_sync_is_cluster(const redisContext *c) {
    return cluster_of(c) != NULL;
}

redisReply *ef_redis_sync_cmdf(redisContext *c, char *err, const char *fmt, ...) {
    char *cmd;
    va_list ap;
    int len;
    redisReply *r;
    va_start(ap, fmt);
    len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        ef_seterr(err, "redis: cannot format a command");
        return NULL;
    }
    r = exec_formatted(c, cmd, (size_t)len, err);
    redisFreeCommand(cmd);
    return r;
}

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
    r = exec_argv(c, n, v, l, err);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        free(v);
        free(l);
        n = script_argv(s, 1, nkeys, argc, argv, lens, &v, &l, nk);
        r = exec_argv(c, n, v, l, err);
    }
    free(v);
    free(l);
    return r;
}

int ef_redis_sync_script_append(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                const char **argv, const size_t *lens) {
    const char **v;
    size_t *l;
    char nk[16], *cmd;
    cluster_t *cl = cluster_of(c);
    int n = script_argv(s, 0, nkeys, argc, argv, lens, &v, &l, nk);
    int len = redisFormatCommandArgv(&cmd, n, v, l), rc;
    free(v);
    free(l);
    if (len < 0)
        return -1;
    rc = redisAppendFormattedCommand(c, cmd, (size_t)len);
    if (rc != REDIS_OK || !cl) {
        redisFreeCommand(cmd);
        return rc == REDIS_OK ? 0 : -1;
    }
    /* kept until its reply is read, to be resent if that is a redirection */
    pend_t *p = ef_calloc(1, sizeof *p);
    p->cmd = cmd;
    p->len = (size_t)len;
    *(cl->tail ? &cl->tail->next : &cl->head) = p;
    cl->tail = p;
    return 0;
}

int ef_redis_sync_get_reply(redisContext *c, redisReply **out) {
    cluster_t *cl = cluster_of(c);
    redisReply *r = NULL;
    char err[EF_ERR_LEN] = "";
    pend_t *p = cl ? cl->head : NULL;
    int rc = redisGetReply(c, (void **)&r) == REDIS_OK ? 0 : -1;
    if (p) {
        cl->head = p->next;
        if (!cl->head)
            cl->tail = NULL;
        if (rc == 0) {
            r = cluster_follow(c, r, p->cmd, p->len, 1, err);
            if (!r) {
                c->err = REDIS_ERR_OTHER;
                snprintf(c->errstr, sizeof c->errstr, "%.120s", err[0] ? err : "connection lost");
                rc = -1;
            }
        }
        redisFreeCommand(p->cmd);
        free(p);
    }
    if (cl && !cl->head && cl->must_move && rc == 0) {
        cl->must_move = 0; /* a failure here shows on the next command */
        cluster_move(c, &cl->move_to, err);
    }
    *out = r;
    return rc;
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
