// SPDX-License-Identifier: MIT
/*
 * Batch steps: one request asks a provider about up to `max` entities at
 * once, and its answer is split back to each entity by an id.  Pure code,
 * like the recipe it belongs to (lib/ef_recipe): parsing and checking a
 * step's "batch" block, joining the ids into a URL or a JSON body, and
 * splitting an answer.  The worker (worker/batch.c) gathers the entities,
 * spends one rate-limit token per request and applies the verdicts.
 *
 * The recipe syntax (docs/providers.md):
 *
 *   "batch": {"max": 100, "ids": "query" | "json", "join": ",",
 *             "field": "id", "results": "/data", "id": "/id",
 *             "item": {...}}
 *
 * - ids "query": the step's URL holds {ids} once; it becomes the entities'
 *   ids, each percent-encoded, joined by `join` (taken as it is).  A URL is
 *   kept under EF_BATCH_URL_MAX_BYTES: ids that do not fit go in the next
 *   request.
 * - ids "json": the step's "json" body holds one string leaf that is
 *   exactly "{ids}"; it becomes a JSON array with one element per entity:
 *   the entity's `field` (a string stays a string, a number a number), or
 *   `item` filled for that entity (a "json" form whose string leaves are
 *   templates of the entity's fields).
 * - The answer: `results` points at an array; each element's id is read at
 *   `id` (inside the element) and compared as text, exactly, with the
 *   entity's `field` (the number 42 equals the string "42").  One element:
 *   the step's "as" and the recipe's "extract" read it.  None: not_found.
 *   Several: a conflict.  An id asked twice in one batch is sent once.
 * - A batch step is the recipe's first step; later steps run per entity.
 *   Its url, headers and body name only {ids}, {provider} and ${ENV}: the
 *   request is shared by every entity in it.
 */
#ifndef EF_BATCH_H
#define EF_BATCH_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "ef_recipe.h"
#include "ef_text.h"

#define EF_BATCH_MAX_LIMIT 1000     /* entities per request, at most */
#define EF_BATCH_URL_MAX_BYTES 8192 /* a query batch's URL stays under this */
#define EF_BATCH_JOIN_MAX_BYTES 8   /* bytes of a separator */

typedef enum { EF_BATCH_IDS_QUERY = 0, EF_BATCH_IDS_JSON } ef_batch_ids_t;

typedef struct ef_batch_s {
    long max;           /* entities per request, 1 to EF_BATCH_MAX_LIMIT */
    ef_batch_ids_t ids; /* where the ids go */
    char *join;         /* separator of the ids in the URL */
    char *field;        /* the entity field sent and matched */
    char *results;      /* JSON Pointer to the array of answers */
    char *id;           /* JSON Pointer to the id inside one answer */
    cJSON *item;        /* one element of {ids} in the json form, NULL = the id value */
} ef_batch_t;

/* Parses a step's "batch" object into *out (the caller frees it with
 * ef_batch_free).  On error returns -1, field names the member relative to
 * "batch" ("max", "" for the block itself) and msg says what is wrong. */
int ef_batch_parse(const cJSON *v, ef_batch_t **out, char *field, size_t flen, char *msg);

/* Checks a parsed step that has a batch (index i in its recipe): its place,
 * where {ids} stands, and that its templates name nothing of one entity.
 * -1 with field (relative to the step: "url", "json", "results") and msg. */
int ef_batch_check_step(const ef_recipe_step_t *st, size_t i, char *field, size_t flen, char *msg);

void ef_batch_free(ef_batch_t *b);

/* The entity's id as text into *id (pointing into the entity or into num).
 * 0, or -1 with err when the field is missing or not a string or number. */
int ef_batch_entity_id(const ef_batch_t *b, const cJSON *entity, char *num, size_t numlen,
                       const char **id, char *err);

/* Checks that entity can go in a batch of step st: its id (as
 * ef_batch_entity_id) and, with an "item", that the item fills for it.
 * 0 with *id set, or -1 with err (the entity is an error, without a
 * request). */
int ef_batch_entity_check(const ef_recipe_step_t *st, cJSON *entity, const ef_recipe_scope_t *scope,
                          char *num, size_t numlen, const char **id, char *err);

/* Fills the step's URL for the ids[0..n) (ids given twice are sent once).
 * With ids "query", ids are added while the URL stays under
 * EF_BATCH_URL_MAX_BYTES; *used says how many of ids[] went in (at least
 * one, else the call fails), the others are for another request.  scope
 * holds no entity.  0, or -1 with err. */
int ef_batch_fill_url(const ef_recipe_step_t *st, const char *const *ids, size_t n,
                      const ef_recipe_scope_t *scope, ef_buf_t *out, size_t *used, char *err);

/* Fills the step's body for the entities[0..n) whose ids are ids[0..n):
 * with ids "json", the "{ids}" leaf becomes their array (an id given twice
 * once); else the step's own body.  scope holds no entity; each item is
 * filled with its entity over it.  0 (out empty when no body), or -1 with
 * err. */
int ef_batch_fill_body(const ef_recipe_step_t *st, cJSON *const *entities, const char *const *ids,
                       size_t n, const ef_recipe_scope_t *scope, ef_buf_t *out, char *err);

/* ---- answers ---- */

typedef struct {
    char *id;  /* the answer's id as text */
    cJSON *el; /* the answer (borrowed from doc) */
} ef_batch_answer_t;

typedef struct {
    cJSON *doc;
    ef_batch_answer_t *v; /* sorted by id */
    size_t n;
    size_t skipped; /* answers without a usable id */
} ef_batch_split_t;

typedef enum {
    EF_BATCH_SPLIT = 0, /* a 2xx with the answers array: *out holds them */
    EF_BATCH_NOT_FOUND, /* the step's not_found_status: every entity is not_found */
    EF_BATCH_RETRY,     /* 429, 408, 5xx: retry the request */
    EF_BATCH_UNUSABLE   /* other statuses, malformed JSON, no array: err says why */
} ef_batch_verdict_t;

/* Judges a batch answer of step st (max_body: the recipe's).  For
 * EF_BATCH_SPLIT, *out holds the answers (ef_batch_split_free). */
ef_batch_verdict_t ef_batch_judge(const ef_recipe_step_t *st, long status, const char *body,
                                  size_t len, size_t max_body, ef_batch_split_t *out, char *err);

/* The answer for id, NULL when none; *count says how many answers have it. */
cJSON *ef_batch_find(const ef_batch_split_t *s, const char *id, size_t *count);

void ef_batch_split_free(ef_batch_split_t *s);

#endif
