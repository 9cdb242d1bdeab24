// SPDX-License-Identifier: MIT
/*
 * Checks lib/ef_redis.c (the event-loop Redis client) against a real
 * redis-server:
 *
 *   redis_async_check URL SCENARIO
 *
 * prints "ok SCENARIO: what" per check and "FAIL: SCENARIO: why" per failed
 * one, and exits 1 on any failure.  tests/integration/test_redis_async.sh
 * owns the server; for the scenarios that need a restart the helper prints
 * "restart-me" and the script kills redis-server and starts it again on the
 * same socket.  Scenarios read straight down: WAIT_FOR() turns the loop until
 * a condition holds or a bounded time passes.  Every scenario ends with all
 * handles closed and uv_loop_close() == 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ef_common.h"
#include "ef_log.h"
#include "ef_redis.h"
#include "ef_redis_url.h"
#include "ef_scripts_gen.h"

#define PIPELINE_N 10000
#define BIG_N 2000
#define BIG_LEN 4096 /* bytes per ECHO payload */
#define SCRIPT_N 50

typedef struct {
    uv_loop_t loop;
    uv_timer_t tick;
    ef_redis_url_t url;
    const char *scenario;
    int failures;
} check_t;

/* What one reply callback saw. */
typedef struct {
    check_t *c;
    int fired;
    int null;
    int type;
    long long integer;
    char str[4096]; /* string, status or error; array elements joined by ',' */
    size_t len;
    size_t elements;
    uint64_t at_ms;
} slot_t;

typedef struct {
    int v[32];
    int n;
    int subscribed; /* on_subscribed calls */
} states_t;

static int EF_PRINTF(3, 4) check(check_t *c, int ok, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ok) {
        printf("ok %s: %s\n", c->scenario, msg);
    } else {
        printf("FAIL: %s: %s\n", c->scenario, msg);
        c->failures++;
    }
    return ok;
}

/* ---- Driving the loop ---- */

static void on_tick(uv_timer_t *t) { (void)t; }

static uint64_t now_ms(check_t *c) {
    uv_update_time(&c->loop);
    return uv_now(&c->loop);
}

/* One loop turn, at most until `until`; 0 once that time has passed. */
static int turn(check_t *c, uint64_t until) {
    uint64_t now = now_ms(c);
    if (now >= until)
        return 0;
    uv_timer_start(&c->tick, on_tick, until - now, 0);
    uv_run(&c->loop, UV_RUN_ONCE);
    return 1;
}

#define WAIT_FOR(c, cond, ms)                                                                      \
    do {                                                                                           \
        uint64_t until_ = now_ms(c) + (ms);                                                        \
        while (!(cond) && turn((c), until_)) {                                                     \
        }                                                                                          \
    } while (0)

static void sleep_loop(check_t *c, int ms) { WAIT_FOR(c, 0, (uint64_t)ms); }

/* ---- Callbacks shared by the scenarios ---- */

static void on_state(ef_redis_t *r, int ready, void *arg) {
    states_t *s = arg;
    (void)r;
    if (s->n < (int)EF_ARRAY_LEN(s->v))
        s->v[s->n++] = ready;
}

static void on_subscribed(ef_redis_t *r, redisReply *reply, void *arg) {
    states_t *s = arg;
    (void)r;
    if (reply && reply->elements == 3 && reply->element[1]->str &&
        strcmp(reply->element[1]->str, "ef:test:ch") == 0)
        s->subscribed++;
}

static void on_slot(ef_redis_t *r, redisReply *reply, void *arg) {
    slot_t *s = arg;
    (void)r;
    s->fired++;
    s->at_ms = uv_now(&s->c->loop);
    if (!reply) {
        s->null = 1;
        return;
    }
    s->type = reply->type;
    s->integer = reply->integer;
    s->elements = reply->elements;
    s->len = 0;
    s->str[0] = '\0';
    if (reply->str) {
        s->len = reply->len < sizeof s->str ? reply->len : sizeof s->str - 1;
        memcpy(s->str, reply->str, s->len);
        s->str[s->len] = '\0';
    }
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        size_t used = strlen(s->str);
        if (e->type == REDIS_REPLY_INTEGER)
            snprintf(s->str + used, sizeof s->str - used, "%s%lld", i ? "," : "", e->integer);
        else if (e->str)
            snprintf(s->str + used, sizeof s->str - used, "%s%s", i ? "," : "", e->str);
    }
}

static void on_done(void *arg) { (*(int *)arg)++; }

static ef_redis_t *open_conn(check_t *c, const ef_redis_url_t *url, const ef_redis_opts_t *o) {
    ef_redis_t *r = NULL;
    int rc = ef_redis_create(&r, &c->loop, url ? url : &c->url, o);
    if (rc != 0) {
        check(c, 0, "ef_redis_create returned %d", rc);
        return NULL;
    }
    return r;
}

static void close_conn(check_t *c, ef_redis_t *r, const char *what) {
    int done = 0;
    ef_redis_close(r, on_done, &done);
    WAIT_FOR(c, done, 3000);
    check(c, done == 1, "%s: close fires done once", what);
}

static int wait_ready(check_t *c, ef_redis_t *r, int ms, const char *what) {
    WAIT_FOR(c, ef_redis_ready(r), (uint64_t)ms);
    return check(c, ef_redis_ready(r), "%s: READY", what);
}

/* Sends a command built from a printf-style format and waits for its answer. */
static int roundtrip(check_t *c, ef_redis_t *r, slot_t *s, const char *fmt, const char *arg) {
    memset(s, 0, sizeof *s);
    s->c = c;
    if (ef_redis_cmdf(r, on_slot, s, fmt, arg) != 0)
        return -1;
    WAIT_FOR(c, s->fired, 6000);
    return s->fired && !s->null ? 0 : -1;
}

static void print_states(const states_t *s, char *buf, size_t len) {
    buf[0] = '\0';
    for (int i = 0; i < s->n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%d", s->v[i]);
    }
}

static int states_are(const states_t *s, const char *want) {
    char got[40];
    print_states(s, got, sizeof got);
    return strcmp(got, want) == 0;
}

/* ---- basic: commands, error replies, arguments, heartbeat ---- */

static long info_calls(const char *info, const char *cmd) {
    char key[64];
    const char *p;
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    p = strstr(info, key);
    return p ? strtol(p + strlen(key), NULL, 10) : 0;
}

static void scenario_basic(check_t *c) {
    states_t st = {0};
    ef_redis_opts_t o = {
        .name = "cmd", .ping_interval_ms = 50, .on_state = on_state, .state_arg = &st};
    slot_t early = {.c = c}, s[6] = {{.c = c}, {.c = c}, {.c = c}, {.c = c}, {.c = c}, {.c = c}};
    slot_t info = {.c = c};
    const char *set[] = {"SET", "ef:test:k", "v\0x"};
    const size_t setl[] = {3, 9, 3};
    long before;
    ef_redis_t *r = open_conn(c, NULL, &o);
    if (!r)
        return;
    check(c, ef_redis_cmdf(r, on_slot, &early, "PING") == -1, "a command before READY returns -1");
    check(c, !ef_redis_ready(r) && st.n == 0, "not ready inside create, no on_state yet");
    if (!wait_ready(c, r, 5000, "connect") || !check(c, states_are(&st, "1"), "on_state(1) once")) {
        close_conn(c, r, "basic");
        return;
    }
    check(c, ef_redis_cmd(r, on_slot, &s[0], 0, 3, set, setl) == 0, "SET with binary value sent");
    check(c, ef_redis_cmdf(r, on_slot, &s[1], "GET %s", "ef:test:k") == 0, "GET sent");
    check(c, ef_redis_cmdf(r, on_slot, &s[2], "INCR %s", "ef:test:k") == 0, "INCR sent");
    check(c, ef_redis_cmdf(r, on_slot, &s[3], "NOSUCHCOMMAND x") == 0, "unknown command sent");
    check(c,
          ef_redis_cmd(r, on_slot, &s[4], EF_REDIS_NO_DEADLINE, 1, (const char *[]){"PING"},
                       NULL) == 0,
          "PING without deadline sent");
    check(c,
          ef_redis_cmd(r, NULL, NULL, 0, 3, (const char *[]){"SET", "ef:test:nocb", "1"}, NULL) ==
              0,
          "a command without callback is accepted");
    check(c, ef_redis_pending(r) == 6, "pending counts 6 commands (got %zu)", ef_redis_pending(r));
    check(c, s[0].fired == 0, "no callback from inside the call");
    WAIT_FOR(c, s[4].fired, 5000);
    check(c, s[0].type == REDIS_REPLY_STATUS && strcmp(s[0].str, "OK") == 0, "SET answered OK");
    check(c, s[1].type == REDIS_REPLY_STRING && s[1].len == 3 && memcmp(s[1].str, "v\0x", 3) == 0,
          "GET returns the 3 binary bytes");
    check(c, s[2].type == REDIS_REPLY_ERROR, "INCR on a string is an error reply (%s)", s[2].str);
    check(c, s[3].type == REDIS_REPLY_ERROR, "unknown command is an error reply (%s)", s[3].str);
    check(c, s[4].type == REDIS_REPLY_STATUS && strcmp(s[4].str, "PONG") == 0, "PING answered");
    WAIT_FOR(c, ef_redis_pending(r) == 0, 2000);
    check(c, ef_redis_pending(r) == 0, "nothing pending afterwards");
    check(c, ef_redis_cmd(r, on_slot, &s[5], 0, 0, set, NULL) == -1, "argc 0 is refused");
    check(c, ef_redis_cmd(r, on_slot, &s[5], -5, 1, set, NULL) == -1, "timeout -5 is refused");
    check(c, ef_redis_script(r, &ef_script_job_seal, on_slot, &s[5], 0, 2, 1, set, NULL) == -1,
          "nkeys > argc is refused");
    check(c, ef_redis_subscribe(r, NULL, on_slot, &s[5]) == -1,
          "subscribe without channel refused");

    /* the heartbeat: PINGs every 50 ms, round trip recorded */
    roundtrip(c, r, &info, "INFO %s", "commandstats");
    before = info_calls(info.str, "ping");
    sleep_loop(c, 400);
    roundtrip(c, r, &info, "INFO %s", "commandstats");
    check(c, info_calls(info.str, "ping") - before >= 4, "heartbeat PINGs sent (%ld in 400 ms)",
          info_calls(info.str, "ping") - before);
    check(c, ef_redis_last_rtt_us(r) >= 0, "PING round trip known (%ld us)",
          ef_redis_last_rtt_us(r));
    check(c, states_are(&st, "1"), "no state change while healthy");
    close_conn(c, r, "basic");
    check(c, early.fired == 0, "the refused command never called back");
    check(c, s[5].fired == 0, "refused calls never called back");
}

/* ---- pipeline: 10000 commands, callbacks in order, exactly once ---- */

typedef struct {
    int next; /* index expected next */
    int count;
    int bad;
    int *fired; /* per command */
    size_t want_len;
} order_t;

typedef struct {
    order_t *o;
    int i;
} item_t;

static void on_incr(ef_redis_t *r, redisReply *reply, void *arg) {
    item_t *it = arg;
    order_t *o = it->o;
    (void)r;
    o->fired[it->i]++;
    o->count++;
    if (!reply || reply->type != REDIS_REPLY_INTEGER || reply->integer != it->i + 1 ||
        it->i != o->next)
        o->bad++;
    o->next = it->i + 1;
}

static void on_echo(ef_redis_t *r, redisReply *reply, void *arg) {
    item_t *it = arg;
    order_t *o = it->o;
    (void)r;
    o->fired[it->i]++;
    o->count++;
    if (!reply || reply->type != REDIS_REPLY_STRING || reply->len != o->want_len ||
        reply->str[0] != (char)('a' + it->i % 26) || it->i != o->next)
        o->bad++;
    o->next = it->i + 1;
}

static int fired_once(const order_t *o, int n) {
    for (int i = 0; i < n; i++)
        if (o->fired[i] != 1)
            return 0;
    return 1;
}

static void scenario_pipeline(check_t *c) {
    ef_redis_opts_t o = {.name = "cmd", .ping_interval_ms = 20};
    item_t *items = ef_calloc(PIPELINE_N, sizeof *items);
    order_t ord = {.fired = ef_calloc(PIPELINE_N, sizeof(int))};
    char *big = ef_malloc(BIG_LEN);
    slot_t del = {.c = c};
    int sent = 0;
    uint64_t t0;
    ef_redis_t *r = open_conn(c, NULL, &o);
    if (!r || !wait_ready(c, r, 5000, "connect"))
        goto out;
    roundtrip(c, r, &del, "DEL %s", "ef:test:ctr");
    t0 = now_ms(c);
    for (int i = 0; i < PIPELINE_N; i++) {
        items[i] = (item_t){&ord, i};
        sent += ef_redis_cmd(r, on_incr, &items[i], 0, 2, (const char *[]){"INCR", "ef:test:ctr"},
                             NULL) == 0;
    }
    check(c, sent == PIPELINE_N, "%d INCR sent in one go", sent);
    check(c, ord.count == 0, "no callback from inside the calls");
    WAIT_FOR(c, ord.count == PIPELINE_N, 20000);
    check(c, ord.count == PIPELINE_N && ord.bad == 0,
          "%d callbacks, %d out of order or wrong, in %llu ms", ord.count, ord.bad,
          (unsigned long long)(now_ms(c) - t0));
    sleep_loop(c, 100);
    check(c, fired_once(&ord, PIPELINE_N), "every callback fired exactly once");
    check(c, ef_redis_pending(r) == 0, "nothing pending");

    /* large payloads: partial writes and reads */
    memset(&ord, 0, offsetof(order_t, fired));
    memset(ord.fired, 0, PIPELINE_N * sizeof(int));
    ord.want_len = BIG_LEN;
    sent = 0;
    for (int i = 0; i < BIG_N; i++) {
        size_t lens[2] = {4, BIG_LEN};
        memset(big, 'a' + i % 26, BIG_LEN);
        items[i] = (item_t){&ord, i};
        sent += ef_redis_cmd(r, on_echo, &items[i], 0, 2, (const char *[]){"ECHO", big}, lens) == 0;
    }
    WAIT_FOR(c, ord.count == BIG_N, 20000);
    check(c, sent == BIG_N && ord.count == BIG_N && ord.bad == 0 && fired_once(&ord, BIG_N),
          "%d ECHO of %d bytes answered in order exactly once (%d bad)", ord.count, BIG_LEN,
          ord.bad);
out:
    if (r)
        close_conn(c, r, "pipeline");
    free(items);
    free(ord.fired);
    free(big);
}

/* ---- script: SCRIPT LOAD at connect, NOSCRIPT fallback after FLUSH ---- */

typedef struct {
    int i;
    int fired;
    int ok;
    int order_ok;
    int *next;
} script_item_t;

static void on_script_item(ef_redis_t *r, redisReply *reply, void *arg) {
    script_item_t *it = arg;
    char want[64];
    (void)r;
    it->fired++;
    it->order_ok = *it->next == it->i;
    *it->next = it->i + 1;
    snprintf(want, sizeof want, "a%d", it->i);
    it->ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[1]->str && strcmp(reply->element[1]->str, want) == 0;
}

static void scenario_script(check_t *c) {
    static const char body[] = "return {KEYS[1], ARGV[1]}";
    static const char boom[] = "return redis.error_reply('boom')";
    ef_redis_opts_t o = {.name = "cmd", .load_scripts = 1};
    slot_t s = {.c = c}, call = {.c = c};
    script_item_t items[SCRIPT_N];
    char keys[SCRIPT_N][16], args[SCRIPT_N][16], sha[41], exists[4096] = "SCRIPT EXISTS";
    ef_script_t echo2,
        err_script = {"boom", "0000000000000000000000000000000000000000", boom, sizeof boom - 1};
    int n = 0, next = 0, good = 0;
    ef_redis_t *r = open_conn(c, NULL, &o);
    if (!r || !wait_ready(c, r, 5000, "connect with load_scripts"))
        goto out;

    /* every embedded script is in the cache with the SHA1 the build computed */
    for (const ef_script_t *const *e = ef_scripts_all; *e; e++, n++)
        snprintf(exists + strlen(exists), sizeof exists - strlen(exists), " %s", (*e)->sha);
    memset(&s, 0, sizeof s);
    s.c = c;
    ef_redis_cmdf(r, on_slot, &s, exists);
    WAIT_FOR(c, s.fired, 3000);
    check(c, s.type == REDIS_REPLY_ARRAY && (int)s.elements == n && !strstr(s.str, "0"),
          "all %d embedded scripts loaded before READY (%s)", n, s.str);

    roundtrip(c, r, &s, "SCRIPT LOAD %s", body);
    snprintf(sha, sizeof sha, "%.40s", s.str);
    echo2 = (ef_script_t){"echo2", sha, body, sizeof body - 1};
    ef_redis_script(r, &echo2, on_slot, &call, 0, 1, 2, (const char *[]){"k", "a"}, NULL);
    WAIT_FOR(c, call.fired, 3000);
    check(c, call.type == REDIS_REPLY_ARRAY && strcmp(call.str, "k,a") == 0, "EVALSHA works (%s)",
          call.str);

    roundtrip(c, r, &s, "SCRIPT %s", "FLUSH");
    roundtrip(c, r, &s, "SCRIPT EXISTS %s", sha);
    check(c, strcmp(s.str, "0") == 0, "script gone after SCRIPT FLUSH");
    for (int i = 0; i < SCRIPT_N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        snprintf(args[i], sizeof args[i], "a%d", i);
        items[i] = (script_item_t){.i = i, .next = &next};
        ef_redis_script(r, &echo2, on_script_item, &items[i], 0, 1, 2,
                        (const char *[]){keys[i], args[i]}, NULL);
    }
    WAIT_FOR(c, next == SCRIPT_N, 5000);
    for (int i = 0; i < SCRIPT_N; i++)
        good += items[i].fired == 1 && items[i].ok && items[i].order_ok;
    check(c, good == SCRIPT_N, "%d/%d script calls after FLUSH answered by EVAL, in order, once",
          good, SCRIPT_N);

    memset(&call, 0, sizeof call);
    call.c = c;
    ef_redis_script(r, &err_script, on_slot, &call, 0, 0, 0, NULL, NULL);
    WAIT_FOR(c, call.fired, 3000);
    check(c, call.fired == 1 && call.type == REDIS_REPLY_ERROR && strstr(call.str, "boom"),
          "a script's own error reaches the caller (%s)", call.str);
    check(c, ef_redis_pending(r) == 0, "nothing pending");
out:
    if (r)
        close_conn(c, r, "script");
}

/* ---- deadline: DEBUG SLEEP 2 with a 500 ms deadline ---- */

static void scenario_deadline(check_t *c) {
    states_t st = {0};
    ef_redis_opts_t o = {.name = "cmd",
                         .connect_timeout_ms = 5000,
                         .backoff_min_ms = 50,
                         .backoff_max_ms = 200,
                         .on_state = on_state,
                         .state_arg = &st};
    slot_t sleep = {.c = c}, behind = {.c = c}, after = {.c = c};
    uint64_t t0, took;
    ef_redis_t *r = open_conn(c, NULL, &o);
    if (!r || !wait_ready(c, r, 5000, "connect"))
        goto out;
    t0 = now_ms(c);
    ef_redis_cmd(r, on_slot, &sleep, 500, 3, (const char *[]){"DEBUG", "SLEEP", "2"}, NULL);
    ef_redis_cmdf(r, on_slot, &behind, "PING");
    WAIT_FOR(c, sleep.fired && behind.fired, 4000);
    took = sleep.at_ms - t0;
    if (!check(c, sleep.null, "DEBUG SLEEP 2 with a 500 ms deadline answered NULL%s%s",
               sleep.type == REDIS_REPLY_ERROR ? ": " : "", sleep.str))
        goto out;
    check(c, took >= 450 && took < 1500, "the deadline fired after %llu ms",
          (unsigned long long)took);
    check(c, behind.null, "the command queued behind it failed too");
    check(c, states_are(&st, "10"), "on_state(0) after the missed deadline");
    check(c, !ef_redis_ready(r) && ef_redis_cmdf(r, on_slot, &after, "PING") == -1,
          "commands refused while down");
    wait_ready(c, r, 8000, "back after the sleep");
    check(c, states_are(&st, "101"), "on_state 1,0,1");
    check(c, roundtrip(c, r, &after, "ECHO %s", "again") == 0 && strcmp(after.str, "again") == 0,
          "commands work again");
    check(c, sleep.fired == 1 && behind.fired == 1, "each failed callback fired exactly once");
out:
    if (r)
        close_conn(c, r, "deadline");
}

/* ---- reconnect: the script restarts redis-server ---- */

static void scenario_reconnect(check_t *c) {
    states_t st = {0};
    ef_redis_opts_t o = {.name = "cmd",
                         .ping_interval_ms = 100,
                         .backoff_min_ms = 50,
                         .backoff_max_ms = 400,
                         .on_state = on_state,
                         .state_arg = &st};
    slot_t blpop = {.c = c}, s = {.c = c}, refused = {.c = c};
    ef_redis_t *r = open_conn(c, NULL, &o);
    if (!r || !wait_ready(c, r, 5000, "connect"))
        goto out;
    ef_redis_cmd(r, on_slot, &blpop, EF_REDIS_NO_DEADLINE, 3,
                 (const char *[]){"BLPOP", "ef:test:nothing", "0"}, NULL);
    printf("restart-me\n");
    fflush(stdout);
    WAIT_FOR(c, blpop.fired && st.n >= 2, 15000);
    check(c, blpop.null, "the pending BLPOP failed with NULL");
    check(c, states_are(&st, "10"), "on_state(0) when redis went away");
    if (!ef_redis_ready(r))
        check(c, ef_redis_cmdf(r, on_slot, &refused, "PING") == -1, "commands refused while down");
    wait_ready(c, r, 15000, "after the restart");
    check(c, states_are(&st, "101"), "on_state 1,0,1");
    check(c, roundtrip(c, r, &s, "SET ef:test:k %s", "back") == 0 && s.type == REDIS_REPLY_STATUS,
          "SET works after the restart");
    check(c, roundtrip(c, r, &s, "GET %s", "ef:test:k") == 0 && strcmp(s.str, "back") == 0,
          "GET works after the restart");
    check(c, blpop.fired == 1 && refused.fired == 0, "exactly once; refused never called back");
out:
    if (r)
        close_conn(c, r, "reconnect");
}

/* ---- subscribe: messages, restart, NULL once at close ---- */

typedef struct {
    int n;
    int nulls;
    char last[64];
    ef_redis_t *close_on_bye; /* closes this from inside the callback on "bye" */
    int done;
} msgs_t;

static void on_msg(ef_redis_t *r, redisReply *reply, void *arg) {
    msgs_t *m = arg;
    (void)r;
    if (!reply) {
        m->nulls++;
        return;
    }
    m->n++;
    snprintf(m->last, sizeof m->last, "%s", reply->element[2]->str ? reply->element[2]->str : "");
    if (m->close_on_bye && strcmp(m->last, "bye") == 0)
        ef_redis_close(m->close_on_bye, on_done, &m->done);
}

/* Publishes until someone is subscribed, then waits for the message. */
static int publish(check_t *c, ef_redis_t *pub, msgs_t *m, const char *text) {
    slot_t s = {.c = c};
    int want = m->n + 1;
    uint64_t until = now_ms(c) + 8000;
    while (m->n < want && now_ms(c) < until) {
        memset(&s, 0, sizeof s);
        s.c = c;
        if (ef_redis_cmdf(pub, on_slot, &s, "PUBLISH ef:test:ch %s", text) == 0) {
            WAIT_FOR(c, s.fired, 2000);
            if (s.integer >= 1)
                WAIT_FOR(c, m->n >= want, 2000);
        }
        if (m->n < want)
            sleep_loop(c, 50);
    }
    return m->n == want && strcmp(m->last, text) == 0;
}

static void scenario_subscribe(check_t *c) {
    states_t sst = {0}, pst = {0};
    ef_redis_opts_t so = {.name = "sub",
                          .ping_interval_ms = 50,
                          .backoff_min_ms = 50,
                          .backoff_max_ms = 400,
                          .on_state = on_state,
                          .state_arg = &sst,
                          .on_subscribed = on_subscribed};
    ef_redis_opts_t po = so;
    msgs_t m = {0};
    slot_t s = {.c = c};
    ef_redis_t *sub, *pub;
    int got;
    po.name = "pub";
    po.state_arg = &pst;
    sub = open_conn(c, NULL, &so);
    pub = open_conn(c, NULL, &po);
    if (!sub || !pub || !wait_ready(c, sub, 5000, "subscriber") || !wait_ready(c, pub, 5000, "pub"))
        goto out;
    check(c, ef_redis_subscribe(sub, "ef:test:ch", on_msg, &m) == 0, "subscribe");
    check(c, ef_redis_subscribe(sub, "ef:test:ch", on_msg, &m) == -1, "same channel twice refused");
    check(c, ef_redis_cmdf(sub, on_slot, &s, "PING") == -1, "no commands in subscriber mode");
    got = publish(c, pub, &m, "hello 1");
    check(c, got, "message received (%d, '%s')", m.n, m.last);
    check(c, sst.subscribed == 1, "on_subscribed once the subscription took effect (%d)",
          sst.subscribed);
    sleep_loop(c, 300);
    check(c, states_are(&sst, "1"), "subscriber stays up without heartbeat");
    printf("restart-me\n");
    fflush(stdout);
    WAIT_FOR(c, sst.n >= 3 && pst.n >= 3, 15000);
    check(c, states_are(&sst, "101") && states_are(&pst, "101"), "both reconnected");
    got = publish(c, pub, &m, "hello 2");
    check(c, got, "message received after the restart (%d, '%s')", m.n, m.last);
    check(c, sst.subscribed == 2, "on_subscribed again after the reconnect (%d)", sst.subscribed);
    check(c, m.nulls == 0, "no NULL to the subscriber before close");
    check(c, s.fired == 0, "refused command never called back");
    m.close_on_bye = sub;
    publish(c, pub, &m, "bye");
    WAIT_FOR(c, m.done, 3000);
    sleep_loop(c, 50);
    check(c, m.done == 1 && m.n == 3, "closed from inside the message callback: done once");
    sub = NULL;
out:
    if (sub)
        close_conn(c, sub, "subscriber");
    check(c, m.nulls == 1, "subscription callback got NULL once at close");
    if (pub)
        close_conn(c, pub, "publisher");
}

/* ---- close from inside callbacks ---- */

typedef struct {
    check_t *c;
    ef_redis_t *r;
    int done;
    int fired[3];
    int nulls[3];
    int after_done;
    states_t st;
} cic_t;

static void on_cic_done(void *arg) { ((cic_t *)arg)->done++; }

static void cic_note(cic_t *x, int i, redisReply *reply) {
    x->fired[i]++;
    x->nulls[i] += reply == NULL;
    x->after_done += x->done;
}

static void on_cic_close(ef_redis_t *r, redisReply *reply, void *arg) {
    cic_t *x = arg;
    cic_note(x, 0, reply);
    ef_redis_close(r, on_cic_done, x);
    ef_redis_close(r, on_cic_done, x); /* twice is harmless */
}
static void on_cic_1(ef_redis_t *r, redisReply *reply, void *arg) {
    (void)r;
    cic_note(arg, 1, reply);
}
static void on_cic_2(ef_redis_t *r, redisReply *reply, void *arg) {
    (void)r;
    cic_note(arg, 2, reply);
}

static void on_state_close(ef_redis_t *r, int ready, void *arg) {
    cic_t *x = arg;
    on_state(r, ready, &x->st);
    ef_redis_close(r, on_cic_done, x);
}

static void on_state_close_down(ef_redis_t *r, int ready, void *arg) {
    cic_t *x = arg;
    on_state(r, ready, &x->st);
    if (!ready)
        ef_redis_close(r, on_cic_done, x);
}

static void cic_wait(check_t *c, cic_t *x, const char *what) {
    WAIT_FOR(c, x->done, 4000);
    sleep_loop(c, 50);
    check(c, x->done == 1, "%s: done fired once", what);
    check(c, x->after_done == 0, "%s: no callback after done", what);
}

static void scenario_close_in_cb(check_t *c) {
    ef_redis_opts_t o = {.name = "cmd"};
    cic_t a = {.c = c}, b = {.c = c}, d = {.c = c}, e = {.c = c};

    /* 1: inside a reply callback, with two commands behind it */
    if ((a.r = open_conn(c, NULL, &o)) && wait_ready(c, a.r, 5000, "reply")) {
        ef_redis_cmdf(a.r, on_cic_close, &a, "PING");
        ef_redis_cmdf(a.r, on_cic_1, &a, "PING");
        ef_redis_cmd(a.r, on_cic_2, &a, EF_REDIS_NO_DEADLINE, 3,
                     (const char *[]){"BLPOP", "ef:test:nothing", "0"}, NULL);
        cic_wait(c, &a, "close in reply callback");
        check(c,
              a.fired[0] == 1 && a.fired[1] == 1 && a.fired[2] == 1 && a.nulls[0] == 0 &&
                  a.nulls[1] == 1 && a.nulls[2] == 1,
              "the first answered, the others NULL once each");
    }

    /* 2: inside on_state(1) */
    o.on_state = on_state_close;
    o.state_arg = &b;
    if ((b.r = open_conn(c, NULL, &o))) {
        cic_wait(c, &b, "close in on_state(1)");
        check(c, states_are(&b.st, "1"), "on_state fired once");
    }

    /* 3: inside the NULL callback of a missed deadline */
    o.on_state = on_state;
    o.state_arg = &d.st;
    if ((d.r = open_conn(c, NULL, &o)) && wait_ready(c, d.r, 5000, "deadline")) {
        ef_redis_cmd(d.r, on_cic_close, &d, 200, 3, (const char *[]){"DEBUG", "SLEEP", "0.6"},
                     NULL);
        ef_redis_cmdf(d.r, on_cic_1, &d, "PING");
        cic_wait(c, &d, "close in a NULL callback");
        check(c, d.nulls[0] == 1 && d.nulls[1] == 1 && d.fired[0] == 1 && d.fired[1] == 1,
              "both NULL once");
        check(c, states_are(&d.st, "1"), "no on_state after close");
        sleep_loop(c, 700);
    }

    /* 4: inside on_state(0), after the pending command got its NULL */
    o.on_state = on_state_close_down;
    o.state_arg = &e;
    if ((e.r = open_conn(c, NULL, &o)) && wait_ready(c, e.r, 5000, "on_state(0)")) {
        ef_redis_cmd(e.r, on_cic_1, &e, 200, 3, (const char *[]){"DEBUG", "SLEEP", "0.6"}, NULL);
        cic_wait(c, &e, "close in on_state(0)");
        check(c, e.fired[1] == 1 && e.nulls[1] == 1, "the pending command got NULL once");
        check(c, states_are(&e.st, "10"), "on_state 1,0");
        sleep_loop(c, 700);
    }
}

/* ---- close while connecting or backing off ---- */

static int listener(int *port) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static void scenario_close_connecting(check_t *c) {
    states_t st = {0};
    ef_redis_opts_t o = {.name = "cmd",
                         .connect_timeout_ms = 150,
                         .backoff_min_ms = 30,
                         .backoff_max_ms = 60,
                         .on_state = on_state,
                         .state_arg = &st};
    ef_redis_url_t u;
    slot_t s = {.c = c};
    ef_redis_t *r;
    int fd, port = 0;

    if ((r = open_conn(c, NULL, &o)))
        close_conn(c, r, "right after create");

    u = c->url;
    snprintf(u.path, sizeof u.path, "/nonexistent/ef-redis.sock");
    u.host[0] = '\0';
    if ((r = open_conn(c, &u, &o))) {
        sleep_loop(c, 300);
        check(c, !ef_redis_ready(r) && ef_redis_cmdf(r, on_slot, &s, "PING") == -1,
              "missing socket: not ready, commands refused");
        close_conn(c, r, "missing socket, backing off");
    }

    fd = listener(&port);
    if (check(c, fd >= 0, "a listener that never answers")) {
        memset(&u, 0, sizeof u);
        snprintf(u.host, sizeof u.host, "127.0.0.1");
        u.port = port;
        if ((r = open_conn(c, &u, &o))) {
            sleep_loop(c, 700);
            check(c, !ef_redis_ready(r), "silent server: never ready (connect timeouts)");
            close_conn(c, r, "silent server");
        }
        if ((r = open_conn(c, &u, &o)))
            close_conn(c, r, "silent server, right after create");
        close(fd);
    }

    memset(&u, 0, sizeof u);
    snprintf(u.host, sizeof u.host, "10.255.255.1");
    u.port = 6379;
    o.connect_timeout_ms = 5000;
    if ((r = open_conn(c, &u, &o))) {
        sleep_loop(c, 100);
        close_conn(c, r, "remote address, still connecting");
    }
    check(c, st.n == 0, "on_state never fired");
    check(c, s.fired == 0, "refused command never called back");
}

/* ---- heartbeat: a PING that is not answered drops the connection ---- */

static void scenario_heartbeat(check_t *c) {
    states_t st = {0}, ast = {0};
    ef_redis_opts_t o = {.name = "cmd",
                         .command_timeout_ms = 300,
                         .ping_interval_ms = 50,
                         .backoff_min_ms = 50,
                         .backoff_max_ms = 200,
                         .connect_timeout_ms = 3000,
                         .on_state = on_state,
                         .state_arg = &st};
    ef_redis_opts_t ao = {.name = "admin", .on_state = on_state, .state_arg = &ast};
    slot_t s = {.c = c}, block = {.c = c}, forever = {.c = c};
    uint64_t t0;
    ef_redis_t *r = open_conn(c, NULL, &o), *admin = open_conn(c, NULL, &ao);
    if (!r || !admin || !wait_ready(c, r, 5000, "cmd") || !wait_ready(c, admin, 5000, "admin"))
        goto out;
    /* blocking commands longer than the command timeout do not trip the heartbeat */
    ef_redis_cmd(r, on_slot, &block, 1500, 3, (const char *[]){"BLPOP", "ef:test:nothing", "1"},
                 NULL);
    WAIT_FOR(c, block.fired, 3000);
    ef_redis_cmd(r, on_slot, &forever, EF_REDIS_NO_DEADLINE, 3,
                 (const char *[]){"BLPOP", "ef:test:nothing", "1"}, NULL);
    WAIT_FOR(c, forever.fired, 3000);
    check(c,
          block.type == REDIS_REPLY_NIL && forever.type == REDIS_REPLY_NIL && !block.null &&
              !forever.null,
          "BLPOP 1 with a 1500 ms deadline, then without one: nil (PING 50 ms, timeout 300 ms)");
    check(c, states_are(&st, "1"), "the connection stayed up meanwhile");
    t0 = now_ms(c);
    if (!check(c,
               roundtrip(c, admin, &s, "CLIENT PAUSE %s ALL", "1200") == 0 &&
                   s.type == REDIS_REPLY_STATUS,
               "CLIENT PAUSE 1200 ALL (%s)", s.str))
        goto out;
    WAIT_FOR(c, st.n >= 2, 3000);
    check(c, states_are(&st, "10"), "the unanswered PING dropped the connection");
    check(c, now_ms(c) - t0 < 1200, "noticed after %llu ms, before the pause ended",
          (unsigned long long)(now_ms(c) - t0));
    wait_ready(c, r, 6000, "after the pause");
    check(c, states_are(&st, "101"), "on_state 1,0,1");
    check(c, states_are(&ast, "1"), "the admin connection (5 s deadline) stayed up");
out:
    if (r)
        close_conn(c, r, "cmd");
    if (admin)
        close_conn(c, admin, "admin");
}

/* ---- auth_select: AUTH with and without user, SELECT, wrong password ---- */

static void scenario_auth_select(check_t *c) {
    states_t st = {0};
    ef_redis_opts_t o = {.name = "cmd"};
    ef_redis_opts_t bad = {.name = "bad",
                           .connect_timeout_ms = 1000,
                           .backoff_min_ms = 50,
                           .backoff_max_ms = 100,
                           .on_state = on_state,
                           .state_arg = &st};
    ef_redis_url_t u = c->url;
    slot_t s = {.c = c};
    ef_redis_t *admin = open_conn(c, NULL, &o), *r;
    if (!admin || !wait_ready(c, admin, 5000, "admin"))
        goto out;
    if (!check(c, roundtrip(c, admin, &s, "CONFIG SET requirepass %s", "ef-secret") == 0,
               "requirepass set"))
        goto out;
    snprintf(u.password, sizeof u.password, "ef-secret");
    u.db = 3;
    if ((r = open_conn(c, &u, &o))) {
        if (wait_ready(c, r, 5000, "AUTH password, SELECT 3"))
            check(c, roundtrip(c, r, &s, "CLIENT %s", "INFO") == 0 && strstr(s.str, " db=3 "),
                  "connection is on db 3");
        close_conn(c, r, "auth");
    }
    snprintf(u.user, sizeof u.user, "default");
    if ((r = open_conn(c, &u, &o))) {
        wait_ready(c, r, 5000, "AUTH default password");
        close_conn(c, r, "auth user");
    }
    snprintf(u.password, sizeof u.password, "wrong-secret");
    if ((r = open_conn(c, &u, &bad))) {
        sleep_loop(c, 600);
        check(c, !ef_redis_ready(r), "wrong password: never ready");
        check(c, st.n >= 1 && st.v[0] == -1,
              "wrong password: on_state(-1) tells the owner it was refused");
        close_conn(c, r, "wrong password");
    }
    roundtrip(c, admin, &s, "CONFIG SET requirepass %s", "");
out:
    if (admin)
        close_conn(c, admin, "admin");
}

/* ---- main ---- */

/* ---- failover_reply: READONLY and friends drop the connection ---- */

/* Each failover reply (made with a script's error_reply, as a demoted
 * master or a loading node would answer) reaches the caller as NULL, fails
 * what is queued behind it, and the connection comes back by itself; an
 * ordinary error reply is delivered as it is and keeps the connection. */
static void scenario_failover_reply(check_t *c) {
    static const char *const errs[] = {
        "READONLY You can't write against a read only replica.",
        "UNBLOCKED force unblocking this client: the node became a replica",
        "LOADING Redis is loading the dataset in memory",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    };
    static const char script[] = "return redis.error_reply(ARGV[1])";
    states_t st = {0};
    ef_redis_opts_t o = {.name = "cmd",
                         .backoff_min_ms = 50,
                         .backoff_max_ms = 200,
                         .on_state = on_state,
                         .state_arg = &st};
    slot_t e = {.c = c}, behind = {.c = c}, plain = {.c = c};
    ef_redis_t *r = open_conn(c, NULL, &o);
    if (!r || !wait_ready(c, r, 5000, "connect"))
        goto out;
    for (size_t i = 0; i < EF_ARRAY_LEN(errs); i++) {
        memset(&e, 0, sizeof e), e.c = c;
        memset(&behind, 0, sizeof behind), behind.c = c;
        st.n = 0;
        ef_redis_cmd(r, on_slot, &e, 0, 4, (const char *[]){"EVAL", script, "0", errs[i]}, NULL);
        ef_redis_cmdf(r, on_slot, &behind, "PING");
        WAIT_FOR(c, e.fired && behind.fired, 3000);
        check(c, e.fired == 1 && e.null, "%.10s...: the caller sees NULL (a lost connection)",
              errs[i]);
        check(c, behind.fired == 1 && behind.null, "%.10s...: the command behind it fails too",
              errs[i]);
        wait_ready(c, r, 3000, "reconnected");
        check(c, states_are(&st, "01"), "%.10s...: on_state 0 then 1", errs[i]);
    }
    st.n = 0;
    ef_redis_cmd(r, on_slot, &plain, 0, 4, (const char *[]){"EVAL", script, "0", "ERR ordinary"},
                 NULL);
    WAIT_FOR(c, plain.fired, 3000);
    check(c, plain.fired == 1 && plain.type == REDIS_REPLY_ERROR && strstr(plain.str, "ordinary"),
          "an ordinary error is delivered: %s", plain.str);
    check(c, ef_redis_ready(r) && st.n == 0, "an ordinary error keeps the connection");
out:
    if (r)
        close_conn(c, r, "failover_reply");
}

static void print_handle(uv_handle_t *h, void *arg) {
    (void)arg;
    printf("   open handle: %s\n", uv_handle_type_name(h->type));
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(check_t *c);
    } scenarios[] = {
        {"basic", scenario_basic},
        {"pipeline", scenario_pipeline},
        {"script", scenario_script},
        {"deadline", scenario_deadline},
        {"reconnect", scenario_reconnect},
        {"subscribe", scenario_subscribe},
        {"close_in_cb", scenario_close_in_cb},
        {"close_connecting", scenario_close_connecting},
        {"heartbeat", scenario_heartbeat},
        {"auth_select", scenario_auth_select},
        {"failover_reply", scenario_failover_reply},
    };
    check_t c = {0};
    char err[EF_ERR_LEN];
    ef_log_level_t level = EF_LOG_INFO;
    size_t i;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: %s URL SCENARIO\n", argv[0]);
        return 2;
    }
    if (getenv("EF_LOG_LEVEL"))
        ef_log_level_parse(getenv("EF_LOG_LEVEL"), &level);
    ef_log_init("redis_async_check", level, EF_LOG_TEXT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    c.scenario = argv[2];
    if (ef_redis_url_parse(argv[1], &c.url, err) != 0) {
        printf("FAIL: %s: bad URL: %s\n", c.scenario, err);
        return 1;
    }
    for (i = 0; i < EF_ARRAY_LEN(scenarios); i++)
        if (strcmp(scenarios[i].name, argv[2]) == 0)
            break;
    if (i == EF_ARRAY_LEN(scenarios)) {
        printf("FAIL: unknown scenario %s\n", argv[2]);
        return 2;
    }
    uv_loop_init(&c.loop);
    uv_timer_init(&c.loop, &c.tick);
    scenarios[i].run(&c);
    uv_close((uv_handle_t *)&c.tick, NULL);
    for (int n = 0; n < 200 && uv_run(&c.loop, UV_RUN_NOWAIT); n++)
        usleep(10000);
    rc = uv_loop_close(&c.loop);
    if (!check(&c, rc == 0, "uv_loop_close() == 0 (%s)", rc ? uv_strerror(rc) : "all closed"))
        uv_walk(&c.loop, print_handle, NULL);
    return c.failures ? 1 : 0;
}
