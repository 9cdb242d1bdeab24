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
#include <stdint.h>

/* Outcome characters in the per-chunk outcome strings. */
#define EF_OUTCOME_NONE '.'
#define EF_OUTCOME_UPDATED 'u'
#define EF_OUTCOME_CONFLICT 'c'
#define EF_OUTCOME_NOT_FOUND 'n'
#define EF_OUTCOME_ERROR 'e'

#define EF_JOB_ID_LEN 26 /* a generated id: ULID-style, Crockford base32 */
#define EF_ENQUEUE_HEARTBEAT_TTL_MS 30000

extern const char *const ef_job_statuses[]; /* NULL-terminated */
int ef_job_status_valid(const char *s);
int ef_job_status_final(const char *s); /* completed, cancelled, failed */
const char *ef_outcome_name(char c);    /* "updated", ..., "pending" */

/* Writes a new job id (26 chars + NUL): 48 bits of ms time then 80 random
 * bits, Crockford base32, so ids sort by creation time. */
void ef_job_id_new(char out[EF_JOB_ID_LEN + 1]);

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
