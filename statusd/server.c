// SPDX-License-Identifier: MIT
/*
 * statusd's HTTP server: the listening socket, the connections, reading and
 * parsing requests (pipelined ones one after the other), writing with
 * backpressure, and the one sweep timer that enforces every deadline (design
 * and connection states in statusd.h).
 *
 * A connection is freed only when its handle is closed and no batch holds
 * it any more, so a Redis answer that arrives after its client went away
 * finds the memory it expects and is dropped.
 */
#include "statusd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define IN_MIN_FREE 4096  /* bytes of room offered to each read */
#define IN_FIRST_CAP 8192 /* bytes of the first input buffer */
#define LISTEN_BACKLOG 511

typedef struct {
    uv_write_t req;
    ef_sd_conn_t *conn;
    char *mem;
    size_t len;
} ef_sd_wreq_t;

static void conn_process(ef_sd_conn_t *c);

static uint64_t loop_ms(const ef_sd_t *sd) { return uv_now(sd->loop); }

/* ---- Lifetime ---- */

static void req_reset(ef_sd_req_t *rq) {
    if (rq->ctx_free && rq->ctx)
        rq->ctx_free(rq->ctx);
    free(rq->raw);
    memset(rq, 0, sizeof *rq);
}

static void conn_maybe_free(ef_sd_conn_t *c) {
    if (!c->handle_closed || c->refs > 0)
        return;
    req_reset(&c->rq);
    free(c->in);
    free(c);
}

static void on_conn_closed(uv_handle_t *h) {
    ef_sd_conn_t *c = h->data;
    c->handle_closed = 1;
    conn_maybe_free(c);
}

static void conn_unlink(ef_sd_conn_t *c) {
    ef_sd_t *sd = c->sd;
    if (c->prev)
        c->prev->next = c->next;
    else
        sd->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    sd->nconns--;
    if (c->rejected)
        sd->nrejecting--;
}

void ef__sd_conn_close(ef_sd_conn_t *c) {
    if (c->closing)
        return;
    c->closing = 1;
    c->on_drain = NULL;
    if (c->sse)
        ef_sd_events_detach(c);
    conn_unlink(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

void ef__sd_conn_hold(ef_sd_conn_t *c) { c->refs++; }

void ef__sd_conn_release(ef_sd_conn_t *c) {
    c->refs--;
    if (c->closing)
        conn_maybe_free(c);
}

int ef_sd_req_gone(const ef_sd_req_t *rq) { return rq->conn->closing; }

/* ---- Reading ---- */

static void read_start(ef_sd_conn_t *c);

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    ef_sd_conn_t *c = h->data;
    size_t limit = EF_SD_HTTP_MAX_HEAD + c->sd->opts.max_body + EF_SD_READ_AHEAD_MAX;
    (void)hint;
    if (c->in_off > 0 && (c->in_off == c->in_len || c->in_cap - c->in_len < IN_MIN_FREE)) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_cap - c->in_len < IN_MIN_FREE && c->in_cap < limit) {
        size_t cap = c->in_cap ? c->in_cap * 2 : IN_FIRST_CAP;
        if (cap > limit)
            cap = limit;
        c->in = ef_realloc(c->in, cap);
        c->in_cap = cap;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    ef_sd_conn_t *c = s->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        uv_read_stop(s);
        c->reading = 0;
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF || c->lingering) {
            ef__sd_conn_close(c);
            return;
        }
        c->eof = 1;
        uv_read_stop(s);
        c->reading = 0;
        if (c->ending)
            return; /* the shutdown callback closes */
        if (c->sse || !c->busy)
            ef__sd_conn_end(c);
        return; /* a request being answered ends the connection when done */
    }
    c->in_len += (size_t)nread;
    c->activity_ms = loop_ms(c->sd);
    if (c->ending) {
        c->in_len = c->in_off; /* after our FIN: read and discard */
        return;
    }
    conn_process(c);
}

static void read_start(ef_sd_conn_t *c) {
    if (c->reading || c->closing || c->eof)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

static void read_stop(ef_sd_conn_t *c) {
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

/* ---- Writing ---- */

static void on_write(uv_write_t *req, int status) {
    ef_sd_wreq_t *w = req->data;
    ef_sd_conn_t *c = w->conn;
    c->wq_bytes -= w->len;
    free(w->mem);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        ef__sd_conn_close(c);
        return;
    }
    c->write_ms = c->activity_ms = loop_ms(c->sd);
    if (c->wq_bytes <= EF_SD_WRITE_LOW_WATER && c->on_drain) {
        ef_sd_drain_fn fn = c->on_drain;
        c->on_drain = NULL;
        fn(&c->rq);
    }
    if (!c->closing && !c->busy && !c->ending)
        conn_process(c);
}

void ef__sd_conn_write(ef_sd_conn_t *c, char *mem, size_t len) {
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    uv_buf_t b = uv_buf_init(mem, (unsigned)len);
    size_t off = 0;
    ef_sd_wreq_t *w;
    if (c->closing || len == 0) {
        free(mem);
        return;
    }
    if (c->wq_bytes == 0) {
        int n = uv_try_write(s, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            free(mem);
            ef__sd_conn_close(c);
            return;
        }
        if (n > 0) {
            off = (size_t)n;
            c->write_ms = c->activity_ms = loop_ms(c->sd);
        }
        if (off == len) {
            free(mem);
            return;
        }
    }
    w = ef_malloc(sizeof *w);
    w->req.data = w;
    w->conn = c;
    w->mem = mem;
    w->len = len - off;
    b = uv_buf_init(mem + off, (unsigned)(len - off));
    if (c->wq_bytes == 0)
        c->write_ms = loop_ms(c->sd);
    if (uv_write(&w->req, s, &b, 1, on_write) != 0) {
        free(mem);
        free(w);
        ef__sd_conn_close(c);
        return;
    }
    c->wq_bytes += w->len;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    ef_sd_conn_t *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || c->eof) {
        ef__sd_conn_close(c);
        return;
    }
    c->lingering = 1;
    c->linger_until = loop_ms(c->sd) + (c->rejected ? EF_SD_REJECT_LINGER_MS : EF_SD_LINGER_MS);
    read_start(c);
}

void ef__sd_conn_end(ef_sd_conn_t *c) {
    if (c->closing || c->ending)
        return;
    c->ending = 1;
    c->on_drain = NULL;
    if (c->sse)
        ef_sd_events_detach(c);
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        ef__sd_conn_close(c);
    else
        read_start(c); /* keep draining what the client still sends */
}

/* ---- Requests ---- */

/* Copies the parsed request out of the input buffer into c->rq. */
static void req_start(ef_sd_conn_t *c, size_t n) {
    ef_sd_req_t *rq = &c->rq;
    const ef_sd_http_req_t *p = &c->parser;
    char *raw, *q;
    req_reset(rq);
    raw = ef_malloc(n + 1);
    memcpy(raw, c->in + c->in_off, n);
    raw[n] = '\0';
    rq->conn = c;
    rq->sd = c->sd;
    rq->raw = raw;
    rq->start_ns = uv_hrtime();
    raw[p->method.off + p->method.len] = '\0';
    rq->method = raw + p->method.off;
    raw[p->target.off + p->target.len] = '\0';
    rq->path = raw + p->target.off;
    q = strchr(raw + p->target.off, '?');
    if (q) {
        *q = '\0';
        rq->query = q + 1;
    } else {
        rq->query = "";
    }
    for (size_t i = 0; i < p->nheaders; i++) {
        const ef_sd_http_header_t *h = &p->headers[i];
        const char *name = raw + h->name.off;
        char *v = raw + h->value.off;
        v[h->value.len] = '\0';
        if (h->name.len == 13 && strncasecmp(name, "authorization", 13) == 0 && !rq->auth)
            rq->auth = v;
        else if (h->name.len == 13 && strncasecmp(name, "if-none-match", 13) == 0 &&
                 !rq->if_none_match)
            rq->if_none_match = v;
    }
    rq->body = raw + p->head_len;
    rq->body_len = p->content_length;
    rq->minor = p->minor;
    rq->keep_alive = p->keep_alive && !c->sd->stopping;
    rq->head_only = strcmp(rq->method, "HEAD") == 0;
}

/* Answers a request that could not be parsed (or arrived too slowly) and
 * ends the connection. */
static void req_refuse(ef_sd_conn_t *c, int status, const char *why) {
    ef_sd_req_t *rq = &c->rq;
    req_reset(rq);
    rq->conn = c;
    rq->sd = c->sd;
    rq->method = "";
    rq->path = "";
    rq->query = "";
    rq->minor = 1;
    rq->start_ns = uv_hrtime();
    c->busy = 1;
    c->request_ms = 0;
    read_stop(c);
    c->in_len = c->in_off;
    ef_sd_respond_error(rq, status, "%s", why);
}

static void conn_process(ef_sd_conn_t *c) {
    ef_sd_t *sd = c->sd;
    if (c->in_process)
        return;
    c->in_process = 1;
    while (!c->busy && !c->closing && !c->ending && c->wq_bytes < EF_SD_WRITE_HIGH_WATER) {
        size_t avail = c->in_len - c->in_off;
        long n;
        if (avail == 0) {
            c->request_ms = 0;
            if (c->eof)
                ef__sd_conn_end(c);
            break;
        }
        if (!c->request_ms)
            c->request_ms = loop_ms(sd);
        n = ef_sd_http_parse(&c->parser, c->in + c->in_off, avail, sd->opts.max_body);
        if (n == 0) {
            if (c->parser.head_done && c->parser.expect_continue && !c->sent_continue) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                c->sent_continue = 1;
                ef__sd_conn_write(c, ef_strndup(cont, sizeof cont - 1), sizeof cont - 1);
            }
            if (c->eof) /* the client will send nothing more */
                ef__sd_conn_close(c);
            break;
        }
        if (n < 0) {
            req_refuse(c, (int)-n, c->parser.why ? c->parser.why : "bad request");
            break;
        }
        req_start(c, (size_t)n);
        c->in_off += (size_t)n;
        ef_sd_http_req_init(&c->parser);
        c->sent_continue = 0;
        c->request_ms = 0;
        c->busy = 1;
        sd->requests_total++;
        ef_sd_route(&c->rq);
    }
    if (!c->closing && !c->ending) {
        if (c->in_off == c->in_len)
            c->in_off = c->in_len = 0;
        if ((c->busy || c->wq_bytes >= EF_SD_WRITE_HIGH_WATER) &&
            c->in_len - c->in_off > EF_SD_READ_AHEAD_MAX)
            read_stop(c);
        else
            read_start(c);
    }
    c->in_process = 0;
}

void ef__sd_request_done(ef_sd_req_t *rq) {
    ef_sd_conn_t *c = rq->conn;
    ef_sd_t *sd = c->sd;
    int keep = rq->keep_alive;
    if (rq->status >= 100 && rq->status < 600)
        sd->responses[rq->status / 100]++;
    ef_debug("%s %s%s%s -> %d (%.3f ms)", rq->method, rq->path, rq->query[0] ? "?" : "", rq->query,
             rq->status, (double)(uv_hrtime() - rq->start_ns) / 1e6);
    req_reset(rq);
    c->busy = 0;
    c->on_drain = NULL;
    if (c->closing || c->ending)
        return;
    if (!keep || c->rejected) {
        ef__sd_conn_end(c);
        return;
    }
    if (!c->in_process)
        conn_process(c);
}

/* ---- Accepting ---- */

/* A connection past the cap: a short 503 is written at once (it fits in
 * any socket buffer), then FIN, then a short linger reading what the client
 * sent so that closing does not turn into a reset that would eat the 503.
 * At most EF_SD_REJECT_BUDGET connections are in that state at once; past
 * the budget a connection is closed with no answer (counted apart). */
static void conn_reject(ef_sd_conn_t *c) {
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: application/json\r\n"
                               "Retry-After: 1\r\n"
                               "Connection: close\r\n"
                               "Content-Length: 46\r\n"
                               "\r\n"
                               "{\"error\":\"too many connections\",\"status\":503}\n";
    ef_sd_t *sd = c->sd;
    sd->rejected_total++;
    if (sd->nrejecting >= EF_SD_REJECT_BUDGET) {
        sd->rejected_silent_total++;
        ef__sd_conn_close(c);
        return;
    }
    c->rejected = 1;
    sd->nrejecting++;
    sd->responses[5]++;
    ef__sd_conn_write(c, ef_strndup(busy, sizeof busy - 1), sizeof busy - 1);
    ef__sd_conn_end(c);
}

static void on_connection(uv_stream_t *server, int status) {
    ef_sd_t *sd = server->data;
    ef_sd_conn_t *c;
    if (status < 0) {
        ef_warn("accept: %s", uv_strerror(status));
        return;
    }
    c = ef_calloc(1, sizeof *c);
    c->sd = sd;
    uv_tcp_init(sd->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = sd->conns;
    if (sd->conns)
        sd->conns->prev = c;
    sd->conns = c;
    sd->nconns++;
    c->activity_ms = c->write_ms = loop_ms(sd);
    ef_sd_http_req_init(&c->parser);
    if (sd->stopping) {
        ef__sd_conn_close(c);
        return;
    }
    if (sd->nconns - sd->nrejecting > (size_t)sd->opts.max_connections) {
        conn_reject(c);
        return;
    }
    read_start(c);
}

/* ---- Deadlines ---- */

static void on_sweep(uv_timer_t *t) {
    ef_sd_t *sd = t->data;
    uint64_t now = loop_ms(sd);
    uint64_t idle = (uint64_t)sd->opts.idle_timeout_ms;
    uint64_t head = (uint64_t)sd->opts.header_timeout_ms;
    ef_sd_conn_t *c, *next;
    ef_sd_date(sd);
    ef_sd_clock_tick(sd);
    for (c = sd->conns; c; c = next) {
        next = c->next;
        if (c->lingering) {
            if (now >= c->linger_until)
                ef__sd_conn_close(c);
        } else if (c->wq_bytes > 0 && now - c->write_ms >= idle) {
            sd->timeouts_total++;
            ef_debug("closing a connection whose client stopped reading");
            ef__sd_conn_close(c);
        } else if (!c->busy && !c->ending && c->request_ms && now - c->request_ms >= head) {
            sd->timeouts_total++;
            req_refuse(c, 408, "request not received in time");
        } else if (!c->busy && !c->ending && !c->request_ms && c->wq_bytes == 0 &&
                   now - c->activity_ms >= idle) {
            ef__sd_conn_close(c);
        }
    }
}

static int write_port_file(const char *path, int port, char *err) {
    char tmp[4096], text[16];
    int fd, n;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    n = snprintf(text, sizeof text, "%d\n", port);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, (size_t)n) != n || close(fd) != 0 || rename(tmp, path) != 0) {
        ef_seterr(err, "cannot write port file %s: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
        return -1;
    }
    return 0;
}

int ef_sd_server_start(ef_sd_t *sd, char *err) {
    struct sockaddr_storage ss;
    int len = sizeof ss, rc, every;
    uv_tcp_init(sd->loop, &sd->listener);
    sd->listener.data = sd;
    sd->listening = 1;
    uv_timer_init(sd->loop, &sd->sweep);
    sd->sweep.data = sd;
    rc = uv_tcp_bind(&sd->listener, (const struct sockaddr *)&sd->opts.listen, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&sd->listener, LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        ef_seterr(err, "cannot listen on %s: %s", sd->opts.listen_text, uv_strerror(rc));
        return rc;
    }
    rc = uv_tcp_getsockname(&sd->listener, (struct sockaddr *)&ss, &len);
    if (rc != 0) {
        ef_seterr(err, "getsockname: %s", uv_strerror(rc));
        return rc;
    }
    sd->bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                    : ((struct sockaddr_in *)&ss)->sin_port);
    if (sd->opts.port_file && write_port_file(sd->opts.port_file, sd->bound_port, err) != 0)
        return -1;
    every = sd->opts.idle_timeout_ms < sd->opts.header_timeout_ms ? sd->opts.idle_timeout_ms
                                                                  : sd->opts.header_timeout_ms;
    every /= 4;
    if (every < 25)
        every = 25;
    if (every > 1000)
        every = 1000;
    uv_timer_start(&sd->sweep, on_sweep, (uint64_t)every, (uint64_t)every);
    return 0;
}

void ef_sd_server_stop(ef_sd_t *sd) {
    if (sd->listening) {
        sd->listening = 0;
        uv_close((uv_handle_t *)&sd->listener, NULL);
        uv_timer_stop(&sd->sweep);
        uv_close((uv_handle_t *)&sd->sweep, NULL);
    }
    while (sd->conns)
        ef__sd_conn_close(sd->conns);
}
