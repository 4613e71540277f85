/*
 * libevent's allocations, with a small per-thread cache of freed buffer
 * chains for the worker threads.
 *
 * An evbuffer chain is 1, 2, 4 ... kB, allocated when data arrives or is
 * queued and freed when it is drained: several a request. glibc's per-thread
 * cache stops at about 1 kB, so every larger chain went through malloc's
 * shared bins (sorting, splitting, consolidating) twice a request. A worker
 * keeps freed chains of the power-of-two sizes from 1 kB to 64 kB (32 of a
 * size, 512 kB in all at most) and hands them out again; other threads, and
 * every other size, use malloc directly. Off under AddressSanitizer, which
 * must see every free.
 */
#ifndef BG_EVMEM_H
#define BG_EVMEM_H

#include <stddef.h>

/* Route libevent's allocations through this module. Call first in main(),
 * before any libevent function. */
void bg_evmem_install(void);
/* The calling thread keeps freed chains from now on (a worker, at its start). */
void bg_evmem_thread_cache(void);
/* The calling thread stops keeping chains and frees those it kept (a worker,
 * at its end). */
void bg_evmem_thread_done(void);
/* Chains the calling thread keeps now (tests). */
size_t bg_evmem_thread_kept(void);

/* The allocator itself, for its tests. */
void *bg_evmem_malloc(size_t n);
void *bg_evmem_realloc(void *p, size_t n);
void bg_evmem_free(void *p);

#endif
