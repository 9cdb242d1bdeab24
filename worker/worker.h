// SPDX-License-Identifier: MIT
/*
 * The worker: takes chunks from one or more queues, asks each entity's
 * provider about it over HTTP, and records every outcome exactly once.
 *
 * One libuv loop.  Redis connections (lib/ef_redis): `cmd` for scripts and
 * heartbeats, and one `take` connection per queue blocked in BLMOVE from
 * farm:{Q}:pending to farm:{Q}:processing, so several queues are served
 * without starving any.  HTTP through lib/ef_http (curl multi on libuv).
 *
 * A taken chunk is claimed (chunk_claim.lua: lease, attempt count, skip of
 * entities already done, dead list after --max-attempts) and becomes an
 * ef_chunk_t holding one ef_task_t per entity.  A task walks the recipe's
 * steps; each request goes through its provider's ready queue (the
 * provider's concurrency cap, later its token bucket), and transient
 * failures wait in one retry heap driven by one timer.  Outcomes are sent
 * back in batches with chunk_ack.lua (at chunk end, or every second for a
 * slow chunk); an ack that fails is resent, which is harmless because the
 * script records each entity at most once.
 *
 * Prefetch: the worker keeps about 2 x --concurrency unresolved entities in
 * hand (chunks held plus claims in flight), so --concurrency requests are
 * in flight whenever there is work, and no more chunks than that are held.
 *
 * Control: a `sub` connection subscribes to each queue's control channel
 * (farm:{Q}:control), where job_pause, job_cancel, job_resume and
 * queue_pause publish.  A message stops the chunks concerned at once (see
 * the chunk's life below; control.c); after every (re)subscription the
 * worker re-reads the status of the jobs and queues it holds work for, so
 * a message missed while disconnected cannot leave a paused job running.
 *
 * Timers: one 1 s tick (heartbeat and registry pruning, reaper, queue
 * pause check as a backstop, partial acks, lease extension every
 * visibility/3), one retry timer, one drain timer.  States: running -> draining (SIGTERM/SIGINT: no new chunks,
 * in-flight requests finish within --grace, unfinished chunks are handed
 * back at once) -> stopped.  A second signal exits at once; leases bring
 * the work back.
 */
#ifndef EF_WORKER_H
#define EF_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "ef_calls.h"
#include "ef_common.h"
#include "ef_http.h"
#include "ef_keys.h"
#include "ef_recipe.h"
#include "ef_redis.h"
#include "ef_redis_url.h"

#define EF_WORKER_VISIBILITY_DEFAULT_S 60
#define EF_WORKER_MAX_ATTEMPTS_DEFAULT 5
#define EF_WORKER_CONCURRENCY_DEFAULT 16
#define EF_WORKER_GRACE_DEFAULT_S 30
#define EF_WORKER_TICK_MS 1000
#define EF_WORKER_TAKE_BLOCK_S 5        /* BLMOVE timeout; loops while idle */
#define EF_WORKER_ERROR_LOG_CAP 1000    /* entries kept in farm:{Q}:job:ID:errors */
#define EF_WORKER_PARTIAL_ACK_MS 1000   /* a slow chunk reports progress this often */
#define EF_WORKER_BACKOFF_BASE_MS 200
#define EF_WORKER_BACKOFF_MAX_MS 30000
#define EF_WORKER_REAP_BATCH 100
#define EF_WORKER_ORPHAN_SCAN 200
#define EF_WORKER_MAX_QUEUES 16

typedef struct ef_worker_s ef_worker_t;
typedef struct ef_chunk_s ef_chunk_t;
typedef struct ef_task_s ef_task_t;
typedef struct ef_claim_s ef_claim_t;
typedef struct ef_auth_s ef_auth_t;
typedef struct ef_notify_s ef_notify_t;
typedef struct ef_sink_s ef_sink_t;

/* ---- The chunk's life (chunk.c) ----
 *
 * A chunk ref taken with BLMOVE and claimed (chunk_claim.lua) becomes an
 * ef_chunk_t holding one ef_task_t per entity.  States only move forward,
 * in the order of this table (a stronger reason to stop wins: a parked
 * chunk whose job is then cancelled is dropped):
 *
 *   RUNNING --every entity recorded (the last ack closes it)--> freed
 *      |
 *      +--queue paused, draining------> REQUEUING --+
 *      +--job paused------------------> PARKING   --+--quiet--> RELEASING --> freed
 *      +--job cancelled, failed, gone--> DROPPING  --+   (chunk_release.lua)
 *      +--lease lost, redelivered to us--> LOST --quiet--> freed
 *
 * Only a RUNNING chunk starts requests.  Entering a stopping state purges
 * its queued tasks at once; answers of requests already in flight are
 * still recorded (except when LOST: the chunk is another worker's now).
 * "Quiet" means no request, cache lookup or ack in flight and every outcome
 * recorded; then the chunk is handed back, parked or dropped in one call. */
#define EF_CHUNK_STATE_MAP(X)                                                     \
    X(RUNNING, "running")     /* claimed; its tasks are at work */               \
    X(REQUEUING, "requeuing") /* back to pending when quiet (queue paused, drain) */ \
    X(PARKING, "parking")     /* to job:parked when quiet (job paused) */        \
    X(DROPPING, "dropping")   /* out of processing when quiet (job ended) */     \
    X(LOST, "lost")           /* forgotten when quiet; answers ignored */        \
    X(RELEASING, "releasing") /* chunk_release in flight */

typedef enum {
#define EF_CHUNK_STATE_ENUM(name, text) EF_CHUNK_##name,
    EF_CHUNK_STATE_MAP(EF_CHUNK_STATE_ENUM)
#undef EF_CHUNK_STATE_ENUM
} ef_chunk_state_t;

/* Where a task's outcome stands with chunk_ack.lua. */
typedef enum {
    EF_TASK_UNSENT = 0, /* no outcome yet, or not sent */
    EF_TASK_SENT,       /* in an ack in flight */
    EF_TASK_RECORDED,   /* recorded (by this delivery or an earlier one) */
} ef_task_ack_t;

/* One queue served by this worker. */
typedef struct {
    ef_worker_t *w;
    char name[EF_QUEUE_MAX_LEN + 1];
    ef_key_t k_pending, k_processing, k_leases, k_owners, k_dead, k_paused, k_stats, k_events,
        k_enqueuing;
    ef_redis_t *take;     /* dedicated connection for BLMOVE */
    int taking;           /* a BLMOVE is outstanding */
    int paused;           /* the queue is paused (seen in Redis) */
    int claims;           /* claims in flight */
    ef_claim_t *claiming; /* those claims, to apply control messages to */
    ef_key_t k_control;   /* control channel */
    uint64_t hold_until;  /* do not take before this (ms, monotonic) */
    long long client_id;  /* CLIENT ID of the take connection, to unblock it */
    ef_key_t k_notify;    /* completion webhooks to settle (notify.c) */
    int notify_scanning;  /* a ZRANGEBYSCORE of k_notify is in flight */
    /* counters flushed to farm:{Q}:stats on each tick */
    long st_requests, st_2xx, st_4xx, st_429, st_5xx, st_transport, st_retries;
} ef_wq_t;

/* One provider recipe and its dispatch state: its ready queue, its share
 * of the farm-wide token bucket, its wait timer. */
typedef struct {
    ef_worker_t *w;
    const ef_recipe_t *rc;
    cJSON *defaults;        /* {"provider": name}: template values every entity shares */
    size_t inflight;
    size_t nready;
    ef_task_t *ready_head, *ready_tail; /* tasks waiting for a request slot */
    ef_key_t k_bucket, k_waiters;
    long tokens;            /* granted by the bucket, not spent yet */
    int asking;             /* a ratelimit_take call is in flight */
    int waiting;            /* wait_timer is running */
    uint64_t paused_until;  /* after a 429 (monotonic ms), as this worker knows it */
    uint64_t free_until;    /* no rate: send without asking the bucket until then (monotonic ms) */
    long answered;          /* answers (not refused) since the last ratelimit_take call */
    long refused;           /* HTTP status of the last refusal (429, 503), for the log */
    uv_timer_t wait_timer;
    long long waits, granted;
    ef_auth_t *auth;        /* the recipe's OAuth2 token (auth.c), NULL without "auth" */
    ef_sink_t *sink;        /* the recipe's PostgreSQL sink (sink.c), NULL when none */
} ef_prov_t;

struct ef_task_s {
    ef_chunk_t *chunk;
    ef_task_t *next;        /* in a provider's ready queue */
    int index;              /* entity index in its chunk */
    cJSON *entity;
    cJSON *vars;            /* values saved by earlier steps, NULL until a step saves one */
    size_t step;
    int attempt;            /* transient failures of the current request */
    uint64_t due_ms;        /* retry time (monotonic) */
    char outcome;           /* '.' unresolved, else u c n e */
    ef_task_ack_t acked;
    int in_flight;
    int queued;             /* in a ready queue or the retry heap */
    int cache_checked;      /* the cache was asked for the current step */
    int cache_hits;         /* steps answered from the response cache */
    int requests;           /* provider requests sent for this entity */
    unsigned auth_gen;      /* which OAuth2 token the request in flight carries */
    int auth_retried;       /* the current request was refused (401) and sent again */
    int single;             /* batch step: asked alone from now on (its batch kept failing) */
    char *req_url;          /* the request in flight, kept to store its answer in the cache */
    char *req_body;
    char *fields;           /* flat JSON object of strings, or NULL */
    char **pairs;           /* its result hash pairs, flat (ef_ack_pairs_from), or NULL */
    size_t npairs;
    char *error;            /* reason for an error outcome, or NULL */
    char *result_key;       /* farm:{Q}:... result hash, or NULL */
    int sunk;               /* written to the recipe's sink (sink.c) */
};

struct ef_chunk_s {
    ef_chunk_t *prev, *next;
    ef_worker_t *w;
    ef_wq_t *q;
    ef_prov_t *prov;
    char ref[EF_JOB_ID_MAX_LEN + 24];
    char job_id[EF_JOB_ID_MAX_LEN + 1];
    long n;
    int dry_run;
    int attempt;            /* delivery number from chunk_claim */
    size_t ntasks;
    ef_task_t *tasks;
    size_t unresolved;      /* tasks without an outcome */
    size_t inflight;        /* tasks with a request in flight */
    ef_chunk_state_t state;
    int acking;             /* an ack is in flight */
    uint64_t last_ack_ms;
    uint64_t ack_retry_at;  /* after a failed ack, not before this (monotonic ms) */
    int ack_failures;
    int started;            /* its tasks were counted in w->unresolved */
    ef_key_t k_job, k_outcomes, k_results, k_errors, k_attempts, k_parked, k_dryrun;
    ef_call_keys_t ack_keys; /* chunk_ack's fixed keys, borrowed from the chunk and its queue */
};

/* A chunk ref being claimed: a control message that arrives before the
 * claim's answer is kept in `then`, the state the chunk starts in. */
struct ef_claim_s {
    ef_claim_t *prev, *next; /* in its queue's claiming list */
    ef_wq_t *q;
    char ref[EF_JOB_ID_MAX_LEN + 24];
    char job_id[EF_JOB_ID_MAX_LEN + 1];
    long n;
    ef_chunk_state_t then;
};

struct ef_worker_s {
    uv_loop_t *loop;
    ef_redis_url_t url;
    ef_redis_t *cmd;
    ef_redis_t *sub;         /* control channels (subscriber mode) */
    ef_http_t *http;
    ef_recipes_t *recipes;
    ef_prov_t *provs;
    size_t nprovs;
    size_t prov_rr;          /* round robin start for dispatch */
    ef_wq_t queues[EF_WORKER_MAX_QUEUES];
    size_t nqueues;
    char id[160];
    char host[128];
    char queues_csv[EF_WORKER_MAX_QUEUES * (EF_QUEUE_MAX_LEN + 1)];
    /* settings */
    int concurrency;
    int visibility_ms;
    int max_attempts;
    int grace_ms;
    int http_max_conns;
    /* completion webhooks (notify.c): the signing secret from the environment
     * (NULL: this worker sends none), per-attempt timeout, give-up time */
    char *notify_secret;
    size_t notify_secret_len;
    int notify_timeout_ms;
    long long notify_give_up_ms;
    ef_notify_t *notifies;   /* deliveries being claimed, sent or recorded */
    /* chunks in hand */
    ef_chunk_t *chunks;
    size_t nchunks;
    size_t unresolved;       /* unresolved tasks in every chunk held */
    size_t inflight;         /* HTTP requests in flight */
    /* retries: a binary heap on due_ms */
    ef_task_t **heap;
    size_t nheap, capheap;
    uv_timer_t retry_timer;
    uv_timer_t tick;
    uv_timer_t drain_timer;
    uv_signal_t sigterm, sigint, sighup;
    const char *providers_file;
    int ticks;
    int cmd_ready;
    int subscribed;          /* SUBSCRIBE sent for every queue (renewed by ef_redis) */
    int draining;
    int stopping;            /* closing handles */
    int exit_code;
    int64_t started_at;      /* ms */
    /* counters for the heartbeat */
    long long c_processed, c_errors, c_requests;
};

/* take.c */
void ef_worker_take_kick(ef_worker_t *w);
void ef_worker_take_queue(ef_wq_t *q);

/* chunk.c */
ef_chunk_t *ef_chunk_create(ef_wq_t *q, const char *ref, const char *job_id, long n);
int ef_chunk_load(ef_chunk_t *c, const char *ndjson, size_t len, const char *outcomes, size_t olen,
                  char *err);
void ef_chunk_attach(ef_chunk_t *c);
void ef_chunk_start(ef_chunk_t *c);
void ef_chunk_stop(ef_chunk_t *c, ef_chunk_state_t to, const char *why);
void ef_chunk_maybe_finish(ef_chunk_t *c);
void ef_chunk_free(ef_chunk_t *c);
const char *ef_chunk_state_name(ef_chunk_state_t s);
void ef_worker_acks_tick(ef_worker_t *w);
void ef_worker_release_all(ef_worker_t *w);
void ef_release_ref(ef_wq_t *q, const char *ref, long n, const char *job_id, const char *mode);

/* A chunk whose tasks may start requests. */
static inline int ef_chunk_working(const ef_chunk_t *c) { return c->state == EF_CHUNK_RUNNING; }

/* task.c */
void ef_worker_dispatch(ef_worker_t *w);
void ef_worker_retry_fire(uv_timer_t *t);
void ef_task_enqueue(ef_task_t *t);
/* Counts a provider's answer in the queue's stats (responses_2xx, ...). */
void ef_wq_count_status(ef_wq_t *q, long status);
void ef_chunk_purge(ef_chunk_t *c);
void ef_task_verdict(ef_task_t *t, ef_step_verdict_t v, cJSON *fields, const char *err,
                     long retry_after_ms);
void ef_task_requeue(ef_task_t *t);
uint64_t ef_task_backoff_ms(int attempt, long retry_after_ms);
void ef_task_retry(ef_task_t *t, uint64_t delay_ms);

/* batch.c */
int ef_batch_wants(const ef_task_t *t);
int ef_batch_send(ef_prov_t *p);
size_t ef_batch_requests(const ef_prov_t *p);
size_t ef_batch_hand(const ef_worker_t *w);

/* control.c */
int ef_control_create(ef_worker_t *w);
void ef_control_job(ef_wq_t *q, const char *job_id, const char *status);
void ef_control_queue(ef_wq_t *q, int paused);
void ef_control_resync(ef_wq_t *q);

/* ratelimit.c */
int ef_ratelimit_needed(const ef_prov_t *p);
void ef_ratelimit_ask(ef_prov_t *p);
long ef_ratelimit_answer(ef_prov_t *p, const ef_http_resp_t *resp);
void ef_ratelimit_register(ef_worker_t *w);
void ef_ratelimit_init(ef_worker_t *w);
void ef_ratelimit_close(ef_worker_t *w);

/* auth.c */
void ef_auth_init(ef_worker_t *w);
void ef_auth_close(ef_worker_t *w);
void ef_auth_free(ef_worker_t *w);
int ef_auth_ready(ef_prov_t *p);
const char *ef_auth_header(const ef_prov_t *p, unsigned *gen);
const char *ef_auth_error(const ef_prov_t *p);
int ef_auth_refused(ef_prov_t *p, ef_task_t *t);

/* cache.c */
int ef_cache_enabled(const ef_prov_t *p);
/* Looks the request up; fires done(t, status, body, len) or done(t, -1, NULL, 0) on a miss. */
typedef void (*ef_cache_cb)(ef_task_t *t, long status, const char *body, size_t len);
int ef_cache_get(ef_task_t *t, const char *method, const char *url, const char *body, size_t blen,
                 ef_cache_cb done);
void ef_cache_put(ef_task_t *t, const char *method, const char *url, const char *body, size_t blen,
                  long status, const char *resp, size_t rlen);

/* ack.c */
char **ef_ack_pairs_from(cJSON *fields, size_t *npairs);
void ef_chunk_ack(ef_chunk_t *c);
int ef_chunk_unsent(const ef_chunk_t *c);

/* sink.c: an ack batch's updated entities are written to the recipe's
 * sink before their outcomes are recorded (the chunk is acking meanwhile) */
int ef_sink_create(ef_prov_t *p, char *err);
void ef_sink_close(ef_sink_t *s);
int ef_sink_needed(const ef_chunk_t *c);
int ef_sink_write(ef_chunk_t *c);
size_t ef_sinks_held(const ef_worker_t *w); /* entities waiting to be written */

/* maint.c */
void ef_worker_tick(uv_timer_t *t);
void ef_worker_heartbeat(ef_worker_t *w);
void ef_worker_beat(ef_worker_t *w);
void ef_worker_register_providers(ef_worker_t *w);
void ef_worker_extend_leases(ef_worker_t *w);

/* notify.c */
void ef_notify_tick(ef_worker_t *w);
void ef_notify_free_all(ef_worker_t *w);

/* main.c */
void ef_worker_check_drained(ef_worker_t *w);
size_t ef_worker_wanted(const ef_worker_t *w);

#endif
