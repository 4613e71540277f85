/*
 * The shared store (store/redis.c), the store.redis configuration and the
 * Redis consent backend's behaviour when Redis cannot be reached. No Redis
 * is needed: the unreachable store is a loopback port nobody listens on
 * (tests/integration/test_fleet.py runs the real thing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <netinet/in.h>

#include "common/util.h"
#include "config/config.h"
#include "policy/consent.h"
#include "store/redis.h"

/* A loopback port with no listener (bound, then closed). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t l = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_url(void **state)
{
    static const struct {
        const char *url;
        int ok;
        const char *host;
        int port, db;
    } cases[] = {
        {"redis://127.0.0.1:6390/2", 1, "127.0.0.1", 6390, 2},
        {"redis://redis.example", 1, "redis.example", 6379, 0},
        {"redis://redis.example/", 1, "redis.example", 6379, 0},
        {"redis://r:7000", 1, "r", 7000, 0},
        {"rediss://r:7000", 0, NULL, 0, 0},     /* TLS: not in hiredis 0.14 */
        {"redis://u:pw@r:7000", 0, NULL, 0, 0}, /* no password in the URL */
        {"redis://:7000", 0, NULL, 0, 0},
        {"redis://r:0", 0, NULL, 0, 0},
        {"redis://r:70000", 0, NULL, 0, 0},
        {"redis://r:12x", 0, NULL, 0, 0},
        {"redis://r/x", 0, NULL, 0, 0},
        {"redis://r/-1", 0, NULL, 0, 0},
        {"http://r", 0, NULL, 0, 0},
        /* digits only (fuzz/fuzz_store_url.c): strtol took these */
        {"redis://r:+7000", 0, NULL, 0, 0},
        {"redis://r: 7000", 0, NULL, 0, 0},
        {"redis://r/+2", 0, NULL, 0, 0},
        {"redis://r/ 2", 0, NULL, 0, 0},
        {"redis://r/-0", 0, NULL, 0, 0},
        {"redis://r:007000/02", 1, "r", 7000, 2},
        /* a host goes into log lines: printable ASCII */
        {"redis://r x:7000", 0, NULL, 0, 0},
        {"redis://r\n:7000", 0, NULL, 0, 0},
        {"redis://r\xc3\xa9", 0, NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bg_redis_cfg_t c;
        char err[256] = "";
        int rc = bg_redis_parse_url(cases[i].url, &c, err, sizeof err);
        if ((rc == 0) != cases[i].ok)
            fail_msg("%s: rc %d (%s)", cases[i].url, rc, err);
        if (!cases[i].ok) {
            assert_true(err[0] != '\0');
            continue;
        }
        assert_string_equal(c.host, cases[i].host);
        assert_int_equal(c.port, cases[i].port);
        assert_int_equal(c.db, cases[i].db);
        assert_null(c.password);
    }
}

/* A store nobody listens on: the first command fails, and the next ones
 * fail at once (within the backoff) instead of waiting for a timeout. */
static void test_unreachable_fails_fast(void **state)
{
    char url[64], err[512];
    bg_redis_cfg_t c;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", dead_port());
    assert_int_equal(bg_redis_parse_url(url, &c, err, sizeof err), 0);
    bg_redis_t *r = bg_redis_new(&c);
    assert_non_null(r);
    const char *av[1] = {"PING"};
    assert_null(bg_redis_cmd(r, 1, av, NULL, err, sizeof err));
    assert_int_equal(bg_redis_up(r), 0);
    assert_non_null(strstr(err, "127.0.0.1"));
    uint64_t t0 = bg_util_mono_us();
    for (int i = 0; i < 1000; i++)
        assert_null(bg_redis_cmd(r, 1, av, NULL, err, sizeof err));
    assert_true(bg_util_mono_us() - t0 < 50000); /* 1000 failures in < 50 ms */
    bg_redis_free(r);
}

/* The Redis consent backend with Redis down: a daemon still opens it, but
 * every look-up answers registry-unavailable (fail closed), grants are
 * refused and health says why. */
static void test_consent_fails_closed(void **state)
{
    char url[64], err[512];
    bg_redis_cfg_t c;
    uint8_t key[32];
    memset(key, 0x6b, sizeof key);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", dead_port());
    assert_int_equal(bg_redis_parse_url(url, &c, err, sizeof err), 0);
    bg_consent_reg_t *reg = bg_consent_open_redis(&c, key, sizeof key, 1, err, sizeof err);
    assert_non_null(reg);
    assert_string_equal(bg_consent_backend_name(reg), "redis");
    bg_consent_query_t q = {.subject = "u-1",
                            .subject_len = 3,
                            .recipient = "acme",
                            .purpose = "support",
                            .country = "US",
                            .at = 1800000000000LL};
    bg_consent_match_t m;
    assert_int_equal(bg_consent_find(reg, &q, &m), -1);
    assert_int_equal(m.miss, BG_CONSENT_MISS_UNAVAILABLE);
    assert_int_equal(bg_consent_health(reg, err, sizeof err), -1);
    assert_non_null(strstr(err, "registry-unavailable"));
    bg_consent_grant_t g = {.subject = "u-1",
                            .subject_len = 3,
                            .recipient = "acme",
                            .purpose = "support",
                            .region = "*",
                            .recorded_by = "test"};
    assert_int_not_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), 0);
    bg_consent_close(reg);

    /* A CLI handle (no subscriber) fails at open: it cannot check the key. */
    assert_null(bg_consent_open_redis(&c, key, sizeof key, 0, err, sizeof err));
}

/* store.redis in a configuration: errors name FILE:LINE:COL and the path. */
static void test_config(void **state)
{
    static const struct {
        const char *store;
        const char *want; /* NULL: loads */
    } cases[] = {
        {"{\"redis\": {\"url\": \"redis://127.0.0.1:6390/2\", \"timeout_ms\": 250}}", NULL},
        {"{\"redis\": {\"url\": \"redis://127.0.0.1\",\n \"tls\": {}}}",
         ":3:2: error: $.store.redis.tls"},
        {"{\"redis\": {\"url\": \"redis://u:p@h\"}}",
         "error: $.store.redis.url: no user or password"},
        {"{\"redis\": {}}", "error: $.store.redis: needs \"url\""},
        {"{\"redis\": {\"url\": \"redis://h\", \"password\": {\"env\": \"BG_TEST_NO_SUCH_VAR\"}}}",
         "error: $.store.redis.password"},
        {"{\"redis\": {\"url\": \"redis://h\", \"bogus\": 1}}", "$.store.redis.bogus"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[] = "/tmp/test_store_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fprintf(f,
                "{\"version\": 1, \"routes\": [{\"id\": \"a\", \"match\": {\"host\": "
                "\"a.example\"}, \"upstream\": \"http://127.0.0.1:9\"}],\n \"store\": %s}\n",
                cases[i].store);
        fclose(f);
        char *out = NULL;
        size_t outlen = 0;
        FILE *errs = open_memstream(&out, &outlen);
        int nerr = 0;
        bg_config_t *cfg = bg_config_load(path, errs, &nerr);
        fclose(errs);
        unlink(path);
        if (cases[i].want == NULL) {
            if (cfg == NULL)
                fail_msg("case %zu: %s", i, out);
            assert_non_null(cfg->store_redis);
            assert_int_equal(cfg->store_redis->port, 6390);
            assert_int_equal(cfg->store_redis->db, 2);
            assert_int_equal(cfg->store_redis->timeout_ms, 250);
            bg_config_unref(cfg);
        } else {
            assert_null(cfg);
            if (strstr(out, cases[i].want) == NULL)
                fail_msg("case %zu: want \"%s\" in: %s", i, cases[i].want, out);
        }
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_unreachable_fails_fast),
        cmocka_unit_test(test_consent_fails_closed),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
