// SPDX-License-Identifier: MIT
/*
 * The TLS pump (design in ef_tls.h): one OpenSSL client session between two
 * memory BIOs.  rbio holds ciphertext from the server until SSL reads it,
 * wbio the ciphertext SSL wrote until the transport takes it.  Nothing here
 * touches a file descriptor; the transports (ef_tls_uv.c, ef_tls_sync.c)
 * move the bytes.
 *
 * OpenSSL's error queue is per thread: every call clears it first and a
 * failure drains it into t->err, so a stale error never names the wrong
 * cause.
 */
#include "ef_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ef_common.h"

struct ef_tls_s {
    SSL *ssl;
    BIO *rbio; /* server -> SSL, owned by ssl */
    BIO *wbio; /* SSL -> server, owned by ssl */
    ef_tls_state_t state;
    int eof;     /* the transport saw the server's end of stream */
    int refused; /* FAILED for a reason retrying will not fix */
    int heard;   /* the server has sent plaintext */
    char name[EF_REDIS_HOST_LEN];
    char err[EF_ERR_LEN];
};

/* The first queued OpenSSL reason (and the queue emptied), or dflt. */
static const char *ssl_reason(unsigned long *code, const char *dflt) {
    unsigned long e = ERR_get_error(), more;
    const char *why;
    while ((more = ERR_get_error()) != 0)
        (void)more;
    *code = e;
    why = e ? ERR_reason_error_string(e) : NULL;
    return why ? why : dflt;
}

/* ---- The client context ---- */

static int load_file(SSL_CTX *ctx, const char *what, const char *path, char *err) {
    unsigned long code;
    int ok;
    if (access(path, R_OK) != 0) {
        ef_seterr(err, "TLS: cannot read %s file '%s': %s", what, path, strerror(errno));
        return -1;
    }
    ERR_clear_error();
    if (strcmp(what, "cacert") == 0)
        ok = SSL_CTX_load_verify_locations(ctx, path, NULL);
    else if (strcmp(what, "cert") == 0)
        ok = SSL_CTX_use_certificate_chain_file(ctx, path);
    else
        ok = SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
    if (ok != 1) {
        ef_seterr(err, "TLS: cannot load %s file '%s': %s", what, path,
                  ssl_reason(&code, "not PEM"));
        return -1;
    }
    return 0;
}

SSL_CTX *ef_tls_ctx_create(const ef_redis_url_t *u, char *err) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    unsigned long code;
    if (!ctx) {
        ef_seterr(err, "TLS: cannot create a context: %s", ssl_reason(&code, "out of memory"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (u->tls_cacert[0]) {
        if (load_file(ctx, "cacert", u->tls_cacert, err) != 0)
            goto err;
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ef_seterr(err, "TLS: cannot load the system's CA store: %s",
                  ssl_reason(&code, "unknown error"));
        goto err;
    }
    if (u->tls_cert[0]) {
        if (load_file(ctx, "cert", u->tls_cert, err) != 0 ||
            load_file(ctx, "key", u->tls_key, err) != 0)
            goto err;
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ef_seterr(err, "TLS: key '%s' does not match cert '%s'", u->tls_key, u->tls_cert);
            goto err;
        }
    }
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- The session ---- */

/* The connection ended (why: "closed", or a socket error) outside TLS. */
static void lost(ef_tls_t *t, const char *why) {
    if (t->state == EF_TLS_OPEN && !t->heard) {
        snprintf(t->err, sizeof t->err,
                 "TLS: the server dropped the connection right after the handshake (%s): it "
                 "wants a client certificate (cert= and key=) or refused the one given",
                 why);
        t->refused = 1;
        t->state = EF_TLS_FAILED;
        return;
    }
    const char *during = t->state == EF_TLS_HANDSHAKE ? " during the handshake" : "";
    if (strcmp(why, "closed") == 0)
        snprintf(t->err, sizeof t->err, "TLS: connection closed by the server%s", during);
    else
        snprintf(t->err, sizeof t->err, "TLS: connection to the server lost%s: %s", during, why);
    t->state = EF_TLS_CLOSED;
}

/* Classifies the answer rc of an SSL call: 0 when it only wants more bytes
 * (or succeeded), -1 when the session is now CLOSED or FAILED. */
static int settle(ef_tls_t *t, int rc) {
    int e = SSL_get_error(t->ssl, rc);
    const char *during = t->state == EF_TLS_HANDSHAKE ? " during the handshake" : "";
    unsigned long code = 0;
    const char *why;
    long v;

    if (rc > 0 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    why = ssl_reason(&code, "unknown error");
    if (e == SSL_ERROR_ZERO_RETURN) { /* a close_notify: a goodbye, not a refusal */
        snprintf(t->err, sizeof t->err, "TLS: connection closed by the server");
        t->state = EF_TLS_CLOSED;
        return -1;
    }
    if (t->eof &&
        (e == SSL_ERROR_SYSCALL || ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
        lost(t, "closed");
        return -1;
    }
    t->refused = 1;
    v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK)
        snprintf(t->err, sizeof t->err, "TLS: certificate verify failed for '%s': %s", t->name,
                 X509_verify_cert_error_string(v));
    else if (ERR_GET_REASON(code) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
        snprintf(t->err, sizeof t->err,
                 "TLS: the server requires a client certificate (%s): give cert= and key=", why);
    else if (ERR_GET_REASON(code) == SSL_R_WRONG_VERSION_NUMBER ||
             ERR_GET_REASON(code) == SSL_R_PACKET_LENGTH_TOO_LONG)
        snprintf(t->err, sizeof t->err,
                 "TLS: the server does not speak TLS here (%s): is it a TLS port?", why);
    else
        snprintf(t->err, sizeof t->err, "TLS error%s with '%s': %s", during, t->name, why);
    t->state = EF_TLS_FAILED;
    return -1;
}

/* Drives the handshake while it is not done. */
static int advance(ef_tls_t *t) {
    int rc;
    if (t->state != EF_TLS_HANDSHAKE)
        return t->state == EF_TLS_OPEN ? 0 : -1;
    ERR_clear_error();
    rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->state = EF_TLS_OPEN;
        return 0;
    }
    return settle(t, rc);
}

ef_tls_t *ef_tls_create(SSL_CTX *ctx, const char *name, char *err) {
    ef_tls_t *t = ef_calloc(1, sizeof *t);
    unsigned char ip[16];
    unsigned long code;
    int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;

    snprintf(t->name, sizeof t->name, "%s", name);
    ERR_clear_error();
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        ef_seterr(err, "TLS: cannot create a session: %s", ssl_reason(&code, "out of memory"));
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        goto err;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty is "wait", until ef_tls_net_eof() */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_connect_state(t->ssl);
    SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1
              : (SSL_set_tlsext_host_name(t->ssl, name) != 1 || SSL_set1_host(t->ssl, name) != 1)) {
        ef_seterr(err, "TLS: cannot verify the server as '%.200s': %s", name,
                  ssl_reason(&code, "bad name"));
        goto err;
    }
    advance(t); /* queues the ClientHello */
    return t;
err:
    ef_tls_free(t);
    return NULL;
}

void ef_tls_free(ef_tls_t *t) {
    if (!t)
        return;
    SSL_free(t->ssl); /* and both BIOs */
    free(t);
}

ef_tls_state_t ef_tls_state(const ef_tls_t *t) {
    return t->state;
}

const char *ef_tls_error(const ef_tls_t *t) {
    return t->err[0] ? t->err : "TLS: no error";
}

int ef_tls_refused(const ef_tls_t *t) {
    return t->state == EF_TLS_FAILED && t->refused;
}

/* ---- Bytes in and out ---- */

int ef_tls_net_in(ef_tls_t *t, const void *buf, size_t n) {
    if (n > 0 && BIO_write(t->rbio, buf, (int)n) != (int)n) {
        snprintf(t->err, sizeof t->err, "TLS: out of memory");
        t->state = EF_TLS_FAILED;
        return -1;
    }
    return advance(t);
}

void ef_tls_net_error(ef_tls_t *t, const char *why) {
    if (t->state < EF_TLS_CLOSED)
        lost(t, why);
}

void ef_tls_net_eof(ef_tls_t *t) {
    t->eof = 1;
    BIO_set_mem_eof_return(t->rbio, 0);
    advance(t);
}

size_t ef_tls_net_pending(const ef_tls_t *t) {
    return BIO_ctrl_pending(t->wbio);
}

size_t ef_tls_net_out(ef_tls_t *t, void *buf, size_t cap) {
    int n;
    if (cap == 0 || ef_tls_net_pending(t) == 0)
        return 0;
    n = BIO_read(t->wbio, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    return n > 0 ? (size_t)n : 0;
}

long ef_tls_plain_in(ef_tls_t *t, const void *buf, size_t n) {
    int rc;
    if (advance(t) != 0)
        return -1;
    if (t->state != EF_TLS_OPEN || n == 0)
        return 0;
    ERR_clear_error();
    rc = SSL_write(t->ssl, buf, n > EF_TLS_RECORD_MAX ? EF_TLS_RECORD_MAX : (int)n);
    if (rc > 0)
        return rc;
    return settle(t, rc) == 0 ? 0 : -1;
}

long ef_tls_plain_out(ef_tls_t *t, void *buf, size_t cap) {
    int rc;
    if (advance(t) != 0)
        return -1;
    if (t->state != EF_TLS_OPEN || cap == 0)
        return 0;
    ERR_clear_error();
    rc = SSL_read(t->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (rc > 0) {
        t->heard = 1;
        return rc;
    }
    return settle(t, rc) == 0 ? 0 : -1;
}

void ef_tls_shutdown(ef_tls_t *t) {
    if (t->state != EF_TLS_OPEN)
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}
