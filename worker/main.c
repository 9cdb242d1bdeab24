// SPDX-License-Identifier: MIT
/*
 * worker: the command line entry point and the process lifecycle: flags,
 * recipes, connections, signals, draining and shutdown.  See worker.h for
 * the design and `worker --help` for the flags.
 */
#include "worker.h"

#include "ef_log.h"
#include "ef_notify.h"
#include "ef_scripts_gen.h"

#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: worker --providers FILE [options]\n"
"\n"
"Takes chunks of entities from Redis queues, asks each entity's provider\n"
"about it over HTTP (the recipes in FILE, see docs/providers.md) and records\n"
"every outcome exactly once.  Run any number of workers on any number of\n"
"hosts against the same Redis.\n"
"\n"
"Options:\n"
"  --providers FILE          provider recipes, JSON (default $FARM_PROVIDERS)\n"
"  --queue Q[,Q2...]         queues to serve (default $FARM_QUEUE, else 'default')\n"
"  --concurrency N           HTTP requests in flight at most (default %d)\n"
"  --visibility-timeout S    lease of a taken chunk, extended while alive (default %d)\n"
"  --max-attempts N          deliveries before a chunk goes to the dead list (default %d)\n"
"  --grace S                 on SIGTERM, time for in-flight requests (default %d)\n"
"  --id ID                   worker id in the registry (default HOST-PID-RANDOM)\n"
"  --notify-secret-env NAME  environment variable holding the secret that signs\n"
"                            completion webhooks (default %s); a worker without\n"
"                            it sends no webhook (docs/webhooks.md)\n"
"  --notify-timeout S        one webhook attempt at most (default %d)\n"
"  --notify-give-up S        a job's webhook is retried this long after its first\n"
"                            attempt, then marked failed (default %d)\n"
"  --redis URL               redis://[[user]:password@]host[:port][/db] or unix:///path\n"
"                            or redis+sentinel://[user:pass@]host:port[,...]/MASTER[/db]\n"
"                            or redis+cluster://[user:pass@]host:port[,host:port...]\n"
"                            or over TLS rediss://, rediss+sentinel://, rediss+cluster:// with\n"
"                            ?cacert=PATH&cert=PATH&key=PATH&sni=NAME (verification always on)\n"
"                            (default $REDIS_URL, else %s)\n"
"  --log-format F            text | json (default text)\n"
"  --log-level L             debug | info | warn | error (default info)\n"
"  -h, --help                this help\n"
"  -V, --version             the version\n"
"\n"
"Signals: SIGHUP re-reads FILE's rate limits (the farm-wide buckets follow);\n"
"SIGTERM/SIGINT drain (no new chunks, in-flight requests finish within\n"
"--grace, unfinished chunks are handed back at once) and exit 0; a second signal\n"
"exits at once, and leases bring the work back.\n",
            EF_WORKER_CONCURRENCY_DEFAULT, EF_WORKER_VISIBILITY_DEFAULT_S,
            EF_WORKER_MAX_ATTEMPTS_DEFAULT, EF_WORKER_GRACE_DEFAULT_S,
            EF_NOTIFY_SECRET_ENV_DEFAULT, EF_NOTIFY_TIMEOUT_DEFAULT_S, EF_NOTIFY_GIVE_UP_DEFAULT_S,
            EF_DEFAULT_REDIS_URL);
}

/* How many more entities the worker wants in hand: --concurrency plus about
 * two chunks, so the next chunk is there before the current ones run dry.
 * Entities waiting for a sink count as in hand: while the database is away
 * the worker stops taking chunks instead of piling them up. */
size_t ef_worker_wanted(const ef_worker_t *w) {
    size_t target = (size_t)w->concurrency + 100 + ef_batch_hand(w),
           have = w->unresolved + ef_sinks_held(w);
    for (size_t i = 0; i < w->nqueues; i++)
        have += (size_t)w->queues[i].claims * 50;
    return have < target ? target - have : 0;
}

/* ---- shutdown ---- */

static void on_closed(uv_handle_t *h) { (void)h; }

static void close_all(ef_worker_t *w) {
    if (w->stopping)
        return;
    w->stopping = 1;
    uv_close((uv_handle_t *)&w->tick, on_closed);
    uv_close((uv_handle_t *)&w->retry_timer, on_closed);
    uv_close((uv_handle_t *)&w->drain_timer, on_closed);
    uv_close((uv_handle_t *)&w->sigterm, on_closed);
    uv_close((uv_handle_t *)&w->sigint, on_closed);
    uv_close((uv_handle_t *)&w->sighup, on_closed);
    ef_ratelimit_close(w);
    ef_auth_close(w);
    for (size_t i = 0; i < w->nprovs; i++)
        ef_sink_close(w->provs[i].sink);
    for (size_t i = 0; i < w->nqueues; i++) {
        ef_redis_close(w->queues[i].take, NULL, NULL);
        w->queues[i].take = NULL;
    }
    ef_http_close(w->http, NULL, NULL);
    w->http = NULL;
    ef_redis_close(w->sub, NULL, NULL);
    w->sub = NULL;
    ef_redis_close(w->cmd, NULL, NULL);
    w->cmd = NULL;
}

static void on_unregistered(ef_redis_t *rc, redisReply *r, void *arg) {
    (void)rc;
    (void)r;
    ef_worker_t *w = arg;
    ef_info("worker %s stopped", w->id);
    close_all(w);
}

void ef_worker_check_drained(ef_worker_t *w) {
    if (!w->draining || w->stopping || w->nchunks > 0)
        return;
    for (size_t i = 0; i < w->nqueues; i++)
        if (w->queues[i].claims > 0 || w->queues[i].taking)
            return;
    /* nothing held: leave the registry and stop */
    ef_key_t kw, kall;
    const char *del[] = {"DEL", ef_key_worker(&kw, w->id)};
    const char *zrem[] = {"ZREM", ef_key_global(&kall, EF_KEY_WORKERS), w->id};
    w->draining = 2; /* unregistering */
    if (w->cmd_ready && ef_redis_cmd(w->cmd, NULL, NULL, 0, 2, del, NULL) == 0 &&
        ef_redis_cmd(w->cmd, on_unregistered, w, 0, 3, zrem, NULL) == 0)
        return;
    ef_info("worker %s stopped", w->id);
    close_all(w);
}

static void on_unblocked(ef_redis_t *rc, redisReply *r, void *arg) {
    (void)rc;
    (void)r;
    (void)arg;
}

static void drain_timeout(uv_timer_t *t) {
    ef_worker_t *w = t->data;
    if (w->inflight > 0) {
        ef_warn("grace period over: abandoning %zu request(s) in flight; their entities are "
                "handed back", w->inflight);
        ef_http_close(w->http, NULL, NULL); /* callbacks fire with ABORTED */
        w->http = NULL;
    }
    ef_worker_release_all(w);
    ef_worker_check_drained(w);
    if (!w->cmd_ready && !w->stopping) {
        ef_warn("redis unreachable at the end of the grace period: exiting; leases bring the "
                "chunks still held back to the queue");
        close_all(w);
    } else if (!w->stopping && ef_sinks_held(w) > 0) {
        ef_warn("postgres sink unreachable at the end of the grace period: exiting; leases "
                "bring the chunks still held back to the queue (their rows are written again)");
        close_all(w);
    }
}

static void on_signal(uv_signal_t *s, int signum) {
    ef_worker_t *w = s->data;
    if (w->draining) {
        ef_warn("second signal: exiting now; leases will bring unfinished chunks back");
        _exit(1);
    }
    w->draining = 1;
    ef_info("%s: draining (no new chunks; %zu request(s) in flight, %zu chunk(s) held, grace %d s)",
            signum == SIGTERM ? "SIGTERM" : "SIGINT", w->inflight, w->nchunks, w->grace_ms / 1000);
    if (w->cmd_ready)
        ef_worker_heartbeat(w);
    /* wake the BLMOVEs so no chunk is taken while stopping */
    for (size_t i = 0; i < w->nqueues; i++) {
        ef_wq_t *q = &w->queues[i];
        if (q->taking && q->client_id > 0 && w->cmd_ready) {
            char id[32];
            snprintf(id, sizeof id, "%lld", q->client_id);
            const char *argv[] = {"CLIENT", "UNBLOCK", id};
            ef_redis_cmd_near(w->cmd, q->k_pending.s, on_unblocked, NULL, 0, 3, argv);
        }
    }
    if (w->inflight == 0)
        ef_worker_release_all(w);
    uv_timer_start(&w->drain_timer, drain_timeout, (uint64_t)w->grace_ms, 0);
    ef_worker_check_drained(w);
}

/* SIGHUP: re-reads the recipe file and applies the new rate limits of the
 * providers this worker runs (the bucket settings live in Redis, so the
 * whole farm follows at once).  Other recipe changes need a restart. */
static void on_sighup(uv_signal_t *s, int signum) {
    ef_worker_t *w = s->data;
    ef_recipes_t *fresh;
    char err[EF_ERR_LEN];
    (void)signum;
    if (ef_recipes_load_file(w->providers_file, &fresh, err) != 0) {
        ef_error("SIGHUP: keeping the current recipes: %s", err);
        return;
    }
    for (size_t i = 0; i < w->nprovs; i++) {
        const ef_recipe_t *n = ef_recipes_get(fresh, w->provs[i].rc->name);
        ef_recipe_t *cur = (ef_recipe_t *)w->provs[i].rc; /* only the rate fields change */
        if (!n)
            continue;
        cur->rate_requests = n->rate_requests;
        cur->rate_per_seconds = n->rate_per_seconds;
        cur->rate_burst = n->rate_burst;
    }
    ef_recipes_free(fresh);
    if (w->cmd_ready)
        ef_ratelimit_register(w);
    ef_info("SIGHUP: rate limits reloaded from %s", w->providers_file);
}

/* ---- connections ---- */

static void on_cmd_state(ef_redis_t *r, int ready, void *arg) {
    ef_worker_t *w = arg;
    (void)r;
    if (ready < 0) {
        ef_error("redis refused this worker's credentials or permissions; exiting (a "
                 "supervisor must not take a worker that can never work for a healthy one)");
        w->exit_code = 1;
        close_all(w);
        return;
    }
    w->cmd_ready = ready;
    if (!ready)
        return;
    ef_worker_register_providers(w);
    ef_ratelimit_register(w);
    ef_worker_heartbeat(w);
    for (size_t i = 0; i < w->nqueues; i++)
        ef_control_resync(&w->queues[i]); /* what was said while cmd was down */
    ef_worker_acks_tick(w);
    ef_worker_take_kick(w);
    ef_worker_dispatch(w);
    ef_worker_check_drained(w);
}

static void on_client_id(ef_redis_t *r, redisReply *reply, void *arg) {
    ef_wq_t *q = arg;
    (void)r;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        q->client_id = reply->integer;
}

static void on_take_state(ef_redis_t *r, int ready, void *arg) {
    ef_wq_t *q = arg;
    if (ready <= 0) {
        q->taking = 0;
        q->client_id = 0;
        return;
    }
    /* on a cluster, from the node where this queue's BLMOVE waits */
    ef_redis_cmd_near(r, q->k_pending.s, on_client_id, q, 0, 2, (const char *[]){"CLIENT", "ID"});
    ef_worker_take_queue(q);
}

static int parse_queues(ef_worker_t *w, const char *csv) {
    char buf[EF_WORKER_MAX_QUEUES * (EF_QUEUE_MAX_LEN + 1) + 1];
    char *save = NULL, *tok;
    if (strlen(csv) >= sizeof buf) {
        fprintf(stderr, "worker: --queue list too long\n");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", csv);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!ef_queue_name_valid(tok)) {
            fprintf(stderr, "worker: --queue: '%s' is not a valid queue name (1-64 of A-Z a-z 0-9 _ . -)\n", tok);
            return -1;
        }
        for (size_t i = 0; i < w->nqueues; i++)
            if (strcmp(w->queues[i].name, tok) == 0)
                goto next;
        if (w->nqueues == EF_WORKER_MAX_QUEUES) {
            fprintf(stderr, "worker: at most %d queues\n", EF_WORKER_MAX_QUEUES);
            return -1;
        }
        ef_wq_t *q = &w->queues[w->nqueues++];
        q->w = w;
        snprintf(q->name, sizeof q->name, "%s", tok);
        ef_key_queue(&q->k_pending, tok, EF_KEY_PENDING);
        ef_key_queue(&q->k_processing, tok, EF_KEY_PROCESSING);
        ef_key_queue(&q->k_leases, tok, EF_KEY_LEASES);
        ef_key_queue(&q->k_owners, tok, EF_KEY_OWNERS);
        ef_key_queue(&q->k_dead, tok, EF_KEY_DEAD);
        ef_key_queue(&q->k_paused, tok, EF_KEY_PAUSED);
        ef_key_queue(&q->k_stats, tok, EF_KEY_STATS);
        ef_key_queue(&q->k_events, tok, EF_KEY_EVENTS);
        ef_key_queue(&q->k_enqueuing, tok, EF_KEY_ENQUEUING);
        ef_key_queue(&q->k_control, tok, EF_KEY_CONTROL);
        ef_key_queue(&q->k_notify, tok, EF_KEY_NOTIFY);
    next:;
    }
    if (w->nqueues == 0) {
        fprintf(stderr, "worker: --queue needs at least one queue name\n");
        return -1;
    }
    size_t off = 0;
    for (size_t i = 0; i < w->nqueues; i++)
        off += (size_t)snprintf(w->queues_csv + off, sizeof w->queues_csv - off, "%s%s", i ? "," : "",
                                w->queues[i].name);
    return 0;
}

enum { OPT_REDIS = 256, OPT_QUEUE, OPT_CONC, OPT_PROV, OPT_VIS, OPT_MAXA, OPT_GRACE, OPT_ID, OPT_LOGF, OPT_LOGL,
       OPT_NSECRET, OPT_NTIMEOUT, OPT_NGIVEUP };

static const struct option long_opts[] = {
    {"redis", required_argument, 0, OPT_REDIS},
    {"queue", required_argument, 0, OPT_QUEUE},
    {"concurrency", required_argument, 0, OPT_CONC},
    {"providers", required_argument, 0, OPT_PROV},
    {"visibility-timeout", required_argument, 0, OPT_VIS},
    {"max-attempts", required_argument, 0, OPT_MAXA},
    {"grace", required_argument, 0, OPT_GRACE},
    {"id", required_argument, 0, OPT_ID},
    {"log-format", required_argument, 0, OPT_LOGF},
    {"log-level", required_argument, 0, OPT_LOGL},
    {"notify-secret-env", required_argument, 0, OPT_NSECRET},
    {"notify-timeout", required_argument, 0, OPT_NTIMEOUT},
    {"notify-give-up", required_argument, 0, OPT_NGIVEUP},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0},
};

static int int_flag(const char *name, const char *v, long lo, long hi, int *out) {
    int64_t n;
    if (ef_parse_i64(v, strlen(v), &n) != 0 || n < lo || n > hi) {
        fprintf(stderr, "worker: %s must be an integer from %ld to %ld, got '%s'\n", name, lo, hi, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

int main(int argc, char **argv) {
    ef_worker_t w;
    uv_loop_t loop;
    const char *redis_url = NULL, *providers = getenv("FARM_PROVIDERS"), *queues = getenv("FARM_QUEUE");
    const char *id = NULL;
    ef_log_level_t level = EF_LOG_INFO;
    ef_log_format_t lfmt = EF_LOG_TEXT;
    char err[EF_ERR_LEN];
    int c, vis_s = EF_WORKER_VISIBILITY_DEFAULT_S, grace_s = EF_WORKER_GRACE_DEFAULT_S;
    int ntimeout_s = EF_NOTIFY_TIMEOUT_DEFAULT_S, ngiveup_s = EF_NOTIFY_GIVE_UP_DEFAULT_S;
    const char *nsecret_env = EF_NOTIFY_SECRET_ENV_DEFAULT;

    memset(&w, 0, sizeof w);
    w.concurrency = EF_WORKER_CONCURRENCY_DEFAULT;
    w.max_attempts = EF_WORKER_MAX_ATTEMPTS_DEFAULT;
    while ((c = getopt_long(argc, argv, "hV", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_REDIS: redis_url = optarg; break;
        case OPT_QUEUE: queues = optarg; break;
        case OPT_CONC:
            if (int_flag("--concurrency", optarg, 1, 100000, &w.concurrency) != 0)
                return 1;
            break;
        case OPT_PROV: providers = optarg; break;
        case OPT_VIS:
            if (int_flag("--visibility-timeout", optarg, 1, 86400, &vis_s) != 0)
                return 1;
            break;
        case OPT_MAXA:
            if (int_flag("--max-attempts", optarg, 1, 1000, &w.max_attempts) != 0)
                return 1;
            break;
        case OPT_GRACE:
            if (int_flag("--grace", optarg, 0, 86400, &grace_s) != 0)
                return 1;
            break;
        case OPT_ID:
            if (!ef_job_id_valid(optarg)) {
                fprintf(stderr, "worker: --id must be 1-64 of A-Z a-z 0-9 _ -, got '%s'\n", optarg);
                return 1;
            }
            id = optarg;
            break;
        case OPT_NSECRET:
            if (!*optarg || strlen(optarg) > 128 || strchr(optarg, '=')) {
                fprintf(stderr, "worker: --notify-secret-env must be an environment variable name\n");
                return 1;
            }
            nsecret_env = optarg;
            break;
        case OPT_NTIMEOUT:
            if (int_flag("--notify-timeout", optarg, 1, 300, &ntimeout_s) != 0)
                return 1;
            break;
        case OPT_NGIVEUP:
            if (int_flag("--notify-give-up", optarg, 1, 604800, &ngiveup_s) != 0)
                return 1;
            break;
        case OPT_LOGF:
            if (ef_log_format_parse(optarg, &lfmt) != 0) {
                fprintf(stderr, "worker: --log-format must be text or json, got '%s'\n", optarg);
                return 1;
            }
            break;
        case OPT_LOGL:
            if (ef_log_level_parse(optarg, &level) != 0) {
                fprintf(stderr, "worker: --log-level must be debug, info, warn, error or off, got '%s'\n", optarg);
                return 1;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("worker (enrichfarm) %s\n", EF_VERSION); return 0;
        default: fprintf(stderr, "(see worker --help)\n"); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "worker: unexpected argument '%s' (see worker --help)\n", argv[optind]);
        return 1;
    }
    ef_log_init("worker", level, lfmt);
    w.visibility_ms = vis_s * 1000;
    w.grace_ms = grace_s * 1000;
    w.notify_timeout_ms = ntimeout_s * 1000;
    w.notify_give_up_ms = (long long)ngiveup_s * 1000;
    if (!providers || !*providers) {
        fprintf(stderr, "worker: --providers FILE is required (provider recipes, see docs/providers.md)\n");
        return 1;
    }
    if (parse_queues(&w, queues && *queues ? queues : EF_DEFAULT_QUEUE) != 0)
        return 1;
    if (ef_recipes_load_file(providers, &w.recipes, err) != 0) {
        fprintf(stderr, "worker: %s\n", err);
        return 1;
    }
    redis_url = ef_redis_url_default(redis_url);
    if (ef_redis_url_parse(redis_url, &w.url, err) != 0 || ef_redis_url_supported(&w.url, err) != 0) {
        fprintf(stderr, "worker: --redis: %s\n", err);
        ef_recipes_free(w.recipes);
        return 1;
    }
    w.nprovs = ef_recipes_count(w.recipes);
    w.provs = ef_calloc(w.nprovs, sizeof *w.provs);
    for (size_t i = 0; i < w.nprovs; i++) {
        w.provs[i].rc = ef_recipes_at(w.recipes, i);
        /* {provider} in templates (the default result key), shared by every entity */
        w.provs[i].defaults = cJSON_CreateObject();
        cJSON_AddStringToObject(w.provs[i].defaults, "provider", w.provs[i].rc->name);
    }
    ef_hostname(w.host, sizeof w.host);
    if (id)
        snprintf(w.id, sizeof w.id, "%s", id);
    else
        snprintf(w.id, sizeof w.id, "%.100s-%d-%04x", w.host, (int)getpid(),
                 (unsigned)(ef_rand64() & 0xffff));
    for (char *p = w.id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            *p = '_';
    w.started_at = ef_now_ms();
    if (getenv(nsecret_env) && *getenv(nsecret_env)) {
        w.notify_secret = ef_strdup(getenv(nsecret_env));
        w.notify_secret_len = strlen(w.notify_secret);
    }

    signal(SIGPIPE, SIG_IGN);
    /* no core dumps: the environment and filled requests hold provider secrets */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    uv_loop_init(&loop);
    w.loop = &loop;
    uv_timer_init(&loop, &w.tick);
    uv_timer_init(&loop, &w.retry_timer);
    uv_timer_init(&loop, &w.drain_timer);
    w.tick.data = w.retry_timer.data = w.drain_timer.data = &w;
    uv_signal_init(&loop, &w.sigterm);
    uv_signal_init(&loop, &w.sigint);
    w.sigterm.data = w.sigint.data = &w;
    uv_signal_start(&w.sigterm, on_signal, SIGTERM);
    uv_signal_start(&w.sigint, on_signal, SIGINT);
    uv_signal_init(&loop, &w.sighup);
    w.sighup.data = &w;
    uv_signal_start(&w.sighup, on_sighup, SIGHUP);
    w.providers_file = providers;
    ef_ratelimit_init(&w);
    ef_auth_init(&w);
    for (size_t i = 0; i < w.nprovs; i++) {
        if (ef_sink_create(&w.provs[i], err) != 0) {
            fprintf(stderr, "worker: %s\n", err);
            return 1;
        }
    }

    ef_http_opts_t hopts = {.max_total_connections = w.concurrency,
                            .max_host_connections = w.concurrency,
                            .max_connects = w.concurrency};
    ef_redis_opts_t copts = {.name = "cmd", .load_scripts = 1, .on_state = on_cmd_state, .state_arg = &w};
    if (ef_http_create(&w.http, &loop, &hopts) != 0 ||
        ef_redis_create(&w.cmd, &loop, &w.url, &copts) != 0 || ef_control_create(&w) != 0) {
        fprintf(stderr, "worker: cannot start the HTTP client or the redis connection\n");
        return 1;
    }
    for (size_t i = 0; i < w.nqueues; i++) {
        ef_redis_opts_t topts = {.name = "take", .ping_interval_ms = -1, .on_state = on_take_state,
                                 .state_arg = &w.queues[i]};
        if (ef_redis_create(&w.queues[i].take, &loop, &w.url, &topts) != 0) {
            fprintf(stderr, "worker: cannot create the redis take connection\n");
            return 1;
        }
    }
    uv_timer_start(&w.tick, ef_worker_tick, EF_WORKER_TICK_MS, EF_WORKER_TICK_MS);
    {
        char where[600];
        ef_redis_url_redacted(&w.url, where, sizeof where);
        ef_info("worker %s starting: queues %s, concurrency %d, %zu provider(s), redis %s", w.id,
                w.queues_csv, w.concurrency, w.nprovs, where);
        if (w.notify_secret)
            ef_info("completion webhooks: sending, signed with the secret in $%s", nsecret_env);
        else
            ef_info("completion webhooks: $%s is not set: this worker sends none", nsecret_env);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    while (w.chunks)
        ef_chunk_free(w.chunks);
    ef_notify_free_all(&w);
    if (w.notify_secret) {
        memset(w.notify_secret, 0, w.notify_secret_len);
        free(w.notify_secret);
    }
    free(w.heap);
    ef_auth_free(&w);
    for (size_t i = 0; i < w.nprovs; i++)
        cJSON_Delete(w.provs[i].defaults);
    free(w.provs);
    ef_recipes_free(w.recipes);
    int rc = uv_loop_close(&loop);
    if (rc != 0)
        ef_warn("event loop closed with handles open (%s)", uv_strerror(rc));
    return w.exit_code;
}
