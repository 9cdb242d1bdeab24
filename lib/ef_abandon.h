// SPDX-License-Identifier: MIT
/*
 * Finding abandoned enqueues.  While a job is being enqueued its enqueuer
 * keeps a deadline in farm:{Q}:enqueuing (job_create, then every
 * job_append, including the empty ones it sends as heartbeats).  When the
 * deadline passes before job_seal, the enqueuer is gone (killed, partitioned)
 * and job_abandon.lua marks the job failed ("abandoned: ...").
 *
 * Every program can run the check, so it needs no worker: each worker's
 * reaper and statusd sweep their queues on a timer (ef_abandon_sweep), and
 * the enqueuer sweeps its queue before it creates a job
 * (ef_abandon_sweep_sync).  The script rechecks the deadline on Redis's
 * clock, so a caller whose clock is off, or two callers at once, can only
 * call it early or twice: both harmless.
 */
#ifndef EF_ABANDON_H
#define EF_ABANDON_H

#include <hiredis/hiredis.h>

#include "ef_keys.h"
#include "ef_redis.h"

#define EF_ABANDON_SWEEP_MAX 10  /* expired enqueues handled per queue per sweep */
#define EF_ABANDON_SWEEP_MS 1000 /* how often the daemons sweep */

/* Sends one sweep of queue on r: the enqueues whose deadline passed by
 * now_ms (Redis's clock where the caller knows it; 0 = this host's clock),
 * at most EF_ABANDON_SWEEP_MAX, then job_abandon for each; logs every job it
 * marks failed.  Returns 0 when sent, -1 when r is not ready or queue is not
 * a valid name. */
int ef_abandon_sweep(ef_redis_t *r, const char *queue, int64_t now_ms);

/* The same on a blocking connection, on Redis's clock (TIME).  Returns the
 * number of jobs marked failed, or -1 with err filled (a connection
 * error). */
int ef_abandon_sweep_sync(redisContext *c, const char *queue, char *err);

#endif
