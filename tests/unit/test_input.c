// SPDX-License-Identifier: MIT
/*
 * Unit tests of the enqueuer's parsers (lib/ef_input.c): every format, every
 * validation error with its line, and every input fed split at every read
 * size from 1 byte up, which must give the same entities.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ef_common.h"
#include "ef_input.h"
#include "ef_text.h"

/* Parses buf read `step` bytes at a time; returns every entity line and
 * every error as text ("E:" prefix) so runs can be compared. */
static char *parse_all(const char *buf, size_t len, ef_input_format_t fmt, const char *idf,
                       size_t step, int skip) {
    ef_input_t *in = ef_input_open_mem(buf, len, fmt, idf, "t");
    ef_buf_t out;
    ef_entity_t e;
    char err[EF_ERR_LEN];
    int r, guard = 0;
    ef_buf_init(&out);
    ef_buf_append(&out, "", 0);
    ef_input_set_read_step(in, step);
    while ((r = ef_input_next(in, &e, err)) != 0 && guard++ < 100000) {
        if (r == 1) {
            char ln[32];
            snprintf(ln, sizeof ln, "%ld:", e.line);
            ef_buf_appends(&out, ln);
            ef_buf_append(&out, e.record, e.record_len);
            ef_buf_appendc(&out, '\n');
            assert_int_equal(memchr(e.record, '\n', e.record_len) == NULL, 1);
        } else {
            ef_buf_appends(&out, "E:");
            ef_buf_appends(&out, err);
            ef_buf_appendc(&out, '\n');
            if (r == EF_INPUT_FATAL || !skip)
                break;
        }
    }
    ef_input_free(in);
    return out.s;
}

/* Checks the result for every read size equals the whole-buffer result
 * and the expected text. */
static void expect(const char *input, size_t len, ef_input_format_t fmt, const char *idf, int skip,
                   const char *expected) {
    char *whole = parse_all(input, len, fmt, idf, 0, skip);
    assert_string_equal(whole, expected);
    for (size_t step = 1; step <= len + 1 && step < 64; step++) {
        char *part = parse_all(input, len, fmt, idf, step, skip);
        if (strcmp(part, whole) != 0)
            fail_msg("read step %zu gives\n%s\ninstead of\n%s", step, part, whole);
        free(part);
    }
    free(whole);
}
#define EXPECT(in, fmt, idf, skip, exp) expect(in, sizeof(in) - 1, fmt, idf, skip, exp)

static void test_lines(void **st) {
    (void)st;
    EXPECT("1\n2\n", EF_INPUT_LINES, NULL, 0, "1:{\"id\":\"1\"}\n2:{\"id\":\"2\"}\n");
    EXPECT("a\r\n  b c \t\n\n\nd", EF_INPUT_LINES, NULL, 0,
           "1:{\"id\":\"a\"}\n2:{\"id\":\"b c\"}\n5:{\"id\":\"d\"}\n");
    EXPECT("\xef\xbb\xbfx\n", EF_INPUT_LINES, NULL, 0, "1:{\"id\":\"x\"}\n");
    EXPECT("q\"\\z\n", EF_INPUT_LINES, NULL, 0, "1:{\"id\":\"q\\\"\\\\z\"}\n");
    EXPECT("\xc3\xa9t\xc3\xa9\n", EF_INPUT_LINES, NULL, 0, "1:{\"id\":\"\xc3\xa9t\xc3\xa9\"}\n");
    EXPECT("", EF_INPUT_LINES, NULL, 0, "");
    EXPECT("\n\n", EF_INPUT_LINES, NULL, 0, "");
}

static void test_lines_errors(void **st) {
    (void)st;
    EXPECT("1\n\x01x\n3\n", EF_INPUT_LINES, NULL, 0,
           "1:{\"id\":\"1\"}\nE:t:2: id contains control character 0x01 at byte 1\n");
    EXPECT("1\n\x01x\n3\n", EF_INPUT_LINES, NULL, 1,
           "1:{\"id\":\"1\"}\nE:t:2: id contains control character 0x01 at byte 1\n3:{\"id\":\"3\"}\n");
    EXPECT("\xff\n", EF_INPUT_LINES, NULL, 0, "E:t:1: id is not valid UTF-8 (byte 1)\n");
    EXPECT("\xc0\x80\n", EF_INPUT_LINES, NULL, 0, "E:t:1: id is not valid UTF-8 (byte 1)\n");
    EXPECT("\xed\xa0\x80\n", EF_INPUT_LINES, NULL, 0, "E:t:1: id is not valid UTF-8 (byte 1)\n");
    EXPECT("a\0b\n", EF_INPUT_LINES, NULL, 0, "E:t:1: id contains control character 0x00 at byte 2\n");
    char big[700];
    memset(big, 'x', 600);
    memcpy(big + 600, "\nok\n", 5);
    char *r = parse_all(big, 604, EF_INPUT_LINES, NULL, 0, 1);
    assert_string_equal(r, "E:t:1: id is 600 bytes, the limit is 512\n2:{\"id\":\"ok\"}\n");
    free(r);
}

static void test_long_line_bounded(void **st) {
    (void)st;
    size_t n = EF_INPUT_MAX_RECORD + 100;
    char *buf = malloc(n + 10);
    memset(buf, 'a', n);
    memcpy(buf + n, "\nb\n", 3);
    char *r = parse_all(buf, n + 3, EF_INPUT_LINES, NULL, 4096, 1);
    assert_string_equal(r, "E:t:1: line is longer than 1048576 bytes\n2:{\"id\":\"b\"}\n");
    free(r);
    free(buf);
}

static void test_csv(void **st) {
    (void)st;
    EXPECT("id,title,year\n1,A,1999\n2,\"B, the \"\"2nd\"\"\",2001\n", EF_INPUT_CSV, NULL, 0,
           "2:{\"id\":\"1\",\"title\":\"A\",\"year\":\"1999\"}\n"
           "3:{\"id\":\"2\",\"title\":\"B, the \\\"2nd\\\"\",\"year\":\"2001\"}\n");
    EXPECT("\xef\xbb\xbfid,t\r\n1,\"multi\r\nline\"\r\n\r\n2,x\r\n", EF_INPUT_CSV, NULL, 0,
           "2:{\"id\":\"1\",\"t\":\"multi\\r\\nline\"}\n5:{\"id\":\"2\",\"t\":\"x\"}\n");
    EXPECT("\xef\xbb\xbf\"id\",t\n1,x\n", EF_INPUT_CSV, NULL, 0, "2:{\"id\":\"1\",\"t\":\"x\"}\n");
    EXPECT("t,isbn,id\nA,9,old\n", EF_INPUT_CSV, "isbn", 0,
           "2:{\"id\":\"9\",\"t\":\"A\",\"isbn\":\"9\"}\n");
    EXPECT("id\n1\n2", EF_INPUT_CSV, NULL, 0, "2:{\"id\":\"1\"}\n3:{\"id\":\"2\"}\n");
    EXPECT("id,t\n1,\n", EF_INPUT_CSV, NULL, 0, "2:{\"id\":\"1\",\"t\":\"\"}\n");
}

static void test_csv_errors(void **st) {
    (void)st;
    EXPECT("", EF_INPUT_CSV, NULL, 0, "E:t: empty input: no CSV header\n");
    EXPECT("name,t\n1,2\n", EF_INPUT_CSV, NULL, 0,
           "E:t:1: no column 'id' in the CSV header (columns: name, t); use --id-field\n");
    EXPECT("id,id\n", EF_INPUT_CSV, NULL, 0, "E:t:1: CSV header names column 'id' twice\n");
    EXPECT("id,\n", EF_INPUT_CSV, NULL, 0, "E:t:1: CSV header column 2 has no name\n");
    EXPECT("id,t\n1\n2,b\n", EF_INPUT_CSV, NULL, 1,
           "E:t:2: 1 fields, the header has 2\n3:{\"id\":\"2\",\"t\":\"b\"}\n");
    EXPECT("id,t\n\"1\"x,b\n2,c\n", EF_INPUT_CSV, NULL, 1,
           "E:t:2: unexpected character after a closing quote in field 1\n3:{\"id\":\"2\",\"t\":\"c\"}\n");
    EXPECT("id,t\n1,\"open\n2,c\n", EF_INPUT_CSV, NULL, 1, "E:t:2: unterminated quoted field\n");
    EXPECT("id,t\n ,b\n", EF_INPUT_CSV, NULL, 0, "E:t:2: missing id (column 'id' is empty)\n");
    EXPECT("id,t\n1,\xff\n", EF_INPUT_CSV, NULL, 0, "E:t:2: invalid UTF-8 in field 2\n");
    EXPECT("id,t\n1,a\0b\n2,c\n", EF_INPUT_CSV, NULL, 1, "E:t:2: NUL byte in field 2\n3:{\"id\":\"2\",\"t\":\"c\"}\n");
}

static void test_ndjson(void **st) {
    (void)st;
    EXPECT("{\"id\":\"a\",\"n\":1}\n\n{\"x\":[1,{\"y\":null}],\"id\":42}\n", EF_INPUT_NDJSON, NULL, 0,
           "1:{\"id\":\"a\",\"n\":1}\n3:{\"id\":\"42\",\"x\":[1,{\"y\":null}]}\n");
    EXPECT("{\"sku\":\"s1\",\"id\":\"other\"}\n", EF_INPUT_NDJSON, "sku", 0,
           "1:{\"id\":\"s1\",\"sku\":\"s1\"}\n");
    EXPECT("{\"id\":\"1\"}\n{bad\n{\"id\":\"3\"}\n", EF_INPUT_NDJSON, NULL, 1,
           "1:{\"id\":\"1\"}\nE:t:2: malformed JSON\n3:{\"id\":\"3\"}\n");
    EXPECT("{\"id\":\"1\"} x\n", EF_INPUT_NDJSON, NULL, 0, "E:t:1: malformed JSON (trailing characters)\n");
    EXPECT("[1]\n", EF_INPUT_NDJSON, NULL, 0, "E:t:1: not a JSON object\n");
    EXPECT("{\"a\":1}\n", EF_INPUT_NDJSON, NULL, 0, "E:t:1: missing id (no field 'id')\n");
    EXPECT("{\"id\":true}\n", EF_INPUT_NDJSON, NULL, 0,
           "E:t:1: field 'id' must be a string or an integer\n");
    EXPECT("{\"id\":\"\\u0001\"}\n", EF_INPUT_NDJSON, NULL, 0,
           "E:t:1: id contains control character 0x01 at byte 1\n");
    EXPECT("{\"id\":\"\xff\"}\n", EF_INPUT_NDJSON, NULL, 0, "E:t:1: invalid UTF-8 at byte 8\n");
}

static int count_tick(void *arg) {
    (*(int *)arg)++;
    return 0;
}

/* The tick fires every idle_ms while a producer trickles bytes that never
 * leave the reader idle (a byte every 20 ms for 600 ms, then a newline):
 * the enqueuer's heartbeat hangs on it. */
static void test_tick_on_trickle(void **st) {
    int fds[2], ticks = 0;
    ef_entity_t e;
    char err[EF_ERR_LEN];
    (void)st;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        for (int i = 0; i < 30; i++) {
            if (write(fds[1], "7", 1) != 1)
                _exit(1);
            usleep(20000);
        }
        _exit(write(fds[1], "\n", 1) == 1 ? 0 : 1);
    }
    close(fds[1]);
    ef_input_t *in = ef_input_open_fd(fds[0], EF_INPUT_LINES, NULL, "pipe");
    ef_input_set_idle(in, 100, count_tick, &ticks);
    assert_int_equal(ef_input_next(in, &e, err), 1);
    assert_int_equal(e.id_len, 30);
    assert_int_equal(ef_input_next(in, &e, err), 0);
    ef_input_free(in);
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(ticks >= 3);
}

static void test_utf8_and_json(void **st) {
    (void)st;
    size_t bad = 0;
    assert_true(ef_utf8_valid("abc", 3, NULL));
    assert_true(ef_utf8_valid("\xf0\x9f\x98\x80", 4, NULL));
    assert_false(ef_utf8_valid("\xf0\x9f\x98", 3, &bad));
    assert_int_equal(bad, 0);
    assert_false(ef_utf8_valid("ab\xf4\x90\x80\x80", 6, &bad)); /* > U+10FFFF */
    assert_int_equal(bad, 2);
    ef_buf_t b;
    ef_buf_init(&b);
    ef_buf_append_json_str(&b, "a\"\\\n\x01z", 6);
    assert_string_equal(b.s, "\"a\\\"\\\\\\n\\u0001z\"");
    ef_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),       cmocka_unit_test(test_lines_errors),
        cmocka_unit_test(test_long_line_bounded), cmocka_unit_test(test_csv),
        cmocka_unit_test(test_csv_errors),  cmocka_unit_test(test_ndjson),
        cmocka_unit_test(test_utf8_and_json), cmocka_unit_test(test_tick_on_trickle),
    };
    return cmocka_run_group_tests_name("input", tests, NULL, NULL);
}
