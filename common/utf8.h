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

/* 1 when P[0..N) is valid UTF-8 as bg_utf8_decode reads it (an empty span
 * is), else 0. ASCII runs cost one compare a byte. */
int bg_utf8_valid(const void *p, size_t n);

/* Code point CP as UTF-8 into OUT (4 bytes); its length, or 0 when CP is a
 * surrogate or above U+10FFFF. */
size_t bg_utf8_encode(uint32_t cp, char out[4]);

/* bg_utf8_decode() inline, for a scanner's per-character loop (the JSON
 * string scanner): the one definition, which bg_utf8_decode() calls. The
 * limits are tested on the lead bytes' ranges and the first continuation
 * byte (E0: A0-BF, no overlong; ED: 80-9F, no surrogate; F0: 90-BF; F4:
 * 80-8F, nothing above U+10FFFF), so a caller that only wants the length
 * pays nothing for the code point. */
static inline size_t bg_utf8_decode_inline(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned b = p[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        if (n >= 2 && (p[1] & 0xC0) == 0x80) {
            *cp = (uint32_t)(b & 0x1F) << 6 | (uint32_t)(p[1] & 0x3F);
            return 2;
        }
    } else if (b >= 0xE0 && b <= 0xEF) {
        if (n >= 3 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 &&
            !(b == 0xE0 && p[1] < 0xA0) && !(b == 0xED && p[1] >= 0xA0)) {
            *cp =
                (uint32_t)(b & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (uint32_t)(p[2] & 0x3F);
            return 3;
        }
    } else if (b >= 0xF0 && b <= 0xF4) {
        if (n >= 4 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 &&
            !(b == 0xF0 && p[1] < 0x90) && !(b == 0xF4 && p[1] >= 0x90)) {
            *cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
                  (uint32_t)(p[2] & 0x3F) << 6 | (uint32_t)(p[3] & 0x3F);
            return 4;
        }
    }
    *cp = UINT32_MAX;
    return 0;
}

#endif
