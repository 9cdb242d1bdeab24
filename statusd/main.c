// SPDX-License-Identifier: MIT
/*
 * statusd's entry point: flags, the log, the loop with its two Redis
 * connections, the HTTP server and the signal handlers.  SIGTERM and SIGINT
 * close every handle and connection; the loop then ends by itself and
 * uv_loop_close() must succeed (exit 0).  statusd starts whether or not
 * Redis is up: until it is, routes that need it answer 503.
 */
#include "statusd.h"

#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_cmd_state(ef_redis_t *r, int ready, void *arg) {
    (void)r;
    /* ef_redis logs each change; requests answer 503 meanwhile.  The first
     * command after a (re)connect reads Redis's clock. */
    if (ready > 0)
        ef_sd_clock_sync(arg);
}

static void on_sub_state(ef_redis_t *r, int ready, void *arg) {
    (void)r;
    ef_sd_events_redis_state(arg, ready);
}

/* Each connection is a file descriptor, and so is each one being refused
 * with a 503: raises the soft limit toward what the cap needs (never past
 * the hard limit) and says so when it cannot, since past the limit the
 * kernel's refusals are silent. */
static void fd_limit_raise(const ef_sd_opts_t *o) {
    struct rlimit rl;
    rlim_t want = (rlim_t)o->max_connections + EF_SD_REJECT_BUDGET + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        ef_warn("open files limited to %llu: connections past it are closed unanswered "
                "(--max-connections %d wants %llu)",
                (unsigned long long)rl.rlim_cur, o->max_connections, (unsigned long long)want);
}

static void sd_stop(ef_sd_t *sd) {
    if (sd->stopping)
        return;
    sd->stopping = 1;
    ef_info("statusd stopping");
    ef_sd_server_stop(sd);
    ef_sd_reaper_stop(sd);
    /* connections first: the Redis callbacks that close fires find them closed */
    ef_redis_close(sd->redis, NULL, NULL);
    ef_redis_close(sd->sub, NULL, NULL);
    sd->redis = sd->sub = NULL;
    ef_sd_events_close(sd);
    uv_close((uv_handle_t *)&sd->sigterm, NULL);
    uv_close((uv_handle_t *)&sd->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
    ef_sd_t *sd = h->data;
    ef_info("signal %d received", signum);
    sd_stop(sd);
}

static void on_walk(uv_handle_t *h, void *arg) {
    (void)arg;
    ef_error("handle left open at exit: %s%s", uv_handle_type_name(uv_handle_get_type(h)),
             uv_is_closing(h) ? " (closing)" : "");
}

int main(int argc, char **argv) {
    ef_sd_t sd;
    uv_loop_t loop;
    char err[EF_ERR_LEN], where[600];
    int rc;

    memset(&sd, 0, sizeof sd);
    rc = ef_sd_opts_parse(&sd.opts, argc, argv, err);
    if (rc == EF_SD_OPTS_HELP) {
        fputs(ef_sd_usage(), stdout);
        return 0;
    }
    if (rc == EF_SD_OPTS_VERSION) {
        printf("statusd %s\n", EF_VERSION);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "statusd: %s\n", err);
        return 2;
    }
    ef_log_init("statusd", sd.opts.log_level, sd.opts.log_format);
    if (ef_sd_opts_check(&sd.opts, err) != 0) {
        ef_error("%s", err);
        return 2;
    }
    if (ef_redis_url_parse(sd.opts.redis_url, &sd.redis_url, err) != 0 ||
        ef_redis_url_supported(&sd.redis_url, err) != 0) {
        ef_error("bad --redis: %s", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    fd_limit_raise(&sd.opts);
    uv_loop_init(&loop);
    sd.loop = &loop;
    ef_sd_clock_init(&sd);
    sd.started_ms = ef_sd_wall_ms(&sd);
    ef_sd_date(&sd);
    ef_sd_events_create(&sd);

    ef_redis_opts_t cmd = {.name = "cmd",
                           .load_scripts = 1,
                           .backoff_max_ms = 1000,
                           .on_state = on_cmd_state,
                           .state_arg = &sd};
    ef_redis_opts_t sub = {
        .name = "sub", .backoff_max_ms = 1000, .on_state = on_sub_state, .state_arg = &sd};
    uv_signal_init(&loop, &sd.sigterm);
    uv_signal_init(&loop, &sd.sigint);
    ef_sd_reaper_start(&sd);
    sd.sigterm.data = sd.sigint.data = &sd;
    if ((rc = ef_redis_create(&sd.redis, &loop, &sd.redis_url, &cmd)) != 0 ||
        (rc = ef_redis_create(&sd.sub, &loop, &sd.redis_url, &sub)) != 0) {
        ef_error("redis: %s", uv_strerror(rc));
        sd_stop(&sd);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    if (ef_sd_server_start(&sd, err) != 0) {
        ef_error("%s", err);
        sd_stop(&sd);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_start(&sd.sigterm, on_signal, SIGTERM);
    uv_signal_start(&sd.sigint, on_signal, SIGINT);
    ef_redis_url_redacted(&sd.redis_url, where, sizeof where);
    ef_info("statusd %s listening on %s (port %d), redis %s%s", EF_VERSION, sd.opts.listen_text,
            sd.bound_port, where,
            sd.opts.read_only ? ", read-only"
            : sd.opts.token   ? ", token required for changes"
                              : "");

    uv_run(&loop, UV_RUN_DEFAULT);

    rc = uv_loop_close(&loop);
    if (rc != 0) {
        uv_walk(&loop, on_walk, NULL);
        ef_error("event loop not closed cleanly: %s", uv_strerror(rc));
        return 1;
    }
    ef_info("statusd stopped");
    return 0;
}
