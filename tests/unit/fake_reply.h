// SPDX-License-Identifier: MIT
/*
 * Constructed hiredis replies for unit tests: what a parser of a reply
 * (CLUSTER SLOTS, a sentinel's address answer, ROLE) is fed instead of a
 * live server.  Each constructor returns a reply the caller owns and frees
 * with freeReplyObject(); an array owns the elements it is given, so one
 * freeReplyObject() on the outermost reply frees the whole tree.  Static
 * inline so that a test using only some of them builds with -Werror.
 */
#ifndef EF_TEST_FAKE_REPLY_H
#define EF_TEST_FAKE_REPLY_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

/* A reply of TYPE with no value (nil, or an integer 0). */
static inline redisReply *fake_reply(int type) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = type;
    return r;
}

static inline redisReply *fake_reply_int(long long v) {
    redisReply *r = fake_reply(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

/* A reply of TYPE (string, status, error) carrying a copy of S. */
static inline redisReply *fake_reply_str(int type, const char *s) {
    redisReply *r = fake_reply(type);
    r->len = strlen(s);
    r->str = strdup(s);
    return r;
}

static inline redisReply *fake_reply_string(const char *s) {
    return fake_reply_str(REDIS_REPLY_STRING, s);
}

/* An array of the N replies that follow, which it takes over. */
static inline redisReply *fake_reply_arr(size_t n, ...) {
    redisReply *r = fake_reply(REDIS_REPLY_ARRAY);
    va_list ap;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

#endif
