// SPDX-License-Identifier: MIT
/*
 * The results export, one line per entity, written the same way by
 * `enqueuer results` and statusd's GET /jobs/ID/results:
 *
 *   {"entity":{"id":"1",...},"outcome":"updated","result":{"price":456.13}}
 *
 * A chunk is exported from three Redis fields of the same number: its
 * entities (job:chunks, NDJSON), its outcome characters (job:outcomes) and
 * its result lines (job:results, "i<TAB>fields JSON" per entity that has
 * one).  The fields JSON is written by the worker from the extracted values
 * with their types (ef_export_fields_json): strings stay strings, numbers
 * numbers, arrays and objects JSON, so the export needs no decoding.
 */
#ifndef EF_EXPORT_H
#define EF_EXPORT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "ef_text.h"

/* Which entities to export: every one, or those with one outcome character
 * (EF_OUTCOME_NONE selects those with no outcome yet, "pending"). */
typedef struct {
    int only;     /* 0: every entity */
    char outcome; /* with only: the outcome character kept */
} ef_export_filter_t;

/* Appends one export line (with its newline) to out; result may be NULL. */
void ef_export_line(ef_buf_t *out, const char *entity, size_t elen, char outcome,
                    const char *result, size_t rlen);

/* Appends the lines of one chunk that pass the filter.  outcomes and results
 * may be NULL (nothing recorded yet).  Returns the entities in the chunk. */
long ef_export_chunk(ef_buf_t *out, const char *data, size_t dlen, const char *outcomes,
                     size_t olen, const char *results, size_t rlen, const ef_export_filter_t *f);

/* The fields JSON of one entity, from the extracted fields object (as
 * ef_recipe_judge gives it): one member per named field, the last of two
 * with one name winning, values with their JSON types.  Returns a new
 * string ("{}" for NULL or no field) the caller frees. */
char *ef_export_fields_json(const cJSON *fields);

/* ---- CSV (`enqueuer results ID --format csv`) ----
 *
 * RFC 4180: a header row, then one row per entity, CRLF line ends, a field
 * quoted (with "" for ") when it holds a comma, a quote, CR or LF.  The
 * columns are the entity's fields in the order first seen, then `outcome`,
 * then the result fields in the order first seen; a result field whose name
 * is already a column is named `result.NAME`.  The columns must be known
 * before the first row, so the caller scans every chunk once
 * (ef_export_csv_scan) and writes them in a second pass.  Values: a string
 * as it is, a number as its JSON text, true/false, null and a missing field
 * empty, an array or object as its compact JSON text. */
#define EF_EXPORT_CSV_COLS_MAX 1024 /* columns, entity and result together */

typedef struct {
    char **entity; /* entity field names, in order first seen */
    size_t nentity;
    char **result; /* result field names */
    size_t nresult;
    size_t cap_entity, cap_result;
} ef_export_csv_t;

void ef_export_csv_init(ef_export_csv_t *x);
void ef_export_csv_free(ef_export_csv_t *x);
/* Adds the field names of one chunk's entities and results.  0, or -1 (with
 * err) past EF_EXPORT_CSV_COLS_MAX columns. */
int ef_export_csv_scan(ef_export_csv_t *x, const char *data, size_t dlen, const char *results,
                       size_t rlen, char *err);
/* Appends the header row. */
void ef_export_csv_header(ef_buf_t *out, const ef_export_csv_t *x);
/* Appends the rows of one chunk (arguments as ef_export_chunk).  Returns
 * the entities in the chunk. */
long ef_export_csv_chunk(ef_buf_t *out, const ef_export_csv_t *x, const char *data, size_t dlen,
                         const char *outcomes, size_t olen, const char *results, size_t rlen);
/* Appends one field, quoted when RFC 4180 requires it. */
void ef_export_csv_field(ef_buf_t *out, const char *s, size_t len);

#endif
