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
/* S (N bytes of UTF-8) as a JSON string literal, quotes included; invalid
 * UTF-8 bytes become U+FFFD so the output is always valid JSON. */
void bg_sbuf_json_str(bg_sbuf_t *b, const char *s, size_t n);
void bg_sbuf_json_cstr(bg_sbuf_t *b, const char *s); /* NULL: null */
/* ,"KEY":"VALUE" (FIRST: no leading comma) */
void bg_sbuf_json_kv(bg_sbuf_t *b, int first, const char *key, const char *value);
void bg_sbuf_free(bg_sbuf_t *b);

#endif
