// SPDX-License-Identifier: MIT
/*
 * Unit tests of the worker's ack argv: an entity's fields JSON becomes the
 * flat field pairs chunk_ack.lua writes to its result hash (ef_ack_pairs_from).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/worker.h"

/* worker/main.c is not in the archive the tests link; ack.o's neighbours
 * reach these two, which the parser under test never calls */
void ef_worker_check_drained(ef_worker_t *w) {
    (void)w;
    fail();
}
size_t ef_worker_wanted(const ef_worker_t *w) {
    (void)w;
    fail();
    return 0;
}

/* The pairs as "name=value;" text, or "NULL". */
static const char *pairs_text(const char *fields, size_t *n, char *buf, size_t len) {
    char **v = ef_ack_pairs_from(fields ? cJSON_Parse(fields) : NULL, n);
    size_t used = 0;
    if (!v)
        return "NULL";
    buf[0] = '\0';
    for (size_t i = 0; i < *n; i++) {
        assert_non_null(v[2 * i]);
        assert_non_null(v[2 * i + 1]);
        used += (size_t)snprintf(buf + used, len - used, "%s=%s;", v[2 * i], v[2 * i + 1]);
        assert_true(used < len);
    }
    free(v);
    return buf;
}

static void test_pairs_strings(void **st) {
    (void)st;
    char buf[256];
    size_t n = 99;
    assert_string_equal(pairs_text("{\"title\":\"Alien\",\"year\":\"1979\"}", &n, buf, sizeof buf),
                        "title=Alien;year=1979;");
    assert_int_equal(n, 2);
    /* escapes arrive decoded, as the result hash must hold them */
    assert_string_equal(pairs_text("{\"t\":\"a\\tb \\\"c\\\" \\u00e9\"}", &n, buf, sizeof buf),
                        "t=a\tb \"c\" \xc3\xa9;");
    assert_int_equal(n, 1);
    assert_string_equal(pairs_text("{\"empty\":\"\"}", &n, buf, sizeof buf), "empty=;");
    assert_int_equal(n, 1);
}

static void test_pairs_nothing(void **st) {
    (void)st;
    char buf[64];
    size_t n = 99;
    assert_string_equal(pairs_text(NULL, &n, buf, sizeof buf), "NULL");
    assert_int_equal(n, 0);
    assert_string_equal(pairs_text("{}", &n, buf, sizeof buf), "NULL");
    assert_int_equal(n, 0);
    assert_string_equal(pairs_text("", &n, buf, sizeof buf), "NULL");
    assert_string_equal(pairs_text("not json", &n, buf, sizeof buf), "NULL");
    assert_string_equal(pairs_text("[\"a\",\"b\"]", &n, buf, sizeof buf), "NULL");
    assert_string_equal(pairs_text("\"a\"", &n, buf, sizeof buf), "NULL");
    assert_int_equal(n, 0);
}

static void test_pairs_other_values(void **st) {
    (void)st;
    char buf[256];
    size_t n;
    /* not strings: their JSON text, as task.c's flatten writes them */
    assert_string_equal(
        pairs_text("{\"runtime\":98,\"genres\":[\"Drama\"],\"ok\":true,\"x\":null,\"o\":{\"a\":1}}", &n,
                   buf, sizeof buf),
        "runtime=98;genres=[\"Drama\"];ok=true;x=null;o={\"a\":1};");
    assert_int_equal(n, 5);
}

static void test_pairs_duplicates(void **st) {
    (void)st;
    char buf[256];
    size_t n;
    /* of two fields with one name the later wins, in the later's place */
    assert_string_equal(pairs_text("{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}", &n, buf, sizeof buf),
                        "b=2;a=3;");
    assert_int_equal(n, 2);
    assert_string_equal(pairs_text("{\"a\":\"1\",\"a\":2,\"a\":\"x\",\"a\":[1]}", &n, buf, sizeof buf),
                        "a=[1];");
    assert_int_equal(n, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs_strings),
        cmocka_unit_test(test_pairs_nothing),
        cmocka_unit_test(test_pairs_other_values),
        cmocka_unit_test(test_pairs_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
