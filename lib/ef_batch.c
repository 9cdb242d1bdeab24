// SPDX-License-Identifier: MIT
/*
 * Batch steps (see ef_batch.h and docs/providers.md): the "batch" block of
 * a recipe step, the ids joined into a request, and the answer split back
 * by id.  Pure code: the worker's worker/batch.c does the requests.
 */
#include "ef_batch.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_POINTER_MAX 1024 /* bytes, results and id pointers */
#define BATCH_FIELD_MAX 64     /* bytes, the entity field name */

static void setf(char *field, size_t flen, const char *s) {
    snprintf(field, flen, "%s", s);
}

/* ---- Parsing ---- */

/* Checks the syntax of each string leaf of an item template: filled with
 * no entity, only a missing field or variable may fail.  -1 with msg. */
static int item_ok(const cJSON *v, int depth, char *msg) {
    if (depth > 32) {
        ef_seterr(msg, "nested deeper than 32");
        return -1;
    }
    if (cJSON_IsString(v)) {
        ef_buf_t out;
        char why[EF_ERR_LEN] = "";
        ef_buf_init(&out);
        int rc = ef_template_fill(v->valuestring, NULL, EF_TMPL_JSON_LEAF, &out, why);
        ef_buf_free(&out);
        if (rc < 0 && strncmp(why, "no field", 8) != 0 &&
            strncmp(why, "environment variable", 20) != 0) {
            ef_seterr(msg, "%s", why);
            return -1;
        }
        return 0;
    }
    for (const cJSON *c = v->child; c; c = c->next)
        if (item_ok(c, depth + 1, msg) < 0)
            return -1;
    return 0;
}

static int pointer_ok(const char *p) {
    size_t n = strlen(p);
    if ((n && p[0] != '/') || n > BATCH_POINTER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '~' && p[i + 1] != '0' && p[i + 1] != '1')
            return 0;
    return 1;
}

static int field_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > BATCH_FIELD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || c >= 0x80))
            return 0;
    }
    return 1;
}

/* An optional string member; -1 (field and msg set) when not a string. */
static int opt_str(const cJSON *v, const char *key, const char **out, char *field, size_t flen,
                   char *msg) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, key);
    *out = NULL;
    if (!m)
        return 0;
    if (!cJSON_IsString(m)) {
        setf(field, flen, key);
        ef_seterr(msg, "must be a string");
        return -1;
    }
    *out = m->valuestring;
    return 0;
}

int ef_batch_parse(const cJSON *v, ef_batch_t **out, char *field, size_t flen, char *msg) {
    static const char *const keys[] = {"max",     "ids", "join", "field",
                                       "results", "id",  "item", NULL};
    const char *ids, *jn, *fd, *res, *id;
    const cJSON *m;
    ef_batch_t *b;

    *out = NULL;
    setf(field, flen, "");
    if (!cJSON_IsObject(v)) {
        ef_seterr(msg, "must be an object {\"max\": N, \"ids\": \"query\"|\"json\", \"results\": "
                       "POINTER, \"id\": POINTER}");
        return -1;
    }
    for (const cJSON *k = v->child; k; k = k->next) {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k->string) != 0)
            i++;
        setf(field, flen, k->string);
        if (!keys[i]) {
            ef_seterr(msg, "unknown field");
            return -1;
        }
        for (const cJSON *e = v->child; e != k; e = e->next)
            if (strcmp(e->string, k->string) == 0) {
                ef_seterr(msg, "given twice");
                return -1;
            }
    }
    m = cJSON_GetObjectItemCaseSensitive(v, "max");
    setf(field, flen, "max");
    if (!m) {
        ef_seterr(msg, "required (entities per request, 1 to %d)", EF_BATCH_MAX_LIMIT);
        return -1;
    }
    if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) || m->valuedouble < 1 ||
        m->valuedouble > EF_BATCH_MAX_LIMIT) {
        ef_seterr(msg, "must be an integer from 1 to %d", EF_BATCH_MAX_LIMIT);
        return -1;
    }
    if (opt_str(v, "ids", &ids, field, flen, msg) < 0 ||
        opt_str(v, "join", &jn, field, flen, msg) < 0 ||
        opt_str(v, "field", &fd, field, flen, msg) < 0 ||
        opt_str(v, "results", &res, field, flen, msg) < 0 ||
        opt_str(v, "id", &id, field, flen, msg) < 0)
        return -1;
    setf(field, flen, "ids");
    if (!ids) {
        ef_seterr(msg,
                  "required: \"query\" ({ids} in the URL) or \"json\" ({ids} in the json body)");
        return -1;
    }
    if (strcmp(ids, "query") != 0 && strcmp(ids, "json") != 0) {
        ef_seterr(msg, "must be \"query\" or \"json\"");
        return -1;
    }
    setf(field, flen, "join");
    if (jn && strcmp(ids, "query") != 0) {
        ef_seterr(msg, "only with \"ids\": \"query\"");
        return -1;
    }
    if (jn && (!*jn || strlen(jn) > EF_BATCH_JOIN_MAX_BYTES)) {
        ef_seterr(msg, "must be 1 to %d bytes", EF_BATCH_JOIN_MAX_BYTES);
        return -1;
    }
    for (const char *p = jn; p && *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#' || *p == '{' ||
            *p == '}') {
            ef_seterr(msg, "must be printable ASCII without spaces, '#', '{' or '}' "
                           "(percent-encode it: \"%%7C\")");
            return -1;
        }
    setf(field, flen, "field");
    if (fd && !field_ok(fd)) {
        ef_seterr(msg, "must be an entity field name: 1 to %d letters, digits, _ . -",
                  BATCH_FIELD_MAX);
        return -1;
    }
    setf(field, flen, "results");
    if (!res) {
        ef_seterr(msg, "required (a JSON Pointer to the array of answers, \"\" for the whole "
                       "document)");
        return -1;
    }
    if (!pointer_ok(res)) {
        ef_seterr(msg,
                  "must be a JSON Pointer starting with \"/\" (or \"\"), ~ followed by 0 or 1");
        return -1;
    }
    setf(field, flen, "id");
    if (!id) {
        ef_seterr(msg, "required (a JSON Pointer to the id inside one answer)");
        return -1;
    }
    if (!pointer_ok(id)) {
        ef_seterr(msg,
                  "must be a JSON Pointer starting with \"/\" (or \"\"), ~ followed by 0 or 1");
        return -1;
    }
    m = cJSON_GetObjectItemCaseSensitive(v, "item");
    setf(field, flen, "item");
    if (m && strcmp(ids, "json") != 0) {
        ef_seterr(msg, "only with \"ids\": \"json\"");
        return -1;
    }
    if (m && !cJSON_IsObject(m) && !cJSON_IsArray(m) && !cJSON_IsString(m)) {
        ef_seterr(msg, "must be an object, an array or a string whose string leaves are templates");
        return -1;
    }
    if (m && item_ok(m, 0, msg) < 0)
        return -1;
    b = ef_calloc(1, sizeof *b);
    b->max = (long)cJSON_GetObjectItemCaseSensitive(v, "max")->valuedouble;
    b->ids = strcmp(ids, "json") == 0 ? EF_BATCH_IDS_JSON : EF_BATCH_IDS_QUERY;
    b->join = ef_strdup(jn ? jn : ",");
    b->field = ef_strdup(fd ? fd : "id");
    b->results = ef_strdup(res);
    b->id = ef_strdup(id);
    b->item = m ? cJSON_Duplicate(m, 1) : NULL;
    *out = b;
    setf(field, flen, "");
    return 0;
}

void ef_batch_free(ef_batch_t *b) {
    if (!b)
        return;
    free(b->join);
    free(b->field);
    free(b->results);
    free(b->id);
    cJSON_Delete(b->item);
    free(b);
}

/* ---- Template names ---- */

static int name_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c >= 0x80;
}

/* Walks the {name} placeholders of t (already checked by the recipe
 * parser): counts {ids} in *nids and copies the first other name that is
 * not {provider} into bad (empty when none).  When ids_at is not NULL it
 * gets the offset of the first {ids}. */
static void tmpl_names(const char *t, size_t *nids, size_t *ids_at, char *bad, size_t blen) {
    bad[0] = '\0';
    for (size_t i = 0; t[i];) {
        if ((t[i] == '{' && t[i + 1] == '{') || (t[i] == '}' && t[i + 1] == '}')) {
            i += 2;
        } else if (t[i] == '$' && t[i + 1] == '{' && t[i + 2] != '{') {
            while (t[i] && t[i] != '}')
                i++;
        } else if (t[i] == '{') {
            size_t n = 0;
            while (name_byte((unsigned char)t[i + 1 + n]))
                n++;
            if (n == 3 && strncmp(t + i + 1, "ids", 3) == 0 && t[i + 4] == '}') {
                if (*nids == 0 && ids_at)
                    *ids_at = i;
                (*nids)++;
            } else if (!(n == 8 && strncmp(t + i + 1, "provider", 8) == 0) && !bad[0]) {
                snprintf(bad, blen, "%.*s", (int)(n < 64 ? n : 64), t + i + 1);
            }
            i += 1 + n;
        } else {
            i++;
        }
    }
}

/* Counts "{ids}" leaves of a json body and checks its other string leaves. */
static void json_names(const cJSON *v, size_t *leaves, size_t *nids, char *bad, size_t blen) {
    if (cJSON_IsString(v)) {
        char b2[72];
        if (strcmp(v->valuestring, "{ids}") == 0) {
            (*leaves)++;
            return;
        }
        tmpl_names(v->valuestring, nids, NULL, b2, sizeof b2);
        if (b2[0] && !bad[0])
            snprintf(bad, blen, "%s", b2);
        return;
    }
    for (const cJSON *c = v ? v->child : NULL; c; c = c->next)
        json_names(c, leaves, nids, bad, blen);
}

int ef_batch_check_step(const ef_recipe_step_t *st, size_t i, char *field, size_t flen, char *msg) {
    const ef_batch_t *b = st->batch;
    size_t nids = 0, leaves = 0;
    char bad[72];
    if (i != 0) {
        setf(field, flen, "batch");
        ef_seterr(msg, "only the first step can be a batch step (later steps run per entity)");
        return -1;
    }
    if (st->results || st->nmatch) {
        setf(field, flen, st->results ? "results" : "match");
        ef_seterr(msg, "a batch step reads its answers with batch.results and batch.id");
        return -1;
    }
    tmpl_names(st->url, &nids, NULL, bad, sizeof bad);
    setf(field, flen, "url");
    if (bad[0]) {
        ef_seterr(msg,
                  "{%s}: a batch request is shared by its entities; its url, headers and "
                  "body take only {ids}, {provider} and ${ENV}",
                  bad);
        return -1;
    }
    if (b->ids == EF_BATCH_IDS_QUERY && nids != 1) {
        ef_seterr(msg, "must hold {ids} once with \"ids\": \"query\" (it has %zu)", nids);
        return -1;
    }
    if (b->ids == EF_BATCH_IDS_JSON && nids != 0) {
        ef_seterr(msg, "{ids} goes in the json body with \"ids\": \"json\"");
        return -1;
    }
    for (size_t h = 0; h < st->nheaders; h++) {
        size_t hn = 0;
        tmpl_names(st->headers[h], &hn, NULL, bad, sizeof bad);
        if (bad[0] || hn) {
            setf(field, flen, "headers");
            ef_seterr(msg, "{%s}: a batch step's headers take only {provider} and ${ENV}",
                      bad[0] ? bad : "ids");
            return -1;
        }
    }
    if (st->body) {
        size_t bn = 0;
        tmpl_names(st->body, &bn, NULL, bad, sizeof bad);
        setf(field, flen, "body");
        if (bad[0] || bn) {
            ef_seterr(msg,
                      "{%s}: a batch step's text body takes only {provider} and ${ENV} "
                      "(ids go in a \"json\" body)",
                      bad[0] ? bad : "ids");
            return -1;
        }
    }
    if (st->json) {
        size_t jn = 0;
        json_names(st->json, &leaves, &jn, bad, sizeof bad);
        setf(field, flen, "json");
        if (bad[0] || jn) {
            ef_seterr(msg,
                      "{%s}: a batch step's json body takes only a \"{ids}\" leaf, "
                      "{provider} and ${ENV}",
                      bad[0] ? bad : "ids");
            return -1;
        }
    }
    if (b->ids == EF_BATCH_IDS_JSON && leaves != 1) {
        setf(field, flen, "json");
        ef_seterr(msg,
                  "needs exactly one string leaf \"{ids}\" with \"ids\": \"json\" (it has %zu)",
                  leaves);
        return -1;
    }
    if (b->ids == EF_BATCH_IDS_QUERY && leaves != 0) {
        setf(field, flen, "json");
        ef_seterr(msg, "\"{ids}\" in the body needs \"ids\": \"json\"");
        return -1;
    }
    setf(field, flen, "");
    return 0;
}

/* ---- Filling a request ---- */

int ef_batch_entity_id(const ef_batch_t *b, const cJSON *entity, char *num, size_t numlen,
                       const char **id, char *err) {
    const cJSON *v = entity ? cJSON_GetObjectItemCaseSensitive(entity, b->field) : NULL;
    *id = NULL;
    if (cJSON_IsString(v) && v->valuestring && *v->valuestring) {
        *id = v->valuestring;
        return 0;
    }
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            snprintf(num, numlen, "%.0f", d == 0 ? 0.0 : d);
        else
            snprintf(num, numlen, "%.17g", d);
        *id = num;
        return 0;
    }
    ef_seterr(err, "batch: no usable '%s' (a string or a number) to ask for", b->field);
    return -1;
}

/* 1 when ids[i] equals an earlier one. */
static int seen_before(const char *const *ids, size_t i) {
    for (size_t k = 0; k < i; k++)
        if (strcmp(ids[k], ids[i]) == 0)
            return 1;
    return 0;
}

static void put_pct(ef_buf_t *out, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            ef_buf_appendc(out, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ef_buf_append(out, e, 3);
        }
    }
}

int ef_batch_fill_url(const ef_recipe_step_t *st, const char *const *ids, size_t n,
                      const ef_recipe_scope_t *scope, ef_buf_t *out, size_t *used, char *err) {
    const ef_batch_t *b = st->batch;
    size_t nids = 0, at = 0, added = 0;
    char bad[72];
    *used = 0;
    if (b->ids != EF_BATCH_IDS_QUERY) {
        *used = n;
        return ef_template_fill(st->url, scope, EF_TMPL_URL, out, err);
    }
    tmpl_names(st->url, &nids, &at, bad, sizeof bad);
    if (nids != 1) {
        ef_seterr(err, "no {ids} in the url");
        return -1;
    }
    char *head = ef_strdup(st->url);
    head[at] = '\0';
    const char *tail = st->url + at + 5;
    ef_buf_t h, t, one;
    ef_buf_init(&h);
    ef_buf_init(&t);
    ef_buf_init(&one);
    int rc = -1;
    if (ef_template_fill(head, scope, EF_TMPL_URL, &h, err) < 0 ||
        ef_template_fill(tail, scope, EF_TMPL_URL_REST, &t, err) < 0)
        goto out;
    ef_buf_reset(out);
    ef_buf_append(out, h.s, h.len);
    for (size_t i = 0; i < n; i++) {
        if (seen_before(ids, i)) {
            *used = i + 1;
            continue;
        }
        ef_buf_reset(&one);
        ef_buf_append(&one, "", 0);
        put_pct(&one, ids[i]);
        size_t sep = added ? strlen(b->join) : 0;
        if (out->len + sep + one.len + t.len >= EF_BATCH_URL_MAX_BYTES) {
            if (added == 0) {
                ef_seterr(err, "batch: the url is longer than %d bytes with one id",
                          EF_BATCH_URL_MAX_BYTES);
                goto out;
            }
            break;
        }
        if (sep)
            ef_buf_appends(out, b->join);
        ef_buf_append(out, one.s, one.len);
        added++;
        *used = i + 1;
    }
    ef_buf_append(out, t.s, t.len);
    rc = 0;
out:
    if (rc < 0) {
        ef_buf_reset(out);
        *used = 0;
    }
    free(head);
    ef_buf_free(&h);
    ef_buf_free(&t);
    ef_buf_free(&one);
    return rc;
}

/* Fills one JSON value of the step's body with the shared scope, through a
 * step of that value alone (the recipe's "json" filler). */
/* Appends the filled JSON value v to out (each at most as long as a body). */
static int fill_value(const cJSON *v, const ef_recipe_scope_t *scope, ef_buf_t *out, char *err) {
    return ef_recipe_json_fill(v, scope, out, out->len + EF_TMPL_MAX_BYTES, NULL, NULL, err);
}

int ef_batch_entity_check(const ef_recipe_step_t *st, cJSON *entity, const ef_recipe_scope_t *scope,
                          char *num, size_t numlen, const char **id, char *err) {
    if (ef_batch_entity_id(st->batch, entity, num, numlen, id, err) < 0)
        return -1;
    if (!st->batch->item)
        return 0;
    ef_recipe_scope_t s = {entity, NULL, scope ? scope->defaults : NULL};
    ef_buf_t one;
    ef_buf_init(&one);
    int rc = fill_value(st->batch->item, &s, &one, err);
    ef_buf_free(&one);
    if (rc < 0)
        *id = NULL;
    return rc;
}

/* Appends the array that replaces the "{ids}" leaf. */
static int fill_ids(const ef_batch_t *b, cJSON *const *entities, const char *const *ids, size_t n,
                    const ef_recipe_scope_t *scope, ef_buf_t *out, char *err) {
    int first = 1;
    ef_buf_appendc(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (seen_before(ids, i))
            continue;
        if (!first)
            ef_buf_appendc(out, ',');
        first = 0;
        if (b->item) {
            ef_recipe_scope_t s = {entities[i], NULL, scope ? scope->defaults : NULL};
            if (fill_value(b->item, &s, out, err) < 0)
                return -1;
            continue;
        }
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(entities[i], b->field);
        if (cJSON_IsNumber(v))
            ef_buf_appends(out, ids[i]); /* the number as it was rendered */
        else
            ef_json_quote(out, ids[i]);
    }
    ef_buf_appendc(out, ']');
    return 0;
}

/* What the "{ids}" leaf of a batch body is filled from. */
typedef struct {
    const ef_batch_t *b;
    cJSON *const *entities;
    const char *const *ids;
    size_t n;
    const ef_recipe_scope_t *scope;
} ids_leaf_t;

/* ef_json_leaf_fn: the "{ids}" leaf becomes the array of the batch. */
static int ids_leaf(const cJSON *leaf, ef_buf_t *out, void *arg, char *err) {
    const ids_leaf_t *l = arg;
    if (strcmp(leaf->valuestring, "{ids}") != 0)
        return 0;
    return fill_ids(l->b, l->entities, l->ids, l->n, l->scope, out, err) < 0 ? -1 : 1;
}

int ef_batch_fill_body(const ef_recipe_step_t *st, cJSON *const *entities, const char *const *ids,
                       size_t n, const ef_recipe_scope_t *scope, ef_buf_t *out, char *err) {
    if (st->batch->ids != EF_BATCH_IDS_JSON || !st->json)
        return ef_recipe_body_fill(st, scope, out, err);
    ef_buf_reset(out);
    ef_buf_append(out, "", 0);
    ids_leaf_t l = {st->batch, entities, ids, n, scope};
    if (ef_recipe_json_fill(st->json, scope, out, SIZE_MAX, ids_leaf, &l, err) <
        0) { /* the ids bound it */
        ef_buf_reset(out);
        return -1;
    }
    return 0;
}

/* ---- Splitting an answer ---- */

static int answer_cmp(const void *a, const void *b) {
    return strcmp(((const ef_batch_answer_t *)a)->id, ((const ef_batch_answer_t *)b)->id);
}

ef_batch_verdict_t ef_batch_judge(const ef_recipe_step_t *st, long status, const char *body,
                                  size_t len, size_t max_body, ef_batch_split_t *out, char *err) {
    const ef_batch_t *b = st->batch;
    char num[64];
    memset(out, 0, sizeof *out);
    if (status == st->not_found_status)
        return EF_BATCH_NOT_FOUND;
    if (status == 429 || status == 408 || (status >= 500 && status <= 599)) {
        ef_seterr(err, "HTTP %ld", status);
        return EF_BATCH_RETRY;
    }
    if (status < 200 || status > 299) {
        ef_seterr(err, "HTTP %ld", status);
        return EF_BATCH_UNUSABLE;
    }
    if (len > max_body) {
        ef_seterr(err, "body larger than max_body (%zu bytes)", max_body);
        return EF_BATCH_UNUSABLE;
    }
    cJSON *doc = ef_json_parse(body, len, err);
    if (!doc)
        return EF_BATCH_UNUSABLE;
    cJSON *arr = ef_json_pointer(doc, b->results), *el;
    if (!cJSON_IsArray(arr)) {
        ef_seterr(err, "no array at %s", *b->results ? b->results : "the document root");
        cJSON_Delete(doc);
        return EF_BATCH_UNUSABLE;
    }
    size_t cap = (size_t)cJSON_GetArraySize(arr);
    out->doc = doc;
    out->v = ef_calloc(cap ? cap : 1, sizeof *out->v);
    cJSON_ArrayForEach(el, arr) {
        const cJSON *idv = ef_json_pointer(el, b->id);
        const char *s = NULL;
        if (cJSON_IsString(idv) && idv->valuestring) {
            s = idv->valuestring;
        } else if (cJSON_IsNumber(idv) && isfinite(idv->valuedouble)) {
            double d = idv->valuedouble;
            if (d == floor(d) && fabs(d) < 9007199254740992.0)
                snprintf(num, sizeof num, "%.0f", d == 0 ? 0.0 : d);
            else
                snprintf(num, sizeof num, "%.17g", d);
            s = num;
        }
        if (!s) {
            out->skipped++;
            continue;
        }
        out->v[out->n].id = ef_strdup(s);
        out->v[out->n].el = el;
        out->n++;
    }
    qsort(out->v, out->n, sizeof *out->v, answer_cmp);
    return EF_BATCH_SPLIT;
}

cJSON *ef_batch_find(const ef_batch_split_t *s, const char *id, size_t *count) {
    size_t lo = 0, hi = s->n;
    *count = 0;
    while (lo < hi) { /* the first answer whose id is not below id */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->v[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t k = lo;
    while (k < s->n && strcmp(s->v[k].id, id) == 0)
        k++;
    *count = k - lo;
    return k > lo ? s->v[lo].el : NULL;
}

void ef_batch_split_free(ef_batch_split_t *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].id);
    free(s->v);
    cJSON_Delete(s->doc);
    memset(s, 0, sizeof *s);
}
