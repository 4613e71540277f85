/*
 * Small helpers shared by every module: ids, clocks, bounded string work.
 */
#ifndef BG_UTIL_H
#define BG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define BG_ID_LEN 32 /* hex characters in a request/decision id */

/* Fill OUT (BG_ID_LEN+1 bytes) with a random 128-bit id in lowercase hex. */
void bg_util_random_id(char *out);
/* Fill BUF with N cryptographically random bytes. 0/-1. */
int bg_util_random_bytes(void *buf, size_t n);

/* Monotonic clock in microseconds / wall clock in milliseconds. */
uint64_t bg_util_mono_us(void);
uint64_t bg_util_wall_ms(void);
/* RFC 3339 UTC time with milliseconds into OUT (>= 32 bytes). */
void bg_util_format_time(uint64_t wall_ms, char *out, size_t cap);

/* Case-insensitive ASCII equality of a length-delimited string with Z. */
int bg_util_ieq(const char *s, size_t n, const char *z);
/* Case-insensitive ASCII prefix test. */
int bg_util_iprefix(const char *s, size_t n, const char *prefix);

/* Parse "host:port", "[v6]:port" or "port" into OUT (numeric host only).
 * Returns 0, or -1 with ERR (>= 128 bytes) filled. */
int bg_util_parse_sockaddr(const char *s, struct sockaddr_storage *out, socklen_t *len, char *err,
                           size_t errcap);
/* Render SA as "a.b.c.d" / "v6" (no port) into OUT. */
void bg_util_addr_string(const struct sockaddr *sa, char *out, size_t cap);
/* The strings of PARTS (ended by NULL) one after another in OUT (CAP > 0
 * bytes, always NUL-terminated), cut to fit as snprintf("%s%s...") cuts
 * them, without printf: its length. bg_util_cat(out, cap, a, b, ...) for
 * short lists. */
size_t bg_util_concat(char *out, size_t cap, const char *const *parts);
#define bg_util_cat(out, cap, ...)                                                                 \
    bg_util_concat((out), (cap), (const char *const[]){__VA_ARGS__, NULL})
/* Port of SA in host order. */
int bg_util_addr_port(const struct sockaddr *sa);

/* Read a whole file into a NUL-terminated buffer, *LEN its length (the file
 * may hold NUL bytes); caller frees, wiping *LEN bytes first when it is a
 * secret. No other copy is left in freed memory (the buffer grows by copy
 * and wipe, and only when the file outgrew its fstat size). NULL with errno
 * set on failure. */
char *bg_util_read_file(const char *path, size_t *len);

/* Read FP (a pipe, standard input, a file) to its end into a malloc'd
 * NUL-terminated buffer, *LEN its length. MAX: the most bytes accepted (0:
 * no limit). NULL with errno ENOMEM, EFBIG (more than MAX bytes) or the
 * read's error; FP is left open either way. Not for secrets (the buffer
 * grows by realloc). */
char *bg_util_read_stream(FILE *fp, size_t max, size_t *len);

/* Overwrite N bytes of P in a way the compiler will not elide. */
void bg_util_wipe(void *p, size_t n);

#endif
