// SPDX-License-Identifier: MIT
/*
 * Small things every part of enrichfarm uses: error strings, time in
 * milliseconds, bounded string helpers and the limits that the public
 * contract fixes (id lengths, queue names).
 *
 * Errors: functions return 0 on success and a negative number on failure
 * (libuv codes pass through unchanged).  Where the caller needs words it
 * passes `char *err` of EF_ERR_LEN bytes, filled with ef_seterr() which
 * tolerates a NULL err.
 */
#ifndef EF_COMMON_H
#define EF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define EF_ERR_LEN 512

#define EF_ID_MAX_LEN 512        /* bytes, an entity id */
#define EF_JOB_ID_MAX_LEN 64     /* bytes */
#define EF_QUEUE_MAX_LEN 64      /* bytes */
#define EF_PROVIDER_MAX_LEN 64   /* bytes */
#define EF_DEFAULT_QUEUE "default"
#define EF_DEFAULT_REDIS_URL "redis://127.0.0.1:6379/0"

#define EF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define EF_STR_(x) #x
#define EF_XSTR(x) EF_STR_(x) /* a macro's value as a string literal */

#if defined(__GNUC__)
#define EF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define EF_UNUSED __attribute__((unused))
#else
#define EF_PRINTF(f, a)
#define EF_UNUSED
#endif

/* Fills err (EF_ERR_LEN bytes) when it is not NULL. */
void ef_seterr(char *err, const char *fmt, ...) EF_PRINTF(2, 3);

/* Wall clock in ms since the epoch, and a monotonic clock in ms. */
int64_t ef_now_ms(void);
uint64_t ef_mono_ms(void);

/* A queue name: 1..64 of [A-Za-z0-9_.-]; a job id: 1..64 of [A-Za-z0-9_-].
 * These reach key names, so nothing else is allowed (no braces, colons). */
int ef_queue_name_valid(const char *q);
int ef_job_id_valid(const char *id);
int ef_provider_name_valid(const char *p);

/* Parses a non-negative decimal integer that fits in *out; 0 or -1. */
int ef_parse_i64(const char *s, size_t len, int64_t *out);

/* strdup/strndup that abort on out-of-memory (the only policy that makes
 * sense for the few small allocations we make). */
void *ef_malloc(size_t n);
void *ef_calloc(size_t n, size_t size);
void *ef_realloc(void *p, size_t n);
char *ef_strdup(const char *s);
char *ef_strndup(const char *s, size_t n);

/* Random 64-bit value from a per-process xorshift state seeded from
 * getrandom(); good for jitter and ids, not for secrets. */
uint64_t ef_rand64(void);
/* Uniform double in [0,1). */
double ef_rand01(void);

/* Hostname of this machine, bounded. */
void ef_hostname(char *buf, size_t len);

#endif
