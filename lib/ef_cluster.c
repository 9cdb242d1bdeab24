// SPDX-License-Identifier: MIT
/*
 * Redis Cluster building blocks (see ef_cluster.h): key slots, MOVED/ASK
 * parsing and the slot map, checked input first, nothing trusted.
 */
#include "ef_cluster.h"

#include <stdio.h>
#include <string.h>

/* ---- Key slots ---- */

uint16_t ef_cluster_crc16(const void *buf, size_t len) {
    const unsigned char *p = buf;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

int ef_cluster_keyslot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len), *close;
    if (open) {
        size_t after = len - (size_t)(open + 1 - key);
        close = memchr(open + 1, '}', after);
        if (close && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return ef_cluster_crc16(key, len) & (EF_CLUSTER_SLOTS - 1);
}

int ef_cluster_keys_slot(int nkeys, const char *const *keys, const size_t *lens) {
    int slot = -1;
    for (int i = 0; i < nkeys; i++) {
        int s = ef_cluster_keyslot(keys[i], lens ? lens[i] : strlen(keys[i]));
        if (i > 0 && s != slot)
            return -1;
        slot = s;
    }
    return slot;
}

/* ---- MOVED and ASK ---- */

static int parse_uint(const char *s, size_t n, int64_t max, int64_t *out) {
    return ef_parse_i64(s, n, out) != 0 || *out > max ? -1 : 0;
}

int ef_cluster_redirect_parse(const char *str, size_t len, ef_cluster_redirect_t *out, char *err) {
    const char *p, *end = str + len, *sp, *colon;
    int64_t v;
    size_t hl;
    int shown = (int)(len < 80 ? len : 80); /* str is not NUL-terminated */

    if (len >= 5 && memcmp(str, "MOVED", 5) == 0 && (len == 5 || str[5] == ' ')) {
        out->kind = EF_CLUSTER_MOVED;
        p = str + 5;
    } else if (len >= 3 && memcmp(str, "ASK", 3) == 0 && (len == 3 || str[3] == ' ')) {
        out->kind = EF_CLUSTER_ASK;
        p = str + 3;
    } else {
        return 1;
    }
    if (p == end) {
        ef_seterr(err, "redirection without slot and address '%.*s'", shown, str);
        return -1;
    }
    p++; /* the space */
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || parse_uint(p, (size_t)(sp - p), EF_CLUSTER_SLOTS - 1, &v) != 0) {
        ef_seterr(err, "bad slot in redirection '%.*s'", shown, str);
        return -1;
    }
    out->slot = (int)v;
    p = sp + 1;
    if (memchr(p, ' ', (size_t)(end - p))) {
        ef_seterr(err, "trailing text in redirection '%.*s'", shown, str);
        return -1;
    }
    colon = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == ':')
            colon = q;
    if (!colon || parse_uint(colon + 1, (size_t)(end - colon - 1), 65535, &v) != 0 || v < 1) {
        ef_seterr(err, "bad host:port in redirection '%.*s'", shown, str);
        return -1;
    }
    hl = (size_t)(colon - p);
    if (hl >= sizeof out->to.host) {
        ef_seterr(err, "host too long in redirection");
        return -1;
    }
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f) {
            ef_seterr(err, "bad character in the host of redirection '%.*s'", shown, str);
            return -1;
        }
    memcpy(out->to.host, p, hl);
    out->to.host[hl] = '\0';
    out->to.port = (int)v;
    return 0;
}

/* ---- The slot map ---- */

/* Reads one node entry [host, port, id?, ...]; 1 when its endpoint is
 * unknown ("?"), 0 filled, -1 malformed. */
static int node_entry(const redisReply *e, const char *asked_host, ef_cluster_node_t *n) {
    const redisReply *h, *p;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
        return -1;
    h = e->element[0];
    p = e->element[1];
    if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_INTEGER)
        return -1;
    if (h->len == 1 && h->str[0] == '?')
        return 1;
    if (p->integer < 1 || p->integer > 65535 || h->len >= sizeof n->addr.host)
        return -1;
    if (h->len == 0) {
        if (!asked_host || !*asked_host || strlen(asked_host) >= sizeof n->addr.host)
            return -1;
        snprintf(n->addr.host, sizeof n->addr.host, "%s", asked_host);
    } else {
        memcpy(n->addr.host, h->str, h->len);
        n->addr.host[h->len] = '\0';
    }
    n->addr.port = (int)p->integer;
    n->id[0] = '\0';
    if (e->elements >= 3 && e->element[2]->type == REDIS_REPLY_STRING &&
        e->element[2]->len == EF_CLUSTER_ID_LEN) {
        memcpy(n->id, e->element[2]->str, EF_CLUSTER_ID_LEN);
        n->id[EF_CLUSTER_ID_LEN] = '\0';
    }
    return 0;
}

/* The index of n in the map, added when new; -1 when the map is full. */
static int node_index(ef_cluster_map_t *map, const ef_cluster_node_t *n) {
    for (int i = 0; i < map->nnodes; i++)
        if (map->nodes[i].addr.port == n->addr.port &&
            strcmp(map->nodes[i].addr.host, n->addr.host) == 0)
            return i;
    if (map->nnodes == EF_CLUSTER_MAX_NODES)
        return -1;
    map->nodes[map->nnodes] = *n;
    return map->nnodes++;
}

int ef_cluster_map_from_slots(const redisReply *reply, const char *asked_host,
                              ef_cluster_map_t *map, char *err) {
    map->nnodes = 0;
    map->covered = 0;
    for (int s = 0; s < EF_CLUSTER_SLOTS; s++)
        map->owner[s] = -1;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        ef_seterr(err, "CLUSTER SLOTS: %s",
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                            : "the answer is not an array");
        return -1;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *r = reply->element[i];
        ef_cluster_node_t n;
        long long lo, hi;
        int rc, idx;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER) {
            ef_seterr(err, "CLUSTER SLOTS: range %zu is not [start, end, primary, ...]", i);
            return -1;
        }
        lo = r->element[0]->integer;
        hi = r->element[1]->integer;
        if (lo < 0 || hi < lo || hi >= EF_CLUSTER_SLOTS) {
            ef_seterr(err, "CLUSTER SLOTS: bad range %lld-%lld", lo, hi);
            return -1;
        }
        rc = node_entry(r->element[2], asked_host, &n);
        if (rc < 0) {
            ef_seterr(err, "CLUSTER SLOTS: bad primary for range %lld-%lld", lo, hi);
            return -1;
        }
        for (long long s = lo; s <= hi; s++)
            if (map->owner[s] != -1) {
                ef_seterr(err, "CLUSTER SLOTS: slot %lld is in two ranges", s);
                return -1;
            }
        if (rc == 1)
            continue; /* endpoint unknown: left unserved */
        idx = node_index(map, &n);
        if (idx < 0) {
            ef_seterr(err, "CLUSTER SLOTS: more than %d primaries", EF_CLUSTER_MAX_NODES);
            return -1;
        }
        for (long long s = lo; s <= hi; s++)
            map->owner[s] = (int16_t)idx;
        map->covered += (int)(hi - lo + 1);
    }
    return 0;
}

const ef_cluster_node_t *ef_cluster_map_node(const ef_cluster_map_t *map, int slot) {
    if (!map || slot < 0 || slot >= EF_CLUSTER_SLOTS || map->owner[slot] < 0)
        return NULL;
    return &map->nodes[map->owner[slot]];
}

int ef_cluster_map_set_owner(ef_cluster_map_t *map, int slot, const ef_redis_addr_t *addr) {
    ef_cluster_node_t n;
    int idx;
    if (!map || slot < 0 || slot >= EF_CLUSTER_SLOTS || !addr)
        return -1;
    memset(&n, 0, sizeof n);
    n.addr = *addr;
    idx = node_index(map, &n);
    if (idx < 0)
        return -1;
    if (map->owner[slot] < 0)
        map->covered++;
    map->owner[slot] = (int16_t)idx;
    return idx;
}

/* ---- Routing a formatted command ---- */

/* Commands that name no key: sent to any node. */
static const char *const no_key[] = {
    "PING", "TIME",     "CLIENT",  "SCRIPT",   "PUBLISH",  "SUBSCRIBE",  "UNSUBSCRIBE",
    "INFO", "ECHO",     "CLUSTER", "ASKING",   "COMMAND",  "DBSIZE",     "CONFIG",
    "ROLE", "AUTH",     "SELECT",  "HELLO",    "READONLY", "WAIT",       "MULTI",
    "EXEC", "DISCARD",  "MEMORY",  "SLOWLOG",  "LATENCY",  "PSUBSCRIBE", "RANDOMKEY",
    "SCAN", "FLUSHALL", "FLUSHDB", "LASTSAVE",
};

typedef struct {
    const char *s;
    size_t len;
} arg_t;

/* Reads the next bulk string of a RESP array at *p; 0, or -1 when it is
 * malformed or runs past end. */
static int next_arg(const char **p, const char *end, arg_t *out) {
    const char *nl;
    int64_t l;
    if (*p >= end || **p != '$' || !(nl = memchr(*p, '\r', (size_t)(end - *p))) ||
        ef_parse_i64(*p + 1, (size_t)(nl - *p - 1), &l) != 0 || l < 0 ||
        (size_t)l + 4 > (size_t)(end - nl) || nl[1] != '\n')
        return -1;
    out->s = nl + 2;
    out->len = (size_t)l;
    *p = nl + 2 + l + 2;
    return 0;
}

static int name_is(const arg_t *a, const char *name) {
    size_t n = strlen(name);
    if (a->len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = a->s[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != name[i])
            return 0;
    }
    return 1;
}

int ef_cluster_cmd_slot(const char *cmd, size_t len) {
    const char *p = cmd, *end = cmd + len, *nl;
    int64_t n, nk;
    long first = 1, last, step = 1; /* key positions: first..last by step */
    int slot = EF_CLUSTER_NO_KEY;
    arg_t a;

    if (!cmd || len < 4 || *p != '*' || !(nl = memchr(p, '\r', len)) ||
        ef_parse_i64(p + 1, (size_t)(nl - p - 1), &n) != 0 || n < 1 || nl + 1 >= end)
        return EF_CLUSTER_BAD_CMD;
    p = nl + 2;
    if (next_arg(&p, end, &a) != 0)
        return EF_CLUSTER_BAD_CMD;
    last = n > 1 ? 1 : 0;
    for (size_t i = 0; i < EF_ARRAY_LEN(no_key); i++)
        if (name_is(&a, no_key[i]))
            last = 0;
    if (name_is(&a, "EVAL") || name_is(&a, "EVALSHA")) {
        arg_t k;
        if (n < 3 || next_arg(&p, end, &k) != 0 || next_arg(&p, end, &k) != 0 ||
            ef_parse_i64(k.s, k.len, &nk) != 0 || nk < 0 || nk > n - 3)
            return EF_CLUSTER_BAD_CMD;
        first = 3; /* the name, the script and numkeys are read */
        last = 2 + (long)nk;
    } else if (name_is(&a, "LMOVE") || name_is(&a, "BLMOVE") || name_is(&a, "RPOPLPUSH") ||
               name_is(&a, "BRPOPLPUSH") || name_is(&a, "SMOVE")) {
        last = n > 2 ? 2 : last;
    } else if (name_is(&a, "DEL") || name_is(&a, "EXISTS") || name_is(&a, "UNLINK") ||
               name_is(&a, "TOUCH") || name_is(&a, "MGET")) {
        last = (long)n - 1;
    } else if (name_is(&a, "BLPOP") || name_is(&a, "BRPOP") || name_is(&a, "BZPOPMIN") ||
               name_is(&a, "BZPOPMAX")) {
        last = (long)n - 2;
    } else if (name_is(&a, "MSET")) {
        last = (long)n - 1;
        step = 2;
    }
    for (long i = first; i <= last; i++) {
        int s;
        if (next_arg(&p, end, &a) != 0)
            return EF_CLUSTER_BAD_CMD;
        if ((i - first) % step != 0)
            continue;
        s = ef_cluster_keyslot(a.s, a.len);
        if (slot >= 0 && s != slot)
            return EF_CLUSTER_CROSS_SLOT;
        slot = s;
    }
    for (long i = last < first ? first : last + 1; i < (long)n; i++) /* the rest must be whole */
        if (next_arg(&p, end, &a) != 0)
            return EF_CLUSTER_BAD_CMD;
    return p == end ? slot : EF_CLUSTER_BAD_CMD;
}
