// SPDX-License-Identifier: MIT
/*
 * The route table: maps method and path to a handler, answers 404 and 405
 * (with Allow), applies the token rule to mutating routes, validates queue
 * names and job ids before any handler builds a key, and serves the
 * embedded dashboard.
 *
 *   GET  /                         dashboard (also /dashboard.css, /dashboard.js)
 *   GET  /health                   ok and the Redis round trip; 503 when Redis is down
 *   GET  /jobs?queue=&status=&limit=&cursor=
 *   POST /jobs                     create a job (JSON body)
 *   GET  /jobs/ID                  the job, ETag / If-None-Match
 *   GET  /jobs/ID/errors           the capped error log
 *   GET  /jobs/ID/results          NDJSON, streamed
 *   GET  /jobs/ID/events           Server-Sent Events
 *   POST /jobs/ID/cancel|pause|resume|retry-errors
 *   GET  /queues                   POST /queues/Q/pause|resume
 *   POST /providers/P/resume       clear a 429's farm-wide pause
 *   GET  /workers                  GET /metrics           GET /events?queue=Q
 */
#include "statusd.h"

#include <stdio.h>
#include <string.h>

extern const unsigned char ef_asset_dashboard_html[];
extern const size_t ef_asset_dashboard_html_len;
extern const unsigned char ef_asset_dashboard_css[];
extern const size_t ef_asset_dashboard_css_len;
extern const unsigned char ef_asset_dashboard_js[];
extern const size_t ef_asset_dashboard_js_len;

#define SEG_MAX 4
#define SEG_LEN 160

#define ALLOW_GET "GET, HEAD"
#define ALLOW_POST "POST"
#define ALLOW_BOTH "GET, HEAD, POST"

/* ---- Query helpers ---- */

int ef_sd_query_str(ef_sd_req_t *rq, const char *name, char *out, size_t len) {
    int r = ef_sd_http_query_get(rq->query, strlen(rq->query), name, out, len);
    if (r < 0) {
        ef_sd_respond_error(rq, 400, "malformed or too long query parameter '%s'", name);
        return -1;
    }
    return r;
}

int ef_sd_query_int(ef_sd_req_t *rq, const char *name, long long min, long long max,
                    long long *out) {
    char v[32];
    int64_t x;
    int r = ef_sd_query_str(rq, name, v, sizeof v);
    if (r <= 0)
        return r;
    if (ef_parse_i64(v, strlen(v), &x) != 0 || x < min || x > max) {
        ef_sd_respond_error(rq, 400, "query parameter '%s' must be a number from %lld to %lld",
                            name, min, max);
        return -1;
    }
    *out = (long long)x;
    return 1;
}

/* The queue named by ?queue= (default "default"), validated; 0 or -1 (answered). */
static int queue_param(ef_sd_req_t *rq, char *q, size_t len) {
    int r = ef_sd_query_str(rq, "queue", q, len);
    if (r < 0)
        return -1;
    if (r == 0 || !q[0])
        snprintf(q, len, "%s", EF_DEFAULT_QUEUE);
    if (!ef_queue_name_valid(q)) {
        ef_sd_respond_error(rq, 400, "invalid queue name (1-64 of A-Z a-z 0-9 _ . -)");
        return -1;
    }
    return 0;
}

/* ---- Access ---- */

static int token_equal(const char *a, size_t an, const char *b) {
    size_t bn = strlen(b);
    unsigned char d = an != bn;
    for (size_t i = 0; i < bn; i++)
        d |= (unsigned char)(b[i] ^ (i < an ? a[i] : 0));
    return d == 0;
}

/* Mutating routes: --read-only refuses them, a token must match. */
static int may_mutate(ef_sd_req_t *rq) {
    const ef_sd_opts_t *o = &rq->sd->opts;
    if (o->read_only) {
        ef_sd_respond_error(rq, 403, "statusd runs read-only");
        return 0;
    }
    if (!o->token)
        return 1;
    if (!rq->auth || strncmp(rq->auth, "Bearer ", 7) != 0) {
        ef_sd_respond_error(rq, 401, "missing bearer token");
        return 0;
    }
    if (!token_equal(rq->auth + 7, strlen(rq->auth + 7), o->token)) {
        ef_sd_respond_error(rq, 401, "bad bearer token");
        return 0;
    }
    return 1;
}

/* ---- Dispatch ---- */

static void respond_asset(ef_sd_req_t *rq, const char *ctype, const unsigned char *data,
                          size_t len) {
    ef_sd_respond(rq, 200, ctype,
                  "Cache-Control: no-cache\r\n"
                  "Content-Security-Policy: default-src 'self'; img-src 'self' data:\r\n",
                  (const char *)data, len);
}

/* Splits the path into at most SEG_MAX decoded segments; -1 when malformed. */
static int split_path(const char *path, char seg[SEG_MAX][SEG_LEN], int *n) {
    const char *p = path + 1;
    *n = 0;
    if (path[0] != '/')
        return -1;
    if (!*p)
        return 0;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (*n == SEG_MAX)
            return -1;
        if (ef_sd_http_pct_decode(p, len, seg[*n], SEG_LEN, 0) < 0)
            return -1;
        (*n)++;
        if (!slash)
            break;
        p = slash + 1;
        if (!*p) /* a trailing slash: /jobs/ is /jobs */
            break;
    }
    return 0;
}

static int method_is(const ef_sd_req_t *rq, const char *m) { return strcmp(rq->method, m) == 0; }

/* Checks the method against allow; answers 405 (with Allow) when it does
 * not fit and returns 0. */
static int allowed(ef_sd_req_t *rq, const char *allow) {
    int get = method_is(rq, "GET") || method_is(rq, "HEAD");
    int post = method_is(rq, "POST");
    char h[64], msg[160];
    ef_buf_t b;
    if ((get && strstr(allow, "GET")) || (post && strstr(allow, "POST")))
        return 1;
    snprintf(h, sizeof h, "Allow: %s\r\n", allow);
    snprintf(msg, sizeof msg, "method %.32s not allowed here (allowed: %s)", rq->method, allow);
    ef_buf_init(&b);
    ef_buf_appends(&b, "{\"error\":");
    ef_buf_append_json_str(&b, msg, strlen(msg));
    ef_buf_appends(&b, ",\"status\":405}\n");
    ef_sd_respond(rq, 405, "application/json", h, b.s, b.len);
    ef_buf_free(&b);
    return 0;
}

static void route_job(ef_sd_req_t *rq, char seg[SEG_MAX][SEG_LEN], int n) {
    char q[EF_QUEUE_MAX_LEN + 2];
    const char *id = seg[1];
    const char *sub = n > 2 ? seg[2] : NULL;
    int is_post_verb = sub && (strcmp(sub, "cancel") == 0 || strcmp(sub, "pause") == 0 ||
                               strcmp(sub, "resume") == 0 || strcmp(sub, "retry-errors") == 0);
    int is_get_sub = sub && (strcmp(sub, "errors") == 0 || strcmp(sub, "results") == 0 ||
                             strcmp(sub, "events") == 0);
    if (n > 3 || (sub && !is_post_verb && !is_get_sub)) {
        ef_sd_respond_error(rq, 404, "no such route");
        return;
    }
    if (!allowed(rq, is_post_verb ? ALLOW_POST : ALLOW_GET))
        return;
    if (!ef_job_id_valid(id)) {
        ef_sd_respond_error(rq, 400, "invalid job id (1-64 of A-Z a-z 0-9 _ -)");
        return;
    }
    if (queue_param(rq, q, sizeof q) != 0)
        return;
    if (is_post_verb && !may_mutate(rq))
        return;
    if (!sub)
        ef_sd_route_job_get(rq, q, id);
    else if (strcmp(sub, "errors") == 0)
        ef_sd_route_job_errors(rq, q, id);
    else if (strcmp(sub, "results") == 0)
        ef_sd_route_job_results(rq, q, id);
    else if (strcmp(sub, "events") == 0)
        ef_sd_events_route(rq, q, id);
    else if (strcmp(sub, "retry-errors") == 0)
        ef_sd_route_job_retry(rq, q, id);
    else
        ef_sd_route_job_control(rq, q, id, sub);
}

void ef_sd_route(ef_sd_req_t *rq) {
    char seg[SEG_MAX][SEG_LEN];
    char q[EF_QUEUE_MAX_LEN + 2];
    int n;
    if (split_path(rq->path, seg, &n) != 0) {
        ef_sd_respond_error(rq, rq->path[0] == '/' ? 404 : 400, "no such route");
        return;
    }
    if (n == 0) {
        if (allowed(rq, ALLOW_GET))
            respond_asset(rq, "text/html; charset=utf-8", ef_asset_dashboard_html,
                          ef_asset_dashboard_html_len);
        return;
    }
    const char *s0 = seg[0];
    if (n == 1 && strcmp(s0, "dashboard.css") == 0) {
        if (allowed(rq, ALLOW_GET))
            respond_asset(rq, "text/css; charset=utf-8", ef_asset_dashboard_css,
                          ef_asset_dashboard_css_len);
    } else if (n == 1 && strcmp(s0, "dashboard.js") == 0) {
        if (allowed(rq, ALLOW_GET))
            respond_asset(rq, "text/javascript; charset=utf-8", ef_asset_dashboard_js,
                          ef_asset_dashboard_js_len);
    } else if (n == 1 && strcmp(s0, "favicon.ico") == 0) {
        if (allowed(rq, ALLOW_GET))
            ef_sd_respond(rq, 204, NULL, "Cache-Control: max-age=86400\r\n", NULL, 0);
    } else if (n == 1 && strcmp(s0, "health") == 0) {
        if (allowed(rq, ALLOW_GET))
            ef_sd_route_health(rq);
    } else if (n == 1 && strcmp(s0, "metrics") == 0) {
        if (allowed(rq, ALLOW_GET))
            ef_sd_route_metrics(rq);
    } else if (n == 1 && strcmp(s0, "workers") == 0) {
        if (allowed(rq, ALLOW_GET))
            ef_sd_route_workers(rq);
    } else if (n == 1 && strcmp(s0, "queues") == 0) {
        if (allowed(rq, ALLOW_GET))
            ef_sd_route_queues(rq);
    } else if (n == 1 && strcmp(s0, "events") == 0) {
        if (allowed(rq, ALLOW_GET) && queue_param(rq, q, sizeof q) == 0)
            ef_sd_events_route(rq, q, NULL);
    } else if (n == 1 && strcmp(s0, "jobs") == 0) {
        if (!allowed(rq, ALLOW_BOTH))
            return;
        if (method_is(rq, "POST")) {
            if (may_mutate(rq))
                ef_sd_route_jobs_post(rq);
        } else if (queue_param(rq, q, sizeof q) == 0) {
            ef_sd_route_jobs_list(rq, q);
        }
    } else if (n >= 2 && strcmp(s0, "jobs") == 0) {
        route_job(rq, seg, n);
    } else if (n == 3 && strcmp(s0, "queues") == 0 &&
               (strcmp(seg[2], "pause") == 0 || strcmp(seg[2], "resume") == 0)) {
        if (!allowed(rq, ALLOW_POST))
            return;
        if (!ef_queue_name_valid(seg[1])) {
            ef_sd_respond_error(rq, 400, "invalid queue name (1-64 of A-Z a-z 0-9 _ . -)");
            return;
        }
        if (may_mutate(rq))
            ef_sd_route_queue_control(rq, seg[1], seg[2]);
    } else if (n == 3 && strcmp(s0, "providers") == 0 && strcmp(seg[2], "resume") == 0) {
        if (!allowed(rq, ALLOW_POST))
            return;
        if (!ef_provider_name_valid(seg[1])) {
            ef_sd_respond_error(rq, 400, "invalid provider name");
            return;
        }
        if (may_mutate(rq))
            ef_sd_route_provider_resume(rq, seg[1]);
    } else {
        ef_sd_respond_error(rq, 404, "no such route");
    }
}
