// SPDX-License-Identifier: MIT
/*
 * referee.c: what the mock provider counts and enforces. Every counted
 * request passes mp_referee_count() (totals, a per-second ring of the last
 * MP_SECONDS_KEPT seconds, a sliding 1 s window made of 10 ms slices whose
 * peak is max_in_1s, and a table of distinct targets for --fail-first) and
 * mp_referee_take() (the token bucket: R requests per S seconds, burst B).
 * The bucket is the referee of the farm's distributed rate limiter: what it
 * refuses gets 429 and is counted. Times are monotonic ns from uv_hrtime();
 * wall-clock ms are derived from one offset taken at start.
 */
#include "mockprov.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MP_NS_PER_S 1000000000ULL
#define MP_SLICE_NS 10000000ULL                /* 10 ms */
#define MP_PATHS_INITIAL_SLOTS 1024
#define MP_PATHS_MAX_SLOTS (4u * 1024 * 1024)  /* tracks up to 2M targets */

static void mp_referee_paths_alloc(mp_referee *r, uint64_t slots)
{
    r->paths = calloc(slots, sizeof(r->paths[0]));
    if (r->paths == NULL) {
        fprintf(stderr, "mockprov: out of memory for the path table\n");
        abort();
    }
    r->paths_mask = slots - 1;
    r->paths_used = 0;
    r->paths_full = 0;
}

void mp_referee_init(mp_referee *r)
{
    uv_timeval64_t tv;
    memset(r, 0, sizeof(*r));
    r->hr_ns0 = uv_hrtime();
    if (uv_gettimeofday(&tv) == 0)
        r->epoch_ms0 = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    r->reset_ns = r->hr_ns0;
    r->bucket_ns = r->hr_ns0;
    mp_referee_paths_alloc(r, MP_PATHS_INITIAL_SLOTS);
}

void mp_referee_close(mp_referee *r)
{
    if (r == NULL)
        return;
    free(r->paths);
    r->paths = NULL;
}

/* Zeroes every counter and forgets the targets seen; the token bucket and
 * the program's start time are kept. */
void mp_referee_reset(mp_referee *r)
{
    mp_referee saved = *r;
    free(r->paths);
    memset(r, 0, sizeof(*r));
    r->epoch_ms0 = saved.epoch_ms0;
    r->hr_ns0 = saved.hr_ns0;
    r->tokens = saved.tokens;
    r->bucket_ns = saved.bucket_ns;
    r->reset_ns = uv_hrtime();
    mp_referee_paths_alloc(r, MP_PATHS_INITIAL_SLOTS);
}

uint64_t mp_referee_epoch_ms(const mp_referee *r, uint64_t now_ns)
{
    return r->epoch_ms0 + (now_ns - r->hr_ns0) / 1000000;
}

/* ---- Windows ---- */

/* Moves the per-second ring and the 10 ms slices up to now_ns, zeroing the
 * seconds and slices that went by without a request. */
static void mp_referee_advance(mp_referee *r, uint64_t now_ns)
{
    uint64_t el = now_ns > r->reset_ns ? now_ns - r->reset_ns : 0;
    uint64_t sec = el / MP_NS_PER_S, slice = el / MP_SLICE_NS;
    const uint64_t ring = MP_SECONDS_KEPT + 1;

    if (sec > r->sec_cur) {
        if (sec - r->sec_cur >= ring)
            memset(r->sec_counts, 0, sizeof(r->sec_counts));
        else
            for (uint64_t s = r->sec_cur + 1; s <= sec; s++)
                r->sec_counts[s % ring] = 0;
        r->sec_cur = sec;
    }
    if (slice > r->slice_cur) {
        if (slice - r->slice_cur >= MP_WINDOW_SLICES) {
            memset(r->slices, 0, sizeof(r->slices));
            r->window_sum = 0;
        } else {
            for (uint64_t s = r->slice_cur + 1; s <= slice; s++) {
                r->window_sum -= r->slices[s % MP_WINDOW_SLICES];
                r->slices[s % MP_WINDOW_SLICES] = 0;
            }
        }
        r->slice_cur = slice;
    }
}

/* ---- Targets ---- */

static void mp_referee_paths_grow(mp_referee *r)
{
    mp_path_entry *old = r->paths;
    uint64_t old_slots = r->paths_mask + 1, used = r->paths_used;
    mp_referee_paths_alloc(r, old_slots * 2);
    for (uint64_t i = 0; i < old_slots; i++) {
        if (old[i].key == 0)
            continue;
        uint64_t j = old[i].key & r->paths_mask;
        while (r->paths[j].key != 0)
            j = (j + 1) & r->paths_mask;
        r->paths[j] = old[i];
    }
    r->paths_used = used;
    free(old);
}

/* Returns the entry of a target, inserting it; NULL once the table is full. */
static mp_path_entry *mp_referee_path(mp_referee *r, const char *target,
                                      size_t n)
{
    uint64_t key = mp_fnv1a(target, n, 0);
    if (key == 0)
        key = 1;
    for (;;) {
        uint64_t i = key & r->paths_mask;
        while (r->paths[i].key != 0) {
            if (r->paths[i].key == key)
                return &r->paths[i];
            i = (i + 1) & r->paths_mask;
        }
        if ((r->paths_used + 1) * 2 <= r->paths_mask + 1) {
            r->paths[i].key = key;
            r->paths_used++;
            return &r->paths[i];
        }
        if (r->paths_mask + 1 >= MP_PATHS_MAX_SLOTS) {
            r->paths_full = 1;
            return NULL;
        }
        mp_referee_paths_grow(r);
    }
}

/* Counts one request to `target` at now_ns. Returns the target's entry (for
 * --fail-first), or NULL when the table is full. */
mp_path_entry *mp_referee_count(mp_referee *r, const char *target, size_t n,
                                uint64_t now_ns)
{
    uint64_t ms = mp_referee_epoch_ms(r, now_ns);
    mp_path_entry *e;

    r->requests++;
    if (r->first_request_ms == 0)
        r->first_request_ms = ms;
    r->last_request_ms = ms;
    mp_referee_advance(r, now_ns);
    r->sec_counts[r->sec_cur % (MP_SECONDS_KEPT + 1)]++;
    r->slices[r->slice_cur % MP_WINDOW_SLICES]++;
    r->window_sum++;
    if (r->window_sum > r->max_in_1s)
        r->max_in_1s = r->window_sum;
    e = mp_referee_path(r, target, n);
    if (e != NULL && e->hits < UINT32_MAX)
        e->hits++;
    return e;
}

/* ---- Token bucket ---- */

static double mp_referee_capacity(const mp_knobs *k)
{
    if (k->burst > 0)
        return k->burst;
    return k->rate >= 1 ? floor(k->rate) : 1;
}

/* Refills the bucket to its capacity (after the limit changed). */
void mp_referee_bucket_reset(mp_referee *r, const mp_knobs *k, uint64_t now_ns)
{
    r->tokens = mp_referee_capacity(k);
    r->bucket_ns = now_ns;
}

/* Takes one token at now_ns. Returns 1 if the request may pass; else 0 and
 * the whole seconds until a token is due (at least 1). */
int mp_referee_take(mp_referee *r, const mp_knobs *k, uint64_t now_ns,
                    unsigned *retry_after_s)
{
    if (k->rate <= 0)
        return 1;
    double cap = mp_referee_capacity(k);
    double per_ns = k->rate / (k->per * 1e9);
    if (now_ns > r->bucket_ns) {
        r->tokens += (double)(now_ns - r->bucket_ns) * per_ns;
        r->bucket_ns = now_ns;
    }
    if (r->tokens > cap)
        r->tokens = cap;
    if (r->tokens >= 1.0 - 1e-9) {
        r->tokens -= 1.0;
        return 1;
    }
    double wait_s = ceil((1.0 - r->tokens) / per_ns / 1e9);
    *retry_after_s = wait_s < 1 ? 1 : wait_s > 86400 ? 86400 : (unsigned)wait_s;
    return 0;
}

/* ---- Report ---- */

/* Appends the statistics as one JSON object (see docs/mockprov.md). */
void mp_referee_json(mp_referee *r, uint64_t now_ns, uint64_t conns,
                     uint64_t conns_total, mp_buf *b)
{
    const uint64_t ring = MP_SECONDS_KEPT + 1;
    int first = 1;

    mp_referee_advance(r, now_ns);
    mp_buf_puts(b, "{\"requests\":");
    mp_buf_u64(b, r->requests);
    mp_buf_puts(b, ",\"by_status\":{");
    for (int s = 0; s < MP_STATUS_MAX; s++) {
        if (r->by_status[s] == 0)
            continue;
        mp_buf_printf(b, "%s\"%d\":", first ? "" : ",", s);
        mp_buf_u64(b, r->by_status[s]);
        first = 0;
    }
    mp_buf_puts(b, "},\"responses_429\":");
    mp_buf_u64(b, r->by_status[429]);
    mp_buf_puts(b, ",\"resets\":");
    mp_buf_u64(b, r->resets);
    mp_buf_puts(b, ",\"hangs\":");
    mp_buf_u64(b, r->hangs);
    mp_buf_puts(b, ",\"malformed\":");
    mp_buf_u64(b, r->malformed);
    mp_buf_puts(b, ",\"huge\":");
    mp_buf_u64(b, r->huge);
    mp_buf_puts(b, ",\"slow\":");
    mp_buf_u64(b, r->slow);
    mp_buf_puts(b, ",\"fail_first_503\":");
    mp_buf_u64(b, r->fail_first);
    mp_buf_puts(b, ",\"batch_requests\":");
    mp_buf_u64(b, r->batch_requests);
    mp_buf_puts(b, ",\"batch_ids\":");
    mp_buf_u64(b, r->batch_ids);
    mp_buf_puts(b, ",\"batch_found\":");
    mp_buf_u64(b, r->batch_found);
    mp_buf_puts(b, ",\"batch_failed_503\":");
    mp_buf_u64(b, r->batch_failed);
    mp_buf_puts(b, ",\"paths_distinct\":");
    mp_buf_u64(b, r->paths_used);
    mp_buf_puts(b, r->paths_full ? ",\"paths_overflow\":true"
                                 : ",\"paths_overflow\":false");
    mp_buf_puts(b, ",\"max_in_1s\":");
    mp_buf_u64(b, r->max_in_1s);
    mp_buf_puts(b, ",\"per_second\":[");
    uint64_t from = r->sec_cur > MP_SECONDS_KEPT ? r->sec_cur - MP_SECONDS_KEPT
                                                 : 0;
    for (uint64_t s = from; s < r->sec_cur; s++) {
        if (s > from)
            mp_buf_append(b, ",", 1);
        mp_buf_u64(b, r->sec_counts[s % ring]);
    }
    mp_buf_puts(b, "],\"current_second\":");
    mp_buf_u64(b, r->sec_counts[r->sec_cur % ring]);
    mp_buf_puts(b, ",\"started_ms\":");
    mp_buf_u64(b, r->epoch_ms0);
    mp_buf_puts(b, ",\"reset_ms\":");
    mp_buf_u64(b, mp_referee_epoch_ms(r, r->reset_ns));
    mp_buf_puts(b, ",\"now_ms\":");
    mp_buf_u64(b, mp_referee_epoch_ms(r, now_ns));
    mp_buf_puts(b, ",\"first_request_ms\":");
    mp_buf_u64(b, r->first_request_ms);
    mp_buf_puts(b, ",\"last_request_ms\":");
    mp_buf_u64(b, r->last_request_ms);
    mp_buf_puts(b, ",\"connections\":");
    mp_buf_u64(b, conns);
    mp_buf_puts(b, ",\"connections_total\":");
    mp_buf_u64(b, conns_total);
    mp_buf_puts(b, "}");
}
