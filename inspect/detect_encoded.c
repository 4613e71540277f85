/*
 * Encoded runs inside a value: base64 (standard, URL-safe, broken into
 * lines), hex and base32 runs are decoded chunk by chunk and scanned one
 * level down (bg_det_scan_value() at depth + 1, at most ENC_DEPTH), and a
 * number written in exponent form is scanned as its digits. What they find
 * goes to s->enc and is merged into the value's findings by offset.
 */
#include "inspect/detect_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "inspect/sniff.h"

/*
 * Can decoded bytes B[0, K) hold anything a detector finds, at nesting
 * DEPTH? Every number detector needs 7+ digits, an e-mail '@'; escapes,
 * Unicode digits and (below ENC_DEPTH) another base64 run are the other
 * ways in. Most runs of letters that are not base64 decode to bytes that
 * fail this cheap test and are not scanned.
 */
static int worth_scanning(const unsigned char *b, size_t k, unsigned depth)
{
    unsigned digits = 0, run = 0, maxrun = 0;
    int hi = 0;
    for (size_t i = 0; i < k; i++) {
        unsigned c = b[i];
        if (c == '@' || c == '%' || c == '&' || c == '\\')
            return 1;
        digits += is_d(c);
        hi |= c >= 0x80;
        run = bg_norm_b64_val[c] ? run + 1 : 0;
        maxrun = run > maxrun ? run : maxrun;
    }
    if (digits >= 7 || (depth < ENC_DEPTH && maxrun >= 15))
        return 1;
    for (size_t i = 0; hi && i < k; i++) {
        if (b[i] < 0x80)
            continue;
        uint32_t cp;
        size_t l = bg_norm_utf8_decode(b + i, k - i, &cp);
        if (cp != UINT32_MAX && (bg_norm_fold(cp) - '0' <= 10u || bg_norm_cjk_digit(cp)))
            return 1;
        i += l - 1;
    }
    return 0;
}

/* Decoded bytes that are UTF-16 text of mostly ASCII (a BOM, or a zero in
 * every other byte: what Windows and .NET clients encode before base64):
 * the zero bytes (and a BOM) are dropped in place so the detectors read the
 * characters. Returns the new length; other bytes are left as they are. */
static size_t utf16_to_ascii(unsigned char *b, size_t k)
{
    if (k < 8)
        return k;
    size_t start = 0;
    if ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff))
        start = 2;
    size_t zo = 0, ze = 0, m = k - start;
    for (size_t i = start; i < k; i++)
        if (b[i] == 0) {
            if ((i - start) & 1)
                zo++;
            else
                ze++;
        }
    /* LE: zeros at odd offsets; BE: at even ones. Nearly all of one half. */
    int le = zo * 10 >= m / 2 * 9 && ze == 0, be = ze * 10 >= m / 2 * 9 && zo == 0;
    if (!le && !be)
        return k;
    size_t n = 0;
    for (size_t i = start; i < k; i++)
        if (b[i] != 0)
            b[n++] = b[i];
    return n;
}

/* Is the GBK pair A B a character that reads as a digit: a full-width digit
 * (A3 B0-B9), a digit of the A2 row (circled, parenthesized, with a full
 * stop: A2 B1-E2) or a Chinese numeral (〇一二三四五六七八九, 零壹贰叁肆伍陆柒捌玖,
 * 幺, 两)? */
static int gbk_digit(unsigned a, unsigned b)
{
    static const unsigned short numerals[] = {
        0xA996, 0xD2BB, 0xB6FE, 0xC8FD, 0xCBC4, 0xCEE5, 0xC1F9, 0xC6DF, 0xB0CB, 0xBEC5, 0xC1E3,
        0xD2BC, 0xB7A1, 0xC8FE, 0xCBC1, 0xCEE9, 0xC2BD, 0xC6E2, 0xB0C6, 0xBEC1, 0xE7DB, 0xC1BD};
    if ((a == 0xA3 && b >= 0xB0 && b <= 0xB9) || (a == 0xA2 && b >= 0xB1 && b <= 0xE2))
        return 1;
    unsigned v = a << 8 | b;
    for (size_t i = 0; i < sizeof numerals / sizeof numerals[0]; i++)
        if (numerals[i] == v)
            return 1;
    return 0;
}

/*
 * Length of the longest prefix of B[0, K) that is well-formed GB18030 text
 * holding at least 7 characters that read as digits (what every number
 * detector needs): printable ASCII (and tab, CR, LF), two-byte characters
 * (lead 81-FE, trail 40-7E or 80-FE; gbk_digit() counts) and four-byte ones
 * (81-FE 30-39 81-FE 30-39: other scripts' digits live there, each counts);
 * a character cut off by the end of B is left out. 0 otherwise: the decoded
 * bytes of a random token (a hash, a signature) break the form or hold no
 * such digits, and this test is what keeps iconv off the common path.
 */
static size_t gb18030_form(const unsigned char *b, size_t k)
{
    size_t i = 0;
    unsigned digits = 0;
    int multi = 0;
    while (i < k) {
        unsigned c = b[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
                return 0;
            digits += c - '0' < 10u;
            i++;
            continue;
        }
        if (c == 0x80 || c == 0xff)
            return 0;
        if (i + 1 >= k)
            break; /* cut off */
        unsigned t = b[i + 1];
        if (t >= 0x30 && t <= 0x39) {
            if (i + 3 >= k)
                break;
            if (b[i + 2] < 0x81 || b[i + 2] > 0xfe || b[i + 3] < 0x30 || b[i + 3] > 0x39)
                return 0;
            digits++;
            i += 4;
        } else if (t >= 0x40 && t <= 0xfe && t != 0x7f) {
            digits += (unsigned)gbk_digit(c, t);
            i += 2;
        } else {
            return 0;
        }
        multi = 1;
    }
    return multi && digits >= 7 ? i : 0;
}

/*
 * Decoded bytes B[0, K) that are not UTF-8 but GB18030 (GBK) text, as
 * legacy Chinese clients encode before base64 or hex (A3 B1 is a
 * full-width 1): their UTF-8 reading in OUT (CAP bytes). Tried from the
 * first and from the second byte (a chunk may start inside a two-byte
 * character). B is not UTF-8 (the caller checked). Returns the length read
 * into OUT, or 0 (not GB18030 text).
 */
static size_t gb18030_reading(const unsigned char *b, size_t k, unsigned char *out, size_t cap)
{
    for (size_t skip = 0; skip < 2 && skip < k; skip++) {
        size_t n = gb18030_form(b + skip, k - skip);
        char *t = NULL;
        size_t tl = 0;
        if (n > 0 && bg_sniff_transcode((const char *)b + skip, n, "GB18030", cap, &t, &tl) == 0) {
            memcpy(out, t, tl);
            free(t);
            return tl;
        }
    }
    return 0;
}

/* Whether B[0, K) read as Latin-1 holds a superscript digit (B9 B2 B3) and
 * 7 digits in all (what every number detector needs). */
static int latin1_digits(const unsigned char *b, size_t k)
{
    unsigned digits = 0, sup = 0;
    for (size_t i = 0; i < k; i++) {
        digits += b[i] - (unsigned)'0' < 10u;
        sup += b[i] == 0xB9 || b[i] == 0xB2 || b[i] == 0xB3;
    }
    return sup > 0 && digits + sup >= 7;
}

/* B[0, K) (not UTF-8) read as Latin-1 into OUT (CAP >= 2K bytes) as UTF-8
 * when it holds a Latin-1 digit; its length, or 0. */
static size_t latin1_reading(const unsigned char *b, size_t k, unsigned char *out, size_t cap)
{
    if (!latin1_digits(b, k) || cap < 2 * k)
        return 0;
    size_t o = 0;
    for (size_t i = 0; i < k; i++) {
        if (b[i] < 0x80) {
            out[o++] = b[i];
        } else {
            out[o++] = (unsigned char)(0xC0 | b[i] >> 6);
            out[o++] = (unsigned char)(0x80 | (b[i] & 0x3F));
        }
    }
    return o;
}

/* How a run is encoded (scan_decoded()). */
enum { ENC_B64, ENC_HEX, ENC_B32 };

/*
 * Decode the run R[0, N) (ENC_*) chunk by chunk and scan the bytes
 * at the next depth. Returns 1 and the most confident finding in *BEST when
 * there is one. Chunks overlap by DEC_OVERLAP characters, so a value on a
 * chunk boundary is seen whole; the work is linear in N.
 */
static int scan_decoded(const scan_t *s, const unsigned char *r, size_t n, int how,
                        bg_detect_finding_t *best)
{
    unsigned char buf[DEC_CHUNK];
    unsigned char gbuf[DEC_CHUNK * 2]; /* a GB18030 reading: at most 3 bytes for 2 */
    unsigned char lbuf[DEC_CHUNK * 2]; /* a Latin-1 reading: at most 2 bytes for 1 */
    size_t pos = 0;
    int found = 0;
    for (;;) {
        size_t used, k;
        if (how == ENC_HEX) {
            k = bg_norm_hex_decode(r + pos, n - pos, buf, DEC_CHUNK);
            used = 2 * k;
        } else if (how == ENC_B32) {
            /* DEC_CHUNK - 1 bytes: a whole number of 8-character groups */
            k = bg_norm_b32_decode(r + pos, n - pos, buf, DEC_CHUNK - 1, &used);
        } else {
            k = bg_norm_b64_decode(r + pos, n - pos, buf, DEC_CHUNK, &used);
        }
        if (k == 0)
            break;
        k = utf16_to_ascii(buf, k);
        /* The bytes, and when they are not UTF-8 their GB18030 and Latin-1
         * readings: each view worth it is scanned, the best finding kept. */
        const unsigned char *view[3];
        size_t vlen[3], nv = 0;
        if (worth_scanning(buf, k, s->depth + 1))
            view[nv] = buf, vlen[nv++] = k;
        if (!bg_utf8_valid(buf, k)) {
            size_t gl = gb18030_reading(buf, k, gbuf, sizeof gbuf);
            if (gl > 0 && worth_scanning(gbuf, gl, s->depth + 1))
                view[nv] = gbuf, vlen[nv++] = gl;
            size_t ll = latin1_reading(buf, k, lbuf, sizeof lbuf);
            if (ll > 0 && worth_scanning(lbuf, ll, s->depth + 1))
                view[nv] = lbuf, vlen[nv++] = ll;
        }
        for (size_t v = 0; v < nv; v++) {
            scan_t ns;
            scan_init(&ns);
            ns.hints = s->hints;
            ns.disabled = s->disabled;
            ns.today = s->today;
            ns.depth = s->depth + 1;
            bg_detect_finding_t f;
            ns.best = &f;
            if (bg_det_scan_value(&ns, view[v], vlen[v]) > 0 &&
                (!found || f.confidence > best->confidence)) {
                *best = f;
                found = 1;
            }
        }
        if (pos + used >= n || used <= DEC_OVERLAP)
            break;
        pos += used - DEC_OVERLAP;
    }
    return found;
}

/*
 * Find the base64 and hex runs of V and what their decoded bytes hold,
 * into s->enc (at most ENC_MAX findings, in order). A run is a maximal
 * stretch of base64-alphabet characters (and up to two '=' of padding):
 * 22+ hex digits of even length are hex, 16+ other characters base64
 * (standard or URL-safe; not digits only: those are numbers). A run that
 * reports nothing as a whole is tried again after each '/' (a path of
 * base64 segments). JWTs are three base64url runs split by dots. A run of
 * 18+ characters of the base32 alphabet in one case (A-Z 2-7, or a-z 2-7;
 * up to six '=' of padding) that reports nothing as base64 or hex is read
 * as RFC 4648 base32.
 */
void bg_det_find_encoded(scan_t *s, const unsigned char *v, size_t len)
{
    size_t i = 0;
    while (i < len && s->nenc < ENC_MAX) {
        if (bg_norm_b64_val[v[i]] == 0) {
            i++;
            continue;
        }
        size_t b = i;
        while (i < len && bg_norm_b64_val[v[i]])
            i++;
        if (i - b < B64_MIN)
            continue;
        int hex = 1, digits = 1, slash = 0, dash = 0, b32u = 1, b32l = 1;
        for (size_t k = b; k < i; k++) {
            unsigned c = v[k];
            hex &= is_x(c) || c == '-';
            dash |= c == '-';
            digits &= is_d(c);
            slash |= c == '/';
            b32u &= c - 'A' < 26u || c - '2' < 6u;
            b32l &= c - 'a' < 26u || c - '2' < 6u;
        }
        size_t e = i;
        while (i < len && v[i] == '=' && i - e < 2)
            i++;
        size_t ep = i; /* base32 pads to 8 characters: up to six '=' */
        while (ep < len && v[ep] == '=' && ep - e < 6)
            ep++;
        size_t n = e - b;
        bg_detect_finding_t f;
        int found = 0;
        /* hex digits and dashes (UUIDs, dashed hashes) are not base64 */
        if (hex && !dash && n >= HEX_MIN && n % 2 == 0)
            found = scan_decoded(s, v + b, n, ENC_HEX, &f);
        else if (!digits && !hex && n >= B64_MIN)
            found = scan_decoded(s, v + b, n, ENC_B64, &f);
        size_t fb = b, fe = i;
        if (!found && (b32u || b32l) && !digits && n >= B32_MIN &&
            (found = scan_decoded(s, v + b, n, ENC_B32, &f)))
            fe = i = ep;
        if (!found && slash && !hex) {
            for (size_t k = b; k < e && !found; k++) {
                if (v[k] != '/')
                    continue;
                size_t q = k + 1;
                while (q < e && v[q] != '/')
                    q++;
                if (q - k - 1 >= B64_MIN &&
                    (found = scan_decoded(s, v + k + 1, q - k - 1, ENC_B64, &f)))
                    fb = k + 1, fe = q == e ? i : q;
            }
        }
        if (found) {
            f.offset = fb;
            f.length = fe - fb;
            f.flags |= BG_DETECT_F_ENCODED | BG_DETECT_F_NOT_REWRITABLE;
            s->enc[s->nenc++] = f;
        }
    }
}

/*
 * A value that is base64 broken into lines (MIME's 76 characters, or any
 * width down to 4: "SUQg\nNDIw\n..."): only base64 characters, padding and
 * line breaks, at least two breaks. The lines are joined (up to 6 KiB of
 * text) and decoded as one run; a finding covers the whole value, not
 * rewritable.
 */
void bg_det_find_broken_base64(scan_t *s, const unsigned char *v, size_t len)
{
    unsigned char joined[6144];
    size_t n = 0, breaks = 0;
    if (len > sizeof joined * 2 || s->nenc >= ENC_MAX)
        return;
    for (size_t i = 0; i < len; i++) {
        unsigned c = v[i];
        if (c == '\n') {
            breaks++;
        } else if (c == '\r' || c == ' ') {
            continue;
        } else if (bg_norm_b64_val[c] || c == '=') {
            if (n == sizeof joined)
                return;
            if (c != '=')
                joined[n++] = (unsigned char)c;
        } else {
            return;
        }
    }
    if (breaks < 2 || n < B64_MIN)
        return;
    bg_detect_finding_t f;
    if (scan_decoded(s, joined, n, ENC_B64, &f)) {
        f.offset = 0;
        f.length = len;
        f.flags |= BG_DETECT_F_ENCODED | BG_DETECT_F_NOT_REWRITABLE;
        s->enc[s->nenc++] = f;
    }
}

/*
 * A value that is a number in exponent form ("1.3812345678E10", a float
 * written into a string field): its integer digits are scanned, and a
 * finding covers the whole value, not rewritable. Values of 12-48 bytes
 * with an 'e' and 10+ mantissa digits only.
 */
void bg_det_find_number_form(scan_t *s, const unsigned char *v, size_t len)
{
    /* the digits must be written out (10+ before the 'e'): 1.5e10 is a
     * measurement, not a mobile number in disguise. One pass that stops at
     * the first character a number in exponent form cannot hold. */
    if (len < 12 || len > 48 || s->nenc >= ENC_MAX)
        return;
    int e = 0; /* the exponent is short: an 'e' among the last five bytes */
    for (size_t k = len - 5; k < len - 1; k++)
        e |= (v[k] | 0x20) == 'e';
    if (!e)
        return;
    unsigned md = 0;
    size_t k = v[0] == '-';
    for (; k < len; k++) {
        unsigned c = v[k];
        if (is_d(c))
            md++;
        else if ((c | 0x20) == 'e')
            break;
        else if (c != '.')
            return;
    }
    if (k == len || md < 10)
        return;
    char d[64];
    int n = bg_normalize_json_number((const char *)v, len, d, sizeof d);
    if (n < 11)
        return;
    scan_t ns;
    scan_init(&ns);
    ns.hints = s->hints;
    ns.disabled = s->disabled;
    ns.today = s->today;
    ns.depth = ENC_DEPTH; /* digits only: nothing to decode */
    bg_detect_finding_t f;
    ns.best = &f;
    if (bg_det_scan_value(&ns, (const unsigned char *)d, (size_t)n) > 0) {
        f.offset = 0;
        f.length = len;
        f.flags |= BG_DETECT_F_NORMALIZED | BG_DETECT_F_NOT_REWRITABLE;
        s->enc[s->nenc++] = f;
    }
}
