// SPDX-License-Identifier: MIT
/*
 * main.c: the mock provider's command line. It parses the flags (the knobs
 * through knobs.c, so that --p-500 and /control?p_500= are one thing), then
 * either runs an offline helper that prints the catalogue's truth
 * (--dump-movies-csv, --expect items|movies, --self-test) or serves: one
 * loop, one mp_server, until SIGINT or SIGTERM, ending with a clean
 * uv_loop_close().
 */
#include "mockprov.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    MP_MODE_SERVE,
    MP_MODE_DUMP,
    MP_MODE_EXPECT_ITEMS,
    MP_MODE_EXPECT_MOVIES,
    MP_MODE_SELFTEST,
    MP_MODE_HELP,
    MP_MODE_VERSION,
};

typedef struct mp_options {
    int mode;
    const char *listen;
    const char *port_file;
    uint64_t max_conns;
    uint64_t catalog;
    uint64_t seed;
    uint64_t rows; /* 0 = catalog size */
    const char *client_id;     /* OAuth2 client of /oauth/token */
    const char *client_secret;
    mp_knobs knobs;
} mp_options;

static const char mp_usage[] =
    "usage: mockprov [--listen HOST:PORT] [--port-file PATH] [options]\n"
    "       mockprov --dump-movies-csv [--catalog N] [--seed S] [--rows R]\n"
    "       mockprov --expect items|movies [--catalog N] [--seed S] < input\n"
    "\n"
    "A mock TMDB-like provider over a deterministic catalogue, with faults\n"
    "and an enforced rate limit (see docs/mockprov.md).\n"
    "\n"
    "Server:\n"
    "  --listen HOST:PORT   address to bind (default 127.0.0.1:8088; port 0 "
    "picks one)\n"
    "  --port-file PATH     write the bound port there once listening\n"
    "  --max-conns N        connection cap (default 4096)\n"
    "  --catalog N          catalogue size (default 1000)\n"
    "  --seed S             catalogue and fault seed (default 1)\n"
    "  --log                one stderr line per request\n"
    "Knobs (also GET /control?name=value, '-' or '_'):\n"
    "  --latency-ms N --jitter-ms N   delay before each answer\n"
    "  --p-500 P --p-reset P --p-hang P --p-malformed P --p-huge P --p-slow P\n"
    "                       fault probabilities in [0,1]\n"
    "  --huge-bytes N       body size of a huge answer (default 8388608)\n"
    "  --slow-ms N          duration of a slow trickle (default 1000)\n"
    "  --fail-first K       first K requests to each target get 503\n"
    "  --rate R --per S --burst B   token bucket, R per S seconds (0 = off)\n"
    "  --retry-after-s N    a 429 asks for N s (0 = time to the next token)\n"
    "  --retry-after-date M 0 seconds, 1 HTTP-date and Date, 2 HTTP-date alone\n"
    "  --clock-skew-s S     seconds added to the clock behind those dates\n"
    "  --huge-chunked 0|1   huge bodies chunked, without Content-Length\n"
    "  --rate-headers 0|1|2 rate headers on rated answers: X-RateLimit-*, or RateLimit + RateLimit-Policy\n"
    "  --oauth 0|1          API requests need a bearer token from POST /oauth/token\n"
    "  --token-ttl-s N      life of a token (default 3600)\n"
    "  --token-down 0|1     the token endpoint answers 503\n"
    "OAuth2 client (POST /oauth/token, GET /oauth/revoke):\n"
    "  --client-id ID --client-secret S   the one client (default enrichfarm, mock-secret)\n"
    "  --batch-fail K       batch requests of 2 or more ids answer 503 until K did\n"
    "Helpers:\n"
    "  --dump-movies-csv    print id,title,year rows (--rows R, default N)\n"
    "  --expect items|movies  read ids / that CSV on stdin, print ID OUTCOME\n"
    "  --self-test          run the HTTP parser self-test\n"
    "  --help, --version\n";

/* Parses argv into *o. Returns 0, or -1 with a message on stderr. */
static int mp_options_parse(mp_options *o, int argc, char **argv)
{
    char err[MP_ERR_LEN];

    memset(o, 0, sizeof(*o));
    o->listen = MP_DEFAULT_LISTEN;
    o->max_conns = MP_DEFAULT_MAX_CONNS;
    o->catalog = MP_DEFAULT_CATALOG;
    o->seed = MP_DEFAULT_SEED;
    o->client_id = "enrichfarm";
    o->client_secret = "mock-secret";
    mp_knobs_init(&o->knobs);

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "mockprov: unexpected argument '%s'\n", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nn = eq ? (size_t)(eq - name) : strlen(name);
        const char *val = eq ? eq + 1 : NULL;

#define MP_FLAG(lit) (nn == strlen(lit) && memcmp(name, lit, nn) == 0)
        if (MP_FLAG("help") || MP_FLAG("version") || MP_FLAG("self-test") ||
            MP_FLAG("dump-movies-csv")) {
            if (val != NULL) {
                fprintf(stderr, "mockprov: --%.*s takes no value\n", (int)nn,
                        name);
                return -1;
            }
            if (MP_FLAG("help"))
                o->mode = MP_MODE_HELP;
            else if (MP_FLAG("version"))
                o->mode = MP_MODE_VERSION;
            else if (MP_FLAG("self-test"))
                o->mode = MP_MODE_SELFTEST;
            else
                o->mode = MP_MODE_DUMP;
            continue;
        }
        if (MP_FLAG("log") && val == NULL) {
            o->knobs.log = 1;
            continue;
        }
        if (val == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mockprov: --%.*s needs a value\n", (int)nn,
                        name);
                return -1;
            }
            val = argv[++i];
        }
        size_t vn = strlen(val);
        uint64_t *num = NULL, max = UINT64_MAX;
        if (MP_FLAG("listen")) {
            o->listen = val;
        } else if (MP_FLAG("port-file")) {
            o->port_file = val;
        } else if (MP_FLAG("client-id") || MP_FLAG("client-secret")) {
            if (vn >= MP_OAUTH_TEXT) {
                fprintf(stderr, "mockprov: --%.*s is longer than %d bytes\n", (int)nn, name,
                        MP_OAUTH_TEXT - 1);
                return -1;
            }
            if (MP_FLAG("client-id"))
                o->client_id = val;
            else
                o->client_secret = val;
        } else if (MP_FLAG("expect")) {
            if (strcmp(val, "items") == 0)
                o->mode = MP_MODE_EXPECT_ITEMS;
            else if (strcmp(val, "movies") == 0)
                o->mode = MP_MODE_EXPECT_MOVIES;
            else {
                fprintf(stderr, "mockprov: --expect takes items or movies\n");
                return -1;
            }
        } else if (MP_FLAG("max-conns")) {
            num = &o->max_conns;
            max = 1000000;
        } else if (MP_FLAG("catalog")) {
            num = &o->catalog;
        } else if (MP_FLAG("seed")) {
            num = &o->seed;
        } else if (MP_FLAG("rows")) {
            num = &o->rows;
        } else if (mp_knobs_is_knob(name, nn)) {
            if (mp_knobs_set(&o->knobs, name, nn, val, vn, err) != 0) {
                fprintf(stderr, "mockprov: %s\n", err);
                return -1;
            }
        } else {
            fprintf(stderr, "mockprov: unknown option '%s' (see --help)\n",
                    arg);
            return -1;
        }
        if (num != NULL && mp_parse_u64(val, vn, max, num) != 0) {
            fprintf(stderr, "mockprov: bad number for --%.*s: '%s'\n", (int)nn,
                    name, val);
            return -1;
        }
#undef MP_FLAG
    }
    return 0;
}

/* Writes the bound port to `path` atomically (temporary file, rename). */
static int mp_write_port_file(const char *path, int port)
{
    size_t n = strlen(path) + 32;
    char *tmp = mp_xmalloc(n);
    snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f != NULL) {
        int ok = fprintf(f, "%d\n", port) > 0;
        if (fclose(f) == 0 && ok && rename(tmp, path) == 0)
            rc = 0;
        else
            unlink(tmp);
    }
    free(tmp);
    return rc;
}

static int mp_serve(const mp_options *o)
{
    char err[MP_ERR_LEN] = "";
    uv_loop_t loop;
    mp_server s;
    int rc = 0;

    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&loop) != 0) {
        mp_log(MP_LOG_ERROR, "cannot create the event loop");
        return 1;
    }
    int init = mp_server_init(&s, &loop, o->catalog, o->seed, &o->knobs, err);
    snprintf(s.oauth.client_id, sizeof(s.oauth.client_id), "%s", o->client_id);
    snprintf(s.oauth.client_secret, sizeof(s.oauth.client_secret), "%s", o->client_secret);
    if (init != 0 ||
        mp_server_listen(&s, o->listen, o->max_conns, err) != 0) {
        mp_log(MP_LOG_ERROR, "%s", err);
        rc = 1;
        mp_server_stop(&s);
    } else if (o->port_file != NULL &&
               mp_write_port_file(o->port_file, s.port) != 0) {
        mp_log(MP_LOG_ERROR, "cannot write the port file %s", o->port_file);
        rc = 1;
        mp_server_stop(&s);
    } else {
        mp_log(MP_LOG_INFO,
               "listening on %s, port %d (catalog=%llu movies=%llu seed=%llu)",
               o->listen, s.port, (unsigned long long)s.cat.items,
               (unsigned long long)s.cat.movies, (unsigned long long)o->seed);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (rc == 0)
        mp_log(MP_LOG_INFO, "stopped after %llu requests",
               (unsigned long long)s.ref.requests);
    mp_server_close(&s);
    if (uv_loop_close(&loop) != 0) {
        mp_log(MP_LOG_ERROR, "event loop not clean at exit");
        rc = 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    mp_options o;
    mp_catalog cat;
    char err[MP_ERR_LEN] = "";
    int rc;

    if (mp_options_parse(&o, argc, argv) != 0)
        return 2;
    switch (o.mode) {
    case MP_MODE_HELP:
        fputs(mp_usage, stdout);
        return 0;
    case MP_MODE_VERSION:
        printf("mockprov %s\n", MP_VERSION);
        return 0;
    case MP_MODE_SELFTEST:
        rc = mp_http_selftest();
        printf("http parser self-test: %d failure(s)\n", rc);
        return rc == 0 ? 0 : 1;
    case MP_MODE_SERVE:
        return mp_serve(&o);
    default:
        break;
    }
    if (mp_catalog_init(&cat, o.catalog, o.seed, err) != 0) {
        fprintf(stderr, "mockprov: %s\n", err);
        mp_catalog_close(&cat);
        return 2;
    }
    if (o.mode == MP_MODE_DUMP)
        rc = mp_catalog_dump_csv(&cat, o.rows ? o.rows : o.catalog, stdout);
    else if (o.mode == MP_MODE_EXPECT_ITEMS)
        rc = mp_catalog_expect_items(&cat, stdin, stdout);
    else
        rc = mp_catalog_expect_movies(&cat, stdin, stdout);
    mp_catalog_close(&cat);
    if (rc != 0)
        fprintf(stderr, "mockprov: write error\n");
    return rc == 0 ? 0 : 1;
}
