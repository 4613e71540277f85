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

/*
 * A key file path as written in the configuration, resolved: a path that
 * starts with "$CREDENTIALS_DIRECTORY/" names a systemd credential
 * (LoadCredential= in the unit; systemd sets CREDENTIALS_DIRECTORY for the
 * service) and becomes that directory's file. Other paths are returned
 * as they are. Returns PATH or BUF (CAP bytes); NULL with errno ENOENT
 * when the variable is not set, ENAMETOOLONG when BUF is too small.
 */
#define BG_KEY_CREDENTIALS_PREFIX "$CREDENTIALS_DIRECTORY/"
const char *bg_key_file_path(const char *path, char *buf, size_t cap);

/* The key id of KEY. */
void bg_key_id(const unsigned char *key, size_t len, char *id);

#endif
