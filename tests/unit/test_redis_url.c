// SPDX-License-Identifier: MIT
/*
 * Unit tests of the --redis URL forms beyond one node: redis+sentinel://
 * and redis+cluster://, their credentials, bounds and bad forms, and that
 * the one-node forms keep parsing as before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ef_common.h"
#include "ef_redis_url.h"

static void test_sentinel_good(void **st) {
    (void)st;
    ef_redis_url_t u;
    char err[EF_ERR_LEN] = "", red[2048];
    assert_int_equal(
        ef_redis_url_parse("redis+sentinel://10.0.0.1:26380,s2,[::1]:5000/mymaster/3", &u, err), 0);
    assert_int_equal(u.kind, EF_REDIS_URL_SENTINEL);
    assert_int_equal(u.nhosts, 3);
    assert_string_equal(u.hosts[0].host, "10.0.0.1");
    assert_int_equal(u.hosts[0].port, 26380);
    assert_string_equal(u.hosts[1].host, "s2");
    assert_int_equal(u.hosts[1].port, EF_REDIS_SENTINEL_PORT);
    assert_string_equal(u.hosts[2].host, "::1");
    assert_int_equal(u.hosts[2].port, 5000);
    assert_string_equal(u.master, "mymaster");
    assert_int_equal(u.db, 3);
    assert_string_equal(u.password, "");
    assert_string_equal(u.sentinel_password, "");

    /* data-node credentials in the userinfo, sentinel ones in the query */
    assert_int_equal(ef_redis_url_parse("redis+sentinel://farm:d%40ta@s1:1,s2:2/m.1-x?"
                                        "sentinel_user=sen&sentinel_password=s%26p",
                                        &u, err),
                     0);
    assert_string_equal(u.user, "farm");
    assert_string_equal(u.password, "d@ta");
    assert_string_equal(u.sentinel_user, "sen");
    assert_string_equal(u.sentinel_password, "s&p");
    assert_string_equal(u.master, "m.1-x");
    assert_int_equal(u.db, 0);
    ef_redis_url_redacted(&u, red, sizeof red);
    assert_null(strstr(red, "d@ta"));
    assert_null(strstr(red, "s&p"));
    assert_non_null(strstr(red, "redis+sentinel://farm:***@s1:1,s2:2/m.1-x/0"));
    assert_non_null(strstr(red, "sentinel_password=***"));

    /* password only for the sentinels; trailing slash after the master */
    assert_int_equal(ef_redis_url_parse("redis+sentinel://s1:1/m/?sentinel_password=x", &u, err),
                     0);
    assert_string_equal(u.sentinel_password, "x");
    assert_string_equal(u.password, "");
    assert_int_equal(u.nhosts, 1);
    assert_string_equal(u.host, "s1");
    assert_int_equal(u.port, 1);
}

static void test_cluster_good(void **st) {
    (void)st;
    ef_redis_url_t u;
    char err[EF_ERR_LEN] = "", red[2048];
    assert_int_equal(ef_redis_url_parse("redis+cluster://:pw@n1:7000,n2,[fe80::1]:7002", &u, err),
                     0);
    assert_int_equal(u.kind, EF_REDIS_URL_CLUSTER);
    assert_int_equal(u.nhosts, 3);
    assert_string_equal(u.hosts[1].host, "n2");
    assert_int_equal(u.hosts[1].port, 6379);
    assert_string_equal(u.hosts[2].host, "fe80::1");
    assert_string_equal(u.password, "pw");
    assert_int_equal(ef_redis_url_parse("redis+cluster://n1:7000/", &u, err), 0);
    assert_int_equal(ef_redis_url_parse("redis+cluster://n1:7000/0", &u, err), 0);
    ef_redis_url_redacted(&u, red, sizeof red);
    assert_string_equal(red, "redis+cluster://n1:7000");
    /* routed by slot: supported by every program */
    assert_int_equal(ef_redis_url_supported(&u, err), 0);
    assert_int_equal(ef_redis_url_parse("redis+sentinel://s/m", &u, err), 0);
    assert_int_equal(ef_redis_url_supported(&u, err), 0);
}

static void test_one_node_forms(void **st) {
    (void)st;
    ef_redis_url_t u;
    char err[EF_ERR_LEN] = "";
    assert_int_equal(ef_redis_url_parse("redis://127.0.0.1:6380/2", &u, err), 0);
    assert_int_equal(u.kind, EF_REDIS_URL_TCP);
    assert_int_equal(u.port, 6380);
    assert_int_equal(ef_redis_url_parse("redis://", &u, err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(ef_redis_url_parse("unix:///tmp/r.sock?db=1", &u, err), 0);
    assert_int_equal(u.kind, EF_REDIS_URL_UNIX);
    assert_int_equal(ef_redis_url_supported(&u, err), 0);
}

/* Each bad form is refused with an error that names what is wrong. */
static void test_bad_forms(void **st) {
    (void)st;
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"redis+sentinel://s1:26379", "master's name"},
        {"redis+sentinel://s1:26379/", "master's name"},
        {"redis+sentinel:///m", "empty host"},
        {"redis+sentinel://s1,,s2/m", "empty host"},
        {"redis+sentinel://s1,/m", "empty host"},
        {"redis+sentinel://s1:0/m", "bad port"},
        {"redis+sentinel://s1:70000/m", "bad port"},
        {"redis+sentinel://s1:x/m", "bad port"},
        {"redis+sentinel://s1/m/x", "bad db"},
        {"redis+sentinel://s1/m/1/2", "bad db"},
        {"redis+sentinel://s1/m{x}", "bad character in sentinel master"},
        {"redis+sentinel://s1/m?password=x", "unknown parameter 'password'"},
        {"redis+sentinel://s1/m?sentinel_password", "bad query parameter"},
        {"redis+sentinel://s1/m?sentinel_user=u", "needs sentinel_password"},
        {"redis+sentinel://s1/m?sentinel_password=%zz", "bad sentinel_password"},
        {"redis+sentinel://[::1/m", "bad IPv6"},
        {"redis+sentinel://[::1]x/m", "bad IPv6"},
        {"redis+sentinel://:%4@s1/m", "bad user or password"},
        {"redis+cluster://", "empty host"},
        {"redis+cluster://n1:7000/1", "only db 0"},
        {"redis+cluster://n1:7000?x=1", "no query"},
        {"redis+cluster://n 1:7000", "bad character in host"},
        {"redis://a:1,b:2/0", "names one host"},
        {"redis://h/0?x=1", "no query"},
        {"redis://h/0?cacert=/ca.pem", "needs a TLS URL"},
        {"redis+sentinel://s/m?sni=x", "needs a TLS URL"},
        {"redis+cluster://n1?cert=/c.pem", "needs a TLS URL"},
        {"rediss://h/0?cert=/c.pem", "cert= and key= go together"},
        {"rediss://h/0?key=/k.pem", "cert= and key= go together"},
        {"rediss://h/0?cacert=", "bad cacert"},
        {"rediss://h/0?insecure=1", "unknown parameter 'insecure'"},
        {"rediss://h/0?sentinel_password=x", "unknown parameter 'sentinel_password'"},
        {"rediss+sentinel://s/m?verify=no", "unknown parameter 'verify'"},
        {"rediss://h/x?cacert=/ca.pem", "bad db"},
        {"redis+sentinels://s/m", "must start with"},
        {"redisss://h", "must start with"},
        {"redis+sentinels://s/m", "must start with"},
    };
    ef_redis_url_t u;
    char err[EF_ERR_LEN];
    for (size_t i = 0; i < EF_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        if (ef_redis_url_parse(bad[i].url, &u, err) != -1 || !strstr(err, bad[i].says)) {
            fprintf(stderr, "url '%s': err '%s', want '%s'\n", bad[i].url, err, bad[i].says);
            fail();
        }
    }
}

/* At most EF_REDIS_URL_MAX_HOSTS hosts; a master name at its length limit. */
static void test_bounds(void **st) {
    (void)st;
    ef_redis_url_t u;
    char url[4096], err[EF_ERR_LEN];
    size_t o = (size_t)snprintf(url, sizeof url, "redis+sentinel://");
    for (int i = 0; i < EF_REDIS_URL_MAX_HOSTS; i++)
        o += (size_t)snprintf(url + o, sizeof url - o, "%sh%d:%d", i ? "," : "", i, 26000 + i);
    snprintf(url + o, sizeof url - o, "/m");
    assert_int_equal(ef_redis_url_parse(url, &u, err), 0);
    assert_int_equal(u.nhosts, EF_REDIS_URL_MAX_HOSTS);
    assert_int_equal(u.hosts[EF_REDIS_URL_MAX_HOSTS - 1].port, 26000 + EF_REDIS_URL_MAX_HOSTS - 1);
    snprintf(url + o, sizeof url - o, ",h99:1/m");
    assert_int_equal(ef_redis_url_parse(url, &u, err), -1);
    assert_non_null(strstr(err, "too many hosts"));

    o = (size_t)snprintf(url, sizeof url, "redis+sentinel://s/");
    memset(url + o, 'm', EF_REDIS_MASTER_MAX_LEN);
    url[o + EF_REDIS_MASTER_MAX_LEN] = '\0';
    assert_int_equal(ef_redis_url_parse(url, &u, err), 0);
    assert_int_equal(strlen(u.master), EF_REDIS_MASTER_MAX_LEN);
    strcat(url, "m");
    assert_int_equal(ef_redis_url_parse(url, &u, err), -1);
    assert_non_null(strstr(err, "master name must be"));

    o = (size_t)snprintf(url, sizeof url, "redis+cluster://");
    memset(url + o, 'h', 300);
    url[o + 300] = '\0';
    assert_int_equal(ef_redis_url_parse(url, &u, err), -1);
    assert_non_null(strstr(err, "host too long"));
}

/* Every prefix of a good sentinel URL either parses or fails with words:
 * nothing reads past the end. */
static void test_prefixes(void **st) {
    (void)st;
    static const char good[] =
        "redis+sentinel://u:p@[::1]:26379,s2:26380/mymaster/2?sentinel_user=a&sentinel_password=b";
    ef_redis_url_t u;
    char err[EF_ERR_LEN];
    for (size_t n = 0; n <= sizeof good - 1; n++) {
        char *cut = ef_strndup(good, n);
        err[0] = '\0';
        if (ef_redis_url_parse(cut, &u, err) != 0)
            assert_true(err[0] != '\0');
        free(cut);
    }
    assert_int_equal(ef_redis_url_parse(good, &u, err), 0);
}

/* The TLS forms: every scheme, the query parameters (percent-decoded,
 * mixed with the sentinel ones), and the redacted form that keeps them. */
static void test_tls_forms(void **st) {
    ef_redis_url_t u;
    char err[EF_ERR_LEN], red[2048];
    (void)st;
    assert_int_equal(
        ef_redis_url_parse("rediss://farm:pw@redis.example:6380/2?cacert=/etc/ca%20x.pem"
                           "&cert=/c.pem&key=/k.pem&sni=r.example",
                           &u, err),
        0);
    assert_int_equal(u.kind, EF_REDIS_URL_TCP);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.host, "redis.example");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.tls_cacert, "/etc/ca x.pem");
    assert_string_equal(u.tls_cert, "/c.pem");
    assert_string_equal(u.tls_key, "/k.pem");
    assert_string_equal(u.tls_sni, "r.example");
    ef_redis_url_redacted(&u, red, sizeof red);
    assert_string_equal(red, "rediss://farm:***@redis.example:6380/2?cacert=/etc/ca x.pem"
                             "&cert=/c.pem&key=/k.pem&sni=r.example");
    assert_int_equal(ef_redis_url_parse("rediss://h", &u, err), 0);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.tls_cacert[0], '\0');
    assert_int_equal(ef_redis_url_parse("rediss://h:6380?cacert=/ca.pem", &u, err), 0);
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 0);
    assert_int_equal(ef_redis_url_parse("redis://h:6380/1", &u, err), 0);
    assert_int_equal(u.tls, 0);

    assert_int_equal(ef_redis_url_parse("rediss+sentinel://:pw@s1,s2:26380/m/1?sentinel_password=sp"
                                        "&cacert=/ca.pem",
                                        &u, err),
                     0);
    assert_int_equal(u.kind, EF_REDIS_URL_SENTINEL);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.nhosts, 2);
    assert_string_equal(u.master, "m");
    assert_string_equal(u.sentinel_password, "sp");
    assert_string_equal(u.tls_cacert, "/ca.pem");
    ef_redis_url_redacted(&u, red, sizeof red);
    assert_string_equal(red, "rediss+sentinel://:***@s1:26379,s2:26380/m/1"
                             "?sentinel_password=***&cacert=/ca.pem");
    assert_int_equal(ef_redis_url_parse("rediss+cluster://n1:7000,n2?sni=c.example", &u, err), 0);
    assert_int_equal(u.kind, EF_REDIS_URL_CLUSTER);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.tls_sni, "c.example");
    assert_int_equal(ef_redis_url_supported(&u, err), 0); /* routed, every node over TLS */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sentinel_good),  cmocka_unit_test(test_cluster_good),
        cmocka_unit_test(test_one_node_forms), cmocka_unit_test(test_bad_forms),
        cmocka_unit_test(test_bounds),         cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_tls_forms),
    };
    return cmocka_run_group_tests_name("redis_url", tests, NULL, NULL);
}
