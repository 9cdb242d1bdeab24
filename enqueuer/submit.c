// SPDX-License-Identifier: MIT
/*
 * Submitting a job: create the job hash (status enqueuing), stream the
 * entities into chunks appended in pipelined batches, then seal the job,
 * which makes every chunk visible to workers at once.  Memory stays bounded
 * whatever the input size: one chunk being filled, one batch being built,
 * and hiredis's output buffer for the calls in flight.
 *
 * A bad record aborts the job (job_discard removes every trace of it) unless
 * --skip-invalid is given, in which case it is reported with its line and
 * skipped.  Either way nothing half-written is ever visible to workers.
 *
 * The job stays alive by time, whatever the input rate (`tail -f log |
 * enqueuer -` may run for hours): the input reader ticks every
 * EF_ENQ_TICK_MS, and so does the loop on fast input; complete chunks wait
 * at most EF_ENQ_FLUSH_MS before they are appended (the job's total shows
 * progress), and without any append for a sixth of the heartbeat TTL an
 * empty one goes out as a heartbeat.  Those calls wait for their reply, so
 * a job marked abandoned or removed meanwhile is noticed at once: the
 * enqueuer says so and exits 1.  Before it creates a job, the enqueuer also
 * marks its queue's abandoned enqueues failed (ef_abandon.h), so they are
 * found with no worker running.
 */
#include "enqueuer.h"

#include "ef_abandon.h"
#include "ef_job.h"
#include "ef_keys.h"
#include "ef_log.h"
#include "ef_redis_sync.h"
#include "ef_scripts_gen.h"
#include "ef_text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SKIP_REPORTS 100
/* Test only (docs/reliability.md): a shorter enqueue heartbeat TTL, in ms,
 * so tests of the heartbeat need not wait 30 s.  Ignored outside
 * 1000..EF_ENQUEUE_HEARTBEAT_TTL_MS. */
#define TEST_TTL_ENV "ENRICHFARM_TEST_ENQUEUE_TTL_MS"

typedef struct {
    ef_enq_t *st;
    char job_id[EF_JOB_ID_MAX_LEN + 1];
    /* the chunk being filled */
    ef_buf_t chunk;
    int chunk_count;
    /* the batch being built: its chunks (the bytes owned here) */
    ef_call_chunk_t *batch;
    int bchunks;
    size_t bbytes;
    long next_chunk;    /* index of the first chunk in the batch */
    long chunks_sent;   /* chunks handed to Redis */
    long long total;    /* entities in chunks handed to Redis or batched */
    int inflight;       /* append replies not read yet */
    int ttl_ms;         /* enqueue heartbeat TTL given to the scripts */
    uint64_t last_send; /* ef_mono_ms() of the last append sent */
    int created;        /* job_create succeeded */
    int lost;           /* the job is no longer enqueuing (abandoned, removed) */
    char err[EF_ERR_LEN];
    int failed;
} submit_t;

/* An append or seal refused because the job is gone or no longer
 * enqueuing (job_append / job_seal words): the job is lost. */
static int job_lost_reply(const char *msg) {
    return strstr(msg, "not enqueuing") != NULL || strstr(msg, "does not exist") != NULL;
}

static int heartbeat_ttl_ms(void) {
    const char *v = getenv(TEST_TTL_ENV);
    int64_t ms;
    if (v && ef_parse_i64(v, strlen(v), &ms) == 0 && ms >= 1000 &&
        ms <= EF_ENQUEUE_HEARTBEAT_TTL_MS)
        return (int)ms;
    return EF_ENQUEUE_HEARTBEAT_TTL_MS;
}

/* Reads one pending append reply; -1 (with s->err) when it failed. */
static int read_reply(submit_t *s) {
    redisReply *r = NULL;
    if (ef_redis_sync_get_reply(s->st->redis, &r) != 0 || !r) {
        ef_seterr(s->err, "redis: %s", s->st->redis->errstr[0] ? s->st->redis->errstr : "connection lost");
        s->failed = 1;
        s->inflight--;
        return -1;
    }
    s->inflight--;
    if (r->type == REDIS_REPLY_ERROR) {
        if (!s->failed)
            ef_seterr(s->err, "%s", strncmp(r->str, "ERR ", 4) == 0 ? r->str + 4 : r->str);
        if (job_lost_reply(r->str))
            s->lost = 1;
        s->failed = 1;
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

static int drain(submit_t *s) {
    int rc = 0;
    while (s->inflight > 0)
        if (read_reply(s) != 0)
            rc = -1;
    return rc;
}

static void batch_clear(submit_t *s) {
    for (int i = 0; i < s->bchunks; i++)
        free((char *)s->batch[i].data); /* the bytes of a closed chunk, owned here */
    s->bchunks = 0;
}

/* Sends the batch (possibly empty: a heartbeat) as one job_append call. */
static int send_batch(submit_t *s) {
    ef_call_t call;
    ef_call_job_append(&call, s->st->queue, s->job_id, s->ttl_ms, s->next_chunk, s->batch,
                       (size_t)s->bchunks);
    int rc = ef_redis_sync_call_append(s->st->redis, &call);
    ef_call_free(&call);
    s->next_chunk += s->bchunks;
    s->chunks_sent += s->bchunks;
    batch_clear(s);
    s->bbytes = 0;
    s->last_send = ef_mono_ms();
    if (rc != 0) {
        ef_seterr(s->err, "redis: %s", s->st->redis->errstr);
        s->failed = 1;
        return -1;
    }
    s->inflight++;
    if (s->inflight >= EF_ENQ_PIPELINE)
        return read_reply(s);
    return 0;
}

static int close_chunk(submit_t *s) {
    if (s->chunk_count == 0)
        return 0;
    s->batch[s->bchunks] = (ef_call_chunk_t){s->chunk_count, s->chunk.s, s->chunk.len};
    s->bbytes += s->chunk.len;
    s->bchunks++;
    ef_buf_init(&s->chunk); /* the batch owns the bytes now */
    s->chunk_count = 0;
    if (s->bchunks >= EF_ENQ_BATCH_CHUNKS || s->bbytes >= EF_ENQ_BATCH_BYTES)
        return send_batch(s);
    return 0;
}

static int add_entity(submit_t *s, const ef_entity_t *e) {
    if (s->chunk_count > 0)
        ef_buf_appendc(&s->chunk, '\n');
    ef_buf_append(&s->chunk, e->record, e->record_len);
    s->chunk_count++;
    s->total++;
    if (s->chunk_count >= s->st->chunk_size)
        return close_chunk(s);
    return 0;
}

/* Keeps the job alive by time: complete chunks waiting in the batch go out
 * once EF_ENQ_FLUSH_MS passed since the last append, an empty append (a
 * heartbeat) once a sixth of the TTL passed.  Either waits for every reply,
 * so a lost job is noticed here.  Returns -1 when the job is lost or Redis
 * failed (s->err says why). */
static int tick(submit_t *s) {
    uint64_t since;
    if (s->failed)
        return -1;
    if (!s->created)
        return 0;
    since = ef_mono_ms() - s->last_send;
    if ((s->bchunks > 0 && since >= EF_ENQ_FLUSH_MS) || since >= (uint64_t)s->ttl_ms / 6) {
        if (send_batch(s) != 0 || drain(s) != 0)
            return -1;
    }
    return 0;
}

static int idle_heartbeat(void *arg) {
    submit_t *s = arg;
    if (*s->st->interrupted)
        return 1;
    return tick(s) != 0;
}

/* Says why the job is lost, from its hash: status and error. */
static void report_lost(submit_t *s) {
    ef_key_t kjob;
    redisReply *r = ef_redis_sync_cmdf(s->st->redis, NULL, "HMGET %s status error",
                                 ef_key_job(&kjob, s->st->queue, s->job_id, EF_KEY_JOB));
    const char *status = NULL, *why = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        status = r->element[0]->str;
        why = r->element[1]->str;
    }
    if (status)
        fprintf(stderr, "enqueuer: job %s was lost while enqueuing: it is %s%s%s%s\n", s->job_id,
                status, why ? " (" : "", why ? why : "", why ? ")" : "");
    else
        fprintf(stderr, "enqueuer: job %s was lost while enqueuing: it was removed\n", s->job_id);
    fprintf(stderr, "enqueuer: nothing of job %s will run; enqueue the input again\n", s->job_id);
    freeReplyObject(r);
}

static void discard_job(submit_t *s) {
    char err[EF_ERR_LEN];
    redisReply *r;
    ef_call_t call;
    drain(s);
    r = ef_redis_sync_call(s->st->redis, ef_call_job_discard(&call, s->st->queue, s->job_id), err);
    ef_call_free(&call);
    if (!r)
        ef_error("could not discard job %s: %s (the reaper will mark it abandoned)", s->job_id, err);
    else if (r->type == REDIS_REPLY_ERROR)
        ef_error("could not discard job %s: %s", s->job_id, r->str);
    freeReplyObject(r);
}

/* The provider check before a job is made (ef_job_provider_check). */
static int check_provider(ef_enq_t *st, char *err) {
    ef_key_t k;
    redisReply *r = ef_redis_sync_cmdf(st->redis, NULL, "HKEYS %s", ef_key_global(&k, EF_KEY_PROVIDERS));
    int rc = 0;
    if (!r) {
        ef_seterr(err, "redis: %s", st->redis->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) { /* NOAUTH, NOPERM, WRONGTYPE */
        ef_seterr(err, "redis: %s (reading %s)", r->str, k.s);
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        const char **names = ef_calloc(r->elements, sizeof *names);
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_STRING)
                names[i] = r->element[i]->str;
        rc = ef_job_provider_check(st->provider, names, r->elements, err);
        free(names);
    }
    freeReplyObject(r);
    return rc;
}

int ef_enq_submit(ef_enq_t *st, ef_enq_source_fn src, void *ctx, const char *source_name,
                  const char *retry_of) {
    submit_t s;
    ef_entity_t e;
    char err[EF_ERR_LEN];
    long skipped = 0;
    int rc, exit_code = EF_ENQ_EXIT_ERROR;
    redisReply *r;

    memset(&s, 0, sizeof s);
    s.st = st;
    s.ttl_ms = heartbeat_ttl_ms();
    ef_buf_init(&s.chunk);
    s.batch = ef_calloc(EF_ENQ_BATCH_CHUNKS, sizeof *s.batch);

    if (st->input)
        ef_input_set_idle(st->input, EF_ENQ_TICK_MS, idle_heartbeat, &s);
    if (check_provider(st, err) != 0) {
        fprintf(stderr, "enqueuer: %s\n", err);
        goto out;
    }
    /* enqueues of this queue whose enqueuer died: failed now, even when no
     * worker runs (a connection error shows again at job_create) */
    ef_abandon_sweep_sync(st->redis, st->queue, err);
    /* the first good entity, before anything is written: empty input and a
     * bad first line leave Redis untouched */
    for (;;) {
        rc = src(ctx, &e, err);
        if (rc == 1)
            break;
        if (rc == 0) {
            fprintf(stderr, "enqueuer: %s: empty input: no entities%s\n", source_name,
                    skipped ? " (every record was invalid)" : "");
            goto out;
        }
        if (rc == EF_INPUT_BAD && st->skip_invalid) {
            if (++skipped <= MAX_SKIP_REPORTS)
                fprintf(stderr, "enqueuer: %s (skipped)\n", err);
            continue;
        }
        fprintf(stderr, "enqueuer: %s\n", err);
        if (rc == EF_INPUT_BAD)
            fprintf(stderr, "enqueuer: nothing was enqueued (use --skip-invalid to skip bad records)\n");
        exit_code = *st->interrupted ? EF_ENQ_EXIT_INTERRUPTED : EF_ENQ_EXIT_ERROR;
        goto out;
    }

    if (st->job_id)
        snprintf(s.job_id, sizeof s.job_id, "%s", st->job_id);
    else
        ef_job_id_new(s.job_id);

    {
        ef_call_t call;
        ef_call_job_create_t a = {.queue = st->queue,
                                  .id = s.job_id,
                                  .provider = st->provider,
                                  .entity_type = st->entity_type,
                                  .chunk_size = st->chunk_size,
                                  .dry_run = st->dry_run,
                                  .high_priority = st->high_priority,
                                  .source = source_name,
                                  .retry_of = retry_of,
                                  .notify_url = st->notify,
                                  .heartbeat_ttl_ms = s.ttl_ms,
                                  /* a cluster: one slot per script (see job_create.lua) */
                                  .registry_apart = ef_redis_sync_is_cluster(st->redis)};
        r = ef_redis_sync_call(st->redis, ef_call_job_create(&call, &a), err);
        ef_call_free(&call);
        if (!r) {
            fprintf(stderr, "enqueuer: %s\n", err);
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "enqueuer: %s (queue %s)\n", strncmp(r->str, "ERR ", 4) == 0 ? r->str + 4 : r->str, st->queue);
            freeReplyObject(r);
            goto out;
        }
        /* a cluster's job_create says whether the queue is registered
         * yet: if not, it goes into farm:queues here (another slot), then
         * is marked registered (its own slot: where the appends go) */
        int first = a.registry_apart && EF_JOB_CREATE_FIRST(r);
        freeReplyObject(r);
        if (first) {
            ef_queue_reg_keys_t kr;
            ef_queue_reg_keys(&kr, st->queue);
            r = ef_redis_sync_cmdf(st->redis, err, "SADD %s %s", kr.queues.s, st->queue);
            if (!r || r->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "enqueuer: warning: queue %s not added to %s (its next job tries again): %s\n",
                        st->queue, kr.queues.s, r ? r->str : err);
            } else {
                freeReplyObject(r);
                r = ef_redis_sync_cmdf(st->redis, err, "HSET %s %s 1", kr.settings.s,
                                       EF_QUEUE_REGISTERED);
            }
            freeReplyObject(r);
        }
        s.created = 1;
        s.last_send = ef_mono_ms();
    }

    /* stream */
    do {
        if (add_entity(&s, &e) != 0)
            break;
        for (;;) {
            rc = src(ctx, &e, err);
            if (rc != EF_INPUT_BAD || !st->skip_invalid)
                break;
            if (++skipped <= MAX_SKIP_REPORTS)
                fprintf(stderr, "enqueuer: %s (skipped)\n", err);
            else if (skipped == MAX_SKIP_REPORTS + 1)
                fprintf(stderr, "enqueuer: more invalid records skipped; counting only\n");
        }
        if (*st->interrupted) {
            ef_seterr(s.err, "interrupted");
            s.failed = 1;
            rc = EF_INPUT_FATAL;
        } else if (rc == 1 && s.total % EF_ENQ_TICK_ENTITIES == 0 && tick(&s) != 0) {
            rc = EF_INPUT_FATAL;
        }
    } while (rc == 1 && !s.failed);

    if (!s.failed && rc == 0) {
        if (close_chunk(&s) == 0 && s.bchunks > 0)
            send_batch(&s);
    }
    drain(&s);
    if (s.lost) {
        report_lost(&s);
        goto out;
    }
    if (s.failed || rc != 0) {
        const char *why = s.failed ? s.err : err;
        fprintf(stderr, "enqueuer: %s\n", why);
        discard_job(&s);
        fprintf(stderr, "enqueuer: job %s aborted; nothing was enqueued%s\n", s.job_id,
                rc == EF_INPUT_BAD ? " (use --skip-invalid to skip bad records)" : "");
        exit_code = *st->interrupted ? EF_ENQ_EXIT_INTERRUPTED : EF_ENQ_EXIT_ERROR;
        goto out;
    }

    {
        ef_call_t call;
        ef_call_job_seal(&call, st->queue, s.job_id, s.total, s.chunks_sent, skipped);
        r = ef_redis_sync_call(st->redis, &call, err);
        ef_call_free(&call);
        if (r && r->type == REDIS_REPLY_ERROR && job_lost_reply(r->str)) {
            freeReplyObject(r);
            report_lost(&s);
            goto out;
        }
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "enqueuer: sealing job %s failed: %s\n", s.job_id, r ? r->str : err);
            freeReplyObject(r);
            if (st->redis->err == 0)
                discard_job(&s);
            goto out;
        }
        freeReplyObject(r);
    }
    printf("%s\n", s.job_id);
    fflush(stdout);
    if (skipped)
        ef_info("job %s queued (total=%lld, skipped=%ld)", s.job_id, s.total, skipped);
    else
        ef_info("job %s queued (total=%lld)", s.job_id, s.total);
    exit_code = EF_ENQ_EXIT_OK;
    if (st->wait)
        exit_code = ef_enq_follow(st, s.job_id);
out:
    batch_clear(&s);
    free(s.batch);
    ef_buf_free(&s.chunk);
    return exit_code;
}

static int input_source(void *ctx, ef_entity_t *e, char *err) {
    return ef_input_next(ctx, e, err);
}

int ef_enq_submit_file(ef_enq_t *st, const char *path) {
    int fd;
    const char *name;
    ef_input_t *in;
    ef_input_format_t fmt = st->format;
    int rc;
    if (strcmp(path, "-") == 0) {
        fd = STDIN_FILENO;
        name = "stdin";
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "enqueuer: cannot open %s: %s\n", path, strerror(errno));
            return EF_ENQ_EXIT_ERROR;
        }
        name = path;
        if (!st->format_set) {
            size_t n = strlen(path);
            if (n > 4 && strcmp(path + n - 4, ".csv") == 0)
                fmt = EF_INPUT_CSV;
            else if ((n > 7 && strcmp(path + n - 7, ".ndjson") == 0) ||
                     (n > 6 && strcmp(path + n - 6, ".jsonl") == 0))
                fmt = EF_INPUT_NDJSON;
        }
    }
    in = ef_input_open_fd(fd, fmt, st->id_field, name);
    st->input = in; /* ef_enq_submit hooks its heartbeat on slow input */
    rc = ef_enq_submit(st, input_source, in, name, NULL);
    st->input = NULL;
    ef_input_free(in);
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}
