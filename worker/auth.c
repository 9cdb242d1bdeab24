// SPDX-License-Identifier: MIT
/*
 * OAuth2 client credentials (a recipe's "auth" block): the worker's side of
 * a provider's access token, which the whole farm shares.
 *
 * The token lives in Redis (farm:auth:{P}: the token, when to renew it,
 * when it expires, on Redis's clock) and is fetched by one worker at a time:
 * auth_lock.lua hands out a fresh token or makes the caller the renewer (a
 * lock with a deadline) or tells it to wait, either for the renewer (it
 * polls every EF_AUTH_POLL_MS, never past the lock's deadline) or for the
 * end of the backoff after a failed fetch; auth_store.lua stores the new
 * token, or the failure and the next backoff, and releases the lock.  A
 * token is renewed at EF_AUTH_RENEW_PCT of its life, by the first worker
 * that needs it after that; the old token serves until it expires, so a
 * renewal stalls nothing.  A 401 from the provider marks the token refused:
 * the first worker of the farm to report it renews it, the others get the
 * new one, and the refused request is sent again once (task.c).
 *
 * The token request: POST token_url, a form body grant_type=
 * client_credentials (and scope), the client id and secret in an
 * Authorization: Basic header (RFC 6749 2.3.1) or in the form
 * (client_auth "form"), with the recipe's timeout and TLS settings
 * (ca_file, client_cert, client_key).  The secret is filled from its ${ENV}
 * for that request only, and every message about a failure is scrubbed of
 * it; the token itself is never logged.
 *
 * The state of one provider's token, from the table below: requests go out
 * while the token has not expired whatever the state; without one, tasks
 * wait in the provider's ready queue.  A worker that has waited
 * max_outage_s for a token since the first failed fetch it saw resolves
 * the tasks that want one as errors (ef_auth_ready() < 0) and keeps trying.
 */
#include "worker.h"

#include "ef_calls.h"
#include "ef_log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EF_AUTH_RENEW_PCT 80         /* renew at this share of a token's life */
#define EF_AUTH_POLL_MS 50           /* a waiter asks again this often while another renews */
#define EF_AUTH_LOCK_MARGIN_MS 2000  /* the lock outlives the fetch's timeout by this */
#define EF_AUTH_BACKOFF_MS 500       /* first wait after a failed fetch, doubled each time */
#define EF_AUTH_BACKOFF_MAX_MS 30000 /* longest wait between two fetches */
#define EF_AUTH_TROUBLE_MS 200       /* Redis cannot be asked: try again after this */
#define EF_AUTH_LIFE_DEFAULT_S 3600  /* expires_in absent */
#define EF_AUTH_LIFE_MAX_S 31536000  /* expires_in larger is taken as this */
#define EF_AUTH_TOKEN_MAX 8192       /* bytes of an access token */
#define EF_AUTH_BODY_MAX (64u << 10) /* bytes of the token endpoint's answer */
#define EF_AUTH_REASON_MAX 200       /* bytes of the endpoint's error text kept */

#define EF_AUTH_STATE_MAP(X)                                                                       \
    X(IDLE, "idle")         /* nothing in flight; may ask */                                       \
    X(ASKING, "asking")     /* auth_lock.lua in flight */                                          \
    X(FETCHING, "fetching") /* the token request in flight (this worker holds the lock) */         \
    X(STORING, "storing")   /* auth_store.lua in flight */                                         \
    X(WAITING, "waiting")   /* the timer: a poll, a backoff or Redis trouble */

typedef enum {
#define EF_AUTH_STATE_ENUM(name, text) EF_AUTH_##name,
    EF_AUTH_STATE_MAP(EF_AUTH_STATE_ENUM)
#undef EF_AUTH_STATE_ENUM
} ef_auth_state_t;

struct ef_auth_s {
    ef_prov_t *p;
    ef_auth_state_t state;
    char *token;             /* the access token in use, or NULL */
    char *header;            /* "Authorization: Bearer <token>" */
    unsigned gen;            /* changes with every new token */
    uint64_t renew_at;       /* ms, monotonic: ask for a new token from then on */
    uint64_t expires_at;     /* ms, monotonic: the token is no use from then on */
    char *refused;           /* a token the provider refused (401), until a new one comes */
    char *fetched;           /* a token fetched, while auth_store runs */
    long long fetched_life;  /* its life left, ms */
    uint64_t fetch_started;  /* ms, monotonic */
    uint64_t outage_since;   /* ms, monotonic: the first failed fetch in a row seen; 0 none */
    int gave_up;             /* the outage passed max_outage_s (logged once) */
    char secret[EF_ERR_LEN]; /* the filled secret during a fetch (to scrub messages), else "" */
    char error[EF_ERR_LEN];  /* why there is no token (no secret in it) */
    char msg[EF_ERR_LEN];    /* the entities' error, built from it */
    uv_timer_t timer;
};

static const char *recipe_name(const ef_auth_t *a) {
    return a->p->rc->name;
}

static void ask(ef_auth_t *a);

/* ---- the token in use ---- */

static void wipe(char *s) {
    if (s) {
        volatile char *v = s;
        while (*v)
            *v++ = 0;
    }
}

static void token_drop(ef_auth_t *a) {
    wipe(a->header);
    free(a->header);
    free(a->token);
    a->header = a->token = NULL;
}

/* Takes token for the next requests: it may be used for expiry_ms, and a
 * new one is asked for after renew_ms. */
static void token_adopt(ef_auth_t *a, const char *token, long long renew_ms, long long expiry_ms) {
    uint64_t now = ef_mono_ms();
    if (!token || !*token || expiry_ms <= 0)
        return;
    if (a->refused && strcmp(a->refused, token) == 0)
        return; /* an answer sent before the 401 was reported */
    if (!a->token || strcmp(a->token, token) != 0) {
        token_drop(a);
        a->token = ef_strdup(token);
        size_t n = strlen(token) + 32;
        a->header = ef_malloc(n);
        snprintf(a->header, n, "Authorization: Bearer %s", token);
        a->gen++;
        free(a->refused);
        a->refused = NULL;
    }
    a->outage_since = 0;
    a->gave_up = 0;
    a->renew_at = now + (uint64_t)(renew_ms > 0 ? renew_ms : 0);
    a->expires_at = now + (uint64_t)expiry_ms;
}

/* ---- waiting ---- */

static void on_timer(uv_timer_t *t) {
    ef_auth_t *a = t->data;
    a->state = EF_AUTH_IDLE;
    ef_worker_dispatch(a->p->w);
}

static void wait_for(ef_auth_t *a, uint64_t ms) {
    a->state = EF_AUTH_WAITING;
    if (a->p->w->stopping)
        return;
    uv_timer_start(&a->timer, on_timer, ms > 0 ? ms : 1, 0);
}

/* A failure is known (ours or another worker's): no token until the
 * backoff ends, in wait_ms; waits no longer than the outage bound so that
 * the entities waiting are given up in time. */
static void outage(ef_auth_t *a, uint64_t wait_ms) {
    uint64_t now = ef_mono_ms(), bound = (uint64_t)a->p->rc->auth.max_outage_s * 1000;
    if (!a->outage_since)
        a->outage_since = now;
    uint64_t end = a->outage_since + bound;
    if (now < end && end - now < wait_ms)
        wait_ms = end - now;
    wait_for(a, wait_ms);
    ef_worker_dispatch(a->p->w);
}

/* Replaces every copy of the secret in msg (a hostile endpoint may echo it). */
static void scrub(const ef_auth_t *a, char *msg) {
    size_t n = strlen(a->secret);
    char *at;
    if (n == 0)
        return;
    while ((at = strstr(msg, a->secret)) != NULL) {
        memset(at, '*', n);
    }
}

/* ---- the token endpoint's answer ---- */

/* Copies printable ASCII of s (at most EF_AUTH_REASON_MAX bytes) into out. */
static void clean_text(char *out, size_t cap, const char *s) {
    size_t j = 0;
    for (size_t i = 0; s && s[i] && j + 1 < cap && i < EF_AUTH_REASON_MAX; i++)
        out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[j] = '\0';
}

/* Reads a token answer; 0 with *token (the caller frees) and *life_s, or -1
 * with err saying what is wrong (the endpoint's error and description when
 * it sent them). */
static int token_parse(const ef_http_resp_t *resp, char **token, double *life_s, char *err) {
    cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "token_type");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    int rc = -1;
    *token = NULL;
    if (resp->status != 200) {
        char e[EF_AUTH_REASON_MAX + 1] = "", d[EF_AUTH_REASON_MAX + 1] = "";
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *dv = cJSON_GetObjectItemCaseSensitive(j, "error_description");
        clean_text(e, sizeof e, cJSON_IsString(ev) ? ev->valuestring : NULL);
        clean_text(d, sizeof d, cJSON_IsString(dv) ? dv->valuestring : NULL);
        ef_seterr(err, "the token endpoint answered HTTP %ld%s%s%s%s%s", resp->status,
                  e[0] ? ": " : "", e, d[0] ? " (" : "", d, d[0] ? ")" : "");
        goto out;
    }
    if (!cJSON_IsObject(j)) {
        ef_seterr(err, "the token endpoint's answer is not a JSON object");
        goto out;
    }
    if (!cJSON_IsString(tok) || !tok->valuestring[0] ||
        strlen(tok->valuestring) > EF_AUTH_TOKEN_MAX) {
        ef_seterr(err,
                  "the token endpoint's answer has no access_token (a string of 1 to %d bytes)",
                  EF_AUTH_TOKEN_MAX);
        goto out;
    }
    for (const char *s = tok->valuestring; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f) {
            ef_seterr(err, "the access_token holds a byte that cannot go in a header");
            goto out;
        }
    if (type && (!cJSON_IsString(type) || strcasecmp(type->valuestring, "bearer") != 0)) {
        char t[64];
        clean_text(t, sizeof t, cJSON_IsString(type) ? type->valuestring : "(not a string)");
        ef_seterr(err, "token_type %s is not Bearer", t);
        goto out;
    }
    *life_s = EF_AUTH_LIFE_DEFAULT_S;
    if (exp) {
        double v = cJSON_IsNumber(exp)   ? exp->valuedouble
                   : cJSON_IsString(exp) ? strtod(exp->valuestring, NULL)
                                         : -1;
        if (!(v > 0)) {
            ef_seterr(err, "expires_in must be a positive number of seconds");
            goto out;
        }
        *life_s = v > EF_AUTH_LIFE_MAX_S ? EF_AUTH_LIFE_MAX_S : v;
    }
    *token = ef_strdup(tok->valuestring);
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}

/* ---- storing what the fetch gave ---- */

static void on_store(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_auth_t *a = arg;
    (void)rc;
    char *fetched = a->fetched;
    a->fetched = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        long long x = r->element[1]->integer, y = r->element[2]->integer;
        if (r->element[0]->integer == 1 && fetched) {
            token_adopt(a, fetched, x, y);
            ef_debug("recipe '%s': new OAuth2 token, renewed in %lld ms", recipe_name(a), x);
            a->state = EF_AUTH_IDLE;
            ef_worker_dispatch(a->p->w);
        } else {
            ef_error("recipe '%s': auth: no OAuth2 token: %s; the farm tries again in %lld ms "
                     "(failure %lld in a row)",
                     recipe_name(a), a->error, x, y);
            outage(a, (uint64_t)(x > 0 ? x : 1));
        }
    } else {
        /* Redis failed us: a token fetched is still good here */
        if (r && r->type == REDIS_REPLY_ERROR)
            ef_error("recipe '%s': auth: %s", recipe_name(a), r->str);
        if (fetched) {
            token_adopt(a, fetched, a->fetched_life * EF_AUTH_RENEW_PCT / 100, a->fetched_life);
            a->state = EF_AUTH_IDLE;
            ef_worker_dispatch(a->p->w);
        } else {
            ef_error("recipe '%s': auth: no OAuth2 token: %s", recipe_name(a), a->error);
            outage(a, EF_AUTH_BACKOFF_MS);
        }
    }
    if (fetched)
        wipe(fetched);
    free(fetched);
}

/* Reports the fetch to Redis: token (NULL on failure, a->error says why). */
static void store(ef_auth_t *a, char *token, long long life_ms) {
    ef_worker_t *w = a->p->w;
    ef_call_auth_store_t args = {.worker_id = w->id,
                                 .token = token,
                                 .life_ms = token ? life_ms : 0,
                                 .renew_pct = EF_AUTH_RENEW_PCT,
                                 .backoff_ms = EF_AUTH_BACKOFF_MS,
                                 .backoff_max_ms = EF_AUTH_BACKOFF_MAX_MS,
                                 .error = token ? "" : a->error};
    ef_call_t call;
    a->fetched = token;
    a->fetched_life = life_ms;
    a->state = EF_AUTH_STORING;
    ef_call_auth_store(&call, a->p->rc->name, &args);
    int rc = w->cmd_ready ? ef_redis_call(w->cmd, &call, on_store, a, 0) : -1;
    ef_call_free(&call);
    if (rc != 0)
        on_store(NULL, NULL, a); /* as if Redis had failed (we are in a callback already) */
}

static void on_token(const ef_http_resp_t *resp, void *arg) {
    ef_auth_t *a = arg;
    char err[EF_ERR_LEN];
    char *token = NULL;
    double life_s = 0;
    if (resp->err == EF_HTTP_E_ABORTED) {
        a->state = EF_AUTH_IDLE; /* the worker is stopping */
        wipe(a->secret);
        return;
    }
    if (resp->err != EF_HTTP_OK)
        ef_seterr(err, "the token endpoint could not be reached: %s",
                  resp->errmsg ? resp->errmsg : "transport error");
    else if (token_parse(resp, &token, &life_s, err) == 0)
        err[0] = '\0';
    scrub(a, err);
    wipe(a->secret);
    if (token) {
        long long took = (long long)(ef_mono_ms() - a->fetch_started);
        long long life = (long long)(life_s * 1000) - took;
        store(a, token, life > 1 ? life : 1);
        return;
    }
    snprintf(a->error, sizeof a->error, "%s", err);
    store(a, NULL, 0);
}

/* ---- the token request ---- */

static void b64(ef_buf_t *out, const unsigned char *s, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        ef_buf_appendc(out, tab[(v >> 18) & 63]);
        ef_buf_appendc(out, tab[(v >> 12) & 63]);
        ef_buf_appendc(out, i + 1 < n ? tab[(v >> 6) & 63] : '=');
        ef_buf_appendc(out, i + 2 < n ? tab[v & 63] : '=');
    }
}

/* Appends s form-encoded (RFC 3986 unreserved bytes pass, the rest %XX). */
static void form_value(ef_buf_t *out, const char *s) {
    size_t n = strlen(s), cap = 3 * n + 1;
    char *enc = ef_malloc(cap);
    long m = ef_http_pct_encode(s, n, enc, cap);
    if (m > 0)
        ef_buf_append(out, enc, (size_t)m);
    memset(enc, 0, cap);
    free(enc);
}

static void buf_wipe(ef_buf_t *b) {
    if (b->s)
        memset(b->s, 0, b->cap);
    ef_buf_free(b);
}

/* Starts the token request (this worker holds the lock).  A template that
 * cannot be filled (an environment variable not set) is a failed fetch. */
static void fetch(ef_auth_t *a) {
    ef_prov_t *p = a->p;
    const ef_recipe_t *rc = p->rc;
    const ef_recipe_auth_t *au = &rc->auth;
    ef_recipe_scope_t scope = {NULL, NULL, p->defaults};
    ef_buf_t url, id, secret, scopev, body, basic;
    char err[EF_ERR_LEN];
    int ok = 0;

    if (!p->w->http || p->w->stopping) {
        a->state = EF_AUTH_IDLE; /* stopping: the lock runs out by itself */
        return;
    }
    ef_buf_init(&url);
    ef_buf_init(&id);
    ef_buf_init(&secret);
    ef_buf_init(&scopev);
    ef_buf_init(&body);
    ef_buf_init(&basic);
    if (ef_template_fill(au->token_url, &scope, EF_TMPL_URL, &url, err) != 0 ||
        ef_template_fill(au->client_id, &scope, EF_TMPL_RAW, &id, err) != 0 ||
        ef_template_fill(au->client_secret, &scope, EF_TMPL_RAW, &secret, err) != 0 ||
        (au->scope && ef_template_fill(au->scope, &scope, EF_TMPL_RAW, &scopev, err) != 0)) {
        snprintf(a->error, sizeof a->error, "%.400s", err);
        goto out;
    }
    snprintf(a->secret, sizeof a->secret, "%s", secret.s ? secret.s : "");
    ef_buf_appends(&body, "grant_type=client_credentials");
    if (au->scope) {
        ef_buf_appends(&body, "&scope=");
        form_value(&body, scopev.s ? scopev.s : "");
    }
    if (au->client_auth == EF_RECIPE_AUTH_FORM) {
        ef_buf_appends(&body, "&client_id=");
        form_value(&body, id.s ? id.s : "");
        ef_buf_appends(&body, "&client_secret=");
        form_value(&body, secret.s ? secret.s : "");
    } else {
        ef_buf_t pair;
        ef_buf_init(&pair);
        form_value(&pair, id.s ? id.s : "");
        ef_buf_appendc(&pair, ':');
        form_value(&pair, secret.s ? secret.s : "");
        ef_buf_appends(&basic, "Authorization: Basic ");
        b64(&basic, (const unsigned char *)pair.s, pair.len);
        buf_wipe(&pair);
    }
    const char *hv[3] = {"Content-Type: application/x-www-form-urlencoded",
                         "Accept: application/json", basic.s};
    ef_http_req_t req = {
        .method = "POST",
        .url = url.s,
        .headers = hv,
        .nheaders = basic.s ? 3 : 2,
        .body = body.s,
        .body_len = body.len,
        .timeout_ms = rc->timeout_ms,
        .max_body = EF_AUTH_BODY_MAX,
        .ca_file = rc->ca_file,
        .client_cert = rc->client_cert,
        .client_key = rc->client_key,
    };
    a->fetch_started = ef_mono_ms();
    if (ef_http_request(p->w->http, &req, on_token, a) == 0)
        ok = 1;
    else
        snprintf(a->error, sizeof a->error, "the token request could not be started");
out:
    buf_wipe(&url);
    buf_wipe(&id);
    buf_wipe(&secret);
    buf_wipe(&scopev);
    buf_wipe(&body);
    buf_wipe(&basic);
    if (ok) {
        a->state = EF_AUTH_FETCHING;
        return;
    }
    wipe(a->secret);
    store(a, NULL, 0); /* the farm backs off: a missing variable is missing everywhere */
}

/* ---- asking Redis ---- */

static void on_lock(ef_redis_t *rc, redisReply *r, void *arg) {
    ef_auth_t *a = arg;
    (void)rc;
    if (a->p->w->stopping) {
        a->state = EF_AUTH_IDLE;
        return;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 6 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING) {
        if (r && r->type == REDIS_REPLY_ERROR)
            ef_error("recipe '%s': auth: %s", recipe_name(a), r->str);
        wait_for(a, EF_AUTH_TROUBLE_MS);
        return;
    }
    long long verdict = r->element[0]->integer;
    long long renew = r->element[2]->integer, expiry = r->element[3]->integer;
    long long wait = r->element[4]->integer;
    if (r->element[1]->len > 0)
        token_adopt(a, r->element[1]->str, renew, expiry);
    switch (verdict) {
    case 1: /* fresh */
        a->state = EF_AUTH_IDLE;
        if (a->refused && !a->token)
            wait_for(a, EF_AUTH_POLL_MS); /* the token we just reported: ask again */
        ef_worker_dispatch(a->p->w);
        break;
    case 0: /* ours to fetch */ fetch(a); break;
    case 2: /* another worker renews it */
        wait_for(a, (uint64_t)(wait < EF_AUTH_POLL_MS ? wait : EF_AUTH_POLL_MS));
        break;
    default: /* backoff after a failed fetch */
        if (r->element[5]->type == REDIS_REPLY_STRING && r->element[5]->len > 0)
            snprintf(a->error, sizeof a->error, "%.*s", (int)r->element[5]->len,
                     r->element[5]->str);
        outage(a, (uint64_t)(wait > 0 ? wait : 1));
    }
}

static void ask(ef_auth_t *a) {
    ef_worker_t *w = a->p->w;
    ef_call_t call;
    if (w->stopping || a->state != EF_AUTH_IDLE)
        return;
    if (!w->cmd_ready) {
        wait_for(a, EF_AUTH_TROUBLE_MS);
        return;
    }
    ef_call_auth_lock(&call, a->p->rc->name, w->id,
                      (long long)a->p->rc->timeout_ms + EF_AUTH_LOCK_MARGIN_MS, a->refused);
    int rc = ef_redis_call(w->cmd, &call, on_lock, a, 0);
    ef_call_free(&call);
    if (rc == 0)
        a->state = EF_AUTH_ASKING;
    else
        wait_for(a, EF_AUTH_TROUBLE_MS);
}

/* ---- what task.c uses ---- */

/* Whether p's next request can carry a token: 1 yes (ef_auth_header), 0
 * not yet (a token is on its way; the dispatch runs again when it comes),
 * -1 no token for max_outage_s (the task is an error: ef_auth_error).
 * Past the renewal time it starts a renewal and says 1 while the old token
 * lasts. */
int ef_auth_ready(ef_prov_t *p) {
    ef_auth_t *a = p->auth;
    uint64_t now = ef_mono_ms();
    if (a->token && now < a->expires_at) {
        if (now >= a->renew_at)
            ask(a);
        return 1;
    }
    ask(a);
    if (a->outage_since && now - a->outage_since >= (uint64_t)p->rc->auth.max_outage_s * 1000) {
        if (!a->gave_up)
            ef_warn("recipe '%s': no OAuth2 token for %ld s: the entities that need one count "
                    "as errors until a token comes",
                    recipe_name(a), p->rc->auth.max_outage_s);
        a->gave_up = 1;
        return -1;
    }
    return 0;
}

/* The header line to send and, in *gen, which token it carries; valid
 * until the next turn of the loop, right after ef_auth_ready() said 1. */
const char *ef_auth_header(const ef_prov_t *p, unsigned *gen) {
    *gen = p->auth->gen;
    return p->auth->header;
}

/* Why the tasks of p fail when ef_auth_ready() says -1. */
const char *ef_auth_error(const ef_prov_t *p) {
    ef_auth_t *a = p->auth;
    snprintf(a->msg, sizeof a->msg, "recipe '%.64s': no OAuth2 token for %ld s: %.400s",
             recipe_name(a), p->rc->auth.max_outage_s, a->error[0] ? a->error : "unknown");
    return a->msg;
}

/* The provider answered t's request with a 401.  Returns 1 when the request
 * is to be sent again (the first 401 of this request; the token it carried
 * is dropped and renewed, once for the farm), 0 when it was already. */
int ef_auth_refused(ef_prov_t *p, ef_task_t *t) {
    ef_auth_t *a = p->auth;
    if (t->auth_retried)
        return 0;
    t->auth_retried = 1;
    if (a->token && t->auth_gen == a->gen) {
        ef_info("recipe '%s': the provider refused the OAuth2 token (401): renewing it",
                recipe_name(a));
        free(a->refused);
        a->refused = ef_strdup(a->token);
        token_drop(a);
    }
    return 1;
}

void ef_auth_init(ef_worker_t *w) {
    for (size_t i = 0; i < w->nprovs; i++) {
        ef_prov_t *p = &w->provs[i];
        if (p->rc->auth.type != EF_RECIPE_AUTH_CLIENT_CREDENTIALS)
            continue;
        p->auth = ef_calloc(1, sizeof *p->auth);
        p->auth->p = p;
        uv_timer_init(w->loop, &p->auth->timer);
        p->auth->timer.data = p->auth;
    }
}

static void on_timer_closed(uv_handle_t *h) {
    (void)h;
}

void ef_auth_close(ef_worker_t *w) {
    for (size_t i = 0; i < w->nprovs; i++)
        if (w->provs[i].auth)
            uv_close((uv_handle_t *)&w->provs[i].auth->timer, on_timer_closed);
}

/* Frees the token states once the loop has ended (the token request's
 * callback may fire until the HTTP client is closed). */
void ef_auth_free(ef_worker_t *w) {
    for (size_t i = 0; i < w->nprovs; i++) {
        ef_auth_t *a = w->provs[i].auth;
        if (!a)
            continue;
        token_drop(a);
        free(a->refused);
        if (a->fetched)
            wipe(a->fetched);
        free(a->fetched);
        free(a);
        w->provs[i].auth = NULL;
    }
}
