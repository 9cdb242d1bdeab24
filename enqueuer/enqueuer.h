// SPDX-License-Identifier: MIT
/*
 * The enqueuer: submits a file of entities as a job (submit.c), follows a
 * job's progress (follow.c) and runs the admin verbs (admin.c).  One state
 * struct, built by main.c from the flags, is passed to each.
 *
 * Exit statuses: 0 success; 1 bad usage, bad input or a Redis error; 2 the
 * followed job failed; 3 it was cancelled; 130 interrupted by a signal.
 */
#ifndef EF_ENQUEUER_H
#define EF_ENQUEUER_H

#include <hiredis/hiredis.h>
#include <signal.h>

#include "ef_common.h"
#include "ef_input.h"
#include "ef_job.h"

#define EF_ENQ_EXIT_OK 0
#define EF_ENQ_EXIT_ERROR 1
#define EF_ENQ_EXIT_FAILED 2
#define EF_ENQ_EXIT_CANCELLED 3
#define EF_ENQ_EXIT_NOTHING 4 /* retry-errors: the job has no errored entity */
#define EF_ENQ_EXIT_INTERRUPTED 130

#define EF_CHUNK_SIZE_DEFAULT EF_JOB_CHUNK_SIZE_DEFAULT
#define EF_CHUNK_SIZE_MAX EF_JOB_CHUNK_SIZE_MAX
#define EF_ENQ_BATCH_CHUNKS 64           /* chunks per append call */
#define EF_ENQ_BATCH_BYTES (512u * 1024) /* bytes per append call */
#define EF_ENQ_PIPELINE 8                /* append calls in flight */
#define EF_ENQ_TICK_MS 250               /* the input reader's tick (submit.c) */
#define EF_ENQ_TICK_ENTITIES 64          /* on fast input, a tick every this many entities */
#define EF_ENQ_FLUSH_MS 1000             /* complete chunks wait at most this long */
#define EF_ENQ_EXTRA_MAX 8               /* extra job-hash fields a submit may add */
#define EF_ENQ_REDIS_TIMEOUT_MS 30000

typedef struct {
    /* flags */
    const char *redis_url;
    const char *queue;
    const char *provider;
    const char *entity_type;
    const char *job_id;
    const char *id_field;
    const char *output;
    const char *status_filter;
    const char *notify; /* --notify URL: the job's completion webhook */
    int chunk_size;
    int dry_run;
    int high_priority;
    int format_set;
    ef_input_format_t format;
    int wait;
    int skip_invalid;
    int json;
    int quiet;
    int limit;
    /* runtime */
    redisContext *redis;
    ef_input_t *input; /* the file being submitted, when there is one */
    volatile sig_atomic_t *interrupted;
} ef_enq_t;

/* A source of entities for a new job: the input parser, or the errored
 * entities of an earlier job.  Returns like ef_input_next(). */
typedef int (*ef_enq_source_fn)(void *ctx, ef_entity_t *e, char *err);

/* Creates a job from src, prints its id on stdout; returns an exit status.
 * extra holds field/value pairs stored on the job (npairs * 2 strings). */
int ef_enq_submit(ef_enq_t *st, ef_enq_source_fn src, void *ctx, const char *source_name,
                  const char *const *extra, int nextra);
int ef_enq_submit_file(ef_enq_t *st, const char *path);

/* Follows a job until it ends; returns the exit status for its end. */
int ef_enq_follow(ef_enq_t *st, const char *job_id);

/* Admin verbs; argv[0] is the verb.  Returns an exit status. */
int ef_enq_admin(ef_enq_t *st, int argc, char **argv);
int ef_enq_is_verb(const char *s);

/* Fetches HGETALL of the job into a JSON object (NULL when missing). */
struct cJSON *ef_enq_job_json(ef_enq_t *st, const char *job_id, char *err);

#endif
