#include "common/pseudonym.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

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
