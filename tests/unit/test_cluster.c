// SPDX-License-Identifier: MIT
/*
 * Unit tests of lib/ef_cluster.c: CRC16 and key slots against known values
 * (the specification's check value and a real node's CLUSTER KEYSLOT), hash
 * tags, MOVED/ASK parsing with its bad forms, and slot maps built from
 * constructed CLUSTER SLOTS replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_calls.h"
#include "ef_cluster.h"
#include "ef_job.h"

static void test_crc16(void **st) {
    (void)st;
    assert_int_equal(ef_cluster_crc16("123456789", 9), 0x31C3); /* XMODEM check value */
    assert_int_equal(ef_cluster_crc16("", 0), 0);
}

static void test_keyslot_known(void **st) {
    (void)st;
    /* answers of CLUSTER KEYSLOT on a Redis 7 node */
    static const struct {
        const char *key;
        int slot;
    } known[] = {
        {"foo", 12182},
        {"bar", 5061},
        {"hello", 866},
        {"somekey", 11058},
        {"foo{hash_tag}", 2515},
        {"{user1000}.following", 3443},
        {"{user1000}.followers", 3443},
        {"foo{}{bar}", 8363},    /* empty tag: the whole key */
        {"foo{{bar}}zap", 4015}, /* tag "{bar" */
        {"foo{bar}{zap}", 5061}, /* first tag only: "bar" */
        {"", 0},
        {"{}", 15257},
        {"{", 4092},
        {"}{", 12793},
        {"a{b", 13340},
        {"farm:{default}:pending", 5718},
        {"farm:ratelimit:{tmdb}", 6836},
    };
    for (size_t i = 0; i < EF_ARRAY_LEN(known); i++) {
        int got = ef_cluster_keyslot(known[i].key, strlen(known[i].key));
        if (got != known[i].slot) {
            fprintf(stderr, "key '%s': slot %d, want %d\n", known[i].key, got, known[i].slot);
            fail();
        }
    }
    /* a tag binds every key of a queue to one slot */
    assert_int_equal(ef_cluster_keyslot("farm:{q}:pending", 16), ef_cluster_keyslot("q", 1));
    /* binary keys: the length counts, not a NUL */
    assert_int_not_equal(ef_cluster_keyslot("a\0b", 3), ef_cluster_keyslot("a", 1));
}

static void test_keys_slot(void **st) {
    (void)st;
    const char *same[] = {"farm:{q}:pending", "farm:{q}:jobs", "farm:{q}:job:J1"};
    const char *mixed[] = {"farm:{q}:pending", "farm:{r}:pending"};
    assert_int_equal(ef_cluster_keys_slot(3, same, NULL), ef_cluster_keyslot("q", 1));
    assert_int_equal(ef_cluster_keys_slot(2, mixed, NULL), -1);
    assert_int_equal(ef_cluster_keys_slot(0, same, NULL), -1);
}

static void test_redirect(void **st) {
    (void)st;
    ef_cluster_redirect_t r;
    char err[EF_ERR_LEN];
#define P(s) ef_cluster_redirect_parse(s, strlen(s), &r, err)
    assert_int_equal(P("MOVED 3999 127.0.0.1:6381"), 0);
    assert_int_equal(r.kind, EF_CLUSTER_MOVED);
    assert_int_equal(r.slot, 3999);
    assert_string_equal(r.to.host, "127.0.0.1");
    assert_int_equal(r.to.port, 6381);
    assert_int_equal(P("ASK 16383 node-7.example:7000"), 0);
    assert_int_equal(r.kind, EF_CLUSTER_ASK);
    assert_int_equal(r.slot, 16383);
    assert_string_equal(r.to.host, "node-7.example");
    assert_int_equal(P("MOVED 0 ::1:7001"), 0); /* IPv6: the port follows the last ':' */
    assert_string_equal(r.to.host, "::1");
    assert_int_equal(r.to.port, 7001);
    assert_int_equal(P("MOVED 12 :7002"), 0); /* empty: the node asked */
    assert_string_equal(r.to.host, "");
    /* not redirections: passed on */
    assert_int_equal(P("ERR unknown command"), 1);
    assert_int_equal(P("MOVEDX 1 h:1"), 1);
    assert_int_equal(P("TRYAGAIN Multiple keys request during rehashing of slot"), 1);
    assert_int_equal(P("CLUSTERDOWN Hash slot not served"), 1);
    /* malformed: refused with words */
    static const char *const bad[] = {
        "MOVED",         "MOVED ",       "MOVED 3999",      "MOVED 3999 ",
        "MOVED x h:1",   "MOVED -1 h:1", "MOVED 16384 h:1", "MOVED 99999999999999999999 h:1",
        "MOVED 1 h",     "MOVED 1 h:",   "MOVED 1 h:0",     "MOVED 1 h:65536",
        "MOVED 1 h:1 x", "MOVED  1 h:1", "ASK 1 h:p",       "ASK 1 h\x01:1",
    };
    for (size_t i = 0; i < EF_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (P(bad[i]) != -1 || !err[0]) {
            fprintf(stderr, "'%s' was not refused\n", bad[i]);
            fail();
        }
    }
    char longhost[400] = "MOVED 1 ";
    memset(longhost + 8, 'h', 300);
    strcpy(longhost + 308, ":1");
    assert_int_equal(P(longhost), -1);
    /* a reply cut anywhere: never read past the end */
    static const char full[] = "MOVED 3999 127.0.0.1:6381";
    for (size_t n = 0; n < sizeof full - 1; n++) {
        char *cut = malloc(n ? n : 1);
        memcpy(cut, full, n);
        (void)ef_cluster_redirect_parse(cut, n, &r, err);
        free(cut);
    }
#undef P
}

/* ---- constructed CLUSTER SLOTS replies ---- */

static redisReply *rep(int type) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = type;
    return r;
}
static redisReply *rnum(long long v) {
    redisReply *r = rep(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}
static redisReply *rstr(const char *s) {
    redisReply *r = rep(REDIS_REPLY_STRING);
    r->len = strlen(s);
    r->str = strdup(s);
    return r;
}
static redisReply *rarr(size_t n, ...) {
    redisReply *r = rep(REDIS_REPLY_ARRAY);
    va_list ap;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}
#define ID_A "09dbe9720cda62f7865eabc5fd8857c5d2678366"
#define ID_B "c9d93d9f2c0c524ff34cc11838c2003d8c29e013"
static redisReply *node(const char *host, long long port, const char *id) {
    /* Redis 7 adds a map of metadata (hostname) as a fourth element */
    return rarr(4, rstr(host), rnum(port), rstr(id), rarr(0));
}

static void test_map_good(void **st) {
    (void)st;
    ef_cluster_map_t *m = malloc(sizeof *m);
    char err[EF_ERR_LEN];
    redisReply *r = rarr(
        3, rarr(4, rnum(0), rnum(5460), node("10.0.0.1", 7000, ID_A), node("10.0.0.4", 7003, ID_B)),
        rarr(3, rnum(5461), rnum(10922), node("", 7001, ID_B)),
        rarr(3, rnum(10923), rnum(16383), node("10.0.0.1", 7000, ID_A)));
    assert_int_equal(ef_cluster_map_from_slots(r, "seed.example", m, err), 0);
    assert_int_equal(m->nnodes, 2); /* 10.0.0.1:7000 listed once */
    assert_int_equal(m->covered, EF_CLUSTER_SLOTS);
    assert_string_equal(ef_cluster_map_node(m, 0)->addr.host, "10.0.0.1");
    assert_string_equal(ef_cluster_map_node(m, 0)->id, ID_A);
    assert_int_equal(ef_cluster_map_node(m, 16383)->addr.port, 7000);
    assert_string_equal(ef_cluster_map_node(m, 5461)->addr.host, "seed.example");
    assert_int_equal(ef_cluster_map_node(m, 10922)->addr.port, 7001);
    assert_null(ef_cluster_map_node(m, -1));
    assert_null(ef_cluster_map_node(m, EF_CLUSTER_SLOTS));
    freeReplyObject(r);

    /* a gap and an unknown endpoint leave slots unserved */
    r = rarr(2, rarr(3, rnum(0), rnum(99), node("h", 1, ID_A)),
             rarr(3, rnum(200), rnum(299), node("?", 2, ID_B)));
    assert_int_equal(ef_cluster_map_from_slots(r, NULL, m, err), 0);
    assert_int_equal(m->covered, 100);
    assert_non_null(ef_cluster_map_node(m, 99));
    assert_null(ef_cluster_map_node(m, 100));
    assert_null(ef_cluster_map_node(m, 250));
    freeReplyObject(r);

    /* node entries of old servers: [host, port] only */
    r = rarr(1, rarr(3, rnum(0), rnum(16383), rarr(2, rstr("h"), rnum(6379))));
    assert_int_equal(ef_cluster_map_from_slots(r, NULL, m, err), 0);
    assert_string_equal(ef_cluster_map_node(m, 42)->id, "");
    freeReplyObject(r);
    r = rarr(0);
    assert_int_equal(ef_cluster_map_from_slots(r, NULL, m, err), 0);
    assert_int_equal(m->covered, 0);
    freeReplyObject(r);
    free(m);
}

static void test_map_bad(void **st) {
    (void)st;
    ef_cluster_map_t *m = malloc(sizeof *m);
    char err[EF_ERR_LEN];
    redisReply *bad[] = {
        rstr("not an array"),
        rarr(1, rnum(5)),
        rarr(1, rarr(2, rnum(0), rnum(1))),
        rarr(1, rarr(3, rstr("0"), rnum(1), node("h", 1, ID_A))),
        rarr(1, rarr(3, rnum(5), rnum(4), node("h", 1, ID_A))),
        rarr(1, rarr(3, rnum(-1), rnum(4), node("h", 1, ID_A))),
        rarr(1, rarr(3, rnum(0), rnum(16384), node("h", 1, ID_A))),
        rarr(1, rarr(3, rnum(0), rnum(1), node("h", 0, ID_A))),
        rarr(1, rarr(3, rnum(0), rnum(1), node("h", 65536, ID_A))),
        rarr(1, rarr(3, rnum(0), rnum(1), rarr(1, rstr("h")))),
        rarr(1, rarr(3, rnum(0), rnum(1), rarr(2, rnum(1), rnum(1)))),
        rarr(1, rarr(3, rnum(0), rnum(1), node("", 1, ID_A))), /* empty, no asked host */
        rarr(2, rarr(3, rnum(0), rnum(10), node("h", 1, ID_A)),
             rarr(3, rnum(10), rnum(20), node("g", 1, ID_B))), /* overlap */
    };
    for (size_t i = 0; i < EF_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (ef_cluster_map_from_slots(bad[i], NULL, m, err) != -1 ||
            !strstr(err, "CLUSTER SLOTS")) {
            fprintf(stderr, "bad reply %zu was not refused (err '%s')\n", i, err);
            fail();
        }
        freeReplyObject(bad[i]);
    }
    redisReply *e = rep(REDIS_REPLY_ERROR);
    e->str = strdup("ERR This instance has cluster support disabled");
    e->len = strlen(e->str);
    assert_int_equal(ef_cluster_map_from_slots(e, NULL, m, err), -1);
    assert_non_null(strstr(err, "cluster support disabled"));
    freeReplyObject(e);
    assert_int_equal(ef_cluster_map_from_slots(NULL, NULL, m, err), -1);

    /* more primaries than the map holds */
    redisReply *many = rep(REDIS_REPLY_ARRAY);
    many->elements = EF_CLUSTER_MAX_NODES + 1;
    many->element = calloc(many->elements, sizeof *many->element);
    for (size_t i = 0; i < many->elements; i++)
        many->element[i] =
            rarr(3, rnum((long long)i), rnum((long long)i), node("h", (long long)i + 1, ID_A));
    assert_int_equal(ef_cluster_map_from_slots(many, NULL, m, err), -1);
    assert_non_null(strstr(err, "primaries"));
    freeReplyObject(many);
    free(m);
}

/* The slot of a command formatted as the clients format it. */
static int cmd_slot(int argc, const char **argv) {
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, NULL), slot;
    assert_true(len > 0);
    slot = ef_cluster_cmd_slot(cmd, (size_t)len);
    redisFreeCommand(cmd);
    return slot;
}

#define SLOT(...)                                                                                  \
    cmd_slot((int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),                  \
             (const char *[]){__VA_ARGS__})

static void test_cmd_slot(void **st) {
    (void)st;
    int q = ef_cluster_keyslot("{q}", 3);
    assert_int_equal(SLOT("GET", "foo"), 12182);
    assert_int_equal(SLOT("hget", "foo", "f"), 12182); /* names in any case */
    assert_int_equal(SLOT("PING"), EF_CLUSTER_NO_KEY);
    assert_int_equal(SLOT("TIME"), EF_CLUSTER_NO_KEY);
    assert_int_equal(SLOT("CLIENT", "ID"), EF_CLUSTER_NO_KEY);
    assert_int_equal(SLOT("SCRIPT", "LOAD", "return 1"), EF_CLUSTER_NO_KEY);
    assert_int_equal(SLOT("PUBLISH", "farm:{q}:events", "x"), EF_CLUSTER_NO_KEY);
    assert_int_equal(
        SLOT("BLMOVE", "farm:{q}:pending", "farm:{q}:processing", "RIGHT", "LEFT", "5"), q);
    assert_int_equal(
        SLOT("BLMOVE", "farm:{q}:pending", "farm:{r}:processing", "RIGHT", "LEFT", "5"),
        EF_CLUSTER_CROSS_SLOT);
    assert_int_equal(SLOT("LMOVE", "foo", "bar", "LEFT", "LEFT"), EF_CLUSTER_CROSS_SLOT);
    assert_int_equal(SLOT("DEL", "farm:{q}:a", "farm:{q}:b"), q);
    assert_int_equal(SLOT("DEL", "foo", "bar"), EF_CLUSTER_CROSS_SLOT);
    assert_int_equal(SLOT("BLPOP", "farm:{q}:a", "farm:{q}:b", "foo"), q); /* foo: the timeout */
    assert_int_equal(SLOT("MSET", "farm:{q}:a", "foo", "farm:{q}:b", "bar"), q);
    assert_int_equal(SLOT("EVALSHA", "abc", "2", "farm:{q}:a", "farm:{q}:b", "foo", "bar"), q);
    assert_int_equal(SLOT("EVALSHA", "abc", "2", "farm:{q}:a", "foo"), EF_CLUSTER_CROSS_SLOT);
    assert_int_equal(SLOT("EVAL", "return 1", "0", "foo"), EF_CLUSTER_NO_KEY);
    assert_int_equal(SLOT("EVAL", "return 1", "3", "foo"), EF_CLUSTER_BAD_CMD); /* too few */
    assert_int_equal(SLOT("EVAL", "return 1", "x"), EF_CLUSTER_BAD_CMD);
    /* not RESP, cut short, trailing bytes */
    assert_int_equal(ef_cluster_cmd_slot("GET foo\r\n", 9), EF_CLUSTER_BAD_CMD);
    assert_int_equal(ef_cluster_cmd_slot("*2\r\n$3\r\nGET\r\n$3\r\nfo", 21), EF_CLUSTER_BAD_CMD);
    assert_int_equal(ef_cluster_cmd_slot("*1\r\n$3\r\nGET\r\n", 13), EF_CLUSTER_NO_KEY);
    assert_int_equal(ef_cluster_cmd_slot("*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n", 22), 12182);
    assert_int_equal(ef_cluster_cmd_slot("*2\r\n$3\r\nGET\r\n$9\r\nfoo\r\n", 22),
                     EF_CLUSTER_BAD_CMD);
    assert_int_equal(ef_cluster_cmd_slot(NULL, 0), EF_CLUSTER_BAD_CMD);
    /* every prefix of a good command is refused, never read past */
    {
        const char *good = "*3\r\n$4\r\nHGET\r\n$3\r\nfoo\r\n$1\r\nf\r\n";
        size_t n = strlen(good);
        for (size_t i = 0; i < n; i++) {
            char *cut = malloc(i ? i : 1);
            memcpy(cut, good, i);
            assert_int_equal(ef_cluster_cmd_slot(cut, i), EF_CLUSTER_BAD_CMD);
            free(cut);
        }
        assert_int_equal(ef_cluster_cmd_slot(good, n), 12182);
    }
}

static void test_map_set_owner(void **st) {
    (void)st;
    ef_cluster_map_t *m = calloc(1, sizeof *m);
    ef_redis_addr_t a = {"10.0.0.1", 7000}, b = {"10.0.0.2", 7000};
    for (int s = 0; s < EF_CLUSTER_SLOTS; s++)
        m->owner[s] = -1;
    assert_int_equal(ef_cluster_map_set_owner(m, 5, &a), 0);
    assert_int_equal(m->covered, 1);
    assert_int_equal(ef_cluster_map_set_owner(m, 6, &a), 0);
    assert_int_equal(ef_cluster_map_set_owner(m, 5, &b), 1); /* moved: the new node added */
    assert_int_equal(m->nnodes, 2);
    assert_int_equal(m->covered, 2);
    assert_string_equal(ef_cluster_map_node(m, 5)->addr.host, "10.0.0.2");
    assert_string_equal(ef_cluster_map_node(m, 6)->addr.host, "10.0.0.1");
    assert_int_equal(ef_cluster_map_set_owner(m, EF_CLUSTER_SLOTS, &a), -1);
    assert_int_equal(ef_cluster_map_set_owner(m, -1, &a), -1);
    free(m);
}

/* Every script call the programs make touches one slot (a Redis Cluster
 * refuses anything else), except job_create with the farm registry keys,
 * which a cluster client makes with registry_apart. */
static void assert_one_slot(const ef_call_t *c) {
    assert_false(c->bad);
    assert_true(ef_cluster_keys_slot(c->nkeys, c->argv, c->lens) >= 0);
}

static void test_calls_one_slot(void **st) {
    (void)st;
    ef_call_t c;
    const char *pairs[] = {"title", "T"};
    const char *refs[] = {"J1:0", "J1:1"};
    const char *extra[] = {"source", "x"};
    ef_call_job_create_t cr = {.queue = "q",
                               .id = "J1",
                               .provider = "items",
                               .chunk_size = 10,
                               .extra = extra,
                               .nextra = 1};
    ef_call_job_create(&c, &cr);
    assert_false(c.bad);
    assert_int_equal(ef_cluster_keys_slot(c.nkeys, c.argv, c.lens), -1); /* 7 keys: one node */
    ef_call_free(&c);
    cr.registry_apart = 1;
    ef_call_job_create(&c, &cr);
    assert_one_slot(&c);
    assert_int_equal(c.nkeys, 5);
    assert_int_equal(c.argc, 5 + 8 + 2);
    assert_string_equal(c.argv[5], "J1"); /* the arguments follow the 5 keys */
    ef_call_free(&c);

    ef_call_chunk_t ch = {.count = 1, .data = "{\"id\":\"1\"}", .len = 10};
    assert_one_slot(ef_call_job_append(&c, "q", "J1", 0, 0, &ch, 1));
    ef_call_free(&c);
    assert_one_slot(ef_call_job_seal(&c, "q", "J1", 1, 1, 0));
    ef_call_free(&c);
    assert_one_slot(ef_call_job_discard(&c, "q", "J1"));
    ef_call_free(&c);
    assert_one_slot(ef_call_job_abandon(&c, "q", "J1"));
    ef_call_free(&c);
    for (int v = 0; v < 3; v++) {
        assert_one_slot(
            ef_call_job_control(&c, (const char *[]){"cancel", "pause", "resume"}[v], "q", "J1"));
        ef_call_free(&c);
    }
    assert_one_slot(ef_call_queue_pause(&c, "q", 1));
    ef_call_free(&c);
    ef_call_chunk_claim_t cl = {.queue = "q",
                                .job_id = "J1",
                                .ref = "J1:0",
                                .worker_id = "w",
                                .n = 0,
                                .lease_ms = 1000,
                                .max_attempts = 3,
                                .error_log_cap = 10};
    assert_one_slot(ef_call_chunk_claim(&c, &cl));
    ef_call_free(&c);
    assert_one_slot(ef_call_chunk_release(&c, "q", "J1", 0, "J1:0", "w", "requeue"));
    ef_call_free(&c);
    assert_one_slot(ef_call_lease_extend(&c, "q", "w", 1000, refs, 2));
    ef_call_free(&c);
    assert_one_slot(ef_call_chunk_reap(&c, "q", 10, 100, 100));
    ef_call_free(&c);
    ef_call_ack_entity_t e[2] = {
        {.index = 0,
         .outcome = EF_OUTCOME_UPDATED,
         .result_key = "farm:{q}:movie:1",
         .pairs = pairs,
         .npairs = 1,
         .entity_id = "1"},
        {.index = 1, .outcome = EF_OUTCOME_ERROR, .error = "x", .entity_id = "2"}};
    ef_call_chunk_ack_t a = {.queue = "q", .job_id = "J1", .ref = "J1:0", .error_log_cap = 10};
    assert_one_slot(ef_call_chunk_ack(&c, &a, e, 2));
    ef_call_free(&c);
    assert_one_slot(ef_call_ratelimit_take(&c, "items", 5, "w", 10, 1, 10, 60000));
    ef_call_free(&c);
    ef_call_penalty_t pen = {.pause_ms = 1000, .cap_ms = 60000, .cut = 1};
    assert_one_slot(ef_call_ratelimit_penalty(&c, "items", &pen));
    ef_call_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16),          cmocka_unit_test(test_keyslot_known),
        cmocka_unit_test(test_keys_slot),      cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_map_good),       cmocka_unit_test(test_map_bad),
        cmocka_unit_test(test_cmd_slot),       cmocka_unit_test(test_map_set_owner),
        cmocka_unit_test(test_calls_one_slot),
    };
    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
