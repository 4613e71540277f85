/*
 * libFuzzer target for proxy/http.c.
 *
 * The input is used three ways: as a request head, as a response head and
 * as a chunked body (also the body after a parsed chunked request). Beyond
 * the sanitizers it checks the contract: results stay inside the buffer,
 * the verdict does not depend on how the bytes are split, a complete head
 * is INCOMPLETE one byte short, and the decoder never runs past the end of
 * the message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http.h"
#include "fuzz/fuzz.h"

#define MAX_HEAD 8192

static bg_http_header_t req_fields[BG_HTTP_MAX_HEADERS], resp_fields[BG_HTTP_MAX_HEADERS];
static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
static bg_http_response_t resp = {.headers = resp_fields, .max_headers = BG_HTTP_MAX_HEADERS};

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && p + n <= buf + len;
}

static void check_fields(const bg_http_header_t *h, size_t n, const char *buf, size_t head_len)
{
    CHECK(n <= BG_HTTP_MAX_HEADERS);
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].name_len > 0);
        CHECK(inside(h[i].name, h[i].name_len, buf, head_len));
        CHECK(inside(h[i].value, h[i].value_len, buf, head_len));
        if (h[i].value_len > 0) {
            char first = h[i].value[0], last = h[i].value[h[i].value_len - 1];
            CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t');
        }
    }
}

/* find_header returns the first field of that name; hop-by-hop status
 * of a field named in Connection holds whatever its case. */
static void check_lookup(const bg_http_header_t *h, size_t n)
{
    const bg_http_header_t *conn = bg_http_find_header(h, n, "connection");
    char name[64];
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len >= sizeof name)
            continue;
        memcpy(name, h[i].name, h[i].name_len);
        name[h[i].name_len] = '\0';
        const bg_http_header_t *f = bg_http_find_header(h, n, name);
        CHECK(f != NULL && f <= &h[i] && f->name_len == h[i].name_len);
        for (size_t k = 0; k < h[i].name_len; k++) {
            unsigned char ch = (unsigned char)name[k];
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
                name[k] = (char)(ch ^ 0x20);
        }
        CHECK(bg_http_find_header(h, n, name) == f);
        int hop = bg_http_is_hop_by_hop(h[i].name, h[i].name_len, NULL, 0);
        if (hop)
            CHECK(bg_http_is_hop_by_hop(name, h[i].name_len, NULL, 0));
        if (conn != NULL &&
            bg_http_is_hop_by_hop(h[i].name, h[i].name_len, conn->value, conn->value_len) == 0)
            CHECK(!hop);
    }
}

static void fuzz_request(const char *buf, size_t len, size_t max_head)
{
    int status = 0;
    const char *why = NULL;
    bg_http_result_t r = bg_http_parse_request(buf, len, max_head, &req, &status, &why);

    if (r == BG_HTTP_ERROR) {
        CHECK(why != NULL && !inside(why, 1, buf, len));
        CHECK(status == 400 || status == 417 || status == 431 || status == 501 || status == 505);
        return;
    }
    if (r == BG_HTTP_INCOMPLETE) {
        CHECK(len < max_head);
        /* No prefix of a head that has no error yet can have one. */
        if (len > 0) {
            int st = 0;
            CHECK(bg_http_parse_request(buf, len / 2, max_head, &req, &st, NULL) ==
                  BG_HTTP_INCOMPLETE);
        }
        return;
    }
    CHECK(r == BG_HTTP_OK);
    size_t hl = req.head_len;
    CHECK(hl >= 16 && hl <= len && hl <= max_head);
    CHECK(memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0);
    CHECK(inside(req.method, req.method_len, buf, hl) && req.method_len > 0);
    CHECK(inside(req.target, req.target_len, buf, hl) && req.target_len > 0);
    CHECK(req.version_minor == 0 || req.version_minor == 1);
    check_fields(req.headers, req.nheaders, buf, hl);
    CHECK(req.content_length >= -1 && req.content_length <= ((int64_t)1 << 53));
    CHECK(!(req.chunked && req.content_length >= 0));
    CHECK(req.version_minor == 0 ? !req.chunked && !req.expect_continue : req.host != NULL);
    if (req.host != NULL)
        CHECK(inside(req.host, req.host_len, buf, hl));
    check_lookup(req.headers, req.nheaders);

    /* The same head, alone and with any limit it fits in, into exactly as
     * much field room as it needs (what the proxy keeps per exchange). */
    static bg_http_header_t again_fields[BG_HTTP_MAX_HEADERS];
    bg_http_request_t again = {.headers = again_fields, .max_headers = req.nheaders};
    int st = 0;
    CHECK(bg_http_parse_request(buf, hl, hl, &again, &st, NULL) == BG_HTTP_OK);
    CHECK(again.head_len == hl && again.nheaders == req.nheaders &&
          again.content_length == req.content_length && again.chunked == req.chunked &&
          again.keep_alive == req.keep_alive);
    CHECK(bg_http_parse_request(buf, hl - 1, max_head, &again, &st, NULL) == BG_HTTP_INCOMPLETE);
    CHECK(bg_http_parse_request(buf, len, hl - 1, &again, &st, NULL) == BG_HTTP_ERROR && st == 431);
    if (req.nheaders > 0) {
        again.max_headers = req.nheaders - 1; /* one field short of room: 431 */
        CHECK(bg_http_parse_request(buf, hl, hl, &again, &st, NULL) == BG_HTTP_ERROR && st == 431);
    }
}

static void fuzz_response(const char *buf, size_t len, size_t max_head)
{
    const char *why = NULL;
    bg_http_result_t r = bg_http_parse_response(buf, len, max_head, &resp, &why);

    if (r == BG_HTTP_ERROR) {
        CHECK(why != NULL && !inside(why, 1, buf, len));
        return;
    }
    if (r == BG_HTTP_INCOMPLETE) {
        CHECK(len < max_head);
        if (len > 0)
            CHECK(bg_http_parse_response(buf, len / 2, max_head, &resp, NULL) ==
                  BG_HTTP_INCOMPLETE);
        return;
    }
    size_t hl = resp.head_len;
    CHECK(hl >= 16 && hl <= len && hl <= max_head);
    CHECK(resp.status >= 100 && resp.status <= 999);
    CHECK(inside(resp.reason, resp.reason_len, buf, hl));
    check_fields(resp.headers, resp.nheaders, buf, hl);
    CHECK(resp.content_length >= -1 && resp.content_length <= ((int64_t)1 << 53));
    CHECK(!(resp.chunked && resp.content_length >= 0));
    CHECK(bg_http_parse_response(buf, hl - 1, max_head, &resp, NULL) == BG_HTTP_INCOMPLETE);
    CHECK(bg_http_parse_response(buf, len, hl - 1, &resp, NULL) == BG_HTTP_ERROR);
    check_lookup(resp.headers, resp.nheaders);
}

typedef struct {
    ssize_t consumed; /* bytes consumed, or -1 on error */
    int done;
    uint64_t body_bytes;
    uint64_t hash; /* FNV-1a of the decoded data */
} chunk_run_t;

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

/*
 * Decode BUF[0..LEN), revealing the bytes in pieces whose sizes come from
 * SEED (0: all at once, 1: one byte at a time).
 */
static chunk_run_t decode(const char *buf, size_t len, uint64_t seed)
{
    chunk_run_t out = {0, 0, 0, 1469598103934665603u};
    bg_http_chunked_t c;
    size_t pos = 0, avail = 0;
    bg_http_chunked_init(&c);

    for (;;) {
        size_t dl = (size_t)-1;
        const char *why = NULL;
        ssize_t r = bg_http_chunked_step(&c, buf + pos, avail - pos, &dl, &why);
        if (r < 0) {
            CHECK(why != NULL && !inside(why, 1, buf, len));
            out.consumed = -1;
            return out;
        }
        CHECK((size_t)r <= avail - pos);
        CHECK(dl == 0 || dl == (size_t)r);
        if (dl > 0) {
            CHECK(inside(buf + pos, dl, buf, len));
            out.hash = fnv(out.hash, buf + pos, dl);
            out.body_bytes += dl;
        }
        pos += (size_t)r;
        CHECK(c.body_bytes == out.body_bytes);
        if (r > 0)
            continue;
        CHECK(dl == 0);
        if (c.done || avail == len)
            break;
        if (seed == 0) {
            avail = len;
        } else if (seed == 1) {
            avail++;
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            size_t piece = 1 + (size_t)(seed % 23);
            avail = len - avail < piece ? len : avail + piece;
        }
    }
    out.consumed = (ssize_t)pos;
    out.done = c.done;
    if (!c.done)
        CHECK(pos == len);
    return out;
}

static void fuzz_chunked(const char *buf, size_t len, uint64_t seed)
{
    chunk_run_t whole = decode(buf, len, 0);
    chunk_run_t split = decode(buf, len, seed | 2);
    CHECK(split.consumed == whole.consumed && split.done == whole.done &&
          split.body_bytes == whole.body_bytes && split.hash == whole.hash);
    if (len <= 2048) {
        chunk_run_t bytes = decode(buf, len, 1);
        CHECK(bytes.consumed == whole.consumed && bytes.done == whole.done &&
              bytes.body_bytes == whole.body_bytes && bytes.hash == whole.hash);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy, so that ASan flags any read past SIZE. */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    uint64_t seed = fnv(1469598103934665603u, buf, size);

    fuzz_request(buf, size, MAX_HEAD);
    fuzz_request(buf, size, 1 + (size_t)(seed % 256));
    fuzz_response(buf, size, MAX_HEAD);
    fuzz_response(buf, size, 1 + (size_t)(seed >> 8) % 256);
    fuzz_chunked(buf, size, seed);

    /* A chunked request: decode what follows its head. */
    int status;
    if (bg_http_parse_request(buf, size, MAX_HEAD, &req, &status, NULL) == BG_HTTP_OK &&
        req.chunked)
        fuzz_chunked(buf + req.head_len, size - req.head_len, seed);

    free(buf);
    return 0;
}
