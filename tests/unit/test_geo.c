/*
 * Geo: real .mmdb files written at test time by geo/make-test-mmdb (and, when
 * Debian's tor-geoipdb is installed, the embedded default database built by
 * geo/build-geoip-mmdb), opened and queried through libmaxminddb.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "geo/geo.h"

extern char **environ;

/* Fixture directory and files, made once for the whole run. */
static char g_dir[512];
static char g_country[600], g_city[600], g_v4only[600], g_asn[600];

/* 2026-09-01T00:00:00Z */
#define FIXTURE_EPOCH 1788220800u

static const char COUNTRY_SPEC[] =
    "@type bordergate-Test-Country\n"
    "@description bordergate unit-test fixture\n"
    "@epoch 1788220800\n"
    "114.114.114.0/24 CN\n"
    "223.5.5.0/24     CN\n"
    "8.8.8.0/24       US\n"
    "203.80.96.0/24   HK\n"
    "202.175.3.0/24   MO\n"
    "168.95.1.0/24    TW\n"
    "198.51.100.0/24  -   registered=CN  # answer without a country\n"
    "192.0.2.0/24     cn                 # not a valid code\n"
    "2400:3200::/32   CN\n"
    "2001:4860::/32   US  registered=US\n"
    "2001:db8:1::/48  HK\n";

static const char V4ONLY_SPEC[] = "@ip-version 4\n"
                                  "@type bordergate-Test-V4\n"
                                  "114.114.114.0/24 CN\n";

/* Records with no country at all, like an ASN database. */
static const char ASN_SPEC[] = "@type GeoLite2-ASN\n"
                               "1.0.0.0/24 -\n"
                               "8.8.8.0/24 -\n";

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static const char *source_dir(void)
{
    const char *s = getenv("BG_SOURCE_DIR");
    return (s != NULL && s[0] != '\0') ? s : ".";
}

/* Run ARGV (argv[0] a path), stderr to the test's stderr. Exit status. */
static int run(char *const argv[])
{
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void make_mmdb(const char *spec_text, const char *name, char *out, size_t cap)
{
    char spec[600], tool[600];
    snprintf(spec, sizeof spec, "%s/%s.spec", g_dir, name);
    snprintf(out, cap, "%s/%s.mmdb", g_dir, name);
    snprintf(tool, sizeof tool, "%s/geo/make-test-mmdb", source_dir());
    write_file(spec, spec_text, strlen(spec_text));
    char *argv[] = {"/usr/bin/perl", tool, "--out", out, spec, NULL};
    assert_int_equal(run(argv), 0);
}

static int group_setup(void **state)
{
    const char *base = getenv("BG_BUILD_DIR");
    snprintf(g_dir, sizeof g_dir, "%s/geo-test-XXXXXX",
             (base != NULL && base[0] != '\0') ? base : "/tmp");
    if (mkdtemp(g_dir) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", g_dir, strerror(errno));
        return -1;
    }
    make_mmdb(COUNTRY_SPEC, "country", g_country, sizeof g_country);
    char city_spec[sizeof COUNTRY_SPEC + 32];
    snprintf(city_spec, sizeof city_spec, "@layout city\n%s", COUNTRY_SPEC);
    make_mmdb(city_spec, "city", g_city, sizeof g_city);
    make_mmdb(V4ONLY_SPEC, "v4only", g_v4only, sizeof g_v4only);
    make_mmdb(ASN_SPEC, "asn", g_asn, sizeof g_asn);
    return 0;
}

static int group_teardown(void **state)
{
    DIR *d = opendir(g_dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char p[800];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_dir);
    return 0;
}

typedef struct {
    struct sockaddr_storage ss;
} addr_buf_t;

static const struct sockaddr *sa(addr_buf_t *b, const char *ip)
{
    memset(b, 0, sizeof *b);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&b->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&b->ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(443);
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &v6->sin6_addr), 1);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(443);
    }
    return (const struct sockaddr *)&b->ss;
}

static bg_geo_db_t *open_ok(const char *path)
{
    char err[512] = "";
    bg_geo_db_t *db = bg_geo_db_open(path, err, sizeof err);
    if (db == NULL)
        fail_msg("open %s: %s", path, err);
    return db;
}

/* Look IP up in DB; check country (NULL: unknown), region and source. */
static void expect_lookup(bg_geo_db_t *db, const char *ip, const char *country,
                          bg_geo_region_t region, const char *source)
{
    addr_buf_t b;
    bg_geo_answer_t a;
    int rc = bg_geo_lookup(db, sa(&b, ip), &a);
    if (rc != 0 || strcmp(a.country, country ? country : "") != 0 || a.region != region ||
        strcmp(a.source, source) != 0)
        fail_msg("%s: rc %d country '%s' region %s source '%s'; want '%s' %s '%s'", ip, rc,
                 a.country, bg_geo_region_name(a.region), a.source, country ? country : "",
                 bg_geo_region_name(region), source);
}

static void expect_classify(const bg_geo_overrides_t *ov, bg_geo_db_t *db, const char *host,
                            const char *ip, const char *country, const char *source)
{
    addr_buf_t b;
    bg_geo_answer_t a;
    bg_geo_classify(ov, db, host, ip ? sa(&b, ip) : NULL, &a);
    if (strcmp(a.country, country ? country : "") != 0 || strcmp(a.source, source) != 0)
        fail_msg("%s / %s: country '%s' source '%s'; want '%s' '%s'", host ? host : "-",
                 ip ? ip : "-", a.country, a.source, country ? country : "", source);
}

static void expect_error(const char *path, const char *fragment)
{
    char err[512] = "";
    bg_geo_db_t *db = bg_geo_db_open(path, err, sizeof err);
    if (db != NULL) {
        bg_geo_db_unref(db);
        fail_msg("%s opened; expected an error containing '%s'", path, fragment);
    }
    if (strstr(err, fragment) == NULL || strstr(err, path) == NULL || strchr(err, '\n') != NULL)
        fail_msg("error '%s' should name %s and say '%s' on one line", err, path, fragment);
}

/* ------------------------------------------------------------------------
 * Database look-ups
 * ------------------------------------------------------------------------ */

#define SRC "db:bordergate-Test-Country@2026-09-01"

static void test_known_ranges(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    expect_lookup(db, "114.114.114.114", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "223.5.5.5", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "8.8.8.8", "US", BG_GEO_CROSS_BORDER, SRC);
    expect_lookup(db, "2400:3200::1", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "2001:4860:4860::8888", "US", BG_GEO_CROSS_BORDER, SRC);
    /* Range edges. */
    expect_lookup(db, "114.114.114.0", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "114.114.114.255", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "114.114.115.0", NULL, BG_GEO_UNKNOWN, SRC ":not-found");
    expect_lookup(db, "2400:3200:ffff:ffff:ffff:ffff:ffff:ffff", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "2400:3201::", NULL, BG_GEO_UNKNOWN, SRC ":not-found");
    bg_geo_db_unref(db);
}

static void test_hk_mo_tw_are_cross_border(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    expect_lookup(db, "203.80.96.10", "HK", BG_GEO_CROSS_BORDER, SRC);
    expect_lookup(db, "202.175.3.3", "MO", BG_GEO_CROSS_BORDER, SRC);
    expect_lookup(db, "168.95.1.1", "TW", BG_GEO_CROSS_BORDER, SRC);
    expect_lookup(db, "2001:db8:1::53", "HK", BG_GEO_CROSS_BORDER, SRC);

    addr_buf_t b;
    bg_geo_answer_t a;
    bg_geo_lookup(db, sa(&b, "203.80.96.10"), &a);
    assert_true(bg_geo_is_cross_border(&a));
    bg_geo_lookup(db, sa(&b, "114.114.114.114"), &a);
    assert_false(bg_geo_is_cross_border(&a));
    bg_geo_db_unref(db);
}

static void test_unknown_is_cross_border(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    addr_buf_t b;
    bg_geo_answer_t a;

    const char *unknown[] = {"127.0.0.1", "10.1.2.3", "1.2.3.4", "2a00::1", "::1"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_int_equal(bg_geo_lookup(db, sa(&b, unknown[i]), &a), 0);
        assert_int_equal(a.region, BG_GEO_UNKNOWN);
        assert_string_equal(a.country, "");
        assert_true(bg_geo_is_cross_border(&a));
        assert_string_equal(bg_geo_region_name(a.region), "unknown");
    }

    /* No database at all: unknown, and an error for the caller to log. */
    assert_int_equal(bg_geo_lookup(NULL, sa(&b, "114.114.114.114"), &a), -1);
    assert_int_equal(a.region, BG_GEO_UNKNOWN);
    assert_string_equal(a.source, "no-database");
    assert_true(bg_geo_is_cross_border(&a));
    assert_true(bg_geo_is_cross_border(NULL));

    /* A family the database cannot answer for. */
    struct sockaddr_storage unix_sa;
    memset(&unix_sa, 0, sizeof unix_sa);
    unix_sa.ss_family = AF_UNIX;
    assert_int_equal(bg_geo_lookup(db, (struct sockaddr *)&unix_sa, &a), -1);
    assert_int_equal(a.region, BG_GEO_UNKNOWN);
    assert_string_equal(a.source, "unsupported-address");
    bg_geo_db_unref(db);
}

static void test_answer_without_country_is_unknown(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    addr_buf_t b;
    bg_geo_answer_t a;

    /* registered_country CN must not make the address domestic. */
    assert_int_equal(bg_geo_lookup(db, sa(&b, "198.51.100.7"), &a), 0);
    assert_int_equal(a.region, BG_GEO_UNKNOWN);
    assert_string_equal(a.country, "");
    assert_string_equal(a.registered, "CN");
    assert_string_equal(a.source, SRC ":no-country");
    assert_true(bg_geo_is_cross_border(&a));

    /* A lowercase code in the database is not trusted either. */
    expect_lookup(db, "192.0.2.1", NULL, BG_GEO_UNKNOWN, SRC ":bad-country");

    /* registered_country is carried along when present. */
    bg_geo_lookup(db, sa(&b, "2001:4860::1"), &a);
    assert_string_equal(a.registered, "US");
    bg_geo_lookup(db, sa(&b, "8.8.8.8"), &a);
    assert_string_equal(a.registered, "");
    bg_geo_db_unref(db);
}

static void test_ipv6_forms_of_ipv4(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    /* IPv4-mapped and NAT64 reach the IPv4 address they carry. */
    expect_lookup(db, "::ffff:114.114.114.114", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "64:ff9b::114.114.114.114", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "::ffff:8.8.8.8", "US", BG_GEO_CROSS_BORDER, SRC);
    /* 6to4 is the database's business: aliased to IPv4 in this one. */
    expect_lookup(db, "2002:7272:7272::1", "CN", BG_GEO_DOMESTIC, SRC);
    /* Teredo aliases to the Teredo server (here a CN address): refused. */
    expect_lookup(db, "2001:0:7272:7272::1", NULL, BG_GEO_UNKNOWN, SRC ":teredo");
    bg_geo_db_unref(db);
}

static void test_city_layout(void **state)
{
    bg_geo_db_t *db = open_ok(g_city);
    expect_lookup(db, "114.114.114.114", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "8.8.8.8", "US", BG_GEO_CROSS_BORDER, SRC);
    expect_lookup(db, "168.95.1.1", "TW", BG_GEO_CROSS_BORDER, SRC);
    expect_lookup(db, "2400:3200::1", "CN", BG_GEO_DOMESTIC, SRC);
    expect_lookup(db, "198.51.100.7", NULL, BG_GEO_UNKNOWN, SRC ":no-country");
    bg_geo_db_unref(db);
}

static void test_ipv4_only_database(void **state)
{
    bg_geo_db_t *db = open_ok(g_v4only);
    assert_int_equal(bg_geo_db_ip_version(db), 4);
    expect_lookup(db, "114.114.114.114", "CN", BG_GEO_DOMESTIC, "db:bordergate-Test-V4@2026-01-01");
    expect_lookup(db, "2400:3200::1", NULL, BG_GEO_UNKNOWN,
                  "db:bordergate-Test-V4@2026-01-01:no-ipv6");
    /* Mapped addresses still work: they are looked up as IPv4. */
    expect_lookup(db, "::ffff:114.114.114.114", "CN", BG_GEO_DOMESTIC,
                  "db:bordergate-Test-V4@2026-01-01");
    bg_geo_db_unref(db);
}

static void test_metadata_and_freshness(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    assert_string_equal(bg_geo_db_path(db), g_country);
    assert_string_equal(bg_geo_db_type(db), "bordergate-Test-Country");
    assert_string_equal(bg_geo_db_description(db), "bordergate unit-test fixture");
    assert_int_equal(bg_geo_db_build_epoch(db), FIXTURE_EPOCH);
    assert_string_equal(bg_geo_db_label(db), "bordergate-Test-Country@2026-09-01");
    assert_int_equal(bg_geo_db_ip_version(db), 6);
    assert_int_equal(bg_geo_db_age(db, FIXTURE_EPOCH + 86400 * 40), 86400 * 40);
    assert_int_equal(bg_geo_db_age(db, FIXTURE_EPOCH - 10), 0);

    /* References: the database survives until the last one goes. */
    bg_geo_db_t *again = bg_geo_db_ref(db);
    assert_ptr_equal(again, db);
    bg_geo_db_unref(db);
    expect_lookup(again, "8.8.8.8", "US", BG_GEO_CROSS_BORDER, SRC);
    bg_geo_db_unref(again);
    bg_geo_db_unref(NULL);
}

/* ------------------------------------------------------------------------
 * Errors opening a database
 * ------------------------------------------------------------------------ */

static void test_open_errors(void **state)
{
    char path[700];

    snprintf(path, sizeof path, "%s/missing.mmdb", g_dir);
    expect_error(path, "No such file or directory");

    expect_error(g_dir, "not a regular file");

    snprintf(path, sizeof path, "%s/empty.mmdb", g_dir);
    write_file(path, "", 0);
    expect_error(path, "empty file");

    snprintf(path, sizeof path, "%s/text.mmdb", g_dir);
    const char text[] = "114.114.114.0/24 CN\nthis is not a database\n";
    write_file(path, text, sizeof text - 1);
    expect_error(path, "not a MaxMind DB file");

    /* A country-less database (ASN-like) is refused by name. */
    expect_error(g_asn, "not a country or city database");
    expect_error(g_asn, "GeoLite2-ASN");

    char err[64];
    assert_null(bg_geo_db_open("", err, sizeof err));
    assert_non_null(strstr(err, "no file name"));
}

/* As root (CI, containers) the check runs in a child that drops to
 * "nobody", since root reads mode-000 files. */
static void test_open_unreadable(void **state)
{
    char path[700];
    snprintf(path, sizeof path, "%s/unreadable.mmdb", g_dir);
    size_t n = 0;
    FILE *in = fopen(g_country, "rb");
    assert_non_null(in);
    char buf[4096];
    n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    write_file(path, buf, n);
    assert_int_equal(chmod(path, 0), 0);

    if (geteuid() != 0) {
        expect_error(path, "Permission denied");
        return;
    }
    assert_int_equal(chmod(g_dir, 0711), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[512] = "";
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        bg_geo_db_t *db = bg_geo_db_open(path, err, sizeof err);
        _exit(db == NULL && strstr(err, "Permission denied") != NULL && strstr(err, path) != NULL
                  ? 0
                  : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(chmod(g_dir, 0700), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void test_open_corrupt(void **state)
{
    size_t len;
    char *buf = slurp(g_country, &len);
    char path[700];

    /* Cut in half: the metadata at the end is gone. */
    snprintf(path, sizeof path, "%s/truncated.mmdb", g_dir);
    write_file(path, buf, len / 2);
    expect_error(path, "not a MaxMind DB file");

    /* Search tree overwritten: its records point outside the file. */
    snprintf(path, sizeof path, "%s/corrupt.mmdb", g_dir);
    memset(buf, 0xff, 64);
    write_file(path, buf, len);
    expect_error(path, "corrupt");
    free(buf);
}

/* ------------------------------------------------------------------------
 * Overrides
 * ------------------------------------------------------------------------ */

static void add_host(bg_geo_overrides_t *ov, const char *p, const char *cc)
{
    char err[256];
    if (bg_geo_overrides_add_host(ov, p, cc, err, sizeof err) != 0)
        fail_msg("add_host %s: %s", p, err);
}

static void add_cidr(bg_geo_overrides_t *ov, const char *p, const char *cc)
{
    char err[256];
    if (bg_geo_overrides_add_cidr(ov, p, cc, err, sizeof err) != 0)
        fail_msg("add_cidr %s: %s", p, err);
}

static void test_cidr_overrides_on_loopback(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    bg_geo_overrides_t *ov = bg_geo_overrides_new();
    assert_non_null(ov);
    add_cidr(ov, "127.0.0.0/24", "US");
    add_cidr(ov, "127.0.0.2/32", "CN");
    add_cidr(ov, "127.0.0.3", "HK");
    add_cidr(ov, "::1/128", "CN");
    assert_int_equal(bg_geo_overrides_count(ov), 4);

    bg_geo_answer_t a;
    addr_buf_t b;
    bg_geo_classify(ov, db, "upstream.test", sa(&b, "127.0.0.2"), &a);
    assert_string_equal(a.country, "CN");
    assert_int_equal(a.region, BG_GEO_DOMESTIC);
    assert_string_equal(a.source, "override:cidr:127.0.0.2/32");

    bg_geo_classify(ov, db, "upstream.test", sa(&b, "127.0.0.3"), &a);
    assert_string_equal(a.country, "HK");
    assert_int_equal(a.region, BG_GEO_CROSS_BORDER);
    assert_string_equal(a.source, "override:cidr:127.0.0.3/32");

    expect_classify(ov, db, NULL, "127.0.0.1", "US", "override:cidr:127.0.0.0/24");
    expect_classify(ov, db, NULL, "127.0.0.255", "US", "override:cidr:127.0.0.0/24");
    expect_classify(ov, db, NULL, "127.0.1.1", NULL, SRC ":not-found");
    expect_classify(ov, db, NULL, "::1", "CN", "override:cidr:::1/128");
    /* Mapped addresses meet the IPv4 overrides. */
    expect_classify(ov, db, NULL, "::ffff:127.0.0.2", "CN", "override:cidr:127.0.0.2/32");

    bg_geo_overrides_free(ov);
    bg_geo_db_unref(db);
}

static void test_override_precedence(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    bg_geo_overrides_t *ov = bg_geo_overrides_new();
    add_host(ov, "api.partner.example", "US");
    add_host(ov, ".partner.example", "HK");
    add_host(ov, "*.eu.partner.example", "DE");
    add_cidr(ov, "8.8.8.0/24", "CN");
    add_cidr(ov, "8.8.8.8/32", "SG");
    add_cidr(ov, "2400:3200::/32", "JP");
    add_cidr(ov, "0.0.0.0/0", "FR");

    /* Host exact > longest suffix > longest CIDR > database. */
    expect_classify(ov, db, "api.partner.example", "8.8.8.8", "US",
                    "override:host:api.partner.example");
    expect_classify(ov, db, "www.partner.example", "8.8.8.8", "HK",
                    "override:host:.partner.example");
    expect_classify(ov, db, "a.b.partner.example", "8.8.8.8", "HK",
                    "override:host:.partner.example");
    expect_classify(ov, db, "x.eu.partner.example", "8.8.8.8", "DE",
                    "override:host:.eu.partner.example");
    expect_classify(ov, db, "api.eu.partner.example", "8.8.8.8", "DE",
                    "override:host:.eu.partner.example");
    expect_classify(ov, db, "other.example", "8.8.8.8", "SG", "override:cidr:8.8.8.8/32");
    expect_classify(ov, db, "other.example", "8.8.8.9", "CN", "override:cidr:8.8.8.0/24");
    expect_classify(ov, db, "other.example", "114.114.114.114", "FR", "override:cidr:0.0.0.0/0");
    expect_classify(ov, db, "other.example", "2400:3200::1", "JP", "override:cidr:2400:3200::/32");
    expect_classify(ov, db, NULL, "2001:4860::1", "US", SRC);

    /* Host match rules: case, trailing dot, the apex, look-alikes. */
    expect_classify(ov, db, "API.Partner.EXAMPLE.", "8.8.8.8", "US",
                    "override:host:api.partner.example");
    expect_classify(ov, db, "partner.example", "8.8.8.8", "SG", "override:cidr:8.8.8.8/32");
    expect_classify(ov, db, "evilpartner.example", "8.8.8.8", "SG", "override:cidr:8.8.8.8/32");
    expect_classify(ov, db, "partner.example.evil", "8.8.8.8", "SG", "override:cidr:8.8.8.8/32");

    /* A host override answers even before an address is known. */
    expect_classify(ov, db, "api.partner.example", NULL, "US", "override:host:api.partner.example");
    expect_classify(ov, db, "other.example", NULL, NULL, "no-address");

    /* Without overrides or host, the database decides. */
    expect_classify(NULL, db, "api.partner.example", "8.8.8.8", "US", SRC);
    expect_classify(ov, NULL, NULL, "2001:4860::1", NULL, "no-database");

    bg_geo_overrides_free(ov);
    bg_geo_db_unref(db);
}

static void expect_add_error(int is_host, const char *pattern, const char *cc, const char *fragment)
{
    bg_geo_overrides_t *ov = bg_geo_overrides_new();
    char err[256] = "";
    add_host(ov, "dup.example", "US");
    add_cidr(ov, "2001:db8::/32", "US");
    int rc = is_host ? bg_geo_overrides_add_host(ov, pattern, cc, err, sizeof err)
                     : bg_geo_overrides_add_cidr(ov, pattern, cc, err, sizeof err);
    if (rc != -1 || strstr(err, fragment) == NULL)
        fail_msg("%s '%s' -> %s: rc %d err '%s', want '%s'", is_host ? "host" : "cidr", pattern,
                 cc ? cc : "(null)", rc, err, fragment);
    assert_int_equal(bg_geo_overrides_count(ov), 2);
    bg_geo_overrides_free(ov);
}

static void test_override_validation(void **state)
{
    expect_add_error(1, "api.example.com", "cn", "not a two-letter uppercase");
    expect_add_error(1, "api.example.com", "CHN", "not a two-letter uppercase");
    expect_add_error(1, "api.example.com", "", "not a two-letter uppercase");
    expect_add_error(1, "api.example.com", NULL, "not a two-letter uppercase");
    expect_add_error(1, "api.exa*mple.com", "US", "'*' is only allowed");
    expect_add_error(1, "*example.com", "US", "'*' is only allowed");
    expect_add_error(1, "api..example.com", "US", "empty label");
    expect_add_error(1, "*.", "US", "no host name");
    expect_add_error(1, "api example.com", "US", "not allowed in a host name");
    expect_add_error(1, "1.2.3.4", "US", "use a CIDR override");
    expect_add_error(1, "2001:db8::1", "US", "use a CIDR override");
    expect_add_error(1, "DUP.example.", "CN", "already pinned to US");

    expect_add_error(0, "10.1.2.3/8", "US", "did you mean 10.0.0.0/8?");
    expect_add_error(0, "2001:db8::1/32", "US", "did you mean 2001:db8::/32?");
    expect_add_error(0, "1.2.3.4/33", "US", "prefix length must be 0-32");
    expect_add_error(0, "1.2.3.4/", "US", "prefix length must be 0-32");
    expect_add_error(0, "1.2.3.4/-1", "US", "prefix length must be 0-32");
    expect_add_error(0, "2001:db8::/129", "US", "prefix length must be 0-128");
    expect_add_error(0, "example.com/24", "US", "not an IPv4 or IPv6 address");
    expect_add_error(0, "", "US", "expected address/prefix-length");
    expect_add_error(0, "::ffff:10.0.0.0/104", "US", "write the network as IPv4");
    expect_add_error(0, "2001:0db8:0000::/32", "CN", "2001:db8::/32 is already pinned to US");
    expect_add_error(0, "10.0.0.0/8", "us", "not a two-letter uppercase");

    /* Long host names fit the source with a visible cut. */
    bg_geo_overrides_t *ov = bg_geo_overrides_new();
    char longname[240];
    memset(longname, 'a', sizeof longname);
    for (size_t i = 60; i < sizeof longname - 1; i += 61)
        longname[i] = '.';
    longname[sizeof longname - 1] = '\0';
    add_host(ov, longname, "CN");
    bg_geo_answer_t a;
    bg_geo_classify(ov, NULL, longname, NULL, &a);
    assert_string_equal(a.country, "CN");
    assert_int_equal(strlen(a.source), BG_GEO_SOURCE_MAX - 1);
    assert_string_equal(a.source + BG_GEO_SOURCE_MAX - 4, "...");
    bg_geo_overrides_free(ov);
    bg_geo_overrides_free(NULL);
}

/* ------------------------------------------------------------------------
 * Mixed-region hosts
 * ------------------------------------------------------------------------ */

static bg_geo_answer_t ans(bg_geo_region_t r, const char *cc)
{
    bg_geo_answer_t a;
    memset(&a, 0, sizeof a);
    a.region = r;
    snprintf(a.country, sizeof a.country, "%s", cc);
    return a;
}

static void test_choose_prefers_domestic(void **state)
{
    bg_geo_answer_t us = ans(BG_GEO_CROSS_BORDER, "US");
    bg_geo_answer_t hk = ans(BG_GEO_CROSS_BORDER, "HK");
    bg_geo_answer_t cn = ans(BG_GEO_DOMESTIC, "CN");
    bg_geo_answer_t unk = ans(BG_GEO_UNKNOWN, "");

    bg_geo_answer_t a1[] = {us, hk, cn, cn};
    assert_int_equal(bg_geo_choose(a1, 4), 2);
    bg_geo_answer_t a2[] = {cn, us};
    assert_int_equal(bg_geo_choose(a2, 2), 0);
    bg_geo_answer_t a3[] = {unk, hk, us};
    assert_int_equal(bg_geo_choose(a3, 3), 1);
    bg_geo_answer_t a4[] = {unk, unk};
    assert_int_equal(bg_geo_choose(a4, 2), 0);
    bg_geo_answer_t a5[] = {hk};
    assert_int_equal(bg_geo_choose(a5, 1), 0);
    assert_int_equal(bg_geo_choose(a1, 0), -1);
    assert_int_equal(bg_geo_choose(NULL, 3), -1);

    /* End to end: the answers of a host resolving to three addresses. */
    bg_geo_db_t *db = open_ok(g_country);
    const char *ips[] = {"8.8.8.8", "2001:4860::1", "223.5.5.5", "114.114.114.114"};
    bg_geo_answer_t got[4];
    addr_buf_t b;
    for (int i = 0; i < 4; i++)
        bg_geo_classify(NULL, db, "mixed.example", sa(&b, ips[i]), &got[i]);
    int pick = bg_geo_choose(got, 4);
    assert_int_equal(pick, 2);
    assert_string_equal(got[pick].country, "CN");
    bg_geo_db_unref(db);
}

/* ------------------------------------------------------------------------
 * Concurrency: readers on a shared database while references come and go
 * ------------------------------------------------------------------------ */

typedef struct {
    bg_geo_db_t *db;
    int errors;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    addr_buf_t b4, b6;
    const struct sockaddr *v4 = sa(&b4, "114.114.114.114");
    const struct sockaddr *v6 = sa(&b6, "2001:4860::1");
    for (int i = 0; i < 20000; i++) {
        bg_geo_answer_t a;
        bg_geo_db_t *mine = bg_geo_db_ref(r->db);
        bg_geo_lookup(mine, (i & 1) ? v6 : v4, &a);
        if (strcmp(a.country, (i & 1) ? "US" : "CN") != 0)
            r->errors++;
        bg_geo_db_unref(mine);
    }
    bg_geo_db_unref(r->db); /* the thread's own reference */
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    bg_geo_db_t *db = open_ok(g_country);
    pthread_t t[4];
    reader_t r[4];
    for (int i = 0; i < 4; i++) {
        r[i].db = bg_geo_db_ref(db);
        r[i].errors = 0;
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    /* The opener lets go while the readers still run. */
    bg_geo_db_unref(db);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(r[i].errors, 0);
    }
}

/* ------------------------------------------------------------------------
 * The embedded default database, from Debian's tor-geoipdb
 * ------------------------------------------------------------------------ */

static void test_embedded_default_database(void **state)
{
    if (access("/usr/share/tor/geoip", R_OK) != 0 || access("/usr/share/tor/geoip6", R_OK) != 0)
        skip(); /* tor-geoipdb not installed */

    char out[700], tool[600];
    snprintf(out, sizeof out, "%s/default.mmdb", g_dir);
    snprintf(tool, sizeof tool, "%s/geo/build-geoip-mmdb", source_dir());
    char *argv[] = {"/usr/bin/perl", tool, "--quiet", "--out", out, NULL};
    assert_int_equal(run(argv), 0);

    bg_geo_db_t *db = open_ok(out);
    assert_string_equal(bg_geo_db_type(db), "bordergate-Country");
    assert_non_null(
        strstr(bg_geo_db_description(db), "IPFire Location data via Debian tor-geoipdb"));
    assert_non_null(strstr(bg_geo_db_description(db), "CC BY-SA 4.0"));
    assert_true(bg_geo_db_build_epoch(db) > 1577836800u); /* after 2020 */
    assert_int_equal(bg_geo_db_ip_version(db), 6);

    const struct {
        const char *ip, *cc;
    } known[] = {
        {"114.114.114.114", "CN"},  {"223.5.5.5", "CN"},   {"2400:3200::1", "CN"},
        {"::ffff:223.5.5.5", "CN"}, {"8.8.8.8", "US"},     {"2001:4860:4860::8888", "US"},
        {"203.80.96.10", "HK"},     {"202.175.3.3", "MO"}, {"168.95.1.1", "TW"},
    };
    char src[BG_GEO_SOURCE_MAX];
    snprintf(src, sizeof src, "db:%s", bg_geo_db_label(db));
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        expect_lookup(db, known[i].ip, known[i].cc,
                      strcmp(known[i].cc, "CN") == 0 ? BG_GEO_DOMESTIC : BG_GEO_CROSS_BORDER, src);

    /* Private space and Teredo: unknown. */
    addr_buf_t b;
    bg_geo_answer_t a;
    bg_geo_lookup(db, sa(&b, "10.0.0.1"), &a);
    assert_int_equal(a.region, BG_GEO_UNKNOWN);
    bg_geo_lookup(db, sa(&b, "2001:0:4136:e378:8000:63bf:3fff:fdd2"), &a);
    assert_int_equal(a.region, BG_GEO_UNKNOWN);
    bg_geo_db_unref(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_ranges),
        cmocka_unit_test(test_hk_mo_tw_are_cross_border),
        cmocka_unit_test(test_unknown_is_cross_border),
        cmocka_unit_test(test_answer_without_country_is_unknown),
        cmocka_unit_test(test_ipv6_forms_of_ipv4),
        cmocka_unit_test(test_city_layout),
        cmocka_unit_test(test_ipv4_only_database),
        cmocka_unit_test(test_metadata_and_freshness),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_open_unreadable),
        cmocka_unit_test(test_open_corrupt),
        cmocka_unit_test(test_cidr_overrides_on_loopback),
        cmocka_unit_test(test_override_precedence),
        cmocka_unit_test(test_override_validation),
        cmocka_unit_test(test_choose_prefers_domestic),
        cmocka_unit_test(test_concurrent_readers),
        cmocka_unit_test(test_embedded_default_database),
    };
    return cmocka_run_group_tests_name("geo", tests, group_setup, group_teardown);
}
