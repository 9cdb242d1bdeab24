// SPDX-License-Identifier: MIT
/*
 * The enqueuer's admin verbs: status, list, cancel, pause, resume,
 * retry-errors and results.  Each runs the same Lua scripts as the workers
 * and statusd, so a verb has the same effect whoever issues it.
 */
#include "enqueuer.h"

#include "ef_export.h"
#include "ef_job.h"
#include "ef_keys.h"
#include "ef_log.h"
#include "ef_notify.h"
#include "ef_redis_sync.h"
#include "ef_scripts_gen.h"
#include "ef_text.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const verbs[] = {"status", "list", "cancel", "pause", "resume",
                                    "retry-errors", "results", "rate-limit", "queue-notify",
                                    NULL};

int ef_enq_is_verb(const char *s) {
    for (int i = 0; verbs[i]; i++)
        if (strcmp(s, verbs[i]) == 0)
            return 1;
    return 0;
}

static int need_job_id(int argc, char **argv, const char **id) {
    if (argc < 2) {
        fprintf(stderr, "enqueuer: %s needs a job id (enqueuer %s [--queue Q] ID)\n", argv[0], argv[0]);
        return -1;
    }
    if (argc > 2) {
        fprintf(stderr, "enqueuer: %s takes one job id, got %d arguments\n", argv[0], argc - 1);
        return -1;
    }
    if (!ef_job_id_valid(argv[1])) {
        fprintf(stderr, "enqueuer: '%.80s' is not a valid job id (1-64 of A-Z a-z 0-9 _ -)\n", argv[1]);
        return -1;
    }
    *id = argv[1];
    return 0;
}

static int verb_status(ef_enq_t *st, const char *id) {
    char err[EF_ERR_LEN];
    cJSON *o = ef_enq_job_json(st, id, err);
    char *s;
    if (!o) {
        fprintf(stderr, "enqueuer: %s\n", err);
        return EF_ENQ_EXIT_ERROR;
    }
    s = cJSON_Print(o);
    printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(o);
    return EF_ENQ_EXIT_OK;
}

/* Reads a redis reply to a script call; prints the error and returns -1. */
static int script_ok(redisReply *r, const char *err, const char *what) {
    if (!r) {
        fprintf(stderr, "enqueuer: %s: %s\n", what, err);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "enqueuer: %s: %s\n", what, strncmp(r->str, "ERR ", 4) == 0 ? r->str + 4 : r->str);
        return -1;
    }
    return 0;
}

static int verb_control(ef_enq_t *st, const char *verb, const char *id) {
    char err[EF_ERR_LEN];
    redisReply *r;
    ef_call_t call;
    if (!id) /* the whole queue */
        ef_call_queue_pause(&call, st->queue, strcmp(verb, "pause") == 0);
    else
        ef_call_job_control(&call, verb, st->queue, id);
    r = ef_redis_sync_call(st->redis, &call, err);
    ef_call_free(&call);
    if (script_ok(r, err, verb) != 0) {
        freeReplyObject(r);
        return EF_ENQ_EXIT_ERROR;
    }
    if (id)
        printf("job %s %s\n", id, r->str);
    else
        printf("queue %s %s\n", st->queue, r->str);
    freeReplyObject(r);
    return EF_ENQ_EXIT_OK;
}

static int verb_list(ef_enq_t *st) {
    ef_key_t kjobs;
    int limit = st->limit > 0 ? st->limit : 20;
    int shown = 0;
    long start = 0;
    const long page = 100, max_scan = 100000;
    cJSON *arr = st->json ? cJSON_CreateArray() : NULL;
    char err[EF_ERR_LEN];

    ef_key_queue(&kjobs, st->queue, EF_KEY_JOBS);
    if (!st->json)
        printf("%-26s %-10s %21s %7s %-24s %s\n", "ID", "STATUS", "PROCESSED/TOTAL", "PCT",
               "CREATED", "PROVIDER");
    while (shown < limit && start < max_scan) {
        redisReply *r = ef_redis_sync_cmdf(st->redis, NULL, "ZREVRANGE %s %ld %ld", kjobs.s, start, start + page - 1);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "enqueuer: list: %s\n", r ? (r->str ? r->str : "bad reply") : st->redis->errstr);
            freeReplyObject(r);
            cJSON_Delete(arr);
            return EF_ENQ_EXIT_ERROR;
        }
        if (r->elements == 0) {
            freeReplyObject(r);
            break;
        }
        for (size_t i = 0; i < r->elements && shown < limit; i++) {
            const char *id = r->element[i]->str;
            if (!id || !ef_job_id_valid(id))
                continue;
            cJSON *o = ef_enq_job_json(st, id, err);
            if (!o)
                continue; /* index entry without a job: skip */
            cJSON *sv = cJSON_GetObjectItemCaseSensitive(o, "status");
            const char *status = cJSON_IsString(sv) ? sv->valuestring : "";
            if (st->status_filter && strcmp(status, st->status_filter) != 0) {
                cJSON_Delete(o);
                continue;
            }
            shown++;
            if (arr) {
                cJSON_AddItemToArray(arr, o);
                continue;
            }
            cJSON *ca = cJSON_GetObjectItemCaseSensitive(o, "created_at_iso");
            cJSON *pv = cJSON_GetObjectItemCaseSensitive(o, "provider");
            char pt[48];
            snprintf(pt, sizeof pt, "%.0f/%.0f",
                     cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "processed")),
                     cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "total")));
            printf("%-26s %-10s %21s %6.1f%% %-24s %s\n", id, status, pt,
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "progress_percent")),
                   cJSON_IsString(ca) ? ca->valuestring : "", cJSON_IsString(pv) ? pv->valuestring : "");
            cJSON_Delete(o);
        }
        start += (long)r->elements;
        freeReplyObject(r);
    }
    if (arr) {
        char *s = cJSON_Print(arr);
        printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(arr);
    }
    return EF_ENQ_EXIT_OK;
}

/* ---- walking a job's chunks: results export and retry-errors ---- */

typedef struct {
    ef_enq_t *st;
    redisContext *redis; /* st->redis, or a connection of the walk's own */
    int own_redis;
    const char *job_id;
    long nchunks;
    long chunk;          /* next chunk to load */
    redisReply *data;    /* HGET chunks N */
    redisReply *outc;    /* HGET outcomes N */
    redisReply *res;     /* HGET results N */
    int loaded;          /* cursor walks the loaded chunk */
    ef_export_cursor_t cursor;
    ef_export_filter_t want; /* which entities to select */
    char err[EF_ERR_LEN];
} walk_t;

/* Loads chunk w->chunk; returns 1, 0 past the last chunk, -1 on error. */
static int walk_load(walk_t *w) {
    ef_key_t kc, ko;
    ef_key_t kr;
    freeReplyObject(w->data);
    freeReplyObject(w->outc);
    freeReplyObject(w->res);
    w->data = w->outc = w->res = NULL;
    if (w->chunk >= w->nchunks)
        return 0;
    ef_key_job(&kc, w->st->queue, w->job_id, EF_KEY_JOB_CHUNKS);
    ef_key_job(&ko, w->st->queue, w->job_id, EF_KEY_JOB_OUTCOMES);
    ef_key_job(&kr, w->st->queue, w->job_id, EF_KEY_JOB_RESULTS);
    char n[24];
    snprintf(n, sizeof n, "%ld", w->chunk);
    const char *hget[3][3] = {{"HGET", kc.s, n}, {"HGET", ko.s, n}, {"HGET", kr.s, n}};
    redisReply **into[3] = {&w->data, &w->outc, &w->res};
    for (int i = 0; i < 3; i++)
        if (ef_redis_sync_cmd_append(w->redis, 3, hget[i], NULL) != 0) {
            ef_seterr(w->err, "redis: cannot queue HGET %s", hget[i][1]);
            return -1;
        }
    for (int i = 0; i < 3; i++)
        if (ef_redis_sync_get_reply(w->redis, into[i]) != 0 || !*into[i]) {
            ef_seterr(w->err, "redis: %s", w->redis->errstr);
            return -1;
        }
    if (w->data->type != REDIS_REPLY_STRING) {
        ef_seterr(w->err, "chunk %ld of job %s is missing", w->chunk, w->job_id);
        return -1;
    }
    int have_o = w->outc->type == REDIS_REPLY_STRING;
    ef_export_cursor_init(&w->cursor, w->data->str, w->data->len, have_o ? w->outc->str : NULL,
                          have_o ? w->outc->len : 0, NULL, 0);
    w->loaded = 1;
    w->chunk++;
    return 1;
}

/* Yields the next entity matching w->want (ef_export's reading of a
 * chunk) and the chunk it is in: 1, 0 past the last chunk, -1 on error. */
static int walk_next(walk_t *w, ef_export_entity_t *e, long *chunk) {
    for (;;) {
        if (w->loaded && ef_export_cursor_next(&w->cursor, &w->want, e)) {
            *chunk = w->chunk - 1;
            return 1;
        }
        w->loaded = 0;
        int r = walk_load(w);
        if (r <= 0)
            return r;
    }
}

static void walk_free(walk_t *w) {
    freeReplyObject(w->data);
    freeReplyObject(w->outc);
    freeReplyObject(w->res);
    w->data = w->outc = w->res = NULL;
    if (w->own_redis)
        ef_redis_sync_free(w->redis);
    w->own_redis = 0;
    w->redis = NULL;
}

/* own_conn: the walk reads on a connection of its own, for a caller that
 * pipelines on st->redis meanwhile (retry-errors feeds ef_enq_submit,
 * whose appends are in flight while the next chunk is read). */
static int walk_init(walk_t *w, ef_enq_t *st, const char *id, char want, int own_conn) {
    char err[EF_ERR_LEN];
    memset(w, 0, sizeof *w);
    w->st = st;
    w->redis = st->redis;
    if (own_conn) {
        if (!(w->redis = ef_redis_sync_connect(st->redis_url, EF_ENQ_REDIS_TIMEOUT_MS, err))) {
            fprintf(stderr, "enqueuer: %s\n", err);
            return -1;
        }
        w->own_redis = 1;
    }
    w->job_id = id;
    w->want = (ef_export_filter_t){.only = want != 0, .outcome = want};
    cJSON *o = ef_enq_job_json(st, id, err);
    if (!o) {
        fprintf(stderr, "enqueuer: %s\n", err);
        walk_free(w);
        return -1;
    }
    w->nchunks = (long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "chunks_total"));
    cJSON_Delete(o);
    return 0;
}

/* A write to stdout failed: on a closed pipe (`enqueuer results ID | head`)
 * end quietly, killed by SIGPIPE as Unix tools are; else say why. */
static void write_failed(FILE *out) {
    if (errno == EPIPE && out == stdout) {
        signal(SIGPIPE, SIG_DFL);
        raise(SIGPIPE);
    }
    fprintf(stderr, "enqueuer: write error: %s\n", strerror(errno));
}

/* Scans every chunk of the job once for the CSV columns (field names only
 * are kept, so memory stays bounded by the column count). */
static int csv_columns(ef_enq_t *st, const char *id, ef_export_csv_t *x) {
    walk_t w;
    int rc;
    char err[EF_ERR_LEN];
    if (walk_init(&w, st, id, 0, 0) != 0)
        return -1;
    while ((rc = walk_load(&w)) == 1) {
        const redisReply *r = w.res;
        int have_r = r && r->type == REDIS_REPLY_STRING;
        if (ef_export_csv_scan(x, w.data->str, w.data->len, have_r ? r->str : NULL,
                               have_r ? r->len : 0, err) != 0) {
            fprintf(stderr, "enqueuer: results: %s\n", err);
            rc = -2;
            break;
        }
    }
    if (rc == -1)
        fprintf(stderr, "enqueuer: results: %s\n", w.err);
    walk_free(&w);
    return rc == 0 ? 0 : -1;
}

/* results ID [--format ndjson|csv] [--output FILE]: every entity with its
 * outcome and result, NDJSON (the default, one object a line) or CSV (a
 * header row, then one row per entity; a first pass over the chunks finds
 * the columns). */
static int verb_results(ef_enq_t *st, const char *id) {
    walk_t w;
    int rc;
    FILE *out = stdout;
    ef_buf_t b;
    ef_export_csv_t csv;
    int as_csv = st->format_set && st->format == EF_INPUT_CSV;

    if (st->format_set && st->format == EF_INPUT_LINES) {
        fprintf(stderr, "enqueuer: results: --format must be ndjson or csv\n");
        return EF_ENQ_EXIT_ERROR;
    }
    ef_export_csv_init(&csv);
    if (as_csv && csv_columns(st, id, &csv) != 0) {
        ef_export_csv_free(&csv);
        return EF_ENQ_EXIT_ERROR;
    }
    if (walk_init(&w, st, id, 0, 0) != 0) {
        ef_export_csv_free(&csv);
        return EF_ENQ_EXIT_ERROR;
    }
    if (st->output && strcmp(st->output, "-") != 0) {
        out = fopen(st->output, "w");
        if (!out) {
            fprintf(stderr, "enqueuer: cannot write %s: %s\n", st->output, strerror(errno));
            ef_export_csv_free(&csv);
            return EF_ENQ_EXIT_ERROR;
        }
    }
    ef_buf_init(&b);
    if (as_csv)
        ef_export_csv_header(&b, &csv);
    while ((rc = walk_load(&w)) == 1) {
        const redisReply *o = w.outc, *r = w.res;
        int have_o = o && o->type == REDIS_REPLY_STRING;
        int have_r = r && r->type == REDIS_REPLY_STRING;
        if (as_csv)
            ef_export_csv_chunk(&b, &csv, w.data->str, w.data->len, have_o ? o->str : NULL,
                                have_o ? o->len : 0, have_r ? r->str : NULL, have_r ? r->len : 0);
        else
            ef_export_chunk(&b, w.data->str, w.data->len, have_o ? o->str : NULL,
                            have_o ? o->len : 0, have_r ? r->str : NULL, have_r ? r->len : 0,
                            NULL);
        if (b.len && fwrite(b.s, 1, b.len, out) != b.len) {
            write_failed(out);
            rc = -2;
            break;
        }
        ef_buf_reset(&b);
    }
    if (rc == 0 && b.len && fwrite(b.s, 1, b.len, out) != b.len) { /* a header alone */
        write_failed(out);
        rc = -2;
    }
    if (rc == 0 && fflush(out) != 0) {
        write_failed(out);
        rc = -2;
    }
    if (rc == -1)
        fprintf(stderr, "enqueuer: results: %s\n", w.err);
    ef_buf_free(&b);
    ef_export_csv_free(&csv);
    walk_free(&w);
    if (out != stdout && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "enqueuer: cannot write %s: %s\n", st->output, strerror(errno));
        rc = -2;
    }
    return rc == 0 ? EF_ENQ_EXIT_OK : EF_ENQ_EXIT_ERROR;
}

typedef struct {
    walk_t w;
    ef_buf_t id;
    int primed; /* walk_next's answer for the first entity, read ahead */
    ef_export_entity_t ent;
    long chunk;
} retry_src_t;

/* Reads the next errored entity: 1, 0 past the last one, -1 on error. */
static int retry_next(retry_src_t *rs) { return walk_next(&rs->w, &rs->ent, &rs->chunk); }

static int retry_source(void *ctx, ef_entity_t *e, char *err) {
    retry_src_t *rs = ctx;
    int rc = rs->primed ? rs->primed : retry_next(rs);
    rs->primed = 0;
    if (rc <= 0) {
        if (rc < 0)
            ef_seterr(err, "%s", rs->w.err);
        return rc < 0 ? EF_INPUT_FATAL : 0;
    }
    cJSON *o = cJSON_ParseWithLength(rs->ent.line, rs->ent.len);
    cJSON *idv = cJSON_GetObjectItemCaseSensitive(o, "id");
    ef_buf_reset(&rs->id);
    if (cJSON_IsString(idv))
        ef_buf_appends(&rs->id, idv->valuestring);
    cJSON_Delete(o);
    e->record = rs->ent.line;
    e->record_len = rs->ent.len;
    e->id = rs->id.s ? rs->id.s : "";
    e->id_len = rs->id.len;
    e->line = rs->chunk;
    return 1;
}

static int retry_errors(ef_enq_t *st, const char *id, char **own_provider, char **own_type) {
    retry_src_t rs;
    char err[EF_ERR_LEN], name[128];
    int rc;
    cJSON *o = ef_enq_job_json(st, id, err);
    if (!o) {
        fprintf(stderr, "enqueuer: %s\n", err);
        return EF_ENQ_EXIT_ERROR;
    }
    cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "provider");
    cJSON *et = cJSON_GetObjectItemCaseSensitive(o, "entity_type");
    cJSON *cs = cJSON_GetObjectItemCaseSensitive(o, "chunk_size");
    cJSON *dr = cJSON_GetObjectItemCaseSensitive(o, "dry_run");
    cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "priority");
    cJSON *stv = cJSON_GetObjectItemCaseSensitive(o, "status");
    if (!st->provider && cJSON_IsString(p))
        st->provider = *own_provider = ef_strdup(p->valuestring);
    if (!st->entity_type && cJSON_IsString(et))
        st->entity_type = *own_type = ef_strdup(et->valuestring);
    if (st->chunk_size <= 0)
        st->chunk_size = cJSON_IsNumber(cs) ? (int)cs->valuedouble : EF_CHUNK_SIZE_DEFAULT;
    if (!st->dry_run && cJSON_IsTrue(dr))
        st->dry_run = 1;
    if (!st->high_priority && cJSON_IsString(pr) && strcmp(pr->valuestring, "high") == 0)
        st->high_priority = 1;
    if (cJSON_IsString(stv) && !ef_job_status_final(stv->valuestring))
        ef_warn("job %s is still %s; retrying the entities that have errored so far", id,
                stv->valuestring);
    cJSON_Delete(o);
    if (!st->provider) {
        fprintf(stderr, "enqueuer: job %s has no provider\n", id);
        return EF_ENQ_EXIT_ERROR;
    }
    memset(&rs, 0, sizeof rs);
    if (walk_init(&rs.w, st, id, EF_OUTCOME_ERROR, 1) != 0)
        return EF_ENQ_EXIT_ERROR;
    ef_buf_init(&rs.id);
    /* the first errored entity, before anything is written */
    rs.primed = retry_next(&rs);
    if (rs.primed == 0) {
        fprintf(stderr, "enqueuer: job %s has no errored entities: nothing to retry\n", id);
        walk_free(&rs.w);
        ef_buf_free(&rs.id);
        return EF_ENQ_EXIT_NOTHING;
    }
    snprintf(name, sizeof name, "retry-errors of %s", id);
    rc = ef_enq_submit(st, retry_source, &rs, name, id);
    walk_free(&rs.w);
    ef_buf_free(&rs.id);
    return rc;
}

/* retry-errors ID: the source job's provider, entity type, chunk size, dry
 * run and priority unless given on the command line. */
static int verb_retry_errors(ef_enq_t *st, const char *id) {
    char *own_provider = NULL, *own_type = NULL;
    int rc = retry_errors(st, id, &own_provider, &own_type);
    if (own_provider)
        st->provider = NULL;
    if (own_type)
        st->entity_type = NULL;
    free(own_provider);
    free(own_type);
    return rc;
}

/* queue-notify [URL|off]: shows, sets or clears the queue's default
 * completion webhook (farm:{Q}:settings notify_url), which job_create.lua
 * gives to a new job with no webhook of its own or of its recipe. */
static int verb_queue_notify(ef_enq_t *st, int argc, char **argv) {
    ef_key_t k;
    redisReply *r;
    char err[EF_ERR_LEN];
    ef_key_queue(&k, st->queue, EF_KEY_SETTINGS);
    if (argc > 2) {
        fprintf(stderr, "enqueuer: queue-notify takes at most one URL (or off)\n");
        return EF_ENQ_EXIT_ERROR;
    }
    if (argc == 2 && strcmp(argv[1], "off") != 0 && !ef_notify_url_valid(argv[1], err)) {
        fprintf(stderr, "enqueuer: queue-notify: %s\n", err);
        return EF_ENQ_EXIT_ERROR;
    }
    if (argc == 1)
        r = ef_redis_sync_cmdf(st->redis, err, "HGET %s notify_url", k.s);
    else if (strcmp(argv[1], "off") == 0)
        r = ef_redis_sync_cmdf(st->redis, err, "HDEL %s notify_url", k.s);
    else
        r = ef_redis_sync_cmdf(st->redis, err, "HSET %s notify_url %s", k.s, argv[1]);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "enqueuer: queue-notify: %s\n", r ? r->str : err);
        freeReplyObject(r);
        return EF_ENQ_EXIT_ERROR;
    }
    if (argc == 1)
        printf("queue %s notify %s\n", st->queue, r->type == REDIS_REPLY_STRING ? r->str : "off");
    else
        printf("queue %s notify %s\n", st->queue, argv[1]);
    freeReplyObject(r);
    return EF_ENQ_EXIT_OK;
}

/* rate-limit P [REQUESTS PER_SECONDS [BURST]]: shows or sets the farm-wide
 * token bucket of provider P.  Workers write their recipe's values when they
 * start or get SIGHUP; this changes the running farm at once, and setting
 * clears a pause left by a 429 (and a rate learned from one). */
static int verb_rate_limit(ef_enq_t *st, int argc, char **argv) {
    ef_key_t k;
    redisReply *r;
    int64_t req, burst = 0;
    double per;
    char *end;
    if (argc < 2 || argc == 3 || argc > 5 || !ef_provider_name_valid(argv[1])) {
        fprintf(stderr, "enqueuer: usage: rate-limit PROVIDER [REQUESTS PER_SECONDS [BURST]]\n");
        return EF_ENQ_EXIT_ERROR;
    }
    ef_key_ratelimit(&k, argv[1]);
    if (argc >= 4) {
        per = strtod(argv[3], &end);
        if (ef_parse_i64(argv[2], strlen(argv[2]), &req) != 0 || req < 1 || *end || per <= 0 ||
            per > 86400 || (argc == 5 && (ef_parse_i64(argv[4], strlen(argv[4]), &burst) != 0 || burst < 1))) {
            fprintf(stderr, "enqueuer: rate-limit: REQUESTS and BURST are positive integers, "
                            "PER_SECONDS a positive number\n");
            return EF_ENQ_EXIT_ERROR;
        }
        r = ef_redis_sync_cmdf(st->redis, NULL,
                         "HSET %s requests %lld per_seconds %s burst %lld paused_until 0 learned_at 0",
                         k.s, (long long)req, argv[3], (long long)(burst ? burst : req));
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "enqueuer: rate-limit: %s\n", r ? r->str : st->redis->errstr);
            freeReplyObject(r);
            return EF_ENQ_EXIT_ERROR;
        }
        freeReplyObject(r);
    }
    r = ef_redis_sync_cmdf(st->redis, NULL, "HGETALL %s", k.s);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "enqueuer: rate-limit: %s\n", r && r->str ? r->str : st->redis->errstr);
        freeReplyObject(r);
        return EF_ENQ_EXIT_ERROR;
    }
    printf("{");
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        printf("%s\"%s\": \"%s\"", i ? ", " : "", r->element[i]->str, r->element[i + 1]->str);
    printf("}\n");
    freeReplyObject(r);
    return EF_ENQ_EXIT_OK;
}

int ef_enq_admin(ef_enq_t *st, int argc, char **argv) {
    const char *verb = argv[0], *id = NULL;
    if (strcmp(verb, "queue-notify") == 0)
        return verb_queue_notify(st, argc, argv);
    if (strcmp(verb, "rate-limit") == 0)
        return verb_rate_limit(st, argc, argv);
    if (strcmp(verb, "list") == 0) {
        if (argc > 1) {
            fprintf(stderr, "enqueuer: list takes no argument (use --limit, --status)\n");
            return EF_ENQ_EXIT_ERROR;
        }
        return verb_list(st);
    }
    if ((strcmp(verb, "pause") == 0 || strcmp(verb, "resume") == 0) && argc == 1)
        return verb_control(st, verb, NULL);
    if (need_job_id(argc, argv, &id) != 0)
        return EF_ENQ_EXIT_ERROR;
    if (strcmp(verb, "status") == 0)
        return verb_status(st, id);
    if (strcmp(verb, "results") == 0)
        return verb_results(st, id);
    if (strcmp(verb, "retry-errors") == 0)
        return verb_retry_errors(st, id);
    return verb_control(st, verb, id);
}
