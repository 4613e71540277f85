/*
 * libFuzzer target for replay/har.c and replay/gor.c.
 *
 * The input is read as a HAR file with a chunk size taken from its first
 * byte (1..64, so entries straddle reads everywhere) and with 1 MiB chunks,
 * and as a GoReplay file. Beyond the sanitizers it checks the contract:
 * the entries and errors do not depend on the chunk size, every entry has
 * a method, an authority and an origin-form target, and the reader always
 * ends (an error that ends the file is sticky).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay/har.h"
#include "fuzz/fuzz.h"

#define MAX_ROUNDS 10000

/* A digest of everything read: entry fields and error texts. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t read_har(const char *doc, size_t len, size_t chunk, size_t *entries)
{
    bg_har_reader_t *r = bg_har_open_mem(doc, len, chunk, 4096);
    CHECK(r != NULL);
    uint64_t h = 0xcbf29ce484222325ull;
    bg_replay_req_t req;
    memset(&req, 0, sizeof req);
    *entries = 0;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        char err[512];
        int rc = bg_har_next(r, &req, err, sizeof err);
        if (rc == 0)
            break;
        if (rc < 0) {
            h = mix(h, err, strlen(err));
            if (bg_har_failed(r)) {
                CHECK(bg_har_next(r, &req, err, sizeof err) == -1);
                break;
            }
            continue;
        }
        (*entries)++;
        CHECK(req.method != NULL && req.method[0] != '\0');
        CHECK(req.authority != NULL && req.authority[0] != '\0');
        CHECK(req.target != NULL && req.target[0] == '/');
        CHECK(req.nheaders <= BG_REPLAY_MAX_HEADERS);
        CHECK(req.body != NULL || req.body_len == 0);
        h = mix(h, req.url, strlen(req.url));
        h = mix(h, req.target, strlen(req.target));
        h = mix(h, &req.body_len, sizeof req.body_len);
        h = mix(h, &req.line, sizeof req.line);
        h = mix(h, &req.offset, sizeof req.offset);
        if (req.body != NULL)
            h = mix(h, req.body, req.body_len);
    }
    bg_replay_req_clear(&req);
    bg_har_close(r);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)(data[0] % 64) + 1;
    const char *doc = (const char *)data + 1;
    size_t len = size - 1;
    size_t n1, n2;
    uint64_t a = read_har(doc, len, chunk, &n1);
    uint64_t b = read_har(doc, len, 0, &n2);
    CHECK(a == b && n1 == n2);

    bg_gor_reader_t *g = bg_gor_open_mem(doc, len, 4096);
    CHECK(g != NULL);
    bg_replay_req_t req;
    memset(&req, 0, sizeof req);
    for (int round = 0; round < MAX_ROUNDS; round++) {
        char err[512];
        int rc = bg_gor_next(g, &req, err, sizeof err);
        if (rc == 0 || (rc < 0 && bg_gor_failed(g)))
            break;
        if (rc > 0) {
            CHECK(req.method != NULL && req.authority != NULL && req.target != NULL);
            CHECK(req.body != NULL || req.body_len == 0);
        }
    }
    bg_replay_req_clear(&req);
    bg_gor_close(g);
    return 0;
}
