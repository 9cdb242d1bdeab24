// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: provider recipe parsing (ef_recipes_parse in
 * lib/ef_recipe.c).  The input is a whole recipe file, in an exactly sized
 * heap block (no NUL terminator).  A refusal must say why and name the
 * source; an accepted file must hold sane recipes (limits as documented in
 * docs/providers.md), give a summary that is JSON, and its templates must
 * fill (or fail with a reason) for a fixed entity, and its steps must judge
 * a fixed answer without trouble.
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

static cJSON *entity;
static const char answer[] = "{\"results\":[{\"id\":1,\"title\":\"A\",\"year\":1999}],"
                             "\"title\":\"A\",\"items\":[{\"id\":1},{\"id\":2}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("FUZZ_KEY", "s3cr3t value/&?", 1);
    entity = cJSON_Parse("{\"id\":\"1\",\"title\":\"A b\",\"year\":1999,\"ok\":true}");
    CHECK(entity);
    return 0;
}

static void fill(const char *tmpl, int enc) {
    char err[EF_ERR_LEN] = "";
    ef_buf_t out;
    ef_recipe_scope_t scope = {entity, NULL, NULL};
    ef_buf_init(&out);
    if (ef_template_fill(tmpl, &scope, enc, &out, err) == 0)
        CHECK(out.s && strlen(out.s) == out.len);
    else
        CHECK(err[0] != '\0');
    ef_buf_free(&out);
}

/* The summary stored in farm:providers never holds a secret's value (unless
 * the recipe itself spelled it out). */
static void check_recipe(const ef_recipe_t *rc, int secret_in_input) {
    char err[EF_ERR_LEN];
    CHECK(rc->name && rc->nsteps >= 1 && rc->nsteps <= EF_RECIPE_MAX_STEPS);
    CHECK(rc->nextract >= 1 && rc->result_key);
    CHECK(rc->timeout_ms >= 1 && rc->retries >= 0 && rc->max_body >= 1024);
    for (size_t i = 0; i < rc->nsteps; i++) {
        const ef_recipe_step_t *st = &rc->steps[i];
        CHECK(st->name && st->method && st->url);
        fill(st->url, 1);
        for (size_t h = 0; h < st->nheaders; h++)
            fill(st->headers[h], 0);
        if (st->body)
            fill(st->body, 0);
        ef_recipe_scope_t scope = {entity, NULL, NULL};
        cJSON *fields = NULL;
        ef_recipe_judge(rc, i, 200, answer, sizeof answer - 1, &scope, &fields, err);
        cJSON_Delete(fields);
        cJSON_Delete(scope.vars);
    }
    fill(rc->result_key, 0);
    char *sum = ef_recipe_summary(rc);
    CHECK(sum);
    cJSON *js = cJSON_Parse(sum);
    CHECK(cJSON_IsObject(js));
    if (!secret_in_input)
        CHECK(strstr(sum, "s3cr3t") == NULL);
    cJSON_Delete(js);
    free(sum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[EF_ERR_LEN] = "";
    ef_recipes_t *r = NULL;
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    if (ef_recipes_parse(buf, size, "fuzz.json", &r, err) == 0) {
        CHECK(r && ef_recipes_count(r) >= 1);
        for (size_t i = 0; i < ef_recipes_count(r); i++) {
            const ef_recipe_t *rc = ef_recipes_at(r, i);
            check_recipe(rc, memmem(buf, size, "s3cr3t", 6) != NULL);
            CHECK(ef_recipes_get(r, rc->name) != NULL);
        }
    } else {
        CHECK(r == NULL);
        CHECK(strncmp(err, "fuzz.json: ", 11) == 0);
    }
    ef_recipes_free(r);
    free(buf);
    return 0;
}
