#include "common/keys.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/util.h"
#include "common/hex.h"

const char *bg_key_file_path(const char *path, char *buf, size_t cap)
{
    size_t pl = sizeof BG_KEY_CREDENTIALS_PREFIX - 1;
    if (strncmp(path, BG_KEY_CREDENTIALS_PREFIX, pl) != 0)
        return path;
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (dir == NULL || dir[0] == '\0') {
        errno = ENOENT;
        return NULL;
    }
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, path + pl) >= cap) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return buf;
}

void bg_key_id(const unsigned char *key, size_t len, char *id)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(key, len, d);
    bg_hex_encode(d, 8, id);
}

int bg_key_load(const char *file, const char *env, unsigned char *key, size_t cap, size_t *len,
                char *id, char *err, size_t errcap)
{
    size_t n = 0;
    char *text = NULL;
    const char *what = file != NULL ? file : env;
    char resolved[4096];
    if (file != NULL && bg_key_file_path(file, resolved, sizeof resolved) == NULL) {
        snprintf(err, errcap, "%s: %s (CREDENTIALS_DIRECTORY is set by systemd's LoadCredential=)",
                 file, strerror(errno));
        return -1;
    }
    if (file != NULL) {
        text = bg_util_read_file(bg_key_file_path(file, resolved, sizeof resolved), &n);
        if (text == NULL) {
            snprintf(err, errcap, "%s: cannot read key file: %s", file, strerror(errno));
            return -1;
        }
    } else {
        const char *v = getenv(env);
        if (v == NULL || *v == '\0') {
            snprintf(err, errcap, "environment variable %s (key) is not set", env);
            return -1;
        }
        text = strdup(v);
        n = strlen(v);
        if (text == NULL) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
    }
    /* TEXT is wiped by its length N: a raw key may hold NUL bytes, so strlen
     * would leave the rest of it in freed memory. */
    long h = bg_hex_decode(text, n, key, cap, 1);
    if (h < 0) {
        if (env != NULL) {
            snprintf(err, errcap, "%s: key must be hex", what);
            bg_util_wipe(key, cap); /* what bg_hex_decode decoded before the non-hex */
            bg_util_wipe(text, n);
            free(text);
            return -1;
        }
        size_t raw = n < cap ? n : cap;
        memcpy(key, text, raw); /* raw bytes */
        h = (long)raw;
    }
    bg_util_wipe(text, n);
    free(text);
    if (h < 32) {
        snprintf(err, errcap, "%s: key shorter than 32 bytes", what);
        bg_util_wipe(key, cap);
        return -1;
    }
    *len = (size_t)h;
    bg_key_id(key, *len, id);
    return 0;
}
