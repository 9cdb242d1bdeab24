// SPDX-License-Identifier: MIT
/*
 * Batch requests: a recipe whose first step has a "batch" block asks the
 * provider about up to `max` entities in one request (lib/ef_batch builds
 * it and splits the answer).  Dispatch (task.c) sees a batch task at the
 * head of its provider's ready queue, spends ONE token and calls
 * ef_batch_send, which gathers the other batch tasks waiting for that
 * provider (from any chunk held) and sends them together.
 *
 * The answer goes back to each entity by its id: its element is judged
 * like a step's answer (next step or extracted fields), no element is
 * not_found, several a conflict.  A request that fails (5xx, 408, 429,
 * timeout, reset) is retried whole: each of its entities counts the
 * failure (task attempt) and waits in the retry heap, so they come back
 * together and are batched again.  An entity whose batches failed
 * `retries` times, or whose batch answer could not be split (another 4xx,
 * malformed JSON, no array), is asked alone from then on (task single):
 * a request of its own, with its own retries, whose failure is the
 * entity's error.  So one bad id cannot sink the others.
 *
 * Counters: a batch request is one request in flight for the worker and
 * the provider (--concurrency, the recipe's concurrency), while each of
 * its tasks is in flight for its chunk (a chunk is quiet only when none
 * is).  Answers for a chunk lost meanwhile are ignored, as in task.c.
 * With an OAuth2 token (auth.c) a batch carries it as any request does,
 * and a 401 sends the batch's entities again once with a new token.
 */
#include "worker.h"

#include "ef_batch.h"
#include "ef_job.h"
#include "ef_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EF_BATCH_HAND_MAX 8000 /* entities a worker holds for its batches, at most */
#define EF_BATCH_HAND_REQS 4   /* batches' worth held per provider beyond --concurrency */

typedef struct {
    ef_prov_t *p;
    size_t n;
    ef_task_t **tasks;
} batch_req_t;

static const ef_recipe_step_t *batch_step(const ef_prov_t *p) {
    return p->rc->nsteps > 0 && p->rc->steps[0].batch ? &p->rc->steps[0] : NULL;
}

/* Whether the task's next request is a batch request. */
int ef_batch_wants(const ef_task_t *t) {
    return t->step == 0 && batch_step(t->chunk->prov) != NULL;
}

/* How many requests the tasks in p's ready queue need: what the provider
 * asks its token bucket for.  Without a batch step, one per task; with
 * one, a request per `max` tasks at the batch step, plus one for each
 * task asked alone or at a later step (the queue is walked: it holds at
 * most the entities in hand). */
size_t ef_batch_requests(const ef_prov_t *p) {
    const ef_recipe_step_t *st = batch_step(p);
    size_t batched = 0, alone = 0;
    if (!st)
        return p->nready;
    for (const ef_task_t *t = p->ready_head; t; t = t->next) {
        if (ef_batch_wants(t) && !t->single)
            batched++;
        else
            alone++;
    }
    return alone + (batched + (size_t)st->batch->max - 1) / (size_t)st->batch->max;
}

/* Entities the worker should hold beyond its usual prefetch so that its
 * batch providers can fill their requests. */
size_t ef_batch_hand(const ef_worker_t *w) {
    size_t more = 0;
    for (size_t i = 0; i < w->nprovs; i++) {
        const ef_recipe_step_t *st = batch_step(&w->provs[i]);
        if (st)
            more += (size_t)st->batch->max * EF_BATCH_HAND_REQS;
    }
    return more < EF_BATCH_HAND_MAX ? more : EF_BATCH_HAND_MAX;
}

/* Unlinks the next up to max tasks for a batch from p's ready queue (a
 * single task at the head goes alone), dropping tasks whose chunk stopped
 * or that already have an outcome.  Returns how many are in out. */
static size_t gather(ef_prov_t *p, ef_task_t **out, size_t max) {
    ef_task_t **pp = &p->ready_head, *last = NULL;
    size_t n = 0;
    int alone = 0;
    while (*pp && n < max && !alone) {
        ef_task_t *t = *pp;
        int dead = !ef_chunk_working(t->chunk) || t->outcome != EF_OUTCOME_NONE;
        int take = !dead && ef_batch_wants(t) && (n == 0 || !t->single);
        if (!dead && !take) {
            last = t;
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        t->next = NULL;
        t->queued = 0;
        p->nready--;
        if (take) {
            out[n++] = t;
            alone = t->single;
        }
    }
    /* the tail is the last task kept, unless the scan stopped early */
    if (!*pp)
        p->ready_tail = last;
    else if (!p->ready_head)
        p->ready_tail = NULL;
    return n;
}

static void on_batch_response(const ef_http_resp_t *resp, void *arg);

/* Sends one batch request for the tasks at the head of p's ready queue.
 * Entities that cannot be asked (no id, an item that does not fill) get an
 * error outcome at once.  Returns 1 when a request went out, else 0 (the
 * caller keeps its token). */
int ef_batch_send(ef_prov_t *p) {
    ef_worker_t *w = p->w;
    const ef_recipe_step_t *st = batch_step(p);
    const ef_recipe_t *rc = p->rc;
    size_t max = (size_t)st->batch->max, n = 0, used = 0;
    ef_task_t **got = ef_calloc(max, sizeof *got);
    cJSON **ents = ef_calloc(max, sizeof *ents);
    const char **ids = ef_calloc(max, sizeof *ids);
    char(*nums)[64] = ef_calloc(max, sizeof *nums);
    ef_recipe_scope_t shared = {NULL, NULL, p->defaults};
    ef_buf_t url, body;
    ef_buf_t hdr[EF_RECIPE_MAX_HEADERS];
    const char *hv[EF_RECIPE_MAX_HEADERS + 1]; /* and the OAuth2 token's */
    size_t nh = st->nheaders < EF_RECIPE_MAX_HEADERS ? st->nheaders : EF_RECIPE_MAX_HEADERS;
    size_t nhv = nh;
    unsigned gen = 0;
    char err[EF_ERR_LEN], msg[EF_ERR_LEN];
    int sent = 0, bad = 0;

    ef_buf_init(&url);
    ef_buf_init(&body);
    for (size_t i = 0; i < nh; i++)
        ef_buf_init(&hdr[i]);
    size_t ngot = gather(p, got, max);
    for (size_t i = 0; i < ngot; i++) {
        ef_task_t *t = got[i];
        if (ef_batch_entity_check(st, t->entity, &shared, nums[n], sizeof nums[n], &ids[n], err) <
            0) {
            snprintf(msg, sizeof msg, "step %.64s: %.400s", st->name, err);
            ef_task_verdict(t, EF_STEP_ERROR, NULL, msg, -1);
            continue;
        }
        got[n] = t;
        ents[n] = t->entity;
        n++;
    }
    if (n == 0)
        goto out;
    if (ef_batch_fill_url(st, ids, n, &shared, &url, &used, err) != 0) {
        snprintf(msg, sizeof msg, "step %.64s url: %.400s", st->name, err);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < nh; i++) {
        if (ef_template_fill(st->headers[i], &shared, EF_TMPL_RAW, &hdr[i], err) != 0) {
            snprintf(msg, sizeof msg, "step %.64s header %zu: %.400s", st->name, i + 1, err);
            bad = 1;
        }
        hv[i] = hdr[i].s ? hdr[i].s : "";
    }
    if (bad) {
        /* the shared parts do not fill (an unset ${ENV}): every entity */
        for (size_t i = 0; i < n; i++)
            ef_task_verdict(got[i], EF_STEP_ERROR, NULL, msg, -1);
        goto out;
    }
    /* ids the URL had no room for wait for the next request, in order */
    for (size_t i = n; i-- > used;)
        ef_task_requeue(got[i]);
    n = used;
    if (ef_batch_fill_body(st, ents, ids, n, &shared, &body, err) != 0) {
        snprintf(msg, sizeof msg, "step %.64s body: %.400s", st->name, err);
        for (size_t i = 0; i < n; i++)
            ef_task_verdict(got[i], EF_STEP_ERROR, NULL, msg, -1);
        goto out;
    }
    if (p->auth)
        hv[nhv++] = ef_auth_header(p, &gen);
    ef_http_req_t req = {
        .method = st->method,
        .url = url.s,
        .headers = hv,
        .nheaders = nhv,
        .body = body.len ? body.s : NULL,
        .body_len = body.len,
        .timeout_ms = rc->timeout_ms,
        .max_body = rc->max_body,
        .ca_file = rc->ca_file,
        .client_cert = rc->client_cert,
        .client_key = rc->client_key,
    };
    batch_req_t *br = ef_calloc(1, sizeof *br);
    br->p = p;
    br->n = n;
    br->tasks = ef_calloc(n, sizeof *br->tasks);
    memcpy(br->tasks, got, n * sizeof *got);
    if (n == 1)
        got[0]->single = 1; /* a batch of one is a single request */
    if (!w->http || ef_http_request(w->http, &req, on_batch_response, br) != 0) {
        snprintf(msg, sizeof msg, "step %s: could not start the request", st->name);
        for (size_t i = 0; i < n; i++)
            ef_task_verdict(got[i], EF_STEP_ERROR, NULL, msg, -1);
        free(br->tasks);
        free(br);
        goto out;
    }
    sent = 1;
    w->inflight++;
    p->inflight++;
    w->c_requests++;
    got[0]->chunk->q->st_requests++;
    for (size_t i = 0; i < n; i++) {
        got[i]->auth_gen = gen;
        got[i]->in_flight = 1;
        got[i]->requests++;
        got[i]->chunk->inflight++;
    }
out:
    ef_buf_free(&url);
    ef_buf_free(&body);
    for (size_t i = 0; i < nh; i++)
        ef_buf_free(&hdr[i]);
    free(got);
    free(ents);
    free(ids);
    free(nums);
    return sent;
}

/* ---- The answer ---- */

/* How a whole batch answer went. */
typedef enum { ANS_SPLIT, ANS_NOT_FOUND, ANS_RETRY, ANS_UNUSABLE, ANS_REFUSED } answer_t;

/* Applies the split answer to one task: its element, or none, or several. */
static void apply_split(ef_task_t *t, const ef_batch_split_t *sp) {
    const ef_recipe_step_t *st = batch_step(t->chunk->prov);
    const ef_recipe_t *rc = t->chunk->prov->rc;
    char num[64], err[EF_ERR_LEN] = "";
    const char *id;
    size_t count = 0;
    cJSON *el = NULL, *fields = NULL;
    if (ef_batch_entity_id(st->batch, t->entity, num, sizeof num, &id, err) == 0)
        el = ef_batch_find(sp, id, &count);
    if (!el) {
        ef_task_verdict(t, EF_STEP_NOT_FOUND, NULL, NULL, -1);
        return;
    }
    if (count > 1) {
        ef_task_verdict(t, EF_STEP_CONFLICT, NULL, NULL, -1);
        return;
    }
    ef_recipe_scope_t scope = {t->entity, t->vars, t->chunk->prov->defaults};
    ef_step_verdict_t v = ef_recipe_judge_node(rc, 0, el, &scope, &fields, err);
    t->vars = scope.vars;
    ef_task_verdict(t, v, fields, err, -1);
}

/* A failed batch: retried whole while the task has retries left (every
 * task of the batch waits the same delay_ms, so they come back together),
 * then the task is asked alone.  A task already alone fails as any
 * request does. */
static void apply_failure(ef_task_t *t, answer_t how, const char *why, long retry_after_ms,
                          uint64_t delay_ms) {
    const ef_recipe_t *rc = t->chunk->prov->rc;
    if (t->single) {
        ef_task_verdict(t, how == ANS_RETRY ? EF_STEP_RETRY : EF_STEP_ERROR, NULL, why,
                        retry_after_ms);
        return;
    }
    if (how == ANS_RETRY && t->attempt < rc->retries) {
        ef_task_retry(t, delay_ms);
        return;
    }
    t->single = 1;
    t->attempt = 0;
    ef_task_requeue(t);
}

static void on_batch_response(const ef_http_resp_t *resp, void *arg) {
    batch_req_t *br = arg;
    ef_prov_t *p = br->p;
    ef_worker_t *w = p->w;
    const ef_recipe_step_t *st = batch_step(p);
    ef_chunk_t **chunks = ef_calloc(br->n, sizeof *chunks);
    size_t nchunks = 0;
    char err[EF_ERR_LEN] = "";
    ef_batch_split_t sp;
    answer_t how = ANS_UNUSABLE;
    long retry_after_ms = -1;

    memset(&sp, 0, sizeof sp);
    w->inflight--;
    p->inflight--;
    for (size_t i = 0; i < br->n; i++) {
        ef_task_t *t = br->tasks[i];
        size_t k = 0;
        t->in_flight = 0;
        t->chunk->inflight--;
        while (k < nchunks && chunks[k] != t->chunk)
            k++;
        if (k == nchunks)
            chunks[nchunks++] = t->chunk;
    }
    if (resp->err == EF_HTTP_E_ABORTED)
        goto finish; /* the worker is stopping */
    if (resp->err != EF_HTTP_OK && w->draining == 1 && w->inflight == 0) {
        /* the last request of a drain failed: its entities go back too */
        for (size_t i = 0; i < br->n; i++)
            if (br->tasks[i]->chunk->state != EF_CHUNK_LOST)
                ef_task_requeue(br->tasks[i]);
        ef_worker_release_all(w);
        goto done;
    }
    ef_wq_t *q = br->tasks[0]->chunk->q;
    if (resp->err == EF_HTTP_OK) {
        ef_wq_count_status(q, resp->status);
        retry_after_ms = ef_ratelimit_answer(p, resp);
        if (resp->status == 401 && p->auth) {
            how = ANS_REFUSED; /* the OAuth2 token: renewed, the batch sent again once */
            snprintf(err, sizeof err, "HTTP 401");
        } else
        switch (ef_batch_judge(st, resp->status, resp->body, resp->body_len, p->rc->max_body, &sp,
                               err)) {
        case EF_BATCH_SPLIT: how = ANS_SPLIT; break;
        case EF_BATCH_NOT_FOUND: how = ANS_NOT_FOUND; break;
        case EF_BATCH_RETRY: how = ANS_RETRY; break;
        default: how = ANS_UNUSABLE; break;
        }
    } else {
        q->st_transport++;
        if (resp->err == EF_HTTP_E_TIMEOUT || resp->err == EF_HTTP_E_CONNECT ||
            resp->err == EF_HTTP_E_RESET)
            how = ANS_RETRY;
        if (resp->err == EF_HTTP_E_TOO_BIG)
            snprintf(err, sizeof err, "response over %zu bytes", p->rc->max_body);
        else
            snprintf(err, sizeof err, "%s", resp->errmsg ? resp->errmsg : "transport error");
    }
    /* one delay for the whole batch, from its first task's count */
    uint64_t delay_ms = ef_task_backoff_ms(br->tasks[0]->attempt + 1, retry_after_ms);
    if (how != ANS_SPLIT && br->n > 1)
        ef_debug("provider %s: a batch of %zu failed (%s)", p->rc->name, br->n, err);
    for (size_t i = 0; i < br->n; i++) {
        ef_task_t *t = br->tasks[i];
        if (t->chunk->state == EF_CHUNK_LOST || t->outcome != EF_OUTCOME_NONE)
            continue; /* another worker has it now */
        switch (how) {
        case ANS_SPLIT: apply_split(t, &sp); break;
        case ANS_NOT_FOUND: ef_task_verdict(t, EF_STEP_NOT_FOUND, NULL, NULL, -1); break;
        case ANS_REFUSED:
            if (ef_auth_refused(p, t))
                ef_task_requeue(t);
            else
                apply_failure(t, ANS_UNUSABLE, err, -1, delay_ms);
            break;
        default: apply_failure(t, how, err, retry_after_ms, delay_ms); break;
        }
    }
finish:
    /* c->inflight is down for every chunk: each may be quiet now (and be
     * freed by its own call, which touches no other chunk) */
    for (size_t k = 0; k < nchunks; k++)
        ef_chunk_maybe_finish(chunks[k]);
    ef_worker_dispatch(w);
    if (resp->err != EF_HTTP_E_ABORTED && w->draining == 1 && w->inflight == 0)
        ef_worker_release_all(w);
done:
    ef_batch_split_free(&sp);
    free(chunks);
    free(br->tasks);
    free(br);
}
