// SPDX-License-Identifier: MIT
/*
 * The farm at a glance: GET /health (statusd itself and the Redis round
 * trip), GET /queues (depth, work in hand, leases, dead chunks, pause and
 * high-priority chunks waiting, per queue) and GET /workers (the heartbeat
 * registry: only workers whose last heartbeat is younger than the heartbeat
 * TTL on Redis's clock; a killed worker's stale entry is not listed).  Each
 * is two or three pipelined round trips to Redis whatever the number of
 * queues or workers.
 */
#include "statusd.h"

#include "ef_job.h"
#include "ef_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUES_MAX 1000 /* queues listed */
#define HIGH_SCAN 1000  /* chunk refs looked at from the taking end */
#define QUEUE_CMDS 7    /* commands per queue in the second round */

/* ---- GET /health ---- */

typedef struct {
    uint64_t sent_ns;
} health_ctx_t;

static void health_answer_down(ef_sd_req_t *rq) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", "redis unavailable");
    cJSON_AddNumberToObject(o, "status", 503);
    cJSON_AddStringToObject(o, "redis", "down");
    cJSON_AddStringToObject(o, "version", EF_VERSION);
    ef_sd_respond_json(rq, 503, o, "Cache-Control: no-store\r\nRetry-After: 1\r\n");
    cJSON_Delete(o);
}

static void health_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    health_ctx_t *x = rq->ctx;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    ef_sd_t *sd = rq->sd;
    if (b->down || !r || r->type == REDIS_REPLY_ERROR) {
        health_answer_down(rq);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "redis", "up");
    cJSON_AddNumberToObject(o, "redis_rtt_us", (double)((uv_hrtime() - x->sent_ns) / 1000));
    cJSON_AddStringToObject(o, "version", EF_VERSION);
    cJSON_AddNumberToObject(o, "uptime_s", (double)((ef_sd_wall_ms(sd) - sd->started_ms) / 1000));
    cJSON_AddNumberToObject(o, "connections", (double)sd->nconns);
    cJSON_AddNumberToObject(o, "event_streams", (double)ef_sd_events_clients(sd));
    ef_sd_respond_json(rq, 200, o, "Cache-Control: no-store\r\n");
    cJSON_Delete(o);
}

void ef_sd_route_health(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    health_ctx_t *x = ef_calloc(1, sizeof *x);
    rq->ctx = x;
    rq->ctx_free = free;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, health_done);
    x->sent_ns = uv_hrtime();
    ef_sd_batch_cmdv(b, "PING", NULL);
    if (ef_sd_batch_end(b) != 0)
        health_answer_down(rq);
}

/* ---- GET /queues ---- */

typedef struct {
    char **names;
    size_t n;
    ef_sd_reply_t **stats; /* QUEUE_CMDS replies per queue */
    /* high-priority count: distinct jobs seen at the taking end */
    size_t *job_queue; /* queue index of each distinct job */
    char **job_ids;
    size_t njobs;
} queues_ctx_t;

static void queues_free(void *p) {
    queues_ctx_t *x = p;
    for (size_t i = 0; i < x->n; i++) {
        free(x->names[i]);
        for (size_t k = 0; x->stats && k < QUEUE_CMDS; k++)
            ef_sd_reply_free(x->stats[i * QUEUE_CMDS + k]);
    }
    for (size_t i = 0; i < x->njobs; i++)
        free(x->job_ids[i]);
    free(x->names);
    free(x->stats);
    free(x->job_queue);
    free(x->job_ids);
    free(x);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const ef_sd_reply_t *qstat(const queues_ctx_t *x, size_t q, int k) {
    return x->stats[q * QUEUE_CMDS + (size_t)k];
}

/* Collects the distinct job ids among the chunk refs at the taking end. */
static void queues_collect_jobs(queues_ctx_t *x, size_t q) {
    const ef_sd_reply_t *tail = qstat(x, q, 5);
    char id[EF_JOB_ID_MAX_LEN + 1];
    long chunk;
    for (size_t i = 0; tail && i < tail->elements; i++) {
        const ef_sd_reply_t *ref = tail->element[i];
        size_t j;
        if (!ref->str || ef_chunk_ref_parse(ref->str, ref->len, id, sizeof id, &chunk) != 0)
            continue;
        for (j = 0; j < x->njobs; j++)
            if (x->job_queue[j] == q && strcmp(x->job_ids[j], id) == 0)
                break;
        if (j < x->njobs)
            continue;
        x->job_queue = ef_realloc(x->job_queue, (x->njobs + 1) * sizeof *x->job_queue);
        x->job_ids = ef_realloc(x->job_ids, (x->njobs + 1) * sizeof *x->job_ids);
        x->job_queue[x->njobs] = q;
        x->job_ids[x->njobs] = ef_strdup(id);
        x->njobs++;
    }
}

static void queues_answer(ef_sd_req_t *rq, ef_sd_batch_t *prio) {
    queues_ctx_t *x = rq->ctx;
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    char id[EF_JOB_ID_MAX_LEN + 1];
    long chunk;
    for (size_t q = 0; q < x->n; q++) {
        cJSON *e = cJSON_CreateObject();
        const ef_sd_reply_t *paused = qstat(x, q, 4), *tail = qstat(x, q, 5);
        long long high = 0;
        cJSON_AddStringToObject(e, "name", x->names[q]);
        cJSON_AddNumberToObject(e, "pending", (double)ef_sd_reply_int(qstat(x, q, 0)));
        cJSON_AddNumberToObject(e, "processing", (double)ef_sd_reply_int(qstat(x, q, 1)));
        cJSON_AddNumberToObject(e, "leased", (double)ef_sd_reply_int(qstat(x, q, 2)));
        cJSON_AddNumberToObject(e, "dead", (double)ef_sd_reply_int(qstat(x, q, 3)));
        cJSON_AddBoolToObject(e, "paused", paused && paused->type == REDIS_REPLY_STRING);
        if (paused && paused->type == REDIS_REPLY_STRING)
            cJSON_AddNumberToObject(e, "paused_at", (double)ef_sd_reply_int(paused));
        else
            cJSON_AddNullToObject(e, "paused_at");
        /* high-priority chunks wait at the taking end (right) of pending */
        for (size_t i = 0; prio && tail && i < tail->elements; i++) {
            const ef_sd_reply_t *ref = tail->element[i];
            if (!ref->str || ef_chunk_ref_parse(ref->str, ref->len, id, sizeof id, &chunk) != 0)
                continue;
            for (size_t j = 0; j < x->njobs; j++) {
                const ef_sd_reply_t *p = ef_sd_batch_reply(prio, j);
                if (x->job_queue[j] == q && strcmp(x->job_ids[j], id) == 0) {
                    if (p && p->str && strcmp(p->str, "high") == 0)
                        high++;
                    break;
                }
            }
        }
        cJSON_AddNumberToObject(e, "high_waiting", (double)high);
        cJSON_AddNumberToObject(e, "jobs", (double)ef_sd_reply_int(qstat(x, q, 6)));
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddItemToObject(o, "queues", arr);
    ef_sd_respond_json(rq, 200, o, "Cache-Control: no-cache\r\n");
    cJSON_Delete(o);
}

static void queues_prio_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    queues_answer(rq, b);
}

static void queues_stats_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    queues_ctx_t *x = rq->ctx;
    ef_key_t k;
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    x->stats = ef_calloc(x->n * QUEUE_CMDS, sizeof *x->stats);
    for (size_t i = 0; i < x->n * QUEUE_CMDS; i++)
        x->stats[i] = ef_sd_batch_take(b, i);
    for (size_t q = 0; q < x->n; q++)
        queues_collect_jobs(x, q);
    if (x->njobs == 0) {
        queues_answer(rq, NULL);
        return;
    }
    ef_sd_batch_t *b2 = ef_sd_req_batch(rq, queues_prio_done);
    for (size_t j = 0; j < x->njobs; j++)
        ef_sd_batch_cmdv(b2, "HGET",
                         ef_key_job(&k, x->names[x->job_queue[j]], x->job_ids[j], EF_KEY_JOB),
                         "priority", NULL);
    if (ef_sd_batch_end(b2) != 0)
        ef_sd_respond_unavailable(rq);
}

static void queues_names_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    queues_ctx_t *x = rq->ctx;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    ef_key_t k;
    char neg[16];
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    x->names = ef_calloc(r && r->elements ? r->elements : 1, sizeof *x->names);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->str && ef_queue_name_valid(r->element[i]->str) && x->n < QUEUES_MAX)
            x->names[x->n++] = ef_strdup(r->element[i]->str);
    qsort(x->names, x->n, sizeof *x->names, cmp_str);
    if (x->n == 0) {
        queues_answer(rq, NULL);
        return;
    }
    snprintf(neg, sizeof neg, "-%d", HIGH_SCAN);
    ef_sd_batch_t *b2 = ef_sd_req_batch(rq, queues_stats_done);
    for (size_t q = 0; q < x->n; q++) {
        const char *name = x->names[q];
        ef_sd_batch_cmdv(b2, "LLEN", ef_key_queue(&k, name, EF_KEY_PENDING), NULL);
        ef_sd_batch_cmdv(b2, "LLEN", ef_key_queue(&k, name, EF_KEY_PROCESSING), NULL);
        ef_sd_batch_cmdv(b2, "ZCARD", ef_key_queue(&k, name, EF_KEY_LEASES), NULL);
        ef_sd_batch_cmdv(b2, "LLEN", ef_key_queue(&k, name, EF_KEY_DEAD), NULL);
        ef_sd_batch_cmdv(b2, "GET", ef_key_queue(&k, name, EF_KEY_PAUSED), NULL);
        ef_sd_batch_cmdv(b2, "LRANGE", ef_key_queue(&k, name, EF_KEY_PENDING), neg, "-1", NULL);
        ef_sd_batch_cmdv(b2, "ZCARD", ef_key_queue(&k, name, EF_KEY_JOBS), NULL);
    }
    if (ef_sd_batch_end(b2) != 0)
        ef_sd_respond_unavailable(rq);
}

void ef_sd_route_queues(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    ef_key_t k;
    queues_ctx_t *x = ef_calloc(1, sizeof *x);
    rq->ctx = x;
    rq->ctx_free = queues_free;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, queues_names_done);
    ef_sd_batch_cmdv(b, "SMEMBERS", ef_key_global(&k, EF_KEY_QUEUES), NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}

/* ---- GET /workers ---- */

static const char *const worker_strings[] = {"id", "host", "version", "queues", "state", NULL};

/* Worker ids come from Redis; only plain ones become key names. */
static int worker_id_ok(const ef_sd_reply_t *r) {
    if (!r->str || r->len == 0 || r->len > 200)
        return 0;
    for (size_t i = 0; i < r->len; i++)
        if ((unsigned char)r->str[i] <= 0x20 || r->str[i] == 0x7f)
            return 0;
    return ef_utf8_valid(r->str, r->len, NULL);
}

typedef struct {
    ef_sd_reply_t *ids; /* ZREVRANGE WITHSCORES */
} workers_ctx_t;

static void workers_free(void *p) {
    workers_ctx_t *x = p;
    ef_sd_reply_free(x->ids);
    free(x);
}

static void workers_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    workers_ctx_t *x = rq->ctx;
    const ef_sd_reply_t *ids = x->ids;
    int64_t now = ef_sd_redis_ms(rq->sd);
    size_t k = 0;
    long alive = 0;
    char iso[40];
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    for (size_t i = 0; i + 1 < ids->elements; i += 2) {
        if (!worker_id_ok(ids->element[i]))
            continue;
        const ef_sd_reply_t *h = ef_sd_batch_reply(b, k++);
        long long seen = ef_sd_reply_int(ids->element[i + 1]);
        cJSON *w = ef_sd_hash_to_json(h, worker_strings);
        int is_alive = w && cJSON_GetArraySize(w) > 0;
        if (!w)
            w = cJSON_CreateObject();
        if (!cJSON_GetObjectItemCaseSensitive(w, "id"))
            cJSON_AddStringToObject(w, "id", ids->element[i]->str);
        cJSON *ls = cJSON_GetObjectItemCaseSensitive(w, "last_seen");
        if (cJSON_IsNumber(ls))
            seen = (long long)ls->valuedouble;
        else
            cJSON_AddNumberToObject(w, "last_seen", (double)seen);
        ef_iso8601(seen, iso, sizeof iso);
        cJSON_AddStringToObject(w, "last_seen_iso", iso);
        cJSON_AddNumberToObject(w, "age_ms", (double)(now - seen));
        cJSON *sa = cJSON_GetObjectItemCaseSensitive(w, "started_at");
        if (cJSON_IsNumber(sa)) {
            ef_iso8601((int64_t)sa->valuedouble, iso, sizeof iso);
            cJSON_AddStringToObject(w, "started_at_iso", iso);
        }
        cJSON_AddBoolToObject(w, "alive", is_alive);
        alive += is_alive;
        cJSON_AddItemToArray(arr, w);
    }
    cJSON_AddNumberToObject(o, "alive", (double)alive);
    cJSON_AddNumberToObject(o, "count", cJSON_GetArraySize(arr));
    cJSON_AddItemToObject(o, "workers", arr);
    ef_sd_respond_json(rq, 200, o, "Cache-Control: no-cache\r\n");
    cJSON_Delete(o);
}

static void workers_ids_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    workers_ctx_t *x = rq->ctx;
    ef_key_t k;
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    x->ids = ef_sd_batch_take(b, 0);
    if (!x->ids || x->ids->type != REDIS_REPLY_ARRAY) {
        ef_sd_respond_error(rq, 500, "unexpected reply from redis");
        return;
    }
    ef_sd_batch_t *b2 = ef_sd_req_batch(rq, workers_done);
    for (size_t i = 0; i + 1 < x->ids->elements; i += 2)
        if (worker_id_ok(x->ids->element[i]))
            ef_sd_batch_cmdv(b2, "HGETALL", ef_key_worker(&k, x->ids->element[i]->str), NULL);
    if (ef_sd_batch_end(b2) != 0)
        ef_sd_respond_unavailable(rq);
}

void ef_sd_batch_workers(ef_sd_batch_t *b, ef_key_t *k, char *min, size_t len, int scores) {
    char count[16];
    /* before Redis's clock is known (a moment after connecting), list all
     * rather than hide live workers on a guess */
    if (b->sd->clock_synced)
        snprintf(min, len, "%lld", (long long)(ef_sd_redis_ms(b->sd) - EF_WORKER_HEARTBEAT_TTL_MS));
    else
        snprintf(min, len, "-inf");
    snprintf(count, sizeof count, "%d", EF_SD_WORKERS_MAX);
    if (scores)
        ef_sd_batch_cmdv(b, "ZREVRANGEBYSCORE", ef_key_global(k, EF_KEY_WORKERS), "+inf", min,
                         "WITHSCORES", "LIMIT", "0", count, NULL);
    else
        ef_sd_batch_cmdv(b, "ZREVRANGEBYSCORE", ef_key_global(k, EF_KEY_WORKERS), "+inf", min,
                         "LIMIT", "0", count, NULL);
}

void ef_sd_route_workers(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    ef_key_t k;
    char stop[32];
    workers_ctx_t *x = ef_calloc(1, sizeof *x);
    rq->ctx = x;
    rq->ctx_free = workers_free;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, workers_ids_done);
    ef_sd_batch_workers(b, &k, stop, sizeof stop, 1);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}
