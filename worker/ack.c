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

#include "ef_job.h"
#include "ef_log.h"
#include "ef_scripts_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACK_FIXED_KEYS 9
#define ACK_FIXED_ARGS 7
#define ACK_ENTITY_ARGS 7 /* plus 2 per field pair */
/* the entity writes its result hash: pairs and a key to write them to */
#define HAS_PAIRS(t) ((t)->result_key && (t)->pairs)

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
        cJSON_Delete(t->pairs);
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
 * wins (as it would in a decoded object).  Returns an object whose children
 * are exactly the pairs, names and string values (the caller frees it with
 * cJSON_Delete), or NULL when there is nothing to write; *npairs counts them. */
cJSON *ef_ack_pairs_from(cJSON *o, size_t *npairs) {
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
        }
        (*npairs)++;
    }
    if (*npairs == 0) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Sends every outcome not sent yet in one chunk_ack.lua call; the argv
 * layout is the one documented in that script's header. */
void ef_chunk_ack(ef_chunk_t *c) {
    ef_worker_t *w = c->w;
    size_t nsend = 0, npairs = 0, nkeys = ACK_FIXED_KEYS;
    if (c->acking || !w->cmd_ready || (c->ack_retry_at && ef_mono_ms() < c->ack_retry_at))
        return;
    for (size_t i = 0; i < c->ntasks; i++)
        if (c->tasks[i].outcome != EF_OUTCOME_NONE && c->tasks[i].acked == EF_TASK_UNSENT)
            nsend++;
    if (nsend == 0) {
        ef_chunk_maybe_finish(c);
        return;
    }
    /* each entity sent with pairs for a result hash adds its key */
    for (size_t i = 0; i < c->ntasks; i++) {
        ef_task_t *t = &c->tasks[i];
        if (t->outcome == EF_OUTCOME_NONE || t->acked != EF_TASK_UNSENT || !HAS_PAIRS(t))
            continue;
        npairs += t->npairs;
        nkeys++;
    }
    size_t argc = nkeys + ACK_FIXED_ARGS + nsend * ACK_ENTITY_ARGS + npairs * 2;
    const char **argv = ef_calloc(argc, sizeof *argv);
    size_t *lens = ef_calloc(argc, sizeof *lens);
    char (*nums)[24] = ef_calloc(nsend * 2 + 4, sizeof *nums);
    ack_t *a = ef_calloc(1, sizeof *a);
    ef_key_t kdry;
    a->c = c;
    a->sent = ef_calloc(nsend, sizeof *a->sent);

    /* keys first: the fixed ones, then one per entity with pairs */
    argv[0] = c->k_job.s;
    argv[1] = c->k_outcomes.s;
    argv[2] = c->k_results.s;
    argv[3] = c->k_errors.s;
    argv[4] = c->q->k_leases.s;
    argv[5] = c->q->k_owners.s;
    argv[6] = c->q->k_processing.s;
    argv[7] = c->q->k_stats.s;
    argv[8] = ef_key_job(&kdry, c->q->name, c->job_id, EF_KEY_JOB_DRYRUN);
    for (size_t i = 0, ki = ACK_FIXED_KEYS; i < c->ntasks; i++) {
        ef_task_t *t = &c->tasks[i];
        if (t->outcome != EF_OUTCOME_NONE && t->acked == EF_TASK_UNSENT && HAS_PAIRS(t))
            argv[ki++] = t->result_key;
    }
    size_t ai = nkeys, ni = 0;
    snprintf(nums[ni], sizeof nums[ni], "%ld", c->n);
    const char *nstr = nums[ni++];
    snprintf(nums[ni], sizeof nums[ni], "%d", EF_WORKER_ERROR_LOG_CAP);
    const char *cap = nums[ni++];
    snprintf(nums[ni], sizeof nums[ni], "%zu", nsend);
    const char *cnt = nums[ni++];
    argv[ai++] = c->ref;
    argv[ai++] = c->job_id;
    argv[ai++] = nstr;
    argv[ai++] = cap;
    argv[ai++] = c->prov->rc->policy == EF_POLICY_KEEP ? "keep" : "overwrite";
    argv[ai++] = c->q->k_events.s;
    argv[ai++] = cnt;
    static const char *const ocs[] = {"u", "c", "n", "e"};
    for (size_t i = 0; i < c->ntasks; i++) {
        ef_task_t *t = &c->tasks[i];
        if (t->outcome == EF_OUTCOME_NONE || t->acked != EF_TASK_UNSENT)
            continue;
        snprintf(nums[ni], sizeof nums[ni], "%d", t->index);
        argv[ai++] = nums[ni++];
        argv[ai++] = t->outcome == EF_OUTCOME_UPDATED    ? ocs[0]
                     : t->outcome == EF_OUTCOME_CONFLICT  ? ocs[1]
                     : t->outcome == EF_OUTCOME_NOT_FOUND ? ocs[2]
                                                          : ocs[3];
        snprintf(nums[ni], sizeof nums[ni], "%zu", HAS_PAIRS(t) ? t->npairs : 0);
        argv[ai++] = nums[ni++];
        for (cJSON *f = HAS_PAIRS(t) ? t->pairs->child : NULL; f; f = f->next) {
            argv[ai++] = f->string;
            argv[ai++] = f->valuestring;
        }
        argv[ai++] = t->fields ? t->fields : "";
        argv[ai++] = t->error ? t->error : "";
        cJSON *idv = t->entity ? cJSON_GetObjectItemCaseSensitive(t->entity, "id") : NULL;
        argv[ai++] = cJSON_IsString(idv) ? idv->valuestring : "";
        argv[ai++] = (t->cache_hits > 0 && t->requests == 0) ? "1" : "0";
        t->acked = EF_TASK_SENT;
        a->sent[a->nsent++] = (int)i;
    }
    for (size_t i = 0; i < ai; i++)
        lens[i] = strlen(argv[i]);
    /* the command is formatted inside the call: the pairs can go right after */
    if (ef_redis_script(w->cmd, &ef_script_chunk_ack, on_ack, a, 0, (int)nkeys, (int)ai, argv, lens) == 0) {
        c->acking = 1;
        c->last_ack_ms = ef_mono_ms();
    } else {
        for (size_t i = 0; i < a->nsent; i++)
            c->tasks[a->sent[i]].acked = EF_TASK_UNSENT;
        free(a->sent);
        free(a);
    }
    free(argv);
    free(lens);
    free(nums);
}
