/*
 * Strict HTTP/1.1 message-head parser and chunked-body decoder.
 *
 * Zero-copy: parsed fields point into the caller's buffer, which must stay
 * unchanged while the result is used. No allocation: the caller gives the
 * storage for the header fields (HEADERS and MAX_HEADERS of the request or
 * response, set before parsing), so a message costs what its caller
 * budgets for it. A proxy can parse into a BG_HTTP_MAX_HEADERS scratch array
 * and keep an exactly sized copy (parse again into NHEADERS fields: the same
 * bytes give the same result). The parser is re-entrant and may be called
 * again on a longer buffer when it returned BG_HTTP_INCOMPLETE (the head is
 * re-scanned; heads are small and bounded).
 *
 * Strictness (each refusal carries the HTTP status to answer with and a
 * short static reason that never quotes the input):
 *   - request line: METHOD SP request-target SP HTTP/1.x CRLF, single SPs,
 *     method is a token, target has no CTL/SP; HTTP/1.0 and 1.1 only (505);
 *   - up to BG_HTTP_MAX_EMPTY_LINES leading CRLFs are skipped (RFC 9112 2.2);
 *   - lines end in CRLF; a bare CR or bare LF anywhere in the head is 400;
 *   - header names are tokens, no whitespace before ':' (400);
 *   - obs-fold (a line starting with SP/HTAB) is 400;
 *   - field values: VCHAR, SP, HTAB, obs-text; other CTLs are 400;
 *   - Content-Length: digits only, no sign, <= 2^53; duplicates must be
 *     identical, else 400; "1, 1" lists are 400;
 *   - Transfer-Encoding with Content-Length: 400; TE in a HTTP/1.0
 *     request: 400; request TE whose final coding is not chunked
 *     ("chunked, identity", "xchunked", "identity", empty) or that applies
 *     chunked more than once (also over two fields): 400 (RFC 9112 6.1,
 *     6.3); any other TE than exactly one "chunked" (case-insensitive, OWS
 *     allowed), i.e. a coding before a final chunked: 501;
 *   - HTTP/1.1 request without Host, or more than one Host: 400;
 *   - Expect other than "100-continue": 417;
 *   - head longer than MAX_HEAD bytes or more fields than the caller's
 *     MAX_HEADERS (never more than BG_HTTP_MAX_HEADERS): 431 for requests
 *     (responses: error, the proxy answers 502).
 */
#ifndef BG_HTTP_H
#define BG_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/http_header.h" /* bg_http_header_t, bg_http_find_header */

#define BG_HTTP_MAX_HEADERS 100
#define BG_HTTP_MAX_EMPTY_LINES 4

typedef enum {
    BG_HTTP_OK = 1,         /* a complete head was parsed */
    BG_HTTP_INCOMPLETE = 0, /* no error so far; need more bytes */
    BG_HTTP_ERROR = -1,     /* malformed; see status and why */
} bg_http_result_t;

typedef struct {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    int version_minor; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */

    /* Set by the caller before parsing: room for MAX_HEADERS fields. */
    bg_http_header_t *headers;
    size_t max_headers;
    size_t nheaders; /* fields parsed into headers[0..nheaders) */

    /* Derived from the headers. */
    int64_t content_length; /* -1 when absent */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* from version and Connection tokens */
    int expect_continue;    /* Expect: 100-continue */
    int upgrade;            /* Connection: upgrade or an Upgrade header */
    const char *host;       /* Host value (NULL when absent) */
    size_t host_len;

    size_t head_len; /* bytes of the head including the final CRLF CRLF and
                        any skipped leading empty lines */
} bg_http_request_t;

typedef struct {
    int version_minor;
    int status; /* 100..999 */
    const char *reason;
    size_t reason_len;

    /* Set by the caller before parsing: room for MAX_HEADERS fields. */
    bg_http_header_t *headers;
    size_t max_headers;
    size_t nheaders; /* fields parsed into headers[0..nheaders) */

    int64_t content_length; /* -1 when absent */
    int chunked;            /* last transfer coding is chunked */
    int keep_alive;         /* from version and Connection tokens */
    size_t head_len;
} bg_http_response_t;

/*
 * Parse a request head at the start of BUF[0..LEN) into REQ, whose HEADERS
 * and MAX_HEADERS the caller has set (the other members are written; a
 * field beyond MAX_HEADERS is 431, as is any when HEADERS is NULL, so pass
 * BG_HTTP_MAX_HEADERS of room for the documented limit). MAX_HEAD bounds the
 * head size: when LEN >= MAX_HEAD and no end of head was found, the result is
 * BG_HTTP_ERROR with status 431. On error *STATUS is set (400, 417, 431, 501,
 * 505) and *WHY to a static string such as "bare LF in header".
 */
bg_http_result_t bg_http_parse_request(const char *buf, size_t len, size_t max_head,
                                       bg_http_request_t *req, int *status, const char **why);

/*
 * Parse a response head into RESP, whose HEADERS and MAX_HEADERS the caller
 * has set, as for requests. Framing rules for the caller (RFC 9112 6.3): no body
 * for 1xx/204/304 or a response to HEAD; TE+CL in one response is an error
 * here (the proxy answers 502). Errors set *WHY only.
 */
bg_http_result_t bg_http_parse_response(const char *buf, size_t len, size_t max_head,
                                        bg_http_response_t *resp, const char **why);

/*
 * True for the hop-by-hop fields a proxy must not forward (Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authorization, Proxy-Authenticate) and for any field named in
 * CONNECTION_VALUE (the Connection header's value, may be NULL).
 */
int bg_http_is_hop_by_hop(const char *name, size_t name_len, const char *connection_value,
                          size_t connection_len);

/*
 * Incremental chunked-body decoder (RFC 9112 7.1), fed from a byte stream.
 * Chunk extensions are accepted and ignored; chunk-size lines are limited to
 * BG_HTTP_CHUNK_LINE_MAX bytes and trailers to BG_HTTP_TRAILER_MAX bytes;
 * chunk sizes above 2^53 are an error. Bare LF in framing is an error.
 */
#define BG_HTTP_CHUNK_LINE_MAX 4096
#define BG_HTTP_TRAILER_MAX 8192

typedef struct {
    int state;           /* private */
    uint64_t remaining;  /* private: bytes left in the current chunk */
    size_t line_len;     /* private: bytes of the current framing line */
    size_t trailer_len;  /* private: bytes of trailers so far */
    int done;            /* set when the last chunk and trailers were read */
    uint64_t body_bytes; /* total decoded data bytes so far */
} bg_http_chunked_t;

void bg_http_chunked_init(bg_http_chunked_t *c);

/*
 * Consume bytes from the start of BUF[0..LEN). Returns the number of bytes
 * consumed (0 means more input is needed, unless c->done), or -1 on a
 * framing error (*WHY set). When *DATA_LEN > 0, the consumed bytes are body
 * data (exactly *DATA_LEN bytes, at BUF); otherwise they are framing
 * (sizes, CRLFs, extensions, trailers). Call in a loop; stops at c->done and
 * never consumes past the end of the message.
 */
ssize_t bg_http_chunked_step(bg_http_chunked_t *c, const char *buf, size_t len, size_t *data_len,
                             const char **why);

#endif
