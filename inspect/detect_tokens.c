/*
 * The content detectors for shapes other than plain digit runs: letter-led
 * identity documents (HK and Taiwan ID with their check characters, China
 * passports, Mainland Travel Permits), MAC addresses, UUIDs and hexadecimal
 * device identifiers, IPv4 and IPv6 addresses, GPS coordinate pairs and
 * e-mail addresses. Each bg_det_try_*() is tried by the pass in detect.c at
 * a token start (or at '@', ':', '-').
 */
#include "inspect/detect_int.h"

#include <arpa/inet.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Letter-led identity documents: HK, Taiwan, passports, travel permits    */

/* HK identity card: weights 9..2 over (letter, letter, 6 digits); a single
 * letter is padded in front with a space worth 36 (58 in some write-ups:
 * the same modulo 11). Letters are A=10..Z=35. Check = (11 - sum) mod 11,
 * 10 written 'A'. */
static int hk_check(unsigned l0, unsigned l1, const char *d6, unsigned chk)
{
    unsigned sum = l1 ? (l0 - 'A' + 10) * 9 + (l1 - 'A' + 10) * 8 : 36 * 9 + (l0 - 'A' + 10) * 8;
    for (unsigned i = 0; i < 6; i++)
        sum += (unsigned)(d6[i] - '0') * (7 - i);
    unsigned want = (11 - sum % 11) % 11;
    return want == (chk == 'A' ? 10u : chk - '0');
}

/* Taiwan identity card / resident certificate: the letter's two-digit code
 * weighted 1 and 9, then the digits 8..1 and the check digit 1; the sum is
 * a multiple of 10. */
static int tw_check(unsigned l0, const char *d9)
{
    static const unsigned char code[26] = {10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21,
                                           22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30, 31, 33};
    unsigned v = code[l0 - 'A'];
    unsigned sum = v / 10 + (v % 10) * 9;
    for (unsigned i = 0; i < 8; i++)
        sum += (unsigned)(d9[i] - '0') * (8 - i);
    sum += (unsigned)(d9[8] - '0');
    return sum % 10 == 0;
}

/*
 * A token of 1-2 letters and digits: Taiwan ID (A123456789), HK ID
 * (A123456(3), AB9876543, A123456A), China passport (E12345678, EA1234567,
 * G12345678), travel permits (H12345678, M1234567801), and any 1-2 letters +
 * 7-9 digits under a passport key. Letters may be lower case.
 */
size_t bg_det_try_letters(scan_t *s, size_t i)
{
    unsigned nl = 0;
    while (nl < 3 && is_a(ch(s, i + nl)))
        nl++;
    if (nl == 0 || nl > 2 || !left_ok(s, i))
        return 0;
    char d[11] = {0}; /* only d[0..nd) is read; zeroed for gcc -O3's flow analysis */
    unsigned nd = 0;
    size_t j = i + nl;
    while (nd < sizeof d && is_d(ch(s, j)))
        d[nd++] = (char)ch(s, j++);
    if (nd < 6 || is_d(ch(s, j)))
        return 0;
    unsigned l0 = up(ch(s, i)), l1 = nl == 2 ? up(ch(s, i + 1)) : 0;
    uint32_t h = s->hints;
    int plain = right_ok(s, j); /* letters + digits, then a boundary */

    /* Under a passport key, the key decides: any 1-2 letters + 7-9 digits */
    if (plain && (h & BG_HINT_PASSPORT) && nd >= 7 && nd <= 9 && on(s, BG_DET_PASSPORT))
        return bg_det_emit(s, i, j, BG_CAT_PASSPORT, BG_CAT_NONE, BG_DET_PASSPORT, BG_CONF_HIGH,
                           BG_DETECT_F_KEY_HINT | BG_DETECT_F_NO_CHECKSUM);

    /* Taiwan: letter, 1/2 (citizens, by sex) or 8/9 (residents since 2021) */
    if (nl == 1 && nd == 9 && plain && strchr("1289", d[0]) && on(s, BG_DET_TW_ID)) {
        int key = (h & BG_HINT_TW_ID) != 0;
        if (tw_check(l0, d))
            return bg_det_emit(s, i, j, BG_CAT_TW_ID, BG_CAT_NONE, BG_DET_TW_ID,
                               key ? BG_CONF_HIGH : BG_CONF_MEDIUM, key ? BG_DETECT_F_KEY_HINT : 0);
        if (key)
            return bg_det_emit(s, i, j, BG_CAT_TW_ID, BG_CAT_NONE, BG_DET_TW_ID, BG_CONF_MEDIUM,
                               BG_DETECT_F_KEY_HINT | BG_DETECT_F_NO_CHECKSUM);
    }

    /* HK: 6 digits and a check character, bare or in parentheses */
    unsigned chk = 0;
    size_t hk_end = 0;
    int paren = 0;
    if (nd == 6 && ch(s, j) == '(' && (is_d(ch(s, j + 1)) || up(ch(s, j + 1)) == 'A') &&
        ch(s, j + 2) == ')' && right_ok(s, j + 3))
        chk = up(ch(s, j + 1)), hk_end = j + 3, paren = 1;
    else if (nd == 6 && up(ch(s, j)) == 'A' && right_ok(s, j + 1))
        chk = 'A', hk_end = j + 1;
    else if (nd == 7 && plain)
        chk = (unsigned)d[6], hk_end = j;
    int hk_key = (h & BG_HINT_HK_ID) != 0;
    int hk_ok = hk_end && hk_check(l0, l1, d, chk);

    /* China passports: E + 8 digits, E + letter (not I/O) + 7 digits since
     * the E series ran out, G + 8 digits (issued until 2012: expired) */
    if (plain && on(s, BG_DET_PASSPORT) &&
        (((l0 == 'E' || l0 == 'G') && nl == 1 && nd == 8) ||
         (l0 == 'E' && nl == 2 && l1 != 'I' && l1 != 'O' && nd == 7 && !(hk_key && hk_ok)))) {
        int key = (h & BG_HINT_PASSPORT) != 0;
        int conf = key ? BG_CONF_HIGH : l0 == 'G' ? BG_CONF_LOW : BG_CONF_MEDIUM;
        return bg_det_emit(s, i, j, BG_CAT_PASSPORT, hk_ok ? BG_CAT_HK_ID : BG_CAT_NONE,
                           BG_DET_PASSPORT, conf,
                           BG_DETECT_F_NO_CHECKSUM | (key ? BG_DETECT_F_KEY_HINT : 0));
    }
    if (hk_end && on(s, BG_DET_HK_ID)) {
        if (hk_ok)
            return bg_det_emit(s, i, hk_end, BG_CAT_HK_ID, BG_CAT_NONE, BG_DET_HK_ID,
                               hk_key || paren ? BG_CONF_HIGH : BG_CONF_MEDIUM,
                               hk_key ? BG_DETECT_F_KEY_HINT : 0);
        if (hk_key)
            return bg_det_emit(s, i, hk_end, BG_CAT_HK_ID, BG_CAT_NONE, BG_DET_HK_ID,
                               BG_CONF_MEDIUM, BG_DETECT_F_KEY_HINT | BG_DETECT_F_NO_CHECKSUM);
    }

    /* Mainland Travel Permit for HK (H) / Macao (M) residents: 8 digits, or
     * 10 on older cards (2-digit issue count). No check digit: low alone. */
    if (plain && nl == 1 && (l0 == 'H' || l0 == 'M') && (nd == 8 || nd == 10) &&
        on(s, BG_DET_TRAVEL_PERMIT)) {
        int key = (h & BG_HINT_PERMIT) != 0;
        return bg_det_emit(s, i, j, BG_CAT_MAINLAND_TRAVEL_PERMIT, BG_CAT_NONE,
                           BG_DET_TRAVEL_PERMIT, key ? BG_CONF_HIGH : BG_CONF_LOW,
                           BG_DETECT_F_NO_CHECKSUM | (key ? BG_DETECT_F_KEY_HINT : 0));
    }

    return 0;
}

/* ---------------------------------------------------------------------- */
/* MAC addresses, UUIDs, hexadecimal device identifiers                    */

static int hex_at(const scan_t *s, size_t i, unsigned n)
{
    for (unsigned k = 0; k < n; k++)
        if (!is_x(ch(s, i + k)))
            return 0;
    return 1;
}

/* The 12 hex digits of a MAC are not an identifier: all zero, broadcast,
 * or 02:00:00:00:00:00 (what Android returns to apps since version 6). */
static int mac_placeholder(const char *h)
{
    int zero = 1, ff = 1;
    for (int k = 0; k < 12; k++) {
        zero &= h[k] == '0';
        ff &= (h[k] | 0x20) == 'f';
    }
    return zero || ff || memcmp(h, "020000000000", 12) == 0;
}

/* aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff */
size_t bg_det_try_mac(scan_t *s, size_t i)
{
    char h[12];
    unsigned sep = ch(s, i + 2);
    size_t e;
    if (sep == ':' || sep == '-') {
        for (unsigned k = 0; k < 6; k++) {
            if (!hex_at(s, i + 3 * k, 2) || (k < 5 && ch(s, i + 3 * k + 2) != sep))
                return 0;
            h[2 * k] = (char)ch(s, i + 3 * k), h[2 * k + 1] = (char)ch(s, i + 3 * k + 1);
        }
        e = i + 17;
    } else if (ch(s, i + 4) == '.') {
        sep = '.';
        for (unsigned k = 0; k < 3; k++) {
            if (!hex_at(s, i + 5 * k, 4) || (k < 2 && ch(s, i + 5 * k + 4) != '.'))
                return 0;
            memcpy(h + 4 * k, s->t + i + 5 * k, 4);
        }
        e = i + 14;
    } else {
        return 0;
    }
    /* not part of a longer run of groups (EUI-64, IPv6, "aa:bb:..:gg") */
    unsigned p = ch(s, i - 1);
    if (p == sep || p == ':' || !right_ok(s, e) || (ch(s, e) == sep && is_x(ch(s, e + 1))) ||
        ch(s, e) == ':')
        return 0;
    if (mac_placeholder(h))
        return e; /* consumed: not PI */
    int digits = 1;
    for (int k = 0; k < 12; k++)
        digits &= is_d((unsigned char)h[k]);
    int key = (s->hints & (BG_HINT_MAC | BG_HINT_DEVICE)) != 0;
    int conf = key ? BG_CONF_HIGH : (digits && sep == '-') ? BG_CONF_LOW : BG_CONF_MEDIUM;
    return bg_det_emit(s, i, e, BG_CAT_MAC_ADDRESS, BG_CAT_NONE, BG_DET_MAC, conf,
                       key ? BG_DETECT_F_KEY_HINT : 0);
}

/* 8-4-4-4-12 hex. A device identifier (IDFA, IDFV, OAID...) under a device
 * key; anything else elsewhere (request ids, object ids), consumed whole so
 * that its groups are not read as numbers. The all-zero UUID is what iOS
 * and Android return when the user limits ad tracking: not PI. */
size_t bg_det_try_uuid(scan_t *s, size_t i)
{
    static const unsigned char len[5] = {8, 4, 4, 4, 12};
    if (ch(s, i + 8) != '-' || ch(s, i + 13) != '-') /* cheap rejection first */
        return 0;
    size_t j = i;
    int zero = 1;
    for (unsigned g = 0; g < 5; g++) {
        if (g > 0 && ch(s, j++) != '-')
            return 0;
        for (unsigned k = 0; k < len[g]; k++, j++) {
            if (!is_x(ch(s, j)))
                return 0;
            zero &= ch(s, j) == '0';
        }
    }
    if (is_an(ch(s, j)) || (ch(s, j) == '-' && is_x(ch(s, j + 1))))
        return 0;
    if (zero || !(s->hints & (BG_HINT_DEVICE | BG_HINT_ANDROID)) || !on(s, BG_DET_DEVICE_ID))
        return j;
    return bg_det_emit(s, i, j, BG_CAT_DEVICE_ID, BG_CAT_NONE, BG_DET_DEVICE_ID, BG_CONF_HIGH,
                       BG_DETECT_F_KEY_HINT);
}

/* A bare hexadecimal token under a key that names a device identifier:
 * Android ID (16, or 15 with the leading zero dropped), other device ids
 * (16/32/40/64: OAID, UDID, hashed ids), a MAC without separators (12). */
size_t bg_det_try_hexid(scan_t *s, size_t i)
{
    size_t j = i;
    int zero = 1;
    while (j - i <= 64 && is_x(ch(s, j))) {
        zero &= ch(s, j) == '0';
        j++;
    }
    size_t n = j - i;
    if (n > 64 || !right_ok(s, j) || ch(s, j) == '-')
        return 0;
    if (zero)
        return j;
    uint32_t h = s->hints;
    if ((h & BG_HINT_ANDROID) && (n == 15 || n == 16) && on(s, BG_DET_ANDROID_ID)) {
        /* 9774d56d682e549c: the one ID a batch of Android 2.2 devices shared */
        static const char shared[] = "9774d56d682e549c";
        size_t k = 0;
        while (n == 16 && k < 16 && (ch(s, i + k) | 0x20) == (unsigned char)shared[k])
            k++;
        if (k == 16)
            return j;
        return bg_det_emit(s, i, j, BG_CAT_ANDROID_ID, BG_CAT_NONE, BG_DET_ANDROID_ID, BG_CONF_HIGH,
                           BG_DETECT_F_KEY_HINT);
    }
    if ((h & BG_HINT_DEVICE) && (n == 16 || n == 32 || n == 40 || n == 64) &&
        on(s, BG_DET_DEVICE_ID))
        return bg_det_emit(s, i, j, BG_CAT_DEVICE_ID, BG_CAT_NONE, BG_DET_DEVICE_ID, BG_CONF_HIGH,
                           BG_DETECT_F_KEY_HINT);
    if ((h & BG_HINT_MAC) && n == 12 && on(s, BG_DET_MAC)) {
        char mh[12];
        memcpy(mh, s->t + i, 12);
        if (mac_placeholder(mh))
            return j;
        return bg_det_emit(s, i, j, BG_CAT_MAC_ADDRESS, BG_CAT_NONE, BG_DET_MAC, BG_CONF_HIGH,
                           BG_DETECT_F_KEY_HINT);
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* IP addresses                                                            */

/* Private, loopback, link-local, CGNAT, documentation, benchmarking,
 * multicast, reserved, "this network". */
static int ipv4_local(const unsigned char *a)
{
    return a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 || (a[0] == 169 && a[1] == 254) ||
           (a[0] == 172 && (a[1] & 0xF0) == 16) || (a[0] == 192 && a[1] == 168) ||
           (a[0] == 100 && (a[1] & 0xC0) == 64) || (a[0] == 192 && a[1] == 0 && a[2] == 2) ||
           (a[0] == 198 && (a[1] & 0xFE) == 18) || (a[0] == 198 && a[1] == 51 && a[2] == 100) ||
           (a[0] == 203 && a[1] == 0 && a[2] == 113);
}

static int ip_conf(scan_t *s, int local, unsigned *flags)
{
    int conf = local ? BG_CONF_LOW : BG_CONF_MEDIUM;
    if (local)
        *flags |= BG_DETECT_F_LOCAL_ADDR;
    if (s->hints & BG_HINT_IP) {
        conf++;
        *flags |= BG_DETECT_F_KEY_HINT;
    }
    return conf;
}

/* Dotted quad, each part 0-255 without leading zeros, standing alone: not
 * part of a longer dotted run ("10.0.0.0.1", "1.2.3.4.5"). All parts below
 * 10 ("1.2.3.4", "2.0.1.0") reads like a version number, and the public
 * addresses of that shape are resolvers (1.1.1.1, 8.8.8.8): low. */
size_t bg_det_try_ipv4(scan_t *s, size_t i)
{
    unsigned char a[4];
    size_t j = i;
    int small = 1;
    if (ch(s, i - 1) == '.' || !left_ok(s, i))
        return 0;
    for (unsigned k = 0; k < 4; k++) {
        if (k > 0 && ch(s, j++) != '.')
            return 0;
        unsigned v = 0, n = 0;
        while (n < 4 && is_d(ch(s, j)))
            v = v * 10 + (ch(s, j++) - '0'), n++;
        if (n == 0 || n > 3 || v > 255 || (n > 1 && ch(s, j - n) == '0'))
            return 0;
        a[k] = (unsigned char)v;
        small &= v < 10;
    }
    if (!right_ok(s, j))
        return 0;
    unsigned flags = 0;
    int conf = ip_conf(s, ipv4_local(a), &flags);
    if (small && conf > BG_CONF_LOW && !(flags & BG_DETECT_F_KEY_HINT))
        conf = BG_CONF_LOW;
    /* "Chrome/131.0.0.0", "Version/17.4.1.0": a product's version after
     * "NAME/" (a URL's host follows "//" instead), or a quad ending in .0,
     * which names a network, not a host: low. */
    if (conf > BG_CONF_LOW && !(flags & BG_DETECT_F_KEY_HINT) &&
        (a[3] == 0 || (ch(s, i - 1) == '/' && is_an(ch(s, i - 2)))))
        conf = BG_CONF_LOW;
    return bg_det_emit(s, i, j, BG_CAT_IP_ADDRESS, BG_CAT_NONE, BG_DET_IPV4, conf, flags);
}

/* Hex groups and colons (and a dotted IPv4 tail), at least two colons and a
 * digit, accepted by inet_pton(). Starts at a hex digit or at "::". */
size_t bg_det_try_ipv6(scan_t *s, size_t i)
{
    unsigned p = ch(s, i - 1);
    if (is_an(p) || p == ':' || p == '.' || p == '@')
        return 0;
    size_t j = i;
    unsigned ncol = 0;
    int dig = 0;
    while (j - i <= 45) {
        unsigned c = ch(s, j);
        if (is_x(c))
            dig |= is_d(c);
        else if (c == ':')
            ncol++;
        else if (!(c == '.' && is_d(ch(s, j + 1))))
            break;
        j++;
    }
    if (j - i > 45)
        return 0;
    if (ch(s, j - 1) == ':' && ch(s, j - 2) != ':') /* "addr 2001:db8::1: ..." */
        j--, ncol--;
    if (ncol < 2 || !dig || !right_ok(s, j))
        return 0;
    char buf[48];
    memcpy(buf, s->t + i, j - i);
    buf[j - i] = 0;
    unsigned char a[16];
    if (inet_pton(AF_INET6, buf, a) != 1)
        return 0;
    static const unsigned char zero[10];
    int local;
    if (memcmp(a, zero, 10) == 0 && a[10] == 0xFF && a[11] == 0xFF) /* v4-mapped */
        local = ipv4_local(a + 12);
    else
        local = (memcmp(a, zero, 10) == 0 && a[10] == 0 && a[11] == 0 && a[12] == 0 && a[13] == 0 &&
                 a[14] == 0 && a[15] <= 1) ||                                   /* :: and ::1 */
                (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) ||                      /* link-local */
                (a[0] & 0xFE) == 0xFC ||                                        /* unique local */
                a[0] == 0xFF ||                                                 /* multicast */
                (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0D && a[3] == 0xB8); /* docs */
    unsigned flags = 0;
    int conf = ip_conf(s, local, &flags);
    return bg_det_emit(s, i, j, BG_CAT_IP_ADDRESS, BG_CAT_NONE, BG_DET_IPV6, conf, flags);
}

/* ---------------------------------------------------------------------- */
/* GPS coordinate pairs                                                    */

typedef struct {
    int neg;
    unsigned ip; /* integer part */
    int frac;    /* fractional part is not zero */
    size_t e;    /* end */
} dec_t;

/* [-]D{1,3}.D{3,20} */
static int read_dec(const scan_t *s, size_t j, dec_t *v)
{
    v->neg = ch(s, j) == '-';
    j += (size_t)v->neg;
    unsigned n = 0, ip = 0;
    while (n < 4 && is_d(ch(s, j)))
        ip = ip * 10 + (ch(s, j++) - '0'), n++;
    if (n == 0 || n > 3 || ch(s, j) != '.')
        return 0;
    j++;
    unsigned nd = 0;
    int frac = 0;
    while (nd <= 20 && is_d(ch(s, j)))
        frac |= ch(s, j++) != '0', nd++;
    if (nd < 3 || nd > 20)
        return 0;
    v->ip = ip, v->frac = frac, v->e = j;
    return 1;
}

static int dec_within(const dec_t *v, unsigned lim)
{
    return v->ip < lim || (v->ip == lim && !v->frac);
}

/* Mainland China's bounding box, roughly: where GCJ-02 / BD-09 pairs live. */
static int in_china(const dec_t *lat, const dec_t *lng)
{
    return !lat->neg && !lng->neg && lat->ip >= 3 && lat->ip <= 53 && lng->ip >= 73 &&
           lng->ip <= 135;
}

/* "31.2304,121.4737" or "121.4737, 31.2304": exactly a pair (not part of a
 * longer comma-separated list), each with >= 3 decimals, in range in one
 * order or the other, not (0,0)-ish (both below 1 degree: ratios, bounding
 * boxes, "null island"). */
size_t bg_det_try_gps(scan_t *s, size_t i)
{
    unsigned p = ch(s, i - 1);
    if (is_an(p) || p == '.' || p == '-' || p == '+' || p == '@' ||
        (p == ',' && is_d(ch(s, i - 2))) || (p == ' ' && ch(s, i - 2) == ',' && is_d(ch(s, i - 3))))
        return 0;
    dec_t a, b;
    if (!read_dec(s, i, &a))
        return 0;
    size_t j = a.e;
    if (ch(s, j) != ',')
        return 0;
    j++;
    if (ch(s, j) == ' ')
        j++;
    if (!read_dec(s, j, &b))
        return 0;
    size_t e = b.e;
    unsigned c = ch(s, e), c1 = ch(s, e + 1);
    if (!right_ok(s, e) || c == '-' ||
        (c == ',' &&
         (is_d(c1) || c1 == '-' || (c1 == ' ' && (is_d(ch(s, e + 2)) || ch(s, e + 2) == '-')))))
        return 0;
    int latlng = dec_within(&a, 90) && dec_within(&b, 180);
    int lnglat = dec_within(&a, 180) && dec_within(&b, 90);
    if (!(latlng || lnglat) || (a.ip == 0 && b.ip == 0))
        return 0;
    unsigned flags = 0;
    int conf = BG_CONF_MEDIUM;
    if (s->hints & BG_HINT_GEO) {
        conf = BG_CONF_HIGH;
        flags |= BG_DETECT_F_KEY_HINT;
    } else if ((latlng && in_china(&a, &b)) || (lnglat && in_china(&b, &a))) {
        conf = BG_CONF_HIGH;
    }
    return bg_det_emit(s, i, e, BG_CAT_GPS_LOCATION, BG_CAT_NONE, BG_DET_GPS_PAIR, conf, flags);
}

/* ---------------------------------------------------------------------- */
/* E-mail                                                                  */

static int is_local(unsigned c)
{
    return is_an(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* Shared mailboxes of organisations and systems: not a person's address. */
static int role_local(const scan_t *s, size_t b, size_t at)
{
    static const char *const roles[] = {
        "noreply",      "no-reply",   "donotreply", "do-not-reply", "no_reply", "mailer-daemon",
        "postmaster",   "hostmaster", "webmaster",  "root",         "admin",    "administrator",
        "abuse",        "support",    "info",       "service",      "help",     "sales",
        "contact",      "hello",      "billing",    "security",     "privacy",  "notifications",
        "notification", "newsletter", "marketing",  "git",          "bounce",   "bounces",
        "feedback",     "system",     "office",     "jobs",         "careers",  NULL};
    size_t n = at - b;
    for (const char *const *r = roles; *r; r++) {
        if (strlen(*r) != n)
            continue;
        size_t k = 0;
        while (k < n && (ch(s, b + k) | 0x20) == (unsigned char)(*r)[k])
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

/*
 * At '@': local part (alphanumerics and ._%+-, at most 64, not starting or
 * ending with '.'), a domain of at least two labels (alphanumerics and '-',
 * 1-63 each, 253 in all) and an alphabetic TLD of 2-24 letters (or an IDN
 * "xn--" TLD). Not image-density names ("icon@2x.png") or file names.
 */
size_t bg_det_try_email(scan_t *s, size_t at)
{
    size_t b = at;
    while (b > s->floor && at - b <= 64 && is_local(ch(s, b - 1)))
        b--;
    if (at - b > 64)
        return 0;
    while (b < at && ch(s, b) == '.')
        b++;
    if (b == at || ch(s, at - 1) == '.')
        return 0;

    size_t j = at + 1, first_end = 0, tld = 0;
    unsigned nlab = 0;
    for (;;) {
        size_t l = j;
        while (j - l < 64 && (is_an(ch(s, j)) || ch(s, j) == '-'))
            j++;
        if (j == l || j - l > 63 || ch(s, l) == '-' || ch(s, j - 1) == '-' || is_an(ch(s, j)) ||
            ch(s, j) == '-' || j - at - 1 > 253)
            return 0;
        if (nlab++ == 0)
            first_end = j;
        tld = l;
        if (ch(s, j) == '.' && is_an(ch(s, j + 1))) {
            j++;
            continue;
        }
        break;
    }
    if (nlab < 2 || ch(s, j) == '@')
        return 0;
    size_t tl = j - tld;
    int idn = tl > 4 && (ch(s, tld) | 0x20) == 'x' && (ch(s, tld + 1) | 0x20) == 'n' &&
              ch(s, tld + 2) == '-' && ch(s, tld + 3) == '-';
    if (!idn) {
        if (tl < 2 || tl > 24)
            return 0;
        for (size_t k = tld; k < j; k++)
            if (!is_a(ch(s, k)))
                return 0;
        /* file extensions that are no TLD: "logo@brand.png", "a@b.json" */
        static const char *const ext[] = {"png", "jpg",  "jpeg", "gif", "webp", "svg",  "bmp",
                                          "ico", "json", "js",   "css", "html", "htm",  "xml",
                                          "txt", "pdf",  "mp3",  "mp4", "wav",  "heic", NULL};
        for (const char *const *x = ext; *x; x++) {
            size_t n = strlen(*x), k = 0;
            while (n == tl && k < n && (ch(s, tld + k) | 0x20) == (unsigned char)(*x)[k])
                k++;
            if (n == tl && k == n)
                return 0;
        }
    }
    /* "@2x.", "@3x.": image density suffixes (icon@2x.png) */
    if ((ch(s, first_end - 1) | 0x20) == 'x' && first_end - 1 > at + 1) {
        size_t k = at + 1;
        while (k < first_end - 1 && is_d(ch(s, k)))
            k++;
        if (k == first_end - 1)
            return 0;
    }
    int key = (s->hints & BG_HINT_EMAIL) != 0;
    int conf = key ? BG_CONF_HIGH : role_local(s, b, at) ? BG_CONF_LOW : BG_CONF_HIGH;
    return bg_det_emit(s, b, j, BG_CAT_EMAIL, BG_CAT_NONE, BG_DET_EMAIL, conf,
                       key ? BG_DETECT_F_KEY_HINT : 0);
}
