/*
 * Content detectors (see detect.h for the contract): the scan of one value.
 * This file holds the pass over a value; the detectors it calls live in
 * their own files (detect_int.h lists them).
 *
 * How a value is scanned:
 *   1. Pre-filter: a value with no ASCII digit, '@', ':' and no full-width
 *      digit/'@'/':' cannot hold anything the detectors find; it costs one
 *      pass of byte tests.
 *   2. ASCII values are scanned in place. Others are normalized into a stack
 *      window (full-width -> ASCII, Unicode spaces/dashes -> ' '/'-',
 *      zero-width characters dropped, every other non-ASCII character -> one
 *      0x80 byte that no detector accepts), with the original offset and
 *      length of each normalized byte, so spans map back to the caller's
 *      bytes. Long values are processed window by window; consecutive
 *      windows overlap so that every candidate is seen whole, with context.
 *   3. One left-to-right pass looks only at "token starts" (a letter or digit
 *      that does not follow a letter or digit) and at '@', '+', ':' and '-'.
 *      At each, the detectors that can start with that character are tried
 *      in a fixed order; the first that validates emits a finding and the
 *      pass continues after it. So findings are ordered and never overlap,
 *      and no detector looks inside a longer alphanumeric run.
 *
 * Every detector reads at most MAX_MATCH bytes past its start and treats
 * the text end as a boundary; all reads go through ch(), which is bounds
 * checked, so a detector can be wrong but never read out of bounds.
 *
 * Here: the scan state's finding store (bg_det_emit()), normalization into
 * windows and the pre-filter, the pass (token starts, the window loop) and
 * bg_detect_scan() / bg_detect_value().
 */
#include "inspect/detect_int.h"

#include <string.h>

/* ---------------------------------------------------------------------- */
/* Characters                                                              */

/* Byte classes for the scan loop: 1 = ASCII letter or digit (a token
 * character), 2 = a character some detector starts at ('@', '+', ':', '-'). */
#define K_AN 1
#define K_SP 2
/* clang-format off */
static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0, 0, 0, 0, 0,
    2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

/* ---------------------------------------------------------------------- */
/* Scan state                                                              */

/* A detector whose validation is full (checksum, allocated prefix,
 * dot-atom with a TLD): its value is PI whatever the key says. */
static int fully_validated(bg_detect_id_t det, unsigned flags)
{
    if (flags & BG_DETECT_F_NO_CHECKSUM)
        return 0;
    switch (det) {
    case BG_DET_RESIDENT_ID:
    case BG_DET_CN_MOBILE:
    case BG_DET_BANK_CARD:
    case BG_DET_IMEI:
    case BG_DET_EMAIL:
    case BG_DET_HK_ID:
    case BG_DET_TW_ID: return 1;
    default: return 0;
    }
}

/* Store F (or keep it as the best, in best mode). */
static void put(scan_t *s, const bg_detect_finding_t *f)
{
    if (s->best != NULL) {
        if (s->count == 0 || f->confidence > s->best->confidence)
            *s->best = *f;
    } else if (s->count < s->cap) {
        s->out[s->count] = *f;
    }
    s->count++;
    s->last_end = f->offset + f->length;
}

/* Merge the findings of encoded runs that start before original offset OB
 * (one that overlaps a finding already stored is dropped). */
static void flush_enc(scan_t *s, size_t ob)
{
    while (s->enc_i < s->nenc && s->enc[s->enc_i].offset < ob) {
        const bg_detect_finding_t *f = &s->enc[s->enc_i++];
        if (s->count > 0 && f->offset < s->last_end)
            continue;
        put(s, f);
    }
}

/*
 * Record a finding for t[b, e). Under a key that names non-PI (order ids,
 * versions, prices...) a finding is only a review signal (low) unless it
 * passes full validation at medium or above: the sender chooses key names,
 * so context may raise confidence but never hides a valid value. A number
 * glued to letters gets at most s->glued_cap (ID numbers: their checksum
 * decides). Returns e, so detectors can "return bg_det_emit(...)".
 */
size_t bg_det_emit(scan_t *s, size_t b, size_t e, bg_detect_cat_t cat, bg_detect_cat_t also,
                   bg_detect_id_t det, int conf, unsigned flags)
{
    if (s->glued) {
        flags |= BG_DETECT_F_GLUED;
        if (det != BG_DET_RESIDENT_ID || (flags & BG_DETECT_F_NO_CHECKSUM))
            conf = conf < s->glued_cap ? conf : s->glued_cap;
    }
    if ((s->hints & BG_HINT_NONPI) && !(flags & BG_DETECT_F_KEY_HINT) &&
        !(conf >= BG_CONF_MEDIUM && fully_validated(det, flags))) {
        conf = BG_CONF_LOW;
        flags |= BG_DETECT_F_NONPI_KEY;
    }
    size_t ob = s->mo ? s->mo[b] : b;
    size_t oe = s->mo ? s->mo[e - 1] + s->ml[e - 1] : e;
    if (s->mo) {
        if (oe - ob != e - b)
            flags |= BG_DETECT_F_NORMALIZED;
        for (size_t k = b; k < e; k++) {
            unsigned c = s->v[s->mo[k]];
            if ((c == '%' || c == '&' || c == '\\' || c == '=') && s->t[k] != c) {
                flags |= BG_DETECT_F_ENCODED;
                break;
            }
        }
    }
    s->floor = e;
    flush_enc(s, ob);
    if ((s->count > 0 && ob < s->last_end) || (s->enc_i < s->nenc && s->enc[s->enc_i].offset < oe))
        return e; /* inside an encoded run that reports it */
    bg_detect_finding_t f = {ob, oe - ob, cat, also, det, (bg_detect_conf_t)conf, flags};
    put(s, &f);
    return e;
}

/* ---------------------------------------------------------------------- */
/* Normalization                                                           */

/* Digits of any script (and the separators between them) just before
 * V[O], up to 64 bytes back: the start of a run that continues in Chinese
 * numerals ("138一二三四五六七八", "１３８一二三..."). */
static unsigned digits_before(const unsigned char *v, size_t o)
{
    unsigned n = 0;
    size_t k = o;
    while (k > 0 && o - k < 64) {
        size_t b = k - 1;
        while (b > 0 && k - b < 4 && (v[b] & 0xC0) == 0x80)
            b--;
        uint32_t cp;
        if (bg_norm_utf8_decode(v + b, k - b, &cp) != k - b || cp == UINT32_MAX)
            break;
        unsigned a = bg_norm_fold(cp);
        if (is_d(a) || bg_norm_cjk_digit(cp))
            n++;
        else if (a != 0 && a != ' ' && a != '-' && a != '.' && a != '/' && a != '_' && a != ',')
            break;
        k = b;
    }
    return n;
}

/* An HTML/XML comment of at most 64 bytes at V[O] ("<!---->" between the
 * groups of a number: a browser shows the digits together). Returns its
 * length, or 0. */
static size_t comment_at(const unsigned char *v, size_t len, size_t o)
{
    if (o + 7 > len || memcmp(v + o, "<!--", 4) != 0)
        return 0;
    size_t lim = len - o > 64 ? o + 64 : len;
    for (size_t k = o + 4; k + 3 <= lim; k++)
        if (v[k] == '-' && v[k + 1] == '-' && v[k + 2] == '>')
            return k + 3 - o;
    return 0;
}

/* Normalize V[O, LEN) into NB/MO/ML until WIN bytes are written or the value
 * ends (bg_norm_next(): Unicode folding, invisible characters dropped;
 * percent escapes, character references, backslash escapes and quoted-
 * printable digit runs decoded when ESC, that is when
 * the value holds one that spells a digit, '@', ':' or non-ASCII: then the
 * ASCII and the normalizing path read a value alike). An HTML comment
 * right after a digit is read as nothing. Chinese numerals read
 * as digits inside a run that bg_norm_cjk_run() accepts (S->cjk_end: the
 * end of the run being folded; S->cjk_skip: no run to look for before it;
 * both original offsets, kept across windows). Sets *N to the bytes
 * written; returns the offset after the last character consumed. */
static size_t fill_window(scan_t *s, const unsigned char *v, size_t len, size_t o,
                          unsigned char *nb, size_t *mo, uint8_t *ml, size_t *n)
{
    size_t k = 0;
    int esc = s->esc;
    while (o < len && k < WIN) {
        unsigned c = v[o];
        if (c < 0x80 && c != '<' && (!esc || (c != '%' && c != '&' && c != '\\' && c != '='))) {
            nb[k] = (unsigned char)c, mo[k] = o, ml[k] = 1, k++;
            o++;
            continue;
        }
        size_t cl;
        if (c == '<' && (cl = comment_at(v, len, o)) > 0 && k > 0 && is_d(nb[k - 1])) {
            o += cl; /* between digits: read as nothing */
            continue;
        }
        unsigned a, how;
        size_t l = bg_norm_next(v, len, o, &a, &how);
        if (a == 0x80 && c >= 0xE0 && !how) {
            uint32_t cp;
            unsigned d;
            if (bg_norm_utf8_decode(v + o, len - o, &cp) == l && (d = bg_norm_cjk_digit(cp))) {
                if (o >= s->cjk_end && o >= s->cjk_skip) {
                    size_t e = bg_norm_cjk_run(v, len, o, digits_before(v, o), &s->cjk_skip);
                    if (e)
                        s->cjk_end = e;
                }
                if (o < s->cjk_end)
                    a = d;
            }
        }
        if (a != 0)
            nb[k] = (unsigned char)a, mo[k] = o, ml[k] = (uint8_t)l, k++;
        o += l;
    }
    *n = k;
    return o;
}

/* Word-at-a-time byte tests (Bit Twiddling Hacks): a byte of X in (M, N),
 * counting ASCII bytes only; a zero byte in X. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
static inline uint64_t has_between(uint64_t x, unsigned m, unsigned n)
{
    return ((ONES * (127 + n) - (x & ONES * 127)) & ~x & ((x & ONES * 127) + ONES * (127 - m))) &
           HIGHS;
}
static inline uint64_t has_zero(uint64_t x)
{
    return (x - ONES) & ~x & HIGHS;
}

/* What the pre-filter found (bits). */
#define PF_TRIG 1 /* a character a detector starts at: scan */
#define PF_HI 2   /* a non-ASCII byte: the normalizing path */
#define PF_ESC 4  /* '%', '&', '\\' or '=': maybe an escape (the normalizing path if so) */
#define PF_B64 8  /* eight aligned base64-alphabet bytes: maybe an encoded run */
#define PF_LT 16  /* '<': maybe an HTML comment between digits */

/* Per byte of X, the high bit when the byte is in the base64 alphabets
 * (A-Z a-z 0-9 + / - _), possibly also for some bytes that are not
 * (has_zero() may flag a byte above a true match): a superset is fine for
 * a trigger. */
static inline uint64_t b64_bytes(uint64_t x)
{
    return has_between(x, 0x2F, 0x3A) | has_between(x, 0x40, 0x5B) | has_between(x, 0x60, 0x7B) |
           has_zero(x ^ (ONES * '+')) | has_zero(x ^ (ONES * '/')) | has_zero(x ^ (ONES * '-')) |
           has_zero(x ^ (ONES * '_'));
}

/*
 * Pre-filter, eight bytes at a time ('0'..'9' and ':' are the contiguous
 * 0x30..0x3A). Returns PF_* bits: PF_TRIG when an ASCII digit, ':' or '@'
 * occurs, or a non-ASCII character that folds to one (any script's digit,
 * full-width '@'/':'), or 11+ Chinese numerals are present; PF_HI for
 * non-ASCII bytes; PF_ESC for '%', '&', '\\' or '='; PF_LT for '<'; PF_B64
 * when an aligned 8-byte word is all base64 alphabet (every run of 16 such
 * bytes holds one). Non-ASCII characters are only decoded when no ASCII
 * byte triggered.
 */
static unsigned prefilter(const unsigned char *v, size_t len)
{
    uint64_t acc = 0, trig = 0, esc = 0, lt = 0;
    int b64 = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, v + i, 8);
        acc |= w;
        trig |= has_between(w, 0x2F, 0x3B) | has_zero(w ^ (ONES * '@'));
        esc |= has_zero(w ^ (ONES * '%')) | has_zero(w ^ (ONES * '&')) |
               has_zero(w ^ (ONES * '\\')) | has_zero(w ^ (ONES * '='));
        b64 |= (b64_bytes(w) & HIGHS) == HIGHS;
        lt |= has_zero(w ^ (ONES * '<'));
    }
    if (i < len) {
        /* The last 1-7 bytes as one word padded with zero bytes, which
         * match none of the tests and borrow from no neighbour: the same
         * bits as byte by byte (no base64 test: that wants 8 bytes). */
        uint64_t w = 0;
        memcpy(&w, v + i, len - i);
        acc |= w;
        trig |= has_between(w, 0x2F, 0x3B) | has_zero(w ^ (ONES * '@'));
        esc |= has_zero(w ^ (ONES * '%')) | has_zero(w ^ (ONES * '&')) |
               has_zero(w ^ (ONES * '\\')) | has_zero(w ^ (ONES * '='));
        lt |= has_zero(w ^ (ONES * '<'));
    }
    unsigned r = (trig ? PF_TRIG : 0) | (esc ? PF_ESC : 0) | (b64 ? PF_B64 : 0) | (lt ? PF_LT : 0);
    if ((acc & HIGHS) == 0)
        return r;
    r |= PF_HI;
    if (r & PF_TRIG)
        return r;
    unsigned cjk = 0;
    for (i = 0; i < len; i++) {
        if (v[i] < 0x80)
            continue;
        uint32_t cp;
        size_t l;
        if (v[i] >= 0xE1 && v[i] <= 0xEF && v[i] != 0xED && len - i >= 3 &&
            (v[i + 1] & 0xC0) == 0x80 && (v[i + 2] & 0xC0) == 0x80) {
            /* a 3-byte character (all of CJK) that needs no overlong or
             * surrogate check: decoded here, as bg_norm_utf8_decode would */
            cp = (uint32_t)(v[i] & 0x0F) << 12 | (uint32_t)(v[i + 1] & 0x3F) << 6 |
                 (uint32_t)(v[i + 2] & 0x3F);
            l = 3;
        } else {
            l = bg_norm_utf8_decode(v + i, len - i, &cp);
        }
        unsigned a = cp == UINT32_MAX ? 0x80 : bg_norm_fold(cp);
        if (a - '0' <= 10u || a == '@' ||
            (a == 0x80 && bg_norm_cjk_digit(cp) && ++cjk >= BG_NORM_CJK_RUN_MIN))
            return r | PF_TRIG;
        i += l - 1;
    }
    return r;
}

/* ---------------------------------------------------------------------- */
/* The pass                                                                */

/* A ':' within the first five characters, after hex digits only. */
static int colon_soon(const scan_t *s, size_t i)
{
    for (size_t k = 0; k < 5; k++) {
        unsigned c = ch(s, i + k);
        if (c == ':')
            return k > 0;
        if (!is_x(c))
            return 0;
    }
    return 0;
}

/* A '.' after one to three digits. */
static int dot_soon(const scan_t *s, size_t i)
{
    for (size_t k = 1; k <= 3; k++) {
        unsigned c = ch(s, i + k);
        if (c == '.')
            return 1;
        if (!is_d(c))
            return 0;
    }
    return 0;
}

/* The detectors that can start at the token start I, most specific shape
 * first. Returns the end of what was consumed (a finding, or a UUID or
 * placeholder skipped whole), or 0. */
static size_t try_token(scan_t *s, size_t i)
{
    unsigned c = s->t[i];
    size_t m;
    if (is_x(c)) {
        if (on(s, BG_DET_MAC) && (m = bg_det_try_mac(s, i)))
            return m;
        if ((m = bg_det_try_uuid(s, i)))
            return m;
        if (on(s, BG_DET_IPV6) && colon_soon(s, i) && (m = bg_det_try_ipv6(s, i)))
            return m;
        if ((s->hints & (BG_HINT_DEVICE | BG_HINT_ANDROID | BG_HINT_MAC)) &&
            (m = bg_det_try_hexid(s, i)))
            return m;
    }
    if (is_d(c)) {
        if (dot_soon(s, i)) {
            if (on(s, BG_DET_IPV4) && (m = bg_det_try_ipv4(s, i)))
                return m;
            if (on(s, BG_DET_GPS_PAIR) && (m = bg_det_try_gps(s, i)))
                return m;
            /* "138.1234.5678": a number through dots; "3.14159" (a single
             * dot) is a decimal and no number detector wants it */
            if (!left_ok(s, i) || !bg_det_dots_twice(s, i))
                return bg_det_try_id_window(s, i);
        }
        if (!left_ok(s, i))
            return bg_det_try_id_window(s, i);
        if ((m = bg_det_try_number(s, i)))
            return m;
        if (c == '0' && (m = bg_det_try_zero_padded(s, i)))
            return m;
        return bg_det_try_windows(s, i);
    }
    return bg_det_try_letters(s, i);
}

/* Scan s->t from I; candidates may start below LIMIT and extend to s->n.
 * Returns where it stopped (>= LIMIT). The common bytes (punctuation,
 * spaces, letters inside words) cost a table lookup each. */
static size_t scan_text(scan_t *s, size_t i, size_t limit)
{
    const unsigned char *t = s->t;
    while (i < limit) {
        unsigned k = cls[t[i]];
        if (k == 0) {
            i++;
            continue;
        }
        size_t m = 0;
        if (k & K_AN) {
            if (!is_d(t[i]) && !(s->hints & (BG_HINT_DEVICE | BG_HINT_ANDROID | BG_HINT_MAC))) {
                /* A word of letters only starts nothing unless a separator of
                 * a hex shape follows (MAC, UUID, IPv6): skip it whole. Only
                 * when the character after it is in this window. */
                size_t e = i + 1;
                int dig = 0;
                while (e < s->n && (cls[t[e]] & K_AN))
                    dig |= is_d(t[e++]);
                if (!dig && e < s->n && t[e] != ':' && t[e] != '-' && t[e] != '.') {
                    i = e;
                    continue;
                }
            }
            if (!(cls[ch(s, i - 1)] & K_AN))
                m = try_token(s, i);
            if (m > i) {
                i = m;
                continue;
            }
            /* no token starts inside a run of letters and digits, but a
             * number glued to letters may be there */
            size_t tb = i;
            m = 0;
            if (is_d(t[i])) { /* digits first: glued on the right only */
                size_t q = i + 1;
                while (q < s->n && is_d(t[q]))
                    q++;
                if (q - i >= 11 && q < s->n && is_a(t[q]))
                    m = bg_det_try_glued(s, i, tb);
            }
            if (m <= i) {
                do
                    i++;
                while (i < limit && (cls[t[i]] & K_AN) &&
                       !(is_d(t[i]) && is_a(t[i - 1]) && (m = bg_det_try_glued(s, i, tb)) > i));
            }
            if (m > i)
                i = m;
            continue;
        }
        switch (t[i]) {
        case '@':
            if (on(s, BG_DET_EMAIL))
                m = bg_det_try_email(s, i);
            break;
        case '+': m = bg_det_try_plus(s, i); break;
        case ':':
            if (ch(s, i + 1) == ':' && on(s, BG_DET_IPV6))
                m = bg_det_try_ipv6(s, i);
            break;
        case '-':
            if (is_d(ch(s, i + 1)) && on(s, BG_DET_GPS_PAIR))
                m = bg_det_try_gps(s, i);
            break;
        }
        i = m > i ? m : i + 1;
    }
    return i;
}

/*
 * The normalizing path, window by window. A window that is not the last one
 * is full (WIN bytes); candidates may start only below WIN - MAX_MATCH so
 * that each is seen whole. The next window restarts CTX bytes before where
 * this one stopped, so that left-context checks and e-mail local parts see
 * the same text as in one long buffer. Kept out of line: its 20 KB frame
 * would otherwise be paid by every ASCII value too.
 */
__attribute__((noinline)) static size_t scan_windows(scan_t *s, const unsigned char *v, size_t len)
{
    unsigned char nb[WIN];
    size_t mo[WIN];
    uint8_t ml[WIN];
    s->t = nb;
    s->mo = mo;
    s->ml = ml;
    size_t o = 0, resume = 0;
    for (;;) {
        size_t n;
        size_t next = fill_window(s, v, len, o, nb, mo, ml, &n);
        int final = next >= len;
        s->n = n;
        s->floor = 0;
        while (s->floor < n && mo[s->floor] < s->last_end)
            s->floor++;
        size_t stop = scan_text(s, resume, final ? n : n - MAX_MATCH);
        if (final)
            break;
        o = mo[stop - CTX];
        resume = CTX;
    }
    s->t = NULL; /* the window dies with this frame */
    s->mo = NULL;
    s->ml = NULL;
    return s->count;
}

/* ---------------------------------------------------------------------- */
/* Values                                                                  */

/*
 * Scan the value V into s: pre-filter, encoded runs (below ENC_DEPTH), a
 * number in exponent form, then the ASCII path in place or the normalizing
 * window path (non-ASCII, escapes, HTML comments); encoded findings are
 * merged in offset order.
 */
size_t bg_det_scan_value(scan_t *s, const unsigned char *v, size_t len)
{
    s->v = v;
    unsigned pf = prefilter(v, len);
    int keyhex = (s->hints & (BG_HINT_DEVICE | BG_HINT_ANDROID | BG_HINT_MAC)) != 0;
    s->esc = (pf & PF_ESC) && bg_norm_has_escape(v, len);
    if ((pf & PF_B64) && len >= B64_MIN && s->depth < ENC_DEPTH)
        bg_det_find_encoded(s, v, len);
    if (len >= B64_MIN && s->depth < ENC_DEPTH && s->nenc == 0 && memchr(v, '\n', len))
        bg_det_find_broken_base64(s, v, len);
    if ((pf & PF_TRIG) && s->depth < ENC_DEPTH)
        bg_det_find_number_form(s, v, len);
    if ((pf & PF_TRIG) || s->esc || keyhex) {
        if (!(pf & PF_HI) && !s->esc && (!(pf & PF_LT) || !memmem(v, len, "<!--", 4))) {
            s->t = v;
            s->n = len;
            scan_text(s, 0, len);
        } else {
            scan_windows(s, v, len);
        }
    }
    flush_enc(s, SIZE_MAX);
    return s->count;
}

size_t bg_detect_scan(const bg_detect_opts_t *opts, const bg_detect_key_t *key, const char *str,
                      size_t len, bg_detect_finding_t *out, size_t cap)
{
    if (str == NULL || len == 0)
        return 0;
    if (out == NULL)
        cap = 0;
    scan_t s;
    scan_init(&s);
    s.hints = key ? key->hints : 0;
    s.disabled = opts ? opts->disabled : 0;
    s.today = opts ? opts->today : 0;
    s.out = out;
    s.cap = cap;
    return bg_det_scan_value(&s, (const unsigned char *)str, len);
}

size_t bg_detect_value(const bg_detect_opts_t *opts, const char *key, size_t keylen, const char *s,
                       size_t len, bg_detect_finding_t *out, size_t cap)
{
    bg_detect_key_t k = {BG_CAT_NONE, 0, 0};
    if (key != NULL && keylen > 0)
        bg_detect_key_info(key, keylen, &k);
    return bg_detect_scan(opts, &k, s, len, out, cap);
}
