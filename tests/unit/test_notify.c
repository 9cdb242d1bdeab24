// SPDX-License-Identifier: MIT
/*
 * Unit tests of the completion webhook's shared pieces (lib/ef_notify):
 * the HMAC-SHA256 signature against RFC 4231's vectors, the URL rule, the
 * bounded backoff and the body without the delivery's own state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ef_common.h"
#include "ef_notify.h"

static void test_sign_rfc4231(void **st) {
    (void)st;
    char sig[EF_NOTIFY_SIG_LEN];
    char key1[20];
    memset(key1, 0x0b, sizeof key1);
    /* RFC 4231 test case 1 */
    assert_int_equal(ef_notify_sign(key1, sizeof key1, "Hi There", 8, sig), 0);
    assert_string_equal(sig,
                        "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* test case 2: a key shorter than the block */
    const char *data = "what do ya want for nothing?";
    assert_int_equal(ef_notify_sign("Jefe", 4, data, strlen(data), sig), 0);
    assert_string_equal(sig,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* test case 6: a key longer than the block (131 bytes of 0xaa) */
    char key6[131];
    memset(key6, 0xaa, sizeof key6);
    data = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_int_equal(ef_notify_sign(key6, sizeof key6, data, strlen(data), sig), 0);
    assert_string_equal(sig,
                        "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* an empty body signs too */
    assert_int_equal(ef_notify_sign("k", 1, "", 0, sig), 0);
    assert_int_equal(strlen(sig), EF_NOTIFY_SIG_LEN - 1);
}

static void test_url_rule(void **st) {
    (void)st;
    char err[EF_ERR_LEN];
    assert_true(ef_notify_url_valid("http://127.0.0.1:8080/hook", err));
    assert_true(ef_notify_url_valid("https://hooks.example.com/x?token=1", err));
    assert_false(ef_notify_url_valid("ftp://x/", err));
    assert_false(ef_notify_url_valid("http:///path", err));
    assert_false(ef_notify_url_valid("http://", err));
    assert_false(ef_notify_url_valid("http://a b/", err));
    assert_false(ef_notify_url_valid("http://a/\n", err));
    assert_false(ef_notify_url_valid("", err));
    assert_false(ef_notify_url_valid(NULL, NULL));
    char *big = malloc(EF_NOTIFY_URL_MAX + 2);
    memcpy(big, "http://", 7);
    memset(big + 7, 'a', EF_NOTIFY_URL_MAX - 6);
    big[EF_NOTIFY_URL_MAX + 1] = '\0';
    assert_false(ef_notify_url_valid(big, err));
    big[EF_NOTIFY_URL_MAX] = '\0';
    assert_true(ef_notify_url_valid(big, err));
    free(big);
}

static void test_backoff_bounded(void **st) {
    (void)st;
    assert_int_equal(ef_notify_backoff_ms(1, 0), EF_NOTIFY_BACKOFF_BASE_MS);
    assert_int_equal(ef_notify_backoff_ms(2, 0), 2 * EF_NOTIFY_BACKOFF_BASE_MS);
    assert_int_equal(ef_notify_backoff_ms(3, 0), 4 * EF_NOTIFY_BACKOFF_BASE_MS);
    for (int f = 1; f < 100; f++) {
        long v = ef_notify_backoff_ms(f, UINT64_MAX);
        assert_true(v >= EF_NOTIFY_BACKOFF_BASE_MS);
        assert_true(v <= EF_NOTIFY_BACKOFF_MAX_MS + EF_NOTIFY_BACKOFF_MAX_MS / 4);
    }
    assert_int_equal(ef_notify_backoff_ms(1000, 0), EF_NOTIFY_BACKOFF_MAX_MS);
}

static void test_body(void **st) {
    (void)st;
    const char *f[] = {
        "id",           "J1",        "status",        "completed", "total",           "3",
        "notify_url",   "http://h/", "notify_status", "pending",   "notify_attempts", "2",
        "notify_owner", "w1",        "notify_error",  "HTTP 503"};
    size_t lens[EF_ARRAY_LEN(f)];
    for (size_t i = 0; i < EF_ARRAY_LEN(f); i++)
        lens[i] = strlen(f[i]);
    char *b = ef_notify_body(f, lens, EF_ARRAY_LEN(f), 1000);
    assert_non_null(b);
    assert_non_null(strstr(b, "\"id\":\"J1\""));
    assert_non_null(strstr(b, "\"total\":3"));
    assert_non_null(strstr(b, "\"notify_url\":\"http://h/\""));
    assert_null(strstr(b, "notify_status"));
    assert_null(strstr(b, "notify_attempts"));
    assert_null(strstr(b, "notify_owner"));
    assert_null(strstr(b, "notify_error"));
    free(b);
    assert_null(ef_notify_body(f, lens, 0, 1000));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_rfc4231),
        cmocka_unit_test(test_url_rule),
        cmocka_unit_test(test_backoff_bounded),
        cmocka_unit_test(test_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
