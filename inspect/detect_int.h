/*
 * Private to the content detectors (inspect/detect*.c): the scan state and
 * the helpers their files share. Nothing else includes this; the public API
 * is inspect/detect.h.
 *
 *   detect.c          the pass over one value: pre-filter, normalization
 *                     into windows, token starts, the finding store
 *                     (bg_det_emit()), bg_detect_scan() / bg_detect_value()
 *   detect_numbers.c  digit runs and the numeric detectors: resident ID
 *                     (GB 11643), mainland mobile, bank cards (Luhn), IMEI,
 *                     IMSI; numbers glued to letters or inside longer runs
 *   detect_tokens.c   the other shapes: letter-led identity documents (HK,
 *                     Taiwan, Macao, passports, travel permits), MAC
 *                     addresses, UUIDs and hex device ids, IPv4/IPv6, GPS
 *                     pairs, e-mail
 *   detect_encoded.c  base64, hex and base32 runs decoded and scanned one
 *                     level down; numbers in exponent form
 *   detect_keys.c     key names: the term table and bg_detect_key_info()
 *   detect_names.c    category, detector and confidence names; categories
 *                     a policy defines
 *
 * The character tests and bounds-checked reads on the scan's hot path are
 * static inline here, so the split into files costs no call inside a
 * detector. A bg_det_try_*() function is a detector tried at a token start:
 * it returns the end of what it consumed (a finding, or a shape skipped
 * whole), or 0 when nothing starts there.
 */
#ifndef BG_DETECT_INT_H
#define BG_DETECT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "inspect/detect.h"
#include "inspect/normalize.h"

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
#define B64_MIN 15      /* shortest base64 run decoded (11 bytes: a mobile number) */
#define HEX_MIN 22      /* shortest hex run decoded (11 bytes: a mobile number) */
#define B32_MIN 18      /* shortest base32 run decoded (11 bytes: a mobile number) */
#define DEC_CHUNK 1536  /* bytes decoded at a time (a multiple of 3) */
#define DEC_OVERLAP 128 /* characters consecutive chunks share (a multiple of 4) */

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
    int glued;                        /* the number touches letters: see bg_det_try_glued() */
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

/* ---------------------------------------------------------------------- */
/* Boundaries                                                              */

/* The character at I may follow a number or identifier: not a letter or
 * digit, not '@' (then it is an e-mail's local part), not '.' followed by a
 * digit (a decimal, or a longer dotted run such as a version). */
static inline int right_ok(const scan_t *s, size_t i)
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
static inline int left_ok(const scan_t *s, size_t i)
{
    unsigned p = ch(s, i - 1);
    if (is_an(p) || p == '@' || p == '+')
        return 0;
    if (p == '.' && is_d(ch(s, i - 2)))
        return 0;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* The finding store and the recursion (detect.c)                          */

/*
 * Record a finding for t[b, e) (context rules: see detect.c). Returns e, so
 * detectors can "return bg_det_emit(...)".
 */
size_t bg_det_emit(scan_t *s, size_t b, size_t e, bg_detect_cat_t cat, bg_detect_cat_t also,
                   bg_detect_id_t det, int conf, unsigned flags);

/* Scan the value V[0, LEN) into S (a fresh scan_t with hints, disabled,
 * today, depth and out/best set). Returns the number of findings. */
size_t bg_det_scan_value(scan_t *s, const unsigned char *v, size_t len);

/* ---------------------------------------------------------------------- */
/* Detectors tried at a token start                                        */

/* detect_numbers.c: a token starting with a digit; "+86 ..."; digits
 * glued to letters at J in the token from TB; a zero-padded number; a
 * mobile or ID number inside a longer digit run (try_windows), an ID
 * number only (try_id_window). */
size_t bg_det_try_number(scan_t *s, size_t i);
size_t bg_det_try_plus(scan_t *s, size_t i);
size_t bg_det_try_glued(scan_t *s, size_t j, size_t tb);
size_t bg_det_try_zero_padded(scan_t *s, size_t i);
size_t bg_det_try_id_window(scan_t *s, size_t i);
size_t bg_det_try_windows(scan_t *s, size_t i);
/* Whether the digit run from I holds two separated groups after the first
 * ("138.1234.5678"; a decimal "3.14159" has one). */
int bg_det_dots_twice(const scan_t *s, size_t i);

/* detect_tokens.c */
size_t bg_det_try_letters(scan_t *s, size_t i);
size_t bg_det_try_mac(scan_t *s, size_t i);
size_t bg_det_try_uuid(scan_t *s, size_t i);
size_t bg_det_try_hexid(scan_t *s, size_t i);
size_t bg_det_try_ipv4(scan_t *s, size_t i);
size_t bg_det_try_ipv6(scan_t *s, size_t i);
size_t bg_det_try_gps(scan_t *s, size_t i);
size_t bg_det_try_email(scan_t *s, size_t at);

/* ---------------------------------------------------------------------- */
/* Encoded runs (detect_encoded.c)                                         */

/* Each adds what it finds to s->enc (at most ENC_MAX, in offset order),
 * merged into the value's findings by offset. */
void bg_det_find_encoded(scan_t *s, const unsigned char *v, size_t len);
void bg_det_find_broken_base64(scan_t *s, const unsigned char *v, size_t len);
void bg_det_find_number_form(scan_t *s, const unsigned char *v, size_t len);

#endif
