#include "inspect/redact.h"

#include <stdint.h>
#include <string.h>

#include "inspect/detect.h"
#include "inspect/inspect_int.h"

#include "common/hex.h"
#include "common/utf8.h"

/* Does S (LEN), as written or percent-decoded once or twice, hold PI a
 * detector finds at medium confidence or above? Text that is not UTF-8 in
 * one of those forms (GBK "%A3%B1", raw obs-text) is not read here, so it
 * counts as holding PI: a record keeps only what it could judge. */
static int holds_pi(const char *s, size_t len)
{
    char a[1024], b[1024];
    bg_detect_finding_t f[8];
    if (len > sizeof a)
        return 1; /* too long to judge here: keep nothing of it */
    /* Without '%' or '+' nothing decodes: the one form is the segment. */
    int nforms = memchr(s, '%', len) != NULL || memchr(s, '+', len) != NULL ? 3 : 1;
    /* lenient: an invalid escape stays as written */
    size_t an = 0, bn = 0;
    if (nforms > 1) {
        an = (size_t)bg_hex_pct_decode(s, len, a, sizeof a, BG_PCT_PLUS);
        bn = (size_t)bg_hex_pct_decode(a, an, b, sizeof b, BG_PCT_PLUS);
    }
    const char *forms[3] = {s, a, b};
    size_t lens[3] = {len, an, bn};
    for (int k = 0; k < nforms; k++)
        if (!bg_utf8_valid(forms[k], lens[k]))
            return 1;
    for (int k = 0; k < nforms; k++) {
        size_t nf = bg_detect_scan(NULL, NULL, forms[k], lens[k], f, 8);
        for (size_t i = 0; i < nf && i < 8; i++)
            if (f[i].confidence >= BG_CONF_MEDIUM)
                return 1;
        if (nf > 8)
            return 1;
    }
    return 0;
}

#define JOIN_SEGS 64
#define JOIN_CAP 2048

/*
 * A value split over path segments ("/users/110101199/003078515"): each
 * half is no identifier, the whole is, and an upstream may well join them.
 * The segments' text (as written, percent-decoded once, twice) is joined
 * without separators and scanned once per form; every segment a finding at
 * medium or above overlaps gets its bit in *HIT (bit I: segment I). Fails
 * closed: too many findings marks every segment. NSEG <= JOIN_SEGS.
 */
static void joined_pi(const char *t, const size_t *start, const size_t *len, int nseg,
                      uint64_t *hit)
{
    char cur[JOIN_CAP];
    size_t js[JOIN_SEGS + 1];
    bg_detect_finding_t f[16];
    /* Without '%' or '+' the decoded forms are the text itself: one scan. */
    int forms = 1;
    for (int i = 0; i < nseg && forms == 1; i++)
        if (memchr(t + start[i], '%', len[i]) != NULL || memchr(t + start[i], '+', len[i]) != NULL)
            forms = 3;
    for (int form = 0; form < forms; form++) {
        size_t o = 0;
        for (int i = 0; i < nseg; i++) {
            js[i] = o;
            char a[JOIN_CAP];
            size_t an = len[i] < sizeof a ? len[i] : sizeof a;
            memcpy(a, t + start[i], an);
            for (int k = 0; k < form; k++) {
                char b[JOIN_CAP];
                size_t bn = (size_t)bg_hex_pct_decode(a, an, b, sizeof b, BG_PCT_PLUS);
                memcpy(a, b, bn);
                an = bn;
            }
            if (o + an > sizeof cur)
                an = sizeof cur - o;
            memcpy(cur + o, a, an);
            o += an;
        }
        js[nseg] = o;
        size_t nf = bg_detect_scan(NULL, NULL, cur, o, f, 16);
        if (nf > 16) {
            *hit = ~(uint64_t)0;
            return;
        }
        for (size_t k = 0; k < nf; k++) {
            if (f[k].confidence < BG_CONF_MEDIUM)
                continue;
            for (int i = 0; i < nseg; i++)
                if (js[i] < f[k].offset + f[k].length && f[k].offset < js[i + 1])
                    *hit |= (uint64_t)1 << i;
        }
    }
}

const char *bg_redact_method(const char *m, size_t n, size_t *out_len)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};
    for (int i = 0; known[i] != NULL; i++) {
        if (strlen(known[i]) == n && memcmp(known[i], m, n) == 0) {
            *out_len = n;
            return m;
        }
    }
    *out_len = 1;
    return "*";
}

static void put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *o + 1 < cap; i++)
        out[(*o)++] = s[i];
}

static int is_sep(char c, const char *seps)
{
    return c != '\0' && strchr(seps, c) != NULL;
}

/* T[0..N) into OUT at *O, each run between SEPS characters kept unless it
 * holds PI alone or as part of a value split over several runs ("*"). */
static void redact_segments(const char *t, size_t n, const char *seps, char *out, size_t cap,
                            size_t *o)
{
    size_t sstart[JOIN_SEGS], slen[JOIN_SEGS];
    int nseg = 0, seg = 0;
    uint64_t hit = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && !is_sep(t[e], seps))
            e++;
        if (e > i && nseg < JOIN_SEGS) {
            sstart[nseg] = i;
            slen[nseg++] = e - i;
        }
        i = e > i ? e : i + 1;
    }
    if (nseg > 1)
        joined_pi(t, sstart, slen, nseg, &hit);
    size_t i = 0;
    while (i < n) {
        if (is_sep(t[i], seps)) {
            put(out, cap, o, t + i, 1);
            i++;
            continue;
        }
        size_t e = i;
        while (e < n && !is_sep(t[e], seps))
            e++;
        int joined_hit = seg < JOIN_SEGS && (hit >> seg & 1);
        seg++;
        if (joined_hit || holds_pi(t + i, e - i))
            put(out, cap, o, "*", 1);
        else
            put(out, cap, o, t + i, e - i);
        i = e;
    }
}

size_t bg_redact_host(const char *h, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    redact_segments(h, n, ".", out, cap, &o);
    out[o] = '\0';
    return o;
}

size_t bg_redact_target(const char *t, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    const char *hash = memchr(t, '#', n);
    if (hash != NULL)
        n = (size_t)(hash - t);
    const char *q = memchr(t, '?', n);
    size_t pend = q != NULL ? (size_t)(q - t) : n;
    /* Path: segment by segment ('/' and '\\' both separate: a segment is
     * whatever an upstream might read as one), alone and joined. */
    redact_segments(t, pend, "/\\", out, cap, &o);
    if (q != NULL) {
        put(out, cap, &o, "?", 1);
        size_t i = pend + 1;
        while (i <= n) {
            size_t e = i;
            while (e < n && t[e] != '&')
                e++;
            const char *eq = memchr(t + i, '=', e - i);
            size_t nl = eq != NULL ? (size_t)(eq - (t + i)) : e - i;
            if (holds_pi(t + i, nl))
                put(out, cap, &o, "*", 1);
            else
                put(out, cap, &o, t + i, nl);
            if (eq != NULL)
                put(out, cap, &o, "=", 1);
            if (e < n)
                put(out, cap, &o, "&", 1);
            i = e + 1;
        }
    }
    out[o] = '\0';
    return o;
}
