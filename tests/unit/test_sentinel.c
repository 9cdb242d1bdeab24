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
#include "fake_reply.h"

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
    redisReply *r = fake_reply_arr(2, fake_reply_string("10.1.2.3"), fake_reply_string("6380"));
    assert_int_equal(ef_sentinel_addr_from_reply(r, &a, err), 0);
    assert_string_equal(a.host, "10.1.2.3");
    assert_int_equal(a.port, 6380);
    freeReplyObject(r);

    r = fake_reply(REDIS_REPLY_NIL);
    assert_int_equal(ef_sentinel_addr_from_reply(r, &a, err), -1);
    assert_non_null(strstr(err, "does not know that master"));
    freeReplyObject(r);
    r = fake_reply_str(REDIS_REPLY_ERROR, "NOAUTH Authentication required.");
    assert_int_equal(ef_sentinel_addr_from_reply(r, &a, err), -1);
    assert_non_null(strstr(err, "NOAUTH"));
    freeReplyObject(r);
    assert_int_equal(ef_sentinel_addr_from_reply(NULL, &a, err), -1);

    char longhost[400];
    memset(longhost, 'h', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = '\0';
    redisReply *bad[] = {
        fake_reply_arr(1, fake_reply_string("h")),
        fake_reply_arr(3, fake_reply_string("h"), fake_reply_string("1"), fake_reply_string("x")),
        fake_reply_arr(2, fake_reply_string(""), fake_reply_string("1")),
        fake_reply_arr(2, fake_reply_string("h"), fake_reply_string("0")),
        fake_reply_arr(2, fake_reply_string("h"), fake_reply_string("65536")),
        fake_reply_arr(2, fake_reply_string("h"), fake_reply_string("6x")),
        fake_reply_arr(2, fake_reply_string("h"), fake_reply_string("")),
        fake_reply_arr(2, fake_reply_string(longhost), fake_reply_string("1")),
        fake_reply_string("10.0.0.1:6379"),
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
    redisReply *r = fake_reply_arr(3, fake_reply_string("master"), fake_reply(REDIS_REPLY_INTEGER),
                                   fake_reply_arr(0));
    assert_int_equal(ef_sentinel_role_check(r, err), 0);
    freeReplyObject(r);
    r = fake_reply_arr(5, fake_reply_string("slave"), fake_reply_string("127.0.0.1"),
                       fake_reply(REDIS_REPLY_INTEGER), fake_reply_string("connected"),
                       fake_reply(REDIS_REPLY_INTEGER));
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    assert_non_null(strstr(err, "says it is a slave, not the master"));
    freeReplyObject(r);
    r = fake_reply_arr(2, fake_reply_string("sentinel"), fake_reply_arr(0));
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    assert_non_null(strstr(err, "sentinel"));
    freeReplyObject(r);
    r = fake_reply_str(REDIS_REPLY_ERROR,
                       "NOPERM this user has no permissions to run the 'role' command");
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    assert_non_null(strstr(err, "NOPERM"));
    freeReplyObject(r);
    r = fake_reply_arr(0);
    assert_int_equal(ef_sentinel_role_check(r, err), -1);
    freeReplyObject(r);
    r = fake_reply_arr(1, fake_reply_string("masterx"));
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
