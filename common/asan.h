/*
 * BG_ASAN: 1 when the build has AddressSanitizer (GCC's or Clang's), else
 * 0. Caches that hand freed memory out again are off under it, so it still
 * sees every use of memory after its free; tests that measure memory skip.
 */
#ifndef BG_ASAN_H
#define BG_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define BG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BG_ASAN 1
#endif
#endif
#ifndef BG_ASAN
#define BG_ASAN 0
#endif

#endif
