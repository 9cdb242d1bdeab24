// SPDX-License-Identifier: MIT
/*
 * http_check: exercises the HTTP client (lib/ef_http.c) against a tiny
 * HTTP/1.1 server that runs on 127.0.0.1 (port 0) in the same libuv loop.
 *
 * The server reads bounded requests (headers, plus a Content-Length body)
 * and answers by path: plain replies, Retry-After variants, a reply that
 * never comes, a body cut short, oversized bodies with and without
 * Content-Length, garbage instead of HTTP.  It counts accepted connections,
 * which is how keep-alive reuse is proven.  Cases run one after the other;
 * each prints `ok NAME` or `FAIL NAME: reason`; the exit status is 1 when any
 * case failed.  The loop must end with uv_loop_close() == 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "ef_common.h"
#include "ef_http.h"
#include "ef_log.h"

#define SRV_BUF_LEN 16384       /* bytes, one connection's request buffer */
#define BIG_BODY_LEN 5000       /* bytes, the oversized replies */
#define MAX_BODY_SMALL 1000     /* bytes, the cap those cases use */
#define BH_FILL 4               /* connections that fill the never-accepting listener's queue */
#define BH_N 8                  /* requests that time out connecting to it */
#define LARGE_BODY_LEN 100000   /* bytes, an answer far larger than curl's receive buffer */
#ifndef KEEPALIVE_TOTAL
#define KEEPALIVE_TOTAL 1000
#endif
#define KEEPALIVE_CONC 64
#define KEEPALIVE_SLACK 8       /* connections allowed above KEEPALIVE_CONC */
#define WIDE_CONC 1024
#define CHURN_TOTAL 600
#define CHURN_CONC 16
#define CLOSE_INFLIGHT 100
#define CLOSE_DELAY_MS 200
#define WATCHDOG_MS 60000
#define HUGE_HEADER_LEN (3u << 20) /* bytes, one header line */

typedef struct check_s check_t;

typedef struct srv_conn_s {
    uv_tcp_t tcp;
    check_t *c;
    char buf[SRV_BUF_LEN];
    size_t len;
    int closing;
    struct srv_conn_s *prev, *next;
} srv_conn_t;

typedef struct {
    uv_write_t req;
    srv_conn_t *conn;
    int close_after;
    char data[];
} srv_write_t;

/* One request with its expected outcome. */
typedef struct {
    const char *name;
    const char *path;       /* on the test server, or a whole URL when it has "://" */
    int refused;            /* aim at the closed port instead */
    const char *method;
    const char *body;
    const char *header;     /* one extra request header */
    long timeout_ms;
    size_t max_body;
    ef_http_err_t err;
    long status;            /* -1: any */
    const char *want_body;  /* NULL: any */
    long ra_min, ra_max;    /* Retry-After range in ms */
    const char *ctype;      /* NULL: any; "": must be absent */
    const char *want_msg;   /* NULL: any; else errmsg must contain it */
} case_t;

struct check_s {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t timer;
    uv_timer_t watchdog;
    int port, refused_port;
    srv_conn_t *conns;
    unsigned accepted;      /* connections accepted by the server, ever */
    ef_http_t *http;
    ef_http_t *other;       /* a second client for the churn and close cases */
    ef_http_t *cur;         /* the client of the running batch */
    size_t step, kase;
    int passed, failed;
    int in_request;         /* set while ef_http_request() runs */
    int sync_calls;         /* callbacks that fired inside ef_http_request() */
    /* the running multi-request case */
    const char *name;
    int issued, done, bad, errors;
    int total, conc, churn;
    unsigned max_conns;     /* 0: not checked */
    unsigned accepted0;
    char why[256];
    int bh_fd, bh_fill[BH_FILL]; /* the listener that never accepts, and what fills its queue */
    srv_conn_t *rst_conn;   /* to be reset by the timer (the /rstbody case) */
};

static void next_step(check_t *c);

/* ---- Reporting ---- */

static void report(check_t *c, const char *name, int ok, const char *fmt, ...) EF_PRINTF(4, 5);

static void report(check_t *c, const char *name, int ok, const char *fmt, ...) {
    va_list ap;

    if (ok) {
        printf("ok %s\n", name);
        c->passed++;
    } else {
        printf("FAIL %s: ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        c->failed++;
    }
    fflush(stdout);
}

static const char *err_name(ef_http_err_t e) {
    static const char *const names[] = {"OK",      "TIMEOUT", "CONNECT", "RESET", "TOO_BIG",
                                        "PROTOCOL", "ABORTED", "TLS",     "OTHER"};
    return (unsigned)e < EF_ARRAY_LEN(names) ? names[e] : "?";
}

/* Issues a request with the synchronous-callback guard around it. */
static int issue(check_t *c, ef_http_t *h, const ef_http_req_t *req, ef_http_cb cb, void *arg) {
    int rc;

    c->in_request = 1;
    rc = ef_http_request(h, req, cb, arg);
    c->in_request = 0;
    return rc;
}

static void url_for(check_t *c, char *buf, size_t len, const char *path, int refused) {
    if (strstr(path, "://"))
        snprintf(buf, len, "%s", path);
    else
        snprintf(buf, len, "http://127.0.0.1:%d%s", refused ? c->refused_port : c->port, path);
}

/* ---- The test server ---- */

static void srv_on_close(uv_handle_t *handle) {
    srv_conn_t *sc = handle->data;
    check_t *c = sc->c;

    if (sc->prev)
        sc->prev->next = sc->next;
    else
        c->conns = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    free(sc);
}

static void srv_close(srv_conn_t *sc) {
    if (sc->closing)
        return;
    sc->closing = 1;
    uv_close((uv_handle_t *)&sc->tcp, srv_on_close);
}

/* Closes with a RST instead of a FIN. */
static void srv_reset(srv_conn_t *sc) {
    if (sc->closing)
        return;
    sc->closing = 1;
    if (uv_tcp_close_reset(&sc->tcp, srv_on_close) != 0)
        uv_close((uv_handle_t *)&sc->tcp, srv_on_close);
}

static void srv_on_write(uv_write_t *req, int status) {
    srv_write_t *w = (srv_write_t *)req;

    if (status < 0 || w->close_after)
        srv_close(w->conn);
    free(w);
}

static void srv_send(srv_conn_t *sc, const char *data, size_t len, int close_after) {
    srv_write_t *w;
    uv_buf_t b;

    if (sc->closing)
        return;
    w = ef_malloc(sizeof(*w) + len);
    w->conn = sc;
    w->close_after = close_after;
    memcpy(w->data, data, len);
    b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&sc->tcp, &b, 1, srv_on_write) < 0) {
        free(w);
        srv_close(sc);
    }
}

static void srv_reply(srv_conn_t *sc, int status, const char *reason, const char *headers,
                      const char *body, size_t blen, int head_only) {
    char buf[SRV_BUF_LEN];
    int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                     reason, blen, headers ? headers : "");

    if (!head_only && (size_t)n + blen <= sizeof(buf)) {
        memcpy(buf + n, body, blen);
        n += (int)blen;
    }
    srv_send(sc, buf, (size_t)n, 0);
}

/* Finds header name in the request head [p, end) and copies its value. */
static int srv_header(const char *p, const char *end, const char *name, char *out, size_t cap) {
    size_t nlen = strlen(name);

    out[0] = '\0';
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            size_t vlen;
            while (v < eol && *v == ' ')
                v++;
            vlen = (size_t)(eol - v);
            while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

static void on_rst_timer(uv_timer_t *t) {
    check_t *c = t->data;

    for (srv_conn_t *sc = c->conns; sc; sc = sc->next)
        if (sc == c->rst_conn)
            srv_reset(sc);
    c->rst_conn = NULL;
}

static void srv_route(srv_conn_t *sc, const char *method, const char *path, const char *xtest,
                      const char *body, size_t blen) {
    int head = strcmp(method, "HEAD") == 0;
    char big[BIG_BODY_LEN], hdr[256], out[512];

    memset(big, 'x', sizeof(big));
    if (strcmp(path, "/ok") == 0) {
        srv_reply(sc, 200, "OK", "Content-Type: text/plain; charset=utf-8\r\n", "hello world", 11,
                  head);
    } else if (strcmp(path, "/okclose") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\n"
                        "hello world";
        srv_send(sc, r, strlen(r), 1);
    } else if (strcmp(path, "/okdrop") == 0) {
        /* keep-alive announced, then the server hangs up anyway */
        const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world";
        srv_send(sc, r, strlen(r), 1);
    } else if (strcmp(path, "/404") == 0) {
        srv_reply(sc, 404, "Not Found", NULL, "not here", 8, head);
    } else if (strcmp(path, "/429") == 0) {
        srv_reply(sc, 429, "Too Many Requests", "Retry-After: 2\r\n", "", 0, head);
    } else if (strcmp(path, "/429date") == 0) {
        time_t t = time(NULL) + 30;
        struct tm tm;
        char date[64];
        gmtime_r(&t, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(hdr, sizeof(hdr), "Retry-After: %s\r\n", date);
        srv_reply(sc, 503, "Service Unavailable", hdr, "", 0, head);
    } else if (strcmp(path, "/429past") == 0) {
        srv_reply(sc, 429, "Too Many Requests", "Retry-After: Thu, 01 Jan 2015 00:00:00 GMT\r\n",
                  "", 0, head);
    } else if (strcmp(path, "/429junk") == 0) {
        srv_reply(sc, 429, "Too Many Requests", "Retry-After: soon\r\n", "", 0, head);
    } else if (strcmp(path, "/slow") == 0) {
        /* never answers; the client gives up or closes */
    } else if (strcmp(path, "/cut") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        srv_send(sc, r, strlen(r), 1);
    } else if (strcmp(path, "/nothing") == 0) {
        srv_close(sc);
    } else if (strcmp(path, "/garbage") == 0) {
        const char *r = "THIS IS NOT HTTP\r\n\r\n";
        srv_send(sc, r, strlen(r), 1);
    } else if (strcmp(path, "/big") == 0) {
        srv_reply(sc, 200, "OK", NULL, big, sizeof(big), head);
    } else if (strcmp(path, "/large") == 0) {
        /* many times curl's receive buffer: the body arrives in many reads */
        static char large[LARGE_BODY_LEN];
        for (size_t i = 0; i < sizeof(large); i++)
            large[i] = (char)('a' + i % 26);
        srv_reply(sc, 200, "OK", NULL, NULL, sizeof(large), 1);
        srv_send(sc, large, sizeof(large), 0);
    } else if (strcmp(path, "/exact") == 0) {
        srv_reply(sc, 200, "OK", NULL, big, MAX_BODY_SMALL, head);
    } else if (strcmp(path, "/bigclose") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        srv_send(sc, r, strlen(r), 0);
        srv_send(sc, big, sizeof(big), 1);
    } else if (strcmp(path, "/bigchunked") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        srv_send(sc, r, strlen(r), 0);
        for (int i = 0; i < 5; i++) {
            srv_send(sc, "3e8\r\n", 5, 0);
            srv_send(sc, big, 1000, 0);
            srv_send(sc, "\r\n", 2, 0);
        }
        srv_send(sc, "0\r\n\r\n", 5, 0);
    } else if (strcmp(path, "/gzip") == 0) {
        /* gzip of "{}": sent although the request asked for no encoding */
        static const char gz[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00"
                                 "\x43\xbf\xa6\xa3\x02\x00\x00\x00";
        srv_reply(sc, 200, "OK", "Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
                  gz, sizeof(gz) - 1, head);
    } else if (strcmp(path, "/rstbody") == 0) {
        /* ten bytes of a 100-byte body, then (once the client has read
         * them) a RST */
        const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        srv_send(sc, r, strlen(r), 0);
        sc->c->rst_conn = sc;
        uv_timer_start(&sc->c->timer, on_rst_timer, 200, 0);
    } else if (strcmp(path, "/hugeheader") == 0 || strcmp(path, "/manyheaders") == 0) {
        /* one 3 MB header line, or 4000 lines of 50 bytes (200 kB) */
        size_t n = HUGE_HEADER_LEN + 256, o = 0;
        char *r = ef_malloc(n);
        o += (size_t)snprintf(r, n, "HTTP/1.1 200 OK\r\n");
        if (strcmp(path, "/hugeheader") == 0) {
            memcpy(r + o, "X-Big: ", 7);
            o += 7;
            memset(r + o, 'a', HUGE_HEADER_LEN);
            o += HUGE_HEADER_LEN;
            memcpy(r + o, "\r\n", 2);
            o += 2;
        } else {
            for (int i = 0; i < 4000; i++)
                o += (size_t)snprintf(r + o, n - o, "X-H%04d: %038d\r\n", i, i);
        }
        o += (size_t)snprintf(r + o, n - o, "Content-Length: 2\r\n\r\n{}");
        srv_send(sc, r, o, 1);
        free(r);
    } else if (strcmp(path, "/echo") == 0) {
        int n = snprintf(out, sizeof(out), "%s %.*s %s", method, (int)blen, body, xtest);
        srv_reply(sc, 200, "OK", NULL, out, (size_t)n, head);
    } else {
        srv_reply(sc, 400, "Bad Request", NULL, "", 0, head);
    }
}

/* Serves every complete request in the buffer; returns -1 when the request
 * cannot be read (then the connection is closed). */
static int srv_parse(srv_conn_t *sc) {
    for (;;) {
        char method[16], path[256], clen[32], xtest[64];
        char *end = memmem(sc->buf, sc->len, "\r\n\r\n", 4);
        char *sp1, *sp2;
        size_t head_len, body_len = 0, total;

        if (!end)
            return sc->len < sizeof(sc->buf) ? 0 : -1;
        head_len = (size_t)(end - sc->buf) + 4;
        sp1 = memchr(sc->buf, ' ', head_len);
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
        if (!sp1 || !sp2 || (size_t)(sp1 - sc->buf) >= sizeof(method) ||
            (size_t)(sp2 - sp1 - 1) >= sizeof(path))
            return -1;
        memcpy(method, sc->buf, (size_t)(sp1 - sc->buf));
        method[sp1 - sc->buf] = '\0';
        memcpy(path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
        path[sp2 - sp1 - 1] = '\0';
        if (srv_header(sc->buf, end, "content-length", clen, sizeof(clen)))
            body_len = strtoul(clen, NULL, 10);
        srv_header(sc->buf, end, "x-test", xtest, sizeof(xtest));
        if (body_len > sizeof(sc->buf) - head_len)
            return -1;
        total = head_len + body_len;
        if (sc->len < total)
            return 0;
        srv_route(sc, method, path, xtest, sc->buf + head_len, body_len);
        if (sc->closing)
            return 0;
        memmove(sc->buf, sc->buf + total, sc->len - total);
        sc->len -= total;
    }
}

static void srv_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    srv_conn_t *sc = handle->data;

    (void)suggested;
    *buf = uv_buf_init(sc->buf + sc->len, (unsigned)(sizeof(sc->buf) - sc->len));
}

static void srv_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    srv_conn_t *sc = s->data;

    (void)buf;
    if (n < 0) {
        srv_close(sc);
        return;
    }
    sc->len += (size_t)n;
    if (srv_parse(sc) < 0)
        srv_close(sc);
}

static void srv_on_connection(uv_stream_t *server, int status) {
    check_t *c = server->data;
    srv_conn_t *sc;

    if (status < 0)
        return;
    sc = ef_calloc(1, sizeof(*sc));
    sc->c = c;
    uv_tcp_init(&c->loop, &sc->tcp);
    sc->tcp.data = sc;
    sc->next = c->conns;
    if (c->conns)
        c->conns->prev = sc;
    c->conns = sc;
    if (uv_accept(server, (uv_stream_t *)&sc->tcp) < 0) {
        srv_close(sc);
        return;
    }
    c->accepted++;
    uv_read_start((uv_stream_t *)&sc->tcp, srv_alloc, srv_on_read);
}

static int srv_start(check_t *c) {
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int namelen = sizeof(name);
    int rc;

    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&c->loop, &c->listener);
    c->listener.data = c;
    if ((rc = uv_tcp_bind(&c->listener, (const struct sockaddr *)&addr, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&c->listener, 1024, srv_on_connection)) < 0 ||
        (rc = uv_tcp_getsockname(&c->listener, (struct sockaddr *)&name, &namelen)) < 0)
        return rc;
    c->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    return 0;
}

/* A port on which nothing listens: bind, read the port, close. */
static int closed_port(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- Single-request cases ---- */

#define ANY_RA -100, 1000000000L

static const case_t cases[] = {
    {"status_200_body", "/ok", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 200, "hello world", -1, -1,
     "text/plain; charset=utf-8", NULL},
    {"status_404", "/404", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 404, "not here", -1, -1, "", NULL},
    {"retry_after_seconds", "/429", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 429, "", 2000, 2000,
     NULL, NULL},
    {"retry_after_http_date", "/429date", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 503, NULL, 28000,
     31000, NULL, NULL},
    {"retry_after_past_date", "/429past", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 429, NULL, 0, 0,
     NULL, NULL},
    {"retry_after_garbage", "/429junk", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 429, NULL, -1, -1,
     NULL, NULL},
    {"timeout", "/slow", 0, NULL, NULL, NULL, 200, 0, EF_HTTP_E_TIMEOUT, -1, NULL, ANY_RA, NULL, NULL},
    {"reset_mid_body", "/cut", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_E_RESET, -1, NULL, ANY_RA, NULL,
     "connection closed by provider after 10 body bytes"},
    {"error_names_rst_mid_body", "/rstbody", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_E_RESET, -1, NULL,
     ANY_RA, NULL, "connection reset by provider after 10 body bytes"},
    {"error_names_gzip_body", "/gzip", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_E_PROTOCOL, 200, NULL,
     ANY_RA, NULL, "response body is gzip-encoded but no encoding was requested"},
    {"error_names_huge_header_line", "/hugeheader", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_E_PROTOCOL,
     -1, NULL, ANY_RA, NULL, "response header larger than 65536 bytes"},
    {"error_names_many_headers", "/manyheaders", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_E_PROTOCOL, -1,
     NULL, ANY_RA, NULL, "response header larger than 65536 bytes"},
    {"reset_no_reply", "/nothing", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_E_RESET, -1, NULL, ANY_RA,
     NULL, NULL},
    {"connect_refused", "/ok", 1, NULL, NULL, NULL, 0, 0, EF_HTTP_E_CONNECT, 0, NULL, ANY_RA, NULL, NULL},
    {"protocol_garbage", "/garbage", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_E_PROTOCOL, -1, NULL,
     ANY_RA, NULL, NULL},
    {"protocol_not_http", "ftp://127.0.0.1:1/x", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_E_PROTOCOL, 0,
     NULL, ANY_RA, NULL, NULL},
    {"too_big_content_length", "/big", 0, NULL, NULL, NULL, 0, MAX_BODY_SMALL, EF_HTTP_E_TOO_BIG,
     200, NULL, ANY_RA, NULL, NULL},
    {"too_big_close_delimited", "/bigclose", 0, NULL, NULL, NULL, 0, MAX_BODY_SMALL,
     EF_HTTP_E_TOO_BIG, 200, NULL, ANY_RA, NULL, NULL},
    {"too_big_chunked", "/bigchunked", 0, NULL, NULL, NULL, 0, MAX_BODY_SMALL, EF_HTTP_E_TOO_BIG,
     200, NULL, ANY_RA, NULL, "response body over 1000 bytes (max_body)"},
    {"body_at_cap", "/exact", 0, NULL, NULL, NULL, 0, MAX_BODY_SMALL, EF_HTTP_OK, 200, NULL,
     ANY_RA, NULL, NULL},
    {"body_larger_than_buffer", "/large", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 200, NULL,
     ANY_RA, NULL, NULL},
    {"head_ignores_length", "/big", 0, "HEAD", NULL, NULL, 0, MAX_BODY_SMALL, EF_HTTP_OK, 200, "",
     ANY_RA, NULL, NULL},
    {"post_body_and_header", "/echo", 0, "POST", "a=1&b=2", "X-Test: yes", 0, 0, EF_HTTP_OK, 200,
     "POST a=1&b=2 yes", ANY_RA, NULL, NULL},
    {"get_after_post", "/echo", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 200, "GET  ", ANY_RA,
     NULL, NULL},
    {"get_header_added", "/echo", 0, NULL, NULL, "X-Test: one", 0, 0, EF_HTTP_OK, 200,
     "GET  one", ANY_RA, NULL, NULL},
    {"get_header_changed", "/echo", 0, NULL, NULL, "X-Test: two", 0, 0, EF_HTTP_OK, 200,
     "GET  two", ANY_RA, NULL, NULL},
    {"get_header_dropped", "/echo", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 200, "GET  ", ANY_RA,
     NULL, NULL},
    {"put_body", "/echo", 0, "PUT", "{}", NULL, 0, 0, EF_HTTP_OK, 200, "PUT {} ", ANY_RA, NULL,
     NULL},
    {"get_after_put", "/echo", 0, "GET", NULL, NULL, 0, 0, EF_HTTP_OK, 200, "GET  ", ANY_RA, NULL,
     NULL},
    {"head_after_get", "/echo", 0, "HEAD", NULL, NULL, 0, 0, EF_HTTP_OK, 200, "", ANY_RA, NULL,
     NULL},
    {"get_after_head", "/echo", 0, NULL, NULL, NULL, 0, 0, EF_HTTP_OK, 200, "GET  ", ANY_RA,
     NULL, NULL},
    {"delete_no_body", "/echo", 0, "DELETE", NULL, NULL, 0, 0, EF_HTTP_OK, 200, "DELETE  ", ANY_RA,
     NULL, NULL},
};

static void run_case(check_t *c);

static int large_ok(const char *b, size_t len) {
    if (len != LARGE_BODY_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (b[i] != (char)('a' + i % 26))
            return 0;
    return 1;
}

static void on_case(const ef_http_resp_t *r, void *arg) {
    check_t *c = arg;
    const case_t *k = &cases[c->kase];
    char why[512] = "";

    if (c->in_request)
        c->sync_calls++;
    if (r->err != k->err)
        snprintf(why, sizeof(why), "err %s, want %s (curl %d: %s)", err_name(r->err),
                 err_name(k->err), r->curl_code, r->errmsg ? r->errmsg : "");
    else if (k->status >= 0 && r->status != k->status)
        snprintf(why, sizeof(why), "status %ld, want %ld", r->status, k->status);
    else if (!r->body || r->body[r->body_len] != '\0')
        snprintf(why, sizeof(why), "body not NUL-terminated");
    else if (k->want_body && strcmp(r->body, k->want_body) != 0)
        snprintf(why, sizeof(why), "body \"%.100s\", want \"%s\"", r->body, k->want_body);
    else if (r->retry_after_ms < k->ra_min || r->retry_after_ms > k->ra_max)
        snprintf(why, sizeof(why), "retry_after_ms %ld, want %ld..%ld", r->retry_after_ms,
                 k->ra_min, k->ra_max);
    else if (k->ctype && !k->ctype[0] && r->content_type)
        snprintf(why, sizeof(why), "content_type \"%s\", want none", r->content_type);
    else if (k->ctype && k->ctype[0] && (!r->content_type || strcmp(r->content_type, k->ctype)))
        snprintf(why, sizeof(why), "content_type \"%s\", want \"%s\"",
                 r->content_type ? r->content_type : "(none)", k->ctype);
    else if (r->err != EF_HTTP_OK && !r->errmsg)
        snprintf(why, sizeof(why), "no errmsg");
    else if (k->want_msg && (!r->errmsg || !strstr(r->errmsg, k->want_msg)))
        snprintf(why, sizeof(why), "errmsg \"%s\", want \"%s\"", r->errmsg ? r->errmsg : "(none)",
                 k->want_msg);
    else if (k->max_body && r->body_len > k->max_body)
        snprintf(why, sizeof(why), "body_len %zu over the cap", r->body_len);
    else if (strcmp(k->path, "/large") == 0 && !large_ok(r->body, r->body_len))
        snprintf(why, sizeof(why), "body of %zu bytes, want %d bytes a..z repeated", r->body_len,
                 LARGE_BODY_LEN);
    else if (k->err == EF_HTTP_E_TIMEOUT && r->total_ms < 150)
        snprintf(why, sizeof(why), "timed out after %.1f ms", r->total_ms);
    report(c, k->name, why[0] == '\0', "%s", why);
    c->kase++;
    run_case(c);
}

static void run_case(check_t *c) {
    const case_t *k;
    char url[256];
    const char *hdrs[1];
    ef_http_req_t req;
    int rc;

    if (c->kase >= EF_ARRAY_LEN(cases)) {
        next_step(c);
        return;
    }
    k = &cases[c->kase];
    url_for(c, url, sizeof(url), k->path, k->refused);
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.method = k->method;
    req.body = k->body;
    req.body_len = k->body ? strlen(k->body) : 0;
    if (k->header) {
        hdrs[0] = k->header;
        req.headers = hdrs;
        req.nheaders = 1;
    }
    req.timeout_ms = k->timeout_ms;
    req.max_body = k->max_body;
    rc = issue(c, c->http, &req, on_case, c);
    if (rc < 0) {
        report(c, k->name, 0, "ef_http_request: %s", uv_strerror(rc));
        c->kase++;
        run_case(c);
    }
}

static void step_cases(check_t *c) {
    c->kase = 0;
    run_case(c);
}

/* ---- Callback timing ---- */

static void on_async(const ef_http_resp_t *r, void *arg) {
    check_t *c = arg;

    c->done++;
    if (c->in_request)
        c->sync_calls++;
    report(c, "callback_not_synchronous", c->issued == 1 && !c->in_request &&
                                                  r->err == EF_HTTP_E_PROTOCOL,
           "issued=%d in_request=%d err=%s", c->issued, c->in_request, err_name(r->err));
    next_step(c);
}

/* An unsupported scheme fails before any I/O: the failure must still arrive
 * from the loop, after ef_http_request() has returned. */
static void step_async(check_t *c) {
    ef_http_req_t req = {.url = "gopher://127.0.0.1/"};

    c->issued = 0;
    c->done = 0;
    if (issue(c, c->http, &req, on_async, c) < 0) {
        report(c, "callback_not_synchronous", 0, "ef_http_request failed");
        next_step(c);
        return;
    }
    c->issued = 1;
    if (c->done)
        report(c, "callback_not_synchronous", 0, "callback ran inside ef_http_request");
}

/* ---- Many requests: keep-alive reuse, width, connection churn ---- */

static void on_many(const ef_http_resp_t *r, void *arg);

/* Issues the next request of the running batch; churn cycles through replies
 * that close the connection, so fds are freed and taken again at speed. */
static void many_issue(check_t *c) {
    static const char *const churn[] = {"/okclose", "/okdrop", "/ok"};
    char url[128];
    ef_http_req_t req = {.url = url};

    if (c->issued >= c->total)
        return;
    url_for(c, url, sizeof(url), c->churn ? churn[c->issued % 3] : "/ok", 0);
    c->issued++;
    if (issue(c, c->cur, &req, on_many, c) < 0) {
        c->bad++;
        c->done++;
    }
}

static void many_closed(void *arg) {
    check_t *c = arg;

    c->other = NULL;
    next_step(c);
}

static void many_finish(check_t *c) {
    unsigned conns = c->accepted - c->accepted0;

    printf("# %s: %d requests, %d at a time, %u connections\n", c->name, c->total, c->conc,
           conns);
    if (c->max_conns)
        report(c, c->name, c->bad == 0 && conns <= c->max_conns,
               "%d bad (%s), %u connections for %d requests over %d", c->bad, c->why, conns,
               c->total, c->conc);
    else
        report(c, c->name, c->bad == 0, "%d bad of %d (%s)", c->bad, c->total, c->why);
    if (c->cur == c->other)
        ef_http_close(c->other, many_closed, c);
    else
        next_step(c);
}

static void on_many(const ef_http_resp_t *r, void *arg) {
    check_t *c = arg;

    if (c->in_request)
        c->sync_calls++;
    c->done++;
    if (r->err != EF_HTTP_OK || r->status != 200 || strcmp(r->body, "hello world") != 0) {
        if (c->bad++ == 0)
            snprintf(c->why, sizeof(c->why), "first: err=%s status=%ld %s", err_name(r->err),
                     r->status, r->errmsg ? r->errmsg : "");
    }
    many_issue(c);
    if (c->done == c->total)
        many_finish(c);
}

static void many_start(check_t *c, ef_http_t *h, const char *name, int conc, int total,
                       unsigned max_conns, int churn) {
    c->cur = h;
    c->name = name;
    c->conc = conc;
    c->total = total;
    c->max_conns = max_conns;
    c->churn = churn;
    c->issued = c->done = c->bad = 0;
    c->why[0] = '\0';
    c->accepted0 = c->accepted;
    for (int i = 0; i < conc; i++)
        many_issue(c);
    if (c->done == total)
        many_finish(c);
}

static void step_keepalive(check_t *c) {
    many_start(c, c->http, "keepalive_reuse", KEEPALIVE_CONC, KEEPALIVE_TOTAL,
               KEEPALIVE_CONC + KEEPALIVE_SLACK, 0);
}

static void step_wide(check_t *c) {
    many_start(c, c->http, "concurrent_1024", WIDE_CONC, WIDE_CONC, 0, 0);
}

/* A fresh client with a small connection cache against replies that close
 * the connection: fds are freed and taken again within one loop turn. */
static void step_churn(check_t *c) {
    ef_http_opts_t opts = {.max_connects = 4};

    if (ef_http_create(&c->other, &c->loop, &opts) < 0) {
        report(c, "connection_churn", 0, "ef_http_create failed");
        next_step(c);
        return;
    }
    many_start(c, c->other, "connection_churn", CHURN_CONC, CHURN_TOTAL, 0, 1);
}

/* ---- Closing with transfers in flight ---- */

static void on_other_closed(void *arg) {
    check_t *c = arg;

    report(c, c->name, c->done == c->issued && c->bad == 0 && c->errors == 0,
           "%d callbacks for %d requests, %d not ABORTED, %d requests accepted while closing",
           c->done, c->issued, c->bad, c->errors);
    c->other = NULL;
    next_step(c);
}

static void on_aborted(const ef_http_resp_t *r, void *arg) {
    check_t *c = arg;
    ef_http_req_t req = {.url = "http://127.0.0.1:1/"};

    c->done++;
    if (r->err != EF_HTTP_E_ABORTED)
        c->bad++;
    /* a client that is closing refuses new work */
    if (ef_http_request(c->other, &req, on_aborted, c) == 0)
        c->errors++;
}

static void on_close_timer(uv_timer_t *t) {
    check_t *c = t->data;
    size_t inflight = ef_http_inflight(c->other);

    if (inflight != CLOSE_INFLIGHT)
        report(c, "inflight_count", 0, "%zu in flight, want %d", inflight, CLOSE_INFLIGHT);
    else
        report(c, "inflight_count", 1, "%s", "");
    ef_http_close(c->other, on_other_closed, c);
}

static void step_close_inflight(check_t *c) {
    char url[128];
    ef_http_req_t req = {.url = url};

    c->name = "close_aborts_inflight";
    c->issued = c->done = c->bad = c->errors = 0;
    if (ef_http_create(&c->other, &c->loop, NULL) < 0) {
        report(c, c->name, 0, "ef_http_create failed");
        next_step(c);
        return;
    }
    url_for(c, url, sizeof(url), "/slow", 0);
    for (int i = 0; i < CLOSE_INFLIGHT; i++)
        if (issue(c, c->other, &req, on_aborted, c) == 0)
            c->issued++;
    uv_timer_start(&c->timer, on_close_timer, CLOSE_DELAY_MS, 0);
}

/* ef_http_close() from inside a completion callback: the others end ABORTED,
 * every callback fires exactly once. */
static void on_close_inside(const ef_http_resp_t *r, void *arg) {
    check_t *c = arg;

    (void)r;
    if (c->in_request)
        c->sync_calls++;
    if (c->done++ == 0)
        ef_http_close(c->other, on_other_closed, c);
    else if (r->err != EF_HTTP_E_ABORTED)
        c->bad++;
}

static void step_close_inside(check_t *c) {
    char url[128];
    ef_http_req_t req = {.url = url};

    c->name = "close_inside_callback";
    c->issued = c->done = c->bad = c->errors = 0;
    if (ef_http_create(&c->other, &c->loop, NULL) < 0) {
        report(c, c->name, 0, "ef_http_create failed");
        next_step(c);
        return;
    }
    url_for(c, url, sizeof(url), "/ok", 0);
    for (int i = 0; i < 3; i++)
        if (issue(c, c->other, &req, on_close_inside, c) == 0)
            c->issued++;
    req.timeout_ms = 100000;
    url_for(c, url, sizeof(url), "/slow", 0);
    for (int i = 0; i < 3; i++)
        if (issue(c, c->other, &req, on_close_inside, c) == 0)
            c->issued++;
}

/* ---- Percent-encoding ---- */

static void step_pct(check_t *c) {
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } v[] = {
        {"AZaz09-._~", 10, "AZaz09-._~"},
        {"a b", 3, "a%20b"},
        {"", 0, ""},
        {"/?#[]@!$&'()*+,;=%", 18, "%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25"},
        {"\xc3\xa9t\xc3\xa9", 5, "%C3%A9t%C3%A9"},
        {"a\0b", 3, "a%00b"},
        {"\xff\x7f\n", 3, "%FF%7F%0A"},
    };
    char buf[128];
    char why[256] = "";

    for (size_t i = 0; i < EF_ARRAY_LEN(v) && !why[0]; i++) {
        long n = ef_http_pct_encode(v[i].in, v[i].len, buf, sizeof(buf));
        if (n != (long)strlen(v[i].out) || strcmp(buf, v[i].out) != 0)
            snprintf(why, sizeof(why), "vector %zu: got %ld \"%s\", want \"%s\"", i, n,
                     n >= 0 ? buf : "", v[i].out);
    }
    if (!why[0] && ef_http_pct_encode("a b", 3, buf, 5) != -1)
        snprintf(why, sizeof(why), "no -1 when the buffer is one byte short");
    if (!why[0] && ef_http_pct_encode("a b", 3, buf, 6) != 5)
        snprintf(why, sizeof(why), "exact buffer refused");
    if (!why[0] && ef_http_pct_encode("abc", 3, buf, 0) != -1)
        snprintf(why, sizeof(why), "empty buffer accepted");
    report(c, "pct_encode", why[0] == '\0', "%s", why);
    next_step(c);
}

/* ---- Driver ---- */

static void on_http_closed(void *arg) {
    check_t *c = arg;

    c->http = NULL;
    uv_close((uv_handle_t *)&c->listener, NULL);
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_close((uv_handle_t *)&c->watchdog, NULL);
    for (srv_conn_t *sc = c->conns; sc; sc = sc->next)
        srv_close(sc);
}

static void step_finish(check_t *c) {
    report(c, "no_synchronous_callbacks", c->sync_calls == 0, "%d callbacks ran inside "
           "ef_http_request", c->sync_calls);
    ef_http_close(c->http, on_http_closed, c);
}

/* ---- Connections that never complete ---- */

/* A listener with a backlog of 0 that never accepts, its queue filled: new
 * connections to it hang in SYN, and curl gives up on each within the
 * connect timeout and closes its socket (in some paths without the close
 * callback).  The client must go on working: keep-alive requests after. */
static void bh_finish(check_t *c) {
    close(c->bh_fd);
    for (int i = 0; i < BH_FILL; i++)
        if (c->bh_fill[i] >= 0)
            close(c->bh_fill[i]);
    report(c, "connect_timeouts", c->bad == 0, "%d of %d requests did not end as a connect "
           "timeout (%s)", c->bad, BH_N, c->why);
    many_start(c, c->http, "keepalive_after_connect_timeouts", 16, 400, 0, 0);
}

static void on_bh(const ef_http_resp_t *r, void *arg) {
    check_t *c = arg;

    if (r->err != EF_HTTP_E_TIMEOUT && r->err != EF_HTTP_E_CONNECT && c->bad++ == 0)
        snprintf(c->why, sizeof(c->why), "first: err=%s status=%ld", err_name(r->err), r->status);
    if (++c->done == BH_N)
        bh_finish(c);
}

static void step_blackhole(check_t *c) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    char url[96];
    ef_http_req_t req = {.url = url, .timeout_ms = 400, .connect_timeout_ms = 200};

    c->done = c->bad = 0;
    c->why[0] = '\0';
    c->bh_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->bh_fd < 0 || bind(c->bh_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(c->bh_fd, 0) != 0 || getsockname(c->bh_fd, (struct sockaddr *)&a, &alen) != 0) {
        report(c, "connect_timeouts", 0, "cannot set up the listener");
        next_step(c);
        return;
    }
    for (int i = 0; i < BH_FILL; i++) {
        c->bh_fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->bh_fill[i] >= 0)
            (void)connect(c->bh_fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/never", ntohs(a.sin_port));
    for (int i = 0; i < BH_N; i++) {
        if (issue(c, c->http, &req, on_bh, c) < 0) {
            if (c->bad++ == 0)
                snprintf(c->why, sizeof(c->why), "ef_http_request failed");
            if (++c->done == BH_N)
                bh_finish(c);
        }
    }
}

/* ---- TLS settings and errors ---- */

/* One https:// request to the plain test server with TLS files that cannot
 * be used (curl fails before any byte is sent): each failure names its
 * cause, and the handle is clean for the next, plain http://, request. */
typedef struct {
    const char *name;
    const char *scheme;
    const char *ca_file, *client_cert;
    ef_http_err_t err;
    const char *want_msg; /* NULL: any */
} tls_case_t;

static const tls_case_t tls_cases[] = {
    {"tls_ca_file_unusable", "https", "/nonexistent/ca.pem", NULL, EF_HTTP_E_TLS,
     "TLS: cannot use ca_file /nonexistent/ca.pem"},
    {"tls_client_cert_unusable", "https", NULL, "/nonexistent/client.pem", EF_HTTP_E_TLS,
     "TLS: cannot use client_cert /nonexistent/client.pem"},
    {"tls_settings_gone_for_http", "http", NULL, NULL, EF_HTTP_OK, NULL},
};

static void tls_run(check_t *c);

static void on_tls(const ef_http_resp_t *r, void *arg) {
    check_t *c = arg;
    const tls_case_t *k = &tls_cases[c->kase];

    if (r->err != k->err)
        report(c, k->name, 0, "err %s, want %s (curl %d: %s)", err_name(r->err),
               err_name(k->err), r->curl_code, r->errmsg ? r->errmsg : "");
    else if (k->want_msg && (!r->errmsg || !strstr(r->errmsg, k->want_msg)))
        report(c, k->name, 0, "errmsg \"%s\", want \"%s\"", r->errmsg ? r->errmsg : "(none)",
               k->want_msg);
    else if (k->err == EF_HTTP_OK && strcmp(r->body, "hello world") != 0)
        report(c, k->name, 0, "body \"%.100s\"", r->body);
    else
        report(c, k->name, 1, "%s", "");
    c->kase++;
    tls_run(c);
}

static void tls_run(check_t *c) {
    const tls_case_t *k;
    char url[128];
    ef_http_req_t req;

    if (c->kase >= EF_ARRAY_LEN(tls_cases)) {
        next_step(c);
        return;
    }
    k = &tls_cases[c->kase];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d/ok", k->scheme, c->port);
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.timeout_ms = 3000;
    req.ca_file = k->ca_file;
    req.client_cert = k->client_cert;
    if (issue(c, c->http, &req, on_tls, c) < 0) {
        report(c, k->name, 0, "ef_http_request failed");
        c->kase++;
        tls_run(c);
    }
}

static void step_tls(check_t *c) {
    c->kase = 0;
    tls_run(c);
}

static void (*const steps[])(check_t *) = {
    step_pct,       step_cases,          step_tls,          step_async, step_keepalive, step_wide,
    step_churn,     step_blackhole,      step_close_inflight, step_close_inside, step_finish,
};

static void next_step(check_t *c) {
    if (c->step < EF_ARRAY_LEN(steps))
        steps[c->step++](c);
}

static void on_watchdog(uv_timer_t *t) {
    check_t *c = t->data;

    report(c, "watchdog", 0, "no progress within %d ms (step %zu, case %zu)", WATCHDOG_MS,
           c->step, c->kase);
    exit(1);
}

int main(void) {
    check_t *c = ef_calloc(1, sizeof(*c));
    int rc;

    const char *lvl = getenv("HTTP_CHECK_LOG");
    ef_log_level_t level = EF_LOG_WARN;

    if (lvl && ef_log_level_parse(lvl, &level) < 0)
        level = EF_LOG_WARN;
    ef_log_init("http_check", level, EF_LOG_TEXT);
    if (uv_loop_init(&c->loop) < 0)
        return 1;
    c->refused_port = closed_port();
    if ((rc = srv_start(c)) < 0) {
        fprintf(stderr, "http_check: server: %s\n", uv_strerror(rc));
        return 1;
    }
    uv_timer_init(&c->loop, &c->timer);
    c->timer.data = c;
    uv_timer_init(&c->loop, &c->watchdog);
    c->watchdog.data = c;
    uv_timer_start(&c->watchdog, on_watchdog, WATCHDOG_MS, 0);
    if ((rc = ef_http_create(&c->http, &c->loop, NULL)) < 0) {
        fprintf(stderr, "http_check: ef_http_create: %s\n", uv_strerror(rc));
        return 1;
    }
    next_step(c);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&c->loop);
    report(c, "loop_close", rc == 0 && c->step == EF_ARRAY_LEN(steps),
           "uv_loop_close: %s, step %zu", rc == 0 ? "0" : uv_strerror(rc), c->step);
    printf("# %d passed, %d failed\n", c->passed, c->failed);
    rc = c->failed ? 1 : 0;
    free(c);
    return rc;
}
