/*
 * The shared helpers in common/ (issue 18: one home per helper): hex,
 * UTF-8, JSON string escaping, base64, pseudonyms and China time. Every
 * module that writes a record, reads a key or decodes a body goes through
 * these, so their edge cases are what users see: a key file wrapped over
 * lines, a recorded body in URL-safe base64 without padding, a record that
 * must load as JSON whatever bytes a path held, a birthday at midnight in
 * Beijing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/base64.h"
#include "common/chinatime.h"
#include "common/hex.h"
#include "common/pseudonym.h"
#include "common/sbuf.h"
#include "common/utf8.h"
#include "common/util.h"

static void test_hex(void **state)
{
    (void)state;
    char out[16];
    bg_hex_encode((const unsigned char *)"\x00\x9f\xa0\xff", 4, out);
    assert_string_equal(out, "009fa0ff");
    bg_hex_encode((const unsigned char *)"", 0, out);
    assert_string_equal(out, "");

    unsigned char b[8];
    assert_int_equal(bg_hex_decode("009FA0ff", 8, b, sizeof b, 0), 4);
    assert_memory_equal(b, "\x00\x9f\xa0\xff", 4);
    /* A key file wrapped over lines reads the same, only when asked. */
    assert_int_equal(bg_hex_decode("00 9f\n a0\r\n\tff\n", 15, b, sizeof b, 1), 4);
    assert_memory_equal(b, "\x00\x9f\xa0\xff", 4);
    assert_int_equal(bg_hex_decode("00 9f", 5, b, sizeof b, 0), -1);
    assert_int_equal(bg_hex_decode("009", 3, b, sizeof b, 0), -1); /* odd */
    assert_int_equal(bg_hex_decode("0g", 2, b, sizeof b, 0), -1);  /* not hex */
    assert_int_equal(bg_hex_decode("0011", 4, b, 1, 0), -1);       /* too long */
    assert_int_equal(bg_hex_decode("", 0, b, sizeof b, 0), 0);
    /* A pseudonym typed by a person (`audit subject --pseudonym`): exactly
     * 2N digits, either case, read as lower case. */
    char low[9];
    assert_int_equal(bg_hex_lower("009FA0ff", 4, low), 0);
    assert_string_equal(low, "009fa0ff");
    assert_int_equal(bg_hex_lower("009FA0f", 4, low), -1);   /* short */
    assert_int_equal(bg_hex_lower("009FA0ff0", 4, low), -1); /* long */
    assert_int_equal(bg_hex_lower("009FA0fg", 4, low), -1);  /* not hex */
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        assert_int_equal(bg_hex_digit(c), want);
    }
    assert_int_equal(bg_hex_digit(-1), -1); /* a signed char above 0x7f */
    /* Percent-escapes are upper case (RFC 3986 2.1: what routes compare). */
    char pct[4] = "";
    assert_int_equal(bg_hex_pct(0x2f, pct), 3);
    assert_string_equal(pct, "%2F");
    assert_int_equal(bg_hex_pct(0xe4, pct), 3);
    assert_string_equal(pct, "%E4");
}

/* Percent-decoding: forms and queries read '+' as a space, a form field
 * with a broken escape is refused (strict), while the record redactor and
 * the path reader keep a broken escape as written (lenient) and stop at
 * their buffer. */
/* A whole query value: decoded and NUL-terminated, refused when it does not
 * fit with its NUL (counting decoded bytes: escapes shrink it) or, strict,
 * when a '%' lacks two hex digits. */
static void test_pct_decode_all(void **state)
{
    (void)state;
    char o[8];
    assert_int_equal(bg_hex_pct_decode_all("a%41+b", 6, o, sizeof o, BG_PCT_STRICT | BG_PCT_PLUS),
                     4);
    assert_string_equal(o, "aA b");
    assert_int_equal(bg_hex_pct_decode_all("a+b", 3, o, sizeof o, BG_PCT_STRICT), 3);
    assert_string_equal(o, "a+b"); /* '+' kept without BG_PCT_PLUS (dates: +08:00) */
    /* 12 bytes that decode to 4 fit in 8; 8 plain bytes do not (no room for the NUL) */
    assert_int_equal(bg_hex_pct_decode_all("%41%42%43%44", 12, o, sizeof o, BG_PCT_STRICT), 4);
    assert_string_equal(o, "ABCD");
    assert_int_equal(bg_hex_pct_decode_all("abcdefgh", 8, o, sizeof o, 0), -1);
    assert_int_equal(bg_hex_pct_decode_all("abcdefg", 7, o, sizeof o, 0), 7);
    assert_int_equal(bg_hex_pct_decode_all("a%4", 3, o, sizeof o, BG_PCT_STRICT), -1);
    assert_int_equal(bg_hex_pct_decode_all("a%zz", 4, o, sizeof o, BG_PCT_STRICT), -1);
    assert_int_equal(bg_hex_pct_decode_all("a%zz", 4, o, sizeof o, 0), 4); /* kept as written */
    assert_int_equal(bg_hex_pct_decode_all("", 0, o, sizeof o, 0), 0);
    assert_string_equal(o, "");
    assert_int_equal(bg_hex_pct_decode_all("", 0, o, 0, 0), -1);
}

static void test_pct_decode(void **state)
{
    (void)state;
    char o[32];
    const char *s = "a%2Fb+c%e4%B8%ad";
    long n = bg_hex_pct_decode(s, strlen(s), o, sizeof o, BG_PCT_PLUS);
    assert_int_equal(n, 8);
    assert_memory_equal(o, "a/b c\xe4\xb8\xad", 8);
    assert_int_equal(bg_hex_pct_decode(s, strlen(s), o, sizeof o, 0), 8);
    assert_memory_equal(o, "a/b+c", 5); /* '+' as written */
    /* broken escapes: "%", "%4", "%zz", a '%' two from the end */
    const char *bad[] = {"x%", "x%4", "%zz", "1%4g", "%%41"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t bl = strlen(bad[i]);
        assert_int_equal(bg_hex_pct_decode(bad[i], bl, o, sizeof o, BG_PCT_STRICT), -1);
        n = bg_hex_pct_decode(bad[i], bl, o, sizeof o, 0);
        assert_true(n > 0);
        assert_int_equal(o[0], bad[i][0]); /* kept as written */
    }
    n = bg_hex_pct_decode("%%41", 4, o, sizeof o, 0);
    assert_int_equal(n, 2);
    assert_memory_equal(o, "%A", 2);
    /* the escape at the very end is read */
    assert_int_equal(bg_hex_pct_decode("ab%41", 5, o, sizeof o, BG_PCT_STRICT), 3);
    assert_memory_equal(o, "abA", 3);
    /* a small buffer takes what fits */
    assert_int_equal(bg_hex_pct_decode("%41%42%43", 9, o, 2, 0), 2);
    assert_memory_equal(o, "AB", 2);
    assert_int_equal(bg_hex_pct_decode("", 0, o, sizeof o, BG_PCT_STRICT), 0);
}

static void test_utf8_decode(void **state)
{
    (void)state;
    uint32_t cp;
    assert_int_equal(bg_utf8_decode((const unsigned char *)"A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(bg_utf8_decode((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
    assert_int_equal(cp, 0xE9);
    assert_int_equal(bg_utf8_decode((const unsigned char *)"\xe4\xb8\xad", 3, &cp), 3);
    assert_int_equal(cp, 0x4E2D); /* 中 */
    assert_int_equal(bg_utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    /* Overlong forms, surrogates, beyond U+10FFFF, truncated, stray
     * continuation bytes: refused. */
    static const char *const bad[] = {
        "\xc0\x80",         "\xc1\xbf",         "\xe0\x80\x80", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\x80",         "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(bg_utf8_decode((const unsigned char *)bad[i], strlen(bad[i]), &cp), 0);
        assert_int_equal(cp, UINT32_MAX);
    }
    assert_int_equal(bg_utf8_decode((const unsigned char *)"\xe4\xb8", 2, &cp), 0);
    assert_int_equal(bg_utf8_decode((const unsigned char *)"\xe4\x41\xad", 3, &cp), 0);
}

/* bg_utf8_valid: a whole span or nothing; GBK and Latin-1 bytes (what an
 * HTTP head's obs-text may carry) are not UTF-8. */
static void test_utf8_valid(void **state)
{
    (void)state;
    assert_int_equal(bg_utf8_valid("", 0), 1);
    assert_int_equal(bg_utf8_valid("plain ascii", 11), 1);
    assert_int_equal(bg_utf8_valid("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", 14), 1);
    assert_int_equal(bg_utf8_valid("\xef\xbc\x91\xef\xbc\x93", 6), 1); /* full-width 13 */
    assert_int_equal(bg_utf8_valid("\xa3\xb1\xa3\xb3", 4), 0);         /* the same in GBK */
    assert_int_equal(bg_utf8_valid("caf\xe9", 4), 0);                  /* Latin-1 */
    assert_int_equal(bg_utf8_valid("ok\xe4\xb8", 4), 0);               /* cut short */
    assert_int_equal(bg_utf8_valid("\xc0\xae", 2), 0);                 /* overlong */
    /* the length is respected: valid up to N, whatever follows */
    assert_int_equal(bg_utf8_valid("ab\xff", 2), 1);
}

/* Every sequence of up to three bytes, and every four-byte one with each
 * lead byte F0-F4 and its continuation classes: accepted exactly when it
 * is the shortest encoding of a scalar value (re-encoding what was
 * decoded gives the same bytes back), and then its length is 1-4. */
static void test_utf8_decode_every_sequence(void **state)
{
    (void)state;
    unsigned char p[4] = {0};
    size_t accepted = 0;
    for (unsigned b0 = 0; b0 < 256; b0++)
        for (unsigned b1 = 0; b1 < 256; b1++)
            for (unsigned b2 = 0; b2 < 256; b2++) {
                static const unsigned char b3s[] = {0x00, 0x7F, 0x80, 0xBF, 0xC0, 0xFF};
                size_t nb3 = b0 >= 0xF0 && b0 <= 0xF4 ? sizeof b3s : 1;
                for (size_t k = 0; k < nb3; k++) {
                    p[0] = (unsigned char)b0, p[1] = (unsigned char)b1;
                    p[2] = (unsigned char)b2, p[3] = b3s[k];
                    size_t n = b0 >= 0xF0 ? 4 : 3;
                    uint32_t cp;
                    size_t l = bg_utf8_decode(p, n, &cp);
                    if (l == 0) {
                        assert_int_equal(cp, UINT32_MAX);
                        continue;
                    }
                    char o[4];
                    assert_int_equal(bg_utf8_encode(cp, o), l);
                    assert_memory_equal(o, p, l);
                    accepted += l == n;
                }
            }
    /* the three-byte scalars (U+0800-U+FFFF less 2,048 surrogates) and
     * the four-byte ones at the six chosen fourth bytes (two valid) */
    assert_int_equal(accepted, (0x10000 - 0x800 - 0x800) + (0x110000 - 0x10000) / 64 * 2);
}

static void test_utf8_round_trip(void **state)
{
    (void)state;
    /* Every scalar value encodes and decodes back to itself; surrogates and
     * values beyond U+10FFFF do not encode. */
    for (uint32_t c = 0; c <= 0x110000; c++) {
        char o[4];
        size_t n = bg_utf8_encode(c, o);
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) {
            assert_int_equal(n, 0);
            continue;
        }
        assert_true(n >= 1 && n <= 4);
        uint32_t back;
        assert_int_equal(bg_utf8_decode((const unsigned char *)o, n, &back), n);
        assert_int_equal(back, c);
    }
}

/* S as bg_sbuf_json_str writes it, NUL-terminated (caller frees). */
static char *json_string_of(const char *s, size_t n)
{
    bg_sbuf_t b;
    memset(&b, 0, sizeof b);
    bg_sbuf_json_str(&b, s, n);
    bg_sbuf_add(&b, "", 1);
    assert_false(b.failed);
    return b.p;
}

static void test_json_escaping(void **state)
{
    (void)state;
    char *j = json_string_of("a\"b\\c\n\t\r\x01 中", strlen("a\"b\\c\n\t\r\x01 中"));
    assert_string_equal(j, "\"a\\\"b\\\\c\\n\\t\\r\\u0001 中\"");
    free(j);
    /* Whatever bytes a path held, the record loads as JSON: an overlong
     * form, an encoded surrogate, a truncated sequence and a lone byte each
     * become U+FFFD, valid text around them stays as it was. */
    static const char raw[] = "x\xc0\x80y\xed\xa0\x80z\xe4\xb8w\xff中";
    j = json_string_of(raw, sizeof raw - 1);
    json_error_t err;
    json_t *v = json_loads(j, JSON_DECODE_ANY, &err);
    assert_non_null(v);
    assert_string_equal(json_string_value(v),
                        "x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbdw\xef\xbf\xbd中");
    json_decref(v);
    free(j);
}

/* The word-at-a-time fast path stops at every byte that needs escaping
 * whatever its place in the word: each byte value 0x00-0xff put at every
 * offset 0-23 of plain text gives the string jansson reads back (escaped,
 * or U+FFFD for a lone high byte), never the raw control byte. */
static void test_json_escaping_every_byte_every_offset(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < 24; at++) {
            char in[32];
            memset(in, 'a', sizeof in);
            in[at] = (char)c;
            char *j = json_string_of(in, sizeof in);
            for (const char *p = j; *p != '\0'; p++)
                assert_true((unsigned char)*p >= 0x20); /* no raw control byte */
            json_error_t err;
            json_t *v = json_loads(j, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
            assert_non_null(v);
            const char *got = json_string_value(v);
            if (c < 0x80) {
                assert_int_equal(json_string_length(v), sizeof in);
                assert_memory_equal(got, in, sizeof in);
            } else { /* a lone high byte: U+FFFD in its place */
                assert_int_equal(json_string_length(v), sizeof in + 2);
                assert_memory_equal(got + at, "\xef\xbf\xbd", 3);
            }
            json_decref(v);
            free(j);
        }
    }
}

/* A record built on a caller's small buffer has the same bytes as one built
 * on the heap, across the move to the heap, and the caller's buffer is
 * never freed (ASan would report it). Plain values take the fast path,
 * values with an escape part way through the slow one. */
static void test_sbuf_borrowed(void **state)
{
    (void)state;
    char small[16];
    bg_sbuf_t a, h;
    bg_sbuf_init_buf(&a, small, sizeof small);
    memset(&h, 0, sizeof h);
    bg_sbuf_t *both[2] = {&a, &h};
    for (int k = 0; k < 2; k++) {
        bg_sbuf_t *b = both[k];
        bg_sbuf_adds(b, "{");
        bg_sbuf_json_kv(b, 1, "id", "r1");
        assert_true(k == 1 || b->p == small); /* still fits */
        bg_sbuf_json_kv(b, 0, "path", "$.customer.name");
        bg_sbuf_json_kv(b, 0, "why", "tab\there \"quoted\" 中");
        bg_sbuf_adds(b, ",\"n\":");
        bg_sbuf_addu(b, 18446744073709551615u);
        bg_sbuf_adds(b, "}");
        assert_false(b->failed);
    }
    assert_ptr_not_equal(a.p, small);
    assert_int_equal(a.n, h.n);
    assert_string_equal(a.p, "{\"id\":\"r1\",\"path\":\"$.customer.name\",\"why\":\"tab\\there "
                             "\\\"quoted\\\" 中\",\"n\":18446744073709551615}");
    assert_string_equal(a.p, h.p);
    bg_sbuf_free(&a);
    bg_sbuf_free(&h);
    /* Freed while still on the caller's buffer: nothing to free. */
    bg_sbuf_init_buf(&a, small, sizeof small);
    bg_sbuf_json_cstr(&a, "ok");
    assert_string_equal(small, "\"ok\"");
    bg_sbuf_free(&a);
}

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char o[16];
        unsigned char d[16];
        size_t n = strlen(plain[i]);
        assert_int_equal(bg_base64_encoded_len(n), strlen(enc[i]));
        assert_int_equal(bg_base64_encode((const unsigned char *)plain[i], n, o, 0),
                         strlen(enc[i]));
        assert_string_equal(o, enc[i]);
        assert_int_equal(bg_base64_decode(enc[i], strlen(enc[i]), d, sizeof d, 0), (long)n);
        assert_memory_equal(d, plain[i], n);
        /* Padding is optional on input. */
        size_t unpadded = strcspn(enc[i], "=");
        assert_int_equal(bg_base64_decode(enc[i], unpadded, d, sizeof d, 0), (long)n);
        assert_memory_equal(d, plain[i], n);
    }
}

static void test_base64_forms(void **state)
{
    (void)state;
    unsigned char d[16];
    char o[16];
    /* "\xfb\xff\xbf" is "+/+/" in the standard alphabet, "-_-_" in the URL one. */
    assert_int_equal(bg_base64_encode((const unsigned char *)"\xfb\xff\xbf", 3, o, 0), 4);
    assert_string_equal(o, "+/+/");
    assert_int_equal(bg_base64_encode((const unsigned char *)"\xfb\xff\xbf\xfb", 4, o, BG_B64_URL),
                     6); /* no padding */
    assert_string_equal(o, "-_-_-w");
    assert_int_equal(bg_base64_decode("-_-_-w", 6, d, sizeof d, BG_B64_URL | BG_B64_NO_PAD), 4);
    assert_memory_equal(d, "\xfb\xff\xbf\xfb", 4);
    /* One alphabet at a time unless told otherwise. */
    assert_int_equal(bg_base64_decode("-_-_", 4, d, sizeof d, 0), -1);
    assert_int_equal(bg_base64_decode("+/+/", 4, d, sizeof d, BG_B64_URL), -1);
    assert_int_equal(bg_base64_decode("+_-/", 4, d, sizeof d, BG_B64_ANY), 3);
    assert_memory_equal(d, "\xfb\xff\xbf", 3);
    /* Tokens are written without '=': one there is malformed. */
    assert_int_equal(bg_base64_decode("Zg==", 4, d, sizeof d, BG_B64_URL | BG_B64_NO_PAD), -1);
    /* White space only where the caller reads wrapped text. */
    assert_int_equal(bg_base64_decode("Zm9v\r\nYmFy\n", 11, d, sizeof d, 0), -1);
    assert_int_equal(bg_base64_decode("Zm9v\r\nYm Fy\n", 12, d, sizeof d, BG_B64_SKIP_SPACE), 6);
    assert_memory_equal(d, "foobar", 6);
    /* Malformed: a lone last character, '=' inside, too much padding,
     * padding that does not complete a group, a character outside. */
    static const char *const bad[] = {
        "Z", "Zm9vY", "Zg=a", "Z===", "Zg===", "Zm9=v", "Zm8==", "Zm9v=", "Zm.v"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bg_base64_decode(bad[i], strlen(bad[i]), d, sizeof d, BG_B64_ANY), -1);
    /* OUT too small: refused, not truncated. */
    assert_int_equal(bg_base64_decode("Zm9vYmFy", 8, d, 5, 0), -1);
    assert_int_equal(bg_base64_decode("Zm9vYmFy", 8, d, 6, 0), 6);
}

static void test_base64_round_trip(void **state)
{
    (void)state;
    /* Every length from 0 to 600 bytes, both alphabets: decode(encode(x)) is x. */
    unsigned char in[600], back[600];
    char text[820];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 151 + 7);
    for (size_t n = 0; n <= sizeof in; n++) {
        for (unsigned f = 0; f <= BG_B64_URL; f += BG_B64_URL) {
            size_t tl = bg_base64_encode(in, n, text, f);
            assert_true(tl <= bg_base64_encoded_len(n));
            assert_int_equal(strlen(text), tl);
            assert_int_equal(bg_base64_decode(text, tl, back, n, f), (long)n);
            assert_memory_equal(back, in, n);
        }
    }
}

static void test_pseudonym(void **state)
{
    (void)state;
    char out[BG_PSEUDONYM_LEN + 1];
    /* RFC 4231 test case 2: HMAC-SHA256 in lower-case hex. */
    assert_int_equal(
        bg_pseudonym((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", 28, out), 0);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* No key: no pseudonym, never the raw identifier. */
    assert_int_equal(bg_pseudonym((const unsigned char *)"", 0, "13812345678", 11, out), -1);
    assert_string_equal(out, "");
    /* `audit subject` (cli/audit_subject.c) and the decision both call
     * bg_pseudonym; it must be exactly HMAC-SHA256 in lower-case hex, as
     * docs/audit.md tells an auditor who recomputes one: checked against
     * OpenSSL's one-shot HMAC() formatted here, on identifiers of every
     * kind (digits, e-mail, ID number with X, UTF-8). */
    static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
    static const char *const ids[] = {"13812345678", "user@example.cn", "11010519491231002X",
                                      "中文"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char theirs[65];
        unsigned char mac[32];
        unsigned int ml = 0;
        assert_int_equal(bg_pseudonym(key, sizeof key, ids[i], strlen(ids[i]), out), 0);
        assert_non_null(HMAC(EVP_sha256(), key, (int)sizeof key, (const unsigned char *)ids[i],
                             strlen(ids[i]), mac, &ml));
        assert_int_equal(ml, 32);
        for (size_t k = 0; k < 32; k++)
            snprintf(theirs + 2 * k, 3, "%02x", mac[k]);
        assert_string_equal(out, theirs);
    }
    /* The prepared key the consent registry looks subjects up with gives
     * the same bytes: a consent granted for a subject is found for the
     * pseudonym a record shows. A key longer than a block (RFC 4231 case 6)
     * is hashed first. */
    unsigned char long_key[131];
    memset(long_key, 0xaa, sizeof long_key);
    const struct {
        const unsigned char *k;
        size_t kl;
    } keys[] = {{key, sizeof key}, {long_key, sizeof long_key}};
    for (size_t j = 0; j < 2; j++) {
        bg_pseudonym_key_t *pk = bg_pseudonym_key_new(keys[j].k, keys[j].kl);
        assert_non_null(pk);
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            unsigned char mac[32];
            char hex[65];
            assert_int_equal(bg_pseudonym_mac(pk, ids[i], strlen(ids[i]), mac), 0);
            bg_hex_encode(mac, sizeof mac, hex);
            assert_int_equal(bg_pseudonym(keys[j].k, keys[j].kl, ids[i], strlen(ids[i]), out), 0);
            assert_string_equal(hex, out);
        }
        bg_pseudonym_key_free(pk);
    }
    const char *t6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    bg_pseudonym_key_t *pk = bg_pseudonym_key_new(long_key, sizeof long_key);
    unsigned char mac[32];
    char hex[65];
    assert_int_equal(bg_pseudonym_mac(pk, t6, strlen(t6), mac), 0);
    bg_hex_encode(mac, sizeof mac, hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    bg_pseudonym_key_free(pk);
    assert_null(bg_pseudonym_key_new(key, 0)); /* no key: no pseudonyms */
}

static void test_china_time(void **state)
{
    (void)state;
    /* 2026-12-31T16:00:00Z is midnight, 1 January 2027, in Beijing. */
    const int64_t midnight = 1798732800000LL;
    assert_int_equal(bg_china_yyyymmdd(midnight), 20270101);
    assert_int_equal(bg_china_yyyymmdd(midnight - 1), 20261231);
    struct tm tm;
    assert_int_equal(bg_china_tm(midnight - 1, &tm), 0);
    assert_int_equal(tm.tm_hour, 23);
    assert_int_equal(tm.tm_min, 59);
    assert_int_equal(tm.tm_sec, 59);
    /* Before the epoch the second rounds down, not towards zero. */
    assert_int_equal(bg_china_tm(-1, &tm), 0);
    assert_int_equal(tm.tm_year, 70);
    assert_int_equal(tm.tm_hour, 7);
    assert_int_equal(tm.tm_sec, 59);
    assert_int_equal(BG_CHINA_OFFSET_S, 28800);
}

/* A stream read whole (`bordergate scan -`, HAR attachments): every byte
 * past the first buffer's growth, NUL bytes kept, NUL-terminated; over MAX
 * is EFBIG (exactly MAX is not); a directory is its read error, not an
 * empty payload. */
static void test_read_stream(void **state)
{
    (void)state;
    FILE *fp = tmpfile();
    assert_non_null(fp);
    for (int i = 0; i < 200000; i++)
        fputc(i % 251, fp);
    size_t len = 0;
    rewind(fp);
    char *b = bg_util_read_stream(fp, 0, &len);
    assert_non_null(b);
    assert_int_equal(len, 200000);
    assert_int_equal((unsigned char)b[0], 0);
    assert_int_equal((unsigned char)b[199999], 199999 % 251);
    assert_int_equal(b[200000], '\0');
    free(b);
    rewind(fp);
    b = bg_util_read_stream(fp, 200000, &len);
    assert_non_null(b);
    free(b);
    rewind(fp);
    errno = 0;
    assert_null(bg_util_read_stream(fp, 199999, &len));
    assert_int_equal(errno, EFBIG);
    fclose(fp);
    fp = fopen("/", "rb");
    assert_non_null(fp);
    assert_null(bg_util_read_stream(fp, 0, &len));
    assert_int_equal(errno, EISDIR);
    fclose(fp);
}

/* An address in the records and the access log reads as inet_ntop writes
 * it: every byte value at every position, and both ends of the range. */
static void test_addr_string_ipv4(void **state)
{
    (void)state;
    const unsigned char edge[][4] = {
        {0, 0, 0, 0}, {255, 255, 255, 255}, {127, 0, 0, 1}, {10, 0, 100, 9}, {1, 20, 255, 0}};
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    char want[INET_ADDRSTRLEN], got[64];
    for (size_t k = 0; k < sizeof edge / sizeof edge[0] + 4 * 256; k++) {
        unsigned char a[4] = {192, 168, 7, 42};
        if (k < sizeof edge / sizeof edge[0])
            memcpy(a, edge[k], 4);
        else
            a[(k - sizeof edge / sizeof edge[0]) / 256] =
                (unsigned char)((k - sizeof edge / sizeof edge[0]) % 256);
        memcpy(&sin.sin_addr, a, 4);
        assert_non_null(inet_ntop(AF_INET, &sin.sin_addr, want, sizeof want));
        memset(got, 'x', sizeof got);
        bg_util_addr_string((struct sockaddr *)&sin, got, sizeof got);
        assert_string_equal(got, want);
    }
    /* A buffer too small for any dotted quad gets inet_ntop's answer. */
    char small[8] = "unset";
    bg_util_addr_string((struct sockaddr *)&sin, small, sizeof small);
    assert_true(strlen(small) < sizeof small);
}

/* Field names are compared without regard to ASCII case, whole: not a
 * prefix, not past a NUL, and no other byte folded. */
static void test_ieq(void **state)
{
    (void)state;
    assert_true(bg_util_ieq("Content-Type", 12, "content-type"));
    assert_true(bg_util_ieq("CONTENT-TYPE", 12, "content-type"));
    assert_true(bg_util_ieq("host", 4, "HOST"));
    assert_true(bg_util_ieq("", 0, ""));
    assert_false(bg_util_ieq("Content-Typ", 11, "content-type"));
    assert_false(bg_util_ieq("Content-Types", 13, "content-type"));
    assert_false(bg_util_ieq("host\0", 5, "host"));
    assert_false(bg_util_ieq("hos\0", 4, "host"));
    assert_false(bg_util_ieq("Hosu", 4, "host"));
    /* '@' and '`' are 0x20 apart from no letter's case: not equal. */
    assert_false(bg_util_ieq("@", 1, "`"));
    assert_false(bg_util_ieq("[", 1, "{"));
    assert_false(bg_util_ieq("\xc3\x89", 2, "\xc3\xa9"));
}

/* bg_util_cat joins as snprintf("%s%s...") would, cut to the buffer. */
static void test_concat(void **state)
{
    (void)state;
    char b[8];
    assert_int_equal(bg_util_cat(b, sizeof b, "ab", "", "cd"), 4);
    assert_string_equal(b, "abcd");
    assert_int_equal(bg_util_cat(b, sizeof b, "contract:", "x"), 7);
    assert_string_equal(b, "contrac");
    assert_int_equal(bg_util_cat(b, sizeof b, "abc", "defgh", "ij"), 7);
    assert_string_equal(b, "abcdefg");
    assert_int_equal(bg_util_cat(b, 1, "abc"), 0);
    assert_string_equal(b, "");
    b[0] = 'z';
    assert_int_equal(bg_util_concat(b, 0, (const char *const[]){"abc", NULL}), 0);
    assert_int_equal(b[0], 'z'); /* nothing written without room */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_pct_decode_all),
        cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_decode_every_sequence),
        cmocka_unit_test(test_utf8_round_trip),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_json_escaping_every_byte_every_offset),
        cmocka_unit_test(test_sbuf_borrowed),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_forms),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_pseudonym),
        cmocka_unit_test(test_china_time),
        cmocka_unit_test(test_read_stream),
        cmocka_unit_test(test_addr_string_ipv4),
        cmocka_unit_test(test_ieq),
        cmocka_unit_test(test_concat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
