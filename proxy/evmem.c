#include "proxy/evmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/asan.h"

/* Every block starts with its size, so free knows its class: 16 bytes keep
 * the block as aligned as malloc's. */
#define HDR 16
#define MIN_SHIFT 10                   /* 1 kB */
#define CLASSES 7                      /* 1, 2, 4 ... 64 kB */
#define EVMEM_KEEP 32                  /* blocks of one size */
#define EVMEM_KEEP_BYTES (512u * 1024) /* blocks of every size */

static _Thread_local int caching;
static _Thread_local void *kept[CLASSES][EVMEM_KEEP];
static _Thread_local int nkept[CLASSES];
static _Thread_local size_t kept_bytes;

/* The class of a block of N bytes: N one of the powers of two kept, or -1. */
static int class_of(size_t n)
{
    if (n < ((size_t)1 << MIN_SHIFT) || n > ((size_t)1 << (MIN_SHIFT + CLASSES - 1)) ||
        (n & (n - 1)) != 0)
        return -1;
    int c = 0;
    while (((size_t)1 << (MIN_SHIFT + c)) != n)
        c++;
    return c;
}

static size_t *header(void *p)
{
    return (size_t *)(void *)((char *)p - HDR);
}

void *bg_evmem_malloc(size_t n)
{
    int c = class_of(n);
    if (c >= 0 && nkept[c] > 0) {
        kept_bytes -= n;
        return kept[c][--nkept[c]];
    }
    if (n > SIZE_MAX - HDR)
        return NULL;
    char *h = malloc(n + HDR);
    if (h == NULL)
        return NULL;
    *(size_t *)(void *)h = n;
    return h + HDR;
}

void bg_evmem_free(void *p)
{
    if (p == NULL)
        return;
    size_t *h = header(p);
    int c = caching ? class_of(*h) : -1;
    if (c >= 0 && nkept[c] < EVMEM_KEEP && kept_bytes + *h <= EVMEM_KEEP_BYTES) {
        kept[c][nkept[c]++] = p;
        kept_bytes += *h;
        return;
    }
    free(h);
}

void *bg_evmem_realloc(void *p, size_t n)
{
    if (p == NULL)
        return bg_evmem_malloc(n);
    if (n > SIZE_MAX - HDR)
        return NULL;
    size_t *h = realloc(header(p), n + HDR);
    if (h == NULL)
        return NULL;
    *h = n;
    return (char *)h + HDR;
}

void bg_evmem_install(void)
{
#if !BG_ASAN
    event_set_mem_functions(bg_evmem_malloc, bg_evmem_realloc, bg_evmem_free);
#endif
}

void bg_evmem_thread_cache(void)
{
#if !BG_ASAN
    caching = 1;
#endif
}

void bg_evmem_thread_done(void)
{
    caching = 0;
    for (int c = 0; c < CLASSES; c++) {
        while (nkept[c] > 0)
            free(header(kept[c][--nkept[c]]));
    }
    kept_bytes = 0;
}

size_t bg_evmem_thread_kept(void)
{
    size_t n = 0;
    for (int c = 0; c < CLASSES; c++)
        n += (size_t)nkept[c];
    return n;
}
