/*
 * Content detectors: find personal information (PI) inside one string value.
 *
 * This is the innermost stage of inspection. The decoders (JSON, form,
 * multipart, query string, headers) hand every string value here, together
 * with what the key it sits under says (bg_detect_key_info()); the scanner
 * reports each PI it finds as a category, the detector that found it, a
 * confidence and the byte span in the value, so a de-identifier can rewrite
 * exactly that span.
 *
 * What it finds (docs/categories.md has the validation rules and limits):
 *   cn_resident_id          GB 11643 18-character number: province code, a
 *                           real birth date, ISO 7064 MOD 11-2 check; the
 *                           15-digit first generation (low alone)
 *   hmt_residence_permit    the same number with region 810000/820000/830000
 *   cn_mobile               1[3-9] + 9 digits; +86 / 0086 / 86, separators
 *   email                   dot-atom subset, dotted domain, alphabetic TLD
 *   bank_card               13-19 digits, issuer prefix, Luhn (UnionPay 62
 *                           without Luhn only at low confidence)
 *   imei / imsi             15 digits: Luhn + reporting body / MCC 460 + a
 *                           Chinese MNC
 *   mac_address             aa:bb:cc:dd:ee:ff, aa-bb-..., aabb.ccdd.eeff
 *   android_id, device_id   16 hex / UUID / 16-64 hex, under a device key only
 *   ip_address              IPv4 dotted quad, IPv6 (inet_pton-valid)
 *   gps_location            "lat,lng" or "lng,lat" pair with >= 3 decimals
 *   passport                China E/G passports; any format under a passport key
 *   hk_id, tw_id, mo_id     HK (mod 11), Taiwan (weighted mod 10), Macao IDs
 *   mainland_travel_permit  H/M + 8 or 10 digits; Taiwan's 8 digits by key
 * Names, addresses and the other categories a value cannot reveal are found
 * by key only: bg_detect_key_info().
 *
 * Bypass resistance (inspect/normalize.h; docs/categories.md has the
 * details): before matching, the value is read the way a reader reads it.
 * Every Unicode digit (Nd in every script, mathematical, full-width,
 * circled, parenthesized, superscript/subscript) reads as its value;
 * full-width ASCII as ASCII; Unicode spaces ' ', dashes '-', ideographic
 * full stops '.'; invisible characters (Cf, Mn, Me, variation selectors,
 * tag characters, Hangul/braille blanks) are dropped; percent escapes (once
 * or twice) and character references are decoded when a value holds one
 * that spells a digit, '@', ':' or non-ASCII. Digits may be separated by
 * 1-3 of ' ' '\t' '\n' '\r' '-' '.' '/' '_' ',' '(' ')'; groupings people
 * really write (mobile 3-4-4, cards in fours, ID 6-8-4) keep full
 * confidence, others are lower. Numbers glued to letters ("tel138...") are
 * read too (BG_DETECT_F_GLUED). Base64 (15+ characters) and hex (22+ digits)
 * runs are decoded to a depth of 2 and scanned; what they hold is reported
 * over the whole run (BG_DETECT_F_ENCODED | BG_DETECT_F_NOT_REWRITABLE).
 * Spans always refer to the caller's original bytes and include the
 * skipped characters inside them.
 *
 * False positives: a number is only reported when it stands alone (not
 * inside a longer digit run or a 16+ hex token, not a decimal fraction, not
 * a dotted version) and passes its checksum or structural validation;
 * weakly validated shapes come out at BG_CONF_LOW so policy can ignore them
 * (the recommended threshold is BG_CONF_MEDIUM). A key naming non-PI lowers
 * only weakly validated findings: it never lowers a fully validated value.
 * tests/data/false_positives.txt measures this.
 *
 * Cost: one pass over the value. Values without an ASCII digit, '@', ':',
 * a character that folds to one, an escape or 8 aligned base64-alphabet
 * bytes are rejected by a word-at-a-time pre-filter (unless the key allows
 * letter-only identifiers: MAC, Android ID, device id). ASCII-only values
 * are scanned in place; others are normalized through a bounded stack
 * window (about 20 KB, no heap); base64/hex runs are decoded through a
 * 1.5 KB stack buffer, chunk by chunk (work linear in the run), each
 * nesting level adding one window. No allocation, no locks, no regex;
 * thread-safe.
 */
#ifndef BG_DETECT_H
#define BG_DETECT_H

#include <stddef.h>
#include <stdint.h>

/* Built-in categories. The string ids (bg_detect_category_id()) are the
 * ones used in config/categories.json, policy files and audit records; the
 * enum is for fast switches and tables. Values are not stored anywhere, but
 * append only, for readable diffs. */
typedef enum {
    BG_CAT_NONE = 0,
    /* found in content (and by key) */
    BG_CAT_CN_RESIDENT_ID,
    BG_CAT_HMT_RESIDENCE_PERMIT,
    BG_CAT_CN_MOBILE,
    BG_CAT_EMAIL,
    BG_CAT_BANK_CARD,
    BG_CAT_IMEI,
    BG_CAT_IMSI,
    BG_CAT_MAC_ADDRESS,
    BG_CAT_ANDROID_ID,
    BG_CAT_DEVICE_ID,
    BG_CAT_IP_ADDRESS,
    BG_CAT_GPS_LOCATION,
    BG_CAT_PASSPORT,
    BG_CAT_HK_ID,
    BG_CAT_TW_ID,
    BG_CAT_MO_ID,
    BG_CAT_MAINLAND_TRAVEL_PERMIT,
    /* found by key only */
    BG_CAT_PERSON_NAME,
    BG_CAT_ADDRESS,
    BG_CAT_PHONE_NUMBER,      /* any phone number, by key (cn_mobile is content) */
    BG_CAT_IDENTITY_DOCUMENT, /* "证件号": a document number of any kind */
    BG_CAT_BIRTH_DATE,
    BG_CAT_AGE,
    BG_CAT_GENDER,
    BG_CAT_NATIONALITY,
    BG_CAT_ETHNICITY,
    BG_CAT_PRECISE_LOCATION,
    BG_CAT_WHEREABOUTS,
    BG_CAT_BIOMETRICS,
    BG_CAT_HEALTH,
    BG_CAT_RELIGION,
    BG_CAT_SPECIFIC_IDENTITY,
    BG_CAT_SEXUAL_ORIENTATION,
    BG_CAT_CRIMINAL_RECORD,
    BG_CAT_MINOR_UNDER_14,
    BG_CAT_FINANCIAL_ACCOUNT,
    BG_CAT_TRANSACTION_RECORD,
    BG_CAT_CREDENTIALS,
    BG_CAT_ACCOUNT_ID,
    BG_CAT_CONTACTS,
    BG_CAT_COMMUNICATION_RECORD,
    BG_CAT_BROWSING_HISTORY,
    BG_CAT_INSTALLED_APPS,
    BG_CAT_VEHICLE_PLATE,
    BG_CAT__COUNT
} bg_detect_cat_t;

/* The detectors; a finding names the one that produced it. */
typedef enum {
    BG_DET_RESIDENT_ID = 0, /* GB 11643 (and the 15-digit legacy number) */
    BG_DET_CN_MOBILE,
    BG_DET_EMAIL,
    BG_DET_BANK_CARD,
    BG_DET_IMEI,
    BG_DET_IMSI,
    BG_DET_MAC,
    BG_DET_ANDROID_ID,
    BG_DET_DEVICE_ID,
    BG_DET_IPV4,
    BG_DET_IPV6,
    BG_DET_GPS_PAIR,
    BG_DET_PASSPORT,
    BG_DET_HK_ID,
    BG_DET_TW_ID,
    BG_DET_MO_ID,
    BG_DET_TRAVEL_PERMIT,
    BG_DET__COUNT
} bg_detect_id_t;

#define BG_DETECT_BIT(id) (1u << (id))

typedef enum {
    BG_CONF_LOW = 1,    /* right shape, weak or no validation: review signal */
    BG_CONF_MEDIUM = 2, /* validated, but the shape also occurs in non-PI data */
    BG_CONF_HIGH = 3,   /* validated and distinctive, or confirmed by the key */
} bg_detect_conf_t;

/* Finding flags: why the confidence is what it is (for audit and review). */
#define BG_DETECT_F_KEY_HINT 0x01    /* the key name confirmed the category */
#define BG_DETECT_F_NORMALIZED 0x02  /* full-width, invisible or Unicode dash/space inside */
#define BG_DETECT_F_SEPARATED 0x04   /* digits were split by separators */
#define BG_DETECT_F_NO_CHECKSUM 0x08 /* checksum failed or does not exist */
#define BG_DETECT_F_LOCAL_ADDR 0x10  /* private, loopback or reserved address */
#define BG_DETECT_F_NONPI_KEY                                                                      \
    0x20 /* made low: the key names an order id, version... and                                    \
            the value is only weakly validated */
/* The value was written encoded inside the string. With ENCODED alone
 * (percent escapes, character references) the span covers the escapes
 * that spell the value and can be rewritten like any other span. With
 * NOT_REWRITABLE too, the value is inside a base64 or hex run: the span is
 * the WHOLE run (its category, detector and confidence are those of the
 * most confident finding in the decoded bytes) and the value cannot be
 * rewritten in place; policy blocks such findings abroad. */
#define BG_DETECT_F_ENCODED 0x40
#define BG_DETECT_F_NOT_REWRITABLE 0x80
#define BG_DETECT_F_GLUED 0x100 /* the number touches letters ("tel13812345678") */

typedef struct {
    size_t offset;            /* first byte of the match in the value */
    size_t length;            /* bytes; never 0; offset+length <= value length */
    bg_detect_cat_t category; /* what it is */
    bg_detect_cat_t also;     /* a second reading of the same span, or
                                 BG_CAT_NONE (an HMT residence permit is
                                 also a resident ID number; "EA1234567" may
                                 be a passport and a HK identity card) */
    bg_detect_id_t detector;
    bg_detect_conf_t confidence;
    unsigned flags; /* BG_DETECT_F_* */
} bg_detect_finding_t;

/* Key hints: what a key name tells the content detectors. Filled by
 * bg_detect_key_info(); a field rule that knows better may set them too.
 *   RESIDENT_ID  allows 15-digit legacy IDs; reports bad check characters (typos)
 *   PHONE        any mobile grouping at full confidence
 *   CARD         bank card: any issuer prefix, Luhn optional (UnionPay 62
 *                16-19 digits high without it)
 *   IMEI         any 15-digit Luhn number is an IMEI (also 14 and 16 digits)
 *   MAC          allows 12 bare hex digits
 *   ANDROID      allows 15-16 hex digits
 *   DEVICE       allows UUIDs and 16/32/40/64 hex identifiers
 *   PASSPORT     allows 1-2 letters + 7-9 digits, and 8-9 digits
 *   MO_ID        allows 8 bare digits
 *   PERMIT       travel permit; allows Taiwan's 8 (10) digits
 *   NONPI        order/trace/request id, version, timestamp, price...: weakly
 *                validated content findings under it become low
 *   IMSI, IP, GEO, HK_ID, TW_ID, EMAIL raise the confidence of their detector */
#define BG_HINT_RESIDENT_ID 0x0001
#define BG_HINT_PHONE 0x0002
#define BG_HINT_CARD 0x0004
#define BG_HINT_IMEI 0x0008
#define BG_HINT_IMSI 0x0010
#define BG_HINT_MAC 0x0020
#define BG_HINT_ANDROID 0x0040
#define BG_HINT_DEVICE 0x0080
#define BG_HINT_IP 0x0100
#define BG_HINT_GEO 0x0200
#define BG_HINT_PASSPORT 0x0400
#define BG_HINT_HK_ID 0x0800
#define BG_HINT_TW_ID 0x1000
#define BG_HINT_MO_ID 0x2000
#define BG_HINT_PERMIT 0x4000
#define BG_HINT_EMAIL 0x8000
#define BG_HINT_NONPI 0x10000

typedef struct {
    bg_detect_cat_t category;    /* what the key name says; BG_CAT_NONE if nothing */
    bg_detect_conf_t confidence; /* how sure the key is: "name" alone is LOW
                                    (product names...), "real_name" / 姓名 HIGH;
                                    0 when category is BG_CAT_NONE */
    uint32_t hints;              /* BG_HINT_* */
} bg_detect_key_t;

typedef struct {
    uint32_t disabled; /* BG_DETECT_BIT(id) of detectors to skip */
    uint32_t today;    /* YYYYMMDD: latest acceptable birth date in an ID
                          number; 0 = today in China (UTC+8) */
} bg_detect_opts_t;

/*
 * Scan the string S (LEN bytes of UTF-8, as decoded from JSON: escapes
 * already resolved; invalid UTF-8 is tolerated and never matches) for PI.
 * KEY (may be NULL) is what the key name says, from bg_detect_key_info();
 * OPTS may be NULL for defaults.
 *
 * Findings go to OUT in increasing offset order and never overlap; at most
 * CAP are stored. Returns how many were found, which may exceed CAP: a
 * caller that must fail closed compares the result with CAP (like
 * snprintf). OUT may be NULL when CAP is 0 (count only).
 *
 * Cost: O(LEN). Measured (2-core VM, -O2): ~0.15 ns/byte for values the
 * pre-filter rejects, 0.5-1 ns/byte for ASCII text, 3-6 ns/byte for non-ASCII
 * text with digits (normalizing path); ~100 ns for a typical 30-byte value.
 * No allocation; reentrant.
 */
size_t bg_detect_scan(const bg_detect_opts_t *opts, const bg_detect_key_t *key, const char *s,
                      size_t len, bg_detect_finding_t *out, size_t cap);

/* bg_detect_key_info() and bg_detect_scan() in one call; KEY may be NULL. */
size_t bg_detect_value(const bg_detect_opts_t *opts, const char *key, size_t keylen, const char *s,
                       size_t len, bg_detect_finding_t *out, size_t cap);

/*
 * What a key name says. Matching is case-insensitive and ignores the
 * spelling convention: "IDCardNo", "id_card_no", "id-card-no" and
 * "idcardno" are one key; full-width letters count as ASCII. Rules (the
 * table in detect.c, documented in docs/categories.md):
 *   - exact names          "name", "tel", "dob": the whole key only
 *   - trailing words       "user_mobile", "contactPhone", "client_ip",
 *                          "ip_address": the key's last word(s); when
 *                          several match, the longest wins ("ip_address"
 *                          is an IP address, "home_address" an address)
 *   - trailing parts       "userpassword", "accesstoken": distinctive terms
 *                          also match inside an undelimited word
 *   - Chinese terms        anywhere in the key; when several occur, the one
 *                          that ends last wins (Chinese compounds put the
 *                          head noun last: 身份证地址 is an address), then
 *                          the longest (香港身份证 beats 身份证)
 *   - flags                a key whose first word is is/has/enable/show/...
 *                          names a boolean, not the data ("is_mobile")
 * Trailing digits are ignored when the key does not match with them
 * ("imei2", "address_1"). A key longer than 256 bytes is judged by its
 * last 256 bytes; Chinese terms by the last 96 bytes.
 *
 * Cost: O(length) hash probes for ASCII keys (tens of ns for typical
 * keys), O(length * 30) for keys with non-ASCII characters. Callers that see
 * the same keys repeatedly may cache the result. Thread-safe (the table is
 * built once, on first use).
 */
void bg_detect_key_info(const char *key, size_t len, bg_detect_key_t *out);

/* The category of bg_detect_key_info() when its confidence is at least
 * BG_CONF_MEDIUM; BG_CAT_NONE otherwise (no category, only a hint, or an
 * ambiguous key such as "name" or "contact"). */
bg_detect_cat_t bg_detect_key_category(const char *key, size_t len);

/* Category id string ("cn_resident_id", or a policy category's id), or
 * NULL when out of range, NONE or never interned. */
const char *bg_detect_category_id(bg_detect_cat_t cat);
/* The built-in category with id ID (LEN bytes), or BG_CAT_NONE. */
bg_detect_cat_t bg_detect_category_from_id(const char *id, size_t len);

/*
 * Categories a policy defines (policy.categories, docs/policy.md) take the
 * values BG_CAT__COUNT .. BG_CAT_MAX - 1: a set of categories is one 64-bit
 * mask, and per-category tables are BG_CAT_MAX long. Detectors never report
 * them; field rules do.
 *
 * bg_detect_category_intern() gives policy category ID its value: the same
 * value for the same id for the life of the process (a reloaded policy
 * keeps its values while the old one may still be deciding), so
 * bg_detect_category_id() names findings without the policy at hand. The
 * ids are copied and kept: at most BG_CAT_MAX - BG_CAT__COUNT distinct ids
 * per process. Returns BG_CAT_NONE for a built-in id, an id that is not
 * [a-z][a-z0-9_]{0,63}, or when every value is taken. Thread-safe.
 */
#define BG_CAT_MAX 64
bg_detect_cat_t bg_detect_category_intern(const char *id, size_t len);
/* Detector name ("gb11643", "luhn_bank_card", ...), or NULL. */
const char *bg_detect_detector_name(bg_detect_id_t det);
/* "low", "medium", "high"; NULL when out of range. */
const char *bg_detect_confidence_name(bg_detect_conf_t conf);
/* Parse "low"/"medium"/"high" (LEN bytes); 0 or -1. */
int bg_detect_confidence_parse(const char *s, size_t len, bg_detect_conf_t *out);

#endif
