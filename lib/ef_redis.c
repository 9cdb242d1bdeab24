// SPDX-License-Identifier: MIT
/*
 * The daemons' Redis connection (design in ef_redis.h): hiredis async driven
 * by our own small libuv adapter.
 *
 * hiredis owns the socket and its queue of reply callbacks; this file owns
 * what surrounds them: one uv_poll_t per socket (ef_redis_sock_t, freed in
 * its close callback), the handshake (AUTH, SELECT, SCRIPT LOAD, PING), a
 * FIFO of pending requests that mirrors hiredis's reply queue, one timer for
 * the earliest deadline in that FIFO, the heartbeat and the reconnection.
 *
 * Each command is an ef_redis_req_t handed to hiredis as privdata.  hiredis
 * calls on_reply() exactly once per request, with the reply or with NULL when
 * the context is freed, and the request is freed there and nowhere else.
 * When the connection goes down the FIFO is emptied first: every user
 * callback fires with NULL, in order, and its request is marked dead, so the
 * NULL that hiredis delivers later only frees it.  That is what makes
 * callbacks exactly-once and keeps them all before ef_redis_close's `done`.
 * The hiredis context is freed only from our own timers and callbacks, never
 * from inside a hiredis hook or onConnect (those record a fault instead).
 *
 * Subscriptions (ef_redis_sub_t) live as long as the object: hiredis keeps
 * them in its channel table per connection, they are sent again after every
 * reconnect, and their callback gets NULL once, at close.  ef_redis_close()
 * fires no on_state.
 *
 * Sentinel sets reuse the same machinery: a socket to a sentinel is an
 * ordinary CONNECTING socket (r->resolving) whose handshake is the
 * sentinel's AUTH and SENTINEL get-master-addr-by-name; its answer is
 * handled like a handshake reply, inside hiredis's callback, so the switch
 * to the master frees the sentinel's context the deferred way (hiredis
 * frees it when the callback returns) and starts the master's socket from
 * the 0 ms connect timer.  The +switch-master watcher is a nested
 * ef_redis_t (one node, so it has no watcher of its own) counted in
 * nhandles until its close completes.
 *
 * TLS (rediss://, design in ef_tls.h) stays below all of this: conn_start()
 * lets hiredis resolve and start connect(2) as usual, then moves that
 * socket to an ef_tls_uv_t transport and puts one end of a socketpair
 * under hiredis's fd number (dup2), so hiredis, the FIFO, the deadlines and
 * the handshake see a socket that is only slow to answer while TLS
 * negotiates.  The transport lives in ef_redis_sock_t and is closed with it
 * (hook_cleanup); its failure becomes a fault, and a failure retrying will
 * not fix (certificate, alert, not TLS) before the first READY is refused
 * like bad credentials (on_state -1).  Functions that know about TLS:
 * ef_redis_create, handle_gone (the SSL_CTX), conn_start, tls_steal,
 * on_tls_fail, hook_cleanup, on_deadline, on_conn_timer, watch_start.
 */
#include "ef_redis.h"

#include <hiredis/async.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_cluster.h"
#include "ef_cluster_client.h"
#include "ef_common.h"
#include "ef_log.h"
#include "ef_scripts_gen.h"
#include "ef_sentinel.h"
#include "ef_tls_uv.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define EF_REDIS_WHY_LEN 192

typedef enum {
    EF_REDIS_ST_WAITING = 0, /* no socket: backing off (or closed) */
    EF_REDIS_ST_CONNECTING,  /* connect(2) and handshake in progress */
    EF_REDIS_ST_READY,
} ef_redis_state_t;

typedef enum {
    EF_REDIS_REQ_USER = 0,
    EF_REDIS_REQ_PING,  /* heartbeat */
    EF_REDIS_REQ_STEP,  /* handshake: AUTH, SELECT, SCRIPT LOAD */
    EF_REDIS_REQ_HELLO, /* the PING that ends the handshake */
    EF_REDIS_REQ_ASK,   /* SENTINEL get-master-addr-by-name, on a sentinel */
    EF_REDIS_REQ_ROLE,  /* ROLE on the node a sentinel named: must be master */
} ef_redis_req_kind_t;

typedef struct ef_redis_req_s {
    struct ef_redis_req_s *prev, *next; /* the FIFO, in the order Redis answers */
    ef_redis_t *r;
    ef_redis_req_kind_t kind;
    int dead; /* out of the FIFO, failed; hiredis still holds it */
    ef_redis_reply_cb cb;
    void *arg;
    uint64_t deadline; /* loop time in ms, 0 = none */
    int timeout_ms;
    uint64_t sent_ns;          /* uv_hrtime() at send, for PING round trips */
    const char *step;          /* handshake step, for the error line */
    const ef_script_t *script; /* SCRIPT LOAD to check, or EVALSHA to resend as EVAL */
    char *cmd;                 /* the formatted EVALSHA, kept for that resend */
    size_t cmd_len;
} ef_redis_req_t;

typedef struct ef_redis_sub_s {
    struct ef_redis_sub_s *next;
    ef_redis_t *r;
    char *channel;
    ef_redis_reply_cb cb; /* NULL after close */
    void *arg;
} ef_redis_sub_t;

/* One per socket: hiredis's event hooks point here. */
typedef struct {
    uv_poll_t poll;
    ef_redis_t *r;
    redisAsyncContext *ac; /* NULL once hiredis has let go (cleanup hook) */
    int events;            /* UV_READABLE | UV_WRITABLE being watched */
    ef_tls_uv_t *tls;      /* rediss://: the transport behind hiredis's fd */
} ef_redis_sock_t;

struct ef_redis_s {
    uv_loop_t *loop;
    ef_redis_url_t url;
    char where[600]; /* the URL without its password */
    char name[32];
    ef_redis_opts_t o; /* with the defaults filled in; o.name not kept */

    ef_redis_state_t state;
    int closing;
    int ever_ready;
    int attempts;                      /* connect attempts since the last READY */
    int outage_logged;                 /* this outage has had its log line */
    char last_error[EF_REDIS_WHY_LEN]; /* last handshake error logged */
    char fault[EF_REDIS_WHY_LEN];      /* adapter failure for the timer to act on */
    int fault_refused;                 /* the fault will not fix itself (TLS) */
    SSL_CTX *tls_ctx;                  /* rediss://, NULL otherwise */
    redisAsyncContext *ac;             /* NULL unless CONNECTING or READY */

    ef_redis_req_t *head, *tail;
    size_t npending;      /* user requests in the FIFO */
    ef_redis_req_t *ping; /* heartbeat in flight */
    long rtt_us;
    uint64_t rtt_at;   /* loop ms rtt_us was measured */
    uint64_t reply_at; /* loop ms of the last reply */
    ef_redis_sub_t *subs;

    uv_timer_t conn_timer;     /* connect timeout, or the backoff */
    uv_timer_t deadline_timer; /* earliest deadline in the FIFO */
    uv_timer_t ping_timer;
    uint64_t deadline_at; /* loop ms the deadline timer fires at, 0 = idle */
    int nhandles;         /* handles not yet closed, sockets included */
    void (*done)(void *arg);
    void *done_arg;

    /* Sentinel (url.kind EF_REDIS_URL_SENTINEL): the socket in progress is
     * to sentinel sentinel_idx while resolving; master is the address the
     * last one gave, empty when the set must be asked again. */
    int resolving;
    int sentinel_idx;
    int sentinel_tries; /* sentinels asked in this round */
    ef_redis_addr_t master;
    char last_master[300]; /* "host:port" last logged */
    ef_redis_t *watch;     /* subscribed to +switch-master on a sentinel */

    ef_cluster_client_t *cluster; /* redis+cluster://: all of the above unused */
};

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void conn_down(ef_redis_t *r, const char *why, int free_ac);
static void EF_PRINTF(2, 3) handshake_fail(ef_redis_t *r, const char *fmt, ...);
static void on_deadline(uv_timer_t *t);

static const char *ac_why(const redisAsyncContext *ac) {
    return ac->c.errstr[0] ? ac->c.errstr : "connection closed";
}

/* Records a failure noticed where the context cannot be freed (inside a
 * hiredis hook or onConnect); the deadline timer drops the connection on
 * the next loop turn. */
static void EF_PRINTF(2, 3) set_fault(ef_redis_t *r, const char *fmt, ...) {
    va_list ap;
    if (r->fault[0] || r->closing)
        return;
    va_start(ap, fmt);
    vsnprintf(r->fault, sizeof r->fault, fmt, ap);
    va_end(ap);
    r->deadline_at = uv_now(r->loop);
    uv_timer_start(&r->deadline_timer, on_deadline, 0, 0);
}

/* ---- Requests and their FIFO ---- */

static ef_redis_req_t *req_new(ef_redis_t *r, ef_redis_req_kind_t kind) {
    ef_redis_req_t *q = ef_calloc(1, sizeof *q);
    q->r = r;
    q->kind = kind;
    q->sent_ns = uv_hrtime();
    return q;
}

static void req_free(ef_redis_req_t *q) {
    if (q->cmd)
        redisFreeCommand(q->cmd);
    free(q);
}

static void req_link(ef_redis_t *r, ef_redis_req_t *q) {
    q->prev = r->tail;
    q->next = NULL;
    *(r->tail ? &r->tail->next : &r->head) = q;
    r->tail = q;
    r->npending += q->kind == EF_REDIS_REQ_USER;
}

static void req_unlink(ef_redis_t *r, ef_redis_req_t *q) {
    *(q->prev ? &q->prev->next : &r->head) = q->next;
    *(q->next ? &q->next->prev : &r->tail) = q->prev;
    q->prev = q->next = NULL;
    r->npending -= q->kind == EF_REDIS_REQ_USER;
    if (r->ping == q)
        r->ping = NULL;
}

/* Fails every pending request in order: each leaves the FIFO, is marked
 * dead and its user callback fires with NULL once.  Safe if a callback
 * re-enters (each request is unlinked before its callback runs). */
static void fail_all(ef_redis_t *r) {
    ef_redis_req_t *q;
    while ((q = r->head)) {
        ef_redis_reply_cb cb = q->kind == EF_REDIS_REQ_USER ? q->cb : NULL;
        req_unlink(r, q);
        q->dead = 1;
        q->cb = NULL;
        if (cb)
            cb(r, NULL, q->arg);
    }
}

/* ---- Deadlines: one timer for the earliest one ---- */

static void deadline_arm(ef_redis_t *r, uint64_t at) {
    uint64_t now = uv_now(r->loop);
    if (r->deadline_at && r->deadline_at <= at)
        return;
    r->deadline_at = at;
    uv_timer_start(&r->deadline_timer, on_deadline, at > now ? at - now : 0, 0);
}

/* Drops the connection when a deadline has passed (RESP cannot cancel one
 * command) or a fault is recorded; otherwise re-arms for the next deadline.
 * Answered requests leave the timer armed; it finds nothing and re-arms. */
static void on_deadline(uv_timer_t *t) {
    ef_redis_t *r = t->data;
    ef_redis_req_t *q;
    uint64_t now = uv_now(r->loop), next = 0;
    char why[EF_REDIS_WHY_LEN];

    r->deadline_at = 0;
    if (!r->ac)
        return;
    if (r->fault[0] && r->fault_refused) {
        handshake_fail(r, "%s", r->fault);
        if (!r->closing && r->o.on_state)
            r->o.on_state(r, -1, r->o.state_arg);
        return;
    }
    if (r->fault[0]) {
        conn_down(r, r->fault, 1);
        return;
    }
    for (q = r->head; q; q = q->next) {
        if (q->deadline && q->deadline <= now) {
            snprintf(why, sizeof why, "%s unanswered after %d ms",
                     q->kind == EF_REDIS_REQ_PING ? "heartbeat PING" : "command", q->timeout_ms);
            conn_down(r, why, 1);
            return;
        }
        if (q->deadline && (!next || q->deadline < next))
            next = q->deadline;
    }
    if (next)
        deadline_arm(r, next);
}

/* Queues a formatted command with q as its privdata and links q at the tail
 * of the FIFO with its deadline (timeout_ms <= 0: none).  0, or -1 when
 * hiredis refuses it (q is still the caller's then). */
static int req_send(ef_redis_t *r, ef_redis_req_t *q, const char *cmd, size_t len, int timeout_ms) {
    if (!r->ac || redisAsyncFormattedCommand(r->ac, on_reply, q, cmd, len) != REDIS_OK)
        return -1;
    q->timeout_ms = timeout_ms;
    q->deadline = timeout_ms > 0 ? uv_now(r->loop) + (uint64_t)timeout_ms : 0;
    req_link(r, q);
    if (q->deadline)
        deadline_arm(r, q->deadline);
    return 0;
}

/* ---- The libuv adapter: hiredis's event hooks ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void sock_watch(ef_redis_sock_t *s, int add, int del) {
    int events = (s->events | add) & ~del;
    int rc;
    if (!s->ac || events == s->events)
        return;
    s->events = events;
    rc = events ? uv_poll_start(&s->poll, events, on_poll) : uv_poll_stop(&s->poll);
    if (rc < 0 && s->r->ac == s->ac)
        set_fault(s->r, "cannot watch the socket: %s", uv_strerror(rc));
}

static void hook_add_read(void *p) { sock_watch(p, UV_READABLE, 0); }
static void hook_del_read(void *p) { sock_watch(p, 0, UV_READABLE); }
static void hook_add_write(void *p) { sock_watch(p, UV_WRITABLE, 0); }
static void hook_del_write(void *p) { sock_watch(p, 0, UV_WRITABLE); }

static void handle_gone(ef_redis_t *r);

static void on_sock_closed(uv_handle_t *h) {
    ef_redis_sock_t *s = h->data;
    ef_redis_t *r = s->r;
    free(s);
    handle_gone(r);
}

static void on_tls_closed(void *arg) { handle_gone(arg); }

/* hiredis is freeing the context and is about to close the fd: close the
 * poll handle first.  If the teardown is hiredis's own (EOF, reset,
 * refused), this is where the connection is declared down. */
static void hook_cleanup(void *p) {
    ef_redis_sock_t *s = p;
    redisAsyncContext *ac = s->ac;
    if (!ac)
        return;
    s->ac = NULL;
    if (s->tls) {
        ef_tls_uv_close(s->tls, on_tls_closed, s->r);
        s->tls = NULL;
    }
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
    if (s->r->ac == ac)
        conn_down(s->r, ac_why(ac), 0);
}

/* Poll errors go to hiredis as a read so it sees the socket's error (libuv
 * has stopped watching by then); if it does not tear down, we do. */
static void on_poll(uv_poll_t *h, int status, int events) {
    ef_redis_sock_t *s = h->data;
    redisAsyncContext *ac = s->ac;
    if (!ac)
        return;
    if (status < 0) {
        s->events = 0;
        redisAsyncHandleRead(ac);
        if (s->ac && s->r->ac == ac)
            conn_down(s->r, uv_strerror(status), 1);
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(ac);
    if ((events & UV_WRITABLE) && s->ac)
        redisAsyncHandleWrite(ac);
}

/* ---- Connection lifecycle ---- */

static void on_conn_timer(uv_timer_t *t);

/* Schedules the next attempt: exponential from backoff_min_ms, capped at
 * backoff_max_ms, with jitter over the upper half. */
static void conn_schedule(ef_redis_t *r) {
    uint64_t base = (uint64_t)r->o.backoff_min_ms, max = (uint64_t)r->o.backoff_max_ms, delay;
    for (int i = 0; i < r->attempts && base < max; i++)
        base *= 2;
    if (base > max)
        base = max;
    delay = base / 2 + (uint64_t)(ef_rand01() * (double)(base - base / 2));
    if (delay < (uint64_t)r->o.backoff_min_ms)
        delay = (uint64_t)r->o.backoff_min_ms;
    uv_timer_start(&r->conn_timer, on_conn_timer, delay, 0);
}

static void on_conn_timer(uv_timer_t *t);

/* Sentinel bookkeeping after a failed or lost socket.  A sentinel that
 * failed hands over to the next one at once, until each has been asked in
 * this round; a data node that failed (refused, a replica) or was lost
 * makes the set be asked again, starting with the next sentinel if the node
 * was never ready (its sentinel may be stale).  Returns 1 when the next
 * attempt is already scheduled, 0 when the caller backs off. */
static int sentinel_next(ef_redis_t *r, int was_ready) {
    const ef_redis_url_t *u = &r->url;
    if (u->kind != EF_REDIS_URL_SENTINEL)
        return 0;
    if (!r->resolving) {
        r->master.host[0] = '\0';
        r->sentinel_tries = 0;
        if (!was_ready)
            r->sentinel_idx = (r->sentinel_idx + 1) % u->nhosts;
        return 0;
    }
    r->resolving = 0;
    r->sentinel_idx = (r->sentinel_idx + 1) % u->nhosts;
    if (++r->sentinel_tries < u->nhosts) {
        uv_timer_start(&r->conn_timer, on_conn_timer, 0, 0);
        return 1;
    }
    r->sentinel_tries = 0;
    return 0;
}

/* A sentinel named the master: drop the sentinel's socket without a word
 * and connect to the master on the next loop turn. */
static void sentinel_switch(ef_redis_t *r) {
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->state = EF_REDIS_ST_WAITING;
    r->resolving = 0;
    r->sentinel_tries = 0;
    r->fault[0] = '\0';
    r->deadline_at = 0;
    uv_timer_stop(&r->deadline_timer);
    fail_all(r); /* handshake steps only: nothing of the user's before READY */
    if (ac)
        redisAsyncFree(ac); /* deferred by hiredis: we are in its callback */
    uv_timer_start(&r->conn_timer, on_conn_timer, 0, 0);
}

/* Takes the connection down: fails every pending request with NULL in
 * order, logs once per outage, tells on_state, and unless closing schedules
 * the next attempt.  free_ac is 1 when the teardown is ours (the context is
 * freed here, or when the hiredis callback we are in returns), 0 when
 * hiredis is already tearing it down or there is no context. */
static void conn_down(ef_redis_t *r, const char *why, int free_ac) {
    redisAsyncContext *ac = r->ac;
    int was_ready = r->state == EF_REDIS_ST_READY;
    char reason[EF_REDIS_WHY_LEN];

    if (r->resolving)
        snprintf(reason, sizeof reason, "sentinel %s:%d: %s", r->url.hosts[r->sentinel_idx].host,
                 r->url.hosts[r->sentinel_idx].port, why);
    else
        snprintf(reason, sizeof reason, "%s", why); /* why may live in ac or r->fault */
    r->ac = NULL;
    r->state = EF_REDIS_ST_WAITING;
    r->rtt_us = -1;
    r->fault[0] = '\0';
    r->fault_refused = 0;
    r->deadline_at = 0;
    uv_timer_stop(&r->conn_timer);
    uv_timer_stop(&r->deadline_timer);
    uv_timer_stop(&r->ping_timer);
    if (!r->closing) {
        if (was_ready)
            ef_warn("redis %s: connection lost (%s), reconnecting", r->name, reason);
        else if (!r->outage_logged)
            ef_warn("redis %s: cannot connect to %s (%s), retrying", r->name, r->where, reason);
        else
            ef_debug("redis %s: attempt %d failed (%s)", r->name, r->attempts, reason);
        r->outage_logged = 1;
    }
    fail_all(r);
    if (ac && free_ac)
        redisAsyncFree(ac);
    if (was_ready && !r->closing && r->o.on_state)
        r->o.on_state(r, 0, r->o.state_arg);
    if (!r->closing && sentinel_next(r, was_ready) == 0)
        conn_schedule(r);
}

/* A handshake step failed: a configuration problem the operator must see,
 * logged at error level once per distinct message, then a normal retry. */
static void EF_PRINTF(2, 3) handshake_fail(ef_redis_t *r, const char *fmt, ...) {
    char why[EF_REDIS_WHY_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (strcmp(why, r->last_error) != 0) {
        ef_error("redis %s: %s", r->name, why);
        snprintf(r->last_error, sizeof r->last_error, "%s", why);
        r->outage_logged = 1;
    }
    conn_down(r, why, 1);
}

/* A subscription's callback: messages go to the user; NULL means this
 * connection is going away, and the subscription is renewed on the next. */
static void on_message(redisAsyncContext *ac, void *reply_, void *privdata) {
    ef_redis_sub_t *sub = privdata;
    redisReply *reply = reply_;
    (void)ac;
    if (!reply || !sub->cb || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[0]->str, "message") == 0)
        sub->cb(sub->r, reply, sub->arg);
    else if (strcmp(reply->element[0]->str, "subscribe") == 0 && sub->r->o.on_subscribed)
        sub->r->o.on_subscribed(sub->r, reply, sub->r->o.state_arg);
}

static int sub_send(ef_redis_t *r, ef_redis_sub_t *sub) {
    int rc = r->ac ? redisAsyncCommand(r->ac, on_message, sub, "SUBSCRIBE %s", sub->channel) : -1;
    return rc == REDIS_OK ? 0 : -1;
}

static void on_ping_timer(uv_timer_t *t);

static void conn_ready(ef_redis_t *r) {
    uv_timer_stop(&r->conn_timer);
    r->state = EF_REDIS_ST_READY;
    if (r->ever_ready)
        ef_info("redis %s: reconnected after %d attempts", r->name, r->attempts);
    else if (r->url.kind == EF_REDIS_URL_SENTINEL)
        ef_info("redis %s: connected to master %s at %s:%d (%s)", r->name, r->url.master,
                r->master.host, r->master.port, r->where);
    else
        ef_info("redis %s: connected to %s", r->name, r->where);
    r->ever_ready = 1;
    r->attempts = 0;
    r->outage_logged = 0;
    r->last_error[0] = '\0';
    for (ef_redis_sub_t *sub = r->subs; sub; sub = sub->next)
        if (sub_send(r, sub) < 0)
            set_fault(r, "cannot queue SUBSCRIBE");
    if (!r->subs && r->o.ping_interval_ms > 0)
        uv_timer_start(&r->ping_timer, on_ping_timer, (uint64_t)r->o.ping_interval_ms,
                       (uint64_t)r->o.ping_interval_ms);
    if (r->o.on_state)
        r->o.on_state(r, 1, r->o.state_arg);
}

/* Queues one handshake step (a PING ends the handshake); a failure becomes
 * a fault: we are inside hiredis's onConnect, where nothing may be freed. */
static void handshake_cmd(ef_redis_t *r, ef_redis_req_kind_t kind, const ef_script_t *s, int argc,
                          const char **argv, const size_t *lens) {
    ef_redis_req_t *q = req_new(r, kind);
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    q->step = s ? "SCRIPT LOAD" : argv[0];
    q->script = s;
    if (len < 0 || req_send(r, q, cmd, (size_t)len, r->o.command_timeout_ms) < 0) {
        set_fault(r, "cannot queue %s", q->step);
        req_free(q);
    }
    redisFreeCommand(cmd);
}

/* connect(2) finished.  On a sentinel: AUTH with the sentinel credentials
 * and SENTINEL get-master-addr-by-name, whose answer switches to the master.
 * On a data node: pipeline AUTH, SELECT, ROLE (Sentinel sets only), SCRIPT
 * LOAD and a PING; the PING's answer makes the connection READY. */
static void on_connect(const redisAsyncContext *ac, int status) {
    ef_redis_t *r = ac->data;
    const ef_redis_url_t *u = &r->url;
    const char *auth[3] = {"AUTH", u->user[0] ? u->user : u->password, u->password};
    const char *sauth[3] = {"AUTH", u->sentinel_user[0] ? u->sentinel_user : u->sentinel_password,
                            u->sentinel_password};
    char db[16];
    if (r->ac != ac)
        return;
    if (status != REDIS_OK) {
        conn_down(r, ac_why(ac), 0);
        return;
    }
    if (r->resolving) {
        if (u->sentinel_password[0])
            handshake_cmd(r, EF_REDIS_REQ_STEP, NULL, u->sentinel_user[0] ? 3 : 2, sauth, NULL);
        handshake_cmd(r, EF_REDIS_REQ_ASK, NULL, 3,
                      (const char *[]){"SENTINEL", "get-master-addr-by-name", u->master}, NULL);
        return;
    }
    if (u->password[0])
        handshake_cmd(r, EF_REDIS_REQ_STEP, NULL, u->user[0] ? 3 : 2, auth, NULL);
    snprintf(db, sizeof db, "%d", u->db);
    if (u->db != 0)
        handshake_cmd(r, EF_REDIS_REQ_STEP, NULL, 2, (const char *[]){"SELECT", db}, NULL);
    if (u->kind == EF_REDIS_URL_SENTINEL)
        handshake_cmd(r, EF_REDIS_REQ_ROLE, NULL, 1, (const char *[]){"ROLE"}, NULL);
    for (const ef_script_t *const *s = ef_scripts_all; r->o.load_scripts && *s; s++)
        handshake_cmd(r, EF_REDIS_REQ_STEP, *s, 3, (const char *[]){"SCRIPT", "LOAD", (*s)->body},
                      (size_t[]){6, 4, (*s)->len});
    handshake_cmd(r, EF_REDIS_REQ_HELLO, NULL, 1, (const char *[]){"PING"}, NULL);
}

/* The answers that only Sentinel sets see: the sentinel's (an address, or
 * the next sentinel) and ROLE's (a replica is refused: ask again). */
static void sentinel_reply(ef_redis_t *r, ef_redis_req_t *q, redisReply *reply) {
    char why[EF_ERR_LEN], at[300];
    if (q->kind == EF_REDIS_REQ_ASK) {
        if (ef_sentinel_addr_from_reply(reply, &r->master, why) != 0) {
            conn_down(r, why, 1);
            return;
        }
        snprintf(at, sizeof at, "%s:%d", r->master.host, r->master.port);
        if (strcmp(at, r->last_master) != 0) {
            ef_info("redis %s: sentinel %s:%d names %s as master %s", r->name,
                    r->url.hosts[r->sentinel_idx].host, r->url.hosts[r->sentinel_idx].port, at,
                    r->url.master);
            snprintf(r->last_master, sizeof r->last_master, "%s", at);
        }
        sentinel_switch(r);
    } else if (ef_sentinel_role_check(reply, why) != 0) {
        handshake_fail(r, "%s:%d refused as master %s: %s", r->master.host, r->master.port,
                       r->url.master, why);
    }
}

static void handshake_reply(ef_redis_t *r, ef_redis_req_t *q, redisReply *reply) {
    const ef_script_t *s = q->script;
    if (q->kind == EF_REDIS_REQ_ASK || q->kind == EF_REDIS_REQ_ROLE)
        sentinel_reply(r, q, reply);
    else if (q->kind == EF_REDIS_REQ_HELLO && reply->type == REDIS_REPLY_ERROR) {
        conn_down(r, reply->str, 1); /* LOADING and the like: transient */
    } else if (q->kind == EF_REDIS_REQ_HELLO) {
        r->rtt_us = (long)((uv_hrtime() - q->sent_ns) / 1000);
        r->rtt_at = uv_now(r->loop);
        conn_ready(r);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* bad credentials or a missing permission will not fix themselves:
         * before the first READY, the owner hears of it (on_state -1) */
        int refused = !r->ever_ready && (strncmp(reply->str, "WRONGPASS", 9) == 0 ||
                                         strncmp(reply->str, "NOAUTH", 6) == 0 ||
                                         strncmp(reply->str, "NOPERM", 6) == 0 ||
                                         strstr(reply->str, "password") != NULL);
        handshake_fail(r, "%s%s%s failed: %s", q->step, s ? " " : "", s ? s->name : "", reply->str);
        if (refused && !r->closing && r->o.on_state)
            r->o.on_state(r, -1, r->o.state_arg);
    } else if (s && (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, s->sha) != 0)) {
        handshake_fail(r, "redis computed SHA1 %s for script %s, the build computed %s",
                       reply->type == REDIS_REPLY_STRING ? reply->str : "(none)", s->name, s->sha);
    }
}

/* The TLS transport of the current socket failed: recorded as a fault, so
 * the connection goes down from the deadline timer like every other fault
 * (the one path that may free the hiredis context). */
static void on_tls_fail(ef_tls_uv_t *l, const char *why, int refused, void *arg) {
    ef_redis_sock_t *s = arg;
    ef_redis_t *r = s->r;
    (void)l;
    if (!s->ac || r->ac != s->ac || r->fault[0])
        return;
    r->fault_refused = refused && !r->ever_ready;
    set_fault(r, "%s", why);
}

/* rediss://: hiredis has started connect(2) on its fd; that socket goes to
 * a TLS transport and hiredis's fd number becomes one end of a socketpair
 * (dup2), whose other end the transport serves.  0, or -1 with err. */
static int tls_steal(ef_redis_t *r, ef_redis_sock_t *s, const char *host, char *err) {
    int sp[2], tcp;
    const char *name = r->url.tls_sni[0] ? r->url.tls_sni : host;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0) {
        ef_seterr(err, "TLS: socketpair: %s", strerror(errno));
        return -1;
    }
    tcp = fcntl(s->ac->c.fd, F_DUPFD_CLOEXEC, 0);
    if (tcp < 0 || dup2(sp[0], s->ac->c.fd) < 0) {
        ef_seterr(err, "TLS: cannot move the socket: %s", strerror(errno));
        if (tcp >= 0)
            close(tcp);
        close(sp[0]);
        close(sp[1]);
        return -1;
    }
    close(sp[0]);
    if (ef_tls_uv_start(&s->tls, r->loop, r->tls_ctx, name, tcp, sp[1], on_tls_fail, s, err) < 0)
        return -1;
    r->nhandles++; /* until on_tls_closed */
    return 0;
}

/* Opens a socket and starts connecting; an immediate failure schedules the
 * next attempt. */
static void conn_start(ef_redis_t *r) {
    redisAsyncContext *ac;
    ef_redis_sock_t *s;
    char why[EF_ERR_LEN];
    int rc;

    const ef_redis_addr_t *to = NULL;
    int timeout_ms = r->o.connect_timeout_ms;

    r->resolving = r->url.kind == EF_REDIS_URL_SENTINEL && !r->master.host[0];
    if (r->resolving) {
        to = &r->url.hosts[r->sentinel_idx];
        timeout_ms = EF_SENTINEL_TIMEOUT_MS;
    } else if (r->url.kind == EF_REDIS_URL_SENTINEL) {
        to = &r->master;
    }
    if (!r->resolving || r->sentinel_tries == 0)
        r->attempts++; /* a round of sentinels counts once, for the backoff */
    ac = r->url.path[0] ? redisAsyncConnectUnix(r->url.path)
         : to           ? redisAsyncConnect(to->host, to->port)
                        : redisAsyncConnect(r->url.host, r->url.port);
    if (!ac || ac->err) {
        snprintf(why, sizeof why, "%s", ac ? ac_why(ac) : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        conn_down(r, why, 0);
        return;
    }
    if (!r->url.path[0])
        redisEnableKeepAlive(&ac->c); /* on the TCP socket, before TLS takes it */
    s = ef_calloc(1, sizeof *s);
    s->r = r;
    s->ac = ac;
    if (r->tls_ctx && tls_steal(r, s, to ? to->host : r->url.host, why) != 0) {
        free(s);
        redisAsyncFree(ac);
        conn_down(r, why, 0);
        return;
    }
    rc = uv_poll_init(r->loop, &s->poll, ac->c.fd);
    if (rc < 0) {
        ef_tls_uv_close(s->tls, on_tls_closed, r);
        free(s);
        redisAsyncFree(ac);
        conn_down(r, uv_strerror(rc), 0);
        return;
    }
    r->nhandles++;
    s->poll.data = s;
    ac->data = r;
    ac->ev.data = s;
    ac->ev.addRead = hook_add_read;
    ac->ev.delRead = hook_del_read;
    ac->ev.addWrite = hook_add_write;
    ac->ev.delWrite = hook_del_write;
    ac->ev.cleanup = hook_cleanup;
    r->ac = ac;
    r->state = EF_REDIS_ST_CONNECTING;
    uv_timer_start(&r->conn_timer, on_conn_timer, (uint64_t)timeout_ms, 0);
    redisAsyncSetConnectCallback(ac, on_connect);
    sock_watch(s, UV_WRITABLE, 0); /* the first writable event completes connect(2) */
}

static void on_conn_timer(uv_timer_t *t) {
    ef_redis_t *r = t->data;
    char why[EF_REDIS_WHY_LEN];
    if (r->state == EF_REDIS_ST_CONNECTING) {
        const ef_redis_sock_t *s = r->ac ? r->ac->ev.data : NULL;
        int ms = r->resolving ? EF_SENTINEL_TIMEOUT_MS : r->o.connect_timeout_ms;
        if (s && s->tls && !ef_tls_uv_open(s->tls))
            snprintf(why, sizeof why, "TLS: no handshake within %d ms (is it a TLS port?)", ms);
        else
            snprintf(why, sizeof why, "not ready within %d ms", ms);
        conn_down(r, why, 1);
    } else if (r->state == EF_REDIS_ST_WAITING) {
        conn_start(r);
    }
}

/* Sends the heartbeat.  Redis answers it after everything already pending,
 * so its deadline runs past the latest pending deadline (a blocking command
 * with a long deadline must not look like a dead server), and no PING is
 * sent while a command without deadline is ahead of it.  A connection that
 * had a reply within the interval is alive (and a silent server fails the
 * deadlines of what is pending): it is pinged only to keep its round-trip
 * figure (ef_redis_last_rtt_us) at most EF_REDIS_RTT_FRESH_MS old. */
static void on_ping_timer(uv_timer_t *t) {
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    ef_redis_t *r = t->data;
    ef_redis_req_t *q;
    uint64_t now = uv_now(r->loop), until = now + (uint64_t)r->o.command_timeout_ms;
    if (r->state != EF_REDIS_ST_READY || r->ping || r->subs)
        return;
    if (now - r->reply_at < (uint64_t)r->o.ping_interval_ms &&
        now - r->rtt_at < EF_REDIS_RTT_FRESH_MS)
        return;
    for (q = r->head; q; q = q->next) {
        if (!q->deadline)
            return;
        if (q->deadline + (uint64_t)r->o.command_timeout_ms > until)
            until = q->deadline + (uint64_t)r->o.command_timeout_ms;
    }
    q = req_new(r, EF_REDIS_REQ_PING);
    if (req_send(r, q, ping, sizeof ping - 1, (int)(until - now)) < 0) {
        req_free(q);
        set_fault(r, "cannot queue PING");
        return;
    }
    r->ping = q;
}

/* ---- Replies ---- */

/* Rebuilds the EVALSHA kept in q as EVAL with the script's body and sends it
 * again; q keeps its deadline and goes to the FIFO's tail, as it does in
 * hiredis.  0, or -1 when that fails (the NOSCRIPT error goes to the caller). */
static int req_resend_eval(ef_redis_t *r, ef_redis_req_t *q) {
    size_t n;
    char *buf = ef_script_eval_of(q->script, q->cmd, q->cmd_len, &n);
    int rc;

    if (!buf)
        return -1;
    rc = r->ac ? redisAsyncFormattedCommand(r->ac, on_reply, q, buf, n) : REDIS_ERR;
    free(buf);
    if (rc != REDIS_OK)
        return -1;
    q->script = NULL;
    req_link(r, q);
    if (q->deadline)
        deadline_arm(r, q->deadline);
    return 0;
}

/* hiredis's callback for every request: dead requests are only freed; a
 * NULL reply on a live one means hiredis is tearing the connection down. */
static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata) {
    ef_redis_req_t *q = privdata;
    redisReply *reply = reply_;
    ef_redis_t *r = q->r;

    if (!q->dead && !reply && r->ac == ac)
        conn_down(r, ac_why(ac), 0); /* fails q too, in order */
    if (q->dead || !reply) {
        req_free(q);
        return;
    }
    r->reply_at = uv_now(r->loop);
    if ((q->kind == EF_REDIS_REQ_USER || q->kind == EF_REDIS_REQ_PING) &&
        reply->type == REDIS_REPLY_ERROR && ef_sentinel_failover_error(reply->str)) {
        /* the node is not (or no longer) a master: lost, like a disconnect;
         * q is still in the FIFO and fails with NULL there, in order */
        conn_down(r, reply->str, 1);
        req_free(q);
        return;
    }
    req_unlink(r, q);
    if (q->kind == EF_REDIS_REQ_USER) {
        if (q->script && reply->type == REDIS_REPLY_ERROR &&
            strncmp(reply->str, "NOSCRIPT", 8) == 0 && req_resend_eval(r, q) == 0)
            return;
        ef_redis_reply_cb cb = q->cb;
        q->cb = NULL;
        if (cb)
            cb(r, reply, q->arg);
    } else if (q->kind == EF_REDIS_REQ_PING) {
        if (reply->type != REDIS_REPLY_ERROR) {
            r->rtt_us = (long)((uv_hrtime() - q->sent_ns) / 1000);
            r->rtt_at = uv_now(r->loop);
        }
    } else {
        handshake_reply(r, q, reply);
    }
    req_free(q);
}

/* ---- Sentinel's +switch-master: switch without waiting for an error ---- */

/* A sentinel announced "NAME OLDHOST OLDPORT NEWHOST NEWPORT".  For our
 * master, and unless we are on the new address already, the connection is
 * dropped (from the deadline timer: this runs inside the watcher's hiredis
 * callback) or the pending backoff is cut short; either way the set is
 * asked again and ROLE checked, the message itself is not trusted. */
static void on_switch(ef_redis_t *w, redisReply *reply, void *arg) {
    ef_redis_t *r = arg;
    const redisReply *m;
    char buf[600], *tok[6], *save = NULL;
    int n = 0;
    (void)w;
    if (!reply || r->closing)
        return;
    m = reply->element[2];
    if (m->type != REDIS_REPLY_STRING || m->len >= sizeof buf)
        return;
    memcpy(buf, m->str, m->len);
    buf[m->len] = '\0';
    for (char *t = strtok_r(buf, " ", &save); t && n < 6; t = strtok_r(NULL, " ", &save))
        tok[n++] = t;
    if (n != 5 || strcmp(tok[0], r->url.master) != 0)
        return;
    if (r->state == EF_REDIS_ST_READY && strcmp(tok[3], r->master.host) == 0 &&
        atoi(tok[4]) == r->master.port)
        return;
    ef_info("redis %s: sentinel announced +switch-master of %s to %.255s:%.8s", r->name,
            r->url.master, tok[3], tok[4]);
    if (r->state == EF_REDIS_ST_WAITING) {
        r->master.host[0] = '\0';
        r->sentinel_tries = 0;
        uv_timer_start(&r->conn_timer, on_conn_timer, 0, 0);
    } else if (!r->resolving) {
        set_fault(r, "sentinel announced a switch of %s to %.255s:%.8s", r->url.master, tok[3],
                  tok[4]);
    }
}

/* The watcher subscribes once it is first ready; it renews the
 * subscription by itself after a reconnect. */
static void on_watch_state(ef_redis_t *w, int ready, void *arg) {
    if (ready == 1 && !w->subs && ef_redis_subscribe(w, "+switch-master", on_switch, arg) != 0)
        ef_warn("redis %s: cannot subscribe to +switch-master", w->name);
}

static void on_watch_closed(void *arg) {
    handle_gone(arg);
}

/* Opens the watcher: a one-node connection (TLS when the URL's is) to the
 * first sentinel with the sentinel credentials.  Optional: without it a
 * switch is still noticed by the first failed or READONLY-style reply. */
static void watch_start(ef_redis_t *r) {
    ef_redis_url_t *wu = ef_calloc(1, sizeof *wu);
    ef_redis_opts_t wo = {
        .connect_timeout_ms = EF_SENTINEL_TIMEOUT_MS, .on_state = on_watch_state, .state_arg = r};
    char name[48];
    snprintf(name, sizeof name, "%.20s/sentinel", r->name);
    wo.name = name;
    wu->kind = EF_REDIS_URL_TCP;
    memcpy(wu->host, r->url.hosts[0].host, sizeof wu->host);
    wu->port = r->url.hosts[0].port;
    memcpy(wu->user, r->url.sentinel_user, sizeof wu->user);
    memcpy(wu->password, r->url.sentinel_password, sizeof wu->password);
    wu->tls = r->url.tls; /* the sentinels speak TLS when the URL says so */
    memcpy(wu->tls_cacert, r->url.tls_cacert, sizeof wu->tls_cacert);
    memcpy(wu->tls_cert, r->url.tls_cert, sizeof wu->tls_cert);
    memcpy(wu->tls_key, r->url.tls_key, sizeof wu->tls_key);
    memcpy(wu->tls_sni, r->url.tls_sni, sizeof wu->tls_sni);
    if (ef_redis_create(&r->watch, r->loop, wu, &wo) == 0)
        r->nhandles++;
    free(wu);
}

/* ---- Public API ---- */

static void on_handle_closed(uv_handle_t *h) { handle_gone(h->data); }

/* One handle less; after the last one (closing), free everything and then
 * tell the owner. */
static void handle_gone(ef_redis_t *r) {
    void (*done)(void *arg) = r->done;
    void *arg = r->done_arg;
    ef_redis_sub_t *sub;
    if (--r->nhandles > 0 || !r->closing)
        return;
    while ((sub = r->subs)) {
        r->subs = sub->next;
        free(sub->channel);
        free(sub);
    }
    SSL_CTX_free(r->tls_ctx);
    free(r);
    if (done)
        done(arg);
}

static int or_default(int v, int def) { return v ? v : def; }

int ef_redis_create(ef_redis_t **out, uv_loop_t *loop, const ef_redis_url_t *url,
                    const ef_redis_opts_t *opts) {
    ef_redis_opts_t o = opts ? *opts : (ef_redis_opts_t){0};
    ef_redis_t *r;

    if (!out || !loop || !url || (!url->path[0] && !url->host[0]))
        return UV_EINVAL;
    if ((url->kind == EF_REDIS_URL_CLUSTER || url->kind == EF_REDIS_URL_SENTINEL) &&
        url->nhosts < 1)
        return UV_EINVAL;
    *out = NULL;
    o.backoff_min_ms = or_default(o.backoff_min_ms, EF_REDIS_BACKOFF_MIN_MS);
    o.backoff_max_ms = or_default(o.backoff_max_ms, EF_REDIS_BACKOFF_MAX_MS);
    if (o.connect_timeout_ms < 0 || o.command_timeout_ms < 0 || o.ping_interval_ms < -1 ||
        o.backoff_min_ms < 0 || o.backoff_max_ms < o.backoff_min_ms)
        return UV_EINVAL;
    r = ef_calloc(1, sizeof *r);
    if (url->tls) {
        char err[EF_ERR_LEN];
        if (!(r->tls_ctx = ef_tls_ctx_create(url, err))) {
            ef_error("redis %s: %s", o.name ? o.name : "conn", err);
            free(r);
            return UV_EINVAL;
        }
    }
    r->loop = loop;
    r->url = *url;
    ef_redis_url_redacted(url, r->where, sizeof r->where);
    snprintf(r->name, sizeof r->name, "%s", o.name ? o.name : "conn");
    o.connect_timeout_ms = or_default(o.connect_timeout_ms, EF_REDIS_CONNECT_TIMEOUT_MS);
    o.command_timeout_ms = or_default(o.command_timeout_ms, EF_REDIS_COMMAND_TIMEOUT_MS);
    o.ping_interval_ms = or_default(o.ping_interval_ms, EF_REDIS_PING_INTERVAL_MS);
    o.name = NULL;
    r->o = o;
    r->rtt_us = -1;
    if (url->kind == EF_REDIS_URL_CLUSTER) {
        /* the nodes' connections each make their own TLS context from the
         * URL; this one only checked its files early */
        int rc = ef__cluster_create(&r->cluster, r, loop, url, &o, r->name);
        if (rc < 0) {
            SSL_CTX_free(r->tls_ctx);
            free(r);
            return rc;
        }
        *out = r;
        return 0;
    }
    uv_timer_init(loop, &r->conn_timer);
    uv_timer_init(loop, &r->deadline_timer);
    uv_timer_init(loop, &r->ping_timer);
    r->conn_timer.data = r->deadline_timer.data = r->ping_timer.data = r;
    r->nhandles = 3;
    if (url->kind == EF_REDIS_URL_SENTINEL)
        watch_start(r);
    conn_start(r);
    *out = r;
    return 0;
}

static void on_cluster_closed(void *arg) { handle_gone(arg); }

void ef_redis_close(ef_redis_t *r, void (*done)(void *arg), void *arg) {
    if (!r || r->closing)
        return;
    r->closing = 1;
    r->done = done;
    r->done_arg = arg;
    ef_debug("redis %s: closing", r->name);
    if (r->cluster) {
        r->nhandles = 1;
        ef__cluster_close(r->cluster, on_cluster_closed, r);
        return;
    }
    if (r->ac)
        conn_down(r, "closed", 1);
    fail_all(r);
    for (ef_redis_sub_t *sub = r->subs; sub; sub = sub->next) {
        ef_redis_reply_cb cb = sub->cb;
        sub->cb = NULL;
        if (cb)
            cb(r, NULL, sub->arg);
    }
    if (r->watch)
        ef_redis_close(r->watch, on_watch_closed, r);
    uv_close((uv_handle_t *)&r->conn_timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->deadline_timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->ping_timer, on_handle_closed);
}

int ef_redis_ready(const ef_redis_t *r) {
    if (r && r->cluster)
        return !r->closing && ef__cluster_ready(r->cluster);
    return r && !r->closing && r->state == EF_REDIS_ST_READY;
}

size_t ef_redis_pending(const ef_redis_t *r) {
    if (r && r->cluster)
        return r->closing ? 0 : ef__cluster_pending(r->cluster);
    return r ? r->npending : 0;
}

long ef_redis_last_rtt_us(const ef_redis_t *r) {
    if (r && r->cluster)
        return r->closing ? -1 : ef__cluster_rtt_us(r->cluster);
    return r ? r->rtt_us : -1;
}

void ef_redis_cluster_stats(const ef_redis_t *r, ef_redis_cluster_stats_t *out) {
    memset(out, 0, sizeof *out);
    if (r && r->cluster && !r->closing)
        ef__cluster_stats(r->cluster, out);
}

/* Commands need READY and no subscription (hiredis 0.14 refuses other
 * commands in subscriber mode). */
static int cmd_allowed(const ef_redis_t *r, int timeout_ms) {
    return ef_redis_ready(r) && !r->subs && timeout_ms >= EF_REDIS_NO_DEADLINE;
}

/* Sends a formatted user command and takes cmd: kept in the request for a
 * NOSCRIPT resend when s is set, freed otherwise. */
static int cmd_submit(ef_redis_t *r, ef_redis_reply_cb cb, void *arg, int timeout_ms, char *cmd,
                      int len, const ef_script_t *s, int near) {
    ef_redis_req_t *q;
    if (len < 0)
        return -1;
    if (r->cluster) { /* routed by the slot of its keys */
        int rc = ef__cluster_submit(r->cluster, cb, arg, timeout_ms, cmd, (size_t)len, s, near);
        redisFreeCommand(cmd);
        return rc;
    }
    q = req_new(r, EF_REDIS_REQ_USER);
    q->cb = cb;
    q->arg = arg;
    q->script = s;
    q->cmd = cmd;
    q->cmd_len = (size_t)len;
    if (req_send(r, q, cmd, (size_t)len, timeout_ms ? timeout_ms : r->o.command_timeout_ms) < 0) {
        req_free(q); /* and cmd */
        return -1;
    }
    if (!s) {
        redisFreeCommand(cmd);
        q->cmd = NULL;
    }
    return 0;
}

int ef__redis_submit(ef_redis_t *r, ef_redis_reply_cb cb, void *arg, int timeout_ms,
                     const char *cmd, size_t len, const ef_script_t *s) {
    char *copy;
    if (!cmd_allowed(r, timeout_ms) || r->cluster || len > (size_t)INT_MAX)
        return -1;
    copy = ef_malloc(len + 1);
    memcpy(copy, cmd, len);
    copy[len] = '\0';
    return cmd_submit(r, cb, arg, timeout_ms, copy, (int)len, s, EF_CLUSTER_NO_KEY);
}

int ef_redis_cmd(ef_redis_t *r, ef_redis_reply_cb cb, void *arg, int timeout_ms, int argc,
                 const char **argv, const size_t *lens) {
    char *cmd;
    if (!cmd_allowed(r, timeout_ms) || argc <= 0 || !argv)
        return -1;
    return cmd_submit(r, cb, arg, timeout_ms, cmd, redisFormatCommandArgv(&cmd, argc, argv, lens),
                      NULL, EF_CLUSTER_NO_KEY);
}

int ef_redis_cmd_near(ef_redis_t *r, const char *key, ef_redis_reply_cb cb, void *arg,
                      int timeout_ms, int argc, const char **argv) {
    char *cmd;
    if (!cmd_allowed(r, timeout_ms) || argc <= 0 || !argv || !key)
        return -1;
    return cmd_submit(r, cb, arg, timeout_ms, cmd, redisFormatCommandArgv(&cmd, argc, argv, NULL),
                      NULL, ef_cluster_keyslot(key, strlen(key)));
}

int ef_redis_cmdf(ef_redis_t *r, ef_redis_reply_cb cb, void *arg, const char *fmt, ...) {
    char *cmd;
    va_list ap;
    int len;
    if (!cmd_allowed(r, 0) || !fmt)
        return -1;
    va_start(ap, fmt);
    len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    return cmd_submit(r, cb, arg, 0, cmd, len, NULL, EF_CLUSTER_NO_KEY);
}

int ef_redis_script(ef_redis_t *r, const ef_script_t *s, ef_redis_reply_cb cb, void *arg,
                    int timeout_ms, int nkeys, int argc, const char **argv, const size_t *lens) {
    const char **v;
    size_t *l;
    char nk[16], *cmd;
    int len;

    if (!cmd_allowed(r, timeout_ms) || !s || nkeys < 0 || argc < nkeys || (argc > 0 && !argv))
        return -1;
    v = ef_malloc(sizeof *v * (size_t)(argc + 3));
    l = ef_malloc(sizeof *l * (size_t)(argc + 3));
    snprintf(nk, sizeof nk, "%d", nkeys);
    v[0] = "EVALSHA", l[0] = 7;
    v[1] = s->sha, l[1] = strlen(s->sha);
    v[2] = nk, l[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        v[i + 3] = argv[i];
        l[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    len = redisFormatCommandArgv(&cmd, argc + 3, v, l);
    free(v);
    free(l);
    return cmd_submit(r, cb, arg, timeout_ms, cmd, len, s, EF_CLUSTER_NO_KEY);
}

int ef_redis_call(ef_redis_t *r, const ef_call_t *call, ef_redis_reply_cb cb, void *arg,
                  int timeout_ms) {
    if (call->bad)
        return -1;
    return ef_redis_script(r, call->script, cb, arg, timeout_ms, call->nkeys, call->argc,
                           call->argv, call->lens);
}

int ef_redis_subscribe(ef_redis_t *r, const char *channel, ef_redis_reply_cb cb, void *arg) {
    ef_redis_sub_t *sub;
    if (!ef_redis_ready(r) || !channel || !cb)
        return -1;
    if (r->cluster)
        return ef__cluster_subscribe(r->cluster, channel, cb, arg);
    for (sub = r->subs; sub; sub = sub->next)
        if (strcmp(sub->channel, channel) == 0)
            return -1;
    sub = ef_calloc(1, sizeof *sub);
    sub->r = r;
    sub->channel = ef_strdup(channel);
    sub->cb = cb;
    sub->arg = arg;
    if (sub_send(r, sub) < 0) {
        free(sub->channel);
        free(sub);
        return -1;
    }
    sub->next = r->subs;
    r->subs = sub;
    uv_timer_stop(&r->ping_timer);
    return 0;
}
