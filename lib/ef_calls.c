// SPDX-License-Identifier: MIT
/*
 * The script call builders and the one table of script layouts (see
 * ef_calls.h).  The table names each script's keys and arguments in the
 * order of the KEYS/ARGV header of scripts/NAME.lua.  A builder pushes the
 * keys of its row (each key name stands for one key of the queue or the
 * job, built by ef_keys), then its arguments under their names.
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

/* ---- The layouts: one row per script, as its header documents ---- */

const ef_call_layout_t ef_call_layouts[] = {
    {.script = &ef_script_job_create,
     .keys = NAMES("job", "jobs", "enqueuing", "notify", "settings", "queues", "providers"),
     .args = NAMES("id", "queue", "provider", "entity_type", "chunk_size", "dry_run", "priority",
                   "heartbeat_ttl_ms"),
     .group = 2 /* extra job-hash field, value */},
    {.script = &ef_script_job_append,
     .keys = NAMES("job", "chunks", "enqueuing"),
     .args = NAMES("id", "heartbeat_ttl_ms", "first"),
     .group = 2 /* entity count, NDJSON */},
    {.script = &ef_script_job_seal,
     .keys = NAMES("job", "pending", "enqueuing"),
     .args = NAMES("id", "total", "chunks_total", "events", "skipped")},
    {.script = &ef_script_job_discard,
     .keys = NAMES("job", "chunks", "jobs", "enqueuing"),
     .args = NAMES("id")},
    {.script = &ef_script_job_abandon,
     .keys = NAMES("job", "chunks", "enqueuing"),
     .args = NAMES("id", "events")},
    {.script = &ef_script_job_cancel,
     .keys = NAMES("job", "parked", "enqueuing", "control"),
     .args = NAMES("id", "events")},
    {.script = &ef_script_job_pause, .keys = NAMES("job", "control"), .args = NAMES("id", "events")},
    {.script = &ef_script_job_resume,
     .keys = NAMES("job", "parked", "pending", "control"),
     .args = NAMES("id", "events")},
    {.script = &ef_script_queue_pause,
     .keys = NAMES("paused", "control"),
     .args = NAMES("paused", "events")},
    {.script = &ef_script_chunk_claim,
     .keys = NAMES("job", "chunks", "outcomes", "attempts", "leases", "owners", "processing",
                   "parked", "dead", "errors", "stats", "paused", "pending"),
     .args =
         NAMES("ref", "id", "n", "worker", "lease_ms", "max_attempts", "events", "error_log_cap")},
    {.script = &ef_script_chunk_release,
     .keys = NAMES("leases", "owners", "processing", "pending", "attempts", "parked", "job"),
     .args = NAMES("ref", "worker", "n", "mode")},
    {.script = &ef_script_worker_beat, .keys = NAMES("workers"), .args = NAMES("worker", "ttl_ms")},
    {.script = &ef_script_lease_extend,
     .keys = NAMES("leases", "owners"),
     .args = NAMES("lease_ms", "worker"),
     .group = 1 /* chunk refs */},
    {.script = &ef_script_chunk_reap,
     .keys = NAMES("leases", "owners", "processing", "pending"),
     .args = NAMES("max_requeue", "grace_ms", "scan")},
    {.script = &ef_script_chunk_ack,
     .keys =
         NAMES("job", "outcomes", "results", "errors", "leases", "owners", "processing", "stats",
               "dryrun"),
     .args = NAMES("ref", "id", "n", "error_log_cap", "policy", "events", "count"),
     .extra_keys = 1 /* one result hash per entity with pairs */,
     .group = -1 /* per entity: index, outcome, m, m pairs, fields JSON, error, id, cached */},
    {.script = &ef_script_ratelimit_take,
     .keys = NAMES("bucket", "waiters"),
     .args = NAMES("want", "worker", "requests", "per_seconds", "burst", "answered")},
    {.script = &ef_script_notify_claim,
     .keys = NAMES("notify", "job"),
     .args = NAMES("id", "worker", "lease_ms", "recheck_ms", "give_up_ms")},
    {.script = &ef_script_notify_done,
     .keys = NAMES("notify", "job"),
     .args = NAMES("id", "worker", "result", "error", "retry_ms")},
    {.script = &ef_script_ratelimit_penalty,
     .keys = NAMES("bucket"),
     .args = NAMES("pause_ms", "date_ms", "cap_ms", "cut")},
    {.script = &ef_script_auth_lock,
     .keys = NAMES("auth"),
     .args = NAMES("worker", "lock_ms", "refused")},
    {.script = &ef_script_auth_store,
     .keys = NAMES("auth"),
     .args =
         NAMES("worker", "token", "life_ms", "renew_pct", "backoff_ms", "backoff_max_ms", "error")},
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
    const char *want =
        c->layout && c->nk < names_count(c->layout->keys) ? c->layout->keys[c->nk] : NULL;
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
    const char *want =
        c->layout && c->na < names_count(c->layout->args) ? c->layout->args[c->na] : NULL;
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

/* ---- Keys by name ----
 *
 * A layout names its keys; each name stands for one key of the queue or of
 * the job, built by ef_keys.  A builder pushes a script's keys from its
 * layout row, so the keys are never listed twice. */

enum { OF_QUEUE = 0, OF_JOB = 1, OF_FARM = 2 };

static const struct {
    const char *name;
    int of_job; /* OF_JOB: a key of the job, OF_QUEUE: of the queue, OF_FARM: global */
    int kind;   /* ef_key_job_kind_t, ef_key_queue_kind_t or ef_key_global_kind_t */
} key_names[] = {
    {"job", 1, EF_KEY_JOB},
    {"chunks", 1, EF_KEY_JOB_CHUNKS},
    {"outcomes", 1, EF_KEY_JOB_OUTCOMES},
    {"attempts", 1, EF_KEY_JOB_ATTEMPTS},
    {"errors", 1, EF_KEY_JOB_ERRORS},
    {"parked", 1, EF_KEY_JOB_PARKED},
    {"results", 1, EF_KEY_JOB_RESULTS},
    {"dryrun", 1, EF_KEY_JOB_DRYRUN},
    {"pending", 0, EF_KEY_PENDING},
    {"processing", 0, EF_KEY_PROCESSING},
    {"leases", 0, EF_KEY_LEASES},
    {"owners", 0, EF_KEY_OWNERS},
    {"dead", 0, EF_KEY_DEAD},
    {"paused", 0, EF_KEY_PAUSED},
    {"jobs", 0, EF_KEY_JOBS},
    {"enqueuing", 0, EF_KEY_ENQUEUING},
    {"stats", 0, EF_KEY_STATS},
    {"control", 0, EF_KEY_CONTROL},
    {"notify", 0, EF_KEY_NOTIFY},
    {"settings", 0, EF_KEY_SETTINGS},
    {"workers", OF_FARM, EF_KEY_WORKERS},
    {"queues", OF_FARM, EF_KEY_QUEUES},
    {"providers", OF_FARM, EF_KEY_PROVIDERS},
};

/* Starts a call of s and pushes its fixed keys, for a queue and (when the
 * layout has job keys) a job. */
static void begin(ef_call_t *c, const ef_script_t *s, const char *queue, const char *id) {
    ef_call_init(c, s);
    for (size_t i = 0; c->layout && c->layout->keys[i]; i++) {
        const char *name = c->layout->keys[i];
        size_t k = 0;
        ef_key_t key;
        while (k < EF_ARRAY_LEN(key_names) && strcmp(key_names[k].name, name) != 0)
            k++;
        if (k == EF_ARRAY_LEN(key_names) || (key_names[k].of_job == OF_JOB && !id)) {
            set_bad(c, "no key '%s' for this call", name);
            return;
        }
        if (key_names[k].of_job == OF_FARM)
            ef_key_global(&key, (ef_key_global_kind_t)key_names[k].kind);
        else if (key_names[k].of_job == OF_JOB)
            ef_key_job(&key, queue, id, (ef_key_job_kind_t)key_names[k].kind);
        else
            ef_key_queue(&key, queue, (ef_key_queue_kind_t)key_names[k].kind);
        ef_call_key(c, name, key.s);
    }
}

/* Starts a call of s with its fixed keys borrowed from ks (built once by
 * the caller, every one given); no key is built nor copied. */
static void begin_given(ef_call_t *c, const ef_script_t *s, const ef_call_keys_t *ks) {
    ef_call_init(c, s);
    if (ks->layout != c->layout) {
        set_bad(c, "the keys given are another script's");
        return;
    }
    for (size_t i = 0; c->layout && c->layout->keys[i]; i++) {
        const char *name = c->layout->keys[i];
        if (!ks->key[i]) {
            set_bad(c, "key '%s' was not given", name);
            return;
        }
        ef_call_slot_t *slot = slot_push(&c->keys, &c->nk, &c->capk);
        slot->p = ks->key[i];
        slot->len = strlen(ks->key[i]);
    }
}

void ef_call_keys_init(ef_call_keys_t *ks, const ef_script_t *s) {
    memset(ks, 0, sizeof *ks);
    ks->layout = ef_call_layout_of(s);
}

int ef_call_keys_set(ef_call_keys_t *ks, const char *name, const char *key) {
    for (size_t i = 0; ks->layout && ks->layout->keys[i] && i < EF_CALL_KEYS_MAX; i++)
        if (strcmp(ks->layout->keys[i], name) == 0) {
            ks->key[i] = key;
            return 0;
        }
    return -1;
}

/* The events channel of a queue, an argument. */
static void arg_events(ef_call_t *c, const char *queue) {
    ef_key_t k;
    arg_own(c, "events", ef_key_queue(&k, queue, EF_KEY_EVENTS));
}

/* A call of a script that takes a job's keys, its id and (when its layout
 * says so) the events channel: discard, abandon and the control verbs. */
static ef_call_t *job_call(ef_call_t *c, const ef_script_t *s, const char *queue, const char *id) {
    begin(c, s, queue, id);
    ef_call_arg(c, "id", id);
    if (c->layout && c->layout->args[0] && c->layout->args[1] &&
        strcmp(c->layout->args[1], "events") == 0)
        arg_events(c, queue);
    ef_call_finish(c);
    return c;
}

/* ---- Jobs: create, append, seal, discard, abandon ---- */

ef_call_t *ef_call_job_create(ef_call_t *c, const ef_call_job_create_t *a) {
    begin(c, &ef_script_job_create, a->queue, a->id);
    ef_call_arg(c, "id", a->id);
    ef_call_arg(c, "queue", a->queue);
    ef_call_arg(c, "provider", a->provider);
    ef_call_arg(c, "entity_type", a->entity_type ? a->entity_type : "entity");
    ef_call_arg_ll(c, "chunk_size", a->chunk_size);
    ef_call_arg(c, "dry_run", a->dry_run ? "1" : "0");
    ef_call_arg(c, "priority", a->high_priority ? "high" : "normal");
    ef_call_arg_ll(c, "heartbeat_ttl_ms",
                   a->heartbeat_ttl_ms > 0 ? a->heartbeat_ttl_ms : EF_ENQUEUE_HEARTBEAT_TTL_MS);
    const char *named[] = {"source", a->source, "retry_of", a->retry_of, "notify_url",
                           a->notify_url};
    for (size_t i = 0; i < EF_ARRAY_LEN(named); i += 2)
        if (named[i + 1] && named[i + 1][0]) {
            ef_call_rest(c, named[i], (size_t)-1);
            ef_call_rest(c, named[i + 1], (size_t)-1);
        }
    for (size_t i = 0; i < a->nextra * 2; i++)
        ef_call_rest(c, a->extra[i], (size_t)-1);
    if (ef_call_finish(c) == 0 && a->registry_apart) {
        /* drop farm:queues and farm:providers, the last two keys */
        memmove(&c->argv[5], &c->argv[7], sizeof *c->argv * (size_t)(c->argc - 7));
        memmove(&c->lens[5], &c->lens[7], sizeof *c->lens * (size_t)(c->argc - 7));
        c->argc -= 2;
        c->nkeys -= 2;
    }
    return c;
}

void ef_queue_reg_keys(ef_queue_reg_keys_t *k, const char *queue) {
    ef_key_global(&k->queues, EF_KEY_QUEUES);
    ef_key_queue(&k->settings, queue, EF_KEY_SETTINGS);
}

ef_call_t *ef_call_job_append(ef_call_t *c, const char *queue, const char *id, int ttl_ms,
                              long first, const ef_call_chunk_t *chunks, size_t n) {
    begin(c, &ef_script_job_append, queue, id);
    ef_call_arg(c, "id", id);
    ef_call_arg_ll(c, "heartbeat_ttl_ms", ttl_ms > 0 ? ttl_ms : EF_ENQUEUE_HEARTBEAT_TTL_MS);
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
    begin(c, &ef_script_job_seal, queue, id);
    ef_call_arg(c, "id", id);
    ef_call_arg_ll(c, "total", total);
    ef_call_arg_ll(c, "chunks_total", chunks_total);
    arg_events(c, queue);
    ef_call_arg_ll(c, "skipped", skipped);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_discard(ef_call_t *c, const char *queue, const char *id) {
    return job_call(c, &ef_script_job_discard, queue, id);
}

ef_call_t *ef_call_job_abandon(ef_call_t *c, const char *queue, const char *id) {
    return job_call(c, &ef_script_job_abandon, queue, id);
}

/* ---- Control verbs ---- */

ef_call_t *ef_call_job_cancel(ef_call_t *c, const char *queue, const char *id) {
    return job_call(c, &ef_script_job_cancel, queue, id);
}

ef_call_t *ef_call_job_pause(ef_call_t *c, const char *queue, const char *id) {
    return job_call(c, &ef_script_job_pause, queue, id);
}

ef_call_t *ef_call_job_resume(ef_call_t *c, const char *queue, const char *id) {
    return job_call(c, &ef_script_job_resume, queue, id);
}

ef_call_t *ef_call_queue_pause(ef_call_t *c, const char *queue, int paused) {
    begin(c, &ef_script_queue_pause, queue, NULL);
    ef_call_arg(c, "paused", paused ? "1" : "0");
    arg_events(c, queue);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_job_control(ef_call_t *c, const char *verb, const char *queue, const char *id) {
    static const struct {
        const char *verb;
        const ef_script_t *script;
    } verbs[] = {{"cancel", &ef_script_job_cancel},
                 {"pause", &ef_script_job_pause},
                 {"resume", &ef_script_job_resume}};
    for (size_t i = 0; i < EF_ARRAY_LEN(verbs); i++)
        if (strcmp(verb, verbs[i].verb) == 0)
            return job_call(c, verbs[i].script, queue, id);
    ef_call_init(c, NULL);
    c->bad = 0;
    set_bad(c, "no control verb '%s'", verb);
    ef_call_finish(c);
    return c;
}

/* ---- Chunks (the worker) ---- */

ef_call_t *ef_call_chunk_claim(ef_call_t *c, const ef_call_chunk_claim_t *a) {
    begin(c, &ef_script_chunk_claim, a->queue, a->job_id);
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
    begin(c, &ef_script_chunk_release, queue, job_id);
    ef_call_arg(c, "ref", ref);
    ef_call_arg(c, "worker", worker_id);
    ef_call_arg_ll(c, "n", n);
    ef_call_arg(c, "mode", mode);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_lease_extend(ef_call_t *c, const char *queue, const char *worker_id,
                                int lease_ms, const char *const *refs, size_t nrefs) {
    begin(c, &ef_script_lease_extend, queue, NULL);
    ef_call_arg_ll(c, "lease_ms", lease_ms);
    ef_call_arg(c, "worker", worker_id);
    for (size_t i = 0; i < nrefs; i++)
        ef_call_rest(c, refs[i], (size_t)-1);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_chunk_reap(ef_call_t *c, const char *queue, int max_requeue, int grace_ms,
                              int scan) {
    begin(c, &ef_script_chunk_reap, queue, NULL);
    ef_call_arg_ll(c, "max_requeue", max_requeue);
    ef_call_arg_ll(c, "grace_ms", grace_ms);
    ef_call_arg_ll(c, "scan", scan);
    ef_call_finish(c);
    return c;
}

/* ---- Completion webhooks ---- */

ef_call_t *ef_call_notify_claim(ef_call_t *c, const ef_call_notify_claim_t *a) {
    begin(c, &ef_script_notify_claim, a->queue, a->id);
    ef_call_arg(c, "id", a->id);
    ef_call_arg(c, "worker", a->worker_id);
    ef_call_arg_ll(c, "lease_ms", a->lease_ms);
    ef_call_arg_ll(c, "recheck_ms", a->recheck_ms);
    ef_call_arg_ll(c, "give_up_ms", a->give_up_ms);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_notify_done(ef_call_t *c, const ef_call_notify_done_t *a) {
    begin(c, &ef_script_notify_done, a->queue, a->id);
    ef_call_arg(c, "id", a->id);
    ef_call_arg(c, "worker", a->worker_id);
    ef_call_arg(c, "result", a->delivered ? "delivered" : "retry");
    ef_call_arg(c, "error", a->error ? a->error : "");
    ef_call_arg_ll(c, "retry_ms", a->retry_ms);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_worker_beat(ef_call_t *c, const char *worker_id, int ttl_ms) {
    begin(c, &ef_script_worker_beat, NULL, NULL);
    ef_call_arg(c, "worker", worker_id);
    ef_call_arg_ll(c, "ttl_ms", ttl_ms);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_chunk_ack(ef_call_t *c, const ef_call_chunk_ack_t *a,
                             const ef_call_ack_entity_t *e, size_t n) {
    if (a->keys)
        begin_given(c, &ef_script_chunk_ack, a->keys);
    else
        begin(c, &ef_script_chunk_ack, a->queue, a->job_id);
    for (size_t i = 0; i < n; i++)
        if (e[i].result_key && e[i].npairs > 0)
            ef_call_extra_key(c, e[i].result_key);
    ef_call_arg(c, "ref", a->ref);
    ef_call_arg(c, "id", a->job_id);
    ef_call_arg_ll(c, "n", a->n);
    ef_call_arg_ll(c, "error_log_cap", a->error_log_cap);
    ef_call_arg(c, "policy", a->keep ? "keep" : "overwrite");
    if (a->events)
        ef_call_arg(c, "events", a->events);
    else
        arg_events(c, a->queue);
    ef_call_arg_ll(c, "count", (long long)n);
    for (size_t i = 0; i < n; i++) {
        char oc[2] = {e[i].outcome, '\0'};
        size_t m = e[i].result_key ? e[i].npairs : 0;
        if (!ef_outcome_known(e[i].outcome))
            set_bad(c, "entity %d has no outcome", e[i].index);
        ef_call_rest_ll(c, e[i].index);
        slot_own(c, slot_push(&c->args, &c->na, &c->capa), oc, 1);
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

/* ---- Rate limits: keys of a provider ---- */

ef_call_t *ef_call_ratelimit_take(ef_call_t *c, const char *provider, long want,
                                  const char *worker_id, long requests, double per_seconds,
                                  long burst, long answered) {
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
    ef_call_arg_ll(c, "answered", answered);
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_ratelimit_penalty(ef_call_t *c, const char *provider,
                                     const ef_call_penalty_t *a) {
    ef_key_t k;
    ef_call_init(c, &ef_script_ratelimit_penalty);
    ef_call_key(c, "bucket", ef_key_ratelimit(&k, provider));
    ef_call_arg_ll(c, "pause_ms", a->pause_ms);
    ef_call_arg_ll(c, "date_ms", a->date_ms);
    ef_call_arg_ll(c, "cap_ms", a->cap_ms);
    ef_call_arg_ll(c, "cut", a->cut ? 1 : 0);
    ef_call_finish(c);
    return c;
}

/* ---- OAuth2 tokens: the key of a provider ---- */

ef_call_t *ef_call_auth_lock(ef_call_t *c, const char *provider, const char *worker_id,
                             long long lock_ms, const char *refused) {
    ef_key_t k;
    ef_call_init(c, &ef_script_auth_lock);
    ef_call_key(c, "auth", ef_key_auth(&k, provider));
    ef_call_arg(c, "worker", worker_id);
    ef_call_arg_ll(c, "lock_ms", lock_ms);
    ef_call_arg(c, "refused", refused ? refused : "");
    ef_call_finish(c);
    return c;
}

ef_call_t *ef_call_auth_store(ef_call_t *c, const char *provider, const ef_call_auth_store_t *a) {
    ef_key_t k;
    ef_call_init(c, &ef_script_auth_store);
    ef_call_key(c, "auth", ef_key_auth(&k, provider));
    ef_call_arg(c, "worker", a->worker_id);
    ef_call_arg(c, "token", a->token ? a->token : "");
    ef_call_arg_ll(c, "life_ms", a->life_ms);
    ef_call_arg_ll(c, "renew_pct", a->renew_pct);
    ef_call_arg_ll(c, "backoff_ms", a->backoff_ms);
    ef_call_arg_ll(c, "backoff_max_ms", a->backoff_max_ms);
    ef_call_arg(c, "error", a->error ? a->error : "");
    ef_call_finish(c);
    return c;
}
