// SPDX-License-Identifier: MIT
/*
 * The HTTP/1.1 request parser (design in http.h), the query string and
 * percent-decoding helpers, and the reason phrases.  Nothing here does I/O
 * or allocates, so a fuzzer can drive ef_sd_http_parse() with any bytes.
 */
#include "http.h"
#include "ef_text.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: the characters of a token (method, header name). */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

#define IS_TCHAR(c) (tchar[(unsigned char)(c)] != 0)
/* request-target: visible ASCII, no space */
#define IS_TARGET(c) ((unsigned char)(c) > 0x20 && (unsigned char)(c) < 0x7f)
/* field-value: visible ASCII, obs-text, space and tab */
#define IS_VALUE(c) ((unsigned char)(c) >= 0x20 ? (unsigned char)(c) != 0x7f : (c) == '\t')

#define MAX_METHOD_LEN 32 /* bytes; longer tokens are not methods anyone uses */

void ef_sd_http_req_init(ef_sd_http_req_t *r) { memset(r, 0, sizeof *r); }

static long fail(ef_sd_http_req_t *r, int status, const char *why) {
    r->why = why;
    return -(long)status;
}

/* Bytes of empty lines before the request line (RFC 9112 2.2 allows them). */
static size_t leading_empty(const char *buf, size_t len) {
    size_t i = 0;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    return i;
}

/* Looks for the blank line ending the head, from r->scanned on.  Returns the
 * offset just past it, or 0 (and remembers where to resume). */
static size_t find_head_end(ef_sd_http_req_t *r, const char *buf, size_t len, size_t start) {
    size_t i = r->scanned > start ? r->scanned : start;
    for (; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 >= len)
            break;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r') {
            if (i + 2 >= len)
                break;
            if (buf[i + 2] == '\n')
                return i + 3;
        }
    }
    r->scanned = i;
    return 0;
}

/* Checks what has arrived of the request line before the whole head is in,
 * so that garbage is refused at once rather than after 8 KiB of it. */
static long check_partial_line(ef_sd_http_req_t *r, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && IS_TCHAR(s[i]))
        i++;
    if (i == n)
        return i > MAX_METHOD_LEN ? fail(r, 400, "method too long") : 0;
    if (s[i] != ' ' || i == 0)
        return fail(r, 400, "malformed request line");
    if (i > MAX_METHOD_LEN)
        return fail(r, 400, "method too long");
    for (i++; i < n && s[i] != ' ' && s[i] != '\r' && s[i] != '\n'; i++)
        if (!IS_TARGET(s[i]))
            return fail(r, 400, "malformed request target");
    return 0;
}

static int token_in_list(const char *v, size_t n, const char *tok) {
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t st = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > st && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - st == tl && strncasecmp(v + st, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* One line of the head: [s, e) without its line end.  Returns the end of
 * the line content and sets *next past its LF; a bare CR inside is an
 * error (returns NULL). */
static const char *line_end(const char *s, const char *end, const char **next) {
    const char *lf = memchr(s, '\n', (size_t)(end - s));
    const char *e = lf ? lf : end;
    *next = lf ? lf + 1 : end;
    if (e > s && e[-1] == '\r')
        e--;
    if (memchr(s, '\r', (size_t)(e - s)))
        return NULL;
    return e;
}

/* Parses the request line at base[0..n) into r; returns 0 or -status. */
static long parse_request_line(ef_sd_http_req_t *r, const char *base, const char *s,
                               const char *e) {
    const char *p = s, *v;
    while (p < e && IS_TCHAR(*p))
        p++;
    if (p == s || p == e || *p != ' ')
        return fail(r, 400, "malformed request line");
    if (p - s > MAX_METHOD_LEN)
        return fail(r, 400, "method too long");
    r->method.off = (uint32_t)(s - base);
    r->method.len = (uint32_t)(p - s);
    s = ++p;
    while (p < e && IS_TARGET(*p))
        p++;
    if (p == s || p == e || *p != ' ')
        return fail(r, 400, "malformed request target");
    if (*s != '/' && !(p - s == 1 && *s == '*'))
        return fail(r, 400, "request target must be a path");
    r->target.off = (uint32_t)(s - base);
    r->target.len = (uint32_t)(p - s);
    v = p + 1;
    if (e - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return fail(r, 400, "malformed HTTP version");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return fail(r, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    r->minor = v[7] - '0';
    return 0;
}

/* Parses a Content-Length value; -1 when it is not a plain decimal. */
static long long parse_length(const char *v, size_t n) {
    long long x = 0;
    if (n == 0 || n > 12)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

/* Parses the whole head base[0..n) (blank line included). */
static long parse_head(ef_sd_http_req_t *r, const char *base, size_t start, size_t n) {
    const char *end = base + n, *s = base + start, *next, *e;
    long long clen = -1;
    int hosts = 0, close = 0, keep = 0, te = 0;
    long rc;

    e = line_end(s, end, &next);
    if (!e)
        return fail(r, 400, "bare CR in request line");
    if ((rc = parse_request_line(r, base, s, e)) != 0)
        return rc;
    for (s = next; s < end; s = next) {
        const char *p = s, *v, *ve;
        e = line_end(s, end, &next);
        if (!e)
            return fail(r, 400, "bare CR in header");
        if (e == s)
            break; /* the blank line */
        if (*s == ' ' || *s == '\t')
            return fail(r, 400, "obsolete header line folding");
        while (p < e && IS_TCHAR(*p))
            p++;
        if (p == s || p == e || *p != ':')
            return fail(r, 400, "malformed header name");
        if (r->nheaders == EF_SD_HTTP_MAX_HEADERS)
            return fail(r, 431, "too many header lines");
        v = p + 1;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        ve = e;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *q = v; q < ve; q++)
            if (!IS_VALUE(*q))
                return fail(r, 400, "control character in header value");
        ef_sd_http_header_t *h = &r->headers[r->nheaders++];
        h->name.off = (uint32_t)(s - base);
        h->name.len = (uint32_t)(p - s);
        h->value.off = (uint32_t)(v - base);
        h->value.len = (uint32_t)(ve - v);
        size_t nl = (size_t)(p - s), vl = (size_t)(ve - v);
        if (nl == 14 && strncasecmp(s, "content-length", 14) == 0) {
            long long x = parse_length(v, vl);
            if (x < 0)
                return fail(r, 400, "malformed Content-Length");
            if (clen >= 0 && clen != x)
                return fail(r, 400, "conflicting Content-Length headers");
            clen = x;
        } else if (nl == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
            te = 1;
        } else if (nl == 4 && strncasecmp(s, "host", 4) == 0) {
            hosts++;
        } else if (nl == 10 && strncasecmp(s, "connection", 10) == 0) {
            close |= token_in_list(v, vl, "close");
            keep |= token_in_list(v, vl, "keep-alive");
        } else if (nl == 6 && strncasecmp(s, "expect", 6) == 0) {
            if (vl == 12 && strncasecmp(v, "100-continue", 12) == 0)
                r->expect_continue = 1;
        }
    }
    if (te && clen >= 0)
        return fail(r, 400, "both Transfer-Encoding and Content-Length");
    if (te)
        return fail(r, 501, "Transfer-Encoding is not supported: send Content-Length");
    if (r->minor == 1 && hosts != 1)
        return fail(r, 400, hosts ? "more than one Host header" : "missing Host header");
    r->content_length = clen > 0 ? (size_t)clen : 0;
    r->keep_alive = r->minor == 1 ? !close : (keep && !close);
    return 0;
}

long ef_sd_http_parse(ef_sd_http_req_t *r, const char *buf, size_t len, size_t max_body) {
    if (!r->head_done) {
        size_t lead = leading_empty(buf, len);
        size_t end = lead < len ? find_head_end(r, buf, len, lead) : 0;
        if (!end) {
            size_t avail = len - lead;
            const char *lf = memchr(buf + lead, '\n', avail);
            long rc = check_partial_line(r, buf + lead, lf ? (size_t)(lf - buf - lead) : avail);
            if (rc < 0)
                return rc;
            if (len > EF_SD_HTTP_MAX_HEAD)
                return fail(r, 431, "request line and headers exceed 8 KiB");
            return 0;
        }
        if (end > EF_SD_HTTP_MAX_HEAD)
            return fail(r, 431, "request line and headers exceed 8 KiB");
        long rc = parse_head(r, buf, lead, end);
        if (rc < 0)
            return rc;
        r->head_len = end;
        r->head_done = 1;
        if (r->content_length > max_body)
            return fail(r, 413, "request body too large");
    }
    if (len - r->head_len < r->content_length)
        return 0;
    return (long)(r->head_len + r->content_length);
}

const char *ef_sd_http_header(const ef_sd_http_req_t *r, const char *buf, const char *name,
                              size_t *len) {
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        const ef_sd_http_header_t *h = &r->headers[i];
        if (h->name.len == nl && strncasecmp(buf + h->name.off, name, nl) == 0) {
            if (len)
                *len = h->value.len;
            return buf + h->value.off;
        }
    }
    return NULL;
}

long ef_sd_http_pct_decode(const char *s, size_t n, char *out, size_t outlen, int plus_space) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = ef_hexval(s[i + 1]);
            lo = ef_hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    if (outlen == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

int ef_sd_http_query_get(const char *q, size_t n, const char *name, char *out, size_t outlen) {
    size_t nl = strlen(name), i = 0;
    while (i < n) {
        size_t st = i;
        while (i < n && q[i] != '&')
            i++;
        /* q[st, i) is one "key=value" */
        const char *eq = memchr(q + st, '=', i - st);
        size_t kl = eq ? (size_t)(eq - q - st) : i - st;
        if (kl == nl && memcmp(q + st, name, nl) == 0) {
            const char *v = eq ? eq + 1 : q + i;
            size_t vl = (size_t)(q + i - v);
            return ef_sd_http_pct_decode(v, vl, out, outlen, 1) < 0 ? -1 : 1;
        }
        i++;
    }
    return 0;
}

const char *ef_sd_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
