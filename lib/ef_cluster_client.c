// SPDX-License-Identifier: MIT
/*
 * The Redis Cluster router (design in ef_cluster_client.h).
 *
 * Nodes (node_t) are connections, one per primary of the map plus the
 * seeds until the first map and the subscriber; each is an ordinary
 * ef_redis_t whose on_state tells us when it is usable.  A node is freed
 * only in the close callback of its connection.
 *
 * Requests (req_t) live from the caller's call until the caller's callback
 * has fired.  A request is at any moment either in flight on one node (its
 * connection calls on_node_reply exactly once), or waiting in the retry
 * list, or dead (its callback has fired with NULL because the router went
 * down or closed) and only waiting for the node's answer to be freed.  This
 * keeps the exactly-once rule of ef_redis.h through any number of
 * redirections.
 */
#include "ef_cluster_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_cluster.h"
#include "ef_log.h"

typedef struct node_s {
    struct node_s *next;
    ef_cluster_client_t *cc;
    ef_redis_addr_t addr;
    ef_redis_t *conn;
    int ready;
    int closing;
    int sub; /* the subscriber connection */
} node_t;

typedef struct req_s {
    struct req_s *prev, *next; /* live list */
    struct req_s *rnext;       /* retry list */
    ef_cluster_client_t *cc;
    ef_redis_reply_cb cb;
    void *arg;
    int timeout_ms;
    char *cmd;
    size_t len;
    const ef_script_t *s;
    int slot;
    int redirects, retries;
    int asking; /* send ASKING first, to ask_to */
    ef_redis_addr_t ask_to;
    ef_redis_addr_t sent_to;
    uint64_t retry_at;
    int queued; /* in the retry list */
    int dead;   /* answered with NULL; freed when the node answers */
} req_t;

typedef struct sub_s {
    struct sub_s *next;
    ef_redis_t *owner;
    char *channel;
    ef_redis_reply_cb cb;
    void *arg;
} sub_t;

struct ef_cluster_client_s {
    ef_redis_t *owner;
    uv_loop_t *loop;
    ef_redis_url_t url;
    char name[32];
    ef_redis_opts_t o;

    ef_cluster_map_t *map, *fresh; /* the map in use; the one being read */
    int have_map;
    node_t *mnode[EF_CLUSTER_MAX_NODES]; /* map node index -> connection */
    node_t *nodes;
    node_t *subnode;
    sub_t *subs;

    req_t *live; /* requests not yet answered */
    size_t nlive;
    req_t *retry; /* by retry_at */
    int ready, ever_ready, refused;

    uv_timer_t refresh_timer, retry_timer;
    int refreshing;
    uint64_t last_refresh; /* loop ms */
    int next_asked;        /* rotates the node asked for the map */
    uint64_t logged_at[3]; /* last redirect line per kind */
    ef_redis_cluster_stats_t st;

    int closing, nhandles;
    void (*done)(void *arg);
    void *done_arg;
};

static void update_ready(ef_cluster_client_t *cc);
static void refresh_soon(ef_cluster_client_t *cc, uint64_t delay);
static int dispatch(req_t *q);

/* ---- Nodes ---- */

static int addr_eq(const ef_redis_addr_t *a, const ef_redis_addr_t *b) {
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void handle_gone(ef_cluster_client_t *cc) {
    void (*done)(void *);
    void *arg;
    if (--cc->nhandles > 0 || !cc->closing)
        return;
    done = cc->done;
    arg = cc->done_arg;
    free(cc->map);
    free(cc->fresh);
    free(cc);
    if (done)
        done(arg);
}

static void on_node_closed(void *arg) {
    node_t *n = arg;
    ef_cluster_client_t *cc = n->cc;
    for (node_t **p = &cc->nodes; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            break;
        }
    free(n);
    handle_gone(cc);
}

static void node_close(node_t *n) {
    if (n->closing)
        return;
    n->closing = 1;
    n->ready = 0;
    if (n->cc->subnode == n)
        n->cc->subnode = NULL;
    ef_redis_close(n->conn, on_node_closed, n);
}

static void sub_renew(ef_cluster_client_t *cc);

static void on_node_state(ef_redis_t *r, int ready, void *arg) {
    node_t *n = arg;
    ef_cluster_client_t *cc = n->cc;
    (void)r;
    if (n->closing || cc->closing)
        return;
    n->ready = ready == 1;
    if (ready < 0 && !cc->ever_ready && !cc->refused) {
        cc->refused = 1; /* credentials: the owner decides */
        if (cc->o.on_state)
            cc->o.on_state(cc->owner, -1, cc->o.state_arg);
        return;
    }
    if (n->sub) {
        if (ready == 1)
            sub_renew(cc);
        return;
    }
    if (ready == 1 && !cc->have_map)
        refresh_soon(cc, 0);
    else if (ready != 1)
        refresh_soon(cc, EF_CLUSTER_REFRESH_DOWN_MS);
    update_ready(cc);
}

/* A subscription took effect on the subscriber connection: the owner's
 * on_subscribed hears of it with its own object and argument. */
static void on_node_subscribed(ef_redis_t *r, redisReply *reply, void *arg) {
    node_t *n = arg;
    ef_cluster_client_t *cc = n->cc;
    (void)r;
    if (!n->closing && !cc->closing && cc->o.on_subscribed)
        cc->o.on_subscribed(cc->owner, reply, cc->o.state_arg);
}

/* The connection to addr, opened when there is none (NULL when the
 * connection cannot be made at all). */
static node_t *node_get(ef_cluster_client_t *cc, const ef_redis_addr_t *addr, int sub) {
    ef_redis_url_t *u;
    ef_redis_opts_t o = cc->o;
    node_t *n;
    char name[64];
    for (n = cc->nodes; n; n = n->next)
        if (!n->closing && n->sub == sub && addr_eq(&n->addr, addr))
            return n;
    /* the whole URL (credentials, TLS settings) with this node's address */
    u = ef_calloc(1, sizeof *u);
    *u = cc->url;
    u->kind = EF_REDIS_URL_TCP;
    snprintf(u->host, sizeof u->host, "%s", addr->host);
    u->port = addr->port;
    u->nhosts = 0;
    n = ef_calloc(1, sizeof *n);
    n->cc = cc;
    n->addr = *addr;
    n->sub = sub;
    snprintf(name, sizeof name, "%.12s@%.32s:%d", cc->name, addr->host, addr->port);
    o.name = name;
    o.on_state = on_node_state;
    o.on_subscribed = cc->o.on_subscribed ? on_node_subscribed : NULL;
    o.state_arg = n; /* both callbacks get the node: the owner's get its own arg */
    if (sub)
        o.load_scripts = 0;
    if (ef_redis_create(&n->conn, cc->loop, u, &o) != 0) {
        free(u);
        free(n);
        return NULL;
    }
    free(u);
    n->next = cc->nodes;
    cc->nodes = n;
    cc->nhandles++;
    return n;
}

/* The node for commands without a key: the first ready primary. */
static node_t *node_any(ef_cluster_client_t *cc) {
    if (cc->have_map)
        for (int i = 0; i < cc->map->nnodes; i++)
            if (cc->mnode[i] && cc->mnode[i]->ready)
                return cc->mnode[i];
    for (node_t *n = cc->nodes; n; n = n->next)
        if (n->ready && !n->sub)
            return n;
    return NULL;
}

/* ---- Requests ---- */

static void req_free(req_t *q) {
    free(q->cmd);
    free(q);
}

static void live_unlink(ef_cluster_client_t *cc, req_t *q) {
    *(q->prev ? &q->prev->next : &cc->live) = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    cc->nlive--;
}

static void retry_unlink(ef_cluster_client_t *cc, req_t *q) {
    for (req_t **p = &cc->retry; *p; p = &(*p)->rnext)
        if (*p == q) {
            *p = q->rnext;
            break;
        }
    q->rnext = NULL;
    q->queued = 0;
}

/* The caller's answer: the request leaves the live list, its callback
 * fires once, and it is freed unless a node still holds it. */
static void deliver(req_t *q, redisReply *reply, int held) {
    ef_cluster_client_t *cc = q->cc;
    ef_redis_reply_cb cb = q->cb;
    live_unlink(cc, q);
    q->cb = NULL;
    q->dead = 1;
    if (cb)
        cb(cc->owner, reply, q->arg);
    if (!held)
        req_free(q);
}

/* Fails every live request with NULL (the router went down or closes). */
static void fail_live(ef_cluster_client_t *cc) {
    req_t *q;
    while ((q = cc->live)) {
        int queued = q->queued;
        if (queued)
            retry_unlink(cc, q);
        deliver(q, NULL, !queued);
    }
}

static void on_retry_timer(uv_timer_t *t);

static void retry_arm(ef_cluster_client_t *cc) {
    uint64_t now = uv_now(cc->loop);
    if (!cc->retry) {
        uv_timer_stop(&cc->retry_timer);
        return;
    }
    uv_timer_start(&cc->retry_timer, on_retry_timer,
                   cc->retry->retry_at > now ? cc->retry->retry_at - now : 0, 0);
}

/* Puts q in the retry list after a backoff with jitter; 0, or -1 when q
 * has been retried often enough (the caller answers it then). */
static int retry_later(req_t *q) {
    ef_cluster_client_t *cc = q->cc;
    uint64_t delay;
    req_t **p;
    if (q->retries >= EF_CLUSTER_RETRIES_MAX)
        return -1;
    delay = (uint64_t)EF_CLUSTER_RETRY_MIN_MS << q->retries;
    if (delay > EF_CLUSTER_RETRY_MAX_MS)
        delay = EF_CLUSTER_RETRY_MAX_MS;
    delay += (uint64_t)(rand() % EF_CLUSTER_RETRY_MIN_MS);
    q->retries++;
    cc->st.retries++;
    q->retry_at = uv_now(cc->loop) + delay;
    for (p = &cc->retry; *p && (*p)->retry_at <= q->retry_at; p = &(*p)->rnext)
        ;
    q->rnext = *p;
    *p = q;
    q->queued = 1;
    retry_arm(cc);
    return 0;
}

static void on_retry_timer(uv_timer_t *t) {
    ef_cluster_client_t *cc = t->data;
    uint64_t now = uv_now(cc->loop);
    req_t *due = NULL, **tail = &due, *q;
    /* take the due ones out first: a retry may queue itself again */
    while (cc->retry && cc->retry->retry_at <= now) {
        q = cc->retry;
        cc->retry = q->rnext;
        q->rnext = NULL;
        q->queued = 0;
        *tail = q;
        tail = &q->rnext;
    }
    while ((q = due)) {
        due = q->rnext;
        q->rnext = NULL;
        if (dispatch(q) != 0 && retry_later(q) != 0)
            deliver(q, NULL, 0);
    }
    retry_arm(cc);
}

static void on_node_reply(ef_redis_t *r, redisReply *reply, void *arg);

/* Sends q to the node its slot (or its ASK) names.  0 when it is in
 * flight, -1 when that node is not ready (q is untouched). */
static int dispatch(req_t *q) {
    ef_cluster_client_t *cc = q->cc;
    node_t *n = NULL;
    if (q->asking) {
        n = node_get(cc, &q->ask_to, 0);
    } else if (q->slot >= 0) {
        int i = cc->have_map ? cc->map->owner[q->slot] : -1;
        n = i >= 0 ? cc->mnode[i] : NULL;
    } else {
        n = node_any(cc);
    }
    if (!n || !n->ready)
        return -1;
    if (q->asking && ef_redis_cmd(n->conn, NULL, NULL, 0, 1, (const char *[]){"ASKING"}, NULL) != 0)
        return -1;
    if (ef__redis_submit(n->conn, on_node_reply, q, q->timeout_ms, q->cmd, q->len, q->s) != 0)
        return -1;
    q->asking = 0;
    q->sent_to = n->addr;
    return 0;
}

static void log_redirect(ef_cluster_client_t *cc, const ef_cluster_redirect_t *rd) {
    uint64_t now = uv_now(cc->loop);
    if (cc->logged_at[rd->kind] && now - cc->logged_at[rd->kind] < 1000)
        return;
    cc->logged_at[rd->kind] = now;
    ef_info("redis %s: %s slot %d to %s:%d (redirects so far: MOVED %ld, ASK %ld)", cc->name,
            rd->kind == EF_CLUSTER_MOVED ? "MOVED" : "ASK", rd->slot, rd->to.host, rd->to.port,
            cc->st.moved, cc->st.ask);
}

/* A node answered q.  Redirections and transient cluster errors are
 * followed here; anything else is the caller's answer. */
static void on_node_reply(ef_redis_t *r, redisReply *reply, void *arg) {
    req_t *q = arg;
    ef_cluster_client_t *cc = q->cc;
    ef_cluster_redirect_t rd;
    char err[EF_ERR_LEN];
    (void)r;
    if (q->dead) {
        req_free(q);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ERROR) {
        deliver(q, reply, 0);
        return;
    }
    if (ef_cluster_redirect_parse(reply->str, reply->len, &rd, err) == 0 &&
        q->redirects < EF_CLUSTER_REDIRECTS_MAX) {
        q->redirects++;
        if (!rd.to.host[0])
            snprintf(rd.to.host, sizeof rd.to.host, "%s", q->sent_to.host);
        if (rd.kind == EF_CLUSTER_MOVED) {
            node_t *n = node_get(cc, &rd.to, 0);
            cc->st.moved++;
            if (n && n->ready && cc->have_map) {
                int i = ef_cluster_map_set_owner(cc->map, rd.slot, &rd.to);
                if (i >= 0)
                    cc->mnode[i] = n;
            }
            refresh_soon(cc, EF_CLUSTER_REFRESH_MIN_MS);
        } else {
            cc->st.ask++;
            q->asking = 1;
            q->ask_to = rd.to;
        }
        log_redirect(cc, &rd);
        /* the first redirections are followed at once; more (two nodes
         * that disagree while a slot changes hands) wait a backoff */
        if ((q->redirects <= 2 && dispatch(q) == 0) || retry_later(q) == 0)
            return;
    } else if ((strncmp(reply->str, "TRYAGAIN", 8) == 0 ||
                strncmp(reply->str, "CLUSTERDOWN", 11) == 0) &&
               retry_later(q) == 0) {
        if (reply->str[0] == 'C')
            refresh_soon(cc, EF_CLUSTER_REFRESH_MIN_MS);
        return;
    }
    deliver(q, reply, 0);
}

/* ---- The slot map ---- */

/* Makes the map read into cc->fresh the one in use: a connection for each
 * primary, the others (old primaries, seeds) closed. */
static void map_apply(ef_cluster_client_t *cc, const char *via) {
    ef_cluster_map_t *m = cc->fresh;
    int changed = !cc->have_map || m->nnodes != cc->map->nnodes ||
                  memcmp(m->owner, cc->map->owner, sizeof m->owner) != 0;
    node_t *n, *next;
    cc->fresh = cc->map;
    cc->map = m;
    cc->have_map = 1;
    memset(cc->mnode, 0, sizeof cc->mnode);
    for (int i = 0; i < m->nnodes; i++)
        cc->mnode[i] = node_get(cc, &m->nodes[i].addr, 0);
    for (n = cc->nodes; n; n = next) {
        int used = 0;
        next = n->next;
        if (n->sub || n->closing)
            continue;
        for (int i = 0; i < m->nnodes; i++)
            used |= cc->mnode[i] == n;
        if (!used)
            node_close(n);
    }
    if (changed)
        ef_info("redis %s: cluster map from %s: %d primaries, %d of %d slots served", cc->name, via,
                m->nnodes, m->covered, EF_CLUSTER_SLOTS);
    if (cc->subnode) {
        int kept = 0;
        for (int i = 0; i < m->nnodes; i++)
            kept |= addr_eq(&cc->subnode->addr, &m->nodes[i].addr);
        if (!kept)
            node_close(cc->subnode);
    }
    sub_renew(cc);
    update_ready(cc);
}

typedef struct {
    ef_cluster_client_t *cc;
    char host[EF_REDIS_HOST_LEN + 8];
} slots_ask_t;

static void on_slots(ef_redis_t *r, redisReply *reply, void *arg) {
    slots_ask_t *a = arg;
    ef_cluster_client_t *cc = a->cc;
    char err[EF_ERR_LEN];
    (void)r;
    cc->refreshing = 0;
    if (!cc->closing && reply) {
        if (ef_cluster_map_from_slots(reply, a->host, cc->fresh, err) == 0)
            map_apply(cc, a->host);
        else
            ef_warn("redis %s: %s", cc->name, err);
    }
    if (!cc->closing)
        refresh_soon(cc, cc->ready ? EF_CLUSTER_REFRESH_IDLE_MS : EF_CLUSTER_REFRESH_DOWN_MS);
    free(a);
}

/* A ready connection to ask the map of, rotating so that a node with a
 * stale view is not the only one asked; idle ones first (a connection
 * blocked in BLMOVE would hold the question behind it).  *busy says that
 * the one returned has commands pending.  NULL when none is ready. */
static node_t *node_to_ask(ef_cluster_client_t *cc, int *busy) {
    for (int pass = 0; pass < 2; pass++) {
        node_t *n = NULL;
        int count = 0, k;
        for (node_t *x = cc->nodes; x; x = x->next)
            count +=
                x->ready && !x->sub && !x->closing && (pass == 1 || ef_redis_pending(x->conn) == 0);
        k = count ? cc->next_asked++ % count : 0;
        for (node_t *x = cc->nodes; x && count && !n; x = x->next)
            if (x->ready && !x->sub && !x->closing &&
                (pass == 1 || ef_redis_pending(x->conn) == 0) && k-- == 0)
                n = x;
        if (n) {
            *busy = pass;
            return n;
        }
    }
    return NULL;
}

static void on_refresh_timer(uv_timer_t *t) {
    ef_cluster_client_t *cc = t->data;
    slots_ask_t *a;
    int busy = 0;
    node_t *n;
    if (cc->closing || cc->refreshing)
        return;
    n = node_to_ask(cc, &busy);
    if (!n) {
        /* nothing ready: make sure every seed is being tried */
        for (int i = 0; i < cc->url.nhosts; i++)
            node_get(cc, &cc->url.hosts[i], 0);
        refresh_soon(cc, EF_CLUSTER_REFRESH_DOWN_MS);
        return;
    }
    a = ef_calloc(1, sizeof *a);
    a->cc = cc;
    snprintf(a->host, sizeof a->host, "%s", n->addr.host);
    /* behind other commands (a BLMOVE perhaps), the answer may take their
     * time: a deadline past theirs, so as not to drop the connection */
    if (ef_redis_cmd(n->conn, on_slots, a,
                     busy ? EF_CLUSTER_SLOTS_BUSY_TIMEOUT_MS : EF_CLUSTER_SLOTS_TIMEOUT_MS, 2,
                     (const char *[]){"CLUSTER", "SLOTS"}, NULL) != 0) {
        free(a);
        refresh_soon(cc, EF_CLUSTER_REFRESH_DOWN_MS);
        return;
    }
    cc->refreshing = 1;
    cc->last_refresh = uv_now(cc->loop);
    cc->st.refreshes++;
}

/* Schedules a CLUSTER SLOTS in delay ms, not sooner than
 * EF_CLUSTER_REFRESH_MIN_MS after the last one, unless one is due sooner. */
static void refresh_soon(ef_cluster_client_t *cc, uint64_t delay) {
    uint64_t now = uv_now(cc->loop), at = now + delay, due;
    if (cc->closing || cc->refreshing)
        return;
    if (cc->last_refresh && at < cc->last_refresh + EF_CLUSTER_REFRESH_MIN_MS)
        at = cc->last_refresh + EF_CLUSTER_REFRESH_MIN_MS;
    due = uv_timer_get_due_in(&cc->refresh_timer);
    if (uv_is_active((uv_handle_t *)&cc->refresh_timer) && now + due <= at)
        return;
    uv_timer_start(&cc->refresh_timer, on_refresh_timer, at - now, 0);
}

/* Ready when the map covers every slot and every primary's connection is
 * ready; a change is told to the owner (and going down fails what is
 * pending, as a lost connection does). */
static void update_ready(ef_cluster_client_t *cc) {
    int ready = cc->have_map && cc->map->covered == EF_CLUSTER_SLOTS && !cc->closing;
    for (int i = 0; ready && i < cc->map->nnodes; i++)
        ready = cc->mnode[i] && cc->mnode[i]->ready;
    if (ready == cc->ready)
        return;
    cc->ready = ready;
    if (ready) {
        ef_info("redis %s: cluster ready: %d primaries", cc->name, cc->map->nnodes);
        cc->ever_ready = 1;
    } else {
        /* requests in flight on the other primaries keep going: failing
         * them would leave a BLMOVE's ref unclaimed; those on the lost node
         * get NULL from its connection */
        ef_warn("redis %s: cluster not ready (a primary is unreachable or slots are unserved); "
                "reading the map again",
                cc->name);
    }
    if (cc->o.on_state)
        cc->o.on_state(cc->owner, ready, cc->o.state_arg);
}

/* ---- Subscriptions ---- */

static void on_sub_message(ef_redis_t *r, redisReply *reply, void *arg) {
    sub_t *s = arg;
    (void)r;
    if (reply && s->cb) /* NULL: that connection closes; ours end in close */
        s->cb(s->owner, reply, s->arg);
}

/* Keeps one subscriber connection, on a primary of the map, subscribed to
 * every channel. */
static void sub_renew(ef_cluster_client_t *cc) {
    if (!cc->subs || cc->closing || !cc->have_map || cc->map->nnodes == 0)
        return;
    if (!cc->subnode)
        cc->subnode = node_get(cc, &cc->map->nodes[0].addr, 1);
    if (!cc->subnode || !cc->subnode->ready)
        return;
    for (sub_t *s = cc->subs; s; s = s->next)
        ef_redis_subscribe(cc->subnode->conn, s->channel, on_sub_message, s); /* -1: has it */
}

/* ---- API for ef_redis.c ---- */

int ef__cluster_create(ef_cluster_client_t **out, ef_redis_t *owner, uv_loop_t *loop,
                       const ef_redis_url_t *url, const ef_redis_opts_t *opts, const char *name) {
    ef_cluster_client_t *cc;
    if (url->nhosts < 1)
        return UV_EINVAL;
    cc = ef_calloc(1, sizeof *cc);
    cc->owner = owner;
    cc->loop = loop;
    cc->url = *url;
    cc->o = *opts;
    cc->o.name = NULL;
    snprintf(cc->name, sizeof cc->name, "%s", name ? name : "conn");
    cc->map = ef_calloc(1, sizeof *cc->map);
    cc->fresh = ef_calloc(1, sizeof *cc->fresh);
    uv_timer_init(loop, &cc->refresh_timer);
    uv_timer_init(loop, &cc->retry_timer);
    cc->refresh_timer.data = cc->retry_timer.data = cc;
    cc->nhandles = 2;
    for (int i = 0; i < url->nhosts; i++)
        node_get(cc, &url->hosts[i], 0);
    *out = cc;
    return 0;
}

static void on_timer_closed(uv_handle_t *h) {
    handle_gone(h->data);
}

void ef__cluster_close(ef_cluster_client_t *cc, void (*done)(void *arg), void *arg) {
    sub_t *s;
    node_t *n, *next;
    if (cc->closing)
        return;
    cc->closing = 1;
    cc->done = done;
    cc->done_arg = arg;
    cc->ready = 0;
    fail_live(cc);
    for (n = cc->nodes; n; n = next) { /* their callbacks to us fire here */
        next = n->next;
        node_close(n);
    }
    while ((s = cc->subs)) {
        ef_redis_reply_cb cb = s->cb;
        cc->subs = s->next;
        if (cb)
            cb(cc->owner, NULL, s->arg);
        free(s->channel);
        free(s);
    }
    uv_close((uv_handle_t *)&cc->refresh_timer, on_timer_closed);
    uv_close((uv_handle_t *)&cc->retry_timer, on_timer_closed);
}

int ef__cluster_ready(const ef_cluster_client_t *cc) {
    return cc->ready && !cc->closing;
}

size_t ef__cluster_pending(const ef_cluster_client_t *cc) {
    return cc->nlive;
}

long ef__cluster_rtt_us(const ef_cluster_client_t *cc) {
    long rtt = -1;
    for (node_t *n = cc->nodes; n; n = n->next) {
        long v = n->ready && !n->sub ? ef_redis_last_rtt_us(n->conn) : -1;
        if (v > rtt)
            rtt = v;
    }
    return rtt;
}

void ef__cluster_stats(const ef_cluster_client_t *cc, ef_redis_cluster_stats_t *out) {
    *out = cc->st;
}

int ef__cluster_submit(ef_cluster_client_t *cc, ef_redis_reply_cb cb, void *arg, int timeout_ms,
                       const char *cmd, size_t len, const ef_script_t *s, int near) {
    int slot = ef_cluster_cmd_slot(cmd, len);
    req_t *q;
    if (!ef__cluster_ready(cc))
        return -1;
    if (slot == EF_CLUSTER_CROSS_SLOT || slot == EF_CLUSTER_BAD_CMD) {
        ef_error("redis %s: refusing a command whose keys are %s: %.60s", cc->name,
                 slot == EF_CLUSTER_CROSS_SLOT ? "in different slots" : "unreadable",
                 len > 8 ? cmd + 4 : "");
        return -1;
    }
    q = ef_calloc(1, sizeof *q);
    q->cc = cc;
    q->cb = cb;
    q->arg = arg;
    q->timeout_ms = timeout_ms;
    q->cmd = ef_malloc(len);
    memcpy(q->cmd, cmd, len);
    q->len = len;
    q->s = s;
    q->slot = slot == EF_CLUSTER_NO_KEY && near >= 0 && near < EF_CLUSTER_SLOTS ? near : slot;
    if (dispatch(q) != 0) {
        req_free(q);
        return -1;
    }
    q->next = cc->live;
    if (cc->live)
        cc->live->prev = q;
    cc->live = q;
    cc->nlive++;
    return 0;
}

int ef__cluster_subscribe(ef_cluster_client_t *cc, const char *channel, ef_redis_reply_cb cb,
                          void *arg) {
    sub_t *s;
    if (!ef__cluster_ready(cc) || !channel || !cb)
        return -1;
    for (s = cc->subs; s; s = s->next)
        if (strcmp(s->channel, channel) == 0)
            return -1;
    s = ef_calloc(1, sizeof *s);
    s->owner = cc->owner;
    s->channel = ef_strdup(channel);
    s->cb = cb;
    s->arg = arg;
    s->next = cc->subs;
    cc->subs = s;
    sub_renew(cc);
    return 0;
}
