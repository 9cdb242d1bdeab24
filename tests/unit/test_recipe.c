// SPDX-License-Identifier: MIT
/*
 * Unit tests of the provider recipes (lib/ef_recipe.c): the two recipes of
 * the spec, every validation error with its field path, templates, JSON
 * Pointers, and the judge on every kind of answer, including every prefix
 * of a valid body ending at a guard page and hostile bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ef_common.h"
#include "ef_recipe.h"
#include "ef_text.h"

#define MINIMAL                                                                                    \
    "{\"providers\": {\"items\": {\n"                                                              \
    "   \"steps\": [{\"method\": \"GET\", \"url\": \"http://127.0.0.1:8088/item/{id}\"}],\n"       \
    "   \"extract\": {\"title\": \"/title\"},\n"                                                   \
    "   \"rate\": {\"requests\": 200, \"per_seconds\": 1, \"burst\": 10},\n"                       \
    "   \"timeout_ms\": 5000, \"retries\": 3}}}\n"

#define TMDB                                                                                       \
    "{\"providers\": {\"movies\": {\n"                                                             \
    "  \"steps\": [\n"                                                                             \
    "    {\"name\": \"search\", \"method\": \"GET\",\n"                                            \
    "     \"url\": \"http://127.0.0.1:8088/3/search/movie?query={title}&year={year?}\",\n"         \
    "     \"headers\": [\"Authorization: Bearer ${TMDB_TOKEN}\"],\n"                               \
    "     \"results\": \"/results\", \"match\": {\"title\": \"/title\"}, \"select\": "             \
    "\"unique\",\n"                                                                                \
    "     \"as\": {\"movie_id\": \"/id\"}},\n"                                                     \
    "    {\"name\": \"details\", \"method\": \"GET\", \"url\": "                                   \
    "\"http://127.0.0.1:8088/3/movie/{movie_id}\"}],\n"                                            \
    "  \"extract\": {\"runtime\": \"/runtime\", \"genres\": \"/genres/*/name\", \"director\": "    \
    "\"/credits/crew/0/name\"},\n"                                                                 \
    "  \"results\": {\"key\": \"movie:{id}\", \"policy\": \"keep\"},\n"                            \
    "  \"rate\": {\"requests\": 40, \"per_seconds\": 10, \"burst\": 40},\n"                        \
    "  \"timeout_ms\": 10000, \"retries\": 3, \"concurrency\": 16, \"cache_ttl_s\": 86400}}}\n"

static ef_recipes_t *parse_ok(const char *json) {
    ef_recipes_t *r = NULL;
    char err[EF_ERR_LEN] = "";
    int rc = ef_recipes_parse(json, strlen(json), "providers.json", &r, err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(r);
    return r;
}

static void test_minimal(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(MINIMAL);
    assert_int_equal(ef_recipes_count(r), 1);
    const ef_recipe_t *rc = ef_recipes_get(r, "items");
    assert_ptr_equal(rc, ef_recipes_at(r, 0));
    assert_null(ef_recipes_get(r, "nope"));
    assert_null(ef_recipes_at(r, 1));
    assert_string_equal(rc->name, "items");
    assert_int_equal(rc->nsteps, 1);
    assert_string_equal(rc->steps[0].name, "step1");
    assert_string_equal(rc->steps[0].method, "GET");
    assert_string_equal(rc->steps[0].url, "http://127.0.0.1:8088/item/{id}");
    assert_int_equal(rc->steps[0].nheaders, 0);
    assert_null(rc->steps[0].body);
    assert_null(rc->steps[0].results);
    assert_int_equal(rc->steps[0].not_found_status, 404);
    assert_int_equal(rc->nextract, 1);
    assert_string_equal(rc->extract[0].name, "title");
    assert_string_equal(rc->extract[0].pointer, "/title");
    assert_string_equal(rc->result_key, "result:{provider}:{id}");
    assert_int_equal(rc->policy, EF_POLICY_OVERWRITE);
    assert_int_equal(rc->rate_requests, 200);
    assert_true(rc->rate_per_seconds == 1.0);
    assert_int_equal(rc->rate_burst, 10);
    assert_int_equal(rc->timeout_ms, 5000);
    assert_int_equal(rc->retries, 3);
    assert_int_equal(rc->concurrency, 0);
    assert_int_equal(rc->cache_ttl_s, 0);
    assert_int_equal(rc->max_body, EF_RECIPE_MAX_BODY_DEFAULT);
    char *s = ef_recipe_summary(rc);
    assert_string_equal(s, "{\"name\":\"items\",\"steps\":[{\"name\":\"step1\",\"method\":\"GET\","
                           "\"url\":\"http://127.0.0.1:8088/item/{id}\"}],\"rate\":{\"requests\":"
                           "200,\"per_seconds\":1,\"burst\":10},\"timeout_ms\":5000,\"retries\":3,"
                           "\"concurrency\":0,\"cache_ttl_s\":0,\"max_body\":1048576,\"max_pause_s\":300,"
                           "\"result_key\":\"result:{provider}:{id}\",\"policy\":\"overwrite\"}");
    free(s);
    ef_recipes_free(r);
    ef_recipes_free(NULL);
}

static void test_tmdb(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(TMDB);
    const ef_recipe_t *rc = ef_recipes_get(r, "movies");
    assert_non_null(rc);
    assert_int_equal(rc->nsteps, 2);
    const ef_recipe_step_t *s0 = &rc->steps[0], *s1 = &rc->steps[1];
    assert_string_equal(s0->name, "search");
    assert_int_equal(s0->nheaders, 1);
    assert_string_equal(s0->headers[0], "Authorization: Bearer ${TMDB_TOKEN}");
    assert_string_equal(s0->results, "/results");
    assert_int_equal(s0->nmatch, 1);
    assert_string_equal(s0->match[0].name, "title");
    assert_string_equal(s0->match[0].pointer, "/title");
    assert_int_equal(s0->select, EF_SELECT_UNIQUE);
    assert_int_equal(s0->nsave, 1);
    assert_string_equal(s0->save[0].name, "movie_id");
    assert_string_equal(s0->save[0].pointer, "/id");
    assert_string_equal(s1->name, "details");
    assert_null(s1->results);
    assert_int_equal(rc->nextract, 3);
    assert_string_equal(rc->extract[1].pointer, "/genres/*/name");
    assert_string_equal(rc->result_key, "movie:{id}");
    assert_int_equal(rc->policy, EF_POLICY_KEEP);
    assert_int_equal(rc->rate_requests, 40);
    assert_true(rc->rate_per_seconds == 10.0);
    assert_int_equal(rc->rate_burst, 40);
    assert_int_equal(rc->concurrency, 16);
    assert_int_equal(rc->cache_ttl_s, 86400);
    char *s = ef_recipe_summary(rc);
    assert_null(strstr(s, "Bearer"));
    assert_null(strstr(s, "Authorization"));
    assert_non_null(strstr(s, "\"policy\":\"keep\""));
    assert_non_null(strstr(s, "\"url\":\"http://127.0.0.1:8088/3/movie/{movie_id}\""));
    free(s);
    ef_recipes_free(r);
}

static void test_defaults_and_forms(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(
        "{\"providers\":{\"a\":{\"steps\":[{\"url\":\"https://x/{id}\",\"method\":\"POST\","
        "\"headers\":{\"Content-Type\":\"application/json\",\"X-Key\":\"${K}\"},"
        "\"body\":\"{{\\\"id\\\": \\\"{id}\\\"}}\",\"not_found_status\":204}],"
        "\"extract\":{\"all\":\"\"},\"rate\":{\"requests\":5}},"
        "\"b.c-d_1\":{\"steps\":[{\"url\":\"{base}/x\"}],\"extract\":{\"x\":\"/a~1b/~0\"},"
        "\"max_body\":1024}}}");
    const ef_recipe_t *a = ef_recipes_get(r, "a"), *b = ef_recipes_get(r, "b.c-d_1");
    assert_int_equal(a->steps[0].nheaders, 2);
    assert_string_equal(a->steps[0].headers[0], "Content-Type: application/json");
    assert_string_equal(a->steps[0].headers[1], "X-Key: ${K}");
    assert_string_equal(a->steps[0].body, "{{\"id\": \"{id}\"}}");
    assert_int_equal(a->steps[0].not_found_status, 204);
    assert_int_equal(a->rate_requests, 5);
    assert_int_equal(a->rate_burst, 5);
    assert_true(a->rate_per_seconds == 1.0);
    assert_int_equal(a->timeout_ms, EF_RECIPE_TIMEOUT_DEFAULT_MS);
    assert_int_equal(a->retries, EF_RECIPE_RETRIES_DEFAULT);
    assert_int_equal(b->rate_requests, 0); /* unlimited */
    assert_int_equal(b->max_body, 1024);
    ef_recipes_free(r);
}

/* The files in examples/ load (run from the top of the tree). */
static void test_examples(void **st) {
    (void)st;
    static const char *const files[] = {"examples/items.json", "examples/tmdb-mock.json",
                                        "examples/tmdb.json", "examples/rest.json",
                                        "examples/people-json.json",
                                        "examples/people-batch.json"};
    static const char *const names[] = {"items", "movies", "tmdb", "companies", "people",
                                        "people-bulk"};
    if (access(files[0], R_OK) != 0)
        skip();
    for (size_t i = 0; i < EF_ARRAY_LEN(files); i++) {
        ef_recipes_t *r = NULL;
        char err[EF_ERR_LEN] = "";
        if (ef_recipes_load_file(files[i], &r, err) != 0)
            fail_msg("%s", err);
        assert_non_null(ef_recipes_get(r, names[i]));
        ef_recipes_free(r);
    }
}

/* Each invalid recipe file and a substring its error must hold. */
static const struct {
    const char *json;
    const char *want;
} bad[] = {
    {"", "providers.json: malformed JSON: empty"},
    {"{\"providers\": {", "providers.json: malformed JSON at byte"},
    {"{\"providers\": {}} x", "providers.json: malformed JSON at byte 18"},
    {"[]", "providers.json: (top): must be an object"},
    {"{\"provider\": {}}", "providers.json: provider: unknown field"},
    {"{\"providers\": {}}", "providers.json: providers: must be an object naming at least one"},
    {"{\"providers\": {\"a b\": {}}}", "providers.json: providers: provider name 'a b' must be"},
    {"{\"providers\": {\"a\": 1}}", "recipe 'a': (recipe): must be an object"},
    {"{\"providers\": {\"a\": {\"extract\": {\"t\": \"/t\"}}}}", "recipe 'a': steps: required"},
    {"{\"providers\": {\"a\": {\"steps\": [], \"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps: must be an array of 1 to 8 steps"},
    {"{\"providers\": {\"a\": {\"steps\": [{}], \"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].url: required"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"ftp://x\"}], \"extract\": {\"t\": "
     "\"/t\"}}}}",
     "recipe 'a': steps[0].url: must start with http:// or https://"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x/{id\"}], \"extract\": {\"t\": "
     "\"/t\"}}}}",
     "recipe 'a': steps[0].url: malformed {...} at byte 9"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x/{}\"}], \"extract\": {\"t\": "
     "\"/t\"}}}}",
     "recipe 'a': steps[0].url: empty {} at byte 9"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x/{"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\"}], \"extract\": "
     "{\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].url: name longer than 64 bytes"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x/a}\"}], \"extract\": {\"t\": "
     "\"/t\"}}}}",
     "recipe 'a': steps[0].url: unmatched '}' at byte 10"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x/${tok}\"}], \"extract\": {\"t\": "
     "\"/t\"}}}}",
     "recipe 'a': steps[0].url: malformed ${...} at byte 9"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x/a b\"}], \"extract\": {\"t\": "
     "\"/t\"}}}}",
     "recipe 'a': steps[0].url: must not contain spaces"},
    {"{\"providers\": {\"movies\": {\"steps\": [{\"url\": \"http://x\", \"results\": \"/r\", "
     "\"select\": \"best\"}], \"extract\": {\"t\": \"/t\"}}}}",
     "providers.json: recipe 'movies': steps[0].select: must be \"unique\" or \"first\""},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"select\": \"first\"}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].select: needs \"results\""},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"method\": \"FETCH\"}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].method: must be GET, POST, PUT, PATCH or DELETE"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"methd\": \"GET\"}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].methd: unknown field"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"timeout\": 5}}}",
     "recipe 'a': timeout: unknown field"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"url\": \"http://y\"}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].url: given twice"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": "
     "\"/t\"}}, \"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}}}}",
     "providers.json: providers: provider 'a' is defined twice"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"headers\": [\"NoColon\"]}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].headers[0]: must be \"Name: value\""},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"headers\": {\"X\": 1}}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].headers.X: must be a string"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"headers\": [\"X: ${\"]}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].headers[0]: malformed ${...}"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}]}}}",
     "recipe 'a': extract: required"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {}}}}",
     "recipe 'a': extract: must name at least one field"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": "
     "\"title\"}}}}",
     "recipe 'a': extract.t: must be a JSON Pointer starting with \"/\""},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": "
     "\"/a~2\"}}}}",
     "recipe 'a': extract.t: '~' must be followed by 0 or 1"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"results\": \"/r/*\"}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].results: \"*\" segments are only allowed in extract"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"results\": \"/r\", "
     "\"as\": {\"a b\": \"/id\"}}], \"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].as.a b: names are 1 to 64 letters"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"rate\": {\"per_seconds\": 1}}}}",
     "recipe 'a': rate.requests: required"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"rate\": {\"requests\": 0}}}}",
     "recipe 'a': rate.requests: must be an integer from 1 to 1000000000"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"rate\": {\"requests\": 2.5}}}}",
     "recipe 'a': rate.requests: must be an integer"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"rate\": {\"requests\": 5, \"per_seconds\": 0}}}}",
     "recipe 'a': rate.per_seconds: must be a number above 0"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"rate\": {\"requests\": 5, \"burst\": 0}}}}",
     "recipe 'a': rate.burst: must be an integer from 1"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"timeout_ms\": 0}}}",
     "recipe 'a': timeout_ms: must be an integer from 1 to 600000"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"retries\": 21}}}",
     "recipe 'a': retries: must be an integer from 0 to 20"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"retries\": \"3\"}}}",
     "recipe 'a': retries: must be an integer from 0 to 20"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"max_body\": 100}}}",
     "recipe 'a': max_body: must be an integer from 1024 to 268435456"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"concurrency\": -1}}}",
     "recipe 'a': concurrency: must be an integer from 0 to 100000"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"cache_ttl_s\": 31536001}}}",
     "recipe 'a': cache_ttl_s: must be an integer from 0 to 31536000"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"results\": {\"policy\": \"merge\"}}}}",
     "recipe 'a': results.policy: must be \"keep\" or \"overwrite\""},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"results\": {\"key\": \"r {id}\"}}}}",
     "recipe 'a': results.key: must not contain whitespace"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"results\": {\"key\": \"r:{id\"}}}}",
     "recipe 'a': results.key: malformed {...}"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, "
     "\"results\": {\"key\": \"r:${K}\"}}}}",
     "recipe 'a': results.key: must not use ${...}"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"name\": \"s\"}, "
     "{\"url\": \"http://y\", \"name\": \"s\"}], \"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[1].name: step 's' is named twice"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"not_found_status\": 200}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].not_found_status: must be an integer from 201 to 599"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"match\": {\"t\": \"/t\"}}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].match: needs \"results\""},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\", \"body\": \"{\\\"a\\\": 1}\"}], "
     "\"extract\": {\"t\": \"/t\"}}}}",
     "recipe 'a': steps[0].body: malformed {...} at byte 0"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": "
     "\"/t\"}}, "
     "\"b\": {\"steps\": [{\"url\": \"http://x\"}], \"extract\": {\"t\": \"/t\"}, \"ratee\": {}}}}",
     "providers.json: recipe 'b': ratee: unknown field"},
    {"{\"providers\": {\"a\": {\"steps\": [{\"url\": \"http://x/\\u00ff\xff\"}]}}}",
     "providers.json: malformed JSON: invalid UTF-8 at byte"},
};

static void test_invalid(void **st) {
    (void)st;
    for (size_t i = 0; i < EF_ARRAY_LEN(bad); i++) {
        ef_recipes_t *r = (ef_recipes_t *)1;
        char err[EF_ERR_LEN] = "";
        int rc = ef_recipes_parse(bad[i].json, strlen(bad[i].json), "providers.json", &r, err);
        if (rc != -1 || r != NULL || !strstr(err, bad[i].want))
            fail_msg("case %zu: rc=%d err='%s', want '%s'", i, rc, err, bad[i].want);
    }
}

static void test_load_file(void **st) {
    (void)st;
    char path[] = "/tmp/ef_recipe_testXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, MINIMAL, strlen(MINIMAL)), (ssize_t)strlen(MINIMAL));
    close(fd);
    ef_recipes_t *r = NULL;
    char err[EF_ERR_LEN] = "";
    assert_int_equal(ef_recipes_load_file(path, &r, err), 0);
    assert_int_equal(ef_recipes_get(r, "items")->rate_burst, 10);
    ef_recipes_free(r);
    unlink(path);
    assert_int_equal(ef_recipes_load_file(path, &r, err), -1);
    assert_null(r);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
}

/* Fills tmpl with the entity and vars given as JSON text; returns the
 * filled text or "E:" and the error (caller frees). */
static char *fill(const char *tmpl, const char *entity, const char *vars, int enc) {
    ef_recipe_scope_t sc = {cJSON_Parse(entity), vars ? cJSON_Parse(vars) : NULL, NULL};
    ef_buf_t out;
    char err[EF_ERR_LEN];
    char *res;
    ef_buf_init(&out);
    ef_buf_appends(&out, "stale");
    if (ef_template_fill(tmpl, &sc, enc, &out, err) == 0) {
        res = strdup(out.s);
    } else {
        res = malloc(strlen(err) + 3);
        sprintf(res, "E:%s", err);
    }
    ef_buf_free(&out);
    cJSON_Delete(sc.entity);
    cJSON_Delete(sc.vars);
    return res;
}

#define FILL(t, e, v, enc, want)                                                                   \
    do {                                                                                           \
        char *got_ = fill(t, e, v, enc);                                                           \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

/* The shared defaults come last: the entity and the saved variables win. */
static void test_template_defaults(void **st) {
    (void)st;
    cJSON *d = cJSON_Parse("{\"provider\":\"tmdb\",\"x\":\"dx\"}");
    cJSON *e = cJSON_Parse("{\"id\":\"7\",\"x\":\"ex\"}");
    cJSON *v = cJSON_Parse("{\"provider\":\"saved\"}");
    char err[EF_ERR_LEN];
    ef_buf_t out;
    ef_recipe_scope_t sc = {e, NULL, d};
    ef_buf_init(&out);
    assert_int_equal(ef_template_fill("{provider}:{id}:{x}", &sc, 0, &out, err), 0);
    assert_string_equal(out.s, "tmdb:7:ex");
    ef_buf_reset(&out);
    sc.vars = v;
    assert_int_equal(ef_template_fill("{provider}", &sc, 0, &out, err), 0);
    assert_string_equal(out.s, "saved");
    ef_buf_reset(&out);
    sc.defaults = NULL;
    sc.vars = NULL;
    assert_int_not_equal(ef_template_fill("{provider}", &sc, 0, &out, err), 0);
    assert_non_null(strstr(err, "provider"));
    ef_buf_free(&out);
    cJSON_Delete(d);
    cJSON_Delete(e);
    cJSON_Delete(v);
}

static void test_template(void **st) {
    (void)st;
    const char *e =
        "{\"id\":\"7\",\"title\":\"Amélie & Co/ü?\",\"year\":2001,\"r\":7.5,"
        "\"big\":1e300,\"neg\":-3,\"ok\":true,\"nul\":null,\"obj\":{},\"nl\":\"a\\r\\nb\","
        "\"movie_id\":\"entity\"}";
    FILL("http://x/item/{id}", e, NULL, 1, "http://x/item/7");
    FILL("http://x/s?q={title}&y={year}", e, NULL, 1,
         "http://x/s?q=Am%C3%A9lie%20%26%20Co%2F%C3%BC%3F&y=2001");
    FILL("q={title}", e, NULL, 0, "q=Amélie & Co/ü?");
    FILL("a-b.c_d~e/{r}/{neg}/{ok}/{big}", e, NULL, 1,
         "a-b.c_d~e/7.5/-3/true/1.0000000000000001e%2B300");
    FILL("y={year?}&z={zz?}&n={nul?}", e, NULL, 1, "y=2001&z=&n=");
    FILL("{zz}", e, NULL, 1, "E:no field 'zz' for {zz}");
    FILL("{nul}", e, NULL, 1, "E:no field 'nul' for {nul}");
    FILL("{obj}", e, NULL, 1, "E:field 'obj' for {obj} is not a string, number or boolean");
    FILL("{nl}", e, NULL, 1, "a%0D%0Ab");
    FILL("X: {nl}", e, NULL, 0, "E:field 'nl' holds a control character");
    FILL("{{literal}} {id} }}{{", e, NULL, 0, "{literal} 7 }{");
    FILL("${{x}}", e, NULL, 0, "${x}");
    FILL("cost $5 {id}", e, NULL, 0, "cost $5 7");
    FILL("", e, NULL, 0, "");
    /* entity fields first, then saved variables */
    FILL("{movie_id}/{v}", e, "{\"movie_id\":\"var\",\"v\":42}", 1, "entity/42");
    FILL("{v}", "{}", "{\"v\":\"a b\"}", 1, "a%20b");
    FILL("{id}", "{}", NULL, 1, "E:no field 'id' for {id}");
    /* environment */
    setenv("EF_TEST_TOKEN", "s3cr/t k", 1);
    unsetenv("EF_TEST_UNSET");
    FILL("Authorization: Bearer ${EF_TEST_TOKEN}", e, NULL, 0, "Authorization: Bearer s3cr/t k");
    FILL("http://x/?api_key=${EF_TEST_TOKEN}", e, NULL, 1, "http://x/?api_key=s3cr%2Ft%20k");
    FILL("${EF_TEST_UNSET}", e, NULL, 0, "E:environment variable EF_TEST_UNSET is not set");
    /* syntax errors at fill time */
    FILL("{id", e, NULL, 0,
         "E:malformed {...} at byte 0 (names are letters, digits, _ . -; write "
         "{{ for a literal brace)");
    FILL("a}", e, NULL, 0, "E:unmatched '}' at byte 1 (write }} for a literal brace)");
    FILL("${lower}", e, NULL, 0, "E:malformed ${...} at byte 0 (names are [A-Z_][A-Z0-9_]*)");
    FILL("{}", e, NULL, 0, "E:empty {} at byte 0 (write {{ for a literal brace)");
    /* bounded output */
    size_t n = 40000;
    char *big = malloc(n + 32);
    memset(big, 'x', n);
    strcpy(big + n, "{t}{t}");
    char *ent = malloc(n + 32);
    sprintf(ent, "{\"t\":\"%.*s\"}", (int)n, big);
    char *got = fill(big, ent, NULL, 0);
    assert_string_equal(got, "E:template longer than 65536 bytes once filled");
    free(got);
    free(ent);
    free(big);
}

static void test_pointer(void **st) {
    (void)st;
    /* the example document of RFC 6901 section 5 */
    cJSON *d = cJSON_Parse("{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, "
                           "\"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, "
                           "\"m~n\": 8, \"~1\": 9}");
    assert_non_null(d);
    assert_ptr_equal(ef_json_pointer(d, ""), d);
    assert_true(cJSON_IsArray(ef_json_pointer(d, "/foo")));
    assert_string_equal(ef_json_pointer(d, "/foo/0")->valuestring, "bar");
    assert_string_equal(ef_json_pointer(d, "/foo/1")->valuestring, "baz");
    static const struct {
        const char *p;
        int v;
    } num[] = {{"/", 0},     {"/a~1b", 1}, {"/c%d", 2}, {"/e^f", 3},  {"/g|h", 4},
               {"/i\\j", 5}, {"/k\"l", 6}, {"/ ", 7},   {"/m~0n", 8}, {"/~01", 9}};
    for (size_t i = 0; i < EF_ARRAY_LEN(num); i++) {
        cJSON *v = ef_json_pointer(d, num[i].p);
        if (!v || v->valueint != num[i].v)
            fail_msg("pointer %s", num[i].p);
    }
    assert_null(ef_json_pointer(d, "/foo/2")); /* out of range */
    assert_null(ef_json_pointer(d, "/foo/-"));
    assert_null(ef_json_pointer(d, "/foo/01")); /* leading zero */
    assert_null(ef_json_pointer(d, "/foo/-1"));
    assert_null(ef_json_pointer(d, "/foo/99999999999999999999"));
    assert_null(ef_json_pointer(d, "/foo/0/x")); /* into a string */
    assert_null(ef_json_pointer(d, "/nope"));
    assert_null(ef_json_pointer(d, "/m~2n")); /* bad escape */
    assert_null(ef_json_pointer(d, "/m~"));
    assert_null(ef_json_pointer(d, "foo")); /* no leading / */
    assert_null(ef_json_pointer(NULL, "/foo"));
    assert_null(ef_json_pointer(d, NULL));
    char longp[600] = "/";
    memset(longp + 1, 'k', 500);
    assert_null(ef_json_pointer(d, longp));
    cJSON_Delete(d);
}

/* Judges body (NUL-terminated) as step `step` of rc; returns the verdict
 * and puts the extracted fields (or "E:err") as text in *out. */
static ef_step_verdict_t judge(const ef_recipe_t *rc, size_t step, long status, const char *body,
                               ef_recipe_scope_t *sc, char **out) {
    cJSON *fields = (cJSON *)1;
    char err[EF_ERR_LEN] = "";
    ef_step_verdict_t v =
        ef_recipe_judge(rc, step, status, body, body ? strlen(body) : 0, sc, &fields, err);
    if (v == EF_STEP_DONE) {
        assert_non_null(fields);
        *out = cJSON_PrintUnformatted(fields);
        cJSON_Delete(fields);
    } else {
        assert_null(fields);
        *out = malloc(strlen(err) + 3);
        sprintf(*out, "E:%s", err);
    }
    return v;
}

#define JUDGE(rc, step, status, body, sc, verdict, want)                                           \
    do {                                                                                           \
        char *out_;                                                                                \
        assert_int_equal(judge(rc, step, status, body, sc, &out_), verdict);                       \
        assert_string_equal(out_, want);                                                           \
        free(out_);                                                                                \
    } while (0)

static void test_judge_single(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(MINIMAL);
    const ef_recipe_t *rc = ef_recipes_get(r, "items");
    cJSON *ent = cJSON_Parse("{\"id\":\"1\"}");
    ef_recipe_scope_t sc = {ent, NULL, NULL};
    JUDGE(rc, 0, 200, "{\"id\":1,\"title\":\"Item 1\",\"x\":[1]}", &sc, EF_STEP_DONE,
          "{\"title\":\"Item 1\"}");
    JUDGE(rc, 0, 201, " {\"title\": 12.5} \n", &sc, EF_STEP_DONE, "{\"title\":12.5}");
    JUDGE(rc, 0, 200, "{\"name\":\"no title\"}", &sc, EF_STEP_DONE, "{}");
    JUDGE(rc, 0, 200, "{\"title\":null}", &sc, EF_STEP_DONE, "{}");
    JUDGE(rc, 0, 200, "{\"title\":{\"en\":\"x\"}}", &sc, EF_STEP_DONE,
          "{\"title\":{\"en\":\"x\"}}");
    JUDGE(rc, 0, 200, "[1,2]", &sc, EF_STEP_DONE, "{}");
    JUDGE(rc, 0, 404, "{\"status\":\"missing\"}", &sc, EF_STEP_NOT_FOUND, "E:");
    JUDGE(rc, 0, 404, "not json", &sc, EF_STEP_NOT_FOUND, "E:");
    JUDGE(rc, 0, 429, "", &sc, EF_STEP_RETRY, "E:HTTP 429");
    JUDGE(rc, 0, 408, "", &sc, EF_STEP_RETRY, "E:HTTP 408");
    JUDGE(rc, 0, 500, "oops", &sc, EF_STEP_RETRY, "E:HTTP 500");
    JUDGE(rc, 0, 503, "", &sc, EF_STEP_RETRY, "E:HTTP 503");
    JUDGE(rc, 0, 599, "", &sc, EF_STEP_RETRY, "E:HTTP 599");
    JUDGE(rc, 0, 403, "{}", &sc, EF_STEP_ERROR, "E:HTTP 403");
    JUDGE(rc, 0, 400, "{}", &sc, EF_STEP_ERROR, "E:HTTP 400");
    JUDGE(rc, 0, 301, "", &sc, EF_STEP_ERROR, "E:HTTP 301");
    /* an HTML error page's title says why (a TLS proxy refusing the client) */
    JUDGE(rc, 0, 400,
          "<html>\r\n<head><TITLE>400 No required SSL certificate was sent</title></head>", &sc,
          EF_STEP_ERROR, "E:HTTP 400 (400 No required SSL certificate was sent)");
    JUDGE(rc, 0, 403, "<title>\n  a\x01\tb  \xc3\xa9 </title>", &sc, EF_STEP_ERROR,
          "E:HTTP 403 (a b ?" "?)");
    JUDGE(rc, 0, 403, "<title></title>", &sc, EF_STEP_ERROR, "E:HTTP 403");
    JUDGE(rc, 0, 403, "<title>no end", &sc, EF_STEP_ERROR, "E:HTTP 403 (no end)");
    JUDGE(rc, 0, 403, "<titl", &sc, EF_STEP_ERROR, "E:HTTP 403");
    JUDGE(rc, 0, 101, "", &sc, EF_STEP_ERROR, "E:HTTP 101");
    JUDGE(rc, 0, 600, "", &sc, EF_STEP_ERROR, "E:HTTP 600");
    JUDGE(rc, 0, 0, "", &sc, EF_STEP_ERROR, "E:HTTP 0");
    JUDGE(rc, 0, 200, "{\"title\": \"x\",}", &sc, EF_STEP_ERROR, "E:malformed JSON at byte 14");
    JUDGE(rc, 0, 200, "{\"title\": \"x\"} {}", &sc, EF_STEP_ERROR, "E:malformed JSON at byte 15");
    JUDGE(rc, 0, 200, "", &sc, EF_STEP_ERROR, "E:malformed JSON: empty");
    JUDGE(rc, 0, 200, NULL, &sc, EF_STEP_ERROR, "E:malformed JSON: empty");
    JUDGE(rc, 0, 200, "<html>", &sc, EF_STEP_ERROR, "E:malformed JSON at byte 0");
    JUDGE(rc, 0, 200, "{\"title\":\"\xc3\x28\"}", &sc, EF_STEP_ERROR,
          "E:malformed JSON: invalid UTF-8 at byte 10");
    JUDGE(rc, 1, 200, "{}", &sc, EF_STEP_ERROR, "E:no step 1");
    /* a NUL inside body_len */
    char err[EF_ERR_LEN];
    cJSON *f = NULL;
    assert_int_equal(ef_recipe_judge(rc, 0, 200, "{\"title\":\"a\0b\"}", 15, &sc, &f, err),
                     EF_STEP_ERROR);
    assert_null(f);
    assert_string_equal(err, "malformed JSON: NUL byte at byte 11");
    /* a body only parsed up to body_len */
    assert_int_equal(ef_recipe_judge(rc, 0, 200, "{\"title\":1}garbage", 11, &sc, &f, err),
                     EF_STEP_DONE);
    cJSON_Delete(f);
    /* fields may be NULL (dry run) */
    assert_int_equal(ef_recipe_judge(rc, 0, 200, "{\"title\":1}", 11, &sc, NULL, err),
                     EF_STEP_DONE);
    cJSON_Delete(ent);
    ef_recipes_free(r);
}

static void test_judge_search(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(TMDB);
    const ef_recipe_t *rc = ef_recipes_get(r, "movies");
    cJSON *ent = cJSON_Parse("{\"id\":\"m1\",\"title\":\" the MATRIX \",\"year\":1999}");
    ef_recipe_scope_t sc = {ent, NULL, NULL};
    ef_buf_t url;
    char err[EF_ERR_LEN];
    ef_buf_init(&url);
    setenv("TMDB_TOKEN", "tok", 1);
    assert_int_equal(ef_template_fill(rc->steps[0].url, &sc, 1, &url, err), 0);
    assert_string_equal(url.s,
                        "http://127.0.0.1:8088/3/search/movie?query=%20the%20MATRIX%20&year=1999");
    assert_int_equal(ef_template_fill(rc->steps[0].headers[0], &sc, 0, &url, err), 0);
    assert_string_equal(url.s, "Authorization: Bearer tok");
    /* the next step cannot be filled before the search saved movie_id */
    assert_int_equal(ef_template_fill(rc->steps[1].url, &sc, 1, &url, err), -1);
    assert_string_equal(err, "no field 'movie_id' for {movie_id}");

    JUDGE(rc, 0, 200, "{\"results\":[]}", &sc, EF_STEP_NOT_FOUND, "E:");
    JUDGE(rc, 0, 200, "{\"results\":[{\"id\":1,\"title\":\"Other\"}]}", &sc, EF_STEP_NOT_FOUND,
          "E:");
    JUDGE(rc, 0, 200, "{\"page\":1}", &sc, EF_STEP_ERROR, "E:no array at /results");
    JUDGE(rc, 0, 200, "{\"results\":{}}", &sc, EF_STEP_ERROR, "E:no array at /results");
    JUDGE(rc, 0, 200,
          "{\"results\":[{\"id\":603,\"title\":\"The Matrix\"},{\"id\":1,\"title\":\"The Matrix\"},"
          "{\"id\":2,\"title\":\"Matrix\"}]}",
          &sc, EF_STEP_CONFLICT, "E:2 candidates match");
    JUDGE(rc, 0, 200,
          "{\"results\":[{\"id\":604},{\"id\":605,\"title\":[\"The Matrix\"]},"
          "{\"title\":\"The Matrix\"}]}",
          &sc, EF_STEP_ERROR, "E:no value at /id for 'movie_id'");
    assert_null(sc.vars);
    JUDGE(rc, 0, 200,
          "{\"results\":[{\"id\":2,\"title\":\"Matrix\"},{\"id\":603,\"title\":\"The Matrix\"}]}",
          &sc, EF_STEP_NEXT, "E:");
    assert_non_null(sc.vars);
    assert_int_equal(cJSON_GetObjectItem(sc.vars, "movie_id")->valueint, 603);
    assert_int_equal(ef_template_fill(rc->steps[1].url, &sc, 1, &url, err), 0);
    assert_string_equal(url.s, "http://127.0.0.1:8088/3/movie/603");
    JUDGE(rc, 1, 200,
          "{\"id\":603,\"runtime\":136,\"genres\":[{\"id\":28,\"name\":\"Action\"},{\"id\":1},"
          "{\"name\":\"Science Fiction\"}],\"credits\":{\"crew\":[{\"job\":\"Director\","
          "\"name\":\"Lana Wachowski\"}]}}",
          &sc, EF_STEP_DONE,
          "{\"runtime\":136,\"genres\":[\"Action\",\"Science Fiction\"],\"director\":\"Lana "
          "Wachowski\"}");
    JUDGE(rc, 1, 200, "{\"genres\":\"none\",\"credits\":{\"crew\":[]}}", &sc, EF_STEP_DONE, "{}");
    JUDGE(rc, 1, 200, "{\"genres\":[]}", &sc, EF_STEP_DONE, "{\"genres\":[]}");
    JUDGE(rc, 1, 404, "", &sc, EF_STEP_NOT_FOUND, "E:");
    /* a second search replaces the variable */
    JUDGE(rc, 0, 200, "{\"results\":[{\"id\":\"x7\",\"title\":\"the matrix\"}]}", &sc, EF_STEP_NEXT,
          "E:");
    assert_string_equal(cJSON_GetObjectItem(sc.vars, "movie_id")->valuestring, "x7");
    assert_int_equal(cJSON_GetArraySize(sc.vars), 1);
    cJSON_Delete(sc.vars);
    sc.vars = NULL;

    /* select first, a last search step extracting from the candidate, and
     * a match field the entity lacks (no constraint) */
    ef_recipes_t *r2 = parse_ok(
        "{\"providers\":{\"s\":{\"steps\":[{\"url\":\"http://x/?q={title}\",\"results\":\"/hits\","
        "\"match\":{\"title\":\"/name\",\"country\":\"/c\"},\"select\":\"first\"}],"
        "\"extract\":{\"id\":\"/id\",\"tags\":\"/tags/*\"}},"
        "\"all\":{\"steps\":[{\"url\":\"http://x/"
        "\",\"results\":\"\"}],\"extract\":{\"v\":\"\"}}}}");
    const ef_recipe_t *s = ef_recipes_get(r2, "s");
    JUDGE(
        s, 0, 200,
        "{\"hits\":[{\"id\":1,\"name\":\"zz\"},{\"id\":2,\"name\":\"The matrix\",\"tags\":[1,null,"
        "\"b\"]},{\"id\":3,\"name\":\"the matrix\"}]}",
        &sc, EF_STEP_DONE, "{\"id\":2,\"tags\":[1,\"b\"]}");
    cJSON_AddStringToObject(ent, "country", "FR");
    JUDGE(s, 0, 200,
          "{\"hits\":[{\"id\":2,\"name\":\"The matrix\",\"c\":\"US\"},{\"id\":3,\"name\":\"the "
          "matrix\",\"c\":\"fr\"}]}",
          &sc, EF_STEP_DONE, "{\"id\":3}");
    /* no match entries: every candidate matches; "" is the whole document */
    const ef_recipe_t *all = ef_recipes_get(r2, "all");
    JUDGE(all, 0, 200, "[\"a\",\"b\"]", &sc, EF_STEP_CONFLICT, "E:2 candidates match");
    JUDGE(all, 0, 200, "[{\"k\":1}]", &sc, EF_STEP_DONE, "{\"v\":{\"k\":1}}");
    JUDGE(all, 0, 200, "{}", &sc, EF_STEP_ERROR, "E:no array at the document root");
    assert_null(sc.vars);
    ef_recipes_free(r2);
    ef_buf_free(&url);
    cJSON_Delete(ent);
    ef_recipes_free(r);
}

/* A middle step whose answer nobody reads may have an empty body (204). */
static void test_judge_empty_middle(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok("{\"providers\":{\"p\":{\"steps\":[{\"url\":\"http://x/login\","
                               "\"method\":\"POST\"},{\"url\":\"http://x/{id}\"}],"
                               "\"extract\":{\"a\":\"/a\"}}}}");
    const ef_recipe_t *rc = ef_recipes_at(r, 0);
    ef_recipe_scope_t sc = {NULL, NULL, NULL};
    JUDGE(rc, 0, 204, "", &sc, EF_STEP_NEXT, "E:");
    JUDGE(rc, 0, 200, "{}", &sc, EF_STEP_NEXT, "E:");
    JUDGE(rc, 0, 200, "{", &sc, EF_STEP_ERROR, "E:malformed JSON at byte 0");
    JUDGE(rc, 1, 204, "", &sc, EF_STEP_ERROR, "E:malformed JSON: empty");
    ef_recipes_free(r);
}

/* Every prefix of a valid body, ending right before an unmapped page, is
 * judged without reading past it, and every strict prefix is an error. */
static void test_judge_prefixes(void **st) {
    (void)st;
    static const char body[] =
        "{\"results\":[{\"id\":603,\"title\":\"The Matrix\",\"x\":[1.5e3,-0,true,false,null,"
        "\"\\u00e9\\ud83d\\ude00\\n\"],\"o\":{\"\":{}}}],\"total\":1}";
    size_t n = strlen(body);
    long pg = sysconf(_SC_PAGESIZE);
    char *map =
        mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    ef_recipes_t *r = parse_ok(TMDB);
    const ef_recipe_t *rc = ef_recipes_get(r, "movies");
    cJSON *ent = cJSON_Parse("{\"title\":\"the matrix\"}");
    for (size_t len = 0; len <= n; len++) {
        ef_recipe_scope_t sc = {ent, NULL, NULL};
        char err[EF_ERR_LEN];
        cJSON *f = NULL;
        char *p = map + pg - len;
        memcpy(p, body, len);
        ef_step_verdict_t v = ef_recipe_judge(rc, 0, 200, p, len, &sc, &f, err);
        if (len < n && v != EF_STEP_ERROR)
            fail_msg("prefix of %zu bytes judged %d", len, v);
        if (len == n) {
            assert_int_equal(v, EF_STEP_NEXT);
            assert_int_equal(cJSON_GetObjectItem(sc.vars, "movie_id")->valueint, 603);
        }
        assert_null(f);
        cJSON_Delete(sc.vars);
    }
    cJSON_Delete(ent);
    ef_recipes_free(r);
    munmap(map, (size_t)pg * 2);
}

static void test_judge_hostile(void **st) {
    (void)st;
    ef_recipes_t *r =
        parse_ok("{\"providers\":{\"p\":{\"steps\":[{\"url\":\"http://x/{id}\"}],"
                 "\"extract\":{\"a\":\"/a\",\"m\":\"/*/*/*\"},\"max_body\":2000000}}}");
    const ef_recipe_t *rc = ef_recipes_at(r, 0);
    ef_recipe_scope_t sc = {NULL, NULL, NULL};
    char err[EF_ERR_LEN];
    cJSON *f = NULL;
    size_t n = 1000000;
    char *b = malloc(n * 2 + 8);
    /* deep nesting: cJSON's nesting limit refuses it, no stack overflow */
    memset(b, '[', n);
    memset(b + n, ']', n);
    assert_int_equal(ef_recipe_judge(rc, 0, 200, b, n * 2, &sc, &f, err), EF_STEP_ERROR);
    assert_non_null(strstr(err, "malformed JSON"));
    /* nesting just under the limit is fine */
    size_t d = 900;
    memset(b, '[', d);
    memset(b + d, ']', d);
    assert_int_equal(ef_recipe_judge(rc, 0, 200, b, d * 2, &sc, &f, err), EF_STEP_DONE);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(f, "m")));
    cJSON_Delete(f);
    /* over max_body */
    memset(b, ' ', n * 2);
    b[0] = '{';
    b[n * 2 - 1] = '}';
    assert_int_equal(ef_recipe_judge(rc, 0, 200, b, n * 2 + 1, &sc, &f, err), EF_STEP_ERROR);
    assert_string_equal(err, "body larger than max_body (2000000 bytes)");
    free(b);
    /* huge numbers and escapes */
    /* a number out of range is an error for the entity, never a null */
    JUDGE(rc, 0, 200, "{\"a\":1e999999}", &sc, EF_STEP_ERROR, "E:field a: number out of range");
    JUDGE(rc, 0, 200, "{\"a\":-1e999999,\"b\":123456789012345678901234567890}", &sc,
          EF_STEP_ERROR, "E:field a: number out of range");
    JUDGE(rc, 0, 200, "{\"a\":[1,{\"x\":[2e400]}]}", &sc, EF_STEP_ERROR,
          "E:field a: number out of range");
    JUDGE(rc, 0, 200, "{\"a\":1e308,\"b\":1e999999}", &sc, EF_STEP_DONE, "{\"a\":1e+308}");
    JUDGE(rc, 0, 200, "{\"a\":\"\\u0000x\"}", &sc, EF_STEP_DONE, "{\"a\":\"\"}");
    JUDGE(rc, 0, 200, "{\"a\":\"\\ud800\"}", &sc, EF_STEP_ERROR, "E:malformed JSON at byte 6");
    JUDGE(rc, 0, 200, "{\"a\":\"\\x\"}", &sc, EF_STEP_ERROR, "E:malformed JSON at byte 6");
    /* cJSON 1.7.15 reads a bad \u escape as U+0000: lenient, harmless */
    JUDGE(rc, 0, 200, "{\"a\":\"\\uZZZZ\"}", &sc, EF_STEP_DONE, "{\"a\":\"\"}");
    JUDGE(rc, 0, 200, "{\"a\":1,\"a\":2}", &sc, EF_STEP_DONE, "{\"a\":1}");
    JUDGE(rc, 0, 200, "\xef\xbb\xbf{\"a\":1}", &sc, EF_STEP_DONE, "{\"a\":1}"); /* BOM ignored */
    /* a number that the template renders */
    cJSON *ent = cJSON_Parse("{\"id\":1e999999}");
    ef_buf_t out;
    ef_buf_init(&out);
    sc.entity = ent;
    assert_int_equal(ef_template_fill(rc->steps[0].url, &sc, 1, &out, err), -1);
    assert_string_equal(err, "field 'id' for {id} is not a string, number or boolean");
    ef_buf_free(&out);
    cJSON_Delete(ent);
    ef_recipes_free(r);
}

/* ---- Safe templates: filters and the "json" body form ---- */

/* {x|json} is a JSON string literal whatever x holds; {x|url} is
 * percent-encoded wherever it stands; a URL percent-encodes a JSON literal
 * too; an unknown filter is refused when the file is loaded. */
static void test_template_filters(void **st) {
    (void)st;
    const char *e =
        "{\"t\":\"say \\\"hi\\\"\\nnext\\\\ \\u0001\",\"n\":42,\"b\":true,\"u\":\"a b&c/é\"}";
    FILL("{{\"title\": {t|json}}}", e, NULL, EF_TMPL_RAW,
         "{\"title\": \"say \\\"hi\\\"\\nnext\\\\ \\u0001\"}");
    FILL("{n|json} {b|json}", e, NULL, EF_TMPL_RAW, "\"42\" \"true\"");
    FILL("{u|url}", e, NULL, EF_TMPL_RAW, "a%20b%26c%2F%C3%A9");
    FILL("q={t|json}", e, NULL, EF_TMPL_URL,
         "q=%22say%20%5C%22hi%5C%22%5Cnnext%5C%5C%20%5Cu0001%22");
    FILL("{missing?|json}", e, NULL, EF_TMPL_RAW, "");
    /* without a filter a raw place still refuses the newline */
    FILL("{t}", e, NULL, EF_TMPL_RAW, "E:field 't' holds a control character");
    /* invalid UTF-8 becomes U+FFFD: the literal stays valid JSON */
    FILL("{x|json}",
         "{\"x\":\"a\xff"
         "b\"}",
         NULL, EF_TMPL_RAW, "\"a\\ufffdb\"");
    setenv("EF_TEST_QUOTE", "p\"q", 1);
    FILL("${EF_TEST_QUOTE|json}", "{}", NULL, EF_TMPL_RAW, "\"p\\\"q\"");
    FILL("{t|xml}", e, NULL, EF_TMPL_RAW,
         "E:unknown filter in {...} at byte 0 (filters are |json and |url)");
    ef_recipes_t *r = NULL;
    char err[EF_ERR_LEN];
    const char *unk = "{\"providers\":{\"p\":{\"steps\":[{\"url\":\"http://x/{id|base64}\"}],"
                      "\"extract\":{\"t\":\"/t\"}}}}";
    assert_int_equal(ef_recipes_parse(unk, strlen(unk), "providers.json", &r, err), -1);
    assert_non_null(strstr(err, "steps[0].url: unknown filter"));
}

/* Fills step 0's body of recipe json for entity e; returns the text or
 * "E:" and the error (caller frees). */
static char *body_of(const char *json, const char *e) {
    ef_recipes_t *r = parse_ok(json);
    const ef_recipe_t *rc = ef_recipes_at(r, 0);
    ef_recipe_scope_t sc = {cJSON_Parse(e), NULL, NULL};
    char err[EF_ERR_LEN], *res;
    ef_buf_t out;
    ef_buf_init(&out);
    if (ef_recipe_body_fill(&rc->steps[0], &sc, &out, err) == 0) {
        res = strdup(out.s);
    } else {
        res = malloc(strlen(err) + 3);
        sprintf(res, "E:%s", err);
    }
    ef_buf_free(&out);
    cJSON_Delete(sc.entity);
    ef_recipes_free(r);
    return res;
}

/* The "json" body form is valid JSON by construction: a title holding a
 * quote, a newline or an injection attempt stays one string; a lone {x}
 * keeps its JSON type; a missing {x?} is null; Content-Type is added. */
static void test_json_body(void **st) {
    (void)st;
    const char *recipe =
        "{\"providers\":{\"p\":{\"steps\":[{\"method\":\"POST\",\"url\":\"http://x/search\","
        "\"json\":{\"query\":\"{title}\",\"label\":\"movie: {title} "
        "({year?})\",\"year\":\"{year}\","
        "\"opt\":\"{nope?}\",\"ids\":[\"{id}\",7,null,{\"deep\":\"{{literal}}\"}],\"flag\":true}}],"
        "\"extract\":{\"t\":\"/t\"}}}}";
    const char *evil = "{\"id\":\"42\",\"year\":1999,\"title\":\"A \\\"q\\\"\\n\\\", "
                       "\\\"admin\\\": true, \\\"x\\\": \\\"\"}";
    char *got = body_of(recipe, evil);
    cJSON *doc = cJSON_Parse(got);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "query")->valuestring,
                        "A \"q\"\n\", \"admin\": true, \"x\": \"");
    assert_null(cJSON_GetObjectItem(doc, "admin"));
    assert_string_equal(cJSON_GetObjectItem(doc, "label")->valuestring,
                        "movie: A \"q\"\n\", \"admin\": true, \"x\": \" (1999)");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(doc, "year")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "opt")));
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "ids"), 0)->valuestring, "42");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "ids"), 3), "deep")
            ->valuestring,
        "{literal}");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "flag")));
    cJSON_Delete(doc);
    free(got);
    got = body_of(recipe, "{\"id\":\"1\"}");
    assert_string_equal(got, "E:no field 'title' for {title}");
    free(got);
    /* Content-Type is added unless given */
    ef_recipes_t *r = parse_ok(recipe);
    const ef_recipe_step_t *s0 = &ef_recipes_at(r, 0)->steps[0];
    assert_int_equal(s0->nheaders, 1);
    assert_string_equal(s0->headers[0], "Content-Type: application/json");
    ef_recipes_free(r);
    /* errors at load: both forms, not an object, a bad leaf */
    static const char *const refused[][2] = {
        {"\"body\":\"x\",\"json\":{}", "give either \"body\" or \"json\""},
        {"\"json\":\"{id}\"", "steps[0].json: must be an object or an array"},
        {"\"json\":{\"a\":[1,\"{id\"]}", "steps[0].json.a[1]: malformed {...}"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char json[512], err[EF_ERR_LEN];
        ef_recipes_t *rr = NULL;
        snprintf(json, sizeof json,
                 "{\"providers\":{\"p\":{\"steps\":[{\"url\":\"http://x/\",%s}],"
                 "\"extract\":{\"t\":\"/t\"}}}}",
                 refused[i][0]);
        assert_int_equal(ef_recipes_parse(json, strlen(json), "providers.json", &rr, err), -1);
        if (!strstr(err, refused[i][1]))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, refused[i][1]);
    }
}

/* The auth block: parsed, the example loads, the summary shows the token
 * URL and scope but neither client id nor secret, and each mistake is
 * refused with the field named. */
#define AUTH_RECIPE(auth)                                                                          \
    "{\"providers\": {\"api\": {\"steps\": [{\"url\": \"http://h/x/{id}\"}], "                      \
    "\"extract\": {\"t\": \"/t\"}, \"auth\": " auth "}}}"
static void test_auth(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(AUTH_RECIPE(
        "{\"type\": \"oauth2_client_credentials\", \"token_url\": \"https://h/oauth/token\", "
        "\"client_id\": \"${CID}\", \"client_secret\": \"${CSECRET}\", \"scope\": \"a b\", "
        "\"client_auth\": \"form\", \"max_outage_s\": 5}"));
    const ef_recipe_t *rc = ef_recipes_get(r, "api");
    assert_int_equal(rc->auth.type, EF_RECIPE_AUTH_CLIENT_CREDENTIALS);
    assert_string_equal(rc->auth.token_url, "https://h/oauth/token");
    assert_string_equal(rc->auth.client_secret, "${CSECRET}");
    assert_string_equal(rc->auth.scope, "a b");
    assert_int_equal(rc->auth.client_auth, EF_RECIPE_AUTH_FORM);
    assert_int_equal(rc->auth.max_outage_s, 5);
    char *sum = ef_recipe_summary(rc);
    assert_non_null(strstr(sum, "\"auth\":{\"type\":\"oauth2_client_credentials\","
                                "\"token_url\":\"https://h/oauth/token\",\"scope\":\"a b\"}"));
    assert_null(strstr(sum, "CSECRET"));
    assert_null(strstr(sum, "CID"));
    free(sum);
    ef_recipes_free(r);

    r = parse_ok(AUTH_RECIPE("{\"type\": \"oauth2_client_credentials\", \"token_url\": "
                             "\"http://h/t\", \"client_id\": \"me\", \"client_secret\": \"${S}\"}"));
    rc = ef_recipes_get(r, "api");
    assert_int_equal(rc->auth.client_auth, EF_RECIPE_AUTH_BASIC);
    assert_int_equal(rc->auth.max_outage_s, EF_RECIPE_AUTH_OUTAGE_DEFAULT_S);
    assert_null(rc->auth.scope);
    ef_recipes_free(r);

    if (access("examples/oauth.json", R_OK) == 0) {
        char err[EF_ERR_LEN] = "";
        if (ef_recipes_load_file("examples/oauth.json", &r, err) != 0)
            fail_msg("%s", err);
        assert_int_equal(ef_recipes_get(r, "items")->auth.type, EF_RECIPE_AUTH_CLIENT_CREDENTIALS);
        ef_recipes_free(r);
    }

    static const char *const refused[][2] = {
        {"[]", "recipe 'api': auth: must be an object"},
        {"{\"type\": \"password\"}", "auth.type: must be \"oauth2_client_credentials\""},
        {"{\"type\": \"oauth2_client_credentials\", \"client_id\": \"a\", \"client_secret\": "
         "\"${S}\"}",
         "auth.token_url: required"},
        {"{\"type\": \"oauth2_client_credentials\", \"token_url\": \"ftp://h\", \"client_id\": "
         "\"a\", \"client_secret\": \"${S}\"}",
         "auth.token_url: must be an http:// or https:// URL"},
        {"{\"type\": \"oauth2_client_credentials\", \"token_url\": \"http://h\", "
         "\"client_secret\": \"${S}\"}",
         "auth.client_id: required"},
        {"{\"type\": \"oauth2_client_credentials\", \"token_url\": \"http://h\", \"client_id\": "
         "\"a\", \"client_secret\": \"hunter2\"}",
         "auth.client_secret: must be one ${ENV} placeholder"},
        {"{\"type\": \"oauth2_client_credentials\", \"token_url\": \"http://h\", \"client_id\": "
         "\"a\", \"client_secret\": \"x${S}\"}",
         "auth.client_secret: must be one ${ENV} placeholder"},
        {"{\"type\": \"oauth2_client_credentials\", \"token_url\": \"http://h/{id}\", "
         "\"client_id\": \"a\", \"client_secret\": \"${S}\"}",
         "auth.token_url: takes ${ENV} and {provider} only"},
        {"{\"type\": \"oauth2_client_credentials\", \"token_url\": \"http://h\", \"client_id\": "
         "\"a\", \"client_secret\": \"${S}\", \"client_auth\": \"digest\"}",
         "auth.client_auth: must be \"basic\" or \"form\""},
        {"{\"type\": \"oauth2_client_credentials\", \"token_url\": \"http://h\", \"client_id\": "
         "\"a\", \"client_secret\": \"${S}\", \"max_outage_s\": 0}",
         "auth.max_outage_s: must be an integer from 1 to 86400"},
        {"{\"type\": \"oauth2_client_credentials\", \"token_url\": \"http://h\", \"client_id\": "
         "\"a\", \"client_secret\": \"${S}\", \"secret\": 1}",
         "auth.secret: unknown field"},
    };
    for (size_t i = 0; i < EF_ARRAY_LEN(refused); i++) {
        char json[1024], err[EF_ERR_LEN] = "";
        ef_recipes_t *rr = NULL;
        snprintf(json, sizeof json,
                 "{\"providers\": {\"api\": {\"steps\": [{\"url\": \"http://h/x/{id}\"}], "
                 "\"extract\": {\"t\": \"/t\"}, \"auth\": %s}}}",
                 refused[i][0]);
        assert_int_equal(ef_recipes_parse(json, strlen(json), "providers.json", &rr, err), -1);
        if (!strstr(err, refused[i][1]))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, refused[i][1]);
    }
    /* a step that sends its own Authorization next to an auth block */
    const char *both =
        "{\"providers\": {\"api\": {\"steps\": [{\"url\": \"http://h/x/{id}\", \"headers\": "
        "{\"Authorization\": \"Bearer ${T}\"}}], \"extract\": {\"t\": \"/t\"}, \"auth\": "
        "{\"type\": \"oauth2_client_credentials\", \"token_url\": \"http://h\", \"client_id\": "
        "\"a\", \"client_secret\": \"${S}\"}}}}";
    char err[EF_ERR_LEN] = "";
    ef_recipes_t *rr = NULL;
    assert_int_equal(ef_recipes_parse(both, strlen(both), "providers.json", &rr, err), -1);
    assert_non_null(strstr(err, "sends its own Authorization header"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_tmdb),
        cmocka_unit_test(test_defaults_and_forms),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_template),
        cmocka_unit_test(test_template_defaults),
        cmocka_unit_test(test_template_filters),
        cmocka_unit_test(test_json_body),
        cmocka_unit_test(test_pointer),
        cmocka_unit_test(test_judge_single),
        cmocka_unit_test(test_judge_search),
        cmocka_unit_test(test_judge_empty_middle),
        cmocka_unit_test(test_judge_prefixes),
        cmocka_unit_test(test_judge_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
