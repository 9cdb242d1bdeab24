// SPDX-License-Identifier: MIT
/*
 * Provider recipes: how the farm asks one external HTTP API about one
 * entity, and how the answer becomes an outcome and extracted fields.
 * The format is documented in docs/providers.md.  This module is pure (no
 * network, no Redis): parsing and validating the recipe file, filling URL,
 * header and body templates, and judging each step's response.
 *
 * A recipe is a list of steps run in order for each entity.  A step's URL,
 * headers and body are templates: {field} takes the entity's field (or a
 * value an earlier step saved with "as"), percent-encoded inside URLs;
 * {field?} is empty when missing (plain {field} missing is an error for that
 * entity); ${ENV} takes an environment variable of the worker (secrets: the
 * filled text is never stored in Redis nor logged; templates are).
 * {field|json} is a JSON string literal, {field|url} percent-encoded,
 * wherever they stand.  A step's body is a text template or a "json" form
 * whose string leaves are templates (valid JSON by construction).
 * A search step names the array of candidates ("results": JSON Pointer), how
 * a candidate matches the entity ("match": entity field -> pointer into the
 * candidate), and which one to take ("select": "unique" = exactly one match,
 * several equally good matches are a conflict; "first" = the first match).
 * The last step's body gives the extracted fields ("extract": name -> JSON
 * Pointer, where a "*" segment maps over an array).
 * TLS: "ca_file", "client_cert" and "client_key" name PEM files, checked
 * (readable, PEM) when the recipe loads; verification cannot be turned off.
 * "auth" (OAuth2 client credentials): the token URL, the client id and
 * secret (the secret only as one ${ENV}: it is never written in the file)
 * and a scope; the worker fetches the farm's token (worker/auth.c) and
 * sends it as "Authorization: Bearer" with every step.
 */
#ifndef EF_RECIPE_H
#define EF_RECIPE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "ef_common.h"
#include "ef_text.h"

#define EF_RECIPE_MAX_STEPS 8
#define EF_RECIPE_TIMEOUT_DEFAULT_MS 10000
#define EF_RECIPE_RETRIES_DEFAULT 3
#define EF_RECIPE_CONCURRENCY_DEFAULT 0   /* 0 = no per-provider cap beyond --concurrency */
#define EF_RECIPE_MAX_BODY_DEFAULT (1u << 20) /* bytes; a worker holds at most this per request in flight */
#define EF_RECIPE_MAX_PAUSE_DEFAULT_S 300   /* longest farm-wide pause a Retry-After may ask for */

/* Headers one step may declare; the worker sends every one of them. */
#define EF_RECIPE_MAX_HEADERS 32

typedef enum { EF_SELECT_UNIQUE = 0, EF_SELECT_FIRST } ef_select_t;
typedef enum { EF_POLICY_OVERWRITE = 0, EF_POLICY_KEEP } ef_policy_t;

typedef struct {
    char *name;        /* entity field name, or a saved variable */
    char *pointer;     /* JSON Pointer (RFC 6901), "*" segments allowed in extract */
} ef_recipe_map_t;

typedef struct {
    char *name;            /* "step1" when not given */
    char *method;          /* GET, POST, PUT, PATCH, DELETE */
    char *url;             /* template */
    char **headers;        /* templates "Name: value", at most EF_RECIPE_MAX_HEADERS */
    size_t nheaders;
    char *body;            /* template or NULL */
    cJSON *json;           /* the "json" body form: string leaves are templates; NULL when none */
    int not_found_status;  /* answered status meaning "no match"; default 404 */
    /* search steps */
    char *results;         /* pointer to the candidates array, NULL = not a search */
    ef_recipe_map_t *match;/* entity field -> pointer into a candidate (case-insensitive equality) */
    size_t nmatch;
    ef_select_t select;
    ef_recipe_map_t *save; /* "as": variable -> pointer into the chosen candidate (or the body) */
    size_t nsave;
    struct ef_batch_s *batch; /* a batch step (lib/ef_batch.h), NULL = one entity per request */
} ef_recipe_step_t;

/* The "auth" block of a recipe. */
#define EF_RECIPE_AUTH_NONE 0
#define EF_RECIPE_AUTH_CLIENT_CREDENTIALS 1 /* "oauth2_client_credentials" */
#define EF_RECIPE_AUTH_BASIC 0              /* client id and secret in an Authorization: Basic */
#define EF_RECIPE_AUTH_FORM 1               /* client id and secret in the form body */
#define EF_RECIPE_AUTH_OUTAGE_DEFAULT_S 60  /* no token this long: the entities waiting are errors */

typedef struct {
    int type;              /* EF_RECIPE_AUTH_NONE or _CLIENT_CREDENTIALS */
    char *token_url;       /* template: ${ENV} and {provider} only */
    char *client_id;       /* template: ${ENV} and {provider} only */
    char *client_secret;   /* exactly one ${ENV} */
    char *scope;           /* template as token_url, or NULL for none */
    int client_auth;       /* EF_RECIPE_AUTH_BASIC or EF_RECIPE_AUTH_FORM */
    long max_outage_s;     /* longest wait for a token before entities count as errors */
} ef_recipe_auth_t;

typedef struct {
    char *name;
    ef_recipe_step_t *steps;
    size_t nsteps;
    ef_recipe_map_t *extract; /* field -> pointer into the last step's body (or chosen candidate) */
    size_t nextract;
    char *result_key;      /* key template under farm:{Q}:, default "result:{provider}:{id}" */
    ef_policy_t policy;
    long rate_requests;    /* tokens per period; 0 = unlimited */
    double rate_per_seconds;
    long rate_burst;       /* bucket size; default = rate_requests */
    long timeout_ms;
    int retries;           /* retries of transient failures per request */
    int concurrency;       /* max in-flight requests to this provider per worker, 0 = no cap */
    long cache_ttl_s;      /* response cache TTL, 0 = no cache */
    size_t max_body;       /* response size cap, bytes */
    long max_pause_s;      /* a 429's Retry-After pauses the farm at most this long */
    char *ca_file;         /* PEM CAs trusted instead of the system's for https://, or NULL */
    char *client_cert;     /* PEM client certificate (mutual TLS), or NULL */
    char *client_key;      /* PEM key of client_cert, NULL = in client_cert's file */
    ef_recipe_auth_t auth; /* OAuth2; auth.type 0 = none */
    char *notify;          /* default completion webhook URL of its jobs, or NULL */
    struct ef_sink_conf_s *sink; /* "sink": where updated entities are also written
                                  * (lib/ef_sink.h), NULL when none */
} ef_recipe_t;

typedef struct ef_recipes_s ef_recipes_t;

/* Parses and validates a recipe file ({"providers": {NAME: recipe, ...}}).
 * On error returns -1 and err names the file, the recipe and the field:
 * "providers.json: recipe 'movies': steps[1].url: ...". */
int ef_recipes_load_file(const char *path, ef_recipes_t **out, char *err);
int ef_recipes_parse(const char *json, size_t len, const char *source, ef_recipes_t **out,
                     char *err);
void ef_recipes_free(ef_recipes_t *r);
size_t ef_recipes_count(const ef_recipes_t *r);
const ef_recipe_t *ef_recipes_at(const ef_recipes_t *r, size_t i);
const ef_recipe_t *ef_recipes_get(const ef_recipes_t *r, const char *name);
/* A JSON summary without secrets or templates' filled values, for
 * farm:providers (rate, burst, steps' methods and URL templates). */
char *ef_recipe_summary(const ef_recipe_t *rc);

/* ---- per entity ---- */

/* Values a template can use: the entity's fields, the variables saved by
 * earlier steps, then values every entity shares (the worker's {provider}). */
typedef struct {
    cJSON *entity;          /* the entity object (borrowed) */
    cJSON *vars;            /* saved variables, an object (owned by the caller); NULL
                             * until a step saves one (ef_recipe_judge creates it) */
    const cJSON *defaults;  /* looked up last, an object or NULL (borrowed) */
} ef_recipe_scope_t;

/* Where a template is filled, which sets how a value with no filter goes
 * in: a URL percent-encodes it (except a ${NAME} that starts it, the base
 * URL, which goes in as it is: http:// or https://, no spaces); a raw place
 * (header, string body, result key) takes it as it is but refuses control
 * characters; a JSON leaf takes it as it is (the leaf is then escaped as
 * one JSON string). */
#define EF_TMPL_RAW 0
#define EF_TMPL_URL 1
#define EF_TMPL_JSON_LEAF 2
/* A URL, except that a ${NAME} at its start is not a base URL (the part of
 * a URL after {ids}, filled on its own). */
#define EF_TMPL_URL_REST 3
/* The filters of {name|json} and {name|url}. */
#define EF_TMPL_FILTER_NONE 0
#define EF_TMPL_FILTER_JSON 1 /* a JSON string literal, quoted and escaped */
#define EF_TMPL_FILTER_URL 2  /* percent-encoded (RFC 3986 unreserved bytes pass) */

/* Fills tmpl into out for place (EF_TMPL_*; 0 and 1 are the old "raw" and
 * "percent-encode").  Returns 0, or -1 with err ("no field 'year' for
 * {year}", "environment variable TMDB_KEY is not set"). */
int ef_template_fill(const char *tmpl, const ef_recipe_scope_t *scope, int place, ef_buf_t *out,
                     char *err);

/* Fills step st's body into out: its "json" form (valid JSON by
 * construction: each string leaf filled then escaped, a leaf that is one
 * {name} alone keeps the value's JSON type) or its "body" template (raw
 * place).  Returns 0 (out empty when the step has no body), or -1 with err. */
int ef_recipe_body_fill(const ef_recipe_step_t *st, const ef_recipe_scope_t *scope, ef_buf_t *out,
                        char *err);

/* Bytes of a template, and of a template or body once filled. */
#define EF_TMPL_MAX_BYTES (64u * 1024)

/* A hook for ef_recipe_json_fill: 1 when it appended leaf (a string) to out
 * itself, 0 to leave it to the usual filling, -1 with err on failure. */
typedef int (*ef_json_leaf_fn)(const cJSON *leaf, ef_buf_t *out, void *arg, char *err);

/* Appends the filled JSON value v (a "json" body or a part of it) to out,
 * as ef_recipe_body_fill does, asking hook (may be NULL) first about each
 * string leaf; -1 with err when out grows past max bytes or v nests deeper
 * than 32. */
int ef_recipe_json_fill(const cJSON *v, const ef_recipe_scope_t *scope, ef_buf_t *out, size_t max,
                        ef_json_leaf_fn hook, void *arg, char *err);

/* Appends s to out as a JSON string literal (quotes included, every control
 * character escaped, invalid UTF-8 replaced by U+FFFD). */
void ef_json_quote(ef_buf_t *out, const char *s);

/* RFC 6901 JSON Pointer; NULL when absent.  "" is the whole document. */
cJSON *ef_json_pointer(cJSON *root, const char *pointer);

/* The verdict on one step's response. */
typedef enum {
    EF_STEP_NEXT = 0,   /* go on with the next step (variables saved in scope->vars) */
    EF_STEP_DONE,       /* last step succeeded: *fields holds the extracted object */
    EF_STEP_NOT_FOUND,  /* 404 (or the step's not_found_status), or a search with no match */
    EF_STEP_CONFLICT,   /* several equally good matches */
    EF_STEP_RETRY,      /* transient: 429, 5xx, 408; the caller retries with backoff */
    EF_STEP_ERROR       /* other 4xx, 3xx, malformed JSON, missing candidates array ... */
} ef_step_verdict_t;

/* Judges a response to step i of rc.  status is the HTTP status.  For
 * EF_STEP_DONE, *fields is a new object (caller frees) holding each extract
 * name -> value (strings stay strings, numbers numbers, arrays/objects as
 * JSON), fields missing in the answer are left out.  For EF_STEP_ERROR and
 * EF_STEP_RETRY err holds a short reason ("HTTP 500", "malformed JSON at
 * byte 12", "no array at /results").  Never reads past body_len. */
ef_step_verdict_t ef_recipe_judge(const ef_recipe_t *rc, size_t step, long status,
                                  const char *body, size_t body_len, ef_recipe_scope_t *scope,
                                  cJSON **fields, char *err);

/* The end of ef_recipe_judge for an answer already parsed: saves step's
 * "as" variables from src and, for the last step, extracts the fields
 * (EF_STEP_DONE, *fields as above).  EF_STEP_NEXT, EF_STEP_DONE or
 * EF_STEP_ERROR with err.  The batch steps judge each entity's element
 * with it. */
ef_step_verdict_t ef_recipe_judge_node(const ef_recipe_t *rc, size_t step, cJSON *src,
                                       ef_recipe_scope_t *scope, cJSON **fields, char *err);

/* Parses an answer body as strictly as the judge does (UTF-8, no NUL, no
 * trailing data); NULL with err ("malformed JSON at byte 12"). */
cJSON *ef_json_parse(const char *text, size_t len, char *err);

#endif
