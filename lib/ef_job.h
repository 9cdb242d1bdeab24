// SPDX-License-Identifier: MIT
/*
 * The job model: statuses, outcome codes, and the job hash rendered as JSON.
 *
 * A job lives in the hash farm:{Q}:job:ID (docs/redis.md).  Its life:
 *
 *   enqueuing --seal--> queued --first chunk taken--> running --> completed
 *        |                 \___ paused <-> (queued|running)        /
 *        +--> failed (abandoned)      any non-final --cancel--> cancelled
 *
 * Invariants kept by the Lua scripts: processed = updated + conflicts +
 * not_found + errors at every instant; a job is completed exactly when it is
 * sealed and chunks_done == chunks_total; every entity has at most one
 * outcome, kept as one character per entity in farm:{Q}:job:ID:outcomes.
 * Times are ms since the epoch from Redis's clock; 0 means "not yet".
 */
#ifndef EF_JOB_H
#define EF_JOB_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Outcomes ----
 *
 * The one table of outcomes.  Each row: the enum name, the character kept
 * per entity in the outcome strings (and sent to chunk_ack.lua), and the
 * name used everywhere else: the job hash's and the queue stats' counter
 * field, the export's "outcome", /metrics's outcome label and statusd's
 * ?outcome= filter.  An entity without an outcome yet is EF_OUTCOME_NONE,
 * named "pending".  A new outcome kind is a new row here, its handler in
 * the worker, and its counter in chunk_ack.lua (the Lua side of the table). */
#define EF_OUTCOME_MAP(X)                                                                          \
    X(UPDATED, 'u', "updated")                                                                     \
    X(CONFLICT, 'c', "conflicts")                                                                  \
    X(NOT_FOUND, 'n', "not_found")                                                                 \
    X(ERROR, 'e', "errors")

enum {
    EF_OUTCOME_NONE = '.',
#define EF_OUTCOME_ENUM_(e, c, name) EF_OUTCOME_##e = (c),
    EF_OUTCOME_MAP(EF_OUTCOME_ENUM_)
#undef EF_OUTCOME_ENUM_
};

#define EF_OUTCOME_PENDING_NAME "pending"

typedef struct {
    char c;           /* the outcome character */
    const char *name; /* counter field, export and metrics name */
} ef_outcome_info_t;

extern const ef_outcome_info_t ef_outcomes[]; /* every row of EF_OUTCOME_MAP */
extern const size_t ef_outcomes_count;

/* The name of outcome character c; "pending" for '.' or anything unknown. */
const char *ef_outcome_name(char c);
/* 1 when c is an outcome of the table (not '.'). */
int ef_outcome_known(char c);
/* Sets *c from a name of the table, or '.' for "pending"; 0, or -1 when the
 * name is none of them. */
int ef_outcome_parse(const char *name, char *c);

/* ---- Job statuses ----
 *
 * The one table of job statuses: enum name, the string kept in the job
 * hash's status field (and written by the Lua scripts), and whether the
 * status is final (no script ever changes it again). */
#define EF_JOB_STATUS_MAP(X)                                                                       \
    X(ENQUEUING, "enqueuing", 0)                                                                   \
    X(QUEUED, "queued", 0)                                                                         \
    X(RUNNING, "running", 0)                                                                       \
    X(PAUSED, "paused", 0)                                                                         \
    X(COMPLETED, "completed", 1)                                                                   \
    X(CANCELLED, "cancelled", 1)                                                                   \
    X(FAILED, "failed", 1)

typedef enum {
    EF_JOB_STATUS_UNKNOWN = -1, /* not a status of the table (a missing job: "") */
#define EF_JOB_STATUS_ENUM_(e, name, final) EF_JOB_##e,
    EF_JOB_STATUS_MAP(EF_JOB_STATUS_ENUM_)
#undef EF_JOB_STATUS_ENUM_
        EF_JOB_STATUS_COUNT
} ef_job_status_t;

extern const char *const ef_job_statuses[]; /* names by ef_job_status_t, NULL-terminated */

ef_job_status_t ef_job_status_parse(const char *s); /* EF_JOB_STATUS_UNKNOWN when none */
const char *ef_job_status_name(ef_job_status_t s);  /* "" for UNKNOWN */
int ef_job_status_is_final(ef_job_status_t s);      /* completed, cancelled, failed */
/* The same on a status string, for callers that hold the hash's text. */
int ef_job_status_valid(const char *s);
int ef_job_status_final(const char *s);

/* ---- Limits shared by every client and the scripts ---- */

#define EF_JOB_ID_LEN 26 /* a generated id: ULID-style, Crockford base32 */
#define EF_ENQUEUE_HEARTBEAT_TTL_MS 30000
#define EF_JOB_CHUNK_SIZE_DEFAULT 50 /* entities a chunk */
/* entities a chunk at most; scripts/job_create.lua holds the same number
 * (CHUNK_SIZE_MAX), and test_contract checks that both agree */
#define EF_JOB_CHUNK_SIZE_MAX 10000

/* Writes a new job id (26 chars + NUL): 48 bits of ms time then 80 random
 * bits, Crockford base32, so ids sort by creation time. */
void ef_job_id_new(char out[EF_JOB_ID_LEN + 1]);

/* The provider check every client makes before it creates a job (the C
 * enqueuer and statusd's POST /jobs; job_create.lua makes it again):
 * provider must be one of the n names read from farm:providers (HKEYS).
 * When none is registered (no worker has started yet) there is nothing to
 * check against and it passes.  A NULL name (a reply that is not a string)
 * is skipped.  0, or -1 with err "unknown provider 'P' (registered by
 * workers: a, b)", the list cut after EF_JOB_PROVIDER_LIST_MAX bytes and
 * without names that are not UTF-8. */
#define EF_JOB_PROVIDER_LIST_MAX 300 /* bytes of names in the error */
int ef_job_provider_check(const char *provider, const char *const *names, size_t n, char *err);

/* Turns the field/value pairs of HGETALL into a JSON object with numbers as
 * numbers, booleans as booleans, *_at_iso strings beside the ms times, and
 * the derived progress_percent, rate_per_s and eta_s (null when unknown).
 * Returns NULL when there are no fields.  The caller owns the result. */
cJSON *ef_job_to_json(const char *const *fields, const size_t *lens, size_t nfields,
                      int64_t now_ms);

/* Finds entity `index` in a chunk's results field (lines "i<TAB>JSON");
 * returns 1 with the JSON span, or 0. */
int ef_job_result_find(const char *res, size_t len, long index, const char **json, size_t *jlen);

/* ISO-8601 UTC with ms for a time in ms; "" for 0. */
void ef_iso8601(int64_t ms, char *buf, size_t len);

#endif
