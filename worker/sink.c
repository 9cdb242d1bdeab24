// SPDX-License-Identifier: MIT
/*
 * The PostgreSQL sink (docs/sinks.md): an updated entity's extracted
 * fields are written into the user's table BEFORE its outcome is recorded.
 * ack.c hands each acknowledgement batch of a chunk here first (the chunk
 * counts as acking meanwhile, so it neither ends nor acks anything else);
 * when every row of the batch is written or has failed, the chunk's ack
 * goes on (chunk_ack.lua).  A crash between the two redoes the write, which
 * is idempotent; a row that was not written never gets an outcome.
 *
 * One connection (lib/ef_pg) per provider with a sink, one statement at a
 * time, batches in FIFO order.  A batch is sent as multi-row statements of
 * at most ef_sink_rows_max() rows.  Then:
 *   - a connection failure or a transient error (ef_pg_transient): the same
 *     statement again after a backoff (EF_SINK_BACKOFF_*), forever: the
 *     chunk keeps its lease (maint.c extends it) and no entity counts as an
 *     error for an outage;
 *   - any other error (a value the column's type refuses, a constraint):
 *     the statement's rows are tried one by one, so that only the bad rows
 *     fail, each with PostgreSQL's message as its error;
 *   - update mode: a row whose key is not in the table (none returned for
 *     it) is tried alone once more, then counts as an error ("no row ...").
 * A dry run never comes here (ack.c).  A chunk LOST meanwhile stops its
 * batch: the rows not written are left to the chunk's new holder.
 */
#include "worker.h"

#include "ef_job.h"
#include "ef_log.h"
#include "ef_pg.h"
#include "ef_sink.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EF_SINK_BACKOFF_BASE_MS 200
#define EF_SINK_BACKOFF_MAX_MS 5000

typedef enum { ROW_PENDING = 0, ROW_SOLO, ROW_WRITTEN, ROW_FAILED } row_state_t;

typedef struct sink_batch_s {
    struct sink_batch_s *next;
    ef_chunk_t *c;
    size_t n;
    int *task;    /* task index in c per row */
    char *state;  /* row_state_t per row */
    char **why;   /* error per failed row */
    int solo;     /* rows one by one now */
    size_t *stmt; /* rows in the statement in flight */
    size_t nstmt;
} sink_batch_t;

struct ef_sink_s {
    ef_worker_t *w;
    ef_prov_t *p;
    const ef_sink_conf_t *conf;
    ef_pg_t *pg;
    char **types; /* key's then each column's type, NULL until described */
    int describing;
    sink_batch_t *head, *tail;
    size_t held; /* rows in the batches queued */
    int busy;    /* a statement in flight */
    int waiting; /* backoff timer running */
    uint64_t backoff_ms;
    uint64_t down_since; /* monotonic ms, 0 while up */
    uv_timer_t timer;
    ef_buf_t sql;
    long long written, failed;
};

static void kick(ef_sink_t *s);

/* ---- building a statement ---- */

/* A scalar's text for a parameter: a string as it is, a number or a
 * boolean as JSON writes it; NULL for anything else (the caller frees). */
static char *scalar(const cJSON *v) {
    if (cJSON_IsString(v))
        return ef_strdup(v->valuestring);
    if (cJSON_IsNumber(v) || cJSON_IsBool(v)) {
        char *t = cJSON_PrintUnformatted(v);
        char *r = t ? ef_strdup(t) : NULL;
        cJSON_free(t);
        return r;
    }
    return NULL;
}

/* The text of extracted field name in the task's result pairs, or NULL. */
static const char *pair_value(const ef_task_t *t, const char *name) {
    for (size_t i = 0; t->pairs && i < t->npairs; i++)
        if (strcmp(t->pairs[2 * i], name) == 0)
            return t->pairs[2 * i + 1];
    return NULL;
}

static void row_fail(sink_batch_t *b, size_t r, const char *fmt, ...) EF_PRINTF(3, 4);
static void row_fail(sink_batch_t *b, size_t r, const char *fmt, ...) {
    char msg[EF_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    b->state[r] = ROW_FAILED;
    free(b->why[r]);
    b->why[r] = ef_strdup(msg);
}

static void on_result(ef_pg_t *pg, PGresult *res, const char *why, void *arg);

/* Sends the next statement of batch b: up to rows_max pending rows, or one
 * solo row.  Returns 1 when one was sent, 0 when the batch has none left. */
static int send_next(ef_sink_t *s, sink_batch_t *b) {
    const ef_sink_conf_t *k = s->conf;
    size_t per = ef_sink_params_per_row(k), max = ef_sink_rows_max(k);
    b->nstmt = 0;
    for (size_t r = 0; r < b->n && b->nstmt < (b->solo ? 1 : max); r++) {
        if (b->state[r] != (b->solo ? ROW_SOLO : ROW_PENDING))
            continue;
        const ef_task_t *t = &b->c->tasks[b->task[r]];
        const cJSON *kv =
            t->entity ? cJSON_GetObjectItemCaseSensitive(t->entity, k->key_field) : NULL;
        if (!cJSON_IsString(kv) && !cJSON_IsNumber(kv)) {
            row_fail(b, r, "sink: the entity has no field '%s' for the key column %s", k->key_field,
                     k->key);
            continue;
        }
        b->stmt[b->nstmt++] = r;
    }
    if (b->nstmt == 0) {
        if (b->solo)
            return 0;
        b->solo = 1;
        return send_next(s, b);
    }
    size_t np = per * b->nstmt;
    char **v = ef_calloc(np, sizeof *v);
    size_t p = 0;
    for (size_t i = 0; i < b->nstmt; i++) {
        const ef_task_t *t = &b->c->tasks[b->task[b->stmt[i]]];
        char num[24];
        if (k->mode == EF_SINK_UPDATE) {
            snprintf(num, sizeof num, "%zu", i);
            v[p++] = ef_strdup(num);
        }
        v[p++] = scalar(cJSON_GetObjectItemCaseSensitive(t->entity, k->key_field));
        for (size_t c = 0; c < k->ncolumns; c++) {
            const char *val = pair_value(t, k->fields[c]);
            v[p++] = val ? ef_strdup(val) : NULL;
        }
    }
    ef_sink_sql(k, (const char *const *)s->types, b->nstmt, &s->sql);
    int rc = ef_pg_query(s->pg, s->sql.s, (int)np, (const char *const *)v, on_result, s);
    for (size_t i = 0; i < np; i++)
        free(v[i]);
    free(v);
    if (rc != 0) {
        ef_error("postgres sink of provider %s: cannot send (%s)", s->p->rc->name, uv_strerror(rc));
        return 0;
    }
    s->busy = 1;
    return 1;
}

/* ---- finishing a batch ---- */

static void batch_free(sink_batch_t *b) {
    for (size_t r = 0; r < b->n; r++)
        free(b->why[r]);
    free(b->why);
    free(b->task);
    free(b->state);
    free(b->stmt);
    free(b);
}

static void dequeue(ef_sink_t *s, sink_batch_t *b) {
    s->head = b->next;
    if (!s->head)
        s->tail = NULL;
    s->held -= b->n;
}

/* Applies the batch to its tasks: written rows may be recorded, failed
 * ones become errors with their reason; then the chunk's ack goes on. */
static void batch_done(ef_sink_t *s, sink_batch_t *b) {
    ef_chunk_t *c = b->c;
    ef_worker_t *w = s->w;
    dequeue(s, b);
    for (size_t r = 0; r < b->n; r++) {
        ef_task_t *t = &c->tasks[b->task[r]];
        if (b->state[r] == ROW_WRITTEN) {
            t->sunk = 1;
            s->written++;
            continue;
        }
        /* ROW_FAILED (or never sent, which cannot happen but must not pass as written) */
        s->failed++;
        w->c_errors++;
        t->outcome = EF_OUTCOME_ERROR;
        free(t->error);
        t->error = b->why[r] ? b->why[r] : ef_strdup("sink: not written");
        b->why[r] = NULL;
        free(t->pairs);
        free(t->fields);
        free(t->result_key);
        t->pairs = NULL;
        t->npairs = 0;
        t->fields = t->result_key = NULL;
    }
    batch_free(b);
    c->acking = 0;
    kick(s);
    ef_chunk_ack(c); /* c may be gone after this */
}

/* The chunk went to another worker: its rows not written are its new
 * holder's to write and record. */
static void batch_abandon(ef_sink_t *s, sink_batch_t *b) {
    ef_chunk_t *c = b->c;
    dequeue(s, b);
    for (size_t r = 0; r < b->n; r++) {
        ef_task_t *t = &c->tasks[b->task[r]];
        if (b->state[r] == ROW_WRITTEN)
            t->sunk = 1;
        else
            t->acked = EF_TASK_RECORDED; /* not by us: nothing will be sent for it */
    }
    batch_free(b);
    c->acking = 0;
    kick(s);
    ef_chunk_maybe_finish(c); /* c may be gone after this */
}

/* ---- the connection ---- */

static void on_timer(uv_timer_t *t) {
    ef_sink_t *s = t->data;
    s->waiting = 0;
    kick(s);
}

/* An outage (or a transient error): the statement waits and goes again. */
static void outage(ef_sink_t *s, const char *why) {
    uint64_t now = ef_mono_ms();
    if (!s->down_since) {
        s->down_since = now;
        ef_warn("postgres sink of provider %s unavailable: %s; holding %zu entit%s and retrying "
                "(their outcomes wait)",
                s->p->rc->name, why, s->held, s->held == 1 ? "y" : "ies");
    } else {
        ef_debug("postgres sink of provider %s still unavailable: %s", s->p->rc->name, why);
    }
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : EF_SINK_BACKOFF_BASE_MS;
    if (s->backoff_ms > EF_SINK_BACKOFF_MAX_MS)
        s->backoff_ms = EF_SINK_BACKOFF_MAX_MS;
    if (!ef_pg_connected(s->pg)) {
        for (size_t i = 0; s->types && i <= s->conf->ncolumns; i++)
            free(s->types[i]);
        free(s->types);
        s->types = NULL; /* described again on the next connection */
    }
    s->waiting = 1;
    uv_timer_start(&s->timer, on_timer, s->backoff_ms / 2 + ef_rand64() % (s->backoff_ms / 2 + 1),
                   0);
}

static void up(ef_sink_t *s) {
    if (s->down_since)
        ef_info("postgres sink of provider %s is back after %llu ms", s->p->rc->name,
                (unsigned long long)(ef_mono_ms() - s->down_since));
    s->down_since = 0;
    s->backoff_ms = 0;
}

/* The table's description: the type of the key and of every column. */
static void described(ef_sink_t *s, PGresult *res) {
    const ef_sink_conf_t *k = s->conf;
    size_t n = k->ncolumns + 1;
    char **types = ef_calloc(n, sizeof *types);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 0), *type = PQgetvalue(res, i, 1);
        for (size_t c = 0; c < n; c++)
            if (!types[c] && strcmp(name, c == 0 ? k->key : k->columns[c - 1]) == 0)
                types[c] = ef_strdup(type);
    }
    for (size_t c = 0; c < n; c++) {
        if (types[c])
            continue;
        /* a column the table lacks fails the head batch's rows, each with why */
        sink_batch_t *b = s->head;
        for (size_t r = 0; b && r < b->n; r++)
            if (b->state[r] == ROW_PENDING || b->state[r] == ROW_SOLO)
                row_fail(b, r, "sink: table %s has no column \"%s\"", k->table_name,
                         c == 0 ? k->key : k->columns[c - 1]);
        for (size_t i = 0; i < n; i++)
            free(types[i]);
        free(types);
        return;
    }
    s->types = types;
}

static void on_result(ef_pg_t *pg, PGresult *res, const char *why, void *arg) {
    ef_sink_t *s = arg;
    sink_batch_t *b = s->head;
    (void)pg;
    s->busy = 0;
    if (!res || PQresultStatus(res) == PGRES_FATAL_ERROR ||
        PQresultStatus(res) == PGRES_BAD_RESPONSE) {
        if (!res || ef_pg_transient(res) || !ef_pg_connected(s->pg)) {
            outage(s, res ? ef_pg_message(res) : why);
            return;
        }
        up(s);
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        if (s->describing) {
            s->describing = 0;
            for (size_t r = 0; b && r < b->n; r++)
                if (b->state[r] == ROW_PENDING || b->state[r] == ROW_SOLO)
                    row_fail(b, r, "sink: postgres: %s", ef_pg_message(res));
        } else if (!b->solo) {
            ef_debug("postgres sink of provider %s: a batch of %zu failed (%s); row by row",
                     s->p->rc->name, b->nstmt, ef_pg_message(res));
            for (size_t i = 0; i < b->nstmt; i++)
                b->state[b->stmt[i]] = ROW_SOLO;
        } else {
            char d[EF_ERR_LEN / 2];
            snprintf(d, sizeof d, "%s%s%s", detail ? " (" : "", detail ? detail : "",
                     detail ? ")" : "");
            row_fail(b, b->stmt[0], "sink: postgres: %s%s", ef_pg_message(res), d);
        }
        kick(s);
        return;
    }
    up(s);
    if (s->describing) {
        s->describing = 0;
        described(s, res);
        kick(s);
        return;
    }
    if (s->conf->mode == EF_SINK_UPSERT) {
        for (size_t i = 0; i < b->nstmt; i++)
            b->state[b->stmt[i]] = ROW_WRITTEN;
    } else {
        /* the rows returned exist; the others are tried alone, then missing */
        char *seen = ef_calloc(b->nstmt ? b->nstmt : 1, 1);
        for (int i = 0; i < PQntuples(res); i++) {
            long n = strtol(PQgetvalue(res, i, 0), NULL, 10);
            if (n >= 0 && (size_t)n < b->nstmt)
                seen[n] = 1;
        }
        for (size_t i = 0; i < b->nstmt; i++) {
            size_t r = b->stmt[i];
            if (seen[i])
                b->state[r] = ROW_WRITTEN;
            else if (!b->solo)
                b->state[r] = ROW_SOLO;
            else {
                const ef_task_t *t = &b->c->tasks[b->task[r]];
                char *key = scalar(cJSON_GetObjectItemCaseSensitive(t->entity, s->conf->key_field));
                char msg[EF_ERR_LEN];
                snprintf(msg, sizeof msg, "%.200s = %.100s", s->conf->key, key ? key : "?");
                free(key);
                row_fail(b, r,
                         "sink: no row %s in table %s (mode update writes existing rows "
                         "only)",
                         msg, s->conf->table_name);
            }
        }
        free(seen);
    }
    kick(s);
}

/* Sends what comes next: the table's description, a statement of the head
 * batch, or ends the head batch. */
static void kick(ef_sink_t *s) {
    sink_batch_t *b = s->head;
    int work = 0;
    if (s->busy || s->waiting || !b)
        return;
    if (b->c->state == EF_CHUNK_LOST) {
        batch_abandon(s, b); /* kicks again */
        return;
    }
    for (size_t r = 0; r < b->n && !work; r++)
        work = b->state[r] == ROW_PENDING || b->state[r] == ROW_SOLO;
    if (work && !s->types) {
        /* a failed description fails the head batch's rows with its reason */
        const char *table = s->conf->table;
        int rc = ef_pg_query(s->pg, ef_sink_describe_sql, 1, &table, on_result, s);
        if (rc == 0) {
            s->busy = 1;
            s->describing = 1;
            return;
        }
        ef_error("postgres sink of provider %s: cannot send (%s)", s->p->rc->name, uv_strerror(rc));
    } else if (work && send_next(s, b)) {
        return;
    }
    batch_done(s, b); /* kicks again */
}

/* ---- the worker's side ---- */

int ef_sink_create(ef_prov_t *p, char *err) {
    const ef_sink_conf_t *k = p->rc->sink;
    ef_recipe_scope_t scope = {NULL, NULL, NULL};
    ef_buf_t url;
    p->sink = NULL;
    if (!k)
        return 0;
    ef_buf_init(&url);
    if (ef_template_fill(k->url, &scope, EF_TMPL_RAW, &url, err) != 0) {
        char why[EF_ERR_LEN];
        snprintf(why, sizeof why, "%s", err);
        ef_seterr(err, "provider '%s': sink.url: %s", p->rc->name, why);
        ef_buf_free(&url);
        return -1;
    }
    {
        /* parsed once here so that libpq's parse errors, which may quote
         * pieces of the string, never reach a log */
        char *why = NULL;
        PQconninfoOption *opts = PQconninfoParse(url.s ? url.s : "", &why);
        PQfreemem(why);
        if (!opts) {
            ef_seterr(err,
                      "provider '%s': sink.url: not a connection string libpq accepts "
                      "(postgresql://user:password@host:port/db?param=value, or "
                      "key=value pairs)",
                      p->rc->name);
            ef_buf_free(&url);
            return -1;
        }
        PQconninfoFree(opts);
    }
    ef_sink_t *s = ef_calloc(1, sizeof *s);
    s->w = p->w;
    s->p = p;
    s->conf = k;
    ef_buf_init(&s->sql);
    int rc = ef_pg_create(&s->pg, p->w->loop, url.s ? url.s : "", EF_PG_DEADLINE_DEFAULT_MS);
    if (url.s) {
        volatile char *q = url.s; /* the filled URL holds the password */
        while (*q)
            *q++ = '\0';
    }
    ef_buf_free(&url);
    if (rc != 0 || uv_timer_init(p->w->loop, &s->timer) != 0) {
        ef_seterr(err, "provider '%s': cannot start its postgres sink", p->rc->name);
        ef_pg_close(s->pg);
        free(s);
        return -1;
    }
    s->timer.data = s;
    p->sink = s;
    return 0;
}

static void timer_closed(uv_handle_t *h) {
    ef_sink_t *s = h->data;
    ef_buf_free(&s->sql);
    free(s);
}

void ef_sink_close(ef_sink_t *s) {
    if (!s)
        return;
    if (s->written || s->failed)
        ef_info("postgres sink of provider %s: %lld row(s) written, %lld failed", s->p->rc->name,
                s->written, s->failed);
    ef_pg_close(s->pg);
    while (s->head) {
        sink_batch_t *b = s->head;
        dequeue(s, b);
        batch_free(b);
    }
    for (size_t i = 0; s->types && i <= s->conf->ncolumns; i++)
        free(s->types[i]);
    free(s->types);
    s->p->sink = NULL;
    uv_close((uv_handle_t *)&s->timer, timer_closed);
}

/* Tasks of c whose rows are still to be written: updated, not sent, not
 * written. */
static int wants(const ef_task_t *t) {
    return t->outcome == EF_OUTCOME_UPDATED && t->acked == EF_TASK_UNSENT && !t->sunk;
}

int ef_sink_needed(const ef_chunk_t *c) {
    if (!c->prov->sink || c->dry_run)
        return 0;
    for (size_t i = 0; i < c->ntasks; i++)
        if (wants(&c->tasks[i]))
            return 1;
    return 0;
}

int ef_sink_write(ef_chunk_t *c) {
    ef_sink_t *s = c->prov->sink;
    size_t n = 0;
    for (size_t i = 0; i < c->ntasks; i++)
        n += wants(&c->tasks[i]);
    if (!s || n == 0)
        return -1;
    sink_batch_t *b = ef_calloc(1, sizeof *b);
    b->c = c;
    b->task = ef_calloc(n, sizeof *b->task);
    b->state = ef_calloc(n, 1);
    b->why = ef_calloc(n, sizeof *b->why);
    b->stmt = ef_calloc(n, sizeof *b->stmt);
    for (size_t i = 0; i < c->ntasks; i++)
        if (wants(&c->tasks[i]))
            b->task[b->n++] = (int)i;
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    s->held += b->n;
    c->acking = 1;
    c->last_ack_ms = ef_mono_ms();
    kick(s); /* may end the batch (and c) at once: c is not touched after */
    return 0;
}

size_t ef_sinks_held(const ef_worker_t *w) {
    size_t n = 0;
    for (size_t i = 0; i < w->nprovs; i++)
        if (w->provs[i].sink)
            n += w->provs[i].sink->held;
    return n;
}
