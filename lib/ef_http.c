// SPDX-License-Identifier: MIT
/*
 * The HTTP client: libcurl's multi interface driven by one libuv loop.
 *
 * One ef_http_t owns a CURLM, a uv_timer_t that curl arms through
 * CURLMOPT_TIMERFUNCTION, and one socket context (with its uv_poll_t) per
 * socket curl asks us to watch.  Every curl_multi_socket_action() is followed
 * by a drain of curl_multi_info_read(), which is where user callbacks run;
 * ef_http_request() only adds the easy handle, so a callback never fires from
 * inside it.  Transfers (an easy handle plus its buffers) are recycled through
 * a free list, so a steady stream of requests allocates almost nothing.
 *
 * Socket contexts are LIVE (curl wants it watched), IDLE (a kept-alive
 * connection curl stopped watching while it waits in the cache), CLOSING
 * (uv_close() issued, freed in the close callback) or PENDING: curl may hand
 * us a new socket with the fd number of one whose poll handle is still
 * closing, and that new context waits for the old handle's close callback
 * (later in the same loop turn) before it initialises its own poll handle.
 *
 * Keep-alive costs no syscalls: curl opens and closes its connection sockets
 * through our CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION, so for
 * those sockets we know when the fd really goes away.  When curl stops
 * watching one (the connection goes idle in its cache) the poll handle stays
 * armed for reading, and when the next request on that connection asks for
 * reading again nothing changes in the kernel (libuv re-registers the fd with
 * two epoll_ctl calls on every uv_poll_start, and a close and a new poll
 * handle per request cost as much again).  An idle socket that turns readable
 * (the server closed it) stops being polled until curl, which then finds the
 * connection dead, closes it.  Sockets curl opens by other means (the
 * resolver's wake-up pair) are closed with their poll handle as before.
 *
 * Easy handles keep their options between requests: the common request (a GET
 * like the previous one) sets only its URL and what changed; any other
 * request starts from curl_easy_reset().  CURLOPT_BUFFERSIZE is set again
 * after every reset (a reset restores curl's 16 kB default while the handle
 * keeps the smaller receive buffer it allocated, which overflows it); curl
 * refuses it on a handle that still holds that buffer (a transfer that ended
 * while others still shared its HTTP/2 connection keeps it), and such a
 * handle is replaced by a new one.
 *
 * Responses: the body is kept up to max_body; past it (or when Content-Length
 * announces more) the transfer is aborted and reported EF_HTTP_E_TOO_BIG, so
 * a client holds at most max_body per transfer in flight, chunked or not.
 * The header lines together are bounded by EF_HTTP_HEADER_MAX.  Redirects are
 * not followed, only http and https are allowed, and no Accept-Encoding is
 * sent (the providers' JSON is small; inflating costs CPU): a 2xx body that
 * comes encoded anyway is an error that says so.  Errors name their cause
 * (a reset after how many body bytes, which limit was passed), not curl's
 * generic words.
 *
 * TLS: verification of the peer's certificate and name is set on every
 * reset handle and never turned off.  A request's ca_file, client_cert and
 * client_key are kept (as copies) with the options on the handle; a request
 * whose TLS settings differ from the handle's starts from a reset, the only
 * way back to curl's built-in CA store.  curl keeps connections apart by
 * those settings, so one made with a client certificate never carries a
 * request without it.  HTTP/2: curl multiplexes by default
 * (CURLMOPT_PIPELINING); PIPEWAIT on https:// makes a request wait for the
 * first connection to a host to tell whether it speaks HTTP/2 rather than
 * open its own, and CURLMOPT_MAX_HOST_CONNECTIONS bounds what HTTP/1.1
 * needs, so opts->max_host_connections is the caller's (for HTTP/1.1).
 *
 * curl_global_init() runs once per process from ef_http_create() through a
 * uv_once_t, the one piece of global state in this module; curl_global_cleanup()
 * is never called (the process exit does that work).
 */
#include "ef_http.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ef_common.h"
#include "ef_log.h"

#ifndef EF_VERSION
#define EF_VERSION "dev"
#endif

#define EF_HTTP_CONNECT_TIMEOUT_MAX_MS 5000
#define EF_HTTP_BUF_MIN 4096          /* bytes, first body allocation */
#define EF_HTTP_BUF_KEEP (64u << 10)  /* bytes, larger buffers are freed on recycle */
#define EF_HTTP_PRESIZE_MAX (256u << 10) /* bytes, most a Content-Length reserves upfront */
#define EF_HTTP_FREE_MAX 1024         /* idle transfers kept for reuse */
#define EF_HTTP_CTYPE_LEN 128         /* bytes, Content-Type copy incl. NUL */
#define EF_HTTP_DATE_LEN 64           /* bytes, longest Retry-After date we parse */
#define EF_HTTP_RECV_BUF 2048         /* bytes, curl's receive buffer per easy handle */
#define EF_HTTP_FD_MAX (1 << 20)      /* fds past this are not tracked (closed on REMOVE) */

typedef enum { EF_SOCK_PENDING = 0, EF_SOCK_LIVE, EF_SOCK_IDLE, EF_SOCK_CLOSING } ef_sock_state_t;

typedef struct ef_http_sock_s {
    uv_poll_t poll;                   /* initialised unless PENDING */
    ef_http_t *h;
    curl_socket_t fd;
    int events;                       /* UV_READABLE | UV_WRITABLE wanted by curl */
    int polled;                       /* events libuv watches now, 0 = stopped */
    int owned;                        /* opened and closed through our callbacks */
    ef_sock_state_t state;
    struct ef_http_sock_s *waiter;    /* PENDING context waiting for our close */
    struct ef_http_sock_s *waitee;    /* CLOSING context we wait for (PENDING only) */
    struct ef_http_sock_s *prev, *next;
} ef_http_sock_t;

typedef struct ef_http_xfer_s {
    ef_http_t *h;
    CURL *easy;
    struct curl_slist *headers;
    ef_http_cb cb;
    void *arg;
    char *buf;                        /* response body, NUL-terminated on completion */
    size_t len, cap;                  /* bytes */
    size_t max_body;                  /* bytes */
    char *reqbody;                    /* copy of the request body, capacity kept */
    size_t reqbody_cap;               /* bytes */
    int head;                         /* HEAD request: Content-Length is not a body size */
    int too_big;
    int body_started;                 /* on_write has run */
    size_t hdr_bytes;                 /* header bytes of this response so far */
    int64_t ra_secs;                  /* Retry-After delay-seconds, -1 when not that */
    int64_t ra_date;                  /* Retry-After HTTP-date (s since the epoch), -1 if not */
    int64_t date;                     /* Date header (s since the epoch), -1 when absent */
    int64_t rl_limit, rl_remaining;   /* rate headers, -1 when absent */
    int64_t rl_reset, rl_window;      /* s (or a date, s since the epoch), -1 when absent */
    char encoding[32];                /* Content-Encoding other than identity, "" when none */
    char why[128];                    /* our own reason for aborting, "" when none */
    ef_http_err_t why_err;
    int has_ctype;
    char ctype[EF_HTTP_CTYPE_LEN];
    char errbuf[CURL_ERROR_SIZE];
    int configured;                   /* the constant options are set */
    int plain_get;                    /* left as a GET with no body: the fast path applies */
    long cfg_timeout, cfg_ctimeout;   /* ms, as set on the handle */
    long cfg_pipewait;
    char *cfg_ca, *cfg_cert, *cfg_key;/* TLS files set on the handle (copies), NULL = none */
    struct ef_http_xfer_s *prev, *next;
} ef_http_xfer_t;

/* What we know of one fd number: whether curl opened it through us, and its
 * context (LIVE, IDLE or PENDING) if it has one. */
typedef struct {
    ef_http_sock_t *sock;
    int owned;
    int established;                  /* a response has come over it: a kept-alive connection */
} ef_http_fd_t;

struct ef_http_s {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    char *user_agent;
    ef_http_xfer_t *active;           /* in flight, doubly linked */
    ef_http_xfer_t *idle;             /* free list, singly linked through next */
    size_t inflight, nidle;
    ef_http_sock_t *socks;            /* LIVE and PENDING contexts */
    ef_http_sock_t *closing;          /* CLOSING contexts */
    ef_http_fd_t *fds;                /* indexed by fd, grown on demand */
    size_t nfds;
    unsigned nhandles;                /* uv handles not yet through their close callback */
    int tls_logged;                   /* a TLS failure has been logged */
    uint64_t tls_logged_ms;           /* uv_now() of that line */
    unsigned long tls_unlogged;       /* TLS failures since that line, not logged */
    int closed;                       /* ef_http_close() was called */
    void (*done)(void *arg);
    void *done_arg;
};

static uv_once_t global_once = UV_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static void on_timer(uv_timer_t *t);
static void on_poll(uv_poll_t *p, int status, int events);
static void drain(ef_http_t *h);

/* ---- Small lists ---- */

#define LIST_PUSH(head, n)                                                                     \
    do {                                                                                       \
        (n)->prev = NULL;                                                                      \
        (n)->next = (head);                                                                    \
        if (head)                                                                              \
            (head)->prev = (n);                                                                \
        (head) = (n);                                                                          \
    } while (0)

#define LIST_UNLINK(head, n)                                                                   \
    do {                                                                                       \
        if ((n)->prev)                                                                         \
            (n)->prev->next = (n)->next;                                                       \
        else                                                                                   \
            (head) = (n)->next;                                                                \
        if ((n)->next)                                                                         \
            (n)->next->prev = (n)->prev;                                                       \
        (n)->prev = (n)->next = NULL;                                                          \
    } while (0)

/* ---- Teardown ---- */

/* Called after each uv handle's close callback; frees everything once the
 * last one is through and ef_http_close() has been called. */
static void handle_closed(ef_http_t *h) {
    void (*done)(void *);
    void *arg;

    h->nhandles--;
    if (!h->closed || h->nhandles > 0)
        return;
    done = h->done;
    arg = h->done_arg;
    free(h->user_agent);
    free(h->fds);
    free(h);
    if (done)
        done(arg);
}

static void on_timer_close(uv_handle_t *handle) {
    handle_closed(handle->data);
}

/* ---- Sockets ---- */

/* The record of fd, grown when grow is set; NULL for fds we do not track. */
static ef_http_fd_t *fd_slot(ef_http_t *h, curl_socket_t fd, int grow) {
    size_t n;

    if (fd < 0 || fd >= EF_HTTP_FD_MAX)
        return NULL;
    if ((size_t)fd < h->nfds)
        return &h->fds[fd];
    if (!grow)
        return NULL;
    n = h->nfds ? h->nfds : 64;
    while (n <= (size_t)fd)
        n *= 2;
    h->fds = ef_realloc(h->fds, n * sizeof(*h->fds));
    memset(h->fds + h->nfds, 0, (n - h->nfds) * sizeof(*h->fds));
    h->nfds = n;
    return &h->fds[fd];
}

/* Makes libuv watch what curl wants, initialising a PENDING context's poll
 * handle first; nothing reaches the kernel when that is already watched. */
static int sock_start(ef_http_sock_t *s) {
    int rc;

    if (s->state == EF_SOCK_PENDING) {
        rc = uv_poll_init_socket(s->h->loop, &s->poll, s->fd);
        if (rc < 0)
            return rc;
        s->poll.data = s;
        s->state = EF_SOCK_LIVE;
        s->polled = 0;
        s->h->nhandles++;
    }
    if (s->polled == s->events)
        return 0;
    rc = uv_poll_start(&s->poll, s->events, on_poll);
    s->polled = rc < 0 ? 0 : s->events;
    return rc;
}

static void on_sock_close(uv_handle_t *handle) {
    ef_http_sock_t *s = handle->data;
    ef_http_sock_t *w = s->waiter;
    ef_http_t *h = s->h;

    LIST_UNLINK(h->closing, s);
    free(s);
    if (w) {
        w->waitee = NULL;
        if (!h->closed && sock_start(w) < 0) {
            /* curl believes the socket is watched: tell it that it is not. */
            int running;
            ef_warn("http: cannot poll socket %d", (int)w->fd);
            if (curl_multi_socket_action(h->multi, w->fd, CURL_CSELECT_ERR, &running) !=
                CURLM_OK)
                ef_warn("http: curl_multi_socket_action failed");
            drain(h);
        }
    }
    handle_closed(h);
}

/* Stops watching s for good: LIVE and IDLE contexts close their poll handle
 * (freed in the close callback; uv_close takes the fd out of epoll at once,
 * so the fd may be closed right after), PENDING ones were never initialised
 * and are freed now. */
static void sock_close(ef_http_sock_t *s) {
    ef_http_t *h = s->h;
    ef_http_fd_t *slot;

    if (s->state == EF_SOCK_CLOSING)
        return;
    slot = fd_slot(h, s->fd, 0);
    if (slot && slot->sock == s)
        slot->sock = NULL;
    LIST_UNLINK(h->socks, s);
    if (s->state == EF_SOCK_PENDING) {
        if (s->waitee)
            s->waitee->waiter = NULL;
        free(s);
        return;
    }
    s->state = EF_SOCK_CLOSING;
    LIST_PUSH(h->closing, s);
    uv_close((uv_handle_t *)&s->poll, on_sock_close);
}

/* curl stopped watching s: a kept-alive connection (opened through us, a
 * response already read over it, the fd still open) stays polled for
 * reading while it idles in the cache (see the top of the file); any other
 * socket is closed.  curl closes some sockets without the close callback
 * (a connection attempt that failed or timed out), sometimes before it says
 * CURL_POLL_REMOVE: those never carried a response, and the fd check
 * catches the rest. */
static void sock_remove(ef_http_sock_t *s) {
    ef_http_fd_t *slot = fd_slot(s->h, s->fd, 0);

    if (s->state != EF_SOCK_LIVE || !s->owned || !slot || !slot->established ||
        fcntl(s->fd, F_GETFD) < 0) {
        sock_close(s);
        return;
    }
    s->state = EF_SOCK_IDLE;
    s->events = UV_READABLE;
    if (sock_start(s) < 0)
        sock_close(s);
}

/* CURLOPT_OPENSOCKETFUNCTION: opens the socket as curl would (curl makes it
 * non-blocking) and notes that its close will come through on_close_socket. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *addr) {
    ef_http_t *h = clientp;
    ef_http_fd_t *slot;
    int fd;

    (void)purpose;
    fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    slot = fd_slot(h, fd, 1);
    if (slot) {
        /* a context still here means curl closed that fd without telling us */
        if (slot->sock && slot->sock->state == EF_SOCK_IDLE)
            sock_close(slot->sock);
        else if (slot->sock)
            slot->sock->owned = 0; /* closed (not kept) when curl removes it */
        slot->sock = NULL;
        slot->owned = 1;
        slot->established = 0;
    }
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the fd goes away, so does its context (curl
 * has already said CURL_POLL_REMOVE if it was watching it). */
static int on_close_socket(void *clientp, curl_socket_t fd) {
    ef_http_t *h = clientp;
    ef_http_fd_t *slot = fd_slot(h, fd, 0);

    if (slot) {
        if (slot->sock)
            sock_close(slot->sock);
        slot->owned = 0;
        slot->established = 0;
    }
    return close(fd);
}

/* CURLMOPT_SOCKETFUNCTION: creates, updates or removes the socket context. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int action, void *userp,
                          void *socketp) {
    ef_http_t *h = userp;
    ef_http_sock_t *s = socketp;
    ef_http_sock_t *c;
    ef_http_fd_t *slot;

    (void)easy;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            sock_remove(s);
            if (curl_multi_assign(h->multi, fd, NULL) != CURLM_OK)
                return -1;
        }
        return 0;
    }
    if (!s) {
        slot = fd_slot(h, fd, 0);
        if (slot && slot->sock && slot->sock->state == EF_SOCK_IDLE) {
            s = slot->sock; /* a kept-alive connection back in use */
            s->state = EF_SOCK_LIVE;
        } else {
            s = ef_calloc(1, sizeof(*s));
            s->h = h;
            s->fd = fd;
            s->state = EF_SOCK_PENDING;
            s->owned = slot && slot->owned;
            if (s->owned)
                slot->sock = s;
            LIST_PUSH(h->socks, s);
            for (c = h->closing; c; c = c->next) {
                if (c->fd == fd && !c->waiter) {
                    c->waiter = s;
                    s->waitee = c;
                    break;
                }
            }
        }
        if (curl_multi_assign(h->multi, fd, s) != CURLM_OK) {
            sock_close(s);
            return -1;
        }
    }
    s->events = (action & CURL_POLL_IN ? UV_READABLE : 0) |
                (action & CURL_POLL_OUT ? UV_WRITABLE : 0);
    if (s->waitee)
        return 0; /* started from the old handle's close callback */
    if (sock_start(s) < 0) {
        ef_warn("http: cannot poll socket %d", (int)fd);
        return -1;
    }
    return 0;
}

/* Passes a poll event (or a poll error as CURL_CSELECT_ERR) to curl.  An
 * IDLE socket that wakes up was closed by the server (or sent what nobody
 * asked for): it is no longer polled, and curl finds it dead on reuse. */
static void on_poll(uv_poll_t *p, int status, int events) {
    ef_http_sock_t *s = p->data;
    ef_http_t *h = s->h;
    int flags = 0, running;
    CURLMcode mc;

    if (s->state == EF_SOCK_IDLE) {
        if (uv_poll_stop(&s->poll) == 0)
            s->polled = 0;
        return;
    }
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
        s->polled = 0; /* libuv stopped the handle */
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    mc = curl_multi_socket_action(h->multi, s->fd, flags, &running);
    if (mc != CURLM_OK)
        ef_warn("http: curl_multi_socket_action: %s", curl_multi_strerror(mc));
    /* curl still expects the socket watched until it says otherwise. */
    if (status < 0 && (s->state == EF_SOCK_LIVE || s->state == EF_SOCK_IDLE) &&
        sock_start(s) < 0)
        ef_warn("http: cannot poll socket %d", (int)s->fd);
    drain(h);
}

/* ---- Timer ---- */

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer.  0 ("act now") is a 0 ms
 * libuv timer: it fires in the next loop iteration, after this callback has
 * returned (no re-entrancy), without the 1 ms sleep that would cap every
 * connection at about 1000 requests a second. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
    ef_http_t *h = userp;

    (void)multi;
    if (timeout_ms < 0)
        return uv_timer_stop(&h->timer) == 0 ? 0 : -1;
    return uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

static void on_timer(uv_timer_t *t) {
    ef_http_t *h = t->data;
    int running;
    CURLMcode mc;

    mc = curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (mc != CURLM_OK)
        ef_warn("http: curl_multi_socket_action: %s", curl_multi_strerror(mc));
    drain(h);
}

/* ---- Response capture ---- */

static int header_is(const char *line, size_t len, const char *name, size_t nlen) {
    return len > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0;
}

/* Returns the value of a "Name: value\r\n" line with whitespace trimmed. */
static const char *header_value(const char *line, size_t len, size_t nlen, size_t *vlen) {
    const char *v = line + nlen + 1, *end = line + len;

    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *vlen = (size_t)(end - v);
    return v;
}

/* An HTTP-date (any format curl_getdate() knows) as s since the epoch, or -1. */
static int64_t http_date_parse(const char *v, size_t len) {
    char date[EF_HTTP_DATE_LEN];
    time_t t;

    if (len == 0 || len >= sizeof(date))
        return -1;
    memcpy(date, v, len);
    date[len] = '\0';
    t = curl_getdate(date, NULL);
    return t == (time_t)-1 ? -1 : (int64_t)t;
}

/* Reads Retry-After into x: delay-seconds or an HTTP-date (converted when
 * the response is complete, once its Date header is known). */
static void retry_after_parse(ef_http_xfer_t *x, const char *v, size_t len) {
    x->ra_secs = x->ra_date = -1;
    if (len > 0 && v[0] >= '0' && v[0] <= '9') {
        if (ef_parse_i64(v, len, &x->ra_secs) < 0)
            x->ra_secs = -1;
        return;
    }
    x->ra_date = http_date_parse(v, len);
}

/* Fills resp's Retry-After fields: seconds as ms; a date against the Date
 * header, else against this host's clock (retry_after_ms, never negative)
 * with the date itself in retry_after_at_ms for a caller that has a better
 * clock. */
static void retry_after_finish(const ef_http_xfer_t *x, ef_http_resp_t *resp) {
    int64_t ms;

    resp->retry_after_ms = -1;
    resp->retry_after_at_ms = 0;
    if (x->ra_secs >= 0) {
        resp->retry_after_ms = x->ra_secs > LONG_MAX / 1000 ? LONG_MAX : (long)x->ra_secs * 1000;
        return;
    }
    if (x->ra_date < 0)
        return;
    if (x->date >= 0) {
        ms = (x->ra_date - x->date) * 1000;
    } else {
        resp->retry_after_at_ms = (long long)x->ra_date * 1000;
        ms = x->ra_date * 1000 - ef_now_ms();
    }
    resp->retry_after_ms = ms < 0 ? 0 : ms > LONG_MAX ? LONG_MAX : (long)ms;
}

/* ---- Rate headers ---- */

/* The integer after "key=" in a header value where key starts a parameter
 * (at the start, or after ' ' ',' ';'), or -1.  A fraction is cut off. */
static int64_t rl_param(const char *v, size_t len, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl < len; i++) {
        if ((i == 0 || v[i - 1] == ' ' || v[i - 1] == ',' || v[i - 1] == ';') &&
            strncasecmp(v + i, key, kl) == 0 && v[i + kl] == '=') {
            size_t j = i + kl + 1, n = 0;
            int64_t out;
            while (j + n < len && v[j + n] >= '0' && v[j + n] <= '9' && n < 18)
                n++;
            return n > 0 && ef_parse_i64(v + j, n, &out) == 0 ? out : -1;
        }
    }
    return -1;
}

/* The integer a header value starts with ("10" or "10, 10;w=1"), or -1. */
static int64_t rl_leading(const char *v, size_t len) {
    size_t n = 0;
    int64_t out;
    while (n < len && v[n] >= '0' && v[n] <= '9' && n < 18)
        n++;
    return n > 0 && ef_parse_i64(v, n, &out) == 0 ? out : -1;
}

/* Reads one rate header line into x; returns 1 when it was one. */
static int rl_header(ef_http_xfer_t *x, const char *line, size_t len) {
    static const char *const names[] = {
        "x-ratelimit-limit", "ratelimit-limit", "x-ratelimit-remaining", "ratelimit-remaining",
        "x-ratelimit-reset", "ratelimit-reset", "ratelimit-policy",      "ratelimit"};
    size_t vlen;
    int64_t n;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t nl = strlen(names[i]);
        if (!header_is(line, len, names[i], nl))
            continue;
        const char *v = header_value(line, len, nl, &vlen);
        if (i < 2) {
            x->rl_limit = rl_leading(v, vlen);
            if ((n = rl_param(v, vlen, "w")) > 0)
                x->rl_window = n;
        } else if (i < 4) {
            x->rl_remaining = rl_leading(v, vlen);
        } else if (i < 6) {
            x->rl_reset = rl_leading(v, vlen);
        } else if (i == 6) { /* "10;w=1" or "\"default\";q=10;w=1" */
            if ((n = rl_leading(v, vlen)) >= 0 || (n = rl_param(v, vlen, "q")) >= 0)
                x->rl_limit = n;
            if ((n = rl_param(v, vlen, "w")) > 0)
                x->rl_window = n;
        } else { /* "limit=10, remaining=0, reset=1" or "\"default\";r=0;t=1" */
            if ((n = rl_param(v, vlen, "limit")) >= 0)
                x->rl_limit = n;
            if ((n = rl_param(v, vlen, "remaining")) >= 0 || (n = rl_param(v, vlen, "r")) >= 0)
                x->rl_remaining = n;
            if ((n = rl_param(v, vlen, "reset")) >= 0 || (n = rl_param(v, vlen, "t")) >= 0)
                x->rl_reset = n;
        }
        return 1;
    }
    return 0;
}

/* Fills resp's rate fields.  A reset above 10^9 is a date (s since the
 * epoch), read against the Date header or left for the caller's clock. */
static void rl_finish(const ef_http_xfer_t *x, ef_http_resp_t *resp) {
    resp->rl_limit = x->rl_limit > 0 && x->rl_limit < LONG_MAX ? (long)x->rl_limit : 0;
    resp->rl_window_s = x->rl_window > 0 && x->rl_window < LONG_MAX ? (long)x->rl_window : 0;
    resp->rl_reset_ms = -1;
    if (x->rl_remaining != 0)
        return;
    resp->rl_exhausted = 1;
    if (x->rl_reset < 0)
        return;
    if (x->rl_reset <= 1000000000) {
        resp->rl_reset_ms = (long)x->rl_reset * 1000;
    } else if (x->date >= 0) {
        int64_t ms = (x->rl_reset - x->date) * 1000;
        resp->rl_reset_ms = ms < 0 ? 0 : ms > LONG_MAX ? LONG_MAX : (long)ms;
    } else {
        resp->rl_reset_at_ms = (long long)x->rl_reset * 1000;
    }
}

/* Aborts the transfer for a reason of ours: the error reported is err with
 * the message why. */
static size_t xfer_abort(ef_http_xfer_t *x, ef_http_err_t err, const char *fmt, ...)
    EF_PRINTF(3, 4);

static size_t xfer_abort(ef_http_xfer_t *x, ef_http_err_t err, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->why, sizeof(x->why), fmt, ap);
    va_end(ap);
    x->why_err = err;
    return CURL_WRITEFUNC_ERROR;
}

/* CURLOPT_HEADERFUNCTION: resets on each status line (1xx responses come
 * first), captures Retry-After, Date, Content-Type and Content-Encoding, and
 * aborts when the header passes EF_HTTP_HEADER_MAX or Content-Length
 * announces more than max_body. */
static size_t on_header(char *line, size_t size, size_t n, void *ud) {
    ef_http_xfer_t *x = ud;
    size_t len = size * n, vlen;
    const char *v;
    int64_t clen;

    x->hdr_bytes += len;
    if (x->hdr_bytes > EF_HTTP_HEADER_MAX)
        return xfer_abort(x, EF_HTTP_E_PROTOCOL, "response header larger than %u bytes",
                          (unsigned)EF_HTTP_HEADER_MAX);
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        x->ra_secs = x->ra_date = x->date = -1;
        x->rl_limit = x->rl_remaining = x->rl_reset = x->rl_window = -1;
        x->has_ctype = 0;
        x->encoding[0] = '\0';
    } else if (header_is(line, len, "retry-after", 11)) {
        v = header_value(line, len, 11, &vlen);
        retry_after_parse(x, v, vlen);
    } else if (rl_header(x, line, len)) {
        return len;
    } else if (header_is(line, len, "date", 4)) {
        v = header_value(line, len, 4, &vlen);
        x->date = http_date_parse(v, vlen);
    } else if (header_is(line, len, "content-encoding", 16)) {
        v = header_value(line, len, 16, &vlen);
        if (!(vlen == 8 && strncasecmp(v, "identity", 8) == 0) && vlen > 0) {
            if (vlen >= sizeof(x->encoding))
                vlen = sizeof(x->encoding) - 1;
            memcpy(x->encoding, v, vlen);
            x->encoding[vlen] = '\0';
        }
    } else if (header_is(line, len, "content-type", 12)) {
        v = header_value(line, len, 12, &vlen);
        if (vlen >= sizeof(x->ctype))
            vlen = sizeof(x->ctype) - 1;
        memcpy(x->ctype, v, vlen);
        x->ctype[vlen] = '\0';
        x->has_ctype = 1;
    } else if (!x->head && header_is(line, len, "content-length", 14)) {
        v = header_value(line, len, 14, &vlen);
        if (ef_parse_i64(v, vlen, &clen) < 0)
            return len; /* curl judges malformed lengths */
        if ((uint64_t)clen > x->max_body) {
            x->too_big = 1;
            return CURL_WRITEFUNC_ERROR;
        }
        /* size the buffer once, but never trust a peer for more than a little */
        if (x->cap < (size_t)clen + 1 && (size_t)clen < EF_HTTP_PRESIZE_MAX) {
            x->buf = ef_realloc(x->buf, (size_t)clen + 1);
            x->cap = (size_t)clen + 1;
        }
    }
    return len;
}

/* CURLOPT_WRITEFUNCTION: appends to the body buffer, aborting the transfer
 * (curl reports CURLE_WRITE_ERROR) when it would pass max_body. */
static size_t on_write(char *data, size_t size, size_t n, void *ud) {
    ef_http_xfer_t *x = ud;
    size_t len = size * n, need;

    x->body_started = 1;
    if (len > x->max_body - x->len) {
        x->too_big = 1;
        return CURL_WRITEFUNC_ERROR;
    }
    need = x->len + len + 1;
    if (need > x->cap) {
        size_t cap = x->cap ? x->cap : EF_HTTP_BUF_MIN;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (cap > x->max_body + 1)
            cap = x->max_body + 1;
        x->buf = ef_realloc(x->buf, cap);
        x->cap = cap;
    }
    memcpy(x->buf + x->len, data, len);
    x->len += len;
    return len;
}

static ef_http_err_t map_code(const ef_http_xfer_t *x, CURLcode code) {
    switch (code) {
    case CURLE_OK:
        return EF_HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return EF_HTTP_E_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
        return EF_HTTP_E_CONNECT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return EF_HTTP_E_RESET;
    case CURLE_WRITE_ERROR:
        return x->too_big ? EF_HTTP_E_TOO_BIG : EF_HTTP_E_OTHER;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        return EF_HTTP_E_TLS;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
        return EF_HTTP_E_PROTOCOL;
    default:
        return EF_HTTP_E_OTHER;
    }
}

/* Writes into msg what went wrong with TLS: curl's own words (OpenSSL's
 * reason) after what it means for the recipe. */
static void tls_explain(const ef_http_xfer_t *x, CURLcode code, char *msg, size_t cap) {
    const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);

    switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
        if (x->cfg_ca)
            snprintf(msg, cap, "TLS: the provider's certificate failed verification against "
                               "ca_file %s: %s", x->cfg_ca, why);
        else
            snprintf(msg, cap, "TLS: the provider's certificate failed verification against "
                               "the system's CAs (a private CA needs ca_file): %s", why);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(msg, cap, "TLS: cannot use ca_file %s: %s", x->cfg_ca ? x->cfg_ca : "(system)",
                 why);
        break;
    case CURLE_SSL_CERTPROBLEM:
        snprintf(msg, cap, "TLS: cannot use client_cert %s or its key: %s",
                 x->cfg_cert ? x->cfg_cert : "(none)", why);
        break;
    default:
        snprintf(msg, cap, "TLS: %s", why);
        break;
    }
}

/* Logs a TLS failure with the peer's address (never the URL, which may hold
 * a secret): at most one line every EF_HTTP_TLS_LOG_MS per client, which
 * counts the failures it did not log. */
static void tls_log(ef_http_t *h, ef_http_xfer_t *x, const char *msg) {
    uint64_t now = uv_now(h->loop);
    char *ip = NULL;
    long port = 0;

    if (h->tls_logged && now - h->tls_logged_ms < EF_HTTP_TLS_LOG_MS) {
        h->tls_unlogged++;
        return;
    }
    if (curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK || !ip)
        ip = NULL;
    if (curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_PORT, &port) != CURLE_OK)
        port = 0;
    if (h->tls_unlogged > 0)
        ef_warn("http: TLS with %s port %ld: %s (and %lu more such failures not logged)",
                ip && *ip ? ip : "(no address)", port, msg, h->tls_unlogged);
    else
        ef_warn("http: TLS with %s port %ld: %s", ip && *ip ? ip : "(no address)", port, msg);
    h->tls_logged = 1;
    h->tls_logged_ms = now;
    h->tls_unlogged = 0;
}

/* Classifies a finished transfer and, where curl's own words would mislead
 * (a reset reported as "select/poll returned error", an oversized header as
 * "Out of memory", a gzip body judged as text), writes what happened into
 * msg (left "" for curl's message). */
static ef_http_err_t xfer_explain(ef_http_xfer_t *x, CURLcode code, char *msg, size_t cap) {
    ef_http_err_t err = map_code(x, code);
    long status = 0;

    msg[0] = '\0';
    if (x->why[0] && code != CURLE_OK) {
        snprintf(msg, cap, "%s", x->why);
        return x->why_err;
    }
    switch (err) {
    case EF_HTTP_OK:
        if (x->encoding[0] && x->len > 0 &&
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
            status >= 200 && status <= 299) {
            snprintf(msg, cap, "response body is %.31s-encoded but no encoding was requested",
                     x->encoding);
            return EF_HTTP_E_PROTOCOL;
        }
        break;
    case EF_HTTP_E_TOO_BIG:
        snprintf(msg, cap, "response body over %zu bytes (max_body)", x->max_body);
        break;
    case EF_HTTP_E_TLS:
        tls_explain(x, code, msg, cap);
        break;
    case EF_HTTP_E_CONNECT:
        if (code == CURLE_SSL_CONNECT_ERROR)
            snprintf(msg, cap, "TLS handshake failed: %s",
                     x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
        break;
    case EF_HTTP_E_RESET:
        if (code == CURLE_PARTIAL_FILE)
            snprintf(msg, cap, "connection closed by provider after %zu body bytes, before the "
                               "announced end", x->len);
        else if (x->hdr_bytes == 0 && strstr(x->errbuf, "SSL"))
            /* a TLS alert (a client certificate required, refused) says why */
            snprintf(msg, cap, "connection %s by provider before any answer (%s)",
                     code == CURLE_GOT_NOTHING ? "closed" : "reset", x->errbuf);
        else if (x->hdr_bytes == 0)
            snprintf(msg, cap, "connection %s by provider before any answer",
                     code == CURLE_GOT_NOTHING ? "closed" : "reset");
        else if (!x->body_started)
            snprintf(msg, cap, "connection reset by provider after the header, before the body");
        else
            snprintf(msg, cap, "connection reset by provider after %zu body bytes", x->len);
        break;
    default:
        /* curl refuses one header line past its own limit as out of memory */
        if ((code == CURLE_OUT_OF_MEMORY || (int)code == 100 /* CURLE_TOO_LARGE */) &&
            !x->body_started) {
            snprintf(msg, cap, "response header larger than %u bytes",
                     (unsigned)EF_HTTP_HEADER_MAX);
            return EF_HTTP_E_PROTOCOL;
        }
        break;
    }
    return err;
}

/* ---- Transfers ---- */

static void xfer_destroy(ef_http_xfer_t *x) {
    free(x->cfg_ca);
    free(x->cfg_cert);
    free(x->cfg_key);
    curl_slist_free_all(x->headers);
    curl_easy_cleanup(x->easy);
    free(x->buf);
    free(x->reqbody);
    free(x);
}

/* Returns x to the free list (or frees it when the list is full or the
 * client is closing); large buffers are dropped so idle memory stays small. */
static void xfer_recycle(ef_http_xfer_t *x) {
    ef_http_t *h = x->h;

    x->cb = NULL;
    x->arg = NULL;
    if (h->closed || h->nidle >= EF_HTTP_FREE_MAX) {
        xfer_destroy(x);
        return;
    }
    if (x->cap > EF_HTTP_BUF_KEEP) {
        free(x->buf);
        x->buf = NULL;
        x->cap = 0;
    }
    if (x->reqbody_cap > EF_HTTP_BUF_KEEP) {
        free(x->reqbody);
        x->reqbody = NULL;
        x->reqbody_cap = 0;
    }
    x->prev = NULL;
    x->next = h->idle;
    h->idle = x;
    h->nidle++;
}

/* Fills resp from the finished transfer and runs the user callback. */
static void xfer_finish(ef_http_xfer_t *x, CURLcode code, ef_http_err_t err, const char *msg) {
    ef_http_resp_t resp;
    curl_off_t total_us = 0;
    long status = 0;

    memset(&resp, 0, sizeof(resp));
    if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &total_us) != CURLE_OK)
        total_us = 0;
    if (x->buf)
        x->buf[x->len] = '\0';
    resp.err = err;
    resp.curl_code = (int)code;
    resp.status = status;
    resp.body = x->buf ? x->buf : "";
    resp.body_len = x->len;
    retry_after_finish(x, &resp);
    rl_finish(x, &resp);
    resp.content_type = x->has_ctype ? x->ctype : NULL;
    resp.total_ms = (double)total_us / 1000.0;
    if (err != EF_HTTP_OK)
        resp.errmsg = msg ? msg : x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
    x->cb(&resp, x->arg);
}

/* Drains curl's finished transfers: each leaves the multi handle before its
 * callback runs, so the callback may start new requests or close the client. */
static void drain(ef_http_t *h) {
    CURLMsg *m;
    int left;

    while (!h->closed && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
        ef_http_xfer_t *x;
        char *priv = NULL;
        CURLcode code = m->data.result;
        ef_http_err_t err;
        char msg[CURL_ERROR_SIZE + 160];

        if (m->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv) {
            ef_error("http: finished transfer without state");
            continue;
        }
        x = (ef_http_xfer_t *)(void *)priv;
        if (code == CURLE_OK) {
            /* the connection now waits in curl's cache: its socket may idle polled */
            curl_socket_t fd = CURL_SOCKET_BAD;
            ef_http_fd_t *slot;
            if (curl_easy_getinfo(x->easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
                fd != CURL_SOCKET_BAD && (slot = fd_slot(h, fd, 0)) != NULL && slot->owned)
                slot->established = 1;
        }
        if (curl_multi_remove_handle(h->multi, x->easy) != CURLM_OK)
            ef_warn("http: curl_multi_remove_handle failed");
        LIST_UNLINK(h->active, x);
        h->inflight--;
        err = xfer_explain(x, code, msg, sizeof(msg));
        if (err == EF_HTTP_E_TLS || code == CURLE_SSL_CONNECT_ERROR ||
            (err == EF_HTTP_E_RESET && x->hdr_bytes == 0 && strstr(x->errbuf, "SSL")))
            tls_log(h, x, msg[0] ? msg : x->errbuf);
        xfer_finish(x, code, err, msg[0] ? msg : NULL);
        xfer_recycle(x);
    }
}

static ef_http_xfer_t *xfer_get(ef_http_t *h) {
    ef_http_xfer_t *x = h->idle;

    if (x) {
        h->idle = x->next;
        h->nidle--;
        x->next = NULL;
        return x;
    }
    x = ef_calloc(1, sizeof(*x));
    x->h = h;
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return NULL;
    }
    return x;
}

/* The header lines of req equal the list set on the handle. */
static int headers_same(const struct curl_slist *l, const ef_http_req_t *req) {
    size_t i = 0;

    for (; l && i < req->nheaders; l = l->next, i++)
        if (strcmp(l->data, req->headers[i]) != 0)
            return 0;
    return !l && i == req->nheaders;
}

/* Both NULL or equal strings. */
static int str_same(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Replaces the copy *slot by one of s (NULL stays NULL). */
static void str_keep(char **slot, const char *s) {
    free(*slot);
    *slot = s ? ef_strdup(s) : NULL;
}

/* Applies one request's options to x's easy handle: only what changed for a
 * GET on a handle whose last request was a GET with the same TLS files,
 * everything after a reset otherwise. */
static CURLcode xfer_setup(ef_http_xfer_t *x, const ef_http_req_t *req) {
    ef_http_t *h = x->h;
    CURL *e = x->easy;
    const char *method = req->method ? req->method : "GET";
    int get = !req->body && strcmp(method, "GET") == 0;
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : EF_HTTP_TIMEOUT_DEFAULT_MS;
    long ctimeout = req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                    : timeout < EF_HTTP_CONNECT_TIMEOUT_MAX_MS ? timeout
                                                                : EF_HTTP_CONNECT_TIMEOUT_MAX_MS;
    /* Waiting to multiplex only makes sense where HTTP/2 can be negotiated
     * (TLS): on plain http:// curl would hold every request to a host behind
     * its first connection, and a hung answer would time them all out
     * unsent. */
    long pipewait = strncmp(req->url, "https://", 8) == 0 ? 1L : 0L;
    int same_tls = str_same(x->cfg_ca, req->ca_file) && str_same(x->cfg_cert, req->client_cert) &&
                   str_same(x->cfg_key, req->client_key);
    CURLcode rc = CURLE_OK;

#define SETOPT(opt, val)                                                                       \
    do {                                                                                       \
        if (rc == CURLE_OK)                                                                    \
            rc = curl_easy_setopt(e, opt, val);                                                \
    } while (0)

    if (!get || !x->plain_get || !same_tls) {
        /* also after a failed setup (configured 0) that left options set */
        curl_easy_reset(e);
        if (curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)EF_HTTP_RECV_BUF) != CURLE_OK) {
            /* curl frees a transfer's receive buffer at its end only when
             * no other transfer shares the connection (HTTP/2), refuses a
             * new size while the handle has one, and the reset has put the
             * size back to 16 kB: reading 16 kB into that 2 kB buffer would
             * overflow it.  Such a handle is replaced. */
            CURL *fresh = curl_easy_init();
            if (!fresh)
                return CURLE_OUT_OF_MEMORY;
            curl_easy_cleanup(e);
            x->easy = e = fresh;
            rc = curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)EF_HTTP_RECV_BUF);
        }
        curl_slist_free_all(x->headers);
        x->headers = NULL;
        x->configured = 0;
        x->plain_get = 0;
        SETOPT(CURLOPT_PRIVATE, x);
        SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_TCP_NODELAY, 1L);
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(CURLOPT_USERAGENT, h->user_agent);
        SETOPT(CURLOPT_WRITEFUNCTION, on_write);
        SETOPT(CURLOPT_WRITEDATA, x);
        SETOPT(CURLOPT_HEADERFUNCTION, on_header);
        SETOPT(CURLOPT_HEADERDATA, x);
        SETOPT(CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        SETOPT(CURLOPT_OPENSOCKETDATA, h);
        SETOPT(CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
        SETOPT(CURLOPT_CLOSESOCKETDATA, h);
        /* curl's defaults, said out loud: verification is never turned off */
        SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
        if (req->ca_file) {
            /* the recipe's CAs replace the system's, directory included */
            SETOPT(CURLOPT_CAINFO, req->ca_file);
            SETOPT(CURLOPT_CAPATH, NULL);
        }
        if (req->client_cert) {
            SETOPT(CURLOPT_SSLCERT, req->client_cert);
            SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        }
        if (req->client_cert && req->client_key) {
            SETOPT(CURLOPT_SSLKEY, req->client_key);
            SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        }
        str_keep(&x->cfg_ca, req->ca_file);
        str_keep(&x->cfg_cert, req->client_cert);
        str_keep(&x->cfg_key, req->client_key);
        if (rc != CURLE_OK)
            return rc; /* plain_get is 0: the next request starts from a reset */
        x->configured = 1;
        x->cfg_timeout = x->cfg_ctimeout = x->cfg_pipewait = -1;
    }
    if (x->cfg_timeout != timeout) {
        SETOPT(CURLOPT_TIMEOUT_MS, timeout);
        x->cfg_timeout = timeout;
    }
    if (x->cfg_ctimeout != ctimeout) {
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
        x->cfg_ctimeout = ctimeout;
    }
    if (x->cfg_pipewait != pipewait) {
        SETOPT(CURLOPT_PIPEWAIT, pipewait);
        x->cfg_pipewait = pipewait;
    }
    SETOPT(CURLOPT_URL, req->url);
    if (!headers_same(x->headers, req)) {
        struct curl_slist *old = x->headers;
        x->headers = NULL;
        for (size_t i = 0; i < req->nheaders && rc == CURLE_OK; i++) {
            struct curl_slist *l = curl_slist_append(x->headers, req->headers[i]);
            if (!l)
                rc = CURLE_OUT_OF_MEMORY;
            else
                x->headers = l;
        }
        SETOPT(CURLOPT_HTTPHEADER, x->headers);
        curl_slist_free_all(old);
    }
    if (x->plain_get) {
        /* a GET like the last one: nothing else changes */
    } else if (req->body) {
        if (req->body_len > x->reqbody_cap) {
            free(x->reqbody);
            x->reqbody = ef_malloc(req->body_len);
            x->reqbody_cap = req->body_len;
        }
        memcpy(x->reqbody, req->body, req->body_len);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_POSTFIELDS, x->reqbody ? x->reqbody : "");
        if (strcmp(method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    } else if (get) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SETOPT
    /* a handle left half-configured starts from a reset next time */
    x->plain_get = rc == CURLE_OK && get;
    if (rc != CURLE_OK)
        x->cfg_timeout = x->cfg_ctimeout = x->cfg_pipewait = -1;
    return rc;
}

/* ---- Public API ---- */

/* Creates the client on loop; *out belongs to the caller until
 * ef_http_close().  Returns 0, UV_EIO when curl cannot start, or a libuv error. */
int ef_http_create(ef_http_t **out, uv_loop_t *loop, const ef_http_opts_t *opts) {
    ef_http_opts_t none = {0};
    ef_http_t *h = NULL;
    CURLMcode mc = CURLM_OK;
    int rc;

    if (!out || !loop)
        return UV_EINVAL;
    *out = NULL;
    if (!opts)
        opts = &none;
    uv_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        ef_error("http: curl_global_init: %s", curl_easy_strerror(global_rc));
        return UV_EIO;
    }
    h = ef_calloc(1, sizeof(*h));
    h->loop = loop;
    h->user_agent = ef_strdup(opts->user_agent ? opts->user_agent : "enrichfarm/" EF_VERSION);
    h->multi = curl_multi_init();
    if (!h->multi) {
        rc = UV_EIO;
        goto err;
    }
#define MSETOPT(opt, val)                                                                      \
    do {                                                                                       \
        if (mc == CURLM_OK)                                                                    \
            mc = curl_multi_setopt(h->multi, opt, val);                                        \
    } while (0)
    MSETOPT(CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    MSETOPT(CURLMOPT_SOCKETDATA, h);
    MSETOPT(CURLMOPT_TIMERFUNCTION, on_curl_timer);
    MSETOPT(CURLMOPT_TIMERDATA, h);
    if (opts->max_total_connections > 0)
        MSETOPT(CURLMOPT_MAX_TOTAL_CONNECTIONS, opts->max_total_connections);
    if (opts->max_host_connections > 0)
        MSETOPT(CURLMOPT_MAX_HOST_CONNECTIONS, opts->max_host_connections);
    if (opts->max_connects > 0)
        MSETOPT(CURLMOPT_MAXCONNECTS, opts->max_connects);
#undef MSETOPT
    if (mc != CURLM_OK) {
        ef_error("http: curl_multi_setopt: %s", curl_multi_strerror(mc));
        rc = UV_EINVAL;
        goto err;
    }
    rc = uv_timer_init(loop, &h->timer);
    if (rc < 0)
        goto err;
    h->timer.data = h;
    h->nhandles = 1;
    *out = h;
    return 0;

err:
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h->user_agent);
    free(h);
    return rc;
}

/* Starts one transfer.  Returns 0 (the callback will fire exactly once, from
 * the loop), UV_EINVAL for a missing URL or an option curl refuses,
 * UV_ECANCELED once the client is closing, UV_EIO when curl fails. */
int ef_http_request(ef_http_t *h, const ef_http_req_t *req, ef_http_cb cb, void *arg) {
    ef_http_xfer_t *x;
    CURLcode rc;
    CURLMcode mc;

    if (!h || !req || !req->url || !cb)
        return UV_EINVAL;
    if (h->closed)
        return UV_ECANCELED;
    x = xfer_get(h);
    if (!x)
        return UV_EIO;
    x->cb = cb;
    x->arg = arg;
    x->len = 0;
    x->max_body = req->max_body > 0 ? req->max_body : EF_HTTP_MAX_BODY_DEFAULT;
    x->head = req->method && strcmp(req->method, "HEAD") == 0;
    x->too_big = 0;
    x->ra_secs = x->ra_date = x->date = -1;
    x->rl_limit = x->rl_remaining = x->rl_reset = x->rl_window = -1;
    x->body_started = 0;
    x->hdr_bytes = 0;
    x->encoding[0] = '\0';
    x->why[0] = '\0';
    x->has_ctype = 0;
    x->errbuf[0] = '\0';
    rc = xfer_setup(x, req);
    if (rc != CURLE_OK) {
        ef_debug("http: request rejected: %s", curl_easy_strerror(rc));
        xfer_recycle(x);
        return UV_EINVAL;
    }
    mc = curl_multi_add_handle(h->multi, x->easy);
    if (mc != CURLM_OK) {
        ef_warn("http: curl_multi_add_handle: %s", curl_multi_strerror(mc));
        xfer_recycle(x);
        return UV_EIO;
    }
    LIST_PUSH(h->active, x);
    h->inflight++;
    return 0;
}

size_t ef_http_inflight(const ef_http_t *h) { return h ? h->inflight : 0; }

/* Aborts every transfer (each callback fires with EF_HTTP_E_ABORTED), stops
 * watching every socket, cleans up curl, and closes the timer; h is freed and
 * done runs from the last close callback. */
void ef_http_close(ef_http_t *h, void (*done)(void *arg), void *arg) {
    ef_http_xfer_t *x;

    if (!h || h->closed)
        return;
    h->closed = 1;
    h->done = done;
    h->done_arg = arg;
    while ((x = h->active) != NULL) {
        LIST_UNLINK(h->active, x);
        h->inflight--;
        if (curl_multi_remove_handle(h->multi, x->easy) != CURLM_OK)
            ef_warn("http: curl_multi_remove_handle failed");
        xfer_finish(x, CURLE_ABORTED_BY_CALLBACK, EF_HTTP_E_ABORTED, "aborted: client closed");
        xfer_destroy(x);
    }
    while ((x = h->idle) != NULL) {
        h->idle = x->next;
        xfer_destroy(x);
    }
    h->nidle = 0;
    while (h->socks)
        sock_close(h->socks);
    /* The poll handles are stopped; curl may now close its sockets without
     * telling us. */
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, NULL) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, NULL) != CURLM_OK)
        ef_warn("http: curl_multi_setopt failed at close");
    if (curl_multi_cleanup(h->multi) != CURLM_OK)
        ef_warn("http: curl_multi_cleanup failed");
    h->multi = NULL;
    uv_close((uv_handle_t *)&h->timer, on_timer_close);
}

/* Percent-encodes s into buf (RFC 3986: A-Z a-z 0-9 - . _ ~ pass, every other
 * byte becomes %XX in upper case) and NUL-terminates it.  Returns the length
 * without the NUL, or -1 when buf cannot hold the result and the NUL. */
long ef_http_pct_encode(const char *s, size_t len, char *buf, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            if (cap - o < 2)
                return -1;
            buf[o++] = (char)c;
        } else {
            if (cap - o < 4)
                return -1;
            buf[o++] = '%';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    if (cap - o < 1)
        return -1;
    buf[o] = '\0';
    return o > LONG_MAX ? -1 : (long)o;
}
