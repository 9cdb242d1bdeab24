// SPDX-License-Identifier: MIT
/*
 * The enqueuer's streaming parsers (see ef_input.h): a small buffered
 * reader over a file descriptor (poll(2) with an idle callback, so a slow
 * producer on stdin still lets the enqueuer send heartbeats) or over memory
 * (tests, fuzzers), and three record formats on top of it.
 */
#include "ef_input.h"

#include "ef_common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RBUF_SIZE (64u * 1024)
#define CSV_MAX_FIELDS 16384 /* fields of one CSV record (a spreadsheet's column limit) */

struct ef_input_s {
    int fd; /* -1 when reading memory */
    const char *mem;
    size_t mem_len;
    size_t mem_pos;
    size_t mem_step; /* hand out at most this many bytes per read (tests) */
    char *own;   /* read buffer when reading a fd */
    const char *rbuf;
    size_t rpos, rlen;
    int eof;
    int fatal;
    ef_input_format_t fmt;
    char *id_field;
    char name[128];
    long line; /* newlines consumed so far */
    int idle_ms;
    ef_input_idle_cb idle_cb;
    void *idle_arg;
    uint64_t idle_last; /* ef_mono_ms() of the last idle_cb call (or the first read) */
    /* CSV header */
    int have_header;
    int ncols;
    char **cols;
    int id_col;
    int id_named_col; /* column literally called "id" when id_field is another */
    /* current record */
    ef_buf_t rec;
    size_t *fofs;
    size_t *flen;
    int fcap;
    int nf;
    ef_buf_t out;
    ef_buf_t idbuf;
};

static ef_input_t *input_new(ef_input_format_t fmt, const char *id_field, const char *name) {
    ef_input_t *in = ef_calloc(1, sizeof *in);
    in->fd = -1;
    in->fmt = fmt;
    in->id_field = ef_strdup(id_field && *id_field ? id_field : "id");
    snprintf(in->name, sizeof in->name, "%s", name ? name : "input");
    in->id_col = -1;
    in->id_named_col = -1;
    ef_buf_init(&in->rec);
    ef_buf_init(&in->out);
    ef_buf_init(&in->idbuf);
    return in;
}

ef_input_t *ef_input_open_fd(int fd, ef_input_format_t fmt, const char *id_field,
                             const char *name) {
    ef_input_t *in = input_new(fmt, id_field, name);
    in->fd = fd;
    in->own = ef_malloc(RBUF_SIZE);
    in->rbuf = in->own;
    return in;
}

ef_input_t *ef_input_open_mem(const char *buf, size_t len, ef_input_format_t fmt,
                              const char *id_field, const char *name) {
    ef_input_t *in = input_new(fmt, id_field, name);
    in->mem = buf;
    in->mem_len = len;
    return in;
}

void ef_input_set_read_step(ef_input_t *in, size_t step) { in->mem_step = step; }

void ef_input_set_idle(ef_input_t *in, int idle_ms, ef_input_idle_cb cb, void *arg) {
    in->idle_ms = idle_ms;
    in->idle_cb = cb;
    in->idle_arg = arg;
}

void ef_input_free(ef_input_t *in) {
    if (!in)
        return;
    for (int i = 0; i < in->ncols; i++)
        free(in->cols[i]);
    free(in->cols);
    free(in->fofs);
    free(in->flen);
    free(in->own);
    free(in->id_field);
    ef_buf_free(&in->rec);
    ef_buf_free(&in->out);
    ef_buf_free(&in->idbuf);
    free(in);
}

int ef_input_format_parse(const char *s, ef_input_format_t *out) {
    if (strcmp(s, "lines") == 0)
        *out = EF_INPUT_LINES;
    else if (strcmp(s, "csv") == 0)
        *out = EF_INPUT_CSV;
    else if (strcmp(s, "ndjson") == 0 || strcmp(s, "jsonl") == 0)
        *out = EF_INPUT_NDJSON;
    else
        return -1;
    return 0;
}

const char *ef_input_format_name(ef_input_format_t f) {
    return f == EF_INPUT_CSV ? "csv" : f == EF_INPUT_NDJSON ? "ndjson" : "lines";
}

/* ---- the byte reader ---- */

/* Makes bytes available: 1 when there are some, 0 at the end, -1 on a fatal
 * error (message in err). */
static int fill(ef_input_t *in, char *err) {
    if (in->rpos < in->rlen)
        return 1;
    if (in->eof)
        return 0;
    if (in->fd < 0) {
        size_t left = in->mem_len - in->mem_pos;
        size_t step = in->mem_step ? in->mem_step : left;
        if (left == 0) {
            in->eof = 1;
            return 0;
        }
        in->rbuf = in->mem + in->mem_pos;
        in->rpos = 0;
        in->rlen = step < left ? step : left;
        in->mem_pos += in->rlen;
    } else {
        for (;;) {
            if (in->idle_ms > 0) {
                /* a tick every idle_ms whatever the input does: a slow
                 * producer may send a byte now and then, never a record */
                uint64_t now = ef_mono_ms();
                if (in->idle_last == 0)
                    in->idle_last = now;
                if (now - in->idle_last >= (uint64_t)in->idle_ms) {
                    in->idle_last = now;
                    if (in->idle_cb && in->idle_cb(in->idle_arg)) {
                        ef_seterr(err, "%s: interrupted", in->name);
                        return -1;
                    }
                    continue;
                }
                struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
                int pr = poll(&pfd, 1, in->idle_ms - (int)(now - in->idle_last));
                if (pr == 0)
                    continue;
                if (pr < 0 && errno == EINTR) {
                    in->idle_last = ef_mono_ms();
                    if (in->idle_cb && in->idle_cb(in->idle_arg)) {
                        ef_seterr(err, "%s: interrupted", in->name);
                        return -1;
                    }
                    continue;
                }
            }
            ssize_t n = read(in->fd, in->own, RBUF_SIZE);
            if (n < 0 && errno == EINTR) {
                if (in->idle_cb && in->idle_cb(in->idle_arg)) {
                    ef_seterr(err, "%s: interrupted", in->name);
                    return -1;
                }
                continue;
            }
            if (n < 0) {
                ef_seterr(err, "%s: read error: %s", in->name, strerror(errno));
                return -1;
            }
            if (n == 0) {
                in->eof = 1;
                return 0;
            }
            in->rpos = 0;
            in->rlen = (size_t)n;
            break;
        }
    }
    return in->rpos < in->rlen ? 1 : fill(in, err);
}

/* Reads one physical line (without its newline and a trailing CR) into
 * in->rec.  Returns 1, 0 at the end, -1 fatal.  A line over the record cap
 * is consumed whole but not stored; *too_long tells. */
static int read_line(ef_input_t *in, int *too_long, char *err) {
    int got = 0;
    ef_buf_reset(&in->rec);
    *too_long = 0;
    for (;;) {
        int r = fill(in, err);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got = 1;
        const char *p = in->rbuf + in->rpos;
        size_t avail = in->rlen - in->rpos;
        const char *nl = memchr(p, '\n', avail);
        size_t take = nl ? (size_t)(nl - p) : avail;
        if (!*too_long) {
            if (in->rec.len + take > EF_INPUT_MAX_RECORD)
                *too_long = 1;
            else
                ef_buf_append(&in->rec, p, take);
        }
        in->rpos += take + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!got)
        return 0;
    in->line++;
    if (in->line == 1 && in->rec.len >= 3 && memcmp(in->rec.s, "\xef\xbb\xbf", 3) == 0) {
        memmove(in->rec.s, in->rec.s + 3, in->rec.len - 2); /* a UTF-8 BOM */
        in->rec.len -= 3;
    }
    if (in->rec.len && in->rec.s[in->rec.len - 1] == '\r')
        in->rec.s[--in->rec.len] = '\0';
    if (!in->rec.s)
        ef_buf_append(&in->rec, "", 0);
    return 1;
}

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* Fills out->id and starts in->out with {"id":"..." after checking the id. */
static int begin_entity(ef_input_t *in, const char *id, size_t n, long line, char *err) {
    char why[EF_ERR_LEN];
    if (ef_entity_id_check(id, n, why) != 0) {
        ef_seterr(err, "%s:%ld: %s", in->name, line, why);
        return -1;
    }
    ef_buf_reset(&in->idbuf);
    ef_buf_append(&in->idbuf, id, n);
    ef_buf_reset(&in->out);
    ef_buf_append(&in->out, "{\"id\":", 6);
    ef_buf_append_json_str(&in->out, id, n);
    return 0;
}

static void finish_entity(ef_input_t *in, ef_entity_t *e, long line) {
    ef_buf_appendc(&in->out, '}');
    e->record = in->out.s;
    e->record_len = in->out.len;
    e->id = in->idbuf.s;
    e->id_len = in->idbuf.len;
    e->line = line;
}

/* ---- plain lines ---- */

static int next_line_entity(ef_input_t *in, ef_entity_t *e, char *err) {
    for (;;) {
        int too_long;
        int r = read_line(in, &too_long, err);
        if (r <= 0)
            return r < 0 ? EF_INPUT_FATAL : 0;
        if (too_long) {
            ef_seterr(err, "%s:%ld: line is longer than %u bytes", in->name, in->line,
                      EF_INPUT_MAX_RECORD);
            return EF_INPUT_BAD;
        }
        const char *s = in->rec.s;
        size_t n = in->rec.len;
        trim(&s, &n);
        if (n == 0)
            continue;
        if (begin_entity(in, s, n, in->line, err) != 0)
            return EF_INPUT_BAD;
        finish_entity(in, e, in->line);
        return 1;
    }
}

/* ---- NDJSON ---- */

static int next_ndjson_entity(ef_input_t *in, ef_entity_t *e, char *err) {
    for (;;) {
        int too_long;
        size_t bad;
        int r = read_line(in, &too_long, err);
        long line = in->line;
        if (r <= 0)
            return r < 0 ? EF_INPUT_FATAL : 0;
        if (too_long) {
            ef_seterr(err, "%s:%ld: line is longer than %u bytes", in->name, line,
                      EF_INPUT_MAX_RECORD);
            return EF_INPUT_BAD;
        }
        const char *s = in->rec.s;
        size_t n = in->rec.len;
        trim(&s, &n);
        if (n == 0)
            continue;
        if (memchr(s, '\0', n)) {
            ef_seterr(err, "%s:%ld: NUL byte in line", in->name, line);
            return EF_INPUT_BAD;
        }
        if (!ef_utf8_valid(s, n, &bad)) {
            ef_seterr(err, "%s:%ld: invalid UTF-8 at byte %zu", in->name, line, bad + 1);
            return EF_INPUT_BAD;
        }
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(s, n, &end, 0);
        if (!obj || (end && end != s + n)) {
            size_t at = obj ? (size_t)(end - s) : (size_t)(cJSON_GetErrorPtr() ? 0 : 0);
            cJSON_Delete(obj);
            ef_seterr(err, "%s:%ld: malformed JSON%s", in->name, line,
                      at ? " (trailing characters)" : "");
            return EF_INPUT_BAD;
        }
        if (!cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            ef_seterr(err, "%s:%ld: not a JSON object", in->name, line);
            return EF_INPUT_BAD;
        }
        cJSON *idv = cJSON_GetObjectItemCaseSensitive(obj, in->id_field);
        char num[32];
        const char *id = NULL;
        size_t idn = 0;
        if (cJSON_IsString(idv)) {
            id = idv->valuestring;
            idn = strlen(id);
        } else if (cJSON_IsNumber(idv) && idv->valuedouble == floor(idv->valuedouble) &&
                   fabs(idv->valuedouble) < 9007199254740992.0) {
            idn = (size_t)snprintf(num, sizeof num, "%.0f", idv->valuedouble);
            id = num;
        } else if (idv) {
            cJSON_Delete(obj);
            ef_seterr(err, "%s:%ld: field '%s' must be a string or an integer", in->name, line,
                      in->id_field);
            return EF_INPUT_BAD;
        } else {
            cJSON_Delete(obj);
            ef_seterr(err, "%s:%ld: missing id (no field '%s')", in->name, line, in->id_field);
            return EF_INPUT_BAD;
        }
        if (begin_entity(in, id, idn, line, err) != 0) {
            cJSON_Delete(obj);
            return EF_INPUT_BAD;
        }
        for (cJSON *c = obj->child; c; c = c->next) {
            if (!c->string || strcmp(c->string, "id") == 0)
                continue; /* "id" is always the entity id */
            char *v = cJSON_PrintUnformatted(c);
            if (!v)
                continue;
            ef_buf_appendc(&in->out, ',');
            ef_buf_append_json_str(&in->out, c->string, strlen(c->string));
            ef_buf_appendc(&in->out, ':');
            ef_buf_appends(&in->out, v);
            cJSON_free(v);
        }
        cJSON_Delete(obj);
        finish_entity(in, e, line);
        return 1;
    }
}

/* ---- CSV (RFC 4180: quoted fields may hold commas, quotes and newlines) ---- */

static int peek_byte(ef_input_t *in, char *err) {
    int r = fill(in, err);
    if (r <= 0)
        return r < 0 ? -2 : -1;
    return (unsigned char)in->rbuf[in->rpos];
}

static void csv_end_field(ef_input_t *in, size_t start) {
    if (in->nf == in->fcap) {
        in->fcap = in->fcap ? in->fcap * 2 : 16;
        in->fofs = ef_realloc(in->fofs, sizeof *in->fofs * (size_t)in->fcap);
        in->flen = ef_realloc(in->flen, sizeof *in->flen * (size_t)in->fcap);
    }
    in->fofs[in->nf] = start;
    in->flen[in->nf] = in->rec.len - start;
    in->nf++;
    ef_buf_appendc(&in->rec, '\0'); /* fields are NUL-separated in rec */
}

/* Reads one CSV record into in->rec / fofs / flen.  Returns 1, 0 at the
 * end, EF_INPUT_BAD (the whole record consumed), EF_INPUT_FATAL.  *start_line
 * is where the record began.  Blank lines are skipped. */
static int csv_record(ef_input_t *in, long *start_line, char *err) {
    char why[160] = "";
    for (;;) {
        int in_quotes = 0, after_quote = 0, field_started = 0, any = 0;
        size_t fstart = 0;
        ef_buf_reset(&in->rec);
        if (!in->rec.s)
            ef_buf_append(&in->rec, "", 0);
        in->nf = 0;
        *start_line = in->line + 1;
        for (;;) {
            int c = peek_byte(in, err);
            if (c == -2)
                return EF_INPUT_FATAL;
            if (c == -1) { /* end of input */
                if (!any)
                    return 0;
                if (in_quotes && !why[0])
                    snprintf(why, sizeof why, "unterminated quoted field");
                in->line++;
                break;
            }
            in->rpos++;
            any = 1;
            if (in->rec.len > EF_INPUT_MAX_RECORD && !why[0])
                snprintf(why, sizeof why, "record is longer than %u bytes", EF_INPUT_MAX_RECORD);
            if (in_quotes) {
                if (c == '"') {
                    int d = peek_byte(in, err);
                    if (d == -2)
                        return EF_INPUT_FATAL;
                    if (d == '"') {
                        in->rpos++;
                        if (!why[0])
                            ef_buf_appendc(&in->rec, '"');
                    } else {
                        in_quotes = 0;
                        after_quote = 1;
                    }
                } else {
                    if (c == '\n')
                        in->line++;
                    if (c == '\0' && !why[0])
                        snprintf(why, sizeof why, "NUL byte in field %d", in->nf + 1);
                    if (!why[0])
                        ef_buf_appendc(&in->rec, (char)c);
                }
                continue;
            }
            if (c == '\r') {
                int d = peek_byte(in, err);
                if (d == -2)
                    return EF_INPUT_FATAL;
                if (d == '\n')
                    continue; /* CRLF: the LF ends the record */
            }
            if (c == ',' || c == '\n') {
                if (c == ',' && in->nf + 1 >= CSV_MAX_FIELDS && !why[0])
                    snprintf(why, sizeof why, "more than %d fields", CSV_MAX_FIELDS);
                if (!why[0] || c == '\n') /* a bad record stores nothing more */
                    csv_end_field(in, fstart);
                fstart = in->rec.len;
                field_started = after_quote = 0;
                if (c == '\n') {
                    in->line++;
                    goto record_done;
                }
                continue;
            }
            if (after_quote) {
                if (!why[0])
                    snprintf(why, sizeof why, "unexpected character after a closing quote in field %d",
                             in->nf + 1);
                continue;
            }
            if (c == '"' && !field_started) {
                in_quotes = 1;
                field_started = 1;
                continue;
            }
            if (c == '\0' && !why[0])
                snprintf(why, sizeof why, "NUL byte in field %d", in->nf + 1);
            field_started = 1;
            if (!why[0])
                ef_buf_appendc(&in->rec, (char)c);
            if (in->line == 0 && in->nf == 0 && in->rec.len == 3 &&
                memcmp(in->rec.s, "\xef\xbb\xbf", 3) == 0) {
                ef_buf_reset(&in->rec); /* a UTF-8 BOM before the header */
                field_started = 0;
            }
        }
        csv_end_field(in, fstart);
    record_done:
        if (why[0]) {
            ef_seterr(err, "%s:%ld: %s", in->name, *start_line, why);
            return EF_INPUT_BAD;
        }
        if (in->nf == 1 && in->flen[0] == 0)
            continue; /* blank line */
        for (int i = 0; i < in->nf; i++) {
            size_t bad;
            if (!ef_utf8_valid(in->rec.s + in->fofs[i], in->flen[i], &bad)) {
                ef_seterr(err, "%s:%ld: invalid UTF-8 in field %d", in->name, *start_line, i + 1);
                return EF_INPUT_BAD;
            }
        }
        return 1;
    }
}

static int csv_header(ef_input_t *in, char *err) {
    long line;
    int r = csv_record(in, &line, err);
    if (r == 0) {
        ef_seterr(err, "%s: empty input: no CSV header", in->name);
        return EF_INPUT_FATAL;
    }
    if (r != 1)
        return EF_INPUT_FATAL; /* a bad header makes every row meaningless */
    in->ncols = in->nf;
    in->cols = ef_calloc((size_t)in->nf, sizeof *in->cols);
    for (int i = 0; i < in->nf; i++) {
        const char *s = in->rec.s + in->fofs[i];
        size_t n = in->flen[i];
        trim(&s, &n);
        in->cols[i] = ef_strndup(s, n);
        if (n == 0) {
            ef_seterr(err, "%s:%ld: CSV header column %d has no name", in->name, line, i + 1);
            return EF_INPUT_FATAL;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(in->cols[j], in->cols[i]) == 0) {
                ef_seterr(err, "%s:%ld: CSV header names column '%s' twice", in->name, line,
                          in->cols[i]);
                return EF_INPUT_FATAL;
            }
        }
        if (strcmp(in->cols[i], in->id_field) == 0)
            in->id_col = i;
        else if (strcmp(in->cols[i], "id") == 0)
            in->id_named_col = i;
    }
    if (in->id_col < 0) {
        ef_buf_t cols;
        ef_buf_init(&cols);
        for (int i = 0; i < in->ncols && cols.len < 300; i++) {
            if (i)
                ef_buf_appends(&cols, ", ");
            ef_buf_appends(&cols, in->cols[i]);
        }
        ef_seterr(err, "%s:%ld: no column '%s' in the CSV header (columns: %s); use --id-field",
                  in->name, line, in->id_field, cols.s ? cols.s : "");
        ef_buf_free(&cols);
        return EF_INPUT_FATAL;
    }
    in->have_header = 1;
    return 1;
}

static int next_csv_entity(ef_input_t *in, ef_entity_t *e, char *err) {
    long line;
    int r;
    if (!in->have_header && (r = csv_header(in, err)) != 1)
        return r;
    r = csv_record(in, &line, err);
    if (r != 1)
        return r;
    if (in->nf != in->ncols) {
        ef_seterr(err, "%s:%ld: %d fields, the header has %d", in->name, line, in->nf, in->ncols);
        return EF_INPUT_BAD;
    }
    const char *id = in->rec.s + in->fofs[in->id_col];
    size_t idn = in->flen[in->id_col];
    trim(&id, &idn);
    if (idn == 0) {
        ef_seterr(err, "%s:%ld: missing id (column '%s' is empty)", in->name, line, in->id_field);
        return EF_INPUT_BAD;
    }
    if (begin_entity(in, id, idn, line, err) != 0)
        return EF_INPUT_BAD;
    for (int i = 0; i < in->ncols; i++) {
        if (i == in->id_named_col || (i == in->id_col && strcmp(in->id_field, "id") == 0))
            continue;
        ef_buf_appendc(&in->out, ',');
        ef_buf_append_json_str(&in->out, in->cols[i], strlen(in->cols[i]));
        ef_buf_appendc(&in->out, ':');
        ef_buf_append_json_str(&in->out, in->rec.s + in->fofs[i], in->flen[i]);
    }
    finish_entity(in, e, line);
    return 1;
}

int ef_input_next(ef_input_t *in, ef_entity_t *e, char *err) {
    int r;
    if (in->fatal)
        return EF_INPUT_FATAL;
    switch (in->fmt) {
    case EF_INPUT_CSV: r = next_csv_entity(in, e, err); break;
    case EF_INPUT_NDJSON: r = next_ndjson_entity(in, e, err); break;
    default: r = next_line_entity(in, e, err); break;
    }
    if (r == EF_INPUT_FATAL)
        in->fatal = 1;
    return r;
}
