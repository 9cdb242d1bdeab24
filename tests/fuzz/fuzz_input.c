// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the enqueuer's input parsers (lib/ef_input.c), plain
 * lines, CSV and NDJSON over memory.  The first input byte sets the read
 * step (how many bytes each read hands out, 0 = all at once, so records are
 * split at every position across reads) and picks the id field; the rest is
 * the file, parsed in each of the 3 formats until the end or a fatal error.
 * Every entity must be a JSON object whose "id" is the entity id, the id
 * must pass the id rule, lines must only grow, and an error must name the
 * input and a line.
 */
#include "ef_input.h"

#include "ef_common.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 100000

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "check failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_entity(const ef_entity_t *e) {
    char why[EF_ERR_LEN];
    CHECK(e->record && e->id && e->record_len > 0);
    CHECK(strlen(e->record) == e->record_len);
    CHECK(ef_entity_id_check(e->id, e->id_len, why) == 0);
    CHECK(e->record[0] == '{' && e->record[e->record_len - 1] == '}');
    CHECK(strncmp(e->record, "{\"id\":", 6) == 0);
    cJSON *o = cJSON_ParseWithLength(e->record, e->record_len);
    CHECK(cJSON_IsObject(o));
    cJSON *id = o->child;
    CHECK(id && id->string && strcmp(id->string, "id") == 0 && cJSON_IsString(id));
    CHECK(strlen(id->valuestring) == e->id_len && memcmp(id->valuestring, e->id, e->id_len) == 0);
    cJSON_Delete(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const ef_input_format_t fmts[] = {EF_INPUT_LINES, EF_INPUT_CSV, EF_INPUT_NDJSON};
    if (size < 1)
        return 0;
    size_t step = data[0] & 0x3f; /* 0..63 */
    const char *id_field = (data[0] & 0x40) ? "code" : NULL;
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        ef_input_t *in = ef_input_open_mem(buf, len, fmts[f], id_field, "fuzz.in");
        ef_input_set_read_step(in, step);
        long last_line = 0;
        for (int n = 0; n < MAX_RECORDS; n++) {
            char err[EF_ERR_LEN] = "";
            ef_entity_t e;
            memset(&e, 0, sizeof e);
            int r = ef_input_next(in, &e, err);
            CHECK(r >= EF_INPUT_FATAL && r <= 1);
            if (r == 0)
                break;
            if (r < 0) {
                CHECK(strncmp(err, "fuzz.in", 7) == 0);
                if (r == EF_INPUT_FATAL) {
                    CHECK(ef_input_next(in, &e, err) == EF_INPUT_FATAL);
                    break;
                }
                continue;
            }
            check_entity(&e);
            CHECK(e.line >= 1 && e.line > last_line);
            last_line = e.line;
        }
        ef_input_free(in);
    }
    free(buf);
    return 0;
}
