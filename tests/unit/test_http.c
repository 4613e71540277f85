/*
 * Unit tests for proxy/http.c: the strict head parsers and the chunked
 * decoder. Cases are tables; every valid head is also fed as each of its
 * strict prefixes, and every chunked body split at every byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/http.h"

#define MAX_HEAD 8192
/* A string literal with its length, so that cases may contain NUL bytes. */
#define RAW(lit) lit, sizeof(lit) - 1

/* ------------------------------------------------------------------------
 * Requests that must parse
 * ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *head; /* the whole head; head_len must be its length */
    const char *tail; /* bytes after the head (body, next request): untouched */
    const char *method;
    const char *target;
    int minor;
    size_t nheaders;
    int64_t content_length;
    int chunked;
    int keep_alive;
    int expect_continue;
    int upgrade;
    const char *host;  /* NULL: no Host field */
    const char *field; /* optional: a field whose exact value is checked */
    const char *value;
} req_ok_t;

static const req_ok_t req_ok[] = {
    {"GET with Host", "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "", "GET",
     "/index.html?q=1", 1, 1, -1, 0, 1, 0, 0, "example.com", NULL, NULL},
    {"POST with Content-Length",
     "POST /api/v1/users HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: "
     "application/json\r\nContent-Length: 13\r\n\r\n",
     "{\"id\":\"4711\"}", "POST", "/api/v1/users", 1, 3, 13, 0, 1, 0, 0, "api.example.com",
     "content-type", "application/json"},
    {"chunked request", "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
     "5\r\nhello\r\n0\r\n\r\n", "POST", "/up", 1, 2, -1, 1, 1, 0, 0, "a", NULL, NULL},
    {"chunked, any case and OWS",
     "PUT /x HTTP/1.1\r\nHost: a\r\ntransfer-encoding: \t CHUNKED \t\r\n\r\n", "", "PUT", "/x", 1,
     2, -1, 1, 1, 0, 0, "a", "Transfer-Encoding", "CHUNKED"},
    {"HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n", "", "GET", "/", 0, 0, -1, 0, 0, 0, 0,
     NULL, NULL, NULL},
    {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n", "",
     "GET", "/", 0, 2, -1, 0, 1, 0, 0, "a", NULL, NULL},
    {"HTTP/1.0 keep-alive among other tokens",
     "GET / HTTP/1.0\r\nConnection: foo, , keep-alive ,bar\r\n\r\n", "", "GET", "/", 0, 1, -1, 0, 1,
     0, 0, NULL, NULL, NULL},
    {"HTTP/1.1 Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "",
     "GET", "/", 1, 2, -1, 0, 0, 0, 0, "a", NULL, NULL},
    {"close wins over keep-alive",
     "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: CLOSE\r\n\r\n", "", "GET",
     "/", 1, 3, -1, 0, 0, 0, 0, "a", NULL, NULL},
    {"HTTP/1.0 close wins", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", "", "GET",
     "/", 0, 1, -1, 0, 0, 0, 0, NULL, NULL, NULL},
    {"two leading CRLFs", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "", "GET", "/", 1, 1, -1, 0,
     1, 0, 0, "a", NULL, NULL},
    {"four leading CRLFs (the limit)", "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "",
     "GET", "/", 1, 1, -1, 0, 1, 0, 0, "a", NULL, NULL},
    {"OWS trimmed, inner spaces kept",
     "GET / HTTP/1.1\r\nHost:a\r\nX-Pad: \t value with  inner\tspaces \t \r\n\r\n", "", "GET", "/",
     1, 2, -1, 0, 1, 0, 0, "a", "x-pad", "value with  inner\tspaces"},
    {"obs-text in value",
     "GET / HTTP/1.1\r\nHost: a\r\nX-Name: \xe5\xbc\xa0\xe4\xb8\x89 \xff\x80\r\n\r\n", "", "GET",
     "/", 1, 2, -1, 0, 1, 0, 0, "a", "X-Name", "\xe5\xbc\xa0\xe4\xb8\x89 \xff\x80"},
    {"long value crosses vector blocks",
     "GET / HTTP/1.1\r\nHost: a\r\nCookie: sid=0123456789abcdef0123456789abcdef; "
     "t=\xe4\xb8\xad\t~\r\n\r\n",
     "", "GET", "/", 1, 2, -1, 0, 1, 0, 0, "a", "cookie",
     "sid=0123456789abcdef0123456789abcdef; t=\xe4\xb8\xad\t~"},
    {"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank: \t \r\n\r\n", "", "GET", "/",
     1, 3, -1, 0, 1, 0, 0, "a", "x-blank", ""},
    {"100-continue, any case",
     "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n", "data",
     "PUT", "/f", 1, 3, 4, 0, 1, 1, 0, "a", NULL, NULL},
    {"100-continue ignored in HTTP/1.0",
     "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", "", "PUT", "/f", 0, 2,
     0, 0, 0, 0, 0, NULL, NULL, NULL},
    {"Connection: upgrade",
     "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
     "", "GET", "/ws", 1, 3, -1, 0, 1, 0, 1, "a", "upgrade", "websocket"},
    {"Upgrade field alone", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n", "", "GET", "/", 1,
     2, -1, 0, 1, 0, 1, "a", NULL, NULL},
    {"identical duplicate Content-Length",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n", "abc", "POST",
     "/", 1, 3, 3, 0, 1, 0, 0, "a", NULL, NULL},
    {"Content-Length 2^53",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n", "", "POST", "/", 1,
     2, 9007199254740992LL, 0, 1, 0, 0, "a", NULL, NULL},
    {"Content-Length leading zeros",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0000000000000000000000007\r\n\r\n", "1234567",
     "POST", "/", 1, 2, 7, 0, 1, 0, 0, "a", NULL, NULL},
    {"pipelined request untouched", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n",
     "GET /2 HTTP/1.1\r\nHost: b\r\n\r\n", "GET", "/1", 1, 1, -1, 0, 1, 0, 0, "a", NULL, NULL},
    {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", "", "GET", "/", 1, 1, -1, 0, 1, 0, 0, "",
     NULL, NULL},
    {"names are case-insensitive", "GET / HTTP/1.1\r\nhOsT: a:8080\r\nCONTENT-length: 2\r\n\r\n",
     "ok", "GET", "/", 1, 2, 2, 0, 1, 0, 0, "a:8080", NULL, NULL},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "", "OPTIONS", "*", 1, 1, -1, 0, 1, 0, 0,
     "a", NULL, NULL},
    {"absolute-form and token method",
     "M-SEARCH! http://a.example/p?x=%20 HTTP/1.1\r\nHost: a.example\r\n\r\n", "", "M-SEARCH!",
     "http://a.example/p?x=%20", 1, 1, -1, 0, 1, 0, 0, "a.example", NULL, NULL},
    {"obs-text in target", "GET /\xe4\xb8\xad HTTP/1.1\r\nHost: a\r\n\r\n", "", "GET",
     "/\xe4\xb8\xad", 1, 1, -1, 0, 1, 0, 0, "a", NULL, NULL},
    {"every tchar in a name", "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", "",
     "GET", "/", 1, 2, -1, 0, 1, 0, 0, "a", "!#$%&'*+-.^_`|~09azaz", "v"},
};

/* Field room for the parses below: the most the parser allows. */
static bg_http_header_t req_fields[BG_HTTP_MAX_HEADERS];
static bg_http_header_t resp_fields[BG_HTTP_MAX_HEADERS];

static void check_request(const req_ok_t *c, const bg_http_request_t *r, size_t head_len)
{
    assert_int_equal(r->head_len, head_len);
    assert_int_equal(r->method_len, strlen(c->method));
    assert_memory_equal(r->method, c->method, r->method_len);
    assert_int_equal(r->target_len, strlen(c->target));
    assert_memory_equal(r->target, c->target, r->target_len);
    assert_int_equal(r->version_minor, c->minor);
    assert_int_equal(r->nheaders, c->nheaders);
    assert_int_equal(r->content_length, c->content_length);
    assert_int_equal(r->chunked, c->chunked);
    assert_int_equal(r->keep_alive, c->keep_alive);
    assert_int_equal(r->expect_continue, c->expect_continue);
    assert_int_equal(r->upgrade, c->upgrade);
    if (c->host == NULL) {
        assert_null(r->host);
    } else {
        assert_non_null(r->host);
        assert_int_equal(r->host_len, strlen(c->host));
        assert_memory_equal(r->host, c->host, r->host_len);
    }
    if (c->field != NULL) {
        const bg_http_header_t *h = bg_http_find_header(r->headers, r->nheaders, c->field);
        assert_non_null(h);
        assert_int_equal(h->value_len, strlen(c->value));
        if (h->value_len > 0)
            assert_memory_equal(h->value, c->value, h->value_len);
    }
}

static void test_request_ok(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    for (size_t i = 0; i < sizeof req_ok / sizeof req_ok[0]; i++) {
        const req_ok_t *c = &req_ok[i];
        size_t hl = strlen(c->head), tl = strlen(c->tail);
        char *buf = malloc(hl + tl + 1);
        assert_non_null(buf);
        memcpy(buf, c->head, hl);
        memcpy(buf + hl, c->tail, tl + 1);
        int status = 0;
        const char *why = NULL;
        bg_http_result_t r = bg_http_parse_request(buf, hl + tl, MAX_HEAD, &req, &status, &why);
        if (r != BG_HTTP_OK)
            fail_msg("case '%s': result %d status %d why %s", c->name, r, status, why ? why : "-");
        check_request(c, &req, hl);
        /* Every header pointer lies inside the head. */
        for (size_t k = 0; k < req.nheaders; k++) {
            assert_true(req.headers[k].name >= buf);
            assert_true(req.headers[k].value + req.headers[k].value_len <= buf + hl);
        }
        free(buf);
    }
}

/* Every strict prefix of a valid head is INCOMPLETE, never an error. */
static void test_request_prefixes_incomplete(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    for (size_t i = 0; i < sizeof req_ok / sizeof req_ok[0]; i++) {
        const req_ok_t *c = &req_ok[i];
        size_t hl = strlen(c->head);
        for (size_t n = 0; n < hl; n++) {
            /* A copy of exactly N bytes, so ASan catches any read past it. */
            char *buf = malloc(n ? n : 1);
            assert_non_null(buf);
            memcpy(buf, c->head, n);
            int status = 0;
            bg_http_result_t r = bg_http_parse_request(buf, n, MAX_HEAD, &req, &status, NULL);
            if (r != BG_HTTP_INCOMPLETE)
                fail_msg("case '%s' prefix %zu: result %d status %d", c->name, n, r, status);
            free(buf);
        }
    }
}

/* MAX_HEAD is inclusive: a head of exactly MAX_HEAD bytes parses, one more
 * byte is 431 once that many bytes are buffered. */
static void test_request_head_limit(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    for (size_t i = 0; i < sizeof req_ok / sizeof req_ok[0]; i++) {
        const char *h = req_ok[i].head;
        size_t hl = strlen(h);
        int status = 0;
        const char *why = NULL;
        assert_int_equal(bg_http_parse_request(h, hl, hl, &req, &status, &why), BG_HTTP_OK);
        assert_int_equal(bg_http_parse_request(h, hl, hl - 1, &req, &status, &why), BG_HTTP_ERROR);
        assert_int_equal(status, 431);
        assert_non_null(why);
        /* Fewer bytes than the limit: still waiting. */
        assert_int_equal(bg_http_parse_request(h, hl - 1, hl, &req, &status, &why),
                         BG_HTTP_INCOMPLETE);
    }
}

/* ------------------------------------------------------------------------
 * Requests that must be refused, with the status to answer
 * ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    int status;
} req_bad_t;

static const req_bad_t req_bad[] = {
    {"CL then TE",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
         "chunked\r\n\r\nhello"),
     400},
    {"TE then CL",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: "
         "5\r\n\r\n"),
     400},
    {"TE gzip with CL is 400, not 501",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n"),
     400},
    {"differing duplicate CL",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400},
    {"duplicate CL spelled differently",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n"), 400},
    {"CL list 1, 1", RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n"), 400},
    {"CL plus sign", RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400},
    {"CL minus sign", RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n"), 400},
    {"CL inner space", RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n"), 400},
    {"CL hex", RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"), 400},
    {"CL hex digits", RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"), 400},
    {"CL empty", RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), 400},
    {"CL 2^53+1", RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740993\r\n\r\n"),
     400},
    {"CL past 2^64",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 184467440737095516170\r\n\r\n"), 400},
    {"obs-fold", RAW("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n"), 400},
    {"obs-fold with HTAB", RAW("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n"), 400},
    {"whitespace before first field", RAW("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400},
    {"bare CR in value", RAW("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n"), 400},
    {"bare CR ends request line", RAW("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400},
    {"bare CR in final line", RAW("GET / HTTP/1.1\r\nHost: a\r\n\rX"), 400},
    {"bare CR leading line", RAW("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"bare LF request line", RAW("GET / HTTP/1.1\nHost: a\r\n\r\n"), 400},
    {"bare LF field line", RAW("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400},
    {"bare LF final line", RAW("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400},
    {"bare LF leading line", RAW("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"bare LF after target", RAW("GET /\nHost: a\r\n\r\n"), 400},
    {"bare LF after name", RAW("GET / HTTP/1.1\r\nHost: a\r\nX-A\n\r\n"), 400},
    {"NUL in value", RAW("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n"), 400},
    {"CTL in value", RAW("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01\r\n\r\n"), 400},
    {"DEL in value", RAW("GET / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n"), 400},
    {"ESC deep in a long value",
     RAW("GET / HTTP/1.1\r\nHost: a\r\nCookie: 0123456789abcdef0123456789\x1b"
         "abcdef\r\n\r\n"),
     400},
    {"space before colon", RAW("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400},
    {"tab before colon", RAW("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400},
    {"line without colon", RAW("GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n"), 400},
    {"empty name", RAW("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n"), 400},
    {"non-token in name", RAW("GET / HTTP/1.1\r\nHost: a\r\nX(A): v\r\n\r\n"), 400},
    {"obs-text in name", RAW("GET / HTTP/1.1\r\nHost: a\r\nX\xe4: v\r\n\r\n"), 400},
    {"missing Host in 1.1", RAW("GET / HTTP/1.1\r\nX-A: b\r\n\r\n"), 400},
    {"two Hosts", RAW("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400},
    {"two identical Hosts", RAW("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400},
    {"two Hosts in 1.0", RAW("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400},
    {"HTTP/2.0", RAW("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505},
    {"HTTP/2 preface", RAW("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505},
    {"HTTP/1.2", RAW("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505},
    {"HTTP/0.9 version", RAW("GET / HTTP/0.9\r\n\r\n"), 505},
    {"HTTP/1.10", RAW("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400},
    {"lowercase http", RAW("GET / http/1.1\r\nHost: a\r\n\r\n"), 400},
    {"HTTP/1.1 with trailing space", RAW("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400},
    {"no version", RAW("GET /\r\nHost: a\r\n\r\n"), 400},
    {"two spaces after method", RAW("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"two spaces after target", RAW("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"tab as separator", RAW("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"leading space", RAW(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"non-token method", RAW("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"CTL in target", RAW("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"DEL in target", RAW("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"NUL deep in a long target",
     RAW("GET /0123456789abcdef0123456789abcdef\0x HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"five leading CRLFs", RAW("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"Expect: foo", RAW("PUT / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nContent-Length: 1\r\n\r\n"),
     417},
    {"Expect: 100-continue plus junk",
     RAW("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, foo\r\n\r\n"), 417},
    {"Expect loses to TE gzip, chunked",
     RAW("PUT / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
     501},
    {"Expect loses to TE gzip (400)",
     RAW("PUT / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nTransfer-Encoding: gzip\r\n\r\n"), 400},
    /* RFC 9112 6.3: chunked not the final coding (or absent) is 400, chunked
     * twice is 400 (6.1); a coding before a final chunked is 501. */
    {"TE gzip", RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 400},
    {"TE identity", RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"), 400},
    {"TE xchunked", RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), 400},
    {"TE chunkedx", RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n"), 400},
    {"TE chunked, identity",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), 400},
    {"TE chunked then a gzip field",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "gzip\r\n\r\n"),
     400},
    {"TE gzip, chunked",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501},
    {"TE gzip then a chunked field",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
         "chunked\r\n\r\n"),
     501},
    {"TE chunked twice in one field",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400},
    {"TE in two fields",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "chunked\r\n\r\n"),
     400},
    {"TE chunked with parameter",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), 501},
    {"TE chunked with a spaced parameter after chunked twice",
     RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked ; q=1\r\n\r\n"), 400},
    {"TE empty", RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), 400},
    {"TE only commas", RAW("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , ,\r\n\r\n"), 400},
    {"TE in HTTP/1.0", RAW("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"TE gzip in HTTP/1.0 is 400", RAW("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n"), 400},
};

static const char *const MARKER = "4711";

static void test_request_refused(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    for (size_t i = 0; i < sizeof req_bad / sizeof req_bad[0]; i++) {
        const req_bad_t *c = &req_bad[i];
        char *buf = malloc(c->len);
        assert_non_null(buf);
        memcpy(buf, c->raw, c->len);
        int status = 0;
        const char *why = NULL;
        bg_http_result_t r = bg_http_parse_request(buf, c->len, MAX_HEAD, &req, &status, &why);
        if (r != BG_HTTP_ERROR || status != c->status)
            fail_msg("case '%s': result %d status %d (want %d) why %s", c->name, r, status,
                     c->status, why ? why : "-");
        /* The reason is a static string, never a piece of the input. */
        assert_non_null(why);
        assert_true(strlen(why) > 0);
        assert_true(why < buf || why >= buf + c->len);

        /* The verdict does not depend on how the bytes arrive: each prefix is
         * INCOMPLETE or already the same refusal. */
        for (size_t n = 0; n < c->len; n++) {
            int st = 0;
            r = bg_http_parse_request(buf, n, MAX_HEAD, &req, &st, NULL);
            if (r == BG_HTTP_OK || (r == BG_HTTP_ERROR && st != c->status))
                fail_msg("case '%s' prefix %zu: result %d status %d", c->name, n, r, st);
        }
        free(buf);
    }
}

/* The reason never quotes the input, even for a value full of PI. */
static void test_request_why_is_static(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Id: 4711\x01\r\n\r\n";
    int status = 0;
    const char *why = NULL;
    assert_int_equal(bg_http_parse_request(raw, sizeof raw - 1, MAX_HEAD, &req, &status, &why),
                     BG_HTTP_ERROR);
    assert_int_equal(status, 400);
    assert_null(strstr(why, MARKER));
}

/* Build "GET / HTTP/1.1\r\nHost: a\r\n" + (N-1) more fields + CRLF. */
static size_t build_many_fields(char *buf, size_t cap, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 1; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "X-F%zu: %zu\r\n", i, i);
    len += (size_t)snprintf(buf + len, cap - len, "\r\n");
    assert_true(len < cap);
    return len;
}

static void test_request_field_count(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    static char buf[8192];
    int status = 0;
    const char *why = NULL;

    size_t len = build_many_fields(buf, sizeof buf, BG_HTTP_MAX_HEADERS);
    assert_int_equal(bg_http_parse_request(buf, len, sizeof buf, &req, &status, &why), BG_HTTP_OK);
    assert_int_equal(req.nheaders, BG_HTTP_MAX_HEADERS);
    assert_int_equal(req.head_len, len);

    len = build_many_fields(buf, sizeof buf, BG_HTTP_MAX_HEADERS + 1);
    assert_int_equal(bg_http_parse_request(buf, len, sizeof buf, &req, &status, &why),
                     BG_HTTP_ERROR);
    assert_int_equal(status, 431);
    /* Refused as soon as the 101st field starts, not at the end of the head. */
    const char *extra = strstr(buf, "X-F100:");
    assert_non_null(extra);
    size_t at = (size_t)(extra - buf);
    assert_int_equal(bg_http_parse_request(buf, at, sizeof buf, &req, &status, &why),
                     BG_HTTP_INCOMPLETE);
    assert_int_equal(bg_http_parse_request(buf, at + 1, sizeof buf, &req, &status, &why),
                     BG_HTTP_ERROR);
    assert_int_equal(status, 431);
}

/* The caller's room bounds the fields: a head parses into exactly as many
 * fields as it has (what the proxy keeps per exchange), one more than the
 * room is 431 at any count, and no room at all refuses any field. */
static void test_field_room(void **state)
{
    (void)state;
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
    bg_http_header_t room[3];
    bg_http_request_t req = {.headers = room, .max_headers = 3};
    int status = 0;
    const char *why = NULL;
    assert_int_equal(bg_http_parse_request(raw, sizeof raw - 1, MAX_HEAD, &req, &status, &why),
                     BG_HTTP_OK);
    assert_int_equal(req.nheaders, 3);
    const bg_http_header_t *h = bg_http_find_header(req.headers, req.nheaders, "x-b");
    assert_non_null(h);
    assert_memory_equal(h->value, "2", 1);

    req.max_headers = 2;
    assert_int_equal(bg_http_parse_request(raw, sizeof raw - 1, MAX_HEAD, &req, &status, &why),
                     BG_HTTP_ERROR);
    assert_int_equal(status, 431);

    bg_http_request_t none = {.headers = NULL, .max_headers = 5};
    assert_int_equal(bg_http_parse_request(raw, sizeof raw - 1, MAX_HEAD, &none, &status, &why),
                     BG_HTTP_ERROR);
    assert_int_equal(status, 431);

    /* More room than the documented limit does not lift the limit. */
    static bg_http_header_t big[BG_HTTP_MAX_HEADERS + 10];
    static char buf[8192];
    bg_http_request_t wide = {.headers = big, .max_headers = BG_HTTP_MAX_HEADERS + 10};
    size_t len = build_many_fields(buf, sizeof buf, BG_HTTP_MAX_HEADERS + 1);
    assert_int_equal(bg_http_parse_request(buf, len, sizeof buf, &wide, &status, &why),
                     BG_HTTP_ERROR);
    assert_int_equal(status, 431);

    static const char rraw[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    bg_http_response_t resp = {.headers = room, .max_headers = 2};
    assert_int_equal(bg_http_parse_response(rraw, sizeof rraw - 1, MAX_HEAD, &resp, &why),
                     BG_HTTP_OK);
    assert_int_equal(resp.nheaders, 2);
    resp.max_headers = 1;
    assert_int_equal(bg_http_parse_response(rraw, sizeof rraw - 1, MAX_HEAD, &resp, &why),
                     BG_HTTP_ERROR);
}

static void test_request_head_too_large(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    static char buf[4096];
    int status = 0;
    const char *why = NULL;
    size_t len = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(buf + len, 'v', sizeof buf - len);

    /* Below the limit and no end of head: wait. */
    assert_int_equal(bg_http_parse_request(buf, 1023, 1024, &req, &status, &why),
                     BG_HTTP_INCOMPLETE);
    /* At or past the limit: 431, whatever the bytes after the limit are. */
    assert_int_equal(bg_http_parse_request(buf, 1024, 1024, &req, &status, &why), BG_HTTP_ERROR);
    assert_int_equal(status, 431);
    status = 0;
    assert_int_equal(bg_http_parse_request(buf, sizeof buf, 1024, &req, &status, &why),
                     BG_HTTP_ERROR);
    assert_int_equal(status, 431);
    /* A limit of zero refuses everything, even an empty buffer. */
    assert_int_equal(bg_http_parse_request(buf, 0, 0, &req, &status, &why), BG_HTTP_ERROR);
    assert_int_equal(status, 431);
}

/* Every CTL at every position of a long value is caught (vector and tail
 * paths), and every other byte value is accepted. */
static void test_request_value_bytes(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX-V: ";
    char buf[128];
    for (unsigned b = 0; b < 256; b++) {
        for (size_t pos = 1; pos < 40; pos += 3) {
            size_t len = sizeof pre - 1;
            memcpy(buf, pre, len);
            memset(buf + len, 'x', 40);
            buf[len + pos] = (char)b;
            len += 40;
            memcpy(buf + len, "x\r\n\r\n", 5);
            len += 5;
            int status = 0;
            bg_http_result_t r = bg_http_parse_request(buf, len, MAX_HEAD, &req, &status, NULL);
            int ctl = (b < 0x20 && b != '\t') || b == 0x7f;
            if (ctl) {
                if (r != BG_HTTP_ERROR || status != 400)
                    fail_msg("byte 0x%02x at %zu: result %d status %d", b, pos, r, status);
            } else {
                if (r != BG_HTTP_OK)
                    fail_msg("byte 0x%02x at %zu refused", b, pos);
                assert_int_equal(req.headers[1].value_len, 41);
            }
        }
    }
}

/* ------------------------------------------------------------------------
 * Responses
 * ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *head;
    const char *tail;
    int minor;
    int status;
    const char *reason;
    size_t nheaders;
    int64_t content_length;
    int chunked;
    int keep_alive;
} resp_ok_t;

static const resp_ok_t resp_ok[] = {
    {"200 with CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
     "hello", 1, 200, "OK", 2, 5, 0, 1},
    {"204 empty reason", "HTTP/1.1 204 \r\nDate: x\r\n\r\n", "", 1, 204, "", 1, -1, 0, 1},
    {"204 without SP", "HTTP/1.1 204\r\n\r\n", "", 1, 204, "", 0, -1, 0, 1},
    {"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\n\r\n", "body until close", 0, 200, "OK", 0, -1, 0, 0},
    {"HTTP/1.0 keep-alive",
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", "", 0, 200, "OK", 2,
     0, 0, 1},
    {"close", "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n", "", 1, 500,
     "Internal Server Error", 1, -1, 0, 0},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "0\r\n\r\n", 1, 200, "OK",
     1, -1, 1, 1},
    {"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip , Chunked\r\n\r\n", "", 1, 200,
     "OK", 1, -1, 1, 1},
    {"TE over two fields",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", "", 1, 200,
     "OK", 2, -1, 1, 1},
    {"gzip only: read until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "", 1,
     200, "OK", 1, -1, 0, 1},
    {"chunked not final: read until close",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "", 1, 200, "OK", 1, -1, 0, 1},
    {"obs-text reason", "HTTP/1.1 404 Nicht gefunden \xc3\xa4\r\n\r\n", "", 1, 404,
     "Nicht gefunden \xc3\xa4", 0, -1, 0, 1},
    {"101", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
     "\x81\x05hello", 1, 101, "Switching Protocols", 2, -1, 0, 1},
    {"status 999", "HTTP/1.1 999 Odd\r\n\r\n", "", 1, 999, "Odd", 0, -1, 0, 1},
    {"identical duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
     "ok", 1, 200, "OK", 2, 2, 0, 1},
    {"pipelined next response", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
     "HTTP/1.1 200 OK\r\n\r\n", 1, 304, "Not Modified", 1, -1, 0, 1},
};

static void test_response_ok(void **state)
{
    (void)state;
    static bg_http_response_t resp = {.headers = resp_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    for (size_t i = 0; i < sizeof resp_ok / sizeof resp_ok[0]; i++) {
        const resp_ok_t *c = &resp_ok[i];
        size_t hl = strlen(c->head), tl = strlen(c->tail);
        char *buf = malloc(hl + tl + 1);
        assert_non_null(buf);
        memcpy(buf, c->head, hl);
        memcpy(buf + hl, c->tail, tl + 1);
        const char *why = NULL;
        bg_http_result_t r = bg_http_parse_response(buf, hl + tl, MAX_HEAD, &resp, &why);
        if (r != BG_HTTP_OK)
            fail_msg("case '%s': result %d why %s", c->name, r, why ? why : "-");
        assert_int_equal(resp.head_len, hl);
        assert_int_equal(resp.version_minor, c->minor);
        assert_int_equal(resp.status, c->status);
        assert_int_equal(resp.reason_len, strlen(c->reason));
        if (resp.reason_len > 0)
            assert_memory_equal(resp.reason, c->reason, resp.reason_len);
        assert_int_equal(resp.nheaders, c->nheaders);
        assert_int_equal(resp.content_length, c->content_length);
        assert_int_equal(resp.chunked, c->chunked);
        assert_int_equal(resp.keep_alive, c->keep_alive);

        for (size_t n = 0; n < hl; n++) {
            r = bg_http_parse_response(buf, n, MAX_HEAD, &resp, &why);
            if (r != BG_HTTP_INCOMPLETE)
                fail_msg("case '%s' prefix %zu: result %d", c->name, n, r);
        }
        assert_int_equal(bg_http_parse_response(buf, hl + tl, hl - 1, &resp, &why), BG_HTTP_ERROR);
        free(buf);
    }
}

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
} resp_bad_t;

static const resp_bad_t resp_bad[] = {
    {"TE and CL",
     RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")},
    {"CL and TE gzip",
     RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n")},
    {"TE in HTTP/1.0", RAW("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")},
    {"chunked twice", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n")},
    {"HTTP/2.0", RAW("HTTP/2.0 200 OK\r\n\r\n")},
    {"HTTP/1.2", RAW("HTTP/1.2 200 OK\r\n\r\n")},
    {"two-digit status", RAW("HTTP/1.1 99 OK\r\n\r\n")},
    {"four-digit status", RAW("HTTP/1.1 2000 OK\r\n\r\n")},
    {"status below 100", RAW("HTTP/1.1 099 OK\r\n\r\n")},
    {"letter in status", RAW("HTTP/1.1 20x OK\r\n\r\n")},
    {"no status", RAW("HTTP/1.1\r\n\r\n")},
    {"two spaces", RAW("HTTP/1.1  200 OK\r\n\r\n")},
    {"ICY", RAW("ICY 200 OK\r\n\r\n")},
    {"bare LF status line", RAW("HTTP/1.1 200 OK\n\r\n")},
    {"bare LF status no reason", RAW("HTTP/1.1 200\n\r\n")},
    {"bare LF field", RAW("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n")},
    {"bare CR", RAW("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n")},
    {"CTL in reason", RAW("HTTP/1.1 200 O\x01K\r\n\r\n")},
    {"NUL in value", RAW("HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n")},
    {"differing CL", RAW("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")},
    {"CL list", RAW("HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n")},
    {"CL sign", RAW("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n")},
    {"obs-fold", RAW("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n")},
    {"space before colon", RAW("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n")},
    {"leading CRLF", RAW("\r\nHTTP/1.1 200 OK\r\n\r\n")},
};

static void test_response_refused(void **state)
{
    (void)state;
    static bg_http_response_t resp = {.headers = resp_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    for (size_t i = 0; i < sizeof resp_bad / sizeof resp_bad[0]; i++) {
        const resp_bad_t *c = &resp_bad[i];
        char *buf = malloc(c->len);
        assert_non_null(buf);
        memcpy(buf, c->raw, c->len);
        const char *why = NULL;
        bg_http_result_t r = bg_http_parse_response(buf, c->len, MAX_HEAD, &resp, &why);
        if (r != BG_HTTP_ERROR)
            fail_msg("case '%s': result %d", c->name, r);
        assert_non_null(why);
        assert_true(why < buf || why >= buf + c->len);
        for (size_t n = 0; n < c->len; n++) {
            if (bg_http_parse_response(buf, n, MAX_HEAD, &resp, NULL) == BG_HTTP_OK)
                fail_msg("case '%s' prefix %zu parsed", c->name, n);
        }
        free(buf);
    }
}

static void test_response_limits(void **state)
{
    (void)state;
    static bg_http_response_t resp = {.headers = resp_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    static char buf[8192];
    const char *why = NULL;
    size_t len = (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < BG_HTTP_MAX_HEADERS; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "X-F%d: v\r\n", i);
    size_t fields_end = len;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "\r\n");
    assert_int_equal(bg_http_parse_response(buf, len, sizeof buf, &resp, &why), BG_HTTP_OK);
    assert_int_equal(resp.nheaders, BG_HTTP_MAX_HEADERS);
    assert_int_equal(resp.head_len, len);

    len = fields_end +
          (size_t)snprintf(buf + fields_end, sizeof buf - fields_end, "X-Last: v\r\n\r\n");
    why = NULL;
    assert_int_equal(bg_http_parse_response(buf, len, sizeof buf, &resp, &why), BG_HTTP_ERROR);
    assert_non_null(why);

    /* Head size limit, as for requests. */
    assert_int_equal(bg_http_parse_response(buf, 200, 200, &resp, &why), BG_HTTP_ERROR);
    assert_int_equal(bg_http_parse_response(buf, 199, 200, &resp, &why), BG_HTTP_INCOMPLETE);
}

/* ------------------------------------------------------------------------
 * Helpers: find_header, is_hop_by_hop
 * ---------------------------------------------------------------------- */

static void test_find_header(void **state)
{
    (void)state;
    static bg_http_request_t req = {.headers = req_fields, .max_headers = BG_HTTP_MAX_HEADERS};
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nX-AB: 3\r\n\r\n";
    assert_int_equal(bg_http_parse_request(raw, sizeof raw - 1, MAX_HEAD, &req, NULL, NULL),
                     BG_HTTP_OK);
    const bg_http_header_t *h = bg_http_find_header(req.headers, req.nheaders, "X-a");
    assert_non_null(h);
    assert_ptr_equal(h, &req.headers[1]);
    h = bg_http_find_header(req.headers, req.nheaders, "x-ab");
    assert_ptr_equal(h, &req.headers[3]);
    assert_null(bg_http_find_header(req.headers, req.nheaders, "X"));
    assert_null(bg_http_find_header(req.headers, req.nheaders, "X-ABC"));
    assert_null(bg_http_find_header(req.headers, 0, "Host"));
}

typedef struct {
    const char *name;
    const char *connection; /* NULL: no Connection field */
    int hop;
} hop_case_t;

static const hop_case_t hop_cases[] = {
    {"Connection", NULL, 1},
    {"keep-alive", NULL, 1},
    {"Proxy-Connection", NULL, 1},
    {"TE", NULL, 1},
    {"Trailer", NULL, 1},
    {"TRANSFER-ENCODING", NULL, 1},
    {"Upgrade", NULL, 1},
    {"Proxy-Authorization", NULL, 1},
    {"Proxy-Authenticate", NULL, 1},
    {"Host", NULL, 0},
    {"Content-Length", NULL, 0},
    {"Trailers", NULL, 0},
    {"T", NULL, 0},
    {"X-Secret", "keep-alive, x-secret", 1},
    {"X-Secret", " X-SECRET ", 1},
    {"X-Secret", "x-secret2, x-secre", 0},
    {"X-Secret", "", 0},
    {"Authorization", "close", 0},
};

static void test_hop_by_hop(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hop_cases / sizeof hop_cases[0]; i++) {
        const hop_case_t *c = &hop_cases[i];
        size_t cl = c->connection ? strlen(c->connection) : 0;
        int got = bg_http_is_hop_by_hop(c->name, strlen(c->name), c->connection, cl);
        if (got != c->hop)
            fail_msg("'%s' with Connection '%s': %d", c->name,
                     c->connection ? c->connection : "(none)", got);
    }
}

/* ------------------------------------------------------------------------
 * Chunked decoder
 * ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *body; /* the chunked body, exactly; consumed in full */
    size_t body_len;
    const char *data; /* decoded data */
    size_t data_len;
} chunk_ok_t;

static const chunk_ok_t chunk_ok[] = {
    {"one chunk", RAW("5\r\nhello\r\n0\r\n\r\n"), RAW("hello")},
    {"several, hex in both cases",
     RAW("3\r\nabc\r\nA\r\n0123456789\r\na\r\nABCDEFGHIJ\r\n0\r\n\r\n"),
     RAW("abc0123456789ABCDEFGHIJ")},
    {"empty body", RAW("0\r\n\r\n"), RAW("")},
    {"extensions", RAW("5;name=value;x=\"q;uo\\\"ted\"\r\nhello\r\n0;last\r\n\r\n"), RAW("hello")},
    {"BWS before extension", RAW("5 \t;a=b\r\nhello\r\n0 ;z\r\n\r\n"), RAW("hello")},
    {"obs-text in extension", RAW("5;n=\xe4\xb8\xad\r\nhello\r\n0\r\n\r\n"), RAW("hello")},
    {"trailers", RAW("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:\t v \r\n\r\n"), RAW("hello")},
    {"empty trailer value", RAW("1\r\nx\r\n0\r\nX-E:\r\n\r\n"), RAW("x")},
    {"leading zeros", RAW("0005\r\nhello\r\n000\r\n\r\n"), RAW("hello")},
    {"data that looks like framing", RAW("9\r\n0\r\n\r\nxy\r\n\r\n0\r\n\r\n"),
     RAW("0\r\n\r\nxy\r\n")},
    {"binary data", RAW("4\r\n\0\r\n\xff\r\n0\r\n\r\n"), RAW("\0\r\n\xff")},
};

/* Pipelined bytes after the body, which the decoder must leave alone. */
static const char NEXT[] = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

/*
 * Feed BUF[0..LEN) to a fresh decoder, revealing it in steps: first SPLIT
 * bytes, then STEP more at a time (0: everything). Appends data to OUT.
 * Returns bytes consumed, or -1 on error.
 */
static ssize_t feed_chunked(bg_http_chunked_t *c, const char *buf, size_t len, size_t split,
                            size_t step, char *out, size_t *out_len, const char **why)
{
    size_t pos = 0, avail = split < len ? split : len;
    bg_http_chunked_init(c);
    *out_len = 0;
    for (;;) {
        size_t dl = 12345;
        ssize_t r = bg_http_chunked_step(c, buf + pos, avail - pos, &dl, why);
        if (r < 0)
            return -1;
        assert_true((size_t)r <= avail - pos);
        if (dl > 0) {
            /* A data span is exactly what was consumed. */
            assert_int_equal(dl, (size_t)r);
            memcpy(out + *out_len, buf + pos, dl);
            *out_len += dl;
        }
        pos += (size_t)r;
        if (r > 0)
            continue;
        assert_int_equal(dl, 0);
        if (c->done || avail == len)
            return (ssize_t)pos;
        avail = step == 0 || len - avail < step ? len : avail + step;
    }
}

static void test_chunked_ok(void **state)
{
    (void)state;
    static char buf[256], out[256];
    for (size_t i = 0; i < sizeof chunk_ok / sizeof chunk_ok[0]; i++) {
        const chunk_ok_t *c = &chunk_ok[i];
        size_t len = c->body_len + sizeof NEXT - 1;
        assert_true(len <= sizeof buf);
        memcpy(buf, c->body, c->body_len);
        memcpy(buf + c->body_len, NEXT, sizeof NEXT - 1);

        /* Whole, every two-part split, and one byte at a time. */
        for (size_t split = 0; split <= len + 1; split++) {
            size_t step = split == len + 1 ? 1 : 0;
            bg_http_chunked_t dec;
            size_t out_len;
            const char *why = NULL;
            ssize_t used = feed_chunked(&dec, buf, len, split == len + 1 ? 0 : split, step, out,
                                        &out_len, &why);
            if (used < 0)
                fail_msg("case '%s' split %zu: error %s", c->name, split, why);
            assert_true(dec.done);
            assert_int_equal((size_t)used, c->body_len);
            assert_int_equal(out_len, c->data_len);
            assert_int_equal(dec.body_bytes, c->data_len);
            if (out_len > 0)
                assert_memory_equal(out, c->data, out_len);
            /* Done: nothing more is consumed. */
            size_t dl = 1;
            assert_int_equal(bg_http_chunked_step(&dec, buf + used, len - (size_t)used, &dl, &why),
                             0);
            assert_int_equal(dl, 0);
        }
    }
}

typedef struct {
    const char *name;
    const char *body;
    size_t len;
} chunk_bad_t;

static const chunk_bad_t chunk_bad[] = {
    {"non-hex size", RAW("g\r\nx\r\n0\r\n\r\n")},
    {"empty size", RAW("\r\nx\r\n0\r\n\r\n")},
    {"negative size", RAW("-5\r\nhello\r\n0\r\n\r\n")},
    {"plus sign", RAW("+5\r\nhello\r\n0\r\n\r\n")},
    {"0x prefix", RAW("0x5\r\nhello\r\n0\r\n\r\n")},
    {"leading space", RAW(" 5\r\nhello\r\n0\r\n\r\n")},
    {"whitespace then CRLF", RAW("5 \r\nhello\r\n0\r\n\r\n")},
    {"whitespace then junk", RAW("5 x\r\nhello\r\n0\r\n\r\n")},
    {"size 2^53+1", RAW("20000000000001\r\n")},
    {"size past 2^64", RAW("1FFFFFFFFFFFFFFFF\r\n")},
    {"bare LF after size", RAW("5\nhello\r\n0\r\n\r\n")},
    {"bare LF after extension", RAW("5;a=b\nhello\r\n0\r\n\r\n")},
    {"bare CR after size", RAW("5\rhello\r\n0\r\n\r\n")},
    {"NUL in extension", RAW("5;a\0\r\nhello\r\n0\r\n\r\n")},
    {"missing CRLF after data", RAW("5\r\nhelloX\r\n0\r\n\r\n")},
    {"other byte instead of CR after data", RAW("5\r\nhelloX\n0\r\n\r\n")},
    {"data longer than size", RAW("3\r\nhello\r\n0\r\n\r\n")},
    {"bare LF after data", RAW("5\r\nhello\n0\r\n\r\n")},
    {"CR without LF after data", RAW("5\r\nhello\r0\r\n\r\n")},
    {"bare LF at end", RAW("0\r\n\n")},
    {"bare CR at end", RAW("0\r\n\rX")},
    {"bare LF after trailer", RAW("0\r\nX: a\n\r\n")},
    {"bare CR in trailer", RAW("0\r\nX: a\rb\r\n\r\n")},
    {"trailer obs-fold", RAW("0\r\nX: a\r\n b\r\n\r\n")},
    {"trailer without colon", RAW("0\r\nX\r\n\r\n")},
    {"trailer space before colon", RAW("0\r\nX : a\r\n\r\n")},
    {"trailer CTL", RAW("0\r\nX: \x01\r\n\r\n")},
    {"trailer empty name", RAW("0\r\n: a\r\n\r\n")},
};

static void test_chunked_refused(void **state)
{
    (void)state;
    static char out[256];
    for (size_t i = 0; i < sizeof chunk_bad / sizeof chunk_bad[0]; i++) {
        const chunk_bad_t *c = &chunk_bad[i];
        for (size_t split = 0; split <= c->len; split++) {
            bg_http_chunked_t dec;
            size_t out_len;
            const char *why = NULL;
            char *buf = malloc(c->len);
            assert_non_null(buf);
            memcpy(buf, c->body, c->len);
            ssize_t r = feed_chunked(&dec, buf, c->len, split, 1, out, &out_len, &why);
            if (r != -1)
                fail_msg("case '%s' split %zu: consumed %zd, done %d", c->name, split, r, dec.done);
            assert_non_null(why);
            assert_true(why < buf || why >= buf + c->len);
            /* A failed decoder stays failed. */
            size_t dl;
            why = NULL;
            assert_int_equal(bg_http_chunked_step(&dec, "0\r\n\r\n", 5, &dl, &why), -1);
            assert_non_null(why);
            free(buf);
        }
    }
}

static void test_chunked_limits(void **state)
{
    (void)state;
    static char buf[16384], out[16];
    bg_http_chunked_t dec;
    size_t out_len, dl;
    const char *why = NULL;

    /* Size line of exactly BG_HTTP_CHUNK_LINE_MAX bytes before CRLF: fine. */
    size_t len = 0;
    buf[len++] = '1';
    buf[len++] = ';';
    memset(buf + len, 'e', BG_HTTP_CHUNK_LINE_MAX - 2);
    len += BG_HTTP_CHUNK_LINE_MAX - 2;
    memcpy(buf + len, "\r\nx\r\n0\r\n\r\n", 10);
    len += 10;
    assert_int_equal(feed_chunked(&dec, buf, len, 0, 0, out, &out_len, &why), (ssize_t)len);
    assert_int_equal(out_len, 1);
    /* One byte more: refused. */
    memmove(buf + 3, buf + 2, len - 2);
    len++;
    assert_int_equal(feed_chunked(&dec, buf, len, 0, 0, out, &out_len, &why), -1);
    /* ...also when it arrives one byte at a time. */
    assert_int_equal(feed_chunked(&dec, buf, len, 0, 1, out, &out_len, &why), -1);

    /* Trailer section of exactly BG_HTTP_TRAILER_MAX bytes: fine. */
    len = (size_t)snprintf(buf, sizeof buf, "0\r\nX: ");
    size_t fill = BG_HTTP_TRAILER_MAX - 3 - 2 - 2; /* "X: " CRLF CRLF */
    memset(buf + len, 'v', fill);
    len += fill;
    memcpy(buf + len, "\r\n\r\n", 4);
    len += 4;
    assert_int_equal(len - 3, BG_HTTP_TRAILER_MAX);
    assert_int_equal(feed_chunked(&dec, buf, len, 0, 0, out, &out_len, &why), (ssize_t)len);
    memmove(buf + 4, buf + 3, len - 3);
    len++;
    assert_int_equal(feed_chunked(&dec, buf, len, 0, 0, out, &out_len, &why), -1);

    /* 2^53 itself is a valid size; the data then streams through. */
    bg_http_chunked_init(&dec);
    assert_int_equal(bg_http_chunked_step(&dec, "20000000000000\r\n", 16, &dl, &why), 16);
    assert_int_equal(dl, 0);
    assert_int_equal(bg_http_chunked_step(&dec, "0123456789", 10, &dl, &why), 10);
    assert_int_equal(dl, 10);
    assert_false(dec.done);
    assert_int_equal(dec.body_bytes, 10);
}

/* Each call returns either framing or data, and a data call never runs past
 * the chunk: the bytes of the next size line are returned separately. */
static void test_chunked_spans(void **state)
{
    (void)state;
    static const char body[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
    const char *p = body, *why = NULL;
    size_t left = sizeof body - 1, dl;
    bg_http_chunked_t dec;
    bg_http_chunked_init(&dec);

    static const struct {
        ssize_t consumed;
        size_t data;
    } expect[] = {{3, 0}, {3, 3}, {5, 0}, {2, 2}, {7, 0}, {0, 0}};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        ssize_t r = bg_http_chunked_step(&dec, p, left, &dl, &why);
        assert_int_equal(r, expect[i].consumed);
        assert_int_equal(dl, expect[i].data);
        p += r;
        left -= (size_t)r;
    }
    assert_true(dec.done);
    assert_string_equal(p, "NEXT");
    /* An empty buffer means "need more" before the end. */
    bg_http_chunked_init(&dec);
    assert_int_equal(bg_http_chunked_step(&dec, "", 0, &dl, &why), 0);
    assert_false(dec.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_ok),
        cmocka_unit_test(test_request_prefixes_incomplete),
        cmocka_unit_test(test_request_head_limit),
        cmocka_unit_test(test_request_refused),
        cmocka_unit_test(test_request_why_is_static),
        cmocka_unit_test(test_request_field_count),
        cmocka_unit_test(test_field_room),
        cmocka_unit_test(test_request_head_too_large),
        cmocka_unit_test(test_request_value_bytes),
        cmocka_unit_test(test_response_ok),
        cmocka_unit_test(test_response_refused),
        cmocka_unit_test(test_response_limits),
        cmocka_unit_test(test_find_header),
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_chunked_ok),
        cmocka_unit_test(test_chunked_refused),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_chunked_spans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
