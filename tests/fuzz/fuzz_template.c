// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: URL template filling (ef_template_fill in
 * lib/ef_recipe.c).  The input is a template, a NUL byte, then the entity
 * as JSON (an object; anything else leaves the entity empty).  The template
 * is filled with and without percent-encoding, with saved variables and an
 * environment variables (${FUZZ_TOKEN}, ${FUZZ_CTRL}) in scope.  A fill
 * either succeeds with a NUL-free text where a template of literal text
 * alone comes out unchanged and raw substitutions add no control character
 * (they would split a header); or fails with a reason and an empty buffer.
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

static cJSON *vars;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("FUZZ_TOKEN", "s3cr3t-XYZ-123 /?&=", 1);
    setenv("FUZZ_CTRL", "a\r\nInjected: 1", 1);
    vars = cJSON_Parse("{\"movie_id\":603,\"ref\":\"a/b c\",\"flag\":false,\"big\":1e300}");
    CHECK(vars);
    return 0;
}

static int has_ctrl(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t tn = nul ? (size_t)(nul - data) : size;
    char *tmpl = malloc(tn + 1);
    memcpy(tmpl, data, tn);
    tmpl[tn] = '\0';
    cJSON *entity = NULL;
    if (nul) {
        size_t jn = size - tn - 1;
        char *js = malloc(jn ? jn : 1);
        memcpy(js, nul + 1, jn);
        entity = cJSON_ParseWithLength(js, jn);
        free(js);
    }
    if (!cJSON_IsObject(entity)) {
        cJSON_Delete(entity);
        entity = cJSON_CreateObject();
    }
    ef_recipe_scope_t scope = {entity, vars, NULL};
    for (int enc = 0; enc <= 1; enc++) {
        char err[EF_ERR_LEN] = "";
        ef_buf_t out;
        ef_buf_init(&out);
        if (ef_template_fill(tmpl, &scope, enc, &out, err) == 0) {
            CHECK(out.s && strlen(out.s) == out.len);
            if (!enc && !has_ctrl(tmpl, tn))
                CHECK(!has_ctrl(out.s, out.len));
            if (enc && tn > 0 && strcspn(tmpl, "{}$") == tn)
                CHECK(out.len == tn && memcmp(out.s, tmpl, tn) == 0);
        } else {
            CHECK(err[0] != '\0');
            CHECK(out.len == 0);
        }
        ef_buf_free(&out);
    }
    /* no scope at all: every {field} is missing */
    {
        char err[EF_ERR_LEN] = "";
        ef_buf_t out;
        ef_buf_init(&out);
        if (ef_template_fill(tmpl, NULL, 1, &out, err) != 0)
            CHECK(err[0] != '\0');
        ef_buf_free(&out);
    }
    cJSON_Delete(entity);
    free(tmpl);
    return 0;
}
