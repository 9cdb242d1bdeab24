// SPDX-License-Identifier: MIT
/*
 * Creating jobs over HTTP, through the same Lua scripts as the enqueuer, so
 * a job made here has exactly the shape of one made by `enqueuer`:
 * job_create (status enqueuing) -> job_append (chunks of NDJSON entities,
 * "id" first, in order from chunk 0) -> job_seal (every chunk visible at
 * once).  A failure after job_create runs job_discard, so nothing half made
 * is ever visible to workers.
 *
 *   POST /jobs                     {"provider": "items", "ids": ["1", "2"]} or
 *                                  {"provider": ..., "entities": [{"id": ...}, ...],
 *                                   "queue", "chunk_size", "dry_run", "priority",
 *                                   "entity_type", "id_field", "job_id", "notify"}
 *                                  ("notify": the job's completion webhook URL,
 *                                  docs/webhooks.md; else the recipe's or queue's)
 *   POST /jobs/ID/retry-errors     a new job of the entities of ID whose outcome is
 *                                  "errors" (retry_of = ID), like `enqueuer retry-errors`
 *
 * Entities are checked by the enqueuer's own NDJSON reader (lib/ef_input),
 * so the id rules and the entity lines are the same.  retry-errors walks
 * the source job a window of chunks at a time and appends as it goes:
 * memory stays bounded whatever the job's size.
 */
#include "statusd.h"

#include "ef_export.h"
#include "ef_input.h"
#include "ef_job.h"
#include "ef_keys.h"
#include "ef_notify.h"
#include "ef_scripts_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBMIT_APPEND_CHUNKS 64          /* chunks per job_append call */
#define SUBMIT_APPEND_BYTES (512 * 1024) /* bytes per job_append call */
#define RETRY_WINDOW_CHUNKS 32           /* source chunks read per round trip */

typedef struct submit_s submit_t;
typedef void (*submit_step_fn)(submit_t *s);

struct submit_s {
    ef_sd_req_t *rq;
    char queue[EF_QUEUE_MAX_LEN + 1];
    char id[EF_JOB_ID_MAX_LEN + 1];
    char provider[EF_PROVIDER_MAX_LEN + 1];
    char entity_type[EF_PROVIDER_MAX_LEN + 1];
    char priority[8];
    char source[160];
    char retry_of[EF_JOB_ID_MAX_LEN + 1];
    char notify[EF_NOTIFY_URL_MAX + 1]; /* "" = none given */
    int dry_run;
    int chunk_size;
    /* the chunk being filled, and the full ones waiting to be appended */
    ef_buf_t chunk;
    int chunk_count;
    ef_call_chunk_t *pend; /* the bytes owned here */
    size_t npend, cpend;
    long long total;
    long chunks_sent;
    int created;
    submit_step_fn then;
    /* retry-errors: the source job */
    char src[EF_JOB_ID_MAX_LEN + 1];
    long src_chunks;
    long src_next;
    /* the answer to give once a failed job is discarded */
    int fail_status;
    char fail_msg[400];
};

static void pend_clear(submit_t *s) {
    for (size_t i = 0; i < s->npend; i++)
        free((char *)s->pend[i].data); /* a closed chunk's bytes, owned here */
    s->npend = 0;
}

static void submit_free(void *p) {
    submit_t *s = p;
    pend_clear(s);
    free(s->pend);
    ef_buf_free(&s->chunk);
    free(s);
}

static submit_t *submit_new(ef_sd_req_t *rq) {
    submit_t *s = ef_calloc(1, sizeof *s);
    s->rq = rq;
    ef_buf_init(&s->chunk);
    snprintf(s->priority, sizeof s->priority, "normal");
    snprintf(s->entity_type, sizeof s->entity_type, "entity");
    s->chunk_size = EF_JOB_CHUNK_SIZE_DEFAULT;
    rq->ctx = s;
    rq->ctx_free = submit_free;
    return s;
}

/* ---- Chunks ---- */

static void chunk_close(submit_t *s) {
    if (s->chunk_count == 0)
        return;
    if (s->npend == s->cpend) {
        s->cpend = s->cpend ? s->cpend * 2 : 16;
        s->pend = ef_realloc(s->pend, s->cpend * sizeof *s->pend);
    }
    s->pend[s->npend++] = (ef_call_chunk_t){s->chunk_count, s->chunk.s, s->chunk.len};
    ef_buf_init(&s->chunk); /* the pending list owns the bytes now */
    s->chunk_count = 0;
}

static void entity_add(submit_t *s, const char *line, size_t len) {
    if (s->chunk_count > 0)
        ef_buf_appendc(&s->chunk, '\n');
    ef_buf_append(&s->chunk, line, len);
    s->chunk_count++;
    s->total++;
    if (s->chunk_count >= s->chunk_size)
        chunk_close(s);
}

/* ---- Failing: discard what was created, then answer ---- */

static void discarded(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    submit_t *s = rq->ctx;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    if (b->down || !r || r->type == REDIS_REPLY_ERROR)
        ef_warn("could not discard job %s (the reaper will mark it abandoned)", s->id);
    ef_sd_respond_error(rq, s->fail_status, "%s", s->fail_msg);
}

static void submit_fail(submit_t *s, int status, const char *msg) {
    ef_sd_req_t *rq = s->rq;
    if (!s->created) {
        ef_sd_respond_error(rq, status, "%s", msg);
        return;
    }
    s->fail_status = status;
    snprintf(s->fail_msg, sizeof s->fail_msg, "%s", msg);
    ef_call_t call;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, discarded);
    ef_sd_batch_call(b, ef_call_job_discard(&call, s->queue, s->id));
    ef_call_free(&call);
    if (ef_sd_batch_end(b) != 0) {
        ef_warn("could not discard job %s (the reaper will mark it abandoned)", s->id);
        ef_sd_respond_error(rq, status, "%s", msg);
    }
}

/* A failed batch: 503 when Redis is down, the script's words otherwise. */
static void submit_fail_batch(submit_t *s, ef_sd_batch_t *b, const char *what) {
    char msg[400];
    if (b->down) {
        submit_fail(s, 503, "redis unavailable");
        return;
    }
    for (size_t i = 0; i < b->received; i++) {
        const ef_sd_reply_t *r = b->replies[i];
        if (r && r->type == REDIS_REPLY_ERROR) {
            const char *m = strncmp(r->str, "ERR ", 4) == 0 ? r->str + 4 : r->str;
            snprintf(msg, sizeof msg, "%s: %s", what, m);
            submit_fail(s, strstr(m, "already exists") ? 409 : 500, msg);
            return;
        }
    }
    submit_fail(s, 500, what);
}

static int batch_failed(const ef_sd_batch_t *b) {
    if (b->down)
        return 1;
    for (size_t i = 0; i < b->received; i++)
        if (b->replies[i] && b->replies[i]->type == REDIS_REPLY_ERROR)
            return 1;
    return 0;
}

/* ---- Pushing chunks: create the job first, then append ---- */

static void submit_push(submit_t *s, submit_step_fn then);

static void appended(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    submit_t *s = rq->ctx;
    if (batch_failed(b)) {
        submit_fail_batch(s, b, "append");
        return;
    }
    s->then(s);
}

/* The queue's registration in a cluster is done (or failed: the next
 * job on the queue tries again, the job goes on). */
static void registered(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    submit_t *s = rq->ctx;
    if (batch_failed(b))
        ef_warn("queue %s not registered in farm:queues (its next job tries again)", s->queue);
    submit_push(s, s->then);
}

static void created(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    submit_t *s = rq->ctx;
    if (batch_failed(b)) {
        submit_fail_batch(s, b, "create");
        return;
    }
    s->created = 1;
    /* a cluster's job_create says whether the queue is registered yet:
     * if not, farm:queues (another slot) and then the mark */
    if (s->rq->sd->redis_url.kind == EF_REDIS_URL_CLUSTER && EF_JOB_CREATE_FIRST(ef_sd_batch_reply(b, 0))) {
        ef_queue_reg_keys_t kr;
        ef_sd_batch_t *rb = ef_sd_req_batch(s->rq, registered);
        ef_queue_reg_keys(&kr, s->queue);
        ef_sd_batch_cmdv(rb, "SADD", kr.queues.s, s->queue, NULL);
        ef_sd_batch_cmdv(rb, "HSET", kr.settings.s, EF_QUEUE_REGISTERED, "1", NULL);
        if (ef_sd_batch_end(rb) != 0)
            submit_fail(s, 503, "redis unavailable");
        return;
    }
    submit_push(s, s->then);
}

static void submit_create(submit_t *s) {
    ef_call_t call;
    ef_call_job_create_t a = {.queue = s->queue,
                              .id = s->id,
                              .provider = s->provider,
                              .entity_type = s->entity_type,
                              .chunk_size = s->chunk_size,
                              .dry_run = s->dry_run,
                              .high_priority = strcmp(s->priority, "high") == 0,
                              .source = s->source,
                              .retry_of = s->retry_of,
                              .notify_url = s->notify};
    ef_sd_batch_t *b = ef_sd_req_batch(s->rq, created);
    /* a cluster keeps farm:queues in another slot: job_create takes the
     * queue's keys only and created() registers the queue (the provider
     * was checked before) */
    a.registry_apart = s->rq->sd->redis_url.kind == EF_REDIS_URL_CLUSTER;
    ef_sd_batch_call(b, ef_call_job_create(&call, &a));
    ef_call_free(&call);
    if (ef_sd_batch_end(b) != 0)
        submit_fail(s, 503, "redis unavailable");
}

/* Appends every pending chunk (several job_append calls, pipelined), then
 * calls then(s).  Creates the job first when it does not exist yet. */
static void submit_push(submit_t *s, submit_step_fn then) {
    s->then = then;
    if (s->npend == 0) {
        then(s);
        return;
    }
    if (!s->created) {
        submit_create(s);
        return;
    }
    ef_sd_batch_t *b = ef_sd_req_batch(s->rq, appended);
    size_t i = 0;
    while (i < s->npend) {
        size_t n = 0, bytes = 0;
        ef_call_t call;
        while (i + n < s->npend && n < SUBMIT_APPEND_CHUNKS &&
               (n == 0 || bytes + s->pend[i + n].len <= SUBMIT_APPEND_BYTES))
            bytes += s->pend[i + n++].len;
        ef_sd_batch_call(
            b, ef_call_job_append(&call, s->queue, s->id, 0, s->chunks_sent, s->pend + i, n));
        ef_call_free(&call);
        s->chunks_sent += (long)n;
        i += n;
    }
    pend_clear(s);
    if (ef_sd_batch_end(b) != 0)
        submit_fail(s, 503, "redis unavailable");
}

/* ---- Sealing and answering ---- */

static void sealed(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    submit_t *s = rq->ctx;
    char hdr[256];
    if (batch_failed(b)) {
        submit_fail_batch(s, b, "seal");
        return;
    }
    cJSON *o = ef_sd_job_json(ef_sd_batch_reply(b, 1), ef_sd_redis_ms(rq->sd));
    if (!o) {
        ef_sd_respond_error(rq, 500, "job %s vanished after sealing", s->id);
        return;
    }
    ef_info("job %s queued (total=%lld) from %s", s->id, s->total, s->source);
    snprintf(hdr, sizeof hdr, "Location: /jobs/%s?queue=%s\r\n", s->id, s->queue);
    ef_sd_respond_json(rq, 201, o, hdr);
    cJSON_Delete(o);
}

static void submit_seal_step(submit_t *s) {
    ef_call_t call;
    ef_key_t kjob;
    ef_sd_batch_t *b = ef_sd_req_batch(s->rq, sealed);
    ef_sd_batch_call(b, ef_call_job_seal(&call, s->queue, s->id, s->total, s->chunks_sent, 0));
    ef_call_free(&call);
    ef_sd_batch_cmdv(b, "HGETALL", ef_key_job(&kjob, s->queue, s->id, EF_KEY_JOB), NULL);
    if (ef_sd_batch_end(b) != 0)
        submit_fail(s, 503, "redis unavailable");
}

static void submit_finish(submit_t *s) {
    chunk_close(s);
    if (s->npend > 0) {
        submit_push(s, submit_finish);
        return;
    }
    submit_seal_step(s);
}

/* ---- POST /jobs ---- */

static int json_str(cJSON *o, const char *k, char *out, size_t len, int (*valid)(const char *),
                    ef_sd_req_t *rq) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= len || (valid && !valid(v->valuestring))) {
        ef_sd_respond_error(rq, 400, "field '%s' is not a valid value", k);
        return -1;
    }
    snprintf(out, len, "%s", v->valuestring);
    return 1;
}

static int printable(const char *s) {
    if (!*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int notify_ok(const char *url) { return ef_notify_url_valid(url, NULL); }

static void provider_checked(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    submit_t *s = rq->ctx;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        const char **names = ef_calloc(r->elements, sizeof *names);
        char err[EF_ERR_LEN];
        for (size_t i = 0; i < r->elements; i++)
            names[i] = r->element[i]->str;
        int rc = ef_job_provider_check(s->provider, names, r->elements, err);
        free(names);
        if (rc != 0) {
            ef_sd_respond_error(rq, 400, "%s", err);
            return;
        }
    }
    submit_finish(s);
}

/* Turns the "ids" or "entities" array into entity lines; 0 or -1 (answered). */
static int read_entities(submit_t *s, cJSON *arr, const char *id_field) {
    ef_buf_t nd;
    ef_entity_t e;
    char err[EF_ERR_LEN];
    int r, i = 0;
    ef_buf_init(&nd);
    for (cJSON *it = arr->child; it; it = it->next, i++) {
        char *txt;
        if (cJSON_IsObject(it)) {
            txt = cJSON_PrintUnformatted(it);
            ef_buf_appends(&nd, txt ? txt : "{}");
            cJSON_free(txt);
        } else if (cJSON_IsString(it) || cJSON_IsNumber(it)) {
            txt = cJSON_PrintUnformatted(it);
            ef_buf_appendc(&nd, '{');
            ef_buf_append_json_str(&nd, id_field, strlen(id_field));
            ef_buf_appendc(&nd, ':');
            ef_buf_appends(&nd, txt ? txt : "null");
            ef_buf_appendc(&nd, '}');
            cJSON_free(txt);
        } else {
            ef_buf_free(&nd);
            ef_sd_respond_error(s->rq, 400, "entity %d must be an object, a string or a number",
                                i + 1);
            return -1;
        }
        ef_buf_appendc(&nd, '\n');
    }
    ef_input_t *in =
        ef_input_open_mem(nd.s ? nd.s : "", nd.len, EF_INPUT_NDJSON, id_field, "entity");
    while ((r = ef_input_next(in, &e, err)) == 1)
        entity_add(s, e.record, e.record_len);
    ef_input_free(in);
    ef_buf_free(&nd);
    if (r != 0) {
        ef_sd_respond_error(s->rq, 400, "%s", err);
        return -1;
    }
    return 0;
}

void ef_sd_route_jobs_post(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    cJSON *body, *v, *arr;
    char id_field[65] = "id";
    ef_key_t k;
    submit_t *s;
    const char *end = NULL;
    if (!ef_utf8_valid(rq->body, rq->body_len, NULL) ||
        !(body = cJSON_ParseWithLengthOpts(rq->body, rq->body_len, &end, 0))) {
        ef_sd_respond_error(rq, 400, "the body must be a JSON object");
        return;
    }
    for (; end && end < rq->body + rq->body_len; end++) {
        if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n') {
            cJSON_Delete(body);
            ef_sd_respond_error(rq, 400, "the body must be one JSON object (trailing bytes)");
            return;
        }
    }
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        ef_sd_respond_error(rq, 400, "the body must be a JSON object");
        return;
    }
    s = submit_new(rq);
    snprintf(s->queue, sizeof s->queue, "%s", EF_DEFAULT_QUEUE);
    int r = json_str(body, "provider", s->provider, sizeof s->provider, ef_provider_name_valid, rq);
    if (r < 0)
        goto out;
    if (r == 0) {
        ef_sd_respond_error(rq, 400, "field 'provider' is required");
        goto out;
    }
    if (json_str(body, "queue", s->queue, sizeof s->queue, ef_queue_name_valid, rq) < 0 ||
        json_str(body, "job_id", s->id, sizeof s->id, ef_job_id_valid, rq) < 0 ||
        json_str(body, "entity_type", s->entity_type, sizeof s->entity_type, printable, rq) < 0 ||
        json_str(body, "id_field", id_field, sizeof id_field, printable, rq) < 0 ||
        json_str(body, "priority", s->priority, sizeof s->priority, NULL, rq) < 0 ||
        json_str(body, "notify", s->notify, sizeof s->notify, notify_ok, rq) < 0)
        goto out;
    if (strcmp(s->priority, "normal") != 0 && strcmp(s->priority, "high") != 0) {
        ef_sd_respond_error(rq, 400, "field 'priority' must be normal or high");
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(body, "chunk_size");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble ||
            v->valuedouble < 1 || v->valuedouble > EF_JOB_CHUNK_SIZE_MAX) {
            ef_sd_respond_error(rq, 400, "field 'chunk_size' must be an integer from 1 to %d",
                                EF_JOB_CHUNK_SIZE_MAX);
            goto out;
        }
        s->chunk_size = (int)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(body, "dry_run");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) {
            ef_sd_respond_error(rq, 400, "field 'dry_run' must be true or false");
            goto out;
        }
        s->dry_run = cJSON_IsTrue(v);
    }
    arr = cJSON_GetObjectItemCaseSensitive(body, "entities");
    v = cJSON_GetObjectItemCaseSensitive(body, "ids");
    if ((arr && v) || (!arr && !v)) {
        ef_sd_respond_error(rq, 400, "give either 'entities' or 'ids'");
        goto out;
    }
    if (!arr)
        arr = v;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        ef_sd_respond_error(rq, 400, "'%s' must be a non-empty array",
                            arr == v ? "ids" : "entities");
        goto out;
    }
    if (!s->id[0])
        ef_job_id_new(s->id);
    snprintf(s->source, sizeof s->source, "http");
    if (read_entities(s, arr, id_field) != 0)
        goto out;
    cJSON_Delete(body);
    body = NULL;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, provider_checked);
    ef_sd_batch_cmdv(b, "HKEYS", ef_key_global(&k, EF_KEY_PROVIDERS), NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
out:
    cJSON_Delete(body);
}

/* ---- POST /jobs/ID/retry-errors ---- */

static void retry_window(submit_t *s);

static void retry_walked(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    submit_t *s = rq->ctx;
    if (b->down) {
        submit_fail(s, 503, "redis unavailable");
        return;
    }
    for (size_t c = 0; c + 1 < b->received; c += 2) {
        const ef_sd_reply_t *data = b->replies[c], *outc = b->replies[c + 1];
        if (!data || data->type != REDIS_REPLY_STRING) {
            char msg[160];
            snprintf(msg, sizeof msg, "chunk %ld of job %s is missing", s->src_next + (long)c / 2,
                     s->src);
            submit_fail(s, 409, msg);
            return;
        }
        const ef_export_filter_t errored = {.only = 1, .outcome = EF_OUTCOME_ERROR};
        ef_export_cursor_t cur;
        ef_export_entity_t e;
        ef_export_cursor_init(&cur, data->str, data->len, outc ? outc->str : NULL,
                              outc && outc->str ? outc->len : 0, NULL, 0);
        while (ef_export_cursor_next(&cur, &errored, &e))
            entity_add(s, e.line, e.len);
    }
    s->src_next += (long)(b->received / 2);
    if (s->src_next >= s->src_chunks) {
        if (s->total == 0) {
            ef_sd_respond_error(rq, 409, "job %s has no entity with the outcome errors", s->src);
            return;
        }
        submit_finish(s);
        return;
    }
    submit_push(s, retry_window);
}

static void retry_window(submit_t *s) {
    long last = s->src_next + RETRY_WINDOW_CHUNKS;
    if (last > s->src_chunks)
        last = s->src_chunks;
    ef_sd_batch_t *b = ef_sd_req_batch(s->rq, retry_walked);
    ef_sd_batch_job_chunks(b, s->queue, s->src, s->src_next, last, 0);
    if (ef_sd_batch_end(b) != 0)
        submit_fail(s, 503, "redis unavailable");
}

static void retry_source(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    submit_t *s = rq->ctx;
    cJSON *o, *v;
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    o = ef_sd_job_json(ef_sd_batch_reply(b, 0), ef_sd_redis_ms(rq->sd));
    if (!o) {
        ef_sd_respond_error(rq, 404, "job %s not found in queue %s", s->src, s->queue);
        return;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "provider");
    if (cJSON_IsString(v) && ef_provider_name_valid(v->valuestring))
        snprintf(s->provider, sizeof s->provider, "%s", v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(o, "entity_type");
    if (cJSON_IsString(v) && printable(v->valuestring) &&
        strlen(v->valuestring) < sizeof s->entity_type)
        snprintf(s->entity_type, sizeof s->entity_type, "%s", v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(o, "chunk_size");
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= EF_JOB_CHUNK_SIZE_MAX)
        s->chunk_size = (int)v->valuedouble;
    s->dry_run = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "dry_run"));
    v = cJSON_GetObjectItemCaseSensitive(o, "priority");
    if (cJSON_IsString(v) && strcmp(v->valuestring, "high") == 0)
        snprintf(s->priority, sizeof s->priority, "high");
    v = cJSON_GetObjectItemCaseSensitive(o, "chunks_total");
    s->src_chunks = cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
    cJSON_Delete(o);
    if (!s->provider[0]) {
        ef_sd_respond_error(rq, 409, "job %s has no provider", s->src);
        return;
    }
    ef_job_id_new(s->id);
    snprintf(s->retry_of, sizeof s->retry_of, "%s", s->src);
    snprintf(s->source, sizeof s->source, "retry-errors of %s", s->src);
    if (s->src_chunks <= 0) {
        ef_sd_respond_error(rq, 409, "job %s has no entity with the outcome errors", s->src);
        return;
    }
    retry_window(s);
}

void ef_sd_route_job_retry(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    const char *queue = a->queue, *id = a->job;
    ef_key_t k;
    submit_t *s = submit_new(rq);
    snprintf(s->queue, sizeof s->queue, "%s", queue);
    snprintf(s->src, sizeof s->src, "%s", id);
    ef_sd_batch_t *b = ef_sd_req_batch(rq, retry_source);
    ef_sd_batch_cmdv(b, "HGETALL", ef_key_job(&k, queue, id, EF_KEY_JOB), NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}
