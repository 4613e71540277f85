#include "proxy/evaluate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/util.h"
#include "common/hex.h"

/* ------------------------------------------------------------------------
 * Request targets: what the ROUTE stage refuses before matching a route.
 *
 * A path-prefix route promises that only paths under its prefix reach its
 * upstream. Upstreams and the frameworks behind them decode the path once
 * or twice, treat '\' as '/', drop ";params" from segments and resolve dot
 * segments after that, so the raw bytes bordergate matched are not the
 * path the application sees. We therefore refuse every target whose path,
 * raw or decoded once or twice, could mean something else to an upstream
 * than the bytes say, and match routes on a form in which percent-encoded
 * letters cannot pick a different route than the one the upstream sees.
 * ---------------------------------------------------------------------- */

/* Paths up to this length are decoded on the stack; longer ones on the
 * heap (the head limit bounds them). */
#define TARGET_STACK 2048

/* Byte value of "%XX" at P (N bytes available), or -1 when P does not
 * start with a percent and two hex digits. */
static int pct_at(const char *p, size_t n)
{
    if (n < 3 || p[0] != '%')
        return -1;
    int hi = bg_hex_digit((unsigned char)p[1]), lo = bg_hex_digit((unsigned char)p[2]);
    return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

/* One percent-decoding pass over P[0..N) into OUT (room for N bytes; OUT
 * may be P, decoding only shrinks); malformed escapes are copied as they
 * are, as upstream decoders do. Returns the decoded length. */
static size_t pct_decode(const char *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int v = pct_at(p + i, n - i);
        if (v >= 0) {
            out[o++] = (char)v;
            i += 3;
        } else {
            out[o++] = p[i++];
        }
    }
    return o;
}

/* 1 for a byte an upstream may take as a dot, separator, parameter start,
 * escape or terminator when it finds it spelled as overlong UTF-8. */
static int overlong_target_char(unsigned cp)
{
    return cp == '.' || cp == '/' || cp == '\\' || cp == ';' || cp == '%' || cp == 0;
}

/* Length of an overlong UTF-8 spelling of one of overlong_target_char's
 * characters at P (N bytes available; also the 5- and 6-byte forms old
 * decoders accept, e.g. %c0%ae for '.'), or 0. */
static size_t overlong_at(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;
    if (p[0] >= 0xc0 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1fu;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0fu;
    else if (p[0] >= 0xf0 && p[0] <= 0xf7)
        len = 4, cp = p[0] & 0x07u;
    else if (p[0] >= 0xf8 && p[0] <= 0xfb)
        len = 5, cp = p[0] & 0x03u;
    else if (p[0] >= 0xfc && p[0] <= 0xfd)
        len = 6, cp = p[0] & 0x01u;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[k] & 0x3fu);
        if (cp >= 0x80)
            return 0; /* a real (not overlong-ASCII) character */
    }
    return overlong_target_char(cp) ? len : 0;
}

/*
 * 1 when one form of a path (no query) is unsafe: an encoded '/', '\' or
 * NUL (%2F, %5C, %00), an IIS-style %uXXXX escape, a NUL byte, an overlong
 * UTF-8 dot/separator, or a dot segment: a segment between '/' or '\'
 * separators whose name (the part before a ';') is only dots, '.' or
 * "%2e" spelled either way ("..", ".%2e", "..;x", ".;", "...").
 */
static int path_form_unsafe(const char *p, size_t n)
{
    size_t dots = 0, other = 0;
    int in_params = 0;
    for (size_t i = 0; i <= n;) {
        if (i == n || p[i] == '/' || p[i] == '\\') {
            if (dots > 0 && other == 0)
                return 1;
            dots = other = 0;
            in_params = 0;
            i++;
            continue;
        }
        unsigned char c = (unsigned char)p[i];
        if (c == '\0')
            return 1;
        if (c == '%') {
            int v = pct_at(p + i, n - i);
            if (v == '/' || v == '\\' || v == 0)
                return 1;
            if (n - i >= 6 && (p[i + 1] == 'u' || p[i + 1] == 'U') &&
                bg_hex_digit((unsigned char)p[i + 2]) >= 0 &&
                bg_hex_digit((unsigned char)p[i + 3]) >= 0 &&
                bg_hex_digit((unsigned char)p[i + 4]) >= 0 &&
                bg_hex_digit((unsigned char)p[i + 5]) >= 0)
                return 1;
            if (v == '.' && !in_params) {
                dots++;
                i += 3;
                continue;
            }
        }
        if (c >= 0xc0 && overlong_at((const unsigned char *)p + i, n - i) > 0)
            return 1;
        if (!in_params) {
            if (c == ';')
                in_params = 1;
            else if (c == '.')
                dots++;
            else
                other++;
        }
        i++;
    }
    return 0;
}

int bg_target_unsafe_path(const char *p, size_t n)
{
    if (memchr(p, '#', n) != NULL)
        return 1;
    const char *q = memchr(p, '?', n);
    size_t end = q != NULL ? (size_t)(q - p) : n;
    if (path_form_unsafe(p, end))
        return 1;
    if (memchr(p, '%', end) == NULL)
        return 0; /* nothing to decode: the raw form is every form */
    char stack[TARGET_STACK];
    char *buf = end <= sizeof stack ? stack : malloc(end);
    if (buf == NULL)
        return 1; /* out of memory: fail closed */
    size_t n1 = pct_decode(p, end, buf);
    int unsafe = path_form_unsafe(buf, n1);
    if (!unsafe && memchr(buf, '%', n1) != NULL) {
        size_t n2 = pct_decode(buf, n1, buf);
        unsafe = path_form_unsafe(buf, n2);
    }
    if (buf != stack)
        free(buf);
    return unsafe;
}

/*
 * May C appear in the host part of a Host field or authority (RFC 3986
 * 3.2.2: reg-name is unreserved, pct-encoded and sub-delims; an IP literal
 * is brackets around hex digits, ':' and '.', or IPvFuture's unreserved,
 * sub-delims and ':')? Nothing else is a host: not '@' (userinfo, which RFC
 * 9110 4.2.4 says to treat as an error), '/', '?', '#', '\\', '"', '<', '>',
 * or bytes outside ASCII (an international name travels as xn--).
 */
static int host_char(char c, int literal)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    if (c != '\0' && strchr("-._~!$&'()*+,;=%", c) != NULL)
        return 1;
    return literal && (c == '[' || c == ']' || c == ':');
}

/* Port after ':' in a Host or authority: 1*5DIGIT with a value in 1-65535
 * (RFC 9110 4.2.1 allows an empty port; we refuse it, as documented). */
static int port_valid(const char *p, size_t n)
{
    if (n == 0 || n > 5)
        return 0;
    unsigned v = 0;
    for (size_t k = 0; k < n; k++) {
        if (p[k] < '0' || p[k] > '9')
            return 0;
        v = v * 10 + (unsigned)(p[k] - '0');
    }
    return v >= 1 && v <= 65535;
}

int bg_target_parse(const char *t, size_t tl, const char *host, size_t host_len, bg_target_t *out,
                    const char **why)
{
    memset(out, 0, sizeof *out);
    /* absolute-form (clients using bordergate as HTTP_PROXY): its authority
     * is the destination (RFC 9112 3.2.2). */
    if (bg_util_iprefix(t, tl, "http://") || bg_util_iprefix(t, tl, "https://")) {
        size_t skip = t[4] == ':' ? 7 : 8;
        const char *a = t + skip;
        const char *end = memchr(a, '/', tl - skip);
        size_t alen = end != NULL ? (size_t)(end - a) : tl - skip;
        host = a;
        host_len = alen;
        out->path = end != NULL ? end : "/";
        out->path_len = end != NULL ? tl - skip - alen : 1;
    } else if (tl > 0 && t[0] == '/') {
        out->path = t;
        out->path_len = tl;
    } else if (tl == 1 && t[0] == '*') {
        *why = "request target * is not forwarded";
        return 400;
    } else {
        *why = "request target must be a path or an absolute http URL";
        return 400;
    }
    if (bg_target_unsafe_path(out->path, out->path_len)) {
        *why = "request path with dot segments, encoded separators or a fragment: routes match "
               "literal paths only";
        return 400;
    }
    /* Host without port, lowercased; the port must be 1-65535. */
    size_t hn = 0;
    if (host != NULL) {
        if (memchr(host, '@', host_len) != NULL) {
            *why = "userinfo (user@) in Host or in the target's authority";
            return 400;
        }
        size_t end = host_len;
        if (host_len > 0 && host[0] == '[') {
            const char *rb = memchr(host, ']', host_len);
            end = rb != NULL ? (size_t)(rb - host) + 1 : host_len;
        } else {
            const char *colon = memchr(host, ':', host_len);
            if (colon != NULL)
                end = (size_t)(colon - host);
        }
        if (end < host_len &&
            (host[end] != ':' || !port_valid(host + end + 1, host_len - end - 1))) {
            *why = "invalid port in Host";
            return 400;
        }
        if (end >= sizeof out->host) {
            *why = "Host header too long";
            return 400;
        }
        for (size_t i = 0; i < end; i++) {
            char c = host[i];
            if ((unsigned char)c <= ' ' || c == 0x7f) {
                /* proxy/http.c never lets these through; replay might */
                *why = "invalid character in Host";
                return 400;
            }
            if (!host_char(c, host[0] == '[')) {
                *why = "invalid character in Host";
                return 400;
            }
            out->host[hn++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
    }
    out->host[hn] = '\0';
    out->host_len = hn;
    return 0;
}

int bg_target_repeated_field(const bg_http_header_t *h, size_t n, const char **why)
{
    static const struct {
        const char *name;
        size_t len;
    } once[] = {{"content-type", 12}, {"content-encoding", 16}};
    for (size_t k = 0; k < sizeof once / sizeof once[0]; k++) {
        size_t seen = 0;
        for (size_t i = 0; i < n; i++)
            seen +=
                h[i].name_len == once[k].len && bg_util_ieq(h[i].name, h[i].name_len, once[k].name);
        if (seen > 1) {
            *why = k == 0 ? "more than one Content-Type field"
                          : "more than one Content-Encoding field";
            return 400;
        }
    }
    return 0;
}

/* 1 for the bytes a path keeps literal in its canonical form: unreserved
 * (RFC 3986 2.3), sub-delims, ':', '@' and '/'. */
static int path_literal(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

/* Canonical form of the path part P[0..PART) followed by the query
 * Q[0..QN) unchanged, into OUT (room for 3 * PART + QN): bytes that
 * path_literal keeps are written as they are, every other byte as %XX in
 * upper case. Returns the length. */
static size_t path_canonical(const char *p, size_t part, const char *q, size_t qn, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < part; i++) {
        unsigned char c = (unsigned char)p[i];
        if (path_literal(c))
            out[o++] = (char)c;
        else
            o += bg_hex_pct(c, out + o);
    }
    memcpy(out + o, q, qn);
    return o + qn;
}

/*
 * 0 when the canonical forms of OUT's path decoded once and twice match
 * OUT->route, as its raw bytes did; else 400 (or 503) with *WHY. Upstreams
 * route on the decoded path, so "/%61dmin" is "/admin" to them.
 */
static int route_stable(const bg_config_t *cfg, const bg_target_t *out, const char **why)
{
    const char *q = memchr(out->path, '?', out->path_len);
    size_t part = q != NULL ? (size_t)(q - out->path) : out->path_len;
    size_t qn = out->path_len - part, k = 0;
    while (k < part && out->path[k] != '%' && path_literal((unsigned char)out->path[k]))
        k++;
    if (k == part)
        return 0; /* already canonical */
    char stack[TARGET_STACK];
    size_t need = part + 3 * part + qn;
    char *buf = need <= sizeof stack ? stack : malloc(need);
    if (buf == NULL) {
        *why = "out of memory";
        return 503;
    }
    char *dec = buf, *key = buf + part;
    memcpy(dec, out->path, part);
    int status = 0;
    for (int level = 0; level < 2 && status == 0; level++) {
        part = pct_decode(dec, part, dec);
        size_t n = path_canonical(dec, part, out->path + out->path_len - qn, qn, key);
        if (bg_config_match_route(cfg, out->host, out->host_len, key, n) != out->route) {
            *why = "percent-encoded characters in the path would change its route";
            status = 400;
        }
    }
    if (buf != stack)
        free(buf);
    return status;
}

int bg_target_route(const bg_config_t *cfg, const char *target, size_t target_len, const char *host,
                    size_t host_len, const bg_http_header_t *headers, size_t nheaders,
                    bg_target_t *out, const char **why)
{
    int status = bg_target_parse(target, target_len, host, host_len, out, why);
    if (status == 0)
        status = bg_target_repeated_field(headers, nheaders, why);
    if (status != 0)
        return status;
    out->route = bg_config_match_route(cfg, out->host, out->host_len, out->path, out->path_len);
    if (out->route == NULL) {
        *why = "no route for this host and path: bordergate only forwards to configured "
               "destinations";
        return 421;
    }
    return route_stable(cfg, out, why);
}

int bg_evaluate(const bg_eval_input_t *in, bg_eval_t *out, const char **why)
{
    const bg_config_t *cfg = in->cfg;
    const bg_policy_t *p = cfg->policy;
    const bg_route_policy_t *rp = &p->routes[in->route - cfg->routes];

    memset(out, 0, BG_EVAL_RESET_BYTES);
    /* INSPECT: only what goes abroad, unless the policy says otherwise. */
    if (bg_decide_needs_inspection(p, in->geo) && rp->inspect != NULL) {
        bg_inspect_input_t ii;
        memset(&ii, 0, sizeof ii);
        ii.method = in->method;
        ii.method_len = in->method_len;
        ii.target = in->path;
        ii.target_len = in->path_len;
        ii.headers = in->headers;
        ii.nheaders = in->nheaders;
        ii.body = in->body != NULL ? in->body : "";
        ii.body_len = in->body_len;
        out->insp = bg_inspect(rp->inspect, &ii);
        if (out->insp == NULL) {
            *why = "out of memory while inspecting";
            return -1;
        }
    }
    /* DECIDE: allow, de-identify or block. */
    bg_decide_input_t d;
    memset(&d, 0, sizeof d);
    d.policy = p;
    d.route_index = (int)(in->route - cfg->routes);
    d.route = in->route;
    d.geo = in->geo;
    d.insp = out->insp;
    d.headers = in->headers;
    d.nheaders = in->nheaders;
    d.consent = in->consent;
    d.now_ms = in->now_ms;
    if (bg_decide(&d, &out->decision) != 0) {
        *why = "out of memory while deciding";
        return -1;
    }
    out->decided = 1;
    if (out->decision.would == BG_OUTCOME_DEIDENTIFY && !out->decision.monitor) {
        if (bg_decision_apply(&out->decision, out->insp, p) == 0 &&
            bg_inspection_modified(out->insp)) {
            if (bg_inspection_render(out->insp, &out->rw) != 0) {
                *why = "out of memory while de-identifying";
                return -1;
            }
            out->rewritten = 1;
        }
    }
    return 0;
}

void bg_eval_free(bg_eval_t *ev)
{
    bg_inspection_free(ev->insp);
    ev->insp = NULL;
    if (ev->decided)
        bg_decision_free(&ev->decision);
    ev->decided = 0;
    bg_rewrite_free(&ev->rw);
    ev->rewritten = 0;
}

int bg_addr_is_private(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
        return (a >> 24) == 10 || (a >> 24) == 127 || (a >> 24) == 0 ||
               (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
               (a >> 16) == (169u << 8 | 254) || (a >> 22) == (100u << 2 | 1) || (a >> 28) == 14 ||
               (a >> 28) == 15;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        struct sockaddr_storage v4;
        memset(&v4, 0, sizeof v4);
        v4.ss_family = AF_INET;
        memcpy(&((struct sockaddr_in *)&v4)->sin_addr, &a6->s6_addr[12], 4);
        return bg_addr_is_private(&v4);
    }
    return IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_UNSPECIFIED(a6) || IN6_IS_ADDR_LINKLOCAL(a6) ||
           IN6_IS_ADDR_SITELOCAL(a6) || IN6_IS_ADDR_MULTICAST(a6) ||
           (a6->s6_addr[0] & 0xfe) == 0xfc; /* fc00::/7 unique local */
}
