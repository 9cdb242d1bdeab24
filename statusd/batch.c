// SPDX-License-Identifier: MIT
/*
 * Batches of Redis commands for statusd's handlers: commands are sent at
 * once (pipelined on the command connection), their replies are copied out
 * of hiredis as they arrive, each to the index of its command (on a Redis
 * Cluster, commands to different nodes are answered in any order), and the
 * batch's callback fires once with all of them.  A batch serving a request holds its connection,
 * so a client that went away turns the callback into a no-op.
 *
 * Also here: the reply copy, and rendering hashes and jobs as JSON.
 */
#include "statusd.h"

#include "ef_job.h"
#include "ef_keys.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Reply copies ---- */

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

/* Bytes one block needs for a copy of r and everything under it. */
static size_t copy_size(const redisReply *r) {
    size_t n = ALIGN8(sizeof(ef_sd_reply_t));
    if (r->str)
        n += ALIGN8(r->len + 1);
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        n += ALIGN8(r->elements * sizeof(ef_sd_reply_t *));
        for (size_t i = 0; i < r->elements; i++)
            n += copy_size(r->element[i]);
    }
    return n;
}

static ef_sd_reply_t *copy_into(const redisReply *r, char **at) {
    ef_sd_reply_t *c = (ef_sd_reply_t *)(void *)*at;
    *at += ALIGN8(sizeof *c);
    memset(c, 0, sizeof *c);
    c->type = r->type;
    c->integer = r->integer;
    if (r->str) {
        c->str = *at;
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
        *at += ALIGN8(r->len + 1);
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        c->elements = r->elements;
        c->element = (ef_sd_reply_t **)(void *)*at;
        *at += ALIGN8(r->elements * sizeof *c->element);
        for (size_t i = 0; i < r->elements; i++)
            c->element[i] = copy_into(r->element[i], at);
    }
    return c;
}

/* One allocation for the whole reply, however many elements it has (an
 * HGETALL of a job is sixty strings): the hot path of GET /jobs/ID. */
ef_sd_reply_t *ef_sd_reply_copy(const redisReply *r) {
    char *block = ef_malloc(copy_size(r)), *at = block;
    ef_sd_reply_t *c = copy_into(r, &at);
    c->block = 1;
    return c;
}

void ef_sd_reply_free(ef_sd_reply_t *r) {
    if (!r)
        return;
    if (r->block) {
        free(r);
        return;
    }
    for (size_t i = 0; i < r->elements; i++)
        ef_sd_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

long long ef_sd_reply_int(const ef_sd_reply_t *r) {
    int64_t v;
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING && r->len > 0) {
        if (r->str[0] == '-')
            return ef_parse_i64(r->str + 1, r->len - 1, &v) == 0 ? -(long long)v : 0;
        return ef_parse_i64(r->str, r->len, &v) == 0 ? (long long)v : 0;
    }
    return 0;
}

/* ---- Batches ---- */

static void batch_free(ef_sd_batch_t *b) {
    for (size_t i = 0; i < b->sent; i++)
        ef_sd_reply_free(b->replies[i]);
    free(b->replies);
    free(b);
}

static void batch_finish(ef_sd_batch_t *b) {
    ef_sd_conn_t *hold = b->hold;
    if (!hold || !hold->closing)
        b->cb(b, b->arg);
    if (hold)
        ef__sd_conn_release(hold);
    batch_free(b);
}

/* One command's place in its batch: on a Redis Cluster the replies of
 * commands sent to different nodes come back in any order, so each reply
 * is stored at its command's index, not in arrival order. */
typedef struct {
    ef_sd_batch_t *b;
    size_t i;
} batch_slot_t;

static void on_reply(ef_redis_t *r, redisReply *reply, void *arg) {
    batch_slot_t *slot = arg;
    ef_sd_batch_t *b = slot->b;
    (void)r;
    b->replies[slot->i] = reply ? ef_sd_reply_copy(reply) : NULL;
    free(slot);
    b->received++;
    if (!reply)
        b->down = 1;
    if (b->ended && b->received == b->sent)
        batch_finish(b);
}

/* The slot of the next command, the replies array grown to hold it. */
static batch_slot_t *slot_next(ef_sd_batch_t *b) {
    batch_slot_t *slot = ef_malloc(sizeof *slot);
    if (b->sent == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->replies = ef_realloc(b->replies, b->cap * sizeof *b->replies);
    }
    b->replies[b->sent] = NULL;
    slot->b = b;
    slot->i = b->sent;
    return slot;
}

ef_sd_batch_t *ef_sd_batch_begin(ef_sd_t *sd, ef_sd_conn_t *hold, ef_sd_batch_cb cb, void *arg) {
    ef_sd_batch_t *b = ef_calloc(1, sizeof *b);
    b->sd = sd;
    b->hold = hold;
    b->cb = cb;
    b->arg = arg;
    return b;
}

ef_sd_batch_t *ef_sd_req_batch(ef_sd_req_t *rq, ef_sd_batch_cb cb) {
    return ef_sd_batch_begin(rq->sd, rq->conn, cb, rq);
}

void ef_sd_batch_cmd(ef_sd_batch_t *b, int argc, const char **argv, const size_t *lens) {
    if (b->down)
        return;
    batch_slot_t *slot = slot_next(b);
    if (ef_redis_cmd(b->sd->redis, on_reply, slot, 0, argc, argv, lens) != 0) {
        free(slot);
        b->down = 1;
        return;
    }
    b->sent++;
}

void ef_sd_batch_cmdv(ef_sd_batch_t *b, const char *arg0, ...) {
    const char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < 16; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    ef_sd_batch_cmd(b, argc, argv, NULL);
}

void ef_sd_batch_job_chunks(ef_sd_batch_t *b, const char *queue, const char *id, long first,
                            long last, int with_results) {
    ef_key_t kc, ko, kr;
    char num[24];
    ef_key_job(&kc, queue, id, EF_KEY_JOB_CHUNKS);
    ef_key_job(&ko, queue, id, EF_KEY_JOB_OUTCOMES);
    ef_key_job(&kr, queue, id, EF_KEY_JOB_RESULTS);
    for (long c = first; c < last; c++) {
        snprintf(num, sizeof num, "%ld", c);
        ef_sd_batch_cmdv(b, "HGET", kc.s, num, NULL);
        ef_sd_batch_cmdv(b, "HGET", ko.s, num, NULL);
        if (with_results)
            ef_sd_batch_cmdv(b, "HGET", kr.s, num, NULL);
    }
}

void ef_sd_batch_call(ef_sd_batch_t *b, const ef_call_t *call) {
    /* a bad call (a layout bug, logged by the builder) is not sent: the
     * batch answers as a failure, as when Redis is down */
    if (b->down)
        return;
    batch_slot_t *slot = slot_next(b);
    if (ef_redis_call(b->sd->redis, call, on_reply, slot, 0) != 0) {
        free(slot);
        b->down = 1;
        return;
    }
    b->sent++;
}

int ef_sd_batch_end(ef_sd_batch_t *b) {
    if (b->sent == 0 && b->down) {
        batch_free(b);
        return -1;
    }
    b->ended = 1;
    if (b->hold)
        ef__sd_conn_hold(b->hold);
    /* nothing was asked: finish now, without replies (replies themselves
     * never come inside a call) */
    if (b->received == b->sent)
        batch_finish(b);
    return 0;
}

const ef_sd_reply_t *ef_sd_batch_reply(const ef_sd_batch_t *b, size_t i) {
    return i < b->received ? b->replies[i] : NULL;
}

ef_sd_reply_t *ef_sd_batch_take(ef_sd_batch_t *b, size_t i) {
    ef_sd_reply_t *r;
    if (i >= b->received)
        return NULL;
    r = b->replies[i];
    b->replies[i] = NULL;
    return r;
}

/* ---- Rendering ---- */

int ef_sd_is_number(const char *s, size_t n) {
    size_t i = 0;
    if (n == 0 || n > 24)
        return 0;
    if (s[i] == '-')
        i++;
    if (i == n)
        return 0;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        size_t st = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == st)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t st = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == st)
            return 0;
    }
    return i == n;
}

static int in_list(const char *const *list, const char *s) {
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

cJSON *ef_sd_hash_to_json(const ef_sd_reply_t *r, const char *const *strings) {
    cJSON *o;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    o = cJSON_CreateObject();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const ef_sd_reply_t *k = r->element[i], *v = r->element[i + 1];
        if (!k->str || !v->str)
            continue;
        if (!in_list(strings, k->str) && ef_sd_is_number(v->str, v->len))
            cJSON_AddNumberToObject(o, k->str, strtod(v->str, NULL));
        else if (ef_utf8_valid(v->str, v->len, NULL))
            cJSON_AddStringToObject(o, k->str, v->str);
    }
    return o;
}

cJSON *ef_sd_job_json(const ef_sd_reply_t *r, int64_t now_ms) {
    const char **fields;
    size_t *lens;
    cJSON *o;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return NULL;
    fields = ef_malloc(r->elements * sizeof *fields);
    lens = ef_malloc(r->elements * sizeof *lens);
    for (size_t i = 0; i < r->elements; i++) {
        fields[i] = r->element[i]->str ? r->element[i]->str : "";
        lens[i] = r->element[i]->len;
    }
    o = ef_job_to_json(fields, lens, r->elements, now_ms);
    free(fields);
    free(lens);
    return o;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void ef_sd_job_etag(const ef_sd_reply_t *r, char *out, size_t len) {
    uint64_t sum = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; r && i + 1 < r->elements; i += 2) {
        uint64_t h = 0xcbf29ce484222325ULL;
        h = fnv1a(h, r->element[i]->str ? r->element[i]->str : "", r->element[i]->len);
        h = fnv1a(h, "\0", 1);
        h = fnv1a(h, r->element[i + 1]->str ? r->element[i + 1]->str : "", r->element[i + 1]->len);
        sum += mix64(h);
    }
    snprintf(out, len, "\"j%016llx\"", (unsigned long long)mix64(sum));
}
