// SPDX-License-Identifier: MIT
/*
 * The worker's side of a provider's farm-wide token bucket
 * (scripts/ratelimit_take.lua): every request, of every step and every
 * retry, spends a token first.  The worker asks for as many tokens as it
 * can send at once (requests ready, bounded by free concurrency), so one
 * script call covers a batch; tokens are spent at once, never hoarded.
 * When the bucket is short, the script says how long to wait and the
 * provider waits on its own libuv timer (never spinning, never sleeping the
 * loop), at most EF_RATELIMIT_RECHECK_MS before it asks again, so a pause
 * cleared by an operator is seen within that.
 *
 * A 429, or a 503 with Retry-After, pauses the whole farm's bucket
 * (ratelimit_penalty.lua) until a deadline on Redis's clock: the
 * Retry-After, capped at the recipe's max_pause_s (logged as a warning when
 * capped); an HTTP-date is converted against the response's Date header, or
 * in the script against Redis TIME, never against this host's clock.  The
 * same call cuts the farm's adaptive rate (once per wave, decided in the
 * script), which then grows back toward the recipe's rate; a provider
 * without a rate runs free (it looks at its bucket every
 * EF_RATELIMIT_FREE_MS) until a refusal gives it a learned rate.  Rate
 * headers (X-RateLimit-*, RateLimit, RateLimit-Policy) saying no request is
 * left pause the farm until their reset, without a cut.  Each take call
 * carries the answers this worker got since its last one, so the script
 * knows what the provider accepted.
 */
#include "worker.h"

#include "ef_log.h"
#include "ef_calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASK_MAX 256                        /* tokens asked for in one call */
#define EF_RATELIMIT_RECHECK_MS 1000       /* longest wait before asking the bucket again */
#define EF_RATELIMIT_FREE_MS 250           /* a provider without a rate sends freely this long */
#define EF_RATELIMIT_PAUSE_DEFAULT_MS 1000 /* a 429 without Retry-After */
#define EF_RATELIMIT_TROUBLE_MS 200        /* Redis trouble: ask again after this */

static int rated(const ef_prov_t *p) {
    return p->rc->rate_requests > 0;
}

/* Whether the next request needs a token: always with a rate, and without
 * one once the provider's free window has run out (it must look at its
 * bucket for a pause or a learned rate). */
int ef_ratelimit_needed(const ef_prov_t *p) {
    return rated(p) || ef_mono_ms() >= p->free_until;
}

static void on_wait_done(uv_timer_t *t) {
    ef_prov_t *p = t->data;
    p->waiting = 0;
    ef_worker_dispatch(p->w);
}

static void wait_for(ef_prov_t *p, uint64_t ms) {
    if (p->w->stopping)
        return;
    if (ms > EF_RATELIMIT_RECHECK_MS)
        ms = EF_RATELIMIT_RECHECK_MS;
    p->waiting = 1;
    uv_timer_start(&p->wait_timer, on_wait_done, ms, 0);
}

/* Redis cannot be asked: a provider with a rate waits; one without sends
 * on unless this worker saw it answer 429 lately. */
static void ask_failed(ef_prov_t *p) {
    uint64_t now = ef_mono_ms();
    if (!rated(p) && p->paused_until <= now)
        p->free_until = now + EF_RATELIMIT_FREE_MS;
    wait_for(p,
             rated(p) || p->paused_until <= now ? EF_RATELIMIT_TROUBLE_MS : p->paused_until - now);
}

static void on_take(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_prov_t *p = arg;
    (void)rc;
    p->asking = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        if (r && r->type == REDIS_REPLY_ERROR)
            ef_error("rate limit of %s: %s", p->rc->name, r->str);
        ask_failed(p);
        return;
    }
    long granted = (long)r->element[0]->integer, wait = (long)r->element[1]->integer;
    if (granted > 0)
        p->paused_until = 0; /* the bucket is not paused (an operator may have cleared it) */
    if (r->elements >= 4 && r->element[3]->integer == 1) {
        /* no rate in force: send freely for a while */
        p->free_until = ef_mono_ms() + EF_RATELIMIT_FREE_MS;
        ef_worker_dispatch(p->w);
        return;
    }
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
    if (p->asking || p->waiting || w->stopping)
        return;
    if (!w->cmd_ready) {
        ask_failed(p); /* ask again once redis is back */
        return;
    }
    size_t free_slots =
        w->inflight < (size_t)w->concurrency ? (size_t)w->concurrency - w->inflight : 0;
    size_t want = ef_batch_requests(p); /* a batch step: one token per batch */
    size_t n = want < free_slots ? want : free_slots;
    if (p->rc->concurrency > 0 && p->inflight + n > (size_t)p->rc->concurrency)
        n = (size_t)p->rc->concurrency > p->inflight ? (size_t)p->rc->concurrency - p->inflight : 0;
    if (n > ASK_MAX)
        n = ASK_MAX;
    if (n == 0)
        return;
    ef_call_t call;
    ef_call_ratelimit_take(&call, p->rc->name, (long)n, w->id, p->rc->rate_requests,
                           p->rc->rate_per_seconds, p->rc->rate_burst, p->answered);
    int rc = ef_redis_call(w->cmd, &call, on_take, p, 0);
    ef_call_free(&call);
    if (rc == 0) {
        p->asking = 1;
        p->answered = 0; /* reported (lost with the call if Redis fails: only a measure) */
    } else
        ask_failed(p);
}

/* ---- 429s ---- */

static void on_penalty(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_prov_t *p = arg;
    (void)rc;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 5) {
        if (r && r->type == REDIS_REPLY_ERROR)
            ef_error("rate limit of %s: pause: %s", p->rc->name, r->str);
        return;
    }
    long long pause = r->element[0]->integer, asked = r->element[3]->integer;
    double plateau = (double)r->element[4]->integer / 1000.0;
    p->paused_until = ef_mono_ms() + (uint64_t)(pause > 0 ? pause : 0);
    if (r->element[1]->integer == 1)
        ef_warn("provider %s asked for a pause of %lld s, more than max_pause_s: "
                "capped, the farm pauses it for %lld ms",
                p->rc->name, asked / 1000, pause);
    else if (p->refused > 0 && plateau > 0)
        ef_info("provider %s answered %ld: the farm pauses it for %lld ms, learned rate %.3g/s",
                p->rc->name, p->refused, pause, plateau);
    else if (p->refused > 0)
        ef_info("provider %s answered %ld: the farm pauses it for %lld ms", p->rc->name, p->refused,
                pause);
    else
        ef_info("provider %s has no request left: the farm pauses it for %lld ms", p->rc->name,
                pause);
}

/* Pauses the provider farm-wide for pause_ms, or until the date at_ms (ms
 * since the epoch, for the script to read on Redis's clock; 0: none); asked
 * is what the provider asked for (the script says whether it was capped).
 * cut: a refusal, which also cuts the farm's adaptive rate.  One script call
 * per wave: a pause already in force that lasts as long is left alone. */
static void pause_farm(ef_prov_t *p, long pause, long asked, long long at_ms, int cut,
                       uint64_t now) {
    ef_worker_t *w = p->w;
    long cap_ms = p->rc->max_pause_s * 1000;
    if (pause > cap_ms)
        pause = cap_ms;
    if (at_ms > 0) /* on this host's clock: the script knows better */
        pause = EF_RATELIMIT_PAUSE_DEFAULT_MS;
    if (p->paused_until >= now + (uint64_t)pause && p->paused_until > now)
        return;
    p->paused_until = now + (uint64_t)pause; /* until the script says better */
    p->tokens = 0;
    p->free_until = 0;
    if (!w->cmd_ready)
        return;
    /* a length is capped here already: pass what was asked for so the
     * script says it was capped */
    ef_call_penalty_t a = {.pause_ms = at_ms > 0 ? 0 : (asked > cap_ms ? asked : pause),
                           .date_ms = at_ms > 0 ? at_ms : 0,
                           .cap_ms = cap_ms,
                           .cut = cut};
    ef_call_t call;
    ef_call_ratelimit_penalty(&call, p->rc->name, &a);
    ef_redis_call(w->cmd, &call, on_penalty, p, 0);
    ef_call_free(&call);
}

/* Looks at every provider answer: a 429, or a 503 with Retry-After, pauses
 * the farm and cuts its rate; rate headers saying nothing is left pause it
 * until their reset; other answers are counted for the bucket's measure.
 * Returns how long the task should wait before its retry: for a pausing
 * answer none beyond the usual backoff (the bucket holds it while the pause
 * lasts), for other answers their Retry-After capped at max_pause_s, -1
 * when none. */
long ef_ratelimit_answer(ef_prov_t *p, const ef_http_resp_t *resp) {
    uint64_t now = ef_mono_ms();
    long cap_ms = p->rc->max_pause_s * 1000;
    if (resp->status == 429 || (resp->status == 503 && resp->retry_after_ms >= 0)) {
        long ra = resp->retry_after_ms;
        p->refused = resp->status;
        long pause = ra >= 0 ? ra : EF_RATELIMIT_PAUSE_DEFAULT_MS;
        /* a reset from the rate headers when there is no Retry-After */
        if (ra < 0 && resp->rl_exhausted && resp->rl_reset_ms >= 0)
            pause = resp->rl_reset_ms;
        pause_farm(p, pause, ra >= 0 ? ra : pause, resp->retry_after_at_ms, 1, now);
        return -1;
    }
    if (resp->status > 0)
        p->answered++;
    if (resp->rl_exhausted && (resp->rl_reset_ms >= 0 || resp->rl_reset_at_ms > 0)) {
        long pause = resp->rl_reset_ms >= 0 ? resp->rl_reset_ms : 0;
        p->refused = 0;
        if (p->paused_until <= now && resp->rl_window_s > 0)
            ef_debug("provider %s: no request left of %ld per %ld s", p->rc->name, resp->rl_limit,
                     resp->rl_window_s);
        else if (p->paused_until <= now && resp->rl_limit > 0)
            ef_debug("provider %s: no request left of %ld", p->rc->name, resp->rl_limit);
        pause_farm(p, pause, pause, resp->rl_reset_at_ms, 0, now);
    }
    return resp->retry_after_ms > cap_ms ? cap_ms : resp->retry_after_ms;
}

/* Writes each rated provider's settings into its bucket, so the whole farm
 * uses the rate of the recipe the workers run (SIGHUP re-reads it). */
void ef_ratelimit_register(ef_worker_t *w) {
    for (size_t i = 0; i < w->nprovs; i++) {
        ef_prov_t *p = &w->provs[i];
        char req[24], per[32], burst[24];
        if (!rated(p))
            continue;
        snprintf(req, sizeof req, "%ld", p->rc->rate_requests);
        snprintf(per, sizeof per, "%.6g", p->rc->rate_per_seconds);
        snprintf(burst, sizeof burst, "%ld", p->rc->rate_burst);
        const char *argv[] = {"HSET",        p->k_bucket.s, "requests", req,
                              "per_seconds", per,           "burst",    burst};
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

static void on_timer_closed(uv_handle_t *h) {
    (void)h;
}

void ef_ratelimit_close(ef_worker_t *w) {
    for (size_t i = 0; i < w->nprovs; i++)
        uv_close((uv_handle_t *)&w->provs[i].wait_timer, on_timer_closed);
}
