// SPDX-License-Identifier: MIT
/*
 * Unit tests of the script call builders (lib/ef_calls): every embedded
 * script has one layout, the layout agrees with the KEYS/ARGV header of the
 * script itself, each builder lays out its call as the script expects with
 * counts taken from what it was given, and a call that does not match its
 * layout is never sent.  Also: the chunk size cap is the same number in C
 * and in job_create.lua.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_calls.h"
#include "ef_job.h"
#include "ef_redis_sync.h"
#include "ef_scripts_gen.h"

static size_t count_names(const char *const *n) {
    size_t i = 0;
    while (n[i])
        i++;
    return i;
}

/* The highest "[N]" in s[0..len) not preceded by "KEYS" (when skip_keys),
 * and whether some "[N..]" appears (its N in *rest_from). */
static long max_index(const char *s, size_t len, int skip_keys, long *rest_from) {
    long max = 0;
    *rest_from = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '[')
            continue;
        if (skip_keys && i >= 4 && strncmp(s + i - 4, "KEYS", 4) == 0)
            continue;
        char *end;
        long n = strtol(s + i + 1, &end, 10);
        if (end == s + i + 1)
            continue;
        if (strncmp(end, "..]", 3) == 0)
            *rest_from = n;
        else if (*end == ']' && n > max)
            max = n;
    }
    return max;
}

/* Reads the leading comment of a script: where KEYS[1], ARGV[1] and the
 * end of the layout ("Returns" or the first line that is not a comment)
 * are. */
static void header_layout(const ef_script_t *s, long *nkeys, long *keys_rest, long *nargs,
                          long *args_rest) {
    const char *b = s->body, *k = strstr(b, "\n-- KEYS[1]"), *a = strstr(b, "\n-- ARGV[1]");
    assert_non_null(k);
    assert_non_null(a);
    assert_true(k < a);
    const char *end = strstr(a, "Returns");
    const char *code = strstr(a, "\nlocal ");
    if (!end || (code && code < end))
        end = code;
    assert_non_null(end);
    *nkeys = max_index(k, (size_t)(a - k), 0, keys_rest);
    *nargs = max_index(a, (size_t)(end - a), 1, args_rest);
}

static void test_every_script_has_its_layout(void **st) {
    (void)st;
    size_t n = 0;
    for (size_t i = 0; ef_scripts_all[i]; i++, n++) {
        const ef_script_t *s = ef_scripts_all[i];
        const ef_call_layout_t *l = ef_call_layout_of(s);
        long nk, kr, na, ar;
        if (!l)
            fail_msg("script %s has no row in ef_call_layouts", s->name);
        header_layout(s, &nk, &kr, &na, &ar);
        if ((long)count_names(l->keys) != nk || (long)count_names(l->args) != na)
            fail_msg("script %s: its header has %ld keys and %ld arguments, the layout %zu and %zu",
                     s->name, nk, na, count_names(l->keys), count_names(l->args));
        if (kr && (!l->extra_keys || kr != nk + 1))
            fail_msg("script %s: its header takes more keys from KEYS[%ld]", s->name, kr);
        if (!kr && l->extra_keys)
            fail_msg("script %s: the layout has extra keys, its header none", s->name);
        if (ar && (l->group == 0 || ar != na + 1))
            fail_msg("script %s: its header takes more arguments from ARGV[%ld]", s->name, ar);
        if (l->group > 0 && !ar)
            fail_msg("script %s: the layout repeats arguments, its header does not", s->name);
    }
    assert_int_equal(n, ef_call_layouts_count);
}

static void expect_argv(const ef_call_t *c, int nkeys, const char *const *want, int n) {
    assert_false(c->bad);
    assert_int_equal(c->nkeys, nkeys);
    assert_int_equal(c->argc, n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(c->argv[i], want[i]);
        assert_int_equal(c->lens[i], strlen(want[i]));
    }
}

static void test_control_builders(void **st) {
    (void)st;
    ef_call_t c;
    const char *cancel[] = {"farm:{q}:job:J1", "farm:{q}:job:J1:parked", "farm:{q}:enqueuing",
                            "farm:{q}:control", "J1", "farm:{q}:events"};
    expect_argv(ef_call_job_control(&c, "cancel", "q", "J1"), 4, cancel, 6);
    assert_ptr_equal(c.script, &ef_script_job_cancel);
    ef_call_free(&c);
    const char *pause[] = {"farm:{q}:job:J1", "farm:{q}:control", "J1", "farm:{q}:events"};
    expect_argv(ef_call_job_control(&c, "pause", "q", "J1"), 2, pause, 4);
    ef_call_free(&c);
    const char *resume[] = {"farm:{q}:job:J1", "farm:{q}:job:J1:parked", "farm:{q}:pending",
                            "farm:{q}:control", "J1", "farm:{q}:events"};
    expect_argv(ef_call_job_control(&c, "resume", "q", "J1"), 4, resume, 6);
    ef_call_free(&c);
    ef_call_job_control(&c, "explode", "q", "J1");
    assert_true(c.bad);
    ef_call_free(&c);
    const char *qp[] = {"farm:{q}:paused", "farm:{q}:control", "1", "farm:{q}:events"};
    expect_argv(ef_call_queue_pause(&c, "q", 1), 2, qp, 4);
    ef_call_free(&c);
}

static void test_job_builders(void **st) {
    (void)st;
    ef_call_t c;
    const char *extra[] = {"source", "stdin", "retry_of", "J0"};
    ef_call_job_create_t a = {.queue = "q",
                              .id = "J1",
                              .provider = "items",
                              .chunk_size = 50,
                              .high_priority = 1,
                              .extra = extra,
                              .nextra = 2};
    const char *create[] = {"farm:{q}:job:J1",
                            "farm:{q}:jobs",
                            "farm:{q}:enqueuing",
                            "farm:{q}:notify",
                            "farm:{q}:settings",
                            "farm:queues",
                            "farm:providers",
                            "J1",
                            "q",
                            "items",
                            "entity",
                            "50",
                            "0",
                            "high",
                            "30000",
                            "source",
                            "stdin",
                            "retry_of",
                            "J0"};
    expect_argv(ef_call_job_create(&c, &a), 7, create, 19);
    ef_call_free(&c);
    /* the same fields by name, as the enqueuer and statusd give them, in
     * the order source, retry_of, notify_url, then extra; unset ones left out */
    const char *more[] = {"x-team", "a"};
    a.source = "stdin";
    a.retry_of = "J0";
    a.notify_url = "";
    a.extra = more;
    a.nextra = 1;
    ef_call_job_create(&c, &a);
    assert_false(c.bad);
    assert_int_equal(c.argc, 21);
    for (int i = 0; i < 19; i++)
        assert_string_equal(c.argv[i], create[i]);
    assert_string_equal(c.argv[19], "x-team");
    assert_string_equal(c.argv[20], "a");
    ef_call_free(&c);
    a.retry_of = NULL;
    a.notify_url = "https://hooks.example/done";
    a.nextra = 0;
    ef_call_job_create(&c, &a);
    assert_int_equal(c.argc, 19);
    assert_string_equal(c.argv[15], "source");
    assert_string_equal(c.argv[17], "notify_url");
    assert_string_equal(c.argv[18], "https://hooks.example/done");
    ef_call_free(&c);

    /* the counts come from the array: n chunks, 2 arguments each */
    ef_call_chunk_t chunks[3] = {{2, "{\"id\":\"1\"}\n{\"id\":\"2\"}", 21},
                                 {1, "{\"id\":\"3\"}", 10},
                                 {1, "{\"id\":\"4\"}xx", 10}};
    const char *append[] = {"farm:{q}:job:J1",
                            "farm:{q}:job:J1:chunks",
                            "farm:{q}:enqueuing",
                            "J1",
                            "30000",
                            "7",
                            "2",
                            "{\"id\":\"1\"}\n{\"id\":\"2\"}",
                            "1",
                            "{\"id\":\"3\"}",
                            "1",
                            "{\"id\":\"4\"}"};
    ef_call_job_append(&c, "q", "J1", 0, 7, chunks, 3);
    assert_int_equal(c.argc, 12);
    for (int i = 0; i < 11; i++)
        assert_string_equal(c.argv[i], append[i]);
    assert_int_equal(c.lens[11], 10); /* the given length, not strlen */
    ef_call_free(&c);
    ef_call_job_append(&c, "q", "J1", 0, 0, NULL, 0); /* a heartbeat */
    assert_false(c.bad);
    assert_int_equal(c.argc, 6);
    ef_call_free(&c);

    const char *seal[] = {"farm:{q}:job:J1",
                          "farm:{q}:pending",
                          "farm:{q}:enqueuing",
                          "J1",
                          "120",
                          "3",
                          "farm:{q}:events",
                          "2"};
    expect_argv(ef_call_job_seal(&c, "q", "J1", 120, 3, 2), 3, seal, 8);
    ef_call_free(&c);
    const char *discard[] = {"farm:{q}:job:J1", "farm:{q}:job:J1:chunks", "farm:{q}:jobs",
                             "farm:{q}:enqueuing", "J1"};
    expect_argv(ef_call_job_discard(&c, "q", "J1"), 4, discard, 5);
    ef_call_free(&c);
    const char *abandon[] = {"farm:{q}:job:J1", "farm:{q}:job:J1:chunks", "farm:{q}:enqueuing",
                             "J1", "farm:{q}:events"};
    expect_argv(ef_call_job_abandon(&c, "q", "J1"), 3, abandon, 5);
    ef_call_free(&c);
}

static void test_worker_builders(void **st) {
    (void)st;
    ef_call_t c;
    ef_call_chunk_claim_t cl = {.queue = "q",
                                .job_id = "J1",
                                .ref = "J1:4",
                                .worker_id = "w1",
                                .n = 4,
                                .lease_ms = 30000,
                                .max_attempts = 5,
                                .error_log_cap = 1000};
    ef_call_chunk_claim(&c, &cl);
    assert_false(c.bad);
    assert_int_equal(c.nkeys, 13);
    assert_int_equal(c.argc, 21);
    assert_string_equal(c.argv[7], "farm:{q}:job:J1:parked");
    assert_string_equal(c.argv[13], "J1:4");
    assert_string_equal(c.argv[19], "farm:{q}:events");
    ef_call_free(&c);

    const char *release[] = {"farm:{q}:leases",
                             "farm:{q}:owners",
                             "farm:{q}:processing",
                             "farm:{q}:pending",
                             "farm:{q}:job:J1:attempts",
                             "farm:{q}:job:J1:parked",
                             "farm:{q}:job:J1",
                             "J1:4",
                             "w1",
                             "4",
                             "drop"};
    expect_argv(ef_call_chunk_release(&c, "q", "J1", 4, "J1:4", "w1", "drop"), 7, release, 11);
    ef_call_free(&c);

    const char *refs[] = {"J1:1", "J1:2"};
    const char *extend[] = {"farm:{q}:leases", "farm:{q}:owners", "30000", "w1", "J1:1", "J1:2"};
    expect_argv(ef_call_lease_extend(&c, "q", "w1", 30000, refs, 2), 2, extend, 6);
    ef_call_free(&c);
    ef_call_chunk_reap(&c, "q", 100, 30000, 200);
    assert_false(c.bad);
    assert_int_equal(c.argc, 7);
    ef_call_free(&c);
    const char *beat[] = {"farm:workers", "w1", "30000"};
    expect_argv(ef_call_worker_beat(&c, "w1", 30000), 1, beat, 3);
    ef_call_free(&c);

    const char *take[] = {
        "farm:ratelimit:{p}", "farm:ratelimit:{p}:waiters", "3", "w1", "10", "1.5", "20", "7"};
    expect_argv(ef_call_ratelimit_take(&c, "p", 3, "w1", 10, 1.5, 20, 7), 2, take, 8);
    ef_call_free(&c);
    const char *pen[] = {"farm:ratelimit:{p}", "2000", "0", "300000", "1"};
    ef_call_penalty_t pa = {.pause_ms = 2000, .cap_ms = 300000, .cut = 1};
    expect_argv(ef_call_ratelimit_penalty(&c, "p", &pa), 1, pen, 5);
    ef_call_free(&c);

    /* chunk_ack: one key per entity with pairs, 7 + 2m arguments per entity */
    const char *pairs[] = {"title", "T", "year", "1999"};
    ef_call_ack_entity_t e[2] = {
        {.index = 0,
         .outcome = EF_OUTCOME_UPDATED,
         .result_key = "farm:{q}:movie:1",
         .pairs = pairs,
         .npairs = 2,
         .fields_json = "{\"title\":\"T\",\"year\":1999}",
         .entity_id = "1"},
        {.index = 1, .outcome = EF_OUTCOME_ERROR, .error = "HTTP 500", .entity_id = "2"}};
    ef_call_chunk_ack_t a = {
        .queue = "q", .job_id = "J1", .ref = "J1:0", .n = 0, .error_log_cap = 1000, .keep = 1};
    ef_call_chunk_ack(&c, &a, e, 2);
    assert_false(c.bad);
    assert_int_equal(c.nkeys, 10);
    assert_string_equal(c.argv[8], "farm:{q}:job:J1:dryrun");
    assert_string_equal(c.argv[9], "farm:{q}:movie:1");
    assert_int_equal(c.argc, 10 + 7 + (7 + 4) + 7);
    assert_string_equal(c.argv[10 + 4], "keep");
    assert_string_equal(c.argv[10 + 6], "2");
    assert_string_equal(c.argv[10 + 7 + 1], "u");
    assert_string_equal(c.argv[10 + 7 + 2], "2");
    assert_string_equal(c.argv[10 + 7 + 11 + 1], "e");
    assert_string_equal(c.argv[10 + 7 + 11 + 4], "HTTP 500");
    ef_call_free(&c);
}

/* chunk_ack with its fixed keys given once (as the worker keeps them on
 * its chunk) lays out the same call as with keys built by the builder,
 * borrowing them; a key not given, or keys of another script, make a bad
 * call. */
static void test_chunk_ack_keys_given(void **st) {
    (void)st;
    for (size_t i = 0; i < ef_call_layouts_count; i++)
        assert_true(count_names(ef_call_layouts[i].keys) <= EF_CALL_KEYS_MAX);

    const char *names[] = {"dryrun", "job",    "outcomes",   "results", "errors",
                           "leases", "owners", "processing", "stats"};
    const char *values[] = {
        "farm:{q}:job:J1:dryrun",  "farm:{q}:job:J1",        "farm:{q}:job:J1:outcomes",
        "farm:{q}:job:J1:results", "farm:{q}:job:J1:errors", "farm:{q}:leases",
        "farm:{q}:owners",         "farm:{q}:processing",    "farm:{q}:stats"};
    ef_call_keys_t ks;
    ef_call_keys_init(&ks, &ef_script_chunk_ack);
    for (size_t i = 0; i < EF_ARRAY_LEN(names); i++)
        assert_int_equal(ef_call_keys_set(&ks, names[i], values[i]), 0);
    assert_int_equal(ef_call_keys_set(&ks, "pending", "x"), -1);

    const char *pairs[] = {"title", "T"};
    ef_call_ack_entity_t e[2] = {{.index = 0,
                                  .outcome = EF_OUTCOME_UPDATED,
                                  .result_key = "farm:{q}:movie:1",
                                  .pairs = pairs,
                                  .npairs = 1,
                                  .entity_id = "1"},
                                 {.index = 3, .outcome = EF_OUTCOME_NOT_FOUND, .entity_id = "4"}};
    ef_call_chunk_ack_t a = {
        .queue = "q", .job_id = "J1", .ref = "J1:0", .n = 0, .error_log_cap = 1000, .keep = 0};
    ef_call_t built, given;
    ef_call_chunk_ack(&built, &a, e, 2);
    const char *events = "farm:{q}:events";
    a.keys = &ks;
    a.events = events;
    ef_call_chunk_ack(&given, &a, e, 2);
    assert_false(built.bad);
    assert_false(given.bad);
    assert_int_equal(given.nkeys, built.nkeys);
    assert_int_equal(given.argc, built.argc);
    for (int i = 0; i < built.argc; i++) {
        assert_int_equal(given.lens[i], built.lens[i]);
        assert_memory_equal(given.argv[i], built.argv[i], built.lens[i]);
    }
    assert_ptr_equal(given.argv[0], values[1]); /* borrowed, not copied */
    assert_ptr_equal(given.argv[given.nkeys + 5], events);
    ef_call_free(&built);
    ef_call_free(&given);

    ks.key[3] = NULL;
    ef_call_chunk_ack(&given, &a, e, 2);
    assert_true(given.bad);
    assert_non_null(strstr(given.err, "'errors' was not given"));
    ef_call_free(&given);
    ef_call_keys_init(&ks, &ef_script_chunk_claim);
    ef_call_chunk_ack(&given, &a, e, 2);
    assert_true(given.bad);
    ef_call_free(&given);
}

static void test_a_call_off_its_layout_is_not_sent(void **st) {
    (void)st;
    ef_call_t c;
    char err[EF_ERR_LEN] = "";
    /* a missing argument */
    ef_call_init(&c, &ef_script_job_pause);
    ef_call_key(&c, "job", "farm:{q}:job:J1");
    ef_call_key(&c, "control", "farm:{q}:control");
    ef_call_arg(&c, "id", "J1");
    assert_int_equal(ef_call_finish(&c), -1);
    assert_true(c.bad);
    assert_non_null(strstr(c.err, "2 keys, 1 arguments where the layout has 2 keys, 2 arguments"));
    /* the sender refuses it without touching the connection */
    assert_null(ef_redis_sync_call(NULL, &c, err));
    assert_non_null(strstr(err, "job_pause"));
    assert_int_equal(ef_redis_sync_call_append(NULL, &c), -1);
    ef_call_free(&c);
    /* a key under another name, an argument out of order */
    ef_call_init(&c, &ef_script_job_cancel);
    ef_call_key(&c, "parked", "x");
    assert_true(c.bad);
    ef_call_free(&c);
    ef_call_init(&c, &ef_script_queue_pause);
    ef_call_key(&c, "paused", "farm:{q}:paused");
    ef_call_arg(&c, "events", "farm:{q}:events");
    assert_true(c.bad);
    ef_call_free(&c);
    /* an odd number of repeated arguments */
    ef_call_init(&c, &ef_script_job_append);
    ef_call_key(&c, "job", "a");
    ef_call_key(&c, "chunks", "b");
    ef_call_key(&c, "enqueuing", "c");
    ef_call_arg(&c, "id", "J1");
    ef_call_arg_ll(&c, "heartbeat_ttl_ms", 30000);
    ef_call_arg_ll(&c, "first", 0);
    ef_call_rest_ll(&c, 1);
    assert_int_equal(ef_call_finish(&c), -1);
    ef_call_free(&c);
    ef_call_free(NULL);
}

/* The chunk size cap: one number, in lib/ef_job.h and in job_create.lua. */
static void test_chunk_size_cap_agrees(void **st) {
    (void)st;
    const char *p = strstr(ef_script_job_create.body, "local CHUNK_SIZE_MAX = ");
    assert_non_null(p);
    long lua = strtol(p + strlen("local CHUNK_SIZE_MAX = "), NULL, 10);
    assert_int_equal(lua, EF_JOB_CHUNK_SIZE_MAX);
    /* and the script uses it for its check */
    assert_non_null(strstr(ef_script_job_create.body, "chunk_size > CHUNK_SIZE_MAX"));
}

/* The adaptive rate's curve (BETA, C) is written in both bucket scripts
 * (each runs alone under redis-cli --eval): the two must agree. */
static void curve_of(const ef_script_t *s, double *beta, double *c) {
    const char *p = strstr(s->body, "local BETA, C, ");
    assert_non_null(p);
    p = strstr(p, "= ");
    assert_non_null(p);
    char *end;
    *beta = strtod(p + 2, &end);
    assert_true(*end == ',');
    *c = strtod(end + 1, NULL);
}

static void test_rate_curve_agrees(void **st) {
    (void)st;
    double b1, c1, b2, c2;
    curve_of(&ef_script_ratelimit_take, &b1, &c1);
    curve_of(&ef_script_ratelimit_penalty, &b2, &c2);
    assert_true(b1 > 0 && b1 < 1 && c1 > 0);
    assert_true(b1 == b2 && c1 == c2);
}

/* The EVAL both clients resend on NOSCRIPT: same keys and arguments (any
 * bytes), the body in place of the SHA; anything but an EVALSHA of that
 * script is refused. */
static void test_eval_of_evalsha(void **st) {
    (void)st;
    const ef_script_t *s = &ef_script_job_seal;
    const char *argv[] = {"EVALSHA", s->sha, "2", "farm:{q}:a", "farm:{q}:b", "x\r\ny", ""};
    const char *eargv[] = {"EVAL", s->body, "2", "farm:{q}:a", "farm:{q}:b", "x\r\ny", ""};
    size_t lens[7], elens[7];
    for (int i = 0; i < 7; i++) {
        lens[i] = strlen(argv[i]);
        elens[i] = strlen(eargv[i]);
    }
    elens[1] = s->len;
    char *cmd, *want, *got;
    int len = redisFormatCommandArgv(&cmd, 7, argv, lens);
    int wlen = redisFormatCommandArgv(&want, 7, eargv, elens);
    size_t glen = 0;
    assert_true(len > 0 && wlen > 0);
    got = ef_script_eval_of(s, cmd, (size_t)len, &glen);
    assert_non_null(got);
    assert_int_equal(glen, (size_t)wlen);
    assert_memory_equal(got, want, glen);
    free(got);
    /* another script's SHA, a cut command, not an EVALSHA */
    assert_null(ef_script_eval_of(&ef_script_job_create, cmd, (size_t)len, &glen));
    assert_null(ef_script_eval_of(s, cmd, 20, &glen));
    assert_null(ef_script_eval_of(s, want, (size_t)wlen, &glen));
    assert_null(ef_script_eval_of(s, "PING", 4, &glen));
    redisFreeCommand(cmd);
    redisFreeCommand(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_script_has_its_layout),
        cmocka_unit_test(test_control_builders),
        cmocka_unit_test(test_job_builders),
        cmocka_unit_test(test_worker_builders),
        cmocka_unit_test(test_chunk_ack_keys_given),
        cmocka_unit_test(test_a_call_off_its_layout_is_not_sent),
        cmocka_unit_test(test_chunk_size_cap_agrees),
        cmocka_unit_test(test_rate_curve_agrees),
        cmocka_unit_test(test_eval_of_evalsha),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
