/*
 * Hexadecimal, the one home for it (issue 18): ids, key ids, digests and
 * pseudonyms are written in lower-case hex; keys and percent-escapes are
 * read from either case.
 */
#ifndef BG_HEX_H
#define BG_HEX_H

#include <stddef.h>

/* The value of hex digit C (either case), or -1. */
int bg_hex_digit(int c);

/* IN[0..N) as 2N lower-case hex digits into OUT, NUL-terminated: OUT holds
 * at least 2N+1 bytes. */
void bg_hex_encode(const unsigned char *in, size_t n, char *out);

/* Byte C as a percent-escape "%XX" (upper-case digits, RFC 3986 2.1) into
 * OUT (3 bytes, not NUL-terminated). Returns 3. */
size_t bg_hex_pct(unsigned char c, char *out);

/* Flags of bg_hex_pct_decode(). */
enum {
    BG_PCT_PLUS = 1,   /* '+' is a space (forms and query strings) */
    BG_PCT_STRICT = 2, /* a '%' without two hex digits after it fails */
};

/* Percent-decoding: S[0..N) with its "%XX" escapes (either case) as bytes
 * into OUT, at most CAP bytes (N always suffice; a smaller OUT takes what
 * fits). A '%' without two hex digits after it stays as written, or with
 * BG_PCT_STRICT fails the call. Returns the bytes written, or -1. */
long bg_hex_pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags);

/* The same for a whole value that must fit: all of S[0..N) decoded into OUT
 * and NUL-terminated, or -1 when it does not fit in CAP bytes with its NUL
 * (or, with BG_PCT_STRICT, holds a '%' without two hex digits). Returns the
 * decoded length (a decoded NUL byte is the caller's to refuse). */
long bg_hex_pct_decode_all(const char *s, size_t n, char *out, size_t cap, unsigned flags);

/* Hex text S[0..N) (either case) into OUT (CAP bytes). With SKIP_SPACE,
 * white space anywhere (key files wrap lines) is skipped. Returns the bytes
 * written, or -1 when a character is not hex, the digits are odd in number,
 * or OUT is too small. On -1, OUT may hold what was decoded before: a
 * caller reading a secret wipes it. */
long bg_hex_decode(const char *s, size_t n, unsigned char *out, size_t cap, int skip_space);

/* S, exactly 2*NBYTES hex digits (either case) and nothing after, as
 * lower-case hex into OUT (2*NBYTES+1 bytes, NUL-terminated): a pseudonym
 * or digest given by a person. 0, or -1 when S is not such text. */
int bg_hex_lower(const char *s, size_t nbytes, char *out);

#endif
