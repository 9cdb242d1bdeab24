// SPDX-License-Identifier: MIT
/*
 * statusd's HTTP/1.1 request parser: pure (no I/O, no allocation), bounded
 * and incremental, in the manner of picohttpparser.
 *
 * The connection keeps the bytes it has received in one buffer and calls
 * ef_sd_http_parse() after every read with the whole unconsumed part.  The
 * parser remembers only offsets and how far it has scanned, so the caller
 * may move or grow the buffer between calls, and bytes may be split at any
 * position: the result is the same as for one call with everything.
 *
 * Results:
 *   > 0  a whole request (head and body) is in buf; the value is its length
 *        in bytes, and the next pipelined request starts right after it;
 *   0    more bytes are needed (r->head_done tells whether the head is in,
 *        which is when "Expect: 100-continue" is answered);
 *   < 0  the request is malformed: the value is minus the HTTP status to
 *        answer (400, 413, 431, 501, 505) and r->why says why in words.
 *        The connection cannot be trusted past this point: answer and close.
 *
 * Limits: request line and headers EF_SD_HTTP_MAX_HEAD bytes (431), at most
 * EF_SD_HTTP_MAX_HEADERS header lines (431), the body max_body bytes (413,
 * known from Content-Length before any byte of the body arrives).  Request
 * bodies must come with Content-Length; Transfer-Encoding is refused (501).
 * Line ends may be CRLF or a bare LF; a bare CR, an obsolete folded header,
 * a control character or a space where a token belongs is a 400.
 */
#ifndef EF_SD_HTTP_H
#define EF_SD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define EF_SD_HTTP_MAX_HEAD 8192          /* bytes: request line + headers + blank line */
#define EF_SD_HTTP_MAX_BODY (1024 * 1024) /* bytes: default body limit */
#define EF_SD_HTTP_MAX_HEADERS 64

/* A span of the caller's buffer, as an offset from the request's start. */
typedef struct {
    uint32_t off;
    uint32_t len;
} ef_sd_http_span_t;

typedef struct {
    ef_sd_http_span_t name;
    ef_sd_http_span_t value; /* without surrounding spaces */
} ef_sd_http_header_t;

typedef struct {
    /* valid once head_done is set */
    ef_sd_http_span_t method;
    ef_sd_http_span_t target; /* origin-form: path[?query] */
    int minor;                /* HTTP/1.<minor>: 0 or 1 */
    ef_sd_http_header_t headers[EF_SD_HTTP_MAX_HEADERS];
    size_t nheaders;
    size_t head_len;       /* bytes up to and including the blank line */
    size_t content_length; /* bytes of body (0 without Content-Length) */
    int keep_alive;        /* the connection may carry another request */
    int expect_continue;   /* "Expect: 100-continue" was sent */
    int head_done;
    /* scan state between calls */
    size_t scanned;
    const char *why; /* static text for an error result */
} ef_sd_http_req_t;

/* Prepares r for a new request (also between pipelined requests). */
void ef_sd_http_req_init(ef_sd_http_req_t *r);

/* Parses the request at the start of buf[0..len).  See the top of this file
 * for the results.  max_body is the largest body accepted. */
long ef_sd_http_parse(ef_sd_http_req_t *r, const char *buf, size_t len, size_t max_body);

/* The value of the first header named name (case-insensitive), or NULL;
 * *len gets its length.  buf is the buffer the request was parsed from. */
const char *ef_sd_http_header(const ef_sd_http_req_t *r, const char *buf, const char *name,
                              size_t *len);

/* Percent-decodes s[0..n) into out (NUL-terminated); '+' becomes a space
 * when plus_space is set.  Returns the decoded length, or -1 on a bad
 * escape, a NUL or control byte, or when out (outlen bytes) is too small. */
long ef_sd_http_pct_decode(const char *s, size_t n, char *out, size_t outlen, int plus_space);

/* Looks up name in a query string (a=1&b=2, without the '?') and decodes
 * its value into out.  Returns 1 when found, 0 when absent, -1 when the
 * value is malformed or longer than outlen - 1. */
int ef_sd_http_query_get(const char *q, size_t n, const char *name, char *out, size_t outlen);

/* The reason phrase of a status code ("Not Found"); "Unknown" otherwise. */
const char *ef_sd_http_reason(int status);

#endif
