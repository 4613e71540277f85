#include "common/pseudonym.h"

/*
 * The prepared key (bg_pseudonym_key_t) is computed on every look-up, in
 * every worker thread. OpenSSL 3's EVP digests are the wrong tool for that:
 * each EVP_MD_CTX copy allocates and takes a reference on the one
 * process-wide EVP_MD, and with two threads HMAC became slower than with one
 * (0.28 -> 0.68 us per call). SHA256_CTX is a plain struct: the precomputed
 * key states are copied with memcpy (0.15 us, no shared writes). Those
 * functions are deprecated in OpenSSL 3 but still built by every
 * distribution; an OpenSSL configured with no-deprecated gets the EVP code
 * instead.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/util.h"

int bg_pseudonym(const unsigned char *key, size_t keylen, const char *id, size_t len,
                 char out[BG_PSEUDONYM_LEN + 1])
{
    unsigned char mac[32];
    unsigned int ml = 0;
    out[0] = '\0';
    if (keylen == 0 || keylen > (size_t)2147483647 ||
        HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)id, len, mac, &ml) == NULL ||
        ml != sizeof mac)
        return -1;
    bg_hex_encode(mac, sizeof mac, out);
    bg_util_wipe(mac, sizeof mac);
    return 0;
}

/* The SHA-256 states after the inner (key ^ ipad) and outer (key ^ opad)
 * blocks. */
struct bg_pseudonym_key {
#ifndef OPENSSL_NO_DEPRECATED_3_0
    SHA256_CTX inner, outer;
#else
    EVP_MD_CTX *inner, *outer;
#endif
};

void bg_pseudonym_key_free(bg_pseudonym_key_t *h)
{
    if (h == NULL)
        return;
#ifdef OPENSSL_NO_DEPRECATED_3_0
    EVP_MD_CTX_free(h->inner); /* cleanses the key-derived state */
    EVP_MD_CTX_free(h->outer);
#endif
    bg_util_wipe(h, sizeof *h);
    free(h);
}

bg_pseudonym_key_t *bg_pseudonym_key_new(const void *key, size_t keylen)
{
    unsigned char k[64], pad[2][64];
    int ok = 0;
    bg_pseudonym_key_t *h = calloc(1, sizeof *h);
    if (h == NULL || keylen == 0)
        goto done;
    memset(k, 0, sizeof k);
    if (keylen > sizeof k) {
        unsigned int n = 0;
        if (EVP_Digest(key, keylen, k, &n, EVP_sha256(), NULL) != 1)
            goto done;
    } else {
        memcpy(k, key, keylen);
    }
    for (size_t i = 0; i < sizeof k; i++) {
        pad[0][i] = k[i] ^ 0x36;
        pad[1][i] = k[i] ^ 0x5c;
    }
#ifndef OPENSSL_NO_DEPRECATED_3_0
    ok = SHA256_Init(&h->inner) == 1 && SHA256_Update(&h->inner, pad[0], 64) == 1 &&
         SHA256_Init(&h->outer) == 1 && SHA256_Update(&h->outer, pad[1], 64) == 1;
#else
    h->inner = EVP_MD_CTX_new();
    h->outer = EVP_MD_CTX_new();
    ok = h->inner != NULL && h->outer != NULL &&
         EVP_DigestInit_ex(h->inner, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(h->inner, pad[0], 64) == 1 &&
         EVP_DigestInit_ex(h->outer, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(h->outer, pad[1], 64) == 1;
#endif
done:
    bg_util_wipe(k, sizeof k);
    bg_util_wipe(pad, sizeof pad);
    if (!ok) {
        bg_pseudonym_key_free(h);
        return NULL;
    }
    return h;
}

int bg_pseudonym_mac(const bg_pseudonym_key_t *h, const void *msg, size_t len,
                     unsigned char out[32])
{
    unsigned char ih[32];
    int ok;
#ifndef OPENSSL_NO_DEPRECATED_3_0
    SHA256_CTX c = h->inner;
    ok = SHA256_Update(&c, msg, len) == 1 && SHA256_Final(ih, &c) == 1;
    c = h->outer;
    ok = ok && SHA256_Update(&c, ih, sizeof ih) == 1 && SHA256_Final(out, &c) == 1;
    bg_util_wipe(&c, sizeof c);
#else
    unsigned int n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    ok = c != NULL && EVP_MD_CTX_copy_ex(c, h->inner) == 1 && EVP_DigestUpdate(c, msg, len) == 1 &&
         EVP_DigestFinal_ex(c, ih, &n) == 1 && EVP_MD_CTX_copy_ex(c, h->outer) == 1 &&
         EVP_DigestUpdate(c, ih, sizeof ih) == 1 && EVP_DigestFinal_ex(c, out, &n) == 1;
    EVP_MD_CTX_free(c);
#endif
    bg_util_wipe(ih, sizeof ih);
    return ok ? 0 : -1;
}
