// SPDX-License-Identifier: MIT
/*
 * oauth.c: the mock provider's OAuth2 side. POST /oauth/token is a token
 * endpoint for the client credentials grant (RFC 6749 4.4): the client
 * authenticates with an Authorization: Basic header or with client_id and
 * client_secret in the form body, and gets a bearer token that lives
 * token_ttl_s seconds. With the knob `oauth` on, every API request must
 * carry a valid, unexpired, unrevoked token (`Authorization: Bearer`), else
 * it gets 401. GET /oauth/revoke revokes every token issued so far (a
 * provider that rotated its keys). The referee side: token fetches are
 * counted, and so are "early" fetches, made while the newest token had more
 * than half of its life left and was not revoked: a farm that shares one
 * token and renews it late in its life makes none.
 */
#include "mockprov.h"

#include <stdlib.h>
#include <string.h>

#define MP_NS_PER_MS 1000000ull

/* Finds the token in the table; NULL when unknown. */
static mp_oauth_issued *mp_oauth_find(mp_oauth *o, const char *t, size_t n)
{
    for (size_t i = 0; i < MP_OAUTH_TOKENS; i++) {
        mp_oauth_issued *k = &o->tokens[i];
        if (k->id != 0 && strlen(k->text) == n && memcmp(k->text, t, n) == 0)
            return k;
    }
    return NULL;
}

/* Decodes standard base64 s[0..n) into dst (at most cap - 1 bytes, NUL
 * added); returns the length or -1 when malformed or too long. */
static long mp_b64_decode(const char *s, size_t n, char *dst, size_t cap)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=')
            break;
        const char *p = s[i] ? strchr(tab, s[i]) : NULL;
        if (p == NULL)
            return -1;
        acc = (acc << 6) | (unsigned)(p - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out + 1 >= cap)
                return -1;
            dst[out++] = (char)((acc >> bits) & 0xff);
        }
    }
    dst[out] = '\0';
    return (long)out;
}

/* Whether the client id and secret (already decoded) are the configured ones. */
static int mp_oauth_client_ok(const mp_oauth *o, const char *id, const char *secret)
{
    return strcmp(id, o->client_id) == 0 && strcmp(secret, o->client_secret) == 0;
}

static int mp_oauth_error(mp_buf *body, int status, const char *error, const char *desc)
{
    mp_buf_puts(body, "{\"error\":");
    mp_json_str(body, error, strlen(error));
    mp_buf_puts(body, ",\"error_description\":");
    mp_json_str(body, desc, strlen(desc));
    mp_buf_puts(body, "}");
    return status;
}

/* Answers POST /oauth/token (its form body in[0..in_len)); returns the
 * status, the JSON body appended. */
int mp_oauth_token(mp_server *s, const mp_http_req *req, const char *in,
                   size_t in_len, mp_buf *body)
{
    mp_oauth *o = &s->oauth;
    const char *cur = in ? in : "", *end = cur + (in ? in_len : 0), *k, *v;
    size_t kn, vn;
    char grant[64] = "", id[MP_OAUTH_TEXT] = "", secret[MP_OAUTH_TEXT] = "";
    char scope[MP_OAUTH_TEXT] = "";
    int form_client = 0;

    if (s->knobs.token_down) {
        o->down++;
        return mp_oauth_error(body, 503, "temporarily_unavailable",
                              "the token service is down");
    }
    while (mp_http_query_next(&cur, end, &k, &kn, &v, &vn)) {
        char *dst = NULL;
        size_t cap = 0;
        if (mp_span_eq(k, kn, "grant_type"))
            dst = grant, cap = sizeof(grant);
        else if (mp_span_eq(k, kn, "client_id"))
            dst = id, cap = sizeof(id), form_client = 1;
        else if (mp_span_eq(k, kn, "client_secret"))
            dst = secret, cap = sizeof(secret), form_client = 1;
        else if (mp_span_eq(k, kn, "scope"))
            dst = scope, cap = sizeof(scope);
        if (dst != NULL) {
            size_t n = mp_http_pct_decode(dst, cap - 1, v, vn);
            if (n == (size_t)-1)
                return mp_oauth_error(body, 400, "invalid_request", "a field is too long");
            dst[n] = '\0';
        }
    }
    if (strcmp(grant, "client_credentials") != 0)
        return mp_oauth_error(body, 400, "unsupported_grant_type",
                              "only client_credentials is supported");
    if (req->authorization_len > 6 &&
        mp_mem_ieq(req->authorization, 6, "basic ", 6)) {
        char pair[2 * MP_OAUTH_TEXT], *colon;
        long n = mp_b64_decode(req->authorization + 6, req->authorization_len - 6,
                               pair, sizeof(pair));
        if (n < 0 || form_client || (colon = memchr(pair, ':', (size_t)n)) == NULL) {
            o->refused++;
            return mp_oauth_error(body, 401, "invalid_client", "malformed Basic credentials");
        }
        *colon = '\0';
        size_t a = mp_http_pct_decode(id, sizeof(id) - 1, pair, strlen(pair));
        size_t b = mp_http_pct_decode(secret, sizeof(secret) - 1, colon + 1,
                                      strlen(colon + 1));
        if (a == (size_t)-1 || b == (size_t)-1) {
            o->refused++;
            return mp_oauth_error(body, 401, "invalid_client", "credentials too long");
        }
        id[a] = '\0';
        secret[b] = '\0';
        o->basic++;
    } else if (form_client) {
        o->form++;
    }
    if (!mp_oauth_client_ok(o, id, secret)) {
        o->refused++;
        return mp_oauth_error(body, 401, "invalid_client", "client authentication failed");
    }

    uint64_t now = uv_hrtime(), life = s->knobs.token_ttl_s * 1000 * MP_NS_PER_MS;
    mp_oauth_issued *newest = NULL;
    for (size_t i = 0; i < MP_OAUTH_TOKENS; i++)
        if (o->tokens[i].id != 0 && (newest == NULL || o->tokens[i].id > newest->id))
            newest = &o->tokens[i];
    if (newest != NULL && newest->id > o->revoked_upto &&
        now < newest->issued_ns + (newest->expires_ns - newest->issued_ns) / 2)
        o->early++;
    o->fetches++;
    mp_oauth_issued *t = &o->tokens[o->next_id % MP_OAUTH_TOKENS];
    t->id = ++o->next_id;
    t->issued_ns = now;
    t->expires_ns = now + life;
    snprintf(t->text, sizeof(t->text), "mpt.%llu.%016llx", (unsigned long long)t->id,
             (unsigned long long)mp_rand_next(&s->rng));
    snprintf(o->last_scope, sizeof(o->last_scope), "%s", scope);
    mp_buf_puts(body, "{\"access_token\":");
    mp_json_str(body, t->text, strlen(t->text));
    mp_buf_printf(body, ",\"token_type\":\"Bearer\",\"expires_in\":%llu",
                  (unsigned long long)s->knobs.token_ttl_s);
    if (scope[0] != '\0') {
        mp_buf_puts(body, ",\"scope\":");
        mp_json_str(body, scope, strlen(scope));
    }
    mp_buf_puts(body, "}");
    return 200;
}

/* Whether an API request may pass: 1 when the oauth knob is off or the
 * request carries a valid token; else 0 and a 401 body is appended. */
int mp_oauth_allow(mp_server *s, const mp_http_req *req, mp_buf *body)
{
    mp_oauth *o = &s->oauth;
    if (!s->knobs.oauth)
        return 1;
    if (req->authorization_len > 7 && mp_mem_ieq(req->authorization, 7, "bearer ", 7)) {
        mp_oauth_issued *t = mp_oauth_find(o, req->authorization + 7, req->authorization_len - 7);
        if (t != NULL && t->id > o->revoked_upto && uv_hrtime() < t->expires_ns)
            return 1;
    }
    o->unauthorized++;
    mp_oauth_error(body, 401, "invalid_token", "a valid bearer token is required");
    return 0;
}

void mp_oauth_revoke(mp_server *s)
{
    s->oauth.revoked_upto = s->oauth.next_id;
    s->oauth.revocations++;
}

void mp_oauth_reset(mp_oauth *o)
{
    o->fetches = o->early = o->refused = o->unauthorized = 0;
    o->basic = o->form = o->down = o->revocations = 0;
    o->last_scope[0] = '\0';
}

/* Appends the "oauth" member of /stats (after a comma). */
void mp_oauth_json(const mp_oauth *o, mp_buf *b)
{
    mp_buf_printf(b,
                  "\"oauth\":{\"token_fetches\":%llu,\"token_fetches_early\":%llu,"
                  "\"token_refused\":%llu,\"token_down\":%llu,\"basic\":%llu,\"form\":%llu,"
                  "\"unauthorized\":%llu,\"revocations\":%llu,\"last_scope\":",
                  (unsigned long long)o->fetches, (unsigned long long)o->early,
                  (unsigned long long)o->refused, (unsigned long long)o->down,
                  (unsigned long long)o->basic, (unsigned long long)o->form,
                  (unsigned long long)o->unauthorized, (unsigned long long)o->revocations);
    mp_json_str(b, o->last_scope, strlen(o->last_scope));
    mp_buf_puts(b, "}");
}
