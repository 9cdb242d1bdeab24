// SPDX-License-Identifier: MIT
/*
 * The route table: every route statusd serves is one row of `routes`
 * below (method, path pattern, handler, flags), and ef_sd_route() is the
 * only code that reads it: it answers 404 and 405 (with Allow, from the
 * rows whose path matches), validates the path's placeholders (:job,
 * :queue, :provider; see `placeholders`) and the ?queue= parameter before
 * any handler builds a key, applies the token rule to the rows marked
 * EF_SD_ROUTE_MUTATES, and calls the handler with the validated names.
 * Adding a route is one row here, its handler, and the handler's
 * declaration in statusd.h.
 *
 * Also here: the embedded dashboard's handlers and the query helpers.
 */
#include "statusd.h"

#include <stddef.h>
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

/* ---- The dashboard ---- */

static void respond_asset(ef_sd_req_t *rq, const char *ctype, const unsigned char *data,
                          size_t len) {
    ef_sd_respond(rq, 200, ctype,
                  "Cache-Control: no-cache\r\n"
                  "Content-Security-Policy: default-src 'self'; img-src 'self' data:\r\n",
                  (const char *)data, len);
}

static void route_dashboard(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    respond_asset(rq, "text/html; charset=utf-8", ef_asset_dashboard_html,
                  ef_asset_dashboard_html_len);
}

static void route_dashboard_css(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    respond_asset(rq, "text/css; charset=utf-8", ef_asset_dashboard_css,
                  ef_asset_dashboard_css_len);
}

static void route_dashboard_js(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    respond_asset(rq, "text/javascript; charset=utf-8", ef_asset_dashboard_js,
                  ef_asset_dashboard_js_len);
}

static void route_favicon(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    ef_sd_respond(rq, 204, NULL, "Cache-Control: max-age=86400\r\n", NULL, 0);
}

/* ---- The table ---- */

#define MUT EF_SD_ROUTE_MUTATES
#define QP EF_SD_ROUTE_QUEUE

static const ef_sd_route_t routes[] = {
    {"GET", "/", route_dashboard, 0},
    {"GET", "/dashboard.css", route_dashboard_css, 0},
    {"GET", "/dashboard.js", route_dashboard_js, 0},
    {"GET", "/favicon.ico", route_favicon, 0},
    {"GET", "/health", ef_sd_route_health, 0},
    {"GET", "/metrics", ef_sd_route_metrics, 0},
    {"GET", "/workers", ef_sd_route_workers, 0},
    {"GET", "/queues", ef_sd_route_queues, 0},
    {"POST", "/queues/:queue/pause", ef_sd_route_queue_control, MUT},
    {"POST", "/queues/:queue/resume", ef_sd_route_queue_control, MUT},
    {"GET", "/events", ef_sd_events_route, QP},
    {"GET", "/jobs", ef_sd_route_jobs_list, QP},
    {"POST", "/jobs", ef_sd_route_jobs_post, MUT},
    {"GET", "/jobs/:job", ef_sd_route_job_get, QP},
    {"GET", "/jobs/:job/errors", ef_sd_route_job_errors, QP},
    {"GET", "/jobs/:job/results", ef_sd_route_job_results, QP},
    {"GET", "/jobs/:job/events", ef_sd_events_route, QP},
    {"POST", "/jobs/:job/cancel", ef_sd_route_job_control, QP | MUT},
    {"POST", "/jobs/:job/pause", ef_sd_route_job_control, QP | MUT},
    {"POST", "/jobs/:job/resume", ef_sd_route_job_control, QP | MUT},
    {"POST", "/jobs/:job/retry-errors", ef_sd_route_job_retry, QP | MUT},
    {"POST", "/providers/:provider/resume", ef_sd_route_provider_resume, MUT},
};

#undef MUT
#undef QP

/* ---- Dispatch ---- */

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

/* The placeholders a pattern may hold: each names an ef_sd_args_t field,
 * the check its value must pass before any key is built from it, and the
 * 400 answer when it does not. */
static const struct {
    const char *name;
    size_t field; /* offsetof(ef_sd_args_t, ...) */
    int (*valid)(const char *);
    const char *invalid;
} placeholders[] = {
    {":job", offsetof(ef_sd_args_t, job), ef_job_id_valid,
     "invalid job id (1-64 of A-Z a-z 0-9 _ -)"},
    {":queue", offsetof(ef_sd_args_t, queue), ef_queue_name_valid,
     "invalid queue name (1-64 of A-Z a-z 0-9 _ . -)"},
    {":provider", offsetof(ef_sd_args_t, provider), ef_provider_name_valid,
     "invalid provider name"},
};

static const char **arg_slot(ef_sd_args_t *a, size_t field) {
    return (const char **)(void *)((char *)a + field);
}

/* Matches the decoded segments against a pattern; fills the placeholders'
 * fields (not yet validated) and the verb.  1 on a match. */
static int pattern_match(const char *pattern, char seg[SEG_MAX][SEG_LEN], int n, ef_sd_args_t *a) {
    const char *p = pattern + 1;
    int i = 0;
    memset(a, 0, sizeof *a);
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p), k;
        if (i == n)
            return 0;
        for (k = 0; k < EF_ARRAY_LEN(placeholders); k++)
            if (strlen(placeholders[k].name) == len && strncmp(p, placeholders[k].name, len) == 0)
                break;
        if (k < EF_ARRAY_LEN(placeholders))
            *arg_slot(a, placeholders[k].field) = seg[i];
        else if (strlen(seg[i]) == len && strncmp(p, seg[i], len) == 0)
            a->verb = seg[i];
        else
            return 0;
        i++;
        p = slash ? slash + 1 : p + len;
    }
    return i == n;
}

static int method_fits(const ef_sd_req_t *rq, const char *method) {
    if (strcmp(method, "GET") == 0)
        return strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;
    return strcmp(rq->method, method) == 0;
}

/* 405 with the methods of the rows whose path matched. */
static void respond_405(ef_sd_req_t *rq, int get, int post) {
    const char *allow = get && post ? "GET, HEAD, POST" : get ? "GET, HEAD" : "POST";
    char h[64], msg[160];
    ef_buf_t b;
    snprintf(h, sizeof h, "Allow: %s\r\n", allow);
    snprintf(msg, sizeof msg, "method %.32s not allowed here (allowed: %s)", rq->method, allow);
    ef_buf_init(&b);
    ef_buf_appends(&b, "{\"error\":");
    ef_buf_append_json_str(&b, msg, strlen(msg));
    ef_buf_appends(&b, ",\"status\":405}\n");
    ef_sd_respond(rq, 405, "application/json", h, b.s, b.len);
    ef_buf_free(&b);
}

void ef_sd_route(ef_sd_req_t *rq) {
    char seg[SEG_MAX][SEG_LEN];
    char q[EF_QUEUE_MAX_LEN + 2];
    const ef_sd_route_t *hit = NULL;
    ef_sd_args_t args, a;
    int n, get = 0, post = 0;
    if (split_path(rq->path, seg, &n) != 0) {
        ef_sd_respond_error(rq, rq->path[0] == '/' ? 404 : 400, "no such route");
        return;
    }
    for (size_t i = 0; i < EF_ARRAY_LEN(routes); i++) {
        if (!pattern_match(routes[i].pattern, seg, n, &a))
            continue;
        get |= strcmp(routes[i].method, "GET") == 0;
        post |= strcmp(routes[i].method, "POST") == 0;
        if (!hit && method_fits(rq, routes[i].method)) {
            hit = &routes[i];
            args = a;
        }
    }
    if (!get && !post) {
        ef_sd_respond_error(rq, 404, "no such route");
        return;
    }
    if (!hit) {
        respond_405(rq, get, post);
        return;
    }
    for (size_t k = 0; k < EF_ARRAY_LEN(placeholders); k++) {
        const char *v = *arg_slot(&args, placeholders[k].field);
        if (v && !placeholders[k].valid(v)) {
            ef_sd_respond_error(rq, 400, "%s", placeholders[k].invalid);
            return;
        }
    }
    if ((hit->flags & EF_SD_ROUTE_QUEUE) && !args.queue) {
        if (queue_param(rq, q, sizeof q) != 0)
            return;
        args.queue = q;
    }
    if ((hit->flags & EF_SD_ROUTE_MUTATES) && !may_mutate(rq))
        return;
    hit->handler(rq, &args);
}
