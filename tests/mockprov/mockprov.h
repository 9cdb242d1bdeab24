// SPDX-License-Identifier: MIT
/*
 * mockprov.h: shared declarations of the mock provider (bin/mockprov).
 *
 * The mock provider imitates a TMDB-like HTTP API for the tests, the demo and
 * the benchmarks. It is one libuv loop around one state struct (mp_server);
 * nothing is global. The pieces:
 *
 *   support.c  growable buffers, JSON strings, hashing, PRNG, number parsing, log
 *   http.c     bounded HTTP/1.1 request-head parser and response heads
 *   catalog.c  the deterministic catalogue (items and movies) and its truth
 *   knobs.c    the runtime-tunable settings (latency, faults, rate limit)
 *   referee.c  counters, 1 s windows, the per-path table and the token bucket
 *   routes.c   the endpoints: what each request answers
 *   oauth.c    the OAuth2 token endpoint and the bearer tokens it issued
 *   batch.c    the batch endpoints: many items in one request
 *   server.c   listener, connections, delays and fault actions
 *   main.c     command line, the offline helpers, signals
 *
 * Catalogue design. Every fact is a pure function of (seed, id): nothing is
 * stored per entity. Items 1..N exist unless id % 10 == 0. Movies 1..M
 * (M = min(N, title space x 75 years)) get a (title, year) pair through an
 * affine permutation of the pair space, so distinct movies have distinct pairs,
 * except "twins": about 1 movie in 40 copies the pair of the movie before it,
 * which makes about 5% of movies ambiguous. Search maps a title back to its
 * index with a hash table over the title space and inverts the permutation.
 *
 * Connection design. A connection answers one request at a time, in order:
 * while a request waits (latency, slow trickle, hang) later pipelined requests
 * stay in the read buffer, which holds at most one request head
 * (MP_HEAD_MAX_BYTES); reading stops when it is full.
 */
#ifndef MP_MOCKPROV_H
#define MP_MOCKPROV_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#define MP_VERSION "1.0.0"
#define MP_ERR_LEN 256

#define MP_HEAD_MAX_BYTES 8192           /* request line + headers */
#define MP_BODY_MAX_BYTES (1024 * 1024)  /* larger request bodies get 413 */
#define MP_DEFAULT_LISTEN "127.0.0.1:8088"
#define MP_DEFAULT_MAX_CONNS 4096
#define MP_DEFAULT_CATALOG 1000
#define MP_DEFAULT_SEED 1
#define MP_DEFAULT_HUGE_BYTES (8 * 1024 * 1024)
#define MP_DEFAULT_SLOW_MS 1000
#define MP_SECONDS_KEPT 120 /* whole seconds listed in per_second */
#define MP_YEAR_FIRST 1950
#define MP_YEARS 75 /* 1950..2024 */
#define MP_TITLE_MAX 160
#define MP_SEARCH_MAX_RESULTS 100
#define MP_BATCH_MAX_IDS 1000 /* ids in one batch request */

/* ---- Support (support.c) ---- */

typedef struct mp_buf {
    char *data;
    size_t len;
    size_t cap;
} mp_buf;

void *mp_xmalloc(size_t n);
void *mp_xrealloc(void *p, size_t n);
void mp_buf_init(mp_buf *b);
void mp_buf_free(mp_buf *b);
void mp_buf_reserve(mp_buf *b, size_t extra);
void mp_buf_append(mp_buf *b, const void *p, size_t n);
void mp_buf_puts(mp_buf *b, const char *s);
void mp_buf_printf(mp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mp_buf_u64(mp_buf *b, uint64_t v);
void mp_json_str(mp_buf *b, const char *s, size_t n);

uint64_t mp_mix64(uint64_t x);
uint64_t mp_hash3(uint64_t seed, uint64_t id, uint64_t salt);
uint64_t mp_fnv1a(const char *s, size_t n, int fold_case);
uint64_t mp_rand_next(uint64_t *state);
double mp_rand_unit(uint64_t *state);

int mp_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);
int mp_parse_double(const char *s, size_t n, double *out);
int mp_mem_ieq(const char *a, size_t an, const char *b, size_t bn);
int mp_span_eq(const char *a, size_t an, const char *lit);
void mp_set_error(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

enum { MP_LOG_INFO, MP_LOG_WARN, MP_LOG_ERROR };
void mp_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- HTTP (http.c) ---- */

enum {
    MP_HTTP_EBAD = -1,      /* malformed: 400 */
    MP_HTTP_EHEAD = -2,     /* head larger than MP_HEAD_MAX_BYTES: 431 */
    MP_HTTP_EBODY = -3,     /* Content-Length above MP_BODY_MAX_BYTES: 413 */
    MP_HTTP_EENCODING = -4, /* Transfer-Encoding (unsupported): 400 */
};

typedef struct mp_http_req {
    const char *method;
    size_t method_len;
    const char *target; /* origin-form, points into the caller's buffer */
    size_t target_len;
    int minor;          /* HTTP/1.minor */
    int conn_close;     /* Connection: close seen */
    uint64_t content_length;
    const char *authorization; /* the Authorization value, NULL when absent */
    size_t authorization_len;
} mp_http_req;

int mp_http_parse(const char *buf, size_t len, size_t *scan, mp_http_req *req);
int mp_http_query_next(const char **cur, const char *end, const char **key,
                       size_t *key_len, const char **val, size_t *val_len);
size_t mp_http_pct_decode(char *dst, size_t cap, const char *src, size_t n);
const char *mp_http_reason(int status);
size_t mp_http_head(char *dst, size_t cap, int status, uint64_t content_length,
                    int close, const char *extra);
int mp_http_selftest(void);

/* ---- Catalogue (catalog.c) ---- */

typedef struct mp_catalog {
    uint64_t seed;
    uint64_t items;   /* N: item ids 1..N */
    uint64_t movies;  /* M: movie ids 1..M */
    uint64_t titles;  /* size of the title space */
    uint64_t space;   /* titles x MP_YEARS (title, year) pairs */
    uint64_t mul;     /* affine permutation of the pair space */
    uint64_t mul_inv;
    uint64_t add;
    uint32_t *slots;  /* title hash table: title index + 1, 0 = empty */
    uint64_t slot_mask;
} mp_catalog;

typedef struct mp_movie {
    uint64_t id;
    uint64_t title; /* index in the title space */
    int year;
} mp_movie;

int mp_catalog_init(mp_catalog *cat, uint64_t n, uint64_t seed, char *err);
void mp_catalog_close(mp_catalog *cat);
size_t mp_catalog_title(const mp_catalog *cat, uint64_t t, char *dst,
                        size_t cap);
int mp_catalog_item_id(const mp_catalog *cat, const char *s, size_t n,
                       uint64_t *id);
int mp_catalog_movie(const mp_catalog *cat, uint64_t id, mp_movie *m);
int mp_catalog_parse_year(const char *s, size_t n);
size_t mp_catalog_search(const mp_catalog *cat, const char *q, size_t qn,
                         int year, uint64_t *ids, size_t cap);
void mp_catalog_item_json(const mp_catalog *cat, uint64_t id, mp_buf *b);
void mp_catalog_movie_json(const mp_catalog *cat, const mp_movie *m,
                           mp_buf *b);
void mp_catalog_search_json(const mp_catalog *cat, const char *q, size_t qn,
                            int year, mp_buf *b);
int mp_catalog_dump_csv(const mp_catalog *cat, uint64_t rows, FILE *out);
int mp_catalog_expect_items(const mp_catalog *cat, FILE *in, FILE *out);
int mp_catalog_expect_movies(const mp_catalog *cat, FILE *in, FILE *out);

/* ---- Knobs (knobs.c) ---- */

typedef struct mp_knobs {
    uint64_t latency_ms;
    uint64_t jitter_ms;
    double p_500;
    double p_reset;
    double p_hang;
    double p_malformed;
    double p_huge;
    double p_slow;
    uint64_t huge_bytes;
    uint64_t slow_ms;   /* total duration of a slow trickle */
    uint64_t fail_first;
    double rate;        /* requests per `per` seconds, 0 = unlimited */
    double per;         /* s */
    double burst;       /* 0 = max(1, rate) */
    int log;
    uint64_t retry_after_s;   /* a 429 says this Retry-After (s); 0 = time to the next token */
    uint64_t retry_after_date; /* 0 seconds; 1 an HTTP-date and a Date header; 2 a date alone */
    double clock_skew_s;      /* added to the clock behind those dates */
    uint64_t rate_headers;    /* 0 none; 1 X-RateLimit-*; 2 RateLimit + RateLimit-Policy */
    int huge_chunked;         /* huge bodies chunked, with no Content-Length */
    int oauth;                /* API requests need a valid bearer token (oauth.c) */
    uint64_t token_ttl_s;     /* life of a token from /oauth/token */
    int token_down;           /* /oauth/token answers 503 */
    uint64_t batch_fail;      /* batch requests of 2+ ids answer 503 until this many did */
} mp_knobs;

void mp_knobs_init(mp_knobs *k);
int mp_knobs_is_knob(const char *name, size_t n);
int mp_knobs_set(mp_knobs *k, const char *name, size_t n, const char *val,
                 size_t vn, char *err);
void mp_knobs_json(const mp_knobs *k, mp_buf *b);

/* ---- Referee (referee.c) ---- */

#define MP_STATUS_MAX 600
#define MP_WINDOW_SLICES 100 /* 10 ms slices: a sliding 1 s window */

typedef struct mp_path_entry {
    uint64_t key;    /* 64-bit hash of the target, 0 = empty */
    uint32_t hits;   /* counted requests to this target */
    uint32_t passed; /* of which passed the rate limit */
} mp_path_entry;

typedef struct mp_referee {
    uint64_t epoch_ms0;    /* wall clock at hr_ns0 */
    uint64_t hr_ns0;       /* monotonic clock when the program started */
    uint64_t reset_ns;     /* monotonic clock at the last reset */
    uint64_t requests;
    uint64_t by_status[MP_STATUS_MAX];
    uint64_t resets;
    uint64_t hangs;
    uint64_t malformed;
    uint64_t huge;
    uint64_t slow;
    uint64_t fail_first;
    uint64_t batch_requests; /* requests that reached a batch endpoint */
    uint64_t batch_ids;      /* ids asked for in them */
    uint64_t batch_found;    /* ids answered (in the catalogue) */
    uint64_t batch_failed;   /* batch requests failed on purpose (batch_fail) */
    uint64_t first_request_ms;
    uint64_t last_request_ms;
    uint64_t sec_counts[MP_SECONDS_KEPT + 1];
    uint64_t sec_cur;
    uint64_t slices[MP_WINDOW_SLICES];
    uint64_t slice_cur;
    uint64_t window_sum;
    uint64_t max_in_1s;
    mp_path_entry *paths;
    uint64_t paths_mask;
    uint64_t paths_used;
    int paths_full;
    double tokens;     /* token bucket */
    uint64_t bucket_ns;
} mp_referee;

void mp_referee_init(mp_referee *r);
void mp_referee_close(mp_referee *r);
void mp_referee_reset(mp_referee *r);
mp_path_entry *mp_referee_count(mp_referee *r, const char *target, size_t n,
                                uint64_t now_ns);
int mp_referee_take(mp_referee *r, const mp_knobs *k, uint64_t now_ns,
                    unsigned *retry_after_s);
void mp_referee_bucket_reset(mp_referee *r, const mp_knobs *k,
                             uint64_t now_ns);
uint64_t mp_referee_epoch_ms(const mp_referee *r, uint64_t now_ns);
void mp_referee_json(mp_referee *r, uint64_t now_ns, uint64_t conns,
                     uint64_t conns_total, mp_buf *b);

/* ---- OAuth2 (oauth.c) ---- */

#define MP_OAUTH_TOKENS 64   /* tokens remembered; older ones are invalid */
#define MP_OAUTH_TEXT 256    /* bytes of a client id, secret or scope */

typedef struct mp_oauth_issued {
    uint64_t id;         /* 0 = free slot */
    uint64_t issued_ns;  /* monotonic */
    uint64_t expires_ns;
    char text[48];
} mp_oauth_issued;

typedef struct mp_oauth {
    char client_id[MP_OAUTH_TEXT];
    char client_secret[MP_OAUTH_TEXT];
    mp_oauth_issued tokens[MP_OAUTH_TOKENS];
    uint64_t next_id;       /* ids issued so far */
    uint64_t revoked_upto;  /* tokens with an id up to this are revoked */
    uint64_t fetches, early, refused, unauthorized, basic, form, down, revocations;
    char last_scope[MP_OAUTH_TEXT];
} mp_oauth;

/* ---- Server (server.c) and routes (routes.c) ---- */

typedef struct mp_conn mp_conn;

typedef struct mp_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    int listening;
    int stopping;
    mp_catalog cat;
    mp_knobs knobs;
    mp_referee ref;
    mp_oauth oauth;
    uint64_t rng;       /* fault PRNG state */
    mp_buf body;        /* scratch for building one response body */
    char *pad;          /* shared padding for huge bodies */
    size_t pad_len;
    mp_conn *conns;     /* live connections */
    uint64_t nconns;
    uint64_t conns_total;
    uint64_t max_conns;
    int port;
} mp_server;

int mp_server_init(mp_server *s, uv_loop_t *loop, uint64_t catalog,
                   uint64_t seed, const mp_knobs *knobs, char *err);
int mp_server_listen(mp_server *s, const char *addr, uint64_t max_conns,
                     char *err);
void mp_server_stop(mp_server *s);
void mp_server_close(mp_server *s);

int mp_route_is_admin(const char *path, size_t n);
int mp_route_admin(mp_server *s, const char *path, size_t pn,
                   const char *query, size_t qn, mp_buf *body);
int mp_route_api(mp_server *s, const char *path, size_t pn, const char *query,
                 size_t qn, mp_buf *body);
int mp_oauth_token(mp_server *s, const mp_http_req *req, const char *in,
                   size_t in_len, mp_buf *body);
int mp_oauth_allow(mp_server *s, const mp_http_req *req, mp_buf *body);
void mp_oauth_revoke(mp_server *s);
void mp_oauth_reset(mp_oauth *o);
void mp_oauth_json(const mp_oauth *o, mp_buf *b);
int mp_route_is_batch(const char *path, size_t pn, int is_post);
int mp_route_batch(mp_server *s, const char *path, size_t pn, const char *query,
                   size_t qn, const char *in, size_t in_len, mp_buf *body);

#endif
