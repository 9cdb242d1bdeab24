// SPDX-License-Identifier: MIT
/*
 * support.c: the small helpers every other file of the mock provider uses:
 * a growable byte buffer with JSON string escaping, the hash and PRNG that
 * make the catalogue deterministic, strict number parsing for flags and query
 * parameters, and the one-line logger (time with ms, level, program[pid]).
 * Allocation failure aborts: this is test infrastructure, not a library.
 */
#include "mockprov.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- Memory and buffers ---- */

void *mp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "mockprov: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void *mp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "mockprov: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

void mp_buf_init(mp_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void mp_buf_free(mp_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    mp_buf_init(b);
}

/* Makes room for `extra` more bytes plus a terminating NUL. */
void mp_buf_reserve(mp_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = mp_xrealloc(b->data, cap);
    b->cap = cap;
}

void mp_buf_append(mp_buf *b, const void *p, size_t n)
{
    mp_buf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mp_buf_puts(mp_buf *b, const char *s)
{
    mp_buf_append(b, s, strlen(s));
}

void mp_buf_printf(mp_buf *b, const char *fmt, ...)
{
    va_list ap;
    mp_buf_reserve(b, 64);
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        mp_buf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void mp_buf_u64(mp_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    mp_buf_append(b, tmp + i, sizeof(tmp) - i);
}

/* Appends `s` as a quoted JSON string; bytes >= 0x80 pass through as UTF-8. */
void mp_json_str(mp_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    mp_buf_reserve(b, n + 2);
    mp_buf_append(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        mp_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"': mp_buf_append(b, "\\\"", 2); break;
        case '\\': mp_buf_append(b, "\\\\", 2); break;
        case '\n': mp_buf_append(b, "\\n", 2); break;
        case '\r': mp_buf_append(b, "\\r", 2); break;
        case '\t': mp_buf_append(b, "\\t", 2); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            mp_buf_append(b, esc, sizeof(esc));
        }
        }
    }
    mp_buf_append(b, s + run, n - run);
    mp_buf_append(b, "\"", 1);
}

/* ---- Hashing and PRNG ---- */

/* splitmix64's finaliser: a bijective mix of 64 bits. */
uint64_t mp_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A deterministic 64-bit value for one fact (`salt`) of entity `id`. */
uint64_t mp_hash3(uint64_t seed, uint64_t id, uint64_t salt)
{
    return mp_mix64(mp_mix64(seed * 0x100000001b3ULL ^ salt) ^ id);
}

uint64_t mp_fnv1a(const char *s, size_t n, int fold_case)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (fold_case && ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch + ('a' - 'A'));
        h ^= ch;
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t mp_rand_next(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ULL;
    uint64_t x = *state;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A uniform double in [0, 1). */
double mp_rand_unit(uint64_t *state)
{
    return (double)(mp_rand_next(state) >> 11) * 0x1.0p-53;
}

/* ---- Parsing ---- */

/* Parses a decimal in s[0..n) made of digits only; 0 on success, -1 when it
 * is empty, not all digits, or above `max`. */
int mp_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses a finite decimal floating-point number (no hex, no inf/nan). */
int mp_parse_double(const char *s, size_t n, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' ||
              ch == 'E' || ch == '-' || ch == '+'))
            return -1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (errno != 0 || end != tmp + n || v != v)
        return -1;
    *out = v;
    return 0;
}

/* Case-insensitive (ASCII) equality of two byte spans. */
int mp_mem_ieq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x != y && tolower(x) != tolower(y))
            return 0;
    }
    return 1;
}

int mp_span_eq(const char *a, size_t an, const char *lit)
{
    size_t n = strlen(lit);
    return an == n && memcmp(a, lit, n) == 0;
}

void mp_set_error(char *err, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err, MP_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* ---- Logging ---- */

void mp_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"INFO", "WARN", "ERROR"};
    char msg[1024], when[32];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03d %s mockprov[%d] %s\n", when,
            (int)(tv.tv_usec / 1000), names[level], (int)getpid(), msg);
}
