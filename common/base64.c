#include "common/base64.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

size_t bg_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t bg_base64_encode(const unsigned char *in, size_t n, char *out, unsigned flags)
{
    /* EVP_EncodeBlock takes an int count: encode in pieces of whole groups
     * (a multiple of 3 bytes, so no padding inside). */
    const size_t piece = 3u << 20;
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i += piece) {
        size_t k = n - i < piece ? n - i : piece;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, in + i, (int)k);
    }
    if (flags & BG_B64_URL) {
        for (size_t i = 0; i < o; i++)
            out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
        while (o > 0 && out[o - 1] == '=')
            out[--o] = '\0';
    }
    return o;
}

/* C as a character of the standard alphabet, given FLAGS; 0 when not one. */
static char standard_char(unsigned char c, unsigned flags)
{
    int url = (flags & (BG_B64_URL | BG_B64_ANY)) != 0;
    int std = !(flags & BG_B64_URL) || (flags & BG_B64_ANY);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return (char)c;
    if ((c == '+' || c == '/') && std)
        return (char)c;
    if (c == '-' && url)
        return '+';
    if (c == '_' && url)
        return '/';
    return 0;
}

long bg_base64_decode(const char *s, size_t n, unsigned char *out, size_t cap, unsigned flags)
{
    /* What OpenSSL reads: the standard alphabet, padded to whole groups. */
    char *t = malloc(n + 4);
    if (t == NULL)
        return -1;
    size_t k = 0, pad = 0;
    long res = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((flags & BG_B64_SKIP_SPACE) && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
            continue;
        if (c == '=') {
            if (flags & BG_B64_NO_PAD)
                goto out;
            pad++;
            continue;
        }
        char sc = standard_char(c, flags);
        if (sc == 0 || pad > 0)
            goto out; /* outside the alphabet, or data after '=' */
        t[k++] = sc;
    }
    size_t rest = k % 4;
    if (rest == 1 || pad > 2 || (pad > 0 && (rest == 0 || rest + pad != 4)))
        goto out;
    size_t missing = rest == 0 ? 0 : 4 - rest;
    for (size_t i = 0; i < missing; i++)
        t[k++] = '=';
    size_t need = k / 4 * 3 - missing;
    if (need > cap)
        goto out;
    /* EVP_DecodeBlock writes whole groups (padding as zero bytes) and takes
     * an int count: the groups before the last straight into OUT, in
     * pieces, the last one through G so its padding bytes are not written. */
    const size_t piece = 4u << 20;
    size_t o = 0, body = k >= 4 ? k - 4 : 0;
    for (size_t i = 0; i < body; i += piece) {
        size_t len = body - i < piece ? body - i : piece;
        if (EVP_DecodeBlock(out + o, (const unsigned char *)t + i, (int)len) != (int)(len / 4 * 3))
            goto out;
        o += len / 4 * 3;
    }
    unsigned char g[3];
    if (k > 0) {
        if (EVP_DecodeBlock(g, (const unsigned char *)t + body, 4) != 3)
            goto out;
        memcpy(out + o, g, 3 - missing);
        o += 3 - missing;
    }
    res = (long)o;
out:
    free(t);
    return res;
}
