// SPDX-License-Identifier: MIT
/*
 * http.c: the mock provider's HTTP/1.1 wire format. mp_http_parse() reads one
 * request head from a byte buffer: it never reads past `len`, never looks at
 * more than MP_HEAD_MAX_BYTES, and can resume its search for the end of the
 * head where the previous call stopped, so a head arriving byte by byte costs
 * linear time. It only understands what the provider needs (method, target,
 * version, Content-Length, Connection) and rejects anything ambiguous
 * (folded lines, bare CR, duplicate lengths, Transfer-Encoding). The rest of
 * the file is query-string splitting, percent decoding and response heads,
 * plus a self-test that feeds sample requests split at every byte.
 */
#include "mockprov.h"

#include <stdlib.h>
#include <string.h>

/* ---- Request heads ---- */

/* RFC 9110 token characters. */
static int mp_http_is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Finds the line starting at *p; sets [*ls, *ls + *ll) to it without its LF
 * (and CR), moves *p past it. The caller guarantees a LF before `e`. */
static void mp_http_line(const char **p, const char *e, const char **ls,
                         size_t *ll)
{
    const char *s = *p;
    const char *nl = memchr(s, '\n', (size_t)(e - s));
    const char *le = nl;
    if (le > s && le[-1] == '\r')
        le--;
    *ls = s;
    *ll = (size_t)(le - s);
    *p = nl + 1;
}

/* Applies one Content-Length value; -1 if malformed or contradicting. */
static int mp_http_content_length(mp_http_req *req, int *seen, const char *v,
                                  size_t n)
{
    uint64_t len;
    if (mp_parse_u64(v, n, UINT64_MAX / 2, &len) != 0)
        return -1;
    if (*seen && req->content_length != len)
        return -1;
    *seen = 1;
    req->content_length = len;
    return 0;
}

/* Reads the comma-separated tokens of a Connection header. */
static void mp_http_connection(mp_http_req *req, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (mp_mem_ieq(v + s, e - s, "close", 5))
            req->conn_close = 1;
    }
}

/* Parses the request line and the headers of a complete head buf[0..end). */
static int mp_http_parse_head(const char *buf, size_t end, mp_http_req *req)
{
    const char *p = buf, *e = buf + end, *ls;
    size_t ll, i = 0;
    int seen_length = 0;

    mp_http_line(&p, e, &ls, &ll);
    while (i < ll && mp_http_is_tchar((unsigned char)ls[i]))
        i++;
    if (i == 0 || i >= ll || ls[i] != ' ')
        return MP_HTTP_EBAD;
    req->method = ls;
    req->method_len = i;
    size_t t = ++i;
    while (i < ll && (unsigned char)ls[i] > 0x20 && (unsigned char)ls[i] < 0x7f)
        i++;
    if (i == t || i >= ll || ls[i] != ' ' || ls[t] != '/')
        return MP_HTTP_EBAD;
    req->target = ls + t;
    req->target_len = i - t;
    i++;
    if (ll - i != 8 || memcmp(ls + i, "HTTP/1.", 7) != 0 ||
        (ls[i + 7] != '0' && ls[i + 7] != '1'))
        return MP_HTTP_EBAD;
    req->minor = ls[i + 7] - '0';

    for (;;) {
        mp_http_line(&p, e, &ls, &ll);
        if (ll == 0)
            break;
        for (i = 0; i < ll && mp_http_is_tchar((unsigned char)ls[i]); i++)
            ;
        if (i == 0 || i >= ll || ls[i] != ':')
            return MP_HTTP_EBAD; /* also folded lines and "Name :" */
        size_t name_len = i++;
        for (size_t j = i; j < ll; j++) {
            unsigned char ch = (unsigned char)ls[j];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return MP_HTTP_EBAD; /* CTLs, including a bare CR */
        }
        while (i < ll && (ls[i] == ' ' || ls[i] == '\t'))
            i++;
        size_t ve = ll;
        while (ve > i && (ls[ve - 1] == ' ' || ls[ve - 1] == '\t'))
            ve--;
        const char *v = ls + i;
        size_t vn = ve - i;
        if (mp_mem_ieq(ls, name_len, "content-length", 14)) {
            if (mp_http_content_length(req, &seen_length, v, vn) != 0)
                return MP_HTTP_EBAD;
        } else if (mp_mem_ieq(ls, name_len, "transfer-encoding", 17)) {
            return MP_HTTP_EENCODING;
        } else if (mp_mem_ieq(ls, name_len, "connection", 10)) {
            mp_http_connection(req, v, vn);
        } else if (mp_mem_ieq(ls, name_len, "authorization", 13)) {
            req->authorization = v;
            req->authorization_len = vn;
        }
    }
    if (req->content_length > MP_BODY_MAX_BYTES)
        return MP_HTTP_EBODY;
    return (int)end;
}

/* Parses one request head at the start of buf[0..len). Returns the head's
 * length (> 0) when complete, 0 when more bytes are needed, or a negative
 * MP_HTTP_E* code. *scan carries the search position between calls on the
 * same (growing) buffer; set it to 0 for a new request. The caller skips
 * blank lines before a request. Pointers in *req point into `buf`. */
int mp_http_parse(const char *buf, size_t len, size_t *scan, mp_http_req *req)
{
    size_t limit = len < MP_HEAD_MAX_BYTES ? len : MP_HEAD_MAX_BYTES;
    size_t i = *scan, end = 0;

    for (; i < limit; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 >= limit)
            break;
        if (buf[i + 1] == '\n') {
            end = i + 2;
            break;
        }
        if (buf[i + 1] == '\r') {
            if (i + 2 >= limit)
                break;
            if (buf[i + 2] == '\n') {
                end = i + 3;
                break;
            }
        }
    }
    if (end == 0) {
        *scan = i;
        return len >= MP_HEAD_MAX_BYTES ? MP_HTTP_EHEAD : 0;
    }
    memset(req, 0, sizeof(*req));
    return mp_http_parse_head(buf, end, req);
}

/* ---- Query strings ---- */

/* Returns 1 with the next non-empty key=value pair of the query string at
 * *cur (raw, not decoded; the value is empty when there is no '='), or 0 at
 * the end. */
int mp_http_query_next(const char **cur, const char *end, const char **key,
                       size_t *key_len, const char **val, size_t *val_len)
{
    const char *p = *cur;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        *cur = amp ? amp + 1 : end;
        if (pe > p) {
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            *key = p;
            *key_len = (size_t)((eq ? eq : pe) - p);
            *val = eq ? eq + 1 : pe;
            *val_len = (size_t)(pe - *val);
            return 1;
        }
        p = *cur;
    }
    return 0;
}

static int mp_http_hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..n) into dst (at most `cap` bytes), '+' as a space.
 * An invalid escape is copied as is. Returns the decoded length, or
 * (size_t)-1 if it does not fit. */
size_t mp_http_pct_decode(char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%' && i + 2 < n) {
            int hi = mp_http_hexval(src[i + 1]);
            int lo = mp_http_hexval(src[i + 2]);
            if (hi >= 0 && lo >= 0) {
                ch = (char)(hi * 16 + lo);
                i += 2;
            }
        }
        if (o >= cap)
            return (size_t)-1;
        dst[o++] = ch;
    }
    return o;
}

/* ---- Responses ---- */

const char *mp_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* Writes a response head into dst, with the header lines in extra (may be
 * NULL); UINT64_MAX as content_length means chunked.  Returns its length (0
 * if cap is too small, which a caller with 512 bytes never sees). */
size_t mp_http_head(char *dst, size_t cap, int status, uint64_t content_length,
                    int close, const char *extra)
{
    char clen[48];
    if (content_length == UINT64_MAX)
        snprintf(clen, sizeof(clen), "Transfer-Encoding: chunked\r\n");
    else
        snprintf(clen, sizeof(clen), "Content-Length: %llu\r\n",
                 (unsigned long long)content_length);
    int n = snprintf(dst, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "%s%s%s\r\n",
                     status, mp_http_reason(status), clen, extra ? extra : "",
                     close ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

/* ---- Self-test ---- */

typedef struct mp_http_case {
    const char *text;
    int expect; /* > 0: complete; 0: incomplete; < 0: error code */
} mp_http_case;

/* Parses `text` whole, then split at every byte (resuming the scan), and
 * checks both agree with the expected outcome. Returns failures. */
static int mp_http_selftest_one(const mp_http_case *tc)
{
    size_t n = strlen(tc->text);
    size_t scan = 0;
    mp_http_req whole, part;
    int failures = 0;
    int rc = mp_http_parse(tc->text, n, &scan, &whole);
    int want = tc->expect > 0 ? (int)n : tc->expect;

    if (rc != want) {
        fprintf(stderr, "http selftest: %d != %d for %.40s\n", rc, want,
                tc->text);
        return 1;
    }
    for (size_t k = 0; k < n; k++) {
        char *copy = mp_xmalloc(n);
        memcpy(copy, tc->text, n);
        scan = 0;
        int first = mp_http_parse(copy, k, &scan, &part);
        int second = mp_http_parse(copy, n, &scan, &part);
        if ((first != 0 && first != want) || second != want) {
            fprintf(stderr, "http selftest: split %zu: %d/%d != %d\n", k,
                    first, second, want);
            failures++;
        } else if (want > 0 &&
                   (part.target_len != whole.target_len ||
                    part.content_length != whole.content_length ||
                    part.conn_close != whole.conn_close)) {
            fprintf(stderr, "http selftest: split %zu: fields differ\n", k);
            failures++;
        }
        free(copy);
    }
    return failures;
}

/* Runs the parser self-test; returns the number of failures. */
int mp_http_selftest(void)
{
    static const mp_http_case cases[] = {
        {"GET /item/1 HTTP/1.1\r\nHost: x\r\n\r\n", 1},
        {"GET /item/1 HTTP/1.0\n\n", 1},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nConnection: a, close\r\n\r\n",
         1},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
         MP_HTTP_EBAD},
        {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", MP_HTTP_EBAD},
        {"GET / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", MP_HTTP_EBODY},
        {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
         MP_HTTP_EENCODING},
        {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", MP_HTTP_EBAD},
        {"GET / HTTP/1.1\r\n folded\r\n\r\n", MP_HTTP_EBAD},
        {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", MP_HTTP_EBAD},
        {"GET / HTTP/2.0\r\n\r\n", MP_HTTP_EBAD},
        {"GET  / HTTP/1.1\r\n\r\n", MP_HTTP_EBAD},
        {"GET x HTTP/1.1\r\n\r\n", MP_HTTP_EBAD},
        {"\x01\x02\x03\n\n", MP_HTTP_EBAD},
        {"GET /a\x80 HTTP/1.1\r\n\r\n", MP_HTTP_EBAD},
        {"GET / HTTP/1.1\r\nHost: x\r\n", 0},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        failures += mp_http_selftest_one(&cases[i]);

    /* A head one byte over the cap is refused, one at the cap accepted. */
    for (int over = 0; over <= 1; over++) {
        size_t n = MP_HEAD_MAX_BYTES + (size_t)over;
        char *big = mp_xmalloc(n);
        size_t scan = 0;
        mp_http_req req;
        static const char start[] = "GET / HTTP/1.1\r\nX: ";
        memcpy(big, start, sizeof(start) - 1);
        memset(big + sizeof(start) - 1, 'a', n - (sizeof(start) - 1) - 4);
        memcpy(big + n - 4, "\r\n\r\n", 4);
        int rc = mp_http_parse(big, n, &scan, &req);
        if (rc != (over ? MP_HTTP_EHEAD : (int)n)) {
            fprintf(stderr, "http selftest: cap test %d gave %d\n", over, rc);
            failures++;
        }
        free(big);
    }

    /* Percent decoding, including truncated escapes at the end. */
    char out[32];
    size_t n = mp_http_pct_decode(out, sizeof(out), "a+b%20c%4", 9);
    if (n != 7 || memcmp(out, "a b c%4", 7) != 0) {
        fprintf(stderr, "http selftest: pct decode\n");
        failures++;
    }
    n = mp_http_pct_decode(out, 2, "abc", 3);
    if (n != (size_t)-1) {
        fprintf(stderr, "http selftest: pct decode overflow\n");
        failures++;
    }
    return failures;
}
