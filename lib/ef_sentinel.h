// SPDX-License-Identifier: MIT
/*
 * Redis Sentinel: finding the master of a redis+sentinel:// set, and the
 * replies that mean "this node is not (or no longer) the master".
 *
 * Resolution: each sentinel of the URL is asked in turn, with a short
 * timeout (EF_SENTINEL_TIMEOUT_MS for connect and answer),
 * `SENTINEL get-master-addr-by-name MASTER`; the first address given wins.
 * The caller then connects to it, authenticates with the data-node
 * credentials and checks `ROLE`: an answer other than "master" (a stale
 * sentinel, a node demoted since) is refused, and the set is asked again.
 * The event-loop client (ef_redis.c) runs the same steps without blocking;
 * the blocking tools use ef_sentinel_resolve_sync().
 *
 * Failover replies: READONLY (a write on a replica), UNBLOCKED (a blocking
 * command released because its node became a replica), LOADING (a node
 * still loading its data) and MASTERDOWN (a replica that lost its master)
 * all mean the connection points at the wrong node: every client treats
 * them as a lost connection and resolves again.
 */
#ifndef EF_SENTINEL_H
#define EF_SENTINEL_H

#include <hiredis/hiredis.h>

#include "ef_common.h"
#include "ef_redis_url.h"

#define EF_SENTINEL_TIMEOUT_MS 500 /* connect and answer, per sentinel */

/* 1 when a Redis error string is one of the failover replies above. */
int ef_sentinel_failover_error(const char *str);

/* Reads the answer of SENTINEL get-master-addr-by-name (a 2-element array
 * of host and port) into out.  0, or -1 with the reason in err (a nil
 * answer: the sentinel does not know that master). */
int ef_sentinel_addr_from_reply(const redisReply *reply, ef_redis_addr_t *out, char *err);

/* Checks the answer of ROLE: 0 when it says master, -1 with the role the
 * node claims in err otherwise. */
int ef_sentinel_role_check(const redisReply *reply, char *err);

/* Blocking resolution for the command-line tools: asks the sentinels of u
 * in turn and fills out with the master's address.  0, or -1 with every
 * sentinel's failure summed up in err. */
int ef_sentinel_resolve_sync(const ef_redis_url_t *u, ef_redis_addr_t *out, char *err);

#endif
