#include "common/http_header.h"

#include <string.h>

/* ASCII lower case only: header names are tokens, locales do not apply. */
static unsigned ascii_lower(unsigned c)
{
    return c - 'A' < 26u ? c | 0x20u : c;
}

const bg_http_header_t *bg_http_find_header(const bg_http_header_t *headers, size_t n,
                                            const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (headers[i].name_len != len)
            continue;
        size_t j = 0;
        while (j < len && ascii_lower((unsigned char)headers[i].name[j]) ==
                              ascii_lower((unsigned char)name[j]))
            j++;
        if (j == len)
            return &headers[i];
    }
    return NULL;
}
