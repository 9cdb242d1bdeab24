// SPDX-License-Identifier: MIT
/*
 * Unit tests of the batch steps (lib/ef_batch.c): the "batch" block's
 * validation errors with their field paths, ids joined into a URL (percent-
 * encoded, separator, duplicates, the URL size cap) and into a JSON body
 * (ids or items), and answers split back by id (not found, several
 * answers, numbers as ids, statuses, malformed bodies).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_batch.h"
#include "ef_common.h"
#include "ef_recipe.h"
#include "ef_text.h"

#define QUERY_RECIPE                                                                               \
    "{\"providers\": {\"b\": {\"steps\": [{\"url\": \"http://h/items?ids={ids}&k=${BK}\", "        \
    "\"batch\": {\"max\": 3, \"ids\": \"query\", \"join\": \"|\", \"results\": \"/data\", "        \
    "\"id\": \"/id\"}}], \"extract\": {\"title\": \"/title\"}}}}"

#define JSON_RECIPE                                                                                \
    "{\"providers\": {\"p\": {\"steps\": [{\"method\": \"POST\", \"url\": \"http://h/bulk\", "     \
    "\"json\": {\"requests\": \"{ids}\", \"source\": \"{provider}\", \"n\": 1}, "                  \
    "\"batch\": {\"max\": 100, \"ids\": \"json\", \"item\": {\"id\": \"{id}\", \"e\": "            \
    "\"{email?}\"}, \"results\": \"/results\", \"id\": \"/id\"}}, "                                \
    "{\"url\": \"http://h/x/{v}\"}], \"extract\": {\"t\": \"/t\"}}}}"

static ef_recipes_t *parse_ok(const char *json) {
    ef_recipes_t *r = NULL;
    char err[EF_ERR_LEN] = "";
    if (ef_recipes_parse(json, strlen(json), "providers.json", &r, err) != 0)
        fail_msg("unexpected error: %s", err);
    return r;
}

static void test_parse(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(QUERY_RECIPE);
    const ef_batch_t *b = ef_recipes_get(r, "b")->steps[0].batch;
    assert_non_null(b);
    assert_int_equal(b->max, 3);
    assert_int_equal(b->ids, EF_BATCH_IDS_QUERY);
    assert_string_equal(b->join, "|");
    assert_string_equal(b->field, "id");
    assert_string_equal(b->results, "/data");
    assert_string_equal(b->id, "/id");
    assert_null(b->item);
    char *s = ef_recipe_summary(ef_recipes_get(r, "b"));
    assert_non_null(strstr(s, "\"batch\":3"));
    free(s);
    ef_recipes_free(r);
    r = parse_ok(JSON_RECIPE);
    b = ef_recipes_get(r, "p")->steps[0].batch;
    assert_int_equal(b->ids, EF_BATCH_IDS_JSON);
    assert_string_equal(b->join, ",");
    assert_non_null(b->item);
    assert_null(ef_recipes_get(r, "p")->steps[1].batch);
    ef_recipes_free(r);
}

#define STEP(s) "{\"providers\": {\"a\": {\"steps\": [" s "], \"extract\": {\"t\": \"/t\"}}}}"
#define QB(extra)                                                                                  \
    "{\"url\": \"http://h/?ids={ids}\", \"batch\": {\"ids\": \"query\", \"results\": \"/d\", "     \
    "\"id\": \"/id\"" extra "}}"

static const struct {
    const char *json;
    const char *want;
} bad[] = {
    {STEP("{\"url\": \"http://h/\", \"batch\": 5}"),
     "recipe 'a': steps[0].batch: must be an object"},
    {STEP(QB("")), "steps[0].batch.max: required"},
    {STEP(QB(", \"max\": 0")), "steps[0].batch.max: must be an integer from 1 to 1000"},
    {STEP(QB(", \"max\": 1001")), "steps[0].batch.max: must be an integer from 1 to 1000"},
    {STEP(QB(", \"max\": 2.5")), "steps[0].batch.max: must be an integer"},
    {STEP(QB(", \"max\": 5, \"size\": 5")), "steps[0].batch.size: unknown field"},
    {STEP(QB(", \"max\": 5, \"max\": 6")), "steps[0].batch.max: given twice"},
    {STEP(
         "{\"url\": \"http://h/\", \"batch\": {\"max\": 5, \"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].batch.ids: required"},
    {STEP("{\"url\": \"http://h/\", \"batch\": {\"max\": 5, \"ids\": \"path\", \"results\": "
          "\"/d\", \"id\": \"/id\"}}"),
     "steps[0].batch.ids: must be \"query\" or \"json\""},
    {STEP(QB(", \"max\": 5, \"join\": \"\"")), "steps[0].batch.join: must be 1 to 8 bytes"},
    {STEP(QB(", \"max\": 5, \"join\": \" \"")), "steps[0].batch.join: must be printable ASCII"},
    {STEP(QB(", \"max\": 5, \"item\": {}")), "steps[0].batch.item: only with \"ids\": \"json\""},
    {STEP(QB(", \"max\": 5, \"field\": \"a b\"")), "steps[0].batch.field: must be an entity field"},
    {STEP("{\"url\": \"http://h/\", \"method\": \"POST\", \"json\": {\"a\": \"{ids}\"}, "
          "\"batch\": {\"max\": 5, \"ids\": \"json\", \"item\": {\"x\": [\"{id|bad}\"]}, "
          "\"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].batch.item: unknown filter"},
    {STEP("{\"url\": \"http://h/?ids={ids}\", \"batch\": {\"max\": 5, \"ids\": \"query\", "
          "\"id\": \"/id\"}}"),
     "steps[0].batch.results: required"},
    {STEP("{\"url\": \"http://h/?ids={ids}\", \"batch\": {\"max\": 5, \"ids\": \"query\", "
          "\"results\": \"d\", \"id\": \"/id\"}}"),
     "steps[0].batch.results: must be a JSON Pointer"},
    {STEP("{\"url\": \"http://h/?ids={ids}\", \"batch\": {\"max\": 5, \"ids\": \"query\", "
          "\"results\": \"/d\"}}"),
     "steps[0].batch.id: required"},
    {STEP("{\"url\": \"http://h/?ids=\", \"batch\": {\"max\": 5, \"ids\": \"query\", "
          "\"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].url: must hold {ids} once"},
    {STEP("{\"url\": \"http://h/?ids={ids}&t={title}\", \"batch\": {\"max\": 5, \"ids\": "
          "\"query\", \"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].url: {title}: a batch request is shared by its entities"},
    {STEP("{\"url\": \"http://h/?ids={ids}\", \"headers\": [\"X: {name}\"], \"batch\": {\"max\": "
          "5, \"ids\": \"query\", \"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].headers: {name}: a batch step's headers"},
    {STEP("{\"url\": \"http://h/?ids={ids}\", \"results\": \"/r\", \"batch\": {\"max\": 5, "
          "\"ids\": \"query\", \"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].results: a batch step reads its answers with batch.results"},
    {STEP("{\"url\": \"http://h/\", \"method\": \"POST\", \"json\": {\"a\": \"{id}\"}, "
          "\"batch\": {\"max\": 5, \"ids\": \"json\", \"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].json: {id}: a batch step's json body"},
    {STEP("{\"url\": \"http://h/\", \"method\": \"POST\", \"json\": {\"a\": 1}, "
          "\"batch\": {\"max\": 5, \"ids\": \"json\", \"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].json: needs exactly one string leaf \"{ids}\""},
    {STEP("{\"url\": \"http://h/{ids}\", \"method\": \"POST\", \"json\": {\"a\": \"{ids}\"}, "
          "\"batch\": {\"max\": 5, \"ids\": \"json\", \"results\": \"/d\", \"id\": \"/id\"}}"),
     "steps[0].url: {ids} goes in the json body"},
    {STEP("{\"url\": \"http://h/{id}\"}, " QB(", \"max\": 5")),
     "steps[1].batch: only the first step can be a batch step"},
};

static void test_bad(void **st) {
    (void)st;
    for (size_t i = 0; i < EF_ARRAY_LEN(bad); i++) {
        ef_recipes_t *r = (ef_recipes_t *)1;
        char err[EF_ERR_LEN] = "";
        int rc = ef_recipes_parse(bad[i].json, strlen(bad[i].json), "providers.json", &r, err);
        if (rc != -1 || r != NULL || !strstr(err, bad[i].want))
            fail_msg("case %zu: rc=%d err='%s', want '%s'", i, rc, err, bad[i].want);
    }
}

static void test_join_url(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(QUERY_RECIPE);
    const ef_recipe_step_t *s = &ef_recipes_get(r, "b")->steps[0];
    cJSON *defaults = cJSON_Parse("{\"provider\": \"b\"}");
    ef_recipe_scope_t scope = {NULL, NULL, defaults};
    const char *ids[] = {"1", "a b/c", "1", "é|x"};
    ef_buf_t out;
    size_t used = 0;
    char err[EF_ERR_LEN] = "";
    ef_buf_init(&out);
    setenv("BK", "k&1", 1);
    assert_int_equal(ef_batch_fill_url(s, ids, 4, &scope, &out, &used, err), 0);
    /* each id percent-encoded, the separator as it is, "1" once */
    assert_string_equal(out.s, "http://h/items?ids=1|a%20b%2Fc|%C3%A9%7Cx&k=k%261");
    assert_int_equal(used, 4);
    unsetenv("BK");
    assert_int_equal(ef_batch_fill_url(s, ids, 1, &scope, &out, &used, err), -1);
    assert_non_null(strstr(err, "BK"));
    setenv("BK", "k", 1);
    /* the URL stays under EF_BATCH_URL_MAX_BYTES: the rest waits */
    char big[3][3000];
    for (int i = 0; i < 3; i++) {
        memset(big[i], 'u' + i, sizeof big[i] - 1);
        big[i][sizeof big[i] - 1] = '\0';
    }
    const char *many[] = {big[0], "y", big[1], big[2], "z"};
    assert_int_equal(ef_batch_fill_url(s, many, 5, &scope, &out, &used, err), 0);
    assert_int_equal(used, 3);
    assert_true(out.len < EF_BATCH_URL_MAX_BYTES);
    char huge[EF_BATCH_URL_MAX_BYTES];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    const char *one[] = {huge};
    assert_int_equal(ef_batch_fill_url(s, one, 1, &scope, &out, &used, err), -1);
    assert_non_null(strstr(err, "longer than"));
    unsetenv("BK");
    ef_buf_free(&out);
    cJSON_Delete(defaults);
    ef_recipes_free(r);
}

static void test_join_json(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(JSON_RECIPE);
    const ef_recipe_step_t *s = &ef_recipes_get(r, "p")->steps[0];
    cJSON *defaults = cJSON_Parse("{\"provider\": \"p\"}");
    ef_recipe_scope_t scope = {NULL, NULL, defaults};
    cJSON *e[3] = {cJSON_Parse("{\"id\": \"a\\\"1\", \"email\": \"x@y\"}"),
                   cJSON_Parse("{\"id\": 42}"), cJSON_Parse("{\"id\": \"a\\\"1\"}")};
    const char *ids[3];
    char nums[3][64], err[EF_ERR_LEN] = "";
    for (int i = 0; i < 3; i++)
        assert_int_equal(ef_batch_entity_check(s, e[i], &scope, nums[i], 64, &ids[i], err), 0);
    assert_string_equal(ids[1], "42");
    ef_buf_t out;
    ef_buf_init(&out);
    assert_int_equal(ef_batch_fill_body(s, e, ids, 3, &scope, &out, err), 0);
    assert_string_equal(out.s,
                        "{\"requests\":[{\"id\":\"a\\\"1\",\"e\":\"x@y\"},{\"id\":42,\"e\":null}],"
                        "\"source\":\"p\",\"n\":1}");
    cJSON *doc = cJSON_Parse(out.s);
    assert_non_null(doc); /* valid JSON by construction */
    cJSON_Delete(doc);
    /* an entity without its id field cannot be asked */
    cJSON *none = cJSON_Parse("{\"title\": \"x\"}");
    const char *id = "?";
    assert_int_equal(ef_batch_entity_check(s, none, &scope, nums[0], 64, &id, err), -1);
    assert_null(id);
    assert_non_null(strstr(err, "no usable 'id'"));
    cJSON_Delete(none);
    ef_buf_free(&out);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(e[i]);
    cJSON_Delete(defaults);
    ef_recipes_free(r);
}

static void test_split(void **st) {
    (void)st;
    ef_recipes_t *r = parse_ok(QUERY_RECIPE);
    const ef_recipe_t *rc = ef_recipes_get(r, "b");
    const ef_recipe_step_t *s = &rc->steps[0];
    ef_batch_split_t sp;
    char err[EF_ERR_LEN] = "";
    size_t n;
    const char *body = "{\"data\": [{\"id\": \"b\", \"title\": \"B\"}, {\"id\": 7, \"title\": "
                       "\"Seven\"}, {\"title\": \"no id\"}, {\"id\": \"d\", \"title\": \"D1\"}, "
                       "{\"id\": \"d\", \"title\": \"D2\"}, {\"id\": [1]}]}";
    assert_int_equal(ef_batch_judge(s, 200, body, strlen(body), 1 << 20, &sp, err), EF_BATCH_SPLIT);
    assert_int_equal(sp.n, 4);
    assert_int_equal(sp.skipped, 2);
    cJSON *el = ef_batch_find(&sp, "7", &n);
    assert_int_equal(n, 1);
    cJSON *fields = NULL;
    ef_recipe_scope_t scope = {NULL, NULL, NULL};
    assert_int_equal(ef_recipe_judge_node(rc, 0, el, &scope, &fields, err), EF_STEP_DONE);
    assert_string_equal(cJSON_GetObjectItem(fields, "title")->valuestring, "Seven");
    cJSON_Delete(fields);
    assert_non_null(ef_batch_find(&sp, "b", &n));
    assert_int_equal(n, 1);
    assert_null(ef_batch_find(&sp, "c", &n)); /* not in the answer: not_found */
    assert_int_equal(n, 0);
    assert_null(ef_batch_find(&sp, "B", &n)); /* ids compare exactly */
    assert_non_null(ef_batch_find(&sp, "d", &n));
    assert_int_equal(n, 2); /* two answers: a conflict */
    ef_batch_split_free(&sp);
    ef_batch_split_free(&sp);

    assert_int_equal(ef_batch_judge(s, 200, "{\"data\": []}", 12, 1 << 20, &sp, err),
                     EF_BATCH_SPLIT);
    assert_int_equal(sp.n, 0);
    ef_batch_split_free(&sp);
    assert_int_equal(ef_batch_judge(s, 404, "", 0, 1 << 20, &sp, err), EF_BATCH_NOT_FOUND);
    assert_int_equal(ef_batch_judge(s, 503, "", 0, 1 << 20, &sp, err), EF_BATCH_RETRY);
    assert_int_equal(ef_batch_judge(s, 429, "", 0, 1 << 20, &sp, err), EF_BATCH_RETRY);
    assert_int_equal(ef_batch_judge(s, 400, "", 0, 1 << 20, &sp, err), EF_BATCH_UNUSABLE);
    assert_string_equal(err, "HTTP 400");
    assert_int_equal(ef_batch_judge(s, 200, "{\"data\": {}}", 12, 1 << 20, &sp, err),
                     EF_BATCH_UNUSABLE);
    assert_string_equal(err, "no array at /data");
    assert_int_equal(ef_batch_judge(s, 200, "{\"data\": [", 10, 1 << 20, &sp, err),
                     EF_BATCH_UNUSABLE);
    assert_non_null(strstr(err, "malformed JSON"));
    /* every prefix of a good body is judged without reading past it */
    size_t len = strlen(body);
    for (size_t k = 0; k < len; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, body, k);
        ef_batch_verdict_t v = ef_batch_judge(s, 200, copy, k, 1 << 20, &sp, err);
        assert_int_equal(v, EF_BATCH_UNUSABLE);
        ef_batch_split_free(&sp);
        free(copy);
    }
    ef_recipes_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),    cmocka_unit_test(test_bad),
        cmocka_unit_test(test_join_url), cmocka_unit_test(test_join_json),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
