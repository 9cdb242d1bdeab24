// SPDX-License-Identifier: MIT
/*
 * Unit tests of lib/ef_pg.c without a server: a query on a connection that
 * cannot be made fires its callback exactly once, never from inside
 * ef_pg_query(), with libpq's reason and without the password; a second
 * query while one is outstanding is refused; closing with a query
 * outstanding fires nothing; the loop closes with every handle gone.  The
 * server side is tests/integration/test_pg_sink.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "ef_pg.h"

typedef struct {
    int fired;
    int had_result;
    char why[512];
} seen_t;

static void on_answer(ef_pg_t *pg, PGresult *res, const char *why, void *arg) {
    seen_t *s = arg;
    (void)pg;
    s->fired++;
    s->had_result = res != NULL;
    snprintf(s->why, sizeof s->why, "%s", why ? why : "");
}

static void test_refused(void **st) {
    (void)st;
    uv_loop_t loop;
    ef_pg_t *pg;
    seen_t s = {0};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(ef_pg_create(&pg, &loop, "postgresql://u:SeCrEt@127.0.0.1:1/db", 5000), 0);
    assert_int_equal(ef_pg_query(pg, "SELECT 1", 0, NULL, on_answer, &s), 0);
    assert_int_equal(s.fired, 0); /* never from inside the call */
    assert_int_equal(ef_pg_query(pg, "SELECT 2", 0, NULL, on_answer, &s), UV_EBUSY);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.fired, 1);
    assert_int_equal(s.had_result, 0);
    assert_true(strlen(s.why) > 0);
    assert_null(strstr(s.why, "SeCrEt"));
    assert_false(ef_pg_connected(pg));
    ef_pg_close(pg);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_close_outstanding(void **st) {
    (void)st;
    uv_loop_t loop;
    ef_pg_t *pg;
    seen_t s = {0};
    const char *v[] = {"1", NULL};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(ef_pg_create(&pg, &loop, "host=127.0.0.1 port=1", 5000), 0);
    assert_int_equal(ef_pg_query(pg, "SELECT $1, $2", 2, v, on_answer, &s), 0);
    ef_pg_close(pg);
    ef_pg_close(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s.fired, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_transient(void **st) {
    (void)st;
    assert_true(ef_pg_transient(NULL)); /* no result: the connection */
    assert_string_equal(ef_pg_sqlstate(NULL), "");
    assert_string_equal(ef_pg_message(NULL), "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_close_outstanding),
        cmocka_unit_test(test_transient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
