/*
 * Content detectors (see detect.h for the contract).
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
 */
#include "inspect/detect.h"
#include "inspect/normalize.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------- */
/* Names                                                                   */

static const char *const cat_ids[BG_CAT__COUNT] = {
    [BG_CAT_NONE] = NULL,
    [BG_CAT_CN_RESIDENT_ID] = "cn_resident_id",
    [BG_CAT_HMT_RESIDENCE_PERMIT] = "hmt_residence_permit",
    [BG_CAT_CN_MOBILE] = "cn_mobile",
    [BG_CAT_EMAIL] = "email",
    [BG_CAT_BANK_CARD] = "bank_card",
    [BG_CAT_IMEI] = "imei",
    [BG_CAT_IMSI] = "imsi",
    [BG_CAT_MAC_ADDRESS] = "mac_address",
    [BG_CAT_ANDROID_ID] = "android_id",
    [BG_CAT_DEVICE_ID] = "device_id",
    [BG_CAT_IP_ADDRESS] = "ip_address",
    [BG_CAT_GPS_LOCATION] = "gps_location",
    [BG_CAT_PASSPORT] = "passport",
    [BG_CAT_HK_ID] = "hk_id",
    [BG_CAT_TW_ID] = "tw_id",
    [BG_CAT_MO_ID] = "mo_id",
    [BG_CAT_MAINLAND_TRAVEL_PERMIT] = "mainland_travel_permit",
    [BG_CAT_PERSON_NAME] = "person_name",
    [BG_CAT_ADDRESS] = "address",
    [BG_CAT_PHONE_NUMBER] = "phone_number",
    [BG_CAT_IDENTITY_DOCUMENT] = "identity_document",
    [BG_CAT_BIRTH_DATE] = "birth_date",
    [BG_CAT_AGE] = "age",
    [BG_CAT_GENDER] = "gender",
    [BG_CAT_NATIONALITY] = "nationality",
    [BG_CAT_ETHNICITY] = "ethnicity",
    [BG_CAT_PRECISE_LOCATION] = "precise_location",
    [BG_CAT_WHEREABOUTS] = "whereabouts",
    [BG_CAT_BIOMETRICS] = "biometrics",
    [BG_CAT_HEALTH] = "health",
    [BG_CAT_RELIGION] = "religion",
    [BG_CAT_SPECIFIC_IDENTITY] = "specific_identity",
    [BG_CAT_SEXUAL_ORIENTATION] = "sexual_orientation",
    [BG_CAT_CRIMINAL_RECORD] = "criminal_record",
    [BG_CAT_MINOR_UNDER_14] = "minor_under_14",
    [BG_CAT_FINANCIAL_ACCOUNT] = "financial_account",
    [BG_CAT_TRANSACTION_RECORD] = "transaction_record",
    [BG_CAT_CREDENTIALS] = "credentials",
    [BG_CAT_ACCOUNT_ID] = "account_id",
    [BG_CAT_CONTACTS] = "contacts",
    [BG_CAT_COMMUNICATION_RECORD] = "communication_record",
    [BG_CAT_BROWSING_HISTORY] = "browsing_history",
    [BG_CAT_INSTALLED_APPS] = "installed_apps",
    [BG_CAT_VEHICLE_PLATE] = "vehicle_plate",
};

static const char *const det_names[BG_DET__COUNT] = {
    [BG_DET_RESIDENT_ID] = "gb11643",
    [BG_DET_CN_MOBILE] = "cn_mobile",
    [BG_DET_EMAIL] = "email",
    [BG_DET_BANK_CARD] = "luhn_bank_card",
    [BG_DET_IMEI] = "imei_luhn",
    [BG_DET_IMSI] = "imsi_460",
    [BG_DET_MAC] = "mac",
    [BG_DET_ANDROID_ID] = "android_id_by_key",
    [BG_DET_DEVICE_ID] = "device_id_by_key",
    [BG_DET_IPV4] = "ipv4",
    [BG_DET_IPV6] = "ipv6",
    [BG_DET_GPS_PAIR] = "gps_pair",
    [BG_DET_PASSPORT] = "passport",
    [BG_DET_HK_ID] = "hkid_mod11",
    [BG_DET_TW_ID] = "twid_mod10",
    [BG_DET_MO_ID] = "moid_format",
    [BG_DET_TRAVEL_PERMIT] = "travel_permit",
};

/* Policy-defined category ids (bg_detect_category_intern): written once
 * under the lock, then only read; a slot is published with a release store
 * after its bytes, so a reader that sees the pointer sees the id. */
static char *ext_ids[BG_CAT_MAX - BG_CAT__COUNT];
static pthread_mutex_t ext_lock = PTHREAD_MUTEX_INITIALIZER;

const char *bg_detect_category_id(bg_detect_cat_t cat)
{
    if ((int)cat <= BG_CAT_NONE || (int)cat >= BG_CAT_MAX)
        return NULL;
    if (cat >= BG_CAT__COUNT)
        return __atomic_load_n(&ext_ids[cat - BG_CAT__COUNT], __ATOMIC_ACQUIRE);
    return cat_ids[cat];
}

bg_detect_cat_t bg_detect_category_intern(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > 64 || !(id[0] >= 'a' && id[0] <= 'z') ||
        bg_detect_category_from_id(id, len) != BG_CAT_NONE)
        return BG_CAT_NONE;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '_'))
            return BG_CAT_NONE;
    bg_detect_cat_t out = BG_CAT_NONE;
    pthread_mutex_lock(&ext_lock);
    size_t k = 0;
    for (; k < BG_CAT_MAX - BG_CAT__COUNT && ext_ids[k] != NULL; k++) {
        if (strlen(ext_ids[k]) == len && memcmp(ext_ids[k], id, len) == 0) {
            out = (bg_detect_cat_t)(BG_CAT__COUNT + (int)k);
            goto done;
        }
    }
    if (k < BG_CAT_MAX - BG_CAT__COUNT) {
        char *copy = malloc(len + 1);
        if (copy != NULL) {
            memcpy(copy, id, len);
            copy[len] = '\0';
            __atomic_store_n(&ext_ids[k], copy, __ATOMIC_RELEASE);
            out = (bg_detect_cat_t)(BG_CAT__COUNT + (int)k);
        }
    }
done:
    pthread_mutex_unlock(&ext_lock);
    return out;
}

bg_detect_cat_t bg_detect_category_from_id(const char *id, size_t len)
{
    if (id == NULL)
        return BG_CAT_NONE;
    for (int c = BG_CAT_NONE + 1; c < BG_CAT__COUNT; c++)
        if (strlen(cat_ids[c]) == len && memcmp(cat_ids[c], id, len) == 0)
            return (bg_detect_cat_t)c;
    return BG_CAT_NONE;
}

const char *bg_detect_detector_name(bg_detect_id_t det)
{
    if ((int)det < 0 || det >= BG_DET__COUNT)
        return NULL;
    return det_names[det];
}

const char *bg_detect_confidence_name(bg_detect_conf_t conf)
{
    switch (conf) {
    case BG_CONF_LOW: return "low";
    case BG_CONF_MEDIUM: return "medium";
    case BG_CONF_HIGH: return "high";
    }
    return NULL;
}

int bg_detect_confidence_parse(const char *s, size_t len, bg_detect_conf_t *out)
{
    static const bg_detect_conf_t all[] = {BG_CONF_LOW, BG_CONF_MEDIUM, BG_CONF_HIGH};
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *n = bg_detect_confidence_name(all[i]);
        if (strlen(n) == len && memcmp(n, s, len) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------- */
/* Characters                                                              */

static inline int is_d(unsigned c)
{
    return c - '0' < 10u;
}
static inline int is_a(unsigned c)
{
    return (c | 0x20) - 'a' < 26u;
}
static inline int is_an(unsigned c)
{
    return is_d(c) || is_a(c);
}
static inline int is_x(unsigned c)
{
    return is_d(c) || (c | 0x20) - 'a' < 6u;
}
static inline unsigned up(unsigned c)
{
    return (c - 'a' < 26u) ? c - 32 : c;
}

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

/* Normalized window: bytes, and for each the original offset and length.
 * 2048 bytes keep the stack cost near 20 KB; MAX_MATCH is larger than the
 * longest span any detector reads (an e-mail: 64 + 1 + 253), CTX larger
 * than the furthest any detector looks back (an e-mail's local part). */
#define WIN 2048
#define MAX_MATCH 400
#define CTX 128
/* Encoded runs (base64, hex) per value that can report a finding: more are
 * not decoded (the value already carries PI); nesting depth of decoding. */
#define ENC_MAX 8
#define ENC_DEPTH 2

typedef struct {
    const unsigned char *t; /* the value, or a normalized window */
    size_t n;               /* bytes in t */
    const size_t *mo;       /* window: original offset of t[i]; NULL: t is the value */
    const uint8_t *ml;      /* window: original length of t[i] */
    size_t floor;           /* lowest index a detector may look back to: the end
                               of the last finding (e-mail local parts) */
    uint32_t hints;
    uint32_t disabled;
    uint32_t today; /* YYYYMMDD, computed on first need */
    bg_detect_finding_t *out;
    size_t cap, count;
    size_t last_end;                  /* original offset where the last finding ended */
    const unsigned char *v;           /* the value (original bytes) */
    unsigned depth;                   /* 0: the value; 1, 2: decoded base64/hex inside it */
    int esc;                          /* decode percent escapes and character references */
    bg_detect_finding_t *best;        /* not NULL: keep only the most confident finding
                                         here (a decoded run reports one) */
    int glued;                        /* the number touches letters: see try_glued() */
    int glued_cap;                    /* then the highest confidence it may get */
    size_t cjk_end, cjk_skip;         /* Chinese numerals: see fill_window() */
    size_t nenc, enc_i;               /* findings in enc[]; the next one to merge */
    bg_detect_finding_t enc[ENC_MAX]; /* findings in encoded runs, by offset; last,
                                         and only read below nenc: scan_init()
                                         leaves it unwritten */
} scan_t;

/* A scan_t zeroed up to enc[] (most values are scanned without an encoded
 * run: the array is written before it is read). */
static inline void scan_init(scan_t *s)
{
    memset(s, 0, offsetof(scan_t, enc));
}

/* Bounds-checked read: 0 (a boundary) outside [0, n). i - 1 at i = 0 wraps
 * to SIZE_MAX and reads as a boundary too. */
static inline unsigned ch(const scan_t *s, size_t i)
{
    return i < s->n ? s->t[i] : 0;
}

static inline int on(const scan_t *s, bg_detect_id_t d)
{
    return !(s->disabled & BG_DETECT_BIT(d));
}

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
 * decides). Returns e, so detectors can "return emit(...)".
 */
static size_t emit(scan_t *s, size_t b, size_t e, bg_detect_cat_t cat, bg_detect_cat_t also,
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
/* Boundaries                                                              */

/* The character at I may follow a number or identifier: not a letter or
 * digit, not '@' (then it is an e-mail's local part), not '.' followed by a
 * digit (a decimal, or a longer dotted run such as a version). */
static int right_ok(const scan_t *s, size_t i)
{
    unsigned c = ch(s, i);
    if (is_an(c) || c == '@')
        return 0;
    if (c == '.' && is_d(ch(s, i + 1)))
        return 0;
    return 1;
}

/* A token starting at I stands alone on the left: not after a letter or
 * digit, a decimal point ("3.14159265358979"), '@' (a domain) or '+' (a
 * country code, handled by the '+' path). */
static int left_ok(const scan_t *s, size_t i)
{
    unsigned p = ch(s, i - 1);
    if (is_an(p) || p == '@' || p == '+')
        return 0;
    if (p == '.' && is_d(ch(s, i - 2)))
        return 0;
    return 1;
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
        return emit(s, b, e, BG_CAT_CN_RESIDENT_ID, BG_CAT_NONE, BG_DET_RESIDENT_ID, BG_CONF_HIGH,
                    flags | BG_DETECT_F_NO_CHECKSUM);
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
        return emit(s, b, e, BG_CAT_HMT_RESIDENCE_PERMIT, BG_CAT_CN_RESIDENT_ID, BG_DET_RESIDENT_ID,
                    conf, flags);
    return emit(s, b, e, BG_CAT_CN_RESIDENT_ID, BG_CAT_NONE, BG_DET_RESIDENT_ID, conf, flags);
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
    return emit(s, b, e, BG_CAT_CN_RESIDENT_ID, BG_CAT_NONE, BG_DET_RESIDENT_ID,
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
    return emit(s, b, e, BG_CAT_CN_MOBILE, BG_CAT_NONE, BG_DET_CN_MOBILE, conf, flags);
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
    return emit(s, b, e, BG_CAT_BANK_CARD, BG_CAT_NONE, BG_DET_BANK_CARD, conf, flags);
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
            return emit(s, b, e, BG_CAT_IMEI, BG_CAT_NONE, BG_DET_IMEI,
                        lu ? BG_CONF_HIGH : BG_CONF_MEDIUM,
                        flags | BG_DETECT_F_KEY_HINT | (lu ? 0 : BG_DETECT_F_NO_CHECKSUM));
        if (lu && imei_rbi(r->d))
            return emit(s, b, e, BG_CAT_IMEI, BG_CAT_NONE, BG_DET_IMEI,
                        has_xcuts(r, nd) ? BG_CONF_LOW : BG_CONF_MEDIUM, flags);
        return 0;
    }
    /* 14 digits (no check digit) or 16 (IMEISV): under an IMEI key only */
    if ((nd == 14 || nd == 16) && key)
        return emit(s, b, e, BG_CAT_IMEI, BG_CAT_NONE, BG_DET_IMEI, BG_CONF_MEDIUM,
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
    return emit(s, b, e, BG_CAT_IMSI, BG_CAT_NONE, BG_DET_IMSI, conf, flags);
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
        return emit(s, b, e, BG_CAT_MO_ID, BG_CAT_NONE, BG_DET_MO_ID, BG_CONF_HIGH, fl);
    if ((nd == 8 || nd == 10) && (s->hints & BG_HINT_PERMIT) && on(s, BG_DET_TRAVEL_PERMIT))
        return emit(s, b, e, BG_CAT_MAINLAND_TRAVEL_PERMIT, BG_CAT_NONE, BG_DET_TRAVEL_PERMIT,
                    BG_CONF_HIGH, fl);
    if ((nd == 8 || nd == 9) && (s->hints & BG_HINT_PASSPORT) && on(s, BG_DET_PASSPORT))
        return emit(s, b, e, BG_CAT_PASSPORT, BG_CAT_NONE, BG_DET_PASSPORT, BG_CONF_HIGH, fl);
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
static size_t try_number(scan_t *s, size_t i)
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
        return emit(s, i, r.e + 3, BG_CAT_MO_ID, BG_CAT_NONE, BG_DET_MO_ID,
                    key ? BG_CONF_HIGH : BG_CONF_MEDIUM,
                    BG_DETECT_F_NO_CHECKSUM | (key ? BG_DETECT_F_KEY_HINT : 0));
    }
    /* "SKU-139-0712-4581", "ORD_13812345678": a number that continues a
     * code of letters joined by '-' or '_' is read like a number glued to
     * those letters (try_glued()) */
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
static size_t try_plus(scan_t *s, size_t i)
{
    if (is_an(ch(s, i - 1)) || ch(s, i + 1) != '8' || ch(s, i + 2) != '6')
        return 0;
    numrun_t r;
    numrun_read(s, i + 1, &r);
    return classify_run(s, &r, i, 1);
}

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
static size_t try_letters(scan_t *s, size_t i)
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
        return emit(s, i, j, BG_CAT_PASSPORT, BG_CAT_NONE, BG_DET_PASSPORT, BG_CONF_HIGH,
                    BG_DETECT_F_KEY_HINT | BG_DETECT_F_NO_CHECKSUM);

    /* Taiwan: letter, 1/2 (citizens, by sex) or 8/9 (residents since 2021) */
    if (nl == 1 && nd == 9 && plain && strchr("1289", d[0]) && on(s, BG_DET_TW_ID)) {
        int key = (h & BG_HINT_TW_ID) != 0;
        if (tw_check(l0, d))
            return emit(s, i, j, BG_CAT_TW_ID, BG_CAT_NONE, BG_DET_TW_ID,
                        key ? BG_CONF_HIGH : BG_CONF_MEDIUM, key ? BG_DETECT_F_KEY_HINT : 0);
        if (key)
            return emit(s, i, j, BG_CAT_TW_ID, BG_CAT_NONE, BG_DET_TW_ID, BG_CONF_MEDIUM,
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
        return emit(s, i, j, BG_CAT_PASSPORT, hk_ok ? BG_CAT_HK_ID : BG_CAT_NONE, BG_DET_PASSPORT,
                    conf, BG_DETECT_F_NO_CHECKSUM | (key ? BG_DETECT_F_KEY_HINT : 0));
    }
    if (hk_end && on(s, BG_DET_HK_ID)) {
        if (hk_ok)
            return emit(s, i, hk_end, BG_CAT_HK_ID, BG_CAT_NONE, BG_DET_HK_ID,
                        hk_key || paren ? BG_CONF_HIGH : BG_CONF_MEDIUM,
                        hk_key ? BG_DETECT_F_KEY_HINT : 0);
        if (hk_key)
            return emit(s, i, hk_end, BG_CAT_HK_ID, BG_CAT_NONE, BG_DET_HK_ID, BG_CONF_MEDIUM,
                        BG_DETECT_F_KEY_HINT | BG_DETECT_F_NO_CHECKSUM);
    }

    /* Mainland Travel Permit for HK (H) / Macao (M) residents: 8 digits, or
     * 10 on older cards (2-digit issue count). No check digit: low alone. */
    if (plain && nl == 1 && (l0 == 'H' || l0 == 'M') && (nd == 8 || nd == 10) &&
        on(s, BG_DET_TRAVEL_PERMIT)) {
        int key = (h & BG_HINT_PERMIT) != 0;
        return emit(s, i, j, BG_CAT_MAINLAND_TRAVEL_PERMIT, BG_CAT_NONE, BG_DET_TRAVEL_PERMIT,
                    key ? BG_CONF_HIGH : BG_CONF_LOW,
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
static size_t try_mac(scan_t *s, size_t i)
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
    return emit(s, i, e, BG_CAT_MAC_ADDRESS, BG_CAT_NONE, BG_DET_MAC, conf,
                key ? BG_DETECT_F_KEY_HINT : 0);
}

/* 8-4-4-4-12 hex. A device identifier (IDFA, IDFV, OAID...) under a device
 * key; anything else elsewhere (request ids, object ids), consumed whole so
 * that its groups are not read as numbers. The all-zero UUID is what iOS
 * and Android return when the user limits ad tracking: not PI. */
static size_t try_uuid(scan_t *s, size_t i)
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
    return emit(s, i, j, BG_CAT_DEVICE_ID, BG_CAT_NONE, BG_DET_DEVICE_ID, BG_CONF_HIGH,
                BG_DETECT_F_KEY_HINT);
}

/* A bare hexadecimal token under a key that names a device identifier:
 * Android ID (16, or 15 with the leading zero dropped), other device ids
 * (16/32/40/64: OAID, UDID, hashed ids), a MAC without separators (12). */
static size_t try_hexid(scan_t *s, size_t i)
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
        return emit(s, i, j, BG_CAT_ANDROID_ID, BG_CAT_NONE, BG_DET_ANDROID_ID, BG_CONF_HIGH,
                    BG_DETECT_F_KEY_HINT);
    }
    if ((h & BG_HINT_DEVICE) && (n == 16 || n == 32 || n == 40 || n == 64) &&
        on(s, BG_DET_DEVICE_ID))
        return emit(s, i, j, BG_CAT_DEVICE_ID, BG_CAT_NONE, BG_DET_DEVICE_ID, BG_CONF_HIGH,
                    BG_DETECT_F_KEY_HINT);
    if ((h & BG_HINT_MAC) && n == 12 && on(s, BG_DET_MAC)) {
        char mh[12];
        memcpy(mh, s->t + i, 12);
        if (mac_placeholder(mh))
            return j;
        return emit(s, i, j, BG_CAT_MAC_ADDRESS, BG_CAT_NONE, BG_DET_MAC, BG_CONF_HIGH,
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
static size_t try_ipv4(scan_t *s, size_t i)
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
    return emit(s, i, j, BG_CAT_IP_ADDRESS, BG_CAT_NONE, BG_DET_IPV4, conf, flags);
}

/* Hex groups and colons (and a dotted IPv4 tail), at least two colons and a
 * digit, accepted by inet_pton(). Starts at a hex digit or at "::". */
static size_t try_ipv6(scan_t *s, size_t i)
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
    return emit(s, i, j, BG_CAT_IP_ADDRESS, BG_CAT_NONE, BG_DET_IPV6, conf, flags);
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
static size_t try_gps(scan_t *s, size_t i)
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
    return emit(s, i, e, BG_CAT_GPS_LOCATION, BG_CAT_NONE, BG_DET_GPS_PAIR, conf, flags);
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
static size_t try_email(scan_t *s, size_t at)
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
    return emit(s, b, j, BG_CAT_EMAIL, BG_CAT_NONE, BG_DET_EMAIL, conf,
                key ? BG_DETECT_F_KEY_HINT : 0);
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

/* A run of digits from I holds two separated groups after the first
 * (a decimal "3.14159" has one). */
static int dots_twice(const scan_t *s, size_t i)
{
    numrun_t r;
    numrun_read(s, i, &r);
    unsigned n = 0;
    for (uint32_t c = r.cuts; c; c &= c - 1)
        n++;
    return n >= 2;
}

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
static size_t try_id_window(scan_t *s, size_t i);
static size_t try_windows(scan_t *s, size_t i);

static size_t try_glued(scan_t *s, size_t j, size_t tb)
{
    numrun_t r;
    numrun_read(s, j, &r);
    if (r.over)
        return try_id_window(s, j);
    if (r.nd < 11)
        return 0;
    unsigned lc = ch(s, j - 1), rc = ch(s, r.e);
    int left = j > tb && is_a(lc), right = is_a(rc);
    if (!left && !right)
        return 0;
    size_t te = r.e;
    while (te < s->n && (cls[s->t[te]] & K_AN))
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
    return m ? m : try_windows(s, j);
}

/*
 * A number zero-padded into a fixed-width field ("00000000000000000000013598761234",
 * a decimal trace id; "000013812345678"): two or more leading zeros, then
 * exactly a mobile's 11 or an ID number's 18 significant characters ending
 * at a boundary, read as if they stood alone. Returns the end of the
 * finding, or 0.
 */
static size_t try_zero_padded(scan_t *s, size_t i)
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
static size_t try_id_window(scan_t *s, size_t i)
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
        size_t m = emit(s, w, w + 18, rd == 2 ? BG_CAT_HMT_RESIDENCE_PERMIT : BG_CAT_CN_RESIDENT_ID,
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
 * number (try_id_window()). */
static size_t try_windows(scan_t *s, size_t i)
{
    size_t m = try_mobile_window(s, i);
    return m ? m : try_id_window(s, i);
}

/* The detectors that can start at the token start I, most specific shape
 * first. Returns the end of what was consumed (a finding, or a UUID or
 * placeholder skipped whole), or 0. */
static size_t try_token(scan_t *s, size_t i)
{
    unsigned c = s->t[i];
    size_t m;
    if (is_x(c)) {
        if (on(s, BG_DET_MAC) && (m = try_mac(s, i)))
            return m;
        if ((m = try_uuid(s, i)))
            return m;
        if (on(s, BG_DET_IPV6) && colon_soon(s, i) && (m = try_ipv6(s, i)))
            return m;
        if ((s->hints & (BG_HINT_DEVICE | BG_HINT_ANDROID | BG_HINT_MAC)) && (m = try_hexid(s, i)))
            return m;
    }
    if (is_d(c)) {
        if (dot_soon(s, i)) {
            if (on(s, BG_DET_IPV4) && (m = try_ipv4(s, i)))
                return m;
            if (on(s, BG_DET_GPS_PAIR) && (m = try_gps(s, i)))
                return m;
            /* "138.1234.5678": a number through dots; "3.14159" (a single
             * dot) is a decimal and no number detector wants it */
            if (!left_ok(s, i) || !dots_twice(s, i))
                return try_id_window(s, i);
        }
        if (!left_ok(s, i))
            return try_id_window(s, i);
        if ((m = try_number(s, i)))
            return m;
        if (c == '0' && (m = try_zero_padded(s, i)))
            return m;
        return try_windows(s, i);
    }
    return try_letters(s, i);
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
                    m = try_glued(s, i, tb);
            }
            if (m <= i) {
                do
                    i++;
                while (i < limit && (cls[t[i]] & K_AN) &&
                       !(is_d(t[i]) && is_a(t[i - 1]) && (m = try_glued(s, i, tb)) > i));
            }
            if (m > i)
                i = m;
            continue;
        }
        switch (t[i]) {
        case '@':
            if (on(s, BG_DET_EMAIL))
                m = try_email(s, i);
            break;
        case '+': m = try_plus(s, i); break;
        case ':':
            if (ch(s, i + 1) == ':' && on(s, BG_DET_IPV6))
                m = try_ipv6(s, i);
            break;
        case '-':
            if (is_d(ch(s, i + 1)) && on(s, BG_DET_GPS_PAIR))
                m = try_gps(s, i);
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
/* Encoded runs: base64 and hex                                           */

#define B64_MIN 15      /* shortest base64 run decoded (11 bytes: a mobile number) */
#define HEX_MIN 22      /* shortest hex run decoded (11 bytes: a mobile number) */
#define B32_MIN 18      /* shortest base32 run decoded (11 bytes: a mobile number) */
#define DEC_CHUNK 1536  /* bytes decoded at a time (a multiple of 3) */
#define DEC_OVERLAP 128 /* characters consecutive chunks share (a multiple of 4) */

static size_t scan_value(scan_t *s, const unsigned char *v, size_t len);

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
        if (!worth_scanning(buf, k, s->depth + 1))
            goto next;
        scan_t ns;
        scan_init(&ns);
        ns.hints = s->hints;
        ns.disabled = s->disabled;
        ns.today = s->today;
        ns.depth = s->depth + 1;
        bg_detect_finding_t f;
        ns.best = &f;
        if (scan_value(&ns, buf, k) > 0 && (!found || f.confidence > best->confidence)) {
            *best = f;
            found = 1;
        }
    next:
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
static void find_encoded(scan_t *s, const unsigned char *v, size_t len)
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
static void find_broken_base64(scan_t *s, const unsigned char *v, size_t len)
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
static void find_number_form(scan_t *s, const unsigned char *v, size_t len)
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
    if (scan_value(&ns, (const unsigned char *)d, (size_t)n) > 0) {
        f.offset = 0;
        f.length = len;
        f.flags |= BG_DETECT_F_NORMALIZED | BG_DETECT_F_NOT_REWRITABLE;
        s->enc[s->nenc++] = f;
    }
}

/*
 * Scan the value V into s: pre-filter, encoded runs (below ENC_DEPTH), a
 * number in exponent form, then the ASCII path in place or the normalizing
 * window path (non-ASCII, escapes, HTML comments); encoded findings are
 * merged in offset order.
 */
static size_t scan_value(scan_t *s, const unsigned char *v, size_t len)
{
    s->v = v;
    unsigned pf = prefilter(v, len);
    int keyhex = (s->hints & (BG_HINT_DEVICE | BG_HINT_ANDROID | BG_HINT_MAC)) != 0;
    s->esc = (pf & PF_ESC) && bg_norm_has_escape(v, len);
    if ((pf & PF_B64) && len >= B64_MIN && s->depth < ENC_DEPTH)
        find_encoded(s, v, len);
    if (len >= B64_MIN && s->depth < ENC_DEPTH && s->nenc == 0 && memchr(v, '\n', len))
        find_broken_base64(s, v, len);
    if ((pf & PF_TRIG) && s->depth < ENC_DEPTH)
        find_number_form(s, v, len);
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
    return scan_value(&s, (const unsigned char *)str, len);
}

size_t bg_detect_value(const bg_detect_opts_t *opts, const char *key, size_t keylen, const char *s,
                       size_t len, bg_detect_finding_t *out, size_t cap)
{
    bg_detect_key_t k = {BG_CAT_NONE, 0, 0};
    if (key != NULL && keylen > 0)
        bg_detect_key_info(key, keylen, &k);
    return bg_detect_scan(opts, &k, s, len, out, cap);
}

/* ---------------------------------------------------------------------- */
/* Key names                                                               */

/* How a term may match a normalized key (see bg_detect_key_info()). */
#define K_EXACT 1 /* the whole key */
#define K_WORD 2  /* the key's last word(s), starting at a word boundary */
#define K_PART 4  /* any suffix of the key, even inside an undelimited word */
#define K_CJK 8   /* anywhere (a Chinese term; may contain ASCII letters) */

typedef struct {
    const char *term; /* lowercase ASCII without separators, or UTF-8 */
    uint8_t match;    /* K_* */
    uint8_t cat;      /* bg_detect_cat_t; NONE for hint-only terms */
    uint8_t conf;     /* bg_detect_conf_t */
    uint32_t hints;   /* BG_HINT_* beyond the ones the category implies */
} key_entry_t;

/* clang-format off */
#define H_ BG_CONF_HIGH
#define M_ BG_CONF_MEDIUM
#define L_ BG_CONF_LOW
#define W(t, c, f) {t, K_WORD, BG_CAT_##c, f, 0}
#define WH(t, c, f, h) {t, K_WORD, BG_CAT_##c, f, h}
#define P(t, c, f) {t, K_PART, BG_CAT_##c, f, 0}
#define X(t, c, f) {t, K_EXACT, BG_CAT_##c, f, 0}
#define XH(t, c, f, h) {t, K_EXACT, BG_CAT_##c, f, h}
#define C(t, c, f) {t, K_CJK, BG_CAT_##c, f, 0}
#define CH(t, c, f, h) {t, K_CJK, BG_CAT_##c, f, h}
#define NONPI(t) {t, K_WORD, BG_CAT_NONE, 0, BG_HINT_NONPI}
#define CNONPI(t) {t, K_CJK, BG_CAT_NONE, 0, BG_HINT_NONPI}
#define NOTPI(t) {t, K_WORD, BG_CAT_NONE, 0, 0}  /* shadows a shorter term */
#define CNOTPI(t) {t, K_CJK, BG_CAT_NONE, 0, 0}

/* Keep in step with docs/categories.md ("Key names"). */
static const key_entry_t key_table[] = {
    /* identity documents */
    W("idcard", CN_RESIDENT_ID, H_), W("idcardno", CN_RESIDENT_ID, H_),
    W("idcardnum", CN_RESIDENT_ID, H_), W("idcardnumber", CN_RESIDENT_ID, H_),
    W("idno", CN_RESIDENT_ID, M_), W("idnumber", CN_RESIDENT_ID, M_),
    W("identitycard", CN_RESIDENT_ID, H_), W("identitycardno", CN_RESIDENT_ID, H_),
    W("identityno", CN_RESIDENT_ID, H_), W("identitynumber", CN_RESIDENT_ID, H_),
    W("citizenid", CN_RESIDENT_ID, H_), W("nationalid", CN_RESIDENT_ID, H_),
    W("nationalidnumber", CN_RESIDENT_ID, H_), W("residentid", CN_RESIDENT_ID, H_),
    W("residentidcard", CN_RESIDENT_ID, H_), W("sfz", CN_RESIDENT_ID, H_),
    W("sfzh", CN_RESIDENT_ID, H_), W("sfzhm", CN_RESIDENT_ID, H_),
    W("sfzno", CN_RESIDENT_ID, H_), W("shenfenzheng", CN_RESIDENT_ID, H_),
    W("certno", IDENTITY_DOCUMENT, M_), W("certnum", IDENTITY_DOCUMENT, M_),
    W("certnumber", IDENTITY_DOCUMENT, M_), W("certificateno", IDENTITY_DOCUMENT, M_),
    W("certificatenumber", IDENTITY_DOCUMENT, M_), W("zjhm", IDENTITY_DOCUMENT, H_),
    W("driverlicense", IDENTITY_DOCUMENT, H_), W("driverslicense", IDENTITY_DOCUMENT, H_),
    W("driverlicenseno", IDENTITY_DOCUMENT, H_), W("socialsecurityno", IDENTITY_DOCUMENT, H_),
    W("socialsecuritynumber", IDENTITY_DOCUMENT, H_), W("ssn", IDENTITY_DOCUMENT, H_),
    P("passport", PASSPORT, H_), P("passportno", PASSPORT, H_), P("passportnum", PASSPORT, H_),
    P("passportnumber", PASSPORT, H_), W("passportid", PASSPORT, H_),
    W("hkid", HK_ID, H_), W("hkidcard", HK_ID, H_), W("hkidno", HK_ID, H_),
    W("hongkongid", HK_ID, H_), W("hongkongidcard", HK_ID, H_), W("twid", TW_ID, H_),
    W("twidcard", TW_ID, H_), W("taiwanid", TW_ID, H_), W("taiwanidcard", TW_ID, H_),
    W("macaoid", MO_ID, H_), W("macauid", MO_ID, H_), W("macaoidcard", MO_ID, H_),
    W("macauidcard", MO_ID, H_), W("homereturnpermit", MAINLAND_TRAVEL_PERMIT, H_),
    W("mtp", MAINLAND_TRAVEL_PERMIT, M_), W("mtpno", MAINLAND_TRAVEL_PERMIT, H_),
    W("travelpermit", MAINLAND_TRAVEL_PERMIT, M_), W("taiwanpermit", MAINLAND_TRAVEL_PERMIT, H_),
    W("tbz", MAINLAND_TRAVEL_PERMIT, H_), W("taibaozheng", MAINLAND_TRAVEL_PERMIT, H_),
    W("hxz", MAINLAND_TRAVEL_PERMIT, H_), W("huixiangzheng", MAINLAND_TRAVEL_PERMIT, H_),
    W("hmtresidencepermit", HMT_RESIDENCE_PERMIT, H_),
    /* phone numbers ("phone" is a word only: iphone, headphone, microphone) */
    W("phone", PHONE_NUMBER, H_), W("mobile", PHONE_NUMBER, M_), W("tel", PHONE_NUMBER, H_),
    P("telephone", PHONE_NUMBER, H_), W("telno", PHONE_NUMBER, H_), W("telnum", PHONE_NUMBER, H_),
    P("phoneno", PHONE_NUMBER, H_), P("phonenum", PHONE_NUMBER, H_),
    P("phonenumber", PHONE_NUMBER, H_), P("mobileno", PHONE_NUMBER, H_),
    P("mobilenum", PHONE_NUMBER, H_), P("mobilenumber", PHONE_NUMBER, H_),
    P("mobilephone", PHONE_NUMBER, H_), P("cellphone", PHONE_NUMBER, H_),
    P("contactphone", PHONE_NUMBER, H_), P("userphone", PHONE_NUMBER, H_),
    W("cell", PHONE_NUMBER, L_), W("msisdn", PHONE_NUMBER, H_), W("shouji", PHONE_NUMBER, H_),
    W("shoujihao", PHONE_NUMBER, H_), W("sjh", PHONE_NUMBER, H_), W("dianhua", PHONE_NUMBER, H_),
    W("lxdh", PHONE_NUMBER, H_), WH("contact", PHONE_NUMBER, L_, BG_HINT_EMAIL),
    /* e-mail */
    P("email", EMAIL, H_), W("mail", EMAIL, M_), P("emailaddress", EMAIL, H_),
    W("emailaddr", EMAIL, H_), W("mailaddress", EMAIL, M_), W("mailbox", EMAIL, M_),
    W("youxiang", EMAIL, H_),
    /* cards and accounts */
    P("bankcard", BANK_CARD, H_), P("bankcardno", BANK_CARD, H_),
    P("bankcardnumber", BANK_CARD, H_), P("creditcard", BANK_CARD, H_),
    P("creditcardno", BANK_CARD, H_), P("creditcardnumber", BANK_CARD, H_),
    P("debitcard", BANK_CARD, H_), W("yhkh", BANK_CARD, H_),
    WH("cardno", NONE, 0, BG_HINT_CARD), WH("cardnum", NONE, 0, BG_HINT_CARD),
    WH("cardnumber", NONE, 0, BG_HINT_CARD), WH("pan", NONE, 0, BG_HINT_CARD),
    /* "card" alone (a payment form's card field): the whole key only, so
     * sim_card, gift_card and vip_card numbers keep the strict checks */
    XH("card", NONE, 0, BG_HINT_CARD),
    WH("bankaccount", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD),
    WH("bankaccountno", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD),
    WH("bankaccountnumber", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD),
    WH("iban", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD), W("alipay", FINANCIAL_ACCOUNT, M_),
    W("alipayaccount", FINANCIAL_ACCOUNT, H_), W("alipayid", FINANCIAL_ACCOUNT, H_),
    W("paypal", FINANCIAL_ACCOUNT, M_), W("paypalaccount", FINANCIAL_ACCOUNT, H_),
    W("payaccount", FINANCIAL_ACCOUNT, H_), W("paymentaccount", FINANCIAL_ACCOUNT, H_),
    W("wechatpayaccount", FINANCIAL_ACCOUNT, H_), W("walletaddress", FINANCIAL_ACCOUNT, L_),
    /* credentials: never export */
    P("password", CREDENTIALS, H_), P("passwd", CREDENTIALS, H_), P("pwd", CREDENTIALS, H_),
    P("passcode", CREDENTIALS, H_), P("passphrase", CREDENTIALS, H_), W("pin", CREDENTIALS, M_),
    P("secret", CREDENTIALS, H_), P("token", CREDENTIALS, H_), P("apikey", CREDENTIALS, H_),
    P("accesskey", CREDENTIALS, H_), P("secretkey", CREDENTIALS, H_),
    P("privatekey", CREDENTIALS, H_), W("authorization", CREDENTIALS, H_),
    W("auth", CREDENTIALS, L_), W("cookie", CREDENTIALS, M_), 
    W("sessionkey", CREDENTIALS, H_), W("otp", CREDENTIALS, H_), P("smscode", CREDENTIALS, H_),
    P("verifycode", CREDENTIALS, H_), P("verificationcode", CREDENTIALS, H_),
    W("authcode", CREDENTIALS, H_), W("credential", CREDENTIALS, H_),
    W("credentials", CREDENTIALS, H_), W("cvv", CREDENTIALS, H_), W("cvv2", CREDENTIALS, H_),
    W("cvc", CREDENTIALS, H_), W("mima", CREDENTIALS, H_),
    NOTPI("pagetoken"), NOTPI("nexttoken"), NOTPI("nextpagetoken"), NOTPI("continuationtoken"),
    NOTPI("synctoken"), NOTPI("cursortoken"),
    /* tokens that are not secrets: a payment provider's token stands for a
     * card (pseudonymized, still personal: PIPL Art. 73); a push token
     * addresses a device. An analytics "session_id" groups one visit's
     * events; a login session is a cookie, which policy names by header. */
    W("cardtoken", FINANCIAL_ACCOUNT, M_), W("paymenttoken", FINANCIAL_ACCOUNT, M_),
    W("paymentmethodtoken", FINANCIAL_ACCOUNT, M_), W("devicetoken", DEVICE_ID, M_),
    W("pushtoken", DEVICE_ID, M_), W("sessionid", CREDENTIALS, L_),
    /* names ("name" alone: product, file, app names too) */
    X("name", PERSON_NAME, L_), W("realname", PERSON_NAME, H_), W("fullname", PERSON_NAME, H_),
    W("firstname", PERSON_NAME, H_), W("lastname", PERSON_NAME, H_),
    W("givenname", PERSON_NAME, H_), W("familyname", PERSON_NAME, H_),
    W("surname", PERSON_NAME, H_), W("middlename", PERSON_NAME, H_),
    W("personname", PERSON_NAME, H_), W("customername", PERSON_NAME, M_),
    W("contactname", PERSON_NAME, H_), W("receivername", PERSON_NAME, H_),
    W("recipientname", PERSON_NAME, H_), W("consigneename", PERSON_NAME, H_),
    W("consignee", PERSON_NAME, M_), W("cardholder", PERSON_NAME, H_),
    W("cardholdername", PERSON_NAME, H_), W("holdername", PERSON_NAME, M_),
    W("accountname", PERSON_NAME, M_), W("payername", PERSON_NAME, M_),
    W("payeename", PERSON_NAME, M_), W("truename", PERSON_NAME, H_),
    W("legalname", PERSON_NAME, H_), W("patientname", PERSON_NAME, H_),
    W("studentname", PERSON_NAME, H_), W("guardianname", PERSON_NAME, H_),
    W("employeename", PERSON_NAME, H_), W("membername", PERSON_NAME, M_),
    W("applicantname", PERSON_NAME, H_), W("passengername", PERSON_NAME, H_),
    W("guestname", PERSON_NAME, H_), W("drivername", PERSON_NAME, H_),
    W("displayname", PERSON_NAME, L_), W("xingming", PERSON_NAME, H_),
    /* addresses (and the other things called "address") */
    W("address", ADDRESS, M_), W("addr", ADDRESS, M_), W("street", ADDRESS, L_),
    W("homeaddress", ADDRESS, H_), W("streetaddress", ADDRESS, H_),
    W("shippingaddress", ADDRESS, H_), W("billingaddress", ADDRESS, H_),
    W("deliveryaddress", ADDRESS, H_), W("postaladdress", ADDRESS, H_),
    W("mailingaddress", ADDRESS, H_), W("residentialaddress", ADDRESS, H_),
    W("detailaddress", ADDRESS, H_), W("fulladdress", ADDRESS, H_),
    W("receiveraddress", ADDRESS, H_), W("addressline", ADDRESS, H_), W("zhuzhi", ADDRESS, H_),
    W("dizhi", ADDRESS, H_), W("ipaddress", IP_ADDRESS, H_), W("ipaddr", IP_ADDRESS, H_),
    W("remoteaddress", IP_ADDRESS, M_), W("remoteaddr", IP_ADDRESS, M_),
    W("clientaddress", IP_ADDRESS, M_), W("clientaddr", IP_ADDRESS, M_),
    W("macaddress", MAC_ADDRESS, H_), W("macaddr", MAC_ADDRESS, H_),
    W("bluetoothaddress", MAC_ADDRESS, H_), W("hardwareaddress", MAC_ADDRESS, H_),
    NOTPI("serveraddress"), NOTPI("hostaddress"), NOTPI("bindaddress"), NOTPI("listenaddress"),
    NOTPI("baseaddress"), NOTPI("memoryaddress"), NOTPI("contractaddress"),
    NOTPI("webaddress"), NOTPI("networkaddress"), NOTPI("proxyaddress"),
    NOTPI("localaddress"), NOTPI("socketaddress"), NOTPI("upstreamaddress"),
    /* personal details */
    W("birthday", BIRTH_DATE, H_), W("birthdate", BIRTH_DATE, H_),
    W("dateofbirth", BIRTH_DATE, H_), W("dob", BIRTH_DATE, H_), W("birth", BIRTH_DATE, M_),
    W("bday", BIRTH_DATE, H_), W("birthyear", BIRTH_DATE, M_), W("shengri", BIRTH_DATE, H_),
    W("csrq", BIRTH_DATE, H_), W("age", AGE, M_), W("nianling", AGE, H_),
    W("gender", GENDER, H_), W("sex", GENDER, H_), W("xingbie", GENDER, H_),
    W("nationality", NATIONALITY, H_), W("citizenship", NATIONALITY, H_),
    W("guoji", NATIONALITY, H_), W("ethnicity", ETHNICITY, H_), W("ethnic", ETHNICITY, M_),
    W("race", ETHNICITY, L_), W("minzu", ETHNICITY, H_),
    /* location */
    W("lat", GPS_LOCATION, H_), W("lng", GPS_LOCATION, H_), W("lon", GPS_LOCATION, H_),
    P("latitude", GPS_LOCATION, H_), P("longitude", GPS_LOCATION, H_),
    W("latlng", GPS_LOCATION, H_), W("lnglat", GPS_LOCATION, H_), W("latlon", GPS_LOCATION, H_),
    W("coordinate", GPS_LOCATION, M_), W("coordinates", GPS_LOCATION, M_),
    W("coords", GPS_LOCATION, M_), W("coord", GPS_LOCATION, L_), W("gps", GPS_LOCATION, H_),
    W("jingdu", GPS_LOCATION, H_), W("weidu", GPS_LOCATION, H_),
    W("location", PRECISE_LOCATION, L_), W("geo", PRECISE_LOCATION, L_),
    W("geolocation", PRECISE_LOCATION, H_), W("currentlocation", PRECISE_LOCATION, H_),
    W("gpslocation", PRECISE_LOCATION, H_), W("preciselocation", PRECISE_LOCATION, H_),
    W("trajectory", WHEREABOUTS, H_), W("trackpoints", WHEREABOUTS, H_),
    W("locationhistory", WHEREABOUTS, H_), W("travelhistory", WHEREABOUTS, M_),
    W("itinerary", WHEREABOUTS, M_),
    /* sensitive categories of PIPL Art. 28 */
    W("faceimage", BIOMETRICS, H_), W("facephoto", BIOMETRICS, H_), W("facedata", BIOMETRICS, H_),
    W("facefeature", BIOMETRICS, H_), W("facefeatures", BIOMETRICS, H_),
    W("faceembedding", BIOMETRICS, H_), W("facetemplate", BIOMETRICS, H_),
    W("facevector", BIOMETRICS, H_), W("faceid", BIOMETRICS, L_),
    W("fingerprintimage", BIOMETRICS, H_), W("fingerprinttemplate", BIOMETRICS, H_),
    W("fingerprintdata", BIOMETRICS, H_), W("voiceprint", BIOMETRICS, H_),
    W("iris", BIOMETRICS, M_), W("irisscan", BIOMETRICS, H_), W("palmprint", BIOMETRICS, H_),
    W("biometric", BIOMETRICS, H_), W("biometrics", BIOMETRICS, H_),
    W("biometricdata", BIOMETRICS, H_), W("dna", BIOMETRICS, M_), W("genome", BIOMETRICS, M_),
    W("fingerprint", DEVICE_ID, L_), /* browser/device/TLS fingerprints, mostly */
    W("diagnosis", HEALTH, H_), W("diagnoses", HEALTH, H_), W("medicalrecord", HEALTH, H_),
    W("medicalrecords", HEALTH, H_), W("medicalhistory", HEALTH, H_), W("disease", HEALTH, M_),
    W("illness", HEALTH, H_), W("symptom", HEALTH, M_), W("symptoms", HEALTH, M_),
    W("prescription", HEALTH, H_), W("allergy", HEALTH, H_), W("allergies", HEALTH, H_),
    W("bloodtype", HEALTH, H_), W("bloodpressure", HEALTH, H_), W("heartrate", HEALTH, M_),
    W("medication", HEALTH, H_), W("medications", HEALTH, H_), W("healthcode", HEALTH, M_),
    W("healthstatus", HEALTH, M_), W("pregnancy", HEALTH, H_),
    W("religion", RELIGION, H_), W("religious", RELIGION, H_), W("faith", RELIGION, L_),
    W("zongjiao", RELIGION, H_), W("disability", SPECIFIC_IDENTITY, H_),
    W("sexualorientation", SEXUAL_ORIENTATION, H_), W("criminalrecord", CRIMINAL_RECORD, H_),
    W("criminalrecords", CRIMINAL_RECORD, H_), W("convictions", CRIMINAL_RECORD, M_),
    /* records and lists */
    W("transactionhistory", TRANSACTION_RECORD, H_), W("transactions", TRANSACTION_RECORD, M_),
    W("orderhistory", TRANSACTION_RECORD, M_), W("purchasehistory", TRANSACTION_RECORD, H_),
    W("paymenthistory", TRANSACTION_RECORD, H_), W("contacts", CONTACTS, H_),
    W("addressbook", CONTACTS, H_), W("contactlist", CONTACTS, H_),
    W("friendlist", CONTACTS, H_), W("phonebook", CONTACTS, H_),
    W("calllog", COMMUNICATION_RECORD, H_), W("calllogs", COMMUNICATION_RECORD, H_),
    W("callrecords", COMMUNICATION_RECORD, H_), W("callhistory", COMMUNICATION_RECORD, H_),
    W("smscontent", COMMUNICATION_RECORD, H_), W("smsbody", COMMUNICATION_RECORD, H_),
    W("chathistory", COMMUNICATION_RECORD, H_), W("chatlog", COMMUNICATION_RECORD, H_),
    W("chatrecords", COMMUNICATION_RECORD, H_), W("browsinghistory", BROWSING_HISTORY, H_),
    W("browsehistory", BROWSING_HISTORY, H_), W("searchhistory", BROWSING_HISTORY, H_),
    W("installedapps", INSTALLED_APPS, H_), W("applist", INSTALLED_APPS, H_),
    W("installedpackages", INSTALLED_APPS, H_), W("packagelist", INSTALLED_APPS, M_),
    W("installedapplist", INSTALLED_APPS, H_), W("appinstalllist", INSTALLED_APPS, H_),
    W("licenseplate", VEHICLE_PLATE, H_), W("plateno", VEHICLE_PLATE, H_),
    W("platenumber", VEHICLE_PLATE, H_), W("carplate", VEHICLE_PLATE, H_),
    W("vehicleplate", VEHICLE_PLATE, H_), W("carno", VEHICLE_PLATE, M_),
    W("chepai", VEHICLE_PLATE, H_),
    /* accounts */
    W("userid", ACCOUNT_ID, M_), W("uid", ACCOUNT_ID, M_), W("username", ACCOUNT_ID, M_),
    W("nickname", ACCOUNT_ID, M_), W("loginname", ACCOUNT_ID, M_), W("loginid", ACCOUNT_ID, M_),
    W("account", ACCOUNT_ID, L_), W("accountid", ACCOUNT_ID, M_), W("openid", ACCOUNT_ID, H_),
    W("unionid", ACCOUNT_ID, H_), W("wechatid", ACCOUNT_ID, H_), W("wxid", ACCOUNT_ID, H_),
    W("wechat", ACCOUNT_ID, M_), W("weixin", ACCOUNT_ID, M_), W("qq", ACCOUNT_ID, M_),
    W("qqnumber", ACCOUNT_ID, H_), W("weiboid", ACCOUNT_ID, M_), W("memberid", ACCOUNT_ID, M_),
    W("customerid", ACCOUNT_ID, M_), W("userno", ACCOUNT_ID, M_),
    /* devices */
    P("imei", IMEI, H_), W("meid", IMEI, H_), W("imeisv", IMEI, H_), P("imsi", IMSI, H_),
    W("iccid", DEVICE_ID, H_), W("mac", MAC_ADDRESS, H_), W("wifimac", MAC_ADDRESS, H_),
    W("bssid", MAC_ADDRESS, H_), W("bluetoothmac", MAC_ADDRESS, H_), W("btmac", MAC_ADDRESS, H_),
    P("androidid", ANDROID_ID, H_), W("ssaid", ANDROID_ID, H_), P("deviceid", DEVICE_ID, H_),
    W("udid", DEVICE_ID, H_), W("idfa", DEVICE_ID, H_), W("idfv", DEVICE_ID, H_),
    W("oaid", DEVICE_ID, H_), W("aaid", DEVICE_ID, H_), W("gaid", DEVICE_ID, H_),
    W("adid", DEVICE_ID, L_), W("advertisingid", DEVICE_ID, H_), W("openudid", DEVICE_ID, H_),
    W("deviceno", DEVICE_ID, H_), W("devicesn", DEVICE_ID, H_), W("deviceuuid", DEVICE_ID, H_),
    W("deviceguid", DEVICE_ID, H_), W("devicetoken", DEVICE_ID, H_),
    W("pushtoken", DEVICE_ID, H_), W("hardwareid", DEVICE_ID, H_), W("hwid", DEVICE_ID, H_),
    W("machineid", DEVICE_ID, M_), W("installationid", DEVICE_ID, M_),
    W("utdid", DEVICE_ID, H_), W("serialnumber", DEVICE_ID, L_), W("device", DEVICE_ID, L_),
    /* IP addresses ("ip" is a word only: zip, ship, tip) */
    W("ip", IP_ADDRESS, H_), W("ipv4", IP_ADDRESS, H_), W("ipv6", IP_ADDRESS, H_),
    P("clientip", IP_ADDRESS, H_), P("remoteip", IP_ADDRESS, H_), P("userip", IP_ADDRESS, H_),
    P("loginip", IP_ADDRESS, H_), P("sourceip", IP_ADDRESS, H_), W("srcip", IP_ADDRESS, H_),
    P("realip", IP_ADDRESS, H_), P("forwardedfor", IP_ADDRESS, H_),
    W("registerip", IP_ADDRESS, H_),
    /* not PI: identifiers of things, versions, times, amounts */
    NONPI("orderid"), NONPI("orderno"), NONPI("ordernumber"), NONPI("ordersn"),
    NONPI("tradeno"), NONPI("outtradeno"), NONPI("transactionid"), NONPI("transid"),
    NONPI("txid"), NONPI("txnid"), NONPI("traceid"), NONPI("spanid"), NONPI("requestid"),
    NONPI("reqid"), NONPI("correlationid"), NONPI("messageid"), NONPI("msgid"),
    NONPI("eventid"), NONPI("batchid"), NONPI("version"), NONPI("ver"), NONPI("appversion"),
    NONPI("osversion"), NONPI("sdkversion"), NONPI("apiversion"), NONPI("build"),
    NONPI("buildno"), NONPI("buildnumber"), NONPI("timestamp"), NONPI("ts"), NONPI("time"),
    NONPI("createtime"), NONPI("updatetime"), NONPI("createdat"), NONPI("updatedat"),
    NONPI("price"), NONPI("amount"), NONPI("total"), NONPI("totalamount"), NONPI("count"),
    NONPI("qty"), NONPI("quantity"), NONPI("sku"), NONPI("skuid"), NONPI("productid"),
    NONPI("itemid"), NONPI("goodsid"), NONPI("trackingno"), NONPI("trackingnumber"),
    NONPI("waybill"), NONPI("waybillno"), NONPI("expressno"), NONPI("logisticsno"),
    NONPI("invoiceno"), NONPI("seq"), NONPI("sequence"), NONPI("nonce"), NONPI("signature"),
    NONPI("sign"), NONPI("hash"), NONPI("checksum"), NONPI("md5"), NONPI("sha1"),
    NONPI("sha256"), NONPI("etag"), NONPI("maxage"), NONPI("duration"), NONPI("size"),
    NONPI("offset"), NONPI("limit"), NONPI("page"), NONPI("pagesize"), NONPI("errcode"),
    NONPI("errorcode"), NONPI("statuscode"),

    /* Chinese terms (anywhere; the one ending last wins, then the longest) */
    C("姓名", PERSON_NAME, H_), C("真实姓名", PERSON_NAME, H_), C("名字", PERSON_NAME, M_),
    C("收件人", PERSON_NAME, M_), C("收货人", PERSON_NAME, M_), C("联系人", PERSON_NAME, M_),
    C("持卡人", PERSON_NAME, H_), C("户名", PERSON_NAME, M_), C("昵称", ACCOUNT_ID, M_),
    C("用户名", ACCOUNT_ID, M_), C("账号", ACCOUNT_ID, M_), C("用户id", ACCOUNT_ID, M_),
    C("会员号", ACCOUNT_ID, M_), C("微信号", ACCOUNT_ID, H_), C("qq号", ACCOUNT_ID, H_),
    C("身份证", CN_RESIDENT_ID, H_), C("身份证号", CN_RESIDENT_ID, H_),
    C("身份证号码", CN_RESIDENT_ID, H_), C("居民身份证", CN_RESIDENT_ID, H_),
    C("公民身份号码", CN_RESIDENT_ID, H_), C("身份号码", CN_RESIDENT_ID, H_),
    C("证件号", IDENTITY_DOCUMENT, H_), C("证件号码", IDENTITY_DOCUMENT, H_),
    C("证件", IDENTITY_DOCUMENT, M_), C("护照", PASSPORT, H_), C("护照号", PASSPORT, H_),
    C("护照号码", PASSPORT, H_), C("香港身份证", HK_ID, H_), C("澳门身份证", MO_ID, H_),
    C("台湾身份证", TW_ID, H_), C("回乡证", MAINLAND_TRAVEL_PERMIT, H_),
    C("港澳居民来往内地通行证", MAINLAND_TRAVEL_PERMIT, H_),
    C("台湾居民来往大陆通行证", MAINLAND_TRAVEL_PERMIT, H_),
    C("台胞证", MAINLAND_TRAVEL_PERMIT, H_), CH("通行证", IDENTITY_DOCUMENT, M_, BG_HINT_PERMIT),
    C("港澳台居民居住证", HMT_RESIDENCE_PERMIT, H_), C("居住证", IDENTITY_DOCUMENT, M_),
    C("驾驶证", IDENTITY_DOCUMENT, H_), C("驾照", IDENTITY_DOCUMENT, H_),
    C("社保卡", IDENTITY_DOCUMENT, H_), C("社保卡号", IDENTITY_DOCUMENT, H_),
    C("军官证", IDENTITY_DOCUMENT, H_), C("手机", PHONE_NUMBER, H_), C("手机号", PHONE_NUMBER, H_),
    C("手机号码", PHONE_NUMBER, H_), C("电话", PHONE_NUMBER, H_), C("电话号码", PHONE_NUMBER, H_),
    C("联系电话", PHONE_NUMBER, H_), CH("联系方式", PHONE_NUMBER, M_, BG_HINT_EMAIL),
    C("座机", PHONE_NUMBER, H_), C("移动电话", PHONE_NUMBER, H_), C("固话", PHONE_NUMBER, H_),
    C("邮箱", EMAIL, H_), C("电子邮箱", EMAIL, H_), C("电子邮件", EMAIL, H_),
    C("邮件地址", EMAIL, H_), C("邮箱地址", EMAIL, H_), C("地址", ADDRESS, H_),
    C("住址", ADDRESS, H_), C("家庭住址", ADDRESS, H_), C("详细地址", ADDRESS, H_),
    C("收货地址", ADDRESS, H_), C("户籍地址", ADDRESS, H_), C("通讯地址", ADDRESS, H_),
    C("居住地址", ADDRESS, H_), C("现住址", ADDRESS, H_), C("居住地", ADDRESS, M_),
    C("门牌号", ADDRESS, H_), C("ip地址", IP_ADDRESS, H_), C("mac地址", MAC_ADDRESS, H_),
    C("银行卡", BANK_CARD, H_), C("银行卡号", BANK_CARD, H_),
    CH("卡号", NONE, 0, BG_HINT_CARD), CH("银行账号", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD),
    CH("银行账户", FINANCIAL_ACCOUNT, H_, BG_HINT_CARD), C("信用卡", BANK_CARD, H_),
    C("信用卡号", BANK_CARD, H_), C("储蓄卡", BANK_CARD, H_), C("借记卡", BANK_CARD, H_),
    C("支付宝", FINANCIAL_ACCOUNT, M_), C("支付宝账号", FINANCIAL_ACCOUNT, H_),
    C("微信支付", FINANCIAL_ACCOUNT, M_), C("收款账号", FINANCIAL_ACCOUNT, H_),
    C("出生日期", BIRTH_DATE, H_), C("生日", BIRTH_DATE, H_), C("出生年月", BIRTH_DATE, H_),
    C("出生年月日", BIRTH_DATE, H_), C("年龄", AGE, H_), C("性别", GENDER, H_),
    C("国籍", NATIONALITY, H_), C("民族", ETHNICITY, H_), C("经度", GPS_LOCATION, H_),
    C("纬度", GPS_LOCATION, H_), C("经纬度", GPS_LOCATION, H_), C("坐标", GPS_LOCATION, M_),
    C("定位", PRECISE_LOCATION, M_), C("位置", PRECISE_LOCATION, L_),
    C("地理位置", PRECISE_LOCATION, H_), C("当前位置", PRECISE_LOCATION, H_),
    C("精确位置", PRECISE_LOCATION, H_), C("精准定位", PRECISE_LOCATION, H_),
    C("行踪", WHEREABOUTS, H_), C("轨迹", WHEREABOUTS, H_), C("行踪轨迹", WHEREABOUTS, H_),
    C("行程", WHEREABOUTS, M_), C("出行记录", WHEREABOUTS, H_), C("住宿记录", WHEREABOUTS, H_),
    C("人脸", BIOMETRICS, H_), C("人脸图像", BIOMETRICS, H_), C("人脸照片", BIOMETRICS, H_),
    C("人脸特征", BIOMETRICS, H_), C("面部特征", BIOMETRICS, H_), C("面部识别", BIOMETRICS, H_),
    C("指纹", BIOMETRICS, H_), C("声纹", BIOMETRICS, H_), C("虹膜", BIOMETRICS, H_),
    C("掌纹", BIOMETRICS, H_), C("生物特征", BIOMETRICS, H_), C("生物识别", BIOMETRICS, H_),
    C("基因", BIOMETRICS, M_), C("病历", HEALTH, H_), C("诊断", HEALTH, H_), C("病史", HEALTH, H_),
    C("病症", HEALTH, H_), C("疾病", HEALTH, H_), C("过敏", HEALTH, M_), C("用药", HEALTH, H_),
    C("健康", HEALTH, M_), C("体检", HEALTH, H_), C("健康码", HEALTH, M_), C("血型", HEALTH, H_),
    C("症状", HEALTH, H_), C("处方", HEALTH, H_), C("医疗", HEALTH, M_), C("就诊", HEALTH, H_),
    C("残疾", SPECIFIC_IDENTITY, H_), C("残疾人证", SPECIFIC_IDENTITY, H_),
    C("宗教", RELIGION, H_), C("宗教信仰", RELIGION, H_), C("信仰", RELIGION, M_),
    C("性取向", SEXUAL_ORIENTATION, H_), C("犯罪记录", CRIMINAL_RECORD, H_),
    C("违法犯罪记录", CRIMINAL_RECORD, H_), C("前科", CRIMINAL_RECORD, H_),
    C("交易记录", TRANSACTION_RECORD, H_), C("消费记录", TRANSACTION_RECORD, H_),
    C("流水", TRANSACTION_RECORD, M_), C("账单", TRANSACTION_RECORD, M_),
    C("密码", CREDENTIALS, H_), C("口令", CREDENTIALS, H_), C("支付密码", CREDENTIALS, H_),
    C("验证码", CREDENTIALS, H_), C("令牌", CREDENTIALS, H_), C("密钥", CREDENTIALS, H_),
    C("私钥", CREDENTIALS, H_), C("通讯录", CONTACTS, H_), C("联系人列表", CONTACTS, H_),
    C("好友列表", CONTACTS, H_), C("通话记录", COMMUNICATION_RECORD, H_),
    C("短信", COMMUNICATION_RECORD, M_), C("短信内容", COMMUNICATION_RECORD, H_),
    C("聊天记录", COMMUNICATION_RECORD, H_), C("通信记录", COMMUNICATION_RECORD, H_),
    C("通信内容", COMMUNICATION_RECORD, H_), C("浏览记录", BROWSING_HISTORY, H_),
    C("搜索记录", BROWSING_HISTORY, H_), C("浏览历史", BROWSING_HISTORY, H_),
    C("应用列表", INSTALLED_APPS, H_), C("已安装应用", INSTALLED_APPS, H_),
    C("软件列表", INSTALLED_APPS, H_), C("安装列表", INSTALLED_APPS, H_),
    C("车牌", VEHICLE_PLATE, H_), C("车牌号", VEHICLE_PLATE, H_), C("车牌号码", VEHICLE_PLATE, H_),
    C("设备", DEVICE_ID, L_), C("设备id", DEVICE_ID, H_), C("设备号", DEVICE_ID, H_),
    C("设备标识", DEVICE_ID, H_), C("设备标识符", DEVICE_ID, H_), C("串号", IMEI, H_),
    C("安卓id", ANDROID_ID, H_),
    /* heads that make the compound about something else: 手机型号 is a
     * phone model, 身份证类型 a document type */
    CNOTPI("型号"), CNOTPI("类型"), CNOTPI("品牌"), CNOTPI("状态"), CNOTPI("格式"),
    CNOTPI("名称"), CNOTPI("数量"), CNOTPI("次数"),
    CNONPI("订单号"), CNONPI("订单编号"), CNONPI("运单号"), CNONPI("快递单号"),
    CNONPI("物流单号"), CNONPI("流水号"), CNONPI("交易号"), CNONPI("时间戳"), CNONPI("时间"),
    CNONPI("版本"), CNONPI("版本号"), CNONPI("价格"), CNONPI("金额"),
};
/* clang-format on */

#undef W
#undef WH
#undef P
#undef X
#undef XH
#undef C
#undef CH
#undef NONPI
#undef CNONPI
#undef NOTPI
#undef CNOTPI

/* Hints every key of a category gives the content detectors. */
static uint32_t cat_hints(unsigned cat)
{
    switch (cat) {
    case BG_CAT_CN_RESIDENT_ID:
    case BG_CAT_HMT_RESIDENCE_PERMIT: return BG_HINT_RESIDENT_ID;
    case BG_CAT_CN_MOBILE:
    case BG_CAT_PHONE_NUMBER: return BG_HINT_PHONE;
    case BG_CAT_BANK_CARD: return BG_HINT_CARD;
    case BG_CAT_IMEI: return BG_HINT_IMEI;
    case BG_CAT_IMSI: return BG_HINT_IMSI;
    case BG_CAT_MAC_ADDRESS: return BG_HINT_MAC;
    case BG_CAT_ANDROID_ID: return BG_HINT_ANDROID;
    case BG_CAT_DEVICE_ID: return BG_HINT_DEVICE;
    case BG_CAT_IP_ADDRESS: return BG_HINT_IP;
    case BG_CAT_GPS_LOCATION:
    case BG_CAT_PRECISE_LOCATION:
    case BG_CAT_WHEREABOUTS: return BG_HINT_GEO;
    case BG_CAT_PASSPORT: return BG_HINT_PASSPORT;
    case BG_CAT_HK_ID: return BG_HINT_HK_ID;
    case BG_CAT_TW_ID: return BG_HINT_TW_ID;
    case BG_CAT_MO_ID: return BG_HINT_MO_ID;
    case BG_CAT_MAINLAND_TRAVEL_PERMIT: return BG_HINT_PERMIT;
    case BG_CAT_IDENTITY_DOCUMENT: /* not PASSPORT: "any letters + digits" would
                                      claim HK and Taiwan numbers */
        return BG_HINT_RESIDENT_ID | BG_HINT_HK_ID | BG_HINT_TW_ID | BG_HINT_MO_ID | BG_HINT_PERMIT;
    case BG_CAT_EMAIL: return BG_HINT_EMAIL;
    }
    return 0;
}

/* Open-addressing table over key_table, keyed by a hash that is computed
 * right to left, so that every suffix of a key is hashed in one pass. */
#define KEY_SLOTS 2048  /* power of two, under 30% full */
#define KEY_TERM_MAX 40 /* longest term in bytes, with margin */

typedef struct {
    uint32_t h;
    uint16_t idx; /* entry + 1; 0 = empty */
} key_slot_t;

static key_slot_t key_slots[KEY_SLOTS];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static inline uint32_t hstep(uint32_t h, unsigned char c)
{
    return (h ^ c) * 16777619u;
}
#define HSEED 2166136261u

static void key_table_init(void)
{
    for (size_t i = 0; i < sizeof key_table / sizeof key_table[0]; i++) {
        const char *t = key_table[i].term;
        size_t n = strlen(t);
        uint32_t h = HSEED;
        for (size_t k = n; k-- > 0;)
            h = hstep(h, (unsigned char)t[k]);
        size_t slot = h & (KEY_SLOTS - 1);
        while (key_slots[slot].idx != 0)
            slot = (slot + 1) & (KEY_SLOTS - 1);
        key_slots[slot].h = h;
        key_slots[slot].idx = (uint16_t)(i + 1);
    }
}

static const key_entry_t *key_lookup(uint32_t h, const char *s, size_t n, unsigned kinds)
{
    for (size_t slot = h & (KEY_SLOTS - 1); key_slots[slot].idx != 0;
         slot = (slot + 1) & (KEY_SLOTS - 1)) {
        if (key_slots[slot].h != h)
            continue;
        const key_entry_t *e = &key_table[key_slots[slot].idx - 1];
        if ((e->match & kinds) && strlen(e->term) == n && memcmp(e->term, s, n) == 0)
            return e;
    }
    return NULL;
}

#define KEY_MAX 256
#define KEY_CJK_MAX 96

typedef struct {
    char a[KEY_MAX + 1];     /* ASCII letters and digits, lower case, joined */
    uint8_t wb[KEY_MAX + 1]; /* wb[i]: a word starts at a[i] */
    size_t an;
    char u[KEY_MAX + 1]; /* every character but separators, ASCII lower case */
    size_t un;
    int cjk;           /* u has non-ASCII characters */
    size_t first_word; /* length of the first word of a */
    unsigned words;
} nkey_t;

/*
 * Split and fold a key: ASCII separators (anything not a letter or digit)
 * and non-ASCII characters end words; so do lower-to-upper case changes
 * ("contactPhone"), the last capital of an acronym before a lower-case
 * letter ("IDCard" = ID|Card) and letter/digit changes. Full-width ASCII
 * counts as ASCII.
 */
static void key_normalize(const char *key, size_t len, nkey_t *k)
{
    const unsigned char *p = (const unsigned char *)key;
    if (len > KEY_MAX) {
        p += len - KEY_MAX;
        len = KEY_MAX;
        while (len > 0 && (*p & 0xC0) == 0x80)
            p++, len--;
    }
    k->an = k->un = 0;
    k->cjk = 0;
    k->first_word = 0;
    k->words = 0;
    int brk = 1;       /* a word ends before the next character */
    unsigned prev = 0; /* previous ASCII character, 0 after a break */
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t l = bg_norm_utf8_decode(p + i, len - i, &cp);
        unsigned c = cp < 0x80 ? cp : (cp >= 0xFF01 && cp <= 0xFF5E) ? cp - 0xFF01 + 0x21 : 0;
        if (c == 0 && cp != UINT32_MAX) { /* non-ASCII: a word of its own for u */
            memcpy(k->u + k->un, p + i, l);
            k->un += l;
            k->cjk = 1;
            brk = 1, prev = 0;
            i += l;
            continue;
        }
        i += l;
        if (!is_an(c)) {
            brk = 1, prev = 0;
            continue;
        }
        unsigned next = i < len ? p[i] : 0;
        int upper = c - 'A' < 26u;
        if (!brk && prev) {
            int pu = prev - 'A' < 26u, pl = prev - 'a' < 26u, pd = is_d(prev);
            if (upper && (pl || pd))
                brk = 1;
            else if (upper && pu && next - 'a' < 26u)
                brk = 1;
            else if (is_d(c) != pd)
                brk = 1;
        }
        if (brk) {
            if (k->words == 1)
                k->first_word = k->an;
            k->words++;
        }
        k->wb[k->an] = (uint8_t)brk;
        k->a[k->an++] = (char)(c | (is_a(c) ? 0x20 : 0));
        k->u[k->un++] = (char)(c | (is_a(c) ? 0x20 : 0));
        brk = 0;
        prev = c;
    }
    if (k->words == 1)
        k->first_word = k->an;
    k->a[k->an] = 0;
    k->u[k->un] = 0;
}

/* The longest term that matches a suffix of A[0, N) under its rule. */
static const key_entry_t *match_ascii(const nkey_t *k, size_t n)
{
    const key_entry_t *best = NULL;
    uint32_t h = HSEED;
    for (size_t p = n; p-- > 0 && n - p <= KEY_TERM_MAX;) {
        h = hstep(h, (unsigned char)k->a[p]);
        const key_entry_t *e = key_lookup(h, k->a + p, n - p, K_EXACT | K_WORD | K_PART);
        if (e == NULL || ((e->match & K_EXACT) && p != 0) || ((e->match & K_WORD) && !k->wb[p]))
            continue;
        best = e;
    }
    return best;
}

/* The Chinese term that ends last in U (its last KEY_CJK_MAX bytes), the
 * longest of those. */
static const key_entry_t *match_cjk(const nkey_t *k)
{
    const char *u = k->u;
    size_t n = k->un, lo = n > KEY_CJK_MAX ? n - KEY_CJK_MAX : 0;
    for (size_t q = n; q > lo; q--) {
        if (q < n && ((unsigned char)u[q] & 0xC0) == 0x80)
            continue; /* a term ends before a character, not inside one */
        const key_entry_t *best = NULL;
        uint32_t h = HSEED;
        for (size_t p = q; p-- > lo && q - p <= KEY_TERM_MAX;) {
            h = hstep(h, (unsigned char)u[p]);
            if (((unsigned char)u[p] & 0xC0) == 0x80)
                continue;
            const key_entry_t *e = key_lookup(h, u + p, q - p, K_CJK);
            if (e != NULL)
                best = e;
        }
        if (best != NULL)
            return best;
    }
    return NULL;
}

/* A key that names a yes/no flag about the data, not the data. */
static int flag_key(const nkey_t *k)
{
    static const char *const words[] = {
        "is",       "has",      "have",    "can",      "should",  "enable",  "enabled", "disable",
        "disabled", "show",     "hide",    "allow",    "allowed", "need",    "needs",   "use",
        "support",  "supports", "require", "required", "with",    "without", NULL};
    if (k->words >= 2) {
        for (const char *const *w = words; *w; w++)
            if (strlen(*w) == k->first_word && memcmp(*w, k->a, k->first_word) == 0)
                return 1;
    }
    return k->un >= 6 && (memcmp(k->u, "是否", 6) == 0 || memcmp(k->u, "有无", 6) == 0);
}

void bg_detect_key_info(const char *key, size_t len, bg_detect_key_t *out)
{
    out->category = BG_CAT_NONE;
    out->confidence = 0;
    out->hints = 0;
    if (key == NULL || len == 0)
        return;
    pthread_once(&key_once, key_table_init);
    nkey_t k;
    key_normalize(key, len, &k);
    if (flag_key(&k))
        return;
    const key_entry_t *e = match_ascii(&k, k.an);
    if (e == NULL) { /* "imei2", "address_1" */
        size_t n = k.an;
        while (n > 0 && is_d((unsigned char)k.a[n - 1]))
            n--;
        if (n > 0 && n < k.an)
            e = match_ascii(&k, n);
    }
    if (k.cjk) {
        /* the key's last character decides which reading comes first */
        int ascii_last =
            k.un > 0 && (unsigned char)k.u[k.un - 1] < 0x80 && !is_d((unsigned char)k.u[k.un - 1]);
        if (!(ascii_last && e != NULL)) {
            const key_entry_t *c = match_cjk(&k);
            if (c != NULL)
                e = c;
        }
    }
    if (e == NULL)
        return;
    out->category = (bg_detect_cat_t)e->cat;
    out->confidence = e->cat != BG_CAT_NONE ? (bg_detect_conf_t)e->conf : 0;
    out->hints = e->hints | cat_hints(e->cat);
}

bg_detect_cat_t bg_detect_key_category(const char *key, size_t len)
{
    bg_detect_key_t k;
    bg_detect_key_info(key, len, &k);
    return k.confidence >= BG_CONF_MEDIUM ? k.category : BG_CAT_NONE;
}
