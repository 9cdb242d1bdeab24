// SPDX-License-Identifier: MIT
/*
 * Completion webhooks: URL rule, signature, backoff and body (see
 * ef_notify.h).  The sender itself is the worker's (worker/notify.c).
 */
#include "ef_notify.h"

#include "ef_common.h"
#include "ef_job.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

int ef_notify_url_valid(const char *url, char *err) {
    size_t len = url ? strlen(url) : 0, skip;
    if (len == 0 || len > EF_NOTIFY_URL_MAX) {
        ef_seterr(err, "a webhook URL must be 1..%d bytes", EF_NOTIFY_URL_MAX);
        return 0;
    }
    if (strncmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncmp(url, "https://", 8) == 0)
        skip = 8;
    else {
        ef_seterr(err, "a webhook URL must start with http:// or https://");
        return 0;
    }
    if (url[skip] == '\0' || url[skip] == '/' || url[skip] == '?' || url[skip] == '#') {
        ef_seterr(err, "a webhook URL needs a host");
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 32 || c == 127) {
            ef_seterr(err, "a webhook URL has no space or control character");
            return 0;
        }
    }
    return 1;
}

int ef_notify_sign(const char *key, size_t klen, const char *body, size_t blen,
                   char out[EF_NOTIFY_SIG_LEN]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (klen > (size_t)INT32_MAX ||
        !HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)body, blen, md, &mdlen) ||
        mdlen != 32)
        return -1;
    memcpy(out, "sha256=", 7);
    for (unsigned int i = 0; i < mdlen; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[7 + 2 * i + 1] = hex[md[i] & 15];
    }
    out[7 + 64] = '\0';
    return 0;
}

long ef_notify_backoff_ms(int failed, uint64_t rnd) {
    long wait = EF_NOTIFY_BACKOFF_BASE_MS;
    for (int i = 1; i < failed && wait < EF_NOTIFY_BACKOFF_MAX_MS; i++)
        wait *= 2;
    if (wait > EF_NOTIFY_BACKOFF_MAX_MS)
        wait = EF_NOTIFY_BACKOFF_MAX_MS;
    return wait + (long)(rnd % (uint64_t)(wait / 4 + 1));
}

char *ef_notify_body(const char *const *fields, const size_t *lens, size_t nfields,
                     int64_t now_ms) {
    static const char *const own[] = {"notify_status", "notify_attempts",   "notify_error",
                                      "notify_owner",  "notify_give_up_at", "notify_at"};
    cJSON *o = ef_job_to_json(fields, lens, nfields, now_ms);
    char *s, *out;
    if (!o)
        return NULL;
    for (size_t i = 0; i < EF_ARRAY_LEN(own); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, own[i]);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return NULL;
    out = ef_strdup(s);
    cJSON_free(s);
    return out;
}
