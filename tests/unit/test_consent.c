/*
 * Consent registry: real journal files in a temporary directory, real
 * fsyncs and flocks, other processes (fork) standing in for the CLI, reader
 * threads hammering look-ups while a writer withdraws.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/hmac.h>

#include "common/util.h"
#include "policy/consent.h"

static char g_dir[512];
static int g_seq;

static const uint8_t KEY[32] = {0x42, 0x19, 0xa7, 0x03, 0x5e, 0x77, 0xc1, 0x8d, 0x10, 0x2f, 0x33,
                                0x4a, 0x95, 0xb6, 0xe0, 0x01, 0x7c, 0x88, 0x9d, 0xaa, 0x21, 0x3e,
                                0x54, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7};
static const uint8_t OTHER_KEY[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                      12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                      23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* 2026-05-01T00:00:00Z */
#define T0 1777593600000LL
#define HOUR 3600000LL
#define DAY (24 * HOUR)

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static void new_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%02d-%s.jsonl", g_dir, ++g_seq, name);
}

static bg_consent_reg_t *open_with(const char *path, const bg_consent_options_t *opts,
                                   const uint8_t *key)
{
    char err[512];
    char *warning = NULL;
    bg_consent_options_t o = {.create = 1};
    if (opts != NULL)
        o = *opts;
    bg_consent_reg_t *reg = bg_consent_open(path, key, 32, &o, &warning, err, sizeof err);
    if (reg == NULL)
        fprintf(stderr, "open %s: %s\n", path, err);
    assert_non_null(reg);
    assert_null(warning);
    return reg;
}

static bg_consent_reg_t *open_reg(const char *path)
{
    return open_with(path, NULL, KEY);
}

/* Grant with explicit fields; returns the id in ID. */
static void grant(bg_consent_reg_t *reg, const char *subject, const char *recipient,
                  const char *purpose, const char *region, int sensitive, int guardian,
                  int64_t granted, int64_t expires, char *id)
{
    char err[512];
    bg_consent_t c;
    bg_consent_grant_t g = {
        .subject = subject,
        .subject_len = strlen(subject),
        .recipient = recipient,
        .purpose = purpose,
        .region = region,
        .sensitive = sensitive,
        .guardian = guardian,
        .granted_at = granted,
        .expires_at = expires,
        .evidence = "app-consent-record-7781",
        .recorded_by = "test",
    };
    int rc = bg_consent_grant(reg, &g, &c, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "grant: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(c.id), 18);
    assert_memory_equal(c.id, "c-", 2);
    if (id != NULL)
        strcpy(id, c.id);
}

/* find() for SUBJECT at AT; returns 1/0/-1, match in M. */
static int find(bg_consent_reg_t *reg, const char *subject, const char *recipient,
                const char *purpose, const char *country, int sens, int guard, int64_t at,
                bg_consent_match_t *m)
{
    bg_consent_query_t q = {
        .subject = subject,
        .subject_len = strlen(subject),
        .recipient = recipient,
        .purpose = purpose,
        .country = country,
        .need_sensitive = sens,
        .need_guardian = guard,
        .at = at,
    };
    return bg_consent_find(reg, &q, m);
}

static char *slurp(const char *path, size_t *len)
{
    char *s = bg_util_read_file(path, len);
    assert_non_null(s);
    return s;
}

static void spit(const char *path, const char *text, size_t len, int append)
{
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static int64_t now_ms(void)
{
    return (int64_t)bg_util_wall_ms();
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A journal made through the API, returned as text (for tamper tests). */
static char *make_journal(char *path, size_t cap, const char *name, int n, size_t *len)
{
    new_path(path, cap, name);
    bg_consent_reg_t *reg = open_reg(path);
    for (int i = 0; i < n; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "user-%d", i);
        grant(reg, subj, "acme-us", "marketing", "US", 0, 0, T0, 0, NULL);
    }
    bg_consent_close(reg);
    return slurp(path, len);
}

/* ------------------------------------------------------------------------
 * Pseudonyms and keys
 * ------------------------------------------------------------------------ */

static void test_pseudonym_is_hmac_sha256(void **state)
{
    (void)state;
    char path[600];
    new_path(path, sizeof path, "hmac");
    bg_consent_reg_t *reg = open_reg(path);
    const char *ids[] = {"13800138000", "", "用户-张三", "x"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        uint8_t mine[32], ref[32];
        unsigned int n = 0;
        assert_int_equal(bg_consent_pseudonymize(reg, ids[i], strlen(ids[i]), mine), 0);
        HMAC(EVP_sha256(), KEY, sizeof KEY, (const unsigned char *)ids[i], strlen(ids[i]), ref, &n);
        assert_int_equal(n, 32);
        assert_memory_equal(mine, ref, 32);
    }
    bg_consent_close(reg);

    /* A key longer than SHA-256's block is hashed first (RFC 2104). */
    uint8_t longkey[100];
    for (size_t i = 0; i < sizeof longkey; i++)
        longkey[i] = (uint8_t)(i * 7);
    char path2[600], err[512];
    new_path(path2, sizeof path2, "hmac-long");
    bg_consent_options_t o = {.create = 1};
    reg = bg_consent_open(path2, longkey, sizeof longkey, &o, NULL, err, sizeof err);
    assert_non_null(reg);
    uint8_t mine[32], ref[32];
    unsigned int n = 0;
    assert_int_equal(bg_consent_pseudonymize(reg, "abc", 3, mine), 0);
    HMAC(EVP_sha256(), longkey, sizeof longkey, (const unsigned char *)"abc", 3, ref, &n);
    assert_memory_equal(mine, ref, 32);
    bg_consent_close(reg);

    /* Keys shorter than 32 bytes are refused. */
    reg = bg_consent_open(path2, KEY, 16, &o, NULL, err, sizeof err);
    assert_null(reg);
    assert_non_null(strstr(err, "32"));
}

static void test_key_files(void **state)
{
    (void)state;
    char path[600], err[512], warn[512];
    uint8_t key[BG_CONSENT_KEY_MAX];

    snprintf(path, sizeof path, "%s/key.hex", g_dir);
    const char *hex = "  00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
    spit(path, hex, strlen(hex), 0);
    chmod(path, 0600);
    assert_int_equal(bg_consent_key_load(path, key, sizeof key, warn, sizeof warn, err, sizeof err),
                     32);
    assert_int_equal(key[0], 0x00);
    assert_int_equal(key[1], 0x11);
    assert_int_equal(key[31], 0xff);
    assert_string_equal(warn, "");

    snprintf(path, sizeof path, "%s/key.raw", g_dir);
    spit(path, (const char *)KEY, sizeof KEY, 0);
    chmod(path, 0644);
    assert_int_equal(bg_consent_key_load(path, key, sizeof key, warn, sizeof warn, err, sizeof err),
                     32);
    assert_memory_equal(key, KEY, 32);
    assert_non_null(strstr(warn, "readable by others"));

    snprintf(path, sizeof path, "%s/key.short", g_dir);
    spit(path, "0011223344\n", 11, 0);
    chmod(path, 0600);
    assert_int_equal(bg_consent_key_load(path, key, sizeof key, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "too short"));

    snprintf(path, sizeof path, "%s/key.open", g_dir);
    spit(path, (const char *)KEY, sizeof KEY, 0);
    chmod(path, 0666);
    assert_int_equal(bg_consent_key_load(path, key, sizeof key, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "writable"));

    snprintf(path, sizeof path, "%s/key.none", g_dir);
    assert_int_equal(bg_consent_key_load(path, key, sizeof key, NULL, 0, err, sizeof err), -1);
}

static void test_time_parse(void **state)
{
    (void)state;
    int64_t t;
    char buf[40];
    assert_int_equal(bg_consent_time_parse("2026-05-01T00:00:00Z", &t), 0);
    assert_true(t == T0);
    assert_int_equal(bg_consent_time_parse("2026-05-01T08:00:00+08:00", &t), 0);
    assert_true(t == T0);
    assert_int_equal(bg_consent_time_parse("2026-04-30T19:30:00-04:30", &t), 0);
    assert_true(t == T0);
    assert_int_equal(bg_consent_time_parse("2026-05-01t00:00:00.5z", &t), 0);
    assert_true(t == T0 + 500);
    assert_int_equal(bg_consent_time_parse("2026-05-01T00:00:00.123456789Z", &t), 0);
    assert_true(t == T0 + 123);
    assert_int_equal(bg_consent_time_parse("2024-02-29T00:00:00Z", &t), 0);
    bg_consent_time_format(T0 + 123, buf, sizeof buf);
    assert_string_equal(buf, "2026-05-01T00:00:00.123Z");
    const char *bad[] = {"2026-05-01",
                         "2026-05-01T00:00:00",
                         "2026-13-01T00:00:00Z",
                         "2025-02-29T00:00:00Z",
                         "2026-05-01T24:00:00Z",
                         "2026-05-01T00:00:00.Z",
                         "1969-12-31T23:59:59Z",
                         "2026-05-01T00:00:00+8",
                         "2026-05-01 00:00:00Z",
                         "2026-05-01T00:00:00Zjunk",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bg_consent_time_parse(bad[i], &t) == 0)
            fail_msg("accepted %s", bad[i]);
    }
}

/* ------------------------------------------------------------------------
 * Granting and finding
 * ------------------------------------------------------------------------ */

static void test_grant_then_find(void **state)
{
    (void)state;
    char path[600], id[32];
    bg_consent_match_t m;
    new_path(path, sizeof path, "grant");
    bg_consent_reg_t *reg = open_reg(path);
    assert_string_equal(bg_consent_backend_name(reg), "file");
    grant(reg, "13800138000", "acme-us", "marketing", "US", 0, 0, T0, 0, id);

    assert_int_equal(find(reg, "13800138000", "acme-us", "marketing", "US", 0, 0, T0 + HOUR, &m),
                     1);
    assert_string_equal(m.consent.id, id);
    assert_string_equal(m.consent.evidence, "app-consent-record-7781");
    assert_string_equal(m.consent.recorded_by, "test");
    assert_int_equal(m.miss, BG_CONSENT_MISS_NONE);

    /* Another subject has nothing. */
    assert_int_equal(find(reg, "13800138001", "acme-us", "marketing", "US", 0, 0, T0 + HOUR, &m),
                     0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_NO_CONSENT);
    assert_string_equal(m.miss_id, "");
    assert_string_equal(bg_consent_miss_name(m.miss), "no-consent");

    /* get() and count() */
    bg_consent_t c;
    assert_int_equal(bg_consent_get(reg, id, &c), 0);
    assert_string_equal(c.region, "US");
    assert_int_equal(bg_consent_get(reg, "c-0000000000000000", &c), BG_CONSENT_ENOENT);
    assert_int_equal(bg_consent_count(reg), 1);
    char buf[128];
    assert_int_equal(bg_consent_health(reg, buf, sizeof buf), 0);
    bg_consent_close(reg);
}

static void test_scope_matching(void **state)
{
    (void)state;
    char path[600], exact[32], anyrcpt[32], anypurp[32], anyreg[32], sens[32], guard[32];
    bg_consent_match_t m;
    int64_t at = T0 + HOUR;
    new_path(path, sizeof path, "scope");
    bg_consent_reg_t *reg = open_reg(path);
    /* Subject A: one exact consent. */
    grant(reg, "A", "acme-us", "marketing", "US", 0, 0, T0, 0, exact);
    /* Subject B: wildcard in one field each. */
    grant(reg, "B", "*", "analytics", "SG", 0, 0, T0, 0, anyrcpt);
    grant(reg, "B", "partner-jp", "*", "JP", 0, 0, T0, 0, anypurp);
    grant(reg, "B", "partner-de", "support", "*", 0, 0, T0, 0, anyreg);
    /* Subject C: sensitive and guardian coverage. */
    grant(reg, "C", "acme-us", "delivery", "US", 1, 0, T0, 0, sens);
    grant(reg, "C", "acme-us", "education", "US", 1, 1, T0, 0, guard);

    /* Exact match and each field mismatching. */
    assert_int_equal(find(reg, "A", "acme-us", "marketing", "US", 0, 0, at, &m), 1);
    assert_int_equal(find(reg, "A", "acme-uk", "marketing", "US", 0, 0, at, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_SCOPE);
    assert_int_equal(find(reg, "A", "acme-us", "advertising", "US", 0, 0, at, &m), 0);
    assert_int_equal(find(reg, "A", "acme-us", "marketing", "GB", 0, 0, at, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_SCOPE);
    /* Country codes compare case-insensitively; unknown country needs "*". */
    assert_int_equal(find(reg, "A", "acme-us", "marketing", "us", 0, 0, at, &m), 1);
    assert_int_equal(find(reg, "A", "acme-us", "marketing", NULL, 0, 0, at, &m), 0);
    assert_int_equal(find(reg, "A", "acme-us", "marketing", "", 0, 0, at, &m), 0);
    /* A missing recipient or purpose matches only "*". */
    assert_int_equal(find(reg, "A", NULL, "marketing", "US", 0, 0, at, &m), 0);
    assert_int_equal(find(reg, "A", "acme-us", NULL, "US", 0, 0, at, &m), 0);

    /* Wildcards. */
    assert_int_equal(find(reg, "B", "anyone", "analytics", "SG", 0, 0, at, &m), 1);
    assert_string_equal(m.consent.id, anyrcpt);
    assert_int_equal(find(reg, "B", "anyone", "analytics", "JP", 0, 0, at, &m), 0);
    assert_int_equal(find(reg, "B", "partner-jp", "whatever", "JP", 0, 0, at, &m), 1);
    assert_string_equal(m.consent.id, anypurp);
    assert_int_equal(find(reg, "B", "partner-de", "support", "BR", 0, 0, at, &m), 1);
    assert_string_equal(m.consent.id, anyreg);
    assert_int_equal(find(reg, "B", "partner-de", "support", NULL, 0, 0, at, &m), 1);
    assert_int_equal(find(reg, "B", "partner-de", "sales", "DE", 0, 0, at, &m), 0);

    /* Sensitive PI needs a consent that covers it; minors a guardian's. */
    assert_int_equal(find(reg, "A", "acme-us", "marketing", "US", 1, 0, at, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_SENSITIVE);
    assert_string_equal(m.miss_id, exact);
    assert_int_equal(find(reg, "C", "acme-us", "delivery", "US", 1, 0, at, &m), 1);
    assert_string_equal(m.consent.id, sens);
    assert_int_equal(find(reg, "C", "acme-us", "delivery", "US", 1, 1, at, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_GUARDIAN);
    assert_int_equal(find(reg, "C", "acme-us", "education", "US", 1, 1, at, &m), 1);
    assert_string_equal(m.consent.id, guard);
    assert_int_equal(m.consent.guardian, 1);
    assert_int_equal(find(reg, "C", "acme-us", "education", "US", 0, 0, at, &m), 1);

    /* With several covering consents the most specific one is cited. */
    char specific[32];
    grant(reg, "B", "partner-de", "support", "DE", 0, 0, T0, 0, specific);
    assert_int_equal(find(reg, "B", "partner-de", "support", "DE", 0, 0, at, &m), 1);
    assert_string_equal(m.consent.id, specific);
    bg_consent_close(reg);
}

static void test_invalid_grants(void **state)
{
    (void)state;
    char path[600], err[512];
    new_path(path, sizeof path, "invalid");
    bg_consent_reg_t *reg = open_reg(path);
    bg_consent_grant_t g = {.subject = "13800138000",
                            .subject_len = 11,
                            .recipient = "*",
                            .purpose = "*",
                            .region = "US",
                            .recorded_by = "test"};
    /* A blanket consent (any recipient, any purpose) is not a separate consent. */
    assert_int_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), BG_CONSENT_EINVAL);
    assert_non_null(strstr(err, "Art. 39"));
    g.purpose = "marketing";
    g.region = "USA";
    assert_int_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), BG_CONSENT_EINVAL);
    g.region = "us"; /* normalised to upper case */
    bg_consent_t c;
    assert_int_equal(bg_consent_grant(reg, &g, &c, err, sizeof err), 0);
    assert_string_equal(c.region, "US");
    g.granted_at = T0;
    g.expires_at = T0 - 1;
    assert_int_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), BG_CONSENT_EINVAL);
    assert_non_null(strstr(err, "expires_at"));
    g.expires_at = 0;
    g.evidence = "line\nbreak";
    assert_int_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), BG_CONSENT_EINVAL);
    assert_null(strstr(err, "line\nbreak")); /* values are never echoed */
    g.evidence = NULL;
    g.recipient = "\xff\xfe";
    assert_int_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), BG_CONSENT_EINVAL);
    g.recipient = "acme";
    g.subject_len = 0;
    assert_int_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), BG_CONSENT_EINVAL);
    /* Withdrawal errors. */
    assert_int_equal(bg_consent_withdraw(reg, "c-0000000000000000", 0, "t", NULL, err, sizeof err),
                     BG_CONSENT_ENOENT);
    assert_int_equal(bg_consent_withdraw(reg, "nope", 0, "t", NULL, err, sizeof err),
                     BG_CONSENT_EINVAL);
    assert_int_equal(bg_consent_withdraw(reg, c.id, 1000, "t", NULL, err, sizeof err),
                     BG_CONSENT_EINVAL); /* before the grant */
    assert_int_equal(bg_consent_count(reg), 1);
    bg_consent_close(reg);
}

/* ------------------------------------------------------------------------
 * Time: withdrawal, expiry
 * ------------------------------------------------------------------------ */

static void test_withdrawal_effective_at_its_time(void **state)
{
    (void)state;
    char path[600], id[32], err[512];
    bg_consent_match_t m;
    bg_consent_t c;
    new_path(path, sizeof path, "withdraw");
    bg_consent_reg_t *reg = open_reg(path);
    grant(reg, "13800138000", "acme-us", "marketing", "US", 0, 0, T0, 0, id);
    int64_t w = T0 + 10 * DAY;
    assert_int_equal(bg_consent_withdraw(reg, id, w, "test", &c, err, sizeof err), 0);
    assert_true(c.withdrawn_at == w);
    assert_string_equal(c.withdrawn_by, "test");

    /* Before the withdrawal the consent still counts: past decisions stay
     * explained. From the withdrawal on it does not. */
    assert_int_equal(find(reg, "13800138000", "acme-us", "marketing", "US", 0, 0, w - 1, &m), 1);
    assert_string_equal(m.consent.id, id);
    assert_int_equal(find(reg, "13800138000", "acme-us", "marketing", "US", 0, 0, w, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_WITHDRAWN);
    assert_string_equal(m.miss_id, id);
    assert_int_equal(find(reg, "13800138000", "acme-us", "marketing", "US", 0, 0, w + DAY, &m), 0);
    assert_string_equal(bg_consent_status(&c, w - 1), "valid");
    assert_string_equal(bg_consent_status(&c, w), "withdrawn");

    /* Twice is refused, and says when. */
    assert_int_equal(bg_consent_withdraw(reg, id, 0, "test", NULL, err, sizeof err),
                     BG_CONSENT_EALREADY);
    assert_non_null(strstr(err, "2026-05-11T00:00:00.000Z"));

    /* Not yet granted. */
    char later[32];
    grant(reg, "S2", "acme-us", "marketing", "US", 0, 0, T0 + DAY, 0, later);
    assert_int_equal(find(reg, "S2", "acme-us", "marketing", "US", 0, 0, T0, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_NOT_YET);

    /* A withdrawal "now" applies to the next look-up. */
    char now_id[32];
    grant(reg, "S3", "acme-us", "marketing", "US", 0, 0, 0, 0, now_id);
    assert_int_equal(find(reg, "S3", "acme-us", "marketing", "US", 0, 0, now_ms(), &m), 1);
    assert_int_equal(bg_consent_withdraw(reg, now_id, 0, "test", NULL, err, sizeof err), 0);
    assert_int_equal(find(reg, "S3", "acme-us", "marketing", "US", 0, 0, now_ms(), &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_WITHDRAWN);
    bg_consent_close(reg);
}

static void test_expiry(void **state)
{
    (void)state;
    char path[600], id[32];
    bg_consent_match_t m;
    new_path(path, sizeof path, "expiry");
    bg_consent_reg_t *reg = open_reg(path);
    int64_t exp = T0 + 30 * DAY;
    grant(reg, "13800138000", "acme-us", "*", "US", 0, 0, T0, exp, id);
    assert_int_equal(find(reg, "13800138000", "acme-us", "support", "US", 0, 0, exp - 1, &m), 1);
    assert_true(m.consent.expires_at == exp);
    assert_int_equal(find(reg, "13800138000", "acme-us", "support", "US", 0, 0, exp, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_EXPIRED);
    assert_string_equal(m.miss_id, id);
    assert_string_equal(bg_consent_miss_name(m.miss), "expired");
    /* A fresh consent after expiry counts again. */
    char renewed[32];
    grant(reg, "13800138000", "acme-us", "*", "US", 0, 0, exp + HOUR, 0, renewed);
    assert_int_equal(find(reg, "13800138000", "acme-us", "support", "US", 0, 0, exp + DAY, &m), 1);
    assert_string_equal(m.consent.id, renewed);
    bg_consent_close(reg);
}

/* ------------------------------------------------------------------------
 * Persistence, compaction, damaged journals
 * ------------------------------------------------------------------------ */

static void test_restart_persistence(void **state)
{
    (void)state;
    char path[600], a[32], b[32], c[32], err[512];
    bg_consent_match_t m;
    new_path(path, sizeof path, "restart");
    bg_consent_reg_t *reg = open_reg(path);
    grant(reg, "13800138000", "acme-us", "marketing", "US", 1, 0, T0, T0 + 90 * DAY, a);
    grant(reg, "13800138000", "acme-hk", "support", "HK", 0, 0, T0, 0, b);
    grant(reg, "user-2", "*", "analytics", "*", 0, 1, T0, 0, c);
    assert_int_equal(bg_consent_withdraw(reg, b, T0 + DAY, "test", NULL, err, sizeof err), 0);
    bg_consent_close(reg);

    reg = open_reg(path);
    assert_int_equal(bg_consent_count(reg), 3);
    assert_int_equal(find(reg, "13800138000", "acme-us", "marketing", "US", 1, 0, T0 + HOUR, &m),
                     1);
    assert_string_equal(m.consent.id, a);
    assert_int_equal(m.consent.sensitive, 1);
    assert_true(m.consent.expires_at == T0 + 90 * DAY);
    assert_int_equal(find(reg, "13800138000", "acme-hk", "support", "HK", 0, 0, T0 + HOUR, &m), 1);
    assert_int_equal(find(reg, "13800138000", "acme-hk", "support", "HK", 0, 0, T0 + DAY, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_WITHDRAWN);
    assert_int_equal(find(reg, "user-2", "x", "analytics", "FR", 0, 1, T0 + HOUR, &m), 1);
    assert_string_equal(m.consent.id, c);
    /* Changes keep working after a restart. */
    assert_int_equal(bg_consent_withdraw(reg, a, T0 + 2 * DAY, "test", NULL, err, sizeof err), 0);
    bg_consent_close(reg);
    reg = open_reg(path);
    assert_int_equal(find(reg, "13800138000", "acme-us", "marketing", "US", 1, 0, T0 + 3 * DAY, &m),
                     0);
    bg_consent_close(reg);

    /* The journal is private to its owner. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_wrong_key_refused(void **state)
{
    (void)state;
    char path[600], err[512];
    new_path(path, sizeof path, "wrongkey");
    bg_consent_reg_t *reg = open_reg(path);
    grant(reg, "13800138000", "acme-us", "marketing", "US", 0, 0, T0, 0, NULL);
    bg_consent_close(reg);
    bg_consent_options_t o = {0};
    reg = bg_consent_open(path, OTHER_KEY, sizeof OTHER_KEY, &o, NULL, err, sizeof err);
    assert_null(reg);
    assert_non_null(strstr(err, ":1: journal was written with another subject key"));
    /* Without a key: listing and withdrawing work, granting does not. */
    reg = bg_consent_open(path, NULL, 0, &o, NULL, err, sizeof err);
    assert_non_null(reg);
    assert_int_equal(bg_consent_count(reg), 1);
    bg_consent_grant_t g = {.subject = "x",
                            .subject_len = 1,
                            .recipient = "a",
                            .purpose = "b",
                            .region = "*",
                            .recorded_by = "t"};
    assert_int_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), BG_CONSENT_EKEY);
    bg_consent_match_t m;
    assert_int_equal(find(reg, "13800138000", "acme-us", "marketing", "US", 0, 0, T0 + 1, &m), -1);
    assert_int_equal(m.miss, BG_CONSENT_MISS_UNAVAILABLE);
    bg_consent_close(reg);
}

static void test_raw_ids_never_on_disk(void **state)
{
    (void)state;
    char path[600], err[512], id[32];
    size_t len;
    const char *subjects[] = {"13800138000", "110101200001011234", "zhang.san@example.cn",
                              "用户-张三"};
    new_path(path, sizeof path, "raw");
    bg_consent_reg_t *reg = open_reg(path);
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++)
        grant(reg, subjects[i], "acme-us", "marketing", "US", 1, 0, T0, 0, id);
    assert_int_equal(bg_consent_withdraw(reg, id, 0, "test", NULL, err, sizeof err), 0);
    assert_int_equal(bg_consent_compact(reg, err, sizeof err), 0);
    grant(reg, subjects[0], "acme-jp", "support", "JP", 0, 0, T0, 0, NULL);
    bg_consent_close(reg);

    char *text = slurp(path, &len);
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        assert_null(memmem(text, len, subjects[i], strlen(subjects[i])));
        /* ... but its pseudonym is there. */
        uint8_t p[32];
        char hex[65];
        reg = open_reg(path);
        assert_int_equal(bg_consent_pseudonymize(reg, subjects[i], strlen(subjects[i]), p), 0);
        bg_consent_close(reg);
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", p[k]);
        assert_non_null(memmem(text, len, hex, 64));
    }
    /* Nothing shorter either: the first 7 digits of the phone number. */
    assert_null(memmem(text, len, "1380013", 7));
    free(text);
}

static void test_compaction(void **state)
{
    (void)state;
    char path[600], err[512], keep[32], gone[32];
    char ids[60][32];
    bg_consent_match_t m;
    new_path(path, sizeof path, "compact");
    /* Compact once lines exceed 1.3 x consents, with >= 20 lines to gain. */
    bg_consent_options_t o = {.create = 1, .compact_ratio = 1.3, .compact_min_lines = 20};
    bg_consent_reg_t *reg = open_with(path, &o, KEY);
    /* Ended long ago: dropped by compaction (retention 3 years). */
    grant(reg, "old", "acme-us", "marketing", "US", 0, 0, T0 - 5 * 365 * DAY, T0 - 4 * 365 * DAY,
          gone);
    grant(reg, "keeper", "acme-us", "marketing", "US", 1, 1, T0, 0, keep);
    for (int i = 0; i < 60; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "user-%d", i);
        grant(reg, subj, "acme-us", "marketing", "US", 0, 0, T0, 0, ids[i]);
    }
    off_t before = 0;
    int compacted_at = -1;
    for (int i = 0; i < 30; i++) {
        before = file_size(path);
        assert_int_equal(bg_consent_withdraw(reg, ids[i], T0 + DAY, "test", NULL, err, sizeof err),
                         0);
        if (compacted_at < 0 && file_size(path) < before)
            compacted_at = i;
    }
    /* 62 grants + 19 withdrawals = 81 lines > 1.3 x 62: the 20th
     * withdrawal's write compacted by itself. */
    assert_int_equal(compacted_at, 19);
    assert_int_equal(bg_consent_count(reg), 61); /* the long-ended one is gone */
    assert_int_equal(bg_consent_get(reg, gone, &m.consent), BG_CONSENT_ENOENT);

    /* Explicit compaction: one line per consent, withdrawals folded in. */
    off_t pre = file_size(path);
    assert_int_equal(bg_consent_compact(reg, err, sizeof err), 0);
    assert_true(file_size(path) <= pre);
    size_t len;
    char *text = slurp(path, &len);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    assert_int_equal(lines, 1 + 61);
    assert_null(strstr(text, "\"op\":\"withdraw\""));
    free(text);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.compact", path);
    assert_int_equal(access(tmp, F_OK), -1);

    /* State survives, in this handle and after a restart. */
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(find(reg, "keeper", "acme-us", "marketing", "US", 1, 1, T0 + 2 * DAY, &m),
                         1);
        assert_string_equal(m.consent.id, keep);
        assert_string_equal(m.consent.evidence, "app-consent-record-7781");
        assert_int_equal(find(reg, "user-3", "acme-us", "marketing", "US", 0, 0, T0 + HOUR, &m), 1);
        assert_int_equal(find(reg, "user-3", "acme-us", "marketing", "US", 0, 0, T0 + 2 * DAY, &m),
                         0);
        assert_int_equal(m.miss, BG_CONSENT_MISS_WITHDRAWN);
        assert_int_equal(find(reg, "user-45", "acme-us", "marketing", "US", 0, 0, T0 + 2 * DAY, &m),
                         1);
        assert_int_equal(bg_consent_get(reg, ids[3], &m.consent), 0);
        assert_string_equal(m.consent.withdrawn_by, "test");
        bg_consent_close(reg);
        reg = open_with(path, &o, KEY);
    }
    /* And the compacted journal takes new changes. */
    assert_int_equal(bg_consent_withdraw(reg, ids[45], T0 + DAY, "test", NULL, err, sizeof err), 0);
    assert_int_equal(bg_consent_withdraw(reg, ids[3], T0 + DAY, "test", NULL, err, sizeof err),
                     BG_CONSENT_EALREADY);
    bg_consent_close(reg);
}

static void test_torn_last_line(void **state)
{
    (void)state;
    char path[600], err[512];
    size_t len;
    char *text = make_journal(path, sizeof path, "torn", 5, &len);
    /* A crash in mid-write leaves the start of a line without its newline. */
    const char *half = "{\"op\":\"grant\",\"id\":\"c-00112233445566";
    spit(path, half, strlen(half), 1);

    char *warning = NULL;
    bg_consent_options_t o = {0};
    bg_consent_reg_t *reg = bg_consent_open(path, KEY, 32, &o, &warning, err, sizeof err);
    assert_non_null(reg);
    assert_non_null(warning);
    char expect[700];
    snprintf(expect, sizeof expect, "%s:7: the last line is incomplete", path);
    assert_non_null(strstr(warning, expect));
    assert_non_null(strstr(warning, "5 consents"));
    free(warning);
    assert_int_equal(bg_consent_count(reg), 5);
    bg_consent_match_t m;
    assert_int_equal(find(reg, "user-4", "acme-us", "marketing", "US", 0, 0, T0 + 1, &m), 1);

    /* A read-only handle reports it and leaves the file alone. */
    bg_consent_options_t ro = {.readonly = 1};
    bg_consent_reg_t *r2 = bg_consent_open(path, KEY, 32, &ro, &warning, err, sizeof err);
    assert_non_null(r2);
    assert_non_null(warning);
    free(warning);
    assert_int_equal(bg_consent_withdraw(r2, m.consent.id, 0, "t", NULL, err, sizeof err),
                     BG_CONSENT_EREADONLY);
    bg_consent_close(r2);
    assert_int_equal(file_size(path), (off_t)(len + strlen(half)));

    /* The next change repairs it: the tear is cut, the line appended. */
    grant(reg, "user-5", "acme-us", "marketing", "US", 0, 0, T0, 0, NULL);
    bg_consent_close(reg);
    size_t len2;
    char *text2 = slurp(path, &len2);
    assert_null(strstr(text2, half + 20));
    assert_memory_equal(text2, text, len);
    assert_true(text2[len2 - 1] == '\n');
    assert_int_equal(bg_consent_journal_check(text2, len2, "x", NULL, NULL, err, sizeof err), 6);
    free(text2);
    free(text);

    reg = bg_consent_open(path, KEY, 32, &o, &warning, err, sizeof err);
    assert_non_null(reg);
    assert_null(warning);
    assert_int_equal(bg_consent_count(reg), 6);
    bg_consent_close(reg);

    /* A tear in the very first line (crash while creating the journal). */
    char p2[600];
    new_path(p2, sizeof p2, "torn-header");
    spit(p2, "{\"op\":\"jour", 11, 0);
    o.create = 1;
    reg = bg_consent_open(p2, KEY, 32, &o, &warning, err, sizeof err);
    assert_non_null(reg);
    assert_non_null(warning);
    assert_non_null(strstr(warning, ":1: the last line is incomplete"));
    free(warning);
    grant(reg, "u", "acme-us", "marketing", "US", 0, 0, T0, 0, NULL);
    bg_consent_close(reg);
    reg = open_with(p2, &o, KEY);
    assert_int_equal(bg_consent_count(reg), 1);
    bg_consent_close(reg);
}

/* Replace line LINE (1-based) of the journal at PATH with REPLACEMENT. */
static void replace_line(const char *path, const char *orig, size_t len, int line,
                         const char *replacement)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    int cur = 1;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (orig[i] != '\n')
            continue;
        if (cur == line)
            assert_int_equal(write(fd, replacement, strlen(replacement)),
                             (ssize_t)strlen(replacement));
        else
            assert_int_equal(write(fd, orig + start, i - start), (ssize_t)(i - start));
        assert_int_equal(write(fd, "\n", 1), 1);
        start = i + 1;
        cur++;
    }
    close(fd);
}

static void test_corrupt_middle_line(void **state)
{
    (void)state;
    char path[600], err[512], expect[700];
    size_t len;
    char *text = make_journal(path, sizeof path, "corrupt", 5, &len);
    struct {
        int line;
        const char *text;
        const char *why;
    } cases[] = {
        {3, "{\"op\":\"grant\",\"id\":", "not valid JSON"},
        {3, "garbage 13800138000", "not valid JSON"},
        {4, "[1,2]", "not a JSON object"},
        {2, "{\"op\":\"delete\",\"id\":\"c-0011223344556677\"}", "unknown \"op\""},
        {3,
         "{\"op\":\"withdraw\",\"id\":\"c-0011223344556677\",\"at\":\"2026-05-02T00:00:00Z\","
         "\"by\":\"x\"}",
         "never granted"},
        {5, "{\"op\":\"withdraw\",\"id\":\"c-0011223344556677\",\"at\":\"yesterday\",\"by\":\"x\"}",
         "RFC 3339"},
        {4, "{\"op\":\"grant\",\"phone\":\"13800138000\"}", "unknown field \"phone\""},
        {1,
         "{\"op\":\"journal\",\"format\":\"bordergate-consent\",\"version\":2,"
         "\"key_check\":\"0000000000000000\",\"created_at\":\"2026-05-01T00:00:00Z\"}",
         "version"},
        {2,
         "{\"op\":\"journal\",\"format\":\"bordergate-consent\",\"version\":1,"
         "\"key_check\":\"0000000000000000\",\"created_at\":\"2026-05-01T00:00:00Z\"}",
         "header in the middle"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        replace_line(path, text, len, cases[i].line, cases[i].text);
        bg_consent_options_t o = {0};
        bg_consent_reg_t *reg = bg_consent_open(path, KEY, 32, &o, NULL, err, sizeof err);
        if (reg != NULL)
            fail_msg("case %zu opened", i);
        snprintf(expect, sizeof expect, "%s:%d: ", path, cases[i].line);
        if (strstr(err, expect) == NULL || strstr(err, cases[i].why) == NULL)
            fail_msg("case %zu: %s", i, err);
        /* Never a value from the file in the message. */
        assert_null(strstr(err, "13800138000"));
        assert_null(strstr(err, "garbage"));
    }
    /* A grant repeated (e.g. a bad merge) names the second copy. */
    size_t first_nl = strcspn(text, "\n");
    size_t second_nl = first_nl + 1 + strcspn(text + first_nl + 1, "\n");
    char dup[4096];
    snprintf(dup, sizeof dup, "%.*s", (int)(second_nl - first_nl - 1), text + first_nl + 1);
    replace_line(path, text, len, 5, dup);
    bg_consent_options_t o = {0};
    assert_null(bg_consent_open(path, KEY, 32, &o, NULL, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:5: consent c-", path);
    assert_non_null(strstr(err, expect));
    assert_non_null(strstr(err, "granted twice"));
    /* A file that is not a journal at all. */
    spit(path, "hello\n", 6, 0);
    assert_null(bg_consent_open(path, KEY, 32, &o, NULL, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:1: not valid JSON", path);
    assert_non_null(strstr(err, expect));
    spit(path, text + first_nl + 1, len - first_nl - 1, 0);
    assert_null(bg_consent_open(path, KEY, 32, &o, NULL, err, sizeof err));
    assert_non_null(strstr(err, ":1: no journal header"));
    free(text);
}

/* ------------------------------------------------------------------------
 * Concurrency
 * ------------------------------------------------------------------------ */

typedef struct {
    bg_consent_reg_t *reg;
    atomic_int *stop;
    atomic_int *withdrawn; /* set once the withdrawal has returned */
    long finds;
    long stale;  /* found the consent although the withdrawal had returned */
    long errors; /* -1 or wrong answer before the withdrawal */
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    bg_consent_match_t m;
    while (!atomic_load(r->stop)) {
        int w = atomic_load(r->withdrawn);
        int rc = find(r->reg, "hot-subject", "acme-us", "marketing", "US", 1, 0, now_ms(), &m);
        if (rc < 0)
            r->errors++;
        else if (w && rc == 1)
            r->stale++;
        else if (rc == 1 && strcmp(m.consent.evidence, "app-consent-record-7781") != 0)
            r->errors++;
        /* Other subjects, some of which are being granted right now. */
        char subj[32];
        snprintf(subj, sizeof subj, "bulk-%ld", r->finds % 500);
        if (find(r->reg, subj, "acme-us", "marketing", "US", 0, 0, now_ms(), &m) < 0)
            r->errors++;
        r->finds++;
    }
    return NULL;
}

static void test_concurrent_readers_see_withdrawal(void **state)
{
    (void)state;
    enum { NREADERS = 4 };
    char path[600], id[32], err[512];
    new_path(path, sizeof path, "threads");
    bg_consent_options_t o = {.create = 1, .compact_ratio = 1.2, .compact_min_lines = 50};
    bg_consent_reg_t *reg = open_with(path, &o, KEY);
    grant(reg, "hot-subject", "acme-us", "marketing", "US", 1, 0, T0, 0, id);

    atomic_int stop = 0, withdrawn = 0;
    pthread_t t[NREADERS];
    reader_t r[NREADERS];
    for (int i = 0; i < NREADERS; i++) {
        r[i] = (reader_t){.reg = reg, .stop = &stop, .withdrawn = &withdrawn};
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    /* Writes that grow and rehash the tables and trigger compactions while
     * the readers probe them. */
    char bulk[300][32];
    for (int i = 0; i < 300; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "bulk-%d", i);
        grant(reg, subj, "acme-us", "marketing", "US", 0, 0, T0, 0, bulk[i]);
        if (i % 2 == 1)
            assert_int_equal(bg_consent_withdraw(reg, bulk[i - 1], 0, "t", NULL, err, sizeof err),
                             0);
    }
    sleep_ms(50);
    assert_int_equal(bg_consent_withdraw(reg, id, 0, "test", NULL, err, sizeof err), 0);
    atomic_store(&withdrawn, 1);
    sleep_ms(200);
    atomic_store(&stop, 1);
    long finds = 0;
    for (int i = 0; i < NREADERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].errors, 0);
        assert_int_equal(r[i].stale, 0);
        assert_true(r[i].finds > 0);
        finds += r[i].finds;
    }
    printf("# %ld look-up pairs by %d threads during 450 changes\n", finds, NREADERS);
    bg_consent_close(reg);

    reg = open_with(path, &o, KEY);
    assert_int_equal(bg_consent_count(reg), 301);
    bg_consent_close(reg);
}

/* Run FN(ARG) in a child process (as the CLI would be); its exit status. */
static int in_child(int (*fn)(const char *), const char *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static char g_child_id[32];

static int child_withdraw(const char *path)
{
    char err[512];
    bg_consent_options_t o = {.check_interval_ms = -1};
    bg_consent_reg_t *reg = bg_consent_open(path, NULL, 0, &o, NULL, err, sizeof err);
    if (reg == NULL)
        return 1;
    int rc = bg_consent_withdraw(reg, g_child_id, 0, "cli:child", NULL, err, sizeof err);
    bg_consent_close(reg);
    return rc == 0 ? 0 : 2;
}

static int child_grant_and_compact(const char *path)
{
    char err[512];
    bg_consent_options_t o = {.check_interval_ms = -1};
    bg_consent_reg_t *reg = bg_consent_open(path, KEY, 32, &o, NULL, err, sizeof err);
    if (reg == NULL)
        return 1;
    bg_consent_grant_t g = {.subject = "late",
                            .subject_len = 4,
                            .recipient = "acme-us",
                            .purpose = "*",
                            .region = "US",
                            .granted_at = T0,
                            .recorded_by = "c"};
    int rc = bg_consent_grant(reg, &g, NULL, err, sizeof err);
    if (rc == 0)
        rc = bg_consent_withdraw(reg, g_child_id, 0, "cli:child", NULL, err, sizeof err);
    if (rc == 0)
        rc = bg_consent_compact(reg, err, sizeof err);
    bg_consent_close(reg);
    return rc == 0 ? 0 : 2;
}

/* Milliseconds until SUBJECT's consent stops counting in REG (polling). */
static long wait_until_gone(bg_consent_reg_t *reg, const char *subject, long limit_ms)
{
    uint64_t start = bg_util_mono_us();
    bg_consent_match_t m;
    for (;;) {
        long el = (long)((bg_util_mono_us() - start) / 1000);
        if (find(reg, subject, "acme-us", "marketing", "US", 0, 0, now_ms(), &m) == 0)
            return el;
        if (el > limit_ms)
            return -1;
        sleep_ms(5);
    }
}

static void test_external_change_picked_up(void **state)
{
    (void)state;
    char path[600];
    new_path(path, sizeof path, "external");
    /* The daemon's handle with the default check interval (1 s). */
    bg_consent_reg_t *reg = open_reg(path);
    grant(reg, "cli-subject", "acme-us", "marketing", "US", 0, 0, T0, 0, g_child_id);
    bg_consent_match_t m;
    assert_int_equal(find(reg, "cli-subject", "acme-us", "marketing", "US", 0, 0, now_ms(), &m), 1);

    /* Another process withdraws (what `bordergate consent withdraw` does). */
    assert_int_equal(in_child(child_withdraw, path), 0);
    long ms = wait_until_gone(reg, "cli-subject", 3000);
    printf("# withdrawal by another process seen after %ld ms (bound 1000 ms + read)\n", ms);
    /* 1000 ms interval + reading one line; the rest is slack for a loaded
     * machine's scheduler, not for the registry. */
    assert_true(ms >= 0 && ms <= 1500);
    assert_int_equal(find(reg, "cli-subject", "acme-us", "marketing", "US", 0, 0, now_ms(), &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_WITHDRAWN);
    bg_consent_close(reg);

    /* Another process grants, withdraws and compacts (new inode): the
     * handle follows the rename and keeps the full state. */
    new_path(path, sizeof path, "external-compact");
    bg_consent_options_t o = {.create = 1, .check_interval_ms = 100};
    reg = open_with(path, &o, KEY);
    grant(reg, "cli-subject", "acme-us", "marketing", "US", 0, 0, T0, 0, g_child_id);
    grant(reg, "stays", "acme-us", "marketing", "US", 0, 0, T0, 0, NULL);
    assert_int_equal(in_child(child_grant_and_compact, path), 0);
    ms = wait_until_gone(reg, "cli-subject", 3000);
    printf("# withdrawal + compaction by another process seen after %ld ms (bound 100 ms)\n", ms);
    assert_true(ms >= 0 && ms <= 600);
    sleep_ms(150);
    assert_int_equal(find(reg, "late", "acme-us", "anything", "US", 0, 0, T0 + 1, &m), 1);
    assert_int_equal(find(reg, "stays", "acme-us", "marketing", "US", 0, 0, T0 + 1, &m), 1);
    assert_int_equal(bg_consent_count(reg), 3);
    /* and can still write to the new file */
    grant(reg, "after", "acme-us", "marketing", "US", 0, 0, T0, 0, NULL);
    bg_consent_close(reg);
    reg = open_reg(path);
    assert_int_equal(bg_consent_count(reg), 4);
    bg_consent_close(reg);
}

static int child_grant_many(const char *path)
{
    char err[512];
    bg_consent_options_t o = {
        .create = 1, .check_interval_ms = -1, .compact_ratio = 1.1, .compact_min_lines = 5};
    bg_consent_reg_t *reg = bg_consent_open(path, KEY, 32, &o, NULL, err, sizeof err);
    if (reg == NULL)
        return 1;
    for (int i = 0; i < 40; i++) {
        char subj[32];
        bg_consent_t c;
        snprintf(subj, sizeof subj, "p%d-%d", (int)getpid(), i);
        bg_consent_grant_t g = {.subject = subj,
                                .subject_len = strlen(subj),
                                .recipient = "r",
                                .purpose = "p",
                                .region = "US",
                                .granted_at = T0,
                                .recorded_by = "c"};
        if (bg_consent_grant(reg, &g, &c, err, sizeof err) != 0)
            return 2;
        /* Every other one withdrawn: compactions happen along the way. */
        if (i % 2 == 0 && bg_consent_withdraw(reg, c.id, T0 + 1, "c", NULL, err, sizeof err) != 0)
            return 3;
    }
    bg_consent_close(reg);
    return 0;
}

static void test_concurrent_writer_processes(void **state)
{
    (void)state;
    enum { NPROC = 3 };
    char path[600], err[512];
    new_path(path, sizeof path, "multiproc");
    bg_consent_reg_t *reg = open_reg(path);
    bg_consent_close(reg);
    fflush(NULL);
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(child_grant_many(path));
    }
    for (int i = 0; i < NPROC; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    size_t len;
    char *text = slurp(path, &len);
    assert_int_equal(bg_consent_journal_check(text, len, path, NULL, NULL, err, sizeof err),
                     NPROC * 40);
    free(text);
    reg = open_reg(path);
    bg_consent_match_t m;
    assert_int_equal(bg_consent_count(reg), NPROC * 40);
    char subj[32];
    snprintf(subj, sizeof subj, "p%d-1", (int)pids[1]);
    assert_int_equal(find(reg, subj, "r", "p", "US", 0, 0, T0 + 5, &m), 1);
    snprintf(subj, sizeof subj, "p%d-2", (int)pids[1]);
    assert_int_equal(find(reg, subj, "r", "p", "US", 0, 0, T0 + 5, &m), 0);
    assert_int_equal(m.miss, BG_CONSENT_MISS_WITHDRAWN);
    bg_consent_close(reg);
}

static void test_outside_corruption_fails_closed(void **state)
{
    (void)state;
    char path[600], err[512], buf[512];
    bg_consent_match_t m;
    new_path(path, sizeof path, "failclosed");
    bg_consent_options_t o = {.create = 1, .check_interval_ms = -1};
    bg_consent_reg_t *reg = open_with(path, &o, KEY);
    grant(reg, "s", "acme-us", "marketing", "US", 0, 0, T0, 0, NULL);
    off_t good = file_size(path);
    /* Someone appends a complete but corrupt line (a bad hand edit). */
    spit(path, "{\"op\":\"withdraw\"}\n", 18, 1);
    assert_int_equal(bg_consent_refresh(reg, err, sizeof err), BG_CONSENT_ECORRUPT);
    assert_non_null(strstr(err, ":3: "));
    /* The registry no longer knows what is withdrawn: no consent counts. */
    assert_int_equal(find(reg, "s", "acme-us", "marketing", "US", 0, 0, T0 + 1, &m), -1);
    assert_int_equal(m.miss, BG_CONSENT_MISS_UNAVAILABLE);
    assert_int_equal(bg_consent_health(reg, buf, sizeof buf), -1);
    assert_non_null(strstr(buf, ":3: "));
    /* Nor does it write on top of it. */
    bg_consent_grant_t g = {.subject = "t",
                            .subject_len = 1,
                            .recipient = "a",
                            .purpose = "b",
                            .region = "US",
                            .recorded_by = "t"};
    assert_int_equal(bg_consent_grant(reg, &g, NULL, err, sizeof err), BG_CONSENT_ECORRUPT);
    /* Fixed: back in service. */
    assert_int_equal(truncate(path, good), 0);
    assert_int_equal(bg_consent_refresh(reg, err, sizeof err), 0);
    assert_int_equal(find(reg, "s", "acme-us", "marketing", "US", 0, 0, T0 + 1, &m), 1);
    assert_int_equal(bg_consent_health(reg, buf, sizeof buf), 0);
    /* The journal removed under it: fail closed too. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(bg_consent_refresh(reg, err, sizeof err), BG_CONSENT_ERR);
    assert_int_equal(find(reg, "s", "acme-us", "marketing", "US", 0, 0, T0 + 1, &m), -1);
    bg_consent_close(reg);
}

/* ------------------------------------------------------------------------
 * CLI and admin API
 * ------------------------------------------------------------------------ */

static char g_cli_out[700];
static char g_cli_in[700];
static char **g_cli_argv;

static int child_cli(const char *unused)
{
    (void)unused;
    int fd = open(g_cli_out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = open(g_cli_in, O_RDONLY);
    if (fd < 0 || in < 0)
        return 98;
    dup2(fd, 1);
    dup2(in, 0);
    int argc = 0;
    while (g_cli_argv[argc] != NULL)
        argc++;
    int rc = bg_consent_cli(argc, g_cli_argv);
    fflush(stdout);
    return rc;
}

#define END ((const char *)NULL) /* ends cli()'s argument list */

/* Run `bordergate consent ARGS... END` in a child; stdout into OUT (malloc'd). */
static int cli(char **out, const char *stdin_text, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, stdin_text);
    argv[argc++] = "consent";
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 31;)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    g_cli_argv = argv;
    snprintf(g_cli_out, sizeof g_cli_out, "%s/cli.out", g_dir);
    snprintf(g_cli_in, sizeof g_cli_in, "%s/cli.in", g_dir);
    spit(g_cli_in, stdin_text != NULL ? stdin_text : "",
         stdin_text != NULL ? strlen(stdin_text) : 0, 0);
    int rc = in_child(child_cli, NULL);
    size_t len;
    *out = slurp(g_cli_out, &len);
    return rc;
}

static void test_cli(void **state)
{
    (void)state;
    char path[600], keyfile[600], cid[32], *out;
    new_path(path, sizeof path, "cli");
    snprintf(keyfile, sizeof keyfile, "%s/cli.key", g_dir);

    assert_int_equal(cli(&out, NULL, "keygen", keyfile, END), 0);
    free(out);
    assert_int_equal(cli(&out, NULL, "keygen", keyfile, END), 1); /* never overwrites */
    free(out);
    struct stat st;
    assert_int_equal(stat(keyfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* grant prints the new id */
    assert_int_equal(cli(&out, NULL, "grant", "--subject", "13800138000", "--recipient", "acme-us",
                         "--purpose", "marketing", "--region", "us", "--sensitive", "--expires",
                         "2030-01-01T00:00:00+08:00", "--evidence", "app-rec-1", "--registry", path,
                         "--key", keyfile, END),
                     0);
    assert_int_equal(strlen(out), 19);
    snprintf(cid, sizeof cid, "%.18s", out);
    free(out);
    /* the subject from stdin, --json output */
    assert_int_equal(cli(&out, "110101200001011234\n", "grant", "--subject", "-", "--recipient",
                         "*", "--purpose", "analytics", "--region=*", "--guardian", "--registry",
                         path, "--key", keyfile, "--json", END),
                     0);
    assert_non_null(strstr(out, "\"guardian\":true"));
    assert_non_null(strstr(out, "\"status\":\"valid\""));
    assert_non_null(strstr(out, "\"recorded_by\":\"cli:"));
    free(out);
    /* usage errors */
    assert_int_equal(
        cli(&out, NULL, "grant", "--subject", "x", "--registry", path, "--key", keyfile, END), 2);
    free(out);
    assert_int_equal(cli(&out, NULL, "grant", "--subject", "x", "--recipient", "*", "--purpose",
                         "*", "--region", "US", "--registry", path, "--key", keyfile, END),
                     2);
    free(out);
    assert_int_equal(cli(&out, NULL, "frobnicate", END), 2);
    free(out);

    /* show by raw id */
    assert_int_equal(cli(&out, NULL, "show", "--subject", "13800138000", "--registry", path,
                         "--key", keyfile, END),
                     0);
    assert_non_null(strstr(out, cid));
    assert_non_null(strstr(out, "valid"));
    assert_non_null(strstr(out, "2029-12-31T16:00:00.000Z"));
    assert_null(strstr(out, "13800138000"));
    free(out);

    /* withdraw, then show says so */
    assert_int_equal(cli(&out, NULL, "withdraw", "--id", cid, "--registry", path, END), 0);
    assert_non_null(strstr(out, "withdrawn"));
    free(out);
    assert_int_equal(cli(&out, NULL, "withdraw", "--id", cid, "--registry", path, END), 1);
    free(out);
    assert_int_equal(cli(&out, NULL, "show", "--subject", "13800138000", "--registry", path,
                         "--key", keyfile, "--json", END),
                     0);
    assert_non_null(strstr(out, "\"status\":\"withdrawn\""));
    free(out);

    /* list: all, JSON lines */
    assert_int_equal(cli(&out, NULL, "list", "--json", "--registry", path, END), 0);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    free(out);
    assert_int_equal(cli(&out, NULL, "list", "--registry", path, END), 0);
    assert_non_null(strstr(out, "ID"));
    assert_non_null(strstr(out, "withdrawn"));
    free(out);
    assert_int_equal(cli(&out, NULL, "verify", "--registry", path, END), 0);
    assert_non_null(strstr(out, "consent journal OK (2 consents)"));
    free(out);
    assert_int_equal(cli(&out, NULL, "compact", "--registry", path, "--key", keyfile, END), 0);
    free(out);

    /* The registry written by the CLI reads back in the library. */
    uint8_t key[64];
    char err[512];
    int kl = bg_consent_key_load(keyfile, key, sizeof key, NULL, 0, err, sizeof err);
    assert_int_equal(kl, 32);
    bg_consent_reg_t *reg = open_with(path, NULL, key);
    bg_consent_match_t m;
    assert_int_equal(find(reg, "110101200001011234", "any", "analytics", "FR", 0, 1, now_ms(), &m),
                     1);
    bg_consent_close(reg);

    /* Nothing raw on disk. */
    size_t len;
    char *text = slurp(path, &len);
    assert_null(memmem(text, len, "13800138000", 11));
    assert_null(memmem(text, len, "110101200001011234", 18));
    free(text);
}

static int admin(bg_consent_reg_t *reg, const char *method, const char *path, const char *body,
                 char **out)
{
    int status = 0;
    *out = NULL;
    int rc = bg_consent_admin(reg, method, path, body, body ? strlen(body) : 0, &status, out);
    if (rc != 0)
        return -1;
    assert_non_null(*out);
    json_error_t je;
    json_t *j = json_loads(*out, 0, &je);
    assert_non_null(j); /* always JSON */
    json_decref(j);
    return status;
}

static void test_admin_api(void **state)
{
    (void)state;
    char path[600], url[200], *out;
    new_path(path, sizeof path, "admin");
    bg_consent_reg_t *reg = open_reg(path);

    assert_int_equal(admin(reg, "GET", "/healthz", NULL, &out), -1);
    assert_null(out);
    assert_int_equal(admin(reg, "GET", "/consentsX", NULL, &out), -1);

    const char *body =
        "{\"subject\":\"+8613800138000\",\"recipient\":\"acme-us\",\"purpose\":"
        "\"marketing\",\"region\":\"US\",\"sensitive\":true,\"expires_at\":"
        "\"2030-01-01T00:00:00Z\",\"evidence\":\"app-rec-9\",\"recorded_by\":\"crm\"}";
    assert_int_equal(admin(reg, "POST", "/consents", body, &out), 201);
    json_t *j = json_loads(out, 0, NULL);
    char id[32];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    assert_string_equal(json_string_value(json_object_get(j, "recorded_by")), "api:crm");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "valid");
    assert_null(strstr(out, "8613800138000"));
    json_decref(j);
    free(out);

    bg_consent_match_t m;
    assert_int_equal(find(reg, "+8613800138000", "acme-us", "marketing", "US", 1, 0, now_ms(), &m),
                     1);
    assert_string_equal(m.consent.id, id);

    /* Lookups: query string (form-encoded: '+' must be %2B) and POST body. */
    assert_int_equal(admin(reg, "GET", "/consents?subject=%2B8613800138000", NULL, &out), 200);
    assert_non_null(strstr(out, id));
    free(out);
    assert_int_equal(admin(reg, "GET", "/consents?subject=+8613800138000", NULL, &out), 200);
    assert_null(strstr(out, id)); /* " 8613800138000": another subject */
    free(out);
    assert_int_equal(
        admin(reg, "POST", "/consents/lookup", "{\"subject\":\"+8613800138000\"}", &out), 200);
    assert_non_null(strstr(out, id));
    free(out);
    snprintf(url, sizeof url, "/consents/%s", id);
    assert_int_equal(admin(reg, "GET", url, NULL, &out), 200);
    assert_non_null(strstr(out, "app-rec-9"));
    free(out);

    /* Withdraw; again is 409; unknown id 404. */
    snprintf(url, sizeof url, "/consents/%s/withdraw", id);
    assert_int_equal(admin(reg, "POST", url, "", &out), 200);
    assert_non_null(strstr(out, "\"status\":\"withdrawn\""));
    free(out);
    assert_int_equal(find(reg, "+8613800138000", "acme-us", "marketing", "US", 1, 0, now_ms(), &m),
                     0);
    assert_int_equal(admin(reg, "POST", url, "{\"at\":\"2026-06-01T00:00:00Z\"}", &out), 409);
    free(out);
    assert_int_equal(admin(reg, "POST", "/consents/c-0123456789abcdef/withdraw", NULL, &out), 404);
    free(out);

    /* Bad requests: never echoing values. */
    assert_int_equal(admin(reg, "POST", "/consents", "{\"subject\":\"13900139000\"}", &out), 400);
    assert_null(strstr(out, "13900139000"));
    free(out);
    assert_int_equal(admin(reg, "POST", "/consents", "{\"subject\":\"1\",\"sensitve\":true}", &out),
                     400);
    assert_non_null(strstr(out, "sensitve"));
    free(out);
    assert_int_equal(admin(reg, "POST", "/consents", "{\"subject\":13900139000", &out), 400);
    assert_null(strstr(out, "13900139000"));
    free(out);
    assert_int_equal(admin(reg, "POST", "/consents",
                           "{\"subject\":\"1\",\"recipient\":\"a\",\"purpose\":\"b\",\"region\":"
                           "\"US\",\"expires_at\":\"soon\"}",
                           &out),
                     400);
    free(out);
    assert_int_equal(admin(reg, "GET", "/consents", NULL, &out), 400);
    free(out);
    assert_int_equal(admin(reg, "DELETE", "/consents", NULL, &out), 405);
    free(out);
    assert_int_equal(admin(reg, "GET", url, NULL, &out), 405);
    free(out);
    assert_int_equal(admin(reg, "GET", "/consents/nope", NULL, &out), 404);
    free(out);
    assert_int_equal(admin(reg, "GET", "/consents?subject=%zz", NULL, &out), 400);
    free(out);
    bg_consent_close(reg);
}

/* The fuzz target's invariant, on the journals made above. */
static void test_journal_roundtrip(void **state)
{
    (void)state;
    char path[600], err[512];
    size_t len, torn = 1;
    char *text = make_journal(path, sizeof path, "roundtrip", 4, &len);
    bg_consent_reg_t *reg = open_reg(path);
    char id[32];
    grant(reg, "w", "acme-us", "marketing", "US", 1, 1, T0, T0 + DAY, id);
    assert_int_equal(bg_consent_withdraw(reg, id, T0 + HOUR, "t", NULL, err, sizeof err), 0);
    bg_consent_close(reg);
    free(text);
    text = slurp(path, &len);
    char *rt = NULL;
    assert_int_equal(bg_consent_journal_check(text, len, "j", &torn, &rt, err, sizeof err), 5);
    assert_int_equal(torn, 0);
    assert_non_null(rt);
    char *rt2 = NULL;
    assert_int_equal(bg_consent_journal_check(rt, strlen(rt), "rt", NULL, &rt2, err, sizeof err),
                     5);
    assert_string_equal(rt, rt2);
    assert_non_null(strstr(rt, "\"withdrawn_at\":\"2026-05-01T01:00:00.000Z\""));
    free(rt);
    free(rt2);
    free(text);
}

/* ------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("BG_BUILD_DIR");
    snprintf(g_dir, sizeof g_dir, "%s/test-consent-XXXXXX",
             (base != NULL && base[0] != '\0') ? base : "/tmp");
    if (mkdtemp(g_dir) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", g_dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    if (getenv("BG_KEEP_TEST_FILES") == NULL) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", g_dir);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pseudonym_is_hmac_sha256),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_grant_then_find),
        cmocka_unit_test(test_scope_matching),
        cmocka_unit_test(test_invalid_grants),
        cmocka_unit_test(test_withdrawal_effective_at_its_time),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_restart_persistence),
        cmocka_unit_test(test_wrong_key_refused),
        cmocka_unit_test(test_raw_ids_never_on_disk),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_torn_last_line),
        cmocka_unit_test(test_corrupt_middle_line),
        cmocka_unit_test(test_concurrent_readers_see_withdrawal),
        cmocka_unit_test(test_external_change_picked_up),
        cmocka_unit_test(test_concurrent_writer_processes),
        cmocka_unit_test(test_outside_corruption_fails_closed),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_admin_api),
        cmocka_unit_test(test_journal_roundtrip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
