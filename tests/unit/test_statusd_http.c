// SPDX-License-Identifier: MIT
/*
 * Unit tests of statusd's HTTP request parser (statusd/http.c).
 *
 * Every input is also fed split at every byte position, incrementally with
 * the same parser state, from a fresh copy that ends right at a guard page
 * (picohttpparser's trick): the parser may keep no pointer into an earlier
 * buffer, may never read past the bytes it is given, and must give the same
 * answer whatever the split.  Malformed inputs must give their 4xx/5xx on
 * the whole input, and nothing else (or "more please") on every prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../statusd/http.h"

#define MAXB (1024 * 1024)

/* ---- Guard page buffers ---- */

static char *guard_base;
static size_t guard_len;

/* Returns a copy of s[0..n) whose last byte is the last before a page that
 * cannot be read. */
static char *guarded(const char *s, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    size_t data = ((n + (size_t)page - 1) / (size_t)page) * (size_t)page;
    if (guard_base)
        munmap(guard_base, guard_len);
    guard_len = data + (size_t)page;
    guard_base = mmap(NULL, guard_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(guard_base != MAP_FAILED);
    assert_int_equal(mprotect(guard_base + data, (size_t)page, PROT_NONE), 0);
    char *p = guard_base + data - n;
    if (n)
        memcpy(p, s, n);
    return p;
}

static long parse_whole(const char *s, size_t n, ef_sd_http_req_t *r, size_t max_body) {
    ef_sd_http_req_init(r);
    return ef_sd_http_parse(r, guarded(s, n), n, max_body);
}

/* Feeds s growing one byte at a time (same state), then split in two at
 * every position; every answer must match `want` once all bytes are in and
 * be 0 or `want` before. */
static void expect_splits(const char *s, size_t n, long want, size_t max_body) {
    ef_sd_http_req_t r, whole;
    long got;
    assert_int_equal(parse_whole(s, n, &whole, max_body), want);
    ef_sd_http_req_init(&r);
    for (size_t k = 1; k <= n; k++) {
        got = ef_sd_http_parse(&r, guarded(s, k), k, max_body);
        if (got != 0 && got != want)
            fail_msg("prefix of %zu/%zu bytes gave %ld, whole gives %ld", k, n, got, want);
        if (got < 0) {
            assert_int_equal(got, want);
            break;
        }
        if (got > 0) {
            assert_int_equal(got, want);
            break;
        }
    }
    for (size_t k = 0; k <= n; k++) {
        ef_sd_http_req_init(&r);
        got = ef_sd_http_parse(&r, guarded(s, k), k, max_body);
        if (got != 0 && got != want)
            fail_msg("split at %zu/%zu: first part gave %ld, whole gives %ld", k, n, got, want);
        if (got == 0)
            got = ef_sd_http_parse(&r, guarded(s, n), n, max_body);
        if (got != want)
            fail_msg("split at %zu/%zu gave %ld, whole gives %ld", k, n, got, want);
        if (want > 0) {
            assert_int_equal(r.method.len, whole.method.len);
            assert_int_equal(r.target.off, whole.target.off);
            assert_int_equal(r.nheaders, whole.nheaders);
            assert_int_equal(r.content_length, whole.content_length);
            assert_int_equal(r.keep_alive, whole.keep_alive);
        }
    }
}

#define S(lit) lit, sizeof(lit) - 1

static const char *span(const char *buf, ef_sd_http_span_t sp, char *out, size_t len) {
    snprintf(out, len, "%.*s", (int)sp.len, buf + sp.off);
    return out;
}

/* ---- Valid requests ---- */

static void test_simple_get(void **state) {
    (void)state;
    static const char req[] =
        "GET /jobs/J1?queue=q HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\n\r\n";
    ef_sd_http_req_t r;
    char t[128];
    size_t vl;
    long n = parse_whole(S(req), &r, MAXB);
    const char *buf = guard_base ? guarded(req, sizeof req - 1) : NULL;
    assert_int_equal(n, (long)sizeof req - 1);
    assert_string_equal(span(buf, r.method, t, sizeof t), "GET");
    assert_string_equal(span(buf, r.target, t, sizeof t), "/jobs/J1?queue=q");
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(r.nheaders, 2);
    const char *v = ef_sd_http_header(&r, buf, "if-none-match", &vl);
    assert_non_null(v);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "\"a\"", 3);
    assert_null(ef_sd_http_header(&r, buf, "authorization", &vl));
    expect_splits(S(req), n, MAXB);
}

static void test_body_and_pipelining(void **state) {
    (void)state;
    static const char two[] = "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
                              "{\"ids\":[1]}GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t first = sizeof two - 1 - strlen("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    ef_sd_http_req_t r;
    assert_int_equal(parse_whole(S(two), &r, MAXB), (long)first);
    assert_int_equal(r.content_length, 11);
    assert_int_equal(r.head_len, first - 11);
    expect_splits(two, first, (long)first, MAXB);
    /* the second request, parsed from where the first ended */
    expect_splits(two + first, sizeof two - 1 - first, (long)(sizeof two - 1 - first), MAXB);
}

static void test_line_ends_and_leading_blank_lines(void **state) {
    (void)state;
    static const char lf[] = "GET / HTTP/1.0\nUser-Agent: t\n\n";
    static const char lead[] = "\r\n\r\nGET /health HTTP/1.1\r\nHost: h\r\n\r\n";
    static const char mixed[] = "GET / HTTP/1.1\r\nHost: h\n\r\n";
    ef_sd_http_req_t r;
    expect_splits(S(lf), (long)sizeof lf - 1, MAXB);
    assert_int_equal(parse_whole(S(lf), &r, MAXB), (long)sizeof lf - 1);
    assert_int_equal(r.keep_alive, 0); /* HTTP/1.0 closes by default */
    expect_splits(S(lead), (long)sizeof lead - 1, MAXB);
    expect_splits(S(mixed), (long)sizeof mixed - 1, MAXB);
}

static void test_keep_alive_rules(void **state) {
    (void)state;
    ef_sd_http_req_t r;
    parse_whole(S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), &r, MAXB);
    assert_int_equal(r.keep_alive, 1);
    parse_whole(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, close\r\n\r\n"), &r, MAXB);
    assert_int_equal(r.keep_alive, 0);
    parse_whole(S("GET / HTTP/1.1\r\nHost: a\r\nconnection: upgrade\r\n\r\n"), &r, MAXB);
    assert_int_equal(r.keep_alive, 1);
}

static void test_expect_continue(void **state) {
    (void)state;
    static const char req[] = "POST /jobs HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                              "Content-Length: 5\r\n\r\n";
    ef_sd_http_req_t r;
    ef_sd_http_req_init(&r);
    assert_int_equal(ef_sd_http_parse(&r, guarded(S(req)), sizeof req - 1, MAXB), 0);
    assert_int_equal(r.head_done, 1);
    assert_int_equal(r.expect_continue, 1);
    char full[200];
    snprintf(full, sizeof full, "%shello", req);
    assert_int_equal(ef_sd_http_parse(&r, guarded(full, strlen(full)), strlen(full), MAXB),
                     (long)strlen(full));
}

static void test_header_values_trimmed(void **state) {
    (void)state;
    static const char req[] = "GET / HTTP/1.1\r\nHost:   a  \t\r\nX-Empty:\r\n\r\n";
    ef_sd_http_req_t r;
    size_t vl;
    parse_whole(S(req), &r, MAXB);
    const char *buf = guarded(S(req));
    const char *v = ef_sd_http_header(&r, buf, "HOST", &vl);
    assert_int_equal(vl, 1);
    assert_memory_equal(v, "a", 1);
    v = ef_sd_http_header(&r, buf, "x-empty", &vl);
    assert_non_null(v);
    assert_int_equal(vl, 0);
}

/* ---- Malformed requests ---- */

typedef struct {
    const char *name;
    const char *req;
    long want;
} bad_t;

static void test_malformed(void **state) {
    (void)state;
    static const bad_t bad[] = {
        {"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
        {"no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", -400},
        {"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
        {"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", -400},
        {"version garbage", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", -400},
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505},
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", -505},
        {"no version", "GET /\r\nHost: a\r\n\r\n", -400},
        {"target not a path", "GET jobs HTTP/1.1\r\nHost: a\r\n\r\n", -400},
        {"absolute form", "GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", -400},
        {"control in target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", -400},
        {"method with slash", "GE/T / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
        {"tls hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", -400},
        {"binary", "\x00\x01\x02\x03", -400},
        {"bare CR in line", "GET / HTTP/1.1\rX\r\nHost: a\r\n\r\n", -400},
        {"bare CR in header", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", -400},
        {"folded header", "GET / HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n", -400},
        {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
        {"no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", -400},
        {"empty header name", "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", -400},
        {"control in value", "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", -400},
        {"missing host", "GET / HTTP/1.1\r\n\r\n", -400},
        {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400},
        {"bad content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", -400},
        {"negative content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
         -400},
        {"conflicting lengths",
         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", -400},
        {"chunked body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", -501},
        {"TE and CL",
         "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
         -400},
        {"body too large", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n", -413},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i].req);
        if (strcmp(bad[i].name, "binary") == 0)
            n = 4;
        ef_sd_http_req_t r;
        long got = parse_whole(bad[i].req, n, &r, MAXB);
        if (got != bad[i].want)
            fail_msg("%s: got %ld, want %ld", bad[i].name, got, bad[i].want);
        assert_non_null(r.why);
        expect_splits(bad[i].req, n, bad[i].want, MAXB);
    }
}

static void test_garbage_refused_early(void **state) {
    (void)state;
    ef_sd_http_req_t r;
    /* the first bad byte is enough: no waiting for 8 KiB of garbage */
    ef_sd_http_req_init(&r);
    assert_int_equal(ef_sd_http_parse(&r, guarded(S("\x16\x03")), 2, MAXB), -400);
    ef_sd_http_req_init(&r);
    assert_int_equal(ef_sd_http_parse(&r, guarded(S("GET /\x7f")), 6, MAXB), -400);
    ef_sd_http_req_init(&r);
    assert_int_equal(ef_sd_http_parse(&r, guarded(S("GET /ok")), 7, MAXB), 0);
}

static void test_limits(void **state) {
    (void)state;
    char *big = malloc(EF_SD_HTTP_MAX_HEAD * 2);
    ef_sd_http_req_t r;
    size_t n;
    /* a 10 KB header: 431, also when it arrives split and before its end */
    n = (size_t)snprintf(big, 64, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big + n, 'a', 10000 - n);
    memcpy(big + 10000 - 4, "\r\n\r\n", 4);
    assert_int_equal(parse_whole(big, 10000, &r, MAXB), -431);
    ef_sd_http_req_init(&r);
    assert_int_equal(
        ef_sd_http_parse(&r, guarded(big, EF_SD_HTTP_MAX_HEAD + 1), EF_SD_HTTP_MAX_HEAD + 1, MAXB),
        -431);
    expect_splits(big, 10000, -431, MAXB);
    /* exactly at the limit is fine */
    n = (size_t)snprintf(big, 64, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big + n, 'a', EF_SD_HTTP_MAX_HEAD - n);
    memcpy(big + EF_SD_HTTP_MAX_HEAD - 4, "\r\n\r\n", 4);
    assert_int_equal(parse_whole(big, EF_SD_HTTP_MAX_HEAD, &r, MAXB), EF_SD_HTTP_MAX_HEAD);
    /* a request line over the limit */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', EF_SD_HTTP_MAX_HEAD + 100);
    assert_int_equal(parse_whole(big, EF_SD_HTTP_MAX_HEAD + 100, &r, MAXB), -431);
    /* too many header lines */
    {
        char many[4096];
        size_t m = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: a\r\n");
        for (int i = 0; i < EF_SD_HTTP_MAX_HEADERS; i++)
            m += (size_t)snprintf(many + m, sizeof many - m, "X%d: v\r\n", i);
        m += (size_t)snprintf(many + m, sizeof many - m, "\r\n");
        assert_int_equal(parse_whole(many, m, &r, MAXB), -431);
    }
    /* the body limit is the caller's */
    assert_int_equal(
        parse_whole(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"), &r, 10), -413);
    free(big);
}

static void test_every_byte_value_in_method(void **state) {
    (void)state;
    /* no byte value makes the parser crash or accept a broken line */
    for (int c = 0; c < 256; c++) {
        char req[64];
        ef_sd_http_req_t r;
        int n = snprintf(req, sizeof req, "G%cT / HTTP/1.1\r\nHost: a\r\n\r\n", c ? c : 1);
        long got = parse_whole(req, (size_t)n, &r, MAXB);
        int tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c && strchr("!#$%&'*+-.^_`|~", c));
        if (tchar)
            assert_int_equal(got, n);
        else
            assert_true(got < 0);
    }
}

/* ---- Helpers ---- */

static void test_query_and_decoding(void **state) {
    (void)state;
    char out[32];
    static const char q[] = "queue=my.q&limit=5&status=&x&cursor=17%3Aab&s=a+b";
    assert_int_equal(ef_sd_http_query_get(S(q), "queue", out, sizeof out), 1);
    assert_string_equal(out, "my.q");
    assert_int_equal(ef_sd_http_query_get(S(q), "limit", out, sizeof out), 1);
    assert_string_equal(out, "5");
    assert_int_equal(ef_sd_http_query_get(S(q), "status", out, sizeof out), 1);
    assert_string_equal(out, "");
    assert_int_equal(ef_sd_http_query_get(S(q), "x", out, sizeof out), 1);
    assert_string_equal(out, "");
    assert_int_equal(ef_sd_http_query_get(S(q), "cursor", out, sizeof out), 1);
    assert_string_equal(out, "17:ab");
    assert_int_equal(ef_sd_http_query_get(S(q), "s", out, sizeof out), 1);
    assert_string_equal(out, "a b");
    assert_int_equal(ef_sd_http_query_get(S(q), "que", out, sizeof out), 0);
    assert_int_equal(ef_sd_http_query_get(S(q), "missing", out, sizeof out), 0);
    assert_int_equal(ef_sd_http_query_get(S("a=%zz"), "a", out, sizeof out), -1);
    assert_int_equal(ef_sd_http_query_get(S("a=%4"), "a", out, sizeof out), -1);
    assert_int_equal(ef_sd_http_query_get(S("a=%00"), "a", out, sizeof out), -1);
    assert_int_equal(ef_sd_http_query_get(S("a=0123456789"), "a", out, 5), -1);
    assert_int_equal(ef_sd_http_pct_decode(S("J%31"), out, sizeof out, 0), 2);
    assert_string_equal(out, "J1");
    assert_int_equal(ef_sd_http_pct_decode(S("a+b"), out, sizeof out, 0), 3);
    assert_string_equal(out, "a+b");
    assert_string_equal(ef_sd_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(ef_sd_http_reason(799), "Unknown");
}

/* ---- Mutations ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random damage to valid requests: whatever comes out, every split gives
 * the whole buffer's answer, and an accepted request's spans lie inside
 * the bytes it was given. */
static void test_mutations(void **state) {
    (void)state;
    static const char *const seeds[] = {
        "GET /jobs/J1?queue=default HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n",
        "POST /jobs HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
        "GET / HTTP/1.0\nConnection: keep-alive\n\n",
        "\r\nHEAD /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    };
    char buf[512];
    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[next_rand() % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = n ? next_rand() % n : 0;
            switch (next_rand() % 4) {
            case 0: buf[at] = (char)(next_rand() & 0xff); break;      /* replace */
            case 1: buf[at] ^= (char)(1 << (next_rand() % 8)); break; /* flip a bit */
            case 2:                                                   /* delete */
                if (n > 1) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
                break;
            default: /* insert */
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = "\r\n :/ab0\t\x7f"[next_rand() % 11];
                    n++;
                }
            }
        }
        ef_sd_http_req_t r;
        long want = parse_whole(buf, n, &r, MAXB);
        if (want > 0) {
            assert_true((size_t)want <= n);
            assert_true(r.head_len + r.content_length == (size_t)want);
            assert_true(r.method.off + r.method.len <= r.head_len);
            assert_true(r.target.off + r.target.len <= r.head_len);
            for (size_t h = 0; h < r.nheaders; h++)
                assert_true(r.headers[h].value.off + r.headers[h].value.len <= r.head_len);
        } else if (want < 0) {
            assert_non_null(r.why);
            assert_true(want == -400 || want == -413 || want == -431 || want == -501 ||
                        want == -505);
        }
        /* one random split, carried in the same state */
        size_t k = next_rand() % (n + 1);
        ef_sd_http_req_init(&r);
        long got = ef_sd_http_parse(&r, guarded(buf, k), k, MAXB);
        if (got == 0)
            got = ef_sd_http_parse(&r, guarded(buf, n), n, MAXB);
        if (got != want)
            fail_msg("mutation %d split at %zu/%zu gave %ld, whole gives %ld", iter, k, n, got,
                     want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_body_and_pipelining),
        cmocka_unit_test(test_line_ends_and_leading_blank_lines),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_header_values_trimmed),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_garbage_refused_early),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_every_byte_value_in_method),
        cmocka_unit_test(test_query_and_decoding),
        cmocka_unit_test(test_mutations),
    };
    int rc = cmocka_run_group_tests_name("statusd http parser", tests, NULL, NULL);
    if (guard_base)
        munmap(guard_base, guard_len);
    return rc;
}
