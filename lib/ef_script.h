// SPDX-License-Identifier: MIT
/*
 * A Lua script embedded at build time from scripts/NAME.lua (see
 * mk/embed.sh): its name, the SHA1 of its text (what EVALSHA takes) and the
 * text itself (what EVAL takes when Redis answers NOSCRIPT).  The same files
 * run under `redis-cli --eval scripts/NAME.lua keys , args`.
 */
#ifndef EF_SCRIPT_H
#define EF_SCRIPT_H

#include <stddef.h>

typedef struct {
    const char *name;
    const char *sha;  /* 40 hex chars */
    const char *body; /* the Lua text */
    size_t len;       /* bytes of body */
} ef_script_t;

/* The RESP-formatted EVAL (with s's body) of cmd, a formatted EVALSHA of
 * s's SHA (as redisFormatCommandArgv makes it): the same numkeys, keys and
 * arguments.  Malloc'd, its length in out_len; NULL when cmd is not such an
 * EVALSHA.  Both clients resend a call this way when Redis answers NOSCRIPT
 * (restarted, script cache flushed, another node). */
char *ef_script_eval_of(const ef_script_t *s, const char *cmd, size_t len, size_t *out_len);

#endif
