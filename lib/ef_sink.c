// SPDX-License-Identifier: MIT
/*
 * The recipe's "sink" member: validation and the SQL of the PostgreSQL
 * sink (the design is in ef_sink.h, the user's view in docs/sinks.md).
 */
#include "ef_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_MAX 256 /* bytes, an entity field name */

void ef_sink_conf_free(ef_sink_conf_t *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->ncolumns; i++) {
        free(s->columns[i]);
        free(s->fields[i]);
    }
    free(s->columns);
    free(s->fields);
    free(s->url);
    free(s->table);
    free(s->table_name);
    free(s->key);
    free(s->key_field);
    free(s);
}

void ef_sink_quote_ident(ef_buf_t *out, const char *name) {
    ef_buf_appendc(out, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            ef_buf_appendc(out, '"');
        ef_buf_appendc(out, *p);
    }
    ef_buf_appendc(out, '"');
}

/* An identifier as written: 1 to 63 bytes, no control characters. */
static int ident_ok(const char *s, size_t n) {
    if (n < 1 || n > EF_SINK_IDENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int fail(char *path, size_t pathlen, const char *where, char *err, const char *msg) {
    snprintf(path, pathlen, "sink%s%s", *where ? "." : "", where);
    ef_seterr(err, "%s", msg);
    return -1;
}

/* Reads an optional string member; -1 when present and not a string. */
static int opt_str(const cJSON *o, const char *key, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return -1;
    *out = v->valuestring;
    return 0;
}

/* The URL template may hold ${ENV} placeholders only: entity fields have no
 * place in a connection string. */
static int url_ok(const char *u) {
    size_t n = strlen(u);
    if (n < 1 || n > EF_SINK_URL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f)
            return 0;
        if (u[i] == '{' && (i == 0 || u[i - 1] != '$'))
            return 0;
    }
    return 1;
}

static int has_extract(const ef_recipe_t *rc, const char *name) {
    for (size_t i = 0; rc && i < rc->nextract; i++)
        if (strcmp(rc->extract[i].name, name) == 0)
            return 1;
    return 0;
}

int ef_sink_conf_parse(const cJSON *v, const ef_recipe_t *rc, ef_sink_conf_t **out, char *path,
                       size_t pathlen, char *err) {
    static const char *const keys[] = {"type",    "url",  "table",    "key", "key_field",
                                       "columns", "mode", "conflict", NULL};
    const char *type, *url, *table, *key, *key_field, *mode, *conflict;
    const cJSON *cols;
    ef_sink_conf_t *s = NULL;
    char msg[EF_ERR_LEN];

    *out = NULL;
    if (!cJSON_IsObject(v))
        return fail(path, pathlen, "", err,
                    "must be an object {\"type\": \"postgres\", \"url\": \"${PG_URL}\", "
                    "\"table\": ..., \"key\": ..., \"columns\": {...}, \"mode\": ...}");
    for (const cJSON *k = v->child; k; k = k->next) {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k->string) != 0)
            i++;
        if (!keys[i])
            return fail(path, pathlen, k->string, err, "unknown field");
        for (const cJSON *e = v->child; e != k; e = e->next)
            if (strcmp(e->string, k->string) == 0)
                return fail(path, pathlen, k->string, err, "given twice");
    }
    if (opt_str(v, "type", &type) < 0 || !type ||
        (strcmp(type, "postgres") != 0 && strcmp(type, "postgresql") != 0))
        return fail(path, pathlen, "type", err, "required: \"postgres\"");
    if (opt_str(v, "url", &url) < 0 || !url)
        return fail(path, pathlen, "url", err,
                    "required: a connection URL, best from the environment (\"${PG_URL}\")");
    if (!url_ok(url))
        return fail(path, pathlen, "url", err,
                    "must be 1 to 4096 bytes without control characters; only ${ENV} "
                    "placeholders (no entity {field})");
    if (opt_str(v, "table", &table) < 0 || !table)
        return fail(path, pathlen, "table", err,
                    "required: a table name (\"movies\" or \"schema.movies\")");
    if (opt_str(v, "key", &key) < 0 || !key || !ident_ok(key, strlen(key)))
        return fail(path, pathlen, "key", err,
                    "required: the key column's name, 1 to 63 bytes without control characters");
    if (opt_str(v, "key_field", &key_field) < 0 ||
        (key_field && (!*key_field || strlen(key_field) > FIELD_MAX)))
        return fail(path, pathlen, "key_field", err,
                    "must be an entity field name (default \"id\")");
    if (opt_str(v, "mode", &mode) < 0 ||
        (mode && strcmp(mode, "update") != 0 && strcmp(mode, "upsert") != 0))
        return fail(path, pathlen, "mode", err, "must be \"update\" or \"upsert\"");
    if (opt_str(v, "conflict", &conflict) < 0 ||
        (conflict && strcmp(conflict, "overwrite") != 0 && strcmp(conflict, "keep") != 0))
        return fail(path, pathlen, "conflict", err, "must be \"overwrite\" or \"keep\"");
    cols = cJSON_GetObjectItemCaseSensitive(v, "columns");
    if (!cJSON_IsObject(cols) || !cols->child || cJSON_GetArraySize(cols) > EF_SINK_MAX_COLUMNS)
        return fail(path, pathlen, "columns", err,
                    "required: an object of 1 to 64 column -> extracted field");

    s = ef_calloc(1, sizeof *s);
    {
        /* "schema.table" or "table"; a name holding a dot cannot be written */
        const char *dot = strchr(table, '.');
        size_t n1 = dot ? (size_t)(dot - table) : strlen(table);
        ef_buf_t b;
        if (!ident_ok(table, n1) ||
            (dot && (strchr(dot + 1, '.') || !ident_ok(dot + 1, strlen(dot + 1))))) {
            ef_sink_conf_free(s);
            return fail(path, pathlen, "table", err,
                        "must be \"table\" or \"schema.table\", each name 1 to 63 bytes "
                        "without control characters");
        }
        ef_buf_init(&b);
        if (dot) {
            char *schema = ef_strndup(table, n1);
            ef_sink_quote_ident(&b, schema);
            free(schema);
            ef_buf_appendc(&b, '.');
            ef_sink_quote_ident(&b, dot + 1);
        } else {
            ef_sink_quote_ident(&b, table);
        }
        s->table = b.s;
    }
    s->table_name = ef_strdup(table);
    s->url = ef_strdup(url);
    s->key = ef_strdup(key);
    s->key_field = ef_strdup(key_field ? key_field : "id");
    s->mode = mode && strcmp(mode, "upsert") == 0 ? EF_SINK_UPSERT : EF_SINK_UPDATE;
    s->keep = conflict ? strcmp(conflict, "keep") == 0 : rc && rc->policy == EF_POLICY_KEEP;
    s->columns = ef_calloc((size_t)cJSON_GetArraySize(cols), sizeof *s->columns);
    s->fields = ef_calloc((size_t)cJSON_GetArraySize(cols), sizeof *s->fields);
    for (const cJSON *c = cols->child; c; c = c->next) {
        char where[128];
        snprintf(where, sizeof where, "columns.%.100s", c->string);
        if (!ident_ok(c->string, strlen(c->string))) {
            ef_sink_conf_free(s);
            return fail(path, pathlen, where, err,
                        "a column name must be 1 to 63 bytes without control characters");
        }
        if (strcmp(c->string, key) == 0) {
            ef_sink_conf_free(s);
            return fail(path, pathlen, where, err, "is the key column (it is never written)");
        }
        for (size_t i = 0; i < s->ncolumns; i++)
            if (strcmp(s->columns[i], c->string) == 0) {
                ef_sink_conf_free(s);
                return fail(path, pathlen, where, err, "given twice");
            }
        if (!cJSON_IsString(c) || !has_extract(rc, c->valuestring)) {
            snprintf(msg, sizeof msg, "must name a field of the recipe's \"extract\"%s%s%s",
                     cJSON_IsString(c) ? " ('" : "", cJSON_IsString(c) ? c->valuestring : "",
                     cJSON_IsString(c) ? "' is not one)" : "");
            ef_sink_conf_free(s);
            return fail(path, pathlen, where, err, msg);
        }
        s->columns[s->ncolumns] = ef_strdup(c->string);
        s->fields[s->ncolumns] = ef_strdup(c->valuestring);
        s->ncolumns++;
    }
    *out = s;
    return 0;
}

void ef_sink_conf_summary(const ef_sink_conf_t *s, cJSON *o) {
    if (!s)
        return;
    cJSON *k = cJSON_AddObjectToObject(o, "sink");
    cJSON_AddStringToObject(k, "type", "postgres");
    cJSON_AddStringToObject(k, "table", s->table_name);
    cJSON_AddStringToObject(k, "key", s->key);
    cJSON_AddStringToObject(k, "key_field", s->key_field);
    cJSON *cols = cJSON_AddObjectToObject(k, "columns");
    for (size_t i = 0; i < s->ncolumns; i++)
        cJSON_AddStringToObject(cols, s->columns[i], s->fields[i]);
    cJSON_AddStringToObject(k, "mode", s->mode == EF_SINK_UPSERT ? "upsert" : "update");
    cJSON_AddStringToObject(k, "conflict", s->keep ? "keep" : "overwrite");
}

/* ---- SQL ---- */

const char ef_sink_describe_sql[] =
    "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a "
    "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped";

size_t ef_sink_params_per_row(const ef_sink_conf_t *s) {
    return s->ncolumns + (s->mode == EF_SINK_UPDATE ? 2 : 1);
}

size_t ef_sink_rows_max(const ef_sink_conf_t *s) {
    size_t n = EF_SINK_MAX_PARAMS / ef_sink_params_per_row(s);
    return n < EF_SINK_MAX_ROWS ? n : EF_SINK_MAX_ROWS;
}

static void param(ef_buf_t *b, size_t n, const char *type) {
    char num[32];
    snprintf(num, sizeof num, "$%zu::", n);
    ef_buf_appends(b, num);
    ef_buf_appends(b, type);
}

/* SET c = COALESCE(new, ef_cur.c) (overwrite) or COALESCE(ef_cur.c, new)
 * (keep), for every column; src is "EXCLUDED" or "ef_v". */
static void set_list(const ef_sink_conf_t *s, const char *src, int by_position, ef_buf_t *b) {
    char num[32];
    for (size_t i = 0; i < s->ncolumns; i++) {
        ef_buf_t nw;
        ef_buf_init(&nw);
        ef_buf_appends(&nw, src);
        ef_buf_appendc(&nw, '.');
        if (by_position) {
            snprintf(num, sizeof num, "c%zu", i + 1);
            ef_buf_appends(&nw, num);
        } else {
            ef_sink_quote_ident(&nw, s->columns[i]);
        }
        ef_buf_appends(b, i ? ", " : " SET ");
        ef_sink_quote_ident(b, s->columns[i]);
        ef_buf_appends(b, " = COALESCE(");
        if (!s->keep) {
            ef_buf_appends(b, nw.s);
            ef_buf_appends(b, ", ");
        }
        ef_buf_appends(b, "ef_cur.");
        ef_sink_quote_ident(b, s->columns[i]);
        if (s->keep) {
            ef_buf_appends(b, ", ");
            ef_buf_appends(b, nw.s);
        }
        ef_buf_appendc(b, ')');
        ef_buf_free(&nw);
    }
}

void ef_sink_sql(const ef_sink_conf_t *s, const char *const *types, size_t nrows, ef_buf_t *out) {
    size_t p = 1;
    char num[32];
    ef_buf_reset(out);
    if (s->mode == EF_SINK_UPSERT) {
        ef_buf_appends(out, "INSERT INTO ");
        ef_buf_appends(out, s->table);
        ef_buf_appends(out, " AS ef_cur (");
        ef_sink_quote_ident(out, s->key);
        for (size_t i = 0; i < s->ncolumns; i++) {
            ef_buf_appends(out, ", ");
            ef_sink_quote_ident(out, s->columns[i]);
        }
        ef_buf_appends(out, ") VALUES ");
        for (size_t r = 0; r < nrows; r++) {
            ef_buf_appends(out, r ? ", (" : "(");
            for (size_t i = 0; i <= s->ncolumns; i++) {
                if (i)
                    ef_buf_appends(out, ", ");
                param(out, p++, types[i]);
            }
            ef_buf_appendc(out, ')');
        }
        ef_buf_appends(out, " ON CONFLICT (");
        ef_sink_quote_ident(out, s->key);
        ef_buf_appends(out, ") DO UPDATE");
        set_list(s, "EXCLUDED", 0, out);
        return;
    }
    ef_buf_appends(out, "UPDATE ");
    ef_buf_appends(out, s->table);
    ef_buf_appends(out, " AS ef_cur");
    set_list(s, "ef_v", 1, out);
    ef_buf_appends(out, " FROM (VALUES ");
    for (size_t r = 0; r < nrows; r++) {
        ef_buf_appends(out, r ? ", (" : "(");
        param(out, p++, "integer");
        for (size_t i = 0; i <= s->ncolumns; i++) {
            ef_buf_appends(out, ", ");
            param(out, p++, types[i]);
        }
        ef_buf_appendc(out, ')');
    }
    ef_buf_appends(out, ") AS ef_v (n, k");
    for (size_t i = 0; i < s->ncolumns; i++) {
        snprintf(num, sizeof num, ", c%zu", i + 1);
        ef_buf_appends(out, num);
    }
    ef_buf_appends(out, ") WHERE ef_cur.");
    ef_sink_quote_ident(out, s->key);
    ef_buf_appends(out, " = ef_v.k RETURNING ef_v.n");
}
