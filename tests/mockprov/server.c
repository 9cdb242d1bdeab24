// SPDX-License-Identifier: MIT
/*
 * server.c: the mock provider's libuv side: the listener, the connections
 * and the fault actions.
 *
 * A connection owns a TCP handle and a timer (both embedded, freed once both
 * close callbacks ran) and a read buffer of MP_HEAD_MAX_BYTES. Requests are
 * answered strictly in order, one at a time: mp_conn_process() parses the
 * next head, mp_conn_handle() decides the answer (referee, fail-first,
 * faults, route) and either performs it at once or parks it on the timer
 * (latency, jitter). While a request is parked, being trickled (slow) or
 * hung, later pipelined bytes wait in the buffer and reading stops once it
 * is full. The write queue is bounded too: past MP_WQ_HIGH_BYTES the
 * connection stops taking requests until it drains.
 *
 * Closing: a response that ends the connection (Connection: close, HTTP/1.0,
 * errors) is followed by uv_shutdown(); the peer's remaining bytes are then
 * read and dropped until it closes or MP_DRAIN_MS pass, so that it sees the
 * response and not a reset. A "reset" fault closes with SO_LINGER 0 (RST).
 */
#include "mockprov.h"

#include <math.h>

#include <arpa/inet.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MP_WQ_HIGH_BYTES (1024 * 1024)
#define MP_WQ_LOW_BYTES (256 * 1024)
#define MP_DRAIN_MS 2000
#define MP_PAD_BYTES (1024 * 1024)
#define MP_SLOW_PIECES 10
#define MP_LISTEN_BACKLOG 1024

enum {
    MP_ACT_SEND,
    MP_ACT_RESET,
    MP_ACT_HANG,
    MP_ACT_ERROR,
    MP_ACT_MALFORMED,
    MP_ACT_HUGE,
    MP_ACT_SLOW,
};

typedef struct mp_wblock {
    uv_write_t req;
    mp_conn *conn;
    size_t len;      /* bytes in data */
    size_t head_len; /* of which the response head */
    size_t split;    /* huge bodies: where the padding goes */
    uint64_t pad;    /* huge bodies: padding bytes */
    char data[];
} mp_wblock;

struct mp_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    mp_server *srv;
    mp_conn *prev;
    mp_conn *next;
    int handles;           /* close callbacks still due */
    unsigned closing : 1;  /* uv_close() called */
    unsigned reading : 1;
    unsigned busy : 1;     /* answering a request: delay or trickle */
    unsigned hung : 1;     /* never answers again; input dropped */
    unsigned shutting : 1; /* uv_shutdown() called */
    unsigned draining : 1; /* shut down; dropping input until EOF */
    unsigned peer_eof : 1;
    unsigned close_after : 1;
    unsigned blocked : 1;  /* write queue above the high mark */
    int act;               /* action parked on the timer */
    mp_wblock *pend;       /* response parked on the timer, or trickling */
    size_t slow_off;       /* next byte of pend to trickle */
    size_t slow_step;
    uint64_t slow_interval_ms;
    uint64_t skip;         /* request body bytes still to drop */
    uint64_t collect;      /* request body bytes still to read into rbody */
    mp_buf rbody;          /* the body of a request that reads it (batch POST) */
    char *held;            /* that request's method, target and Authorization, while its body comes */
    mp_http_req held_req;  /* that request, pointing into held */
    size_t rpos;           /* start of unparsed bytes in rbuf */
    size_t rlen;           /* end of bytes in rbuf */
    size_t scan;           /* parser resume point, relative to rpos */
    char rbuf[MP_HEAD_MAX_BYTES];
};

static void mp_conn_process(mp_conn *c);

/* ---- Write blocks ---- */

/* Formats "Retry-After" (and "Date") header lines for a 429 into buf, as
 * the knobs say: whole seconds, or an HTTP-date on the (skewed) clock with or
 * without a Date header. Returns buf ("" when retry_after_s is 0). */
static const char *mp_retry_header(const mp_knobs *k, unsigned retry_after_s,
                                   char *buf, size_t cap)
{
    buf[0] = '\0';
    if (retry_after_s == 0)
        return buf;
    if (k->retry_after_date == 0) {
        snprintf(buf, cap, "Retry-After: %u\r\n", retry_after_s);
        return buf;
    }
    time_t now = time(NULL) + (time_t)k->clock_skew_s, at = now + retry_after_s;
    struct tm tm;
    char d_now[64], d_at[64];
    gmtime_r(&now, &tm);
    strftime(d_now, sizeof(d_now), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    gmtime_r(&at, &tm);
    strftime(d_at, sizeof(d_at), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (k->retry_after_date == 1)
        snprintf(buf, cap, "Date: %s\r\nRetry-After: %s\r\n", d_now, d_at);
    else
        snprintf(buf, cap, "Retry-After: %s\r\n", d_at);
    return buf;
}

/* Appends the rate headers the knob rate_headers asks for, describing the
 * bucket after this request: 1 X-RateLimit-Limit/-Remaining/-Reset, 2 the
 * IETF RateLimit and RateLimit-Policy fields. The limit is the bucket's
 * capacity, the reset the whole seconds until it is full again (at least 1
 * when nothing is left). */
static void mp_rate_headers(mp_server *s, char *buf, size_t cap)
{
    const mp_knobs *k = &s->knobs;
    size_t n = strlen(buf);
    if (k->rate_headers == 0 || k->rate <= 0 || n >= cap)
        return;
    double full = k->burst > 0 ? k->burst : k->rate >= 1 ? floor(k->rate) : 1;
    double left = s->ref.tokens < 0 ? 0 : floor(s->ref.tokens + 1e-9);
    double reset = ceil((full - s->ref.tokens) * k->per / k->rate);
    if (left < 1 && reset < 1)
        reset = 1;
    if (k->rate_headers == 1)
        snprintf(buf + n, cap - n,
                 "X-RateLimit-Limit: %.0f\r\nX-RateLimit-Remaining: %.0f\r\n"
                 "X-RateLimit-Reset: %.0f\r\n", full, left, reset);
    else
        snprintf(buf + n, cap - n,
                 "RateLimit: limit=%.0f, remaining=%.0f, reset=%.0f\r\n"
                 "RateLimit-Policy: %.0f;w=%.0f\r\n", full, left, reset, k->rate,
                 ceil(k->per));
}

/* Allocates a response: head and body copied into one block. rated: the
 * request went through the token bucket (it may carry rate headers). */
static mp_wblock *mp_wblock_response(mp_conn *c, int status, const char *body,
                                     size_t blen, unsigned retry_after_s,
                                     int rated)
{
    char head[768], extra[448];
    mp_retry_header(&c->srv->knobs, retry_after_s, extra, sizeof(extra));
    if (rated)
        mp_rate_headers(c->srv, extra, sizeof(extra));
    size_t hn = mp_http_head(head, sizeof(head), status, blen, c->close_after,
                             extra);
    mp_wblock *w = mp_xmalloc(sizeof(*w) + hn + blen);
    w->conn = c;
    memcpy(w->data, head, hn);
    if (blen > 0)
        memcpy(w->data + hn, body, blen);
    w->len = hn + blen;
    w->head_len = hn;
    w->split = w->len;
    w->pad = 0;
    return w;
}

/* Allocates a raw piece of bytes (a slice of a trickled body). */
static mp_wblock *mp_wblock_raw(mp_conn *c, const char *data, size_t n)
{
    mp_wblock *w = mp_xmalloc(sizeof(*w) + n);
    w->conn = c;
    memcpy(w->data, data, n);
    w->len = n;
    w->head_len = 0;
    w->split = n;
    w->pad = 0;
    return w;
}

/* A 200 whose body is `huge_bytes` of valid JSON; the padding is sent from
 * the server's shared buffer, never copied. With huge_chunked the body is
 * one chunk and there is no Content-Length. */
static mp_wblock *mp_wblock_huge(mp_conn *c, uint64_t total)
{
    static const char prefix[] = "{\"padding\":\"";
    static const char suffix[] = "\"}";
    static const char last[] = "\r\n0\r\n\r\n";
    int chunked = c->srv->knobs.huge_chunked;
    char head[512];
    size_t pn = sizeof(prefix) - 1, sn = sizeof(suffix) - 1;
    size_t hn = mp_http_head(head, sizeof(head), 200,
                             chunked ? UINT64_MAX : total, c->close_after, NULL);
    if (chunked)
        hn += (size_t)snprintf(head + hn, sizeof(head) - hn, "%llx\r\n",
                               (unsigned long long)total);
    size_t ln = chunked ? sizeof(last) - 1 : 0;
    mp_wblock *w = mp_xmalloc(sizeof(*w) + hn + pn + sn + ln);
    w->conn = c;
    memcpy(w->data, head, hn);
    memcpy(w->data + hn, prefix, pn);
    memcpy(w->data + hn + pn, suffix, sn);
    memcpy(w->data + hn + pn + sn, last, ln);
    w->len = hn + pn + sn + ln;
    w->head_len = hn;
    w->split = hn + pn;
    w->pad = total - pn - sn;
    return w;
}

/* ---- Closing ---- */

static void mp_conn_close_cb(uv_handle_t *h)
{
    mp_conn *c = h->data;
    if (--c->handles > 0)
        return;
    mp_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c->pend);
    free(c->held);
    mp_buf_free(&c->rbody);
    free(c);
}

/* Closes the connection now (pending writes are cancelled); with `reset`,
 * the peer gets a RST instead of a FIN. */
static void mp_conn_close(mp_conn *c, int reset)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (!reset || c->shutting ||
        uv_tcp_close_reset(&c->tcp, mp_conn_close_cb) != 0)
        uv_close((uv_handle_t *)&c->tcp, mp_conn_close_cb);
    uv_close((uv_handle_t *)&c->timer, mp_conn_close_cb);
}

static void mp_conn_drain_timeout_cb(uv_timer_t *t)
{
    mp_conn_close(t->data, 0);
}

static void mp_conn_update_reading(mp_conn *c);

static void mp_conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    mp_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || c->peer_eof) {
        mp_conn_close(c, 0);
        return;
    }
    c->draining = 1;
    c->rpos = c->rlen = 0;
    uv_timer_start(&c->timer, mp_conn_drain_timeout_cb, MP_DRAIN_MS, 0);
    mp_conn_update_reading(c);
}

/* Ends the connection gracefully once every queued write went out. */
static void mp_conn_finish(mp_conn *c)
{
    if (c->closing || c->shutting)
        return;
    c->shutting = 1;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, mp_conn_shutdown_cb) != 0)
        mp_conn_close(c, 0);
}

/* ---- Reading ---- */

static void mp_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mp_conn *c = h->data;
    (void)suggested;
    if (c->draining || c->hung) {
        c->rpos = c->rlen = 0;
    } else if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    buf->base = c->rbuf + c->rlen;
    buf->len = sizeof(c->rbuf) - c->rlen;
}

static void mp_conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    mp_conn *c = st->data;
    (void)buf;
    if (c->closing)
        return;
    if (nread > 0) {
        if (c->draining || c->hung) {
            c->rlen = 0;
            return;
        }
        c->rlen += (size_t)nread;
        mp_conn_process(c);
        return;
    }
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        uv_read_stop(st);
        c->reading = 0;
        return;
    }
    if (nread == UV_EOF) {
        c->peer_eof = 1;
        c->reading = 0; /* libuv stops reading at EOF */
        if (c->draining || c->hung)
            mp_conn_close(c, 0);
        else
            mp_conn_process(c);
        return;
    }
    mp_conn_close(c, 0);
}

/* Starts or stops reading to match the connection's state. */
static void mp_conn_update_reading(mp_conn *c)
{
    int want;
    if (c->closing || c->peer_eof)
        return;
    if (c->draining || c->hung)
        want = 1;
    else if (c->shutting || c->blocked)
        want = 0;
    else
        want = c->rlen - c->rpos < sizeof(c->rbuf);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, mp_conn_alloc_cb,
                          mp_conn_read_cb) != 0) {
            mp_conn_close(c, 0);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ---- Writing ---- */

static void mp_conn_write_cb(uv_write_t *req, int status)
{
    mp_wblock *w = (mp_wblock *)req;
    mp_conn *c = w->conn;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        mp_conn_close(c, 0);
        return;
    }
    if (c->blocked && c->tcp.write_queue_size <= MP_WQ_LOW_BYTES) {
        c->blocked = 0;
        mp_conn_process(c);
    }
}

/* Queues a block; the block is freed by the write callback. */
static void mp_conn_write(mp_conn *c, mp_wblock *w)
{
    mp_server *s = c->srv;
    uv_buf_t one, *bufs = &one;
    unsigned nbufs = 1;
    int rc;

    if (w->pad == 0) {
        one = uv_buf_init(w->data, (unsigned)w->len);
    } else {
        uint64_t pieces = (w->pad + s->pad_len - 1) / s->pad_len, left = w->pad;
        nbufs = (unsigned)(pieces + 2);
        bufs = mp_xmalloc(nbufs * sizeof(*bufs));
        bufs[0] = uv_buf_init(w->data, (unsigned)w->split);
        for (uint64_t i = 0; i < pieces; i++) {
            size_t n = left < s->pad_len ? (size_t)left : s->pad_len;
            bufs[1 + i] = uv_buf_init(s->pad, (unsigned)n);
            left -= n;
        }
        bufs[nbufs - 1] =
            uv_buf_init(w->data + w->split, (unsigned)(w->len - w->split));
    }
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nbufs,
                  mp_conn_write_cb);
    if (bufs != &one)
        free(bufs); /* uv_write() copied the array */
    if (rc != 0) {
        free(w);
        mp_conn_close(c, 0);
        return;
    }
    if (c->tcp.write_queue_size > MP_WQ_HIGH_BYTES)
        c->blocked = 1;
}

/* Sends a whole response, then ends the connection if it must. */
static void mp_conn_send(mp_conn *c, mp_wblock *w)
{
    mp_conn_write(c, w);
    if (!c->closing && c->close_after)
        mp_conn_finish(c);
}

/* ---- Answering ---- */

static void mp_conn_slow_cb(uv_timer_t *t)
{
    mp_conn *c = t->data;
    mp_wblock *w = c->pend;
    size_t left = w->len - c->slow_off;
    size_t n = left < c->slow_step ? left : c->slow_step;

    mp_conn_write(c, mp_wblock_raw(c, w->data + c->slow_off, n));
    if (c->closing)
        return;
    c->slow_off += n;
    if (c->slow_off < w->len) {
        uv_timer_start(&c->timer, mp_conn_slow_cb, c->slow_interval_ms, 0);
        return;
    }
    free(w);
    c->pend = NULL;
    c->busy = 0;
    if (c->close_after)
        mp_conn_finish(c);
    mp_conn_process(c);
}

/* Carries out the parked action with the parked block. */
static void mp_conn_perform(mp_conn *c)
{
    mp_server *s = c->srv;
    mp_wblock *w = c->pend;

    c->pend = NULL;
    c->busy = 0;
    switch (c->act) {
    case MP_ACT_RESET:
        free(w);
        mp_conn_close(c, 1);
        return;
    case MP_ACT_HANG:
        free(w);
        c->hung = 1;
        c->rpos = c->rlen = 0;
        return;
    case MP_ACT_SLOW: {
        size_t body = w->len - w->head_len;
        c->busy = 1;
        c->pend = w;
        c->slow_step = (body + MP_SLOW_PIECES - 1) / MP_SLOW_PIECES;
        if (c->slow_step == 0)
            c->slow_step = 1;
        c->slow_interval_ms = s->knobs.slow_ms / MP_SLOW_PIECES;
        if (c->slow_interval_ms == 0)
            c->slow_interval_ms = 1;
        c->slow_off = w->head_len;
        mp_conn_write(c, mp_wblock_raw(c, w->data, w->head_len));
        if (!c->closing)
            uv_timer_start(&c->timer, mp_conn_slow_cb, c->slow_interval_ms, 0);
        return;
    }
    default:
        mp_conn_send(c, w);
    }
}

static void mp_conn_delay_cb(uv_timer_t *t)
{
    mp_conn *c = t->data;
    mp_conn_perform(c);
    mp_conn_process(c);
}

/* Draws the fault for one request from the seeded PRNG. */
static int mp_conn_draw_fault(mp_server *s)
{
    const mp_knobs *k = &s->knobs;
    double u, acc = 0;
    if (k->p_reset + k->p_hang + k->p_500 + k->p_malformed + k->p_huge +
            k->p_slow <= 0)
        return MP_ACT_SEND;
    u = mp_rand_unit(&s->rng);
    if (u < (acc += k->p_reset))
        return MP_ACT_RESET;
    if (u < (acc += k->p_hang))
        return MP_ACT_HANG;
    if (u < (acc += k->p_500))
        return MP_ACT_ERROR;
    if (u < (acc += k->p_malformed))
        return MP_ACT_MALFORMED;
    if (u < (acc += k->p_huge))
        return MP_ACT_HUGE;
    if (u < (acc += k->p_slow))
        return MP_ACT_SLOW;
    return MP_ACT_SEND;
}

/* Replaces a good body with a broken one (truncated or invalid JSON). */
static void mp_conn_mangle(mp_server *s, mp_buf *body)
{
    static const char *const broken[] = {
        "{\"id\":",
        "{\"page\":1,\"results\":[{\"id\":1,\"title\":\"Unterminated",
        "<html><body>502 Bad Gateway</body></html>",
    };
    uint64_t v = mp_rand_next(&s->rng) % 4;
    if (v == 3 && body->len > 1) {
        body->len /= 2;
        return;
    }
    body->len = 0;
    mp_buf_puts(body, broken[v % 3]);
}

static void mp_conn_log(mp_conn *c, const mp_http_req *req, int status,
                        const char *what)
{
    if (!c->srv->knobs.log)
        return;
    mp_log(MP_LOG_INFO, "%.*s %.*s -> %d%s%s",
           req ? (int)req->method_len : 1, req ? req->method : "-",
           req ? (int)(req->target_len < 300 ? req->target_len : 300) : 1,
           req ? req->target : "-", status, what[0] ? " " : "", what);
}

/* Answers a request that could not be parsed, then closes. */
static void mp_conn_reject(mp_conn *c, int rc)
{
    mp_server *s = c->srv;
    int status = rc == MP_HTTP_EHEAD ? 431 : rc == MP_HTTP_EBODY ? 413 : 400;
    const char *msg = rc == MP_HTTP_EHEAD ? "{\"error\":\"header too large\"}"
                      : rc == MP_HTTP_EBODY ? "{\"error\":\"body too large\"}"
                      : rc == MP_HTTP_EENCODING
                          ? "{\"error\":\"transfer-encoding not supported\"}"
                          : "{\"error\":\"bad request\"}";
    uint64_t now = uv_hrtime();

    mp_referee_count(&s->ref, "", 0, now);
    s->ref.by_status[status]++;
    c->close_after = 1;
    c->rpos = c->rlen = 0;
    mp_conn_log(c, NULL, status, "malformed request");
    mp_conn_send(c, mp_wblock_response(c, status, msg, strlen(msg), 0, 0));
}

/* Decides the answer to one parsed request (with its body, for the routes
 * that read one) and performs or parks it. */
static void mp_conn_handle(mp_conn *c, const mp_http_req *req, const char *in,
                           size_t in_len)
{
    static const char limited[] =
        "{\"status_code\":25,\"status_message\":\"rate limit exceeded\"}";
    static const char failing[] =
        "{\"status_code\":11,\"status_message\":\"Internal error.\"}";
    mp_server *s = c->srv;
    mp_buf *body = &s->body;
    const char *target = req->target;
    const char *q = memchr(target, '?', req->target_len);
    size_t pn = q ? (size_t)(q - target) : req->target_len;
    const char *query = q ? q + 1 : target + req->target_len;
    size_t qn = (size_t)(target + req->target_len - query);
    int is_get = mp_span_eq(req->method, req->method_len, "GET");
    unsigned retry = 0;
    int status = 200, act = MP_ACT_SEND;
    mp_wblock *w;

    body->len = 0;
    c->close_after = req->minor == 0 || req->conn_close;
    if (is_get && mp_route_is_admin(target, pn)) {
        status = mp_route_admin(s, target, pn, query, qn, body);
        mp_conn_log(c, req, status, "");
        mp_conn_send(c, mp_wblock_response(c, status, body->data, body->len, 0, 0));
        return;
    }
    if (mp_span_eq(target, pn, "/oauth/token") &&
        mp_span_eq(req->method, req->method_len, "POST")) {
        status = mp_oauth_token(s, req, in, in_len, body);
        mp_conn_log(c, req, status, "(token)");
        mp_conn_send(c, mp_wblock_response(c, status, body->data, body->len, 0, 0));
        return;
    }

    uint64_t now = uv_hrtime();
    mp_path_entry *e = mp_referee_count(&s->ref, target, req->target_len, now);
    if (!mp_referee_take(&s->ref, &s->knobs, now, &retry)) {
        status = 429;
        if (s->knobs.retry_after_s > 0)
            retry = s->knobs.retry_after_s > UINT_MAX ? UINT_MAX
                                                      : (unsigned)s->knobs.retry_after_s;
        mp_buf_append(body, limited, sizeof(limited) - 1);
    } else {
        if (e != NULL && e->passed < UINT32_MAX)
            e->passed++;
        if (!mp_oauth_allow(s, req, body)) {
            status = 401;
        } else if (s->knobs.fail_first > 0 && e != NULL &&
            e->passed <= s->knobs.fail_first) {
            status = 503;
            s->ref.fail_first++;
            mp_buf_append(body, failing, sizeof(failing) - 1);
        } else if (!is_get && !mp_route_is_batch(target, pn, 1)) {
            status = 405;
            mp_buf_puts(body, "{\"error\":\"method not allowed\"}");
        } else {
            act = mp_conn_draw_fault(s);
            switch (act) {
            case MP_ACT_RESET: s->ref.resets++; break;
            case MP_ACT_HANG: s->ref.hangs++; break;
            case MP_ACT_ERROR: {
                static const int codes[] = {500, 502, 503};
                status = codes[mp_rand_next(&s->rng) % 3];
                mp_buf_append(body, failing, sizeof(failing) - 1);
                break;
            }
            case MP_ACT_HUGE: s->ref.huge++; break;
            default:
                status = mp_route_is_batch(target, pn, !is_get)
                             ? mp_route_batch(s, target, pn, query, qn, in,
                                              in_len, body)
                             : mp_route_api(s, target, pn, query, qn, body);
                if (act == MP_ACT_MALFORMED) {
                    s->ref.malformed++;
                    status = 200;
                    mp_conn_mangle(s, body);
                } else if (act == MP_ACT_SLOW) {
                    s->ref.slow++;
                }
            }
        }
    }

    if (act == MP_ACT_RESET || act == MP_ACT_HANG) {
        w = NULL;
        mp_conn_log(c, req, 0, act == MP_ACT_RESET ? "(reset)" : "(hang)");
    } else {
        s->ref.by_status[status]++;
        if (act == MP_ACT_HUGE)
            w = mp_wblock_huge(c, s->knobs.huge_bytes);
        else
            w = mp_wblock_response(c, status, body->data, body->len, retry, 1);
        mp_conn_log(c, req, status,
                    act == MP_ACT_MALFORMED ? "(malformed)"
                    : act == MP_ACT_HUGE    ? "(huge)"
                    : act == MP_ACT_SLOW    ? "(slow)"
                                            : "");
    }

    uint64_t delay = s->knobs.latency_ms;
    if (s->knobs.jitter_ms > 0)
        delay += mp_rand_next(&s->rng) % (s->knobs.jitter_ms + 1);
    c->pend = w;
    c->act = act;
    if (delay == 0) {
        mp_conn_perform(c);
        return;
    }
    c->busy = 1;
    uv_timer_start(&c->timer, mp_conn_delay_cb, delay, 0);
}

/* Whether the request's body is read (a batch POST) rather than dropped. */
static int mp_conn_wants_body(const mp_http_req *req)
{
    const char *q = memchr(req->target, '?', req->target_len);
    size_t pn = q ? (size_t)(q - req->target) : req->target_len;
    return req->content_length > 0 &&
           mp_span_eq(req->method, req->method_len, "POST") &&
           (mp_route_is_batch(req->target, pn, 1) ||
            mp_span_eq(req->target, pn, "/oauth/token"));
}

/* Keeps the request while its body is read: the read buffer moves on. */
static void mp_conn_hold(mp_conn *c, const mp_http_req *req)
{
    size_t an = req->authorization ? req->authorization_len : 0;
    free(c->held);
    c->held = mp_xmalloc(req->method_len + req->target_len + an + 1);
    memcpy(c->held, req->method, req->method_len);
    memcpy(c->held + req->method_len, req->target, req->target_len);
    if (an > 0)
        memcpy(c->held + req->method_len + req->target_len, req->authorization, an);
    c->held_req = *req;
    c->held_req.method = c->held;
    c->held_req.target = c->held + req->method_len;
    if (req->authorization)
        c->held_req.authorization = c->held + req->method_len + req->target_len;
    c->collect = req->content_length;
    c->rbody.len = 0;
}

/* Answers the complete requests in the buffer, in order, until one has to
 * wait; then adjusts reading. */
static void mp_conn_process(mp_conn *c)
{
    while (!c->closing && !c->busy && !c->hung && !c->shutting &&
           !c->blocked) {
        if (c->collect > 0) {
            size_t avail = c->rlen - c->rpos;
            size_t n = c->collect < avail ? (size_t)c->collect : avail;
            mp_buf_append(&c->rbody, c->rbuf + c->rpos, n);
            c->rpos += n;
            c->collect -= n;
            if (c->collect > 0) {
                c->rpos = c->rlen = 0;
                if (c->peer_eof)
                    mp_conn_finish(c);
                break;
            }
            mp_conn_handle(c, &c->held_req, c->rbody.data, c->rbody.len);
            free(c->held);
            c->held = NULL;
            c->rbody.len = 0;
            continue;
        }
        if (c->skip > 0) {
            size_t avail = c->rlen - c->rpos;
            size_t n = c->skip < avail ? (size_t)c->skip : avail;
            c->rpos += n;
            c->skip -= n;
            if (c->skip > 0) {
                c->rpos = c->rlen = 0;
                if (c->peer_eof)
                    mp_conn_finish(c);
                break;
            }
        }
        while (c->rpos < c->rlen &&
               (c->rbuf[c->rpos] == '\r' || c->rbuf[c->rpos] == '\n')) {
            c->rpos++;
            c->scan = 0;
        }
        if (c->rpos == c->rlen) {
            c->rpos = c->rlen = c->scan = 0;
            if (c->peer_eof)
                mp_conn_finish(c);
            break;
        }
        mp_http_req req;
        int rc = mp_http_parse(c->rbuf + c->rpos, c->rlen - c->rpos, &c->scan,
                               &req);
        if (rc == 0) {
            if (c->peer_eof)
                mp_conn_finish(c);
            break;
        }
        if (rc < 0) {
            mp_conn_reject(c, rc);
            break;
        }
        c->rpos += (size_t)rc;
        c->scan = 0;
        if (mp_conn_wants_body(&req)) {
            mp_conn_hold(c, &req);
            continue;
        }
        c->skip = req.content_length;
        mp_conn_handle(c, &req, NULL, 0);
    }
    mp_conn_update_reading(c);
}

/* ---- Listener ---- */

static void mp_server_connection_cb(uv_stream_t *listener, int status)
{
    mp_server *s = listener->data;
    if (status < 0) {
        mp_log(MP_LOG_WARN, "accept: %s", uv_strerror(status));
        return;
    }
    mp_conn *c = mp_xmalloc(sizeof(*c));
    memset(c, 0, offsetof(mp_conn, rbuf));
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->conns_total++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        mp_conn_close(c, 0);
        return;
    }
    if (s->stopping || s->nconns > s->max_conns) {
        mp_conn_close(c, 1);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    mp_conn_update_reading(c);
}

static void mp_server_signal_cb(uv_signal_t *h, int signum)
{
    mp_server *s = h->data;
    mp_log(MP_LOG_INFO, "signal %d: shutting down", signum);
    mp_server_stop(s);
}

/* Sets the server up (catalogue, referee, signal handlers) without
 * listening. Returns 0, or -1 with `err` filled; either way the caller then
 * runs mp_server_stop(), the loop, and mp_server_close(). */
int mp_server_init(mp_server *s, uv_loop_t *loop, uint64_t catalog,
                   uint64_t seed, const mp_knobs *knobs, char *err)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->knobs = *knobs;
    s->rng = mp_mix64(seed ^ 0x6d6f636b70726f76ULL);
    s->max_conns = MP_DEFAULT_MAX_CONNS;
    mp_buf_init(&s->body);
    mp_referee_init(&s->ref);
    mp_referee_bucket_reset(&s->ref, &s->knobs, uv_hrtime());
    s->pad_len = MP_PAD_BYTES;
    s->pad = mp_xmalloc(s->pad_len);
    memset(s->pad, 'x', s->pad_len);
    uv_signal_init(loop, &s->sigint);
    uv_signal_init(loop, &s->sigterm);
    s->sigint.data = s;
    s->sigterm.data = s;
    if (uv_signal_start(&s->sigint, mp_server_signal_cb, SIGINT) != 0 ||
        uv_signal_start(&s->sigterm, mp_server_signal_cb, SIGTERM) != 0) {
        mp_set_error(err, "cannot install signal handlers");
        return -1;
    }
    return mp_catalog_init(&s->cat, catalog, seed, err);
}

/* Parses HOST:PORT, [V6]:PORT or PORT into a socket address. */
static int mp_server_parse_addr(const char *addr, struct sockaddr_storage *ss,
                                char *err)
{
    char host[256];
    const char *port_s;
    uint64_t port;

    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - addr) > sizeof(host))
            goto bad;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        port_s = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL) {
            strcpy(host, "127.0.0.1");
            port_s = addr;
        } else {
            if ((size_t)(colon - addr) >= sizeof(host))
                goto bad;
            memcpy(host, addr, (size_t)(colon - addr));
            host[colon - addr] = '\0';
            port_s = colon + 1;
        }
    }
    if (mp_parse_u64(port_s, strlen(port_s), 65535, &port) != 0)
        goto bad;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
bad:
    mp_set_error(err, "bad listen address '%s' (want HOST:PORT)", addr);
    return -1;
}

/* Binds and listens on `addr`; s->port is the bound port afterwards.
 * Returns 0, or a negative code with `err` filled. */
int mp_server_listen(mp_server *s, const char *addr, uint64_t max_conns,
                     char *err)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss), rc;

    s->max_conns = max_conns;
    if (mp_server_parse_addr(addr, &ss, err) != 0)
        return -1;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->listening = 1;
    if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&s->listener, MP_LISTEN_BACKLOG,
                        mp_server_connection_cb)) != 0 ||
        (rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len)) !=
            0) {
        mp_set_error(err, "cannot listen on %s: %s", addr, uv_strerror(rc));
        return rc;
    }
    s->port = ntohs(ss.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&ss)->sin6_port
                        : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* Closes the listener, the signal handlers and every connection; the loop
 * then ends once their close callbacks ran. */
void mp_server_stop(mp_server *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    if (s->listening)
        uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    for (mp_conn *c = s->conns; c != NULL; c = c->next)
        mp_conn_close(c, 0);
}

/* Frees what the server owns; call after the loop ran to completion. */
void mp_server_close(mp_server *s)
{
    mp_catalog_close(&s->cat);
    mp_referee_close(&s->ref);
    mp_buf_free(&s->body);
    free(s->pad);
    s->pad = NULL;
}
