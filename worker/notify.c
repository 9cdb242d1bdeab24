// SPDX-License-Identifier: MIT
/*
 * The worker as sender of completion webhooks (lib/ef_notify.h,
 * docs/webhooks.md).  Every worker that has the signing secret in its
 * environment looks, on its 1 s tick, at the due entries of each queue's
 * farm:{Q}:notify (ZRANGEBYSCORE, at most EF_NOTIFY_SCAN), and tries to
 * claim each one (notify_claim.lua).  The script decides: a running job's
 * entry is looked at again later, a settled one dropped, and an ended job's
 * delivery given to this worker for one lease (the attempt's timeout plus
 * EF_NOTIFY_LEASE_MARGIN_MS) unless another sender holds it.  The holder
 * POSTs the signed summary, then records the attempt (notify_done.lua):
 * delivered on a 2xx, otherwise the error and the next attempt after a
 * bounded exponential backoff, which any sender may make.  A worker that
 * dies holding a delivery leaves it to the next sender once its lease
 * ends.  The secret is kept in this process only.
 */
#include "worker.h"

#include "ef_calls.h"
#include "ef_job.h"
#include "ef_log.h"
#include "ef_notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One delivery this worker is working on, from its claim to its record. */
struct ef_notify_s {
    ef_notify_t *prev, *next; /* in w->notifies */
    ef_wq_t *q;
    char id[EF_JOB_ID_MAX_LEN + 1];
    char status[16]; /* the job's final status */
    int attempt;     /* notify_attempts after this claim */
};

static ef_notify_t *notify_create(ef_wq_t *q, const char *id) {
    ef_worker_t *w = q->w;
    ef_notify_t *n = ef_calloc(1, sizeof *n);
    n->q = q;
    snprintf(n->id, sizeof n->id, "%s", id);
    n->next = w->notifies;
    if (w->notifies)
        w->notifies->prev = n;
    w->notifies = n;
    return n;
}

static void notify_free(ef_notify_t *n) {
    ef_worker_t *w = n->q->w;
    if (n->prev)
        n->prev->next = n->next;
    else
        w->notifies = n->next;
    if (n->next)
        n->next->prev = n->prev;
    free(n);
}

void ef_notify_free_all(ef_worker_t *w) {
    while (w->notifies)
        notify_free(w->notifies);
}

static int notify_held(const ef_worker_t *w, const ef_wq_t *q, const char *id) {
    for (const ef_notify_t *n = w->notifies; n; n = n->next)
        if (n->q == q && strcmp(n->id, id) == 0)
            return 1;
    return 0;
}

/* ---- Recording an attempt ---- */

static void on_done(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_notify_t *n = arg;
    (void)rc;
    if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "lost") == 0)
        ef_warn("job %s webhook: the delivery went to another sender before attempt %d was "
                "recorded",
                n->id, n->attempt);
    else if (r && r->type == REDIS_REPLY_ERROR)
        ef_warn("job %s webhook: notify_done: %s", n->id, r->str);
    else if (!r)
        ef_warn("job %s webhook: attempt %d not recorded (redis connection lost); the lease "
                "brings it back",
                n->id, n->attempt);
    notify_free(n);
}

static void record(ef_notify_t *n, int delivered, const char *error) {
    ef_worker_t *w = n->q->w;
    ef_call_t call;
    long retry = delivered ? 0 : ef_notify_backoff_ms(n->attempt, ef_rand64());
    ef_call_notify_done_t a = {.queue = n->q->name,
                               .id = n->id,
                               .worker_id = w->id,
                               .delivered = delivered,
                               .error = error,
                               .retry_ms = retry};
    if (delivered)
        ef_info("job %s webhook delivered (%s, attempt %d)", n->id, n->status, n->attempt);
    else
        ef_warn("job %s webhook attempt %d failed: %s; next attempt in %ld ms", n->id, n->attempt,
                error, retry);
    if (!w->cmd_ready ||
        ef_redis_call(w->cmd, ef_call_notify_done(&call, &a), on_done, n, 0) != 0) {
        ef_call_free(&call);
        notify_free(n); /* the lease brings it back */
        return;
    }
    ef_call_free(&call);
}

/* ---- The POST ---- */

static void on_posted(const ef_http_resp_t *resp, void *arg) {
    ef_notify_t *n = arg;
    ef_worker_t *w = n->q->w;
    char error[EF_NOTIFY_ERROR_MAX];
    if (resp->err == EF_HTTP_E_ABORTED || w->stopping) {
        notify_free(n); /* shutting down: the lease brings it back */
        return;
    }
    if (resp->err == EF_HTTP_OK && resp->status >= 200 && resp->status < 300) {
        record(n, 1, NULL);
        return;
    }
    if (resp->err == EF_HTTP_OK)
        snprintf(error, sizeof error, "HTTP %ld", resp->status);
    else
        snprintf(error, sizeof error, "%s", resp->errmsg ? resp->errmsg : "transport error");
    record(n, 0, error);
}

/* Finds field name in HGETALL pairs element[from..]; NULL when absent. */
static const char *pair_get(const redisReply *r, size_t from, const char *name) {
    for (size_t i = from; i + 1 < r->elements; i += 2)
        if (r->element[i]->str && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1]->str;
    return NULL;
}

/* Sends the claimed delivery: the job's summary, signed. */
static void post(ef_notify_t *n, const redisReply *r) {
    ef_worker_t *w = n->q->w;
    size_t np = r->elements - 3;
    const char **fields = ef_calloc(np + 1, sizeof *fields);
    size_t *lens = ef_calloc(np + 1, sizeof *lens);
    const char *url = pair_get(r, 3, "notify_url"), *status = pair_get(r, 3, "status");
    char sig[EF_NOTIFY_SIG_LEN], hsig[EF_NOTIFY_SIG_LEN + 32], hkey[EF_JOB_ID_MAX_LEN + 64],
        hatt[64];
    char *body;
    for (size_t i = 0; i < np; i++) {
        fields[i] = r->element[3 + i]->str ? r->element[3 + i]->str : "";
        lens[i] = r->element[3 + i]->str ? r->element[3 + i]->len : 0;
    }
    body = ef_notify_body(fields, lens, np, ef_now_ms());
    free(fields);
    free(lens);
    snprintf(n->status, sizeof n->status, "%s", status ? status : "");
    if (!body || !url || !ef_notify_url_valid(url, NULL) ||
        ef_notify_sign(w->notify_secret, w->notify_secret_len, body, strlen(body), sig) != 0) {
        free(body);
        record(n, 0, "the job's webhook URL or summary cannot be sent");
        return;
    }
    snprintf(hsig, sizeof hsig, "X-Enrichfarm-Signature: %s", sig);
    snprintf(hkey, sizeof hkey, "Idempotency-Key: %s:%s", n->id, n->status);
    snprintf(hatt, sizeof hatt, "X-Enrichfarm-Attempt: %d", n->attempt);
    const char *headers[] = {"Content-Type: application/json", hsig, hkey, hatt};
    ef_http_req_t req = {.method = "POST",
                         .url = url,
                         .headers = headers,
                         .nheaders = EF_ARRAY_LEN(headers),
                         .body = body,
                         .body_len = strlen(body),
                         .timeout_ms = w->notify_timeout_ms,
                         .max_body = 64 * 1024};
    int rc = w->http ? ef_http_request(w->http, &req, on_posted, n) : -1;
    free(body); /* copied by ef_http_request */
    if (rc != 0)
        record(n, 0, "the HTTP client could not start the request");
}

/* ---- Claiming ---- */

static void on_claim(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_notify_t *n = arg;
    (void)rc;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || !r->element[0]->str) {
        if (r && r->type == REDIS_REPLY_ERROR)
            ef_warn("job %s webhook: notify_claim: %s", n->id, r->str);
        notify_free(n);
        return;
    }
    const char *what = r->element[0]->str;
    if (strcmp(what, "failed") == 0)
        ef_warn("job %s webhook failed: no attempt succeeded before its give-up time", n->id);
    if (strcmp(what, "claimed") != 0 || r->elements < 5 || (r->elements - 3) % 2 != 0 ||
        n->q->w->stopping) {
        notify_free(n);
        return;
    }
    n->attempt = r->element[1]->type == REDIS_REPLY_INTEGER ? (int)r->element[1]->integer : 0;
    post(n, r);
}

static void on_scan(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_wq_t *q = arg;
    ef_worker_t *w = q->w;
    (void)rc;
    q->notify_scanning = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || w->stopping || w->draining || !w->cmd_ready)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        const char *id = r->element[i]->str;
        ef_call_t call;
        if (!id || !ef_job_id_valid(id) || notify_held(w, q, id))
            continue;
        ef_notify_t *n = notify_create(q, id);
        ef_call_notify_claim_t a = {.queue = q->name,
                                    .id = id,
                                    .worker_id = w->id,
                                    .lease_ms = w->notify_timeout_ms + EF_NOTIFY_LEASE_MARGIN_MS,
                                    .recheck_ms = EF_NOTIFY_RECHECK_MS,
                                    .give_up_ms = w->notify_give_up_ms};
        if (ef_redis_call(w->cmd, ef_call_notify_claim(&call, &a), on_claim, n, 0) != 0)
            notify_free(n);
        ef_call_free(&call);
    }
}

void ef_notify_tick(ef_worker_t *w) {
    char now[24], limit[16];
    if (!w->notify_secret || w->draining || w->stopping || !w->cmd_ready)
        return;
    snprintf(now, sizeof now, "%lld", (long long)ef_now_ms());
    snprintf(limit, sizeof limit, "%d", EF_NOTIFY_SCAN);
    for (size_t i = 0; i < w->nqueues; i++) {
        ef_wq_t *q = &w->queues[i];
        const char *argv[] = {"ZRANGEBYSCORE", q->k_notify.s, "-inf", now, "LIMIT", "0", limit};
        if (q->notify_scanning)
            continue;
        if (ef_redis_cmd(w->cmd, on_scan, q, 0, (int)EF_ARRAY_LEN(argv), argv, NULL) == 0)
            q->notify_scanning = 1;
    }
}
