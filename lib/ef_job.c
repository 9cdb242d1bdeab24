// SPDX-License-Identifier: MIT
/*
 * Job statuses, outcome names, job ids and the JSON form of a job hash,
 * shared by the enqueuer's status verb and statusd.
 */
#include "ef_job.h"

#include "ef_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- The tables ---- */

const ef_outcome_info_t ef_outcomes[] = {
#define EF_OUTCOME_ROW_(e, c, name) {(c), (name)},
    EF_OUTCOME_MAP(EF_OUTCOME_ROW_)
#undef EF_OUTCOME_ROW_
};
const size_t ef_outcomes_count = EF_ARRAY_LEN(ef_outcomes);

const char *const ef_job_statuses[] = {
#define EF_JOB_STATUS_NAME_(e, name, final) [EF_JOB_##e] = (name),
    EF_JOB_STATUS_MAP(EF_JOB_STATUS_NAME_)
#undef EF_JOB_STATUS_NAME_
        [EF_JOB_STATUS_COUNT] = NULL};

static const unsigned char status_final[] = {
#define EF_JOB_STATUS_FINAL_(e, name, final) [EF_JOB_##e] = (final),
    EF_JOB_STATUS_MAP(EF_JOB_STATUS_FINAL_)
#undef EF_JOB_STATUS_FINAL_
};

ef_job_status_t ef_job_status_parse(const char *s) {
    for (int i = 0; s && i < EF_JOB_STATUS_COUNT; i++)
        if (strcmp(s, ef_job_statuses[i]) == 0)
            return (ef_job_status_t)i;
    return EF_JOB_STATUS_UNKNOWN;
}

const char *ef_job_status_name(ef_job_status_t s) {
    return s >= 0 && s < EF_JOB_STATUS_COUNT ? ef_job_statuses[s] : "";
}

int ef_job_status_is_final(ef_job_status_t s) {
    return s >= 0 && s < EF_JOB_STATUS_COUNT && status_final[s];
}

int ef_job_status_valid(const char *s) {
    return ef_job_status_parse(s) != EF_JOB_STATUS_UNKNOWN;
}

int ef_job_status_final(const char *s) {
    return ef_job_status_is_final(ef_job_status_parse(s));
}

const char *ef_outcome_name(char c) {
    for (size_t i = 0; i < ef_outcomes_count; i++)
        if (ef_outcomes[i].c == c)
            return ef_outcomes[i].name;
    return EF_OUTCOME_PENDING_NAME;
}

int ef_outcome_known(char c) {
    for (size_t i = 0; i < ef_outcomes_count; i++)
        if (ef_outcomes[i].c == c)
            return 1;
    return 0;
}

int ef_outcome_parse(const char *name, char *c) {
    if (strcmp(name, EF_OUTCOME_PENDING_NAME) == 0) {
        *c = EF_OUTCOME_NONE;
        return 0;
    }
    for (size_t i = 0; i < ef_outcomes_count; i++)
        if (strcmp(name, ef_outcomes[i].name) == 0) {
            *c = ef_outcomes[i].c;
            return 0;
        }
    return -1;
}

void ef_job_id_new(char out[EF_JOB_ID_LEN + 1]) {
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t t = (uint64_t)ef_now_ms();
    uint64_t r1 = ef_rand64(), r2 = ef_rand64();
    for (int i = 9; i >= 0; i--) {
        out[i] = b32[t & 31];
        t >>= 5;
    }
    /* 80 random bits: 16 characters of 5 bits */
    for (int i = 0; i < 16; i++) {
        uint64_t *r = i < 8 ? &r1 : &r2;
        out[10 + i] = b32[*r & 31];
        *r >>= 5;
    }
    out[EF_JOB_ID_LEN] = '\0';
}

int ef_job_result_find(const char *res, size_t len, long index, const char **json, size_t *jlen) {
    const char *p = res, *end = res + len;
    while (res && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *tab = memchr(p, '\t', (size_t)(le - p));
        int64_t i;
        if (tab && ef_parse_i64(p, (size_t)(tab - p), &i) == 0 && i == index) {
            *json = tab + 1;
            *jlen = (size_t)(le - tab - 1);
            return 1;
        }
        p = le + 1;
    }
    return 0;
}

void ef_iso8601(int64_t ms, char *buf, size_t len) {
    struct tm tm;
    time_t s = (time_t)(ms / 1000);
    char tmp[32];
    if (ms <= 0) {
        snprintf(buf, len, "%s", "");
        return;
    }
    gmtime_r(&s, &tm);
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", tmp, (int)(ms % 1000));
}

/* the outcome counters (ef_outcomes) are numeric too */
static const char *const numeric_fields[] = {
    "total",        "processed",    "cached",      "skipped",    "chunk_size",
    "chunks_total", "chunks_done",  "chunks_dead", "created_at", "started_at",
    "updated_at",   "completed_at", "requests",    "retries",    "notify_attempts",
    "notify_give_up_at", "notify_at", NULL};
static const char *const bool_fields[] = {"dry_run", "sealed", NULL};

static int in_list(const char *const *list, const char *s) {
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static double num(cJSON *o, const char *k) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

cJSON *ef_job_to_json(const char *const *fields, const size_t *lens, size_t nfields,
                      int64_t now_ms) {
    cJSON *o;
    char key[128], iso[40];
    if (nfields < 2)
        return NULL;
    o = cJSON_CreateObject();
    for (size_t i = 0; i + 1 < nfields; i += 2) {
        size_t kl = lens[i] < sizeof key - 1 ? lens[i] : sizeof key - 1;
        memcpy(key, fields[i], kl);
        key[kl] = '\0';
        char *val = ef_strndup(fields[i + 1], lens[i + 1]);
        int64_t n;
        char oc;
        if (in_list(numeric_fields, key) ||
            (ef_outcome_parse(key, &oc) == 0 && oc != EF_OUTCOME_NONE)) {
            if (ef_parse_i64(val, strlen(val), &n) == 0)
                cJSON_AddNumberToObject(o, key, (double)n);
            else if (val[0] == '-' && ef_parse_i64(val + 1, strlen(val) - 1, &n) == 0)
                cJSON_AddNumberToObject(o, key, -(double)n);
            else
                cJSON_AddNullToObject(o, key);
        } else if (in_list(bool_fields, key)) {
            cJSON_AddBoolToObject(o, key, strcmp(val, "1") == 0 || strcmp(val, "true") == 0);
        } else {
            cJSON_AddStringToObject(o, key, val);
        }
        free(val);
    }
    static const char *const times[] = {"created_at", "started_at", "updated_at", "completed_at"};
    for (size_t i = 0; i < EF_ARRAY_LEN(times); i++) {
        char k[64];
        double t = num(o, times[i]);
        snprintf(k, sizeof k, "%s_iso", times[i]);
        if (t > 0) {
            ef_iso8601((int64_t)t, iso, sizeof iso);
            cJSON_AddStringToObject(o, k, iso);
        } else {
            cJSON_AddNullToObject(o, k);
        }
    }
    double total = num(o, "total"), processed = num(o, "processed");
    double started = num(o, "started_at"), completed = num(o, "completed_at");
    cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
    ef_job_status_t status = ef_job_status_parse(cJSON_IsString(st) ? st->valuestring : NULL);
    double pct = total > 0 ? floor(processed * 10000.0 / total) / 100.0 : 0;
    if (status == EF_JOB_COMPLETED)
        pct = 100;
    cJSON_AddNumberToObject(o, "progress_percent", pct);
    double end = completed > 0 ? completed : (double)now_ms;
    if (started > 0 && end > started && processed > 0) {
        double rate = processed * 1000.0 / (end - started);
        cJSON_AddNumberToObject(o, "rate_per_s", floor(rate * 100) / 100);
        if (ef_job_status_is_final(status))
            cJSON_AddNumberToObject(o, "eta_s", 0);
        else
            cJSON_AddNumberToObject(o, "eta_s", ceil((total - processed) / rate));
    } else {
        cJSON_AddNullToObject(o, "rate_per_s");
        if (ef_job_status_is_final(status))
            cJSON_AddNumberToObject(o, "eta_s", 0);
        else
            cJSON_AddNullToObject(o, "eta_s");
    }
    return o;
}
