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

#endif
