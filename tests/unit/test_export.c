// SPDX-License-Identifier: MIT
/*
 * Unit tests of the tables of outcomes and job statuses (lib/ef_job.h) and
 * of the results export (lib/ef_export): one line writer for the enqueuer
 * and statusd, typed fields JSON from the extracted values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ef_common.h"
#include "ef_export.h"
#include "ef_job.h"

static void test_outcome_table(void **st) {
    (void)st;
    char c = 0;
    assert_int_equal(ef_outcomes_count, 4);
    assert_string_equal(ef_outcome_name(EF_OUTCOME_UPDATED), "updated");
    assert_string_equal(ef_outcome_name(EF_OUTCOME_CONFLICT), "conflicts");
    assert_string_equal(ef_outcome_name(EF_OUTCOME_NOT_FOUND), "not_found");
    assert_string_equal(ef_outcome_name(EF_OUTCOME_ERROR), "errors");
    assert_string_equal(ef_outcome_name(EF_OUTCOME_NONE), "pending");
    assert_string_equal(ef_outcome_name('?'), "pending");
    for (size_t i = 0; i < ef_outcomes_count; i++) {
        assert_int_equal(ef_outcome_parse(ef_outcomes[i].name, &c), 0);
        assert_int_equal(c, ef_outcomes[i].c);
        assert_true(ef_outcome_known(c));
    }
    assert_int_equal(ef_outcome_parse("pending", &c), 0);
    assert_int_equal(c, EF_OUTCOME_NONE);
    assert_false(ef_outcome_known(EF_OUTCOME_NONE));
    assert_int_equal(ef_outcome_parse("error", &c), -1);
}

static void test_status_table(void **st) {
    (void)st;
    assert_int_equal(EF_JOB_STATUS_COUNT, 7);
    assert_int_equal(ef_job_status_parse("completed"), EF_JOB_COMPLETED);
    assert_int_equal(ef_job_status_parse("enqueuing"), EF_JOB_ENQUEUING);
    assert_int_equal(ef_job_status_parse("Completed"), EF_JOB_STATUS_UNKNOWN);
    assert_int_equal(ef_job_status_parse(NULL), EF_JOB_STATUS_UNKNOWN);
    assert_string_equal(ef_job_status_name(EF_JOB_PAUSED), "paused");
    assert_string_equal(ef_job_status_name(EF_JOB_STATUS_UNKNOWN), "");
    assert_true(ef_job_status_final("completed"));
    assert_true(ef_job_status_final("cancelled"));
    assert_true(ef_job_status_final("failed"));
    assert_false(ef_job_status_final("running"));
    assert_false(ef_job_status_final("missing"));
    assert_true(ef_job_status_valid("queued"));
    assert_false(ef_job_status_valid("done"));
    assert_null(ef_job_statuses[EF_JOB_STATUS_COUNT]);
}

static void test_export_lines(void **st) {
    (void)st;
    ef_buf_t b;
    const char data[] = "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}";
    const char res[] = "2\t{\"n\":[1]}\n0\t{\"price\":456.13}";
    ef_buf_init(&b);
    assert_int_equal(ef_export_chunk(&b, data, strlen(data), "ue", 2, res, strlen(res), NULL), 3);
    assert_string_equal(
        b.s, "{\"entity\":{\"id\":\"1\"},\"outcome\":\"updated\",\"result\":{\"price\":456.13}}\n"
             "{\"entity\":{\"id\":\"2\"},\"outcome\":\"errors\"}\n"
             "{\"entity\":{\"id\":\"3\"},\"outcome\":\"pending\",\"result\":{\"n\":[1]}}\n");
    ef_export_filter_t f = {1, EF_OUTCOME_NONE};
    ef_buf_reset(&b);
    ef_export_chunk(&b, data, strlen(data), "u?", 2, NULL, 0, &f);
    assert_string_equal(b.s, "{\"entity\":{\"id\":\"2\"},\"outcome\":\"pending\"}\n"
                             "{\"entity\":{\"id\":\"3\"},\"outcome\":\"pending\"}\n");
    ef_buf_free(&b);
}

static void test_fields_json_typed(void **st) {
    (void)st;
    cJSON *o = cJSON_Parse("{\"price\":456.13,\"genres\":[\"Drama\"],\"meta\":{\"a\":true},"
                           "\"t\":\"x\",\"t\":\"y\",\"n\":null}");
    char *s = ef_export_fields_json(o);
    assert_string_equal(s, "{\"price\":456.13,\"genres\":[\"Drama\"],\"meta\":{\"a\":true},"
                           "\"t\":\"y\",\"n\":null}");
    free(s);
    cJSON_Delete(o);
    s = ef_export_fields_json(NULL);
    assert_string_equal(s, "{}");
    free(s);
}

/* CSV: the columns come from every chunk (entity fields, outcome, result
 * fields, a clashing result name prefixed), RFC 4180 quoting, CRLF. */
static void test_export_csv(void **st) {
    (void)st;
    ef_export_csv_t x;
    ef_buf_t b;
    char err[EF_ERR_LEN];
    const char d1[] = "{\"id\":\"1\",\"name\":\"a, \\\"b\\\"\"}\n{\"id\":\"2\",\"n\":7}";
    const char r1[] = "0\t{\"price\":456.13,\"name\":\"X\",\"tags\":[\"a\",\"b\"]}\n"
                      "1\t{\"ok\":true,\"none\":null}";
    const char d2[] = "{\"id\":\"3\",\"note\":\"line1\\nline2\"}";
    ef_export_csv_init(&x);
    ef_buf_init(&b);
    assert_int_equal(ef_export_csv_scan(&x, d1, strlen(d1), r1, strlen(r1), err), 0);
    assert_int_equal(ef_export_csv_scan(&x, d2, strlen(d2), NULL, 0, err), 0);
    ef_export_csv_header(&b, &x);
    assert_string_equal(b.s, "id,name,n,note,outcome,price,result.name,tags,ok,none\r\n");
    ef_buf_reset(&b);
    assert_int_equal(ef_export_csv_chunk(&b, &x, d1, strlen(d1), "un", 2, r1, strlen(r1)), 2);
    assert_int_equal(ef_export_csv_chunk(&b, &x, d2, strlen(d2), NULL, 0, NULL, 0), 1);
    assert_string_equal(b.s, "1,\"a, \"\"b\"\"\",,,updated,456.13,X,\"[\"\"a\"\",\"\"b\"\"]\",,\r\n"
                             "2,,7,,not_found,,,,true,\r\n"
                             "3,,,\"line1\nline2\",pending,,,,,\r\n");
    ef_buf_free(&b);
    ef_export_csv_free(&x);
    ef_export_csv_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcome_table),
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_export_lines),
        cmocka_unit_test(test_fields_json_typed),
        cmocka_unit_test(test_export_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
