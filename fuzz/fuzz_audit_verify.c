/*
 * libFuzzer target for the audit verifier (audit/verify.c) and the chain
 * line parser (audit/chain.c).
 *
 * Three modes, chosen by the first byte (mod 3):
 *
 *  0:    the rest is up to four "files" separated by 0xFF bytes, verified
 *        with and without a key. Beyond "never crash, never read out of
 *        bounds": the verdict is deterministic, an intact result has no
 *        problem text and no more records than lines, a failed one names
 *        its problem.
 *
 *  2:    the same, after re-hashing the lines the way an attacker would
 *        (each shaped line gets the running prev, its checkpoint "chain" and
 *        HMAC fixed with the fuzz key, and a fresh hash), so mutations of
 *        seqs, types, file indexes and line order reach the checks behind
 *        the hashes instead of stopping at the first hash mismatch.
 *
 *  1:    the rest becomes the content of records of a valid log, built with
 *        the writer's own line format (file_start, records, a signed closing
 *        checkpoint). It must verify with the key; then one byte, chosen by
 *        the input, is changed, and the changed log must NOT verify: every
 *        byte of a log is covered by a hash or is a line end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/chain.h"
#include "fuzz/fuzz.h"
#include "common/hex.h"

static const unsigned char KEY[32] = "fuzz-fuzz-fuzz-fuzz-fuzz-fuzz-32";

static void raw_mode(const uint8_t *data, size_t size)
{
    const char *names[4] = {"f1", "f2", "f3", "f4"};
    const char *parts[4];
    size_t lens[4];
    size_t n = 0;
    const uint8_t *p = data, *end = data + size;
    while (n < 4) {
        const uint8_t *sep = memchr(p, 0xFF, (size_t)(end - p));
        parts[n] = (const char *)p;
        lens[n] = sep != NULL ? (size_t)(sep - p) : (size_t)(end - p);
        n++;
        if (sep == NULL)
            break;
        p = sep + 1;
    }
    size_t newlines = 0;
    for (size_t i = 0; i < size; i++)
        newlines += data[i] == '\n';

    bg_audit_key_t k;
    char err[128];
    CHECK(bg_audit_key_from_bytes(KEY, sizeof KEY, &k, err, sizeof err) == 0);
    for (int keyed = 0; keyed < 2; keyed++) {
        for (int complete = 0; complete < 2; complete++) {
            bg_audit_verify_options_t opt = {
                .keys = &k, .nkeys = (size_t)keyed, .complete = complete};
            bg_audit_verify_result_t r1, r2;
            int rc1 = bg_audit_verify_mem(names, parts, lens, n, &opt, &r1);
            int rc2 = bg_audit_verify_mem(names, parts, lens, n, &opt, &r2);
            CHECK(rc1 == rc2 && r1.ok == r2.ok && strcmp(r1.problem, r2.problem) == 0);
            CHECK(r1.records == r2.records);
            if (rc1 == 0) {
                CHECK(r1.ok && r1.problem[0] == '\0');
                CHECK(r1.records <= newlines);
                CHECK(r1.checkpoints_verified <= r1.checkpoints);
            } else {
                CHECK(!r1.ok && r1.problem[0] != '\0');
            }
        }
    }
}

/* Mode 2: re-hash every shaped line of the files in DATA (modified in
 * place into OUT), carrying the chain across 0xFF file separators. */
static void rechain_mode(const uint8_t *data, size_t size)
{
    bg_audit_buf_t out = {0};
    bg_audit_chain_t *ch = bg_audit_chain_new(1, NULL);
    CHECK(ch != NULL);
    char prev[BG_AUDIT_HEX_LEN + 1];
    memcpy(prev, bg_audit_chain_genesis, sizeof prev);
    const char *p = (const char *)data, *end = (const char *)data + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *sep = memchr(p, 0xFF, (size_t)(end - p));
        const char *stop = nl != NULL ? nl : end;
        if (sep != NULL && sep < stop) { /* copy up to and including the separator */
            CHECK(bg_audit_buf_add(&out, p, (size_t)(sep - p) + 1) == 0);
            p = sep + 1;
            continue;
        }
        size_t ll = (size_t)(stop - p);
        bg_audit_line_t pl;
        if (nl != NULL && bg_audit_chain_parse_line(p, ll, &pl) == 0) {
            /* Members after prev, without the leading comma. */
            const char *after =
                (const char *)memmem(p, ll, ",\"prev\":\"", 9) + 9 + BG_AUDIT_HEX_LEN + 1;
            size_t rest = pl.covered_len - (size_t)(after - p);
            char *m = malloc(rest + 1);
            CHECK(m != NULL);
            memcpy(m, after, rest);
            m[rest] = '\0';
            char *cf = strstr(m, "\"chain\":\"");
            if (cf != NULL && strlen(cf + 9) >= BG_AUDIT_HEX_LEN)
                memcpy(cf + 9, prev, BG_AUDIT_HEX_LEN);
            char *hm = strstr(m, "\"hmac\":\"");
            if (hm != NULL && strlen(hm + 8) >= BG_AUDIT_HEX_LEN) {
                char mac[BG_AUDIT_HEX_LEN + 1];
                CHECK(bg_audit_chain_hmac(KEY, sizeof KEY, prev, mac) == 0);
                memcpy(hm + 8, mac, BG_AUDIT_HEX_LEN);
            }
            const char *parts[1] = {rest > 0 ? m + 1 : m};
            size_t lens[1] = {rest > 0 ? rest - 1 : 0};
            bg_audit_chain_set(ch, pl.seq, prev);
            CHECK(bg_audit_chain_append(ch, &out, parts, lens, 1, prev) == 0);
            free(m);
        } else {
            CHECK(bg_audit_buf_add(&out, p, ll) == 0);
            if (nl != NULL)
                CHECK(bg_audit_buf_add(&out, "\n", 1) == 0);
        }
        p = nl != NULL ? nl + 1 : end;
    }
    raw_mode((const uint8_t *)(out.data != NULL ? out.data : ""), out.len);
    bg_audit_buf_free(&out);
    bg_audit_chain_free(ch);
}

/* Append "key":value members text for one record made of CHUNK. */
static char *record_members(const uint8_t *chunk, size_t len)
{
    json_t *v = json_stringn((const char *)chunk, len);
    if (v == NULL) { /* not UTF-8: hex it */
        char *hex = malloc(2 * len + 1);
        if (hex == NULL)
            return NULL;
        bg_hex_encode(chunk, len, hex);
        v = json_string(hex);
        free(hex);
    }
    json_t *o = json_pack("{s:s, s:o}", "type", "decision", "v", v);
    if (o == NULL)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        return NULL;
    size_t sl = strlen(s);
    memmove(s, s + 1, sl - 2); /* drop the braces */
    s[sl - 2] = '\0';
    return s;
}

static int add(bg_audit_chain_t *ch, bg_audit_buf_t *b, const char *members, uint64_t *since)
{
    const char *parts[1] = {members};
    size_t lens[1] = {strlen(members)};
    (*since)++;
    return bg_audit_chain_append(ch, b, parts, lens, 1, NULL);
}

static void property_mode(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    uint32_t where = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16;
    uint8_t flip = data[3] != 0 ? data[3] : 1;
    data += 4;
    size -= 4;

    bg_audit_chain_t *ch = bg_audit_chain_new(1, NULL);
    bg_audit_buf_t b = {0};
    uint64_t since = 0;
    CHECK(ch != NULL);
    CHECK(add(ch, &b,
              "\"type\":\"file_start\",\"time\":\"2026-01-01T00:00:00.000Z\",\"file\":\"f1\","
              "\"file_index\":1,\"prev_file\":null,\"format\":\"bordergate-audit/1\","
              "\"checkpoint_every\":1000,\"key_id\":null",
              &since) == 0);
    /* Records: the input split at newlines, at most 64 of them. */
    size_t start = 0, nrec = 0;
    for (size_t i = 0; i <= size && nrec < 64; i++) {
        if (i == size || data[i] == '\n') {
            char *m = record_members(data + start, i - start);
            CHECK(m != NULL);
            CHECK(add(ch, &b, m, &since) == 0);
            free(m);
            start = i + 1;
            nrec++;
        }
    }
    bg_audit_key_t k;
    char err[128], mac[BG_AUDIT_HEX_LEN + 1], ck[600];
    CHECK(bg_audit_key_from_bytes(KEY, sizeof KEY, &k, err, sizeof err) == 0);
    CHECK(bg_audit_chain_hmac(k.bytes, k.len, bg_audit_chain_prev(ch), mac) == 0);
    snprintf(ck, sizeof ck,
             "\"type\":\"checkpoint\",\"time\":\"2026-01-01T00:00:01.000Z\",\"reason\":\"close\","
             "\"records\":%llu,\"chain\":\"%s\",\"every\":1000,\"key_id\":\"%s\",\"hmac\":\"%s\"",
             (unsigned long long)since, bg_audit_chain_prev(ch), k.id, mac);
    const char *parts[1] = {ck};
    size_t lens[1] = {strlen(ck)};
    CHECK(bg_audit_chain_append(ch, &b, parts, lens, 1, NULL) == 0);

    const char *names[1] = {"f1"};
    const char *files[1] = {b.data};
    size_t flen[1] = {b.len};
    bg_audit_verify_options_t opt = {.keys = &k, .nkeys = 1, .complete = 1};
    bg_audit_verify_result_t r;
    if (bg_audit_verify_mem(names, files, flen, 1, &opt, &r) != 0) {
        fprintf(stderr, "valid log rejected: %s\n", r.problem);
        abort();
    }
    CHECK(r.records == nrec + 2 && r.checkpoints_verified == 1);

    size_t pos = where % b.len;
    b.data[pos] = (char)(b.data[pos] ^ flip);
    if (bg_audit_verify_mem(names, files, flen, 1, &opt, &r) == 0) {
        fprintf(stderr, "change of byte %zu not detected\n", pos);
        abort();
    }
    bg_audit_buf_free(&b);
    bg_audit_chain_free(ch);
    bg_audit_key_wipe(&k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: raw_mode(data + 1, size - 1); break;
    case 1: property_mode(data + 1, size - 1); break;
    default: rechain_mode(data + 1, size - 1); break;
    }
    return 0;
}
