/*
 * libFuzzer target for the normaliser (inspect/normalize) and what the
 * detectors build on it: escapes, Unicode folding, base64/hex runs.
 *
 * Checks:
 *   - bg_norm_next() always consumes 1..len-o bytes and yields an ASCII
 *     byte, 0 or 0x80;
 *   - the decoders never write past their capacity and consume what they
 *     say;
 *   - bg_normalize_json_number() returns -1 or a string of its length made
 *     of digits (and a leading '-');
 *   - bg_detect_scan() spans stay within the value, in order, without
 *     overlap, and the scan is deterministic (two runs, same findings);
 *   - bg_norm_b32_decode() equals a bit-by-bit reference decoder (either
 *     case, stops at the first byte outside the alphabet): the bytes
 *     written are floor(5 * used / 8) and never more than the capacity;
 *     decoding in chunks of a capacity that is a multiple of 5 (what
 *     inspect/detect_encoded.c's scan_decoded does) consumes whole 8-character
 *     groups and gives the same bytes as one decode;
 *   - bg_norm_cjk_run(), at every Chinese numeral of the input: the run
 *     ends after a digit, on a character boundary, within 256 bytes and
 *     the input; it holds BG_NORM_CJK_RUN_MIN digits with those before it;
 *     SKIP moves forward and equals the end when the run is accepted; more
 *     digits before it never lose a run; the run read again from a copy
 *     cut at its end is the same run (it does not depend on what follows).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/detect.h"
#include "inspect/normalize.h"
#include "fuzz/fuzz.h"

#define CAP 32

/* The reference: base32 S[0, N) decoded bit by bit into OUT (room for
 * 5 * N / 8 bytes). Returns the bytes written; *USED the characters. */
static size_t ref_b32(const uint8_t *s, size_t n, uint8_t *out, size_t *used)
{
    static const char up[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    size_t i, bits = 0;
    for (i = 0; i < n; i++) {
        int c = s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i];
        const char *p = c != 0 ? strchr(up, c) : NULL;
        if (p == NULL)
            break;
        unsigned v = (unsigned)(p - up);
        for (int b = 4; b >= 0; b--, bits++) {
            if (bits % 8 == 0)
                out[bits / 8] = 0;
            if (bits / 8 < 5 * n / 8 && (v >> b) & 1)
                out[bits / 8] |= (uint8_t)(0x80 >> (bits % 8));
        }
    }
    *used = i;
    return bits / 8;
}

static void check_b32(const uint8_t *data, size_t size)
{
    uint8_t *ref = malloc(5 * size / 8 + 2), *got = malloc(5 * size / 8 + 2);
    if (ref == NULL || got == NULL)
        goto out;
    size_t rused, used;
    size_t rn = ref_b32(data, size, ref, &rused);
    size_t n = bg_norm_b32_decode(data, size, got, 5 * size / 8 + 1, &used);
    CHECK(used == rused && n == rn && n == 5 * used / 8);
    CHECK(memcmp(got, ref, n) == 0);

    /* A small capacity: a prefix of the same bytes, never past CAP. */
    size_t cap = size > 0 ? data[0] % 24 : 0;
    uint8_t small[24];
    n = bg_norm_b32_decode(data, size, small, cap, &used);
    CHECK(n <= cap && used <= rused && n == 5 * used / 8 && memcmp(small, ref, n) == 0);
    CHECK(n == cap || used == rused);

    /* In chunks of 5 * m bytes (whole groups of 8 characters), as
     * scan_decoded reads a long run: the same bytes. */
    size_t m = size > 1 ? 1 + data[1] % 4 : 1, pos = 0, k = 0;
    for (;;) {
        n = bg_norm_b32_decode(data + pos, size - pos, got + k, 5 * m, &used);
        CHECK(n <= 5 * m);
        if (n == 5 * m)
            CHECK(used == 8 * m);
        k += n;
        pos += used;
        if (n < 5 * m || pos >= size)
            break;
    }
    CHECK(pos == rused && k == rn && memcmp(got, ref, k) == 0);
out:
    free(ref);
    free(got);
}

/* Is V[O, ...) a digit as bg_norm_cjk_run() counts one? Its length in *L. */
static int run_digit(const uint8_t *v, size_t len, size_t o, size_t *l)
{
    uint32_t cp;
    *l = bg_norm_utf8_decode(v + o, len - o, &cp);
    if (cp == UINT32_MAX)
        return 0;
    unsigned a = bg_norm_fold(cp);
    return (a >= '0' && a <= '9') || bg_norm_cjk_digit(cp) != 0;
}

static void check_cjk(const uint8_t *data, size_t size)
{
    unsigned tried = 0;
    for (size_t o = 0; o < size && tried < 16; o++) {
        uint32_t cp;
        if (data[o] < 0xE0 || bg_norm_utf8_decode(data + o, size - o, &cp) != 3 ||
            bg_norm_cjk_digit(cp) == 0)
            continue;
        tried++;
        unsigned before = o > 0 ? data[o - 1] % 16 : 0;
        size_t skip = 0, skip2 = 0, skip3 = 0;
        size_t e = bg_norm_cjk_run(data, size, o, before, &skip);
        CHECK(skip > o && skip <= size && skip <= o + 256);
        CHECK(e == 0 || (e == skip && e > o));
        /* Count the digits of [o, skip) with the reference reader; SKIP
         * ends right after a digit, on a character boundary. */
        unsigned digits = 0;
        size_t i = o, l, last_end = o;
        while (i < skip) {
            if (run_digit(data, size, i, &l)) {
                digits++;
                last_end = i + l;
            }
            i += l;
        }
        CHECK(i == skip && last_end == skip);
        CHECK((e != 0) == (digits + before >= BG_NORM_CJK_RUN_MIN));
        /* More digits before it: the same run, accepted at least as often. */
        size_t e2 = bg_norm_cjk_run(data, size, o, before + 1, &skip2);
        CHECK(skip2 == skip && (e == 0 || e2 == e));
        /* Cut right after the run: the same run. */
        size_t e3 = bg_norm_cjk_run(data, skip, o, before, &skip3);
        CHECK(e3 == e && skip3 == skip);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t o = 0; o < size;) {
        unsigned c, how;
        size_t l = bg_norm_next(data, size, o, &c, &how);
        CHECK(l >= 1 && l <= size - o);
        CHECK(c < 0x80 || c == 0x80);
        o += l;
    }

    unsigned char buf[64];
    size_t used;
    size_t n = bg_norm_b64_decode(data, size, buf, sizeof buf, &used);
    CHECK(n <= sizeof buf && used <= size);
    n = bg_norm_hex_decode(data, size, buf, sizeof buf);
    CHECK(n <= sizeof buf && 2 * n <= size);

    check_b32(data, size);
    check_cjk(data, size);

    char num[48];
    int r = bg_normalize_json_number((const char *)data, size, num, sizeof num);
    CHECK(r >= -1 && r < (int)sizeof num);
    if (r >= 0) {
        CHECK(strlen(num) == (size_t)r && r > 0);
        for (int i = 0; i < r; i++)
            CHECK((num[i] >= '0' && num[i] <= '9') || (i == 0 && num[i] == '-'));
    }

    static const bg_detect_opts_t opts = {0, 20250601};
    bg_detect_key_t key = {BG_CAT_NONE, 0, size > 0 ? (uint32_t)data[0] << 9 : 0};
    bg_detect_finding_t f[CAP], g[CAP];
    size_t a = bg_detect_scan(&opts, &key, (const char *)data, size, f, CAP);
    size_t b = bg_detect_scan(&opts, &key, (const char *)data, size, g, CAP);
    CHECK(a == b);
    size_t end = 0;
    for (size_t i = 0; i < a && i < CAP; i++) {
        CHECK(f[i].length > 0 && f[i].offset >= end && f[i].offset <= size &&
              f[i].length <= size - f[i].offset);
        end = f[i].offset + f[i].length;
        CHECK(g[i].offset == f[i].offset && g[i].length == f[i].length &&
              g[i].category == f[i].category && g[i].confidence == f[i].confidence &&
              g[i].flags == f[i].flags);
        /* Not rewritable: a decoded run (ENCODED) or a number in exponent
         * form (NORMALIZED, tests/unit/test_detect.c "1.3812345678E10"). */
        CHECK(!(f[i].flags & BG_DETECT_F_NOT_REWRITABLE) ||
              (f[i].flags & (BG_DETECT_F_ENCODED | BG_DETECT_F_NORMALIZED)));
    }
    return 0;
}
