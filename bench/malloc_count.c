/*
 * malloc_count.so: an LD_PRELOAD counter of heap calls, for measuring
 * allocations per request (bench/allocs_per_request.sh).
 *
 * Counts malloc, calloc, realloc, free, posix_memalign and aligned_alloc
 * calls of every thread into a shared file (MALLOC_COUNT_FILE, six
 * little-endian uint64 in this order), updated with relaxed atomics, so a
 * benchmark reads the totals from outside at any moment and divides the
 * difference by the requests it sent. Forwards to glibc's __libc_* entry
 * points (no dlsym, which itself allocates). Without MALLOC_COUNT_FILE the
 * counts go to an anonymous page and are lost. Not for production: it adds
 * an atomic add per call.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t a, size_t n);

enum { C_MALLOC, C_CALLOC, C_REALLOC, C_FREE, C_MEMALIGN, C_N };
static uint64_t fallback[C_N];
static uint64_t *counts = fallback;

__attribute__((constructor)) static void mc_init(void)
{
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (path == NULL)
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return;
    if (ftruncate(fd, 4096) == 0) {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED)
            counts = m;
    }
    close(fd);
}

static void bump(int i)
{
    __atomic_fetch_add(&counts[i], 1, __ATOMIC_RELAXED);
}

void *malloc(size_t n)
{
    bump(C_MALLOC);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    bump(C_CALLOC);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    bump(C_REALLOC);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p != NULL)
        bump(C_FREE);
    __libc_free(p);
}

int posix_memalign(void **out, size_t a, size_t n)
{
    bump(C_MEMALIGN);
    void *p = __libc_memalign(a, n);
    if (p == NULL)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t a, size_t n)
{
    bump(C_MEMALIGN);
    return __libc_memalign(a, n);
}
