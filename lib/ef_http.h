// SPDX-License-Identifier: MIT
/*
 * The HTTP client: libcurl's multi interface driven by a libuv loop.
 *
 * Shape of curl's multi-uv example with no globals: one ef_http_t per loop
 * holds the CURLM, one uv_timer_t for curl's timeout (0 ms becomes 1 ms)
 * and a context per socket with its uv_poll_t (poll errors are passed to
 * curl as CURL_CSELECT_ERR).  curl_multi_info_read is drained after every
 * curl_multi_socket_action and each transfer's result is checked.
 * Connections are kept alive and reused; HTTP/2 is used where the server
 * offers it (over TLS), and then the requests to one host share one
 * connection as long as its streams suffice (the server's limit, often 100
 * or 128; curl's own is 100): a request to an https:// host waits for the
 * first connection's handshake rather than opening its own.  Redirects are
 * not followed (a 3xx is the caller's to judge).
 *
 * TLS: the peer's certificate and name are always verified (no option turns
 * that off), against the system's CAs or against the request's ca_file
 * only; client_cert and client_key give a client certificate for mutual
 * TLS.  A certificate problem ends the transfer with EF_HTTP_E_TLS and an
 * errmsg that names the cause (not retried by the worker); a failed
 * handshake is EF_HTTP_E_CONNECT and a TLS alert before any answer (a client
 * certificate required) EF_HTTP_E_RESET, each with OpenSSL's reason in
 * errmsg.  All of them are logged (at most one line every EF_HTTP_TLS_LOG_MS
 * per client, with the peer's address, never the URL).
 * Proxies come from the standard environment variables (http_proxy,
 * https_proxy, all_proxy, no_proxy), which libcurl reads for every
 * transfer; nothing here overrides them.
 *
 * Callbacks: ef_http_request() either returns an error and never calls back,
 * or calls back exactly once, never from inside ef_http_request().  The
 * response (body, headers) belongs to the library and is valid only while
 * the callback runs.
 */
#ifndef EF_HTTP_H
#define EF_HTTP_H

#include <stddef.h>
#include <uv.h>

typedef struct ef_http_s ef_http_t;

#define EF_HTTP_TIMEOUT_DEFAULT_MS 10000
#define EF_HTTP_MAX_BODY_DEFAULT (1u << 20) /* bytes */
#define EF_HTTP_HEADER_MAX (64u << 10)     /* bytes, all response header lines together */
#define EF_HTTP_TLS_LOG_MS 10000           /* ms between two log lines about TLS failures */

typedef struct {
    long max_total_connections; /* 0 = unlimited */
    long max_host_connections;  /* 0 = unlimited */
    long max_connects;          /* size of the kept-alive connection cache, 0 = curl's default */
    const char *user_agent;     /* NULL = "enrichfarm/VERSION" */
} ef_http_opts_t;

typedef struct {
    const char *method;           /* "GET" when NULL */
    const char *url;
    const char *const *headers;   /* "Name: value" lines */
    size_t nheaders;
    const char *body;             /* request body or NULL */
    size_t body_len;
    long timeout_ms;              /* whole transfer; 0 = EF_HTTP_TIMEOUT_DEFAULT_MS */
    long connect_timeout_ms;      /* 0 = min(timeout, 5000) */
    size_t max_body;              /* response cap; 0 = EF_HTTP_MAX_BODY_DEFAULT */
    const char *ca_file;          /* PEM CAs trusted for https:// instead of the system's; NULL =
                                     the system's */
    const char *client_cert;      /* PEM client certificate (mutual TLS) or NULL */
    const char *client_key;       /* PEM private key of client_cert; NULL = in client_cert */
} ef_http_req_t;

typedef enum {
    EF_HTTP_OK = 0,      /* a response arrived (any status) */
    EF_HTTP_E_TIMEOUT,   /* no complete response within timeout_ms */
    EF_HTTP_E_CONNECT,   /* could not connect (refused, DNS, unreachable) */
    EF_HTTP_E_RESET,     /* connection reset or closed mid-transfer, send/recv error */
    EF_HTTP_E_TOO_BIG,   /* response body over max_body (transfer aborted) */
    EF_HTTP_E_PROTOCOL,  /* malformed HTTP, a header over EF_HTTP_HEADER_MAX, a body in a
                            Content-Encoding nobody asked for */
    EF_HTTP_E_ABORTED,   /* ef_http_close() ended it */
    EF_HTTP_E_TLS,       /* the TLS peer's certificate failed verification, or a CA file,
                            client certificate or key could not be used (errmsg says which) */
    EF_HTTP_E_OTHER
} ef_http_err_t;

typedef struct {
    ef_http_err_t err;
    int curl_code;           /* CURLcode of the transfer */
    long status;             /* HTTP status; 0 when no response */
    const char *body;        /* NUL-terminated (may be empty, never NULL) */
    size_t body_len;
    long retry_after_ms;     /* Retry-After as ms (seconds or HTTP-date), -1 when absent; a
                                date is converted against the response's Date header, or,
                                without one, against this host's clock */
    long long retry_after_at_ms; /* a Retry-After HTTP-date with no Date header to convert it
                                against: the date itself (ms since the epoch), for the
                                caller to compare with a clock it trusts; 0 otherwise */
    /* Rate headers (X-RateLimit-Limit/-Remaining/-Reset, RateLimit-Limit/...,
     * the IETF RateLimit and RateLimit-Policy fields).  When the response
     * has none: rl_exhausted 0, the limit and window 0, rl_reset_ms -1. */
    int rl_exhausted;        /* they say no request is left (Remaining: 0) */
    long rl_reset_ms;        /* exhausted: ms until the reset, -1 unknown or a date (below) */
    long long rl_reset_at_ms;/* exhausted: the reset as a date with no Date header to read it
                                against (ms since the epoch); 0 otherwise */
    long rl_limit;           /* requests per window, 0 when not given */
    long rl_window_s;        /* the policy's window (s), 0 when not given */
    const char *content_type;/* NULL when absent */
    double total_ms;         /* time of the whole transfer */
    const char *errmsg;      /* human-readable reason when err != EF_HTTP_OK */
} ef_http_resp_t;

typedef void (*ef_http_cb)(const ef_http_resp_t *resp, void *arg);

int ef_http_create(ef_http_t **out, uv_loop_t *loop, const ef_http_opts_t *opts);
/* Starts a request; the request struct and its strings are copied.  0 or a
 * negative error (then no callback). */
int ef_http_request(ef_http_t *h, const ef_http_req_t *req, ef_http_cb cb, void *arg);
size_t ef_http_inflight(const ef_http_t *h);
/* Ends every transfer (callbacks fire with EF_HTTP_E_ABORTED), closes the
 * handles and frees; done (may be NULL) fires when all is closed.  Accepts NULL. */
void ef_http_close(ef_http_t *h, void (*done)(void *arg), void *arg);

/* Percent-encodes s (RFC 3986 unreserved characters pass) into buf; returns
 * the length written, or -1 when buf is too small. */
long ef_http_pct_encode(const char *s, size_t len, char *buf, size_t cap);

#endif
