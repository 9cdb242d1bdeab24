// SPDX-License-Identifier: MIT
/*
 * The worker's side of a provider's farm-wide token bucket
 * (scripts/ratelimit_take.lua): every request, of every step and every
 * retry, spends a token first.  The worker asks for as many tokens as it
 * can send at once (requests ready, bounded by free concurrency), so one
 * script call covers a batch; tokens are spent at once, never hoarded.
 * When the bucket is short, the script says how long to wait and the
 * provider waits on its own libuv timer (never spinning, never sleeping the
 * loop).  A 429 pauses the whole farm's bucket (ratelimit_penalty.lua).
 */
#include "worker.h"

#include "ef_log.h"
#include "ef_scripts_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASK_MAX 256 /* tokens asked for in one call */

int ef_ratelimit_needed(const ef_prov_t *p) { return p->rc->rate_requests > 0; }

static void on_wait_done(uv_timer_t *t) {
    ef_prov_t *p = t->data;
    p->waiting = 0;
    ef_worker_dispatch(p->w);
}

static void wait_for(ef_prov_t *p, uint64_t ms) {
    if (p->w->stopping)
        return;
    p->waiting = 1;
    uv_timer_start(&p->wait_timer, on_wait_done, ms, 0);
}

static void on_take(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_prov_t *p = arg;
    (void)rc;
    p->asking = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        if (r && r->type == REDIS_REPLY_ERROR)
            ef_error("rate limit of %s: %s", p->rc->name, r->str);
        wait_for(p, 200); /* redis trouble: try again shortly */
        return;
    }
    long granted = (long)r->element[0]->integer, wait = (long)r->element[1]->integer;
    p->tokens += granted;
    p->granted += granted;
    if (granted == 0) {
        p->waits++;
        wait_for(p, (uint64_t)(wait > 0 ? wait : 1));
        return;
    }
    /* fewer than wanted: spend these now, ask again when the next batch is
     * due rather than at once (that would only find the bucket empty) */
    if (wait > 0)
        wait_for(p, (uint64_t)wait);
    ef_worker_dispatch(p->w);
}

void ef_ratelimit_ask(ef_prov_t *p) {
    ef_worker_t *w = p->w;
    char want[24], req[24], per[32], burst[24];
    if (p->asking || p->waiting || w->stopping)
        return;
    if (!w->cmd_ready) {
        wait_for(p, 200); /* ask again once redis is back */
        return;
    }
    uint64_t now = ef_mono_ms();
    if (p->paused_until > now) {
        wait_for(p, p->paused_until - now);
        return;
    }
    size_t free_slots = w->inflight < (size_t)w->concurrency ? (size_t)w->concurrency - w->inflight : 0;
    size_t n = p->nready < free_slots ? p->nready : free_slots;
    if (p->rc->concurrency > 0 && p->inflight + n > (size_t)p->rc->concurrency)
        n = (size_t)p->rc->concurrency > p->inflight ? (size_t)p->rc->concurrency - p->inflight : 0;
    if (n > ASK_MAX)
        n = ASK_MAX;
    if (n == 0)
        return;
    snprintf(want, sizeof want, "%zu", n);
    snprintf(req, sizeof req, "%ld", p->rc->rate_requests);
    snprintf(per, sizeof per, "%.6g", p->rc->rate_per_seconds);
    snprintf(burst, sizeof burst, "%ld", p->rc->rate_burst);
    const char *argv[] = {p->k_bucket.s, p->k_waiters.s, want, w->id, req, per, burst};
    if (ef_redis_script(w->cmd, &ef_script_ratelimit_take, on_take, p, 0, 2, 7, argv, NULL) == 0)
        p->asking = 1;
    else
        wait_for(p, 200);
}

static void on_penalty(ef_redis_t *rc, redisReply *r, void *arg) {
    (void)rc;
    (void)r;
    (void)arg;
}

void ef_ratelimit_penalty(ef_prov_t *p, long pause_ms) {
    ef_worker_t *w = p->w;
    char ms[24];
    uint64_t now = ef_mono_ms();
    if (pause_ms <= 0)
        pause_ms = 1000;
    if (p->paused_until >= now + (uint64_t)pause_ms)
        return; /* already paused at least that long: one call per 429 wave */
    p->paused_until = now + (uint64_t)pause_ms;
    p->tokens = 0;
    if (!ef_ratelimit_needed(p) || !w->cmd_ready)
        return;
    snprintf(ms, sizeof ms, "%ld", pause_ms);
    const char *argv[] = {p->k_bucket.s, ms};
    ef_redis_script(w->cmd, &ef_script_ratelimit_penalty, on_penalty, NULL, 0, 1, 2, argv, NULL);
    ef_info("provider %s answered 429: the farm pauses it for %ld ms", p->rc->name, pause_ms);
}

/* Writes each rated provider's settings into its bucket, so the whole farm
 * uses the rate of the recipe the workers run (SIGHUP re-reads it). */
void ef_ratelimit_register(ef_worker_t *w) {
    for (size_t i = 0; i < w->nprovs; i++) {
        ef_prov_t *p = &w->provs[i];
        char req[24], per[32], burst[24];
        if (!ef_ratelimit_needed(p))
            continue;
        snprintf(req, sizeof req, "%ld", p->rc->rate_requests);
        snprintf(per, sizeof per, "%.6g", p->rc->rate_per_seconds);
        snprintf(burst, sizeof burst, "%ld", p->rc->rate_burst);
        const char *argv[] = {"HSET", p->k_bucket.s, "requests", req, "per_seconds", per, "burst", burst};
        ef_redis_cmd(w->cmd, NULL, NULL, 0, 8, argv, NULL);
    }
}

void ef_ratelimit_init(ef_worker_t *w) {
    for (size_t i = 0; i < w->nprovs; i++) {
        ef_prov_t *p = &w->provs[i];
        p->w = w;
        ef_key_ratelimit(&p->k_bucket, p->rc->name);
        ef_key_ratelimit_waiters(&p->k_waiters, p->rc->name);
        uv_timer_init(w->loop, &p->wait_timer);
        p->wait_timer.data = p;
    }
}

static void on_timer_closed(uv_handle_t *h) { (void)h; }

void ef_ratelimit_close(ef_worker_t *w) {
    for (size_t i = 0; i < w->nprovs; i++)
        uv_close((uv_handle_t *)&w->provs[i].wait_timer, on_timer_closed);
}
