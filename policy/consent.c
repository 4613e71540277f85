/*
 * Consent registry front end: subject pseudonyms, validation, consent ids,
 * the scope matcher every backend shares, times and JSON. Storage lives
 * behind bg_consent_backend_t (policy/consent_file.c is the default).
 */
#include "policy/consent.h"

/*
 * Subject pseudonyms are computed on every look-up, in every worker thread.
 * OpenSSL 3's EVP digests are the wrong tool for that: each EVP_MD_CTX copy
 * allocates and takes a reference on the one process-wide EVP_MD, and with
 * two threads HMAC became slower than with one (0.28 -> 0.68 us per call).
 * SHA256_CTX is a plain struct: the precomputed key states are copied with
 * memcpy (0.15 us, no shared writes). Those functions are deprecated in
 * OpenSSL 3 but still built by every distribution; an OpenSSL configured
 * with no-deprecated gets the EVP code below instead.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"

/* HMAC-SHA-256 with a fixed key, precomputed (RFC 2104): the SHA-256
 * states after the inner (key ^ ipad) and outer (key ^ opad) blocks. The
 * key itself is not kept. */
typedef struct {
    int set;
#ifndef OPENSSL_NO_DEPRECATED_3_0
    SHA256_CTX inner, outer;
#else
    EVP_MD_CTX *inner, *outer;
#endif
} hmac_key_t;

struct bg_consent_reg {
    bg_consent_backend_t *be; /* owned */
    hmac_key_t key;           /* unset when opened without a key */
};

#define KEY_CHECK_LABEL "bordergate consent key check v1"
#define GRANT_ID_TRIES 8
/* 9999-12-31T23:59:59.999Z */
#define TIME_MAX_MS 253402300799999LL

/* ------------------------------------------------------------------------
 * HMAC-SHA-256
 * ------------------------------------------------------------------------ */

static void hmac_free(hmac_key_t *h)
{
#ifdef OPENSSL_NO_DEPRECATED_3_0
    EVP_MD_CTX_free(h->inner); /* cleanses the key-derived state */
    EVP_MD_CTX_free(h->outer);
#endif
    bg_util_wipe(h, sizeof *h);
}

static int hmac_init(hmac_key_t *h, const void *key, size_t keylen)
{
    unsigned char k[64], pad[2][64];
    int ok = 0;
    memset(h, 0, sizeof *h);
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
        hmac_free(h);
        return -1;
    }
    h->set = 1;
    return 0;
}

/* Thread-safe: the shared states are only read. */
static int hmac_run(const hmac_key_t *h, const void *msg, size_t len,
                    uint8_t out[BG_CONSENT_PSEUDONYM_LEN])
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

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly N lowercase hex digits. */
static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[n] == '\0';
}

int bg_consent_key_check(const void *key, size_t keylen, char out[BG_CONSENT_KEY_CHECK_SIZE])
{
    hmac_key_t h;
    uint8_t mac[BG_CONSENT_PSEUDONYM_LEN];
    if (key == NULL || keylen < BG_CONSENT_KEY_MIN || keylen > BG_CONSENT_KEY_MAX)
        return -1;
    if (hmac_init(&h, key, keylen) != 0)
        return -1;
    int rc = hmac_run(&h, KEY_CHECK_LABEL, strlen(KEY_CHECK_LABEL), mac);
    hmac_free(&h);
    if (rc != 0)
        return -1;
    hex_encode(mac, 8, out);
    return 0;
}

int bg_consent_pseudonymize(const bg_consent_reg_t *reg, const char *subject, size_t len,
                            uint8_t out[BG_CONSENT_PSEUDONYM_LEN])
{
    if (!reg->key.set || subject == NULL)
        return -1;
    return hmac_run(&reg->key, subject, len, out);
}

/* ------------------------------------------------------------------------
 * Key files
 * ------------------------------------------------------------------------ */

int bg_consent_key_load(const char *path, uint8_t *key, size_t cap, char *warn, size_t warncap,
                        char *err, size_t errcap)
{
    struct stat st;
    size_t len = 0;
    int n = -1;
    char *text = NULL;
    if (warn != NULL && warncap > 0)
        warn[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errcap, "key file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "key file %s: not a regular file", path);
        goto done;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errcap, "key file %s: writable by group or others (chmod 600)", path);
        goto done;
    }
    if ((st.st_mode & S_IROTH) && warn != NULL)
        snprintf(warn, warncap, "key file %s is readable by others (chmod 600 advised)", path);
    if (st.st_size > 65536) {
        snprintf(err, errcap, "key file %s: larger than 64 KiB, not a key", path);
        goto done;
    }
    text = bg_util_read_file(path, &len);
    if (text == NULL) {
        snprintf(err, errcap, "key file %s: %s", path, strerror(errno));
        goto done;
    }
    /* Hex if the trimmed text is nothing but an even number of hex digits. */
    size_t b = 0, e = len;
    while (b < e && isspace((unsigned char)text[b]))
        b++;
    while (e > b && isspace((unsigned char)text[e - 1]))
        e--;
    int all_hex = e > b && (e - b) % 2 == 0;
    for (size_t i = b; all_hex && i < e; i++)
        all_hex = hex_val((unsigned char)text[i]) >= 0;
    if (all_hex && e - b >= 2 * BG_CONSENT_KEY_MIN) {
        size_t kl = (e - b) / 2;
        if (kl > cap || kl > BG_CONSENT_KEY_MAX) {
            snprintf(err, errcap, "key file %s: key longer than %d bytes", path,
                     BG_CONSENT_KEY_MAX);
            goto done;
        }
        for (size_t i = 0; i < kl; i++)
            key[i] = (uint8_t)(hex_val((unsigned char)text[b + 2 * i]) << 4 |
                               hex_val((unsigned char)text[b + 2 * i + 1]));
        n = (int)kl;
    } else if (len >= BG_CONSENT_KEY_MIN && !all_hex) {
        if (len > cap || len > BG_CONSENT_KEY_MAX) {
            snprintf(err, errcap, "key file %s: key longer than %d bytes", path,
                     BG_CONSENT_KEY_MAX);
            goto done;
        }
        memcpy(key, text, len);
        n = (int)len;
    } else {
        snprintf(err, errcap,
                 "key file %s: too short (need %d raw bytes or %d hex digits; "
                 "`bordergate consent keygen FILE` makes one)",
                 path, BG_CONSENT_KEY_MIN, 2 * BG_CONSENT_KEY_MIN);
    }
done:
    if (text != NULL) {
        bg_util_wipe(text, len);
        free(text);
    }
    if (fd >= 0)
        close(fd);
    return n;
}

/* ------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------ */

int bg_consent_text_ok(const char *s, size_t max, int empty_ok)
{
    size_t n = strnlen(s, max + 1);
    if (n > max || (n == 0 && !empty_ok))
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        size_t len;
        unsigned cp;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp < 0xA0))
            return 0;
        i += len;
    }
    return 1;
}

static int region_ok(const char *r)
{
    if (strcmp(r, "*") == 0)
        return 1;
    return r[0] >= 'A' && r[0] <= 'Z' && r[1] >= 'A' && r[1] <= 'Z' && r[2] == '\0';
}

static int id_ok(const char *id)
{
    return id[0] == 'c' && id[1] == '-' && is_lower_hex(id + 2, 16);
}

static int time_ok(int64_t t)
{
    return t > 0 && t <= TIME_MAX_MS;
}

int bg_consent_validate(const bg_consent_t *c, char *err, size_t errcap)
{
    const char *bad = NULL;
    if (!id_ok(c->id))
        bad = "id must be \"c-\" and 16 lowercase hex digits";
    else if (!is_lower_hex(c->subject, 64))
        bad = "subject must be a 64-hex-digit pseudonym";
    else if (!bg_consent_text_ok(c->recipient, BG_CONSENT_NAME_MAX, 0))
        bad = "recipient must be 1-128 bytes of UTF-8 text without control characters";
    else if (!bg_consent_text_ok(c->purpose, BG_CONSENT_NAME_MAX, 0))
        bad = "purpose must be 1-128 bytes of UTF-8 text without control characters";
    else if (strcmp(c->recipient, "*") == 0 && strcmp(c->purpose, "*") == 0)
        bad = "recipient and purpose cannot both be \"*\": a separate consent names the "
              "recipient or the purpose (PIPL Art. 39)";
    else if (!region_ok(c->region))
        bad = "region must be an ISO 3166 alpha-2 code (\"US\") or \"*\"";
    else if ((c->sensitive != 0 && c->sensitive != 1) || (c->guardian != 0 && c->guardian != 1))
        bad = "sensitive and guardian must be true or false";
    else if (!time_ok(c->granted_at))
        bad = "granted_at must be a time between 1970 and 9999";
    else if (c->expires_at != 0 && (!time_ok(c->expires_at) || c->expires_at <= c->granted_at))
        bad = "expires_at must be later than granted_at";
    else if (c->withdrawn_at != 0 && (!time_ok(c->withdrawn_at) || c->withdrawn_at < c->granted_at))
        bad = "withdrawn_at must not be earlier than granted_at";
    else if (!bg_consent_text_ok(c->evidence, BG_CONSENT_EVIDENCE_MAX, 1))
        bad = "evidence must be at most 256 bytes of UTF-8 text without control characters";
    else if (!bg_consent_text_ok(c->recorded_by, BG_CONSENT_BY_MAX, 0))
        bad = "recorded_by must be 1-128 bytes of UTF-8 text without control characters";
    else if (!bg_consent_text_ok(c->withdrawn_by, BG_CONSENT_BY_MAX, c->withdrawn_at == 0) ||
             (c->withdrawn_at == 0 && c->withdrawn_by[0] != '\0'))
        bad = "withdrawn_by must be 1-128 bytes of text, and only on a withdrawn consent";
    if (bad == NULL)
        return BG_CONSENT_OK;
    snprintf(err, errcap, "%s", bad);
    return BG_CONSENT_EINVAL;
}

/* ------------------------------------------------------------------------
 * Matching
 * ------------------------------------------------------------------------ */

static int field_covers(const char *have, const char *want)
{
    if (have[0] == '*' && have[1] == '\0')
        return 1;
    return want != NULL && want[0] != '\0' && strcmp(have, want) == 0;
}

bg_consent_miss_t bg_consent_scope_eval(const bg_consent_scope_t *s, const bg_consent_query_t *q)
{
    /* Region codes are compared case-insensitively: geo answers "US", a
     * caller may pass "us". */
    int region = s->region[0] == '*' || (q->country != NULL && strlen(q->country) == 2 &&
                                         toupper((unsigned char)q->country[0]) == s->region[0] &&
                                         toupper((unsigned char)q->country[1]) == s->region[1]);
    if (!field_covers(s->recipient, q->recipient) || !field_covers(s->purpose, q->purpose) ||
        !region)
        return BG_CONSENT_MISS_SCOPE;
    if (q->need_sensitive && !s->sensitive)
        return BG_CONSENT_MISS_SENSITIVE;
    if (q->need_guardian && !s->guardian)
        return BG_CONSENT_MISS_GUARDIAN;
    if (q->at < s->granted_at)
        return BG_CONSENT_MISS_NOT_YET;
    if (s->withdrawn_at != 0 && q->at >= s->withdrawn_at)
        return BG_CONSENT_MISS_WITHDRAWN;
    if (s->expires_at != 0 && q->at >= s->expires_at)
        return BG_CONSENT_MISS_EXPIRED;
    return BG_CONSENT_MISS_NONE;
}

int bg_consent_scope_rank(const bg_consent_scope_t *s)
{
    return (strcmp(s->recipient, "*") != 0) + (strcmp(s->purpose, "*") != 0) +
           (strcmp(s->region, "*") != 0);
}

void bg_consent_scope_of(const bg_consent_t *c, bg_consent_scope_t *s)
{
    s->recipient = c->recipient;
    s->purpose = c->purpose;
    s->region = c->region;
    s->sensitive = c->sensitive;
    s->guardian = c->guardian;
    s->granted_at = c->granted_at;
    s->expires_at = c->expires_at;
    s->withdrawn_at = c->withdrawn_at;
}

const char *bg_consent_status(const bg_consent_t *c, int64_t now)
{
    if (c->withdrawn_at != 0 && now >= c->withdrawn_at)
        return "withdrawn";
    if (c->expires_at != 0 && now >= c->expires_at)
        return "expired";
    if (now < c->granted_at)
        return "pending";
    return "valid";
}

const char *bg_consent_miss_name(bg_consent_miss_t miss)
{
    switch (miss) {
    case BG_CONSENT_MISS_NONE: return "";
    case BG_CONSENT_MISS_NO_CONSENT: return "no-consent";
    case BG_CONSENT_MISS_SCOPE: return "out-of-scope";
    case BG_CONSENT_MISS_SENSITIVE: return "not-sensitive";
    case BG_CONSENT_MISS_GUARDIAN: return "not-guardian";
    case BG_CONSENT_MISS_NOT_YET: return "not-yet-granted";
    case BG_CONSENT_MISS_EXPIRED: return "expired";
    case BG_CONSENT_MISS_WITHDRAWN: return "withdrawn";
    case BG_CONSENT_MISS_UNAVAILABLE: return "registry-unavailable";
    }
    return "unknown";
}

const char *bg_consent_strerror(int rc)
{
    switch (rc) {
    case BG_CONSENT_OK: return "ok";
    case BG_CONSENT_ERR: return "input/output or internal error";
    case BG_CONSENT_EINVAL: return "invalid argument";
    case BG_CONSENT_ENOENT: return "no such consent";
    case BG_CONSENT_EALREADY: return "consent already withdrawn";
    case BG_CONSENT_ECORRUPT: return "consent journal corrupt";
    case BG_CONSENT_EKEY: return "wrong or missing subject key";
    case BG_CONSENT_EREADONLY: return "registry opened read-only";
    case BG_CONSENT_EEXIST: return "consent id already used";
    }
    return "unknown error";
}

/* ------------------------------------------------------------------------
 * Times
 * ------------------------------------------------------------------------ */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int bg_consent_time_parse(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int Y, M, D, h, m, sec;
    if (s == NULL || strnlen(s, 20) < 20 || digits(s, 4, &Y) || s[4] != '-' ||
        digits(s + 5, 2, &M) || s[7] != '-' || digits(s + 8, 2, &D) ||
        (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' ||
        digits(s + 14, 2, &m) || s[16] != ':' || digits(s + 17, 2, &sec))
        return -1;
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > mdays[M - 1] + (M == 2 && leap) || h > 23 ||
        m > 59 || sec > 60)
        return -1;
    if (sec == 60) /* leap second: the instant after :59.999 */
        sec = 59;
    const char *p = s + 19;
    int ms = 0;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++) {
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
        }
        if (nd == 0)
            return -1;
        for (; nd < 3; nd++)
            ms *= 10;
    }
    int offset_min = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset_min = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
    } else {
        return -1;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    int64_t t = (int64_t)timegm(&tm) - (int64_t)offset_min * 60;
    if (t < 0)
        return -1;
    int64_t v = t * 1000 + ms;
    if (v > TIME_MAX_MS)
        return -1;
    *out = v;
    return 0;
}

void bg_consent_time_format(int64_t ms, char *out, size_t cap)
{
    bg_util_format_time(ms < 0 ? 0 : (uint64_t)ms, out, cap);
}

/* ------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------ */

static json_t *time_or_null(int64_t ms)
{
    char buf[40];
    if (ms == 0)
        return json_null();
    bg_consent_time_format(ms, buf, sizeof buf);
    return json_string(buf);
}

json_t *bg_consent_to_json(const bg_consent_t *c, int64_t now)
{
    char granted[40];
    bg_consent_time_format(c->granted_at, granted, sizeof granted);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:o, s:o, s:s, s:s, s:o, s:s}", "id", c->id,
        "subject", c->subject, "recipient", c->recipient, "purpose", c->purpose, "region",
        c->region, "sensitive", c->sensitive, "guardian", c->guardian, "granted_at", granted,
        "expires_at", time_or_null(c->expires_at), "withdrawn_at", time_or_null(c->withdrawn_at),
        "evidence", c->evidence, "recorded_by", c->recorded_by, "withdrawn_by",
        c->withdrawn_by[0] ? json_string(c->withdrawn_by) : json_null(), "status",
        bg_consent_status(c, now));
    return o;
}

/* ------------------------------------------------------------------------
 * Registry
 * ------------------------------------------------------------------------ */

bg_consent_reg_t *bg_consent_open_backend(bg_consent_backend_t *backend, const void *key,
                                          size_t keylen, char *err, size_t errcap)
{
    bg_consent_reg_t *reg = calloc(1, sizeof *reg);
    if (reg == NULL) {
        snprintf(err, errcap, "out of memory");
        backend->close(backend);
        return NULL;
    }
    reg->be = backend; /* owned from here on */
    if (key != NULL) {
        if (keylen < BG_CONSENT_KEY_MIN || keylen > BG_CONSENT_KEY_MAX) {
            snprintf(err, errcap, "subject key must be %d to %d bytes", BG_CONSENT_KEY_MIN,
                     BG_CONSENT_KEY_MAX);
            bg_consent_close(reg);
            return NULL;
        }
        if (hmac_init(&reg->key, key, keylen) != 0) {
            snprintf(err, errcap, "cannot set up HMAC-SHA-256 for the subject key");
            bg_consent_close(reg);
            return NULL;
        }
    }
    return reg;
}

bg_consent_reg_t *bg_consent_open(const char *path, const void *key, size_t keylen,
                                  const bg_consent_options_t *opts, char **warning, char *err,
                                  size_t errcap)
{
    char check[BG_CONSENT_KEY_CHECK_SIZE];
    if (warning != NULL)
        *warning = NULL;
    if (key != NULL && bg_consent_key_check(key, keylen, check) != 0) {
        snprintf(err, errcap, "subject key must be %d to %d bytes", BG_CONSENT_KEY_MIN,
                 BG_CONSENT_KEY_MAX);
        return NULL;
    }
    bg_consent_backend_t *be =
        bg_consent_file_open(path, key != NULL ? check : NULL, opts, warning, err, errcap);
    if (be == NULL)
        return NULL;
    bg_consent_reg_t *reg = bg_consent_open_backend(be, key, keylen, err, errcap);
    if (reg == NULL && warning != NULL) {
        free(*warning);
        *warning = NULL;
    }
    return reg;
}

bg_consent_reg_t *bg_consent_open_redis(const struct bg_redis_cfg *cfg, const void *key,
                                        size_t keylen, int subscribe, char *err, size_t errcap)
{
    char check[BG_CONSENT_KEY_CHECK_SIZE];
    if (key != NULL && bg_consent_key_check(key, keylen, check) != 0) {
        snprintf(err, errcap, "subject key must be %d to %d bytes", BG_CONSENT_KEY_MIN,
                 BG_CONSENT_KEY_MAX);
        return NULL;
    }
    bg_consent_backend_t *be =
        bg_consent_redis_open(cfg, key != NULL ? check : NULL, subscribe, err, errcap);
    if (be == NULL)
        return NULL;
    return bg_consent_open_backend(be, key, keylen, err, errcap);
}

void bg_consent_close(bg_consent_reg_t *reg)
{
    if (reg == NULL)
        return;
    if (reg->be != NULL)
        reg->be->close(reg->be);
    hmac_free(&reg->key);
    free(reg);
}

int bg_consent_find(bg_consent_reg_t *reg, const bg_consent_query_t *q, bg_consent_match_t *out)
{
    uint8_t pseudo[BG_CONSENT_PSEUDONYM_LEN];
    memset(out, 0, sizeof *out);
    bg_consent_query_t qq = *q;
    if (qq.pseudonym == NULL) {
        if (qq.subject == NULL ||
            bg_consent_pseudonymize(reg, qq.subject, qq.subject_len, pseudo) != 0) {
            out->miss = BG_CONSENT_MISS_UNAVAILABLE;
            return -1;
        }
        qq.pseudonym = pseudo;
    }
    qq.subject = NULL; /* the backend never sees the raw id */
    qq.subject_len = 0;
    return reg->be->find(reg->be, &qq, out);
}

/* Copy Z into a fixed field of CAP bytes; -1 when it does not fit. */
static int copy_field(char *dst, size_t cap, const char *z)
{
    size_t n = strnlen(z, cap);
    if (n >= cap)
        return -1;
    memcpy(dst, z, n + 1);
    return 0;
}

int bg_consent_grant(bg_consent_reg_t *reg, const bg_consent_grant_t *g, bg_consent_t *out,
                     char *err, size_t errcap)
{
    bg_consent_t c;
    memset(&c, 0, sizeof c);
    if (!reg->key.set) {
        snprintf(err, errcap, "granting needs the subject key");
        return BG_CONSENT_EKEY;
    }
    if (g->subject != NULL) {
        uint8_t p[BG_CONSENT_PSEUDONYM_LEN];
        if (g->subject_len == 0 || g->subject_len > BG_CONSENT_SUBJECT_MAX) {
            snprintf(err, errcap, "subject must be 1-%d bytes", BG_CONSENT_SUBJECT_MAX);
            return BG_CONSENT_EINVAL;
        }
        if (bg_consent_pseudonymize(reg, g->subject, g->subject_len, p) != 0) {
            snprintf(err, errcap, "cannot pseudonymize the subject");
            return BG_CONSENT_ERR;
        }
        hex_encode(p, sizeof p, c.subject);
    } else if (g->subject_pseudonym != NULL && strlen(g->subject_pseudonym) == 64) {
        for (int i = 0; i < 64; i++)
            c.subject[i] = (char)tolower((unsigned char)g->subject_pseudonym[i]);
        c.subject[64] = '\0';
    } else {
        snprintf(err, errcap, "subject (or a 64-hex-digit subject pseudonym) is required");
        return BG_CONSENT_EINVAL;
    }
    const char *bad = NULL;
    if (g->recipient == NULL || copy_field(c.recipient, sizeof c.recipient, g->recipient) != 0)
        bad = "recipient is required (at most 128 bytes; \"*\" for any)";
    else if (g->purpose == NULL || copy_field(c.purpose, sizeof c.purpose, g->purpose) != 0)
        bad = "purpose is required (at most 128 bytes; \"*\" for any)";
    else if (g->region == NULL || copy_field(c.region, sizeof c.region, g->region) != 0)
        bad = "region must be an ISO 3166 alpha-2 code (\"US\") or \"*\"";
    else if (g->evidence != NULL && copy_field(c.evidence, sizeof c.evidence, g->evidence) != 0)
        bad = "evidence must be at most 256 bytes";
    else if (g->recorded_by == NULL ||
             copy_field(c.recorded_by, sizeof c.recorded_by, g->recorded_by) != 0)
        bad = "recorded_by is required (at most 128 bytes)";
    if (bad != NULL) {
        snprintf(err, errcap, "%s", bad);
        return BG_CONSENT_EINVAL;
    }
    c.region[0] = (char)toupper((unsigned char)c.region[0]);
    if (c.region[0] != '\0')
        c.region[1] = (char)toupper((unsigned char)c.region[1]);
    c.sensitive = g->sensitive != 0;
    c.guardian = g->guardian != 0;
    c.granted_at = g->granted_at != 0 ? g->granted_at : (int64_t)bg_util_wall_ms();
    c.expires_at = g->expires_at;

    int rc = BG_CONSENT_ERR;
    for (int tries = 0; tries < GRANT_ID_TRIES; tries++) {
        uint8_t raw[8];
        if (bg_util_random_bytes(raw, sizeof raw) != 0) {
            snprintf(err, errcap, "no randomness for a consent id");
            return BG_CONSENT_ERR;
        }
        c.id[0] = 'c';
        c.id[1] = '-';
        hex_encode(raw, sizeof raw, c.id + 2);
        if ((rc = bg_consent_validate(&c, err, errcap)) != BG_CONSENT_OK)
            return rc;
        rc = reg->be->grant(reg->be, &c, err, errcap);
        if (rc != BG_CONSENT_EEXIST)
            break;
    }
    if (rc == BG_CONSENT_OK && out != NULL)
        *out = c;
    return rc;
}

int bg_consent_withdraw(bg_consent_reg_t *reg, const char *id, int64_t at, const char *by,
                        bg_consent_t *out, char *err, size_t errcap)
{
    if (id == NULL || strlen(id) != BG_CONSENT_ID_SIZE - 1 || !id_ok(id)) {
        snprintf(err, errcap, "consent id must be \"c-\" and 16 lowercase hex digits");
        return BG_CONSENT_EINVAL;
    }
    if (by == NULL || !bg_consent_text_ok(by, BG_CONSENT_BY_MAX, 0)) {
        snprintf(err, errcap, "withdrawn_by must be 1-128 bytes of text");
        return BG_CONSENT_EINVAL;
    }
    if (at == 0)
        at = (int64_t)bg_util_wall_ms();
    if (!time_ok(at)) {
        snprintf(err, errcap, "withdrawal time must be between 1970 and 9999");
        return BG_CONSENT_EINVAL;
    }
    return reg->be->withdraw(reg->be, id, at, by, out, err, errcap);
}

int bg_consent_get(bg_consent_reg_t *reg, const char *id, bg_consent_t *out)
{
    if (id == NULL || strlen(id) != BG_CONSENT_ID_SIZE - 1 || !id_ok(id))
        return BG_CONSENT_ENOENT;
    return reg->be->get(reg->be, id, out);
}

int bg_consent_list(bg_consent_reg_t *reg, const uint8_t *pseudonym, bg_consent_each_fn fn,
                    void *arg, char *err, size_t errcap)
{
    return reg->be->list(reg->be, pseudonym, fn, arg, err, errcap);
}

int bg_consent_refresh(bg_consent_reg_t *reg, char *err, size_t errcap)
{
    return reg->be->refresh(reg->be, err, errcap);
}

int bg_consent_compact(bg_consent_reg_t *reg, char *err, size_t errcap)
{
    return reg->be->compact(reg->be, err, errcap);
}

int bg_consent_health(bg_consent_reg_t *reg, char *buf, size_t cap)
{
    if (!reg->key.set) {
        snprintf(buf, cap, "no subject key: look-ups cannot be answered");
        return -1;
    }
    return reg->be->health(reg->be, buf, cap);
}

size_t bg_consent_count(bg_consent_reg_t *reg)
{
    return reg->be->count(reg->be);
}

const char *bg_consent_backend_name(const bg_consent_reg_t *reg)
{
    return reg->be->name;
}
