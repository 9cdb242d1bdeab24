// SPDX-License-Identifier: MIT
/*
 * GET /jobs/ID/results: every entity of a job with its outcome and
 * extracted fields, one NDJSON line each, in chunk order:
 *
 *   {"entity":{"id":"1",...},"outcome":"updated","result":{"title":"..."}}
 *
 * (the same lines as `enqueuer results`).  The export is streamed, never
 * built in memory: a few chunks are read per round trip (their entities,
 * outcome characters and result fields), written as one piece of the
 * chunked body, and the next round trip starts only once the socket has
 * drained below the low-water mark.  A slow reader therefore holds one
 * piece in memory, whatever the job's size.  ?outcome=errors (or updated,
 * conflicts, not_found, pending) keeps the entities with that outcome.
 */
#include "statusd.h"

#include "ef_job.h"
#include "ef_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESULTS_ENTITIES_PER_TRIP 512 /* entities read per round trip (whole chunks) */

typedef struct {
    char queue[EF_QUEUE_MAX_LEN + 1];
    char id[EF_JOB_ID_MAX_LEN + 1];
    long chunks_total;
    long chunk_size;
    long next; /* next chunk to read */
    long per;  /* chunks per round trip */
    char want; /* outcome character to keep, 0 = all */
    int want_set;
    int started; /* headers sent */
    ef_buf_t out;
} results_ctx_t;

static void results_free(void *p) {
    results_ctx_t *x = p;
    ef_buf_free(&x->out);
    free(x);
}

static void results_fetch(ef_sd_req_t *rq);

static void fail(ef_sd_req_t *rq, int status, const char *msg) {
    results_ctx_t *x = rq->ctx;
    if (x->started) {
        ef_warn("results of job %s cut short: %s", x->id, msg);
        ef_sd_stream_abort(rq);
    } else if (status == 503) {
        ef_sd_respond_unavailable(rq);
    } else {
        ef_sd_respond_error(rq, status, "%s", msg);
    }
}

/* Appends the lines of one chunk to x->out. */
static void render_chunk(results_ctx_t *x, const ef_sd_reply_t *data, const ef_sd_reply_t *outc,
                         const ef_sd_reply_t *res) {
    const char *p = data->str, *end = data->str + data->len;
    long i = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char oc = EF_OUTCOME_NONE;
        if (outc && outc->str && (size_t)i < outc->len)
            oc = outc->str[i];
        if (n > 0 && (!x->want_set || oc == x->want ||
                      (x->want == EF_OUTCOME_NONE && !strchr("ucne", oc)))) {
            const char *rj = NULL;
            size_t rl = 0;
            int have = res && res->type == REDIS_REPLY_STRING &&
                       ef_job_result_find(res->str, res->len, i, &rj, &rl) && rl > 0;
            ef_buf_appends(&x->out, "{\"entity\":");
            ef_buf_append(&x->out, p, n);
            ef_buf_appends(&x->out, ",\"outcome\":\"");
            ef_buf_appends(&x->out, ef_outcome_name(oc));
            ef_buf_appendc(&x->out, '"');
            if (have) {
                ef_buf_appends(&x->out, ",\"result\":");
                ef_buf_append(&x->out, rj, rl);
            }
            ef_buf_appends(&x->out, "}\n");
        }
        if (n > 0)
            i++;
        p += n + 1;
    }
}

static void results_chunks_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    results_ctx_t *x = rq->ctx;
    long got = (long)(b->received / 3);
    if (b->down) {
        fail(rq, 503, "redis unavailable");
        return;
    }
    ef_buf_reset(&x->out);
    for (long c = 0; c < got; c++) {
        const ef_sd_reply_t *data = ef_sd_batch_reply(b, (size_t)c * 3);
        const ef_sd_reply_t *outc = ef_sd_batch_reply(b, (size_t)c * 3 + 1);
        const ef_sd_reply_t *res = ef_sd_batch_reply(b, (size_t)c * 3 + 2);
        if (!data || data->type != REDIS_REPLY_STRING) {
            char msg[160];
            snprintf(msg, sizeof msg, "chunk %ld of job %s is gone", x->next + c, x->id);
            fail(rq, 410, msg);
            return;
        }
        render_chunk(x, data, outc, res);
    }
    x->next += got;
    if (!x->started) {
        x->started = 1;
        ef_sd_stream_begin(rq, 200, "application/x-ndjson", "Cache-Control: no-store\r\n");
    }
    if (x->out.len)
        ef_sd_stream_write(rq, x->out.s, x->out.len);
    if (x->next >= x->chunks_total) {
        ef_sd_stream_end(rq);
        return;
    }
    ef_sd_stream_when_drained(rq, results_fetch);
}

static void results_fetch(ef_sd_req_t *rq) {
    results_ctx_t *x = rq->ctx;
    ef_key_t kc, ko, kr;
    long last = x->next + x->per;
    char num[24];
    if (last > x->chunks_total)
        last = x->chunks_total;
    ef_key_job(&kc, x->queue, x->id, EF_KEY_JOB_CHUNKS);
    ef_key_job(&ko, x->queue, x->id, EF_KEY_JOB_OUTCOMES);
    ef_key_job(&kr, x->queue, x->id, EF_KEY_JOB_RESULTS);
    ef_sd_batch_t *b = ef_sd_req_batch(rq, results_chunks_done);
    for (long c = x->next; c < last; c++) {
        snprintf(num, sizeof num, "%ld", c);
        ef_sd_batch_cmdv(b, "HGET", kc.s, num, NULL);
        ef_sd_batch_cmdv(b, "HGET", ko.s, num, NULL);
        ef_sd_batch_cmdv(b, "HGET", kr.s, num, NULL);
    }
    if (ef_sd_batch_end(b) != 0)
        fail(rq, 503, "redis unavailable");
}

static void results_job_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    results_ctx_t *x = rq->ctx;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    if (b->down || !r) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !r->element[2]->str) {
        ef_sd_respond_error(rq, 404, "job %s not found in queue %s", x->id, x->queue);
        return;
    }
    x->chunks_total = (long)ef_sd_reply_int(r->element[0]);
    x->chunk_size = (long)ef_sd_reply_int(r->element[1]);
    if (x->chunk_size < 1 || x->chunk_size > 100000) {
        ef_sd_respond_error(rq, 500, "job %s has a bad chunk_size", x->id);
        return;
    }
    x->per = RESULTS_ENTITIES_PER_TRIP / x->chunk_size;
    if (x->per < 1)
        x->per = 1;
    if (x->chunks_total <= 0 || rq->head_only) {
        x->started = 1;
        ef_sd_stream_begin(rq, 200, "application/x-ndjson", "Cache-Control: no-store\r\n");
        ef_sd_stream_end(rq);
        return;
    }
    results_fetch(rq);
}

void ef_sd_route_job_results(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    const char *queue = a->queue, *id = a->job;
    char want[16];
    ef_key_t k;
    int r = ef_sd_query_str(rq, "outcome", want, sizeof want);
    results_ctx_t *x;
    if (r < 0)
        return;
    x = ef_calloc(1, sizeof *x);
    rq->ctx = x;
    rq->ctx_free = results_free;
    snprintf(x->queue, sizeof x->queue, "%s", queue);
    snprintf(x->id, sizeof x->id, "%s", id);
    ef_buf_init(&x->out);
    if (r > 0 && want[0]) {
        static const struct {
            const char *name;
            char c;
        } map[] = {{"updated", EF_OUTCOME_UPDATED},
                   {"conflicts", EF_OUTCOME_CONFLICT},
                   {"not_found", EF_OUTCOME_NOT_FOUND},
                   {"errors", EF_OUTCOME_ERROR},
                   {"pending", EF_OUTCOME_NONE}};
        for (size_t i = 0; i < EF_ARRAY_LEN(map); i++)
            if (strcmp(want, map[i].name) == 0) {
                x->want = map[i].c;
                x->want_set = 1;
            }
        if (!x->want_set) {
            ef_sd_respond_error(rq, 400,
                                "outcome must be updated, conflicts, not_found, errors or pending");
            return;
        }
    }
    ef_sd_batch_t *b = ef_sd_req_batch(rq, results_job_done);
    ef_sd_batch_cmdv(b, "HMGET", ef_key_job(&k, queue, id, EF_KEY_JOB), "chunks_total",
                     "chunk_size", "status", NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}
