// SPDX-License-Identifier: MIT
/*
 * The formatted EVAL of a formatted EVALSHA; see ef_script.h.
 */
#include "ef_script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_common.h"

char *ef_script_eval_of(const ef_script_t *s, const char *cmd, size_t len, size_t *out_len) {
    size_t shalen = strlen(s->sha);
    const char *nl = memchr(cmd, '\n', len);
    char sha_hdr[24], hdr[48], *buf, *p;
    size_t nlen, at, hlen, n;

    if (!nl || len < 2 || cmd[0] != '*')
        return NULL;
    nlen = (size_t)(nl + 1 - cmd); /* "*N\r\n": the same argument count */
    snprintf(sha_hdr, sizeof sha_hdr, "$%zu\r\n", shalen);
    /* "$7\r\nEVALSHA\r\n" then "$40\r\nSHA\r\n" */
    at = nlen + 13 + strlen(sha_hdr) + shalen + 2;
    if (len < at || memcmp(cmd + nlen, "$7\r\nEVALSHA\r\n", 13) != 0 ||
        memcmp(cmd + nlen + 13, sha_hdr, strlen(sha_hdr)) != 0 ||
        memcmp(cmd + nlen + 13 + strlen(sha_hdr), s->sha, shalen) != 0)
        return NULL;
    hlen = (size_t)snprintf(hdr, sizeof hdr, "$4\r\nEVAL\r\n$%zu\r\n", s->len);
    n = nlen + hlen + s->len + 2 + (len - at);
    p = buf = ef_malloc(n);
    memcpy(p, cmd, nlen);
    memcpy(p += nlen, hdr, hlen);
    memcpy(p += hlen, s->body, s->len);
    memcpy(p += s->len, "\r\n", 2);
    memcpy(p + 2, cmd + at, len - at); /* numkeys, keys, args */
    *out_len = n;
    return buf;
}
