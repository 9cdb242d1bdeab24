// SPDX-License-Identifier: MIT
/*
 * knobs.c: the mock provider's tunable settings: latency, fault
 * probabilities, slow and huge bodies, fail-first and the rate limit. One
 * table names every knob, its type and range; the command line (--p-500 0.1)
 * and GET /control?p_500=0.1 both go through mp_knobs_set(), so the two can
 * never disagree. Names accept '-' and '_' alike.
 */
#include "mockprov.h"

#include <stddef.h>
#include <string.h>

typedef enum { MP_KNOB_U64, MP_KNOB_DOUBLE, MP_KNOB_BOOL } mp_knob_type;

typedef struct mp_knob_def {
    const char *name;
    mp_knob_type type;
    size_t offset;
    double min;
    double max;
} mp_knob_def;

#define MP_KNOB(name, type, min, max)                                          \
    { #name, type, offsetof(mp_knobs, name), min, max }

static const mp_knob_def mp_knob_defs[] = {
    MP_KNOB(latency_ms, MP_KNOB_U64, 0, 3600000),
    MP_KNOB(jitter_ms, MP_KNOB_U64, 0, 3600000),
    MP_KNOB(p_500, MP_KNOB_DOUBLE, 0, 1),
    MP_KNOB(p_reset, MP_KNOB_DOUBLE, 0, 1),
    MP_KNOB(p_hang, MP_KNOB_DOUBLE, 0, 1),
    MP_KNOB(p_malformed, MP_KNOB_DOUBLE, 0, 1),
    MP_KNOB(p_huge, MP_KNOB_DOUBLE, 0, 1),
    MP_KNOB(p_slow, MP_KNOB_DOUBLE, 0, 1),
    MP_KNOB(huge_bytes, MP_KNOB_U64, 64, 1024.0 * 1024 * 1024),
    MP_KNOB(slow_ms, MP_KNOB_U64, 0, 600000),
    MP_KNOB(fail_first, MP_KNOB_U64, 0, 1000000),
    MP_KNOB(rate, MP_KNOB_DOUBLE, 0, 1e9),
    MP_KNOB(per, MP_KNOB_DOUBLE, 0.001, 86400),
    MP_KNOB(burst, MP_KNOB_DOUBLE, 0, 1e9),
    MP_KNOB(log, MP_KNOB_BOOL, 0, 1),
    MP_KNOB(retry_after_s, MP_KNOB_U64, 0, 4e9),
    MP_KNOB(retry_after_date, MP_KNOB_U64, 0, 2),
    MP_KNOB(clock_skew_s, MP_KNOB_DOUBLE, -1e7, 1e7),
    MP_KNOB(huge_chunked, MP_KNOB_BOOL, 0, 1),
    MP_KNOB(rate_headers, MP_KNOB_U64, 0, 2),
    MP_KNOB(oauth, MP_KNOB_BOOL, 0, 1),
    MP_KNOB(token_ttl_s, MP_KNOB_U64, 1, 86400),
    MP_KNOB(token_down, MP_KNOB_BOOL, 0, 1),
    MP_KNOB(batch_fail, MP_KNOB_U64, 0, 1e12),
};

#define MP_KNOB_COUNT (sizeof(mp_knob_defs) / sizeof(mp_knob_defs[0]))

void mp_knobs_init(mp_knobs *k)
{
    memset(k, 0, sizeof(*k));
    k->huge_bytes = MP_DEFAULT_HUGE_BYTES;
    k->slow_ms = MP_DEFAULT_SLOW_MS;
    k->per = 1;
    k->token_ttl_s = 3600;
}

/* Returns the knob named name[0..n) ('-' matching '_'), or NULL. */
static const mp_knob_def *mp_knobs_find(const char *name, size_t n)
{
    for (size_t i = 0; i < MP_KNOB_COUNT; i++) {
        const char *d = mp_knob_defs[i].name;
        size_t j = 0;
        for (; j < n && d[j] != '\0'; j++) {
            char ch = name[j] == '-' ? '_' : name[j];
            if (ch != d[j])
                break;
        }
        if (j == n && d[j] == '\0')
            return &mp_knob_defs[i];
    }
    return NULL;
}

int mp_knobs_is_knob(const char *name, size_t n)
{
    return mp_knobs_find(name, n) != NULL;
}

/* Sets one knob from its text value. Returns 0, or -1 with `err` filled
 * (unknown name, bad number, out of range) leaving *k unchanged. */
int mp_knobs_set(mp_knobs *k, const char *name, size_t n, const char *val,
                 size_t vn, char *err)
{
    const mp_knob_def *d = mp_knobs_find(name, n);
    char *field = (char *)k;

    if (d == NULL) {
        mp_set_error(err, "unknown setting '%.*s'", (int)(n < 64 ? n : 64),
                     name);
        return -1;
    }
    field += d->offset;
    if (d->type == MP_KNOB_BOOL) {
        int v;
        if (mp_span_eq(val, vn, "1") || mp_span_eq(val, vn, "true") ||
            mp_span_eq(val, vn, "on") || vn == 0)
            v = 1;
        else if (mp_span_eq(val, vn, "0") || mp_span_eq(val, vn, "false") ||
                 mp_span_eq(val, vn, "off"))
            v = 0;
        else
            goto bad;
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    if (d->type == MP_KNOB_U64) {
        uint64_t v;
        if (mp_parse_u64(val, vn, (uint64_t)d->max, &v) != 0 ||
            (double)v < d->min)
            goto bad;
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    double v;
    if (mp_parse_double(val, vn, &v) != 0 || v < d->min || v > d->max)
        goto bad;
    memcpy(field, &v, sizeof(v));
    return 0;

bad:
    mp_set_error(err, "bad value for %s: '%.*s' (expected %s in %g..%g)",
                 d->name, (int)(vn < 64 ? vn : 64), val,
                 d->type == MP_KNOB_BOOL  ? "0/1"
                 : d->type == MP_KNOB_U64 ? "an integer"
                                          : "a number",
                 d->min, d->max);
    return -1;
}

/* Appends the settings as one JSON object. */
void mp_knobs_json(const mp_knobs *k, mp_buf *b)
{
    const char *base = (const char *)k;
    mp_buf_append(b, "{", 1);
    for (size_t i = 0; i < MP_KNOB_COUNT; i++) {
        const mp_knob_def *d = &mp_knob_defs[i];
        mp_buf_printf(b, "%s\"%s\":", i ? "," : "", d->name);
        if (d->type == MP_KNOB_U64) {
            uint64_t v;
            memcpy(&v, base + d->offset, sizeof(v));
            mp_buf_u64(b, v);
        } else if (d->type == MP_KNOB_DOUBLE) {
            double v;
            memcpy(&v, base + d->offset, sizeof(v));
            mp_buf_printf(b, "%.10g", v);
        } else {
            int v;
            memcpy(&v, base + d->offset, sizeof(v));
            mp_buf_puts(b, v ? "true" : "false");
        }
    }
    mp_buf_append(b, "}", 1);
}
