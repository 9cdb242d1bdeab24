// SPDX-License-Identifier: MIT
/*
 * The one place where Redis key names are spelled.  See ef_keys.h and
 * docs/redis.md.
 */
#include "ef_keys.h"

#include "ef_common.h"

#include <stdio.h>
#include <string.h>

static const char *const queue_suffix[EF_KEY_QUEUE_COUNT_] = {
    [EF_KEY_PENDING] = "pending",     [EF_KEY_PROCESSING] = "processing",
    [EF_KEY_LEASES] = "leases",       [EF_KEY_OWNERS] = "owners",
    [EF_KEY_DEAD] = "dead",           [EF_KEY_PAUSED] = "paused",
    [EF_KEY_JOBS] = "jobs",           [EF_KEY_ENQUEUING] = "enqueuing",
    [EF_KEY_STATS] = "stats",         [EF_KEY_EVENTS] = "events",
    [EF_KEY_CONTROL] = "control",     [EF_KEY_NOTIFY] = "notify",
    [EF_KEY_SETTINGS] = "settings",
};

static const char *const job_suffix[EF_KEY_JOB_COUNT_] = {
    [EF_KEY_JOB] = "",
    [EF_KEY_JOB_CHUNKS] = ":chunks",
    [EF_KEY_JOB_OUTCOMES] = ":outcomes",
    [EF_KEY_JOB_ATTEMPTS] = ":attempts",
    [EF_KEY_JOB_ERRORS] = ":errors",
    [EF_KEY_JOB_PARKED] = ":parked",
    [EF_KEY_JOB_RESULTS] = ":results",
    [EF_KEY_JOB_DRYRUN] = ":dryrun",
};

static const char *const global_names[EF_KEY_GLOBAL_COUNT_] = {
    [EF_KEY_QUEUES] = "farm:queues",
    [EF_KEY_WORKERS] = "farm:workers",
    [EF_KEY_PROVIDERS] = "farm:providers",
};

const char *ef_key_queue(ef_key_t *k, const char *queue, ef_key_queue_kind_t kind) {
    snprintf(k->s, sizeof k->s, "farm:{%s}:%s", queue, queue_suffix[kind]);
    return k->s;
}

const char *ef_key_job(ef_key_t *k, const char *queue, const char *job_id, ef_key_job_kind_t kind) {
    snprintf(k->s, sizeof k->s, "farm:{%s}:job:%s%s", queue, job_id, job_suffix[kind]);
    return k->s;
}

const char *ef_key_global(ef_key_t *k, ef_key_global_kind_t kind) {
    snprintf(k->s, sizeof k->s, "%s", global_names[kind]);
    return k->s;
}

const char *ef_key_worker(ef_key_t *k, const char *worker_id) {
    snprintf(k->s, sizeof k->s, "farm:worker:%s", worker_id);
    return k->s;
}

const char *ef_key_ratelimit(ef_key_t *k, const char *provider) {
    snprintf(k->s, sizeof k->s, "farm:ratelimit:{%s}", provider);
    return k->s;
}

const char *ef_key_ratelimit_waiters(ef_key_t *k, const char *provider) {
    snprintf(k->s, sizeof k->s, "farm:ratelimit:{%s}:waiters", provider);
    return k->s;
}

const char *ef_key_auth(ef_key_t *k, const char *provider) {
    snprintf(k->s, sizeof k->s, "farm:auth:{%s}", provider);
    return k->s;
}

const char *ef_key_cache(ef_key_t *k, const char *provider, const char *digest_hex) {
    snprintf(k->s, sizeof k->s, "farm:cache:{%s}:%s", provider, digest_hex);
    return k->s;
}

size_t ef_chunk_ref(char *buf, size_t len, const char *job_id, long chunk) {
    int n = snprintf(buf, len, "%s:%ld", job_id, chunk);
    return n < 0 ? 0 : (size_t)n;
}

int ef_chunk_ref_parse(const char *ref, size_t len, char *job_id, size_t job_id_len, long *chunk) {
    const char *colon = memchr(ref, ':', len);
    int64_t n;
    size_t idlen;
    if (!colon)
        return -1;
    idlen = (size_t)(colon - ref);
    if (idlen == 0 || idlen >= job_id_len || idlen > EF_JOB_ID_MAX_LEN)
        return -1;
    if (ef_parse_i64(colon + 1, len - idlen - 1, &n) != 0)
        return -1;
    memcpy(job_id, ref, idlen);
    job_id[idlen] = '\0';
    if (!ef_job_id_valid(job_id))
        return -1;
    *chunk = (long)n;
    return 0;
}
