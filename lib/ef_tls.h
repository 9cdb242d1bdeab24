// SPDX-License-Identifier: MIT
/*
 * TLS to Redis (rediss://): the byte pump between a plaintext client and an
 * OpenSSL session, with no I/O of its own.
 *
 * Why a pump: Debian 12's hiredis 0.14 has no TLS and no read/write hooks
 * (it calls read(2) and write(2) on its fd itself).  So hiredis is given
 * one end of a socketpair and speaks plain RESP into it; a transport moves
 * those bytes through an ef_tls_t to the real TCP socket and back:
 *
 *   hiredis <-> socketpair <-> [transport: ef_tls_t] <-> TCP <-> Redis
 *
 * Two transports drive the same pump: ef_tls_uv.c on the daemons' libuv
 * loop (two uv_poll_t, so the async adapter keeps its deadlines, reconnects
 * and exactly-once callbacks unchanged: they see a socket that is slow to
 * answer while the handshake runs) and ef_tls_sync.c for the blocking
 * client (a handshake in the caller's thread, then one pump thread).
 *
 * ef_tls_t itself only moves bytes between memory BIOs, so a unit test can
 * feed it any split of the stream (tests/unit/test_tls.c).  States:
 * HANDSHAKE -> OPEN -> CLOSED (the server closed) or FAILED (a TLS error:
 * certificate, alert, not TLS at all).  Plaintext is accepted only when
 * OPEN; until then the client's bytes wait in the socketpair.
 *
 * Verification is always on: the server's chain against cacert= (else the
 * system store) and its name against sni= (else the host connected to; an
 * IP address is checked against the certificate's IP entries and sent no
 * SNI).  cert= and key= give the client certificate for tls-auth-clients.
 */
#ifndef EF_TLS_H
#define EF_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "ef_redis_url.h"

#define EF_TLS_RECORD_MAX 16384   /* bytes, the largest TLS record payload */
#define EF_TLS_BACKLOG_MAX 262144 /* bytes of ciphertext queued before the pump stops reading */

typedef enum {
    EF_TLS_HANDSHAKE = 0,
    EF_TLS_OPEN,
    EF_TLS_CLOSED, /* the server ended the session (close_notify or EOF) */
    EF_TLS_FAILED, /* a TLS error: ef_tls_error() says which */
} ef_tls_state_t;

typedef struct ef_tls_s ef_tls_t;

/* Builds the client context for u's TLS options: verification on, the CA
 * file or the system store, the client certificate and key when given.
 * NULL with the reason (naming the file) in err; SSL_CTX_free() it. */
SSL_CTX *ef_tls_ctx_create(const ef_redis_url_t *u, char *err);

/* A client session on ctx that verifies the server as name (the sni= of
 * the URL, else the host connected to).  The ClientHello is queued at once:
 * take it with ef_tls_net_out().  NULL with err; free with ef_tls_free(). */
ef_tls_t *ef_tls_create(SSL_CTX *ctx, const char *name, char *err);
void ef_tls_free(ef_tls_t *t);

ef_tls_state_t ef_tls_state(const ef_tls_t *t);
/* Why the session is CLOSED or FAILED, in words that start with "TLS". */
const char *ef_tls_error(const ef_tls_t *t);
/* 1 when the failure is one that retrying will not fix (certificate,
 * alert from the server, not a TLS server); 0 for a lost connection. */
int ef_tls_refused(const ef_tls_t *t);

/* Ciphertext from the server (all of it is taken), its end, or a socket
 * error (why: strerror's words).  A server that drops the connection after
 * the handshake but before its first byte of plaintext has refused the
 * client (TLS 1.3 servers check the client certificate only then, and the
 * alert that says so is lost when the connection is reset): the session
 * FAILS as refused, with words that say so. */
int ef_tls_net_in(ef_tls_t *t, const void *buf, size_t n);
void ef_tls_net_eof(ef_tls_t *t);
void ef_tls_net_error(ef_tls_t *t, const char *why);
/* Ciphertext waiting to go to the server: its size, and up to cap bytes of
 * it copied out (and dropped from the queue). */
size_t ef_tls_net_pending(const ef_tls_t *t);
size_t ef_tls_net_out(ef_tls_t *t, void *buf, size_t cap);

/* Plaintext from the client: the bytes taken (0 unless OPEN), -1 when the
 * session failed. */
long ef_tls_plain_in(ef_tls_t *t, const void *buf, size_t n);
/* Plaintext for the client: bytes copied (at most cap), 0 when nothing is
 * ready yet, -1 when the session is CLOSED or FAILED. */
long ef_tls_plain_out(ef_tls_t *t, void *buf, size_t cap);

/* Queues a close_notify for the server (best effort, before closing). */
void ef_tls_shutdown(ef_tls_t *t);

#endif
