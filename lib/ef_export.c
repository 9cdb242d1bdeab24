// SPDX-License-Identifier: MIT
/*
 * The results export lines (see ef_export.h), shared by the enqueuer and
 * statusd, and the typed fields JSON the worker stores for them.
 */
#include "ef_export.h"

#include "ef_common.h"
#include "ef_job.h"

#include <stdlib.h>
#include <string.h>

void ef_export_line(ef_buf_t *out, const char *entity, size_t elen, char outcome,
                    const char *result, size_t rlen) {
    ef_buf_appends(out, "{\"entity\":");
    ef_buf_append(out, entity, elen);
    ef_buf_appends(out, ",\"outcome\":\"");
    ef_buf_appends(out, ef_outcome_name(outcome));
    ef_buf_appendc(out, '"');
    if (result && rlen > 0) {
        ef_buf_appends(out, ",\"result\":");
        ef_buf_append(out, result, rlen);
    }
    ef_buf_appends(out, "}\n");
}

long ef_export_chunk(ef_buf_t *out, const char *data, size_t dlen, const char *outcomes,
                     size_t olen, const char *results, size_t rlen, const ef_export_filter_t *f) {
    const char *p = data, *end = data + dlen;
    long i = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            char oc = outcomes && (size_t)i < olen ? outcomes[i] : EF_OUTCOME_NONE;
            if (!ef_outcome_known(oc))
                oc = EF_OUTCOME_NONE;
            if (!f || !f->only || f->outcome == oc) {
                const char *rj = NULL;
                size_t rl = 0;
                if (!results || !ef_job_result_find(results, rlen, i, &rj, &rl))
                    rj = NULL;
                ef_export_line(out, p, n, oc, rj, rl);
            }
            i++;
        }
        p += n + 1;
    }
    return i;
}

char *ef_export_fields_json(const cJSON *fields) {
    ef_buf_t out;
    ef_buf_init(&out);
    ef_buf_appendc(&out, '{');
    for (const cJSON *f = cJSON_IsObject(fields) ? fields->child : NULL; f; f = f->next) {
        int later = 0;
        if (!f->string)
            continue;
        for (const cJSON *g = f->next; g && !later; g = g->next)
            later = g->string && strcmp(g->string, f->string) == 0;
        if (later)
            continue; /* the last of two with one name wins, as in the result hash */
        char *v = cJSON_PrintUnformatted(f);
        if (!v)
            continue;
        if (out.len > 1)
            ef_buf_appendc(&out, ',');
        ef_buf_append_json_str(&out, f->string, strlen(f->string));
        ef_buf_appendc(&out, ':');
        ef_buf_appends(&out, v);
        cJSON_free(v);
    }
    ef_buf_appendc(&out, '}');
    return out.s;
}
