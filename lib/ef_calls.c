// SPDX-License-Identifier: MIT
/*
 * The script call builders and the one table of script layouts (see
 * ef_calls.h).  Each builder derives the keys from the queue, job or
 * provider name through ef_keys, and pushes keys and arguments under the
 * names of the table below, which follows the KEYS/ARGV header of each
 * scripts/NAME.lua.
 */
#include "ef_calls.h"

#include "ef_job.h"
#include "ef_keys.h"
#include "ef_log.h"
#include "ef_scripts_gen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

/* ---- The layouts: one row per script, as its header documents ---- */

const ef_call_layout_t ef_call_layouts[] = {
    {&ef_script_job_create, NAMES("job", "jobs", "enqueuing"),
     NAMES("id", "queue", "provider", "entity_type", "chunk_size", "dry_run", "priority",
           "heartbeat_ttl_ms"),
     0, 2 /* extra field/value pairs */},
    {&ef_script_job_append, NAMES("job", "chunks", "enqueuing"),
     NAMES("id", "heartbeat_ttl_ms", "first"), 0, 2 /* entity count, NDJSON */},
    {&ef_script_job_seal, NAMES("job", "pending", "enqueuing"),
     NAMES("id", "total", "chunks_total", "events", "skipped"), 0, 0},
    {&ef_script_job_discard, NAMES("job", "chunks", "jobs", "enqueuing"), NAMES("id"), 0, 0},
    {&ef_script_job_abandon, NAMES("job", "chunks", "enqueuing"), NAMES("id", "events"), 0, 0},
    {&ef_script_job_cancel, NAMES("job", "parked", "enqueuing"), NAMES("id", "events"), 0, 0},
    {&ef_script_job_pause, NAMES("job"), NAMES("id", "events"), 0, 0},
    {&ef_script_job_resume, NAMES("job", "parked", "pending"), NAMES("id", "events"), 0, 0},
    {&ef_script_queue_pause, NAMES("paused"), NAMES("paused", "events"), 0, 0},
    {&ef_script_chunk_claim,
     NAMES("job", "chunks", "outcomes", "attempts", "leases", "owners", "processing", "parked",
           "dead", "errors", "stats", "paused", "pending"),
     NAMES("ref", "id", "n", "worker", "lease_ms", "max_attempts", "events", "error_log_cap"), 0,
     0},
    {&ef_script_chunk_release, NAMES("leases", "owners", "processing", "pending", "attempts"),
     NAMES("ref", "worker", "n", "mode"), 0, 0},
    {&ef_script_lease_extend, NAMES("leases", "owners"), NAMES("lease_ms", "worker"), 0,
     1 /* chunk refs */},
    {&ef_script_chunk_reap, NAMES("leases", "owners", "processing", "pending"),
     NAMES("max_requeue", "grace_ms", "scan"), 0, 0},
    {&ef_script_chunk_ack,
     NAMES("job", "outcomes", "results", "errors", "leases", "owners", "processing", "stats"),
     NAMES("ref", "id", "n", "error_log_cap", "policy", "events", "count"), 1 /* result hashes */,
     -1 /* per entity: index, outcome, m, m pairs, fields JSON, error, id, cached */},
    {&ef_script_ratelimit_take, NAMES("bucket", "waiters"),
     NAMES("want", "worker", "requests", "per_seconds", "burst"), 0, 0},
    {&ef_script_ratelimit_penalty, NAMES("bucket"), NAMES("pause_ms"), 0, 0},
};
const size_t ef_call_layouts_count = EF_ARRAY_LEN(ef_call_layouts);

const ef_call_layout_t *ef_call_layout_of(const ef_script_t *s) {
    for (size_t i = 0; i < ef_call_layouts_count; i++)
        if (ef_call_layouts[i].script == s)
            return &ef_call_layouts[i];
    return NULL;
}

static size_t names_count(const char *const *names) {
    size_t n = 0;
    while (names && names[n])
        n++;
    return n;
}

/* ---- Building ---- */

static void set_bad(ef_call_t *c, const char *fmt, ...) EF_PRINTF(2, 3);
static void set_bad(ef_call_t *c, const char *fmt, ...) {
    va_list ap;
    int n;
    if (c->bad)
        return;
    c->bad = 1;
    n = snprintf(c->err, sizeof c->err, "script %s: ", c->script ? c->script->name : "?");
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof c->err)
        vsnprintf(c->err + n, sizeof c->err - (size_t)n, fmt, ap);
    va_end(ap);
}

void ef_call_init(ef_call_t *c, const ef_script_t *s) {
    memset(c, 0, sizeof *c);
    c->script = s;
    ef_buf_init(&c->text);
    c->layout = ef_call_layout_of(s);
    if (!c->layout)
        set_bad(c, "no layout in ef_call_layouts");
}

static ef_call_slot_t *slot_push(ef_call_slot_t **v, size_t *n, size_t *cap) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = ef_realloc(*v, *cap * sizeof **v);
    }
    return &(*v)[(*n)++];
}

/* A slot holding a copy of the text (keys, numbers). */
static void slot_own(ef_call_t *c, ef_call_slot_t *s, const char *text, size_t len) {
    s->p = NULL;
    s->off = c->text.len;
    s->len = len;
    ef_buf_append(&c->text, text, len);
    ef_buf_appendc(&c->text, '\0');
}

void ef_call_key(ef_call_t *c, const char *name, const char *value) {
    const char *want = c->layout && c->nk < names_count(c->layout->keys)
                           ? c->layout->keys[c->nk]
                           : NULL;
    if (!want || strcmp(want, name) != 0)
        set_bad(c, "key '%s' where the layout has '%s'", name, want ? want : "none");
    if (c->na > 0)
        set_bad(c, "key '%s' after an argument", name);
    slot_own(c, slot_push(&c->keys, &c->nk, &c->capk), value, strlen(value));
}

void ef_call_extra_key(ef_call_t *c, const char *value) {
    if (!c->layout || !c->layout->extra_keys || c->nk < names_count(c->layout->keys))
        set_bad(c, "an extra key '%s' is not in its layout", value);
    ef_call_slot_t *s = slot_push(&c->keys, &c->nk, &c->capk);
    s->p = value;
    s->len = strlen(value);
}

static void arg_check(ef_call_t *c, const char *name) {
    const char *want = c->layout && c->na < names_count(c->layout->args)
                           ? c->layout->args[c->na]
                           : NULL;
    if (!want || strcmp(want, name) != 0)
        set_bad(c, "argument '%s' where the layout has '%s'", name, want ? want : "none");
}

void ef_call_arg(ef_call_t *c, const char *name, const char *value) {
    arg_check(c, name);
    ef_call_slot_t *s = slot_push(&c->args, &c->na, &c->capa);
    s->p = value;
    s->len = strlen(value);
}

/* A fixed argument holding a copy of text. */
static void arg_own(ef_call_t *c, const char *name, const char *text) {
    arg_check(c, name);
    slot_own(c, slot_push(&c->args, &c->na, &c->capa), text, strlen(text));
}

void ef_call_arg_ll(ef_call_t *c, const char *name, long long value) {
    char num[24];
    snprintf(num, sizeof num, "%lld", value);
    arg_own(c, name, num);
}

void ef_call_rest(ef_call_t *c, const char *value, size_t len) {
    ef_call_slot_t *s = slot_push(&c->args, &c->na, &c->capa);
    s->p = value;
    s->len = len == (size_t)-1 ? strlen(value) : len;
}

void ef_call_rest_ll(ef_call_t *c, long long value) {
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", value);
    slot_own(c, slot_push(&c->args, &c->na, &c->capa), num, (size_t)n);
}

int ef_call_finish(ef_call_t *c) {
    const ef_call_layout_t *l = c->layout;
    if (l) {
        size_t fk = names_count(l->keys), fa = names_count(l->args);
        char got[64], want[64];
        snprintf(got, sizeof got, "%zu keys, %zu arguments", c->nk, c->na);
        snprintf(want, sizeof want, "%zu keys, %zu arguments", fk, fa);
        if (c->nk < fk || (!l->extra_keys && c->nk != fk) || c->na < fa ||
            (l->group == 0 && c->na != fa) || (l->group > 0 && (c->na - fa) % (size_t)l->group))
            set_bad(c, "%s where the layout has %s", got, want);
    }
    free(c->argv);
    free(c->lens);
    c->argc = (int)(c->nk + c->na);
    c->nkeys = (int)c->nk;
    c->argv = ef_calloc((size_t)c->argc + 1, sizeof *c->argv);
    c->lens = ef_calloc((size_t)c->argc + 1, sizeof *c->lens);
    for (size_t i = 0; i < c->nk + c->na; i++) {
        const ef_call_slot_t *s = i < c->nk ? &c->keys[i] : &c->args[i - c->nk];
        c->argv[i] = s->p ? s->p : c->text.s + s->off;
        c->lens[i] = s->len;
    }
    if (c->bad) {
        ef_error("%s (not sent)", c->err);
        return -1;
    }
    return 0;
}

void ef_call_free(ef_call_t *c) {
    if (!c)
        return;
    free(c->keys);
    free(c->args);
    free(c->argv);
    free(c->lens);
    ef_buf_free(&c->text);
    c->keys = c->args = NULL;
    c->argv = NULL;
    c->lens = NULL;
    c->nk = c->na = c->capk = c->capa = 0;
}

/* ---- Key helpers ---- */

static void key_job(ef_call_t *c, const char *name, const char *queue, const char *id,
                    ef_key_job_kind_t kind) {
    ef_key_t k;
    ef_call_key(c, name, ef_key_job(&k, queue, id, kind));
}

static void key_queue(ef_call_t *c, const char *name, const char *queue,
                      ef_key_queue_kind_t kind) {
    ef_key_t k;
    ef_call_key(c, name, ef_key_queue(&k, queue, kind));
}

/* The events channel of a queue, an argument. */
static void arg_events(ef_call_t *c, const char *queue) {
    ef_key_t k;
    ef_key_queue(&k, queue, EF_KEY_EVENTS);
    arg_own(c, "events", k.s);
}

/* ---- Jobs: create, append, seal, discard, abandon ---- */

ef_call_t *ef_call_job_create(ef_call_t *c, const ef_call_job_create_t *a) {
    ef_call_init(c, &ef_script_job_create);
    key_job(c, "job", a->queue, a->id, EF_KEY_JOB);
    key_queue(c, "jobs", a->queue, EF_KEY_JOBS);
    key_queue(c, "enqueuing", a->queue, EF_KEY_ENQUEUING);
    ef_call_arg(c, "id", a->id);
    ef_call_arg(c, "queue", a->queue);
    ef_call_arg(c, "provider", a->provider);
    ef_call_arg(c, "entity_type", a->entity_type ? a->entity_type : "entity");
    ef_call_arg_ll(c, "chunk_size", a->chunk_size);
    ef_call_arg(c, "dry_run", a->dry_run ? "1" : "0");
    ef_call_arg(c, "priority", a->high_priority ? "high" : "normal");
    ef_call_arg_ll(c, "heartbeat_ttl_ms", EF_ENQUEUE_HEARTBEAT_TTL_MS);
    for (size_t i = 0; i < a->nextra * 2; i++)
        ef_call_rest(c, a->extra[i], (size_t)-1);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_append(ef_call_t *c, const char *queue, const char *id, long first,
                              const ef_call_chunk_t *chunks, size_t n) {
    ef_call_init(c, &ef_script_job_append);
    key_job(c, "job", queue, id, EF_KEY_JOB);
    key_job(c, "chunks", queue, id, EF_KEY_JOB_CHUNKS);
    key_queue(c, "enqueuing", queue, EF_KEY_ENQUEUING);
    ef_call_arg(c, "id", id);
    ef_call_arg_ll(c, "heartbeat_ttl_ms", EF_ENQUEUE_HEARTBEAT_TTL_MS);
    ef_call_arg_ll(c, "first", first);
    for (size_t i = 0; i < n; i++) {
        ef_call_rest_ll(c, chunks[i].count);
        ef_call_rest(c, chunks[i].data, chunks[i].len);
    }
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_seal(ef_call_t *c, const char *queue, const char *id, long long total,
                            long chunks_total, long skipped) {
    ef_call_init(c, &ef_script_job_seal);
    key_job(c, "job", queue, id, EF_KEY_JOB);
    key_queue(c, "pending", queue, EF_KEY_PENDING);
    key_queue(c, "enqueuing", queue, EF_KEY_ENQUEUING);
    ef_call_arg(c, "id", id);
    ef_call_arg_ll(c, "total", total);
    ef_call_arg_ll(c, "chunks_total", chunks_total);
    arg_events(c, queue);
    ef_call_arg_ll(c, "skipped", skipped);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_discard(ef_call_t *c, const char *queue, const char *id) {
    ef_call_init(c, &ef_script_job_discard);
    key_job(c, "job", queue, id, EF_KEY_JOB);
    key_job(c, "chunks", queue, id, EF_KEY_JOB_CHUNKS);
    key_queue(c, "jobs", queue, EF_KEY_JOBS);
    key_queue(c, "enqueuing", queue, EF_KEY_ENQUEUING);
    ef_call_arg(c, "id", id);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_abandon(ef_call_t *c, const char *queue, const char *id) {
    ef_call_init(c, &ef_script_job_abandon);
    key_job(c, "job", queue, id, EF_KEY_JOB);
    key_job(c, "chunks", queue, id, EF_KEY_JOB_CHUNKS);
    key_queue(c, "enqueuing", queue, EF_KEY_ENQUEUING);
    ef_call_arg(c, "id", id);
    arg_events(c, queue);
    ef_call_finish(c);
    return c;
}

/* ---- Control verbs ---- */

ef_call_t *ef_call_job_cancel(ef_call_t *c, const char *queue, const char *id) {
    ef_call_init(c, &ef_script_job_cancel);
    key_job(c, "job", queue, id, EF_KEY_JOB);
    key_job(c, "parked", queue, id, EF_KEY_JOB_PARKED);
    key_queue(c, "enqueuing", queue, EF_KEY_ENQUEUING);
    ef_call_arg(c, "id", id);
    arg_events(c, queue);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_pause(ef_call_t *c, const char *queue, const char *id) {
    ef_call_init(c, &ef_script_job_pause);
    key_job(c, "job", queue, id, EF_KEY_JOB);
    ef_call_arg(c, "id", id);
    arg_events(c, queue);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_resume(ef_call_t *c, const char *queue, const char *id) {
    ef_call_init(c, &ef_script_job_resume);
    key_job(c, "job", queue, id, EF_KEY_JOB);
    key_job(c, "parked", queue, id, EF_KEY_JOB_PARKED);
    key_queue(c, "pending", queue, EF_KEY_PENDING);
    ef_call_arg(c, "id", id);
    arg_events(c, queue);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_queue_pause(ef_call_t *c, const char *queue, int paused) {
    ef_call_init(c, &ef_script_queue_pause);
    key_queue(c, "paused", queue, EF_KEY_PAUSED);
    ef_call_arg(c, "paused", paused ? "1" : "0");
    arg_events(c, queue);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_control(ef_call_t *c, const char *verb, const char *queue, const char *id) {
    if (strcmp(verb, "cancel") == 0)
        return ef_call_job_cancel(c, queue, id);
    if (strcmp(verb, "pause") == 0)
        return ef_call_job_pause(c, queue, id);
    if (strcmp(verb, "resume") == 0)
        return ef_call_job_resume(c, queue, id);
    ef_call_init(c, NULL);
    c->bad = 0;
    set_bad(c, "no control verb '%s'", verb);
    ef_call_finish(c);
    return c;
}

/* ---- Chunks (the worker) ---- */

ef_call_t *ef_call_chunk_claim(ef_call_t *c, const ef_call_chunk_claim_t *a) {
    ef_call_init(c, &ef_script_chunk_claim);
    key_job(c, "job", a->queue, a->job_id, EF_KEY_JOB);
    key_job(c, "chunks", a->queue, a->job_id, EF_KEY_JOB_CHUNKS);
    key_job(c, "outcomes", a->queue, a->job_id, EF_KEY_JOB_OUTCOMES);
    key_job(c, "attempts", a->queue, a->job_id, EF_KEY_JOB_ATTEMPTS);
    key_queue(c, "leases", a->queue, EF_KEY_LEASES);
    key_queue(c, "owners", a->queue, EF_KEY_OWNERS);
    key_queue(c, "processing", a->queue, EF_KEY_PROCESSING);
    key_job(c, "parked", a->queue, a->job_id, EF_KEY_JOB_PARKED);
    key_queue(c, "dead", a->queue, EF_KEY_DEAD);
    key_job(c, "errors", a->queue, a->job_id, EF_KEY_JOB_ERRORS);
    key_queue(c, "stats", a->queue, EF_KEY_STATS);
    key_queue(c, "paused", a->queue, EF_KEY_PAUSED);
    key_queue(c, "pending", a->queue, EF_KEY_PENDING);
    ef_call_arg(c, "ref", a->ref);
    ef_call_arg(c, "id", a->job_id);
    ef_call_arg_ll(c, "n", a->n);
    ef_call_arg(c, "worker", a->worker_id);
    ef_call_arg_ll(c, "lease_ms", a->lease_ms);
    ef_call_arg_ll(c, "max_attempts", a->max_attempts);
    arg_events(c, a->queue);
    ef_call_arg_ll(c, "error_log_cap", a->error_log_cap);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_chunk_release(ef_call_t *c, const char *queue, const char *job_id, long n,
                                 const char *ref, const char *worker_id, const char *mode) {
    ef_call_init(c, &ef_script_chunk_release);
    key_queue(c, "leases", queue, EF_KEY_LEASES);
    key_queue(c, "owners", queue, EF_KEY_OWNERS);
    key_queue(c, "processing", queue, EF_KEY_PROCESSING);
    key_queue(c, "pending", queue, EF_KEY_PENDING);
    key_job(c, "attempts", queue, job_id, EF_KEY_JOB_ATTEMPTS);
    ef_call_arg(c, "ref", ref);
    ef_call_arg(c, "worker", worker_id);
    ef_call_arg_ll(c, "n", n);
    ef_call_arg(c, "mode", mode);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_lease_extend(ef_call_t *c, const char *queue, const char *worker_id,
                                int lease_ms, const char *const *refs, size_t nrefs) {
    ef_call_init(c, &ef_script_lease_extend);
    key_queue(c, "leases", queue, EF_KEY_LEASES);
    key_queue(c, "owners", queue, EF_KEY_OWNERS);
    ef_call_arg_ll(c, "lease_ms", lease_ms);
    ef_call_arg(c, "worker", worker_id);
    for (size_t i = 0; i < nrefs; i++)
        ef_call_rest(c, refs[i], (size_t)-1);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_chunk_reap(ef_call_t *c, const char *queue, int max_requeue, int grace_ms,
                              int scan) {
    ef_call_init(c, &ef_script_chunk_reap);
    key_queue(c, "leases", queue, EF_KEY_LEASES);
    key_queue(c, "owners", queue, EF_KEY_OWNERS);
    key_queue(c, "processing", queue, EF_KEY_PROCESSING);
    key_queue(c, "pending", queue, EF_KEY_PENDING);
    ef_call_arg_ll(c, "max_requeue", max_requeue);
    ef_call_arg_ll(c, "grace_ms", grace_ms);
    ef_call_arg_ll(c, "scan", scan);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_chunk_ack(ef_call_t *c, const ef_call_chunk_ack_t *a,
                             const ef_call_ack_entity_t *e, size_t n) {
    ef_call_init(c, &ef_script_chunk_ack);
    key_job(c, "job", a->queue, a->job_id, EF_KEY_JOB);
    key_job(c, "outcomes", a->queue, a->job_id, EF_KEY_JOB_OUTCOMES);
    key_job(c, "results", a->queue, a->job_id, EF_KEY_JOB_RESULTS);
    key_job(c, "errors", a->queue, a->job_id, EF_KEY_JOB_ERRORS);
    key_queue(c, "leases", a->queue, EF_KEY_LEASES);
    key_queue(c, "owners", a->queue, EF_KEY_OWNERS);
    key_queue(c, "processing", a->queue, EF_KEY_PROCESSING);
    key_queue(c, "stats", a->queue, EF_KEY_STATS);
    for (size_t i = 0; i < n; i++)
        if (e[i].result_key && e[i].npairs > 0)
            ef_call_extra_key(c, e[i].result_key);
    ef_call_arg(c, "ref", a->ref);
    ef_call_arg(c, "id", a->job_id);
    ef_call_arg_ll(c, "n", a->n);
    ef_call_arg_ll(c, "error_log_cap", a->error_log_cap);
    ef_call_arg(c, "policy", a->keep ? "keep" : "overwrite");
    arg_events(c, a->queue);
    ef_call_arg_ll(c, "count", (long long)n);
    for (size_t i = 0; i < n; i++) {
        char oc[2] = {e[i].outcome, '\0'};
        size_t m = e[i].result_key ? e[i].npairs : 0;
        if (!ef_outcome_known(e[i].outcome))
            set_bad(c, "entity %d has no outcome", e[i].index);
        ef_call_rest_ll(c, e[i].index);
        ef_call_slot_t *s = slot_push(&c->args, &c->na, &c->capa);
        slot_own(c, s, oc, 1);
        ef_call_rest_ll(c, (long long)m);
        for (size_t k = 0; k < m * 2; k++)
            ef_call_rest(c, e[i].pairs[k], (size_t)-1);
        ef_call_rest(c, e[i].fields_json ? e[i].fields_json : "", (size_t)-1);
        ef_call_rest(c, e[i].error ? e[i].error : "", (size_t)-1);
        ef_call_rest(c, e[i].entity_id ? e[i].entity_id : "", (size_t)-1);
        ef_call_rest(c, e[i].cached ? "1" : "0", 1);
    }
    ef_call_finish(c);
    return c;
}

/* ---- Rate limits ---- */

ef_call_t *ef_call_ratelimit_take(ef_call_t *c, const char *provider, long want,
                                  const char *worker_id, long requests, double per_seconds,
                                  long burst) {
    ef_key_t k;
    char per[32];
    ef_call_init(c, &ef_script_ratelimit_take);
    ef_call_key(c, "bucket", ef_key_ratelimit(&k, provider));
    ef_call_key(c, "waiters", ef_key_ratelimit_waiters(&k, provider));
    ef_call_arg_ll(c, "want", want);
    ef_call_arg(c, "worker", worker_id);
    ef_call_arg_ll(c, "requests", requests);
    snprintf(per, sizeof per, "%.6g", per_seconds);
    arg_own(c, "per_seconds", per);
    ef_call_arg_ll(c, "burst", burst);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_ratelimit_penalty(ef_call_t *c, const char *provider, long pause_ms) {
    ef_key_t k;
    ef_call_init(c, &ef_script_ratelimit_penalty);
    ef_call_key(c, "bucket", ef_key_ratelimit(&k, provider));
    ef_call_arg_ll(c, "pause_ms", pause_ms);
    ef_call_finish(c);
    return c;
}
