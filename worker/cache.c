// SPDX-License-Identifier: MIT
/*
 * The shared response cache of a provider (recipe "cache_ttl_s"): a cached
 * answer costs no token and no request.  The key is farm:cache:{P}:DIGEST
 * where DIGEST is 128 bits of two independent 64-bit hashes of the filled
 * request (method, URL, body); secrets inside the URL are therefore never
 * stored in clear.  The value is "STATUS\n" followed by the body, with the
 * recipe's TTL; only answers the recipe judged usable are stored, and only
 * up to EF_CACHE_MAX_BODY bytes.
 */
#include "worker.h"

#include "ef_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EF_CACHE_MAX_BODY (256u * 1024) /* bytes */

int ef_cache_enabled(const ef_prov_t *p) { return p->rc->cache_ttl_s > 0; }

/* FNV-1a 64 and a second pass with another basis and a murmur-style mix:
 * 128 bits, plenty against accidental collisions (not a secret hash). */
static void digest(const char *method, const char *url, const char *body, size_t blen, char out[33]) {
    uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL;
    const char *parts[3] = {method, url, body ? body : ""};
    size_t lens[3] = {strlen(method), strlen(url), body ? blen : 0};
    for (int p = 0; p < 3; p++) {
        for (size_t i = 0; i < lens[p]; i++) {
            unsigned char c = (unsigned char)parts[p][i];
            a = (a ^ c) * 0x100000001b3ULL;
            b = (b ^ c) * 0x9E3779B97F4A7C15ULL;
            b ^= b >> 29;
        }
        a = (a ^ 0xff) * 0x100000001b3ULL; /* separator */
        b = (b ^ 0xff) * 0x9E3779B97F4A7C15ULL;
    }
    b ^= b >> 31;
    b *= 0xBF58476D1CE4E5B9ULL;
    b ^= b >> 27;
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

typedef struct {
    ef_task_t *t;
    ef_cache_cb done;
} get_t;

static void on_get(ef_redis_t *rc, redisReply *r, void *arg) {
    get_t *g = arg;
    ef_task_t *t = g->t;
    ef_cache_cb done = g->done;
    (void)rc;
    free(g);
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *nl = memchr(r->str, '\n', r->len);
        long status = nl ? strtol(r->str, NULL, 10) : 0;
        if (nl && status >= 100 && status <= 599) {
            done(t, status, nl + 1, r->len - (size_t)(nl + 1 - r->str));
            return;
        }
    }
    done(t, -1, NULL, 0);
}

int ef_cache_get(ef_task_t *t, const char *method, const char *url, const char *body, size_t blen,
                 ef_cache_cb done) {
    ef_worker_t *w = t->chunk->w;
    char d[33];
    ef_key_t k;
    if (!w->cmd_ready)
        return -1;
    digest(method, url, body, blen, d);
    get_t *g = ef_calloc(1, sizeof *g);
    g->t = t;
    g->done = done;
    const char *argv[] = {"GET", ef_key_cache(&k, t->chunk->prov->rc->name, d)};
    if (ef_redis_cmd(w->cmd, on_get, g, 0, 2, argv, NULL) != 0) {
        free(g);
        return -1;
    }
    return 0;
}

void ef_cache_put(ef_task_t *t, const char *method, const char *url, const char *body, size_t blen,
                  long status, const char *resp, size_t rlen) {
    ef_worker_t *w = t->chunk->w;
    const ef_recipe_t *rc = t->chunk->prov->rc;
    char d[33], ttl[24], head[16];
    ef_key_t k;
    if (!w->cmd_ready || rlen > EF_CACHE_MAX_BODY)
        return;
    digest(method, url, body, blen, d);
    int hl = snprintf(head, sizeof head, "%ld\n", status);
    char *val = ef_malloc((size_t)hl + rlen);
    memcpy(val, head, (size_t)hl);
    memcpy(val + hl, resp, rlen);
    snprintf(ttl, sizeof ttl, "%ld", rc->cache_ttl_s);
    const char *argv[] = {"SET", ef_key_cache(&k, rc->name, d), val, "EX", ttl};
    size_t lens[] = {3, strlen(k.s), (size_t)hl + rlen, 2, strlen(ttl)};
    ef_redis_cmd(w->cmd, NULL, NULL, 0, 5, argv, lens);
    free(val);
}
