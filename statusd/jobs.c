// SPDX-License-Identifier: MIT
/*
 * Job routes that read or flip state: one job (with ETag), the paginated
 * job list, the error log, and the control verbs (cancel, pause, resume of
 * a job; pause and resume of a queue), which run the same Lua scripts as
 * the enqueuer's admin verbs.
 */
#include "statusd.h"

#include "ef_job.h"
#include "ef_keys.h"
#include "ef_scripts_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char queue[EF_QUEUE_MAX_LEN + 1];
    char id[EF_JOB_ID_MAX_LEN + 1];
    char verb[16];
    long long limit;
} job_ctx_t;

static job_ctx_t *job_ctx(ef_sd_req_t *rq, const char *queue, const char *id) {
    job_ctx_t *x = ef_calloc(1, sizeof *x);
    snprintf(x->queue, sizeof x->queue, "%s", queue);
    snprintf(x->id, sizeof x->id, "%s", id ? id : "");
    rq->ctx = x;
    rq->ctx_free = free;
    return x;
}

/* Checks a batch for the common failures and answers them; 1 when the
 * caller may go on. */
static int batch_ok(ef_sd_req_t *rq, ef_sd_batch_t *b) {
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return 0;
    }
    for (size_t i = 0; i < b->received; i++) {
        const ef_sd_reply_t *r = b->replies[i];
        if (r && r->type == REDIS_REPLY_ERROR) {
            ef_sd_respond_redis_error(rq, r->str);
            return 0;
        }
    }
    return 1;
}

/* ---- GET /jobs/ID ---- */

/* Weak comparison of an entity tag against an If-None-Match list. */
static int etag_matches(const char *header, const char *etag) {
    size_t el = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == el && memcmp(p, etag, el) == 0)
            return 1;
        p = e;
    }
    return 0;
}

static void job_get_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    job_ctx_t *x = rq->ctx;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    char etag[40], hdr[128];
    cJSON *o;
    if (!batch_ok(rq, b))
        return;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        ef_sd_respond_error(rq, 404, "job %s not found in queue %s", x->id, x->queue);
        return;
    }
    ef_sd_job_etag(r, etag, sizeof etag);
    snprintf(hdr, sizeof hdr, "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
    if (rq->if_none_match && etag_matches(rq->if_none_match, etag)) {
        ef_sd_respond(rq, 304, NULL, hdr, NULL, 0);
        return;
    }
    o = ef_sd_job_json(r, ef_sd_redis_ms(rq->sd));
    if (!o) {
        ef_sd_respond_error(rq, 404, "job %s not found in queue %s", x->id, x->queue);
        return;
    }
    ef_sd_respond_json(rq, 200, o, hdr);
    cJSON_Delete(o);
}

void ef_sd_route_job_get(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    const char *queue = a->queue, *id = a->job;
    ef_key_t k;
    job_ctx(rq, queue, id);
    ef_sd_batch_t *b = ef_sd_req_batch(rq, job_get_done);
    ef_sd_batch_cmdv(b, "HGETALL", ef_key_job(&k, queue, id, EF_KEY_JOB), NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}

/* ---- GET /jobs ---- */

#define LIST_SCAN_MAX 2000 /* job ids looked at per request */

typedef struct {
    char queue[EF_QUEUE_MAX_LEN + 1];
    char status[16];
    long long limit;
    char max[32];        /* score bound of the next page: "+inf" or a number */
    long long skip;      /* entries at that score already seen */
    long long cur_score; /* the starting cursor, for the first page */
    char cur_id[EF_JOB_ID_MAX_LEN + 1];
    int first_page;
    int scanned;
    long long page;
    cJSON *jobs;
    char next[96]; /* cursor after the last job listed */
    /* the page being looked at */
    ef_sd_reply_t *ids; /* ZREVRANGEBYSCORE ... WITHSCORES */
} list_ctx_t;

static void list_free(void *p) {
    list_ctx_t *x = p;
    cJSON_Delete(x->jobs);
    ef_sd_reply_free(x->ids);
    free(x);
}

static void list_next_page(ef_sd_req_t *rq);

static void list_answer(ef_sd_req_t *rq, int more) {
    list_ctx_t *x = rq->ctx;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "queue", x->queue);
    cJSON_AddNumberToObject(o, "count", cJSON_GetArraySize(x->jobs));
    cJSON_AddItemToObject(o, "jobs", x->jobs);
    x->jobs = NULL;
    if (more && x->next[0])
        cJSON_AddStringToObject(o, "next_cursor", x->next);
    else
        cJSON_AddNullToObject(o, "next_cursor");
    ef_sd_respond_json(rq, 200, o, "Cache-Control: no-cache\r\n");
    cJSON_Delete(o);
}

static void list_jobs_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    list_ctx_t *x = rq->ctx;
    const ef_sd_reply_t *ids = x->ids;
    size_t n = ids->elements / 2, k = 0;
    int64_t now = ef_sd_redis_ms(rq->sd);
    if (!batch_ok(rq, b))
        return;
    for (size_t i = 0; i < n; i++) {
        const char *id = ids->element[2 * i]->str;
        const char *score = ids->element[2 * i + 1]->str;
        if (!id || !score || !ef_job_id_valid(id))
            continue;
        const ef_sd_reply_t *h = ef_sd_batch_reply(b, k++);
        x->scanned++;
        snprintf(x->next, sizeof x->next, "%s.%s", score, id);
        cJSON *o = ef_sd_job_json(h, now);
        if (!o)
            continue; /* an index entry without its job */
        cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
        if (x->status[0] && (!cJSON_IsString(st) || strcmp(st->valuestring, x->status) != 0)) {
            cJSON_Delete(o);
            continue;
        }
        cJSON_AddItemToArray(x->jobs, o);
        if (cJSON_GetArraySize(x->jobs) >= x->limit) {
            list_answer(rq, i + 1 < n || (long long)n == x->page);
            return;
        }
    }
    if ((long long)n < x->page) {
        list_answer(rq, 0);
        return;
    }
    if (x->scanned >= LIST_SCAN_MAX) {
        list_answer(rq, 1);
        return;
    }
    list_next_page(rq);
}

static void list_ids_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    list_ctx_t *x = rq->ctx;
    ef_sd_reply_t *r;
    ef_key_t k;
    int first = x->first_page;
    if (!batch_ok(rq, b))
        return;
    r = ef_sd_batch_take(b, 0);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        ef_sd_reply_free(r);
        ef_sd_respond_error(rq, 500, "unexpected reply from redis");
        return;
    }
    ef_sd_reply_free(x->ids);
    x->ids = r;
    x->first_page = 0;
    size_t n = r->elements / 2;
    /* the bound of the following page: the last score and how many of it we saw */
    if (n > 0 && r->element[2 * n - 1]->str) {
        const char *last = r->element[2 * n - 1]->str;
        if (strcmp(last, x->max) == 0) {
            x->skip += (long long)n;
        } else {
            long long same = 0;
            for (size_t i = n; i > 0 && r->element[2 * i - 1]->str &&
                               strcmp(r->element[2 * i - 1]->str, last) == 0;
                 i--)
                same++;
            snprintf(x->max, sizeof x->max, "%s", last);
            x->skip = same;
        }
    }
    ef_sd_batch_t *b2 = ef_sd_req_batch(rq, list_jobs_done);
    for (size_t i = 0; i < n; i++) {
        ef_sd_reply_t *idr = r->element[2 * i], *sc = r->element[2 * i + 1];
        if (!idr->str || !ef_job_id_valid(idr->str))
            continue;
        /* at the cursor's own score, skip what the previous page listed */
        if (first && x->cur_id[0] && ef_sd_reply_int(sc) == x->cur_score &&
            strcmp(idr->str, x->cur_id) >= 0) {
            idr->str[0] = '\0'; /* marks it skipped */
            continue;
        }
        ef_sd_batch_cmdv(b2, "HGETALL", ef_key_job(&k, x->queue, idr->str, EF_KEY_JOB), NULL);
    }
    /* a page whose entries were all skipped goes on from list_jobs_done too */
    if (ef_sd_batch_end(b2) != 0)
        ef_sd_respond_unavailable(rq);
}

static void list_next_page(ef_sd_req_t *rq) {
    list_ctx_t *x = rq->ctx;
    ef_key_t k;
    char skip[24], count[24];
    snprintf(skip, sizeof skip, "%lld", x->skip);
    snprintf(count, sizeof count, "%lld", x->page);
    ef_sd_batch_t *b = ef_sd_req_batch(rq, list_ids_done);
    ef_sd_batch_cmdv(b, "ZREVRANGEBYSCORE", ef_key_queue(&k, x->queue, EF_KEY_JOBS), x->max, "-inf",
                     "WITHSCORES", "LIMIT", skip, count, NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}

void ef_sd_route_jobs_list(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    const char *queue = a->queue;
    list_ctx_t *x;
    char cursor[96];
    long long limit = EF_SD_LIST_LIMIT_DEFAULT;
    char status[16] = "";
    int r;
    if (ef_sd_query_int(rq, "limit", 1, EF_SD_LIST_LIMIT_MAX, &limit) < 0)
        return;
    if ((r = ef_sd_query_str(rq, "status", status, sizeof status)) < 0)
        return;
    if (r > 0 && status[0] && !ef_job_status_valid(status)) {
        ef_sd_respond_error(rq, 400, "unknown status '%s'", status);
        return;
    }
    x = ef_calloc(1, sizeof *x);
    rq->ctx = x;
    rq->ctx_free = list_free;
    snprintf(x->queue, sizeof x->queue, "%s", queue);
    snprintf(x->status, sizeof x->status, "%s", status);
    snprintf(x->max, sizeof x->max, "+inf");
    x->limit = limit;
    x->page = status[0] ? 100 : limit + 1;
    x->first_page = 1;
    x->jobs = cJSON_CreateArray();
    if ((r = ef_sd_query_str(rq, "cursor", cursor, sizeof cursor)) < 0)
        return;
    if (r > 0 && cursor[0]) {
        char *dot = strchr(cursor, '.');
        int64_t sc;
        if (!dot || ef_parse_i64(cursor, (size_t)(dot - cursor), &sc) != 0 ||
            !ef_job_id_valid(dot + 1)) {
            ef_sd_respond_error(rq, 400, "malformed cursor (use next_cursor of the previous page)");
            return;
        }
        x->cur_score = sc;
        snprintf(x->cur_id, sizeof x->cur_id, "%s", dot + 1);
        snprintf(x->max, sizeof x->max, "%lld", (long long)sc);
    }
    list_next_page(rq);
}

/* ---- GET /jobs/ID/errors ---- */

static void errors_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    job_ctx_t *x = rq->ctx;
    const ef_sd_reply_t *ex = ef_sd_batch_reply(b, 0), *len = ef_sd_batch_reply(b, 1),
                        *list = ef_sd_batch_reply(b, 2);
    if (!batch_ok(rq, b))
        return;
    if (ef_sd_reply_int(ex) == 0) {
        ef_sd_respond_error(rq, 404, "job %s not found in queue %s", x->id, x->queue);
        return;
    }
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "id", x->id);
    cJSON_AddStringToObject(o, "queue", x->queue);
    cJSON_AddNumberToObject(o, "total", (double)ef_sd_reply_int(len));
    for (size_t i = 0; list && i < list->elements; i++) {
        const ef_sd_reply_t *e = list->element[i];
        cJSON *v = e->str ? cJSON_ParseWithLength(e->str, e->len) : NULL;
        if (!v && e->str && ef_utf8_valid(e->str, e->len, NULL))
            v = cJSON_CreateString(e->str);
        if (v)
            cJSON_AddItemToArray(arr, v);
    }
    cJSON_AddItemToObject(o, "errors", arr);
    ef_sd_respond_json(rq, 200, o, "Cache-Control: no-cache\r\n");
    cJSON_Delete(o);
}

void ef_sd_route_job_errors(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    const char *queue = a->queue, *id = a->job;
    ef_key_t kj, ke;
    long long limit = EF_SD_ERRORS_LIMIT_DEFAULT;
    char stop[24];
    if (ef_sd_query_int(rq, "limit", 1, EF_SD_ERRORS_LIMIT_MAX, &limit) < 0)
        return;
    job_ctx(rq, queue, id);
    snprintf(stop, sizeof stop, "%lld", limit - 1);
    ef_key_job(&ke, queue, id, EF_KEY_JOB_ERRORS);
    ef_sd_batch_t *b = ef_sd_req_batch(rq, errors_done);
    ef_sd_batch_cmdv(b, "EXISTS", ef_key_job(&kj, queue, id, EF_KEY_JOB), NULL);
    ef_sd_batch_cmdv(b, "LLEN", ke.s, NULL);
    ef_sd_batch_cmdv(b, "LRANGE", ke.s, "0", stop, NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}

/* ---- POST /jobs/ID/cancel|pause|resume, /queues/Q/pause|resume ---- */

static void control_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    job_ctx_t *x = rq->ctx;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    if (!batch_ok(rq, b))
        return;
    cJSON *o = cJSON_CreateObject();
    if (x->id[0])
        cJSON_AddStringToObject(o, "id", x->id);
    cJSON_AddStringToObject(o, "queue", x->queue);
    cJSON_AddStringToObject(o, x->id[0] ? "status" : "state",
                            r && r->str && ef_utf8_valid(r->str, r->len, NULL) ? r->str : "");
    ef_info("%s %s %s over HTTP", x->id[0] ? "job" : "queue", x->id[0] ? x->id : x->queue, x->verb);
    ef_sd_respond_json(rq, 200, o, NULL);
    cJSON_Delete(o);
}

void ef_sd_route_job_control(ef_sd_req_t *rq, const ef_sd_args_t *args) {
    const char *queue = args->queue, *id = args->job, *verb = args->verb;
    job_ctx_t *x = job_ctx(rq, queue, id);
    ef_call_t call;
    snprintf(x->verb, sizeof x->verb, "%s", verb);
    ef_sd_batch_t *b = ef_sd_req_batch(rq, control_done);
    ef_sd_batch_call(b, ef_call_job_control(&call, verb, queue, id));
    ef_call_free(&call);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}

void ef_sd_route_queue_control(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    const char *queue = a->queue, *verb = a->verb;
    job_ctx_t *x = job_ctx(rq, queue, NULL);
    ef_call_t call;
    snprintf(x->verb, sizeof x->verb, "%s", verb);
    ef_sd_batch_t *b = ef_sd_req_batch(rq, control_done);
    ef_sd_batch_call(b, ef_call_queue_pause(&call, queue, strcmp(verb, "pause") == 0));
    ef_call_free(&call);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}

/* ---- POST /providers/P/resume ---- */

static void provider_resume_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    const char *provider = rq->ctx;
    if (!batch_ok(rq, b))
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "provider", provider);
    cJSON_AddNumberToObject(o, "paused_until", 0);
    ef_info("provider %s: pause cleared over HTTP", provider);
    ef_sd_respond_json(rq, 200, o, NULL);
    cJSON_Delete(o);
}

/* Clears the farm-wide pause a 429 left on provider's token bucket (and
 * the rate learned from it), as `enqueuer rate-limit` does. */
void ef_sd_route_provider_resume(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    const char *provider = a->provider;
    ef_key_t k;
    rq->ctx = ef_strdup(provider);
    rq->ctx_free = free;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, provider_resume_done);
    ef_sd_batch_cmdv(b, "HSET", ef_key_ratelimit(&k, provider), "paused_until", "0", "learned_at",
                     "0", NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}
