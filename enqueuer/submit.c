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
    ef_key_t kjob, kchunks, kenq, kjobs, kpending, kevents;
    /* the chunk being filled */
    ef_buf_t chunk;
    int chunk_count;
    /* the batch being built: (count, ndjson) pairs */
    char **bvals;
    size_t *blens;
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
    if (redisGetReply(s->st->redis, (void **)&r) != REDIS_OK || !r) {
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

/* Sends the batch (possibly empty: a heartbeat) as one job_append call. */
static int send_batch(submit_t *s) {
    int argc = 6 + s->bchunks * 2;
    const char **argv = ef_malloc(sizeof *argv * (size_t)argc);
    size_t *lens = ef_malloc(sizeof *lens * (size_t)argc);
    char ttl[24], first[24];
    snprintf(ttl, sizeof ttl, "%d", s->ttl_ms);
    snprintf(first, sizeof first, "%ld", s->next_chunk);
    argv[0] = s->kjob.s;
    argv[1] = s->kchunks.s;
    argv[2] = s->kenq.s;
    argv[3] = s->job_id;
    argv[4] = ttl;
    argv[5] = first;
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < s->bchunks * 2; i++) {
        argv[6 + i] = s->bvals[i];
        lens[6 + i] = s->blens[i];
    }
    int rc = ef_redis_sync_script_append(s->st->redis, &ef_script_job_append, 3, argc, argv, lens);
    free(argv);
    free(lens);
    for (int i = 0; i < s->bchunks * 2; i++)
        free(s->bvals[i]);
    s->next_chunk += s->bchunks;
    s->chunks_sent += s->bchunks;
    s->bchunks = 0;
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
    char num[16];
    if (s->chunk_count == 0)
        return 0;
    snprintf(num, sizeof num, "%d", s->chunk_count);
    s->bvals[s->bchunks * 2] = ef_strdup(num);
    s->blens[s->bchunks * 2] = strlen(num);
    s->bvals[s->bchunks * 2 + 1] = s->chunk.s;
    s->blens[s->bchunks * 2 + 1] = s->chunk.len;
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
    redisReply *r = redisCommand(s->st->redis, "HMGET %s status error", s->kjob.s);
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
    const char *argv[] = {s->kjob.s, s->kchunks.s, s->kjobs.s, s->kenq.s, s->job_id};
    char err[EF_ERR_LEN];
    redisReply *r;
    drain(s);
    r = ef_redis_sync_script(s->st->redis, &ef_script_job_discard, 4, 5, argv, NULL, err);
    if (!r)
        ef_error("could not discard job %s: %s (the reaper will mark it abandoned)", s->job_id, err);
    else if (r->type == REDIS_REPLY_ERROR)
        ef_error("could not discard job %s: %s", s->job_id, r->str);
    freeReplyObject(r);
}

static int check_provider(ef_enq_t *st, char *err) {
    ef_key_t k;
    redisReply *r = redisCommand(st->redis, "HKEYS %s", ef_key_global(&k, EF_KEY_PROVIDERS));
    int rc = 0;
    if (!r) {
        ef_seterr(err, "redis: %s", st->redis->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        int found = 0;
        ef_buf_t names;
        ef_buf_init(&names);
        for (size_t i = 0; i < r->elements; i++) {
            if (r->element[i]->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(r->element[i]->str, st->provider) == 0)
                found = 1;
            if (names.len < 400) {
                if (names.len)
                    ef_buf_appends(&names, ", ");
                ef_buf_appends(&names, r->element[i]->str);
            }
        }
        if (!found) {
            ef_seterr(err, "unknown provider '%s' (registered by workers: %s)", st->provider,
                      names.s);
            rc = -1;
        }
        ef_buf_free(&names);
    }
    freeReplyObject(r);
    return rc;
}

int ef_enq_submit(ef_enq_t *st, ef_enq_source_fn src, void *ctx, const char *source_name,
                  const char *const *extra, int nextra) {
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
    s.bvals = ef_calloc(EF_ENQ_BATCH_CHUNKS * 2, sizeof *s.bvals);
    s.blens = ef_calloc(EF_ENQ_BATCH_CHUNKS * 2, sizeof *s.blens);

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
    ef_key_job(&s.kjob, st->queue, s.job_id, EF_KEY_JOB);
    ef_key_job(&s.kchunks, st->queue, s.job_id, EF_KEY_JOB_CHUNKS);
    ef_key_queue(&s.kenq, st->queue, EF_KEY_ENQUEUING);
    ef_key_queue(&s.kjobs, st->queue, EF_KEY_JOBS);
    ef_key_queue(&s.kpending, st->queue, EF_KEY_PENDING);
    ef_key_queue(&s.kevents, st->queue, EF_KEY_EVENTS);

    {
        char cs[16], ttl[16];
        ef_key_t kqueues, kprovs;
        const char *argv[64];
        int argc = 0;
        snprintf(cs, sizeof cs, "%d", st->chunk_size);
        snprintf(ttl, sizeof ttl, "%d", s.ttl_ms);
        argv[argc++] = s.kjob.s;
        argv[argc++] = s.kjobs.s;
        argv[argc++] = s.kenq.s;
        argv[argc++] = ef_key_global(&kqueues, EF_KEY_QUEUES);
        argv[argc++] = ef_key_global(&kprovs, EF_KEY_PROVIDERS);
        argv[argc++] = s.job_id;
        argv[argc++] = st->queue;
        argv[argc++] = st->provider;
        argv[argc++] = st->entity_type ? st->entity_type : "entity";
        argv[argc++] = cs;
        argv[argc++] = st->dry_run ? "1" : "0";
        argv[argc++] = st->high_priority ? "high" : "normal";
        argv[argc++] = ttl;
        argv[argc++] = "source";
        argv[argc++] = source_name;
        for (int i = 0; i < nextra * 2 && argc < 62; i++)
            argv[argc++] = extra[i];
        r = ef_redis_sync_script(st->redis, &ef_script_job_create, 5, argc, argv, NULL, err);
        if (!r) {
            fprintf(stderr, "enqueuer: %s\n", err);
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "enqueuer: %s (queue %s)\n", strncmp(r->str, "ERR ", 4) == 0 ? r->str + 4 : r->str, st->queue);
            freeReplyObject(r);
            goto out;
        }
        freeReplyObject(r);
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
        char total[24], chunks[24], sk[24];
        const char *argv[] = {s.kjob.s, s.kpending.s, s.kenq.s, s.job_id, total, chunks, s.kevents.s, sk};
        snprintf(total, sizeof total, "%lld", s.total);
        snprintf(chunks, sizeof chunks, "%ld", s.chunks_sent);
        snprintf(sk, sizeof sk, "%ld", skipped);
        r = ef_redis_sync_script(st->redis, &ef_script_job_seal, 3, 8, argv, NULL, err);
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
    for (int i = 0; i < s.bchunks * 2; i++)
        free(s.bvals[i]);
    free(s.bvals);
    free(s.blens);
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
    rc = ef_enq_submit(st, input_source, in, name, NULL, 0);
    st->input = NULL;
    ef_input_free(in);
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}
