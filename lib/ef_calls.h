// SPDX-License-Identifier: MIT
/*
 * Script calls, built in one place.  Every Lua script has one builder here
 * that takes its inputs by name (a queue and a job id, counts, a list of
 * chunks) and lays out KEYS and ARGV in the order the script's header
 * documents; nobody else writes a key or argument count.  The same call is
 * sent by every program: the enqueuer through ef_redis_sync_call(), statusd
 * through ef_sd_batch_call(), the worker through ef_redis_call().
 *
 * The layouts live in one table (ef_calls.c): each script's fixed keys and
 * fixed arguments by name, and what may follow them (repeated groups of
 * arguments, extra keys).  A builder pushes each key and argument under its
 * name; ef_call_finish() compares what was pushed with the table, so a
 * builder that drifts from its script is caught by the unit tests, and a
 * call that does not match is never sent (c->bad, with the reason in
 * c->err).  tests/unit/test_calls.c also reads each script's header and
 * checks that the table agrees with it.
 *
 * Ownership: a call owns the text it formats (numbers, key names) and
 * borrows the strings it is given (entity chunks, ids), which must live
 * until the call is sent.  Senders format the command at once, so the call
 * can be freed right after sending; ef_call_free() is always needed.
 */
#ifndef EF_CALLS_H
#define EF_CALLS_H

#include <stddef.h>

#include "ef_common.h"
#include "ef_keys.h"
#include "ef_script.h"
#include "ef_text.h"

typedef struct ef_call_layout_s ef_call_layout_t;

typedef struct {
    const char *p; /* borrowed text, or NULL when owned */
    size_t off;    /* owned text: offset in the call's text buffer */
    size_t len;    /* bytes */
} ef_call_slot_t;

typedef struct {
    const ef_script_t *script;
    int nkeys;         /* after ef_call_finish: argv[0 .. nkeys) are KEYS */
    int argc;          /* KEYS then ARGV */
    const char **argv; /* after ef_call_finish */
    size_t *lens;
    int bad;              /* the call does not match its layout: never sent */
    char err[EF_ERR_LEN]; /* why, when bad */
    /* private: the slots while building, the owned text */
    const ef_call_layout_t *layout;
    ef_call_slot_t *keys, *args;
    size_t nk, na, capk, capa;
    ef_buf_t text;
} ef_call_t;

/* One layout row: the names of the fixed keys and arguments, in order. */
struct ef_call_layout_s {
    const ef_script_t *script;
    const char *const *keys; /* NULL-terminated */
    const char *const *args; /* NULL-terminated */
    int extra_keys;          /* 1: more keys may follow the fixed ones */
    int group;               /* the arguments after the fixed ones: 0 none, n > 0
                              * groups of n, -1 a layout of their own (chunk_ack) */
};

extern const ef_call_layout_t ef_call_layouts[];
extern const size_t ef_call_layouts_count;
const ef_call_layout_t *ef_call_layout_of(const ef_script_t *s);

/* ---- Building by hand (the builders below use these) ---- */

void ef_call_init(ef_call_t *c, const ef_script_t *s);
/* Pushes a fixed key or argument under its layout name (checked). */
void ef_call_key(ef_call_t *c, const char *name, const char *value);
void ef_call_arg(ef_call_t *c, const char *name, const char *value);
void ef_call_arg_ll(ef_call_t *c, const char *name, long long value);
/* Pushes what follows the fixed part: a key (extra_keys layouts) or an
 * argument of a group (len may be (size_t)-1 for a C string). */
void ef_call_extra_key(ef_call_t *c, const char *value);
void ef_call_rest(ef_call_t *c, const char *value, size_t len);
void ef_call_rest_ll(ef_call_t *c, long long value);
/* Lays out argv/lens and checks the counts against the layout; 0, or -1
 * with c->bad set. */
int ef_call_finish(ef_call_t *c);
void ef_call_free(ef_call_t *c); /* accepts a zeroed call */

/* ---- Keys built once ----
 *
 * A caller that sends one script many times for the same queue and job
 * (the worker acks a chunk many times) may give the script's fixed keys
 * once, from keys it already keeps built, by name and in any order.  A
 * builder that is passed them borrows them instead of building every key
 * again; the order stays the one of the layout table. */

#define EF_CALL_KEYS_MAX 16 /* fixed keys of the longest layout, with room */

typedef struct {
    const ef_call_layout_t *layout;
    const char *key[EF_CALL_KEYS_MAX]; /* borrowed, in the layout's order; NULL: not given */
} ef_call_keys_t;

void ef_call_keys_init(ef_call_keys_t *ks, const ef_script_t *s);
/* Gives the fixed key named name (borrowed: it must outlive every call
 * built with ks).  0, or -1 when the script's layout has no such key. */
int ef_call_keys_set(ef_call_keys_t *ks, const char *name, const char *key);

/* ---- One builder per script; each returns c, finished ---- */

/* job_create: queue, id, provider and entity_type are strings.  The job
 * hash's extra fields every client may set are named (NULL or "": not
 * set; without notify_url job_create.lua applies the recipe's or the
 * queue's default); extra holds nextra further name/value pairs (2 * nextra
 * strings), sent after them. */
typedef struct {
    const char *queue, *id, *provider, *entity_type;
    int chunk_size;
    int dry_run, high_priority;
    const char *source;     /* where the entities came from: "stdin", "http", ... */
    const char *retry_of;   /* the job whose errored entities these are */
    const char *notify_url; /* the completion webhook */
    const char *const *extra;
    size_t nextra;
    int heartbeat_ttl_ms; /* the enqueue heartbeat deadline; 0: EF_ENQUEUE_HEARTBEAT_TTL_MS */
    int registry_apart;   /* 1 in a Redis Cluster: the queue's 5 keys only (one slot); the
                             caller checks farm:providers and SADDs farm:queues itself */
} ef_call_job_create_t;
ef_call_t *ef_call_job_create(ef_call_t *c, const ef_call_job_create_t *a);

/* In a Redis Cluster (registry_apart) job_create answers {created_at,
 * first}: first 1 while the queue is not registered, and then the caller
 * registers it with two commands, in this order: SADD <queues> QUEUE
 * (farm:queues' slot), then HSET <settings> EF_QUEUE_REGISTERED 1 (the
 * queue's slot: the mark that ends the first-ness; a caller that dies in
 * between leaves it unset, and the next job registers the queue).  The
 * test reads a hiredis reply and statusd's copy of one alike. */
#define EF_QUEUE_REGISTERED "registered"
#define EF_JOB_CREATE_FIRST(r)                                                            \
    ((r) && (r)->type == REDIS_REPLY_ARRAY && (r)->elements == 2 &&                     \
     (r)->element[1]->type == REDIS_REPLY_INTEGER && (r)->element[1]->integer == 1)
typedef struct {
    ef_key_t queues, settings;
} ef_queue_reg_keys_t;
void ef_queue_reg_keys(ef_queue_reg_keys_t *k, const char *queue);

/* job_append: chunks first .. first + n - 1 of a job still enqueuing. */
typedef struct {
    int count;        /* entities in data */
    const char *data; /* NDJSON, one entity a line (borrowed) */
    size_t len;
} ef_call_chunk_t;
/* ttl_ms: the enqueue heartbeat deadline; 0: EF_ENQUEUE_HEARTBEAT_TTL_MS. */
ef_call_t *ef_call_job_append(ef_call_t *c, const char *queue, const char *id, int ttl_ms,
                              long first, const ef_call_chunk_t *chunks, size_t n);
ef_call_t *ef_call_job_seal(ef_call_t *c, const char *queue, const char *id, long long total,
                            long chunks_total, long skipped);
ef_call_t *ef_call_job_discard(ef_call_t *c, const char *queue, const char *id);
ef_call_t *ef_call_job_abandon(ef_call_t *c, const char *queue, const char *id);
ef_call_t *ef_call_job_cancel(ef_call_t *c, const char *queue, const char *id);
ef_call_t *ef_call_job_pause(ef_call_t *c, const char *queue, const char *id);
ef_call_t *ef_call_job_resume(ef_call_t *c, const char *queue, const char *id);
ef_call_t *ef_call_queue_pause(ef_call_t *c, const char *queue, int paused);

/* The control verbs by name ("cancel", "pause", "resume"), for the
 * enqueuer and statusd alike; a bad call (never sent) for another verb. */
ef_call_t *ef_call_job_control(ef_call_t *c, const char *verb, const char *queue, const char *id);

/* chunk_claim: the chunk ref JOBID:N just moved to processing. */
typedef struct {
    const char *queue, *job_id, *ref, *worker_id;
    long n;
    int lease_ms, max_attempts, error_log_cap;
} ef_call_chunk_claim_t;
ef_call_t *ef_call_chunk_claim(ef_call_t *c, const ef_call_chunk_claim_t *a);
/* mode: requeue, retry, drop or unclaimed */
ef_call_t *ef_call_chunk_release(ef_call_t *c, const char *queue, const char *job_id, long n,
                                 const char *ref, const char *worker_id, const char *mode);
ef_call_t *ef_call_lease_extend(ef_call_t *c, const char *queue, const char *worker_id,
                                int lease_ms, const char *const *refs, size_t nrefs);
ef_call_t *ef_call_chunk_reap(ef_call_t *c, const char *queue, int max_requeue, int grace_ms,
                              int scan);
/* notify_claim: takes the delivery of job id's completion webhook for
 * lease_ms when it is due (scripts/notify_claim.lua). */
typedef struct {
    const char *queue, *id, *worker_id;
    long long lease_ms, recheck_ms, give_up_ms;
} ef_call_notify_claim_t;
ef_call_t *ef_call_notify_claim(ef_call_t *c, const ef_call_notify_claim_t *a);
/* notify_done: records an attempt's end: delivered, or an error and the
 * next attempt in retry_ms (scripts/notify_done.lua). */
typedef struct {
    const char *queue, *id, *worker_id;
    int delivered;
    const char *error; /* the attempt's error, NULL when delivered */
    long long retry_ms;
} ef_call_notify_done_t;
ef_call_t *ef_call_notify_done(ef_call_t *c, const ef_call_notify_done_t *a);

/* worker_beat: the farm-wide registry, no queue. */
ef_call_t *ef_call_worker_beat(ef_call_t *c, const char *worker_id, int ttl_ms);

/* chunk_ack: some entities of one chunk.  An entity with npairs > 0 and a
 * result_key writes its result hash. */
typedef struct {
    int index;                /* in the chunk, from 0 */
    char outcome;             /* an outcome character of EF_OUTCOME_MAP */
    const char *result_key;   /* NULL: no result hash */
    const char *const *pairs; /* 2 * npairs strings: field name, value */
    size_t npairs;
    const char *fields_json; /* the export's result object, NULL = none */
    const char *error;       /* NULL = none */
    const char *entity_id;
    int cached; /* answered from the cache */
} ef_call_ack_entity_t;
typedef struct {
    const char *queue, *job_id, *ref;
    long n;
    int error_log_cap;
    int keep; /* policy: 1 keep, 0 overwrite */
    /* optional, borrowed: the fixed keys and the queue's events channel
     * already built (every key given, or the call is bad); NULL: built here */
    const ef_call_keys_t *keys;
    const char *events;
} ef_call_chunk_ack_t;
ef_call_t *ef_call_chunk_ack(ef_call_t *c, const ef_call_chunk_ack_t *a,
                             const ef_call_ack_entity_t *e, size_t n);

/* per_seconds is written with %.6g */
ef_call_t *ef_call_ratelimit_take(ef_call_t *c, const char *provider, long want,
                                  const char *worker_id, long requests, double per_seconds,
                                  long burst, long answered);
/* ratelimit_penalty: the arguments of its header, by name. */
typedef struct {
    long long pause_ms;      /* Retry-After as a length (>= 0) */
    long long date_ms;       /* Retry-After as an HTTP-date, ms since the epoch; 0: none */
    long long cap_ms;        /* the longest pause */
    int cut;                 /* 1: a refusal (429, 503): cut the adaptive rate; 0: pause only */
} ef_call_penalty_t;
ef_call_t *ef_call_ratelimit_penalty(ef_call_t *c, const char *provider,
                                     const ef_call_penalty_t *a);

/* auth_lock: the provider's token, or its lock (refused: the token a 401
 * refused, NULL or "" for none). */
ef_call_t *ef_call_auth_lock(ef_call_t *c, const char *provider, const char *worker_id,
                             long long lock_ms, const char *refused);
/* auth_store: the arguments of its header, by name (strings borrowed). */
typedef struct {
    const char *worker_id;
    const char *token;    /* NULL or "": the fetch failed */
    long long life_ms;    /* the token's life left */
    int renew_pct;        /* renew at this share of the life */
    long long backoff_ms; /* the first backoff after a failure */
    long long backoff_max_ms;
    const char *error; /* why it failed, never a secret */
} ef_call_auth_store_t;
ef_call_t *ef_call_auth_store(ef_call_t *c, const char *provider, const ef_call_auth_store_t *a);

#endif
