/*
 * Content detectors (inspect/detect): valid and invalid vectors for every
 * detector, bypass attempts (full-width, separators, zero-width and Unicode
 * spaces), spans against the original bytes, key-name analysis, long
 * values across normalization windows, and the false-positive corpus
 * tests/data/false_positives.txt.
 *
 * Check characters of constructed numbers are computed here with code
 * written independently of detect.c (the HK check, for instance, pads a
 * single letter with 58 where detect.c uses 36: equal modulo 11).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/detect.h"

/* Birth dates are judged against this day, so the vectors do not age. */
#define TODAY 20250601u
static const bg_detect_opts_t OPTS = {0, TODAY};

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

#define MAXF 16

static size_t scan(const char *key, const char *v, bg_detect_finding_t *f)
{
    return bg_detect_value(&OPTS, key, key ? strlen(key) : 0, v, strlen(v), f, MAXF);
}

static void dump(const char *key, const char *v, const bg_detect_finding_t *f, size_t n)
{
    print_error("  key=%s value=\"%s\": %zu finding(s)\n", key ? key : "(none)", v, n);
    for (size_t i = 0; i < n && i < MAXF; i++)
        print_error("    %s by %s, %s, bytes %zu+%zu, also %s, flags 0x%x\n",
                    bg_detect_category_id(f[i].category), bg_detect_detector_name(f[i].detector),
                    bg_detect_confidence_name(f[i].confidence), f[i].offset, f[i].length,
                    f[i].also ? bg_detect_category_id(f[i].also) : "-", f[i].flags);
}

/*
 * One vector. CAT NULL: no finding at all. Otherwise exactly one finding of
 * that category; CONF 0 = any confidence; OFF < 0 = the whole value, else
 * the span OFF+LEN in bytes of V.
 */
typedef struct {
    const char *key;
    const char *v;
    const char *cat;
    int conf;
    int off, len;
} vec_t;

#define ANY 0
#define LOW BG_CONF_LOW
#define MED BG_CONF_MEDIUM
#define HIGH BG_CONF_HIGH
#define WHOLE -1, 0

static int check_vec(const vec_t *t)
{
    bg_detect_finding_t f[MAXF];
    size_t n = scan(t->key, t->v, f);
    int ok;
    if (t->cat == NULL) {
        ok = n == 0;
    } else {
        size_t off = t->off < 0 ? 0 : (size_t)t->off;
        size_t len = t->off < 0 ? strlen(t->v) : (size_t)t->len;
        ok = n == 1 && strcmp(bg_detect_category_id(f[0].category), t->cat) == 0 &&
             (t->conf == ANY || (int)f[0].confidence == t->conf) && f[0].offset == off &&
             f[0].length == len;
    }
    if (!ok) {
        print_error("vector failed: want %s (confidence %d)\n", t->cat ? t->cat : "nothing",
                    t->conf);
        dump(t->key, t->v, f, n);
    }
    return ok;
}

static void run_vecs(const vec_t *t, size_t n)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += !check_vec(&t[i]);
    if (failed) {
        print_error("%d of %zu vectors failed\n", failed, n);
        fail();
    }
}

#define RUN(tab) run_vecs(tab, sizeof tab / sizeof tab[0])

/* Expect exactly one finding in V of category CAT (confidence CONF or any). */
static void expect_one(const char *key, const char *v, const char *cat, int conf)
{
    vec_t t = {key, v, cat, conf, WHOLE};
    if (!check_vec(&t))
        fail();
}

/* No finding of category CAT in V (other readings of the value may exist). */
static void expect_not(const char *key, const char *v, const char *cat)
{
    bg_detect_finding_t f[MAXF];
    size_t n = scan(key, v, f);
    for (size_t i = 0; i < n && i < MAXF; i++) {
        if (strcmp(bg_detect_category_id(f[i].category), cat) == 0) {
            print_error("unexpected %s\n", cat);
            dump(key, v, f, n);
            fail();
        }
    }
}

static void expect_none(const char *key, const char *v)
{
    vec_t t = {key, v, NULL, 0, 0, 0};
    if (!check_vec(&t))
        fail();
}

/* Independent check-character code. */
static char id_check(const char *d17)
{
    /* weights are 2^(17-i) mod 11 */
    unsigned sum = 0, w = 1;
    unsigned ws[17];
    for (int i = 16; i >= 0; i--) {
        w = (w * 2) % 11;
        ws[i] = w;
    }
    for (int i = 0; i < 17; i++)
        sum += (unsigned)(d17[i] - '0') * ws[i];
    unsigned c = (12 - sum % 11) % 11;
    return c == 10 ? 'X' : (char)('0' + c);
}

/* Make an 18-character ID from a 6-digit region, YYYYMMDD and 3-digit sequence. */
static void make_id(char *out, const char *region, const char *date, const char *seq)
{
    snprintf(out, 19, "%s%s%s", region, date, seq);
    out[17] = id_check(out);
    out[18] = 0;
}

/* Append the Luhn check digit to the N digits in D (D has room). */
static void luhn_complete(char *d)
{
    size_t n = strlen(d);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)(d[n - 1 - i] - '0');
        if (i % 2 == 0) /* doubled: the check digit will be at position 0 */
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    d[n] = (char)('0' + (10 - sum % 10) % 10);
    d[n + 1] = 0;
}

static char hk_check_char(const char *letters, const char *d6)
{
    unsigned vals[8], k = 0;
    if (strlen(letters) == 1)
        vals[k++] = 58;
    for (const char *p = letters; *p; p++)
        vals[k++] = (unsigned)(*p - 'A' + 10);
    for (int i = 0; i < 6; i++)
        vals[k++] = (unsigned)(d6[i] - '0');
    unsigned sum = 0;
    for (int i = 0; i < 8; i++)
        sum += vals[i] * (unsigned)(9 - i);
    unsigned c = (11 - sum % 11) % 11;
    return c == 10 ? 'A' : (char)('0' + c);
}

static char tw_check_digit(char letter, const char *d8)
{
    static const char order[] = "ABCDEFGHJKLMNPQRSTUVXYWZIO"; /* codes 10..35 */
    unsigned code = (unsigned)(strchr(order, letter) - order) + 10;
    unsigned sum = code / 10 + (code % 10) * 9;
    for (int i = 0; i < 8; i++)
        sum += (unsigned)(d8[i] - '0') * (unsigned)(8 - i);
    return (char)('0' + (10 - sum % 10) % 10);
}

/* ---------------------------------------------------------------------- */
/* Resident identity card                                                  */

static void test_resident_id(void **state)
{
    (void)state;
    static const char *const provinces[] = {"11", "12", "13", "14", "15", "21", "22", "23", "31",
                                            "32", "33", "34", "35", "36", "37", "41", "42", "43",
                                            "44", "45", "46", "50", "51", "52", "53", "54", "61",
                                            "62", "63", "64", "65", "71", "91"};
    char id[32], region[8];
    for (size_t i = 0; i < sizeof provinces / sizeof provinces[0]; i++) {
        snprintf(region, sizeof region, "%s0102", provinces[i]);
        make_id(id, region, "19900307", "123");
        expect_one(NULL, id, "cn_resident_id", HIGH);
        /* any wrong check character is rejected without a key */
        const char right = id[17];
        for (char c = '0'; c <= '9'; c++) {
            if (c == right)
                continue;
            id[17] = c;
            /* (a few are Luhn-valid numbers in a card range: 2200-2204 is Mir) */
            expect_not(NULL, id, "cn_resident_id");
        }
    }
    /* published example (GB 11643-1999 style), check character X */
    expect_one(NULL, "11010519491231002X", "cn_resident_id", HIGH);
    expect_one(NULL, "11010519491231002x", "cn_resident_id", HIGH);
    /* the standard's own example is born 1880: valid check, outside 1900.. */
    expect_none(NULL, "440524188001010014");

    /* calendar */
    static const struct {
        const char *date;
        int ok;
    } dates[] = {{"20000229", 1}, {"19960229", 1}, {"19000228", 1}, {"19000229", 0},
                 {"20230229", 0}, {"19901301", 0}, {"19900001", 0}, {"19900132", 0},
                 {"19900431", 0}, {"18991231", 0}, {"20250601", 1}, {"20250602", 0},
                 {"20300101", 0}, {"19900100", 0}};
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        make_id(id, "310104", dates[i].date, "456");
        if (dates[i].ok)
            expect_one(NULL, id, "cn_resident_id", HIGH);
        else
            expect_none(NULL, id);
    }
    /* region codes */
    make_id(id, "100101", "19900307", "123"); /* 10: no such province */
    expect_none(NULL, id);
    make_id(id, "990101", "19900307", "123");
    expect_none(NULL, id);
    make_id(id, "110000", "19900307", "123"); /* a province, not a county */
    expect_none(NULL, id);

    /* HK/Macao/Taiwan residents' residence permits */
    static const char *const hmt[] = {"810000", "820000", "830000"};
    for (int i = 0; i < 3; i++) {
        bg_detect_finding_t f[MAXF];
        make_id(id, hmt[i], "19850612", "012");
        size_t n = scan(NULL, id, f);
        assert_int_equal(n, 1);
        assert_string_equal(bg_detect_category_id(f[0].category), "hmt_residence_permit");
        assert_int_equal(f[0].also, BG_CAT_CN_RESIDENT_ID);
        assert_int_equal(f[0].confidence, BG_CONF_HIGH);
    }
    make_id(id, "810101", "19850612", "012");     /* permits are always 810000 */
    expect_not(NULL, id, "hmt_residence_permit"); /* (this one is a Luhn-valid 81 card) */
    expect_not(NULL, id, "cn_resident_id");
    make_id(id, "820102", "19850612", "012");
    expect_none(NULL, id);

    /* separators, full width, context */
    static const vec_t v[] = {
        {NULL, "110105 19491231 002X", "cn_resident_id", HIGH, WHOLE},
        {NULL, "110105-19491231-002X", "cn_resident_id", HIGH, WHOLE},
        {NULL, "1101 0519 4912 3100 2X", "cn_resident_id", HIGH, WHOLE},
        {NULL,
         "\xef\xbc\x91\xef\xbc\x91\xef\xbc\x90\xef\xbc\x91\xef\xbc\x90\xef\xbc\x95"
         "19491231002\xef\xbc\xb8", /* １１０１０５19491231002Ｘ */
         "cn_resident_id", HIGH, WHOLE},
        {NULL, "身份证11010519491231002X。", "cn_resident_id", HIGH, 9, 18},
        {NULL, "id=11010519491231002X&x=1", "cn_resident_id", HIGH, 3, 18},
        /* glued to letters: the checksum decides */
        {NULL, "A11010519491231002X", "cn_resident_id", HIGH, 1, 18},
        {NULL, "11010519491231002X1", NULL, 0, 0, 0},
        {NULL, "11010519491231002XA", "cn_resident_id", HIGH, 0, 18},
        {NULL, "ID110101199003071234end", NULL, 0, 0, 0}, /* bad check digit */
        /* inside a longer digit run or after a dotted prefix: a window with
         * region, date and check character is one (medium) */
        {NULL, "911010519491231002X", "cn_resident_id", MED, 1, 18},
        {NULL, "170000000011010519491231002X", "cn_resident_id", MED, 10, 18},
        {NULL, "GA1.2.11010519491231002X", "cn_resident_id", MED, 6, 18},
        {NULL, "1101051949123100211101051949123100", NULL, 0, 0, 0}, /* no valid window */
        {NULL, "0.11010519491231002", NULL, 0, 0, 0},
        /* a typo'd number is still an ID number under an ID key */
        {"id_card", "110105194912310021", "cn_resident_id", MED, WHOLE},
        {"身份证号", "110105194912310021", "cn_resident_id", MED, WHOLE},
        {"身份证号", "110105194912320021", NULL, 0, 0, 0}, /* no such day */
        /* 15-digit first-generation numbers: high under an ID key, medium
         * alone (decided on), low under an order/trace key (no checksum: the
         * sender's context may lower a weakly validated shape) */
        {"idCardNo", "110105491231002", "cn_resident_id", HIGH, WHOLE},
        {NULL, "110105491231002", "cn_resident_id", MED, WHOLE},
        {"order_no", "110105491231002", "cn_resident_id", LOW, WHOLE},
        {NULL, "110105 491231 002", "cn_resident_id", MED, WHOLE},
        {NULL, "110105491331002", NULL, 0, 0, 0}, /* month 13 */
        {"idCardNo", "110105491331002", NULL, 0, 0, 0},
    };
    RUN(v);
}

/* ---------------------------------------------------------------------- */
/* Mobile numbers                                                          */

static void test_mobile(void **state)
{
    (void)state;
    static const vec_t v[] = {
        {NULL, "13812345678", "cn_mobile", MED, WHOLE},
        {NULL, "19912345678", "cn_mobile", MED, WHOLE},
        {NULL, "16612345678", "cn_mobile", MED, WHOLE},
        {NULL, "14712345678", "cn_mobile", MED, WHOLE},
        {NULL, "+8613812345678", "cn_mobile", HIGH, WHOLE},
        {NULL, "+86 13812345678", "cn_mobile", HIGH, WHOLE},
        {NULL, "+86 138 1234 5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "+86-138-1234-5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "0086 138 1234 5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "008613812345678", "cn_mobile", HIGH, WHOLE},
        {NULL, "13812345678.0", "cn_mobile", MED, 0, 11}, /* a float export of the integer */
        {NULL, "13812345678.00,", "cn_mobile", MED, 0, 11},
        {NULL, "016623456780", "cn_mobile", MED, WHOLE}, /* trunk 0 before the mobile */
        {NULL, "012023456780", NULL, 0, 0, 0},
        {NULL, "8613812345678", "cn_mobile", MED, WHOLE},
        {NULL, "138 1234 5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "138-1234-5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "138-12345678", "cn_mobile", HIGH, WHOLE},
        /* full-width digits, ideographic space, zero-width space, soft
         * hyphen, Unicode hyphen, full-width plus */
        {NULL,
         "\xef\xbc\x91\xef\xbc\x93\xef\xbc\x98\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93"
         "\xef\xbc\x94\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98",
         "cn_mobile", MED, WHOLE},
        {NULL,
         "138\xe3\x80\x80"
         "1234\xe3\x80\x80"
         "5678",
         "cn_mobile", HIGH, WHOLE},
        {NULL,
         "138\xe2\x80\x8b"
         "1234\xe2\x80\x8b"
         "5678",
         "cn_mobile", MED, WHOLE},
        {NULL,
         "1381\xc2\xad"
         "2345678",
         "cn_mobile", MED, WHOLE},
        {NULL,
         "138\xe2\x80\x90"
         "1234\xe2\x80\x90"
         "5678",
         "cn_mobile", HIGH, WHOLE},
        {NULL,
         "\xef\xbc\x8b"
         "86 13812345678",
         "cn_mobile", HIGH, WHOLE},
        /* in text: span is the number only */
        {NULL, "请拨打13812345678联系", "cn_mobile", MED, 9, 11},
        {NULL, "tel:13812345678", "cn_mobile", MED, 4, 11},
        {NULL, "phone=13812345678&a=1", "cn_mobile", MED, 6, 11},
        {NULL, "(+86)13812345678", "cn_mobile", HIGH, 1, 15},
        {NULL, "call 13812345678.", "cn_mobile", MED, 5, 11},
        /* key, and keys that say the opposite */
        {"mobile", "13812345678", "cn_mobile", HIGH, WHOLE},
        {"手机号", "13812345678", "cn_mobile", HIGH, WHOLE},
        /* the sender chooses the key: a valid value is not lowered by it */
        {"order_id", "13812345678", "cn_mobile", MED, WHOLE},
        {"trace_id", "138 1234 5678", "cn_mobile", HIGH, WHOLE},
        {"order_id", "15412345678", "cn_mobile", LOW, WHOLE},
        /* weak shapes: unallocated prefix, US-style grouping */
        {NULL, "15412345678", "cn_mobile", LOW, WHOLE},
        {NULL, "1-800-555-1234", "cn_mobile", LOW, WHOLE},
        {"phone", "1-380-123-4567", "cn_mobile", HIGH, WHOLE},
        /* not mobile numbers */
        {NULL, "12812345678", NULL, 0, 0, 0},
        {NULL, "10012345678", NULL, 0, 0, 0},
        {NULL, "1381234567", NULL, 0, 0, 0},
        {NULL, "138123456789", NULL, 0, 0, 0},
        {NULL, "1700000000123", NULL, 0, 0, 0},         /* ms timestamp */
        {NULL, "1700000000", NULL, 0, 0, 0},            /* s timestamp */
        {NULL, "13812345678901234567", NULL, 0, 0, 0},  /* 20-digit order id */
        {NULL, "202311151381234567800", NULL, 0, 0, 0}, /* inside a longer run */
        /* glued to letters: medium, low next to upper-case code letters */
        {NULL, "a13812345678", "cn_mobile", MED, 1, 11},
        {NULL, "13812345678a", "cn_mobile", MED, 0, 11},
        {NULL, "SF13812345678", "cn_mobile", LOW, 2, 11},
        /* capitals that label the number (one letter, TEL, CNY...) are no code */
        /* zero-padded into a fixed-width field (a decimal trace id) */
        {NULL, "00000000000000000000013598761234", "cn_mobile", MED, 21, 11},
        {NULL, "00000000000000000000000000000001", NULL, 0, 0, 0},
        {NULL, "0000000000001234567890", NULL, 0, 0, 0},
        {NULL, "M17712345678", "cn_mobile", MED, 1, 11},
        {NULL, "CNY15067891234.00", "cn_mobile", MED, 3, 11},
        {NULL, "3.13812345678", NULL, 0, 0, 0},
        {NULL, "13812345678.5", NULL, 0, 0, 0},
        {NULL, "+1 381 234 5678", NULL, 0, 0, 0},
        {NULL, "+44 7911 123456", NULL, 0, 0, 0},
        {NULL, "v13812345678", "cn_mobile", MED, 1, 11},
    };
    RUN(v);

    /* a list of numbers: each one */
    bg_detect_finding_t f[MAXF];
    const char *list = "13812345678 13912345678,15012345678";
    size_t n = scan(NULL, list, f);
    if (n != 3)
        dump(NULL, list, f, n);
    assert_int_equal(n, 3);
    assert_int_equal(f[1].offset, 12);
    assert_int_equal(f[2].offset, 24);
    /* a trailing group after a well-formed number */
    n = scan(NULL, "138 1234 5678 12", f);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].length, 13);
    /* e-mail, not a mobile number */
    n = scan(NULL, "13812345678@qq.com", f);
    assert_int_equal(n, 1);
    assert_string_equal(bg_detect_category_id(f[0].category), "email");
}

/* ---------------------------------------------------------------------- */
/* E-mail                                                                  */

static void test_email(void **state)
{
    (void)state;
    static const vec_t v[] = {
        {NULL, "a@b.co", "email", HIGH, WHOLE},
        {NULL, "john.doe+tag@example.com.cn", "email", HIGH, WHOLE},
        {NULL, "Zhang_San@163.com", "email", HIGH, WHOLE},
        {NULL, "12345678@qq.com", "email", HIGH, WHOLE},
        {NULL, "x%y-z@sub-domain.example.org", "email", HIGH, WHOLE},
        {NULL, "li@example.xn--fiqs8s", "email", HIGH, WHOLE},
        {NULL, "mailto:john@example.org", "email", HIGH, 7, 16},
        {NULL, "<john@example.com>", "email", HIGH, 1, 16},
        {NULL, "联系john@example.com。", "email", HIGH, 6, 16},
        {NULL, "mail: john@example.com.", "email", HIGH, 6, 16},
        {NULL, ".john@example.com", "email", HIGH, 1, 16},
        /* full-width @ and letters */
        {NULL,
         "john\xef\xbc\xa0"
         "example.com",
         "email", HIGH, WHOLE},
        {NULL,
         "\xef\xbd\x8a\xef\xbd\x8f\xef\xbd\x88\xef\xbd\x8e\xef\xbc\xa0"
         "example\xef\xbc\x8e"
         "com",
         "email", HIGH, WHOLE},
        {NULL,
         "john@example\xe3\x80\x82"
         "com",
         "email", HIGH, WHOLE},
        /* shared mailboxes are not a person's */
        {NULL, "noreply@example.com", "email", LOW, WHOLE},
        {NULL, "git@github.com", "email", LOW, WHOLE},
        {"email", "support@example.com", "email", HIGH, WHOLE},
        /* not e-mail */
        {NULL, "john@localhost", NULL, 0, 0, 0},
        {NULL, "john@example", NULL, 0, 0, 0},
        {NULL, "john@example.c", NULL, 0, 0, 0},
        {NULL, "john@example.c0m", NULL, 0, 0, 0},
        {NULL, "icon@2x.png", NULL, 0, 0, 0},
        {NULL, "logo@3x.webp", NULL, 0, 0, 0},
        {NULL, "banner@brand.png", NULL, 0, 0, 0},
        {NULL, "@scope/package", NULL, 0, 0, 0},
        {NULL, "john@@example.com", NULL, 0, 0, 0},
        {NULL, "john.@example.com", NULL, 0, 0, 0},
        {NULL, "john@-example.com", NULL, 0, 0, 0},
        {NULL, "john@example-.com", NULL, 0, 0, 0},
        {NULL, "john@.example.com", NULL, 0, 0, 0},
        {NULL, "@example.com", NULL, 0, 0, 0},
        {NULL, "john@example.com@x", NULL, 0, 0, 0},
    };
    RUN(v);
    /* local part at most 64 */
    char buf[200];
    memset(buf, 'a', 65);
    strcpy(buf + 65, "@example.com");
    expect_none(NULL, buf);
    strcpy(buf + 64, "@example.com");
    expect_one(NULL, buf + 1, "email", HIGH);
}

/* ---------------------------------------------------------------------- */
/* Bank cards                                                              */

static void test_bank_card(void **state)
{
    (void)state;
    static const vec_t v[] = {
        /* networks' published test numbers */
        {NULL, "4111111111111111", "bank_card", HIGH, WHOLE},
        {NULL, "4012888888881881", "bank_card", HIGH, WHOLE},
        {NULL, "4222222222222", "bank_card", HIGH, WHOLE},
        {NULL, "5555555555554444", "bank_card", HIGH, WHOLE},
        {NULL, "2223003122003222", "bank_card", HIGH, WHOLE},
        {NULL, "378282246310005", "bank_card", HIGH, WHOLE},
        {NULL, "3530111333300000", "bank_card", HIGH, WHOLE},
        {NULL, "6011111111111117", "bank_card", HIGH, WHOLE},
        {NULL, "30569309025904", "bank_card", HIGH, WHOLE},
        {NULL, "6200000000000005", "bank_card", HIGH, WHOLE},
        /* separators and full width */
        {NULL, "4111 1111 1111 1111", "bank_card", HIGH, WHOLE},
        {NULL, "4111-1111-1111-1111", "bank_card", HIGH, WHOLE},
        {NULL, "3782 822463 10005", "bank_card", HIGH, WHOLE},
        {NULL,
         "\xef\xbc\x94"
         "111111111111111",
         "bank_card", HIGH, WHOLE},
        {NULL, "card: 4111 1111 1111 1111.", "bank_card", HIGH, 6, 19},
        /* Luhn failures */
        {NULL, "4111111111111112", NULL, 0, 0, 0},
        {NULL, "5555555555554445", NULL, 0, 0, 0},
        /* Luhn-valid but no issuer prefix: not without a card key */
        {NULL, "1234567812345670", NULL, 0, 0, 0},
        {"bankCardNo", "1234567812345670", "bank_card", HIGH, WHOLE},
        {"银行卡号", "1234567812345671", "bank_card", MED, WHOLE},
        /* lengths */
        {NULL, "411111111111", NULL, 0, 0, 0},
        {NULL, "41111111111111111111", NULL, 0, 0, 0},
        {NULL, "4111111111111111a", NULL, 0, 0, 0},           /* 16+ hex digits: a hash, an id */
        {NULL, "4111111111111111x", "bank_card", MED, 0, 16}, /* glued: Luhn decides */
        {NULL, "ORD4111111111111111", "bank_card", LOW, 3, 16},
        {NULL, "0000000000000000", NULL, 0, 0, 0},
    };
    RUN(v);

    /* UnionPay 62: Luhn is extra confidence, not a requirement; under a
     * card key it is a card at the key's confidence */
    char card[32];
    for (unsigned len = 16; len <= 19; len++) {
        snprintf(card, sizeof card, "621700%0*u", (int)(len - 7), 123456789u % 1000000000u);
        card[len - 1] = 0;
        luhn_complete(card);
        expect_one(NULL, card, "bank_card", HIGH);
        card[len - 1] = (char)('0' + (card[len - 1] - '0' + 1) % 10);
        expect_one(NULL, card, "bank_card", LOW);
        expect_one("bank_card", card, "bank_card", HIGH);
    }
    expect_one("bank_card", "4111111111111112", "bank_card", MED); /* Visa without Luhn */
    /* every Visa 16 with the right check digit passes, every other fails */
    for (unsigned i = 0; i < 50; i++) {
        snprintf(card, sizeof card, "4%014u", 31337u * i + 7u);
        luhn_complete(card);
        expect_one(NULL, card, "bank_card", HIGH);
        card[15] = (char)('0' + (card[15] - '0' + 3) % 10);
        expect_none(NULL, card);
    }
}

/* ---------------------------------------------------------------------- */
/* IMEI, IMSI                                                              */

static void test_imei_imsi(void **state)
{
    (void)state;
    static const vec_t v[] = {
        {NULL, "490154203237518", "imei", MED, WHOLE},
        {NULL, "35-209900-176148-1", "imei", MED, WHOLE},
        {"imei", "490154203237518", "imei", HIGH, WHOLE},
        {"device_id", "490154203237518", "imei", HIGH, WHOLE},
        {"imei", "490154203237519", "imei", MED, WHOLE}, /* Luhn fails: a typo */
        {NULL, "490154203237519", NULL, 0, 0, 0},
        {"imei", "000000000000000", NULL, 0, 0, 0},
        {"imei", "49015420323751", "imei", MED, WHOLE},   /* no check digit */
        {"imei", "4901542032375101", "imei", MED, WHOLE}, /* IMEISV */
        {NULL, "460001234567890", "imsi", MED, WHOLE},
        {NULL, "460111234567890", "imsi", MED, WHOLE},
        {NULL, "460201234567890", "imsi", MED, WHOLE},
        {"imsi", "460001234567890", "imsi", HIGH, WHOLE},
        {NULL, "460991234567890", NULL, 0, 0, 0},  /* no such MNC */
        {NULL, "310150123456789", NULL, 0, 0, 0},  /* MCC 310 (US) */
        {NULL, "46000123456789", NULL, 0, 0, 0},   /* 14 digits */
        {NULL, "4600012345678901", NULL, 0, 0, 0}, /* 16 digits */
    };
    RUN(v);
    /* Luhn-valid 15-digit numbers: IMEI only with a reporting body in use */
    char d[32];
    static const char *const rbi[] = {"01", "35", "86", "99", "49"};
    for (int i = 0; i < 5; i++) {
        snprintf(d, sizeof d, "%s%012u", rbi[i], 987654321u + (unsigned)i);
        d[14] = 0;
        luhn_complete(d);
        expect_one(NULL, d, "imei", MED);
    }
    snprintf(d, sizeof d, "77%012u", 987654321u);
    d[14] = 0;
    luhn_complete(d);
    expect_none(NULL, d);
    expect_one("imei", d, "imei", HIGH);
}

/* ---------------------------------------------------------------------- */
/* MAC, Android ID, device identifiers                                     */

static void test_device_ids(void **state)
{
    (void)state;
    static const vec_t v[] = {
        {NULL, "00:1A:2B:3C:4D:5E", "mac_address", MED, WHOLE},
        {NULL, "00-1a-2b-3c-4d-5e", "mac_address", MED, WHOLE},
        {NULL, "001a.2b3c.4d5e", "mac_address", MED, WHOLE},
        {NULL,
         "00\xef\xbc\x9a"
         "1A:2B:3C:4D:5E",
         "mac_address", MED, WHOLE},
        {NULL, "mac=00:1a:2b:3c:4d:5e;", "mac_address", MED, 4, 17},
        {"mac", "00:1A:2B:3C:4D:5E", "mac_address", HIGH, WHOLE},
        {"wifi_mac", "001A2B3C4D5E", "mac_address", HIGH, WHOLE},
        {NULL, "12-34-56-78-90-12", "mac_address", LOW, WHOLE},
        {NULL, "001A2B3C4D5E", NULL, 0, 0, 0},
        {NULL, "00:00:00:00:00:00", NULL, 0, 0, 0},
        {NULL, "FF:FF:FF:FF:FF:FF", NULL, 0, 0, 0},
        {NULL, "02:00:00:00:00:00", NULL, 0, 0, 0},
        {"mac", "02:00:00:00:00:00", NULL, 0, 0, 0},
        {NULL, "00:1A:2B:3C:4D", NULL, 0, 0, 0},
        {NULL, "00:1A:2B:3C:4D:5E:6F", NULL, 0, 0, 0},
        {NULL, "00:1A:2B:3C:4D:5G", NULL, 0, 0, 0},
        {NULL, "00:1A-2B:3C:4D:5E", NULL, 0, 0, 0},
        /* Android ID: by key only */
        {"android_id", "9f3b2c1d4e5f6a7b", "android_id", HIGH, WHOLE},
        {"androidId", "f3b2c1d4e5f6a7b", "android_id", HIGH, WHOLE},
        {NULL, "9f3b2c1d4e5f6a7b", NULL, 0, 0, 0},
        {"android_id", "9774d56d682e549c", NULL, 0, 0, 0},
        {"android_id", "9f3b2c1d4e5f6a7b1", NULL, 0, 0, 0},
        {"android_id", "0000000000000000", NULL, 0, 0, 0},
        /* UUID-style ids: under device keys only */
        {"idfa", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "device_id", HIGH, WHOLE},
        {"IDFV", "6d92078a-8246-4ba4-ae5b-76104861e7dc", "device_id", HIGH, WHOLE},
        {"oaid", "6d92078a-8246-4ba4-ae5b-76104861e7dc", "device_id", HIGH, WHOLE},
        {"设备标识", "6d92078a-8246-4ba4-ae5b-76104861e7dc", "device_id", HIGH, WHOLE},
        {"device_id", "6d92078a82464ba4ae5b76104861e7dc", "device_id", HIGH, WHOLE},
        {"oaid", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", "device_id",
         HIGH, WHOLE},
        {"idfa", "00000000-0000-0000-0000-000000000000", NULL, 0, 0, 0},
        {NULL, "6d92078a-8246-4ba4-ae5b-76104861e7dc", NULL, 0, 0, 0},
        {"request_id", "6d92078a-8246-4ba4-ae5b-76104861e7dc", NULL, 0, 0, 0},
        {"trace_id", "6d92078a-8246-4ba4-ae5b-138123456789", NULL, 0, 0, 0},
        {NULL, "6d92078a-8246-4ba4-ae5b-013812345678", NULL, 0, 0, 0},
        {"session", "6d92078a82464ba4ae5b76104861e7dc", NULL, 0, 0, 0},
    };
    RUN(v);
}

/* ---------------------------------------------------------------------- */
/* IP addresses                                                            */

static void test_ip(void **state)
{
    (void)state;
    static const vec_t v[] = {
        {NULL, "114.114.114.114", "ip_address", MED, WHOLE},
        {NULL, "202.96.134.133", "ip_address", MED, WHOLE},
        {NULL, "ip=114.114.114.114,", "ip_address", MED, 3, 15},
        {NULL, "114.114.114.114:8080", "ip_address", MED, 0, 15},
        {NULL,
         "114\xef\xbc\x8e"
         "114.114.114",
         "ip_address", MED, WHOLE},
        {"client_ip", "114.114.114.114", "ip_address", HIGH, WHOLE},
        {"clientIp", "192.168.1.20", "ip_address", MED, WHOLE},
        {NULL, "192.168.1.20", "ip_address", LOW, WHOLE},
        {NULL, "10.1.2.3", "ip_address", LOW, WHOLE},
        {NULL, "127.0.0.1", "ip_address", LOW, WHOLE},
        {NULL, "172.20.0.1", "ip_address", LOW, WHOLE},
        {NULL, "100.64.0.1", "ip_address", LOW, WHOLE},
        {NULL, "8.8.4.4", "ip_address", LOW, WHOLE}, /* all parts below 10 */
        {NULL, "1.2.3", NULL, 0, 0, 0},
        {NULL, "10.0.0.0.1", NULL, 0, 0, 0},
        {NULL, "1.2.3.4.5", NULL, 0, 0, 0},
        {NULL, "256.1.1.1", NULL, 0, 0, 0},
        {NULL, "01.02.03.04", NULL, 0, 0, 0},
        {NULL, "v114.114.114.114", NULL, 0, 0, 0},
        {NULL, "3.114.114.114.114", NULL, 0, 0, 0},
        {NULL, "114.114.114.114a", NULL, 0, 0, 0},
        {NULL, "10.0.19041.1", NULL, 0, 0, 0},
        /* IPv6 */
        {NULL, "2400:3200::1", "ip_address", MED, WHOLE},
        {NULL, "2400:3200:0:0:0:0:0:1", "ip_address", MED, WHOLE},
        {NULL, "[2400:3200::1]:443", "ip_address", MED, 1, 12},
        {NULL, "::ffff:114.114.114.114", "ip_address", MED, WHOLE},
        {NULL, "::ffff:192.168.0.1", "ip_address", LOW, WHOLE},
        {"ipv6", "2400:3200::1", "ip_address", HIGH, WHOLE},
        {NULL, "2001:db8::1", "ip_address", LOW, WHOLE},
        {NULL, "::1", "ip_address", LOW, WHOLE},
        {NULL, "fe80::1%eth0", "ip_address", LOW, 0, 7},
        {NULL, "fd12:3456:789a::1", "ip_address", LOW, WHOLE},
        {NULL, "addr 2400:3200::1: next", "ip_address", MED, 5, 12},
        {NULL, "12:30:45", NULL, 0, 0, 0},
        {NULL, "12:30:45.123", NULL, 0, 0, 0},
        {NULL, "std::vector", NULL, 0, 0, 0},
        {NULL, "a::b", NULL, 0, 0, 0},
        {NULL, "2400:3200::1::2", NULL, 0, 0, 0},
        {NULL, "2400:3200:1", NULL, 0, 0, 0},
        {NULL, "::", NULL, 0, 0, 0},
    };
    RUN(v);
}

/* ---------------------------------------------------------------------- */
/* GPS                                                                     */

static void test_gps(void **state)
{
    (void)state;
    static const vec_t v[] = {
        {NULL, "31.2304,121.4737", "gps_location", HIGH, WHOLE},
        {NULL, "121.4737,31.2304", "gps_location", HIGH, WHOLE},
        {NULL, "39.904211, 116.407395", "gps_location", HIGH, WHOLE},
        {NULL, "40.7128,-74.0060", "gps_location", MED, WHOLE},
        {NULL, "-33.8688,151.2093", "gps_location", MED, WHOLE},
        {NULL, "loc=-33.8688,151.2093;", "gps_location", MED, 4, 17},
        {NULL,
         "31\xef\xbc\x8e"
         "2304\xef\xbc\x8c"
         "121.4737",
         "gps_location", HIGH, WHOLE},
        {"location", "40.7128,-74.0060", "gps_location", HIGH, WHOLE},
        {NULL, "90.000,180.000", "gps_location", MED, WHOLE},
        {NULL, "31.23,121.47", NULL, 0, 0, 0},     /* 2 decimals */
        {NULL, "91.2304,181.4737", NULL, 0, 0, 0}, /* out of range */
        {NULL, "90.001,180.000", NULL, 0, 0, 0},
        {NULL, "0.125,0.250", NULL, 0, 0, 0},              /* ratios */
        {NULL, "31.2304,121.4737,10.0000", NULL, 0, 0, 0}, /* a triplet */
        {NULL, "1.000,31.2304,121.4737", NULL, 0, 0, 0},
        {NULL, "31.2304,121.4737.5", NULL, 0, 0, 0},
        {NULL, "v31.2304,121.4737", NULL, 0, 0, 0},
        {NULL, "1031.2304,121.4737", NULL, 0, 0, 0},
    };
    RUN(v);
}

/* ---------------------------------------------------------------------- */
/* Passports, HK/Taiwan/Macao IDs, travel permits                          */

static void test_documents(void **state)
{
    (void)state;
    static const vec_t v[] = {
        {NULL, "E12345678", "passport", MED, WHOLE},
        {NULL, "e12345678", "passport", MED, WHOLE},
        {NULL, "EJ1234567", "passport", MED, WHOLE},
        {NULL, "G12345678", "passport", LOW, WHOLE},
        {"passport_no", "E12345678", "passport", HIGH, WHOLE},
        {"护照号", "X1234567", "passport", HIGH, WHOLE},
        {"passportNumber", "123456789", "passport", HIGH, WHOLE},
        {NULL, "E1234567890", NULL, 0, 0, 0},
        {NULL, "EI1234567", NULL, 0, 0, 0},
        {NULL, "XE12345678", NULL, 0, 0, 0},
        {NULL, "E12345678X", NULL, 0, 0, 0},
        /* HK identity card (A123456(3) is the published example) */
        {NULL, "A123456(3)", "hk_id", HIGH, WHOLE},
        {NULL, "A1234563", "hk_id", MED, WHOLE},
        {NULL, "a123456(3)", "hk_id", HIGH, WHOLE},
        {NULL,
         "A123456\xef\xbc\x88"
         "3\xef\xbc\x89",
         "hk_id", HIGH, WHOLE},
        {NULL, "香港身份证A123456(3)。", "hk_id", HIGH, 15, 10},
        {NULL, "A123456(4)", NULL, 0, 0, 0},
        {NULL, "A1234564", NULL, 0, 0, 0},
        {"hkid", "A123456(4)", "hk_id", MED, WHOLE},
        {NULL, "A12345(3)", NULL, 0, 0, 0},
        /* Taiwan (A123456789 is the published example) */
        {NULL, "A123456789", "tw_id", MED, WHOLE},
        {NULL, "a123456789", "tw_id", MED, WHOLE},
        {"tw_id", "A123456789", "tw_id", HIGH, WHOLE},
        {NULL, "A123456788", NULL, 0, 0, 0},
        {NULL, "A323456789", NULL, 0, 0, 0},
        {"twid", "A123456788", "tw_id", MED, WHOLE},
        /* Macao */
        {NULL, "1234567(8)", "mo_id", MED, WHOLE},
        {NULL, "5215299(8)", "mo_id", MED, WHOLE},
        {"macao_id", "1234567(8)", "mo_id", HIGH, WHOLE},
        {"macaoId", "12345678", "mo_id", HIGH, WHOLE},
        {NULL, "2234567(8)", NULL, 0, 0, 0},
        {NULL, "12345678", NULL, 0, 0, 0},
        {NULL, "1234567(89)", NULL, 0, 0, 0},
        /* Mainland Travel Permits */
        {NULL, "H12345678", "mainland_travel_permit", LOW, WHOLE},
        {NULL, "M1234567801", "mainland_travel_permit", LOW, WHOLE},
        {"home_return_permit", "H12345678", "mainland_travel_permit", HIGH, WHOLE},
        {"回乡证", "M12345678", "mainland_travel_permit", HIGH, WHOLE},
        {"台胞证", "12345678", "mainland_travel_permit", HIGH, WHOLE},
        {"台胞证号码", "1234567801", "mainland_travel_permit", HIGH, WHOLE},
        {NULL, "H123456789", NULL, 0, 0, 0},
    };
    RUN(v);

    /* constructed HK numbers: every check character, one and two letters */
    char id[32];
    static const char *const pre[] = {"A", "C", "K", "Z", "XA", "WX", "EC"};
    for (unsigned i = 0; i < 7; i++) {
        for (unsigned k = 0; k < 25; k++) {
            char d6[8];
            snprintf(d6, sizeof d6, "%06u", (k * 104729u + i * 7919u) % 1000000u);
            char c = hk_check_char(pre[i], d6);
            snprintf(id, sizeof id, "%s%s(%c)", pre[i], d6, c);
            expect_one(NULL, id, "hk_id", HIGH);
            char wrong = c == '0' ? '1' : '0';
            snprintf(id, sizeof id, "%s%s(%c)", pre[i], d6, wrong);
            expect_none(NULL, id);
        }
    }
    /* constructed Taiwan numbers for every letter */
    for (char l = 'A'; l <= 'Z'; l++) {
        char d8[10];
        snprintf(d8, sizeof d8, "%c%07u", l % 2 ? '1' : '2', (unsigned)l * 12345u % 10000000u);
        snprintf(id, sizeof id, "%c%s%c", l, d8, tw_check_digit(l, d8));
        expect_one(NULL, id, "tw_id", MED);
        id[9] = (char)('0' + (id[9] - '0' + 5) % 10);
        expect_none(NULL, id);
    }
}

/* ---------------------------------------------------------------------- */
/* Spans, several findings, bookkeeping                                    */

static void test_spans_and_caps(void **state)
{
    (void)state;
    /* several categories in one value, offsets in original bytes */
    const char *v = "张三，手机１３８ 1234 5678，邮箱 zs@example.com，IP 114.114.114.114";
    bg_detect_finding_t f[MAXF];
    size_t n = scan(NULL, v, f);
    if (n != 3)
        dump(NULL, v, f, n);
    assert_int_equal(n, 3);
    const char *want[] = {"１３８ 1234 5678", "zs@example.com", "114.114.114.114"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f[i].offset, (size_t)(strstr(v, want[i]) - v));
        assert_int_equal(f[i].length, strlen(want[i]));
        if (i > 0)
            assert_true(f[i].offset >= f[i - 1].offset + f[i - 1].length);
    }
    assert_true(f[0].flags & BG_DETECT_F_NORMALIZED);
    assert_true(f[0].flags & BG_DETECT_F_SEPARATED);
    assert_false(f[1].flags & BG_DETECT_F_NORMALIZED);

    /* cap: count everything, store CAP */
    n = bg_detect_value(&OPTS, NULL, 0, v, strlen(v), f, 1);
    assert_int_equal(n, 3);
    n = bg_detect_value(&OPTS, NULL, 0, v, strlen(v), NULL, 0);
    assert_int_equal(n, 3);

    /* disabled detectors */
    bg_detect_opts_t o = OPTS;
    o.disabled = BG_DETECT_BIT(BG_DET_EMAIL) | BG_DETECT_BIT(BG_DET_IPV4);
    n = bg_detect_value(&o, NULL, 0, v, strlen(v), f, MAXF);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].category, BG_CAT_CN_MOBILE);

    /* empty and NULL */
    assert_int_equal(bg_detect_scan(NULL, NULL, "", 0, f, MAXF), 0);
    assert_int_equal(bg_detect_scan(NULL, NULL, NULL, 5, f, MAXF), 0);

    /* invalid UTF-8 is a boundary, never a match */
    const char bad[] = "\xff"
                       "13812345678"
                       "\xc3";
    n = bg_detect_value(&OPTS, NULL, 0, bad, sizeof bad - 1, f, MAXF);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].offset, 1);
    assert_int_equal(f[0].length, 11);

    /* zero-width characters around a number are outside its span */
    const char zw[] = "\xe2\x80\x8b"
                      "13812345678"
                      "\xe2\x80\x8b";
    n = scan(NULL, zw, f);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].offset, 3);
    assert_int_equal(f[0].length, 11);

    /* a default "today": a birth date of tomorrow is never valid, one of
     * 1990 always */
    char id[32];
    make_id(id, "310104", "19900307", "456");
    n = bg_detect_value(NULL, NULL, 0, id, strlen(id), f, MAXF);
    assert_int_equal(n, 1);
    make_id(id, "310104", "20991231", "456");
    n = bg_detect_value(NULL, NULL, 0, id, strlen(id), f, MAXF);
    assert_int_equal(n, 0);
}

/* Long values go through several normalization windows: build one with
 * findings at every offset class (including across window edges) and
 * check each is found once, with the exact span. */
static void test_long_values(void **state)
{
    (void)state;
    static const char *const items[] = {
        "13812345678",     "john@example.com",  "4111 1111 1111 1111", "11010519491231002X",
        "114.114.114.114", "00:1a:2b:3c:4d:5e", "+86 139 1234 5678"};
    static const char *const fill[] = {"中", "，", "x", " ", "ｘ", "\xe2\x80\x8b", "-"};
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t *offs = malloc(4096 * sizeof *offs);
    assert_non_null(buf);
    assert_non_null(offs);
    for (int ascii = 0; ascii < 2; ascii++) {
        size_t len = 0, nitems = 0;
        unsigned seed = 12345;
        while (len < 200000 && nitems < 4096) {
            seed = seed * 1103515245u + 12345u;
            unsigned pad = (seed >> 16) % 40;
            for (unsigned p = 0; p < pad; p++) {
                const char *fl = fill[(seed >> (p % 16)) % (ascii ? 1 : 7)];
                if (ascii)
                    fl = "xyz.-"[(seed >> (p % 16)) % 5] == 'x' ? "x " : ". ";
                memcpy(buf + len, fl, strlen(fl));
                len += strlen(fl);
            }
            memcpy(buf + len, "，", ascii ? 0 : 3); /* a boundary before each item */
            len += ascii ? 0 : 3;
            if (ascii)
                buf[len++] = ' ';
            const char *it = items[(seed >> 8) % 7];
            offs[nitems++] = len;
            memcpy(buf + len, it, strlen(it));
            len += strlen(it);
            buf[len++] = ascii ? ';' : ' ';
        }
        bg_detect_finding_t *f = malloc(nitems * sizeof *f);
        assert_non_null(f);
        size_t n = bg_detect_scan(&OPTS, NULL, buf, len, f, nitems);
        if (n != nitems) {
            print_error("%s: %zu findings for %zu items\n", ascii ? "ascii" : "unicode", n, nitems);
            fail();
        }
        for (size_t i = 0; i < nitems; i++) {
            if (f[i].offset != offs[i]) {
                print_error("item %zu at %zu found at %zu+%zu\n", i, offs[i], f[i].offset,
                            f[i].length);
                fail();
            }
        }
        free(f);
    }
    free(offs);
    free(buf);
}

/* ---------------------------------------------------------------------- */
/* Key names                                                               */

static void test_keys(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        const char *cat; /* NULL: no category (bg_detect_key_category) */
    } t[] = {
        {"IDCardNo", "cn_resident_id"},
        {"id_card_no", "cn_resident_id"},
        {"id-card-no", "cn_resident_id"},
        {"idcardno", "cn_resident_id"},
        {"ID_CARD_NO", "cn_resident_id"},
        {"userIdCard", "cn_resident_id"},
        {"身份证号", "cn_resident_id"},
        {"身份证", "cn_resident_id"},
        {"user.身份证号码", "cn_resident_id"},
        {"手机号", "phone_number"},
        {"手机", "phone_number"},
        {"电话", "phone_number"},
        {"联系电话", "phone_number"},
        {"mobile", "phone_number"},
        {"contactPhone", "phone_number"},
        {"phone_number", "phone_number"},
        {"tel", "phone_number"},
        {"hotel", NULL},
        {"iphone", NULL},
        {"headphone", NULL},
        {"is_mobile", NULL},
        {"hasPhone", NULL},
        {"phone_model", NULL},
        {"手机型号", NULL},
        {"是否实名", NULL},
        {"姓名", "person_name"},
        {"real_name", "person_name"},
        {"firstName", "person_name"},
        {"name", NULL},
        {"file_name", NULL},
        {"product_name", NULL},
        {"user_name", "account_id"},
        {"住址", "address"},
        {"地址", "address"},
        {"身份证地址", "address"},
        {"home_address", "address"},
        {"address", "address"},
        {"address_1", "address"},
        {"ip_address", "ip_address"},
        {"IPAddress", "ip_address"},
        {"mac_address", "mac_address"},
        {"email_address", "email"},
        {"server_address", NULL},
        {"银行卡号", "bank_card"},
        {"bankCardNo", "bank_card"},
        {"card_no", NULL},
        {"邮箱", "email"},
        {"email", "email"},
        {"userEmail", "email"},
        {"经度", "gps_location"},
        {"纬度", "gps_location"},
        {"lat", "gps_location"},
        {"lng", "gps_location"},
        {"latitude", "gps_location"},
        {"userLongitude", "gps_location"},
        {"护照号", "passport"},
        {"passport_no", "passport"},
        {"出生日期", "birth_date"},
        {"生日", "birth_date"},
        {"birthday", "birth_date"},
        {"dob", "birth_date"},
        {"password", "credentials"},
        {"userPassword", "credentials"},
        {"密码", "credentials"},
        {"支付密码", "credentials"},
        {"access_token", "credentials"},
        {"client_secret", "credentials"},
        {"token", "credentials"},
        {"api_key", "credentials"},
        {"next_page_token", NULL},
        {"max_tokens", NULL},
        {"token_type", NULL},
        {"香港身份证", "hk_id"},
        {"台湾身份证", "tw_id"},
        {"台胞证", "mainland_travel_permit"},
        {"imei", "imei"},
        {"imei2", "imei"},
        {"deviceImei", "imei"},
        {"imsi", "imsi"},
        {"idfa", "device_id"},
        {"oaid", "device_id"},
        {"device_id", "device_id"},
        {"android_id", "android_id"},
        {"mac", "mac_address"},
        {"macos", NULL},
        {"ip", "ip_address"},
        {"client_ip", "ip_address"},
        {"clientip", "ip_address"},
        {"zip", NULL},
        {"ipv6", "ip_address"},
        {"IP地址", "ip_address"},
        {"\xef\xbc\xb0\xef\xbc\xa8\xef\xbc\xaf\xef\xbc\xae\xef\xbc\xa5", "phone_number"},
        {"gender", "gender"},
        {"性别", "gender"},
        {"国籍", "nationality"},
        {"民族", "ethnicity"},
        {"religion", "religion"},
        {"宗教信仰", "religion"},
        {"diagnosis", "health"},
        {"病历", "health"},
        {"faceImage", "biometrics"},
        {"人脸特征", "biometrics"},
        {"指纹", "biometrics"},
        {"fingerprint", NULL},
        {"installed_apps", "installed_apps"},
        {"应用列表", "installed_apps"},
        {"通讯录", "contacts"},
        {"通话记录", "communication_record"},
        {"行踪轨迹", "whereabouts"},
        {"车牌号", "vehicle_plate"},
        {"order_id", NULL},
        {"max_age", NULL},
        {"age", "age"},
        {"page", NULL},
        {"", NULL},
        {"$.user.phone", "phone_number"},
        {"user[0].mobile_no", "phone_number"},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bg_detect_cat_t c = bg_detect_key_category(t[i].key, strlen(t[i].key));
        const char *got = c == BG_CAT_NONE ? NULL : bg_detect_category_id(c);
        if ((got == NULL) != (t[i].cat == NULL) || (got && strcmp(got, t[i].cat) != 0)) {
            print_error("key \"%s\": got %s, want %s\n", t[i].key, got ? got : "nothing",
                        t[i].cat ? t[i].cat : "nothing");
            failed++;
        }
    }
    assert_int_equal(failed, 0);

    /* hints and confidence */
    bg_detect_key_t k;
    bg_detect_key_info("name", 4, &k);
    assert_int_equal(k.category, BG_CAT_PERSON_NAME);
    assert_int_equal(k.confidence, BG_CONF_LOW);
    bg_detect_key_info("order_no", 8, &k);
    assert_int_equal(k.category, BG_CAT_NONE);
    assert_true(k.hints & BG_HINT_NONPI);
    bg_detect_key_info("证件号码", strlen("证件号码"), &k);
    assert_int_equal(k.category, BG_CAT_IDENTITY_DOCUMENT);
    assert_true(k.hints & BG_HINT_RESIDENT_ID);
    assert_true(k.hints & BG_HINT_HK_ID);
    assert_false(k.hints & BG_HINT_PASSPORT);
    bg_detect_key_info("card_no", 7, &k);
    assert_true(k.hints & BG_HINT_CARD);
    /* Issue 14: every card key gives the hint, "card" alone included (as
     * the whole key only: a gift or SIM card number is not a bank card). */
    static const char *const card_keys[] = {"card",     "Card", "card_no", "cardNumber",
                                            "银行卡号", "卡号", "card2"};
    for (size_t i = 0; i < sizeof card_keys / sizeof card_keys[0]; i++) {
        bg_detect_key_info(card_keys[i], strlen(card_keys[i]), &k);
        if (!(k.hints & BG_HINT_CARD))
            fail_msg("%s: no card hint", card_keys[i]);
    }
    static const char *const not_card[] = {"gift_card", "sim_card", "vip_card", "cards"};
    for (size_t i = 0; i < sizeof not_card / sizeof not_card[0]; i++) {
        bg_detect_key_info(not_card[i], strlen(not_card[i]), &k);
        if (k.hints & BG_HINT_CARD)
            fail_msg("%s: card hint", not_card[i]);
    }
    /* With the hint, a UnionPay debit card that fails Luhn is high. */
    bg_detect_finding_t cf[2];
    assert_int_equal(bg_detect_value(NULL, "card", 4, "6222021234567890", 16, cf, 2), 1);
    assert_int_equal(cf[0].category, BG_CAT_BANK_CARD);
    assert_int_equal(cf[0].confidence, BG_CONF_HIGH);
    assert_int_equal(bg_detect_value(NULL, "ref", 3, "6222021234567890", 16, cf, 2), 1);
    assert_int_equal(cf[0].confidence, BG_CONF_LOW);
    bg_detect_key_info(NULL, 0, &k);
    assert_int_equal(k.category, BG_CAT_NONE);
    assert_int_equal(k.hints, 0);

    /* very long keys are judged by their end */
    char longkey[1200];
    memset(longkey, 'x', sizeof longkey);
    memcpy(longkey + sizeof longkey - 6, "_phone", 6);
    assert_int_equal(bg_detect_key_category(longkey, sizeof longkey), BG_CAT_PHONE_NUMBER);
    char cjk[600];
    size_t cl = 0;
    while (cl + 3 <= 300) {
        memcpy(cjk + cl, "中", 3);
        cl += 3;
    }
    memcpy(cjk + cl, "手机号", 9);
    cl += 9;
    assert_int_equal(bg_detect_key_category(cjk, cl), BG_CAT_PHONE_NUMBER);
}

static void test_names(void **state)
{
    (void)state;
    for (int c = BG_CAT_NONE + 1; c < BG_CAT__COUNT; c++) {
        const char *id = bg_detect_category_id((bg_detect_cat_t)c);
        assert_non_null(id);
        assert_int_equal(bg_detect_category_from_id(id, strlen(id)), c);
    }
    assert_null(bg_detect_category_id(BG_CAT_NONE));
    assert_null(bg_detect_category_id(BG_CAT__COUNT));
    assert_int_equal(bg_detect_category_from_id("nope", 4), BG_CAT_NONE);
    for (int d = 0; d < BG_DET__COUNT; d++)
        assert_non_null(bg_detect_detector_name((bg_detect_id_t)d));
    assert_null(bg_detect_detector_name(BG_DET__COUNT));
    bg_detect_conf_t cf;
    assert_int_equal(bg_detect_confidence_parse("medium", 6, &cf), 0);
    assert_int_equal(cf, BG_CONF_MEDIUM);
    assert_int_equal(bg_detect_confidence_parse("med", 3, &cf), -1);
    assert_string_equal(bg_detect_confidence_name(BG_CONF_HIGH), "high");
    assert_null(bg_detect_confidence_name((bg_detect_conf_t)0));
}

/* ---------------------------------------------------------------------- */
/* Bypass spellings (issue 13)                                             */

/* One finding of category CAT in V with all of FLAGS set, spanning
 * [OFF, OFF+LEN) (OFF < 0: the whole value), at confidence >= CONF. */
static void expect_flags(const char *key, const char *v, const char *cat, int conf, int off,
                         size_t len, unsigned flags)
{
    bg_detect_finding_t f[MAXF];
    size_t n = scan(key, v, f);
    size_t o = off < 0 ? 0 : (size_t)off, l = off < 0 ? strlen(v) : len;
    int ok = n == 1 && strcmp(bg_detect_category_id(f[0].category), cat) == 0 &&
             (int)f[0].confidence >= conf && f[0].offset == o && f[0].length == l &&
             (f[0].flags & flags) == flags;
    if (!ok) {
        print_error("want %s >= %d at %zu+%zu flags 0x%x\n", cat, conf, o, l, flags);
        dump(key, v, f, n);
        fail();
    }
}

static void test_separators(void **state)
{
    (void)state;
    static const vec_t v[] = {
        /* mobiles through the separators people type */
        {NULL, "138.1234.5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "138/1234/5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "138_1234_5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "138,1234,5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "(138)1234-5678", "cn_mobile", HIGH, 1, 13},
        {NULL, "138 1234  5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "138\t1234\t5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "138\r\n1234\r\n5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "138 - 1234 - 5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "1-3-8-1-2-3-4-5-6-7-8", "cn_mobile", MED, WHOLE},
        {NULL, "1 3 8 1 2 3 4 5 6 7 8", "cn_mobile", MED, WHOLE},
        {NULL, "1.3.8.1.2.3.4.5.6.7.8", "cn_mobile", MED, WHOLE},
        {NULL, "+86-13812345678", "cn_mobile", HIGH, WHOLE},
        {NULL, "+86(138)1234-5678", "cn_mobile", HIGH, WHOLE},
        {NULL, "+86.138.1234.5678", "cn_mobile", HIGH, WHOLE},
        /* more than three separators apart: two numbers */
        {NULL, "138    12345678", NULL, 0, 0, 0},
        /* other groupings through dots and commas are counts, versions */
        {NULL, "13,812,345,678", "cn_mobile", LOW, WHOLE},
        {NULL, "13.8.1234.5678", "cn_mobile", LOW, WHOLE},
        {NULL, "1,380,123.45", NULL, 0, 0, 0},
        {NULL, "13812345678.5", NULL, 0, 0, 0},
        {NULL, "2024/01/01", NULL, 0, 0, 0},
        /* ID numbers and cards */
        {NULL, "110105.19491231.002X", "cn_resident_id", HIGH, WHOLE},
        {NULL, "110105/1949/1231/002X", "cn_resident_id", HIGH, WHOLE},
        {NULL, "11010519,491231002X", "cn_resident_id", MED, WHOLE},
        {NULL, "4111.1111.1111.1111", "bank_card", HIGH, WHOLE},
        {NULL, "4111_1111_1111_1111", "bank_card", HIGH, WHOLE},
        {NULL, "41.11111111.111111", "bank_card", LOW, WHOLE},
    };
    RUN(v);

    /* a CSV file: every mobile in its column */
    bg_detect_finding_t f[MAXF];
    const char *csv = "id,phone\n1,13812345678\n2,13912345678\n";
    assert_int_equal(scan(NULL, csv, f), 2);
    assert_int_equal(f[0].offset, 11);
    assert_int_equal(f[1].offset, 25);
}

static void test_unicode_spellings(void **state)
{
    (void)state;
    /* every script's digits, math, circled, superscripts; invisible marks */
    static const char *const mobiles[] = {
        "\xd9\xa1\xd9\xa3\xd9\xa8\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6\xd9\xa7\xd9\xa8",
        "\xe0\xa5\xa7\xe0\xa5\xa9\xe0\xa5\xae\xe0\xa5\xa7\xe0\xa5\xa8\xe0\xa5\xa9\xe0\xa5\xaa\xe0"
        "\xa5\xab\xe0\xa5\xac\xe0\xa5\xad\xe0\xa5\xae", /* Devanagari */
        "\xe0\xb9\x91\xe0\xb9\x93\xe0\xb9\x98\xe0\xb9\x91\xe0\xb9\x92\xe0\xb9\x93\xe0\xb9\x94\xe0"
        "\xb9\x95\xe0\xb9\x96\xe0\xb9\x97\xe0\xb9\x98", /* Thai */
        "\xf0\x9d\x9f\x8f\xf0\x9d\x9f\x91\xf0\x9d\x9f\x96\xf0\x9d\x9f\x8f\xf0\x9d\x9f\x90\xf0\x9d"
        "\x9f\x91\xf0\x9d\x9f\x92\xf0\x9d\x9f\x93\xf0\x9d\x9f\x94\xf0\x9d\x9f\x95\xf0\x9d\x9f\x96",
        "\xe2\x91\xa0\xe2\x91\xa2\xe2\x91\xa7\xe2\x91\xa0\xe2\x91\xa1\xe2\x91\xa2\xe2\x91\xa3\xe2"
        "\x91\xa4\xe2\x91\xa5\xe2\x91\xa6\xe2\x91\xa7", /* circled */
        "\xc2\xb9\xc2\xb3\xe2\x81\xb8\xc2\xb9\xc2\xb2\xc2\xb3\xe2\x81\xb4\xe2\x81\xb5\xe2\x81\xb6"
        "\xe2\x81\xb7\xe2\x81\xb8", /* superscripts */
        "1\xf3\xa0\x80\xb1"
        "3\xf3\xa0\x80\xb1"
        "8\xf3\xa0\x80\xb1"
        "12345678", /* tags */
        "1\xef\xb8\x8f"
        "3\xef\xb8\x8f"
        "8\xef\xb8\x8f"
        "12345678", /* variation selectors */
        "1\xcc\x81"
        "38\xcc\x81"
        "12345678", /* combining marks */
        "1\xe3\x85\xa4"
        "38\xe2\x80\xae"
        "1234\xe2\x81\xa0"
        "5678", /* U+3164, bidi, WJ */
        "1\xe2\xa0\x80"
        "3812345678", /* braille blank */
    };
    for (size_t i = 0; i < sizeof mobiles / sizeof mobiles[0]; i++)
        expect_flags(NULL, mobiles[i], "cn_mobile", MED, -1, 0, BG_DETECT_F_NORMALIZED);
    /* text without digits of any script stays silent */
    expect_none(NULL, "\xe8\xae\xa2\xe5\x8d\x95\xe5\xb7\xb2\xe5\x8f\x91\xe8\xb4\xa7");
    /* Chinese numerals, in a run of 11+: the span is the numerals */
    expect_flags(NULL, "电话一三八一二三四五六七八", "cn_mobile", MED, 6, 33,
                 BG_DETECT_F_NORMALIZED);
    expect_flags(NULL, "幺三八 幺二三四 五六七八", "cn_mobile", HIGH, -1, 0, 0);
    expect_flags(NULL, "壹叁捌壹贰叁肆伍陆柒捌", "cn_mobile", MED, -1, 0, 0);
    expect_flags(NULL, "138一二三四五六七八", "cn_mobile", MED, -1, 0, 0);
    expect_flags(NULL, "一一〇一〇五一九四九一二三一〇〇二X", "cn_resident_id", HIGH, -1, 0, 0);
    /* full-width digits, then Chinese numerals; ideographic commas */
    expect_one(NULL, "１３８一二三四五六七八", "cn_mobile", MED);
    expect_one(NULL, "1、3、8、1、2、3、4、5、6、7、8", "cn_mobile", MED);
    /* the check character X as its Cyrillic or Greek look-alike */
    expect_one(NULL, "11010519491231002\xd0\xa5", "cn_resident_id", HIGH);
    expect_flags(NULL, "id 11010519491231002\xce\xa7 ok", "cn_resident_id", HIGH, 3, 19,
                 BG_DETECT_F_NORMALIZED);
    /* fewer than 11, or not a valid number: prose */
    expect_none(NULL, "二〇二六年一月一日起施行");
    expect_none(NULL, "一二三四五六七八九十");
    expect_none(NULL, "一二三四五六七八九〇一二");
}

static void test_glued(void **state)
{
    (void)state;
    static const vec_t v[] = {
        {NULL, "abc13812345678xyz", "cn_mobile", MED, 3, 11},
        {NULL, "tel13812345678", "cn_mobile", MED, 3, 11},
        {NULL, "ID11010519491231002Xend", "cn_resident_id", HIGH, 2, 18},
        {NULL, "JDVA13812345678", "cn_mobile", LOW, 4, 11},
        {NULL, "13812345678CN", "cn_mobile", LOW, 0, 11},
        /* continuing a code of letters joined by '-' or '_' */
        {"sku", "SKU-139-0712-4581", "cn_mobile", LOW, 4, 13},
        {NULL, "ORD_13812345678", "cn_mobile", LOW, 4, 11},
        {NULL, "tel-13812345678", "cn_mobile", MED, 4, 11},
        {NULL, "ID-11010519491231002X", "cn_resident_id", HIGH, 3, 18},
        /* hex tokens of 16+ characters are hashes and trace ids */
        {NULL, "abc13812345678ef", NULL, 0, 0, 0},
        {NULL, "a1cc4d82d5b5bf8e32b6db542def85b55587d93cc3fca1980aea8aa179e44d29", NULL, 0, 0, 0},
        {NULL, "abc1381234567xyz", NULL, 0, 0, 0},
        /* longer runs: only a mobile written twice, or under a phone key */
        {"phone", "1795113812345678", "cn_mobile", MED, 5, 11},
        {"tel", "13812345678123", "cn_mobile", MED, 0, 11},
        {NULL, "20241591111222299", NULL, 0, 0, 0},
        {"order_id", "2025021674627402912025", NULL, 0, 0, 0},
        {"phone", "0213123456789", NULL, 0, 0, 0}, /* an area code: a landline */
    };
    RUN(v);
    /* the mobile written twice: both copies */
    bg_detect_finding_t f[MAXF];
    size_t n = scan("note", "1359876123413598761234", f);
    assert_int_equal(n, 2);
    assert_int_equal(f[0].offset, 0);
    assert_int_equal(f[1].offset, 11);
    assert_int_equal(f[1].length, 11);
    assert_true(f[1].confidence >= BG_CONF_MEDIUM);
    assert_string_equal(bg_detect_category_id(f[1].category), "cn_mobile");
}

static void test_encoded(void **state)
{
    (void)state;
    const unsigned enc = BG_DETECT_F_ENCODED, nr = BG_DETECT_F_ENCODED | BG_DETECT_F_NOT_REWRITABLE;
    /* percent escapes (once and twice) and character references: the span is
     * the escapes, rewritable */
    expect_flags(NULL, "%31%33%38%31%32%33%34%35%36%37%38", "cn_mobile", MED, -1, 0, enc);
    expect_flags(NULL, "p=%2531%2533%2538%2531%2532%2533%2534%2535%2536%2537%2538", "cn_mobile",
                 MED, 2, 55, enc);
    expect_flags(NULL, "&#49;&#51;&#56;&#49;&#50;&#51;&#52;&#53;&#54;&#55;&#56;", "cn_mobile", MED,
                 -1, 0, enc);
    expect_flags(NULL, "&#x31;&#x33;&#X38;12345678", "cn_mobile", MED, -1, 0, enc);
    expect_flags(NULL, "&amp;#49;38 1234 5678", "cn_mobile", HIGH, -1, 0, enc);
    expect_flags(NULL,
                 "%EF%BC%91"
                 "3812345678",
                 "cn_mobile", MED, -1, 0, enc);
    /* base64 (padded, unpadded, URL-safe, twice) and hex: the whole run,
     * not rewritable */
    expect_flags(NULL, "MTM4MTIzNDU2Nzg=", "cn_mobile", MED, -1, 0, nr);
    expect_flags(NULL, "Basic MTM4MTIzNDU2Nzg6cGFzcw==", "cn_mobile", MED, 6, 24, nr);
    expect_flags(NULL, "x eyJwaG9uZSI6IjEzODEyMzQ1Njc4In0 y", "cn_mobile", MED, 2, 31, nr);
    expect_flags(NULL, "TVRFd01UQTFNVGswT1RFeU16RXdNREpZCg==", "cn_resident_id", HIGH, -1, 0, nr);
    expect_flags(NULL, "3133383132333435363738", "cn_mobile", MED, -1, 0, nr);
    /* a JWT: each dot-separated part is decoded; the payload holds the ID */
    expect_flags(NULL, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMTAxMDUxOTQ5MTIzMTAwMlgifQ.c2lnbmF0dXJl",
                 "cn_resident_id", HIGH, 21, 38, nr);
    /* a path of base64 segments */
    expect_flags(NULL, "/api/v1/users/MTM4MTIzNDU2Nzg", "cn_mobile", MED, 14, 15, nr);
    /* base64 broken into lines (MIME, or 4 characters a line) */
    expect_flags(NULL, "SUQg\nNDIw\nMTEx\nMTk4\nODA1\nMTI2\nNjEy", "cn_resident_id", HIGH, -1, 0,
                 nr);
    /* base64 of UTF-16LE text (what .NET and Windows clients encode) */
    expect_flags(NULL, "MQAzADgAMQAyADMANAA1ADYANwA4AA==", "cn_mobile", MED, -1, 0, nr);
    /* base64 and hex of GBK text (legacy Chinese clients): read as GB18030
     * when the bytes are not UTF-8: full-width digits, Chinese numerals */
    expect_flags(NULL, "o7Gjs6O4o7GjsqOzo7SjtaO2o7ejuA==", "cn_mobile", MED, -1, 0, nr);
    expect_flags(NULL, "k=a3b1a3b3a3b8a3b1a3b2a3b3a3b4a3b5a3b6a3b7a3b8", "cn_mobile", MED, 2, 44,
                 nr);
    expect_flags(NULL, "0rvI/bDL0ru2/sj9y8TO5cH5xt+wyw==", "cn_mobile", MED, -1, 0, nr);
    /* ... and Latin-1 with a superscript digit: 0xB9 is ¹ */
    expect_flags(NULL, "uTM4MTIzNDU2Nzg=", "cn_mobile", MED, -1, 0, nr);
    /* backslash escapes and quoted-printable digit runs: rewritable escapes */
    expect_flags(NULL,
                 "\\u0031\\u0033\\u0038\\u0031\\u0032\\u0033\\u0034\\u0035\\u0036\\u0037\\u0038",
                 "cn_mobile", MED, -1, 0, enc);
    expect_flags(NULL, "\\x31\\x33\\x38\\x31\\x32\\x33\\x34\\x35\\x36\\x37\\x38", "cn_mobile", MED,
                 -1, 0, enc);
    expect_flags(NULL, "=31=33=38=31=32=33=34=35=36=37=38", "cn_mobile", MED, -1, 0, enc);
    /* string concatenation in code and SQL; HTML comments between groups */
    expect_flags(NULL, "CONCAT('138','1234','5678')", "cn_mobile", MED, 8, 17, 0);
    expect_flags(NULL, "var t = \"110105\"+\"19491231\"+\"002X\";", "cn_resident_id", MED, 9, 24,
                 0);
    expect_flags(NULL, "<p>138<!---->1234<!-- x -->5678</p>", "cn_mobile", MED, 3, 28, 0);
    expect_none(NULL, "<td>2024</td><!-- year --><td>0315</td>");
    /* a number in exponent form written into a string: the whole value */
    expect_flags(NULL, "1.3812345678E10", "cn_mobile", MED, -1, 0, BG_DETECT_F_NOT_REWRITABLE);
    expect_none(NULL, "1.5e10");
    /* base32 (RFC 4648): upper or lower case, padded or not */
    expect_flags(NULL, "GE3DMMRTGQ2TMNZYGA======", "cn_mobile", MED, -1, 0, nr);
    expect_flags(NULL, "b32=ge3dmmrtgq2tmnzyga&x=1", "cn_mobile", MED, 4, 18, nr);
    expect_flags(NULL, "GEYTAMJQGUYTSNBZGEZDGMJQGAZFQ", "cn_resident_id", HIGH, -1, 0, nr);
    /* base64 and hex of things that are not PI */
    expect_none(NULL, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
    expect_none(NULL, "ERR_CONNECTION_REFUSED_BY_PEER");
    expect_none(NULL, "eyJvcmRlcl9pZCI6IjIwMjQwMTAxMTIzNDU2Nzg5In0");
    expect_none(NULL, "OWUU2p1juqmLwCRz8eYesEUOv+5iIigDDSsMuR+IeEU=");
    expect_none(NULL, "internationalization_and_localization");
    /* depth: base64 of base64 of base64 is not decoded */
    expect_none(NULL, "VFZSRmQwMVVRVEZOVkdzd1QxUkZlVTE2UlhkTlJFcFpDZz09");
}

/* ---------------------------------------------------------------------- */
/* False-positive corpus                                                   */

/*
 * tests/data/false_positives.txt: one value per line, optionally "key<TAB>
 * value"; '#' starts a comment line. Every value is something real payloads
 * carry that is NOT personal information. A finding at or above the
 * recommended policy threshold (medium) is a false positive; low findings
 * are review signals and counted separately.
 *
 * Thresholds (docs/categories.md): false positives at >= medium must be
 * 0 %; low-confidence signals below 3 % of values.
 */
#define FP_MAX_PERCENT 0.0
#define LOW_MAX_PERCENT 3.0

static void test_false_positive_corpus(void **state)
{
    (void)state;
    const char *src = getenv("BG_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/false_positives.txt", src ? src : ".");
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        print_error("cannot open %s (set BG_SOURCE_DIR)\n", path);
        fail();
    }
    char line[4096];
    unsigned values = 0, fps = 0, lows = 0;
    while (fgets(line, sizeof line, fp)) {
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = 0;
        if (l == 0 || line[0] == '#')
            continue;
        const char *key = NULL, *v = line;
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = 0;
            key = line;
            v = tab + 1;
        }
        values++;
        bg_detect_finding_t f[MAXF];
        size_t n = scan(key, v, f);
        int fp_here = 0, low_here = 0;
        for (size_t i = 0; i < n && i < MAXF; i++) {
            if (f[i].confidence >= BG_CONF_MEDIUM)
                fp_here = 1;
            else
                low_here = 1;
        }
        if (fp_here || low_here) {
            print_message("  %s: key=%s value=\"%s\"\n", fp_here ? "FALSE POSITIVE" : "low",
                          key ? key : "-", v);
            dump(key, v, f, n);
        }
        fps += fp_here;
        lows += low_here && !fp_here;
    }
    fclose(fp);
    assert_true(values >= 200);
    double fp_rate = 100.0 * fps / values, low_rate = 100.0 * lows / values;
    print_message("false-positive corpus: %u values, %u false positives at >= medium (%.2f%%), "
                  "%u low-confidence signals (%.2f%%)\n",
                  values, fps, fp_rate, lows, low_rate);
    assert_true(fp_rate <= FP_MAX_PERCENT);
    assert_true(low_rate < LOW_MAX_PERCENT);
}

/* inspect.c skips the detectors for an integer of fewer than 7 digits under
 * a key without hints (short_integer): that is only right while no such
 * string, with or without a minus sign, is found by any detector. Every one
 * of them is tried. */
static void test_short_integers(void **state)
{
    (void)state;
    char b[24];
    bg_detect_finding_t f[4];
    long lim = 1;
    for (int len = 1; len <= 6; len++) {
        lim *= 10;
        for (long v = 0; v < lim; v++) {
            b[0] = '-';
            snprintf(b + 1, sizeof b - 1, "%0*ld", len, v);
            if (bg_detect_scan(NULL, NULL, b + 1, (size_t)len, f, 4) != 0 ||
                bg_detect_scan(NULL, NULL, b, (size_t)len + 1, f, 4) != 0)
                fail_msg("a detector finds the %d-digit integer %s", len, b);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resident_id),
        cmocka_unit_test(test_mobile),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_bank_card),
        cmocka_unit_test(test_imei_imsi),
        cmocka_unit_test(test_device_ids),
        cmocka_unit_test(test_ip),
        cmocka_unit_test(test_gps),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_spans_and_caps),
        cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_unicode_spellings),
        cmocka_unit_test(test_glued),
        cmocka_unit_test(test_encoded),
        cmocka_unit_test(test_false_positive_corpus),
        cmocka_unit_test(test_short_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
