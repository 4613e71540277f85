/*
 * libFuzzer target for replay/gor.c, the GoReplay reader.
 *
 * The input is read as a .gor file from memory, with a small and a large
 * payload limit. Beyond the sanitizers it checks the contract:
 *   - the reader always ends, and an error that ends the file is sticky;
 *   - entries are numbered in file order, and lines and offsets grow;
 *   - every entry has a method, a non-empty authority and a target, and
 *     none of Host, Content-Length or Transfer-Encoding among its headers;
 *   - the entry is what the payload said: written back out as a payload
 *     (origin-form target, Host, its headers, Content-Length) and read
 *     again, it gives the very same method, authority, target, headers and
 *     body (so chunked decoding, absolute-form targets and the header
 *     filter lose or invent nothing).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/http.h"
#include "replay/har.h"
#include "fuzz/fuzz.h"

#define MAX_ROUNDS 10000

static int same_str(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The entry as a one-payload .gor file (no trailing separator: the body's
 * own bytes then cannot form one). NULL when it could not be re-read as
 * the same request for reasons that are not the reader's (field count). */
static char *rewrite(const bg_replay_req_t *r, size_t *len)
{
    if (r->nheaders + 2 > BG_HTTP_MAX_HEADERS)
        return NULL;
    size_t cap = 64 + strlen(r->method) + strlen(r->target) + strlen(r->authority) + r->body_len;
    for (size_t i = 0; i < r->nheaders; i++)
        cap += strlen(r->names[i]) + strlen(r->values[i]) + 4;
    char *out = malloc(cap);
    CHECK(out != NULL);
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "1 id 0 0\n%s %s HTTP/1.1\r\nHost: %s\r\n", r->method,
                          r->target, r->authority);
    for (size_t i = 0; i < r->nheaders; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s: %s\r\n", r->names[i], r->values[i]);
    if (r->body != NULL)
        o += (size_t)snprintf(out + o, cap - o, "Content-Length: %zu\r\n", r->body_len);
    o += (size_t)snprintf(out + o, cap - o, "\r\n");
    CHECK(o + r->body_len < cap);
    if (r->body_len > 0)
        memcpy(out + o, r->body, r->body_len);
    *len = o + r->body_len;
    return out;
}

static void check_round_trip(const bg_replay_req_t *r)
{
    size_t len = 0;
    char *doc = rewrite(r, &len);
    if (doc == NULL)
        return;
    bg_gor_reader_t *g = bg_gor_open_mem(doc, len, 0);
    CHECK(g != NULL);
    bg_replay_req_t b;
    memset(&b, 0, sizeof b);
    char err[512];
    int rc = bg_gor_next(g, &b, err, sizeof err);
    CHECK(rc == 1);
    CHECK(same_str(b.method, r->method) && same_str(b.authority, r->authority) &&
          same_str(b.target, r->target));
    CHECK(b.nheaders == r->nheaders);
    for (size_t i = 0; i < r->nheaders; i++)
        CHECK(same_str(b.names[i], r->names[i]) && same_str(b.values[i], r->values[i]));
    CHECK(b.body_len == r->body_len);
    CHECK(r->body_len == 0 || memcmp(b.body, r->body, r->body_len) == 0);
    CHECK(bg_gor_next(g, &b, err, sizeof err) == 0);
    bg_replay_req_clear(&b);
    bg_gor_close(g);
    free(doc);
}

static void read_all(const char *doc, size_t len, size_t max_entry, int round_trip)
{
    bg_gor_reader_t *g = bg_gor_open_mem(doc, len, max_entry);
    CHECK(g != NULL);
    bg_replay_req_t req;
    memset(&req, 0, sizeof req);
    size_t next_index = 0;
    uint64_t last_off = 0;
    int ended = 0;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        char err[512];
        err[0] = '\0';
        int rc = bg_gor_next(g, &req, err, sizeof err);
        if (rc == 0) {
            ended = 1;
            break;
        }
        if (rc < 0) {
            CHECK(err[0] != '\0');
            if (bg_gor_failed(g)) {
                CHECK(bg_gor_next(g, &req, err, sizeof err) == -1);
                ended = 1;
                break;
            }
            if (strstr(err, ": request ") != NULL)
                next_index++; /* a request payload that did not parse */
            continue;
        }
        CHECK(req.index == next_index);
        next_index++;
        CHECK(req.offset >= last_off);
        last_off = req.offset;
        CHECK(req.offset < len && req.line >= 1);
        CHECK(req.method != NULL && req.method[0] != '\0');
        CHECK(req.authority != NULL && req.authority[0] != '\0');
        CHECK(req.target != NULL && req.target[0] != '\0');
        CHECK(req.url != NULL && strncmp(req.url, "http://", 7) == 0);
        CHECK(req.nheaders <= BG_REPLAY_MAX_HEADERS);
        CHECK(req.body != NULL || req.body_len == 0);
        for (size_t i = 0; i < req.nheaders; i++) {
            CHECK(req.names[i] != NULL && req.values[i] != NULL);
            CHECK(strcasecmp(req.names[i], "host") != 0 &&
                  strcasecmp(req.names[i], "content-length") != 0 &&
                  strcasecmp(req.names[i], "transfer-encoding") != 0);
        }
        if (round_trip)
            check_round_trip(&req);
    }
    CHECK(ended);
    bg_replay_req_clear(&req);
    bg_gor_close(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *doc = (const char *)data;
    read_all(doc, size, 0, 1);
    read_all(doc, size, 64, 0);
    return 0;
}
