// SPDX-License-Identifier: MIT
/*
 * Unit tests of statusd's command line (statusd/opts.c: flags, listen
 * addresses, the loopback-or-token rule) and of the reply helpers in
 * statusd/batch.c (numbers, ETags, hashes and jobs as JSON).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../statusd/statusd.h"

static int parse(ef_sd_opts_t *o, char *err, ...) {
    char *argv[32] = {"statusd"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a = va_arg(ap, char *); a && argc < 31; a = va_arg(ap, char *))
        argv[argc++] = a;
    va_end(ap);
    return ef_sd_opts_parse(o, argc, argv, err);
}

static void test_defaults(void **state) {
    (void)state;
    ef_sd_opts_t o;
    char err[EF_ERR_LEN];
    unsetenv("STATUSD_TOKEN");
    assert_int_equal(parse(&o, err, NULL), EF_SD_OPTS_RUN);
    assert_string_equal(o.listen_text, "127.0.0.1:8080");
    assert_true(ef_sd_addr_is_loopback((struct sockaddr *)&o.listen));
    assert_null(o.token);
    assert_int_equal(o.max_connections, EF_SD_MAX_CONNECTIONS_DEFAULT);
    assert_int_equal(o.max_body, EF_SD_HTTP_MAX_BODY);
    assert_int_equal(ef_sd_opts_check(&o, err), 0);
}

static void test_flags(void **state) {
    (void)state;
    ef_sd_opts_t o;
    char err[EF_ERR_LEN];
    assert_int_equal(parse(&o, err, "--listen", "[::1]:9000", "--token=abc", "--max-connections",
                           "7", "--idle-timeout-ms", "500", "--header-timeout-ms=600",
                           "--log-format", "json", "--read-only", "--port-file", "/tmp/p", NULL),
                     EF_SD_OPTS_RUN);
    assert_string_equal(o.token, "abc");
    assert_int_equal(o.max_connections, 7);
    assert_int_equal(o.idle_timeout_ms, 500);
    assert_int_equal(o.header_timeout_ms, 600);
    assert_int_equal(o.log_format, EF_LOG_JSON);
    assert_int_equal(o.read_only, 1);
    assert_string_equal(o.port_file, "/tmp/p");
    assert_int_equal(o.listen.ss_family, AF_INET6);
    assert_int_equal(parse(&o, err, "--help", NULL), EF_SD_OPTS_HELP);
    assert_int_equal(parse(&o, err, "--version", NULL), EF_SD_OPTS_VERSION);
    assert_int_equal(parse(&o, err, "--nope", NULL), -1);
    assert_non_null(strstr(err, "--nope"));
    assert_int_equal(parse(&o, err, "--listen", NULL), -1);
    assert_int_equal(parse(&o, err, "--max-connections", "0", NULL), -1);
    assert_int_equal(parse(&o, err, "--log-format", "xml", NULL), -1);
    setenv("STATUSD_TOKEN", "fromenv", 1);
    assert_int_equal(parse(&o, err, NULL), EF_SD_OPTS_RUN);
    assert_string_equal(o.token, "fromenv");
    assert_int_equal(parse(&o, err, "--token", "flag", NULL), EF_SD_OPTS_RUN);
    assert_string_equal(o.token, "flag");
    unsetenv("STATUSD_TOKEN");
}

static void test_listen_and_token_rule(void **state) {
    (void)state;
    struct sockaddr_storage ss;
    ef_sd_opts_t o;
    char err[EF_ERR_LEN];
    static const char *const loop[] = {"127.0.0.1:1", "127.1.2.3:0",          "localhost:80",
                                       "[::1]:8080",  "[::ffff:127.0.0.1]:5", ":8080"};
    static const char *const wide[] = {"0.0.0.0:8080", "10.0.0.1:80", "[::]:8080"};
    static const char *const bad[] = {"8080",     "host.example:80", "1.2.3.4:99999", "[::1]8080",
                                      "1.2.3.4:", "1.2.3.4:x",       "[zz]:1"};
    for (size_t i = 0; i < EF_ARRAY_LEN(loop); i++) {
        assert_int_equal(ef_sd_listen_parse(loop[i], &ss, err), 0);
        assert_true(ef_sd_addr_is_loopback((struct sockaddr *)&ss));
    }
    for (size_t i = 0; i < EF_ARRAY_LEN(wide); i++) {
        assert_int_equal(ef_sd_listen_parse(wide[i], &ss, err), 0);
        assert_false(ef_sd_addr_is_loopback((struct sockaddr *)&ss));
    }
    for (size_t i = 0; i < EF_ARRAY_LEN(bad); i++)
        if (ef_sd_listen_parse(bad[i], &ss, err) == 0)
            fail_msg("'%s' should not parse", bad[i]);
    unsetenv("STATUSD_TOKEN");
    assert_int_equal(parse(&o, err, "--listen", "0.0.0.0:80", NULL), EF_SD_OPTS_RUN);
    assert_int_equal(ef_sd_opts_check(&o, err), -1);
    assert_non_null(strstr(err, "token"));
    assert_int_equal(parse(&o, err, "--listen", "0.0.0.0:80", "--token", "t", NULL),
                     EF_SD_OPTS_RUN);
    assert_int_equal(ef_sd_opts_check(&o, err), 0);
    assert_int_equal(parse(&o, err, "--listen", "0.0.0.0:80", "--read-only", NULL), EF_SD_OPTS_RUN);
    assert_int_equal(ef_sd_opts_check(&o, err), 0);
}

/* ---- reply helpers ---- */

static ef_sd_reply_t *str(const char *s) {
    ef_sd_reply_t *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_STRING;
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static ef_sd_reply_t *hash(const char *const *kv, size_t n) {
    ef_sd_reply_t *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n, sizeof *r->element);
    for (size_t i = 0; i < n; i++)
        r->element[i] = str(kv[i]);
    return r;
}

static void test_numbers(void **state) {
    (void)state;
    static const char *const yes[] = {"0", "7", "-3", "12.5", "1e3", "-0.25", "1795613411289"};
    static const char *const no[] = {"",   "-",  "01",  "1.",  ".5", "1e",    "0x10",
                                     "1 ", " 1", "inf", "NaN", "+1", "1.2.3", "0.1.0"};
    for (size_t i = 0; i < EF_ARRAY_LEN(yes); i++)
        assert_true(ef_sd_is_number(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < EF_ARRAY_LEN(no); i++)
        if (ef_sd_is_number(no[i], strlen(no[i])))
            fail_msg("'%s' is not a number", no[i]);
}

static void test_hash_json_and_etag(void **state) {
    (void)state;
    static const char *const a[] = {"id", "42",     "host", "h",       "pid",
                                    "7",  "tokens", "2.5",  "version", "0.1.0"};
    static const char *const b[] = {"tokens", "2.5",  "version", "0.1.0", "id",
                                    "42",     "host", "h",       "pid",   "7"};
    static const char *const c[] = {"id", "42",     "host", "h",       "pid",
                                    "8",  "tokens", "2.5",  "version", "0.1.0"};
    static const char *const keep[] = {"id", NULL};
    ef_sd_reply_t *ra = hash(a, 10), *rb = hash(b, 10), *rc = hash(c, 10);
    char ea[40], eb[40], ec[40];
    cJSON *o = ef_sd_hash_to_json(ra, keep);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "id")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "pid")));
    assert_true(cJSON_GetObjectItem(o, "tokens")->valuedouble == 2.5);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "version")));
    cJSON_Delete(o);
    ef_sd_job_etag(ra, ea, sizeof ea);
    ef_sd_job_etag(rb, eb, sizeof eb);
    ef_sd_job_etag(rc, ec, sizeof ec);
    assert_string_equal(ea, eb); /* field order does not matter */
    assert_string_not_equal(ea, ec);
    assert_int_equal(ea[0], '"');
    ef_sd_reply_free(ra);
    ef_sd_reply_free(rb);
    ef_sd_reply_free(rc);
}

static void test_job_json(void **state) {
    (void)state;
    static const char *const job[] = {"id",         "J1",        "status",     "running", "total",
                                      "100",        "processed", "25",         "dry_run", "0",
                                      "started_at", "1000",      "created_at", "900"};
    ef_sd_reply_t *r = hash(job, EF_ARRAY_LEN(job));
    cJSON *o = ef_sd_job_json(r, 11000);
    assert_non_null(o);
    assert_true(cJSON_GetObjectItem(o, "total")->valuedouble == 100);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "dry_run")));
    assert_true(cJSON_GetObjectItem(o, "progress_percent")->valuedouble == 25);
    assert_true(cJSON_GetObjectItem(o, "rate_per_s")->valuedouble == 2.5);
    assert_true(cJSON_GetObjectItem(o, "eta_s")->valuedouble == 30);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "created_at_iso")));
    cJSON_Delete(o);
    ef_sd_reply_free(r);
    ef_sd_reply_t empty = {.type = REDIS_REPLY_ARRAY};
    assert_null(ef_sd_job_json(&empty, 0));
    assert_int_equal(
        ef_sd_reply_int(&(ef_sd_reply_t){.type = REDIS_REPLY_STRING, .str = "-12", .len = 3}), -12);
    assert_int_equal(ef_sd_reply_int(&(ef_sd_reply_t){.type = REDIS_REPLY_INTEGER, .integer = 9}),
                     9);
    assert_int_equal(ef_sd_reply_int(NULL), 0);
}

/* Redis's words survive what Redis wraps around a script's error. */
static void test_redis_error_text(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"OOM command not allowed when used memory > 'maxmemory'. script: "
         "ab4da82edcbc516a3c7ada5b6f4fa0fc0dcb276c, on @user_script:1.",
         "OOM command not allowed when used memory > 'maxmemory'."},
        {"ERR user_script:1: boom script: 82903a0434f1503e152f89c03c9acd881a0e8150, on "
         "@user_script:1.",
         "boom"},
        {"ERR Error running script (call to f_82903a0434f1503e152f89c03c9acd881a0e8150): "
         "@user_script:12: job J1 does not exist",
         "job J1 does not exist"},
        {"job J1 does not exist", "job J1 does not exist"},
        {"ERR wrong number of arguments", "wrong number of arguments"},
        {"", ""},
    };
    char out[256];
    for (size_t i = 0; i < EF_ARRAY_LEN(cases); i++) {
        ef_sd_redis_error_text(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_listen_and_token_rule),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_hash_json_and_etag),
        cmocka_unit_test(test_job_json),
        cmocka_unit_test(test_redis_error_text),
    };
    return cmocka_run_group_tests_name("statusd options and replies", tests, NULL, NULL);
}
