// SPDX-License-Identifier: MIT
/*
 * Implementation of the small shared helpers declared in ef_common.h.
 */
#include "ef_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void ef_seterr(char *err, const char *fmt, ...) {
    va_list ap;
    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err, EF_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* The wall clock in ms since the epoch.  EF_TEST_CLOCK_SKEW_MS (tests only,
 * see docs/operations.md) shifts it, so a test can play a host whose clock
 * is off without changing the system clock. */
int64_t ef_now_ms(void) {
    struct timespec ts;
    const char *skew = getenv("EF_TEST_CLOCK_SKEW_MS");
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (skew ? strtoll(skew, NULL, 10) : 0);
}

uint64_t ef_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int name_valid(const char *s, size_t max, int allow_dot) {
    size_t n = 0;
    if (!s || !*s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= max)
            return 0;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-' || (allow_dot && c == '.'))
            continue;
        return 0;
    }
    return 1;
}

int ef_queue_name_valid(const char *q) { return name_valid(q, EF_QUEUE_MAX_LEN, 1); }
int ef_job_id_valid(const char *id) { return name_valid(id, EF_JOB_ID_MAX_LEN, 0); }
int ef_provider_name_valid(const char *p) { return name_valid(p, EF_PROVIDER_MAX_LEN, 1); }

int ef_parse_i64(const char *s, size_t len, int64_t *out) {
    int64_t v = 0;
    if (!s || len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static void oom(void) {
    fputs("enrichfarm: out of memory\n", stderr);
    abort();
}

void *ef_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *ef_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *ef_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom();
    return q;
}

char *ef_strdup(const char *s) { return ef_strndup(s, strlen(s)); }

char *ef_strndup(const char *s, size_t n) {
    char *p = ef_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static uint64_t rng_state;

uint64_t ef_rand64(void) {
    uint64_t x = rng_state;
    if (x == 0) {
        if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x || x == 0)
            x = (uint64_t)ef_now_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

double ef_rand01(void) { return (double)(ef_rand64() >> 11) / 9007199254740992.0; }

void ef_hostname(char *buf, size_t len) {
    if (len == 0)
        return;
    if (gethostname(buf, len) != 0)
        snprintf(buf, len, "unknown");
    buf[len - 1] = '\0';
}
