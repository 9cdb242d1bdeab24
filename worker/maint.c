// SPDX-License-Identifier: MIT
/*
 * The worker's housekeeping, on one 1 s tick: its heartbeat in the worker
 * registry (and the pruning of dead workers' entries, worker_beat.lua), the
 * reaper (expired leases back to pending, abandoned enqueues marked
 * failed), the queue pause flags (a backstop of control.c), queue counters
 * for metrics,
 * partial acks of slow chunks and lease extension for chunks still held.
 * Every worker runs the reaper; the scripts are idempotent, so there is no
 * single point of failure.
 */
#include "worker.h"

#include "ef_calls.h"
#include "ef_abandon.h"
#include "ef_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void ignore_reply(ef_redis_t *rc, redisReply *r, void *arg) {
    (void)rc;
    (void)r;
    (void)arg;
}

void ef_worker_register_providers(ef_worker_t *w) {
    ef_key_t k;
    ef_key_global(&k, EF_KEY_PROVIDERS);
    for (size_t i = 0; i < w->nprovs; i++) {
        char *sum = ef_recipe_summary(w->provs[i].rc);
        const char *argv[] = {"HSET", k.s, w->provs[i].rc->name, sum ? sum : "{}"};
        ef_redis_cmd(w->cmd, ignore_reply, NULL, 0, 4, argv, NULL);
        free(sum);
    }
}

void ef_worker_heartbeat(ef_worker_t *w) {
    ef_key_t kw;
    char pid[16], conc[16], infl[24], proc[24], errs[24], started[24], now[24], ttl[16];
    const char *state = w->draining ? "draining" : "running";
    int all_paused = w->nqueues > 0;
    for (size_t i = 0; i < w->nqueues; i++)
        all_paused &= w->queues[i].paused;
    if (!w->draining && all_paused)
        state = "paused";
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    snprintf(conc, sizeof conc, "%d", w->concurrency);
    snprintf(infl, sizeof infl, "%zu", w->inflight);
    snprintf(proc, sizeof proc, "%lld", w->c_processed);
    snprintf(errs, sizeof errs, "%lld", w->c_errors);
    snprintf(started, sizeof started, "%lld", (long long)w->started_at);
    snprintf(now, sizeof now, "%lld", (long long)ef_now_ms());
    snprintf(ttl, sizeof ttl, "%d", EF_WORKER_HEARTBEAT_TTL_S);
    char chunks[24];
    snprintf(chunks, sizeof chunks, "%zu", w->nchunks);
    ef_key_worker(&kw, w->id);
    const char *hset[] = {"HSET", kw.s, "id", w->id, "host", w->host, "pid", pid, "version",
                          EF_VERSION, "queues", w->queues_csv, "concurrency", conc, "state", state,
                          "in_flight", infl, "processed", proc, "errors", errs, "chunks",
                          chunks, "started_at", started, "last_seen", now};
    ef_redis_cmd(w->cmd, ignore_reply, NULL, 0, (int)EF_ARRAY_LEN(hset), hset, NULL);
    const char *exp[] = {"EXPIRE", kw.s, ttl};
    ef_redis_cmd(w->cmd, ignore_reply, NULL, 0, 3, exp, NULL);
    ef_worker_beat(w);
}

static void on_beat(ef_redis_t *rc, redisReply *r, void *arg) {
    (void)rc;
    (void)arg;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        ef_info("worker registry: removed %lld worker(s) silent for over %d s", r->integer,
                EF_WORKER_HEARTBEAT_TTL_S);
    else if (r && r->type == REDIS_REPLY_ERROR)
        ef_warn("worker registry: %s", r->str);
}

/* Marks this worker alive in farm:workers on Redis's clock and prunes the
 * entries of workers silent for longer than the heartbeat TTL. */
void ef_worker_beat(ef_worker_t *w) {
    ef_call_t call;
    ef_redis_call(w->cmd, ef_call_worker_beat(&call, w->id, EF_WORKER_HEARTBEAT_TTL_S * 1000),
                  on_beat, NULL, 0);
    ef_call_free(&call);
}

static void on_reap(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_wq_t *q = arg;
    (void)rc;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        ef_info("queue %s: %zu chunk(s) whose lease expired are back in pending (first: %s)",
                q->name, r->elements, r->element[0]->str ? r->element[0]->str : "?");
        ef_worker_take_queue(q);
    }
}

/* The 1 s backstop of the control channel (control.c). */
static void on_paused(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_wq_t *q = arg;
    (void)rc;
    if (r && r->type == REDIS_REPLY_INTEGER && (r->integer == 1) != (q->paused != 0))
        ef_control_queue(q, r->integer == 1);
}

static void flush_stats(ef_wq_t *q) {
    ef_worker_t *w = q->w;
    struct {
        const char *name;
        long *v;
    } f[] = {{"requests", &q->st_requests},        {"responses_2xx", &q->st_2xx},
             {"responses_4xx", &q->st_4xx},        {"responses_429", &q->st_429},
             {"responses_5xx", &q->st_5xx},        {"transport_errors", &q->st_transport},
             {"retries", &q->st_retries}};
    for (size_t i = 0; i < EF_ARRAY_LEN(f); i++) {
        char num[24];
        if (*f[i].v == 0)
            continue;
        snprintf(num, sizeof num, "%ld", *f[i].v);
        const char *argv[] = {"HINCRBY", q->k_stats.s, f[i].name, num};
        if (ef_redis_cmd(w->cmd, ignore_reply, NULL, 0, 4, argv, NULL) == 0)
            *f[i].v = 0;
    }
}

static void on_extend(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_worker_t *w = arg;
    (void)rc;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        const char *ref = r->element[i]->str;
        for (ef_chunk_t *c = w->chunks; c && ref; c = c->next) {
            if (strcmp(c->ref, ref) == 0 && c->state < EF_CHUNK_LOST) {
                ef_warn("lost the lease of chunk %s (it expired and went to another worker); "
                        "stopping work on it", ref);
                ef_chunk_stop(c, EF_CHUNK_LOST, NULL); /* c may be gone */
                break;
            }
        }
    }
}

void ef_worker_extend_leases(ef_worker_t *w) {
    for (size_t qi = 0; qi < w->nqueues; qi++) {
        ef_wq_t *q = &w->queues[qi];
        size_t n = 0;
        for (ef_chunk_t *c = w->chunks; c; c = c->next)
            if (c->q == q && c->state < EF_CHUNK_LOST)
                n++;
        if (n == 0)
            continue;
        const char **refs = ef_calloc(n, sizeof *refs);
        size_t a = 0;
        for (ef_chunk_t *c = w->chunks; c; c = c->next)
            if (c->q == q && c->state < EF_CHUNK_LOST)
                refs[a++] = c->ref;
        ef_call_t call;
        ef_call_lease_extend(&call, q->name, w->id, w->visibility_ms, refs, a);
        ef_redis_call(w->cmd, &call, on_extend, w, 0);
        ef_call_free(&call);
        free(refs);
    }
}

void ef_worker_tick(uv_timer_t *t) {
    ef_worker_t *w = t->data;
    w->ticks++;
    if (!w->cmd_ready || w->draining == 2)
        return; /* unregistering: a beat now would put the worker back */
    if (w->ticks % 2 == 0)
        ef_worker_heartbeat(w);
    else
        ef_worker_beat(w);
    int extend_every = w->visibility_ms / 3 / EF_WORKER_TICK_MS;
    if (extend_every < 1)
        extend_every = 1;
    if (w->ticks % extend_every == 0)
        ef_worker_extend_leases(w);
    for (size_t i = 0; i < w->nqueues; i++) {
        ef_wq_t *q = &w->queues[i];
        ef_call_t reap;
        ef_redis_call(w->cmd,
                      ef_call_chunk_reap(&reap, q->name, EF_WORKER_REAP_BATCH, w->visibility_ms,
                                         EF_WORKER_ORPHAN_SCAN),
                      on_reap, q, 0);
        ef_call_free(&reap);
        const char *ex[] = {"EXISTS", q->k_paused.s};
        ef_redis_cmd(w->cmd, on_paused, q, 0, 2, ex, NULL);
        if (w->ticks % 5 == 0)
            ef_abandon_sweep(w->cmd, q->name, 0);
        flush_stats(q);
        if (q->hold_until && ef_mono_ms() >= q->hold_until) {
            q->hold_until = 0;
            ef_worker_take_queue(q);
        }
    }
    ef_notify_tick(w);
    ef_worker_acks_tick(w);
    ef_worker_take_kick(w);
    ef_worker_dispatch(w);
}
