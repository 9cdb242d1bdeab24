// SPDX-License-Identifier: MIT
/*
 * Growable buffers, UTF-8 validation, JSON string escaping and the entity id
 * rule.  Used by the enqueuer's parsers, the worker and statusd.
 */
#include "ef_text.h"

#include "ef_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ef_buf_init(ef_buf_t *b) {
    b->s = NULL;
    b->len = b->cap = 0;
}

void ef_buf_free(ef_buf_t *b) {
    free(b->s);
    ef_buf_init(b);
}

void ef_buf_reset(ef_buf_t *b) {
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

static void reserve(ef_buf_t *b, size_t extra) {
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->s = ef_realloc(b->s, cap);
    b->cap = cap;
}

void ef_buf_append(ef_buf_t *b, const char *s, size_t n) {
    reserve(b, n);
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void ef_buf_appendc(ef_buf_t *b, char c) { ef_buf_append(b, &c, 1); }

void ef_buf_appends(ef_buf_t *b, const char *s) { ef_buf_append(b, s, strlen(s)); }

void ef_buf_append_json_str(ef_buf_t *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    reserve(b, n + 2);
    ef_buf_appendc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ef_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': ef_buf_append(b, "\\\"", 2); break;
        case '\\': ef_buf_append(b, "\\\\", 2); break;
        case '\n': ef_buf_append(b, "\\n", 2); break;
        case '\r': ef_buf_append(b, "\\r", 2); break;
        case '\t': ef_buf_append(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ef_buf_append(b, u, 6);
        }
        }
    }
    ef_buf_append(b, s + run, n - run);
    ef_buf_appendc(b, '"');
}

int ef_utf8_valid(const char *s, size_t n, size_t *bad_at) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t need;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            min = 0x10000;
        } else {
            goto bad;
        }
        if (i + need >= n)
            goto bad;
        unsigned cp = c & (0x3fu >> need);
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                goto bad;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            goto bad;
        i += need + 1;
    }
    return 1;
bad:
    if (bad_at)
        *bad_at = i;
    return 0;
}

int ef_hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ef_entity_id_check(const char *id, size_t n, char *err) {
    size_t bad;
    if (n == 0) {
        ef_seterr(err, "missing id");
        return -1;
    }
    if (n > EF_ID_MAX_LEN) {
        ef_seterr(err, "id is %zu bytes, the limit is %d", n, EF_ID_MAX_LEN);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == 0x7f) {
            ef_seterr(err, "id contains control character 0x%02x at byte %zu", c, i + 1);
            return -1;
        }
    }
    if (!ef_utf8_valid(id, n, &bad)) {
        ef_seterr(err, "id is not valid UTF-8 (byte %zu)", bad + 1);
        return -1;
    }
    return 0;
}
