// SPDX-License-Identifier: MIT
/*
 * Taking chunks: each queue's `take` connection blocks in BLMOVE from
 * pending (right end) into processing (left end); the ref it returns is
 * claimed with chunk_claim.lua on the `cmd` connection, which gives it a
 * lease or decides that it is dropped, parked, dead or handed back because
 * the queue is paused.  A BLMOVE is only issued while the worker wants more
 * work (see ef_worker_wanted), so the prefetch stays bounded.  A claimed
 * ref becomes a chunk (chunk.c); a control message that arrived while its
 * claim was in flight makes it start stopped.
 */
#include "worker.h"

#include "ef_job.h"
#include "ef_log.h"
#include "ef_scripts_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A claim in flight is on its queue's claiming list until its answer, so
 * that a control message can reach it (ef_claim_t.then). */
static void claim_unlink(ef_claim_t *cl) {
    ef_wq_t *q = cl->q;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        q->claiming = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    cl->prev = cl->next = NULL;
    q->claims--;
}

static void completed_counts_cb(ef_redis_t *rc, redisReply *r, void *arg) {
    (void)rc;
    char *job_id = arg;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        long long v[4];
        for (int i = 0; i < 4; i++)
            v[i] = r->element[i]->str ? atoll(r->element[i]->str) : 0;
        ef_info("job %s completed: updated=%lld conflicts=%lld not_found=%lld errors=%lld", job_id,
                v[0], v[1], v[2], v[3]);
    }
    free(job_id);
}

static void on_claim(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_claim_t *cl = arg;
    ef_wq_t *q = cl->q;
    ef_worker_t *w = q->w;
    (void)rc;
    claim_unlink(cl);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        /* not claimed: the orphan check of the reaper gives the ref a lease
         * and it comes back after the visibility timeout */
        ef_warn("claim of %s failed: %s", cl->ref,
                r && r->type == REDIS_REPLY_ERROR ? r->str : "no answer from redis");
        free(cl);
        ef_worker_take_kick(w);
        return;
    }
    const char *verdict = r->element[0]->str;
    if (strcmp(verdict, "ok") == 0 && r->elements >= 8) {
        if (w->draining) {
            /* taken while stopping: hand it back at once */
            ef_release_ref(q, cl->ref, cl->n, cl->job_id, "requeue");
            free(cl);
            ef_worker_check_drained(w);
            return;
        }
        ef_chunk_t *c = ef_chunk_create(q, cl->ref, cl->job_id, cl->n);
        char err[EF_ERR_LEN];
        c->attempt = (int)r->element[3]->integer;
        c->dry_run = r->element[5]->str && strcmp(r->element[5]->str, "1") == 0;
        const char *provider = r->element[6]->str ? r->element[6]->str : "";
        for (size_t i = 0; i < w->nprovs; i++)
            if (strcmp(w->provs[i].rc->name, provider) == 0)
                c->prov = &w->provs[i];
        if (r->element[4]->integer == 1)
            ef_info("job %s starting", c->job_id);
        if (!c->prov) {
            ef_error("job %s needs provider '%s', which this worker's --providers file does not "
                     "define; handing chunk %s back and holding queue %s for 5 s",
                     c->job_id, provider, c->ref, q->name);
            ef_release_ref(q, c->ref, c->n, c->job_id, "requeue");
            q->hold_until = ef_mono_ms() + 5000;
            ef_chunk_free(c);
        } else if (ef_chunk_load(c, r->element[1]->str, r->element[1]->len, r->element[2]->str,
                                 r->element[2]->len, err) != 0) {
            ef_error("chunk %s is malformed (%s); handing it back (it reaches the dead list "
                     "after --max-attempts)", c->ref, err);
            ef_release_ref(q, c->ref, c->n, c->job_id, "retry");
            ef_chunk_free(c);
        } else {
            ef_chunk_t *o, *next;
            for (o = w->chunks; o; o = next) {
                next = o->next;
                if (strcmp(o->ref, c->ref) == 0) /* redelivered to us: the new claim supersedes it */
                    ef_chunk_stop(o, EF_CHUNK_LOST, NULL);
            }
            ef_chunk_attach(c);
            ef_debug("chunk %s claimed (delivery %d, %zu to do)", c->ref, c->attempt, c->unresolved);
            if (cl->then == EF_CHUNK_RUNNING)
                ef_chunk_start(c);
            else /* paused or cancelled while the claim was in flight */
                ef_chunk_stop(c, cl->then, "stopped before it started");
        }
    } else if (strcmp(verdict, "dead") == 0) {
        ef_warn("chunk %s went to the dead list after %d deliveries; its %lld unfinished "
                "entities count as errors", cl->ref, w->max_attempts,
                r->elements > 2 ? r->element[2]->integer : 0LL);
        if (r->elements > 1 && r->element[1]->integer == 1) {
            ef_key_t k;
            char *id = ef_strdup(cl->job_id);
            if (ef_redis_cmdf(w->cmd, completed_counts_cb, id, "HMGET %s updated conflicts not_found errors",
                              ef_key_job(&k, q->name, cl->job_id, EF_KEY_JOB)) != 0)
                free(id);
        }
    } else if (strcmp(verdict, "queue_paused") == 0) {
        if (!q->paused)
            ef_info("queue %s is paused; not taking from it", q->name);
        q->paused = 1;
    } else {
        ef_debug("chunk %s %s%s%s", cl->ref, verdict, r->elements > 1 ? ": " : "",
                 r->elements > 1 && r->element[1]->str ? r->element[1]->str : "");
    }
    free(cl);
    ef_worker_take_kick(w);
}

static void claim(ef_wq_t *q, const char *ref, size_t len) {
    ef_worker_t *w = q->w;
    ef_claim_t *cl = ef_calloc(1, sizeof *cl);
    char lease[24], maxa[24], n[24], cap[24];
    ef_key_t kjob, kchunks, koutc, katt, kparked, kerr;
    cl->q = q;
    cl->then = q->paused ? EF_CHUNK_REQUEUING : EF_CHUNK_RUNNING;
    if (len >= sizeof cl->ref ||
        ef_chunk_ref_parse(ref, len, cl->job_id, sizeof cl->job_id, &cl->n) != 0) {
        ef_error("queue %s: malformed chunk ref '%.*s' in pending; moved to the dead list", q->name,
                 (int)(len > 80 ? 80 : len), ref);
        const char *argv[] = {"LMOVE", q->k_processing.s, q->k_dead.s, "LEFT", "LEFT"};
        ef_redis_cmd(w->cmd, NULL, NULL, 0, 5, argv, NULL);
        free(cl);
        return;
    }
    memcpy(cl->ref, ref, len);
    cl->ref[len] = '\0';
    snprintf(lease, sizeof lease, "%d", w->visibility_ms);
    snprintf(maxa, sizeof maxa, "%d", w->max_attempts);
    snprintf(n, sizeof n, "%ld", cl->n);
    snprintf(cap, sizeof cap, "%d", EF_WORKER_ERROR_LOG_CAP);
    const char *argv[] = {
        ef_key_job(&kjob, q->name, cl->job_id, EF_KEY_JOB),
        ef_key_job(&kchunks, q->name, cl->job_id, EF_KEY_JOB_CHUNKS),
        ef_key_job(&koutc, q->name, cl->job_id, EF_KEY_JOB_OUTCOMES),
        ef_key_job(&katt, q->name, cl->job_id, EF_KEY_JOB_ATTEMPTS),
        q->k_leases.s, q->k_owners.s, q->k_processing.s,
        ef_key_job(&kparked, q->name, cl->job_id, EF_KEY_JOB_PARKED),
        q->k_dead.s,
        ef_key_job(&kerr, q->name, cl->job_id, EF_KEY_JOB_ERRORS),
        q->k_stats.s, q->k_paused.s, q->k_pending.s,
        cl->ref, cl->job_id, n, w->id, lease, maxa, q->k_events.s, cap,
    };
    if (ef_redis_script(w->cmd, &ef_script_chunk_claim, on_claim, cl, 0, 13, 21, argv, NULL) != 0) {
        /* cmd is down: the reaper's orphan check brings the ref back */
        ef_warn("cannot claim %s now (redis not ready)", cl->ref);
        free(cl);
        return;
    }
    q->claims++;
    cl->next = q->claiming;
    if (q->claiming)
        q->claiming->prev = cl;
    q->claiming = cl;
}

static void on_take(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_wq_t *q = arg;
    (void)rc;
    q->taking = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        if (q->w->draining || !q->w->cmd_ready) {
            /* taken while stopping or with cmd down: hand it back unclaimed */
            ef_release_ref(q, r->str, -1, "", "unclaimed");
        } else {
            claim(q, r->str, r->len);
        }
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        ef_warn("queue %s: BLMOVE failed: %s", q->name, r->str);
        q->hold_until = ef_mono_ms() + 1000;
    }
    if (q->w->draining)
        ef_worker_check_drained(q->w);
    else
        ef_worker_take_queue(q);
}

void ef_worker_take_queue(ef_wq_t *q) {
    ef_worker_t *w = q->w;
    char block[16];
    if (w->draining || !w->cmd_ready || q->taking || q->paused || !ef_redis_ready(q->take))
        return;
    if (q->hold_until && ef_mono_ms() < q->hold_until)
        return;
    if (ef_worker_wanted(w) == 0)
        return;
    snprintf(block, sizeof block, "%d", EF_WORKER_TAKE_BLOCK_S);
    const char *argv[] = {"BLMOVE", q->k_pending.s, q->k_processing.s, "RIGHT", "LEFT", block};
    if (ef_redis_cmd(q->take, on_take, q, EF_WORKER_TAKE_BLOCK_S * 1000 + EF_REDIS_COMMAND_TIMEOUT_MS,
                     6, argv, NULL) == 0)
        q->taking = 1;
}

void ef_worker_take_kick(ef_worker_t *w) {
    for (size_t i = 0; i < w->nqueues; i++)
        ef_worker_take_queue(&w->queues[i]);
}
