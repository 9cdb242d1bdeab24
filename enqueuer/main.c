// SPDX-License-Identifier: MIT
/*
 * enqueuer: the command line entry point.  Parses the flags, connects to
 * Redis and either submits a file as a job (the default) or runs an admin
 * verb.  See `enqueuer --help`.
 */
#include "enqueuer.h"

#include "ef_job.h"
#include "ef_keys.h"
#include "ef_log.h"
#include "ef_notify.h"
#include "ef_redis_sync.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f) {
    fprintf(f,
"usage: enqueuer [options] --provider P FILE|-     submit FILE (or stdin) as a job\n"
"       enqueuer [options] VERB [ID]                 admin verbs\n"
"\n"
"Submits a list of entities to the farm: the input is split into chunks\n"
"stored in Redis, then the job is sealed and every chunk becomes visible to\n"
"workers at once.  Prints the new job id alone on stdout.\n"
"\n"
"Submit options:\n"
"  --provider P          provider recipe name (required)\n"
"  --queue Q             queue name (default $FARM_QUEUE, else 'default')\n"
"  --chunk-size N        entities per chunk, 1..%d (default %d)\n"
"  --format F            lines | csv | ndjson (default from the file name:\n"
"                        .csv, .ndjson/.jsonl, else lines)\n"
"  --id-field F          CSV column / NDJSON field holding the id (default id)\n"
"  --entity-type T       what the entities are, stored on the job (default entity)\n"
"  --job-id ID           use this job id (1-64 of A-Z a-z 0-9 _ -); refused if it exists\n"
"  --priority P          normal | high (high: taken before every waiting normal chunk)\n"
"  --dry-run             compute outcomes, write no results\n"
"  --skip-invalid        report bad records with their line and skip them\n"
"                        (default: a bad record aborts the job, nothing is enqueued)\n"
"  --notify URL          when the job ends (completed, cancelled, failed), POST its\n"
"                        JSON summary to URL, signed (docs/webhooks.md); default:\n"
"                        the recipe's \"notify\", else the queue's (queue-notify)\n"
"  --wait                follow the job until it ends (progress bar on a TTY);\n"
"                        exit 0 completed, 2 failed, 3 cancelled\n"
"\n"
"Admin verbs (with --queue Q):\n"
"  status ID             the job as JSON (numbers as numbers, progress, rate, ETA)\n"
"  list                  recent jobs, newest first (--limit N, --status S, --json)\n"
"  cancel ID             cancel a job: remaining entities are not requested\n"
"  pause [ID]            pause a job, or the whole queue without ID\n"
"  resume [ID]           resume a job, or the whole queue without ID\n"
"  retry-errors ID       a new job holding only the errored entities of ID\n"
"  results ID            export entities, outcomes and results (--output FILE)\n"
"                        --format ndjson (default): one JSON object a line, values\n"
"                        typed as stored (results keep the provider's JSON types);\n"
"                        --format csv: RFC 4180, a header row (entity fields,\n"
"                        outcome, result fields), one row per entity\n"
"  wait ID               follow an existing job like --wait\n"
"  queue-notify [URL|off] show, set or clear the queue's default completion webhook\n"
"                        (jobs made afterwards without --notify or a recipe default)\n"
"  rate-limit P [REQ PER [BURST]]  show or set provider P's farm-wide token bucket\n"
"                        (setting it clears a pause left by a 429)\n"
"                        (REQ requests per PER seconds; workers reset it from their\n"
"                        recipe when they start or get SIGHUP)\n"
"\n"
"Common options:\n"
"  --redis URL           redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]\n"
"                        or redis+sentinel://[user:pass@]host:port[,...]/MASTER[/db]\n"
"                        or redis+cluster://[user:pass@]host:port[,host:port...]\n"
"                        or over TLS rediss://, rediss+sentinel://, rediss+cluster:// with\n"
"                        ?cacert=PATH&cert=PATH&key=PATH&sni=NAME (verification always on)\n"
"                        (default $REDIS_URL, else %s)\n"
"  --log-format F        text | json (default text)\n"
"  --log-level L         debug | info | warn | error (default info)\n"
"  -q, --quiet           no progress output\n"
"  -h, --help            this help\n"
"  -V, --version         the version\n"
"\n"
"Exit status: 0 ok; 1 bad usage, bad input or Redis error; 2 job failed;\n"
"3 job cancelled; 4 retry-errors found no errored entity (no job made);\n"
"130 interrupted; killed by SIGPIPE (141 in a shell) when a reader of\n"
"`results` closes the pipe early, silently.\n",
            EF_CHUNK_SIZE_MAX, EF_CHUNK_SIZE_DEFAULT, EF_DEFAULT_REDIS_URL);
}

enum {
    OPT_REDIS = 256, OPT_QUEUE, OPT_PROVIDER, OPT_CHUNK, OPT_DRY, OPT_PRIO, OPT_FORMAT, OPT_IDF,
    OPT_WAIT, OPT_SKIP, OPT_JOBID, OPT_ETYPE, OPT_LOGF, OPT_LOGL, OPT_LIMIT, OPT_STATUS, OPT_JSON,
    OPT_OUTPUT, OPT_NOTIFY
};

static const struct option long_opts[] = {
    {"redis", required_argument, 0, OPT_REDIS},
    {"queue", required_argument, 0, OPT_QUEUE},
    {"provider", required_argument, 0, OPT_PROVIDER},
    {"chunk-size", required_argument, 0, OPT_CHUNK},
    {"dry-run", no_argument, 0, OPT_DRY},
    {"priority", required_argument, 0, OPT_PRIO},
    {"format", required_argument, 0, OPT_FORMAT},
    {"id-field", required_argument, 0, OPT_IDF},
    {"wait", no_argument, 0, OPT_WAIT},
    {"skip-invalid", no_argument, 0, OPT_SKIP},
    {"job-id", required_argument, 0, OPT_JOBID},
    {"entity-type", required_argument, 0, OPT_ETYPE},
    {"log-format", required_argument, 0, OPT_LOGF},
    {"log-level", required_argument, 0, OPT_LOGL},
    {"limit", required_argument, 0, OPT_LIMIT},
    {"status", required_argument, 0, OPT_STATUS},
    {"json", no_argument, 0, OPT_JSON},
    {"output", required_argument, 0, OPT_OUTPUT},
    {"notify", required_argument, 0, OPT_NOTIFY},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0},
};

static int bad(const char *fmt, const char *arg) EF_PRINTF(1, 0);
static int bad(const char *fmt, const char *arg) {
    fprintf(stderr, "enqueuer: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
    fprintf(stderr, "\n(see enqueuer --help)\n");
    return EF_ENQ_EXIT_ERROR;
}

int main(int argc, char **argv) {
    ef_enq_t st;
    ef_log_level_t level = EF_LOG_INFO;
    ef_log_format_t lfmt = EF_LOG_TEXT;
    char err[EF_ERR_LEN];
    int c, rc;
    int64_t n;

    memset(&st, 0, sizeof st);
    st.interrupted = &interrupted;
    st.queue = getenv("FARM_QUEUE") && *getenv("FARM_QUEUE") ? getenv("FARM_QUEUE") : EF_DEFAULT_QUEUE;
    st.chunk_size = 0;
    while ((c = getopt_long(argc, argv, "qhV", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_REDIS: st.redis_url = optarg; break;
        case OPT_QUEUE: st.queue = optarg; break;
        case OPT_PROVIDER: st.provider = optarg; break;
        case OPT_CHUNK:
            if (ef_parse_i64(optarg, strlen(optarg), &n) != 0 || n < 1 || n > EF_CHUNK_SIZE_MAX)
                return bad("--chunk-size must be an integer from 1 to " EF_XSTR(EF_CHUNK_SIZE_MAX) ", got '%s'",
                           optarg);
            st.chunk_size = (int)n;
            break;
        case OPT_DRY: st.dry_run = 1; break;
        case OPT_PRIO:
            if (strcmp(optarg, "high") == 0)
                st.high_priority = 1;
            else if (strcmp(optarg, "normal") != 0)
                return bad("--priority must be normal or high, got '%s'", optarg);
            break;
        case OPT_FORMAT:
            if (ef_input_format_parse(optarg, &st.format) != 0)
                return bad("--format must be lines, csv or ndjson, got '%s'", optarg);
            st.format_set = 1;
            break;
        case OPT_IDF:
            if (!*optarg || strlen(optarg) > 256)
                return bad("--id-field must be 1..256 bytes, got '%s'", optarg);
            st.id_field = optarg;
            break;
        case OPT_WAIT: st.wait = 1; break;
        case OPT_SKIP: st.skip_invalid = 1; break;
        case OPT_JOBID:
            if (!ef_job_id_valid(optarg))
                return bad("--job-id must be 1-64 of A-Z a-z 0-9 _ -, got '%s'", optarg);
            st.job_id = optarg;
            break;
        case OPT_ETYPE:
            if (!*optarg || strlen(optarg) > 64)
                return bad("--entity-type must be 1..64 bytes, got '%s'", optarg);
            st.entity_type = optarg;
            break;
        case OPT_LOGF:
            if (ef_log_format_parse(optarg, &lfmt) != 0)
                return bad("--log-format must be text or json, got '%s'", optarg);
            break;
        case OPT_LOGL:
            if (ef_log_level_parse(optarg, &level) != 0)
                return bad("--log-level must be debug, info, warn, error or off, got '%s'", optarg);
            break;
        case OPT_LIMIT:
            if (ef_parse_i64(optarg, strlen(optarg), &n) != 0 || n < 1 || n > 100000)
                return bad("--limit must be 1..100000, got '%s'", optarg);
            st.limit = (int)n;
            break;
        case OPT_STATUS: st.status_filter = optarg; break;
        case OPT_JSON: st.json = 1; break;
        case OPT_OUTPUT: st.output = optarg; break;
        case OPT_NOTIFY:
            if (!ef_notify_url_valid(optarg, err))
                return bad("--notify: %s", err);
            st.notify = optarg;
            break;
        case 'q': st.quiet = 1; break;
        case 'h': usage(stdout); return EF_ENQ_EXIT_OK;
        case 'V': printf("enqueuer (enrichfarm) %s\n", EF_VERSION); return EF_ENQ_EXIT_OK;
        default: fprintf(stderr, "(see enqueuer --help)\n"); return EF_ENQ_EXIT_ERROR;
        }
    }
    ef_log_init("enqueuer", st.quiet && level < EF_LOG_WARN ? EF_LOG_WARN : level, lfmt);
    if (!ef_queue_name_valid(st.queue))
        return bad("--queue must be 1-64 of A-Z a-z 0-9 _ . -, got '%s'", st.queue);
    if (st.status_filter && !ef_job_status_valid(st.status_filter))
        return bad("--status must be a job status (enqueuing queued running paused completed "
                   "cancelled failed), got '%s'", st.status_filter);
    if (optind >= argc) {
        fprintf(stderr, "enqueuer: nothing to do: give a FILE (or - for stdin) or a verb\n"
                        "(see enqueuer --help)\n");
        return EF_ENQ_EXIT_ERROR;
    }
    int is_verb = ef_enq_is_verb(argv[optind]) || strcmp(argv[optind], "wait") == 0;
    if (!is_verb) {
        if (!st.provider)
            return bad("%s", "--provider is required to submit a job");
        if (!ef_provider_name_valid(st.provider))
            return bad("--provider must be 1-64 of A-Z a-z 0-9 _ . -, got '%s'", st.provider);
        if (argc - optind > 1)
            return bad("submit takes one FILE, got extra argument '%s'", argv[optind + 1]);
        if (st.chunk_size == 0)
            st.chunk_size = EF_CHUNK_SIZE_DEFAULT;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: reads return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    st.redis_url = ef_redis_url_default(st.redis_url);
    st.redis = ef_redis_sync_connect(st.redis_url, EF_ENQ_REDIS_TIMEOUT_MS, err);
    if (!st.redis) {
        fprintf(stderr, "enqueuer: %s\n", err);
        return EF_ENQ_EXIT_ERROR;
    }
    if (!is_verb) {
        rc = ef_enq_submit_file(&st, argv[optind]);
    } else if (strcmp(argv[optind], "wait") == 0) {
        if (argc - optind != 2 || !ef_job_id_valid(argv[optind + 1]))
            rc = bad("%s", "wait needs one valid job id");
        else
            rc = ef_enq_follow(&st, argv[optind + 1]);
    } else {
        rc = ef_enq_admin(&st, argc - optind, argv + optind);
    }
    ef_redis_sync_free(st.redis);
    return rc;
}
