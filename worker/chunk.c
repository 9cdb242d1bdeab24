// SPDX-License-Identifier: MIT
/*
 * The worker's chunk, from claim to goodbye (the states are drawn in
 * worker.h).  take.c creates a chunk from a claim's answer and starts it;
 * task.c runs its tasks; ack.c records their outcomes; control messages,
 * lost leases, drains and ack answers stop it with ef_chunk_stop.  Here a
 * chunk is created, loaded, started and stopped, and when it is quiet
 * ef_chunk_maybe_finish decides its end: freed once every entity is
 * recorded, or handed back, parked or dropped with chunk_release.lua.
 */
#include "worker.h"

#include "ef_calls.h"
#include "ef_job.h"
#include "ef_log.h"
#include "ef_scripts_gen.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
#define EF_CHUNK_STATE_NAME(name, text) text,
    EF_CHUNK_STATE_MAP(EF_CHUNK_STATE_NAME)
#undef EF_CHUNK_STATE_NAME
};

const char *ef_chunk_state_name(ef_chunk_state_t s) {
    return (size_t)s < EF_ARRAY_LEN(state_names) ? state_names[s] : "?";
}

/* ---- Creation ---- */

/* A new chunk of queue q, RUNNING, not yet loaded nor in the worker's list;
 * the caller owns it (ef_chunk_free). */
ef_chunk_t *ef_chunk_create(ef_wq_t *q, const char *ref, const char *job_id, long n) {
    ef_chunk_t *c = ef_calloc(1, sizeof *c);
    c->w = q->w;
    c->q = q;
    c->state = EF_CHUNK_RUNNING;
    snprintf(c->ref, sizeof c->ref, "%s", ref);
    snprintf(c->job_id, sizeof c->job_id, "%s", job_id);
    c->n = n;
    ef_key_job(&c->k_job, q->name, c->job_id, EF_KEY_JOB);
    ef_key_job(&c->k_outcomes, q->name, c->job_id, EF_KEY_JOB_OUTCOMES);
    ef_key_job(&c->k_results, q->name, c->job_id, EF_KEY_JOB_RESULTS);
    ef_key_job(&c->k_errors, q->name, c->job_id, EF_KEY_JOB_ERRORS);
    ef_key_job(&c->k_attempts, q->name, c->job_id, EF_KEY_JOB_ATTEMPTS);
    ef_key_job(&c->k_parked, q->name, c->job_id, EF_KEY_JOB_PARKED);
    ef_key_job(&c->k_dryrun, q->name, c->job_id, EF_KEY_JOB_DRYRUN);
    /* built once here, so that an ack builds no key (ef_chunk_ack) */
    ef_call_keys_t *ks = &c->ack_keys;
    ef_call_keys_init(ks, &ef_script_chunk_ack);
    ef_call_keys_set(ks, "job", c->k_job.s);
    ef_call_keys_set(ks, "outcomes", c->k_outcomes.s);
    ef_call_keys_set(ks, "results", c->k_results.s);
    ef_call_keys_set(ks, "errors", c->k_errors.s);
    ef_call_keys_set(ks, "leases", q->k_leases.s);
    ef_call_keys_set(ks, "owners", q->k_owners.s);
    ef_call_keys_set(ks, "processing", q->k_processing.s);
    ef_call_keys_set(ks, "stats", q->k_stats.s);
    ef_call_keys_set(ks, "dryrun", c->k_dryrun.s);
    return c;
}

/* Makes one task per NDJSON line; entities that already have an outcome
 * (an earlier delivery recorded them) get no task work.  0, or -1 with err. */
int ef_chunk_load(ef_chunk_t *c, const char *ndjson, size_t len, const char *outcomes, size_t olen,
                  char *err) {
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        if (ndjson[i] == '\n')
            n++;
    if (!outcomes || olen != n) {
        ef_seterr(err, "%zu entities but %zu outcome slots", n, olen);
        return -1;
    }
    c->tasks = ef_calloc(n, sizeof *c->tasks);
    c->ntasks = n;
    const char *p = ndjson, *end = ndjson + len;
    for (size_t i = 0; i < n; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        ef_task_t *t = &c->tasks[i];
        t->chunk = c;
        t->index = (int)i;
        t->outcome = outcomes[i];
        if (t->outcome == EF_OUTCOME_NONE) {
            t->entity = cJSON_ParseWithLength(p, (size_t)(le - p));
            if (!cJSON_IsObject(t->entity)) {
                ef_seterr(err, "entity %zu is not a JSON object", i);
                return -1;
            }
            c->unresolved++;
        } else {
            t->acked = EF_TASK_RECORDED; /* by an earlier delivery: no second request */
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* Puts the chunk in the worker's list of chunks held. */
void ef_chunk_attach(ef_chunk_t *c) {
    ef_worker_t *w = c->w;
    c->next = w->chunks;
    if (w->chunks)
        w->chunks->prev = c;
    w->chunks = c;
    w->nchunks++;
}

/* Counts the chunk's tasks as in hand and queues them for requests. */
void ef_chunk_start(ef_chunk_t *c) {
    ef_worker_t *w = c->w;
    c->last_ack_ms = ef_mono_ms();
    c->started = 1;
    w->unresolved += c->unresolved;
    if (c->unresolved == 0) {
        ef_chunk_ack(c); /* nothing left: the ack closes the chunk */
        return;
    }
    for (size_t i = 0; i < c->ntasks; i++)
        if (c->tasks[i].outcome == EF_OUTCOME_NONE)
            ef_task_enqueue(&c->tasks[i]);
    ef_worker_dispatch(w);
}

void ef_chunk_free(ef_chunk_t *c) {
    ef_worker_t *w;
    if (!c)
        return;
    w = c->w;
    ef_chunk_purge(c);
    if (c->prev || c->next || w->chunks == c) {
        if (c->prev)
            c->prev->next = c->next;
        else if (w->chunks == c)
            w->chunks = c->next;
        if (c->next)
            c->next->prev = c->prev;
        w->nchunks--;
    }
    for (size_t i = 0; i < c->ntasks; i++) {
        ef_task_t *t = &c->tasks[i];
        if (c->started && t->outcome == EF_OUTCOME_NONE && t->entity)
            w->unresolved--;
        cJSON_Delete(t->entity);
        cJSON_Delete(t->vars);
        free(t->fields);
        free(t->pairs);
        free(t->error);
        free(t->result_key);
        free(t->req_url);
        free(t->req_body);
    }
    free(c->tasks);
    free(c);
}

/* ---- Stopping and the end ---- */

/* Moves a chunk to a stopping state (REQUEUING, PARKING, DROPPING or LOST):
 * no request starts for it any more and its queued tasks leave the ready
 * queues and the retry heap now.  States only move forward, so a weaker
 * reason than the current one changes nothing.  Then, in every case, a
 * quiet chunk ends at once: c may be freed when this returns. */
void ef_chunk_stop(ef_chunk_t *c, ef_chunk_state_t to, const char *why) {
    if (to > c->state && to != EF_CHUNK_RELEASING) {
        if (why)
            ef_info("chunk %s: %s (%s -> %s, %zu request(s) in flight)", c->ref, why,
                    ef_chunk_state_name(c->state), ef_chunk_state_name(to), c->inflight);
        c->state = to;
        ef_chunk_purge(c);
    }
    ef_chunk_maybe_finish(c);
}

typedef struct {
    ef_chunk_t *c; /* NULL when releasing a bare ref */
    ef_worker_t *w;
} release_t;

static void on_release(ef_redis_t *rc, redisReply *r, void *arg) {
    release_t *rl = arg;
    ef_worker_t *w = rl->w;
    (void)rc;
    if (!r || r->type == REDIS_REPLY_ERROR)
        ef_warn("hand-back failed (%s); the lease will bring the chunk back",
                r ? r->str : "no answer from redis");
    if (rl->c)
        ef_chunk_free(rl->c);
    free(rl);
    ef_worker_take_kick(w);
    ef_worker_check_drained(w);
}

/* One chunk_release.lua call (ef_call_chunk_release); rl->c is
 * freed by the answer.  0, or -1 when it could not be sent. */
static int release_send(ef_wq_t *q, const char *ref, long n, const char *job_id, const char *mode,
                        ef_chunk_t *c) {
    ef_worker_t *w = q->w;
    char jid[EF_JOB_ID_MAX_LEN + 1];
    if (!job_id || !*job_id || n < 0) {
        if (ef_chunk_ref_parse(ref, strlen(ref), jid, sizeof jid, &n) != 0)
            return -1;
        job_id = jid;
    }
    ef_call_t call;
    release_t *rl = ef_calloc(1, sizeof *rl);
    rl->c = c;
    rl->w = w;
    ef_call_chunk_release(&call, q->name, job_id, n, ref, w->id, mode);
    int rc = ef_redis_call(w->cmd, &call, on_release, rl, 0);
    ef_call_free(&call);
    if (rc != 0) {
        free(rl);
        return -1;
    }
    return 0;
}

/* Hands back a ref that has no ef_chunk_t (mode as in chunk_release.lua). */
void ef_release_ref(ef_wq_t *q, const char *ref, long n, const char *job_id, const char *mode) {
    if (release_send(q, ref, n, job_id, mode, NULL) != 0)
        ef_warn("cannot hand back %s now; the lease will bring it back", ref);
}

static const char *release_mode(ef_chunk_state_t s) {
    switch (s) {
    case EF_CHUNK_PARKING: return "park";
    case EF_CHUNK_DROPPING: return "drop";
    default: return "requeue";
    }
}

/* Decides a quiet chunk's end: freed when every entity is recorded (or when
 * LOST), handed back, parked or dropped when stopping.  Outcomes not sent
 * yet go first.  c may be freed when this returns. */
void ef_chunk_maybe_finish(ef_chunk_t *c) {
    ef_worker_t *w = c->w;
    if (c->inflight > 0 || c->acking || c->state == EF_CHUNK_RELEASING)
        return;
    /* outcomes not sent yet go now when the chunk is done or stopping; a
     * chunk still at work (its requests trickling out under a rate limit)
     * reports them with its last entity or on the tick, not one ack per
     * request */
    if (ef_chunk_unsent(c)) {
        if (c->unresolved > 0 && ef_chunk_working(c))
            return;
        if (w->cmd_ready)
            ef_chunk_ack(c);
        return; /* wait for the ack (or for redis to come back) */
    }
    if (c->unresolved == 0 || c->state == EF_CHUNK_LOST) {
        /* done (the last ack closed it), or another worker has it now */
        ef_chunk_free(c);
        ef_worker_take_kick(w);
        ef_worker_check_drained(w);
        return;
    }
    if (ef_chunk_working(c) || !w->cmd_ready)
        return;
    ef_chunk_state_t was = c->state;
    c->state = EF_CHUNK_RELEASING;
    ef_chunk_purge(c);
    if (release_send(c->q, c->ref, c->n, c->job_id, release_mode(was), c) != 0)
        c->state = was;
}

/* On the tick: partial acks of slow chunks, and another try for chunks
 * whose end waited for Redis. */
void ef_worker_acks_tick(ef_worker_t *w) {
    uint64_t now = ef_mono_ms();
    ef_chunk_t *c, *next;
    for (c = w->chunks; c; c = next) {
        next = c->next; /* c may be freed below */
        if (c->acking || c->state == EF_CHUNK_RELEASING)
            continue;
        if (!ef_chunk_working(c) || c->unresolved == 0)
            ef_chunk_maybe_finish(c);
        else if (now - c->last_ack_ms >= EF_WORKER_PARTIAL_ACK_MS)
            ef_chunk_ack(c);
    }
}

/* Draining: every chunk still at work goes back to pending when quiet. */
void ef_worker_release_all(ef_worker_t *w) {
    ef_chunk_t *c, *next;
    for (c = w->chunks; c; c = next) {
        next = c->next;
        if (c->unresolved > 0 && ef_chunk_working(c))
            ef_chunk_stop(c, EF_CHUNK_REQUEUING, NULL);
        else
            ef_chunk_maybe_finish(c);
    }
}
