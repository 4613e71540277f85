/*
 * Checkpoint keys: loading from a file, an environment variable or memory;
 * key id; wiping. Error texts never contain key material.
 */
#include "audit/audit.h"
#include "audit/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/hex.h"

void bg_audit_key_wipe(bg_audit_key_t *key)
{
    if (key == NULL)
        return;
    explicit_bzero(key, sizeof *key);
}

/* 1 when S[0..N) is an even number (>= 64) of hex digits. */
static int looks_hex(const unsigned char *s, size_t n)
{
    if (n < 2 * BG_AUDIT_KEY_MIN || n % 2 != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (bg_hex_digit(s[i]) < 0)
            return 0;
    return 1;
}

int bg_audit_key_from_bytes(const void *data, size_t len, bg_audit_key_t *key, char *err,
                            size_t errcap)
{
    const unsigned char *p = data;
    size_t n = len;
    memset(key, 0, sizeof *key);
    /* Hex may carry one trailing newline (echo > file). */
    size_t hn = n;
    if (hn > 0 && p[hn - 1] == '\n')
        hn--;
    if (hn > 0 && p[hn - 1] == '\r')
        hn--;
    if (looks_hex(p, hn)) {
        if (hn / 2 > BG_AUDIT_KEY_MAX) {
            snprintf(err, errcap, "key is longer than %d bytes", BG_AUDIT_KEY_MAX);
            return -1;
        }
        for (size_t i = 0; i < hn / 2; i++)
            key->bytes[i] =
                (unsigned char)(bg_hex_digit(p[2 * i]) * 16 + bg_hex_digit(p[2 * i + 1]));
        key->len = hn / 2;
    } else {
        if (n < BG_AUDIT_KEY_MIN) {
            snprintf(err, errcap,
                     "key is too short: %zu bytes, at least %d needed (or %d hex digits)", n,
                     BG_AUDIT_KEY_MIN, 2 * BG_AUDIT_KEY_MIN);
            return -1;
        }
        if (n > BG_AUDIT_KEY_MAX) {
            snprintf(err, errcap, "key is longer than %d bytes", BG_AUDIT_KEY_MAX);
            return -1;
        }
        memcpy(key->bytes, p, n);
        key->len = n;
    }
    bg_audit_chain_key_id(key->bytes, key->len, key->id);
    return 0;
}

int bg_audit_key_from_file(const char *path, bg_audit_key_t *key, char *err, size_t errcap)
{
    unsigned char buf[2 * BG_AUDIT_KEY_MAX + 4];
    char resolved[4096];
    memset(key, 0, sizeof *key);
    const char *rp = bg_key_file_path(path, resolved, sizeof resolved); /* LoadCredential= */
    int fd = rp != NULL ? open(rp, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        snprintf(err, errcap, "cannot open key file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "key file %s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH))
        bg_warn("audit key file %s is accessible to other users (mode %03o); chmod 600 it", path,
                (unsigned)(st.st_mode & 0777));
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errcap, "cannot read key file %s: %s", path, strerror(errno));
            close(fd);
            explicit_bzero(buf, sizeof buf);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf) {
            snprintf(err, errcap, "key file %s is too large (at most %d bytes of key)", path,
                     BG_AUDIT_KEY_MAX);
            close(fd);
            explicit_bzero(buf, sizeof buf);
            return -1;
        }
    }
    close(fd);
    char sub[200];
    int rc = bg_audit_key_from_bytes(buf, n, key, sub, sizeof sub);
    explicit_bzero(buf, sizeof buf);
    if (rc != 0)
        snprintf(err, errcap, "key file %s: %s", path, sub);
    return rc;
}

int bg_audit_key_from_env(const char *name, bg_audit_key_t *key, char *err, size_t errcap)
{
    memset(key, 0, sizeof *key);
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        snprintf(err, errcap, "environment variable %s is not set", name);
        return -1;
    }
    char sub[200];
    if (bg_audit_key_from_bytes(v, strlen(v), key, sub, sizeof sub) != 0) {
        snprintf(err, errcap, "environment variable %s: %s", name, sub);
        return -1;
    }
    return 0;
}
