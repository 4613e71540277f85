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
 *     overlap, and the scan is deterministic (two runs, same findings).
 */
#include <stdint.h>
#include <string.h>

#include "inspect/detect.h"
#include "inspect/normalize.h"
#include "fuzz/fuzz.h"

#define CAP 32

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
        CHECK(!(f[i].flags & BG_DETECT_F_NOT_REWRITABLE) || (f[i].flags & BG_DETECT_F_ENCODED));
    }
    return 0;
}
