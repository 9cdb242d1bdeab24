// SPDX-License-Identifier: MIT
/*
 * Provider recipes (see ef_recipe.h and docs/providers.md): the strict
 * parser of the recipe file, the template filler, JSON Pointers and the
 * judge that turns one step's HTTP answer into a verdict.  Pure code: the
 * worker does the requests, the rate limiting and the Redis writes.
 *
 * Every parse error reads "FILE: recipe 'NAME': FIELD.PATH: problem"; unknown
 * and duplicate keys are errors, so a typo never passes silently.
 */
#include "ef_recipe.h"

#include "ef_batch.h"
#include "ef_notify.h"
#include "ef_sink.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TMPL_MAX_BYTES EF_TMPL_MAX_BYTES
#define NAME_MAX_BYTES 64           /* bytes, a {name}, an extract or "as" name */
#define ENV_MAX_BYTES 128           /* bytes, a ${NAME} */
#define ENV_DEFAULT_MAX_BYTES 1024  /* bytes, the default of a ${NAME:-default} */
#define POINTER_MAX_BYTES 1024      /* bytes, a JSON Pointer in a recipe */
#define KEY_MAX_BYTES 512           /* bytes, the result key template */
#define FILE_MAX_BYTES (4u << 20)   /* bytes, the recipe file */
#define MAX_BODY_MIN 1024u
#define MAX_BODY_MAX (256u << 20)

struct ef_recipes_s {
    ef_recipe_t *v;
    size_t n;
};

/* ---- Small helpers ---- */

static int is_alnum(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A template name byte: ASCII letters, digits, "_.-", or any UTF-8 byte. */
static int name_byte(unsigned char c) {
    return is_alnum(c) || c == '_' || c == '.' || c == '-' || c >= 0x80;
}

static int name_ok(const char *s, size_t n) {
    if (n == 0 || n > NAME_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_byte((unsigned char)s[i]))
            return 0;
    return 1;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int is_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Renders a string, number or boolean as text into num (numbers) or points
 * at its string; returns -1 for null, arrays, objects and non-finite numbers. */
static int scalar_text(const cJSON *v, char *num, size_t numlen, const char **s) {
    if (cJSON_IsString(v) && v->valuestring) {
        *s = v->valuestring;
    } else if (cJSON_IsBool(v)) {
        *s = cJSON_IsTrue(v) ? "true" : "false";
    } else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            snprintf(num, numlen, "%.0f", d == 0 ? 0.0 : d);
        else
            snprintf(num, numlen, "%.17g", d);
        *s = num;
    } else {
        return -1;
    }
    return 0;
}

/* ---- Templates ---- */

/* Looks a {name} up: the entity's field first, then the saved variables,
 * then the shared defaults.  A JSON null counts as missing. */
static const cJSON *scope_lookup(const ef_recipe_scope_t *scope, const char *name) {
    const cJSON *v = NULL;
    if (!scope)
        return NULL;
    if (scope->entity)
        v = cJSON_GetObjectItemCaseSensitive(scope->entity, name);
    if ((!v || cJSON_IsNull(v)) && scope->vars)
        v = cJSON_GetObjectItemCaseSensitive(scope->vars, name);
    if ((!v || cJSON_IsNull(v)) && scope->defaults)
        v = cJSON_GetObjectItemCaseSensitive(scope->defaults, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* Appends s percent-encoded: only RFC 3986 unreserved bytes pass. */
static void put_url(ef_buf_t *out, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_alnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            ef_buf_appendc(out, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ef_buf_append(out, e, 3);
        }
    }
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 when p does not
 * start one (overlong forms, surrogates and code points past U+10FFFF are
 * invalid). */
static size_t utf8_len(const unsigned char *p) {
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* Appends s as a JSON string literal, quotes included: '"', '\\' and every
 * control character escaped, a byte that is not valid UTF-8 replaced by
 * U+FFFD, so the text is valid JSON whatever s holds. */
void ef_json_quote(ef_buf_t *out, const char *s) {
    static const char hex[] = "0123456789abcdef";
    ef_buf_appendc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n == 0) {
            ef_buf_append(out, "\\ufffd", 6);
            p++;
            continue;
        }
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            ef_buf_append(out, e, 2);
        } else if (*p == '\n') {
            ef_buf_append(out, "\\n", 2);
        } else if (*p == '\r') {
            ef_buf_append(out, "\\r", 2);
        } else if (*p == '\t') {
            ef_buf_append(out, "\\t", 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            ef_buf_append(out, e, 6);
        } else {
            ef_buf_append(out, (const char *)p, n);
        }
        p += n;
    }
    ef_buf_appendc(out, '"');
}

/* Appends a substituted value as its filter says (EF_TMPL_FILTER_*), else as
 * the place wants: percent-encoded in a URL (a JSON literal too), verbatim
 * in a JSON leaf (the leaf is escaped as a whole), elsewhere raw but
 * without control characters (they would split a header).  Returns 0, or
 * -1 with err. */
static int put_value(ef_buf_t *out, const char *s, int place, int filter, const char *what,
                     char *err) {
    if (filter == EF_TMPL_FILTER_JSON) {
        if (place != EF_TMPL_URL) {
            ef_json_quote(out, s);
            return 0;
        }
        ef_buf_t q;
        ef_buf_init(&q);
        ef_json_quote(&q, s);
        put_url(out, q.s);
        ef_buf_free(&q);
        return 0;
    }
    if (filter == EF_TMPL_FILTER_URL || place == EF_TMPL_URL) {
        put_url(out, s);
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (place == EF_TMPL_RAW && ((*p < 0x20 && *p != '\t') || *p == 0x7f)) {
            ef_seterr(err, "%s holds a control character", what);
            return -1;
        }
        ef_buf_appendc(out, (char)*p);
    }
    return 0;
}

/* Reads an optional "|json" or "|url" at q (the filter of a placeholder).
 * Returns the bytes read (0 when none) and sets *filter, or -1 for "|"
 * followed by anything else. */
static int filter_parse(const char *q, int *filter) {
    *filter = EF_TMPL_FILTER_NONE;
    if (q[0] != '|')
        return 0;
    if (strncmp(q + 1, "json}", 5) == 0) {
        *filter = EF_TMPL_FILTER_JSON;
        return 5;
    }
    if (strncmp(q + 1, "url}", 4) == 0) {
        *filter = EF_TMPL_FILTER_URL;
        return 4;
    }
    return -1;
}

/* Length of the default text at d (up to its closing '}'), or -1 when it
 * is too long, unterminated or holds a brace or a control character. */
static size_t env_default_len(const char *d) {
    size_t n = 0;
    while (d[n] && d[n] != '}' && d[n] != '{' && (unsigned char)d[n] >= 0x20 && d[n] != 0x7f &&
           n <= ENV_DEFAULT_MAX_BYTES)
        n++;
    return d[n] == '}' && n <= ENV_DEFAULT_MAX_BYTES ? n : (size_t)-1;
}

/* A base URL, the value that starts a url template: http:// or https://
 * then no space or control character (it goes in as it is). */
static int base_url_ok(const char *v) {
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return 0;
    for (; *v; v++)
        if ((unsigned char)*v <= 0x20 || *v == 0x7f)
            return 0;
    return 1;
}

/* Walks template t.  With out == NULL it only checks the syntax; else it
 * appends the filled text to out.  Returns 0, or -1 with err. */
static int tmpl_walk(const char *t, const ef_recipe_scope_t *scope, int place, ef_buf_t *out,
                     char *err) {
    int filter, fl;
    size_t start = out ? out->len : 0;
    const char *p = t;
    char name[ENV_MAX_BYTES + 1], num[64], what[ENV_MAX_BYTES + 32];
    char dval[ENV_DEFAULT_MAX_BYTES + 1];
    int base = place == EF_TMPL_URL;
    if (place == EF_TMPL_URL_REST)
        place = EF_TMPL_URL;
    while (*p) {
        size_t at = (size_t)(p - t);
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            if (out)
                ef_buf_appendc(out, p[0]);
            p += 2;
        } else if (p[0] == '}') {
            ef_seterr(err, "unmatched '}' at byte %zu (write }} for a literal brace)", at);
            return -1;
        } else if (p[0] == '$' && p[1] == '{' && p[2] != '{') {
            const char *q = p + 2, *dflt = NULL;
            size_t n = 0, dn = 0;
            while ((q[n] >= 'A' && q[n] <= 'Z') || q[n] == '_' ||
                   (n > 0 && q[n] >= '0' && q[n] <= '9'))
                n++;
            if (q[n] == ':' && q[n + 1] == '-') {
                dflt = q + n + 2;
                dn = env_default_len(dflt);
                if (dn == (size_t)-1) {
                    ef_seterr(err,
                              "malformed default in ${...:-...} at byte %zu (at most %d bytes, "
                              "no braces or control characters)",
                              at, ENV_DEFAULT_MAX_BYTES);
                    return -1;
                }
                filter = EF_TMPL_FILTER_NONE;
                fl = (int)(dn + 2);
            } else if ((fl = filter_parse(q + n, &filter)) < 0) {
                ef_seterr(err, "unknown filter in ${...} at byte %zu (filters are |json and |url)",
                          at);
                return -1;
            }
            if (n == 0 || n > ENV_MAX_BYTES || q[n + (size_t)fl] != '}') {
                ef_seterr(err, "malformed ${...} at byte %zu (names are [A-Z_][A-Z0-9_]*)", at);
                return -1;
            }
            p = q + n + fl + 1;
            if (!out)
                continue;
            memcpy(name, q, n);
            name[n] = '\0';
            const char *val = getenv(name);
            if (dflt && (!val || !val[0])) {
                memcpy(dval, dflt, dn);
                dval[dn] = '\0';
                val = dval;
            }
            if (!val) {
                ef_seterr(err, "environment variable %s is not set", name);
                return -1;
            }
            if (base && at == 0 && filter == EF_TMPL_FILTER_NONE) {
                if (!base_url_ok(val)) {
                    ef_seterr(err,
                              "environment variable %s starts the url: it must be a base URL "
                              "(http:// or https://, no spaces or control characters)",
                              name);
                    return -1;
                }
                ef_buf_append(out, val, strlen(val));
            } else {
                snprintf(what, sizeof what, "environment variable %s", name);
                if (put_value(out, val, place, filter, what, err) < 0)
                    return -1;
            }
        } else if (p[0] == '{') {
            const char *q = p + 1;
            size_t n = 0;
            while (name_byte((unsigned char)q[n]))
                n++;
            int opt = q[n] == '?';
            fl = filter_parse(q + n + opt, &filter);
            if (fl < 0) {
                ef_seterr(err, "unknown filter in {...} at byte %zu (filters are |json and |url)",
                          at);
                return -1;
            }
            if (n == 0 || n > NAME_MAX_BYTES || q[n + (size_t)opt + (size_t)fl] != '}') {
                if (n > NAME_MAX_BYTES)
                    ef_seterr(err, "name longer than %d bytes in {...} at byte %zu", NAME_MAX_BYTES,
                              at);
                else if (n == 0 && q[opt] == '}')
                    ef_seterr(err, "empty {} at byte %zu (write {{ for a literal brace)", at);
                else
                    ef_seterr(err,
                              "malformed {...} at byte %zu (names are letters, digits, _ . -; "
                              "write {{ for a literal brace)",
                              at);
                return -1;
            }
            p = q + n + opt + fl + 1;
            if (!out)
                continue;
            memcpy(name, q, n);
            name[n] = '\0';
            const cJSON *v = scope_lookup(scope, name);
            const char *s;
            if (!v) {
                if (opt)
                    continue;
                ef_seterr(err, "no field '%s' for {%s}", name, name);
                return -1;
            }
            if (scalar_text(v, num, sizeof num, &s) < 0) {
                ef_seterr(err, "field '%s' for {%s} is not a string, number or boolean", name,
                          name);
                return -1;
            }
            snprintf(what, sizeof what, "field '%s'", name);
            if (put_value(out, s, place, filter, what, err) < 0)
                return -1;
        } else {
            size_t n = strcspn(p, "{}$");
            n = n ? n : 1;
            if (out)
                ef_buf_append(out, p, n);
            p += n;
        }
        if ((out ? out->len - start : (size_t)(p - t)) > TMPL_MAX_BYTES) {
            ef_seterr(err, "template longer than %u bytes once filled", TMPL_MAX_BYTES);
            return -1;
        }
    }
    return 0;
}

/* Fills tmpl into out (reset first, so out holds exactly the filled text).
 * {name} takes the entity's field, else a saved variable. */
int ef_template_fill(const char *tmpl, const ef_recipe_scope_t *scope, int place, ef_buf_t *out,
                     char *err) {
    ef_buf_reset(out);
    ef_buf_append(out, "", 0);
    if (!tmpl || tmpl_walk(tmpl, scope, place, out, err) < 0) {
        if (!tmpl)
            ef_seterr(err, "no template");
        ef_buf_reset(out);
        return -1;
    }
    return 0;
}

/* ---- The "json" body form ---- */

/* The field name when t is exactly one "{name}" or "{name?}" (no filter),
 * copied into name; NULL otherwise.  *opt tells the "?". */
static const char *lone_field(const char *t, char *name, size_t cap, int *opt) {
    size_t n = 0;
    if (t[0] != '{' || t[1] == '{')
        return NULL;
    while (name_byte((unsigned char)t[1 + n]))
        n++;
    *opt = t[1 + n] == '?';
    if (n == 0 || n >= cap || t[1 + n + (size_t)*opt] != '}' || t[2 + n + (size_t)*opt] != '\0')
        return NULL;
    memcpy(name, t + 1, n);
    name[n] = '\0';
    return name;
}

/* The hook and bound of one ef_recipe_json_fill. */
typedef struct {
    const ef_recipe_scope_t *scope;
    size_t max;
    ef_json_leaf_fn hook;
    void *arg;
} json_fill_t;

/* Appends the filled JSON value v (a "json" body or a part of it) to out. */
static int json_fill(const cJSON *v, const json_fill_t *f, ef_buf_t *out, int depth, char *err) {
    const ef_recipe_scope_t *scope = f->scope;
    char name[NAME_MAX_BYTES + 1], num[64];
    int opt, rc;
    if (depth > 32) {
        ef_seterr(err, "json body nested deeper than 32");
        return -1;
    }
    if (f->hook && cJSON_IsString(v) && (rc = f->hook(v, out, f->arg, err)) != 0) {
        if (rc < 0)
            return -1;
    } else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        int obj = cJSON_IsObject(v), first = 1;
        ef_buf_appendc(out, obj ? '{' : '[');
        for (const cJSON *c = v->child; c; c = c->next) {
            if (!first)
                ef_buf_appendc(out, ',');
            first = 0;
            if (obj) {
                ef_json_quote(out, c->string ? c->string : "");
                ef_buf_appendc(out, ':');
            }
            if (json_fill(c, f, out, depth + 1, err) < 0)
                return -1;
        }
        ef_buf_appendc(out, obj ? '}' : ']');
    } else if (cJSON_IsString(v) && lone_field(v->valuestring, name, sizeof name, &opt)) {
        const cJSON *val = scope_lookup(scope, name);
        const char *s;
        if (!val) {
            if (!opt) {
                ef_seterr(err, "no field '%s' for {%s}", name, name);
                return -1;
            }
            ef_buf_append(out, "null", 4);
        } else if (cJSON_IsString(val)) {
            ef_json_quote(out, val->valuestring);
        } else if (scalar_text(val, num, sizeof num, &s) == 0) {
            ef_buf_append(out, s, strlen(s)); /* a number or a boolean, as JSON */
        } else {
            ef_seterr(err, "field '%s' for {%s} is not a string, number or boolean", name, name);
            return -1;
        }
    } else if (cJSON_IsString(v)) {
        ef_buf_t leaf;
        ef_buf_init(&leaf);
        if (ef_template_fill(v->valuestring, scope, EF_TMPL_JSON_LEAF, &leaf, err) < 0) {
            ef_buf_free(&leaf);
            return -1;
        }
        ef_json_quote(out, leaf.s);
        ef_buf_free(&leaf);
    } else {
        char *lit = cJSON_PrintUnformatted(v); /* a number, a boolean, null */
        if (!lit) {
            ef_seterr(err, "out of memory");
            return -1;
        }
        ef_buf_append(out, lit, strlen(lit));
        free(lit);
    }
    if (out->len > f->max) {
        ef_seterr(err, "json body longer than %zu bytes once filled", f->max);
        return -1;
    }
    return 0;
}

int ef_recipe_json_fill(const cJSON *v, const ef_recipe_scope_t *scope, ef_buf_t *out, size_t max,
                        ef_json_leaf_fn hook, void *arg, char *err) {
    json_fill_t f = {scope, max, hook, arg};
    return json_fill(v, &f, out, 0, err);
}

int ef_recipe_body_fill(const ef_recipe_step_t *st, const ef_recipe_scope_t *scope, ef_buf_t *out,
                        char *err) {
    ef_buf_reset(out);
    ef_buf_append(out, "", 0);
    if (st->json) {
        if (ef_recipe_json_fill(st->json, scope, out, TMPL_MAX_BYTES, NULL, NULL, err) < 0) {
            ef_buf_reset(out);
            return -1;
        }
        return 0;
    }
    return st->body ? ef_template_fill(st->body, scope, EF_TMPL_RAW, out, err) : 0;
}

/* ---- JSON Pointers ---- */

/* Steps from node into the reference token tok[0..n) (still escaped);
 * NULL when absent or the token is malformed. */
static cJSON *ptr_step(cJSON *node, const char *tok, size_t n) {
    if (cJSON_IsArray(node)) {
        size_t idx = 0;
        if (n == 0 || n > 10 || (tok[0] == '0' && n > 1))
            return NULL;
        for (size_t i = 0; i < n; i++) {
            if (tok[i] < '0' || tok[i] > '9')
                return NULL;
            idx = idx * 10 + (size_t)(tok[i] - '0');
        }
        cJSON *c = node->child;
        while (c && idx--)
            c = c->next;
        return c;
    }
    if (!cJSON_IsObject(node))
        return NULL;
    char small[256], *key = n < sizeof small ? small : ef_malloc(n + 1);
    size_t k = 0;
    cJSON *r = NULL;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] != '~') {
            key[k++] = tok[i];
        } else if (i + 1 < n && (tok[i + 1] == '0' || tok[i + 1] == '1')) {
            key[k++] = tok[++i] == '0' ? '~' : '/';
        } else {
            goto out;
        }
    }
    key[k] = '\0';
    for (cJSON *c = node->child; c; c = c->next)
        if (c->string && strlen(c->string) == k && memcmp(c->string, key, k) == 0) {
            r = c;
            break;
        }
out:
    if (key != small)
        free(key);
    return r;
}

cJSON *ef_json_pointer(cJSON *root, const char *pointer) {
    if (!root || !pointer || (*pointer && *pointer != '/'))
        return NULL;
    const char *p = pointer;
    while (root && *p) {
        size_t n = strcspn(++p, "/");
        root = ptr_step(root, p, n);
        p += n;
    }
    return root;
}

/* Evaluates an extract pointer, where a "*" segment maps the rest over an
 * array (elements lacking it are skipped); returns a new item or NULL. */
static cJSON *extract_at(cJSON *node, const char *p) {
    while (node && *p) {
        size_t n = strcspn(++p, "/");
        if (n == 1 && *p == '*') {
            if (!cJSON_IsArray(node))
                return NULL;
            cJSON *arr = cJSON_CreateArray();
            for (cJSON *el = node->child; el; el = el->next) {
                cJSON *r = extract_at(el, p + 1);
                if (r)
                    cJSON_AddItemToArray(arr, r);
            }
            return arr;
        }
        node = ptr_step(node, p, n);
        p += n;
    }
    return node && !cJSON_IsNull(node) ? cJSON_Duplicate(node, 1) : NULL;
}

/* ---- Parsing the recipe file ---- */

typedef struct {
    const char *source;
    const char *recipe; /* NULL outside a recipe */
    char *err;
} pctx_t;

/* Sets the error "SOURCE: recipe 'R': PATH: message"; returns -1. */
static int perr(const pctx_t *c, const char *path, const char *fmt, ...) EF_PRINTF(3, 4);
static int perr(const pctx_t *c, const char *path, const char *fmt, ...) {
    char msg[EF_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->recipe)
        ef_seterr(c->err, "%s: recipe '%s': %s: %s", c->source, c->recipe, path, msg);
    else
        ef_seterr(c->err, "%s: %s: %s", c->source, path, msg);
    return -1;
}

/* Formats a field path into buf (truncated when too long). */
static const char *pathf(char *buf, size_t len, const char *fmt, ...) EF_PRINTF(3, 4);
static const char *pathf(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return buf;
}

/* Joins a field path: prefix "" gives key alone. */
static const char *join(char *buf, size_t len, const char *prefix, const char *key) {
    return pathf(buf, len, "%s%s%s", prefix, *prefix ? "." : "", key);
}

/* Rejects keys not in allowed (NULL-terminated) and keys given twice. */
static int check_keys(const pctx_t *c, const cJSON *obj, const char *path,
                      const char *const *allowed) {
    char fp[256];
    for (const cJSON *k = obj->child; k; k = k->next) {
        size_t i = 0;
        while (allowed && allowed[i] && strcmp(allowed[i], k->string) != 0)
            i++;
        if (allowed && !allowed[i])
            return perr(c, join(fp, sizeof fp, path, k->string), "unknown field");
        for (const cJSON *e = obj->child; e != k; e = e->next)
            if (strcmp(e->string, k->string) == 0)
                return perr(c, join(fp, sizeof fp, path, k->string), "given twice");
    }
    return 0;
}

/* Reads an optional integer obj.key in [lo, hi], dflt when absent. */
static int get_int(const pctx_t *c, const cJSON *obj, const char *path, const char *key, double lo,
                   double hi, long dflt, long *out) {
    char fp[256];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = dflt;
    if (!v)
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return perr(c, join(fp, sizeof fp, path, key), "must be an integer from %.0f to %.0f", lo,
                    hi);
    *out = (long)d;
    return 0;
}

/* Reads an optional string obj.key (NULL when absent). */
static int get_str(const pctx_t *c, const cJSON *obj, const char *path, const char *key,
                   const char **out) {
    char fp[256];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return perr(c, join(fp, sizeof fp, path, key), "must be a string");
    *out = v->valuestring;
    return 0;
}

static int check_tmpl(const pctx_t *c, const char *path, const char *t) {
    char why[EF_ERR_LEN];
    if (strlen(t) > TMPL_MAX_BYTES)
        return perr(c, path, "longer than %u bytes", TMPL_MAX_BYTES);
    if (tmpl_walk(t, NULL, 0, NULL, why) < 0)
        return perr(c, path, "%s", why);
    return 0;
}

static int check_pointer(const pctx_t *c, const char *path, const char *p, int allow_star) {
    size_t n = strlen(p);
    if (n && p[0] != '/')
        return perr(c, path,
                    "must be a JSON Pointer starting with \"/\" (or \"\" for the whole document)");
    if (n > POINTER_MAX_BYTES)
        return perr(c, path, "longer than %d bytes", POINTER_MAX_BYTES);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '~' && p[i + 1] != '0' && p[i + 1] != '1')
            return perr(c, path, "'~' must be followed by 0 or 1 (~0 is ~, ~1 is /)");
        if (!allow_star && p[i] == '*' && p[i - 1] == '/' && (p[i + 1] == '/' || !p[i + 1]))
            return perr(c, path, "\"*\" segments are only allowed in extract");
    }
    return 0;
}

/* Parses an object of name -> JSON Pointer (extract, match, as). */
static int parse_map(const pctx_t *c, const cJSON *obj, const char *path, int allow_star,
                     ef_recipe_map_t **out, size_t *nout) {
    char fp[256];
    if (!cJSON_IsObject(obj))
        return perr(c, path, "must be an object of name -> JSON Pointer");
    if (check_keys(c, obj, path, NULL) < 0)
        return -1;
    size_t n = (size_t)cJSON_GetArraySize(obj), i = 0;
    *out = ef_calloc(n ? n : 1, sizeof **out);
    *nout = 0;
    for (const cJSON *k = obj->child; k; k = k->next, i++) {
        join(fp, sizeof fp, path, k->string);
        if (!name_ok(k->string, strlen(k->string)))
            return perr(c, fp, "names are 1 to %d letters, digits, _ . -", NAME_MAX_BYTES);
        if (!cJSON_IsString(k))
            return perr(c, fp, "must be a JSON Pointer string");
        if (check_pointer(c, fp, k->valuestring, allow_star) < 0)
            return -1;
        (*out)[i].name = ef_strdup(k->string);
        (*out)[i].pointer = ef_strdup(k->valuestring);
        *nout = i + 1;
    }
    return 0;
}

/* Checks a header "Name: value" (token name, template value, one line). */
static int check_header(const pctx_t *c, const char *path, const char *h) {
    size_t n = 0;
    while (is_alnum((unsigned char)h[n]) || (h[n] && strchr("!#$%&'*+-.^_`|~", h[n])))
        n++;
    if (n == 0 || h[n] != ':')
        return perr(c, path, "must be \"Name: value\" with a token name");
    if (strpbrk(h, "\r\n"))
        return perr(c, path, "must be one line");
    return check_tmpl(c, path, h);
}

static int parse_headers(const pctx_t *c, const cJSON *v, const char *path, ef_recipe_step_t *st) {
    char fp[256];
    ef_buf_t b;
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
        return perr(c, path, "must be an array of \"Name: value\" or an object name -> value");
    if (cJSON_GetArraySize(v) > EF_RECIPE_MAX_HEADERS)
        return perr(c, path, "at most %d headers", EF_RECIPE_MAX_HEADERS);
    st->headers = ef_calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof *st->headers);
    ef_buf_init(&b);
    for (const cJSON *h = v->child; h; h = h->next) {
        if (cJSON_IsObject(v))
            join(fp, sizeof fp, path, h->string);
        else
            pathf(fp, sizeof fp, "%s[%zu]", path, st->nheaders);
        if (!cJSON_IsString(h)) {
            ef_buf_free(&b);
            return perr(c, fp, "must be a string");
        }
        ef_buf_reset(&b);
        if (cJSON_IsObject(v)) {
            ef_buf_appends(&b, h->string);
            ef_buf_appends(&b, ": ");
        }
        ef_buf_appends(&b, h->valuestring);
        st->headers[st->nheaders++] = ef_strdup(b.s);
        if (check_header(c, fp, b.s) < 0) {
            ef_buf_free(&b);
            return -1;
        }
    }
    ef_buf_free(&b);
    return 0;
}

/* Checks every string leaf of a "json" body as a template (at most 32
 * levels deep). */
static int check_json_leaves(const pctx_t *c, const cJSON *v, const char *path, int depth) {
    char fp[256];
    if (depth > 32)
        return perr(c, path, "nested deeper than 32");
    size_t i = 0;
    for (const cJSON *k = v->child; k; k = k->next, i++) {
        if (cJSON_IsObject(v))
            join(fp, sizeof fp, path, k->string);
        else
            pathf(fp, sizeof fp, "%s[%zu]", path, i);
        if (cJSON_IsString(k) && check_tmpl(c, fp, k->valuestring) < 0)
            return -1;
        if ((cJSON_IsObject(k) || cJSON_IsArray(k)) && check_json_leaves(c, k, fp, depth + 1) < 0)
            return -1;
    }
    return 0;
}

/* The "json" body form: an object or array whose string leaves are
 * templates.  Adds "Content-Type: application/json" unless the step names a
 * Content-Type of its own. */
static int parse_json_body(const pctx_t *c, const cJSON *v, const char *path,
                           ef_recipe_step_t *st) {
    char fp[256];
    join(fp, sizeof fp, path, "json");
    if (st->body)
        return perr(c, fp, "give either \"body\" or \"json\", not both");
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return perr(c, fp, "must be an object or an array (its string leaves are templates)");
    if (check_json_leaves(c, v, fp, 0) < 0)
        return -1;
    st->json = cJSON_Duplicate(v, 1);
    if (!st->json)
        return perr(c, fp, "out of memory");
    for (size_t i = 0; i < st->nheaders; i++)
        if (strncasecmp(st->headers[i], "content-type:", 13) == 0)
            return 0;
    if (st->nheaders >= EF_RECIPE_MAX_HEADERS)
        return perr(c, fp, "needs a Content-Type header and the step has %d already", EF_RECIPE_MAX_HEADERS);
    char **h = realloc(st->headers, (st->nheaders + 2) * sizeof *h);
    if (!h)
        return perr(c, fp, "out of memory");
    st->headers = h;
    st->headers[st->nheaders++] = ef_strdup("Content-Type: application/json");
    st->headers[st->nheaders] = NULL;
    return 0;
}

static int parse_step(const pctx_t *c, const cJSON *js, size_t i, ef_recipe_step_t *st,
                      const ef_recipe_t *rc) {
    static const char *const keys[] = {
        "name",    "method", "url",    "headers", "body", "json", "not_found_status",
        "results", "match",  "select", "as",      "batch",  NULL};
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
    char path[32], fp[256];
    const char *s;
    const cJSON *v;
    long nf;
    snprintf(path, sizeof path, "steps[%zu]", i);
    st->not_found_status = 404;
    if (!cJSON_IsObject(js))
        return perr(c, path, "must be an object");
    if (check_keys(c, js, path, keys) < 0 || get_str(c, js, path, "name", &s) < 0)
        return -1;
    if (s && !ef_provider_name_valid(s))
        return perr(c, join(fp, sizeof fp, path, "name"), "must be 1 to 64 letters, digits, _ . -");
    if (s)
        for (size_t k = 0; k < i; k++)
            if (strcmp(rc->steps[k].name, s) == 0)
                return perr(c, join(fp, sizeof fp, path, "name"), "step '%s' is named twice", s);
    snprintf(fp, sizeof fp, "step%zu", i + 1);
    st->name = ef_strdup(s ? s : fp);
    if (get_str(c, js, path, "method", &s) < 0)
        return -1;
    size_t m = 0;
    while (s && methods[m] && strcmp(methods[m], s) != 0)
        m++;
    if (s && !methods[m])
        return perr(c, join(fp, sizeof fp, path, "method"),
                    "must be GET, POST, PUT, PATCH or DELETE");
    st->method = ef_strdup(s ? s : "GET");
    if (get_str(c, js, path, "url", &s) < 0)
        return -1;
    join(fp, sizeof fp, path, "url");
    if (!s)
        return perr(c, fp, "required");
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0 &&
        !(s[0] == '{' && s[1] != '{') && strncmp(s, "${", 2) != 0)
        return perr(c, fp, "must start with http:// or https:// (or a template)");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return perr(c, fp,
                        "must not contain spaces or control characters (they are percent-encoded "
                        "only in substituted values)");
    st->url = ef_strdup(s);
    if (check_tmpl(c, fp, s) < 0)
        return -1;
    const char *close = strchr(s, '}'), *dflt = strstr(s, ":-");
    if (strncmp(s, "${", 2) == 0 && close && dflt && dflt < close &&
        strncmp(dflt + 2, "http://", 7) != 0 && strncmp(dflt + 2, "https://", 8) != 0)
        return perr(c, fp,
                    "the default of the base URL ${...:-...} must start with http:// or https://");
    if ((v = cJSON_GetObjectItemCaseSensitive(js, "headers")) &&
        parse_headers(c, v, join(fp, sizeof fp, path, "headers"), st) < 0)
        return -1;
    if (get_str(c, js, path, "body", &s) < 0)
        return -1;
    if (s) {
        st->body = ef_strdup(s);
        if (check_tmpl(c, join(fp, sizeof fp, path, "body"), s) < 0)
            return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(js, "json")) && parse_json_body(c, v, path, st) < 0)
        return -1;
    if (get_int(c, js, path, "not_found_status", 201, 599, 404, &nf) < 0)
        return -1;
    st->not_found_status = (int)nf;
    if (get_str(c, js, path, "results", &s) < 0)
        return -1;
    if (s && check_pointer(c, join(fp, sizeof fp, path, "results"), s, 0) < 0)
        return -1;
    st->results = s ? ef_strdup(s) : NULL;
    if ((v = cJSON_GetObjectItemCaseSensitive(js, "match"))) {
        join(fp, sizeof fp, path, "match");
        if (!st->results)
            return perr(c, fp, "needs \"results\" (a search step)");
        if (parse_map(c, v, fp, 0, &st->match, &st->nmatch) < 0)
            return -1;
    }
    if (get_str(c, js, path, "select", &s) < 0)
        return -1;
    join(fp, sizeof fp, path, "select");
    if (s && strcmp(s, "unique") != 0 && strcmp(s, "first") != 0)
        return perr(c, fp, "must be \"unique\" or \"first\"");
    if (s && !st->results)
        return perr(c, fp, "needs \"results\" (a search step)");
    st->select = s && strcmp(s, "first") == 0 ? EF_SELECT_FIRST : EF_SELECT_UNIQUE;
    if ((v = cJSON_GetObjectItemCaseSensitive(js, "as")) &&
        parse_map(c, v, join(fp, sizeof fp, path, "as"), 0, &st->save, &st->nsave) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(js, "batch"))) {
        char bf[64], msg[EF_ERR_LEN];
        if (ef_batch_parse(v, &st->batch, bf, sizeof bf, msg) < 0)
            return perr(c, pathf(fp, sizeof fp, "%s.batch%s%s", path, *bf ? "." : "", bf), "%s",
                        msg);
        if (ef_batch_check_step(st, i, bf, sizeof bf, msg) < 0)
            return perr(c, join(fp, sizeof fp, path, bf), "%s", msg);
    }
    return 0;
}

static int parse_rate(const pctx_t *c, const cJSON *v, ef_recipe_t *rc) {
    static const char *const keys[] = {"requests", "per_seconds", "burst", NULL};
    const cJSON *ps;
    if (!v)
        return 0;
    if (!cJSON_IsObject(v))
        return perr(c, "rate",
                    "must be an object {\"requests\": N, \"per_seconds\": S, \"burst\": B}");
    if (check_keys(c, v, "rate", keys) < 0)
        return -1;
    if (!cJSON_GetObjectItemCaseSensitive(v, "requests"))
        return perr(c, "rate.requests", "required");
    if (get_int(c, v, "rate", "requests", 1, 1e9, 0, &rc->rate_requests) < 0 ||
        get_int(c, v, "rate", "burst", 1, 1e9, rc->rate_requests, &rc->rate_burst) < 0)
        return -1;
    if ((ps = cJSON_GetObjectItemCaseSensitive(v, "per_seconds"))) {
        if (!cJSON_IsNumber(ps) || !(ps->valuedouble > 0 && ps->valuedouble <= 86400))
            return perr(c, "rate.per_seconds", "must be a number above 0 and at most 86400");
        rc->rate_per_seconds = ps->valuedouble;
    }
    return 0;
}

static int parse_results(const pctx_t *c, const cJSON *v, ef_recipe_t *rc) {
    static const char *const keys[] = {"key", "policy", NULL};
    const char *key = NULL, *pol = NULL;
    if (v) {
        if (!cJSON_IsObject(v))
            return perr(
                c, "results",
                "must be an object {\"key\": TEMPLATE, \"policy\": \"keep\"|\"overwrite\"}");
        if (check_keys(c, v, "results", keys) < 0 || get_str(c, v, "results", "key", &key) < 0 ||
            get_str(c, v, "results", "policy", &pol) < 0)
            return -1;
    }
    if (pol && strcmp(pol, "keep") != 0 && strcmp(pol, "overwrite") != 0)
        return perr(c, "results.policy", "must be \"keep\" or \"overwrite\"");
    rc->policy = pol && strcmp(pol, "keep") == 0 ? EF_POLICY_KEEP : EF_POLICY_OVERWRITE;
    if (key) {
        if (!*key || strlen(key) > KEY_MAX_BYTES)
            return perr(c, "results.key", "must be 1 to %d bytes", KEY_MAX_BYTES);
        for (const char *p = key; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                return perr(c, "results.key", "must not contain whitespace or control characters");
        if (strstr(key, "${"))
            return perr(c, "results.key", "must not use ${...} (key names are stored in Redis)");
        if (check_tmpl(c, "results.key", key) < 0)
            return -1;
    }
    rc->result_key = ef_strdup(key ? key : "result:{provider}:{id}");
    return 0;
}

static void maps_free(ef_recipe_map_t *m, size_t n) {
    for (size_t k = 0; k < n; k++) {
        free(m[k].name);
        free(m[k].pointer);
    }
    free(m);
}

/* Frees what a recipe owns (not rc itself); safe on a half-parsed recipe. */
static void recipe_clear(ef_recipe_t *rc) {
    for (size_t i = 0; rc->steps && i < rc->nsteps; i++) {
        ef_recipe_step_t *st = &rc->steps[i];
        free(st->name);
        free(st->method);
        free(st->url);
        for (size_t k = 0; k < st->nheaders; k++)
            free(st->headers[k]);
        free(st->headers);
        free(st->body);
        cJSON_Delete(st->json);
        free(st->results);
        maps_free(st->match, st->nmatch);
        maps_free(st->save, st->nsave);
        ef_batch_free(st->batch);
    }
    free(rc->steps);
    maps_free(rc->extract, rc->nextract);
    free(rc->name);
    free(rc->result_key);
    free(rc->ca_file);
    free(rc->notify);
    free(rc->client_cert);
    free(rc->client_key);
    free(rc->auth.token_url);
    free(rc->auth.client_id);
    free(rc->auth.client_secret);
    free(rc->auth.scope);
    ef_sink_conf_free(rc->sink);
}

/* ---- TLS files ---- */

#define TLS_PATH_MAX 4096         /* bytes */
#define TLS_FILE_MAX (1 << 20)    /* bytes, largest CA bundle, certificate or key */

/* Reads the file named by key (a path) and checks that it holds PEM, so
 * that a wrong path fails when the recipe loads, not at the first request.
 * *out is a copy of the path (NULL when key is absent). */
static int tls_file(const pctx_t *c, const cJSON *js, const char *key, char **out) {
    const char *path;
    char *buf;
    size_t n;
    FILE *f;
    int pem, big;

    *out = NULL;
    if (get_str(c, js, "", key, &path) < 0)
        return -1;
    if (!path)
        return 0;
    if (!*path || strlen(path) > TLS_PATH_MAX)
        return perr(c, key, "must be a file path of 1 to %d bytes", TLS_PATH_MAX);
    f = fopen(path, "rb");
    if (!f)
        return perr(c, key, "cannot read %s: %s", path, strerror(errno));
    buf = ef_malloc(TLS_FILE_MAX + 1);
    n = fread(buf, 1, TLS_FILE_MAX + 1, f);
    big = n > TLS_FILE_MAX;
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        return perr(c, key, "cannot read %s: %s", path, strerror(e));
    }
    fclose(f);
    buf[big ? TLS_FILE_MAX : n] = '\0';
    pem = strstr(buf, "-----BEGIN ") != NULL;
    free(buf);
    if (big)
        return perr(c, key, "%s is larger than %d bytes", path, TLS_FILE_MAX);
    if (!pem)
        return perr(c, key, "%s holds no PEM block (-----BEGIN ...)", path);
    *out = ef_strdup(path);
    return 0;
}

/* Parses the TLS members of a recipe: ca_file, client_cert, client_key. */
static int parse_tls(const pctx_t *c, const cJSON *js, ef_recipe_t *rc) {
    if (tls_file(c, js, "ca_file", &rc->ca_file) < 0 ||
        tls_file(c, js, "client_cert", &rc->client_cert) < 0 ||
        tls_file(c, js, "client_key", &rc->client_key) < 0)
        return -1;
    if (rc->client_key && !rc->client_cert)
        return perr(c, "client_key", "needs client_cert");
    return 0;
}

/* ---- OAuth2 ---- */

#define AUTH_TEXT_MAX 2048 /* bytes, the token URL, client id or scope template */

/* Checks an auth template: valid syntax, and no entity field (the token is
 * the farm's, shared by every entity): only ${ENV}, {provider} and {{ }}. */
static int auth_tmpl(const pctx_t *c, const char *path, const char *t) {
    if (strlen(t) > AUTH_TEXT_MAX)
        return perr(c, path, "longer than %d bytes", AUTH_TEXT_MAX);
    if (check_tmpl(c, path, t) < 0)
        return -1;
    for (const char *p = t; *p; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}'))
            p++;
        else if (p[0] == '$' && p[1] == '{')
            p += 2 + strcspn(p + 2, "}"); /* at its '}' (the syntax is checked) */
        else if (p[0] == '{' && strncmp(p, "{provider}", 10) != 0)
            return perr(c, path,
                        "takes ${ENV} and {provider} only (the token is the farm's, not "
                        "an entity's)");
    }
    return 0;
}

/* Parses the "auth" block into rc->auth (absent: no auth). */
static int parse_auth(const pctx_t *c, const cJSON *v, ef_recipe_t *rc) {
    static const char *const keys[] = {"type",  "token_url",   "client_id",    "client_secret",
                                       "scope", "client_auth", "max_outage_s", NULL};
    ef_recipe_auth_t *a = &rc->auth;
    const char *type, *url, *id, *secret, *scope, *how;
    size_t n;
    if (!v)
        return 0;
    if (!cJSON_IsObject(v))
        return perr(c, "auth", "must be an object");
    if (check_keys(c, v, "auth", keys) < 0 || get_str(c, v, "auth", "type", &type) < 0 ||
        get_str(c, v, "auth", "token_url", &url) < 0 ||
        get_str(c, v, "auth", "client_id", &id) < 0 ||
        get_str(c, v, "auth", "client_secret", &secret) < 0 ||
        get_str(c, v, "auth", "scope", &scope) < 0 ||
        get_str(c, v, "auth", "client_auth", &how) < 0 ||
        get_int(c, v, "auth", "max_outage_s", 1, 86400, EF_RECIPE_AUTH_OUTAGE_DEFAULT_S,
                &a->max_outage_s) < 0)
        return -1;
    if (!type || strcmp(type, "oauth2_client_credentials") != 0)
        return perr(c, "auth.type", "must be \"oauth2_client_credentials\"");
    if (!url)
        return perr(c, "auth.token_url", "required");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0 &&
        strncmp(url, "${", 2) != 0)
        return perr(c, "auth.token_url", "must be an http:// or https:// URL");
    if (!id || !*id)
        return perr(c, "auth.client_id", "required");
    if (!secret)
        return perr(c, "auth.client_secret", "required (an ${ENV} placeholder)");
    n = strlen(secret);
    if (n < 4 || strncmp(secret, "${", 2) != 0 || secret[n - 1] != '}' ||
        strspn(secret + 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n - 3 ||
        (secret[2] >= '0' && secret[2] <= '9') || n - 3 > ENV_MAX_BYTES)
        return perr(c, "auth.client_secret",
                    "must be one ${ENV} placeholder, such as \"${API_CLIENT_SECRET}\" (a secret is "
                    "never written in the recipe file)");
    if (how && strcmp(how, "basic") != 0 && strcmp(how, "form") != 0)
        return perr(c, "auth.client_auth", "must be \"basic\" or \"form\"");
    if (auth_tmpl(c, "auth.token_url", url) < 0 || auth_tmpl(c, "auth.client_id", id) < 0 ||
        (scope && auth_tmpl(c, "auth.scope", scope) < 0))
        return -1;
    for (size_t i = 0; i < rc->nsteps; i++)
        for (size_t k = 0; k < rc->steps[i].nheaders; k++)
            if (strncasecmp(rc->steps[i].headers[k], "Authorization:", 14) == 0)
                return perr(c, "auth",
                            "steps[%zu] sends its own Authorization header: with an auth block "
                            "the worker sends the token",
                            i);
    a->type = EF_RECIPE_AUTH_CLIENT_CREDENTIALS;
    a->token_url = ef_strdup(url);
    a->client_id = ef_strdup(id);
    a->client_secret = ef_strdup(secret);
    a->scope = scope && *scope ? ef_strdup(scope) : NULL;
    a->client_auth = how && strcmp(how, "form") == 0 ? EF_RECIPE_AUTH_FORM : EF_RECIPE_AUTH_BASIC;
    return 0;
}

/* "notify": the default completion webhook URL of the provider's jobs
 * (docs/webhooks.md), kept in its farm:providers summary for job_create. */
static int parse_notify(const pctx_t *c, const cJSON *js, ef_recipe_t *rc) {
    const char *url;
    char why[EF_ERR_LEN];
    if (get_str(c, js, "", "notify", &url) < 0)
        return -1;
    if (!url)
        return 0;
    if (!ef_notify_url_valid(url, why))
        return perr(c, "notify", "%s", why);
    rc->notify = ef_strdup(url);
    return 0;
}

/* Parses the optional "sink" member (lib/ef_sink.c validates it). */
static int parse_sink(const pctx_t *c, const cJSON *v, ef_recipe_t *rc) {
    char path[160], why[EF_ERR_LEN];
    if (!v)
        return 0;
    if (ef_sink_conf_parse(v, rc, &rc->sink, path, sizeof path, why) < 0)
        return perr(c, path, "%s", why);
    return 0;
}

/* Parses one recipe into rc (rc->name already set); -1 with the error. */
static int parse_recipe(const pctx_t *c, const cJSON *js, ef_recipe_t *rc) {
    static const char *const keys[] = {"steps",      "extract", "results",     "rate",
                                       "timeout_ms", "retries", "concurrency", "cache_ttl_s",
                                       "max_body",   "max_pause_s", "ca_file",
                                       "client_cert", "client_key", "auth", "notify",
                                       "sink", NULL};
    const cJSON *steps, *ex;
    long v;
    rc->rate_per_seconds = 1.0;
    if (!cJSON_IsObject(js))
        return perr(c, "(recipe)", "must be an object");
    if (check_keys(c, js, "", keys) < 0)
        return -1;
    steps = cJSON_GetObjectItemCaseSensitive(js, "steps");
    if (!steps)
        return perr(c, "steps", "required");
    if (!cJSON_IsArray(steps) || cJSON_GetArraySize(steps) < 1 ||
        cJSON_GetArraySize(steps) > EF_RECIPE_MAX_STEPS)
        return perr(c, "steps", "must be an array of 1 to %d steps", EF_RECIPE_MAX_STEPS);
    rc->steps = ef_calloc((size_t)cJSON_GetArraySize(steps), sizeof *rc->steps);
    for (const cJSON *s = steps->child; s; s = s->next) {
        size_t i = rc->nsteps++;
        if (parse_step(c, s, i, &rc->steps[i], rc) < 0)
            return -1;
    }
    ex = cJSON_GetObjectItemCaseSensitive(js, "extract");
    if (!ex)
        return perr(c, "extract", "required (at least one name -> JSON Pointer)");
    if (parse_map(c, ex, "extract", 1, &rc->extract, &rc->nextract) < 0)
        return -1;
    if (rc->nextract == 0)
        return perr(c, "extract", "must name at least one field");
    if (parse_results(c, cJSON_GetObjectItemCaseSensitive(js, "results"), rc) < 0 ||
        parse_rate(c, cJSON_GetObjectItemCaseSensitive(js, "rate"), rc) < 0 ||
        get_int(c, js, "", "timeout_ms", 1, 600000, EF_RECIPE_TIMEOUT_DEFAULT_MS, &rc->timeout_ms) <
            0 ||
        get_int(c, js, "", "cache_ttl_s", 0, 31536000, 0, &rc->cache_ttl_s) < 0 ||
        get_int(c, js, "", "max_pause_s", 1, 86400, EF_RECIPE_MAX_PAUSE_DEFAULT_S,
                &rc->max_pause_s) < 0)
        return -1;
    if (get_int(c, js, "", "retries", 0, 20, EF_RECIPE_RETRIES_DEFAULT, &v) < 0)
        return -1;
    rc->retries = (int)v;
    if (get_int(c, js, "", "concurrency", 0, 100000, EF_RECIPE_CONCURRENCY_DEFAULT, &v) < 0)
        return -1;
    rc->concurrency = (int)v;
    if (get_int(c, js, "", "max_body", MAX_BODY_MIN, MAX_BODY_MAX, EF_RECIPE_MAX_BODY_DEFAULT, &v) <
        0)
        return -1;
    rc->max_body = (size_t)v;
    if (parse_auth(c, cJSON_GetObjectItemCaseSensitive(js, "auth"), rc) < 0)
        return -1;
    if (parse_notify(c, js, rc) < 0)
        return -1;
    if (parse_tls(c, js, rc) < 0)
        return -1;
    return parse_sink(c, cJSON_GetObjectItemCaseSensitive(js, "sink"), rc);
}

/* Parses UTF-8 JSON text of exactly len bytes; NULL with err on failure. */
static cJSON *parse_json(const char *text, size_t len, char *err) {
    size_t bad;
    const char *end = NULL;
    if (len == 0) {
        ef_seterr(err, "malformed JSON: empty");
        return NULL;
    }
    if ((end = memchr(text, '\0', len))) {
        ef_seterr(err, "malformed JSON: NUL byte at byte %zu", (size_t)(end - text));
        return NULL;
    }
    if (!ef_utf8_valid(text, len, &bad)) {
        ef_seterr(err, "malformed JSON: invalid UTF-8 at byte %zu", bad);
        return NULL;
    }
    char *copy = ef_malloc(len + 1); /* cJSON then cannot read past len */
    memcpy(copy, text, len);
    copy[len] = '\0';
    end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
    if (doc)
        while (at < len && is_space((unsigned char)copy[at]))
            at++;
    if (!doc || at != len) {
        cJSON_Delete(doc);
        doc = NULL;
        ef_seterr(err, "malformed JSON at byte %zu", at);
    }
    free(copy);
    return doc;
}

cJSON *ef_json_parse(const char *text, size_t len, char *err) { return parse_json(text, len, err); }

int ef_recipes_parse(const char *json, size_t len, const char *source, ef_recipes_t **out,
                     char *err) {
    pctx_t c = {source ? source : "recipes", NULL, err};
    char why[EF_ERR_LEN];
    ef_recipes_t *r = NULL;
    const cJSON *provs;
    *out = NULL;
    cJSON *doc = parse_json(json, len, why);
    if (!doc) {
        ef_seterr(err, "%s: %s", c.source, why);
        return -1;
    }
    static const char *const keys[] = {"providers", NULL};
    if (!cJSON_IsObject(doc)) {
        perr(&c, "(top)", "must be an object {\"providers\": {NAME: recipe, ...}}");
        goto err;
    }
    if (check_keys(&c, doc, "", keys) < 0)
        goto err;
    provs = cJSON_GetObjectItemCaseSensitive(doc, "providers");
    if (!cJSON_IsObject(provs) || !provs->child) {
        perr(&c, "providers", "must be an object naming at least one provider");
        goto err;
    }
    r = ef_calloc(1, sizeof *r);
    r->v = ef_calloc((size_t)cJSON_GetArraySize(provs), sizeof *r->v);
    for (const cJSON *p = provs->child; p; p = p->next) {
        if (!ef_provider_name_valid(p->string)) {
            perr(&c, "providers", "provider name '%.80s' must be 1 to 64 letters, digits, _ . -",
                 p->string);
            goto err;
        }
        for (const cJSON *e = provs->child; e != p; e = e->next)
            if (strcmp(e->string, p->string) == 0) {
                perr(&c, "providers", "provider '%s' is defined twice", p->string);
                goto err;
            }
        ef_recipe_t *rc = &r->v[r->n++];
        rc->name = ef_strdup(p->string);
        c.recipe = rc->name;
        if (parse_recipe(&c, p, rc) < 0)
            goto err;
        c.recipe = NULL;
    }
    cJSON_Delete(doc);
    *out = r;
    return 0;
err:
    cJSON_Delete(doc);
    ef_recipes_free(r);
    return -1;
}

int ef_recipes_load_file(const char *path, ef_recipes_t **out, char *err) {
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (!f) {
        ef_seterr(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = ef_malloc(FILE_MAX_BYTES + 1);
    size_t n = fread(buf, 1, FILE_MAX_BYTES + 1, f);
    int bad = ferror(f), rc = -1;
    fclose(f);
    if (bad)
        ef_seterr(err, "%s: read error", path);
    else if (n > FILE_MAX_BYTES)
        ef_seterr(err, "%s: larger than %u bytes", path, FILE_MAX_BYTES);
    else
        rc = ef_recipes_parse(buf, n, path, out, err);
    free(buf);
    return rc;
}

void ef_recipes_free(ef_recipes_t *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        recipe_clear(&r->v[i]);
    free(r->v);
    free(r);
}

size_t ef_recipes_count(const ef_recipes_t *r) { return r ? r->n : 0; }

const ef_recipe_t *ef_recipes_at(const ef_recipes_t *r, size_t i) {
    return r && i < r->n ? &r->v[i] : NULL;
}

const ef_recipe_t *ef_recipes_get(const ef_recipes_t *r, const char *name) {
    for (size_t i = 0; r && name && i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

/* Builds the farm:providers summary: templates, never filled values nor
 * header values. The caller frees it with free(). */
char *ef_recipe_summary(const ef_recipe_t *rc) {
    if (!rc)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", rc->name);
    cJSON *steps = cJSON_AddArrayToObject(o, "steps");
    for (size_t i = 0; i < rc->nsteps; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", rc->steps[i].name);
        cJSON_AddStringToObject(s, "method", rc->steps[i].method);
        cJSON_AddStringToObject(s, "url", rc->steps[i].url);
        if (rc->steps[i].batch)
            cJSON_AddNumberToObject(s, "batch", (double)rc->steps[i].batch->max);
        cJSON_AddItemToArray(steps, s);
    }
    cJSON *rate = cJSON_AddObjectToObject(o, "rate");
    cJSON_AddNumberToObject(rate, "requests", (double)rc->rate_requests);
    cJSON_AddNumberToObject(rate, "per_seconds", rc->rate_per_seconds);
    cJSON_AddNumberToObject(rate, "burst", (double)rc->rate_burst);
    cJSON_AddNumberToObject(o, "timeout_ms", (double)rc->timeout_ms);
    cJSON_AddNumberToObject(o, "retries", rc->retries);
    cJSON_AddNumberToObject(o, "concurrency", rc->concurrency);
    cJSON_AddNumberToObject(o, "cache_ttl_s", (double)rc->cache_ttl_s);
    cJSON_AddNumberToObject(o, "max_body", (double)rc->max_body);
    cJSON_AddNumberToObject(o, "max_pause_s", (double)rc->max_pause_s);
    cJSON_AddStringToObject(o, "result_key", rc->result_key);
    cJSON_AddStringToObject(o, "policy", rc->policy == EF_POLICY_KEEP ? "keep" : "overwrite");
    if (rc->auth.type == EF_RECIPE_AUTH_CLIENT_CREDENTIALS) {
        /* the token URL and scope templates; never the client id nor the secret */
        cJSON *a = cJSON_AddObjectToObject(o, "auth");
        cJSON_AddStringToObject(a, "type", "oauth2_client_credentials");
        cJSON_AddStringToObject(a, "token_url", rc->auth.token_url);
        if (rc->auth.scope)
            cJSON_AddStringToObject(a, "scope", rc->auth.scope);
    }
    if (rc->notify)
        cJSON_AddStringToObject(o, "notify", rc->notify);
    ef_sink_conf_summary(rc->sink, o); /* never its URL */
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- Judging a step's answer ---- */

/* Compares two texts trimmed of ASCII whitespace, ASCII case-insensitively. */
static int text_equal(const char *a, const char *b) {
    size_t na, nb;
    while (is_space((unsigned char)*a))
        a++;
    while (is_space((unsigned char)*b))
        b++;
    na = strlen(a);
    nb = strlen(b);
    while (na && is_space((unsigned char)a[na - 1]))
        na--;
    while (nb && is_space((unsigned char)b[nb - 1]))
        nb--;
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* A candidate matches when, for every match entry whose entity value is
 * known (present, not blank), its value equals the candidate's. */
static int candidate_matches(const ef_recipe_step_t *st, cJSON *cand,
                             const ef_recipe_scope_t *scope) {
    char n1[64], n2[64];
    for (size_t i = 0; i < st->nmatch; i++) {
        const char *want, *got;
        const cJSON *ev = scope_lookup(scope, st->match[i].name);
        if (!ev || scalar_text(ev, n1, sizeof n1, &want) < 0 || text_equal(want, ""))
            continue;
        cJSON *cv = ef_json_pointer(cand, st->match[i].pointer);
        if (!cv || scalar_text(cv, n2, sizeof n2, &got) < 0 || !text_equal(want, got))
            return 0;
    }
    return 1;
}

/* Saves the step's "as" variables from src into scope->vars (created when
 * NULL; the caller frees it).  All or nothing; -1 with err. */
static int save_vars(const ef_recipe_step_t *st, cJSON *src, ef_recipe_scope_t *scope, char *err) {
    for (size_t i = 0; i < st->nsave; i++) {
        cJSON *v = ef_json_pointer(src, st->save[i].pointer);
        if (!v || cJSON_IsNull(v)) {
            ef_seterr(err, "no value at %s for '%s'", st->save[i].pointer, st->save[i].name);
            return -1;
        }
        if (!cJSON_IsString(v) && !cJSON_IsNumber(v) && !cJSON_IsBool(v)) {
            ef_seterr(err, "value at %s for '%s' is not a string, number or boolean",
                      st->save[i].pointer, st->save[i].name);
            return -1;
        }
    }
    if (st->nsave && !scope) {
        ef_seterr(err, "no scope to save variables in");
        return -1;
    }
    if (st->nsave && !scope->vars)
        scope->vars = cJSON_CreateObject();
    for (size_t i = 0; i < st->nsave; i++) {
        cJSON *v = ef_json_pointer(src, st->save[i].pointer);
        cJSON_DeleteItemFromObjectCaseSensitive(scope->vars, st->save[i].name);
        cJSON_AddItemToObject(scope->vars, st->save[i].name, cJSON_Duplicate(v, 0));
    }
    return 0;
}

/* 1 when every number in v (and below it) is finite. */
static int finite_numbers(const cJSON *v) {
    if (cJSON_IsNumber(v))
        return isfinite(v->valuedouble);
    for (const cJSON *c = (cJSON_IsArray(v) || cJSON_IsObject(v)) ? v->child : NULL; c; c = c->next)
        if (!finite_numbers(c))
            return 0;
    return 1;
}

#define TITLE_MAX 120      /* bytes of an error page's <title> kept in an error */
#define TITLE_SCAN 4096    /* bytes of an error body searched for it */

/* Copies the <title> of an HTML error page (a proxy's "400 No required SSL
 * certificate was sent") into out, printable ASCII only, spaces collapsed,
 * at most cap - 1 bytes; returns its length, 0 when the body has none. */
static size_t html_title(const char *body, size_t len, char *out, size_t cap) {
    size_t n = len < TITLE_SCAN ? len : TITLE_SCAN, i, o = 0;

    out[0] = '\0';
    for (i = 0; i + 7 <= n; i++)
        if (strncasecmp(body + i, "<title>", 7) == 0)
            break;
    if (i + 7 > n)
        return 0;
    for (i += 7; i < n && body[i] != '<' && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch < 0x20 || ch == 0x7f)
            ch = ' ';
        else if (ch > 0x7e)
            ch = '?';
        if (ch == ' ' && (o == 0 || out[o - 1] == ' '))
            continue;
        out[o++] = (char)ch;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return o;
}

ef_step_verdict_t ef_recipe_judge(const ef_recipe_t *rc, size_t step, long status, const char *body,
                                  size_t body_len, ef_recipe_scope_t *scope, cJSON **fields,
                                  char *err) {
    if (fields)
        *fields = NULL;
    if (!rc || step >= rc->nsteps) {
        ef_seterr(err, "no step %zu", step);
        return EF_STEP_ERROR;
    }
    const ef_recipe_step_t *st = &rc->steps[step];
    int last = step + 1 == rc->nsteps;
    if (status == st->not_found_status)
        return EF_STEP_NOT_FOUND;
    if (status == 429 || status == 408 || (status >= 500 && status <= 599)) {
        ef_seterr(err, "HTTP %ld", status);
        return EF_STEP_RETRY;
    }
    if (status < 200 || status > 299) {
        char why[TITLE_MAX + 1];
        if (html_title(body, body_len, why, sizeof why) > 0)
            ef_seterr(err, "HTTP %ld (%s)", status, why);
        else
            ef_seterr(err, "HTTP %ld", status);
        return EF_STEP_ERROR;
    }
    if (body_len == 0 && !last && !st->results && st->nsave == 0)
        return EF_STEP_NEXT; /* e.g. 204 from a step whose answer nobody reads */
    if (body_len > rc->max_body) {
        ef_seterr(err, "body larger than max_body (%zu bytes)", rc->max_body);
        return EF_STEP_ERROR;
    }
    cJSON *doc = parse_json(body, body_len, err), *src = doc;
    ef_step_verdict_t verdict = EF_STEP_ERROR;
    if (!doc)
        return EF_STEP_ERROR;
    if (st->results) {
        cJSON *arr = ef_json_pointer(doc, st->results), *cand;
        size_t n = 0;
        if (!cJSON_IsArray(arr)) {
            ef_seterr(err, "no array at %s", *st->results ? st->results : "the document root");
            goto done;
        }
        src = NULL;
        cJSON_ArrayForEach(cand, arr) {
            if (!candidate_matches(st, cand, scope))
                continue;
            src = src ? src : cand;
            if (++n > 1 && st->select == EF_SELECT_FIRST)
                break;
        }
        if (n == 0) {
            verdict = EF_STEP_NOT_FOUND;
            goto done;
        }
        if (n > 1 && st->select == EF_SELECT_UNIQUE) {
            ef_seterr(err, "%zu candidates match", n);
            verdict = EF_STEP_CONFLICT;
            goto done;
        }
    }
    verdict = ef_recipe_judge_node(rc, step, src, scope, fields, err);
done:
    cJSON_Delete(doc);
    return verdict;
}

/* Saves step's variables from src and, for the last step, extracts the
 * fields: the end of ef_recipe_judge once the step's answer (or the chosen
 * candidate, or one element of a batch answer) is known. */
ef_step_verdict_t ef_recipe_judge_node(const ef_recipe_t *rc, size_t step, cJSON *src,
                                       ef_recipe_scope_t *scope, cJSON **fields, char *err) {
    ef_step_verdict_t verdict = EF_STEP_ERROR;
    if (fields)
        *fields = NULL;
    if (!rc || step >= rc->nsteps || !src) {
        ef_seterr(err, "no step %zu", step);
        return EF_STEP_ERROR;
    }
    const ef_recipe_step_t *st = &rc->steps[step];
    int last = step + 1 == rc->nsteps;
    if (save_vars(st, src, scope, err) < 0)
        return EF_STEP_ERROR;
    verdict = EF_STEP_NEXT;
    if (last) {
        cJSON *out = cJSON_CreateObject();
        for (size_t i = 0; i < rc->nextract; i++) {
            cJSON *v = extract_at(src, rc->extract[i].pointer);
            if (v && !finite_numbers(v)) {
                /* 1e999999 parses as infinity: no JSON can hold it */
                ef_seterr(err, "field %s: number out of range", rc->extract[i].name);
                cJSON_Delete(v);
                cJSON_Delete(out);
                return EF_STEP_ERROR;
            }
            if (v)
                cJSON_AddItemToObject(out, rc->extract[i].name, v);
        }
        if (fields)
            *fields = out;
        else
            cJSON_Delete(out);
        verdict = EF_STEP_DONE;
    }
    return verdict;
}
