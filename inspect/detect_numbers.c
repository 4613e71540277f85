/*
 * The numeric content detectors: a digit run read through the separators
 * people write (numrun_read()), then classified in order of
 * specificity: resident identity card number (GB 11643-1999), mainland
 * mobile number, IMSI, IMEI, bank card (Luhn and card networks), the
 * first-generation 15-digit ID number, and the shapes only a key names
 * (Macao ID, travel permit, passport numbers). Also numbers that do not
 * stand alone: glued to letters ("tel13812345678"), zero-padded, or inside
 * a longer run of digits (an ID number after a timestamp, a mobile written
 * twice). The pass in detect.c calls the bg_det_try_*() entry points.
 */
#include "inspect/detect_int.h"

#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------- */
/* Dates and digits                                                        */

static uint32_t today_cn(scan_t *s)
{
    if (s->today == 0) {
        time_t t = time(NULL) + 8 * 3600; /* China Standard Time, no DST */
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL)
            s->today = 99991231;
        else
            s->today = (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
    }
    return s->today;
}

static int valid_date(unsigned y, unsigned m, unsigned d)
{
    static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return 0;
    unsigned md = mdays[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        md = 29;
    return d <= md;
}

static unsigned num(const char *d, unsigned n)
{
    unsigned v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v * 10 + (unsigned)(d[i] - '0');
    return v;
}

/* ---------------------------------------------------------------------- */
/* Digit runs                                                              */

/* Longest run read: 19 card digits + a few spare; longer runs are not
 * numbers any detector wants (order ids, nanosecond timestamps), but their
 * separator-delimited prefixes may be. */
#define NR_MAX 24

typedef struct {
    unsigned nd;             /* digits read */
    char d[NR_MAX];          /* the digits */
    size_t dend[NR_MAX + 1]; /* dend[k]: position just after the k-th digit */
    uint32_t cuts;           /* bit k: separators follow the k-th digit */
    uint32_t xcuts;          /* bit k: and they are not one ' ' or '-' */
    int x;                   /* 17 digits then 'X'/'x' (an ID check character) */
    int over;                /* more digits than NR_MAX */
    size_t e;                /* end of the run (after the 'X') */
    int rb;                  /* the run ends at a boundary */
} numrun_t;

/* Characters people put between the digits of one number: spaces, dashes,
 * dots, slashes, underscores, commas, parentheses, tabs and line breaks
 * (Unicode spaces and dashes are ' ' and '-' after normalization); and the
 * quotes and '+' of a string concatenation in code or SQL ('138','1234',
 * "138"+"1234"). */
static inline int is_numsep(unsigned c)
{
    switch (c) {
    case '\'':
    case '"':
    case '+':
    case ' ':
    case '-':
    case '.':
    case '/':
    case '_':
    case ',':
    case '(':
    case ')':
    case '\t':
    case '\n':
    case '\r': return 1;
    }
    return 0;
}

/* At most this many separator characters between two digits ("\r\n",
 * " - ", ") "): keeps the read linear and unrelated numbers apart. */
#define SEP_MAX 3

/* Read digits from I, allowing 1..SEP_MAX separators between two digits. */
static void numrun_read(const scan_t *s, size_t i, numrun_t *r)
{
    /* 24 bytes: the detectors read only d[0..nd), but the analyzer cannot
     * tell, and a zeroed tail costs nothing. */
    memset(r->d, 0, sizeof r->d);
    r->nd = 0;
    r->cuts = 0;
    r->xcuts = 0;
    r->x = 0;
    r->over = 0;
    r->dend[0] = i;
    unsigned ncuts = 0, dot_at = 0;
    for (;;) {
        unsigned c = ch(s, i);
        if (is_d(c)) {
            if (r->nd == NR_MAX) {
                r->over = 1;
                break;
            }
            r->d[r->nd++] = (char)c;
            r->dend[r->nd] = ++i;
        } else if (r->nd > 0 && is_numsep(c)) {
            size_t j = i + 1;
            while (j - i < SEP_MAX && is_numsep(ch(s, j)))
                j++;
            if (!is_d(ch(s, j)))
                break;
            r->cuts |= 1u << r->nd;
            if (j - i > 1 || (c != ' ' && c != '-'))
                r->xcuts |= 1u << r->nd;
            if (ncuts++ == 0 && j - i == 1 && c == '.')
                dot_at = r->nd;
            i = j;
        } else {
            break;
        }
    }
    if (ncuts == 1 && dot_at > 0) {
        /* one lone dot: a decimal fraction ("13812345678.5"), not a
         * number written in groups; the digits before it do not end at a
         * boundary - unless the fraction is zeros: "13812345678.0" is the
         * integer a float-typed field or a spreadsheet export writes */
        int zeros = 1;
        for (unsigned k = dot_at; k < r->nd; k++)
            zeros &= r->d[k] == '0';
        r->nd = dot_at;
        r->cuts = r->xcuts = 0;
        r->e = r->dend[dot_at];
        r->rb = zeros && !r->over && right_ok(s, i);
        return;
    }
    if (r->nd == 17 && (ch(s, i) | 0x20) == 'x') {
        r->x = 1;
        i++;
    }
    r->e = i;
    r->rb = !r->over && right_ok(s, i);
}

/* Do the separators inside digits (FROM, TO) of the run all sit at offsets
 * (from FROM) in ALLOWED (bit k = after k digits)? A separator right at
 * FROM is the boundary of the part, always fine. */
static int cuts_in(uint32_t cuts, unsigned from, unsigned to, uint32_t allowed)
{
    uint32_t inner = (cuts >> from) & ((1u << (to - from)) - 1u) & ~1u;
    return (inner & ~allowed) == 0;
}

/* A separator between every two digits of (FROM, TO): "1-3-8-1-2-...". */
static int cuts_every(uint32_t cuts, unsigned from, unsigned to)
{
    uint32_t want = ((1u << (to - from)) - 1u) & ~1u;
    return to - from >= 2 && ((cuts >> from) & want) == want;
}

static int has_cuts(const numrun_t *r, unsigned nd)
{
    return (r->cuts & ((1u << nd) - 1u)) != 0;
}

/* Separators other than one ' ' or '-' inside the first ND digits. */
static int has_xcuts(const numrun_t *r, unsigned nd)
{
    return (r->xcuts & ((1u << nd) - 1u) & ~1u) != 0;
}

static int luhn(const char *d, unsigned n)
{
    unsigned sum = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned v = (unsigned)(d[n - 1 - i] - '0');
        if (i & 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static int all_same(const char *d, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        if (d[i] != d[0])
            return 0;
    return 1;
}

int bg_det_dots_twice(const scan_t *s, size_t i)
{
    numrun_t r;
    numrun_read(s, i, &r);
    unsigned n = 0;
    for (uint32_t c = r.cuts; c; c &= c - 1)
        n++;
    return n >= 2;
}

/* ---------------------------------------------------------------------- */
/* Resident identity card number (GB 11643-1999)                           */

/* First two digits: the province-level divisions, plus 71 (Taiwan), 81/82
 * (HK/Macao), 83 (Taiwan residents' residence permits), 91 (overseas). */
static int province_ok(unsigned p)
{
    return (p >= 11 && p <= 15) || (p >= 21 && p <= 23) || (p >= 31 && p <= 37) ||
           (p >= 41 && p <= 46) || (p >= 50 && p <= 54) || (p >= 61 && p <= 65) || p == 71 ||
           p == 81 || p == 82 || p == 83 || p == 91;
}

/* ISO 7064 MOD 11-2 check character of the first 17 digits. */
static char id_check_char(const char *d)
{
    static const unsigned char w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    unsigned sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (unsigned)(d[i] - '0') * w[i];
    return "10X98765432"[sum % 11];
}

/*
 * Region code and birth date of an ID number D (18-character form, or the
 * 15-digit form of 1984-1999 when LEGACY). Returns 0 when implausible, 1 for
 * a mainland number, 2 for an HMT residence permit (810000/820000/830000).
 * Mainland region codes never have city code 00; permits always have 0000.
 */
static int id_region_date(scan_t *s, const char *d, int legacy)
{
    unsigned prov = num(d, 2);
    if (!province_ok(prov))
        return 0;
    int hmt = prov >= 81 && prov <= 83;
    if (hmt) {
        if (legacy || num(d + 2, 4) != 0)
            return 0;
    } else if (prov <= 65 && num(d + 2, 2) == 0) {
        return 0;
    }
    unsigned y, m, dd;
    if (legacy)
        y = 1900 + num(d + 6, 2), m = num(d + 8, 2), dd = num(d + 10, 2);
    else
        y = num(d + 6, 4), m = num(d + 10, 2), dd = num(d + 12, 2);
    if (y < 1900 || !valid_date(y, m, dd) || y * 10000 + m * 100 + dd > today_cn(s))
        return 0;
    return hmt ? 2 : 1;
}

static size_t det_resident_id(scan_t *s, const numrun_t *r, unsigned nd, size_t b, size_t e)
{
    int x = nd == r->nd && r->x;
    int key = (s->hints & BG_HINT_RESIDENT_ID) != 0;
    unsigned flags = has_cuts(r, nd) ? BG_DETECT_F_SEPARATED : 0;
    if (key)
        flags |= BG_DETECT_F_KEY_HINT;
    if (nd == 15 && key && !x) {
        /* first-generation card: region, YYMMDD, sequence; no check digit */
        if (id_region_date(s, r->d, 1) != 1)
            return 0;
        return bg_det_emit(s, b, e, BG_CAT_CN_RESIDENT_ID, BG_CAT_NONE, BG_DET_RESIDENT_ID,
                           BG_CONF_HIGH, flags | BG_DETECT_F_NO_CHECKSUM);
    }
    if (!(nd == 18 || (nd == 17 && x)))
        return 0;
    int rd = id_region_date(s, r->d, 0);
    if (rd == 0)
        return 0;
    char cc = x ? 'X' : r->d[17];
    /* through dots, slashes, commas...: the groupings people write (6-8-4,
     * 6-4-4-4, one digit at a time) keep full confidence, others medium */
    int conf = !has_xcuts(r, nd) || cuts_every(r->cuts, 0, nd) ||
                       cuts_in(r->cuts, 0, nd, (1u << 6) | (1u << 10) | (1u << 14))
                   ? BG_CONF_HIGH
                   : BG_CONF_MEDIUM;
    if (id_check_char(r->d) != cc) {
        if (!key) /* a typo'd number under an ID key is still one */
            return 0;
        conf = BG_CONF_MEDIUM;
        flags |= BG_DETECT_F_NO_CHECKSUM;
    }
    if (rd == 2)
        return bg_det_emit(s, b, e, BG_CAT_HMT_RESIDENCE_PERMIT, BG_CAT_CN_RESIDENT_ID,
                           BG_DET_RESIDENT_ID, conf, flags);
    return bg_det_emit(s, b, e, BG_CAT_CN_RESIDENT_ID, BG_CAT_NONE, BG_DET_RESIDENT_ID, conf,
                       flags);
}

/*
 * The 15-digit first-generation number (issued 1984-2004, valid until
 * 2013, still in old records) outside an ID key: a mainland region code and
 * a real 19YYMMDD birth date, no check digit. About 1 % of random 15-digit
 * numbers pass that, yet the number is what old records and scanned cards
 * carry, and it is a person's identity number when it is one: standing
 * alone it is medium (decided on), like a bare mobile number; under a key
 * that names an order, trace or tracking number (BG_HINT_NONPI, the
 * sender's context for a weakly validated shape) it is low. Tried after
 * IMSI and IMEI, which validate better. The false-positive corpus holds
 * 15-digit order, tracking and timestamp numbers that fail the region or
 * date check.
 */
static size_t det_legacy_id(scan_t *s, const numrun_t *r, unsigned nd, size_t b, size_t e)
{
    if (nd != 15 || (nd == r->nd && r->x) || id_region_date(s, r->d, 1) != 1 || all_same(r->d, nd))
        return 0;
    unsigned flags = BG_DETECT_F_NO_CHECKSUM | (has_cuts(r, nd) ? BG_DETECT_F_SEPARATED : 0);
    return bg_det_emit(s, b, e, BG_CAT_CN_RESIDENT_ID, BG_CAT_NONE, BG_DET_RESIDENT_ID,
                       (s->hints & BG_HINT_NONPI) ? BG_CONF_LOW : BG_CONF_MEDIUM, flags);
}

/* ---------------------------------------------------------------------- */
/* Mainland mobile numbers                                                 */

/* Allocated prefixes 1AB (MIIT numbering plan, 2024): 13x, 145-149, 15x but
 * 154, 162/165/166/167, 170-178, 18x, 19x but 194. Numbers outside are
 * still reported, at low confidence (new allocations, test numbers). */
static int mobile_prefix(unsigned a, unsigned b)
{
    switch (a) {
    case 3: return 1;
    case 4: return b >= 5;
    case 5: return b != 4;
    case 6: return b == 2 || b == 5 || b == 6 || b == 7;
    case 7: return b <= 8;
    case 8: return 1;
    case 9: return b != 4;
    }
    return 0;
}

/*
 * ND digits of R as a mobile number: 11 digits, or with a 86 / 0086 country
 * prefix (PLUS: the run followed a '+', and then 86 is required).
 * Confidence: a +86/0086 prefix, a 3-4-4 (3-8, 7-4) grouping or a phone key
 * make it high; a bare 11-digit number is medium; an unallocated prefix or
 * an unusual grouping ("1-380-013-8000", a US-style number) is low.
 */
static size_t det_mobile(scan_t *s, const numrun_t *r, unsigned nd, size_t b, size_t e, int plus)
{
    const char *d = r->d;
    unsigned off;
    int strong = 0; /* an explicit international prefix */
    if (nd == 13 && d[0] == '8' && d[1] == '6')
        off = 2, strong = plus;
    else if (plus)
        return 0;
    else if (nd == 11)
        off = 0;
    else if (nd == 15 && memcmp(d, "0086", 4) == 0)
        off = 4, strong = 1;
    else if (nd == 12 && d[0] == '0' && d[1] == '1')
        off = 1; /* the trunk prefix dialled before a mobile from a landline */
    else
        return 0;
    if (d[off] != '1' || d[off + 1] < '3')
        return 0;
    int alloc = mobile_prefix((unsigned)(d[off + 1] - '0'), (unsigned)(d[off + 2] - '0'));
    int sep = has_cuts(r, nd);
    int regular = cuts_in(r->cuts, off, nd, (1u << 3) | (1u << 7)) && cuts_in(r->cuts, 0, off, 0);
    unsigned flags = sep ? BG_DETECT_F_SEPARATED : 0;
    int conf;
    if (s->hints & BG_HINT_PHONE) {
        conf = alloc ? BG_CONF_HIGH : BG_CONF_MEDIUM;
        flags |= BG_DETECT_F_KEY_HINT;
    } else if (!alloc) {
        conf = BG_CONF_LOW;
    } else if (strong) {
        conf = BG_CONF_HIGH;
    } else if (!regular) {
        /* one digit at a time is deliberate; other groupings are not a
         * mobile number's (counts, prices, "13,812,345,678") */
        conf = cuts_every(r->cuts, off, nd) ? BG_CONF_MEDIUM : BG_CONF_LOW;
    } else {
        conf = sep ? BG_CONF_HIGH : BG_CONF_MEDIUM;
    }
    return bg_det_emit(s, b, e, BG_CAT_CN_MOBILE, BG_CAT_NONE, BG_DET_CN_MOBILE, conf, flags);
}

/* ---------------------------------------------------------------------- */
/* Bank cards                                                              */

/* 0: no known network; 1: a network whose numbers all pass Luhn; 2:
 * UnionPay 62, where some domestic debit cards do not. */
static int card_network(const char *d, unsigned n)
{
    unsigned p2 = num(d, 2), p3 = num(d, 3), p4 = num(d, 4);
    int n16_19 = n >= 16 && n <= 19;
    if (d[0] == '4') /* Visa */
        return n == 13 || n == 16 || n == 19;
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) /* Mastercard */
        return n == 16;
    if (p4 >= 2200 && p4 <= 2204) /* Mir */
        return n16_19;
    if (p2 == 34 || p2 == 37) /* American Express */
        return n == 15;
    if (p4 >= 3528 && p4 <= 3589) /* JCB */
        return n16_19;
    if (p2 == 36 || (p3 >= 300 && p3 <= 305) || p2 == 38 || p2 == 39) /* Diners */
        return n >= 14 && n <= 19;
    if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65) /* Discover */
        return n16_19;
    if (p2 == 62) /* UnionPay */
        return n16_19 ? 2 : 0;
    if (p4 >= 8100 && p4 <= 8171) /* UnionPay's 81 range (Luhn) */
        return n16_19;
    return 0;
}

static size_t det_bank_card(scan_t *s, const numrun_t *r, unsigned nd, size_t b, size_t e)
{
    if (nd < 13 || nd > 19)
        return 0;
    int lu = luhn(r->d, nd);
    unsigned flags = has_cuts(r, nd) ? BG_DETECT_F_SEPARATED : 0;
    int conf;
    if (s->hints & BG_HINT_CARD) {
        /* UnionPay 62 (16-19 digits): some domestic debit cards fail Luhn */
        conf = lu || card_network(r->d, nd) == 2 ? BG_CONF_HIGH : BG_CONF_MEDIUM;
        flags |= BG_DETECT_F_KEY_HINT;
    } else {
        switch (card_network(r->d, nd)) {
        case 1:
            if (!lu)
                return 0;
            conf = BG_CONF_HIGH;
            break;
        case 2: conf = lu ? BG_CONF_HIGH : BG_CONF_LOW; break;
        default: return 0;
        }
    }
    if (!lu)
        flags |= BG_DETECT_F_NO_CHECKSUM;
    if (all_same(r->d, nd))
        return 0;
    /* through dots, commas...: only the groupings cards are printed in */
    if (!(s->hints & BG_HINT_CARD) && has_xcuts(r, nd) && !cuts_every(r->cuts, 0, nd) &&
        !cuts_in(r->cuts, 0, nd, (1u << 4) | (1u << 8) | (1u << 12) | (1u << 16)) &&
        !((nd == 14 || nd == 15) && cuts_in(r->cuts, 0, nd, (1u << 4) | (1u << 10))))
        conf = BG_CONF_LOW;
    return bg_det_emit(s, b, e, BG_CAT_BANK_CARD, BG_CAT_NONE, BG_DET_BANK_CARD, conf, flags);
}

/* ---------------------------------------------------------------------- */
/* IMEI and IMSI                                                           */

/* IMEI reporting-body identifiers (first two digits of the TAC) in use:
 * 01 PTCRB, 10 DECT, 30 Iridium, 33 France, 35/44/98 BABT, 45 Denmark,
 * 49-54 Germany, 86 TAF (China), 91 India, 99 GHA. */
static int imei_rbi(const char *d)
{
    static const unsigned char rbi[] = {1,  10, 30, 33, 35, 44, 45, 49, 50,
                                        51, 52, 53, 54, 86, 91, 98, 99};
    unsigned v = num(d, 2);
    for (size_t i = 0; i < sizeof rbi; i++)
        if (rbi[i] == v)
            return 1;
    return 0;
}

static size_t det_imei(scan_t *s, const numrun_t *r, unsigned nd, size_t b, size_t e)
{
    int key = (s->hints & (BG_HINT_IMEI | BG_HINT_DEVICE)) != 0;
    unsigned flags = has_cuts(r, nd) ? BG_DETECT_F_SEPARATED : 0;
    if (all_same(r->d, nd)) /* "000000000000000": what apps send without permission */
        return 0;
    if (nd == 15) {
        int lu = luhn(r->d, 15);
        if (key)
            return bg_det_emit(s, b, e, BG_CAT_IMEI, BG_CAT_NONE, BG_DET_IMEI,
                               lu ? BG_CONF_HIGH : BG_CONF_MEDIUM,
                               flags | BG_DETECT_F_KEY_HINT | (lu ? 0 : BG_DETECT_F_NO_CHECKSUM));
        if (lu && imei_rbi(r->d))
            return bg_det_emit(s, b, e, BG_CAT_IMEI, BG_CAT_NONE, BG_DET_IMEI,
                               has_xcuts(r, nd) ? BG_CONF_LOW : BG_CONF_MEDIUM, flags);
        return 0;
    }
    /* 14 digits (no check digit) or 16 (IMEISV): under an IMEI key only */
    if ((nd == 14 || nd == 16) && key)
        return bg_det_emit(s, b, e, BG_CAT_IMEI, BG_CAT_NONE, BG_DET_IMEI, BG_CONF_MEDIUM,
                           flags | BG_DETECT_F_KEY_HINT | BG_DETECT_F_NO_CHECKSUM);
    return 0;
}

/* 15 digits: MCC 460 (China) + a mobile network code in use (00-09 and 11
 * for the three carriers, 15 China Broadnet, 20 China Tietong) + MSIN. */
static size_t det_imsi(scan_t *s, const numrun_t *r, unsigned nd, size_t b, size_t e)
{
    if (nd != 15 || memcmp(r->d, "460", 3) != 0)
        return 0;
    unsigned mnc = num(r->d + 3, 2);
    if (!(mnc <= 9 || mnc == 11 || mnc == 15 || mnc == 20))
        return 0;
    unsigned flags = BG_DETECT_F_NO_CHECKSUM | (has_cuts(r, nd) ? BG_DETECT_F_SEPARATED : 0);
    int conf = has_xcuts(r, nd) ? BG_CONF_LOW : BG_CONF_MEDIUM;
    if (s->hints & (BG_HINT_IMSI | BG_HINT_DEVICE)) {
        conf = BG_CONF_HIGH;
        flags |= BG_DETECT_F_KEY_HINT;
    }
    return bg_det_emit(s, b, e, BG_CAT_IMSI, BG_CAT_NONE, BG_DET_IMSI, conf, flags);
}

/* ---------------------------------------------------------------------- */
/* Number dispatch                                                         */

/* The first ND digits of R, spanning [B, E), against the numeric detectors
 * in order of specificity. PLUS: the run followed '+' (mobile only). */
static size_t classify_number(scan_t *s, const numrun_t *r, unsigned nd, size_t b, size_t e,
                              int plus)
{
    size_t m;
    if (plus)
        return on(s, BG_DET_CN_MOBILE) ? det_mobile(s, r, nd, b, e, 1) : 0;
    if (on(s, BG_DET_RESIDENT_ID) && (m = det_resident_id(s, r, nd, b, e)))
        return m;
    if (nd == r->nd && r->x) /* 17 digits + X is an ID number or nothing */
        return 0;
    if (on(s, BG_DET_CN_MOBILE) && (m = det_mobile(s, r, nd, b, e, 0)))
        return m;
    if (on(s, BG_DET_IMSI) && (m = det_imsi(s, r, nd, b, e)))
        return m;
    if (on(s, BG_DET_IMEI) && (m = det_imei(s, r, nd, b, e)))
        return m;
    if (on(s, BG_DET_BANK_CARD) && (m = det_bank_card(s, r, nd, b, e)))
        return m;
    if (on(s, BG_DET_RESIDENT_ID) && (m = det_legacy_id(s, r, nd, b, e)))
        return m;
    /* shapes that are only identifiers when the key says so */
    const unsigned fl = BG_DETECT_F_KEY_HINT | BG_DETECT_F_NO_CHECKSUM |
                        (has_cuts(r, nd) ? BG_DETECT_F_SEPARATED : 0);
    if (nd == 8 && (s->hints & BG_HINT_MO_ID) && strchr("1578", r->d[0]) && on(s, BG_DET_MO_ID))
        return bg_det_emit(s, b, e, BG_CAT_MO_ID, BG_CAT_NONE, BG_DET_MO_ID, BG_CONF_HIGH, fl);
    if ((nd == 8 || nd == 10) && (s->hints & BG_HINT_PERMIT) && on(s, BG_DET_TRAVEL_PERMIT))
        return bg_det_emit(s, b, e, BG_CAT_MAINLAND_TRAVEL_PERMIT, BG_CAT_NONE,
                           BG_DET_TRAVEL_PERMIT, BG_CONF_HIGH, fl);
    if ((nd == 8 || nd == 9) && (s->hints & BG_HINT_PASSPORT) && on(s, BG_DET_PASSPORT))
        return bg_det_emit(s, b, e, BG_CAT_PASSPORT, BG_CAT_NONE, BG_DET_PASSPORT, BG_CONF_HIGH,
                           fl);
    return 0;
}

/* The whole run, then (when that is nothing) its prefixes ending at a
 * separator, longest first: "138 1234 5678 12" holds a mobile number, a
 * space-separated list of numbers holds several. */
static size_t classify_run(scan_t *s, const numrun_t *r, size_t b, int plus)
{
    size_t m;
    if ((r->rb || (s->glued && !r->over)) && (m = classify_number(s, r, r->nd, b, r->e, plus)))
        return m;
    for (unsigned k = r->nd; k-- > 11;)
        if ((r->cuts & (1u << k)) && (m = classify_number(s, r, k, b, r->dend[k], plus)))
            return m;
    return 0;
}

/* A token starting with a digit that is not an address or coordinate. */
size_t bg_det_try_number(scan_t *s, size_t i)
{
    numrun_t r;
    numrun_read(s, i, &r);
    /* Macao identity card "1234567(8)": [1578], 6 digits, check digit in
     * parentheses (the algorithm is not published: shape only) */
    if (r.nd == 8 && r.cuts == (1u << 7) && r.dend[7] == i + 7 && strchr("1578", r.d[0]) &&
        ch(s, i + 7) == '(' && r.e == i + 9 && ch(s, r.e) == ')' && right_ok(s, r.e + 1) &&
        on(s, BG_DET_MO_ID)) {
        r.e = i + 7;
        int key = (s->hints & BG_HINT_MO_ID) != 0;
        return bg_det_emit(s, i, r.e + 3, BG_CAT_MO_ID, BG_CAT_NONE, BG_DET_MO_ID,
                           key ? BG_CONF_HIGH : BG_CONF_MEDIUM,
                           BG_DETECT_F_NO_CHECKSUM | (key ? BG_DETECT_F_KEY_HINT : 0));
    }
    /* "SKU-139-0712-4581", "ORD_13812345678": a number that continues a
     * code of letters joined by '-' or '_' is read like a number glued to
     * those letters (bg_det_try_glued()) */
    unsigned p = ch(s, i - 1), l = ch(s, i - 2);
    if (!((p == '-' || p == '_') && is_a(l)))
        return classify_run(s, &r, i, 0);
    s->glued = 1;
    s->glued_cap = l - 'A' < 26u ? BG_CONF_LOW : BG_CONF_MEDIUM;
    size_t m = classify_run(s, &r, i, 0);
    s->glued = 0;
    return m;
}

/* "+86 138 1234 5678": the span includes the '+'. Other country codes are
 * not mainland numbers (and "+1 381 234 5678" must not read as 13812345678). */
size_t bg_det_try_plus(scan_t *s, size_t i)
{
    if (is_an(ch(s, i - 1)) || ch(s, i + 1) != '8' || ch(s, i + 2) != '6')
        return 0;
    numrun_t r;
    numrun_read(s, i + 1, &r);
    return classify_run(s, &r, i, 1);
}

/* ---------------------------------------------------------------------- */
/* Numbers glued to letters, inside longer runs                            */

/*
 * Digits glued to letters: "tel13812345678", "abc13812345678xyz",
 * "ID110101199003071234end". The run at J (inside the alphanumeric token
 * that starts at TB) is classified like a free-standing number when a letter touches
 * it, with these limits: a token of 16+ hex digits is a hash or trace id
 * and never looked into; an ID number keeps what its checksum gives; any
 * other number is at most medium, and low when the letters it touches are
 * upper case (codes like "JDVA13812345678", "SF...", "...CN" that
 * logistics and order systems print).
 */

size_t bg_det_try_glued(scan_t *s, size_t j, size_t tb)
{
    numrun_t r;
    numrun_read(s, j, &r);
    if (r.over)
        return bg_det_try_id_window(s, j);
    if (r.nd < 11)
        return 0;
    unsigned lc = ch(s, j - 1), rc = ch(s, r.e);
    int left = j > tb && is_a(lc), right = is_a(rc);
    if (!left && !right)
        return 0;
    size_t te = r.e;
    while (te < s->n && is_an(s->t[te]))
        te++;
    if (te - tb >= 16) {
        size_t k = tb;
        while (k < te && is_x(ch(s, k)))
            k++;
        if (k == te)
            return 0;
    }
    int code = (!left || lc - 'A' < 26u) && (!right || rc - 'A' < 26u);
    /* Capitals glued on the left only that label the number rather than
     * make it a code: one letter ("M177...", "T138..."), or a word people
     * put before a phone number or an amount ("TEL", "MOB", "CNY", "RMB").
     * Other capitals ("SF", "ORD", "JDVA", "...CN") are order and tracking
     * codes and stay low. */
    if (code && left && !right && j - tb <= 3) {
        static const char *const labels[] = {"TEL", "MOB", "PH", "CEL", "CNY", "RMB", "HKD",
                                             "USD", "NO",  "NR", "CN",  "ID",  NULL};
        char w[4] = {0};
        int caps = 1;
        for (size_t k = tb; k < j; k++) {
            caps &= ch(s, k) - 'A' < 26u;
            w[k - tb] = (char)ch(s, k);
        }
        int label = j - tb == 1;
        for (const char *const *l = labels; *l && !label; l++)
            label = strcmp(w, *l) == 0;
        code = !(caps && label);
    }
    s->glued = 1;
    s->glued_cap = code ? BG_CONF_LOW : BG_CONF_MEDIUM;
    size_t m = classify_run(s, &r, j, 0);
    s->glued = 0;
    return m ? m : bg_det_try_windows(s, j);
}

/*
 * A number zero-padded into a fixed-width field ("00000000000000000000013598761234",
 * a decimal trace id; "000013812345678"): two or more leading zeros, then
 * exactly a mobile's 11 or an ID number's 18 significant characters ending
 * at a boundary, read as if they stood alone. Returns the end of the
 * finding, or 0.
 */
size_t bg_det_try_zero_padded(scan_t *s, size_t i)
{
    size_t j = i;
    while (j < s->n && s->t[j] == '0')
        j++;
    if (j - i < 2 || j >= s->n || !is_d(s->t[j]))
        return 0;
    size_t q = j;
    while (q < s->n && is_d(s->t[q]))
        q++;
    if (q < s->n && (s->t[q] | 0x20) == 'x')
        q++;
    if ((q - j != 11 && q - j != 18) || !right_ok(s, q))
        return 0;
    numrun_t r;
    numrun_read(s, j, &r);
    unsigned nd = (unsigned)(q - j);
    if (r.nd < nd - (s->t[q - 1] > '9') || (r.cuts & ((1u << nd) - 1)) != 0)
        return 0;
    return classify_number(s, &r, nd - (s->t[q - 1] > '9'), j, q, 0);
}

/*
 * An ID number inside a longer run of digits, or after a dotted prefix:
 * "1700000000" + ID (a timestamp glued on), an ID written twice, "k" + ID +
 * "0001", "GA1.2." + ID. The plain digit run from I is searched window by
 * window for 17 digits + check character with a real region code, a real
 * birth date and a matching GB 11643 check character: together about one
 * random 18-digit window in 10^5 passes, so this is medium (decided on).
 * Mobile numbers are not searched this way: every long number holds an
 * 11-digit stretch starting 13-19. O(run length). Returns the end of the
 * last finding, or 0.
 */
size_t bg_det_try_id_window(scan_t *s, size_t i)
{
    if (!on(s, BG_DET_RESIDENT_ID))
        return 0;
    size_t q = i;
    while (q < s->n && is_d(s->t[q]))
        q++;
    size_t end = q;
    if (q < s->n && (s->t[q] | 0x20) == 'x')
        end = q + 1; /* the last window may end in the check character X */
    if (end - i < 18 || (end - i == 18 && left_ok(s, i)))
        return 0; /* exactly one number's length: the ordinary and glued paths' */
    size_t last = 0;
    for (size_t w = i; w + 18 <= end; w++) {
        const char *d = (const char *)s->t + w;
        char cc = (char)(s->t[w + 17] == 'x' ? 'X' : s->t[w + 17]);
        int rd;
        if ((rd = id_region_date(s, d, 0)) == 0 || id_check_char(d) != cc)
            continue;
        int g = s->glued;
        s->glued = 0;
        size_t m =
            bg_det_emit(s, w, w + 18, rd == 2 ? BG_CAT_HMT_RESIDENCE_PERMIT : BG_CAT_CN_RESIDENT_ID,
                        rd == 2 ? BG_CAT_CN_RESIDENT_ID : BG_CAT_NONE, BG_DET_RESIDENT_ID,
                        BG_CONF_MEDIUM, BG_DETECT_F_GLUED);
        s->glued = g;
        if (m == 0)
            break;
        last = m;
        w = m - 1; /* the next window after this number (an ID written twice) */
    }
    return last;
}

/*
 * A mobile number inside a longer plain run of digits from I, in the two
 * shapes that are not an order id's: the same allocated mobile written two
 * to six times over ("1359876123413598761234": about one random run in
 * 10^10 repeats an 11-digit stretch), or, under a key that names a phone,
 * an allocated mobile that starts a 12-24 digit run (an extension of up to
 * 6 digits after it) or ends it after a prefix that is not an area code
 * (a dialling prefix such as 17951; the key says it is a phone).
 * Other long runs are not searched: every order id, snowflake or decimal
 * trace id holds an 11-digit stretch starting 13-19. Each mobile found is
 * reported (medium, glued; high under a phone key). O(run length).
 * Returns the end of the last finding, or 0.
 */
static size_t try_mobile_window(scan_t *s, size_t i)
{
    if (!on(s, BG_DET_CN_MOBILE))
        return 0;
    if (!(s->hints & BG_HINT_PHONE) && !is_d(ch(s, i + 21)))
        return 0; /* neither a phone key nor room for two copies */
    size_t q = i;
    while (q < s->n && is_d(s->t[q]) && q - i <= 66)
        q++;
    size_t len = q - i;
    if (len <= 11)
        return 0;
    const unsigned char *d = s->t + i;
    int repeat = len % 11 == 0 && len <= 66;
    for (size_t k = 11; repeat && k < len; k++)
        repeat = d[k] == d[k - 11];
    int key = (s->hints & BG_HINT_PHONE) && len <= NR_MAX;
    if (!repeat && !key)
        return 0;
    numrun_t r;
    memset(&r, 0, sizeof r);
    r.nd = 11;
    size_t last = 0;
    for (size_t w = i; w + 11 <= q; w++) {
        if (s->t[w] != '1' ||
            !mobile_prefix((unsigned)(s->t[w + 1] - '0'), (unsigned)(s->t[w + 2] - '0')))
            continue;
        if (repeat ? (w - i) % 11 != 0
                   : !((w == i && q - w - 11 <= 6) || (w + 11 == q && s->t[i] != '0')))
            continue; /* under a phone key: extension after, or a dialling prefix
                         before (not an area code: "021 3123 4567 89") */
        memcpy(r.d, s->t + w, 11);
        int g = s->glued, gc = s->glued_cap;
        s->glued = 1;
        s->glued_cap = BG_CONF_MEDIUM;
        size_t m = det_mobile(s, &r, 11, w, w + 11, 0);
        s->glued = g;
        s->glued_cap = gc;
        if (m == 0)
            break;
        last = m;
        w = m - 1;
    }
    return last;
}

/* A number inside a longer run: a mobile (try_mobile_window()), else an ID
 * number (bg_det_try_id_window()). */
size_t bg_det_try_windows(scan_t *s, size_t i)
{
    size_t m = try_mobile_window(s, i);
    return m ? m : bg_det_try_id_window(s, i);
}
