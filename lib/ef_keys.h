// SPDX-License-Identifier: MIT
/*
 * Every Redis key name enrichfarm uses is built here and nowhere else
 * (docs/redis.md documents each one).  Lua scripts receive their keys through
 * KEYS and never build a name.
 *
 * All keys of queue Q carry the hash tag {Q}, so each script touches one
 * cluster slot.  The public names (PRODUCT.md) are farm:{Q}:pending,
 * farm:{Q}:job:ID and farm:{Q}:jobs.  Callers validate queue names and job
 * ids (ef_queue_name_valid, ef_job_id_valid) before building a key.
 */
#ifndef EF_KEYS_H
#define EF_KEYS_H

#include <stddef.h>

#define EF_KEY_MAX 256 /* bytes: prefix + queue (64) + job id (64) + suffix */

typedef struct {
    char s[EF_KEY_MAX];
} ef_key_t;

/* Keys of a queue: farm:{Q}:<suffix> */
typedef enum {
    EF_KEY_PENDING = 0, /* LIST chunk refs JOBID:N, taken from the right */
    EF_KEY_PROCESSING,  /* LIST chunk refs held by some worker */
    EF_KEY_LEASES,      /* ZSET chunk ref -> lease deadline (ms) */
    EF_KEY_OWNERS,      /* HASH chunk ref -> worker id holding the lease */
    EF_KEY_DEAD,        /* LIST chunk refs that exceeded max attempts */
    EF_KEY_PAUSED,      /* STRING present while the queue is paused */
    EF_KEY_JOBS,        /* ZSET job id -> created_at (ms) */
    EF_KEY_ENQUEUING,   /* ZSET job id -> enqueuer heartbeat deadline (ms) */
    EF_KEY_STATS,       /* HASH queue-wide counters for metrics */
    EF_KEY_EVENTS,      /* pub/sub channel of job progress events */
    EF_KEY_CONTROL,     /* pub/sub channel of control messages to workers (pause, cancel) */
    EF_KEY_NOTIFY,      /* ZSET job id -> when a sender next looks at its webhook (ms) */
    EF_KEY_SETTINGS,    /* HASH queue settings: notify_url (the queue's default webhook), registered */
    EF_KEY_QUEUE_COUNT_
} ef_key_queue_kind_t;

/* Keys of a job: farm:{Q}:job:ID[:<suffix>] */
typedef enum {
    EF_KEY_JOB = 0,    /* HASH the job (public) */
    EF_KEY_JOB_CHUNKS, /* HASH chunk number -> NDJSON entities */
    EF_KEY_JOB_OUTCOMES, /* HASH chunk number -> one outcome char per entity */
    EF_KEY_JOB_ATTEMPTS, /* HASH chunk number -> deliveries so far */
    EF_KEY_JOB_ERRORS, /* LIST capped error log, JSON objects, newest first */
    EF_KEY_JOB_PARKED, /* LIST chunk refs set aside while the job is paused */
    EF_KEY_JOB_RESULTS, /* HASH "N:i" -> JSON of extracted fields (dry run, export) */
    EF_KEY_JOB_DRYRUN, /* HASH "RESULTKEY<TAB>FIELD" -> value a dry run under keep would have set */
    EF_KEY_JOB_COUNT_
} ef_key_job_kind_t;

/* Global keys (not tied to one queue) */
typedef enum {
    EF_KEY_QUEUES = 0, /* SET of queue names that ever had a job */
    EF_KEY_WORKERS,    /* ZSET worker id -> last heartbeat (ms) */
    EF_KEY_PROVIDERS,  /* HASH provider name -> JSON summary of its recipe (no secrets) */
    EF_KEY_GLOBAL_COUNT_
} ef_key_global_kind_t;

/* The worker registry (farm:workers, farm:worker:ID): each worker refreshes
 * its entries every second; one whose last heartbeat is older than this on
 * Redis's clock is dead.  worker_beat prunes it from farm:workers, its
 * farm:worker:ID hash expires, and statusd neither lists nor counts it. */
#define EF_WORKER_HEARTBEAT_TTL_MS 10000

const char *ef_key_queue(ef_key_t *k, const char *queue, ef_key_queue_kind_t kind);
const char *ef_key_job(ef_key_t *k, const char *queue, const char *job_id, ef_key_job_kind_t kind);
const char *ef_key_global(ef_key_t *k, ef_key_global_kind_t kind);
/* farm:worker:ID, HASH heartbeat with a TTL */
const char *ef_key_worker(ef_key_t *k, const char *worker_id);
/* farm:ratelimit:{P}, HASH token bucket of provider P */
const char *ef_key_ratelimit(ef_key_t *k, const char *provider);
/* farm:ratelimit:{P}:waiters, ZSET worker id -> last ask (ms), for fair shares */
const char *ef_key_ratelimit_waiters(ef_key_t *k, const char *provider);
/* farm:auth:{P}, HASH provider P's OAuth2 access token, its expiry and the
 * lock of the one worker renewing it (never the client secret) */
const char *ef_key_auth(ef_key_t *k, const char *provider);
/* farm:cache:{P}:<hex digest>, STRING a cached provider response */
const char *ef_key_cache(ef_key_t *k, const char *provider, const char *digest_hex);

/* A chunk reference "JOBID:N" as stored on the lists; returns its length. */
size_t ef_chunk_ref(char *buf, size_t len, const char *job_id, long chunk);
/* Splits a chunk reference; 0 on success, -1 when malformed. */
int ef_chunk_ref_parse(const char *ref, size_t len, char *job_id, size_t job_id_len, long *chunk);

#endif
