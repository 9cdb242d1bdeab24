// SPDX-License-Identifier: MIT
/*
 * Checks lib/ef_cluster.c against real redis-server nodes in cluster mode
 * (tests/integration/test_cluster_slots.sh starts them):
 *
 *   cluster_check keyslot HOST PORT N   N generated keys: our slot ==
 *                                       CLUSTER KEYSLOT (pipelined)
 *   cluster_check slots HOST PORT       CLUSTER SLOTS -> slot map, printed
 *                                       as "covered=C nodes=N" and one
 *                                       "slot S host:port" per 1000 slots
 *   cluster_check redirect HOST PORT KEY
 *                                       GET KEY must be redirected: prints
 *                                       "MOVED|ASK SLOT host:port keyslot=S"
 *
 * Prints "FAIL: why" and exits 1 on any disagreement.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_cluster.h"
#include "ef_common.h"

#define BATCH 500

/* Key i of the generated set: plain keys, hash tags of every shape, braces
 * in odd places, binary bytes, lengths from 0 to a few hundred. */
static size_t gen_key(unsigned i, char *buf, size_t cap) {
    static const char *const shapes[][2] = {
        {"k", ""},          {"farm:{q", "}:pending"},
        {"{", "}"},         {"{}", ""},
        {"", "{}"},         {"a{", "}{b}"},
        {"{{", "}}"},       {"", "{"},
        {"}", "{"},         {"x{y", ""},
        {"{", "}}{"},       {"user:", ":{tag}"},
        {"{a}", "{b}"},     {"", "{ }"},
        {"\xff", "{\x01}"},
    };
    size_t n;
    if (i % 17 == 16) { /* binary: bytes 0..255 including NUL and braces */
        uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull;
        n = 1 + i % 40;
        for (size_t j = 0; j < n && j < cap; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[j] = (char)(x & 0xff);
        }
        return n < cap ? n : cap;
    }
    if (i % 97 == 0) /* long keys */
        n = (size_t)snprintf(buf, cap, "%0*u{long}", (int)(i % 300), i);
    else
        n = (size_t)snprintf(buf, cap, "%s%u%s", shapes[i % EF_ARRAY_LEN(shapes)][0], i,
                             shapes[i % EF_ARRAY_LEN(shapes)][1]);
    return n < cap ? n : cap - 1;
}

static int check_keyslot(redisContext *c, unsigned total) {
    char key[BATCH][400];
    size_t len[BATCH];
    unsigned done = 0, bad = 0;
    while (done < total) {
        unsigned n = total - done < BATCH ? total - done : BATCH;
        for (unsigned i = 0; i < n; i++) {
            len[i] = gen_key(done + i, key[i], sizeof key[i]);
            redisAppendCommand(c, "CLUSTER KEYSLOT %b", key[i], len[i]);
        }
        for (unsigned i = 0; i < n; i++) {
            redisReply *r = NULL;
            int ours = ef_cluster_keyslot(key[i], len[i]);
            if (redisGetReply(c, (void **)&r) != REDIS_OK || !r || r->type != REDIS_REPLY_INTEGER) {
                printf("FAIL: CLUSTER KEYSLOT: %s\n", r && r->str ? r->str : c->errstr);
                return 1;
            }
            if (r->integer != ours && bad++ < 5)
                printf("FAIL: key %u (%zu bytes): ours %d, redis %lld\n", done + i, len[i], ours,
                       r->integer);
            freeReplyObject(r);
        }
        done += n;
    }
    if (bad)
        return 1;
    printf("keys=%u agree\n", total);
    return 0;
}

static int check_slots(redisContext *c, const char *host) {
    ef_cluster_map_t *m = malloc(sizeof *m);
    char err[EF_ERR_LEN];
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    int rc = ef_cluster_map_from_slots(r, host, m, err);
    if (rc != 0) {
        printf("FAIL: %s\n", err);
    } else {
        printf("covered=%d nodes=%d\n", m->covered, m->nnodes);
        for (int s = 0; s < EF_CLUSTER_SLOTS; s += 1000) {
            const ef_cluster_node_t *n = ef_cluster_map_node(m, s);
            printf("slot %d %s:%d\n", s, n ? n->addr.host : "-", n ? n->addr.port : 0);
        }
    }
    freeReplyObject(r);
    free(m);
    return rc ? 1 : 0;
}

static int check_redirect(redisContext *c, const char *key) {
    ef_cluster_redirect_t rd;
    char err[EF_ERR_LEN];
    redisReply *r = redisCommand(c, "GET %s", key);
    int rc = 1;
    if (!r || r->type != REDIS_REPLY_ERROR)
        printf("FAIL: GET %s was not redirected\n", key);
    else if (ef_cluster_redirect_parse(r->str, r->len, &rd, err) != 0)
        printf("FAIL: '%s' not parsed: %s\n", r->str, err);
    else {
        printf("%s %d %s:%d keyslot=%d\n", rd.kind == EF_CLUSTER_MOVED ? "MOVED" : "ASK", rd.slot,
               rd.to.host, rd.to.port, ef_cluster_keyslot(key, strlen(key)));
        rc = 0;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

int main(int argc, char **argv) {
    redisContext *c;
    int rc;
    if (argc < 4) {
        fprintf(stderr, "usage: %s keyslot|slots|redirect HOST PORT [N|KEY]\n", argv[0]);
        return 2;
    }
    c = redisConnect(argv[2], atoi(argv[3]));
    if (!c || c->err) {
        printf("FAIL: connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    if (strcmp(argv[1], "keyslot") == 0 && argc == 5)
        rc = check_keyslot(c, (unsigned)strtoul(argv[4], NULL, 10));
    else if (strcmp(argv[1], "slots") == 0)
        rc = check_slots(c, argv[2]);
    else if (strcmp(argv[1], "redirect") == 0 && argc == 5)
        rc = check_redirect(c, argv[4]);
    else
        rc = 2;
    redisFree(c);
    return rc;
}
