/*
 * A growable byte buffer with JSON helpers, for writing records without
 * building a tree first (the audit hot path). On allocation failure the
 * buffer is marked failed and further appends are ignored; check ->failed.
 */
#ifndef BG_SBUF_H
#define BG_SBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *p;
    size_t n, cap;
    int failed;
    int borrowed; /* P is the caller's storage (bg_sbuf_init_buf): not freed */
} bg_sbuf_t;

/* Start B empty on the caller's storage BUF (CAP bytes, CAP > 0): no
 * allocation until the text outgrows it, then B moves to the heap (the
 * bytes copied) and bg_sbuf_free frees only that. For records built once
 * per request in a stack buffer. */
void bg_sbuf_init_buf(bg_sbuf_t *b, char *buf, size_t cap);

/* N bytes of S. Inline when they fit (a record appends some forty pieces
 * a request, most of them string literals whose length the compiler
 * knows); bg_sbuf_add_slow grows the buffer. */
void bg_sbuf_add_slow(bg_sbuf_t *b, const char *s, size_t n);
static inline void bg_sbuf_add(bg_sbuf_t *b, const char *s, size_t n)
{
    if (!b->failed && b->n < b->cap && n < b->cap - b->n) {
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = '\0';
        return;
    }
    bg_sbuf_add_slow(b, s, n);
}
static inline void bg_sbuf_adds(bg_sbuf_t *b, const char *s)
{
    bg_sbuf_add(b, s, strlen(s));
}
void bg_sbuf_addf(bg_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* V in decimal (no printf: the audit hot path). */
void bg_sbuf_addu(bg_sbuf_t *b, uint64_t v);
void bg_sbuf_addi(bg_sbuf_t *b, long long v);
/* US microseconds as milliseconds with three decimals ("12.345"), what
 * printf's "%.3f" of US / 1000.0 gives. */
void bg_sbuf_addms(bg_sbuf_t *b, uint64_t us);
/* S (N bytes of UTF-8) as a JSON string literal, quotes included; invalid
 * UTF-8 bytes become U+FFFD so the output is always valid JSON. */
void bg_sbuf_json_str(bg_sbuf_t *b, const char *s, size_t n);
void bg_sbuf_json_cstr(bg_sbuf_t *b, const char *s); /* NULL: null */
/* ,"KEY":"VALUE" (FIRST: no leading comma). KEY must be a string literal
 * of printable ASCII without '"' or '\\' (written as is, its length known
 * at compile time; anything else does not compile); VALUE is escaped. */
#define bg_sbuf_json_kv(b, first, key, value)                                                      \
    bg_sbuf_json_kvn((b), (first), "" key "", sizeof("" key "") - 1, (value))
void bg_sbuf_json_kvn(bg_sbuf_t *b, int first, const char *key, size_t keylen, const char *value);
void bg_sbuf_free(bg_sbuf_t *b);

#endif
