// SPDX-License-Identifier: MIT
/*
 * Blocking Redis access for the command-line tools (the enqueuer and its
 * admin verbs).  Daemons use the event-loop client instead.
 *
 * ef_redis_sync_connect() connects (TCP or unix socket), authenticates,
 * selects the database and applies a command timeout.  The embedded Lua
 * scripts are not loaded ahead: a script's first call on a connection is
 * an EVAL with its body (Redis keeps it), the later ones EVALSHA, so a
 * program that connects once per job spends no round trip on scripts.  A
 * NOSCRIPT answer (Redis restarted, SCRIPT FLUSH) sends the call again
 * with its body, a pipelined one on a side connection; an ACL that
 * refuses EVAL gets SCRIPT LOAD, then EVALSHA.
 *
 * A redis+sentinel:// URL is resolved first (ef_sentinel_resolve_sync: each
 * sentinel in turn, short timeouts) and the node is checked with ROLE after
 * AUTH and SELECT: a replica is refused.  A failover reply to a command
 * (READONLY, UNBLOCKED, LOADING, MASTERDOWN) comes back as NULL with the
 * context's err set, like a lost connection, so a caller that reconnects on
 * a lost connection (enqueuer --wait) resolves the master again.
 *
 * A redis+cluster:// URL connects to the first seed that answers and asks
 * it for the slot map (CLUSTER SLOTS; without it, MOVED answers fill the
 * map).  Every command run through these functions (not raw redisCommand)
 * goes to the node of its keys' slot by that map, unless replies are
 * pending on the connection, and follows the cluster: MOVED records the
 * slot's node and moves the connection there (a new
 * connection swapped into the same redisContext, so the caller's pointer
 * stays valid), ASK runs ASKING and the command on a short connection to
 * the target, TRYAGAIN and CLUSTERDOWN are resent after a backoff; at most
 * EF_REDIS_SYNC_REDIRECTS_MAX times, then the error is the answer.  Script
 * calls appended to a pipeline (ef_redis_sync_call_append) and read with
 * ef_redis_sync_get_reply() are followed too: a redirected one is resent
 * on a side connection (ASKING first for an ASK), and after a MOVED the
 * connection moves once the pipeline is drained.  Raw redisAppendCommand
 * and redisGetReply are not followed.
 *
 * rediss:// (and rediss+sentinel://, for the sentinels and the master, and
 * rediss+cluster://, for every node a cluster connection reaches) goes
 * through ef_tls_sync.h: the context hiredis gets is on a socketpair, and a
 * TLS failure is reported by the connect call in words that name TLS.
 * Free a context with ef_redis_sync_free(), never redisFree().
 */
#ifndef EF_REDIS_SYNC_H
#define EF_REDIS_SYNC_H

#include <hiredis/hiredis.h>

#include "ef_calls.h"
#include "ef_common.h"
#include "ef_redis_url.h"
#include "ef_script.h"

#define EF_REDIS_SYNC_REDIRECTS_MAX 5

redisContext *ef_redis_sync_connect(const char *url, int timeout_ms, char *err);
/* Accepts NULL; frees the context's own state and every connection it
 * keeps too (use it, not redisFree). */
void ef_redis_sync_free(redisContext *c);

/* A redis+cluster:// connection? */
int ef_redis_sync_is_cluster(const redisContext *c);

typedef struct {
    long moved, ask, retries;
    long routed; /* moves made by the slot map before sending, no redirection */
} ef_redis_sync_stats_t;
/* Redirections followed and moves made so far (all 0 off a cluster). */
void ef_redis_sync_stats(const redisContext *c, ef_redis_sync_stats_t *out);

/* printf-style command (redisCommand's format), following the cluster. */
redisReply *ef_redis_sync_cmdf(redisContext *c, char *err, const char *fmt, ...);

/* Runs a script and returns its reply (caller frees with freeReplyObject),
 * or NULL on a connection error (err says why).  argv holds the keys first
 * (nkeys of them), then the arguments; lens may be NULL for C strings. */
redisReply *ef_redis_sync_script(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                 const char **argv, const size_t *lens, char *err);

/* Queues a script call without waiting (EVAL when it is the script's first
 * on the connection, else EVALSHA); read its reply later with
 * ef_redis_sync_get_reply(), never redisGetReply(). */
int ef_redis_sync_script_append(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                const char **argv, const size_t *lens);

/* Queues a command built from argv (keys of one slot) the same way: read
 * its reply with ef_redis_sync_get_reply().  0, or -1. */
int ef_redis_sync_cmd_append(redisContext *c, int argc, const char **argv, const size_t *lens);

/* Reads the next reply of a pipeline (redisGetReply's contract: 0, or -1
 * with c->errstr set), following a cluster's redirections and NOSCRIPT of
 * the calls appended with ef_redis_sync_script_append / _call_append. */
int ef_redis_sync_get_reply(redisContext *c, redisReply **out);

/* The same for a call made by an ef_calls builder (the caller still frees
 * it); a call that does not match its layout is not sent (NULL or -1). */
redisReply *ef_redis_sync_call(redisContext *c, const ef_call_t *call, char *err);
int ef_redis_sync_call_append(redisContext *c, const ef_call_t *call);

/* Runs a command built from argv; same ownership as above. */
redisReply *ef_redis_sync_cmd(redisContext *c, char *err, int argc, const char **argv,
                              const size_t *lens);

#endif
