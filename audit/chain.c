/*
 * The hash chain: line format, hashing, checkpoint signatures. See chain.h
 * for the exact bytes that are hashed.
 */
/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP,
 * but EVP_DigestInit allocates a provider context per call in 3.0 (and
 * EVP_sha256() fetches per call): the chain hashes two records per request,
 * so it uses the allocation-free low-level API. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit/chain.h"
#include "common/hex.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

const char bg_audit_chain_genesis[BG_AUDIT_HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static const char CKPT_DOMAIN[] = "bordergate-audit-checkpoint-v1\n";

/* ------------------------------------------------------------------------
 * Buffer
 * ------------------------------------------------------------------------ */

/* Room for EXTRA more bytes in B. 0, or -1 (ENOMEM). */
static int buf_reserve(bg_audit_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra && b->data != NULL)
        return 0;
    size_t want = b->len + extra;
    if (want < b->len) {
        errno = ENOMEM;
        return -1;
    }
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < want) {
        if (cap > SIZE_MAX / 2) {
            cap = want;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int bg_audit_buf_add(bg_audit_buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void bg_audit_buf_free(bg_audit_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------
 * Hex
 * ------------------------------------------------------------------------ */

/* 1 when S[0..N) is lowercase hex (the only form a record carries). */
static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    return 1;
}

int bg_audit_ct_equal(const char *a, const char *b, size_t n)
{
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* ------------------------------------------------------------------------
 * Chain
 * ------------------------------------------------------------------------ */

struct bg_audit_chain {
    uint64_t next_seq;
    char prev[BG_AUDIT_HEX_LEN + 1];
};

bg_audit_chain_t *bg_audit_chain_new(uint64_t next_seq, const char *prev_hex)
{
    bg_audit_chain_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    bg_audit_chain_set(c, next_seq, prev_hex);
    return c;
}

void bg_audit_chain_free(bg_audit_chain_t *c)
{
    if (c == NULL)
        return;
    free(c);
}

uint64_t bg_audit_chain_next_seq(const bg_audit_chain_t *c)
{
    return c->next_seq;
}

const char *bg_audit_chain_prev(const bg_audit_chain_t *c)
{
    return c->prev;
}

void bg_audit_chain_set(bg_audit_chain_t *c, uint64_t next_seq, const char *prev_hex)
{
    c->next_seq = next_seq;
    memcpy(c->prev, prev_hex != NULL ? prev_hex : bg_audit_chain_genesis, BG_AUDIT_HEX_LEN);
    c->prev[BG_AUDIT_HEX_LEN] = '\0';
}

/* SHA-256(prev "\n" covered "}") into HEX (65 bytes). 0/-1. No allocation. */
static int chain_digest(const char *prev, const char *covered, size_t len, char *hex)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX ctx;
    if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, prev, BG_AUDIT_HEX_LEN) != 1 ||
        SHA256_Update(&ctx, "\n", 1) != 1 || SHA256_Update(&ctx, covered, len) != 1 ||
        SHA256_Update(&ctx, "}", 1) != 1 || SHA256_Final(md, &ctx) != 1)
        return -1;
    bg_hex_encode(md, 32, hex);
    return 0;
}

int bg_audit_chain_append(bg_audit_chain_t *c, bg_audit_buf_t *out, const char *const *parts,
                          const size_t *lens, size_t nparts, char *hash_out)
{
    /* {"seq":N,"prev":"HEX" without printf (two records per request). */
    char head[128], digits[24]; /* 7 + 20 + 9 + 64 + 1 bytes at most */
    size_t nd = 0, hn = 0;
    uint64_t v = c->next_seq;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    memcpy(head, "{\"seq\":", 7); // NOLINT(bugprone-not-null-terminated-result): counted by hn
    hn = 7;
    while (nd > 0)
        head[hn++] = digits[--nd];
    memcpy(head + hn, ",\"prev\":\"", 9); // NOLINT(bugprone-not-null-terminated-result): same
    hn += 9;
    memcpy(head + hn, c->prev, BG_AUDIT_HEX_LEN);
    hn += BG_AUDIT_HEX_LEN;
    head[hn++] = '"';
    size_t need = hn + BG_AUDIT_HASH_TAIL_LEN + 1;
    for (size_t i = 0; i < nparts; i++)
        need += lens[i] + 1;
    size_t start = out->len;
    if (buf_reserve(out, need) != 0)
        return -1;
    memcpy(out->data + out->len, head, hn);
    out->len += hn;
    for (size_t i = 0; i < nparts; i++) {
        if (lens[i] == 0)
            continue;
        out->data[out->len++] = ',';
        memcpy(out->data + out->len, parts[i], lens[i]);
        out->len += lens[i];
    }
    char hex[BG_AUDIT_HEX_LEN + 1];
    if (chain_digest(c->prev, out->data + start, out->len - start, hex) != 0) {
        out->len = start;
        errno = EIO;
        return -1;
    }
    memcpy(out->data + out->len, ",\"hash\":\"", 9);
    memcpy(out->data + out->len + 9, hex, BG_AUDIT_HEX_LEN);
    memcpy(out->data + out->len + 9 + BG_AUDIT_HEX_LEN, "\"}\n", 3);
    out->len += BG_AUDIT_HASH_TAIL_LEN + 1;
    c->next_seq++;
    memcpy(c->prev, hex, sizeof hex);
    if (hash_out != NULL)
        memcpy(hash_out, hex, sizeof hex);
    return 0;
}

int bg_audit_chain_parse_line(const char *line, size_t len, bg_audit_line_t *out)
{
    static const char head[] = "{\"seq\":";
    static const char prevkey[] = ",\"prev\":\"";
    const size_t hl = sizeof head - 1, pl = sizeof prevkey - 1;
    if (len < hl + 1 + pl + BG_AUDIT_HEX_LEN + 1 + BG_AUDIT_HASH_TAIL_LEN)
        return -1;
    if (memcmp(line, head, hl) != 0)
        return -1;
    size_t i = hl;
    uint64_t seq = 0;
    size_t digits = 0;
    while (i < len && line[i] >= '0' && line[i] <= '9') {
        unsigned d = (unsigned)(line[i] - '0');
        if (digits == 0 && d == 0 && i + 1 < len && line[i + 1] >= '0' && line[i + 1] <= '9')
            return -1; /* leading zero */
        if (seq > (UINT64_MAX - d) / 10)
            return -1;
        seq = seq * 10 + d;
        digits++;
        i++;
    }
    if (digits == 0 || digits > 20)
        return -1;
    if (len - i < pl + BG_AUDIT_HEX_LEN + 1 + BG_AUDIT_HASH_TAIL_LEN)
        return -1;
    if (memcmp(line + i, prevkey, pl) != 0)
        return -1;
    i += pl;
    if (!is_lower_hex(line + i, BG_AUDIT_HEX_LEN) || line[i + BG_AUDIT_HEX_LEN] != '"')
        return -1;
    memcpy(out->prev, line + i, BG_AUDIT_HEX_LEN);
    out->prev[BG_AUDIT_HEX_LEN] = '\0';
    i += BG_AUDIT_HEX_LEN + 1;

    size_t t = len - BG_AUDIT_HASH_TAIL_LEN;
    if (t < i || memcmp(line + t, ",\"hash\":\"", 9) != 0 ||
        !is_lower_hex(line + t + 9, BG_AUDIT_HEX_LEN) ||
        memcmp(line + t + 9 + BG_AUDIT_HEX_LEN, "\"}", 2) != 0)
        return -1;
    memcpy(out->hash, line + t + 9, BG_AUDIT_HEX_LEN);
    out->hash[BG_AUDIT_HEX_LEN] = '\0';
    out->seq = seq;
    out->covered_len = t;
    return 0;
}

int bg_audit_chain_rehash(bg_audit_chain_t *c, const char *line, const bg_audit_line_t *pl,
                          char *hex_out)
{
    if (chain_digest(pl->prev, line, pl->covered_len, hex_out) != 0) {
        hex_out[0] = '\0';
        return 0;
    }
    return bg_audit_ct_equal(hex_out, pl->hash, BG_AUDIT_HEX_LEN);
}

int bg_audit_chain_hmac(const unsigned char *key, size_t keylen, const char *chain_hex,
                        char *hex_out)
{
    unsigned char msg[sizeof CKPT_DOMAIN - 1 + BG_AUDIT_HEX_LEN];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    memcpy(msg, CKPT_DOMAIN, sizeof CKPT_DOMAIN - 1);
    memcpy(msg + sizeof CKPT_DOMAIN - 1, chain_hex, BG_AUDIT_HEX_LEN);
    if (keylen > INT32_MAX ||
        HMAC(EVP_sha256(), key, (int)keylen, msg, sizeof msg, md, &mdlen) == NULL || mdlen != 32)
        return -1;
    bg_hex_encode(md, 32, hex_out);
    return 0;
}

void bg_audit_chain_key_id(const unsigned char *key, size_t keylen, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[65];
    if (EVP_Digest(key, keylen, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        memcpy(out, "00000000", 9);
        return;
    }
    bg_hex_encode(md, 4, hex);
    memcpy(out, hex, 9);
}
