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

#include "ef_export.h"
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
    long next;                 /* next chunk to read */
    long per;                  /* chunks per round trip */
    ef_export_filter_t filter; /* which entities, from ?outcome= */
    int started;               /* headers sent */
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
    int have_o = outc && outc->type == REDIS_REPLY_STRING;
    int have_r = res && res->type == REDIS_REPLY_STRING;
    ef_export_chunk(&x->out, data->str, data->len, have_o ? outc->str : NULL,
                    have_o ? outc->len : 0, have_r ? res->str : NULL, have_r ? res->len : 0,
                    &x->filter);
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
    long last = x->next + x->per;
    if (last > x->chunks_total)
        last = x->chunks_total;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, results_chunks_done);
    ef_sd_batch_job_chunks(b, x->queue, x->id, x->next, last, 1);
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
    if (x->chunk_size < 1 || x->chunk_size > EF_JOB_CHUNK_SIZE_MAX) {
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
        if (ef_outcome_parse(want, &x->filter.outcome) != 0) {
            ef_buf_t names;
            ef_buf_init(&names);
            for (size_t i = 0; i < ef_outcomes_count; i++) {
                ef_buf_appends(&names, ef_outcomes[i].name);
                ef_buf_appends(&names, i + 1 < ef_outcomes_count ? ", " : " or ");
            }
            ef_sd_respond_error(rq, 400, "outcome must be %s" EF_OUTCOME_PENDING_NAME, names.s);
            ef_buf_free(&names);
            return;
        }
        x->filter.only = 1;
    }
    ef_sd_batch_t *b = ef_sd_req_batch(rq, results_job_done);
    ef_sd_batch_cmdv(b, "HMGET", ef_key_job(&k, queue, id, EF_KEY_JOB), "chunks_total",
                     "chunk_size", "status", NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}
