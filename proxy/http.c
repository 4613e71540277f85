/*
 * Strict HTTP/1.1 head parser and chunked decoder (contract in http.h).
 *
 * The head is parsed in two steps:
 *   1. one pass over the bytes that checks the syntax and records the
 *      start line and the field lines (pointers into the buffer). Syntax
 *      errors are reported at the byte where they occur, so a doomed head is
 *      refused as soon as the offending byte arrives;
 *   2. once the whole head is there, one pass over the recorded fields
 *      (not the bytes) derives framing, Host, Connection and Expect and
 *      applies the cross-field rules in a fixed order, so the status does
 *      not depend on the order of the fields: every 400 wins over 501,
 *      which wins over 417.
 * A strict prefix of a valid head therefore always yields INCOMPLETE.
 */
#include "proxy/http.h"

#include <limits.h>
#include <string.h>

#include "common/hex.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Largest Content-Length or chunk size accepted: 2^53, so that sizes stay
 * exact in JSON numbers and far from int64 overflow in sums. */
#define HTTP_MAX_LENGTH ((uint64_t)1 << 53)

/*
 * Byte classes. C_TOKEN: tchar (RFC 9110 5.6.2). C_FIELD: field-content
 * bytes, i.e. VCHAR, SP, HTAB and obs-text. C_TARGET: request-target bytes,
 * i.e. anything but CTLs and SP (obs-text is let through; see http.h).
 * In the table: NO none, WS SP/HTAB, VC other field bytes, TK tchar.
 */
#define C_TOKEN 1
#define C_FIELD 2
#define C_TARGET 4

/* clang-format off */
#define NO 0
#define WS C_FIELD
#define VC (C_FIELD | C_TARGET)
#define TK (C_TOKEN | C_FIELD | C_TARGET)

static const unsigned char http_class[256] = {
    NO, NO, NO, NO, NO, NO, NO, NO, NO, WS, NO, NO, NO, NO, NO, NO, /* 0x00 */
    NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, /* 0x10 */
    WS, TK, VC, TK, TK, TK, TK, TK, VC, VC, TK, TK, VC, TK, TK, VC, /*  !"#$%&'()*+,-./ */
    TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, VC, VC, VC, VC, VC, VC, /* 0-9 :;<=>? */
    VC, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, /* @A-O */
    TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, VC, VC, VC, TK, TK, /* P-Z [\]^_ */
    TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, /* `a-o */
    TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, TK, VC, TK, VC, TK, NO, /* p-z {|}~ DEL */
    VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, /* obs-text */
    VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC,
    VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC,
    VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC,
    VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC,
    VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC,
    VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC,
    VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC, VC,
};

#undef NO
#undef WS
#undef VC
#undef TK
/* clang-format on */

typedef struct {
    int status;
    const char *why;
} http_err_t;

static inline int http_fail(http_err_t *err, int status, const char *why)
{
    err->status = status;
    err->why = why;
    return BG_HTTP_ERROR;
}

static inline unsigned http_lower(unsigned c)
{
    return c - 'A' < 26u ? c | 0x20u : c;
}

/* S[0..N) equals the lowercase literal LOWER[0..N), ignoring ASCII case. */
static inline int http_ieq(const char *s, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (http_lower((unsigned char)s[i]) != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

#define HTTP_IEQ(s, n, lit) ((n) == sizeof(lit) - 1 && http_ieq((s), (lit), sizeof(lit) - 1))

/*
 * First byte in [P, END) that is not field-content (a CTL other than HTAB,
 * or DEL), or END. With SSE2 the common long values (cookies, tokens) are
 * checked 16 bytes at a time; the tail goes through the table.
 */
static inline const unsigned char *http_skip_field(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i c1f = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8(0x09), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, c1f), x);
        ctl = _mm_andnot_si128(_mm_cmpeq_epi8(x, tab), ctl);
        ctl = _mm_or_si128(ctl, _mm_cmpeq_epi8(x, del));
        unsigned m = (unsigned)_mm_movemask_epi8(ctl);
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < end && (http_class[*p] & C_FIELD))
        p++;
    return p;
}

/* First byte in [P, END) that may not appear in a request-target (CTL, SP,
 * DEL), or END. */
static inline const unsigned char *http_skip_target(const unsigned char *p,
                                                    const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i c20 = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i bad = _mm_cmpeq_epi8(_mm_min_epu8(x, c20), x);
        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, del));
        unsigned m = (unsigned)_mm_movemask_epi8(bad);
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < end && (http_class[*p] & C_TARGET))
        p++;
    return p;
}

static inline const unsigned char *http_skip_token(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (http_class[*p] & C_TOKEN))
        p++;
    return p;
}

/*
 * The line ending at P: CR LF. Returns OK with *PP past it, INCOMPLETE when
 * the buffer ends first, or ERROR naming the bare CR / bare LF / other byte
 * (WHAT names the line for the last case).
 */
static int http_expect_crlf(const unsigned char **pp, const unsigned char *end, http_err_t *err,
                            const char *what)
{
    const unsigned char *p = *pp;
    if (p == end)
        return BG_HTTP_INCOMPLETE;
    if (*p == '\n')
        return http_fail(err, 400, "bare LF in head");
    if (*p != '\r')
        return http_fail(err, 400, what);
    if (p + 1 == end)
        return BG_HTTP_INCOMPLETE;
    if (p[1] != '\n')
        return http_fail(err, 400, "bare CR in head");
    *pp = p + 2;
    return BG_HTTP_OK;
}

/*
 * HTTP-version = "HTTP/" DIGIT "." DIGIT, checked as far as the bytes go so
 * that "HTTX" is refused before the line is complete.
 */
static int http_parse_version(const unsigned char **pp, const unsigned char *end, int *major,
                              int *minor, http_err_t *err)
{
    static const char name[] = "HTTP/";
    const unsigned char *p = *pp;
    for (size_t i = 0; i < 8; i++) {
        if (p + i == end)
            return BG_HTTP_INCOMPLETE;
        unsigned c = p[i];
        int ok = i < 5 ? c == (unsigned char)name[i] : i == 6 ? c == '.' : c - '0' < 10u;
        if (!ok)
            return http_fail(err, 400, "malformed HTTP version");
    }
    *major = p[5] - '0';
    *minor = p[7] - '0';
    *pp = p + 8;
    return BG_HTTP_OK;
}

/*
 * Field lines from *PP through the empty line that ends the head. Fills
 * HDRS[0..*NHDRS) (room for MAX fields); on OK *PP is just past the final
 * CRLF. Syntax errors are 400; a field beyond MAX, or beyond
 * BG_HTTP_MAX_HEADERS whatever the room, is 431.
 */
static int http_parse_fields(const unsigned char **pp, const unsigned char *end,
                             bg_http_header_t *hdrs, size_t max, size_t *nhdrs, http_err_t *err)
{
    const unsigned char *p = *pp;
    size_t n = 0;
    int r;

    if (hdrs == NULL || max > BG_HTTP_MAX_HEADERS)
        max = hdrs == NULL ? 0 : BG_HTTP_MAX_HEADERS;

    for (;;) {
        if (p == end)
            break;
        if (*p == '\r') {
            r = http_expect_crlf(&p, end, err, "");
            if (r == BG_HTTP_OK) {
                *pp = p;
                *nhdrs = n;
            }
            return r;
        }
        if (n == max)
            return http_fail(err, 431, "too many header fields");

        const unsigned char *name = p;
        p = http_skip_token(p, end);
        if (p == end)
            break;
        if (*p != ':') {
            if (*p == '\n')
                return http_fail(err, 400, "bare LF in head");
            if (*p == ' ' || *p == '\t')
                return http_fail(err, 400,
                                 p == name ? "obs-fold or leading whitespace in field line"
                                           : "whitespace before colon in header");
            if (*p == '\r')
                return http_fail(err, 400, "header line without colon");
            return http_fail(err, 400, "invalid character in header name");
        }
        if (p == name)
            return http_fail(err, 400, "empty header name");
        size_t name_len = (size_t)(p - name);

        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const unsigned char *value = p;
        p = http_skip_field(p, end);
        const unsigned char *vend = p;
        r = http_expect_crlf(&p, end, err, "control character in header value");
        if (r != BG_HTTP_OK)
            return r;
        while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;

        hdrs[n].name = (const char *)name;
        hdrs[n].name_len = name_len;
        hdrs[n].value = (const char *)value;
        hdrs[n].value_len = (size_t)(vend - value);
        n++;
    }
    *nhdrs = n;
    return BG_HTTP_INCOMPLETE;
}

/*
 * Next element of a comma-separated list (RFC 9110 5.6.1) in [*PP, END),
 * OWS trimmed; empty elements are skipped. Returns 0 when exhausted.
 */
static int http_list_next(const char **pp, const char *end, const char **elem, size_t *elen)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
        p++;
    if (p == end) {
        *pp = p;
        return 0;
    }
    const char *s = p;
    while (p < end && *p != ',')
        p++;
    const char *e = p;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *pp = p;
    *elem = s;
    *elen = (size_t)(e - s);
    return 1;
}

/* Content-Length value: 1*DIGIT, at most 2^53. */
static int http_parse_length(const char *s, size_t n, int64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - (unsigned)'0';
        if (d > 9)
            return -1;
        v = v * 10 + d;
        if (v > HTTP_MAX_LENGTH)
            return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* What the fields say, gathered in one pass over the recorded fields. */
typedef struct {
    int64_t content_length;
    const char *cl_value; /* first Content-Length, to compare duplicates */
    size_t cl_len;
    size_t nte;                 /* Transfer-Encoding fields */
    const bg_http_header_t *te; /* the first one */
    int te_nchunked;            /* "chunked" elements over all TE fields */
    int te_final_chunked;       /* the last coding of the last TE list */
    const bg_http_header_t *host;
    size_t nhost;
    int conn_close, conn_keep_alive, conn_upgrade;
    int upgrade_field;
    int expect_continue, expect_other;
} http_facts_t;

static void http_connection_tokens(const bg_http_header_t *h, http_facts_t *f)
{
    const char *p = h->value, *end = h->value + h->value_len, *e;
    size_t n;
    while (http_list_next(&p, end, &e, &n)) {
        if (HTTP_IEQ(e, n, "close"))
            f->conn_close = 1;
        else if (HTTP_IEQ(e, n, "keep-alive"))
            f->conn_keep_alive = 1;
        else if (HTTP_IEQ(e, n, "upgrade"))
            f->conn_upgrade = 1;
    }
}

/* The codings of one Transfer-Encoding list; a coding's name is what comes
 * before its parameters ("chunked;q=1" is chunked with a parameter). */
static void http_te_codings(const bg_http_header_t *h, http_facts_t *f)
{
    const char *p = h->value, *end = h->value + h->value_len, *e;
    size_t n;
    while (http_list_next(&p, end, &e, &n)) {
        const char *semi = memchr(e, ';', n);
        size_t name = semi != NULL ? (size_t)(semi - e) : n;
        while (name > 0 && (e[name - 1] == ' ' || e[name - 1] == '\t'))
            name--;
        f->te_final_chunked = HTTP_IEQ(e, name, "chunked");
        f->te_nchunked += f->te_final_chunked;
    }
}

/*
 * One pass over the fields. Dispatch is on the name length first, so most
 * fields cost one switch. Returns -1 (400) on a malformed or conflicting
 * Content-Length; every other rule is left to the caller.
 */
static int http_collect(const bg_http_header_t *hdrs, size_t n, http_facts_t *f, http_err_t *err)
{
    memset(f, 0, sizeof *f);
    f->content_length = -1;

    for (size_t i = 0; i < n; i++) {
        const bg_http_header_t *h = &hdrs[i];
        switch (h->name_len) {
        case 4:
            if (http_ieq(h->name, "host", 4)) {
                if (f->nhost++ == 0)
                    f->host = h;
            }
            break;
        case 6:
            if (http_ieq(h->name, "expect", 6)) {
                if (HTTP_IEQ(h->value, h->value_len, "100-continue"))
                    f->expect_continue = 1;
                else
                    f->expect_other = 1;
            }
            break;
        case 7:
            if (http_ieq(h->name, "upgrade", 7))
                f->upgrade_field = 1;
            break;
        case 10:
            if (http_ieq(h->name, "connection", 10))
                http_connection_tokens(h, f);
            break;
        case 14:
            if (http_ieq(h->name, "content-length", 14)) {
                int64_t v;
                if (http_parse_length(h->value, h->value_len, &v) != 0)
                    return http_fail(err, 400, "invalid Content-Length");
                if (f->cl_value == NULL) {
                    f->cl_value = h->value;
                    f->cl_len = h->value_len;
                    f->content_length = v;
                } else if (f->cl_len != h->value_len ||
                           memcmp(f->cl_value, h->value, h->value_len) != 0) {
                    return http_fail(err, 400, "conflicting Content-Length fields");
                }
            }
            break;
        case 17:
            if (http_ieq(h->name, "transfer-encoding", 17)) {
                if (f->nte++ == 0)
                    f->te = h;
                http_te_codings(h, f);
            }
            break;
        default: break;
        }
    }
    return 0;
}

static int http_keep_alive(int minor, const http_facts_t *f)
{
    if (f->conn_close)
        return 0;
    return minor >= 1 || f->conn_keep_alive;
}

/* Request-specific rules, in the order documented at the top of the file. */
static int http_derive_request(bg_http_request_t *req, http_err_t *err)
{
    http_facts_t f;
    if (http_collect(req->headers, req->nheaders, &f, err) != 0)
        return BG_HTTP_ERROR;

    if (f.nhost > 1)
        return http_fail(err, 400, "more than one Host field");
    if (f.nhost == 0 && req->version_minor >= 1)
        return http_fail(err, 400, "missing Host field");
    if (f.nte > 0) {
        if (f.cl_value != NULL)
            return http_fail(err, 400, "both Transfer-Encoding and Content-Length");
        if (req->version_minor == 0)
            return http_fail(err, 400, "Transfer-Encoding in HTTP/1.0 request");
        /* RFC 9112 6.3: when chunked is not the final coding the body's
         * length cannot be known (400, whatever the other codings are);
         * chunked twice is faulty framing (6.1). A final chunked after
         * other codings is well framed but needs a coding we do not
         * implement (501). */
        if (!f.te_final_chunked)
            return http_fail(err, 400, "Transfer-Encoding whose final coding is not chunked");
        if (f.te_nchunked > 1)
            return http_fail(err, 400, "chunked applied more than once");
        if (f.nte != 1 || !HTTP_IEQ(f.te->value, f.te->value_len, "chunked"))
            return http_fail(err, 501, "unsupported Transfer-Encoding");
    }
    if (f.expect_other)
        return http_fail(err, 417, "unsupported Expect");

    req->content_length = f.content_length;
    req->chunked = f.nte > 0;
    req->keep_alive = http_keep_alive(req->version_minor, &f);
    /* RFC 9110 10.1.1: a 100-continue expectation in HTTP/1.0 is ignored. */
    req->expect_continue = f.expect_continue && req->version_minor >= 1;
    req->upgrade = f.conn_upgrade || f.upgrade_field;
    if (f.host != NULL) {
        req->host = f.host->value;
        req->host_len = f.host->value_len;
    }
    return BG_HTTP_OK;
}

static int http_derive_response(bg_http_response_t *resp, http_err_t *err)
{
    http_facts_t f;
    if (http_collect(resp->headers, resp->nheaders, &f, err) != 0)
        return BG_HTTP_ERROR;

    if (f.nte > 0) {
        if (f.cl_value != NULL)
            return http_fail(err, 502, "both Transfer-Encoding and Content-Length");
        /* RFC 9112 6.1: TE in an HTTP/1.0 message means faulty framing. */
        if (resp->version_minor == 0)
            return http_fail(err, 502, "Transfer-Encoding in HTTP/1.0 response");
        if (f.te_nchunked > 1)
            return http_fail(err, 502, "chunked applied more than once");
        resp->chunked = f.te_final_chunked;
        resp->content_length = -1;
    } else {
        resp->content_length = f.content_length;
    }
    resp->keep_alive = http_keep_alive(resp->version_minor, &f);
    return BG_HTTP_OK;
}

/*
 * Request line, after up to BG_HTTP_MAX_EMPTY_LINES leading CRLFs:
 * method SP request-target SP HTTP-version CRLF.
 */
static int http_parse_request_line(const unsigned char **pp, const unsigned char *end,
                                   bg_http_request_t *req, http_err_t *err)
{
    const unsigned char *p = *pp;
    int r;

    for (int skipped = 0;; skipped++) {
        if (p == end)
            return BG_HTTP_INCOMPLETE;
        if (*p != '\r' && *p != '\n')
            break;
        if (skipped == BG_HTTP_MAX_EMPTY_LINES)
            return http_fail(err, 400, "too many empty lines before request");
        r = http_expect_crlf(&p, end, err, "");
        if (r != BG_HTTP_OK)
            return r;
    }

    const unsigned char *method = p;
    p = http_skip_token(p, end);
    if (p == end)
        return BG_HTTP_INCOMPLETE;
    if (p == method || *p != ' ')
        return http_fail(err, 400, *p == '\n' ? "bare LF in head" : "malformed method");
    req->method = (const char *)method;
    req->method_len = (size_t)(p - method);

    const unsigned char *target = ++p;
    p = http_skip_target(p, end);
    if (p == end)
        return BG_HTTP_INCOMPLETE;
    if (*p != ' ') {
        if (*p == '\n')
            return http_fail(err, 400, "bare LF in head");
        if (*p == '\r')
            return http_fail(err, 400, "missing HTTP version");
        return http_fail(err, 400, "invalid character in request target");
    }
    if (p == target)
        return http_fail(err, 400, "empty request target");
    req->target = (const char *)target;
    req->target_len = (size_t)(p - target);

    p++;
    int major, minor;
    r = http_parse_version(&p, end, &major, &minor, err);
    if (r != BG_HTTP_OK)
        return r;
    r = http_expect_crlf(&p, end, err, "malformed request line");
    if (r != BG_HTTP_OK)
        return r;
    if (major != 1 || minor > 1)
        return http_fail(err, 505, "HTTP version not supported");
    req->version_minor = minor;
    *pp = p;
    return BG_HTTP_OK;
}

/*
 * Status line: HTTP-version SP 3DIGIT [SP reason] CRLF. The SP before an
 * empty reason is optional here: some origins omit it and it cannot change
 * framing.
 */
static int http_parse_status_line(const unsigned char **pp, const unsigned char *end,
                                  bg_http_response_t *resp, http_err_t *err)
{
    const unsigned char *p = *pp;
    int major, minor, r;

    r = http_parse_version(&p, end, &major, &minor, err);
    if (r != BG_HTTP_OK)
        return r;
    if (p == end)
        return BG_HTTP_INCOMPLETE;
    if (*p != ' ')
        return http_fail(err, 502, "malformed status line");
    p++;
    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return BG_HTTP_INCOMPLETE;
        unsigned d = *p - (unsigned)'0';
        if (d > 9 || (i == 0 && d == 0))
            return http_fail(err, 502, "malformed status code");
        status = status * 10 + (int)d;
    }
    if (p == end)
        return BG_HTTP_INCOMPLETE;
    if (*p == ' ')
        p++;
    else if (*p != '\r' && *p != '\n')
        return http_fail(err, 502, "malformed status code");
    const unsigned char *reason = p;
    p = http_skip_field(p, end);
    const unsigned char *rend = p;
    r = http_expect_crlf(&p, end, err, "control character in reason phrase");
    if (r != BG_HTTP_OK)
        return r;
    if (major != 1 || minor > 1)
        return http_fail(err, 502, "HTTP version not supported");
    resp->version_minor = minor;
    resp->status = status;
    resp->reason = (const char *)reason;
    resp->reason_len = (size_t)(rend - reason);
    *pp = p;
    return BG_HTTP_OK;
}

/*
 * When the head is not complete within the first MAX_HEAD bytes: 431 once
 * LEN has reached MAX_HEAD (more bytes cannot help), else INCOMPLETE.
 */
bg_http_result_t bg_http_parse_request(const char *buf, size_t len, size_t max_head,
                                       bg_http_request_t *req, int *status, const char **why)
{
    http_err_t err = {400, NULL};
    int r = BG_HTTP_INCOMPLETE;

    req->method = req->target = req->host = NULL;
    req->method_len = req->target_len = req->host_len = 0;
    req->version_minor = 0;
    req->nheaders = 0;
    req->content_length = -1;
    req->chunked = req->keep_alive = req->expect_continue = req->upgrade = 0;
    req->head_len = 0;

    size_t scan = len < max_head ? len : max_head;
    if (scan > 0) {
        const unsigned char *start = (const unsigned char *)buf, *p = start;
        const unsigned char *end = start + scan;
        r = http_parse_request_line(&p, end, req, &err);
        if (r == BG_HTTP_OK)
            r = http_parse_fields(&p, end, req->headers, req->max_headers, &req->nheaders, &err);
        if (r == BG_HTTP_OK) {
            req->head_len = (size_t)(p - start);
            r = http_derive_request(req, &err);
        }
    }
    if (r == BG_HTTP_INCOMPLETE && len >= max_head)
        r = http_fail(&err, 431, "request head too large");
    if (r == BG_HTTP_ERROR) {
        if (status != NULL)
            *status = err.status;
        if (why != NULL)
            *why = err.why;
    }
    return (bg_http_result_t)r;
}

/* Same limits as for requests; only WHY is reported (the proxy answers 502
 * whatever the fault), so the statuses set along the way are ignored. */
bg_http_result_t bg_http_parse_response(const char *buf, size_t len, size_t max_head,
                                        bg_http_response_t *resp, const char **why)
{
    http_err_t err = {502, NULL};
    int r = BG_HTTP_INCOMPLETE;

    resp->version_minor = 0;
    resp->status = 0;
    resp->reason = NULL;
    resp->reason_len = 0;
    resp->nheaders = 0;
    resp->content_length = -1;
    resp->chunked = resp->keep_alive = 0;
    resp->head_len = 0;

    size_t scan = len < max_head ? len : max_head;
    if (scan > 0) {
        const unsigned char *start = (const unsigned char *)buf, *p = start;
        const unsigned char *end = start + scan;
        r = http_parse_status_line(&p, end, resp, &err);
        if (r == BG_HTTP_OK)
            r = http_parse_fields(&p, end, resp->headers, resp->max_headers, &resp->nheaders, &err);
        if (r == BG_HTTP_OK) {
            resp->head_len = (size_t)(p - start);
            r = http_derive_response(resp, &err);
        }
    }
    if (r == BG_HTTP_INCOMPLETE && len >= max_head)
        r = http_fail(&err, 502, "response head too large");
    if (r == BG_HTTP_ERROR && why != NULL)
        *why = err.why;
    return (bg_http_result_t)r;
}

int bg_http_is_hop_by_hop(const char *name, size_t name_len, const char *connection_value,
                          size_t connection_len)
{
    static const struct {
        const char *name;
        size_t len;
    } fixed[] = {
        {"connection", 10},
        {"keep-alive", 10},
        {"proxy-connection", 16},
        {"te", 2},
        {"trailer", 7},
        {"transfer-encoding", 17},
        {"upgrade", 7},
        {"proxy-authorization", 19},
        {"proxy-authenticate", 18},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (fixed[i].len == name_len && http_ieq(name, fixed[i].name, name_len))
            return 1;
    }
    if (connection_value == NULL)
        return 0;

    const char *p = connection_value, *end = connection_value + connection_len, *e;
    size_t n;
    while (http_list_next(&p, end, &e, &n)) {
        if (n != name_len)
            continue;
        size_t j = 0;
        while (j < n && http_lower((unsigned char)e[j]) == http_lower((unsigned char)name[j]))
            j++;
        if (j == n)
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Chunked decoder
 *
 * chunked-body = *chunk last-chunk trailer-section CRLF
 * chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *
 * Framing is walked one byte at a time (it is a few bytes per chunk); data is
 * handed back as one span per call without being touched. Partial framing
 * lines are consumed and remembered in the state, so the caller can drain
 * everything that was consumed. Limits: a size line, CR LF excluded, is at
 * most BG_HTTP_CHUNK_LINE_MAX bytes; the trailer section, from the byte after
 * the last-chunk line through the final CR LF, at most BG_HTTP_TRAILER_MAX.
 * ------------------------------------------------------------------------- */

enum {
    CH_SIZE_START = 0, /* first hex digit of a chunk-size */
    CH_SIZE,           /* more hex digits */
    CH_SIZE_BWS,       /* whitespace after the size: only ';' may follow */
    CH_EXT,            /* chunk extensions, ignored up to CR */
    CH_SIZE_LF,        /* CR seen at the end of the size line */
    CH_DATA,
    CH_DATA_CR, /* CRLF that must follow chunk data */
    CH_DATA_LF,
    CH_TRAILER_START, /* start of a trailer line or of the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF, /* CR of the final empty line seen */
    CH_DONE,
    CH_ERROR,
};

void bg_http_chunked_init(bg_http_chunked_t *c)
{
    memset(c, 0, sizeof *c);
    c->state = CH_SIZE_START;
}

static ssize_t http_chunk_fail(bg_http_chunked_t *c, const char **why, const char *reason)
{
    c->state = CH_ERROR;
    if (why != NULL)
        *why = reason;
    return -1;
}

ssize_t bg_http_chunked_step(bg_http_chunked_t *c, const char *buf, size_t len, size_t *data_len,
                             const char **why)
{
    *data_len = 0;
    if (c->state == CH_ERROR)
        return http_chunk_fail(c, why, "chunked decoder used after an error");
    if (c->done || len == 0)
        return 0;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;

    if (c->state == CH_DATA) {
        size_t n = c->remaining < len ? (size_t)c->remaining : len;
        c->remaining -= n;
        c->body_bytes += n;
        if (c->remaining == 0)
            c->state = CH_DATA_CR;
        *data_len = n;
        return (ssize_t)n;
    }

    const unsigned char *start = (const unsigned char *)buf, *p = start, *end = start + len;
    for (; p < end; p++) {
        unsigned ch = *p;
        int h;

        if (c->state <= CH_EXT && ch != '\r' && ++c->line_len > BG_HTTP_CHUNK_LINE_MAX)
            return http_chunk_fail(c, why, "chunk size line too long");
        if (c->state >= CH_TRAILER_START && c->state <= CH_END_LF &&
            ++c->trailer_len > BG_HTTP_TRAILER_MAX)
            return http_chunk_fail(c, why, "chunked trailer section too large");

        switch (c->state) {
        case CH_SIZE_START:
            if ((h = bg_hex_digit(ch)) < 0)
                return http_chunk_fail(
                    c, why, ch == '\n' ? "bare LF in chunked framing" : "invalid chunk size");
            c->remaining = (uint64_t)h;
            c->state = CH_SIZE;
            break;
        case CH_SIZE:
            if ((h = bg_hex_digit(ch)) >= 0) {
                /* remaining <= 2^53 here, so the shift cannot overflow. */
                c->remaining = (c->remaining << 4) | (uint64_t)h;
                if (c->remaining > HTTP_MAX_LENGTH)
                    return http_chunk_fail(c, why, "chunk size too large");
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (ch == ' ' || ch == '\t') {
                c->state = CH_SIZE_BWS;
            } else {
                return http_chunk_fail(
                    c, why, ch == '\n' ? "bare LF in chunked framing" : "invalid chunk size");
            }
            break;
        case CH_SIZE_BWS:
            if (ch == ';')
                c->state = CH_EXT;
            else if (ch != ' ' && ch != '\t')
                return http_chunk_fail(c, why, "whitespace after chunk size");
            break;
        case CH_EXT:
            /* Extensions cannot contain CR or LF, not even quoted. */
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (!(http_class[ch] & C_FIELD))
                return http_chunk_fail(
                    c, why, ch == '\n' ? "bare LF in chunked framing" : "invalid chunk extension");
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return http_chunk_fail(c, why, "bare CR in chunked framing");
            c->line_len = 0;
            if (c->remaining == 0) {
                c->state = CH_TRAILER_START;
                break;
            }
            c->state = CH_DATA;
            return (ssize_t)(p + 1 - start);
        case CH_DATA_CR:
            if (ch != '\r')
                return http_chunk_fail(c, why, "missing CRLF after chunk data");
            c->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return http_chunk_fail(c, why, "missing CRLF after chunk data");
            c->state = CH_SIZE_START;
            break;
        case CH_TRAILER_START:
            if (ch == '\r')
                c->state = CH_END_LF;
            else if (http_class[ch] & C_TOKEN)
                c->state = CH_TRAILER_NAME;
            else
                return http_chunk_fail(
                    c, why, ch == '\n' ? "bare LF in chunked framing" : "malformed trailer field");
            break;
        case CH_TRAILER_NAME:
            if (ch == ':')
                c->state = CH_TRAILER_VALUE;
            else if (!(http_class[ch] & C_TOKEN))
                return http_chunk_fail(c, why, "malformed trailer field");
            break;
        case CH_TRAILER_VALUE:
            if (ch == '\r')
                c->state = CH_TRAILER_LF;
            else if (!(http_class[ch] & C_FIELD))
                return http_chunk_fail(
                    c, why, ch == '\n' ? "bare LF in chunked framing" : "malformed trailer field");
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                return http_chunk_fail(c, why, "bare CR in chunked framing");
            c->state = CH_TRAILER_START;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return http_chunk_fail(c, why, "bare CR in chunked framing");
            c->state = CH_DONE;
            c->done = 1;
            return (ssize_t)(p + 1 - start);
        default: return http_chunk_fail(c, why, "chunked decoder in an invalid state");
        }
    }
    return (ssize_t)(p - start);
}
