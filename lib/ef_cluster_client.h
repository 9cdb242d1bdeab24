// SPDX-License-Identifier: MIT
/*
 * The Redis Cluster client behind ef_redis.h: an ef_redis_t made from a
 * redis+cluster:// URL is a router over one ordinary ef_redis_t per primary
 * (the same deadlines, heartbeat and reconnects), and ef_redis.c hands it
 * every formatted command.  Callers do not change; this header is for
 * ef_redis.c only.
 *
 * Slot map: CLUSTER SLOTS asked of any ready node (the seeds at first),
 * again at most every EF_CLUSTER_REFRESH_MIN_MS after a MOVED or a
 * CLUSTERDOWN, every EF_CLUSTER_REFRESH_DOWN_MS while not ready and every
 * EF_CLUSTER_REFRESH_IDLE_MS otherwise.  A connection is opened to each
 * primary of the map and closed when its node leaves the map (a failed
 * primary replaced by its replica).
 *
 * Ready: the map covers all 16384 slots and the connection to every primary
 * in it is ready.  A change fires on_state, and callers re-issue what they
 * need on on_state(1), as for one node.  Unlike one node, going down does
 * not fail the requests in flight on the primaries still up (a BLMOVE
 * failed here while it still ran there would strand the ref it takes):
 * they are answered normally; those on the lost node get NULL from its
 * connection.  The map is asked of an idle connection when there is one (a
 * blocked BLMOVE would hold the question), else with a deadline past a
 * BLMOVE's.
 *
 * Routing (ef_cluster_cmd_slot): a command goes to the primary owning the
 * slot of its keys; a command with no key to the first ready primary of the
 * map; keys in two slots are a programming error (logged, the call returns
 * -1).  Replies: MOVED: the slot's owner is updated when the target is a
 * known ready node, a refresh is scheduled, and the command is resent there
 * (or after a short wait); ASK: ASKING then the command on the target, map
 * unchanged; TRYAGAIN, CLUSTERDOWN: resent after a backoff
 * (EF_CLUSTER_RETRY_MIN_MS doubling, at most EF_CLUSTER_RETRIES_MAX times);
 * at most EF_CLUSTER_REDIRECTS_MAX redirections per command (an ASK answered
 * by TRYAGAIN on a half-migrated slot goes round several times), then the error
 * goes to the caller.  NOSCRIPT is each node's business: every node's
 * connection loads the scripts at connect and resends as EVAL.  Redirects
 * are counted (ef_redis_cluster_stats) and logged at info, at most one line
 * per second for each kind.
 *
 * Order: commands to one primary are answered in the order sent; commands
 * to different primaries in any order (a caller that pipelines keeps its
 * own index per command, as statusd's batches do).
 *
 * Keyless commands go to one primary, or to the owner of a key given with
 * them (ef_redis_cmd_near): a worker asks CLIENT ID, and at drain sends
 * CLIENT UNBLOCK, to the node that owns its queue, where its BLMOVE waits
 * (a queue whose slot moved since has its BLMOVE end by its block time).
 *
 * Subscriptions: a cluster forwards PUBLISH to every node, so one extra
 * connection, to the first primary of the map, subscribes; it moves to
 * another node when its own leaves the map.
 */
#ifndef EF_CLUSTER_CLIENT_H
#define EF_CLUSTER_CLIENT_H

#include "ef_redis.h"

#define EF_CLUSTER_REFRESH_MIN_MS 100
#define EF_CLUSTER_REFRESH_DOWN_MS 300
#define EF_CLUSTER_REFRESH_IDLE_MS 5000
#define EF_CLUSTER_SLOTS_TIMEOUT_MS 1000       /* CLUSTER SLOTS on an idle connection */
#define EF_CLUSTER_SLOTS_BUSY_TIMEOUT_MS 15000 /* behind other commands (a BLMOVE) */
#define EF_CLUSTER_REDIRECTS_MAX 16
#define EF_CLUSTER_RETRIES_MAX 8
#define EF_CLUSTER_RETRY_MIN_MS 20
#define EF_CLUSTER_RETRY_MAX_MS 1000

typedef struct ef_cluster_client_s ef_cluster_client_t;

/* Starts the router for owner (whose callbacks it fires).  0 or a negative
 * error; *out belongs to owner. */
int ef__cluster_create(ef_cluster_client_t **out, ef_redis_t *owner, uv_loop_t *loop,
                       const ef_redis_url_t *url, const ef_redis_opts_t *opts, const char *name);
/* Fails what is pending with NULL, ends subscriptions with NULL, closes
 * every connection; done fires once all are closed. */
void ef__cluster_close(ef_cluster_client_t *cc, void (*done)(void *arg), void *arg);
int ef__cluster_ready(const ef_cluster_client_t *cc);
size_t ef__cluster_pending(const ef_cluster_client_t *cc);
long ef__cluster_rtt_us(const ef_cluster_client_t *cc);
void ef__cluster_stats(const ef_cluster_client_t *cc, ef_redis_cluster_stats_t *out);
/* Routes a formatted command (cmd is copied); s is set for an EVALSHA of
 * that script; a command without keys goes to the owner of slot `near`
 * when it is a slot (0..16383), else to any primary.  0, or -1 without a
 * callback (not ready, cross-slot). */
int ef__cluster_submit(ef_cluster_client_t *cc, ef_redis_reply_cb cb, void *arg, int timeout_ms,
                       const char *cmd, size_t len, const ef_script_t *s, int near);
int ef__cluster_subscribe(ef_cluster_client_t *cc, const char *channel, ef_redis_reply_cb cb,
                          void *arg);

/* In ef_redis.c: sends a formatted command on one plain connection (cmd is
 * copied), s as for ef__cluster_submit. */
int ef__redis_submit(ef_redis_t *r, ef_redis_reply_cb cb, void *arg, int timeout_ms,
                     const char *cmd, size_t len, const ef_script_t *s);

#endif
