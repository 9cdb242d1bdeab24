// SPDX-License-Identifier: MIT
/*
 * Unit tests of lib/ef_sentinel.c: which error replies mean "not the
 * master", and the checks on a sentinel's address answer and on ROLE, with
 * constructed replies (the integration test meets the real ones).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ef_sentinel.h"

static redisReply *rep(int type) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = type;
    return r;
}
static redisReply *rstr(int type, const char *s) {
    redisReply *r = rep(type);
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
#define S(s) rstr(REDIS_REPLY_STRING, s)

static void test_failover_error(void **st) {
    (void)st;
    assert_true(
        ef_sentinel_failover_error("READONLY You can't write against a read only replica."));
    assert_true(ef_sentinel_failover_error("UNBLOCKED force unblocking"));
    assert_true(ef_sentinel_failover_error("LOADING Redis is loading the dataset in memory"));
    assert_true(ef_sentinel_failover_error("MASTERDOWN Link with MASTER is down"));
    assert_true(ef_sentinel_failover_error("READONLY"));
    assert_false(ef_sentinel_failover_error("READONLYX"));
    assert_false(ef_sentinel_failover_error("ERR READONLY"));
    assert_false(ef_sentinel_failover_error("NOSCRIPT No matching script"));
    assert_false(ef_sentinel_failover_error("BUSY Redis is busy running a script"));
    assert_false(ef_sentinel_failover_error(""));
    assert_false(ef_sentinel_failover_error(NULL));
}

static void test_addr(void **st) {
    (void)st;
    ef_redis_addr_t a;
    char err[EF_ERR_LEN];
    redisReply *r = rarr(2, S("10.1.2.3"), S("6380"));
    assert_int_equal(ef_sentinel_addr_from_reply(r, &a, err), 0);
    assert_string_equal(a.host, "10.1.2.3");
    assert_int_equal(a.port, 6380);
    freeReplyObject(r);

    r = rep(REDIS_REPLY_NIL);
    assert_int_equal(ef_sentinel_addr_from_reply(r, &a, err), -1);
    assert_non_null(strstr(err, "does not know that master"));
    freeReplyObject(r);
    r = rstr(REDIS_REPLY_ERROR, "NOAUTH Authentication required.");
    assert_int_equal(ef_sentinel_addr_from_reply(r, &a, err), -1);
    assert_non_null(strstr(err, "NOAUTH"));
    freeReplyObject(r);
    assert_int_equal(ef_sentinel_addr_from_reply(NULL, &a, err), -1);

    char longhost[400];
    memset(longhost, 'h', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = '\0';
    redisReply *bad[] = {
        rarr(1, S("h")),         rarr(3, S("h"), S("1"), S("x")), rarr(2, S(""), S("1")),
        rarr(2, S("h"), S("0")), rarr(2, S("h"), S("65536")),     rarr(2, S("h"), S("6x")),
        rarr(2, S("h"), S("")),  rarr(2, S(longhost), S("1")),    S("10.0.0.1:6379"),
    };
    for (size_t i = 0; i < EF_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(ef_sentinel_addr_from_reply(bad[i], &a, err), -1);
        assert_true(err[0] != '\0');
        freeReplyObject(bad[i]);
    }
}

static void test_role(void **st) {
    (void)st;
    char err[EF_ERR_LEN];
    redisReply *r = rarr(3, S("master"), rep(REDIS_REPLY_INTEGER), rarr(0));
    assert_int_equal(ef_sentinel_role_check(r, err), 0);
    freeReplyObject(r);
    r = rarr(5, S("slave"), S("127.0.0.1"), rep(REDIS_REPLY_INTEGER), S("connected"),
             rep(REDIS_REPLY_INTEGER));
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    assert_non_null(strstr(err, "says it is a slave, not the master"));
    freeReplyObject(r);
    r = rarr(2, S("sentinel"), rarr(0));
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    assert_non_null(strstr(err, "sentinel"));
    freeReplyObject(r);
    r = rstr(REDIS_REPLY_ERROR, "NOPERM this user has no permissions to run the 'role' command");
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    assert_non_null(strstr(err, "NOPERM"));
    freeReplyObject(r);
    r = rarr(0);
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    freeReplyObject(r);
    r = rarr(1, S("masterx"));
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    freeReplyObject(r);
    assert_int_equal(ef_sentinel_role_check(NULL, err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_error),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_role),
    };
    return cmocka_run_group_tests_name("sentinel", tests, NULL, NULL);
}
