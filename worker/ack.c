// SPDX-License-Identifier: MIT
/*
 * Recording outcomes.  chunk_ack.lua records a batch of outcomes at most
 * once each; when it fails (Redis down) the same outcomes are sent again
 * later, which cannot double count.  The ack that records a chunk's last
 * entity also removes it from processing.  Its answer carries the job's
 * status, a backstop for control messages: a chunk whose job turns out
 * paused or ended is stopped (chunk.c).
 */
#include "worker.h"

#include "ef_calls.h"
#include "ef_job.h"
#include "ef_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ef_chunk_t *c;
    size_t nsent;
    int *sent; /* task indexes in this ack */
} ack_t;

/* Has the chunk outcomes that are not sent yet? */
int ef_chunk_unsent(const ef_chunk_t *c) {
    for (size_t i = 0; i < c->ntasks; i++)
        if (c->tasks[i].outcome != EF_OUTCOME_NONE && c->tasks[i].acked == EF_TASK_UNSENT)
            return 1;
    return 0;
}

static void on_ack(ef_redis_t *rc, redisReply *r, void *arg) {
    ack_t *a = arg;
    ef_chunk_t *c = a->c;
    (void)rc;
    c->acking = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 10) {
        for (size_t i = 0; i < a->nsent; i++)
            c->tasks[a->sent[i]].acked = EF_TASK_UNSENT; /* resent later; recorded at most once */
        /* back off: 1 s, 2 s, 4 s ... 30 s; the tick resends */
        uint64_t backoff = 1000ULL << (c->ack_failures < 5 ? c->ack_failures : 5);
        if (backoff > 30000)
            backoff = 30000;
        c->ack_failures++;
        c->ack_retry_at = ef_mono_ms() + backoff;
        if (r && r->type == REDIS_REPLY_ERROR && c->ack_failures <= 3)
            ef_error("ack of chunk %s failed: %s (retrying in %llu ms)", c->ref, r->str,
                     (unsigned long long)backoff);
        c->last_ack_ms = ef_mono_ms();
        free(a->sent);
        free(a);
        ef_chunk_maybe_finish(c);
        return;
    }
    c->ack_failures = 0;
    c->ack_retry_at = 0;
    for (size_t i = 0; i < a->nsent; i++) {
        ef_task_t *t = &c->tasks[a->sent[i]];
        t->acked = EF_TASK_RECORDED;
        free(t->fields);
        free(t->pairs);
        free(t->error);
        free(t->result_key);
        t->fields = t->error = t->result_key = NULL;
        t->pairs = NULL;
    }
    const char *status = r->element[2]->str ? r->element[2]->str : "";
    if (r->element[0]->integer == 1)
        ef_info("job %s completed: updated=%lld conflicts=%lld not_found=%lld errors=%lld",
                c->job_id, r->element[3]->integer, r->element[4]->integer, r->element[5]->integer,
                r->element[6]->integer);
    free(a->sent);
    free(a);
    /* ef_chunk_stop ends a quiet chunk itself: c may be gone after it */
    if (c->unresolved > 0 && (strcmp(status, "cancelled") == 0 || strcmp(status, "failed") == 0 ||
                              strcmp(status, "missing") == 0))
        ef_chunk_stop(c, EF_CHUNK_DROPPING, "its job ended; dropping the rest");
    else if (c->unresolved > 0 && strcmp(status, "paused") == 0)
        ef_chunk_stop(c, EF_CHUNK_PARKING, "its job is paused; parking it");
    else
        ef_chunk_maybe_finish(c);
}

/* Turns an updated entity's extracted fields (an object; taken over) into
 * the pairs chunk_ack.lua writes to its result hash: a value that is not a
 * string becomes its JSON text, and of two fields with one name the later
 * wins (as it would in a decoded object).  Returns the pairs as one flat
 * array, name then value (2 * *npairs strings), in a single allocation that
 * also holds the text (the caller frees it with free()), or NULL when there
 * is nothing to write.  Built once when the entity resolves, it is what
 * ef_call_chunk_ack() takes, so an ack copies nothing. */
char **ef_ack_pairs_from(cJSON *o, size_t *npairs) {
    size_t n = 0, text = 0;
    *npairs = 0;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    for (cJSON *f = o->child, *next; f; f = next) {
        next = f->next;
        int dup = 0;
        for (cJSON *g = next; g && f->string && !dup; g = g->next)
            dup = g->string && strcmp(g->string, f->string) == 0;
        if (!f->string || dup) {
            cJSON_Delete(cJSON_DetachItemViaPointer(o, f));
            continue;
        }
        if (!cJSON_IsString(f)) {
            char *v = cJSON_PrintUnformatted(f);
            cJSON *sv = v ? cJSON_CreateString(v) : NULL;
            cJSON_free(v);
            /* f is the only child by that name now: the replacement takes it */
            if (!sv || !cJSON_ReplaceItemInObjectCaseSensitive(o, f->string, sv)) {
                cJSON_Delete(sv);
                cJSON_Delete(cJSON_DetachItemViaPointer(o, f));
                continue;
            }
            f = sv;
        }
        text += strlen(f->string) + strlen(f->valuestring) + 2;
        n++;
    }
    if (n == 0) {
        cJSON_Delete(o);
        return NULL;
    }
    char **v = ef_malloc(2 * n * sizeof *v + text);
    char *p = (char *)(v + 2 * n);
    size_t i = 0;
    for (cJSON *f = o->child; f; f = f->next) {
        const char *s2[2] = {f->string, f->valuestring};
        for (int k = 0; k < 2; k++) {
            size_t len = strlen(s2[k]) + 1;
            memcpy(p, s2[k], len);
            v[i++] = p;
            p += len;
        }
    }
    cJSON_Delete(o);
    *npairs = n;
    return v;
}

/* Sends every outcome not sent yet in one chunk_ack.lua call
 * (ef_call_chunk_ack lays it out). */
void ef_chunk_ack(ef_chunk_t *c) {
    ef_worker_t *w = c->w;
    size_t nsend = 0;
    if (c->acking || !w->cmd_ready || (c->ack_retry_at && ef_mono_ms() < c->ack_retry_at))
        return;
    /* the sink first: no outcome is recorded for a row not written (sink.c
     * calls this again when the batch is written) */
    if (ef_sink_needed(c) && ef_sink_write(c) == 0)
        return; /* c may be gone */
    for (size_t i = 0; i < c->ntasks; i++)
        if (c->tasks[i].outcome != EF_OUTCOME_NONE && c->tasks[i].acked == EF_TASK_UNSENT)
            nsend++;
    if (nsend == 0) {
        ef_chunk_maybe_finish(c);
        return;
    }
    ef_call_ack_entity_t *e = ef_calloc(nsend, sizeof *e);
    ack_t *a = ef_calloc(1, sizeof *a);
    a->c = c;
    a->sent = ef_calloc(nsend, sizeof *a->sent);
    for (size_t i = 0; i < c->ntasks; i++) {
        ef_task_t *t = &c->tasks[i];
        if (t->outcome == EF_OUTCOME_NONE || t->acked != EF_TASK_UNSENT)
            continue;
        cJSON *idv = t->entity ? cJSON_GetObjectItemCaseSensitive(t->entity, "id") : NULL;
        e[a->nsent] = (ef_call_ack_entity_t){
            .index = t->index,
            .outcome = t->outcome,
            .result_key = t->pairs ? t->result_key : NULL,
            .pairs = (const char *const *)t->pairs,
            .npairs = t->npairs,
            .fields_json = t->fields,
            .error = t->error,
            .entity_id = cJSON_IsString(idv) ? idv->valuestring : NULL,
            .cached = t->cache_hits > 0 && t->requests == 0,
        };
        t->acked = EF_TASK_SENT;
        a->sent[a->nsent++] = (int)i;
    }
    ef_call_chunk_ack_t args = {.queue = c->q->name,
                                .job_id = c->job_id,
                                .ref = c->ref,
                                .n = c->n,
                                .error_log_cap = EF_WORKER_ERROR_LOG_CAP,
                                .keep = c->prov->rc->policy == EF_POLICY_KEEP,
                                .keys = &c->ack_keys,
                                .events = c->q->k_events.s};
    ef_call_t call;
    /* the command is formatted inside the call: the entities can go right after */
    if (ef_redis_call(w->cmd, ef_call_chunk_ack(&call, &args, e, a->nsent), on_ack, a, 0) == 0) {
        c->acking = 1;
        c->last_ack_ms = ef_mono_ms();
    } else {
        for (size_t i = 0; i < a->nsent; i++)
            c->tasks[a->sent[i]].acked = EF_TASK_UNSENT;
        free(a->sent);
        free(a);
    }
    ef_call_free(&call);
    free(e);
}
