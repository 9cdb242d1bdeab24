// SPDX-License-Identifier: MIT
/*
 * Blocking Redis access for the command-line tools (the enqueuer and its
 * admin verbs).  Daemons use the event-loop client instead.
 *
 * ef_redis_sync_connect() connects (TCP or unix socket), authenticates,
 * selects the database, applies a command timeout and loads every embedded
 * Lua script with SCRIPT LOAD, checking that Redis computed the same SHA1 as
 * the build did.  Scripts are then called with EVALSHA; a NOSCRIPT answer
 * (Redis restarted or flushed its script cache) is retried once with EVAL.
 *
 * A redis+sentinel:// URL is resolved first (ef_sentinel_resolve_sync: each
 * sentinel in turn, short timeouts) and the node is checked with ROLE after
 * AUTH and SELECT: a replica is refused.  A failover reply to a command
 * (READONLY, UNBLOCKED, LOADING, MASTERDOWN) comes back as NULL with the
 * context's err set, like a lost connection, so a caller that reconnects on
 * a lost connection (enqueuer --wait) resolves the master again.
 * redis+cluster:// is refused with ef_redis_url_supported()'s words.
 *
 * rediss:// (and rediss+sentinel://, for the sentinels and the master) goes
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

redisContext *ef_redis_sync_connect(const char *url, int timeout_ms, char *err);
void ef_redis_sync_free(redisContext *c);

/* Runs a script and returns its reply (caller frees with freeReplyObject),
 * or NULL on a connection error (err says why).  argv holds the keys first
 * (nkeys of them), then the arguments; lens may be NULL for C strings. */
redisReply *ef_redis_sync_script(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                 const char **argv, const size_t *lens, char *err);

/* Queues a script call without waiting (EVALSHA only: the scripts were
 * loaded at connect); read its reply later with redisGetReply(). */
int ef_redis_sync_script_append(redisContext *c, const ef_script_t *s, int nkeys, int argc,
                                const char **argv, const size_t *lens);

/* The same for a call made by an ef_calls builder (the caller still frees
 * it); a call that does not match its layout is not sent (NULL or -1). */
redisReply *ef_redis_sync_call(redisContext *c, const ef_call_t *call, char *err);
int ef_redis_sync_call_append(redisContext *c, const ef_call_t *call);

/* Runs a command built from argv; same ownership as above. */
redisReply *ef_redis_sync_cmd(redisContext *c, char *err, int argc, const char **argv,
                              const size_t *lens);

#endif
