// SPDX-License-Identifier: MIT
/*
 * Control that acts at once.  job_pause, job_cancel, job_resume and
 * queue_pause publish on the queue's control channel (farm:{Q}:control,
 * docs/redis.md); the worker's `sub` connection subscribes to the channel
 * of every queue it serves, and a message stops the chunks concerned in the
 * same loop turn (ef_chunk_stop: no new request, queued tasks purged, the
 * chunk parked, handed back or dropped as soon as its requests in flight
 * have answered).  Claims still in flight remember the message and their
 * chunk starts stopped.
 *
 * Pub/sub loses what is published while the subscriber is disconnected, so
 * each time a subscription takes effect (ef_redis's on_subscribed, after
 * every reconnect) and each time `cmd` comes back, the worker re-reads the
 * queue's pause flag and the status of every job it holds chunks of.  The
 * tick's pause check and every ack's job status remain as backstops.
 */
#include "worker.h"

#include "ef_job.h"
#include "ef_log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The state a chunk of a job with this status must be in. */
static ef_chunk_state_t state_for(const char *status) {
    if (strcmp(status, "queued") == 0 || strcmp(status, "running") == 0)
        return EF_CHUNK_RUNNING;
    if (strcmp(status, "paused") == 0)
        return EF_CHUNK_PARKING;
    return EF_CHUNK_DROPPING; /* cancelled, failed, completed or gone */
}

/* Applies a job's status to the chunks of queue q held for it and to the
 * claims in flight for it. */
void ef_control_job(ef_wq_t *q, const char *job_id, const char *status) {
    ef_worker_t *w = q->w;
    ef_chunk_state_t to = state_for(status);
    char why[96];
    for (ef_claim_t *cl = q->claiming; cl; cl = cl->next) {
        if (strcmp(cl->job_id, job_id) != 0)
            continue;
        if (to == EF_CHUNK_RUNNING && cl->then == EF_CHUNK_PARKING)
            cl->then = EF_CHUNK_RUNNING; /* resumed before the claim answered */
        else if (to > cl->then)
            cl->then = to;
    }
    if (to == EF_CHUNK_RUNNING)
        return; /* chunks already stopping go back; the job takes them again */
    snprintf(why, sizeof why, "job %s is %s", job_id, status);
    ef_chunk_t *c, *next;
    for (c = w->chunks; c; c = next) {
        next = c->next; /* c may be freed */
        if (c->q == q && strcmp(c->job_id, job_id) == 0)
            ef_chunk_stop(c, to, why);
    }
}

/* Applies the queue's pause flag: paused, nothing more is taken from it and
 * every chunk held of it goes back to pending; resumed, taking starts. */
void ef_control_queue(ef_wq_t *q, int paused) {
    ef_worker_t *w = q->w;
    if (!paused) {
        for (ef_claim_t *cl = q->claiming; cl; cl = cl->next)
            if (cl->then == EF_CHUNK_REQUEUING)
                cl->then = EF_CHUNK_RUNNING;
        if (q->paused)
            ef_info("queue %s resumed", q->name);
        q->paused = 0;
        ef_worker_take_queue(q);
        return;
    }
    if (!q->paused)
        ef_info("queue %s is paused; not taking from it, handing back what is held", q->name);
    q->paused = 1;
    for (ef_claim_t *cl = q->claiming; cl; cl = cl->next)
        if (cl->then < EF_CHUNK_REQUEUING)
            cl->then = EF_CHUNK_REQUEUING;
    ef_chunk_t *c, *next;
    for (c = w->chunks; c; c = next) {
        next = c->next;
        if (c->q == q)
            ef_chunk_stop(c, EF_CHUNK_REQUEUING, "its queue is paused");
    }
}

/* ---- Messages ---- */

static void on_message(ef_redis_t *r, redisReply *reply, void *arg) {
    ef_wq_t *q = arg;
    const redisReply *payload;
    (void)r;
    if (!reply || reply->elements != 3 || reply->element[2]->type != REDIS_REPLY_STRING)
        return; /* NULL: the worker is closing */
    payload = reply->element[2];
    cJSON *o = cJSON_ParseWithLength(payload->str, payload->len);
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(o, "job");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(o, "status");
    const cJSON *qp = cJSON_GetObjectItemCaseSensitive(o, "queue_paused");
    if (cJSON_IsString(job) && cJSON_IsString(status) && ef_job_id_valid(job->valuestring))
        ef_control_job(q, job->valuestring, status->valuestring);
    else if (cJSON_IsBool(qp))
        ef_control_queue(q, cJSON_IsTrue(qp));
    else
        ef_warn("queue %s: control message not understood: %.200s", q->name, payload->str);
    cJSON_Delete(o);
    ef_worker_dispatch(q->w);
}

/* ---- Re-reading after a (re)connect ---- */

typedef struct {
    ef_wq_t *q;
    char job_id[EF_JOB_ID_MAX_LEN + 1];
} status_read_t;

static void on_job_status(ef_redis_t *rc, redisReply *r, void *arg) {
    status_read_t *sr = arg;
    (void)rc;
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL))
        ef_control_job(sr->q, sr->job_id, r->type == REDIS_REPLY_STRING ? r->str : "missing");
    free(sr);
}

static void on_queue_paused(ef_redis_t *rc, redisReply *r, void *arg) {
    (void)rc;
    if (r && r->type == REDIS_REPLY_INTEGER)
        ef_control_queue(arg, r->integer == 1);
}

static void read_job(ef_wq_t *q, const char *job_id) {
    ef_key_t k;
    status_read_t *sr = ef_calloc(1, sizeof *sr);
    sr->q = q;
    snprintf(sr->job_id, sizeof sr->job_id, "%s", job_id);
    const char *argv[] = {"HGET", ef_key_job(&k, q->name, job_id, EF_KEY_JOB), "status"};
    if (ef_redis_cmd(q->w->cmd, on_job_status, sr, 0, 3, argv, NULL) != 0)
        free(sr);
}

/* Re-reads what queue q's control messages would have said: its pause flag
 * and the status of each job it holds chunks or claims of (each job once).
 * Claims sent before this are answered before it on `cmd`, so their chunks
 * exist when the statuses arrive. */
void ef_control_resync(ef_wq_t *q) {
    ef_worker_t *w = q->w;
    if (!w->cmd_ready)
        return; /* on_cmd_state resyncs when cmd is back */
    const char *ex[] = {"EXISTS", q->k_paused.s};
    ef_redis_cmd(w->cmd, on_queue_paused, q, 0, 2, ex, NULL);
    for (ef_chunk_t *c = w->chunks; c; c = c->next) {
        if (c->q != q)
            continue;
        int seen = 0;
        for (ef_chunk_t *o = w->chunks; o != c && !seen; o = o->next)
            seen = o->q == q && strcmp(o->job_id, c->job_id) == 0;
        if (!seen)
            read_job(q, c->job_id);
    }
    for (ef_claim_t *cl = q->claiming; cl; cl = cl->next) {
        int seen = 0;
        for (ef_chunk_t *o = w->chunks; o && !seen; o = o->next)
            seen = o->q == q && strcmp(o->job_id, cl->job_id) == 0;
        for (ef_claim_t *p = q->claiming; p != cl && !seen; p = p->next)
            seen = strcmp(p->job_id, cl->job_id) == 0;
        if (!seen)
            read_job(q, cl->job_id);
    }
}

static void on_subscribed(ef_redis_t *r, redisReply *reply, void *arg) {
    ef_worker_t *w = arg;
    (void)r;
    const redisReply *ch = reply->element[1];
    if (ch->type != REDIS_REPLY_STRING)
        return;
    for (size_t i = 0; i < w->nqueues; i++) {
        if (strcmp(w->queues[i].k_control.s, ch->str) == 0) {
            ef_debug("queue %s: control channel subscribed; re-reading job statuses",
                     w->queues[i].name);
            ef_control_resync(&w->queues[i]);
        }
    }
}

static void on_sub_state(ef_redis_t *r, int ready, void *arg) {
    ef_worker_t *w = arg;
    if (ready <= 0 || w->subscribed)
        return; /* ef_redis renews the subscriptions after a reconnect */
    for (size_t i = 0; i < w->nqueues; i++) {
        if (ef_redis_subscribe(r, w->queues[i].k_control.s, on_message, &w->queues[i]) != 0) {
            ef_error("cannot subscribe to %s; control reaches this worker only through its "
                     "1 s checks",
                     w->queues[i].k_control.s);
            continue;
        }
    }
    w->subscribed = 1;
}

/* Creates the `sub` connection; it subscribes once it is ready. */
int ef_control_create(ef_worker_t *w) {
    ef_redis_opts_t o = {.name = "sub",
                         .ping_interval_ms = -1,
                         .on_state = on_sub_state,
                         .state_arg = w,
                         .on_subscribed = on_subscribed};
    return ef_redis_create(&w->sub, w->loop, &w->url, &o);
}
