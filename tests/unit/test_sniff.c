/*
 * Content sniffing (inspect/sniff): the bytes decide what a body is, not its
 * labels. A gzip stream labelled text/plain, UTF-16 without a label, an
 * ID-card CSV labelled application/octet-stream and a PNG must each be read
 * as what they are, and a charset must transcode to the UTF-8 the detectors
 * read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "inspect/sniff.h"

static void test_magic_and_boms(void **state)
{
    (void)state;
    size_t bom = 9;
    assert_int_equal(bg_sniff("\x1f\x8b\x08\x00", 4, &bom), BG_SNIFF_GZIP);
    assert_int_equal(bg_sniff("\x78\x9c\x01\x02", 4, &bom), BG_SNIFF_ZLIB);
    assert_int_equal(bg_sniff("\x78\xda\x01\x02", 4, &bom), BG_SNIFF_ZLIB);
    /* 'x' followed by a letter is text, not a zlib header. */
    assert_int_equal(bg_sniff("xyz 13812345678", 15, &bom), BG_SNIFF_UTF8);
    assert_int_equal(bg_sniff("\xff\xfe"
                              "1\0"
                              "3\0",
                              6, &bom),
                     BG_SNIFF_UTF16LE);
    assert_int_equal(bom, 2);
    assert_int_equal(bg_sniff("\xfe\xff\0"
                              "1\0"
                              "3",
                              6, &bom),
                     BG_SNIFF_UTF16BE);
    assert_int_equal(bg_sniff("\xff\xfe\0\0"
                              "1\0\0\0",
                              8, &bom),
                     BG_SNIFF_UTF32LE);
    assert_int_equal(bom, 4);
    assert_int_equal(bg_sniff("\xef\xbb\xbf{\"a\":1}", 10, &bom), BG_SNIFF_UTF8);
    assert_int_equal(bom, 3);
    assert_int_equal(bg_sniff("", 0, &bom), BG_SNIFF_EMPTY);
}

static void test_unmarked_utf16_and_utf32(void **state)
{
    (void)state;
    const char *ascii = "{\"phone\":\"13812345678\"}";
    size_t n = strlen(ascii);
    char le[128], be[128], le32[256];
    for (size_t i = 0; i < n; i++) {
        le[2 * i] = ascii[i], le[2 * i + 1] = 0;
        be[2 * i] = 0, be[2 * i + 1] = ascii[i];
        memset(le32 + 4 * i, 0, 4);
        le32[4 * i] = ascii[i];
    }
    assert_int_equal(bg_sniff(le, 2 * n, NULL), BG_SNIFF_UTF16LE);
    assert_int_equal(bg_sniff(be, 2 * n, NULL), BG_SNIFF_UTF16BE);
    assert_int_equal(bg_sniff(le32, 4 * n, NULL), BG_SNIFF_UTF32LE);
}

static void test_binary_formats_and_text(void **state)
{
    (void)state;
    assert_int_equal(bg_sniff("\x89PNG\r\n\x1a\n....", 12, NULL), BG_SNIFF_BINARY);
    assert_string_equal(bg_sniff_binary_format("%PDF-1.7\n", 9), "pdf");
    assert_string_equal(bg_sniff_binary_format("PK\x03\x04rest", 8), "zip");
    assert_null(bg_sniff_binary_format("name,id\n", 8));
    const char *csv = "name,id_no\n张三,110101199003078515\n";
    assert_int_equal(bg_sniff(csv, strlen(csv), NULL), BG_SNIFF_UTF8);
    assert_true(bg_sniff_is_text(csv, strlen(csv)));
    assert_false(bg_sniff_is_text("a\0b", 3));
    assert_false(bg_sniff_is_text("\xc3\x28", 2)); /* invalid UTF-8 */
    /* Random-looking bytes are not text. */
    unsigned char junk[200];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    assert_int_equal(bg_sniff((const char *)junk, sizeof junk, NULL), BG_SNIFF_BINARY);
}

static void test_transcode(void **state)
{
    (void)state;
    char *out;
    size_t n;
    /* "手机13812345678" in GBK */
    const char gbk[] = "\xca\xd6\xbb\xfa"
                       "13812345678";
    assert_int_equal(bg_sniff_transcode(gbk, sizeof gbk - 1, "GB18030", 1024, &out, &n), 0);
    assert_string_equal(out, "手机13812345678");
    free(out);
    /* UTF-7: "+ADE-38" is "138"'s first digit encoded. */
    const char u7[] = "+ADE-3812345678";
    assert_int_equal(bg_sniff_transcode(u7, sizeof u7 - 1, "UTF-7", 1024, &out, &n), 0);
    assert_string_equal(out, "13812345678");
    free(out);
    const char u16[] = "1\0"
                       "3\0"
                       "8\0";
    assert_int_equal(bg_sniff_transcode(u16, 6, "UTF-16LE", 1024, &out, &n), 0);
    assert_string_equal(out, "138");
    free(out);
    /* Invalid input and an output bound both fail. */
    assert_int_equal(bg_sniff_transcode("\xff\xff\xff", 3, "GB18030", 1024, &out, &n), -1);
    assert_int_equal(bg_sniff_transcode(u16, 6, "UTF-16LE", 2, &out, &n), -1);
    assert_int_equal(bg_sniff_transcode("x", 1, "NO-SUCH-CHARSET", 16, &out, &n), -1);
}

static void test_prefix_only(void **state)
{
    (void)state;
    size_t bom = 9;
    /* ordinary text and JSON: nothing to undo, and no pass over the body */
    assert_int_equal(bg_sniff_prefix("{\"a\":1}", 7, &bom), BG_SNIFF_EMPTY);
    assert_int_equal(bom, 0);
    assert_int_equal(bg_sniff_prefix("\x1f\x8b\x08\x00rest", 8, &bom), BG_SNIFF_GZIP);
    assert_int_equal(bg_sniff_prefix("\x78\x9c\x01\x02", 4, &bom), BG_SNIFF_ZLIB);
    assert_int_equal(bg_sniff_prefix("\xef\xbb\xbf{}", 5, &bom), BG_SNIFF_EMPTY);
    assert_int_equal(bom, 3);
    assert_int_equal(bg_sniff_prefix("\xff\xfe"
                                     "1\0"
                                     "3\0",
                                     6, &bom),
                     BG_SNIFF_UTF16LE);
    assert_int_equal(bg_sniff_prefix("{\0\"\0"
                                     "a\0\"\0:\0"
                                     "1\0}\0",
                                     14, &bom),
                     BG_SNIFF_UTF16LE);
    /* a PNG is not "undone" here: binary is bg_sniff_is_text's question */
    assert_int_equal(bg_sniff_prefix("\x89PNG\r\n\x1a\n", 8, &bom), BG_SNIFF_EMPTY);
}

static void test_charset_names(void **state)
{
    (void)state;
    int unknown;
    assert_null(bg_sniff_charset("UTF-8", 5, &unknown));
    assert_false(unknown);
    assert_string_equal(bg_sniff_charset("gb2312", 6, &unknown), "GB18030");
    assert_string_equal(bg_sniff_charset("UTF-16", 6, &unknown), "UTF-16");
    assert_string_equal(bg_sniff_charset("utf-7", 5, &unknown), "UTF-7");
    assert_null(bg_sniff_charset("klingon", 7, &unknown));
    assert_true(unknown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magic_and_boms),
        cmocka_unit_test(test_unmarked_utf16_and_utf32),
        cmocka_unit_test(test_binary_formats_and_text),
        cmocka_unit_test(test_transcode),
        cmocka_unit_test(test_prefix_only),
        cmocka_unit_test(test_charset_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
