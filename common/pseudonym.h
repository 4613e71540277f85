/*
 * Subject and value pseudonyms, the one home for them (issue 18): the
 * decision writes them into records and `audit subject` computes them from
 * the identifiers it is given, so both must be the same function. A
 * pseudonym is HMAC-SHA256(key, identifier) in lower-case hex: without the
 * key it cannot be reversed or recomputed.
 */
#ifndef BG_PSEUDONYM_H
#define BG_PSEUDONYM_H

#include <stddef.h>

#define BG_PSEUDONYM_LEN 64 /* hex characters */

/* The pseudonym of ID[0..LEN) under KEY[0..KEYLEN) into OUT, NUL-terminated.
 * Returns 0, or -1 with OUT "" when there is no key (KEYLEN 0) or HMAC
 * failed: a record then says the subject is unknown rather than hold a raw
 * identifier. */
int bg_pseudonym(const unsigned char *key, size_t keylen, const char *id, size_t len,
                 char out[BG_PSEUDONYM_LEN + 1]);

/* A pseudonym key prepared once for many pseudonyms: the consent look-up
 * computes one per request in every worker thread. The SHA-256 states after
 * the inner and outer key blocks are precomputed (RFC 2104) and copied per
 * call, so a pseudonym costs two compressions and no allocation; the key
 * itself is not kept. Opaque; one per key. */
typedef struct bg_pseudonym_key bg_pseudonym_key_t;

/* Prepare KEY[0..KEYLEN) (KEYLEN > 0). NULL on ENOMEM or a digest failure;
 * the caller wipes its own copy of the key. */
bg_pseudonym_key_t *bg_pseudonym_key_new(const void *key, size_t keylen);

/* HMAC-SHA256(key, MSG[0..LEN)) as 32 raw bytes into OUT: the bytes whose
 * hex is bg_pseudonym() under the same key. 0/-1. Thread-safe: K is only
 * read. */
int bg_pseudonym_mac(const bg_pseudonym_key_t *k, const void *msg, size_t len,
                     unsigned char out[32]);

/* Wipe and free K (NULL is fine). */
void bg_pseudonym_key_free(bg_pseudonym_key_t *k);

#endif
