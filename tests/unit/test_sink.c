// SPDX-License-Identifier: MIT
/*
 * Unit tests of the recipe's sink (lib/ef_sink.c): a valid block through
 * the recipe parser, every validation error with its field path, the
 * summary without the URL, identifier quoting, and the exact SQL of each
 * mode and conflict policy (values only ever as $n parameters).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_common.h"
#include "ef_recipe.h"
#include "ef_sink.h"
#include "ef_text.h"

#define RECIPE(SINK)                                                                               \
    "{\"providers\": {\"movies\": {\"steps\": [{\"method\": \"GET\", \"url\": "                    \
    "\"http://127.0.0.1:8088/item/{id}\"}], \"extract\": {\"title\": \"/title\", \"year\": "       \
    "\"/year\"}, \"sink\": " SINK "}}}"

#define GOOD                                                                                       \
    "{\"type\": \"postgres\", \"url\": \"${PG_URL}\", \"table\": \"public.movies\", \"key\": "     \
    "\"id\", \"columns\": {\"title\": \"title\", \"release year\": \"year\"}, \"mode\": "          \
    "\"upsert\"}"

static ef_recipes_t *parse(const char *json, char *err) {
    ef_recipes_t *r = NULL;
    if (ef_recipes_parse(json, strlen(json), "p.json", &r, err) != 0)
        return NULL;
    return r;
}

static void test_valid(void **st) {
    (void)st;
    char err[EF_ERR_LEN] = "";
    ef_recipes_t *r = parse(RECIPE(GOOD), err);
    assert_non_null(r);
    const ef_recipe_t *rc = ef_recipes_get(r, "movies");
    const ef_sink_conf_t *s = rc->sink;
    assert_non_null(s);
    assert_string_equal(s->table, "\"public\".\"movies\"");
    assert_string_equal(s->key, "id");
    assert_string_equal(s->key_field, "id");
    assert_int_equal(s->ncolumns, 2);
    assert_string_equal(s->columns[1], "release year");
    assert_string_equal(s->fields[1], "year");
    assert_int_equal(s->mode, EF_SINK_UPSERT);
    assert_int_equal(s->keep, 0);
    char *sum = ef_recipe_summary(rc);
    assert_non_null(strstr(sum, "\"sink\":{\"type\":\"postgres\",\"table\":\"public.movies\""));
    assert_null(strstr(sum, "PG_URL"));
    assert_null(strstr(sum, "url\":\"$"));
    free(sum);
    ef_recipes_free(r);
}

static void test_invalid(void **st) {
    (void)st;
    static const struct {
        const char *json, *want;
    } bad[] = {
        {RECIPE("[]"), "recipe 'movies': sink: must be an object"},
        {RECIPE("{\"type\": \"mysql\", \"url\": \"x\"}"), "sink.type: required: \"postgres\""},
        {RECIPE("{\"type\": \"postgres\"}"), "sink.url: required"},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"postgresql://{id}@h/db\", \"table\": \"t\", "
                "\"key\": \"id\", \"columns\": {\"title\": \"title\"}}"),
         "sink.url: must be 1 to 4096 bytes without control characters; only ${ENV}"},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"key\": \"id\", \"columns\": "
                "{\"title\": \"title\"}}"),
         "sink.table: required"},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"table\": \"a.b.c\", \"key\": "
                "\"id\", \"columns\": {\"title\": \"title\"}}"),
         "sink.table: must be \"table\" or \"schema.table\""},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"table\": \"t\", \"columns\": "
                "{\"title\": \"title\"}}"),
         "sink.key: required"},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"table\": \"t\", \"key\": \"id\"}"),
         "sink.columns: required"},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"table\": \"t\", \"key\": \"id\", "
                "\"columns\": {\"title\": \"rating\"}}"),
         "sink.columns.title: must name a field of the recipe's \"extract\" ('rating' is not one)"},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"table\": \"t\", \"key\": \"id\", "
                "\"columns\": {\"id\": \"title\"}}"),
         "sink.columns.id: is the key column"},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"table\": \"t\", \"key\": \"id\", "
                "\"columns\": {\"title\": \"title\"}, \"mode\": \"insert\"}"),
         "sink.mode: must be \"update\" or \"upsert\""},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"table\": \"t\", \"key\": \"id\", "
                "\"columns\": {\"title\": \"title\"}, \"conflict\": \"merge\"}"),
         "sink.conflict: must be \"overwrite\" or \"keep\""},
        {RECIPE("{\"type\": \"postgres\", \"url\": \"${U}\", \"table\": \"t\", \"key\": \"id\", "
                "\"columns\": {\"title\": \"title\"}, \"password\": \"x\"}"),
         "sink.password: unknown field"},
    };
    for (size_t i = 0; i < EF_ARRAY_LEN(bad); i++) {
        char err[EF_ERR_LEN] = "";
        ef_recipes_t *r = parse(bad[i].json, err);
        if (r || !strstr(err, bad[i].want))
            fail_msg("case %zu: want '%s', got '%s'", i, bad[i].want, err);
    }
}

static void test_quote(void **st) {
    (void)st;
    ef_buf_t b;
    ef_buf_init(&b);
    ef_sink_quote_ident(&b, "we\"ird; DROP TABLE x");
    assert_string_equal(b.s, "\"we\"\"ird; DROP TABLE x\"");
    ef_buf_free(&b);
}

static void test_sql(void **st) {
    (void)st;
    char err[EF_ERR_LEN] = "";
    ef_recipes_t *r = parse(RECIPE(GOOD), err);
    assert_non_null(r);
    ef_sink_conf_t *s = ef_recipes_get(r, "movies")->sink;
    const char *types[] = {"integer", "text", "smallint"};
    ef_buf_t b;
    ef_buf_init(&b);
    ef_sink_sql(s, types, 2, &b);
    assert_string_equal(
        b.s, "INSERT INTO \"public\".\"movies\" AS ef_cur (\"id\", \"title\", \"release year\") "
             "VALUES ($1::integer, $2::text, $3::smallint), ($4::integer, $5::text, $6::smallint) "
             "ON CONFLICT (\"id\") DO UPDATE SET \"title\" = COALESCE(EXCLUDED.\"title\", "
             "ef_cur.\"title\"), \"release year\" = COALESCE(EXCLUDED.\"release year\", "
             "ef_cur.\"release year\")");
    assert_int_equal(ef_sink_params_per_row(s), 3);
    s->mode = EF_SINK_UPDATE;
    s->keep = 1;
    ef_sink_sql(s, types, 1, &b);
    assert_string_equal(
        b.s, "UPDATE \"public\".\"movies\" AS ef_cur SET \"title\" = COALESCE(ef_cur.\"title\", "
             "ef_v.c1), \"release year\" = COALESCE(ef_cur.\"release year\", ef_v.c2) FROM "
             "(VALUES ($1::integer, $2::integer, $3::text, $4::smallint)) AS ef_v (n, k, c1, c2) "
             "WHERE ef_cur.\"id\" = ef_v.k RETURNING ef_v.n");
    assert_int_equal(ef_sink_params_per_row(s), 4);
    assert_int_equal(ef_sink_rows_max(s), 1000);
    ef_buf_free(&b);
    ef_recipes_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_sql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
