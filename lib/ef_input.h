// SPDX-License-Identifier: MIT
/*
 * Streaming entity input for the enqueuer: plain lines (one id a line), CSV
 * with a header row, or NDJSON objects, from a file descriptor or memory.
 *
 * Each entity comes out as one JSON object on one line, "id" first, with
 * every other CSV column or NDJSON field kept (CSV values are strings), so a
 * provider recipe can use {title} and {year}.  Memory is bounded: one
 * record of at most EF_INPUT_MAX_RECORD bytes is held at a time, whatever
 * the input size.  A leading UTF-8 BOM is skipped; CRLF line ends are fine.
 *
 * ef_input_next() returns 1 with an entity, 0 at the end, EF_INPUT_BAD for a
 * bad record (err says "NAME:LINE: why"; the next call goes on with the next
 * record, which is how --skip-invalid works) and EF_INPUT_FATAL when nothing
 * more can be read (I/O error, a bad CSV header, an interrupt).
 */
#ifndef EF_INPUT_H
#define EF_INPUT_H

#include <stddef.h>

#include "ef_text.h"

#define EF_INPUT_MAX_RECORD (1u << 20) /* bytes of one record */
#define EF_INPUT_BAD (-1)
#define EF_INPUT_FATAL (-2)

typedef enum { EF_INPUT_LINES = 0, EF_INPUT_CSV, EF_INPUT_NDJSON } ef_input_format_t;

typedef struct ef_input_s ef_input_t;

/* A tick for a reader over a file descriptor: called every idle_ms while
 * input is read or awaited, however fast or slow it arrives, and after a
 * signal interrupted a read; returning non-zero stops the input
 * (EF_INPUT_FATAL "interrupted"). */
typedef int (*ef_input_idle_cb)(void *arg);

typedef struct {
    const char *record; /* JSON object text, no newline; valid until the next call */
    size_t record_len;
    const char *id;     /* the entity id; valid until the next call */
    size_t id_len;
    long line;          /* line where the record starts (1-based) */
} ef_entity_t;

/* name is used in messages ("movies.csv", "stdin").  id_field NULL = "id". */
ef_input_t *ef_input_open_fd(int fd, ef_input_format_t fmt, const char *id_field,
                             const char *name);
ef_input_t *ef_input_open_mem(const char *buf, size_t len, ef_input_format_t fmt,
                              const char *id_field, const char *name);
/* Memory input only: hand out at most step bytes per read, so tests can
 * split records at every position. */
void ef_input_set_read_step(ef_input_t *in, size_t step);
void ef_input_set_idle(ef_input_t *in, int idle_ms, ef_input_idle_cb cb, void *arg);
int ef_input_next(ef_input_t *in, ef_entity_t *out, char *err);
void ef_input_free(ef_input_t *in);

int ef_input_format_parse(const char *s, ef_input_format_t *out);
const char *ef_input_format_name(ef_input_format_t f);

#endif
