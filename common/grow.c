#include "common/grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

void *bg_grow(void *p, size_t *cap, size_t need, size_t size, size_t min)
{
    if (need <= *cap)
        return p;
    if (size == 0) {
        errno = EINVAL;
        return NULL;
    }
    size_t max = SIZE_MAX / size;
    if (need > max) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = *cap > min ? *cap : (min > 0 ? min : 1);
    while (n < need)
        n = n > max / 2 ? max : n * 2;
    void *q = realloc(p, n * size);
    if (q == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    *cap = n;
    return q;
}
