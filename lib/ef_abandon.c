// SPDX-License-Identifier: MIT
/*
 * The abandoned-enqueue check shared by the worker's reaper, statusd and the
 * enqueuer (see ef_abandon.h): which ids to look at, the job_abandon.lua
 * call (ef_call_job_abandon), and the log line for a job it marks failed.
 */
#include "ef_abandon.h"

#include "ef_calls.h"
#include "ef_common.h"
#include "ef_log.h"
#include "ef_redis_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void log_abandoned(const char *queue, const char *job_id) {
    ef_warn("job %s abandoned: its enqueuer stopped before sealing it; marked failed (queue %s)",
            job_id, queue);
}

/* ---- on the event loop ---- */

typedef struct {
    char queue[EF_QUEUE_MAX_LEN + 1];
    char id[EF_JOB_ID_MAX_LEN + 1];
} sweep_t;

static void on_abandoned(ef_redis_t *r, redisReply *reply, void *arg) {
    sweep_t *sw = arg;
    (void)r;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
        log_abandoned(sw->queue, sw->id);
    free(sw);
}

static void on_expired(ef_redis_t *r, redisReply *reply, void *arg) {
    sweep_t *q = arg;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements && i < EF_ABANDON_SWEEP_MAX; i++) {
            const char *id = reply->element[i]->str;
            ef_call_t call;
            if (reply->element[i]->type != REDIS_REPLY_STRING || !ef_job_id_valid(id))
                continue;
            sweep_t *sw = ef_calloc(1, sizeof *sw);
            snprintf(sw->queue, sizeof sw->queue, "%s", q->queue);
            snprintf(sw->id, sizeof sw->id, "%s", id);
            if (ef_redis_call(r, ef_call_job_abandon(&call, sw->queue, sw->id), on_abandoned, sw,
                              0) != 0)
                free(sw);
            ef_call_free(&call);
        }
    }
    free(q);
}

int ef_abandon_sweep(ef_redis_t *r, const char *queue, int64_t now_ms) {
    ef_key_t k;
    char now[24], max[16];
    if (!ef_queue_name_valid(queue))
        return -1;
    sweep_t *q = ef_calloc(1, sizeof *q);
    snprintf(q->queue, sizeof q->queue, "%s", queue);
    snprintf(now, sizeof now, "%lld", (long long)(now_ms > 0 ? now_ms : ef_now_ms()));
    snprintf(max, sizeof max, "%d", EF_ABANDON_SWEEP_MAX);
    const char *argv[] = {
        "ZRANGEBYSCORE", ef_key_queue(&k, queue, EF_KEY_ENQUEUING), "-inf", now, "LIMIT", "0", max};
    if (ef_redis_cmd(r, on_expired, q, 0, (int)EF_ARRAY_LEN(argv), argv, NULL) != 0) {
        free(q);
        return -1;
    }
    return 0;
}

/* ---- blocking ---- */

int ef_abandon_sweep_sync(redisContext *c, const char *queue, char *err) {
    ef_key_t k;
    char now[24], max[16];
    int marked = 0;
    const char *time_argv[] = {"TIME"};
    redisReply *t;
    if (!ef_queue_name_valid(queue))
        return 0;
    t = ef_redis_sync_cmd(c, err, 1, time_argv, NULL);
    if (!t)
        return -1;
    if (t->type == REDIS_REPLY_ARRAY && t->elements == 2 && t->element[0]->str &&
        t->element[1]->str)
        snprintf(now, sizeof now, "%lld",
                 atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000);
    else
        snprintf(now, sizeof now, "%lld", (long long)ef_now_ms());
    freeReplyObject(t);
    snprintf(max, sizeof max, "%d", EF_ABANDON_SWEEP_MAX);
    const char *argv[] = {
        "ZRANGEBYSCORE", ef_key_queue(&k, queue, EF_KEY_ENQUEUING), "-inf", now, "LIMIT", "0", max};
    redisReply *ids = ef_redis_sync_cmd(c, err, (int)EF_ARRAY_LEN(argv), argv, NULL);
    if (!ids)
        return -1;
    for (size_t i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
        const char *id = ids->element[i]->str;
        ef_call_t call;
        if (ids->element[i]->type != REDIS_REPLY_STRING || !ef_job_id_valid(id))
            continue;
        redisReply *r = ef_redis_sync_call(c, ef_call_job_abandon(&call, queue, id), err);
        ef_call_free(&call);
        if (!r) {
            freeReplyObject(ids);
            return -1;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            log_abandoned(queue, id);
            marked++;
        }
        freeReplyObject(r);
    }
    freeReplyObject(ids);
    return marked;
}
