/*
 * The normaliser (inspect/normalize): Unicode digit folding, invisible
 * characters, escapes read as characters, base64/hex decoding and JSON
 * numbers that are integers in disguise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "inspect/normalize.h"

static void test_fold_digits(void **state)
{
    (void)state;
    /* the zero of a few Nd scripts; every digit of each follows it */
    static const uint32_t zeros[] = {0x30,    0x660,   0x6F0,   0x966,   0x9E6,  0xE50,   0xED0,
                                     0xF20,   0x1040,  0x17E0,  0x1810,  0xFF10, 0x104A0, 0x1D7CE,
                                     0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1FBF0};
    for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++)
        for (uint32_t d = 0; d < 10; d++)
            assert_int_equal(bg_norm_fold(zeros[i] + d), '0' + d);
    /* circled, parenthesized, full stop, dingbat, superscript, subscript */
    assert_int_equal(bg_norm_fold(0x2460), '1'); /* ① */
    assert_int_equal(bg_norm_fold(0x2468), '9'); /* ⑨ */
    assert_int_equal(bg_norm_fold(0x24EA), '0'); /* ⓪ */
    assert_int_equal(bg_norm_fold(0x2474), '1'); /* ⑴ */
    assert_int_equal(bg_norm_fold(0x2488), '1'); /* ⒈ */
    assert_int_equal(bg_norm_fold(0x2776), '1'); /* ❶ */
    assert_int_equal(bg_norm_fold(0x00B2), '2'); /* ² */
    assert_int_equal(bg_norm_fold(0x2070), '0'); /* ⁰ */
    assert_int_equal(bg_norm_fold(0x2089), '9'); /* ₉ */
    /* ⑩ is ten, not a digit; CJK and letters are boundaries */
    assert_int_equal(bg_norm_fold(0x2469), 0x80);
    assert_int_equal(bg_norm_fold(0x4E00), 0x80);
    assert_int_equal(bg_norm_fold(0x00E9), 0x80);
    assert_int_equal(bg_norm_fold(0x10FFFF), 0x80);
}

static void test_fold_invisible(void **state)
{
    (void)state;
    static const uint32_t gone[] = {0x00AD,  0x034F,  0x0301,  0x0600,  0x115F, 0x1160, 0x180E,
                                    0x200B,  0x200C,  0x200D,  0x200E,  0x202E, 0x2060, 0x2064,
                                    0x2800,  0x3164,  0xFE00,  0xFE0F,  0xFEFF, 0xFFA0, 0x20DD,
                                    0xE0001, 0xE0031, 0xE007F, 0xE0100, 0xE01EF};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        assert_int_equal(bg_norm_fold(gone[i]), 0);
    assert_int_equal(bg_norm_fold(0x3000), ' ');
    assert_int_equal(bg_norm_fold(0x00A0), ' ');
    assert_int_equal(bg_norm_fold(0x2014), '-');
    assert_int_equal(bg_norm_fold(0x2212), '-');
    assert_int_equal(bg_norm_fold(0x3002), '.');
    assert_int_equal(bg_norm_fold(0xFF20), '@');
    assert_int_equal(bg_norm_fold(0xFF41), 'a');
}

/* Read all of V through bg_norm_next(); OUT gets the folded bytes. */
static size_t read_all(const char *v, char *out, unsigned *escaped)
{
    size_t len = strlen(v), o = 0, k = 0;
    *escaped = 0;
    while (o < len) {
        unsigned c, how;
        size_t l = bg_norm_next((const unsigned char *)v, len, o, &c, &how);
        assert_true(l >= 1 && o + l <= len);
        if (c != 0)
            out[k++] = (char)c;
        *escaped |= how;
        o += l;
    }
    out[k] = 0;
    return k;
}

static void test_escapes(void **state)
{
    (void)state;
    char out[128];
    unsigned esc;
    read_all("%31%33%38", out, &esc);
    assert_string_equal(out, "138");
    assert_true(esc & BG_NORM_ESCAPED);
    read_all("%2531%2533", out, &esc);
    assert_string_equal(out, "13");
    read_all("&#49;&#x33;&#X38;&amp;#49;", out, &esc);
    assert_string_equal(out, "1381");
    read_all("%EF%BC%91%E2%80%8B2", out, &esc); /* full-width 1, zero-width space */
    assert_string_equal(out, "12");
    /* not escapes: left as they are */
    read_all("100% &amp; &#; &#xZZ; %zz %", out, &esc);
    assert_string_equal(out, "100% &amp; &#; &#xZZ; %zz %");
    assert_int_equal(esc, 0);
    read_all("&#1114112;", out, &esc); /* above U+10FFFF */
    assert_string_equal(out, "&#1114112;");
    assert_true(bg_norm_has_escape((const unsigned char *)"a%31", 4));
    assert_false(bg_norm_has_escape((const unsigned char *)"a%20b&amp;c", 11));
    /* backslash escapes: \u (a surrogate pair: U+1D7CF MATHEMATICAL BOLD
     * DIGIT ONE) and \x */
    read_all("\\u0031\\U0033\\x38\\uD835\\uDFCF", out, &esc);
    assert_string_equal(out, "1381");
    assert_true(esc & BG_NORM_ESCAPED);
    /* ES2015 \\u{..} and C octal escapes */
    read_all("\\u{31}\\u{1D7D1}\\070\\061", out, &esc);
    assert_string_equal(out, "1381");
    read_all("\\u{} \\u{110000} \\089 \\400", out, &esc);
    assert_string_equal(out, "\\u{} \\u{110000} \\089 \\400");
    /* quoted-printable digits in a run of two or more; one alone is text */
    read_all("=31=33=38 a=31", out, &esc);
    assert_string_equal(out, "138 a=31");
    read_all("\\n \\u00 \\xZ1 x=3", out, &esc);
    assert_string_equal(out, "\\n \\u00 \\xZ1 x=3");
    assert_int_equal(esc, 0);
    assert_true(bg_norm_has_escape((const unsigned char *)"a\\u0031", 7));
    /* middle dots and bullets read as '.' (a separator between groups) */
    read_all("138\xc2\xb7"
             "1234\xe2\x80\xa2"
             "5678",
             out, &esc);
    assert_string_equal(out, "138.1234.5678");
}

static void test_decoders(void **state)
{
    (void)state;
    unsigned char out[64];
    size_t used;
    size_t n =
        bg_norm_b64_decode((const unsigned char *)"MTM4MTIzNDU2Nzg=", 16, out, sizeof out, &used);
    assert_int_equal(n, 11);
    assert_int_equal(used, 15);
    assert_memory_equal(out, "13812345678", 11);
    n = bg_norm_b64_decode((const unsigned char *)"-_-_", 4, out, sizeof out, &used);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    n = bg_norm_b64_decode((const unsigned char *)"MTM4MTIz", 8, out, 2, &used);
    assert_int_equal(n, 2); /* capacity */
    n = bg_norm_hex_decode((const unsigned char *)"3133ZZ", 6, out, sizeof out);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "13", 2);
    /* base32: either case, stops at padding */
    n = bg_norm_b32_decode((const unsigned char *)"GE3DMMRTGQ2TMNZYGA======", 24, out, sizeof out,
                           &used);
    assert_int_equal(n, 11);
    assert_int_equal(used, 18);
    assert_memory_equal(out, "16623456780", 11);
    n = bg_norm_b32_decode((const unsigned char *)"ge3dmmrtgq2tmnzyga", 18, out, sizeof out, &used);
    assert_int_equal(n, 11);
    assert_memory_equal(out, "16623456780", 11);
    n = bg_norm_b32_decode((const unsigned char *)"GE3D1", 5, out, sizeof out, &used);
    assert_int_equal(used, 4); /* '1' is not base32 */
}

static void test_cjk_numerals(void **state)
{
    (void)state;
    assert_int_equal(bg_norm_cjk_digit(0x3007), '0'); /* 〇 */
    assert_int_equal(bg_norm_cjk_digit(0x96F6), '0'); /* 零 */
    assert_int_equal(bg_norm_cjk_digit(0x4E00), '1'); /* 一 */
    assert_int_equal(bg_norm_cjk_digit(0x5E7A), '1'); /* 幺 */
    assert_int_equal(bg_norm_cjk_digit(0x8D30), '2'); /* 贰 */
    assert_int_equal(bg_norm_cjk_digit(0x7396), '9'); /* 玖 */
    assert_int_equal(bg_norm_cjk_digit(0x5341), 0);   /* 十: ten, not a digit */
    assert_int_equal(bg_norm_cjk_digit('1'), 0);
    /* the fold table itself keeps them as characters */
    assert_int_equal(bg_norm_fold(0x4E00), 0x80);
    static const char run[] = "一三八 一二三四-五六七八。";
    size_t skip, len = strlen(run);
    size_t e = bg_norm_cjk_run((const unsigned char *)run, len, 0, 0, &skip);
    assert_int_equal(e, len - 3); /* before the full stop */
    assert_int_equal(skip, e);
    /* ten digits: not a run; SKIP still moves past it */
    static const char ten[] = "一二三四五六七八九〇年";
    e = bg_norm_cjk_run((const unsigned char *)ten, strlen(ten), 0, 0, &skip);
    assert_int_equal(e, 0);
    assert_int_equal(skip, 30);
    /* ASCII digits before it count */
    e = bg_norm_cjk_run((const unsigned char *)ten, strlen(ten), 0, 1, &skip);
    assert_int_equal(e, 30);
    /* four separators in a row end the run */
    static const char gap[] = "一三八    一二三四五六七八";
    e = bg_norm_cjk_run((const unsigned char *)gap, strlen(gap), 0, 0, &skip);
    assert_int_equal(e, 0);
}

static void test_json_number(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } v[] = {
        {"13812345678.0", "13812345678"},
        {"1.3812345678e10", "13812345678"},
        {"1.3812345678E+10", "13812345678"},
        {"138123456780e-1", "13812345678"},
        {"13812345678.000", "13812345678"},
        {"-1.5e1", "-15"},
        {"1e3", "1000"},
        {"0.5e1", "5"},
        {"11010519491231002.0", "11010519491231002"},
        /* not integers in disguise */
        {"13812345678", NULL}, /* a plain integer already */
        {"1.5", NULL},
        {"1.3812345678e9", NULL},
        {"0.0", "0"},
        {"01.0", NULL},
        {"1.", NULL},
        {"1e", NULL},
        {"abc", NULL},
        {"1.0 ", NULL},
        {"1e99999", NULL},
        {"1234567890123456789012345678901234567890123.0", NULL},
    };
    char out[64];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int r = bg_normalize_json_number(v[i].in, strlen(v[i].in), out, sizeof out);
        if (v[i].out == NULL) {
            if (r != -1)
                print_error("%s -> %s\n", v[i].in, out);
            assert_int_equal(r, -1);
        } else {
            if (r < 0)
                print_error("%s -> -1\n", v[i].in);
            assert_int_equal(r, (int)strlen(v[i].out));
            assert_string_equal(out, v[i].out);
        }
    }
    assert_int_equal(bg_normalize_json_number("13812345678.0", 13, out, 11), -1); /* cap */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_digits),  cmocka_unit_test(test_fold_invisible),
        cmocka_unit_test(test_escapes),      cmocka_unit_test(test_decoders),
        cmocka_unit_test(test_cjk_numerals), cmocka_unit_test(test_json_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
