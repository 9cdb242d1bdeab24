// SPDX-License-Identifier: MIT
/*
 * The TLS transport of the blocking client (the enqueuer, the sync
 * Sentinel resolver): design in ef_tls.h.
 *
 * ef_tls_sync_connect() connects and runs the handshake in the caller's
 * thread (bounded by its timeout), then proves the session with one PING
 * (in TLS 1.3 a server that wants a client certificate says so only after
 * the client's side of the handshake is over), so every TLS failure comes
 * back from the connect call in words.  hiredis then gets a blocking
 * context on one end of a socketpair, and a detached pump thread (all
 * signals blocked) serves the other end until hiredis closes it or the
 * server goes away (hiredis then reads end of stream, as with a lost TCP
 * connection).
 *
 * ef_tls_sync_free() closes such a context and waits, at most
 * EF_TLS_SYNC_CLOSE_MS, for the thread's last act: it closes its end of
 * the socketpair after its close_notify is sent and it has let go of
 * OpenSSL, so a process may exit right after.  It frees any other context
 * with redisFree().
 */
#ifndef EF_TLS_SYNC_H
#define EF_TLS_SYNC_H

#include <hiredis/hiredis.h>

#include "ef_redis_url.h"

#define EF_TLS_SYNC_CLOSE_MS 1000

/* A blocking context to host:port over TLS with u's options, or NULL with
 * the reason in err (the caller adds where). */
redisContext *ef_tls_sync_connect(const ef_redis_url_t *u, const char *host, int port,
                                  int timeout_ms, char *err);

void ef_tls_sync_free(redisContext *c);

#endif
