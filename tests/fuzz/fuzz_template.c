// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: template filling (ef_template_fill in lib/ef_recipe.c)
 * and its filters.  The input is a template, a NUL byte, then the entity as
 * JSON (an object; anything else leaves the entity empty).  The template is
 * filled in each place (raw, URL, JSON leaf, URL after {ids}), with saved
 * variables and environment variables (${FUZZ_TOKEN}, ${FUZZ_CTRL},
 * ${FUZZ_BASE}, ${NAME:-default}) in scope.  A fill
 * either succeeds with a NUL-free text where a template of literal text
 * alone comes out unchanged in a URL and raw substitutions add no control
 * character (they would split a header); or fails with a reason and an
 * empty buffer.  Then every entity field goes through the filters:
 * {k|json} must parse back as the JSON string holding the field's text
 * (invalid UTF-8 aside), {k|url} must hold only unreserved bytes and %XX,
 * and a "json" body made of the field must parse as JSON.
 */
#include "ef_recipe.h"

#include <ctype.h>

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
    setenv("FUZZ_BASE", "http://127.0.0.1:1/api", 1);
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

/* Whether s is valid UTF-8 (so that a JSON round trip must give it back). */
static int utf8_ok(const char *s) {
    int ok = 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        size_t n = c < 0x80                 ? 0
                   : c >= 0xC2 && c <= 0xDF ? 1
                   : c >= 0xE0 && c <= 0xEF ? 2
                   : c >= 0xF0 && c <= 0xF4 ? 3
                                            : 9;
        if (n == 9) {
            ok = 0;
            break;
        }
        for (size_t i = 1; ok && i <= n; i++) /* stops at the NUL too */
            if ((p[i] & 0xC0) != 0x80)
                ok = 0;
        if (!ok || (c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0) ||
            (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) {
            ok = 0;
            break;
        }
        p += n;
    }
    return ok;
}

/* Each string field k of the entity through {k|json}, {k|url} and a
 * "json" leaf. */
static void check_filters(const ef_recipe_scope_t *scope) {
    for (const cJSON *f = scope->entity->child; f; f = f->next) {
        char tmpl[160], err[EF_ERR_LEN];
        ef_buf_t out;
        if (!cJSON_IsString(f) || !f->string || strlen(f->string) > 64 ||
            strpbrk(f->string, "{}|?$"))
            continue;
        ef_buf_init(&out);
        snprintf(tmpl, sizeof tmpl, "{%s|json}", f->string);
        if (ef_template_fill(tmpl, scope, EF_TMPL_RAW, &out, err) == 0 &&
            cJSON_GetObjectItemCaseSensitive(scope->entity, f->string) == f) {
            cJSON *back = cJSON_Parse(out.s);
            CHECK(cJSON_IsString(back));
            if (utf8_ok(f->valuestring))
                CHECK(strcmp(back->valuestring, f->valuestring) == 0);
            cJSON_Delete(back);
        }
        snprintf(tmpl, sizeof tmpl, "{%s|url}", f->string);
        if (ef_template_fill(tmpl, scope, EF_TMPL_RAW, &out, err) == 0) {
            for (size_t i = 0; i < out.len; i++) {
                unsigned char c = (unsigned char)out.s[i];
                CHECK(isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
                      (c == '%' && i + 2 < out.len && isxdigit((unsigned char)out.s[i + 1]) &&
                       isxdigit((unsigned char)out.s[i + 2])));
            }
        }
        snprintf(tmpl, sizeof tmpl, "x {%s} y", f->string);
        if (ef_template_fill(tmpl, scope, EF_TMPL_JSON_LEAF, &out, err) == 0) {
            ef_buf_t lit;
            ef_buf_init(&lit);
            ef_json_quote(&lit, out.s);
            cJSON *back = cJSON_Parse(lit.s);
            CHECK(cJSON_IsString(back));
            cJSON_Delete(back);
            ef_buf_free(&lit);
        }
        ef_buf_free(&out);
    }
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
    for (int enc = EF_TMPL_RAW; enc <= EF_TMPL_URL_REST; enc++) {
        char err[EF_ERR_LEN] = "";
        ef_buf_t out;
        ef_buf_init(&out);
        if (ef_template_fill(tmpl, &scope, enc, &out, err) == 0) {
            CHECK(out.s && strlen(out.s) == out.len);
            if (enc != EF_TMPL_JSON_LEAF && !has_ctrl(tmpl, tn))
                CHECK(!has_ctrl(out.s, out.len));
            if (enc == EF_TMPL_URL && tn > 0 && strcspn(tmpl, "{}$") == tn)
                CHECK(out.len == tn && memcmp(out.s, tmpl, tn) == 0);
        } else {
            CHECK(err[0] != '\0');
            CHECK(out.len == 0);
        }
        ef_buf_free(&out);
    }
    check_filters(&scope);
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
