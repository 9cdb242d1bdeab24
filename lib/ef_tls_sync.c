// SPDX-License-Identifier: MIT
/*
 * The blocking TLS transport (see ef_tls_sync.h): a connect with poll(2)
 * timeouts, the handshake and the PING proof in the caller's thread, then a
 * pump thread with the same two buffers as the libuv transport.
 */
#include "ef_tls_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ef_common.h"
#include "ef_tls.h"

typedef struct {
    ef_tls_t *tls;
    int net_fd, app_fd;
    char plain[EF_TLS_RECORD_MAX]; /* decrypted, for hiredis */
    size_t plain_len, plain_off;
    char wire[EF_TLS_RECORD_MAX]; /* ciphertext, for the server */
    size_t wire_len, wire_off;
} ef_tls_pump_t;

static int would_block(void) {
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int ms_left(uint64_t deadline) {
    uint64_t now = ef_mono_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* ---- Connect and handshake, in the caller's thread ---- */

static int tcp_connect(const char *host, int port, uint64_t deadline, char *err) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res, *ai;
    char ps[16];
    int fd = -1, rc, e = 0;
    snprintf(ps, sizeof ps, "%d", port);
    if ((rc = getaddrinfo(host, ps, &hints, &res)) != 0) {
        ef_seterr(err, "%s", gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd p;
        socklen_t len = sizeof e;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        e = errno;
        if (e == EINPROGRESS) {
            p = (struct pollfd){.fd = fd, .events = POLLOUT};
            rc = poll(&p, 1, ms_left(deadline));
            e = rc == 0 ? ETIMEDOUT : 0;
            if (rc > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                e = errno;
            if (rc > 0 && e == 0)
                break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        ef_seterr(err, "%s", strerror(e ? e : ECONNREFUSED));
    return fd;
}

/* Sends every queued byte of ciphertext, waiting for room until deadline. */
static int send_all(ef_tls_pump_t *p, uint64_t deadline, char *err) {
    for (;;) {
        struct pollfd pf = {.fd = p->net_fd, .events = POLLOUT};
        ssize_t n;
        if (p->wire_off == p->wire_len) {
            p->wire_off = 0;
            p->wire_len = ef_tls_net_out(p->tls, p->wire, sizeof p->wire);
            if (p->wire_len == 0)
                return 0;
        }
        n = send(p->net_fd, p->wire + p->wire_off, p->wire_len - p->wire_off, MSG_NOSIGNAL);
        if (n > 0) {
            p->wire_off += (size_t)n;
            continue;
        }
        if (n < 0 && !would_block()) {
            ef_tls_net_error(p->tls, strerror(errno));
            ef_seterr(err, "%s", ef_tls_error(p->tls));
            return -1;
        }
        if (poll(&pf, 1, ms_left(deadline)) <= 0) {
            ef_seterr(err, "TLS: the server took no data within the timeout");
            return -1;
        }
    }
}

/* Feeds the server's bytes to the session until want() holds, the session
 * ends or deadline passes; 0 or -1 with err. */
static int wait_for(ef_tls_pump_t *p, uint64_t deadline, int (*want)(ef_tls_pump_t *), char *err) {
    char buf[EF_TLS_RECORD_MAX];
    for (;;) {
        struct pollfd pf = {.fd = p->net_fd, .events = POLLIN};
        ssize_t n;
        if (send_all(p, deadline, err) != 0)
            return -1;
        if (ef_tls_state(p->tls) >= EF_TLS_CLOSED) {
            ef_seterr(err, "%s", ef_tls_error(p->tls));
            return -1;
        }
        if (want(p))
            return 0;
        if (poll(&pf, 1, ms_left(deadline)) <= 0) {
            if (ef_tls_state(p->tls) == EF_TLS_HANDSHAKE)
                ef_seterr(err, "TLS: the server did not answer the TLS handshake within the "
                               "timeout (is it a TLS port?)");
            else
                ef_seterr(err, "TLS: no answer from the server within the timeout");
            return -1;
        }
        n = recv(p->net_fd, buf, sizeof buf, 0);
        if (n > 0)
            ef_tls_net_in(p->tls, buf, (size_t)n);
        else if (n == 0)
            ef_tls_net_eof(p->tls);
        else if (!would_block())
            ef_tls_net_error(p->tls, strerror(errno));
    }
}

static int is_open(ef_tls_pump_t *p) {
    return ef_tls_state(p->tls) == EF_TLS_OPEN;
}

/* The PING's one-line answer (+PONG, or -NOAUTH before AUTH) is in. */
static int has_line(ef_tls_pump_t *p) {
    long m = ef_tls_plain_out(p->tls, p->plain + p->plain_len, sizeof p->plain - p->plain_len);
    if (m > 0)
        p->plain_len += (size_t)m;
    return memmem(p->plain, p->plain_len, "\r\n", 2) != NULL || p->plain_len == sizeof p->plain;
}

/* ---- The pump thread ---- */

/* Serves hiredis's end until it closes it or the server goes away; then
 * says goodbye, lets go of OpenSSL and closes its end last. */
static void *pump_main(void *arg) {
    ef_tls_pump_t *p = arg;
    char buf[EF_TLS_RECORD_MAX];
    int app_eof = 0, net_eof = 0, app_fd = p->app_fd;
    while (!app_eof && ef_tls_state(p->tls) == EF_TLS_OPEN) {
        struct pollfd pf[2] = {{.fd = p->net_fd}, {.fd = p->app_fd}};
        ssize_t n;
        if (p->plain_off == p->plain_len) {
            long m = ef_tls_plain_out(p->tls, p->plain, sizeof p->plain);
            p->plain_off = 0;
            p->plain_len = m > 0 ? (size_t)m : 0;
        }
        if (p->wire_off == p->wire_len) {
            p->wire_off = 0;
            p->wire_len = ef_tls_net_out(p->tls, p->wire, sizeof p->wire);
        }
        if (ef_tls_state(p->tls) != EF_TLS_OPEN)
            break;
        pf[0].events = (short)((p->plain_off == p->plain_len && !net_eof ? POLLIN : 0) |
                               (p->wire_off < p->wire_len ? POLLOUT : 0));
        pf[1].events = (short)((ef_tls_net_pending(p->tls) < EF_TLS_BACKLOG_MAX ? POLLIN : 0) |
                               (p->plain_off < p->plain_len ? POLLOUT : 0));
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            n = recv(p->net_fd, buf, sizeof buf, 0);
            if (n > 0)
                ef_tls_net_in(p->tls, buf, (size_t)n);
            else if (n == 0 || !would_block()) { /* what was decrypted still goes out */
                net_eof = 1;
                ef_tls_net_eof(p->tls);
            }
        }
        if ((pf[0].revents & POLLOUT) && p->wire_off < p->wire_len) {
            n = send(p->net_fd, p->wire + p->wire_off, p->wire_len - p->wire_off, MSG_NOSIGNAL);
            if (n > 0)
                p->wire_off += (size_t)n;
            else if (n < 0 && !would_block())
                break;
        }
        if ((pf[1].revents & POLLOUT) && p->plain_off < p->plain_len) {
            n = send(p->app_fd, p->plain + p->plain_off, p->plain_len - p->plain_off, MSG_NOSIGNAL);
            if (n > 0)
                p->plain_off += (size_t)n;
            else if (n < 0 && !would_block())
                app_eof = 1;
        }
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            n = recv(p->app_fd, buf, sizeof buf, 0);
            for (long taken = 0; n > 0 && taken < n;) {
                long m = ef_tls_plain_in(p->tls, buf + taken, (size_t)(n - taken));
                if (m <= 0)
                    break;
                taken += m;
            }
            if (n == 0 || (n < 0 && !would_block()))
                app_eof = 1;
        }
    }
    if (app_eof) { /* a clean goodbye; the socket is non blocking: best effort */
        ef_tls_shutdown(p->tls);
        send_all(p, ef_mono_ms(), NULL);
    }
    ef_tls_free(p->tls);
    close(p->net_fd);
    free(p);
    OPENSSL_thread_stop();
    close(app_fd); /* the last act: ef_tls_sync_free() waits for it */
    return NULL;
}

/* ---- Public API ---- */

redisContext *ef_tls_sync_connect(const ef_redis_url_t *u, const char *host, int port,
                                  int timeout_ms, char *err) {
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    uint64_t deadline = ef_mono_ms() + (uint64_t)timeout_ms;
    SSL_CTX *ctx = ef_tls_ctx_create(u, err);
    ef_tls_pump_t *p = NULL;
    redisContext *c;
    sigset_t all, old;
    pthread_attr_t attr;
    pthread_t tid;
    int sp[2] = {-1, -1}, rc;

    if (!ctx)
        return NULL;
    p = ef_calloc(1, sizeof *p);
    p->app_fd = p->net_fd = -1;
    p->tls = ef_tls_create(ctx, u->tls_sni[0] ? u->tls_sni : host, err);
    SSL_CTX_free(ctx); /* the session holds its own reference */
    if (!p->tls || (p->net_fd = tcp_connect(host, port, deadline, err)) < 0)
        goto err;
    if (wait_for(p, deadline, is_open, err) != 0 ||
        ef_tls_plain_in(p->tls, ping, sizeof ping - 1) != (long)(sizeof ping - 1) ||
        wait_for(p, deadline, has_line, err) != 0)
        goto err;
    p->plain_len = 0; /* the PING's answer is ours, not hiredis's */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        ef_seterr(err, "TLS: socketpair: %s", strerror(errno));
        goto err;
    }
    p->app_fd = sp[1];
    if (fcntl(sp[1], F_SETFL, O_NONBLOCK) < 0 || !(c = redisConnectFd(sp[0]))) {
        ef_seterr(err, "TLS: cannot set up the client side");
        goto err;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&tid, &attr, pump_main, p);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        ef_seterr(err, "TLS: cannot start the pump thread: %s", strerror(rc));
        c->fd = -1;
        redisFree(c);
        goto err;
    }
    return c;
err:
    if (sp[0] >= 0)
        close(sp[0]);
    if (p->app_fd >= 0)
        close(p->app_fd);
    if (p->net_fd >= 0)
        close(p->net_fd);
    ef_tls_free(p->tls);
    free(p);
    return NULL;
}

void ef_tls_sync_free(redisContext *c) {
    uint64_t deadline;
    char buf[4096];
    if (!c)
        return;
    /* ours: redisConnectFd() leaves a TCP-typed context without a host */
    if (c->connection_type == REDIS_CONN_TCP && !c->tcp.host && c->fd >= 0) {
        deadline = ef_mono_ms() + EF_TLS_SYNC_CLOSE_MS;
        shutdown(c->fd, SHUT_WR);
        for (;;) {
            struct pollfd pf = {.fd = c->fd, .events = POLLIN};
            if (poll(&pf, 1, ms_left(deadline)) <= 0 || recv(c->fd, buf, sizeof buf, 0) <= 0)
                break;
        }
    }
    redisFree(c);
}
