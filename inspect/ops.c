/*
 * Operators: redact, mask, hash, tokenize, generalize, replace. Recorded on
 * findings by bg_inspection_apply / bg_inspection_remove_record, turned into
 * replacement text by bg_insp_op_text at render time; bg_token_open reverses
 * a token.
 */
#include "inspect/inspect_int.h"

#include "common/base64.h"
#include "common/hex.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

static const char *const op_names[] = {"redact",   "mask",       "hash",
                                       "tokenize", "generalize", "replace"};

const char *bg_op_name(bg_op_kind_t k)
{
    return (unsigned)k < sizeof op_names / sizeof op_names[0] ? op_names[k] : "?";
}

int bg_op_parse(const char *name, bg_op_kind_t *out)
{
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++) {
        if (strcmp(name, op_names[i]) == 0) {
            *out = (bg_op_kind_t)i;
            return 0;
        }
    }
    return -1;
}

int bg_op_anonymizes(bg_op_kind_t k)
{
    return k == BG_OP_REDACT || k == BG_OP_GENERALIZE || k == BG_OP_REPLACE;
}

int bg_inspection_apply(bg_inspection_t *x, size_t i, const bg_op_t *op, const bg_op_keys_t *keys,
                        char *err, size_t errcap)
{
    if (i >= x->nfind) {
        snprintf(err, errcap, "no such finding");
        return -1;
    }
    if (op->kind == BG_OP_HASH && (keys == NULL || keys->hash_key == NULL)) {
        snprintf(err, errcap, "the hash operator needs a pseudonym key (keys.pseudonym)");
        return -1;
    }
    if (op->kind == BG_OP_TOKENIZE && (keys == NULL || keys->token_key == NULL)) {
        snprintf(err, errcap, "the tokenize operator needs a token key (keys.token)");
        return -1;
    }
    bg_finding_t *f = &x->findings[i];
    if (f->fixed) {
        snprintf(err, errcap,
                 "%.60s cannot be rewritten where it was found (method, header name, part "
                 "headers, or encoded or transcoded text)",
                 f->path);
        return -1;
    }
    x->pending[i].op = *op;
    if (keys != NULL)
        x->pending[i].keys = *keys;
    f->applied = 1;
    f->op = bg_op_name(op->kind);
    f->anonymized = bg_op_anonymizes(op->kind);
    x->modified = 1;
    return 0;
}

int bg_inspection_remove_record(bg_inspection_t *x, int record)
{
    if (x->records_container < 0 || record < 0 || record >= x->nrecords)
        return -1;
    /* The record is the RECORD-th member of the records array, and its
     * findings one run of findings[] (the walk finishes a record before the
     * next). Both are indexed once: a batch may remove many records, and a
     * pass over every member and finding per record was quadratic. */
    if (x->record_members == NULL) {
        size_t nr = (size_t)x->nrecords;
        x->record_members = malloc(nr * sizeof *x->record_members);
        x->record_findings = malloc(2 * nr * sizeof *x->record_findings);
        if (x->record_members == NULL || x->record_findings == NULL) {
            free(x->record_members);
            free(x->record_findings);
            x->record_members = NULL;
            x->record_findings = NULL;
            return -1;
        }
        x->nrecord_members = 0; /* counted from here */
        for (size_t m = 0; m < x->nmembers && x->nrecord_members < x->nrecords; m++)
            if (x->members[m].container == x->records_container)
                x->record_members[x->nrecord_members++] = (int)m;
        for (size_t r = 0; r < nr; r++)
            x->record_findings[2 * r] = x->record_findings[2 * r + 1] = 0;
        for (size_t i = x->nfind; i-- > 0;) {
            int r = x->findings[i].record;
            if (r < 0 || r >= x->nrecords)
                continue;
            if (x->record_findings[2 * r + 1] == 0)
                x->record_findings[2 * r + 1] = i + 1;
            x->record_findings[2 * r] = i;
        }
    }
    /* A record cut short by invalid text has no member: nothing is marked. */
    if (record >= x->nrecord_members)
        return -1;
    x->members[x->record_members[record]].removed = 1;
    x->containers[x->records_container].has_removal = 1;
    x->modified = 1;
    size_t from = x->record_findings[2 * record], to = x->record_findings[2 * record + 1];
    for (size_t i = from; i < to; i++) {
        if (x->findings[i].record == record) {
            x->findings[i].removed = 1;
            x->findings[i].anonymized = 1;
            x->findings[i].op = "remove_record";
        }
    }
    return 0;
}

/* Generalize S as its category allows; NULL when it does not apply. */
static char *generalize(bg_detect_cat_t cat, const char *s, size_t len, const bg_op_t *op)
{
    char buf[128];
    if (len >= sizeof buf)
        return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int dec = op->decimals > 0 ? op->decimals : 2;
    if (cat == BG_CAT_GPS_LOCATION || cat == BG_CAT_PRECISE_LOCATION || cat == BG_CAT_WHEREABOUTS) {
        double a, b;
        char sep[2];
        /* Not finite (1e400, "nan") or too long to print: no coordinate to
         * keep, so the caller removes the value. */
        if (sscanf(buf, "%lf %1[,;] %lf", &a, sep, &b) == 3) {
            char *o = isfinite(a) && isfinite(b) ? malloc(64) : NULL;
            if (o != NULL && snprintf(o, 64, "%.*f%c%.*f", dec, a, sep[0], dec, b) >= 64) {
                free(o);
                o = NULL;
            }
            return o;
        }
        char *end;
        double v = strtod(buf, &end);
        if (end != buf && *end == '\0' && isfinite(v)) {
            char *o = malloc(40);
            if (o != NULL && snprintf(o, 40, "%.*f", dec, v) >= 40) {
                free(o);
                o = NULL;
            }
            return o;
        }
        return NULL;
    }
    if (cat == BG_CAT_IP_ADDRESS) {
        unsigned char a[16];
        char *o = malloc(64);
        if (o == NULL)
            return NULL;
        if (inet_pton(AF_INET, buf, a) == 1) {
            int bits = op->ipv4_prefix > 0 && op->ipv4_prefix <= 32 ? op->ipv4_prefix : 24;
            for (int i = 0; i < 4; i++) {
                int keep = bits - i * 8;
                a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
            }
            inet_ntop(AF_INET, a, o, 64);
            return o;
        }
        if (inet_pton(AF_INET6, buf, a) == 1) {
            int bits = op->ipv6_prefix > 0 && op->ipv6_prefix <= 128 ? op->ipv6_prefix : 48;
            for (int i = 0; i < 16; i++) {
                int keep = bits - i * 8;
                a[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
            }
            inet_ntop(AF_INET6, a, o, 64);
            return o;
        }
        free(o);
        return NULL;
    }
    if (cat == BG_CAT_BIRTH_DATE) {
        if (len >= 4 && isdigit((unsigned char)buf[0]) && isdigit((unsigned char)buf[1]) &&
            isdigit((unsigned char)buf[2]) && isdigit((unsigned char)buf[3]))
            return strndup(buf, 4);
        return NULL;
    }
    if (cat == BG_CAT_AGE) {
        char *end;
        long age = strtol(buf, &end, 10);
        if (end != buf && *end == '\0' && age >= 0 && age < 200) {
            char *o = malloc(32);
            if (o != NULL)
                snprintf(o, 32, "%ld-%ld", age / 10 * 10, age / 10 * 10 + 9);
            return o;
        }
    }
    return NULL;
}

/* The replacement text of S[0..LEN) under P's operator; NULL for redact. */
char *bg_insp_op_text(const pending_t *p, bg_detect_cat_t cat, const char *s, size_t len, int *drop)
{
    const bg_op_t *op = &p->op;
    *drop = 0;
    switch (op->kind) {
    case BG_OP_REDACT: *drop = 1; return NULL;
    case BG_OP_REPLACE: return strdup(op->replacement != NULL ? op->replacement : "[removed]");
    case BG_OP_MASK: {
        /* Code points, so a masked Chinese name stays valid UTF-8. */
        size_t cps = 0;
        for (size_t i = 0; i < len; i++)
            cps += ((unsigned char)s[i] & 0xC0) != 0x80;
        size_t ks = (size_t)(op->keep_start > 0 ? op->keep_start : 0);
        size_t ke = (size_t)(op->keep_end > 0 ? op->keep_end : 0);
        if (ks + ke >= cps)
            ks = ke = 0;
        char *o = malloc(len + cps + 1);
        if (o == NULL)
            return NULL;
        size_t n = 0, cp = 0;
        char mc = op->mask_char ? op->mask_char : '*';
        for (size_t i = 0; i < len;) {
            size_t l = 1;
            while (i + l < len && ((unsigned char)s[i + l] & 0xC0) == 0x80)
                l++;
            if (cp < ks || cp >= cps - ke) {
                memcpy(o + n, s + i, l);
                n += l;
            } else {
                o[n++] = mc;
            }
            cp++;
            i += l;
        }
        o[n] = '\0';
        return o;
    }
    case BG_OP_HASH: {
        unsigned char mac[32];
        unsigned int ml = 0;
        if (HMAC(EVP_sha256(), p->keys.hash_key, (int)p->keys.hash_key_len,
                 (const unsigned char *)s, len, mac, &ml) == NULL)
            return NULL;
        char hex[65];
        bg_hex_encode(mac, 16, hex);
        char *o = malloc(120);
        if (o != NULL)
            snprintf(o, 120, "pn:%s:%s", p->keys.hash_key_id ? p->keys.hash_key_id : "k", hex);
        return o;
    }
    case BG_OP_TOKENIZE: {
        unsigned char nonce[12], tag[16];
        unsigned char *buf = malloc(len + 28);
        char *o = NULL;
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int l1 = 0, l2 = 0;
        const char *kid = p->keys.token_key_id ? p->keys.token_key_id : "k";
        if (buf == NULL || c == NULL || RAND_bytes(nonce, sizeof nonce) != 1 ||
            EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, p->keys.token_key, nonce) != 1 ||
            EVP_EncryptUpdate(c, NULL, &l1, (const unsigned char *)kid, (int)strlen(kid)) != 1 ||
            EVP_EncryptUpdate(c, buf + 12, &l1, (const unsigned char *)s, (int)len) != 1 ||
            EVP_EncryptFinal_ex(c, buf + 12 + l1, &l2) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
            goto tok_done;
        memcpy(buf, nonce, 12);
        memcpy(buf + 12 + l1 + l2, tag, 16);
        size_t total = 12 + (size_t)l1 + (size_t)l2 + 16;
        /* "tok:" KID ":" and the base64url of TOTAL bytes (4/3 of it) */
        size_t cap = strlen(kid) + total * 2 + 16;
        o = malloc(cap);
        if (o != NULL) {
            int hl = snprintf(o, cap, "tok:%s:", kid);
            if (hl >= 0 && (size_t)hl < cap - (total + 2) / 3 * 4) {
                bg_base64_encode(buf, total, o + hl, BG_B64_URL);
            } else {
                free(o);
                o = NULL;
            }
        }
    tok_done:
        EVP_CIPHER_CTX_free(c);
        free(buf);
        return o;
    }
    case BG_OP_GENERALIZE: {
        char *g = generalize(cat, s, len, op);
        if (g == NULL)
            *drop = 1; /* no generalization for this category: remove rather than leak */
        return g;
    }
    }
    return NULL;
}

int bg_token_open(const char *token, const unsigned char *key, char *out, size_t cap)
{
    if (strncmp(token, "tok:", 4) != 0)
        return -1;
    const char *kid = token + 4;
    const char *colon = strchr(kid, ':');
    if (colon == NULL || colon - kid > 64)
        return -1;
    char kids[65];
    memcpy(kids, kid, (size_t)(colon - kid));
    kids[colon - kid] = '\0';
    size_t tl = strlen(colon + 1);
    unsigned char *raw = malloc(tl + 1);
    if (raw == NULL)
        return -1;
    long n = bg_base64_decode(colon + 1, tl, raw, tl + 1, BG_B64_URL | BG_B64_NO_PAD);
    int rc = -1, l1 = 0, l2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (n < 28 || c == NULL || (size_t)(n - 28) >= cap)
        goto done;
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
        EVP_DecryptUpdate(c, NULL, &l1, (const unsigned char *)kids, (int)strlen(kids)) != 1 ||
        EVP_DecryptUpdate(c, (unsigned char *)out, &l1, raw + 12, (int)(n - 28)) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, raw + n - 16) != 1 ||
        EVP_DecryptFinal_ex(c, (unsigned char *)out + l1, &l2) != 1)
        goto done;
    out[l1 + l2] = '\0';
    rc = l1 + l2;
done:
    if (rc < 0 && cap > 0)
        out[0] = '\0';
    EVP_CIPHER_CTX_free(c);
    free(raw);
    return rc;
}
