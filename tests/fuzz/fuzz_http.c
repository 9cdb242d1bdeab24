// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: statusd's HTTP request parser (statusd/http.c).
 *
 * The first input byte picks a split position; the rest is the bytes a
 * client sent.  The parser sees the first part alone, then everything, as
 * it would across two reads, and the result must equal a single call with
 * everything (http.h promises that bytes may be split anywhere).  Each part
 * lives in its own exactly sized heap block, so ASan catches a read one
 * byte past what arrived.  Every complete request is then checked (spans
 * inside the head, header lookups, the query and percent-decoding helpers)
 * and the pipelined requests after it are parsed the same way.
 */
#include "http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PIPELINED 16
#define FUZZ_MAX_BODY 1024 /* bytes: small, so 413 is reachable */

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_span(ef_sd_http_span_t s, size_t limit) {
    CHECK((size_t)s.off + s.len <= limit);
}

/* Checks a parsed request and drives the helpers over its target. */
static void check_request(const ef_sd_http_req_t *r, const char *buf, size_t len, long total) {
    char out[64], big[EF_SD_HTTP_MAX_HEAD];
    size_t vl = 0;
    CHECK(r->head_done);
    CHECK(r->head_len <= EF_SD_HTTP_MAX_HEAD && r->head_len <= len);
    CHECK((size_t)total == r->head_len + r->content_length && (size_t)total <= len);
    CHECK(r->content_length <= FUZZ_MAX_BODY);
    CHECK(r->minor == 0 || r->minor == 1);
    CHECK(r->nheaders <= EF_SD_HTTP_MAX_HEADERS);
    check_span(r->method, r->head_len);
    check_span(r->target, r->head_len);
    CHECK(r->method.len > 0 && r->target.len > 0);
    for (size_t i = 0; i < r->nheaders; i++) {
        check_span(r->headers[i].name, r->head_len);
        check_span(r->headers[i].value, r->head_len);
        CHECK(r->headers[i].name.len > 0);
    }
    const char *v = ef_sd_http_header(r, buf, "host", &vl);
    if (v)
        CHECK(v >= buf && v + vl <= buf + r->head_len);
    if (r->minor == 1)
        CHECK(v != NULL);
    (void)ef_sd_http_header(r, buf, "content-length", &vl);

    const char *t = buf + r->target.off;
    size_t tn = r->target.len;
    const char *q = memchr(t, '?', tn);
    size_t pn = q ? (size_t)(q - t) : tn;
    long d = ef_sd_http_pct_decode(t, pn, out, sizeof out, 0);
    if (d >= 0)
        CHECK((size_t)d < sizeof out && out[d] == '\0' && strlen(out) == (size_t)d);
    d = ef_sd_http_pct_decode(t, pn, big, sizeof big, 0);
    if (d >= 0)
        CHECK((size_t)d <= pn && strlen(big) == (size_t)d);
    if (q) {
        static const char *const names[] = {"queue", "limit", "cursor", "status", "outcome", ""};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            int g = ef_sd_http_query_get(q + 1, tn - pn - 1, names[i], out, sizeof out);
            CHECK(g >= -1 && g <= 1);
            if (g == 1)
                CHECK(strlen(out) < sizeof out);
        }
    }
    (void)ef_sd_http_reason((int)(total % 600));
}

/* Parses buf[0..len) in one call. */
static long parse_once(ef_sd_http_req_t *r, const char *buf, size_t len) {
    ef_sd_http_req_init(r);
    return ef_sd_http_parse(r, buf, len, FUZZ_MAX_BODY);
}

/* Parses buf[0..len) as two reads, the first of split bytes; each call sees
 * a heap block of exactly the bytes received so far. */
static long parse_split(ef_sd_http_req_t *r, const char *buf, size_t len, size_t split) {
    long rc;
    ef_sd_http_req_init(r);
    if (split > 0 && split < len) {
        char *part = malloc(split);
        memcpy(part, buf, split);
        rc = ef_sd_http_parse(r, part, split, FUZZ_MAX_BODY);
        free(part);
        if (rc != 0)
            return rc;
    }
    return ef_sd_http_parse(r, buf, len, FUZZ_MAX_BODY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ef_sd_http_req_t r1, r2;
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    size_t split = len ? (size_t)data[0] * len / 255 : 0;

    size_t at = 0;
    for (int n = 0; n < MAX_PIPELINED && at < len; n++) {
        const char *b = buf + at;
        size_t bl = len - at;
        long whole = parse_once(&r1, b, bl);
        long parts = parse_split(&r2, b, bl, n == 0 ? split : bl / 2);
        if (whole != parts) {
            fprintf(stderr, "split changes the result: whole %ld, split %ld\n", whole, parts);
            abort();
        }
        if (whole < 0) {
            CHECK(whole == -400 || whole == -413 || whole == -431 || whole == -501 ||
                  whole == -505);
            CHECK(r1.why != NULL && r1.why[0] != '\0');
            break;
        }
        if (whole == 0) {
            CHECK(bl <= EF_SD_HTTP_MAX_HEAD || r1.head_done);
            break;
        }
        check_request(&r1, b, bl, whole);
        at += (size_t)whole;
    }
    free(buf);
    return 0;
}
