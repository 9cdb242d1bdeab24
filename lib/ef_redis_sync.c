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
 * connection, connects (and resolves) again.  A server that wants a
 * password answers a long command from a client that gave none with a
 * protocol error (not NOAUTH) and closes the connection: said as NOAUTH. */
static redisReply *checked(redisContext *c, redisReply *r, char *err) {
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "Protocol error: unauthenticated", 31) == 0) {
        c->err = REDIS_ERR_OTHER;
        snprintf(c->errstr, sizeof c->errstr,
                 "NOAUTH: the server wants a password (%.60s); give it in the URL", r->str);
        freeReplyObject(r);
        r = NULL;
    }
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

/* Connects to one data node of url at host:port (a unix socket when url
 * has a path), authenticates, selects the database and checks ROLE on a
 * Sentinel set's master.  No script is loaded here: each goes with its
 * first call on the connection (EVAL), see script_cmd().  NULL with err
 * set. */
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
    return c;
fail:
    if (r)
        freeReplyObject(r);
    ef_tls_sync_free(c);
    return NULL;
}

/* ---- What a context keeps beside hiredis's ---- */

/* A call appended to a pipeline whose reply is still to be read: kept to
 * be resent when that reply is a redirection (cluster) or NOSCRIPT. */
typedef struct pend_s {
    struct pend_s *next;
    char *cmd;
    size_t len;
    const ef_script_t *script; /* an EVALSHA of it, or NULL */
} pend_t;

/* A connection to a node the context moved away from, kept for a move
 * back: one enqueue goes to farm:providers' node, its queue's node and, for
 * a new queue, farm:queues' node and back, and a fresh connection costs a
 * connect and AUTH each time. */
#define EF_REDIS_SYNC_PARKED_MAX 8
typedef struct {
    redisContext *c;
    ef_redis_addr_t at;
    uint64_t known;
} parked_t;

/* Kept in the reader's user field (hiredis 0.14's redisContext has none of
 * its own), for every context.  known: the scripts this connection was sent
 * with their body (EVAL), which Redis then keeps: later calls send only
 * the SHA (EVALSHA).  A program that connects once per job so sends no
 * SCRIPT command at all, and a NOSCRIPT answer (a restart, SCRIPT FLUSH)
 * sends the call again as EVAL.  A cluster context also keeps a slot map
 * (CLUSTER SLOTS at connect, then every MOVED), by which a command goes to
 * its slot's node before it is sent (no MOVED round trip), the redirect
 * counters, a side connection for resends and ASK, and the connections it
 * moved away from. */
typedef struct {
    ef_redis_url_t url;
    struct timeval tv;
    ef_redis_addr_t at; /* the node c is connected to (a TLS context has no tcp.host) */
    uint64_t known;     /* bit i: ef_scripts_all[i], for c */
    int no_eval;        /* an ACL refused EVAL: SCRIPT LOAD, then EVALSHA */
    pend_t *head, *tail;
    redisContext *side;
    ef_redis_addr_t side_at;
    /* a cluster's (map is NULL off a cluster) */
    ef_redis_sync_stats_t st;
    ef_cluster_map_t *map;
    parked_t parked[EF_REDIS_SYNC_PARKED_MAX];
    int nparked;
    ef_redis_addr_t move_to;
    int must_move;
} sync_t;

static sync_t *state_of(const redisContext *c) {
    return c && c->reader ? c->reader->privdata : NULL;
}

static sync_t *cluster_of(const redisContext *c) {
    sync_t *st = state_of(c);
    return st && st->map ? st : NULL;
}

/* The bit of s in a connection's known set (0 past 64 scripts: such a
 * script always goes as EVALSHA, with EVAL on NOSCRIPT). */
static uint64_t script_bit(const ef_script_t *s) {
    for (int i = 0; i < 64 && ef_scripts_all[i]; i++)
        if (ef_scripts_all[i] == s)
            return (uint64_t)1 << i;
    return 0;
}

static int is_error(const redisReply *r, const char *code) {
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, code, strlen(code)) == 0;
}

/* ---- Cluster: routing, following MOVED and ASK ---- */

static int addr_eq(const ef_redis_addr_t *a, const ef_redis_addr_t *b) {
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* An idle connection has nothing to read: readable means closed (or a
 * stray reply), and it is not used again. */
static int idle_alive(const redisContext *c) {
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    return !c->err && c->fd >= 0 && poll(&pf, 1, 0) == 0;
}

/* The parked connection to `to`, taken out of the list (its known set in
 * *known), or NULL. */
static redisContext *unpark(sync_t *cl, const ef_redis_addr_t *to, uint64_t *known) {
    for (int i = 0; i < cl->nparked; i++) {
        if (!addr_eq(&cl->parked[i].at, to))
            continue;
        redisContext *n = cl->parked[i].c;
        uint64_t k = cl->parked[i].known;
        cl->parked[i] = cl->parked[--cl->nparked];
        if (idle_alive(n)) {
            *known = k;
            return n;
        }
        ef_tls_sync_free(n);
        return NULL;
    }
    return NULL;
}

/* Keeps n (connected to at) for a move back; the oldest goes when full. */
static void park(sync_t *cl, redisContext *n, const ef_redis_addr_t *at, uint64_t known) {
    if (cl->nparked == EF_REDIS_SYNC_PARKED_MAX) {
        ef_tls_sync_free(cl->parked[0].c); /* TLS: its pump thread too */
        memmove(cl->parked, cl->parked + 1, sizeof cl->parked[0] * (EF_REDIS_SYNC_PARKED_MAX - 1));
        cl->nparked--;
    }
    cl->parked[cl->nparked] = (parked_t){.c = n, .at = *at, .known = known};
    cl->nparked++;
}

/* Moves c to another node: a connection to it (kept from an earlier move,
 * else a new one) takes the place of the current one inside the same
 * redisContext (the structs are swapped), so the caller's pointer stays
 * valid, and the current one is kept for a move back.  0, or -1 with err
 * set (c unchanged). */
static int cluster_move(redisContext *c, const ef_redis_addr_t *to, char *err) {
    sync_t *cl = cluster_of(c);
    char where[EF_REDIS_HOST_LEN + 16];
    redisContext *n, tmp;
    uint64_t known = 0;
    snprintf(where, sizeof where, "%s:%d", to->host, to->port);
    n = unpark(cl, to, &known);
    if (!n && !(n = node_connect(&cl->url, to->host, to->port, cl->tv, where, err)))
        return -1;
    tmp = *c;
    *c = *n;
    *n = tmp;
    n->reader->privdata = NULL;
    c->reader->privdata = cl;
    if (!n->err && n->fd >= 0)
        park(cl, n, &cl->at, cl->known);
    else
        ef_tls_sync_free(n);
    cl->at = *to;
    cl->known = known;
    return 0;
}

/* Before a command for slot is sent: moves c to the slot's node when the
 * map knows another one and no reply is pending on c (a pipeline in flight
 * stays where it is; a redirection is followed then).  A failed move is
 * left to the redirection too. */
static void route(redisContext *c, int slot) {
    sync_t *cl = cluster_of(c);
    const ef_cluster_node_t *n;
    char err[EF_ERR_LEN];
    if (!cl || slot < 0 || cl->head || cl->must_move || !(n = ef_cluster_map_node(cl->map, slot)) ||
        addr_eq(&n->addr, &cl->at))
        return;
    ef_redis_addr_t to = n->addr; /* n may move when the map changes */
    if (cluster_move(c, &to, err) == 0)
        cl->st.routed++;
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
static redisReply *side_run(sync_t *cl, const ef_redis_addr_t *to, int asking, const char *cmd,
                            size_t len, char *err) {
    char where[EF_REDIS_HOST_LEN + 16];
    redisReply *ok = NULL, *r = NULL;
    snprintf(where, sizeof where, "%s:%d", to->host, to->port);
    if (cl->side && !addr_eq(&cl->side_at, to)) {
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
 * records the slot's new node in the map, moves c there and resends (in a
 * pipeline, whose other replies are still to come on c, the command is
 * resent on the side connection and c moves once the pipeline is drained);
 * ASK sends ASKING and the command on the side connection; TRYAGAIN and
 * CLUSTERDOWN resend after a backoff.  Returns the final answer (r itself
 * when there is nothing to follow, and off a cluster), NULL on a
 * connection error. */
static redisReply *cluster_follow(redisContext *c, redisReply *r, const char *cmd, size_t len,
                                  int pipelined, char *err) {
    sync_t *cl = cluster_of(c);
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
            if (rd.kind == EF_CLUSTER_MOVED) {
                cl->st.moved++;
                ef_cluster_map_set_owner(cl->map, rd.slot, &rd.to);
            }
            if (rd.kind == EF_CLUSTER_MOVED && !pipelined) {
                if (cluster_move(c, &rd.to, err) != 0)
                    return NULL;
                here = rd.to;
                r = round_trip(c, cmd, len);
            } else if (rd.kind == EF_CLUSTER_MOVED) {
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

/* Runs a formatted command on its slot's node, following cluster
 * redirections; the answer through checked(). */
static redisReply *exec_formatted(redisContext *c, const char *cmd, size_t len, char *err) {
    char ferr[EF_ERR_LEN] = "";
    redisReply *r;
    route(c, ef_cluster_cmd_slot(cmd, len));
    r = round_trip(c, cmd, len);
    r = cluster_follow(c, r, cmd, len, 0, ferr);
    if (!r && ferr[0]) {
        ef_seterr(err, "%s", ferr);
        return NULL;
    }
    return checked(c, r, err);
}

/* Asks the node c is on for its slot map; a refusal (an ACL without
 * CLUSTER SLOTS) or a bad answer leaves the map empty: commands then find
 * their nodes by MOVED. */
static void map_load(redisContext *c, sync_t *cl) {
    char why[EF_ERR_LEN];
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    if (!r || ef_cluster_map_from_slots(r, cl->at.host, cl->map, why) != 0) {
        memset(cl->map, 0, sizeof *cl->map);
        for (int i = 0; i < EF_CLUSTER_SLOTS; i++)
            cl->map->owner[i] = -1;
    }
    if (r)
        freeReplyObject(r);
}

redisContext *ef_redis_sync_connect(const char *url_str, int timeout_ms, char *err) {
    ef_redis_url_t url;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = NULL;
    char where[2048];
    ef_redis_addr_t at;

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
    if (url.kind != EF_REDIS_URL_CLUSTER) {
        c = node_connect(&url, url.host, url.port, tv, where, err);
        snprintf(at.host, sizeof at.host, "%s", url.host);
        at.port = url.port;
    } else {
        /* a cluster: the first seed that answers; commands then go by the
         * slot map and follow MOVED */
        int seed = 0;
        for (; seed < url.nhosts && !c; seed++) {
            snprintf(where, sizeof where, "%s:%d", url.hosts[seed].host, url.hosts[seed].port);
            c = node_connect(&url, url.hosts[seed].host, url.hosts[seed].port, tv, where, err);
        }
        if (c)
            at = url.hosts[seed - 1];
    }
    if (!c)
        return NULL;
    sync_t *st = ef_calloc(1, sizeof *st);
    st->url = url;
    st->tv = tv;
    st->at = at;
    c->reader->privdata = st;
    if (url.kind == EF_REDIS_URL_CLUSTER) {
        st->map = ef_malloc(sizeof *st->map);
        map_load(c, st);
    }
    return c;
}

void ef_redis_sync_free(redisContext *c) {
    sync_t *st = state_of(c);
    if (!c)
        return;
    if (st) {
        pend_t *p;
        while ((p = st->head)) {
            st->head = p->next;
            redisFreeCommand(p->cmd);
            free(p);
        }
        ef_tls_sync_free(st->side);
        for (int i = 0; i < st->nparked; i++)
            ef_tls_sync_free(st->parked[i].c);
        free(st->map);
        free(st);
    }
    if (c->reader)
        c->reader->privdata = NULL;
    ef_tls_sync_free(c);
}

void ef_redis_sync_stats(const redisContext *c, ef_redis_sync_stats_t *out) {
    const sync_t *cl = cluster_of(c);
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

/* ---- Scripts ---- */

/* The formatted EVAL (use_body) or EVALSHA of s around the caller's keys
 * and args; its length, or -1. */
static int script_cmd(char **cmd, const ef_script_t *s, int use_body, int nkeys, int argc,
                      const char **argv, const size_t *lens) {
    int n = argc + 3, len;
    const char **v = ef_malloc(sizeof *v * (size_t)n);
    size_t *l = ef_malloc(sizeof *l * (size_t)n);
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
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
    len = redisFormatCommandArgv(cmd, n, v, l);
    free(v);
    free(l);
    return len;
}

/* SCRIPT LOAD of s on c (an ACL that refuses EVAL); 0, or -1 with err. */
static int script_load(redisContext *c, const ef_script_t *s, char *err) {
    redisReply *r = ef_redis_sync_cmdf(c, err, "SCRIPT LOAD %b", s->body, s->len);
    int ok = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, s->sha) == 0;
    if (r && !ok)
        ef_seterr(err, "redis: SCRIPT LOAD %s: %s", s->name,
                  r->type == REDIS_REPLY_ERROR ? r->str : "its SHA1 is not the build's");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

redisReply *ef_redis_sync_script(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                 const char **argv, const size_t *lens, char *err) {
    sync_t *st = state_of(c);
    uint64_t bit = script_bit(s);
    char *cmd;
    int len, body;
    redisReply *r = NULL;

    route(c, ef_cluster_keys_slot(nkeys, argv, lens));
    /* the first call on this connection carries the body; NOSCRIPT after
     * an EVALSHA, or the first call refused by the ACL as EVAL, goes again */
    body = st && bit && !(st->known & bit) && !st->no_eval;
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((len = script_cmd(&cmd, s, body, nkeys, argc, argv, lens)) < 0) {
            ef_seterr(err, "redis: cannot format a call of %s", s->name);
            return NULL;
        }
        r = exec_formatted(c, cmd, (size_t)len, err);
        redisFreeCommand(cmd);
        if (!r)
            return NULL;
        if (!body && is_error(r, "NOSCRIPT")) {
            body = !(st && st->no_eval);
            if (!body && script_load(c, s, err) != 0) {
                freeReplyObject(r);
                return NULL;
            }
        } else if (body && is_error(r, "NOPERM") && strstr(r->str, "'eval'") && st &&
                   !st->no_eval) {
            st->no_eval = 1; /* from now on SCRIPT LOAD, then EVALSHA */
            body = 0;
            if (script_load(c, s, err) != 0) {
                freeReplyObject(r);
                return NULL;
            }
        } else {
            break;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (!r) {
        ef_seterr(err, "redis: %s: NOSCRIPT again after loading it (3 tries)", s->name);
        return NULL;
    }
    if (st && !is_error(r, "NOSCRIPT") && !is_error(r, "NOPERM"))
        st->known |= bit;
    return r;
}

/* Appends the formatted cmd (taken: freed here or with its reply) to c's
 * pipeline and keeps it, to be resent if its reply is a redirection or
 * (script set: an EVALSHA of it) NOSCRIPT.  0, or -1. */
static int append_formatted(redisContext *c, char *cmd, size_t len, const ef_script_t *script) {
    sync_t *st = state_of(c);
    if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK) {
        redisFreeCommand(cmd);
        return -1;
    }
    if (!st) {
        redisFreeCommand(cmd);
        return 0;
    }
    pend_t *p = ef_calloc(1, sizeof *p);
    p->cmd = cmd;
    p->len = len;
    p->script = script;
    *(st->tail ? &st->tail->next : &st->head) = p;
    st->tail = p;
    return 0;
}

int ef_redis_sync_script_append(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                const char **argv, const size_t *lens) {
    sync_t *st = state_of(c);
    uint64_t bit = script_bit(s);
    char *cmd, err[EF_ERR_LEN];
    int len, body;

    route(c, ef_cluster_keys_slot(nkeys, argv, lens));
    body = st && bit && !(st->known & bit);
    if (body && st->no_eval && !st->head) {
        /* an ACL without EVAL: loaded now, while nothing is pending */
        if (script_load(c, s, err) == 0)
            body = 0;
    }
    if ((len = script_cmd(&cmd, s, body, nkeys, argc, argv, lens)) < 0)
        return -1;
    /* Redis runs the EVAL before the EVALSHAs after it (an EVAL an ACL
     * refuses leaves the bit wrong: the next call's NOSCRIPT mends it) */
    if (st && !(body && st->no_eval))
        st->known |= bit;
    return append_formatted(c, cmd, (size_t)len, body ? NULL : s);
}

int ef_redis_sync_cmd_append(redisContext *c, int argc, const char **argv, const size_t *lens) {
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0)
        return -1;
    route(c, ef_cluster_cmd_slot(cmd, (size_t)len));
    return append_formatted(c, cmd, (size_t)len, NULL);
}

/* Sends p's call again with the script's body after a NOSCRIPT answer (a
 * restart, SCRIPT FLUSH, or another node): on c when no other reply is
 * pending, else on the side connection to c's node; with an ACL that
 * refuses EVAL, SCRIPT LOAD there first and the EVALSHA again.  The
 * answer, NULL on a connection error (err set). */
static redisReply *resend_with_body(redisContext *c, sync_t *st, const pend_t *p, char *err) {
    size_t n = p->len;
    char *again = NULL, *load = NULL;
    int nload = 0, pending = st->head != NULL;
    redisReply *r;

    if (st->no_eval) {
        nload = redisFormatCommand(&load, "SCRIPT LOAD %b", p->script->body, p->script->len);
        if (nload < 0) {
            ef_seterr(err, "redis: cannot format SCRIPT LOAD %s", p->script->name);
            return NULL;
        }
        r = pending ? side_run(st, &st->at, 0, load, (size_t)nload, err) : round_trip(c, load, (size_t)nload);
        redisFreeCommand(load);
        if (!r)
            return NULL;
        freeReplyObject(r);
    } else if (!(again = ef_script_eval_of(p->script, p->cmd, p->len, &n))) {
        ef_seterr(err, "redis: cannot rebuild a call of %s with its body", p->script->name);
        return NULL;
    }
    const char *cmd = again ? again : p->cmd;
    r = pending ? side_run(st, &st->at, 0, cmd, n, err) : round_trip(c, cmd, n);
    r = cluster_follow(c, r, cmd, n, pending, err);
    free(again);
    return r;
}

int ef_redis_sync_get_reply(redisContext *c, redisReply **out) {
    sync_t *st = state_of(c);
    sync_t *cl = cluster_of(c);
    redisReply *r = NULL;
    char err[EF_ERR_LEN] = "";
    pend_t *p = st ? st->head : NULL;
    int rc = redisGetReply(c, (void **)&r) == REDIS_OK ? 0 : -1;
    if (p) {
        st->head = p->next;
        if (!st->head)
            st->tail = NULL;
        if (rc == 0) {
            r = cluster_follow(c, r, p->cmd, p->len, 1, err);
            if (r && p->script && is_error(r, "NOSCRIPT")) {
                freeReplyObject(r);
                r = resend_with_body(c, st, p, err);
            }
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
