/*
 * UTF-8, the one home for decoding and encoding it (issue 18). Strict:
 * shortest form only, no surrogates, nothing above U+10FFFF, which is also
 * what jansson accepts, so text that passes here is valid in a JSON record.
 */
#ifndef BG_UTF8_H
#define BG_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The sequence at P (N > 0 bytes available): its length (1-4) with the code
 * point in *CP, or 0 when P does not start a valid sequence (*CP is then
 * UINT32_MAX). */
size_t bg_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

/* bg_utf8_decode() inline, for a scanner's per-character loop (the JSON
 * string scanner): the one definition, which bg_utf8_decode() calls. */
static inline size_t bg_utf8_decode_inline(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned c = p[0];
    size_t len;
    uint32_t v, min;
    *cp = UINT32_MAX;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Code point CP as UTF-8 into OUT (4 bytes); its length, or 0 when CP is a
 * surrogate or above U+10FFFF. */
size_t bg_utf8_encode(uint32_t cp, char out[4]);

#endif
