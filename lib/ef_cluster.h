// SPDX-License-Identifier: MIT
/*
 * Redis Cluster building blocks, written from the Cluster specification:
 * the slot of a key, the redirections a node answers with, and the slot map
 * a node describes, and the slot a formatted command goes to.  Pure
 * functions with no I/O; the routing client that uses them is
 * ef_cluster_client.c, behind ef_redis.h's API.
 *
 * Slots: a key belongs to slot CRC16(k) mod 16384, CRC16 being the XMODEM
 * variant (polynomial 0x1021, initial value 0, no reflection, no final
 * xor).  k is the whole key unless it holds a hash tag: the bytes between
 * the first '{' and the first '}' after it, when there is at least one.
 * "farm:{q}:pending" and "farm:{q}:jobs" share a slot; "{}x" hashes whole.
 *
 * Redirections: "MOVED SLOT HOST:PORT" (the slot lives elsewhere for good:
 * refresh the map) and "ASK SLOT HOST:PORT" (this one command: send ASKING
 * then the command to HOST:PORT, map unchanged).  HOST may be empty (the
 * node asked, same host) and may be an IPv6 address: the port follows the
 * last ':'.
 *
 * Slot map: built from a CLUSTER SLOTS reply, primaries only (the first
 * node of each range), a node listed once however many ranges it serves.
 * owner[slot] is the index of its primary in nodes[], -1 when no node
 * serves it (not covered, or the node's endpoint is unknown: "?").
 */
#ifndef EF_CLUSTER_H
#define EF_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "ef_common.h"
#include "ef_redis_url.h"

#define EF_CLUSTER_SLOTS 16384
#define EF_CLUSTER_MAX_NODES 256 /* primaries in one map */
#define EF_CLUSTER_ID_LEN 40     /* hex characters of a node id */

/* CRC16-XMODEM of len bytes. */
uint16_t ef_cluster_crc16(const void *buf, size_t len);

/* The slot of a key (0..16383), hash tags honoured. */
int ef_cluster_keyslot(const char *key, size_t len);

/* The one slot that every key of a call maps to, or -1 when they differ
 * (a cross-slot call: a programming error in our callers) or nkeys < 1.
 * lens may be NULL for C strings. */
int ef_cluster_keys_slot(int nkeys, const char *const *keys, const size_t *lens);

typedef enum {
    EF_CLUSTER_MOVED = 1,
    EF_CLUSTER_ASK,
} ef_cluster_redirect_kind_t;

typedef struct {
    ef_cluster_redirect_kind_t kind;
    int slot;
    ef_redis_addr_t to; /* host empty: the node that answered */
} ef_cluster_redirect_t;

/* Reads an error reply's text (without the leading '-').  0 and out filled
 * for a well-formed MOVED or ASK; 1 when the error is neither (pass it on);
 * -1 with err naming the fault for a malformed one. */
int ef_cluster_redirect_parse(const char *str, size_t len, ef_cluster_redirect_t *out, char *err);

typedef struct {
    ef_redis_addr_t addr;
    char id[EF_CLUSTER_ID_LEN + 1]; /* empty when the reply gave none */
} ef_cluster_node_t;

typedef struct {
    ef_cluster_node_t nodes[EF_CLUSTER_MAX_NODES];
    int nnodes;
    int16_t owner[EF_CLUSTER_SLOTS]; /* index in nodes[], -1 unserved */
    int covered;                     /* slots with an owner */
} ef_cluster_map_t;

/* Fills map from a CLUSTER SLOTS reply; asked_host replaces an empty
 * endpoint (the node the reply came from).  0, or -1 with err naming the
 * fault (not an array, a bad range, overlapping ranges, a bad node entry,
 * too many primaries); map is unusable then. */
int ef_cluster_map_from_slots(const redisReply *reply, const char *asked_host,
                              ef_cluster_map_t *map, char *err);

/* The primary serving slot, or NULL. */
const ef_cluster_node_t *ef_cluster_map_node(const ef_cluster_map_t *map, int slot);

/* Records that slot now lives at addr (a MOVED answer), adding the node to
 * the map when it is new.  The index of the node, or -1 when the map is
 * full or the slot out of range (the map is unchanged then). */
int ef_cluster_map_set_owner(ef_cluster_map_t *map, int slot, const ef_redis_addr_t *addr);

/* ---- Routing a formatted command ---- */

#define EF_CLUSTER_NO_KEY (-1)     /* PING, TIME, CLIENT, SCRIPT, PUBLISH...: any node */
#define EF_CLUSTER_CROSS_SLOT (-2) /* keys of one call in two slots: a programming error */
#define EF_CLUSTER_BAD_CMD (-3)    /* not a RESP array of bulk strings */

/* The slot a RESP-formatted command (as redisFormatCommand makes it) must
 * be sent to: the slot shared by all of its keys, or one of the codes
 * above.  Key positions: EVAL and EVALSHA take numkeys keys after the
 * numkeys argument; LMOVE, BLMOVE, RPOPLPUSH, SMOVE two; DEL, EXISTS, UNLINK,
 * TOUCH, MGET every argument; BLPOP, BRPOP, BZPOPMIN, BZPOPMAX all but the
 * timeout; the commands without a key listed in ef_cluster.c none; every
 * other command its first argument. */
int ef_cluster_cmd_slot(const char *cmd, size_t len);

#endif
