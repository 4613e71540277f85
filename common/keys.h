/*
 * Secret keys from files or the environment (never inline in a policy).
 * A key file holds at least 32 bytes: raw bytes, or hex (whitespace
 * ignored). The key id is the first 16 hex characters of SHA-256(key): safe
 * to log and record, and it changes when the key rotates.
 */
#ifndef BG_KEYS_H
#define BG_KEYS_H

#include <stddef.h>

/* Load a key from FILE or from the environment variable ENV (hex). Exactly
 * one of them is non-NULL. Writes up to CAP bytes to KEY, *LEN, and ID
 * (17 bytes). 0, or -1 with ERR ("FILE: key shorter than 32 bytes"). */
int bg_key_load(const char *file, const char *env, unsigned char *key, size_t cap, size_t *len,
                char *id, char *err, size_t errcap);

/* The key id of KEY. */
void bg_key_id(const unsigned char *key, size_t len, char *id);

#endif
