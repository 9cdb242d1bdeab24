// SPDX-License-Identifier: MIT
/*
 * The TLS transport on a libuv loop: moves bytes between the plaintext end
 * of a socketpair (hiredis's side) and a TCP socket through an ef_tls_t
 * (design in ef_tls.h).  ef_redis.c makes one per TLS socket.
 *
 * One uv_poll_t per fd.  The TCP socket may still be connecting: its first
 * writable event completes connect(2), then the handshake runs.  Plaintext
 * is read from the app side only once the session is OPEN and while less
 * than EF_TLS_BACKLOG_MAX bytes of ciphertext wait for the network; the
 * network is read only when the app side has taken what was decrypted.  So
 * memory stays bounded whatever either side does.
 *
 * The failure callback fires at most once (a lost TCP connection, the
 * server closing, a TLS error), never from inside ef_tls_uv_start() and
 * never after ef_tls_uv_close(); the transport then sits still until it is
 * closed.  The owner decides what a failure means (ef_redis drops the
 * connection and reconnects).
 */
#ifndef EF_TLS_UV_H
#define EF_TLS_UV_H

#include <uv.h>

#include "ef_tls.h"

typedef struct ef_tls_uv_s ef_tls_uv_t;

/* why starts with "TLS"; refused as ef_tls_refused(). */
typedef void (*ef_tls_uv_fail_cb)(ef_tls_uv_t *l, const char *why, int refused, void *arg);

/* Starts the transport between tcp_fd (connected or connecting, non
 * blocking) and app_fd (non blocking), verifying the server as name.  Both
 * fds belong to the transport from now on, even when this fails (0 or a
 * negative error with err filled). */
int ef_tls_uv_start(ef_tls_uv_t **out, uv_loop_t *loop, SSL_CTX *ctx, const char *name, int tcp_fd,
                    int app_fd, ef_tls_uv_fail_cb cb, void *arg, char *err);

/* 1 once the TLS session is open (the handshake is over). */
int ef_tls_uv_open(const ef_tls_uv_t *l);

/* Sends a close_notify if it can, closes both handles and fds and frees
 * the transport; done (may be NULL) fires once that is over.  Accepts NULL
 * (done does not fire then). */
void ef_tls_uv_close(ef_tls_uv_t *l, void (*done)(void *arg), void *arg);

#endif
