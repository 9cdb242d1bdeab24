// SPDX-License-Identifier: MIT
/*
 * batch.c: the mock provider's batch endpoints, where one request asks for
 * many items (the shape of bulk enrichment APIs):
 *
 *   GET  /items?ids=1,2,3                     -> {"data":[ITEM,...]}
 *   POST /items/bulk {"requests":[{"id":"1"},...]}
 *        -> {"results":[{"id":"1","status":200,"data":ITEM},...]}
 *
 * Only the ids in the catalogue are answered (the item rule of catalog.c),
 * in the order asked, each once; the others are simply absent.  At most
 * MP_BATCH_MAX_IDS ids per request (400 past it, or for none).  The knob
 * batch_fail makes requests of two or more ids answer 503 until that many
 * did: a provider whose bulk endpoint is broken while single lookups work.
 * Each request is one request for the referee (one token of its bucket);
 * /stats counts batch requests, ids asked and ids found.
 */
#include "mockprov.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int mp_route_is_batch(const char *path, size_t pn, int is_post)
{
    return is_post ? mp_span_eq(path, pn, "/items/bulk")
                   : mp_span_eq(path, pn, "/items");
}

static int mp_batch_error(mp_buf *body, int status, const char *msg)
{
    mp_buf_puts(body, "{\"error\":");
    mp_json_str(body, msg, strlen(msg));
    mp_buf_puts(body, "}");
    return status;
}

/* Whether ids[i] (n bytes) equals an earlier id of the request. */
static int mp_batch_seen(char (*ids)[64], const size_t *lens, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (lens[k] == lens[i] && memcmp(ids[k], ids[i], lens[i]) == 0)
            return 1;
    return 0;
}

/* Answers ids[0..n): found items only, each once. */
static int mp_batch_answer(mp_server *s, char (*ids)[64], size_t *lens,
                           size_t n, int bulk, mp_buf *body)
{
    static const char failing[] =
        "{\"status_code\":11,\"status_message\":\"Bulk lookups are failing.\"}";
    int first = 1;
    s->ref.batch_ids += n;
    if (n >= 2 && s->ref.batch_failed < s->knobs.batch_fail) {
        s->ref.batch_failed++;
        mp_buf_append(body, failing, sizeof(failing) - 1);
        return 503;
    }
    mp_buf_puts(body, bulk ? "{\"results\":[" : "{\"data\":[");
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        if (mp_batch_seen(ids, lens, i) ||
            mp_catalog_item_id(&s->cat, ids[i], lens[i], &id) != 0)
            continue;
        s->ref.batch_found++;
        if (!first)
            mp_buf_puts(body, ",");
        first = 0;
        if (bulk) {
            mp_buf_puts(body, "{\"id\":");
            mp_json_str(body, ids[i], lens[i]);
            mp_buf_puts(body, ",\"status\":200,\"data\":");
        }
        mp_catalog_item_json(&s->cat, id, body);
        if (bulk)
            mp_buf_puts(body, "}");
    }
    mp_buf_puts(body, "]}");
    return 200;
}

/* Reads the ids of a batch request into ids/lens and answers: GET with
 * ?ids= joined by ',' (each id percent-decoded after the split), or POST
 * with a JSON body. */
static int mp_batch_route(mp_server *s, const char *path, size_t pn,
                          const char *query, size_t qn, const char *in,
                          size_t in_len, char (*ids)[64], size_t *lens,
                          mp_buf *body)
{
    size_t n = 0;
    int bulk = mp_span_eq(path, pn, "/items/bulk");

    s->ref.batch_requests++;
    if (!bulk) {
        const char *cur = query, *end = query + qn, *k, *v = NULL;
        size_t kn, vn = 0;
        int have = 0;
        while (mp_http_query_next(&cur, end, &k, &kn, &v, &vn))
            if (mp_span_eq(k, kn, "ids")) {
                have = 1;
                break;
            }
        if (!have || vn == 0)
            return mp_batch_error(body, 400, "ids= is required");
        const char *p = v, *stop = v + vn;
        while (p <= stop) {
            const char *comma = memchr(p, ',', (size_t)(stop - p));
            const char *e = comma ? comma : stop;
            if (n == MP_BATCH_MAX_IDS)
                return mp_batch_error(body, 400, "at most 1000 ids");
            size_t l = mp_http_pct_decode(ids[n], sizeof(ids[n]), p,
                                          (size_t)(e - p));
            lens[n++] = l == (size_t)-1 ? 0 : l; /* too long: matches nothing */
            p = e + 1;
        }
        return mp_batch_answer(s, ids, lens, n, 0, body);
    }
    cJSON *doc = cJSON_ParseWithLength(in, in_len);
    cJSON *reqs = cJSON_GetObjectItemCaseSensitive(doc, "requests"), *el;
    if (!cJSON_IsArray(reqs)) {
        cJSON_Delete(doc);
        return mp_batch_error(body, 400,
                              "the body must be {\"requests\":[{\"id\":..},..]}");
    }
    cJSON_ArrayForEach(el, reqs) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(el, "id");
        if (n == MP_BATCH_MAX_IDS) {
            cJSON_Delete(doc);
            return mp_batch_error(body, 400, "at most 1000 ids");
        }
        if (cJSON_IsString(id) && strlen(id->valuestring) < sizeof(ids[n])) {
            lens[n] = strlen(id->valuestring);
            memcpy(ids[n], id->valuestring, lens[n]);
        } else if (cJSON_IsNumber(id) && id->valuedouble >= 0 &&
                   id->valuedouble < 1e15) {
            lens[n] = (size_t)snprintf(ids[n], sizeof(ids[n]), "%.0f",
                                       id->valuedouble);
        } else {
            lens[n] = 0; /* matches nothing */
        }
        n++;
    }
    cJSON_Delete(doc);
    if (n == 0)
        return mp_batch_error(body, 400, "no ids");
    return mp_batch_answer(s, ids, lens, n, 1, body);
}

int mp_route_batch(mp_server *s, const char *path, size_t pn, const char *query,
                   size_t qn, const char *in, size_t in_len, mp_buf *body)
{
    char (*ids)[64] = mp_xmalloc(MP_BATCH_MAX_IDS * sizeof(*ids));
    size_t *lens = mp_xmalloc(MP_BATCH_MAX_IDS * sizeof(*lens));
    int status = mp_batch_route(s, path, pn, query, qn, in, in_len, ids, lens,
                                body);
    free(ids);
    free(lens);
    return status;
}
