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

#include "ef_cluster.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16),     cmocka_unit_test(test_keyslot_known),
        cmocka_unit_test(test_keys_slot), cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_map_good),  cmocka_unit_test(test_map_bad),
    };
    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
