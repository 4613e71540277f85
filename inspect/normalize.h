/*
 * Normalisation for the content detectors: how a reader reads a character.
 *
 * The detectors (inspect/detect.c) match ASCII shapes; this module turns
 * what a sender may write instead into those ASCII bytes, one character at
 * a time, so that the detectors' spans still map back to the caller's
 * original bytes:
 *
 *   - bg_norm_fold(): a code point -> the ASCII byte it reads as. Every
 *     Unicode digit (Nd in every script, mathematical, full-width; circled,
 *     parenthesized, full-stop, dingbat, superscript and subscript digits)
 *     -> '0'..'9'; full-width ASCII -> ASCII; Unicode spaces -> ' ';
 *     dashes/minus -> '-'; ideographic full stops -> '.'; invisible
 *     characters (Cf, Mn, Me: zero-width, bidi controls, variation
 *     selectors, tag characters, combining marks; Hangul and braille
 *     blanks, U+034F) -> 0 (dropped); anything else -> 0x80. The table is
 *     generated (scripts/gen-unicode-tables.py -> unicode_fold.c).
 *   - bg_norm_next(): one character of a value as a reader sees it, with
 *     percent escapes (once or twice: %31, %2531, UTF-8 as %EF%BC%91),
 *     HTML/XML character references (&#49; &#x31; &#X31; &amp;#49;),
 *     backslash escapes (\u0031, \u{31}, \x31, \061) and quoted-printable digit runs
 *     (=31=33) decoded first.
 *   - bg_norm_b64_decode() / bg_norm_b32_decode() / bg_norm_hex_decode():
 *     the decoders the detectors use on base64 (standard or URL-safe),
 *     base32 (RFC 4648, either case) and hex runs.
 *   - bg_norm_cjk_digit() / bg_norm_cjk_run(): Chinese numerals
 *     (〇零一二...九, the financial 壹贰叁..., 幺 for one as phone numbers
 *     are spoken) read as digits, only inside a run long enough to be a
 *     mobile or an ID number (prose keeps them as characters).
 *   - bg_normalize_json_number(): a JSON number that is an integer in
 *     disguise (13812345678.0, 1.3812345678e10) -> its digits.
 *
 * Everything here is bounded, allocation-free and reentrant.
 */
#ifndef BG_NORMALIZE_H
#define BG_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

/* The generated table (unicode_fold.c): stage 1 maps cp >> 7 to a block of
 * stage 2; code points at or above bg_norm_fold_limit fold to 0x80. */
extern const uint32_t bg_norm_fold_limit;
extern const uint8_t bg_norm_fold_stage1[];
extern const uint8_t bg_norm_fold_stage2[][128];

/* The byte code point CP reads as: an ASCII byte, 0 (invisible: drop it)
 * or 0x80 (any other character). O(1). */
static inline unsigned bg_norm_fold(uint32_t cp)
{
    if (cp >= bg_norm_fold_limit)
        return 0x80;
    return bg_norm_fold_stage2[bg_norm_fold_stage1[cp >> 7]][cp & 127];
}

/* Decode one UTF-8 character at P (N > 0 bytes available). Returns its
 * length; *CP is the code point, or UINT32_MAX for an invalid sequence (the
 * length is then 1: the bad byte alone). Strict: no overlongs, no
 * surrogates, nothing above U+10FFFF. */
size_t bg_norm_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

/* How bg_norm_next() read a character. */
#define BG_NORM_ESCAPED 1 /* from a percent escape or a character reference */

/*
 * Read the character at V[O] (O < LEN) as a reader would. Returns the
 * bytes consumed (>= 1); *OUT is its bg_norm_fold() byte (0: invisible).
 * *HOW gets BG_NORM_ESCAPED when the character was escaped. Recognised:
 *   %XX and %25XX (XX a byte; a UTF-8 lead byte takes the continuation
 *   bytes from the escapes that follow), &#D...; and &#xH...; / &#XH...;
 *   (at most 7 digits, a code point up to U+10FFFF), the same after
 *   "&amp;" (double encoding), backslash escapes \uXXXX (surrogate pairs
 *   too), \u{X...}, \xXX and octal \ooo, quoted-printable digits (=3D)
 *   inside a run of two or more. Anything else is read as UTF-8 (an invalid
 *   byte is one 0x80). O(1): at most 64 bytes are examined.
 */
size_t bg_norm_next(const unsigned char *v, size_t len, size_t o, unsigned *out, unsigned *how);

/* Does V[0, LEN) hold an escape bg_norm_next() would decode to something
 * a detector reads (a digit, '@', ':', '%' or non-ASCII)? O(LEN). */
int bg_norm_has_escape(const unsigned char *v, size_t len);

/* The base64 alphabets (standard and URL-safe): 1 + the value of
 * A-Z a-z 0-9 + / - _; 0 for every other byte ('=' included). */
extern const unsigned char bg_norm_b64_val[256];

/*
 * Decode base64 S[0, N) (standard or URL-safe, mixed; no padding needed;
 * stops at the first character outside the alphabet, '=' included) into
 * OUT, at most CAP bytes. Returns the bytes written. Sets *USED to the
 * characters consumed (a multiple of 4 unless the input ended).
 */
size_t bg_norm_b64_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                          size_t *used);

/* 1 + the value of an RFC 4648 base32 character (A-Z or a-z, 2-7); 0 for
 * every other byte. */
extern const unsigned char bg_norm_b32_val[256];

/*
 * Decode base32 S[0, N) (RFC 4648 alphabet, upper or lower case; no padding
 * needed; stops at the first character outside the alphabet, '=' included)
 * into OUT, at most CAP bytes. Returns the bytes written; *USED the
 * characters consumed.
 */
size_t bg_norm_b32_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                          size_t *used);

/* The digit ('0'..'9') a Chinese numeral CP reads as in a spoken or
 * written-out number: 〇零一二三四五六七八九, 壹贰叁肆伍陆柒捌玖 (and the
 * traditional 貳參陸), 幺 (one, as phone numbers are read aloud), 两 (two);
 * 0 for any other code point. Ten, hundred... (十百千) are not digits. */
unsigned bg_norm_cjk_digit(uint32_t cp);

/* Digits a run must hold before its Chinese numerals read as digits: a
 * mobile's 11. */
#define BG_NORM_CJK_RUN_MIN 11

/*
 * Is V[O, LEN) (O at a Chinese numeral, as bg_norm_cjk_digit() reads it)
 * the start of a run of digits - Chinese numerals, any character
 * bg_norm_fold() reads as a digit, with separators (spaces, dashes, dots,
 * slashes, invisible characters; at most 3 between two digits) - that holds
 * at least BG_NORM_CJK_RUN_MIN digits counting BEFORE ASCII digits that
 * precede O? Returns the end offset of the run (after its last digit) when
 * it does, and 0 when it does not; *SKIP gets the end of the run either way
 * (a caller need not ask again before it). Reads at most 256 bytes: longer
 * runs are not one number. O(1).
 */
size_t bg_norm_cjk_run(const unsigned char *v, size_t len, size_t o, unsigned before, size_t *skip);

/* Decode hex pairs S[0, N) (N even; case-insensitive) into OUT (CAP bytes).
 * Returns the bytes written (stops at a non-hex character or CAP). */
size_t bg_norm_hex_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap);

/*
 * A JSON number token S[0, N) that is an integer in disguise: a fraction of
 * zeros ("13812345678.0"), or an exponent that leaves no fraction
 * ("1.3812345678e10", "1.3812345678E+10", "138123456780e-1"). Writes the
 * integer's decimal digits (with a leading '-' if negative) and a NUL to OUT
 * and returns their length; -1 when S is not such a number, is a plain
 * integer already, has more than 40 digits, or OUT (CAP bytes) is too
 * small. O(N).
 */
int bg_normalize_json_number(const char *s, size_t n, char *out, size_t cap);

#endif
