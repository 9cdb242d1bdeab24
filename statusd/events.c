// SPDX-License-Identifier: MIT
/*
 * Live progress as Server-Sent Events, fed by Redis pub/sub.
 *
 *   GET /jobs/ID/events      the job now, then again whenever it changes;
 *                            "event: end" and the end of the stream once it
 *                            is completed, cancelled or failed, or deleted
 *   GET /events?queue=Q      every change of every job of queue Q, and the
 *                            queue's own messages (pause, resume)
 *
 * Workers and the job scripts PUBLISH one JSON message per status change or
 * acked batch on farm:{Q}:events.  statusd holds one subscriber connection
 * and subscribes to a queue's channel the first time a client asks for it.
 * A message naming a job that someone follows marks that job's "watch"
 * dirty; the hub's one timer fetches each dirty job at most once per
 * EF_SD_EVENTS_COALESCE_MS and sends the result to every client that
 * follows it.  So a thousand clients watching a busy job cost Redis one
 * HGETALL per period, not one per client or per message, and no client
 * ever causes polling.  The same timer sends a comment line every
 * EF_SD_SSE_PING_MS so that proxies and dead peers are noticed, and every
 * EF_SD_SSE_RECHECK_MS fetches each job that has its own followers once:
 * a job deleted from Redis publishes nothing, and its streams must still
 * end ("event: end" with status "deleted").
 *
 * Messages lost while the subscription was down (Redis restarted, a channel
 * subscribed just after a snapshot was taken) are made good by refetching
 * every watched job once the subscription is back.
 */
#include "statusd.h"

#include "ef_job.h"
#include "ef_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_MAX_QUEUED (1024 * 1024) /* bytes queued for one client before we drop it */
#define RESYNC_DELAY_MS 250          /* refetch after a (re)subscription */
#define RETRY_DOWN_MS 500            /* refetch delay while Redis is down */

struct ef_sd_sse_s {
    ef_sd_conn_t *conn;
    char queue[EF_QUEUE_MAX_LEN + 1];
    char job[EF_JOB_ID_MAX_LEN + 1]; /* "" = the whole queue */
    ef_sd_sse_t *prev, *next;
};

typedef struct ef_sd_watch_s {
    ef_sd_events_t *ev; /* NULL once the hub is gone */
    char queue[EF_QUEUE_MAX_LEN + 1];
    char job[EF_JOB_ID_MAX_LEN + 1];
    char etag[40]; /* of the last snapshot sent */
    int dirty;
    int inflight; /* a fetch is out */
    int pins;     /* in use up the stack: not to be freed */
    uint64_t due_ms;
    uint64_t last_fetch_ms;
    struct ef_sd_watch_s *next;
} ef_sd_watch_t;

typedef struct ef_sd_chan_s {
    ef_sd_events_t *ev;
    char queue[EF_QUEUE_MAX_LEN + 1];
    int subscribed;
    struct ef_sd_chan_s *next;
} ef_sd_chan_t;

struct ef_sd_events_s {
    ef_sd_t *sd;
    uv_timer_t tick;
    ef_sd_sse_t *clients;
    size_t nclients;
    ef_sd_watch_t *watches;
    ef_sd_chan_t *chans;
    size_t nchans;
    uint64_t last_ping_ms;
    uint64_t last_recheck_ms;
    int ever_ready;
};

static void watch_fetch(ef_sd_events_t *ev, ef_sd_watch_t *w);

/* ---- Watches ---- */

static ef_sd_watch_t *watch_find(ef_sd_events_t *ev, const char *queue, const char *job) {
    for (ef_sd_watch_t *w = ev->watches; w; w = w->next)
        if (strcmp(w->job, job) == 0 && strcmp(w->queue, queue) == 0)
            return w;
    return NULL;
}

static ef_sd_watch_t *watch_get(ef_sd_events_t *ev, const char *queue, const char *job) {
    ef_sd_watch_t *w = watch_find(ev, queue, job);
    if (w)
        return w;
    w = ef_calloc(1, sizeof *w);
    w->ev = ev;
    snprintf(w->queue, sizeof w->queue, "%s", queue);
    snprintf(w->job, sizeof w->job, "%s", job);
    w->next = ev->watches;
    ev->watches = w;
    return w;
}

/* Who follows the job: clients of the job itself, or of its whole queue. */
static int watch_wanted(const ef_sd_events_t *ev, const ef_sd_watch_t *w) {
    for (const ef_sd_sse_t *c = ev->clients; c; c = c->next)
        if (strcmp(c->queue, w->queue) == 0 && (!c->job[0] || strcmp(c->job, w->job) == 0))
            return 1;
    return 0;
}

/* Drops the watches nobody follows any more (a fetch in flight keeps its
 * watch until it lands). */
static void watches_prune(ef_sd_events_t *ev) {
    ef_sd_watch_t **pp = &ev->watches;
    while (*pp) {
        ef_sd_watch_t *w = *pp;
        if (!w->inflight && !w->pins && !watch_wanted(ev, w)) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

static void watch_mark(ef_sd_events_t *ev, ef_sd_watch_t *w, uint64_t delay_ms) {
    uint64_t now = uv_now(ev->sd->loop);
    uint64_t due = now + delay_ms;
    if (w->last_fetch_ms && due < w->last_fetch_ms + EF_SD_EVENTS_COALESCE_MS)
        due = w->last_fetch_ms + EF_SD_EVENTS_COALESCE_MS;
    if (!w->dirty || due < w->due_ms)
        w->due_ms = due;
    w->dirty = 1;
}

/* ---- Sending ---- */

static void client_send(ef_sd_sse_t *c, const char *text, size_t len) {
    ef_sd_conn_t *conn = c->conn;
    if (conn->wq_bytes > SSE_MAX_QUEUED) {
        ef_debug("dropping an event stream whose client does not read");
        ef__sd_conn_close(conn); /* detaches c */
        return;
    }
    ef_sd_stream_write(&conn->rq, text, len);
}

static void client_detach(ef_sd_events_t *ev, ef_sd_sse_t *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        ev->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ev->nclients--;
    c->conn->sse = NULL;
    free(c);
}

/* Ends a job stream after its final snapshot. */
static void client_finish(ef_sd_events_t *ev, ef_sd_sse_t *c, const char *status) {
    ef_sd_conn_t *conn = c->conn;
    char msg[96];
    int n = snprintf(msg, sizeof msg, "event: end\ndata: {\"status\":\"%s\"}\n\n", status);
    client_send(c, msg, (size_t)n);
    if (conn->closing || !conn->sse)
        return;
    client_detach(ev, c);
    ef_sd_stream_end(&conn->rq);
}

static void broadcast(ef_sd_events_t *ev, ef_sd_watch_t *w, const char *json, const char *status,
                      long long updated_at, ef_sd_sse_t *only) {
    ef_buf_t b;
    int final = ef_job_status_final(status);
    ef_sd_sse_t *c, *next;
    char head[64];
    ef_buf_init(&b);
    snprintf(head, sizeof head, "event: job\nid: %lld\ndata: ", updated_at);
    ef_buf_appends(&b, head);
    ef_buf_appends(&b, json);
    ef_buf_appends(&b, "\n\n");
    for (c = ev->clients; c; c = next) {
        next = c->next;
        if (only && c != only)
            continue;
        if (strcmp(c->queue, w->queue) != 0 || (c->job[0] && strcmp(c->job, w->job) != 0))
            continue;
        ef_sd_conn_t *conn = c->conn;
        int job_stream = c->job[0] != 0;
        client_send(c, b.s, b.len); /* may close the connection and free c */
        if (final && job_stream && !conn->closing && conn->sse == c)
            client_finish(ev, c, status);
    }
    ef_buf_free(&b);
}

/* Renders a job hash and sends it to the watch's clients when it changed
 * since the last time; to `only` alone (whatever changed) when it is set. */
static void snapshot_send(ef_sd_events_t *ev, ef_sd_watch_t *w, const ef_sd_reply_t *r,
                          ef_sd_sse_t *only) {
    char etag[40];
    cJSON *o, *st, *up;
    char *json;
    ef_sd_job_etag(r, etag, sizeof etag);
    if (!only) {
        if (strcmp(etag, w->etag) == 0)
            return;
        snprintf(w->etag, sizeof w->etag, "%s", etag);
    } else if (!w->etag[0]) {
        snprintf(w->etag, sizeof w->etag, "%s", etag);
    }
    o = ef_sd_job_json(r, ef_sd_redis_ms(ev->sd));
    if (!o)
        return;
    st = cJSON_GetObjectItemCaseSensitive(o, "status");
    up = cJSON_GetObjectItemCaseSensitive(o, "updated_at");
    json = cJSON_PrintUnformatted(o);
    if (json)
        broadcast(ev, w, json, cJSON_IsString(st) ? st->valuestring : "",
                  cJSON_IsNumber(up) ? (long long)up->valuedouble : 0, only);
    cJSON_free(json);
    cJSON_Delete(o);
}

/* The job is gone (deleted from Redis): its own streams end with
 * "event: end" and status "deleted" rather than waiting forever. */
static void job_gone(ef_sd_events_t *ev, ef_sd_watch_t *w) {
    ef_sd_sse_t *c, *next;
    for (c = ev->clients; c; c = next) {
        next = c->next;
        if (c->job[0] && strcmp(c->job, w->job) == 0 && strcmp(c->queue, w->queue) == 0)
            client_finish(ev, c, "deleted");
    }
}

/* 1 when some client follows this very job (not only its queue). */
static int watch_has_job_client(const ef_sd_events_t *ev, const ef_sd_watch_t *w) {
    for (const ef_sd_sse_t *c = ev->clients; c; c = c->next)
        if (c->job[0] && strcmp(c->job, w->job) == 0 && strcmp(c->queue, w->queue) == 0)
            return 1;
    return 0;
}

static void watch_fetched(ef_sd_batch_t *b, void *arg) {
    ef_sd_watch_t *w = arg;
    ef_sd_events_t *ev = w->ev;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    if (!ev) { /* the hub closed while this was in flight */
        free(w);
        return;
    }
    if (b->down || !r || r->type != REDIS_REPLY_ARRAY) {
        watch_mark(ev, w, RETRY_DOWN_MS);
    } else if (r->elements > 0) {
        snapshot_send(ev, w, r, NULL); /* clients may go away meanwhile: w stays */
    } else {
        job_gone(ev, w); /* likewise */
    }
    w->inflight = 0;
    watches_prune(ev);
}

static void watch_fetch(ef_sd_events_t *ev, ef_sd_watch_t *w) {
    ef_key_t k;
    ef_sd_batch_t *b = ef_sd_batch_begin(ev->sd, NULL, watch_fetched, w);
    ef_sd_batch_cmdv(b, "HGETALL", ef_key_job(&k, w->queue, w->job, EF_KEY_JOB), NULL);
    w->last_fetch_ms = uv_now(ev->sd->loop);
    if (ef_sd_batch_end(b) != 0) {
        w->dirty = 1;
        w->due_ms = w->last_fetch_ms + RETRY_DOWN_MS;
        return;
    }
    w->dirty = 0;
    w->inflight = 1;
}

/* ---- The timer ---- */

static void on_tick(uv_timer_t *t) {
    ef_sd_events_t *ev = t->data;
    uint64_t now = uv_now(ev->sd->loop);
    for (ef_sd_watch_t *w = ev->watches; w; w = w->next)
        if (w->dirty && !w->inflight && now >= w->due_ms)
            watch_fetch(ev, w);
    if (now - ev->last_recheck_ms >= EF_SD_SSE_RECHECK_MS) {
        /* a job deleted from Redis publishes nothing: look again now and then */
        ev->last_recheck_ms = now;
        for (ef_sd_watch_t *w = ev->watches; w; w = w->next)
            if (!w->dirty && !w->inflight && watch_has_job_client(ev, w))
                watch_mark(ev, w, 0);
    }
    if (now - ev->last_ping_ms >= EF_SD_SSE_PING_MS) {
        ef_sd_sse_t *c, *next;
        ev->last_ping_ms = now;
        for (c = ev->clients; c; c = next) {
            next = c->next;
            client_send(c, ": ping\n\n", 8);
        }
    }
    if (!ev->clients && !ev->watches)
        uv_timer_stop(&ev->tick);
}

static void tick_ensure(ef_sd_events_t *ev) {
    if (!uv_is_active((uv_handle_t *)&ev->tick)) {
        ev->last_ping_ms = ev->last_recheck_ms = uv_now(ev->sd->loop);
        uv_timer_start(&ev->tick, on_tick, EF_SD_EVENTS_COALESCE_MS / 2,
                       EF_SD_EVENTS_COALESCE_MS / 2);
    }
}

/* ---- Subscriptions ---- */

static void on_message(ef_redis_t *r, redisReply *reply, void *arg) {
    ef_sd_chan_t *ch = arg;
    ef_sd_events_t *ev = ch->ev;
    const redisReply *payload;
    cJSON *o, *job;
    (void)r;
    if (!reply || !ev || reply->elements != 3)
        return;
    payload = reply->element[2];
    if (payload->type != REDIS_REPLY_STRING || !ev->clients)
        return;
    o = cJSON_ParseWithLength(payload->str, payload->len);
    job = cJSON_GetObjectItemCaseSensitive(o, "job");
    if (cJSON_IsString(job) && ef_job_id_valid(job->valuestring)) {
        ef_sd_watch_t *w = watch_find(ev, ch->queue, job->valuestring);
        if (!w) {
            ef_sd_watch_t probe = {.ev = ev};
            snprintf(probe.queue, sizeof probe.queue, "%s", ch->queue);
            snprintf(probe.job, sizeof probe.job, "%s", job->valuestring);
            if (watch_wanted(ev, &probe))
                w = watch_get(ev, ch->queue, job->valuestring);
        }
        if (w) {
            watch_mark(ev, w, 0);
            tick_ensure(ev);
        }
    } else if (o && !memchr(payload->str, '\n', payload->len)) {
        /* a queue message: forward it as it is to whole-queue clients */
        ef_buf_t b;
        ef_sd_sse_t *c, *next;
        ef_buf_init(&b);
        ef_buf_appends(&b, "event: queue\ndata: ");
        ef_buf_append(&b, payload->str, payload->len);
        ef_buf_appends(&b, "\n\n");
        for (c = ev->clients; c; c = next) {
            next = c->next;
            if (!c->job[0] && strcmp(c->queue, ch->queue) == 0)
                client_send(c, b.s, b.len);
        }
        ef_buf_free(&b);
    }
    cJSON_Delete(o);
}

/* Subscribes to the queue's channel when it can; 1 when it did just now. */
static int chan_subscribe(ef_sd_events_t *ev, ef_sd_chan_t *ch) {
    ef_key_t k;
    if (ch->subscribed || !ef_redis_ready(ev->sd->sub))
        return 0;
    if (ef_redis_subscribe(ev->sd->sub, ef_key_queue(&k, ch->queue, EF_KEY_EVENTS), on_message,
                           ch) != 0)
        return 0;
    ch->subscribed = 1;
    /* what was published before the subscription took effect is refetched */
    for (ef_sd_watch_t *w = ev->watches; w; w = w->next)
        if (strcmp(w->queue, ch->queue) == 0)
            watch_mark(ev, w, RESYNC_DELAY_MS);
    tick_ensure(ev);
    return 1;
}

/* Makes sure the queue's channel is (or will be) subscribed; -1 past the
 * cap, 1 when the subscription was sent just now (it may miss what was
 * published a moment ago), 0 otherwise. */
static int chan_ensure(ef_sd_events_t *ev, const char *queue) {
    ef_sd_chan_t *ch;
    for (ch = ev->chans; ch; ch = ch->next)
        if (strcmp(ch->queue, queue) == 0)
            break;
    if (!ch) {
        if (ev->nchans >= EF_SD_MAX_CHANNELS)
            return -1;
        ch = ef_calloc(1, sizeof *ch);
        ch->ev = ev;
        snprintf(ch->queue, sizeof ch->queue, "%s", queue);
        ch->next = ev->chans;
        ev->chans = ch;
        ev->nchans++;
    }
    return chan_subscribe(ev, ch);
}

void ef_sd_events_redis_state(ef_sd_t *sd, int ready) {
    ef_sd_events_t *ev = sd->events;
    if (!ev || ready <= 0)
        return;
    for (ef_sd_chan_t *ch = ev->chans; ch; ch = ch->next)
        chan_subscribe(ev, ch);
    if (ev->ever_ready) /* back after an outage: messages were lost */
        for (ef_sd_watch_t *w = ev->watches; w; w = w->next)
            watch_mark(ev, w, RESYNC_DELAY_MS);
    ev->ever_ready = 1;
    if (ev->watches)
        tick_ensure(ev);
}

/* ---- Clients ---- */

/* Registers rq's connection as a stream client; NULL when the connection
 * is already going away (writing the stream's head may have found the
 * client gone), in which case nothing may point at it. */
static ef_sd_sse_t *client_add(ef_sd_events_t *ev, ef_sd_req_t *rq, const char *queue,
                               const char *job) {
    if (rq->conn->closing || rq->conn->ending)
        return NULL;
    ef_sd_sse_t *c = ef_calloc(1, sizeof *c);
    c->conn = rq->conn;
    snprintf(c->queue, sizeof c->queue, "%s", queue);
    snprintf(c->job, sizeof c->job, "%s", job ? job : "");
    c->next = ev->clients;
    if (ev->clients)
        ev->clients->prev = c;
    ev->clients = c;
    ev->nclients++;
    rq->conn->sse = c;
    tick_ensure(ev);
    return c;
}

static const char sse_headers[] = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

typedef struct {
    char queue[EF_QUEUE_MAX_LEN + 1];
    char job[EF_JOB_ID_MAX_LEN + 1];
} sse_route_ctx_t;

static void job_snapshot_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    sse_route_ctx_t *x = rq->ctx;
    ef_sd_events_t *ev = rq->sd->events;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    if (b->down || !r) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        ef_sd_respond_error(rq, 404, "job %s not found in queue %s", x->job, x->queue);
        return;
    }
    int fresh = chan_ensure(ev, x->queue);
    if (fresh < 0) {
        ef_sd_respond_error(rq, 503, "too many queues followed");
        return;
    }
    ef_sd_stream_begin(rq, 200, "text/event-stream", sse_headers);
    ef_sd_stream_write(rq, "retry: 3000\n\n", 13);
    if (rq->head_only) {
        ef_sd_stream_end(rq);
        return;
    }
    ef_sd_sse_t *me = client_add(ev, rq, x->queue, x->job);
    if (!me)
        return;
    ef_sd_watch_t *w = watch_get(ev, x->queue, x->job);
    if (fresh) /* published between the snapshot and the subscription: refetch */
        watch_mark(ev, w, RESYNC_DELAY_MS);
    w->pins++;
    snapshot_send(ev, w, r, me); /* may end the stream when the job is final */
    w->pins--;
    watches_prune(ev);
}

void ef_sd_events_route(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    const char *queue = a->queue, *job = a->job;
    ef_sd_events_t *ev = rq->sd->events;
    ef_key_t k;
    if (!job) {
        if (chan_ensure(ev, queue) < 0) {
            ef_sd_respond_error(rq, 503, "too many queues followed");
            return;
        }
        ef_sd_stream_begin(rq, 200, "text/event-stream", sse_headers);
        ef_sd_stream_write(rq, "retry: 3000\n\n", 13);
        if (rq->head_only) {
            ef_sd_stream_end(rq);
            return;
        }
        client_add(ev, rq, queue, NULL);
        return;
    }
    sse_route_ctx_t *x = ef_calloc(1, sizeof *x);
    snprintf(x->queue, sizeof x->queue, "%s", queue);
    snprintf(x->job, sizeof x->job, "%s", job);
    rq->ctx = x;
    rq->ctx_free = free;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, job_snapshot_done);
    ef_sd_batch_cmdv(b, "HGETALL", ef_key_job(&k, queue, job, EF_KEY_JOB), NULL);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}

void ef_sd_events_detach(ef_sd_conn_t *c) {
    ef_sd_events_t *ev = c->sd->events;
    if (!c->sse || !ev)
        return;
    client_detach(ev, c->sse);
    watches_prune(ev);
}

size_t ef_sd_events_clients(const ef_sd_t *sd) { return sd->events ? sd->events->nclients : 0; }

int ef_sd_events_create(ef_sd_t *sd) {
    ef_sd_events_t *ev = ef_calloc(1, sizeof *ev);
    ev->sd = sd;
    uv_timer_init(sd->loop, &ev->tick);
    ev->tick.data = ev;
    sd->events = ev;
    return 0;
}

static void on_tick_closed(uv_handle_t *h) { free(h->data); }

void ef_sd_events_close(ef_sd_t *sd) {
    ef_sd_events_t *ev = sd->events;
    if (!ev)
        return;
    while (ev->clients)
        client_detach(ev, ev->clients);
    while (ev->watches) {
        ef_sd_watch_t *w = ev->watches;
        ev->watches = w->next;
        if (w->inflight)
            w->ev = NULL; /* its fetch frees it */
        else
            free(w);
    }
    while (ev->chans) {
        ef_sd_chan_t *ch = ev->chans;
        ev->chans = ch->next;
        free(ch);
    }
    sd->events = NULL;
    uv_timer_stop(&ev->tick);
    uv_close((uv_handle_t *)&ev->tick, on_tick_closed);
}
