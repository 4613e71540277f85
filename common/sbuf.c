#include "common/sbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/utf8.h"

static int reserve(bg_sbuf_t *b, size_t more)
{
    if (b->failed)
        return -1;
    if (more > SIZE_MAX - 1 - b->n) { /* would wrap: as good as out of memory */
        b->failed = 1;
        return -1;
    }
    size_t need = b->n + more + 1;
    if (need <= b->cap)
        return 0;
    /* A borrowed buffer (bg_sbuf_init_buf) is the caller's: move to the
     * heap, never realloc or free it. */
    size_t cap = b->borrowed ? 0 : b->cap;
    char *p = bg_grow(b->borrowed ? NULL : b->p, &cap, need, 1, 1024);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    if (b->borrowed) {
        memcpy(p, b->p, b->n + 1);
        b->borrowed = 0;
    }
    b->cap = cap;
    b->p = p;
    return 0;
}

void bg_sbuf_init_buf(bg_sbuf_t *b, char *buf, size_t cap)
{
    b->p = buf;
    b->n = 0;
    b->cap = cap;
    b->failed = 0;
    b->borrowed = 1;
    buf[0] = '\0';
}

void bg_sbuf_add_slow(bg_sbuf_t *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void bg_sbuf_addu(bg_sbuf_t *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    bg_sbuf_add(b, tmp + i, sizeof tmp - i);
}

void bg_sbuf_addi(bg_sbuf_t *b, long long v)
{
    if (v < 0) {
        bg_sbuf_add(b, "-", 1);
        bg_sbuf_addu(b, (uint64_t)0 - (uint64_t)v);
    } else {
        bg_sbuf_addu(b, (uint64_t)v);
    }
}

void bg_sbuf_addms(bg_sbuf_t *b, uint64_t us)
{
    char frac[4];
    uint64_t f = us % 1000;
    bg_sbuf_addu(b, us / 1000);
    frac[0] = '.';
    frac[1] = (char)('0' + f / 100);
    frac[2] = (char)('0' + f / 10 % 10);
    frac[3] = (char)('0' + f % 10);
    bg_sbuf_add(b, frac, 4);
}

void bg_sbuf_addf(bg_sbuf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        bg_sbuf_add(b, tmp, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* The length of the longest prefix of S[0..N) that JSON takes as it is:
 * printable ASCII other than '"' and '\\'. Eight bytes at a time: a word
 * with no byte below 0x20, none equal to either character and no high bit
 * is all plain (the zero-byte tests below have no false negatives; a false
 * positive only sends the rest of that word to the byte loop). */
static size_t plain_prefix(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
        uint64_t bad = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | w;
        if (bad & high)
            break;
    }
    while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x80 && s[i] != '"' &&
           s[i] != '\\')
        i++;
    return i;
}

void bg_sbuf_json_str(bg_sbuf_t *b, const char *s, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    if (reserve(b, n + 2) != 0)
        return;
    /* Fast path: printable ASCII needing no escape (nearly every value in
     * a record) is copied in one piece. */
    size_t i = plain_prefix(s, n);
    char *o = b->p + b->n;
    *o++ = '"';
    if (i > 0)
        memcpy(o, s, i);
    b->n += i + 1;
    if (i == n) {
        b->p[b->n++] = '"';
        b->p[b->n] = '\0';
        return;
    }
    b->p[b->n] = '\0';
    size_t run = i;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            /* Keep valid UTF-8 as is; replace anything else (overlong forms
             * and surrogates too: jansson refuses them in a record). */
            uint32_t cp;
            size_t l = bg_utf8_decode((const unsigned char *)s + i, n - i, &cp);
            if (l > 0) {
                i += l;
                continue;
            }
            bg_sbuf_add(b, s + run, i - run);
            bg_sbuf_add(b, "\\ufffd", 6);
            run = ++i;
            continue;
        }
        bg_sbuf_add(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            bg_sbuf_add(b, e, 2);
        } else if (c == '\n') {
            bg_sbuf_add(b, "\\n", 2);
        } else if (c == '\t') {
            bg_sbuf_add(b, "\\t", 2);
        } else if (c == '\r') {
            bg_sbuf_add(b, "\\r", 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
            bg_sbuf_add(b, e, 6);
        }
        run = ++i;
    }
    bg_sbuf_add(b, s + run, n - run);
    bg_sbuf_add(b, "\"", 1);
}

void bg_sbuf_json_cstr(bg_sbuf_t *b, const char *s)
{
    if (s == NULL)
        bg_sbuf_add(b, "null", 4);
    else
        bg_sbuf_json_str(b, s, strlen(s));
}

void bg_sbuf_json_kvn(bg_sbuf_t *b, int first, const char *key, size_t kn, const char *value)
{
    if (reserve(b, kn + 4) != 0)
        return;
    char *o = b->p + b->n;
    if (!first)
        *o++ = ',';
    *o++ = '"';
    memcpy(o, key, kn);
    o += kn;
    *o++ = '"';
    *o++ = ':';
    *o = '\0';
    b->n = (size_t)(o - b->p);
    bg_sbuf_json_cstr(b, value);
}

void bg_sbuf_free(bg_sbuf_t *b)
{
    if (!b->borrowed)
        free(b->p);
    b->borrowed = 0;
    b->p = NULL;
    b->n = b->cap = 0;
}
