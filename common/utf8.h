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

/* Code point CP as UTF-8 into OUT (4 bytes); its length, or 0 when CP is a
 * surrogate or above U+10FFFF. */
size_t bg_utf8_encode(uint32_t cp, char out[4]);

#endif
