// SPDX-License-Identifier: MIT
/*
 * Unit tests of the public contract pieces: key names, chunk references,
 * name validation, the --redis URL parser, job ids and the job's JSON form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ef_common.h"
#include "ef_job.h"
#include "ef_keys.h"
#include "ef_redis_url.h"

static void test_keys(void **st) {
    (void)st;
    ef_key_t k;
    assert_string_equal(ef_key_queue(&k, "default", EF_KEY_PENDING), "farm:{default}:pending");
    assert_string_equal(ef_key_queue(&k, "q1", EF_KEY_JOBS), "farm:{q1}:jobs");
    assert_string_equal(ef_key_queue(&k, "q1", EF_KEY_CONTROL), "farm:{q1}:control");
    assert_string_equal(ef_key_job(&k, "q", "J1", EF_KEY_JOB), "farm:{q}:job:J1");
    assert_string_equal(ef_key_job(&k, "q", "J1", EF_KEY_JOB_CHUNKS), "farm:{q}:job:J1:chunks");
    assert_string_equal(ef_key_job(&k, "q", "J1", EF_KEY_JOB_OUTCOMES), "farm:{q}:job:J1:outcomes");
    assert_string_equal(ef_key_global(&k, EF_KEY_WORKERS), "farm:workers");
    assert_string_equal(ef_key_ratelimit(&k, "tmdb"), "farm:ratelimit:{tmdb}");
    assert_string_equal(ef_key_auth(&k, "tmdb"), "farm:auth:{tmdb}");
    char id[64];
    long n;
    char ref[80];
    ef_chunk_ref(ref, sizeof ref, "ABC", 12);
    assert_string_equal(ref, "ABC:12");
    assert_int_equal(ef_chunk_ref_parse(ref, strlen(ref), id, sizeof id, &n), 0);
    assert_string_equal(id, "ABC");
    assert_int_equal(n, 12);
    assert_int_equal(ef_chunk_ref_parse("ABC", 3, id, sizeof id, &n), -1);
    assert_int_equal(ef_chunk_ref_parse("ABC:", 4, id, sizeof id, &n), -1);
    assert_int_equal(ef_chunk_ref_parse(":1", 2, id, sizeof id, &n), -1);
    assert_int_equal(ef_chunk_ref_parse("A{B:1", 5, id, sizeof id, &n), -1);
    assert_int_equal(ef_chunk_ref_parse("AB:1x", 5, id, sizeof id, &n), -1);
}

static void test_names(void **st) {
    (void)st;
    assert_true(ef_queue_name_valid("default"));
    assert_true(ef_queue_name_valid("a.b-c_d"));
    assert_false(ef_queue_name_valid(""));
    assert_false(ef_queue_name_valid("a{b}"));
    assert_false(ef_queue_name_valid("a:b"));
    assert_false(ef_queue_name_valid("../x"));
    char long_name[100];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false(ef_queue_name_valid(long_name));
    long_name[64] = '\0';
    assert_true(ef_queue_name_valid(long_name));
    assert_true(ef_job_id_valid("01ABC_x-1"));
    assert_false(ef_job_id_valid("a.b"));
    assert_false(ef_job_id_valid("a b"));
    assert_false(ef_job_id_valid("*"));
}

static void test_url(void **st) {
    (void)st;
    ef_redis_url_t u;
    char err[EF_ERR_LEN], red[600];
    assert_int_equal(ef_redis_url_parse("redis://127.0.0.1:6380/2", &u, err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_int_equal(ef_redis_url_parse("redis://:s%40cret@h/0", &u, err), 0);
    assert_string_equal(u.password, "s@cret");
    assert_string_equal(u.user, "");
    assert_int_equal(u.port, 6379);
    ef_redis_url_redacted(&u, red, sizeof red);
    assert_null(strstr(red, "cret"));
    assert_int_equal(ef_redis_url_parse("redis://farm:pw@host:1", &u, err), 0);
    assert_string_equal(u.user, "farm");
    assert_string_equal(u.password, "pw");
    assert_int_equal(ef_redis_url_parse("redis://[::1]:7000/3", &u, err), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(ef_redis_url_parse("unix:///tmp/r.sock?db=4&password=x", &u, err), 0);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 4);
    assert_string_equal(u.password, "x");
    assert_int_equal(ef_redis_url_parse("redis://h:0/0", &u, err), -1);
    assert_int_equal(ef_redis_url_parse("redis://h:99999", &u, err), -1);
    assert_int_equal(ef_redis_url_parse("redis://h/x", &u, err), -1);
    assert_int_equal(ef_redis_url_parse("http://h", &u, err), -1);
    assert_non_null(strstr(err, "redis://"));
    assert_int_equal(ef_redis_url_parse("unix://relative", &u, err), -1);
    assert_int_equal(ef_redis_url_parse("redis://:%zz@h", &u, err), -1);
    assert_int_equal(ef_redis_url_parse("redis://:%4@h", &u, err), -1);
    assert_int_equal(ef_redis_url_parse("", &u, err), -1);
}

static void test_job_id(void **st) {
    (void)st;
    char a[EF_JOB_ID_LEN + 1], b[EF_JOB_ID_LEN + 1];
    ef_job_id_new(a);
    ef_job_id_new(b);
    assert_int_equal(strlen(a), 26);
    assert_true(ef_job_id_valid(a));
    assert_string_not_equal(a, b);
    assert_memory_equal(a, b, 6); /* same time prefix within a few ms */
}

static void test_job_json(void **st) {
    (void)st;
    const char *f[] = {"id", "J", "status", "running", "total", "200", "processed", "50",
                       "dry_run", "1", "started_at", "1000", "completed_at", "0", "provider", "p"};
    size_t l[16];
    for (int i = 0; i < 16; i++)
        l[i] = strlen(f[i]);
    cJSON *o = ef_job_to_json(f, l, 16, 11000);
    assert_non_null(o);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "total")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "dry_run")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "provider")));
    assert_true(cJSON_GetObjectItem(o, "progress_percent")->valuedouble == 25.0);
    assert_true(cJSON_GetObjectItem(o, "rate_per_s")->valuedouble == 5.0);
    assert_true(cJSON_GetObjectItem(o, "eta_s")->valuedouble == 30.0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "completed_at_iso")));
    assert_string_equal(cJSON_GetObjectItem(o, "started_at_iso")->valuestring, "1970-01-01T00:00:01.000Z");
    cJSON_Delete(o);
    assert_null(ef_job_to_json(f, l, 0, 0));
    assert_true(ef_job_status_final("completed"));
    assert_false(ef_job_status_final("running"));
    assert_true(ef_job_status_valid("enqueuing"));
    assert_false(ef_job_status_valid("done"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys), cmocka_unit_test(test_names), cmocka_unit_test(test_url),
        cmocka_unit_test(test_job_id), cmocka_unit_test(test_job_json),
    };
    return cmocka_run_group_tests_name("contract", tests, NULL, NULL);
}
