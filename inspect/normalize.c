/*
 * Normalisation for the content detectors (see normalize.h for the
 * contract). The Unicode folding table is generated: unicode_fold.c.
 */
#include "inspect/normalize.h"

#include <string.h>

#include "common/hex.h"
#include "common/utf8.h"

size_t bg_norm_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    /* common/utf8.c decides; an invalid byte here is one step of its own
     * (*cp UINT32_MAX) so that scanning always moves on. */
    size_t l = bg_utf8_decode(p, n, cp);
    return l > 0 ? l : 1;
}

/* An ASCII digit. */
static inline int dig(unsigned c)
{
    return c - '0' < 10u;
}

/* A percent escape at V[O]: %XX, or %25XX (double). Returns its length and
 * the byte in *B, or 0. */
static size_t pct_at(const unsigned char *v, size_t len, size_t o, unsigned *b)
{
    if (o + 3 > len || v[o] != '%')
        return 0;
    int h = bg_hex_digit(v[o + 1]), l = bg_hex_digit(v[o + 2]);
    if (h < 0 || l < 0)
        return 0;
    if (h == 2 && l == 5 && o + 5 <= len) { /* %25XX: '%' then XX */
        int h2 = bg_hex_digit(v[o + 3]), l2 = bg_hex_digit(v[o + 4]);
        if (h2 >= 0 && l2 >= 0) {
            *b = (unsigned)(h2 * 16 + l2);
            return 5;
        }
    }
    *b = (unsigned)(h * 16 + l);
    return 3;
}

/* A character reference at V[O]: &#D+; &#xH+; (&amp; before the '#' too).
 * Returns its length and the code point in *CP, or 0. */
static size_t ent_at(const unsigned char *v, size_t len, size_t o, uint32_t *cp)
{
    size_t j = o + 1;
    if (j < len && v[j] == '#') {
        j++;
    } else if (o + 6 < len && memcmp(v + o + 1, "amp;#", 5) == 0) {
        j = o + 6;
    } else {
        return 0;
    }
    int hex = j < len && (v[j] | 0x20) == 'x';
    j += (size_t)hex;
    uint32_t val = 0;
    unsigned nd = 0;
    for (; j < len && nd <= 7; j++, nd++) {
        int d = hex ? bg_hex_digit(v[j]) : (dig(v[j]) ? v[j] - '0' : -1);
        if (d < 0)
            break;
        val = val * (hex ? 16u : 10u) + (uint32_t)d;
    }
    if (nd == 0 || nd > 7 || j >= len || v[j] != ';' || val > 0x10FFFF)
        return 0;
    *cp = val;
    return j + 1 - o;
}

/* Four hex digits at V[O]; the value or -1. */
static long hex4(const unsigned char *v, size_t len, size_t o)
{
    if (o + 4 > len)
        return -1;
    long r = 0;
    for (size_t i = 0; i < 4; i++) {
        int h = bg_hex_digit(v[o + i]);
        if (h < 0)
            return -1;
        r = r * 16 + h;
    }
    return r;
}

/* A backslash escape at V[O] as C, JavaScript and JSON write them outside
 * a JSON string's own decoding (double-escaped JSON, form fields, text):
 * \uXXXX (a surrogate pair too), \u{X...} (ES2015), \xXX and \ooo
 * (C octal). Returns its length and the code point in *CP, or 0. */
static size_t bs_at(const unsigned char *v, size_t len, size_t o, uint32_t *cp)
{
    if (o + 1 >= len || v[o] != '\\')
        return 0;
    if ((v[o + 1] | 0x20) == 'x' && o + 4 <= len) {
        int h = bg_hex_digit(v[o + 2]), l = bg_hex_digit(v[o + 3]);
        if (h < 0 || l < 0)
            return 0;
        *cp = (uint32_t)(h * 16 + l);
        return 4;
    }
    if (v[o + 1] >= '0' && v[o + 1] <= '3' && o + 4 <= len && v[o + 2] >= '0' && v[o + 2] <= '7' &&
        v[o + 3] >= '0' && v[o + 3] <= '7') { /* \ooo (C octal) */
        *cp = (uint32_t)((v[o + 1] - '0') * 64 + (v[o + 2] - '0') * 8 + (v[o + 3] - '0'));
        return 4;
    }
    if ((v[o + 1] | 0x20) != 'u')
        return 0;
    if (o + 2 < len && v[o + 2] == '{') { /* \u{1F600} (ES2015) */
        uint32_t val = 0;
        size_t j = o + 3, nd = 0;
        int h;
        while (j < len && nd < 6 && (h = bg_hex_digit(v[j])) >= 0)
            val = val * 16 + (uint32_t)h, j++, nd++;
        if (nd == 0 || j >= len || v[j] != '}' || val > 0x10FFFF)
            return 0;
        *cp = val;
        return j + 1 - o;
    }
    long u = hex4(v, len, o + 2);
    if (u < 0)
        return 0;
    if (u >= 0xD800 && u <= 0xDBFF && o + 12 <= len && v[o + 6] == '\\' &&
        (v[o + 7] | 0x20) == 'u') {
        long lo = hex4(v, len, o + 8);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            *cp = (uint32_t)(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
            return 12;
        }
    }
    *cp = (uint32_t)u;
    return 6;
}

/* Quoted-printable digits: "=3D" where D is a digit, counted only inside a
 * run of at least two ("=31=33=38..."), so "a=31" in ordinary text still
 * reads as it is written. Returns 3 and the digit in *OUT, or 0. */
static size_t qp_at(const unsigned char *v, size_t len, size_t o, unsigned *out)
{
    if (o + 3 > len || v[o] != '=' || v[o + 1] != '3' || !dig(v[o + 2]))
        return 0;
    int next = o + 6 <= len && v[o + 3] == '=' && v[o + 4] == '3' && dig(v[o + 5]);
    int prev = o >= 3 && v[o - 3] == '=' && v[o - 2] == '3' && dig(v[o - 1]);
    if (!next && !prev)
        return 0;
    *out = v[o + 2];
    return 3;
}

size_t bg_norm_next(const unsigned char *v, size_t len, size_t o, unsigned *out, unsigned *how)
{
    unsigned c = v[o];
    *how = 0;
    if (c == '\\') {
        uint32_t cp;
        size_t l = bs_at(v, len, o, &cp);
        if (l == 0) {
            *out = '\\';
            return 1;
        }
        *how = BG_NORM_ESCAPED;
        *out = (cp >= 0xD800 && cp <= 0xDFFF) ? 0x80 : bg_norm_fold(cp);
        return l;
    }
    if (c == '=') {
        size_t l = qp_at(v, len, o, out);
        if (l == 0) {
            *out = '=';
            return 1;
        }
        *how = BG_NORM_ESCAPED;
        return l;
    }
    if (c == '%') {
        unsigned b;
        size_t l = pct_at(v, len, o, &b);
        if (l == 0) {
            *out = '%';
            return 1;
        }
        *how = BG_NORM_ESCAPED;
        if (b < 0x80) {
            *out = b;
            return l;
        }
        /* a UTF-8 sequence spelled as escapes: %EF%BC%91 */
        unsigned char u[4];
        size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1, k = 1, j = o + l;
        u[0] = (unsigned char)b;
        while (k < need) {
            size_t l2 = pct_at(v, len, j, &b);
            if (l2 == 0)
                break;
            u[k++] = (unsigned char)b;
            j += l2;
        }
        uint32_t cp;
        if (k == need && bg_norm_utf8_decode(u, k, &cp) == k && cp != UINT32_MAX) {
            *out = bg_norm_fold(cp);
            return j - o;
        }
        *out = 0x80;
        return l;
    }
    if (c == '&') {
        uint32_t cp;
        size_t l = ent_at(v, len, o, &cp);
        if (l == 0) {
            *out = '&';
            return 1;
        }
        *how = BG_NORM_ESCAPED;
        *out = (cp >= 0xD800 && cp <= 0xDFFF) ? 0x80 : bg_norm_fold(cp);
        return l;
    }
    if (c < 0x80) {
        *out = c;
        return 1;
    }
    uint32_t cp;
    size_t l = bg_norm_utf8_decode(v + o, len - o, &cp);
    *out = cp == UINT32_MAX ? 0x80 : bg_norm_fold(cp);
    return l;
}

int bg_norm_has_escape(const unsigned char *v, size_t len)
{
    for (size_t o = 0; o < len; o++) {
        if (v[o] != '%' && v[o] != '&' && v[o] != '\\' && v[o] != '=')
            continue;
        unsigned out, how;
        size_t l = bg_norm_next(v, len, o, &out, &how);
        if (how && (out - '0' < 10u || out == '@' || out == ':' || out == '%' || out >= 0x80))
            return 1;
        o += l - 1;
    }
    return 0;
}

/* clang-format off */
const unsigned char bg_norm_b64_val[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['-'] = 63,
    ['/'] = 64, ['_'] = 64,
};
/* clang-format on */

/* Decode a run of characters worth WIDTH bits each (VAL: value + 1, 0 for
 * a character outside the alphabet) until the first outside it or CAP
 * bytes; *USED says how many characters were read. Trailing bits that do
 * not make a byte are dropped. */
static size_t decode_bits(const unsigned char *val, unsigned width, const unsigned char *s,
                          size_t n, unsigned char *out, size_t cap, size_t *used)
{
    size_t i = 0, k = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    while (i < n && k < cap) {
        unsigned v = val[s[i]];
        if (v == 0)
            break;
        acc = (acc << width) | (v - 1);
        bits += width;
        i++;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1u;
        }
    }
    *used = i;
    return k;
}

size_t bg_norm_b64_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                          size_t *used)
{
    return decode_bits(bg_norm_b64_val, 6, s, n, out, cap, used);
}

/* clang-format off */
const unsigned char bg_norm_b32_val[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 1, ['b'] = 2, ['c'] = 3, ['d'] = 4, ['e'] = 5, ['f'] = 6,
    ['g'] = 7, ['h'] = 8, ['i'] = 9, ['j'] = 10, ['k'] = 11, ['l'] = 12, ['m'] = 13, ['n'] = 14,
    ['o'] = 15, ['p'] = 16, ['q'] = 17, ['r'] = 18, ['s'] = 19, ['t'] = 20, ['u'] = 21, ['v'] = 22,
    ['w'] = 23, ['x'] = 24, ['y'] = 25, ['z'] = 26, ['2'] = 27, ['3'] = 28, ['4'] = 29, ['5'] = 30,
    ['6'] = 31, ['7'] = 32,
};
/* clang-format on */

size_t bg_norm_b32_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                          size_t *used)
{
    return decode_bits(bg_norm_b32_val, 5, s, n, out, cap, used);
}

unsigned bg_norm_cjk_digit(uint32_t cp)
{
    switch (cp) {
    case 0x3007: /* 〇 */
    case 0x96F6: /* 零 */ return '0';
    case 0x4E00: /* 一 */
    case 0x58F9: /* 壹 */
    case 0x5E7A: /* 幺 */ return '1';
    case 0x4E8C: /* 二 */
    case 0x8D30: /* 贰 */
    case 0x8CB3: /* 貳 */
    case 0x4E24: /* 两 */ return '2';
    case 0x4E09: /* 三 */
    case 0x53C1: /* 叁 */
    case 0x53C3: /* 參 */ return '3';
    case 0x56DB: /* 四 */
    case 0x8086: /* 肆 */ return '4';
    case 0x4E94: /* 五 */
    case 0x4F0D: /* 伍 */ return '5';
    case 0x516D: /* 六 */
    case 0x9646: /* 陆 */
    case 0x9678: /* 陸 */ return '6';
    case 0x4E03: /* 七 */
    case 0x67D2: /* 柒 */ return '7';
    case 0x516B: /* 八 */
    case 0x634C: /* 捌 */ return '8';
    case 0x4E5D: /* 九 */
    case 0x7396: /* 玖 */ return '9';
    }
    return 0;
}

/* Separators a run of Chinese numerals may hold (after folding). */
static int cjk_sep(unsigned a)
{
    return a == 0 || a == ' ' || a == '-' || a == '.' || a == '/' || a == '_' || a == ',' ||
           a == '(' || a == ')' || a == '\t' || a == '\n' || a == '\r';
}

#define CJK_RUN_BYTES 256

size_t bg_norm_cjk_run(const unsigned char *v, size_t len, size_t o, unsigned before, size_t *skip)
{
    size_t i = o, end = o, lim = len - o > CJK_RUN_BYTES ? o + CJK_RUN_BYTES : len;
    unsigned digits = before, seps = 0;
    while (i < lim) {
        uint32_t cp;
        size_t l = bg_norm_utf8_decode(v + i, lim - i, &cp);
        if (cp == UINT32_MAX)
            break;
        unsigned a = bg_norm_fold(cp);
        if (dig(a) || bg_norm_cjk_digit(cp)) {
            digits++;
            seps = 0;
            end = i + l;
        } else if (cjk_sep(a) && ++seps <= 3) {
            /* between two digits, or trailing (then not part of the run) */
        } else {
            break;
        }
        i += l;
    }
    *skip = end > o ? end : o + 1;
    return digits >= BG_NORM_CJK_RUN_MIN ? end : 0;
}

size_t bg_norm_hex_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n && k < cap; i += 2) {
        int h = bg_hex_digit(s[i]), l = bg_hex_digit(s[i + 1]);
        if (h < 0 || l < 0)
            break;
        out[k++] = (unsigned char)(h * 16 + l);
    }
    return k;
}

#define JNUM_DIGITS 40

int bg_normalize_json_number(const char *str, size_t n, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    int neg = 0;
    if (s == NULL || out == NULL)
        return -1;
    if (i < n && s[i] == '-')
        neg = 1, i++;
    /* mantissa digits, without the point; where the point was */
    char m[JNUM_DIGITS];
    size_t nm = 0, ip = 0;
    int point = 0, exp_seen = 0;
    if (i >= n || !dig(s[i]) || (s[i] == '0' && i + 1 < n && dig(s[i + 1])))
        return -1; /* JSON: a digit first, no leading zeros */
    for (; i < n && dig(s[i]); i++) {
        if (nm == JNUM_DIGITS)
            return -1;
        m[nm++] = (char)s[i];
    }
    ip = nm;
    if (i < n && s[i] == '.') {
        point = 1;
        i++;
        size_t f0 = nm;
        for (; i < n && dig(s[i]); i++) {
            if (nm == JNUM_DIGITS)
                return -1;
            m[nm++] = (char)s[i];
        }
        if (nm == f0)
            return -1;
    }
    long e = 0;
    if (i < n && (s[i] | 0x20) == 'e') {
        exp_seen = 1;
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i] == '-', i++;
        size_t e0 = i;
        for (; i < n && dig(s[i]); i++) {
            if (e > 1000)
                return -1;
            e = e * 10 + (s[i] - '0');
        }
        if (i == e0)
            return -1;
        if (eneg)
            e = -e;
    }
    if (i != n || (!point && !exp_seen))
        return -1;
    /* the value is 0.m[0..nm) * 10^(ip + e): integer digits are the first
     * ip + e of m (padded with zeros), the rest must all be zero */
    long pos = (long)ip + e;
    if (pos < 1 || pos > JNUM_DIGITS)
        return -1;
    for (long k = pos; k < (long)nm; k++)
        if (m[k] != '0')
            return -1;
    size_t o = 0;
    if ((size_t)pos + (size_t)neg + 1 > cap)
        return -1;
    if (neg)
        out[o++] = '-';
    size_t lead = 0; /* "0.5e1" has integer part "5" after a leading zero */
    while (lead + 1 < (size_t)pos && lead < nm && m[lead] == '0')
        lead++;
    for (long k = (long)lead; k < pos; k++)
        out[o++] = k < (long)nm ? m[k] : '0';
    out[o] = '\0';
    return (int)o;
}
