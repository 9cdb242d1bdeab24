// SPDX-License-Identifier: MIT
/*
 * The results export lines (see ef_export.h), shared by the enqueuer and
 * statusd, and the typed fields JSON the worker stores for them.
 */
#include "ef_export.h"

#include "ef_common.h"
#include "ef_job.h"

#include <stdlib.h>
#include <string.h>

void ef_export_line(ef_buf_t *out, const char *entity, size_t elen, char outcome,
                    const char *result, size_t rlen) {
    ef_buf_appends(out, "{\"entity\":");
    ef_buf_append(out, entity, elen);
    ef_buf_appends(out, ",\"outcome\":\"");
    ef_buf_appends(out, ef_outcome_name(outcome));
    ef_buf_appendc(out, '"');
    if (result && rlen > 0) {
        ef_buf_appends(out, ",\"result\":");
        ef_buf_append(out, result, rlen);
    }
    ef_buf_appends(out, "}\n");
}

long ef_export_chunk(ef_buf_t *out, const char *data, size_t dlen, const char *outcomes,
                     size_t olen, const char *results, size_t rlen, const ef_export_filter_t *f) {
    const char *p = data, *end = data + dlen;
    long i = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            char oc = outcomes && (size_t)i < olen ? outcomes[i] : EF_OUTCOME_NONE;
            if (!ef_outcome_known(oc))
                oc = EF_OUTCOME_NONE;
            if (!f || !f->only || f->outcome == oc) {
                const char *rj = NULL;
                size_t rl = 0;
                if (!results || !ef_job_result_find(results, rlen, i, &rj, &rl))
                    rj = NULL;
                ef_export_line(out, p, n, oc, rj, rl);
            }
            i++;
        }
        p += n + 1;
    }
    return i;
}

char *ef_export_fields_json(const cJSON *fields) {
    ef_buf_t out;
    ef_buf_init(&out);
    ef_buf_appendc(&out, '{');
    for (const cJSON *f = cJSON_IsObject(fields) ? fields->child : NULL; f; f = f->next) {
        int later = 0;
        if (!f->string)
            continue;
        for (const cJSON *g = f->next; g && !later; g = g->next)
            later = g->string && strcmp(g->string, f->string) == 0;
        if (later)
            continue; /* the last of two with one name wins, as in the result hash */
        char *v = cJSON_PrintUnformatted(f);
        if (!v)
            continue;
        if (out.len > 1)
            ef_buf_appendc(&out, ',');
        ef_buf_append_json_str(&out, f->string, strlen(f->string));
        ef_buf_appendc(&out, ':');
        ef_buf_appends(&out, v);
        cJSON_free(v);
    }
    ef_buf_appendc(&out, '}');
    return out.s;
}

/* ---- CSV ---- */

void ef_export_csv_init(ef_export_csv_t *x) {
    memset(x, 0, sizeof *x);
}

void ef_export_csv_free(ef_export_csv_t *x) {
    if (!x)
        return;
    for (size_t i = 0; i < x->nentity; i++)
        free(x->entity[i]);
    for (size_t i = 0; i < x->nresult; i++)
        free(x->result[i]);
    free(x->entity);
    free(x->result);
    memset(x, 0, sizeof *x);
}

static int name_in(char *const *names, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return 1;
    return 0;
}

/* Adds the member names of a JSON object to one column list. */
static int csv_add_names(ef_export_csv_t *x, char ***names, size_t *n, size_t *cap,
                         const char *json, size_t len, char *err) {
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = 0;
    for (const cJSON *f = cJSON_IsObject(o) ? o->child : NULL; f; f = f->next) {
        if (!f->string || name_in(*names, *n, f->string))
            continue;
        if (x->nentity + x->nresult >= EF_EXPORT_CSV_COLS_MAX) {
            ef_seterr(err,
                      "more than %d distinct fields: too many columns for CSV (use "
                      "--format ndjson)",
                      EF_EXPORT_CSV_COLS_MAX);
            rc = -1;
            break;
        }
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            *names = ef_realloc(*names, *cap * sizeof **names);
        }
        (*names)[(*n)++] = ef_strdup(f->string);
    }
    cJSON_Delete(o);
    return rc;
}

int ef_export_csv_scan(ef_export_csv_t *x, const char *data, size_t dlen, const char *results,
                       size_t rlen, char *err) {
    const char *p = data, *end = data + dlen;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0 && csv_add_names(x, &x->entity, &x->nentity, &x->cap_entity, p, n, err) != 0)
            return -1;
        p += n + 1;
    }
    p = results;
    end = results ? results + rlen : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *tab = memchr(p, '\t', n);
        if (tab && csv_add_names(x, &x->result, &x->nresult, &x->cap_result, tab + 1,
                                 (size_t)(p + n - tab - 1), err) != 0)
            return -1;
        p += n + 1;
    }
    return 0;
}

void ef_export_csv_field(ef_buf_t *out, const char *s, size_t len) {
    int quote = 0;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        ef_buf_append(out, s, len);
        return;
    }
    ef_buf_appendc(out, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            ef_buf_appendc(out, '"');
        ef_buf_appendc(out, s[i]);
    }
    ef_buf_appendc(out, '"');
}

/* One value as a CSV field: strings as they are, null empty, the rest as
 * compact JSON. */
static void csv_value(ef_buf_t *out, const cJSON *v) {
    if (!v || cJSON_IsNull(v))
        return;
    if (cJSON_IsString(v)) {
        ef_export_csv_field(out, v->valuestring, strlen(v->valuestring));
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    if (s)
        ef_export_csv_field(out, s, strlen(s));
    cJSON_free(s);
}

void ef_export_csv_header(ef_buf_t *out, const ef_export_csv_t *x) {
    for (size_t i = 0; i < x->nentity; i++) {
        ef_export_csv_field(out, x->entity[i], strlen(x->entity[i]));
        ef_buf_appendc(out, ',');
    }
    ef_buf_appends(out, "outcome");
    for (size_t i = 0; i < x->nresult; i++) {
        const char *n = x->result[i];
        ef_buf_appendc(out, ',');
        if (strcmp(n, "outcome") == 0 || name_in(x->entity, x->nentity, n)) {
            ef_buf_t b;
            ef_buf_init(&b);
            ef_buf_appends(&b, "result.");
            ef_buf_appends(&b, n);
            ef_export_csv_field(out, b.s, b.len);
            ef_buf_free(&b);
        } else {
            ef_export_csv_field(out, n, strlen(n));
        }
    }
    ef_buf_appends(out, "\r\n");
}

long ef_export_csv_chunk(ef_buf_t *out, const ef_export_csv_t *x, const char *data, size_t dlen,
                         const char *outcomes, size_t olen, const char *results, size_t rlen) {
    const char *p = data, *end = data + dlen;
    long i = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            char oc = outcomes && (size_t)i < olen ? outcomes[i] : EF_OUTCOME_NONE;
            const char *rj = NULL;
            size_t rl = 0;
            cJSON *e = cJSON_ParseWithLength(p, n), *r = NULL;
            if (results && ef_job_result_find(results, rlen, i, &rj, &rl))
                r = cJSON_ParseWithLength(rj, rl);
            for (size_t c = 0; c < x->nentity; c++) {
                csv_value(out, cJSON_GetObjectItemCaseSensitive(e, x->entity[c]));
                ef_buf_appendc(out, ',');
            }
            ef_buf_appends(out, ef_outcome_name(ef_outcome_known(oc) ? oc : EF_OUTCOME_NONE));
            for (size_t c = 0; c < x->nresult; c++) {
                ef_buf_appendc(out, ',');
                csv_value(out, cJSON_GetObjectItemCaseSensitive(r, x->result[c]));
            }
            ef_buf_appends(out, "\r\n");
            cJSON_Delete(e);
            cJSON_Delete(r);
            i++;
        }
        p += n + 1;
    }
    return i;
}
