// SPDX-License-Identifier: MIT
/*
 * The TLS transport on libuv (see ef_tls_uv.h): two uv_poll_t, two small
 * buffers (decrypted bytes not yet taken by the app side, ciphertext not yet
 * taken by the socket) and one pump() that moves whatever can move, then
 * recomputes what each poll handle must watch.
 */
#include "ef_tls_uv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ef_common.h"

struct ef_tls_uv_s {
    uv_poll_t net; /* the TCP socket */
    uv_poll_t app; /* our end of the socketpair */
    int net_fd, app_fd;
    int net_events, app_events; /* being watched */
    int connected;              /* connect(2) finished */
    int net_eof, app_eof;
    int failed;  /* the failure callback has fired */
    int closing; /* ef_tls_uv_close() was called */
    int open_handles;
    ef_tls_t *tls;
    char plain[EF_TLS_RECORD_MAX]; /* decrypted, for the app side */
    size_t plain_len, plain_off;
    char wire[EF_TLS_RECORD_MAX]; /* ciphertext, for the network */
    size_t wire_len, wire_off;
    ef_tls_uv_fail_cb cb;
    void *arg;
    void (*done)(void *arg);
    void *done_arg;
};

static void on_net(uv_poll_t *h, int status, int events);
static void on_app(uv_poll_t *h, int status, int events);

static void watch(uv_poll_t *h, int *cur, int want, uv_poll_cb cb) {
    if (want == *cur)
        return;
    *cur = want;
    if (want)
        uv_poll_start(h, want, cb);
    else
        uv_poll_stop(h);
}

/* What each side must be watched for, from the buffers and the state. */
static void rewatch(ef_tls_uv_t *l) {
    int open = ef_tls_state(l->tls) == EF_TLS_OPEN;
    int net = 0, app = 0;
    if (!l->failed && !l->closing) {
        if (!l->connected || l->wire_off < l->wire_len || ef_tls_net_pending(l->tls) > 0)
            net |= UV_WRITABLE;
        if (l->connected && !l->net_eof && l->plain_off == l->plain_len)
            net |= UV_READABLE;
        if (open && !l->app_eof && ef_tls_net_pending(l->tls) < EF_TLS_BACKLOG_MAX)
            app |= UV_READABLE;
        if (l->plain_off < l->plain_len)
            app |= UV_WRITABLE;
    }
    watch(&l->net, &l->net_events, net, on_net);
    watch(&l->app, &l->app_events, app, on_app);
}

/* Fires the failure callback once and stops watching. */
static void fail(ef_tls_uv_t *l, const char *why, int refused) {
    if (l->failed || l->closing)
        return;
    l->failed = 1;
    rewatch(l);
    l->cb(l, why, refused, l->arg);
}

static int would_block(void) {
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* Sends queued ciphertext until the socket is full; -1 when it failed. */
static int flush_net(ef_tls_uv_t *l) {
    while (l->connected) {
        ssize_t n;
        if (l->wire_off == l->wire_len) {
            l->wire_off = 0;
            l->wire_len = ef_tls_net_out(l->tls, l->wire, sizeof l->wire);
            if (l->wire_len == 0)
                return 0;
        }
        n = send(l->net_fd, l->wire + l->wire_off, l->wire_len - l->wire_off, MSG_NOSIGNAL);
        if (n < 0 && would_block())
            return 0;
        if (n < 0) {
            ef_tls_net_error(l->tls, strerror(errno));
            fail(l, ef_tls_error(l->tls), ef_tls_refused(l->tls));
            return -1;
        }
        l->wire_off += (size_t)n;
    }
    return 0;
}

/* Moves every byte that can move, in both directions, then rewatches. */
static void pump(ef_tls_uv_t *l) {
    char buf[EF_TLS_RECORD_MAX];
    int progress = 1;
    while (progress && !l->failed && !l->closing) {
        progress = 0;
        if (l->plain_off == l->plain_len) {
            long m = ef_tls_plain_out(l->tls, l->plain, sizeof l->plain);
            l->plain_off = 0;
            l->plain_len = m > 0 ? (size_t)m : 0;
        }
        if (l->plain_off < l->plain_len) {
            ssize_t n =
                send(l->app_fd, l->plain + l->plain_off, l->plain_len - l->plain_off, MSG_NOSIGNAL);
            if (n > 0) {
                l->plain_off += (size_t)n;
                progress = 1;
            } else if (n < 0 && !would_block()) {
                l->app_eof = 1; /* hiredis has let go: its owner closes us */
                l->plain_off = l->plain_len = 0;
            }
        }
        if (ef_tls_state(l->tls) == EF_TLS_OPEN && !l->app_eof &&
            ef_tls_net_pending(l->tls) < EF_TLS_BACKLOG_MAX) {
            ssize_t n = recv(l->app_fd, buf, sizeof buf, 0);
            if (n > 0) {
                long taken = 0;
                while (taken < n) {
                    long m = ef_tls_plain_in(l->tls, buf + taken, (size_t)(n - taken));
                    if (m <= 0)
                        break;
                    taken += m;
                }
                progress = 1;
            } else if (n == 0 || !would_block()) {
                l->app_eof = 1;
                ef_tls_shutdown(l->tls);
            }
        }
        if (flush_net(l) != 0)
            return;
        if (ef_tls_state(l->tls) >= EF_TLS_CLOSED) {
            fail(l, ef_tls_error(l->tls), ef_tls_refused(l->tls));
            return;
        }
    }
    rewatch(l);
}

static void on_net(uv_poll_t *h, int status, int events) {
    ef_tls_uv_t *l = h->data;
    char buf[EF_TLS_RECORD_MAX], why[EF_ERR_LEN];
    if (l->failed || l->closing)
        return;
    if (status < 0) {
        ef_tls_net_error(l->tls, uv_strerror(status));
        fail(l, ef_tls_error(l->tls), ef_tls_refused(l->tls));
        return;
    }
    if (!l->connected && (events & UV_WRITABLE)) {
        int e = 0;
        socklen_t len = sizeof e;
        if (getsockopt(l->net_fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
            e = errno;
        if (e == EINPROGRESS)
            return;
        if (e) {
            snprintf(why, sizeof why, "TLS: cannot connect: %s", strerror(e));
            fail(l, why, 0);
            return;
        }
        l->connected = 1;
    }
    if (events & UV_READABLE) {
        ssize_t n = recv(l->net_fd, buf, sizeof buf, 0);
        if (n > 0)
            ef_tls_net_in(l->tls, buf, (size_t)n);
        else if (n == 0) {
            l->net_eof = 1;
            ef_tls_net_eof(l->tls);
        } else if (!would_block()) {
            ef_tls_net_error(l->tls, strerror(errno));
        }
    }
    pump(l);
}

static void on_app(uv_poll_t *h, int status, int events) {
    ef_tls_uv_t *l = h->data;
    (void)events;
    if (l->failed || l->closing)
        return;
    if (status < 0)
        l->app_eof = 1;
    pump(l);
}

static void on_start_undone(uv_handle_t *h) {
    free(h->data);
}

int ef_tls_uv_start(ef_tls_uv_t **out, uv_loop_t *loop, SSL_CTX *ctx, const char *name, int tcp_fd,
                    int app_fd, ef_tls_uv_fail_cb cb, void *arg, char *err) {
    ef_tls_uv_t *l = ef_calloc(1, sizeof *l);
    int rc;
    l->net_fd = tcp_fd;
    l->app_fd = app_fd;
    l->cb = cb;
    l->arg = arg;
    l->tls = ef_tls_create(ctx, name, err);
    if (!l->tls) {
        rc = UV_EINVAL;
        goto err;
    }
    if ((rc = uv_poll_init_socket(loop, &l->net, tcp_fd)) < 0) {
        ef_seterr(err, "TLS: cannot watch the socket: %s", uv_strerror(rc));
        goto err;
    }
    if ((rc = uv_poll_init_socket(loop, &l->app, app_fd)) < 0) {
        ef_seterr(err, "TLS: cannot watch the socket: %s", uv_strerror(rc));
        ef_tls_free(l->tls);
        close(tcp_fd);
        close(app_fd);
        l->net.data = l;
        uv_close((uv_handle_t *)&l->net, on_start_undone);
        return rc;
    }
    l->net.data = l->app.data = l;
    l->open_handles = 2;
    rewatch(l);
    *out = l;
    return 0;
err:
    ef_tls_free(l->tls);
    close(tcp_fd);
    close(app_fd);
    free(l);
    return rc;
}

int ef_tls_uv_open(const ef_tls_uv_t *l) {
    return l && ef_tls_state(l->tls) == EF_TLS_OPEN;
}

static void on_closed(uv_handle_t *h) {
    ef_tls_uv_t *l = h->data;
    void (*done)(void *arg) = l->done;
    void *arg = l->done_arg;
    if (--l->open_handles > 0)
        return;
    ef_tls_free(l->tls);
    close(l->net_fd);
    close(l->app_fd);
    free(l);
    if (done)
        done(arg);
}

void ef_tls_uv_close(ef_tls_uv_t *l, void (*done)(void *arg), void *arg) {
    if (!l || l->closing)
        return;
    l->closing = 1; /* no failure callback from here on */
    if (!l->failed && l->connected) {
        ef_tls_shutdown(l->tls);
        flush_net(l); /* best effort: a full socket drops the close_notify */
    }
    l->done = done;
    l->done_arg = arg;
    uv_close((uv_handle_t *)&l->net, on_closed);
    uv_close((uv_handle_t *)&l->app, on_closed);
}
