#include "inspect/redact.h"

#include <string.h>

#include "inspect/detect.h"
#include "inspect/inspect_int.h"

/* Percent-decode S (LEN) into OUT (CAP); invalid escapes stay as they are.
 * Returns the length written. */
static size_t pct(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o < cap; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = bg_insp_hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = bg_insp_hexval((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

/* Does S (LEN), as written or percent-decoded once or twice, hold PI a
 * detector finds at medium confidence or above? */
static int holds_pi(const char *s, size_t len)
{
    char a[1024], b[1024];
    bg_detect_finding_t f[8];
    if (len > sizeof a)
        return 1; /* too long to judge here: keep nothing of it */
    size_t an = pct(s, len, a, sizeof a);
    size_t bn = pct(a, an, b, sizeof b);
    const char *forms[3] = {s, a, b};
    size_t lens[3] = {len, an, bn};
    for (int k = 0; k < 3; k++) {
        size_t nf = bg_detect_scan(NULL, NULL, forms[k], lens[k], f, 8);
        for (size_t i = 0; i < nf && i < 8; i++)
            if (f[i].confidence >= BG_CONF_MEDIUM)
                return 1;
        if (nf > 8)
            return 1;
    }
    return 0;
}

static void put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *o + 1 < cap; i++)
        out[(*o)++] = s[i];
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
     * whatever an upstream might read as one). */
    size_t i = 0;
    while (i < pend) {
        if (t[i] == '/' || t[i] == '\\') {
            put(out, cap, &o, t + i, 1);
            i++;
            continue;
        }
        size_t e = i;
        while (e < pend && t[e] != '/' && t[e] != '\\')
            e++;
        if (holds_pi(t + i, e - i))
            put(out, cap, &o, "*", 1);
        else
            put(out, cap, &o, t + i, e - i);
        i = e;
    }
    if (q != NULL) {
        put(out, cap, &o, "?", 1);
        i = pend + 1;
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
