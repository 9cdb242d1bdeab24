// SPDX-License-Identifier: MIT
/*
 * The daemons' Redis connection: hiredis async on our own libuv adapter.
 *
 * Debian's hiredis 0.14 libuv adapter drops socket errors and has no command
 * timeouts, so this module drives hiredis itself: one uv_poll_t on the
 * socket, poll errors passed to hiredis, both handles closed before the
 * context is freed, a deadline on every command and a PING heartbeat.
 *
 * States: DISCONNECTED -> CONNECTING -> ([sentinel: resolve], AUTH, SELECT,
 * [sentinel: ROLE], SCRIPT LOAD) -> READY -> DISCONNECTED ...  The
 * connection reconnects by itself with capped exponential backoff and
 * jitter until ef_redis_close().  on_state fires once
 * per change between ready and not ready (and the module logs once per
 * change, not once per attempt).
 *
 * Deadlines: a command that is not answered within its deadline cannot be
 * cancelled in RESP, so a missed deadline (or a missed PING) drops the whole
 * connection: every pending callback fires with reply == NULL and the
 * connection starts again.  This is how a silent network partition is
 * noticed.  Blocking commands (BLMOVE) pass their block time plus a margin.
 *
 * Sentinel (a redis+sentinel:// URL): CONNECTING starts with a resolving
 * step.  Each sentinel is asked in turn (EF_SENTINEL_TIMEOUT_MS each)
 * SENTINEL get-master-addr-by-name; the first answer closes the sentinel's
 * socket and opens the master's, whose handshake adds ROLE after SELECT: a
 * node that is not a master fails the handshake like a bad password would
 * (logged once, backoff) and the set is asked again, from the next
 * sentinel.  A round in which no sentinel answered backs off like a failed
 * connect.  Every loss of the data node asks the set again: no connection
 * reuses an address it lost.  A second, plain connection to the first
 * sentinel (named NAME/sentinel) listens for +switch-master and drops the
 * data connection as soon as our master moves, rather than waiting for an
 * error; it closes with the object.
 *
 * Cluster (a redis+cluster:// URL): the object is a router over plain
 * connections, one per primary; see ef_cluster_client.h.
 *
 * Failover replies: READONLY, UNBLOCKED, LOADING and MASTERDOWN (see
 * ef_sentinel.h) to a command or a heartbeat take the connection down,
 * whatever the URL: that command and those queued behind it get NULL, as
 * on a disconnect, and the connection starts again (resolving again on a
 * Sentinel set).  A client never stays on a demoted node.  Other error
 * replies go to the caller and keep the connection.
 *
 * Callbacks: a call that returns an error never fires its callback;
 * otherwise the callback fires exactly once, never from inside the call that
 * issued it.  reply is NULL when the command could not be answered
 * (disconnect, deadline, close); it may be a REDIS_REPLY_ERROR; it is freed
 * when the callback returns (copy out what you keep).
 */
#ifndef EF_REDIS_H
#define EF_REDIS_H

#include <hiredis/hiredis.h>
#include <uv.h>

#include "ef_calls.h"
#include "ef_redis_url.h"
#include "ef_script.h"

typedef struct ef_redis_s ef_redis_t;

typedef void (*ef_redis_reply_cb)(ef_redis_t *r, redisReply *reply, void *arg);
/* ready: 1 READY, 0 no longer ready, -1 refused before ever being ready
 * (bad credentials, ACL permissions): retrying will not help. */
typedef void (*ef_redis_state_cb)(ef_redis_t *r, int ready, void *arg);

#define EF_REDIS_CONNECT_TIMEOUT_MS 2000
#define EF_REDIS_COMMAND_TIMEOUT_MS 5000
#define EF_REDIS_PING_INTERVAL_MS 1000
#define EF_REDIS_RTT_FRESH_MS 10000 /* a busy connection's PING, for its round trip */
#define EF_REDIS_BACKOFF_MIN_MS 100
#define EF_REDIS_BACKOFF_MAX_MS 5000
#define EF_REDIS_NO_DEADLINE (-1)

typedef struct {
    const char *name;          /* for log lines: "cmd", "take", "sub" */
    int connect_timeout_ms;    /* 0 = EF_REDIS_CONNECT_TIMEOUT_MS */
    int command_timeout_ms;    /* default deadline; 0 = EF_REDIS_COMMAND_TIMEOUT_MS */
    int ping_interval_ms;      /* 0 = EF_REDIS_PING_INTERVAL_MS; -1 = no heartbeat */
    int backoff_min_ms;        /* 0 = EF_REDIS_BACKOFF_MIN_MS */
    int backoff_max_ms;        /* 0 = EF_REDIS_BACKOFF_MAX_MS */
    int load_scripts;          /* SCRIPT LOAD every embedded script before READY */
    ef_redis_state_cb on_state;
    void *state_arg;
    /* Subscriber connections: fires with Redis's 3-element "subscribe"
     * confirmation (element[1] is the channel) each time a subscription
     * takes effect, after ef_redis_subscribe and after every reconnect.
     * Messages published before then were missed: re-read what they say. */
    ef_redis_reply_cb on_subscribed;
} ef_redis_opts_t;

/* Creates the connection object and starts connecting.  0 or a negative
 * error (bad options); *out is owned by the caller until ef_redis_close().
 * A redis+cluster:// URL makes a router over one connection per primary
 * (ef_cluster_client.h): the same API, commands routed by the slot of
 * their keys. */
int ef_redis_create(ef_redis_t **out, uv_loop_t *loop, const ef_redis_url_t *url,
                    const ef_redis_opts_t *opts);

/* Fails every pending callback with NULL, closes the handles and frees the
 * object; done (may be NULL) fires once everything is closed.  Accepts NULL. */
void ef_redis_close(ef_redis_t *r, void (*done)(void *arg), void *arg);

int ef_redis_ready(const ef_redis_t *r);
/* Commands sent and not yet answered. */
size_t ef_redis_pending(const ef_redis_t *r);
/* Round trip of the last heartbeat PING in microseconds, -1 when unknown
 * (in a cluster: the slowest primary's). */
long ef_redis_last_rtt_us(const ef_redis_t *r);

/* Cluster counters since creation; all 0 for one node. */
typedef struct {
    long moved;     /* MOVED answers followed */
    long ask;       /* ASK answers followed */
    long retries;   /* resends after TRYAGAIN, CLUSTERDOWN or a node not ready */
    long refreshes; /* CLUSTER SLOTS asked */
} ef_redis_cluster_stats_t;
void ef_redis_cluster_stats(const ef_redis_t *r, ef_redis_cluster_stats_t *out);

/* Sends a command built from argv (lens may be NULL for C strings).
 * timeout_ms: 0 = the default deadline, EF_REDIS_NO_DEADLINE = none.
 * Returns 0, or -1 when not ready (no callback then). */
int ef_redis_cmd(ef_redis_t *r, ef_redis_reply_cb cb, void *arg, int timeout_ms, int argc,
                 const char **argv, const size_t *lens);

/* ef_redis_cmd for a command without keys (CLIENT ID, CLIENT UNBLOCK) that
 * must reach the node owning `key` on a cluster (where that key's blocking
 * command waits); the same as ef_redis_cmd on one node. */
int ef_redis_cmd_near(ef_redis_t *r, const char *key, ef_redis_reply_cb cb, void *arg,
                      int timeout_ms, int argc, const char **argv);

/* printf-style form of ef_redis_cmd with the default deadline. */
int ef_redis_cmdf(ef_redis_t *r, ef_redis_reply_cb cb, void *arg, const char *fmt, ...);

/* Calls an embedded script with EVALSHA; a NOSCRIPT answer is resent as
 * EVAL transparently (the callback sees the final answer).  argv holds the
 * nkeys keys first, then the arguments. */
int ef_redis_script(ef_redis_t *r, const ef_script_t *s, ef_redis_reply_cb cb, void *arg,
                    int timeout_ms, int nkeys, int argc, const char **argv, const size_t *lens);

/* The same for a call made by an ef_calls builder (the caller still frees
 * it); -1 without a callback when the call does not match its layout. */
int ef_redis_call(ef_redis_t *r, const ef_call_t *call, ef_redis_reply_cb cb, void *arg,
                  int timeout_ms);

/* Puts the connection in subscriber mode on channel (call it on a connection
 * used for nothing else).  cb fires for every message with the 3-element
 * "message" reply, and after each reconnect the subscription is renewed by
 * itself (opts.on_subscribed tells when it has taken effect).  Heartbeat PINGs are not sent in subscriber mode; a
 * dropped socket is still noticed. */
int ef_redis_subscribe(ef_redis_t *r, const char *channel, ef_redis_reply_cb cb, void *arg);

#endif
