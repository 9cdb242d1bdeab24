// SPDX-License-Identifier: MIT
/*
 * Writing answers: whole responses (JSON, errors, static assets) in one
 * write, and streams (NDJSON results, Server-Sent Events) in chunked
 * transfer coding, produced piece by piece as the socket drains.
 *
 * Every function here ends with the request either done (whole responses,
 * stream end) or still streaming; none of them touches rq after handing it
 * to ef__sd_request_done().
 */
#include "statusd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *ef_sd_date(ef_sd_t *sd) {
    int64_t now = ef_sd_wall_ms(sd) / 1000;
    if (now != sd->date_s) {
        struct tm tm;
        time_t t = (time_t)now;
        gmtime_r(&t, &tm);
        strftime(sd->date, sizeof sd->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        sd->date_s = now;
    }
    return sd->date;
}

/* The status line and the headers every answer carries. */
static void head_begin(ef_buf_t *b, ef_sd_req_t *rq, int status, const char *ctype) {
    char line[256];
    int n = snprintf(line, sizeof line,
                     "HTTP/1.1 %d %s\r\nServer: statusd/" EF_VERSION "\r\nDate: %s\r\n", status,
                     ef_sd_http_reason(status), ef_sd_date(rq->sd));
    ef_buf_append(b, line, (size_t)n);
    if (ctype) {
        ef_buf_appends(b, "Content-Type: ");
        ef_buf_appends(b, ctype);
        ef_buf_appends(b, "\r\n");
    }
    ef_buf_appends(b, "X-Content-Type-Options: nosniff\r\n");
    if (!rq->keep_alive)
        ef_buf_appends(b, "Connection: close\r\n");
    else if (rq->minor == 0)
        ef_buf_appends(b, "Connection: keep-alive\r\n");
    rq->status = status;
}

void ef_sd_respond(ef_sd_req_t *rq, int status, const char *ctype, const char *extra_headers,
                   const char *body, size_t len) {
    ef_buf_t b;
    char cl[48];
    int no_body = status == 304 || status == 204 || (status >= 100 && status < 200);
    ef_buf_init(&b);
    head_begin(&b, rq, status, no_body ? NULL : ctype);
    if (!no_body) {
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", len);
        ef_buf_appends(&b, cl);
    }
    if (extra_headers)
        ef_buf_appends(&b, extra_headers);
    ef_buf_appends(&b, "\r\n");
    if (!no_body && !rq->head_only && len)
        ef_buf_append(&b, body, len);
    ef__sd_conn_write(rq->conn, b.s, b.len);
    ef__sd_request_done(rq);
}

void ef_sd_respond_json(ef_sd_req_t *rq, int status, const cJSON *o, const char *extra_headers) {
    char *s = cJSON_PrintUnformatted(o);
    size_t n = s ? strlen(s) : 0;
    if (!s) {
        ef_sd_respond_error(rq, 500, "cannot render JSON");
        return;
    }
    /* a final newline makes curl output and NDJSON tools happier */
    s = ef_realloc(s, n + 2);
    s[n] = '\n';
    s[n + 1] = '\0';
    ef_sd_respond(rq, status, "application/json", extra_headers, s, n + 1);
    free(s);
}

void ef_sd_respond_error(ef_sd_req_t *rq, int status, const char *fmt, ...) {
    char msg[512];
    ef_buf_t b;
    va_list ap;
    const char *extra = NULL;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ef_buf_init(&b);
    ef_buf_appends(&b, "{\"error\":");
    ef_buf_append_json_str(&b, msg, strlen(msg));
    snprintf(msg, sizeof msg, ",\"status\":%d}\n", status);
    ef_buf_appends(&b, msg);
    if (status == 401)
        extra = "WWW-Authenticate: Bearer realm=\"statusd\"\r\n";
    else if (status == 503)
        extra = "Retry-After: 1\r\n";
    ef_sd_respond(rq, status, "application/json", extra, b.s, b.len);
    ef_buf_free(&b);
}

void ef_sd_respond_unavailable(ef_sd_req_t *rq) {
    ef_sd_respond_error(rq, 503, "redis unavailable");
}

/* Redis's own words from an error reply.  Errors raised inside a script
 * come back dressed: Redis 7 appends " script: SHA, on @user_script:N." and
 * error() prefixes "ERR user_script:N: "; Redis 6 wraps them in "ERR Error
 * running script (call to f_SHA): @user_script:N: ".  The dressing goes,
 * the message (an OOM, a script's own refusal) stays, into out. */
void ef_sd_redis_error_text(const char *msg, char *out, size_t len) {
    const char *m = msg, *end, *at;
    if (strncmp(m, "ERR ", 4) == 0)
        m += 4;
    end = m + strlen(m);
    at = strstr(m, " script: ");
    if (at && strstr(at, "@user_script:"))
        end = at;
    at = strstr(m, "user_script:");
    if (at && at < end) {
        const char *p = at + 12;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p[0] == ':' && p[1] == ' ' && p + 2 <= end)
            m = p + 2;
    }
    while (end > m && (end[-1] == ' ' || end[-1] == ','))
        end--;
    snprintf(out, len, "%.*s", (int)(end - m), m);
}

void ef_sd_respond_redis_error(ef_sd_req_t *rq, const char *msg) {
    char m[512];
    ef_sd_redis_error_text(msg, m, sizeof m);
    if (strstr(m, "does not exist"))
        ef_sd_respond_error(rq, 404, "%s", m);
    else if (strstr(m, "cannot be") || strstr(m, "already exists") || strstr(m, "not enqueuing"))
        ef_sd_respond_error(rq, 409, "%s", m);
    else if (strncmp(m, "LOADING", 7) == 0 || strncmp(m, "BUSY", 4) == 0 ||
             strncmp(m, "MASTERDOWN", 10) == 0)
        ef_sd_respond_unavailable(rq);
    else if (strncmp(m, "OOM ", 4) == 0 || strncmp(m, "READONLY", 8) == 0 ||
             strncmp(m, "MISCONF", 7) == 0)
        ef_sd_respond_error(rq, 503, "redis: %s", m);
    else
        ef_sd_respond_error(rq, 500, "redis: %s", m);
}

/* ---- Streams ---- */

void ef_sd_stream_begin(ef_sd_req_t *rq, int status, const char *ctype, const char *extra_headers) {
    ef_buf_t b;
    ef_buf_init(&b);
    if (rq->minor == 0)
        rq->keep_alive = 0; /* the end of the body is the end of the connection */
    head_begin(&b, rq, status, ctype);
    rq->streaming = 1;
    rq->chunked = rq->minor >= 1;
    if (rq->chunked)
        ef_buf_appends(&b, "Transfer-Encoding: chunked\r\n");
    if (extra_headers)
        ef_buf_appends(&b, extra_headers);
    ef_buf_appends(&b, "\r\n");
    ef__sd_conn_write(rq->conn, b.s, b.len);
}

void ef_sd_stream_write(ef_sd_req_t *rq, const char *data, size_t len) {
    char *mem;
    size_t n = 0;
    if (rq->head_only || len == 0)
        return;
    mem = ef_malloc(len + 32);
    if (rq->chunked)
        n = (size_t)snprintf(mem, 32, "%zx\r\n", len);
    memcpy(mem + n, data, len);
    n += len;
    if (rq->chunked) {
        mem[n++] = '\r';
        mem[n++] = '\n';
    }
    ef__sd_conn_write(rq->conn, mem, n);
}

void ef_sd_stream_end(ef_sd_req_t *rq) {
    if (rq->chunked && !rq->head_only)
        ef__sd_conn_write(rq->conn, ef_strndup("0\r\n\r\n", 5), 5);
    ef__sd_request_done(rq);
}

void ef_sd_stream_abort(ef_sd_req_t *rq) {
    ef_sd_conn_t *c = rq->conn;
    ef__sd_conn_end(c); /* what is queued still goes out, then FIN: a truncated body */
    ef__sd_request_done(rq);
}

int ef_sd_stream_congested(const ef_sd_req_t *rq) {
    return rq->conn->wq_bytes > EF_SD_WRITE_LOW_WATER;
}

void ef_sd_stream_when_drained(ef_sd_req_t *rq, ef_sd_drain_fn cb) {
    if (rq->conn->closing)
        return;
    if (rq->conn->wq_bytes <= EF_SD_WRITE_LOW_WATER) {
        cb(rq);
        return;
    }
    rq->conn->on_drain = cb;
}
