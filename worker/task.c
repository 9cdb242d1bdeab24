// SPDX-License-Identifier: MIT
/*
 * Entity tasks: the walk of one entity through its recipe's steps.  Each
 * provider has a ready queue; dispatch starts requests while the worker has
 * fewer than --concurrency in flight and the provider is under its own cap.
 * Responses are judged by the recipe (lib/ef_recipe); transient failures
 * (429, 5xx, timeouts, resets) wait in the retry heap with exponential
 * backoff and jitter, never shorter than the server's Retry-After.  A task
 * ends with one outcome (u c n e), which chunk_ack records.
 */
#include "worker.h"

#include "ef_export.h"
#include "ef_job.h"
#include "ef_log.h"
#include "ef_text.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the retry heap (min-heap on due_ms) ---- */

static void heap_swap(ef_worker_t *w, size_t a, size_t b) {
    ef_task_t *t = w->heap[a];
    w->heap[a] = w->heap[b];
    w->heap[b] = t;
}

static void heap_push(ef_worker_t *w, ef_task_t *t) {
    if (w->nheap == w->capheap) {
        w->capheap = w->capheap ? w->capheap * 2 : 64;
        w->heap = ef_realloc(w->heap, sizeof *w->heap * w->capheap);
    }
    size_t i = w->nheap++;
    w->heap[i] = t;
    while (i > 0 && w->heap[(i - 1) / 2]->due_ms > w->heap[i]->due_ms) {
        heap_swap(w, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static ef_task_t *heap_pop(ef_worker_t *w) {
    ef_task_t *top = w->heap[0];
    w->heap[0] = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && w->heap[l]->due_ms < w->heap[m]->due_ms)
            m = l;
        if (r < w->nheap && w->heap[r]->due_ms < w->heap[m]->due_ms)
            m = r;
        if (m == i)
            break;
        heap_swap(w, i, m);
        i = m;
    }
    return top;
}

static void arm_retry_timer(ef_worker_t *w) {
    if (w->nheap == 0 || w->stopping) {
        uv_timer_stop(&w->retry_timer);
        return;
    }
    uint64_t now = ef_mono_ms(), due = w->heap[0]->due_ms;
    uv_timer_start(&w->retry_timer, ef_worker_retry_fire, due > now ? due - now : 0, 0);
}

static void ready_push(ef_prov_t *p, ef_task_t *t, int front) {
    t->queued = 1;
    p->nready++;
    t->next = NULL;
    if (front) {
        t->next = p->ready_head;
        p->ready_head = t;
        if (!p->ready_tail)
            p->ready_tail = t;
    } else {
        if (p->ready_tail)
            p->ready_tail->next = t;
        else
            p->ready_head = t;
        p->ready_tail = t;
    }
}

static ef_task_t *ready_pop(ef_prov_t *p) {
    ef_task_t *t = p->ready_head;
    if (t) {
        p->nready--;
        p->ready_head = t->next;
        if (!p->ready_head)
            p->ready_tail = NULL;
        t->next = NULL;
        t->queued = 0;
    }
    return t;
}

void ef_worker_retry_fire(uv_timer_t *timer) {
    ef_worker_t *w = timer->data;
    uint64_t now = ef_mono_ms();
    while (w->nheap > 0 && w->heap[0]->due_ms <= now) {
        ef_task_t *t = heap_pop(w);
        t->queued = 0;
        if (!ef_chunk_working(t->chunk))
            continue;
        ready_push(t->chunk->prov, t, 1);
    }
    arm_retry_timer(w);
    ef_worker_dispatch(w);
}

/* ---- outcomes ---- */

/* Gives a task its outcome; fields and error are taken over. */
static void resolve(ef_task_t *t, char outcome, char *fields, const char *error) {
    ef_chunk_t *c = t->chunk;
    ef_worker_t *w = c->w;
    t->outcome = outcome;
    t->fields = fields;
    t->error = error ? ef_strdup(error) : NULL;
    c->unresolved--;
    w->unresolved--;
    w->c_processed++;
    if (outcome == EF_OUTCOME_ERROR)
        w->c_errors++;
    if (outcome == EF_OUTCOME_UPDATED && fields && c->prov->rc->result_key) {
        ef_recipe_scope_t scope = {t->entity, t->vars, c->prov->defaults};
        ef_buf_t filled, key;
        char err[EF_ERR_LEN] = "empty key";
        ef_buf_init(&filled);
        ef_buf_init(&key);
        if (ef_template_fill(c->prov->rc->result_key, &scope, 0, &filled, err) == 0 &&
            filled.len > 0 && filled.len < 1024) {
            ef_buf_appends(&key, "farm:{");
            ef_buf_appends(&key, c->q->name);
            ef_buf_appends(&key, "}:");
            ef_buf_append(&key, filled.s, filled.len);
            t->result_key = key.s;
        } else {
            ef_debug("job %s: no result key for entity %d: %s", c->job_id, t->index, err);
            ef_buf_free(&key);
        }
        ef_buf_free(&filled);
    }
    cJSON_Delete(t->vars);
    t->vars = NULL;
    if (c->unresolved == 0)
        ef_chunk_ack(c);
    ef_worker_take_kick(w);
}

/* The wait before retry number `attempt` (from 1): exponential backoff
 * with jitter, never shorter than the server's Retry-After (ms, -1 none). */
void ef_wq_count_status(ef_wq_t *q, long status) {
    if (status >= 200 && status < 300)
        q->st_2xx++;
    else if (status == 429)
        q->st_429++;
    else if (status >= 500)
        q->st_5xx++;
    else if (status >= 400)
        q->st_4xx++;
}

uint64_t ef_task_backoff_ms(int attempt, long retry_after_ms) {
    double base = EF_WORKER_BACKOFF_BASE_MS * pow(2.0, attempt - 1);
    if (base > EF_WORKER_BACKOFF_MAX_MS)
        base = EF_WORKER_BACKOFF_MAX_MS;
    uint64_t delay = (uint64_t)(base / 2 + ef_rand01() * base / 2);
    if (retry_after_ms > 0 && (uint64_t)retry_after_ms > delay)
        delay = (uint64_t)retry_after_ms + (uint64_t)(ef_rand01() * 100);
    return delay;
}

/* Counts a transient failure of the task's request and puts it in the
 * retry heap for delay_ms (its chunk still at work; else it goes back
 * with the chunk).  The caller checked that a retry is left. */
void ef_task_retry(ef_task_t *t, uint64_t delay_ms) {
    ef_chunk_t *c = t->chunk;
    ef_worker_t *w = c->w;
    c->q->st_retries++;
    if (!ef_chunk_working(c) || t->queued)
        return;
    t->attempt++;
    t->due_ms = ef_mono_ms() + delay_ms;
    t->queued = 1;
    heap_push(w, t);
    arm_retry_timer(w);
}

static void retry_or_fail(ef_task_t *t, long retry_after_ms, const char *why) {
    ef_chunk_t *c = t->chunk;
    if (t->attempt >= c->prov->rc->retries) {
        char msg[EF_ERR_LEN];
        c->q->st_retries++;
        snprintf(msg, sizeof msg, "%s (gave up after %d retries)", why, t->attempt);
        resolve(t, EF_OUTCOME_ERROR, NULL, msg);
        return;
    }
    ef_task_retry(t, ef_task_backoff_ms(t->attempt + 1, retry_after_ms));
}

/* Moves the task on after its step's verdict: the next step, an outcome
 * (fields taken over for EF_STEP_DONE), or a retry after retry_after_ms
 * at the least.  The batch steps (batch.c) apply their verdicts here too. */
void ef_task_verdict(ef_task_t *t, ef_step_verdict_t v, cJSON *fields, const char *err,
                     long retry_after_ms) {
    ef_chunk_t *c = t->chunk;
    switch (v) {
    case EF_STEP_NEXT:
        cJSON_Delete(fields);
        t->step++;
        t->attempt = 0;
        t->auth_retried = 0;
        t->cache_checked = 0;
        if (ef_chunk_working(c))
            ready_push(c->prov, t, 1);
        break;
    case EF_STEP_DONE: {
        /* the typed JSON for export, then the pairs for the result hash
         * (which turn values into text); set before resolve(), which may
         * send the ack at once */
        char *json = ef_export_fields_json(fields);
        t->pairs = ef_ack_pairs_from(fields, &t->npairs);
        resolve(t, EF_OUTCOME_UPDATED, json, NULL);
        break;
    }
    case EF_STEP_NOT_FOUND:
        cJSON_Delete(fields);
        resolve(t, EF_OUTCOME_NOT_FOUND, NULL, NULL);
        break;
    case EF_STEP_CONFLICT:
        cJSON_Delete(fields);
        resolve(t, EF_OUTCOME_CONFLICT, NULL, NULL);
        break;
    case EF_STEP_RETRY:
        cJSON_Delete(fields);
        retry_or_fail(t, retry_after_ms, err && err[0] ? err : "transient error");
        break;
    default:
        cJSON_Delete(fields);
        resolve(t, EF_OUTCOME_ERROR, NULL, err && err[0] ? err : "provider error");
        break;
    }
}

/* Puts a task back at the front of its provider's ready queue (its chunk
 * still at work). */
void ef_task_requeue(ef_task_t *t) {
    if (ef_chunk_working(t->chunk) && !t->queued)
        ready_push(t->chunk->prov, t, 1);
}

/* Judges an answer (from the provider or from the cache) and moves the
 * task on: next step, an outcome, or a retry. */
static void handle_answer(ef_task_t *t, long status, const char *body, size_t len,
                          long retry_after_ms, int from_cache) {
    ef_chunk_t *c = t->chunk;
    char err[EF_ERR_LEN] = "";
    ef_recipe_scope_t scope = {t->entity, t->vars, c->prov->defaults};
    cJSON *fields = NULL;
    ef_step_verdict_t v = ef_recipe_judge(c->prov->rc, t->step, status, body, len, &scope, &fields, err);
    t->vars = scope.vars; /* created by the judge when the step saved something */
    if (!from_cache && ef_cache_enabled(c->prov) && t->req_url &&
        (v == EF_STEP_NEXT || v == EF_STEP_DONE || v == EF_STEP_NOT_FOUND || v == EF_STEP_CONFLICT))
        ef_cache_put(t, c->prov->rc->steps[t->step].method, t->req_url, t->req_body,
                     t->req_body ? strlen(t->req_body) : 0, status, body, len);
    free(t->req_url);
    free(t->req_body);
    t->req_url = t->req_body = NULL;
    if (from_cache)
        t->cache_hits++;
    ef_task_verdict(t, v, fields, err, retry_after_ms);
}

/* After a request (or cache lookup) ended: start more work, or, when a
 * drain has just run out of in-flight requests, hand the rest back. */
static void request_ended(ef_worker_t *w) {
    ef_worker_dispatch(w);
    if (w->draining == 1 && w->inflight == 0)
        ef_worker_release_all(w);
}

static void on_response(const ef_http_resp_t *resp, void *arg) {
    ef_task_t *t = arg;
    ef_chunk_t *c = t->chunk;
    ef_worker_t *w = c->w;
    ef_wq_t *q = c->q;
    char err[EF_ERR_LEN] = "";
    t->in_flight = 0;
    c->inflight--;
    w->inflight--;
    c->prov->inflight--;
    if (resp->err == EF_HTTP_E_ABORTED || c->state == EF_CHUNK_LOST) {
        /* the worker is stopping, or the chunk is no longer ours; a chunk
         * stopped for another reason still records what it paid for */
        free(t->req_url);
        free(t->req_body);
        t->req_url = t->req_body = NULL;
        ef_chunk_maybe_finish(c);
        if (resp->err == EF_HTTP_E_ABORTED)
            ef_worker_dispatch(w); /* the grace period's end releases everything */
        else
            request_ended(w);
        return;
    }
    if (resp->err != EF_HTTP_OK) {
        if (w->draining == 1 && w->inflight == 0) {
            /* the last request of a drain failed: hand its entity back too */
            free(t->req_url);
            free(t->req_body);
            t->req_url = t->req_body = NULL;
            ready_push(c->prov, t, 1);
            ef_worker_release_all(w);
            return;
        }
        q->st_transport++;
        free(t->req_url);
        free(t->req_body);
        t->req_url = t->req_body = NULL;
        switch (resp->err) {
        case EF_HTTP_E_TIMEOUT:
        case EF_HTTP_E_CONNECT:
        case EF_HTTP_E_RESET:
            snprintf(err, sizeof err, "%s", resp->errmsg ? resp->errmsg : "transport error");
            retry_or_fail(t, -1, err);
            break;
        case EF_HTTP_E_TOO_BIG:
            snprintf(err, sizeof err, "response over %zu bytes", c->prov->rc->max_body);
            resolve(t, EF_OUTCOME_ERROR, NULL, err);
            break;
        default:
            snprintf(err, sizeof err, "%s", resp->errmsg ? resp->errmsg : "HTTP error");
            resolve(t, EF_OUTCOME_ERROR, NULL, err);
        }
        ef_chunk_maybe_finish(c);
        ef_worker_dispatch(w);
        return;
    }
    ef_wq_count_status(q, resp->status);
    long retry_after_ms = ef_ratelimit_answer(c->prov, resp);
    if (resp->status == 401 && c->prov->auth && ef_auth_refused(c->prov, t)) {
        /* the token was refused: sent again once, with a new one (auth.c) */
        free(t->req_url);
        free(t->req_body);
        t->req_url = t->req_body = NULL;
        if (ef_chunk_working(c))
            ready_push(c->prov, t, 1);
    } else {
        handle_answer(t, resp->status, resp->body, resp->body_len, retry_after_ms, 0);
    }
    ef_chunk_maybe_finish(c);
    request_ended(w);
}

static void on_cache(ef_task_t *t, long status, const char *body, size_t len) {
    ef_chunk_t *c = t->chunk;
    ef_worker_t *w = c->w;
    t->in_flight = 0;
    c->inflight--;
    w->inflight--;
    c->prov->inflight--;
    if (c->state == EF_CHUNK_LOST || w->stopping) {
        ef_chunk_maybe_finish(c);
        return;
    }
    if (status < 0) { /* a miss: now it needs a token and a request */
        t->cache_checked = 1;
        if (ef_chunk_working(c))
            ready_push(c->prov, t, 1);
        ef_chunk_maybe_finish(c);
    } else {
        handle_answer(t, status, body, len, -1, 1);
        ef_chunk_maybe_finish(c);
    }
    request_ended(w);
}

/* Starts the request of t's current step; on a template error the entity
 * gets an error outcome. */
static void send_request(ef_task_t *t) {
    ef_chunk_t *c = t->chunk;
    ef_worker_t *w = c->w;
    const ef_recipe_t *rc = c->prov->rc;
    const ef_recipe_step_t *s = &rc->steps[t->step];
    ef_recipe_scope_t scope = {t->entity, t->vars, c->prov->defaults};
    ef_buf_t url, body;
    ef_buf_t hdr[EF_RECIPE_MAX_HEADERS];
    const char *hv[EF_RECIPE_MAX_HEADERS + 1]; /* and the OAuth2 token's */
    size_t nh = s->nheaders < EF_RECIPE_MAX_HEADERS ? s->nheaders : EF_RECIPE_MAX_HEADERS;
    char err[EF_ERR_LEN], msg[EF_ERR_LEN];
    int rc_ = 0;

    ef_buf_init(&url);
    ef_buf_init(&body);
    for (size_t i = 0; i < nh; i++)
        ef_buf_init(&hdr[i]);
    if (ef_template_fill(s->url, &scope, 1, &url, err) != 0) {
        snprintf(msg, sizeof msg, "step %.64s url: %.400s", s->name, err);
        rc_ = -1;
    }
    for (size_t i = 0; rc_ == 0 && i < nh; i++) {
        if (ef_template_fill(s->headers[i], &scope, 0, &hdr[i], err) != 0) {
            snprintf(msg, sizeof msg, "step %.64s header %zu: %.400s", s->name, i + 1, err);
            rc_ = -1;
        }
        hv[i] = hdr[i].s ? hdr[i].s : "";
    }
    if (rc_ == 0 && (s->body || s->json) && ef_recipe_body_fill(s, &scope, &body, err) != 0) {
        snprintf(msg, sizeof msg, "step %.64s body: %.400s", s->name, err);
        rc_ = -1;
    }
    if (rc_ == 0 && ef_cache_enabled(c->prov) && !t->cache_checked) {
        if (ef_cache_get(t, s->method, url.s, body.s, body.len, on_cache) == 0) {
            t->in_flight = 1;
            c->inflight++;
            w->inflight++;
            c->prov->inflight++;
        } else {
            t->cache_checked = 1; /* redis down: go to the provider */
            ready_push(c->prov, t, 1);
        }
        goto out;
    }
    if (rc_ == 0) {
        size_t nhv = nh;
        if (c->prov->auth)
            hv[nhv++] = ef_auth_header(c->prov, &t->auth_gen);
        ef_http_req_t req = {
            .method = s->method,
            .url = url.s,
            .headers = hv,
            .nheaders = nhv,
            .body = body.s,
            .body_len = body.len,
            .timeout_ms = rc->timeout_ms,
            .max_body = rc->max_body,
            .ca_file = rc->ca_file,
            .client_cert = rc->client_cert,
            .client_key = rc->client_key,
        };
        if (w->http && ef_http_request(w->http, &req, on_response, t) == 0) {
            t->requests++;
            if (ef_cache_enabled(c->prov)) {
                t->req_url = ef_strdup(url.s);
                t->req_body = body.s ? ef_strdup(body.s) : NULL;
            }
            t->in_flight = 1;
            c->inflight++;
            w->inflight++;
            c->prov->inflight++;
            c->q->st_requests++;
            w->c_requests++;
        } else {
            snprintf(msg, sizeof msg, "step %s: could not start the request", s->name);
            rc_ = -1;
        }
    }
out:
    ef_buf_free(&url);
    ef_buf_free(&body);
    for (size_t i = 0; i < nh; i++)
        ef_buf_free(&hdr[i]);
    if (rc_ != 0)
        resolve(t, EF_OUTCOME_ERROR, NULL, msg);
}

/* Needs the task a token for its next action?  A cache lookup does not. */
static int needs_token(const ef_task_t *t) {
    const ef_prov_t *p = t->chunk->prov;
    return ef_ratelimit_needed(p) && !(ef_cache_enabled(p) && !t->cache_checked);
}

void ef_worker_dispatch(ef_worker_t *w) {
    if (w->stopping || w->draining)
        return;
    size_t idle_rounds = 0;
    while (w->inflight < (size_t)w->concurrency && w->nprovs > 0 && idle_rounds < w->nprovs) {
        ef_prov_t *p = &w->provs[w->prov_rr % w->nprovs];
        w->prov_rr++;
        if (!p->ready_head || (p->rc->concurrency > 0 && p->inflight >= (size_t)p->rc->concurrency)) {
            idle_rounds++;
            continue;
        }
        ef_task_t *t = p->ready_head;
        if (!ef_chunk_working(t->chunk) || t->outcome != EF_OUTCOME_NONE) {
            ready_pop(p);
            continue;
        }
        /* a batch step: one token for the whole request, no cache */
        int batch = ef_batch_wants(t);
        int paid = 0;
        if (p->auth && (batch || !(ef_cache_enabled(p) && !t->cache_checked))) {
            /* a request (not a cache lookup) carries the farm's OAuth2 token */
            int ready = ef_auth_ready(p);
            if (ready == 0) {
                idle_rounds++;
                continue;
            }
            if (ready < 0) {
                ready_pop(p);
                idle_rounds = 0;
                resolve(t, EF_OUTCOME_ERROR, NULL, ef_auth_error(p));
                continue;
            }
        }
        if (batch ? ef_ratelimit_needed(p) : needs_token(t)) {
            if (p->tokens <= 0) {
                ef_ratelimit_ask(p);
                idle_rounds++;
                continue;
            }
            p->tokens--;
            paid = 1;
        }
        idle_rounds = 0;
        if (batch) {
            if (ef_batch_send(p) == 0 && paid)
                p->tokens++; /* nothing was sent: the token is still ours */
            continue;
        }
        ready_pop(p);
        send_request(t);
    }
}

/* ---- chunks ---- */

/* Queues a task of a chunk just started for its first request. */
void ef_task_enqueue(ef_task_t *t) { ready_push(t->chunk->prov, t, 0); }

/* Removes the chunk's tasks from every ready queue and the retry heap:
 * when it stops (no request may start for it) and before it is freed. */
void ef_chunk_purge(ef_chunk_t *c) {
    ef_worker_t *w = c->w;
    int any = 0;
    for (size_t i = 0; i < c->ntasks; i++)
        any |= c->tasks[i].queued;
    if (!any)
        return;
    ef_prov_t *p = c->prov;
    ef_task_t **pp = &p->ready_head;
    p->ready_tail = NULL;
    while (*pp) {
        if ((*pp)->chunk == c) {
            (*pp)->queued = 0;
            p->nready--;
            *pp = (*pp)->next;
        } else {
            p->ready_tail = *pp;
            pp = &(*pp)->next;
        }
    }
    size_t keep = 0;
    for (size_t i = 0; i < w->nheap; i++) {
        if (w->heap[i]->chunk == c)
            w->heap[i]->queued = 0;
        else
            w->heap[keep++] = w->heap[i];
    }
    if (keep != w->nheap) {
        w->nheap = keep;
        /* rebuild the heap order */
        for (size_t i = w->nheap / 2; i-- > 0;) {
            size_t j = i;
            for (;;) {
                size_t l = 2 * j + 1, r = l + 1, m = j;
                if (l < w->nheap && w->heap[l]->due_ms < w->heap[m]->due_ms)
                    m = l;
                if (r < w->nheap && w->heap[r]->due_ms < w->heap[m]->due_ms)
                    m = r;
                if (m == j)
                    break;
                heap_swap(w, j, m);
                j = m;
            }
        }
        arm_retry_timer(w);
    }
}
