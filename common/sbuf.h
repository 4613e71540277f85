/*
 * A growable byte buffer with JSON helpers, for writing records without
 * building a tree first (the audit hot path). On allocation failure the
 * buffer is marked failed and further appends are ignored; check ->failed.
 */
#ifndef BG_SBUF_H
#define BG_SBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *p;
    size_t n, cap;
    int failed;
} bg_sbuf_t;

void bg_sbuf_add(bg_sbuf_t *b, const char *s, size_t n);
void bg_sbuf_adds(bg_sbuf_t *b, const char *s);
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
/* ,"KEY":"VALUE" (FIRST: no leading comma) */
void bg_sbuf_json_kv(bg_sbuf_t *b, int first, const char *key, const char *value);
void bg_sbuf_free(bg_sbuf_t *b);

#endif
