/*
 * libFuzzer target for the content detectors and key-name analysis
 * (inspect/detect).
 *
 * Input: byte 0 = key length (mod 64), then the key, then the value; the
 * last byte of the input also selects extra key hints, so hinted paths
 * (device ids, permits...) are reached from any value.
 *
 * Beyond "never crash, never read out of bounds" it checks what the
 * de-identifier relies on:
 *   - every span is inside the value, non-empty, in increasing order, not
 *     overlapping, and is valid UTF-8 (never splits a character);
 *   - ids, detector names and confidences are in range;
 *   - the count is the same whatever the capacity (snprintf contract);
 *   - an ASCII value gives the same findings scanned in place as through
 *     the normalizing window path (forced by a leading CJK character, which
 *     is a boundary like the start of the value), shifted by 3 bytes; not
 *     a value that may read as a whole number in exponent form (read so
 *     only as the whole value).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "inspect/detect.h"
#include "fuzz/fuzz.h"

#define CAP 64

/* P[0..N) is valid UTF-8 (strict: common/utf8.h). */
static int valid_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = bg_utf8_decode(p + i, n - i, &cp);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

static void check_findings(const uint8_t *v, size_t len, const bg_detect_finding_t *f, size_t n)
{
    size_t end = 0;
    for (size_t i = 0; i < n && i < CAP; i++) {
        CHECK(f[i].length > 0);
        CHECK(f[i].offset <= len && f[i].length <= len - f[i].offset);
        CHECK(f[i].offset >= end);
        end = f[i].offset + f[i].length;
        CHECK(valid_utf8(v + f[i].offset, f[i].length));
        CHECK(bg_detect_category_id(f[i].category) != NULL);
        CHECK(f[i].also == BG_CAT_NONE || bg_detect_category_id(f[i].also) != NULL);
        CHECK(bg_detect_detector_name(f[i].detector) != NULL);
        CHECK(bg_detect_confidence_name(f[i].confidence) != NULL);
    }
}

/* Field by field: the struct has padding. */
static int same(const bg_detect_finding_t *a, const bg_detect_finding_t *b, size_t shift)
{
    return a->offset == b->offset + shift && a->length == b->length && a->category == b->category &&
           a->also == b->also && a->detector == b->detector && a->confidence == b->confidence &&
           a->flags == b->flags;
}

static void run(const bg_detect_key_t *key, const uint8_t *v, size_t len)
{
    static const bg_detect_opts_t opts = {0, 20250601};
    bg_detect_finding_t f[CAP];
    size_t n = bg_detect_scan(&opts, key, (const char *)v, len, f, CAP);
    check_findings(v, len, f, n);
    CHECK(bg_detect_scan(&opts, key, (const char *)v, len, NULL, 0) == n);
    bg_detect_finding_t one[1];
    CHECK(bg_detect_scan(&opts, key, (const char *)v, len, one, 1) == n);
    if (n > 0)
        CHECK(same(&one[0], &f[0], 0));

    /* in place versus window path */
    int ascii = 1;
    for (size_t i = 0; i < len; i++)
        ascii &= v[i] < 0x80;
    /* A whole value that may read as a number in exponent form
     * ("1.3812345678E10": 12-48 bytes, an 'e' among its last five) is read
     * so only when it is the whole value (inspect/detect_encoded.c,
     * bg_det_find_number_form): with a character in front it is another
     * value, and its findings may differ by design. */
    int whole_number_form = 0;
    if (len >= 12 && len <= 48)
        for (size_t k = len - 5; k < len - 1; k++)
            whole_number_form |= (v[k] | 0x20) == 'e';
    if (!ascii || whole_number_form || n > CAP)
        return;
    uint8_t *w = malloc(len + 3);
    if (w == NULL)
        return;
    memcpy(w, "\xe4\xb8\xad", 3); /* 中 */
    memcpy(w + 3, v, len);
    bg_detect_finding_t g[CAP];
    size_t m = bg_detect_scan(&opts, key, (const char *)w, len + 3, g, CAP);
    CHECK(m == n);
    for (size_t i = 0; i < n; i++)
        CHECK(same(&g[i], &f[i], 3));
    free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t klen = data[0] % 64;
    if (klen > size - 1)
        klen = size - 1;
    const char *key = (const char *)data + 1;
    const uint8_t *v = data + 1 + klen;
    size_t len = size - 1 - klen;

    bg_detect_key_t k;
    bg_detect_key_info(key, klen, &k);
    CHECK(k.category == BG_CAT_NONE || bg_detect_category_id(k.category) != NULL);
    CHECK(k.category == BG_CAT_NONE ? k.confidence == 0
                                    : bg_detect_confidence_name(k.confidence) != NULL);
    bg_detect_cat_t c = bg_detect_key_category(key, klen);
    CHECK(c == BG_CAT_NONE || c == k.category);

    run(&k, v, len);
    run(NULL, v, len);
    /* every hint the last byte selects, to reach the key-only shapes */
    static const uint32_t hint_sets[8] = {
        BG_HINT_DEVICE | BG_HINT_ANDROID | BG_HINT_MAC,
        BG_HINT_RESIDENT_ID | BG_HINT_CARD,
        BG_HINT_PASSPORT | BG_HINT_PERMIT,
        BG_HINT_HK_ID | BG_HINT_TW_ID | BG_HINT_MO_ID,
        BG_HINT_IMEI | BG_HINT_IMSI | BG_HINT_PHONE,
        BG_HINT_NONPI,
        BG_HINT_IP | BG_HINT_GEO | BG_HINT_EMAIL,
        0x1FFFF,
    };
    bg_detect_key_t h = {BG_CAT_NONE, 0, hint_sets[data[size - 1] % 8]};
    run(&h, v, len);
    return 0;
}
