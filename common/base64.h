/*
 * Base64, the one home for it (issue 18), on OpenSSL's EVP_EncodeBlock and
 * EVP_DecodeBlock. Those take the standard alphabet, padded, with no white
 * space inside; the flags below say what else a caller accepts, and this
 * module turns that into what OpenSSL reads (and takes OpenSSL's padding
 * bytes off its count: EVP_DecodeBlock counts "==" as two zero bytes).
 */
#ifndef BG_BASE64_H
#define BG_BASE64_H

#include <stddef.h>

enum {
    BG_B64_URL = 1,        /* the URL alphabet (- _) instead of + / */
    BG_B64_ANY = 2,        /* either alphabet, even mixed (recorded HAR bodies) */
    BG_B64_SKIP_SPACE = 4, /* space, tab, CR, LF anywhere are skipped */
    BG_B64_NO_PAD = 8,     /* '=' is refused (tokens are written without it) */
};

/* Characters bg_base64_encode writes for N bytes, the NUL not counted
 * (padded; the URL form is shorter by its padding). */
size_t bg_base64_encoded_len(size_t n);

/* IN[0..N) as base64 into OUT, NUL-terminated (OUT holds at least
 * bg_base64_encoded_len(N) + 1 bytes). FLAGS: BG_B64_URL writes the URL
 * alphabet without padding. Returns the characters written. */
size_t bg_base64_encode(const unsigned char *in, size_t n, char *out, unsigned flags);

/* Base64 text S[0..N) into OUT (CAP bytes; N / 4 * 3 + 3 is always enough).
 * Padding is optional unless FLAGS has BG_B64_NO_PAD (then refused); '='
 * may only end the text, at most two. Returns the bytes written, or -1 when
 * malformed (a character outside the alphabet, a lone last character, '='
 * inside), when OUT is too small, or out of memory. */
long bg_base64_decode(const char *s, size_t n, unsigned char *out, size_t cap, unsigned flags);

#endif
