/*
 * One parsed HTTP header field, as proxy/http.c writes them and inspect/ and
 * policy/ read them. Lives below both so that inspection does not depend on
 * the proxy (scripts/check-layers.py).
 */
#ifndef BG_HTTP_HEADER_H
#define BG_HTTP_HEADER_H

#include <stddef.h>

/* Zero-copy: NAME and VALUE point into the caller's buffer. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value; /* leading and trailing OWS removed */
    size_t value_len;
} bg_http_header_t;

/* First header named NAME (case-insensitive, ASCII) among HEADERS[0..N), or
 * NULL. O(n) over the fields; NAME is the caller's constant, not input. */
const bg_http_header_t *bg_http_find_header(const bg_http_header_t *headers, size_t n,
                                            const char *name);

#endif
