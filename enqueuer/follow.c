// SPDX-License-Identifier: MIT
/*
 * --wait: follows a job until it ends.  On a terminal, a progress bar on
 * stderr redrawn four times a second (processed/total, percent, rate, ETA,
 * the four outcome counts); otherwise a plain line every few seconds and at
 * every status change.  A lost Redis connection is retried with capped
 * backoff for a bounded time.  Returns 0 when the job completes, 2 when it
 * failed, 3 when it was cancelled.
 */
#include "enqueuer.h"

#include "ef_job.h"
#include "ef_keys.h"
#include "ef_log.h"
#include "ef_redis_sync.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FOLLOW_TTY_INTERVAL_MS 250
#define FOLLOW_LINE_INTERVAL_MS 5000
#define FOLLOW_RECONNECT_MAX_MS 120000 /* give up after this long without Redis */
/* A poll of one job hash answers in ms: one that takes longer than this is
 * a node gone without a reset (a container's address vanished, a failover
 * behind a firewall), and the enqueuer asks again, through the sentinels
 * where the URL names them, instead of waiting out the 30 s of an enqueue. */
#define FOLLOW_REDIS_TIMEOUT_MS 5000
#define RATE_WINDOW 20                 /* samples kept for the rate */

cJSON *ef_enq_job_json(ef_enq_t *st, const char *job_id, char *err) {
    ef_key_t k;
    redisReply *r = ef_redis_sync_cmdf(st->redis, NULL, "HGETALL %s", ef_key_job(&k, st->queue, job_id, EF_KEY_JOB));
    cJSON *o = NULL;
    if (!r) {
        ef_seterr(err, "redis: %s", st->redis->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
        const char **f = ef_malloc(sizeof *f * r->elements);
        size_t *l = ef_malloc(sizeof *l * r->elements);
        for (size_t i = 0; i < r->elements; i++) {
            f[i] = r->element[i]->str ? r->element[i]->str : "";
            l[i] = r->element[i]->str ? r->element[i]->len : 0;
        }
        o = ef_job_to_json(f, l, r->elements, ef_now_ms());
        free(f);
        free(l);
    } else {
        ef_seterr(err, "no job %s in queue %s", job_id, st->queue);
    }
    freeReplyObject(r);
    return o;
}

static double jnum(cJSON *o, const char *k) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *jstr(cJSON *o, const char *k) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void fmt_eta(double s, char *buf, size_t len) {
    if (s < 0 || !isfinite(s))
        snprintf(buf, len, "--");
    else if (s < 60)
        snprintf(buf, len, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, len, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* " updated=N conflicts=N ..." for every outcome of the table */
static void outcome_counts(cJSON *job, char *buf, size_t len) {
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ef_outcomes_count && n < len; i++) {
        int w = snprintf(buf + n, len - n, " %s=%.0f", ef_outcomes[i].name,
                         jnum(job, ef_outcomes[i].name));
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static void draw(cJSON *job, double rate, int tty, int final) {
    double total = jnum(job, "total"), processed = jnum(job, "processed");
    double pct = total > 0 ? processed * 100.0 / total : 0;
    char eta[32], counts[160];
    fmt_eta(rate > 0 ? (total - processed) / rate : -1, eta, sizeof eta);
    outcome_counts(job, counts, sizeof counts);
    if (tty) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);
        if (fill > 30)
            fill = 30;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r\033[K[%s] %.0f/%.0f %5.1f%% %.0f/s ETA %s %s %s%s", bar, processed,
                total, pct, rate, eta, counts, jstr(job, "status"), final ? "\n" : "");
    } else {
        fprintf(stderr, "job %s: %s %.0f/%.0f (%.1f%%) %.0f/s eta %s%s\n", jstr(job, "id"),
                jstr(job, "status"), processed, total, pct, rate, eta, counts);
    }
    fflush(stderr);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int reconnect(ef_enq_t *st) {
    uint64_t start = ef_mono_ms();
    int backoff = 100;
    char err[EF_ERR_LEN];
    ef_warn("lost the connection to redis; reconnecting");
    ef_redis_sync_free(st->redis);
    st->redis = NULL;
    while (!*st->interrupted && ef_mono_ms() - start < FOLLOW_RECONNECT_MAX_MS) {
        st->redis = ef_redis_sync_connect(st->redis_url, FOLLOW_REDIS_TIMEOUT_MS, err);
        if (st->redis) {
            ef_info("reconnected to redis");
            return 0;
        }
        sleep_ms(backoff + (int)(ef_rand01() * backoff / 2));
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    fprintf(stderr, "enqueuer: redis unreachable for %d s: %s\n", FOLLOW_RECONNECT_MAX_MS / 1000, err);
    return -1;
}

int ef_enq_follow(ef_enq_t *st, const char *job_id) {
    int tty = isatty(STDERR_FILENO) && !st->quiet;
    int interval = tty ? FOLLOW_TTY_INTERVAL_MS : 500;
    double samples_t[RATE_WINDOW], samples_p[RATE_WINDOW];
    int ns = 0;
    uint64_t last_line = 0;
    char last_status[32] = "";
    char err[EF_ERR_LEN];

    if (st->redis)
        redisSetTimeout(st->redis, (struct timeval){FOLLOW_REDIS_TIMEOUT_MS / 1000, 0});
    for (;;) {
        cJSON *job;
        if (*st->interrupted) {
            if (tty)
                fputc('\n', stderr);
            fprintf(stderr, "enqueuer: stopped following job %s (it goes on)\n", job_id);
            return EF_ENQ_EXIT_INTERRUPTED;
        }
        job = ef_enq_job_json(st, job_id, err);
        if (!job) {
            if (st->redis && st->redis->err == 0) {
                fprintf(stderr, "enqueuer: %s\n", err);
                return EF_ENQ_EXIT_ERROR;
            }
            if (reconnect(st) != 0)
                return EF_ENQ_EXIT_ERROR;
            continue;
        }
        uint64_t now = ef_mono_ms();
        double processed = jnum(job, "processed");
        /* rate over a sliding window of samples */
        if (ns == RATE_WINDOW) {
            memmove(samples_t, samples_t + 1, sizeof samples_t[0] * (RATE_WINDOW - 1));
            memmove(samples_p, samples_p + 1, sizeof samples_p[0] * (RATE_WINDOW - 1));
            ns--;
        }
        samples_t[ns] = (double)now;
        samples_p[ns] = processed;
        ns++;
        double rate = 0;
        if (ns >= 2 && samples_t[ns - 1] > samples_t[0])
            rate = (samples_p[ns - 1] - samples_p[0]) * 1000.0 / (samples_t[ns - 1] - samples_t[0]);
        if (rate <= 0) {
            cJSON *r = cJSON_GetObjectItemCaseSensitive(job, "rate_per_s");
            if (cJSON_IsNumber(r))
                rate = r->valuedouble;
        }
        const char *status = jstr(job, "status");
        ef_job_status_t sv = ef_job_status_parse(status);
        int final = ef_job_status_is_final(sv);
        if (!st->quiet && (tty || final || strcmp(status, last_status) != 0 ||
                           now - last_line >= FOLLOW_LINE_INTERVAL_MS)) {
            draw(job, rate, tty, final);
            last_line = now;
        }
        snprintf(last_status, sizeof last_status, "%s", status);
        if (final) {
            int rc = sv == EF_JOB_COMPLETED   ? EF_ENQ_EXIT_OK
                     : sv == EF_JOB_CANCELLED ? EF_ENQ_EXIT_CANCELLED
                                              : EF_ENQ_EXIT_FAILED;
            if (rc != EF_ENQ_EXIT_OK) {
                const char *why = jstr(job, "error");
                fprintf(stderr, "enqueuer: job %s %s%s%s\n", job_id, status, why[0] ? ": " : "", why);
            }
            cJSON_Delete(job);
            return rc;
        }
        cJSON_Delete(job);
        sleep_ms(interval);
    }
}
