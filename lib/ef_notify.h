// SPDX-License-Identifier: MIT
/*
 * Completion webhooks: the pieces every program shares (docs/webhooks.md).
 *
 * A job may carry a webhook URL (notify_url in its hash: `enqueuer
 * --notify`, "notify" in POST /jobs, else the recipe's or the queue's
 * default, chosen by job_create.lua).  When the job ends (completed,
 * cancelled, failed) one POST of its JSON summary goes out, sent by a
 * worker that holds the delivery in Redis (notify_claim.lua, a lease taken
 * over when its holder dies) and retried with bounded exponential backoff
 * until notify_give_up_at (worker/notify.c).  Its life in the job hash:
 *
 *   notify_status: pending --2xx--> delivered
 *                     |
 *                     +--give-up time passed at a claim--> failed
 *
 * notify_attempts counts the attempts started, notify_error keeps the last
 * failed attempt's reason, notify_owner names the worker holding it (only
 * while an attempt is in flight), notify_at is when it settled (ms).
 *
 * The body is signed with HMAC-SHA256 under a secret the workers read from
 * their environment (never stored in Redis, never logged):
 *   X-Enrichfarm-Signature: sha256=<64 lowercase hex digits of HMAC(secret, body)>
 *   Idempotency-Key: <job id>:<final status>
 * A receiver must accept the same key twice as one delivery: a sender whose
 * lease ran out mid-request may still have been heard.
 */
#ifndef EF_NOTIFY_H
#define EF_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#define EF_NOTIFY_URL_MAX 2048         /* bytes */
#define EF_NOTIFY_SIG_LEN (7 + 64 + 1) /* "sha256=" + hex + NUL */
#define EF_NOTIFY_SECRET_ENV_DEFAULT "EF_NOTIFY_SECRET"
#define EF_NOTIFY_TIMEOUT_DEFAULT_S 10   /* one attempt, whole transfer */
#define EF_NOTIFY_GIVE_UP_DEFAULT_S 3600 /* from the first attempt to failed */
#define EF_NOTIFY_LEASE_MARGIN_MS 5000   /* a lease is the attempt's timeout plus this */
#define EF_NOTIFY_RECHECK_MS 1000        /* a running job's entry is looked at this often */
#define EF_NOTIFY_BACKOFF_BASE_MS 500    /* the wait after the first failure */
#define EF_NOTIFY_BACKOFF_MAX_MS 60000   /* the longest wait between two attempts */
#define EF_NOTIFY_SCAN 16                /* due entries looked at per queue per tick */
#define EF_NOTIFY_ERROR_MAX 400          /* bytes of an attempt's error kept */

/* 1 when url is an http:// or https:// URL with a host, at most
 * EF_NOTIFY_URL_MAX bytes, with no space or control character (the rule of
 * job_create.lua); else 0 with the reason in err (may be NULL). */
int ef_notify_url_valid(const char *url, char *err);

/* Writes "sha256=<hex HMAC-SHA256 of body under key>" into out.  0, or -1
 * when the digest cannot be computed. */
int ef_notify_sign(const char *key, size_t klen, const char *body, size_t blen,
                   char out[EF_NOTIFY_SIG_LEN]);

/* The wait before attempt `failed + 1` after `failed` failures (>= 1):
 * EF_NOTIFY_BACKOFF_BASE_MS doubled each time up to EF_NOTIFY_BACKOFF_MAX_MS,
 * plus up to a quarter of it from rnd as jitter. */
long ef_notify_backoff_ms(int failed, uint64_t rnd);

/* The body of a job's webhook from its HGETALL pairs: the job as
 * ef_job_to_json gives it (numbers as numbers), without the delivery's own
 * state (notify_status, notify_attempts, notify_error, notify_owner,
 * notify_give_up_at, notify_at), so every attempt sends the same bytes.
 * NULL when there are no fields; the caller frees the string. */
char *ef_notify_body(const char *const *fields, const size_t *lens, size_t nfields, int64_t now_ms);

#endif
