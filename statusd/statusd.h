// SPDX-License-Identifier: MIT
/*
 * statusd: the farm's HTTP status API, Prometheus metrics and dashboard.
 *
 * One libuv loop runs everything: the listening socket, every client
 * connection (server.c), two Redis connections through ef_redis (one for
 * commands, one in subscriber mode for the queues' event channels, feeding
 * Server-Sent Events in events.c), and one sweep timer for every connection
 * deadline.  statusd keeps no state of its own beyond what is in flight, so
 * any number of instances can run behind a load balancer.
 *
 * A connection answers one request at a time (pipelined requests wait in its
 * input buffer, read-ahead bounded by EF_SD_READ_AHEAD_MAX); a request is
 * parsed by the pure parser in http.c, copied into the connection's
 * ef_sd_req_t, routed (routes.c) and answered by one of the respond.c
 * functions, which end the request and let the next one start.  Handlers
 * that need Redis issue batches (batch.c); each batch holds a reference on
 * the connection, so a client that goes away mid-request only makes the
 * answer land nowhere.
 *
 * Output is bounded: a connection stops taking new requests while more than
 * EF_SD_WRITE_HIGH_WATER bytes wait to be written, and streams (results
 * export) produce their next piece only when the socket has drained below
 * EF_SD_WRITE_LOW_WATER.
 *
 * Connection states, checked by the sweep timer:
 *   reading a request -- header deadline (408) --> closed
 *   idle between requests -- idle timeout --> closed
 *   writing, no progress -- idle timeout --> closed (a client that stopped reading)
 *   ending: FIN sent, reading and discarding -- EF_SD_LINGER_MS --> closed
 */
#ifndef EF_SD_STATUSD_H
#define EF_SD_STATUSD_H

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "ef_common.h"
#include "ef_keys.h"
#include "ef_log.h"
#include "ef_redis.h"
#include "ef_text.h"
#include "http.h"

#define EF_SD_LISTEN_DEFAULT "127.0.0.1:8080"
#define EF_SD_MAX_CONNECTIONS_DEFAULT 1024
#define EF_SD_IDLE_TIMEOUT_MS_DEFAULT 60000
#define EF_SD_HEADER_TIMEOUT_MS_DEFAULT 10000
#define EF_SD_WRITE_HIGH_WATER (64 * 1024) /* bytes queued before we stop producing */
#define EF_SD_WRITE_LOW_WATER (16 * 1024)  /* bytes queued when producing resumes */
#define EF_SD_READ_AHEAD_MAX (64 * 1024)   /* bytes of pipelined requests buffered */
#define EF_SD_LINGER_MS 2000               /* reading after our FIN before closing */
#define EF_SD_REJECT_BUDGET 1024           /* connections past the cap being answered 503 at once */
#define EF_SD_REJECT_LINGER_MS 250         /* reading after a 503's FIN before closing */
#define EF_SD_SSE_PING_MS 15000
#define EF_SD_SSE_RECHECK_MS 2000    /* a followed job is fetched at least this often */
#define EF_SD_EVENTS_COALESCE_MS 100 /* at most one job fetch per job per period */
#define EF_SD_MAX_CHANNELS 1024      /* queues whose events we subscribe to */
#define EF_SD_LIST_LIMIT_DEFAULT 20
#define EF_SD_LIST_LIMIT_MAX 500
#define EF_SD_ERRORS_LIMIT_DEFAULT 100
#define EF_SD_ERRORS_LIMIT_MAX 1000
#define EF_SD_METRICS_JOBS_MAX 1000 /* newest jobs per queue counted by status */
#define EF_SD_WORKERS_MAX 1000

typedef struct ef_sd_s ef_sd_t;
typedef struct ef_sd_conn_s ef_sd_conn_t;
typedef struct ef_sd_req_s ef_sd_req_t;
typedef struct ef_sd_events_s ef_sd_events_t;
typedef struct ef_sd_sse_s ef_sd_sse_t;

/* ---- Options (opts.c) ---- */

typedef struct {
    struct sockaddr_storage listen;
    char listen_text[128];
    const char *redis_url;
    const char *token;     /* NULL: mutating routes are open (loopback only) */
    int read_only;         /* refuse every mutating route */
    const char *port_file; /* write the bound port here once listening */
    int max_connections;
    int idle_timeout_ms;
    int header_timeout_ms;
    size_t max_body; /* bytes */
    ef_log_level_t log_level;
    ef_log_format_t log_format;
} ef_sd_opts_t;

#define EF_SD_OPTS_RUN 0
#define EF_SD_OPTS_HELP 1
#define EF_SD_OPTS_VERSION 2

/* Parses argv into o (defaults first, $STATUSD_TOKEN for the token).
 * Returns EF_SD_OPTS_RUN, _HELP or _VERSION, or -1 with err filled. */
int ef_sd_opts_parse(ef_sd_opts_t *o, int argc, char **argv, char *err);
/* Parses "HOST:PORT" or "[V6]:PORT" (numeric, or localhost). */
int ef_sd_listen_parse(const char *s, struct sockaddr_storage *out, char *err);
int ef_sd_addr_is_loopback(const struct sockaddr *sa);
/* The start rule: listening beyond loopback needs a token or --read-only. */
int ef_sd_opts_check(const ef_sd_opts_t *o, char *err);
const char *ef_sd_usage(void);

/* ---- The state ---- */

struct ef_sd_s {
    uv_loop_t *loop;
    ef_sd_opts_t opts;
    ef_redis_url_t redis_url;
    ef_redis_t *redis; /* commands and scripts */
    ef_redis_t *sub;   /* SUBSCRIBE only */
    ef_sd_events_t *events;
    uv_tcp_t listener;
    uv_timer_t sweep;
    uv_timer_t reaper; /* abandoned enqueues (reaper.c) */
    uv_signal_t sigterm, sigint;
    int listening;
    int stopping;
    ef_sd_conn_t *conns; /* every open connection */
    size_t nconns;
    int bound_port;
    int64_t started_ms;
    /* counters for /metrics */
    uint64_t requests_total;
    uint64_t responses[6];          /* by class: [1] 1xx ... [5] 5xx */
    uint64_t rejected_total;        /* connections past the cap */
    uint64_t rejected_silent_total; /* ... closed with no answer (past the budget) */
    size_t nrejecting;              /* connections being answered 503 */
    uint64_t timeouts_total;
    char date[40]; /* the Date header, refreshed once a second */
    int64_t date_s;
    /* clocks (clock.c) */
    int64_t clock_skew_ms;   /* test-only shift of the wall clock */
    int64_t redis_offset_ms; /* Redis time minus the monotonic clock */
    uint64_t clock_sync_ms;  /* loop time of the last TIME answer */
    int clock_synced;
    int clock_probing;
};

/* ---- Clocks (clock.c) ---- */

#define EF_SD_CLOCK_SYNC_MS 5000 /* TIME asked again this often */

/* Reads EF_STATUSD_TEST_CLOCK_SKEW_MS (test-only). */
void ef_sd_clock_init(ef_sd_t *sd);
/* statusd's own wall clock (Date header, uptime), ms since the epoch. */
int64_t ef_sd_wall_ms(const ef_sd_t *sd);
/* Redis's clock, ms since the epoch: for every age, rate and ETA. */
int64_t ef_sd_redis_ms(const ef_sd_t *sd);
/* Asks TIME now (on connect), or when the last answer is old (the sweep). */
void ef_sd_clock_sync(ef_sd_t *sd);
void ef_sd_clock_tick(ef_sd_t *sd);

/* ---- Housekeeping (reaper.c) ---- */

/* Starts / stops the timer that marks abandoned enqueues of every queue
 * failed (not with --read-only). */
void ef_sd_reaper_start(ef_sd_t *sd);
void ef_sd_reaper_stop(ef_sd_t *sd);

/* ---- Connections and requests (server.c) ---- */

typedef void (*ef_sd_drain_fn)(ef_sd_req_t *rq);

/* The request being answered; lives in its connection. */
struct ef_sd_req_s {
    ef_sd_conn_t *conn;
    ef_sd_t *sd;
    char *raw; /* a copy of the request bytes; the strings below point into it */
    const char *method;
    const char *path;  /* the target up to '?', not decoded */
    const char *query; /* after '?', "" when none */
    const char *body;
    size_t body_len;
    const char *auth; /* Authorization, NULL when absent */
    const char *if_none_match;
    int minor;
    int keep_alive;
    int head_only; /* HEAD: everything but the body */
    int status;    /* sent, for the log */
    int streaming; /* a stream was begun */
    int chunked;   /* ... with chunked transfer coding */
    uint64_t start_ns;
    void *ctx; /* the handler's state, freed with ctx_free */
    void (*ctx_free)(void *ctx);
};

struct ef_sd_conn_s {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown;
    ef_sd_t *sd;
    ef_sd_conn_t *prev, *next;
    char *in; /* received bytes; the next request starts at in_off */
    size_t in_off, in_len, in_cap;
    ef_sd_http_req_t parser;
    ef_sd_req_t rq;
    int refs;              /* batches in flight and other holders */
    size_t wq_bytes;       /* bytes handed to uv_write and not written yet */
    uint64_t activity_ms;  /* loop time of the last byte read or written */
    uint64_t write_ms;     /* loop time of the last write progress */
    uint64_t request_ms;   /* first byte of the request being read, 0 = none */
    uint64_t linger_until; /* ms */
    ef_sd_drain_fn on_drain;
    ef_sd_sse_t *sse;  /* set while the connection carries an event stream */
    unsigned busy : 1; /* rq is being answered */
    unsigned closing : 1;
    unsigned handle_closed : 1;
    unsigned reading : 1;
    unsigned in_process : 1;
    unsigned ending : 1; /* last response queued: FIN after it, then close */
    unsigned lingering : 1;
    unsigned eof : 1;
    unsigned sent_continue : 1;
    unsigned rejected : 1;
};

int ef_sd_server_start(ef_sd_t *sd, char *err);
void ef_sd_server_stop(ef_sd_t *sd);
/* Queues bytes for the client; takes ownership of mem (malloc'd). */
void ef__sd_conn_write(ef_sd_conn_t *c, char *mem, size_t len);
/* Closes at once (answers in flight land nowhere). */
void ef__sd_conn_close(ef_sd_conn_t *c);
/* Sends FIN once everything queued is written, then closes. */
void ef__sd_conn_end(ef_sd_conn_t *c);
void ef__sd_conn_hold(ef_sd_conn_t *c);
void ef__sd_conn_release(ef_sd_conn_t *c);
/* The answer to rq is fully queued: free the handler state, go on with the
 * next pipelined request (or end the connection). */
void ef__sd_request_done(ef_sd_req_t *rq);
/* 1 when the connection of rq is gone (its answers would land nowhere). */
int ef_sd_req_gone(const ef_sd_req_t *rq);

/* ---- Responses (respond.c) ---- */

void ef_sd_respond(ef_sd_req_t *rq, int status, const char *ctype, const char *extra_headers,
                   const char *body, size_t len);
/* Prints o (unformatted); the caller keeps o. */
void ef_sd_respond_json(ef_sd_req_t *rq, int status, const cJSON *o, const char *extra_headers);
/* {"error": "...", "status": N} */
void ef_sd_respond_error(ef_sd_req_t *rq, int status, const char *fmt, ...) EF_PRINTF(3, 4);
/* 503 for a Redis that is down or did not answer. */
void ef_sd_respond_unavailable(ef_sd_req_t *rq);
/* A redis error reply mapped to a status: "does not exist" 404, state
 * conflicts 409, the rest 500. */
void ef_sd_respond_redis_error(ef_sd_req_t *rq, const char *msg);
/* Redis's message from an error reply, without what Redis adds around a
 * script's error (the script's SHA, "user_script:N:"). */
void ef_sd_redis_error_text(const char *msg, char *out, size_t len);
/* Streams: chunked on HTTP/1.1, close-delimited on HTTP/1.0. */
void ef_sd_stream_begin(ef_sd_req_t *rq, int status, const char *ctype, const char *extra_headers);
void ef_sd_stream_write(ef_sd_req_t *rq, const char *data, size_t len);
void ef_sd_stream_end(ef_sd_req_t *rq);
/* Cuts the stream short (the client sees a truncated body) and closes. */
void ef_sd_stream_abort(ef_sd_req_t *rq);
/* Calls cb once the output has drained below EF_SD_WRITE_LOW_WATER: at
 * once when it already has. */
void ef_sd_stream_when_drained(ef_sd_req_t *rq, ef_sd_drain_fn cb);
int ef_sd_stream_congested(const ef_sd_req_t *rq);
/* Formats the Date header value into sd->date when the second changed. */
const char *ef_sd_date(ef_sd_t *sd);

/* ---- Redis batches (batch.c) ---- */

/* A reply copied out of hiredis, so it outlives the reply callback. */
typedef struct ef_sd_reply_s {
    int type; /* REDIS_REPLY_* */
    long long integer;
    char *str; /* NUL-terminated; status, error, string replies */
    size_t len;
    size_t elements;
    struct ef_sd_reply_s **element;
    int block; /* one allocation holds it all (ef_sd_reply_copy) */
} ef_sd_reply_t;

typedef struct ef_sd_batch_s ef_sd_batch_t;
/* Fires once every reply of the batch is in; the batch is freed after. */
typedef void (*ef_sd_batch_cb)(ef_sd_batch_t *b, void *arg);

struct ef_sd_batch_s {
    ef_sd_t *sd;
    ef_sd_conn_t *hold; /* connection kept alive; cb skipped when it closed */
    ef_sd_batch_cb cb;
    void *arg;
    size_t sent, received, cap;
    int ended;
    int down; /* some command got no answer: Redis is unavailable */
    ef_sd_reply_t **replies;
};

/* Starts a batch on the command connection.  hold (may be NULL) is the
 * client connection whose request this serves. */
ef_sd_batch_t *ef_sd_batch_begin(ef_sd_t *sd, ef_sd_conn_t *hold, ef_sd_batch_cb cb, void *arg);
/* Sends one command now; its reply is replies[index in sending order]. */
void ef_sd_batch_cmd(ef_sd_batch_t *b, int argc, const char **argv, const size_t *lens);
/* NULL-terminated list of C strings. */
void ef_sd_batch_cmdv(ef_sd_batch_t *b, const char *arg0, ...);
/* Adds, for each chunk first .. last - 1 of a job, HGETs of its entities
 * and its outcomes (and its result lines when with_results): 2 or 3
 * replies a chunk, in that order. */
void ef_sd_batch_job_chunks(ef_sd_batch_t *b, const char *queue, const char *id, long first,
                            long last, int with_results);
/* Adds a call made by an ef_calls builder (the caller still frees it). */
void ef_sd_batch_call(ef_sd_batch_t *b, const ef_call_t *call);
/* Ends the batch: 0, or -1 when nothing could be sent (Redis not ready; the
 * batch is freed and cb will not fire).  A batch that asked nothing (Redis
 * up) runs cb at once, from inside this call, with no replies. */
int ef_sd_batch_end(ef_sd_batch_t *b);
/* The reply at i, NULL when Redis did not answer it. */
const ef_sd_reply_t *ef_sd_batch_reply(const ef_sd_batch_t *b, size_t i);
/* Takes the reply at i out of the batch: the caller frees it. */
ef_sd_reply_t *ef_sd_batch_take(ef_sd_batch_t *b, size_t i);
/* For a request: begin with rq's connection held and the request as arg. */
ef_sd_batch_t *ef_sd_req_batch(ef_sd_req_t *rq, ef_sd_batch_cb cb);

ef_sd_reply_t *ef_sd_reply_copy(const redisReply *r);
void ef_sd_reply_free(ef_sd_reply_t *r);
/* Integer value of a string or integer reply (0 when neither). */
long long ef_sd_reply_int(const ef_sd_reply_t *r);
/* HGETALL reply (flat array) to a JSON object with numeric values as
 * numbers, except the fields named in strings (NULL-terminated, may be
 * NULL).  NULL when the reply is not an array. */
cJSON *ef_sd_hash_to_json(const ef_sd_reply_t *r, const char *const *strings);
/* 1 when s[0..n) is a JSON-style decimal number (no leading zeros). */
int ef_sd_is_number(const char *s, size_t n);
/* The job hash (HGETALL reply) as ef_job_to_json renders it, or NULL. */
cJSON *ef_sd_job_json(const ef_sd_reply_t *r, int64_t now_ms);
/* An ETag for a job hash: independent of field order. */
void ef_sd_job_etag(const ef_sd_reply_t *r, char *out, size_t len);

/* ---- Events and SSE (events.c) ---- */

int ef_sd_events_create(ef_sd_t *sd);
void ef_sd_events_close(ef_sd_t *sd);
void ef_sd_events_redis_state(ef_sd_t *sd, int ready);
void ef_sd_events_detach(ef_sd_conn_t *c);
size_t ef_sd_events_clients(const ef_sd_t *sd);

/* ---- Routes (routes.c) ---- */

/* What the route table hands a handler, validated before it runs: names
 * that become keys are checked here, so no handler builds a key from
 * unchecked input. */
typedef struct {
    const char *queue;    /* the path's :queue, or ?queue= (EF_SD_ROUTE_QUEUE), else NULL */
    const char *job;      /* the path's :job, else NULL */
    const char *provider; /* the path's :provider, else NULL */
    const char *verb;     /* the pattern's last literal segment ("pause", "results", ...) */
} ef_sd_args_t;

/* Answers rq (now or later, through respond.c) exactly once. */
typedef void (*ef_sd_handler_fn)(ef_sd_req_t *rq, const ef_sd_args_t *a);

#define EF_SD_ROUTE_MUTATES (1u << 0) /* --read-only refuses it; needs the token */
#define EF_SD_ROUTE_QUEUE (1u << 1)   /* reads ?queue= (default "default") */

/* One row of the route table (routes.c).  pattern is the path, segment by
 * segment: a literal, ":job" (a job id), ":queue" (a queue name) or
 * ":provider" (a provider name). */
typedef struct {
    const char *method; /* "GET" (HEAD too) or "POST" */
    const char *pattern;
    ef_sd_handler_fn handler;
    unsigned flags; /* EF_SD_ROUTE_* */
} ef_sd_route_t;

/* Routes rq: 404, 405 (with Allow), 400 for a bad :job, :queue or ?queue=,
 * 401/403 by the token rule, else the route's handler. */
void ef_sd_route(ef_sd_req_t *rq);
/* jobs.c */
void ef_sd_route_job_get(ef_sd_req_t *rq, const ef_sd_args_t *a);
void ef_sd_route_jobs_list(ef_sd_req_t *rq, const ef_sd_args_t *a);
void ef_sd_route_job_errors(ef_sd_req_t *rq, const ef_sd_args_t *a);
/* a->verb: cancel, pause or resume */
void ef_sd_route_job_control(ef_sd_req_t *rq, const ef_sd_args_t *a);
/* a->verb: pause or resume */
void ef_sd_route_queue_control(ef_sd_req_t *rq, const ef_sd_args_t *a);
/* clears a 429's farm-wide pause of a->provider */
void ef_sd_route_provider_resume(ef_sd_req_t *rq, const ef_sd_args_t *a);
/* submit.c */
void ef_sd_route_jobs_post(ef_sd_req_t *rq, const ef_sd_args_t *a);
void ef_sd_route_job_retry(ef_sd_req_t *rq, const ef_sd_args_t *a);
/* results.c */
void ef_sd_route_job_results(ef_sd_req_t *rq, const ef_sd_args_t *a);
/* overview.c */
void ef_sd_route_health(ef_sd_req_t *rq, const ef_sd_args_t *a);
void ef_sd_route_queues(ef_sd_req_t *rq, const ef_sd_args_t *a);
void ef_sd_route_workers(ef_sd_req_t *rq, const ef_sd_args_t *a);
/* Adds the command listing live workers (heartbeat younger than
 * EF_WORKER_HEARTBEAT_TTL_MS in ef_keys.h, on Redis's clock), newest first, at most
 * EF_SD_WORKERS_MAX; with their scores when scores is set.  k and min
 * (len bytes) must live until the batch is sent (it is, at once). */
void ef_sd_batch_workers(ef_sd_batch_t *b, ef_key_t *k, char *min, size_t len, int scores);
/* metrics.c */
void ef_sd_route_metrics(ef_sd_req_t *rq, const ef_sd_args_t *a);
/* events.c: GET /jobs/ID/events, and GET /events?queue=Q (a->job NULL) */
void ef_sd_events_route(ef_sd_req_t *rq, const ef_sd_args_t *a);

/* Query parameter helpers for handlers: 1 found, 0 absent; on a malformed
 * value they answer 400 themselves and return -1. */
int ef_sd_query_str(ef_sd_req_t *rq, const char *name, char *out, size_t len);
int ef_sd_query_int(ef_sd_req_t *rq, const char *name, long long min, long long max,
                    long long *out);

#endif
