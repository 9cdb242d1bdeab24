// SPDX-License-Identifier: MIT
/*
 * A recipe's sink: where an updated entity's extracted fields are written
 * besides its result hash, today one PostgreSQL table (docs/sinks.md).
 * This module is pure (no network): it parses and validates the recipe's
 * "sink" member and builds the SQL the worker sends (worker/sink.c runs it
 * through lib/ef_pg).
 *
 *   "sink": {"type": "postgres", "url": "${PG_URL}", "table": "movies",
 *            "key": "id", "key_field": "id",
 *            "columns": {"title": "title", "year": "year"},
 *            "mode": "update"|"upsert", "conflict": "overwrite"|"keep"}
 *
 * Every identifier is double-quoted (a quote inside doubled), so it is taken
 * exactly as written; every value is a parameter ($n, text format, cast to
 * the column's type as the table describes it), never spliced into the SQL.
 * The cast is to the column's type without its modifier (varchar, not
 * varchar(7)): an explicit cast would cut a long text silently, while the
 * assignment to the column refuses it with an error.
 * A value the answer did not carry is NULL, and a NULL never overwrites a
 * column: overwrite sets COALESCE(new, old), keep sets COALESCE(old, new).
 *
 * The statements, for R rows of C columns:
 *   update: UPDATE t AS ef_cur SET c = COALESCE(..) FROM (VALUES ($1::int,
 *           $2::keytype, $3::type, ..), ..) AS ef_v(n, k, c1, ..)
 *           WHERE ef_cur.key = ef_v.k RETURNING ef_v.n
 *           (C + 2 parameters a row: the row's number, key, values; the
 *           numbers returned are the rows that exist)
 *   upsert: INSERT INTO t AS ef_cur (key, c..) VALUES ($1::keytype, ..), ..
 *           ON CONFLICT (key) DO UPDATE SET c = COALESCE(..)
 *           (C + 1 parameters a row)
 */
#ifndef EF_SINK_H
#define EF_SINK_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "ef_recipe.h"
#include "ef_text.h"

#define EF_SINK_MAX_COLUMNS 64
#define EF_SINK_IDENT_MAX 63     /* bytes, PostgreSQL's NAMEDATALEN - 1 */
#define EF_SINK_URL_MAX 4096     /* bytes */
#define EF_SINK_MAX_PARAMS 65535 /* PostgreSQL's limit per statement */
#define EF_SINK_MAX_ROWS 1000    /* rows per statement */

typedef enum { EF_SINK_UPDATE = 0, EF_SINK_UPSERT } ef_sink_mode_t;

struct ef_sink_conf_s {
    char *url;        /* template: ${ENV} only; the filled text is a secret */
    char *table;      /* quoted, schema-qualified when given so: "s"."t" */
    char *table_name; /* as written, for messages */
    char *key;        /* key column, as written */
    char *key_field;  /* entity field holding the key, default "id" */
    char **columns;   /* column names, as written */
    char **fields;    /* extracted field per column */
    size_t ncolumns;
    ef_sink_mode_t mode;
    int keep; /* conflict policy keep: a non-null column is not overwritten */
};
typedef struct ef_sink_conf_s ef_sink_conf_t;

/* Parses the recipe's "sink" member v (rc's extract already parsed: every
 * column's field must be one of its names).  Returns 0 with *out (the
 * caller frees it with ef_sink_conf_free), or -1 with path set to the field
 * ("sink.table") and err to the problem. */
int ef_sink_conf_parse(const cJSON *v, const ef_recipe_t *rc, ef_sink_conf_t **out, char *path,
                       size_t pathlen, char *err);
void ef_sink_conf_free(ef_sink_conf_t *s);

/* Adds the sink's summary for farm:providers to o: type, table, key,
 * columns, mode, conflict; never the URL. */
void ef_sink_conf_summary(const ef_sink_conf_t *s, cJSON *o);

/* Appends name as one quoted identifier. */
void ef_sink_quote_ident(ef_buf_t *out, const char *name);

/* Parameters a row takes in ef_sink_sql's statement, and the most rows one
 * statement may carry. */
size_t ef_sink_params_per_row(const ef_sink_conf_t *s);
size_t ef_sink_rows_max(const ef_sink_conf_t *s);

/* The statement that describes the table: $1 is the quoted table name;
 * rows (attname, type name without modifier). */
extern const char ef_sink_describe_sql[];

/* Builds the statement for nrows rows (1 .. ef_sink_rows_max) into out.
 * types[0] is the key column's type, types[1 + i] column i's, as
 * format_type() gave them (trusted: they come from the server's catalogue). */
void ef_sink_sql(const ef_sink_conf_t *s, const char *const *types, size_t nrows, ef_buf_t *out);

#endif
