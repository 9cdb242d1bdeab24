// SPDX-License-Identifier: MIT
/*
 * GET /metrics: the farm in Prometheus text format (version 0.0.4), read
 * from Redis in three pipelined round trips: the registries (queues,
 * providers, workers), then every queue's lists, counters and newest jobs,
 * every provider's token bucket and every worker's heartbeat, then the
 * status of those jobs.  statusd's own counters come last.
 *
 * Families are collected as they are met and printed grouped, each with its
 * HELP and TYPE lines once.  Queue counters whose meaning we know get named
 * families with labels (entities by outcome, provider responses by class);
 * any other numeric field of farm:{Q}:stats is still exported, as
 * enrichfarm_queue_stat_total{queue,field}.
 */
#include "statusd.h"

#include "ef_job.h"
#include "ef_keys.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_QUEUES_MAX 1000
#define METRICS_PROVIDERS_MAX 1000
#define QCMDS 7 /* commands per queue in the second round */

typedef struct {
    char name[96];
    const char *type;
    char help[160];
    ef_buf_t samples;
} family_t;

typedef struct {
    family_t *fams;
    size_t nfams;
    ef_sd_reply_t *queues, *providers, *workers; /* first round */
    ef_sd_reply_t **second;                      /* second round, in sending order */
    size_t nsecond;
    size_t nq, np, nw;
    const char **qnames, **pnames, **wids;
} metrics_ctx_t;

static void metrics_free(void *p) {
    metrics_ctx_t *x = p;
    for (size_t i = 0; i < x->nfams; i++)
        ef_buf_free(&x->fams[i].samples);
    free(x->fams);
    for (size_t i = 0; i < x->nsecond; i++)
        ef_sd_reply_free(x->second[i]);
    free(x->second);
    ef_sd_reply_free(x->queues);
    ef_sd_reply_free(x->providers);
    ef_sd_reply_free(x->workers);
    free(x->qnames);
    free(x->pnames);
    free(x->wids);
    free(x);
}

/* ---- Families ---- */

static family_t *family(metrics_ctx_t *x, const char *name, const char *type, const char *help) {
    for (size_t i = 0; i < x->nfams; i++)
        if (strcmp(x->fams[i].name, name) == 0)
            return &x->fams[i];
    x->fams = ef_realloc(x->fams, (x->nfams + 1) * sizeof *x->fams);
    family_t *f = &x->fams[x->nfams++];
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->help, sizeof f->help, "%s", help);
    f->type = type;
    ef_buf_init(&f->samples);
    return f;
}

static void label_value(ef_buf_t *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            ef_buf_appendc(b, '\\');
        if (*v == '\n') {
            ef_buf_appends(b, "\\n");
            continue;
        }
        ef_buf_appendc(b, *v);
    }
}

/* A sample value as text, never losing precision: integers (timestamps in
 * ms are 13 digits) as integers, others with the fewest digits that read
 * back as the same double. */
static void format_value(char *out, size_t len, double v) {
    if (isnan(v)) {
        snprintf(out, len, "NaN");
    } else if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) { /* 2^53 */
        snprintf(out, len, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, len, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

/* Adds one sample with its value as text; labels are name/value pairs (NULL
 * names end them). */
static void sample_text(family_t *f, const char *num, const char *l1, const char *v1,
                        const char *l2, const char *v2) {
    ef_buf_appends(&f->samples, f->name);
    if (l1) {
        ef_buf_appendc(&f->samples, '{');
        ef_buf_appends(&f->samples, l1);
        ef_buf_appends(&f->samples, "=\"");
        label_value(&f->samples, v1);
        ef_buf_appendc(&f->samples, '"');
        if (l2) {
            ef_buf_appendc(&f->samples, ',');
            ef_buf_appends(&f->samples, l2);
            ef_buf_appends(&f->samples, "=\"");
            label_value(&f->samples, v2);
            ef_buf_appendc(&f->samples, '"');
        }
        ef_buf_appendc(&f->samples, '}');
    }
    ef_buf_appendc(&f->samples, ' ');
    ef_buf_appends(&f->samples, num);
    ef_buf_appendc(&f->samples, '\n');
}

static void sample(family_t *f, double v, const char *l1, const char *v1, const char *l2,
                   const char *v2) {
    char num[64];
    format_value(num, sizeof num, v);
    sample_text(f, num, l1, v1, l2, v2);
}

static void gauge(metrics_ctx_t *x, const char *name, const char *help, double v, const char *l1,
                  const char *v1, const char *l2, const char *v2) {
    sample(family(x, name, "gauge", help), v, l1, v1, l2, v2);
}

static void counter(metrics_ctx_t *x, const char *name, const char *help, double v, const char *l1,
                    const char *v1, const char *l2, const char *v2) {
    sample(family(x, name, "counter", help), v, l1, v1, l2, v2);
}

/* A metric name part from a field name: [a-zA-Z0-9_] only. */
static void sanitize(char *out, size_t len, const char *s) {
    size_t i = 0;
    for (; *s && i + 1 < len; s++)
        out[i++] =
            ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'))
                ? *s
                : '_';
    out[i] = '\0';
}

/* ---- Queue counters ---- */

static void queue_stats(metrics_ctx_t *x, const char *q, const ef_sd_reply_t *h) {
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        int known = 0;
        if (!k || !v || !ef_sd_is_number(v, strlen(v)))
            continue;
        double n = strtod(v, NULL);
        char oc;
        if (ef_outcome_parse(k, &oc) == 0 && ef_outcome_known(oc)) {
            counter(x, "enrichfarm_entities_total", "Entities with an outcome, by outcome.", n,
                    "queue", q, "outcome", k);
            known = 1;
        }
        if (known)
            continue;
        if (strncmp(k, "responses_", 10) == 0) {
            counter(x, "enrichfarm_provider_responses_total", "Provider responses by status class.",
                    n, "queue", q, "class", k + 10);
        } else if (strcmp(k, "transport_errors") == 0) {
            counter(x, "enrichfarm_provider_responses_total", "Provider responses by status class.",
                    n, "queue", q, "class", "transport_error");
        } else if (strcmp(k, "ratelimit_waits") == 0) {
            counter(x, "enrichfarm_ratelimit_waits_total",
                    "Times a worker waited for a rate-limit token.", n, "queue", q, NULL, NULL);
        } else if (strcmp(k, "requests") == 0) {
            counter(x, "enrichfarm_provider_requests_total", "Requests sent to providers.", n,
                    "queue", q, NULL, NULL);
        } else if (strcmp(k, "cached") == 0) {
            counter(x, "enrichfarm_entities_cached_total",
                    "Entities answered from the response cache.", n, "queue", q, NULL, NULL);
        } else {
            counter(x, "enrichfarm_queue_stat_total", "Other queue counters (farm:{Q}:stats).", n,
                    "queue", q, "field", k);
        }
    }
}

/* ---- Token buckets ---- */

/* The fields of farm:ratelimit:{P} with their metric names, units spelled
 * out as Prometheus wants them (times in seconds since the epoch); a NULL
 * name is the bucket's own bookkeeping, not exported.  A field not listed
 * here is still exported as enrichfarm_ratelimit_<field>. */
static const struct {
    const char *field;
    const char *name;
    const char *help;
    int ms_to_s; /* the field is a time in ms: exported in seconds */
} bucket_fields[] = {
    {"requests", "enrichfarm_ratelimit_requests", "Requests allowed per period (setting).", 0},
    {"per_seconds", "enrichfarm_ratelimit_period_seconds", "The rate limit's period (setting).", 0},
    {"burst", "enrichfarm_ratelimit_burst", "Tokens the bucket holds at most (setting).", 0},
    {"burst_now", "enrichfarm_ratelimit_burst_current", "Burst in force now.", 0},
    {"tokens", "enrichfarm_ratelimit_tokens", "Tokens in the bucket at its last refill.", 0},
    {"ts", "enrichfarm_ratelimit_refill_timestamp_seconds", "Time of the bucket's last refill.", 1},
    {"paused_until", "enrichfarm_ratelimit_paused_until_timestamp_seconds",
     "End of the provider's pause after a 429 (in the past: not paused).", 1},
    {"rate_per_s", "enrichfarm_ratelimit_requests_per_second",
     "Rate in force now, lowered after 429s (formerly enrichfarm_ratelimit_rate_per_s).", 0},
    {"granted", "enrichfarm_ratelimit_granted", "Tokens granted so far.", 0},
    {"waits", "enrichfarm_ratelimit_waits", "Token requests that had to wait.", 0},
    {"penalties", "enrichfarm_ratelimit_penalties", "429 answers that paused the provider.", 0},
    {"learned_requests", "enrichfarm_ratelimit_learned_requests_per_second",
     "Plateau of the adaptive rate learned from the provider's refusals (0 after a clear).", 0},
    {"learned_at", "enrichfarm_ratelimit_learned_timestamp_seconds",
     "When the adaptive rate was last cut (its pause's end; 0: none in force).", 1},
    {"cuts", "enrichfarm_ratelimit_cuts", "Times a refusal cut the adaptive rate.", 0},
    {"cut_ms", NULL, NULL, 0},
    {"ok_at", NULL, NULL, 0},
    {"ok_n", NULL, NULL, 0},
    {"ok_prev_at", NULL, NULL, 0},
    {"ok_prev_n", NULL, NULL, 0},
    {"ok_last", NULL, NULL, 0},
};

/* v (a JSON-style number) of ms as seconds, digit for digit: "1796250000123"
 * becomes "1796250000.123".  Falls back to a double for fractions and
 * exponents. */
static void ms_text_to_s(const char *v, char *out, size_t len) {
    int64_t ms;
    int neg = v[0] == '-';
    if (ef_parse_i64(v + neg, strlen(v + neg), &ms) == 0) {
        snprintf(out, len, "%s%lld.%03lld", neg ? "-" : "", (long long)(ms / 1000),
                 (long long)(ms % 1000));
        return;
    }
    format_value(out, len, strtod(v, NULL) / 1000.0);
}

static void ratelimit_bucket(metrics_ctx_t *x, const char *provider, const ef_sd_reply_t *h) {
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str, *v = h->element[i + 1]->str;
        char name[96], field[48], help[128], num[64];
        size_t k;
        if (!f || !v || !ef_sd_is_number(v, strlen(v)))
            continue;
        for (k = 0; k < EF_ARRAY_LEN(bucket_fields); k++)
            if (strcmp(f, bucket_fields[k].field) == 0)
                break;
        if (k < EF_ARRAY_LEN(bucket_fields) && !bucket_fields[k].name)
            continue;
        if (k < EF_ARRAY_LEN(bucket_fields)) {
            if (bucket_fields[k].ms_to_s)
                ms_text_to_s(v, num, sizeof num);
            else
                format_value(num, sizeof num, strtod(v, NULL));
            sample_text(family(x, bucket_fields[k].name, "gauge", bucket_fields[k].help), num,
                        "provider", provider, NULL, NULL);
            continue;
        }
        sanitize(field, sizeof field, f);
        snprintf(name, sizeof name, "enrichfarm_ratelimit_%s", field);
        snprintf(help, sizeof help, "Token bucket field '%.40s' of each provider.", field);
        gauge(x, name, help, strtod(v, NULL), "provider", provider, NULL, NULL);
    }
}

/* ---- Rounds ---- */

static void render(ef_sd_req_t *rq, metrics_ctx_t *x, ef_sd_batch_t *third) {
    ef_sd_t *sd = rq->sd;
    ef_buf_t out;
    size_t k = 0;
    long alive = 0, in_flight = 0;
    char cls[16];
    gauge(x, "enrichfarm_up", "1 when statusd could read Redis.", 1, NULL, NULL, NULL, NULL);
    for (size_t q = 0; q < x->nq; q++) {
        const char *name = x->qnames[q];
        ef_sd_reply_t **r = x->second + q * QCMDS;
        gauge(x, "enrichfarm_queue_pending", "Chunks waiting in the queue.",
              (double)ef_sd_reply_int(r[0]), "queue", name, NULL, NULL);
        gauge(x, "enrichfarm_queue_processing", "Chunks held by workers.",
              (double)ef_sd_reply_int(r[1]), "queue", name, NULL, NULL);
        gauge(x, "enrichfarm_queue_leased", "Chunks under a visibility lease.",
              (double)ef_sd_reply_int(r[2]), "queue", name, NULL, NULL);
        gauge(x, "enrichfarm_queue_dead", "Chunks that exceeded their delivery attempts.",
              (double)ef_sd_reply_int(r[3]), "queue", name, NULL, NULL);
        gauge(x, "enrichfarm_queue_paused", "1 while the queue is paused.",
              (double)ef_sd_reply_int(r[4]), "queue", name, NULL, NULL);
        queue_stats(x, name, r[5]);
        /* jobs by status among the newest ones */
        long counts[EF_JOB_STATUS_COUNT] = {0};
        const ef_sd_reply_t *ids = r[6];
        for (size_t i = 0; ids && i < ids->elements; i++) {
            if (!ids->element[i]->str || !ef_job_id_valid(ids->element[i]->str))
                continue;
            const ef_sd_reply_t *st = ef_sd_batch_reply(third, k++);
            ef_job_status_t s = ef_job_status_parse(st ? st->str : NULL);
            if (s != EF_JOB_STATUS_UNKNOWN)
                counts[s]++;
        }
        for (int s = 0; s < EF_JOB_STATUS_COUNT; s++)
            gauge(x, "enrichfarm_jobs", "Jobs by status (the newest 1000 of each queue).",
                  (double)counts[s], "queue", name, "status", ef_job_statuses[s]);
    }
    for (size_t p = 0; p < x->np; p++)
        ratelimit_bucket(x, x->pnames[p], x->second[x->nq * QCMDS + p]);
    for (size_t w = 0; w < x->nw; w++) {
        const ef_sd_reply_t *h = x->second[x->nq * QCMDS + x->np + w];
        if (h && h->type == REDIS_REPLY_ARRAY && h->elements == 2 && h->element[0]->str) {
            alive++;
            in_flight += (long)ef_sd_reply_int(h->element[1]);
        }
    }
    gauge(x, "enrichfarm_workers_registered",
          "Workers in the heartbeat registry with a heartbeat younger than its TTL.", (double)x->nw,
          NULL, NULL, NULL, NULL);
    gauge(x, "enrichfarm_workers_alive", "Workers whose heartbeat has not expired.", (double)alive,
          NULL, NULL, NULL, NULL);
    gauge(x, "enrichfarm_workers_in_flight", "Entities in flight on live workers.",
          (double)in_flight, NULL, NULL, NULL, NULL);
    gauge(x, "enrichfarm_statusd_connections", "Open HTTP connections.", (double)sd->nconns, NULL,
          NULL, NULL, NULL);
    gauge(x, "enrichfarm_statusd_event_streams", "Open Server-Sent Event streams.",
          (double)ef_sd_events_clients(sd), NULL, NULL, NULL, NULL);
    counter(x, "enrichfarm_statusd_requests_total", "HTTP requests parsed.",
            (double)sd->requests_total, NULL, NULL, NULL, NULL);
    for (int c = 1; c <= 5; c++) {
        snprintf(cls, sizeof cls, "%dxx", c);
        counter(x, "enrichfarm_statusd_responses_total", "HTTP responses by status class.",
                (double)sd->responses[c], "class", cls, NULL, NULL);
    }
    counter(x, "enrichfarm_statusd_rejected_total", "Connections refused past the cap.",
            (double)sd->rejected_total, NULL, NULL, NULL, NULL);
    counter(x, "enrichfarm_statusd_rejected_unanswered_total",
            "Connections past the cap closed with no answer (past the 503 budget).",
            (double)sd->rejected_silent_total, NULL, NULL, NULL, NULL);
    counter(x, "enrichfarm_statusd_timeouts_total", "Connections closed by a deadline.",
            (double)sd->timeouts_total, NULL, NULL, NULL, NULL);
    long rtt = ef_redis_last_rtt_us(sd->redis);
    if (rtt >= 0)
        gauge(x, "enrichfarm_statusd_redis_rtt_seconds", "Round trip of the last Redis PING.",
              (double)rtt / 1e6, NULL, NULL, NULL, NULL);
    if (sd->redis_url.kind == EF_REDIS_URL_CLUSTER) {
        ef_redis_cluster_stats_t cs;
        ef_redis_cluster_stats(sd->redis, &cs);
        counter(x, "enrichfarm_statusd_redis_redirects_total",
                "Redis Cluster redirections statusd followed, by kind.", (double)cs.moved, "kind",
                "moved", NULL, NULL);
        counter(x, "enrichfarm_statusd_redis_redirects_total",
                "Redis Cluster redirections statusd followed, by kind.", (double)cs.ask, "kind",
                "ask", NULL, NULL);
    }
    ef_buf_init(&out);
    for (size_t i = 0; i < x->nfams; i++) {
        family_t *f = &x->fams[i];
        if (!f->samples.len)
            continue;
        ef_buf_appends(&out, "# HELP ");
        ef_buf_appends(&out, f->name);
        ef_buf_appendc(&out, ' ');
        ef_buf_appends(&out, f->help);
        ef_buf_appends(&out, "\n# TYPE ");
        ef_buf_appends(&out, f->name);
        ef_buf_appendc(&out, ' ');
        ef_buf_appends(&out, f->type);
        ef_buf_appendc(&out, '\n');
        ef_buf_append(&out, f->samples.s, f->samples.len);
    }
    ef_sd_respond(rq, 200, "text/plain; version=0.0.4; charset=utf-8",
                  "Cache-Control: no-store\r\n", out.s ? out.s : "", out.len);
    ef_buf_free(&out);
}

static void third_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    render(rq, rq->ctx, b);
}

static void second_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    metrics_ctx_t *x = rq->ctx;
    ef_key_t k;
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    x->nsecond = b->received;
    x->second = ef_calloc(b->received ? b->received : 1, sizeof *x->second);
    for (size_t i = 0; i < b->received; i++)
        x->second[i] = ef_sd_batch_take(b, i);
    ef_sd_batch_t *b3 = ef_sd_req_batch(rq, third_done);
    for (size_t q = 0; q < x->nq; q++) {
        const ef_sd_reply_t *ids = x->second[q * QCMDS + 6];
        for (size_t i = 0; ids && i < ids->elements; i++)
            if (ids->element[i]->str && ef_job_id_valid(ids->element[i]->str))
                ef_sd_batch_cmdv(b3, "HGET",
                                 ef_key_job(&k, x->qnames[q], ids->element[i]->str, EF_KEY_JOB),
                                 "status", NULL);
    }
    if (ef_sd_batch_end(b3) != 0)
        ef_sd_respond_unavailable(rq);
}

static size_t names_of(const ef_sd_reply_t *r, const char ***out, size_t max,
                       int (*ok)(const char *)) {
    size_t n = 0;
    *out = ef_calloc(r && r->elements ? r->elements : 1, sizeof **out);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && n < max; i++)
        if (r->element[i]->str && ok(r->element[i]->str))
            (*out)[n++] = r->element[i]->str;
    return n;
}

static int plain_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 200)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return 0;
    return ef_utf8_valid(s, n, NULL);
}

static void first_done(ef_sd_batch_t *b, void *arg) {
    ef_sd_req_t *rq = arg;
    metrics_ctx_t *x = rq->ctx;
    ef_key_t k;
    char stop[16];
    if (b->down) {
        ef_sd_respond_unavailable(rq);
        return;
    }
    x->queues = ef_sd_batch_take(b, 0);
    x->providers = ef_sd_batch_take(b, 1);
    x->workers = ef_sd_batch_take(b, 2);
    x->nq = names_of(x->queues, &x->qnames, METRICS_QUEUES_MAX, ef_queue_name_valid);
    x->np = names_of(x->providers, &x->pnames, METRICS_PROVIDERS_MAX, ef_provider_name_valid);
    x->nw = names_of(x->workers, &x->wids, EF_SD_WORKERS_MAX, plain_name);
    snprintf(stop, sizeof stop, "%d", EF_SD_METRICS_JOBS_MAX - 1);
    ef_sd_batch_t *b2 = ef_sd_req_batch(rq, second_done);
    for (size_t q = 0; q < x->nq; q++) {
        const char *name = x->qnames[q];
        ef_sd_batch_cmdv(b2, "LLEN", ef_key_queue(&k, name, EF_KEY_PENDING), NULL);
        ef_sd_batch_cmdv(b2, "LLEN", ef_key_queue(&k, name, EF_KEY_PROCESSING), NULL);
        ef_sd_batch_cmdv(b2, "ZCARD", ef_key_queue(&k, name, EF_KEY_LEASES), NULL);
        ef_sd_batch_cmdv(b2, "LLEN", ef_key_queue(&k, name, EF_KEY_DEAD), NULL);
        ef_sd_batch_cmdv(b2, "EXISTS", ef_key_queue(&k, name, EF_KEY_PAUSED), NULL);
        ef_sd_batch_cmdv(b2, "HGETALL", ef_key_queue(&k, name, EF_KEY_STATS), NULL);
        ef_sd_batch_cmdv(b2, "ZREVRANGE", ef_key_queue(&k, name, EF_KEY_JOBS), "0", stop, NULL);
    }
    for (size_t p = 0; p < x->np; p++)
        ef_sd_batch_cmdv(b2, "HGETALL", ef_key_ratelimit(&k, x->pnames[p]), NULL);
    for (size_t w = 0; w < x->nw; w++)
        ef_sd_batch_cmdv(b2, "HMGET", ef_key_worker(&k, x->wids[w]), "id", "in_flight", NULL);
    if (ef_sd_batch_end(b2) != 0)
        ef_sd_respond_unavailable(rq);
}

void ef_sd_route_metrics(ef_sd_req_t *rq, const ef_sd_args_t *a) {
    (void)a;
    ef_key_t k;
    char stop[32];
    metrics_ctx_t *x = ef_calloc(1, sizeof *x);
    rq->ctx = x;
    rq->ctx_free = metrics_free;
    ef_sd_batch_t *b = ef_sd_req_batch(rq, first_done);
    ef_sd_batch_cmdv(b, "SMEMBERS", ef_key_global(&k, EF_KEY_QUEUES), NULL);
    ef_sd_batch_cmdv(b, "HKEYS", ef_key_global(&k, EF_KEY_PROVIDERS), NULL);
    ef_sd_batch_workers(b, &k, stop, sizeof stop, 0);
    if (ef_sd_batch_end(b) != 0)
        ef_sd_respond_unavailable(rq);
}
