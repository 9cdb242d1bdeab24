// SPDX-License-Identifier: MIT
/*
 * routes.c: what each endpoint of the mock provider answers. Two groups:
 * the API (/item/{id}, /3/search/movie, /3/movie/{id}), which is counted,
 * rate limited and faulted by server.c before it gets here, and the admin
 * endpoints (/stats, /stats/reset, /control), which never are. Each route
 * appends a JSON body to the caller's buffer and returns the status; no
 * route does I/O or keeps a pointer into the request.
 */
#include "mockprov.h"

#include <string.h>

static const char mp_not_found_json[] = "{\"error\":\"not found\"}";
static const char mp_tmdb_not_found_json[] =
    "{\"status_code\":34,\"status_message\":"
    "\"The resource you requested could not be found.\"}";

static int mp_route_prefix(const char *path, size_t n, const char *prefix,
                           const char **rest, size_t *rest_len)
{
    size_t pn = strlen(prefix);
    if (n < pn || memcmp(path, prefix, pn) != 0)
        return 0;
    *rest = path + pn;
    *rest_len = n - pn;
    return 1;
}

/* ---- API ---- */

static int mp_route_search(mp_server *s, const char *query, size_t qn,
                           mp_buf *body)
{
    const char *cur = query, *end = query + qn, *k, *v;
    const char *title_raw = NULL, *year_raw = NULL;
    size_t kn, vn, title_raw_len = 0, year_raw_len = 0;
    char title[MP_TITLE_MAX], year[16];
    size_t tn = 0, yn = 0;

    while (mp_http_query_next(&cur, end, &k, &kn, &v, &vn)) {
        if (mp_span_eq(k, kn, "query")) {
            title_raw = v;
            title_raw_len = vn;
        } else if (mp_span_eq(k, kn, "year")) {
            year_raw = v;
            year_raw_len = vn;
        }
    }
    if (title_raw != NULL)
        tn = mp_http_pct_decode(title, sizeof(title), title_raw, title_raw_len);
    if (year_raw != NULL)
        yn = mp_http_pct_decode(year, sizeof(year), year_raw, year_raw_len);
    int y = yn == (size_t)-1 ? -1 : mp_catalog_parse_year(year, yn);
    if (tn == (size_t)-1) /* longer than any title: no match */
        y = -1, tn = 0;
    mp_catalog_search_json(&s->cat, title, tn, y, body);
    return 200;
}

/* Answers an API request; returns the status, body appended to `body`. */
int mp_route_api(mp_server *s, const char *path, size_t pn, const char *query,
                 size_t qn, mp_buf *body)
{
    const char *rest;
    size_t rn;
    uint64_t id;

    if (mp_route_prefix(path, pn, "/item/", &rest, &rn)) {
        if (mp_catalog_item_id(&s->cat, rest, rn, &id) != 0) {
            mp_buf_append(body, mp_not_found_json,
                          sizeof(mp_not_found_json) - 1);
            return 404;
        }
        mp_catalog_item_json(&s->cat, id, body);
        return 200;
    }
    if (mp_span_eq(path, pn, "/3/search/movie"))
        return mp_route_search(s, query, qn, body);
    if (mp_route_prefix(path, pn, "/3/movie/", &rest, &rn)) {
        mp_movie m;
        if (mp_parse_u64(rest, rn, UINT64_MAX, &id) != 0 ||
            mp_catalog_movie(&s->cat, id, &m) != 0) {
            mp_buf_append(body, mp_tmdb_not_found_json,
                          sizeof(mp_tmdb_not_found_json) - 1);
            return 404;
        }
        mp_catalog_movie_json(&s->cat, &m, body);
        return 200;
    }
    mp_buf_append(body, mp_not_found_json, sizeof(mp_not_found_json) - 1);
    return 404;
}

/* ---- Admin ---- */

int mp_route_is_admin(const char *path, size_t n)
{
    return mp_span_eq(path, n, "/stats") ||
           mp_span_eq(path, n, "/stats/reset") ||
           mp_span_eq(path, n, "/control") ||
           mp_span_eq(path, n, "/oauth/revoke");
}

/* Applies every name=value of a /control query, all or nothing. */
static int mp_route_control(mp_server *s, const char *query, size_t qn,
                            mp_buf *body)
{
    const char *cur = query, *end = query + qn, *k, *v;
    size_t kn, vn;
    mp_knobs next = s->knobs;
    char err[MP_ERR_LEN], name[64], val[64];

    while (mp_http_query_next(&cur, end, &k, &kn, &v, &vn)) {
        size_t nn = mp_http_pct_decode(name, sizeof(name), k, kn);
        size_t vl = mp_http_pct_decode(val, sizeof(val), v, vn);
        if (nn == (size_t)-1 || vl == (size_t)-1) {
            mp_buf_puts(body, "{\"error\":\"setting too long\"}");
            return 400;
        }
        if (mp_knobs_set(&next, name, nn, val, vl, err) != 0) {
            mp_buf_puts(body, "{\"error\":");
            mp_json_str(body, err, strlen(err));
            mp_buf_puts(body, "}");
            return 400;
        }
    }
    int limit_changed = next.rate != s->knobs.rate ||
                        next.per != s->knobs.per ||
                        next.burst != s->knobs.burst;
    s->knobs = next;
    if (limit_changed)
        mp_referee_bucket_reset(&s->ref, &s->knobs, uv_hrtime());
    mp_knobs_json(&s->knobs, body);
    return 200;
}

/* Answers /stats, /stats/reset and /control; returns the status. */
int mp_route_admin(mp_server *s, const char *path, size_t pn,
                   const char *query, size_t qn, mp_buf *body)
{
    if (mp_span_eq(path, pn, "/control"))
        return mp_route_control(s, query, qn, body);
    if (mp_span_eq(path, pn, "/stats/reset")) {
        mp_referee_reset(&s->ref);
        mp_oauth_reset(&s->oauth);
    }
    if (mp_span_eq(path, pn, "/oauth/revoke"))
        mp_oauth_revoke(s);
    mp_referee_json(&s->ref, uv_hrtime(), s->nconns, s->conns_total, body);
    if (body->len > 0 && body->data[body->len - 1] == '}') {
        body->len--; /* the referee's object gets the "oauth" member */
        mp_buf_puts(body, ",");
        mp_oauth_json(&s->oauth, body);
        mp_buf_puts(body, "}");
    }
    return 200;
}
