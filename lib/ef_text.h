// SPDX-License-Identifier: MIT
/*
 * Text helpers shared by the parsers: UTF-8 validation, JSON string
 * escaping into a growable buffer, and the entity id rule (1..512 bytes of
 * valid UTF-8 with no control character).
 */
#ifndef EF_TEXT_H
#define EF_TEXT_H

#include <stddef.h>

/* A growable byte buffer; buf.s is NUL-terminated after each append. */
typedef struct {
    char *s;
    size_t len;
    size_t cap;
} ef_buf_t;

void ef_buf_init(ef_buf_t *b);
void ef_buf_free(ef_buf_t *b);
void ef_buf_reset(ef_buf_t *b);
void ef_buf_append(ef_buf_t *b, const char *s, size_t n);
void ef_buf_appendc(ef_buf_t *b, char c);
void ef_buf_appends(ef_buf_t *b, const char *s);
/* Appends s as a quoted JSON string (s must be valid UTF-8). */
void ef_buf_append_json_str(ef_buf_t *b, const char *s, size_t n);

/* 1 when s[0..n) is valid UTF-8 (no overlongs, no surrogates); else 0 and
 * *bad_at (if not NULL) is the offset of the first bad byte. */
int ef_utf8_valid(const char *s, size_t n, size_t *bad_at);

/* The value of one hex digit, or -1. */
int ef_hexval(char c);

/* Checks an entity id; 0 when good, else -1 and err says why. */
int ef_entity_id_check(const char *id, size_t n, char *err);

#endif
