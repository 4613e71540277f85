/*
 * Unit tests for the ROUTE stage's refusals in proxy/evaluate.c:
 * bg_target_parse (paths that could mean another path upstream, Host
 * ports), bg_target_repeated_field and bg_target_route (a percent-encoded
 * spelling must not pick another route). Cases are tables; every refused
 * case names the bypass it stands for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/evaluate.h"

/* ------------------------------------------------------------------------
 * Targets that parse
 * ---------------------------------------------------------------------- */

typedef struct {
    const char *target;
    const char *host_hdr; /* NULL: no Host field */
    const char *host;     /* expected lowercase host without port */
    const char *path;     /* expected path and query */
} target_ok_t;

static const target_ok_t target_ok[] = {
    {"/", "a.example", "a.example", "/"},
    {"/a.b/c", "a.example", "a.example", "/a.b/c"},
    {"/v1.2/x", "a.example", "a.example", "/v1.2/x"},
    {"/files/...txt", "a.example", "a.example", "/files/...txt"},
    {"/files/..txt/a.", "a.example", "a.example", "/files/..txt/a."},
    {"/.well-known/openid-configuration", "a.example", "a.example",
     "/.well-known/openid-configuration"},
    {"/a/.b/c..d", "a.example", "a.example", "/a/.b/c..d"},
    {"/a/b%20c", "a.example", "a.example", "/a/b%20c"},
    {"/%E4%B8%AD%E6%96%87/x", "a.example", "a.example", "/%E4%B8%AD%E6%96%87/x"},
    {"/%e4%b8%ad", "a.example", "a.example", "/%e4%b8%ad"},
    {"/\xe4\xb8\xad", "a.example", "a.example", "/\xe4\xb8\xad"}, /* raw UTF-8 */
    {"/gbk/%D6%D0%CE%C4", "a.example", "a.example", "/gbk/%D6%D0%CE%C4"},
    {"/caf%C3%A9", "a.example", "a.example", "/caf%C3%A9"},
    {"/a%2Eb/c", "a.example", "a.example", "/a%2Eb/c"},
    {"/files/%2e%2etxt", "a.example", "a.example", "/files/%2e%2etxt"},
    {"/100%25done", "a.example", "a.example", "/100%25done"},
    {"/50%", "a.example", "a.example", "/50%"},
    {"/a;v=1/b;x=..", "a.example", "a.example", "/a;v=1/b;x=.."},
    {"/a/;../b", "a.example", "a.example", "/a/;../b"},
    {"//double//slash", "a.example", "a.example", "//double//slash"},
    {"/x?q=../..&r=%2F&s=%00&t=%c0%ae", "a.example", "a.example",
     "/x?q=../..&r=%2F&s=%00&t=%c0%ae"},
    {"/x?", "a.example", "a.example", "/x?"},
    /* Host and port */
    {"/x", "A.Example", "a.example", "/x"},
    {"/x", "a.example:1", "a.example", "/x"},
    {"/x", "a.example:443", "a.example", "/x"},
    {"/x", "a.example:65535", "a.example", "/x"},
    {"/x", "a.example:00080", "a.example", "/x"},
    {"/x", "[::1]", "[::1]", "/x"},
    {"/x", "[::1]:8443", "[::1]", "/x"},
    {"/x", "[v1.fe80::a+en1]", "[v1.fe80::a+en1]", "/x"},
    {"/x", "a_b-c~d.example", "a_b-c~d.example", "/x"},
    {"/x", "caf%C3%A9.example", "caf%c3%a9.example", "/x"},
    {"/x", NULL, "", "/x"},
    /* absolute-form: the authority wins over Host */
    {"http://B.Example:8080/p?q", "a.example", "b.example", "/p?q"},
    {"https://b.example", "a.example", "b.example", "/"},
};

static void test_targets_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof target_ok / sizeof target_ok[0]; i++) {
        const target_ok_t *c = &target_ok[i];
        bg_target_t tg;
        const char *why = NULL;
        int st = bg_target_parse(c->target, strlen(c->target), c->host_hdr,
                                 c->host_hdr != NULL ? strlen(c->host_hdr) : 0, &tg, &why);
        if (st != 0)
            fprintf(stderr, "case %zu (%s, Host %s): %d %s\n", i, c->target,
                    c->host_hdr != NULL ? c->host_hdr : "-", st, why);
        assert_int_equal(st, 0);
        assert_string_equal(tg.host, c->host);
        assert_int_equal(tg.host_len, strlen(c->host));
        assert_int_equal(tg.path_len, strlen(c->path));
        assert_memory_equal(tg.path, c->path, tg.path_len);
        assert_int_equal(bg_target_unsafe_path(tg.path, tg.path_len), 0);
    }
}

/* ------------------------------------------------------------------------
 * Targets refused with 400
 * ---------------------------------------------------------------------- */

typedef struct {
    const char *what;
    const char *target;
    const char *host_hdr;
    const char *why; /* a substring of the reason */
} target_bad_t;

#define PATH_WHY "dot segments"
#define PORT_WHY "invalid port"

static const target_bad_t target_bad[] = {
    /* plain dot segments */
    {"dot-dot", "/a/../b", "a.example", PATH_WHY},
    {"dot", "/a/./b", "a.example", PATH_WHY},
    {"dot-dot at the end", "/a/..", "a.example", PATH_WHY},
    {"dot-dot first", "/..", "a.example", PATH_WHY},
    {"dot-dot before a query", "/a/..?x=1", "a.example", PATH_WHY},
    {"only dots", "/a/.../b", "a.example", PATH_WHY},
    /* percent-encoded dots, once and twice */
    {"%2e%2e", "/a/%2e%2e/b", "a.example", PATH_WHY},
    {"%2E.", "/a/%2E./b", "a.example", PATH_WHY},
    {".%2e", "/a/.%2e", "a.example", PATH_WHY},
    {"%252e%252e", "/a/%252e%252e/b", "a.example", PATH_WHY},
    {"%252E.", "/a/%252E./b", "a.example", PATH_WHY},
    {"%25%32%65 twice", "/a/%25%32%65%25%32%65/b", "a.example", PATH_WHY},
    {"%25252e three times", "/a/%25252e%25252e/b", "a.example", PATH_WHY},
    /* encoded separators and NUL */
    {"..%2f", "/a/..%2fb", "a.example", PATH_WHY},
    {"%2F", "/a%2Fb", "a.example", PATH_WHY},
    {"%2f inside a name", "/public%2f..%2fadmin", "a.example", PATH_WHY},
    {"%252f", "/a/%252f/b", "a.example", PATH_WHY},
    {"%25252F", "/a/%25252F/b", "a.example", PATH_WHY},
    {"%5c", "/a%5cb", "a.example", PATH_WHY},
    {"%5C..%5C", "/a/%5C..%5Cb", "a.example", PATH_WHY},
    {"%255c", "/a/%255c..", "a.example", PATH_WHY},
    {"%00", "/a%00.json", "a.example", PATH_WHY},
    {"%2500", "/a%2500.json", "a.example", PATH_WHY},
    /* matrix parameters on dot segments (Tomcat, Spring) */
    {"..;/", "/a/..;/b", "a.example", PATH_WHY},
    {".;/", "/a/.;/b", "a.example", PATH_WHY},
    {"..;jsessionid", "/a/..;jsessionid=1/b", "a.example", PATH_WHY},
    {"%2e%2e;", "/a/%2e%2e;x/b", "a.example", PATH_WHY},
    {"..%3b encoded", "/a/..%3b/b", "a.example", PATH_WHY},
    /* backslashes (IIS, some frameworks) */
    {"..\\", "/a/..\\b", "a.example", PATH_WHY},
    {"\\..\\", "/a\\..\\b", "a.example", PATH_WHY},
    {"\\.. at the end", "/a\\..", "a.example", PATH_WHY},
    {"\\.\\", "/a\\.\\b", "a.example", PATH_WHY},
    /* overlong UTF-8 */
    {"%c0%ae%c0%ae", "/a/%c0%ae%c0%ae/b", "a.example", PATH_WHY},
    {"%C0%AF", "/a%C0%AFb", "a.example", PATH_WHY},
    {"%c1%9c", "/a%c1%9cb", "a.example", PATH_WHY},
    {"%e0%80%ae", "/a/%e0%80%ae%e0%80%ae/b", "a.example", PATH_WHY},
    {"%f0%80%80%ae", "/a/%f0%80%80%ae/b", "a.example", PATH_WHY},
    {"%c0%80 NUL", "/a%c0%80", "a.example", PATH_WHY},
    {"%25c0%25ae twice", "/a/%25c0%25ae%25c0%25ae/b", "a.example", PATH_WHY},
    {"raw overlong", "/a/\xc0\xae\xc0\xae/b", "a.example", PATH_WHY},
    /* IIS %u */
    {"%u002e", "/a/%u002e%u002e/b", "a.example", PATH_WHY},
    {"%U2215", "/a%U2215b", "a.example", PATH_WHY},
    /* fragment */
    {"fragment", "/x#f", "a.example", "fragment"},
    {"fragment in the query", "/x?a#f", "a.example", "fragment"},
    /* absolute-form paths go through the same checks */
    {"absolute-form ..", "http://a.example/a/../b", "a.example", PATH_WHY},
    {"absolute-form %2f", "http://a.example/a%2fb", "a.example", PATH_WHY},
    /* not a path */
    {"asterisk", "*", "a.example", "*"},
    {"relative", "x/y", "a.example", "path or an absolute"},
    {"empty", "", "a.example", "path or an absolute"},
    /* ports */
    {":0", "/x", "a.example:0", PORT_WHY},
    {":00000", "/x", "a.example:00000", PORT_WHY},
    {":65536", "/x", "a.example:65536", PORT_WHY},
    {":99999", "/x", "a.example:99999", PORT_WHY},
    {"six digits", "/x", "a.example:000080", PORT_WHY},
    {":+80", "/x", "a.example:+80", PORT_WHY},
    {":-1", "/x", "a.example:-1", PORT_WHY},
    {"empty port", "/x", "a.example:", PORT_WHY},
    {"two ports", "/x", "a.example:80:80", PORT_WHY},
    {"letters", "/x", "a.example:http", PORT_WHY},
    {"IPv6 :0", "/x", "[::1]:0", PORT_WHY},
    {"IPv6 junk after ]", "/x", "[::1]x", PORT_WHY},
    {"space in Host", "/x", "a.example b", "invalid character"},
    /* userinfo (RFC 9110 4.2.4: an error) and bytes no host has */
    {"userinfo in Host", "/x", "13812345678@a.example", "userinfo"},
    {"user:password in Host", "/x", "u:p@a.example:8080", "userinfo"},
    {"absolute-form userinfo", "http://13812345678@a.example/x", "a.example", "userinfo"},
    {"absolute-form user:password", "https://u:p@a.example:443/x", "a.example", "userinfo"},
    {"userinfo in an IP literal", "/x", "[u@::1]", "userinfo"},
    {"backslash in Host", "/x", "a.example\\b", "invalid character"},
    {"query in the authority", "http://a.example?x=1", "a.example", "invalid character"},
    {"quote in Host", "/x", "a\"b.example", "invalid character"},
    {"GBK bytes in Host", "/x", "\xa3\xb1.example", "invalid character"},
    {"raw UTF-8 in Host", "/x", "\xe4\xb8\xad.example", "invalid character"},
    {"':' inside a reg-name", "/x", "a:b:c.example", PORT_WHY},
    {"absolute-form :0", "http://a.example:0/x", "a.example", PORT_WHY},
    {"absolute-form :65536", "http://a.example:65536/x", "a.example", PORT_WHY},
};

static void test_targets_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof target_bad / sizeof target_bad[0]; i++) {
        const target_bad_t *c = &target_bad[i];
        bg_target_t tg;
        const char *why = NULL;
        int st = bg_target_parse(c->target, strlen(c->target), c->host_hdr, strlen(c->host_hdr),
                                 &tg, &why);
        if (st != 400 || why == NULL || strstr(why, c->why) == NULL)
            fprintf(stderr, "case %zu (%s): %d %s\n", i, c->what, st, why != NULL ? why : "-");
        assert_int_equal(st, 400);
        assert_non_null(why);
        assert_non_null(strstr(why, c->why));
    }
}

/* A path longer than the on-stack buffer takes the heap path and still
 * sees a dot segment at its very end, or none. */
static void test_long_paths(void **state)
{
    (void)state;
    size_t n = 10000;
    char *p = malloc(n + 16);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = i % 4 == 0 ? '/' : 'a';
    memcpy(p + n, "/%252e%252e", 12);
    assert_int_equal(bg_target_unsafe_path(p, n + 11), 1);
    memcpy(p + n, "/%252e%252ex", 13);
    assert_int_equal(bg_target_unsafe_path(p, n + 12), 0);
    free(p);
}

/* A NUL or control byte in the Host (replay could hand one over) is 400. */
static void test_host_bytes(void **state)
{
    (void)state;
    bg_target_t tg;
    const char *why = NULL;
    assert_int_equal(bg_target_parse("/x", 2, "a.example\0b", 11, &tg, &why), 400);
    assert_non_null(strstr(why, "invalid character"));
    assert_int_equal(bg_target_parse("/x", 2, "a.exa\x7fmple", 10, &tg, &why), 400);
    assert_int_equal(bg_target_parse("/x", 2, "a.exa\tmple", 10, &tg, &why), 400);
    assert_int_equal(bg_target_parse("/x", 2, "xn--fiq228c.example", 19, &tg, &why), 0);
}

/* ------------------------------------------------------------------------
 * Repeated fields
 * ---------------------------------------------------------------------- */

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static void test_repeated_fields(void **state)
{
    (void)state;
    const char *why = NULL;
    bg_http_header_t one_each[] = {H("Host", "a"), H("Content-Type", "application/json"),
                                   H("Content-Encoding", "gzip"), H("X-A", "1"), H("X-A", "2")};
    assert_int_equal(bg_target_repeated_field(one_each, 5, &why), 0);

    bg_http_header_t two_types[] = {H("Content-Type", "text/plain"),
                                    H("content-type", "application/json")};
    assert_int_equal(bg_target_repeated_field(two_types, 2, &why), 400);
    assert_non_null(strstr(why, "Content-Type"));

    bg_http_header_t two_types_same[] = {H("Content-Type", "application/json"), H("X", "y"),
                                         H("CONTENT-TYPE", "application/json")};
    assert_int_equal(bg_target_repeated_field(two_types_same, 3, &why), 400);

    bg_http_header_t two_codings[] = {H("Content-Encoding", "identity"),
                                      H("Content-Encoding", "gzip")};
    assert_int_equal(bg_target_repeated_field(two_codings, 2, &why), 400);
    assert_non_null(strstr(why, "Content-Encoding"));

    assert_int_equal(bg_target_repeated_field(NULL, 0, &why), 0);
}

/* ------------------------------------------------------------------------
 * Routes: a spelling must not pick another route than the upstream sees
 * ---------------------------------------------------------------------- */

static char g_dir[64];
static bg_config_t *g_cfg;

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/bg-target-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/c.json", g_dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "{\"audit\": {\"directory\": \"%s/audit\"},\n"
            " \"routes\": [\n"
            "  {\"id\": \"admin\", \"match\": {\"host\": \"a.example\", \"path_prefix\": "
            "\"/admin\"}, \"upstream\": \"http://127.0.0.1:9\"},\n"
            "  {\"id\": \"zh\", \"match\": {\"host\": \"a.example\", \"path_prefix\": "
            "\"/files/%%E4%%B8%%AD\"}, \"upstream\": \"http://127.0.0.1:9\"},\n"
            "  {\"id\": \"all\", \"match\": {\"host\": \"a.example\"}, \"upstream\": "
            "\"http://127.0.0.1:9\"}]}\n",
            g_dir);
    if (fclose(f) != 0)
        return -1;
    int nerr = -1;
    g_cfg = bg_config_load(path, stderr, &nerr);
    return g_cfg != NULL && nerr == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bg_config_unref(g_cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct {
    const char *target;
    const char *host;
    int status;
    const char *route; /* id when 0 */
} route_case_t;

static const route_case_t route_cases[] = {
    {"/admin", "a.example", 0, "admin"},
    {"/admin/users?x=%61", "a.example", 0, "admin"},
    {"/admin/%78", "a.example", 0, "admin"},
    {"/other", "a.example", 0, "all"},
    {"/other%20name/%E4%B8%AD", "a.example", 0, "all"},
    {"/administrator", "a.example", 0, "all"},
    {"/files/%E4%B8%AD/x", "a.example", 0, "zh"},
    {"/%61dmin/users", "a.example", 400, NULL},
    {"/admi%6E", "a.example", 400, NULL},
    {"/%2561dmin", "a.example", 400, NULL},            /* "admin" once decoded twice */
    {"/%252561dmin", "a.example", 0, "all"},           /* three times: not followed */
    {"/admin%3Fx", "a.example", 0, "all"},             /* the segment "admin?x" */
    {"/admin%3B", "a.example", 0, "all"},              /* the segment "admin;" */
    {"/files/\xe4\xb8\xad/x", "a.example", 400, NULL}, /* raw UTF-8 spelling of the prefix */
    {"/%41dmin", "a.example", 0, "all"}, /* 'A': another path (paths are case-sensitive) */
    {"/%2541dmin", "a.example", 0, "all"},
    {"/files/%e4%b8%ad/x", "a.example", 400, NULL},
    {"/admin/../other", "a.example", 400, NULL},
    {"/admin%2f..%2fother", "a.example", 400, NULL},
    {"/other/..;/admin", "a.example", 400, NULL},
    {"/x", "b.example", 421, NULL},
    {"/x", "a.example:0", 400, NULL},
};

static void test_routes(void **state)
{
    (void)state;
    bg_http_header_t hdrs[] = {H("Host", "a.example"), H("Content-Type", "application/json")};
    for (size_t i = 0; i < sizeof route_cases / sizeof route_cases[0]; i++) {
        const route_case_t *c = &route_cases[i];
        bg_target_t tg;
        const char *why = NULL;
        int st = bg_target_route(g_cfg, c->target, strlen(c->target), c->host, strlen(c->host),
                                 hdrs, 2, &tg, &why);
        if (st != c->status)
            fprintf(stderr, "case %zu (%s): %d %s\n", i, c->target, st, why != NULL ? why : "-");
        assert_int_equal(st, c->status);
        if (st == 0) {
            assert_non_null(tg.route);
            assert_string_equal(tg.route->id, c->route);
        } else {
            assert_non_null(why);
        }
    }
    /* a repeated Content-Type is refused before any route is looked at */
    bg_http_header_t twice[] = {H("Content-Type", "text/plain"), H("Content-Type", "a/b")};
    bg_target_t tg;
    const char *why = NULL;
    assert_int_equal(bg_target_route(g_cfg, "/admin", 6, "a.example", 9, twice, 2, &tg, &why), 400);
    assert_int_equal(bg_target_route(g_cfg, "/x", 2, "zzz.example", 11, twice, 2, &tg, &why), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets_accepted), cmocka_unit_test(test_targets_refused),
        cmocka_unit_test(test_long_paths),       cmocka_unit_test(test_host_bytes),
        cmocka_unit_test(test_repeated_fields),  cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
