// SPDX-License-Identifier: MIT
/*
 * Unit tests of the TLS pump (lib/ef_tls.c) against an in-process OpenSSL
 * server on memory BIOs, with a CA and certificates made here.
 *
 * A session carries a request and a reply and must deliver both intact
 * whatever the slicing of the ciphertext in both directions: with 64-byte
 * messages, every transfer cut once at every offset up to past the largest
 * handshake flight (so every byte of every record is a cut point once);
 * with 2 and 3 kB, every stream cut into pieces of each size from 1 to 64
 * bytes; with 20 and 30 kB (several records), pieces around the record
 * size.  Then the
 * failures: an unknown CA, a wrong name, a server that wants a client
 * certificate (alert) or drops the connection after the handshake, an end
 * of stream in the handshake, a close_notify, a server that is not TLS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ef_tls.h"

/* Under valgrind (tests/integration/test_valgrind_units.sh), where a
 * handshake costs a hundred times more, the cut-at-every-offset loop takes
 * every 29th offset: memcheck looks for memory errors, the native and
 * sanitizer runs prove every cut. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define REQ_LEN 20000
#define REP_LEN 30000

static EVP_PKEY *ca_key, *srv_key, *cli_key, *other_key;
static X509 *ca_crt, *srv_crt, *cli_crt, *other_crt;
static char ca_path[64], other_path[64], cli_crt_path[64], cli_key_path[64];
static char req[REQ_LEN], rep[REP_LEN];
static size_t req_len = REQ_LEN, rep_len = REP_LEN; /* of this session */

/* ---- Certificates ---- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
    X509V3_CTX v;
    X509_EXTENSION *e;
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

/* A certificate for key named cn, signed by issuer (self-signed when NULL). */
static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey,
                      const char *san) {
    static long serial = 1;
    X509 *x = X509_new();
    X509_NAME *n = X509_get_subject_name(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    add_ext(x, issuer ? issuer : x, NID_basic_constraints,
            issuer ? "CA:FALSE" : "critical,CA:TRUE");
    add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
    if (!issuer)
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san)
        add_ext(x, issuer, NID_subject_alt_name, san);
    assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(char *path, const char *tag, X509 *x, EVP_PKEY *k) {
    int fd;
    FILE *f;
    snprintf(path, 64, "/tmp/ef_tls_%s.XXXXXX", tag);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    if (x)
        PEM_write_X509(f, x);
    if (k)
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static int setup(void **st) {
    (void)st;
    ca_key = EVP_EC_gen("P-256");
    srv_key = EVP_EC_gen("P-256");
    cli_key = EVP_EC_gen("P-256");
    other_key = EVP_EC_gen("P-256");
    ca_crt = cert_new(ca_key, "test ca", NULL, NULL, NULL);
    other_crt = cert_new(other_key, "other ca", NULL, NULL, NULL);
    srv_crt = cert_new(srv_key, "localhost", ca_crt, ca_key, "DNS:localhost,IP:127.0.0.1");
    cli_crt = cert_new(cli_key, "farm", ca_crt, ca_key, NULL);
    write_pem(ca_path, "ca", ca_crt, NULL);
    write_pem(other_path, "other", other_crt, NULL);
    write_pem(cli_crt_path, "clicrt", cli_crt, NULL);
    write_pem(cli_key_path, "clikey", NULL, cli_key);
    for (size_t i = 0; i < sizeof req; i++)
        req[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof rep; i++)
        rep[i] = (char)(i * 7 % 251);
    return 0;
}

static int teardown(void **st) {
    (void)st;
    unlink(ca_path), unlink(other_path), unlink(cli_crt_path), unlink(cli_key_path);
    X509_free(ca_crt), X509_free(srv_crt), X509_free(cli_crt), X509_free(other_crt);
    EVP_PKEY_free(ca_key), EVP_PKEY_free(srv_key), EVP_PKEY_free(cli_key), EVP_PKEY_free(other_key);
    return 0;
}

/* ---- The in-memory server ---- */

typedef enum { SRV_ECHO = 0, SRV_NEED_CERT, SRV_DROP_AFTER_HS, SRV_CLOSE_NOTIFY } srv_mode_t;

typedef struct {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rb, *wb;
    srv_mode_t mode;
    char got[REQ_LEN];
    size_t got_len, sent;
    int dropped;
} srv_t;

static void srv_init(srv_t *s, srv_mode_t mode) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(s->ctx, srv_crt);
    SSL_CTX_use_PrivateKey(s->ctx, srv_key);
    if (mode == SRV_NEED_CERT) {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(s->ctx), ca_crt);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    s->ssl = SSL_new(s->ctx);
    s->rb = BIO_new(BIO_s_mem());
    s->wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(s->rb, -1);
    SSL_set_bio(s->ssl, s->rb, s->wb);
    SSL_set_accept_state(s->ssl);
}

static void srv_free(srv_t *s) {
    SSL_free(s->ssl);
    SSL_CTX_free(s->ctx);
}

/* Runs the server on what it has: handshake, read the request, write the
 * reply once the request is complete. */
static void srv_step(srv_t *s) {
    int n;
    if (s->dropped)
        return;
    if (!SSL_is_init_finished(s->ssl)) {
        if (SSL_do_handshake(s->ssl) != 1) {
            ERR_clear_error();
            return;
        }
        if (s->mode == SRV_DROP_AFTER_HS) {
            s->dropped = 1;
            return;
        }
        if (s->mode == SRV_CLOSE_NOTIFY) {
            SSL_shutdown(s->ssl);
            s->dropped = 1;
            return;
        }
    }
    while (s->got_len < req_len &&
           (n = SSL_read(s->ssl, s->got + s->got_len, (int)(req_len - s->got_len))) > 0)
        s->got_len += (size_t)n;
    ERR_clear_error();
    while (s->got_len == req_len && s->sent < rep_len &&
           (n = SSL_write(s->ssl, rep + s->sent, (int)(rep_len - s->sent))) > 0)
        s->sent += (size_t)n;
    ERR_clear_error();
}

/* ---- A session, sliced ---- */

typedef struct {
    ef_tls_t *c;
    srv_t s;
    char got[REP_LEN];
    size_t got_len, sent;
    size_t max_flight; /* the largest single transfer seen */
} sess_t;

static void cli_step(sess_t *x) {
    long n;
    while (x->got_len < rep_len &&
           (n = ef_tls_plain_out(x->c, x->got + x->got_len, rep_len - x->got_len)) > 0)
        x->got_len += (size_t)n;
    while (x->sent < req_len && (n = ef_tls_plain_in(x->c, req + x->sent, req_len - x->sent)) > 0)
        x->sent += (size_t)n;
}

/* Delivers buf[0..n) in pieces: cut once at `once` (when piece is 0), or
 * in pieces of `piece` bytes; after each piece the receiver runs. */
static void deliver(sess_t *x, int to_client, const char *buf, size_t n, size_t once,
                    size_t piece) {
    size_t off = 0;
    if (n > x->max_flight)
        x->max_flight = n;
    while (off < n) {
        size_t len = piece ? piece : (off == 0 && once > 0 && once < n ? once : n - off);
        if (len > n - off)
            len = n - off;
        if (to_client) {
            ef_tls_net_in(x->c, buf + off, len);
            cli_step(x);
        } else {
            BIO_write(x->s.rb, buf + off, (int)len);
            srv_step(&x->s);
        }
        off += len;
    }
}

/* Moves bytes both ways until nothing moves. */
static void run(sess_t *x, size_t once, size_t piece) {
    static char buf[1 << 17];
    for (int turn = 0; turn < 10000; turn++) {
        size_t n = 0;
        int moved = 0;
        while (n < sizeof buf && ef_tls_net_pending(x->c) > 0)
            n += ef_tls_net_out(x->c, buf + n, sizeof buf - n);
        if (n) {
            deliver(x, 0, buf, n, once, piece);
            moved = 1;
        }
        srv_step(&x->s);
        n = 0;
        if (BIO_ctrl_pending(x->s.wb) > 0) {
            int m = BIO_read(x->s.wb, buf, (int)sizeof buf);
            n = m > 0 ? (size_t)m : 0;
        }
        if (n) {
            deliver(x, 1, buf, n, once, piece);
            moved = 1;
        }
        cli_step(x);
        if (!moved && ef_tls_net_pending(x->c) == 0)
            return;
    }
    fail_msg("the session did not settle");
}

static SSL_CTX *client_ctx(const char *cacert, int with_cert) {
    ef_redis_url_t u;
    char err[EF_ERR_LEN];
    SSL_CTX *ctx;
    memset(&u, 0, sizeof u);
    u.tls = 1;
    snprintf(u.tls_cacert, sizeof u.tls_cacert, "%s", cacert);
    if (with_cert) {
        snprintf(u.tls_cert, sizeof u.tls_cert, "%s", cli_crt_path);
        snprintf(u.tls_key, sizeof u.tls_key, "%s", cli_key_path);
    }
    ctx = ef_tls_ctx_create(&u, err);
    if (!ctx)
        fail_msg("%s", err);
    return ctx;
}

static void sess_start(sess_t *x, SSL_CTX *ctx, const char *name, srv_mode_t mode) {
    char err[EF_ERR_LEN];
    memset(x, 0, sizeof *x);
    srv_init(&x->s, mode);
    x->c = ef_tls_create(ctx, name, err);
    if (!x->c)
        fail_msg("%s", err);
    assert_int_equal(ef_tls_state(x->c), EF_TLS_HANDSHAKE);
    assert_true(ef_tls_net_pending(x->c) > 0); /* the ClientHello */
}

static void sess_end(sess_t *x) {
    ef_tls_free(x->c);
    srv_free(&x->s);
}

/* One whole exchange, sliced; returns the largest flight. */
static size_t exchange(SSL_CTX *ctx, const char *name, size_t once, size_t piece) {
    sess_t x;
    size_t flight;
    sess_start(&x, ctx, name, SRV_ECHO);
    run(&x, once, piece);
    if (ef_tls_state(x.c) != EF_TLS_OPEN || x.got_len != rep_len || x.s.got_len != req_len ||
        memcmp(x.got, rep, rep_len) != 0 || memcmp(x.s.got, req, req_len) != 0)
        fail_msg("once=%zu piece=%zu: state %d, got %zu of the reply, server got %zu (%s)", once,
                 piece, ef_tls_state(x.c), x.got_len, x.s.got_len, ef_tls_error(x.c));
    flight = x.max_flight;
    sess_end(&x);
    return flight;
}

/* ---- Tests ---- */

static void test_every_cut(void **st) {
    SSL_CTX *ctx = client_ctx(ca_path, 0);
    size_t hs = 0, flight;
    (void)st;
    /* the largest handshake flight: a session with the reply cut away */
    {
        sess_t x;
        sess_start(&x, ctx, "localhost", SRV_ECHO);
        for (int i = 0; i < 6 && ef_tls_state(x.c) == EF_TLS_HANDSHAKE; i++) {
            char buf[8192];
            size_t n = ef_tls_net_out(x.c, buf, sizeof buf);
            int m;
            BIO_write(x.s.rb, buf, (int)n);
            srv_step(&x.s);
            m = BIO_read(x.s.wb, buf, (int)sizeof buf);
            if (m > 0) {
                if ((size_t)m > hs)
                    hs = (size_t)m;
                ef_tls_net_in(x.c, buf, (size_t)m);
            }
        }
        assert_int_equal(ef_tls_state(x.c), EF_TLS_OPEN);
        sess_end(&x);
    }
    assert_true(hs > 200);
    /* short messages: the cuts then also cover every byte of their records */
    req_len = rep_len = 64;
    for (size_t once = 0; once <= hs + 64; once += RUNNING_ON_VALGRIND ? 29 : 1) {
        flight = exchange(ctx, "localhost", once, 0);
        assert_true(flight > 0);
    }
    req_len = 2000, rep_len = 3000;
    for (size_t piece = 1; piece <= 64; piece++)
        exchange(ctx, "localhost", 0, piece);
    req_len = REQ_LEN, rep_len = REP_LEN;
    static const size_t sizes[] = {127, 1000, 4096, 16383, 16384, 16385, 16401, 16422, 40000};
    for (size_t i = 0; i < EF_ARRAY_LEN(sizes); i++)
        exchange(ctx, "localhost", 0, sizes[i]);
    exchange(ctx, "127.0.0.1", 0, 0); /* an IP is checked against the IP entries */
    SSL_CTX_free(ctx);
}

/* Plaintext waits until the session is open. */
static void test_no_plaintext_before_open(void **st) {
    SSL_CTX *ctx = client_ctx(ca_path, 0);
    sess_t x;
    char buf[16];
    (void)st;
    sess_start(&x, ctx, "localhost", SRV_ECHO);
    assert_int_equal(ef_tls_plain_in(x.c, "PING\r\n", 6), 0);
    assert_int_equal(ef_tls_plain_out(x.c, buf, sizeof buf), 0);
    sess_end(&x);
    SSL_CTX_free(ctx);
}

/* Runs a session that must fail; returns it for the checks (caller ends). */
static void expect_failure(const char *cacert, int with_cert, const char *name, srv_mode_t mode,
                           ef_tls_state_t state, int refused, const char *says) {
    SSL_CTX *ctx = client_ctx(cacert, with_cert);
    sess_t x;
    sess_start(&x, ctx, name, mode);
    run(&x, 0, 0);
    if (mode == SRV_DROP_AFTER_HS)
        ef_tls_net_error(x.c, "Connection reset by peer");
    if (ef_tls_state(x.c) != state || ef_tls_refused(x.c) != refused ||
        !strstr(ef_tls_error(x.c), says))
        fail_msg("state %d refused %d '%s', want %d %d '%s'", ef_tls_state(x.c),
                 ef_tls_refused(x.c), ef_tls_error(x.c), state, refused, says);
    assert_int_equal(strncmp(ef_tls_error(x.c), "TLS", 3), 0);
    assert_int_equal(ef_tls_plain_in(x.c, "x", 1), -1);
    sess_end(&x);
    SSL_CTX_free(ctx);
}

static void test_failures(void **st) {
    (void)st;
    expect_failure(other_path, 0, "localhost", SRV_ECHO, EF_TLS_FAILED, 1,
                   "certificate verify failed for 'localhost'");
    expect_failure(ca_path, 0, "other.name", SRV_ECHO, EF_TLS_FAILED, 1, "hostname mismatch");
    expect_failure(ca_path, 0, "127.0.0.2", SRV_ECHO, EF_TLS_FAILED, 1, "IP address mismatch");
    expect_failure(ca_path, 0, "localhost", SRV_NEED_CERT, EF_TLS_FAILED, 1,
                   "requires a client certificate");
    expect_failure(ca_path, 0, "localhost", SRV_DROP_AFTER_HS, EF_TLS_FAILED, 1,
                   "client certificate (cert= and key=)");
    expect_failure(ca_path, 0, "localhost", SRV_CLOSE_NOTIFY, EF_TLS_CLOSED, 0,
                   "connection closed by the server");
    /* the same drop seen as an end of stream, and after a first reply a
     * drop is a lost connection again */
    {
        SSL_CTX *ctx = client_ctx(ca_path, 0);
        sess_t x;
        char buf[16];
        sess_start(&x, ctx, "localhost", SRV_DROP_AFTER_HS);
        run(&x, 0, 0);
        ef_tls_net_eof(x.c);
        assert_int_equal(ef_tls_plain_out(x.c, buf, sizeof buf), -1);
        assert_int_equal(ef_tls_refused(x.c), 1);
        assert_non_null(strstr(ef_tls_error(x.c), "right after the handshake (closed)"));
        sess_end(&x);
        sess_start(&x, ctx, "localhost", SRV_ECHO);
        run(&x, 0, 0);
        assert_int_equal(x.got_len, sizeof rep);
        ef_tls_net_error(x.c, "Connection reset by peer");
        assert_int_equal(ef_tls_state(x.c), EF_TLS_CLOSED);
        assert_int_equal(ef_tls_refused(x.c), 0);
        assert_string_equal(ef_tls_error(x.c),
                            "TLS: connection to the server lost: Connection reset by peer");
        sess_end(&x);
        SSL_CTX_free(ctx);
    }
    /* with the client certificate, the server that wants one is content */
    {
        SSL_CTX *ctx = client_ctx(ca_path, 1);
        sess_t x;
        sess_start(&x, ctx, "localhost", SRV_NEED_CERT);
        run(&x, 0, 0);
        assert_int_equal(ef_tls_state(x.c), EF_TLS_OPEN);
        assert_int_equal(x.got_len, sizeof rep);
        sess_end(&x);
        SSL_CTX_free(ctx);
    }
}

/* The end of the stream in the handshake is a lost connection (retry), and
 * an answer that is not TLS says so (refused). */
static void test_eof_and_not_tls(void **st) {
    SSL_CTX *ctx = client_ctx(ca_path, 0);
    sess_t x;
    char buf[4096];
    (void)st;
    sess_start(&x, ctx, "localhost", SRV_ECHO);
    ef_tls_net_out(x.c, buf, sizeof buf);
    ef_tls_net_in(x.c, "\x16\x03\x03", 3); /* a record header, cut */
    ef_tls_net_eof(x.c);
    assert_int_equal(ef_tls_state(x.c), EF_TLS_CLOSED);
    assert_int_equal(ef_tls_refused(x.c), 0);
    assert_non_null(strstr(ef_tls_error(x.c), "during the handshake"));
    sess_end(&x);

    sess_start(&x, ctx, "localhost", SRV_ECHO);
    ef_tls_net_in(x.c, "-ERR Protocol error: unbalanced quotes\r\n", 40);
    assert_int_equal(ef_tls_state(x.c), EF_TLS_FAILED);
    assert_int_equal(ef_tls_refused(x.c), 1);
    assert_non_null(strstr(ef_tls_error(x.c), "does not speak TLS"));
    sess_end(&x);
    SSL_CTX_free(ctx);
}

/* Files that cannot be used are named. */
static void test_ctx_errors(void **st) {
    ef_redis_url_t u;
    char err[EF_ERR_LEN];
    (void)st;
    memset(&u, 0, sizeof u);
    u.tls = 1;
    snprintf(u.tls_cacert, sizeof u.tls_cacert, "/nonexistent/ca.pem");
    assert_null(ef_tls_ctx_create(&u, err));
    assert_non_null(strstr(err, "cannot read cacert file '/nonexistent/ca.pem'"));
    snprintf(u.tls_cacert, sizeof u.tls_cacert, "%s", ca_path);
    snprintf(u.tls_cert, sizeof u.tls_cert, "%s", cli_crt_path);
    snprintf(u.tls_key, sizeof u.tls_key, "%s", ca_path); /* a certificate, not a key */
    assert_null(ef_tls_ctx_create(&u, err));
    assert_non_null(strstr(err, "cannot load key file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cut),  cmocka_unit_test(test_no_plaintext_before_open),
        cmocka_unit_test(test_failures),   cmocka_unit_test(test_eof_and_not_tls),
        cmocka_unit_test(test_ctx_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
