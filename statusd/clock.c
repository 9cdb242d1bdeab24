// SPDX-License-Identifier: MIT
/*
 * statusd's two clocks.  Every time the farm writes (job started_at,
 * worker heartbeats, rate-limit pauses) is Redis's clock (TIME in the
 * scripts), so every age, rate and ETA statusd computes from them must be
 * read on that clock too, never on this machine's: a statusd whose clock is
 * ten minutes off would otherwise show no rate at all, or an ETA a hundred
 * times too long.
 *
 * The Redis clock is this process's monotonic clock plus an offset taken
 * from TIME: when the command connection becomes ready and every
 * EF_SD_CLOCK_SYNC_MS after.  Replies come back in sending order on that
 * connection, so any request whose commands were sent after the first TIME
 * renders with the offset already known.  The offset takes the midpoint of
 * the round trip, so its error is at most half a round trip.
 *
 * The wall clock (ef_sd_wall_ms) is for statusd's own affairs only: the
 * Date header and uptime.  EF_STATUSD_TEST_CLOCK_SKEW_MS (test-only, read
 * at start) shifts it, so that tests can show that nothing the farm reports
 * depends on it.
 */
#include "statusd.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ef_sd_t *sd;
    uint64_t sent_ns; /* monotonic, when TIME was sent */
} clock_probe_t;

static int64_t mono_ms(uint64_t ns) {
    return (int64_t)(ns / 1000000u);
}

void ef_sd_clock_init(ef_sd_t *sd) {
    const char *skew = getenv("EF_STATUSD_TEST_CLOCK_SKEW_MS");
    int64_t v;
    sd->clock_skew_ms = 0;
    if (skew && skew[0] == '-' && ef_parse_i64(skew + 1, strlen(skew + 1), &v) == 0)
        sd->clock_skew_ms = -v;
    else if (skew && skew[0] && ef_parse_i64(skew, strlen(skew), &v) == 0)
        sd->clock_skew_ms = v;
    if (sd->clock_skew_ms)
        ef_warn("EF_STATUSD_TEST_CLOCK_SKEW_MS: this statusd's wall clock is shifted by %lld ms "
                "(for tests only)",
                (long long)sd->clock_skew_ms);
}

int64_t ef_sd_wall_ms(const ef_sd_t *sd) {
    return ef_now_ms() + sd->clock_skew_ms;
}

int64_t ef_sd_redis_ms(const ef_sd_t *sd) {
    if (!sd->clock_synced) /* before the first TIME: the best guess there is */
        return ef_sd_wall_ms(sd);
    return mono_ms(uv_hrtime()) + sd->redis_offset_ms;
}

static void on_time(ef_sd_batch_t *b, void *arg) {
    clock_probe_t *p = arg;
    ef_sd_t *sd = p->sd;
    const ef_sd_reply_t *r = ef_sd_batch_reply(b, 0);
    uint64_t now_ns = uv_hrtime();
    int64_t s, us;
    sd->clock_probing = 0;
    if (!b->down && r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->str &&
        r->element[1]->str && ef_parse_i64(r->element[0]->str, r->element[0]->len, &s) == 0 &&
        ef_parse_i64(r->element[1]->str, r->element[1]->len, &us) == 0) {
        int64_t redis_ms = s * 1000 + us / 1000;
        int64_t mid_ms = mono_ms(p->sent_ns + (now_ns - p->sent_ns) / 2);
        sd->redis_offset_ms = redis_ms - mid_ms;
        sd->clock_synced = 1;
        sd->clock_sync_ms = uv_now(sd->loop);
    }
    free(p);
}

void ef_sd_clock_sync(ef_sd_t *sd) {
    clock_probe_t *p;
    ef_sd_batch_t *b;
    if (sd->clock_probing || !sd->redis || !ef_redis_ready(sd->redis))
        return;
    p = ef_calloc(1, sizeof *p);
    p->sd = sd;
    b = ef_sd_batch_begin(sd, NULL, on_time, p);
    p->sent_ns = uv_hrtime();
    ef_sd_batch_cmdv(b, "TIME", NULL);
    if (ef_sd_batch_end(b) != 0) {
        free(p);
        return;
    }
    sd->clock_probing = 1;
}

void ef_sd_clock_tick(ef_sd_t *sd) {
    if (!sd->clock_synced || uv_now(sd->loop) - sd->clock_sync_ms >= EF_SD_CLOCK_SYNC_MS)
        ef_sd_clock_sync(sd);
}
