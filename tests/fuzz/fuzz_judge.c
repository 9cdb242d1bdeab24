// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: provider response handling (ef_recipe_judge in
 * lib/ef_recipe.c).  The input is the body of an answer, in an exactly
 * sized heap block (the judge must never read past body_len), judged for
 * both steps of two fixed two-step recipes (a TMDB-like search with a
 * unique match, then details; and a "first" search with a non-default
 * not-found status) under the statuses 200, 404, 429 and 500.  The verdict
 * must agree with the status, an error must say why, and the extracted
 * fields (plain, "*" mapped, escaped and whole-document pointers) must be an
 * object that prints.
 */
#include "ef_recipe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char recipes_json[] =
    "{\"providers\": {"
    " \"movies\": {"
    "  \"steps\": ["
    "   {\"name\": \"search\", \"url\": \"http://x/search?q={title}&y={year?}\","
    "    \"results\": \"/results\", \"match\": {\"title\": \"/title\", \"year\": \"/year\"},"
    "    \"as\": {\"movie_id\": \"/id\"}},"
    "   {\"name\": \"details\", \"url\": \"http://x/movie/{movie_id}\"}],"
    "  \"extract\": {\"title\": \"/title\", \"genres\": \"/genres/*/name\","
    "   \"cast\": \"/credits/cast/*/roles/*\", \"first\": \"/a/0\", \"esc\": \"/a~1b~0c\","
    "   \"whole\": \"\", \"deep\": \"/x/y/z/0/1\"},"
    "  \"max_body\": 65536},"
    " \"catalog\": {"
    "  \"steps\": ["
    "   {\"url\": \"http://x/find/{id}\", \"results\": \"\", \"select\": \"first\","
    "    \"match\": {\"id\": \"/code\"}, \"as\": {\"ref\": \"/ref\", \"n\": \"/n\"},"
    "    \"not_found_status\": 410},"
    "   {\"url\": \"http://x/item/{ref}\", \"not_found_status\": 404}],"
    "  \"extract\": {\"all\": \"/*\", \"name\": \"/name\", \"ids\": \"/items/*/id\"},"
    "  \"max_body\": 1024}}}";

static ef_recipes_t *recipes;
static cJSON *entity;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char err[EF_ERR_LEN];
    (void)argc;
    (void)argv;
    if (ef_recipes_parse(recipes_json, strlen(recipes_json), "fuzz", &recipes, err) != 0) {
        fprintf(stderr, "fixed recipe refused: %s\n", err);
        abort();
    }
    entity = cJSON_Parse("{\"id\":\"603\",\"title\":\" the MATRIX \",\"year\":1999}");
    CHECK(entity);
    return 0;
}

static void judge_one(const ef_recipe_t *rc, size_t step, long status, const char *body,
                      size_t len) {
    char err[EF_ERR_LEN] = "";
    cJSON *fields = NULL;
    ef_recipe_scope_t scope = {entity, NULL, NULL};
    if (step > 0) { /* what the first step would have saved */
        scope.vars = cJSON_CreateObject();
        cJSON_AddStringToObject(scope.vars, "movie_id", "603");
        cJSON_AddStringToObject(scope.vars, "ref", "r1");
    }
    ef_step_verdict_t v = ef_recipe_judge(rc, step, status, body, len, &scope, &fields, err);
    const ef_recipe_step_t *st = &rc->steps[step];
    if (status == st->not_found_status) {
        CHECK(v == EF_STEP_NOT_FOUND);
    } else if (status == 429 || status == 500) {
        CHECK(v == EF_STEP_RETRY && err[0]);
    } else if (status == 404) {
        CHECK(v == EF_STEP_ERROR && err[0]);
    }
    if (v == EF_STEP_ERROR || v == EF_STEP_CONFLICT)
        CHECK(err[0] != '\0');
    if (v == EF_STEP_DONE) {
        CHECK(step + 1 == rc->nsteps && status == 200);
        CHECK(cJSON_IsObject(fields));
        char *s = cJSON_PrintUnformatted(fields);
        CHECK(s != NULL);
        free(s);
    } else {
        CHECK(fields == NULL);
    }
    if (v == EF_STEP_NEXT) {
        CHECK(step + 1 < rc->nsteps);
        for (size_t i = 0; i < st->nsave; i++) {
            cJSON *sv = cJSON_GetObjectItemCaseSensitive(scope.vars, st->save[i].name);
            CHECK(cJSON_IsString(sv) || cJSON_IsNumber(sv) || cJSON_IsBool(sv));
        }
    }
    cJSON_Delete(fields);
    cJSON_Delete(scope.vars);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const long statuses[] = {200, 404, 429, 500};
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    for (size_t r = 0; r < ef_recipes_count(recipes); r++) {
        const ef_recipe_t *rc = ef_recipes_at(recipes, r);
        for (size_t step = 0; step < rc->nsteps; step++)
            for (size_t s = 0; s < sizeof statuses / sizeof statuses[0]; s++)
                judge_one(rc, step, statuses[s], body, size);
    }
    free(body);
    return 0;
}
