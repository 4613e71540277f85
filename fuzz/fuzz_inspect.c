/*
 * libFuzzer target for the inspection engine (inspect/inspect): decoders,
 * field rules, operators and rendering, end to end.
 *
 * Input: byte 0 picks the body's type (JSON, form, multipart with the fixed
 * boundary "bgfuzz", text, gzip-compressed JSON, raw-deflate JSON); byte 1
 * seeds the operators; then the body, a NUL byte, and the rest, which is
 * used as the query string and as the value of an X- header and a Cookie
 * header. Every finding gets an operator (rotating through all six), record
 * 0 is removed on odd seeds, and the request is rendered.
 *
 * Beyond "never crash, never read out of bounds" it checks what a caller
 * relies on:
 *   - paths and the undecodable reason are NUL-terminated text without raw
 *     control characters; categories, confidences and records are in range;
 *   - values are never written beyond the buffer given, and their length
 *     is what was written;
 *   - render succeeds, and a rewritten JSON body is valid JSON (jansson
 *     loads it) whenever jansson loads the input, and bordergate itself
 *     decodes it again whenever it decoded the input;
 *   - a rewritten target keeps the path, a rewritten multipart body keeps
 *     the boundary.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "inspect/inspect.h"
#include "fuzz/fuzz.h"

#define BOUNDARY "bgfuzz"

static const bg_field_rule_spec_t RULES[] = {
    {"r-id", "$.customer['身份证号']", NULL, BG_CAT_CN_RESIDENT_ID},
    {"r-uid", "$.events[*].uid", NULL, BG_CAT_ACCOUNT_ID},
    {"r-any", "$..token", NULL, BG_CAT_CREDENTIALS},
    {"r-star", "$.m.*", NULL, BG_CAT_ACCOUNT_ID},
    {"r-key", NULL, "openid", BG_CAT_FINANCIAL_ACCOUNT},
};

static bg_inspect_rules_t *rules(void)
{
    static bg_inspect_rules_t *r;
    if (r == NULL) {
        static const char *const hdrs[] = {"x-*"};
        static const char *const cookies[] = {"*"};
        bg_inspect_rules_spec_t spec;
        char err[200];
        memset(&spec, 0, sizeof spec);
        spec.rules = RULES;
        spec.nrules = sizeof RULES / sizeof RULES[0];
        spec.headers = hdrs;
        spec.nheaders = 1;
        spec.cookies = cookies;
        spec.ncookies = 1;
        spec.records_path = "$.events[*]";
        spec.max_decoded_bytes = 1 << 20;
        r = bg_inspect_rules_new(&spec, err, sizeof err);
        CHECK(r != NULL);
    }
    return r;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static unsigned char *zpack(const uint8_t *in, size_t len, int window, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, window, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&zs, (uLong)len) + 32;
    unsigned char *out = malloc(cap);
    if (out != NULL) {
        zs.next_in = (Bytef *)(uintptr_t)in;
        zs.avail_in = (uInt)len;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
            free(out);
            out = NULL;
        } else {
            *outlen = cap - zs.avail_out;
        }
    }
    deflateEnd(&zs);
    return out;
}

/* A value read into a buffer with a guard: never past CAP, length exact. */
static void check_value(int n, const char *buf, size_t cap)
{
    CHECK(buf[cap] == '#'); /* guard byte untouched */
    if (n >= 0) {
        CHECK((size_t)n < cap);
        CHECK(buf[n] == '\0');
    }
}

static void values(bg_inspection_t *x)
{
    static const char *const paths[] = {
        "$",        "$.a",    "$.events[0].uid", "$.customer['身份证号']",
        "$.a[1].b", "$..x",   "query.q",         "header.x-f",
        "cookie.c", "form.a", "multipart.a",     "nope"};
    char buf[9];
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        for (int rec = -1; rec <= 1; rec++) {
            memset(buf, '#', sizeof buf);
            check_value(bg_inspection_value(x, paths[i], rec, buf, sizeof buf - 1), buf,
                        sizeof buf - 1);
        }
    }
    for (size_t i = 0; i < bg_inspection_count(x); i++) {
        memset(buf, '#', sizeof buf);
        check_value(
            bg_inspection_finding_value(x, bg_inspection_finding(x, i), buf, sizeof buf - 1), buf,
            sizeof buf - 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int type = data[0] % 6;
    unsigned seed = data[1];
    const uint8_t *body = data + 2;
    const uint8_t *nul = memchr(body, 0, size - 2);
    size_t blen = nul != NULL ? (size_t)(nul - body) : size - 2;
    const char *rest = nul != NULL ? (const char *)nul + 1 : "";
    size_t rlen = nul != NULL ? size - 2 - blen - 1 : 0;

    /* The target: a path and the rest as the query (no NUL in it). */
    char *target = malloc(rlen + 8);
    CHECK(target != NULL);
    memcpy(target, "/p/q?", 5);
    size_t tl = 5;
    for (size_t i = 0; i < rlen; i++)
        if (rest[i] != '\0' && rest[i] != '#')
            target[tl++] = rest[i];
    target[tl] = '\0';

    static const char *const ctypes[] = {"application/json",
                                         "application/x-www-form-urlencoded",
                                         ("multipart/form-data; boundary=" BOUNDARY),
                                         "text/plain",
                                         "application/json",
                                         "application/json"};
    bg_http_header_t h[4];
    size_t nh = 0;
    h[nh++] = (bg_http_header_t){"Content-Type", 12, ctypes[type], strlen(ctypes[type])};
    h[nh++] = (bg_http_header_t){"X-F", 3, target + 5, tl - 5};
    h[nh++] = (bg_http_header_t){"Cookie", 6, target + 5, tl - 5};
    unsigned char *z = NULL;
    size_t zl = 0;
    const char *sent = (const char *)body;
    size_t sent_len = blen;
    if (type == 4 || type == 5) {
        z = zpack(body, blen, type == 4 ? 15 + 16 : -15, &zl);
        if (z == NULL) {
            free(target);
            return 0;
        }
        sent = (const char *)z;
        sent_len = zl;
        h[nh++] = (bg_http_header_t){"Content-Encoding", 16, type == 4 ? "gzip" : "deflate",
                                     type == 4 ? 4u : 7u};
    }
    bg_inspect_input_t in = {"POST", 4, target, tl, h, nh, sent, sent_len};
    bg_inspection_t *x = bg_inspect(rules(), &in);
    CHECK(x != NULL);

    bg_body_kind_t kind = bg_inspection_body_kind(x);
    const char *why = bg_inspection_undecodable(x);
    CHECK((why != NULL) == (kind == BG_BODY_UNDECODABLE));
    if (why != NULL)
        CHECK(strlen(why) < 200 && printable(why));
    CHECK(bg_body_kind_name(kind)[0] != '?');
    int nrec = bg_inspection_records(x);
    size_t n = bg_inspection_count(x);
    for (size_t i = 0; i < n; i++) {
        const bg_finding_t *f = bg_inspection_finding(x, i);
        CHECK(f->path != NULL && strlen(f->path) < 4096 && printable(f->path));
        CHECK(bg_detect_category_id(f->category) != NULL);
        CHECK(bg_detect_confidence_name(f->confidence) != NULL);
        CHECK(f->record >= -1 && f->record < nrec);
        CHECK(f->source != NULL);
        CHECK(!f->applied && !f->removed);
    }
    CHECK(bg_inspection_finding(x, n) == NULL);
    values(x);

    /* Rewrite: every finding, every operator in turn. */
    static const unsigned char hkey[32] = "fuzz-pseudonym-key-0123456789abc";
    static const unsigned char tkey[32] = "fuzz-token-key-0123456789abcdefg";
    bg_op_keys_t keys = {hkey, sizeof hkey, "h1", tkey, "t1"};
    for (size_t i = 0; i < n; i++) {
        bg_op_t op;
        memset(&op, 0, sizeof op);
        op.kind = (bg_op_kind_t)((seed + i) % 6);
        op.keep_start = (int)(seed >> 4 & 3);
        op.keep_end = (int)(seed >> 6 & 3);
        op.decimals = (int)(seed % 5);
        op.ipv4_prefix = (int)(seed % 33);
        op.ipv6_prefix = (int)(seed % 129);
        op.replacement = seed & 8 ? "[\"\\\n\x01]" : NULL; /* needs quoting in JSON */
        char err[200];
        /* A fixed finding (method, part headers, inside base64...) cannot be
         * rewritten where it is: apply refuses it, and only it. */
        int rc = bg_inspection_apply(x, i, &op, &keys, err, sizeof err);
        CHECK(rc == (bg_inspection_finding(x, i)->fixed ? -1 : 0));
    }
    if ((seed & 1) && nrec > 0) {
        /* A record cut short by invalid text cannot be removed (nor is an
         * undecodable body rendered); every complete one can. */
        int rc = bg_inspection_remove_record(x, 0);
        CHECK(rc == 0 || why != NULL);
    }
    CHECK(bg_inspection_remove_record(x, nrec) == -1);
    CHECK(bg_inspection_remove_record(x, -1) == -1);
    if (why == NULL && bg_inspection_modified(x)) {
        bg_rewrite_t rw;
        CHECK(bg_inspection_render(x, &rw) == 0);
        if (rw.body_changed) {
            CHECK(rw.body != NULL);
            if (kind == BG_BODY_JSON) {
                CHECK(memchr(rw.body, 0, rw.body_len) == NULL);
                /* (text/plain that is JSON is walked as JSON too) */
                json_t *orig = json_loadb((const char *)body, blen, JSON_DECODE_ANY, NULL);
                if (orig != NULL) {
                    json_error_t e;
                    json_t *v = json_loadb(rw.body, rw.body_len, JSON_DECODE_ANY, &e);
                    CHECK(v != NULL); /* the input was JSON: so is the output */
                    json_decref(v);
                    json_decref(orig);
                }
                /* And bordergate reads its own output. */
                bg_http_header_t h2 = {"Content-Type", 12, "application/json", 16};
                bg_inspect_input_t in2 = {"POST", 4, "/", 1, &h2, 1, rw.body, rw.body_len};
                bg_inspection_t *y = bg_inspect(rules(), &in2);
                CHECK(y != NULL);
                CHECK(bg_inspection_body_kind(y) == BG_BODY_JSON);
                bg_inspection_free(y);
            } else {
                CHECK(strlen(rw.body) == rw.body_len);
            }
            if (kind == BG_BODY_MULTIPART)
                CHECK(strncmp(rw.body, "--" BOUNDARY "\r\n", 10) == 0 ||
                      strcmp(rw.body, "--" BOUNDARY "--\r\n") == 0);
        }
        if (rw.target_changed) {
            CHECK(rw.target != NULL && strncmp(rw.target, "/p/q", 4) == 0);
            CHECK(strlen(rw.target) == rw.target_len);
            CHECK(rw.target_len == 4 || rw.target[4] == '?');
        }
        CHECK(rw.nheaders <= nh);
        for (size_t k = 0; k < rw.nheaders; k++)
            CHECK(rw.header_index[k] == 1 || rw.header_index[k] == 2);
        bg_rewrite_free(&rw);
    }
    bg_inspection_free(x);
    free(z);
    free(target);
    return 0;
}
