// SPDX-License-Identifier: MIT
/*
 * statusd's share of the farm's housekeeping: on a timer it looks for
 * enqueues whose enqueuer died (ef_abandon.h) in every queue of
 * farm:queues, on Redis's clock (clock.c), so such a job is marked failed
 * even when no worker runs, whatever this host's clock says.
 * A read-only statusd writes nothing and skips it.
 */
#include "statusd.h"

#include "ef_abandon.h"
#include "ef_keys.h"

static void on_queues(ef_redis_t *r, redisReply *reply, void *arg) {
    ef_sd_t *sd = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements && i < EF_SD_MAX_CHANNELS; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            ef_abandon_sweep(r, reply->element[i]->str, ef_sd_redis_ms(sd));
}

static void on_reaper(uv_timer_t *t) {
    ef_sd_t *sd = t->data;
    ef_key_t k;
    const char *argv[] = {"SMEMBERS", ef_key_global(&k, EF_KEY_QUEUES)};
    if (sd->redis && ef_redis_ready(sd->redis))
        ef_redis_cmd(sd->redis, on_queues, sd, 0, 2, argv, NULL);
}

void ef_sd_reaper_start(ef_sd_t *sd) {
    uv_timer_init(sd->loop, &sd->reaper);
    sd->reaper.data = sd;
    if (!sd->opts.read_only)
        uv_timer_start(&sd->reaper, on_reaper, EF_ABANDON_SWEEP_MS, EF_ABANDON_SWEEP_MS);
}

void ef_sd_reaper_stop(ef_sd_t *sd) {
    uv_timer_stop(&sd->reaper);
    uv_close((uv_handle_t *)&sd->reaper, NULL);
}
