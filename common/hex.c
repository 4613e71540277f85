#include "common/hex.h"

/* Each byte's hex value plus 1 (0: not a hex digit): one load per digit
 * (rollups and reports decode millions of pseudonyms). */
static const unsigned char HEXV[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int bg_hex_digit(int c)
{
    return c >= 0 && c < 256 ? (int)HEXV[c] - 1 : -1;
}

void bg_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t bg_hex_pct(unsigned char c, char *out)
{
    static const char hx[] = "0123456789ABCDEF";
    out[0] = '%';
    out[1] = hx[c >> 4];
    out[2] = hx[c & 15];
    return 3;
}

long bg_hex_pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = bg_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (lo = bg_hex_digit((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '%' && (flags & BG_PCT_STRICT)) {
            return -1;
        } else if (s[i] == '+' && (flags & BG_PCT_PLUS)) {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    return (long)o;
}

long bg_hex_pct_decode_all(const char *s, size_t n, char *out, size_t cap, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        char c = s[i];
        if (c == '%' && i + 2 < n && (hi = bg_hex_digit((unsigned char)s[i + 1])) >= 0 &&
            (lo = bg_hex_digit((unsigned char)s[i + 2])) >= 0) {
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '%' && (flags & BG_PCT_STRICT)) {
            return -1;
        } else if (c == '+' && (flags & BG_PCT_PLUS)) {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

/* ASCII white space, as isspace() in the C locale, without the locale. */
static int is_space(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

long bg_hex_decode(const char *s, size_t n, unsigned char *out, size_t cap, int skip_space)
{
    size_t o = 0;
    int hi = -1;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (skip_space && is_space(c))
            continue;
        int v = (int)HEXV[c] - 1;
        if (v < 0)
            return -1;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (o >= cap)
            return -1;
        out[o++] = (unsigned char)(hi << 4 | v);
        hi = -1;
    }
    return hi < 0 ? (long)o : -1;
}

int bg_hex_lower(const char *s, size_t nbytes, char *out)
{
    for (size_t i = 0; i < 2 * nbytes; i++) {
        int v = s[i] != '\0' ? bg_hex_digit((unsigned char)s[i]) : -1;
        if (v < 0)
            return -1;
        out[i] = "0123456789abcdef"[v];
    }
    if (s[2 * nbytes] != '\0')
        return -1;
    out[2 * nbytes] = '\0';
    return 0;
}
